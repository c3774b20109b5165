/*
 * t_safetensors.c -- the safetensors reader and writer, the atomic writer
 * underneath them, and their behaviour when memory runs out.
 *
 * Expected bytes are built here from the format description (FORMATS.md
 * section 1) and the Rust reference's own unit-test vectors, never by
 * running our writer, so the writer cannot agree with itself by accident.
 */
#include "wv_int.h"
#include "wvtest.h"

#include <dirent.h>

#define CANDLE \
    wvtest_fixture("safetensors", "candle-connect4-dqn-small.safetensors")
#define SAMPLE_OVERALL \
    wvtest_fixture("safetensors", "samples/overall.safetensors")

static const wv_dtype all_dtypes[] = {
    WV_BOOL, WV_U8,  WV_I8,  WV_U16, WV_I16, WV_U32,     WV_I32,
    WV_U64,  WV_I64, WV_F16, WV_BF16, WV_F32, WV_F64,    WV_C64,
    WV_F8_E4M3, WV_F8_E5M2,
};
#define N_DTYPES (sizeof all_dtypes / sizeof all_dtypes[0])

static void tmp_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", wvtest_tmpdir(), name);
}

/* Bytes that depend on the tensor's index and position, so a swap of two
 * tensors or an offset error changes something. */
static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed * 37u + i * 11u + (i >> 8));
}

/* A safetensors file: u64 header length, `hdr`, then `data_len` data bytes
 * following the fill() pattern. malloc()ed. */
static unsigned char *st_file(const char *hdr, size_t data_len, size_t *len)
{
    size_t hl = strlen(hdr);
    unsigned char *b = malloc(8 + hl + data_len + 1);
    wv__put64(b, hl);
    memcpy(b + 8, hdr, hl);
    fill(b + 8 + hl, data_len, 1);
    *len = 8 + hl + data_len;
    return b;
}

static int load_st_mem(const void *p, size_t n, wv_model **m, char *errbuf)
{
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    o.format = WV_FMT_SAFETENSORS;
    o.errbuf = errbuf;
    o.errbuf_size = WV_ERRBUF_SIZE;
    errbuf[0] = '\0';
    return wv_model_load_mem(p, n, &o, m);
}

/* Number of directory entries whose name contains ".wv-tmp". */
static int count_tmp_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".wv-tmp") != NULL)
            n++;
    closedir(d);
    return n;
}

static int same_file(const char *path, const void *p, size_t n)
{
    size_t len;
    unsigned char *b = wvtest_read_file(path, &len);
    int same = b != NULL && len == n && memcmp(b, p, n) == 0;
    free(b);
    return same;
}

/* 1 if the two sets hold the same tensors (by name) with the same dtypes,
 * shapes and bytes. */
static int same_tensors(const wv_model *a, const wv_model *b)
{
    if (wv_model_count(a) != wv_model_count(b))
        return 0;
    for (size_t i = 0; i < wv_model_count(a); i++) {
        const wv_tensor *x = wv_model_tensor(a, i);
        const wv_tensor *y = wv_model_find(b, wv_tensor_name(x));
        if (y == NULL || wv_tensor_dtype(x) != wv_tensor_dtype(y) ||
            wv_tensor_ndim(x) != wv_tensor_ndim(y) ||
            wv_tensor_nbytes(x) != wv_tensor_nbytes(y))
            return 0;
        if (memcmp(wv_tensor_shape(x), wv_tensor_shape(y),
                   (size_t)wv_tensor_ndim(x) * sizeof(uint64_t)) != 0)
            return 0;
        if (wv_tensor_nbytes(x) &&
            memcmp(wv_tensor_data(x), wv_tensor_data(y),
                   wv_tensor_nbytes(x)) != 0)
            return 0;
    }
    return 1;
}

/* Every dtype, three shapes each: [3, 2], a scalar and an empty tensor. */
static wv_model *model_all_dtypes(void)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    for (size_t i = 0; i < N_DTYPES; i++) {
        wv_dtype dt = all_dtypes[i];
        size_t es = wv_dtype_size(dt);
        unsigned char buf[6 * 8];
        char name[64];
        uint64_t s2[2] = {3, 2}, s0[3] = {3, 0, 2};
        fill(buf, 6 * es, (unsigned)i + 7);
        snprintf(name, sizeof name, "t.%s", wv_dtype_name(dt));
        if (wv_model_add(m, name, dt, 2, s2, buf, 6 * es, WV_DATA_COPY))
            goto fail;
        snprintf(name, sizeof name, "scalar.%s", wv_dtype_name(dt));
        if (wv_model_add(m, name, dt, 0, NULL, buf + 1, es, WV_DATA_COPY))
            goto fail;
        snprintf(name, sizeof name, "empty.%s", wv_dtype_name(dt));
        if (wv_model_add(m, name, dt, 3, s0, NULL, 0, WV_DATA_COPY))
            goto fail;
    }
    return m;
fail:
    wv_model_free(m);
    return NULL;
}

static int load_path(const char *path, unsigned flags, wv_model **m)
{
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    o.flags = flags;
    return wv_model_load(path, &o, m);
}

/* ---- round trips -------------------------------------------------------- */

TEST_IMPL(st_roundtrip_all_dtypes)
{
    char path[512];
    wv_model *m = model_all_dtypes(), *r = NULL;
    ASSERT_NOT_NULL(m);
    tmp_path(path, sizeof path, "all.safetensors");
    ASSERT_OK(wv_model_save(m, path, NULL));
    for (unsigned flags = 0; flags <= WV_LOAD_PREAD; flags++) {
        ASSERT_OK(load_path(path, flags, &r));
        ASSERT_STREQ(wv_model_source_format(r), "safetensors");
        ASSERT_EQ(wv_model_count(r), 3 * N_DTYPES);
        ASSERT(same_tensors(m, r));
        const wv_tensor *s = wv_model_find(r, "scalar.BF16");
        ASSERT_NOT_NULL(s);
        ASSERT_EQ(wv_tensor_ndim(s), 0);
        ASSERT_EQ(wv_tensor_numel(s), 1);
        const wv_tensor *e = wv_model_find(r, "empty.C64");
        ASSERT_NOT_NULL(e);
        ASSERT_EQ(wv_tensor_ndim(e), 3);
        ASSERT_EQ(wv_tensor_shape(e)[1], 0);
        ASSERT_EQ(wv_tensor_nbytes(e), 0);
        wv_model_free(r);
        r = NULL;
    }
    wv_model_free(m);
}

/* The save's progress: growing counts of the tensor data alone (not the
 * header), never past the total, the last one the total itself. */
struct prog {
    uint64_t last, total, calls;
    bool over, back;
};

static void on_progress(void *arg, uint64_t done, uint64_t total)
{
    struct prog *p = arg;
    p->over |= done > total;
    p->back |= done < p->last;
    p->last = done;
    p->total = total;
    p->calls++;
}

