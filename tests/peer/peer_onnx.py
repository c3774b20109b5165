#!/usr/bin/env python3
"""peer_onnx.py -- the ONNX reader against Debian's python3-onnx.

    peer_onnx.py real TESTDATA_DIR     every model.onnx with initializers
                                       read with weightvault.load, each
                                       initializer compared with
                                       onnx.numpy_helper.to_array (names,
                                       dtype, shape, bytes bit for bit);
                                       prints the counts, fails if any
                                       differs or fewer than 50 are equal
    peer_onnx.py made DIR              models written with onnx.helper
                                       (typed fields packed and unpacked,
                                       raw data, external data, If
                                       subgraphs, sparse initializers) read
                                       and compared the same way
    peer_onnx.py bad DIR               writes one malformed model per
                                       rejection rule into DIR and prints
                                       "FILE<TAB>STATUS<TAB>PATTERN" lines
                                       for the shell test to check
"""
import hashlib
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import weightvault as wv

# ONNX data type -> (our dtype name, NumPy dtype as weightvault.load gives)
OURS = {
    TensorProto.FLOAT: ("F32", np.float32), TensorProto.DOUBLE: ("F64", np.float64),
    TensorProto.FLOAT16: ("F16", np.float16), TensorProto.BFLOAT16: ("BF16", np.uint16),
    TensorProto.INT8: ("I8", np.int8), TensorProto.INT16: ("I16", np.int16),
    TensorProto.INT32: ("I32", np.int32), TensorProto.INT64: ("I64", np.int64),
    TensorProto.UINT8: ("U8", np.uint8), TensorProto.UINT16: ("U16", np.uint16),
    TensorProto.UINT32: ("U32", np.uint32), TensorProto.UINT64: ("U64", np.uint64),
    TensorProto.BOOL: ("BOOL", np.bool_), TensorProto.COMPLEX64: ("C64", np.complex64),
}


def expected_bytes(t, base_dir):
    """numpy_helper's array of TensorProto t, as (dtype, shape, bytes)."""
    if t.data_type == TensorProto.COMPLEX64 and not t.HasField("raw_data"):
        # numpy_helper 1.12 fails on complex float_data (it makes Python
        # complex numbers, then asks for float32): the pairs by hand
        a = np.array(t.float_data, np.float32).view(np.complex64).reshape(t.dims)
    else:
        a = numpy_helper.to_array(t, base_dir)
    np_dt = OURS[t.data_type][1]
    if t.data_type == TensorProto.BFLOAT16:
        # numpy_helper widens bfloat16 to float32: its upper 16 bits
        a = (a.view(np.uint32) >> 16).astype(np.uint16)
    assert a.dtype == np_dt, (t.name, a.dtype, np_dt)
    return np_dt, tuple(a.shape), np.ascontiguousarray(a).tobytes()


def sparse_dense(st, base_dir):
    v = numpy_helper.to_array(st.values, base_dir)
    idx = numpy_helper.to_array(st.indices, base_dir)
    dims = tuple(st.dims)
    dense = np.zeros(int(np.prod(dims, dtype=np.int64)), dtype=v.dtype)
    if idx.ndim == 2:
        idx = np.ravel_multi_index(tuple(idx.T), dims)
    dense[idx] = v
    return dense.dtype.type, dims, dense.tobytes()


def scoped(graph, prefix=""):
    """(name, TensorProto or SparseTensorProto) of every initializer, with
    the reader's scoped names for subgraphs."""
    out = [(prefix + t.name, t) for t in graph.initializer]
    out += [(prefix + s.values.name, s) for s in graph.sparse_initializer]
    for i, node in enumerate(graph.node):
        label = node.name if node.name else f"{node.op_type}[{i}]"
        for a in node.attribute:
            if a.HasField("g"):
                out += scoped(a.g, f"{prefix}{label}/{a.name}/")
            for k, g in enumerate(a.graphs):
                out += scoped(g, f"{prefix}{label}/{a.name}[{k}]/")
    return out


