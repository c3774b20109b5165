#!/usr/bin/env bash
# repo_verify_ro.sh -- `wv verify` by a user who may only read the
# repository (issue 14, item 7): run as an unprivileged user (setpriv,
# uid/gid 65534) on a repository owned by root, it writes no lock, checks
# everything (damage is still found, exit 1) and says on stderr that it ran
# without a lock and why; the owner's verify still takes its lock.
# Plain and encrypted. (The S3 read-only user is in remote_acl.sh.)
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    echo "SKIP: needs root and setpriv to run as another user"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
export WV_PASSPHRASE="read only"
make_st "$tmp/a.safetensors" 3 0.1
ro() { env -u WV_STATE_DIR HOME=/nonexistent XDG_STATE_HOME= setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
ro "$WV" --version >/dev/null 2>&1 || { echo "SKIP: uid 65534 cannot run $WV"; exit 77; }
for kind in plain enc; do
    R=$tmp/$kind
    if [ $kind = enc ]; then expect 0 "$WV" init "$R" --encrypt; else expect 0 "$WV" init "$R"; fi
    expect 0 "$WV" commit "$R" "$tmp/a.safetensors" -m one
    chmod -R a+rX "$R"
    ro test -w "$R/refs" && fail "uid 65534 may write the repository"
    expect 0 ro "$WV" verify "$R"
    has "^ok:"
    grep -q "note: .*checked without a lock: could not write a lock object under locks/" "$tmp/err" ||
        fail "$kind: read-only verify does not say it ran unlocked: $(cat "$tmp/err")"
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "$kind: more than the note on stderr: $(cat "$tmp/err")"
    [ -z "$(ls -A "$R/locks" 2>/dev/null)" ] || fail "$kind: a lock was left: $(ls -A "$R/locks")"
    # damage is still found
    pk=$(find "$R/packs" -type f ! -name '.*' | head -1)
    printf 'X' | dd of="$pk" bs=1 seek=100 conv=notrunc 2>/dev/null
    expect 1 ro "$WV" verify "$R"
    has "^FAILED"
    # the owner's verify takes its lock and says nothing about it
    expect 1 "$WV" verify "$R"
    grep -q "without a lock" "$tmp/err" && fail "$kind: the owner's verify ran unlocked"
done
finish
