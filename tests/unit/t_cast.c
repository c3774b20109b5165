/*
 * t_cast.c -- conversions between the floating-point dtypes.
 *
 * Expected results come from two places: bit patterns worked out by hand
 * (ties, overflow, subnormals, NaN) and reference functions written here
 * independently of dtype.c: decoding by formula, and encoding by searching
 * the target's ordered values for the nearest one (ties to even). Powers of
 * two are built from their bit patterns, so no libm is involved.
 */
#include "wv_int.h"
#include "wvtest.h"

/* ---- helpers ------------------------------------------------------------- */

static double pow2(int k) /* exact for -1022 <= k <= 1023 */
{
    uint64_t b = (uint64_t)(k + 1023) << 52;
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static uint64_t dbits(double d)
{
    uint64_t b;
    memcpy(&b, &d, 8);
    return b;
}

static double bits_d(uint64_t b)
{
    double d;
    memcpy(&d, &b, 8);
    return d;
}

static float bits_f(uint32_t b)
{
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static uint32_t fbits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

/* One element through wv__cast, with little-endian buffers. */
static uint16_t f32_to(wv_dtype to, uint32_t bits)
{
    unsigned char in[4], out[2];
    wv__put32(in, bits);
    wv__cast(WV_F32, in, to, out, 1);
    return wv__le16(out);
}

static uint16_t f64_to16(wv_dtype to, double d)
{
    unsigned char in[8], out[2];
    wv__put64(in, dbits(d));
    wv__cast(WV_F64, in, to, out, 1);
    return wv__le16(out);
}

static uint32_t f64_to_f32(double d)
{
    unsigned char in[8], out[4];
    wv__put64(in, dbits(d));
    wv__cast(WV_F64, in, WV_F32, out, 1);
    return wv__le32(out);
}

static uint32_t to_f32(wv_dtype from, uint32_t bits)
{
    unsigned char in[4], out[4];
    if (wv_dtype_size(from) == 1)
        in[0] = (unsigned char)bits;
    else
        wv__put16(in, (uint16_t)bits);
    wv__cast(from, in, WV_F32, out, 1);
    return wv__le32(out);
}

static uint64_t xs_state = 0x9e3779b97f4a7c15ull;
static uint64_t xs(void)
{
    xs_state ^= xs_state << 13;
    xs_state ^= xs_state >> 7;
    xs_state ^= xs_state << 17;
    return xs_state;
}

/* ---- independent reference ------------------------------------------------ */

/* Value of a binary16 pattern by formula (finite patterns only). */
static double ref_f16(uint16_t h)
{
    int e = (h >> 10) & 31;
    double f = (double)(h & 1023);
    double v = e == 0 ? f * pow2(-24) : (1024.0 + f) * pow2(e - 25);
    return (h & 0x8000) ? -v : v;
}

static double ref_bf16(uint16_t h)
{
    return (double)bits_f((uint32_t)h << 16);
}

/* Round a finite, non-negative double to a format whose positive finite
 * patterns 0..max_pat increase with the pattern, ties to even; overflow
 * past (max + half an ulp) gives inf_pat. `val` decodes a pattern, and
 * `beyond` is the value the pattern after max would have (2^(emax+1)). */
static uint16_t ref_round(double x, double (*val)(uint16_t), uint16_t max_pat,
                          double beyond)
{
    uint16_t lo = 0, hi = max_pat;
    if (x >= beyond)
        return (uint16_t)(max_pat + 1);
    /* largest pattern whose value is <= x */
    while (lo < hi) {
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if (val(mid) <= x)
            lo = mid;
        else
            hi = (uint16_t)(mid - 1);
    }
    double a = val(lo);
    double b = lo == max_pat ? beyond : val((uint16_t)(lo + 1));
    double da = x - a, db = b - x; /* exact (Sterbenz) */
    if (da < db)
        return lo;
    if (db < da)
        return (uint16_t)(lo + 1);
    return (lo & 1) ? (uint16_t)(lo + 1) : lo;
}

static uint16_t ref_to_f16(double x)
{
    uint16_t s = (dbits(x) >> 63) ? 0x8000 : 0;
    double ax = s ? -x : x;
    return s | ref_round(ax, ref_f16, 0x7bff, 65536.0);
}

static uint16_t ref_to_bf16(double x)
{
    uint16_t s = (dbits(x) >> 63) ? 0x8000 : 0;
    double ax = s ? -x : x;
    return s | ref_round(ax, ref_bf16, 0x7f7f, pow2(128));
}

/* ---- F32 -> F16 ------------------------------------------------------------ */

TEST_IMPL(cast_f32_to_f16_exact_cases)
{
    static const struct {
        float in;
        uint16_t want;
    } c[] = {
        {1.0f, 0x3c00},
        {-2.0f, 0xc000},
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0009765625f, 0x3c01},              /* 1 + 2^-10 */
        {1.00048828125f, 0x3c00},             /* 1 + 2^-11: tie, to even */
        {1.00146484375f, 0x3c02},             /* 1 + 3*2^-11: tie, to even */
        {1.000488281250f + 0x1p-20f, 0x3c01}, /* just above the tie */
        {65504.0f, 0x7bff},
        {65519.99f, 0x7bff},
        {65520.0f, 0x7c00}, /* tie between max and 2^16: to "even" = inf */
        {-65520.0f, 0xfc00},
        {1e10f, 0x7c00},
        {0x1p-14f, 0x0400},          /* smallest normal */
        {0x1p-24f, 0x0001},          /* smallest subnormal */
        {0x1p-25f, 0x0000},          /* half of it: tie to even = 0 */
        {-0x1p-25f, 0x8000},
        {0x1.8p-25f, 0x0001},        /* 3 * 2^-26 */
        {0x1p-25f + 0x1p-40f, 0x0001},
        {0x1.8p-24f, 0x0002},        /* 1.5 * 2^-24: tie, to even */
        {0x1.4p-23f, 0x0002},        /* 2.5 * 2^-24: tie, to even */
        {0x1.ffcp-15f, 0x0400},      /* 2^-14 - 2^-25: tie, to even */
        {0x1.ff8p-15f, 0x03ff},      /* largest subnormal */
        {0x1.ff0p-15f, 0x03fe},
        {0x1p-30f, 0x0000},
        {1e-45f, 0x0000},            /* f32 subnormal */
        {0.1f, 0x2e66},
        {3.14159265f, 0x4248},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        uint16_t got = f32_to(WV_F16, fbits(c[i].in));
        if (got != c[i].want)
            WVT_FAIL("F32 %a -> F16: got 0x%04x, want 0x%04x",
                     (double)c[i].in, got, c[i].want);
    }
    ASSERT_EQ(f32_to(WV_F16, 0x7f800000u), 0x7c00);
    ASSERT_EQ(f32_to(WV_F16, 0xff800000u), 0xfc00);
}

static int is_quiet_nan16(uint16_t h, int expbits)
{
    int mb = 15 - expbits;
    uint16_t emask = (uint16_t)(((1u << expbits) - 1) << mb);
    return (h & emask) == emask && (h & (1u << (mb - 1)));
}

TEST_IMPL(cast_nan_keeps_sign_and_is_quiet)
{
    static const uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u,
                                    0xff800001u, 0x7fa00000u, 0x7fffffffu};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        uint32_t n = nans[i];
        uint16_t h = f32_to(WV_F16, n), b = f32_to(WV_BF16, n);
        ASSERT(is_quiet_nan16(h, 5));
        ASSERT(is_quiet_nan16(b, 8));
        ASSERT_EQ(h >> 15, n >> 31);
        ASSERT_EQ(b >> 15, n >> 31);
        double d = (double)bits_f(n);
        uint16_t h2 = f64_to16(WV_F16, d), b2 = f64_to16(WV_BF16, d);
        ASSERT(is_quiet_nan16(h2, 5));
        ASSERT(is_quiet_nan16(b2, 8));
        ASSERT_EQ(h2 >> 15, n >> 31);
        ASSERT_EQ(b2 >> 15, n >> 31);
        uint32_t f = f64_to_f32(d);
        ASSERT_EQ(f & 0x7fc00000u, 0x7fc00000u);
        ASSERT_EQ(f >> 31, n >> 31);
    }
    /* The quiet NaNs keep their top payload bits. */
    ASSERT_EQ(f32_to(WV_F16, 0x7fc00000u), 0x7e00);
    ASSERT_EQ(f32_to(WV_F16, 0xffc00000u), 0xfe00);
    ASSERT_EQ(f32_to(WV_BF16, 0x7fc00000u), 0x7fc0);
    ASSERT_EQ(f32_to(WV_BF16, 0xffc00000u), 0xffc0);
    ASSERT_EQ(f32_to(WV_BF16, 0x7f800001u), 0x7fc0); /* not Inf */
}

