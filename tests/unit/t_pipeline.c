/*
 * t_pipeline.c -- the ordered worker pipeline (src/repo/pipeline.c) and
 * the per-worker codec workspace (src/codec/codec.c): results in order,
 * slots never reused before they are consumed, the window bounded, the
 * first failure in order reported, cancellation, allocation failures; and
 * zstd contexts that come from the library's allocator and are reused
 * from chunk to chunk.
 */
#include "pipeline.h"
#include "wvtest.h"

#include <unistd.h>

struct pctx {
    struct wv__pipe *p;
    size_t *out;
    size_t consumed; /* as the consumer last said (atomic) */
    size_t max_ahead;
    size_t fail_a, fail_b; /* items that fail (SIZE_MAX: none) */
    size_t done;           /* items run (atomic) */
    unsigned sleep_us;
};

static int pwork(void *ctx, size_t i, struct wv__pipe_worker *w,
                 struct wv__err *err)
{
    struct pctx *c = ctx;
    size_t seen = __atomic_load_n(&c->consumed, __ATOMIC_ACQUIRE);
    size_t ahead = i >= seen ? i - seen : 0, m;
    while ((m = __atomic_load_n(&c->max_ahead, __ATOMIC_RELAXED)) < ahead &&
           !__atomic_compare_exchange_n(&c->max_ahead, &m, ahead, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    if (i % 7 == 3 || c->sleep_us)
        usleep(c->sleep_us ? c->sleep_us : 200);
    if (i == c->fail_a)
        usleep(20000); /* the earlier failure comes last */
    __atomic_fetch_add(&c->done, 1, __ATOMIC_RELAXED);
    if (w->k < 0 || w->k >= WV__PIPE_MAX_WORKERS)
        return wv__seterr(err, WV_ERROR, "bad worker %d", w->k);
    if (i == c->fail_a || i == c->fail_b)
        return wv__seterr(err, WV_CORRUPT, "item %zu failed", i);
    c->out[i] = i * 3;
    unsigned char *s = wv__pipe_slot(c->p, i);
    if (s)
        memcpy(s, &i, sizeof i);
    return WV_OK;
}

TEST_IMPL(pipeline_order_window_errors)
{
    enum { N = 500 };
    static size_t out[N];
    struct wv__pipe p;
    struct pctx c = {&p, out, 0, 0, SIZE_MAX, SIZE_MAX, 0, 0};
    /* Windowed: 4 slots of one size_t; results in order, each slot still
     * holding its item when consumed, never more than 4 items ahead. */
    struct wv__pipe_cfg cfg = {pwork, &c, N, sizeof(size_t),
                               4 * sizeof(size_t), 0, 1, true};
    ASSERT_OK(wv__pipe_start(&p, &cfg));
    ASSERT_EQ(p.n_slots, 4);
    ASSERT(wv__pipe_post(&p, N));
    for (size_t i = 0; i < N; i++) {
        size_t got;
        ASSERT_OK(wv__pipe_wait(&p, i));
        ASSERT_EQ(out[i], i * 3);
        memcpy(&got, wv__pipe_slot(&p, i), sizeof got);
        ASSERT_EQ(got, i);
        __atomic_store_n(&c.consumed, i + 1, __ATOMIC_RELEASE);
        wv__pipe_consumed(&p, i);
    }
    ASSERT_OK(wv__pipe_finish(&p, NULL, NULL));
    wv__pipe_release(&p);
    ASSERT(c.max_ahead < 4);

    /* Two failures: the first in order is the one reported, once, even
     * though it happens last; the items before it are fine. */
    memset(&c, 0, sizeof c);
    c.p = &p;
    c.out = out;
    c.fail_a = 40;
    c.fail_b = 150;
    cfg = (struct wv__pipe_cfg){pwork, &c, 200, 0, 0, 0, 2, false};
    ASSERT_OK(wv__pipe_start(&p, &cfg));
    wv__pipe_post(&p, 200);
    ASSERT_OK(wv__pipe_wait(&p, 39));
    ASSERT_EQ(wv__pipe_wait(&p, 40), WV_CORRUPT);
    struct wv__err e = {0};
    size_t bad = 0;
    ASSERT_EQ(wv__pipe_finish(&p, &bad, &e), WV_CORRUPT);
    ASSERT_EQ(bad, 40);
    ASSERT_STREQ(e.msg, "item 40 failed");
    ASSERT(!wv__pipe_post(&p, 200)); /* failed: stop producing */
    wv__pipe_release(&p);

    /* A producer's failure counts in order too, and only once. */
    memset(&c, 0, sizeof c);
    c.p = &p;
    c.out = out;
    c.fail_a = c.fail_b = SIZE_MAX;
    cfg = (struct wv__pipe_cfg){pwork, &c, 50, 0, 0, 0, 2, false};
    ASSERT_OK(wv__pipe_start(&p, &cfg));
    ASSERT(wv__pipe_post(&p, 10));
    memset(&e, 0, sizeof e);
    wv__seterr(&e, WV_IO, "item 10 unreadable");
    wv__pipe_fail(&p, 10, WV_IO, &e);
    ASSERT(!wv__pipe_post(&p, 10));
    ASSERT_EQ(wv__pipe_finish(&p, &bad, &e), WV_IO);
    ASSERT_EQ(bad, 10);
    ASSERT_STREQ(e.msg, "item 10 unreadable");
    ASSERT_EQ(c.done, 10);
    wv__pipe_release(&p);
}

TEST_IMPL(pipeline_inline_cancel_nomem)
{
    enum { N = 300 };
    static size_t out[N];
    struct wv__pipe p;
    struct pctx c = {&p, out, 0, 0, SIZE_MAX, SIZE_MAX, 0, 0};
    /* Fewer items than min_threaded: done inline, in order, by wait. */
    struct wv__pipe_cfg cfg = {pwork, &c, 3, sizeof(size_t), 1 << 20, 64,
                               4, false};
    ASSERT_OK(wv__pipe_start(&p, &cfg));
    ASSERT(!wv__pipe_threaded(&p));
    ASSERT_NOT_NULL(p.w[0].ws); /* a codec workspace per worker */
    wv__pipe_post(&p, 3);
    ASSERT_EQ(c.done, 0);
    ASSERT_OK(wv__pipe_wait(&p, 2));
    ASSERT_EQ(c.done, 3);
    ASSERT_EQ(out[2], 6);
    wv__pipe_release(&p);

    /* Cancelled with most items still to do: returns once the items in
     * hand are finished, the others never start. */
    memset(&c, 0, sizeof c);
    c.p = &p;
    c.out = out;
    c.fail_a = c.fail_b = SIZE_MAX;
    c.sleep_us = 5000; /* 300 items: at least 0.75 s of work */
    cfg = (struct wv__pipe_cfg){pwork, &c, N, 0, 0, 0, 1, false};
    ASSERT_OK(wv__pipe_start(&p, &cfg));
    wv__pipe_post(&p, N);
    usleep(5000);
    wv__pipe_release(&p);
    size_t ran = __atomic_load_n(&c.done, __ATOMIC_RELAXED);
    ASSERT(ran < N);
    usleep(10000);
    ASSERT_EQ(__atomic_load_n(&c.done, __ATOMIC_RELAXED), ran);

    /* Every allocation failure while starting is WV_NOMEM and leaves
     * nothing behind (the sanitizer build checks the leaks). */
    int rc = WV_NOMEM;
    for (long n = 1; rc == WV_NOMEM && n < 200; n++) {
        memset(&c, 0, sizeof c);
        c.p = &p;
        c.out = out;
        c.fail_a = c.fail_b = SIZE_MAX;
        cfg = (struct wv__pipe_cfg){pwork, &c, 20, 4096, 1 << 20, 4096, 1,
                                    true};
        wv__alloc_fail_after(n);
        rc = wv__pipe_start(&p, &cfg);
        wv__alloc_fail_after(0);
        ASSERT(rc == WV_OK || rc == WV_NOMEM);
        if (rc == WV_OK) {
            wv__pipe_post(&p, 20);
            for (size_t i = 0; i < 20; i++) {
                ASSERT_OK(wv__pipe_wait(&p, i));
                wv__pipe_consumed(&p, i);
            }
        }
        wv__pipe_release(&p);
    }
    ASSERT_OK(rc);
}

/* ---- the codec workspace ------------------------------------------------ */

static size_t g_calls, g_live;

static void *count_alloc(void *o, size_t n)
{
    (void)o;
    size_t *p = malloc(n + 16);
    if (p == NULL)
        return NULL;
    p[0] = n;
    g_calls++;
    g_live += n;
    return (unsigned char *)p + 16;
}

static void *count_realloc(void *o, void *q, size_t n)
{
    (void)o;
    size_t *p = q ? (size_t *)((unsigned char *)q - 16) : NULL;
    size_t old = p ? p[0] : 0;
    size_t *np = realloc(p, n + 16);
    if (np == NULL)
        return NULL;
    np[0] = n;
    g_calls++;
    g_live = g_live - old + n;
    return (unsigned char *)np + 16;
}

static void count_free(void *o, void *q)
{
    (void)o;
    if (q == NULL)
        return;
    size_t *p = (size_t *)((unsigned char *)q - 16);
    g_live -= p[0];
    free(p);
}

TEST_IMPL(codec_ws_reused_through_allocator)
{
    enum { N = 1 << 20 };
    static const wv_allocator counting = {count_alloc, count_realloc,
                                          count_free, NULL};
    unsigned char *in = malloc(N), *in2 = malloc(N), *back = malloc(N);
    size_t cap = wv__codec_bound(N);
    unsigned char *z = malloc(cap), *z2 = malloc(cap);
    ASSERT(in && in2 && back && z && z2);
    for (size_t i = 0; i < N; i++) {
        in[i] = (unsigned char)(i / 4096 + (i % 4 == 0 ? i : 0));
        in2[i] = (unsigned char)(i % 251 < 100 ? 7 : i / 8192);
    }
    g_calls = g_live = 0;
    ASSERT_OK(wv_set_allocator(&counting));
    struct wv__codec_ws *ws = NULL;
    int rc = wv__codec_ws_new(N, &ws);
    size_t c0 = g_calls, n1 = 0, n2 = 0, n2b = 0;
    struct wv__err e = {0};
    /* The first compression makes the context and sizes its workspace,
     * through the library's allocator; the second reuses it: only the
     * byte-grouping buffer, on its first use; the third allocates
     * nothing at all. */
    int k1 = 0, k2 = 0, k2b = 0;
    int r1 = wv__codec_encode(WV__CODEC_ZSTD, 3, 1, in, N, z, cap, ws, &n1,
                              &k1, &e);
    size_t c1 = g_calls;
    int r2 = wv__codec_encode(WV__CODEC_BG_ZSTD, 3, 4, in2, N, z2, cap, ws,
                              &n2, &k2, &e);
    size_t c2 = g_calls;
    int r2b = wv__codec_encode(WV__CODEC_BG_ZSTD, 3, 4, in2, N, back, cap,
                               ws, &n2b, &k2b, &e);
    size_t c2b = g_calls;
    int d1 = wv__codec_decode(k1, 1, z, n1, back, N, ws, &e);
    bool same1 = memcmp(back, in, N) == 0;
    size_t c3a = g_calls;
    int d2 = wv__codec_decode(k2, 4, z2, n2, back, N, ws, &e);
    bool same2 = memcmp(back, in2, N) == 0;
    size_t c3 = g_calls;
    wv__codec_ws_free(ws);
    size_t live = g_live;
    wv_set_allocator(NULL);
    ASSERT_OK(rc);
    ASSERT_EQ(c0, 1); /* the workspace alone: the rest waits for its use */
    ASSERT_OK(r1);
    ASSERT_OK(r2);
    ASSERT_OK(r2b);
    ASSERT_EQ(k1, WV__CODEC_ZSTD);
    ASSERT_EQ(k2, WV__CODEC_BG_ZSTD);
    ASSERT_EQ(k2b, WV__CODEC_BG_ZSTD);
    ASSERT(n1 < N / 4 && n2 < N / 4);
    ASSERT_EQ(n2b, n2);
    ASSERT(c1 > c0);       /* the context and zstd's own memory: ours */
    ASSERT_EQ(c2, c1 + 1); /* the context reused; the grouping buffer */
    ASSERT_EQ(c2b, c2);    /* everything reused */
    ASSERT_OK(d1);
    ASSERT_OK(d2);
    ASSERT(same1 && same2);
    ASSERT(c3a > c2b);      /* the decompression context, on first use */
    ASSERT(c3a - c2b <= 3); /* and (almost) nothing else */
    ASSERT_EQ(c3, c3a);     /* then reused */
    ASSERT_EQ(live, 0); /* and zstd gave every byte back through us */

    /* Output identical to a one-shot compression's (pack ids depend on
     * stored lengths): the same frame from a fresh workspace. */
    ASSERT_OK(wv__codec_ws_new(N, &ws));
    size_t n1b = 0;
    int k1b = 0;
    ASSERT_OK(wv__codec_encode(WV__CODEC_ZSTD, 3, 1, in, N, back, cap, ws,
                               &n1b, &k1b, &e));
    ASSERT_EQ(k1b, WV__CODEC_ZSTD);
    ASSERT_EQ(n1b, n1);
    ASSERT(memcmp(back, z, n1) == 0);
    /* A chunk larger than the workspace is refused, not overrun. */
    ASSERT_EQ(wv__codec_decode(k1, 1, z, n1, back, N, NULL, &e), WV_CORRUPT);
    wv__codec_ws_free(ws);
    ASSERT_OK(wv__codec_ws_new(16, &ws));
    ASSERT_EQ(wv__codec_decode(k1, 1, z, n1, back, N, ws, &e), WV_CORRUPT);
    ASSERT_CONTAINS(e.msg, "larger than");
    /* Compressing a chunk larger than the workspace is a caller's bug:
     * refused with a message, never silently stored as is. */
    size_t nl = 1;
    int kl = -1;
    wv__clearerr(&e);
    ASSERT_EQ(wv__codec_encode(WV__CODEC_ZSTD, 3, 1, in, N, back, cap, ws,
                               &nl, &kl, &e),
              WV_MISUSE);
    ASSERT_CONTAINS(e.msg, "codec workspace");
    wv__clearerr(&e);
    ASSERT_EQ(wv__codec_encode(WV__CODEC_BG_ZSTD, 3, 4, in, N, back, cap,
                               NULL, &nl, &kl, &e),
              WV_MISUSE);
    ASSERT_CONTAINS(e.msg, "up to 0 bytes");
    /* Storing as is needs no workspace. */
    ASSERT_OK(wv__codec_encode(WV__CODEC_NONE, 3, 1, in, N, back, cap,
                               NULL, &nl, &kl, &e));
    ASSERT_EQ(kl, WV__CODEC_NONE);
    ASSERT_EQ(nl, (size_t)N);
    ASSERT(memcmp(back, in, N) == 0);
    wv__codec_ws_free(ws);
    /* Out of memory while compressing (the context on its first use, or
     * the grouping buffer): the documented fallback, stored as is. */
    for (int bg = 0; bg < 2; bg++) {
        ASSERT_OK(wv__codec_ws_new(N, &ws));
        kl = -1;
        wv__alloc_fail_after(1);
        rc = wv__codec_encode(bg ? WV__CODEC_BG_ZSTD : WV__CODEC_ZSTD, 3, 4,
                              in, N, back, cap, ws, &nl, &kl, &e);
        wv__alloc_fail_after(0);
        ASSERT_OK(rc);
        ASSERT_EQ(kl, WV__CODEC_NONE);
        ASSERT_EQ(nl, (size_t)N);
        ASSERT(memcmp(back, in, N) == 0);
        wv__codec_ws_free(ws);
    }
    free(in);
    free(in2);
    free(back);
    free(z);
    free(z2);
}
