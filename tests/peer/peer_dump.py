#!/usr/bin/python3
"""peer_dump.py FILE -- describe a weights file the way `wv inspect --json`
does, without weightvault: numpy for .npy/.npz, for safetensors the
header parsed with the json module and the data viewed with
numpy.frombuffer, and the framework formats through peer_<fmt>.py (torch
for .pth, h5py for Keras, independent readers for MXNet and GGUF).

Output schema (one JSON object on stdout):
  {"format": "safetensors"|"npy"|"npz", "metadata": {k: v},
   "tensors": [{"name", "dtype", "shape", "nbytes", "sha256"}]}
sha256 is over the elements in C order, little-endian. Exit status 1 with
a message on stderr when numpy refuses the file (object arrays need
pickle, which this peer never enables).
"""
import hashlib
import json
import os
import struct
import sys
import zipfile

import numpy as np

# numpy dtype -> safetensors spelling
NP_TO_ST = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "uint16": "U16",
    "int16": "I16", "uint32": "U32", "int32": "I32", "uint64": "U64",
    "int64": "I64", "float16": "F16", "float32": "F32", "float64": "F64",
    "complex64": "C64",
}
# safetensors dtype -> (numpy little-endian dtype or None, element size)
ST_TYPES = {
    "BOOL": ("|b1", 1), "U8": ("|u1", 1), "I8": ("|i1", 1),
    "U16": ("<u2", 2), "I16": ("<i2", 2), "U32": ("<u4", 4),
    "I32": ("<i4", 4), "U64": ("<u8", 8), "I64": ("<i8", 8),
    "F16": ("<f2", 2), "BF16": ("<u2", 2), "F32": ("<f4", 4),
    "F64": ("<f8", 8), "C64": ("<c8", 8), "F8_E4M3": ("|u1", 1),
    "F8_E5M2": ("|u1", 1),
}


def describe(name, arr):
    """Tensor entry for a numpy array, bytes in C order little-endian."""
    base = np.dtype(arr.dtype.str.replace(">", "<"))
    dtname = NP_TO_ST.get(base.name)
    if dtname is None:
        raise ValueError("tensor %r has unsupported dtype %s" % (name, arr.dtype))
    le = np.ascontiguousarray(arr, dtype=base.newbyteorder("<"))
    data = le.tobytes(order="C")
    return {"name": name, "dtype": dtname, "shape": list(arr.shape),
            "nbytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def npy_name(path):
    """A .npy holds one tensor, named after the file without extension."""
    base = os.path.basename(path)
    return base[:-4] if base.endswith(".npy") else base


def dump_safetensors(buf):
    n = struct.unpack_from("<Q", buf, 0)[0]
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    data = memoryview(buf)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    tensors = []
    for name, info in header.items():
        npdt, size = ST_TYPES[info["dtype"]]
        b, e = info["data_offsets"]
        shape = [int(d) for d in info["shape"]]
        count = 1
        for d in shape:
            count *= d
        assert e - b == count * size, name
        arr = np.frombuffer(data[b:e], dtype=np.dtype(npdt)).reshape(shape)
        raw = arr.tobytes(order="C")
        tensors.append({"name": name, "dtype": info["dtype"], "shape": shape,
                        "nbytes": len(raw),
                        "sha256": hashlib.sha256(raw).hexdigest()})
    return {"format": "safetensors", "metadata": meta, "tensors": tensors}


def framework_peer(path, buf):
    """The peer module for a framework format (each uses that framework or
    an independent reader), chosen by content like wv does; None for the
    formats handled here."""
    if buf[:4] == b"GGUF":
        import peer_gguf
        return peer_gguf
    if buf[:8] == struct.pack("<Q", 0x112):
        import peer_mxnet
        return peer_mxnet
    if buf[:8] == b"\x89HDF\r\n\x1a\n":
        import peer_keras
        return peer_keras
    if buf[:3] == b"\x80\x02\x8a":  # legacy torch.save pickle stream
        import peer_pth
        return peer_pth
    if buf[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        if any(n.endswith("/data.pkl") for n in names):
            import peer_pth
            return peer_pth
        if "model.weights.h5" in names and "config.json" in names:
            import peer_keras
            return peer_keras
    return None


def main():
    path = sys.argv[1]
    with open(path, "rb") as f:
        buf = f.read()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        other = framework_peer(path, buf)
        if other is not None:
            out = other.dump(path)
        elif buf[:6] == b"\x93NUMPY":
            arr = np.load(path, allow_pickle=False)
            out = {"format": "npy", "metadata": {},
                   "tensors": [describe(npy_name(path), arr)]}
        elif buf[:4] == b"PK\x03\x04" or zipfile.is_zipfile(path):
            with np.load(path, allow_pickle=False) as z:
                tensors = [describe(k, z[k]) for k in z.files]
            out = {"format": "npz", "metadata": {}, "tensors": tensors}
        else:
            out = dump_safetensors(buf)
    except ValueError as e:
        print("peer_dump: %s: %s" % (path, e), file=sys.stderr)
        return 1
    json.dump(out, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
