#!/usr/bin/env bash
# Concurrent writers: 4 processes x 50 commits of distinct content to the
# same branch of one repository. Nothing may be lost: 200 manifests, the
# chain from the branch head through the parents holds all 200 (the
# compare-and-swap on the ref fails for all but one writer at a time, and
# the losers re-parent onto the new head), and each reads back bit-exactly.
# Env: WV, PYTHON.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=${PYTHON:-python3}
procs=4 per=50
repo="$tmp/repo"
"$WV" init "$repo" --compression zstd >/dev/null

"$py" - "$tmp/in" $((procs * per)) <<'PY'
import json, os, struct, sys
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
for i in range(n):
    blob = struct.pack("<64f", *[i + k / 64 for k in range(64)])
    head = json.dumps({"w": {"dtype": "F32", "shape": [64],
                             "data_offsets": [0, len(blob)]}}).encode()
    head += b" " * (-len(head) % 8)
    with open(f"{out}/{i}.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + blob)
PY

writer() {
  local p=$1
  for ((k = 0; k < per; k++)); do
    local i=$((p * per + k))
    id=$("$WV" commit "$repo@main" "$tmp/in/$i.safetensors" -m "w$p-$k") || {
      echo "repo_concurrent: writer $p commit $k failed" >&2; return 1; }
    echo "$id $i"
  done > "$tmp/ids.$p"
}
pids=()
for ((p = 0; p < procs; p++)); do writer $p & pids+=($!); done
for pid in "${pids[@]}"; do wait "$pid"; done
cat "$tmp"/ids.* > "$tmp/ids"

"$py" - "$repo" "$tmp/ids" $((procs * per)) <<'PY'
import json, os, sys
repo, ids_file, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
mans = {}
for d, _, files in os.walk(os.path.join(repo, "manifests")):
    for f in files:
        if len(f) == 64:
            with open(os.path.join(d, f)) as fh:
                mans[f] = json.load(fh)
acked = [line.split()[0] for line in open(ids_file)]
assert len(acked) == want, f"{len(acked)} acknowledged, want {want}"
assert len(set(acked)) == want, "duplicate ids"
assert len(mans) == want, f"{len(mans)} manifests, want {want}"
head = open(os.path.join(repo, "refs/heads/main")).read().strip()
chain, cur = [], head
while cur:
    assert cur in mans, f"parent {cur[:12]} missing"
    chain.append(cur)
    cur = mans[cur]["parent"]
    assert len(chain) <= want, "cycle"
missing = set(acked) - set(chain)
assert not missing, f"{len(missing)} commits not on the branch"
assert len(chain) == want, f"chain has {len(chain)}"
print(f"repo_concurrent: {len(mans)} manifests, chain of {len(chain)} "
      f"from the head holds every commit")
PY

# Every commit checks out; one Python process then compares each output
# with its input: the same tensors, dtypes, shapes, bytes and metadata
# (not a `wv convert` of every input to cmp against: that doubled the wv
# processes, the cost of this test under the sanitizers).
mkdir "$tmp/got"
while read -r id i; do
  "$WV" checkout "$repo@$id" -o "$tmp/got/$i.safetensors"
done < "$tmp/ids"
"$py" - "$tmp/in" "$tmp/got" "$tmp/ids" <<'PY'
import json, struct, sys
src, got, ids = sys.argv[1:4]

def tensors(path):
    """{name: (dtype, shape, bytes)} and the metadata of a safetensors
    file, every offset checked against the file's size."""
    b = open(path, "rb").read()
    n, = struct.unpack_from("<Q", b)
    assert 8 + n <= len(b), f"{path}: header past the end"
    hdr = json.loads(b[8:8 + n])
    meta = hdr.pop("__metadata__", {})
    data, out, end = b[8 + n:], {}, 0
    for name, t in hdr.items():
        s, e = t["data_offsets"]
        assert 0 <= s <= e <= len(data), f"{path}: {name} out of bounds"
        out[name] = (t["dtype"], t["shape"], data[s:e])
        end = max(end, e)
    assert end == len(data), f"{path}: {len(data) - end} trailing bytes"
    return out, meta

n = 0
for line in open(ids):
    cid, i = line.split()
    if tensors(f"{got}/{i}.safetensors") != tensors(f"{src}/{i}.safetensors"):
        sys.exit(f"repo_concurrent: {cid} (input {i}) differs")
    n += 1
print(f"repo_concurrent: {n} commits read back exactly")
PY
echo "repo_concurrent: ok"
