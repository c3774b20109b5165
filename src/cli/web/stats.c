/*
 * stats.c -- per-tensor statistics for the web view: min, max, mean,
 * standard deviation, fraction of zeros and a histogram, of a tensor's
 * elements or of the element-wise differences of two tensors.
 *
 * Two passes: moments (Welford, merged across threads by Chan's formula),
 * then the histogram over [min, max] (which the first pass finds).
 * A checkpoint's tensor is streamed from the repository chunk by chunk
 * (web_stats_stream, wv_repo_visit_tensor): the library's reader threads
 * run both passes on each chunk as it is checked, in parallel, so memory
 * stays bounded by its ring of chunks; the histogram pass reads the data
 * a second time (the result is cached by the pages). The differences of
 * two tensors are computed from memory (web_stats_compute); tensors of
 * more than a million elements are split over the cores (at most 8). Elements
 * are read little-endian with memcpy (the data need not be aligned);
 * NaN and infinities are counted and left out of the rest.
 */
#include "web.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

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

/* One reader per dtype, chosen once per tensor (element i of p). The
 * byte-wise little-endian loads compile to single loads on such hosts. */
typedef double (*reader)(const unsigned char *p, uint64_t i);

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t u = 0;
    for (int k = n; k-- > 0;)
        u = (u << 8) | p[k];
    return u;
}

static double r_bool(const unsigned char *p, uint64_t i) { return p[i] != 0; }
static double r_u8(const unsigned char *p, uint64_t i) { return p[i]; }
static double r_i8(const unsigned char *p, uint64_t i) { return (int8_t)p[i]; }
static double r_u16(const unsigned char *p, uint64_t i)
{
    return (double)le(p + 2 * i, 2);
}
static double r_i16(const unsigned char *p, uint64_t i)
{
    return (int16_t)le(p + 2 * i, 2);
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
    return half_to_double((uint16_t)le(p + 2 * i, 2));
}
static double r_bf16(const unsigned char *p, uint64_t i)
{
    uint32_t w = (uint32_t)le(p + 2 * i, 2) << 16;
    float f;
    memcpy(&f, &w, 4);
    return f;
}
static double r_f32(const unsigned char *p, uint64_t i)
{
    uint32_t w = (uint32_t)le(p + 4 * i, 4);
    float f;
    memcpy(&f, &w, 4);
    return f;
}
static double r_f64(const unsigned char *p, uint64_t i)
{
    uint64_t w = le(p + 8 * i, 8);
    double d;
    memcpy(&d, &w, 8);
    return d;
}
static double r_e4m3(const unsigned char *p, uint64_t i)
{
    return f8_to_double(p[i], true);
}
static double r_e5m2(const unsigned char *p, uint64_t i)
{
    return f8_to_double(p[i], false);
}

static reader reader_of(wv_dtype dt)
{
    switch (dt) {
    case WV_BOOL: return r_bool;
    case WV_U8: return r_u8;
    case WV_I8: return r_i8;
    case WV_U16: return r_u16;
    case WV_I16: return r_i16;
    case WV_U32: return r_u32;
    case WV_I32: return r_i32;
    case WV_U64: return r_u64;
    case WV_I64: return r_i64;
    case WV_F16: return r_f16;
    case WV_BF16: return r_bf16;
    case WV_F32: return r_f32;
    case WV_F64: return r_f64;
    case WV_F8_E4M3: return r_e4m3;
    case WV_F8_E5M2: return r_e5m2;
    default: return NULL;
    }
}

struct part {
    reader get;
    const unsigned char *a, *b;
    uint64_t lo, hi;
    /* pass 1 */
    uint64_t n, nonfinite, zeros;
    double mean, m2, min, max;
    /* pass 2 */
    double hlo, hhi;
    uint64_t bins[WEB_BINS];
};

static double value(const struct part *p, uint64_t i)
{
    double v = p->get(p->a, i);
    return p->b ? p->get(p->b, i) - v : v;
}

