/*
 * t_npy.c -- .npy and .npz reading and writing, and the zip container.
 *
 * Round trips through files (mmap and pread loads) and memory, hand-built
 * Fortran-order and big-endian inputs, the real numpy-written fixtures in
 * WV_FIXTURES/npy, np.save-identical headers, refusals with their messages,
 * and the zip writer's ZIP64 and alignment paths.
 */
#include "wv_int.h"
#include "../../src/formats/zip.h"
#include "wvtest.h"
#include "wvsets.h"

static const wv_dtype np_dtypes[] = {
    WV_BOOL, WV_U8,  WV_I8,  WV_U16, WV_I16, WV_U32, WV_I32,
    WV_U64,  WV_I64, WV_F16, WV_F32, WV_F64, WV_C64,
};
#define N_NP_DTYPES (sizeof np_dtypes / sizeof np_dtypes[0])

/* 1 if the two sets hold the same tensors (same order). */

/* Save and reload in both modes; 1 if both reloads equal `m`. */
static int roundtrip(wv_model *m, const char *file, unsigned save_flags)
{
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.flags = save_flags;
    const char *p = wvtest_path(file);
    if (wv_model_save(m, p, &so) != WV_OK) {
        fprintf(stderr, "save %s: %s\n", p, wv_model_errmsg(m));
        return 0;
    }
    int ok = 1;
    for (int mode = 0; mode < 2; mode++) {
        wv_load_opts lo = WV_LOAD_OPTS_INIT;
        char eb[WV_ERRBUF_SIZE] = "";
        lo.flags = mode ? WV_LOAD_PREAD : WV_LOAD_MMAP;
        lo.errbuf = eb;
        lo.errbuf_size = sizeof eb;
        wv_model *r = NULL;
        if (wv_model_load(p, &lo, &r) != WV_OK) {
            fprintf(stderr, "load %s: %s\n", p, eb);
            ok = 0;
            continue;
        }
        ok &= wvf_same(m, r, WVF_BY_NAME);
        wv_model_free(r);
    }
    return ok;
}

static int load_mem_err(const void *buf, size_t len, wv_format fmt,
                        char *eb, size_t ebn, wv_model **out)
{
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    lo.format = fmt;
    lo.errbuf = eb;
    lo.errbuf_size = ebn;
    eb[0] = '\0';
    return wv_model_load_mem(buf, len, &lo, out);
}

/* An npy image with the given dict text (padded like numpy) and data. */
static size_t make_npy(unsigned char *out, size_t cap, const char *dict,
                       const void *data, size_t n)
{
    size_t dl = strlen(dict);
    size_t pad = 64 - (10 + dl + 1) % 64;
    size_t hl = dl + pad + 1;
    if (10 + hl + n > cap)
        return 0;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    wv__put16(out + 8, (uint16_t)hl);
    memcpy(out + 10, dict, dl);
    memset(out + 10 + dl, ' ', pad);
    out[10 + dl + pad] = '\n';
    memcpy(out + 10 + hl, data, n);
    return 10 + hl + n;
}

TEST_IMPL(npy_roundtrip_all_dtypes)
{
    static const uint64_t shapes[][3] = {{2, 3, 1}, {5, 0, 0}, {1, 1, 7}};
    static const int ndims[] = {2, 1, 3};
    for (size_t d = 0; d < N_NP_DTYPES; d++) {
        for (int s = 0; s < 3; s++) {
            wv_model *m;
            ASSERT_OK(wv_model_new(&m));
            ASSERT_OK(wvtest_add_pattern(m, "w", np_dtypes[d], ndims[s],
                                         shapes[s], (unsigned)d));
            ASSERT(roundtrip(m, "w.npy", 0));
            wv_model_free(m);
        }
    }
}

TEST_IMPL(npy_zero_d_and_empty)
{
    const uint64_t none[1] = {0}, empty[3] = {4, 0, 3};
    wv_model *m;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "s", WV_F64, 0, none, 3));
    ASSERT(roundtrip(m, "s.npy", 0));
    wv_model_free(m);
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "e", WV_I16, 3, empty, 3));
    ASSERT(roundtrip(m, "e.npy", 0));
    wv_model_free(m);
}

