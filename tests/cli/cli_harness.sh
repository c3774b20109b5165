#!/usr/bin/env bash
# cli_harness.sh -- the shared checks of tests/harness/cli.sh checked
# themselves, under `set -euo pipefail` (the strictest shell a test may
# use): each must pass what is right, count one failure per wrong thing,
# and neither abort the script nor lose a failure on the way.
# Env: WV, PYTHON.
set -euo pipefail
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
finished=
trap 'st=$?; rm -rf "$tmp"
[ -n "$finished" ] || echo "cli_harness: stopped early (exit $st): a helper aborted the script under set -e"' EXIT
[ "$failures" = 0 ] && [ "$fail_fast" = 0 ] ||
    { echo "cli.sh did not start the count at 0"; exit 1; }

# The self-test's own failures are counted apart from the helpers' count.
bad=0
oops() { echo "SELFTEST FAIL: $*"; bad=$((bad + 1)); }
# probe N DESC CMD...: run CMD (a helper call) here, not in a subshell and
# not in a condition (so set -e applies inside it); it must add exactly N
# to $failures. The count is put back afterwards.
probe() {
    local want=$1 desc=$2 before=$failures
    shift 2
    "$@" >"$tmp/probe.log" 2>&1
    local got=$((failures - before))
    failures=$before
    [ "$got" = "$want" ] ||
        oops "$desc: $got failure(s) recorded, wanted $want: $(head -c 600 "$tmp/probe.log")"
}

# ---- fail, finish, fail_fast -------------------------------------------------
probe 1 "fail counts" fail "a message"
grep -q '^FAIL: a message$' "$tmp/probe.log" || oops "fail's message: $(cat "$tmp/probe.log")"
out=$(failures=0; finish "all fine") && [ "$out" = "all fine" ] || oops "finish with no failure: '$out'"
out=$(failures=0; finish) && [ "$out" = ok ] || oops "finish's default message: '$out'"
st=0; out=$(failures=2; finish "all fine") || st=$?
[ "$st" = 1 ] && [ "$out" = "2 failure(s)" ] || oops "finish with failures: exit $st, '$out'"
st=0; out=$(fail_fast=1; fail "stop here"; echo "went on") || st=$?
[ "$st" = 1 ] && [ "$out" = "FAIL: stop here" ] || oops "fail_fast: exit $st, '$out'"

# ---- need_file ---------------------------------------------------------------
: >"$tmp/present"
out=$(need_file "$tmp/present" "$tmp"; echo "went on") && [ "$out" = "went on" ] ||
    oops "need_file of present inputs: '$out'"
st=0; out=$(need_file "$tmp/present" "$tmp/absent" "$tmp/absent2"; echo "went on") || st=$?
[ "$st" = 1 ] && [ "$out" = "FAIL: missing input $tmp/absent" ] ||
    oops "need_file of a missing input: exit $st, '$out'"

# ---- expect ------------------------------------------------------------------
probe 0 "expect 0 of a success" expect 0 sh -c 'echo to-out; echo to-err >&2'
[ "$(cat "$tmp/out")" = to-out ] && [ "$(cat "$tmp/err")" = to-err ] ||
    oops "expect did not keep stdout/stderr in \$tmp/out, \$tmp/err"
probe 1 "expect 0 of a failure" expect 0 sh -c 'echo why >&2; exit 3'
grep -q 'exit 3, wanted 0: sh -c .*why' "$tmp/probe.log" || oops "expect's message: $(cat "$tmp/probe.log")"
probe 0 "expect 3 of exit 3" expect 3 sh -c 'exit 3'
probe 1 "expect 3 of a success" expect 3 true
probe 1 "expect 2 of exit 1" expect 2 false
VAR_IN_FRONT=seen expect 0 sh -c '[ "$VAR_IN_FRONT" = seen ]'
[ "$failures" = 0 ] || { oops "VAR=x expect: the command did not see VAR"; failures=0; }

# ---- one_line_error ------------------------------------------------------------
printf 'wv: some/file: it broke badly\n' >"$tmp/err"
probe 0 "one_line_error of a good message" one_line_error "broke badly"
probe 0 "one_line_error takes a regular expression" one_line_error "it b.*ly$"
probe 1 "one_line_error is case-sensitive" one_line_error "Broke"
probe 1 "one_line_error of a missing pattern" one_line_error "absent"
printf 'wv: a\nwv: b\n' >"$tmp/err"
probe 1 "one_line_error of two lines" one_line_error "wv: a"
printf 'error: not ours\n' >"$tmp/err"
probe 1 "one_line_error of a line not starting wv" one_line_error "not ours"
: >"$tmp/err"
probe 3 "one_line_error of an empty stderr" one_line_error ""
printf 'x\ny\n' >"$tmp/err"
probe 3 "one_line_error: each of the three counts" one_line_error "absent"

