#!/usr/bin/env bash
# tfjs_reject.sh -- the TF.js reader's refusals, one per rule, each with
# its own one-line message, on files made here (no npm needed: the checks
# against tfjs itself are tests/cli/tfjs_interop.sh). Also: a model.json
# is read by its path (its shards beside it), not from memory; the
# writer's refusals: dtypes TF.js does not hold (I64, U8, F64 and BF16
# without --dtype), a Keras model_config that is not valid JSON, nested
# too deep or followed by text (no file written, and the output directory
# the save made removed again). The output directory, made by the
# library's save: OUT/ or an existing directory is OUT/model.json (wv
# convert and wv checkout), one level only, none made for an input that
# cannot be read.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wv_pyenv

b=$tmp/bad
mkdir -p "$b/sub" "$tmp/outside"
printf '\0\0\0\0\0\0\0\0' >"$b/sub/s8.bin"
printf '\0\0\0\0\0\0\0\0' >"$tmp/outside/o.bin"
ln -s ../../outside/o.bin "$b/sub/link.bin"
# bad NAME JSON: write $b/sub/NAME.json
bad() { printf '%s' "$2" >"$b/sub/$1.json"; }
W='"weights": [{"name": "w", "shape": [2], "dtype": "float32"}]'
bad abs "[{\"paths\": [\"$tmp/outside/o.bin\"], $W}]"
expect 1 "$WV" inspect "$b/sub/abs.json"
one_line_error "is absolute"
bad dotdot '[{"paths": ["../../outside/o.bin"], '"$W"'}]'
expect 1 "$WV" inspect "$b/sub/dotdot.json"
one_line_error "leaves the model's directory"
bad link '[{"paths": ["link.bin"], '"$W"'}]'
expect 1 "$WV" inspect "$b/sub/link.json"
one_line_error "resolves outside the model's directory"
bad missing '[{"paths": ["nope.bin"], '"$W"'}]'
expect 3 "$WV" inspect "$b/sub/missing.json"
one_line_error "nope.bin: No such file"
bad short '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [3], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/short.json"
one_line_error "need 12 bytes but its 1 shard(s) hold 8"
bad long '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/long.json"
one_line_error "take 4 bytes but its 1 shard(s) hold 8"
bad cplx '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "complex64"}]}]'
expect 1 "$WV" inspect "$b/sub/cplx.json"
one_line_error "dtype 'complex64'"
bad qdt '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [8], "dtype": "float32", "quantization": {"dtype": "int8", "scale": 1, "min": 0}}]}]'
expect 1 "$WV" inspect "$b/sub/qdt.json"
one_line_error "unknown quantization dtype 'int8'"
bad qnoscale '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [8], "dtype": "float32", "quantization": {"dtype": "uint8", "min": 0}}]}]'
expect 1 "$WV" inspect "$b/sub/qnoscale.json"
one_line_error "without scale and min"
bad qf16int '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [4], "dtype": "int32", "quantization": {"dtype": "float16"}}]}]'
expect 1 "$WV" inspect "$b/sub/qf16int.json"
one_line_error "float16 quantization of a weight of dtype int32"
printf '\0\1\2\0\0\0\0\0' >"$b/sub/b8.bin"
bad boolbyte '[{"paths": ["b8.bin"], "weights": [{"name": "w", "shape": [8], "dtype": "bool"}]}]'
expect 1 "$WV" inspect "$b/sub/boolbyte.json"
one_line_error "bool weight 'w' holds the byte 2"
printf '\7\0\0\0abc\0' >"$b/sub/str.bin"
bad strlen '[{"paths": ["str.bin"], "weights": [{"name": "s", "shape": [], "dtype": "string"}]}]'
expect 1 "$WV" inspect "$b/sub/strlen.json"
one_line_error "an element of 7 bytes passes the end"
bad nopaths '[{"weights": []}]'
expect 1 "$WV" inspect "$b/sub/nopaths.json"
one_line_error 'needs "paths" and "weights"'
bad noshape '[{"paths": ["s8.bin"], "weights": [{"name": "w", "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/noshape.json"
one_line_error "weight 'w' has no shape"
bad nodtype '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [2]}]}]'
expect 1 "$WV" inspect "$b/sub/nodtype.json"
one_line_error "weight 'w' has no dtype"
bad noname '[{"paths": ["s8.bin"], "weights": [{"shape": [2], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/noname.json"
one_line_error "a weight has no name"
bad dims '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [1,1,1,1,1,1,1,1,1], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/dims.json"
one_line_error "more than 8 dimensions"
bad negdim '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [-2], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/negdim.json"
one_line_error "expected a non-negative integer"
bad trunc '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [2], "dtype": "float32"}]'
expect 1 "$WV" inspect "$b/sub/trunc.json"
one_line_error "not valid JSON"
bad emptypath '[{"paths": [""], '"$W"'}]'
expect 1 "$WV" inspect "$b/sub/emptypath.json"
one_line_error "shard path is empty"
bad scale '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [8], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": "x", "min": 0}}]}]'
expect 1 "$WV" inspect "$b/sub/scale.json"
one_line_error "expected a number"
bad twoman '{"weightsManifest": [], "weightsManifest": []}'
expect 1 "$WV" inspect "$b/sub/twoman.json"
one_line_error "two weightsManifest keys"
bad dup '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [1], "dtype": "float32"}, {"name": "w", "shape": [1], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/dup.json"
one_line_error "two weights are named 'w'"
bad big '[{"paths": ["s8.bin"], "weights": [{"name": "w", "shape": [4294967296, 4294967296], "dtype": "float32"}]}]'
expect 1 "$WV" inspect "$b/sub/big.json"
one_line_error "its shape overflows"
# a model.json is read by its path (its shards are beside it), not from
# memory
bad ok '{"format": "graph-model", "weightsManifest": [{"paths": ["s8.bin"], '"$W"'}]}'
expect 0 "$WV" inspect "$b/sub/ok.json"
expect 0 wvpy - "$b/sub/ok.json" <<'PY'
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
assert rc != 0 and b"needs its shard files" in eb.value, (rc, eb.value)
PY
# The writer.
expect 0 "$PYTHON" - "$tmp" <<'PY'
import sys, numpy as np
from stwrite import write_st
d = sys.argv[1]
w = {"d/d/kernel:0": np.ones((2, 2), "<f4")}
write_st(d + "/i64.safetensors", {"n": np.arange(3, dtype="<i8")})
write_st(d + "/u8.safetensors", {"u": np.arange(3, dtype="u1")})
write_st(d + "/f64.safetensors", {"x": np.arange(3, dtype="<f8")})
for name, cfg in [("trunc", '{"class_name": "Sequential", "config": {"layers": [1'),
                  ("deep", "[" * 100 + "]" * 100), ("tail", "{} x")]:
    write_st(d + "/cfg_%s.safetensors" % name, w, meta={"keras.model_config": cfg})
