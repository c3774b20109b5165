/*
 * fuzz_gguf.c -- libFuzzer harness for the GGUF reader and writer.
 *
 * Every input is loaded from memory with the format forced to GGUF.
 * Whatever loads must survive a round trip: saved as GGUF to a
 * per-process temporary file and reloaded, it must hold identical tensors
 * (names, dtypes, shapes, bytes, order) and identical metadata, and saving
 * the reloaded set again must give identical bytes. Any difference
 * abort()s.
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
        const wv_tensor *y = wv_model_tensor(b, i);
        if (strcmp(wv_tensor_name(x), wv_tensor_name(y)) != 0 ||
            wv_tensor_dtype(x) != wv_tensor_dtype(y) ||
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
        const char *k1, *v1, *k2, *v2;
        wv_model_meta(a, i, &k1, &v1);
        wv_model_meta(b, i, &k2, &v2);
        if (strcmp(k1, k2) != 0 || strcmp(v1, v2) != 0)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    wv_model *m = NULL, *r = NULL;
    char p1[128], p2[128];
    lo.format = WV_FMT_GGUF;
    so.format = WV_FMT_GGUF;
    if (wv_model_load_mem(data, size, &lo, &m) != WV_OK)
        return 0;
    snprintf(p1, sizeof p1, "/tmp/fuzz_gguf_%ld_a.gguf", (long)getpid());
    snprintf(p2, sizeof p2, "/tmp/fuzz_gguf_%ld_b.gguf", (long)getpid());
    if (wv_model_save(m, p1, &so) != WV_OK) {
        fprintf(stderr, "save failed: %s\n", wv_model_errmsg(m));
        abort();
    }
    if (wv_model_load(p1, NULL, &r) != WV_OK) {
        fprintf(stderr, "reload of our own gguf failed\n");
        abort();
    }
    if (!same(m, r)) {
        fprintf(stderr, "gguf round trip changed the set\n");
        abort();
    }
    if (wv_model_save(r, p2, &so) != WV_OK)
        abort();
    size_t n1 = 0, n2 = 0;
    unsigned char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    if (b1 == NULL || b2 == NULL || n1 != n2 || memcmp(b1, b2, n1) != 0) {
        fprintf(stderr, "gguf writer is not deterministic\n");
        abort();
    }
    free(b1);
    free(b2);
    wv_model_free(r);
    wv_model_free(m);
    unlink(p1);
    unlink(p2);
    return 0;
}
