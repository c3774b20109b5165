#!/usr/bin/env bash
# repo_crypt.sh -- encrypted repositories, key slots and signed checkpoints
# through the wv command:
#   - init --encrypt without any secret (no terminal): exit 6 and the
#     message naming the three ways to give one;
#   - nothing readable in the store: every object is fetched and searched
#     for the tensor names, metadata, message, branch and tag names and
#     64-byte samples of the tensor data (compression zstd-bg and none);
#     the same search finds them in a plain repository;
#   - wrong passphrase or key file: exit 6, one line saying "wrong key",
#     the secret never printed;
#   - key add (passphrase and raw key file) / list / remove: the others
#     keep working, the removed secret is refused, the last slot stays;
#     removals reach a clone with push, and one made in the clone stays;
#   - signatures on an encrypted and a plain repository: keygen, commit
#     --sign, checkout --verify-signer, trusted keys; unsigned, foreign
#     and altered checkpoints refused with exit 6;
#   - one byte flipped in a chunk, a manifest, a ref, an index object and
#     a pack trailer: refused, naming what failed;
#   - the Python package opening an encrypted repository.
# The repositories live under ${WV_TEST_REPO_BASE:-a temporary directory}:
# a directory, or s3://BUCKET/PREFIX (objects are then fetched and altered
# with the aws command and $AWS_ENDPOINT_URL).
# Env: WV, PYTHON, WV_SRC; optional WV_TEST_REPO_BASE, AWS_*.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
BASE=${WV_TEST_REPO_BASE:-$tmp}
RUN=crypt-$(date +%H%M%S)-$$
case $BASE in
s3://*) ;;
/*) ;;
*) echo "SKIP: WV_TEST_REPO_BASE must be a directory or s3:// (got $BASE)"
   exit 77 ;;
esac
aws_() { /usr/bin/aws ${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"} "$@"; }
cleanup() {
    case $BASE in s3://*) aws_ s3 rm --recursive "$BASE/$RUN" >/dev/null 2>&1 ;; esac
    rm -rf "$tmp"
}
trap cleanup EXIT

# ---- objects of a repository, wherever it is ---------------------------------
# objs REPO PREFIX: its keys under PREFIX, sorted (ref locks and temporary
# files excluded). get/put REPO KEY FILE.
objs() {
    case $1 in
    s3://*) aws_ s3 ls --recursive "$1/$2" | awk '{print $4}' |
        sed "s|^${1#s3://*/}/||" | grep -v '\.lock$' | sort ;;
    *) (cd "$1" && find "$2" -type f ! -name '.*' ! -name '*.lock' | sort) ;;
    esac
}
get() { case $1 in s3://*) aws_ s3 cp --quiet "$1/$2" "$3" ;; *) cp "$1/$2" "$3" ;; esac; }
put() {
    case $1 in
    s3://*) aws_ s3 cp --quiet "$3" "$1/$2" ;;
    *) mkdir -p "$(dirname "$1/$2")" && cp "$3" "$1/$2" ;;
    esac
}
# fetch REPO DIR: every object into DIR
fetch() {
    case $1 in
    s3://*) aws_ s3 sync --quiet "$1" "$2" ;;
    *) cp -r "$1/." "$2" ;;
    esac
}
# flip REPO KEY OFFSET: flip the low bit of one byte (negative: from the end)
flip() {
    get "$1" "$2" "$tmp/obj" || { fail "cannot fetch $2"; return; }
    "$PYTHON" - "$tmp/obj" "$3" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read())
b[off if off >= 0 else len(b) + off] ^= 1
open(p, "wb").write(bytes(b))
PY
    put "$1" "$2" "$tmp/obj" || fail "cannot store $2"
}

# ---- inputs ------------------------------------------------------------------
"$PYTHON" - "$tmp" <<'PY' || { echo "cannot generate inputs"; exit 1; }
import sys
import numpy as np
from stwrite import write_st as st
d = sys.argv[1]
rng = np.random.default_rng(6)
big = rng.standard_normal(200000).astype(np.float32)   # incompressible-ish
st(d + "/a.safetensors",
   {"zebra_secret.encoder.weight": big,
    "zebra_secret.decoder.bias": rng.standard_normal(3000).astype(np.float32)},
   {"zebra_project": "falcon_confidential_run"})
