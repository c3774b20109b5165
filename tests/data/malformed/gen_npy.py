#!/usr/bin/python3
"""gen_npy.py -- write the malformed .npy and .npz corpora.

One file per rejection rule of src/formats/npy.c, npz.c and zip.c into
npy/<rule>.bin and npz/<rule>.bin, each with <rule>.bin.expect whose first
line is a substring the error message of `wv verify` must contain. Run it
with /usr/bin/python3 from any directory; it rewrites the corpora next to
itself. The outputs are committed, so this only needs running when a case
is added. Only the standard library is used: every byte is built here.
"""
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = b"\x93NUMPY"


def npy(header, data=b"", version=(1, 0), hlen=None, pad=True):
    """An .npy image: magic, version, length, header (padded like numpy),
    data. `hlen` overrides the length field."""
    if isinstance(header, str):
        header = header.encode("latin1" if version < (3, 0) else "utf-8")
    pre = 10 if version == (1, 0) or version[0] not in (2, 3) else 12
    if pad:
        header += b" " * ((64 - (pre + len(header) + 1) % 64) % 64) + b"\n"
    n = len(header) if hlen is None else hlen
    fmt = "<H" if pre == 10 else "<I"
    return MAGIC + bytes(version) + struct.pack(fmt, n) + header + data


def d(descr="'<f4'", fortran="False", shape="(2,)", extra=""):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, %s}" % (
        descr, fortran, shape, extra)


F4x2 = struct.pack("<2f", 1.0, 2.0)
GOOD = npy(d(), F4x2)

NPY = {}
NPZ = {}


def case(table, name, blob, expect):
    assert name not in table, name
    table[name] = (blob, expect)


# ---- npy ------------------------------------------------------------------
case(NPY, "bad_magic", b"\x93NUMPX\x01\x00" + GOOD[8:],
     "not a recognised weights file")
case(NPY, "short_preamble", MAGIC + b"\x01", "too short for an npy preamble")
case(NPY, "bad_version_major", MAGIC + b"\x04\x00" + GOOD[8:],
     "unsupported npy format version 4.0")
case(NPY, "bad_version_minor", MAGIC + b"\x01\x01" + GOOD[8:],
     "unsupported npy format version 1.1")
case(NPY, "header_too_long", npy(d() + " " * 10050, F4x2),
     "too long (limit 10000")
case(NPY, "header_too_long_v2", npy(d(), F4x2, version=(2, 0),
                                    hlen=(1 << 20) + 1),
     "too long (limit 1048576")
case(NPY, "header_truncated", npy(d(), b"", hlen=4000),
     "truncated header")
case(NPY, "header_not_dict", npy("[1, 2, 3]", F4x2),
     "header is not a dict")
case(NPY, "header_empty_dict", npy("{}", F4x2), "missing key 'descr'")
case(NPY, "missing_key_shape",
     npy("{'descr': '<f4', 'fortran_order': False, }", F4x2),
     "missing key 'shape'")
case(NPY, "missing_key_fortran_order",
     npy("{'descr': '<f4', 'shape': (2,), }", F4x2),
     "missing key 'fortran_order'")
case(NPY, "extra_key", npy(d(extra="'offset': 0, "), F4x2),
     "unexpected extra key 'offset'")
case(NPY, "duplicate_key", npy(d(extra="'shape': (2,), "), F4x2),
     "duplicate key 'shape'")
case(NPY, "key_not_string", npy("{descr: '<f4'}", F4x2),
     "expected a quoted string")
case(NPY, "missing_colon", npy("{'descr' '<f4'}", F4x2),
     "expected ':' after key 'descr'")
case(NPY, "missing_comma",
     npy("{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", F4x2),
     "expected ',' or '}'")
case(NPY, "unterminated_string", npy("{'descr': '<f4", F4x2, pad=False),
     "unterminated string")
