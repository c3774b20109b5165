#!/usr/bin/env bash
# malformed.sh FILE -- FILE must be refused: `wv verify FILE` exits 1 and
# prints exactly one line on stderr, starting "wv: " and containing the
# first line of FILE.expect. Env: WV.
set -u
file=$1
expect_file=$file.expect
[ -f "$expect_file" ] || { echo "malformed: $expect_file missing" >&2; exit 1; }
IFS= read -r want <"$expect_file"
err=$(mktemp)
trap 'rm -f "$err"' EXIT
"$WV" verify "$file" >/dev/null 2>"$err"
rc=$?
msg=$(cat "$err")
lines=$(wc -l <"$err")
bad=0
[ $rc -eq 1 ] || { echo "exit status $rc, want 1"; bad=1; }
[ "$lines" -eq 1 ] || { echo "stderr has $lines lines, want 1"; bad=1; }
case $msg in
"wv: "*) ;;
*) echo "message does not start with 'wv: '"; bad=1 ;;
esac
case $msg in
*"$want"*) ;;
*) echo "message lacks: $want"; bad=1 ;;
esac
echo "stderr: $msg"
exit $bad
