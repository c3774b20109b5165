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
 *   parts/<branch>/<txn>/<n>    part records of multi-writer checkpoints
 *                               not finished yet (parts.c)
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
 * keyed hashes too. Code above the object layer (object.h: chunks,
 * objects, pack trailers; refs.h: refs) does not see the difference.
 *
 * The rooms of src/repo/, lowest first (each calls only rooms above it in
 * this list, except where a file's opening comment says otherwise):
 *   util.c      hex, store keys, listing, ref names, the time
 *   crypt.c     primitives, secrets, key slots, signatures (libsodium;
 *               nocrypt.c when built with WV_WITH_CRYPTO=OFF)
 *   object.c    chunks, whole objects, pack trailers (object.h)
 *   state.c     what this client has seen of an encrypted repository
 *   trust.c     trusted keys, the sealed trust list, signature policy
 *   refs.c      branch and tag refs, sealed refs (refs.h)
 *   manifest.c  checkpoints in memory and as stored
 *   keyapi.c    the public key and trust calls
 *   repo.c      open, init, config, chunk index, locks, resolve
 *   and above them commit.c, parts.c (multi-writer checkpoints), async.c,
 *   checkout.c, history.c, gc.c, verify.c, sync.c. Every public entry point (keyapi.c and repo.c too)
 *   takes the handle through async.c's wv__repo_enter/wv__repo_leave;
 *   async.c and commit.c call each other (why: async.c).
 */
#ifndef WV_REPO_H
#define WV_REPO_H

#include "codec.h"
#include "core.h"

#include <pthread.h>
#include "crypt.h"
#include "store.h"
#include "tensor.h"

struct wv__crypt;

#define WV__REPO_VERSION 1
#define WV__REPO_VERSION_ENCRYPTED 2 /* config of an encrypted repository */
/* Versions 3 and 4 are 1 and 2 whose chunks may be deltas (codec 3,
 * docs/repo-format.md "Delta chunks"): a reader that knows only 1 and 2
 * refuses them, so it never misreads, and a gc that does not know delta
 * bases never deletes one. */
#define WV__REPO_VERSION_DELTA 3
#define WV__REPO_VERSION_ENCRYPTED_DELTA 4
/* Default K of a new repository: a chunk is stored whole at least every K
 * commits of a branch (each delta is against that keyframe: commit.c). */
#define WV__DELTA_KEYFRAME_DEFAULT 4
/* Longest chain a reader follows (any K up to it): longer is damage. */
#define WV__CHAIN_MAX 64
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
    /* codec WV__CODEC_DELTA: the id of the chunk it is a delta against
     * (its base; zero otherwise) */
    unsigned char base[WV__ID_LEN];
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
    int version;        /* weightvault_repo: 1..4                  */
    int delta_keyframe; /* K (>= 2: deltas allowed; 0 or 1: none)  */
};
/* The config version a repository made with these options has. */
int wv__init_version(const wv_init_opts *o);
/* Is the version one whose chunks may be deltas? */
#define WV__VERSION_HAS_DELTA(v)                                            \
    ((v) == WV__REPO_VERSION_DELTA || (v) == WV__REPO_VERSION_ENCRYPTED_DELTA)

/* Delta chains (delta.c). Reading a delta chunk needs its base's
 * plaintext, which may be a delta in turn: the chain is followed through
 * the index x (guarded by x_mu when not NULL) to a chunk stored whole,
 * then decoded forwards. Store reads take store_mu when not NULL (the
 * threads of one commit or checkout share the store handle). */
struct wv__chain {
    wv_repo *r;
    const struct wv__chunk_index *x;
    pthread_mutex_t *x_mu, *store_mu;
    int check_id; /* WV__CHECK_* (object.h) */
    /* buffers reused from chunk to chunk */
    unsigned char *stored, *a, *b;
    size_t stored_cap, a_cap, b_cap;
};
/* Links from chunk `id` to a chunk stored whole (0: it is one), or -1 if
 * it is not in x, a base is missing, or the chain exceeds WV__CHAIN_MAX.
 * Takes x_mu itself. */
int wv__chain_depth(struct wv__chain *c, const unsigned char id[32]);
/* The plaintext of delta chunk l's base (l->raw_len bytes) into
 * c's buffer *base. Messages name the chunk whose base is broken. */
