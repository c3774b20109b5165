#!/bin/bash
# bench_delta.sh -- storage of a real training run: delta chunks against
# the parent checkpoint vs whole chunks (weightvault today), and borg /
# restic when installed (scripts/deps.sh bench), on trajectories made here
# with Debian's torch (bench/trajectory.py: a GPT-style model trained on
# CPU with Adam, weights and optimizer state, F32 and BF16; no downloads).
#
#   bash bench/bench_delta.sh [BUILD_DIR]
#
# The default run is small (3.4M parameters, 8 checkpoints); WV_BENCH_FULL=1
# runs the benchmark's size (33.6M parameters, 20 checkpoints). Prints, per
# dtype, the bytes each checkpoint after the first added to each store, the
# wall and CPU time of the commits (delta / whole; one `wv commit` per
# checkpoint, and all from one process: bench/delta_inproc.py) and of a
# checkout of the newest checkpoint through its chain (delta / whole), and
# the codecs' throughput per core on the last two checkpoints
# (bench_codec), as Markdown tables. Scratch
# goes to bench-out/delta (deleted at the end, the table kept in
# bench-out/delta.md); the trajectories to bench-out/delta-traj, kept
# and reused when WV_BENCH_KEEP_TRAJ=1 (made again when their parameters
# differ). WV_BENCH_K=K: the keyframe interval of the delta repository
# (default 4); WV_BENCH_DTYPES="f32": only those trajectories.
# Build first (cmake --build build).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
wv=$build/wv
[ -x "$wv" ] || { echo "bench_delta.sh: $wv not found; build first" >&2; exit 2; }
py=/usr/bin/python3
out=$root/bench-out/delta
rm -rf "$out"
mkdir -p "$out"
lr=${WV_BENCH_LR:-3e-4}

now() { date +%s.%N; }
# run a command, adding its CPU seconds (user + system) to the variable
# named by $1
cpu() { local v=$1 f; shift; f=$(mktemp); /usr/bin/time -f '%U %S' -o "$f" "$@" >/dev/null; printf -v "$v" '%s' "$(awk -v t="${!v}" '{print t + $1 + $2}' "$f")"; rm -f "$f"; }
# total bytes of the paths that exist
size() { local p t=0 b; for p in "$@"; do [ -e "$p" ] && b=$(du -sb "$p" | cut -f1) && t=$((t + b)); done; echo $t; }
# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# archive_pass STORE ARRAY CMD: every checkpoint of the trajectory archived
# in turn by `CMD INDEX FILE` (run in its directory, the file in the page
# cache first), the bytes each added to STORE into ARRAY[INDEX]; STORE is
# deleted afterwards
archive_pass() {
    local store=$1 arr=$2 cmd=$3 i f s0
    for i in $(seq 0 $((n - 1))); do
        f=${files[$i]}
        cat "$f" >/dev/null
        s0=$(size "$store")
        (cd "$traj" && "$cmd" "$i" "$(basename "$f")" >/dev/null 2>&1)
        printf -v "$arr[$i]" '%s' $(( $(size "$store") - s0 ))
    done
    rm -rf "$store"
}
borg_add() { borg create --compression zstd,3 "$out/borg-$dtype::s$1" "$2"; }
restic_add() { restic backup -q -r "$out/restic-$dtype" "$2"; }

have_borg=0; command -v borg >/dev/null && have_borg=1
have_restic=0; command -v restic >/dev/null && have_restic=1
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export RESTIC_PASSWORD=bench

report=$root/bench-out/delta.md
{
echo "## Delta chunks on a trained trajectory ($(date -u +%Y-%m-%dT%H:%MZ), lr $lr)"
echo
} >"$report"