PY
expect 0 "$WV" convert -q "$tmp/f64.safetensors" "$tmp/bf16.safetensors" --dtype BF16
# Refused: nothing is left in $tmp, not even the output directory the
# save made (one level, before it writes): it goes again with the refusal.
before=$(ls -A "$tmp" | LC_ALL=C sort)
expect 1 "$WV" convert -q "$tmp/i64.safetensors" "$tmp/o1/"
one_line_error "tensor 'n' is I64, which TF.js does not hold (float32, int32, bool, float16-quantized float32)"
expect 1 "$WV" convert -q "$tmp/u8.safetensors" "$tmp/o2/"
one_line_error "tensor 'u' is U8, which TF.js does not hold"
expect 1 "$WV" convert -q "$tmp/f64.safetensors" "$tmp/o3/"
one_line_error "tensor 'x' is F64, which TF.js does not hold (float32, int32, bool, float16-quantized float32); convert with --dtype F32"
expect 1 "$WV" convert -q "$tmp/cfg_trunc.safetensors" "$tmp/o4/"
one_line_error "its keras.model_config is not valid JSON"
expect 1 "$WV" convert -q "$tmp/cfg_deep.safetensors" "$tmp/o5/"
one_line_error "nested more than 64 deep"
expect 1 "$WV" convert -q "$tmp/cfg_tail.safetensors" "$tmp/o6/"
one_line_error "its keras.model_config: text after the JSON value"
expect 1 "$WV" convert -q "$tmp/bf16.safetensors" "$tmp/o7/"
one_line_error "tensor 'x' is BF16, which TF.js does not hold (float32, int32, bool, float16-quantized float32); convert with --dtype F32"
after=$(ls -A "$tmp" | LC_ALL=C sort)
[ "$after" = "$before" ] ||
    fail "refused writes left files in $tmp:" \
         "$(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')"
# a directory that existed before a refused save stays, as it was
mkdir "$tmp/kept"
expect 1 "$WV" convert -q "$tmp/i64.safetensors" "$tmp/kept/"
[ -d "$tmp/kept" ] && [ -z "$(ls -A "$tmp/kept")" ] ||
    fail "a refused write into an existing directory changed it"
# as the messages suggest
expect 0 "$WV" convert -q "$tmp/f64.safetensors" "$tmp/o3/" --dtype F32
expect 0 "$WV" convert -q "$tmp/bf16.safetensors" "$tmp/o7/" --dtype F32
[ -s "$tmp/o3/model.json" ] && [ -s "$tmp/o7/model.json" ] ||
    fail "--dtype F32: no model.json"

# The output directory (wv_model_save, not the CLI, resolves it).
# An existing directory, without the '/': OUT/model.json, named as given.
mkdir "$tmp/ex.safetensors"
expect 0 "$WV" convert "$tmp/f64.safetensors" "$tmp/ex.safetensors" --dtype F32
grep -q "^wv: wrote $tmp/ex.safetensors (tfjs): 1 tensor, 12 B in " "$tmp/err" ||
    fail "summary: $(cat "$tmp/err")"
same_tensors "$tmp/o3/model.json" "$tmp/ex.safetensors/model.json"
# one level only; an input that cannot be read makes no directory
expect 3 "$WV" convert -q "$tmp/f64.safetensors" "$tmp/no/such/" --dtype F32
one_line_error "^wv: $tmp/no/such: cannot make the directory: No such file or directory$"
[ ! -e "$tmp/no" ] || fail "made $tmp/no"
expect 3 "$WV" convert -q "$tmp/absent.safetensors" "$tmp/o8/"
[ ! -e "$tmp/o8" ] || fail "a directory made for an input that cannot be read"
# wv checkout -o DIR/
expect 0 "$WV" init "$tmp/r"
expect 0 "$WV" commit -q "$tmp/r" "$tmp/o3/model.json"
expect 0 "$WV" checkout -q "$tmp/r" -o "$tmp/co/"
same_tensors "$tmp/o3/model.json" "$tmp/co/model.json"
finish
