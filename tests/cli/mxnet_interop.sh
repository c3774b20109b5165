#!/usr/bin/env bash
# mxnet_interop.sh -- wv and an independent reader agree on MXNet .params.
#
# MXNet is not packaged in Debian, so the oracle is tests/peer/peer_mxnet.py
# (struct + numpy, written from MXNet's ndarray.cc, no weightvault code),
# and the "framework-written" files are produced here by a Python writer
# that follows NDArray::Save byte for byte (V2 dict and list files, every
# type flag, gpu contexts, empty and 8-d arrays), plus V1, pre-V1 and V3
# (np-shape, scalars) records as older/newer MXNet wrote them.
#
#  1. the real fixtures and the generated files: `wv inspect --json` equals
#     the peer's dump (format, metadata, names in order, dtypes, shapes,
#     sha256 of the C-order LE bytes);
#  2. every file rewritten by wv as .params is read by the peer with
#     identical tensors, and V2 files come back byte-identical (wv writes
#     what MXNet writes);
#  3. fixture -> mxnet -> safetensors -> mxnet, and mxnet -> npz / npy
#     (single tensor) -> mxnet keep every tensor bit for bit.
#
# Env: WV (the wv binary), WV_FIXTURES, WV_SRC, PYTHON (/usr/bin/python3).
set -u
WV=${WV:?WV must name the wv binary}
PYTHON=${PYTHON:-/usr/bin/python3}
WV_SRC=${WV_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
WV_FIXTURES=${WV_FIXTURES:-$WV_SRC/tests/fixtures}
PEER=$WV_SRC/tests/peer/peer_mxnet.py
. "$(dirname "$0")/../harness/cli.sh"
need_file "$WV_FIXTURES"/mxnet/{lenet-0001.params,lenet-symbol.json} \
    "$WV_FIXTURES"/mxnet/{vgangal101-lenet-net.params,legacy_ndarray.v0}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
checks=0

# same_json A B [order] -- two inspect documents describe the same tensors
# (and metadata unless "nometa"); with "order" the order must match too.
same_json() {
    "$PYTHON" - "$@" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
opts = sys.argv[3:]
bad = []
def key(t):
    return (t["dtype"], t["shape"], t["nbytes"], t["sha256"])
if "nometa" not in opts and a["metadata"] != b["metadata"]:
    bad.append("metadata differs: %r vs %r"
               % (sorted(a["metadata"]), sorted(b["metadata"])))
if "noformat" not in opts and a["format"] != b["format"]:
    bad.append("format %r vs %r" % (a["format"], b["format"]))
ta = {t["name"]: t for t in a["tensors"]}
tb = {t["name"]: t for t in b["tensors"]}
if "order" in opts and [t["name"] for t in a["tensors"]] != \
        [t["name"] for t in b["tensors"]]:
    bad.append("tensor order differs")
for n in sorted(set(ta) | set(tb)):
    if n not in ta or n not in tb:
        bad.append("tensor %r only on one side" % n)
    elif key(ta[n]) != key(tb[n]):
        bad.append("tensor %r: %r vs %r" % (n, key(ta[n]), key(tb[n])))
for x in bad[:20]:
    print("  " + x)
sys.exit(1 if bad else 0)
PY
}

peer() { "$PYTHON" "$PEER" "$1" >"$2" || fail "peer cannot read $1"; }

# ---- the generated files ---------------------------------------------------
mkdir -p "$tmp/gen" "$tmp/out"
"$PYTHON" - "$tmp/gen" <<'PY' || { echo "FAIL: generator" >&2; exit 1; }
import struct, sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
V1, V2, V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
FLAGS = [(0, "<f4"), (1, "<f8"), (2, "<f2"), (3, "u1"), (4, "<i4"),
         (5, "i1"), (6, "<i8"), (7, "?"), (8, "<i2"), (9, "<u2"),
         (10, "<u4"), (11, "<u8"), (12, "<u2")]   # 12: bfloat16 bits

def values(code, shape):
    n = int(np.prod(shape)) if shape else 1
    if code == "?":
        a = rng.integers(0, 2, n).astype(bool)
    elif code[-2] in "ui":
        info = np.iinfo(np.dtype(code))
        a = rng.integers(info.min, info.max, n, dtype=np.dtype(code),
                         endpoint=True)
    else:
        a = (rng.standard_normal(n) * 100).astype(code)
        if n > 3:
            a[0], a[1], a[2] = np.inf, -np.inf, np.nan
    return a.reshape(shape)

def record(flag, arr, version=V2, ctx=(1, 0)):
    shape = arr.shape
    if version == 0:   # pre-V1: magic is ndim, uint32 dims
        out = struct.pack("<I", len(shape)) + \
            struct.pack("<%dI" % len(shape), *shape)
    else:
        out = struct.pack("<I", version)
        if version != V1:
            out += struct.pack("<i", 0)
        out += struct.pack("<i", len(shape)) + \
            struct.pack("<%dq" % len(shape), *shape)
    out += struct.pack("<iii", ctx[0], ctx[1], flag)
    return out + np.ascontiguousarray(arr).tobytes()

def save(path, recs, names):
    out = struct.pack("<QQQ", 0x112, 0, len(recs)) + b"".join(recs)
    out += struct.pack("<Q", len(names))
    for n in names:
        b = n.encode("utf-8")
        out += struct.pack("<Q", len(b)) + b
    open(path, "wb").write(out)

shapes = [(7,), (3, 4), (2, 3, 4), (4, 0, 2), (1, 2, 1, 2, 1, 2, 1, 2),
          (1000,)]
recs, names = [], []
for flag, code in FLAGS:
    for si, shape in enumerate(shapes):
        recs.append(record(flag, values(code, shape)))
        names.append("arg:t%d_%d" % (flag, si))
save(d + "/v2_dict_all.params", recs, names)
save(d + "/v2_list_all.params", recs, [])
# Gluon-style names, a gpu(1) and a cpu_pinned context, unicode name.
save(d + "/gluon_ctx.params",
     [record(0, values("<f4", (5, 3)), ctx=(2, 1)),
      record(0, values("<f4", (5,)), ctx=(3, 0)),
      record(6, values("<i8", (2,)), ctx=(5, 0))],
     ["features.0.weight", "features.0.bias", "aux:\u00e9t\u00e9"])
# Older writers: V1 (no stype) and pre-V1 (u32 dims); newer: V3 scalars.
save(d + "/v1_mixed.params",
     [record(f, values(c, (3, 2)), version=V1) for f, c in FLAGS[:7]],
     ["a%d" % i for i in range(7)])
save(d + "/prev1_list.nd",
     [record(f, values(c, (2, 5)), version=0) for f, c in FLAGS[:7]], [])
save(d + "/v3_scalars.params",
     [record(0, values("<f4", ()), version=V3),
      record(6, values("<i8", (0,)), version=V3),
      record(2, values("<f2", (2, 2)), version=V3)],
     ["s", "empty", "m"])
# No BF16 (numpy formats cannot hold it), for the npz round trip.
save(d + "/v2_numpy_types.params",
     [record(f, values(c, (3, 5))) for f, c in FLAGS[:12]],
     ["n%d" % f for f, c in FLAGS[:12]])
PY

for f in "$WV_FIXTURES"/mxnet/lenet-0001.params \
         "$WV_FIXTURES"/mxnet/vgangal101-lenet-net.params \
         "$WV_FIXTURES"/mxnet/legacy_ndarray.v0 "$tmp"/gen/*; do
    b=$(basename "$f")
    # 1. wv reads it exactly as the peer does (order and metadata too).
    peer "$f" "$tmp/out/$b.peer.json"
    inspect_json "$f" "$tmp/out/$b.wv.json"
    same_json "$tmp/out/$b.peer.json" "$tmp/out/$b.wv.json" order ||
        fail "$b: wv and the peer disagree"
    checks=$((checks + 1))
    # 2. wv's .params is read identically by the peer.
    "$WV" convert "$f" "$tmp/out/$b.rt.params" 2>/dev/null ||
        fail "$b: wv convert to .params failed"
    peer "$tmp/out/$b.rt.params" "$tmp/out/$b.rt.json"
    same_json "$tmp/out/$b.peer.json" "$tmp/out/$b.rt.json" order nometa ||
        fail "$b: the peer reads wv's .params differently"
    checks=$((checks + 1))
    # 3. through safetensors and back.
    "$WV" convert "$f" "$tmp/out/$b.safetensors" 2>/dev/null ||
        fail "$b: convert to safetensors failed"
    "$WV" convert "$tmp/out/$b.safetensors" "$tmp/out/$b.st.params" \
        2>"$tmp/err" || fail "$b: safetensors -> .params: $(cat "$tmp/err")"
    peer "$tmp/out/$b.st.params" "$tmp/out/$b.st.json"
    same_json "$tmp/out/$b.peer.json" "$tmp/out/$b.st.json" nometa ||
        fail "$b: mxnet -> safetensors -> mxnet changed tensors"
    checks=$((checks + 1))
done

# V2 files written by MXNet (and by our MXNet-faithful generator) come back
# byte for byte; so does a V2 file after a trip through itself twice.
for f in "$WV_FIXTURES"/mxnet/lenet-0001.params \
         "$WV_FIXTURES"/mxnet/vgangal101-lenet-net.params \
         "$tmp"/gen/v2_*.params; do
    b=$(basename "$f")
    cmp -s "$f" "$tmp/out/$b.rt.params" ||
        fail "$b: wv's rewrite is not byte-identical to the original"
    checks=$((checks + 1))
done
# The pre-V1/V1 lists come back as V2 with the same names/values (checked
# above); their rewrite is stable from then on.
for b in legacy_ndarray.v0 v1_mixed.params prev1_list.nd; do
    "$WV" convert "$tmp/out/$b.rt.params" "$tmp/out/$b.rt2.params" &&
        cmp -s "$tmp/out/$b.rt.params" "$tmp/out/$b.rt2.params" ||
        fail "$b: the V2 rewrite is not stable"
    checks=$((checks + 1))
done

# mxnet -> npz -> mxnet (every type numpy shares with MXNet).
for f in "$WV_FIXTURES"/mxnet/lenet-0001.params \
         "$WV_FIXTURES"/mxnet/vgangal101-lenet-net.params \
         "$WV_FIXTURES"/mxnet/legacy_ndarray.v0 \
         "$tmp"/gen/v2_numpy_types.params "$tmp"/gen/v1_mixed.params \
         "$tmp"/gen/prev1_list.nd "$tmp"/gen/v3_scalars.params; do
    b=$(basename "$f")
    "$WV" convert "$f" "$tmp/out/$b.npz" 2>/dev/null &&
        "$WV" convert "$tmp/out/$b.npz" "$tmp/out/$b.npz.params" ||
        fail "$b: mxnet -> npz -> mxnet conversion failed"
    peer "$tmp/out/$b.npz.params" "$tmp/out/$b.npz.json"
    same_json "$tmp/out/$b.peer.json" "$tmp/out/$b.npz.json" nometa ||
        fail "$b: mxnet -> npz -> mxnet changed tensors"
    checks=$((checks + 1))
done

# mxnet -> npy -> mxnet, one tensor at a time (npy holds one array, named
# after the file, so compare the values only).
"$PYTHON" - "$tmp/gen/v2_numpy_types.params" "$tmp/one" <<'PY' ||
import struct, sys
buf = open(sys.argv[1], "rb").read()
# Cut the first three records into one-array files: V2 headers are
# 4+4+4+8*ndim+12 bytes, then the data.
sizes = {0: 4, 1: 8, 2: 2, 3: 1, 4: 4, 5: 1, 6: 8, 7: 1, 8: 2, 9: 2,
         10: 4, 11: 8}
off = 24
for i in range(3):
    start = off
    ndim = struct.unpack_from("<i", buf, off + 8)[0]
    dims = struct.unpack_from("<%dq" % ndim, buf, off + 12)
    flag = struct.unpack_from("<i", buf, off + 12 + 8 * ndim + 8)[0]
    n = 1
    for x in dims:
        n *= x
    off += 12 + 8 * ndim + 12 + n * sizes[flag]
    rec = buf[start:off]
    out = struct.pack("<QQQ", 0x112, 0, 1) + rec + struct.pack("<Q", 0)
    open("%s%d.params" % (sys.argv[2], i), "wb").write(out)
PY
    fail "cannot cut single-array files"
for i in 0 1 2; do
    f=$tmp/one$i.params
    "$WV" convert "$f" "$tmp/out/one$i.npy" &&
        "$WV" convert "$tmp/out/one$i.npy" "$tmp/out/one$i.npy.params" ||
        fail "one$i: mxnet -> npy -> mxnet conversion failed"
    peer "$f" "$tmp/out/one$i.a.json"
    peer "$tmp/out/one$i.npy.params" "$tmp/out/one$i.b.json"
    "$PYTHON" - "$tmp/out/one$i.a.json" "$tmp/out/one$i.b.json" <<'PY' ||
import json, sys
a, b = (json.load(open(p))["tensors"] for p in sys.argv[1:3])
k = lambda t: (t["dtype"], t["shape"], t["sha256"])
sys.exit(0 if len(a) == len(b) == 1 and k(a[0]) == k(b[0]) else 1)
PY
        fail "one$i: mxnet -> npy -> mxnet changed the tensor"
    checks=$((checks + 1))
done

# Refusals the peer and wv share: a sparse record.
"$PYTHON" - "$tmp/sparse.params" <<'PY'
import struct, sys
rec = struct.pack("<Iiiq", 0xF993FAC9, 1, 1, 2)  # row_sparse, sshape (2,)
rec += struct.pack("<iq", 1, 4) + struct.pack("<iii", 1, 0, 0)
open(sys.argv[1], "wb").write(struct.pack("<QQQ", 0x112, 0, 1) + rec +
                              struct.pack("<Q", 0))
PY
"$WV" verify "$tmp/sparse.params" >/dev/null 2>"$tmp/sparse.err"
rc=$?
[ $rc -eq 1 ] && grep -q "row_sparse" "$tmp/sparse.err" ||
    fail "sparse record: wv exited $rc: $(cat "$tmp/sparse.err")"
"$PYTHON" "$PEER" "$tmp/sparse.params" >/dev/null 2>&1 &&
    fail "the peer accepted a sparse record"
checks=$((checks + 1))

finish "mxnet_interop: ok ($checks checks)"
