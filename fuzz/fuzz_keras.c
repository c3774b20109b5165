/*
 * fuzz_keras.c -- libFuzzer harness for the Keras HDF5 / .keras reader.
 *
 * Every input (at most 512 KiB: libhdf5 itself is not hardened against
 * hostile files, and large inputs only slow the search down) is loaded
 * from memory with the keras format forced. Whatever loads must survive a
 * round trip: saved in the legacy .h5 layout and as .weights.h5, reloaded,
 * it must hold identical tensors (compared by name: the legacy layout
 * groups tensors per layer; when the writer translated a model config's
 * layout, renaming the tensors, as a multiset without names), and saving the reloaded set again must give
 * identical bytes (the writer is deterministic). A save may refuse a set
 * with WV_FORMAT (e.g. a layer name the legacy layout cannot hold); any
 * other failure or difference abort()s.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wvsets.h"

#define MAX_INPUT (512u << 10)

/* libhdf5 sizes some metadata-cache buffers from lengths in the file
 * before checking them against the file (H5C_protect). Built normally,
 * such a malloc fails and libhdf5 reports an error, which is what we
 * test; ASan would instead abort on the oversized request. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* libhdf5 1.10 leaks small internal structures on some error paths in
 * corrupted files (objects it allocates and loses, not handles we keep:
 * those it frees at exit). They are not ours to fix; ours still count. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libhdf5_serial.so\n";
}



/* The reader parses every file in a sandbox child first; a child that
 * spins is refused after this much CPU time (wall clock: 5 + 4 x this),
 * well inside libFuzzer's per-input timeout. Honest inputs of this size
 * take milliseconds. */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("WV_SANDBOX_SECONDS", "1", 0);
    return 0;
}

/* Did the save rename tensors (a Keras layout translation)? */
static int renamed(const wv_model *a, const wv_model *b)
{
    for (size_t i = 0; i < wv_model_count(a); i++)
        if (wv_model_find(b, wv_tensor_name(wv_model_tensor(a, i))) == NULL)
            return 1;
    return 0;
}

/* Same tensors as a multiset, names aside: each of a matches a distinct
 * one of b (inputs are small: quadratic is fine). */
static int same_unnamed(const wv_model *a, const wv_model *b)
{
    size_t n = wv_model_count(a);
    if (n != wv_model_count(b))
        return 0;
    unsigned char *used = calloc(n + 1, 1);
    int ok = used != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const wv_tensor *x = wv_model_tensor(a, i);
        size_t j = 0;
        while (j < n && (used[j] || !wvf_same_tensor(x, wv_model_tensor(b, j))))
            j++;
        if (j == n)
            ok = 0;
        else
            used[j] = 1;
    }
    free(used);
    return ok;
}

static void roundtrip(wv_model *m, const char *ext)
{
    char p1[128], p2[128];
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    wv_model *r = NULL;
    so.format = WV_FMT_KERAS;
    snprintf(p1, sizeof p1, "/tmp/fuzz_keras_%ld_a%s", (long)getpid(), ext);
    snprintf(p2, sizeof p2, "/tmp/fuzz_keras_%ld_b%s", (long)getpid(), ext);
    int rc = wv_model_save(m, p1, &so);
    if (rc == WV_FORMAT)
        return;
    if (rc != WV_OK) {
        fprintf(stderr, "save failed: %s\n", wv_model_errmsg(m));
        abort();
    }
    if (wv_model_load(p1, NULL, &r) != WV_OK) {
        fprintf(stderr, "reload of our own %s failed\n", ext);
        abort();
    }
    if (renamed(m, r) ? !same_unnamed(m, r) : !wvf_same(m, r, WVF_BY_NAME)) {
        fprintf(stderr, "%s round trip changed the tensors\n", ext);
        abort();
    }
    if (wv_model_save(r, p2, &so) != WV_OK) {
        fprintf(stderr, "second save failed: %s\n", wv_model_errmsg(r));
        abort();
    }
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
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    wv_model *m = NULL;
    if (size > MAX_INPUT)
        return 0;
    lo.format = WV_FMT_KERAS;
    if (wv_model_load_mem(data, size, &lo, &m) != WV_OK)
        return 0;
    roundtrip(m, ".h5");
    roundtrip(m, ".weights.h5");
    wv_model_free(m);
    return 0;
}
