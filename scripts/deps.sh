#!/usr/bin/env bash
# Install the Debian 12 packages a target needs, only those missing.
#   scripts/deps.sh minimal compilers, cmake and the libraries every build
#                           needs (a build with the optional parts off:
#                           make check-minimal)
#   scripts/deps.sh build   + the optional parts' libraries: libcurl (S3),
#                           librados, libhdf5, libsodium (crypto)
#   scripts/deps.sh check   + clang's libFuzzer runtime; numpy, torch, h5py and
#                           h5dump, the real frameworks the interop tests use;
#                           pytest for the Python package's tests; Ceph
#                           (mon, osd, radosgw), awscli, s3cmd for the
#                           S3 and RADOS suites (scripts/ceph-dev.sh);
#                           chromium (headless) for the web view's tests
#                           python3-onnx and libonnx-testdata for the ONNX
#                           reader's tests; nodejs and npm for the tests
#                           that fetch tfjs and onnxruntime-node from npm
#   scripts/deps.sh python  + python3, venv and numpy: the Python package
#   scripts/deps.sh bench   + torch for the baselines; awscli and rclone for
#                           bench/bench_remote.sh; restic, borgbackup and
#                           GNU time for bench/bench_restore.sh
# Another apt or dpkg (unattended-upgrades on a fresh machine, a second
# make) may hold the package lock: deps.sh says so and waits for it, up to
# WV_APT_LOCK_TIMEOUT seconds (default 1200), rather than failing at once.
set -euo pipefail
level=${1:-build}
pkgs=(build-essential cmake pkg-config libssl-dev zlib1g-dev libzstd-dev libmicrohttpd-dev)
case $level in
  minimal) ;;
  *) pkgs+=(libhdf5-dev libcurl4-openssl-dev librados-dev libsodium-dev) ;;
esac
case $level in
  minimal|build) ;;
  check) pkgs+=(clang libclang-rt-14-dev python3 python3-numpy python3-torch python3-h5py hdf5-tools python3-pytest python3-venv
               nodejs npm
               python3-onnx libonnx-testdata
               ceph-mon ceph-osd radosgw ceph-common awscli s3cmd curl
               man-db chromium) ;;
  bench) pkgs+=(python3 python3-numpy python3-torch ceph-mon ceph-osd radosgw ceph-common awscli rclone curl
               restic borgbackup time bc) ;;
  demo)  pkgs+=(python3 python3-numpy) ;;
  python) pkgs+=(python3 python3-venv python3-numpy) ;;
  *) echo "deps.sh: unknown level '$level'" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  # a Node.js from elsewhere (NodeSource's package carries npm and
  # conflicts with Debian's) is as good as Debian's npm
  if [[ $p == npm ]] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "deps.sh: installing ${missing[*]}"
SUDO=
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
lock_wait=${WV_APT_LOCK_TIMEOUT:-1200}

# lock_holder: "COMMAND (pid N)" of a process holding one of the package
# locks, empty when none does (or when lslocks cannot see it).
lock_holder() {
    local path pid
    while read -r path pid; do
        case $path in
          /var/lib/dpkg/lock | /var/lib/dpkg/lock-frontend | /var/lib/apt/lists/lock)
            echo "$(cat "/proc/$pid/comm" 2>/dev/null || echo '?') (pid $pid)"
            return 0 ;;
        esac
    done < <(lslocks -n -o PATH,PID 2>/dev/null || true)
}

# wait_for_lock: returns when no process holds a package lock; exits 1 when
# one still does after $lock_wait seconds.
waited=0
wait_for_lock() {
    local who
    while who=$(lock_holder) && [ -n "$who" ]; do
        if [ "$waited" -ge "$lock_wait" ]; then
            echo "deps.sh: the package lock is still held by $who after ${lock_wait}s; run make again when it is done" >&2
            exit 1
        fi
        echo "deps.sh: waiting for the package lock, held by $who (up to ${lock_wait}s in all)"
        sleep 10
        waited=$((waited + 10))
    done
}

# apt-get update does not honour DPkg::Lock::Timeout for the lists lock:
# retry it while the lock is what stops it.
wait_for_lock
log=$(mktemp)
trap 'rm -f "$log"' EXIT
until $SUDO apt-get update -q >"$log" 2>&1; do
    if ! grep -q 'Could not get lock' "$log" || [ "$waited" -ge "$lock_wait" ]; then
        cat "$log" >&2
        echo "deps.sh: apt-get update failed" >&2
        exit 1
    fi
    echo "deps.sh: waiting for the package lists lock, held by another apt-get update"
    sleep 10
    waited=$((waited + 10))
done
tail -n 1 "$log"
wait_for_lock
# apt itself waits for the dpkg lock and prints "Waiting for cache lock".
$SUDO apt-get -o DPkg::Lock::Timeout="$lock_wait" install -y -q \
    --no-install-recommends "${missing[@]}"
