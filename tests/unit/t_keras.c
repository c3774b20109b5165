/*
 * t_keras.c -- Keras HDF5 (.h5, .weights.h5) and .keras reading and
 * writing.
 *
 * Round trips of every dtype through both layouts (mmap, pread and memory
 * loads), casts, metadata (foreign keys kept exactly through the
 * weightvault.foreign_keys marker) and the legacy layer_names bookkeeping,
 * the real Keras-written fixtures in WV_FIXTURES/h5 with exact names,
 * shapes and values, and refusals with their messages.
 */
#include "wv_int.h"
#include "wvtest.h"
#include "wvsets.h"

static char *fpath(const char *rel)
{
    return wvtest_fixture("h5", rel);
}

/* 1 if the sets hold the same tensors (by name: the legacy layout groups
 * tensors per layer, so interleaved layers read back grouped). */

/* Save, reload by mmap, pread and from memory; 1 if all equal `m`. */
static int roundtrip(wv_model *m, const char *file)
{
    const char *p = wvtest_path(file);
    if (wv_model_save(m, p, NULL) != WV_OK) {
        fprintf(stderr, "save %s: %s\n", p, wv_model_errmsg(m));
        return 0;
    }
    int ok = 1;
    for (int mode = 0; mode < 3; mode++) {
        wv_load_opts lo = WV_LOAD_OPTS_INIT;
        char eb[WV_ERRBUF_SIZE] = "";
        unsigned char *img = NULL;
        size_t n = 0;
        wv_model *r = NULL;
        int rc;
        lo.errbuf = eb;
        lo.errbuf_size = sizeof eb;
        if (mode == 2) {
            img = wvtest_read_file(p, &n);
            rc = wv_model_load_mem(img, n, &lo, &r);
        } else {
            lo.flags = mode ? WV_LOAD_PREAD : WV_LOAD_MMAP;
            rc = wv_model_load(p, &lo, &r);
        }
        if (rc != WV_OK) {
            fprintf(stderr, "load %s (mode %d): %s\n", p, mode, eb);
            ok = 0;
        } else {
            ok &= wvf_same(m, r, WVF_BY_NAME);
            ok &= strcmp(wv_model_source_format(r), "keras") == 0;
        }
        wv_model_free(r);
        free(img);
    }
    return ok;
}

static const wv_dtype all_dtypes[] = {
    WV_BOOL, WV_U8,  WV_I8,  WV_U16, WV_I16,  WV_U32,     WV_I32,    WV_U64,
    WV_I64,  WV_F16, WV_BF16, WV_F32, WV_F64, WV_C64, WV_F8_E4M3, WV_F8_E5M2,
};
#define N_DTYPES (sizeof all_dtypes / sizeof all_dtypes[0])

TEST_IMPL(keras_roundtrip_legacy_all_dtypes)
{
    wv_model *m = NULL;
    char name[64];
    ASSERT_OK(wv_model_new(&m));
    for (size_t i = 0; i < N_DTYPES; i++) {
        uint64_t s3[3] = {2, 3, 1 + i};
        uint64_t s1[1] = {5};
        snprintf(name, sizeof name, "layer_%zu/layer_%zu/w:0", i, i);
        ASSERT_OK(wvtest_add_pattern(m, name, all_dtypes[i], 3, s3,
                                     (unsigned)i));
        snprintf(name, sizeof name, "layer_%zu/layer_%zu/b:0", i, i);
        ASSERT_OK(wvtest_add_pattern(m, name, all_dtypes[i], 1, s1, 9));
        snprintf(name, sizeof name, "scalars/s%zu", i);
        ASSERT_OK(wvtest_add_pattern(m, name, all_dtypes[i], 0, NULL, 3));
    }
    uint64_t e[2] = {0, 4};
    ASSERT_OK(wvtest_add_pattern(m, "empty/empty/e:0", WV_F32, 2, e, 0));
    ASSERT_OK(wvtest_add_pattern(m, "rootlevel", WV_I32, 1, e + 1, 0));
    ASSERT(roundtrip(m, "all.h5"));
    wv_model_free(m);
    return;
}

