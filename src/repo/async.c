/*
 * async.c -- asynchronous commits, and the mutex that makes a repository
 * handle safe to share between the caller's threads and the commit thread.
 *
 * Each open repository has one worker thread, started by its first
 * asynchronous commit, and a FIFO queue of staged commits. The caller is
 * blocked only while wv_repo_commit_async() stages the set (a copy into
 * memory bounded by opts->staging_bytes, or taking the set over); the
 * worker runs the ordinary commit (wv__repo_commit_locked, or
 * wv__repo_commit_part_locked for a part of a multi-writer checkpoint) on
 * each queued set in order, so checkpoints land on their branches in the order they
 * were started.
 *
 * Invariants:
 *  - `mu` is held by whoever works on the repository: the worker during a
 *    commit, and every public call between wv__repo_enter and
 *    wv__repo_leave. Public calls first wait until `pending` is 0, so they
 *    see every commit started before them and never interleave with one.
 *  - `qmu` guards the queue, `pending` (queued or running commits) and
 *    `staged` (bytes of staged copies alive); `qcv` is broadcast whenever
 *    a commit finishes, which is what both waits in enter and the staging
 *    budget wait on.
 *  - A handle has its own mutex and condition for `done`, `rc`, `id` and
 *    `msg`, so it stays usable after its repository is closed (close waits
 *    for the queue to drain first). Once the worker has marked a handle
 *    done it never touches it again.
 *  - The repository's own message (r->err) belongs to whoever holds `mu`;
 *    the worker copies a failed commit's message into the handle.
 *
 * The one call cycle left in src/repo/ is here, and on purpose: commit.c
 * (like every public entry point) takes the handle through
 * wv__repo_enter/wv__repo_leave below, and the worker below runs
 * wv__repo_commit_locked from commit.c. The queue and the mutex must be
 * one room, since entering waits for the queue to drain; and the worker
 * exists to run commits.
 */
#include "core.h"
#include "repo.h"
#include "tensor.h"

#include <pthread.h>

#define DEFAULT_STAGING ((uint64_t)1 << 30)

struct wv__async {
    pthread_mutex_t mu;
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    wv_repo *r;
    struct wv_commit_handle *head, *tail;
    size_t pending;
    uint64_t staged;
    pthread_t th;
    bool th_started, quit;
    /* The staging buffer of the last copied commit, kept for the next one
     * (under qmu): copying into pages faulted in once is several times
     * faster than into fresh memory, and the copy is what blocks the
     * caller. */
    void *pool;
    size_t pool_len;
};

struct wv_commit_handle {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int rc;
    char id[WV_ID_HEX];
    char msg[WV_ERRBUF_SIZE];
    /* What to commit; owned by the handle until the worker is done. */
    wv_model *set;
    uint64_t staged; /* bytes charged to the staging budget */
    bool copied;     /* set->regions[0] is a staging buffer to recycle */
    char *branch;    /* NULL: main */
    char *message;
    char *sign_key;  /* the caller's strings, copied */
    wv_commit_opts opts;
    /* A part of a multi-writer checkpoint (wv_repo_commit_part_async):
     * part.txn points to txn, the caller's, copied. */
    bool is_part;
    wv_part_opts part;
    char *txn;
    struct wv_commit_handle *next;
};

int wv__repo_async_init(wv_repo *r)
{
    struct wv__async *a = wv__calloc(1, sizeof *a);
    if (a == NULL)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    pthread_mutex_init(&a->mu, NULL);
    pthread_mutex_init(&a->qmu, NULL);
    pthread_cond_init(&a->qcv, NULL);
    a->r = r;
    r->async = a;
    return WV_OK;
}

void wv__repo_async_release(wv_repo *r)
{
    struct wv__async *a = r->async;
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->qmu);
    while (a->pending > 0)
        pthread_cond_wait(&a->qcv, &a->qmu);
    a->quit = true;
    pthread_cond_broadcast(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
    if (a->th_started)
        pthread_join(a->th, NULL);
    pthread_cond_destroy(&a->qcv);
    pthread_mutex_destroy(&a->qmu);
    pthread_mutex_destroy(&a->mu);
    wv__free(a->pool);
    wv__free(a);
    r->async = NULL;
}