TEST_IMPL(npy_name_from_path)
{
    const uint64_t sh[1] = {3};
    wv_model *m, *r;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "whatever", WV_F32, 1, sh, 1));
    ASSERT_OK(wv_model_save(m, wvtest_path("layer.0.weight.npy"), NULL));
    ASSERT_OK(wv_model_load(wvtest_path("layer.0.weight.npy"), NULL, &r));
    ASSERT_STREQ(wv_tensor_name(wv_model_tensor(r, 0)), "layer.0.weight");
    ASSERT_STREQ(wv_model_source_format(r), "npy");
    wv_model_free(r);
    size_t n;
    unsigned char *buf = wvtest_read_file(wvtest_path("layer.0.weight.npy"), &n);
    ASSERT_NOT_NULL(buf);
    ASSERT_OK(wv_model_load_mem(buf, n, NULL, &r));
    ASSERT_STREQ(wv_tensor_name(wv_model_tensor(r, 0)), "array");
    wv_model_free(r);
    free(buf);
    wv_model_free(m);
}

/* The header np.save writes: dict, spaces, '\n', 128 bytes in all. */
static int header_is(const unsigned char *b, size_t n, const char *dict)
{
    size_t dl = strlen(dict);
    if (n < 128 || memcmp(b, "\x93NUMPY\x01\x00\x76\x00", 10) != 0 ||
        memcmp(b + 10, dict, dl) != 0 || b[127] != '\n')
        return 0;
    for (size_t i = 10 + dl; i < 127; i++)
        if (b[i] != ' ')
            return 0;
    return 1;
}