TEST_IMPL(cast_f32_to_f16_random_vs_reference)
{
    /* Random bit patterns, plus a dense sweep of the subnormal and overflow
     * edges where the rounding is subtle. */
    for (long i = 0; i < 600000; i++) {
        uint32_t b;
        if (i < 200000)
            b = (uint32_t)xs();
        else if (i < 400000) /* |x| in [2^-26, 2^-13) */
            b = (uint32_t)(0x32800000u + (xs() % (0x39000000u - 0x32800000u))) |
                (uint32_t)(i & 1) << 31;
        else /* |x| in [2^15, 2^17) */
            b = 0x47000000u + (uint32_t)(xs() % 0x01000000u);
        if ((b & 0x7f800000u) == 0x7f800000u)
            continue; /* NaN and Inf are tested on their own */
        uint16_t want = ref_to_f16((double)bits_f(b));
        uint16_t got = f32_to(WV_F16, b);
        if (got != want)
            WVT_FAIL("F32 0x%08x -> F16: got 0x%04x, want 0x%04x", b, got,
                     want);
    }
}

/* ---- F32 -> BF16 ------------------------------------------------------------ */

TEST_IMPL(cast_f32_to_bf16_exact_cases)
{
    static const struct {
        uint32_t in;
        uint16_t want;
    } c[] = {
        {0x3f800000u, 0x3f80}, /* 1.0 */
        {0x3f808000u, 0x3f80}, /* 1 + 2^-8: tie, to even */
        {0x3f818000u, 0x3f82}, /* 1 + 3*2^-8: tie, to even */
        {0x3f808001u, 0x3f81}, /* just above the tie */
        {0x3f807fffu, 0x3f80},
        {0x7f7fffffu, 0x7f80}, /* FLT_MAX overflows to inf */
        {0x7f7f8000u, 0x7f80}, /* tie at the top: to even = inf */
        {0x7f7f7fffu, 0x7f7f},
        {0x7f800000u, 0x7f80},
        {0xff800000u, 0xff80},
        {0x80000000u, 0x8000},
        {0x00000001u, 0x0000}, /* subnormals round like everything else */
        {0x00008000u, 0x0000}, /* tie, to even */
        {0x00018000u, 0x0002}, /* tie, to even */
        {0x00008001u, 0x0001},
        {0x007fffffu, 0x0080}, /* largest subnormal rounds up to normal */
        {0x80008001u, 0x8001},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        uint16_t got = f32_to(WV_BF16, c[i].in);
        if (got != c[i].want)
            WVT_FAIL("F32 0x%08x -> BF16: got 0x%04x, want 0x%04x", c[i].in,
                     got, c[i].want);
        /* The F64 path must agree with the F32 fast path. */
        got = f64_to16(WV_BF16, (double)bits_f(c[i].in));
        if (got != c[i].want)
            WVT_FAIL("F64(0x%08x) -> BF16: got 0x%04x, want 0x%04x", c[i].in,
                     got, c[i].want);
    }
}

