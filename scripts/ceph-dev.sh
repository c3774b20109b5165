#!/usr/bin/env bash
# A throw-away single-node Ceph cluster on loopback for the tests of the
# s3:// and rados:// backends: one mon, one OSD, one radosgw (S3), no mgr,
# no systemd. Debian 12's ceph 16 packages; everything lives in $CEPH_DIR.
#
#   scripts/ceph-dev.sh install     install the Debian packages (once)
#   scripts/ceph-dev.sh start       wipe $CEPH_DIR, bootstrap, start; writes
#                                   $CEPH_DIR/env (source it) and prints it
#   scripts/ceph-dev.sh stop        stop the daemons started by `start`
#   scripts/ceph-dev.sh kill-rgw    SIGKILL radosgw (fault tests)
#   scripts/ceph-dev.sh start-rgw   start radosgw again, wait until it answers
#   scripts/ceph-dev.sh status      exit 0 when S3 answers
#
# Knobs: CEPH_DIR (/tmp/wv-ceph), CEPH_OSD_STORE (memstore | bluestore),
# CEPH_MEMSTORE_BYTES (3G), CEPH_BLUESTORE_BYTES (16G), CEPH_RGW_PORT (7480),
# CEPH_MON_PORT / CEPH_MON_PORT2 (6789 / 3300), CEPH_OSD_PORT_MIN/MAX.
# Two S3 users are made: "alice" (AWS_* in env) and "bob" (WV_S3_B_* in env),
# for the access-control tests.
set -euo pipefail

D=${CEPH_DIR:-/tmp/wv-ceph}
STORE=${CEPH_OSD_STORE:-memstore}
MONP=${CEPH_MON_PORT:-6789}
MONP2=${CEPH_MON_PORT2:-3300}
RGWP=${CEPH_RGW_PORT:-7480}
PMIN=${CEPH_OSD_PORT_MIN:-6800}
PMAX=${CEPH_OSD_PORT_MAX:-7300}
A_AK=WVALICEACCESSKEY0001
A_SK=wvalicesecretkey000000000000000000000001
B_AK=WVBOBACCESSKEY000001
B_SK=wvbobsecretkey00000000000000000000000001
CONF=$D/ceph.conf

say() { printf 'ceph-dev: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
ceph_() { ceph -c "$CONF" --connect-timeout 20 "$@"; }

# until CMD succeeds, for at most SECONDS
await() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { say "gave up waiting for $what (logs in $D/log)"; return 1; }
    sleep 0.2
  done
}

daemon() {  # daemon NAME CMD... : run in the foreground mode, keep the pid
  local name=$1; shift
  setsid "$@" </dev/null >>"$D/log/$name.out" 2>&1 &
  echo $! >"$D/pids/$name"
}

