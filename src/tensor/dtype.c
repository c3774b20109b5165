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
 *
 * Block-quantised ggml types (Q4_0, Q8_0, ...) have no per-element size:
 * wv_dtype_size() is 0 for them and wv_dtype_block() gives elements and
 * bytes per block. Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 dequantise the way
 * ggml's dequantize_row_* do, in float: every block starts with an f16
 * scale d (and, for the _1 types, an f16 offset m); element = q * d (+ m).
 *   Q8_0  d, qs[32] (int8)                      q = qs[j]
 *   Q4_0  d, qs[16]: element j < 16 is the low nibble of qs[j], element
 *         j + 16 the high nibble                q = nibble - 8
 *   Q4_1  d, m, qs[16] as Q4_0                  q = nibble
 *   Q5_0  d, qh (u32 LE), qs[16]: bit 4 of element j is bit j of qh
 *                                               q = 5-bit value - 16
 *   Q5_1  d, m, qh, qs[16] as Q5_0              q = 5-bit value
 * The product q * d is exact in float (at most 5 + 11 significant bits),
 * so only "+ m" rounds, as in ggml, with or without FMA contraction.
 *
 * The K-quants hold 256 elements in 8 or 16 sub-blocks, each with its own
 * small integer scale (and min) multiplied by the block's f16 d (and
 * dmin), as ggml's dequantize_row_q*_K do, in float and in their order:
 *   Q2_K  scales[16] (low nibble scale, high nibble min), qs[64], d, dmin
 *         element = d*sc * q2 - dmin*m
 *   Q3_K  hmask[32], qs[64], scales[12] (16 6-bit values), d
 *         element = d*(sc - 32) * (q2 - (high bit clear ? 4 : 0))
 *   Q4_K  d, dmin, scales[12] (8 6-bit scales and mins), qs[128]
 *         element = d*sc * q4 - dmin*m
 *   Q5_K  d, dmin, scales[12], qh[32], qs[128]   as Q4_K with q5
 *   Q6_K  ql[128], qh[64], scales[16] (int8), d
 *         element = d * sc * (q6 - 32)
 *   Q8_K  d (f32), qs[256] (int8), bsums[16]     element = d * q
 * Every product but Q6_K's and Q8_K's last is exact in float and the
 * subtraction rounds once, so FMA contraction cannot change a result;
 * those two are single products, rounded once in float as in ggml.
 * The two 4-bit non-linear types map each nibble through ggml's table
 * kvalues_iq4nl (16 int8 values), low nibbles first as in Q4_0:
 *   IQ4_NL  d, qs[16] (32 elements)              element = d * kv[q]
 *   IQ4_XS  d, scales_h (u16), scales_l[4], qs[128]: sub-block ib's
 *           6-bit scale = nibble ib of scales_l | 2 bits of scales_h
 *           << 4                                 element = d*(ls-32)*kv[q]
 * (both exact in float).
 *   MXFP4   e (E8M0 exponent byte), qs[16] (32 elements): element =
 *           kv_mxfp4[q] (E2M1 values doubled) * 2^(e - 128) (ggml's
 *           e8m0_to_fp32_half; e < 2 gives the subnormals 2^-128, 2^-127)
 *           exact in float but past the float range (inf) for e = 255.
 */
#include "core.h"
#include "tensor.h"

#include <string.h>

