# remote.sh -- sourced by the CLI tests of the s3:// and rados:// backends
# (tests/cli/remote_*.sh). ctest gives them a Ceph cluster
# (tests/ceph_fixture.sh) and its environment; without one they exit 77
# (skipped).
set -u
: "${PYTHON:=/usr/bin/python3}"
if [ -z "${AWS_ENDPOINT_URL:-}" ] || [ -z "${CEPH_CONF:-}" ]; then
    echo "SKIP: no Ceph cluster (AWS_ENDPOINT_URL / CEPH_CONF unset)"
    exit 77
fi
tmp=$(mktemp -d)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# expect STATUS CMD...: run, keep stdout/stderr in $tmp/out, $tmp/err.
expect() {
    local want=$1
    shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    [ "$got" = "$want" ] || fail "exit $got, wanted $want: $* ($(head -c 400 "$tmp/err"))"
}
one_line_error() {
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "stderr not one line: $(cat "$tmp/err")"
    grep -q '^wv' "$tmp/err" || fail "stderr does not start with wv: $(cat "$tmp/err")"
    grep -qi -- "$1" "$tmp/err" || fail "stderr lacks '$1': $(cat "$tmp/err")"
}
has() { grep -q -- "$1" "$tmp/out" || fail "output lacks '$1': $(head -c 600 "$tmp/out")"; }
pyjson() {
    "$PYTHON" - "$tmp/out" "$1" <<'PY' || fail "json check failed: $1"
import json, sys
d = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
if not ok:
    print("json check false:", sys.argv[2], json.dumps(d)[:600], file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}
# A bucket and a pool unique to this run; removed at exit.
run_id=$(printf '%s%04x' "$(date +%H%M%S)" $((RANDOM)))
bucket="wvt-${WV_TEST_TAG:-x}-$run_id"
pool="wvt-${WV_TEST_TAG:-x}-$run_id"
AWS=(/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL")
ceph_ctl() { CEPH_DIR=$WV_CEPH_DIR bash "$WV_CEPH_SCRIPT" "$@"; }
cleanup_remote() {
    ceph_ctl status || ceph_ctl start-rgw >/dev/null 2>&1
    "${AWS[@]}" s3 rb --force "s3://$bucket" >/dev/null 2>&1
    ceph -c "$CEPH_CONF" osd pool rm "$pool" "$pool" --yes-i-really-really-mean-it \
        >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup_remote EXIT
# sha256 column of `wv inspect --json`, one line per tensor, sorted
tensor_sums() { "$WV" inspect --json "$1" | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
for t in sorted(d["tensors"], key=lambda t: t["name"]):
    print(t["name"], t["dtype"], t["shape"], t["sha256"])'; }
# make_st FILE SEED [MB]: a safetensors file of random F32 tensors
make_st() {
    "$PYTHON" - "$1" "$2" "${3:-2}" <<'PY'
import json, struct, sys
import numpy as np
path, seed, mb = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rng = np.random.default_rng(seed)
n = max(1, int(mb * 1024 * 1024 / 4 / 4))
ts = {f"layer{i}.weight": rng.standard_normal(n).astype("<f4") for i in range(4)}
ts["bias"] = np.arange(7, dtype="<f4") + seed
hdr, off, blobs = {}, 0, []
for k in sorted(ts):
    b = ts[k].tobytes(); hdr[k] = {"dtype": "F32", "shape": [ts[k].size], "data_offsets": [off, off + len(b)]}
    off += len(b); blobs.append(b)
h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    for b in blobs: f.write(b)
PY
}
finish() {
    if [ "$failures" -ne 0 ]; then echo "$failures failure(s)"; exit 1; fi
    echo "ok"; exit 0
}
