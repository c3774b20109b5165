/*
 * t_pth.c -- PyTorch torch.save reading and writing, and the restricted
 * pickle reader.
 *
 * Round trips of every dtype the format has (mmap and pread loads, flat
 * and nested, 0-d and empty tensors), metadata through both writer modes,
 * casts, the real fixtures in WV_FIXTURES/pth with exact names, dtypes,
 * shapes and values (Fortran strides, legacy stream, the tinygrad triple),
 * hand-assembled pickles for views, shared storages, big-endian archives
 * and refusals, and the text forms of ints and floats.
 */
#include "wv_int.h"
#include "../../src/formats/pickle.h"
#include "../../src/formats/zip.h"
#include "wvtest.h"
#include "wvsets.h"

static const wv_dtype pth_dtypes[] = {
    WV_BOOL, WV_U8,  WV_I8,  WV_U16, WV_I16,     WV_U32,     WV_I32, WV_U64,
    WV_I64,  WV_F16, WV_BF16, WV_F32, WV_F64, WV_C64, WV_F8_E4M3, WV_F8_E5M2,
};
#define N_DT (sizeof pth_dtypes / sizeof pth_dtypes[0])

static char *fpath(const char *name)
{
    return wvtest_fixture("pth", name);
}

static wv_model *all_dtypes_set(void)
{
    wv_model *m = NULL;
    static const uint64_t s0[1] = {0}, s1[1] = {7}, s2[2] = {3, 4},
                          s3[3] = {3, 0, 2},
                          s8[8] = {1, 2, 1, 2, 1, 2, 1, 2};
    char name[64];
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    for (size_t i = 0; i < N_DT; i++) {
        const char *dn = wv_dtype_name(pth_dtypes[i]);
        snprintf(name, sizeof name, "%s.scalar", dn);
        wvtest_add_pattern(m, name, pth_dtypes[i], 0, s0, (unsigned)i);
        snprintf(name, sizeof name, "%s.vec", dn);
        wvtest_add_pattern(m, name, pth_dtypes[i], 1, s1, (unsigned)i + 1);
        snprintf(name, sizeof name, "%s.mat", dn);
        wvtest_add_pattern(m, name, pth_dtypes[i], 2, s2, (unsigned)i + 2);
        snprintf(name, sizeof name, "%s.empty", dn);
        wvtest_add_pattern(m, name, pth_dtypes[i], 3, s3, (unsigned)i + 3);
        snprintf(name, sizeof name, "%s.rank8", dn);
        wvtest_add_pattern(m, name, pth_dtypes[i], 8, s8, (unsigned)i + 4);
    }
    return m;
}

static int save_as(wv_model *m, const char *path, unsigned flags,
                   wv_dtype cast)
{
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.format = WV_FMT_PTH;
    so.flags = flags;
    so.cast = cast;
    return wv_model_save(m, path, &so);
}

static int load_as(const char *path, unsigned flags, wv_model **out)
{
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    lo.flags = flags;
    return wv_model_load(path, &lo, out);
}

TEST_IMPL(pth_roundtrip_all_dtypes)
{
    wv_model *m = all_dtypes_set(), *r = NULL;
    ASSERT_NOT_NULL(m);
    ASSERT_EQ(wv_model_count(m), N_DT * 5);
    ASSERT_OK(wv_model_set_meta(m, "epoch", "3"));
    ASSERT_OK(wv_model_set_meta(m, "note", "h\xc3\xa9llo"));
    const unsigned flags[2] = {0, WV_SAVE_NEST};
    for (int f = 0; f < 2; f++) {
        const char *p = wvtest_path(f ? "nest.pth" : "flat.pth");
        ASSERT_OK(save_as(m, p, flags[f], WV_DTYPE_INVALID));
        for (unsigned lf = 0; lf < 2; lf++) {
            ASSERT_OK(load_as(p, lf, &r));
            ASSERT_STREQ(wv_model_source_format(r), "pth");
            ASSERT(wvf_same(m, r, WVF_META_ORDER));
            wv_model_free(r);
            r = NULL;
        }
        /* From memory too. */
        size_t n;
        unsigned char *buf = wvtest_read_file(p, &n);
        ASSERT_NOT_NULL(buf);
        ASSERT_OK(wv_model_load_mem(buf, n, NULL, &r));
        ASSERT(wvf_same(m, r, WVF_META_ORDER));
        wv_model_free(r);
        r = NULL;
        free(buf);
    }
    wv_model_free(m);
}

