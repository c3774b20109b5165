/*
 * fuzz_tfjs.c -- libFuzzer harness for the TF.js reader (tfjs.c): the
 * model.json / weights-manifest parser (groups, paths, weight specs,
 * quantization objects, every rejection rule) and the decoding of the
 * weights from their shards (bounds, tensors across shards, uint8/uint16/
 * float16 dequantisation, int32 rounding, bool bytes, string lengths).
 *
 * Input: JSON text, optionally followed by a NUL byte and the bytes that
 * every shard of every group holds (shards are never opened from disk).
 * Properties: no crash, leak or sanitizer report; a rejection always comes
 * with a message; parsing is deterministic; decoding with and without
 * WV_LOAD_TFJS_QUANTIZED gives the same number of tensors or both fail.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wv_int.h"

static void need_msg(int rc, const struct wv__err *e)
{
    if (rc != WV_OK && rc != WV_NOMEM && e->msg[0] == '\0') {
        fprintf(stderr, "rejected (%d) without a message\n", rc);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t jn = nul ? (size_t)(nul - data) : size;
    const uint8_t *blob = nul ? nul + 1 : NULL;
    size_t bn = nul ? size - jn - 1 : 0;

    struct wv__err e1 = {0}, e2 = {0};
    size_t n1 = 0, n2 = 0;
    int r1 = wv__tfjs_check_manifest(data, jn, &n1, &e1);
    int r2 = wv__tfjs_check_manifest(data, jn, &n2, &e2);
    if (r1 != r2 || n1 != n2 || strcmp(e1.msg, e2.msg) != 0) {
        fprintf(stderr, "manifest parse is not deterministic\n");
        abort();
    }
    need_msg(r1, &e1);
    if (r1 != WV_OK)
        return 0;

    struct wv__err e3 = {0}, e4 = {0};
    size_t n3 = 0, n4 = 0;
    int r3 = wv__tfjs_check_load(data, jn, blob, bn, 0, &n3, &e3);
    int r4 = wv__tfjs_check_load(data, jn, blob, bn, WV_LOAD_TFJS_QUANTIZED,
                                 &n4, &e4);
    need_msg(r3, &e3);
    need_msg(r4, &e4);
    if ((r3 == WV_OK) != (r4 == WV_OK) || n3 != n4) {
        fprintf(stderr, "keeping quantization changed the result: %d/%zu "
                        "vs %d/%zu\n", r3, n3, r4, n4);
        abort();
    }
    return 0;
}
