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
 * decoder on its own: a decoded block is exactly its declared length;
 * and through the object-graph parser behind --names keras.
 *
 * Mutated blocks almost never keep a valid CRC-32C, which would stop the
 * fuzzer at the trailer check. So each input is parsed twice: as it is,
 * and with the trailer CRCs of the blocks the footer and the (stored)
 * index block name recomputed, which lets mutations reach the block,
 * entry and proto parsers behind them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wv_int.h"
#include "ldb.h"
#include "pb.h"

static void fix_block(unsigned char *b, size_t n, uint64_t off, uint64_t sz)
{
    if (off > n || sz > n - off || n - off - sz < 5)
        return;
    wv__put32(b + off + sz + 1, wv__crc32c_mask(wv__crc32c(
                                    0, b + off, (size_t)sz + 1)));
}

static void fix_crcs(unsigned char *b, size_t n)
{
    uint64_t moff, msz, ioff, isz;
    if (n < 48)
        return;
    const unsigned char *q = b + n - 48, *qe = b + n - 8;
    if (wv__pb_varint(&q, qe, &moff) || wv__pb_varint(&q, qe, &msz) ||
        wv__pb_varint(&q, qe, &ioff) || wv__pb_varint(&q, qe, &isz))
        return;
    fix_block(b, n - 48, moff, msz);
    fix_block(b, n - 48, ioff, isz);
    if (ioff > n - 48 || isz > n - 48 - ioff || n - 48 - ioff - isz < 5 ||
        b[ioff + isz] != 0 || isz < 4)
        return;
    /* the stored index block's entries: each value is a block handle */
    const unsigned char *p = b + ioff, *e = b + ioff + isz - 4;
    while (p < e) {
        uint64_t sh, ns, vl, off, sz;
        if (wv__pb_varint(&p, e, &sh) || wv__pb_varint(&p, e, &ns) ||
            wv__pb_varint(&p, e, &vl) || ns > (uint64_t)(e - p))
            return;
        p += ns;
        if (vl > (uint64_t)(e - p))
            return;
        const unsigned char *v = p, *ve = p + vl;
        p += vl;
        if (wv__pb_varint(&v, ve, &off) || wv__pb_varint(&v, ve, &sz))
            continue;
        fix_block(b, n - 48, off, sz);
    }
    fix_block(b, n - 48, ioff, isz);
}

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

    unsigned char *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    fix_crcs(copy, size);
    size_t n3 = 0;
    struct wv__err e3 = {0};
    int r3 = wv__tfbundle_check_index(copy, size, &n3, &e3);
    if (r3 != WV_OK && r3 != WV_NOMEM && e3.msg[0] == '\0')
        abort();
    free(copy);

    /* The same bytes as an object graph (--names keras). */
    struct wv__err e4 = {0};
    size_t n4 = 0;
    int r4 = wv__tfbundle_check_graph(data, size, &n4, &e4);
    if (r4 != WV_OK && r4 != WV_NOMEM && e4.msg[0] == '\0')
        abort();

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
