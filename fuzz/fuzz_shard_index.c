/*
 * fuzz_shard_index.c -- libFuzzer harness for the shard index reader
 * (shard.c): model.safetensors.index.json / pytorch_model.bin.index.json,
 * its "weight_map" object, the relative-path rule for shard names (no
 * absolute path, no "..", no empty component), duplicate tensors and the
 * grouping of tensors by shard. Shards are never opened.
 *
 * Input: the index's bytes. Properties: no crash, leak or sanitizer
 * report; a rejection always comes with a message; the result is
 * deterministic; an accepted index has at least one entry and at most as
 * many shards as entries.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wv__err e1 = {0}, e2 = {0};
    size_t n1 = 0, s1 = 0, n2 = 0, s2 = 0;
    int r1 = wv__shard_check_index(data, size, &n1, &s1, &e1);
    int r2 = wv__shard_check_index(data, size, &n2, &s2, &e2);
    if (r1 != r2 || n1 != n2 || s1 != s2 || strcmp(e1.msg, e2.msg) != 0) {
        fprintf(stderr, "index parse is not deterministic\n");
        abort();
    }
    if (r1 != WV_OK && r1 != WV_NOMEM && e1.msg[0] == '\0') {
        fprintf(stderr, "rejected (%d) without a message\n", r1);
        abort();
    }
    if (r1 == WV_OK && (n1 == 0 || s1 == 0 || s1 > n1)) {
        fprintf(stderr, "accepted with %zu entries in %zu shards\n", n1, s1);
        abort();
    }
    return 0;
}
