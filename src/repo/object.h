/*
 * object.h -- the content-addressed object layer of a repository
 * (object.c): chunks, whole objects (manifests, index objects, trusted
 * keys) and pack trailers, as stored. Every commit and checkout goes
 * through it, plain or encrypted; each helper does the plain thing when
 * the repository has no keys (r->crypt NULL) and seals or unseals through
 * crypt.h otherwise.
 */
#ifndef WV_OBJECT_H
#define WV_OBJECT_H

#include "core.h"

struct wv__chunk_loc;
struct wv__codec_ws;

/* Chunk id: SHA-256 of the plaintext, or HMAC-SHA256 under the
 * repository's id key. Thread-safe; WV_NOMEM only. */
int wv__chunk_id(const wv_repo *r, const void *p, size_t n,
                 unsigned char id[32]);
/* Bytes a chunk of n plaintext bytes may take when stored (a delta's
 * base id included). */
size_t wv__chunk_bound(const wv_repo *r, size_t n);
/* Encode a chunk as stored: the repository's codec, then sealed (bound to
 * its id, length and codec). out holds wv__chunk_bound(r, n) bytes,
 * scratch n (WV_MISUSE, from wv__codec_encode, otherwise). Thread-safe. */
int wv__chunk_encode(const wv_repo *r, const unsigned char id[32],
                      const void *p, size_t n, unsigned elem,
                      unsigned char *out, struct wv__codec_ws *scratch,
                      size_t *stored,
                      uint8_t *codec, uint8_t *elem_out,
                      struct wv__err *err);
/* Encode a chunk as a delta against base (n bytes, the plaintext of
 * chunk base_id, or when grouped that plaintext byte-grouped in elements
 * of elem): stored bytes base_id[32] || delta frame, sealed in an
 * encrypted repository. *stored is 0 when the delta does not compress
 * (out then holds nothing useful). Same buffers as wv__chunk_encode. */
int wv__chunk_encode_delta(const wv_repo *r, const unsigned char id[32],
                           const void *p, size_t n, unsigned elem,
                           const unsigned char base_id[32],
                           const void *base, bool grouped, unsigned char *out,
                           struct wv__codec_ws *scratch, size_t *stored,
                           uint8_t *elem_out, struct wv__err *err);
/* The stored bytes of chunk l as its codec reads them: `stored` itself in
 * a plain repository; unsealed (authenticated) in place otherwise, an
 * uncompressed chunk into none_out when that is not NULL (raw_len bytes).
 * *payload and *plen say where. WV_CORRUPT, naming the chunk, for bytes
 * that do not authenticate. */
int wv__chunk_payload(const wv_repo *r, const struct wv__chunk_loc *l,
                      unsigned char *stored, unsigned char *none_out,
                      size_t raw_len, const unsigned char **payload,
                      size_t *plen, struct wv__err *err);
/* wv__chunk_open for a chunk that may be a delta: `base` is the
 * plaintext of its base (l->base; raw_len bytes), NULL for any other
 * chunk. A delta opened without its base is WV_MISUSE. */
int wv__chunk_open_base(const wv_repo *r, const struct wv__chunk_loc *l,
                        unsigned char *stored, void *out, size_t raw_len,
                        const void *base, struct wv__codec_ws *scratch,
                        int check_id, struct wv__err *err);
/* The inverse for chunk l whose stored bytes are in `stored` (for an
 * unencrypted uncompressed chunk `stored` may be `out`): plaintext into
 * out (raw_len bytes), checked against the id. Messages name the chunk
 * and its pack; WV_CORRUPT_CHECKSUM for bytes that do not hash to the
 * id, WV_CORRUPT for bytes that do not authenticate or decode. `stored`
 * may be overwritten. Thread-safe.
 * A sealed chunk is authenticated by its tag, which binds its id: only a
 * holder of the repository key can make one. Recomputing its keyed id
 * (check_id) adds a check against such a holder, which matters only when
 * a signature decides what is accepted; a plain chunk's hash is its only
 * check and is always verified. */
/* check_id: false (WV__CHECK_SEALED) and true (WV__CHECK_ID) as above;
 * WV__CHECK_FRAME also trusts a plain chunk whose zstd frame carries a
 * content checksum (codec.h), which decoding checked. A commit reads its
 * delta bases so: a delta decodes to its plaintext against whatever bytes
 * its base decodes to, so the checksum only has to catch damage, and a
 * checkout still checks every link against its id. */
enum { WV__CHECK_SEALED = 0, WV__CHECK_ID = 1, WV__CHECK_FRAME = 2 };
int wv__chunk_open(const wv_repo *r, const struct wv__chunk_loc *l,
                   unsigned char *stored, void *out, size_t raw_len,
                   struct wv__codec_ws *scratch, int check_id,
                   struct wv__err *err);