int wv__chain_base(struct wv__chain *c, const struct wv__chunk_loc *l,
                   struct wv__codec_ws *ws, const unsigned char **base,
                   struct wv__err *err);
/* The same for a commit's encoder (c->check_id WV__CHECK_FRAME): a base
 * stored whole as bg-zstd in elements of elem (checked by its frame's
 * checksum or its seal) is left byte-grouped (*grouped true: for
 * wv__codec_encode_delta_grouped and wv__codec_estimate_grouped), saving
 * the pass that undoes the grouping; any other as wv__chain_base. In a
 * plain repository `stored`, when not NULL, holds that base's stored
 * bytes (its pack mapped into memory), read from there instead of
 * through the store (no copy, and no wait for the store's lock, which the
 * pack writer holds while it writes). */
int wv__chain_base_grouped(struct wv__chain *c, const struct wv__chunk_loc *l,
                           unsigned elem, const unsigned char *stored,
                           struct wv__codec_ws *ws,
                           const unsigned char **base, bool *grouped,
                           struct wv__err *err);
/* Delta chunk l itself, with its chain: its stored bytes (read already)
 * in `stored`, which may be overwritten; raw_len plaintext bytes into
 * out, checked against l's id (and in an encrypted repository, when
 * c->check_id is false, authenticated). */
int wv__chain_open(struct wv__chain *c, const struct wv__chunk_loc *l,
                   unsigned char *stored, void *out, struct wv__codec_ws *ws,
                   struct wv__err *err);
void wv__chain_release(struct wv__chain *c);

/* The plaintext of the keyframes the next commit of this handle takes as
 * delta bases (delta.c): the chunks its last commit stored whole or
 * found, and the keyframes of those it stored as deltas, carried over
 * from the cache before when they were there. A base found here is not
 * read back. Keyed by chunk id, each entry hashed to its id when it was
 * copied (or a base the delta was made against), so it can only be a
 * chunk's true bytes;
 * a base that is not here (another writer's parent, a chunk beyond the
 * budget) is read from the repository as before. Filled from a handle's
 * second commit on (one commit per handle, as `wv commit` makes, copies
 * nothing), at most WV__PCACHE_BUDGET bytes. The buffers of the cache
 * before are kept as spares and filled by the next commit: memory touched
 * once, not faulted in anew at every commit (page faults were 13 % of a
 * delta commit's profile), at most twice the budget in all. */
#define WV__PCACHE_BUDGET ((uint64_t)256 << 20)
struct wv__pcache {
    struct wv__pcache_ent {
        unsigned char id[WV__ID_LEN];
        unsigned char *p;
        size_t n;
    } *v; /* sorted by id */
    size_t n;
    struct wv__pcache_ent *spare; /* ids unused */
    size_t n_spare;
};
/* Chunk id's plaintext of n bytes, or NULL. Read-only: any thread. */
const unsigned char *wv__pcache_get(const struct wv__pcache *pc,
                                    const unsigned char id[32], size_t n);
/* Chunk id's plaintext of n bytes, taken over by the caller (the entry
 * then holds none), or NULL. Not thread-safe. */
unsigned char *wv__pcache_take(struct wv__pcache *pc,
                               const unsigned char id[32], size_t n);
/* A spare buffer of exactly n bytes, taken over by the caller, or NULL.
 * Not thread-safe. */
unsigned char *wv__pcache_spare(struct wv__pcache *pc, size_t n);
/* Replace pc's entries by the n chunks ids[i] (32 bytes each) whose
 * plaintext is p[i] (NULL: not kept; taken over otherwise, lens[i]
 * bytes); the entries before become the spares (those before them are
 * freed). p[] is emptied. WV_NOMEM leaves pc empty. */
int wv__pcache_set(struct wv__pcache *pc, unsigned char *const *ids,
                   unsigned char **p, const size_t *lens, size_t n);