TEST_IMPL(pth_writer_layout)
{
    /* Records named and aligned as FORMATS.md 2.1/2.2 describe. */
    wv_model *m = NULL;
    uint64_t sh[1] = {5};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "a", WV_F32, 1, sh, 1));
    ASSERT_OK(wvtest_add_pattern(m, "b", WV_I64, 1, sh, 2));
    const char *p = wvtest_path("layout.pth");
    ASSERT_OK(save_as(m, p, 0, WV_DTYPE_INVALID));
    size_t n;
    unsigned char *buf = wvtest_read_file(p, &n);
    ASSERT_NOT_NULL(buf);
    struct wv__src src = {.fd = -1, .size = n, .map = buf,
                          .name = "layout.pth"};
    struct wv__err err = {0};
    struct wv__zip z;
    ASSERT_OK(wv__zip_open(&z, &src, &err));
    static const char *names[] = {"archive/data.pkl", "archive/byteorder",
                                  "archive/data/0", "archive/data/1",
                                  "archive/version"};
    ASSERT_EQ(z.n_ents, 5);
    for (size_t i = 0; i < 5; i++) {
        ASSERT_STREQ(z.ents[i].name, names[i]);
        ASSERT_EQ(z.ents[i].method, WV__ZIP_STORED);
        ASSERT_EQ(z.ents[i].data_off % 64, 0);
    }
    ASSERT_EQ(z.ents[2].size, 20);
    ASSERT_EQ(z.ents[3].size, 40);
    ASSERT_MEMEQ(buf + z.ents[1].data_off, "little", 6);
    ASSERT_MEMEQ(buf + z.ents[4].data_off, "3\n", 2);
    ASSERT_MEMEQ(buf + z.ents[0].data_off, "\x80\x02", 2);
    wv__zip_close(&z);
    free(buf);
    wv_model_free(m);
}

TEST_IMPL(pth_cast_on_save)
{
    wv_model *m = NULL, *r = NULL;
    uint64_t sh[1] = {3};
    float v[3] = {1.0f, -2.5f, 3.0f};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "w", WV_F32, 1, sh, v, sizeof v,
                           WV_DATA_COPY));
    ASSERT_OK(wvtest_add_pattern(m, "i", WV_I32, 1, sh, 3));
    const char *p = wvtest_path("cast.pth");
    ASSERT_OK(save_as(m, p, 0, WV_BF16));
    ASSERT_OK(load_as(p, 0, &r));
    ASSERT_EQ(wv_tensor_dtype(wv_model_find(r, "w")), WV_BF16);
    ASSERT_EQ(wv_tensor_dtype(wv_model_find(r, "i")), WV_I32);
    const unsigned char *d = wv_tensor_data(wv_model_find(r, "w"));
    ASSERT_EQ(d[0] | d[1] << 8, 0x3f80);
    ASSERT_EQ(d[2] | d[3] << 8, 0xc020);
    wv_model_free(r);
    wv_model_free(m);
}

