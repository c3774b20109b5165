#!/usr/bin/python3
"""gen_pth.py -- write tests/data/malformed/pth/<rule>.bin and .bin.expect:
one torch.save-like file per rejection rule of src/formats/pth.c and
src/formats/pickle.c, including malicious pickles (code execution
attempts). The first line of each .expect is a substring the `wv verify`
error must contain. Pickles are hand-assembled; no pickle is ever loaded.
Run with /usr/bin/python3 from anywhere.
"""
import os
import struct
import zipfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pth")


def u32(v):
    return struct.pack("<I", v)


def s(text):  # BINUNICODE
    b = text.encode()
    return b"X" + u32(len(b)) + b


def g(mod, name):  # GLOBAL
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def k(v):  # BININT1 / BININT
    return b"K" + bytes([v]) if v < 256 else b"J" + struct.pack("<i", v)


OD = g("collections", "OrderedDict") + b")R"


def tup(vals):
    if not vals:
        return b")"
    return b"(" + b"".join(k(v) for v in vals) + b"t"


def tensor(key="0", stype="FloatStorage", numel=6, offset=0, size=(2, 3),
           stride=(3, 1), pid=None):
    if pid is None:
        pid = b"(" + s("storage") + g("torch", stype) + s(key) + s("cpu") + \
            k(numel) + b"t"
    return (g("torch._utils", "_rebuild_tensor_v2") + b"(" + pid + b"Q" +
            k(offset) + tup(size) + tup(stride) + b"\x89" + OD + b"tR")


def sd(*items):  # OrderedDict of (name, value-bytes)
    body = b"".join(s(n) + v for n, v in items)
    return b"\x80\x02" + OD + b"(" + body + b"u."


def archive(pkl, records=None, prefix="archive", version=b"3\n",
            extra=(), method=zipfile.ZIP_STORED, byteorder=b"little"):
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr(prefix + "/data.pkl", pkl)
        z.writestr(prefix + "/byteorder", byteorder)
        for key, data in (records or {"0": b"\0" * 24}).items():
            z.writestr(prefix + "/data/" + key, data)
        if version is not None:
            z.writestr(prefix + "/version", version)
        for name, data in extra:
            z.writestr(name, data)
    return buf.getvalue()


def good_pkl(value):
    return sd(("w", value))


rules = {}


def rule(name, data, expect):
    rules[name] = (data, expect)


T = tensor()
# --- malicious pickles: code execution attempts ---------------------------
rule("global_os_system",
     archive(b"\x80\x02" + g("os", "system") + s("id") + b"\x85R."),
     "refusing global os.system")
rule("global_posix_system",
     archive(b"\x80\x02" + g("posix", "system") + s("id") + b"\x85R."),
     "refusing global posix.system")
rule("global_subprocess_popen",
     archive(b"\x80\x02" + g("subprocess", "Popen") + b"(" + s("id") +
             b"\x85tR."),
     "refusing global subprocess.Popen")
rule("global_builtins_eval",
     archive(b"\x80\x02" + g("builtins", "eval") + s("1") + b"\x85R."),
     "refusing global builtins.eval")
rule("global_builtins_exec",
     archive(b"\x80\x02" + g("builtins", "exec") + s("1") + b"\x85R."),
     "refusing global builtins.exec")
rule("reduce_builtins_getattr",
     archive(b"\x80\x02" + g("builtins", "getattr") + b"(" + OD + s("pop") +
             b"tR."),
     "refusing global builtins.getattr")
rule("stack_global_os_system",
     archive(b"\x80\x04" + b"\x8c\x02os\x8c\x06system\x93" + s("id") +
             b"\x85R."),
     "refusing global os.system")
rule("inst_os_system",
     archive(b"\x80\x02(" + s("id") + b"ios\nsystem\n."),
     "refusing global os.system (INST)")
rule("obj_opcode",
     archive(b"\x80\x02(" + OD + b"o."), "refusing pickle opcode 0x6f (OBJ)")
rule("newobj_unknown_class",
     archive(b"\x80\x02" + g("torch", "Tensor") + b")\x81."),
     "refusing NEWOBJ of torch.Tensor")
