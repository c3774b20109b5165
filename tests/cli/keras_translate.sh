#!/usr/bin/env bash
# keras_translate.sh -- Keras 2 <-> 3 layouts translated by the model
# config (src/formats/keras_layout.c, issue 18).
#
# 1. The Keras 3.14 fixture written three ways: model.h5 -> .weights.h5
#    equals its real model.weights.h5 (every group, dataset, dtype, shape,
#    byte and attribute, the root's included -- Keras 3 writes none there:
#    tests/cli/h5walk.py --root-attrs); back to .h5 it needs --config
#    exactly as the real file does, and gives what the real file gives;
#    model.weights.h5 + its .keras config.json -> .h5 equals model.h5's
#    model_weights (apart from backend and keras_version, which neither
#    input holds: none invented), and so does model.keras -> .h5.
# 2. The real Keras 2 files (full models with and without optimizer,
#    save_weights + model.json): -> .weights.h5 has the layout Keras 3's
#    loader walks (layers/<class name>/vars/<i> with name attributes, also
#    for weightless layers; vars of the model; optimizer/vars) and no root
#    attribute; back to .h5 (refused without --config, then with the
#    model config) Keras' view of it equals the original's (every weight,
#    layer_names, weight_names, the optimizer's state in order).
# 3. Refusals, one line each: no config, config that is not JSON, config
#    naming a layer the file does not hold, weight count mismatch, a file
#    tensor no config layer owns.
# Keras itself is not installed here: the layouts are compared with the
# files Keras wrote.
# Env: WV, WV_FIXTURES, PYTHON (/usr/bin/python3 with h5py).
set -u
WV=${WV:?WV must name the wv binary}
FIX=${WV_FIXTURES:?WV_FIXTURES must name the fixtures directory}
PYTHON=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/../harness/cli.sh"
WALK="$(dirname "$0")/h5walk.py"
M3=$FIX/h5/keras3-mnist-shreyansh
DJ=$FIX/h5/keras2-weights-dearj611
BOSTON=$FIX/tf/a/CodeAshing-Boston_house/boston_house.h5
BASIC=$FIX/tf/b/Gauraviitkgp-Tensorflow/1_BASIC/my_model.h5
need_file "$M3"/model.{h5,weights.h5,keras} "$DJ"/model{_weights.h5,.json} \
    "$BOSTON" "$BASIC" "$WALK"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- 1. the Keras 3 fixture, both ways ------------------------------------
# model.h5 -> .weights.h5: the real file's tree, attributes and root
# attributes (none: Keras 3 writes none, so neither does wv)
expect 0 "$WV" convert "$M3/model.h5" "$tmp/m.weights.h5" -q
expect 0 "$PYTHON" "$WALK" "$M3/model.weights.h5" "$tmp/m.weights.h5" \
    --root-attrs
