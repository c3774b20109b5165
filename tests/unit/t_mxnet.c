/*
 * t_mxnet.c -- MXNet NDArray list files (.params).
 *
 * The real fixtures in WV_FIXTURES/mxnet (Gluon V2, a Module checkpoint
 * with its -symbol.json, the pre-V1 legacy_ndarray.v0) with exact names,
 * shapes and values; byte-identical rewrites of the V2 fixtures; round
 * trips of every MXNet dtype in mmap and pread mode; hand-built V1, V3 and
 * pre-V1 records; scalars (V3), unnamed lists, casts; the symbol file
 * rules; and refusals with their messages.
 */
#include "wv_int.h"
#include "wvtest.h"
#include "wvsets.h"

static const wv_dtype mx_dtypes[] = {
    WV_F32, WV_F64, WV_F16, WV_U8,  WV_I32, WV_I8,   WV_I64,
    WV_BOOL, WV_I16, WV_U16, WV_U32, WV_U64, WV_BF16,
};
#define N_MX_DTYPES (sizeof mx_dtypes / sizeof mx_dtypes[0])

static const char *fixture(const char *name)
{
    return wvtest_fixture("mxnet", name);
}

/* 1 if the sets hold the same tensors in the same order. */

static int load_mode(const char *path, int pread_mode, char *eb, size_t ebn,
                     wv_model **out)
{
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    lo.flags = pread_mode ? WV_LOAD_PREAD : WV_LOAD_MMAP;
    lo.errbuf = eb;
    lo.errbuf_size = ebn;
    eb[0] = '\0';
    return wv_model_load(path, &lo, out);
}

/* Save as mxnet and reload in both modes; 1 if both equal `m`. */
static int roundtrip(wv_model *m, const char *file, wv_dtype cast)
{
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.cast = cast;
    const char *p = wvtest_path(file);
    if (wv_model_save(m, p, &so) != WV_OK) {
        fprintf(stderr, "save %s: %s\n", p, wv_model_errmsg(m));
        return 0;
    }
    int ok = 1;
    for (int mode = 0; mode < 2; mode++) {
        char eb[WV_ERRBUF_SIZE];
        wv_model *r = NULL;
        if (load_mode(p, mode, eb, sizeof eb, &r) != WV_OK) {
            fprintf(stderr, "load %s: %s\n", p, eb);
            ok = 0;
            continue;
        }
        ok &= wvf_same(m, r, 0);
        ok &= strcmp(wv_model_source_format(r), "mxnet") == 0;
        wv_model_free(r);
    }
    return ok;
}

static int load_mem_err(const void *buf, size_t len, char *eb, size_t ebn,
                        wv_model **out)
{
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    lo.errbuf = eb;
    lo.errbuf_size = ebn;
    eb[0] = '\0';
    return wv_model_load_mem(buf, len, &lo, out);
}

/* ---- a tiny builder for hand-made files -------------------------------- */

struct bld {
    unsigned char b[4096];
    size_t n;
};

static void u32(struct bld *x, uint32_t v)
{
    wv__put32(x->b + x->n, v);
    x->n += 4;
}

static void u64(struct bld *x, uint64_t v)
{
    wv__put64(x->b + x->n, v);
    x->n += 8;
}

