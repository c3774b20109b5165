/*
 * t_repo_async.c -- asynchronous commits: order, copy vs take, the staging
 * bound, waiting public calls, failures, closing with commits pending.
 */
#include "repo.h"
#include "wvtest.h"

#include <errno.h>

static wv_model *make(int v, size_t n)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    float *w = wv_malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++)
        w[i] = (float)v + (float)i / 1024.0f;
    uint64_t shape[1] = {n};
    wv_model_add(m, "w", WV_F32, 1, shape, w, n * sizeof *w, WV_DATA_TAKE);
    char s[16];
    snprintf(s, sizeof s, "%d", v);
    wv_model_set_meta(m, "v", s);
    return m;
}

static int holds(wv_repo *r, const char *id, int v, size_t n)
{
    wv_model *back = NULL, *want = make(v, n);
    int ok = wv_repo_checkout(r, id, NULL, &back) == WV_OK &&
             wv_model_count(back) == 1 &&
             wv_tensor_nbytes(wv_model_tensor(back, 0)) == n * 4 &&
             memcmp(wv_tensor_data(wv_model_tensor(back, 0)),
                    wv_tensor_data(wv_model_tensor(want, 0)), n * 4) == 0;
    wv_model_free(back);
    wv_model_free(want);
    return ok;
}

static wv_repo *fresh(const char *uri)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = 16384;
    io.pack_size = 65536;
    wv_repo *r = NULL;
    if (wv_repo_init(uri, &io) != WV_OK ||
        wv_repo_open(uri, NULL, 0, &r) != WV_OK)
        return NULL;
    return r;
}

TEST_IMPL(repo_async_order_and_copy)
{
    enum { N = 8 };
    const size_t n = 50000;
    wv_repo *r = fresh("mem://async-order");
    ASSERT_NOT_NULL(r);
    wv_commit_handle *h[N];
    char id[N][WV_ID_HEX];
    wv_model *m = make(0, n);
    float *w = (float *)wv_tensor_data(wv_model_tensor(m, 0));
    for (int i = 0; i < N; i++) {
        /* The set changes after each call: a copy must have been taken. */
        for (size_t k = 0; k < n; k++)
            w[k] = (float)i + (float)k / 1024.0f;
        ASSERT_OK(wv_repo_commit_async(r, m, NULL, NULL, WV_ASYNC_COPY,
                                       &h[i]));
        int p = wv_commit_poll(h[i]);
        ASSERT(p == WV_BUSY || p == WV_OK);
    }
    for (size_t k = 0; k < n; k++)
        w[k] = -1.0f;
    for (int i = 0; i < N; i++) {
        ASSERT_OK(wv_commit_wait(h[i], id[i]));
        ASSERT_OK(wv_commit_poll(h[i]));
        ASSERT_STREQ(wv_commit_errmsg(h[i]), "");
        wv_commit_free(h[i]);
    }
    /* In order: each one's parent is the one before. */
    for (int i = 0; i < N; i++) {
        struct wv__manifest mf;
        ASSERT_OK(wv__manifest_load(r, id[i], &mf));
        ASSERT_STREQ(mf.parent, i ? id[i - 1] : "");
        wv__manifest_release(&mf);
        ASSERT(holds(r, id[i], i, n));
    }
    char head[WV_ID_HEX];
    ASSERT_OK(wv_repo_resolve(r, "latest", head));
    ASSERT_STREQ(head, id[N - 1]);
    wv_model_free(m);
    wv_repo_close(r);
}