TEST_IMPL(st_save_progress)
{
    char path[512];
    wv_model *m = model_all_dtypes(), *c = NULL;
    ASSERT_NOT_NULL(m);
    ASSERT_OK(load_path(CANDLE, 0, &c));
    wv_model *sets[] = {m, c};
    for (size_t k = 0; k < 2; k++) {
        uint64_t data = 0;
        for (size_t i = 0; i < wv_model_count(sets[k]); i++)
            data += wv_tensor_nbytes(wv_model_tensor(sets[k], i));
        struct prog p = {0};
        wv_save_opts o = WV_SAVE_OPTS_INIT;
        o.progress = on_progress;
        o.progress_arg = &p;
        tmp_path(path, sizeof path, "p.safetensors");
        ASSERT_OK(wv_model_save(sets[k], path, &o));
        ASSERT(p.calls > 0);
        ASSERT(!p.over);
        ASSERT(!p.back);
        ASSERT_EQ(p.total, data);
        ASSERT_EQ(p.last, data);
    }
    wv_model_free(c);
    wv_model_free(m);
}

TEST_IMPL(st_resave_is_identical)
{
    /* Reading our own output and writing it again must reproduce it. */
    char p1[512], p2[512];
    size_t n1, n2;
    wv_model *m = model_all_dtypes(), *r = NULL;
    ASSERT_NOT_NULL(m);
    tmp_path(p1, sizeof p1, "a.safetensors");
    tmp_path(p2, sizeof p2, "b.safetensors");
    ASSERT_OK(wv_model_save(m, p1, NULL));
    ASSERT_OK(load_path(p1, WV_LOAD_MMAP, &r));
    ASSERT_OK(wv_model_save(r, p2, NULL));
    unsigned char *a = wvtest_read_file(p1, &n1);
    unsigned char *b = wvtest_read_file(p2, &n2);
    ASSERT(a && b);
    ASSERT_EQ(n1, n2);
    ASSERT_MEMEQ(a, b, n1);
    free(a);
    free(b);
    wv_model_free(r);
    wv_model_free(m);
}

TEST_IMPL(st_metadata_order_preserved)
{
    char path[512], path2[512];
    wv_model *m, *r = NULL, *r2 = NULL;
    const char *k, *v;
    unsigned char one = 1;
    uint64_t s = 1;
    static const char *const keys[] = {"zeta", "format", "alpha", "mid"};
    static const char *const vals[] = {"z\"q\\", "pt", "a\n\x01", "m\xc3\xa9"};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "x", WV_U8, 1, &s, &one, 1, WV_DATA_COPY));
    for (int i = 0; i < 4; i++)
        ASSERT_OK(wv_model_set_meta(m, keys[i], vals[i]));
    tmp_path(path, sizeof path, "meta.safetensors");
    ASSERT_OK(wv_model_save(m, path, NULL));
    ASSERT_OK(load_path(path, 0, &r));
    ASSERT_EQ(wv_model_meta_count(r), 4);
    for (size_t i = 0; i < 4; i++) {
        ASSERT_OK(wv_model_meta(r, i, &k, &v));
        ASSERT_STREQ(k, keys[i]);
        ASSERT_STREQ(v, vals[i]);
    }
    /* A file's metadata is written back as it was: nothing added. */
    tmp_path(path2, sizeof path2, "meta2.safetensors");
    ASSERT_OK(wv_model_save(r, path2, NULL));
    ASSERT_OK(load_path(path2, 0, &r2));
    ASSERT_EQ(wv_model_meta_count(r2), 4);
    ASSERT_OK(wv_model_meta(r2, 0, &k, &v));
    ASSERT_STREQ(k, "zeta");
    wv_model_free(r2);
    wv_model_free(r);
    wv_model_free(m);
}

TEST_IMPL(st_metadata_from_old_writer_kept_exactly)
{
    /* samples/ files hold {"test":"a"} and no "format": a rewrite must not
     * invent one. */
    char path[512];
    size_t n;
    wv_model *m = NULL;
    ASSERT_OK(load_path(SAMPLE_OVERALL, 0, &m));
    ASSERT_EQ(wv_model_meta_count(m), 1);
    ASSERT_STREQ(wv_model_get_meta(m, "test"), "a");
    ASSERT_EQ(wv_model_count(m), 9);
    tmp_path(path, sizeof path, "o.safetensors");
    ASSERT_OK(wv_model_save(m, path, NULL));
    unsigned char *b = wvtest_read_file(path, &n);
    ASSERT_NOT_NULL(b);
    ASSERT(n > 40);
    ASSERT_MEMEQ(b + 8, "{\"__metadata__\":{\"test\":\"a\"},", 29);
    free(b);
    wv_model_free(m);
}

TEST_IMPL(st_metadata_absent_stays_absent)
{
    char path[512];
    size_t n;
    wv_model *m = NULL, *r = NULL;
    ASSERT_OK(load_path(CANDLE, 0, &m));
    ASSERT_EQ(wv_model_meta_count(m), 0);
    tmp_path(path, sizeof path, "c.safetensors");
    ASSERT_OK(wv_model_save(m, path, NULL));
    unsigned char *b = wvtest_read_file(path, &n);
    ASSERT_NOT_NULL(b);
    ASSERT(strstr((const char *)b + 8, "__metadata__") == NULL);
    free(b);
    ASSERT_OK(load_path(path, 0, &r));
    ASSERT_EQ(wv_model_meta_count(r), 0);
    wv_model_free(r);
    wv_model_free(m);
}

TEST_IMPL(st_empty_metadata_object_kept)
{
    /* {"__metadata__":{}} is not the same as no metadata at all. */
    char path[512];
    size_t n, fl;
    wv_model *m = NULL;
    char eb[WV_ERRBUF_SIZE];
    unsigned char *f = st_file("{\"__metadata__\":{}}", 0, &fl);
    ASSERT_OK(load_st_mem(f, fl, &m, eb));
    tmp_path(path, sizeof path, "e.safetensors");
    ASSERT_OK(wv_model_save(m, path, NULL));
    unsigned char *b = wvtest_read_file(path, &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(n, 8 + 24);
    ASSERT_MEMEQ(b + 8, "{\"__metadata__\":{}}     ", 24);
    free(b);
    free(f);
    wv_model_free(m);
}

TEST_IMPL(st_in_memory_set_gets_format_pt)
{
    char path[512];
    size_t n;
    wv_model *m;
    uint64_t s = 2;
    const unsigned char d[2] = {1, 0};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "b", WV_BOOL, 1, &s, d, 2, WV_DATA_BORROW));
    tmp_path(path, sizeof path, "pt.safetensors");
    ASSERT_OK(wv_model_save(m, path, NULL));
    unsigned char *b = wvtest_read_file(path, &n);
    ASSERT_NOT_NULL(b);
    static const char hdr[] =
        "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"BOOL\","
        "\"shape\":[2],\"data_offsets\":[0,2]}}";
    size_t hl = sizeof hdr - 1, padded = (hl + 7) / 8 * 8;
    ASSERT_EQ(wv__le64(b), padded);
    ASSERT_EQ(n, 8 + padded + 2);
    ASSERT_MEMEQ(b + 8, hdr, hl);
    for (size_t i = hl; i < padded; i++)
        ASSERT_EQ(b[8 + i], ' ');
    ASSERT_MEMEQ(b + 8 + padded, d, 2);
    free(b);
    wv_model_free(m);
}