static void raw(struct bld *x, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static void list_header(struct bld *x, uint64_t n)
{
    x->n = 0;
    u64(x, 0x112);
    u64(x, 0);
    u64(x, n);
}

/* A V2 dense record: ndim i64 dims, cpu(0), flag, data. */
static void v2_record(struct bld *x, uint32_t magic, int32_t stype, int ndim,
                      const int64_t *dims, int32_t flag, const void *data,
                      size_t n)
{
    u32(x, magic);
    if (magic != 0xF993FAC8u)
        u32(x, (uint32_t)stype);
    u32(x, (uint32_t)ndim);
    for (int i = 0; i < ndim; i++)
        u64(x, (uint64_t)dims[i]);
    u32(x, 1);
    u32(x, 0);
    u32(x, (uint32_t)flag);
    raw(x, data, n);
}

static void name(struct bld *x, const char *s)
{
    u64(x, strlen(s));
    raw(x, s, strlen(s));
}

/* ---- fixtures ----------------------------------------------------------- */

TEST_IMPL(mxnet_fixture_gluon_v2)
{
    static const struct {
        const char *name;
        int ndim;
        uint64_t shape[4];
    } want[] = {
        {"6.bias", 1, {84}},        {"5.weight", 2, {120, 400}},
        {"7.weight", 2, {10, 84}},  {"2.weight", 4, {16, 6, 3, 3}},
        {"0.bias", 1, {6}},         {"6.weight", 2, {84, 120}},
        {"7.bias", 1, {10}},        {"5.bias", 1, {120}},
        {"2.bias", 1, {16}},        {"0.weight", 4, {6, 1, 5, 5}},
    };
    for (int mode = 0; mode < 2; mode++) {
        char eb[WV_ERRBUF_SIZE];
        wv_model *m;
        ASSERT_OK(load_mode(fixture("vgangal101-lenet-net.params"), mode,
                            eb, sizeof eb, &m));
        ASSERT_STREQ(wv_model_source_format(m), "mxnet");
        ASSERT_EQ(wv_model_count(m), 10);
        ASSERT_EQ(wv_model_meta_count(m), 0);
        for (size_t i = 0; i < 10; i++) {
            const wv_tensor *t = wv_model_tensor(m, i);
            ASSERT_STREQ(wv_tensor_name(t), want[i].name);
            ASSERT_EQ(wv_tensor_dtype(t), WV_F32);
            ASSERT_EQ(wv_tensor_ndim(t), want[i].ndim);
            ASSERT_MEMEQ(wv_tensor_shape(t), want[i].shape,
                         sizeof(uint64_t) * (size_t)want[i].ndim);
        }
        /* First element of "6.bias": bytes bb b2 1e 3e at offset 56. */
        const unsigned char *d = wv_tensor_data(wv_model_tensor(m, 0));
        ASSERT_MEMEQ(d, "\xbb\xb2\x1e\x3e\x61\x80\xdf\xbc", 8);
        wv_model_free(m);
    }
}

TEST_IMPL(mxnet_fixture_checkpoint_symbol)
{
    static const char *const want[] = {
        "arg:hybridsequential0_conv0_weight",
        "arg:hybridsequential0_conv0_bias",
        "arg:hybridsequential0_conv1_weight",
        "arg:hybridsequential0_conv1_bias",
        "arg:hybridsequential0_dense0_weight",
        "arg:hybridsequential0_dense0_bias",
        "arg:hybridsequential0_dense1_weight",
        "arg:hybridsequential0_dense1_bias",
    };
    static const uint64_t s0[4] = {5, 1, 5, 5}, s4[2] = {32, 80};
    char eb[WV_ERRBUF_SIZE];
    wv_model *m;
    ASSERT_OK(load_mode(fixture("lenet-0001.params"), 0, eb, sizeof eb,
                        &m));
    ASSERT_EQ(wv_model_count(m), 8);
    for (size_t i = 0; i < 8; i++)
        ASSERT_STREQ(wv_tensor_name(wv_model_tensor(m, i)), want[i]);
    const wv_tensor *t = wv_model_tensor(m, 0);
    ASSERT_EQ(wv_tensor_ndim(t), 4);
    ASSERT_MEMEQ(wv_tensor_shape(t), s0, sizeof s0);
    ASSERT_MEMEQ(wv_tensor_data(t), "\x58\x32\x24\x3e", 4);
    t = wv_model_tensor(m, 4);
    ASSERT_MEMEQ(wv_tensor_shape(t), s4, sizeof s4);
    size_t n;
    char *sym = (char *)wvtest_read_file(fixture("lenet-symbol.json"), &n);
    ASSERT_NOT_NULL(sym);
    const char *meta = wv_model_get_meta(m, "mxnet.symbol");
    ASSERT_NOT_NULL(meta);
    ASSERT_EQ(strlen(meta), n);
    ASSERT_MEMEQ(meta, sym, n);
    ASSERT_EQ(wv_model_meta_count(m), 1);
    free(sym);
    wv_model_free(m);
}

TEST_IMPL(mxnet_fixture_legacy_v0)
{
    float want[128];
    for (int i = 0; i < 128; i++)
        want[i] = (float)i;
    for (int mode = 0; mode < 2; mode++) {
        char eb[WV_ERRBUF_SIZE];
        wv_model *m;
        ASSERT_OK(load_mode(fixture("legacy_ndarray.v0"), mode, eb,
                            sizeof eb, &m));
        ASSERT_EQ(wv_model_count(m), 6);
        for (size_t i = 0; i < 6; i++) {
            char nm[4];
            snprintf(nm, sizeof nm, "%zu", i);
            const wv_tensor *t = wv_model_tensor(m, i);
            ASSERT_STREQ(wv_tensor_name(t), nm);
            ASSERT_EQ(wv_tensor_dtype(t), WV_F32);
            ASSERT_EQ(wv_tensor_ndim(t), 1);
            ASSERT_EQ(wv_tensor_shape(t)[0], 128);
            ASSERT_EQ(wv_tensor_nbytes(t), 512);
            ASSERT_MEMEQ(wv_tensor_data(t), want, 512);
        }
        wv_model_free(m);
    }
}

/* Writing back what we read reproduces MXNet's bytes. */
TEST_IMPL(mxnet_rewrite_v2_fixtures_identical)
{
    static const char *const files[] = {"vgangal101-lenet-net.params",
                                        "lenet-0001.params"};
    for (int i = 0; i < 2; i++) {
        wv_model *m;
        size_t n1, n2;
        ASSERT_OK(wv_model_load(fixture(files[i]), NULL, &m));
        ASSERT_OK(wv_model_save(m, wvtest_path("rt.params"), NULL));
        unsigned char *a = wvtest_read_file(fixture(files[i]), &n1);
        unsigned char *b = wvtest_read_file(wvtest_path("rt.params"), &n2);
        ASSERT(a && b);
        ASSERT_EQ(n1, n2);
        ASSERT_MEMEQ(a, b, n1);
        free(a);
        free(b);
        wv_model_free(m);
    }
}

/* The pre-V1 list comes back as a V2 list without names. */
TEST_IMPL(mxnet_legacy_to_v2_list)
{
    wv_model *m, *r;
    size_t n;
    ASSERT_OK(wv_model_load(fixture("legacy_ndarray.v0"), NULL, &m));
    ASSERT_OK(wv_model_save(m, wvtest_path("l.params"), NULL));
    unsigned char *b = wvtest_read_file(wvtest_path("l.params"), &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(n, 24 + 6 * (32 + 512) + 8);
    ASSERT_EQ(wv__le32(b + 24), 0xF993FAC9u);
    ASSERT_EQ(wv__le64(b + n - 8), 0); /* no names */
    free(b);
    ASSERT_OK(wv_model_load(wvtest_path("l.params"), NULL, &r));
    ASSERT(wvf_same(m, r, 0));
    wv_model_free(r);
    wv_model_free(m);
}

/* ---- round trips -------------------------------------------------------- */

TEST_IMPL(mxnet_roundtrip_all_dtypes)
{
    static const uint64_t shapes[][8] = {
        {2, 3}, {5}, {1, 1, 7}, {4, 0, 3}, {1, 2, 1, 2, 1, 2, 1, 2}};
    static const int ndims[] = {2, 1, 3, 3, 8};
    wv_model *m;
    ASSERT_OK(wv_model_new(&m));
    for (size_t d = 0; d < N_MX_DTYPES; d++) {
        for (int s = 0; s < 5; s++) {
            char nm[64];
            snprintf(nm, sizeof nm, "arg:%s_%d", wv_dtype_name(mx_dtypes[d]),
                     s);
            ASSERT_OK(wvtest_add_pattern(m, nm, mx_dtypes[d], ndims[s],
                                         shapes[s],
                                         (unsigned)(d * 5 + (size_t)s)));
        }
    }
    ASSERT(roundtrip(m, "all.params", WV_DTYPE_INVALID));
    ASSERT(roundtrip(m, "all.nd", WV_DTYPE_INVALID));
    /* V2 everywhere: no scalar in the set. */
    size_t n;
    unsigned char *b = wvtest_read_file(wvtest_path("all.params"), &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(wv__le32(b + 24), 0xF993FAC9u);
    free(b);
    wv_model_free(m);
}

TEST_IMPL(mxnet_empty_list)
{
    wv_model *m, *r;
    size_t n;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_save(m, wvtest_path("e.params"), NULL));
    unsigned char *b = wvtest_read_file(wvtest_path("e.params"), &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(n, 32);
    free(b);
    ASSERT_OK(wv_model_load(wvtest_path("e.params"), NULL, &r));
    ASSERT_EQ(wv_model_count(r), 0);
    wv_model_free(r);
    wv_model_free(m);
}

/* A scalar makes the writer use V3 records for the whole file. */
TEST_IMPL(mxnet_scalar_writes_v3)
{
    const uint64_t none[1] = {0}, sh[2] = {2, 2};
    wv_model *m;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "w", WV_F32, 2, sh, 1));
    ASSERT_OK(wvtest_add_pattern(m, "step", WV_I64, 0, none, 2));
    ASSERT(roundtrip(m, "s.params", WV_DTYPE_INVALID));
    size_t n;
    unsigned char *b = wvtest_read_file(wvtest_path("s.params"), &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(wv__le32(b + 24), 0xF993FACAu);
    free(b);
    wv_model_free(m);
}

/* Names "0", "1", ... in order are written as an unnamed list. */
TEST_IMPL(mxnet_plain_list_names)
{
    const uint64_t sh[1] = {3};
    wv_model *m;
    size_t n;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "0", WV_F32, 1, sh, 1));
    ASSERT_OK(wvtest_add_pattern(m, "1", WV_F32, 1, sh, 2));
    ASSERT(roundtrip(m, "p.params", WV_DTYPE_INVALID));
    unsigned char *b = wvtest_read_file(wvtest_path("p.params"), &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(wv__le64(b + n - 8), 0);
    free(b);
    wv_model_free(m);
    /* Out of order: a dict. */
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "1", WV_F32, 1, sh, 1));
    ASSERT_OK(wvtest_add_pattern(m, "0", WV_F32, 1, sh, 2));
    ASSERT(roundtrip(m, "q.params", WV_DTYPE_INVALID));
    b = wvtest_read_file(wvtest_path("q.params"), &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(wv__le64(b + n - 9), 1); /* length of "0" */
    free(b);
    wv_model_free(m);
}

