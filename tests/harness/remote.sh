# remote.sh -- sourced by the CLI tests of the s3:// and rados:// backends
# (tests/cli/remote_*.sh). ctest gives them a Ceph cluster
# (tests/ceph_fixture.sh) and its environment; without one they exit 77
# (skipped). The checks (fail, expect, one_line_error, has, pyjson,
# tensor_sums, make_st, finish...) are those of every CLI test:
# tests/harness/cli.sh, sourced here.
set -u
: "${PYTHON:=/usr/bin/python3}"
if [ -z "${AWS_ENDPOINT_URL:-}" ] || [ -z "${CEPH_CONF:-}" ]; then
    echo "SKIP: no Ceph cluster (AWS_ENDPOINT_URL / CEPH_CONF unset)"
    exit 77
fi
. "$(dirname "${BASH_SOURCE[0]}")/cli.sh"
tmp=$(mktemp -d)
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
