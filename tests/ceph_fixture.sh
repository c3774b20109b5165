#!/usr/bin/env bash
# ctest fixture for the suites that need a Ceph cluster (S3 and RADOS):
#   ceph_fixture.sh start DIR   start scripts/ceph-dev.sh in DIR, or, when a
#                               cluster of that script already answers on the
#                               port (a developer's, in $WV_CEPH_SHARED, default
#                               /tmp/wv-ceph), point DIR at it and leave it be
#   ceph_fixture.sh stop DIR    stop what `start` started (nothing if shared)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:?start|stop} D=${2:?dir}
shared=${WV_CEPH_SHARED:-/tmp/wv-ceph}
case $cmd in
  start)
    if bash "$here/scripts/ceph-dev.sh" status 2>/dev/null; then
      [ -f "$shared/ceph.conf" ] ||
        { echo "ceph_fixture: port 7480 is taken by something that is not ceph-dev.sh in $shared" >&2; exit 1; }
      rm -rf "$D"; ln -s "$shared" "$D"; touch "$D.shared"
      echo "ceph_fixture: using the running cluster in $shared"
      exit 0
    fi
    rm -f "$D.shared"
    bash "$here/scripts/ceph-dev.sh" install
    CEPH_DIR=$D CEPH_MEMSTORE_BYTES=${CEPH_MEMSTORE_BYTES:-8G} \
      bash "$here/scripts/ceph-dev.sh" start >/dev/null
    echo "ceph_fixture: started a cluster in $D"
    ;;
  stop)
    if [ -f "$D.shared" ]; then rm -f "$D" "$D.shared"; exit 0; fi
    CEPH_DIR=$D bash "$here/scripts/ceph-dev.sh" stop
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
