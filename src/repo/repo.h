/*
 * repo.h -- private interface of the checkpoint repository.
 *
 * The on-disk format is specified in docs/repo-format.md. In short, a
 * repository is a store (store.h) holding:
 *
 *   config                      JSON: format version, chunk and pack sizes,
 *                               compression
 *   packs/<2 hex>/<64 hex>      packs of encoded chunks, named by the
 *                               SHA-256 of their bytes, each ending in a
 *                               binary table of its chunks
 *   index/<64 hex>              JSON: where each chunk lives (pack, offset,
 *                               lengths, codec), one object per commit
 *   manifests/<2 hex>/<64 hex>  JSON checkpoint: parent, time, message,
 *                               metadata, tensors with their chunk ids;
 *                               named by the SHA-256 of its bytes
 *   refs/heads/<branch>         manifest id of the branch head
 *   refs/tags/<tag>             manifest id (tags never move)
 *   locks/<random>              shared (commit) and exclusive (gc) locks
 *
 * A chunk is a slice of one tensor's bytes (C order, little-endian): a whole
 * tensor up to chunk_size bytes, fixed chunk_size slices of a larger one.
 * Its id is the SHA-256 of its plaintext, checked on every read.
 *
 * An encrypted repository (crypt.c) has the same objects, sealed: ids and
 * names are keyed hashes, every object but the version marker and the key
 * slots (keys/<id>) is XChaCha20-Poly1305 ciphertext, and ref names are
 * keyed hashes too. Code above the helpers declared at the end of this
 * file does not see the difference.
 */
#ifndef WV_REPO_H
#define WV_REPO_H

#include "codec.h"
#include "core.h"
#include "crypt.h"
#include "store.h"
#include "tensor.h"

#define WV__REPO_VERSION 1
#define WV__REPO_VERSION_ENCRYPTED 2 /* config of an encrypted repository */
#define WV__ID_LEN 32
#define WV__HEX_LEN 64
#define WV__MAX_JSON ((size_t)1 << 30) /* manifests and indexes */

struct wv__chunk_loc {
    unsigned char id[WV__ID_LEN];
    unsigned char pack[WV__ID_LEN];
    uint64_t off;        /* in the pack                          */
    uint64_t stored_len; /* bytes in the pack                    */
    uint64_t raw_len;    /* plaintext bytes                      */
    uint8_t codec;       /* WV__CODEC_*                          */
    uint8_t elem;        /* element size for byte grouping       */
};

/* Chunk id -> location, an open-addressing table. */
struct wv__chunk_index {
    struct wv__chunk_loc *slots;
    size_t cap, n;
};
int wv__cidx_put(struct wv__chunk_index *x, const struct wv__chunk_loc *l);
const struct wv__chunk_loc *wv__cidx_get(const struct wv__chunk_index *x,
                                         const unsigned char id[32]);
void wv__cidx_release(struct wv__chunk_index *x);

struct wv__repo_config {
    uint64_t chunk_size;
    uint64_t pack_size;
    int compression; /* WV__CODEC_* */
    int level;
};

struct wv_repo {
    struct wv__store *store;
    char *uri;
    struct wv__repo_config cfg;
    struct wv__chunk_index cidx;
    bool cidx_loaded;
    char **idx_keys; /* the index objects cidx was built from, sorted */
    size_t n_idx_keys;
    char lock_key[96]; /* our lock object, "" when none */
    struct wv__err err;
    struct wv__async *async; /* async.c: queue, worker, handle mutex */
    struct wv__crypt *crypt; /* NULL: not encrypted                  */
    /* Chunks the last commit found equal to its parent's by comparing
     * bytes instead of hashing (commit.c; read by the tests). */
    uint64_t n_same_as_parent;
};

/* A manifest in memory. */
struct wv__mtensor {
    char *name;
    wv_dtype dtype;
    int ndim;
    uint64_t shape[WV_MAX_DIMS];
    uint64_t nbytes;
    size_t n_chunks;
    unsigned char (*chunks)[WV__ID_LEN];
};