/* ---- byte-exact writer -------------------------------------------------- */

TEST_IMPL(st_writer_reference_vector)
{
    /* tensor.rs test_serialization: {"attn.0": F32 [1,2,3] = 0..5}, no
     * metadata. */
    char path[512];
    size_t n;
    wv_model *m;
    float vals[6];
    uint64_t shape[3] = {1, 2, 3};
    for (int i = 0; i < 6; i++)
        vals[i] = (float)i;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "attn.0", WV_F32, 3, shape, vals, sizeof vals,
                           WV_DATA_COPY));
    m->meta_state = WV__META_NONE; /* as a set read from a file without it */

    unsigned char want[8 + 64 + 24];
    static const char js[] = "{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],"
                             "\"data_offsets\":[0,24]}}";
    memset(want, 0, sizeof want);
    want[0] = 64;
    memset(want + 8, ' ', 64);
    memcpy(want + 8, js, sizeof js - 1);
    for (int i = 0; i < 6; i++) {
        uint32_t bits;
        memcpy(&bits, &vals[i], 4);
        wv__put32(want + 72 + 4 * i, bits);
    }
    /* The reference's literal: 1.0f is 00 00 80 3f, 5.0f is 00 00 a0 40. */
    ASSERT_EQ(want[72 + 4 + 3], 0x3f);
    ASSERT_EQ(want[72 + 20 + 3], 0x40);
    ASSERT_EQ(want[72 + 20 + 2], 0xa0);

    tmp_path(path, sizeof path, "ref.safetensors");
    ASSERT_OK(wv_model_save(m, path, NULL));
    unsigned char *b = wvtest_read_file(path, &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(n, sizeof want);
    ASSERT_MEMEQ(b, want, sizeof want);
    free(b);
    wv_model_free(m);
}

TEST_IMPL(st_writer_empty_set)
{
    /* tensor.rs test_empty: 08 00.. then "{}" and six spaces. */
    static const unsigned char want[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}',
                                           ' ', ' ', ' ', ' ', ' ', ' '};
    char path[512];
    size_t n;
    wv_model *m, *r = NULL;
    char eb[WV_ERRBUF_SIZE];
    ASSERT_OK(wv_model_new(&m));
    m->meta_state = WV__META_NONE;
    tmp_path(path, sizeof path, "empty.safetensors");
    ASSERT_OK(wv_model_save(m, path, NULL));
    unsigned char *b = wvtest_read_file(path, &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(n, 16);
    ASSERT_MEMEQ(b, want, 16);
    free(b);
    /* And the reference's bytes read back as an empty set. */
    ASSERT_OK(load_st_mem(want, sizeof want, &r, eb));
    ASSERT_EQ(wv_model_count(r), 0);
    ASSERT_EQ(wv_model_meta_count(r), 0);
    wv_model_free(r);
    wv_model_free(m);
}

TEST_IMPL(st_writer_candle_fixture_identical)
{
    char path[512];
    size_t n1, n2;
    for (unsigned flags = 0; flags <= WV_LOAD_PREAD; flags++) {
        wv_model *m = NULL;
        ASSERT_OK(load_path(CANDLE, flags, &m));
        ASSERT_EQ(wv_model_count(m), 6);
        tmp_path(path, sizeof path, "candle.safetensors");
        ASSERT_OK(wv_model_save(m, path, NULL));
        unsigned char *a = wvtest_read_file(CANDLE, &n1);
        unsigned char *b = wvtest_read_file(path, &n2);
        ASSERT(a && b);
        ASSERT_EQ(n1, n2);
        ASSERT_MEMEQ(a, b, n1);
        free(a);
        free(b);
        wv_model_free(m);
    }
}

TEST_IMPL(st_writer_dtype_order)
{
    /* Reference order: dtype descending in its enum, then name. Names are
     * chosen so name order alone would give a different answer. */
    static const wv_dtype want[] = {
        WV_U64,  WV_I64, WV_F64, WV_C64,     WV_F32,     WV_U32,
        WV_I32,  WV_BF16, WV_F16, WV_U16,    WV_I16,     WV_F8_E4M3,
        WV_F8_E5M2, WV_I8, WV_U8,  WV_BOOL,
    };
    char path[512];
    wv_model *m, *r = NULL;
    ASSERT_OK(wv_model_new(&m));
    for (size_t i = 0; i < N_DTYPES; i++) {
        wv_dtype dt = all_dtypes[i];
        unsigned char buf[16] = {0};
        uint64_t s = 2;
        char name[32];
        /* "a" names for small dtypes, "z" for wide ones. */
        snprintf(name, sizeof name, "%c%s", 'a' + (int)(wv_dtype_size(dt) * 3),
                 wv_dtype_name(dt));
        ASSERT_OK(wv_model_add(m, name, dt, 1, &s, buf, 2 * wv_dtype_size(dt),
                               WV_DATA_COPY));
    }
    /* Same dtype: ordered by name (bytewise). */
    unsigned char four[4] = {0};
    uint64_t one = 1;
    ASSERT_OK(wv_model_add(m, "b", WV_F32, 1, &one, four, 4, WV_DATA_COPY));
    ASSERT_OK(wv_model_add(m, "B", WV_F32, 1, &one, four, 4, WV_DATA_COPY));
    tmp_path(path, sizeof path, "order.safetensors");
    ASSERT_OK(wv_model_save(m, path, NULL));
    ASSERT_OK(load_path(path, 0, &r)); /* set order = file data order */
    ASSERT_EQ(wv_model_count(r), N_DTYPES + 2);
    size_t j = 0;
    uint64_t prev_off = 0;
    for (size_t i = 0; i < N_DTYPES; i++) {
        const wv_tensor *t = wv_model_tensor(r, j++);
        ASSERT_EQ(wv_tensor_dtype(t), want[i]);
        if (want[i] == WV_F32) {
            ASSERT_STREQ(wv_tensor_name(t), "B");
            ASSERT_STREQ(wv_tensor_name(wv_model_tensor(r, j++)), "b");
            t = wv_model_tensor(r, j++);
            ASSERT_EQ(wv_tensor_dtype(t), WV_F32);
            ASSERT_STREQ(wv_tensor_name(t), "mF32");
        }
        /* Natural alignment: every tensor starts at a multiple of its
         * element size (the data section starts 8-aligned). */
        uint64_t off = (uint64_t)((const unsigned char *)wv_tensor_data(t) -
                                  (const unsigned char *)r->regions[0].p);
        ASSERT_EQ(off % wv_dtype_size(want[i]), 0);
        ASSERT(off >= prev_off);
        prev_off = off;
    }
    wv_model_free(r);
    wv_model_free(m);
}

