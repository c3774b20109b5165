/*
 * alloc.c -- the replaceable allocator, its failure countdown for tests, and
 * the numbered fault-injection sites.
 *
 * Every allocation in the library goes through wv__malloc and friends so a
 * test can make the n-th one fail and check that the error path returns
 * WV_NOMEM and leaks nothing. The countdown and the sites exist only in
 * builds with WV_FAULT_INJECTION (those that build the tests); without it
 * no allocation is counted and no site ever fails.
 */
#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void *std_alloc(void *o, size_t n)
{
    (void)o;
    return malloc(n);
}
static void *std_realloc(void *o, void *p, size_t n)
{
    (void)o;
    return realloc(p, n);
}
static void std_free(void *o, void *p)
{
    (void)o;
    free(p);
}

static wv_allocator g_alloc = {std_alloc, std_realloc, std_free, NULL};

int wv_set_allocator(const wv_allocator *a)
{
    if (a == NULL) {
        g_alloc = (wv_allocator){std_alloc, std_realloc, std_free, NULL};
        return WV_OK;
    }
    if (a->alloc == NULL || a->realloc == NULL || a->free == NULL)
        return WV_MISUSE;
    g_alloc = *a;
    return WV_OK;
}

#ifdef WV_FAULT_INJECTION
static long g_fail_after; /* 0: never fail */

void wv__alloc_fail_after(long n)
{
    __atomic_store_n(&g_fail_after, n, __ATOMIC_RELAXED);
}

/* Counted atomically: a commit allocates on several threads at once, and
 * exactly one allocation must be the n-th. */
static bool should_fail(void)
{
    long v = __atomic_load_n(&g_fail_after, __ATOMIC_RELAXED);
    while (v > 0)
        if (__atomic_compare_exchange_n(&g_fail_after, &v, v - 1, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return v == 1;
    return false;
}

/* ---- fault sites -------------------------------------------------------- */
#define WV__N_FAULTS 64
static int g_fault[WV__N_FAULTS];
static int g_fault_skip[WV__N_FAULTS]; /* hits let through first */

void wv__fault_arm_nth(int id, int err, int n)
{
    if (id > 0 && id < WV__N_FAULTS) {
        __atomic_store_n(&g_fault_skip[id], n > 1 ? n - 1 : 0,
                         __ATOMIC_RELEASE);
        __atomic_store_n(&g_fault[id], err, __ATOMIC_RELEASE);
    }
}

void wv__fault_arm(int id, int err)
{
    wv__fault_arm_nth(id, err, 1);
}

int wv__fault_sim(int id)
{
    if (id <= 0 || id >= WV__N_FAULTS ||
        __atomic_load_n(&g_fault[id], __ATOMIC_RELAXED) == 0)
        return 0;
    int k = __atomic_load_n(&g_fault_skip[id], __ATOMIC_RELAXED);
    while (k > 0)
        if (__atomic_compare_exchange_n(&g_fault_skip[id], &k, k - 1, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return 0;
    /* one thread takes it: sites are also hit from worker threads */
    return __atomic_exchange_n(&g_fault[id], 0, __ATOMIC_ACQ_REL);
}
#else
/* Built without fault injection (WV_TESTS=OFF: make install, make bench). */
static bool should_fail(void)
{
    return false;
}
#endif

void *wv__malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return g_alloc.alloc(g_alloc.opaque, n ? n : 1);
}

void *wv__calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    void *p = wv__malloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

void *wv__realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return g_alloc.realloc(g_alloc.opaque, p, n ? n : 1);
}

void wv__free(void *p)
{
    if (p == NULL)
        return;
    int saved = errno;
    g_alloc.free(g_alloc.opaque, p);
    errno = saved;
}

/* Reallocate the array *pv to c elements of elem bytes, its capacity then
 * *cap = c. */
static int set_cap(void *pv, size_t *cap, size_t c, size_t elem)
{
    void *v, *nv;
    size_t bytes;
    if (__builtin_mul_overflow(c, elem, &bytes))
        return WV_NOMEM;
    memcpy(&v, pv, sizeof v);
    if ((nv = wv__realloc(v, bytes)) == NULL)
        return WV_NOMEM;
    memcpy(pv, &nv, sizeof nv);
    *cap = c;
    return WV_OK;
}

int wv__grow(void *pv, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return WV_OK;
    size_t c = *cap ? *cap * 2 : first;
    if (c <= *cap)
        return WV_NOMEM;
    return set_cap(pv, cap, c, elem);
}

int wv__reserve(void *pv, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return WV_OK;
    size_t c = *cap ? *cap : need;
    while (c < need)
        if (__builtin_mul_overflow(c, (size_t)2, &c))
            return WV_NOMEM;
    return set_cap(pv, cap, c, elem);
}

char *wv__strndup(const char *s, size_t n)
{
    char *d = wv__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *wv__strdup(const char *s)
{
    return wv__strndup(s, strlen(s));
}

void *wv_malloc(size_t size)
{
    return wv__malloc(size);
}

void wv_free(void *ptr)
{
    wv__free(ptr);
}