TEST_IMPL(pth_nest_conflict_refused)
{
    wv_model *m = NULL;
    uint64_t sh[1] = {2};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "a", WV_F32, 1, sh, 1));
    ASSERT_OK(wvtest_add_pattern(m, "a.b", WV_F32, 1, sh, 2));
    ASSERT_EQ(save_as(m, wvtest_path("c.pth"), WV_SAVE_NEST, WV_DTYPE_INVALID),
              WV_FORMAT);
    ASSERT_CONTAINS(wv_model_errmsg(m), "cannot nest");
    /* Flat is fine, and so are empty segments when nesting. */
    ASSERT_OK(save_as(m, wvtest_path("c2.pth"), 0, WV_DTYPE_INVALID));
    wv_model_free(m);
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "x..y", WV_F32, 1, sh, 1));
    ASSERT_OK(wvtest_add_pattern(m, "z.", WV_F32, 1, sh, 1));
    ASSERT_EQ(save_as(m, wvtest_path("c3.pth"), WV_SAVE_NEST, WV_DTYPE_INVALID),
              WV_OK);
    wv_model *r = NULL;
    ASSERT_OK(load_as(wvtest_path("c3.pth"), 0, &r));
    ASSERT(wvf_same(m, r, WVF_META_ORDER));
    wv_model_free(r);
    wv_model_free(m);
}

/* ---- fixtures ------------------------------------------------------------ */

TEST_IMPL(pth_fixture_test_pt)
{
    wv_model *m = NULL;
    ASSERT_OK(load_as(fpath("test.pt"), 0, &m));
    ASSERT_EQ(wv_model_count(m), 1);
    const wv_tensor *t = wv_model_find(m, "test");
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(wv_tensor_dtype(t), WV_I64);
    ASSERT_EQ(wv_tensor_ndim(t), 2);
    ASSERT_EQ(wv_tensor_shape(t)[0], 2);
    ASSERT_EQ(wv_tensor_shape(t)[1], 4);
    wv_model_free(m);
    ASSERT_OK(load_as(fpath("test_with_key.pt"), WV_LOAD_PREAD, &m));
    ASSERT_NOT_NULL(wv_model_find(m, "model_state_dict.test"));
    wv_model_free(m);
}

TEST_IMPL(pth_fixture_fortran)
{
    /* torch.arange(24).reshape(...) stored with Fortran strides (1, 2, 6):
     * element [i][j][k] is storage[i + 2j + 6k]. */
    wv_model *m = NULL;
    ASSERT_OK(load_as(fpath("fortran_tensor_3d.pth"), 0, &m));
    const wv_tensor *t = wv_model_find(m, "tensor_fortran");
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(wv_tensor_dtype(t), WV_I64);
    ASSERT_EQ(wv_tensor_ndim(t), 3);
    ASSERT_EQ(wv_tensor_shape(t)[0], 2);
    ASSERT_EQ(wv_tensor_shape(t)[1], 3);
    ASSERT_EQ(wv_tensor_shape(t)[2], 4);
    /* The record holds storage[0..24); compare with it read directly. */
    size_t n;
    unsigned char *buf = wvtest_read_file(fpath("fortran_tensor_3d.pth"),
                                          &n);
    ASSERT_NOT_NULL(buf);
    struct wv__src src = {.fd = -1, .size = n, .map = buf, .name = "f"};
    struct wv__err err = {0};
    struct wv__zip z;
    ASSERT_OK(wv__zip_open(&z, &src, &err));
    const unsigned char *st = NULL;
    for (size_t i = 0; i < z.n_ents; i++)
        if (strcmp(z.ents[i].name, "fortran_tensor_3d/data/0") == 0)
            st = buf + z.ents[i].data_off;
    ASSERT_NOT_NULL(st);
    const unsigned char *d = wv_tensor_data(t);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                ASSERT_MEMEQ(d + 8 * (i * 12 + j * 4 + k),
                             st + 8 * (i + 2 * j + 6 * k), 8);
    wv__zip_close(&z);
    free(buf);
    wv_model_free(m);
}

TEST_IMPL(pth_fixture_boolean)
{
    wv_model *m = NULL;
    ASSERT_OK(load_as(fpath("boolean.pt"), WV_LOAD_PREAD, &m));
    const wv_tensor *t = wv_model_find(m, "bool");
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(wv_tensor_dtype(t), WV_BOOL);
    ASSERT_EQ(wv_tensor_nbytes(t), 4);
    wv_model_free(m);
}

