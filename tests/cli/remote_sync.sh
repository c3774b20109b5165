#!/usr/bin/env bash
# remote_sync.sh -- repositories on Ceph through s3:// and rados://, and
# push / pull / clone between them and local disk: every repository
# command on each backend, only missing objects sent, fast-forward only,
# resume after a killed push, interop with awscli and s3cmd (they list and
# fetch what wv pushed; wv reads a file awscli uploaded, also over plain
# http with ranged GETs).
# Env (from ctest): WV, PYTHON, AWS_*, CEPH_CONF, WV_CEPH_*.
WV_TEST_TAG=sync
. "$(dirname "$0")/../harness/remote.sh"
cd "$tmp"
S3="s3://$bucket/team/run1"
RD="rados://$pool/run1"
make_st a.safetensors 1
make_st b.safetensors 2

# ---- a local repository pushed to S3 ---------------------------------------
expect 0 "$WV" init local
expect 0 "$WV" commit local a.safetensors -m first --meta step=100
expect 0 "$WV" commit local b.safetensors -m second --meta step=200
expect 0 "$WV" push local "$S3" --json
pyjson 'd["ok"] and d["objects_copied"] == d["objects"] and d["refs_updated"] == 1'
expect 0 "$WV" log "$S3"
[ "$(grep -c '^checkpoint' "$tmp/out")" = 2 ] || fail "log of $S3: $(cat "$tmp/out")"
expect 0 "$WV" verify "$S3"
# again: nothing to send
expect 0 "$WV" push local "$S3" --json
pyjson 'd["objects_copied"] == 0 and d["refs_updated"] == 0 and d["refs_unchanged"] == 1'