for dtype in ${WV_BENCH_DTYPES:-f32 bf16}; do
    traj=$root/bench-out/delta-traj/$dtype
    want="$dtype $lr ${WV_BENCH_FULL:-0}"
    if [ "$(cat "$traj/params" 2>/dev/null)" != "$want" ] || [ ! -s "$traj/info" ]; then
        rm -rf "$traj"
        mkdir -p "$traj"
        "$py" "$root/bench/trajectory.py" "$traj" --dtype "$dtype" --lr "$lr" >"$traj/info" 2>/dev/null
        echo "$want" >"$traj/params"
    fi
    info=$(cat "$traj/info")
    files=("$traj"/step_*.safetensors)
    n=${#files[@]}
    raw=$(stat -c %s "${files[0]}")
    dl=$out/delta-$dtype; wh=$out/whole-$dtype
    "$wv" init "$dl" --delta-keyframe "${WV_BENCH_K:-4}" >/dev/null
    "$wv" init "$wh" --no-delta >/dev/null
    declare -a add_d=() add_w=() add_b=() add_r=()
    t_d=0; t_w=0; c_d=0; c_w=0
    # each store in turn, deleted when measured (the full size would not
    # fit on the disk all at once)
    for i in $(seq 0 $((n - 1))); do
        f=${files[$i]}
        # the file in the page cache for every tool alike
        cat "$f" >/dev/null
        s0=$(size "$dl/packs" "$dl/index" "$dl/manifests")
        a=$(now); cpu c_d "$wv" commit -q "$dl" "$f"; b=$(now)
        t_d=$(echo "$t_d + $b - $a" | bc)
        add_d[$i]=$(( $(size "$dl/packs" "$dl/index" "$dl/manifests") - s0 ))
        s0=$(size "$wh/packs" "$wh/index" "$wh/manifests")
        a=$(now); cpu c_w "$wv" commit -q "$wh" "$f"; b=$(now)
        t_w=$(echo "$t_w + $b - $a" | bc)
        add_w[$i]=$(( $(size "$wh/packs" "$wh/index" "$wh/manifests") - s0 ))
    done
    # checkout of the newest checkpoint, median of 3
    cd_d=(); cd_w=(); k_d=0; k_w=0
    for k in 1 2 3; do
        a=$(now); cpu k_d "$wv" checkout -q "$dl@latest" -o "$out/x.safetensors"; b=$(now)
        cd_d+=("$(echo "$b - $a" | bc)"); rm -f "$out/x.safetensors"
        a=$(now); cpu k_w "$wv" checkout -q "$wh@latest" -o "$out/x.safetensors"; b=$(now)
        cd_w+=("$(echo "$b - $a" | bc)"); rm -f "$out/x.safetensors"
    done
    stat=$("$wv" log --stat "$dl" -n 1 | grep -E '^(stored|codecs):' | sed 's/^/    /')
    K=$(grep -o '"delta_keyframe": [0-9]*' "$dl/config" | grep -o '[0-9]*$')
    rm -rf "$dl" "$wh"
    # the same commits from one process, one open repository each (the
    # Checkpointer's way: delta bases from the handle's last commit)
    "$wv" init "$out/ip-d-$dtype" --delta-keyframe "${WV_BENCH_K:-4}" >/dev/null
    "$wv" init "$out/ip-w-$dtype" --no-delta >/dev/null
    inproc=$(WEIGHTVAULT_LIB="$build/libweightvault.so" PYTHONPATH="$root/python" \
        "$py" "$root/bench/delta_inproc.py" "$out/ip-d-$dtype" "$out/ip-w-$dtype" "${files[@]}")
    rm -rf "$out/ip-d-$dtype" "$out/ip-w-$dtype"
    if [ $have_borg = 1 ] && ! borg init -e none "$out/borg-$dtype" >/dev/null 2>&1; then
        echo "bench_delta.sh: borg init failed; no borg row" >&2; have_borg=0
    fi
    [ $have_borg = 1 ] && archive_pass "$out/borg-$dtype" add_b borg_add
    if [ $have_restic = 1 ] && ! restic init --repository-version 2 -r "$out/restic-$dtype" >/dev/null 2>&1; then
        echo "bench_delta.sh: restic init failed; no restic row" >&2; have_restic=0
    fi
    [ $have_restic = 1 ] && archive_pass "$out/restic-$dtype" add_r restic_add
    # every checkpoint after the first
    sd=0; sw=0; sb=0; sr=0
    for i in $(seq 1 $((n - 1))); do
        sd=$((sd + add_d[i])); sw=$((sw + add_w[i]))
        [ $have_borg = 1 ] && sb=$((sb + add_b[i]))
        [ $have_restic = 1 ] && sr=$((sr + add_r[i]))
    done
    m=$((n - 1))
    md=$(median "${cd_d[@]}"); mw=$(median "${cd_w[@]}")
    {
    echo "### $dtype: $info"
    echo
    echo "Checkpoint file: $raw bytes. Bytes added per checkpoint after the first (mean of $m):"
    echo
    echo "| store | bytes/checkpoint | ratio to raw | vs weightvault whole |"
    echo "|---|---|---|---|"
    printf '| weightvault delta (K=%s) | %d | %.3f | %.3f |\n' "$K" $((sd / m)) "$(echo "$sd / $m / $raw" | bc -l)" "$(echo "$sd / $sw" | bc -l)"
    printf '| weightvault whole (today) | %d | %.3f | 1.000 |\n' $((sw / m)) "$(echo "$sw / $m / $raw" | bc -l)"
    [ $have_borg = 1 ] && printf '| borg %s (zstd,3) | %d | %.3f | %.3f |\n' "$(borg --version | awk '{print $2}')" $((sb / m)) "$(echo "$sb / $m / $raw" | bc -l)" "$(echo "$sb / $sw" | bc -l)"
    [ $have_restic = 1 ] && printf '| restic %s (v2, auto) | %d | %.3f | %.3f |\n' "$(restic version | awk '{print $2}')" $((sr / m)) "$(echo "$sr / $m / $raw" | bc -l)" "$(echo "$sr / $sw" | bc -l)"
    echo
    printf -- '- per checkpoint, delta: %s\n' "${add_d[*]}"
    printf -- '- per checkpoint, whole: %s\n' "${add_w[*]}"
    printf -- '- commit wall time of all %d (one `wv commit` each): delta %.2f s, whole %.2f s (ratio %.2f); CPU %.2f s, %.2f s (ratio %.2f)\n' "$n" "$t_d" "$t_w" "$(echo "$t_d / $t_w" | bc -l)" "$c_d" "$c_w" "$(echo "$c_d / $c_w" | bc -l)"
    printf -- '- %s\n' "$inproc"
    printf -- '- checkout of the newest (median of 3): delta %.3f s, whole %.3f s (speed ratio %.2f); CPU of the 3: %.2f s, %.2f s (ratio %.2f)\n' "$md" "$mw" "$(echo "$mw / $md" | bc -l)" "$k_d" "$k_w" "$(echo "$k_d / $k_w" | bc -l)"
    echo
    } | tee -a "$report"
    echo "$stat"
    # the codecs alone, one thread, on the last two checkpoints
    if [ -x "$build/bench_codec" ]; then
        elem=4; [ "$dtype" = bf16 ] && elem=2
        { "$build/bench_codec" "${files[n - 2]}" "${files[n - 1]}" $elem; echo; } | tee -a "$report"
    fi
done
rm -rf "$out"
[ "${WV_BENCH_KEEP_TRAJ:-0}" = 1 ] || rm -rf "$root/bench-out/delta-traj"
echo "bench_delta.sh: table saved to $report" >&2
