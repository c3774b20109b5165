/*
 * checkout.c -- reading a checkpoint back into a tensor set.
 *
 * Every chunk is located through the chunk index, read with one ranged get
 * from its pack, unsealed (encrypted repositories), decoded, and checked
 * against its id before it is used: a damaged pack can never hand back
 * wrong bytes silently. Only the chunks of the requested tensors are read.
 *
 * This thread does every store read, in order (backends need not be
 * thread-safe); worker threads, one per core, unseal, decode and hash the
 * chunks read, each from a bounded ring of read buffers (an unencrypted,
 * uncompressed chunk is read straight into its place and only hashed).
 * The first failure in chunk order is the one reported, with its tensor.
 * A delta chunk (codec 3) is decoded on its worker against its base,
 * which the worker reads through the base's chain (delta.c; one link as
 * weightvault writes them now, up to K-1 from earlier writers), taking
 * the store's lock for those reads.
 * The checkpoint's signature is checked first (trust.c decides: a
 * signature that does not verify is refused always, a missing or foreign
 * one when a signer is required).
 *
 * A checkout to a file (wv_repo_checkout_file) streams instead of building
 * the set in memory when the output format's writer takes tensors as a
 * stream: see the section at the end.
 */
#include "core.h"
#include "fmt.h"
#include "object.h"
#include "pipeline.h"
#include "repo.h"
#include "tensor.h"
#include "trust.h"

#include <unistd.h>

#define WV__READ_BUDGET ((size_t)256 << 20) /* bytes of read buffers */

/* Locate chunk `id` of raw_len bytes and check its index entry. */
static int locate(wv_repo *r, const unsigned char id[32], size_t raw_len,
                  size_t scratch_len, const struct wv__chunk_loc **out)
{
    struct wv__err *err = &r->err;
    char hex[65];
    const struct wv__chunk_loc *l = wv__cidx_get(&r->cidx, id);
    *out = NULL;
    wv__hex(id, 32, hex);
    if (l == NULL)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: chunk %.12s is missing from every index",
                          r->uri, hex);
    if (l->raw_len != raw_len)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: chunk %.12s has %llu bytes in the index, the "
                          "manifest needs %zu",
                          r->uri, hex, (unsigned long long)l->raw_len,
                          raw_len);
    if (l->stored_len > SIZE_MAX || (l->codec != WV__CODEC_NONE &&
                                     raw_len > scratch_len))
        return wv__seterr(err, WV_CORRUPT, "%s: chunk %.12s is too large",
                          r->uri, hex);
    if (l->codec == WV__CODEC_NONE && r->crypt == NULL &&
        l->stored_len != raw_len)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: chunk %.12s: stored and raw lengths differ "
                          "for an uncompressed chunk",
                          r->uri, hex);
    *out = l;
    return WV_OK;
}

/* Does chunk l come out of the store as it is used (plain and
 * uncompressed: read straight into its place)? */
static bool read_in_place(const wv_repo *r, const struct wv__chunk_loc *l)
{
    return r->crypt == NULL && l->codec == WV__CODEC_NONE;
}

/* Read the stored bytes of chunk l into dst. */
static int read_stored(wv_repo *r, const struct wv__chunk_loc *l, void *dst)
{
    char key[96], hex[65];
    size_t n;
    wv__pack_key(l->pack, key);
    int rc = wv__store_get(r->store, key, l->off, dst, (size_t)l->stored_len,
                           &n);
    if (rc == WV_NOTFOUND || rc == WV_IO_SHORT_READ) {
        wv__hex(l->id, 32, hex);
        wv__clearerr(&r->err);
        return wv__seterr(&r->err, WV_CORRUPT,
                          "%s: chunk %.12s: pack %.12s is %s", r->uri, hex,
                          key + 9,
                          rc == WV_NOTFOUND ? "missing" : "truncated");
    }
    return rc;
}

int wv__repo_read_chunk(wv_repo *r, const unsigned char id[32], void *out,
                        size_t raw_len, struct wv__codec_ws *ws,
                        size_t scratch_len,
                        unsigned char **pack_buf, size_t *pack_cap)
{
    const struct wv__chunk_loc *l;
    int rc = locate(r, id, raw_len, scratch_len, &l);
    if (rc != WV_OK)
        return rc;
    unsigned char *dst = out;
    if (!read_in_place(r, l)) {
        if (*pack_cap < l->stored_len) {
            unsigned char *nb = wv__realloc(*pack_buf, (size_t)l->stored_len);
            if (nb == NULL)
                return wv__seterr(&r->err, WV_NOMEM, "out of memory");
            *pack_buf = nb;
            *pack_cap = (size_t)l->stored_len;
        }
        dst = *pack_buf;
    }
    if ((rc = read_stored(r, l, dst)) != WV_OK)
        return rc;
    if (l->codec != WV__CODEC_DELTA)
        return wv__chunk_open(r, l, dst, out, raw_len, ws, true, &r->err);
    /* A delta: through its chain, with buffers for this chunk only. */
    struct wv__chain c = {.r = r, .x = &r->cidx, .check_id = true};
    rc = wv__chain_open(&c, l, dst, out, ws, &r->err);
    wv__chain_release(&c);
    return rc;
}

/* ---- regions of global tensors -------------------------------------------
 * A tensor of a multi-writer checkpoint may be stored as several regions
 * (shards, each cut into chunks of its own bytes); a whole tensor is one
 * region covering it. Reading a box of the global tensor: per stored
 * region, the intersection with the box, walked as row-major runs (the
 * trailing dimensions both cover whole merge into one run), each run
 * mapped to the region's chunks. Runs come in increasing order within a
 * region, so keeping the last chunk read of each region is enough to read
 * each chunk that overlaps the box once: one box needs one slot (regions
 * are walked one after the other), a walk of several boxes in increasing
 * order (a visit's windows, which cut across every region of a column
 * split) one slot per region, within WV__READ_BUDGET (past it, regions
 * share slots and a chunk may be read again). Chunks are read and checked
 * one at a time on this thread (wv__repo_read_chunk). */

struct rslot {
    unsigned char *chunk; /* the last chunk read, cs bytes (NULL: none) */
    unsigned char cid[WV__ID_LEN];
    bool have;
};

struct rreader {
    wv_repo *r;
    uint64_t cs;
    struct wv__codec_ws *ws;
    struct rslot *slot; /* region k keeps its chunk in slot[k % n_slot] */
    size_t n_slot;
    unsigned char *pack_buf;
    size_t pack_cap;
};

/* A reader of chunks of cs bytes with a slot for each of n_regions (1:
 * one box at a time), as many as WV__READ_BUDGET holds. */