void wv__repo_enter(wv_repo *r)
{
    struct wv__async *a = r->async;
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->qmu);
    while (a->pending > 0)
        pthread_cond_wait(&a->qcv, &a->qmu);
    pthread_mutex_unlock(&a->qmu);
    pthread_mutex_lock(&a->mu);
}

void wv__repo_leave(wv_repo *r)
{
    if (r->async)
        pthread_mutex_unlock(&r->async->mu);
}

int wv__repo_leave_rc(wv_repo *r, int rc)
{
    wv__repo_leave(r);
    return rc;
}

static void *worker_main(void *arg)
{
    struct wv__async *a = arg;
    wv_repo *r = a->r;
    pthread_mutex_lock(&a->qmu);
    for (;;) {
        while (a->head == NULL && !a->quit)
            pthread_cond_wait(&a->qcv, &a->qmu);
        if (a->head == NULL)
            break; /* quit, and nothing left */
        struct wv_commit_handle *h = a->head;
        a->head = h->next;
        if (a->head == NULL)
            a->tail = NULL;
        pthread_mutex_unlock(&a->qmu);

        char id[WV_ID_HEX] = "", msg[WV_ERRBUF_SIZE] = "";
        pthread_mutex_lock(&a->mu);
        int rc = h->is_part ? wv__repo_commit_part_locked(
                                  r, h->set, h->branch, &h->part, &h->opts, id)
                            : wv__repo_commit_locked(r, h->set, h->branch,
                                                     &h->opts, id);
        if (rc != WV_OK)
            snprintf(msg, sizeof msg, "%s", r->err.msg);
        pthread_mutex_unlock(&a->mu);
        /* The staged copy (or the set taken over) is no longer needed;
         * a staging buffer goes back to the pool. */
        void *spare = NULL;
        size_t spare_len = 0;
        if (h->copied && h->set->n_regions > 0) {
            spare = h->set->regions[0].p;
            spare_len = h->set->regions[0].len;
            h->set->regions[0].p = NULL;
        }
        wv_model_free(h->set);
        h->set = NULL;
        uint64_t staged = h->staged;

        /* Done before it stops counting as pending: a call that waited
         * for the pending commits must find their handles done. */
        pthread_mutex_lock(&h->mu);
        h->rc = rc;
        memcpy(h->id, id, sizeof id);
        memcpy(h->msg, msg, sizeof msg);
        h->done = true;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        /* h may be freed by its owner from here on. */

        pthread_mutex_lock(&a->qmu);
        if (spare && spare_len > a->pool_len) {
            void *old = a->pool;
            a->pool = spare;
            a->pool_len = spare_len;
            spare = old;
        }
        wv__free(spare);
        a->staged -= staged;
        a->pending--;
        pthread_cond_broadcast(&a->qcv);
    }
    pthread_mutex_unlock(&a->qmu);
    return NULL;
}

/* A private copy of m in one buffer of `total` bytes, which the copy owns;
 * metadata and its state too. Reports no message (the caller has none to
 * give: the handle does not exist yet). */
