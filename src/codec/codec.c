/*
 * codec.c -- chunk compression (see codec.h for the on-disk ids) and the
 * per-thread codec workspace that carries the reused zstd contexts. The
 * contexts and the byte-grouping buffer are made on first use: a commit
 * only compresses, a checkout only decompresses, and a repository that
 * stores chunks uncompressed needs neither.
 */
#include "codec.h"
#include "core.h"

/* ZSTD_customMem and the _advanced constructors: in the experimental part
 * of zstd.h, exported by every libzstd since 1.0 and stable in practice. */
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <math.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

struct wv__codec_ws {
    ZSTD_CCtx *cctx;    /* NULL until the first compression */
    ZSTD_DCtx *dctx;    /* NULL until the first decompression */
    unsigned char *buf; /* byte-grouping: cap bytes, NULL until used */
    unsigned char *xbuf; /* delta: the XOR, cap bytes, NULL until used */
    size_t cap;         /* largest chunk the workspace takes */
    bool checksum;      /* frames carry zstd's content checksum */
    bool skip_sum;      /* decoding ignores it (checked otherwise) */
};

static void *zalloc(void *opaque, size_t n)
{
    (void)opaque;
    return wv__malloc(n);
}

static void zfree(void *opaque, void *p)
{
    (void)opaque;
    wv__free(p);
}

static const ZSTD_customMem zmem = {zalloc, zfree, NULL};

int wv__codec_ws_new(size_t n, struct wv__codec_ws **out)
{
    struct wv__codec_ws *ws = wv__calloc(1, sizeof *ws);
    *out = NULL;
    if (ws == NULL)
        return WV_NOMEM;
    ws->cap = n;
    *out = ws;
    return WV_OK;
}

int wv__codec_ws_reserve(struct wv__codec_ws *ws, size_t n)
{
    if (n <= ws->cap)
        return WV_OK;
    if (ws->buf != NULL) { /* grown now, as it was made: before any use */
        unsigned char *b = wv__realloc(ws->buf, n);
        if (b == NULL)
            return WV_NOMEM;
        ws->buf = b;
    }
    if (ws->xbuf != NULL) {
        unsigned char *b = wv__realloc(ws->xbuf, n);
        if (b == NULL)
            return WV_NOMEM;
        ws->xbuf = b;
    }
    ws->cap = n;
    return WV_OK;
}

/* The byte-grouping buffer (cap bytes), made on first use. */
static unsigned char *ws_buf(struct wv__codec_ws *ws)
{
    if (ws->buf == NULL)
        ws->buf = wv__malloc(ws->cap ? ws->cap : 1);
    return ws->buf;
}

/* The delta's XOR buffer (cap bytes), made on first use. */
static unsigned char *ws_xbuf(struct wv__codec_ws *ws)
{
    if (ws->xbuf == NULL)
        ws->xbuf = wv__malloc(ws->cap ? ws->cap : 1);
    return ws->xbuf;
}

size_t wv__codec_ws_cap(const struct wv__codec_ws *ws)
{
    return ws ? ws->cap : 0;
}

void wv__codec_ws_checksum(struct wv__codec_ws *ws, bool on)
{
    if (ws != NULL)
        ws->checksum = on;
}

void wv__codec_ws_check_sum(struct wv__codec_ws *ws, bool on)
{
    if (ws != NULL)
        ws->skip_sum = !on;
}

/* One zstd frame of src (n bytes) at level into out, from the reused
 * context: the frame ZSTD_compress makes, with the content checksum when
 * ws->checksum. A zstd error is returned as ZSTD_compress* returns it. */