static int rreader_init(struct rreader *rr, wv_repo *r, uint64_t cs,
                        size_t n_regions)
{
    size_t most = WV__READ_BUDGET / (size_t)cs;
    memset(rr, 0, sizeof *rr);
    rr->r = r;
    rr->cs = cs;
    rr->n_slot = n_regions < most ? n_regions : most;
    if (rr->n_slot == 0)
        rr->n_slot = 1;
    rr->slot = wv__calloc(rr->n_slot, sizeof *rr->slot);
    if (rr->slot == NULL || wv__codec_ws_new((size_t)cs, &rr->ws) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    return WV_OK;
}

static void rreader_release(struct rreader *rr)
{
    for (size_t k = 0; rr->slot && k < rr->n_slot; k++)
        wv__free(rr->slot[k].chunk);
    wv__free(rr->slot);
    wv__free(rr->pack_buf);
    wv__codec_ws_free(rr->ws);
    memset(rr, 0, sizeof *rr);
}

/* Bytes [src, src + len) of stored region k (chunks ids[0..n_ids) of its
 * nbytes) into dst. */
static int piece_copy(struct rreader *rr, size_t k,
                      const unsigned char (*ids)[32], size_t n_ids,
                      uint64_t nbytes, uint64_t src, uint64_t len,
                      unsigned char *dst)
{
    wv_repo *r = rr->r;
    struct rslot *sl = &rr->slot[k % rr->n_slot];
    if (sl->chunk == NULL && (sl->chunk = wv__malloc((size_t)rr->cs)) == NULL)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    while (len) {
        uint64_t c = src / rr->cs, within = src % rr->cs;
        if (c >= n_ids)
            return wv__seterr(&r->err, WV_CORRUPT,
                              "%s: a region lists too few chunks", r->uri);
        uint64_t clen = nbytes - c * rr->cs < rr->cs ? nbytes - c * rr->cs
                                                     : rr->cs;
        if (!sl->have || memcmp(sl->cid, ids[c], WV__ID_LEN) != 0) {
            sl->have = false;
            int rc = wv__repo_read_chunk(r, ids[c], sl->chunk, (size_t)clen,
                                         rr->ws, (size_t)rr->cs,
                                         &rr->pack_buf, &rr->pack_cap);
            if (rc != WV_OK)
                return rc;
            memcpy(sl->cid, ids[c], WV__ID_LEN);
            sl->have = true;
            r->n_region_read += clen;
        }
        uint64_t n = clen - within < len ? clen - within : len;
        memcpy(dst, sl->chunk + within, (size_t)n);
        dst += n;
        src += n;
        len -= n;
    }
    return WV_OK;
}

/* Bytes [lo, hi) of the box (boff, bshape) of tensor t, in the box's
 * row-major order, into buf. */
static int read_box(struct rreader *rr, const struct wv__mtensor *t,
                    const uint64_t *boff, const uint64_t *bshape,
                    uint64_t lo, uint64_t hi, unsigned char *buf)
{
    wv_repo *r = rr->r;
    size_t es = wv_dtype_size(t->dtype);
    int nd = t->ndim;
    if (es == 0)
        return wv__seterr(&r->err, WV_UNSUPPORTED,
                          "%s: tensor '%.200s' has the dtype %s, whose "
                          "elements cannot be addressed one by one",
                          r->uri, t->name, wv_dtype_name(t->dtype));
    size_t n_pieces = t->n_shards ? t->n_shards : 1;
    for (size_t k = 0; k < n_pieces; k++) {
        const uint64_t zero[WV_MAX_DIMS] = {0};
        const uint64_t *poff = t->n_shards ? t->shards[k].offset : zero;
        const uint64_t *pshape = t->n_shards ? t->shards[k].shape : t->shape;
        const unsigned char(*ids)[32] =
            (const unsigned char(*)[32])t->chunks +
            (t->n_shards ? t->shards[k].first : 0);
        size_t n_ids = t->n_shards ? t->shards[k].n_chunks : t->n_chunks;
        uint64_t pnb = t->n_shards ? t->shards[k].nbytes : t->nbytes;
        uint64_t a[WV_MAX_DIMS] = {0}, ext[WV_MAX_DIMS] = {0}, ps[WV_MAX_DIMS],
            bs[WV_MAX_DIMS], idx[WV_MAX_DIMS];
        bool empty = false;
        for (int d = 0; d < nd; d++) {
            uint64_t x = poff[d] > boff[d] ? poff[d] : boff[d];
            uint64_t pe = poff[d] + pshape[d], be = boff[d] + bshape[d];
            uint64_t y = pe < be ? pe : be;
            empty |= y <= x;
            a[d] = x;
            ext[d] = y > x ? y - x : 0;
        }
        if (empty)
            continue;
        for (int d = nd - 1; d >= 0; d--) {
            ps[d] = d == nd - 1 ? 1 : ps[d + 1] * pshape[d + 1];
            bs[d] = d == nd - 1 ? 1 : bs[d + 1] * bshape[d + 1];
        }
        /* the run: dimension m and every one after it */
        int m = nd - 1;
        uint64_t run = nd ? ext[nd - 1] : 1;
        while (m > 0 && ext[m] == pshape[m] && ext[m] == bshape[m]) {
            m--;
            run *= ext[m];
        }
        memset(idx, 0, sizeof idx);
        for (;;) {
            uint64_t se = 0, de = 0;
            for (int d = 0; d < nd; d++) {
                uint64_t i = a[d] + (d < m ? idx[d] : 0);
                se += (i - poff[d]) * ps[d];
                de += (i - boff[d]) * bs[d];
            }
            uint64_t g = de * es, len = run * es;
            if (g >= hi)
                break; /* runs only go up */
            if (g + len > lo) {
                uint64_t x = g > lo ? g : lo;
                uint64_t y = g + len < hi ? g + len : hi;
                int rc = piece_copy(rr, k, ids, n_ids, pnb,
                                    se * es + (x - g), y - x, buf + (x - lo));
                if (rc != WV_OK)
                    return rc;
            }
            int d = m - 1;
            while (d >= 0 && ++idx[d] == ext[d])
                idx[d--] = 0;
            if (d < 0)
                break;
        }
    }
    return WV_OK;
}

/* The whole of sharded tensor t into buf (t->nbytes bytes). */
static int read_sharded(wv_repo *r, uint64_t cs, const struct wv__mtensor *t,
                        unsigned char *buf)
{
    struct rreader rr;
    const uint64_t zero[WV_MAX_DIMS] = {0};
    int rc = rreader_init(&rr, r, cs, 1);
    if (rc == WV_OK)
        rc = read_box(&rr, t, zero, t->shape, 0, t->nbytes, buf);
    rreader_release(&rr);
    return rc;
}

/* Bytes [from, to) of sharded tensor t, in the chunk-sized windows of the
 * chunks of a whole tensor (the first starting at or before from), each
 * assembled from the regions with n_slots kept chunks (rreader_init) and
 * handed to cb. A failure of cb stops the read with its status, no
 * message given, and the window's offset in *by_cb (UINT64_MAX
 * otherwise). */
static int read_windows(wv_repo *r, const struct wv__mtensor *t, uint64_t cs,
                        size_t n_slots, uint64_t from, uint64_t to,
                        wv_chunk_cb cb, void *arg, uint64_t *by_cb)
{
    struct rreader rr;
    const uint64_t zero[WV_MAX_DIMS] = {0};
    unsigned char *win = wv__malloc((size_t)cs);
    int rc = win ? rreader_init(&rr, r, cs, n_slots)
                 : wv__seterr(&r->err, WV_NOMEM, "out of memory");
    *by_cb = UINT64_MAX;
    for (uint64_t o = from / cs * cs; rc == WV_OK && o < to; o += cs) {
        uint64_t e = t->nbytes - o < cs ? t->nbytes : o + cs;
        rc = read_box(&rr, t, zero, t->shape, o, e, win);
        if (rc == WV_OK && (rc = cb(arg, o, win, (size_t)(e - o))) != WV_OK)
            *by_cb = o;
    }
    if (win)
        rreader_release(&rr);
    wv__free(win);
    return rc;
}

/* Checkpoint `ref`'s manifest (its id in id, its chunk size checked) and
 * its tensor `name`, under the repository's signature policy
 * (*signer_required: chunks must then be checked as a signed
 * checkpoint's). The caller releases mf. */
static int load_tensor(wv_repo *r, const char *ref, const char *name,
                       char id[65], struct wv__manifest *mf,
                       bool *signer_required, const struct wv__mtensor **out)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    *out = NULL;
    *signer_required = false;
    WV_TRY(wv__repo_resolve(r, ref, id));
    WV_TRY(wv__manifest_load(r, id, mf));
    WV_TRY(wv__sig_policy(r, mf, NULL, signer_required));
    WV_CHECK(mf->chunk_size > 0 && mf->chunk_size <= ((uint64_t)1 << 30),
             WV_CORRUPT, "%s: checkpoint %.12s has chunks of %llu bytes",
             r->uri, id, (unsigned long long)mf->chunk_size);
    for (size_t i = 0; i < mf->n_tensors && *out == NULL; i++)
        if (strcmp(mf->tensors[i].name, name) == 0)
            *out = &mf->tensors[i];
    WV_CHECK(*out != NULL, WV_NOTFOUND,
             "%s: checkpoint %.12s has no tensor '%.200s'", r->uri, id, name);
out:
    return rc;
}

