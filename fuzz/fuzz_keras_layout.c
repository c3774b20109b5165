/*
 * fuzz_keras_layout.c -- libFuzzer harness for the Keras layout
 * translation (keras_layout.c, wv__keras_translate): the model-config JSON
 * parser (keras.model_config / keras.config, also `wv convert --config`)
 * and the mapping of tensor names between Keras 2's legacy .h5 layout and
 * Keras 3's .weights.h5 layout.
 *
 * Input: byte 0 holds flags and a tensor count, the next `count` bytes
 * each pick a tensor name from the table below (legacy h5 names such as
 * "dense/dense/kernel:0", Keras 3 names such as "layers/dense/vars/0"),
 * and everything after them is the config text (up to its first NUL).
 *   bits 0-3  tensors - 1 (1..16; a repeated name is skipped)
 *   bit 4     config under keras.config (an archive's) instead of
 *             keras.model_config
 *   bit 5     keras.layer_names: the tensors' first components, as JSON
 *   bit 6     keras.weight_names: the tensor names, as JSON
 *   bit 7     keras.metadata with a keras_version (archive metadata.json)
 *             and keras.optimizer_weight_names
 * The set is translated both ways; a translation that succeeds is
 * translated back the other way.
 *
 * Properties: no crash, leak or sanitizer report; a refusal always comes
 * with a message and leaves *out NULL; a success gives a set with as many
 * tensors as the source.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keras_layout.h"
#include "wv_int.h"

#define MAX_INPUT (256u << 10)

static const char *const names[] = {
    "dense/dense/kernel:0",
    "dense/dense/bias:0",
    "dense_1/dense_1/kernel:0",
    "dense_1/dense_1/bias:0",
    "dense_2/dense_2/kernel:0",
    "dense_2/dense_2/bias:0",
    "dense_3/dense_3/kernel",
    "dense_3/dense_3/bias",
    "dense_106/dense_106/kernel:0",
    "dense_106/dense_106/bias:0",
    "dense_107/dense_107/kernel:0",
    "dense_107/dense_107/bias:0",
    "dense_108/dense_108/kernel:0",
    "dense_108/dense_108/bias:0",
    "dense_109/dense_109/kernel:0",
    "dense_109/dense_109/bias:0",
    "dense_110/dense_110/kernel:0",
    "dense_110/dense_110/bias:0",
    "conv2d/conv2d/kernel:0",
    "batch_normalization/batch_normalization/gamma:0",
    "batch_normalization/batch_normalization/moving_mean:0",
    "model/dense/kernel:0",
    "top_level_model_weights/w:0",
    "layers/dense/vars/0",
    "layers/dense/vars/1",
    "layers/dense_1/vars/0",
    "layers/dense_1/vars/1",
    "layers/dense_2/vars/0",
    "layers/dense_2/vars/1",
    "layers/dense_3/vars/0",
    "layers/dense_3/vars/1",
    "layers/conv2d/vars/0",
    "layers/batch_normalization/vars/3",
    "layers/functional/layers/dense/vars/0",
    "vars/0",
    "optimizer/vars/0",
    "optimizer/vars/1",
    "batch_normalization/batch_normalization/moving_variance:0",
    "layers/batch_normalization/vars/0",
    "layers/batch_normalization/vars/1",
    "layers/batch_normalization/vars/2",
};
#define N_NAMES (sizeof names / sizeof names[0])

static const float zero[1];

static void check(int rc, const struct wv__err *e, const wv_model *out,
                  const wv_model *src)
{
    if (rc == WV_OK) {
        if (out == NULL || wv_model_count(out) != wv_model_count(src)) {
            fprintf(stderr, "translation lost or added tensors\n");
            abort();
        }
        return;
    }
    if (out != NULL) {
        fprintf(stderr, "failed translation (%d) left a set\n", rc);
        abort();
    }
    if (e->msg[0] == '\0') {
        fprintf(stderr, "refused (%d) without a message\n", rc);
        abort();
    }
}

static void both_ways(const wv_model *m, enum wv__keras_xlate way)
{
    struct wv__err e = {0}, e2 = {0};
    wv_model *t = NULL, *back = NULL;
    enum wv__keras_xlate other =
        way == WV__KERAS_TO_K3 ? WV__KERAS_TO_LEGACY : WV__KERAS_TO_K3;
    int rc = wv__keras_translate(m, way, "fuzz.h5", &t, &e);
    check(rc, &e, t, m);
    if (rc == WV_OK) {
        rc = wv__keras_translate(t, other, "fuzz.h5", &back, &e2);
        check(rc, &e2, back, t);
    }
    wv_model_free(back);
    wv_model_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wv_model *m = NULL;
    char *cfg = NULL;
    struct wv__buf ln = {0}, wn = {0};
    uint64_t shape[1] = {1};
    if (size < 1 || size > MAX_INPUT)
        return 0;
    unsigned flags = data[0];
    size_t count = (flags & 15u) + 1, at = 1;
    if (wv_model_new(&m) != WV_OK)
        return 0;
    wv__buf_addc(&ln, '[');
    wv__buf_addc(&wn, '[');
    for (size_t i = 0; i < count && at < size; i++, at++) {
        const char *nm = names[data[at] % N_NAMES];
        if (wv_model_add(m, nm, WV_F32, 1, shape, zero, sizeof zero,
                         WV_DATA_BORROW) != WV_OK)
            continue; /* a repeated name */
        if (wn.len > 1)
            wv__buf_addc(&wn, ',');
        wv__json_put_string(&wn, nm, strlen(nm));
        size_t first = strcspn(nm, "/");
        if (ln.len > 1)
            wv__buf_addc(&ln, ',');
        wv__json_put_string(&ln, nm, first);
    }
    wv__buf_adds(&ln, "]");
    wv__buf_addc(&ln, '\0');
    wv__buf_adds(&wn, "]");
    wv__buf_addc(&wn, '\0');
    cfg = malloc(size - at + 1);
    if (cfg == NULL || ln.oom || wn.oom)
        goto out;
    memcpy(cfg, data + at, size - at);
    cfg[size - at] = '\0';
    if (wv_model_set_meta(m, flags & 16u ? "keras.config"
                                        : "keras.model_config",
                          cfg) != WV_OK)
        goto out;
    if ((flags & 32u) && wv_model_set_meta(m, "keras.layer_names", ln.p))
        goto out;
    if ((flags & 64u) && wv_model_set_meta(m, "keras.weight_names", wn.p))
        goto out;
    if ((flags & 128u) &&
        wv_model_set_meta(m, "keras.metadata",
                          "{\"keras_version\": \"3.3.3\", \"date_saved\": "
                          "\"2024-01-01@00:00:00\"}"))
        goto out;
    if ((flags & 128u) &&
        wv_model_set_meta(m, "keras.optimizer_weight_names",
                          "[\"Adam/iter:0\", \"Adam/dense/kernel/m:0\"]"))
        goto out;
    both_ways(m, WV__KERAS_TO_K3);
    both_ways(m, WV__KERAS_TO_LEGACY);
out:
    free(cfg);
    wv__buf_release(&ln);
    wv__buf_release(&wn);
    wv_model_free(m);
    return 0;
}
