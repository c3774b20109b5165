/*
 * fuzz_safetensors.c -- libFuzzer harness for the safetensors reader, and a
 * round trip through the writer for every input the reader accepts.
 *
 * Accepted input -> save to a per-process temporary file -> load it ->
 * the same names, dtypes, shapes and bytes; saving the reloaded set again
 * must give the same bytes (the writer is deterministic and a fixed point).
 * Any difference aborts, so libFuzzer reports it as a crash.
 */
#include "wv_int.h"
#include "wvsets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path_a[128], path_b[128];

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_safetensors: %s\n", what);
        abort();
    }
}

static void same_sets(const wv_model *a, const wv_model *b)
{
    check(wv_model_count(a) == wv_model_count(b), "tensor count differs");
    for (size_t i = 0; i < wv_model_count(a); i++) {
        const wv_tensor *x = wv_model_tensor(a, i);
        const wv_tensor *y = wv_model_find(b, wv_tensor_name(x));
        check(y != NULL, "tensor lost");
        check(wv_tensor_dtype(x) == wv_tensor_dtype(y), "dtype differs");
        check(wv_tensor_ndim(x) == wv_tensor_ndim(y), "ndim differs");
        for (int d = 0; d < wv_tensor_ndim(x); d++)
            check(wv_tensor_shape(x)[d] == wv_tensor_shape(y)[d],
                  "shape differs");
        check(wv_tensor_nbytes(x) == wv_tensor_nbytes(y), "size differs");
        check(wv_tensor_nbytes(x) == 0 ||
                  memcmp(wv_tensor_data(x), wv_tensor_data(y),
                         wv_tensor_nbytes(x)) == 0,
              "bytes differ");
    }
    check(wv_model_meta_count(a) == wv_model_meta_count(b),
          "metadata count differs");
    for (size_t i = 0; i < wv_model_meta_count(a); i++) {
        const char *k1, *v1, *k2, *v2;
        wv_model_meta(a, i, &k1, &v1);
        wv_model_meta(b, i, &k2, &v2);
        check(strcmp(k1, k2) == 0 && strcmp(v1, v2) == 0,
              "metadata differs");
    }
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    wv_model *m = NULL, *r = NULL;
    char eb[WV_ERRBUF_SIZE];
    o.format = WV_FMT_SAFETENSORS;
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;

    if (path_a[0] == '\0') {
        snprintf(path_a, sizeof path_a, "/tmp/fuzz-st-%ld-a.safetensors",
                 (long)getpid());
        snprintf(path_b, sizeof path_b, "/tmp/fuzz-st-%ld-b.safetensors",
                 (long)getpid());
    }
    int rc = wv_model_load_mem(data, size, &o, &m);
    if (rc != WV_OK) {
        check(m == NULL, "failed load returned a set");
        check(eb[0] != '\0', "failed load without a message");
        check(wv_primary(rc) == WV_CORRUPT || wv_primary(rc) == WV_FORMAT ||
                  wv_primary(rc) == WV_NOMEM,
              "unexpected error code");
        return 0;
    }
    /* The same input through auto-detection reads the same. */
    wv_model *auto_m = NULL;
    if (wv_model_load_mem(data, size, NULL, &auto_m) == WV_OK &&
        strcmp(wv_model_source_format(auto_m), "safetensors") == 0)
        same_sets(m, auto_m);
    wv_model_free(auto_m);

    rc = wv_model_save(m, path_a, NULL);
    check(rc == WV_OK, "saving an accepted set failed");
    rc = wv_model_load(path_a, NULL, &r);
    check(rc == WV_OK, "reloading our own output failed");
    same_sets(m, r);
    same_sets(r, m);
    rc = wv_model_save(r, path_b, NULL);
    check(rc == WV_OK, "saving the reloaded set failed");
    size_t la = 0, lb = 0;
    unsigned char *a = wvf_slurp(path_a, &la), *b = wvf_slurp(path_b, &lb);
    check(a != NULL && b != NULL, "cannot read back");
    check(la == lb && memcmp(a, b, la) == 0, "re-save is not identical");
    /* Our output starts the data 8-aligned. */
    check(la >= 8 && wv__le64(a) % 8 == 0, "header not padded to 8");
    free(a);
    free(b);
    wv_model_free(r);
    wv_model_free(m);
    unlink(path_a);
    unlink(path_b);
    return 0;
}
