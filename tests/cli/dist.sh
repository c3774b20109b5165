#!/usr/bin/env bash
# dist.sh -- multi-writer checkpoints (issue 16) under SIGKILL: 50 rounds,
# each 4 writer processes (tests/cli/dist_writer.c) committing parts of one
# checkpoint, one of them killed at a random moment. After every round
# @latest is a whole checkpoint (every tensor equal to the globals of the
# seed it records, read whole and as 3 readers' regions), never a partial
# one; a transaction whose parts are all there but nobody finished is
# finished with 'wv finish'. At the end every checkpoint verifies, 'wv log
# --pending' lists the orphans, 'wv finish' refuses a transaction with a
# part missing (naming the writer) and 'wv gc --pending-timeout 0'
# removes them; 'wv show' reports writers and shards.
# Env: WV, WV_DIST_WRITER.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
DW=${WV_DIST_WRITER:?}
R="$tmp/repo"

"$WV" init "$R" --chunk-size 4096 >/dev/null || { echo "FAIL: init"; exit 1; }
"$DW" write "$R" first 0 1 7 >/dev/null || fail "a one-writer checkpoint"

# How long a round takes unkilled, to spread the kills over it.
t0=$(date +%s%N)
for w in 0 1 2 3; do
    "$DW" write "$R" timing "$w" 4 999 >/dev/null &
done
wait
span_ms=$((($(date +%s%N) - t0) / 1000000 * 3 / 2 + 1))

rounds=50 finished=0 orphaned=0 explicit=0
prev=$("$WV" log "$R" --json -n 1 | grep -o '"id": "[0-9a-f]*"' | head -1)
for i in $(seq 1 $rounds); do
    victim=$((RANDOM % 4))
    delay_ms=$((RANDOM % span_ms))
    pids=()
    for w in 0 1 2 3; do
        "$DW" write "$R" "round-$i" "$w" 4 "$((1000 + i))" \
            >"$tmp/out.$w" 2>"$tmp/err.$w" &
        pids+=($!)
    done
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -KILL "${pids[$victim]}" 2>/dev/null
    for w in 0 1 2 3; do
        wait "${pids[$w]}" 2>/dev/null
        st=$?
        if [ "$w" != "$victim" ] && [ "$st" != 0 ] && [ "$st" != 10 ]; then
            fail "round $i: writer $w exited $st: $(cat "$tmp/err.$w")"
        fi
    done
    # all four parts there but the last one killed before finishing
    if "$WV" log "$R" --pending --json | grep -q "\"round-$i\", \"parts\": 4"; then
        "$WV" finish "$R" "round-$i" --writers 4 >/dev/null ||
            fail "round $i: wv finish of a complete transaction"
        explicit=$((explicit + 1))
    fi
    "$DW" check "$R" 3 || fail "round $i: @latest is not a whole checkpoint"
    now=$("$WV" log "$R" --json -n 1 | grep -o '"id": "[0-9a-f]*"' | head -1)
    if [ "$now" != "$prev" ]; then
        finished=$((finished + 1))
    else
        orphaned=$((orphaned + 1))
    fi
    prev=$now
done
echo "rounds: $rounds (kills within ${span_ms} ms), finished: $finished (by 'wv finish': $explicit), left unfinished: $orphaned"
[ "$finished" -gt 0 ] || fail "no round finished"

# one more transaction with a writer that never runs: always an orphan
for w in 0 1 2; do
    "$DW" write "$R" orphan "$w" 4 5 >/dev/null
    [ $? = 10 ] || fail "a part of an incomplete transaction: not exit 10"
done
expect 4 "$WV" finish "$R" orphan --writers 4
one_line_error "writer 3 is missing"
expect 0 "$WV" log "$R" --pending
grep -q "orphan  *3 of 4 parts" "$tmp/out" ||
    fail "wv log --pending does not list the orphan: $(cat "$tmp/out")"

expect 0 "$WV" verify "$R"
expect 0 "$WV" show "$R"
grep -q "writers  shards" "$tmp/out" || fail "wv show: no writers/shards columns"
grep -Eq "^emb\.weight .* 0-3 +4" "$tmp/out" || fail "wv show: emb.weight is not 4 shards of writers 0-3: $(cat "$tmp/out")"
grep -q "unfinished multi-writer checkpoints" "$tmp/out" || fail "wv show: the orphans are not listed"
expect 0 "$WV" show "$R" --json
grep -q '"shards": \[{"writer": 0, "offset": \[0, 0\], "shape": \[128, 64\]}' "$tmp/out" ||
    fail "wv show --json: no shards"
# every writer in --json, past 64 of them (the replicated proj.bias)
"$WV" init "$tmp/wide" --chunk-size 4096 >/dev/null || fail "init wide"
for w in $(seq 0 64); do
    "$DW" write "$tmp/wide" wide "$w" 65 3 >/dev/null
    st=$?
    [ "$st" = 10 ] || { [ "$w" = 64 ] && [ "$st" = 0 ]; } ||
        fail "wide: writer $w exited $st"
done
expect 0 "$WV" show "$tmp/wide" --json
grep -q '"name": "proj.bias", [^}]*"writers": \[0, 1, 2, [0-9, ]*, 63, 64\]' "$tmp/out" ||
    fail "wv show --json: proj.bias does not list its 65 writers"

# gc: the orphans' parts go (and their data); everything finished stays
sleep 1.1
expect 0 "$WV" gc "$R" --pending-timeout 0
grep -q "unfinished multi-writer checkpoint.* removed" "$tmp/out" ||
    fail "gc did not report the orphans removed: $(cat "$tmp/out")"
expect 0 "$WV" log "$R" --pending
grep -q "no unfinished" "$tmp/out" || fail "orphans left after gc: $(cat "$tmp/out")"
# (temporary files of the killed writers stay for gc --tmp-age)
left=$(find "$R/parts" -type f -regex '.*/[0-9]+' 2>/dev/null)
[ -z "$left" ] || fail "part records left after gc: $left"
expect 0 "$WV" verify "$R"
"$DW" check "$R" 8 || fail "@latest after gc"
expect 0 "$WV" checkout "$R" -o "$tmp/latest.safetensors"
finish
