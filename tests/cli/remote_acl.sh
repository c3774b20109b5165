#!/usr/bin/env bash
# remote_acl.sh -- access control on S3 with two radosgw users: bob can
# neither read nor write alice's repository, until alice grants him
# read-only access with a bucket policy (he can then log, check out and
# clone and verify -- without a lock, saying so -- still not commit), then
# read-write access (he can commit).
# Env (from ctest): WV, PYTHON, AWS_*, CEPH_CONF, WV_CEPH_*.
WV_TEST_TAG=acl
. "$(dirname "$0")/../harness/remote.sh"
cd "$tmp"
R="s3://$bucket/shared"
make_st a.safetensors 7
expect 0 "$WV" init "$R"
expect 0 "$WV" commit "$R" a.safetensors -m alice
bob() { AWS_ACCESS_KEY_ID=$WV_S3_B_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$WV_S3_B_SECRET_ACCESS_KEY "$@"; }

# no grant: bob is refused, both ways, with a clear message
bob expect 4 "$WV" log "$R"
one_line_error "access denied"
one_line_error "$bucket"
bob expect 4 "$WV" commit "$R" a.safetensors -m bob
one_line_error "access denied"
bob expect 4 "$WV" checkout "$R@latest" -o x.safetensors
[ ! -e x.safetensors ] || fail "a refused checkout wrote a file"
bob expect 4 "$WV" clone "$R" bobcopy
[ ! -e bobcopy/refs/heads/main ] || fail "a refused clone has a branch"

policy() {  # policy ACTIONS...
    local acts
    acts=$(printf '"s3:%s",' "$@"); acts=${acts%,}
    cat >"$tmp/policy.json" <<JSON
{"Version": "2012-10-17", "Statement": [
 {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam:::user/bob"]},
  "Action": [$acts],
  "Resource": ["arn:aws:s3:::$bucket", "arn:aws:s3:::$bucket/*"]}]}
JSON
    expect 0 "${AWS[@]}" s3api put-bucket-policy --bucket "$bucket" --policy "file://$tmp/policy.json"
}

# read-only grant
policy GetObject ListBucket GetBucketLocation
bob expect 0 "$WV" log "$R"
has alice
bob expect 0 "$WV" checkout "$R@latest" -o x.safetensors
[ "$(tensor_sums x.safetensors)" = "$(tensor_sums a.safetensors)" ] || fail "bob's checkout differs"
rm -rf bobcopy
bob expect 0 "$WV" clone "$R" bobcopy
expect 0 "$WV" verify bobcopy
# verify as a read-only user: no lock can be written; it checks all the
# same and says what it could not lock (issue 14, item 7)
bob expect 0 "$WV" verify "$R"
has "^ok:"
grep -q "checked without a lock: could not write a lock object under locks/" "$tmp/err" ||
    fail "read-only verify does not say it ran unlocked: $(cat "$tmp/err")"
"${AWS[@]}" s3 ls --recursive "s3://$bucket/shared/locks/" >"$tmp/locks" 2>&1 || true
grep -q "shared/locks/." "$tmp/locks" && fail "a read-only verify left a lock: $(cat "$tmp/locks")"
bob expect 4 "$WV" commit "$R" a.safetensors -m bob
one_line_error "access denied"
expect 0 "$WV" log "$R"
grep -q "bob" "$tmp/out" && fail "a read-only user's commit landed"
bob expect 4 "$WV" push bobcopy "$R"
one_line_error "access denied"

# read-write grant
policy GetObject ListBucket GetBucketLocation PutObject DeleteObject AbortMultipartUpload ListMultipartUploadParts
bob expect 0 "$WV" commit "$R" a.safetensors -m from-bob
expect 0 "$WV" log "$R" -n 1
has from-bob

finish