TEST_IMPL(npy_header_matches_np_save)
{
    static const struct {
        wv_dtype dt;
        int ndim;
        uint64_t shape[8];
        const char *dict;
    } cases[] = {
        {WV_F32, 2, {3, 4}, "{'descr': '<f4', 'fortran_order': False, "
                            "'shape': (3, 4), }"},
        {WV_BOOL, 0, {0}, "{'descr': '|b1', 'fortran_order': False, "
                          "'shape': (), }"},
        {WV_C64, 1, {0}, "{'descr': '<c8', 'fortran_order': False, "
                         "'shape': (0,), }"},
        {WV_I16, 8, {1, 2, 3, 4, 5, 6, 7, 8},
         "{'descr': '<i2', 'fortran_order': False, "
         "'shape': (1, 2, 3, 4, 5, 6, 7, 8), }"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wv_model *m;
        ASSERT_OK(wv_model_new(&m));
        ASSERT_OK(wvtest_add_pattern(m, "a", cases[i].dt, cases[i].ndim,
                              cases[i].shape, 0));
        ASSERT_OK(wv_model_save(m, wvtest_path("h.npy"), NULL));
        size_t n;
        unsigned char *b = wvtest_read_file(wvtest_path("h.npy"), &n);
        ASSERT_NOT_NULL(b);
        ASSERT(header_is(b, n, cases[i].dict));
        ASSERT_EQ(n, 128 + wv_tensor_nbytes(wv_model_tensor(m, 0)));
        free(b);
        wv_model_free(m);
    }
}

TEST_IMPL(npy_fortran_order)
{
    /* a = [[1, 2, 3], [4, 5, 6]] stored column-major: 1 4 2 5 3 6. */
    const int32_t f[6] = {1, 4, 2, 5, 3, 6};
    const int32_t want[6] = {1, 2, 3, 4, 5, 6};
    unsigned char buf[256];
    char eb[WV_ERRBUF_SIZE];
    size_t n = make_npy(buf, sizeof buf,
                        "{'descr': '<i4', 'fortran_order': True, "
                        "'shape': (2, 3), }",
                        f, sizeof f);
    wv_model *m;
    ASSERT_OK(load_mem_err(buf, n, WV_FMT_AUTO, eb, sizeof eb, &m));
    const wv_tensor *t = wv_model_tensor(m, 0);
    ASSERT_EQ(wv_tensor_ndim(t), 2);
    ASSERT_EQ(wv_tensor_shape(t)[0], 2);
    ASSERT_EQ(wv_tensor_shape(t)[1], 3);
    ASSERT_MEMEQ(wv_tensor_data(t), want, sizeof want);
    wv_model_free(m);

    /* 3-d, big-endian and Fortran at once: shape (2, 2, 2), values
     * a[i][j][k] = 4i + 2j + k. */
    uint16_t fb[8];
    for (int k = 0, o = 0; k < 2; k++)
        for (int j = 0; j < 2; j++)
            for (int i = 0; i < 2; i++, o++) {
                uint16_t v = (uint16_t)(4 * i + 2 * j + k);
                fb[o] = (uint16_t)((v >> 8) | (v << 8));
            }
    n = make_npy(buf, sizeof buf,
                 "{'shape': (2, 2, 2), 'fortran_order': True, "
                 "'descr': '>u2'}",
                 fb, sizeof fb);
    ASSERT_OK(load_mem_err(buf, n, WV_FMT_NPY, eb, sizeof eb, &m));
    const uint16_t *d = wv_tensor_data(wv_model_tensor(m, 0));
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(d[i], i);
    wv_model_free(m);
}

TEST_IMPL(npy_big_endian_and_byteorders)
{
    unsigned char buf[256];
    char eb[WV_ERRBUF_SIZE];
    wv_model *m;
    const unsigned char be[8] = {0, 0, 1, 2, 0x80, 0, 0, 1};
    size_t n = make_npy(buf, sizeof buf,
                        "{\"descr\": \">i4\", \"fortran_order\": False, "
                        "\"shape\": (2,)}",
                        be, sizeof be);
    ASSERT_OK(load_mem_err(buf, n, WV_FMT_NPY, eb, sizeof eb, &m));
    const int32_t *v = wv_tensor_data(wv_model_tensor(m, 0));
    ASSERT_EQ(v[0], 0x102);
    ASSERT_EQ(v[1], (int32_t)0x80000001u);
    wv_model_free(m);

    /* complex64: each float32 half is swapped on its own. */
    float c[2] = {1.5f, -2.0f};
    unsigned char cb[8];
    memcpy(cb, c, 8);
    wv__bswap(cb, 2, 4);
    n = make_npy(buf, sizeof buf,
                 "{'descr': '>c8', 'fortran_order': False, 'shape': (), }",
                 cb, sizeof cb);
    ASSERT_OK(load_mem_err(buf, n, WV_FMT_NPY, eb, sizeof eb, &m));
    ASSERT_MEMEQ(wv_tensor_data(wv_model_tensor(m, 0)), c, 8);
    wv_model_free(m);

    static const char *const orders[] = {"=", "|", "<", ""};
    for (int i = 0; i < 4; i++) {
        char dict[128];
        const uint32_t le[2] = {7, 9};
        snprintf(dict, sizeof dict,
                 "{'descr': '%su4', 'fortran_order': False, 'shape': (2L,)}",
                 orders[i]);
        n = make_npy(buf, sizeof buf, dict, le, sizeof le);
        ASSERT_OK(load_mem_err(buf, n, WV_FMT_NPY, eb, sizeof eb, &m));
        ASSERT_MEMEQ(wv_tensor_data(wv_model_tensor(m, 0)), le, 8);
        wv_model_free(m);
    }
    /* '>' on single-byte types needs no swap. */
    n = make_npy(buf, sizeof buf,
                 "{'descr': '>u1', 'fortran_order': False, 'shape': (2,)}",
                 "\x01\x02", 2);
    ASSERT_OK(load_mem_err(buf, n, WV_FMT_NPY, eb, sizeof eb, &m));
    ASSERT_MEMEQ(wv_tensor_data(wv_model_tensor(m, 0)), "\x01\x02", 2);
    wv_model_free(m);
}

TEST_IMPL(npy_mmap_borrows_pread_owns)
{
    const uint64_t sh[2] = {16, 16};
    wv_model *m, *r;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "t", WV_F32, 2, sh, 5));
    ASSERT_OK(wv_model_save(m, wvtest_path("t.npy"), NULL));
    ASSERT_OK(wv_model_load(wvtest_path("t.npy"), NULL, &r));
    ASSERT(r->tensors[0].owned == NULL); /* zero-copy from the mapping */
    ASSERT(wvf_same(m, r, WVF_BY_NAME));
    wv_model_free(r);
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    lo.flags = WV_LOAD_PREAD;
    ASSERT_OK(wv_model_load(wvtest_path("t.npy"), &lo, &r));
    ASSERT(wvf_same(m, r, WVF_BY_NAME));
    wv_model_free(r);
    wv_model_free(m);
}

