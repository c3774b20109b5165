#!/usr/bin/env bash
# onnx_ort.sh -- ONNX models written over a template, run by
# onnxruntime-node (npm, installed into the build dir by
# tests/harness/npm.sh; skipped, exit 77, when the registry cannot be
# reached): for every libonnx-testdata model with test inputs, the
# template and the same weights written over it give the same outputs bit
# for bit, and one initializer changed (x*2+1) changes them; a MatMul+Add
# model with changed weights gives NumPy's output; a model written with
# external data runs (onnxruntime reads OUT.data). Counts are printed.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$(cd "$(dirname "$0")/../.." && pwd)
data=/usr/share/libonnx-testdata/data
[ -r "$data/pytorch-converted/test_Conv2d/model.onnx" ] ||
    { echo "FAIL: missing input $data (libonnx-testdata, scripts/deps.sh check)"; exit 1; }
"$PYTHON" -c 'import onnx' 2>/dev/null ||
    { echo "FAIL: missing input python3-onnx (scripts/deps.sh check)"; exit 1; }
# onnxruntime-node's install script fetches CUDA binaries from GitHub: the
# package itself holds the CPU runtime, so scripts are not run.
. "$root/tests/harness/npm.sh"
NPM_PEER_FLAGS=--ignore-scripts npm_peers ort onnxruntime-node@1.20.1
lib=$(cd "$(dirname "$WV")" && pwd)/libweightvault.so
pyenv=(env WEIGHTVAULT_LIB="$lib"
       PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}")
if nm -D --undefined-only "$lib" 2>/dev/null | grep -q ' __asan_init'; then
    rt=$(ldd "$lib" | awk '/libasan\.so/ {print $3; exit}')
    [ -n "$rt" ] || rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    pyenv+=(LD_PRELOAD="$rt" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
fi
peer=("${pyenv[@]}" "$PYTHON" "$root/tests/peer/peer_onnx_write.py")

expect 0 "${peer[@]}" real "$data" "$tmp/w"
cat "$tmp/out"
expect 0 "${peer[@]}" made "$tmp/w"
expect 0 node "$root/tests/peer/peer_ort.js" "$tmp/w"
[ -s "$tmp/w/ort-results.json" ] || { cat "$tmp/err"; fail "peer_ort.js"; finish; }
expect 0 "${peer[@]}" ortcheck "$tmp/w"
cat "$tmp/out"
finish
