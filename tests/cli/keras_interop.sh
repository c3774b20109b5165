#!/usr/bin/env bash
# keras_interop.sh -- h5py (the library Keras saves through) and wv agree
# on Keras HDF5 files and .keras archives.
#
# 1. h5py writes Keras-layout files covering the format's variety: legacy
#    save_weights (vlen and fixed-length string attributes, split
#    layer_names0/1, weightless layers), full-model files (model_weights,
#    model_config), Keras 3 .weights.h5 (layers/<l>/vars/<i>, bfloat16 as
#    opaque + dtype attribute), every h5py dtype, big-endian, chunked and
#    gzip datasets, scalars, empty tensors, and .keras zips (stored and
#    deflated). `wv inspect --json` must equal tests/peer/peer_keras.py.
# 2. wv converts each fixture and generated file to .h5 / .weights.h5;
#    h5py must read identical tensors and, for the fixtures, the same
#    group/dataset/attribute structure (root attributes may only gain
#    entries: wv writes all metadata it is given, but for a .weights.h5,
#    which holds none of the keras.* entries, as Keras 3 writes it).
# 3. Round trips fixture -> keras -> safetensors -> keras, and keras ->
#    safetensors, npz, npy (single tensor) -> keras give identical tensors.
#
# Env: WV, WV_FIXTURES, WV_SRC, PYTHON (/usr/bin/python3 with h5py).
set -u
WV=${WV:?WV must name the wv binary}
FIX=${WV_FIXTURES:?WV_FIXTURES must name the fixtures directory}
SRC=${WV_SRC:?WV_SRC must name the source root}
PYTHON=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/../harness/cli.sh"
need_file "$FIX"/h5/keras2-weights-dearj611/model_weights.h5 \
    "$FIX"/h5/keras3-mnist-shreyansh/model.{h5,keras,weights.h5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" - "$tmp/gen" <<'EOF' || { echo "generator failed"; exit 1; }
import io, os, sys, zipfile
import h5py
import numpy as np
d = sys.argv[1]
os.makedirs(d)
rng = np.random.default_rng(7)

def arr(code, shape):
    n = int(np.prod(shape)) if shape else 1
    dt = np.dtype(code)
    if dt.kind == "b":
        a = rng.integers(0, 2, n).astype(bool)
    elif dt.kind in "ui":
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, n, dtype=dt.newbyteorder("="),
                         endpoint=True)
    elif dt.kind == "c":
        a = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    else:
        a = rng.standard_normal(n) * 100
    return a.astype(dt).reshape(shape)

# Legacy save_weights as Keras 2.x / h5py 3 writes it (vlen strings).
with h5py.File(d + "/legacy_vlen.h5", "w") as f:
    f.attrs["layer_names"] = [b"conv", b"drop", b"bn", b"dense"]
    f.attrs["backend"] = "tensorflow"
    f.attrs["keras_version"] = "2.15.0"
    g = f.create_group("conv")
    g.attrs["weight_names"] = [b"conv/kernel:0", b"conv/bias:0"]
    g["conv/kernel:0"] = arr("<f4", (3, 3, 2, 4))
    g["conv/bias:0"] = arr("<f4", (4,))
    f.create_group("drop").attrs["weight_names"] = np.array([])
    g = f.create_group("bn")
    names = ["gamma", "beta", "moving_mean", "moving_variance"]
    g.attrs["weight_names"] = [("bn/%s:0" % n).encode() for n in names]
    for n in names:
        g["bn/%s:0" % n] = arr("<f4", (4,))
    g = f.create_group("dense")
    g.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
    g["dense/kernel:0"] = arr("<f8", (4, 2))
    g["dense/bias:0"] = arr("<f8", (2,))
    # Keras >= 2.13: the model's own weights, not listed in layer_names.
    f.create_group("top_level_model_weights").attrs["weight_names"] = \
        np.array([])

# Legacy with fixed-length (numpy S) names, split layer_names0/1, every
# h5py dtype, big-endian, chunked+gzip, scalars and empty tensors.
codes = ["|b1", "|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8",
         "<f2", "<f4", "<f8", "<c8", ">i2", ">i4", ">f4", ">f8", ">u8",
         ">c8"]
