/*
 * fuzz_pth.c -- libFuzzer harness for the PyTorch reader (pth.c, pickle.c
 * and the zip reader under them).
 *
 * Every input is loaded from memory as pth. Whatever loads must survive a
 * round trip: saved as pth (flat, and nested when the names allow it),
 * reloaded, it must hold identical tensors (names, dtypes, shapes, bytes)
 * and identical metadata. Any difference abort()s. An input refused by
 * the default load is tried again with WV_LOAD_OBJECTS (whole-model
 * pickles through placeholders), and must round-trip the same way.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wvsets.h"


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
    if (!wvf_same(m, r, WVF_BY_NAME | WVF_META_KEYS)) {
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
    if (wv_model_load_mem(data, size, &lo, &m) != WV_OK) {
        wv_model_free(m);
        m = NULL;
        lo.flags = WV_LOAD_OBJECTS;
        if (wv_model_load_mem(data, size, &lo, &m) != WV_OK)
            return 0;
    }
    roundtrip(m, 0);
    roundtrip(m, WV_SAVE_NEST);
    wv_model_free(m);
    return 0;
}