rule("reduce_storage_class",
     archive(b"\x80\x02" + g("torch", "FloatStorage") + b")R."),
     "refusing REDUCE of torch.FloatStorage")
rule("ext1_opcode", archive(b"\x80\x02\x82\x01."),
     "refusing pickle opcode 0x82 (EXT1)")
rule("text_persid", archive(b"\x80\x02P0\n."),
     "refusing pickle opcode 0x50 (PERSID)")
rule("build_on_list",
     archive(b"\x80\x02]}b."), "BUILD on a list")
rule("build_on_dict",
     archive(b"\x80\x02}}b."), "BUILD on a dict")
rule("setitem_on_list",
     archive(b"\x80\x02]" + s("a") + T + b"s."), "SETITEM on a list")
rule("setitems_on_tuple",
     archive(b"\x80\x02)(" + s("a") + T + b"u."), "SETITEMS on a tuple")
rule("append_on_dict",
     archive(b"\x80\x02}" + T + b"a."), "APPEND to a dict")
rule("appends_on_tensor",
     archive(b"\x80\x02" + T + b"(K\x01e."), "APPENDS to a tensor")
# --- pickle structure -------------------------------------------------------
rule("long1_huge_length", archive(b"\x80\x02\x8a\xff\x01."),
     "LONG1 length 255 runs past the end")
rule("long4_huge_length",
     archive(b"\x80\x02\x8b" + u32(0xfffffff0) + b"."),
     "LONG4 length 4294967280 runs past the end")
rule("long4_too_wide",
     archive(b"\x80\x02\x8b" + u32(300) + b"\x01" * 300 + b"."),
     "integer of 300 bytes is too large")
rule("binunicode_huge_length",
     archive(b"\x80\x02X" + u32(0x7fffffff) + b"abc."),
     "BINUNICODE length 2147483647 runs past the end")
rule("binunicode8_huge_length",
     archive(b"\x80\x02\x8d" + struct.pack("<Q", 1 << 62) + b"."),
     "BINUNICODE8 length 4611686018427387904 runs past the end")
rule("binunicode_bad_utf8", archive(b"\x80\x02X" + u32(2) + b"\xff\xfe."),
     "BINUNICODE is not valid UTF-8")
rule("memo_get_unset", archive(b"\x80\x02h\x05."),
     "memo GET of index 5, which was never set")
rule("memo_put_huge_index",
     archive(b"\x80\x02Nr" + u32(0xfffffff0) + b"."),
     "memo index 4294967280 is out of range")
rule("memo_put_empty_stack", archive(b"\x80\x02q\x00N."),
     "PUT needs 1 stack items")
rule("deep_nesting",
     archive(b"\x80\x02" + OD + b"(" + s("a") + b"]" * 5000 +
             b"a" * 4999 + b"u."),
     "nested deeper than 100 levels")
rule("stack_underflow", archive(b"\x80\x02R."), "stack underflow")
rule("stop_with_two_items", archive(b"\x80\x02NN."),
     "STOP with 2 objects on the stack")
rule("stop_with_open_mark", archive(b"\x80\x02(N."),
     "STOP with an open MARK")
rule("no_stop", archive(b"\x80\x02" + OD), "pickle ends without STOP")
rule("trailing_after_stop", archive(good_pkl(T) + b"NN"),
     "bytes after the pickle's STOP")
rule("tuple_without_mark", archive(b"\x80\x02Nt."), "TUPLE without a MARK")
rule("protocol_6", archive(b"\x80\x06N."), "pickle protocol 6 is not")
rule("global_unterminated", archive(b"\x80\x02ctorch"),
     "GLOBAL module is not terminated")
rule("truncated_binint", archive(b"\x80\x02J\x01\x02"),
     "BININT needs 4 bytes")
rule("dict_key_not_scalar",
     archive(b"\x80\x02}" + b")" + T + b"s."),
     "dict key under '(root)' is not a str, int or bool")
