#!/usr/bin/env bash
# tf_bundle.sh -- TensorFlow tensor bundles (tests/fixtures/tf) through the
# CLI and the Python load:
#   - every tensor of the fixtures equals its truth file bit for bit
#     (tests/peer/peer_tf_truth.py: Keras .h5 via h5py, a frozen graph's
#     constants via a protobuf decoder of its own), read with Python's
#     weightvault.load; the two-shard bundle reads both shards;
#   - every way of naming a bundle (prefix, .index, data file, checkpoint
#     file, SavedModel dir, its variables dir) reads the same tensors;
#   - --names keras: the weights named as the Keras .h5 of the model names
#     them, bytes equal;
#   - inspect, verify, convert to every writable format (tensors equal
#     afterwards), commit + checkout;
#   - writing: every fixture read and written back (wv convert X out.index)
#     gives the same .index and data files byte for byte;
#   - refusals: a checkpoint file naming a missing prefix, a bundle from
#     memory, a truncated data file, a bundle not named PREFIX.index.
# Env: WV, WV_FIXTURES, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tf=$WV_FIXTURES/tf
wv_pyenv

# 1. Truth files, through the Python binding.
expect 0 wvpy "$root/tests/peer/peer_tf_truth.py" \
    "$WV_FIXTURES"
cat "$tmp/out"

# 2. Every name of a bundle.
a=$tf/a/CodeAshing-Boston_house
b=$tf/b/Gauraviitkgp-Tensorflow/1_BASIC/weights
c=$tf/c/wenjunpku-learning-tensorflow/logs/fully_connected_feed
ref=$(tensor_sums "$a/variables/variables.index")
[ -n "$ref" ] || fail "no tensors from $a"
for p in "$a" "$a/" "$a/variables" "$a/variables/variables" \
         "$a/variables/variables.data-00000-of-00001"; do
    [ "$(tensor_sums "$p")" = "$ref" ] || fail "$p reads differently"
done
ref=$(tensor_sums "$b/my_model.index")
for p in "$b" "$b/checkpoint" "$b/my_model" \
         "$b/my_model.data-00000-of-00001"; do
    [ "$(tensor_sums "$p")" = "$ref" ] || fail "$p reads differently"
done
[ "$(tensor_sums "$c/checkpoint")" = "$(tensor_sums "$c/model.cpkt-1999")" ] ||
    fail "checkpoint file of c"

# 3. inspect and verify all six.
for p in "$a" "$b" "$tf/b/dpong-Keras_Stock_Price_Prediction" "$c" \
         "$tf/c/sbhtkx-urgent_sms_python/out/one_hidden_layer.chkp" \
         "$tf/d/fcuyttsai-overtoppingEve"; do
    expect 0 "$WV" verify "$p"
    has "^ok: .*tensorflow"
    expect 0 "$WV" inspect --json "$p"
    pyjson 'd["format"] == "tensorflow" and len(d["tensors"]) > 0'
done
expect 0 "$WV" inspect --json "$b"
pyjson '"_CHECKPOINTABLE_OBJECT_GRAPH" in d["metadata"] and d["metadata"]["_CHECKPOINTABLE_OBJECT_GRAPH"].startswith("base64:") and json.loads(d["metadata"]["/.ATTRIBUTES/OBJECT_CONFIG_JSON"])["class_name"] == "Sequential" and not any(t["name"].endswith("OBJECT_CONFIG_JSON") for t in d["tensors"])'
expect 0 "$WV" inspect "$c"
has "global_step  *I32"

