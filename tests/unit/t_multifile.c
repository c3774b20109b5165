/*
 * t_multifile.c -- writers of several files (ONNX with OUT.data, TF.js
 * model.json with its shards, a TensorFlow bundle's .index with its data
 * files) commit them as one set (core.h, wv__wfile_side): a write over an
 * existing model that fails late (an fsync fault injected at the main
 * file, after every side file is written) leaves the previous files byte
 * for byte; and the side files of the previous version the new one does
 * not reference (another shard count, OUT.data no longer used) are removed
 * once the new set is committed, nothing else.
 */
#include "wv_int.h"
#include "wvtest.h"

#include <sys/stat.h>
#include <unistd.h>

struct snap {
    const char *path;
    unsigned char *p;
    size_t n;
};

static void snap_take(struct snap *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s[i].p = wvtest_read_file(s[i].path, &s[i].n);
        ASSERT_NOT_NULL(s[i].p);
    }
}

static void snap_same(struct snap *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        unsigned char *p = wvtest_read_file(s[i].path, &len);
        if (p == NULL || len != s[i].n || memcmp(p, s[i].p, len) != 0)
            WVT_FAIL("%s changed by a failed write", s[i].path);
        free(p);
        free(s[i].p);
        s[i].p = NULL;
    }
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* a set of two tensors, a (float32 [4]) and b (float32 [3]); NULL if
 * memory is short (the test then fails) */
static wv_model *two(unsigned seed)
{
    wv_model *m = NULL;
    uint64_t a[1] = {4}, b[1] = {3};
    if (wv_model_new(&m) != 0)
        return NULL;
    if (wvtest_add_pattern(m, "a", WV_F32, 1, a, seed) != 0 ||
        wvtest_add_pattern(m, "b", WV_F32, 1, b, seed + 1) != 0) {
        wv_model_free(m);
        return NULL;
    }
    return m;
}

TEST_IMPL(multifile_onnx)
{
    char tpl_ext[1024], tpl_in[1024];
    snprintf(tpl_ext, sizeof tpl_ext, "%s/onnx/ext_template.onnx",
             WV_TEST_DATA);
    snprintf(tpl_in, sizeof tpl_in, "%s/onnx/inline_template.onnx",
             WV_TEST_DATA);
    wvtest_input(tpl_ext);
    wvtest_input(tpl_in);
    char *out = wvtest_path("m.onnx"), *data = wvtest_path("m.onnx.data");
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.format = WV_FMT_ONNX;
    so.template_path = tpl_ext;
    wv_model *m1 = two(1), *m2 = two(7), *r = NULL;
    ASSERT(m1 && m2);
    ASSERT_OK(wv_model_save(m1, out, &so));
    ASSERT(exists(data));
    struct snap s[2] = {{out, NULL, 0}, {data, NULL, 0}};
    snap_take(s, 2);
    /* fsync 1: m.onnx.data, 2: m.onnx */
    wv__fault_arm_nth(WV__FAULT_FSYNC, EIO, 2);
    ASSERT_EQ(wv_model_save(m2, out, &so), WV_IO);
    wv__fault_arm(WV__FAULT_FSYNC, 0);
    snap_same(s, 2);
    ASSERT_OK(wv_model_load(out, NULL, &r));
    ASSERT_MEMEQ(wv_tensor_data(wv_model_find(r, "a")),
                 wv_tensor_data(wv_model_find(m1, "a")), 16);
    wv_model_free(r);
    /* a refused tensor: nothing written either */
    uint64_t c[1] = {2};
    ASSERT_OK(wvtest_add_pattern(m2, "c", WV_F32, 1, c, 3));
    ASSERT_EQ(wv_model_save(m2, out, &so), WV_NOTFOUND);
    snap_take(s, 2);
    snap_same(s, 2);
    wv_model_free(m2);
    m2 = two(7);
    ASSERT(m2);
    /* the new version has no external data: the old OUT.data goes */
    so.template_path = tpl_in;
    ASSERT_OK(wv_model_save(m2, out, &so));
    ASSERT(!exists(data));
    ASSERT_OK(wv_model_load(out, NULL, &r));
    ASSERT_MEMEQ(wv_tensor_data(wv_model_find(r, "b")),
                 wv_tensor_data(wv_model_find(m2, "b")), 12);
    wv_model_free(r);
    /* and back: OUT.data again */
    so.template_path = tpl_ext;
    ASSERT_OK(wv_model_save(m1, out, &so));
    ASSERT(exists(data));
    wv_model_free(m1);
    wv_model_free(m2);
}

