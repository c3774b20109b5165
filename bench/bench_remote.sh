#!/usr/bin/env bash
# Push and pull of a 1 GiB repository to and from a local radosgw (S3) and
# RADOS, measured in the same run as the baselines on the same bytes and
# server: `aws s3 cp --recursive`, and the server's limit as seen by plain
# parallel `curl --aws-sigv4` PUTs and GETs (to /dev/null).
#
#   bash bench/bench_remote.sh BUILD_DIR [SIZE_MIB (1024)] [RUNS (3)]
#
# Starts its own single-node cluster (bluestore, so the data is not held in
# RAM) on ports that do not clash with a development cluster, in
# bench-out/ceph, and stops it at the end. Prints a Markdown table of
# medians and ratios; bench/run.sh appends it to the results.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}; case $build in /*) ;; *) build=$root/$build ;; esac
size=${2:-1024}
runs=${3:-3}
WV=$build/wv
out=$root/bench-out/remote
PY=/usr/bin/python3
export CEPH_DIR=$root/bench-out/ceph CEPH_OSD_STORE=bluestore CEPH_RGW_PORT=7482 \
       CEPH_MON_PORT=6791 CEPH_MON_PORT2=3302 CEPH_OSD_PORT_MIN=7400 CEPH_OSD_PORT_MAX=7600
bash "$root/scripts/ceph-dev.sh" install
bash "$root/scripts/ceph-dev.sh" start >/dev/null
trap 'bash "$root/scripts/ceph-dev.sh" stop; rm -rf "$out"' EXIT
# shellcheck disable=SC1091
. "$CEPH_DIR/env"
AWS=(/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL")
CURL=(curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
rm -rf "$out"; mkdir -p "$out"
cd "$out"

# the data: random (incompressible) F32 tensors, stored without compression
$PY - "$size" <<'PY'
import json, struct, sys, numpy as np
mib = int(sys.argv[1]); n = 16
per = mib * 1024 * 1024 // n // 4
rng = np.random.default_rng(1)
hdr, off = {}, 0
for i in range(n):
    hdr[f"w{i:02d}"] = {"dtype": "F32", "shape": [per], "data_offsets": [off, off + per * 4]}; off += per * 4
h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
with open("data.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    for i in range(n): f.write(rng.standard_normal(per, dtype=np.float32).tobytes())
PY
"$WV" init repo --compression none >/dev/null
"$WV" commit repo data.safetensors -m bench >/dev/null
bytes=$(du -sb repo | cut -f1)
"${AWS[@]}" s3 mb s3://bench >/dev/null
ceph -c "$CEPH_CONF" osd pool create benchpool >/dev/null 2>&1

calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); calc "$e - $s"; }
wipe_s3() { "${AWS[@]}" s3 rm --recursive --only-show-errors "s3://bench/$1/" >/dev/null 2>&1 || true; }
(cd repo && find . -type f | sed 's|^\./||') >files.txt
curl_put() { (cd repo && xargs -P 8 -I{} "${CURL[@]}" -o /dev/null -T {} "$AWS_ENDPOINT_URL/bench/curl/{}" <../files.txt); }
curl_get() { xargs -P 8 -I{} "${CURL[@]}" -o /dev/null "$AWS_ENDPOINT_URL/bench/curl/{}" <files.txt; }

declare -A T
add() { T[$1]="${T[$1]:-} $2"; }
for r in $(seq "$runs"); do
    wipe_s3 curl; add curl_put "$(t curl_put)"; add curl_get "$(t curl_get)"
    wipe_s3 aws
    add aws_put "$(t "${AWS[@]}" s3 cp --recursive --only-show-errors repo s3://bench/aws)"
    rm -rf awsget; add aws_get "$(t "${AWS[@]}" s3 cp --recursive --only-show-errors s3://bench/aws awsget)"
    wipe_s3 wv
    add wv_push "$(t "$WV" push repo s3://bench/wv --quiet -j 8)"
    rm -rf clone; add wv_pull "$(t "$WV" clone s3://bench/wv clone --quiet -j 8)"
    "$WV" push repo "rados://benchpool/r$r" --quiet >/dev/null 2>&1 || true # warm-up of the pool
    add rados_push "$(t "$WV" push repo "rados://benchpool/run$r" --quiet -j 8)"
    rm -rf rclone; add rados_pull "$(t "$WV" clone "rados://benchpool/run$r" rclone --quiet -j 8)"
done
"$WV" verify clone >/dev/null && "$WV" verify rclone >/dev/null || { echo "bench_remote: a clone does not verify" >&2; exit 1; }

med() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mibs() { awk "BEGIN { printf \"%.0f\", $bytes / 1048576 / $1 }"; }
echo
echo "### Global storage: push and pull of a $(calc "$bytes / 1073741824") GiB repository, local radosgw (bluestore), medians of $runs"
echo
echo "| transfer | weightvault | aws s3 cp | raw parallel curl | vs curl | vs awscli |"
echo "|---|---|---|---|---|---|"
for d in put get; do
    w=$([ $d = put ] && med "${T[wv_push]}" || med "${T[wv_pull]}")
    a=$(med "${T[aws_$d]}"); c=$(med "${T[curl_$d]}")
    name=$([ $d = put ] && echo "push (wv push / PUT)" || echo "pull (wv clone / GET)")
    printf '| %s | %s MiB/s (%.2f s) | %s MiB/s | %s MiB/s | %.2fx | %.2fx |\n' "$name" \
        "$(mibs "$w")" "$w" "$(mibs "$a")" "$(mibs "$c")" \
        "$(calc "$c / $w")" "$(calc "$a / $w")"
done
rp=$(med "${T[rados_push]}"); rl=$(med "${T[rados_pull]}")
wp=$(med "${T[wv_push]}"); wl=$(med "${T[wv_pull]}")
printf '| push to rados:// | %s MiB/s (%.2f s) | | | | %.2fx of S3 push |\n' "$(mibs "$rp")" "$rp" "$(calc "$wp / $rp")"
printf '| clone from rados:// | %s MiB/s (%.2f s) | | | | %.2fx of S3 pull |\n' "$(mibs "$rl")" "$rl" "$(calc "$wl / $rl")"
echo
echo "(ratios: baseline time / weightvault time, > 1 is faster than the baseline;"
echo " curl GETs write to /dev/null; wv clone writes the repository to local disk and fsyncs it)"