has '41 and 41 objects, 0 differences'
# back to .h5 it needs the model config, exactly as the real file does
expect 1 "$WV" convert "$tmp/m.weights.h5" "$tmp/m.h5"
one_line_error 'no model config to translate them to the Keras 2 one.*--config'
(cd "$tmp" && "$PYTHON" -c '
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("config.json", ".")' "$M3/model.keras") ||
    fail "cannot extract config.json"
expect 0 "$WV" convert "$tmp/m.weights.h5" "$tmp/m.h5" -q \
    --config "$tmp/config.json"
expect 0 "$WV" convert "$M3/model.weights.h5" "$tmp/w.h5" -q \
    --config "$tmp/config.json"
expect 0 "$PYTHON" "$WALK" "$tmp/w.h5" "$tmp/m.h5" --root-attrs
has '41 and 41 objects, 0 differences'
# ... which equals model.h5's model_weights (apart from backend and
# keras_version, which neither input holds: none invented)
expect 1 "$PYTHON" "$WALK" "$M3/model.h5" "$tmp/w.h5" model_weights
has '19 and 19 objects, 1 differences'
has "differs: model_weights: ('group', {'backend': 'tensorflow', 'keras_version': '3.14.0', 'layer_names': \[.*\]}) | ('group', {'layer_names'"
# the .keras archive: its metadata.json's keras_version is the source's
expect 0 "$WV" convert "$M3/model.keras" "$tmp/k.h5" -q
expect 1 "$PYTHON" "$WALK" "$M3/model.h5" "$tmp/k.h5" model_weights
has '19 and 19 objects, 1 differences'
has "{'keras_version': '3.14.0', 'layer_names'"
# and to .weights.h5 it is the real file too
expect 0 "$WV" convert "$M3/model.keras" "$tmp/k.weights.h5" -q
expect 0 "$PYTHON" "$WALK" "$M3/model.weights.h5" "$tmp/k.weights.h5" \
    --root-attrs

# ---- 2. real Keras 2 files: -> .weights.h5 -> .h5 ---------------------------
# The way back needs the model config (the source's model_config, or the
# model.json given): then Keras' view of the file -- the weights root's
# layer_names, each layer's weight_names and the bytes of the datasets
# they name, the optimizer's datasets in weight_names order -- is the
# original's. (The optimizer's variable paths, backend and keras_version
# are root metadata a .weights.h5 does not hold.)
kview() {
    "$PYTHON" - "$@" <<'PY'
import sys, h5py
def s(x):
    return x.decode() if isinstance(x, bytes) else str(x)
def view(p):
    with h5py.File(p, "r") as f:
        r = f["model_weights"] if "layer_names" not in f.attrs and \
            "model_weights" in f else f
        out = [[s(x) for x in r.attrs["layer_names"]]]
        for l in out[0]:
            wn = [s(x) for x in r[l].attrs["weight_names"]]
            out.append((l, wn, [r[l][w][()].tobytes() for w in wn]))
        if "optimizer_weights" in f:
            o = f["optimizer_weights"]
            out.append([o[s(w)][()].tobytes()
                        for w in o.attrs["weight_names"]])
    return out
a, b = view(sys.argv[1]), view(sys.argv[2])
if a != b:
    print("Keras views differ:", str(a)[:300], "|", str(b)[:300])
    sys.exit(1)
print("same Keras view: %d layers" % len(a[0]))
PY
}
n=0
for f in "$BOSTON" "$BASIC" "$DJ/model_weights.h5"; do
    n=$((n + 1))
    cfg=()
    if [ "$f" = "$DJ/model_weights.h5" ]; then
        cfg=(--config "$DJ/model.json")
    else
        "$PYTHON" -c '
import sys, h5py
v = h5py.File(sys.argv[1], "r").attrs["model_config"]
open(sys.argv[2], "w").write(v.decode() if isinstance(v, bytes) else v)' \
            "$f" "$tmp/$n.json" || fail "no model_config in $f"
    fi
    expect 0 "$WV" convert "$f" "$tmp/$n.weights.h5" -q "${cfg[@]}"
    expect 0 "$PYTHON" - "$tmp/$n.weights.h5" <<'PY'
import sys, h5py
assert not h5py.File(sys.argv[1], "r").attrs.keys(), "root attributes"
PY
    expect 1 "$WV" convert "$tmp/$n.weights.h5" "$tmp/$n.h5" -q
    one_line_error 'no model config to translate them to the Keras 2 one'
    [ ${#cfg[@]} -eq 0 ] && cfg=(--config "$tmp/$n.json")
    expect 0 "$WV" convert "$tmp/$n.weights.h5" "$tmp/$n.h5" -q "${cfg[@]}"
    expect 0 kview "$f" "$tmp/$n.h5"
    has 'same Keras view'
done
# the Keras 3 layout: what Keras 3's loader walks
expect 0 "$PYTHON" - "$tmp/1.weights.h5" "$tmp/3.weights.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    assert f["vars"].attrs["name"] == "sequential_18"
    for i, l in enumerate(["dense_54", "dense_55", "dense_56"]):
        g = f["layers/" + ("dense_%d" % i if i else "dense") + "/vars"]
        assert g.attrs["name"] == l and list(g) == ["0", "1"], (l, list(g))
    assert g["0"].shape == (64, 1) and g["1"].shape == (1,)
    assert f["optimizer/vars"].attrs["name"] == "RMSprop"
    assert len(f["optimizer/vars"]) == 7
    assert "model_weights" not in f and "layer_names" not in f.attrs
with h5py.File(sys.argv[2]) as f:
    want = {"dense": "dense_106", "dropout": "dropout_85",
            "dense_1": "dense_107", "activation": "activation_85",
            "dropout_3": "dropout_88", "activation_3": "activation_88",
            "dense_4": "dense_110"}
    for c, l in want.items():
        assert f["layers/%s/vars" % c].attrs["name"] == l, c
    assert len(f["layers"]) == 13 and len(f["layers/dropout/vars"]) == 0
PY

# A functional model (Keras 2 style, written with h5py: no Keras here)
# holding a nested Sequential with a BatchNormalization: the nested
# model's weights split over its layers by their names, the InputLayer
# kept (functional), and back to the same file.
"$PYTHON" - "$tmp/nested.h5" <<'PY' || fail "nested generator failed"
import json, sys
import h5py, numpy as np
def L(cls, name, **kw):
    return {"class_name": cls, "name": name, "config": dict(name=name, **kw)}
seq = {"class_name": "Sequential", "name": "seq",
       "config": {"name": "seq", "layers": [
           {"class_name": "Dense", "config": {"name": "dense_a",
                                              "use_bias": True}},
           {"class_name": "BatchNormalization", "config": {"name": "bn"}}]}}
cfg = {"class_name": "Functional", "config": {"name": "model", "layers": [
    L("InputLayer", "input_1"), seq, L("Dense", "out", use_bias=True)]}}
rng = np.random.default_rng(3)
with h5py.File(sys.argv[1], "w") as f:
    f.attrs["model_config"] = json.dumps(cfg)
    f.attrs["keras_version"] = "2.11.0"
    f.attrs["backend"] = "tensorflow"
    mw = f.create_group("model_weights")
    mw.attrs["layer_names"] = [b"input_1", b"seq", b"out"]
    mw.attrs["keras_version"] = "2.11.0"
    mw.attrs["backend"] = "tensorflow"
    mw.create_group("input_1").attrs["weight_names"] = np.array([])
    wn = ["dense_a/kernel:0", "dense_a/bias:0", "bn/gamma:0", "bn/beta:0",
          "bn/moving_mean:0", "bn/moving_variance:0"]
    g = mw.create_group("seq")
    g.attrs["weight_names"] = [w.encode() for w in wn]
    for w, shape in zip(wn, [(3, 4), (4,), (4,), (4,), (4,), (4,)]):
        g[w] = rng.standard_normal(shape).astype("<f4")
    g = mw.create_group("out")
    g.attrs["weight_names"] = [b"out/kernel:0", b"out/bias:0"]
    g["out/kernel:0"] = rng.standard_normal((4, 2)).astype("<f4")
    g["out/bias:0"] = rng.standard_normal((2,)).astype("<f4")
PY
expect 0 "$WV" convert "$tmp/nested.h5" "$tmp/nested.weights.h5" -q
expect 0 "$PYTHON" - "$tmp/nested.h5" "$tmp/nested.weights.h5" <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1]) as a, h5py.File(sys.argv[2]) as b:
    names = {"layers/input_layer/vars": "input_1", "layers/seq/vars": "seq",
             "layers/sequential/vars": "seq", "vars": "model",
             "layers/sequential/layers/dense/vars": "dense_a",
             "layers/sequential/layers/batch_normalization/vars": "bn",
             "layers/dense/vars": "out"}
    names.pop("layers/seq/vars")
    for p, n in names.items():
        assert b[p].attrs["name"] == n, p
    s = a["model_weights/seq"]
    pairs = [("seq/dense_a/kernel:0", "sequential/layers/dense/vars/0"),
             ("seq/dense_a/bias:0", "sequential/layers/dense/vars/1"),
             ("seq/bn/gamma:0", "sequential/layers/batch_normalization/vars/0"),
             ("seq/bn/moving_variance:0",
              "sequential/layers/batch_normalization/vars/3"),
             ("out/out/bias:0", "dense/vars/1")]
    for x, y in pairs:
        assert np.array_equal(a["model_weights/" + x][()],
                              b["layers/" + y][()]), (x, y)
    assert len(b["layers/input_layer/vars"]) == 0
PY
expect 1 "$WV" convert "$tmp/nested.weights.h5" "$tmp/nested.back.h5" -q
one_line_error 'no model config to translate them to the Keras 2 one'
"$PYTHON" -c '
import sys, h5py
open(sys.argv[2], "w").write(h5py.File(sys.argv[1], "r").attrs["model_config"])
' "$tmp/nested.h5" "$tmp/nested.json" || fail "no model_config in nested.h5"
expect 0 "$WV" convert "$tmp/nested.weights.h5" "$tmp/nested.back.h5" -q \
    --config "$tmp/nested.json"
expect 0 kview "$tmp/nested.h5" "$tmp/nested.back.h5"
has 'same Keras view: 3 layers'

# ---- 3. refusals -------------------------------------------------------------
expect 1 "$WV" convert "$DJ/model_weights.h5" "$tmp/r.weights.h5"
one_line_error 'no model config to translate them to the Keras 3 one'
expect 1 "$WV" convert "$M3/model.weights.h5" "$tmp/r.h5"
one_line_error 'no model config to translate them to the Keras 2 one'
printf '{"class_name": "Sequential", "config": {"layers": [' >"$tmp/bad.json"
expect 1 "$WV" convert "$DJ/model_weights.h5" "$tmp/r.weights.h5" \
    --config "$tmp/bad.json"
one_line_error 'r.weights.h5: the model config'
sed 's/"dense_107"/"dense_999"/' "$DJ/model.json" >"$tmp/other.json"
expect 1 "$WV" convert "$DJ/model_weights.h5" "$tmp/r.weights.h5" \
    --config "$tmp/other.json"
one_line_error "names layer 'dense_999', which the file's layer_names does not list"
sed 's/"use_bias": true/"use_bias": false/' "$DJ/model.json" >"$tmp/nobias.json"
expect 1 "$WV" convert "$DJ/model_weights.h5" "$tmp/r.weights.h5" \
    --config "$tmp/nobias.json"
one_line_error "layer 'dense_106' (Dense) has 1 weights in the model config's terms, the file holds 2"
expect 1 "$WV" convert "$M3/model.weights.h5" "$tmp/r.h5" \
    --config "$DJ/model.json"
# (its fifth Dense would be layers/dense_4, which the file does not hold)
one_line_error "r.h5: layer 'dense_110' (Dense) has 2 weights in the model config's terms, the file holds 0"
[ -e "$tmp/r.h5" ] || [ -e "$tmp/r.weights.h5" ] && fail "a refused write left a file"
finish "keras translate: all checks passed"
