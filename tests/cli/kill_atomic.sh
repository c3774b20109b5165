#!/usr/bin/env bash
# kill_atomic.sh -- `wv convert` killed with SIGKILL at random moments must
# leave OUT either byte-identical to its old content or a complete, valid
# new file; never a partial one. Leftover temporary files are allowed (a
# killed process cannot clean up) but counted and removed.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ~300 MB input: three F32 tensors of 25M elements (written with numpy).
"$PYTHON" - "$tmp/big.safetensors" <<'PY' || { echo "cannot generate input"; exit 1; }
import json, struct, sys
import numpy as np
n = 25 * 1000 * 1000
hdr, off = {"__metadata__": {"format": "pt"}}, 0
arrays = []
for i in range(3):
    a = (np.arange(n, dtype=np.float32) * np.float32(0.5 + i)).astype("<f4")
    arrays.append(a)
    hdr["t%d" % i] = {"dtype": "F32", "shape": [n], "data_offsets": [off, off + a.nbytes]}
    off += a.nbytes
h = json.dumps(hdr, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for a in arrays:
        f.write(a.tobytes())
PY

# Reference conversion and the "old" content of OUT.
"$WV" convert --dtype BF16 "$tmp/big.safetensors" "$tmp/ref.safetensors" ||
    { echo "reference conversion failed"; exit 1; }
ref_sum=$(sha256sum <"$tmp/ref.safetensors" | cut -d' ' -f1)
printf '\x08\x00\x00\x00\x00\x00\x00\x00{}      ' >"$tmp/old.safetensors"
old_sum=$(sha256sum <"$tmp/old.safetensors" | cut -d' ' -f1)

# How long a full conversion takes, to spread the kills over it.
start=$(date +%s%N)
cp "$tmp/old.safetensors" "$tmp/out.safetensors"
"$WV" convert --dtype BF16 "$tmp/big.safetensors" "$tmp/out.safetensors"
full_ms=$((($(date +%s%N) - start) / 1000000))
[ $full_ms -gt 0 ] || full_ms=1
echo "full conversion: ${full_ms} ms"

n_old=0 n_new=0
for i in $(seq 1 20); do
    cp "$tmp/old.safetensors" "$tmp/out.safetensors"
    "$WV" convert --dtype BF16 "$tmp/big.safetensors" "$tmp/out.safetensors" &
    pid=$!
    # a random delay in [0, 1.2 * full time)
    delay_ms=$((RANDOM % (full_ms * 12 / 10 + 1)))
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -KILL $pid 2>/dev/null
    wait $pid 2>/dev/null
    sum=$(sha256sum <"$tmp/out.safetensors" | cut -d' ' -f1)
    if [ "$sum" = "$old_sum" ]; then
        n_old=$((n_old + 1))
    elif [ "$sum" = "$ref_sum" ]; then
        "$WV" verify "$tmp/out.safetensors" >/dev/null ||
            fail "run $i: new file does not verify"
        n_new=$((n_new + 1))
    else
        fail "run $i (killed after ${delay_ms} ms): out is neither old nor the complete new file ($(stat -c %s "$tmp/out.safetensors") bytes)"
    fi
done
left=$(find "$tmp" -name '*.wv-tmp*' | wc -l)
echo "20 kills: $n_old left the old file, $n_new the new one; $left temporary file(s) left behind (removed)"
find "$tmp" -name '*.wv-tmp*' -delete
finish "kill_atomic: all checks passed"
