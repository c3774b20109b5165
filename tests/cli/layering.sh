#!/usr/bin/env bash
# layering.sh -- scripts/layers.sh: the source tree respects the layer order
# (core < json < tensor < codec < net < formats, store < repo < cli), in
# its includes and, from the build's objects next to $WV, in its calls; and
# the check does catch each kind of violation when one is planted in a copy
# of src/: a lower folder including a higher header, cli/ including a
# library header, a src/ file including the wv_int.h umbrella, a quoted
# include that is no header of src/, and (in objects built here) a lower
# folder calling a function of a higher one.
# Env: WV, WV_SRC.
set -u
. "$(dirname "$0")/../harness/cli.sh"
: "${WV_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { bash "$WV_SRC/scripts/layers.sh" "$@"; }

# the real tree, and the calls between the objects of this build
objs=$(dirname "$WV")/CMakeFiles/wv_obj.dir
# (not need_file: that declares fixtures, which this test reads none of)
[ -r "$objs/src/core/alloc.c.o" ] || { echo "FAIL: no objects in $objs"; exit 1; }
cliobjs=$(dirname "$WV")/CMakeFiles/wv.dir
expect 0 check "$WV_SRC" "$objs" "$cliobjs"
[ -s "$tmp/out" ] && fail "layers.sh printed on a clean tree: $(head -c 600 "$tmp/out")"

# a cli object that reaches a library-internal function
mkdir -p "$tmp/c/src/cli"
echo 'int wv__secret(void); int f(void) { return wv__secret(); }' >"$tmp/cli.c"
cc -c -o "$tmp/c/src/cli/sneaky.c.o" "$tmp/cli.c" || fail "cc failed"
expect 1 check "$WV_SRC" "$objs" "$tmp/c"
has "cli/sneaky.c: cli/ uses the library-internal wv__secret"

# a call upwards between objects: core/ using a function of repo/
mkdir -p "$tmp/o/src/core" "$tmp/o/src/repo" "$tmp/o/src/json"
echo 'int wv__up(void); int wv__low(void) { return wv__up(); }' >"$tmp/low.c"
echo 'int wv__low(void); int wv__up(void) { return 1; } int wv__down(void) { return wv__low(); }' >"$tmp/up.c"
cc -c -o "$tmp/o/src/core/low.c.o" "$tmp/low.c" &&
    cc -c -o "$tmp/o/src/repo/up.c.o" "$tmp/up.c" || fail "cc failed"
expect 1 check "$WV_SRC" "$tmp/o"
has 'src/core/low.c: core/ (layer 0) calls wv__up of repo/ (layer 6), which is not below it'
[ "$(wc -l <"$tmp/out")" = 1 ] || fail "one upward call, not one line: $(cat "$tmp/out")"

# plant one violation at a time in a copy
plant() { # FILE LINE: a copy of src/ with LINE appended to FILE
    rm -rf "$tmp/t"
    mkdir -p "$tmp/t"
    cp -r "$WV_SRC/src" "$tmp/t/src"
    printf '%s\n' "$2" >>"$tmp/t/src/$1"
}
plant core/alloc.c '#include "repo.h"'
expect 1 check "$tmp/t"
has 'src/core/alloc.c:[0-9]*: core/ (layer 0) includes "repo.h" of repo/ (layer 6), which is not below it'
plant json/json.c '#include "tensor.h"'
expect 1 check "$tmp/t"
has 'src/json/json.c:[0-9]*: json/ (layer 1) includes "tensor.h" of tensor/'
plant formats/npy.c '#include "store.h"'
expect 1 check "$tmp/t"
has 'formats/ (layer 5) includes "store.h" of store/ (layer 5)'
plant tensor/model.c '#include "../formats/fmt.h"'
expect 1 check "$tmp/t"
has 'src/tensor/model.c:[0-9]*: tensor/ .* "../formats/fmt.h" of formats/'
plant cli/main.c '#include "core.h"'
expect 1 check "$tmp/t"
has 'cli/ includes "core.h" of core/ (the CLI uses the public API only)'
plant repo/gc.c '#include "wv_int.h"'
expect 1 check "$tmp/t"
has 'src/repo/gc.c:[0-9]*: includes wv_int.h'
plant store/mem.c '#include "nosuch.h"'
expect 1 check "$tmp/t"
has '"nosuch.h" is no header of src/'
[ "$(wc -l <"$tmp/out")" = 1 ] || fail "one violation, not one line: $(cat "$tmp/out")"

# allowed: a higher folder including a lower header
plant repo/gc.c '#include "tensor.h"'
expect 0 check "$tmp/t"
finish
