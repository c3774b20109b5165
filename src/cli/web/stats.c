/*
 * stats.c -- per-tensor statistics for the web view: min, max, mean,
 * standard deviation, fraction of zeros and a histogram, of a tensor's
 * elements or of the element-wise differences of two tensors.
 *
 * One pass over the data. The histogram's range [min, max] is not known
 * until the end, so the pass counts elements in a fine histogram whose
 * bins need no range (FINE = 65536 counts, 512 KiB): 8- and 16-bit
 * dtypes are keyed by their raw bits (one bin per value: exact); wider
 * ones and differences by the top 16 bits of the value as a float32
 * truncated toward zero (sign, 8 exponent bits, 7 mantissa bits), so a bin
 * holds values within 2^-7 (0.8%) of their magnitude of each other. At
 * the same time it keeps the exact count, min, max, shifted sums of
 * v - shift and (v - shift)^2 (merged by Chan's formula) and zeros; NaN
 * and infinities are counted apart and left out of the rest. The
 * WEB_BINS linear bins over [min, max] shown are derived from the fine
 * ones: a fine bin's count (its range clipped to [min, max]) goes to the
 * linear bin it falls in, or, when it straddles boundaries, is shared
 * among the bins it overlaps in proportion to the overlap. An element can
 * so be counted in a neighbouring bin only when its fine bin straddles a
 * boundary, and then within that fine bin's width of it: web_stats.res
 * is the widest such fine bin (0: the histogram is exact), and the page
 * says it.
 *
 * A checkpoint's tensor is streamed from the repository chunk by chunk
 * (web_stats_stream, wv_repo_visit_tensor): the library's reader threads
 * process each chunk as it is checked, in parallel. Each callback borrows
 * an accumulator (a fine histogram and the moments) that no other thread
 * is using, so there is one per thread that ran at once, merged at the
 * end: memory is that plus the library's ring of chunks, whatever the
 * tensor's size. The differences of two tensors are computed from memory
 * (web_stats_compute); more than a million elements are split over the
 * cores (at most 8), one accumulator each. Elements are read
 * little-endian with memcpy (the data need not be aligned).
 */
#include "web.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { FINE = 65536 };

static double half_to_double(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0)
        v = ldexp(m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(m + 1024, e - 25);
    return (h & 0x8000) ? -v : v;
}

static double f8_to_double(uint8_t x, bool e4m3)
{
    int s = x >> 7;
    double v;
    if (e4m3) {
        int e = (x >> 3) & 15, m = x & 7;
        if (e == 15 && m == 7)
            return NAN;
        v = e == 0 ? ldexp(m, -9) : ldexp(m + 8, e - 10);
    } else {
        int e = (x >> 2) & 31, m = x & 3;
        if (e == 31)
            return m ? NAN : (s ? -INFINITY : INFINITY);
        v = e == 0 ? ldexp(m, -16) : ldexp(m + 4, e - 17);
    }
    return s ? -v : v;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t u = 0;
    for (int k = n; k-- > 0;)
        u = (u << 8) | p[k];
    return u;
}

static float f32_of_bits(uint32_t w)
{
    float f;
    memcpy(&f, &w, 4);
    return f;
}

static double f64_of_bits(uint64_t w)
{
    double d;
    memcpy(&d, &w, 8);
    return d;
}

/* Element i of p as a number, one function per dtype; and the raw bits
 * of an 8- or 16-bit element (its fine-histogram key). */
typedef double (*reader)(const unsigned char *p, uint64_t i);

#define RAW8(p, i) ((p)[i])
#define RAW16(p, i) ((uint16_t)le((p) + 2 * (i), 2))