with h5py.File(d + "/legacy_types.h5", "w") as f:
    layers = []
    for i, c in enumerate(codes):
        ln = "layer_%02d" % i
        layers.append(ln.encode())
        g = f.create_group(ln)
        wn = [("%s/w:0" % ln).encode(), ("%s/s:0" % ln).encode(),
              ("%s/e:0" % ln).encode(), ("%s/z:0" % ln).encode()]
        g.attrs["weight_names"] = np.array(wn)
        g.create_dataset(ln + "/w:0", data=arr(c, (3, 5)))
        g.create_dataset(ln + "/s:0", data=arr(c, ()))
        g.create_dataset(ln + "/e:0", data=arr(c, (0, 3)))
        g.create_dataset(ln + "/z:0", data=arr(c, (40, 7)),
                         chunks=(8, 7), compression="gzip",
                         shuffle=(i % 2 == 0))
    f.attrs["layer_names0"] = np.array(layers[:10])
    f.attrs["layer_names1"] = np.array(layers[10:])
    f.attrs["backend"] = np.bytes_(b"tensorflow")
    f.attrs["keras_version"] = np.bytes_(b"2.2.4")

# Full model (model.save('x.h5')): weights under model_weights.
with h5py.File(d + "/full_model.h5", "w") as f:
    f.attrs["model_config"] = '{"class_name": "Sequential", "config": {}}'
    f.attrs["training_config"] = '{"loss": "mse"}'
    f.attrs["backend"] = "tensorflow"
    f.attrs["keras_version"] = "2.11.0"
    mw = f.create_group("model_weights")
    mw.attrs["layer_names"] = [b"flatten", b"dense"]
    mw.attrs["backend"] = "tensorflow"
    mw.attrs["keras_version"] = "2.11.0"
    mw.create_group("flatten").attrs["weight_names"] = np.array([])
    g = mw.create_group("dense")
    g.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
    g["dense/kernel:0"] = arr("<f4", (6, 3))
    g["dense/bias:0"] = arr("<f4", (3,))
    o = f.create_group("optimizer_weights")
    o.attrs["weight_names"] = [b"Adam/iter:0"]
    o["Adam/iter:0"] = np.int64(10)

# Keras 3 .weights.h5, with bfloat16 stored as 2-byte opaque + dtype attr.
def keras3(f):
    for i, (l, shapes) in enumerate([("dense", [(4, 3), (3,)]),
                                     ("dense_1", [(3, 2), (2,)])]):
        v = f.create_group("layers/%s/vars" % l)
        v.attrs["name"] = l
        for j, s in enumerate(shapes):
            v[str(j)] = arr("<f4", s)
    f.create_group("layers/dropout/vars").attrs["name"] = "dropout"
    v = f.create_group("optimizer/vars")
    v.attrs["name"] = "adam"
    v["0"] = np.int64(3)
    for j in range(1, 13):
        v[str(j)] = arr("<f4", (2,))
    v = f.create_group("layers/bf/vars")
    v.attrs["name"] = "bf"
    ds = v.create_dataset("0", data=arr("<u2", (5, 2)).view("V2"))
    ds.attrs["dtype"] = "bfloat16"
    f.create_group("vars").attrs["name"] = "sequential"

with h5py.File(d + "/k3.weights.h5", "w") as f:
    keras3(f)

buf = io.BytesIO()
with h5py.File(buf, "w") as f:
    keras3(f)
for name, method in [("stored.keras", zipfile.ZIP_STORED),
                     ("deflated.keras", zipfile.ZIP_DEFLATED)]:
    with zipfile.ZipFile(d + "/" + name, "w", method) as z:
        z.writestr("metadata.json", '{"keras_version": "3.5.0"}')
        z.writestr("config.json", '{"class_name": "Sequential"}')
        z.writestr("model.weights.h5", buf.getvalue())
EOF

# Compare two JSON descriptions (wv inspect --json or the peer) for equal
# tensors; with "meta" also equal metadata; with "order" same order.
cmp_json() {
    "$PYTHON" - "$@" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
opts = sys.argv[3:]
ta = {t["name"]: t for t in a["tensors"]}
tb = {t["name"]: t for t in b["tensors"]}
bad = []
if len(ta) != len(a["tensors"]) or set(ta) != set(tb):
    bad.append("names differ: %s" % sorted(set(ta) ^ set(tb))[:5])
for n in sorted(set(ta) & set(tb)):
    if ta[n] != tb[n]:
        bad.append("tensor %s: %s != %s" % (n, ta[n], tb[n]))
if "order" in opts and [t["name"] for t in a["tensors"]] != \
        [t["name"] for t in b["tensors"]]:
    bad.append("order differs")
if "meta3" in opts:
    # a Keras 3 .weights.h5 holds no keras.* root attribute (Keras writes
    # none): only keras.vars, rebuilt from its vars groups, and foreign keys
    a["metadata"] = {k: v for k, v in a["metadata"].items()
                     if not k.startswith("keras.") or k == "keras.vars"}
    opts = opts + ["meta"]
if "meta" in opts and a["metadata"] != b["metadata"]:
    bad.append("metadata differs: %s vs %s" % (
        sorted(a["metadata"].items())[:3], sorted(b["metadata"].items())[:3]))
for x in bad[:5]:
    print("   ", x)
sys.exit(1 if bad else 0)
EOF
}