TEST_IMPL(keras_roundtrip_keras3_all_dtypes)
{
    wv_model *m = NULL;
    char name[64];
    ASSERT_OK(wv_model_new(&m));
    for (size_t i = 0; i < N_DTYPES; i++) {
        uint64_t s[2] = {7, 1 + i};
        snprintf(name, sizeof name, "layers/dense_%zu/vars/0", i);
        ASSERT_OK(wvtest_add_pattern(m, name, all_dtypes[i], 2, s,
                                     (unsigned)i));
        snprintf(name, sizeof name, "layers/dense_%zu/vars/1", i);
        ASSERT_OK(wvtest_add_pattern(m, name, all_dtypes[i], 0, NULL, 1));
    }
    for (int i = 0; i < 12; i++) {
        uint64_t s[1] = {3};
        snprintf(name, sizeof name, "optimizer/vars/%d", i);
        ASSERT_OK(wvtest_add_pattern(m, name, WV_F32, 1, s, (unsigned)i));
    }
    ASSERT(roundtrip(m, "all.weights.h5"));
    /* The same names without the .weights.h5 suffix pick Keras 3 too. */
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.format = WV_FMT_KERAS;
    ASSERT_OK(wv_model_save(m, wvtest_path("all.bin"), &so));
    wv_model *r = NULL;
    ASSERT_OK(wv_model_load(wvtest_path("all.bin"), NULL, &r));
    ASSERT(wvf_same(m, r, WVF_BY_NAME));
    wv_model_free(r);
    wv_model_free(m);
    return;
}

TEST_IMPL(keras_cast_f16)
{
    wv_model *m = NULL, *r = NULL;
    float v[4] = {1.0f, -2.5f, 65504.0f, 0.1f};
    uint64_t s[1] = {4};
    uint16_t want[4];
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "d/d/kernel:0", WV_F32, 1, s, v, sizeof v,
                           WV_DATA_COPY));
    ASSERT_OK(wv_model_add(m, "d/d/count:0", WV_I64, 0, NULL, "\1\0\0\0\0\0"
                           "\0\0", 8, WV_DATA_COPY));
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.cast = WV_F16;
    ASSERT_OK(wv_model_save(m, wvtest_path("cast.h5"), &so));
    ASSERT_OK(wv_model_load(wvtest_path("cast.h5"), NULL, &r));
    const wv_tensor *t = wv_model_find(r, "d/d/kernel:0");
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(wv_tensor_dtype(t), WV_F16);
    wv__cast(WV_F32, v, WV_F16, want, 4);
    ASSERT_MEMEQ(wv_tensor_data(t), want, sizeof want);
    ASSERT_EQ(wv_tensor_dtype(wv_model_find(r, "d/d/count:0")), WV_I64);
    wv_model_free(r);
    wv_model_free(m);
    return;
}

TEST_IMPL(keras_metadata_and_layer_names)
{
    wv_model *m = NULL, *r = NULL;
    uint64_t s[1] = {2};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "dense_b/dense_b/kernel:0", WV_F32, 1, s,
                                 1));
    ASSERT_OK(wvtest_add_pattern(m, "dense_a/dense_a/kernel:0", WV_F32, 1, s,
                                 2));
    ASSERT_OK(wv_model_set_meta(m, "keras.layer_names",
                                "[\"input\", \"dense_b\", \"drop\"]"));
    ASSERT_OK(wv_model_set_meta(m, "keras.backend", "jax"));
    ASSERT_OK(wv_model_set_meta(m, "format", "pt"));
    ASSERT(roundtrip(m, "meta.h5"));
    ASSERT_OK(wv_model_load(wvtest_path("meta.h5"), NULL, &r));
    ASSERT_STREQ(wv_model_get_meta(r, "keras.layer_names"),
                 "[\"input\", \"dense_b\", \"drop\", \"dense_a\"]");
    ASSERT_STREQ(wv_model_get_meta(r, "keras.backend"), "jax");
    /* No invented version or backend: the source's, or none. */
    ASSERT(wv_model_get_meta(r, "keras.keras_version") == NULL);
    /* Foreign metadata reads back under its own key. */
    ASSERT_STREQ(wv_model_get_meta(r, "format"), "pt");
    ASSERT(wv_model_get_meta(r, "keras.format") == NULL);
    wv_model_free(r);
    /* With a model config: the full-model layout, same names. */
    ASSERT_OK(wv_model_set_meta(m, "keras.model_config",
                                "{\"class_name\": \"Sequential\"}"));
    ASSERT(roundtrip(m, "full.h5"));
    ASSERT_OK(wv_model_load(wvtest_path("full.h5"), NULL, &r));
    ASSERT_STREQ(wv_model_get_meta(r, "keras.model_config"),
                 "{\"class_name\": \"Sequential\"}");
    wv_model_free(r);
    wv_model_free(m);
    return;
}

