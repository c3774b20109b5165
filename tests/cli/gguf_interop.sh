#!/usr/bin/env bash
# gguf_interop.sh -- GGUF interop. Debian has no GGUF framework (no gguf-py,
# no llama.cpp), so the "framework" is an independent Python implementation
# of the spec: tests/data/malformed/gen_gguf.py writes files the way gguf-py
# lays them out, tests/peer/peer_gguf.py reads them (struct + numpy) and
# holds a reference dequantiser written from ggml's block layouts.
#
#  1. Files written in Python (v2 and v3, every KV type and arrays of each,
#     non-UTF-8 and control bytes in strings, NaN payloads, alignments 8 and
#     64, every plain ggml dtype, Q8_0/Q4_0/Q4_1/Q5_0/Q5_1, K-quant, IQ4,
#     MXFP4 and IQ2_XXS blocks, 0-d,
#     empty and 4-d tensors, no tensors) read by wv exactly as the peer
#     reads them (`wv inspect --json`, order included).
#  2. wv's GGUF output read by the peer gives identical values; rewriting a
#     gguf-py-layout v3 file (and the fixture) is byte-identical.
#  3. --dtype F32/F16/BF16 dequantisation of Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
#     Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS, MXFP4 bit-identical
#     to the Python reference; IQ2_XXS refused for non-GGUF targets with a
#     clear message and kept as is in GGUF; a K-quant without --dtype
#     refused.
#  4. Round trips: fixture -> gguf -> safetensors -> gguf, and gguf ->
#     safetensors / npz / npy -> gguf give identical tensors (and, through
#     safetensors, identical KVs).
# Env: WV, WV_FIXTURES, WV_SRC, PYTHON.
set -u
: "${PYTHON:=/usr/bin/python3}"
: "${WV_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${WV_FIXTURES:=$WV_SRC/tests/fixtures}"
. "$(dirname "$0")/../harness/cli.sh"
need_file "$WV_FIXTURES"/gguf/stories260K.gguf
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT; echo "tmp=$tmp" >&2
export WV WV_SRC WV_FIXTURES TMPDIR_GGUF=$tmp

"$PYTHON" - <<'PY'
import json
import os
import struct
import subprocess
import sys

import numpy as np

src = os.environ["WV_SRC"]
sys.path.insert(0, os.path.join(src, "tests", "peer"))
sys.path.insert(0, os.path.join(src, "tests", "data", "malformed"))
import gen_gguf as G  # noqa: E402
import peer_gguf as P  # noqa: E402

WV = os.environ["WV"]
T = os.environ["TMPDIR_GGUF"]
FIX = os.path.join(os.environ["WV_FIXTURES"], "gguf", "stories260K.gguf")
bad = []
checks = 0


def fail(msg):
    bad.append(msg)
    print("FAIL: " + msg, file=sys.stderr)


def wv(*args, ok=True):
    r = subprocess.run([WV] + list(args), capture_output=True, text=True)
    if ok and r.returncode != 0:
        fail("wv %s exited %d: %s" % (" ".join(args), r.returncode,
                                      r.stderr.strip()))
    return r


def inspect(path):
    r = wv("inspect", "--json", path)
    return json.loads(r.stdout) if r.returncode == 0 else None


def same_as_peer(path, what):
    global checks
    checks += 1
    ours, peer = inspect(path), P.dump(path)
    if ours != peer:
        fail("%s: wv inspect differs from the peer:\n wv   %s\n peer %s"
             % (what, json.dumps(ours)[:600], json.dumps(peer)[:600]))


def tensor_set(d):
    return sorted((t["name"], t["dtype"], tuple(t["shape"]), t["sha256"])
                  for t in d["tensors"])


def p(name):
    return os.path.join(T, name)


rng = np.random.default_rng(1234)


# bytes per block, and where the block's f16 scales (d, then dmin) sit
QLAYOUT = {"Q8_0": (34, 0), "Q4_0": (18, 0), "Q4_1": (20, 0),
           "Q5_0": (22, 0), "Q5_1": (24, 0), "Q2_K": (84, 80),
           "Q3_K": (110, 108), "Q4_K": (144, 0), "Q5_K": (176, 0),
           "Q6_K": (210, 208), "Q8_K": (292, None), "IQ4_NL": (18, 0),
           "IQ4_XS": (136, 0), "IQ2_XXS": (66, 0), "MXFP4": (17, -1)}


