/*
 * commit.c -- storing a tensor set as a checkpoint.
 *
 * Protocol (a crash at any point leaves the previous state intact and at
 * worst unreferenced objects that gc removes):
 *   1. take a shared lock (gc cannot run meanwhile);
 *   2. cut every tensor into chunks; worker threads (one per core) hash
 *      each and encode (compress, and seal in an encrypted repository) the
 *      ones the repository does not have yet, a bounded window ahead of
 *      this thread, which appends them in order to packs; a background
 *      thread writes full packs (without fsync) while the next one fills;
 *   3. write the index object of the new packs, then one sync barrier makes
 *      packs and index durable;
 *   4. write the manifest (durable);
 *   5. compare-and-swap the branch ref from the head seen in step 2 to the
 *      new manifest. If another writer moved it, re-parent the manifest on
 *      the new head and retry (the data is already stored), or report.
 *
 * Delta chunks (docs/repo-format.md "Delta chunks"): a chunk the index
 * lacks, of a tensor the parent checkpoint has with the same name, dtype,
 * shape and chunking, is also encoded as its XOR against the parent's
 * chunk at the same index, or against the keyframe that chunk is a delta
 * of (link_bases), and stored so when that is smaller (encode_with_base
 * says how "smaller" is judged without compressing twice). A keyframe K-1
 * commits back makes the chunk a new keyframe: a checkout reads at most
 * one base, and the deltas grow only for K-1 commits.
 *
 * Pack layout (docs/repo-format.md):
 *   "WVPACK01" | stored chunk bytes ... | trailer
 *   trailer = n x {id[32], u64 off, u64 stored_len, u64 raw_len, u8 codec,
 *                  u8 elem} | u32 n | "WVPKEND1"
 * all little-endian (an encrypted repository seals the entries and ends
 * with "WVPKENC1": object.c). A pack's id is the SHA-256 of its trailer,
 * which names every chunk (by plaintext hash) and its placement, so
 * identical packs get identical ids without hashing the data twice.
 */
#include "core.h"
#include "crypt.h"
#include "object.h"
#include "pipeline.h"
#include "refs.h"
#include "repo.h"
#include "tensor.h"
#include "trust.h"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

/* A plain repository without compression stores chunks as they are: no
 * encoding, and packs written straight from the tensors. */
static bool stores_raw(const wv_repo *r)
{
    return r->crypt == NULL && r->cfg.compression == WV__CODEC_NONE;
}

/* A pack being formed: its bytes in order are the pieces seg[]; the
 * magic, encoded chunks and the trailer are placed in p, while a chunk a
 * plain uncompressed repository stores as it is stays where the tensor
 * has it and is written from there (no copy, no buffer to fault in). */
struct packbuf {
    unsigned char *p;
    size_t used, cap; /* of p                                   */
    size_t len;       /* of the pack so far: the next chunk's offset */
    struct iovec *seg;
    size_t n_seg, cap_seg;
    struct wv__chunk_loc *ents;
    size_t n_ents, cap_ents;
};

/* Append the n bytes at q to the pack's pieces (joined to the last piece
 * when they follow it in memory: consecutive chunks of a tensor become
 * one piece). */
static int pack_piece(struct packbuf *b, const unsigned char *q, size_t n)
{
    struct iovec *last = b->n_seg ? &b->seg[b->n_seg - 1] : NULL;
    if (last && (const unsigned char *)last->iov_base + last->iov_len == q) {
        last->iov_len += n;
        return WV_OK;
    }
    if (wv__grow(&b->seg, &b->cap_seg, b->n_seg, sizeof *b->seg, 16) != WV_OK)
        return WV_NOMEM;
    b->seg[b->n_seg++] = (struct iovec){(void *)q, n};
    return WV_OK;
}

struct packer {
    wv_repo *r;
    /* Chunks are stored as they are (plain repository, no compression):
     * they are written from the tensors and take no room in p. */
    bool raw;
    struct packbuf buf[2];
    int cur;
    /* Guards r->cidx while chunk workers look chunks up in it (NULL: no
     * workers; struct chunker's). Only this thread changes the table. */
    pthread_mutex_t *cidx_mu;
    /* Guards the store while workers read delta bases (struct chunker's;
     * NULL: nothing else uses it). */
    pthread_mutex_t *store_mu;
    /* background writer */
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int job;      /* buffer index to write, -1 none */
    bool busy;    /* writer working on a job */
    bool quit;
    int wrc;      /* writer's sticky status */
    char wmsg[WV_ERRBUF_SIZE];
    /* everything written by this commit, for the index object */
    struct wv__chunk_loc *all;
    size_t n_all, cap_all;
};

static void cidx_lock(struct packer *pk)
{
    if (pk->cidx_mu)
        pthread_mutex_lock(pk->cidx_mu);
}

static void cidx_unlock(struct packer *pk)
{
    if (pk->cidx_mu)
        pthread_mutex_unlock(pk->cidx_mu);
}