/* Foreign metadata (keys without "keras.") is listed in the root
 * attribute weightvault.foreign_keys and reads back exactly, in both
 * layouts; the marker is not metadata; "keras.X" wins over a bare "X"
 * (legacy; the Keras 3 layout writes no "keras.X");
 * a marker that is not a JSON list is ordinary metadata; metadata that
 * would take the marker's name beside foreign keys is refused. */
TEST_IMPL(keras_foreign_metadata)
{
    static const char *const names[] = {"meta.h5", "meta.weights.h5"};
    static const char *const kv[][2] = {
        {"mxnet.symbol", "{\n  \"nodes\": []\n}"},
        {"gguf.general.name", "str:\"llama\""},
        {"caf\xc3\xa9", "\xe2\x98\x83 \"q\" \\ [\"x\"]"},
        /* a config that places the Keras 3 tensor in the legacy layout */
        {"keras.model_config",
         "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", "
         "\"layers\": [{\"class_name\": \"Dense\", \"config\": "
         "{\"name\": \"d\", \"use_bias\": false}}]}}"},
    };
    wv_model *m = NULL, *r = NULL;
    uint64_t s[1] = {2};
    for (size_t f = 0; f < 2; f++) {
        ASSERT_OK(wv_model_new(&m));
        ASSERT_OK(wvtest_add_pattern(m, "layers/dense/vars/0", WV_F32, 1, s,
                                     1));
        for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
            ASSERT_OK(wv_model_set_meta(m, kv[i][0], kv[i][1]));
        ASSERT_OK(wv_model_set_meta(m, "backend", "dropped"));
        ASSERT_OK(wv_model_set_meta(m, "keras.backend", "jax"));
        ASSERT_OK(wv_model_save(m, wvtest_path(names[f]), NULL));
        ASSERT_OK(wv_model_load(wvtest_path(names[f]), NULL, &r));
        /* .h5: the Keras 3 tensor translated to the legacy layout (Dense
         * "d" without bias: its kernel, Keras 2 naming). */
        ASSERT(wv_model_find(r, f ? "layers/dense/vars/0"
                                  : "d/d/kernel:0") != NULL);
        /* .weights.h5: no "keras.X" at the root, as Keras 3 writes it;
         * the bare "backend" is then foreign metadata like the others. */
        for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
            if (f && strncmp(kv[i][0], "keras.", 6) == 0)
                ASSERT(wv_model_get_meta(r, kv[i][0]) == NULL);
            else
                ASSERT_STREQ(wv_model_get_meta(r, kv[i][0]), kv[i][1]);
        }
        if (f) {
            ASSERT(wv_model_get_meta(r, "keras.backend") == NULL);
            ASSERT_STREQ(wv_model_get_meta(r, "backend"), "dropped");
        } else {
            ASSERT_STREQ(wv_model_get_meta(r, "keras.backend"), "jax");
            ASSERT(wv_model_get_meta(r, "backend") == NULL);
        }
        ASSERT(wv_model_get_meta(r, "keras.weightvault.foreign_keys") ==
               NULL);
        ASSERT(wv_model_get_meta(r, "keras.mxnet.symbol") == NULL);
        wv_model_free(r);
        wv_model_free(m);
    }
    /* Not a JSON list: kept; the same name beside foreign keys: refused. */
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "d/w", WV_F32, 1, s, 1));
    ASSERT_OK(wv_model_set_meta(m, "keras.weightvault.foreign_keys", "x"));
    ASSERT(roundtrip(m, "marker.h5"));
    ASSERT_OK(wv_model_load(wvtest_path("marker.h5"), NULL, &r));
    ASSERT_STREQ(wv_model_get_meta(r, "keras.weightvault.foreign_keys"),
                 "x");
    wv_model_free(r);
    ASSERT_OK(wv_model_set_meta(m, "other", "y"));
    ASSERT_EQ(wv_model_save(m, wvtest_path("marker2.h5"), NULL), WV_FORMAT);
    ASSERT_CONTAINS(wv_model_errmsg(m), "root attribute "
                    "'weightvault.foreign_keys', which is reserved");
    ASSERT(access(wvtest_path("marker2.h5"), F_OK) != 0);
    wv_model_free(m);
    return;
}