rule("duplicate_name",
     archive(sd(("w", T), ("w", T))), "tensor name 'w' occurs twice")
# --- persistent ids and storages -------------------------------------------
rule("persid_not_tuple",
     archive(good_pkl(g("torch._utils", "_rebuild_tensor_v2") + b"(" +
                      s("storage") + b"Q" + k(0) + tup((2, 3)) +
                      tup((3, 1)) + b"\x89" + OD + b"tR")),
     "persistent id is not a ('storage', type, key, location")
rule("persid_wrong_length",
     archive(good_pkl(tensor(pid=b"(" + s("storage") +
                             g("torch", "FloatStorage") + s("0") + b"t"))),
     "persistent id is not a ('storage'")
rule("persid_type_not_storage",
     archive(good_pkl(tensor(pid=b"(" + s("storage") + OD + s("0") +
                             s("cpu") + k(6) + b"t"))),
     "persistent id: item 2 is not a storage type")
rule("persid_key_not_str",
     archive(good_pkl(tensor(pid=b"(" + s("storage") +
                             g("torch", "FloatStorage") + k(0) + s("cpu") +
                             k(6) + b"t"))),
     "persistent id: key or location is not a string")
rule("persid_negative_numel",
     archive(good_pkl(tensor(pid=b"(" + s("storage") +
                             g("torch", "FloatStorage") + s("0") + s("cpu") +
                             b"J\xff\xff\xff\xff" + b"t"))),
     "persistent id: numel is not a non-negative integer")
rule("storage_declared_twice",
     archive(sd(("a", T), ("b", tensor(stype="LongStorage")))),
     "storage '0' is declared twice with different types")
rule("storage_size_mismatch",
     archive(good_pkl(T), {"0": b"\0" * 20}),
     "storage '0' declares 6 elements of F32 but record 'archive/data/0' "
     "holds 20 bytes")
rule("storage_record_missing",
     archive(good_pkl(tensor(key="7")), {"0": b"\0" * 24}),
     "storage '7' has no record 'archive/data/7'")
rule("tensor_past_storage",
     archive(good_pkl(tensor(offset=1))),
     "tensor 'w': offset 1 with its size and stride reaches past storage")
rule("tensor_stride_past_storage",
     archive(good_pkl(tensor(stride=(4, 1)))),
     "reaches past storage '0'")
rule("tensor_too_many_dims",
     archive(good_pkl(tensor(size=(1,) * 9, stride=(1,) * 9))),
     "tensor has 9 dimensions, more than 8")
rule("tensor_dims_mismatch",
     archive(good_pkl(tensor(size=(2, 3), stride=(1,)))),
     "tensor size has 2 dimensions but its stride 1")
rule("tensor_negative_size",
     archive(good_pkl(g("torch._utils", "_rebuild_tensor_v2") + b"(" +
                      b"(" + s("storage") + g("torch", "FloatStorage") +
                      s("0") + s("cpu") + k(6) + b"tQ" + k(0) +
                      b"(J\xfe\xff\xff\xffK\x03t" + tup((3, 1)) + b"\x89" +
                      OD + b"tR")),
     "tensor size item 0 is not a non-negative integer")
rule("tensor_rebuild_arity",
     archive(good_pkl(g("torch._utils", "_rebuild_tensor_v2") + b"(" +
                      b"(" + s("storage") + g("torch", "FloatStorage") +
                      s("0") + s("cpu") + k(6) + b"tQtR")),
     "tensor rebuild takes 6 to 7 arguments, not 1")
rule("complex128_refused",
     archive(good_pkl(tensor(stype="ComplexDoubleStorage")),
             {"0": b"\0" * 96}),
     "dtype complex128 is not supported")
rule("qint8_refused",
     archive(good_pkl(tensor(stype="QInt8Storage")), {"0": b"\0" * 6}),
     "dtype quantized qint8 is not supported")
rule("sparse_refused",
     archive(good_pkl(g("torch._utils", "_rebuild_sparse_tensor") +
                      b"(tR")),
     "sparse tensors (torch._utils._rebuild_sparse_tensor) are not")