struct wv__manifest {
    char id[WV__HEX_LEN + 1]; /* "" until stored or loaded */
    char parent[WV__HEX_LEN + 1];
    char *branch;
    char *time;    /* RFC 3339 UTC */
    char *message;
    uint64_t chunk_size;
    struct wv__meta *meta;
    size_t n_meta;
    bool meta_absent;  /* the source file had no metadata field at all   */
    bool meta_default; /* the source had no metadata of its own: writers
                          may add their defaults ({"format": "pt"})     */
    struct wv__mtensor *tensors;
    size_t n_tensors;
    /* An Ed25519 signature (the last member, "signature"), over the
     * manifest without it. sig_ok: it verifies. */
    bool has_sig, sig_ok;
    unsigned char sig_key[32];
    unsigned char sig[64];
};

void wv__manifest_release(struct wv__manifest *mf);
/* Serialise (deterministic bytes) into b. */
int wv__manifest_encode(const struct wv__manifest *mf, struct wv__buf *b);
int wv__manifest_parse(const char *text, size_t len, const char *what,
                       struct wv__manifest *mf, struct wv__err *err);
/* Load manifest `hex_id` from the store, checking its hash. */
int wv__manifest_load(wv_repo *r, const char *hex_id,
                      struct wv__manifest *mf);

/* Keys. */
void wv__hex(const unsigned char *id, size_t n, char *out);
int wv__unhex(const char *hex, unsigned char *id, size_t n);
void wv__pack_key(const unsigned char id[32], char out[96]);
void wv__manifest_key(const char *hex, char out[96]);
/* The inverse, for keys found by listing (gc.c): the hex id of a
 * "manifests/ab/<64 hex>" key (NULL for any other key), the id of a
 * "packs/ab/<64 hex>" key (-1 for any other). */
const char *wv__manifest_key_hex(const char *key);
int wv__pack_key_id(const char *key, unsigned char id[32]);

/* List keys under a prefix (wv__repo_list_free releases them). */
int wv__repo_list(wv_repo *r, const char *prefix, char ***keys, size_t *n);
void wv__repo_list_free(char **keys, size_t n);

/* List keys under a prefix with their sizes, in the store's order, into an
 * empty list (wv__objlist_release releases it, also after a failure). */
struct wv__obj {
    char *key;
    uint64_t size;
};
struct wv__objlist {
    struct wv__obj *v;
    size_t n, cap;
};
int wv__repo_list_sized(wv_repo *r, const char *prefix,
                        struct wv__objlist *out);
void wv__objlist_release(struct wv__objlist *l);

/* Load every index object into r->cidx; on later calls, refresh it (read
 * new index objects, rebuild if a gc replaced any). */
int wv__repo_load_index(wv_repo *r);
/* Parse index object text; cb is called for every entry and a non-zero
 * return stops the parse and is returned. */
int wv__index_parse(const char *text, size_t len, const char *what,
                    int (*cb)(void *arg, const struct wv__chunk_loc *l),
                    void *arg, struct wv__err *err);

/* Locks: shared for commits, exclusive for gc. A lock whose owner is a dead
 * process on this host, or older than WV__LOCK_STALE seconds, is stale. */
#define WV__LOCK_STALE 1800
/* The current UTC time as "2026-11-28T23:30:00Z" (manifests, key slots). */
void wv__utc_now(char out[32]);

/* Removing a key slot or a trusted key first writes a marker
 * "revoked/<its key>", so a push or pull removes it at the other end too
 * (sync.c); adding a trusted key back deletes its marker (crypt.c). */
#define WV__REVOKED "revoked/"
int wv__repo_lock(wv_repo *r, bool exclusive);
void wv__repo_unlock(wv_repo *r);

/* Resolve "main", "latest", a tag, or a manifest id prefix (>= 6 hex). */
int wv__repo_resolve(wv_repo *r, const char *ref, char out[65]);
/* Branch names: [A-Za-z0-9._-], not starting with '.', at most 100. */
bool wv__ref_name_ok(const char *name);

