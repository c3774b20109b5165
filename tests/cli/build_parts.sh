#!/usr/bin/env bash
# build_parts.sh -- the optional parts this build has (CMake's WV_WITH_S3,
# WV_WITH_RADOS, WV_WITH_HDF5; crypto from WV_WITH_CRYPTO): `wv --version`
# and the pkg-config file list exactly them, and every part left out is
# refused by the CLI in one line naming its option (a Keras .h5 read or
# written, an s3:// or http:// read, an s3:// or rados:// repository),
# leaving no output file behind.
# Env: WV, WV_SRC, WV_FIXTURES, WV_BUILD (the build directory),
# WV_BUILD_FEATURES (the parts CMake built in, space-separated).
set -u
. "$(dirname "$0")/../harness/cli.sh"
: "${WV_BUILD:?}" "${WV_BUILD_FEATURES?}" "${WV_FIXTURES:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
h5=$WV_FIXTURES/h5/keras2-weights-dearj611/model_weights.h5
st=$WV_FIXTURES/safetensors/tinygrad-mnist.safetensors
need_file "$h5" "$st"

want=${WV_BUILD_FEATURES:-none}
expect 0 "$WV" --version
[ "$(sed -n 2p "$tmp/out")" = "features: $want" ] ||
    fail "wv --version: '$(sed -n 2p "$tmp/out")', wanted 'features: $want'"
pcv=$(PKG_CONFIG_PATH=$WV_BUILD pkg-config --variable=features weightvault)
[ "$pcv" = "$WV_BUILD_FEATURES" ] ||
    fail "weightvault-uninstalled.pc features='$pcv', wanted '$WV_BUILD_FEATURES'"

built() { case " $WV_BUILD_FEATURES " in *" $1 "*) return 0 ;; esac; return 1; }

if built hdf5; then
    expect 0 "$WV" inspect "$h5"
    expect 0 "$WV" convert "$st" out.h5
    [ -s out.h5 ] || fail "convert to .h5 wrote nothing"
else
    expect 1 "$WV" inspect "$h5"
    one_line_error "model_weights.h5: Keras HDF5: built without HDF5 support (WV_WITH_HDF5=OFF)"
    expect 1 "$WV" convert "$st" out.h5
    # (after the warning that the tensors have no Keras layout)
    [ "$(tail -n 1 "$tmp/err")" = "wv: out.h5: Keras HDF5: built without HDF5 support (WV_WITH_HDF5=OFF)" ] ||
        fail "convert to .h5: $(cat "$tmp/err")"
    [ -z "$(ls -A "$tmp" | grep -v '^\(out\|err\)$')" ] ||
        fail "a refused .h5 write left: $(ls -A "$tmp")"
fi
if ! built s3; then
    expect 1 "$WV" inspect s3://bucket/w.safetensors
    one_line_error "s3://bucket/w.safetensors: built without S3 support (WV_WITH_S3=OFF)"
    expect 1 "$WV" inspect http://127.0.0.1:1/w.safetensors
    one_line_error "http://127.0.0.1:1/w.safetensors: built without S3 support (WV_WITH_S3=OFF)"
    expect 1 "$WV" log s3://bucket/repo
    one_line_error "s3://bucket/repo: built without S3 support (WV_WITH_S3=OFF)"
fi
if ! built rados; then
    expect 1 "$WV" log rados://pool/repo
    one_line_error "rados://pool/repo: built without RADOS support (WV_WITH_RADOS=OFF)"
fi
finish "build_parts: features '$want'"
