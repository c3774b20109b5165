#!/usr/bin/env bash
# missing_input.sh -- a test whose input file is missing fails with one line
# naming that file. Every unit test that reads a real fixture (through
# wvtest_fixture) and every CLI script that declares its inputs with
# need_file is run against an empty WV_FIXTURES: each must fail, and its
# whole error output must be the one line naming a file under it.
# Env: WV, WVTEST (the unit test runner), WV_SRC.
set -u
. "$(dirname "$0")/../harness/cli.sh"
: "${WVTEST:?WVTEST must name the unit test runner}"
: "${WV_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/nofix"

# one_missing_line FILE WHAT: FILE (a test's output) is one line naming a
# missing file under $tmp/nofix.
one_missing_line() {
    [ "$(wc -l <"$1")" = 1 ] || { fail "$2: not one line: $(head -c 600 "$1")"; return 0; }
    grep -q "missing input $tmp/nofix/" "$1" ||
        fail "$2: does not name the missing file: $(cat "$1")"
}

# The unit tests that read fixtures: those whose source calls a helper
# built on wvtest_fixture (every t_*.c that names it), of those this build
# has (a build without an optional part leaves its tests out).
built=" $("$WVTEST" --list | tr '\n' ' ') "
n=0
for src in "$WV_SRC"/tests/unit/t_*.c; do
    grep -q 'wvtest_fixture\|SAMPLE_OVERALL\|CANDLE' "$src" || continue
    for t in $(sed -n 's/^TEST_IMPL(\([a-z0-9_]*\)).*/\1/p' "$src"); do
        case $built in *" $t "*) ;; *) continue ;; esac
        # (tests of these files that read no fixture still pass)
        st=0
        WV_FIXTURES=$tmp/nofix timeout 120 "$WVTEST" "$t" >"$tmp/out" 2>"$tmp/err" || st=$?
        [ "$st" = 0 ] || [ "$st" = 77 ] && continue
        n=$((n + 1))
        one_missing_line "$tmp/err" "unit.$t (exit $st)"
    done
done
[ "$n" -ge 20 ] || fail "only $n unit tests noticed their fixtures were missing"

m=0
for s in "$WV_SRC"/tests/cli/*.sh; do
    grep -q '^need_file ' "$s" || continue
    st=0
    WV_FIXTURES=$tmp/nofix timeout 60 bash "$s" >"$tmp/out" 2>&1 || st=$?
    m=$((m + 1))
    [ "$st" = 1 ] || fail "$(basename "$s"): exit $st without its fixtures"
    one_missing_line "$tmp/out" "$(basename "$s")"
done
[ "$m" -ge 8 ] || fail "only $m CLI scripts declare their fixtures"
finish "missing_input: $n unit tests and $m scripts name their missing file"