static int stage_copy(struct wv__async *a, const wv_model *m, size_t total,
                      wv_model **out)
{
    int rc = WV_OK;
    wv_model *c = NULL;
    unsigned char *buf = NULL;
    size_t off = 0, cap = total;
    *out = NULL;
    if ((rc = wv_model_new(&c)) != WV_OK)
        return rc;
    if (total) {
        pthread_mutex_lock(&a->qmu);
        if (a->pool && a->pool_len >= total) {
            buf = a->pool;
            cap = a->pool_len;
            a->pool = NULL;
            a->pool_len = 0;
        }
        pthread_mutex_unlock(&a->qmu);
        if (buf == NULL)
            buf = wv__malloc(total);
        if (buf == NULL || wv__model_keep(c, buf, cap, false) != WV_OK) {
            rc = WV_NOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        unsigned char *dst = t->nbytes ? buf + off : NULL;
        if (t->nbytes)
            wv__memcpy_par(dst, t->data, t->nbytes);
        off += t->nbytes;
        rc = wv__model_add(c, t->name, strlen(t->name), t->dtype, t->ndim,
                           t->shape, dst, t->nbytes, NULL, &c->err);
        if (rc != WV_OK)
            goto out;
        /* the region of a global tensor it is (a part's) */
        struct wv_tensor *ct = &c->tensors[c->n_tensors - 1];
        ct->has_region = t->has_region;
        memcpy(ct->gshape, t->gshape, sizeof ct->gshape);
        memcpy(ct->goffset, t->goffset, sizeof ct->goffset);
    }
    for (size_t i = 0; i < m->n_meta; i++)
        if ((rc = wv_model_set_meta(c, m->meta[i].key, m->meta[i].value)) !=
            WV_OK)
            goto out;
    c->meta_state = m->meta_state;
    c->source_format = m->source_format;
out:
    if (rc != WV_OK) {
        wv_model_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

static void handle_free(wv_commit_handle *h)
{
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    wv_model_free(h->set);
    wv__free(h->branch);
    wv__free(h->message);
    wv__free(h->sign_key);
    wv__free(h->txn);
    wv__free(h);
}

/* Wrong arguments of a part (whose message only the repository handle
 * can carry): the message, set while no commit runs. */
static int part_misuse(struct wv__async *a, const struct wv__err *e)
{
    pthread_mutex_lock(&a->mu);
    a->r->err = *e;
    pthread_mutex_unlock(&a->mu);
    return e->code;
}

/* wv_repo_commit_async, or wv_repo_commit_part_async when part is not
 * NULL. */
static int start_async(wv_repo *r, const wv_model *m, const char *branch,
                       const wv_commit_opts *opts, const wv_part_opts *part,
                       unsigned flags, wv_commit_handle **out)
{
    static const wv_commit_opts defaults = WV_COMMIT_OPTS_INIT;
    int rc = WV_OK;
    wv_commit_handle *h = NULL;
    struct wv__async *a = r ? r->async : NULL;
    wv_model *take = flags & WV_ASYNC_TAKE ? (wv_model *)m : NULL;
    bool charged = false;

    if (out)
        *out = NULL;
    if (a == NULL || m == NULL || out == NULL || m->index_only ||
        (flags != WV_ASYNC_COPY && flags != WV_ASYNC_TAKE)) {
        rc = WV_MISUSE;
        goto out;
    }
    if (part) {
        struct wv__err e = {0};
        if (wv__part_check(m, branch, part, &e) != WV_OK) {
            rc = part_misuse(a, &e);
            goto out;
        }
    }
    if (opts == NULL)
        opts = &defaults;
    h = wv__calloc(1, sizeof *h);
    if (h == NULL) {
        rc = WV_NOMEM;
        goto out;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    /* A caller's smaller (older) struct is copied as far as it goes and
     * keeps its struct_size: the commit takes the fields it covers (or
     * reports an incompatible header). */
    memcpy(&h->opts, opts,
           opts->struct_size < sizeof h->opts ? opts->struct_size
                                              : sizeof h->opts);
    bool has_message = opts->struct_size >= offsetof(wv_commit_opts,
                                                     message) +
                                                sizeof opts->message;
    bool has_sign = opts->struct_size >= offsetof(wv_commit_opts,
                                                  sign_key) +
                                             sizeof opts->sign_key;
    if ((branch && (h->branch = wv__strdup(branch)) == NULL) ||
        (has_message && opts->message &&
         (h->message = wv__strdup(opts->message)) == NULL) ||
        (has_sign && opts->sign_key &&
         (h->sign_key = wv__strdup(opts->sign_key)) == NULL)) {
        rc = WV_NOMEM;
        goto out;
    }
    if (part) {
        h->is_part = true;
        h->part = *part;
        h->part.struct_size = sizeof h->part;
        if ((h->txn = wv__strdup(part->txn)) == NULL) {
            rc = WV_NOMEM;
            goto out;
        }
        h->part.txn = h->txn;
    }
    if (has_message)
        h->opts.message = h->message;
    if (has_sign)
        h->opts.sign_key = h->sign_key;

    if (take) {
        h->set = take;
        take = NULL;
    } else {
        size_t total = 0;
        for (size_t i = 0; i < m->n_tensors; i++)
            total += m->tensors[i].nbytes;
        uint64_t limit = opts->struct_size >=
                                     offsetof(wv_commit_opts,
                                              staging_bytes) +
                                         sizeof opts->staging_bytes &&
                                 opts->staging_bytes
                             ? opts->staging_bytes
                             : DEFAULT_STAGING;
        /* Wait for room; a set larger than the budget waits until it is
         * the only one staged. */
        pthread_mutex_lock(&a->qmu);
        while (a->staged > 0 && a->staged + total > limit)
            pthread_cond_wait(&a->qcv, &a->qmu);
        a->staged += total;
        pthread_mutex_unlock(&a->qmu);
        h->staged = total;
        charged = true;
        if ((rc = stage_copy(a, m, total, &h->set)) != WV_OK)
            goto out;
        h->copied = total > 0;
    }

    pthread_mutex_lock(&a->qmu);
    if (!a->th_started) {
        if (pthread_create(&a->th, NULL, worker_main, a) != 0) {
            pthread_mutex_unlock(&a->qmu);
            rc = WV_ERROR;
            goto out;
        }
        a->th_started = true;
    }
    a->pending++;
    if (a->tail)
        a->tail->next = h;
    else
        a->head = h;
    a->tail = h;
    pthread_cond_broadcast(&a->qcv);
    pthread_mutex_unlock(&a->qmu);
    *out = h;
    h = NULL;
out:
    if (h) {
        if (charged) {
            pthread_mutex_lock(&a->qmu);
            a->staged -= h->staged;
            pthread_cond_broadcast(&a->qcv);
            pthread_mutex_unlock(&a->qmu);
        }
        handle_free(h);
    }
    wv_model_free(take);
    return rc;
}

int wv_repo_commit_async(wv_repo *r, const wv_model *m, const char *branch,
                         const wv_commit_opts *opts, unsigned flags,
                         wv_commit_handle **out)
{
    return start_async(r, m, branch, opts, NULL, flags, out);
}

int wv_repo_commit_part_async(wv_repo *r, const wv_model *m,
                              const char *branch, const wv_part_opts *part,
                              const wv_commit_opts *opts, unsigned flags,
                              wv_commit_handle **out)
{
    return start_async(r, m, branch, opts, part, flags, out);
}

int wv_commit_poll(wv_commit_handle *h)
{
    if (h == NULL)
        return WV_MISUSE;
    pthread_mutex_lock(&h->mu);
    int rc = h->done ? h->rc : WV_BUSY;
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int wv_commit_wait(wv_commit_handle *h, char id[WV_ID_HEX])
{
    if (id)
        id[0] = '\0';
    if (h == NULL)
        return WV_MISUSE;
    pthread_mutex_lock(&h->mu);
    while (!h->done)
        pthread_cond_wait(&h->cv, &h->mu);
    int rc = h->rc;
    if (id && (rc == WV_OK || rc == WV_CONFLICT))
        memcpy(id, h->id, WV_ID_HEX);
    pthread_mutex_unlock(&h->mu);
    return rc;
}

const char *wv_commit_errmsg(const wv_commit_handle *h)
{
    if (h == NULL)
        return "no commit handle";
    wv_commit_handle *w = (wv_commit_handle *)h;
    pthread_mutex_lock(&w->mu);
    const char *msg = w->done ? w->msg : "";
    pthread_mutex_unlock(&w->mu);
    return msg;
}

void wv_commit_free(wv_commit_handle *h)
{
    if (h == NULL)
        return;
    wv_commit_wait(h, NULL);
    handle_free(h);
}
