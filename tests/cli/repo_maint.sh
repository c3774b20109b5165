#!/bin/bash
# repo_maint.sh -- wv prune, wv gc and wv verify REPO end to end, and gc
# running again and again while another process commits: every
# acknowledged commit must read back bit-exactly and verify must pass.
set -u
. "$(dirname "$0")/../harness/cli.sh"
fail_fast=1 # each step builds on the one before: stop at the first failure
tmp=$(mktemp -d /tmp/wv-maint-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
# sha256 of every tensor, as wv inspect --json reports them (C order, LE)
shas() { "$WV" inspect --json "$1" | grep -o '"sha256": "[0-9a-f]*"' | sort; }

# m<i>: main's checkpoints. s<i> (for branch scratch) holds the tensor that
# m<i+1> adds, so main's commits deduplicate against chunks that only a
# soon-pruned checkpoint references: what gc must never pull from under them.
"$PYTHON" - "$tmp" <<'EOF' || fail "numpy needed"
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(7)
shared = rng.standard_normal(20000).astype(np.float32)
w = [rng.standard_normal(30000).astype(np.float32) for _ in range(61)]
for i in range(60):
    np.savez(f"{d}/m{i}.npz", shared=shared, w=w[i],
             x=np.full(100, i, dtype=np.int64))
    np.savez(f"{d}/s{i}.npz", y=w[i + 1])
EOF

R=$tmp/repo
expect 0 "$WV" init "$R" --chunk-size 16KiB --pack-size 64KiB

# ---- help and usage ----------------------------------------------------------
for c in prune gc verify; do
    expect 0 "$WV" $c --help
    grep -q "usage: wv $c" "$tmp/out" || fail "$c --help"
done
grep -q "REPO" "$tmp/out" || fail "verify --help does not mention REPO"
expect 2 "$WV" prune "$R"
grep -q "keep-last" "$tmp/err" || fail "prune without a rule"
expect 2 "$WV" prune "$R" --keep-best 2
grep -q "metric" "$tmp/err" || fail "keep-best without metric"
expect 2 "$WV" prune "$R" --keep-last -1
expect 2 "$WV" prune "$R" --keep-last 1 --mode median
expect 2 "$WV" gc "$R" --repack-percent 101
expect 2 "$WV" gc
expect 3 "$WV" gc "$tmp/nowhere"

# ---- prune selection and gc --------------------------------------------------
for i in 0 1 2 3 4 5; do
    loss=$(echo "0.9 0.3 0.5 0.1 0.7 0.8" | cut -d' ' -f$((i + 1)))
    expect 0 "$WV" commit "$R" "$tmp/m$i.npz" --meta step=$((i * 100)) \
        --meta val_loss=$loss
    id[$i]=$(cat "$tmp/out")
done
expect 0 "$WV" commit "$R@exp" "$tmp/s0.npz"
expect 0 "$WV" verify "$R"
grep -q "^ok: 7 checkpoints" "$tmp/out" || fail "verify summary: $(cat "$tmp/out")"
expect 0 "$WV" verify "file://$R"

expect 0 "$WV" prune "$R" --keep-last 2 --keep-best 1 --metric val_loss \
    --branch main --dry-run
grep -q "would remove 3" "$tmp/out" || fail "dry run summary"
grep -q "^keep   ${id[3]:0:12}.*step 300.*val_loss=0.1.*best 1 of main" \
    "$tmp/out" || fail "best not kept: $(cat "$tmp/out")"
grep -q "^remove ${id[0]:0:12}.*step 0" "$tmp/out" || fail "0 not removed"
expect 0 "$WV" gc "$R" --dry-run
grep -q "would free" "$tmp/out" || fail "gc dry run"
expect 0 "$WV" prune "$R" --keep-last 2 --keep-best 1 --metric val_loss \
    --branch main
grep -q "removed 3 checkpoints" "$tmp/out" || fail "prune summary"
expect 0 "$WV" gc "$R"
grep -q "^gc: freed" "$tmp/out" || fail "gc summary: $(cat "$tmp/out")"
grep -q "3 of .* packs deleted\|packs deleted" "$tmp/out" || fail "gc packs"
expect 0 "$WV" verify "$R"
grep -q "^ok: 4 checkpoints" "$tmp/out" || fail "after gc: $(cat "$tmp/out")"
for i in 3 4 5; do
    expect 0 "$WV" checkout "$R@${id[$i]}" -o "$tmp/back.safetensors"
    [ "$(shas "$tmp/back.safetensors")" = "$(shas "$tmp/m$i.npz")" ] ||
        fail "checkpoint $i changed by gc"
done
expect 3 "$WV" checkout "$R@${id[0]}" -o "$tmp/back.safetensors"

# ---- verify names damage -----------------------------------------------------
# A damaged pack and a damaged manifest, each in its own copy: a chunk can
# only be attributed to a checkpoint whose manifest is still readable.
cp -r "$R" "$tmp/badpack"
p=$(find "$tmp/badpack/packs" -type f | head -1)
printf '\x00\x01' | dd of="$p" bs=1 seek=200 conv=notrunc status=none
expect 1 "$WV" verify "$tmp/badpack"
grep -q "^FAILED: [0-9]* problem" "$tmp/out" || fail "no summary line"
[ "$(tail -1 "$tmp/out" | cut -c1-7)" = "FAILED:" ] || fail "summary not last"
grep -q "${p#"$tmp/badpack/"}: chunk [0-9a-f]* is damaged (.*tensor '.*' of checkpoint" \
    "$tmp/out" || fail "pack chunk not named: $(cat "$tmp/out")"
cp -r "$R" "$tmp/bad"
m=$(find "$tmp/bad/manifests" -type f | head -1)
printf 'X' | dd of="$m" bs=1 seek=20 conv=notrunc status=none
expect 1 "$WV" verify "$tmp/bad"
grep -q "^FAILED: [0-9]* problem" "$tmp/out" || fail "no summary line"
grep -q "${m#"$tmp/bad/"}: checkpoint .* is damaged" "$tmp/out" ||
    fail "manifest not named: $(cat "$tmp/out")"
expect 1 "$WV" gc "$tmp/bad"
grep -q "nothing deleted" "$tmp/err" || fail "gc on a damaged repository"
# wv verify FILE still verifies files
expect 0 "$WV" verify "$tmp/m1.npz"
grep -q "^ok: .*npz" "$tmp/out" || fail "verify FILE"

# ---- gc against concurrent commits ---------------------------------------------
# The committer stores m<i> on main (kept) and s<i> on branch scratch, which
# the other process keeps pruning to its head and collecting. A commit that
# meets gc's lock must exit 5 saying "locked" and is retried; gc and prune
# that meet a commit exit 5 too.
C=$tmp/conc
expect 0 "$WV" init "$C" --chunk-size 16KiB --pack-size 64KiB
: >"$tmp/acked"
: >"$tmp/locked"
(
    for i in $(seq 6 45); do
        for f in m s; do
            br=$([ $f = m ] && echo main || echo scratch)
            for try in $(seq 1 200); do
                "$WV" commit "$C@$br" "$tmp/$f$i.npz" --meta step=$i \
                    >"$tmp/c.out" 2>"$tmp/c.err"
                rc=$?
                if [ $rc = 0 ]; then
                    [ $f = m ] && echo "$(cat "$tmp/c.out") $i" >>"$tmp/acked"
                    break
                elif [ $rc = 5 ] && grep -q "locked" "$tmp/c.err"; then
                    echo "$i" >>"$tmp/locked"
                else
                    echo "commit $f$i: exit $rc: $(cat "$tmp/c.err")" \
                        >>"$tmp/errors"
                    break
                fi
            done
        done
    done
    touch "$tmp/done"
) &
gcs=0
while [ ! -e "$tmp/done" ]; do
    "$WV" prune "$C" --keep-last 1 --branch scratch >/dev/null 2>"$tmp/p.err"
    rc=$?
    [ $rc = 0 ] || [ $rc = 5 ] ||
        echo "prune: exit $rc: $(cat "$tmp/p.err")" >>"$tmp/errors"
    "$WV" gc "$C" >/dev/null 2>"$tmp/g.err"
    rc=$?
    [ $rc = 0 ] && gcs=$((gcs + 1))
    [ $rc = 0 ] || [ $rc = 5 ] ||
        echo "gc: exit $rc: $(cat "$tmp/g.err")" >>"$tmp/errors"
done
wait
[ -e "$tmp/errors" ] && fail "$(cat "$tmp/errors")"
n=$(wc -l <"$tmp/acked")
[ "$n" = 40 ] || fail "$n of 40 commits acknowledged"
echo "concurrency: $gcs gc runs completed, $(wc -l <"$tmp/locked") commits" \
    "met the gc lock and were retried"
expect 0 "$WV" prune "$C" --keep-last 0 --branch scratch
expect 0 "$WV" gc "$C"
expect 0 "$WV" verify "$C"
grep -q "^ok: 41 checkpoints" "$tmp/out" || fail "verify: $(cat "$tmp/out")"
while read -r cid i; do
    expect 0 "$WV" checkout "$C@$cid" -o "$tmp/back.safetensors"
    [ "$(shas "$tmp/back.safetensors")" = "$(shas "$tmp/m$i.npz")" ] ||
        fail "acknowledged commit $cid (m$i) does not read back"
done <"$tmp/acked"
finish
