/*
 * fuzz_npy.c -- libFuzzer harness for the .npy, .npz and zip readers.
 *
 * Every input is loaded from memory as npy and again as npz. Whatever
 * loads must survive a round trip: saved as npy (one tensor) and as npz
 * (stored and deflated), reloaded, it must hold identical tensors, and
 * saving the reloaded set again must give identical bytes (the writers are
 * deterministic). Any difference abort()s.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "weightvault.h"

static int same(const wv_model *a, const wv_model *b, int ignore_names)
{
    if (wv_model_count(a) != wv_model_count(b))
        return 0;
    for (size_t i = 0; i < wv_model_count(a); i++) {
        const wv_tensor *x = wv_model_tensor(a, i);
        const wv_tensor *y = wv_model_tensor(b, i);
        if (!ignore_names &&
            strcmp(wv_tensor_name(x), wv_tensor_name(y)) != 0)
            return 0;
        if (wv_tensor_dtype(x) != wv_tensor_dtype(y) ||
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
    return 1;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(len > 0 ? (size_t)len : 1);
    if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return p;
}

static void roundtrip(wv_model *m, wv_format fmt, unsigned flags)
{
    char p1[128], p2[128];
    const char *ext = fmt == WV_FMT_NPY ? "npy" : "npz";
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    wv_model *r = NULL;
    so.format = fmt;
    so.flags = flags;
    snprintf(p1, sizeof p1, "/tmp/fuzz_npy_%ld_a.%s", (long)getpid(), ext);
    snprintf(p2, sizeof p2, "/tmp/fuzz_npy_%ld_b.%s", (long)getpid(), ext);
    if (wv_model_save(m, p1, &so) != WV_OK) {
        fprintf(stderr, "save failed: %s\n", wv_model_errmsg(m));
        abort();
    }
    if (wv_model_load(p1, NULL, &r) != WV_OK) {
        fprintf(stderr, "reload of our own %s failed\n", ext);
        abort();
    }
    if (!same(m, r, fmt == WV_FMT_NPY)) {
        fprintf(stderr, "%s round trip changed the tensors\n", ext);
        abort();
    }
    if (wv_model_save(r, p2, &so) != WV_OK)
        abort();
    size_t n1 = 0, n2 = 0;
    unsigned char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    if (b1 == NULL || b2 == NULL || n1 != n2 || memcmp(b1, b2, n1) != 0) {
        fprintf(stderr, "%s writer is not deterministic\n", ext);
        abort();
    }
    free(b1);
    free(b2);
    wv_model_free(r);
    unlink(p1);
    unlink(p2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const wv_format fmts[] = {WV_FMT_NPY, WV_FMT_NPZ};
    for (int i = 0; i < 2; i++) {
        wv_load_opts lo = WV_LOAD_OPTS_INIT;
        wv_model *m = NULL;
        lo.format = fmts[i];
        if (wv_model_load_mem(data, size, &lo, &m) != WV_OK)
            continue;
        if (wv_model_count(m) == 1)
            roundtrip(m, WV_FMT_NPY, 0);
        roundtrip(m, WV_FMT_NPZ, 0);
        roundtrip(m, WV_FMT_NPZ, WV_SAVE_COMPRESS);
        wv_model_free(m);
    }
    return 0;
}