static size_t zframe(struct wv__codec_ws *ws, void *out, size_t cap,
                     const void *src, size_t n, int level)
{
    if (!ws->checksum)
        return ZSTD_compressCCtx(ws->cctx, out, cap, src, n, level);
    size_t r = ZSTD_CCtx_reset(ws->cctx, ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(ws->cctx, ZSTD_c_compressionLevel, level);
    if (!ZSTD_isError(r))
        r = ZSTD_CCtx_setParameter(ws->cctx, ZSTD_c_checksumFlag, 1);
    if (!ZSTD_isError(r))
        r = ZSTD_compress2(ws->cctx, out, cap, src, n);
    return r;
}

bool wv__codec_frame_summed(const void *in, size_t n)
{
    ZSTD_frameHeader h;
    return ZSTD_getFrameHeader(&h, in, n) == 0 &&
           h.frameType == ZSTD_frame && h.checksumFlag;
}

void wv__codec_ws_free(struct wv__codec_ws *ws)
{
    if (ws == NULL)
        return;
    ZSTD_freeCCtx(ws->cctx);
    ZSTD_freeDCtx(ws->dctx);
    wv__free(ws->buf);
    wv__free(ws->xbuf);
    wv__free(ws);
}

const char *wv__codec_name(int codec)
{
    switch (codec) {
    case WV__CODEC_NONE: return "none";
    case WV__CODEC_ZSTD: return "zstd";
    case WV__CODEC_BG_ZSTD: return "bg-zstd";
    case WV__CODEC_DELTA: return "xor-bg-zstd";
    default: return "unknown";
    }
}

/* Order-0 entropy, in bits, of the byte planes counted in h (k planes
 * of 256 counts, each summing to m). */
static double planes_bits(const uint32_t (*h)[256], unsigned k, size_t m)
{
    double bits = 0;
    for (unsigned b = 0; b < k; b++) {
        double s = 0;
        for (int v = 0; v < 256; v++)
            if (h[b][v] != 0)
                s += (double)h[b][v] * log2((double)h[b][v]);
        bits += (double)m * log2((double)m) - s;
    }
    return bits;
}

/* The estimate's counting: base byte b of element i at q + i * qe +
 * b * qp (a plaintext base: qe = k, qp = 1; a grouped one: qe = 1, qp =
 * the distance between its planes). */
static double estimate(unsigned elem, const unsigned char *p,
                       const unsigned char *q, size_t qe, size_t qp,
                       size_t n)
{
    uint32_t h[8][256];
    unsigned k = elem >= 1 && elem <= 8 ? elem : 1;
    size_t m = n / k;
    if (m == 0 || m > UINT32_MAX)
        return (double)n * 8;
    memset(h, 0, sizeof h[0] * k);
    if (q == NULL) {
        for (size_t i = 0; i < m; i++, p += k)
            for (unsigned b = 0; b < k; b++)
                h[b][p[b]]++;
    } else {
        for (size_t i = 0; i < m; i++, p += k, q += qe)
            for (unsigned b = 0; b < k; b++)
                h[b][p[b] ^ q[b * qp]]++;
    }
    return planes_bits((const uint32_t(*)[256])h, k, m) +
           (double)(n - m * k) * 8;
}

double wv__codec_estimate(unsigned elem, const void *in, const void *base,
                          size_t n)
{
    unsigned k = elem >= 1 && elem <= 8 ? elem : 1;
    return estimate(elem, in, base, k, 1, n);
}

double wv__codec_estimate_grouped(unsigned elem, const void *in,
                                  const void *gbase, size_t plane, size_t n)
{
    return estimate(elem, in, gbase, 1, plane, n);
}

size_t wv__codec_bound(size_t n)
{
    size_t b = ZSTD_compressBound(n);
    return b > n ? b : n;
}

/* Split elements of 2 and 4 bytes into planes in one pass over the
 * input, 16 elements at a time with SSE2 where there is SSE2: the low
 * and high byte of each 16-bit lane, packed (a pass per plane with a
 * load every k bytes took a fifth of a commit's CPU). */
#ifdef __SSE2__
static inline void split16(__m128i a, __m128i b, __m128i *lo, __m128i *hi)
{
    const __m128i m = _mm_set1_epi16(0x00ff);
    *lo = _mm_packus_epi16(_mm_and_si128(a, m), _mm_and_si128(b, m));
    *hi = _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8));
}
#endif