install_pkgs() {
  local want=(ceph-mon ceph-osd radosgw ceph-common librados-dev awscli s3cmd curl) miss=() p
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || miss+=("$p")
  done
  ((${#miss[@]} == 0)) && return 0
  say "installing ${miss[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q -o DPkg::Lock::Timeout=900 --no-install-recommends "${miss[@]}" >/dev/null
}

stop_one() {  # stop_one NAME...: SIGTERM, wait up to 10 s, then SIGKILL
  local n pid pids=()
  for n in "$@"; do
    [ -f "$D/pids/$n" ] || continue
    pid=$(cat "$D/pids/$n"); rm -f "$D/pids/$n"
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

# radosgw first: with the OSD gone its shutdown waits for its exit timeout
stop() { [ -d "$D/pids" ] || return 0; stop_one rgw; stop_one osd; stop_one mon; }

s3_up() { curl -sf -o /dev/null "http://127.0.0.1:$RGWP/"; }

start_rgw() {
  daemon rgw radosgw -c "$CONF" -n client.rgw.a -f
  await 90 "radosgw on port $RGWP" s3_up
}

kill_rgw() {
  [ -f "$D/pids/rgw" ] || return 0
  local pid; pid=$(cat "$D/pids/rgw"); rm -f "$D/pids/rgw"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
}

write_conf() {
  cat >"$CONF" <<EOF
[global]
fsid = $1
mon host = [v2:127.0.0.1:$MONP2,v1:127.0.0.1:$MONP]
public network = 127.0.0.0/8
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind port min = $PMIN
ms bind port max = $PMAX
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
keyring = $D/\$cluster.\$name.keyring
run dir = $D/run
admin socket = $D/run/\$cluster-\$name.asok
log file = $D/log/\$cluster-\$name.log
pid file = $D/run/\$cluster-\$name.pid
crash dir = $D/crash
log to stderr = false
err to stderr = false
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $D/mon/\$cluster-\$id
mon allow pool delete = true
paxos propose interval = 0.05

[osd]
osd data = $D/osd/\$cluster-\$id
osd objectstore = $STORE
memstore device bytes = $(numfmt --from=iec "${CEPH_MEMSTORE_BYTES:-3G}")
bluestore block create = true
bluestore block size = $(numfmt --from=iec "${CEPH_BLUESTORE_BYTES:-16G}")
bluestore fsck on mount = false
osd memory target = 1073741824

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGWP
rgw data = $D/rgw/\$cluster-\$id
rgw dns name = localhost
rgw gc obj min wait = 30
rgw gc processor period = 30
rgw exit timeout secs = 10
EOF
}

start() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  command -v ceph-mon >/dev/null || die "ceph is not installed: run '$0 install'"
  stop || true
  local p
  for p in "$MONP" "$MONP2" "$RGWP"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port $p is in use"; fi
  done
  rm -rf "$D"
  mkdir -p "$D"/{log,run,pids,crash,mon/ceph-a,osd/ceph-0,rgw/ceph-rgw.a}
  local fsid; fsid=$(cat /proc/sys/kernel/random/uuid)
  write_conf "$fsid"

  ceph-authtool --create-keyring "$D/ceph.mon.a.keyring" --gen-key -n mon. \
    --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$D/ceph.client.admin.keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$D/ceph.mon.a.keyring" --import-keyring "$D/ceph.client.admin.keyring" >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MONP2,v1:127.0.0.1:$MONP]" \
    "$D/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$D/ceph.mon.a.keyring"
  daemon mon ceph-mon -c "$CONF" -i a -f
  await 30 "the monitor" ceph_ mon stat

  local uuid key; uuid=$(cat /proc/sys/kernel/random/uuid)
  ceph-authtool --create-keyring "$D/osd/ceph-0/keyring" --gen-key -n osd.0 >/dev/null
  key=$(ceph-authtool -p -n osd.0 "$D/osd/ceph-0/keyring")
  printf '{"cephx_secret": "%s"}\n' "$key" >"$D/osd-secret.json"
  ceph_ osd new "$uuid" 0 -i "$D/osd-secret.json" >/dev/null
  cp "$D/osd/ceph-0/keyring" "$D/ceph.osd.0.keyring"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$uuid" >>"$D/log/osd-mkfs.out" 2>&1
  daemon osd ceph-osd -c "$CONF" -i 0 -f
  await 60 "the OSD" bash -c "ceph -c '$CONF' osd dump | grep -q '^osd.0 up'"

  ceph_ auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' mgr 'allow rw' \
    >"$D/ceph.client.rgw.a.keyring"
  start_rgw
  radosgw-admin -c "$CONF" user create --uid=alice --display-name=alice \
    --access-key="$A_AK" --secret-key="$A_SK" >"$D/alice.json"
  radosgw-admin -c "$CONF" user create --uid=bob --display-name=bob \
    --access-key="$B_AK" --secret-key="$B_SK" >"$D/bob.json"

  cat >"$D/env" <<EOF
export CEPH_CONF=$CONF
export AWS_ACCESS_KEY_ID=$A_AK
export AWS_SECRET_ACCESS_KEY=$A_SK
export AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$RGWP
export S3_ENDPOINT=http://127.0.0.1:$RGWP
export WV_S3_B_ACCESS_KEY_ID=$B_AK
export WV_S3_B_SECRET_ACCESS_KEY=$B_SK
export WV_CEPH_DIR=$D
EOF
  say "ready: S3 on http://127.0.0.1:$RGWP, RADOS via $CONF ($STORE)"
  cat "$D/env"
}

case "${1:-}" in
  install) install_pkgs ;;
  start) start ;;
  stop) stop ;;
  kill-rgw) kill_rgw ;;
  start-rgw) start_rgw ;;
  status) s3_up ;;
  *) echo "usage: $0 install|start|stop|kill-rgw|start-rgw|status" >&2; exit 2 ;;
esac
