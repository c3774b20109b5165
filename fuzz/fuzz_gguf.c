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

#include "wvsets.h"



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
    if (!wvf_same(m, r, WVF_META_ORDER)) {
        fprintf(stderr, "gguf round trip changed the set\n");
        abort();
    }
    if (wv_model_save(r, p2, &so) != WV_OK)
        abort();
    size_t n1 = 0, n2 = 0;
    unsigned char *b1 = wvf_slurp(p1, &n1), *b2 = wvf_slurp(p2, &n2);
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
