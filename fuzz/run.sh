#!/usr/bin/env bash
# Bounded libFuzzer run: fuzz for SECONDS starting from the kept corpus.
# New inputs go to a scratch directory in the build tree (the kept corpus
# only changes by deliberate commits); a crash fails the test and leaves its
# reproducer in WORK/artifacts for adding to the corpus.
set -euo pipefail
bin=$1 corpus=$2 work=$3 secs=${4:-40}
mkdir -p "$work/new" "$work/artifacts"
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "$work/new" "$corpus" 2>"$work/log" || {
    tail -n 40 "$work/log"
    exit 1
}
tail -n 12 "$work/log"
