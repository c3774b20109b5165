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
 */
#ifndef WV_REPO_H
#define WV_REPO_H

#include "codec.h"
#include "store.h"

#define WV__REPO_VERSION 1
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

/* Read one chunk into out (raw_len bytes), decoded and hash-checked. */
int wv__repo_read_chunk(wv_repo *r, const unsigned char id[32], void *out,
                        size_t raw_len, void *scratch, size_t scratch_len,
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
/* The body of wv_repo_commit, for callers that hold the mutex. */
int wv__repo_commit_locked(wv_repo *r, const wv_model *m, const char *branch,
                           const wv_commit_opts *opts, char id[WV_ID_HEX]);

/* Pack layout (commit.c writes packs, gc.c repacks, verify.c checks):
 * "WVPACK01" | chunks | n x entry | u32 n | "WVPKEND1". */
#define WV__PACK_MAGIC "WVPACK01"
#define WV__PACK_END "WVPKEND1"
#define WV__PACK_ENTRY 58

#endif
