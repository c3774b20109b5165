#!/usr/bin/env bash
# onnx_interop.sh -- the ONNX reader against Debian's python3-onnx and the
# models of libonnx-testdata (/usr/share/libonnx-testdata/data):
#   - every model there with initializers is read with weightvault.load
#     and each initializer compared with onnx.numpy_helper.to_array (name,
#     dtype, shape, bytes bit for bit): at least 50 equal, none different;
#     the counts (read, refused with reasons, equal) are printed;
#   - models made with onnx.helper: every typed field packed and unpacked
#     and raw data for every data type read, external data (also with a
#     checksum), initializers of If subgraphs with their scoped names,
#     float8 bits (onnx 1.12 has no float8: checked by hand),
#     sparse initializers as dense tensors;
#   - inspect, verify, convert to every writable format (tensors equal),
#     commit and checkout, and the metadata;
#   - one malformed model per rejection rule (tests/peer/peer_onnx.py bad):
#     wv verify refuses each with its own one-line message; an external-data
#     model loaded from memory is refused pointing at its path.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
need_onnx_peer
wv_pyenv
peer=(wvpy "$root/tests/peer/peer_onnx.py")

# 1. libonnx-testdata, against numpy_helper.
expect 0 "${peer[@]}" real "$data"
cat "$tmp/out"

# 2. Models made with onnx.helper.
mkdir "$tmp/made"
expect 0 "${peer[@]}" made "$tmp/made"
cat "$tmp/out"

# 3. The CLI: inspect, verify, convert, commit.
conv=$data/pytorch-converted/test_Conv2d/model.onnx
expect 0 "$WV" inspect --json "$conv"
pyjson 'd["format"] == "onnx" and len(d["tensors"]) == 2 and d["metadata"]["onnx.producer_name"] == "pytorch" and d["metadata"]["onnx.opset_import"] == "[{\"domain\": \"\", \"version\": 6}]" and json.loads(d["metadata"]["onnx.inputs"])[0] == "0"'
for p in "$conv" "$tmp/made/typed.onnx" "$tmp/made/ext/model.onnx" \
         "$tmp/made/ext/sum.onnx" "$tmp/made/float8.onnx" \
         "$tmp/made/subgraph.onnx" "$tmp/made/sparse.onnx"; do
    expect 0 "$WV" verify "$p"
    has "^ok: .*onnx"
done
expect 0 "$WV" inspect "$tmp/made/subgraph.onnx"
has "cond/then_branch/inner/then_branch/deep  *F32"
has "If\[1\]/else_branch/w"
for ext in safetensors npz pth gguf params h5; do
    expect 0 "$WV" convert "$conv" "$tmp/conv.$ext"
    same_tensors "$conv" "$tmp/conv.$ext"
done
expect 0 "$WV" convert "$tmp/made/ext/model.onnx" "$tmp/ext.safetensors"
same_tensors "$tmp/made/ext/model.onnx" "$tmp/ext.safetensors"
expect 0 "$WV" inspect --json "$tmp/ext.safetensors"
pyjson 'd["metadata"]["onnx.producer_name"] == "peer_onnx"'
expect 0 "$WV" init "$tmp/repo"
expect 0 "$WV" commit "$tmp/repo" "$tmp/made/typed.onnx"
expect 0 "$WV" checkout "$tmp/repo" -o "$tmp/typed.safetensors"
same_tensors "$tmp/made/typed.onnx" "$tmp/typed.safetensors"
# written only over a template (tests/cli/onnx_write.sh): without one,
# refused in one line
expect 2 "$WV" convert "$conv" "$tmp/out.onnx"
one_line_error "ONNX needs a template model"

# 4. Malformed models: each refused by its own rule.
mkdir "$tmp/bad"
"${peer[@]}" bad "$tmp/bad" >"$tmp/bad.list" || fail "cannot write the malformed models"
n=0
while IFS=$'\t' read -r f status pattern; do
    n=$((n + 1))
    expect "$status" "$WV" verify "$f"
    one_line_error "$pattern"
done <"$tmp/bad.list"
[ "$n" -ge 40 ] || fail "only $n malformed models"
echo "malformed models refused: $n"
# external data from memory: refused, naming the way out
expect 0 wvpy - "$tmp/made/ext/model.onnx" <<'PY'
import ctypes, sys
from weightvault import _lib
data = open(sys.argv[1], "rb").read()
buf = ctypes.create_string_buffer(data, len(data))
eb = ctypes.create_string_buffer(_lib.ERRBUF_SIZE)
opts = _lib.init_struct(_lib.LoadOpts, errbuf=ctypes.addressof(eb),
                        errbuf_size=_lib.ERRBUF_SIZE)
out = ctypes.c_void_p()
rc = _lib.lib().wv_model_load_mem(buf, len(data), ctypes.byref(opts),
                                  ctypes.byref(out))
assert rc != 0 and b"load the .onnx file by its path" in eb.value, eb.value
PY
finish