peer() {
    "$PYTHON" "$SRC/tests/peer/peer_keras.py" "$1" >"$2"
}

# 1. Reading: files written by h5py and the real Keras fixtures.
inputs=("$tmp"/gen/*.h5 "$tmp"/gen/*.keras
        "$FIX"/h5/keras2-weights-dearj611/model_weights.h5
        "$FIX"/h5/keras3-mnist-shreyansh/model.h5
        "$FIX"/h5/keras3-mnist-shreyansh/model.weights.h5
        "$FIX"/h5/keras3-mnist-shreyansh/model.keras)
n=0
for f in "${inputs[@]}"; do
    n=$((n + 1))
    if ! inspect_json "$f" "$tmp/w$n.json" || ! peer "$f" "$tmp/p$n.json"; then
        fail "read: $f (wv or peer refused it)"
        continue
    fi
    if ! cmp_json "$tmp/w$n.json" "$tmp/p$n.json" meta order; then
        fail "read: $f: wv and h5py disagree"
    fi
done
echo "read: ${#inputs[@]} files compared with h5py"

# 2. Writing: wv's files read by h5py identically; fixture structure kept.
structure() {
    "$PYTHON" - "$@" <<'EOF'
import sys
import h5py
import numpy as np
def attrs(o):
    out = {}
    for k in o.attrs.keys():
        v = o.attrs[k]
        if isinstance(v, np.ndarray):
            v = [x.decode() if isinstance(x, bytes) else x for x in v.tolist()]
        elif isinstance(v, bytes):
            v = v.decode()
        out[k] = repr(v)
    return out
def listing(path):
    items = {}
    with h5py.File(path, "r") as f:
        items["/"] = ("G", attrs(f))
        def vis(n, o):
            if isinstance(o, h5py.Dataset):
                items[n] = ("D", o.dtype.str, o.shape, attrs(o),
                            o.chunks, o.compression)
            else:
                items[n] = ("G", attrs(o))
        f.visititems(vis)
    return items
a, b = listing(sys.argv[1]), listing(sys.argv[2])
skip = sys.argv[3] if len(sys.argv) > 3 else None
bad = []
for k in sorted(set(a) | set(b)):
    if skip and k.startswith(skip):
        continue
    x, y = a.get(k), b.get(k)
    if k == "/" and x and y:
        # wv writes every metadata entry: the root may only gain attributes.
        if any(y[1].get(n) != v for n, v in x[1].items()):
            bad.append("root attributes differ")
        continue
    if x != y:
        bad.append("%s: %s != %s" % (k, x, y))
for m in bad[:5]:
    print("   ", m)
sys.exit(1 if bad else 0)
EOF
}

n=0
for f in "${inputs[@]}"; do
    n=$((n + 1))
    base=$(basename "$f")
    case $base in
    *.weights.h5 | *.keras) out="$tmp/o$n.weights.h5" meta=meta3 ;;
    *) out="$tmp/o$n.h5" meta=meta ;;
    esac
    if ! "$WV" convert "$f" "$out" 2>/dev/null; then
        fail "write: wv convert $f $out"
        continue
    fi
    peer "$out" "$tmp/q$n.json" || { fail "write: h5py cannot read $out"; continue; }
    if ! cmp_json "$tmp/w$n.json" "$tmp/q$n.json" order; then
        fail "write: h5py reads other tensors from $out than wv from $f"
    fi
    inspect_json "$out" "$tmp/r$n.json"
    if ! cmp_json "$tmp/w$n.json" "$tmp/r$n.json" order "$meta"; then
        fail "write: $f -> $out does not read back identically"
    fi
done
echo "write: ${#inputs[@]} files rewritten and read by h5py"

fx="$FIX/h5"
structure "$fx/keras2-weights-dearj611/model_weights.h5" "$tmp/o$((${#inputs[@]} - 3)).h5" ||
    fail "structure: legacy weights"
structure "$fx/keras3-mnist-shreyansh/model.weights.h5" "$tmp/o$((${#inputs[@]} - 1)).weights.h5" ||
    fail "structure: Keras 3 weights"
structure "$fx/keras3-mnist-shreyansh/model.h5" "$tmp/o$((${#inputs[@]} - 2)).h5" optimizer_weights ||
    fail "structure: full model (model_weights)"
structure "$tmp/gen/legacy_vlen.h5" "$tmp/o$(( $(ls "$tmp"/gen/*.h5 | grep -n legacy_vlen | cut -d: -f1) )).h5" ||
    fail "structure: legacy (h5py vlen attributes)"

# 3. Round trips through the other writable formats. A step between the
# Keras 2 (.h5) and Keras 3 (.weights.h5) layouts translates the names by
# the model config (keras_translate.sh checks the layouts): the tensors
# are then compared as a multiset of (dtype, shape, sha256); without a
# config that step is refused in one line. The refusals expected, by
# "INPUT|STEPS|step N", with what the error says; any other refusal, or
# one of these not happening, fails.
nocfg='has no model config to translate them to the Keras'
declare -A refusal=(
    ["model_weights.h5|weights.h5 safetensors weights.h5|1"]="$nocfg 3 one"
    ["legacy_types.h5|weights.h5 safetensors weights.h5|1"]="$nocfg 3 one"
    ["legacy_vlen.h5|weights.h5 safetensors weights.h5|1"]="$nocfg 3 one"
    # its model_config is a Sequential without layers
    ["full_model.h5|weights.h5 safetensors weights.h5|1"]=": the model config: a layer has no class_name"
    # npz keeps no metadata: the config is lost on the way
    ["model.keras|npz h5|2"]="$nocfg 2 one"
    ["k3.weights.h5|h5 safetensors h5|1"]="$nocfg 2 one"
    ["k3.weights.h5|safetensors h5|2"]="$nocfg 2 one"
)
declare -A refused=()
rt() { # rt IN FMT...: IN -> each step in turn; final tensors == IN's
    local in=$1 cur=$1 i=0 key
    shift
    for ext in "$@"; do
        i=$((i + 1))
        local nxt="$tmp/rt$i.$ext"
        if ! "$WV" convert "$cur" "$nxt" 2>"$tmp/rt_err"; then
            key="${in##*/}|$*|$i"
            if [ -z "${refusal[$key]+set}" ]; then
                fail "roundtrip: $cur -> $nxt ($key): $(cat "$tmp/rt_err")"
                return
            fi
            refused[$key]=1
            # (after a BF16 warning line for k3.weights.h5)
            tail -1 "$tmp/rt_err" | grep -qF -- "${refusal[$key]}" &&
                [ "$(grep -c -v '^wv: warning' "$tmp/rt_err")" = 1 ] ||
                fail "roundtrip: $key: not the one-line refusal" \
                     "'${refusal[$key]}': $(cat "$tmp/rt_err")"
            return
        fi
        cur=$nxt
    done
    inspect_json "$in" "$tmp/rt_a.json"
    inspect_json "$cur" "$tmp/rt_b.json"
    "$PYTHON" - "$tmp/rt_a.json" "$tmp/rt_b.json" <<'EOF2' ||