static double r_bool(const unsigned char *p, uint64_t i) { return p[i] != 0; }
static double r_u8(const unsigned char *p, uint64_t i) { return p[i]; }
static double r_i8(const unsigned char *p, uint64_t i) { return (int8_t)p[i]; }
static double r_u16(const unsigned char *p, uint64_t i)
{
    return RAW16(p, i);
}
static double r_i16(const unsigned char *p, uint64_t i)
{
    return (int16_t)RAW16(p, i);
}
static double r_u32(const unsigned char *p, uint64_t i)
{
    return (double)le(p + 4 * i, 4);
}
static double r_i32(const unsigned char *p, uint64_t i)
{
    return (int32_t)le(p + 4 * i, 4);
}
static double r_u64(const unsigned char *p, uint64_t i)
{
    return (double)le(p + 8 * i, 8);
}
static double r_i64(const unsigned char *p, uint64_t i)
{
    return (double)(int64_t)le(p + 8 * i, 8);
}
static double r_f16(const unsigned char *p, uint64_t i)
{
    return half_to_double(RAW16(p, i));
}
static double r_bf16(const unsigned char *p, uint64_t i)
{
    return f32_of_bits((uint32_t)RAW16(p, i) << 16);
}
static double r_f32(const unsigned char *p, uint64_t i)
{
    return f32_of_bits((uint32_t)le(p + 4 * i, 4));
}
static double r_f64(const unsigned char *p, uint64_t i)
{
    return f64_of_bits(le(p + 8 * i, 8));
}
static double r_e4m3(const unsigned char *p, uint64_t i)
{
    return f8_to_double(p[i], true);
}
static double r_e5m2(const unsigned char *p, uint64_t i)
{
    return f8_to_double(p[i], false);
}

/* The fine-histogram key of a wide value: the top 16 bits of v as a
 * float32 truncated toward zero (beyond float32's range: the largest
 * finite one, whose bin reaches to infinity). */
static inline uint16_t key_wide(double v)
{
    float f;
    if (v > FLT_MAX)
        f = FLT_MAX;
    else if (v < -FLT_MAX)
        f = -FLT_MAX;
    else {
        f = (float)v;
        if (fabs((double)f) > fabs(v)) /* rounded away from zero */
            f = nextafterf(f, 0.0f);
    }
    uint32_t w;
    memcpy(&w, &f, 4);
    return (uint16_t)(w >> 16);
}

/* The moments of the elements one call has seen: sums of v - shift and
 * its square (shift: the first finite element, so the sums stay small). */
struct run {
    uint64_t n, nonfinite, zeros;
    double shift, s1, s2, min, max;
};

/* Moments as merged: count, mean and sum of squared deviations. */
struct mom {
    uint64_t n, nonfinite, zeros;
    double mean, m2, min, max;
};

static void mom_init(struct mom *m)
{
    memset(m, 0, sizeof *m);
    m->min = INFINITY;
    m->max = -INFINITY;
}

/* Chan et al.: merge (n, mean, m2) of a disjoint part into m. */
static void mom_merge(struct mom *m, uint64_t n, double mean, double m2,
                      double mn, double mx)
{
    if (n == 0)
        return;
    double d = mean - m->mean;
    uint64_t tot = m->n + n;
    m->mean += d * (double)n / (double)tot;
    m->m2 += m2 + d * d * (double)m->n * (double)n / (double)tot;
    m->n = tot;
    if (mn < m->min)
        m->min = mn;
    if (mx > m->max)
        m->max = mx;
}

static void mom_add_run(struct mom *m, const struct run *r)
{
    m->nonfinite += r->nonfinite;
    m->zeros += r->zeros;
    if (r->n == 0)
        return;
    double n = (double)r->n, m2 = r->s2 - r->s1 * r->s1 / n;
    mom_merge(m, r->n, r->shift + r->s1 / n, m2 > 0 ? m2 : 0, r->min,
              r->max);
}

static void mom_add(struct mom *m, const struct mom *o)
{
    m->nonfinite += o->nonfinite;
    m->zeros += o->zeros;
    mom_merge(m, o->n, o->mean, o->m2, o->min, o->max);
}

/* One element v (its key k) into r and the fine histogram. */
#define ADD(r, fine, v, k)                                                     \
    do {                                                                       \
        if (!isfinite(v)) {                                                    \
            (r)->nonfinite++;                                                  \
            break;                                                             \
        }                                                                      \
        if ((r)->n++ == 0)                                                     \
            (r)->shift = (r)->min = (r)->max = (v);                            \
        double d_ = (v) - (r)->shift;                                          \
        (r)->s1 += d_;                                                         \
        (r)->s2 += d_ * d_;                                                    \
        (r)->zeros += (v) == 0;                                                \
        if ((v) < (r)->min)                                                    \
            (r)->min = (v);                                                    \
        if ((v) > (r)->max)                                                    \
            (r)->max = (v);                                                    \
        (fine)[k]++;                                                           \
    } while (0)

