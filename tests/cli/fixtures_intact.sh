#!/usr/bin/env bash
# fixtures_intact.sh -- every real fixture the tests read is in the clone
# and byte for byte what was copied (tests/fixtures/SHA256SUMS): the first
# missing file fails the test with one line naming it; a changed one is
# named with both digests. The fixtures are third-party files: nothing
# may rewrite them.
# Env: WV, WV_FIXTURES, WV_SRC.
set -u
. "$(dirname "$0")/../harness/cli.sh"
: "${WV_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${WV_FIXTURES:=$WV_SRC/tests/fixtures}"
sums=$WV_SRC/tests/fixtures/SHA256SUMS
need_file "$sums"
n=0
while read -r want rel; do
    case $want in \#*|'') continue ;; esac
    f=$WV_FIXTURES/$rel
    n=$((n + 1))
    need_file "$f"
    got=$(sha256sum <"$f" | cut -d' ' -f1)
    [ "$got" = "$want" ] || fail "$f changed: sha256 $got, copied as $want"
done <"$sums"
[ "$n" -gt 0 ] || fail "$sums lists no file"
finish "fixtures_intact: $n files as copied"
