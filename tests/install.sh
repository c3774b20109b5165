#!/usr/bin/env bash
# install.sh -- `cmake --install` (what `make install` runs) into a DESTDIR:
# the tree it lays out, libweightvault.so's SONAME and version links, the
# installed wv, the wv(1) man page (renders with `man -l`, has a section
# for every command of src/cli/main.c's table, names every option of every
# `wv CMD --help`), the bash completion (commands, options, subcommands,
# branch and tag names), and examples/save_load.c built against the tree
# through pkg-config, shared (run with LD_LIBRARY_PATH) and with
# libweightvault.a (run without).
# Env: WV_BUILD (the build directory), WV_SRC, WV_VERSION, CMAKE, CC.
set -u
: "${WV_BUILD:?}" "${WV_SRC:?}" "${WV_VERSION:?}" "${CMAKE:=cmake}" "${CC:=cc}"
WV=$WV_BUILD/wv
. "$WV_SRC/tests/harness/cli.sh"
tmp=$(mktemp -d)
# cmake --install rewrites the build's install_manifest.txt, which `make
# uninstall` reads: keep the one of a real install (or none) as it was
manifest=$WV_BUILD/install_manifest.txt
if [ -f "$manifest" ]; then cp -p "$manifest" "$tmp/manifest.saved"; fi
restore() {
    if [ -f "$tmp/manifest.saved" ]; then cp -p "$tmp/manifest.saved" "$manifest"; else rm -f "$manifest"; fi
    rm -rf "$tmp"
}
trap restore EXIT
dest=$tmp/dest
P=$dest/usr/local

DESTDIR=$dest "$CMAKE" --install "$WV_BUILD" --prefix /usr/local >"$tmp/install.log" 2>&1 ||
    { echo "FAIL: cmake --install: $(tail -n 5 "$tmp/install.log")"; exit 1; }
echo "installed tree (DESTDIR=\$tmp/dest):"
(cd "$dest" && find . -mindepth 1 -printf '%M %9s %p' \( -type l -printf ' -> %l' -o -true \) \
    -printf '\n' | sort -k3 | sed 's| \./| /|')
(cd "$dest" && find . -mindepth 1 \( -type f -o -type l \) | sort) >"$tmp/tree"

# ---- the tree -----------------------------------------------------------------
so=libweightvault.so.$WV_VERSION
for f in bin/wv lib/$so lib/libweightvault.so.0 lib/libweightvault.so \
         lib/libweightvault.a include/weightvault.h lib/pkgconfig/weightvault.pc \
         share/man/man1/wv.1 share/bash-completion/completions/wv; do
    [ -e "$P/$f" ] || fail "not installed: /usr/local/$f"
done
[ "$(readlink "$P/lib/libweightvault.so.0")" = "$so" ] ||
    fail "libweightvault.so.0 -> $(readlink "$P/lib/libweightvault.so.0"), wanted $so"
[ "$(readlink "$P/lib/libweightvault.so")" = libweightvault.so.0 ] ||
    fail "libweightvault.so -> $(readlink "$P/lib/libweightvault.so"), wanted libweightvault.so.0"