case(NPY, "string_escape", npy(d(descr="'<f\\x34'"), F4x2), "escape")
case(NPY, "trailing_characters", npy(d() + " x", F4x2),
     "trailing characters after the dict")
case(NPY, "bad_descr", npy(d(descr="'<q9'"), F4x2),
     "unsupported dtype '<q9'")
case(NPY, "descr_not_string", npy(d(descr="4"), F4x2),
     "expected a quoted string")
case(NPY, "object_dtype", npy(d(descr="'|O'"), b"\x80\x02N."),
     "would need pickle")
case(NPY, "complex128", npy(d(descr="'<c16'"), b"\0" * 32),
     "unsupported dtype '<c16' (complex128")
case(NPY, "unicode_dtype", npy(d(descr="'<U4'"), b"\0" * 32),
     "unsupported dtype '<U4' (string arrays")
case(NPY, "void_dtype", npy(d(descr="'|V8'"), b"\0" * 16),
     "unsupported dtype '|V8' (void")
case(NPY, "datetime_dtype", npy(d(descr="'<M8[s]'"), b"\0" * 16),
     "(datetime arrays")
case(NPY, "structured_dtype",
     npy(d(descr="[('a', '<f4'), ('b', '<i4')]"), b"\0" * 16),
     "structured dtypes (a list descr)")
case(NPY, "subarray_dtype", npy(d(descr="('<f4', (2,))"), b"\0" * 16),
     "sub-array dtypes")
case(NPY, "fortran_order_not_bool", npy(d(fortran="0"), F4x2),
     "fortran_order is not a bool")
case(NPY, "fortran_order_lowercase", npy(d(fortran="false"), F4x2),
     "fortran_order is not a bool")
case(NPY, "shape_negative", npy(d(shape="(-2,)"), F4x2),
     "negative dimension")
case(NPY, "shape_not_tuple", npy(d(shape="[2]"), F4x2),
     "shape is not a tuple")
case(NPY, "shape_int_not_tuple", npy(d(shape="(2)"), F4x2),
     "needs a comma")
case(NPY, "shape_not_ints", npy(d(shape="('2',)"), F4x2),
     "shape is not a tuple of ints")
case(NPY, "shape_float", npy(d(shape="(2.0,)"), F4x2),
     "shape is not a tuple of ints")
case(NPY, "shape_too_many_dims", npy(d(shape="(1,1,1,1,1,1,1,1,2)"), F4x2),
     "more than 8 dimensions")
case(NPY, "shape_dim_overflow",
     npy(d(shape="(9223372036854775808,)"), F4x2), "overflows int64")
case(NPY, "shape_overflow", npy(d(shape="(4294967296, 4294967296)"), F4x2),
     "shape overflow")
case(NPY, "shape_bytes_overflow", npy(d(shape="(4611686018427387904,)"),
                                      F4x2),
     "shape overflow")
case(NPY, "truncated_data", npy(d(shape="(3,)"), F4x2), "truncated data")
case(NPY, "trailing_data", npy(d(), F4x2 + b"\0\0\0\0"),
     "4 trailing bytes after the array data")
case(NPY, "v3_header_not_utf8",
     npy(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\xff",
         F4x2, version=(3, 0)),
     "not valid UTF-8")

# ---- zip / npz -------------------------------------------------------------


def member(name, data, method=0, **kw):
    m = dict(name=name.encode() if isinstance(name, str) else name,
             raw=data, method=method, flags=0, extra=b"", lextra=b"")
    if method == 8:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        m["comp"] = c.compress(data) + c.flush()
    else:
        m["comp"] = data
    m["crc"] = zlib.crc32(data)
    m["csize"] = len(m["comp"])
    m["usize"] = len(data)
    m.update(kw)
    return m