/* Name (64 hex) of a manifest or index object (kind "manifest", "index")
 * whose plaintext is p: its SHA-256, or a keyed hash. */
int wv__object_name(const wv_repo *r, const char *kind, const void *p,
                    size_t n, char hex[65]);
/* Read object `key` whole (at most max plaintext bytes) and return its
 * plaintext (NUL-terminated), unsealed and authenticated. With `name`
 * (64 hex), also check that the plaintext is named so. Failures are
 * WV_CORRUPT_CHECKSUM with a message saying the object is damaged (or
 * altered); store errors pass through. */
int wv__object_get(wv_repo *r, const char *kind, const char *key,
                   const char *name, size_t max, unsigned char **out,
                   size_t *len);
/* Store an object (sealed, bound to its key, when encrypted). */
int wv__object_put(wv_repo *r, const char *kind, const char *key,
                   const void *p, size_t n, unsigned flags);

/* The tail of a pack holding entries ents[0..n): its trailer (sealed in
 * an encrypted repository), u32 n and the end magic. The pack's name is
 * the SHA-256 of these bytes. */
int wv__pack_tail(const wv_repo *r, const struct wv__chunk_loc *ents,
                  size_t n, struct wv__buf *t);
/* Bytes of the tail of a pack of n entries. */
uint64_t wv__pack_tail_len(const wv_repo *r, uint32_t n);
/* The end magic this repository's packs carry. */
const char *wv__pack_end(const wv_repo *r);
/* The n trailer entries of a tail read whole (unsealed in place): -1 if
 * they do not authenticate. *entries points into tail. */
int wv__pack_tail_open(const wv_repo *r, unsigned char *tail, size_t tlen,
                       uint32_t n, const unsigned char **entries);


/* Checking a pack (verify.c: a stored one; wv__pack_check: one whose
 * bytes just arrived). The frame: `size` bytes with head[8] the first
 * and end[12] the last (read only when size >= 20): WV_CORRUPT, naming
 * `key`, unless it is long enough, starts with the magic and ends with
 * this repository's end magic after a count *n of entries whose tail
 * (*tlen bytes) fits. */
int wv__pack_frame(const wv_repo *r, const char *key, uint64_t size,
                   const unsigned char head[8], const unsigned char end[12],
                   uint32_t *n, uint64_t *tlen, struct wv__err *err);
/* The n entries of pack `id` (size bytes) from its tail (tlen bytes,
 * from wv__pack_frame; unsealed in place) into ents[n]: WV_CORRUPT,
 * naming `key`, unless the tail hashes to the pack's name, opens, and
 * every entry lies inside the pack's data with a known codec. */
int wv__pack_entries(const wv_repo *r, const char *key,
                     const unsigned char id[32], uint64_t size,
                     unsigned char *tail, size_t tlen, uint32_t n,
                     struct wv__chunk_loc *ents, struct wv__err *err);
/* What one thread reuses from object to object in wv__object_check and
 * wv__pack_check. */
struct wv__pack_scratch {
    struct wv__codec_ws *ws;
    unsigned char *in, *out;
    size_t in_cap, out_cap;
};
void wv__pack_scratch_release(struct wv__pack_scratch *s);
/* Check object `key` of kind `kind` ("index", "manifest") named `name`
 * (64 hex) whose stored bytes p[0..len) just arrived (sync.c), as
 * wv__object_get checks one it reads: unsealed (a copy, in s) when
 * encrypted, then hashed to its name. WV_CORRUPT_CHECKSUM naming it. */
int wv__object_check(const wv_repo *r, const char *kind, const char *key,
                     const char *name, const unsigned char *p, size_t len,
                     struct wv__pack_scratch *s, struct wv__err *err);
/* Check pack object `key` whose bytes p[0..len) just arrived (sync.c),
 * on its own, before it is kept: its frame and trailer as above, then
 * every chunk. A chunk of a plain repository is decoded and hashed to its
 * id (one stored as is: hashed where it lies, p is only read); a sealed
 * one is authenticated (its seal binds its id, length and codec) and
 * decoded. A delta chunk's base may be in a pack not arrived yet: its
 * frame is decoded to exactly raw_len bytes (and authenticated when
 * sealed), its hash is checked when it is read. *n_chunks: the chunks
 * checked. WV_CORRUPT or WV_CORRUPT_CHECKSUM with a message naming the
 * pack and the chunk; WV_NOMEM. Thread-safe with one scratch per
 * thread. */
int wv__pack_check(const wv_repo *r, const char *key,
                   const unsigned char *p, size_t len,
                   struct wv__pack_scratch *s, uint64_t *n_chunks,
                   struct wv__err *err);

#endif