/* A kernel adds elements [lo, hi) of a (or of b - a) to r and fine. */
typedef void (*kernel)(struct run *r, uint64_t *fine, reader get,
                       const unsigned char *a, const unsigned char *b,
                       uint64_t lo, uint64_t hi);

/* 8- and 16-bit dtypes: the key is the element's bits. */
#define KERNEL_RAW(name, RAW)                                                  \
    static void name(struct run *r, uint64_t *fine, reader get,               \
                     const unsigned char *a, const unsigned char *b,          \
                     uint64_t lo, uint64_t hi)                                 \
    {                                                                          \
        (void)b;                                                               \
        for (uint64_t i = lo; i < hi; i++) {                                   \
            double v = get(a, i);                                              \
            ADD(r, fine, v, RAW(a, i));                                        \
        }                                                                      \
    }
KERNEL_RAW(k_raw8, RAW8)
KERNEL_RAW(k_raw16, RAW16)

static void k_f32(struct run *r, uint64_t *fine, reader get,
                  const unsigned char *a, const unsigned char *b, uint64_t lo,
                  uint64_t hi)
{
    (void)get;
    (void)b;
    for (uint64_t i = lo; i < hi; i++) {
        uint32_t w = (uint32_t)le(a + 4 * i, 4);
        double v = f32_of_bits(w);
        ADD(r, fine, v, w >> 16);
    }
}

static void k_wide(struct run *r, uint64_t *fine, reader get,
                   const unsigned char *a, const unsigned char *b, uint64_t lo,
                   uint64_t hi)
{
    (void)b;
    for (uint64_t i = lo; i < hi; i++) {
        double v = get(a, i);
        ADD(r, fine, v, key_wide(v));
    }
}

static void k_diff(struct run *r, uint64_t *fine, reader get,
                   const unsigned char *a, const unsigned char *b, uint64_t lo,
                   uint64_t hi)
{
    for (uint64_t i = lo; i < hi; i++) {
        double v = get(b, i) - get(a, i);
        ADD(r, fine, v, key_wide(v));
    }
}

/* How elements of a dtype are read and keyed (kernel NULL: not numeric). */
struct kind {
    reader get;
    kernel k;
    int raw; /* 1 or 2: keys are raw 8- or 16-bit elements; 0: key_wide */
};

static struct kind kind_of(wv_dtype dt)
{
    switch (dt) {
    case WV_BOOL: return (struct kind){r_bool, k_raw8, 1};
    case WV_U8: return (struct kind){r_u8, k_raw8, 1};
    case WV_I8: return (struct kind){r_i8, k_raw8, 1};
    case WV_F8_E4M3: return (struct kind){r_e4m3, k_raw8, 1};
    case WV_F8_E5M2: return (struct kind){r_e5m2, k_raw8, 1};
    case WV_U16: return (struct kind){r_u16, k_raw16, 2};
    case WV_I16: return (struct kind){r_i16, k_raw16, 2};
    case WV_F16: return (struct kind){r_f16, k_raw16, 2};
    case WV_BF16: return (struct kind){r_bf16, k_raw16, 2};
    case WV_F32: return (struct kind){r_f32, k_f32, 0};
    case WV_U32: return (struct kind){r_u32, k_wide, 0};
    case WV_I32: return (struct kind){r_i32, k_wide, 0};
    case WV_U64: return (struct kind){r_u64, k_wide, 0};
    case WV_I64: return (struct kind){r_i64, k_wide, 0};
    case WV_F64: return (struct kind){r_f64, k_wide, 0};
    default: return (struct kind){NULL, NULL, 0};
    }
}

bool web_dtype_numeric(wv_dtype dt)
{
    return kind_of(dt).k != NULL;
}

/* The values fine bin `key` holds: [*lo, *hi]. */
static void fine_range(const struct kind *kd, unsigned key, double *lo,
                       double *hi)
{
    if (kd->raw) {
        unsigned char p[2] = {(unsigned char)key, (unsigned char)(key >> 8)};
        *lo = *hi = kd->get(p, 0);
        return;
    }
    unsigned m = key & 0x7fff;
    double a = f32_of_bits((uint32_t)m << 16);
    double b = m >= 0x7f7f ? INFINITY : f32_of_bits((uint32_t)(m + 1) << 16);
    if (key & 0x8000) {
        *lo = -b;
        *hi = -a;
    } else {
        *lo = a;
        *hi = b;
    }
}