void wv__pcache_release(struct wv__pcache *pc);

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
    char *state_file; /* state.c: this client's record of it, or NULL */
    /* Chunks the last commit found equal to its parent's by comparing
     * bytes instead of hashing (commit.c; read by the tests). */
    uint64_t n_same_as_parent;
    /* delta.c: the last commit's plaintext (above), the commits this
     * handle made, and the bases the last commit found in the cache
     * (read by the tests) */
    struct wv__pcache pcache;
    uint64_t n_commits;
    uint64_t n_pcache_hits;
    /* Plaintext bytes of the chunks the last wv_repo_read_region, or
     * the last visit of a global tensor, read (checkout.c; read by the
     * tests and bench/bench_dist). */
    uint64_t n_region_read;
    /* Set by the tests only: commit deltas as earlier releases did, each
     * against the parent's chunk (chains up to K-1 links), so the
     * reader's path for such chains stays tested (commit.c link_bases). */
    bool delta_chained;
};

/* A manifest in memory. */
/* One stored region of a global tensor of a multi-writer checkpoint: its
 * chunks are chunks[first .. first + n_chunks) of its tensor, cutting the
 * region's own bytes (C order) in chunk_size slices. */
struct wv__mshard {
    uint64_t offset[WV_MAX_DIMS], shape[WV_MAX_DIMS];
    uint64_t nbytes;
    size_t first, n_chunks;
    uint32_t writer;
};
#define WV__MAX_SHARDS 4096 /* per tensor (disjointness is checked pairwise) */
#define WV__MAX_WRITERS 65536

struct wv__mtensor {
    char *name;
    wv_dtype dtype;
    int ndim;
    uint64_t shape[WV_MAX_DIMS]; /* global shape when sharded */
    uint64_t nbytes;
    size_t n_chunks;             /* all shards' chunks when sharded */
    unsigned char (*chunks)[WV__ID_LEN];
    /* A part record's tensor may be a region of a global tensor. */
    bool has_region;
    uint64_t gshape[WV_MAX_DIMS], goffset[WV_MAX_DIMS];
    /* A merged multi-writer checkpoint: the stored regions (none: the
     * tensor is stored whole) and the writers that stored the tensor. */
    struct wv__mshard *shards;
    size_t n_shards;
    uint32_t *writers;
    size_t n_writers;
};
/* Plaintext bytes of chunk k of t (shard-aware). */
uint64_t wv__mtensor_chunk_len(const struct wv__mtensor *t,
                               uint64_t chunk_size, size_t k);
/* Are the boxes (offset, shape) of t's shards pairwise disjoint and do
 * they fill the tensor? WV_CORRUPT with a message naming the tensor (and
 * `whose`, e.g. the writers) otherwise. */
int wv__shards_tile(const struct wv__mtensor *t, const char *what,
                    struct wv__err *err);

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
    /* A part record of a multi-writer checkpoint (parts.c): its
     * transaction, writer index and number of writers. */
    char *txn;
    uint32_t writer, n_writers;
    /* A merged multi-writer checkpoint: the names (64 hex, object names
     * of kind "part") of the part records it was made from, by writer. */
    char (*parts)[WV__HEX_LEN + 1];
    size_t n_parts;
};

void wv__manifest_release(struct wv__manifest *mf);
/* Serialise (deterministic bytes) into b. */
int wv__manifest_encode(const struct wv__manifest *mf, struct wv__buf *b);
int wv__manifest_parse(const char *text, size_t len, const char *what,
                       struct wv__manifest *mf, struct wv__err *err);
/* Load manifest `hex_id` from the store, checking its hash. */
int wv__manifest_load(wv_repo *r, const char *hex_id,
                      struct wv__manifest *mf);
/* Signatures: sign the encoded manifest in b (its signature member is
 * appended; mf gets it too). */
int wv__manifest_sign(wv_repo *r, const unsigned char *sk,
                      struct wv__manifest *mf, struct wv__buf *b);

/* Keys and the other shared helpers (util.c). */
void wv__hex(const unsigned char *id, size_t n, char *out);
int wv__unhex(const char *hex, unsigned char *id, size_t n);
/* Lowercase hex digits only? n bytes from 2n of them (no terminator
 * needed; -1 if not hex). */
bool wv__is_hex(const char *s, size_t n);
int wv__unhex_n(const char *hex, unsigned char *out, size_t n);
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
 * (sync.c); adding a trusted key back deletes its marker (keyapi.c). */
#define WV__REVOKED "revoked/"
int wv__repo_lock(wv_repo *r, bool exclusive);
void wv__repo_unlock(wv_repo *r);