/* 16 bytes of in (XOR x's when x is not NULL: the delta codec groups
 * the XOR in the same pass). */
#ifdef __SSE2__
static inline __m128i load_x(const unsigned char *in, const unsigned char *x,
                             size_t off)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + off));
    if (x != NULL)
        v = _mm_xor_si128(
            v, _mm_loadu_si128((const __m128i *)(const void *)(x + off)));
    return v;
}
#endif

static inline unsigned char byte_x(const unsigned char *in,
                                   const unsigned char *x, size_t off)
{
    return x != NULL ? (unsigned char)(in[off] ^ x[off]) : in[off];
}

/* XOR of 16 bytes with gx's at off, when gx is not NULL: a base
 * already grouped (the delta codec against a base decoded without
 * undoing its grouping). */
#ifdef __SSE2__
static inline __m128i xor_g(__m128i v, const unsigned char *gx, size_t off)
{
    return gx == NULL ? v
                      : _mm_xor_si128(v, _mm_loadu_si128(
                                             (const __m128i *)(const void *)(
                                                 gx + off)));
}
#endif

static inline unsigned char byte_g(unsigned char v, const unsigned char *gx,
                                   size_t off)
{
    return gx != NULL ? (unsigned char)(v ^ gx[off]) : v;
}

static void group2(const unsigned char *in, const unsigned char *x,
                   const unsigned char *gx, size_t m, unsigned char *out)
{
    unsigned char *p0 = out, *p1 = out + m;
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 16 <= m; i += 16) {
        __m128i lo, hi;
        split16(load_x(in, x, 2 * i), load_x(in, x, 2 * i + 16), &lo, &hi);
        _mm_storeu_si128((__m128i *)(void *)(p0 + i), xor_g(lo, gx, i));
        _mm_storeu_si128((__m128i *)(void *)(p1 + i), xor_g(hi, gx, m + i));
    }
#endif
    for (; i < m; i++) {
        p0[i] = byte_g(byte_x(in, x, 2 * i), gx, i);
        p1[i] = byte_g(byte_x(in, x, 2 * i + 1), gx, m + i);
    }
}

static void group4(const unsigned char *in, const unsigned char *x,
                   const unsigned char *gx, size_t m, unsigned char *out)
{
    unsigned char *p0 = out, *p1 = out + m, *p2 = out + 2 * m,
                  *p3 = out + 3 * m;
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 16 <= m; i += 16) {
        size_t o = 4 * i;
        /* bytes 0,2 and 1,3 of each element, 8 elements a register */
        __m128i e0, o0, e1, o1, b0, b1, b2, b3;
        split16(load_x(in, x, o), load_x(in, x, o + 16), &e0, &o0);
        split16(load_x(in, x, o + 32), load_x(in, x, o + 48), &e1, &o1);
        split16(e0, e1, &b0, &b2);
        split16(o0, o1, &b1, &b3);
        _mm_storeu_si128((__m128i *)(void *)(p0 + i), xor_g(b0, gx, i));
        _mm_storeu_si128((__m128i *)(void *)(p1 + i), xor_g(b1, gx, m + i));
        _mm_storeu_si128((__m128i *)(void *)(p2 + i),
                         xor_g(b2, gx, 2 * m + i));
        _mm_storeu_si128((__m128i *)(void *)(p3 + i),
                         xor_g(b3, gx, 3 * m + i));
    }
#endif
    for (; i < m; i++) {
        p0[i] = byte_g(byte_x(in, x, 4 * i), gx, i);
        p1[i] = byte_g(byte_x(in, x, 4 * i + 1), gx, m + i);
        p2[i] = byte_g(byte_x(in, x, 4 * i + 2), gx, 2 * m + i);
        p3[i] = byte_g(byte_x(in, x, 4 * i + 3), gx, 3 * m + i);
    }
}

