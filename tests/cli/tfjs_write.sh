#!/usr/bin/env bash
# tfjs_write.sh -- TF.js written by wv convert (OUT/model.json + shards)
# against tfjs itself (npm, installed into the build dir by
# tests/harness/npm.sh; skipped, exit 77, when the registry cannot be
# reached):
#   - a tfjs-layers model (tests/peer/peer_tfjs.js gen) through safetensors
#     and back to a directory: tf.loadLayersModel loads it and predict()
#     gives the source model's outputs bit for bit; its weights equal
#     tf.io.decodeWeights of the source;
#   - a Keras 3 .h5 (model_config): a layers model whose predict() equals
#     the Keras model's forward pass computed with NumPy from h5py's
#     weights;
#   - the quantized manifest (dequantised), a graph model, a Keras 2 .h5
#     fixture and an F16 set (float16 quantization), with small
#     --shard-size (tensors across shards): tf.io.decodeWeights of what wv
#     wrote equals what wv read; shard count and names.
# The writer's refusals need no npm: tests/cli/tfjs_reject.sh.
# Env: WV, PYTHON, WV_FIXTURES.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$(cd "$(dirname "$0")/../.." && pwd)
k2=${WV_FIXTURES:?}/h5/keras2-weights-dearj611/model_weights.h5
need_file "$k2"
. "$root/tests/harness/npm.sh"
npm_peers tfjs @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0 \
    @tensorflow/tfjs-layers@4.22.0
peer() {
    node "$root/tests/peer/peer_tfjs.js" "$@" >"$tmp/node.out" 2>"$tmp/node.err" ||
        { cat "$tmp/node.err"; fail "peer_tfjs.js $*"; }
}
peer gen "$tmp/gen"
n=0
g=$tmp/gen

# 1. A layers model: loadLayersModel + predict equal to the source's.
expect 0 "$WV" convert -q "$g/layers/model.json" "$tmp/l.safetensors"
expect 0 "$WV" convert -q "$tmp/l.safetensors" "$tmp/lw/"
[ -s "$tmp/lw/model.json" ] || fail "no model.json in the directory"
peer predict "$g/layers/model.json" "$tmp/src.bin"
peer predict "$tmp/lw/model.json" "$tmp/out.bin"
cmp -s "$tmp/src.bin" "$tmp/out.bin" ||
    fail "layers: predict() of the written model differs from the source's"
[ -s "$tmp/out.bin" ] && echo "layers: predict equal ($(stat -c %s "$tmp/out.bin") bytes)"
peer ref "$tmp/lw/model.json" "$tmp/lw.ref.safetensors"
same_tensors "$g/layers/ref.safetensors" "$tmp/lw.ref.safetensors"
expect 0 "$PYTHON" - "$tmp/lw/model.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["format"] == "layers-model", j["format"]
assert j["modelTopology"]["class_name"] == "Sequential"
assert j["convertedBy"].startswith("weightvault "), j["convertedBy"]
print("layers model.json:", sorted(j))
PY

# 1b. A Keras .h5 with its model_config (Keras 3.14, Sequential of Dense
# layers): a layers model; predict() equals the Keras model's forward pass
# computed with NumPy from the weights h5py reads (not wv).
k3=${WV_FIXTURES:?}/h5/keras3-mnist-shreyansh/model.h5
need_file "$k3"
expect 0 "$WV" convert -q "$k3" "$tmp/k3/"
peer predict "$tmp/k3/model.json" "$tmp/k3.bin"
expect 0 "$PYTHON" - "$k3" "$tmp/k3.bin" "$tmp/k3/model.json" <<'PY'
import json, sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
cfg = json.loads(f.attrs["model_config"])
x = np.sin(np.arange(1, 4 * 28 * 28 + 1, dtype=np.float64)).astype(np.float32)
h = x.reshape(4, -1)
acts = {"relu": lambda v: np.maximum(v, 0), "linear": lambda v: v,
        "softmax": lambda v: np.exp(v - v.max(1, keepdims=True)) /
                             np.exp(v - v.max(1, keepdims=True)).sum(1, keepdims=True)}
for layer in cfg["config"]["layers"]:
    if layer["class_name"] != "Dense":
        continue
    n = layer["config"]["name"]
    g = f["model_weights"][n][n]
    h = acts[layer["config"]["activation"]](h @ g["kernel"][()] + g["bias"][()])
got = np.fromfile(sys.argv[2], np.float32).reshape(h.shape)
assert np.allclose(got, h, rtol=1e-5, atol=1e-6), np.abs(got - h).max()
names = [w["name"] for w in json.load(open(sys.argv[3]))["weightsManifest"][0]["weights"]]
assert names[:2] == ["dense/kernel", "dense/bias"] and len(names) == 8, names
print("keras h5: tfjs-layers predict equals NumPy's forward pass (max diff %g)"
      % np.abs(got - h).max())
PY
cat "$tmp/out"

# 2. decodeWeights of what wv wrote equals what wv read.
for m in "$g/quant/manifest.json" "$g/graph/model.json" "$k2"; do
    d=$tmp/w$((++n))
    expect 0 "$WV" convert -q "$m" "$d/" --shard-size 1000
    [ -s "$d/model.json" ] || { fail "$m: no $d/model.json"; continue; }
    peer ref "$d/model.json" "$d.ref.safetensors"
    same_tensors "$m" "$d.ref.safetensors"
    same_tensors "$m" "$d/model.json"
done
shards=$(ls "$tmp"/w3/group1-shard*.bin | wc -l)
tot=$(cat "$tmp"/w3/group1-shard*.bin | wc -c)
[ "$shards" = $(((tot + 999) / 1000)) ] || fail "h5: $shards shards for $tot bytes"
[ -s "$tmp/w3/group1-shard1of$shards.bin" ] || fail "shard names"
expect 0 "$PYTHON" - "$tmp/w3/model.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["format"] == "weights-only" and j["generatedBy"].startswith("weightvault")
print("weights-only model.json:", sorted(j))
PY
# the default shard size is 4 MiB
expect 0 "$PYTHON" - "$tmp/big.safetensors" <<'PY'
import sys, numpy as np
from stwrite import write_st
write_st(sys.argv[1], {"a": np.arange(1 << 20, dtype="<f4"),
                       "h": np.linspace(-3, 3, 1000).astype("<f2"),
                       "i": np.arange(-5, 5, dtype="<i4"),
                       "b": np.array([True, False, True])})
PY
expect 0 "$WV" convert -q "$tmp/big.safetensors" "$tmp/big/model.json"
[ "$(ls "$tmp"/big/*.bin | wc -l)" = 2 ] || fail "4 MiB + a bit: not 2 shards"
[ "$(stat -c %s "$tmp/big/group1-shard1of2.bin")" = 4194304 ] || fail "shard 1 is not 4 MiB"
grep -q '"name": "h", "shape": \[1000\], "dtype": "float32", "quantization": {"dtype": "float16"}' \
    "$tmp/big/model.json" || fail "F16: not float16-quantized float32"
peer ref "$tmp/big/model.json" "$tmp/big.ref.safetensors"
expect 0 "$WV" convert -q "$tmp/big.safetensors" "$tmp/big32.safetensors" --dtype F32
same_tensors "$tmp/big32.safetensors" "$tmp/big.ref.safetensors"
finish
