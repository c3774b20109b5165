#!/usr/bin/env bash
# repo_rollback.sh -- in an encrypted repository a store writer without the
# key can neither strip the trusted-key list nor roll refs back unnoticed
# (issue 14, item 2; docs/repo-format.md 14.10):
#   - delete trust/* and put back the older sealed ref of an unsigned
#     checkpoint: checkout, log and verify refuse (exit 6 / 1, "rolled
#     back"); --allow-rollback and WV_ALLOW_ROLLBACK=1 accept it;
#   - the current ref kept but trust/* deleted (refs/trust too): refused,
#     also by a client that never saw the repository (the ref carries the
#     trust-list version);
#   - an older trust list put back whole (refs/trust and trust/* of then):
#     refused by a client that saw the newer one;
#   - a tag's old value put back is refused the same way;
#   - trust remove is a legitimate change: checkouts follow it;
#   - push to a clone and back keeps both usable (refs are re-sealed with
#     the destination's counter), and a forced push backwards is not taken
#     for a rollback by a client of the destination.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export WV_STATE_DIR=$tmp/state
export WV_PASSPHRASE="no rollbacks"
unset WV_ALLOW_ROLLBACK
make_st "$tmp/a.safetensors" 1 0.1
make_st "$tmp/b.safetensors" 2 0.1
make_st "$tmp/c.safetensors" 3 0.1
R=$tmp/r
# verify_sound: verify finds only the one checkpoint committed unsigned
# before keys were trusted (which it rightly reports), nothing else
verify_sound() {
    expect 1 "$WV" verify "$R"
    has "^FAILED: 1 problem"
    has "is not signed, and the repository trusts only signed"
}
expect 0 "$WV" init "$R" --encrypt
expect 0 "$WV" commit "$R" "$tmp/a.safetensors" -m unsigned-a
expect 0 "$WV" tag "$R" v1
cp -a "$R/refs" "$tmp/refs.1"              # main at a, no trust list yet
expect 0 "$WV" keygen -o "$tmp/k1"
expect 0 "$WV" keygen -o "$tmp/k2"
expect 0 "$WV" trust add "$R" "$tmp/k1.pub"
[ -f "$R/refs/trust" ] || fail "trust add wrote no sealed trust list"
expect 0 "$WV" commit "$R" "$tmp/b.safetensors" -m signed-b --sign "$tmp/k1.key"
expect 0 "$WV" checkout "$R" -o "$tmp/out.safetensors"
same_tensors "$tmp/b.safetensors" "$tmp/out.safetensors"
verify_sound
cp -a "$R/refs" "$tmp/refs.2"; cp -a "$R/trust" "$tmp/trust.2"
main=$(cd "$R" && ls refs/heads | head -1)
[ "$(ls "$R/refs/heads" | wc -l)" = 1 ] || fail "expected one branch"

# --- the attack of the issue: trust/* deleted, the older main put back ---
rm -rf "${R:?}/trust"
cp "$tmp/refs.1/heads/$main" "$R/refs/heads/$main"
expect 6 "$WV" checkout "$R" -o "$tmp/x.safetensors"
one_line_error "rolled back"
[ ! -e "$tmp/x.safetensors" ] || fail "a refused checkout wrote a file"
expect 6 "$WV" log "$R"
one_line_error "rolled back"
expect 1 "$WV" verify "$R"
has "rolled back"
has "^FAILED"
# the explicit override accepts what the store holds
expect 0 "$WV" checkout "$R" -o "$tmp/x.safetensors" --allow-rollback
same_tensors "$tmp/a.safetensors" "$tmp/x.safetensors"
rm -f "$tmp/x.safetensors"
expect 0 env WV_ALLOW_ROLLBACK=1 "$WV" checkout "$R" -o "$tmp/x.safetensors"
same_tensors "$tmp/a.safetensors" "$tmp/x.safetensors"
expect 0 "$WV" log "$R" --allow-rollback
has unsigned-a
# ... and does not lower what the client remembers
expect 6 "$WV" checkout "$R" -o "$tmp/y.safetensors"

# --- main kept current, trust/* deleted: the sealed list disagrees ---
cp "$tmp/refs.2/heads/$main" "$R/refs/heads/$main"
expect 6 "$WV" checkout "$R" -o "$tmp/y.safetensors"
one_line_error "trust/ (0) are not those of the sealed trust list"
expect 1 "$WV" verify "$R"
has "not those of the sealed trust list"
# also refs/trust deleted: this client saw it; a new client learns from
# the ref that there was one
rm -f "$R/refs/trust"
expect 6 "$WV" checkout "$R" -o "$tmp/y.safetensors"
one_line_error "sealed trust list refs/trust is missing"
expect 6 env WV_STATE_DIR="$tmp/fresh1" "$WV" checkout "$R" -o "$tmp/y.safetensors"
one_line_error "sealed trust list refs/trust is missing"
expect 1 env WV_STATE_DIR="$tmp/fresh2" "$WV" verify "$R"
has "refs/trust is missing"
# everything put back: fine again
cp -a "$tmp/trust.2" "$R/trust"; cp "$tmp/refs.2/trust" "$R/refs/trust"
expect 0 "$WV" checkout "$R" -o "$tmp/y.safetensors"
same_tensors "$tmp/b.safetensors" "$tmp/y.safetensors"
verify_sound