TEST_IMPL(mxnet_cast_on_save)
{
    const uint64_t sh[1] = {4};
    const double v[4] = {1.0, -2.5, 65504.0, 0.1};
    wv_model *m, *r;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "x", WV_F64, 1, sh, v, sizeof v,
                           WV_DATA_COPY));
    ASSERT_OK(wvtest_add_pattern(m, "i", WV_I32, 1, sh, 3));
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.cast = WV_F16;
    ASSERT_OK(wv_model_save(m, wvtest_path("c.params"), &so));
    ASSERT_OK(wv_model_load(wvtest_path("c.params"), NULL, &r));
    ASSERT_EQ(wv_tensor_dtype(wv_model_tensor(r, 0)), WV_F16);
    ASSERT_EQ(wv_tensor_dtype(wv_model_tensor(r, 1)), WV_I32);
    const unsigned char *d = wv_tensor_data(wv_model_tensor(r, 0));
    ASSERT_EQ(wv__le16(d), 0x3c00);     /* 1.0 */
    ASSERT_EQ(wv__le16(d + 2), 0xc100); /* -2.5 */
    ASSERT_EQ(wv__le16(d + 4), 0x7bff); /* 65504 */
    ASSERT_MEMEQ(wv_tensor_data(wv_model_tensor(r, 1)),
                 wv_tensor_data(wv_model_tensor(m, 1)), 16);
    wv_model_free(r);
    wv_model_free(m);
}