static long bin_of(double v, double lo, double w)
{
    long k = w > 0 ? (long)((v - lo) / w * WEB_BINS) : 0;
    return k < 0 ? 0 : k >= WEB_BINS ? WEB_BINS - 1 : k;
}

/* The totals of m and the linear bins derived from the fine histogram. */
static void finish(const struct kind *kd, const struct mom *m,
                   const uint64_t *fine, uint64_t n, struct web_stats *out)
{
    out->n = n;
    out->nonfinite = m->nonfinite;
    out->zeros = m->zeros;
    if (m->n == 0) {
        out->min = out->max = out->mean = out->std = NAN;
        return;
    }
    out->min = m->min;
    out->max = m->max;
    out->mean = m->mean;
    out->std = sqrt(m->m2 / (double)m->n);
    double w = m->max - m->min;
    for (unsigned key = 0; key < FINE; key++) {
        if (fine[key] == 0)
            continue;
        double a, b;
        fine_range(kd, key, &a, &b);
        a = a < m->min ? m->min : a > m->max ? m->max : a;
        b = b > m->max ? m->max : b < m->min ? m->min : b;
        long k0 = bin_of(a, m->min, w), k1 = bin_of(b, m->min, w);
        if (k0 == k1) {
            out->bins[k0] += fine[key];
            continue;
        }
        /* straddling: shared by overlap (values taken as uniform in
         * the fine bin), the rounding remainder to the midpoint's bin */
        uint64_t given = 0;
        for (long k = k0; k <= k1; k++) {
            double e0 = m->min + w * (double)k / WEB_BINS;
            double e1 = m->min + w * (double)(k + 1) / WEB_BINS;
            double ov = (b < e1 ? b : e1) - (a > e0 ? a : e0);
            uint64_t c = ov > 0 ? (uint64_t)((double)fine[key] * ov / (b - a))
                                : 0;
            if (c > fine[key] - given)
                c = fine[key] - given;
            out->bins[k] += c;
            given += c;
        }
        out->bins[bin_of(a + (b - a) / 2, m->min, w)] += fine[key] - given;
        if (b - a > out->res)
            out->res = b - a;
    }
}

/* ---- in memory: web_stats_compute --------------------------------------- */

struct part {
    const struct kind *kd;
    const unsigned char *a, *b;
    uint64_t lo, hi;
    struct run r;
    uint64_t *fine;
};

static void *run_part(void *arg)
{
    struct part *p = arg;
    p->kd->k(&p->r, p->fine, p->kd->get, p->a, p->b, p->lo, p->hi);
    return NULL;
}

int web_stats_compute(wv_dtype dt, const void *a, const void *b, uint64_t n,
                      struct web_stats *out)
{
    struct part pt[8];
    pthread_t th[8];
    bool started[8] = {false};
    struct kind kd = kind_of(dt);
    int np = 1, rc = WV_OK;
    memset(out, 0, sizeof *out);
    memset(pt, 0, sizeof pt);
    if (kd.k == NULL)
        return WV_UNSUPPORTED;
    if (b) {
        kd.k = k_diff; /* differences are keyed as wide values */
        kd.raw = 0;
    }
    if (n > (1u << 20)) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        np = cores > 8 ? 8 : cores < 1 ? 1 : (int)cores;
    }
    for (int i = 0; i < np; i++) {
        pt[i].kd = &kd;
        pt[i].a = a;
        pt[i].b = b;
        pt[i].lo = n / (uint64_t)np * (uint64_t)i;
        pt[i].hi = i == np - 1 ? n : n / (uint64_t)np * (uint64_t)(i + 1);
        if ((pt[i].fine = calloc(FINE, sizeof *pt[i].fine)) == NULL) {
            rc = WV_NOMEM;
            goto out;
        }
    }
    /* a thread that cannot be started runs its part here */
    for (int i = 1; i < np; i++)
        started[i] = pthread_create(&th[i], NULL, run_part, &pt[i]) == 0;
    run_part(&pt[0]);
    for (int i = 1; i < np; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            run_part(&pt[i]);
    }
    struct mom m;
    mom_init(&m);
    for (int i = 0; i < np; i++) {
        mom_add_run(&m, &pt[i].r);
        if (i > 0)
            for (unsigned k = 0; k < FINE; k++)
                pt[0].fine[k] += pt[i].fine[k];
    }
    finish(&kd, &m, pt[0].fine, n, out);
