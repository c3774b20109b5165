#!/usr/bin/env bash
# newcomer.sh -- what `wv` does for someone who has not read its source:
# log --all with branch names, help texts that are right (no "%%", URL
# forms where they are referred to, every option they name accepted),
# "did you mean" for commands, options and subcommands, 'wv init' hinted
# for a repository that does not exist and 'wv show' for 'wv inspect
# REPO', save errors that name the output file and format, dtype aliases,
# the summary line after convert/checkout/commit (and --quiet), the
# progress bar on a terminal only, the warning for opaque HDF5 dtypes,
# WV_NEW_PASSPHRASE in 'wv key --help', and unsigned commits refused by a
# repository that trusts keys.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

make_st "$tmp/a.safetensors" 1 0.05
make_st "$tmp/b.safetensors" 2 0.05

# ---- wv log --all -------------------------------------------------------------
expect 0 "$WV" init ck
expect 0 "$WV" commit ck a.safetensors -m first
expect 0 "$WV" commit ck@run2 b.safetensors -m second-run
expect 0 "$WV" tag ck best main
expect 0 "$WV" log ck
has "(main, tag: best)"
! grep -q "second-run" "$tmp/out" || fail "log without --all shows run2"
expect 0 "$WV" log ck --all
has "(main, tag: best)"
has "(run2)"
has "second-run"
has "    first"
[ "$(grep -c '^checkpoint ' "$tmp/out")" = 2 ] || fail "log --all: not 2 checkpoints: $(cat "$tmp/out")"
expect 0 "$WV" log ck --all --json
pyjson 'len(d) == 2 and sorted(tuple(e["refs"]) for e in d) == [("main", "tag:best"), ("run2",)]'
expect 0 "$WV" log ck --all -n 1
[ "$(grep -c '^checkpoint ' "$tmp/out")" = 1 ] || fail "log --all -n 1"
expect 2 "$WV" log ck@main --all
one_line_error "drop the '@main'"
expect 0 "$WV" log --help
has "--all"

# ---- help texts -----------------------------------------------------------------
cmds="inspect convert verify init commit checkout log show diff tag branch prune gc push pull clone key keygen trust"
expect 0 "$WV" --help
has "s3://BUCKET/PREFIX"
has "rados://POOL/PREFIX"
has "http(s)://HOST/PATH"
has "REPO@REF"
for c in "" $cmds; do
    "$WV" $c --help >"$tmp/h" 2>&1 || fail "wv $c --help exited $?"
    ! grep -q '%%' "$tmp/h" || fail "wv $c --help prints %%: $(grep '%%' "$tmp/h")"
    ! grep -q "wv help init" "$tmp/h" || fail "wv $c --help points at wv help init"
    # every option the help describes on an indented line, or names in
    # its usage block (up to the first empty line), is one the command
    # accepts
    opts=$(awk '/^usage:/ {u = 1} /^$/ {u = 0} u || /^ +-/' "$tmp/h" |
        grep -oE "(^|[ [(|,])--?[a-z][a-z0-9-]*" | sed 's/^[ [(|,]//' | sort -u)
    for o in $opts; do
        "$WV" $c "$o" x y z </dev/null >/dev/null 2>"$tmp/e"
        ! grep -q "unknown option" "$tmp/e" || fail "wv $c --help names $o, which wv $c refuses: $(cat "$tmp/e")"
    done
done
expect 0 "$WV" gc --help
has "P% (default 30)"
for c in push pull clone; do
    expect 0 "$WV" $c --help
    has "s3://BUCKET/PREFIX"
    has "rados://POOL/PREFIX"
    has "file:///DIR"
    has "@BRANCH"
done
expect 0 "$WV" init --help
has "s3://BUCKET/PREFIX"
has "rados://POOL/PREFIX"
expect 0 "$WV" key --help
has "WV_NEW_PASSPHRASE"
grep -q "WV_NEW_PASSPHRASE" "$WV_SRC/README.md" || fail "README does not name WV_NEW_PASSPHRASE"
grep -q "wv log ckpts --all" "$WV_SRC/README.md" || fail "README lacks log --all"