static const struct {
    const char *name;
    unsigned char size;
    unsigned char is_float;
    unsigned short blk_elems; /* 0 for plain dtypes                     */
    unsigned short blk_bytes;
} dtypes[WV__DTYPE_COUNT] = {
    [WV_BOOL] = {"BOOL", 1, 0, 0, 0},
    [WV_U8] = {"U8", 1, 0, 0, 0},
    [WV_I8] = {"I8", 1, 0, 0, 0},
    [WV_U16] = {"U16", 2, 0, 0, 0},
    [WV_I16] = {"I16", 2, 0, 0, 0},
    [WV_U32] = {"U32", 4, 0, 0, 0},
    [WV_I32] = {"I32", 4, 0, 0, 0},
    [WV_U64] = {"U64", 8, 0, 0, 0},
    [WV_I64] = {"I64", 8, 0, 0, 0},
    [WV_F16] = {"F16", 2, 1, 0, 0},
    [WV_BF16] = {"BF16", 2, 1, 0, 0},
    [WV_F32] = {"F32", 4, 1, 0, 0},
    [WV_F64] = {"F64", 8, 1, 0, 0},
    [WV_C64] = {"C64", 8, 0, 0, 0},
    [WV_F8_E4M3] = {"F8_E4M3", 1, 1, 0, 0},
    [WV_F8_E5M2] = {"F8_E5M2", 1, 1, 0, 0},
    /* ggml block types: elements and bytes per block as in ggml's
     * type_traits (ggml.c) and gguf-py's GGML_QUANT_SIZES. */
    [WV_Q4_0] = {"Q4_0", 0, 0, 32, 18},
    [WV_Q4_1] = {"Q4_1", 0, 0, 32, 20},
    [WV_Q5_0] = {"Q5_0", 0, 0, 32, 22},
    [WV_Q5_1] = {"Q5_1", 0, 0, 32, 24},
    [WV_Q8_0] = {"Q8_0", 0, 0, 32, 34},
    [WV_Q8_1] = {"Q8_1", 0, 0, 32, 36},
    [WV_Q2_K] = {"Q2_K", 0, 0, 256, 84},
    [WV_Q3_K] = {"Q3_K", 0, 0, 256, 110},
    [WV_Q4_K] = {"Q4_K", 0, 0, 256, 144},
    [WV_Q5_K] = {"Q5_K", 0, 0, 256, 176},
    [WV_Q6_K] = {"Q6_K", 0, 0, 256, 210},
    [WV_Q8_K] = {"Q8_K", 0, 0, 256, 292},
    [WV_IQ2_XXS] = {"IQ2_XXS", 0, 0, 256, 66},
    [WV_IQ2_XS] = {"IQ2_XS", 0, 0, 256, 74},
    [WV_IQ3_XXS] = {"IQ3_XXS", 0, 0, 256, 98},
    [WV_IQ1_S] = {"IQ1_S", 0, 0, 256, 50},
    [WV_IQ4_NL] = {"IQ4_NL", 0, 0, 32, 18},
    [WV_IQ3_S] = {"IQ3_S", 0, 0, 256, 110},
    [WV_IQ2_S] = {"IQ2_S", 0, 0, 256, 82},
    [WV_IQ4_XS] = {"IQ4_XS", 0, 0, 256, 136},
    [WV_IQ1_M] = {"IQ1_M", 0, 0, 256, 56},
    [WV_TQ1_0] = {"TQ1_0", 0, 0, 256, 54},
    [WV_TQ2_0] = {"TQ2_0", 0, 0, 256, 66},
    [WV_MXFP4] = {"MXFP4", 0, 0, 32, 17},
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

int wv_dtype_block(wv_dtype dt, size_t *elems, size_t *bytes)
{
    if (!valid(dt)) {
        *elems = *bytes = 0;
        return WV_MISUSE;
    }
    if (dtypes[dt].blk_elems) {
        *elems = dtypes[dt].blk_elems;
        *bytes = dtypes[dt].blk_bytes;
    } else {
        *elems = 1;
        *bytes = dtypes[dt].size;
    }
    return WV_OK;
}

bool wv__dtype_is_block(wv_dtype dt)
{
    return valid(dt) && dtypes[dt].blk_elems != 0;
}

bool wv__dtype_dequantises(wv_dtype dt)
{
    switch (dt) {
    case WV_Q4_0: case WV_Q4_1: case WV_Q5_0: case WV_Q5_1: case WV_Q8_0:
    case WV_Q2_K: case WV_Q3_K: case WV_Q4_K: case WV_Q5_K: case WV_Q6_K:
    case WV_Q8_K: case WV_IQ4_NL: case WV_IQ4_XS: case WV_MXFP4:
        return true;
    default:
        return false;
    }
}

uint64_t wv__dtype_span(wv_dtype dt, uint64_t elems)
{
    size_t be, bb;
    if (wv_dtype_block(dt, &be, &bb) != WV_OK)
        return 0;
    return elems / be * bb;
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

/* The names people type: "f16", "fp16", "half", "bfloat16", "float32",
 * "int8" ... (NumPy's and PyTorch's spellings), matched ignoring case;
 * the canonical names ("F16", "q4_0", ...) too. */
int wv_dtype_parse(const char *name, wv_dtype *out)
{
    static const struct {
        const char *alias;
        wv_dtype dt;
    } aliases[] = {
        {"f16", WV_F16},       {"fp16", WV_F16},      {"half", WV_F16},
        {"float16", WV_F16},   {"bf16", WV_BF16},     {"bfloat16", WV_BF16},
        {"f32", WV_F32},       {"fp32", WV_F32},      {"float", WV_F32},
        {"float32", WV_F32},   {"single", WV_F32},    {"f64", WV_F64},
        {"fp64", WV_F64},      {"double", WV_F64},    {"float64", WV_F64},
        {"i8", WV_I8},         {"int8", WV_I8},       {"u8", WV_U8},
        {"uint8", WV_U8},      {"i16", WV_I16},       {"int16", WV_I16},
        {"short", WV_I16},     {"u16", WV_U16},       {"uint16", WV_U16},
        {"i32", WV_I32},       {"int32", WV_I32},     {"int", WV_I32},
        {"u32", WV_U32},       {"uint32", WV_U32},    {"i64", WV_I64},
        {"int64", WV_I64},     {"long", WV_I64},      {"u64", WV_U64},
        {"uint64", WV_U64},    {"bool", WV_BOOL},     {"c64", WV_C64},
        {"complex64", WV_C64}, {"fp8_e4m3", WV_F8_E4M3},
        {"float8_e4m3fn", WV_F8_E4M3},                {"fp8_e5m2", WV_F8_E5M2},
        {"float8_e5m2", WV_F8_E5M2},
    };
    char low[32];
    size_t n = name ? strlen(name) : 0;
    *out = WV_DTYPE_INVALID;
    if (n == 0 || n >= sizeof low)
        return WV_NOTFOUND;
    for (size_t i = 0; i <= n; i++) {
        char c = name[i];
        low[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcmp(aliases[i].alias, low) == 0) {
            *out = aliases[i].dt;
            return WV_OK;
        }
    }
    for (int i = 1; i < WV__DTYPE_COUNT; i++) {
        const char *c = dtypes[i].name;
        size_t k = 0;
        while (c[k] && low[k] == (c[k] >= 'A' && c[k] <= 'Z'
                                      ? (char)(c[k] - 'A' + 'a')
                                      : c[k]))
            k++;
        if (c[k] == '\0' && low[k] == '\0') {
            *out = (wv_dtype)i;
            return WV_OK;
        }
    }
    return WV_NOTFOUND;
}

wv_dtype wv__cast_target(wv_dtype from, wv_dtype cast)
{
    if (cast == WV_DTYPE_INVALID ||
        !(wv_dtype_is_float(from) || wv__dtype_dequantises(from)))
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

/* ---- dequantisation ----------------------------------------------------- */

static float f16_to_float(const unsigned char *p)
{
    return (float)decode_small(wv__le16(p), 5, 10, false);
}

/* Scale and min j (0..7) of a Q4_K/Q5_K block: 6 bits each, packed into
 * 12 bytes (ggml's get_scale_min_k4). */
static void scale_min_k4(int j, const unsigned char *q, unsigned *sc,
                         unsigned *m)
{
    if (j < 4) {
        *sc = q[j] & 63u;
        *m = q[j + 4] & 63u;
    } else {
        *sc = (q[j + 4] & 0x0fu) | ((unsigned)(q[j - 4] >> 6) << 4);
        *m = (unsigned)(q[j + 4] >> 4) | ((unsigned)(q[j] >> 6) << 4);
    }
}

/* ggml's kvalues_iq4nl: the 16 levels of IQ4_NL and IQ4_XS. */
static const signed char kv_iq4[16] = {-127, -104, -83, -65, -49, -35,
                                       -22,  -10,  1,   13,  25,  38,
                                       53,   69,   89,  113};

/* ggml's kvalues_mxfp4: the E2M1 values, doubled. */
static const signed char kv_mxfp4[16] = {0,  1,  2,  3,  4,  6,  8,  12,
                                         0, -1, -2, -3, -4, -6, -8, -12};

/* 32 elements from 16 bytes of 4-bit codes: low nibbles first, then high
 * ones, each mapped through kv and scaled by d. */
static void nibble_run(const unsigned char *qs, const signed char kv[16],
                       float d, float *y)
{
    for (int j = 0; j < 16; j++) {
        y[j] = d * (float)kv[qs[j] & 0x0f];
        y[j + 16] = d * (float)kv[qs[j] >> 4];
    }
}

/* An E8M0 exponent byte as 2^(e - 127) / 2 (ggml_e8m0_to_fp32_half). */
static float e8m0_half(unsigned e)
{
    uint32_t bits = e < 2 ? 0x00200000u << e : (uint32_t)(e - 1) << 23;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* The 256 elements of a K-quant (or IQ4_XS) block into y. */
static void dequant_k(wv_dtype from, const unsigned char *b, float *y)
{
    switch (from) {
    case WV_IQ4_XS: {
        float d = f16_to_float(b);
        unsigned sh = wv__le16(b + 2);
        for (int ib = 0; ib < 8; ib++) {
            int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 0x0f) |
                     (int)((sh >> (2 * ib)) & 3u) << 4;
            nibble_run(b + 8 + 16 * ib, kv_iq4, d * (float)(ls - 32),
                       y + 32 * ib);
        }
        break;
    }
    case WV_Q2_K: {
        const unsigned char *sc = b, *q = b + 16;
        float d = f16_to_float(b + 80), dmin = f16_to_float(b + 82);
        int is = 0;
        for (int n = 0; n < 256; n += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2)
                for (int half = 0; half < 2; half++, is++) {
                    float dl = d * (float)(sc[is] & 0x0f);
                    float ml = dmin * (float)(sc[is] >> 4);
                    for (int l = 0; l < 16; l++)
                        *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) -
                               ml;
                }
        break;
    }
    case WV_Q3_K: {
        const unsigned char *hm = b, *q = b + 32, *s = b + 96;
        float d = f16_to_float(b + 108);
        int sc[16];
        for (int j = 0; j < 16; j++) {
            /* low 4 bits: nibble j % 8 of bytes 0..7; high 2 bits: the
             * 2-bit field j / 4 of byte 8 + j % 4 */
            int lo = j < 8 ? s[j] & 0x0f : s[j - 8] >> 4;
            int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
            sc[j] = (lo | hi << 4) - 32;
        }
        int is = 0;
        unsigned m = 1;
        for (int n = 0; n < 256; n += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2, m <<= 1)
                for (int half = 0; half < 2; half++, is++) {
                    float dl = d * (float)sc[is];
                    for (int l = 0; l < 16; l++) {
                        int k = l + 16 * half;
                        int v = ((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
        break;
    }
    case WV_Q4_K:
    case WV_Q5_K: {
        bool five = from == WV_Q5_K;
        float d = f16_to_float(b), dmin = f16_to_float(b + 2);
        const unsigned char *scales = b + 4, *qh = b + 16;
        const unsigned char *q = b + (five ? 48 : 16);
        unsigned u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < 256; j += 64, q += 32, is += 2) {
            unsigned sc, m;
            scale_min_k4(is, scales, &sc, &m);
            float d1 = d * (float)sc, m1 = dmin * (float)m;
            scale_min_k4(is + 1, scales, &sc, &m);
            float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) {
                unsigned v = q[l] & 0x0fu;
                if (five && (qh[l] & u1))
                    v += 16;
                *y++ = d1 * (float)v - m1;
            }
            for (int l = 0; l < 32; l++) {
                unsigned v = q[l] >> 4;
                if (five && (qh[l] & u2))
                    v += 16;
                *y++ = d2 * (float)v - m2;
            }
            u1 <<= 2;
            u2 <<= 2;
        }
        break;
    }
    case WV_Q6_K: {
        const unsigned char *ql = b, *qh = b + 128, *sc = b + 192;
        float d = f16_to_float(b + 208);
        for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32,
                 sc += 8)
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * (float)(signed char)sc[is] * (float)q1;
                y[l + 32] = d * (float)(signed char)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)(signed char)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)(signed char)sc[is + 6] * (float)q4;
            }
        break;
    }
    case WV_Q8_K: {
        uint32_t bits = wv__le32(b);
        float d;
        memcpy(&d, &bits, 4);
        for (int j = 0; j < 256; j++)
            y[j] = d * (float)(signed char)b[4 + j];
        break;
    }
    default:
        for (int j = 0; j < 256; j++)
            y[j] = 0.0f;
        break;
    }
}

