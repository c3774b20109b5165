/*
 * t_threads.c -- readers and writers run on several threads at once
 * (issue 15: no static mutable state in parsers).
 *
 * Two threads each load a different Keras HDF5 file and a different .pth
 * file, save each set again (Keras legacy .h5, PyTorch zip) and read the
 * copies back, many times over, at the same time. Every result must equal
 * what one thread alone read before the threads started. The Keras reader
 * sorts dataset paths and the writers sort tensors by rank or by storage;
 * those sorts once kept their state in file-static variables, which a
 * second thread overwrote. Built with -fsanitize=thread (a build
 * directory configured with CMAKE_C_FLAGS=-fsanitize=thread, target
 * wvtest), the test also catches races that happen not to change a
 * result. WV_THREAD_ITERS overrides the number of rounds (default 40).
 */
#include "wvtest.h"
#include "wvsets.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    const char *keras, *pth;       /* inputs                           */
    char *out_h5, *out_pth;        /* this thread's copies             */
    const wv_model *ref_k, *ref_p; /* read by one thread alone         */
    int iters;
    int failed;                    /* round of the first failure, or 0 */
    char why[300];
};

static wv_model *load(const char *path, char *eb)
{
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    wv_model *m = NULL;
    eb[0] = '\0';
    lo.errbuf = eb;
    lo.errbuf_size = WV_ERRBUF_SIZE;
    if (wv_model_load(path, &lo, &m) != WV_OK)
        return NULL;
    return m;
}

/* Load in, compare with ref; save to out, load that back, compare by
 * name. 0 on success, else a message in j->why. */
static int round_trip(struct job *j, const char *in, const wv_model *ref,
                      const char *out)
{
    char eb[WV_ERRBUF_SIZE];
    wv_model *m = load(in, eb), *b = NULL;
    int bad = 1;
    if (m == NULL) {
        snprintf(j->why, sizeof j->why, "load %s: %s", in, eb);
        goto out;
    }
    if (!wvf_same(ref, m, 0)) {
        snprintf(j->why, sizeof j->why, "%s read differently", in);
        goto out;
    }
    if (wv_model_save(m, out, NULL) != WV_OK) {
        snprintf(j->why, sizeof j->why, "save %s: %s", out,
                 wv_model_errmsg(m));
        goto out;
    }
    if ((b = load(out, eb)) == NULL) {
        snprintf(j->why, sizeof j->why, "load %s: %s", out, eb);
        goto out;
    }
    if (!wvf_same(ref, b, WVF_BY_NAME)) {
        snprintf(j->why, sizeof j->why, "%s (from %s) read back differently",
                 out, in);
        goto out;
    }
    bad = 0;
out:
    wv_model_free(b);
    wv_model_free(m);
    return bad;
}

static void *worker(void *arg)
{
    struct job *j = arg;
    for (int i = 1; i <= j->iters && !j->failed; i++)
        if (round_trip(j, j->keras, j->ref_k, j->out_h5) != 0 ||
            round_trip(j, j->pth, j->ref_p, j->out_pth) != 0)
            j->failed = i;
    return NULL;
}

TEST_IMPL(threads_keras_pth_parallel)
{
    const char *in[4];
    wv_model *ref[4] = {NULL, NULL, NULL, NULL};
    struct job jobs[2];
    pthread_t th[2];
    char eb[WV_ERRBUF_SIZE];
    int iters = 40;
    const char *e = getenv("WV_THREAD_ITERS");
    if (e != NULL && atoi(e) > 0)
        iters = atoi(e);

    /* Two Keras files of different layouts (a legacy weights file, a
     * legacy full model with optimizer weights) and two .pth files. */
    in[0] = strdup(wvtest_input(
        wvtest_fixture("h5", "keras2-weights-dearj611/model_weights.h5")));
    in[1] = strdup(wvtest_input(
        wvtest_fixture("h5", "keras3-mnist-shreyansh/model.h5")));
    in[2] = strdup(wvtest_input(wvtest_fixture("pth", "test.pt")));
    in[3] = strdup(
        wvtest_input(wvtest_fixture("pth", "stianhanssen-mnist_cnn.pt")));
    for (int i = 0; i < 4; i++) {
        ASSERT_NOT_NULL(in[i]);
        ref[i] = load(in[i], eb);
        if (ref[i] == NULL)
            WVT_FAIL("load %s: %s", in[i], eb);
        ASSERT(wv_model_count(ref[i]) > 0);
    }
    for (int t = 0; t < 2; t++) {
        char name[32];
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].keras = in[t];
        jobs[t].pth = in[2 + t];
        jobs[t].ref_k = ref[t];
        jobs[t].ref_p = ref[2 + t];
        jobs[t].iters = iters;
        snprintf(name, sizeof name, "t%d.h5", t);
        jobs[t].out_h5 = strdup(wvtest_path(name));
        snprintf(name, sizeof name, "t%d.pth", t);
        jobs[t].out_pth = strdup(wvtest_path(name));
        ASSERT(jobs[t].out_h5 != NULL && jobs[t].out_pth != NULL);
    }
    for (int t = 0; t < 2; t++)
        ASSERT_EQ(pthread_create(&th[t], NULL, worker, &jobs[t]), 0);
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < 2; t++) {
        if (jobs[t].failed)
            WVT_FAIL("thread %d, round %d of %d: %s", t, jobs[t].failed,
                     iters, jobs[t].why);
        free(jobs[t].out_h5);
        free(jobs[t].out_pth);
    }
    for (int i = 0; i < 4; i++) {
        wv_model_free(ref[i]);
        free((void *)in[i]);
    }
}
