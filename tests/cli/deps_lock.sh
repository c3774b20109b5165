#!/usr/bin/env bash
# deps_lock.sh -- scripts/deps.sh with another package manager holding the
# lock: it says it is waiting (naming the holder), waits, retries an
# `apt-get update` stopped by the lists lock, passes DPkg::Lock::Timeout to
# apt-get install, installs only what is missing, and gives up with one
# clear line when the lock outlives WV_APT_LOCK_TIMEOUT. apt-get,
# dpkg-query, lslocks, sleep and sudo are stand-ins on PATH: nothing is
# installed.
# Env: WV, WV_SRC.
set -u
. "$(dirname "$0")/../harness/cli.sh"
: "${WV_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
holder=$$
# dpkg-query: pkg-config and cmake are installed, nothing else is
cat >"$tmp/bin/dpkg-query" <<'SH'
#!/bin/sh
for a; do p=$a; done
case $p in pkg-config|cmake) echo "install ok installed" ;; *) echo "unknown ok not-installed" ;; esac
SH
# lslocks: the dpkg lock is held while $tmp/held counts down
cat >"$tmp/bin/lslocks" <<SH
#!/bin/sh
n=\$(cat "$tmp/held" 2>/dev/null || echo 0)
[ "\$n" -gt 0 ] || exit 0
[ "\$n" -ge 1000 ] || echo \$((n - 1)) >"$tmp/held"
echo "/var/lib/dpkg/lock-frontend $holder"
SH
# apt-get: the first update finds the lists lock taken
cat >"$tmp/bin/apt-get" <<SH
#!/bin/sh
echo "\$*" >>"$tmp/apt.log"
case " \$* " in
  *" update "*)
    if [ ! -e "$tmp/updated-once" ]; then
        : >"$tmp/updated-once"
        echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)" >&2
        exit 100
    fi
    echo "Reading package lists..." ;;
esac
exit 0
SH
printf '#!/bin/sh\necho "sleep $*" >>"%s/sleeps"\n' "$tmp" >"$tmp/bin/sleep"
printf '#!/bin/sh\nexec "$@"\n' >"$tmp/bin/sudo"
chmod +x "$tmp/bin"/*

echo 2 >"$tmp/held"
st=0
PATH=$tmp/bin:$PATH bash "$WV_SRC/scripts/deps.sh" build >"$tmp/out" 2>"$tmp/err" || st=$?
[ "$st" = 0 ] || fail "deps.sh exit $st: $(cat "$tmp/err")"
has "^deps.sh: waiting for the package lock, held by bash (pid $holder)"
has "^deps.sh: waiting for the package lists lock"
[ "$(grep -c '^deps.sh: waiting' "$tmp/out")" = 3 ] ||
    fail "wanted 3 waiting lines (2 dpkg lock, 1 lists lock): $(cat "$tmp/out")"
[ "$(grep -c -- '-q update\|^update' "$tmp/apt.log")" = 2 ] ||
    fail "apt-get update not retried once: $(cat "$tmp/apt.log")"
inst=$(grep ' install ' "$tmp/apt.log")
case $inst in
  *DPkg::Lock::Timeout=1200*) ;;
  *) fail "apt-get install without DPkg::Lock::Timeout: $inst" ;;
esac
case " $inst " in
  *" cmake "* | *" pkg-config "*) fail "installs what is there: $inst" ;;
esac
case " $inst " in
  *" libhdf5-dev "*) ;;
  *) fail "does not install what is missing: $inst" ;;
esac

# A lock that never goes away: one line on stderr, exit 1.
echo 1000 >"$tmp/held"
rm -f "$tmp/apt.log"
st=0
PATH=$tmp/bin:$PATH WV_APT_LOCK_TIMEOUT=30 bash "$WV_SRC/scripts/deps.sh" build \
    >"$tmp/out" 2>"$tmp/err" || st=$?
[ "$st" = 1 ] || fail "deps.sh with a lock held for good: exit $st"
[ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "still held by bash (pid $holder) after 30s" "$tmp/err" ||
    fail "give-up message: $(cat "$tmp/err")"
[ ! -e "$tmp/apt.log" ] || fail "apt-get ran while the lock was held: $(cat "$tmp/apt.log")"
finish "deps_lock: waits, says so, retries, gives up clearly"
