#!/usr/bin/env bash
# hardening_formats.sh -- issue 14, formats side: checksums are checked
# before bytes are used, amplification is bounded, names cannot escape.
# Every input is built here (Debian's Python with numpy, torch, h5py).
#
#  1. A bit flipped in a stored zip member (.npz, .pth) is refused by
#     inspect, inspect --json, convert and commit (mmap loads included),
#     naming the file, the member and (pth) the tensor. A local header
#     whose CRC-32 disagrees with the central directory is refused. An
#     HDF5 Fletcher-32 mismatch is refused naming the dataset.
#  2. A pickle whose memo names one storage for 4000 tensors (4 GB from
#     1 MB), an HDF5 file with 2000 hard links to one dataset, a data.pkl
#     that inflates to 50 MB of NONE opcodes and a FRAME length of 2^63 are
#     refused; --max-expand / WV_MAX_EXPAND let a smaller one through, and
#     then verify reads it with memory that does not grow with the aliases,
#     and a .pth written from it holds the shared storage once.
#  3. npz members '../../x.npy' and '/etc/x.npy' are refused on read; a
#     tensor named '../../etc/x' is refused when writing an .npz.
#
# Env: WV, PYTHON (/usr/bin/python3 with numpy, torch and h5py).
set -u
WV=${WV:?WV must name the wv binary}
PYTHON=${PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" - "$tmp" <<'EOF' || exit 1
import io, os, struct, sys, zipfile, zlib
import numpy as np, torch, h5py

d = sys.argv[1]
rng = np.random.default_rng(14)

def flip_in(path, needle_off):
    b = bytearray(open(path, "rb").read())
    b[needle_off] ^= 0x10
    open(path, "wb").write(bytes(b))

# -- 1. checksums ------------------------------------------------------------
a = rng.standard_normal(1000).astype("<f4")
np.savez(f"{d}/crc.npz", w=a)
raw = open(f"{d}/crc.npz", "rb").read()
flip_in(f"{d}/crc.npz", raw.index(a.tobytes()) + 400)

torch.save({"layer.weight": torch.from_numpy(a.copy())}, f"{d}/crc.pth")
raw = open(f"{d}/crc.pth", "rb").read()
flip_in(f"{d}/crc.pth", raw.index(a.tobytes()) + 400)

# local header CRC disagreeing with the central directory (no descriptor)
npyb = io.BytesIO(); np.save(npyb, a)
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
    z.writestr("w.npy", npyb.getvalue())
b = bytearray(buf.getvalue())
assert b[6] & 8 == 0
b[14] ^= 0xff
open(f"{d}/localcrc.npz", "wb").write(bytes(b))

with h5py.File(f"{d}/fl.h5", "w") as f:
    ds = f.create_dataset("dense/kernel:0", data=a.reshape(10, 100),
                          chunks=(10, 100), fletcher32=True)
    off = ds.id.get_chunk_info(0).byte_offset
flip_in(f"{d}/fl.h5", off + 100)

# -- 2. amplification --------------------------------------------------------
big = torch.from_numpy(rng.standard_normal(1 << 18).astype("<f4"))  # 1 MiB
torch.save({f"t{i}": big for i in range(4000)}, f"{d}/memo.pth")
small = torch.from_numpy(rng.standard_normal(1 << 14).astype("<f4"))  # 64 KiB
torch.save({f"t{i}": small for i in range(200)}, f"{d}/memo_small.pth")

def hlinks(path, n, numel):
    with h5py.File(path, "w") as f:
        x = rng.standard_normal(numel).astype("<f4")
        f.create_dataset("w/data", data=x, chunks=(min(numel, 4096),),
                         compression="gzip")
        for i in range(n):
            f[f"w/l{i}"] = f["w/data"]
hlinks(f"{d}/links.h5", 2000, 1 << 18)
hlinks(f"{d}/links_small.h5", 300, 1 << 18)

def pth_with_pickle(path, pkl, method):
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")

# FRAME 2^63, then a valid empty dict
pth_with_pickle(f"{d}/frame.pth",
                b"\x80\x04\x95" + struct.pack("<Q", 1 << 63) + b"}.",
                zipfile.ZIP_STORED)
# a deflated data.pkl of 50 MB of NONE opcodes (about 50 KB on disk)
pth_with_pickle(f"{d}/stack.pth", b"\x80\x02" + b"N" * (50 << 20) + b".",
                zipfile.ZIP_DEFLATED)
# a stored one of 2 MB: each NONE costs an object, far beyond 64x
pth_with_pickle(f"{d}/stack_stored.pth", b"\x80\x02" + b"N" * (2 << 20) + b".",
                zipfile.ZIP_STORED)

# -- 3. names ----------------------------------------------------------------
ybuf = io.BytesIO(); np.save(ybuf, a[:4])
for name, member in (("dotdot", "../../x.npy"), ("abs", "/etc/x.npy")):
    with zipfile.ZipFile(f"{d}/{name}.npz", "w") as z:
        z.writestr(member, ybuf.getvalue())
from stwrite import write_st
write_st(f"{d}/evil.safetensors", {"../../etc/x": a[:4], "ok": a[:2]})
EOF

# 1. checksums: every command that reads a member's bytes, mmap loads
# included (plain inspect of a .pth lists data.pkl only: no member bytes,
# nothing to check; npz members are read to find their headers)
for cmd in "inspect" "inspect --json"; do
    expect 1 "$WV" $cmd "$tmp/crc.npz"
    one_line_error "crc.npz: member 'w.npy': crc mismatch"
done
expect 0 "$WV" inspect "$tmp/crc.pth"
has "layer.weight"
expect 1 "$WV" inspect --json "$tmp/crc.pth"
one_line_error "crc.pth: member 'crc/data/0': crc mismatch.*tensor 'layer.weight'"
expect 1 "$WV" convert "$tmp/crc.npz" "$tmp/out.safetensors"
one_line_error "crc mismatch"
[ -e "$tmp/out.safetensors" ] && fail "convert wrote output from a damaged npz"
expect 1 "$WV" convert "$tmp/crc.pth" "$tmp/out.safetensors"
one_line_error "crc mismatch"
expect 1 "$WV" verify "$tmp/crc.pth"
one_line_error "crc mismatch"
expect 0 "$WV" init "$tmp/repo"
expect 1 "$WV" commit "$tmp/repo" "$tmp/crc.pth"
one_line_error "crc mismatch"
expect 1 "$WV" commit "$tmp/repo" "$tmp/crc.npz"
one_line_error "crc mismatch"
expect 1 "$WV" convert "$tmp/localcrc.npz" "$tmp/out.safetensors"
one_line_error "local header CRC-32 .* differs from the central directory"
expect 1 "$WV" convert "$tmp/fl.h5" "$tmp/out.safetensors"
one_line_error "dataset 'dense/kernel:0' cannot be read"
expect 1 "$WV" verify "$tmp/fl.h5"
one_line_error "dense/kernel:0"

# 2. amplification
expect 1 "$WV" convert "$tmp/memo.pth" "$tmp/out.safetensors"
one_line_error "memo.pth: its 4000 tensors hold 4194304000 bytes, more than 64 times"
[ -e "$tmp/out.safetensors" ] && fail "convert wrote an amplified file"
expect 1 "$WV" verify "$tmp/memo.pth"
one_line_error "amplification bound"
expect 1 "$WV" commit "$tmp/repo" "$tmp/memo.pth"
one_line_error "amplification bound"
expect 1 "$WV" convert "$tmp/links.h5" "$tmp/out.safetensors"
one_line_error "links.h5: its 2001 tensors hold"
expect 1 "$WV" verify "$tmp/frame.pth"
one_line_error "FRAME length 9223372036854775808 runs past the end of the pickle"
expect 1 "$WV" verify "$tmp/stack.pth"
one_line_error "stack.pth: 'archive/data.pkl' would take reading this file past"
expect 1 "$WV" inspect "$tmp/stack_stored.pth"
one_line_error "stack_stored.pth: 'pickle' would take reading this file past"

# The copy a Fortran-order member needs (its transposition) counts too:
# a deflated npz of 4 MiB random bytes inflates within 1x + 1 MiB, but
# inflating and transposing do not; 2x lets it through.
"$PYTHON" -c 'import numpy as np, sys
a = np.asfortranarray(np.random.RandomState(0).randint(0, 255, (2048, 2048), dtype=np.uint8))
np.savez_compressed(sys.argv[1], f=a)' "$tmp/fortran.npz" || fail "numpy savez"
expect 1 "$WV" verify --max-expand 1 "$tmp/fortran.npz"
one_line_error "fortran.npz: 'f' would take reading this file past"
expect 0 "$WV" verify --max-expand 2 "$tmp/fortran.npz"

# The opt-in: a smaller amplification passes with --max-expand or the
# environment, and memory stays near one copy (the aliases borrow it).
expect 1 "$WV" convert "$tmp/memo_small.pth" "$tmp/small.safetensors"
one_line_error "amplification bound"
expect 0 "$WV" convert --max-expand 1000 "$tmp/memo_small.pth" "$tmp/small.safetensors"
WV_MAX_EXPAND=1000 expect 0 "$WV" convert "$tmp/memo_small.pth" "$tmp/small2.safetensors"
expect 2 "$WV" convert --max-expand zero "$tmp/memo_small.pth" "$tmp/x.safetensors"
rss() { # rss KIB CMD...: CMD exits 0 and peaks below KIB kilobytes
    local lim=$1
    shift
    "$PYTHON" - "$lim" "$@" <<'EOF' || fail "peak memory: $*"
import resource, subprocess, sys
lim, cmd = int(sys.argv[1]), sys.argv[2:]
r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("peak %d KiB (limit %d): %s" % (peak, lim, " ".join(cmd[1:3])))
sys.exit(0 if r.returncode == 0 and peak < lim else 1)
EOF
}
# 300 links to one 1 MiB gzip dataset: read once (300 MiB if not)
rss 150000 "$WV" verify --max-expand 1000 "$tmp/links_small.h5"
rss 150000 "$WV" convert --max-expand 1000 "$tmp/links_small.h5" "$tmp/links.npz"
expect 0 "$WV" inspect --json "$tmp/links.npz"
has '"w/l299"'
# 200 views of one pickled storage in pread mode (verify)
rss 150000 "$WV" verify --max-expand 1000 "$tmp/memo_small.pth"
# ... written once to a .pth (one storage record, as torch writes it)
expect 0 "$WV" convert --max-expand 1000 "$tmp/memo_small.pth" "$tmp/tied.pth"
[ "$(stat -c %s "$tmp/tied.pth")" -lt 200000 ] ||
    fail "tied tensors written more than once: $(stat -c %s "$tmp/tied.pth") bytes"
"$PYTHON" - "$tmp/memo_small.pth" "$tmp/tied.pth" <<'EOF' || fail "tied.pth differs"
import sys, torch
a = torch.load(sys.argv[1]); b = torch.load(sys.argv[2], weights_only=True)
assert list(a) == list(b) and len(b) == 200
assert all(torch.equal(a[k], b[k]) for k in a)
assert len({b[k].data_ptr() for k in b}) == 1  # one shared storage
EOF

# 3. names
expect 1 "$WV" inspect "$tmp/dotdot.npz"
one_line_error "member '../../x.npy' (central directory entry 0): unsafe name (a '..' component)"
expect 1 "$WV" inspect --json "$tmp/abs.npz"
one_line_error "member '/etc/x.npy' (central directory entry 0): unsafe name (absolute path"
mkdir -p "$tmp/a/b"
expect 1 "$WV" convert "$tmp/evil.safetensors" "$tmp/a/b/out.npz"
one_line_error "tensor '../../etc/x': name unsafe for an npz member (a '..' component)"
[ -e "$tmp/a/b/out.npz" ] && fail "an npz with an escaping member name was written"
expect 1 "$WV" convert --shard-size 8 "$tmp/evil.safetensors" "$tmp/a/b/out.npz"
one_line_error "unsafe"
finish
