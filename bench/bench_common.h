/*
 * bench_common.h -- code shared by the benchmark programs (bench_io.c,
 * bench_repo.c). CMake builds every C file of bench/ as its own
 * executable, so the shared code lives here as static functions; a program
 * includes this header once.
 *
 * It provides:
 *   - bench_die(), bench_now(), bench_median(), bench_print_runs();
 *   - the deterministic F32 tensor set of the benchmarks: bench_make_defs()
 *     lays out ~size bytes of 40 tensors (embedding and output head, 4
 *     transformer-style layers, convolution weights, a 3-D table, a
 *     scalar), bench_generate() fills them with an xorshift PRNG (one seed
 *     per tensor), bench_build_model() wraps them in a wv_model that
 *     borrows the buffers;
 *   - file helpers (write_all, fsync of a path, file size, page-cache warm)
 *     and bench_settle() (sync() and a pause: see bench/README.md).
 *
 * Uses the public API (weightvault.h) only.
 */
#ifndef WV_BENCH_COMMON_H
#define WV_BENCH_COMMON_H

#include "weightvault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 101
#define MAX_TENSORS 64

/* Every function here is static; a program need not use all of them. */
#define BENCH_FN static __attribute__((unused))

/* Prefix of the messages of bench_die(); set by main(). */
static const char *bench_prog = "bench";

BENCH_FN void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

BENCH_FN void bench_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", bench_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

BENCH_FN double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

BENCH_FN int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