TEST_IMPL(repo_async_take_sync_after_and_bound)
{
    const size_t n = 30000;
    wv_repo *r = fresh("mem://async-take");
    ASSERT_NOT_NULL(r);
    char a[WV_ID_HEX], b[WV_ID_HEX], c[WV_ID_HEX];
    wv_commit_handle *h1, *h2;
    /* Taken: the library frees the set. */
    ASSERT_OK(wv_repo_commit_async(r, make(1, n), "dev", NULL,
                                   WV_ASYNC_TAKE, &h1));
    /* A budget smaller than one set: the second waits for the first. */
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.staging_bytes = 1;
    co.message = "second";
    wv_model *m2 = make(2, n);
    ASSERT_OK(wv_repo_commit_async(r, m2, "dev", &co, WV_ASYNC_COPY, &h2));
    wv_model_free(m2);
    /* A synchronous commit waits for both and lands after them. */
    wv_model *m3 = make(3, n);
    ASSERT_OK(wv_repo_commit(r, m3, "dev", NULL, c));
    wv_model_free(m3);
    ASSERT_EQ(wv_commit_poll(h1), WV_OK);
    ASSERT_EQ(wv_commit_poll(h2), WV_OK);
    ASSERT_OK(wv_commit_wait(h1, a));
    ASSERT_OK(wv_commit_wait(h2, b));
    struct wv__manifest mf;
    ASSERT_OK(wv__manifest_load(r, c, &mf));
    ASSERT_STREQ(mf.parent, b);
    wv__manifest_release(&mf);
    ASSERT_OK(wv__manifest_load(r, b, &mf));
    ASSERT_STREQ(mf.parent, a);
    ASSERT_STREQ(mf.message, "second");
    wv__manifest_release(&mf);
    ASSERT(holds(r, a, 1, n) && holds(r, b, 2, n) && holds(r, c, 3, n));
    wv_commit_free(h1);
    wv_commit_free(h2);
    wv_repo_close(r);
}

TEST_IMPL(repo_async_errors_and_close)
{
    const size_t n = 20000;
    char dir[512], id[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/async", wvtest_tmpdir());
    wv_repo *r = fresh(dir);
    ASSERT_NOT_NULL(r);
    wv_commit_handle *h = NULL;
    wv_model *m = make(1, n);
    /* Misuse is reported at once; a taken set is freed even then. */
    ASSERT_EQ(wv_repo_commit_async(r, m, NULL, NULL, 0, &h), WV_MISUSE);
    ASSERT(h == NULL);
    ASSERT_EQ(wv_repo_commit_async(r, make(9, 10), NULL, NULL,
                                   WV_ASYNC_TAKE | WV_ASYNC_COPY, &h),
              WV_MISUSE);
    ASSERT_EQ(wv_repo_commit_async(r, make(9, 10), NULL, NULL,
                                   WV_ASYNC_TAKE, NULL),
              WV_MISUSE);
    /* A bad branch name comes back through the handle. */
    ASSERT_OK(wv_repo_commit_async(r, m, "bad name", NULL, WV_ASYNC_COPY,
                                   &h));
    ASSERT_EQ(wv_commit_wait(h, id), WV_MISUSE);
    ASSERT_CONTAINS(wv_commit_errmsg(h), "bad name");
    ASSERT_STREQ(id, "");
    wv_commit_free(h);
    /* A store failure in the background: reported by the handle, and
     * the next commit goes through. */
    wv__store_fail_after(6, WV_IO, ENOSPC);
    ASSERT_OK(wv_repo_commit_async(r, m, NULL, NULL, WV_ASYNC_COPY, &h));
    int rc = wv_commit_wait(h, id);
    wv__store_fail_after(0, 0, 0);
    ASSERT_EQ(rc, WV_IO);
    ASSERT_CONTAINS(wv_commit_errmsg(h), strerror(ENOSPC));
    wv_commit_free(h);
    ASSERT_OK(wv_repo_commit_async(r, m, NULL, NULL, WV_ASYNC_COPY, &h));
    /* Closing waits for it; the handle outlives the repository. */
    wv_repo_close(r);
    ASSERT_OK(wv_commit_wait(h, id));
    wv_commit_free(h);
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    ASSERT(holds(r, "latest", 1, n));
    char head[WV_ID_HEX];
    ASSERT_OK(wv_repo_resolve(r, "main", head));
    ASSERT_STREQ(head, id);
    wv_model_free(m);
    wv_repo_close(r);
}
