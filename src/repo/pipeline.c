/*
 * pipeline.c -- the ordered worker pipeline (see pipeline.h for the
 * contract): items taken in order by worker threads, processed in
 * parallel, used in order; bounded ring of buffers; one codec workspace per
 * worker; the first failure in order reported once; cancellation.
 *
 * One mutex guards the counters and the per-item `done` flags; one
 * condition variable is broadcast on every change (an item posted, done or
 * consumed, a stop), which is cheap at the rate of chunks (one per
 * megabyte or more) and keeps the waits simple.
 */
#include "pipeline.h"

#include <unistd.h>

static void record_fail(struct wv__pipe *p, size_t i, int rc,
                        const struct wv__err *e)
{
    /* under p->mu */
    if (p->rc == WV_OK || i < p->bad) {
        p->rc = rc;
        p->bad = i;
        p->err = *e;
    }
}

/* Run item i on worker state w and publish the result. */
static void run_item(struct wv__pipe *p, size_t i, struct wv__pipe_worker *w)
{
    struct wv__err e = {0};
    int rc = p->cfg.work(p->cfg.ctx, i, w, &e);
    pthread_mutex_lock(&p->mu);
    if (rc != WV_OK)
        record_fail(p, i, rc, &e);
    p->done[i] = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Can a worker take the next item now? (under p->mu) */
static bool item_ready(const struct wv__pipe *p)
{
    if (p->next >= p->posted)
        return false;
    /* Windowed without a ring: as far ahead as the workers like. */
    return !p->cfg.windowed || p->n_slots == 0 ||
           p->next < p->consumed + p->n_slots;
}

static void *worker_main(void *arg)
{
    struct wv__pipe_arg *a = arg;
    struct wv__pipe *p = a->p;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && !item_ready(p))
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        size_t i = p->next++;
        pthread_mutex_unlock(&p->mu);
        run_item(p, i, &p->w[a->k]);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int wv__pipe_start(struct wv__pipe *p, const struct wv__pipe_cfg *cfg)
{
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->sync_ok = true;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int want = ncpu < 1                       ? 1
               : ncpu > WV__PIPE_MAX_WORKERS ? WV__PIPE_MAX_WORKERS
                                              : (int)ncpu;
    if ((size_t)want > cfg->n)
        want = cfg->n ? (int)cfg->n : 1;
    p->done = wv__calloc(cfg->n ? cfg->n : 1, 1);
    if (p->done == NULL)
        return WV_NOMEM;
    if (cfg->slot_size) {
        /* Two per worker and two more keep every worker busy while the
         * consumer catches up; the budget bounds memory in flight. */
        size_t slots = 2 * (size_t)want + 2;
        if (slots > cfg->slot_budget / cfg->slot_size)
            slots = cfg->slot_budget / cfg->slot_size;
        if (slots > cfg->n)
            slots = cfg->n;
        if (slots < 1)
            slots = 1;
        if ((p->slot = wv__calloc(slots, sizeof *p->slot)) == NULL)
            return WV_NOMEM;
        for (size_t i = 0; i < slots; i++) {
            if ((p->slot[i] = wv__malloc(cfg->slot_size)) == NULL)
                return WV_NOMEM;
            p->n_slots++;
        }
    }
    for (int k = 0; k < want; k++) {
        p->w[k].k = k;
        if (cfg->ws_size &&
            wv__codec_ws_new(cfg->ws_size, &p->w[k].ws) != WV_OK)
            return WV_NOMEM;
        p->n_w++;
    }
    for (int k = 0; k < want && cfg->n >= cfg->min_threaded && cfg->n;
         k++) {
        p->arg[k] = (struct wv__pipe_arg){p, k};
        if (pthread_create(&p->th[p->n_th], NULL, worker_main, &p->arg[k]) !=
            0)
            break; /* fewer workers (or none: inline) */
        p->n_th++;
    }
    return WV_OK;
}

bool wv__pipe_post(struct wv__pipe *p, size_t upto)
{
    pthread_mutex_lock(&p->mu);
    if (upto > p->posted)
        p->posted = upto;
    bool ok = p->rc == WV_OK;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

int wv__pipe_wait(struct wv__pipe *p, size_t i)
{
    pthread_mutex_lock(&p->mu);
    while (p->n_th == 0 && !p->done[i] && p->next <= i) {
        size_t k = p->next++;
        pthread_mutex_unlock(&p->mu);
        run_item(p, k, &p->w[0]);
        pthread_mutex_lock(&p->mu);
    }
    while (!p->done[i])
        pthread_cond_wait(&p->cv, &p->mu);
    int rc = p->rc != WV_OK && p->bad <= i ? p->rc : WV_OK;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

void wv__pipe_consumed(struct wv__pipe *p, size_t i)
{
    pthread_mutex_lock(&p->mu);
    if (i + 1 > p->consumed)
        p->consumed = i + 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

unsigned char *wv__pipe_slot(const struct wv__pipe *p, size_t i)
{
    return p->n_slots ? p->slot[i % p->n_slots] : NULL;
}

unsigned char *wv__pipe_slot_take(struct wv__pipe *p, size_t i)
{
    /* The slot was last used by an item at most n_slots back (or an
     * earlier one, when the items between used none): free once every
     * item up to i - n_slots is done, not that one alone. */
    while (p->n_slots && i >= p->n_slots &&
           p->reclaimed <= i - p->n_slots)
        wv__pipe_wait(p, p->reclaimed++);
    return wv__pipe_slot(p, i);
}

void wv__pipe_fail(struct wv__pipe *p, size_t i, int rc,
                   const struct wv__err *err)
{
    pthread_mutex_lock(&p->mu);
    record_fail(p, i, rc, err);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int wv__pipe_failure(struct wv__pipe *p, struct wv__err *err)
{
    pthread_mutex_lock(&p->mu);
    int rc = p->rc;
    *err = p->err;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int wv__pipe_finish(struct wv__pipe *p, size_t *bad, struct wv__err *err)
{
    for (size_t i = 0; i < p->posted; i++)
        wv__pipe_wait(p, i);
    pthread_mutex_lock(&p->mu);
    int rc = p->rc;
    if (bad)
        *bad = p->bad;
    if (err)
        *err = p->err;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

bool wv__pipe_threaded(const struct wv__pipe *p)
{
    return p->n_th > 0;
}

void wv__pipe_release(struct wv__pipe *p)
{
    if (p->sync_ok) {
        pthread_mutex_lock(&p->mu);
        p->stop = true;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->n_th; i++)
            pthread_join(p->th[i], NULL);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    for (size_t i = 0; i < p->n_slots; i++)
        wv__free(p->slot[i]);
    for (int k = 0; k < p->n_w; k++)
        wv__codec_ws_free(p->w[k].ws);
    wv__free(p->slot);
    wv__free(p->done);
    memset(p, 0, sizeof *p);
}
