#!/usr/bin/env bash
# Push and pull of a 1 GiB repository to and from a local radosgw (S3) and
# RADOS, and `wv inspect` of a remote safetensors file, measured in the same
# run as the baselines on the same bytes and server:
#   push   8 parallel `curl --aws-sigv4` PUTs (the server's limit as one
#          client sees it), `aws s3 cp --recursive`, `rclone copy`;
#   clone  durable (what `wv clone` promises: every file fsynced): curl GETs
#          to files, `aws s3 cp`, `rclone copy`, each followed by an fsync
#          of every file and directory it wrote (`sync FILE...`);
#          not durable (what the fsync costs): the same without the fsync,
#          and curl GETs to /dev/null;
#   inspect  `wv inspect s3://bench/model.safetensors` of the SIZE MiB file:
#          the bytes radosgw sent for it (its own perf counter `get_b`) and
#          its time, against one curl download of the whole file.
#
#   bash bench/bench_remote.sh BUILD_DIR [SIZE_MIB (1024)] [RUNS (3)]
#
# BENCH_ONLY=sync measures only the push and clone rows against curl
# (curl PUTs; curl GETs to files, with and without their fsync);
# WV_BEFORE=PATH adds the `wv push` and `wv clone` of another build (a
# change's "before") to the same runs, the two builds alternating which
# goes first.
#
# Starts its own single-node cluster (bluestore, so the data is not held in
# RAM) on ports that do not clash with a development cluster, in
# bench-out/ceph, and stops it at the end. Each timed step starts with no
# dirty pages left by the step before (an untimed `sync`). Prints a Markdown
# table of medians and ratios; bench/run.sh appends it to the results.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}; case $build in /*) ;; *) build=$root/$build ;; esac
size=${2:-1024}
runs=${3:-3}
WV=$build/wv
only=${BENCH_ONLY:-}
before=${WV_BEFORE:-}
case $only in ""|sync) ;; *) echo "bench_remote: BENCH_ONLY is 'sync' or unset" >&2; exit 2 ;; esac
[ -z "$before" ] || [ -x "$before" ] || { echo "bench_remote: WV_BEFORE=$before is not a program" >&2; exit 2; }
out=$root/bench-out/remote
PY=/usr/bin/python3
export CEPH_DIR=$root/bench-out/ceph CEPH_OSD_STORE=bluestore CEPH_RGW_PORT=7482 \
       CEPH_MON_PORT=6791 CEPH_MON_PORT2=3302 CEPH_OSD_PORT_MIN=7400 CEPH_OSD_PORT_MAX=7600
