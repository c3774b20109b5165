#!/usr/bin/python3
"""peer_mxnet.py -- an independent reader of MXNet NDArray list files.

Written from the format description (apache/mxnet src/ndarray/ndarray.cc
NDArray::Save/Load/LegacyLoad, mshadow base.h TypeFlag), with the struct
module and numpy only; it shares no code with weightvault. MXNet itself is
not packaged in Debian, so this is the oracle the golden and interop tests
compare `wv inspect --json` with.

dump(path) -> {"format": "mxnet", "metadata": {...},
               "tensors": [{"name", "dtype", "shape", "nbytes", "sha256"}]}
sha256 is over the elements in C order, little-endian (MXNet stores them so
on every machine it runs on). Names are kept as stored; a list without
names gets "0", "1", ... Loading "<prefix>-NNNN.params" attaches
"<prefix>-symbol.json" beside it, if present, as metadata "mxnet.symbol"
(the file's text exactly). Sparse and 'none' arrays raise ValueError.

Run as a script: peer_mxnet.py FILE prints the JSON on stdout.
"""
import hashlib
import json
import os
import re
import struct
import sys

import numpy as np

LIST_MAGIC = 0x112
V1, V2, V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
# type_flag -> (safetensors-style name, numpy little-endian dtype)
TYPES = {
    0: ("F32", "<f4"), 1: ("F64", "<f8"), 2: ("F16", "<f2"),
    3: ("U8", "|u1"), 4: ("I32", "<i4"), 5: ("I8", "|i1"),
    6: ("I64", "<i8"), 7: ("BOOL", "|b1"), 8: ("I16", "<i2"),
    9: ("U16", "<u2"), 10: ("U32", "<u4"), 11: ("U64", "<u8"),
    12: ("BF16", "<u2"),  # numpy has no bfloat16: the bits are enough
}


class Reader:
    def __init__(self, buf):
        self.buf = buf
        self.off = 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.off + size > len(self.buf):
            raise ValueError("truncated at offset %d" % self.off)
        vals = struct.unpack_from(fmt, self.buf, self.off)
        self.off += size
        return vals

    def bytes(self, n):
        if n < 0 or self.off + n > len(self.buf):
            raise ValueError("truncated: %d bytes at offset %d" % (n, self.off))
        b = self.buf[self.off:self.off + n]
        self.off += n
        return b


def read_array(r, idx):
    (magic,) = r.take("<I")
    if magic in (V2, V3):
        (stype,) = r.take("<i")
        if stype in (1, 2):
            raise ValueError("array %d: sparse storage" % idx)
        if stype != 0:
            raise ValueError("array %d: storage type %d" % (idx, stype))
    if magic in (V1, V2, V3):
        (ndim,) = r.take("<i")
        if ndim < 0 or (ndim == 0 and magic != V3):
            raise ValueError("array %d: 'none' array" % idx)
        shape = list(r.take("<%dq" % ndim)) if ndim else []
    else:
        ndim = magic  # pre-V1: the magic is ndim, dims are uint32
        if ndim == 0 or ndim > 32:
            raise ValueError("array %d: bad magic/ndim %#x" % (idx, magic))
        shape = list(r.take("<%dI" % ndim))
    if any(d < 0 for d in shape):
        raise ValueError("array %d: negative dimension" % idx)
    dev_type, dev_id, flag = r.take("<iii")
    if dev_type not in (1, 2, 3, 5) or dev_id < 0:
        raise ValueError("array %d: bad context (%d, %d)"
                         % (idx, dev_type, dev_id))
    if flag not in TYPES:
        raise ValueError("array %d: unknown type flag %d" % (idx, flag))
    name, npdt = TYPES[flag]
    count = 1
    for d in shape:
        count *= d
    raw = r.bytes(count * np.dtype(npdt).itemsize)
    arr = np.frombuffer(raw, dtype=np.dtype(npdt)).reshape(shape)
    data = np.ascontiguousarray(arr).tobytes(order="C")
    return {"dtype": name, "shape": shape, "nbytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def symbol_for(path):
    m = re.match(r"^(.*[^/])-[0-9]{4,}\.params$", path)
    if not m or "/" in path[len(m.group(1)):]:
        return None
    sym = m.group(1) + "-symbol.json"
    if not os.path.isfile(sym):
        return None
    with open(sym, "rb") as f:
        text = f.read().decode("utf-8")
    json.loads(text)  # must be one JSON value
    return text


def dump(path):
    with open(path, "rb") as f:
        buf = f.read()
    r = Reader(buf)
    magic, reserved, n = r.take("<QQQ")
    if magic != LIST_MAGIC or reserved != 0:
        raise ValueError("bad magic %#x / reserved %d" % (magic, reserved))
    arrays = [read_array(r, i) for i in range(n)]
    (k,) = r.take("<Q")
    if k not in (0, n):
        raise ValueError("name count %d for %d arrays" % (k, n))
    names = []
    for _ in range(k):
        (ln,) = r.take("<Q")
        names.append(r.bytes(ln).decode("utf-8"))
    if r.off != len(buf):
        raise ValueError("%d trailing bytes" % (len(buf) - r.off))
    if not names:
        names = [str(i) for i in range(n)]
    if len(set(names)) != len(names) or any(
            not nm or "\0" in nm for nm in names):
        raise ValueError("empty, NUL-holding or duplicate names")
    tensors = []
    for nm, a in zip(names, arrays):
        t = {"name": nm}
        t.update(a)
        tensors.append(t)
    meta = {}
    sym = symbol_for(path)
    if sym is not None:
        meta["mxnet.symbol"] = sym
    return {"format": "mxnet", "metadata": meta, "tensors": tensors}


def main():
    try:
        out = dump(sys.argv[1])
    except ValueError as e:
        print("peer_mxnet: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
