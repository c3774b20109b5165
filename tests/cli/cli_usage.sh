#!/usr/bin/env bash
# cli_usage.sh -- the wv command's help, usage errors, exit statuses and
# error-message shape, and inspect --json's schema.
# Env: WV, WV_FIXTURES, WV_SRC, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# run CMD... : sets rc, out (stdout) and err (stderr)
run() {
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
}
one_line() { [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && [ -n "$err" ]; }

fix=$WV_FIXTURES/safetensors/candle-connect4-dqn-small.safetensors
need_file "$fix" "$WV_FIXTURES"/safetensors/samples/overall.safetensors

# ---- help -------------------------------------------------------------------
run "$WV" --help
[ $rc -eq 0 ] || fail "wv --help exited $rc"
for c in inspect convert verify; do
    case $out in *"$c"*) ;; *) fail "wv --help does not list $c" ;; esac
done
run "$WV" inspect --help
[ $rc -eq 0 ] || fail "wv inspect --help exited $rc"
case $out in *--json*) ;; *) fail "inspect --help lacks --json" ;; esac
run "$WV" convert --help
[ $rc -eq 0 ] || fail "wv convert --help exited $rc"
for o in --dtype --format --compress; do
    case $out in *"$o"*) ;; *) fail "convert --help lacks $o" ;; esac
done
run "$WV" verify --help
[ $rc -eq 0 ] || fail "wv verify --help exited $rc"
case $out in *"usage: wv verify"*) ;; *) fail "verify --help lacks usage" ;; esac
run "$WV" help convert
[ $rc -eq 0 ] || fail "wv help convert exited $rc"
run "$WV" --version
[ $rc -eq 0 ] || fail "wv --version exited $rc"

# ---- usage errors: exit 2, one line "wv ...: ..." ---------------------------
usage_case() {
    run "$WV" "$@"
    [ $rc -eq 2 ] || fail "wv $*: exit $rc, want 2 ($err)"
    one_line || fail "wv $*: stderr not one line: $err"
    case $err in "wv"*": "*) ;; *) fail "wv $*: message shape: $err" ;; esac
    [ -z "$out" ] || fail "wv $*: wrote to stdout: $out"
}
usage_case
usage_case frobnicate
usage_case inspect --bogus "$fix"
usage_case inspect
usage_case inspect "$fix" "$fix"
usage_case convert "$fix"
usage_case convert --dtype F8_E4M3 "$fix" "$tmp/x.safetensors"
usage_case convert --dtype "$fix" 
usage_case convert --format nope "$fix" "$tmp/x.safetensors"
usage_case convert "$fix" "$tmp/x.unknownext"
usage_case convert "$fix" -o
usage_case convert "$fix" "$tmp/x.safetensors" -o "$tmp/y.safetensors"
run "$WV" convert "$fix" -o "$tmp/o.safetensors"
[ $rc -eq 0 ] && cmp -s "$fix" "$tmp/o.safetensors" || fail "convert -o OUT: exit $rc ($err)"
usage_case verify --bogus "$fix"
usage_case verify
[ ! -e "$tmp/x.safetensors" ] || fail "a usage error wrote a file"

# ---- missing file: exit 3, "wv: <file>: ..." --------------------------------
for c in inspect verify; do
    run "$WV" $c "$tmp/nope.safetensors"
    [ $rc -eq 3 ] || fail "$c missing file: exit $rc, want 3"
    one_line || fail "$c missing file: not one line: $err"
    case $err in "wv: $tmp/nope.safetensors: "*) ;;
    *) fail "$c missing file message: $err" ;; esac
done
run "$WV" convert "$tmp/nope.safetensors" "$tmp/o.safetensors"
[ $rc -eq 3 ] || fail "convert missing input: exit $rc, want 3"
case $err in "wv: $tmp/nope.safetensors: "*) ;; *) fail "convert missing: $err" ;; esac
run "$WV" convert "$fix" "$tmp/no/such/dir/o.safetensors"
[ $rc -eq 3 ] || fail "convert into missing dir: exit $rc, want 3 ($err)"
one_line || fail "convert into missing dir: not one line: $err"

# ---- malformed: exit 1, one line "wv: <file>: " ------------------------------
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"a":1}        ' >"$tmp/bad.safetensors"
for c in inspect verify; do
    run "$WV" $c "$tmp/bad.safetensors"
    [ $rc -eq 1 ] || fail "$c malformed: exit $rc, want 1"
    one_line || fail "$c malformed: not one line: $err"
    case $err in "wv: $tmp/bad.safetensors: "*) ;;
    *) fail "$c malformed message: $err" ;; esac
