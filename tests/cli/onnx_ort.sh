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
need_onnx_peer
wv_pyenv
# onnxruntime-node's install script fetches CUDA binaries from GitHub: the
# package itself holds the CPU runtime, so scripts are not run.
. "$root/tests/harness/npm.sh"
NPM_PEER_FLAGS=--ignore-scripts npm_peers ort onnxruntime-node@1.20.1
peer=(wvpy "$root/tests/peer/peer_onnx_write.py")

# only the models onnxruntime runs (onnx_write.sh checks every round trip)
expect 0 "${peer[@]}" ort "$data" "$tmp/w"
cat "$tmp/out"
expect 0 node "$root/tests/peer/peer_ort.js" "$tmp/w"
[ -s "$tmp/w/ort-results.json" ] || { cat "$tmp/err"; fail "peer_ort.js"; finish; }
expect 0 "${peer[@]}" ortcheck "$tmp/w"
cat "$tmp/out"
finish
