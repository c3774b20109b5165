#!/usr/bin/env bash
# repo_nocrypto.sh -- a library built with WV_WITH_CRYPTO=OFF (no
# libsodium): every call that needs cryptography fails with exit 1
# (WV_UNSUPPORTED) and one line naming the option, and plain repositories
# still work fully:
#   - init --encrypt, opening an encrypted repository, keygen (signing and secret keys), trust add/list, commit --sign,
#     checkout --verify-signer: refused, "WV_WITH_CRYPTO=OFF";
#   - a plain repository: init, commit twice, log, checkout (same
#     tensors), verify, gc.
# Skipped (exit 77) in a build with encryption (WV_HAVE_CRYPTO=1), whose
# suites (label crypto) test those calls.
# Env: WV, PYTHON, WV_HAVE_CRYPTO.
set -u
. "$(dirname "$0")/../harness/cli.sh"
if [ "${WV_HAVE_CRYPTO:-1}" != 0 ]; then
    echo "SKIP: built with encryption (WV_WITH_CRYPTO=ON)"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
MSG='built without encryption support (WV_WITH_CRYPTO=OFF)'
export WV_PASSPHRASE="not used"
make_st "$tmp/a.safetensors" 3 0.1
make_st "$tmp/b.safetensors" 3 0.2

# ---- what needs cryptography: refused, naming the option -------------------
expect 1 "$WV" init "$tmp/enc0" --encrypt
one_line_error "$MSG"
[ -e "$tmp/enc0/config" ] && fail "init --encrypt left a config"
# An encrypted repository (its config as a build with encryption wrote it).
mkdir -p "$tmp/enc/keys"
printf '%s\n' '{"weightvault_repo": 2, "encryption": "xchacha20poly1305", "sealed": "8BsSB2D9hBrPIf1ftDdaNJhjvhJ9Vp8fT0uycoo28sQ9_4vHUkM3M1wD1-B4nA093B-F11QJ9nBCbPIehragwaRkywdUHPFC0MW1jTZhV9h8VuaQrpL3eBVQg3W8yiOyT759vuiyIxiuYoH368gkL1KRPiN4H4EvttT1clupYoXBw6jqsx8f8y3ZT3uMuNN7l8TwIA"}' >"$tmp/enc/config"
expect 1 "$WV" log "$tmp/enc"
one_line_error "$MSG"
one_line_error "is encrypted"
expect 1 "$WV" keygen -o "$tmp/alice"
one_line_error "$MSG"
[ -e "$tmp/alice.key" ] && fail "keygen wrote a key without libsodium"
expect 1 "$WV" keygen --secret -o "$tmp/raw.key"
one_line_error "$MSG"

R=$tmp/plain
expect 0 "$WV" init "$R"
# (wv key list/add on a plain repository say it is not encrypted, as in
# any build; wv_repo_key_* return WV_UNSUPPORTED.)
expect 2 "$WV" key list "$R"
one_line_error "not encrypted"
# A public key file as wv keygen writes one (made by hand: no keygen here).
printf 'wv-ed25519-public %064d alice\n' 0 >"$tmp/alice.pub"
printf 'wv-ed25519-secret %0128d\n' 0 >"$tmp/alice.key"
expect 1 "$WV" trust add "$R" "$tmp/alice.pub"
one_line_error "$MSG"
[ -n "$(ls "$R/trust" 2>/dev/null)" ] && fail "trust add wrote a trusted key"
expect 1 "$WV" trust list "$R"
one_line_error "$MSG"
expect 1 "$WV" commit "$R" "$tmp/a.safetensors" -m signed --sign "$tmp/alice.key"
one_line_error "$MSG"

# ---- a plain repository works fully ------------------------------------------
expect 0 "$WV" commit "$R" "$tmp/a.safetensors" -m one
expect 0 "$WV" commit "$R" "$tmp/b.safetensors" -m two
expect 0 "$WV" log "$R"
has "one"
has "two"
expect 0 "$WV" checkout "$R" -o "$tmp/out.safetensors"
same_tensors "$tmp/b.safetensors" "$tmp/out.safetensors"
expect 1 "$WV" checkout "$R" -o "$tmp/v.safetensors" --verify-signer "$tmp/alice.pub"
one_line_error "$MSG"
expect 0 "$WV" verify "$R"
expect 0 "$WV" gc "$R"
expect 0 "$WV" checkout "$R" -o "$tmp/two.safetensors"
same_tensors "$tmp/b.safetensors" "$tmp/two.safetensors"
finish