TEST_IMPL(npz_stored_and_deflated)
{
    wv_model *m;
    ASSERT_OK(wv_model_new(&m));
    for (size_t d = 0; d < N_NP_DTYPES; d++) {
        char name[64];
        const uint64_t sh[3] = {3, (uint64_t)d, 5};
        snprintf(name, sizeof name, "block/%zu/%s", d,
                 wv_dtype_name(np_dtypes[d]));
        ASSERT_OK(wvtest_add_pattern(m, name, np_dtypes[d], 3, sh,
                                     (unsigned)d));
    }
    const uint64_t sc[1] = {0};
    ASSERT_OK(wvtest_add_pattern(m, "scalar", WV_F32, 0, sc, 1));
    /* Large enough that deflate streams several output buffers. */
    const uint64_t big[1] = {3u << 20};
    ASSERT_OK(wvtest_add_pattern(m, "big", WV_U8, 1, big, 9));
    ASSERT(roundtrip(m, "s.npz", 0));
    ASSERT(roundtrip(m, "c.npz", WV_SAVE_COMPRESS));

    /* Stored members borrow from the mapping; deflated ones are owned. */
    wv_model *r;
    ASSERT_OK(wv_model_load(wvtest_path("s.npz"), NULL, &r));
    ASSERT(wv_model_find(r, "big") != NULL);
    ASSERT(r->tensors[wv_model_count(r) - 1].owned == NULL);
    ASSERT_STREQ(wv_model_source_format(r), "npz");
    wv_model_free(r);
    ASSERT_OK(wv_model_load(wvtest_path("c.npz"), NULL, &r));
    ASSERT(r->tensors[wv_model_count(r) - 1].owned != NULL);
    wv_model_free(r);
    size_t sn, cn;
    unsigned char *sb = wvtest_read_file(wvtest_path("s.npz"), &sn);
    unsigned char *cb = wvtest_read_file(wvtest_path("c.npz"), &cn);
    ASSERT(sb && cb && cn < sn / 2);
    free(sb);
    free(cb);
    wv_model_free(m);

    /* An empty set gives an empty zip, which reads back empty. */
    ASSERT_OK(wv_model_new(&m));
    ASSERT(roundtrip(m, "empty.npz", 0));
    wv_model_free(m);
}

TEST_IMPL(npz_zip64_many_members)
{
    /* More than 65535 members forces the ZIP64 end records. */
    wv_model *m;
    ASSERT_OK(wv_model_new(&m));
    const uint64_t sh[1] = {1};
    for (unsigned i = 0; i < 66000; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%u", i);
        ASSERT_OK(wvtest_add_pattern(m, name, WV_U8, 1, sh, i));
    }
    ASSERT(roundtrip(m, "many.npz", 0));
    wv_model_free(m);
}