TEST_IMPL(cast_f32_to_bf16_random_vs_reference)
{
    for (long i = 0; i < 400000; i++) {
        uint32_t b = (uint32_t)xs();
        if (i & 1) /* near ties */
            b = (b & 0xffff0000u) | 0x8000u | (uint32_t)(xs() & 1);
        if ((b & 0x7f800000u) == 0x7f800000u) {
            /* NaN and Inf: fast path and general path agree exactly. */
            ASSERT_EQ(f32_to(WV_BF16, b), f64_to16(WV_BF16, (double)bits_f(b)));
            continue;
        }
        uint16_t want = ref_to_bf16((double)bits_f(b));
        uint16_t got = f32_to(WV_BF16, b);
        if (got != want)
            WVT_FAIL("F32 0x%08x -> BF16: got 0x%04x, want 0x%04x", b, got,
                     want);
        got = f64_to16(WV_BF16, (double)bits_f(b));
        if (got != want)
            WVT_FAIL("F64(0x%08x) -> BF16: got 0x%04x, want 0x%04x", b, got,
                     want);
    }
}

/* ---- F64 -> F16, BF16, F32 ---------------------------------------------------- */

TEST_IMPL(cast_f64_exact_cases)
{
    /* F32 */
    ASSERT_EQ(f64_to_f32(1.0), 0x3f800000u);
    ASSERT_EQ(f64_to_f32(1.0 + pow2(-24)), 0x3f800000u); /* tie, even */
    ASSERT_EQ(f64_to_f32(1.0 + 3 * pow2(-24)), 0x3f800002u);
    ASSERT_EQ(f64_to_f32(1.0 + pow2(-24) + pow2(-50)), 0x3f800001u);
    ASSERT_EQ(f64_to_f32(1e39), 0x7f800000u);
    ASSERT_EQ(f64_to_f32(-1e300), 0xff800000u);
    ASSERT_EQ(f64_to_f32(pow2(-149)), 0x00000001u);
    ASSERT_EQ(f64_to_f32(pow2(-150)), 0x00000000u); /* tie, even */
    ASSERT_EQ(f64_to_f32(3 * pow2(-151)), 0x00000001u);
    ASSERT_EQ(f64_to_f32(-0.0), 0x80000000u);
    ASSERT_EQ(f64_to_f32(bits_d(1)), 0x00000000u); /* F64 subnormal */
    ASSERT_EQ(f64_to_f32(bits_d(0x7ff0000000000000ull)), 0x7f800000u);

    /* F16 */
    ASSERT_EQ(f64_to16(WV_F16, 1.0 + pow2(-11)), 0x3c00);
    ASSERT_EQ(f64_to16(WV_F16, 1.0 + pow2(-11) + pow2(-40)), 0x3c01);
    ASSERT_EQ(f64_to16(WV_F16, 65520.0), 0x7c00);
    ASSERT_EQ(f64_to16(WV_F16, 65519.999999), 0x7bff);
    ASSERT_EQ(f64_to16(WV_F16, pow2(-24)), 0x0001);
    ASSERT_EQ(f64_to16(WV_F16, pow2(-25)), 0x0000);
    ASSERT_EQ(f64_to16(WV_F16, pow2(-25) + pow2(-70)), 0x0001);
    ASSERT_EQ(f64_to16(WV_F16, 3 * pow2(-26)), 0x0001);
    ASSERT_EQ(f64_to16(WV_F16, -pow2(-1000)), 0x8000);
    ASSERT_EQ(f64_to16(WV_F16, bits_d(0x8000000000000001ull)), 0x8000);
    ASSERT_EQ(f64_to16(WV_F16, 1e300), 0x7c00);
    ASSERT_EQ(f64_to16(WV_F16, bits_d(0xfff0000000000000ull)), 0xfc00);

    /* BF16 */
    ASSERT_EQ(f64_to16(WV_BF16, 1.0 + pow2(-8)), 0x3f80);
    ASSERT_EQ(f64_to16(WV_BF16, (2.0 - pow2(-8)) * pow2(127)), 0x7f80);
    ASSERT_EQ(f64_to16(WV_BF16, (2.0 - pow2(-8) - pow2(-30)) * pow2(127)),
              0x7f7f);
    ASSERT_EQ(f64_to16(WV_BF16, 1e300), 0x7f80);
    ASSERT_EQ(f64_to16(WV_BF16, pow2(-133)), 0x0001); /* min subnormal */
    ASSERT_EQ(f64_to16(WV_BF16, pow2(-134)), 0x0000); /* tie, even */
    ASSERT_EQ(f64_to16(WV_BF16, pow2(-134) + pow2(-160)), 0x0001);
    ASSERT_EQ(f64_to16(WV_BF16, -0.0), 0x8000);
}