def compare(path):
    """None if every initializer of path reads equal, else what differs.
    Raises wv.WeightvaultError when weightvault refuses the model."""
    m = onnx.load(path, load_external_data=False)
    base = os.path.dirname(path)
    want = {}
    for name, t in scoped(m.graph):
        if isinstance(t, onnx.SparseTensorProto):
            want[name] = sparse_dense(t, base)
        else:
            want[name] = expected_bytes(t, base)
    got = wv.load(path)
    if sorted(got.keys()) != sorted(want.keys()):
        return f"names differ: {sorted(got.keys())} vs {sorted(want.keys())}"
    for name, (dt, shape, data) in want.items():
        a = np.asarray(got[name])
        if a.dtype != dt or tuple(a.shape) != shape:
            return f"{name}: {a.dtype}{a.shape} vs {np.dtype(dt)}{shape}"
        if np.ascontiguousarray(a).tobytes() != data:
            return f"{name}: bytes differ"
    return None


def count_inits(path):
    return len(scoped(onnx.load(path, load_external_data=False).graph))


def real(top):
    models = sorted(os.path.join(d, f) for d, _, fs in os.walk(top)
                    for f in fs if f.endswith(".onnx"))
    read = equal = n_inits = 0
    refused, differ = [], []
    for p in models:
        k = count_inits(p)
        if k == 0:
            continue
        read += 1
        try:
            why = compare(p)
        except wv.WeightvaultError as e:
            refused.append(f"{os.path.relpath(p, top)}: {e}")
            continue
        if why:
            differ.append(f"{os.path.relpath(p, top)}: {why}")
        else:
            equal += 1
            n_inits += k
    print(f"libonnx-testdata: {len(models)} models, {read} with initializers "
          f"read, {len(refused)} refused, {len(differ)} differ, {equal} equal "
          f"to numpy_helper ({n_inits} initializers)")
    for r in refused:
        print("  refused:", r)
    for d in differ:
        print("  DIFFERS:", d)
    return 0 if not differ and equal >= 50 else 1


# ---- models made here -------------------------------------------------------

def model_of(inits, nodes=(), sparse=(), name="g"):
    g = helper.make_graph(list(nodes), name,
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                          initializer=list(inits), sparse_initializer=list(sparse))
    return helper.make_model(g, producer_name="peer_onnx")


def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def key(num, wire):
    return varint(num << 3 | wire)


def ld(num, payload):
    return key(num, 2) + varint(len(payload)) + payload


def with_raw_tensors(m, tensor_bytes):
    """The model's bytes with extra initializers given as TensorProto bytes
    (kept as written: unpacked fields stay unpacked)."""
    g = m.graph.SerializeToString() + b"".join(ld(5, t) for t in tensor_bytes)
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    m2.ClearField("graph")
    return m2.SerializeToString() + ld(7, g)


def tensor_bytes(name, dtype, dims, fields, packed_dims=False):
    """A TensorProto by hand: fields is a list of (field, wire, value bytes)."""
    b = b""
    if packed_dims:
        b += ld(1, b"".join(varint(d) for d in dims))
    else:
        b += b"".join(key(1, 0) + varint(d) for d in dims)
    b += key(2, 0) + varint(dtype) + ld(8, name if isinstance(name, bytes) else name.encode())
    for num, wire, payload in fields:
        b += key(num, wire) + payload if wire != 2 else ld(num, payload)
    return b