# ---- did you mean -------------------------------------------------------------
expect 2 "$WV" comit ck a.safetensors
one_line_error "unknown command 'comit'; did you mean 'commit'?"
expect 2 "$WV" help chekout
one_line_error "did you mean 'checkout'?"
expect 2 "$WV" frobnicate
one_line_error "unknown command 'frobnicate'"
! grep -q "did you mean" "$tmp/err" || fail "a far word got a suggestion: $(cat "$tmp/err")"
expect 2 "$WV" convert a.safetensors o.safetensors --dtpye F16
one_line_error "did you mean '--dtype'?"
expect 2 "$WV" checkout ck -o o.safetensors --verfy-signer x.pub
one_line_error "did you mean '--verify-signer'?"
expect 2 "$WV" gc ck --dry
one_line_error "did you mean '--dry-run'?"
expect 2 "$WV" log ck -all
one_line_error "did you mean '--all'?"
expect 2 "$WV" key ad ck
one_line_error "unknown subcommand 'ad'; did you mean 'add'?"
expect 2 "$WV" trust lst ck
one_line_error "did you mean 'list'?"
expect 2 "$WV" branch ck --delet x
one_line_error "did you mean '--delete'?"
expect 2 "$WV" commit ck a.safetensors --bogus-thing
one_line_error "unknown option '--bogus-thing'"

# ---- a repository that does not exist; a repository given to inspect ------------
for c in "commit nosuchrepo a.safetensors" "log nosuchrepo" "checkout nosuchrepo -o o.safetensors" "show nosuchrepo@main"; do
    expect 3 "$WV" $c
    one_line_error "nosuchrepo: no repository here.*create one with 'wv init nosuchrepo'"
done
[ ! -e nosuchrepo ] || fail "a failed command created the repository"
expect 3 "$WV" inspect ck
one_line_error "ck: a weightvault repository, not a weights file: see 'wv show ck'"
expect 3 "$WV" inspect ck@run2
one_line_error "see 'wv show ck@run2'"

# ---- messages name the output ---------------------------------------------------
expect 1 "$WV" convert a.safetensors out.npz --dtype BF16
one_line_error "out.npz: cannot write it as npz: .*bfloat16"
[ ! -e out.npz ] || fail "a refused convert left out.npz"

