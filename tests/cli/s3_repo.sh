#!/usr/bin/env bash
# s3_repo.sh -- a whole repository on S3 through the CLI: wv init
# s3://BUCKET/r1 (which creates the bucket), commit, log, show, checkout
# and compare, tags and branches deleted and made again (tombstones),
# verify, prune, gc; and the one-line errors of a missing bucket, bad
# credentials (the secret never printed) and an unreachable server.
# Exits 77 (skipped) when AWS_ENDPOINT_URL is unset.
# Env: WV, PYTHON, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
set -u
if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
    echo "SKIP: AWS_ENDPOINT_URL is not set (no S3 server)"
    exit 77
fi
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
bucket="wvt-s3-cli-$(date +%H%M%S)-$$"
cleanup() {
    /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" s3 rb --force \
        "s3://$bucket" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

"$PYTHON" - "$tmp" <<'PY' || { echo "cannot generate inputs"; exit 1; }
import sys
import numpy as np
from stwrite import write_st as st
d = sys.argv[1]
rng = np.random.default_rng(1)
big = rng.standard_normal(6 * 1024 * 1024 // 4).astype("<f4")  # 6 MiB
st(d + "/a.safetensors", {"big": big, "w": np.arange(12, dtype="<f4").reshape(3, 4)})
big2 = big.copy(); big2[1000] = 42
st(d + "/b.safetensors", {"big": big2, "w": np.ones((3, 4), dtype="<f4")})
PY

R="s3://$bucket/r1"
expect 0 "$WV" init "$R" --chunk-size 1MiB
has "$R"
expect 1 "$WV" init "$R"
one_line_error "already exists"
expect 0 "$WV" commit "$R" "$tmp/a.safetensors" -m first --meta step=1
id1=$(tr -d '\n' <"$tmp/out")
expect 0 "$WV" commit "$R" "$tmp/b.safetensors" -m second --meta step=2
id2=$(tr -d '\n' <"$tmp/out")
[ ${#id2} = 64 ] && [ "$id1" != "$id2" ] || fail "commit ids: '$id1' '$id2'"

expect 0 "$WV" log "$R"
[ "$(grep -c '^checkpoint ' "$tmp/out")" = 2 ] || fail "log shows not 2: $(cat "$tmp/out")"
[ "$(grep '^checkpoint ' "$tmp/out" | head -1)" = "checkpoint $id2 (main)" ] ||
    fail "log does not start with the head"
expect 0 "$WV" show "$R@${id1:0:12}"
has "message:    first"

expect 0 "$WV" checkout "$R@latest" -o "$tmp/x2.safetensors"
[ "$(tensor_sums "$tmp/x2.safetensors")" = "$(tensor_sums "$tmp/b.safetensors")" ] ||
    fail "checkout of latest differs from what was committed"
expect 0 "$WV" checkout "$R@$id1" -o "$tmp/x1.safetensors"
[ "$(tensor_sums "$tmp/x1.safetensors")" = "$(tensor_sums "$tmp/a.safetensors")" ] ||
    fail "checkout of the first commit differs"

# Tags and branches: delete (a tombstone on S3), list, make again.
expect 0 "$WV" tag "$R" best "$id1"
expect 0 "$WV" branch "$R" dev "$id1"
expect 0 "$WV" branch "$R" --list
has "dev"
has "main"
expect 0 "$WV" branch "$R" -d dev
expect 0 "$WV" branch "$R" --list
grep -q "^dev" "$tmp/out" && fail "a deleted branch is still listed"
expect 0 "$WV" tag "$R" -d best
expect 0 "$WV" tag "$R" --list
[ -s "$tmp/out" ] && fail "a deleted tag is still listed: $(cat "$tmp/out")"
expect 3 "$WV" log "$R@best"
one_line_error "best"
expect 0 "$WV" tag "$R" best "$id2"
expect 0 "$WV" show "$R@best"
has "$id2"
expect 0 "$WV" branch "$R" dev "$id2"
expect 0 "$WV" commit "$R@dev" "$tmp/a.safetensors" -m on-dev
expect 0 "$WV" log "$R@dev"
[ "$(grep -c '^checkpoint ' "$tmp/out")" = 3 ] || fail "dev history: $(cat "$tmp/out")"

expect 0 "$WV" verify "$R"
has "ok:"
expect 0 "$WV" prune "$R" --keep-last 1
expect 0 "$WV" gc "$R"
expect 0 "$WV" verify "$R"
expect 0 "$WV" checkout "$R@best" -o "$tmp/y.safetensors"
[ "$(tensor_sums "$tmp/y.safetensors")" = "$(tensor_sums "$tmp/b.safetensors")" ] ||
    fail "the tagged checkpoint changed after prune and gc"

# ---- errors: one line each, no secret ---------------------------------------
expect 3 "$WV" log "s3://wvt-s3-cli-nosuch-$$/r"
one_line_error "no such bucket"
AWS_SECRET_ACCESS_KEY=notthesecretnotthesecret0000 expect 4 "$WV" log "$R"
one_line_error "SignatureDoesNotMatch"
grep -q notthesecret "$tmp/err" && fail "the secret key was printed"
grep -q -- "$AWS_SECRET_ACCESS_KEY" "$tmp/err" && fail "the real secret key was printed"
AWS_ACCESS_KEY_ID= AWS_SECRET_ACCESS_KEY= HOME=$tmp AWS_PROFILE= \
    expect 4 "$WV" log "$R"
one_line_error "no S3 credentials"
start=$(date +%s)
AWS_ENDPOINT_URL=http://127.0.0.1:1 WV_S3_RETRIES=2 expect 4 "$WV" log "$R"
one_line_error "cannot reach http://127.0.0.1:1: Connection refused (after 2 attempts)"
[ $(($(date +%s) - start)) -le 5 ] || fail "an unreachable server took too long"

finish