static int region_locked(wv_repo *r, const char *ref, const char *name,
                         int ndim, const uint64_t *offset,
                         const uint64_t *shape, void *buf, size_t len)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char id[65];
    struct wv__manifest mf;
    struct rreader rr;
    const struct wv__mtensor *t = NULL;
    memset(&mf, 0, sizeof mf);
    memset(&rr, 0, sizeof rr);
    wv__clearerr(err);
    r->n_region_read = 0;
    WV_CHECK(name != NULL && (ndim == 0 || (offset && shape)) &&
                 (buf != NULL || len == 0),
             WV_MISUSE, "reading a region needs a tensor name, an offset, a "
                        "shape and a buffer");
    bool signer_required;
    WV_TRY(load_tensor(r, ref, name, id, &mf, &signer_required, &t));
    WV_CHECK(ndim == t->ndim, WV_RANGE,
             "%s: tensor '%.200s' has %d dimensions, the region %d", r->uri,
             name, t->ndim, ndim);
    uint64_t numel = 1, nb;
    for (int d = 0; d < ndim; d++) {
        WV_CHECK(offset[d] <= t->shape[d] &&
                     shape[d] <= t->shape[d] - offset[d],
                 WV_RANGE, "%s: the region exceeds tensor '%.200s' in "
                           "dimension %d (offset %llu + extent %llu > %llu)",
                 r->uri, name, d, (unsigned long long)offset[d],
                 (unsigned long long)shape[d],
                 (unsigned long long)t->shape[d]);
        numel *= shape[d];
    }
    WV_CHECK(wv_dtype_size(t->dtype) != 0, WV_UNSUPPORTED,
             "%s: tensor '%.200s' has the dtype %s, whose elements cannot be "
             "addressed one by one: read it whole",
             r->uri, name, wv_dtype_name(t->dtype));
    nb = numel * wv_dtype_size(t->dtype);
    WV_CHECK(len == nb, WV_RANGE,
             "%s: the region of tensor '%.200s' has %llu bytes, the buffer "
             "%zu",
             r->uri, name, (unsigned long long)nb, len);
    if (len == 0)
        goto out;
    WV_TRY(wv__repo_load_index(r));
    WV_TRY(rreader_init(&rr, r, mf.chunk_size, 1));
    WV_TRY(read_box(&rr, t, offset, shape, 0, len, buf));
out:
    rreader_release(&rr);
    wv__manifest_release(&mf);
    return rc;
}

int wv_repo_read_region(wv_repo *r, const char *ref, const char *name,
                        int ndim, const uint64_t *offset,
                        const uint64_t *shape, void *buf, size_t len)
{
    return WV__REPO_LOCKED(
        r, region_locked(r, ref, name, ndim, offset, shape, buf, len));
}

/* ---- the parallel read --------------------------------------------------
 * This thread reads each chunk's stored bytes (into its place, or into the
 * pipeline's ring slot) and posts it; the ordered pipeline (pipeline.c)
 * unseals, decodes and checks it on a worker. */

struct ojob {
    const struct wv__chunk_loc *l;
    unsigned char *out;
    size_t n;
    size_t tensor;
    unsigned char *stored;
    uint64_t off; /* in its tensor (for a visit's callback) */
};

struct opipe {
    wv_repo *r;
    struct ojob *jobs;
    bool check_ids; /* recompute sealed chunks' ids (crypt.c) */
    /* wv_repo_visit_tensor: called from the worker with each chunk */
    wv_chunk_cb cb;
    void *cb_arg;
    /* Delta bases: each worker's chain reader; the store is shared with
     * this thread's reads under store_mu. */
    pthread_mutex_t store_mu;
    struct wv__chain chain[WV__PIPE_MAX_WORKERS];
    struct wv__pipe pipe;
};

/* Read job j's stored bytes (this thread), under the store lock the
 * workers take to read delta bases. */
static int opipe_read(struct opipe *p, const struct ojob *j)
{
    pthread_mutex_lock(&p->store_mu);
    int rc = read_stored(p->r, j->l, j->stored);
    pthread_mutex_unlock(&p->store_mu);
    return rc;
}

static int opipe_work(void *ctx, size_t i, struct wv__pipe_worker *w,
                      struct wv__err *e)
{
    struct opipe *p = ctx;
    struct ojob *j = &p->jobs[i];
    int slow = j->stored != j->out ? WV__FAULT_SIM(WV__FAULT_SLOW_DECODE) : 0;
    if (slow > 0)
        usleep((useconds_t)slow * 1000u);
    int rc = j->l->codec == WV__CODEC_DELTA
                 ? wv__chain_open(&p->chain[w->k], j->l, j->stored, j->out,
                                  w->ws, e)
                 : wv__chunk_open(p->r, j->l, j->stored, j->out, j->n, w->ws,
                                  p->check_ids, e);
    if (rc == WV_OK && p->cb != NULL &&
        (rc = p->cb(p->cb_arg, j->off, j->out, j->n)) != WV_OK)
        wv__seterr(e, rc, "stopped by the caller at byte %llu",
                   (unsigned long long)j->off);
    return rc;
}

static int opipe_start_budget(struct opipe *p, wv_repo *r, size_t n_jobs,
                              size_t chunk_size, bool check_ids,
                              size_t budget);

