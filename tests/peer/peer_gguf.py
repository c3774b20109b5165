#!/usr/bin/python3
"""peer_gguf.py -- an independent GGUF reader (struct + numpy), written
from the GGUF specification (ggml docs/gguf.md), not from weightvault.

dump(path) -> dict in the `wv inspect --json` schema:
  {"format": "gguf", "metadata": {"gguf.<key>": encoded value},
   "tensors": [{"name", "dtype", "shape", "nbytes", "sha256"}]}

Shapes are reported outermost-first (the reverse of GGUF's ne[] order);
sha256 is over the tensor bytes as stored (ggml's row-major layout is C
order of the reversed shape, little-endian; block-quantised tensors are
hashed as their raw blocks). Metadata values use the typed text encoding
documented in src/formats/gguf.c: "u32:7", "f32[]:[0,1.5]",
'str:"llama"' (JSON-style escapes, raw non-UTF-8 bytes as \\udcXX),
"nan:0x..." for NaN floats.

Also usable as a script: peer_gguf.py FILE prints the dump as JSON.
"""
import hashlib
import json
import struct
import sys

import numpy as np

# ggml type id -> (name, block elements, bytes per block)
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36), 10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110), 22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56), 30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
}
# value type id -> (name, struct format)
VTYPES = {
    0: ("u8", "<B"), 1: ("i8", "<b"), 2: ("u16", "<H"), 3: ("i16", "<h"),
    4: ("u32", "<I"), 5: ("i32", "<i"), 6: ("f32", "<f"), 7: ("bool", "<B"),
    8: ("str", None), 10: ("u64", "<Q"), 11: ("i64", "<q"),
    12: ("f64", "<d"),
}


class GGUFError(ValueError):
    pass


def enc_str(raw):
    """The metadata encoding of a GGUF string (bytes)."""
    out = ['"']
    for ch in raw.decode("utf-8", "surrogateescape"):
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t"}[ch])
        elif o < 0x20 or 0xdc80 <= o <= 0xdcff:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def enc_scalar(t, raw_bytes):
    """Text of one non-string scalar given its raw little-endian bytes."""
    name, fmt = VTYPES[t]
    v = struct.unpack(fmt, raw_bytes)[0]
    if name == "bool":
        if v > 1:
            raise GGUFError("bool value %d is not 0 or 1" % v)
        return "true" if v else "false"
    if name == "f32":
        if v != v:
            return "nan:0x%08x" % struct.unpack("<I", raw_bytes)[0]
        return "%.9g" % v
    if name == "f64":
        if v != v:
            return "nan:0x%016x" % struct.unpack("<Q", raw_bytes)[0]
        return "%.17g" % v
    return "%d" % v


class Reader:
    def __init__(self, buf):
        self.buf = buf
        self.p = 0

    def take(self, n):
        if n > len(self.buf) - self.p:
            raise GGUFError("truncated at offset %d" % self.p)
        b = self.buf[self.p:self.p + n]
        self.p += n
        return b

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def string(self):
        return bytes(self.take(self.u64()))

    def scalar(self, t):
        if t == 8:
            return enc_str(self.string())
        fmt = VTYPES[t][1]
        return enc_scalar(t, bytes(self.take(struct.calcsize(fmt))))

    def value(self, t):
        if t == 9:
            et = self.u32()
            if et not in VTYPES:
                raise GGUFError("bad array element type %d" % et)
            n = self.u64()
            return "%s[]:[%s]" % (VTYPES[et][0],
                                  ",".join(self.scalar(et) for _ in range(n)))
        if t not in VTYPES:
            raise GGUFError("bad value type %d" % t)
        return "%s:%s" % (VTYPES[t][0], self.scalar(t))


def pad(x, a):
    return (x + a - 1) // a * a