/* ---- mmap, pread, zero copy, memory -------------------------------------- */

TEST_IMPL(st_mmap_and_pread_agree)
{
    const char *const files[] = {
        CANDLE, SAMPLE_OVERALL,
        wvtest_fixture("safetensors", "tinygrad-mnist.safetensors")};
    for (size_t f = 0; f < 3; f++) {
        wv_model *a = NULL, *b = NULL;
        ASSERT_OK(load_path(files[f], WV_LOAD_MMAP, &a));
        ASSERT_OK(load_path(files[f], WV_LOAD_PREAD, &b));
        ASSERT(same_tensors(a, b));
        ASSERT(same_tensors(b, a));
        for (size_t i = 0; i < wv_model_count(a); i++)
            ASSERT_STREQ(wv_tensor_name(wv_model_tensor(a, i)),
                         wv_tensor_name(wv_model_tensor(b, i)));
        ASSERT_EQ(wv_model_meta_count(a), wv_model_meta_count(b));
        wv_model_free(a);
        wv_model_free(b);
    }
}

TEST_IMPL(st_zero_copy)
{
    size_t flen;
    wv_model *a = NULL, *b = NULL;
    unsigned char *file = wvtest_read_file(CANDLE, &flen);
    ASSERT_NOT_NULL(file);
    uint64_t hn = wv__le64(file);
    ASSERT_OK(load_path(CANDLE, WV_LOAD_MMAP, &a));
    ASSERT_OK(load_path(CANDLE, WV_LOAD_PREAD, &b));
    /* mmap: one region, the mapping; pread: one owned data buffer. */
    ASSERT_EQ(a->n_regions, 1);
    ASSERT(a->regions[0].mapped);
    ASSERT_EQ(a->regions[0].len, flen);
    ASSERT_EQ(b->n_regions, 1);
    ASSERT(!b->regions[0].mapped);
    const unsigned char *map = a->regions[0].p;
    const unsigned char *blob = b->regions[0].p;
    /* layer_1.bias is the first tensor: data_offsets [0, 120]. */
    const wv_tensor *t = wv_model_find(a, "layer_1.bias");
    ASSERT_NOT_NULL(t);
    ASSERT(wv_tensor_data(t) == map + 8 + hn);
    for (size_t i = 0; i < wv_model_count(a); i++) {
        const unsigned char *p = wv_tensor_data(wv_model_tensor(a, i));
        size_t nb = wv_tensor_nbytes(wv_model_tensor(a, i));
        ASSERT(p >= map + 8 + hn && p + nb <= map + flen);
        /* The mapped bytes are the file's bytes at the same offset. */
        ASSERT_MEMEQ(p, file + (p - map), nb);
        const unsigned char *q = wv_tensor_data(wv_model_tensor(b, i));
        ASSERT(q < map || q >= map + flen);
        ASSERT(q != p);
        ASSERT_MEMEQ(q, p, nb);
        ASSERT(q >= blob && q + nb <= blob + (flen - 8 - hn));
    }
    free(file);
    wv_model_free(a);
    wv_model_free(b);
}

/* wv_model_read_all: every tensor into caller buffers, split over the
 * cores in slices that cross tensor boundaries. */
