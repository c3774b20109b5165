/*
 * fuzz_pth.c -- libFuzzer harness for the PyTorch reader (pth.c, pickle.c
 * and the zip reader under them).
 *
 * Every input is loaded from memory as pth. Whatever loads must survive a
 * round trip: saved as pth (flat, and nested when the names allow it),
 * reloaded, it must hold identical tensors (names, dtypes, shapes, bytes)
 * and identical metadata. Any difference abort()s.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weightvault.h"

static int same(const wv_model *a, const wv_model *b)
{
    if (wv_model_count(a) != wv_model_count(b) ||
        wv_model_meta_count(a) != wv_model_meta_count(b))
        return 0;
    for (size_t i = 0; i < wv_model_count(a); i++) {
        const wv_tensor *x = wv_model_tensor(a, i);
        const wv_tensor *y = wv_model_find(b, wv_tensor_name(x));
        if (y == NULL || wv_tensor_dtype(x) != wv_tensor_dtype(y) ||
            wv_tensor_ndim(x) != wv_tensor_ndim(y) ||
            wv_tensor_nbytes(x) != wv_tensor_nbytes(y))
            return 0;
        if (memcmp(wv_tensor_shape(x), wv_tensor_shape(y),
                   sizeof(uint64_t) * (size_t)wv_tensor_ndim(x)) != 0)
            return 0;
        if (wv_tensor_nbytes(x) &&
            memcmp(wv_tensor_data(x), wv_tensor_data(y),
                   wv_tensor_nbytes(x)) != 0)
            return 0;
    }
    for (size_t i = 0; i < wv_model_meta_count(a); i++) {
        const char *k, *v, *w;
        wv_model_meta(a, i, &k, &v);
        w = wv_model_get_meta(b, k);
        if (w == NULL || strcmp(v, w) != 0)
            return 0;
    }
    return 1;
}

static void roundtrip(wv_model *m, unsigned flags)
{
    char p[128];
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    wv_model *r = NULL;
    so.format = WV_FMT_PTH;
    so.flags = flags;
    snprintf(p, sizeof p, "/tmp/fuzz_pth_%ld.pth", (long)getpid());
    if (wv_model_save(m, p, &so) != WV_OK) {
        if (flags)
            return; /* nesting may refuse names that clash */
        fprintf(stderr, "save failed: %s\n", wv_model_errmsg(m));
        abort();
    }
    if (wv_model_load(p, NULL, &r) != WV_OK) {
        fprintf(stderr, "reload of our own pth failed\n");
        abort();
    }
    if (!same(m, r)) {
        fprintf(stderr, "pth round trip (flags %u) changed the set\n",
                flags);
        abort();
    }
    wv_model_free(r);
    unlink(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    wv_model *m = NULL;
    lo.format = WV_FMT_PTH;
    if (wv_model_load_mem(data, size, &lo, &m) != WV_OK)
        return 0;
    roundtrip(m, 0);
    roundtrip(m, WV_SAVE_NEST);
    wv_model_free(m);
    return 0;
}
