#!/usr/bin/env bash
# repo_history.sh -- wv log, show, diff, tag and branch end to end on a
# temporary repository built with wv init / wv commit from small
# safetensors files written with numpy: outputs, --json validity, exit
# codes and one-line errors.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
json_ok() { "$PYTHON" -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out" || fail "invalid JSON: $*"; }

"$PYTHON" - "$tmp" <<'PY' || { echo "cannot generate inputs"; exit 1; }
import sys
import numpy as np
from stwrite import write_st as st
d = sys.argv[1]
big = (np.arange(100000, dtype="<f4") / 7).astype("<f4")
w = np.array([[1, 2, 3], [4, 5, 6]], dtype="<f4")
st(d + "/s1.safetensors", {"w": w, "big": big,
                           "old": np.array([1, 2], dtype="<i4")})
w2 = w.copy(); w2[0, 0] = 1.5; w2[1, 2] = 4
st(d + "/s2.safetensors", {"w": w2, "big": big,
                           "new": np.ones(4, dtype="<f2")})
w3 = w2.reshape(3, 2).copy()
st(d + "/s3.safetensors", {"w": w3, "big": big,
                           "new": np.ones(4, dtype="<f2")})
PY

R="$tmp/repo"
expect 0 "$WV" init "$R" --chunk-size 64KiB
expect 0 "$WV" commit "$R" "$tmp/s1.safetensors" -m "first run" \
    --meta step=100 --meta val_loss=0.5 --meta note=warmup
id1=$(cat "$tmp/out")
expect 0 "$WV" commit "$R" "$tmp/s2.safetensors" -m "second" --meta step=200
id2=$(cat "$tmp/out")
expect 0 "$WV" commit "$R" "$tmp/s3.safetensors" --meta step=300
id3=$(cat "$tmp/out")
[ ${#id3} = 64 ] || fail "commit printed no id"

# ---- log
expect 0 "$WV" log "$R"
[ "$(grep -c '^checkpoint ' "$tmp/out")" = 3 ] || fail "log shows not 3"
[ "$(grep '^checkpoint ' "$tmp/out" | head -1)" = "checkpoint $id3 (main)" ] ||
    fail "log does not start with the head: $(head -1 "$tmp/out")"
has "metrics:  step=100 val_loss=0.5"
grep -q "note=warmup" "$tmp/out" && fail "log shows non-numeric metadata"
has "    first run"
expect 0 "$WV" log "$R" -n 2
[ "$(grep -c '^checkpoint ' "$tmp/out")" = 2 ] || fail "log -n 2"
expect 0 "$WV" log "$R@${id2:0:10}" --json
json_ok log --json
pyjson "[e['id'] for e in d] == ['$id2', '$id1'] and d[1]['parent'] is None"
pyjson "d[0]['parent'] == '$id1' and d[0]['metadata'] == {'step': '200'}"
pyjson "d[1]['metadata']['note'] == 'warmup' and d[1]['message'] == 'first run'"
pyjson "d[0]['tensors'] == 3 and d[0]['nbytes'] == 24 + 400000 + 8"
expect 0 "$WV" log "$R" -n 0 --json
pyjson "d == []"
expect 3 "$WV" log "$R@nosuch"
one_line_error "no branch, tag or checkpoint named 'nosuch'"
expect 2 "$WV" log "$R" -n x
one_line_error "wv log"
expect 2 "$WV" log
expect 3 "$WV" log "$tmp/nothere"
one_line_error "nothere"

# ---- show
expect 0 "$WV" show "$R@$id1"
has "checkpoint: $id1"
has "parent:     (none)"
has "message:    first run"
has "  val_loss = 0.5"
grep -Eq '^big +F32 +\[100000\] +400000$' "$tmp/out" || fail "show row for big"
expect 0 "$WV" show "$R" --json
json_ok show --json
pyjson "d['id'] == '$id3' and d['parent'] == '$id2' and d['branch'] == 'main'"
pyjson "d['format'] == 'repository' and d['metadata'] == {'step': '300'}"
pyjson "[(t['name'], t['dtype'], t['shape'], t['nbytes']) for t in d['tensors']] == [('w', 'F32', [3, 2], 24), ('big', 'F32', [100000], 400000), ('new', 'F16', [4], 8)]"
pyjson "all('sha256' not in t for t in d['tensors'])"
# --hash gives what wv inspect --json gives for the file committed.
expect 0 "$WV" show "$R@$id2" --json --hash
cp "$tmp/out" "$tmp/show.json"
expect 0 "$WV" inspect "$tmp/s2.safetensors" --json
"$PYTHON" - "$tmp/show.json" "$tmp/out" <<'PY' || fail "show --hash differs from inspect --json"
import json, sys
s, i = (json.load(open(p)) for p in sys.argv[1:3])
key = lambda t: (t["name"], t["dtype"], t["shape"], t["nbytes"], t["sha256"])
sys.exit(0 if sorted(map(key, s["tensors"])) == sorted(map(key, i["tensors"])) else 1)
PY
expect 3 "$WV" show "$R@0000000000"
one_line_error "'0000000000'"
expect 2 "$WV" show "$R" --bogus
one_line_error "unknown option"

# ---- diff: w changed by .5 and 2 (||d|| = sqrt(4.25), ||a|| = sqrt(91))
expect 0 "$WV" diff "$R" "$id1" "$id2"
grep -Eq '^changed +w +F32 +\[2, 3\] +max\|a-b\| 2 +rel L2 0\.216109 +2 elements differ$' \
    "$tmp/out" || fail "diff row for w: $(cat "$tmp/out")"
grep -Eq '^added +new ' "$tmp/out" || fail "diff: added"
grep -Eq '^removed +old ' "$tmp/out" || fail "diff: removed"
grep -q '^unchanged' "$tmp/out" && fail "diff lists unchanged without --all"
has "1 added, 1 removed, 1 changed, 1 unchanged (48 B of tensor data read)"
expect 0 "$WV" diff "$R@$id1" "$R@${id2:0:8}" --json
json_ok diff --json
pyjson "d['a']['id'] == '$id1' and d['b']['id'] == '$id2'"
pyjson "d['summary'] == {'added': 1, 'removed': 1, 'changed': 1, 'unchanged': 1, 'bytes_read': 48}"
pyjson "[(t['name'], t['status']) for t in d['tensors']] == [('w', 'changed'), ('big', 'unchanged'), ('new', 'added'), ('old', 'removed')]"
pyjson "abs(d['tensors'][0]['rel_l2'] - math.sqrt(4.25 / 91)) < 1e-12 and d['tensors'][0]['max_abs'] == 2 and d['tensors'][0]['n_differ'] == 2"
pyjson "d['tensors'][2]['a'] is None and d['tensors'][3]['b'] is None"
# One ref: against its parent; a reshape has no figures.
expect 0 "$WV" diff "$R@latest" --all
grep -Eq '^changed +w +F32 +\[3, 2\] +\(was F32 \[2, 3\]\)$' "$tmp/out" ||
    fail "diff reshape: $(cat "$tmp/out")"
grep -Eq '^unchanged +big ' "$tmp/out" || fail "diff --all"
has "0 added, 0 removed, 1 changed, 2 unchanged (0 B of tensor data read)"
expect 0 "$WV" diff "$R" "$id1" "$id2" --no-values --json
pyjson "d['summary']['bytes_read'] == 0 and 'max_abs' not in d['tensors'][0]"
expect 3 "$WV" diff "$R@$id1"
one_line_error "has no parent"
expect 3 "$WV" diff "$R" "$id1" nosuch
one_line_error "'nosuch'"
expect 2 "$WV" diff "$R@$id1" "$tmp/other@$id2"
one_line_error "same repository"
expect 2 "$WV" diff "$R"

# ---- tags
expect 0 "$WV" tag "$R" best "$id2"
has "tag 'best' -> $id2"
expect 0 "$WV" tag "$R@$id1" first
expect 1 "$WV" tag "$R" best
one_line_error "tag 'best' exists already (tags never move)"
expect 0 "$WV" tag "$R" --list
[ "$(awk '{print $1 " " $2}' "$tmp/out")" = "best $id2
first $id1" ] || fail "tag --list: $(cat "$tmp/out")"
expect 0 "$WV" tag "$R"
[ "$(wc -l <"$tmp/out")" = 2 ] || fail "tag without args lists"
expect 0 "$WV" log "$R" --json
pyjson "d[1]['refs'] == ['tag:best'] and d[0]['refs'] == ['main']"
expect 0 "$WV" show "$R@best" --json
pyjson "d['id'] == '$id2'"
expect 2 "$WV" tag "$R" latest
one_line_error "not a valid tag name"
expect 2 "$WV" tag "$R" "bad/name"
expect 3 "$WV" tag "$R" t2 nosuch
one_line_error "'nosuch'"
expect 0 "$WV" tag "$R" -d first
has "deleted tag 'first'"
expect 3 "$WV" tag "$R" -d first
one_line_error "no tag named 'first'"
expect 2 "$WV" tag "$R" -d
expect 2 "$WV" tag "$R@$id1" x y

# ---- branches
expect 0 "$WV" branch "$R" exp best
has "branch 'exp' -> $id2"
expect 1 "$WV" branch "$R" exp
one_line_error "branch 'exp' exists already"
expect 1 "$WV" branch "$R" best
one_line_error "there is a tag named 'best'"
expect 0 "$WV" commit "$R@exp" "$tmp/s1.safetensors" -m "on exp"
id4=$(cat "$tmp/out")
expect 0 "$WV" branch "$R" --list
[ "$(awk '{print $1 " " $2}' "$tmp/out")" = "exp $id4
main $id3" ] || fail "branch --list: $(cat "$tmp/out")"
expect 0 "$WV" log "$R@exp" --json
pyjson "[e['id'] for e in d] == ['$id4', '$id2', '$id1'] and d[0]['branch'] == 'exp'"
expect 0 "$WV" diff "$R" main exp --json
pyjson "d['summary']['added'] == 1 and d['summary']['removed'] == 1"
expect 2 "$WV" branch "$R" -d main
one_line_error "'main' cannot be deleted"
expect 0 "$WV" branch "$R" -d exp
expect 3 "$WV" log "$R@exp"
one_line_error "'exp'"
expect 0 "$WV" show "$R@${id4:0:12}"   # the checkpoint stays
has "branch:     exp"

# ---- history stops at a pruned parent
rm "$R/manifests/${id1:0:2}/$id1"
expect 0 "$WV" log "$R"
[ "$(grep -c '^checkpoint ' "$tmp/out")" = 2 ] || fail "log past a pruned parent"
has "(history stops here: parent ${id1:0:12} was pruned)"
expect 0 "$WV" log "$R" --json
pyjson "len(d) == 2 and d[1].get('parent_missing') is True and 'parent_missing' not in d[0]"

# ---- help answers
for c in log show diff tag branch; do
    expect 0 "$WV" "$c" --help
    has "usage: wv $c"
done
expect 0 "$WV" --help
has "  diff REPO A B"

finish "repo_history: all checks passed"
