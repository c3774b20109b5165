#!/usr/bin/env bash
# tfjs_interop.sh -- TF.js models (model.json / weights manifest + .bin
# shards) against tfjs itself, installed from npm into a temporary
# directory at test time (nothing vendored; skipped, exit 77, only when the
# npm registry cannot be reached):
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
#     checkout;
#   - refusals, one per rule, on files made here.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$(cd "$(dirname "$0")/../.." && pwd)
lib=$(cd "$(dirname "$WV")" && pwd)/libweightvault.so
pyenv=(env WEIGHTVAULT_LIB="$lib"
       PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}")
if nm -D --undefined-only "$lib" 2>/dev/null | grep -q ' __asan_init'; then
    rt=$(ldd "$lib" | awk '/libasan\.so/ {print $3; exit}')
    [ -n "$rt" ] || rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    pyenv+=(LD_PRELOAD="$rt" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
fi

# 0. The peers, from npm (its cache makes a second run offline-capable).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIP: node/npm not installed"
    exit 77
fi
mkdir -p "$tmp/node"
(cd "$tmp/node" && echo '{"private": true}' >package.json &&
    npm install --prefer-offline --no-audit --no-fund --loglevel=error \
        @tensorflow/tfjs-core@4.22.0 @tensorflow/tfjs-backend-cpu@4.22.0 \
        @tensorflow/tfjs-layers@4.22.0 >"$tmp/npm.log" 2>&1 &&
    npm pack --prefer-offline --loglevel=error @vladmandic/face-api@1.7.15 \
        >>"$tmp/npm.log" 2>&1)
npm_rc=$?
if [ $npm_rc -ne 0 ]; then
    if ! (cd "$tmp/node" && timeout 60 npm ping >/dev/null 2>&1); then
        echo "SKIP: the npm registry cannot be reached"
        exit 77
    fi
    cat "$tmp/npm.log"
    fail "npm install failed with the registry reachable"
    finish
fi
export NODE_PATH=$tmp/node/node_modules
peer() {
    node "$root/tests/peer/peer_tfjs.js" "$@" 2>"$tmp/node.err" ||
        { cat "$tmp/node.err"; fail "peer_tfjs.js $*"; }
}
py() { "${pyenv[@]}" "$PYTHON" "$@"; }

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
    expect 0 py - "$m" "$ref" <<'PY'
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
expect 0 py - "$tmp/q.safetensors" "$g/quant/manifest.json" <<'PY'
import json, sys, numpy as np, weightvault as wv
q = wv.load(sys.argv[1])
spec = {w["name"]: w for grp in json.load(open(sys.argv[2]))
        for w in grp["weights"]}
assert (q["u16/0"].ravel() == np.arange(65536)).all()
assert (q["f16/all"].view(np.uint16).ravel() == np.arange(65536)).all()
print("kept quantized:", spec["u8/0"]["quantization"]["dtype"])
PY

# 4. Real models from an npm package, against decodeWeights.
tar -xzf "$tmp/node"/vladmandic-face-api-1.7.15.tgz -C "$tmp" package/model ||
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

# 5. Refusals, one per rule, one line each.
b=$tmp/bad
mkdir -p "$b/sub" "$tmp/outside"
printf '\0\0\0\0\0\0\0\0' >"$b/sub/s8.bin"
printf '\0\0\0\0\0\0\0\0' >"$tmp/outside/o.bin"
ln -s ../../outside/o.bin "$b/sub/link.bin"
# bad NAME JSON: write $b/sub/NAME.json
bad() { printf '%s' "$2" >"$b/sub/$1.json"; }
W='"weights": [{"name": "w", "shape": [2], "dtype": "float32"}]'
bad abs "[{\"paths\": [\"$tmp/outside/o.bin\"], $W}]"
expect 1 "$WV" inspect "$b/sub/abs.json"
one_line_error "is absolute"
bad dotdot '[{"paths": ["../../outside/o.bin"], '"$W"'}]'
expect 1 "$WV" inspect "$b/sub/dotdot.json"
one_line_error "leaves the model's directory"
bad link '[{"paths": ["link.bin"], '"$W"'}]'
expect 1 "$WV" inspect "$b/sub/link.json"
one_line_error "resolves outside the model's directory"
bad missing '[{"paths": ["nope.bin"], '"$W"'}]'
expect 3 "$WV" inspect "$b/sub/missing.json"
one_line_error "nope.bin: No such file"
bad short '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [3], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/short.json"
one_line_error "need 12 bytes but its 1 shard(s) hold 8"
bad long '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/long.json"
one_line_error "take 4 bytes but its 1 shard(s) hold 8"
bad cplx '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "complex64"}]}]'
expect 1 "$WV" inspect "$b/sub/cplx.json"
one_line_error "dtype 'complex64'"
bad qdt '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [8], "dtype": "float32", "quantization": {"dtype": "int8", "scale": 1, "min": 0}}]}]'
expect 1 "$WV" inspect "$b/sub/qdt.json"
one_line_error "unknown quantization dtype 'int8'"
bad qnoscale '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [8], "dtype": "float32", "quantization": {"dtype": "uint8", "min": 0}}]}]'
expect 1 "$WV" inspect "$b/sub/qnoscale.json"
one_line_error "without scale and min"
bad qf16int '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [4], "dtype": "int32", "quantization": {"dtype": "float16"}}]}]'
expect 1 "$WV" inspect "$b/sub/qf16int.json"
one_line_error "float16 quantization of a weight of dtype int32"
printf '\0\1\2\0\0\0\0\0' >"$b/sub/b8.bin"
bad boolbyte '[{"paths": ["b8.bin"], "weights": [{"name": "w", "shape": [8], "dtype": "bool"}]}]'
expect 1 "$WV" inspect "$b/sub/boolbyte.json"
one_line_error "bool weight 'w' holds the byte 2"
printf '\7\0\0\0abc\0' >"$b/sub/str.bin"
bad strlen '[{"paths": ["str.bin"], "weights": [{"name": "s", "shape": [], "dtype": "string"}]}]'
expect 1 "$WV" inspect "$b/sub/strlen.json"
one_line_error "an element of 7 bytes passes the end"
bad nopaths '[{"weights": []}]'
expect 1 "$WV" inspect "$b/sub/nopaths.json"
one_line_error 'needs "paths" and "weights"'
bad noshape '[{"paths": ["s8.bin"], "weights": [{"name": "w", "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/noshape.json"
one_line_error "weight 'w' has no shape"
bad nodtype '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [2]}]}]'
expect 1 "$WV" inspect "$b/sub/nodtype.json"
one_line_error "weight 'w' has no dtype"
bad noname '[{"paths": ["s8.bin"], "weights": [{"shape": [2], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/noname.json"
one_line_error "a weight has no name"
bad dims '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [1,1,1,1,1,1,1,1,1], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/dims.json"
one_line_error "more than 8 dimensions"
bad negdim '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [-2], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/negdim.json"
one_line_error "expected a non-negative integer"
bad trunc '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [2], "dtype": "float32"}]'
expect 1 "$WV" inspect "$b/sub/trunc.json"
one_line_error "not valid JSON"
bad emptypath '[{"paths": [""], '"$W"'}]'
expect 1 "$WV" inspect "$b/sub/emptypath.json"
one_line_error "shard path is empty"
bad scale '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [8], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": "x", "min": 0}}]}]'
expect 1 "$WV" inspect "$b/sub/scale.json"
one_line_error "expected a number"
bad twoman '{"weightsManifest": [], "weightsManifest": []}'
expect 1 "$WV" inspect "$b/sub/twoman.json"
one_line_error "two weightsManifest keys"
bad dup '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}, {"name": "w", "shape": [1], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/dup.json"
one_line_error "two weights are named 'w'"
bad big '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [4294967296, 4294967296], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/big.json"
one_line_error "its shape overflows"
# a model.json is read by its path (its shards are beside it), not from
# memory
expect 0 py - "$g/layers/model.json" <<'PY'
import ctypes, sys
from weightvault import _lib
data = open(sys.argv[1], "rb").read()
buf = ctypes.create_string_buffer(data, len(data))
eb = ctypes.create_string_buffer(_lib.ERRBUF_SIZE)
opts = _lib.init_struct(_lib.LoadOpts, errbuf=ctypes.addressof(eb),
                        errbuf_size=_lib.ERRBUF_SIZE)
out = ctypes.c_void_p()
rc = _lib.lib().wv_model_load_mem(buf, len(data), ctypes.byref(opts),
                                  ctypes.byref(out))
assert rc != 0 and b"needs its shard files" in eb.value, (rc, eb.value)
PY
finish