def q_blocks(kind, nblocks):
    """Random but valid blocks (finite scales; the rest random bytes)."""
    bb, at = QLAYOUT[kind]
    b = rng.integers(0, 256, size=(nblocks, bb), dtype=np.uint8)
    scales = rng.uniform(-0.1, 0.1, size=(nblocks, 2)).astype(np.float16)
    if at == -1:         # MXFP4: any exponent byte (255: infinities)
        pass
    elif at is None:     # Q8_K: one f32 d
        d = rng.uniform(-0.1, 0.1, size=nblocks).astype("<f4")
        b[:, 0:4] = d.view(np.uint8).reshape(nblocks, 4)
    else:
        end = min(at + 4, bb)
        b[:, at:end] = scales.view(np.uint8).reshape(nblocks, 4)[:, :end - at]
    return b.tobytes()


QID = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q2_K": 10,
       "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "Q8_K": 15,
       "IQ4_NL": 20, "IQ4_XS": 23, "IQ2_XXS": 16, "MXFP4": 39}

# ---- 1. Python-written files read by wv exactly as the peer reads them ----
ALL_KV = [
    G.kv("general.architecture", G.T_STR, "llama"),
    G.kv("general.name", G.T_STR, b"caf\xc3\xa9 \xff\xfe raw \"q\" \\ \n\t\x01"),
    G.kv("k.u8", G.T_U8, 255), G.kv("k.i8", G.T_I8, -128),
    G.kv("k.u16", G.T_U16, 65535), G.kv("k.i16", G.T_I16, -32768),
    G.kv("k.u32", G.T_U32, 4294967295), G.kv("k.i32", G.T_I32, -2147483648),
    G.kv("k.f32", G.T_F32, 0.1), G.kv("k.bool", G.T_BOOL, 1),
    G.kv("k.u64", G.T_U64, 2**64 - 1), G.kv("k.i64", G.T_I64, -2**63),
    G.kv("k.f64", G.T_F64, -1e-300),
    G.kv("k.f32inf", G.T_F32, float("-inf")),
    G.kv("k.f32neg0", G.T_F32, -0.0),
    b"".join([G.gstr("k.f32nan"), struct.pack("<II", G.T_F32, 0x7fc01234)]),
    b"".join([G.gstr("k.f64nan"),
              struct.pack("<IQ", G.T_F64, 0xfff0000000000001)]),
    G.kv("a.u8", G.T_ARR, [0, 1, 255], G.T_U8),
    G.kv("a.i8", G.T_ARR, [-1, 7], G.T_I8),
    G.kv("a.u16", G.T_ARR, [1, 65535], G.T_U16),
    G.kv("a.i16", G.T_ARR, [-300], G.T_I16),
    G.kv("a.u32", G.T_ARR, [], G.T_U32),
    G.kv("a.i32", G.T_ARR, [-5, 5], G.T_I32),
    G.kv("a.f32", G.T_ARR, [1.5, -2.25, 3.4028234663852886e38, 1e-45],
         G.T_F32),
    G.kv("a.bool", G.T_ARR, [0, 1, 1], G.T_BOOL),
    G.kv("a.str", G.T_ARR, ["", "a,b", "]", b"\x80", "\u00e9\U0001f600"],
         G.T_STR),
    G.kv("a.u64", G.T_ARR, [2**63], G.T_U64),
    G.kv("a.i64", G.T_ARR, [-1, 2**62], G.T_I64),
    G.kv("a.f64", G.T_ARR, [0.1, 1e308], G.T_F64),
]


def plain(name, ne, dt, ggml):
    shape = list(reversed(ne))
    n = int(np.prod(shape)) if shape else 1
    if dt == "bf16":
        a = rng.standard_normal(n).astype(np.float32)
        data = (a.view(np.uint32) >> 16).astype("<u2").tobytes()
    elif dt.startswith("i"):
        data = rng.integers(-100, 100, n).astype("<" + dt).tobytes()
    else:
        data = rng.standard_normal(n).astype("<" + dt).tobytes()
    return (name, ne, ggml, data)


