# cli.sh -- helpers shared by the CLI scenario tests (tests/cli/*.sh).
#
# Source it from a test script with
#     . "$(dirname "$0")/../harness/cli.sh"
# (tests/harness/remote.sh sources it too), before the first check. It
# defines functions, sets failures and fail_fast to 0 and PYTHON if unset,
# stops the script if WV is unset, sets no shell options and runs nothing
# else, so it may be sourced under `set -u` or `set -euo pipefail` alike;
# every helper works under both (tests/cli/cli_harness.sh checks that).
#
# Conventions
#   failures   the number of failed checks so far (set to 0 here). A check
#              that fails calls `fail`, which prints "FAIL: ..." and counts;
#              the script goes on and ends with `finish`, which exits 1 if
#              anything failed.
#   fail_fast  set it to 1 (after sourcing) for scripts whose later steps
#              make no sense once one check failed: `fail` then exits 1 at
#              once.
#   tmp        the script's private scratch directory. The script creates
#              it (and removes it in its own EXIT trap) before calling
#              expect, has, one_line_error or pyjson: `expect` keeps the
#              command's stdout and stderr in $tmp/out and $tmp/err, the
#              others look there.
#   WV         the wv binary, PYTHON an interpreter with numpy (ctest
#              passes both; PYTHON defaults to Debian's /usr/bin/python3).
#
# A note on subshells: `fail` counts in the shell it runs in, so a failure
# recorded inside $(...) or a pipeline's loop is lost. The helpers below
# that are meant to be used inside $(...) (tensor_sums) therefore do not
# call fail; they make the failure visible in what they print instead.

: "${WV:?WV must name the wv binary}"
: "${PYTHON:=/usr/bin/python3}"
# stwrite.py (write_st: safetensors files from NumPy arrays) for the
# scripts' inline Python
PYTHONPATH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)${PYTHONPATH:+:$PYTHONPATH}
export PYTHONPATH
failures=0
fail_fast=0

# need_file PATH...: the inputs the script reads (fixtures, data files,
# tools' directories). When one cannot be read, prints the one line
# "FAIL: missing input PATH" and exits 1: no later check means anything
# without it.
need_file() {
    local f
    for f in "$@"; do
        if [ ! -r "$f" ]; then
            echo "FAIL: missing input $f"
            exit 1
        fi
    done
}

# fail MESSAGE...: record one failed check.
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
    if [ "${fail_fast:-0}" = 1 ]; then
        exit 1
    fi
}

# finish [MESSAGE]: the script's last line. Exits 1 with the count if any
# check failed, else prints MESSAGE (default "ok") and exits 0.
finish() {
    if [ "$failures" -ne 0 ]; then
        echo "$failures failure(s)"
        exit 1
    fi
    echo "${1:-ok}"
    exit 0
}

# expect STATUS CMD...: run CMD with stdout in $tmp/out and stderr in
# $tmp/err; a failed check unless it exits with STATUS. Environment
# assignments in front (VAR=x expect ...) reach CMD.
expect() {
    local want=$1 got=0
    shift
    "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
    if [ "$got" != "$want" ]; then
        local extra=""
        [ -s "$tmp/out" ] && extra="; stdout: $(head -c 600 "$tmp/out")"
        fail "exit $got, wanted $want: $* (stderr: $(head -c 1000 "$tmp/err")$extra)"
    fi
    return 0
}

# one_line_error PATTERN: the last command's stderr ($tmp/err) is exactly
# one line, starts with "wv" and contains PATTERN (a grep basic regular
# expression, case-sensitive). Each of the three is its own check.
one_line_error() {
    [ "$(wc -l <"$tmp/err")" = 1 ] || fail "stderr not one line: $(cat "$tmp/err")"
    grep -q '^wv' "$tmp/err" || fail "stderr does not start with wv: $(cat "$tmp/err")"
    grep -q -- "$1" "$tmp/err" || fail "stderr lacks '$1': $(cat "$tmp/err")"
}

# has PATTERN: the last command's stdout ($tmp/out) contains PATTERN (a grep
# basic regular expression).
has() {
    grep -q -- "$1" "$tmp/out" || fail "output lacks '$1': $(head -c 600 "$tmp/out")"
}

# pyjson EXPR: the last command's stdout ($tmp/out) is JSON and the Python
# expression EXPR, evaluated with d = that JSON (json, math and sys
# imported), is true. Invalid JSON or an exception in EXPR fails too.
pyjson() {
    "$PYTHON" - "$tmp/out" "$1" <<'PY' || fail "json check failed: $1"
import json, math, sys
d = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
if not ok:
    print("json check false:", sys.argv[2], file=sys.stderr)
    print(json.dumps(d)[:800], file=sys.stderr)
sys.exit(0 if ok else 1)
PY
}

