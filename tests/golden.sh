#!/usr/bin/env bash
# golden.sh FILE -- `wv inspect --json FILE` must describe FILE exactly as
# an independent peer (tests/peer/peer_dump.py: numpy and the json module)
# does: same format, metadata and tensors (compared as sets keyed by name;
# order may differ). Files the peer refuses (object arrays, which need
# pickle) must be refused by wv too: exit 1, message about object/pickle.
# Env: WV, WV_SRC, PYTHON.
set -u
file=$1
: "${PYTHON:=/usr/bin/python3}"
: "${WV_SRC:=$(cd "$(dirname "$0")/.." && pwd)}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "golden $file: $*" >&2; exit 1; }

"$PYTHON" "$WV_SRC/tests/peer/peer_dump.py" "$file" >"$tmp/peer.json" \
    2>"$tmp/peer.err"
peer_rc=$?
"$WV" inspect --json "$file" >"$tmp/wv.json" 2>"$tmp/wv.err"
wv_rc=$?

if [ $peer_rc -ne 0 ]; then
    if grep -qi 'object arrays\|pickle' "$tmp/peer.err"; then
        [ $wv_rc -eq 1 ] ||
            fail "numpy refuses it (object array) but wv inspect exited $wv_rc: $(cat "$tmp/wv.err")"
        grep -qi 'object\|pickle' "$tmp/wv.err" ||
            fail "wv refused it without mentioning object/pickle: $(cat "$tmp/wv.err")"
        [ "$(wc -l <"$tmp/wv.err")" -eq 1 ] ||
            fail "wv error is not one line: $(cat "$tmp/wv.err")"
        echo "ok: $file refused by both (object array)"
        exit 0
    fi
    fail "peer failed: $(cat "$tmp/peer.err")"
fi
[ $wv_rc -eq 0 ] || fail "wv inspect exited $wv_rc: $(cat "$tmp/wv.err")"

"$PYTHON" - "$tmp/peer.json" "$tmp/wv.json" <<'PY' || fail "mismatch (above)"
import json, sys
peer = json.load(open(sys.argv[1]))
ours = json.load(open(sys.argv[2]))
bad = []
if set(ours) != {"format", "metadata", "tensors"}:
    bad.append("wv keys %s" % sorted(ours))
for k in ("format", "metadata"):
    if peer.get(k) != ours.get(k):
        bad.append("%s: peer %r, wv %r" % (k, peer.get(k), ours.get(k)))
pt = {t["name"]: t for t in peer["tensors"]}
ot = {t["name"]: t for t in ours["tensors"]}
if len(ot) != len(ours["tensors"]):
    bad.append("wv lists a tensor name twice")
for n in sorted(set(pt) | set(ot)):
    if n not in ot:
        bad.append("tensor %r missing in wv" % n)
    elif n not in pt:
        bad.append("tensor %r only in wv" % n)
    else:
        for k in ("dtype", "shape", "nbytes", "sha256"):
            if pt[n][k] != ot[n].get(k):
                bad.append("tensor %r %s: peer %r, wv %r"
                           % (n, k, pt[n][k], ot[n].get(k)))
        if set(ot[n]) != {"name", "dtype", "shape", "nbytes", "sha256"}:
            bad.append("tensor %r keys %s" % (n, sorted(ot[n])))
for b in bad:
    print(b)
print("compared %d tensors" % len(pt))
sys.exit(1 if bad else 0)
PY
echo "ok: $file"