tensors = [
    plain("f32.2d", [8, 3], "f4", 0), plain("f16", [5], "f2", 1),
    plain("bf16", [2, 2, 2], "bf16", 30), plain("f64", [3], "f8", 28),
    plain("i8", [7], "i1", 24), plain("i16", [3, 1], "i2", 25),
    plain("i32", [2, 3, 4, 5], "i4", 26), plain("i64", [2], "i8", 27),
    plain("scalar", [], "f4", 0), ("empty", [0, 3], 0, b""),
]
for k in ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"):
    tensors.append(("q." + k, [64, 3], QID[k], q_blocks(k, 6)))
for k in ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ4_XS"):
    tensors.append(("q." + k, [512, 3], QID[k], q_blocks(k, 6)))
tensors.append(("q.IQ4_NL", [64, 3], QID["IQ4_NL"], q_blocks("IQ4_NL", 6)))
tensors.append(("q.MXFP4", [64, 3], QID["MXFP4"], q_blocks("MXFP4", 6)))
tensors.append(("q.IQ2_XXS", [256, 2], 16, q_blocks("IQ2_XXS", 2)))

files = {
    "all_v3.gguf": G.gguf(ALL_KV, tensors, 3, 32),
    "all_v2.gguf": G.gguf(ALL_KV, tensors, 2, 32),
    "align64.gguf": G.gguf([G.kv("general.alignment", G.T_U32, 64)]
                           + ALL_KV[:3], tensors[:4], 3, 64),
    "align8.gguf": G.gguf([G.kv("general.alignment", G.T_U32, 8)],
                          tensors[4:9], 3, 8),
    "no_tensors.gguf": G.gguf(ALL_KV[:2], [], 3),
    "empty.gguf": G.gguf([], [], 3),
}
for name, data in files.items():
    with open(p(name), "wb") as f:
        f.write(data)
    same_as_peer(p(name), name)
    # wv verify accepts it too
    checks += 1
    r = wv("verify", p(name))

# ---- 2. wv's GGUF output: byte-identical rewrites, values per the peer ----
for name in ("all_v3.gguf", "align64.gguf", "align8.gguf",
             "no_tensors.gguf", "empty.gguf"):
    out = p("re_" + name)
    wv("convert", p(name), out)
    checks += 1
    if open(out, "rb").read() != open(p(name), "rb").read():
        fail("%s: rewrite is not byte-identical" % name)
out = p("re_all_v2.gguf")
wv("convert", p("all_v2.gguf"), out)
checks += 1
a, b = P.dump(out), P.dump(p("all_v2.gguf"))
if a != b:
    fail("v2 -> v3 rewrite changed KVs or tensors")
ref = P.arrays(p("all_v3.gguf"))
got = P.arrays(out)
for k in ref:
    checks += 1
    if ref[k].shape != got[k].shape or \
            ref[k].tobytes() != got[k].tobytes():
        fail("tensor %s: values differ after wv wrote it" % k)

wv("convert", FIX, p("fix.gguf"))
checks += 1
if open(FIX, "rb").read() != open(p("fix.gguf"), "rb").read():
    fail("fixture rewrite is not byte-identical")
same_as_peer(FIX, "fixture")

# ---- 3. dequantisation vs the Python reference ---------------------------
qset = [t for t in tensors if t[0].startswith("q.") and t[0] != "q.IQ2_XXS"]
with open(p("q.gguf"), "wb") as f:
    f.write(G.gguf([], qset))


def bf16_rne(a):
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7fff + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r


for cast in ("F32", "F16", "BF16"):
    out = p("deq_%s.safetensors" % cast)
    wv("convert", p("q.gguf"), out, "--dtype", cast)
    d = inspect(out)
    if d is None:
        continue
    for name, ne, ggml, data in qset:
        kind = name[2:]
        ref32 = P.dequant(kind, data, ne[0] * ne[1]).reshape(ne[1], ne[0])
        if cast == "F32":
            want = ref32.astype("<f4").tobytes()
        elif cast == "F16":
            want = ref32.astype("<f2").tobytes()
        else:
            want = bf16_rne(ref32).astype("<u2").tobytes()
        import hashlib
        t = [x for x in d["tensors"] if x["name"] == name][0]
        checks += 1
        if t["dtype"] != cast or t["shape"] != [ne[1], ne[0]] or \
                t["sha256"] != hashlib.sha256(want).hexdigest():
            fail("%s --dtype %s differs from the reference dequantisation"
                 % (name, cast))