# 3b. --names keras: the model's weights get the names the Keras .h5 of
#     the same model uses, with the same bytes (optimizer state under
#     optimizer/, metrics keep their keys); TF1 checkpoints are unchanged.
for pair in "$a|$a/boston_house.h5" "$b|$b/../my_model.h5"; do
    bundle=${pair%%|*} h5=${pair#*|}
    expect 0 "$WV" inspect --json --names keras "$bundle"
    cp "$tmp/out" "$tmp/keras.json"
    expect 0 "$WV" inspect --json "$h5"
    "$PYTHON" - "$tmp/keras.json" "$tmp/out" <<'PY' || fail "--names keras of $bundle does not match $h5"
import json, sys
ours = json.load(open(sys.argv[1]))["tensors"]
d = json.load(open(sys.argv[2]))
h5 = d["tensors"]
key = lambda t: (t["name"], t["dtype"], t["shape"], t["sha256"])
model = sorted(key(t) for t in ours
               if not t["name"].startswith(("optimizer/", "keras_api/")))
want = sorted(key(t) for t in h5 if not t["name"].startswith("optimizer/"))
assert model == want, (model, want)
# the .h5's optimizer_weights (optimizer/vars/<i>, names in metadata) are
# the bundle's optimizer/<name> with the same bytes
names = json.loads(d["metadata"].get("keras.optimizer_weight_names", "[]"))
byname = {t["name"]: key(t)[1:] for t in ours}
for i, n in enumerate(names):
    t = [t for t in h5 if t["name"] == "optimizer/vars/%d" % i][0]
    assert byname.get("optimizer/" + n) == key(t)[1:], (n, t)
assert any(t["name"].startswith("optimizer/") and t["name"].endswith(":0")
           for t in ours)
print("keras names ok:", len(model), "weights")
PY
done
[ "$(tensor_sums "$c")" = "$("$WV" inspect --json --names keras "$c" |
    "$PYTHON" -c '
import json, sys
for t in sorted(json.load(sys.stdin)["tensors"], key=lambda t: t["name"]):
    print(t["name"], t["dtype"], t["shape"], t["sha256"])')" ] ||
    fail "--names keras changed a TF1 checkpoint"
expect 0 "$WV" convert --names keras "$a" "$tmp/a-keras.safetensors"
expect 0 "$WV" inspect "$tmp/a-keras.safetensors"
has "dense_54/dense_54/kernel:0"
expect 2 "$WV" inspect --names other "$a"
one_line_error "keys or keras"

# 4. Convert to every writable format; commit and check out.
for ext in safetensors npz pth gguf params h5; do
    expect 0 "$WV" convert "$c" "$tmp/c.$ext"
    same_tensors "$c" "$tmp/c.$ext"
done
expect 0 "$WV" convert "$tf/d/fcuyttsai-overtoppingEve" "$tmp/d.safetensors"
same_tensors "$tf/d/fcuyttsai-overtoppingEve" "$tmp/d.safetensors"
expect 0 "$WV" convert "$b" "$tmp/b.safetensors"
expect 0 "$WV" inspect --json "$tmp/b.safetensors"
pyjson '"_CHECKPOINTABLE_OBJECT_GRAPH" in d["metadata"]'
expect 0 "$WV" init "$tmp/repo"
expect 0 "$WV" commit "$tmp/repo" "$tf/d/fcuyttsai-overtoppingEve"
expect 0 "$WV" checkout "$tmp/repo" -o "$tmp/d2.safetensors"
same_tensors "$tf/d/fcuyttsai-overtoppingEve" "$tmp/d2.safetensors"

# 5. Refusals, one line each.
expect 3 "$WV" inspect "$tf/c/sbhtkx-urgent_sms_python/out/checkpoint"
one_line_error "names .*mnist_convnet.chkp.*does not exist"
mkdir "$tmp/cut"
cp "$c/model.cpkt-1999.index" "$tmp/cut/m.index"
head -c 1000 "$c/model.cpkt-1999.data-00000-of-00001" \
    >"$tmp/cut/m.data-00000-of-00001"
expect 1 "$WV" verify "$tmp/cut/m"
one_line_error "passes the end of .*m.data-00000-of-00001"
rm "$tmp/cut/m.data-00000-of-00001"
expect 3 "$WV" inspect "$tmp/cut/m.index"
one_line_error "data file .*m.data-00000-of-00001: No such file"
expect 0 wvpy - "$c/model.cpkt-1999.index" <<'PY'
import sys, weightvault as wv
from weightvault import _model
try:
    # from memory (as Python maps other files): refused, pointing at the path
    import ctypes
    from weightvault import _lib
    data = open(sys.argv[1], "rb").read()
    buf = ctypes.create_string_buffer(data, len(data))
    eb = ctypes.create_string_buffer(_lib.ERRBUF_SIZE)
    opts = _lib.init_struct(_lib.LoadOpts, errbuf=ctypes.addressof(eb),
                            errbuf_size=_lib.ERRBUF_SIZE)
    out = ctypes.c_void_p()
    rc = _lib.lib().wv_model_load_mem(buf, len(data), ctypes.byref(opts),
                                      ctypes.byref(out))
    assert rc != 0, "loaded a bundle index from memory"
    assert b"needs its data files" in eb.value, eb.value
except AssertionError as e:
    print(e); sys.exit(1)
PY
expect 2 "$WV" convert "$c" "$tmp/x.bin" --format tensorflow
one_line_error "PREFIX.index"
expect 1 "$WV" convert "$c" "$tmp/x.index" --shard-size 1KB
one_line_error "one data file"

# 6. Writing: every fixture read and written back gives the same .index
#    and data files; other formats convert into a bundle and back.
for p in "$a/variables/variables" "$b/my_model" \
         "$tf/b/dpong-Keras_Stock_Price_Prediction/model_weights" \
         "$c/model.cpkt-1999" \
         "$tf/c/sbhtkx-urgent_sms_python/out/one_hidden_layer.chkp" \
         "$tf/d/fcuyttsai-overtoppingEve/variables/variables"; do
    rm -f "$tmp"/rw.*
    expect 0 "$WV" convert "$p" "$tmp/rw.index"
    cmp -s "$p.index" "$tmp/rw.index" || fail "$p: rewritten .index differs"
    for d in "$p".data-*; do
        cmp -s "$d" "$tmp/rw${d#"$p"}" || fail "$d: rewritten data differs"
    done
done
expect 0 "$WV" convert "$tmp/c.safetensors" "$tmp/back.index"
same_tensors "$c" "$tmp/back"
expect 0 "$WV" convert "$tmp/back" "$tmp/back2.index" --dtype F16
expect 0 "$WV" inspect "$tmp/back2.index"
has "hidden1/weights  *F16"
has "global_step  *I32"
finish