TEST_IMPL(mxnet_refuses_types_it_lacks)
{
    static const wv_dtype lack[] = {WV_C64, WV_F8_E4M3, WV_F8_E5M2};
    const uint64_t sh[1] = {2};
    for (int i = 0; i < 3; i++) {
        wv_model *m;
        ASSERT_OK(wv_model_new(&m));
        ASSERT_OK(wvtest_add_pattern(m, "z", lack[i], 1, sh, 1));
        int rc = wv_model_save(m, wvtest_path("x.params"), NULL);
        ASSERT_EQ(rc, WV_UNSUPPORTED);
        ASSERT_CONTAINS(wv_model_errmsg(m), "MXNet has no");
        ASSERT_CONTAINS(wv_model_errmsg(m), "'z'");
        ASSERT(access(wvtest_path("x.params"), F_OK) != 0);
        wv_model_free(m);
    }
    /* F8 is a float: cast to F32 makes it writable. */
    wv_model *m;
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.cast = WV_F32;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "z", WV_F8_E4M3, 1, sh, 1));
    ASSERT_OK(wv_model_save(m, wvtest_path("y.params"), &so));
    wv_model_free(m);
}

/* ---- hand-built records ------------------------------------------------- */

TEST_IMPL(mxnet_reads_v1_v3_prev1_and_gpu_context)
{
    static struct bld x;
    const int64_t d2[2] = {2, 3};
    const uint16_t h[6] = {1, 2, 3, 4, 5, 6};
    const int64_t i64 = 42;
    const unsigned char u8[3] = {7, 8, 9};
    list_header(&x, 4);
    v2_record(&x, 0xF993FAC8u, 0, 2, d2, 9, h, sizeof h); /* V1 u16 */
    v2_record(&x, 0xF993FACAu, 0, 0, NULL, 6, &i64, 8);   /* V3 scalar */
    u32(&x, 2);                                           /* pre-V1 */
    u32(&x, 1);
    u32(&x, 3);
    u32(&x, 1);
    u32(&x, 0);
    u32(&x, 3);
    raw(&x, u8, 3);
    /* V2 saved from gpu(1) */
    u32(&x, 0xF993FAC9u);
    u32(&x, 0);
    u32(&x, 1);
    u64(&x, 3);
    u32(&x, 2);
    u32(&x, 1);
    u32(&x, 3);
    raw(&x, u8, 3);
    u64(&x, 4);
    name(&x, "arg:a");
    name(&x, "aux:b");
    name(&x, "c");
    name(&x, "d\xc3\xa9");
    char eb[WV_ERRBUF_SIZE];
    wv_model *m;
    ASSERT_OK(load_mem_err(x.b, x.n, eb, sizeof eb, &m));
    ASSERT_EQ(wv_model_count(m), 4);
    const wv_tensor *t = wv_model_find(m, "arg:a");
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(wv_tensor_dtype(t), WV_U16);
    ASSERT_EQ(wv_tensor_ndim(t), 2);
    ASSERT_MEMEQ(wv_tensor_data(t), h, sizeof h);
    t = wv_model_find(m, "aux:b");
    ASSERT_EQ(wv_tensor_ndim(t), 0);
    ASSERT_EQ(wv_tensor_dtype(t), WV_I64);
    t = wv_model_find(m, "c");
    ASSERT_EQ(wv_tensor_ndim(t), 2);
    ASSERT_EQ(wv_tensor_shape(t)[0], 1);
    ASSERT_EQ(wv_tensor_shape(t)[1], 3);
    ASSERT_EQ(wv_tensor_dtype(t), WV_U8);
    t = wv_model_find(m, "d\xc3\xa9");
    ASSERT_NOT_NULL(t);
    ASSERT_MEMEQ(wv_tensor_data(t), u8, 3);
    wv_model_free(m);
}

