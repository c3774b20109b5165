#!/usr/bin/env bash
# check-summary.sh STAMP NAME:STATUS:SECONDS:BUILDDIR... -- the closing
# lines of `make check`: for each half, passed or FAILED with its wall
# time; for a failed half, the tests that failed (from ctest's
# LastTestsFailed.log, when written after STAMP) and how to rerun them, or
# that it failed before its tests ran (the build's error is above). Exits 1
# if any half failed.
set -u
stamp=$1
shift
bad=0
echo "==== make check summary"
for half in "$@"; do
    IFS=: read -r name st secs dir <<<"$half"
    t=$(printf '%dm%02ds' $((secs / 60)) $((secs % 60)))
    if [ "$st" = 0 ]; then
        echo "$name: passed ($t)"
        continue
    fi
    bad=1
    log=$dir/Testing/Temporary/LastTestsFailed.log
    if [ -f "$log" ] && [ "$log" -nt "$stamp" ]; then
        echo "$name: FAILED ($t), $(wc -l <"$log") test(s):"
        sed 's/^[0-9]*:/  /' "$log"
        echo "  (their output is above; again: cd $dir && ctest --rerun-failed --output-on-failure)"
    else
        echo "$name: FAILED ($t) before its tests ran: see the first error of the $dir build above"
    fi
done
exit $bad