static void group(const unsigned char *in, size_t n, unsigned k,
                  unsigned char *out)
{
    size_t m = n / k;
    if (k == 2 || k == 4) {
        (k == 2 ? group2 : group4)(in, NULL, NULL, m, out);
        memcpy(out + m * k, in + m * k, n - m * k);
        return;
    }
    for (unsigned j = 0; j < k; j++) {
        unsigned char *plane = out + (size_t)j * m;
        const unsigned char *p = in + j;
        for (size_t i = 0; i < m; i++, p += k)
            plane[i] = *p;
    }
    memcpy(out + m * k, in + m * k, n - m * k); /* tail, if any */
}

/* Interleave planes of 2 and 4 bytes in one pass of whole elements with
 * sequential stores, 16 elements at a time with SSE2 where there is SSE2
 * (a byte store every k bytes, k passes over the output, was a fifth of
 * a checkout's CPU). */
static void ungroup2(const unsigned char *in, size_t m, unsigned char *out)
{
    const unsigned char *p0 = in, *p1 = in + m;
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 16 <= m; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p0 + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p1 + i));
        __m128i *o = (__m128i *)(void *)(out + 2 * i);
        _mm_storeu_si128(o, _mm_unpacklo_epi8(a, b));
        _mm_storeu_si128(o + 1, _mm_unpackhi_epi8(a, b));
    }
#endif
    for (; i < m; i++) {
        out[2 * i] = p0[i];
        out[2 * i + 1] = p1[i];
    }
}

static void ungroup4(const unsigned char *in, size_t m, unsigned char *out)
{
    const unsigned char *p0 = in, *p1 = in + m, *p2 = in + 2 * m,
                        *p3 = in + 3 * m;
    size_t i = 0;
#ifdef __SSE2__
    for (; i + 16 <= m; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p0 + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p1 + i));
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(p2 + i));
        __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(p3 + i));
        __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
        __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
        __m128i *o = (__m128i *)(void *)(out + 4 * i);
        _mm_storeu_si128(o, _mm_unpacklo_epi16(ab0, cd0));
        _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab0, cd0));
        _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab1, cd1));
        _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab1, cd1));
    }
#endif
    for (; i < m; i++) {
        out[4 * i] = p0[i];
        out[4 * i + 1] = p1[i];
        out[4 * i + 2] = p2[i];
        out[4 * i + 3] = p3[i];
    }
}

static void ungroup(const unsigned char *in, size_t n, unsigned k,
                    unsigned char *out)
{
    size_t m = n / k;
    if (k == 2 || k == 4) {
        (k == 2 ? ungroup2 : ungroup4)(in, m, out);
        memcpy(out + m * k, in + m * k, n - m * k);
        return;
    }
    for (unsigned j = 0; j < k; j++) {
        const unsigned char *plane = in + (size_t)j * m;
        unsigned char *p = out + j;
        for (size_t i = 0; i < m; i++, p += k)
            *p = plane[i];
    }
    memcpy(out + m * k, in + m * k, n - m * k);
}

int wv__codec_encode(int codec, int level, unsigned elem, const void *in,
                     size_t n, void *out, size_t cap,
                     struct wv__codec_ws *ws, size_t *out_len, int *used,
                     struct wv__err *err)
{
    const void *src = in;
    *used = WV__CODEC_NONE;
    *out_len = 0;
    if (codec != WV__CODEC_NONE && (ws == NULL || n > ws->cap))
        return wv__seterr(err, WV_MISUSE,
                          "chunk of %zu bytes given to a codec workspace "
                          "for chunks of up to %zu bytes",
                          n, wv__codec_ws_cap(ws));
    if (codec == WV__CODEC_BG_ZSTD && elem > 1 && n >= elem) {
        unsigned char *g = ws_buf(ws);
        if (g != NULL) {
            group(in, n, elem, g);
            src = g;
        } else {
            codec = WV__CODEC_NONE; /* out of memory: stored as is */
        }
    } else if (codec == WV__CODEC_BG_ZSTD) {
        codec = WV__CODEC_ZSTD; /* nothing to group */
    }
    if (codec != WV__CODEC_NONE && ws->cctx == NULL)
        ws->cctx = ZSTD_createCCtx_advanced(zmem);
    if (codec != WV__CODEC_NONE && ws->cctx != NULL) {
        /* The same frame ZSTD_compress makes, from the reused context.
         * A failure (zstd out of memory) or no gain: stored as is. */
        size_t r = zframe(ws, out, cap, src, n, level);
        if (!ZSTD_isError(r) && r < n) {
            *out_len = r;
            *used = codec;
            return WV_OK;
        }
    }
    memcpy(out, in, n);
    *out_len = n;
    return WV_OK;
}