static int opipe_start(struct opipe *p, wv_repo *r, size_t n_jobs,
                       size_t chunk_size, bool check_ids)
{
    return opipe_start_budget(p, r, n_jobs, chunk_size, check_ids,
                              WV__READ_BUDGET);
}

/* The same, the ring's buffers within `budget` bytes (at least one). */
static int opipe_start_budget(struct opipe *p, wv_repo *r, size_t n_jobs,
                              size_t chunk_size, bool check_ids,
                              size_t budget)
{
    memset(p, 0, sizeof *p);
    p->r = r;
    p->check_ids = check_ids;
    pthread_mutex_init(&p->store_mu, NULL);
    for (int k = 0; k < WV__PIPE_MAX_WORKERS; k++)
        p->chain[k] = (struct wv__chain){.r = r, .x = &r->cidx,
                                         .store_mu = &p->store_mu,
                                         .check_id = check_ids};
    struct wv__pipe_cfg cfg = {
        .work = opipe_work,
        .ctx = p,
        .n = n_jobs,
        .slot_size = wv__chunk_bound(r, chunk_size),
        .slot_budget = budget,
        .ws_size = chunk_size,
        .min_threaded = 2, /* one chunk: no thread is worth starting */
        .windowed = false, /* this thread takes the slots */
    };
    int rc = wv__pipe_start(&p->pipe, &cfg);
    p->jobs = wv__calloc(n_jobs ? n_jobs : 1, sizeof *p->jobs);
    return rc == WV_OK && p->jobs == NULL ? WV_NOMEM : rc;
}

/* Job i could not be read: it fails the read (r->err says why). */
static void opipe_fail(struct opipe *p, size_t i, int rc)
{
    wv__pipe_fail(&p->pipe, i, rc, &p->r->err);
    wv__clearerr(&p->r->err);
}

/* Job i is read: post it (and do it now without workers); false once a
 * job has failed (no use reading more). */
static bool opipe_post(struct opipe *p, size_t i)
{
    bool going = wv__pipe_post(&p->pipe, i + 1);
    if (!wv__pipe_threaded(&p->pipe))
        wv__pipe_wait(&p->pipe, i);
    return going;
}

/* Every posted job done: the first failure in order, in r->err with its
 * tensor. */
static int opipe_finish(struct opipe *p, const struct wv__manifest *mf,
                        const char *id)
{
    struct wv__err e;
    size_t bad;
    int rc = wv__pipe_finish(&p->pipe, &bad, &e);
    if (rc != WV_OK) {
        const struct wv__mtensor *t = &mf->tensors[p->jobs[bad].tensor];
        wv__clearerr(&p->r->err);
        wv__seterr(&p->r->err, rc, "%s (tensor '%.100s' of checkpoint %.12s)",
                   e.msg[0] ? e.msg : wv_strerror(rc), t->name, id);
    }
    return rc;
}

static void opipe_release(struct opipe *p)
{
    wv__pipe_release(&p->pipe);
    pthread_mutex_destroy(&p->store_mu);
    for (int k = 0; k < WV__PIPE_MAX_WORKERS; k++)
        wv__chain_release(&p->chain[k]);
    wv__free(p->jobs);
    memset(p, 0, sizeof *p);
}

/* wv_checkout_opts before it grew verify_signer. */
#define CHECKOUT_OPTS_V1 offsetof(wv_checkout_opts, verify_signer)

static bool wanted(const wv_checkout_opts *o, const char *name)
{
    if (o->names == NULL)
        return true;
    for (size_t k = 0; k < o->n_names; k++)
        if (strcmp(name, o->names[k]) == 0)
            return true;
    return false;
}