TEST_IMPL(keras_fixture_keras2_weights)
{
    wv_model *m = NULL;
    static const char *names[] = {
        "dense_106/dense_106/kernel:0", "dense_106/dense_106/bias:0",
        "dense_107/dense_107/kernel:0", "dense_107/dense_107/bias:0",
        "dense_108/dense_108/kernel:0", "dense_108/dense_108/bias:0",
        "dense_109/dense_109/kernel:0", "dense_109/dense_109/bias:0",
        "dense_110/dense_110/kernel:0", "dense_110/dense_110/bias:0",
    };
    ASSERT_OK(wv_model_load(fpath("keras2-weights-dearj611/model_weights.h5"),
                            NULL, &m));
    ASSERT_EQ(wv_model_count(m), 10);
    for (size_t i = 0; i < 10; i++) {
        const wv_tensor *t = wv_model_tensor(m, i);
        ASSERT_STREQ(wv_tensor_name(t), names[i]);
        ASSERT_EQ(wv_tensor_dtype(t), WV_F32);
    }
    const wv_tensor *k = wv_model_tensor(m, 0);
    ASSERT_EQ(wv_tensor_ndim(k), 2);
    ASSERT_EQ(wv_tensor_shape(k)[0], 5);
    ASSERT_EQ(wv_tensor_shape(k)[1], 64);
    ASSERT_MEMEQ(wv_tensor_data(k), "\x0a\x9f\xf1\x3a\x66\x30\xa5\xbc", 8);
    ASSERT_MEMEQ(wv_tensor_data(wv_model_tensor(m, 9)), "\x4f\xa2\xf9\x3e",
                 4);
    ASSERT_STREQ(wv_model_get_meta(m, "keras.keras_version"), "2.3.1");
    ASSERT_STREQ(wv_model_get_meta(m, "keras.backend"), "tensorflow");
    ASSERT_CONTAINS(wv_model_get_meta(m, "keras.layer_names"),
                    "\"dense_106\", \"dropout_85\"");
    wv_model_free(m);
    return;
}

TEST_IMPL(keras_fixture_three_ways)
{
    wv_model *h = NULL, *w = NULL, *z = NULL;
    ASSERT_OK(wv_model_load(fpath("keras3-mnist-shreyansh/model.h5"), NULL,
                            &h));
    ASSERT_OK(wv_model_load(fpath("keras3-mnist-shreyansh/model.weights.h5"),
                            NULL, &w));
    ASSERT_OK(wv_model_load(fpath("keras3-mnist-shreyansh/model.keras"), NULL,
                            &z));
    /* model.h5's optimizer_weights are the same 18 variables, named as
     * .weights.h5 names them. */
    ASSERT_EQ(wv_model_count(h), 26);
    ASSERT_EQ(wv_model_count(w), 26);
    for (int i = 0; i < 18; i++) {
        char a[32];
        snprintf(a, sizeof a, "optimizer/vars/%d", i);
        const wv_tensor *x = wv_model_find(h, a);
        const wv_tensor *y = wv_model_find(w, a);
        ASSERT_NOT_NULL(x);
        ASSERT_NOT_NULL(y);
        ASSERT_EQ(wv_tensor_dtype(x), wv_tensor_dtype(y));
        ASSERT_EQ(wv_tensor_nbytes(x), wv_tensor_nbytes(y));
        ASSERT_MEMEQ(wv_tensor_data(x), wv_tensor_data(y),
                     wv_tensor_nbytes(x));
    }
    ASSERT_CONTAINS(wv_model_get_meta(h, "keras.optimizer_weight_names"),
                    "\"adam/dense_kernel_momentum\"");
    ASSERT(wvf_same(w, z, WVF_BY_NAME));
    static const char *layer[] = {"dense", "dense_1", "dense_2", "dense_3"};
    for (int i = 0; i < 4; i++) {
        char a[64], b[64];
        for (int v = 0; v < 2; v++) {
            snprintf(a, sizeof a, "%s/%s/%s", layer[i], layer[i],
                     v ? "bias" : "kernel");
            snprintf(b, sizeof b, "layers/%s/vars/%d", layer[i], v);
            const wv_tensor *x = wv_model_find(h, a);
            const wv_tensor *y = wv_model_find(w, b);
            ASSERT_NOT_NULL(x);
            ASSERT_NOT_NULL(y);
            ASSERT_EQ(wv_tensor_nbytes(x), wv_tensor_nbytes(y));
            ASSERT_MEMEQ(wv_tensor_data(x), wv_tensor_data(y),
                         wv_tensor_nbytes(x));
        }
    }
    const wv_tensor *it = wv_model_find(w, "optimizer/vars/0");
    ASSERT_EQ(wv_tensor_dtype(it), WV_I64);
    ASSERT_EQ(wv_tensor_ndim(it), 0);
    ASSERT_MEMEQ(wv_tensor_data(it), "\xf4\x44\0\0\0\0\0\0", 8);
    ASSERT_STREQ(wv_tensor_name(wv_model_tensor(w, 18)), "optimizer/vars/10");
    ASSERT_CONTAINS(wv_model_get_meta(h, "keras.model_config"),
                    "\"Sequential\"");
    ASSERT_NOT_NULL(wv_model_get_meta(h, "keras.training_config"));
    ASSERT_CONTAINS(wv_model_get_meta(z, "keras.metadata"), "3.14.0");
    ASSERT_CONTAINS(wv_model_get_meta(z, "keras.config"), "Sequential");
    ASSERT_CONTAINS(wv_model_get_meta(w, "keras.vars"),
                    "\"layers/flatten/vars\":\"flatten\"");
    /* Rewritten as .weights.h5 it reads back identically. */
    ASSERT(roundtrip(w, "mnist.weights.h5"));
    ASSERT(roundtrip(h, "mnist.h5"));
    wv_model_free(h);
    wv_model_free(w);
    wv_model_free(z);
    return;
}