st(d + "/b.safetensors",
   {"zebra_secret.encoder.weight": big,
    "zebra_secret.decoder.bias": np.ones(3000, np.float32)})
PY

case $BASE in /*) mkdir -p "$BASE/$RUN" ;; esac
export WV_PASSPHRASE="correct horse battery staple"
R=$BASE/$RUN/enc
P=$BASE/$RUN/plain
N=$BASE/$RUN/none

# ---- no secret anywhere, no terminal -----------------------------------------
expect 6 env -u WV_PASSPHRASE -u WV_KEY_FILE setsid -w "$WV" init "$R" --encrypt </dev/null
one_line_error "repository is encrypted: give a passphrase (WV_PASSPHRASE, --key-file or a terminal)"
expect 0 "$WV" init "$R" --encrypt --label alice --chunk-size 64KiB
has "encrypted"
expect 2 "$WV" init "$tmp/x" --label nope
expect 6 env -u WV_PASSPHRASE setsid -w "$WV" log "$R" </dev/null
one_line_error "repository is encrypted: give a passphrase"

# ---- the passphrase typed at a terminal (script(1) gives a pty) ---------------
if command -v script >/dev/null && [ "${BASE#s3://}" = "$BASE" ]; then
    T=$BASE/$RUN/tty
    (sleep 1; printf 'typed words\n'; sleep 0.5; printf 'typed words\n') |
        env -u WV_PASSPHRASE script -qec "'$WV' init '$T' --encrypt" /dev/null >"$tmp/tty" 2>&1
    grep -q "initialised an empty encrypted" "$tmp/tty" || fail "init with a typed passphrase: $(cat "$tmp/tty")"
    (sleep 1; printf 'typed words\n') |
        env -u WV_PASSPHRASE script -qec "'$WV' log '$T'" /dev/null >"$tmp/tty" 2>&1
    grep -q "Passphrase for" "$tmp/tty" || fail "no prompt: $(cat "$tmp/tty")"
    grep -q "no branch, tag or checkpoint named 'main'" "$tmp/tty" || fail "log with a typed passphrase: $(cat "$tmp/tty")"
    (sleep 1; printf 'other words\n') |
        env -u WV_PASSPHRASE script -qec "'$WV' log '$T'" /dev/null >"$tmp/tty" 2>&1
    grep -q "wrong key" "$tmp/tty" || fail "a wrong typed passphrase: $(cat "$tmp/tty")"
    grep -q "words" "$tmp/tty" && fail "the typed passphrase was echoed: $(cat "$tmp/tty")"
fi

# ---- commits, history, checkout ----------------------------------------------
expect 0 "$WV" commit "$R@zebra_branch_secret" "$tmp/a.safetensors" -m "zebra_message_about_the_run" --meta step=100
id1=$(cat "$tmp/out")
expect 0 "$WV" commit "$R" "$tmp/a.safetensors" -m "zebra_message_about_the_run"
expect 0 "$WV" commit "$R" "$tmp/b.safetensors" -m second
id2=$(cat "$tmp/out")
expect 0 "$WV" tag "$R" zebra_tag_secret "$id1"
expect 0 "$WV" log "$R"
has "zebra_message_about_the_run"
expect 0 "$WV" branch "$R" --list
has "zebra_branch_secret"
expect 0 "$WV" tag "$R" --list
has "zebra_tag_secret"
expect 0 "$WV" show "$R@zebra_tag_secret"
has "zebra_secret.encoder.weight"
has "falcon_confidential_run"
expect 0 "$WV" checkout "$R@zebra_tag_secret" -o "$tmp/a2.safetensors"
same_tensors "$tmp/a.safetensors" "$tmp/a2.safetensors"
expect 0 "$WV" checkout "$R" -o "$tmp/b2.safetensors"
same_tensors "$tmp/b.safetensors" "$tmp/b2.safetensors"
expect 0 "$WV" diff "$R" "$id1" "$id2"
has "zebra_secret.decoder.bias"
expect 0 "$WV" verify "$R"

# ---- nothing readable in the store -------------------------------------------
expect 0 "$WV" init "$N" --encrypt --compression none --chunk-size 64KiB
expect 0 "$WV" commit "$N@zebra_branch_secret" "$tmp/a.safetensors" -m "zebra_message_about_the_run"
expect 0 "$WV" tag "$N" zebra_tag_secret zebra_branch_secret
expect 0 "$WV" init "$P" --compression none --chunk-size 64KiB
expect 0 "$WV" commit "$P@zebra_branch_secret" "$tmp/a.safetensors" -m "zebra_message_about_the_run"
expect 0 "$WV" tag "$P" zebra_tag_secret zebra_branch_secret
scan() { # scan REPO: number of secrets found in its stored bytes
    rm -rf "$tmp/scan" && mkdir "$tmp/scan" && fetch "$1" "$tmp/scan"
    "$PYTHON" - "$tmp/scan" "$tmp/a.safetensors" <<'PY'
import json, os, struct, sys
root, src = sys.argv[1], sys.argv[2]
blob = bytearray()
files = 0
for dp, dn, fn in os.walk(root):
    for f in fn:
        blob += open(os.path.join(dp, f), "rb").read() + b"\0"
        files += 1
raw = open(src, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
# (no needle shorter than 8 bytes: short ones turn up in random bytes)
needles = [b"zebra_message_about", b"zebra_branch_secret", b"zebra_tag_secret",
           b"zebra_project", b"falcon_confidential_run", b'"step": "100"',
           b'"dtype": "F32"']
for name, t in hdr.items():
    if name == "__metadata__":
        continue
    needles.append(name.encode())
    a, b = t["data_offsets"]
    data = raw[8 + n + a:8 + n + b]
    for off in range(0, len(data) - 64, max(64, len(data) // 40)):
        needles.append(data[off:off + 64])
hits = [x[:40] for x in needles if bytes(x) in blob]
print(len(hits), files, len(needles))
for h in hits[:5]:
    print("  found:", h, file=sys.stderr)
PY
}
for repo in "$R" "$N"; do
    out=$(scan "$repo")
    set -- $out
    [ "${1:-x}" = 0 ] || fail "$repo: $1 secrets readable in the store ($out)"
    [ "${2:-0}" -ge 6 ] || fail "$repo: scanned only ${2:-0} objects"
done
out=$(scan "$P" 2>/dev/null)
set -- $out
[ "${1:-0}" -ge 10 ] || fail "the scan finds nothing even in a plain repository ($out)"

# ---- wrong secrets -------------------------------------------------------------
expect 6 env WV_PASSPHRASE="not the passphrase" "$WV" log "$R"
one_line_error "wrong key"
grep -q "not the passphrase" "$tmp/err" && fail "the passphrase was printed"
expect 6 env WV_PASSPHRASE="not the passphrase" "$WV" checkout "$R" -o "$tmp/x.safetensors"
one_line_error "wrong key"
[ ! -e "$tmp/x.safetensors" ] || fail "a wrong key wrote output"
echo "not the passphrase" >"$tmp/wrong.txt"
expect 6 "$WV" log "$R" --key-file "$tmp/wrong.txt"
one_line_error "wrong key"
grep -q "wrong.txt" "$tmp/err" || fail "the message does not name the key file"
expect 3 "$WV" log "$R" --key-file "$tmp/missing.key"
one_line_error "missing.key"
expect 2 "$WV" log "$R" --key-file

# ---- key slots -------------------------------------------------------------------
expect 0 "$WV" key list "$R"
has "alice"
expect 0 "$WV" keygen --secret -o "$tmp/ci.key"
[ "$(stat -c %a "$tmp/ci.key")" = 600 ] || fail "secret key file mode"
expect 1 "$WV" keygen --secret -o "$tmp/ci.key"
expect 0 "$WV" key add "$R" --new-key-file "$tmp/ci.key" --label ci
ci_slot=$(cat "$tmp/out")
expect 0 env WV_NEW_PASSPHRASE="bob's own words" "$WV" key add "$R" --label bob
expect 0 "$WV" key list "$R"
[ "$(wc -l <"$tmp/out")" = 3 ] || fail "three slots expected: $(cat "$tmp/out")"
grep -q "^\* .*alice" "$tmp/out" || fail "the current slot is not marked: $(cat "$tmp/out")"
grep -q "key file.*ci" "$tmp/out" || fail "ci slot: $(cat "$tmp/out")"
expect 0 "$WV" clone "$R" "$tmp/kc"
expect 0 env -u WV_PASSPHRASE "$WV" checkout "$R" -o "$tmp/k.safetensors" --key-file "$tmp/ci.key"
same_tensors "$tmp/b.safetensors" "$tmp/k.safetensors"
expect 0 env WV_PASSPHRASE="bob's own words" "$WV" log "$R"
expect 0 env -u WV_PASSPHRASE WV_KEY_FILE="$tmp/ci.key" "$WV" log "$R"
alice=$(grep alice <("$WV" key list "$R") | awk '{print $2}')
expect 0 env WV_PASSPHRASE="bob's own words" "$WV" key remove "$R" "$alice"
expect 6 "$WV" log "$R"
one_line_error "wrong key"
export WV_PASSPHRASE="bob's own words"
expect 0 "$WV" log "$R"
expect 0 "$WV" key remove "$R" "$ci_slot"
expect 2 "$WV" key remove "$R" "$(grep bob <("$WV" key list "$R") | awk '{print $2}')"
one_line_error "last one"
expect 3 "$WV" key remove "$R" ffff
expect 0 "$WV" key list "$R"
[ "$(wc -l <"$tmp/out")" = 1 ] || fail "one slot expected: $(cat "$tmp/out")"
# the removals reach the clone with the next push (revoked/ markers): the
# removed passphrase and key file stop opening it too
expect 0 env WV_PASSPHRASE="correct horse battery staple" "$WV" log "$tmp/kc"
expect 0 "$WV" push "$R" "$tmp/kc"
expect 0 "$WV" key list "$tmp/kc"
[ "$(wc -l <"$tmp/out")" = 1 ] || fail "one slot expected in the clone: $(cat "$tmp/out")"
expect 6 env WV_PASSPHRASE="correct horse battery staple" "$WV" log "$tmp/kc"
one_line_error "wrong key"
expect 6 env -u WV_PASSPHRASE "$WV" log "$tmp/kc" --key-file "$tmp/ci.key"
expect 0 "$WV" log "$tmp/kc"
expect 0 "$WV" push "$R" "$tmp/kc"
# a slot removed in the clone stays removed there when the origin, which
# still has it, pushes again
expect 0 env WV_NEW_PASSPHRASE="dave's words" "$WV" key add "$R" --label dave
expect 0 "$WV" push "$R" "$tmp/kc"
expect 0 env WV_PASSPHRASE="dave's words" "$WV" log "$tmp/kc"
expect 0 "$WV" key remove "$tmp/kc" "$(grep dave <("$WV" key list "$tmp/kc") | sed 's/^\* //' | awk '{print $1}')"
expect 0 "$WV" push "$R" "$tmp/kc"
expect 6 env WV_PASSPHRASE="dave's words" "$WV" log "$tmp/kc"
one_line_error "wrong key"
expect 0 env WV_PASSPHRASE="dave's words" "$WV" log "$R"
expect 2 "$WV" key list "$P"
one_line_error "not encrypted"

# ---- signatures --------------------------------------------------------------------
expect 0 "$WV" keygen -o "$tmp/alice"
[ "$(stat -c %a "$tmp/alice.key")" = 600 ] || fail "signing key mode"
grep -q "^wv-ed25519-public [0-9a-f]\{64\}" "$tmp/alice.pub" || fail "public key file"
expect 0 "$WV" keygen -o "$tmp/mallory"
expect 1 "$WV" keygen -o "$tmp/alice"
for repo in "$R" "$P"; do
    expect 0 "$WV" commit "$repo" "$tmp/a.safetensors" -m signed --sign "$tmp/alice.key"
    sid=$(cat "$tmp/out")
    akey=$(awk '{print $2}' "$tmp/alice.pub")
    expect 0 "$WV" show "$repo@$sid"
    has "^signer:     $akey\$"
    expect 0 "$WV" show "$repo@$sid" --json
    has "\"message\": \"signed\", \"signer\": \"$akey\""
    expect 0 "$WV" checkout "$repo@$sid" -o "$tmp/s.safetensors" --verify-signer "$tmp/alice.pub"
    same_tensors "$tmp/a.safetensors" "$tmp/s.safetensors"
    expect 6 "$WV" checkout "$repo@$sid" -o "$tmp/s.safetensors" --verify-signer "$tmp/mallory.pub"
    one_line_error "not by key"
    expect 0 "$WV" commit "$repo" "$tmp/b.safetensors" -m unsigned
    uid=$(cat "$tmp/out")
    expect 0 "$WV" show "$repo@$uid"
    ! grep -q "signer" "$tmp/out" || fail "show gives an unsigned checkpoint a signer: $(cat "$tmp/out")"
    expect 0 "$WV" show "$repo@$uid" --json
    has '"signer": null'
    expect 6 "$WV" checkout "$repo@$uid" -o "$tmp/s.safetensors" --verify-signer "$tmp/alice.pub"
    one_line_error "is not signed"
    expect 1 "$WV" commit "$repo" "$tmp/b.safetensors" --sign "$tmp/alice.pub"
    one_line_error "not a weightvault secret signing key"
    # (signed by a key the repository will not trust)
    expect 0 "$WV" commit "$repo@mallory" "$tmp/b.safetensors" -m mallory --sign "$tmp/mallory.key"
    mid=$(cat "$tmp/out")
    # the repository's trusted keys
    expect 0 "$WV" trust add "$repo" "$tmp/alice.pub" --label alice
    expect 0 "$WV" trust list "$repo"
    has "alice"
    tid=$(awk '{print $1}' "$tmp/out")
    expect 6 "$WV" checkout "$repo@$uid" -o "$tmp/s.safetensors"
    one_line_error "not signed"
    # commits are refused where checkouts would refuse them
    expect 6 "$WV" commit "$repo" "$tmp/b.safetensors" -m unsigned2
    one_line_error "--sign"
    expect 6 "$WV" commit "$repo" "$tmp/b.safetensors" -m mallory2 --sign "$tmp/mallory.key"
    one_line_error "not one of the repository's"
    expect 0 "$WV" show "$repo@$sid"
    has "^signer:     $akey (trusted: alice)\$"
    expect 0 "$WV" show "$repo@$mid"
    has "^signer:     $(awk '{print $2}' "$tmp/mallory.pub")\$"
    expect 6 "$WV" checkout "$repo@$mid" -o "$tmp/s.safetensors"
    one_line_error "does not trust"
    expect 0 "$WV" checkout "$repo@$sid" -o "$tmp/s.safetensors"
    expect 1 "$WV" verify "$repo"
    grep -q "not signed" "$tmp/out" || fail "verify does not report the unsigned checkpoint: $(cat "$tmp/out")"
    expect 0 "$WV" trust remove "$repo" "$tid"
    expect 0 "$WV" checkout "$repo@$uid" -o "$tmp/s.safetensors"
    expect 0 "$WV" verify "$repo"
done
# A plain repository's signed manifest altered in the store (its name is
# its hash, so the altered copy is stored under a new name and the branch
# moved to it, as someone with write access could): refused.
expect 0 "$WV" commit "$P" "$tmp/a.safetensors" -m "the real message" --sign "$tmp/alice.key"
sid=$(cat "$tmp/out")
get "$P" "manifests/${sid:0:2}/$sid" "$tmp/m.json"
newid=$("$PYTHON" - "$tmp/m.json" <<'PY'
import hashlib, sys
p = sys.argv[1]
b = open(p, "rb").read().replace(b"the real message", b"the fake message")
open(p, "wb").write(b)
print(hashlib.sha256(b).hexdigest())
PY
)
put "$P" "manifests/${newid:0:2}/$newid" "$tmp/m.json"
printf '%s\n' "$newid" >"$tmp/ref"
put "$P" refs/heads/main "$tmp/ref"
expect 6 "$WV" checkout "$P" -o "$tmp/s.safetensors"
one_line_error "does not verify"
expect 6 "$WV" checkout "$P" -o "$tmp/s.safetensors" --verify-signer "$tmp/alice.pub"
one_line_error "does not verify"
expect 1 "$WV" verify "$P"
grep -q "does not verify" "$tmp/out" || fail "verify: $(cat "$tmp/out")"

# ---- one byte flipped: refused, naming what failed --------------------------------
tamper() { # tamper NAME PREFIX OFFSET PATTERN [verify-only]
    local T=$BASE/$RUN/t-$1
    expect 0 "$WV" init "$T" --encrypt --chunk-size 64KiB
    expect 0 "$WV" commit "$T" "$tmp/a.safetensors" -m t
    local key
    key=$(objs "$T" "$2" | head -1)
    [ -n "$key" ] || { fail "$1: no object under $2"; return; }
    flip "$T" "$key" "$3"
    if [ "${5:-}" = verify-only ]; then
        # a pack's trailer is read by verify (and by nothing a checkout does)
        expect 0 "$WV" checkout "$T" -o "$tmp/t.safetensors"
        same_tensors "$tmp/a.safetensors" "$tmp/t.safetensors"
    else
        expect 1 "$WV" checkout "$T" -o "$tmp/t.safetensors"
        one_line_error "$4"
    fi
    expect 1 "$WV" verify "$T"
    grep -q -- "$4" "$tmp/out" "$tmp/err" || fail "$1: verify does not say '$4': $(cat "$tmp/out" "$tmp/err")"
}
export WV_PASSPHRASE="correct horse battery staple"
tamper chunk packs/ 100 "chunk [0-9a-f]* in pack [0-9a-f]* is damaged or was altered"
tamper manifest manifests/ 60 "is damaged or was altered"
tamper index index/ 60 "is damaged or was altered"
tamper trailer packs/ -30 "damaged pack" verify-only
# a ref: checkout refuses it by name; verify reports it
T=$BASE/$RUN/t-ref
expect 0 "$WV" init "$T" --encrypt
expect 0 "$WV" commit "$T" "$tmp/a.safetensors" -m t
flip "$T" "$(objs "$T" refs/heads/ | head -1)" 10
expect 1 "$WV" checkout "$T" -o "$tmp/t.safetensors"
one_line_error "ref 'refs/heads/main' is damaged or was altered"
expect 1 "$WV" verify "$T"
grep -q "refs/heads/.*damaged or was altered" "$tmp/out" || fail "verify on a damaged ref: $(cat "$tmp/out")"

# ---- the Python package ----------------------------------------------------------------
# (A sanitizer build's library needs its runtime preloaded into the
# uninstrumented interpreter, as tests/cli/python.sh does; a library built
# for libFuzzer cannot be loaded by Python at all.)
pyenv=()
lib=$(cd "$(dirname "$WV")" && pwd)/libweightvault.so
if [ -f "$lib" ] && nm -D --undefined-only "$lib" 2>/dev/null | grep -q ' __sancov'; then
    echo "repo_crypt: $lib is built for libFuzzer: Python part skipped"
    lib=
elif [ -f "$lib" ] && nm -D --undefined-only "$lib" 2>/dev/null | grep -q ' __asan_init'; then
    rt=$(ldd "$lib" | awk '/libasan\.so/ {print $3; exit}')
    [ -n "$rt" ] || rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so 2>/dev/null)
    pyenv=(LD_PRELOAD="$rt" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1)
fi
if [ -n "${WV_SRC:-}" ] && [ -n "$lib" ] && "$PYTHON" -c 'import numpy' 2>/dev/null; then
    if [ -f "$lib" ] && [ "${BASE#s3://}" = "$BASE" ]; then
        env "${pyenv[@]}" WEIGHTVAULT_LIB="$lib" PYTHONPATH="$WV_SRC/python" "$PYTHON" - "$R" "$tmp" <<'PY' >"$tmp/py" 2>&1 || fail "python: $(cat "$tmp/py")"
import os, sys
import numpy as np
import weightvault as wv
repo, tmp = sys.argv[1], sys.argv[2]
os.environ.pop("WV_PASSPHRASE", None)
try:
    wv.Repository(repo)
    raise SystemExit("opened without a key")
except wv.AuthError as e:
    assert "give a passphrase" in str(e), e
try:
    wv.Repository(repo, passphrase="nope")
    raise SystemExit("opened with a wrong key")
except wv.AuthError as e:
    assert "wrong key" in str(e), e
with wv.Repository(repo, passphrase="bob's own words") as r:
    sd = r.checkout("latest")
    assert "zebra_secret.encoder.weight" in sd
    cid = r.commit({"w": np.arange(10, dtype=np.float32)}, message="py")
    back = r.checkout(cid)
    assert (back["w"] == np.arange(10, dtype=np.float32)).all()
os.environ["WV_PASSPHRASE"] = "bob's own words"
assert "w" in wv.load(repo + "@latest")
PY
    fi
fi

finish "repo_crypt: ok"