/* One block of `from` into y (32 floats, or 256 for the K-quants). */
static void dequant_block(wv_dtype from, const unsigned char *b, float *y)
{
    if (dtypes[from].blk_elems == 256) {
        dequant_k(from, b, y);
        return;
    }
    float d = f16_to_float(b);
    switch (from) {
    case WV_Q8_0:
        for (int j = 0; j < 32; j++)
            y[j] = (float)(signed char)b[2 + j] * d;
        break;
    case WV_Q4_0:
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[2 + j] & 0x0f) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
        break;
    case WV_Q4_1: {
        float m = f16_to_float(b + 2);
        for (int j = 0; j < 16; j++) {
            float p0 = (float)(b[4 + j] & 0x0f) * d;
            float p1 = (float)(b[4 + j] >> 4) * d;
            y[j] = p0 + m;
            y[j + 16] = p1 + m;
        }
        break;
    }
    case WV_Q5_0:
    case WV_Q5_1: {
        bool one = from == WV_Q5_1;
        float m = one ? f16_to_float(b + 2) : 0.0f;
        const unsigned char *qhp = b + (one ? 4 : 2);
        const unsigned char *qs = qhp + 4;
        uint32_t qh = wv__le32(qhp);
        int bias = one ? 0 : 16;
        for (int j = 0; j < 16; j++) {
            int h0 = (int)((qh >> j) & 1u) << 4;
            int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            float p0 = (float)(((qs[j] & 0x0f) | h0) - bias) * d;
            float p1 = (float)(((qs[j] >> 4) | h1) - bias) * d;
            y[j] = one ? p0 + m : p0;
            y[j + 16] = one ? p1 + m : p1;
        }
        break;
    }
    case WV_IQ4_NL:
        nibble_run(b + 2, kv_iq4, d, y);
        break;
    case WV_MXFP4: /* its first byte is the exponent, not an f16 */
        nibble_run(b + 1, kv_mxfp4, e8m0_half(b[0]), y);
        break;
    default:
        for (int j = 0; j < 32; j++)
            y[j] = 0.0f;
        break;
    }
}

