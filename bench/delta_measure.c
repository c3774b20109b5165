/*
 * delta_measure.c -- compare exact transforms of a checkpoint against its
 * parent before entropy coding (the measurement behind the repository's
 * delta codec, docs/repo-format.md "Delta chunks"). Reads two safetensors
 * files of the same layout (consecutive checkpoints of a training run),
 * cuts their data into chunks and prints the stored bytes of each
 * transform, zstd at the given level, and its speed (CPU time):
 *
 *   bg       byte grouping of the new chunk (what the repository stores
 *            without delta)
 *   xor      new XOR parent, zstd
 *   xor-bg   new XOR parent, byte grouping, zstd
 *   sub-bg   new minus parent (integers of the element width), byte
 *            grouping, zstd
 *   xor-bit  new XOR parent, bit-plane split (bit b of every element,
 *            plane by plane), zstd
 *
 *   delta_measure OLD NEW ELEM [LEVEL]      (ELEM 4 for F32, 2 for BF16)
 *
 * and, per byte plane (byte j of every element, j = 0 the lowest), the
 * order-0 entropy in bits per byte of the new data, of the XOR and of the
 * difference, chunk by chunk: what a coder of independent bytes with a
 * table per chunk and plane reaches (context across bytes is what zstd's
 * matches could add; on weights they find almost none).
 *
 * A benchmark tool: plain malloc, no library code.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    unsigned char h[8];
    if (!f || fread(h, 1, 8, f) != 8) {
        fprintf(stderr, "%s: cannot read\n", path);
        exit(1);
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | h[i];
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    *n = (size_t)end - 8 - hl;
    unsigned char *p = malloc(*n ? *n : 1);
    fseek(f, (long)(8 + hl), SEEK_SET);
    if (!p || fread(p, 1, *n, f) != *n) {
        fprintf(stderr, "%s: cannot read data\n", path);
        exit(1);
    }
    fclose(f);
    return p;
}

static void group(const unsigned char *in, size_t n, unsigned k,
                  unsigned char *out)
{
    size_t m = n / k;
    for (unsigned j = 0; j < k; j++)
        for (size_t i = 0; i < m; i++)
            out[j * m + i] = in[i * k + j];
    memcpy(out + m * k, in + m * k, n - m * k);
}

static void bitplanes(const unsigned char *in, size_t n, unsigned k,
                      unsigned char *out)
{
    size_t m = n / k, pl = (m + 7) / 8;
    memset(out, 0, pl * 8 * k);
    for (size_t i = 0; i < m; i++)
        for (unsigned b = 0; b < 8 * k; b++)
            if (in[i * k + b / 8] >> (b % 8) & 1)
                out[b * pl + i / 8] |= (unsigned char)(1u << (i % 8));
}

static double now(void)
{
    struct timespec t;
    /* CPU time: steadier than wall time on a shared machine */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: delta_measure OLD NEW ELEM [LEVEL]\n");
        return 2;
    }
    size_t na, nb;
    unsigned char *a = slurp(argv[1], &na), *b = slurp(argv[2], &nb);
    unsigned k = (unsigned)atoi(argv[3]);
    int level = argc > 4 ? atoi(argv[4]) : 1;
    if (na != nb || k < 2 || k > 8) {
        fprintf(stderr, "files differ in size or bad ELEM\n");
        return 2;
    }
    const size_t cs = (size_t)4 << 20;
    size_t cap = ZSTD_compressBound(cs) + 64;
    unsigned char *t = malloc(cs * 2), *g = malloc(cs * 2), *z = malloc(cap);
    const char *names[] = {"bg", "xor", "xor-bg", "sub-bg", "xor-bit"};
    size_t tot[5] = {0};
    /* byte histograms per plane (new data, XOR, difference), of the
     * chunk, and the sum of the chunks' entropies */
    static uint64_t hist[3][8][256];
    double hbits[3][8] = {{0}}, floor_bytes[3] = {0};
    uint64_t hcount[3][8] = {{0}};
    double secs[5] = {0};
    for (size_t off = 0; off < nb; off += cs) {
        size_t n = nb - off < cs ? nb - off : cs;
        const unsigned char *pa = a + off, *pb = b + off;
        for (int m = 0; m < 5; m++) {
            double t0 = now();
            const unsigned char *src = g;
            size_t sl = n;
            if (m == 0) {
                group(pb, n, k, g);
            } else if (m == 4) {
                for (size_t i = 0; i < n; i++)
                    t[i] = pa[i] ^ pb[i];
                bitplanes(t, n, k, g);
                sl = (n / k + 7) / 8 * 8 * k;
            } else if (m == 3) {
                for (size_t i = 0; i + k <= n; i += k) {
                    uint64_t x = 0, y = 0;
                    memcpy(&x, pb + i, k);
                    memcpy(&y, pa + i, k);
                    x -= y;
                    memcpy(t + i, &x, k);
                }
                group(t, n, k, g);
            } else {
                for (size_t i = 0; i < n; i++)
                    t[i] = pa[i] ^ pb[i];
                if (m == 2)
                    group(t, n, k, g);
                else
                    src = t;
            }
            size_t r = ZSTD_compress(z, cap, src, sl, level);
            tot[m] += ZSTD_isError(r) || r > n ? n : r;
            secs[m] += now() - t0;
            /* the planes' entropy, not timed */
            if (m == 0 || m == 2 || m == 3) {
                const unsigned char *q = m == 0 ? pb : t;
                int hh = m == 0 ? 0 : m == 2 ? 1 : 2;
                for (size_t i = 0; i + k <= n; i += k)
                    for (unsigned j = 0; j < k; j++)
                        hist[hh][j][q[i + j]]++;
                for (unsigned j = 0; j < k; j++) {
                    uint64_t all = 0;
                    double h = 0;
                    for (int v = 0; v < 256; v++)
                        all += hist[hh][j][v];
                    for (int v = 0; v < 256; v++)
                        if (hist[hh][j][v]) {
                            double p = (double)hist[hh][j][v] / (double)all;
                            h -= p * log2(p);
                        }
                    hbits[hh][j] += h * (double)all;
                    hcount[hh][j] += all;
                    floor_bytes[hh] += h / 8 * (double)all;
                    memset(hist[hh][j], 0, sizeof hist[hh][j]);
                }
            }
        }
    }
    printf("raw %zu bytes, elem %u, zstd level %d\n", nb, k, level);
    for (int m = 0; m < 5; m++)
        printf("%-8s %12zu bytes  ratio %.3fx  (%.3fx of bg)  %.0f MB/s\n",
               names[m], tot[m], (double)nb / (double)tot[m],
               (double)tot[m] / (double)tot[0], nb / secs[m] / 1e6);
    const char *hn[3] = {"new", "xor", "sub"};
    printf("order-0 entropy of each chunk's planes, bits per byte, plane 0 "
           "(lowest) .. %u:\n",
           k - 1);
    for (int hh = 0; hh < 3; hh++) {
        printf("%-8s", hn[hh]);
        for (unsigned j = 0; j < k; j++)
            printf(" %6.3f", hcount[hh][j]
                                 ? hbits[hh][j] / (double)hcount[hh][j]
                                 : 0.0);
        printf("   floor %.0f bytes (%.3fx of bg)\n", floor_bytes[hh],
               floor_bytes[hh] / (double)tot[0]);
    }
    return 0;
}
