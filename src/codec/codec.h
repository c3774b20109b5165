/*
 * codec.h -- chunk codecs: the transformation between a chunk's plaintext
 * and the bytes stored in a pack.
 *
 *   id 0  none      stored as is
 *   id 1  zstd      zstd frame of the plaintext
 *   id 2  bg-zstd   byte-grouped, then zstd: for elements of k bytes, the
 *                   plaintext is rearranged into k planes (all first bytes,
 *                   then all second bytes, ...) before compressing, which
 *                   groups the slowly-varying exponent bytes of floats
 *                   together (the ZipNN idea). k is recorded with the chunk.
 *
 * A codec that does not make a chunk smaller is not used: the chunk is
 * stored with id 0. Ids are on-disk values: never renumber.
 */
#ifndef WV_CODEC_H
#define WV_CODEC_H

#include "core.h"

enum { WV__CODEC_NONE = 0, WV__CODEC_ZSTD = 1, WV__CODEC_BG_ZSTD = 2 };

/* Encode `in` (n bytes, elements of elem bytes for bg-zstd) with `codec`
 * into `out` (capacity cap, at least wv__codec_bound(n)). Returns the codec
 * actually used (WV__CODEC_NONE when compression did not help) and the
 * stored length. `scratch` must hold n bytes (byte-grouping). */
size_t wv__codec_bound(size_t n);
int wv__codec_encode(int codec, int level, unsigned elem, const void *in,
                     size_t n, void *out, size_t cap, void *scratch,
                     size_t *out_len);
/* Decode stored bytes into exactly raw_len bytes at `out`. `scratch` must
 * hold raw_len bytes for bg-zstd. WV_CORRUPT if the data does not decode to
 * exactly raw_len bytes. */
int wv__codec_decode(int codec, unsigned elem, const void *in, size_t n,
                     void *out, size_t raw_len, void *scratch,
                     struct wv__err *err);
const char *wv__codec_name(int codec);

#endif