# awscli and s3cmd see plain objects
expect 0 "${AWS[@]}" s3 ls --recursive "s3://$bucket/team/run1/"
for k in config refs/heads/main packs/ index/ manifests/; do has "team/run1/$k"; done
m=$(cd local && ls manifests/*/* | head -1)
expect 0 "${AWS[@]}" s3 cp --only-show-errors "s3://$bucket/team/run1/$m" "$tmp/m.json"
cmp -s "$tmp/m.json" "local/$m" || fail "awscli fetched a different $m"
S3CMD=(s3cmd --access_key="$AWS_ACCESS_KEY_ID" --secret_key="$AWS_SECRET_ACCESS_KEY"
       --host="${AWS_ENDPOINT_URL#http://}" --host-bucket="${AWS_ENDPOINT_URL#http://}"
       --no-ssl --region=us-east-1 -c /dev/null)
expect 0 "${S3CMD[@]}" ls --recursive "s3://$bucket/team/run1/refs/"
has "refs/heads/main"
expect 0 "${S3CMD[@]}" get --force "s3://$bucket/team/run1/$m" "$tmp/m2.json"
cmp -s "$tmp/m2.json" "local/$m" || fail "s3cmd fetched a different $m"

# ---- commit straight to S3, pull it back -----------------------------------
expect 0 "$WV" commit "$S3" a.safetensors -m third --meta step=300
expect 0 "$WV" pull "$S3" local
expect 0 "$WV" log local
[ "$(grep -c '^checkpoint' "$tmp/out")" = 3 ] || fail "pull did not fast-forward: $(cat "$tmp/out")"
expect 0 "$WV" checkout "$S3@latest" -o out.safetensors
[ "$(tensor_sums out.safetensors)" = "$(tensor_sums a.safetensors)" ] ||
    fail "checkout from S3 differs from what was committed"

# diverged histories: refused without --force, nothing moved
expect 0 "$WV" commit local b.safetensors -m local-only
expect 0 "$WV" commit "$S3" b.safetensors -m remote-only --meta x=1
before=$("$WV" log "$S3" -n 1 | head -1)
expect 5 "$WV" push local "$S3"
one_line_error "diverged"
[ "$("$WV" log "$S3" -n 1 | head -1)" = "$before" ] || fail "a refused push moved the branch"
expect 0 "$WV" push local "$S3" --force
[ "$("$WV" log "$S3" -n 1 | head -1)" = "$("$WV" log local -n 1 | head -1)" ] ||
    fail "push --force did not move the branch"

# one branch only
expect 0 "$WV" branch local exp
expect 0 "$WV" commit local@exp a.safetensors -m on-exp
expect 0 "$WV" push local "$S3@exp" --json
pyjson 'd["refs_updated"] == 1'
expect 0 "$WV" log "$S3@exp" -n 1
has "on-exp"

# ---- clone from S3, tags, gc on S3 -----------------------------------------
expect 0 "$WV" tag "$S3" keep main
expect 0 "$WV" clone "$S3" copy
expect 0 "$WV" verify copy
expect 0 "$WV" tag copy --list
has keep
expect 0 "$WV" prune "$S3" --keep-last 1
expect 0 "$WV" gc "$S3"
expect 0 "$WV" verify "$S3"

# ---- RADOS: push, clone, S3 -> RADOS directly -------------------------------
expect 0 "$WV" push local "$RD"
expect 0 "$WV" verify "$RD"
expect 0 "$WV" clone "$RD" copy2
expect 0 "$WV" checkout copy2@latest -o out2.safetensors
expect 0 "$WV" checkout local@latest -o out1.safetensors
[ "$(tensor_sums out2.safetensors)" = "$(tensor_sums out1.safetensors)" ] ||
    fail "a clone of the RADOS copy differs"
expect 0 "$WV" push "$S3" "rados://$pool/from-s3" --json
pyjson 'd["ok"] and d["objects_copied"] > 0'
expect 0 "$WV" verify "rados://$pool/from-s3"

# ---- resume: a push killed midway, then run again ---------------------------
make_st big.safetensors 3 48
expect 0 "$WV" init big --pack-size 4MiB --compression none
expect 0 "$WV" commit big big.safetensors -m big
# how long a whole push takes here, to kill the others part of the way
t0=$(date +%s%N)
expect 0 "$WV" push big "s3://$bucket/calibrate" -j 2 --quiet
whole_ms=$((($(date +%s%N) - t0) / 1000000))
resumed=0
for attempt in 1 2 3 4 5; do
    dst="s3://$bucket/resume$attempt"
    "$WV" push big "$dst" -j 2 --quiet >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk "BEGIN { print $whole_ms * (0.2 + 0.12 * $attempt) / 1000 }")"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # a killed push leaves no ref naming missing data
    if "$WV" log "$dst" >/dev/null 2>&1; then
        expect 0 "$WV" verify "$dst"
    fi
    expect 0 "$WV" push big "$dst" --json
    # the ref moves now, or the killed push had got to the end already
    # (a slow calibration run) and nothing is left to copy
    pyjson 'd["ok"] and (d["refs_updated"] == 1 or (d["refs_unchanged"] == 1 and d["objects_copied"] == 0))'
    if "$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["refs_updated"] == 1 and d["objects_copied"] < d["objects"] else 1)' "$tmp/out"; then
        resumed=$((resumed + 1))
    fi
    expect 0 "$WV" verify "$dst"
done
[ "$resumed" -ge 1 ] || fail "no killed push left anything to resume from"
expect 0 "$WV" checkout "s3://$bucket/resume1@latest" -o big2.safetensors
[ "$(tensor_sums big2.safetensors)" = "$(tensor_sums big.safetensors)" ] ||
    fail "resumed push: checkout differs"

# ---- a file uploaded with awscli, read by wv over s3:// and http:// ----------
expect 0 "${AWS[@]}" s3 cp --only-show-errors big.safetensors "s3://$bucket/files/big.safetensors"
expect 0 "$WV" inspect --json "s3://$bucket/files/big.safetensors"
[ "$(tensor_sums "s3://$bucket/files/big.safetensors")" = "$(tensor_sums big.safetensors)" ] ||
    fail "wv inspect s3:// differs from the local file"
# the table (no --json) comes from the header alone: the same as locally
expect 0 "$WV" inspect big.safetensors
tail -n +2 "$tmp/out" >"$tmp/local.txt"
expect 0 "$WV" inspect "s3://$bucket/files/big.safetensors"
tail -n +2 "$tmp/out" | cmp -s - "$tmp/local.txt" ||
    fail "wv inspect s3:// (table) differs from the local file's"
expect 0 "$WV" inspect --json "s3://$bucket/files/big.safetensors" --tensor bias
pyjson 'len(d["tensors"]) == 1 and d["tensors"][0]["name"] == "bias"'
expect 0 "$WV" convert "s3://$bucket/files/big.safetensors" froms3.npz
[ "$(tensor_sums froms3.npz)" = "$(tensor_sums big.safetensors)" ] || fail "convert from s3:// differs"
expect 0 "${AWS[@]}" s3api put-object-acl --bucket "$bucket" --key files/big.safetensors --acl public-read
expect 0 "$WV" inspect --json "$AWS_ENDPOINT_URL/$bucket/files/big.safetensors" --tensor layer1.weight
pyjson 'len(d["tensors"]) == 1'
[ "$(tensor_sums "$AWS_ENDPOINT_URL/$bucket/files/big.safetensors")" = "$(tensor_sums big.safetensors)" ] ||
    fail "wv inspect http:// differs from the local file"
expect 3 "$WV" inspect "s3://$bucket/files/missing.safetensors"
one_line_error "missing.safetensors"

finish
