#!/bin/bash
# repo_maint.sh -- wv prune, wv gc and wv verify REPO end to end, and gc
# running again and again while another process commits: every
# acknowledged commit must read back bit-exactly and verify must pass.
set -u
WV=${WV:?} PY=${PYTHON:-python3}
T=$(mktemp -d /tmp/wv-maint-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
expect() { # expect CODE CMD...: run, check the exit status
    local want=$1; shift
    "$@" >"$T/out" 2>"$T/err"; local got=$?
    [ "$got" = "$want" ] || { cat "$T/out" "$T/err"; fail "$* exited $got, not $want"; }
}
# sha256 of every tensor, as wv inspect --json reports them (C order, LE)
shas() { "$WV" inspect --json "$1" | grep -o '"sha256": "[0-9a-f]*"' | sort; }

# m<i>: main's checkpoints. s<i> (for branch scratch) holds the tensor that
# m<i+1> adds, so main's commits deduplicate against chunks that only a
# soon-pruned checkpoint references: what gc must never pull from under them.
"$PY" - "$T" <<'EOF' || fail "numpy needed"
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

R=$T/repo
expect 0 "$WV" init "$R" --chunk-size 16KiB --pack-size 64KiB

# ---- help and usage ----------------------------------------------------------
for c in prune gc verify; do
    expect 0 "$WV" $c --help
    grep -q "usage: wv $c" "$T/out" || fail "$c --help"
done
grep -q "REPO" "$T/out" || fail "verify --help does not mention REPO"
expect 2 "$WV" prune "$R"
grep -q "keep-last" "$T/err" || fail "prune without a rule"
expect 2 "$WV" prune "$R" --keep-best 2
grep -q "metric" "$T/err" || fail "keep-best without metric"
expect 2 "$WV" prune "$R" --keep-last -1
expect 2 "$WV" prune "$R" --keep-last 1 --mode median
expect 2 "$WV" gc "$R" --repack-percent 101
expect 2 "$WV" gc
expect 3 "$WV" gc "$T/nowhere"

# ---- prune selection and gc --------------------------------------------------
for i in 0 1 2 3 4 5; do
    loss=$(echo "0.9 0.3 0.5 0.1 0.7 0.8" | cut -d' ' -f$((i + 1)))
    expect 0 "$WV" commit "$R" "$T/m$i.npz" --meta step=$((i * 100)) \
        --meta val_loss=$loss
    id[$i]=$(cat "$T/out")
done
expect 0 "$WV" commit "$R@exp" "$T/s0.npz"
expect 0 "$WV" verify "$R"
grep -q "^ok: 7 checkpoints" "$T/out" || fail "verify summary: $(cat "$T/out")"
expect 0 "$WV" verify "file://$R"

expect 0 "$WV" prune "$R" --keep-last 2 --keep-best 1 --metric val_loss \
    --branch main --dry-run
grep -q "would remove 3" "$T/out" || fail "dry run summary"
grep -q "^keep   ${id[3]:0:12}.*step 300.*val_loss=0.1.*best 1 of main" \
    "$T/out" || fail "best not kept: $(cat "$T/out")"
grep -q "^remove ${id[0]:0:12}.*step 0" "$T/out" || fail "0 not removed"
expect 0 "$WV" gc "$R" --dry-run
grep -q "would free" "$T/out" || fail "gc dry run"
expect 0 "$WV" prune "$R" --keep-last 2 --keep-best 1 --metric val_loss \
    --branch main
grep -q "removed 3 checkpoints" "$T/out" || fail "prune summary"
expect 0 "$WV" gc "$R"
grep -q "^gc: freed" "$T/out" || fail "gc summary: $(cat "$T/out")"
grep -q "3 of .* packs deleted\|packs deleted" "$T/out" || fail "gc packs"
expect 0 "$WV" verify "$R"
grep -q "^ok: 4 checkpoints" "$T/out" || fail "after gc: $(cat "$T/out")"
for i in 3 4 5; do
    expect 0 "$WV" checkout "$R@${id[$i]}" -o "$T/back.safetensors"
    [ "$(shas "$T/back.safetensors")" = "$(shas "$T/m$i.npz")" ] ||
        fail "checkpoint $i changed by gc"
done
expect 3 "$WV" checkout "$R@${id[0]}" -o "$T/back.safetensors"

# ---- verify names damage -----------------------------------------------------
# A damaged pack and a damaged manifest, each in its own copy: a chunk can
# only be attributed to a checkpoint whose manifest is still readable.
cp -r "$R" "$T/badpack"
p=$(find "$T/badpack/packs" -type f | head -1)
printf '\x00\x01' | dd of="$p" bs=1 seek=200 conv=notrunc status=none
expect 1 "$WV" verify "$T/badpack"
grep -q "^FAILED: [0-9]* problem" "$T/out" || fail "no summary line"
[ "$(tail -1 "$T/out" | cut -c1-7)" = "FAILED:" ] || fail "summary not last"
grep -q "${p#"$T/badpack/"}: chunk [0-9a-f]* is damaged (.*tensor '.*' of checkpoint" \
    "$T/out" || fail "pack chunk not named: $(cat "$T/out")"
cp -r "$R" "$T/bad"
m=$(find "$T/bad/manifests" -type f | head -1)
printf 'X' | dd of="$m" bs=1 seek=20 conv=notrunc status=none
expect 1 "$WV" verify "$T/bad"
grep -q "^FAILED: [0-9]* problem" "$T/out" || fail "no summary line"
grep -q "${m#"$T/bad/"}: checkpoint .* is damaged" "$T/out" ||
    fail "manifest not named: $(cat "$T/out")"
expect 1 "$WV" gc "$T/bad"
grep -q "nothing deleted" "$T/err" || fail "gc on a damaged repository"
# wv verify FILE still verifies files
expect 0 "$WV" verify "$T/m1.npz"
grep -q "^ok: .*npz" "$T/out" || fail "verify FILE"

# ---- gc against concurrent commits ---------------------------------------------
# The committer stores m<i> on main (kept) and s<i> on branch scratch, which
# the other process keeps pruning to its head and collecting. A commit that
# meets gc's lock must exit 5 saying "locked" and is retried; gc and prune
# that meet a commit exit 5 too.
C=$T/conc
expect 0 "$WV" init "$C" --chunk-size 16KiB --pack-size 64KiB
: >"$T/acked"
: >"$T/locked"
(
    for i in $(seq 6 45); do
        for f in m s; do
            br=$([ $f = m ] && echo main || echo scratch)
            for try in $(seq 1 200); do
                "$WV" commit "$C@$br" "$T/$f$i.npz" --meta step=$i \
                    >"$T/c.out" 2>"$T/c.err"
                rc=$?
                if [ $rc = 0 ]; then
                    [ $f = m ] && echo "$(cat "$T/c.out") $i" >>"$T/acked"
                    break
                elif [ $rc = 5 ] && grep -q "locked" "$T/c.err"; then
                    echo "$i" >>"$T/locked"
                else
                    echo "commit $f$i: exit $rc: $(cat "$T/c.err")" \
                        >>"$T/errors"
                    break
                fi
            done
        done
    done
    touch "$T/done"
) &
gcs=0
while [ ! -e "$T/done" ]; do
    "$WV" prune "$C" --keep-last 1 --branch scratch >/dev/null 2>"$T/p.err"
    rc=$?
    [ $rc = 0 ] || [ $rc = 5 ] ||
        echo "prune: exit $rc: $(cat "$T/p.err")" >>"$T/errors"
    "$WV" gc "$C" >/dev/null 2>"$T/g.err"
    rc=$?
    [ $rc = 0 ] && gcs=$((gcs + 1))
    [ $rc = 0 ] || [ $rc = 5 ] ||
        echo "gc: exit $rc: $(cat "$T/g.err")" >>"$T/errors"
done
wait
[ -e "$T/errors" ] && fail "$(cat "$T/errors")"
n=$(wc -l <"$T/acked")
[ "$n" = 40 ] || fail "$n of 40 commits acknowledged"
echo "concurrency: $gcs gc runs completed, $(wc -l <"$T/locked") commits" \
    "met the gc lock and were retried"
expect 0 "$WV" prune "$C" --keep-last 0 --branch scratch
expect 0 "$WV" gc "$C"
expect 0 "$WV" verify "$C"
grep -q "^ok: 41 checkpoints" "$T/out" || fail "verify: $(cat "$T/out")"
while read -r cid i; do
    expect 0 "$WV" checkout "$C@$cid" -o "$T/back.safetensors"
    [ "$(shas "$T/back.safetensors")" = "$(shas "$T/m$i.npz")" ] ||
        fail "acknowledged commit $cid (m$i) does not read back"
done <"$T/acked"
echo "ok"