out:
    for (int i = 0; i < np; i++)
        free(pt[i].fine);
    return rc;
}

/* ---- streaming from a repository: web_stats_stream ----------------------- */

/* An accumulator that one callback at a time borrows. */
struct slot {
    bool busy;
    struct mom m;
    uint64_t *fine;
};

enum { MAX_SLOTS = 64 }; /* more threads at once wait for a free slot */

struct stream {
    pthread_mutex_t mu;
    pthread_cond_t freed;
    struct kind kd;
    size_t esize;
    struct slot slots[MAX_SLOTS];
    int nslots;
    uint64_t chunks, bytes;
};

/* A free slot (allocated on first need), or NULL when out of memory. */
static struct slot *slot_take(struct stream *s)
{
    struct slot *got = NULL;
    pthread_mutex_lock(&s->mu);
    while (got == NULL) {
        for (int i = 0; i < s->nslots && got == NULL; i++)
            if (!s->slots[i].busy)
                got = &s->slots[i];
        if (got == NULL && s->nslots < MAX_SLOTS) {
            struct slot *n = &s->slots[s->nslots];
            if ((n->fine = calloc(FINE, sizeof *n->fine)) == NULL)
                break;
            mom_init(&n->m);
            s->nslots++;
            got = n;
        }
        if (got == NULL)
            pthread_cond_wait(&s->freed, &s->mu);
    }
    if (got)
        got->busy = true;
    pthread_mutex_unlock(&s->mu);
    return got;
}

static int chunk_cb(void *arg, uint64_t off, const void *data, size_t n)
{
    struct stream *s = arg;
    struct run r;
    if (off % s->esize != 0 || n % s->esize != 0)
        return WV_UNSUPPORTED; /* a chunk that splits elements */
    struct slot *sl = slot_take(s);
    if (sl == NULL)
        return WV_NOMEM;
    memset(&r, 0, sizeof r);
    s->kd.k(&r, sl->fine, s->kd.get, data, NULL, 0, n / s->esize);
    mom_add_run(&sl->m, &r);
    pthread_mutex_lock(&s->mu);
    sl->busy = false;
    s->chunks++;
    s->bytes += n;
    pthread_cond_signal(&s->freed);
    pthread_mutex_unlock(&s->mu);
    return WV_OK;
}

int web_stats_stream(wv_repo *r, const char *id, const char *name,
                     wv_dtype dt, uint64_t nbytes, struct web_stats *out)
{
    struct stream *s;
    int rc;
    memset(out, 0, sizeof *out);
    if (!web_dtype_numeric(dt) || wv_dtype_size(dt) == 0)
        return WV_UNSUPPORTED;
    if ((s = calloc(1, sizeof *s)) == NULL)
        return WV_NOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->freed, NULL);
    s->kd = kind_of(dt);
    s->esize = wv_dtype_size(dt);
    rc = wv_repo_visit_tensor(r, id, name, 0, nbytes, chunk_cb, s);
    if (rc != WV_OK)
        goto out;
    struct mom m;
    mom_init(&m);
    for (int i = 0; i < s->nslots; i++) {
        mom_add(&m, &s->slots[i].m);
        if (i > 0)
            for (unsigned k = 0; k < FINE; k++)
                s->slots[0].fine[k] += s->slots[i].fine[k];
    }
    if (s->nslots > 0)
        finish(&s->kd, &m, s->slots[0].fine, nbytes / s->esize, out);
    else
        out->min = out->max = out->mean = out->std = NAN; /* no elements */
    out->chunks = s->chunks;
    out->bytes = s->bytes;
    out->workers = s->nslots;
out:
    for (int i = 0; i < s->nslots; i++)
        free(s->slots[i].fine);
    pthread_cond_destroy(&s->freed);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
}
