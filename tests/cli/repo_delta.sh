#!/usr/bin/env bash
# repo_delta.sh -- delta chunks end to end: a drifting "training run" of
# safetensors files (numpy, every weight moved a little per step, F32 and
# BF16) committed with --delta-keyframe 3 reads back exactly through its
# chains; wv log --stat and wv show report the stored bytes and codec mix;
# --no-delta at init gives a version-1 repository and larger packs, and
# for one commit no deltas; prune of the middle checkpoints then gc keeps
# the bases; verify reports a damaged base naming the chunk that needs it;
# push copies deltas and bases; an encrypted repository works the same.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$PYTHON" - "$tmp" <<'PY' || { echo "cannot generate inputs"; exit 1; }
import json, struct, sys
import numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
w = {f"layer{i}.weight": (rng.standard_normal(40000) * 0.05).astype("<f4")
     for i in range(3)}

def write(path, ts):
    # ts: name -> (dtype name, array); BF16 given as its raw uint16
    hdr, off, blobs = {}, 0, []
    for name in sorted(ts):
        dt, a = ts[name]
        b = np.ascontiguousarray(a).tobytes()
        hdr[name] = {"dtype": dt, "shape": [a.size], "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

for s in range(6):
    for k in w:
        w[k] = (w[k] + rng.standard_normal(w[k].size).astype("<f4") * 1e-4).astype("<f4")
    ts = {k: ("F32", w[k]) for k in w}
    # BF16: the top half of each F32 (truncation)
    ts.update({"bf." + k: ("BF16", (w[k].view("<u4") >> 16).astype("<u2")) for k in w})
    write(f"{d}/c{s}.safetensors", ts)
    write(f"{d}/f{s}.safetensors", {k: ("F32", w[k]) for k in w})
PY
[ -s "$tmp/c5.safetensors" ] || { echo "FAIL: no inputs"; exit 1; }

R="$tmp/repo"
expect 0 "$WV" init "$R" --chunk-size 64KiB --delta-keyframe 3
grep -q '"weightvault_repo": 3' "$R/config" || fail "config is not version 3: $(cat "$R/config")"
grep -q '"delta_keyframe": 3' "$R/config" || fail "config lacks delta_keyframe 3"
for s in 0 1 2 3 4 5; do
    expect 0 "$WV" commit "$R" "$tmp/c$s.safetensors" -m "step $s"
    eval "id$s=\$(cat \"\$tmp/out\")"
done
for s in 0 1 2 3 4 5; do
    eval "id=\$id$s"
    expect 0 "$WV" checkout "$R@$id" -o "$tmp/back$s.safetensors"
    same_tensors "$tmp/back$s.safetensors" "$tmp/c$s.safetensors"
done
cp "$tmp/back5.safetensors" "$tmp/last.safetensors"
expect 0 "$WV" log --stat "$R" -n 3
has "stored:"
has "xor-bg-zstd"
has "longest delta chain"
expect 0 "$WV" log --stat --json "$R"
pyjson 'len(d) == 6 and all(c["storage"]["max_chain"] <= 1 for c in d)'
pyjson 'd[0]["storage"]["new_by_codec"]["xor-bg-zstd"]["chunks"] > 0'
pyjson '[c["storage"]["max_chain"] for c in d] == [1, 1, 0, 1, 1, 0]'
expect 0 "$WV" show "$R"
has "codecs:"
expect 0 "$WV" show "$R" --json
pyjson 'd["storage"]["new_stored_bytes"] < d["storage"]["new_raw_bytes"]'

# no deltas: version 1, larger; --no-delta for one commit
N="$tmp/nodelta"
expect 0 "$WV" init "$N" --chunk-size 64KiB --no-delta
grep -q '"weightvault_repo": 1' "$N/config" || fail "--no-delta config is not version 1"
for s in 0 1 2 3 4 5; do
    expect 0 "$WV" commit "$N" "$tmp/c$s.safetensors"
done
a=$(du -sb "$R/packs" | cut -f1); b=$(du -sb "$N/packs" | cut -f1)
[ "$a" -lt "$b" ] || fail "deltas did not make the packs smaller ($a >= $b)"
expect 0 "$WV" commit "$R" "$tmp/c0.safetensors" --no-delta -m whole
expect 0 "$WV" show "$R" --json
pyjson 'd["storage"]["new_by_codec"]["xor-bg-zstd"]["chunks"] == 0'
expect 2 "$WV" init "$tmp/bad" --delta-keyframe 1
one_line_error "delta-keyframe"

# clone (push into a new repository) copies deltas and bases
expect 0 "$WV" clone "$R" "$tmp/clone"
expect 0 "$WV" checkout "$tmp/clone@$id5" -o "$tmp/clone5.safetensors"
same_tensors "$tmp/clone5.safetensors" "$tmp/last.safetensors"
expect 0 "$WV" verify "$tmp/clone"
# into a repository without deltas: refused
expect 2 "$WV" push "$R" "$N"
one_line_error "delta chunks"

# prune the middle, gc: the kept checkpoints still read back
expect 0 "$WV" tag "$R" first "$id0"
expect 0 "$WV" prune "$R" --keep-last 2
expect 0 "$WV" gc "$R"
expect 0 "$WV" checkout "$R@$id5" -o "$tmp/after5.safetensors"
same_tensors "$tmp/after5.safetensors" "$tmp/last.safetensors"
expect 0 "$WV" checkout "$R@first" -o "$tmp/after0.safetensors"
expect 0 "$WV" verify "$R"

# a damaged base: verify names the chunk that needs it
D="$tmp/damaged"
expect 0 "$WV" init "$D" --chunk-size 64KiB --delta-keyframe 4
expect 0 "$WV" commit "$D" "$tmp/f0.safetensors"
expect 0 "$WV" commit "$D" "$tmp/f1.safetensors"
"$PYTHON" - "$D" <<'PY' || fail "cannot damage the base"
import glob, os, sys
d = sys.argv[1]
p = sorted(glob.glob(d + "/packs/*/*"), key=os.path.getmtime)[0]
with open(p, "r+b") as f:
    f.seek(4000); b = f.read(1); f.seek(4000); f.write(bytes([b[0] ^ 0x20]))
PY
expect 1 "$WV" verify "$D"
grep -q "chain of bases is broken" "$tmp/out" "$tmp/err" || fail "verify does not name the delta whose base is broken: $(cat "$tmp/out" "$tmp/err" | head -c 800)"
expect 1 "$WV" checkout "$D@latest" -o "$tmp/x.safetensors"

# encrypted (a build without libsodium has no encrypted repositories:
# cli.repo_nocrypto covers that refusal)
if ! "$WV" --version | grep -q '^features:.*\bcrypto\b'; then
    finish "ok (built without crypto: the encrypted part skipped)"
fi
E="$tmp/enc"
export WV_PASSPHRASE="delta cli test"
expect 0 "$WV" init "$E" --encrypt --chunk-size 64KiB --delta-keyframe 4
for s in 0 1 2; do
    expect 0 "$WV" commit "$E" "$tmp/f$s.safetensors"
done
expect 0 "$WV" show "$E" --json
pyjson 'd["storage"]["new_by_codec"]["xor-bg-zstd"]["chunks"] > 0'
expect 0 "$WV" checkout "$E@latest" -o "$tmp/enc2.safetensors"
same_tensors "$tmp/enc2.safetensors" "$tmp/f2.safetensors"
expect 0 "$WV" verify "$E"
finish