TEST_IMPL(npz_cast_and_refusals)
{
    const uint64_t sh[1] = {4};
    wv_model *m, *r;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "a", WV_F32, 1, sh, 0));
    float *f = (float *)(uintptr_t)wv_tensor_data(wv_model_tensor(m, 0));
    for (int i = 0; i < 4; i++)
        f[i] = (float)i * 0.5f;
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.cast = WV_F16;
    ASSERT_OK(wv_model_save(m, wvtest_path("h.npy"), &so));
    ASSERT_OK(wv_model_load(wvtest_path("h.npy"), NULL, &r));
    ASSERT_EQ(wv_tensor_dtype(wv_model_tensor(r, 0)), WV_F16);
    uint16_t h[4];
    memcpy(h, wv_tensor_data(wv_model_tensor(r, 0)), sizeof h);
    ASSERT_EQ(h[1], 0x3800); /* 0.5 */
    wv_model_free(r);
    for (int c = 0; c < 2; c++) {
        so.flags = c ? WV_SAVE_COMPRESS : 0;
        ASSERT_OK(wv_model_save(m, wvtest_path("h.npz"), &so));
        ASSERT_OK(wv_model_load(wvtest_path("h.npz"), NULL, &r));
        ASSERT_EQ(h[3], 0x3e00); /* 1.5 */
        ASSERT_MEMEQ(wv_tensor_data(wv_model_tensor(r, 0)), h, 8);
        wv_model_free(r);
    }
    /* No bfloat16 in numpy. */
    so.cast = WV_BF16;
    so.flags = 0;
    ASSERT(wv_model_save(m, wvtest_path("b.npy"), &so) != WV_OK);
    ASSERT_CONTAINS(wv_model_errmsg(m), "npy has no bfloat16 type");
    ASSERT_CONTAINS(wv_model_errmsg(m), "--dtype F32");
    ASSERT(wv_model_save(m, wvtest_path("b.npz"), &so) != WV_OK);
    ASSERT_CONTAINS(wv_model_errmsg(m), "npy has no bfloat16 type");
    /* the message names the output file and its format */
    ASSERT_CONTAINS(wv_model_errmsg(m), "b.npz: cannot write it as npz: ");
    so.cast = WV_DTYPE_INVALID;
    ASSERT_OK(wvtest_add_pattern(m, "e4", WV_F8_E4M3, 1, sh, 0));
    ASSERT(wv_model_save(m, wvtest_path("b.npz"), &so) != WV_OK);
    ASSERT_CONTAINS(wv_model_errmsg(m), "float8_e4m3");
    /* One array per npy. */
    ASSERT(wv_model_save(m, wvtest_path("two.npy"), &so) != WV_OK);
    ASSERT_CONTAINS(wv_model_errmsg(m),
                    "npy holds one array; this set has 2 tensors (write "
                    ".npz)");
    wv_model_free(m);
}

TEST_IMPL(npy_fixtures)
{
    wv_model *m;
    ASSERT_OK(wv_model_load(wvtest_fixture("npy", "test.npy"), NULL, &m));
    const wv_tensor *t = wv_model_tensor(m, 0);
    ASSERT_STREQ(wv_tensor_name(t), "test");
    ASSERT_EQ(wv_tensor_dtype(t), WV_I64);
    ASSERT_EQ(wv_tensor_shape(t)[0], 10);
    int64_t v[10];
    memcpy(v, wv_tensor_data(t), sizeof v);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(v[i], i);
    wv_model_free(m);

    for (int mode = 0; mode < 2; mode++) {
        wv_load_opts lo = WV_LOAD_OPTS_INIT;
        lo.flags = mode ? WV_LOAD_PREAD : 0;
        ASSERT_OK(wv_model_load(wvtest_fixture("npy", "test.npz"), &lo, &m));
        ASSERT_EQ(wv_model_count(m), 2);
        const wv_tensor *x = wv_model_find(m, "x");
        const wv_tensor *x1 = wv_model_find(m, "x_plus_one");
        ASSERT(x && x1);
        /* Borrowed zip payloads need not be 8-byte aligned. */
        int64_t a[10], b[10];
        memcpy(a, wv_tensor_data(x), sizeof a);
        memcpy(b, wv_tensor_data(x1), sizeof b);
        for (int i = 0; i < 10; i++) {
            ASSERT_EQ(a[i], i);
            ASSERT_EQ(b[i], i + 1);
        }
        wv_model_free(m);
    }

    static const char *const ones[] = {"python3.npy", "win64python2.npy"};
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(wv_model_load(wvtest_fixture("npy", ones[i]), NULL, &m));
        t = wv_model_tensor(m, 0);
        ASSERT_EQ(wv_tensor_dtype(t), WV_F64);
        ASSERT_EQ(wv_tensor_shape(t)[0], 2);
        double dv[2];
        memcpy(dv, wv_tensor_data(t), sizeof dv);
        ASSERT(dv[0] == 1.0 && dv[1] == 1.0);
        wv_model_free(m);
    }

    static const char *const objs[] = {"py2-objarr.npy", "py2-objarr.npz",
                                       "py3-objarr.npy", "py3-objarr.npz"};
    for (int i = 0; i < 4; i++) {
        char eb[WV_ERRBUF_SIZE] = "";
        wv_load_opts lo = WV_LOAD_OPTS_INIT;
        lo.errbuf = eb;
        lo.errbuf_size = sizeof eb;
        ASSERT_EQ(wv_model_load(wvtest_fixture("npy", objs[i]), &lo, &m),
                  WV_FORMAT);
        ASSERT(m == NULL);
        ASSERT_CONTAINS(eb, "object arrays");
        ASSERT_CONTAINS(eb, "pickle");
    }
}

