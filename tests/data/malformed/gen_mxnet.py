#!/usr/bin/python3
"""gen_mxnet.py -- write the malformed MXNet NDArray list corpus.

One file per rejection rule of src/formats/mxnet.c into mxnet/<rule>.bin,
each with <rule>.bin.expect whose first line is a substring the error
message of `wv verify` must contain. Run it with /usr/bin/python3 from any
directory; it rewrites the corpus next to itself. The outputs are
committed, so this only needs running when a case is added. Only the
standard library is used: every byte is built here.

(The rules about a "<prefix>-symbol.json" beside a checkpoint need two
files with particular names; tests/unit/t_mxnet.c covers them.)
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
V1, V2, V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
F32x2 = struct.pack("<2f", 1.0, 2.0)


def header(n, reserved=0):
    return struct.pack("<QQQ", 0x112, reserved, n)


def rec(dims=(2,), flag=0, data=F32x2, magic=V2, stype=0, ctx=(1, 0),
        ndim=None):
    out = struct.pack("<I", magic)
    if magic in (V2, V3):
        out += struct.pack("<i", stype)
    nd = len(dims) if ndim is None else ndim
    out += struct.pack("<i", nd) + struct.pack("<%dq" % len(dims), *dims)
    return out + struct.pack("<iii", ctx[0], ctx[1], flag) + data


def names(*ns):
    out = struct.pack("<Q", len(ns))
    for n in ns:
        out += struct.pack("<Q", len(n)) + n
    return out


def listfile(recs, ns=()):
    return header(len(recs)) + b"".join(recs) + names(*ns)


GOOD = listfile([rec()], [b"w"])
CASES = {}


def case(name, blob, expect):
    assert name not in CASES, name
    CASES[name] = (blob, expect)


# ---- file header --------------------------------------------------------
case("bad_magic", struct.pack("<Q", 0x113) + GOOD[8:],
     "not a recognised weights file")
case("short_header", header(1)[:16], "too short for the NDArray list header")
case("reserved_nonzero", header(1, reserved=5) + GOOD[24:],
     "reserved header field is 5, not 0")
case("array_count_too_large", header(1 << 40) + GOOD[24:],
     "array count 1099511627776 is more than")
# ---- records ------------------------------------------------------------
case("truncated_record_magic", header(2) + rec() + b"\xc9\xfa",
     "array 1: truncated record magic")
case("unknown_record_magic", header(1) + struct.pack("<I", 0x1234) +
     GOOD[28:], "unknown record magic 0x00001234")
case("sparse_row_sparse", listfile([rec(stype=1)]), "row_sparse")
case("sparse_csr", listfile([rec(stype=2)]), "csr")
case("undefined_storage", listfile([rec(stype=-1)]),
     "undefined storage type")
case("unknown_storage", listfile([rec(stype=7)]), "unknown storage type 7")
case("none_prev1", header(1) + struct.pack("<I", 0) + b"\0" * 16,
     "pre-V1 ndim 0")
case("truncated_shape", header(1) + struct.pack("<IiI", V2, 0, 3) +
     b"\0" * 12, "array 0: truncated shape")
case("none_v2", listfile([rec(dims=())]), "V2 ndim 0")
case("none_v3", listfile([rec(magic=V3, dims=(), ndim=-1)]), "V3 ndim -1")
case("negative_ndim", listfile([rec(dims=(), ndim=-2)]), "negative ndim -2")
case("too_many_dims", listfile([rec(dims=(1,) * 9)]),
     "9 dims, more than 8 are not supported")
case("negative_dim", listfile([rec(dims=(1, -2), data=b"")]),
     "dimension 1 is negative")
case("truncated_context", header(1) + rec()[:24], "truncated context")
case("unknown_device_type", listfile([rec(ctx=(4, 0))]),
     "unknown context device type 4")
case("negative_device_id", listfile([rec(ctx=(1, -1))]),
     "negative context device id -1")
case("unknown_type_flag", listfile([rec(flag=13)]), "unknown type flag 13")
case("element_count_overflow", listfile([rec(dims=(1 << 40, 1 << 40),
                                             data=b"")]),
     "the element count does not fit")
case("data_size_overflow", listfile([rec(dims=(1 << 62,), flag=1,
                                         data=b"")]),
     "the data size does not fit")
case("truncated_data", listfile([rec(dims=(1 << 30,))]),
     "array 0: truncated data")
# ---- names --------------------------------------------------------------
case("missing_name_count", header(1) + rec(), "name count after 1 arrays")
case("name_count_mismatch", listfile([rec(), rec()], [b"a"]),
     "name count 1 is neither 0 nor the array count 2")
case("truncated_name_length", header(1) + rec() + struct.pack("<Q", 1) +
     b"\x01\0\0", "array 0: truncated name length")
case("truncated_name", header(1) + rec() + struct.pack("<QQ", 1, 100) +
     b"abc", "array 0: truncated name: 100 bytes declared")
case("trailing_bytes", GOOD + b"\0" * 5,
     "5 trailing bytes after the names")
case("empty_name", listfile([rec()], [b""]), "array 0: empty name")
case("name_with_nul", listfile([rec()], [b"a\0b"]), "contains a NUL byte")
case("name_not_utf8", listfile([rec()], [b"\xff\xfe"]),
     "name is not valid UTF-8")
case("duplicate_name", listfile([rec(), rec()], [b"w", b"w"]),
     "array 1: duplicate name 'w'")


def main():
    out = os.path.join(HERE, "mxnet")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for name, (blob, expect) in sorted(CASES.items()):
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(blob)
        with open(os.path.join(out, name + ".bin.expect"), "w") as f:
            f.write(expect + "\n")
    print("wrote %d cases to %s" % (len(CASES), out))


if __name__ == "__main__":
    main()
