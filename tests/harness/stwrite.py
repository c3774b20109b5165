"""stwrite.py -- write safetensors files for the CLI tests from NumPy
arrays, independently of the library under test (tests/harness/cli.sh puts
this directory on PYTHONPATH).

    from stwrite import write_st
    write_st(path, {"w": np.ones((2, 3), "<f4")}, meta={"k": "v"})

Tensors are stored in the order given, with a header padded to 8 bytes as
the reference writer does; arrays are made little-endian and contiguous.
"""
import json
import struct

import numpy as np

_NAMES = {"f8": "F64", "f4": "F32", "f2": "F16", "i8": "I64", "i4": "I32",
          "i2": "I16", "i1": "I8", "u8": "U64", "u4": "U32", "u2": "U16",
          "u1": "U8", "b1": "BOOL"}


def write_st(path, tensors, meta=None):
    hdr, off, blobs = {}, 0, []
    if meta:
        hdr["__metadata__"] = meta
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        b = a.tobytes()
        hdr[name] = {"dtype": _NAMES[a.dtype.str[1:]],
                     "shape": list(a.shape),
                     "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)
