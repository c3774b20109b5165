#!/usr/bin/env bash
# big_4g.sh -- files and records over 4 GiB, through every writable format.
#
#  1. A 4.5 GiB safetensors set is generated in Python, streamed (64 MiB
#     slices, never a whole array in memory), with a deterministic pattern:
#     one F32 tensor of 4.25 GiB (1088 x 2^20, more than 2^32 bytes) and
#     seven small ones (I64, F64, F32, I32, F16, I16, I8), several of which
#     sit beyond the 4 GiB mark in every format. Python hashes each tensor
#     as it writes it; `wv inspect --json` of the source must agree.
#  2. For npz, pth, Keras legacy .h5, Keras 3 .weights.h5, MXNet .params
#     and GGUF (all of which hold these dtypes): `wv convert` to the format,
#     an independent structural check of what was written (below), `wv
#     convert` back to safetensors, and the per-tensor dtype, shape and
#     sha256 of `wv inspect --json` equal to the source's.
#  3. npy, which holds one array: the big tensor alone, the same way.
#
# Names: every multi-tensor writer keeps these names as they are (npz
# member '<name>.npy', pth flat state_dict key, Keras dataset path: legacy
# layer group 'embed' with dataset 'weight', read back as 'embed/weight';
# GGUF tensor name; MXNet name); a .npy has no name and reads back named
# after its file ('big'). NAME_MAP below states this per format, and the
# structural checks look the tensors up under the format's own names.
#
# Structural checks, without loading 4.5 GiB into Python: zipfile (the ZIP64
# sizes and offsets of .pth and .npz, the CRC of the big member), the pth
# pickle interpreted by a stub unpickler that records storage keys, offsets
# and shapes, the npy headers of npz members, np.load(mmap_mode='r') for
# .npy, h5py for both Keras layouts, the GGUF peer parser on a mapping, and
# a record walker for MXNet; then the first, middle and last row of every
# tensor, read through those offsets, must equal the pattern.
#
# Big files are deleted as soon as they are no longer needed: at most three
# 4.5 GiB files exist at once (source, format, round trip). Timings of every
# step are printed. BIG4G_ROWS (default 1088) shrinks the big tensor for a
# quick run of the script itself.
# Env: WV, WV_FIXTURES, WV_SRC, PYTHON.
set -u
: "${PYTHON:=/usr/bin/python3}"
: "${WV_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT; echo "tmp=$tmp" >&2
export WV WV_SRC BIG4G_TMP=$tmp

"$PYTHON" - <<'PY'
import collections
import hashlib
import json
import mmap
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.environ["WV_SRC"], "tests", "peer"))
import peer_gguf  # noqa: E402

WV = os.environ["WV"]
T = os.environ["BIG4G_TMP"]
ROWS = int(os.environ.get("BIG4G_ROWS", "1088"))
CH = 1 << 24               # pattern period and write slice, in elements
t_start = time.monotonic()
bad = []

# name -> (dtype, shape); written in the safetensors reference order
# (dtype descending, then name), so the big tensor comes third and four
# tensors follow it.
SPEC = collections.OrderedDict([
    ("norm/i64", ("I64", (4, 1024))),
    ("norm/f64", ("F64", (1024, 8192))),
    ("embed/bias", ("F32", (1, 4096))),
    ("embed/weight", ("F32", (ROWS, 1 << 20))),
    ("head/ids", ("I32", (2048, 8192))),
    ("head/w16", ("F16", (8192, 8192))),
    ("misc/i16", ("I16", (16, 256))),
    ("misc/i8", ("I8", (8, 1000))),
])
BIG = "embed/weight"
NP = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
      "I16": "<i2", "I8": "i1"}
FORMATS = ["npz", "pth", "h5", "weights.h5", "params", "gguf"]
# The names each format gives the tensors back: all keep them, but a .npy
# holds one unnamed array, which reads back named after the file's stem.
NAME_MAP = {f: {} for f in FORMATS}
NAME_MAP["npy"] = {BIG: "big"}


def fail(msg):
    bad.append(msg)
    print("FAIL: " + msg, file=sys.stderr, flush=True)


def log(msg):
    print("[%6.1fs] %s" % (time.monotonic() - t_start, msg), flush=True)


def raw(dt, j):
    """The pattern before the cast, at offsets j inside a period, in
    float32 or int32: the values (and the period number added to them)
    are exact there, so casting from them rounds as from float64."""
    if dt.startswith("F"):
        return (j % 8191).astype(np.float32) * np.float32(0.25)
    return (j % 251).astype(np.int32)