bash "$root/scripts/ceph-dev.sh" install
command -v rclone >/dev/null || { echo "bench_remote: rclone is missing (scripts/deps.sh bench)" >&2; exit 1; }
bash "$root/scripts/ceph-dev.sh" start >/dev/null
trap 'bash "$root/scripts/ceph-dev.sh" stop; rm -rf "$out"' EXIT
# shellcheck disable=SC1091
. "$CEPH_DIR/env"
AWS=(/usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL")
CURL=(curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"
      -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
# rclone's remote "wvb" from the environment: no config file
export RCLONE_CONFIG_WVB_TYPE=s3 RCLONE_CONFIG_WVB_PROVIDER=Ceph RCLONE_CONFIG_WVB_ENV_AUTH=false \
       RCLONE_CONFIG_WVB_ENDPOINT=$AWS_ENDPOINT_URL RCLONE_CONFIG_WVB_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID \
       RCLONE_CONFIG_WVB_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY RCLONE_CONFIG=/dev/null
# (its S3 client refuses AWS_CA_BUNDLE on a plain-HTTP endpoint)
RCLONE=(env -u AWS_CA_BUNDLE rclone --transfers 8 --checkers 8 -q)
ASOK=$CEPH_DIR/run/ceph-client.rgw.a.asok
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
"${AWS[@]}" s3 cp --only-show-errors data.safetensors s3://bench/model.safetensors
ceph -c "$CEPH_CONF" osd pool create benchpool >/dev/null 2>&1

calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }
# t CMD...: wall seconds of CMD, started with no dirty pages pending
# (a failing command stops the whole run: its time would mean nothing)
fail() { echo "bench_remote: failed: $*" >&2; kill -TERM $$; exit 1; }
t() { local s e; sync; s=$(date +%s.%N); "$@" >/dev/null || fail "$@"; e=$(date +%s.%N); calc "$e - $s"; }
# fsync every file and directory under $1 (what a durable copy must do)
fsync_tree() { find "$1" -print0 | xargs -0 sync --; }
# ts VAR_FAST VAR_DURABLE CMD...: the time of CMD (into VAR_FAST) and of
# CMD plus the fsync of what it wrote, directory $DIR (into VAR_DURABLE)
ts() { local a=$1 b=$2 s m e; shift 2; sync; s=$(date +%s.%N); "$@" >/dev/null || fail "$@"
       m=$(date +%s.%N); fsync_tree "$DIR"; e=$(date +%s.%N)
       add "$a" "$(calc "$m - $s")"; add "$b" "$(calc "$e - $s")"; }
wipe_s3() { "${AWS[@]}" s3 rm --recursive --only-show-errors "s3://bench/$1/" >/dev/null 2>&1 || true; }
(cd repo && find . -type f | sed 's|^\./||') >files.txt
curl_put() { (cd repo && xargs -P 8 -I{} "${CURL[@]}" -o /dev/null -T {} "$AWS_ENDPOINT_URL/bench/curl/{}" <../files.txt); }
curl_get() { xargs -P 8 -I{} "${CURL[@]}" -o /dev/null "$AWS_ENDPOINT_URL/bench/curl/{}" <files.txt; }
curl_get_files() { xargs -P 8 -I{} "${CURL[@]}" --create-dirs -o "curlget/{}" "$AWS_ENDPOINT_URL/bench/curl/{}" <files.txt; }
get_b() { ceph --admin-daemon "$ASOK" perf dump | $PY -c 'import json,sys; print(json.load(sys.stdin)["rgw"]["get_b"])'; }

declare -A T
add() { T[$1]="${T[$1]:-} $2"; }
# push and clone of this build (sync_wv) and of WV_BEFORE (sync_before)
sync_wv() { wipe_s3 wvp; add wv_push "$(t "$WV" push repo s3://bench/wvp --quiet -j 8)"
            rm -rf clone; add wv_pull "$(t "$WV" clone s3://bench/wv clone --quiet -j 8)"; }
sync_before() { wipe_s3 wvp; add wv_push0 "$(t "$before" push repo s3://bench/wvp --quiet -j 8)"
                rm -rf clone0; add wv_pull0 "$(t "$before" clone s3://bench/wv clone0 --quiet -j 8)"; }
if [ "$only" = sync ]; then
    wipe_s3 wv; "$WV" push repo s3://bench/wv --quiet -j 8
    for r in $(seq "$runs"); do
        wipe_s3 curl; add curl_put "$(t curl_put)"
        rm -rf curlget; DIR=curlget ts curl_file curl_file_sync curl_get_files
        if [ -n "$before" ] && [ $((r % 2)) = 1 ]; then sync_before; sync_wv
        elif [ -n "$before" ]; then sync_wv; sync_before
        else sync_wv; fi
    done
    "$WV" verify clone >/dev/null || { echo "bench_remote: the clone does not verify" >&2; exit 1; }
    rm -rf clone; chk=$("$WV" clone s3://bench/wv clone --quiet --json -j 8 | $PY -c 'import json,sys; print(json.load(sys.stdin)["chunks_verified"])')
fi
for r in $(seq "$runs"); do
    [ "$only" = sync ] && break
    wipe_s3 curl; add curl_put "$(t curl_put)"; add curl_get "$(t curl_get)"
    rm -rf curlget; DIR=curlget ts curl_file curl_file_sync curl_get_files
    wipe_s3 aws
    add aws_put "$(t "${AWS[@]}" s3 cp --recursive --only-show-errors repo s3://bench/aws)"
    rm -rf awsget; DIR=awsget ts aws_get aws_get_sync "${AWS[@]}" s3 cp --recursive --only-show-errors s3://bench/aws awsget
    wipe_s3 rclone
    add rclone_put "$(t "${RCLONE[@]}" copy repo wvb:bench/rclone)"
    rm -rf rcget; DIR=rcget ts rclone_get rclone_get_sync "${RCLONE[@]}" copy wvb:bench/rclone rcget
    wipe_s3 wv
    add wv_push "$(t "$WV" push repo s3://bench/wv --quiet -j 8)"
    rm -rf clone; add wv_pull "$(t "$WV" clone s3://bench/wv clone --quiet -j 8)"
    b0=$(get_b); add wv_inspect "$(t "$WV" inspect s3://bench/model.safetensors)"; b1=$(get_b)
    add inspect_bytes "$((b1 - b0))"
    add curl_dl "$(t "${CURL[@]}" -o /dev/null "$AWS_ENDPOINT_URL/bench/model.safetensors")"
    "$WV" push repo "rados://benchpool/r$r" --quiet >/dev/null 2>&1 || true # warm-up of the pool
    add rados_push "$(t "$WV" push repo "rados://benchpool/run$r" --quiet -j 8)"
    rm -rf radosclone; add rados_pull "$(t "$WV" clone "rados://benchpool/run$r" radosclone --quiet -j 8)"
done
if [ "$only" != sync ]; then
    "$WV" verify clone >/dev/null && "$WV" verify radosclone >/dev/null || { echo "bench_remote: a clone does not verify" >&2; exit 1; }
fi
# each file's name and hash, in name order (not find's: directory order
# differs between copies written in a different order)
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
copies="rcget curlget"; [ "$only" = sync ] && copies=curlget
for d in $copies; do
    cmp -s <(sums repo) <(sums $d) ||
        { echo "bench_remote: a baseline's copy ($d) differs from the repository" >&2; exit 1; }
done

med() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
M() { med "${T[$1]}"; }
mibs() { awk "BEGIN { printf \"%.0f\", $bytes / 1048576 / $1 }"; }
# cell NAME: "R MiB/s (S s)"; ratio BASE OURS: base time / our time
cell() { local v; v=$(M "$1"); printf '%s MiB/s (%.2f s)' "$(mibs "$v")" "$v"; }
ratio() { printf '%.2fx' "$(calc "$(M "$1") / $(M "$2")")"; }
if [ "$only" = sync ]; then
    echo
    echo "### Push and clone of a $(calc "$bytes / 1073741824") GiB repository, local radosgw (bluestore), medians of $runs"
    echo
    echo "| transfer | weightvault | 8 parallel curl | vs curl |"
    echo "|---|---|---|---|"
    echo "| push (PUT) | $(cell wv_push) | $(cell curl_put) | $(ratio curl_put wv_push) |"
    echo "| clone, durable (curl GETs to files + fsync of each) | $(cell wv_pull) | $(cell curl_file_sync) | $(ratio curl_file_sync wv_pull) |"
    echo "| clone vs curl GETs to files not synced | $(cell wv_pull) | $(cell curl_file) | $(ratio curl_file wv_pull) |"
    if [ -n "$before" ]; then
        echo "| push, before ($before) | $(cell wv_push0) | $(cell curl_put) | $(ratio curl_put wv_push0) |"
        echo "| clone, durable, before | $(cell wv_pull0) | $(cell curl_file_sync) | $(ratio curl_file_sync wv_pull0) |"
        echo
        echo "this build / before (> 1: this build is faster): push $(ratio wv_push0 wv_push), clone $(ratio wv_pull0 wv_pull)"
    fi
    echo
    echo "chunks checked on arrival by this build's clone: $chk"
    exit 0
fi
echo
echo "### Global storage: push and pull of a $(calc "$bytes / 1073741824") GiB repository, local radosgw (bluestore), medians of $runs"
echo
echo "| transfer | weightvault | raw parallel curl | aws s3 cp | rclone copy | vs curl | vs awscli | vs rclone |"
echo "|---|---|---|---|---|---|---|---|"
echo "| push (PUT) | $(cell wv_push) | $(cell curl_put) | $(cell aws_put) | $(cell rclone_put) | $(ratio curl_put wv_push) | $(ratio aws_put wv_push) | $(ratio rclone_put wv_push) |"
echo "| clone, durable (baselines + fsync of each file) | $(cell wv_pull) | $(cell curl_file_sync) | $(cell aws_get_sync) | $(cell rclone_get_sync) | $(ratio curl_file_sync wv_pull) | $(ratio aws_get_sync wv_pull) | $(ratio rclone_get_sync wv_pull) |"
echo "| clone vs copies not synced (to files) | $(cell wv_pull) | $(cell curl_file) | $(cell aws_get) | $(cell rclone_get) | $(ratio curl_file wv_pull) | $(ratio aws_get wv_pull) | $(ratio rclone_get wv_pull) |"
echo "| clone vs curl GETs to /dev/null | $(cell wv_pull) | $(cell curl_get) | | | $(ratio curl_get wv_pull) | | |"
echo "| push to rados:// | $(cell rados_push) | | | | | | $(ratio wv_push rados_push) of S3 push |"
echo "| clone from rados:// | $(cell rados_pull) | | | | | | $(ratio wv_pull rados_pull) of S3 clone |"
echo
fb=$(M inspect_bytes)
echo "| remote inspect of the $size MiB safetensors file | weightvault | curl download of the file | ratio |"
echo "|---|---|---|---|"
printf '| `wv inspect s3://...` | %.3f s, %s bytes fetched (%.4f %% of the file) | %.2f s | %s |\n' \
    "$(M wv_inspect)" "$fb" "$(calc "$fb * 100 / $(stat -c %s data.safetensors)")" "$(M curl_dl)" "$(ratio curl_dl wv_inspect)"
echo
echo "(ratios: baseline time / weightvault time, > 1 is faster than the baseline;"
echo " wv clone writes the repository to local disk and fsyncs it; bytes fetched: radosgw's get_b counter)"
