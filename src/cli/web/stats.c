/*
 * stats.c -- per-tensor statistics for the web view: min, max, mean,
 * standard deviation, fraction of zeros and a histogram, of a tensor's
 * elements or of the element-wise differences of two tensors.
 *
 * The data is read from memory (a checkout of the tensors asked for) in
 * two streaming passes: moments (Welford, merged across threads by Chan's
 * formula), then the histogram over [min, max]. Tensors of more than a
 * million elements are split over the cores (at most 8 threads). Elements
 * are read little-endian with memcpy (the data need not be aligned);
 * NaN and infinities are counted and left out of the rest.
 */
#include "web.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

bool web_dtype_numeric(wv_dtype dt)
{
    switch (dt) {
    case WV_BOOL: case WV_U8: case WV_I8: case WV_U16: case WV_I16:
    case WV_U32: case WV_I32: case WV_U64: case WV_I64: case WV_F16:
    case WV_BF16: case WV_F32: case WV_F64: case WV_F8_E4M3: case WV_F8_E5M2:
        return true;
    default:
        return false;
    }
}

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

static double elem(wv_dtype dt, const unsigned char *p, uint64_t i)
{
    switch (dt) {
    case WV_BOOL: return p[i] != 0;
    case WV_U8: return p[i];
    case WV_I8: return (int8_t)p[i];
    case WV_F8_E4M3: return f8_to_double(p[i], true);
    case WV_F8_E5M2: return f8_to_double(p[i], false);
    default: break;
    }
    size_t sz = wv_dtype_size(dt);
    unsigned char raw[8] = {0};
    memcpy(raw, p + i * sz, sz);
    uint64_t u = 0;
    for (size_t k = sz; k-- > 0;)
        u = (u << 8) | raw[k];
    switch (dt) {
    case WV_U16: case WV_U32: case WV_U64: return (double)u;
    case WV_I16: return (int16_t)u;
    case WV_I32: return (int32_t)u;
    case WV_I64: return (double)(int64_t)u;
    case WV_F16: return half_to_double((uint16_t)u);
    case WV_BF16: {
        uint32_t w = (uint32_t)u << 16;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    case WV_F32: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    case WV_F64: {
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    default: return NAN;
    }
}

struct part {
    wv_dtype dt;
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
    double v = elem(p->dt, p->a, i);
    return p->b ? elem(p->dt, p->b, i) - v : v;
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
        pt[i].dt = dt;
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
