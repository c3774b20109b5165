/*
 * pipeline.h -- the ordered worker pipeline shared by commit (hash and
 * encode chunks), checkout and tensor reads (unseal, decode and check
 * chunks), and meant for any later stage of the same shape (a commit with
 * several pack writers).
 *
 * The shape: a producer thread makes items 0..n-1 available in order
 * (wv__pipe_post); worker threads (one per core, at most
 * WV__PIPE_MAX_WORKERS) take them in that order and run cfg.work on them
 * in parallel; the consumer (usually the producer itself) waits for them
 * in order (wv__pipe_wait), so results are used in submission order
 * whatever order the workers finish in.
 *
 *   - Memory in flight is bounded by a ring of n_slots buffers of
 *     cfg.slot_size bytes (at most cfg.slot_budget bytes in all, at most
 *     one per item): item i owns slot i % n_slots. With cfg.windowed the
 *     workers never run more than n_slots items ahead of the consumer
 *     (wv__pipe_consumed frees slots); otherwise the producer takes the
 *     slot of the item it fills with wv__pipe_slot_take, which waits
 *     until the item n_slots back is done.
 *   - Each worker owns its state (struct wv__pipe_worker): a codec
 *     workspace (reused zstd contexts, codec.h) when cfg.ws_size > 0.
 *   - A failure (of cfg.work, or reported by the producer with
 *     wv__pipe_fail) stops the pipeline: wv__pipe_post says so, and the
 *     failure of the first item in order is reported once, with its
 *     index and message (wv__pipe_wait, wv__pipe_finish).
 *   - Cancellation: wv__pipe_release at any point; the items being worked
 *     on finish, no other is started, the threads are joined.
 *   - Without threads (too few items, or none could start) every item is
 *     done inline by wv__pipe_wait, with worker 0's state.
 *
 * Only the producer/consumer thread calls these functions; cfg.work runs
 * on the workers and must touch only item i's data, its worker's state,
 * and what its caller guards itself.
 */
#ifndef WV_PIPELINE_H
#define WV_PIPELINE_H

#include "codec.h"

#include <pthread.h>

#define WV__PIPE_MAX_WORKERS 8

struct wv__pipe_worker {
    int k;                   /* 0..n_workers-1 */
    struct wv__codec_ws *ws; /* NULL unless cfg.ws_size */
};

/* Process item i; on failure return its status with a message in err. */
typedef int (*wv__pipe_fn)(void *ctx, size_t i, struct wv__pipe_worker *w,
                           struct wv__err *err);

struct wv__pipe_cfg {
    wv__pipe_fn work;
    void *ctx;
    size_t n;            /* items */
    size_t slot_size;    /* bytes of a ring slot; 0: no ring */
    size_t slot_budget;  /* bytes the ring may take in all */
    size_t ws_size;      /* per-worker codec workspace for chunks of this
                          * size; 0: none */
    size_t min_threaded; /* fewer items than this: no thread (inline) */
    bool windowed;       /* workers stay within n_slots of the consumer
                          * (no ring: unbounded) */
};

struct wv__pipe {
    struct wv__pipe_cfg cfg;
    unsigned char *done; /* per item */
    size_t posted, next, consumed, reclaimed;
    unsigned char **slot;
    size_t n_slots;
    struct wv__pipe_worker w[WV__PIPE_MAX_WORKERS];
    int n_w; /* worker states */
    pthread_t th[WV__PIPE_MAX_WORKERS];
    int n_th; /* threads running */
    struct wv__pipe_arg {
        struct wv__pipe *p;
        int k;
    } arg[WV__PIPE_MAX_WORKERS];
    pthread_mutex_t mu;
    pthread_cond_t cv; /* an item posted, done or consumed; stop */
    bool sync_ok;      /* mu and cv initialised */
    bool stop;
    int rc;            /* the failure of item `bad`, the first in order */
    size_t bad;
    struct wv__err err;
};

/* Set up the ring and the worker states and start the workers. p can be
 * released whatever this returns (WV_OK or WV_NOMEM). */
int wv__pipe_start(struct wv__pipe *p, const struct wv__pipe_cfg *cfg);
/* Items [0, upto) may be worked on. false once the pipeline has failed
 * (no use preparing more). */
bool wv__pipe_post(struct wv__pipe *p, size_t upto);
/* Wait until item i is done (doing it here without threads); WV_OK unless
 * an item <= i failed (that failure's status). */
int wv__pipe_wait(struct wv__pipe *p, size_t i);
/* Items up to i are used: their slots may take later items (windowed). */
void wv__pipe_consumed(struct wv__pipe *p, size_t i);
/* The slot of item i, once the item n_slots back is done (unwindowed). */
unsigned char *wv__pipe_slot_take(struct wv__pipe *p, size_t i);
/* The slot of item i, without waiting (windowed work functions). */
unsigned char *wv__pipe_slot(const struct wv__pipe *p, size_t i);
/* The producer could not prepare item i: rc, message in err. */
void wv__pipe_fail(struct wv__pipe *p, size_t i, int rc,
                   const struct wv__err *err);
/* The first failure in order so far (WV_OK if none), its message in *err:
 * after wv__pipe_wait failed, without waiting for anything more. */
int wv__pipe_failure(struct wv__pipe *p, struct wv__err *err);
/* Wait for every posted item; the first failure in order (WV_OK if none),
 * its item in *bad and its message in *err (either may be NULL). */
int wv__pipe_finish(struct wv__pipe *p, size_t *bad, struct wv__err *err);
/* Are items done by threads (false: inline in wv__pipe_wait)? */
bool wv__pipe_threaded(const struct wv__pipe *p);
/* Stop (cancel), join the workers, free everything. */
void wv__pipe_release(struct wv__pipe *p);

#endif
