#!/usr/bin/env bash
# Sharded checkpoints: `wv convert --shard-size` writes Hugging Face style
# shards plus an index; an index reads back as one set wherever a file name
# is accepted; an index that disagrees with its shards, or that points
# outside its directory, is refused with one line.
# Env: WV, WV_FIXTURES, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
fail_fast=1 # each step uses the files the one before wrote
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
src=$WV_FIXTURES/safetensors/tinygrad-mnist.safetensors
src2=$WV_FIXTURES/safetensors/candle-connect4-dqn-small.safetensors
need_file "$src" "$src2"

# 1. Cut into shards; the index is what transformers would write.
"$WV" convert "$src2" "$tmp/model.safetensors" --shard-size 3KB ||
    fail "convert --shard-size failed"
[ -e "$tmp/model.safetensors" ] && fail "a plain file was written too"
n=$(ls "$tmp"/model-*-of-*.safetensors | wc -l)
[ "$n" -eq 4 ] || fail "expected 4 shards, got $n"
"$PYTHON" - "$tmp" <<'PY' || fail "index check failed"
import json, os, struct, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
assert set(idx) == {"metadata", "weight_map"}, idx.keys()
total = 0
for f in sorted(set(idx["weight_map"].values())):
    b = open(os.path.join(d, f), "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    h.pop("__metadata__", None)
    for name, info in h.items():
        assert idx["weight_map"][name] == f, (name, f)
        total += info["data_offsets"][1] - info["data_offsets"][0]
    # each shard holds at most 3000 bytes unless it has a single tensor
    size = sum(i["data_offsets"][1] - i["data_offsets"][0] for i in h.values())
    assert size <= 3000 or len(h) == 1, (f, size)
assert idx["metadata"]["total_size"] == total, (idx["metadata"], total)
assert list(idx["weight_map"]) == sorted(idx["weight_map"])
print("index ok:", len(idx["weight_map"]), "tensors,", total, "bytes")
PY
[ "$(tensor_sums "$tmp/model.safetensors.index.json")" = "$(tensor_sums "$src2")" ] ||
    fail "sharded set differs from its source"
"$WV" verify "$tmp/model.safetensors.index.json" >/dev/null ||
    fail "verify of the index failed"
"$WV" convert "$tmp/model.safetensors.index.json" "$tmp/back.safetensors" ||
    fail "convert from the index failed"
cmp -s "$tmp/back.safetensors" "$src2" ||
    fail "index -> single file is not byte-identical to the original"
"$WV" convert "$tmp/model.safetensors.index.json" "$tmp/back.npz" ||
    fail "index -> npz failed"

# 2. A set that fits in one shard is one plain file, no index.
"$WV" convert "$src" "$tmp/one.safetensors" --shard-size 5GB ||
    fail "convert with a large shard size failed"
[ -e "$tmp/one.safetensors" ] && [ ! -e "$tmp/one.safetensors.index.json" ] ||
    fail "a set that fits one shard was not written as one file"

# 3. Indexes written by Python (as transformers does) read as one set.
mkdir "$tmp/hf"
"$PYTHON" - "$tmp/hf" "$src" <<'PY' || fail "making the HF-style set failed"
import json, os, struct, sys
d, src = sys.argv[1], sys.argv[2]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
data = b[8 + n:]
wm = {}
for i, (name, info) in enumerate(sorted(h.items())):
    f = "model-%05d-of-%05d.safetensors" % (i + 1, len(h))
    s, e = info["data_offsets"]
    hdr = {"__metadata__": {"format": "pt"},
           name: dict(info, data_offsets=[0, e - s])}
    j = json.dumps(hdr, separators=(",", ":")).encode()
    j += b" " * (-len(j) % 8)
    open(os.path.join(d, f), "wb").write(struct.pack("<Q", len(j)) + j + data[s:e])
    wm[name] = f
json.dump({"metadata": {"total_size": len(data)}, "weight_map": wm},
          open(os.path.join(d, "model.safetensors.index.json"), "w"),
          indent=2, sort_keys=True)
PY
[ "$(tensor_sums "$tmp/hf/model.safetensors.index.json")" = "$(tensor_sums "$src")" ] ||
    fail "HF-style index read differs from the source"

# 4. Refusals: one line, exit 1 (bad input) or 3 (missing file).
expect_fail() { # code substring file
    "$WV" verify "$3" >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc -eq "$1" ] || fail "$3: exit $rc, expected $1: $(cat "$tmp/err")"
    grep -q -- "$2" "$tmp/err" || fail "$3: message lacks '$2': $(cat "$tmp/err")"
    [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$3: not one line: $(cat "$tmp/err")"
}
idx=$tmp/model.safetensors.index.json
edit() { "$PYTHON" -c "
import json, sys
d = json.load(open('$idx'))
$1
json.dump(d, open('$tmp/bad.index.json', 'w'))"; }
edit 'd["weight_map"]["layer_1.bias"] = "../model-00001-of-00004.safetensors"'
expect_fail 1 "not a relative path" "$tmp/bad.index.json"
edit 'd["weight_map"]["layer_1.bias"] = "/etc/passwd"'
expect_fail 1 "not a relative path" "$tmp/bad.index.json"
edit 'd["weight_map"]["layer_2.bias"] = "model-00004-of-00004.safetensors"'
expect_fail 1 "index maps it to" "$tmp/bad.index.json"
edit 'del d["weight_map"]["layer_2.bias"]'
expect_fail 1 "does not map" "$tmp/bad.index.json"
edit 'd["weight_map"]["ghost"] = "model-00001-of-00004.safetensors"'
expect_fail 1 "does not contain it" "$tmp/bad.index.json"
edit 'd["weight_map"]["layer_1.bias"] = "missing.safetensors"'
expect_fail 3 "missing.safetensors" "$tmp/bad.index.json"
edit 'd["weight_map"] = {}'
expect_fail 1 "empty" "$tmp/bad.index.json"
printf '{"metadata": {}}' >"$tmp/nomap.json"
expect_fail 1 "weight_map" "$tmp/nomap.json"
finish "shard.sh: all checks passed"