static void *pass_moments(void *arg)
{
    struct part *p = arg;
    p->min = INFINITY;
    p->max = -INFINITY;
    for (uint64_t i = p->lo; i < p->hi; i++) {
        double v = value(p, i);
        if (!isfinite(v)) {
            p->nonfinite++;
            continue;
        }
        p->n++;
        if (v == 0)
            p->zeros++;
        if (v < p->min)
            p->min = v;
        if (v > p->max)
            p->max = v;
        double d = v - p->mean;
        p->mean += d / (double)p->n;
        p->m2 += d * (v - p->mean);
    }
    return NULL;
}

static void *pass_hist(void *arg)
{
    struct part *p = arg;
    double w = p->hhi - p->hlo;
    for (uint64_t i = p->lo; i < p->hi; i++) {
        double v = value(p, i);
        if (!isfinite(v))
            continue;
        long k = w > 0 ? (long)((v - p->hlo) / w * WEB_BINS) : 0;
        if (k < 0)
            k = 0;
        if (k >= WEB_BINS)
            k = WEB_BINS - 1;
        p->bins[k]++;
    }
    return NULL;
}

/* Run fn over the parts, on threads when there are several; a thread
 * that cannot be started runs its part here. */
static void run_parts(struct part *pt, int np, void *(*fn)(void *))
{
    pthread_t th[8];
    bool started[8] = {false};
    for (int i = 1; i < np; i++)
        started[i] = pthread_create(&th[i], NULL, fn, &pt[i]) == 0;
    fn(&pt[0]);
    for (int i = 1; i < np; i++) {
        if (started[i])
            pthread_join(th[i], NULL);
        else
            fn(&pt[i]);
    }
}

bool web_dtype_numeric(wv_dtype dt)
{
    return reader_of(dt) != NULL;
}

int web_stats_compute(wv_dtype dt, const void *a, const void *b, uint64_t n,
                      struct web_stats *out)
{
    struct part pt[8];
    memset(out, 0, sizeof *out);
    if (!web_dtype_numeric(dt))
        return WV_UNSUPPORTED;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int np = 1;
    if (n > (1u << 20))
        np = cores > 8 ? 8 : cores < 1 ? 1 : (int)cores;
    memset(pt, 0, sizeof pt);
    for (int i = 0; i < np; i++) {
        pt[i].get = reader_of(dt);
        pt[i].a = a;
        pt[i].b = b;
        pt[i].lo = n / (uint64_t)np * (uint64_t)i;
        pt[i].hi = i == np - 1 ? n : n / (uint64_t)np * (uint64_t)(i + 1);
    }
    run_parts(pt, np, pass_moments);
    double mean = 0, m2 = 0, mn = INFINITY, mx = -INFINITY;
    uint64_t cnt = 0;
    for (int i = 0; i < np; i++) {
        out->nonfinite += pt[i].nonfinite;
        out->zeros += pt[i].zeros;
        if (pt[i].n == 0)
            continue;
        double d = pt[i].mean - mean;
        uint64_t tot = cnt + pt[i].n;
        mean += d * (double)pt[i].n / (double)tot;
        m2 += pt[i].m2 + d * d * (double)cnt * (double)pt[i].n / (double)tot;
        cnt = tot;
        if (pt[i].min < mn)
            mn = pt[i].min;
        if (pt[i].max > mx)
            mx = pt[i].max;
    }
    out->n = n;
    if (cnt == 0) {
        out->min = out->max = out->mean = out->std = NAN;
        return WV_OK;
    }
    out->min = mn;
    out->max = mx;
    out->mean = mean;
    out->std = sqrt(m2 / (double)cnt);
    for (int i = 0; i < np; i++) {
        pt[i].hlo = mn;
        pt[i].hhi = mx;
    }
    run_parts(pt, np, pass_hist);
    for (int i = 0; i < np; i++)
        for (int k = 0; k < WEB_BINS; k++)
            out->bins[k] += pt[i].bins[k];
    return WV_OK;
}

