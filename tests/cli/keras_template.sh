#!/usr/bin/env bash
# keras_template.sh -- wv convert --template KERAS_FILE (issue 18): a
# source that is not Keras written to .h5 / .weights.h5 in the layout of a
# Keras file of the model, filled by name or by order and shape.
#
# 1. A safetensors of the Keras 3 fixture's tensors under torch-like names
#    (net.0.weight, ..., optim.state.<i>) + --template model.weights.h5
#    equals the real model.weights.h5 (every group, dataset, byte and
#    attribute, the root's included: tests/cli/h5walk.py --root-attrs);
#    + --template model.h5 (legacy full model) equals model.h5; the model
#    weights alone fill the template without its optimizer state.
# 2. By name: a source named as the template (in any order) fills it;
#    --template model.keras too (its layout translated by its config).
# 3. Refusals, one line naming the first tensor that does not fit: shape,
#    dtype, count, a template name missing, a template that is not Keras;
#    nothing written. The "no Keras layout" warning points at --template.
# Env: WV, WV_FIXTURES, PYTHON (/usr/bin/python3 with h5py).
set -u
WV=${WV:?WV must name the wv binary}
FIX=${WV_FIXTURES:?WV_FIXTURES must name the fixtures directory}
PYTHON=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/../harness/cli.sh"
WALK="$(dirname "$0")/h5walk.py"
M3=$FIX/h5/keras3-mnist-shreyansh
need_file "$M3"/model.{h5,weights.h5,keras} "$WALK"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Sources written with h5py + the safetensors layout by hand (no wv):
# all.safetensors (26 tensors, the template's order, torch-like names),
# model.safetensors (the 8 model weights), named.safetensors (the
# template's own names, reversed order), and broken variants.
"$PYTHON" - "$M3/model.weights.h5" "$tmp" <<'PY' || fail "generator failed"
import json, os, struct, sys
import h5py, numpy as np
def natkey(n):
    return [int(p) if p.isdigit() else p for p in n.split("/")]
with h5py.File(sys.argv[1], "r") as f:
    names = []
    f.visititems(lambda n, o: names.append(n)
                 if isinstance(o, h5py.Dataset) else None)
    names.sort(key=natkey)
    arrs = [(n, f[n][()]) for n in names]
