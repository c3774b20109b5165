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

#include "wvsets.h"



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
    if (!wvf_same(m, r, fmt == WV_FMT_NPY ? WVF_IGNORE_NAMES : 0)) {
        fprintf(stderr, "%s round trip changed the tensors\n", ext);
        abort();
    }
    if (wv_model_save(r, p2, &so) != WV_OK)
        abort();
    size_t n1 = 0, n2 = 0;
    unsigned char *b1 = wvf_slurp(p1, &n1), *b2 = wvf_slurp(p2, &n2);
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
