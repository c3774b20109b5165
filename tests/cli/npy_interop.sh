#!/usr/bin/env bash
# npy_interop.sh -- numpy and wv agree on .npy and .npz.
#
# numpy writes many arrays (every dtype numpy and weightvault share, both
# byte orders, C and Fortran order, 0-d, empty, savez, savez_compressed:
# every shape in both orders and byte orders for one dtype of each kind
# and item size -- bool, u1, f2, f4, i8, c8 -- and for the other dtypes
# the 0-d, empty, 3-d C and Fortran and large shapes, in both byte orders;
# each case costs three wv runs, and the full product of the 13 dtypes
# was 300 files);
# wv converts each to .safetensors and back to .npy/.npz (and directly
# npy->npy, npz->npz); numpy then checks that every file wv wrote loads,
# holds bitwise the same values, and that wv's .npy bytes are identical to
# np.save's for the same (C-order, little-endian) array.
#
# Env: WV (the wv binary), PYTHON (/usr/bin/python3 with numpy).
set -u
WV=${WV:?WV must name the wv binary}
PYTHON=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

"$PYTHON" - "$tmp" <<'EOF' || exit 1
import sys, os
import numpy as np
d = sys.argv[1]
os.makedirs(d + "/src")
rng = np.random.default_rng(1234)
codes = ["b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8",
         "f2", "f4", "f8", "c8"]
shapes = [(), (0,), (3, 0, 2), (7,), (3, 4), (2, 3, 4), (1, 2, 1, 2, 1, 2, 1, 2),
          (1234,)]

def make(code, shape):
    n = int(np.prod(shape)) if shape else 1
    if code == "b1":
        a = rng.integers(0, 2, n).astype(bool)
    elif code[0] in "ui":
        info = np.iinfo(np.dtype(code))
        a = rng.integers(info.min, info.max, n, dtype=np.dtype(code),
                         endpoint=True)
    elif code == "c8":
        a = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype("c8")
    else:
        a = rng.standard_normal(n).astype(code) * 100
        if n > 3:
            a[0], a[1], a[2] = np.inf, -np.inf, np.nan
    return a.reshape(shape)

# one dtype per kind and item size takes every shape; the others the
# shapes below (0-d, empty, 3-d, large), which still cross both byte
# orders and, for the 3-d one, Fortran order
full = {"b1", "u1", "f2", "f4", "i8", "c8"}
some = {0, 1, 5, 7}
arrays = {}
for code in codes:
    for si, shape in enumerate(shapes):
        if code not in full and si not in some:
            continue
        for order in ("<", ">"):
            if code in ("b1", "u1", "i1") and order == ">":
                continue
            a = make(code, shape).astype(order + code if code not in
                                         ("b1", "u1", "i1") else code)
            for fo in ("C", "F"):
                if fo == "F" and len(shape) < 2:
                    continue
                b = np.asfortranarray(a) if fo == "F" else a
                name = "%s_%s_%d_%s" % (code, "le" if order == "<" else "be",
                                        si, fo)
                np.save(d + "/src/" + name + ".npy", b)
                arrays[name] = b