# also to GGUF with --dtype: F32 tensors, same values
wv("convert", p("q.gguf"), p("deq.gguf"), "--dtype", "F32")
got = P.arrays(p("deq.gguf"))
for name, ne, ggml, data in qset:
    checks += 1
    want = P.dequant(name[2:], data, ne[0] * ne[1])
    if got[name].dtype != np.float32 or \
            got[name].tobytes() != want.astype("<f4").tobytes():
        fail("%s: gguf --dtype F32 differs from the reference" % name)

# a block type wv does not dequantise (IQ2_XXS): refused, or kept in
# GGUF; and a K-quant without --dtype: refused by other formats
with open(p("iq2.gguf"), "wb") as f:
    f.write(G.gguf([], [tensors[-1]]))
with open(p("q6k.gguf"), "wb") as f:
    f.write(G.gguf([], [t for t in tensors if t[0] == "q.Q6_K"]))
for src, target, extra, why in (
        ("iq2.gguf", "iq2.safetensors", [], "is IQ2_XXS"),
        ("iq2.gguf", "iq2.npz", [], "is IQ2_XXS"),
        ("iq2.gguf", "iq2_2.safetensors", ["--dtype", "F32"],
         "IQ2_XXS, which cannot be dequantised"),
        ("q6k.gguf", "q6k.safetensors", [], "--dtype")):
    r = wv("convert", p(src), p(target), *extra, ok=False)
    checks += 1
    if r.returncode == 0 or why not in r.stderr or \
            len(r.stderr.strip().splitlines()) != 1:
        fail("%s -> %s %s: want one-line refusal, got %d %r"
             % (src, target, extra, r.returncode, r.stderr))
    if os.path.exists(p(target)):
        fail("refused convert left %s behind" % target)
r = wv("convert", p("iq2.gguf"), p("iq2_b.gguf"), "--dtype", "F16")
checks += 1
if P.dump(p("iq2_b.gguf"))["tensors"] != P.dump(p("iq2.gguf"))["tensors"]:
    fail("IQ2_XXS not kept as is in GGUF under --dtype F16")

# ---- 4. round trips through the other writable formats -------------------
fix = inspect(FIX)
wv("convert", p("fix.gguf"), p("fix.safetensors"))
wv("convert", p("fix.safetensors"), p("fix2.gguf"))
back = inspect(p("fix2.gguf"))
checks += 1
if back is None or back["metadata"] != fix["metadata"] or \
        list(back["metadata"]) != list(fix["metadata"]) or \
        tensor_set(back) != tensor_set(fix):
    fail("fixture -> gguf -> safetensors -> gguf changed KVs or tensors")
checks += 1
if open(p("fix2.gguf"), "rb").read() != \
        open(p("fix.gguf"), "rb").read() and \
        P.dump(p("fix2.gguf"))["metadata"] != P.dump(FIX)["metadata"]:
    fail("fixture KVs differ after safetensors")

plain_set = [t for t in tensors if not t[0].startswith("q.")]
plain_set = [t for t in plain_set if t[0] != "bf16"]  # npz has no BF16
with open(p("plain.gguf"), "wb") as f:
    f.write(G.gguf(ALL_KV, plain_set))
orig = inspect(p("plain.gguf"))
for ext in ("safetensors", "npz"):
    wv("convert", p("plain.gguf"), p("plain." + ext))
    wv("convert", p("plain." + ext), p("plain_%s.gguf" % ext))
    got = inspect(p("plain_%s.gguf" % ext))
    checks += 1
    if got is None or tensor_set(got) != tensor_set(orig):
        fail("gguf -> %s -> gguf changed the tensors" % ext)
    if ext == "safetensors" and got["metadata"] != orig["metadata"]:
        fail("gguf -> safetensors -> gguf changed the KVs")
with open(p("w.gguf"), "wb") as f:
    f.write(G.gguf([], [plain("w", [4, 3], "f4", 0)]))
wv("convert", p("w.gguf"), p("w.npy"))
wv("convert", p("w.npy"), p("w2.gguf"))
checks += 1
if tensor_set(inspect(p("w2.gguf")) or {"tensors": []}) != \
        tensor_set(inspect(p("w.gguf"))):
    fail("gguf -> npy -> gguf changed the tensor")
# numpy sees what wv wrote
checks += 1
if not np.array_equal(np.load(p("w.npy")), P.arrays(p("w.gguf"))["w"]):
    fail("npy written from gguf differs in numpy")

print("%d passed, %d failed" % (checks - len(bad), len(bad)))
sys.exit(1 if bad else 0)
PY
