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
 * which the worker reads through the base's chain (delta.c; at most K-1
 * links), taking the store's lock for those reads.
 * The checkpoint's signature is checked first (trust.c decides: a
 * signature that does not verify is refused always, a missing or foreign
 * one when a signer is required).
 */
#include "core.h"
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
    const unsigned char *base = NULL;
    rc = wv__chain_base(&c, l, ws, &base, &r->err);
    if (rc == WV_OK)
        rc = wv__chunk_open_base(r, l, dst, out, raw_len, base, ws, true,
                                 &r->err);
    wv__chain_release(&c);
    return rc;
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
    const unsigned char *base = NULL;
    int rc = WV_OK;
    if (j->l->codec == WV__CODEC_DELTA)
        rc = wv__chain_base(&p->chain[w->k], j->l, w->ws, &base, e);
    if (rc == WV_OK)
        rc = wv__chunk_open_base(p->r, j->l, j->stored, j->out, j->n, base,
                                 w->ws, p->check_ids, e);
    if (rc == WV_OK && p->cb != NULL &&
        (rc = p->cb(p->cb_arg, j->off, j->out, j->n)) != WV_OK)
        wv__seterr(e, rc, "stopped by the caller at byte %llu",
                   (unsigned long long)j->off);
    return rc;
}

static int opipe_start(struct opipe *p, wv_repo *r, size_t n_jobs,
                       size_t chunk_size, bool check_ids)
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
        .slot_budget = WV__READ_BUDGET,
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
        if (wanted(opts, mf.tensors[i].name))
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
    WV_TRY(wv__repo_resolve(r, ref, id));
    WV_TRY(wv__manifest_load(r, id, &mf));
    bool signer_required = false;
    WV_TRY(wv__sig_policy(r, &mf, NULL, &signer_required));
    for (size_t i = 0; i < mf.n_tensors && t == NULL; i++)
        if (strcmp(mf.tensors[i].name, name) == 0)
            t = &mf.tensors[i];
    WV_CHECK(t != NULL, WV_NOTFOUND,
             "%s: checkpoint %.12s has no tensor '%.200s'", r->uri, id, name);
    WV_CHECK(offset <= t->nbytes && len <= t->nbytes - offset, WV_RANGE,
             "%s: bytes %llu..+%llu are past the end of tensor '%.200s' "
             "(%llu bytes)",
             r->uri, (unsigned long long)offset, (unsigned long long)len,
             t->name, (unsigned long long)t->nbytes);
    WV_CHECK(mf.chunk_size > 0 && mf.chunk_size <= ((uint64_t)1 << 30),
             WV_CORRUPT, "%s: checkpoint %.12s has chunks of %llu bytes",
             r->uri, id, (unsigned long long)mf.chunk_size);
    if (len == 0)
        goto out;
    WV_TRY(wv__repo_load_index(r));
    size_t cs = (size_t)mf.chunk_size;
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

int wv_repo_read_tensor(wv_repo *r, const char *ref, const char *name,
                        uint64_t offset, uint64_t len, void *buf)
{
    struct range_copy rc = {buf, offset, len};
    if (buf == NULL && len > 0)
        return WV_MISUSE;
    return wv_repo_visit_tensor(r, ref, name, offset, len, range_copy_cb,
                                &rc);
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