TEST_IMPL(st_read_all)
{
    wv_model *m = NULL, *a = NULL;
    ASSERT_OK(wv_model_new(&m));
    /* About 40 MiB in odd sizes, so the 2 MiB slices of the parallel copy
     * start and end inside tensors; an empty tensor in the middle. */
    static const size_t sizes[] = {3, 5u << 20, 0, 7777777, 1, 13u << 20,
                                   123457, 15u << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    void *dst[N];
    for (size_t i = 0; i < N; i++) {
        unsigned char *p = wv_malloc(sizes[i] ? sizes[i] : 1);
        ASSERT_NOT_NULL(p);
        for (size_t k = 0; k < sizes[i]; k++)
            p[k] = (unsigned char)(k * 31 + i * 7 + (k >> 12));
        char name[16];
        snprintf(name, sizeof name, "t%zu", i);
        uint64_t shape[1] = {sizes[i]};
        ASSERT_OK(wv_model_add(m, name, WV_U8, 1, shape, p, sizes[i],
                               WV_DATA_TAKE));
        dst[i] = malloc(sizes[i] ? sizes[i] : 1);
        ASSERT_NOT_NULL(dst[i]);
        memset(dst[i], 0xEE, sizes[i] ? sizes[i] : 1);
    }
    ASSERT_EQ(wv_model_read_all(m, dst, N - 1), WV_MISUSE);
    ASSERT_OK(wv_model_read_all(m, dst, N));
    for (size_t i = 0; i < N; i++)
        ASSERT_MEMEQ(dst[i], wv_tensor_data(wv_model_tensor(m, i)),
                     sizes[i]);
    /* NULL skips a tensor; the others are still filled. */
    memset(dst[5], 0, sizes[5]);
    memset(dst[7], 0, sizes[7]);
    void *keep = dst[5];
    dst[5] = NULL;
    ASSERT_OK(wv_model_read_all(m, dst, N));
    ASSERT_MEMEQ(dst[7], wv_tensor_data(wv_model_tensor(m, 7)), sizes[7]);
    dst[5] = keep;
    for (size_t k = 0; k < sizes[5]; k++)
        if (((unsigned char *)keep)[k] != 0)
            WVT_FAIL("skipped tensor was written at byte %zu", k);
    /* From a mapped file: the same bytes as the set holds. */
    ASSERT_OK(load_path(SAMPLE_OVERALL, WV_LOAD_MMAP, &a));
    void *fd[64];
    ASSERT(wv_model_count(a) <= 64);
    for (size_t i = 0; i < wv_model_count(a); i++)
        fd[i] = malloc(wv_tensor_nbytes(wv_model_tensor(a, i)) + 1);
    ASSERT_OK(wv_model_read_all(a, fd, wv_model_count(a)));
    for (size_t i = 0; i < wv_model_count(a); i++) {
        const wv_tensor *t = wv_model_tensor(a, i);
        ASSERT_MEMEQ(fd[i], wv_tensor_data(t), wv_tensor_nbytes(t));
        free(fd[i]);
    }
    for (size_t i = 0; i < N; i++)
        free(dst[i]);
    wv_model_free(a);
    wv_model_free(m);
}

TEST_IMPL(st_load_mem_borrows)
{
    size_t flen;
    wv_model *m = NULL;
    char eb[WV_ERRBUF_SIZE];
    unsigned char *file = wvtest_read_file(SAMPLE_OVERALL, &flen);
    ASSERT_NOT_NULL(file);
    uint64_t hn = wv__le64(file);
    ASSERT_OK(load_st_mem(file, flen, &m, eb));
    ASSERT_EQ(wv_model_count(m), 9);
    const wv_tensor *t = wv_model_find(m, "f");
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(wv_tensor_dtype(t), WV_F32);
    ASSERT((const unsigned char *)wv_tensor_data(t) == file + 8 + hn + 108);
    /* values arange(-3, 3) */
    float v;
    ASSERT_OK(wv_tensor_read(t, 0, &v, 4));
    ASSERT(v == -3.0f);
    ASSERT_OK(wv_tensor_read(t, 20, &v, 4));
    ASSERT(v == 2.0f);
    ASSERT_EQ(wv_tensor_read(t, 21, &v, 4), WV_RANGE);
    wv_model_free(m);
    /* Auto-detection works from memory too. */
    ASSERT_OK(wv_model_load_mem(file, flen, NULL, &m));
    ASSERT_STREQ(wv_model_source_format(m), "safetensors");
    wv_model_free(m);
    free(file);
}

/* ---- rejections ---------------------------------------------------------- */

struct bad {
    const char *name;
    const char *hdr;    /* NULL: use raw/raw_len */
    size_t data_len;
    int code;
    const char *msg1, *msg2; /* substrings the message must contain */
    const unsigned char *raw;
    size_t raw_len;
};

static const unsigned char too_large[] = {0x3c, 0, 0, 0, 0, 0xff, 0xff, 0xff,
                                          '{', '}'};
static const unsigned char past_eof[] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
static const unsigned char tiny[] = {2, 0, 0, 0};
static const unsigned char huge_len[] = {0xf8, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, '{', '}'};
static const unsigned char bad_utf8[] = {
    16, 0, 0, 0, 0, 0, 0, 0, '{', '"', 0xff, 0xfe, '"', ':', '1', '}',
    ' ',  ' ', ' ', ' ', ' ', ' ', ' ', ' '};

#define E8(d) "{\"dtype\":\"" d "\",\"shape\":[1],\"data_offsets\":"

static const struct bad bads[] = {
    {"duplicate name",
     "{\"a\":" E8("U8") "[0,1]},\"a\":" E8("U8") "[1,2]}}", 2, WV_CORRUPT,
     "duplicate tensor name 'a'", NULL, NULL, 0},
    {"gap", "{\"a\":" E8("U8") "[0,1]},\"b\":" E8("U8") "[2,3]}}", 3,
     WV_CORRUPT, "tensor 'b'", "contiguous", NULL, 0},
    {"not from 0", "{\"a\":" E8("U8") "[1,2]}}", 2, WV_CORRUPT, "tensor 'a'",
     "contiguous", NULL, 0},
    {"overlap", "{\"a\":" E8("U8") "[0,1]},\"b\":" E8("U8") "[0,1]}}", 1,
     WV_CORRUPT, "data_offsets [0, 1]", "contiguous", NULL, 0},
    {"end before begin",
     "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[3,1]}}", 3,
     WV_CORRUPT, "tensor 'a'", "data_offsets [3, 1]", NULL, 0},
    {"size mismatch",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
     WV_CORRUPT, "tensor 'w' has 4 bytes", "need 8", NULL, 0},
    {"shape overflow",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[18446744073709551614,2],"
     "\"data_offsets\":[0,16]}}",
     16, WV_CORRUPT, "tensor 'w'", "overflow", NULL, 0},
    {"shape overflow bits",
     "{\"w\":{\"dtype\":\"F64\",\"shape\":[9223372036854775807],"
     "\"data_offsets\":[0,16]}}",
     16, WV_CORRUPT, "tensor 'w'", "overflow", NULL, 0},
    {"number too big",
     "{\"w\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],"
     "\"data_offsets\":[0,16]}}",
     16, WV_CORRUPT, "64 bits", NULL, NULL, 0},
    {"trailing bytes", "{\"a\":" E8("U8") "[0,1]}}", 2, WV_CORRUPT,
     "trailing bytes", NULL, NULL, 0},
    {"truncated", "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],"
                  "\"data_offsets\":[0,4]}}",
     3, WV_CORRUPT, "truncated", NULL, NULL, 0},
    {"unknown dtype", "{\"a\":" E8("F128") "[0,16]}}", 16, WV_CORRUPT,
     "tensor 'a'", "unknown dtype 'F128'", NULL, 0},
    {"lower-case dtype", "{\"a\":" E8("f32") "[0,4]}}", 4, WV_CORRUPT,
     "unknown dtype 'f32'", NULL, NULL, 0},
    {"too many dims",
     "{\"d\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
     "\"data_offsets\":[0,1]}}",
     1, WV_FORMAT, "tensor 'd'", "more than 8 dimensions", NULL, 0},
    {"metadata number", "{\"__metadata__\":{\"k\":1}}", 0, WV_CORRUPT,
     "__metadata__ value of 'k'", "not a string", NULL, 0},
    {"metadata not object", "{\"__metadata__\":[\"k\"]}", 0, WV_CORRUPT,
     "__metadata__ is not an object", NULL, NULL, 0},
    {"duplicate metadata key",
     "{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, WV_CORRUPT,
     "duplicate __metadata__ key 'k'", NULL, NULL, 0},
    {"lone high surrogate", "{\"__metadata__\":{\"k\":\"\\ud800\"}}", 0,
     WV_CORRUPT, "lone high surrogate", NULL, NULL, 0},
    {"lone low surrogate", "{\"__metadata__\":{\"k\":\"\\udc00x\"}}", 0,
     WV_CORRUPT, "lone low surrogate", NULL, NULL, 0},
    {"control char", "{\"__metadata__\":{\"k\":\"a\tb\"}}", 0, WV_CORRUPT,
     "control character", NULL, NULL, 0},
    {"trailing garbage", "{}x", 0, WV_CORRUPT, "trailing characters", NULL,
     NULL, 0},
    {"not an object", "[]", 0, WV_CORRUPT, "not a JSON object", NULL, NULL, 0},
    {"not JSON", "{\"a\" 1}", 0, WV_CORRUPT, "not valid JSON", NULL, NULL, 0},
    {"missing dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
     WV_CORRUPT, "tensor 'a'", "missing field 'dtype'", NULL, 0},
    {"missing shape", "{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1,
     WV_CORRUPT, "tensor 'a'", "missing field 'shape'", NULL, 0},
    {"missing offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1,
     WV_CORRUPT, "tensor 'a'", "missing field 'data_offsets'", NULL, 0},
    {"three offsets", "{\"a\":" E8("U8") "[0,1,2]}}", 1, WV_CORRUPT,
     "tensor 'a'", "exactly two", NULL, 0},
    {"negative", "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],"
                 "\"data_offsets\":[0,1]}}",
     1, WV_CORRUPT, "non-negative integer", NULL, NULL, 0},
    {"float in shape", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.0],"
                       "\"data_offsets\":[0,1]}}",
     1, WV_CORRUPT, "fraction or exponent", NULL, NULL, 0},
    {"entry not object", "{\"a\":[1]}", 0, WV_CORRUPT, "tensor 'a'",
     "not a JSON object", NULL, 0},
    {"duplicate __metadata__",
     "{\"__metadata__\":{},\"__metadata__\":{}}", 0, WV_CORRUPT,
     "duplicate __metadata__", NULL, NULL, 0},
    {"header too large", NULL, 0, WV_CORRUPT, "exceeds", "100000000", too_large,
     sizeof too_large},
    {"header length overflows", NULL, 0, WV_CORRUPT, "exceeds", NULL,
     huge_len, sizeof huge_len},
    {"header past EOF", NULL, 0, WV_CORRUPT, "runs past the end", NULL,
     past_eof, sizeof past_eof},
    {"file too small", NULL, 0, WV_CORRUPT, "smaller than the 8-byte", NULL,
     tiny, sizeof tiny},
    {"invalid UTF-8", NULL, 0, WV_CORRUPT, "not valid UTF-8", NULL, bad_utf8,
     sizeof bad_utf8},
    {"empty tensor name", "{\"\":" E8("U8") "[0,1]}}", 1, WV_FORMAT, "tensor",
     "empty", NULL, 0},
    {"NUL in tensor name", "{\"a\\u0000b\":" E8("U8") "[0,1]}}", 1, WV_FORMAT,
     "NUL", NULL, NULL, 0},
};