def parse(buf):
    """(metadata dict, alignment, [(name, type, ne, offset)], data_start)"""
    r = Reader(buf)
    if bytes(r.take(4)) != b"GGUF":
        raise GGUFError("no GGUF magic")
    version = r.u32()
    if version not in (2, 3):
        raise GGUFError("unsupported version %d" % version)
    n_tensors = r.u64()
    n_kv = r.u64()
    meta = {}
    align = 32
    for _ in range(n_kv):
        key = r.string().decode("utf-8")
        t = r.u32()
        start = r.p
        val = r.value(t)
        if "gguf." + key in meta:
            raise GGUFError("duplicate key %r" % key)
        if key == "general.alignment":
            if t != 4:
                raise GGUFError("general.alignment is not u32")
            align = struct.unpack_from("<I", buf, start)[0]
        meta["gguf." + key] = val
    infos = []
    for _ in range(n_tensors):
        name = r.string().decode("utf-8")
        nd = r.u32()
        ne = [r.u64() for _ in range(nd)]
        t = r.u32()
        off = r.u64()
        infos.append((name, t, ne, off))
    return meta, align, infos, pad(r.p, align)


def dump(path):
    with open(path, "rb") as f:
        buf = f.read()
    meta, align, infos, data_start = parse(buf)
    tensors = []
    expect = 0
    for name, t, ne, off in infos:
        if t not in GGML_TYPES:
            raise GGUFError("tensor %r: unknown ggml type %d" % (name, t))
        tname, be, bb = GGML_TYPES[t]
        if off != expect:
            raise GGUFError("tensor %r: offset %d, expected %d"
                            % (name, off, expect))
        numel = int(np.prod(ne, dtype=object)) if ne else 1
        if be > 1 and (not ne or ne[0] % be):
            raise GGUFError("tensor %r: row not a multiple of %d" % (name, be))
        nbytes = numel // be * bb
        raw = buf[data_start + off:data_start + off + nbytes]
        if len(raw) != nbytes:
            raise GGUFError("tensor %r: truncated" % name)
        expect = pad(off + nbytes, align)
        tensors.append({"name": name, "dtype": tname,
                        "shape": [int(d) for d in reversed(ne)],
                        "nbytes": nbytes,
                        "sha256": hashlib.sha256(raw).hexdigest()})
    return {"format": "gguf", "metadata": meta, "tensors": tensors}


# ---- reading values back (for interop checks) -----------------------------

NP_OF = {"F32": "<f4", "F16": "<f2", "F64": "<f8", "I8": "i1", "I16": "<i2",
         "I32": "<i4", "I64": "<i8"}


def f16(b):
    return np.frombuffer(b, dtype="<f2").astype(np.float32)


# ---- K-quants: 256 elements per block, whole arrays of blocks at once.
# Every function returns float32 of shape (blocks, 256); float32 numpy
# arithmetic rounds each operation as C float arithmetic does.

F32 = np.float32


def _q2_k(b):
    nb = b.shape[0]
    sc = b[:, 0:16].reshape(nb, 2, 4, 2)          # [half 128, shift, 16]
    qs = b[:, 16:80].reshape(nb, 2, 1, 2, 16)
    d, dmin = f16(b[:, 80:82].tobytes()), f16(b[:, 82:84].tobytes())
    shifts = (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1, 1)
    q = ((qs >> shifts) & 3).astype(F32)          # (nb, 2, 4, 2, 16)
    dl = d[:, None, None, None] * (sc & 0x0F).astype(F32)
    ml = dmin[:, None, None, None] * (sc >> 4).astype(F32)
    return (dl[..., None] * q - ml[..., None]).reshape(nb, 256)


def _q3_k(b):
    nb = b.shape[0]
    hm = b[:, 0:32].reshape(nb, 1, 1, 2, 16)
    qs = b[:, 32:96].reshape(nb, 2, 1, 2, 16)
    aux = np.frombuffer(b[:, 96:108].tobytes(), dtype="<u4").reshape(nb, 3)
    a0, a1, tmp = aux[:, 0], aux[:, 1], aux[:, 2]
    k1, k2 = np.uint32(0x03030303), np.uint32(0x0F0F0F0F)
    words = np.stack([(a0 & k2) | (((tmp >> 0) & k1) << 4),
                      (a1 & k2) | (((tmp >> 2) & k1) << 4),
                      ((a0 >> 4) & k2) | (((tmp >> 4) & k1) << 4),
                      ((a1 >> 4) & k2) | (((tmp >> 6) & k1) << 4)], axis=1)
    scales = words.astype("<u4").view(np.int8).reshape(nb, 2, 4, 2)
    d = f16(b[:, 108:110].tobytes())
    shift = np.arange(4, dtype=np.uint8).reshape(1, 1, 4, 1, 1)
    half = np.arange(2, dtype=np.uint8).reshape(1, 2, 1, 1, 1)
    low = ((qs >> (2 * shift)) & 3).astype(np.int32)
    high = (hm >> (4 * half + shift)) & 1
    v = (low - np.where(high == 1, 0, 4)).astype(F32)
    dl = d[:, None, None, None] * (scales.astype(np.int32) - 32).astype(F32)
    return (dl[..., None] * v).reshape(nb, 256)


