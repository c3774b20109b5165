#!/usr/bin/env bash
# mutate_short.sh -- a short, fixed-seed run of scripts/mutate.py (issue
# 14): 80 mutants of the fixtures of every format, each through inspect,
# verify, convert and commit; no crash, no hang, and nothing converts or
# commits with exit 0 that verify refuses. The full run (several thousand
# mutants) is `/usr/bin/python3 scripts/mutate.py --count 3000`.
# Env: WV, WV_FIXTURES (default tests/fixtures), PYTHON.
set -u
WV=${WV:?WV must name the wv binary}
PYTHON=${PYTHON:-/usr/bin/python3}
WV_SRC=$(cd "$(dirname "$0")/../.." && pwd)
WV_FIXTURES=${WV_FIXTURES:-$WV_SRC/tests/fixtures}
exec "$PYTHON" "$WV_SRC/scripts/mutate.py" --wv "$WV" --count 80 \
    --seed 1414 --fixtures "$WV_FIXTURES"