def pattern(dt, idx):
    """Values at flat indices idx: a period-CH sawtooth plus the period
    number, so every 64 MiB slice differs; computed in float64 or int64
    and cast, so a slice and the whole agree exactly."""
    return (raw(dt, idx % CH) + idx // CH).astype(NP[dt])


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def generate(path, names):
    """Stream a safetensors file; return {name: sha256} computed here."""
    hdr, off = {}, 0
    for n in names:
        dt, shape = SPEC[n]
        nb = numel(shape) * np.dtype(NP[dt]).itemsize
        hdr[n] = {"dtype": dt, "shape": list(shape),
                  "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    sums = {}
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for n in names:
            dt, shape = SPEC[n]
            total, sha = numel(shape), hashlib.sha256()
            base = raw(dt, np.arange(min(CH, total), dtype=np.int64))
            for start in range(0, total, CH):
                cnt = min(CH, total - start)
                part = (base[:cnt] + start // CH).astype(NP[dt],
                                                          copy=False)
                b = memoryview(np.ascontiguousarray(part)).cast("B")
                sha.update(b)
                f.write(b)
            sums[n] = sha.hexdigest()
    return sums


def wv(*args):
    t0 = time.monotonic()
    r = subprocess.run([WV] + list(args), capture_output=True, text=True)
    dt = time.monotonic() - t0
    if r.returncode != 0:
        fail("wv %s exited %d: %s" % (" ".join(args), r.returncode,
                                      r.stderr.strip()))
    return r, dt


def inspect(path):
    r, dt = wv("inspect", "--json", path)
    if r.returncode != 0:
        return {}, dt
    d = json.loads(r.stdout)
    return {t["name"]: (t["dtype"], tuple(t["shape"]), t["sha256"])
            for t in d["tensors"]}, dt


# ---- independent readers: name -> (dtype, shape, row(r) -> ndarray) -----

def mapped(path):
    f = open(path, "rb")
    mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    f.close()
    return mm


def rows_at(mm, off, dt, shape):
    cols = numel(shape[1:])
    isz = np.dtype(NP[dt]).itemsize

    def row(r):
        return np.frombuffer(mm, dtype=NP[dt], count=cols,
                             offset=off + r * cols * isz)
    return row


def zip_data_off(mm, info):
    """Offset of a stored member's data, from its local header."""
    sig, = struct.unpack_from("<I", mm, info.header_offset)
    assert sig == 0x04034B50, "bad local header for %s" % info.filename
    nl, xl = struct.unpack_from("<HH", mm, info.header_offset + 26)
    return info.header_offset + 30 + nl + xl


def zip_checks(path, zf, big_member, what):
    """ZIP64: the big member's size and the offsets past it; its CRC."""
    info = zf.getinfo(big_member)
    if info.compress_type != zipfile.ZIP_STORED or (
            ROWS >= 1024 and info.file_size <= 0xFFFFFFFF):
        fail("%s: member %s: type %d, size %d (want stored, > 4 GiB)"
             % (what, big_member, info.compress_type, info.file_size))
    if ROWS >= 1024 and not any(i.header_offset > 0xFFFFFFFF
                                for i in zf.infolist()):
        fail("%s: no member starts beyond 4 GiB" % what)
    t0 = time.monotonic()
    mm = mapped(path)
    at = zip_data_off(mm, info)
    crc = zlib.crc32(memoryview(mm)[at:at + info.file_size])
    if crc != info.CRC:
        fail("%s: member %s: CRC-32 %08x, recorded %08x"
             % (what, big_member, crc, info.CRC))
    log("  %s: zipfile: %s is %d bytes, stored, CRC-32 %s (%.1fs)"
        % (what, big_member, info.file_size,
           "ok" if crc == info.CRC else "BAD", time.monotonic() - t0))


def read_npz(path):
    mm, out = mapped(path), {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename[:-4]
            off = zip_data_off(mm, info)
            with open(path, "rb") as f:
                f.seek(off)
                ver = np.lib.format.read_magic(f)
                shape, fortran, dtype = \
                    np.lib.format._read_array_header(f, ver)
                data = f.tell()
            assert not fortran
            dt = [k for k, v in NP.items() if np.dtype(v) == dtype][0]
            out[name] = (dt, tuple(shape), rows_at(mm, data, dt, shape))
        zip_checks(path, zf, BIG + ".npy", "npz")
    return out


class StubStorage:
    def __init__(self, kind):
        self.kind = kind


class Unpickler(pickle.Unpickler):
    """data.pkl as torch reads it, but building nothing: tensors become
    (storage key, offset, size, stride, storage type)."""

    def find_class(self, mod, name):
        if (mod, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda st, off, size, stride, *rest: (
                st[2], off, tuple(size), tuple(stride), st[1].kind)
        if (mod, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if mod == "torch" and name.endswith("Storage"):
            return StubStorage(name)
        raise pickle.UnpicklingError("unexpected global %s.%s" % (mod, name))

    def persistent_load(self, pid):
        return pid


PTH_TYPE = {"F64": "DoubleStorage", "F32": "FloatStorage",
            "F16": "HalfStorage", "I64": "LongStorage", "I32": "IntStorage",
            "I16": "ShortStorage", "I8": "CharStorage"}


def read_pth(path):
    mm, out = mapped(path), {}
    with zipfile.ZipFile(path) as zf:
        pfx = zf.infolist()[0].filename.split("/")[0] + "/"
        sd = Unpickler(zf.open(pfx + "data.pkl")).load()
        big_key = None
        for name, (key, off, size, stride, kind) in sd.items():
            dt = [k for k, v in PTH_TYPE.items() if v == kind][0]
            info = zf.getinfo(pfx + "data/" + key)
            isz = np.dtype(NP[dt]).itemsize
            if info.file_size != numel(size) * isz or off != 0:
                fail("pth: %s: record %d bytes, offset %d" %
                     (name, info.file_size, off))
            if zip_data_off(mm, info) % 64:
                fail("pth: %s: record not 64-byte aligned" % name)
            if name == BIG:
                big_key = key
            out[name] = (dt, size,
                         rows_at(mm, zip_data_off(mm, info), dt, size))
        zip_checks(path, zf, pfx + "data/" + big_key, "pth")
    return out


def read_h5(path):
    f, out = h5py.File(path, "r"), {}
    H5 = {"<f8": "F64", "<f4": "F32", "<f2": "F16", "<i8": "I64",
          "<i4": "I32", "<i2": "I16", "|i1": "I8"}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = (H5[obj.dtype.str], obj.shape,
                         lambda r, ds=obj: ds[r])
    f.visititems(visit)
    return out


GG = {0: "F32", 1: "F16", 24: "I8", 25: "I16", 26: "I32", 27: "I64",
      28: "F64"}


def read_gguf(path):
    mm, out = mapped(path), {}
    _, _, infos, data_start = peer_gguf.parse(mm)
    for name, t, ne, off in infos:
        shape = tuple(int(d) for d in reversed(ne))
        out[name] = (GG[t], shape, rows_at(mm, data_start + off, GG[t],
                                           shape))
    return out


MX = {0: "F32", 1: "F64", 2: "F16", 4: "I32", 5: "I8", 6: "I64", 8: "I16"}


def read_params(path):
    mm, recs, p = mapped(path), [], 24
    magic, res, n = struct.unpack_from("<QQQ", mm, 0)
    assert magic == 0x112 and res == 0
    for _ in range(n):
        magic, stype, ndim = struct.unpack_from("<Iii", mm, p)
        assert magic == 0xF993FAC9 and stype == 0, (magic, stype)
        shape = struct.unpack_from("<%dq" % ndim, mm, p + 12)
        p += 12 + 8 * ndim
        _, _, flag = struct.unpack_from("<iii", mm, p)
        p += 12
        dt = MX[flag]
        recs.append((dt, shape, p))
        p += numel(shape) * np.dtype(NP[dt]).itemsize
    k, = struct.unpack_from("<Q", mm, p)
    p += 8
    assert k == n
    out = {}
    for dt, shape, off in recs:
        ln, = struct.unpack_from("<Q", mm, p)
        name = bytes(mm[p + 8:p + 8 + ln]).decode()
        p += 8 + ln
        out[name] = (dt, shape, rows_at(mm, off, dt, shape))
    assert p == len(mm), "trailing bytes"
    return out


def read_npy(path):
    a = np.load(path, mmap_mode="r")
    dt = [k for k, v in NP.items() if np.dtype(v) == a.dtype][0]
    stem = os.path.basename(path)[:-len(".npy")]
    return {stem: (dt, a.shape, lambda r: a[r])}


READERS = {"npz": read_npz, "pth": read_pth, "h5": read_h5,
           "weights.h5": read_h5, "params": read_params, "gguf": read_gguf,
           "npy": read_npy}


def structure(fmt, path, names):
    t0 = time.monotonic()
    try:
        got = READERS[fmt](path)
    except Exception as e:  # noqa: BLE001 (report any reader failure)
        fail("%s: independent reader failed: %r" % (fmt, e))
        return
    want = {NAME_MAP[fmt].get(n, n): n for n in names}
    if set(got) != set(want):
        fail("%s: names %s, expected %s" % (fmt, sorted(got), sorted(want)))
        return
    for fname, n in want.items():
        dt, shape, row = got[fname]
        if (dt, tuple(shape)) != SPEC[n]:
            fail("%s: %s is %s %s, expected %s" % (fmt, fname, dt,
                                                   tuple(shape), SPEC[n]))
            continue
        cols = numel(shape[1:])
        for r in sorted({0, shape[0] // 2, shape[0] - 1}):
            exp = pattern(SPEC[n][0], np.arange(r * cols, (r + 1) * cols,
                                                dtype=np.int64))
            if not np.array_equal(np.asarray(row(r)).reshape(-1), exp):
                fail("%s: %s row %d differs from the pattern" % (fmt, n, r))
    log("  %s: structure and sampled rows ok (%.1fs)"
        % (fmt, time.monotonic() - t0))


def back_dir():
    """Where the round-trip safetensors go: tmpfs when it has room (they
    are only hashed, and that spares the disk 4.5 GiB and an fsync per
    format), else beside the other files."""
    try:
        st = os.statvfs("/dev/shm")
        with open("/proc/meminfo") as f:
            avail = [int(x.split()[1]) * 1024 for x in f
                     if x.startswith("MemAvailable:")][0]
        if st.f_bavail * st.f_frsize > 6 * 2**30 and avail > 12 * 2**30:
            return tempfile.mkdtemp(dir="/dev/shm")
    except (OSError, IndexError):
        pass
    return T


BACK = back_dir()


def round_trip(fmt, src, want, names, drop_src=False):
    out = os.path.join(T, "big." + fmt)
    back = os.path.join(BACK, "back.safetensors")
    _, t1 = wv("convert", src, out)
    size = os.path.getsize(out) if os.path.exists(out) else 0
    log("%s: convert to %s: %.1fs, %.2f GiB" % (fmt, fmt, t1, size / 2**30))
    if drop_src:
        os.unlink(src)
    if bad:
        return
    structure(fmt, out, names)
    _, t2 = wv("convert", out, back)
    os.unlink(out)
    got, t3 = inspect(back)
    os.unlink(back)
    got = {n: got.get(NAME_MAP[fmt].get(n, n)) for n in names}
    if got != want:
        fail("%s: round trip differs:\n got  %s\n want %s" % (fmt, got, want))
    log("%s: back to safetensors %.1fs, inspect %.1fs: %s"
        % (fmt, t2, t3, "ok" if got == want else "DIFFERS"))


def extract(src, name, dst):
    """A safetensors file holding only tensor `name` of src, its bytes
    copied inside the kernel (copy_file_range), not regenerated."""
    with open(src, "rb") as f:
        n, = struct.unpack("<Q", f.read(8))
        hdr = json.loads(f.read(n))
    b, e = hdr[name]["data_offsets"]
    one = {name: dict(hdr[name], data_offsets=[0, e - b])}
    h = json.dumps(one, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        fo.write(struct.pack("<Q", len(h)) + h)
        fo.flush()
        off, left = 8 + n + b, e - b
        while left > 0:
            k = os.copy_file_range(fi.fileno(), fo.fileno(),
                                   min(left, 1 << 30), off)
            if k <= 0:
                raise OSError("copy_file_range returned %d" % k)
            off += k
            left -= k


def main():
    src = os.path.join(T, "set.safetensors")
    names = list(SPEC)
    t0 = time.monotonic()
    sums = generate(src, names)
    log("generated %.2f GiB in %.1fs" % (os.path.getsize(src) / 2**30,
                                         time.monotonic() - t0))
    want, t1 = inspect(src)
    expect = {n: (SPEC[n][0], SPEC[n][1], sums[n]) for n in names}
    if want != expect:
        fail("wv inspect of the source differs from the generator:\n"
             " wv  %s\n gen %s" % (want, expect))
        return
    log("wv inspect agrees with the generator's sha256 (%.1fs)" % t1)
    # npy first (it holds one array): the big tensor alone, cut out of the
    # set and dropped once converted, so at most three big files exist.
    one = os.path.join(T, "one.safetensors")
    t0 = time.monotonic()
    extract(src, BIG, one)
    log("npy: %s alone, copied out in %.1fs" % (BIG, time.monotonic() - t0))
    round_trip("npy", one, {BIG: want[BIG]}, [BIG], drop_src=True)
    for fmt in FORMATS:
        if bad:
            break
        round_trip(fmt, src, want, names)
    os.unlink(src)


try:
    main()
finally:
    if BACK != T:
        shutil.rmtree(BACK, ignore_errors=True)
log("%s" % ("all formats ok" if not bad else "%d failure(s)" % len(bad)))
sys.exit(1 if bad else 0)
PY