static void expect_refusal(const struct bld *x, int code, const char *msg)
{
    char eb[WV_ERRBUF_SIZE];
    wv_model *m = NULL;
    int rc = load_mem_err(x->b, x->n, eb, sizeof eb, &m);
    if (rc != code || m != NULL || strstr(eb, msg) == NULL) {
        fprintf(stderr, "want %d '%s', got %d '%s'\n", code, msg, rc, eb);
        wvtest_failed = 1;
    }
    wv_model_free(m);
}

TEST_IMPL(mxnet_refusals)
{
    static struct bld x;
    const int64_t d1[1] = {2}, neg[1] = {-1};
    const float f[2] = {1, 2};

    list_header(&x, 1);
    v2_record(&x, 0xF993FAC9u, 1, 1, d1, 0, f, 8);
    u64(&x, 0);
    expect_refusal(&x, WV_UNSUPPORTED, "row_sparse");

    list_header(&x, 1);
    v2_record(&x, 0xF993FAC9u, 2, 1, d1, 0, f, 8);
    u64(&x, 0);
    expect_refusal(&x, WV_UNSUPPORTED, "csr");

    list_header(&x, 1);
    u32(&x, 0xF993FAC9u);
    u32(&x, 0);
    u32(&x, 0); /* ndim 0 in V2 */
    u64(&x, 0);
    expect_refusal(&x, WV_FORMAT, "'none' array");

    list_header(&x, 1);
    v2_record(&x, 0xF993FAC9u, 0, 1, neg, 0, f, 0);
    u64(&x, 0);
    expect_refusal(&x, WV_CORRUPT, "dimension 0 is negative");

    list_header(&x, 1);
    v2_record(&x, 0xF993FAC9u, 0, 1, d1, 13, f, 8);
    u64(&x, 0);
    expect_refusal(&x, WV_CORRUPT, "unknown type flag 13");

    list_header(&x, 1);
    v2_record(&x, 0xF993FAC9u, 0, 1, d1, 0, f, 8);
    u64(&x, 1);
    name(&x, "");
    expect_refusal(&x, WV_FORMAT, "array 0: empty name");

    list_header(&x, 2);
    v2_record(&x, 0xF993FAC9u, 0, 1, d1, 0, f, 8);
    v2_record(&x, 0xF993FAC9u, 0, 1, d1, 0, f, 8);
    u64(&x, 2);
    name(&x, "w");
    name(&x, "w");
    expect_refusal(&x, WV_FORMAT, "array 1: duplicate name 'w'");

    list_header(&x, 2);
    v2_record(&x, 0xF993FAC9u, 0, 1, d1, 0, f, 8);
    v2_record(&x, 0xF993FAC9u, 0, 1, d1, 0, f, 8);
    u64(&x, 1);
    name(&x, "w");
    expect_refusal(&x, WV_CORRUPT, "name count 1 is neither 0 nor");

    list_header(&x, 1);
    v2_record(&x, 0xF993FAC9u, 0, 1, d1, 0, f, 8);
    u64(&x, 0);
    u32(&x, 0);
    expect_refusal(&x, WV_CORRUPT, "4 trailing bytes");

    list_header(&x, UINT64_MAX);
    expect_refusal(&x, WV_CORRUPT, "array count");

    /* The element count overflows: 2^40 * 2^40. */
    const int64_t big[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
    list_header(&x, 1);
    v2_record(&x, 0xF993FAC9u, 0, 2, big, 0, f, 0);
    u64(&x, 0);
    expect_refusal(&x, WV_CORRUPT, "shape overflow");

    /* A huge but representable size must not be allocated. */
    const int64_t huge[1] = {(int64_t)1 << 40};
    list_header(&x, 1);
    v2_record(&x, 0xF993FAC9u, 0, 1, huge, 0, f, 8);
    u64(&x, 0);
    expect_refusal(&x, WV_CORRUPT, "truncated data");
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    lo.flags = WV_LOAD_PREAD;
    ASSERT_OK(wvtest_write_file(wvtest_path("huge.params"), x.b, x.n));
    wv_model *m = NULL;
    ASSERT_EQ(wv_model_load(wvtest_path("huge.params"), &lo, &m), WV_CORRUPT);
    ASSERT(m == NULL);
}

/* ---- the symbol file ---------------------------------------------------- */

static int copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = wvtest_read_file(from, &n);
    if (b == NULL)
        return -1;
    int rc = wvtest_write_file(to, b, n);
    free(b);
    return rc;
}

