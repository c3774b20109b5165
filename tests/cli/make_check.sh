#!/usr/bin/env bash
# make_check.sh -- `make check` runs its three halves (release, sanitizers,
# minimal) even when an earlier one fails, and its closing summary names
# the failed tests of each half (or says the half failed before its
# tests), with their wall time; it exits non-zero then. The halves are
# stand-ins here (MAKE is a script that plays check-release, check-asan
# and check-minimal): nothing is built.
# Env: WV, WV_SRC.
set -u
. "$(dirname "$0")/../harness/cli.sh"
: "${WV_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the stand-in: check-release fails two tests, check-asan fails to build,
# check-minimal fails one test (or all pass with PASS=1); every call is
# logged
cat >"$tmp/fakemake" <<SH
#!/bin/sh
for a; do t=\$a; done
echo "\$t" >>"$tmp/calls"
[ -n "\${PASS:-}" ] && exit 0
case \$t in
  check-release)
    mkdir -p "$tmp/b/Testing/Temporary"
    printf '12:unit.gguf_fixture\n301:cli.shard\n' >"$tmp/b/Testing/Temporary/LastTestsFailed.log"
    exit 2 ;;
  check-asan) echo "cc: error: something broke" >&2; exit 2 ;;
  check-minimal)
    mkdir -p "$tmp/m/Testing/Temporary"
    printf '7:cli.build_parts\n' >"$tmp/m/Testing/Temporary/LastTestsFailed.log"
    exit 2 ;;
esac
SH
chmod +x "$tmp/fakemake"
# an old failure log of the sanitizer half must not be reported as this run's
mkdir -p "$tmp/a/Testing/Temporary"
echo "5:unit.stale" >"$tmp/a/Testing/Temporary/LastTestsFailed.log"
touch -d '2 hours ago' "$tmp/a/Testing/Temporary/LastTestsFailed.log"

st=0
make -s -C "$WV_SRC" check MAKE="$tmp/fakemake" BUILD_DIR="$tmp/b" ASAN_DIR="$tmp/a" \
    MIN_DIR="$tmp/m" >"$tmp/out" 2>&1 || st=$?
[ "$st" != 0 ] || fail "make check exit 0 with every half failing"
[ "$(cat "$tmp/calls" 2>/dev/null | tr '\n' ' ')" = "check-release check-asan check-minimal " ] ||
    fail "halves run: $(cat "$tmp/calls" 2>/dev/null)"
has "^release (gcc -Werror): FAILED ([0-9]*m[0-9][0-9]s), 2 test(s):"
has "^  unit.gguf_fixture$"
has "^  cli.shard$"
has "ctest --rerun-failed --output-on-failure"
has "^sanitizers (clang ASan+UBSan): FAILED ([0-9]*m[0-9][0-9]s) before its tests ran"
grep -q "unit.stale" "$tmp/out" && fail "a stale failure log was reported: $(cat "$tmp/out")"
has "^minimal (no s3, rados, hdf5, crypto): FAILED ([0-9]*m[0-9][0-9]s), 1 test(s):"
has "^  cli.build_parts$"
tail -n 2 "$tmp/out" | grep -q "cd $tmp/m && ctest --rerun-failed" ||
    fail "the summary is not at the end: $(tail -n 3 "$tmp/out")"

rm -f "$tmp/calls"
st=0
PASS=1 make -s -C "$WV_SRC" check MAKE="$tmp/fakemake" BUILD_DIR="$tmp/b" ASAN_DIR="$tmp/a" \
    MIN_DIR="$tmp/m" >"$tmp/out" 2>&1 || st=$?
[ "$st" = 0 ] || fail "make check exit $st with every half passing: $(cat "$tmp/out")"
has "^release (gcc -Werror): passed"
has "^sanitizers (clang ASan+UBSan): passed"
has "^minimal (no s3, rados, hdf5, crypto): passed"
finish "make_check: the three halves run, failures summarised last"