TEST_IMPL(cast_f64_no_double_rounding)
{
    /* 1 + 2^-8 + 2^-30 lies just above the BF16 tie between 1 and 1 + 2^-7.
     * Rounded to F32 first it becomes exactly the tie (2^-30 is below half
     * an F32 ulp) and would then go to even, 0x3f80. Direct: 0x3f81. */
    double x = 1.0 + pow2(-8) + pow2(-30);
    uint32_t via_f32 = fbits((float)x);
    ASSERT_EQ(via_f32, 0x3f808000u);
    ASSERT_EQ(f32_to(WV_BF16, via_f32), 0x3f80);
    ASSERT_EQ(f64_to16(WV_BF16, x), 0x3f81);
    ASSERT_EQ(f64_to16(WV_BF16, -x), 0xbf81);
    /* The same for F16: 1 + 2^-11 + 2^-40. */
    x = 1.0 + pow2(-11) + pow2(-40);
    ASSERT_EQ(f32_to(WV_F16, fbits((float)x)), 0x3c00);
    ASSERT_EQ(f64_to16(WV_F16, x), 0x3c01);
}

TEST_IMPL(cast_f64_random_vs_reference)
{
    for (long i = 0; i < 300000; i++) {
        uint64_t b = xs();
        /* keep exponents near the targets' ranges: |x| in [2^-40, 2^140) */
        b = (b & 0x800fffffffffffffull) |
            ((uint64_t)(1023 - 40 + (int)(xs() % 180)) << 52);
        double x = bits_d(b);
        uint16_t want = ref_to_f16(x), got = f64_to16(WV_F16, x);
        if (got != want)
            WVT_FAIL("F64 %a -> F16: got 0x%04x, want 0x%04x", x, got, want);
        want = ref_to_bf16(x);
        got = f64_to16(WV_BF16, x);
        if (got != want)
            WVT_FAIL("F64 %a -> BF16: got 0x%04x, want 0x%04x", x, got, want);
    }
}