TEST_IMPL(npy_rejections)
{
    static const struct {
        const char *dict;
        size_t data;
        int code;
        const char *msg;
    } cases[] = {
        {"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 8,
         WV_FORMAT, "pickle"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
         4, WV_FORMAT, "structured dtypes"},
        {"{'descr': '<c16', 'fortran_order': False, 'shape': (1,)}", 16,
         WV_FORMAT, "'<c16'"},
        {"{'descr': '<U3', 'fortran_order': False, 'shape': (1,)}", 12,
         WV_FORMAT, "'<U3'"},
        {"{'descr': '<f4', 'fortran_order': 1, 'shape': (1,)}", 4,
         WV_CORRUPT, "fortran_order is not a bool"},
        {"{'descr': '<f4', 'fortran_order': False}", 4, WV_CORRUPT,
         "missing key 'shape'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}",
         4, WV_CORRUPT, "unexpected extra key 'x'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 4,
         WV_CORRUPT, "negative"},
        {"{'descr': '<f4', 'fortran_order': False, "
         "'shape': (1,1,1,1,1,1,1,1,1)}",
         4, WV_FORMAT, "more than 8 dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 4,
         WV_CORRUPT, "truncated data"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 8,
         WV_CORRUPT, "trailing bytes"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk", 4,
         WV_CORRUPT, "trailing characters"},
        {"('descr', '<f4')", 4, WV_CORRUPT, "not a dict"},
    };
    unsigned char buf[512], zeros[16] = {0};
    char eb[WV_ERRBUF_SIZE];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wv_model *m = NULL;
        size_t n = make_npy(buf, sizeof buf, cases[i].dict, zeros,
                            cases[i].data);
        ASSERT(n > 0);
        int rc = load_mem_err(buf, n, WV_FMT_AUTO, eb, sizeof eb, &m);
        if (rc != cases[i].code || strstr(eb, cases[i].msg) == NULL)
            fprintf(stderr, "case %zu: rc %d, message '%s'\n", i, rc, eb);
        ASSERT_EQ(rc, cases[i].code);
        ASSERT_CONTAINS(eb, cases[i].msg);
        ASSERT(m == NULL);
    }
    /* Every truncation of a valid file is refused, never crashes. */
    const float one = 1.0f;
    size_t n = make_npy(buf, sizeof buf,
                        "{'descr': '<f4', 'fortran_order': False, "
                        "'shape': (1,)}",
                        &one, 4);
    for (size_t cut = 0; cut < n; cut++) {
        wv_model *m = NULL;
        ASSERT(load_mem_err(buf, cut, WV_FMT_NPY, eb, sizeof eb, &m) !=
               WV_OK);
        ASSERT(m == NULL);
    }
}

