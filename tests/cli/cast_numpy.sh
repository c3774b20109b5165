#!/usr/bin/env bash
# cast_numpy.sh -- `wv convert --dtype F16` must agree bit for bit with
# numpy's float32 -> float16 astype (round to nearest even), and
# `--dtype BF16` with a numpy implementation of RNE on the top 16 bits
# (numpy has no bfloat16). Random bit patterns plus hand-picked specials;
# F64 input is checked against numpy's float64 -> float16 too.
# Env: WV, PYTHON.
set -u
: "${PYTHON:=/usr/bin/python3}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" - "$tmp" "$WV" <<'PY'
import json, os, struct, subprocess, sys
import numpy as np

tmp, wv = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(20240601)

def write_st(path, tensors):
    hdr, off, blobs = {}, 0, []
    for name, arr in tensors:
        b = arr.tobytes()
        dt = {"<f4": "F32", "<f8": "F64"}[arr.dtype.str]
        hdr[name] = {"dtype": dt, "shape": list(arr.shape),
                     "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def read_st(path):
    buf = open(path, "rb").read()
    n = struct.unpack_from("<Q", buf)[0]
    hdr = json.loads(buf[8:8 + n])
    out = {}
    for k, v in hdr.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        out[k] = (v["dtype"], np.frombuffer(buf[8 + n + b:8 + n + e], dtype="<u2"))
    return out

specials32 = np.array([
    0x00000000, 0x80000000, 0x3f800000, 0x3f801000, 0x3f803000, 0x3f802001,
    0x477fe000, 0x477fefff, 0x477ff000, 0x477ff001, 0xc77ff000,
    0x33800000, 0x33000000, 0x33400000, 0x33000001, 0xb3000000,
    0x387fc000, 0x387fe000, 0x00000001, 0x007fffff, 0x7f7fffff,
    0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0xff812345,
    0x3f808000, 0x3f818000, 0x3f808001, 0x7f7f8000, 0x7f7f7fff, 0x00008000,
    0x00018000,
], dtype=np.uint32)
rand32 = rng.integers(0, 2**32, size=200000, dtype=np.uint64).astype(np.uint32)
# and dense coverage of the F16 range, where rounding matters most
near = rng.integers(0x33000000, 0x47800000, size=200000, dtype=np.uint64).astype(np.uint32)
bits32 = np.concatenate([specials32, rand32, near])
f32 = bits32.view("<f4")
with np.errstate(all="ignore"):
    f32_as_64 = f32.astype("<f8")
f64 = np.concatenate([f32_as_64,
                      rng.standard_normal(100000) * 10.0 ** rng.integers(-9, 6, 100000),
                      np.array([1 + 2**-11 + 2**-40, 65519.999999, 2.0**-25 + 2.0**-60,
                                1 + 2**-8 + 2**-30, -0.0, np.inf, -np.inf])]).astype("<f8")

src = os.path.join(tmp, "in.safetensors")
write_st(src, [("a32", f32), ("b64", f64)])
failures = 0

def nan16(x, expmask, mant):
    return ((x & expmask) == expmask) & ((x & mant) != 0)

for dtype in ("F16", "BF16"):
    out = os.path.join(tmp, "out-%s.safetensors" % dtype)
    r = subprocess.run([wv, "convert", "--dtype", dtype, src, out],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: wv convert --dtype %s: %s" % (dtype, r.stderr))
        sys.exit(1)
    got = read_st(out)
    for name, x in (("a32", f32), ("b64", f64)):
        gdt, g = got[name]
        if gdt != dtype:
            print("FAIL: %s written as %s, want %s" % (name, gdt, dtype))
            failures += 1
            continue
        with np.errstate(all="ignore"):
            if dtype == "F16":
                want = x.astype("<f2").view("<u2")
                isnan = nan16(want, 0x7c00, 0x03ff)
                gnan = nan16(g, 0x7c00, 0x03ff)
            else:
                if name == "a32":
                    u = x.view("<u4").astype(np.uint64)
                    want = ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)
                else:
                    # F64 -> BF16 rounds once, from the double: round the
                    # significand to 8 bits with np.rint (ties to even),
                    # exactly, then take the F32 pattern's top half. Only
                    # for BF16's normal range; overflow gives infinity.
                    m, e = np.frexp(x)
                    r = np.ldexp(np.rint(m * 256.0), e - 8)
                    keep = np.isnan(x) | np.isinf(x) | (np.abs(x) >= 2.0**-126)
                    x, g = x[keep], g[keep]
                    r = r[keep]
                    r = np.where(np.abs(r) >= 2.0**128, np.copysign(np.inf, r), r)
                    want = (r.astype("<f4").view("<u4") >> 16).astype(np.uint16)
                isnan = np.isnan(x)
                gnan = nan16(g, 0x7f80, 0x007f)
        ok_nan = isnan == gnan
        # NaN: sign kept and quiet
        sign_ok = ~isnan | ((g >> 15) == (np.signbit(x)).astype(np.uint16))
        quiet = ~isnan | ((g & (0x0200 if dtype == "F16" else 0x0040)) != 0)
        eq = isnan | (g == want)
        bad = ~(ok_nan & sign_ok & quiet & eq)
        if bad.any():
            idx = np.nonzero(bad)[0][:10]
            for i in idx:
                print("FAIL: %s %s[%d] = %r (bits %s): wv 0x%04x, numpy 0x%04x"
                      % (dtype, name, i, x[i], hex(x.view("<u%d" % x.itemsize)[i]),
                         g[i], want[i]))
            print("FAIL: %d of %d %s elements of %s differ" % (bad.sum(), len(x), dtype, name))
            failures += 1
        else:
            print("ok: %s %s: %d elements agree" % (dtype, name, len(x)))
sys.exit(1 if failures else 0)
PY
