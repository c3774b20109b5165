/*
 * par.c -- a memcpy split over the cores for large copies. On this kind of
 * machine a large copy is bound by faulting and moving pages, which scales
 * with cores; the asynchronous commit's staging copy, the only part of it
 * that blocks the caller, uses it.
 */
#include "wv_int.h"

#include <pthread.h>

#define WV__PAR_COPY_MIN ((size_t)32 << 20)
#define WV__PAR_COPY_MAX 4

struct copy_job {
    unsigned char *dst;
    const unsigned char *src;
    size_t n;
};

static void *copy_main(void *arg)
{
    struct copy_job *j = arg;
    memcpy(j->dst, j->src, j->n);
    return NULL;
}

void wv__memcpy_par(void *dst, const void *src, size_t n)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int k = ncpu < 2 ? 1 : ncpu > WV__PAR_COPY_MAX ? WV__PAR_COPY_MAX
                                                   : (int)ncpu;
    if (n < WV__PAR_COPY_MIN || k == 1) {
        memcpy(dst, src, n);
        return;
    }
    struct copy_job jobs[WV__PAR_COPY_MAX];
    pthread_t th[WV__PAR_COPY_MAX];
    bool started[WV__PAR_COPY_MAX] = {false};
    size_t per = n / (size_t)k / 4096 * 4096;
    for (int i = 0; i < k; i++) {
        size_t off = (size_t)i * per;
        jobs[i] = (struct copy_job){(unsigned char *)dst + off,
                                    (const unsigned char *)src + off,
                                    i == k - 1 ? n - off : per};
        if (i > 0)
            started[i] = pthread_create(&th[i], NULL, copy_main,
                                        &jobs[i]) == 0;
        if (i > 0 && !started[i])
            copy_main(&jobs[i]);
    }
    copy_main(&jobs[0]);
    for (int i = 1; i < k; i++)
        if (started[i])
            pthread_join(th[i], NULL);
}
