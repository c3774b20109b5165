#!/usr/bin/env bash
# repo_badrefs.sh -- refs are checked like objects (issue 14, item 4): a
# branch or tag that is a symlink loop, a symlink to a valid ref, a
# directory, a FIFO, or a ref file with trailing bytes is refused by log,
# show and checkout (which never block on the FIFO: each runs under a
# timeout) and reported by `wv verify` (exit 1); the repository verifies
# again once the damage is removed. Plain and encrypted repositories.
# Env: WV, PYTHON.
set -u
. "$(dirname "$0")/../harness/cli.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export WV_STATE_DIR=$tmp/state
export WV_PASSPHRASE="refs are objects too"
make_st "$tmp/a.st" 1 0.1

T="timeout -k 5 20"
for kind in plain enc; do
    R=$tmp/$kind
    if [ $kind = enc ]; then
        expect 0 "$WV" init "$R" --encrypt
    else
        expect 0 "$WV" init "$R"
    fi
    expect 0 "$WV" commit "$R" "$tmp/a.st" -m one
    expect 0 "$WV" branch "$R" side
    expect 0 "$WV" tag "$R" v1
    if [ $kind = plain ]; then
        sidekey=refs/heads/side
        tagkey=refs/tags/v1
        mainkey=refs/heads/main
    else
        # the encrypted names are keyed hashes: find them by elimination
        mainkey=""
        for f in "$R"/refs/heads/*; do
            cp "$f" "$tmp/saved"
            mv "$f" "$tmp/moved"
            if "$WV" log "$R" >/dev/null 2>&1; then :; else mainkey=refs/heads/${f##*/}; fi
            mv "$tmp/moved" "$f"
        done
        sidekey=""
        for f in "$R"/refs/heads/*; do
            [ "refs/heads/${f##*/}" = "$mainkey" ] || sidekey=refs/heads/${f##*/}
        done
        tagkey=refs/tags/$(ls "$R/refs/tags")
    fi
    [ -n "$mainkey" ] && [ -n "$sidekey" ] || { fail "$kind: cannot find the ref keys"; continue; }
    cp "$R/$mainkey" "$tmp/main.good"
    cp "$R/$sidekey" "$tmp/side.good"
    cp "$R/$tagkey" "$tmp/tag.good"
    expect 0 "$WV" verify "$R"

    # restore: put every ref back as it was; the repository verifies again
    restore() {
        rm -rf "${R:?}/$mainkey" "$R/$sidekey" "$R/$tagkey"
        cp "$tmp/main.good" "$R/$mainkey"
        cp "$tmp/side.good" "$R/$sidekey"
        cp "$tmp/tag.good" "$R/$tagkey"
    }
    for damage in loop link dir fifo trailing nul; do
        for which in main side tag; do
            eval "key=\$${which}key"
            rm -rf "${R:?}/$key"
            case $damage in
            loop) ln -s "${key##*/}" "$R/$key" ;;
            link) cp "$tmp/$which.good" "$tmp/$which.target"
                  ln -s "$tmp/$which.target" "$R/$key" ;;
            dir) mkdir "$R/$key" ;;
            fifo) mkfifo "$R/$key" ;;
            trailing) { cat "$tmp/$which.good"; printf 'garbage\n'; } >"$R/$key" ;;
            nul) { tr -d '\n' <"$tmp/$which.good"; printf '\0\n'; } >"$R/$key" ;;
            esac
            expect 1 $T "$WV" verify "$R"
            grep -q "$key" "$tmp/out" || fail "$kind $damage $which: verify does not name $key: $(head -c 400 "$tmp/out")"
            grep -q "^FAILED" "$tmp/out" || fail "$kind $damage $which: verify did not fail"
            case $which in
            main)
                got=0; $T "$WV" log "$R" >"$tmp/out" 2>"$tmp/err" || got=$?
                [ $got = 124 ] || [ $got = 137 ] && fail "$kind $damage: log blocked"
                [ $got != 0 ] || fail "$kind $damage: log accepted a bad main"
                got=0; $T "$WV" show "$R" >"$tmp/out" 2>"$tmp/err" || got=$?
                [ $got = 124 ] || [ $got = 137 ] && fail "$kind $damage: show blocked"
                [ $got != 0 ] || fail "$kind $damage: show accepted a bad main"
                got=0; $T "$WV" checkout "$R" -o "$tmp/x.safetensors" >"$tmp/out" 2>"$tmp/err" || got=$?
                [ $got = 124 ] || [ $got = 137 ] && fail "$kind $damage: checkout blocked"
                [ $got != 0 ] || fail "$kind $damage: checkout accepted a bad main"
                [ -s "$tmp/err" ] && [ "$(wc -l <"$tmp/err")" = 1 ] ||
                    fail "$kind $damage: checkout error not one line: $(cat "$tmp/err")"
                ;;
            side)
                got=0; $T "$WV" checkout "$R@side" -o "$tmp/x.safetensors" >"$tmp/out" 2>"$tmp/err" || got=$?
                [ $got = 124 ] || [ $got = 137 ] && fail "$kind $damage: checkout @side blocked"
                [ $got != 0 ] || fail "$kind $damage: checkout accepted a bad side"
                # the other branches still work
                expect 0 $T "$WV" checkout "$R" -o "$tmp/x.safetensors"
                ;;
            tag)
                got=0; $T "$WV" show "$R@v1" >"$tmp/out" 2>"$tmp/err" || got=$?
                [ $got = 124 ] || [ $got = 137 ] && fail "$kind $damage: show @v1 blocked"
                [ $got != 0 ] || fail "$kind $damage: show accepted a bad tag"
                ;;
            esac
            restore
        done
    done
    expect 0 "$WV" verify "$R"
    # a commit still moves main as before
    expect 0 "$WV" commit "$R" "$tmp/a.st" -m two
    expect 0 "$WV" verify "$R"
done
finish