def zipfile_bytes(members, eocd=None, cd_extra=b"", pre_eocd=b"",
                  comment=b""):
    """A zip built by hand. Member keys override header fields: lname,
    lmethod, lflags, lsig, lcrc, lcsize, lusize, lh_off, cflags, cmethod,
    disk, comp (payload)."""
    out = bytearray()
    cds = bytearray()
    for m in members:
        off = len(out)
        lname = m.get("lname", m["name"])
        out += struct.pack("<IHHHHHIIIHH", m.get("lsig", 0x04034b50), 20,
                           m.get("lflags", m["flags"]),
                           m.get("lmethod", m["method"]), 0, 0x21,
                           m.get("lcrc", m["crc"]),
                           m.get("lcsize", m["csize"]) & 0xffffffff,
                           m.get("lusize", m["usize"]) & 0xffffffff,
                           len(lname), len(m["lextra"]))
        out += lname + m["lextra"] + m["comp"]
        m["_off"] = off
    cd_off = len(out)
    for m in members:
        cds += struct.pack("<IHHHHHHIIIHHHHHII", m.get("csig", 0x02014b50),
                           20, 20, m.get("cflags", m["flags"]),
                           m.get("cmethod", m["method"]), 0, 0x21, m["crc"],
                           m["csize"] & 0xffffffff, m["usize"] & 0xffffffff,
                           len(m["name"]), len(m["extra"]), 0,
                           m.get("disk", 0), 0, 0,
                           m.get("lh_off", m["_off"]) & 0xffffffff)
        cds += m["name"] + m["extra"]
    cds += cd_extra
    out += cds
    out += pre_eocd
    e = dict(disk=0, cd_disk=0, n_disk=len(members), n=len(members),
             cd_size=len(cds), cd_off=cd_off, clen=len(comment))
    if eocd:
        e.update(eocd)
    out += struct.pack("<IHHHHIIH", 0x06054b50, e["disk"], e["cd_disk"],
                       e["n_disk"], e["n"], e["cd_size"], e["cd_off"],
                       e["clen"])
    out += comment
    return bytes(out)


X = npy(d(), F4x2)
Y = npy(d(shape="(1,)"), struct.pack("<f", 3.0))
BIG = npy(d(shape="(4096,)"), b"\0" * 16384)

case(NPZ, "bad_eocd_comment_length",
     zipfile_bytes([member("x.npy", X)], eocd=dict(clen=5)),
     "bad end-of-central-directory record")
case(NPZ, "eocd_missing", zipfile_bytes([member("x.npy", X)])[:-22],
     "bad end-of-central-directory record")
case(NPZ, "too_small", b"PK\x03\x04" + b"\0" * 10,
     "is less than the 22-byte")
case(NPZ, "multi_disk", zipfile_bytes([member("x.npy", X)],
                                      eocd=dict(disk=1)),
     "multi-disk zip archives are not supported")
case(NPZ, "cd_out_of_range", zipfile_bytes([member("x.npy", X)],
                                           eocd=dict(cd_off=100000)),
     "central directory [100000")
case(NPZ, "cd_size_out_of_range", zipfile_bytes([member("x.npy", X)],
                                                eocd=dict(cd_size=5000)),
     "is out of range")
case(NPZ, "too_many_entries", zipfile_bytes([member("x.npy", X)],
                                            eocd=dict(n=1000, n_disk=1000)),
     "claims 1000 entries")
case(NPZ, "cd_bad_signature",
     zipfile_bytes([member("x.npy", X, csig=0x02014b51)]),
     "bad signature or truncated")
case(NPZ, "cd_entry_overruns", zipfile_bytes(
    [member("x.npy", X, extra=b"")], cd_extra=b"",
    eocd=dict(cd_size=46 + 4)),
     "runs past the directory")
case(NPZ, "empty_member_name", zipfile_bytes([member("", X)]),
     "empty name")
case(NPZ, "zip64_markers_without_locator",
     zipfile_bytes([member("x.npy", X)], eocd=dict(n=0xffff, n_disk=0xffff)),
     "ZIP64 markers without a ZIP64 locator")