/* ---- streaming from a repository ---------------------------------------- */

/* The totals of a streamed tensor, merged as the chunks come in (the
 * callbacks run on the library's reader threads, in any order). */
struct stream {
    pthread_mutex_t mu;
    wv_dtype dt;
    size_t esize;
    uint64_t n, nonfinite, zeros;
    double mean, m2, min, max;
    double hlo, hhi;
    uint64_t bins[WEB_BINS];
};

/* One chunk as a part (its elements), or false if it splits elements. */
static bool chunk_part(const struct stream *s, uint64_t off, const void *data,
                       size_t n, struct part *p)
{
    if (off % s->esize != 0 || n % s->esize != 0)
        return false;
    memset(p, 0, sizeof *p);
    p->get = reader_of(s->dt);
    p->a = data;
    p->hi = n / s->esize;
    p->hlo = s->hlo;
    p->hhi = s->hhi;
    return true;
}

static int chunk_moments(void *arg, uint64_t off, const void *data, size_t n)
{
    struct stream *s = arg;
    struct part p;
    if (!chunk_part(s, off, data, n, &p))
        return WV_UNSUPPORTED;
    pass_moments(&p);
    pthread_mutex_lock(&s->mu);
    s->nonfinite += p.nonfinite;
    s->zeros += p.zeros;
    if (p.n > 0) {
        /* Chan et al.: merge (n, mean, m2) of two disjoint parts */
        double d = p.mean - s->mean;
        uint64_t tot = s->n + p.n;
        s->mean += d * (double)p.n / (double)tot;
        s->m2 += p.m2 + d * d * (double)s->n * (double)p.n / (double)tot;
        s->n = tot;
        if (p.min < s->min)
            s->min = p.min;
        if (p.max > s->max)
            s->max = p.max;
    }
    pthread_mutex_unlock(&s->mu);
    return WV_OK;
}

static int chunk_hist(void *arg, uint64_t off, const void *data, size_t n)
{
    struct stream *s = arg;
    struct part p;
    if (!chunk_part(s, off, data, n, &p))
        return WV_UNSUPPORTED;
    pass_hist(&p);
    pthread_mutex_lock(&s->mu);
    for (int k = 0; k < WEB_BINS; k++)
        s->bins[k] += p.bins[k];
    pthread_mutex_unlock(&s->mu);
    return WV_OK;
}

int web_stats_stream(wv_repo *r, const char *id, const char *name,
                     wv_dtype dt, uint64_t nbytes, struct web_stats *out)
{
    struct stream s;
    int rc;
    memset(out, 0, sizeof *out);
    if (!web_dtype_numeric(dt) || wv_dtype_size(dt) == 0)
        return WV_UNSUPPORTED;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    s.dt = dt;
    s.esize = wv_dtype_size(dt);
    s.min = INFINITY;
    s.max = -INFINITY;
    rc = wv_repo_visit_tensor(r, id, name, 0, nbytes, chunk_moments, &s);
    if (rc != WV_OK)
        goto out;
    out->n = nbytes / s.esize;
    out->nonfinite = s.nonfinite;
    out->zeros = s.zeros;
    if (s.n == 0) {
        out->min = out->max = out->mean = out->std = NAN;
        goto out;
    }
    out->min = s.min;
    out->max = s.max;
    out->mean = s.mean;
    out->std = sqrt(s.m2 / (double)s.n);
    /* the second pass: the histogram over [min, max] */
    s.hlo = s.min;
    s.hhi = s.max;
    rc = wv_repo_visit_tensor(r, id, name, 0, nbytes, chunk_hist, &s);
    if (rc == WV_OK)
        memcpy(out->bins, s.bins, sizeof out->bins);
out:
    pthread_mutex_destroy(&s.mu);
    return rc;
}
