/*
 * dtype.c -- the element types and conversions between floating-point types.
 *
 * Conversions go through double, which holds every value of every source
 * type exactly, and then round once to the target with round-to-nearest-
 * even. Rounding once matters: F64 -> F32 -> BF16 would round twice and can
 * differ from F64 -> BF16 in the last bit. NaN stays NaN (sign and the top
 * payload bits kept, quiet bit set), infinities stay infinite, values past
 * the target's range become infinities and tiny values become subnormals or
 * signed zeros, as IEEE 754 specifies for conversions.
 */
#include "wv_int.h"

#include <string.h>

static const struct {
    const char *name;
    unsigned char size;
    unsigned char is_float;
} dtypes[WV__DTYPE_COUNT] = {
    [WV_BOOL] = {"BOOL", 1, 0},       [WV_U8] = {"U8", 1, 0},
    [WV_I8] = {"I8", 1, 0},           [WV_U16] = {"U16", 2, 0},
    [WV_I16] = {"I16", 2, 0},         [WV_U32] = {"U32", 4, 0},
    [WV_I32] = {"I32", 4, 0},         [WV_U64] = {"U64", 8, 0},
    [WV_I64] = {"I64", 8, 0},         [WV_F16] = {"F16", 2, 1},
    [WV_BF16] = {"BF16", 2, 1},       [WV_F32] = {"F32", 4, 1},
    [WV_F64] = {"F64", 8, 1},         [WV_C64] = {"C64", 8, 0},
    [WV_F8_E4M3] = {"F8_E4M3", 1, 1}, [WV_F8_E5M2] = {"F8_E5M2", 1, 1},
};

static bool valid(wv_dtype dt)
{
    return dt > WV_DTYPE_INVALID && dt < WV__DTYPE_COUNT;
}

const char *wv_dtype_name(wv_dtype dt)
{
    return valid(dt) ? dtypes[dt].name : NULL;
}

size_t wv_dtype_size(wv_dtype dt)
{
    return valid(dt) ? dtypes[dt].size : 0;
}

int wv_dtype_is_float(wv_dtype dt)
{
    return valid(dt) && dtypes[dt].is_float;
}

int wv_dtype_from_name(const char *name, wv_dtype *out)
{
    for (int i = 1; i < WV__DTYPE_COUNT; i++) {
        if (strcmp(dtypes[i].name, name) == 0) {
            *out = (wv_dtype)i;
            return WV_OK;
        }
    }
    *out = WV_DTYPE_INVALID;
    return WV_NOTFOUND;
}

wv_dtype wv__cast_target(wv_dtype from, wv_dtype cast)
{
    if (cast == WV_DTYPE_INVALID || !wv_dtype_is_float(from))
        return from;
    return cast;
}

void wv__bswap(void *p, size_t n, size_t size)
{
    unsigned char *b = p;
    if (size < 2)
        return;
    for (size_t i = 0; i < n; i++, b += size) {
        for (size_t j = 0; j < size / 2; j++) {
            unsigned char t = b[j];
            b[j] = b[size - 1 - j];
            b[size - 1 - j] = t;
        }
    }
}

/* ---- decoding to double ------------------------------------------------- */

static double ldexp_i(double m, int e)
{
    /* m * 2^e without libm: exact for the small ranges used here. */
    while (e > 0) {
        int s = e > 60 ? 60 : e;
        m *= (double)(1ull << s);
        e -= s;
    }
    while (e < 0) {
        int s = -e > 60 ? 60 : -e;
        m /= (double)(1ull << s);
        e += s;
    }
    return m;
}

static double make_nan(int sign, uint64_t payload)
{
    uint64_t b = ((uint64_t)sign << 63) | (0x7ffull << 52) | (1ull << 51) |
                 (payload & ((1ull << 51) - 1));
    double d;
    memcpy(&d, &b, 8);
    return d;
}

/* An IEEE-style binary format with `eb` exponent and `mb` fraction bits.
 * `fn` selects the E4M3FN convention: no infinities, and only the all-ones
 * pattern is NaN. */
static double decode_small(uint32_t bits, int eb, int mb, bool fn)
{
    int sign = (int)((bits >> (eb + mb)) & 1);
    uint32_t e = (bits >> mb) & ((1u << eb) - 1);
    uint32_t f = bits & ((1u << mb) - 1);
    int bias = (1 << (eb - 1)) - 1;
    double v;
    if (e == (1u << eb) - 1 && (!fn || f == (1u << mb) - 1)) {
        if (fn)
            return make_nan(sign, 0);
        if (f == 0)
            v = __builtin_inf();
        else
            return make_nan(sign, (uint64_t)f << (52 - mb));
    } else if (e == 0) {
        v = ldexp_i((double)f, 1 - bias - mb);
    } else {
        v = ldexp_i((double)((1u << mb) | f), (int)e - bias - mb);
    }
    return sign ? -v : v;
}