# --- an older trust list put back whole ---
expect 0 "$WV" trust add "$R" "$tmp/k2.pub"
expect 0 "$WV" checkout "$R" -o "$tmp/y.safetensors"
rm -rf "${R:?}/trust"; cp -a "$tmp/trust.2" "$R/trust"
cp "$tmp/refs.2/trust" "$R/refs/trust"
expect 6 "$WV" checkout "$R" -o "$tmp/y.safetensors"
one_line_error "trust list refs/trust was rolled back"
# a client that never saw it learns from main, sealed under the newer list
expect 6 env WV_STATE_DIR="$tmp/fresh3" "$WV" checkout "$R" -o "$tmp/y.safetensors"
one_line_error "trust list refs/trust was rolled back"
expect 0 "$WV" checkout "$R" -o "$tmp/y.safetensors" --allow-rollback
# restore the newest state (k1 and k2 trusted) through the key holder
expect 0 "$WV" trust add "$R" "$tmp/k2.pub"
expect 0 "$WV" checkout "$R" -o "$tmp/y.safetensors"
verify_sound

# --- a tag put back older: tags carry counters too ---
tag=$(cd "$R" && ls refs/tags | head -1)
expect 0 "$WV" tag "$R" -d v1
expect 0 "$WV" tag "$R" v1
expect 0 "$WV" show "$R@v1"
cp "$tmp/refs.1/tags/$tag" "$R/refs/tags/$tag"
expect 6 "$WV" show "$R@v1"
one_line_error "rolled back"
expect 1 "$WV" verify "$R"
expect 0 "$WV" show "$R@v1" --allow-rollback
expect 0 "$WV" tag "$R" -d v1 --allow-rollback

# --- trust remove is legitimate: an unsigned commit is then accepted ---
for id in $("$WV" trust list "$R" | awk '{print $1}'); do
    expect 0 "$WV" trust remove "$R" "$id"
done
expect 0 "$WV" commit "$R" "$tmp/c.safetensors" -m unsigned-c
expect 0 "$WV" checkout "$R" -o "$tmp/z.safetensors"
same_tensors "$tmp/c.safetensors" "$tmp/z.safetensors"
expect 0 "$WV" verify "$R"
# but the emptied list is sealed too: an older one cannot come back
cp "$tmp/refs.2/trust" "$R/refs/trust"; cp -a "$tmp/trust.2/." "$R/trust/"
expect 6 "$WV" checkout "$R" -o "$tmp/z.safetensors"
one_line_error "rolled back"
expect 0 "$WV" trust add "$R" "$tmp/k1.pub"
expect 0 "$WV" trust remove "$R" "$("$WV" trust list "$R" | awk '{print $1}' | head -1)"
expect 0 "$WV" verify "$R"

# --- clones: push and pull re-seal refs for the destination ---
expect 0 "$WV" clone "$R" "$tmp/c"
expect 0 "$WV" commit "$tmp/c" "$tmp/a.safetensors" -m in-clone
expect 0 "$WV" push "$tmp/c" "$R"
expect 0 "$WV" checkout "$R" -o "$tmp/w.safetensors"
same_tensors "$tmp/a.safetensors" "$tmp/w.safetensors"
expect 0 "$WV" pull "$R" "$tmp/c"
expect 0 "$WV" verify "$tmp/c"
# a forced push replaces R's main by a diverged one whose ref in the clone
# was written earlier: a new write there, not a rollback
expect 0 "$WV" commit "$tmp/c" "$tmp/c.safetensors" -m diverged-in-clone
sleep 1
expect 0 "$WV" commit "$R" "$tmp/b.safetensors" -m newer-in-r
expect 0 "$WV" checkout "$R" -o "$tmp/w.safetensors"
expect 5 "$WV" push "$tmp/c" "$R"
expect 0 "$WV" push "$tmp/c" "$R" --force
expect 0 "$WV" checkout "$R" -o "$tmp/w.safetensors"
same_tensors "$tmp/c.safetensors" "$tmp/w.safetensors"
expect 0 "$WV" verify "$R"
# the state file is private and keyed by repository id and location
n=$(ls "$WV_STATE_DIR" | grep -vc '\.lock$')
[ "$n" -ge 2 ] || fail "expected a state file per repository location, got: $(ls "$WV_STATE_DIR")"
[ "$(stat -c %a "$(ls -d "$WV_STATE_DIR"/* | grep -v '\.lock$' | head -1)")" = 600 ] ||
    fail "state file not private"
# a damaged state file is an error naming it
f=$(ls -d "$WV_STATE_DIR"/* | grep -v '\.lock$' | head -1)
printf 'garbage\n' >"$f"
"$WV" log "$R" >/dev/null 2>"$tmp/e1"; r1=$?
"$WV" log "$tmp/c" >/dev/null 2>"$tmp/e2"; r2=$?
[ $r1 = 1 ] || [ $r2 = 1 ] || fail "a damaged state file was not refused ($r1, $r2)"
cat "$tmp/e1" "$tmp/e2" | grep -q "client state file $f is not one" ||
    fail "the error does not name the state file: $(cat "$tmp/e1" "$tmp/e2")"
finish