import json, sys
a, b = (sorted((t["dtype"], tuple(t["shape"]), t["sha256"])
               for t in json.load(open(p))["tensors"]) for p in sys.argv[1:3])
sys.exit(0 if a == b else 1)
EOF2
        fail "roundtrip: $in -> $* changed tensors"
}
for f in "$fx"/keras2-weights-dearj611/model_weights.h5 \
    "$fx"/keras3-mnist-shreyansh/model.h5 \
    "$fx"/keras3-mnist-shreyansh/model.keras "$tmp"/gen/*.h5; do
    rt "$f" h5 safetensors h5
    rt "$f" weights.h5 safetensors weights.h5
    rt "$f" safetensors h5
    case $f in
    *k3.weights.h5) ;; # bfloat16: npz cannot hold it (refused)
    *) rt "$f" npz h5 ;;
    esac
done
for key in "${!refusal[@]}"; do
    [ -n "${refused[$key]+set}" ] || fail "roundtrip: $key was not refused"
done
# npy holds one tensor.
"$PYTHON" -c "
import h5py, numpy as np, sys
with h5py.File(sys.argv[1], 'w') as f:
    f.attrs['layer_names'] = [b'd']
    f.create_group('d').attrs['weight_names'] = [b'd/kernel:0']
    f['d/d/kernel:0'] = np.arange(12, dtype='<f4').reshape(3, 4)
" "$tmp/one.h5"
"$WV" convert "$tmp/one.h5" "$tmp/one.npy" 2>/dev/null &&
    "$PYTHON" -c "
import numpy as np, sys
a = np.load(sys.argv[1])
assert a.dtype == np.float32 and (a == np.arange(12).reshape(3, 4)).all()
" "$tmp/one.npy" || fail "keras -> npy"
"$WV" convert "$tmp/one.npy" "$tmp/one_back.h5" 2>/dev/null || fail "npy -> keras"
"$PYTHON" -c "
import h5py, numpy as np, sys
with h5py.File(sys.argv[1], 'r') as f:
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    assert len(names) == 1, names
    assert (f[names[0]][()] == np.arange(12).reshape(3, 4)).all()
" "$tmp/one_back.h5" || fail "npy -> keras values"

finish "keras interop: all checks passed"
