#!/usr/bin/env bash
# h5dump (libhdf5's own tool) sees the same structure in the files wv
# writes as in the ones Keras wrote: groups, datasets, datatypes (string
# kinds and character sets included), dataspaces and attributes. Covers
# the Keras 2 save_weights layout and Keras 3 .weights.h5.
# Env: WV, WV_FIXTURES.
set -u
. "$(dirname "$0")/../harness/cli.sh"
need_file "$WV_FIXTURES"/h5/keras2-weights-dearj611/model_weights.h5 \
    "$WV_FIXTURES"/h5/keras3-mnist-shreyansh/model.weights.h5
command -v h5dump >/dev/null || { echo "keras_h5dump: h5dump missing (hdf5-tools)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
F=$WV_FIXTURES/h5
fails=0
check() { # fixture output
    "$WV" convert "$1" "$tmp/$2" || { echo "convert $1 failed"; fails=$((fails + 1)); return; }
    h5dump -H "$1" | sed '1s/.*/HDF5 FILE {/' >"$tmp/a"
    h5dump -H "$tmp/$2" | sed '1s/.*/HDF5 FILE {/' >"$tmp/b"
    if ! diff -u "$tmp/a" "$tmp/b" >"$tmp/d"; then
        echo "keras_h5dump: $2 differs from $1:"; head -40 "$tmp/d"
        fails=$((fails + 1))
    else
        echo "ok: $(wc -l <"$tmp/a") lines of h5dump -H identical for $(basename "$1")"
    fi
}
check "$F/keras2-weights-dearj611/model_weights.h5" k2.h5
check "$F/keras3-mnist-shreyansh/model.weights.h5" k3.weights.h5
[ "$fails" -eq 0 ]