TEST_IMPL(pth_fixture_legacy_and_tinygrad)
{
    static const char *mn[] = {"conv1.weight", "conv1.bias", "conv2.weight",
                               "conv2.bias",   "fc1.weight", "fc1.bias",
                               "fc2.weight",   "fc2.bias"};
    wv_model *m = NULL, *a = NULL, *b = NULL, *c = NULL;
    ASSERT_OK(load_as(fpath("stianhanssen-mnist_cnn.pt"), 0, &m));
    ASSERT_EQ(wv_model_count(m), 8);
    for (size_t i = 0; i < 8; i++) {
        ASSERT_STREQ(wv_tensor_name(wv_model_tensor(m, i)), mn[i]);
        ASSERT_EQ(wv_tensor_dtype(wv_model_tensor(m, i)), WV_F32);
    }
    ASSERT_EQ(wv_tensor_shape(wv_model_find(m, "fc1.weight"))[1], 800);
    wv_model_free(m);

    const char *st =
        wvtest_fixture("safetensors", "tinygrad-mnist.safetensors");
    ASSERT_OK(load_as(fpath("tinygrad-mnist.zip.pt"), 0, &a));
    ASSERT_OK(load_as(fpath("tinygrad-mnist.legacy.pt"), WV_LOAD_PREAD, &b));
    ASSERT_OK(load_as(st, 0, &c));
    ASSERT_EQ(wv_model_count(a), 2);
    for (size_t i = 0; i < 2; i++) {
        const wv_tensor *x = wv_model_tensor(a, i);
        const wv_tensor *y = wv_model_find(b, wv_tensor_name(x));
        const wv_tensor *z = wv_model_find(c, wv_tensor_name(x));
        ASSERT(y != NULL && z != NULL);
        unsigned char hx[32], hy[32], hz[32];
        ASSERT_OK(wv_tensor_sha256(x, hx));
        ASSERT_OK(wv_tensor_sha256(y, hy));
        ASSERT_OK(wv_tensor_sha256(z, hz));
        ASSERT_MEMEQ(hx, hy, 32);
        ASSERT_MEMEQ(hx, hz, 32);
    }
    ASSERT_EQ(wv_tensor_shape(wv_model_find(a, "l1.weight"))[1], 784);
    wv_model_free(a);
    wv_model_free(b);
    wv_model_free(c);
}

/* ---- hand-assembled archives -------------------------------------------- */

struct pk {
    unsigned char b[4096];
    size_t n;
};

static void put(struct pk *p, const void *s, size_t n)
{
    memcpy(p->b + p->n, s, n);
    p->n += n;
}
static void puts_(struct pk *p, const char *s) { put(p, s, strlen(s)); }
static void pstr(struct pk *p, const char *s)
{
    unsigned char h[5] = {'X'};
    wv__put32(h + 1, (uint32_t)strlen(s));
    put(p, h, 5);
    puts_(p, s);
}
static void pint(struct pk *p, unsigned v)
{
    unsigned char h[2] = {'K', (unsigned char)v};
    put(p, h, 2);
}
#define OD "ccollections\nOrderedDict\n)R"

/* _rebuild_tensor_v2 of storage `key` (FloatStorage of numel elements). */
static void ptensor(struct pk *p, const char *key, unsigned numel,
                    unsigned off, int nd, const unsigned *size,
                    const unsigned *stride)
{
    puts_(p, "ctorch._utils\n_rebuild_tensor_v2\n((");
    pstr(p, "storage");
    puts_(p, "ctorch\nFloatStorage\n");
    pstr(p, key);
    pstr(p, "cpu");
    pint(p, numel);
    puts_(p, "tQ");
    pint(p, off);
    puts_(p, "(");
    for (int i = 0; i < nd; i++)
        pint(p, size[i]);
    puts_(p, "t(");
    for (int i = 0; i < nd; i++)
        pint(p, stride[i]);
    puts_(p, "t\x89" OD "tR");
}