def made(d):
    ok = 0
    rng = np.random.default_rng(7)
    # 1. typed fields (packed, as protobuf writes them) and raw data
    inits = []
    for dt, (_, npdt) in OURS.items():
        if dt == TensorProto.BFLOAT16:
            vals = rng.standard_normal(6).astype(np.float32)
        elif dt == TensorProto.BOOL:
            vals = rng.integers(0, 2, 6).astype(bool)
        elif dt == TensorProto.COMPLEX64:
            vals = (rng.standard_normal(6) + 1j * rng.standard_normal(6)).astype(np.complex64)
        elif np.issubdtype(npdt, np.integer):
            info = np.iinfo(npdt)
            vals = np.array([info.min, info.max, 0, 1, info.max // 3, 7], dtype=npdt)
        else:
            vals = rng.standard_normal(6).astype(npdt)
        name = TensorProto.DataType.Name(dt).lower()
        inits.append(helper.make_tensor(name + "_typed", dt, [2, 3], vals.tolist()
                                        if dt != TensorProto.FLOAT16 else vals))
        if dt != TensorProto.BFLOAT16:
            inits.append(helper.make_tensor(name + "_raw", dt, [3, 2],
                                            np.asarray(vals, dtype=npdt).tobytes(), raw=True))
    inits.append(helper.make_tensor("scalar", TensorProto.FLOAT, [], [2.5]))
    inits.append(helper.make_tensor("empty", TensorProto.FLOAT, [0, 4], []))
    m = model_of(inits)
    # unpacked encodings and packed dims, spliced in as bytes
    f32 = lambda x: struct.pack("<f", x)
    extra = [
        tensor_bytes("float_unpacked", 1, [3], [(4, 5, f32(v)) for v in (1.5, -2.0, 3.25)]),
        tensor_bytes("int32_unpacked", 6, [2, 2], [(5, 0, varint(v)) for v in (-5, 7, -(2**31), 2**31 - 1)],
                     packed_dims=True),
        tensor_bytes("int8_unpacked", 3, [3], [(5, 0, varint(v)) for v in (-128, 127, -1)]),
        tensor_bytes("int64_unpacked", 7, [2], [(7, 0, varint(v)) for v in (-(2**63), 2**63 - 1)]),
        tensor_bytes("double_unpacked", 11, [2], [(10, 1, struct.pack("<d", v)) for v in (1e300, -0.5)]),
        tensor_bytes("uint64_unpacked", 13, [2], [(11, 0, varint(v)) for v in (2**64 - 1, 3)]),
        tensor_bytes("uint32_unpacked", 12, [2], [(11, 0, varint(v)) for v in (2**32 - 1, 3)]),
        tensor_bytes("f16_unpacked", 10, [2], [(5, 0, varint(v)) for v in (0x3C00, 0xFBFF)]),
        # one value packed, the next unpacked: both count
        tensor_bytes("float_mixed", 1, [3], [(4, 2, f32(1.0) + f32(2.0)), (4, 5, f32(3.0))]),
    ]
    p = os.path.join(d, "typed.onnx")
    open(p, "wb").write(with_raw_tensors(m, extra))
    why = compare(p)
    assert why is None, why
    n = count_inits(p)
    print(f"typed/raw/unpacked: {n} initializers equal")
    ok += 1
    meta = wv.load(p).metadata
    assert meta["onnx.producer_name"] == "peer_onnx", meta
    assert meta["onnx.inputs"] == '["x"]' and meta["onnx.outputs"] == '["y"]', meta
    assert '"version": ' in meta["onnx.opset_import"], meta
    assert meta["onnx.graph_name"] == "g" and "onnx.ir_version" in meta, meta

    # 2. external data: one file, offsets; then a checksum
    ext = os.path.join(d, "ext")
    os.makedirs(ext, exist_ok=True)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 5)).astype(np.float32), "w"),
             numpy_helper.from_array(np.arange(10, dtype=np.int64), "ids"),
             numpy_helper.from_array(rng.standard_normal(3).astype(np.float64), "d")]
    m = model_of(inits)
    p = os.path.join(ext, "model.onnx")
    onnx.save_model(m, p, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    why = compare(p)
    assert why is None, why
    m2 = onnx.load(p, load_external_data=False)
    assert all(t.data_location == TensorProto.EXTERNAL for t in m2.graph.initializer)
    sha = hashlib.sha1(open(os.path.join(ext, "weights.bin"), "rb").read()).hexdigest()
    for t in m2.graph.initializer:
        e = t.external_data.add()
        e.key, e.value = "checksum", sha
    onnx.save_model(m2, os.path.join(ext, "sum.onnx"))
    why = compare(os.path.join(ext, "sum.onnx"))
    assert why is None, why
    print("external data (with and without a checksum): equal")
    ok += 1

    # 3. subgraph initializers: a named If and a nameless one, Loop body
    def branch(nm, val):
        return helper.make_graph(
            [helper.make_node("Identity", [nm], ["out"])], nm + "_g", [],
            [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2])],
            initializer=[helper.make_tensor(nm, TensorProto.FLOAT, [2], [val, -val])])
    inner_if = helper.make_node("If", ["c"], ["o"], then_branch=branch("deep", 9.0),
                                else_branch=branch("deep_else", 8.0), name="inner")
    outer_then = helper.make_graph([inner_if], "t", [],
                                   [helper.make_tensor_value_info("o", TensorProto.FLOAT, [2])],
                                   initializer=[helper.make_tensor("tw", TensorProto.FLOAT, [1], [1.0])])
    nodes = [helper.make_node("If", ["c"], ["y1"], then_branch=outer_then,
                              else_branch=branch("w", 2.0), name="cond"),
             helper.make_node("If", ["c"], ["y2"], then_branch=branch("w", 3.0),
                              else_branch=branch("w", 4.0))]
    m = model_of([helper.make_tensor("c", TensorProto.BOOL, [], [True])], nodes)
    p = os.path.join(d, "subgraph.onnx")
    onnx.save_model(m, p)
    why = compare(p)
    assert why is None, why
    names = sorted(wv.load(p).keys())
    want = sorted(["c", "cond/then_branch/tw", "cond/then_branch/inner/then_branch/deep",
                   "cond/then_branch/inner/else_branch/deep_else", "cond/else_branch/w",
                   "If[1]/then_branch/w", "If[1]/else_branch/w"])
    assert names == want, names
    print("subgraphs: names", ", ".join(names))
    ok += 1

    # 4. sparse initializers: linear and coordinate indices
    sp1 = helper.make_sparse_tensor(
        helper.make_tensor("sp_lin", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0]),
        helper.make_tensor("sp_lin_i", TensorProto.INT64, [3], [1, 5, 11]), [3, 4])
    sp2 = helper.make_sparse_tensor(
        helper.make_tensor("sp_coo", TensorProto.INT32, [2], [7, -7]),
        helper.make_tensor("sp_coo_i", TensorProto.INT64, [2, 2], [0, 1, 2, 0]), [3, 2])
    p = os.path.join(d, "sparse.onnx")
    onnx.save_model(model_of([], sparse=[sp1, sp2]), p)
    why = compare(p)
    assert why is None, why
    print("sparse initializers: dense and equal")
    ok += 1
    # 5. float8 (e4m3fn 17, e5m2 19; onnx 1.12 does not know them): raw
    #    data and int32_data bit patterns, by hand, read as their bits
    p = os.path.join(d, "float8.onnx")
    open(p, "wb").write(with_raw_tensors(model_of([]), [
        tensor_bytes("e4m3_raw", 17, [3], [(9, 2, bytes([0x38, 0xC0, 0x7E]))]),
        tensor_bytes("e5m2_typed", 19, [2], [(5, 2, varint(0x3C) + varint(0xFB))])]))
    got = wv.load(p)
    assert got["e4m3_raw"].tobytes() == bytes([0x38, 0xC0, 0x7E]), got
    assert got["e5m2_typed"].tobytes() == bytes([0x3C, 0xFB]), got
    assert got.dtypes["e4m3_raw"] == "F8_E4M3" and got.dtypes["e5m2_typed"] == "F8_E5M2"
    print("float8: raw and int32_data bits equal")
    ok += 1
    print(f"made models: {ok} of 5 equal")
    return 0