/* wv_repo_checkout without waiting or locking (for callers that already
 * hold the repository, such as diff). */
int wv__repo_checkout_locked(wv_repo *r, const char *ref,
                             const wv_checkout_opts *opts, wv_model **out);

/* Read one chunk into out (raw_len bytes), decoded (with ws, for chunks of
 * up to scratch_len bytes) and hash-checked. */
int wv__repo_read_chunk(wv_repo *r, const unsigned char id[32], void *out,
                        size_t raw_len, struct wv__codec_ws *ws,
                        size_t scratch_len,
                        unsigned char **pack_buf, size_t *pack_cap);

/* Asynchronous commits and the handle's mutex (async.c). Every public
 * wv_repo_* entry point (but open and errmsg) brackets its work with
 * wv__repo_enter/wv__repo_leave: enter waits until the pending
 * asynchronous commits are done, then takes the repository's mutex, so
 * calls on one handle from several threads are serialised and see every
 * commit started before them. Not reentrant: internal code calls the
 * *_locked functions. */
int wv__repo_async_init(wv_repo *r);
void wv__repo_async_release(wv_repo *r); /* waits, stops the worker */
void wv__repo_enter(wv_repo *r);
void wv__repo_leave(wv_repo *r);
/* wv__repo_leave, passing rc through. */
int wv__repo_leave_rc(wv_repo *r, int rc);
/* WV__REPO_LOCKED(r, call): the whole body of a public entry point, which
 * evaluates `call` (an int status, usually a *_locked function) between
 * wv__repo_enter and wv__repo_leave and yields it:
 *     return WV__REPO_LOCKED(r, repo_stat_locked(r, ref, out));
 * A macro rather than a helper taking a function pointer and an argument
 * struct: the entry points have a dozen different signatures, so such a
 * helper needs an argument struct and a trampoline per entry point (more
 * code than the three lines each one had) and hides the arguments from
 * the compiler's type checks. The comma operator runs enter before `call`,
 * and `call`, an argument of wv__repo_leave_rc, runs before leave. `r` is
 * evaluated more than once: pass a plain variable. */
#define WV__REPO_LOCKED(r, call)                                            \
    (wv__repo_enter(r), wv__repo_leave_rc((r), (call)))
/* The body of wv_repo_commit, for callers that hold the mutex. */
int wv__repo_commit_locked(wv_repo *r, const wv_model *m, const char *branch,
                           const wv_commit_opts *opts, char id[WV_ID_HEX]);

/* Pack layout (commit.c writes packs, gc.c repacks, verify.c checks):
 * "WVPACK01" | chunks | n x entry | u32 n | "WVPKEND1". */
#define WV__PACK_MAGIC "WVPACK01"
#define WV__PACK_END "WVPKEND1"
#define WV__PACK_END_SEALED "WVPKENC1" /* an encrypted repository's */
#define WV__PACK_ENTRY 58

/* ---- what differs in an encrypted repository (crypt.c) -----------------
 * Each helper does the plain thing when r->crypt is NULL. */

/* Open-time: the sealed part of an encrypted config (base64 text) to the
 * inner config's JSON, after unwrapping the repository key from a key
 * slot with the secret given (or from the environment). */
int wv__crypt_unlock(wv_repo *r, const char *sealed, size_t sealed_len,
                     const char *passphrase, const char *key_file,
                     unsigned char **inner, size_t *inner_len);
/* Init-time: write a key slot for the secret given and the config whose
 * sealed part is `inner` (the plain config's JSON). */
int wv__crypt_create(struct wv__store *s, const char *uri, const char *inner,
                     size_t inner_len, const wv_init_opts *opts,
                     struct wv__err *err);

/* Chunk id: SHA-256 of the plaintext, or HMAC-SHA256 under the
 * repository's id key. Thread-safe; WV_NOMEM only. */
int wv__chunk_id(const wv_repo *r, const void *p, size_t n,
                 unsigned char id[32]);