/* A stored zip with the given records, via our own zip writer. */
static int write_zip(const char *path, const char *prefix, const char **nm,
                     const void **data, const size_t *len, size_t n)
{
    struct wv__err err = {0};
    struct wv__wfile f;
    struct wv__zipw w;
    char full[256];
    if (wv__wfile_open(&f, path, &err) != WV_OK)
        return -1;
    wv__zipw_init(&w, &f, &err);
    for (size_t i = 0; i < n; i++) {
        snprintf(full, sizeof full, "%s/%s", prefix, nm[i]);
        wv__zipw_begin(&w, full, WV__ZIP_STORED, len[i], 64);
        wv__zipw_write(&w, data[i], len[i]);
        wv__zipw_end(&w);
    }
    wv__zipw_finish(&w);
    int rc = w.rc;
    wv__zipw_release(&w);
    if (rc != WV_OK) {
        wv__wfile_abort(&f);
        return -1;
    }
    return wv__wfile_commit(&f);
}

TEST_IMPL(pth_views_shared_storage)
{
    /* One storage of 12 floats 0..11 viewed as: the whole 3x4, a
     * transpose, row 1 (offset 4), column 2 (stride 4), and a broadcast
     * (stride 0). Any prefix works. */
    struct pk p = {.n = 0};
    float st[12];
    for (int i = 0; i < 12; i++)
        st[i] = (float)i;
    puts_(&p, "\x80\x02}(");
    unsigned s34[2] = {3, 4}, c34[2] = {4, 1}, s43[2] = {4, 3},
             c43[2] = {1, 4}, s4[1] = {4}, c1[1] = {1}, s3[1] = {3},
             c4[1] = {4}, s23[2] = {2, 3}, c01[2] = {0, 1};
    pstr(&p, "whole");
    ptensor(&p, "0", 12, 0, 2, s34, c34);
    pstr(&p, "tr");
    ptensor(&p, "0", 12, 0, 2, s43, c43);
    pstr(&p, "row");
    ptensor(&p, "0", 12, 4, 1, s4, c1);
    pstr(&p, "col");
    ptensor(&p, "0", 12, 2, 1, s3, c4);
    pstr(&p, "bc");
    ptensor(&p, "0", 12, 1, 2, s23, c01);
    puts_(&p, "u.");
    const char *nm[] = {"data.pkl", "data/0", "version"};
    const void *data[] = {p.b, st, "3\n"};
    size_t len[] = {p.n, sizeof st, 2};
    const char *path = wvtest_path("views.pth");
    ASSERT_OK(write_zip(path, "my prefix", nm, data, len, 3));
    for (unsigned lf = 0; lf < 2; lf++) {
        wv_model *m = NULL;
        ASSERT_OK(load_as(path, lf, &m));
        ASSERT_EQ(wv_model_count(m), 5);
        const float *w = wv_tensor_data(wv_model_find(m, "whole"));
        const float *tr = wv_tensor_data(wv_model_find(m, "tr"));
        const float *row = wv_tensor_data(wv_model_find(m, "row"));
        const float *col = wv_tensor_data(wv_model_find(m, "col"));
        const float *bc = wv_tensor_data(wv_model_find(m, "bc"));
        for (int i = 0; i < 12; i++)
            ASSERT(w[i] == (float)i);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 3; j++)
                ASSERT(tr[i * 3 + j] == (float)(j * 4 + i));
        for (int i = 0; i < 4; i++)
            ASSERT(row[i] == (float)(4 + i));
        for (int i = 0; i < 3; i++)
            ASSERT(col[i] == (float)(2 + 4 * i));
        for (int i = 0; i < 6; i++)
            ASSERT(bc[i] == (float)(1 + i % 3));
        wv_model_free(m);
    }
}