BENCH_FN double bench_median(const double *v, int n)
{
    double s[MAX_RUNS];
    if (n <= 0)
        return 0;
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

BENCH_FN void bench_print_runs(const char *what, const double *v, int n,
                               double scale, const char *unit)
{
    printf("- %s (%s):", what, unit);
    for (int i = 0; i < n; i++)
        printf(" %.3f", v[i] * scale);
    printf("\n");
}

/* sync() (no earlier dirty data for the next timed fsync) and a pause of
 * `secs` seconds, so both sides of a comparison start from the same state:
 * on the benchmark VM, memory freed by an unlink is handed back to the host
 * within ~2 s and re-faulted slowly (see bench/README.md). */
BENCH_FN void bench_settle(double secs)
{
    sync();
    if (secs > 0) {
        struct timespec ts;
        ts.tv_sec = (time_t)secs;
        ts.tv_nsec = (long)((secs - (double)(time_t)secs) * 1e9);
        nanosleep(&ts, NULL);
    }
}

/* ---- the tensor set ----------------------------------------------------- */

struct tdef {
    char name[64];
    int ndim;
    uint64_t shape[4];
};

static struct tdef defs[MAX_TENSORS];
static size_t n_defs;
static float *bufs[MAX_TENSORS];
static uint64_t total_bytes;

BENCH_FN uint64_t numel_of(const struct tdef *d)
{
    uint64_t n = 1;
    for (int i = 0; i < d->ndim; i++)
        n *= d->shape[i];
    return n;
}

BENCH_FN void bench_def(const char *name, int ndim, uint64_t a, uint64_t b,
                        uint64_t c, uint64_t d)
{
    struct tdef *t = &defs[n_defs++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = a;
    t->shape[1] = b;
    t->shape[2] = c;
    t->shape[3] = d;
}

/* The layout with model width 1024 / f; the embedding and the output head
 * get 0 rows (fixed by the caller). Returns the bytes of the other
 * tensors. */
BENCH_FN uint64_t bench_layout(uint64_t f)
{
    char nm[64];
    const uint64_t d = 1024 / f, ff = 4096 / f;
    n_defs = 0;
    bench_def("tok_embed.weight", 2, 0, d, 0, 0); /* rows fixed below */
    bench_def("pos_embed.weight", 2, 2048, d, 0, 0);
    for (int l = 0; l < 4; l++) {
        snprintf(nm, sizeof nm, "layers.%d.attn.qkv.weight", l);
        bench_def(nm, 2, 3 * d, d, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.attn.out.weight", l);
        bench_def(nm, 2, d, d, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.mlp.up.weight", l);
        bench_def(nm, 2, ff, d, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.mlp.up.bias", l);
        bench_def(nm, 1, ff, 0, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.mlp.down.weight", l);
        bench_def(nm, 2, d, ff, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.norm1.weight", l);
        bench_def(nm, 1, d, 0, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.norm2.weight", l);
        bench_def(nm, 1, d, 0, 0, 0);
    }
    bench_def("conv.stem.weight", 4, 64, 3, 7, 7);
    bench_def("conv.block1.weight", 4, 256 / f, 128, 3, 3);
    bench_def("conv.block2.weight", 4, 512 / f, 256, 3, 3);
    bench_def("conv.grouped.weight", 4, f < 8 ? 8 / f : 1, 16, 32, 64);
    bench_def("rel_pos.table", 3, 64 / f, 128, 256, 0);
    bench_def("final_norm.weight", 1, d, 0, 0, 0);
    bench_def("cls_head.weight", 2, 1000, d, 0, 0);
    bench_def("cls_head.bias", 1, 1000, 0, 0, 0);
    bench_def("logit_scale", 0, 0, 0, 0, 0);
    bench_def("lm_head.weight", 2, 0, d, 0, 0); /* rows fixed below */

    uint64_t fixed = 0;
    for (size_t i = 0; i < n_defs; i++)
        if (!(defs[i].ndim == 2 && defs[i].shape[0] == 0))
            fixed += numel_of(&defs[i]) * 4;
    return fixed;
}

/* A transformer-ish layout plus some convolution weights; the embedding and
 * the output head take whatever is left to reach the target size. From
 * 1 GiB up the layout is the one of width 1024 (the 1 GiB set of the
 * README's tables); smaller targets (quick runs) use a narrower model, so
 * that the embeddings still hold about half the bytes. */
BENCH_FN void bench_make_defs(uint64_t target_bytes)
{
    uint64_t f = 1;
    uint64_t fixed = bench_layout(f);
    while (fixed > target_bytes / 2 && f < 16)
        fixed = bench_layout(f *= 2);
    const uint64_t d = 1024 / f;
    if (target_bytes < fixed + 2 * d * 4)
        bench_die("--size-mib too small (the fixed tensors take %llu bytes)",
                  (unsigned long long)fixed);
    uint64_t rows = (target_bytes - fixed) / (2 * d * 4);
    defs[0].shape[0] = rows;
    defs[n_defs - 1].shape[0] = rows;
    total_bytes = 0;
    for (size_t i = 0; i < n_defs; i++)
        total_bytes += numel_of(&defs[i]) * 4;
}

/* xorshift64*; each tensor gets its own seed so the content is fixed. */
BENCH_FN void bench_fill(float *p, uint64_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (uint64_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint32_t r = (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
        union { uint32_t u; float f; } v;
        v.u = (r >> 9) | 0x3f800000u; /* [1, 2) */
        p[i] = (v.f - 1.5f) * 0.1f;
    }
}

BENCH_FN void bench_generate(void)
{
    for (size_t i = 0; i < n_defs; i++) {
        uint64_t n = numel_of(&defs[i]);
        bufs[i] = malloc(n ? n * 4 : 4);
        if (bufs[i] == NULL)
            bench_die("out of memory generating the set");
        bench_fill(bufs[i], n, i + 1);
    }
}

BENCH_FN void bench_release_set(void)
{
    for (size_t i = 0; i < n_defs; i++) {
        free(bufs[i]);
        bufs[i] = NULL;
    }
}

/* A set borrowing the buffers `b` (bufs, or another array laid out by
 * defs). */
BENCH_FN wv_model *bench_build_model_from(float *const *b)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        bench_die("wv_model_new failed");
    for (size_t i = 0; i < n_defs; i++) {
        int rc = wv_model_add(m, defs[i].name, WV_F32, defs[i].ndim,
                              defs[i].shape, b[i], numel_of(&defs[i]) * 4,
                              WV_DATA_BORROW);
        if (rc != WV_OK)
            bench_die("wv_model_add %s: %s", defs[i].name,
                      wv_model_errmsg(m));
    }
    return m;
}

BENCH_FN wv_model *bench_build_model(void)
{
    return bench_build_model_from(bufs);
}

/* ---- files -------------------------------------------------------------- */

/* DIR/NAME in a malloc()ed string. */
BENCH_FN char *bench_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p == NULL)
        bench_die("out of memory");
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

BENCH_FN void bench_fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        bench_die("open %s: %s", path, strerror(errno));
    if (fsync(fd) != 0)
        bench_die("fsync %s: %s", path, strerror(errno));
    close(fd);
}

BENCH_FN void bench_write_all(int fd, const void *p, size_t n,
                              const char *path)
{
    const unsigned char *c = p;
    while (n > 0) {
        size_t step = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, c, step);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            bench_die("write %s: %s", path, w < 0 ? strerror(errno) : "short");
        c += w;
        n -= (size_t)w;
    }
}

/* The baseline writer: `header_len` zero bytes (0: none), then every
 * tensor of the set with one write() straight from its buffer, fsync(),
 * close(), fsync() of the directory `dir`. */
BENCH_FN void bench_baseline_write(const char *path, const char *dir,
                                   size_t header_len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        bench_die("open %s: %s", path, strerror(errno));
    if (header_len) {
        unsigned char *hdr = calloc(1, header_len);
        if (hdr == NULL)
            bench_die("out of memory");
        bench_write_all(fd, hdr, header_len, path);
        free(hdr);
    }
    for (size_t i = 0; i < n_defs; i++)
        bench_write_all(fd, bufs[i], numel_of(&defs[i]) * 4, path);
    if (fsync(fd) != 0)
        bench_die("fsync %s: %s", path, strerror(errno));
    if (close(fd) != 0)
        bench_die("close %s: %s", path, strerror(errno));
    bench_fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

BENCH_FN uint64_t bench_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        bench_die("stat %s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

/* Read a file once so its pages are in the page cache. */
BENCH_FN void bench_warm(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        bench_die("open %s: %s", path, strerror(errno));
    size_t cap = (size_t)8 << 20;
    char *b = malloc(cap);
    if (b == NULL)
        bench_die("out of memory");
    while (read(fd, b, cap) > 0)
        ;
    free(b);
    close(fd);
}

/* "model name" of the first CPU in /proc/cpuinfo ("?" if none). */
BENCH_FN void bench_cpu_name(char *out, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(out, n, "?");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            snprintf(out, n, "%.200s", c ? c + 2 : line);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    if (f)
        fclose(f);
}

#endif /* WV_BENCH_COMMON_H */