loc_bad = struct.pack("<IIQI", 0x07064b50, 0, 1 << 40, 1)
case(NPZ, "zip64_locator_out_of_range",
     zipfile_bytes([member("x.npy", X)], pre_eocd=loc_bad),
     "bad ZIP64 locator")
z64 = zipfile_bytes([member("x.npy", X)])
cd_off = z64.rfind(b"PK\x01\x02")
eocd64_off = len(z64) - 22
rec = struct.pack("<IQHHIIQQQQ", 0x06064b51, 44, 45, 45, 0, 0, 1, 1,
                  eocd64_off - cd_off, cd_off)
loc = struct.pack("<IIQI", 0x07064b50, 0, eocd64_off, 1)
case(NPZ, "zip64_bad_eocd64_signature",
     zipfile_bytes([member("x.npy", X)], pre_eocd=rec + loc),
     "bad ZIP64 end-of-central-directory record signature")
case(NPZ, "zip64_extra_too_short",
     zipfile_bytes([member("x.npy", X, usize=0xffffffff,
                           extra=struct.pack("<HH", 1, 4) + b"\0" * 4)]),
     "ZIP64 extra field too short")
case(NPZ, "extra_field_overruns",
     zipfile_bytes([member("x.npy", X, extra=struct.pack("<HH", 7, 40))]),
     "runs past its header")
case(NPZ, "member_offset_out_of_range",
     zipfile_bytes([member("x.npy", X, lh_off=90000)]),
     "local header offset 90000 is out of range")
case(NPZ, "bad_local_signature",
     zipfile_bytes([member("y.npy", Y), member("x.npy", X, lsig=0x04034b51)]),
     "bad local header signature")
case(NPZ, "local_name_mismatch",
     zipfile_bytes([member("x.npy", X, lname=b"z.npy")]),
     "local header names it 'z.npy'")
case(NPZ, "local_method_mismatch",
     zipfile_bytes([member("x.npy", X, lmethod=8)]),
     "differs from the central directory")
case(NPZ, "local_crc_mismatch",
     zipfile_bytes([member("x.npy", X, lcrc=0x12345678)]),
     "local header CRC-32 12345678 differs")
case(NPZ, "local_size_mismatch",
     zipfile_bytes([member("x.npy", X, lusize=len(X) + 1)]),
     "local header sizes")
case(NPZ, "local_descriptor_flag_mismatch",
     zipfile_bytes([member("x.npy", X, lflags=8)]),
     "disagree on the data descriptor flag")
# Names that could escape a directory an extractor writes into.
case(NPZ, "member_dotdot", zipfile_bytes([member("../../x.npy", X)]),
     "member '../../x.npy' (central directory entry 0): unsafe name (a '..' "
     "component)")
case(NPZ, "member_absolute", zipfile_bytes([member("/etc/x.npy", X)]),
     "unsafe name (absolute path")
case(NPZ, "member_backslash", zipfile_bytes([member("..\\x.npy", X)]),
     "unsafe name (a backslash)")
case(NPZ, "member_control_char",
     zipfile_bytes([member("a\x1b[31mb.npy", X)]),
     "member 'a\\x1b[31mb.npy' (central directory entry 0): unsafe name (a "
     "control character)")
case(NPZ, "member_newline", zipfile_bytes([member("a\nb.npy", X)]),
     "unsafe name (a control character)")
case(NPZ, "encrypted_member",
     zipfile_bytes([member("x.npy", X, flags=1)]),
     "is encrypted")
case(NPZ, "encrypted_local_only",
     zipfile_bytes([member("x.npy", X, lflags=1)]),
     "is encrypted")
case(NPZ, "aes_encrypted_member",
     zipfile_bytes([member("x.npy", X, method=99)]),
     "is encrypted")
case(NPZ, "unknown_method",
     zipfile_bytes([member("x.npy", X, method=12)]),
     "unknown compression method 12")
