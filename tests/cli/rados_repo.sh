#!/usr/bin/env bash
# rados_repo.sh -- a checkpoint repository in a RADOS pool, end to end with
# the wv command: init rados://POOL/r1, two commits of a generated
# safetensors file, log, checkout and compare, verify, prune and gc, two
# commits racing on one branch, and the one-line errors for a missing pool
# and an unknown client. WV_RADOS_STRIPE=1M makes every pack a striped
# object; the raw pool listing must then hold no piece without its head.
# Needs a Ceph cluster (CEPH_CONF; ctest gives the fixture's): exit 77
# (skipped) without one. The pool is unique to the run and removed at exit.
# Env: WV, PYTHON, CEPH_CONF.
set -u
if [ -z "${CEPH_CONF:-}" ]; then
    echo "SKIP: CEPH_CONF is unset (no Ceph cluster)"
    exit 77
fi
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
pool="wvt-rados-cli-$$-$RANDOM"
R="rados://$pool/r1"
cleanup() {
    ceph -c "$CEPH_CONF" osd pool rm "$pool" "$pool" \
        --yes-i-really-really-mean-it >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT
export WV_RADOS_STRIPE=1M
# no_orphans: every "X.NNNNNN" object in the pool has its head X
no_orphans() {
    rados -c "$CEPH_CONF" -p "$pool" ls >"$tmp/raw" 2>/dev/null ||
        { fail "rados ls failed"; return; }
    "$PYTHON" - "$tmp/raw" <<'PY' || fail "orphan pieces in the pool: $(head -c 400 "$tmp/raw")"
import re, sys
names = set(open(sys.argv[1]).read().split())
bad = [n for n in names
       if re.search(r"\.\d{6}$", n) and n[:-7] not in names]
sys.exit(1 if bad else 0)
PY
}

# 4 tensors of 750000 random F32 each (make_st's size in MiB is 2^-16 of
# the floats per tensor): 11.4 MiB
mb=11.444091796875
make_st "$tmp/a.safetensors" 1 $mb
make_st "$tmp/b.safetensors" 2 $mb
make_st "$tmp/c.safetensors" 3 $mb
make_st "$tmp/d.safetensors" 4 $mb

expect 0 "$WV" init "$R"
expect 0 "$WV" commit "$R" "$tmp/a.safetensors" --meta step=1
id1=$(tr -d '\n' <"$tmp/out")
expect 0 "$WV" commit "$R" "$tmp/b.safetensors" --meta step=2
id2=$(tr -d '\n' <"$tmp/out")
[ ${#id1} = 64 ] && [ ${#id2} = 64 ] && [ "$id1" != "$id2" ] ||
    fail "commit ids: '$id1' '$id2'"

# The packs are striped (1 MiB pieces): the raw pool has pieces.
rados -c "$CEPH_CONF" -p "$pool" ls 2>/dev/null | grep -q '^r1/packs/.*\.000001$' ||
    fail "no striped pack in the pool"
no_orphans

expect 0 "$WV" log "$R"
grep -q "$id1" "$tmp/out" && grep -q "$id2" "$tmp/out" ||
    fail "log lacks a checkpoint: $(cat "$tmp/out")"
expect 0 "$WV" log "$R" --json
"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if len(d)==2 else 1)' \
    "$tmp/out" 2>/dev/null || fail "log --json does not list 2 checkpoints: $(head -c 300 "$tmp/out")"

expect 0 "$WV" checkout "$R" -o "$tmp/x.safetensors"
same_tensors "$tmp/b.safetensors" "$tmp/x.safetensors"
expect 0 "$WV" checkout "$R@$id1" -o "$tmp/x1.safetensors"
same_tensors "$tmp/a.safetensors" "$tmp/x1.safetensors"
expect 0 "$WV" verify "$R"

# Two commits racing on main: both land (the ref's compare-and-swap makes
# the loser rebase), one on top of the other.
"$WV" commit "$R" "$tmp/c.safetensors" >"$tmp/c.out" 2>"$tmp/c.err" &
pc=$!
"$WV" commit "$R" "$tmp/d.safetensors" >"$tmp/d.out" 2>"$tmp/d.err" &
pd=$!
wait $pc || fail "racing commit c: $(cat "$tmp/c.err")"
wait $pd || fail "racing commit d: $(cat "$tmp/d.err")"
expect 0 "$WV" log "$R" --json
"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if len(d)==4 else 1)' \
    "$tmp/out" 2>/dev/null || fail "log after the race does not list 4 checkpoints"
expect 0 "$WV" checkout "$R@$(tr -d '\n' <"$tmp/c.out")" -o "$tmp/xc.safetensors"
same_tensors "$tmp/c.safetensors" "$tmp/xc.safetensors"
expect 0 "$WV" checkout "$R@$(tr -d '\n' <"$tmp/d.out")" -o "$tmp/xd.safetensors"
same_tensors "$tmp/d.safetensors" "$tmp/xd.safetensors"

# Retention: keep the newest only, then free the rest.
expect 0 "$WV" prune "$R" --keep-last 1
expect 0 "$WV" gc "$R"
expect 0 "$WV" verify "$R"
expect 0 "$WV" log "$R" --json
"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if len(d)==1 else 1)' \
    "$tmp/out" 2>/dev/null || fail "log after prune does not list 1 checkpoint"
expect 0 "$WV" checkout "$R" -o "$tmp/y.safetensors"
head_file=$tmp/d.safetensors
[ "$(tensor_sums "$tmp/y.safetensors")" = "$(tensor_sums "$tmp/c.safetensors")" ] &&
    head_file=$tmp/c.safetensors
same_tensors "$head_file" "$tmp/y.safetensors"
expect 3 "$WV" checkout "$R@$id1" -o "$tmp/gone.safetensors"
no_orphans
# gc freed the packs of the pruned checkpoints: only the head's data is
# left (12 MiB of floats, about 10 after compression, in 1 MiB pieces).
n=$(rados -c "$CEPH_CONF" -p "$pool" ls 2>/dev/null | grep -c '^r1/packs/')
[ "$n" -ge 8 ] && [ "$n" -le 16 ] || fail "$n pack objects after gc"

# A commit killed midway leaves the repository as it was: at worst
# unreferenced data, and pieces without a head that no listing shows.
make_st "$tmp/e.safetensors" 5 61.03515625 # 4000000 floats a tensor
raw_objects() { rados -c "$CEPH_CONF" -p "$pool" ls 2>/dev/null | wc -l; }
n0=$(raw_objects)
"$WV" commit "$R" "$tmp/e.safetensors" >"$tmp/e.out" 2>&1 &
pe=$!
# Kill it once it has stored a few pieces.
for _ in $(seq 200); do
    [ "$(raw_objects)" -gt $((n0 + 3)) ] && break
    sleep 0.01
done
kill -9 $pe 2>/dev/null
wait $pe 2>/dev/null
expect 0 "$WV" verify "$R"
expect 0 "$WV" checkout "$R" -o "$tmp/z.safetensors"
if [ "$(tensor_sums "$tmp/z.safetensors")" = "$(tensor_sums "$tmp/e.safetensors")" ]; then
    echo "note: the commit finished before the kill"
else
    same_tensors "$head_file" "$tmp/z.safetensors"
fi
expect 0 "$WV" gc "$R"
expect 0 "$WV" verify "$R"

# Errors: one line each, naming what is wrong.
expect 3 "$WV" log "rados://wvt-nosuch-$$/r1"
one_line_error "no such pool 'wvt-nosuch-$$'"
WV_RADOS_CLIENT=client.wvnosuch expect 4 "$WV" log "$R"
one_line_error "client.wvnosuch"
if [ ! -e /etc/ceph/ceph.conf ] && [ ! -e "$HOME/.ceph/config" ] &&
    [ ! -e ./ceph.conf ]; then
    # No configuration at all: librados would ask DNS, saying so on stderr.
    expect 4 env -u CEPH_CONF "$WV" log "$R"
    one_line_error "set CEPH_CONF"
fi

finish