TEST_IMPL(st_rejections)
{
    char eb[WV_ERRBUF_SIZE];
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const struct bad *b = &bads[i];
        size_t n;
        unsigned char *f;
        if (b->hdr) {
            f = st_file(b->hdr, b->data_len, &n);
        } else {
            f = malloc(b->raw_len);
            memcpy(f, b->raw, b->raw_len);
            n = b->raw_len;
        }
        /* Through both source kinds: memory and a file read with pread. */
        for (int kind = 0; kind < 2; kind++) {
            wv_model *m = (wv_model *)1;
            int rc;
            if (kind == 0) {
                rc = load_st_mem(f, n, &m, eb);
            } else {
                char path[512];
                wv_load_opts o = WV_LOAD_OPTS_INIT;
                tmp_path(path, sizeof path, "bad.safetensors");
                ASSERT_OK(wvtest_write_file(path, f, n));
                o.flags = WV_LOAD_PREAD;
                o.format = WV_FMT_SAFETENSORS;
                o.errbuf = eb;
                o.errbuf_size = sizeof eb;
                eb[0] = '\0';
                rc = wv_model_load(path, &o, &m);
            }
            if (rc != b->code || m != NULL)
                WVT_FAIL("%s: rc %d (want %d), message \"%s\"", b->name, rc,
                         b->code, eb);
            if (strstr(eb, b->msg1) == NULL ||
                (b->msg2 && strstr(eb, b->msg2) == NULL))
                WVT_FAIL("%s: message \"%s\" lacks \"%s\"/\"%s\"", b->name, eb,
                         b->msg1, b->msg2 ? b->msg2 : "");
        }
        free(f);
    }
}

TEST_IMPL(st_json_attack)
{
    /* tensor.rs test_json_attack: ten tensors all at [0, 16]. */
    char hdr[2048], eb[WV_ERRBUF_SIZE];
    size_t o = 0, n;
    wv_model *m = NULL;
    o += (size_t)snprintf(hdr + o, sizeof hdr - o, "{");
    for (int i = 0; i < 10; i++)
        o += (size_t)snprintf(hdr + o, sizeof hdr - o,
                              "%s\"weight_%d\":{\"dtype\":\"F32\",\"shape\":"
                              "[2,2],\"data_offsets\":[0,16]}",
                              i ? "," : "", i);
    snprintf(hdr + o, sizeof hdr - o, "}");
    unsigned char *f = st_file(hdr, 16, &n);
    ASSERT_EQ(load_st_mem(f, n, &m, eb), WV_CORRUPT);
    ASSERT(m == NULL);
    ASSERT_CONTAINS(eb, "tensor 'weight_");
    ASSERT_CONTAINS(eb, "contiguous");
    free(f);
}

TEST_IMPL(st_whitespace_padded_header_accepted)
{
    /* tensor.rs test_whitespace_padded_header and
     * test_whitespace_leading_padded_header. */
    static const unsigned char a[] = {6, 0, 0, 0, 0, 0, 0, 0,
                                      '{', '}', '\r', ' ', '\t', '\n'};
    static const unsigned char b[] = {6, 0, 0, 0, 0, 0, 0, 0,
                                      '\t', '\n', '{', '}', '\r', ' '};
    char eb[WV_ERRBUF_SIZE];
    wv_model *m = NULL;
    ASSERT_OK(load_st_mem(a, sizeof a, &m, eb));
    ASSERT_EQ(wv_model_count(m), 0);
    wv_model_free(m);
    ASSERT_OK(load_st_mem(b, sizeof b, &m, eb));
    ASSERT_EQ(wv_model_count(m), 0);
    wv_model_free(m);
    /* Auto-detection must accept a leading-whitespace header as well. */
    ASSERT_OK(wv_model_load_mem(b, sizeof b, NULL, &m));
    ASSERT_STREQ(wv_model_source_format(m), "safetensors");
    wv_model_free(m);

    /* A page-aligned writer's file: whitespace everywhere in the JSON,
     * fields in another order, unknown fields skipped. */
    size_t n;
    unsigned char *f = st_file(
        "  \n{ \"__metadata__\" : { \"k\" : \"v\" } ,\r\n \"x\" : { "
        "\"data_offsets\" : [ 0 , 2 ] , \"extra\": {\"n\": [1, 2.5e3, null, "
        "true, \"s\"]}, \"shape\" : [ ] , \"dtype\" : \"F16\" } }     ",
        2, &n);
    ASSERT_OK(load_st_mem(f, n, &m, eb));
    ASSERT_EQ(wv_model_count(m), 1);
    ASSERT_EQ(wv_tensor_ndim(wv_model_tensor(m, 0)), 0);
    ASSERT_STREQ(wv_model_get_meta(m, "k"), "v");
    wv_model_free(m);
    free(f);
}

TEST_IMPL(st_null_metadata_and_escapes)
{
    char eb[WV_ERRBUF_SIZE];
    size_t n;
    wv_model *m = NULL;
    unsigned char *f = st_file(
        "{\"__metadata__\":null,\"a\\u00e9\\ud83d\\ude00\\n\":" E8("U8")
        "[0,1]}}",
        1, &n);
    ASSERT_OK(load_st_mem(f, n, &m, eb));
    ASSERT_EQ(wv_model_meta_count(m), 0);
    ASSERT_NOT_NULL(wv_model_find(m, "a\xc3\xa9\xf0\x9f\x98\x80\n"));
    wv_model_free(m);
    free(f);
}