soname=$(readelf -d "$P/lib/$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libweightvault.so.0 ] || fail "SONAME '$soname', wanted libweightvault.so.0"
readelf -d "$P/lib/$so" | grep -q 'R.*PATH' && fail "installed library keeps a build RPATH"
"$P/bin/wv" --version >"$tmp/out" 2>&1 || fail "installed wv --version: $(cat "$tmp/out")"
has "^wv $WV_VERSION\$"

# ---- man page -------------------------------------------------------------------
man=$P/share/man/man1/wv.1
MANWIDTH=100 LC_ALL=C.UTF-8 man --warnings -l "$man" >"$tmp/man.txt" 2>"$tmp/man.err" ||
    fail "man -l: $(head -c 600 "$tmp/man.err")"
[ ! -s "$tmp/man.err" ] || fail "man -l warns: $(head -c 600 "$tmp/man.err")"
grep -q "^NAME" "$tmp/man.txt" && grep -q "wv - save, load" "$tmp/man.txt" ||
    fail "man -l rendered no NAME section"
cmds=$(sed -n 's/^ *{"\([a-z][a-z0-9-]*\)", cmd_[a-z_0-9]*},.*/\1/p' "$WV_SRC/src/cli/main.c")
[ "$(echo "$cmds" | wc -w)" -ge 15 ] || fail "found only $(echo "$cmds" | wc -w) commands in main.c"
for c in $cmds; do
    grep -q "^\.SS \"wv $c\"$" "$man" || fail "the man page has no section for wv $c"
    grep -qE "^  $c( |$)" <("$WV" help) || fail "wv help does not list $c"
    "$WV" "$c" --help >"$tmp/h" 2>&1 || { fail "wv $c --help failed"; continue; }
    for o in $(grep -oE '(^|[ [(,])--[a-z][a-z0-9-]*' "$tmp/h" | sed 's/^[^-]*//' | sort -u); do
        grep -qe "$o" "$tmp/man.txt" || fail "wv $c's option $o is not in the man page"
    done
done

# ---- bash completion --------------------------------------------------------------
repo=$tmp/repo
fix=$WV_SRC/tests/fixtures/safetensors/tinygrad-mnist.safetensors
need_file "$fix"
"$WV" init "$repo" >/dev/null &&
    "$WV" commit "$repo" "$fix" >/dev/null &&
    "$WV" branch "$repo" run2 >/dev/null && "$WV" tag "$repo" v1 >/dev/null ||
    fail "cannot make the completion's repository"
# complete WORD...: what the completion offers for the command line
# "WORD..." (the last word is the one being completed), one a line.
complete_words() {
    PATH="$P/bin:$PATH" bash --norc --noprofile -c '
        . "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        _wv; ((${#COMPREPLY[@]} == 0)) || printf "%s\n" "${COMPREPLY[@]}"' _ \
        "$P/share/bash-completion/completions/wv" "$@"
}
offers() { # offers WANT WORD...: the completion of WORD... includes WANT
    local want=$1
    shift
    complete_words "$@" >"$tmp/c" 2>&1
    grep -qxF -- "$want" "$tmp/c" || fail "completing '$*' does not offer '$want': $(tr '\n' ' ' <"$tmp/c")"
}
offers commit wv com
offers checkout wv che
for c in $cmds; do offers "$c" wv "${c:0:2}"; done
offers --sign wv commit repo --si
offers --keep-last wv prune repo --keep
offers --json wv inspect --j
offers add wv key a
offers list wv trust l
offers "$repo@run2" wv log "$repo@r"
offers "$repo@v1" wv checkout "$repo@v"
offers "$repo@main" wv show "$repo@"
offers run2 wv diff "$repo" r
offers v1 wv diff "$repo" main v
offers main wv tag "$repo" newtag m
complete_words wv log "$repo@zz" >"$tmp/c"
[ ! -s "$tmp/c" ] || fail "completing a ref that matches nothing offers: $(cat "$tmp/c")"

# ---- pkg-config: link examples/save_load.c against the tree ---------------------------
export PKG_CONFIG_PATH=$P/lib/pkgconfig
pc=(pkg-config --define-variable=prefix="$P")
[ "$("${pc[@]}" --modversion weightvault)" = "$WV_VERSION" ] || fail "pkg-config --modversion"
"$CC" -o "$tmp/sl_shared" "$WV_SRC/examples/save_load.c" \
    $("${pc[@]}" --cflags --libs weightvault) 2>"$tmp/err" ||
    fail "shared link failed: $(head -c 800 "$tmp/err")"
readelf -d "$tmp/sl_shared" 2>/dev/null | grep -q 'NEEDED.*\[libweightvault.so.0\]' ||
    fail "the shared build does not need libweightvault.so.0"
LD_LIBRARY_PATH=$P/lib "$tmp/sl_shared" "$tmp/a.safetensors" >"$tmp/out" 2>&1 ||
    fail "shared save_load: $(cat "$tmp/out")"
has "all 7 equal"
# the static closure: only the archive of libweightvault, nothing to find at run time
"$CC" -o "$tmp/sl_static" "$WV_SRC/examples/save_load.c" \
    $("${pc[@]}" --static --define-variable=library=:libweightvault.a --cflags --libs weightvault) \
    2>"$tmp/err" || fail "static link failed: $(head -c 800 "$tmp/err")"
readelf -d "$tmp/sl_static" 2>/dev/null | grep -q 'libweightvault' &&
    fail "the static build still needs libweightvault.so"
env -u LD_LIBRARY_PATH "$tmp/sl_static" "$tmp/b.safetensors" >"$tmp/out" 2>&1 ||
    fail "static save_load: $(cat "$tmp/out")"
has "all 7 equal"
# the build tree's weightvault-uninstalled.pc, before any install
"$CC" -o "$tmp/sl_tree" "$WV_SRC/examples/save_load.c" \
    $(PKG_CONFIG_PATH=$WV_BUILD pkg-config --static --define-variable=library=:libweightvault.a \
      --cflags --libs weightvault) 2>"$tmp/err" ||
    fail "link against the build tree failed: $(head -c 800 "$tmp/err")"
env -u LD_LIBRARY_PATH "$tmp/sl_tree" "$tmp/c.safetensors" >"$tmp/out" 2>&1 ||
    fail "build-tree save_load: $(cat "$tmp/out")"
has "all 7 equal"
# plain --static links too (the linker takes the .so beside the archive)
"$CC" -o "$tmp/sl_plain" "$WV_SRC/examples/save_load.c" \
    $("${pc[@]}" --static --cflags --libs weightvault) 2>"$tmp/err" ||
    fail "pkg-config --static link failed: $(head -c 800 "$tmp/err")"
finish "install: tree, SONAME, man page, completion, pkg-config shared and static: ok"