# ---- malformed models -------------------------------------------------------

def bad(d):
    rows = []

    def put(name, data, status, pattern, sub=None):
        dd = os.path.join(d, sub) if sub else d
        os.makedirs(dd, exist_ok=True)
        p = os.path.join(dd, name + ".onnx")
        open(p, "wb").write(data)
        rows.append((p, status, pattern))

    base = model_of([helper.make_tensor("ok", TensorProto.FLOAT, [1], [1.0])])

    def one(tb, name, status, pattern):
        put(name, with_raw_tensors(base, [tb]), status, pattern)

    f32 = lambda *v: struct.pack("<%df" % len(v), *v)
    one(tensor_bytes("s", 8, [1], [(6, 2, b"abc")]), "string", 1, "'s' holds strings")
    one(tensor_bytes("c", 15, [1], [(9, 2, bytes(16))]), "complex128", 1,
        "'c' has the data type COMPLEX128")
    one(tensor_bytes("i4", 22, [2], [(9, 2, b"\x00")]), "int4", 1, "'i4' has the data type INT4")
    one(tensor_bytes("r", 1, [2], [(9, 2, f32(1.0))]), "raw_short", 1,
        "'r': raw_data of 4 bytes, its shape and type need 8")
    one(tensor_bytes("t", 1, [4], [(4, 2, f32(1, 2, 3))]), "typed_count", 1,
        "'t': float_data holds 3 values, its shape needs 4")
    one(tensor_bytes("q", 3, [1], [(5, 0, varint(300))]), "int8_range", 1,
        "'q': int32_data value 300 is out of range for INT8")
    one(tensor_bytes("u", 12, [1], [(11, 0, varint(2**32))]), "uint32_range", 1,
        "'u': uint64_data value 4294967296 is out of range for UINT32")
    one(tensor_bytes("b", 9, [2], [(9, 2, b"\x01\x02")]), "bool_byte", 1,
        "bool tensor 'b' holds the byte 2")
    one(tensor_bytes("rb", 1, [1], [(9, 2, f32(1.0)), (4, 2, f32(1.0))]), "raw_and_typed", 1,
        "'rb' holds both raw_data and float_data")
    one(tensor_bytes("tt", 6, [1], [(5, 0, varint(1)), (7, 0, varint(1))]), "two_typed", 1,
        "'tt' holds both int32_data and int64_data")
    one(tensor_bytes("wf", 1, [1], [(7, 0, varint(1))]), "wrong_field", 1,
        "'wf': a FLOAT tensor cannot hold int64_data")
    one(tensor_bytes("nd", 1, [2], []), "no_data", 1, "'nd' has no data")
    one(tensor_bytes("neg", 1, [2**64 - 1], []), "negative_dim", 1,
        "'neg' has a negative dimension")
    one(tensor_bytes("nine", 1, [1] * 9, [(4, 2, f32(1))]), "nine_dims", 1,
        "'nine' has 9 dimensions, more than 8")
    one(tensor_bytes("seg", 1, [1], [(3, 2, key(1, 0) + b"\x00"), (4, 2, f32(1))]),
        "segment", 1, "'seg' is segmented")
    one(tensor_bytes("ok", 1, [1], [(4, 2, f32(2))]), "duplicate", 1,
        "two initializers are named 'ok'")
    one(tensor_bytes("", 1, [1], [(4, 2, f32(2))]), "nameless", 1, "an initializer without a name")
    one(tensor_bytes(b"\xff", 1, [1], [(4, 2, f32(2))]),
        "name_utf8", 1, "name is not UTF-8")
    one(tensor_bytes("wt", 1, [1], [(2, 2, b"\x01"), (4, 2, f32(2))]), "wire_type", 1,
        "'wt': field 2 has wire type 2")
    one(tensor_bytes("fl", 1, [1], [(4, 2, b"\x00\x00\x80")]), "packed_float", 1,
        "'fl': malformed packed float_data")
    one(tensor_bytes("vi", 6, [1], [(5, 2, b"\x80")]), "packed_varint", 1,
        "'vi': malformed packed int32_data")
    one(tensor_bytes("loc", 1, [1], [(4, 2, f32(1)), (14, 0, varint(2))]), "data_location", 1,
        "'loc': unknown data_location 2")
    # pb-level: a length running past its message, a group, a truncated file
    one(tensor_bytes("x", 1, [1], []) + b"\x4a\x10", "len_past", 1,
        "longer than its message")
    one(tensor_bytes("x", 1, [1], []) + b"\x0b", "group", 1, "group or unknown wire type")
    whole = base.SerializeToString()
    put("two_graphs", whole + ld(7, base.graph.SerializeToString()), 1,
        "ONNX model with two graph fields")
    put("truncated", whole[:len(whole) - 5], 1, "longer than its message")

    # external data
    def ext_t(name, kv, dims=(2,), dtype=1):
        e = b"".join(ld(13, ld(1, k.encode()) + ld(2, v.encode())) for k, v in kv)
        return tensor_bytes(name, dtype, list(dims), [(14, 0, varint(1))]) + e
    sub = "extdir"
    os.makedirs(os.path.join(d, sub), exist_ok=True)
    open(os.path.join(d, sub, "w.bin"), "wb").write(f32(1, 2, 3, 4))
    open(os.path.join(d, "outside.bin"), "wb").write(f32(1, 2))

    def ext(name, kv, status, pattern, **kw):
        put(name, with_raw_tensors(base, [ext_t("e", kv, **kw)]), status, pattern, sub)
    ext("ext_past_end", [("location", "w.bin"), ("offset", "12"), ("length", "8")], 1,
        "'e': external data \\[12, +8) passes the end of .*w.bin (16 bytes)")
    ext("ext_offset_huge", [("location", "w.bin"), ("offset", "99999999999")], 1,
        "passes the end of")
    ext("ext_dotdot", [("location", "../outside.bin")], 1,
        "location '../outside.bin' leaves the model's directory")
    ext("ext_dotdot_inner", [("location", "a/../../outside.bin")], 1,
        "leaves the model's directory")
    ext("ext_absolute", [("location", os.path.join(d, "outside.bin"))], 1,
        "is absolute")
    ext("ext_no_location", [("offset", "0")], 1, "external data without a location")
    ext("ext_missing", [("location", "nowhere.bin")], 3, "nowhere.bin: No such file")
    ext("ext_length", [("location", "w.bin"), ("length", "12")], 1,
        "external data of 12 bytes, its shape and type need 8")
    ext("ext_not_decimal", [("location", "w.bin"), ("offset", "-4")], 1,
        "offset '-4' is not a decimal number")
    ext("ext_checksum", [("location", "w.bin"), ("length", "8"), ("checksum", "0" * 40)], 1,
        "fails its checksum")
    put("ext_and_raw", with_raw_tensors(base, [ext_t("e", [("location", "w.bin")])
                                               + ld(9, f32(1, 2))]), 1,
        "'e' is external but also holds data", sub)

    # subgraphs nested too deeply
    g = leaf = helper.make_graph([], "leaf", [], [],
                                 initializer=[helper.make_tensor("w", TensorProto.FLOAT,
                                                                 [1], [1.0])])
    for i in range(17):
        g = helper.make_graph([helper.make_node("If", ["c"], ["o"], then_branch=g,
                                                else_branch=leaf, name=f"n{i}")],
                              f"g{i}", [], [])
    m = helper.make_model(helper.make_graph([helper.make_node(
        "If", ["c"], ["o"], then_branch=g, else_branch=leaf, name="top")], "deep", [], []))
    put("deep_subgraphs", m.SerializeToString(), 1, "subgraphs nested more than 16 deep")

    # sparse initializers
    def sparse(name, vals, idx, idx_dims, dims, status, pattern):
        sp = helper.make_sparse_tensor(
            helper.make_tensor("sp", TensorProto.FLOAT, [len(vals)], vals),
            helper.make_tensor("sp_i", TensorProto.INT64, idx_dims, idx), dims)
        put(name, model_of([], sparse=[sp]).SerializeToString(), status, pattern)
    sparse("sparse_range", [1.0], [12], [1], [3, 4], 1,
           "'sp': index 12 is out of range or not above the one before")
    sparse("sparse_order", [1.0, 2.0], [5, 5], [2], [3, 4], 1,
           "index 5 is out of range or not above the one before")
    sparse("sparse_coord", [1.0], [0, 9], [1, 2], [3, 4], 1,
           "'sp': index 9 out of range in dimension 1")
    sparse("sparse_shape", [1.0, 2.0], [1, 2], [1, 2], [3, 4], 1,
           "indices must be INT64 of shape \\[2\\] or \\[2, 2\\]")
    sparse("sparse_huge", [1.0], [0], [1], [1 << 20, 1 << 10], 1,
           "'sp' would be 4294967296 bytes dense")
    for p, status, pattern in rows:
        print(f"{p}\t{status}\t{pattern}")
    return 0


if __name__ == "__main__":
    mode, arg = sys.argv[1], sys.argv[2]
    sys.exit({"real": real, "made": made, "bad": bad}[mode](arg))