static void expect_load_error(const void *buf, size_t n, int code,
                              const char *needle, int *failed)
{
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    char eb[WV_ERRBUF_SIZE] = "";
    wv_model *m = NULL;
    lo.format = WV_FMT_KERAS;
    lo.errbuf = eb;
    lo.errbuf_size = sizeof eb;
    int rc = wv_model_load_mem(buf, n, &lo, &m);
    if (rc != code || strstr(eb, needle) == NULL) {
        fprintf(stderr, "want %d '%s', got %d '%s'\n", code, needle, rc, eb);
        *failed = 1;
    }
    wv_model_free(m);
}

TEST_IMPL(keras_refusals)
{
    int failed = 0;
    unsigned char b[64] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    expect_load_error("hello world, not hdf5", 21, WV_FORMAT,
                      "neither an HDF5 file", &failed);
    expect_load_error(b, 12, WV_CORRUPT, "superblock truncated", &failed);
    b[8] = 7;
    expect_load_error(b, sizeof b, WV_FORMAT, "superblock version 7",
                      &failed);
    b[8] = 0;
    b[13] = 8;
    b[14] = 8;
    b[24] = 1;
    expect_load_error(b, sizeof b, WV_FORMAT, "base address is not 0",
                      &failed);
    b[24] = 0;
    b[40] = 0xff;
    expect_load_error(b, sizeof b, WV_CORRUPT, "truncated", &failed);
    b[40] = 64;
    expect_load_error(b, sizeof b, WV_CORRUPT, "libhdf5 cannot open it",
                      &failed);
    /* A real file cut short. */
    size_t n = 0;
    unsigned char *img =
        wvtest_read_file(fpath("keras3-mnist-shreyansh/model.weights.h5"), &n);
    ASSERT_NOT_NULL(img);
    expect_load_error(img, n / 2, WV_CORRUPT, "truncated", &failed);
    free(img);
    ASSERT(!failed);
    return;
}

