#!/usr/bin/env bash
# python.sh -- the Python package's test suite (tests/python, pytest) against
# the libweightvault.so of this build, with Debian's /usr/bin/python3 (torch
# 1.13, numpy 1.24, python3-pytest).
#
# The library is the one next to $WV. In a sanitizer build it needs the ASan
# runtime loaded before anything else in the (uninstrumented) Python host:
# clang's libclang_rt.asan (or gcc's libasan) is put in LD_PRELOAD, leak
# detection is off (CPython's own allocations at exit are not leaks of
# ours), and any ASan/UBSan report aborts the test. Exit status is pytest's;
# "no tests collected" (5) counts as a failure.
#
# Arguments: what pytest runs (default: tests/python but
# test_distributed.py, which tests/cli/python_dist.sh runs as its own
# ctest entry: four-writer runs on local disk, S3 and RADOS).
#
# Env: WV (the wv binary; required), PYTHON (default /usr/bin/python3).
set -u
WV=${WV:?WV must name the wv binary}
PYTHON=${PYTHON:-/usr/bin/python3}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
lib=$(cd "$(dirname "$WV")" && pwd)/libweightvault.so
[ -f "$lib" ] || { echo "python.sh: $lib not found" >&2; exit 1; }
"$PYTHON" -c 'import pytest, numpy, torch' ||
    { echo "python.sh: $PYTHON lacks pytest/numpy/torch (scripts/deps.sh check)" >&2; exit 1; }

if nm -D --undefined-only "$lib" 2>/dev/null | grep -q ' __asan_init'; then
    rt=$(ldd "$lib" | awk '/libasan\.so/ {print $3; exit}')
    if [ -z "$rt" ]; then
        rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null)
    fi
    [ -f "$rt" ] || { echo "python.sh: ASan build but no ASan runtime found" >&2; exit 1; }
    export LD_PRELOAD=$rt${LD_PRELOAD:+:$LD_PRELOAD}
    export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:abort_on_error=1
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    echo "python.sh: sanitizer build; LD_PRELOAD=$rt"
fi

export WEIGHTVAULT_LIB=$lib PYTHONDONTWRITEBYTECODE=1
cd "$root" || exit 1
if [ "$#" -eq 0 ]; then
    set -- tests/python --ignore=tests/python/test_distributed.py
fi
"$PYTHON" -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "python.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