TEST_IMPL(zip_writer_align_and_reader)
{
    struct wv__err e = {0}, *err = &e;
    struct wv__wfile f;
    struct wv__zipw w;
    const char *p = wvtest_path("a.zip");
    unsigned char payload[1000];
    wvtest_fill_pattern(payload, sizeof payload, WV_U8, 1);

    ASSERT_OK(wv__wfile_open(&f, p, err));
    wv__zipw_init(&w, &f, err);
    ASSERT_OK(wv__zipw_begin(&w, "archive/data.pkl", WV__ZIP_STORED, 3, 1));
    wv__zipw_write(&w, "abc", 3);
    ASSERT_OK(wv__zipw_end(&w));
    ASSERT_OK(wv__zipw_begin(&w, "archive/data/0", WV__ZIP_STORED,
                             sizeof payload, 64));
    wv__zipw_write(&w, payload, sizeof payload);
    ASSERT_OK(wv__zipw_end(&w));
    ASSERT_OK(wv__zipw_begin(&w, "archive/big", WV__ZIP_DEFLATED, UINT64_MAX,
                             1));
    for (int i = 0; i < 100; i++)
        wv__zipw_write(&w, payload, sizeof payload);
    ASSERT_OK(wv__zipw_end(&w));
    ASSERT_OK(wv__zipw_finish(&w));
    wv__zipw_release(&w);
    ASSERT_OK(wv__wfile_commit(&f));

    size_t n;
    unsigned char *b = wvtest_read_file(p, &n);
    ASSERT_NOT_NULL(b);
    struct wv__src src = {.fd = -1, .size = n, .map = b, .name = "a.zip"};
    struct wv__zip z;
    ASSERT_OK(wv__zip_open(&z, &src, err));
    ASSERT_EQ(z.n_ents, 3);
    ASSERT_STREQ(z.ents[1].name, "archive/data/0");
    ASSERT_EQ(z.ents[1].data_off % 64, 0);
    ASSERT_EQ(z.ents[2].size, 100 * sizeof payload);
    const unsigned char *d;
    void *owned;
    ASSERT_OK(wv__zip_entry_data(&z, &z.ents[1], &d, &owned, err));
    ASSERT(owned == NULL);
    ASSERT_MEMEQ(d, payload, sizeof payload);
    ASSERT_OK(wv__zip_entry_data(&z, &z.ents[2], &d, &owned, err));
    ASSERT(owned != NULL);
    ASSERT_MEMEQ(d + 99 * sizeof payload, payload, sizeof payload);
    wv__free(owned);
    wv__zip_close(&z);

    /* The npz loader names a non-npy zip clearly (forced: detection
     * sends a zip with archive/data.pkl to the PyTorch reader). */
    wv_model *m;
    char eb[WV_ERRBUF_SIZE];
    ASSERT_EQ(load_mem_err(b, n, WV_FMT_NPZ, eb, sizeof eb, &m), WV_FORMAT);
    ASSERT_CONTAINS(eb, "member 'archive/data.pkl' is not a .npy file");
    free(b);
}

TEST_IMPL(npz_malformed_corpus)
{
    /* Each file of tests/data/malformed/npz is refused in memory too.
     * crc_mismatch is not in the list: a stored member borrowed from memory
     * is not read at load time (zero-copy); pread loads check it, which
     * tests/malformed.sh covers through `wv verify`. */
    static const char *const names[] = {
        "zip_bomb_ratio", "zip_bomb_zip64",
        "inflated_size_too_small", "overlapping_members",
        "duplicate_member_names", "encrypted_member", "unknown_method"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[1024], ex[256] = "";
        snprintf(p, sizeof p, "%s/malformed/npz/%s.bin", WV_TEST_DATA,
                 names[i]);
        size_t n, en;
        unsigned char *b = wvtest_read_file(wvtest_input(p), &n);
        snprintf(p + strlen(p), sizeof p - strlen(p), ".expect");
        unsigned char *e = wvtest_read_file(wvtest_input(p), &en);
        ASSERT(b && e);
        memcpy(ex, e, en < sizeof ex ? en : sizeof ex - 1);
        ex[strcspn(ex, "\n")] = '\0';
        wv_model *m;
        char eb[WV_ERRBUF_SIZE];
        ASSERT(load_mem_err(b, n, WV_FMT_NPZ, eb, sizeof eb, &m) != WV_OK);
        ASSERT_CONTAINS(eb, ex);
        free(b);
        free(e);
    }
}