/* Bytes a chunk of n plaintext bytes may take when stored. */
size_t wv__chunk_bound(const wv_repo *r, size_t n);
/* Encode a chunk as stored: the repository's codec, then sealed (bound to
 * its id, length and codec). out holds wv__chunk_bound(r, n) bytes,
 * scratch n. Thread-safe. */
void wv__chunk_encode(const wv_repo *r, const unsigned char id[32],
                      const void *p, size_t n, unsigned elem,
                      unsigned char *out, void *scratch, size_t *stored,
                      uint8_t *codec, uint8_t *elem_out);
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
int wv__chunk_open(const wv_repo *r, const struct wv__chunk_loc *l,
                   unsigned char *stored, void *out, size_t raw_len,
                   void *scratch, bool check_id, struct wv__err *err);

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

/* Refs. The store key of branch or tag `name` (dir "heads" or "tags"):
 * refs/<dir>/<name>, or a keyed hash of it when encrypted. */
int wv__ref_key(const wv_repo *r, const char *dir, const char *name,
                char key[160]);
/* Read ref `key`: its value as stored (what a compare-and-swap compares:
 * in an encrypted repository a fresh nonce makes every write differ), the
 * checkpoint id it holds and, if name_cap, its name. `shown` names it in
 * messages (NULL: the key). WV_NOTFOUND passes through; a value that does
 * not decode or authenticate is WV_CORRUPT. */
int wv__ref_read(wv_repo *r, const char *key, const char *shown,
                 char raw[WV__REF_RAW_MAX], char id[65], char *name,
                 size_t name_cap);
/* The value to store for ref `key` named `name` holding `id`. */
int wv__ref_value(wv_repo *r, const char *key, const char *name,
                  const char *id, char out[WV__REF_RAW_MAX]);

/* Signatures: sign the encoded manifest in b (its signature member is
 * appended; mf gets it too). */
int wv__manifest_sign(wv_repo *r, const unsigned char *sk,
                      struct wv__manifest *mf, struct wv__buf *b);
/* Is checkpoint mf acceptable? A signature that does not verify never
 * is; with a verify_signer key file, or trusted keys in the repository,
 * a signature by that key (one of them) is required (*required says
 * whether one was; may be NULL). WV_AUTH_SIGNATURE naming what failed. */
int wv__sig_policy(wv_repo *r, const struct wv__manifest *mf,
                   const char *verify_signer, bool *required);
/* Do chunk ids and sealed objects mean the same in both (both plain, or
 * both encrypted with the same repository key)? For push and pull, which
 * copy objects as they are stored. */
bool wv__repo_same_keys(const wv_repo *a, const wv_repo *b);
/* The trusted public keys (wv__free the array). */
int wv__trust_keys(wv_repo *r, unsigned char (**keys)[32], size_t *n);
/* Encrypted repositories: the sealed trust list (a ref-like object whose
 * version only grows; docs/repo-format.md 14.10) is copied from s to d
 * when d's is missing or older (push, pull). */
#define WV__TRUST_REF "refs/trust"
int wv__trust_sync(wv_repo *s, wv_repo *d, struct wv__err *err);
/* An id of an encrypted repository only holders of its key can compute
 * (32 hex digits), naming its client state. */
int wv__crypt_repo_id(const wv_repo *r, char hex[33]);

/* Client state (state.c): the highest write counter of each sealed ref,
 * and trust-list version, this user has seen of an encrypted repository.
 * wv__state_seen refuses (WV_AUTH_ROLLBACK, naming `shown`) a value below
 * the record unless WV_ALLOW_ROLLBACK is set, and raises the record;
 * wv__state_raise only raises it, returning the record before in *known
 * (may be NULL). A state that cannot be written is not an error. */
bool wv__allow_rollback(void);
int wv__state_seen(wv_repo *r, const char *key, uint64_t seen,
                   const char *shown);
int wv__state_raise(wv_repo *r, const char *key, uint64_t v,
                    uint64_t *known);

#endif