# ---- has ---------------------------------------------------------------------------
printf 'first line\n-dash line\n' >"$tmp/out"
probe 0 "has of a present line" has "first line"
probe 0 "has of a pattern starting with -" has "-dash"
probe 1 "has of an absent pattern" has "third"

# ---- pyjson ------------------------------------------------------------------------
printf '{"a": [1, 2], "b": {"c": null}}\n' >"$tmp/out"
probe 0 "pyjson true" pyjson 'd["a"] == [1, 2] and d["b"]["c"] is None'
probe 0 "pyjson has math" pyjson 'math.isclose(sum(d["a"]), 3)'
probe 1 "pyjson false" pyjson 'd["a"] == [2]'
probe 1 "pyjson raising" pyjson 'd["nope"]'
printf 'not json\n' >"$tmp/out"
probe 1 "pyjson of invalid JSON" pyjson 'True'

# ---- make_st, tensor_sums, same_tensors, inspect_json -------------------------------
make_st "$tmp/a.safetensors" 1 0.1
make_st "$tmp/a2.safetensors" 1 0.1
make_st "$tmp/b.safetensors" 2 0.1
cmp -s "$tmp/a.safetensors" "$tmp/a2.safetensors" || oops "make_st: the same arguments gave different bytes"
cmp -s "$tmp/a.safetensors" "$tmp/b.safetensors" && oops "make_st: another seed gave the same bytes"
sums=$(tensor_sums "$tmp/a.safetensors")
[ "$(printf '%s\n' "$sums" | wc -l)" = 5 ] &&
    [ "$(printf '%s\n' "$sums" | head -1 | cut -d' ' -f1-3)" = "bias F32 [7]" ] &&
    printf '%s\n' "$sums" | grep -q '^layer0.weight F32 \[6553\] [0-9a-f]\{64\}$' ||
    oops "tensor_sums: $sums"
st=0; miss=$(tensor_sums "$tmp/missing.safetensors" 2>/dev/null) || st=$?
[ "$st" = 1 ] && [ "$miss" = "unreadable: $tmp/missing.safetensors" ] ||
    oops "tensor_sums of a missing file: exit $st, '$miss'"
[ "$(tensor_sums "$tmp/m1" 2>/dev/null)" = "$(tensor_sums "$tmp/m2" 2>/dev/null)" ] &&
    oops "two unreadable files compare equal"
probe 0 "same_tensors of equal files" same_tensors "$tmp/a.safetensors" "$tmp/a2.safetensors"
"$WV" convert "$tmp/a.safetensors" "$tmp/a.npz"
probe 0 "same_tensors across formats" same_tensors "$tmp/a.safetensors" "$tmp/a.npz"
probe 1 "same_tensors of different files" same_tensors "$tmp/a.safetensors" "$tmp/b.safetensors"
probe 1 "same_tensors with B unreadable" same_tensors "$tmp/a.safetensors" "$tmp/missing"
probe 1 "same_tensors with A unreadable" same_tensors "$tmp/missing" "$tmp/a.safetensors"
probe 1 "same_tensors with both unreadable" same_tensors "$tmp/m1" "$tmp/m2"
printf '\x08\x00\x00\x00\x00\x00\x00\x00{}      ' >"$tmp/empty.safetensors"
probe 1 "same_tensors of two sets without tensors" same_tensors "$tmp/empty.safetensors" "$tmp/empty.safetensors"
probe 0 "inspect_json of a good file" inspect_json "$tmp/a.safetensors" "$tmp/a.json"
"$PYTHON" -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["tensors"]) == 5' "$tmp/a.json" ||
    oops "inspect_json wrote no inspect document"
before=$failures; st=0
inspect_json "$tmp/missing" "$tmp/m.json" 2>/dev/null >/dev/null || st=$?
[ "$st" = 1 ] && [ $((failures - before)) = 1 ] || oops "inspect_json of a missing file: exit $st"
failures=$before

failures=$bad
finished=1
finish "cli_harness: ok"
