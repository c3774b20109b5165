#!/usr/bin/env bash
# repo_gc_tmp.sh -- `wv gc` removes the temporary files killed writers
# leave (issue 14, item 7): ".tmp-<pid>-<n>" files of dead processes in
# packs/, manifests/ and locks/ (and a ref lock's directory), once older
# than an hour (made so with touch -d), and nothing else: a fresh one stays,
# one whose pid is a live process stays however old, objects and dot files
# that are not temporary stay; --tmp-age changes the age; the repository
# verifies afterwards. A real killed commit's leftovers go too.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
sleeper=""
trap '[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null; rm -rf "$tmp"' EXIT
make_st "$tmp/a.safetensors" 1 0.2
R=$tmp/r
expect 0 "$WV" init "$R"
expect 0 "$WV" commit "$R" "$tmp/a.safetensors" -m one

# a pid that surely is not running: a child that has exited
sh -c 'exit 0' & dead=$!
wait $dead
sleep 1000 & sleeper=$!
mkdir -p "$R/locks"
pk=$(ls "$R/packs" | head -1)
old="2 hours ago"
for f in "packs/$pk/.tmp-$dead-1" "locks/.tmp-$dead-7" "manifests/.tmp-$dead-3" \
         ".tmp-$dead-9"; do
    mkdir -p "$(dirname "$R/$f")"
    head -c 1000 /dev/urandom >"$R/$f"
    touch -d "$old" "$R/$f"
done
# kept: fresh, a live writer's, a dot file that is no temporary file
head -c 10 /dev/urandom >"$R/locks/.tmp-$dead-8"
head -c 10 /dev/urandom >"$R/packs/$pk/.tmp-$sleeper-2"
touch -d "$old" "$R/packs/$pk/.tmp-$sleeper-2"
head -c 10 /dev/urandom >"$R/.keepme"
touch -d "$old" "$R/.keepme"

expect 0 "$WV" gc "$R" --dry-run
[ -e "$R/locks/.tmp-$dead-7" ] || fail "gc --dry-run removed a temporary file"
expect 0 "$WV" gc "$R"
has "4 temporary files of killed writers removed"
for f in "packs/$pk/.tmp-$dead-1" "locks/.tmp-$dead-7" "manifests/.tmp-$dead-3" ".tmp-$dead-9"; do
    [ ! -e "$R/$f" ] || fail "gc left $f (older than an hour, writer dead)"
done
[ -e "$R/locks/.tmp-$dead-8" ] || fail "gc removed a fresh temporary file"
[ -e "$R/packs/$pk/.tmp-$sleeper-2" ] || fail "gc removed a live writer's temporary file"
[ -e "$R/.keepme" ] || fail "gc removed a file that is not temporary"

# --tmp-age: a file 2 minutes old goes with --tmp-age 60, not by default
touch -d "2 minutes ago" "$R/locks/.tmp-$dead-8"
expect 0 "$WV" gc "$R"
[ -e "$R/locks/.tmp-$dead-8" ] || fail "gc removed a 2-minute-old file by default"
expect 0 "$WV" gc "$R" --tmp-age 60
has "1 temporary file of killed writers removed"
[ ! -e "$R/locks/.tmp-$dead-8" ] || fail "gc --tmp-age 60 left a 2-minute-old file"
[ -e "$R/packs/$pk/.tmp-$sleeper-2" ] || fail "gc --tmp-age 60 removed a live writer's file"
expect 2 "$WV" gc "$R" --tmp-age
expect 2 "$WV" gc "$R" --tmp-age -5

# a commit killed while writing leaves its temporary files; gc clears them
make_st "$tmp/big.safetensors" 7 64
"$WV" commit "$R" "$tmp/big.safetensors" -m big >/dev/null 2>&1 & cpid=$!
for _ in $(seq 1 200); do
    [ -n "$(find "$R" -name '.tmp-*' ! -name ".tmp-$sleeper-*" 2>/dev/null | head -1)" ] && break
    sleep 0.02
done
kill -9 $cpid 2>/dev/null
wait $cpid 2>/dev/null
left=$(find "$R" -name '.tmp-*' ! -name ".tmp-$sleeper-*" | wc -l)
find "$R" -name '.tmp-*' -exec touch -d "$old" {} +
expect 0 "$WV" gc "$R"
[ "$(find "$R" -name '.tmp-*' ! -name ".tmp-$sleeper-*" | wc -l)" = 0 ] ||
    fail "gc left temporary files of a killed commit: $(find "$R" -name '.tmp-*')"
echo "killed commit left $left temporary file(s)"
expect 0 "$WV" verify "$R"
finish