int wv__repo_checkout_locked(wv_repo *r, const char *ref,
                             const wv_checkout_opts *given, wv_model **out)
{
    wv_checkout_opts o = WV_CHECKOUT_OPTS_INIT, *opts = &o;
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char id[65];
    struct wv__manifest mf;
    struct opipe p;
    bool piping = false;
    wv_model *m = NULL;
    void **bufs = NULL;
    size_t n_bufs = 0;

    memset(&mf, 0, sizeof mf);
    *out = NULL;
    wv__clearerr(err);
    if (given) {
        WV_CHECK(given->struct_size >= CHECKOUT_OPTS_V1, WV_MISUSE,
                 "checkout options from an incompatible header");
        memcpy(&o, given, given->struct_size < sizeof o ? given->struct_size
                                                        : sizeof o);
    }
    WV_TRY(wv__repo_resolve(r, ref, id));
    WV_TRY(wv__manifest_load(r, id, &mf));
    bool signer_required = false;
    WV_TRY(wv__sig_policy(r, &mf, opts->verify_signer, &signer_required));
    WV_TRY(wv__repo_load_index(r));
    if (opts->names) {
        for (size_t k = 0; k < opts->n_names; k++) {
            bool found = false;
            for (size_t i = 0; i < mf.n_tensors && !found; i++)
                found = strcmp(mf.tensors[i].name, opts->names[k]) == 0;
            WV_CHECK(found, WV_NOTFOUND,
                     "%s: checkpoint %.12s has no tensor '%.200s'", r->uri,
                     id, opts->names[k]);
        }
    }
    WV_CHECK(wv_model_new(&m) == WV_OK, WV_NOMEM, "out of memory");
    m->source_format = "repository";
    for (size_t i = 0; i < mf.n_meta; i++)
        WV_CHECK(wv_model_set_meta(m, mf.meta[i].key, mf.meta[i].value) ==
                     WV_OK,
                 WV_NOMEM, "out of memory");
    m->meta_state = mf.meta_absent    ? WV__META_NONE
                    : mf.meta_default ? WV__META_DEFAULT
                                      : WV__META_FROM_FILE;

    size_t n_jobs = 0, cs = (size_t)mf.chunk_size;
    WV_CHECK(mf.chunk_size <= ((uint64_t)1 << 30), WV_CORRUPT,
             "%s: checkpoint %.12s has chunks of %llu bytes", r->uri, id,
             (unsigned long long)mf.chunk_size);
    for (size_t i = 0; i < mf.n_tensors; i++)
        if (wanted(opts, mf.tensors[i].name) && !mf.tensors[i].n_shards)
            n_jobs += mf.tensors[i].n_chunks;
    bufs = wv__calloc(mf.n_tensors ? mf.n_tensors : 1, sizeof *bufs);
    WV_CHECK(bufs != NULL, WV_NOMEM, "out of memory");
    piping = true;
    /* Sealed chunks authenticate against their ids anyway; their keyed
     * ids are recomputed too when a signature decides (crypt.c). */
    WV_CHECK(opipe_start(&p, r, n_jobs, cs, signer_required) == WV_OK,
             WV_NOMEM, "out of memory");
    size_t cap = wv__chunk_bound(r, cs), i_job = 0;
    bool going = true;
    /* progress: bytes of tensor data read, of all wanted */
    bool has_progress = opts->struct_size >=
                            offsetof(wv_checkout_opts, progress_arg) +
                                sizeof opts->progress_arg &&
                        opts->progress != NULL;
    uint64_t p_done = 0, p_total = 0;
    for (size_t i = 0; has_progress && i < mf.n_tensors; i++)
        if (wanted(opts, mf.tensors[i].name))
            p_total += mf.tensors[i].nbytes;
    for (size_t i = 0; i < mf.n_tensors && going; i++) {
        const struct wv__mtensor *t = &mf.tensors[i];
        n_bufs = i + 1;
        if (!wanted(opts, t->name))
            continue;
        WV_CHECK(t->nbytes <= SIZE_MAX, WV_RANGE, "tensor too large");
        bufs[i] = wv__malloc((size_t)t->nbytes);
        WV_CHECK(bufs[i] != NULL || t->nbytes == 0, WV_NOMEM,
                 "out of memory for tensor '%.200s' (%llu bytes)", t->name,
                 (unsigned long long)t->nbytes);
        if (t->n_shards)
            continue; /* assembled from its regions below */
        for (size_t c = 0; c < t->n_chunks; c++, i_job++) {
            struct ojob *j = &p.jobs[i_job];
            uint64_t off = c * mf.chunk_size;
            j->n = (size_t)(t->nbytes - off < mf.chunk_size
                                ? t->nbytes - off
                                : mf.chunk_size);
            j->out = (unsigned char *)bufs[i] + off;
            j->tensor = i;
            rc = locate(r, t->chunks[c], j->n, cs, &j->l);
            if (rc == WV_OK && !read_in_place(r, j->l) &&
                j->l->stored_len > cap) {
                char hex[65];
                wv__hex(t->chunks[c], 32, hex);
                rc = wv__seterr(err, WV_CORRUPT,
                                "%s: chunk %.12s is too large", r->uri, hex);
            }
            if (rc == WV_OK) {
                /* In its place, or in the slot of the job n_slots back. */
                j->stored = read_in_place(r, j->l)
                                ? j->out
                                : wv__pipe_slot_take(&p.pipe, i_job);
                rc = opipe_read(&p, j);
            }
            if (rc != WV_OK) {
                opipe_fail(&p, i_job, rc);
                rc = WV_OK;
                going = false;
                break;
            }
            going = opipe_post(&p, i_job);
            if (has_progress) {
                p_done += j->n;
                opts->progress(opts->progress_arg, p_done, p_total);
            }
            if (!going)
                break;
        }
    }
    /* Every posted job done (the first failure, in order, wins). */
    WV_TRY(opipe_finish(&p, &mf, id));
    /* The global tensors of a multi-writer checkpoint, from their
     * regions. */
    for (size_t i = 0; going && i < mf.n_tensors; i++) {
        const struct wv__mtensor *t = &mf.tensors[i];
        if (!t->n_shards || !wanted(opts, t->name))
            continue;
        WV_TRY(read_sharded(r, mf.chunk_size, t, bufs[i]));
        if (has_progress) {
            p_done += t->nbytes;
            opts->progress(opts->progress_arg, p_done, p_total);
        }
    }
    for (size_t i = 0; i < mf.n_tensors; i++) {
        const struct wv__mtensor *t = &mf.tensors[i];
        if (!wanted(opts, t->name))
            continue;
        rc = wv__model_add(m, t->name, strlen(t->name), t->dtype, t->ndim,
                           t->shape, bufs[i], (size_t)t->nbytes, bufs[i],
                           err);
        bufs[i] = NULL; /* owned by the set now, or freed by the failed add */
        WV_TRY(rc);
    }
out:
    if (piping)
        opipe_release(&p);
    for (size_t i = 0; bufs && i < n_bufs; i++)
        wv__free(bufs[i]);
    wv__free(bufs);
    wv__manifest_release(&mf);
    if (rc != WV_OK) {
        wv_model_free(m);
        m = NULL;
    }
    *out = m;
    return rc;
}

int wv_repo_checkout(wv_repo *r, const char *ref,
                     const wv_checkout_opts *opts, wv_model **out)
{
    /* after the pending asynchronous commits (async.c) */
    return WV__REPO_LOCKED(r, wv__repo_checkout_locked(r, ref, opts, out));
}

/* ---- one tensor, chunk by chunk ------------------------------------------
 *
 * wv_repo_visit_tensor reads the chunks of one tensor that overlap a byte
 * range through the same pipeline as a checkout (this thread reads, the
 * workers decode and check), into a ring of buffers instead of the
 * tensor's place: memory stays bounded by the ring whatever the tensor's
 * size. The workers hand each checked chunk to the callback. */

static int visit_locked(wv_repo *r, const char *ref, const char *name,
                        uint64_t offset, uint64_t len, wv_chunk_cb cb,
                        void *arg)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char id[65];
    struct wv__manifest mf;
    struct opipe p;
    bool piping = false;
    unsigned char **outs = NULL;
    size_t n_outs = 0;
    const struct wv__mtensor *t = NULL;

    memset(&mf, 0, sizeof mf);
    wv__clearerr(err);
    WV_CHECK(name != NULL && cb != NULL, WV_MISUSE,
             "reading a tensor needs its name and a callback");
    bool signer_required;
    WV_TRY(load_tensor(r, ref, name, id, &mf, &signer_required, &t));
    WV_CHECK(offset <= t->nbytes && len <= t->nbytes - offset, WV_RANGE,
             "%s: bytes %llu..+%llu are past the end of tensor '%.200s' "
             "(%llu bytes)",
             r->uri, (unsigned long long)offset, (unsigned long long)len,
             t->name, (unsigned long long)t->nbytes);
    if (len == 0)
        goto out;
    WV_TRY(wv__repo_load_index(r));
    size_t cs = (size_t)mf.chunk_size;
    if (t->n_shards) {
        /* A global tensor of a multi-writer checkpoint: its bytes in
         * chunk-sized windows assembled from the regions, on this thread. */
        uint64_t by_cb;
        r->n_region_read = 0;
        rc = read_windows(r, t, cs, t->n_shards, offset, offset + len, cb,
                          arg, &by_cb);
        if (by_cb != UINT64_MAX)
            wv__seterr(err, rc, "stopped by the caller at byte %llu",
                       (unsigned long long)by_cb);
        goto out;
    }
    uint64_t c0 = offset / mf.chunk_size,
             c1 = (offset + len - 1) / mf.chunk_size + 1;
    WV_CHECK(c1 <= t->n_chunks, WV_CORRUPT,
             "%s: tensor '%.200s' of checkpoint %.12s lists too few chunks",
             r->uri, t->name, id);
    size_t n_jobs = (size_t)(c1 - c0);
    piping = true;
    WV_CHECK(opipe_start(&p, r, n_jobs, cs, signer_required) == WV_OK,
             WV_NOMEM, "out of memory");
    p.cb = cb;
    p.cb_arg = arg;
    outs = wv__calloc(p.pipe.n_slots, sizeof *outs);
    WV_CHECK(outs != NULL, WV_NOMEM, "out of memory");
    for (; n_outs < p.pipe.n_slots; n_outs++)
        WV_CHECK((outs[n_outs] = wv__malloc(cs)) != NULL, WV_NOMEM,
                 "out of memory");
    size_t cap = wv__chunk_bound(r, cs);
    for (size_t i_job = 0; i_job < n_jobs; i_job++) {
        struct ojob *j = &p.jobs[i_job];
        uint64_t c = c0 + i_job;
        j->off = c * mf.chunk_size;
        j->n = (size_t)(t->nbytes - j->off < mf.chunk_size
                            ? t->nbytes - j->off
                            : mf.chunk_size);
        j->tensor = (size_t)(t - mf.tensors);
        /* Slot k was last used by job i_job - n_slots: taken once every
         * job up to that one is done (its callback returned). */
        j->stored = wv__pipe_slot_take(&p.pipe, i_job);
        j->out = outs[i_job % p.pipe.n_slots];
        rc = locate(r, t->chunks[c], j->n, cs, &j->l);
        if (rc == WV_OK && read_in_place(r, j->l))
            j->out = j->stored;
        else if (rc == WV_OK && j->l->stored_len > cap) {
            char hex[65];
            wv__hex(t->chunks[c], 32, hex);
            rc = wv__seterr(err, WV_CORRUPT, "%s: chunk %.12s is too large",
                            r->uri, hex);
        }
        if (rc == WV_OK)
            rc = opipe_read(&p, j);
        if (rc != WV_OK) {
            opipe_fail(&p, i_job, rc);
            rc = WV_OK;
            break;
        }
        if (!opipe_post(&p, i_job))
            break;
    }
    rc = opipe_finish(&p, &mf, id);