/* float -> bfloat16 from the bits: a 16-bit shift with rounding to
 * nearest even (NaN kept quiet). Equal to encode_small(x, 8, 7) on every
 * float, and several times faster. */
static uint16_t f32_to_bf16(uint32_t b)
{
    if ((b & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((b >> 16) | 0x40);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1)) >> 16);
}

/* float -> IEEE half from the bits: encode_small(x, 5, 10) on a float's
 * 24-bit significand instead of a double's 53 (the same value, so the
 * same rounding decisions; checked on every float). */
static uint16_t f32_to_f16(uint32_t b)
{
    uint32_t sign = (b >> 16) & 0x8000u;
    int e = (int)((b >> 23) & 0xff);
    uint32_t frac = b & 0x7fffffu;
    if (e == 0xff)
        return (uint16_t)(frac == 0 ? sign | 0x7c00u
                                    : sign | 0x7c00u | 0x200u | frac >> 13);
    if (e == 0) /* zero or a float subnormal: rounds to a signed zero */
        return (uint16_t)sign;
    int te = e - 127 + 15, shift = 13;
    uint32_t m = (1u << 23) | frac;
    if (te < 1) {
        shift += 1 - te;
        te = 0;
    }
    if (shift > 25) /* below half the smallest subnormal */
        return (uint16_t)sign;
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1),
             half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1)))
        r++;
    if (te == 0)
        return (uint16_t)(sign | r); /* a carry makes the smallest normal */
    if (r >> 11) {
        r >>= 1;
        te++;
    }
    if (te >= 31)
        return (uint16_t)(sign | 0x7c00u);
    return (uint16_t)(sign | (uint32_t)te << 10 | (r & 0x3ffu));
}

