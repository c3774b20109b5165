/*
 * save_load.c -- the smallest complete use of the C API: build a tensor set
 * for a small MLP, save it durably as safetensors, load it back without
 * copying (the tensors point into the file mapping), and check the values.
 *
 *   save_load OUT.safetensors
 */
#include "weightvault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, int rc, const char *msg)
{
    fprintf(stderr, "save_load: %s: %s (%s)\n", what, msg ? msg : "",
            wv_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "mlp.safetensors";
    static const int sizes[] = {784, 128, 64, 10};
    wv_model *m = NULL;
    int rc;

    if ((rc = wv_model_new(&m)) != WV_OK)
        return fail("new", rc, NULL);
    for (int l = 0; l < 3; l++) {
        uint64_t wshape[2] = {(uint64_t)sizes[l + 1], (uint64_t)sizes[l]};
        uint64_t bshape[1] = {(uint64_t)sizes[l + 1]};
        size_t nw = (size_t)sizes[l + 1] * (size_t)sizes[l];
        float *w = wv_malloc(nw * sizeof *w);
        float *b = wv_malloc((size_t)sizes[l + 1] * sizeof *b);
        if (w == NULL || b == NULL)
            return fail("alloc", WV_NOMEM, NULL);
        for (size_t i = 0; i < nw; i++)
            w[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        for (int i = 0; i < sizes[l + 1]; i++)
            b[i] = 0.01f * (float)i;
        char name[64];
        snprintf(name, sizeof name, "layers.%d.weight", l);
        /* WV_DATA_TAKE: the set owns the buffer from now on. */
        rc = wv_model_add(m, name, WV_F32, 2, wshape, w, nw * sizeof *w,
                          WV_DATA_TAKE);
        if (rc != WV_OK)
            return fail("add", rc, wv_model_errmsg(m));
        snprintf(name, sizeof name, "layers.%d.bias", l);
        rc = wv_model_add(m, name, WV_F32, 1, bshape, b,
                          (size_t)sizes[l + 1] * sizeof *b, WV_DATA_TAKE);
        if (rc != WV_OK)
            return fail("add", rc, wv_model_errmsg(m));
    }
    int64_t step = 1000;
    rc = wv_model_add(m, "step", WV_I64, 0, NULL, &step, sizeof step,
                      WV_DATA_COPY);
    if (rc != WV_OK)
        return fail("add", rc, wv_model_errmsg(m));
    wv_model_set_meta(m, "format", "pt");
    wv_model_set_meta(m, "architecture", "mlp-784-128-64-10");

    /* Durable and atomic: temp file, fsync, rename, fsync of the dir. */
    if ((rc = wv_model_save(m, path, NULL)) != WV_OK)
        return fail("save", rc, wv_model_errmsg(m));

    char err[WV_ERRBUF_SIZE];
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    lo.errbuf = err;
    lo.errbuf_size = sizeof err;
    wv_model *back = NULL;
    if ((rc = wv_model_load(path, &lo, &back)) != WV_OK)
        return fail("load", rc, err);
    size_t checked = 0;
    for (size_t i = 0; i < wv_model_count(m); i++) {
        const wv_tensor *a = wv_model_tensor(m, i);
        const wv_tensor *b = wv_model_find(back, wv_tensor_name(a));
        if (b == NULL || wv_tensor_nbytes(a) != wv_tensor_nbytes(b) ||
            memcmp(wv_tensor_data(a), wv_tensor_data(b),
                   wv_tensor_nbytes(a)) != 0)
            return fail("compare", WV_CORRUPT, wv_tensor_name(a));
        checked++;
    }
    printf("saved %s: %zu tensors, metadata architecture=%s; reloaded "
           "zero-copy and compared: all %zu equal\n",
           path, wv_model_count(back), wv_model_get_meta(back, "architecture"),
           checked);
    wv_model_free(back);
    wv_model_free(m);
    return 0;
}