D = {"float32": "F32", "int64": "I64", "float64": "F64"}
def write(name, items):
    h, off, blobs = {}, 0, []
    for n, a in items:
        b = np.ascontiguousarray(a).tobytes()
        h[n] = {"dtype": D[str(a.dtype)], "shape": list(a.shape),
                "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    hb = json.dumps(h).encode()
    hb += b" " * (-len(hb) % 8)
    with open(os.path.join(sys.argv[2], name), "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + b"".join(blobs))
torch = []
for n, a in arrs:
    p = n.split("/")
    if p[0] == "layers":
        torch.append(("net.%s.%s" % (p[1], ("weight", "bias")[int(p[3])]), a))
    else:
        torch.append(("optim.state.%s" % p[2], a))
model = [x for x in torch if x[0].startswith("net.")]
write("all.safetensors", torch)
write("model.safetensors", model)
write("named.safetensors", arrs[::-1])
t = list(model); t[2] = (t[2][0], t[2][1].T.copy())
write("shape.safetensors", t)
t = list(model); t[1] = (t[1][0], t[1][1].astype("float64"))
write("dtype.safetensors", t)
write("count.safetensors", model[:-1])
write("partial.safetensors", [x for x in arrs if x[0] != "layers/dense_2/vars/1"])
PY

# ---- 1. by order and shape ---------------------------------------------------
expect 0 "$WV" convert "$tmp/all.safetensors" "$tmp/a.weights.h5" -q \
    --template "$M3/model.weights.h5"
[ -s "$tmp/err" ] && fail "a source without metadata warned: $(cat "$tmp/err")"
expect 0 "$PYTHON" "$WALK" "$M3/model.weights.h5" "$tmp/a.weights.h5" \
    --root-attrs
has '41 and 41 objects, 0 differences'
expect 0 "$WV" convert "$tmp/all.safetensors" "$tmp/a.h5" -q \
    --template "$M3/model.h5"
expect 0 "$PYTHON" "$WALK" "$M3/model.h5" "$tmp/a.h5" --root-attrs
has '40 and 40 objects, 0 differences'
# the model weights alone: the template without its optimizer state
expect 0 "$WV" convert "$tmp/model.safetensors" "$tmp/m.weights.h5" -q \
    --template "$M3/model.weights.h5"
expect 0 "$PYTHON" "$WALK" "$M3/model.weights.h5" "$tmp/m.weights.h5" \
    layers,vars --root-attrs
has '21 and 21 objects, 0 differences'
expect 0 "$WV" convert "$tmp/model.safetensors" "$tmp/m.h5" -q \
    --template "$M3/model.h5"
expect 0 "$PYTHON" "$WALK" "$M3/model.h5" "$tmp/m.h5" model_weights \
    --root-attrs
has '20 and 20 objects, 0 differences'
expect 0 "$PYTHON" - "$tmp/m.weights.h5" "$tmp/m.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    assert sorted(f) == ["layers", "vars"], list(f)
with h5py.File(sys.argv[2], "r") as f:
    assert sorted(f) == ["model_weights"], list(f)
    assert "optimizer_weight_names" not in f.attrs
PY

# ---- 2. by name ---------------------------------------------------------------
expect 0 "$WV" convert "$tmp/named.safetensors" "$tmp/n.weights.h5" -q \
    --template "$M3/model.weights.h5"
expect 0 "$PYTHON" "$WALK" "$M3/model.weights.h5" "$tmp/n.weights.h5" \
    --root-attrs
has '41 and 41 objects, 0 differences'
# a .keras template written to .h5: its layout translated by its config,
# as model.keras -> .h5 gives it
expect 0 "$WV" convert "$tmp/all.safetensors" "$tmp/k.h5" -q \
    --template "$M3/model.keras"
expect 0 "$WV" convert "$M3/model.keras" "$tmp/k0.h5" -q
expect 0 "$PYTHON" "$WALK" "$tmp/k0.h5" "$tmp/k.h5" --root-attrs
has '41 and 41 objects, 0 differences'
# a source with metadata: the template's is written, and wv says so
expect 0 "$WV" convert "$M3/model.h5" "$tmp/h.weights.h5" -q \
    --template "$M3/model.weights.h5"
one_line_error "h.weights.h5: written with the layout and metadata of the template .*: 7 metadata entries of the source not carried over"
expect 0 "$PYTHON" "$WALK" "$M3/model.weights.h5" "$tmp/h.weights.h5" \
    --root-attrs

# ---- 3. refusals ----------------------------------------------------------------
refuse() { # SOURCE OUT TEMPLATE PATTERN [EXIT]
    expect "${5:-1}" "$WV" convert "$tmp/$1" "$tmp/$2" --template "$3"
    one_line_error "$4"
    [ -e "$tmp/$2" ] && fail "refused $1 -> $2 left a file"
}
refuse shape.safetensors r.weights.h5 "$M3/model.weights.h5" \
    "r.weights.h5: tensor 'net.dense_1.weight' (F32 \[32, 64\]) does not fit template tensor 'layers/dense_1/vars/0' (F32 \[64, 32\]) (filled by order and shape)"
refuse dtype.safetensors r.h5 "$M3/model.h5" \
    "r.h5: tensor 'net.dense.bias' (F64 \[64\]) does not fit template tensor 'dense/dense/bias' (F32 \[64\])"
refuse count.safetensors r.weights.h5 "$M3/model.weights.h5" \
    "count mismatch: template .*model.weights.h5 holds 26 tensors (8 without optimizer state), the source 7"
refuse partial.safetensors r.weights.h5 "$M3/model.weights.h5" \
    "template tensor 'layers/dense_2/vars/1' has no tensor of that name in the source (filled by name)"
refuse all.safetensors r.weights.h5 "$tmp/all.safetensors" \
    "r.weights.h5: template: .*all.safetensors: neither an HDF5 file nor a .keras zip archive"
refuse all.safetensors r.weights.h5 "$tmp/none.h5" \
    "r.weights.h5: template: .*none.h5: No such file" 3
expect 2 "$WV" convert "$tmp/all.safetensors" "$tmp/r.h5" --shard-size 100KB \
    --template "$M3/model.h5"
one_line_error "shard-size does not apply"
# --dtype applies before the fit: F64 -> F32 fits the template
expect 0 "$WV" convert "$tmp/dtype.safetensors" "$tmp/d.h5" -q --dtype F32 \
    --template "$M3/model.h5"
# without a template: the warning points at --template
expect 0 "$WV" convert "$tmp/model.safetensors" "$tmp/w.weights.h5" -q
one_line_error "w.weights.h5: the source is not a Keras model.*no Keras layout.*--template KERAS_FILE"
finish "keras template: all checks passed"
