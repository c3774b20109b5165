/*
 * bench_codec.c -- the chunk codecs' throughput per core on a training
 * run: two consecutive checkpoints (safetensors files of one layout, e.g.
 * bench/trajectory.py's step_00 and step_01) cut into chunks, each
 * encoded and decoded on one thread by the library's codecs:
 *
 *   zstd         zstd of the plaintext (no grouping): the baseline, what
 *                a general-purpose backup tool stores
 *   bg-zstd      byte grouping then zstd (a chunk stored whole)
 *   xor-bg-zstd  XOR against the older file's chunk, byte grouping, zstd
 *                (a delta chunk; decoding reads the base)
 *
 * and memcpy of the same bytes, in the same run. Prints the stored bytes
 * and MB of plaintext per CPU second (this thread's clock), median of
 * ROUNDS rounds, and the ratios to the baseline.
 *
 *   bench_codec OLD NEW ELEM [CHUNK_MIB] [LEVEL] [ROUNDS]
 *
 * ELEM is 4 for F32, 2 for BF16; CHUNK_MIB the repository's chunk size
 * (4); LEVEL its zstd level (1). Chunks are cut across the data section
 * as a whole (the repository cuts each tensor on its own: a few chunks
 * differ at tensor ends).
 */
#include "codec.h"
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char *p = NULL;
    long sz;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 8 ||
        fseek(f, 0, SEEK_SET) != 0 || (p = malloc((size_t)sz)) == NULL ||
        fread(p, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "bench_codec: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *n = (size_t)sz;
    return p;
}

/* The data section of a safetensors file: after the 8-byte length and the
 * header. */
static unsigned char *data_of(unsigned char *f, size_t n, size_t *len)
{
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--)
        h = h << 8 | f[i];
    if (h > n - 8) {
        fprintf(stderr, "bench_codec: not a safetensors file\n");
        exit(2);
    }
    *len = n - 8 - (size_t)h;
    return f + 8 + h;
}

static int num(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v > 0 && v < 1 << 20 ? (int)v : -1;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { MEMCPY, ZSTD, BG, XOR, N_KIND };
static const char *const kind_name[N_KIND] = {"memcpy", "zstd",
                                              "bg-zstd", "xor-bg-zstd"};

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_codec OLD NEW ELEM [CHUNK_MIB] [LEVEL] "
                        "[ROUNDS]\n");
        return 2;
    }
    int elem_arg = num(argv[3]);
    unsigned elem = elem_arg > 0 ? (unsigned)elem_arg : 0;
    int cs_mib = argc > 4 ? num(argv[4]) : 4;
    size_t cs = cs_mib > 0 && cs_mib <= 1024 ? (size_t)cs_mib << 20 : 0;
    int level = argc > 5 ? (int)strtol(argv[5], NULL, 10) : 1;
    int rounds = argc > 6 ? num(argv[6]) : 3;
    size_t na, nb, la, lb;
    unsigned char *fa = slurp(argv[1], &na), *fb = slurp(argv[2], &nb);
    unsigned char *a = data_of(fa, na, &la), *b = data_of(fb, nb, &lb);
    if (la != lb || elem < 1 || elem > 8 || cs == 0 || level == 0 ||
        rounds < 1 ||
        rounds > 99) {
        fprintf(stderr, "bench_codec: the files differ in size, or a bad "
                        "argument\n");
        return 2;
    }
    struct wv__codec_ws *ws = NULL;
    struct wv__err err = {0};
    size_t cap = wv__codec_bound(cs);
    unsigned char *enc = malloc(cap), *dec = malloc(cs);
    if (wv__codec_ws_new(cs, &ws) != WV_OK || enc == NULL || dec == NULL) {
        fprintf(stderr, "bench_codec: out of memory\n");
        return 2;
    }
    double te[N_KIND][99], td[N_KIND][99];
    uint64_t stored[N_KIND] = {0};
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < N_KIND; k++) {
            te[k][r] = td[k][r] = 0;
            stored[k] = 0;
        }
        for (size_t off = 0; off < lb; off += cs) {
            size_t n = lb - off < cs ? lb - off : cs;
            const unsigned char *p = b + off, *base = a + off;
            for (int k = 0; k < N_KIND; k++) {
                size_t out = 0;
                int used = 0, rc = WV_OK;
                double t0 = now();
                if (k == MEMCPY) {
                    memcpy(enc, p, n);
                    out = n;
                    used = WV__CODEC_NONE;
                } else if (k == XOR) {
                    rc = wv__codec_encode_delta(level, elem, p, base, n, enc,
                                                cap, ws, &out, &used, &err);
                } else {
                    rc = wv__codec_encode(k == BG ? WV__CODEC_BG_ZSTD
                                                  : WV__CODEC_ZSTD,
                                          level, elem, p, n, enc, cap, ws,
                                          &out, &used, &err);
                }
                double t1 = now();
                if (rc != WV_OK) {
                    fprintf(stderr, "bench_codec: %s: %s\n", kind_name[k],
                            err.msg);
                    return 1;
                }
                if (used == WV__CODEC_NONE) {
                    memcpy(dec, p, n); /* stored as it is */
                    out = n;
                } else if (used == WV__CODEC_DELTA) {
                    rc = wv__codec_decode_delta(elem, enc, out, base, dec, n,
                                                ws, &err);
                } else {
                    rc = wv__codec_decode(used, elem, enc, out, dec, n, ws,
                                          &err);
                }
                double t2 = now();
                if (rc != WV_OK || memcmp(dec, p, n) != 0) {
                    fprintf(stderr, "bench_codec: %s does not round-trip\n",
                            kind_name[k]);
                    return 1;
                }
                te[k][r] += t1 - t0;
                td[k][r] += t2 - t1;
                stored[k] += out;
            }
        }
    }
    double mb = (double)lb / 1e6, me[N_KIND], md[N_KIND];
    for (int k = 0; k < N_KIND; k++) {
        qsort(te[k], (size_t)rounds, sizeof(double), cmp_d);
        qsort(td[k], (size_t)rounds, sizeof(double), cmp_d);
        me[k] = mb / te[k][rounds / 2];
        md[k] = mb / td[k][rounds / 2];
    }
    printf("%.1f MB of element size %u in %zu MiB chunks, zstd level %d, "
           "one thread, median of %d rounds:\n\n",
           mb, elem, cs >> 20, level, rounds);
    printf("| codec | stored | of raw | encode MB/s per core | decode MB/s "
           "per core | encode vs zstd | decode vs zstd |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < N_KIND; k++)
        printf("| %s | %llu | %.3f | %.0f | %.0f | %.2fx | %.2fx |\n",
               kind_name[k], (unsigned long long)stored[k],
               (double)stored[k] / (double)lb, me[k], md[k],
               me[k] / me[ZSTD], md[k] / md[ZSTD]);
    wv__codec_ws_free(ws);
    free(enc);
    free(dec);
    free(fa);
    free(fb);
    return 0;
}