# tensor_sums FILE: "name dtype shape sha256" of every tensor FILE holds (as
# `wv inspect --json` reports them), one line each, sorted by name; FILE
# is anything wv inspect accepts (a path, s3://, http://, REPO@REF...).
# For comparisons: [ "$(tensor_sums A)" = "$(tensor_sums B)" ].
# When wv or the parse fails it prints "unreadable: FILE" as well (so two
# unreadable files never compare equal, and neither equals a readable
# one), says so on stderr and returns 1.
tensor_sums() {
    local json
    if json=$("$WV" inspect --json "$1") &&
        printf '%s\n' "$json" | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
for t in sorted(d["tensors"], key=lambda t: t["name"]):
    print(t["name"], t["dtype"], t["shape"], t["sha256"])'; then
        return 0
    fi
    echo "tensor_sums: cannot read the tensors of $1" >&2
    echo "unreadable: $1"
    return 1
}

# same_tensors A B: A and B hold the same tensors (names, dtypes, shapes
# and sha256 of the data), and A holds at least one.
same_tensors() {
    local a b
    a=$(tensor_sums "$1") || { fail "cannot read the tensors of $1"; return 0; }
    b=$(tensor_sums "$2") || { fail "cannot read the tensors of $2"; return 0; }
    [ -n "$a" ] || { fail "$1 holds no tensors"; return 0; }
    [ "$a" = "$b" ] || fail "$1 and $2 hold different tensors"
}

# inspect_json FILE OUT: `wv inspect --json FILE` into OUT; a failed check
# (and status 1, for `if ! inspect_json ...`) when wv refuses FILE.
inspect_json() {
    "$WV" inspect --json "$1" >"$2" || { fail "wv cannot read $1"; return 1; }
}

# make_st FILE SEED [MB]: write a safetensors file of MB MiB (default 2; may
# be fractional): 4 random F32 tensors "layer0.weight".."layer3.weight" of
# MB * 2^16 floats each (at least 1) and "bias" (7 floats), from numpy's
# generator seeded with SEED: the same arguments give the same bytes.
# Exits the script (status 1) when the file cannot be written.
make_st() {
    "$PYTHON" - "$1" "$2" "${3:-2}" <<'PY' || { echo "FAIL: cannot generate $1"; exit 1; }
import sys
import numpy as np
from stwrite import write_st
path, seed, mb = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rng = np.random.default_rng(seed)
n = max(1, int(mb * 1024 * 1024 / 4 / 4))
ts = {f"layer{i}.weight": rng.standard_normal(n).astype("<f4") for i in range(4)}
ts["bias"] = np.arange(7, dtype="<f4") + seed
write_st(path, {k: ts[k] for k in sorted(ts)})
PY
}

# wv_pyenv: set the array pyenv to the `env ...` prefix that runs $PYTHON
# with this build's Python package and library (WEIGHTVAULT_LIB = the
# libweightvault.so beside $WV, PYTHONPATH = the tree's python/ first); for
# a sanitizer build (the library imports __asan_init) the ASan runtime is
# preloaded into the uninstrumented interpreter, with leak detection off
# and any report aborting, as tests/cli/python.sh does. Also sets lib (the
# library's path) and root (the source tree).
wv_pyenv() {
    local rt
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    lib=$(cd "$(dirname "$WV")" && pwd)/libweightvault.so
    pyenv=(env WEIGHTVAULT_LIB="$lib"
           PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}")
    if nm -D --undefined-only "$lib" 2>/dev/null | grep -q ' __asan_init'; then
        rt=$(ldd "$lib" | awk '/libasan\.so/ {print $3; exit}')
        [ -n "$rt" ] || rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
        pyenv+=(LD_PRELOAD="$rt" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
    fi
}

# wvpy ARGS...: $PYTHON ARGS... under "${pyenv[@]}" (call wv_pyenv first).
wvpy() {
    "${pyenv[@]}" "$PYTHON" "$@"
}

# need_onnx_peer: the inputs of the ONNX peers (tests/peer/peer_onnx*.py):
# Debian's libonnx-testdata (sets data to its directory) and python3-onnx.
# Missing, prints "FAIL: missing input ..." and exits 1. (A system package,
# not a fixture under WV_FIXTURES: checked here with need_file's message,
# so cli.missing_input does not expect it gone.)
need_onnx_peer() {
    data=/usr/share/libonnx-testdata/data
    [ -r "$data/pytorch-converted/test_Conv2d/model.onnx" ] ||
        { echo "FAIL: missing input $data (libonnx-testdata, scripts/deps.sh check)"; exit 1; }
    "$PYTHON" -c 'import onnx' 2>/dev/null ||
        { echo "FAIL: missing input python3-onnx (scripts/deps.sh check)"; exit 1; }
}