def _scale_min_k4(sc):
    """(scales, mins) of shape (blocks, 8) from the 12 packed bytes."""
    sc = sc.astype(np.uint32)
    s = np.empty((sc.shape[0], 8), dtype=np.uint32)
    m = np.empty_like(s)
    s[:, :4] = sc[:, 0:4] & 63
    m[:, :4] = sc[:, 4:8] & 63
    s[:, 4:] = (sc[:, 8:12] & 0xF) | ((sc[:, 0:4] >> 6) << 4)
    m[:, 4:] = (sc[:, 8:12] >> 4) | ((sc[:, 4:8] >> 6) << 4)
    return s, m


def _q45_k(b, five):
    nb = b.shape[0]
    d, dmin = f16(b[:, 0:2].tobytes()), f16(b[:, 2:4].tobytes())
    s, m = _scale_min_k4(b[:, 4:16])
    qs = b[:, 48:176] if five else b[:, 16:144]
    qs = qs.reshape(nb, 4, 32)
    q = np.stack([qs & 0x0F, qs >> 4], axis=2).astype(np.uint32)
    if five:                                   # bit 2c (low), 2c+1 (high)
        qh = b[:, 16:48].reshape(nb, 1, 1, 32).astype(np.uint32)
        bit = np.arange(8, dtype=np.uint32).reshape(1, 4, 2, 1)
        q = q + ((qh >> bit) & 1) * 16
    ds = (d[:, None] * s.astype(F32)).reshape(nb, 4, 2, 1)
    ms = (dmin[:, None] * m.astype(F32)).reshape(nb, 4, 2, 1)
    return (ds * q.astype(F32) - ms).reshape(nb, 256)


def _q6_k(b):
    nb = b.shape[0]
    ql = b[:, 0:128].reshape(nb, 2, 2, 32)           # [half, +0/+32, l]
    qh = b[:, 128:192].reshape(nb, 2, 1, 32)
    sc = b[:, 192:208].view(np.int8).reshape(nb, 2, 4, 2)  # [half, k, l/16]
    d = f16(b[:, 208:210].tobytes())
    lo = ql & 0x0F                                   # q1 (k=0), q2 (k=1)
    hi = ql >> 4                                     # q3 (k=2), q4 (k=3)
    nib = np.concatenate([lo, hi], axis=2)           # (nb, 2, 4, 32)
    shift = (2 * np.arange(4, dtype=np.uint8)).reshape(1, 1, 4, 1)
    q = (nib | (((qh >> shift) & 3) << 4)).astype(np.int32) - 32
    scl = np.repeat(sc, 16, axis=3).astype(F32)      # (nb, 2, 4, 32)
    return ((d[:, None, None, None] * scl) * q.astype(F32)).reshape(nb, 256)


def _q8_k(b):
    nb = b.shape[0]
    d = np.frombuffer(b[:, 0:4].tobytes(), dtype="<f4")
    q = b[:, 4:260].view(np.int8).astype(F32)
    return (d[:, None] * q).reshape(nb, 256)


KV_IQ4 = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38,
                   53, 69, 89, 113], dtype=np.int8)


def _iq4_nl(b):
    nb = b.shape[0]
    d = f16(b[:, 0:2].tobytes())
    qs = b[:, 2:18]
    q = KV_IQ4[np.concatenate([qs & 0x0F, qs >> 4], axis=1)].astype(F32)
    return d[:, None] * q


def _iq4_xs(b):
    nb = b.shape[0]
    d = f16(b[:, 0:2].tobytes())
    sh = np.frombuffer(b[:, 2:4].tobytes(), dtype="<u2").astype(np.int32)
    sl = b[:, 4:8].astype(np.int32)
    ib = np.arange(8)
    lo = (sl[:, ib // 2] >> (4 * (ib % 2))) & 0xF
    hi = (sh[:, None] >> (2 * ib)) & 3
    dl = d[:, None] * ((lo | (hi << 4)) - 32).astype(F32)    # (nb, 8)
    qs = b[:, 8:136].reshape(nb, 8, 16)
    q = KV_IQ4[np.concatenate([qs & 0x0F, qs >> 4], axis=2)].astype(F32)
    return (dl[:, :, None] * q).reshape(nb, 256)


KV_MXFP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12],
                    dtype=np.int8)


