#!/usr/bin/env bash
# The README's first command ends here: a short tour of the main job on
# local files. Usage: scripts/demo.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
wv="$build/wv"
out=demo-out
rm -rf "$out"
mkdir -p "$out"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

echo "== 1. save a model from C (examples/save_load.c), reload it zero-copy"
step "$build/example_save_load" "$out/mlp.safetensors"

echo; echo "== 2. look inside"
step "$wv" inspect "$out/mlp.safetensors"

echo; echo "== 3. convert: to NumPy's npz, and to bfloat16 safetensors"
step "$wv" convert "$out/mlp.safetensors" "$out/mlp.npz"
step "$wv" convert "$out/mlp.safetensors" "$out/mlp-bf16.safetensors" --dtype BF16
step "$wv" inspect "$out/mlp-bf16.safetensors"

echo; echo "== 4. verify every byte; a damaged file is refused with one clear line"
step "$wv" verify "$out/mlp.npz"
cp "$out/mlp.safetensors" "$out/damaged.safetensors"
truncate -s -100 "$out/damaged.safetensors"
printf '\n$ %s\n' "$wv verify $out/damaged.safetensors"
if "$wv" verify "$out/damaged.safetensors"; then
  echo "demo: a truncated file verified: this is a bug" >&2; exit 1
else
  echo "(exit status $?)"
fi

if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  echo; echo "== 5. NumPy reads what wv wrote"
  step /usr/bin/python3 -c "
import numpy as np
z = np.load('$out/mlp.npz')
print({k: (z[k].dtype.str, z[k].shape) for k in z.files})"
fi
echo; echo "demo: done; files are in $out/"