int wv__codec_decode(int codec, unsigned elem, const void *in, size_t n,
                     void *out, size_t raw_len, struct wv__codec_ws *ws,
                     struct wv__err *err)
{
    switch (codec) {
    case WV__CODEC_NONE:
        if (n != raw_len)
            return wv__seterr(err, WV_CORRUPT,
                              "stored chunk has %zu bytes, expected %zu", n,
                              raw_len);
        memcpy(out, in, n);
        return WV_OK;
    case WV__CODEC_ZSTD:
    case WV__CODEC_BG_ZSTD: {
        bool bg = codec == WV__CODEC_BG_ZSTD && elem > 1 && raw_len >= elem;
        /* grouped: decompressed into the workspace (a workspace too small
         * is the frame's error, which wv__codec_unzstd names) */
        unsigned char *dst = out;
        if (bg && ws != NULL && raw_len <= ws->cap &&
            (dst = ws_buf(ws)) == NULL)
            return wv__seterr(err, WV_NOMEM, "out of memory");
        int rc = wv__codec_unzstd(in, n, dst, raw_len, ws, err);
        if (rc == WV_OK && bg)
            ungroup(dst, raw_len, elem, out);
        return rc;
    }
    default:
        return wv__seterr(err, WV_CORRUPT, "unknown chunk codec %d", codec);
    }
}

/* ---- the delta codec ---------------------------------------------------- */

/* out = a XOR b, n bytes, a machine word at a time. */
static void xor_bytes(unsigned char *out, const unsigned char *a,
                      const unsigned char *b, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        x ^= y;
        memcpy(out + i, &x, 8);
    }
    for (; i < n; i++)
        out[i] = a[i] ^ b[i];
}

/* The delta codec's encoder against a base in plaintext, or already
 * byte-grouped (grouped: as wv__codec_unzstd leaves a whole chunk's frame
 * of the same elem; grouping is a permutation, so grouping the XOR is the
 * XOR of the groupings). */
static int encode_delta(int level, unsigned elem, const void *in,
                        const void *base, bool grouped, size_t n, void *out,
                        size_t cap, struct wv__codec_ws *ws, size_t *out_len,
                        int *used, struct wv__err *err)
{
    int rc = WV_OK;
    *used = WV__CODEC_NONE;
    *out_len = 0;
    WV_CHECK(ws != NULL && n <= ws->cap, WV_MISUSE,
             "chunk of %zu bytes given to a codec workspace for chunks of "
             "up to %zu bytes",
             n, wv__codec_ws_cap(ws));
    bool bg = elem > 1 && n >= elem;
    unsigned char *x = ws_xbuf(ws), *g = bg ? ws_buf(ws) : x;
    if (ws->cctx == NULL)
        ws->cctx = ZSTD_createCCtx_advanced(zmem);
    if (x == NULL || g == NULL || ws->cctx == NULL)
        goto out; /* out of memory: the caller stores it without delta */
    if (bg && (elem == 2 || elem == 4)) { /* XOR and group in one pass */
        size_t m = n / elem;
        const unsigned char *b = base;
        (elem == 2 ? group2 : group4)(in, grouped ? NULL : b,
                                      grouped ? b : NULL, m, g);
        xor_bytes(g + m * elem, (const unsigned char *)in + m * elem,
                  b + m * elem, n - m * elem);
    } else if (bg && grouped) {
        group(in, n, elem, g);
        xor_bytes(g, g, base, n);
    } else {
        xor_bytes(x, in, base, n);
        if (bg)
            group(x, n, elem, g);
    }
    size_t r = zframe(ws, out, cap, g, n, level);
    if (!ZSTD_isError(r) && r < n) {
        *out_len = r;
        *used = WV__CODEC_DELTA;
    }
out:
    return rc;
}