# '=' and '|' byte orders written by hand from numpy's own header.
a = np.arange(6, dtype="<i4").reshape(2, 3)
for tag, bo in (("eq", "="), ("bar", "|")):
    p = d + "/src/byteorder_%s.npy" % tag
    hdr = "{'descr': '%si4', 'fortran_order': False, 'shape': (2, 3), }" % bo
    hdr += " " * (64 - 10 - len(hdr) - 1) + "\n"
    with open(p, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little"))
        f.write(hdr.encode("latin1"))
        f.write(a.tobytes())
# npz: stored and deflated, with names containing '/'.
sel = {k: arrays[k] for k in list(arrays)[::7]}
sel["dir/sub/weight"] = np.arange(12, dtype="<f4").reshape(3, 4)
np.savez(d + "/src/bundle.npz", **sel)
np.savez_compressed(d + "/src/bundle_c.npz", **sel)
np.savez(d + "/src/empty.npz")
np.savez(d + "/src/positional.npz", np.zeros(3, "f4"), np.ones((2, 2), ">i2"))
print("generated %d npy files" % len(os.listdir(d + "/src")))
EOF

mkdir -p "$tmp/st" "$tmp/out" "$tmp/direct"
for f in "$tmp"/src/*.npy; do
    b=$(basename "$f" .npy)
    "$WV" convert "$f" "$tmp/st/$b.safetensors" >/dev/null 2>"$tmp/err" ||
        { echo "FAIL: convert $b.npy -> safetensors: $(cat "$tmp/err")"; fail=1; continue; }
    "$WV" convert "$tmp/st/$b.safetensors" "$tmp/out/$b.npy" >/dev/null 2>"$tmp/err" ||
        { echo "FAIL: convert $b.safetensors -> npy: $(cat "$tmp/err")"; fail=1; }
    "$WV" convert "$f" "$tmp/direct/$b.npy" >/dev/null 2>"$tmp/err" ||
        { echo "FAIL: convert $b.npy -> npy: $(cat "$tmp/err")"; fail=1; }
done
for f in "$tmp"/src/*.npz; do
    b=$(basename "$f" .npz)
    "$WV" convert "$f" "$tmp/st/$b.safetensors" >/dev/null 2>"$tmp/err" ||
        { echo "FAIL: convert $b.npz -> safetensors: $(cat "$tmp/err")"; fail=1; continue; }
    "$WV" convert "$tmp/st/$b.safetensors" "$tmp/out/$b.npz" >/dev/null 2>"$tmp/err" ||
        { echo "FAIL: convert $b.safetensors -> npz: $(cat "$tmp/err")"; fail=1; }
    "$WV" convert --compress "$tmp/st/$b.safetensors" "$tmp/out/${b}_z.npz" >/dev/null 2>"$tmp/err" ||
        { echo "FAIL: convert --compress $b.safetensors -> npz: $(cat "$tmp/err")"; fail=1; }
    "$WV" convert "$f" "$tmp/direct/$b.npz" >/dev/null 2>"$tmp/err" ||
        { echo "FAIL: convert $b.npz -> npz: $(cat "$tmp/err")"; fail=1; }
    "$WV" verify "$f" >/dev/null 2>"$tmp/err" ||
        { echo "FAIL: verify $b.npz: $(cat "$tmp/err")"; fail=1; }
done

"$PYTHON" - "$tmp" <<'EOF' || fail=1
import sys, os, io, zipfile
import numpy as np
d = sys.argv[1]
bad = 0

def canon(a):
    a = np.asarray(a)
    dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
    # np.array keeps 0-d arrays 0-d (np.ascontiguousarray does not)
    return np.array(a, dtype=dt, order="C")

def same(a, b, what):
    global bad
    a, b = canon(a), canon(b)
    if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
        print("FAIL: %s: values differ (%s %s vs %s %s)" % (what, a.dtype,
              a.shape, b.dtype, b.shape))
        bad += 1
        return False
    return True

def npsave_bytes(a):
    buf = io.BytesIO()
    np.save(buf, canon(a))
    return buf.getvalue()

n = 0
for f in sorted(os.listdir(d + "/src")):
    src = d + "/src/" + f
    for sub in ("out", "direct"):
        p = d + "/" + sub + "/" + f
        if not os.path.exists(p):
            print("FAIL: %s missing" % p)
            bad += 1
            continue
        if f.endswith(".npy"):
            a = np.load(src)
            b = np.load(p)
            if same(a, b, sub + "/" + f):
                if open(p, "rb").read() != npsave_bytes(a):
                    print("FAIL: %s/%s is not byte-identical to np.save" %
                          (sub, f))
                    bad += 1
        else:
            za, zb = np.load(src), np.load(p)
            if sorted(za.files) != sorted(zb.files):
                print("FAIL: %s/%s keys %s vs %s" % (sub, f, za.files,
                                                     zb.files))
                bad += 1
                continue
            for k in za.files:
                same(za[k], zb[k], "%s/%s[%s]" % (sub, f, k))
            # every member is exactly what np.save writes
            with zipfile.ZipFile(p) as z:
                for k in za.files:
                    if z.read(k + ".npy") != npsave_bytes(za[k]):
                        print("FAIL: %s/%s member %s.npy differs from np.save"
                              % (sub, f, k))
                        bad += 1
                if z.testzip() is not None:
                    print("FAIL: %s/%s: zip CRC check failed" % (sub, f))
                    bad += 1
        n += 1
    if f.endswith(".npz"):
        p = d + "/out/" + f[:-4] + "_z.npz"
        za, zb = np.load(src), np.load(p)
        for k in za.files:
            same(za[k], zb[k], "compressed %s[%s]" % (f, k))
        with zipfile.ZipFile(p) as z:
            for i in z.infolist():
                if i.compress_type != zipfile.ZIP_DEFLATED:
                    print("FAIL: %s: member %s not deflated" % (p, i.filename))
                    bad += 1
            if z.testzip() is not None:
                print("FAIL: %s: zip CRC check failed" % p)
                bad += 1
        n += 1
print("checked %d files, %d failures" % (n, bad))
sys.exit(1 if bad else 0)
EOF

if [ $fail -ne 0 ]; then
    echo "npy_interop: FAILED"
    exit 1
fi
echo "npy_interop: ok"
