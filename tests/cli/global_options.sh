#!/usr/bin/env bash
# global_options.sh -- the options any command takes (--key-file FILE,
# --max-expand N, --allow-rollback) are taken out of the command line in
# one pass from the left (src/cli/common.c, issue 15):
#   - an option's value is taken as it is, never read as an option itself
#     (--max-expand --key-file: '--key-file' is the bad number);
#   - nothing from '--' on is taken ('--' and what follows go to the
#     command, which refuses '--' as an option it does not know);
#   - a global option still works anywhere before '--'.
# And the Keras reader's list of objects it skipped (keras.skipped_objects,
# from names in the file) is printed through the CLI's safe text printer:
# no raw ESC or C1 control reaches the terminal, and a long list is cut at
# 2000 bytes with '...'.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make_st "$tmp/a.safetensors" 1 0.1

# --- a value is never read as an option ---
expect 2 "$WV" inspect "$tmp/a.safetensors" --max-expand --key-file
one_line_error "max-expand needs a positive integer, not '--key-file'"
expect 0 "$WV" inspect "$tmp/a.safetensors" --key-file --max-expand
has "^format: *safetensors"
expect 0 "$WV" inspect --max-expand 3 "$tmp/a.safetensors" --allow-rollback
has "^format: *safetensors"
expect 2 "$WV" inspect "$tmp/a.safetensors" --max-expand
one_line_error "max-expand needs a number"
expect 2 "$WV" inspect "$tmp/a.safetensors" --key-file
one_line_error "key-file needs a FILE"

# --- nothing after '--' is a global option ---
expect 2 "$WV" inspect "$tmp/a.safetensors" -- --max-expand
one_line_error "unknown option '--'"
grep -q "needs a number" "$tmp/err" && fail "--max-expand after -- was taken"
expect 2 "$WV" inspect "$tmp/a.safetensors" -- --allow-rollback
one_line_error "unknown option '--'"

# --- keras.skipped_objects through the safe printer ---
"$PYTHON" - "$tmp/full.h5" <<'PY' || fail "cannot write the Keras file"
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "w") as f:
    mw = f.create_group("model_weights")
    mw.attrs["layer_names"] = np.array([b"dense"])
    g = mw.create_group("dense")
    g.attrs["weight_names"] = np.array([b"dense/kernel:0"])
    g.create_dataset("dense/kernel:0", data=np.ones((2, 2), np.float32))
    # names the reader skips: an ESC sequence, a C1 CSI, then enough to
    # pass 2000 bytes
    f.create_dataset("evil\x1b[2J\u009b31m", data=np.zeros(1))
    for i in range(120):
        f.create_dataset("junk_%03d_padding_padding" % i, data=np.zeros(1))
PY
expect 0 "$WV" inspect "$tmp/full.h5"
grep -q "not read (not weights Keras lists)" "$tmp/err" ||
    fail "no skipped-objects warning: $(head -c 300 "$tmp/err")"
LC_ALL=C grep -q $'\x1b' "$tmp/err" && fail "raw ESC on stderr"
LC_ALL=C grep -q $'\xc2\x9b' "$tmp/err" && fail "raw C1 CSI on stderr"
grep -qF 'evil\u001b[2J\xc2\x9b31m' "$tmp/err" ||
    fail "escaped name missing: $(head -c 300 "$tmp/err")"
grep -q '\.\.\.$' "$tmp/err" || fail "long list not cut with '...'"
[ "$(wc -c <"$tmp/err")" -lt 2300 ] || fail "warning longer than 2000 bytes"
[ "$(wc -l <"$tmp/err")" = 1 ] || fail "warning not one line"

finish
