/*
 * fuzz_tfbundle.c -- libFuzzer harness for the TensorFlow bundle index
 * parser: the LevelDB table reader (footer, handles, block trailers and
 * CRC-32C, snappy blocks, restart points, prefix-compressed keys, key
 * order, index separators) and the bundle's header and entry protos
 * (pb.c), with every per-entry rule; data files are not opened.
 *
 * Properties: no crash, leak or sanitizer report; a rejection always
 * comes with a message; parsing is deterministic (a second parse gives the
 * same status and entry count). The input also goes through the snappy
 * decoder on its own: a decoded block is exactly its declared length.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wv_int.h"
#include "ldb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wv__err e1 = {0}, e2 = {0};
    size_t n1 = 0, n2 = 0;
    int r1 = wv__tfbundle_check_index(data, size, &n1, &e1);
    int r2 = wv__tfbundle_check_index(data, size, &n2, &e2);
    if (r1 != r2 || n1 != n2 || strcmp(e1.msg, e2.msg) != 0) {
        fprintf(stderr, "index parse is not deterministic\n");
        abort();
    }
    if (r1 != WV_OK && r1 != WV_NOMEM && e1.msg[0] == '\0') {
        fprintf(stderr, "rejected (%d) without a message\n", r1);
        abort();
    }

    unsigned char *out = NULL;
    size_t out_len = 0;
    const char *why = NULL;
    int rc = wv__snappy_decode(data, size, &out, &out_len, &why);
    if (rc == WV_OK) {
        const unsigned char *p = data;
        uint64_t want = 0;
        for (int i = 0; i < 5 && p < data + size; i++) {
            want |= (uint64_t)(*p & 0x7f) << (7 * i);
            if (!(*p++ & 0x80))
                break;
        }
        if (out_len != want) {
            fprintf(stderr, "snappy: %zu bytes, declared %llu\n", out_len,
                    (unsigned long long)want);
            abort();
        }
    } else if (rc == WV_CORRUPT && why == NULL) {
        abort();
    }
    wv__free(out);
    return 0;
}
