#!/usr/bin/python3
"""gen_gguf.py -- write tests/data/malformed/gguf/<rule>.bin and
<rule>.bin.expect, one file per rule the GGUF reader enforces (the first
line of .expect is a substring of the error `wv verify` must print).

Also an importable minimal GGUF writer (struct only), used by
tests/cli/gguf_interop.sh to produce test files the way gguf-py lays them
out: KVs and tensor infos in the given order, data at the running sum of
sizes padded to the alignment, zero padding after the header and after
every tensor.

Run: /usr/bin/python3 tests/data/malformed/gen_gguf.py
"""
import os
import struct
import sys

T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, \
    T_U64, T_I64, T_F64 = range(13)
FMT = {T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I",
       T_I32: "<i", T_F32: "<f", T_BOOL: "<B", T_U64: "<Q", T_I64: "<q",
       T_F64: "<d"}


def gstr(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return struct.pack("<Q", len(s)) + s


def scalar(t, v):
    if t == T_STR:
        return gstr(v)
    return struct.pack(FMT[t], v)


def kv(key, t, v, et=None):
    """Bytes of one KV. For arrays t=T_ARR, et the element type, v a list."""
    out = gstr(key) + struct.pack("<I", t)
    if t == T_ARR:
        out += struct.pack("<IQ", et, len(v))
        out += b"".join(scalar(et, x) for x in v)
    else:
        out += scalar(t, v)
    return out


def pad(x, a):
    return (x + a - 1) // a * a


def gguf(kvs, tensors, version=3, align=32, counts=None):
    """kvs: list of KV bytes (from kv()); tensors: list of
    (name, ne list (ggml order), ggml type, data bytes). Offsets are the
    running padded sums. counts overrides (n_tensors, n_kv)."""
    nt, nk = counts if counts else (len(tensors), len(kvs))
    head = b"GGUF" + struct.pack("<IQQ", version, nt, nk) + b"".join(kvs)
    off = 0
    blob = b""
    for name, ne, t, data in tensors:
        head += gstr(name) + struct.pack("<I", len(ne))
        head += b"".join(struct.pack("<Q", d) for d in ne)
        head += struct.pack("<IQ", t, off)
        blob += data + b"\0" * (pad(len(data), align) - len(data))
        off = pad(off + len(data), align)
    head += b"\0" * (pad(len(head), align) - len(head))
    return head + blob


def f32s(*v):
    return struct.pack("<%df" % len(v), *v)


def tinfo(name, ne, t, off):
    return (gstr(name) + struct.pack("<I", len(ne)) +
            b"".join(struct.pack("<Q", d) for d in ne) +
            struct.pack("<IQ", t, off))


def raw(nt, nk, body, version=3):
    return b"GGUF" + struct.pack("<IQQ", version, nt, nk) + body


def with_infos(infos, data, kvs=b"", nk=0):
    """Hand-made tensor infos + data (padded header to 32)."""
    head = raw(len(infos), nk, kvs + b"".join(infos))
    head += b"\0" * (pad(len(head), 32) - len(head))
    return head + data


ARCH = kv("general.architecture", T_STR, "llama")
W = ("w", [4], 0, f32s(1, 2, 3, 4))


def rules():
    r = {}
    r["version_1"] = (gguf([ARCH], [W], version=1),
                      "GGUF version 1 is not supported")
    r["version_big_endian"] = (gguf([ARCH], [W], version=0x03000000),
                               "looks big-endian")
    r["version_4"] = (gguf([ARCH], [W], version=4),
                      "GGUF version 4 is not supported")
    r["truncated_header"] = (b"GGUF" + struct.pack("<IQ", 3, 1) + b"\0\0",
                             "truncated in the file header")
    r["counts_too_large"] = (raw(1 << 40, 0, b"\0" * 64),
                             "cannot fit in the")
    r["too_many_kv"] = (raw(0, 9000, b"\0" * 64),
                        "more than 8192 are not supported")
    r["key_past_eof"] = (raw(0, 1, struct.pack("<Q", 1 << 40) + b"a" * 16),
                         "runs past the end of the file")
    r["key_not_utf8"] = (gguf([kv(b"bad\xff", T_U8, 1)], []),
                         "key is not UTF-8")
    r["duplicate_key"] = (gguf([kv("a", T_U8, 1), kv("a", T_U8, 2)], []),
                          "duplicate key 'a'")
    r["unknown_value_type"] = (gguf([gstr("a") + struct.pack("<I", 13)
                                     + b"\0" * 8], []),
                               "unknown value type 13")
    r["bool_not_0_or_1"] = (gguf([kv("flag", T_BOOL, 2)], []),
                            "bool value 2 is not 0 or 1")
    r["nested_array"] = (gguf([gstr("a") + struct.pack("<IIQ", T_ARR, T_ARR,
                                                       1)
                               + struct.pack("<IQ", T_U8, 1) + b"\1"], []),
                         "arrays of arrays are not supported")
    r["array_element_type_unknown"] = (
        gguf([gstr("a") + struct.pack("<IIQ", T_ARR, 77, 1) + b"\0"], []),
        "unknown array element type 77")
    r["array_count_too_large"] = (
        gguf([gstr("a") + struct.pack("<IIQ", T_ARR, T_U32, 1 << 33)
              + b"\0" * 16], []),
        "cannot fit in the rest of the file")
    r["truncated_in_kv"] = (raw(0, 1, gstr("a") + struct.pack("<I", T_U64)
                                + b"\1\2\3"),
                            "truncated in KV 'a'")
    r["alignment_not_u32"] = (gguf([kv("general.alignment", T_U64, 32)],
                                   [W]),
                              "general.alignment has type u64")
    r["alignment_not_power_of_two"] = (
        gguf([kv("general.alignment", T_U32, 48)], [W]),
        "general.alignment 48 is not a power of two")
    r["alignment_too_large"] = (
        gguf([kv("general.alignment", T_U32, 1 << 24)], [W]),
        "over the supported limit")
    r["tensor_name_too_long"] = (gguf([ARCH], [("n" * 64, [4], 0,
                                                f32s(1, 2, 3, 4))]),
                                 "allows at most 63")
    r["tensor_name_empty"] = (gguf([ARCH], [("", [4], 0, f32s(1, 2, 3, 4))]),
                              "name is empty")
    r["too_many_dims"] = (gguf([ARCH], [("w", [1, 1, 1, 1, 1], 0,
                                         f32s(1))]),
                          "has 5 dimensions")
    r["negative_dim"] = (with_infos([tinfo("w", [1 << 63], 0, 0)],
                                    b"\0" * 32),
                         "dimension 0 is negative")
    r["unknown_ggml_type"] = (gguf([ARCH], [("w", [4], 4, b"\0" * 16)]),
                              "unknown or removed ggml type 4")
    r["unsupported_ggml_type"] = (gguf([ARCH], [("w", [64], 40,
                                                 b"\0" * 36)]),
                                  "(NVFP4), which is not supported")
    r["block_row_not_multiple"] = (gguf([ARCH], [("w", [16, 2], 8,
                                                  b"\0" * 34)]),
                                   "is not a multiple of the 32-element "
                                   "blocks of Q8_0")
    r["element_count_overflow"] = (
        with_infos([tinfo("w", [1 << 40, 1 << 40], 0, 0)], b"\0" * 32),
        "element count overflows")
    r["offset_not_running_sum"] = (
        with_infos([tinfo("a", [4], 0, 0), tinfo("b", [4], 0, 64)],
                   b"\0" * 96),
        "tensor 'b' has offset 64, expected 32")
    r["truncated_data"] = (gguf([ARCH], [("w", [64], 0, f32s(*range(64)))])
                           [:-40],
                           "truncated: tensor 'w'")
    r["trailing_bytes"] = (gguf([ARCH], [W]) + b"\0" * 40,
                           "trailing bytes after the last tensor")
    r["duplicate_tensor_name"] = (gguf([ARCH], [W, W]),
                                  "duplicate tensor name 'w'")
    r["truncated_tensor_info"] = (raw(1, 0, gstr("weight_name_long")
                                      + b"\1\0"),
                                  "truncated in tensor info "
                                  "'weight_name_long'")
    return r


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "gguf")
    os.makedirs(out, exist_ok=True)
    for name, (data, expect) in sorted(rules().items()):
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
        with open(os.path.join(out, name + ".bin.expect"), "w") as f:
            f.write(expect + "\n")
    print("wrote %d files to %s" % (len(rules()), out), file=sys.stderr)


if __name__ == "__main__":
    main()