TEST_IMPL(multifile_tfjs)
{
    char *dir = wvtest_path("tj");
    ASSERT_OK(mkdir(dir, 0777));
    char out[1024], sh[3][1024], one[1024], keep[2][1024];
    snprintf(out, sizeof out, "%s/model.json", dir);
    for (int i = 0; i < 3; i++)
        snprintf(sh[i], sizeof sh[i], "%s/group1-shard%dof3.bin", dir, i + 1);
    snprintf(one, sizeof one, "%s/group1-shard1of1.bin", dir);
    snprintf(keep[0], sizeof keep[0], "%s/group1-shard1of3.bin.orig", dir);
    snprintf(keep[1], sizeof keep[1], "%s/group2-shard1of3.bin", dir);
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.format = WV_FMT_TFJS;
    so.shard_size = 10; /* 28 bytes: 3 shards */
    wv_model *m1 = two(1), *m2 = two(7);
    ASSERT(m1 && m2);
    ASSERT_OK(wv_model_save(m1, out, &so));
    struct snap s[4] = {{out, NULL, 0}, {sh[0], NULL, 0}, {sh[1], NULL, 0},
                        {sh[2], NULL, 0}};
    snap_take(s, 4);
    /* fsync 1-3: the shards, 4: model.json */
    wv__fault_arm_nth(WV__FAULT_FSYNC, EIO, 4);
    ASSERT_EQ(wv_model_save(m2, out, &so), WV_IO);
    wv__fault_arm(WV__FAULT_FSYNC, 0);
    snap_same(s, 4);
    /* one shard now: the three of the old count go, other names stay */
    ASSERT_OK(wvtest_write_file(keep[0], "x", 1));
    ASSERT_OK(wvtest_write_file(keep[1], "x", 1));
    so.shard_size = 0;
    ASSERT_OK(wv_model_save(m2, out, &so));
    for (int i = 0; i < 3; i++)
        ASSERT(!exists(sh[i]));
    ASSERT(exists(one));
    ASSERT(exists(keep[0]) && exists(keep[1]));
    wv_model *r = NULL;
    ASSERT_OK(wv_model_load(out, NULL, &r));
    ASSERT_EQ(wv_model_count(r), 2);
    wv_model_free(r);
    wv_model_free(m1);
    wv_model_free(m2);
}

TEST_IMPL(multifile_tfbundle)
{
    char *out = wvtest_path("b.index");
    char *d2[2] = {wvtest_path("b.data-00000-of-00002"),
                   wvtest_path("b.data-00001-of-00002")};
    char *d1 = wvtest_path("b.data-00000-of-00001");
    char *other = wvtest_path("bb.data-00000-of-00002");
    wv_model *m1 = two(1), *m2 = two(7);
    ASSERT(m1 && m2);
    ASSERT_OK(wv_model_set_meta(m1, "tensorflow.shards", "1,1"));
    ASSERT_OK(wv_model_set_meta(m2, "tensorflow.shards", "1,1"));
    ASSERT_OK(wv_model_save(m1, out, NULL));
    struct snap s[3] = {{out, NULL, 0}, {d2[0], NULL, 0}, {d2[1], NULL, 0}};
    snap_take(s, 3);
    /* fsync 1-2: the data files, 3: the index */
    wv__fault_arm_nth(WV__FAULT_FSYNC, EIO, 3);
    ASSERT_EQ(wv_model_save(m2, out, NULL), WV_IO);
    wv__fault_arm(WV__FAULT_FSYNC, 0);
    snap_same(s, 3);
    /* one data file now: those of 2 go, another prefix's stay */
    ASSERT_OK(wvtest_write_file(other, "x", 1));
    wv_model_free(m2);
    m2 = two(7);
    ASSERT(m2);
    ASSERT_OK(wv_model_save(m2, out, NULL));
    ASSERT(!exists(d2[0]) && !exists(d2[1]));
    ASSERT(exists(d1) && exists(other));
    wv_model *r = NULL;
    ASSERT_OK(wv_model_load(out, NULL, &r));
    ASSERT_MEMEQ(wv_tensor_data(wv_model_find(r, "a")),
                 wv_tensor_data(wv_model_find(m2, "a")), 16);
    wv_model_free(r);
    wv_model_free(m1);
    wv_model_free(m2);
}
