#!/bin/bash
# bench_restore.sh -- restore speed (issue 20): `wv checkout REPO -o FILE`
# against `restic restore` and `borg extract` of the same file.
#
#   bash bench/bench_restore.sh [BUILD_DIR] [--runs N] [--size-mib M]
#                               [--steps S] [--keep]
#
# A deterministic F32 set of M MiB (default 1024; 40 tensors, numpy's
# seeded normal generator) is the first of S checkpoints (default 1), each
# step adding 1e-3 * randn to every weight (the issue's training run). Every
# checkpoint is written as one safetensors file and stored three ways, from
# Debian's packages (scripts/deps.sh bench): `wv commit` (default zstd-bg),
# `restic backup` (repository v2, compression auto, password "bench"),
# `borg create --compression zstd,3` (no encryption). Then the newest
# checkpoint is restored N times (default 5) by each tool in turn, the order
# rotating each round, `sync` before each, the output removed first:
#
#   wv checkout REPO@latest -o OUT.safetensors (durable: fsync + rename)
#   restic restore latest --target DIR (the snapshot of stepS alone)
#   borg extract REPO::stepS PATH (in an empty directory)
#
# each under /usr/bin/time -v: wall seconds and peak RSS. Every restored
# file is compared with the original once (cmp). The table (medians, the
# ratios restic/wv and borg/wv, min..max) goes to stdout and to
# bench-out/restore.md. Scratch lives in bench-out/restore (deleted at
# the end unless --keep). Needs about 3 x S x M MiB of disk plus M.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=build
runs=5 size=1024 steps=1 keep=0
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --size-mib) size=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    -*) echo "bench_restore.sh: unknown option $1" >&2; exit 2 ;;
    *) build=$1; shift ;;
    esac
done
case $build in /*) ;; *) build=$root/$build ;; esac
wv=$build/wv
for t in "$wv" /usr/bin/time restic borg /usr/bin/python3; do
    command -v "$t" >/dev/null || {
        echo "bench_restore.sh: $t not found (build first; scripts/deps.sh bench)" >&2
        exit 2
    }
done

out=$root/bench-out
work=$out/restore
rm -rf "$work"
mkdir -p "$work/data"
cleanup() { [ "$keep" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
export RESTIC_PASSWORD=bench RESTIC_REPOSITORY=$work/restic BORG_PASSPHRASE=
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export BORG_BASE_DIR=$work/borg-home

echo "== making $steps checkpoint(s) of $size MiB and storing them (wv, restic, borg)"
"$wv" init "$work/wv" >/dev/null
restic init -q
borg init -e none "$work/borg"
/usr/bin/python3 - "$work/data" "$size" "$steps" <<'EOF'
import json, struct, sys
import numpy as np
out, mib, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = 40
per = (mib << 20) // n // 4 // 256 * 256
rng = np.random.default_rng(20)
ws = [rng.standard_normal(per, dtype=np.float32) for _ in range(n)]
for s in range(1, steps + 1):
    if s > 1:
        for w in ws:
            w += np.float32(1e-3) * rng.standard_normal(per, dtype=np.float32)
    hdr, off = {}, 0
    for i in range(n):
        hdr[f"layers.{i:02d}.weight"] = {"dtype": "F32", "shape": [per // 256, 256],
                                         "data_offsets": [off, off + per * 4]}
        off += per * 4
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(f"{out}/step{s}.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for w in ws:
            f.write(w.tobytes())
EOF
for s in $(seq 1 "$steps"); do
    f=$work/data/step$s.safetensors
    "$wv" commit "$work/wv" "$f" -q >/dev/null
    (cd "$work/data" && restic backup -q "step$s.safetensors" >/dev/null)
    (cd "$work/data" && borg create --compression zstd,3 "$work/borg::step$s" "step$s.safetensors")
    [ "$s" = "$steps" ] || rm -f "$f"
done
orig=$work/data/step$steps.safetensors
name=step$steps.safetensors

# One timed restore: sets t_wall, t_rss (KiB); the restored file's path in t_file.
timed() {
    local tool=$1 log=$work/time.log
    rm -rf "$work/o-$tool"
    mkdir -p "$work/o-$tool"
    sync
    case $tool in
    wv) /usr/bin/time -v -o "$log" "$wv" checkout "$work/wv@latest" \
            -o "$work/o-wv/$name" -q
        t_file=$work/o-wv/$name ;;
    restic) /usr/bin/time -v -o "$log" restic -q restore latest \
            --target "$work/o-restic" >/dev/null
        t_file=$(find "$work/o-restic" -name "$name" | head -1) ;;
    borg) (cd "$work/o-borg" && /usr/bin/time -v -o "$log" borg extract \
            "$work/borg::step$steps" "$name")
        t_file=$work/o-borg/$name ;;
    esac
    t_wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0
        for (i = 1; i <= n; i++) s = s * 60 + p[i]
        print s }' "$log")
    t_rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$log")
}

declare -A walls rsss
tools=(wv restic borg)
echo "== $runs rounds of wv checkout, restic restore, borg extract (order rotating)"
for r in $(seq 1 "$runs"); do
    for k in 0 1 2; do
        tool=${tools[$(((r + k) % 3))]}
        timed "$tool"
        if [ "$r" = 1 ]; then
            cmp -s "$t_file" "$orig" || {
                echo "bench_restore.sh: $tool restored a different file" >&2
                exit 1
            }
        fi
        walls[$tool]+="$t_wall "
        rsss[$tool]+="$t_rss "
        printf '  round %d %-6s %6.2f s  %7d KiB\n' "$r" "$tool" "$t_wall" "$t_rss"
        rm -rf "$work/o-$tool"
    done
done

# median, min and max of a list of numbers
stats() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1}
    END {m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
         printf "%s %s %s", m, a[1], a[NR]}'; }
read -r wv_med wv_min wv_max <<<"$(stats <<<"${walls[wv]}")"
{
    echo "### Restore of a ${size} MiB checkpoint (newest of $steps), $runs rounds, $(date -u +%Y-%m-%d)"
    echo
    echo "$(nproc) CPUs, $(uname -r); $("$wv" --version 2>/dev/null | head -1), $(restic version | cut -d' ' -f1-2), $(borg --version)"
    echo
    echo "| tool | wall median (s) | min..max | vs wv (median ratio) | peak RSS median (MiB) |"
    echo "|---|---|---|---|---|"
    for tool in wv restic borg; do
        read -r med mn mx <<<"$(stats <<<"${walls[$tool]}")"
        read -r rss _ _ <<<"$(stats <<<"${rsss[$tool]}")"
        awk -v t="$tool" -v m="$med" -v a="$mn" -v b="$mx" -v w="$wv_med" -v r="$rss" \
            'BEGIN {printf "| %s | %.2f | %.2f..%.2f | %.2fx | %.0f |\n", t, m, a, b, m / w, r / 1024}'
    done
    echo
    echo "(ratio = that tool's median wall time / wv's: above 1, wv is faster)"
} | tee "$out/restore.md"