TEST_IMPL(pth_big_endian_archive)
{
    struct pk p = {.n = 0};
    unsigned char st[8] = {0x3f, 0x80, 0, 0, 0xc0, 0, 0, 0}; /* 1.0, -2.0 */
    unsigned s2[1] = {2}, c1[1] = {1};
    puts_(&p, "\x80\x02}(");
    pstr(&p, "w");
    ptensor(&p, "0", 2, 0, 1, s2, c1);
    puts_(&p, "u.");
    const char *nm[] = {"data.pkl", "byteorder", "data/0", "version"};
    const void *data[] = {p.b, "big", st, "3\n"};
    size_t len[] = {p.n, 3, 8, 2};
    const char *path = wvtest_path("be.pth");
    ASSERT_OK(write_zip(path, "archive", nm, data, len, 4));
    wv_model *m = NULL;
    ASSERT_OK(load_as(path, 0, &m));
    const float *w = wv_tensor_data(wv_model_find(m, "w"));
    ASSERT(w[0] == 1.0f && w[1] == -2.0f);
    wv_model_free(m);
}

TEST_IMPL(pth_refusals)
{
    /* Messages of the rules the corpus does not reach through detection. */
    const char *nm[] = {"data.pkl", "archive/data.pkl", "archive/version"};
    const void *data[] = {"\x80\x02N.", "\x80\x02N.", "3\n"};
    size_t len[] = {5, 5, 2};
    const char *path = wvtest_path("nodir.pth");
    /* write_zip prefixes every name: build "x/..." and rename by hand is
     * awkward, so use a prefix-free archive from the zip writer. */
    struct wv__err err = {0};
    struct wv__wfile f;
    struct wv__zipw w;
    ASSERT_OK(wv__wfile_open(&f, path, &err));
    wv__zipw_init(&w, &f, &err);
    for (int i = 0; i < 3; i++) {
        wv__zipw_begin(&w, nm[i], WV__ZIP_STORED, len[i], 1);
        wv__zipw_write(&w, data[i], len[i]);
        wv__zipw_end(&w);
    }
    wv__zipw_finish(&w);
    wv__zipw_release(&w);
    ASSERT_OK(wv__wfile_commit(&f));
    char eb[WV_ERRBUF_SIZE];
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    wv_model *m = NULL;
    lo.format = WV_FMT_PTH;
    lo.errbuf = eb;
    lo.errbuf_size = sizeof eb;
    ASSERT_EQ(wv_model_load(path, &lo, &m), WV_CORRUPT);
    ASSERT_CONTAINS(eb, "first member 'data.pkl' is not in a directory");
    /* Not detected as pth by content: npz gets it. */
    lo.format = WV_FMT_AUTO;
    ASSERT(wv_model_load(path, &lo, &m) != WV_OK);
    ASSERT(strstr(eb, "data.pkl") != NULL);
    /* A non-zip, non-legacy input forced to pth. */
    lo.format = WV_FMT_PTH;
    ASSERT_EQ(wv_model_load_mem("hello world, not torch", 22, &lo, &m),
              WV_FORMAT);
    ASSERT_CONTAINS(eb, "not a PyTorch file");
    ASSERT_EQ(wv_model_load_mem("", 0, &lo, &m), WV_FORMAT);
}

TEST_IMPL(pth_writer_refuses_nothing_for_metadata)
{
    /* Metadata that is not UTF-8 is skipped, not fatal. */
    wv_model *m = NULL, *r = NULL;
    uint64_t sh[1] = {1};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "t", WV_U8, 1, sh, 1));
    ASSERT_OK(wv_model_set_meta(m, "bad", "\xff\xfe"));
    ASSERT_OK(wv_model_set_meta(m, "good", "yes"));
    ASSERT_OK(save_as(m, wvtest_path("m.pth"), 0, WV_DTYPE_INVALID));
    ASSERT_OK(load_as(wvtest_path("m.pth"), 0, &r));
    ASSERT_EQ(wv_model_meta_count(r), 1);
    ASSERT_STREQ(wv_model_get_meta(r, "good"), "yes");
    wv_model_free(r);
    ASSERT_OK(save_as(m, wvtest_path("m2.pth"), WV_SAVE_NEST, WV_DTYPE_INVALID));
    ASSERT_OK(load_as(wvtest_path("m2.pth"), 0, &r));
    ASSERT_STREQ(wv_model_get_meta(r, "good"), "yes");
    wv_model_free(r);
    wv_model_free(m);
}

