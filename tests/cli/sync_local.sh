#!/usr/bin/env bash
# sync_local.sh -- wv push / pull / clone between local repositories (the
# same code as for s3:// and rados://, without a server): only missing
# objects are sent, refs move forward only (exit 5 on divergence, nothing
# moved; --force moves), one branch with @BRANCH, tags travel and never
# move, a destination is created with the source's settings, pull needs
# an existing repository, a killed push is resumed by running it again,
# and every chunk is checked on arrival (a damaged one: exit 1).
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head_of() { "$WV" log "$1" -n 1 | head -1; }
cd "$tmp"
"$PYTHON" -c '
import numpy as np
for s in range(4):
    r = np.random.default_rng(s)
    np.savez(f"w{s}.npz", a=r.standard_normal((512, 1024)).astype("f4"), b=np.arange(5, dtype="f4") + s)
'
expect 0 "$WV" init a --compression zstd
expect 0 "$WV" commit a w0.npz -m one
expect 0 "$WV" commit a w1.npz -m two
expect 0 "$WV" push a b --json
pyjson 'd["ok"] and d["objects_copied"] == d["objects"] > 0 and d["refs_updated"] == 1'
# requests and bytes counted in the store layer: a get and a put at least
# per object copied, every copied byte read and written
pyjson 'd["requests"] >= 2 * d["objects_copied"] and d["bytes_received"] >= d["bytes_copied"] > 0 and d["bytes_sent"] >= d["bytes_copied"]'
# every chunk checked on arrival: as many as `wv verify` reads
nchk=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["chunks_verified"])' "$tmp/out")
expect 0 "$WV" verify b
grep -q " $nchk chunks," "$tmp/out" || fail "push checked $nchk chunks, verify says: $(cat "$tmp/out")"
[ "$nchk" -gt 0 ] || fail "push checked no chunk"
# a damaged chunk in the source: exit 1, one line naming the pack, nothing of it kept
p=$(cd a && ls packs/*/* | head -1)
cp -r a bad
"$PYTHON" -c '
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 3] ^= 1
open(p, "wb").write(b)' "bad/$p"
expect 1 "$WV" clone bad bad-clone
one_line_error "$p"
[ ! -e "bad-clone/$p" ] || fail "the damaged pack was kept"
rm -rf bad bad-clone
cmp -s a/config b/config || fail "the new destination's config differs from the source's"
[ "$(head_of a)" = "$(head_of b)" ] || fail "push did not set the branch"
expect 0 "$WV" push a b --json
pyjson 'd["objects_copied"] == 0 and d["refs_updated"] == 0'
pyjson '0 < d["requests"] and d["bytes_sent"] < 4096'

# fast-forward pull, divergence refused, --force
expect 0 "$WV" commit b w2.npz -m three
expect 0 "$WV" pull b a
[ "$(head_of a)" = "$(head_of b)" ] || fail "pull did not fast-forward"
expect 0 "$WV" commit a w3.npz -m only-a
expect 0 "$WV" commit b w3.npz -m only-b
hb=$(head_of b)
expect 5 "$WV" push a b
grep -q "diverged" "$tmp/err" || fail "no 'diverged' in: $(cat "$tmp/err")"
[ "$(head_of b)" = "$hb" ] || fail "a refused push moved the branch"
expect 0 "$WV" push a b --force
[ "$(head_of b)" = "$(head_of a)" ] || fail "--force did not move the branch"
# the destination ahead: nothing to do, not an error
expect 0 "$WV" commit b w0.npz -m b-ahead
expect 0 "$WV" push a b --json
pyjson 'd["refs_unchanged"] == 1 and d["refs_updated"] == 0'

# one branch; tags never move
expect 0 "$WV" branch a exp
expect 0 "$WV" commit a@exp w1.npz -m on-exp
expect 0 "$WV" tag a v1 exp
expect 0 "$WV" push a b@exp --json
pyjson 'd["refs_updated"] == 1'
expect 3 "$WV" log b@v1
expect 0 "$WV" push a b
expect 0 "$WV" log b@v1 -n 1
expect 0 "$WV" tag b -d v1
expect 0 "$WV" tag b v1 main
expect 5 "$WV" push a b
grep -q "tags never move" "$tmp/err" || fail "tag conflict message: $(cat "$tmp/err")"

# clone, pull into nothing, usage
expect 0 "$WV" clone a c
expect 0 "$WV" verify c
expect 3 "$WV" pull a nothing-here
[ ! -e nothing-here ] || fail "pull created a repository"
expect 2 "$WV" push a
expect 2 "$WV" clone a d@main
expect 0 "$WV" push --help
grep -q "resumes" "$tmp/out" || fail "push --help does not say it resumes"

# a killed push resumes
"$PYTHON" -c '
import numpy as np
np.savez("big.npz", **{f"t{i}": np.random.default_rng(i).standard_normal(2_000_000).astype("f4") for i in range(12)})'
expect 0 "$WV" init big --compression none --pack-size 4MiB
expect 0 "$WV" commit big big.npz -m big
t0=$(date +%s%N)
expect 0 "$WV" push big k0 -j 1 --quiet
whole_ms=$((($(date +%s%N) - t0) / 1000000))
resumed=0
for i in 1 2 3 4 5 6; do
    "$WV" push big "k$i" -j 1 --quiet >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk "BEGIN { print $whole_ms * (0.1 * $i + 0.1) / 1000 }")"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if "$WV" log "k$i" >/dev/null 2>&1; then
        expect 0 "$WV" verify "k$i"
    fi
    expect 0 "$WV" push big "k$i" --json
    "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if 0 < d["objects"] - d["objects_copied"] else 1)' \
        "$tmp/out" && resumed=$((resumed + 1))
    expect 0 "$WV" verify "k$i"
done
[ "$resumed" -ge 1 ] || fail "no killed push left anything to resume from"

# encrypted: copied sealed, opened with the same secret; other keys refused
export WV_PASSPHRASE=correct-horse
expect 0 "$WV" init e1 --encrypt
expect 0 "$WV" commit e1 w0.npz -m secret-one
expect 0 "$WV" clone e1 e2
expect 0 "$WV" verify e2
expect 0 "$WV" commit e1 w1.npz -m secret-two
expect 0 "$WV" push e1 e2 --json
pyjson 'd["refs_updated"] == 1 and d["objects_copied"] > 0'
[ "$(head_of e1)" = "$(head_of e2)" ] || fail "encrypted push did not move the branch"
grep -rq "secret-two" e2 && fail "a pushed encrypted repository shows a commit message in clear"
expect 0 "$WV" init e3 --encrypt
expect 2 "$WV" push e1 e3
grep -q "different keys" "$tmp/err" || fail "different keys: $(cat "$tmp/err")"
expect 2 "$WV" push e1 a
grep -q "one is encrypted" "$tmp/err" || fail "encrypted vs plain: $(cat "$tmp/err")"
WV_PASSPHRASE=wrong expect 6 "$WV" clone e1 e4
[ ! -e e4/config ] || fail "a clone with the wrong key created a repository"
unset WV_PASSPHRASE

finish
