#!/bin/bash
# Run the I/O benchmark of the Foundation issue and keep its table.
#
#   bash bench/run.sh [BUILD_DIR] [extra bench_io options, e.g. --runs 7]
#
# Builds nothing: build first, e.g.
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j2
# Scratch files go to bench-out/ in the repository (same filesystem as the
# tree, gitignored); the table is written to bench-out/results.md and the
# big files are deleted at the end.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-build}
shift || true
case $build in /*) ;; *) build=$root/$build ;; esac

for f in "$build/bench_io" "$build/wv"; do
    [ -x "$f" ] || { echo "run.sh: $f not found; build first" >&2; exit 2; }
done

out=$root/bench-out
mkdir -p "$out"
torch_args=(--torch-script "$root/bench/torch_baseline.py" --python /usr/bin/python3)
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    echo "run.sh: /usr/bin/python3 has no torch/numpy; torch rows will be n/a" >&2
    torch_args=(--no-torch)
fi

start=$(date +%s)
"$build/bench_io" --dir "$out" --wv "$build/wv" "${torch_args[@]}" "$@" \
    | tee "$out/results.md.tmp"
end=$(date +%s)
printf -- '- wall time of the whole benchmark: %d s\n' $((end - start)) \
    | tee -a "$out/results.md.tmp"
mv "$out/results.md.tmp" "$out/results.md"
rm -f "$out"/*.safetensors "$out"/*.pt "$out"/*.bin "$out"/.*.wv-tmp-*
echo "run.sh: table saved to $out/results.md" >&2

# The repository benchmark of issue 4 (bench_repo): its table goes to
# bench-out/results-repo.md. Options for it only: BENCH_REPO_OPTS, e.g.
# BENCH_REPO_OPTS="--size-mib 64 --runs 2"; fixtures: WV_FIXTURES.
if [ -x "$build/bench_repo" ]; then
    # shellcheck disable=SC2086
    "$build/bench_repo" --dir "$out/repo-bench" \
        --fixtures "${WV_FIXTURES:-$root/tests/fixtures}" \
        ${BENCH_REPO_OPTS:-} | tee "$out/results-repo.md.tmp"
    mv "$out/results-repo.md.tmp" "$out/results-repo.md"
    rm -rf "$out/repo-bench"
    echo "run.sh: repository table saved to $out/results-repo.md" >&2
fi

# Python package (issue 7): weightvault.save/load vs torch.save/torch.load.
if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    WEIGHTVAULT_LIB="$build/libweightvault.so" /usr/bin/python3 \
        "$root/bench/bench_python.py" --dir "$out" | tee -a "$out/results.md"
fi

# The conversion benchmark of the framework-formats issue: a 1 GiB .pth
# written by torch.save converted to safetensors, against torch.load +
# torch.save in /usr/bin/python3 (bench/bench_convert.py; needs torch).
# Its table is appended to the same results file.
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    /usr/bin/python3 "$root/bench/bench_convert.py" "$build/wv" "$out" \
        | tee -a "$out/results.md"
    echo "run.sh: bench_convert table appended to $out/results.md" >&2
else
    echo "run.sh: /usr/bin/python3 has no torch; bench_convert skipped" >&2
fi

# Global storage (issue 5): push and pull of a 1 GiB repository to a local
# single-node Ceph (its own cluster, bluestore, ports apart from a
# development cluster) against aws s3 cp and raw parallel curl
# (bench/bench_remote.sh; root only, installs Debian's ceph and awscli).
if [ "$(id -u)" = 0 ] && [ "${BENCH_REMOTE:-1}" = 1 ]; then
    bash "$root/bench/bench_remote.sh" "$build" "${BENCH_REMOTE_MIB:-1024}" \
        "${BENCH_REMOTE_RUNS:-3}" | tee "$out/results-remote.md"
    echo "run.sh: global storage table saved to $out/results-remote.md" >&2
fi
