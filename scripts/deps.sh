#!/usr/bin/env bash
# Install the Debian 12 packages a target needs, only those missing.
#   scripts/deps.sh build   compilers, cmake, libraries
#   scripts/deps.sh check   + clang's libFuzzer runtime; numpy, torch, h5py and
#                           h5dump, the real frameworks the interop tests use;
#                           pytest for the Python package's tests; Ceph
#                           (mon, osd, radosgw), awscli, s3cmd for the
#                           S3 and RADOS suites (scripts/ceph-dev.sh);
#                           chromium (headless) for the web view's tests
#   scripts/deps.sh bench   + torch for the baselines
set -euo pipefail
level=${1:-build}
pkgs=(build-essential cmake pkg-config libssl-dev zlib1g-dev libhdf5-dev libzstd-dev
      libcurl4-openssl-dev librados-dev libsodium-dev libmicrohttpd-dev)
case $level in
  build) ;;
  check) pkgs+=(clang libclang-rt-14-dev python3 python3-numpy python3-torch python3-h5py hdf5-tools python3-pytest
               ceph-mon ceph-osd radosgw ceph-common awscli s3cmd curl chromium) ;;
  bench) pkgs+=(python3 python3-numpy python3-torch ceph-mon ceph-osd radosgw ceph-common awscli curl) ;;
  demo)  pkgs+=(python3 python3-numpy) ;;
  *) echo "deps.sh: unknown level '$level'" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "deps.sh: installing ${missing[*]}"
SUDO=
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