TEST_IMPL(st_nesting_bomb_bounded)
{
    /* A deeply nested unknown field must be refused, not recurse without
     * bound. */
    size_t depth = 100000, n;
    char *hdr = malloc(2 * depth + 128);
    char eb[WV_ERRBUF_SIZE];
    wv_model *m = NULL;
    size_t o = (size_t)snprintf(hdr, 64, "{\"a\":{\"junk\":");
    memset(hdr + o, '[', depth);
    o += depth;
    memset(hdr + o, ']', depth);
    o += depth;
    snprintf(hdr + o, 64, "}}");
    unsigned char *f = st_file(hdr, 0, &n);
    ASSERT_EQ(load_st_mem(f, n, &m, eb), WV_CORRUPT);
    ASSERT_CONTAINS(eb, "nesting too deep");
    free(f);
    free(hdr);
}

TEST_IMPL(st_writer_refuses_metadata_tensor_name)
{
    /* A tensor named "__metadata__" cannot be represented. */
    char path[512];
    wv_model *m;
    unsigned char c = 0;
    uint64_t s = 1;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "__metadata__", WV_U8, 1, &s, &c, 1,
                           WV_DATA_COPY));
    tmp_path(path, sizeof path, "m.safetensors");
    int rc = wv_model_save(m, path, NULL);
    ASSERT(rc != WV_OK);
    ASSERT_CONTAINS(wv_model_errmsg(m), "__metadata__");
    ASSERT_EQ(access(path, F_OK), -1);
    ASSERT_EQ(count_tmp_files(wvtest_tmpdir()), 0);
    wv_model_free(m);
}

/* ---- atomic writes -------------------------------------------------------- */

TEST_IMPL(st_atomic_write_faults)
{
    static const struct {
        int id;
        const char *what;
    } sites[] = {
        {WV__FAULT_OPEN_TMP, "temporary"}, {WV__FAULT_WRITE, "write"},
        {WV__FAULT_FSYNC, "fsync"},        {WV__FAULT_RENAME, "rename"},
        {WV__FAULT_DIRSYNC, "directory"},
    };
    char dir[256], path[512], ref[512];
    size_t old_len, new_len;
    wv_model *m;
    uint64_t s = 4;
    const float v[4] = {1, 2, 3, 4};

    /* Its own directory so the temp-file count sees only this save. */
    tmp_path(dir, sizeof dir, "atomic");
    ASSERT_OK(mkdir(dir, 0777));
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    tmp_path(ref, sizeof ref, "reference.safetensors");

    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "old", WV_F32, 1, &s, v, 16, WV_DATA_COPY));
    ASSERT_OK(wv_model_save(m, path, NULL));
    unsigned char *old = wvtest_read_file(path, &old_len);
    ASSERT_NOT_NULL(old);
    ASSERT_OK(wv_model_add(m, "new", WV_F32, 1, &s, v, 16, WV_DATA_COPY));
    ASSERT_OK(wv_model_save(m, ref, NULL));
    unsigned char *neu = wvtest_read_file(ref, &new_len);
    ASSERT_NOT_NULL(neu);

    for (size_t i = 0; i < sizeof sites / sizeof sites[0]; i++) {
        wv__fault_arm(sites[i].id, EIO);
        int rc = wv_model_save(m, path, NULL);
        wv__fault_arm(sites[i].id, 0);
        if (rc != WV_IO)
            WVT_FAIL("fault %d: rc %d", sites[i].id, rc);
        ASSERT_CONTAINS(wv_model_errmsg(m), path);
        ASSERT_CONTAINS(wv_model_errmsg(m), sites[i].what);
        ASSERT_CONTAINS(wv_model_errmsg(m), strerror(EIO));
        if (sites[i].id == WV__FAULT_DIRSYNC) {
            /* Renamed already: the new file is complete. */
            ASSERT(same_file(path, neu, new_len));
        } else {
            ASSERT(same_file(path, old, old_len));
        }
        if (count_tmp_files(dir) != 0)
            WVT_FAIL("fault %d left a temporary file", sites[i].id);
        /* Restore the old content for the next site. */
        if (sites[i].id == WV__FAULT_DIRSYNC)
            ASSERT_OK(wvtest_write_file(path, old, old_len));
    }
    /* With no fault the save goes through. */
    ASSERT_OK(wv_model_save(m, path, NULL));
    ASSERT(same_file(path, neu, new_len));
    ASSERT_EQ(count_tmp_files(dir), 0);
    free(old);
    free(neu);
    wv_model_free(m);
}

TEST_IMPL(st_atomic_write_large_fault)
{
    /* A tensor bigger than the write buffer: the fault hits mid-stream,
     * during a cast. */
    char dir[256], path[512];
    size_t old_len;
    wv_model *m;
    uint64_t s = 1u << 20;
    float *v = wv_malloc((size_t)s * 4);
    ASSERT_NOT_NULL(v);
    for (size_t i = 0; i < s; i++)
        v[i] = (float)i * 0.5f;
    tmp_path(dir, sizeof dir, "big");
    ASSERT_OK(mkdir(dir, 0777));
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    ASSERT_OK(wvtest_write_file(path, "old", 3));
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "w", WV_F32, 1, &s, v, (size_t)s * 4,
                           WV_DATA_TAKE));
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.cast = WV_BF16;
    wv__fault_arm(WV__FAULT_WRITE, ENOSPC);
    ASSERT_EQ(wv_model_save(m, path, &so), WV_IO);
    wv__fault_arm(WV__FAULT_WRITE, 0);
    ASSERT_CONTAINS(wv_model_errmsg(m), strerror(ENOSPC));
    ASSERT(same_file(path, "old", 3));
    ASSERT_EQ(count_tmp_files(dir), 0);
    ASSERT_OK(wv_model_save(m, path, &so));
    unsigned char *b = wvtest_read_file(path, &old_len);
    ASSERT_NOT_NULL(b);
    ASSERT(old_len > s * 2);
    free(b);
    wv_model_free(m);
}

TEST_IMPL(st_pread_fault)
{
    char eb[WV_ERRBUF_SIZE];
    wv_model *m = (wv_model *)1;
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    o.flags = WV_LOAD_PREAD;
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;
    wv__fault_arm(WV__FAULT_PREAD, EIO);
    int rc = wv_model_load(CANDLE, &o, &m);
    wv__fault_arm(WV__FAULT_PREAD, 0);
    ASSERT_EQ(rc, WV_IO);
    ASSERT(m == NULL);
    ASSERT_CONTAINS(eb, "read failed");
}

