#!/usr/bin/env bash
# layers.sh -- check that the library's layers only look down: no file in a
# lower folder of src/ includes a header of a higher one.
#
# Usage: scripts/layers.sh [SOURCE_ROOT [OBJECT_DIR [CLI_OBJECT_DIR]]]
#   SOURCE_ROOT  the checkout (default: this script's)
#   OBJECT_DIR   optional: the library's objects of a build
#                (BUILD/CMakeFiles/wv_obj.dir); then calls are checked too:
#                no object of a folder may use a symbol defined in a folder
#                that is not below it (nm), which catches a call made
#                through a declaration that bypasses the headers.
# Exit 0 when the tree respects the order, 1 with one line per violation.
#
# The layers, low to high (a folder may include its own headers, the public
# include/weightvault.h, and headers of folders of a lower rank only; two
# folders of the same rank do not include each other):
#
#   0  core      allocation, errors, buffers, files, hashing, UTF-8  core.h
#   1  json      the JSON cursor and writer                          json.h
#   2  tensor    the tensor set, dtypes and casts, streaming         tensor.h
#   3  codec     chunk codecs (zstd, byte grouping)                  codec.h
#   4  net       the HTTP engine, S3 configuration and XML           http.h
#   5  formats   file formats (reads net for s3:// and https://)     fmt.h ...
#   5  store     storage backends (S3 reads net)                     store.h
#   6  repo      the checkpoint repository                           repo.h ...
#   7  cli       the wv command
#
# Two further rules: cli/ uses the public API only (include/weightvault.h
# and its own headers), and no file in src/ includes wv_int.h, the
# umbrella kept for tests/unit and fuzz/.
#
# A header is found relative to the including file first (as the compiler
# does for "..." includes), then by its name among the folders of src/;
# a quoted include that resolves to nothing, or to two folders, is an error
# too, so a new header cannot slip past the check. <...> includes are
# system headers and are not checked.
set -u

root=${1:-$(dirname "$0")/..}
[ -d "$root/src" ] || { echo "layers.sh: $root/src: no such directory" >&2; exit 2; }
src=$(cd "$root/src" && pwd)

declare -A rank=([core]=0 [json]=1 [tensor]=2 [codec]=3 [net]=4 [formats]=5
                 [store]=5 [repo]=6 [cli]=7)

# Every header under src/, by file name -> its folder (or "?" if the name
# is taken twice).
declare -A home=()
while IFS= read -r h; do
    rel=${h#"$src"/}
    folder=${rel%%/*}
    name=${h##*/}
    if [ -n "${home[$name]:-}" ] && [ "${home[$name]}" != "$folder" ]; then
        home[$name]='?'
    else
        home[$name]=$folder
    fi
done < <(find "$src" -name '*.h' -type f | sort)

bad=0
fail() {
    echo "layers.sh: $1"
    bad=1
}

# One line per quoted include: FILE:LINE:TEXT.
while IFS= read -r hit; do
    f=${hit%%:*}
    rest=${hit#*:}
    n=${rest%%:*}
    line=${rest#*:}
    rel=${f#"$src"/}
    folder=${rel%%/*}
    where=src/$rel:$n
    if [ -z "${rank[$folder]:-}" ]; then
        fail "$where: folder '$folder' has no place in the layer order (add it to scripts/layers.sh)"
        continue
    fi
    [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]] || continue
    inc=${BASH_REMATCH[1]}
    name=${inc##*/}
    dir=${f%/*}
    if [ "$name" = weightvault.h ]; then
        continue
    fi
    if [ "$name" = wv_int.h ]; then
        fail "$where: includes wv_int.h (the umbrella for tests and fuzz); include the layer headers it uses"
        continue
    fi
    target=
    if [ -f "$dir/$inc" ]; then
        t=$(cd "$(dirname "$dir/$inc")" && pwd)/$name
        case $t in
        "$src"/*) t=${t#"$src"/}; target=${t%%/*} ;;
        *) fail "$where: \"$inc\" is outside src/"; continue ;;
        esac
    else
        target=${home[$name]:-}
    fi
    if [ -z "$target" ]; then
        fail "$where: \"$inc\" is no header of src/"
        continue
    fi
    if [ "$target" = '?' ]; then
        fail "$where: \"$inc\" names headers in two folders of src/"
        continue
    fi
    [ "$target" = "$folder" ] && continue
    if [ "$folder" = cli ]; then
        fail "$where: cli/ includes \"$inc\" of $target/ (the CLI uses the public API only)"
        continue
    fi
    if [ -z "${rank[$target]:-}" ] || [ "${rank[$target]}" -ge "${rank[$folder]}" ]; then
        fail "$where: $folder/ (layer ${rank[$folder]}) includes \"$inc\" of $target/ (layer ${rank[$target]:-?}), which is not below it"
    fi
done < <(find "$src" \( -name '*.c' -o -name '*.h' \) -type f -print0 | sort -z |
         xargs -0 grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"')

# Calls, from the objects' symbol tables.
objdir=${2:-}
if [ -n "$objdir" ]; then
    [ -d "$objdir/src" ] || { echo "layers.sh: $objdir/src: no such directory" >&2; exit 2; }
    declare -A defin=()
    while read -r folder sym; do
        defin[$sym]=$folder
    done < <(cd "$objdir/src" && for o in */*.o; do
                 nm -g --defined-only "$o" | awk -v f="${o%%/*}" '{print f, $3}'
             done)
    while read -r o sym; do
        folder=${o%%/*}
        target=${defin[$sym]:-}
        [ -z "$target" ] || [ "$target" = "$folder" ] && continue
        [ -n "${rank[$folder]:-}" ] || continue
        if [ -z "${rank[$target]:-}" ] || [ "${rank[$target]}" -ge "${rank[$folder]}" ]; then
            fail "src/${o%.o}: $folder/ (layer ${rank[$folder]}) calls $sym of $target/ (layer ${rank[$target]:-?}), which is not below it"
        fi
    done < <(cd "$objdir/src" && for o in */*.o; do
                 nm -u "$o" | awk -v o="$o" '{print o, $2}'
             done)
fi

# The command's objects (CLI_OBJECT_DIR, e.g. BUILD/CMakeFiles/wv.dir):
# cli/ uses the public API only, so none may need a library-internal
# (wv__*) symbol; wv links the static library, where a declaration of its
# own would otherwise reach one unnoticed.
clidir=${3:-}
if [ -n "$clidir" ]; then
    [ -d "$clidir/src/cli" ] || { echo "layers.sh: $clidir/src/cli: no such directory" >&2; exit 2; }
    while read -r o sym; do
        fail "src/${o%.o}: cli/ uses the library-internal $sym (public API only)"
    done < <(cd "$clidir/src" && for o in cli/*.o cli/*/*.o; do
                 [ -e "$o" ] || continue
                 nm -u "$o" | awk -v o="$o" '$2 ~ /^wv__/ {print o, $2}'
             done)
fi

exit $bad