done
printf 'hello world, not weights\n' >"$tmp/junk.bin"
run "$WV" verify "$tmp/junk.bin"
[ $rc -eq 1 ] || fail "verify junk: exit $rc, want 1"
case $err in "wv: $tmp/junk.bin: "*) ;; *) fail "verify junk message: $err" ;; esac
run "$WV" convert "$tmp/bad.safetensors" "$tmp/o2.safetensors"
[ $rc -eq 1 ] || fail "convert malformed: exit $rc, want 1"
[ ! -e "$tmp/o2.safetensors" ] || fail "convert of malformed input wrote output"

# ---- verify ok ----------------------------------------------------------------
for f in "$fix" "$WV_FIXTURES"/safetensors/samples/*.safetensors; do
    run "$WV" verify "$f"
    [ $rc -eq 0 ] || fail "verify $f: exit $rc ($err)"
    case $out in "ok: $f: safetensors, "*) ;; *) fail "verify $f output: $out" ;; esac
    [ -z "$err" ] || fail "verify $f wrote to stderr: $err"
done

# ---- inspect (text and JSON) ---------------------------------------------------
run "$WV" inspect "$fix"
[ $rc -eq 0 ] || fail "inspect exited $rc"
case $out in *"layer_1.weight"*"F32"*"[30, 42]"*) ;; *) fail "inspect text: $out" ;; esac
for f in "$fix" "$WV_FIXTURES"/safetensors/samples/overall.safetensors; do
    run "$WV" inspect --json "$f"
    [ $rc -eq 0 ] || fail "inspect --json $f exited $rc"
    "$PYTHON" - "$tmp/out" <<'PY' || fail "inspect --json $f schema"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) == {"format", "metadata", "tensors"}, sorted(d)
assert d["format"] == "safetensors"
assert isinstance(d["metadata"], dict)
assert all(isinstance(v, str) for v in d["metadata"].values())
for t in d["tensors"]:
    assert set(t) == {"name", "dtype", "shape", "nbytes", "sha256"}, sorted(t)
    assert isinstance(t["shape"], list) and isinstance(t["nbytes"], int)
    assert len(t["sha256"]) == 64 and int(t["sha256"], 16) >= 0
PY
done
# JSON escaping of awkward names and metadata.
"$PYTHON" - "$tmp/awk.safetensors" <<'PY'
import json, struct, sys
h = json.dumps({"__metadata__": {"q\"uote": "line\nbreak\u0001\\"},
                "t\tab/\u00e9": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}},
               separators=(",", ":")).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + b"\x07")
PY
run "$WV" inspect --json "$tmp/awk.safetensors"
[ $rc -eq 0 ] || fail "inspect awkward names: exit $rc ($err)"
"$PYTHON" - "$tmp/out" <<'PY' || fail "inspect --json escaping"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["metadata"] == {"q\"uote": "line\nbreak\u0001\\"}, d["metadata"]
assert d["tensors"][0]["name"] == "t\tab/\u00e9"
PY

# ---- convert round trip through the CLI ----------------------------------------
run "$WV" convert "$fix" "$tmp/copy.safetensors"
[ $rc -eq 0 ] || fail "convert exited $rc ($err)"
cmp -s "$fix" "$tmp/copy.safetensors" || fail "convert did not reproduce the fixture byte for byte"
run "$WV" convert --dtype BF16 "$fix" "$tmp/bf16.safetensors"
[ $rc -eq 0 ] || fail "convert --dtype BF16 exited $rc ($err)"
run "$WV" inspect --json "$tmp/bf16.safetensors"
"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); assert all(t["dtype"]=="BF16" for t in d["tensors"])' "$tmp/out" ||
    fail "convert --dtype BF16 left non-BF16 tensors"
ls -a "$tmp" | grep -q 'wv-tmp' && fail "temporary files left behind"

# ---- --config FILE (convert and commit read it alike): a file that cannot
# be read is one line naming it, even when the set holds a config already
expect 3 "$WV" convert "$fix" "$tmp/c.safetensors" --config "$tmp/nope.json"
one_line_error "nope.json: No such file or directory"
expect 3 "$WV" convert "$fix" "$tmp/c.safetensors" --config "$tmp"
one_line_error "Is a directory"
printf 'a\0b' >"$tmp/bin.json"
expect 1 "$WV" convert "$fix" "$tmp/c.safetensors" --config "$tmp/bin.json"
one_line_error "bin.json: not a text file"
expect 0 "$WV" init "$tmp/cfgrepo"
expect 3 "$WV" commit "$tmp/cfgrepo" "$fix" --config "$tmp/nope.json"
one_line_error "nope.json: No such file or directory"
expect 1 "$WV" commit "$tmp/cfgrepo" "$fix" --config "$tmp/bin.json"
one_line_error "bin.json: not a text file"

finish "cli_usage: all checks passed"