out:
    if (piping)
        opipe_release(&p);
    for (size_t i = 0; i < n_outs; i++)
        wv__free(outs[i]);
    wv__free(outs);
    wv__manifest_release(&mf);
    return rc;
}

int wv_repo_visit_tensor(wv_repo *r, const char *ref, const char *name,
                         uint64_t offset, uint64_t len, wv_chunk_cb cb,
                         void *arg)
{
    return WV__REPO_LOCKED(
        r, visit_locked(r, ref, name, offset, len, cb, arg));
}

struct range_copy {
    unsigned char *buf;
    uint64_t offset, len;
};

/* Copy the part of a chunk that falls in the range (chunks do not
 * overlap: the workers write disjoint bytes). */
static int range_copy_cb(void *arg, uint64_t off, const void *data,
                         size_t n)
{
    const struct range_copy *rc = arg;
    uint64_t lo = off > rc->offset ? off : rc->offset;
    uint64_t hi = off + n < rc->offset + rc->len ? off + n
                                                 : rc->offset + rc->len;
    if (hi > lo)
        memcpy(rc->buf + (lo - rc->offset),
               (const unsigned char *)data + (lo - off), (size_t)(hi - lo));
    return WV_OK;
}

static int read_locked(wv_repo *r, const char *ref, const char *name,
                       uint64_t offset, uint64_t len, void *buf)
{
    struct range_copy c = {buf, offset, len};
    if (buf == NULL && len > 0) {
        wv__clearerr(&r->err);
        return wv__seterr(&r->err, WV_MISUSE,
                          "reading a tensor's bytes needs a buffer");
    }
    return visit_locked(r, ref, name, offset, len, range_copy_cb, &c);
}

int wv_repo_read_tensor(wv_repo *r, const char *ref, const char *name,
                        uint64_t offset, uint64_t len, void *buf)
{
    return WV__REPO_LOCKED(
        r, read_locked(r, ref, name, offset, len, buf));
}

static int chunks_locked(wv_repo *r, const char *ref, wv_tensor_chunks_cb cb,
                         void *arg)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char id[65];
    struct wv__manifest mf;

    memset(&mf, 0, sizeof mf);
    wv__clearerr(err);
    WV_CHECK(cb != NULL, WV_MISUSE, "listing chunks needs a callback");
    WV_TRY(wv__repo_resolve(r, ref, id));
    WV_TRY(wv__manifest_load(r, id, &mf));
    for (size_t i = 0; i < mf.n_tensors; i++) {
        const struct wv__mtensor *t = &mf.tensors[i];
        WV_TRY(cb(arg, t->name, mf.chunk_size, t->n_chunks,
                  (const unsigned char(*)[32])t->chunks));
    }
out:
    wv__manifest_release(&mf);
    return rc;
}

int wv_repo_tensor_chunks(wv_repo *r, const char *ref, wv_tensor_chunks_cb cb,
                          void *arg)
{
    return WV__REPO_LOCKED(r, chunks_locked(r, ref, cb, arg));
}

/* ---- a checkout streamed to a file ---------------------------------------
 *
 * wv_repo_checkout_file builds the set without data: each tensor is
 * deferred, its bytes coming from this reader when the format's writer
 * streams it (wv__tensor_stream). A rehearsal of the save (nothing
 * written) first learns the order in which the writer asks for the
 * tensors; the chunks are then read in that order through the same
 * pipeline as a checkout (this thread reads the store, the workers
 * unseal, decode and check), at most n_slots chunks ahead of the one
 * being written, and each chunk is handed to the writer once checked, in
 * order. Memory: the ring of stored chunks and as many decoded ones
 * (opts->buffer_bytes in all), the workers' codec workspaces and the
 * file's write buffer, whatever the set's size. A global tensor of a
 * multi-writer checkpoint streams in chunk-sized windows assembled from
 * its regions on this thread (struct rreader, as a visit reads it), once
 * the chunks read ahead are done (the store is this thread's then), in
 * as many more chunk buffers as the budget allows. A failure (a chunk
 * that does not verify) aborts the save: the target is left untouched. */

#define WV__STREAM_BUDGET ((uint64_t)64 << 20)

struct sreader {
    wv_repo *r;
    const struct wv__manifest *mf;
    const char *id;
    wv_model *m;  /* the deferred set */
    size_t *tidx; /* its tensor k is manifest tensor tidx[k] */
    struct wv__tensor_src src;
    bool planning;    /* the rehearsal: record the order only */
    size_t *plan;     /* tensors of m, in the writer's order */
    size_t n_plan, cap_plan;
    size_t *first;    /* plan position -> its first job; [n_plan]: n_jobs */
    size_t pos;       /* the plan position the writer asks for next */
    struct opipe p;
    unsigned char **outs; /* decoded chunks, one per ring slot */
    size_t n_outs;
    size_t n_jobs, next_read, next_write;
    size_t cap; /* the largest stored chunk the ring holds */
    bool going; /* no read failed */
    int rc;     /* the reader's failure, its message in err */
    struct wv__err err;
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
    uint64_t p_done, p_total;
    size_t n_rslots; /* the chunks a global tensor's reader may keep */
};

/* Read jobs ahead of the writer, as far as the ring allows: job i's
 * buffers are free once job i - n_slots is written. */
