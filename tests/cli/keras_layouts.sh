#!/usr/bin/env bash
# keras_layouts.sh -- what wv keeps of Keras' own layouts (issue 18).
#
# 1. Optimizer state: the legacy full-model files (Keras 2.4 with RMSprop,
#    Keras 3.14's model.h5 with Adam, Keras 2.2 without optimizer) read
#    their optimizer_weights as tensors optimizer/vars/<i> (model.h5's
#    equal model.weights.h5's optimizer/vars/<i>), and h5 -> h5 and
#    h5 -> safetensors -> h5 give back the same tree, attributes and data
#    (tests/cli/h5walk.py, h5py).
# 2. Nothing dropped without a word: objects of a full-model file outside
#    model_weights, and optimizer datasets weight_names does not list, are
#    named in one warning line.
# 3. Honest writes: a set that is not Keras written to .h5/.weights.h5
#    warns once that the file has no Keras layout (and how to get one);
#    Keras sources do not warn; BF16 warns of HDF5's opaque type.
#
# Env: WV, WV_FIXTURES, PYTHON (/usr/bin/python3 with h5py).
set -u
WV=${WV:?WV must name the wv binary}
FIX=${WV_FIXTURES:?WV_FIXTURES must name the fixtures directory}
PYTHON=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/../harness/cli.sh"
WALK="$(dirname "$0")/h5walk.py"
M3=$FIX/h5/keras3-mnist-shreyansh
BOSTON=$FIX/tf/a/CodeAshing-Boston_house/boston_house.h5
BASIC=$FIX/tf/b/Gauraviitkgp-Tensorflow/1_BASIC/my_model.h5
need_file "$M3"/model.{h5,weights.h5} "$BOSTON" "$BASIC" "$WALK"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- 1. optimizer_weights read and written back ---------------------------
expect 0 "$WV" inspect "$BOSTON"
has 'optimizer/vars/0 *I64'
has 'optimizer/vars/6 *F32 *\[1\]'
has 'keras.optimizer_weight_names = \["RMSprop/iter:0"'
expect 0 "$WV" inspect "$M3/model.h5"
has 'optimizer/vars/17 *F32 *\[10\]'
[ -s "$tmp/err" ] && fail "inspect model.h5 warned: $(cat "$tmp/err")"
# model.h5's optimizer state is model.weights.h5's, under the same names
"$WV" inspect --json "$M3/model.h5" >"$tmp/a.json" &&
    "$WV" inspect --json "$M3/model.weights.h5" >"$tmp/b.json" ||
    fail "inspect --json failed"
expect 0 "$PYTHON" - "$tmp/a.json" "$tmp/b.json" <<'PY'
import json, sys
a, b = ({t["name"]: t for t in json.load(open(p))["tensors"]
         if t["name"].startswith("optimizer/")} for p in sys.argv[1:3])
assert len(a) == 18 and a == b, (sorted(a), sorted(b))
PY
n=0
for f in "$BOSTON" "$M3/model.h5" "$BASIC"; do
    n=$((n + 1))
    expect 0 "$WV" convert "$f" "$tmp/$n.h5" -q
    expect 0 "$PYTHON" "$WALK" "$f" "$tmp/$n.h5" --root-attrs
    expect 0 "$WV" convert "$f" "$tmp/$n.safetensors" -q
    expect 0 "$WV" convert "$tmp/$n.safetensors" "$tmp/$n.back.h5" -q
    expect 0 "$PYTHON" "$WALK" "$f" "$tmp/$n.back.h5" --root-attrs
    cmp -s "$tmp/$n.h5" "$tmp/$n.back.h5" ||
        fail "$f: h5 -> h5 and h5 -> safetensors -> h5 differ"
done
expect 0 "$WV" inspect "$tmp/1.safetensors"
has 'optimizer/vars/6'

# ---- 2. skipped objects are named --------------------------------------------
"$PYTHON" - "$BOSTON" "$tmp/extra.h5" <<'PY' || fail "generator failed"
import shutil, sys
import h5py, numpy as np
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    f.create_group("extra").create_dataset("x", data=np.zeros(3))
    f["optimizer_weights/RMSprop"].create_dataset("stray", data=np.ones(2))
PY
expect 0 "$WV" inspect "$tmp/extra.h5"
one_line_error 'not read.*"extra".*"optimizer_weights/RMSprop/stray"'
has 'optimizer/vars/6'
expect 0 "$WV" convert "$tmp/extra.h5" "$tmp/extra.safetensors" -q
one_line_error 'extra\.h5: not read'
# ---- 3. honest writes ----------------------------------------------------------
# a set that is not Keras gets its tensors written and one warning that
# says there is no Keras layout and how to get one
make_st "$tmp/plain.safetensors" 3 0.01
for out in plain.h5 plain.weights.h5; do
    expect 0 "$WV" convert "$tmp/plain.safetensors" "$tmp/$out" -q
    one_line_error "$out: the source is not a Keras model.*no Keras layout.*--template KERAS_FILE"
    expect 0 "$WV" inspect "$tmp/$out"
    has 'layer0.weight'
done
# Keras sources, also through safetensors, and Keras 3 names: no warning
# (a Keras 3 .weights.h5 without a config cannot go to the legacy layout:
# refused, see keras_translate.sh)
for src in "$M3/model.weights.h5" "$tmp/2.safetensors" "$BOSTON"; do
    for out in k.h5 k.weights.h5; do
        [ "$src$out" = "$M3/model.weights.h5k.h5" ] && continue
        expect 0 "$WV" convert "$src" "$tmp/$out" -q
        [ -s "$tmp/err" ] && fail "$src -> $out warned: $(cat "$tmp/err")"
    done
done
# BF16 to HDF5: the opaque-type warning (one line, and no layout warning
# for a Keras source)
expect 0 "$WV" convert "$M3/model.weights.h5" "$tmp/bf.weights.h5" --dtype BF16 -q
one_line_error 'HDF5 has no BF16 type.*opaque'
finish
