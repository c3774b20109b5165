#!/usr/bin/env bash
# wv checkout -o streams (issue 20): a checkpoint of many 4 KiB chunks is
# written as safetensors, npz and npy with the values numpy saved, and as
# .pth (the in-memory path) too; with a pack damaged in the middle the
# checkout fails naming the chunk and its tensor, exits 1, and leaves
# neither the output nor a temporary file (an older output stays as it
# was). Env: WV, PYTHON (Debian's, with numpy).
set -euo pipefail
: "${WV:?}" "${PYTHON:=/usr/bin/python3}"
"$PYTHON" -c 'import numpy' 2>/dev/null || { echo "checkout_stream: no numpy" >&2; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" - "$tmp/src.npz" <<'EOF'
import sys
import numpy as np
rng = np.random.default_rng(7)
np.savez(sys.argv[1],
         w=rng.standard_normal((300, 257), dtype=np.float32),
         h=rng.standard_normal(5001).astype(np.float16),
         step=np.array(42, dtype=np.int64),
         e=np.zeros((0, 3), dtype=np.float32))
EOF
"$WV" init "$tmp/r" --chunk-size 4096 --pack-size 65536 >/dev/null
"$WV" commit "$tmp/r" "$tmp/src.npz" -q >/dev/null

mkdir "$tmp/o"
"$WV" checkout "$tmp/r" -o "$tmp/o/a.safetensors" 2> "$tmp/log"
grep -q "wrote $tmp/o/a.safetensors (safetensors): 4 tensors" "$tmp/log"
"$WV" checkout "$tmp/r" -o "$tmp/o/a.npz" -q
"$WV" checkout "$tmp/r" -o "$tmp/o/h.npy" --tensor h -q
"$WV" checkout "$tmp/r" -o "$tmp/o/a.pth" -q
"$WV" convert "$tmp/o/a.pth" "$tmp/o/p.npz" -q
"$PYTHON" - "$tmp" <<'EOF'
import json, struct, sys
import numpy as np
t = sys.argv[1]
src = np.load(f"{t}/src.npz")
for name in ("a.npz", "p.npz"):
    got = np.load(f"{t}/o/{name}")
    assert sorted(got.files) == sorted(src.files), (name, got.files)
    for k in src.files:
        assert got[k].dtype == src[k].dtype and np.array_equal(got[k], src[k]), (name, k)
assert np.array_equal(np.load(f"{t}/o/h.npy"), src["h"])
raw = open(f"{t}/o/a.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
for k in src.files:
    a, b = hdr[k]["data_offsets"]
    x = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=src[k].dtype)
    assert np.array_equal(x.reshape(src[k].shape), src[k]), k
EOF

# Damage the middle of the largest pack: the checkout fails, and only the
# older output stays.
pack=$(find "$tmp/r/packs" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
size=$(stat -c %s "$pack")
printf '\xff\xfe' | dd of="$pack" bs=1 seek=$((size / 2)) conv=notrunc status=none
cp "$tmp/o/a.safetensors" "$tmp/old.safetensors"
rc=0
"$WV" checkout "$tmp/r" -o "$tmp/o/a.safetensors" -q 2> "$tmp/err" || rc=$?
[ "$rc" = 1 ] || { echo "checkout_stream: exit $rc on a damaged pack" >&2; cat "$tmp/err" >&2; exit 1; }
grep -q "chunk .* (tensor '.*' of checkpoint" "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
cmp "$tmp/o/a.safetensors" "$tmp/old.safetensors"
rc=0
"$WV" checkout "$tmp/r" -o "$tmp/o/new.npz" -q 2>/dev/null || rc=$?
[ "$rc" = 1 ]
left=$(ls -A "$tmp/o" | sort | tr '\n' ' ')
[ "$left" = "a.npz a.pth a.safetensors h.npy p.npz " ] || {
    echo "checkout_stream: left behind: $left" >&2
    exit 1
}
echo "checkout_stream: ok"