/* ---- the pickle reader -------------------------------------------------- */

static int run(const char *p, size_t n, struct wv__pk *pk,
               struct wv__err *err, struct wv__pk_obj **o)
{
    size_t used;
    wv__pk_init(pk, "t", err);
    return wv__pk_load(pk, (const unsigned char *)p, n, &used, o);
}

TEST_IMPL(pickle_scalars_and_text)
{
    struct wv__err err = {0};
    struct wv__pk pk;
    struct wv__pk_obj *o;
    struct wv__buf b = {0};
    /* LONG1 of -2**70 (9 bytes) and 2**63 (9 bytes with a sign byte). */
    ASSERT_OK(run("\x80\x02\x8a\x09\0\0\0\0\0\0\0\0\xc0.", 14, &pk, &err,
                  &o));
    ASSERT_EQ(o->kind, WV__PK_BIGINT);
    wv__pk_int_str(o, &b);
    wv__buf_addc(&b, '\0');
    ASSERT_STREQ(b.p, "-1180591620717411303424");
    wv__pk_free(&pk);
    b.len = 0;
    ASSERT_OK(run("\x80\x02\x8a\x09\0\0\0\0\0\0\0\x80\0.", 14, &pk, &err,
                  &o));
    wv__pk_int_str(o, &b);
    wv__buf_addc(&b, '\0');
    ASSERT_STREQ(b.p, "9223372036854775808");
    wv__pk_free(&pk);
    b.len = 0;
    ASSERT_OK(run("\x80\x02\x8a\x02\xff\xff.", 7, &pk, &err, &o));
    ASSERT_EQ(o->kind, WV__PK_INT);
    ASSERT_EQ(o->i, -1);
    wv__pk_free(&pk);
    ASSERT_OK(run("\x80\x02J\xfe\xff\xff\xff.", 8, &pk, &err, &o));
    ASSERT_EQ(o->i, -2);
    wv__pk_free(&pk);
    wv__buf_release(&b);

    static const struct {
        double v;
        const char *s;
    } fl[] = {{0.1, "0.1"},        {1.0, "1.0"},     {1e-05, "1e-05"},
              {1e16, "1e+16"},     {1.5e16, "1.5e+16"},
              {123456.789, "123456.789"},           {-0.0, "-0.0"},
              {0.0001, "0.0001"},  {1e15, "1000000000000000.0"},
              {5e-324, "5e-324"},  {1.7976931348623157e308,
                                    "1.7976931348623157e+308"},
              {2.0 / 3.0, "0.6666666666666666"}};
    char buf[64];
    for (size_t i = 0; i < sizeof fl / sizeof fl[0]; i++) {
        wv__pk_float_repr(fl[i].v, buf, sizeof buf);
        ASSERT_STREQ(buf, fl[i].s);
    }
}

