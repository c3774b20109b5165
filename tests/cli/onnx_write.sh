#!/usr/bin/env bash
# onnx_write.sh -- ONNX written over a template (wv convert --template,
# weightvault.save(..., template=)) against Debian's python3-onnx
# (tests/peer/peer_onnx_write.py):
#   - every model of libonnx-testdata with initializers that wv reads:
#     to safetensors and back over itself; onnx.checker.check_model passes
#     and every initializer's numpy_helper.to_array equals the tensor
#     written (at least 40; the count and how many came back byte for byte
#     are printed);
#   - models made with onnx.helper: typed fields become raw_data, external
#     data (OUT.data beside OUT), If subgraphs by scoped name, a float16
#     template (--dtype F16), and one refusal per rule (missing and extra
#     tensors, shape, dtype, no template, malformed templates, sparse),
#     each one line, OUT left unwritten.
# onnxruntime runs the written models in tests/cli/onnx_ort.sh.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
need_onnx_peer
wv_pyenv
peer=(wvpy "$root/tests/peer/peer_onnx_write.py")

expect 0 "${peer[@]}" real "$data" "$tmp/real"
cat "$tmp/out"
expect 0 "${peer[@]}" made "$tmp/made"
cat "$tmp/out"

# The same weights over a raw_data template give its bytes back.
conv=$data/pytorch-converted/test_Conv2d/model.onnx
expect 0 "$WV" convert -q "$conv" "$tmp/c.safetensors"
expect 0 "$WV" convert -q "$tmp/c.safetensors" "$tmp/c.onnx" --template "$conv"
cmp -s "$conv" "$tmp/c.onnx" || fail "Conv2d: not the template's bytes"
expect 0 "$WV" verify "$tmp/c.onnx"
# Python: weightvault.save(..., template=)
expect 0 wvpy - "$tmp/c.safetensors" "$conv" "$tmp/p.onnx" <<'PY'
import sys, numpy as np, weightvault as wv
t = wv.load(sys.argv[1])
arrs = {k: np.array(v) * 2 for k, v in t.items()}
wv.save(arrs, sys.argv[3], template=sys.argv[2])
back = wv.load(sys.argv[3])
assert all(np.array_equal(back[k], arrs[k]) for k in arrs)
try:
    wv.save(arrs, sys.argv[3] + ".x.onnx")
    raise SystemExit("saved ONNX without a template")
except wv.WeightvaultError as e:
    assert "template" in str(e), e
print("python: ok")
PY
# no --shard-size for ONNX
expect 1 "$WV" convert -q "$tmp/c.safetensors" "$tmp/s.onnx" --template "$conv" --shard-size 10
one_line_error "written as one file"
finish