TEST_IMPL(npz_checksums_bound_and_names)
{
    /* 1. A flipped byte in a stored member: the documented zero-copy mmap
     * load does not read it; WV_LOAD_CHECKSUMS and pread loads refuse it
     * naming the file and the member. */
    wv_model *m, *r;
    ASSERT_OK(wv_model_new(&m));
    const uint64_t sh[1] = {1000};
    ASSERT_OK(wvtest_add_pattern(m, "w", WV_F32, 1, sh, 3));
    ASSERT_OK(wv_model_save(m, wvtest_path("crc.npz"), NULL));
    wv_model_free(m);
    size_t n;
    unsigned char *b = wvtest_read_file(wvtest_path("crc.npz"), &n);
    ASSERT(b != NULL && n > 100);
    uint32_t cd_off = (uint32_t)b[n - 6] | (uint32_t)b[n - 5] << 8 |
                      (uint32_t)b[n - 4] << 16 | (uint32_t)b[n - 3] << 24;
    b[cd_off - 16 - 5] ^= 0x04; /* in the payload, before the descriptor */
    ASSERT_OK(wvtest_write_file(wvtest_path("crc.npz"), b, n));
    free(b);
    char eb[WV_ERRBUF_SIZE] = "";
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;
    ASSERT_OK(wv_model_load(wvtest_path("crc.npz"), &o, &r));
    wv_model_free(r);
    o.flags = WV_LOAD_CHECKSUMS;
    ASSERT_EQ(wv_model_load(wvtest_path("crc.npz"), &o, &r),
              WV_CORRUPT_CHECKSUM);
    ASSERT_CONTAINS(eb, "crc.npz: member 'w.npy': crc mismatch");
    o.flags = WV_LOAD_PREAD;
    ASSERT_EQ(wv_model_load(wvtest_path("crc.npz"), &o, &r),
              WV_CORRUPT_CHECKSUM);

    /* 2. The amplification bound: 4 MiB of zeros deflate to a few KiB,
     * past 64x + 1 MiB; max_expand or WV_MAX_EXPAND lets it through. */
    ASSERT_OK(wv_model_new(&m));
    const uint64_t z[1] = {4u << 20};
    void *zeros = calloc(1, 4u << 20);
    ASSERT(zeros != NULL);
    ASSERT_OK(wv_model_add(m, "z", WV_U8, 1, z, zeros, 4u << 20, 0));
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.flags = WV_SAVE_COMPRESS;
    ASSERT_OK(wv_model_save(m, wvtest_path("zeros.npz"), &so));
    wv_model_free(m);
    free(zeros);
    o.flags = 0;
    ASSERT_EQ(wv_model_load(wvtest_path("zeros.npz"), &o, &r), WV_RANGE);
    ASSERT_CONTAINS(eb, "'z.npy' would take reading this file past");
    ASSERT_CONTAINS(eb, "64 times its size plus 1 MiB");
    o.max_expand = 5000;
    ASSERT_OK(wv_model_load(wvtest_path("zeros.npz"), &o, &r));
    wv_model_free(r);
    o.max_expand = 0;
    setenv("WV_MAX_EXPAND", "5000", 1);
    ASSERT_OK(wv_model_load(wvtest_path("zeros.npz"), &o, &r));
    wv_model_free(r);
    setenv("WV_MAX_EXPAND", "bogus", 1); /* ignored: the default holds */
    ASSERT_EQ(wv_model_load(wvtest_path("zeros.npz"), &o, &r), WV_RANGE);
    unsetenv("WV_MAX_EXPAND");

    /* 3. Names that would escape a directory are not written. */
    static const char *const bad[] = {"../../etc/x", "/etc/x", "a\\b",
                                      "a/../../b", "a\nb", "\x1b[2J"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_OK(wv_model_new(&m));
        const uint64_t one[1] = {1};
        float f = 1;
        ASSERT_OK(wv_model_add(m, bad[i], WV_F32, 1, one, &f, 4, 0));
        ASSERT_EQ(wv_model_save(m, wvtest_path("bad.npz"), NULL), WV_FORMAT);
        ASSERT_CONTAINS(wv_model_errmsg(m), "name unsafe for an npz member");
        ASSERT(strchr(wv_model_errmsg(m), '\n') == NULL);
        ASSERT(strchr(wv_model_errmsg(m), '\x1b') == NULL);
        wv_model_free(m);
    }
    /* ... while dotted and nested names stay fine. */
    ASSERT_OK(wv_model_new(&m));
    const uint64_t one[1] = {1};
    float f = 1;
    ASSERT_OK(wv_model_add(m, "a/b..c/.x", WV_F32, 1, one, &f, 4, 0));
    ASSERT_OK(wv_model_save(m, wvtest_path("ok.npz"), NULL));
    wv_model_free(m);
    ASSERT_OK(wv_model_load(wvtest_path("ok.npz"), NULL, &r));
    ASSERT(wv_model_find(r, "a/b..c/.x") != NULL);
    wv_model_free(r);
}