/* ---- out of memory -------------------------------------------------------- */

TEST_IMPL(st_oom_load)
{
    size_t flen;
    unsigned char *file = wvtest_read_file(SAMPLE_OVERALL, &flen);
    ASSERT_NOT_NULL(file);
    /* 0 mmap, 1 pread, 2 memory */
    for (int mode = 0; mode < 3; mode++) {
        long n;
        for (n = 1; n < 100000; n++) {
            wv_model *m = (wv_model *)1;
            int rc;
            char eb[WV_ERRBUF_SIZE] = "";
            wv_load_opts o = WV_LOAD_OPTS_INIT;
            o.flags = mode == 1 ? WV_LOAD_PREAD : WV_LOAD_MMAP;
            o.errbuf = eb;
            o.errbuf_size = sizeof eb;
            wv__alloc_fail_after(n);
            if (mode == 2) {
                rc = wv_model_load_mem(file, flen, &o, &m);
            } else {
                rc = wv_model_load(SAMPLE_OVERALL, &o, &m);
            }
            wv__alloc_fail_after(0);
            if (rc == WV_OK) {
                ASSERT_EQ(wv_model_count(m), 9);
                ASSERT_EQ(wv_model_meta_count(m), 1);
                wv_model_free(m);
                break;
            }
            if (rc != WV_NOMEM || m != NULL)
                WVT_FAIL("mode %d, allocation %ld: rc %d \"%s\"", mode, n, rc,
                         eb);
        }
        ASSERT(n > 3); /* some allocations were actually failed */
    }
    free(file);
}

TEST_IMPL(st_oom_save)
{
    char dir[256], path[512];
    size_t old_len;
    wv_model *m = model_all_dtypes();
    ASSERT_NOT_NULL(m);
    ASSERT_OK(wv_model_set_meta(m, "k", "v"));
    tmp_path(dir, sizeof dir, "oom");
    ASSERT_OK(mkdir(dir, 0777));
    snprintf(path, sizeof path, "%s/o.safetensors", dir);
    ASSERT_OK(wvtest_write_file(path, "previous", 8));
    for (int cast = 0; cast < 2; cast++) {
        wv_save_opts so = WV_SAVE_OPTS_INIT;
        so.cast = cast ? WV_F16 : WV_DTYPE_INVALID;
        unsigned char *prev = wvtest_read_file(path, &old_len);
        ASSERT_NOT_NULL(prev);
        long n;
        for (n = 1; n < 100000; n++) {
            wv__alloc_fail_after(n);
            int rc = wv_model_save(m, path, &so);
            wv__alloc_fail_after(0);
            if (rc == WV_OK)
                break;
            if (rc != WV_NOMEM)
                WVT_FAIL("allocation %ld: rc %d \"%s\"", n, rc,
                         wv_model_errmsg(m));
            ASSERT(wv_model_errmsg(m)[0] != '\0');
            ASSERT(same_file(path, prev, old_len));
            ASSERT_EQ(count_tmp_files(dir), 0);
        }
        ASSERT(n > 2);
        free(prev);
        wv_model *r = NULL;
        ASSERT_OK(load_path(path, 0, &r));
        ASSERT_EQ(wv_model_count(r), wv_model_count(m));
        ASSERT_STREQ(wv_model_get_meta(r, "k"), "v");
        wv_model_free(r);
    }
    wv_model_free(m);
}

/* A sharded set loaded by name: only the shards holding the wanted tensors
 * are read, each asked for its own; a name the index lacks is refused
 * naming the index. */
TEST_IMPL(shard_load_names)
{
    wv_model *m, *r = NULL;
    const uint64_t sh[1] = {1024};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "a", WV_F32, 1, sh, 1));
    ASSERT_OK(wvtest_add_pattern(m, "b", WV_F32, 1, sh, 2));
    ASSERT_OK(wvtest_add_pattern(m, "c", WV_F32, 1, sh, 3));
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.shard_size = 4096; /* one tensor per shard */
    ASSERT_OK(wv_model_save(m, wvtest_path("sh.safetensors"), &so));
    const char *idx = wvtest_path("sh.safetensors.index.json");
    char eb[WV_ERRBUF_SIZE] = "";
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;
    const char *one[] = {"b"}, *two[] = {"c", "a"}, *bad[] = {"a", "nope"};
    o.names = one;
    o.n_names = 1;
    /* the shards of "a" and "c" are not read: gone, the load still works */
    char sa[512], sc[512], keep[520];
    snprintf(sa, sizeof sa, "%s", wvtest_path("sh-00001-of-00003.safetensors"));
    snprintf(sc, sizeof sc, "%s", wvtest_path("sh-00003-of-00003.safetensors"));
    snprintf(keep, sizeof keep, "%s.kept", sa);
    ASSERT(rename(sa, keep) == 0);
    ASSERT(unlink(sc) == 0);
    ASSERT_OK(wv_model_load(idx, &o, &r));
    ASSERT_EQ(wv_model_count(r), 1);
    ASSERT(memcmp(wv_tensor_data(wv_model_find(r, "b")),
                  wv_tensor_data(wv_model_find(m, "b")), 4096) == 0);
    wv_model_free(r);
    ASSERT(rename(keep, sa) == 0);
    ASSERT_OK(wv_model_save(m, wvtest_path("sh.safetensors"), &so));
    o.names = two;
    o.n_names = 2;
    ASSERT_OK(wv_model_load(idx, &o, &r));
    ASSERT_EQ(wv_model_count(r), 2);
    ASSERT_NOT_NULL(wv_model_find(r, "a"));
    ASSERT_NOT_NULL(wv_model_find(r, "c"));
    wv_model_free(r);
    o.names = bad;
    ASSERT_EQ(wv_model_load(idx, &o, &r), WV_NOTFOUND);
    ASSERT_CONTAINS(eb, "sh.safetensors.index.json: no tensor named 'nope'");
    wv_model_free(m);
}

/* A hostile index with many entries, each in a shard of its own: grouping
 * the tensors by shard is O(n log n) (it was a quadratic scan: 200000
 * shards took minutes), and the counts are right. */
TEST_IMPL(shard_index_many_shards)
{
    const size_t n = 200000;
    struct wv__buf b = {0};
    wv__buf_adds(&b, "{\"weight_map\": {");
    for (size_t i = 0; i < n; i++) {
        wv__buf_addf(&b, "%s\"t%zu\": \"s%zu.safetensors\"",
                     i ? ", " : "", i, (n - i) / 2);
    }
    wv__buf_adds(&b, "}}");
    ASSERT(!b.oom);
    struct wv__err e = {0};
    size_t ne = 0, ns = 0;
    ASSERT_OK(wv__shard_check_index(b.p, b.len, &ne, &ns, &e));
    ASSERT_EQ(ne, n);
    ASSERT_EQ(ns, n / 2 + 1);
    wv__buf_release(&b);
}