case(NPZ, "stored_size_mismatch",
     zipfile_bytes([member("x.npy", X, usize=len(X) + 1)]),
     "is stored but its compressed size")
case(NPZ, "data_past_central_directory",
     zipfile_bytes([member("x.npy", X, csize=len(X) + 100,
                           usize=len(X) + 100)]),
     "runs past the start of the central directory")
a = member("x.npy", X)
b = member("y.npy", Y)
a["csize"] = a["usize"] = len(X) + 20  # reaches into y's local header
case(NPZ, "overlapping_members", zipfile_bytes([a, b]), "overlap")
case(NPZ, "zip_bomb_ratio",
     zipfile_bytes([member("x.npy", BIG, method=8, usize=0xfffffff0)]),
     "zip bomb")
case(NPZ, "zip_bomb_zip64",
     zipfile_bytes([member("x.npy", BIG, method=8, usize=0xffffffff,
                           extra=struct.pack("<HHQ", 1, 8, 1 << 40))]),
     "declares 1099511627776 bytes")
case(NPZ, "inflated_size_too_small",
     zipfile_bytes([member("x.npy", BIG, method=8, usize=len(BIG) - 1)]),
     "inflates to more than its declared size")
case(NPZ, "inflated_size_too_large",
     zipfile_bytes([member("x.npy", BIG, method=8, usize=len(BIG) + 1)]),
     "inflated size mismatch")
tm = member("x.npy", BIG, method=8)
tm["comp"] = tm["comp"] + b"JUNK"
tm["csize"] = len(tm["comp"])
case(NPZ, "deflate_trailing_bytes", zipfile_bytes([tm]),
     "deflate stream ends 4 bytes before its compressed size")
cm = member("x.npy", BIG, method=8)
cm["comp"] = b"\xff" * 40
cm["csize"] = 40
case(NPZ, "corrupt_deflate", zipfile_bytes([cm]), "corrupt deflate data")
case(NPZ, "crc_mismatch",
     zipfile_bytes([member("x.npy", X, crc=zlib.crc32(X) ^ 1)]),
     "crc mismatch")
case(NPZ, "crc_mismatch_deflated",
     zipfile_bytes([member("x.npy", BIG, method=8,
                           crc=zlib.crc32(BIG) ^ 0x80)]),
     "crc mismatch")
case(NPZ, "member_not_npy",
     zipfile_bytes([member("x.npy", X), member("notes.txt", b"hello")]),
     "member 'notes.txt' is not a .npy file")
case(NPZ, "member_named_dot_npy", zipfile_bytes([member(".npy", X)]),
     "member '.npy' is not a .npy file")
# (A zip holding archive/data.pkl is a PyTorch file now: the pth reader
# takes it, so it is no npz rejection any more; see tests/data/malformed/pth.)
case(NPZ, "duplicate_member_names",
     zipfile_bytes([member("x.npy", X), member("x.npy", Y)]),
     "duplicate member name 'x.npy'")
case(NPZ, "member_bad_npy",
     zipfile_bytes([member("x.npy", npy(d(shape="(3,)"), F4x2))]),
     "member 'x.npy': truncated data")
case(NPZ, "member_object_dtype",
     zipfile_bytes([member("x.npy", npy(d(descr="'|O'"), b"\x80\x02N."))]),
     "would need pickle")
case(NPZ, "member_not_npy_magic",
     zipfile_bytes([member("x.npy", b"just some bytes")]),
     "member 'x.npy': bad magic")


def write(sub, table):
    path = os.path.join(HERE, sub)
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    for name, (blob, expect) in sorted(table.items()):
        with open(os.path.join(path, name + ".bin"), "wb") as f:
            f.write(blob)
        with open(os.path.join(path, name + ".bin.expect"), "w") as f:
            f.write(expect + "\n")


write("npy", NPY)
write("npz", NPZ)
print("wrote %d npy and %d npz cases" % (len(NPY), len(NPZ)))
