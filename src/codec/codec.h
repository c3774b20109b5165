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
 *   id 3  xor-bg-zstd  delta against a base chunk of the same length (the
 *                   same chunk of the parent checkpoint): the plaintext
 *                   XOR the base's, byte-grouped, then zstd. Consecutive
 *                   checkpoints share sign, exponent and the top of the
 *                   mantissa, which XOR turns into runs of zeros (measured
 *                   against subtraction and a bit-plane split: bench/
 *                   delta_measure.c). Decoding needs the base's plaintext.
 *
 * A codec that does not make a chunk smaller is not used: the chunk is
 * stored with id 0. Ids are on-disk values: never renumber.
 */
#ifndef WV_CODEC_H
#define WV_CODEC_H

#include "core.h"

enum {
    WV__CODEC_NONE = 0,
    WV__CODEC_ZSTD = 1,
    WV__CODEC_BG_ZSTD = 2,
    WV__CODEC_DELTA = 3
};

/* A codec workspace: what one thread needs to encode and decode chunks of
 * up to `cap` bytes, reused from chunk to chunk: a zstd compression and a
 * decompression context (built once, not per chunk as ZSTD_compress
 * would) and the byte-grouping buffer, each made on its first use. All of it comes from the library's
 * allocator (wv__malloc, through ZSTD_customMem). A workspace belongs to
 * one thread at a time; the ordered pipeline (repo/pipeline.c) gives each
 * worker its own. */
struct wv__codec_ws;
/* A workspace for chunks of up to n bytes: WV_NOMEM or WV_OK. */
int wv__codec_ws_new(size_t n, struct wv__codec_ws **out);
/* Grow the workspace to chunks of up to n bytes (never shrinks). */
int wv__codec_ws_reserve(struct wv__codec_ws *ws, size_t n);
size_t wv__codec_ws_cap(const struct wv__codec_ws *ws);
void wv__codec_ws_free(struct wv__codec_ws *ws); /* NULL is a no-op */
/* Whether the frames the workspace makes carry zstd's content checksum
 * (XXH64 of the frame's content, checked by every zstd decoder; off by
 * default). A plain repository whose chunks may be delta bases writes
 * it: a commit then trusts a base whose frame checks itself instead of
 * re-hashing it (repo/object.c). Readers that predate it read such
 * frames unchanged. NULL is a no-op (so for the next). */
void wv__codec_ws_checksum(struct wv__codec_ws *ws, bool on);
/* Whether decoding checks a frame's content checksum (on by default,
 * as in zstd): a reader that hashes the plaintext against its id anyway
 * turns it off (about a tenth of zstd's decoding time). */
void wv__codec_ws_check_sum(struct wv__codec_ws *ws, bool on);
/* Whether the zstd frame `in` (n bytes) declares a content checksum, so
 * that decoding it checked its content. */
bool wv__codec_frame_summed(const void *in, size_t n);

/* Encode `in` (n bytes, elements of elem bytes for bg-zstd) with `codec`
 * into `out` (capacity cap, at least wv__codec_bound(n)). Sets *used to the
 * codec actually used (WV__CODEC_NONE when compression did not help, or
 * could not be done for want of memory) and *out_len to the stored length.
 * `ws` must hold n bytes unless `codec` is WV__CODEC_NONE: WV_MISUSE
 * otherwise (a caller's sizing bug, not a reason to store it as is). */
size_t wv__codec_bound(size_t n);
int wv__codec_encode(int codec, int level, unsigned elem, const void *in,
                     size_t n, void *out, size_t cap,
                     struct wv__codec_ws *ws, size_t *out_len, int *used,
                     struct wv__err *err);
/* Decode stored bytes into exactly raw_len bytes at `out`. `ws` must hold
 * raw_len bytes. WV_CORRUPT if the data does not decode to exactly raw_len
 * bytes; WV_NOMEM if the workspace's context or buffer cannot be made. */
int wv__codec_decode(int codec, unsigned elem, const void *in, size_t n,
                     void *out, size_t raw_len, struct wv__codec_ws *ws,
                     struct wv__err *err);
/* The delta codec (id 3): encode `in` against `base` (both n bytes) into
 * `out` (capacity cap >= wv__codec_bound(n)). *used is WV__CODEC_DELTA,
 * or WV__CODEC_NONE when the delta does not compress (nothing useful in
 * out then). `ws` must hold n bytes (WV_MISUSE otherwise). */
int wv__codec_encode_delta(int level, unsigned elem, const void *in,
                           const void *base, size_t n, void *out, size_t cap,
                           struct wv__codec_ws *ws, size_t *out_len,
                           int *used, struct wv__err *err);
/* The same against a base given byte-grouped in elements of elem (as
 * wv__codec_unzstd leaves the frame of a chunk stored whole with that
 * elem): the same stored bytes without undoing the base's grouping. */
int wv__codec_encode_delta_grouped(int level, unsigned elem, const void *in,
                                   const void *gbase, size_t n, void *out,
                                   size_t cap, struct wv__codec_ws *ws,
                                   size_t *out_len, int *used,
                                   struct wv__err *err);
/* Its inverse: stored bytes `in` (n) and the base's plaintext (raw_len
 * bytes) into out (raw_len bytes, not overlapping base). WV_CORRUPT when
 * they do not decode to exactly raw_len bytes. */
int wv__codec_decode_delta(unsigned elem, const void *in, size_t n,
                           const void *base, void *out, size_t raw_len,
                           struct wv__codec_ws *ws, struct wv__err *err);
/* The steps of those codecs, for a reader that composes a chain of
 * deltas without undoing the byte grouping at every link (repo/delta.c:
 * grouping is a permutation, so XOR commutes with it).
 * wv__codec_unzstd: the zstd frame `in` (n bytes) of codecs 1-3 (a
 * delta's after its base id) into exactly raw_len bytes at out, still
 * grouped; WV_CORRUPT otherwise. `ws` must hold raw_len bytes. */
int wv__codec_unzstd(const void *in, size_t n, void *out, size_t raw_len,
                     struct wv__codec_ws *ws, struct wv__err *err);
/* Byte grouping of n bytes in elements of k (>= 2) and its inverse (out
 * does not overlap in); out = a XOR b (out may be a or b). */
void wv__codec_group(const void *in, size_t n, unsigned k, void *out);
void wv__codec_ungroup(const void *in, size_t n, unsigned k, void *out);
void wv__codec_xor(void *out, const void *a, const void *b, size_t n);
/* An estimate, in bits, of what n bytes in elements of elem (1..8)
 * bytes take byte-grouped and entropy-coded, XORed with base first when
 * base is not NULL: the order-0 entropy of each byte plane, which zstd's
 * literal coding approaches on the planes of floats. A few passes of
 * counting, far cheaper than compressing: commit.c weighs a delta against
 * the whole encoding with it. */
double wv__codec_estimate(unsigned elem, const void *in, const void *base,
                          size_t n);
/* The same against a grouped base: gbase is its byte of plane 0 for the
 * first element of `in`, and `plane` the distance between its planes (the
 * element count of the whole chunk). */
double wv__codec_estimate_grouped(unsigned elem, const void *in,
                                  const void *gbase, size_t plane, size_t n);
const char *wv__codec_name(int codec);

#endif
