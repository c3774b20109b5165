#!/usr/bin/env bash
# Resume after SIGKILL: examples/train_mlp run to step N without
# interruption, and again killed at random instants and restarted until it
# is done (synchronous commits in one repository, asynchronous in another);
# the final weights, Adam moments, step and PRNG state must be
# bit-identical. Env: WV (the wv binary; the example sits beside it).
set -euo pipefail
ex="$(dirname "$WV")/example_train_mlp"
[ -x "$ex" ] || { echo "repo_resume: no $ex" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
steps=3000 every=100
RANDOM=${WV_TEST_SEED:-4242}

"$ex" "$tmp/ref" --steps $steps --every $every --quiet > "$tmp/ref.log"
"$WV" checkout "$tmp/ref@latest" -o "$tmp/ref.safetensors"

# Run until done, SIGKILLing it after a random delay each time; after a
# few kills let it finish. Prints the number of kills that hit a running
# trainer.
interrupted() {
  local repo=$1; shift
  local kills=0 runs=0
  while :; do
    runs=$((runs + 1))
    [ $runs -lt 40 ] || { echo "repo_resume: no progress in $repo" >&2; return 1; }
    "$ex" "$repo" --steps $steps --every $every "$@" > "$tmp/run.log" 2>&1 &
    local pid=$!
    if [ $kills -lt 6 ]; then
      sleep "0.$(printf '%03d' $((RANDOM % 400 + 20)))"
      if kill -9 $pid 2>/dev/null; then kills=$((kills + 1)); fi
    fi
    if wait $pid; then
      grep -q '^done: ' "$tmp/run.log" && break
    fi
  done
  echo $kills
}

for mode in sync async; do
  flags=(); [ $mode = async ] && flags=(--async)
  k=$(interrupted "$tmp/$mode" "${flags[@]}")
  [ "$k" -ge 1 ] || { echo "repo_resume: $mode: no kill landed" >&2; exit 1; }
  "$WV" checkout "$tmp/$mode@latest" -o "$tmp/$mode.safetensors"
  if ! cmp "$tmp/ref.safetensors" "$tmp/$mode.safetensors"; then
    echo "repo_resume: $mode: final state differs after $k kills" >&2
    exit 1
  fi
  # It really resumed: more than one run wrote checkpoints.
  n=$(find "$tmp/$mode/manifests" -type f | wc -l)
  [ "$n" -ge $((steps / every)) ] || { echo "repo_resume: $mode: only $n checkpoints" >&2; exit 1; }
  echo "repo_resume: $mode: $k kills, $n checkpoints, final state identical"
done
# A finished run restarted does nothing and changes nothing.
"$ex" "$tmp/sync" --steps $steps --every $every | grep -q 'already at step'
"$WV" checkout "$tmp/sync@latest" -o "$tmp/again.safetensors"
cmp "$tmp/ref.safetensors" "$tmp/again.safetensors"
echo "repo_resume: ok"