def _mxfp4(b):
    e = b[:, 0].astype(np.uint32)
    bits = np.where(e < 2, np.uint32(0x00200000) << e, (e - 1) << 23)
    d = bits.astype("<u4").view(np.float32)
    qs = b[:, 1:17]
    q = KV_MXFP4[np.concatenate([qs & 0x0F, qs >> 4], axis=1)].astype(F32)
    return q * d[:, None]


K_QUANTS = {"MXFP4": _mxfp4, "IQ4_NL": _iq4_nl, "IQ4_XS": _iq4_xs, "Q2_K": _q2_k, "Q3_K": _q3_k, "Q4_K": lambda b: _q45_k(b, False),
            "Q5_K": lambda b: _q45_k(b, True), "Q6_K": _q6_k, "Q8_K": _q8_k}


def dequant(tname, raw, numel):
    """ggml's reference dequantisation for Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 and the
    K-quants, in float32, written from the block layouts in ggml-common.h
    and the order of operations of ggml's dequantize_row_*."""
    _, be, bb = [v for v in GGML_TYPES.values() if v[0] == tname][0]
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, bb)
    d = f16(blocks[:, 0:2].tobytes())[:, None]
    if tname == "Q8_0":
        q = blocks[:, 2:].view(np.int8).astype(np.float32)
        return (q * d).reshape(-1)
    if tname in ("Q4_0", "Q4_1"):
        qs = blocks[:, 2:] if tname == "Q4_0" else blocks[:, 4:]
        lo = (qs & 0x0f).astype(np.int32)
        hi = (qs >> 4).astype(np.int32)
        q = np.concatenate([lo, hi], axis=1)
        if tname == "Q4_0":
            return ((q - 8).astype(np.float32) * d).reshape(-1)
        m = f16(blocks[:, 2:4].tobytes())[:, None]
        return (q.astype(np.float32) * d + m).reshape(-1)
    if tname in ("Q5_0", "Q5_1"):
        o = 2 if tname == "Q5_0" else 4
        qh = np.frombuffer(blocks[:, o:o + 4].tobytes(), dtype="<u4")[:, None]
        qs = blocks[:, o + 4:]
        j = np.arange(16, dtype=np.uint32)[None, :]
        h0 = ((qh >> j) & 1) << 4
        h1 = ((qh >> (j + 16)) & 1) << 4
        q = np.concatenate([(qs & 0x0f) | h0, (qs >> 4) | h1],
                           axis=1).astype(np.int32)
        if tname == "Q5_0":
            return ((q - 16).astype(np.float32) * d).reshape(-1)
        m = f16(blocks[:, 2:4].tobytes())[:, None]
        return (q.astype(np.float32) * d + m).reshape(-1)
    if tname in K_QUANTS:
        return K_QUANTS[tname](blocks).reshape(-1)
    raise GGUFError("no dequantisation for %s" % tname)


def arrays(path):
    """{name: numpy array} (block types dequantised to float32 where the
    reference above covers them, else raw uint8 blocks)."""
    with open(path, "rb") as f:
        buf = f.read()
    _, align, infos, data_start = parse(buf)
    out = {}
    for name, t, ne, off in infos:
        tname, be, bb = GGML_TYPES[t]
        shape = [int(d) for d in reversed(ne)]
        numel = int(np.prod(shape)) if shape else 1
        raw = buf[data_start + off:data_start + off + numel // be * bb]
        if tname in NP_OF:
            out[name] = np.frombuffer(raw, dtype=NP_OF[tname]).reshape(shape)
        elif tname == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            out[name] = u.view(np.float32).reshape(shape)
        else:
            try:
                out[name] = dequant(tname, raw, numel).reshape(shape)
            except GGUFError:
                out[name] = np.frombuffer(raw, dtype=np.uint8)
    return out


if __name__ == "__main__":
    try:
        json.dump(dump(sys.argv[1]), sys.stdout)
    except (GGUFError, UnicodeDecodeError) as e:
        print("peer_gguf: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        sys.exit(1)
    print()