static void sreader_ahead(struct sreader *s)
{
    wv_repo *r = s->r;
    size_t cs = (size_t)s->mf->chunk_size, n_slots = s->p.pipe.n_slots;
    while (s->going && s->next_read < s->n_jobs &&
           s->next_read < s->next_write + n_slots) {
        size_t i = s->next_read;
        struct ojob *j = &s->p.jobs[i];
        const struct wv__mtensor *t = &s->mf->tensors[j->tensor];
        const unsigned char *cid = t->chunks[j->off / s->mf->chunk_size];
        int rc = locate(r, cid, j->n, cs, &j->l);
        if (rc == WV_OK && !read_in_place(r, j->l) &&
            j->l->stored_len > s->cap) {
            char hex[65];
            wv__hex(cid, 32, hex);
            rc = wv__seterr(&r->err, WV_CORRUPT,
                            "%s: chunk %.12s is too large", r->uri, hex);
        }
        if (rc == WV_OK) {
            /* never waits: job i - n_slots is written, so done */
            j->stored = wv__pipe_slot_take(&s->p.pipe, i);
            j->out = read_in_place(r, j->l) ? j->stored
                                            : s->outs[i % s->n_outs];
            rc = opipe_read(&s->p, j);
        }
        if (rc != WV_OK) {
            opipe_fail(&s->p, i, rc);
            s->going = false;
            return;
        }
        s->next_read++;
        if (!opipe_post(&s->p, i))
            s->going = false;
    }
}

/* The first failure in order, with its tensor, kept in s->err. */
static int sreader_fail(struct sreader *s)
{
    wv__clearerr(&s->r->err);
    int rc = opipe_finish(&s->p, s->mf, s->id);
    if (rc == WV_OK) /* cannot be: a job was missing or failed */
        rc = wv__seterr(&s->r->err, WV_ERROR,
                        "%s: the checkout stopped early", s->r->uri);
    s->rc = rc;
    s->err = s->r->err;
    return rc;
}

/* A window of a global tensor to the writer (read_windows' callback). */
struct swin {
    struct sreader *s;
    bool (*sink)(void *sarg, const void *p, size_t n);
    void *sink_arg;
};

static int swin_cb(void *arg, uint64_t off, const void *data, size_t n)
{
    struct swin *w = arg;
    struct sreader *s = w->s;
    (void)off;
    bool more = w->sink(w->sink_arg, data, n);
    if (s->progress) {
        s->p_done += n;
        s->progress(s->progress_arg, s->p_done, s->p_total);
    }
    return more ? WV_OK : WV_ERROR; /* the writer failed: its message */
}

/* Global tensor t (its regions) to the writer in chunk-sized windows,
 * once every job read ahead is done. */
static int sreader_regions(struct sreader *s, const struct wv__mtensor *t,
                           bool (*sink)(void *sarg, const void *p, size_t n),
                           void *sink_arg)
{
    struct swin w = {s, sink, sink_arg};
    uint64_t by_cb;
    for (size_t i = s->next_write; i < s->next_read; i++)
        if (wv__pipe_wait(&s->p.pipe, i) != WV_OK)
            return sreader_fail(s);
    int rc = read_windows(s->r, t, s->mf->chunk_size,
                          t->n_shards < s->n_rslots ? t->n_shards
                                                    : s->n_rslots,
                          0, t->nbytes, swin_cb, &w, &by_cb);
    if (by_cb != UINT64_MAX)
        return WV_OK; /* the writer stopped: its own message */
    if (rc != WV_OK) {
        s->going = false;
        s->rc = rc;
        s->err = s->r->err;
    }
    return rc;
}

static int sreader_fill(void *arg, const struct wv_tensor *t,
                        bool (*sink)(void *sarg, const void *p, size_t n),
                        void *sink_arg)
{
    struct sreader *s = arg;
    size_t k = (size_t)(t - s->m->tensors);
    if (s->rc != WV_OK)
        return s->rc;
    if (s->planning) {
        if (wv__grow(&s->plan, &s->cap_plan, s->n_plan, sizeof *s->plan,
                     16) != WV_OK)
            return s->rc = wv__seterr(&s->r->err, WV_NOMEM, "out of memory");
        s->plan[s->n_plan++] = k;
        return WV_OK;
    }
    if (s->pos >= s->n_plan || s->plan[s->pos] != k) {
        s->rc = wv__seterr(&s->r->err, WV_ERROR,
                           "%s: the writer asked for tensor '%.200s' out of "
                           "the order it rehearsed",
                           s->r->uri, t->name);
        s->err = s->r->err;
        return s->rc;
    }
    size_t end = s->first[++s->pos];
    const struct wv__mtensor *mt = &s->mf->tensors[s->tidx[k]];
    if (mt->n_shards)
        return sreader_regions(s, mt, sink, sink_arg);
    while (s->next_write < end) {
        size_t i = s->next_write;
        sreader_ahead(s);
        if (i >= s->next_read || wv__pipe_wait(&s->p.pipe, i) != WV_OK)
            return sreader_fail(s);
        const struct ojob *j = &s->p.jobs[i];
        bool more = sink(sink_arg, j->out, j->n);
        s->next_write++;
        if (s->progress) {
            s->p_done += j->n;
            s->progress(s->progress_arg, s->p_done, s->p_total);
        }
        if (!more)
            break; /* the writer failed: its own message */
    }
    return WV_OK;
}

/* Lay the jobs out in the order of the plan. */
static int sreader_jobs(struct sreader *s)
{
    struct wv__err *err = &s->r->err;
    int rc = WV_OK;
    size_t n_jobs = 0, n_nonempty = 0;
    for (size_t k = 0; k < s->m->n_tensors; k++)
        if (s->m->tensors[k].nbytes > 0)
            n_nonempty++;
    WV_CHECK(s->n_plan == n_nonempty, WV_ERROR,
             "%s: the writer rehearsed %zu of the %zu tensors", s->r->uri,
             s->n_plan, n_nonempty);
    s->first = wv__calloc(s->n_plan + 1, sizeof *s->first);
    WV_CHECK(s->first != NULL, WV_NOMEM, "out of memory");
    for (size_t q = 0; q < s->n_plan; q++) {
        s->first[q] = n_jobs;
        const struct wv__mtensor *t = &s->mf->tensors[s->tidx[s->plan[q]]];
        n_jobs += t->n_shards ? 0 : t->n_chunks; /* sreader_regions */
    }
    s->first[s->n_plan] = n_jobs;
    s->n_jobs = n_jobs;
out:
    return rc;
}

static void sreader_layout(struct sreader *s)
{
    uint64_t cs = s->mf->chunk_size;
    for (size_t q = 0; q < s->n_plan; q++) {
        size_t mt = s->tidx[s->plan[q]];
        const struct wv__mtensor *t = &s->mf->tensors[mt];
        for (size_t c = 0; !t->n_shards && c < t->n_chunks; c++) {
            struct ojob *j = &s->p.jobs[s->first[q] + c];
            j->off = c * cs;
            j->n = (size_t)(t->nbytes - j->off < cs ? t->nbytes - j->off
                                                    : cs);
            j->tensor = mt;
        }
    }
}