/* Called by the writer thread (or inline): finish and store pack `b`. */
static int write_pack(struct packer *pk, struct packbuf *b,
                      struct wv__err *err)
{
    struct wv__buf t = {0};
    unsigned char id[32];
    char key[96];
    int rc = WV_OK;
    if (wv__pack_tail(pk->r, b->ents, b->n_ents, &t) != WV_OK ||
        b->used + t.len > b->cap ||
        pack_piece(b, b->p + b->used, t.len) != WV_OK) {
        wv__buf_release(&t);
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    wv__sha256_buf(t.p, t.len, id);
    memcpy(b->p + b->used, t.p, t.len);
    wv__pack_key(id, key);
    if (pk->store_mu)
        pthread_mutex_lock(pk->store_mu);
    rc = wv__store_putv(pk->r->store, key, b->seg, b->n_seg,
                        WV_PUT_IF_ABSENT | WV_PUT_NOSYNC);
    if (pk->store_mu)
        pthread_mutex_unlock(pk->store_mu);
    wv__buf_release(&t);
    for (size_t i = 0; i < b->n_ents; i++)
        memcpy(b->ents[i].pack, id, 32);
    return rc;
}

static void *writer_main(void *arg)
{
    struct packer *pk = arg;
    pthread_mutex_lock(&pk->mu);
    for (;;) {
        while (pk->job < 0 && !pk->quit)
            pthread_cond_wait(&pk->cv, &pk->mu);
        if (pk->job < 0 && pk->quit)
            break;
        int j = pk->job;
        pk->job = -1;
        pk->busy = true;
        pthread_mutex_unlock(&pk->mu);
        struct wv__err e = {0};
        int rc = pk->wrc == WV_OK ? write_pack(pk, &pk->buf[j], &e) : WV_OK;
        pthread_mutex_lock(&pk->mu);
        if (rc != WV_OK && pk->wrc == WV_OK) {
            pk->wrc = rc;
            /* Store errors land in the repository's message. */
            snprintf(pk->wmsg, sizeof pk->wmsg, "%s",
                     e.msg[0] ? e.msg : pk->r->err.msg);
        }
        pk->busy = false;
        pthread_cond_broadcast(&pk->cv);
    }
    pthread_mutex_unlock(&pk->mu);
    return NULL;
}

/* Wait until the writer is idle. */
static void writer_wait(struct packer *pk)
{
    if (!pk->th_started)
        return;
    pthread_mutex_lock(&pk->mu);
    while (pk->job >= 0 || pk->busy)
        pthread_cond_wait(&pk->cv, &pk->mu);
    pthread_mutex_unlock(&pk->mu);
}

static int record_written(struct packer *pk, struct packbuf *b)
{
    int rc = WV_OK;
    cidx_lock(pk);
    for (size_t i = 0; i < b->n_ents; i++) {
        if (wv__grow(&pk->all, &pk->cap_all, pk->n_all, sizeof *pk->all,
                     256) != WV_OK) {
            rc = WV_NOMEM;
            break;
        }
        pk->all[pk->n_all++] = b->ents[i];
        /* The index entry was inserted with a zero pack id. */
        struct wv__chunk_loc *l =
            (struct wv__chunk_loc *)wv__cidx_get(&pk->r->cidx, b->ents[i].id);
        if (l)
            memcpy(l->pack, b->ents[i].pack, 32);
    }
    cidx_unlock(pk);
    if (rc != WV_OK)
        return rc;
    b->n_ents = 0;
    b->len = b->used = b->n_seg = 0;
    return WV_OK;
}

/* Hand the current buffer to the writer and continue in the other one. */
static int flush_pack(struct packer *pk, struct wv__err *err)
{
    struct packbuf *b = &pk->buf[pk->cur];
    if (b->n_ents == 0)
        return WV_OK;
    if (!pk->th_started) {
        int rc = write_pack(pk, b, err);
        return rc == WV_OK ? record_written(pk, b) : rc;
    }
    int other = 1 - pk->cur;
    pthread_mutex_lock(&pk->mu);
    while (pk->job >= 0 || pk->busy)
        pthread_cond_wait(&pk->cv, &pk->mu);
    int wrc = pk->wrc;
    pthread_mutex_unlock(&pk->mu);
    if (wrc != WV_OK)
        return wv__seterr(err, wrc, "%s", pk->wmsg);
    /* The other buffer's pack is written: record it, then reuse it. */
    if (pk->buf[other].n_ents && record_written(pk, &pk->buf[other]) != WV_OK)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    pthread_mutex_lock(&pk->mu);
    pk->job = pk->cur;
    pthread_cond_broadcast(&pk->cv);
    pthread_mutex_unlock(&pk->mu);
    pk->cur = other;
    return WV_OK;
}

/* One chunk of the commit: what the workers get (below). */
struct cjob {
    const unsigned char *p;
    size_t n;
    unsigned char *id; /* into the manifest */
    /* The same chunk of the parent checkpoint, stored raw in a pack
     * mapped into memory (NULL: none): equal bytes have its id. */
    const unsigned char *prev;
    unsigned char prev_id[WV__ID_LEN];
    unsigned elem;
    size_t stored;     /* > 0: encoded into its slot */
    uint8_t codec, elem_out;
    /* The parent's chunk at the same index, a delta base for this one
     * (has_base), kept in `base` when the delta is stored (codec 3). */
    bool has_base;
    unsigned char base[WV__ID_LEN];
    /* Stored bytes of the base (a keyframe, stored whole): what the
     * whole encoding of this one likely takes. */
    uint64_t est;
    /* In a plain repository, those bytes in a mapping of their pack
     * (map_bases; NULL: read through the store). */
    const unsigned char *base_stored;
    /* What is kept for the next commit, whose base is this one's
     * keyframe when this one is a delta or equal to it: kept_base, the
     * copy made (keep_copy) holds the base instead; take_cached, the base
     * is in the handle's cache (cached: looked up before the copy, which
     * is then not made) and keep_set moves it over. A chunk with a
     * cached base that is stored whole is copied once encoded. */
    bool kept_base, cached, take_cached;
};

/* ---- unchanged chunks ----------------------------------------------------
 * A checkpoint usually repeats most of its parent. In a plain repository
 * the parent's chunks stored raw (no compression, or incompressible) can
 * be compared byte for byte in a mapping of their pack, which costs a
 * fraction of hashing them: equal bytes have the parent's chunk id, by
 * definition of a content address; any difference, and any chunk that is
 * not in the page cache (reading it from disk could cost more than the
 * hash), is hashed as usual. A pack whose bytes were damaged on disk can
 * only make the comparison fail, or match data equal to the damage, which
 * the hash check of every read then reports: never a wrong id silently. */
#define WV__MAX_MAPS 4096

struct pmaps {
    struct pmap {
        unsigned char pack[WV__ID_LEN];
        struct wv__store_map m; /* m.p NULL: could not be mapped */
    } *v;
    size_t n, cap, last;
};

/* Are the pages of [p, p+n) in memory? Eight evenly spread pages stand
 * for the chunk (the page cache evicts files in runs, not page by page).
 * If so, map them all in one call rather than one fault at a time
 * (measured: 1 GiB compared in 0.31 s instead of 0.38 s). */
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older kernels say EINVAL */
#endif
static bool resident(const unsigned char *p, size_t n)
{
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t pg = ps > 0 ? (uintptr_t)ps : 4096;
    for (int k = 0; k < 8; k++) {
        uintptr_t a = ((uintptr_t)p + (n - 1) / 7 * (size_t)k) & ~(pg - 1);
        unsigned char v = 0;
        if (mincore((void *)a, 1, &v) != 0 || !(v & 1))
            return false;
    }
    uintptr_t lo = (uintptr_t)p & ~(pg - 1);
    (void)madvise((void *)lo, (uintptr_t)p + n - lo, MADV_POPULATE_READ);
    return true;
}

static const struct wv__store_map *pmap_get(wv_repo *r, struct pmaps *pm,
                                            const unsigned char pack[32])
{
    if (pm->n && memcmp(pm->v[pm->last].pack, pack, WV__ID_LEN) == 0)
        return &pm->v[pm->last].m;
    for (size_t i = 0; i < pm->n; i++)
        if (memcmp(pm->v[i].pack, pack, WV__ID_LEN) == 0)
            return &pm->v[pm->last = i].m;
    if (pm->n >= WV__MAX_MAPS)
        return NULL;
    if (wv__grow(&pm->v, &pm->cap, pm->n, sizeof *pm->v, 16) != WV_OK)
        return NULL;
    char key[96];
    struct pmap *e = &pm->v[pm->n];
    memcpy(e->pack, pack, WV__ID_LEN);
    wv__pack_key(pack, key);
    e->m = (struct wv__store_map){key, NULL, 0};
    if (wv__store_control(r->store, WV_STORE_MAP, &e->m) != WV_OK) {
        wv__clearerr(&r->err); /* not an error: the chunk is hashed */
        e->m.p = NULL;
    }
    e->m.key = NULL;
    pm->last = pm->n++;
    return &e->m;
}

static void pmaps_release(wv_repo *r, struct pmaps *pm)
{
    for (size_t i = 0; i < pm->n; i++)
        if (pm->v[i].m.p)
            wv__store_control(r->store, WV_STORE_UNMAP, &pm->v[i].m);
    wv__free(pm->v);
    memset(pm, 0, sizeof *pm);
}

/* Point the jobs of every tensor the parent checkpoint `head` also has,
 * with the same size and chunking, at the parent's raw chunks. tfirst[i]
 * is the first job of tensor i. Best effort: any failure leaves jobs to
 * be hashed. */
static void link_parent(wv_repo *r, const wv_model *m, const char *head,
                        const size_t *tfirst, struct cjob *jobs,
                        struct pmaps *pm)
{
    struct wv__manifest pf;
    memset(&pf, 0, sizeof pf);
    if (r->crypt != NULL || head[0] == '\0' ||
        wv__manifest_load(r, head, &pf) != WV_OK) {
        wv__clearerr(&r->err);
        wv__manifest_release(&pf);
        return;
    }
    for (size_t k = 0; pf.chunk_size == r->cfg.chunk_size && k < pf.n_tensors;
         k++) {
        const struct wv__mtensor *pt = &pf.tensors[k];
        const wv_tensor *t = wv_model_find(m, pt->name);
        if (t == NULL || t->nbytes != pt->nbytes)
            continue;
        struct cjob *tj = &jobs[tfirst[t - m->tensors]];
        for (size_t c = 0; c < pt->n_chunks; c++) {
            const struct wv__chunk_loc *l = wv__cidx_get(&r->cidx,
                                                         pt->chunks[c]);
            if (l == NULL || l->codec != WV__CODEC_NONE ||
                l->stored_len != tj[c].n || l->raw_len != tj[c].n)
                continue;
            const struct wv__store_map *mp = pmap_get(r, pm, l->pack);
            if (mp == NULL || mp->p == NULL || l->off > mp->len ||
                mp->len - l->off < tj[c].n)
                continue;
            tj[c].prev = mp->p + l->off;
            memcpy(tj[c].prev_id, l->id, WV__ID_LEN);
        }
    }
    wv__manifest_release(&pf);
}

/* Delta bases (docs/repo-format.md "Delta chunks"): every delta is
 * against a chunk stored whole, its keyframe, so a checkout reads at most
 * one base per chunk whatever K is. A new chunk takes the base of the
 * parent's chunk at its index: that chunk itself when it is whole, else
 * the keyframe it is a delta of, while that keyframe is fewer than K
 * commits back along the first parents; then it is stored whole (a new
 * keyframe), and so is a chunk whose parent's chunk has a longer chain
 * (written by an older weightvault, which chained each delta to the
 * parent's chunk). The distance is found in the ancestors' manifests,
 * loaded once per commit and only as far back as needed. */
struct ancestors {
    struct wv__manifest v[WV__CHAIN_MAX + 1]; /* v[d]: d commits back */
    int n;                                    /* v[1..n] loaded        */
    bool end;                                 /* no more to load       */
};

static const struct wv__mtensor *find_tensor(const struct wv__manifest *mf,
                                             const char *name, size_t hint)
{
    if (hint < mf->n_tensors && strcmp(mf->tensors[hint].name, name) == 0)
        return &mf->tensors[hint];
    for (size_t i = 0; i < mf->n_tensors; i++)
        if (strcmp(mf->tensors[i].name, name) == 0)
            return &mf->tensors[i];
    return NULL;
}

/* The manifest d commits back (d >= 2), loading the ones before it; NULL
 * past the root or when one cannot be read. */
static const struct wv__manifest *ancestor(wv_repo *r, struct ancestors *a,
                                           int d)
{
    while (a->n < d && !a->end) {
        const char *up = a->v[a->n].parent;
        if (up[0] == '\0' || a->n + 1 > WV__CHAIN_MAX ||
            wv__manifest_load(r, up, &a->v[a->n + 1]) != WV_OK) {
            wv__clearerr(&r->err);
            a->end = true;
            break;
        }
        a->n++;
    }
    return d <= a->n ? &a->v[d] : NULL;
}

/* Commits back to the one that stored keyframe `key` as chunk ci of
 * tensor `name` (at index hint in the parent), 2..k-1; 0 when it is not
 * among them. */
static int keyframe_distance(wv_repo *r, struct ancestors *a,
                             const char *name, size_t hint, size_t ci,
                             const unsigned char key[32], int k)
{
    for (int d = 2; d <= k - 1; d++) {
        const struct wv__manifest *mf = ancestor(r, a, d);
        if (mf == NULL)
            return 0;
        const struct wv__mtensor *t = find_tensor(mf, name, hint);
        if (t == NULL || ci >= t->n_chunks)
            return 0;
        if (memcmp(t->chunks[ci], key, WV__ID_LEN) == 0)
            return d;
    }
    return 0;
}

/* Give every job of a tensor the parent checkpoint `head` also has (same
 * name, dtype, shape and chunk size) its delta base, as above. Best
 * effort: a parent that cannot be read means no deltas. */
static void link_bases(wv_repo *r, const wv_model *m, const char *head,
                       const size_t *tfirst, struct cjob *jobs, int k)
{
    struct ancestors *a = wv__calloc(1, sizeof *a);
    if (a == NULL)
        return;
    struct wv__manifest *pf = &a->v[1];
    a->n = 1;
    if (k < 2 || head[0] == '\0' || wv__manifest_load(r, head, pf) != WV_OK) {
        wv__clearerr(&r->err);
        goto out;
    }
    for (size_t i = 0; pf->chunk_size == r->cfg.chunk_size && i < pf->n_tensors;
         i++) {
        const struct wv__mtensor *pt = &pf->tensors[i];
        const wv_tensor *t = wv_model_find(m, pt->name);
        if (t == NULL || t->nbytes != pt->nbytes || t->dtype != pt->dtype ||
            t->ndim != pt->ndim ||
            memcmp(t->shape, pt->shape, sizeof(uint64_t) * (size_t)t->ndim))
            continue;
        struct cjob *tj = &jobs[tfirst[t - m->tensors]];
        for (size_t ci = 0; ci < pt->n_chunks; ci++) {
            const struct wv__chunk_loc *l = wv__cidx_get(&r->cidx,
                                                         pt->chunks[ci]);
            if (l == NULL)
                continue;
            if (r->delta_chained) {
                const struct wv__chunk_loc *x = l;
                int d = 0;
                while (x && x->codec == WV__CODEC_DELTA && d <= WV__CHAIN_MAX) {
                    x = wv__cidx_get(&r->cidx, x->base);
                    d++;
                }
                if (x == NULL || x->codec == WV__CODEC_DELTA || d + 1 > k - 1)
                    continue;
                tj[ci].has_base = true;
                memcpy(tj[ci].base, l->id, WV__ID_LEN);
                tj[ci].est = x->stored_len;
                continue;
            }
            if (l->codec == WV__CODEC_DELTA) {
                const struct wv__chunk_loc *key = wv__cidx_get(&r->cidx,
                                                               l->base);
                if (key == NULL || key->codec == WV__CODEC_DELTA ||
                    keyframe_distance(r, a, pt->name, i, ci, l->base, k) == 0)
                    continue; /* stored whole: a new keyframe */
                l = key;
            }
            tj[ci].has_base = true;
            memcpy(tj[ci].base, l->id, WV__ID_LEN);
            tj[ci].est = l->stored_len;
        }
    }
out:
    for (int d = 1; d <= a->n; d++)
        wv__manifest_release(&a->v[d]);
    wv__free(a);
}

/* Point the jobs whose base is stored whole in a plain repository, and
 * not in the handle's cache, at its stored bytes in a mapping of its pack
 * (pm, released after the commit): the workers then decode their bases
 * without copying them out of the store under its lock, which the pack
 * writer holds while it writes a pack (a commit of deltas waited there:
 * 1.17 threads busy on 2 cores against 1.28 for whole chunks). Best
 * effort: a pack that cannot be mapped is read as before. */
static void map_bases(wv_repo *r, struct cjob *jobs, size_t n,
                      struct pmaps *pm)
{
    if (r->crypt != NULL)
        return; /* sealed: opened in place, so read into a buffer */
    for (size_t i = 0; i < n; i++) {
        struct cjob *j = &jobs[i];
        if (!j->has_base || wv__pcache_get(&r->pcache, j->base, j->n))
            continue;
        const struct wv__chunk_loc *l = wv__cidx_get(&r->cidx, j->base);
        if (l == NULL || l->codec == WV__CODEC_DELTA)
            continue;
        const struct wv__store_map *m = pmap_get(r, pm, l->pack);
        if (m != NULL && m->p != NULL && l->off <= m->len &&
            l->stored_len <= m->len - l->off)
            j->base_stored = m->p + l->off;
    }
}

/* ---- the chunk workers --------------------------------------------------
 * SHA-256 runs at about 1.7 GB/s per core here, zstd and XChaCha20-
 * Poly1305 at about 0.3 and 1 GB/s: a commit is bound by them, so the
 * ordered pipeline (pipeline.c: one thread per core) computes the ids, in
 * order, and encodes (compresses, seals) each chunk the index does not
 * hold into one of its ring slots, at most n_slots chunks ahead of the
 * committing thread, which appends the encoded chunks to the pack in
 * order. A plain repository without compression needs no encoding: its
 * workers only hash, as far ahead as they like, and its packs are written
 * from the tensors themselves. */
#define WV__SLOT_BUDGET ((size_t)256 << 20) /* bytes of encode buffers */

struct chunker {
    wv_repo *r;
    struct cjob *jobs;
    size_t n;
    bool encode;
    /* r->cidx while the workers look chunks up in it: only the committing
     * thread changes the table. */
    pthread_mutex_t cidx_mu;
    uint64_t n_same; /* jobs found equal to the parent's chunk (atomic) */
    /* Delta bases: read by the workers through their chains (the store
     * shared with the pack writer under store_mu), each delta encoded
     * into the worker's dbuf and kept when smaller. */
    pthread_mutex_t store_mu;
    struct wv__chain chain[WV__PIPE_MAX_WORKERS];
    unsigned char *dbuf[WV__PIPE_MAX_WORKERS];
    /* The plaintext of the chunks kept for the next commit's bases
     * (struct wv__pcache; keep[i] for job i, NULL: not kept), keep_bytes
     * of the budget taken (atomic), and the bases found in r->pcache
     * (atomic). */
    bool keeping;
    unsigned char **keep;
    uint64_t keep_bytes, n_hits;
    pthread_mutex_t keep_mu; /* r->pcache's spares */
    struct wv__pipe pipe;
};

static int chunker_init(struct chunker *h, wv_repo *r, size_t n_jobs)
{
    memset(h, 0, sizeof *h);
    h->r = r;
    h->encode = !stores_raw(r);
    h->jobs = wv__calloc(n_jobs + 1, sizeof *h->jobs);
    if (!h->jobs)
        return WV_NOMEM;
    pthread_mutex_init(&h->cidx_mu, NULL);
    pthread_mutex_init(&h->store_mu, NULL);
    pthread_mutex_init(&h->keep_mu, NULL);
    for (int k = 0; k < WV__PIPE_MAX_WORKERS; k++)
        h->chain[k] = (struct wv__chain){.r = r, .x = &r->cidx,
                                         .x_mu = &h->cidx_mu,
                                         .store_mu = &h->store_mu,
                                         .check_id = WV__CHECK_FRAME};
    return WV_OK;
}

/* Which of job j's encodings a slice of it favours: its middle sixteenth
 * (at least 16 KiB of whole elements), as a delta against the base and
 * whole, weighed for floats by the entropy of their byte planes
 * (wv__codec_estimate: counting, not compressing), else by compressing it
 * both ways. 1: the delta, -1: the whole encoding, 0: a chunk under
 * 64 KiB, too small to sample (encoded both ways). On the trained F32 run
 * (bench/bench_delta.sh) encoding both took a second compression of 57 %
 * of the chunks; where the slice is wrong, the two were within a few
 * percent of each other, and the estimate stored the same bytes as
 * compressing the slice (within 0.1 %) for 3 % less commit CPU. */
#define WV__SAMPLE_MIN ((size_t)64 << 10)
#define WV__SAMPLE_LEAST ((size_t)16 << 10)
static int sample_favours(struct chunker *h, const struct cjob *j,
                          const unsigned char *base, bool grouped,
                          struct wv__pipe_worker *w)
{
    wv_repo *r = h->r;
    struct wv__err e = {0};
    unsigned k = j->elem > 1 ? j->elem : 1;
    size_t s = j->n / 16 < WV__SAMPLE_LEAST ? WV__SAMPLE_LEAST : j->n / 16;
    s = s / k * k;
    size_t off = (j->n / 2 - s / 2) / k * k;
    size_t sd = 0, sw = 0, cap = wv__codec_bound(s);
    int used = 0;
    if (j->n < WV__SAMPLE_MIN || s == 0)
        return 0;
    if (k > 1) {
        double ed = grouped ? wv__codec_estimate_grouped(
                                  k, j->p + off, base + off / k, j->n / k, s)
                            : wv__codec_estimate(k, j->p + off, base + off, s);
        double ew = wv__codec_estimate(k, j->p + off, NULL, s);
        return ed < ew ? 1 : -1;
    }
    if (wv__codec_encode_delta(r->cfg.level, j->elem, j->p + off,
                               base + off, s, h->dbuf[w->k], cap, w->ws, &sd,
                               &used, &e) != WV_OK)
        return 0;
    if (used != WV__CODEC_DELTA)
        sd = s;
    if (wv__codec_encode(r->cfg.compression, r->cfg.level, j->elem,
                         j->p + off, s, h->dbuf[w->k], cap, w->ws, &sw,
                         &used, &e) != WV_OK)
        return 0;
    return sd < sw ? 1 : -1;
}

/* A buffer of n bytes for plaintext kept for the next commit: a spare of
 * the handle's cache, else a new one; NULL without memory. */
static unsigned char *keep_buf(struct chunker *h, size_t n)
{
    pthread_mutex_lock(&h->keep_mu);
    unsigned char *p = wv__pcache_spare(&h->r->pcache, n);
    pthread_mutex_unlock(&h->keep_mu);
    return p != NULL ? p : wv__malloc(n ? n : 1);
}

/* Encode job j, which has a delta base. A slice decides for a chunk of
 * 64 KiB or more (sample_favours): only the delta is made, or only the
 * whole encoding. A smaller one is encoded as a delta into slot first:
 * when clearly smaller (by 5 %) than the keyframe (j->est), which is what
 * the whole encoding of this chunk usually takes, it is kept without
 * encoding the chunk whole; else the chunk is encoded whole too and the
 * smaller is kept. A base that cannot be read (out of memory,
 * damage that verify reports) only means the chunk is stored whole. */
static int encode_with_base(struct chunker *h, struct cjob *j,
                            unsigned char *slot, unsigned char **keep,
                            struct wv__pipe_worker *w, struct wv__err *err)
{
    wv_repo *r = h->r;
    struct wv__chain *c = &h->chain[w->k];
    struct wv__chunk_loc l;
    struct wv__err e = {0};
    const unsigned char *base = NULL;
    size_t dstored = 0, pstored = 0;
    uint8_t delem = 0, pcodec = 0, pelem = 0;
    int favours = 0;
    bool grouped = false; /* base byte-grouped (read back, not cached) */
    memset(&l, 0, sizeof l);
    memcpy(l.id, j->id, WV__ID_LEN);
    memcpy(l.base, j->base, WV__ID_LEN);
    l.raw_len = j->n;
    l.codec = WV__CODEC_DELTA;
    if (h->dbuf[w->k] == NULL)
        h->dbuf[w->k] =
            wv__malloc(wv__chunk_bound(r, (size_t)r->cfg.chunk_size));
    if (h->dbuf[w->k] == NULL)
        return wv__chunk_encode(r, j->id, j->p, j->n, j->elem, slot, w->ws,
                                &j->stored, &j->codec, &j->elem_out, err);
    /* the base as the last commit of this handle had it, else read back */
    base = wv__pcache_get(&r->pcache, j->base, j->n);
    if (base != NULL)
        __atomic_fetch_add(&h->n_hits, 1, __ATOMIC_RELAXED);
    else if (wv__chain_base_grouped(c, &l, j->elem, j->base_stored, w->ws,
                                    &base, &grouped, &e) != WV_OK)
        base = NULL;
    if (base != NULL)
        favours = sample_favours(h, j, base, grouped, w);
    if (base == NULL || favours < 0 ||
        wv__chunk_encode_delta(r, j->id, j->p, j->n, j->elem, j->base, base,
                               grouped, slot, w->ws, &dstored, &delem,
                               &e) != WV_OK)
        dstored = 0;
    if (dstored > 0 &&
        (favours > 0 || (uint64_t)dstored * 20 < j->est * 19))
        goto delta;
    int rc = wv__chunk_encode(r, j->id, j->p, j->n, j->elem, h->dbuf[w->k],
                              w->ws, &pstored, &pcodec, &pelem, err);
    if (rc != WV_OK)
        return rc;
    if (dstored > 0 && dstored < pstored)
        goto delta;
    memcpy(slot, h->dbuf[w->k], pstored);
    j->stored = pstored;
    j->codec = pcodec;
    j->elem_out = pelem;
    /* Stored whole, it is the next commit's base: keep it (a chunk with a
     * cached base was not copied before, in the hope of a delta). */
    if (keep != NULL && *keep == NULL && j->cached &&
        (*keep = keep_buf(h, j->n)) != NULL)
        memcpy(*keep, j->p, j->n);
    return WV_OK;
delta:
    j->stored = dstored;
    j->codec = WV__CODEC_DELTA;
    j->elem_out = delem;
    /* The next commit's base is this one's: keep that instead (the
     * stored delta no longer needs the plaintext). */
    if (keep != NULL && *keep != NULL) {
        if (grouped)
            wv__codec_ungroup(base, j->n, j->elem, *keep);
        else
            memcpy(*keep, base, j->n);
        j->kept_base = true;
    } else if (j->cached) {
        j->take_cached = true;
    }
    return WV_OK;
}

/* Copy job i's plaintext for the next commit (h->keeping), within the
 * budget, and work from the copy: its id is then computed from the very
 * bytes kept. No room or no memory: not kept. */
static void keep_copy(struct chunker *h, size_t i, struct cjob *j)
{
    uint64_t was = __atomic_fetch_add(&h->keep_bytes, j->n,
                                      __ATOMIC_RELAXED);
    if (was + j->n > WV__PCACHE_BUDGET)
        return;
    unsigned char *p = keep_buf(h, j->n);
    if (p == NULL)
        return;
    memcpy(p, j->p, j->n);
    h->keep[i] = p;
    j->p = p;
}

/* The pipeline's work: hash job i (or find it equal to the parent's
 * chunk) and encode it into its slot if the index does not hold it. */
static int chunk_work(void *ctx, size_t i, struct wv__pipe_worker *w,
                      struct wv__err *err)
{
    struct chunker *h = ctx;
    struct cjob *j = &h->jobs[i];
    bool fresh = false;
    /* a base in the cache is kept as it is when this chunk turns out a
     * delta on it (the usual case): no copy of this one; stored whole
     * instead, it is copied then (encode_with_base) */
    if (h->keeping && j->has_base &&
        wv__pcache_get(&h->r->pcache, j->base, j->n) != NULL &&
        __atomic_fetch_add(&h->keep_bytes, j->n, __ATOMIC_RELAXED) + j->n <=
            WV__PCACHE_BUDGET)
        j->cached = true;
    else if (h->keeping)
        keep_copy(h, i, j);
    bool same = j->prev && resident(j->prev, j->n) &&
                memcmp(j->p, j->prev, j->n) == 0;
    if (same) {
        memcpy(j->id, j->prev_id, WV__ID_LEN); /* unchanged: no hashing */
        __atomic_fetch_add(&h->n_same, 1, __ATOMIC_RELAXED);
    } else if (wv__chunk_id(h->r, j->p, j->n, j->id) != WV_OK) {
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    if (h->encode) {
        pthread_mutex_lock(&h->cidx_mu);
        fresh = wv__cidx_get(&h->r->cidx, j->id) == NULL;
        pthread_mutex_unlock(&h->cidx_mu);
    }
    if (!fresh) {
        j->take_cached = j->cached && memcmp(j->id, j->base, WV__ID_LEN) == 0;
        return WV_OK;
    }
    unsigned char *slot = wv__pipe_slot(&h->pipe, i);
    if (j->has_base && memcmp(j->base, j->id, WV__ID_LEN) != 0)
        return encode_with_base(h, j, slot, h->keeping ? &h->keep[i] : NULL,
                                w, err);
    return wv__chunk_encode(h->r, j->id, j->p, j->n, j->elem, slot, w->ws,
                            &j->stored, &j->codec, &j->elem_out, err);
}

/* This commit's kept plaintext becomes the handle's cache (the one
 * before it, the parent's chunks, becomes the spare buffers the next
 * commit fills). Out of memory: no cache, which only costs time. */
static void keep_set(wv_repo *r, struct chunker *h)
{
    unsigned char **ids = wv__calloc(h->n ? h->n : 1, sizeof *ids);
    size_t *lens = wv__calloc(h->n ? h->n : 1, sizeof *lens);
    if (ids == NULL || lens == NULL) {
        wv__pcache_release(&r->pcache);
    } else {
        for (size_t i = 0; i < h->n; i++) {
            struct cjob *j = &h->jobs[i];
            if (j->take_cached && h->keep[i] == NULL)
                h->keep[i] = wv__pcache_take(&r->pcache, j->base, j->n);
            ids[i] = j->kept_base || j->take_cached ? j->base : j->id;
            lens[i] = h->jobs[i].n;
        }
        (void)wv__pcache_set(&r->pcache, ids, h->keep, lens, h->n);
    }
    wv__free(ids);
    wv__free(lens);
}

/* Start the workers over every job (none is fine: the jobs are then done
 * inline as they are waited for). */
static int chunker_start(struct chunker *h, size_t cs)
{
    struct wv__pipe_cfg cfg = {
        .work = chunk_work,
        .ctx = h,
        .n = h->n,
        .slot_size = h->encode ? wv__chunk_bound(h->r, cs) : 0,
        .slot_budget = WV__SLOT_BUDGET,
        .ws_size = h->encode ? cs : 0,
        .min_threaded = 1,
        .windowed = true,
    };
    int rc = wv__pipe_start(&h->pipe, &cfg);
    if (rc == WV_OK)
        wv__pipe_post(&h->pipe, h->n);
    return rc;
}

static void chunker_release(struct chunker *h)
{
    wv__pipe_release(&h->pipe);
    pthread_mutex_destroy(&h->cidx_mu);
    pthread_mutex_destroy(&h->store_mu);
    pthread_mutex_destroy(&h->keep_mu);
    for (int k = 0; k < WV__PIPE_MAX_WORKERS; k++) {
        wv__chain_release(&h->chain[k]);
        wv__free(h->dbuf[k]);
    }
    for (size_t i = 0; h->keep && i < h->n; i++)
        wv__free(h->keep[i]);
    wv__free(h->keep);
    wv__free(h->jobs);
    memset(h, 0, sizeof *h);
}

/* Room one more chunk takes in a pack buffer. */
static size_t chunk_room(const struct packer *pk)
{
    return pk->raw ? 0 : wv__chunk_bound(pk->r, (size_t)pk->r->cfg.chunk_size);
}

static int packer_init(struct packer *pk, wv_repo *r, struct wv__err *err)
{
    memset(pk, 0, sizeof *pk);
    pk->r = r;
    pk->job = -1;
    /* First, so that packer_release() can undo a partial init. */
    pthread_mutex_init(&pk->mu, NULL);
    pthread_cond_init(&pk->cv, NULL);
    pk->raw = stores_raw(r);
    /* Sized for an encoded pack; a raw one only writes its magic and
     * trailer here (pages never touched cost nothing), and the same room
     * bounds how many tiny chunks one pack can list. */
    size_t cap = (size_t)r->cfg.pack_size +
                 wv__chunk_bound(r, (size_t)r->cfg.chunk_size) + 8 +
                 (size_t)(r->cfg.pack_size / 4096 + 8) * WV__PACK_ENTRY +
                 WV__SEAL_OVERHEAD;
    for (int i = 0; i < 2; i++) {
        pk->buf[i].p = wv__malloc(cap);
        pk->buf[i].cap = cap;
        if (pk->buf[i].p == NULL)
            return wv__seterr(err, WV_NOMEM, "out of memory for pack buffers");
    }
    pk->th_started = pthread_create(&pk->th, NULL, writer_main, pk) == 0;
    return WV_OK;
}

static void packer_release(struct packer *pk)
{
    if (pk->th_started) {
        pthread_mutex_lock(&pk->mu);
        pk->quit = true;
        pthread_cond_broadcast(&pk->cv);
        pthread_mutex_unlock(&pk->mu);
        pthread_join(pk->th, NULL);
        pk->th_started = false;
    }
    if (pk->r) {
        pthread_mutex_destroy(&pk->mu);
        pthread_cond_destroy(&pk->cv);
    }
    for (int i = 0; i < 2; i++) {
        wv__free(pk->buf[i].p);
        wv__free(pk->buf[i].seg);
        wv__free(pk->buf[i].ents);
    }
    wv__free(pk->all);
    memset(pk, 0, sizeof *pk);
}

/* Make room for one entry in the current pack, starting it if empty. */
static struct wv__chunk_loc *pack_entry(struct packer *pk,
                                        struct wv__err *err)
{
    struct packbuf *b = &pk->buf[pk->cur];
    if (b->len == 0) {
        memcpy(b->p, WV__PACK_MAGIC, 8);
        if (pack_piece(b, b->p, 8) != WV_OK) {
            wv__seterr(err, WV_NOMEM, "out of memory");
            return NULL;
        }
        b->len = b->used = 8;
    }
    if (wv__grow(&b->ents, &b->cap_ents, b->n_ents, sizeof *b->ents, 64) !=
        WV_OK) {
        wv__seterr(err, WV_NOMEM, "out of memory");
        return NULL;
    }
    struct wv__chunk_loc *l = &b->ents[b->n_ents];
    memset(l, 0, sizeof *l);
    return l;
}

/* The chunk just placed at l (stored bytes appended): index it, and
 * flush the pack when one more chunk might not fit. */
static int pack_placed(struct packer *pk, struct wv__chunk_loc *l,
                       struct wv__err *err)
{
    wv_repo *r = pk->r;
    struct packbuf *b = &pk->buf[pk->cur];
    b->n_ents++;
    b->len += (size_t)l->stored_len;
    cidx_lock(pk);
    int rc = wv__cidx_put(&r->cidx, l);
    cidx_unlock(pk);
    if (rc != WV_OK)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    /* Keep room for one more encoded chunk plus the trailer. */
    if (b->len >= r->cfg.pack_size ||
        b->cap - b->used < chunk_room(pk) + 8 +
                               (b->n_ents + 1) * WV__PACK_ENTRY + 12 +
                               WV__SEAL_OVERHEAD)
        return flush_pack(pk, err);
    return WV_OK;
}

/* Append one chunk (already hashed) of a repository that stores chunks raw
 * (no compression, no encryption). A repository that encodes them has every
 * chunk the index lacks encoded by a worker (chunk_work): pack_encoded. */
static int pack_chunk(struct packer *pk, const unsigned char id[32],
                      const unsigned char *data, size_t n,
                      struct wv__err *err)
{
    struct wv__chunk_loc *l = pack_entry(pk, err);
    if (l == NULL)
        return WV_NOMEM;
    struct packbuf *b = &pk->buf[pk->cur];
    memcpy(l->id, id, 32);
    l->off = b->len;
    l->raw_len = n;
    l->codec = WV__CODEC_NONE; /* as wv__chunk_encode would store it */
    l->elem = 0;
    if (pack_piece(b, data, n) != WV_OK)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    l->stored_len = n;
    return pack_placed(pk, l, err);
}

/* Append a chunk a worker encoded. */
static int pack_encoded(struct packer *pk, const struct cjob *j,
                        const unsigned char *bytes, struct wv__err *err)
{
    struct wv__chunk_loc *l = pack_entry(pk, err);
    if (l == NULL)
        return WV_NOMEM;
    struct packbuf *b = &pk->buf[pk->cur];
    memcpy(l->id, j->id, 32);
    l->off = b->len;
    l->raw_len = j->n;
    l->stored_len = j->stored;
    l->codec = j->codec;
    l->elem = j->elem_out;
    if (j->codec == WV__CODEC_DELTA)
        memcpy(l->base, j->base, WV__ID_LEN);
    int rc;
    if (j->codec == WV__CODEC_NONE && pk->r->crypt == NULL) {
        /* incompressible: the stored bytes are the tensor's own */
        rc = pack_piece(b, j->p, j->n);
    } else {
        memcpy(b->p + b->used, bytes, j->stored);
        rc = pack_piece(b, b->p + b->used, j->stored);
        b->used += j->stored;
    }
    if (rc != WV_OK)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    return pack_placed(pk, l, err);
}

static int write_index(struct packer *pk, struct wv__err *err)
{
    struct wv__buf b = {0};
    char hex[65], key[96];
    int rc = WV_OK;
    if (pk->n_all == 0)
        return WV_OK;
    wv__buf_adds(&b, "{\"packs\": {");
    for (size_t i = 0; i < pk->n_all; i++) {
        const struct wv__chunk_loc *l = &pk->all[i];
        bool first_of_pack =
            i == 0 || memcmp(pk->all[i - 1].pack, l->pack, 32) != 0;
        if (first_of_pack) {
            wv__hex(l->pack, 32, hex);
            wv__buf_addf(&b, "%s\n \"%s\": [", i ? "]," : "", hex);
        }
        wv__hex(l->id, 32, hex);
        wv__buf_addf(&b, "%s\n  [\"%s\", %llu, %llu, %llu, %u, %u",
                     first_of_pack ? "" : ",", hex,
                     (unsigned long long)l->off,
                     (unsigned long long)l->stored_len,
                     (unsigned long long)l->raw_len, l->codec, l->elem);
        if (l->codec == WV__CODEC_DELTA) {
            wv__hex(l->base, 32, hex);
            wv__buf_addf(&b, ", \"%s\"", hex);
        }
        wv__buf_adds(&b, "]");
    }
    wv__buf_adds(&b, "]}}\n");
    if (b.oom) {
        wv__buf_release(&b);
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    if (wv__object_name(pk->r, "index", b.p, b.len, hex) != WV_OK) {
        wv__buf_release(&b);
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    snprintf(key, sizeof key, "index/%s", hex);
    rc = wv__object_put(pk->r, "index", key, b.p, b.len,
                        WV_PUT_IF_ABSENT | WV_PUT_NOSYNC);
    wv__buf_release(&b);
    return rc;
}

/* Store the manifest (signed with sk if not NULL) under its id; returns
 * the id in hex. */
int wv__put_manifest(wv_repo *r, struct wv__manifest *mf,
                     const unsigned char *sk, char hex[65])
{
    struct wv__buf b = {0};
    char key[96];
    mf->has_sig = mf->sig_ok = false;
    int rc = wv__manifest_encode(mf, &b);
    if (rc != WV_OK) {
        wv__buf_release(&b);
        return wv__seterr(&r->err, rc, "out of memory");
    }
    if (sk && (rc = wv__manifest_sign(r, sk, mf, &b)) != WV_OK) {
        wv__buf_release(&b);
        return rc;
    }
    if (wv__object_name(r, "manifest", b.p, b.len, hex) != WV_OK) {
        wv__buf_release(&b);
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    }
    wv__manifest_key(hex, key);
    rc = wv__object_put(r, "manifest", key, b.p, b.len, WV_PUT_IF_ABSENT);
    wv__buf_release(&b);
    return rc;
}

/* The branch's head now: its id ("" if the branch does not exist) and
 * its value as stored, which the compare-and-swap expects. */
int wv__read_head(wv_repo *r, const char *refkey, const char *branch,
                  char head[65], char raw[WV__REF_RAW_MAX])
{
    char shown[160];
    snprintf(shown, sizeof shown, "refs/heads/%s", branch);
    int rc = wv__ref_read(r, refkey, shown, raw, head, NULL, 0);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(&r->err);
        head[0] = raw[0] = '\0';
        rc = WV_OK;
    }
    return rc;
}

/* A repository that trusts keys accepts only checkpoints signed by one of
 * them (checkouts refuse the others): refuse such a commit up front rather
 * than store a checkpoint nobody can check out. sk: the signing key, or
 * NULL for an unsigned commit. */
int wv__signer_trusted(wv_repo *r, const unsigned char *sk)
{
    struct wv__err *err = &r->err;
    size_t n = 0;
    bool ok = false;
    int rc = WV_OK;
    WV_TRY(wv__trust_has(r, sk ? sk + 32 : NULL, &n, &ok));
    if (n == 0)
        goto out;
    WV_CHECK(sk != NULL, WV_AUTH_SIGNATURE,
             "%s: the repository trusts %zu key%s and accepts only "
             "checkpoints signed by one of them: sign the commit (wv "
             "commit --sign NAME.key; sign_key in the C API)",
             r->uri, n, n == 1 ? "" : "s");
    char hex[65];
    wv__hex(sk + 32, 32, hex);
    WV_CHECK(ok, WV_AUTH_SIGNATURE,
             "%s: the signing key %.16s is not one of the repository's %zu "
             "trusted keys (wv trust list), so checkouts would refuse the "
             "checkpoint: sign with a trusted key (--sign NAME.key)",
             r->uri, hex, n);
out:
    return rc;
}

/* wv_commit_opts before it grew sign_key. */
#define COMMIT_OPTS_V1 offsetof(wv_commit_opts, sign_key)

int wv__repo_commit_locked(wv_repo *r, const wv_model *m, const char *branch,
                           const wv_commit_opts *given,
                           char out_id[WV_ID_HEX])
{
    return wv__repo_commit_ex(r, m, branch, given, NULL, NULL, out_id);
}

int wv__repo_commit_ex(wv_repo *r, const wv_model *m, const char *branch,
                       const wv_commit_opts *given,
                       int (*publish)(void *arg, struct wv__manifest *mf),
                       void *publish_arg, char out_id[WV_ID_HEX])
{
    wv_commit_opts o = WV_COMMIT_OPTS_INIT, *opts = &o;
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    struct packer pk;
    struct chunker hs;
    struct pmaps pm = {0};
    size_t *tfirst = NULL;
    bool packing = false, chunking = false;
    struct wv__manifest mf;
    unsigned char *sk = NULL;
    char head[65] = "", refkey[160], tnow[32], hex[65] = "", prev[65] = "";
    char head_raw[WV__REF_RAW_MAX] = "", desired[WV__REF_RAW_MAX];

    memset(&mf, 0, sizeof mf);
    memset(&pk, 0, sizeof pk);
    memset(&hs, 0, sizeof hs);
    wv__clearerr(err);
    out_id[0] = '\0';
    WV_CHECK(m == NULL || !m->index_only, WV_MISUSE,
             "the tensor set was loaded with WV_LOAD_INDEX (names and "
             "shapes only): load it with its data to commit it");
    if (branch == NULL)
        branch = "main";
    /* An older (smaller) struct is taken as far as it goes. */
    if (given) {
        WV_CHECK(given->struct_size >= COMMIT_OPTS_V1, WV_MISUSE,
                 "commit options from an incompatible header");
        memcpy(&o, given, given->struct_size < sizeof o ? given->struct_size
                                                        : sizeof o);
    }
    WV_CHECK(wv__ref_name_ok(branch) && strcmp(branch, "latest") != 0,
             WV_MISUSE, "'%s' is not a valid branch name", branch);
    /* The manifest is JSON: text that is not UTF-8 would make it unreadable
     * (and the branch with it). */
    WV_CHECK(opts->message == NULL ||
                 wv__utf8_valid(opts->message, strlen(opts->message)),
             WV_MISUSE, "the commit message is not valid UTF-8");
    for (size_t i = 0; i < m->n_meta; i++)
        WV_CHECK(wv__utf8_valid(m->meta[i].key, strlen(m->meta[i].key)) &&
                     wv__utf8_valid(m->meta[i].value,
                                    strlen(m->meta[i].value)),
                 WV_MISUSE, "metadata '%s' is not valid UTF-8",
                 m->meta[i].key);
    if (opts->sign_key)
        WV_TRY(wv__sig_load_secret(opts->sign_key, &sk, err));
    WV_CHECK(wv__ref_key(r, "heads", branch, refkey) == WV_OK, WV_NOMEM,
             "out of memory");

    WV_TRY(wv__repo_lock(r, false));
    WV_TRY(wv__signer_trusted(r, sk));
    WV_TRY(wv__repo_load_index(r));
    WV_TRY(wv__read_head(r, refkey, branch, head, head_raw));

    /* The manifest skeleton. */
    wv__utc_now(tnow);
    mf.branch = wv__strdup(branch);
    mf.time = wv__strdup(tnow);
    mf.message = wv__strdup(opts->message ? opts->message : "");
    mf.chunk_size = r->cfg.chunk_size;
    mf.meta_absent = m->meta_state == WV__META_NONE;
    mf.meta_default = m->meta_state == WV__META_DEFAULT;
    WV_CHECK(mf.branch && mf.time && mf.message, WV_NOMEM, "out of memory");
    if (m->n_meta) {
        mf.meta = wv__calloc(m->n_meta, sizeof *mf.meta);
        WV_CHECK(mf.meta != NULL, WV_NOMEM, "out of memory");
        for (size_t i = 0; i < m->n_meta; i++) {
            mf.meta[i].key = wv__strdup(m->meta[i].key);
            mf.meta[i].value = wv__strdup(m->meta[i].value);
            mf.n_meta++;
            WV_CHECK(mf.meta[i].key && mf.meta[i].value, WV_NOMEM,
                     "out of memory");
        }
    }
    mf.tensors = wv__calloc(m->n_tensors ? m->n_tensors : 1,
                            sizeof *mf.tensors);
    WV_CHECK(mf.tensors != NULL, WV_NOMEM, "out of memory");

    /* Chunks: the workers hash (and encode) ahead, in order; this thread
     * deduplicates and packs them as they come. */
    packing = true; /* released even if its init fails halfway */
    WV_TRY(packer_init(&pk, r, err));
    size_t cs = (size_t)r->cfg.chunk_size, n_jobs = 0;
    for (size_t i = 0; i < m->n_tensors; i++)
        n_jobs += (m->tensors[i].nbytes + cs - 1) / cs;
    WV_CHECK(chunker_init(&hs, r, n_jobs) == WV_OK, WV_NOMEM,
             "out of memory");
    chunking = true;
    tfirst = wv__calloc(m->n_tensors ? m->n_tensors : 1, sizeof *tfirst);
    WV_CHECK(tfirst != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        struct wv__mtensor *mt = &mf.tensors[mf.n_tensors++];
        tfirst[i] = hs.n;
        mt->name = wv__strdup(t->name);
        WV_CHECK(mt->name != NULL, WV_NOMEM, "out of memory");
        mt->dtype = t->dtype;
        mt->ndim = t->ndim;
        memcpy(mt->shape, t->shape, sizeof mt->shape);
        mt->nbytes = t->nbytes;
        mt->has_region = t->has_region;
        memcpy(mt->gshape, t->gshape, sizeof mt->gshape);
        memcpy(mt->goffset, t->goffset, sizeof mt->goffset);
        mt->n_chunks = (t->nbytes + cs - 1) / cs;
        if (mt->n_chunks) {
            mt->chunks = wv__malloc(mt->n_chunks * WV__ID_LEN);
            WV_CHECK(mt->chunks != NULL, WV_NOMEM, "out of memory");
        }
        unsigned elem = wv_dtype_is_float(t->dtype)
                            ? (unsigned)wv_dtype_size(t->dtype)
                            : 1;
        for (size_t c = 0; c < mt->n_chunks; c++) {
            size_t off = c * cs;
            struct cjob *j = &hs.jobs[hs.n++];
            j->p = t->data + off;
            j->n = t->nbytes - off < cs ? t->nbytes - off : cs;
            j->id = mt->chunks[c];
            j->elem = elem;
        }
    }
    link_parent(r, m, head, tfirst, hs.jobs, &pm);
    int keyframe = opts->struct_size > offsetof(wv_commit_opts,
                                                delta_keyframe) &&
                           opts->delta_keyframe > 0
                       ? opts->delta_keyframe
                       : r->cfg.delta_keyframe;
    if (hs.encode && WV__VERSION_HAS_DELTA(r->cfg.version) &&
        r->cfg.compression != WV__CODEC_NONE && keyframe >= 2) {
        link_bases(r, m, head, tfirst, hs.jobs, keyframe);
        map_bases(r, hs.jobs, hs.n, &pm);
        /* kept for the next commit from this handle's second on */
        if (r->n_commits > 0)
            hs.keep = wv__calloc(hs.n ? hs.n : 1, sizeof *hs.keep);
        hs.keeping = hs.keep != NULL;
    }
    pk.cidx_mu = &hs.cidx_mu;
    pk.store_mu = &hs.store_mu;
    WV_CHECK(chunker_start(&hs, cs) == WV_OK, WV_NOMEM, "out of memory");
    /* progress: bytes of tensor data chunked and stored, of all */
    bool has_progress = opts->struct_size >=
                            offsetof(wv_commit_opts, progress_arg) +
                                sizeof opts->progress_arg &&
                        opts->progress != NULL;
    uint64_t p_done = 0, p_total = 0;
    for (size_t i = 0; has_progress && i < m->n_tensors; i++)
        p_total += m->tensors[i].nbytes;
    for (size_t i = 0; i < hs.n; i++) {
        const struct cjob *j = &hs.jobs[i];
        if (wv__pipe_wait(&hs.pipe, i) != WV_OK) {
            rc = wv__pipe_failure(&hs.pipe, err); /* a worker's */
            goto out;
        }
        /* Only this thread changes the table: no lock to read it. */
        if (wv__cidx_get(&r->cidx, j->id) == NULL) {
            /* A worker encoded it unless the repository stores raw. */
            if (!pk.raw)
                WV_TRY(pack_encoded(&pk, j, wv__pipe_slot(&hs.pipe, i), err));
            else
                WV_TRY(pack_chunk(&pk, j->id, j->p, j->n, err));
        } /* else stored already: never written again */
        wv__pipe_consumed(&hs.pipe, i);
        if (has_progress) {
            p_done += j->n;
            opts->progress(opts->progress_arg, p_done, p_total);
        }
    }
    r->n_same_as_parent = __atomic_load_n(&hs.n_same, __ATOMIC_RELAXED);
    WV_TRY(flush_pack(&pk, err));
    writer_wait(&pk);
    if (pk.wrc != WV_OK)
        WV_CHECK(0, pk.wrc, "%s", pk.wmsg);
    for (int i = 0; i < 2; i++)
        if (pk.buf[i].n_ents)
            WV_CHECK(record_written(&pk, &pk.buf[i]) == WV_OK, WV_NOMEM,
                     "out of memory");
    WV_TRY(write_index(&pk, err));
    WV_TRY(wv__store_control(r->store, WV_STORE_SYNC, NULL));
    if (publish) {
        /* A part of a multi-writer checkpoint (parts.c): its record
         * instead of a manifest, still under the shared lock. */
        memcpy(mf.parent, head, 65);
        WV_TRY(publish(publish_arg, &mf));
        goto out;
    }

    /* Manifest, then the ref; re-parent on conflict. */
    for (int attempt = 0;; attempt++) {
        memcpy(mf.parent, head, 65);
        WV_TRY(wv__put_manifest(r, &mf, sk, hex));
        if (prev[0] && strcmp(prev, hex) != 0) {
            /* The attempt that lost the race is superseded by this one. */
            char key[96];
            wv__manifest_key(prev, key);
            wv__store_del(r->store, key);
        }
        memcpy(prev, hex, 65);
        WV_TRY(wv__ref_value(r, refkey, branch, hex, desired));
        /* Against the exact bytes read: an encrypted value is never
         * written twice the same. */
        rc = wv__store_ref_cas(r->store, refkey, head[0] ? head_raw : NULL,
                               desired);
        if (rc != WV_CONFLICT || attempt >= opts->max_retries)
            break;
        wv__clearerr(err);
        WV_TRY(wv__read_head(r, refkey, branch, head, head_raw));
        /* The winner was stamped after this commit started: stamp again,
         * so a child is never older than its new parent (prune's "last N"
         * goes by time first; seconds apart, it kept the parent). */
        wv__utc_now(tnow);
        wv__free(mf.time);
        mf.time = wv__strdup(tnow);
        WV_CHECK(mf.time != NULL, WV_NOMEM, "out of memory");
    }
    memcpy(out_id, hex, 65);
    if (rc == WV_OK) {
        r->n_commits++;
        r->n_pcache_hits = __atomic_load_n(&hs.n_hits, __ATOMIC_RELAXED);
        if (hs.keeping)
            keep_set(r, &hs);
    }
    if (rc == WV_CONFLICT) {
        wv__clearerr(err);
        wv__seterr(err, WV_CONFLICT,
                   "%s: branch '%s' kept moving; checkpoint %.12s is stored "
                   "but not on the branch",
                   r->uri, branch, hex);
    }
out:
    writer_wait(&pk); /* before the store lock it uses goes (chunker's) */
    if (chunking)
        chunker_release(&hs);
    pmaps_release(r, &pm); /* after the workers: they read the maps */
    wv__free(tfirst);
    pk.cidx_mu = NULL;
    pk.store_mu = NULL;
    if (packing)
        packer_release(&pk);
    wv__sig_key_free(sk);
    wv__manifest_release(&mf);
    wv__repo_unlock(r);
    if (rc != WV_OK && rc != WV_CONFLICT) {
        out_id[0] = '\0';
        /* The in-memory index may name chunks of packs never written. */
        wv__cidx_release(&r->cidx);
        r->cidx_loaded = false;
    }
    return rc;
}

int wv_repo_commit(wv_repo *r, const wv_model *m, const char *branch,
                   const wv_commit_opts *opts, char out_id[WV_ID_HEX])
{
    /* after the pending asynchronous commits (async.c) */
    return WV__REPO_LOCKED(
        r, wv__repo_commit_locked(r, m, branch, opts, out_id));
}
