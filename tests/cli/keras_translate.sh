#!/usr/bin/env bash
# keras_translate.sh -- Keras 2 <-> 3 layouts translated by the model
# config (src/formats/keras_layout.c, issue 18).
#
# 1. The Keras 3.14 fixture written three ways: model.h5 -> .weights.h5
#    equals its real model.weights.h5 (every group, dataset, dtype, shape,
#    byte and attribute below the root: tests/cli/h5walk.py; the root
#    only gains wv's metadata attributes, which Keras ignores), and back
#    to .h5 equals model.h5 including the root's attributes;
#    model.weights.h5 + its .keras config.json -> .h5 equals model.h5's
#    model_weights (apart from backend and keras_version, which neither
#    input holds: none invented), and so does model.keras -> .h5.
# 2. The real Keras 2 files (full models with and without optimizer,
#    save_weights + model.json): -> .weights.h5 has the layout Keras 3's
#    loader walks (layers/<class name>/vars/<i> with name attributes, also
#    for weightless layers; vars of the model; optimizer/vars) and
#    -> back to .h5 equals the original file (every weight, layer_names,
#    weight_names, versions).
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
expect 0 "$WV" convert "$M3/model.h5" "$tmp/m.weights.h5" -q
expect 0 "$PYTHON" "$WALK" "$M3/model.weights.h5" "$tmp/m.weights.h5"
has '40 and 40 objects, 0 differences'
expect 0 "$WV" convert "$tmp/m.weights.h5" "$tmp/m.h5" -q
expect 0 "$PYTHON" "$WALK" "$M3/model.h5" "$tmp/m.h5" --root-attrs
(cd "$tmp" && "$PYTHON" -c '
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extract("config.json", ".")' "$M3/model.keras") ||
    fail "cannot extract config.json"
expect 0 "$WV" convert "$M3/model.weights.h5" "$tmp/w.h5" -q \
    --config "$tmp/config.json"
expect 1 "$PYTHON" "$WALK" "$M3/model.h5" "$tmp/w.h5" model_weights
has '19 and 19 objects, 1 differences'
has "differs: model_weights: ('group', {'backend': 'tensorflow', 'keras_version': '3.14.0', 'layer_names': \[.*\]}) | ('group', {'layer_names'"
# the .keras archive: its metadata.json's keras_version is the source's
expect 0 "$WV" convert "$M3/model.keras" "$tmp/k.h5" -q
expect 1 "$PYTHON" "$WALK" "$M3/model.h5" "$tmp/k.h5" model_weights
has '19 and 19 objects, 1 differences'
has "{'keras_version': '3.14.0', 'layer_names'"

# ---- 2. real Keras 2 files: -> .weights.h5 -> .h5 ---------------------------
n=0
for f in "$BOSTON" "$BASIC" "$DJ/model_weights.h5"; do
    n=$((n + 1))
    cfg=()
    [ "$f" = "$DJ/model_weights.h5" ] && cfg=(--config "$DJ/model.json")
    expect 0 "$WV" convert "$f" "$tmp/$n.weights.h5" -q "${cfg[@]}"
    expect 0 "$WV" convert "$tmp/$n.weights.h5" "$tmp/$n.h5" -q
    if [ ${#cfg[@]} -eq 0 ]; then
        expect 0 "$PYTHON" "$WALK" "$f" "$tmp/$n.h5" --root-attrs
    else # the root gains the config given
        expect 0 "$PYTHON" "$WALK" "$f" "$tmp/$n.h5"
    fi
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
expect 0 "$WV" convert "$tmp/nested.weights.h5" "$tmp/nested.back.h5" -q
expect 0 "$PYTHON" "$WALK" "$tmp/nested.h5" "$tmp/nested.back.h5" --root-attrs

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
