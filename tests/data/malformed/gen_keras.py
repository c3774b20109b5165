#!/usr/bin/python3
"""gen_keras.py -- write the malformed Keras HDF5 / .keras corpus.

One file per rejection rule of src/formats/keras.c into keras/<rule>.bin,
each with <rule>.bin.expect whose first line is a substring the error
message of `wv verify` must contain. Files are built with h5py (Debian's
python3-h5py, run with /usr/bin/python3) and, where h5py cannot express
the fault, patched bytes. The outputs are committed; rerun only to add a
case. Generation is deterministic apart from HDF5 timestamps, which h5py
leaves off by default for datasets.
"""
import io
import os
import shutil
import struct
import zipfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "keras")
SIG = b"\x89HDF\r\n\x1a\n"


def h5(build):
    """Bytes of an HDF5 file made by build(f) (in memory)."""
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        build(f)
    return buf.getvalue()


def put(rule, data, expect):
    with open(os.path.join(OUT, rule + ".bin"), "wb") as fh:
        fh.write(data)
    with open(os.path.join(OUT, rule + ".bin.expect"), "w") as fh:
        fh.write(expect + "\n")


def legacy(f, weight_names=(b"d/kernel:0",), layers=(b"d",)):
    f.attrs["layer_names"] = list(layers)
    f.attrs["backend"] = "tensorflow"
    f.attrs["keras_version"] = "2.15.0"
    g = f.create_group("d")
    g.attrs["weight_names"] = list(weight_names)
    g["d/kernel:0"] = np.ones((2, 2), "<f4")


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)

    def soft(f):
        f["a"] = np.zeros(2, "<f4")
        f["b"] = h5py.SoftLink("/a")
    put("soft_link", h5(soft), "is a soft link")

    def ext(f):
        f["a"] = np.zeros(2, "<f4")
        f["b"] = h5py.ExternalLink("/etc/passwd.h5", "/x")
    put("external_link", h5(ext), "is an external link")

    def extstore(f):
        f.create_dataset("a", (4,), "<f4", external=[("/etc/hostname", 0,
                                                      16)])
    put("external_storage", h5(extstore), "keeps its data in external files")

    def virtual(f):
        f["src"] = np.arange(4, dtype="<f4")
        lay = h5py.VirtualLayout(shape=(4,), dtype="<f4")
        lay[:] = h5py.VirtualSource(".", "src", shape=(4,))
        f.create_virtual_dataset("v", lay)
    # A memory image has no file name for the virtual source: build on disk.
    path = os.path.join(OUT, "tmp.h5")
    with h5py.File(path, "w") as f:
        virtual(f)
    with open(path, "rb") as fh:
        put("virtual_dataset", fh.read(), "is a virtual dataset")
    os.unlink(path)

    put("string_dataset", h5(lambda f: f.create_dataset(
        "s", data=np.array([b"ab", b"cd"]))), "holds string values")
    put("vlen_dataset", h5(lambda f: f.create_dataset(
        "v", (2,), dtype=h5py.vlen_dtype(np.dtype("<i4")))),
        "holds variable-length values")

    def ref(f):
        f["a"] = np.zeros(1, "<f4")
        d = f.create_dataset("r", (1,), dtype=h5py.ref_dtype)
        d[0] = f["a"].ref
    put("reference_dataset", h5(ref), "holds reference values")
    put("compound_dataset", h5(lambda f: f.create_dataset(
        "c", (2,), dtype=np.dtype([("x", "<i4"), ("y", "<f8")]))),
        "compound values that are not h5py's complex64")
    put("enum_dataset", h5(lambda f: f.create_dataset(
        "e", (2,), dtype=h5py.enum_dtype({"RED": 0, "GREEN": 1, "BLUE": 2},
                                          basetype="i1"))),
        "enum type that is not h5py's bool")
    put("opaque_untagged", h5(lambda f: f.create_dataset(
        "o", data=np.zeros(3, "V2"))), "opaque values without a known dtype")
    put("too_many_dims", h5(lambda f: f.create_dataset(
        "t", (1,) * 9, "<f4")), "9 dimensions, more than 8")
    put("null_dataspace", h5(lambda f: f.create_dataset(
        "n", data=h5py.Empty("<f4"))), "null dataspace")
    put("shape_bomb", h5(lambda f: f.create_dataset(
        "b", (1 << 20, 1 << 12), "<f4", chunks=(1, 1024),
        compression="gzip")), "shape bomb")

    def nonieee(f):
        t = h5py.h5t.IEEE_F32LE.copy()
        t.set_fields(31, 20, 11, 0, 20)
        t.set_ebias(1023)
        sp = h5py.h5s.create_simple((2,))
        h5py.h5d.create(f.id, b"x", t, sp)
    put("non_ieee_float", h5(nonieee), "non-IEEE 4-byte float")

    put("layer_missing", h5(lambda f: legacy(f, layers=(b"d", b"gone"))),
        "lists 'gone', which is not a group")
    put("weight_missing", h5(lambda f: legacy(
        f, weight_names=(b"d/kernel:0", b"d/bias:0"))),
        "lists 'd/bias:0', which is not a dataset")
    put("weight_twice", h5(lambda f: legacy(
        f, weight_names=(b"d/kernel:0", b"d/kernel:0"))), "listed twice")

    def weight_names_numbers(f):
        legacy(f)
        f["d"].attrs["weight_names"] = np.arange(3.0)
    put("weight_names_not_strings", h5(weight_names_numbers),
        "is not a list of strings")

    def deep(f):
        g = f
        for i in range(40):
            g = g.create_group("g")
        g["x"] = np.zeros(1, "<f4")
    put("too_deep", h5(deep), "nested deeper than 32")

    def cycle(f):
        g = f.create_group("a")
        g["x"] = np.zeros(1, "<f4")
        g["loop"] = g      # a hard link back to its own group
    put("hard_link_cycle", h5(cycle), "is reached twice")

    def badmeta(f):
        f.attrs["backend"] = np.bytes_(b"\xff\xfe")
        f["x"] = np.zeros(1, "<f4")
    put("metadata_not_utf8", h5(badmeta), "metadata 'keras.backend' is not "
        "UTF-8")

    good = h5(lambda f: legacy(f))
    # Superblock v0 with 8-byte offsets: version at 8, base address at 24,
    # end-of-file address at 40.
    b = bytearray(good)
    b[8] = 9
    put("superblock_version", bytes(b), "superblock version 9")
    b = bytearray(good)
    b[24:32] = struct.pack("<Q", 512)
    put("base_address", bytes(b), "base address is not 0")
    b = bytearray(good)
    b[13] = 2
    put("offset_size", bytes(b), "offset size 2")
    put("truncated", good[: len(good) - 200], "truncated")
    put("superblock_short", good[:20], "superblock truncated")
    b = bytearray(good)
    b[40:48] = struct.pack("<Q", len(good))
    b[56:] = b"\0" * (len(b) - 56)
    put("root_group_garbage", bytes(b), "cannot be opened")

    def zipped(inner, config=b"{}"):
        z = io.BytesIO()
        with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("metadata.json", "{}")
            zf.writestr("config.json", config)
            zf.writestr("model.weights.h5", inner)
        return z.getvalue()
    put("keras_inner_not_hdf5", zipped(b"not an hdf5 file at all"),
        "no HDF5 signature at offset 0")
    put("keras_config_not_utf8", zipped(good, b"\xff}"),
        "config.json is not UTF-8 text")
    put("keras_inner_soft_link", zipped(h5(soft)), "is a soft link")


if __name__ == "__main__":
    main()