# ---- dtype aliases ----------------------------------------------------------------
for pair in f16:F16 FP16:F16 half:F16 float16:F16 bf16:BF16 BFloat16:BF16 \
    f32:F32 fp32:F32 float:F32 Float32:F32 F16:F16; do
    alias=${pair%%:*} want=${pair##*:}
    expect 0 "$WV" convert a.safetensors "d-$alias.safetensors" --dtype "$alias" -q
    expect 0 "$WV" inspect --json "d-$alias.safetensors"
    pyjson "all(t['dtype'] == '$want' for t in d['tensors'])"
done
expect 0 "$WV" checkout ck -o d-co.safetensors --dtype bfloat16 -q
expect 0 "$WV" inspect --json d-co.safetensors
pyjson "all(t['dtype'] == 'BF16' for t in d['tensors'])"
expect 2 "$WV" convert a.safetensors x.safetensors --dtype int8
one_line_error "must be F32, F16 or BF16"
expect 2 "$WV" convert a.safetensors x.safetensors --dtype f17
one_line_error "not 'f17'"

# ---- the summary line, --quiet -------------------------------------------------------
expect 0 "$WV" convert a.safetensors s.npz
[ ! -s "$tmp/out" ] || fail "convert wrote to stdout: $(cat "$tmp/out")"
one_line_error "^wv: wrote s.npz (npz): 5 tensors, .* in [0-9.]* s$"
expect 0 "$WV" convert a.safetensors s2.npz --quiet
[ ! -s "$tmp/err" ] && [ ! -s "$tmp/out" ] || fail "convert --quiet printed: $(cat "$tmp/err" "$tmp/out")"
expect 0 "$WV" commit ck a.safetensors -m again
grep -qx '[0-9a-f]\{64\}' "$tmp/out" && [ "$(wc -l <"$tmp/out")" = 1 ] || fail "commit stdout is not the id alone: $(cat "$tmp/out")"
id=$(cat "$tmp/out")
one_line_error "^wv: committed ${id:0:12} to ck@main: 5 tensors, .* in [0-9.]* s$"
expect 0 "$WV" commit ck@run2 b.safetensors -q
grep -qx '[0-9a-f]\{64\}' "$tmp/out" || fail "commit -q stdout: $(cat "$tmp/out")"
[ ! -s "$tmp/err" ] || fail "commit -q wrote to stderr: $(cat "$tmp/err")"
expect 0 "$WV" checkout ck@run2 -o co.pth
one_line_error "^wv: wrote co.pth (pth): 5 tensors, .* in [0-9.]* s$"
same_tensors b.safetensors co.pth
expect 0 "$WV" checkout ck -o co2.pth -q
[ ! -s "$tmp/err" ] || fail "checkout -q wrote to stderr: $(cat "$tmp/err")"

# ---- opaque dtypes in HDF5 ----------------------------------------------------------
expect 0 "$WV" convert a.safetensors o.h5 --dtype bf16
grep -q "^wv: warning: o.h5: HDF5 has no BF16 type: 5 tensors .*Keras and h5py see an opaque type" "$tmp/err" ||
    fail "no opaque-type warning: $(cat "$tmp/err")"
expect 0 "$WV" checkout ck -o o.weights.h5 --dtype BF16
grep -q "warning: o.weights.h5: .*opaque type" "$tmp/err" || fail "checkout: no opaque-type warning: $(cat "$tmp/err")"
expect 0 "$WV" convert a.safetensors o32.h5
! grep -q "opaque" "$tmp/err" || fail "F32 to h5 warned: $(cat "$tmp/err")"
# a.safetensors is no Keras model: the file gets no Keras layout, and says so
grep -q "^wv: warning: o32.h5: the source is not a Keras model" "$tmp/err" ||
    fail "F32 to h5: no layout warning: $(cat "$tmp/err")"

# ---- progress bar: on a terminal, for a large set; never otherwise ------------------------
make_st "$tmp/big.safetensors" 3 40
expect 0 "$WV" convert big.safetensors big.npz
! grep -q $'\r' "$tmp/err" || fail "a progress bar without a terminal"
if command -v script >/dev/null 2>&1; then
    for c in "convert big.safetensors big2.npz" "commit ck big.safetensors" "checkout ck -o big3.safetensors"; do
        script -qec "'$WV' $c" /dev/null >"$tmp/tty" 2>&1 || fail "on a terminal: wv $c failed: $(cat "$tmp/tty")"
        grep -q "\] 100%  40.0 MiB / 40.0 MiB" "$tmp/tty" || fail "wv $c: no progress bar on a terminal: $(head -c 400 "$tmp/tty")"
        script -qec "'$WV' $c --quiet" /dev/null >"$tmp/tty" 2>&1 || fail "wv $c --quiet failed"
        ! grep -q "100%" "$tmp/tty" || fail "wv $c --quiet: a progress bar"
    done
    script -qec "'$WV' convert a.safetensors small.npz" /dev/null >"$tmp/tty" 2>&1
    ! grep -q "100%" "$tmp/tty" || fail "a progress bar for a small set"
else
    echo "newcomer.sh: no 'script' command; terminal checks skipped"
fi

# ---- trusted keys: unsigned commits refused -------------------------------------------------
expect 0 "$WV" init vault
expect 0 "$WV" commit vault a.safetensors -q
expect 0 "$WV" keygen -o alice
expect 0 "$WV" keygen -o mallory
expect 0 "$WV" trust add vault alice.pub
expect 0 "$WV" log vault --json
before=$(cat "$tmp/out")
expect 6 "$WV" commit vault b.safetensors -m unsigned
one_line_error "trusts 1 key .*--sign"
[ ! -s "$tmp/out" ] || fail "a refused commit printed an id"
expect 6 "$WV" commit vault b.safetensors --sign mallory.key
one_line_error "not one of the repository's 1 trusted keys"
expect 0 "$WV" log vault --json
[ "$(cat "$tmp/out")" = "$before" ] || fail "a refused commit moved the branch"
expect 0 "$WV" commit vault b.safetensors --sign alice.key -q
expect 0 "$WV" checkout vault -o v.safetensors -q
same_tensors b.safetensors v.safetensors

finish