TEST_IMPL(mxnet_symbol_attach_rules)
{
    const char *params = fixture("vgangal101-lenet-net.params");
    char eb[WV_ERRBUF_SIZE];
    wv_model *m;

    /* Epoch with more than four digits; any prefix with dashes. */
    ASSERT_OK(copy_file(params, wvtest_path("my-net-12345.params")));
    const char *sym = "{\"nodes\": [], \"heads\": [[0, 0, 0]]}\n";
    ASSERT_OK(wvtest_write_file(wvtest_path("my-net-symbol.json"), sym,
                                strlen(sym)));
    ASSERT_OK(load_mode(wvtest_path("my-net-12345.params"), 1, eb, sizeof eb,
                        &m));
    ASSERT_STREQ(wv_model_get_meta(m, "mxnet.symbol"), sym);
    wv_model_free(m);

    /* Not a checkpoint name: no attachment. */
    ASSERT_OK(copy_file(params, wvtest_path("my-net-12.params")));
    ASSERT_OK(load_mode(wvtest_path("my-net-12.params"), 0, eb, sizeof eb, &m));
    ASSERT(wv_model_get_meta(m, "mxnet.symbol") == NULL);
    wv_model_free(m);

    /* No symbol file: loads without metadata. */
    ASSERT_OK(copy_file(params, wvtest_path("other-0001.params")));
    ASSERT_OK(load_mode(wvtest_path("other-0001.params"), 0, eb, sizeof eb, &m));
    ASSERT_EQ(wv_model_meta_count(m), 0);
    wv_model_free(m);

    /* An invalid symbol file is an error naming it. */
    const char *bad = "{\"nodes\": [,]}";
    ASSERT_OK(wvtest_write_file(wvtest_path("other-symbol.json"), bad,
                                strlen(bad)));
    m = NULL;
    ASSERT_EQ(load_mode(wvtest_path("other-0001.params"), 0, eb, sizeof eb, &m),
              WV_CORRUPT);
    ASSERT(m == NULL);
    ASSERT_CONTAINS(eb, "other-symbol.json");
    ASSERT_CONTAINS(eb, "not valid JSON");
    const char *trail = "{} {}";
    ASSERT_OK(wvtest_write_file(wvtest_path("other-symbol.json"), trail,
                                strlen(trail)));
    ASSERT_EQ(load_mode(wvtest_path("other-0001.params"), 0, eb, sizeof eb, &m),
              WV_CORRUPT);
    ASSERT_CONTAINS(eb, "trailing characters");
    ASSERT_OK(wvtest_write_file(wvtest_path("other-symbol.json"), "\"\xff\"", 3));
    ASSERT_EQ(load_mode(wvtest_path("other-0001.params"), 0, eb, sizeof eb, &m),
              WV_CORRUPT);
    ASSERT_CONTAINS(eb, "not UTF-8");

    /* Memory loads never look for side files. */
    size_t n;
    unsigned char *b = wvtest_read_file(wvtest_path("my-net-12345.params"), &n);
    ASSERT_NOT_NULL(b);
    ASSERT_OK(load_mem_err(b, n, eb, sizeof eb, &m));
    ASSERT_EQ(wv_model_meta_count(m), 0);
    wv_model_free(m);
    free(b);
}