void wv__cast(wv_dtype from, const void *src, wv_dtype to, void *dst,
              size_t n)
{
    const unsigned char *s = src;
    unsigned char *d = dst;
    size_t is = wv_dtype_size(from), os = wv_dtype_size(to);
    if (wv__dtype_is_block(from)) {
        /* n is a multiple of the block's elements (32 or 256). */
        size_t bb = dtypes[from].blk_bytes, be = dtypes[from].blk_elems;
        float y[256];
        for (size_t i = 0; i + be <= n; i += be, s += bb) {
            dequant_block(from, s, y);
            for (size_t j = 0; j < be; j++, d += os) {
                uint32_t fb;
                memcpy(&fb, &y[j], 4);
                if (to == WV_F32)
                    wv__put32(d, fb);
                else if (to == WV_BF16)
                    wv__put16(d, f32_to_bf16(fb));
                else if (to == WV_F16)
                    wv__put16(d, f32_to_f16(fb));
                else
                    store_double(to, (double)y[j], d);
            }
        }
        return;
    }
    if (from == WV_F32 && (to == WV_BF16 || to == WV_F16)) {
        for (size_t i = 0; i < n; i++, s += 4, d += 2) {
            uint32_t b = wv__le32(s);
            wv__put16(d, to == WV_BF16 ? f32_to_bf16(b) : f32_to_f16(b));
        }
        return;
    }
    for (size_t i = 0; i < n; i++, s += is, d += os)
        store_double(to, load_double(from, s), d);
}
