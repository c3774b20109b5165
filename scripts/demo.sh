#!/usr/bin/env bash
# The README's main command (make demo): train a small MLP in C with its
# checkpoints in a weightvault repository on local disk, kill it mid-run,
# resume it from @latest, then look at the history, compare the first and
# last checkpoints, and export the final weights to .pth for PyTorch.
# Usage: scripts/demo.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
wv="$build/wv"
train="$build/example_train_mlp"
out=demo-out
repo="$out/ckpts"
rm -rf "$out"
mkdir -p "$out"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
steps=3000 every=250
net=(--hidden 128 --batch 128)

echo "== 1. train (examples/train_mlp.c): weights, Adam moments, step and"
echo "      PRNG state are committed every $every steps in the background"
printf '\n\033[1m$ %s\033[0m\n' \
  "$train $repo --steps $steps --every $every ${net[*]} --async &"
"$train" "$repo" --steps $steps --every $every "${net[@]}" --async &
pid=$!
# Kill it once a few checkpoints are in (or after 3 s at most).
for _ in $(seq 60); do
  sleep 0.05
  n=$( (find "$repo/manifests" -type f 2>/dev/null || true) | wc -l)
  [ "$n" -ge 3 ] && break
done
kill -9 $pid 2>/dev/null && echo "== killed (SIGKILL) with $n checkpoints stored" || true
wait $pid 2>/dev/null || true

echo; echo "== 2. run the same command again: it resumes from @latest"
step "$train" "$repo" --steps $steps --every $every "${net[@]}" --async

echo; echo "== 3. the history (newest first)"
step "$wv" log "$repo" -n 5
first=$("$wv" log "$repo" --json | /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
rows = d if isinstance(d, list) else d.get("checkpoints", d.get("log", []))
print(rows[-1]["id"])' 2>/dev/null || true)

echo; echo "== 4. what changed between the first and the last checkpoint"
if [ -n "$first" ]; then
  step "$wv" diff "$repo" "$first" latest
else
  echo "(could not find the first checkpoint in 'wv log --json')"
fi

echo; echo "== 5. export the final weights to PyTorch's format"
step "$wv" checkout "$repo@latest" -o "$out/final.pth"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  step /usr/bin/python3 -c "
import torch
sd = torch.load('$out/final.pth', weights_only=True)
w1, b1 = sd['model.fc1.weight'], sd['model.fc1.bias']
w2, b2 = sd['model.fc2.weight'], sd['model.fc2.bias']
print({k: (tuple(v.shape), str(v.dtype)) for k, v in sd.items() if k.startswith('model.')})
print('step', int(sd['optim.step']))
h = w1.shape[0]
net = torch.nn.Sequential(torch.nn.Linear(16, h), torch.nn.Tanh(),
                          torch.nn.Linear(h, 1))
net[0].weight.data, net[0].bias.data = w1, b1
net[2].weight.data, net[2].bias.data = w2, b2
print('torch forward of zeros:', net(torch.zeros(1, 16)).item())"
else
  echo "(torch is not installed: skipped reloading)"
fi
echo; echo "demo: done; the repository is $repo, the export $out/final.pth"
