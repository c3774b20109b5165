#!/usr/bin/env bash
# remote_crypt.sh -- tests/cli/repo_crypt.sh with its repositories in an
# S3 bucket on the Ceph test cluster: the privacy scan reads every stored
# object back with awscli, and one byte flipped in a chunk, a manifest, a
# ref, an index object and a pack trailer on S3 is refused by name.
# Env (from ctest): WV, PYTHON, WV_SRC, AWS_*, CEPH_CONF, WV_CEPH_*.
WV_TEST_TAG=crypt
. "$(dirname "$0")/../harness/remote.sh"
"${AWS[@]}" s3 mb "s3://$bucket" >/dev/null || fail "cannot create bucket $bucket"
WV_TEST_REPO_BASE="s3://$bucket/crypt" bash "$(dirname "$0")/repo_crypt.sh"
st=$?
[ "$st" = 0 ] || fail "repo_crypt.sh on S3 exited $st"
finish