/* ---- widening: every pattern ------------------------------------------------ */

TEST_IMPL(cast_f16_to_f32_all_patterns)
{
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t got = to_f32(WV_F16, h), want;
        uint32_t e = (h >> 10) & 31, f = h & 1023, s = (h >> 15) << 31;
        if (e == 31)
            want = s | 0x7f800000u | (f ? 0x00400000u | (f << 13) : 0);
        else
            want = fbits((float)ref_f16((uint16_t)h));
        if (got != want)
            WVT_FAIL("F16 0x%04x -> F32: got 0x%08x, want 0x%08x", h, got,
                     want);
        /* Back again: exact for every non-NaN. */
        if (!(e == 31 && f) && f32_to(WV_F16, got) != h)
            WVT_FAIL("F16 0x%04x does not survive F32 and back", h);
    }
}

TEST_IMPL(cast_bf16_to_f32_all_patterns)
{
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t got = to_f32(WV_BF16, h), want = h << 16;
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f))
            want |= 0x00400000u; /* NaN: quiet */
        if (got != want)
            WVT_FAIL("BF16 0x%04x -> F32: got 0x%08x, want 0x%08x", h, got,
                     want);
        if (f32_to(WV_BF16, got) != (want >> 16))
            WVT_FAIL("BF16 0x%04x does not survive F32 and back", h);
        /* BF16 -> F16 rounds like the value would from F32. */
        unsigned char in[2], out[2];
        wv__put16(in, (uint16_t)h);
        wv__cast(WV_BF16, in, WV_F16, out, 1);
        if ((h & 0x7f80) != 0x7f80 &&
            wv__le16(out) != ref_to_f16(ref_bf16((uint16_t)h)))
            WVT_FAIL("BF16 0x%04x -> F16: got 0x%04x", h, wv__le16(out));
    }
}

TEST_IMPL(cast_f8_e4m3_to_f32_all_patterns)
{
    /* E4M3FN: bias 7, no infinities, only S.1111.111 is NaN, max 448. */
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t got = to_f32(WV_F8_E4M3, b), want;
        uint32_t e = (b >> 3) & 15, f = b & 7, s = (b >> 7) << 31;
        if (e == 15 && f == 7) {
            if ((got & 0x7fc00000u) != 0x7fc00000u || (got >> 31) != (b >> 7))
                WVT_FAIL("F8_E4M3 0x%02x -> F32: got 0x%08x, want NaN", b,
                         got);
            continue;
        }
        double v = e == 0 ? f * pow2(-9) : (8.0 + f) * pow2((int)e - 10);
        want = s | fbits((float)v);
        if (got != want)
            WVT_FAIL("F8_E4M3 0x%02x -> F32: got 0x%08x, want 0x%08x", b, got,
                     want);
    }
    ASSERT_EQ(to_f32(WV_F8_E4M3, 0x7e), fbits(448.0f));
    ASSERT_EQ(to_f32(WV_F8_E4M3, 0x01), fbits(0x1p-9f));
    ASSERT_EQ(to_f32(WV_F8_E4M3, 0x80), 0x80000000u);
    ASSERT_EQ(to_f32(WV_F8_E4M3, 0x78), fbits(256.0f)); /* not Inf */
}

