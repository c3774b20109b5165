/*
 * codec.c -- chunk compression (see codec.h for the on-disk ids).
 */
#include "codec.h"
#include "core.h"

#include <zstd.h>

const char *wv__codec_name(int codec)
{
    switch (codec) {
    case WV__CODEC_NONE: return "none";
    case WV__CODEC_ZSTD: return "zstd";
    case WV__CODEC_BG_ZSTD: return "bg-zstd";
    default: return "unknown";
    }
}

size_t wv__codec_bound(size_t n)
{
    size_t b = ZSTD_compressBound(n);
    return b > n ? b : n;
}

static void group(const unsigned char *in, size_t n, unsigned k,
                  unsigned char *out)
{
    size_t m = n / k;
    for (unsigned j = 0; j < k; j++) {
        unsigned char *plane = out + (size_t)j * m;
        const unsigned char *p = in + j;
        for (size_t i = 0; i < m; i++, p += k)
            plane[i] = *p;
    }
    memcpy(out + m * k, in + m * k, n - m * k); /* tail, if any */
}

static void ungroup(const unsigned char *in, size_t n, unsigned k,
                    unsigned char *out)
{
    size_t m = n / k;
    for (unsigned j = 0; j < k; j++) {
        const unsigned char *plane = in + (size_t)j * m;
        unsigned char *p = out + j;
        for (size_t i = 0; i < m; i++, p += k)
            *p = plane[i];
    }
    memcpy(out + m * k, in + m * k, n - m * k);
}

int wv__codec_encode(int codec, int level, unsigned elem, const void *in,
                     size_t n, void *out, size_t cap, void *scratch,
                     size_t *out_len)
{
    const void *src = in;
    if (codec == WV__CODEC_BG_ZSTD && elem > 1 && n >= elem) {
        group(in, n, elem, scratch);
        src = scratch;
    } else if (codec == WV__CODEC_BG_ZSTD) {
        codec = WV__CODEC_ZSTD; /* nothing to group */
    }
    if (codec != WV__CODEC_NONE) {
        size_t r = ZSTD_compress(out, cap, src, n, level);
        if (!ZSTD_isError(r) && r < n) {
            *out_len = r;
            return codec;
        }
    }
    memcpy(out, in, n);
    *out_len = n;
    return WV__CODEC_NONE;
}

int wv__codec_decode(int codec, unsigned elem, const void *in, size_t n,
                     void *out, size_t raw_len, void *scratch,
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
        unsigned long long fs = ZSTD_getFrameContentSize(in, n);
        if (fs != raw_len)
            return wv__seterr(err, WV_CORRUPT,
                              "compressed chunk declares %llu bytes, "
                              "expected %zu",
                              fs, raw_len);
        size_t r = ZSTD_decompress(bg ? scratch : out, raw_len, in, n);
        if (ZSTD_isError(r) || r != raw_len)
            return wv__seterr(err, WV_CORRUPT,
                              "compressed chunk does not decode: %s",
                              ZSTD_isError(r) ? ZSTD_getErrorName(r)
                                              : "wrong length");
        if (bg)
            ungroup(scratch, raw_len, elem, out);
        return WV_OK;
    }
    default:
        return wv__seterr(err, WV_CORRUPT, "unknown chunk codec %d", codec);
    }
}
