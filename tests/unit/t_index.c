/*
 * t_index.c -- index loads (WV_LOAD_INDEX): every format lists the same
 * tensors (names, dtypes, shapes, sizes) and metadata as a full load;
 * those that skip the data (safetensors, pth, GGUF, npy) give tensors
 * without data, which cannot be read, hashed, saved or committed.
 */
#include "wv_int.h"
#include "wvtest.h"

static wv_model *index_set(void)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    float w[6 * 4];
    for (int i = 0; i < 24; i++)
        w[i] = (float)i - 3.5f;
    uint64_t s2[2] = {6, 4}, s1[1] = {3};
    int64_t b[3] = {1, -2, 3};
    wv_model_add(m, "layer.weight", WV_F32, 2, s2, w, sizeof w, WV_DATA_COPY);
    wv_model_add(m, "layer.bias", WV_I64, 1, s1, b, sizeof b, WV_DATA_COPY);
    wv_model_set_meta(m, "step", "7");
    return m;
}

/* Save m as `ext`, load it whole and as an index (mapped and pread), and
 * compare; `skips`: the format's reader leaves the data out. */
static void check(wv_model *m, const char *ext, bool skips)
{
    char path[512];
    snprintf(path, sizeof path, "%s/index%s", wvtest_tmpdir(), ext);
    ASSERT_OK(wv_model_save(m, path, NULL));
    wv_model *full, *idx;
    ASSERT_OK(wv_model_load(path, NULL, &full));
    for (int pread = 0; pread < 2; pread++) {
        wv_load_opts o = WV_LOAD_OPTS_INIT;
        o.flags = WV_LOAD_INDEX | (pread ? WV_LOAD_PREAD : 0);
        ASSERT_OK(wv_model_load(path, &o, &idx));
        ASSERT_STREQ(wv_model_source_format(idx),
                     wv_model_source_format(full));
        ASSERT_EQ(wv_model_count(idx), wv_model_count(full));
        for (size_t i = 0; i < wv_model_count(full); i++) {
            const wv_tensor *t = wv_model_tensor(full, i);
            const wv_tensor *u = wv_model_tensor(idx, i);
            ASSERT_STREQ(wv_tensor_name(u), wv_tensor_name(t));
            ASSERT_EQ(wv_tensor_dtype(u), wv_tensor_dtype(t));
            ASSERT_EQ(wv_tensor_ndim(u), wv_tensor_ndim(t));
            for (int d = 0; d < wv_tensor_ndim(t); d++)
                ASSERT_EQ(wv_tensor_shape(u)[d], wv_tensor_shape(t)[d]);
            ASSERT_EQ(wv_tensor_nbytes(u), wv_tensor_nbytes(t));
            if (skips) {
                unsigned char d[32], one;
                ASSERT(wv_tensor_data(u) == NULL);
                ASSERT_EQ(wv_tensor_sha256(u, d), WV_MISUSE);
                ASSERT_EQ(wv_tensor_read(u, 0, &one, 1), WV_MISUSE);
            }
        }
        ASSERT_EQ(wv_model_meta_count(idx), wv_model_meta_count(full));
        /* no data to write or commit */
        char out[512];
        snprintf(out, sizeof out, "%s/index-copy.safetensors",
                 wvtest_tmpdir());
        ASSERT_EQ(wv_model_save(idx, out, NULL), WV_MISUSE);
        ASSERT_CONTAINS(wv_model_errmsg(idx), "WV_LOAD_INDEX");
        void *dst[8] = {0};
        ASSERT_EQ(wv_model_read_all(idx, dst, wv_model_count(idx)),
                  WV_MISUSE);
        wv_model_free(idx);
    }
    wv_model_free(full);
}

TEST_IMPL(index_load_formats)
{
    wv_model *m = index_set();
    ASSERT_NOT_NULL(m);
    check(m, ".safetensors", true);
    check(m, ".pth", true);
    check(m, ".gguf", true);
    check(m, ".npz", true); /* its npy members skip their data too */
    check(m, ".h5", false);
    wv_model_free(m);

    wv_model *one;
    ASSERT_OK(wv_model_new(&one));
    float v[5] = {1, 2, 3, 4, 5};
    uint64_t s[1] = {5};
    ASSERT_OK(wv_model_add(one, "array", WV_F32, 1, s, v, sizeof v,
                           WV_DATA_COPY));
    check(one, ".npy", true);
    wv_model_free(one);
}

TEST_IMPL(index_load_no_commit)
{
    char dir[512], path[512], id[WV_ID_HEX];
    wv_repo *r;
    wv_model *m = index_set(), *idx;
    ASSERT_NOT_NULL(m);
    snprintf(path, sizeof path, "%s/c.safetensors", wvtest_tmpdir());
    snprintf(dir, sizeof dir, "%s/index-repo", wvtest_tmpdir());
    ASSERT_OK(wv_model_save(m, path, NULL));
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    o.flags = WV_LOAD_INDEX;
    ASSERT_OK(wv_model_load(path, &o, &idx));
    ASSERT_OK(wv_repo_init(dir, NULL));
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    ASSERT_EQ(wv_repo_commit(r, idx, NULL, NULL, id), WV_MISUSE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "WV_LOAD_INDEX");
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
    wv_repo_close(r);
    wv_model_free(idx);
    wv_model_free(m);
}
