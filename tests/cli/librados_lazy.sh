#!/usr/bin/env bash
# librados_lazy.sh -- wv loads librados.so.2 only when a rados:// URL is
# used (src/store/rados.c dlopens it then), so a command without one does
# not pay for librados's C++ start-up: wv neither links librados nor loads
# it for `wv --version` (which still lists rados among its features), and
# a librados that cannot be loaded is one line naming it, while the real
# one loads when needed. No cluster is needed.
# Env: WV.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

expect 0 "$WV" --version
has 'features:.* rados'
if ldd "$WV" >"$tmp/ldd" 2>&1; then
    grep -q librados "$tmp/ldd" && fail "wv links librados: $(grep librados "$tmp/ldd")"
fi
# the dynamic loader's own account of the files it opened
expect 0 env LD_DEBUG=files "$WV" --version
grep -q 'librados' "$tmp/err" && fail "wv --version loaded librados"
grep -q 'file=' "$tmp/err" || fail "LD_DEBUG=files printed nothing: $(head -c 300 "$tmp/err")"

# a librados that cannot be loaded: one line naming the file, exit 1
WV_RADOS_LIB="$tmp/no-librados.so.2" expect 1 "$WV" log rados://pool/p
one_line_error "rados://pool/p: cannot load $tmp/no-librados.so.2 (install librados2)"
# one without the functions names the first missing
WV_RADOS_LIB=libz.so.1 expect 1 "$WV" log rados://pool/p
one_line_error "cannot load libz.so.1: it has no function rados_"
# the real librados, loaded on demand, up to the configuration it is
# refused (under ASan, librados's C++ exceptions need libstdc++ loaded
# from the start: CMakeLists.txt)
CEPH_CONF=$tmp/no-ceph.conf expect 4 "$WV" log rados://pool/p
one_line_error "rados://pool/p: cannot read the ceph configuration '$tmp/no-ceph.conf'"
finish