int wv__codec_encode_delta(int level, unsigned elem, const void *in,
                           const void *base, size_t n, void *out, size_t cap,
                           struct wv__codec_ws *ws, size_t *out_len,
                           int *used, struct wv__err *err)
{
    return encode_delta(level, elem, in, base, false, n, out, cap, ws,
                        out_len, used, err);
}

int wv__codec_encode_delta_grouped(int level, unsigned elem, const void *in,
                                   const void *gbase, size_t n, void *out,
                                   size_t cap, struct wv__codec_ws *ws,
                                   size_t *out_len, int *used,
                                   struct wv__err *err)
{
    return encode_delta(level, elem, in, gbase, true, n, out, cap, ws,
                        out_len, used, err);
}

int wv__codec_unzstd(const void *in, size_t n, void *out, size_t raw_len,
                     struct wv__codec_ws *ws, struct wv__err *err)
{
    int rc = WV_OK;
    unsigned long long fs = ZSTD_getFrameContentSize(in, n);
    WV_CHECK(fs == raw_len, WV_CORRUPT,
             "compressed chunk declares %llu bytes, expected %zu", fs,
             raw_len);
    WV_CHECK(ws != NULL && raw_len <= ws->cap, WV_CORRUPT,
             "compressed chunk of %zu bytes is larger than the chunks "
             "expected",
             raw_len);
    if (ws->dctx == NULL)
        ws->dctx = ZSTD_createDCtx_advanced(zmem);
    WV_CHECK(ws->dctx != NULL, WV_NOMEM, "out of memory");
    size_t r = ZSTD_DCtx_setParameter(ws->dctx, ZSTD_d_forceIgnoreChecksum,
                                      ws->skip_sum ? ZSTD_d_ignoreChecksum
                                                   : ZSTD_d_validateChecksum);
    if (!ZSTD_isError(r))
        r = ZSTD_decompressDCtx(ws->dctx, out, raw_len, in, n);
    WV_CHECK(!ZSTD_isError(r) && r == raw_len, WV_CORRUPT,
             "compressed chunk does not decode: %s",
             ZSTD_isError(r) ? ZSTD_getErrorName(r) : "wrong length");
out:
    return rc;
}

void wv__codec_group(const void *in, size_t n, unsigned k, void *out)
{
    group(in, n, k, out);
}

void wv__codec_ungroup(const void *in, size_t n, unsigned k, void *out)
{
    ungroup(in, n, k, out);
}

void wv__codec_xor(void *out, const void *a, const void *b, size_t n)
{
    xor_bytes(out, a, b, n);
}

int wv__codec_decode_delta(unsigned elem, const void *in, size_t n,
                           const void *base, void *out, size_t raw_len,
                           struct wv__codec_ws *ws, struct wv__err *err)
{
    int rc = WV_OK;
    bool bg = elem > 1 && raw_len >= elem;
    unsigned char *dst = out; /* grouped: the workspace (as above) */
    if (bg && ws != NULL && raw_len <= ws->cap)
        WV_CHECK((dst = ws_buf(ws)) != NULL, WV_NOMEM, "out of memory");
    WV_TRY(wv__codec_unzstd(in, n, dst, raw_len, ws, err));
    if (bg)
        ungroup(dst, raw_len, elem, out);
    xor_bytes(out, out, base, raw_len);
out:
    return rc;
}