/* Resolve "main", "latest", a tag, or a manifest id prefix (>= 6 hex). */
int wv__repo_resolve(wv_repo *r, const char *ref, char out[65]);
/* Branch names: [A-Za-z0-9._-], not starting with '.', at most 100. */
bool wv__ref_name_ok(const char *name);
/* Transaction names of multi-writer checkpoints: [A-Za-z0-9._-], 1..100. */
bool wv__txn_name_ok(const char *name);

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

/* The body of wv_repo_commit_part (parts.c), for callers that hold the
 * mutex (the asynchronous commit's worker). */
int wv__repo_commit_part_locked(wv_repo *r, const wv_model *m,
                                const char *branch, const wv_part_opts *part,
                                const wv_commit_opts *opts,
                                char id[WV_ID_HEX]);
/* The checks of wv_repo_commit_part's arguments that need no store:
 * WV_MISUSE and a message in err. */
int wv__part_check(const wv_model *m, const char *branch,
                   const wv_part_opts *part, struct wv__err *err);

/* wv__repo_commit_locked with a hook for multi-writer parts (parts.c):
 * when publish is not NULL, once the chunks and their index are durable it
 * is called with the manifest (parent: the branch head seen) instead of
 * storing the manifest and moving the branch; its status is returned
 * (out_id stays ""). The shared lock is held during the call. */
int wv__repo_commit_ex(wv_repo *r, const wv_model *m, const char *branch,
                       const wv_commit_opts *opts,
                       int (*publish)(void *arg, struct wv__manifest *mf),
                       void *publish_arg, char out_id[WV_ID_HEX]);
/* Store a manifest (signed with secret key sk when not NULL) under its
 * id, returned in hex (commit.c). */
int wv__put_manifest(wv_repo *r, struct wv__manifest *mf,
                     const unsigned char *sk, char hex[65]);
/* Refuse (WV_AUTH_SIGNATURE) a commit signed with sk (NULL: unsigned)
 * that the repository's trusted keys would make unreadable. */
int wv__signer_trusted(wv_repo *r, const unsigned char *sk);

/* gc of multi-writer parts (parts.c): remove the part records of
 * finished transactions and of unfinished ones whose newest part is at
 * least `timeout` seconds old (0: a day), those counted in *removed; put the
 * chunks of the younger ones into `live`. Nothing is deleted on dry_run. */
int wv__parts_gc(wv_repo *r, uint32_t timeout, bool dry_run,
                 struct wv__chunk_index *live, uint64_t *removed);
/* The marker of a finished transaction (parts.c), "<64 hex> <time>\n" as
 * read from the store: the checkpoint id into id, the time it was written
 * into *when (-1: none readable). -1 when the bytes are not a marker. */
int wv__part_done_parse(const char *text, size_t len, char id[65],
                        int64_t *when);

/* Pack layout (commit.c writes packs, gc.c repacks, verify.c checks):
 * "WVPACK01" | chunks | n x entry | u32 n | "WVPKEND1". */
#define WV__PACK_MAGIC "WVPACK01"
#define WV__PACK_END "WVPKEND1"
#define WV__PACK_END_SEALED "WVPKENC1" /* an encrypted repository's */
#define WV__PACK_ENTRY 58

/* Client state (state.c): the highest write counter of each sealed ref,
 * and trust-list version, this user has seen of an encrypted repository.
 * wv__state_open finds the handle's state file (r->state_file; NULL when
 * there is nowhere to keep one) once, at open. wv__state_seen, for a ref
 * read, refuses (WV_AUTH_ROLLBACK, naming `shown`) a counter below the
 * record of `key` unless WV_ALLOW_ROLLBACK is set, and raises that record
 * and the trust list's to trust_v: one locked read and at most one write.
 * wv__state_raise only raises the record of `key`, returning the record
 * before in *known (may be NULL). A state that cannot be written is not
 * an error. */
bool wv__allow_rollback(void);
int wv__state_open(wv_repo *r);
int wv__state_seen(wv_repo *r, const char *key, uint64_t seen,
                   const char *shown, uint64_t trust_v);
int wv__state_raise(wv_repo *r, const char *key, uint64_t v,
                    uint64_t *known);

#endif
