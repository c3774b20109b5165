#!/usr/bin/env bash
# Crash safety: SIGKILL `wv commit` at random instants until 200 kills have
# hit a running commit (set WV_SOAK=N for N times as many), on three
# branches of one repository.
# Afterwards every acknowledged commit (wv printed an id and exited 0)
# reads back bit-exactly, every branch head checks out, and `wv verify`
# passes when it knows repositories. Env: WV, PYTHON.
set -euo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
py=${PYTHON:-python3}
want=$((200 * ${WV_SOAK:-1}))
nfiles=$((want * 2))
iters=$((want * 6)) # at most (files are reused in turn)
RANDOM=${WV_TEST_SEED:-777}
repo="$tmp/repo"
"$WV" init "$repo" --chunk-size 16KiB --pack-size 64KiB >/dev/null

# Distinct small safetensors files (32..288 KiB of F32/BF16/I64 data),
# written directly so no third-party package is needed.
"$py" - "$tmp/in" "$nfiles" <<'PY'
import json, os, random, struct, sys
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out)
rnd = random.Random(5)
for i in range(n):
    tensors, blob = {}, b""
    for j, (dt, es) in enumerate([("F32", 4), ("BF16", 2), ("I64", 8)]):
        count = rnd.randrange(4096, 36864) // es * es
        data = rnd.randbytes(count)
        tensors[f"layer{j}.w"] = {"dtype": dt, "shape": [count // es],
                                  "data_offsets": [len(blob),
                                                   len(blob) + count]}
        blob += data
    tensors["__metadata__"] = {"i": str(i)}
    head = json.dumps(tensors).encode()
    head += b" " * (-len(head) % 8)
    with open(f"{out}/{i}.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + blob)
PY

# How long does a commit take here? Kill within 0 .. 1.5 x that.
t0=$(date +%s%N)
for i in 0 1 2; do "$WV" commit "$repo@warmup" "$tmp/in/$i.safetensors" >/dev/null; done
ms=$(( ($(date +%s%N) - t0) / 3000000 + 1 ))
range=$((ms + 1))

: > "$tmp/acked"
killed=0
window=0
for ((i = 0; i < iters && killed < want; i++)); do
  k=$((i % nfiles))
  f="$tmp/in/$k.safetensors"
  b="b$((i % 3))"
  "$WV" commit "$repo@$b" "$f" -m "commit $i" > "$tmp/out" 2> "$tmp/err" &
  pid=$!
  d=$((RANDOM % range))
  sleep "$((d / 1000)).$(printf '%03d' $((d % 1000)))"
  kill -9 $pid 2>/dev/null && killed=$((killed + 1)) && window=$((window + 1)) || true
  if wait $pid 2>/dev/null; then
    id=$(cat "$tmp/out")
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] || { echo "repo_crash: bad output '$id'" >&2; exit 1; }
    echo "$id $k $i" >> "$tmp/acked"
  fi
  # commits got faster than the first ones timed (the machine's load
  # changes): aim earlier when fewer than half of the last 40 were hit
  if (( i % 40 == 39 )); then
    if (( window < 20 && range > 4 )); then range=$((range * 2 / 3)); fi
    window=0
  fi
done
n_acked=$(wc -l < "$tmp/acked")
echo "repo_crash: $i commits (${ms} ms each), $killed killed, $n_acked acknowledged"
[ "$killed" -ge "$want" ] || { echo "repo_crash: only $killed kills landed" >&2; exit 1; }

# Every acknowledged commit reads back bit-exactly.
while read -r id k i; do
  "$WV" convert "$tmp/in/$k.safetensors" "$tmp/want.safetensors"
  "$WV" checkout "$repo@$id" -o "$tmp/got.safetensors"
  cmp -s "$tmp/want.safetensors" "$tmp/got.safetensors" ||
    { echo "repo_crash: acknowledged commit $id (input $k) differs" >&2; exit 1; }
done < "$tmp/acked"
# The last acknowledged commit of each branch is its head or an ancestor
# of a later (possibly unacknowledged) one: the heads must all check out.
# A branch every commit of which was killed before its ref moved has no
# head at all, which is correct: take the branches the repository lists,
# and require one for every branch with an acknowledged commit.
branches=$("$WV" branch "$repo" --list | awk '{print $1}')
while read -r id k i; do
  b="b$((i % 3))"
  grep -qx "$b" <<<"$branches" ||
    { echo "repo_crash: $b has an acknowledged commit but no head" >&2; exit 1; }
done < "$tmp/acked"
for b in $branches; do
  "$WV" checkout "$repo@$b" -o "$tmp/head.safetensors"
done
# The repository still takes commits after all this.
"$WV" commit "$repo@b0" "$tmp/in/0.safetensors" >/dev/null
if "$WV" verify --help 2>&1 | grep -qi 'repo'; then
  "$WV" verify "$repo"
fi
echo "repo_crash: ok"