TEST_IMPL(pickle_memo_and_containers)
{
    struct wv__err err = {0};
    struct wv__pk pk;
    struct wv__pk_obj *o;
    /* [1, [1]] through BINPUT/BINGET, APPENDS, MEMOIZE (protocol 4). */
    const char p[] = "\x80\x04]\x94(K\x01h\x00" "e.";
    ASSERT_OK(run(p, sizeof p - 1, &pk, &err, &o));
    ASSERT_EQ(o->kind, WV__PK_LIST);
    ASSERT_EQ(o->n, 2);
    ASSERT(o->items[1] == o); /* a cycle: the list holds itself */
    wv__pk_free(&pk);
    /* A cycle is refused by the flattening, not by the reader. */
    char eb[WV_ERRBUF_SIZE];
    unsigned char arch[2048];
    (void)arch;
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    lo.errbuf = eb;
    lo.errbuf_size = sizeof eb;
    const char *nm[] = {"data.pkl", "version"};
    const void *data[] = {p, "3\n"};
    size_t len[] = {sizeof p - 1, 2};
    ASSERT_OK(write_zip(wvtest_path("cycle.pth"), "a", nm, data, len, 2));
    wv_model *m = NULL;
    ASSERT_EQ(wv_model_load(wvtest_path("cycle.pth"), &lo, &m), WV_FORMAT);
    ASSERT_CONTAINS(eb, "nested deeper than");
}

TEST_IMPL(pickle_refusals)
{
    static const struct {
        const char *p;
        size_t n;
        int code;
        const char *msg;
    } cases[] = {
        {"\x80\x02" "cos\nsystem\n.", 14, WV_FORMAT,
         "refusing global os.system"},
        {"\x80\x02" "cnt\nsystem\n.", 14, WV_FORMAT,
         "refusing global nt.system"},
        {"\x80\x02" "c__builtin__\nopen\n.", 21, WV_FORMAT,
         "refusing global __builtin__.open"},
        {"\x80\x02" "ctorch\nload\n.", 14, WV_FORMAT,
         "refusing global torch.load"},
        {"\x80\x02" "(S'x'\n.", 9, WV_FORMAT, "refusing pickle opcode 0x53"},
        {"\x80\x02" "I1\n.", 6, WV_FORMAT, "(INT)"},
        {"\x80\x02" "N\x81.", 5, WV_CORRUPT, "NEWOBJ needs 2"},
        {"\x80\x02" "NNb.", 6, WV_FORMAT, "BUILD on a None"},
        {"\x80\x02" "\x8fK\x01\x90.", 7, WV_CORRUPT, "ADDITEMS without a MARK"},
        {"\x80\x02" "}(K\x01u.", 7, WV_CORRUPT, "odd number"},
        {"\x80\x02", 2, WV_CORRUPT, "without STOP"},
        {"\x80\x02" "j\xff\xff\xff\xff.", 8, WV_CORRUPT, "never set"},
        {"\x80\x02" "N0.", 5, WV_CORRUPT, "STOP with 0 objects"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wv__err err = {0};
        struct wv__pk pk;
        struct wv__pk_obj *o;
        int rc = run(cases[i].p, cases[i].n, &pk, &err, &o);
        if (rc != cases[i].code)
            WVT_FAIL("case %zu: rc %d, want %d (%s)", i, rc, cases[i].code,
                     err.msg);
        ASSERT_CONTAINS(err.msg, cases[i].msg);
        wv__pk_free(&pk);
    }
}

TEST_IMPL(pth_alloc_failures)
{
    /* Every allocation of a load and a save may fail: no crash, no leak
     * (ASan), and a clean error. */
    wv_model *m = all_dtypes_set(), *r = NULL;
    ASSERT_NOT_NULL(m);
    ASSERT_OK(wv_model_set_meta(m, "k", "v"));
    const char *p = wvtest_path("af.pth");
    ASSERT_OK(save_as(m, p, 0, WV_DTYPE_INVALID));
    for (long n = 1; n < 400; n += 7) {
        wv__alloc_fail_after(n);
        int rc = load_as(p, (unsigned)(n & 1), &r);
        wv__alloc_fail_after(0);
        if (rc == WV_OK) {
            ASSERT(wvf_same(m, r, WVF_META_ORDER));
            wv_model_free(r);
        }
        r = NULL;
        wv__alloc_fail_after(n);
        rc = save_as(m, wvtest_path("af2.pth"), (unsigned)(n & 2), WV_DTYPE_INVALID);
        wv__alloc_fail_after(0);
        (void)rc;
    }
    wv_model_free(m);
}