/* Metadata is not written and does not make the save fail. */
TEST_IMPL(mxnet_save_ignores_metadata)
{
    wv_model *m, *r;
    ASSERT_OK(wv_model_load(fixture("lenet-0001.params"), NULL, &m));
    ASSERT_NOT_NULL(wv_model_get_meta(m, "mxnet.symbol"));
    ASSERT_OK(wv_model_save(m, wvtest_path("ck-0002.params"), NULL));
    ASSERT(access(wvtest_path("ck-symbol.json"), F_OK) != 0);
    ASSERT_OK(wv_model_load(wvtest_path("ck-0002.params"), NULL, &r));
    ASSERT_EQ(wv_model_meta_count(r), 0);
    ASSERT(wvf_same(m, r, 0));
    wv_model_free(r);
    wv_model_free(m);
}

/* Detection is by content: a .params name does not make a file mxnet. */
TEST_IMPL(mxnet_detect_by_content)
{
    const uint64_t sh[1] = {3};
    wv_model *m, *r;
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.format = WV_FMT_MXNET;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "w", WV_F32, 1, sh, 1));
    ASSERT_OK(wv_model_save(m, wvtest_path("weights.bin"), &so));
    ASSERT_OK(wv_model_load(wvtest_path("weights.bin"), NULL, &r));
    ASSERT_STREQ(wv_model_source_format(r), "mxnet");
    wv_model_free(r);
    ASSERT_OK(wv_model_save(m, wvtest_path("st.params"), NULL));
    so.format = WV_FMT_SAFETENSORS;
    ASSERT_OK(wv_model_save(m, wvtest_path("st.params"), &so));
    ASSERT_OK(wv_model_load(wvtest_path("st.params"), NULL, &r));
    ASSERT_STREQ(wv_model_source_format(r), "safetensors");
    wv_model_free(r);
    wv_model_free(m);
}