static double load_double(wv_dtype dt, const unsigned char *p)
{
    switch (dt) {
    case WV_F64: {
        double d;
        uint64_t b = wv__le64(p);
        memcpy(&d, &b, 8);
        return d;
    }
    case WV_F32: {
        float f;
        uint32_t b = wv__le32(p);
        memcpy(&f, &b, 4);
        return (double)f;
    }
    case WV_BF16: {
        float f;
        uint32_t b = (uint32_t)wv__le16(p) << 16;
        memcpy(&f, &b, 4);
        return (double)f;
    }
    case WV_F16:
        return decode_small(wv__le16(p), 5, 10, false);
    case WV_F8_E5M2:
        return decode_small(p[0], 5, 2, false);
    case WV_F8_E4M3:
        return decode_small(p[0], 4, 3, true);
    default:
        return 0.0;
    }
}

/* ---- encoding from double ----------------------------------------------- */

/* Round d to the IEEE binary format with eb exponent and mb fraction bits
 * (mb <= 23), round-to-nearest-even. */
static uint32_t encode_small(double d, int eb, int mb)
{
    uint64_t b;
    memcpy(&b, &d, 8);
    uint32_t sign = (uint32_t)(b >> 63) << (eb + mb);
    int e = (int)((b >> 52) & 0x7ff);
    uint64_t frac = b & ((1ull << 52) - 1);
    uint32_t emax = (1u << eb) - 1;
    if (e == 0x7ff) {
        if (frac == 0)
            return sign | (emax << mb);
        return sign | (emax << mb) | (1u << (mb - 1)) |
               (uint32_t)(frac >> (52 - mb));
    }
    if (e == 0) /* zero or a double subnormal: far below any target's range */
        return sign;
    int bias = (1 << (eb - 1)) - 1;
    int te = e - 1023 + bias; /* target biased exponent */
    uint64_t m = (1ull << 52) | frac;
    int shift = 52 - mb;
    if (te < 1) {
        shift += 1 - te;
        te = 0;
    }
    if (shift > 60)
        return sign; /* rounds to zero */
    uint64_t r = m >> shift;
    uint64_t rem = m & ((1ull << shift) - 1);
    uint64_t half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (r & 1)))
        r++;
    uint32_t out;
    if (te == 0) {
        /* Subnormal; a carry into bit mb correctly yields the smallest
         * normal. */
        out = (uint32_t)r;
    } else {
        if (r >> (mb + 1)) { /* mantissa overflowed: next binade */
            r >>= 1;
            te++;
        }
        if ((uint32_t)te >= emax)
            return sign | (emax << mb); /* overflow: infinity */
        out = ((uint32_t)te << mb) | (uint32_t)(r & ((1ull << mb) - 1));
    }
    return sign | out;
}

static void store_double(wv_dtype dt, double d, unsigned char *p)
{
    switch (dt) {
    case WV_F64: {
        uint64_t b;
        memcpy(&b, &d, 8);
        wv__put64(p, b);
        break;
    }
    case WV_F32: {
        float f = (float)d; /* the C conversion rounds to nearest even */
        uint32_t b;
        memcpy(&b, &f, 4);
        wv__put32(p, b);
        break;
    }
    case WV_BF16:
        wv__put16(p, (uint16_t)encode_small(d, 8, 7));
        break;
    case WV_F16:
        wv__put16(p, (uint16_t)encode_small(d, 5, 10));
        break;
    default:
        break;
    }
}

void wv__cast(wv_dtype from, const void *src, wv_dtype to, void *dst,
              size_t n)
{
    const unsigned char *s = src;
    unsigned char *d = dst;
    size_t is = wv_dtype_size(from), os = wv_dtype_size(to);
    if (from == WV_F32 && to == WV_BF16) {
        /* Fast path: float -> bfloat16 is a 16-bit shift with rounding. */
        for (size_t i = 0; i < n; i++, s += 4, d += 2) {
            uint32_t b = wv__le32(s);
            uint16_t h;
            if ((b & 0x7fffffffu) > 0x7f800000u)
                h = (uint16_t)((b >> 16) | 0x40);
            else
                h = (uint16_t)((b + 0x7fffu + ((b >> 16) & 1)) >> 16);
            wv__put16(d, h);
        }
        return;
    }
    for (size_t i = 0; i < n; i++, s += is, d += os)
        store_double(to, load_double(from, s), d);
}