# --- the zip archive ------------------------------------------------------
rule("version_missing", archive(good_pkl(T), version=None),
     "no record 'archive/version'")
rule("version_bad", archive(good_pkl(T), version=b"99\n"),
     "holds archive version '99', not 1 to 10")
rule("byteorder_bad",
     archive(good_pkl(T), byteorder=b"middle"),
     "holds 'middle', not 'little' or 'big'")
rule("member_outside_prefix",
     archive(good_pkl(T), extra=(("other/file", b"x"),)),
     "member 'other/file' lies outside the archive directory 'archive/'")
# TorchScript: a module's parameters and buffers are declared in code/
TS_PKL = b"\x80\x02c__torch__\nM\nq\x00)\x81}(" + s("w") + T + b"ub."
rule("torchscript_no_class_record",
     archive(TS_PKL, extra=(("archive/constants.pkl", b"\x80\x02)."),)),
     "TorchScript class '__torch__.M' has no record 'archive/code/__torch__.py'")
rule("torchscript_class_undeclared",
     archive(TS_PKL, extra=(("archive/code/__torch__.py",
                             b"class N(Module):\n  __parameters__ = [\"w\", ]\n"),)),
     "does not declare class 'M'")
# --- legacy stream --------------------------------------------------------
MAGIC = b"\x80\x02\x8a\x0a" + bytes.fromhex("6cfc9c46f9206aa85019") + b"."
PROTO = b"\x80\x02M\xe9\x03."
SYSINFO = b"\x80\x02}" + s("little_endian") + b"\x88s."


def lpid(key, numel, stype="FloatStorage"):
    return (b"(" + s("storage") + g("torch", stype) + s(key) + s("cpu") +
            k(numel) + b"Nt")


def legacy(obj, keys, data):
    kl = b"\x80\x02(" + b"".join(s(x) for x in keys) + b"l."
    return MAGIC + PROTO + SYSINFO + obj + kl + data


LT = tensor(pid=lpid("9", 6))
rule("legacy_numel_mismatch",
     legacy(good_pkl(LT), ["9"], struct.pack("<Q", 5) + b"\0" * 20),
     "storage '9': record holds 5 elements but its persistent id says 6")
rule("legacy_truncated_storage",
     legacy(good_pkl(LT), ["9"], struct.pack("<Q", 6) + b"\0" * 10),
     "storage '9' (6 elements of F32) runs past the end of the file")
rule("legacy_trailing_bytes",
     legacy(good_pkl(LT), ["9"], struct.pack("<Q", 6) + b"\0" * 28),
     "4 trailing bytes after the last storage")
rule("legacy_key_unused",
     legacy(good_pkl(LT), ["9", "8"], struct.pack("<Q", 6) + b"\0" * 24),
     "storage key '8' is listed but no tensor uses it")
rule("legacy_key_missing",
     legacy(good_pkl(LT), [], b""),
     "storage '9' is not in the storage key list")
rule("legacy_bad_protocol",
     MAGIC + b"\x80\x02M\xea\x03." + SYSINFO + good_pkl(LT),
     "legacy protocol version is not 1001")
rule("legacy_view_metadata",
     legacy(good_pkl(tensor(pid=b"(" + s("storage") +
                            g("torch", "FloatStorage") + s("9") + s("cpu") +
                            k(6) + b"(" + s("9") + k(0) + k(6) + b"tt")),
            ["9"], struct.pack("<Q", 6) + b"\0" * 24),
     "legacy storage views are not supported")
rule("legacy_key_list_not_list",
     MAGIC + PROTO + SYSINFO + good_pkl(LT) + b"\x80\x02N." +
     struct.pack("<Q", 6) + b"\0" * 24,
     "legacy storage key list is not a list")


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (data, expect) in sorted(rules.items()):
        with open(os.path.join(OUT, name + ".bin"), "wb") as f:
            f.write(data)
        with open(os.path.join(OUT, name + ".bin.expect"), "w") as f:
            f.write(expect + "\n")
    print("wrote %d files to %s" % (len(rules), OUT))


if __name__ == "__main__":
    main()