/* A record past 4 GiB: a sparse file with a 4.5 GiB U8 array (a hole)
 * whose name lies beyond the 4 GiB mark. Mapped, nothing is read. */
TEST_IMPL(mxnet_over_4gib_offsets)
{
    if (sizeof(size_t) < 8)
        return;
    static struct bld x;
    const uint64_t big = (9ull << 29); /* 4.5 GiB */
    list_header(&x, 2);
    const int64_t d1[1] = {(int64_t)big};
    v2_record(&x, 0xF993FAC9u, 0, 1, d1, 3, NULL, 0);
    size_t head = x.n;
    struct bld t;
    t.n = 0;
    const int64_t d2[1] = {2};
    const unsigned char two[2] = {5, 6};
    v2_record(&t, 0xF993FAC9u, 0, 1, d2, 3, two, 2);
    u64(&t, 2);
    name(&t, "huge");
    name(&t, "tail");
    const char *p = wvtest_path("big-0001.params");
    FILE *f = fopen(p, "wb");
    ASSERT_NOT_NULL(f);
    ASSERT_EQ(fwrite(x.b, 1, head, f), head);
    if (fseeko(f, (off_t)(head + big), SEEK_SET) != 0 ||
        fwrite(t.b, 1, t.n, f) != t.n) {
        fclose(f);
        fprintf(stderr, "cannot make a sparse file here; skipped\n");
        return;
    }
    ASSERT_OK(fclose(f));
    char eb[WV_ERRBUF_SIZE];
    wv_model *m;
    ASSERT_OK(load_mode(p, 0, eb, sizeof eb, &m));
    ASSERT_EQ(wv_model_count(m), 2);
    ASSERT_STREQ(wv_tensor_name(wv_model_tensor(m, 0)), "huge");
    ASSERT_EQ(wv_tensor_shape(wv_model_tensor(m, 0))[0], big);
    ASSERT_EQ(wv_tensor_nbytes(wv_model_tensor(m, 0)), big);
    const wv_tensor *tail = wv_model_find(m, "tail");
    ASSERT_NOT_NULL(tail);
    ASSERT_MEMEQ(wv_tensor_data(tail), two, 2);
    wv_model_free(m);
    unlink(p);
}