TEST_IMPL(keras_write_refusals)
{
    wv_model *m = NULL;
    uint64_t s[1] = {2};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "a//b", WV_F32, 1, s, 1));
    ASSERT_EQ(wv_model_save(m, wvtest_path("bad.h5"), NULL), WV_FORMAT);
    ASSERT_CONTAINS(wv_model_errmsg(m), "cannot be an HDF5 path");
    wv_model_free(m);
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "a/b", WV_F32, 1, s, 1));
    ASSERT_OK(wvtest_add_pattern(m, "a/b/c", WV_F32, 1, s, 1));
    ASSERT_EQ(wv_model_save(m, wvtest_path("clash.h5"), NULL), WV_FORMAT);
    ASSERT_CONTAINS(wv_model_errmsg(m), "'a/b'");
    ASSERT_EQ(wv_model_save(m, wvtest_path("x.keras"), NULL), WV_UNSUPPORTED);
    ASSERT(access(wvtest_path("clash.h5"), F_OK) != 0);
    wv_model_free(m);
    return;
}

/* Layout translation (keras_layout.c) from bad model configs: each one is
 * refused with WV_FORMAT and a one-line message naming the target, and no
 * file is left; a deep nesting bomb stops at the bound. */
TEST_IMPL(keras_translate_bad_configs)
{
    static const struct {
        const char *config, *msg;
    } bad[] = {
        {"{\"class_name\": \"Sequential\", \"config\": {\"layers\": [",
         "the model config"},
        {"[1, 2]", "the model config"},
        {"{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\"}}",
         "has no list of layers"},
        {"{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", "
         "\"layers\": [{\"class_name\": \"Dense\", \"config\": "
         "{\"name\": 7}}]}}",
         "no usable name"},
        {"{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", "
         "\"layers\": [{\"class_name\": \"Dense\", \"config\": "
         "{\"name\": \"a/b\"}}]}}",
         "no usable name"},
        {"{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", "
         "\"layers\": [{\"class_name\": \"Conv2D\", \"config\": "
         "{\"name\": \"d\"}}]}}",
         "layer 'd' (Conv2D) has 2 weights in the model config's terms, the "
         "file holds 0"},
        {"{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", "
         "\"layers\": [{\"class_name\": \"MyLayer\", \"config\": "
         "{\"name\": \"d\"}}]}}",
         "'layers/dense/vars/0' belongs to no layer"},
        {"{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", "
         "\"layers\": [{\"class_name\": \"Dense\", \"config\": "
         "{\"name\": \"d\", \"use_bias\": true}}]}}",
         "has 2 weights in the model config's terms, the file holds 1"},
        {"{\"class_name\": \"Sequential\", \"config\": {\"name\": \"s\", "
         "\"layers\": [{\"class_name\": \"Dense\", \"config\": "
         "{\"name\": \"d\", \"use_bias\": false}}]}} x",
         "text after the end"},
    };
    uint64_t s[1] = {2};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wv_model *m = NULL;
        ASSERT_OK(wv_model_new(&m));
        ASSERT_OK(wvtest_add_pattern(m, "layers/dense/vars/0", WV_F32, 1, s,
                                     1));
        ASSERT_OK(wv_model_set_meta(m, "keras.model_config", bad[i].config));
        int rc = wv_model_save(m, wvtest_path("t.h5"), NULL);
        /* WV_FORMAT, as keras_layout.h promises: bad JSON included */
        ASSERT_EQ(rc, WV_FORMAT);
        ASSERT_CONTAINS(wv_model_errmsg(m), "t.h5: ");
        ASSERT_CONTAINS(wv_model_errmsg(m), bad[i].msg);
        ASSERT(strchr(wv_model_errmsg(m), '\n') == NULL);
        ASSERT(access(wvtest_path("t.h5"), F_OK) != 0);
        wv_model_free(m);
    }
    /* Models nested 10000 deep: refused at the nesting bound. */
    {
        struct wv__buf b = {0};
        wv_model *m = NULL;
        for (int i = 0; i < 10000; i++)
            wv__buf_adds(&b, "{\"class_name\": \"Sequential\", \"config\": "
                             "{\"name\": \"s\", \"layers\": [");
        wv__buf_addc(&b, '\0');
        ASSERT(!b.oom);
        ASSERT_OK(wv_model_new(&m));
        ASSERT_OK(wvtest_add_pattern(m, "layers/dense/vars/0", WV_F32, 1, s,
                                     1));
        ASSERT_OK(wv_model_set_meta(m, "keras.model_config", b.p));
        ASSERT(wv_model_save(m, wvtest_path("deep.h5"), NULL) != WV_OK);
        ASSERT_CONTAINS(wv_model_errmsg(m), "nested deeper than");
        wv_model_free(m);
        wv__buf_release(&b);
    }
    return;
}