TEST_IMPL(cast_f8_e5m2_to_f32_all_patterns)
{
    /* E5M2: the top byte of an F16. */
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t got = to_f32(WV_F8_E5M2, b), want;
        uint32_t e = (b >> 2) & 31, f = b & 3, s = (b >> 7) << 31;
        if (e == 31)
            want = s | 0x7f800000u | (f ? 0x00400000u | (f << 21) : 0);
        else
            want = s | fbits((float)(e == 0 ? f * pow2(-16)
                                            : (4.0 + f) * pow2((int)e - 17)));
        if (got != want)
            WVT_FAIL("F8_E5M2 0x%02x -> F32: got 0x%08x, want 0x%08x", b, got,
                     want);
        /* And to F16 it is exactly b << 8 (NaNs made quiet). */
        unsigned char in = (unsigned char)b, out[2];
        wv__cast(WV_F8_E5M2, &in, WV_F16, out, 1);
        uint16_t w16 = (uint16_t)(b << 8);
        if (e == 31 && f)
            w16 |= 0x0200;
        if (wv__le16(out) != w16)
            WVT_FAIL("F8_E5M2 0x%02x -> F16: got 0x%04x, want 0x%04x", b,
                     wv__le16(out), w16);
    }
    ASSERT_EQ(to_f32(WV_F8_E5M2, 0x7c), 0x7f800000u);
    ASSERT_EQ(to_f32(WV_F8_E5M2, 0x7b), fbits(57344.0f));
}

TEST_IMPL(cast_widening_to_f64_exact)
{
    /* F16 -> F64 and F32 -> F64 are exact, so save with cast F32 then
     * read back gives the decoded values. */
    for (uint32_t h = 0; h < 65536; h += 7) {
        if (((h >> 10) & 31) == 31)
            continue;
        unsigned char in[2], out[8];
        wv__put16(in, (uint16_t)h);
        wv__cast(WV_F16, in, WV_F64, out, 1);
        ASSERT_EQ(wv__le64(out), dbits(ref_f16((uint16_t)h)));
    }
}

TEST_IMPL(cast_many_elements_and_save)
{
    /* A whole tensor through wv_model_save with a cast: element order and
     * the slicing of large tensors. */
    char path[512];
    size_t n = 300000, flen;
    float *v = wv_malloc(n * 4);
    ASSERT_NOT_NULL(v);
    for (size_t i = 0; i < n; i++)
        v[i] = bits_f((uint32_t)xs());
    wv_model *m, *r = NULL;
    uint64_t s = n;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "v", WV_F32, 1, &s, v, n * 4, WV_DATA_TAKE));
    snprintf(path, sizeof path, "%s/c.safetensors", wvtest_tmpdir());
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.cast = WV_F16;
    ASSERT_OK(wv_model_save(m, path, &so));
    ASSERT_OK(wv_model_load(path, NULL, &r));
    const wv_tensor *t = wv_model_find(r, "v");
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(wv_tensor_dtype(t), WV_F16);
    ASSERT_EQ(wv_tensor_nbytes(t), n * 2);
    const unsigned char *d = wv_tensor_data(t);
    const float *src = wv_tensor_data(wv_model_find(m, "v"));
    for (size_t i = 0; i < n; i++)
        if (wv__le16(d + 2 * i) != f32_to(WV_F16, fbits(src[i])))
            WVT_FAIL("element %zu differs", i);
    (void)flen;
    wv_model_free(r);
    wv_model_free(m);
}

/* wv_dtype_parse: the names people type, any case; wv_dtype_from_name
 * stays exact (file formats rely on it). */
TEST_IMPL(dtype_parse_aliases)
{
    static const struct {
        const char *name;
        wv_dtype dt;
    } ok[] = {
        {"F16", WV_F16},       {"f16", WV_F16},        {"fp16", WV_F16},
        {"Half", WV_F16},      {"FLOAT16", WV_F16},    {"bf16", WV_BF16},
        {"BFloat16", WV_BF16}, {"f32", WV_F32},        {"FP32", WV_F32},
        {"float", WV_F32},     {"float32", WV_F32},    {"f64", WV_F64},
        {"double", WV_F64},    {"i8", WV_I8},          {"INT8", WV_I8},
        {"u8", WV_U8},         {"uint8", WV_U8},       {"int64", WV_I64},
        {"q4_0", WV_Q4_0},     {"f8_e4m3", WV_F8_E4M3}, {"bool", WV_BOOL},
    };
    wv_dtype dt;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ASSERT_OK(wv_dtype_parse(ok[i].name, &dt));
        ASSERT_EQ(dt, ok[i].dt);
    }
    ASSERT_EQ(wv_dtype_parse("f17", &dt), WV_NOTFOUND);
    ASSERT_EQ(dt, WV_DTYPE_INVALID);
    ASSERT_EQ(wv_dtype_parse("", &dt), WV_NOTFOUND);
    ASSERT_EQ(wv_dtype_parse("float16float16float16float16float16", &dt),
              WV_NOTFOUND);
    ASSERT_EQ(wv_dtype_from_name("f16", &dt), WV_NOTFOUND);
}
