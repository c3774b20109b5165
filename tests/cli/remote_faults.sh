#!/usr/bin/env bash
# remote_faults.sh -- faults against a real radosgw: killed during a push
# and during a checkout (10 times each): a clear one-line error, nothing
# half-done visible (no ref naming missing data, no partial output file),
# and after a restart the same command completes. Wrong credentials: a
# clear "access denied" naming the bucket, no secret in the message, and
# no retry storm (counted in radosgw's own log).
# Env (from ctest): WV, PYTHON, AWS_*, CEPH_CONF, WV_CEPH_*.
WV_TEST_TAG=fault
. "$(dirname "$0")/../harness/remote.sh"
cd "$tmp"
export WV_S3_RETRIES=3 # fail within seconds once the server is gone
N=${WV_FAULT_ROUNDS:-10}
make_st w.safetensors 5 96
expect 0 "$WV" init local --pack-size 4MiB --compression none
expect 0 "$WV" commit local w.safetensors -m one

# ---- radosgw killed during a push -------------------------------------------
killed=0
for i in $(seq "$N"); do
    dst="s3://$bucket/push$i"
    "$WV" push local "$dst" -j 2 --quiet >"$tmp/p.out" 2>"$tmp/p.err" &
    pid=$!
    sleep "0.$((RANDOM % 4 + 1))"
    ceph_ctl kill-rgw
    wait "$pid"
    st=$?
    if [ "$st" != 0 ]; then
        killed=$((killed + 1))
        [ "$(wc -l <"$tmp/p.err")" = 1 ] || fail "push $i: stderr not one line: $(cat "$tmp/p.err")"
        grep -q '^wv: ' "$tmp/p.err" || fail "push $i: stderr: $(cat "$tmp/p.err")"
        [ "$st" = 4 ] || fail "push $i: exit $st, wanted 4 (server unreachable): $(cat "$tmp/p.err")"
    fi
    ceph_ctl start-rgw >/dev/null 2>&1 || fail "radosgw did not restart"
    # nothing half-done: either no branch yet, or a complete checkpoint
    if "$WV" log "$dst" >/dev/null 2>&1; then
        expect 0 "$WV" verify "$dst"
    fi
    expect 0 "$WV" push local "$dst" --quiet
    expect 0 "$WV" verify "$dst"
    # (each round pushes to a prefix of its own; the bucket goes at exit,
    # cleanup_remote, rather than an awscli run per round)
done
echo "push: radosgw killed mid-transfer in $killed of $N rounds"
[ "$killed" -ge $((N / 2)) ] || fail "only $killed of $N pushes were interrupted"

# ---- radosgw killed during a checkout ----------------------------------------
src="s3://$bucket/push1"
killed=0
for i in $(seq "$N"); do
    rm -f out.safetensors
    "$WV" checkout "$src@latest" -o out.safetensors 2>"$tmp/c.err" &
    pid=$!
    sleep "0.$((RANDOM % 4 + 1))"
    ceph_ctl kill-rgw
    wait "$pid"
    st=$?
    if [ "$st" != 0 ]; then
        killed=$((killed + 1))
        [ "$(wc -l <"$tmp/c.err")" = 1 ] || fail "checkout $i: stderr not one line: $(cat "$tmp/c.err")"
        [ ! -e out.safetensors ] || fail "checkout $i failed but left out.safetensors"
        ls -a | grep -q 'wv-tmp' && fail "checkout $i left a temporary file: $(ls -a)"
    fi
    ceph_ctl start-rgw >/dev/null 2>&1 || fail "radosgw did not restart"
    expect 0 "$WV" checkout "$src@latest" -o out.safetensors
    [ "$(tensor_sums out.safetensors)" = "$(tensor_sums w.safetensors)" ] ||
        fail "checkout $i after restart differs"
done
echo "checkout: radosgw killed mid-transfer in $killed of $N rounds"
[ "$killed" -ge $((N / 2)) ] || fail "only $killed of $N checkouts were interrupted"

# ---- wrong credentials --------------------------------------------------------
rgwlog=$WV_CEPH_DIR/log/ceph-client.rgw.a.log
before=$(grep -c 'http_status=403' "$rgwlog" 2>/dev/null || echo 0)
AWS_SECRET_ACCESS_KEY=not-the-secret-key-at-all-00000000000000 \
    expect 4 "$WV" log "s3://$bucket/push1"
one_line_error "access denied"
one_line_error "$bucket"
grep -q "not-the-secret" "$tmp/err" && fail "the secret key appears in the message"
after=$(grep -c 'http_status=403' "$rgwlog" 2>/dev/null || echo 0)
[ $((after - before)) -le 2 ] || fail "wrong credentials: $((after - before)) refused requests (retry storm)"
AWS_ACCESS_KEY_ID=NOSUCHKEY00000000000 expect 4 "$WV" push local "s3://$bucket/push1"
one_line_error "access denied"

finish
