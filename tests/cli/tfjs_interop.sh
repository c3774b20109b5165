#!/usr/bin/env bash
# tfjs_interop.sh -- TF.js models (model.json / weights manifest + .bin
# shards) against tfjs itself, installed from npm into the build directory
# at test time (tests/harness/npm.sh; nothing vendored; skipped, exit 77,
# only when the npm registry cannot be reached):
#   - models written by tests/peer/peer_tfjs.js: a tfjs-layers model saved
#     through model.save() with its weights cut into 3 shards inside
#     tensors; a bare manifest of every uint8 value under 40 (scale, min)
#     pairs, every uint16 value, every float16 bit pattern, int32 from
#     uint8/uint16, plain float32/int32/bool, a tensor across two shards;
#     a graph model with string weights. Every tensor equals what
#     tf.io.decodeWeights gives, bit for bit (wv inspect, wv convert,
#     Python weightvault.load);
#   - real models shipped in an npm package (@vladmandic/face-api's
#     model/*-weights_manifest.json, uint8-quantized), equal to
#     decodeWeights;
#   - --keep-quantized, metadata (topology, strings), verify, commit +
#     checkout.
# The refusals need no npm: tests/cli/tfjs_reject.sh.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wv_pyenv

# 0. The peers, from npm, kept in the build dir (tests/harness/npm.sh).
. "$root/tests/harness/npm.sh"
npm_peers tfjs @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0 \
    @tensorflow/tfjs-layers@4.22.0
face=$NPM_DIR/vladmandic-face-api-1.7.15.tgz
if [ ! -s "$face" ]; then
    (cd "$NPM_DIR" && npm pack --prefer-offline --loglevel=error \
        @vladmandic/face-api@1.7.15 >"$tmp/npm.log" 2>&1) ||
        { cat "$tmp/npm.log"; fail "npm pack @vladmandic/face-api failed"; finish; }
fi
peer() {
    node "$root/tests/peer/peer_tfjs.js" "$@" 2>"$tmp/node.err" ||
        { cat "$tmp/node.err"; fail "peer_tfjs.js $*"; }
}

# 1. Models written by tfjs; every tensor as decodeWeights gives it.
peer gen "$tmp/gen"
g=$tmp/gen
for m in "$g/layers/model.json" "$g/quant/manifest.json" \
         "$g/graph/model.json"; do
    ref=$(dirname "$m")/ref.safetensors
    same_tensors "$m" "$ref"
    expect 0 "$WV" verify "$m"
    has "^ok: .*tfjs"
    expect 0 "$WV" convert "$m" "$tmp/c.safetensors"
    same_tensors "$ref" "$tmp/c.safetensors"
    expect 0 wvpy - "$m" "$ref" <<'PY'
import sys, numpy as np, weightvault as wv
a, b = wv.load(sys.argv[1]), wv.load(sys.argv[2])
assert sorted(a) == sorted(b), (sorted(a), sorted(b))
for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    assert a[k].tobytes() == b[k].tobytes(), k
print(len(a), "tensors equal")
PY
done
expect 0 "$WV" inspect "$g/quant/manifest.json"
has "f16/all  *F32  *\[65536\]"
has "i32/u16  *I32"
has "plain/bool  *BOOL  *\[2, 3\]"
# tensors read across shard boundaries: layers (3 shards), quant group 1
[ "$(ls "$g"/layers/*.bin | wc -l)" = 3 ] || fail "layers: not 3 shards"

# 2. Metadata: the topology, the manifest's other keys, strings.
expect 0 "$WV" inspect --json "$g/layers/model.json"
pyjson 'json.loads(d["metadata"]["tfjs.modelTopology"])["class_name"] == "Sequential" and d["metadata"]["tfjs.format"] == "layers-model" and d["format"] == "tfjs"'
expect 0 "$WV" inspect --json "$g/graph/model.json"
pyjson 'json.loads(d["metadata"]["tfjs.modelTopology"])["node"][2]["op"] == "MatMul" and json.loads(d["metadata"]["tfjs.string.vocab"]) == {"shape": [3], "values": ["alpha", "b\u00e9ta", ""]} and d["metadata"]["tfjs.string.note"] == "scalar text" and len(d["tensors"]) == 2'
expect 0 "$WV" convert "$g/layers/model.json" "$tmp/l.safetensors"
expect 0 "$WV" inspect --json "$tmp/l.safetensors"
pyjson '"tfjs.modelTopology" in d["metadata"]'

# 3. --keep-quantized: the stored values, with scale and min beside them.
expect 0 "$WV" inspect --json --keep-quantized "$g/quant/manifest.json"
pyjson '{t["name"]: t["dtype"] for t in d["tensors"]}["u8/0"] == "U8" and {t["name"]: t["dtype"] for t in d["tensors"]}["u16/1"] == "U16" and {t["name"]: t["dtype"] for t in d["tensors"]}["f16/all"] == "F16" and json.loads(d["metadata"]["tfjs.quantization.u8/3"])["dtype"] == "uint8" and "scale" in json.loads(d["metadata"]["tfjs.quantization.u8/3"])'
expect 0 "$WV" convert --keep-quantized "$g/quant/manifest.json" \
    "$tmp/q.safetensors"
expect 0 wvpy - "$tmp/q.safetensors" "$g/quant/manifest.json" <<'PY'
import json, sys, numpy as np, weightvault as wv
q = wv.load(sys.argv[1])
spec = {w["name"]: w for grp in json.load(open(sys.argv[2]))
        for w in grp["weights"]}
assert (q["u16/0"].ravel() == np.arange(65536)).all()
assert (q["f16/all"].view(np.uint16).ravel() == np.arange(65536)).all()
print("kept quantized:", spec["u8/0"]["quantization"]["dtype"])
PY

# 4. Real models from an npm package, against decodeWeights.
tar -xzf "$face" -C "$tmp" package/model ||
    fail "cannot unpack @vladmandic/face-api"
n=0
for m in "$tmp"/package/model/*-weights_manifest.json; do
    peer ref "$m" "$tmp/real-ref.safetensors"
    same_tensors "$m" "$tmp/real-ref.safetensors"
    n=$((n + 1))
done
[ "$n" -ge 7 ] || fail "only $n real models"
echo "real models compared: $n"
expect 0 "$WV" init "$tmp/repo"
m=$tmp/package/model/tiny_face_detector_model-weights_manifest.json
expect 0 "$WV" commit "$tmp/repo" "$m"
expect 0 "$WV" checkout "$tmp/repo" -o "$tmp/co.safetensors"
same_tensors "$m" "$tmp/co.safetensors"

finish