static int file_locked(wv_repo *r, const char *ref,
                       const wv_checkout_opts *given, const char *path,
                       const wv_save_opts *sopts, wv_model **index)
{
    wv_checkout_opts o = WV_CHECKOUT_OPTS_INIT, *opts = &o;
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char id[65];
    struct wv__manifest mf;
    struct sreader s;
    bool piping = false;

    memset(&mf, 0, sizeof mf);
    memset(&s, 0, sizeof s);
    wv__clearerr(err);
    WV_CHECK(path != NULL, WV_MISUSE, "a checkout to a file needs its path");
    if (given) {
        WV_CHECK(given->struct_size >= CHECKOUT_OPTS_V1, WV_MISUSE,
                 "checkout options from an incompatible header");
        memcpy(&o, given, given->struct_size < sizeof o ? given->struct_size
                                                        : sizeof o);
    }
    if (!wv__save_streams(path, sopts)) {
        /* the writer needs the whole set: check it out, then save it */
        rc = wv__repo_checkout_locked(r, ref, given, &s.m);
        if (rc == WV_OK && (rc = wv_model_save(s.m, path, sopts)) != WV_OK)
            wv__seterr(err, rc, "%s", wv_model_errmsg(s.m));
        goto out;
    }
    WV_TRY(wv__repo_resolve(r, ref, id));
    WV_TRY(wv__manifest_load(r, id, &mf));
    bool signer_required = false;
    WV_TRY(wv__sig_policy(r, &mf, opts->verify_signer, &signer_required));
    WV_TRY(wv__repo_load_index(r));
    WV_CHECK(mf.chunk_size > 0 && mf.chunk_size <= ((uint64_t)1 << 30),
             WV_CORRUPT, "%s: checkpoint %.12s has chunks of %llu bytes",
             r->uri, id, (unsigned long long)mf.chunk_size);
    for (size_t k = 0; opts->names && k < opts->n_names; k++) {
        bool found = false;
        for (size_t i = 0; i < mf.n_tensors && !found; i++)
            found = strcmp(mf.tensors[i].name, opts->names[k]) == 0;
        WV_CHECK(found, WV_NOTFOUND,
                 "%s: checkpoint %.12s has no tensor '%.200s'", r->uri, id,
                 opts->names[k]);
    }

    /* the deferred set */
    s.r = r;
    s.mf = &mf;
    s.id = id;
    s.going = true;
    s.src.fill = sreader_fill;
    s.src.arg = &s;
    WV_CHECK(wv_model_new(&s.m) == WV_OK, WV_NOMEM, "out of memory");
    s.m->source_format = "repository";
    s.m->index_only = true;
    for (size_t i = 0; i < mf.n_meta; i++)
        WV_CHECK(wv_model_set_meta(s.m, mf.meta[i].key, mf.meta[i].value) ==
                     WV_OK,
                 WV_NOMEM, "out of memory");
    s.m->meta_state = mf.meta_absent    ? WV__META_NONE
                      : mf.meta_default ? WV__META_DEFAULT
                                        : WV__META_FROM_FILE;
    s.tidx = wv__calloc(mf.n_tensors ? mf.n_tensors : 1, sizeof *s.tidx);
    WV_CHECK(s.tidx != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < mf.n_tensors; i++) {
        const struct wv__mtensor *t = &mf.tensors[i];
        if (!wanted(opts, t->name))
            continue;
        WV_CHECK(t->nbytes <= SIZE_MAX, WV_RANGE, "tensor too large");
        s.tidx[s.m->n_tensors] = i;
        WV_TRY(wv__model_add(s.m, t->name, strlen(t->name), t->dtype,
                             t->ndim, t->shape, NULL, (size_t)t->nbytes,
                             NULL, err));
    }
    for (size_t k = 0; k < s.m->n_tensors; k++)
        s.m->tensors[k].src = &s.src;

    /* the rehearsal: the writer's order */
    s.planning = true;
    rc = wv__model_save_ex(s.m, path, sopts, true, true, err);
    s.planning = false;
    WV_TRY(rc);
    WV_TRY(sreader_jobs(&s));

    /* the pipeline and its decoded-chunk buffers */
    size_t cs = (size_t)mf.chunk_size;
    uint64_t budget = opts->struct_size >= offsetof(wv_checkout_opts,
                                                    buffer_bytes) +
                                               sizeof opts->buffer_bytes &&
                              opts->buffer_bytes
                          ? opts->buffer_bytes
                          : WV__STREAM_BUDGET;
    s.cap = wv__chunk_bound(r, cs);
    /* a slot holds a stored chunk, its twin in outs the decoded one; a
     * global tensor's reader keeps as many chunks again */
    uint64_t slot_budget = budget / (s.cap + cs) * s.cap;
    s.n_rslots = budget / cs > SIZE_MAX ? SIZE_MAX : (size_t)(budget / cs);
    piping = true;
    WV_CHECK(opipe_start_budget(&s.p, r, s.n_jobs, cs, signer_required,
                                slot_budget > SIZE_MAX ? SIZE_MAX
                                                       : (size_t)slot_budget)
                 == WV_OK,
             WV_NOMEM, "out of memory");
    sreader_layout(&s);
    s.outs = wv__calloc(s.p.pipe.n_slots ? s.p.pipe.n_slots : 1,
                        sizeof *s.outs);
    WV_CHECK(s.outs != NULL, WV_NOMEM, "out of memory");
    for (; s.n_outs < s.p.pipe.n_slots; s.n_outs++)
        WV_CHECK((s.outs[s.n_outs] = wv__malloc(cs)) != NULL, WV_NOMEM,
                 "out of memory");
    if (opts->struct_size >= offsetof(wv_checkout_opts, progress_arg) +
                                 sizeof opts->progress_arg &&
        opts->progress != NULL) {
        s.progress = opts->progress;
        s.progress_arg = opts->progress_arg;
        for (size_t k = 0; k < s.m->n_tensors; k++)
            s.p_total += s.m->tensors[k].nbytes;
    }

    /* the save, fed chunk by chunk */
    rc = wv__model_save_ex(s.m, path, sopts, true, false, err);
    if (s.rc != WV_OK) {
        /* the reader's message, not the writer's wrapping of it */
        wv__clearerr(err);
        rc = wv__seterr(err, s.rc, "%s", s.err.msg);
    }
    WV_TRY(rc);
    WV_CHECK(s.next_write == s.n_jobs, WV_ERROR,
             "%s: the writer took %zu of the %zu chunks", r->uri,
             s.next_write, s.n_jobs);
out:
    if (piping)
        opipe_release(&s.p);
    for (size_t i = 0; i < s.n_outs; i++)
        wv__free(s.outs[i]);
    wv__free(s.outs);
    wv__free(s.plan);
    wv__free(s.first);
    wv__free(s.tidx);
    wv__manifest_release(&mf);
    if (s.m != NULL)
        for (size_t k = 0; k < s.m->n_tensors; k++)
            s.m->tensors[k].src = NULL;
    if (index != NULL && rc == WV_OK)
        *index = s.m;
    else
        wv_model_free(s.m);
    return rc;
}

int wv_repo_checkout_file(wv_repo *r, const char *ref,
                          const wv_checkout_opts *opts, const char *path,
                          const wv_save_opts *save_opts, wv_model **index)
{
    if (index != NULL)
        *index = NULL;
    return WV__REPO_LOCKED(
        r, file_locked(r, ref, opts, path, save_opts, index));
}
