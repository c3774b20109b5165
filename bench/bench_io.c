/*
 * bench_io.c -- the I/O benchmark of the Foundation issue.
 *
 * It generates a deterministic ~1 GiB set of F32 tensors (40 tensors of
 * mixed shapes: big matrices, vectors, a scalar, 3-D and 4-D tensors) and
 * measures, in one run and side by side, with the median of N runs:
 *
 *   (a) durable save (wv_model_save: temp file, fsync, rename, fsync dir)
 *       vs write() of the same bytes from the same buffers to a fresh file,
 *       fsync() of it and fsync() of the directory;
 *   (b) load into owned memory (WV_LOAD_PREAD, page cache warm) vs malloc()
 *       of a fresh buffer + memcpy() of the same number of bytes into it;
 *   (c) mmap open (WV_LOAD_MMAP, no tensor data touched);
 *   (d) peak RSS of save (a forked child generates the set and saves it)
 *       and of `wv convert` safetensors -> safetensors, F32 and BF16;
 *   (e) torch.load of the same tensors written by torch.save, timed by
 *       bench/torch_baseline.py under /usr/bin/python3.
 *
 * Uses the public API (weightvault.h) only. Usage:
 *
 *   bench_io --dir SCRATCH [--runs N] [--size-mib M] [--wv PATH]
 *            [--torch-script PATH] [--python PATH] [--no-torch]
 *
 * bench/run.sh passes the right paths. Peak RSS comes from wait4()'s
 * ru_maxrss; the RSS children are started before this process allocates the
 * set, so the high-water mark a child inherits from us is small.
 */
#include "weightvault.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 101
#define MAX_TENSORS 64

/* ---- options ------------------------------------------------------------ */

static struct {
    const char *dir;
    const char *wv;
    const char *torch_script;
    const char *python;
    int runs;
    uint64_t size_mib;
    bool no_torch;
    double settle;
} opt = {NULL, NULL, NULL, "/usr/bin/python3", 5, 1024, false, 3.0};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#include <stdarg.h>
static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bench_io: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[MAX_RUNS];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void print_runs(const char *what, const double *v, int n,
                       double scale, const char *unit)
{
    printf("- %s (%s):", what, unit);
    for (int i = 0; i < n; i++)
        printf(" %.3f", v[i] * scale);
    printf("\n");
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

static uint64_t numel_of(const struct tdef *d)
{
    uint64_t n = 1;
    for (int i = 0; i < d->ndim; i++)
        n *= d->shape[i];
    return n;
}

static void def(const char *name, int ndim, uint64_t a, uint64_t b,
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

/* A transformer-ish layout plus some convolution weights; the embedding and
 * the output head take whatever is left to reach the target size. */
static void make_defs(uint64_t target_bytes)
{
    char nm[64];
    const uint64_t d = 1024, ff = 4096;
    n_defs = 0;
    def("tok_embed.weight", 2, 0, d, 0, 0); /* rows fixed below */
    def("pos_embed.weight", 2, 2048, d, 0, 0);
    for (int l = 0; l < 4; l++) {
        snprintf(nm, sizeof nm, "layers.%d.attn.qkv.weight", l);
        def(nm, 2, 3 * d, d, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.attn.out.weight", l);
        def(nm, 2, d, d, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.mlp.up.weight", l);
        def(nm, 2, ff, d, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.mlp.up.bias", l);
        def(nm, 1, ff, 0, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.mlp.down.weight", l);
        def(nm, 2, d, ff, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.norm1.weight", l);
        def(nm, 1, d, 0, 0, 0);
        snprintf(nm, sizeof nm, "layers.%d.norm2.weight", l);
        def(nm, 1, d, 0, 0, 0);
    }
    def("conv.stem.weight", 4, 64, 3, 7, 7);
    def("conv.block1.weight", 4, 256, 128, 3, 3);
    def("conv.block2.weight", 4, 512, 256, 3, 3);
    def("conv.grouped.weight", 4, 8, 16, 32, 64);
    def("rel_pos.table", 3, 64, 128, 256, 0);
    def("final_norm.weight", 1, d, 0, 0, 0);
    def("cls_head.weight", 2, 1000, d, 0, 0);
    def("cls_head.bias", 1, 1000, 0, 0, 0);
    def("logit_scale", 0, 0, 0, 0, 0);
    def("lm_head.weight", 2, 0, d, 0, 0); /* rows fixed below */

    uint64_t fixed = 0;
    for (size_t i = 0; i < n_defs; i++)
        if (!(defs[i].ndim == 2 && defs[i].shape[0] == 0))
            fixed += numel_of(&defs[i]) * 4;
    if (target_bytes < fixed + 2 * d * 4)
        die("--size-mib too small (the fixed tensors take %llu bytes)",
            (unsigned long long)fixed);
    uint64_t rows = (target_bytes - fixed) / (2 * d * 4);
    defs[0].shape[0] = rows;
    defs[n_defs - 1].shape[0] = rows;
    total_bytes = 0;
    for (size_t i = 0; i < n_defs; i++)
        total_bytes += numel_of(&defs[i]) * 4;
}

/* xorshift64*; each tensor gets its own seed so the content is fixed. */
static void fill(float *p, uint64_t n, uint64_t seed)
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

static void generate(void)
{
    for (size_t i = 0; i < n_defs; i++) {
        uint64_t n = numel_of(&defs[i]);
        bufs[i] = malloc(n ? n * 4 : 4);
        if (bufs[i] == NULL)
            die("out of memory generating the set");
        fill(bufs[i], n, i + 1);
    }
}

static void release_set(void)
{
    for (size_t i = 0; i < n_defs; i++) {
        free(bufs[i]);
        bufs[i] = NULL;
    }
}

static wv_model *build_model(void)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        die("wv_model_new failed");
    for (size_t i = 0; i < n_defs; i++) {
        int rc = wv_model_add(m, defs[i].name, WV_F32, defs[i].ndim,
                              defs[i].shape, bufs[i], numel_of(&defs[i]) * 4,
                              WV_DATA_BORROW);
        if (rc != WV_OK)
            die("wv_model_add %s: %s", defs[i].name, wv_model_errmsg(m));
    }
    return m;
}

/* ---- helpers ------------------------------------------------------------ */

static char *path_in(const char *name)
{
    size_t n = strlen(opt.dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p == NULL)
        die("out of memory");
    snprintf(p, n, "%s/%s", opt.dir, name);
    return p;
}

static void save_or_die(wv_model *m, const char *path)
{
    int rc = wv_model_save(m, path, NULL);
    if (rc != WV_OK)
        die("wv_model_save %s: %s", path, wv_model_errmsg(m));
}

static void fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    if (fsync(fd) != 0)
        die("fsync %s: %s", path, strerror(errno));
    close(fd);
}

static void write_all(int fd, const void *p, size_t n, const char *path)
{
    const unsigned char *c = p;
    while (n > 0) {
        size_t step = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, c, step);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write %s: %s", path, w < 0 ? strerror(errno) : "short");
        c += w;
        n -= (size_t)w;
    }
}

/* The baseline writer: a header-sized block, then every tensor with one
 * write() straight from its buffer (as the library does for tensors of
 * 1 MiB and more), fsync(), close(), fsync() of the directory. The header
 * bytes are zeros of the size the real header has, so the file has
 * exactly the same length. */
static void baseline_write(const char *path, size_t header_len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    unsigned char *hdr = calloc(1, header_len);
    if (hdr == NULL)
        die("out of memory");
    write_all(fd, hdr, header_len, path);
    free(hdr);
    for (size_t i = 0; i < n_defs; i++)
        write_all(fd, bufs[i], numel_of(&defs[i]) * 4, path);
    if (fsync(fd) != 0)
        die("fsync %s: %s", path, strerror(errno));
    if (close(fd) != 0)
        die("close %s: %s", path, strerror(errno));
    fsync_path(opt.dir, O_RDONLY | O_DIRECTORY);
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        die("stat %s: %s", path, strerror(errno));
    return (uint64_t)st.st_size;
}

/* Read a file once so its pages are in the page cache. */
static void warm(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    size_t cap = (size_t)8 << 20;
    char *b = malloc(cap);
    if (b == NULL)
        die("out of memory");
    while (read(fd, b, cap) > 0)
        ;
    free(b);
    close(fd);
}

/* Run argv in a child; returns its ru_maxrss in bytes and wall time. */
static uint64_t run_child_rss(char *const argv[], double *secs)
{
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "bench_io: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            die("wait4: %s", strerror(errno));
    *secs = now() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("%s %s failed (status %d)", argv[0], argv[1], status);
    return (uint64_t)ru.ru_maxrss * 1024;
}

/* A forked child (forked while this process is still small) generates the
 * set and saves it to `path`. */
static uint64_t save_child_rss(const char *path, double *secs)
{
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        generate();
        wv_model *m = build_model();
        save_or_die(m, path);
        wv_model_free(m);
        _exit(0);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            die("wait4: %s", strerror(errno));
    *secs = now() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        die("save child failed (status %d)", status);
    return (uint64_t)ru.ru_maxrss * 1024;
}

static uint64_t self_maxrss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_maxrss * 1024;
}

/* Pull "key": number out of the script's one-line JSON. */
static bool json_num(const char *json, const char *key, double *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (p == NULL)
        return false;
    p += strlen(pat);
    char *end;
    double v = strtod(p, &end);
    if (end == p)
        return false;
    *out = v;
    return true;
}

/* ---- main --------------------------------------------------------------- */

static const char usage[] =
    "usage: bench_io --dir SCRATCH [--runs N] [--size-mib M] [--wv PATH]\n"
    "                [--torch-script PATH] [--python PATH] [--no-torch]\n"
    "                [--settle SECONDS]\n";

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--dir") == 0 && has)
            opt.dir = argv[++i];
        else if (strcmp(a, "--wv") == 0 && has)
            opt.wv = argv[++i];
        else if (strcmp(a, "--torch-script") == 0 && has)
            opt.torch_script = argv[++i];
        else if (strcmp(a, "--python") == 0 && has)
            opt.python = argv[++i];
        else if (strcmp(a, "--runs") == 0 && has)
            opt.runs = atoi(argv[++i]);
        else if (strcmp(a, "--size-mib") == 0 && has)
            opt.size_mib = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--settle") == 0 && has)
            opt.settle = atof(argv[++i]);
        else if (strcmp(a, "--no-torch") == 0)
            opt.no_torch = true;
        else {
            fputs(usage, stderr);
            exit(2);
        }
    }
    if (opt.dir == NULL) {
        fputs(usage, stderr);
        exit(2);
    }
    if (opt.runs < 3 || opt.runs > MAX_RUNS)
        die("--runs must be between 3 and %d", MAX_RUNS);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int runs = opt.runs;

    /* wv defaults to the binary next to this one. */
    char wv_default[4096];
    if (opt.wv == NULL) {
        ssize_t n = readlink("/proc/self/exe", wv_default,
                             sizeof wv_default - 4);
        if (n < 0)
            die("readlink /proc/self/exe: %s", strerror(errno));
        wv_default[n] = '\0';
        char *slash = strrchr(wv_default, '/');
        strcpy(slash ? slash + 1 : wv_default, "wv");
        opt.wv = wv_default;
    }
    if (access(opt.wv, X_OK) != 0)
        die("wv binary %s: %s (use --wv)", opt.wv, strerror(errno));
    if (mkdir(opt.dir, 0777) != 0 && errno != EEXIST)
        die("mkdir %s: %s", opt.dir, strerror(errno));

    make_defs(opt.size_mib << 20);
    const double data = (double)total_bytes;
    char *p_big = path_in("big.safetensors");
    char *p_ours = path_in("save.safetensors");
    char *p_base = path_in("baseline.bin");
    char *p_conv = path_in("convert.safetensors");
    char *p_bf16 = path_in("convert-bf16.safetensors");

    struct utsname un;
    uname(&un);
    char host[256] = "";
    {
        FILE *f = fopen("/proc/cpuinfo", "r");
        char line[512];
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                snprintf(host, sizeof host, "%.200s", c ? c + 2 : line);
                host[strcspn(host, "\n")] = '\0';
                break;
            }
        if (f)
            fclose(f);
    }
    printf("## weightvault I/O benchmark\n\n");
    printf("- machine: %ld CPUs online (%s), %s %s %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), host[0] ? host : "?", un.sysname,
           un.release, un.machine);
    printf("- weightvault %s, scratch dir %s\n", wv_version_string(),
           opt.dir);
    printf("- data: %zu F32 tensors, %llu bytes (%.3f GiB); runs: %d "
           "(medians shown)\n\n",
           n_defs, (unsigned long long)total_bytes, data / (1 << 30), runs);

    /* (d) Peak RSS first, while this process is small: a child's
     * ru_maxrss includes what it inherited from us. */
    fprintf(stderr, "bench_io: peak RSS of save and convert...\n");
    double rss_save[MAX_RUNS], rss_conv[MAX_RUNS], rss_bf16[MAX_RUNS];
    double t_conv[MAX_RUNS], t_bf16[MAX_RUNS], t_child;
    uint64_t parent_rss = self_maxrss();
    for (int r = 0; r < runs; r++) {
        unlink(p_big);
        rss_save[r] = (double)save_child_rss(p_big, &t_child) / data;
    }
    uint64_t big_size = file_size(p_big);
    for (int r = 0; r < runs; r++) {
        char *av[] = {(char *)opt.wv, "convert", p_big, p_conv, "--dtype",
                      "F32", NULL};
        rss_conv[r] = (double)run_child_rss(av, &t_conv[r]) / data;
        unlink(p_conv);
        char *bv[] = {(char *)opt.wv, "convert", p_big, p_bf16, "--dtype",
                      "BF16", NULL};
        rss_bf16[r] = (double)run_child_rss(bv, &t_bf16[r]) / data;
        unlink(p_bf16);
    }

    /* The set, in this process from now on. */
    fprintf(stderr, "bench_io: generating %.2f GiB...\n", data / (1 << 30));
    double tg = now();
    generate();
    tg = now() - tg;
    wv_model *m = build_model();
    size_t header_len = (size_t)(big_size - total_bytes);

    /* (a) Durable save vs write+fsync, alternating which goes first. */
    fprintf(stderr, "bench_io: save vs write+fsync...\n");
    double t_save[MAX_RUNS], t_write[MAX_RUNS];
    /* One untimed pair first, then alternate which goes first. Before each
     * timed write: sync() (no earlier dirty data for the timed fsync) and a
     * pause of --settle seconds, so both sides start from the same state
     * (on this VM, memory freed by the previous unlink is handed back to
     * the host within ~2 s and re-faulted slowly: see bench/README.md). */
    for (int r = -1; r < runs; r++) {
        for (int k = 0; k < 2; k++) {
            bool ours = (k == 0) == (r % 2 == 0);
            const char *p = ours ? p_ours : p_base;
            unlink(p);
            sync();
            if (opt.settle > 0)
                nanosleep(&(struct timespec){(time_t)opt.settle,
                                             (long)((opt.settle -
                                                     (double)(time_t)
                                                         opt.settle) *
                                                    1e9)},
                          NULL);
            double t0 = now();
            if (ours)
                save_or_die(m, p);
            else
                baseline_write(p, header_len);
            double t = now() - t0;
            if (file_size(p) != big_size)
                die("%s has %llu bytes, expected %llu", p,
                    (unsigned long long)file_size(p),
                    (unsigned long long)big_size);
            unlink(p);
            if (r >= 0)
                (ours ? t_save : t_write)[r] = t;
        }
    }

    /* (b) Load into owned memory (warm) vs malloc + memcpy. */
    fprintf(stderr, "bench_io: load (pread) vs memcpy...\n");
    warm(p_big);
    double t_load[MAX_RUNS], t_copy[MAX_RUNS], t_open[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < 2; k++) {
            bool ours = (k == 0) == (r % 2 == 0);
            if (ours) {
                wv_load_opts lo = WV_LOAD_OPTS_INIT;
                lo.flags = WV_LOAD_PREAD;
                wv_model *l;
                double t0 = now();
                int rc = wv_model_load(p_big, &lo, &l);
                t_load[r] = now() - t0;
                if (rc != WV_OK)
                    die("wv_model_load %s: %s", p_big, wv_strerror(rc));
                if (r == 0) { /* check once that it loaded the right bytes */
                    for (size_t i = 0; i < n_defs; i++) {
                        const wv_tensor *t = wv_model_find(l, defs[i].name);
                        if (t == NULL || wv_tensor_nbytes(t) !=
                                             numel_of(&defs[i]) * 4 ||
                            memcmp(wv_tensor_data(t), bufs[i],
                                   wv_tensor_nbytes(t)) != 0)
                            die("loaded tensor %s differs", defs[i].name);
                    }
                }
                wv_model_free(l);
            } else {
                double t0 = now();
                unsigned char *dst = malloc(total_bytes);
                if (dst == NULL)
                    die("out of memory");
                size_t off = 0;
                for (size_t i = 0; i < n_defs; i++) {
                    size_t nb = numel_of(&defs[i]) * 4;
                    memcpy(dst + off, bufs[i], nb);
                    off += nb;
                }
                t_copy[r] = now() - t0;
                /* keep the copy from being optimised away */
                volatile unsigned char sink = dst[total_bytes / 2];
                (void)sink;
                free(dst);
            }
        }
    }

    /* (c) mmap open, no data touched. */
    fprintf(stderr, "bench_io: mmap open...\n");
    for (int r = 0; r < runs; r++) {
        wv_model *l;
        double t0 = now();
        int rc = wv_model_load(p_big, NULL, &l);
        t_open[r] = now() - t0;
        if (rc != WV_OK)
            die("wv_model_load %s: %s", p_big, wv_strerror(rc));
        if (wv_model_count(l) != n_defs)
            die("mmap load found %zu tensors", wv_model_count(l));
        wv_model_free(l);
    }
    /* (c') mmap open + read one byte of every page: what a zero-copy user
     * pays to have all the data mapped in (page cache warm). */
    double t_touch[MAX_RUNS];
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (int r = 0; r < runs; r++) {
        wv_model *l;
        double t0 = now();
        int rc = wv_model_load(p_big, NULL, &l);
        if (rc != WV_OK)
            die("wv_model_load %s: %s", p_big, wv_strerror(rc));
        unsigned sum = 0;
        for (size_t i = 0; i < wv_model_count(l); i++) {
            const wv_tensor *t = wv_model_tensor(l, i);
            const unsigned char *d = wv_tensor_data(t);
            size_t nb = wv_tensor_nbytes(t);
            for (size_t o = 0; o < nb; o += page)
                sum += d[o];
            if (nb)
                sum += d[nb - 1];
        }
        t_touch[r] = now() - t0;
        volatile unsigned sink = sum;
        (void)sink;
        wv_model_free(l);
    }
    wv_model_free(m);
    release_set();

    /* (e) torch.load / torch.save of the same tensors. */
    double torch_load = -1, torch_save = -1, torch_pt_bytes = -1;
    char torch_ver[64] = "n/a";
    char torch_json[4096] = "";
    if (!opt.no_torch && opt.torch_script != NULL) {
        fprintf(stderr, "bench_io: torch baseline...\n");
        char cmd[8192];
        char *p_pt = path_in("torch.pt");
        snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' %d", opt.python,
                 opt.torch_script, p_big, p_pt, runs);
        FILE *f = popen(cmd, "r");
        if (f != NULL) {
            char line[4096];
            while (fgets(line, sizeof line, f))
                if (line[0] == '{')
                    snprintf(torch_json, sizeof torch_json, "%s", line);
            int st = pclose(f);
            if (st != 0 || !json_num(torch_json, "torch_load_s",
                                     &torch_load)) {
                fprintf(stderr, "bench_io: torch baseline failed (status "
                                "%d); its rows are n/a\n",
                        st);
                torch_load = -1;
            } else {
                json_num(torch_json, "torch_save_s", &torch_save);
                json_num(torch_json, "pt_bytes", &torch_pt_bytes);
                const char *v = strstr(torch_json, "\"torch_version\": \"");
                if (v) {
                    v += strlen("\"torch_version\": \"");
                    size_t n = strcspn(v, "\"");
                    snprintf(torch_ver, sizeof torch_ver, "%.*s", (int)n, v);
                }
            }
        }
        unlink(p_pt);
        free(p_pt);
    }

    /* ---- the table ---- */
    const double GB = 1e9;
    double ms_save = median(t_save, runs), ms_write = median(t_write, runs);
    double ms_load = median(t_load, runs), ms_copy = median(t_copy, runs);
    double ms_open = median(t_open, runs);
    double ms_touch = median(t_touch, runs);
    double r_save = ms_write / ms_save;
    double r_copy = ms_copy / ms_load;
    double rs_save = median(rss_save, runs), rs_conv = median(rss_conv, runs),
           rs_bf16 = median(rss_bf16, runs);

    printf("| measure | weightvault | baseline | ratio | target | met |\n");
    printf("|---|---|---|---|---|---|\n");
    printf("| durable save (GB/s) vs write()+fsync() | %.3f GB/s | %.3f GB/s "
           "| %.2f | >= 0.9 | %s |\n",
           data / ms_save / GB, data / ms_write / GB, r_save,
           r_save >= 0.9 ? "yes" : "**no**");
    printf("| load to owned memory, warm (GB/s) vs malloc+memcpy | %.3f GB/s "
           "| %.3f GB/s | %.2f | (reference) | - |\n",
           data / ms_load / GB, data / ms_copy / GB, r_copy);
    if (torch_load > 0) {
        double r1 = torch_load / ms_load, r2 = torch_load / ms_open;
        printf("| load to owned memory vs torch.load (s) | %.3f s | %.3f s "
               "| %.1fx | >= 5x | %s |\n",
               ms_load, torch_load, r1, r1 >= 5 ? "yes" : "**no**");
        printf("| mmap open, no data touched (ms) vs torch.load (s) | %.3f ms "
               "| %.3f s | %.0fx | >= 100x | %s |\n",
               ms_open * 1e3, torch_load, r2, r2 >= 100 ? "yes" : "**no**");
        printf("| mmap open + read every page (s) vs torch.load (s) | %.3f s "
               "| %.3f s | %.1fx | (reference) | - |\n",
               ms_touch, torch_load, torch_load / ms_touch);
    } else {
        printf("| load to owned memory vs torch.load (s) | %.3f s | n/a | n/a "
               "| >= 5x | n/a |\n",
               ms_load);
        printf("| mmap open, no data touched (ms) vs torch.load (s) | %.3f ms "
               "| n/a | n/a | >= 100x | n/a |\n",
               ms_open * 1e3);
        printf("| mmap open + read every page (s) vs torch.load (s) | %.3f s "
               "| n/a | n/a | (reference) | - |\n",
               ms_touch);
    }
    printf("| peak RSS of save / data | %.3fx | - | - | <= 1.1x | %s |\n",
           rs_save, rs_save <= 1.1 ? "yes" : "**no**");
    printf("| peak RSS of convert (F32 -> F32) / data | %.3fx | - | - | "
           "<= 1.1x | %s |\n",
           rs_conv, rs_conv <= 1.1 ? "yes" : "**no**");
    printf("| peak RSS of convert --dtype BF16 / data (output is half size) "
           "| %.3fx | - | - | <= 1.1x | %s |\n",
           rs_bf16, rs_bf16 <= 1.1 ? "yes" : "**no**");

    printf("\nNotes:\n");
    printf("- GB = 1e9 bytes; data = tensor bytes only (%llu); the "
           ".safetensors file is %llu bytes (header %zu).\n",
           (unsigned long long)total_bytes, (unsigned long long)big_size,
           header_len);
    printf("- ratio: baseline time / weightvault time (higher is better "
           "for us); each pair ran back to back, alternating which went "
           "first, after one untimed pair; sync() and a %.1f s pause "
           "(--settle) before each timed write.\n",
           opt.settle);
    printf("- save: wv_model_save (temp file, fsync, rename, fsync dir) vs "
           "open+write() of each tensor buffer+fsync+fsync dir, same file "
           "size; both files deleted after each run.\n");
    printf("- load: wv_model_load(WV_LOAD_PREAD) of a file in the page cache "
           "vs malloc() of a fresh buffer + memcpy() of the same bytes from "
           "the in-memory set (both fault in fresh pages).\n");
    printf("- mmap open: wv_model_load(default mmap): header parsed and "
           "validated, no tensor byte touched; '+ read every page' also "
           "reads one byte of each page of every tensor.\n");
    printf("- torch: %s; torch.save to a zip-format .pt (%.0f bytes), "
           "torch.load(map_location='cpu') with 1.13's default "
           "(weights_only=False), file in the page cache; torch.save median "
           "%.3f s (no fsync).\n",
           torch_ver, torch_pt_bytes, torch_save);
    printf("- peak RSS: ru_maxrss from wait4() of a forked child that "
           "generates the set and saves it, and of `wv convert` children "
           "(input mapped; mapped pages count in RSS); the parent's own "
           "peak when they were forked was %.1f MiB.\n",
           (double)parent_rss / (1 << 20));
    printf("- generating the set took %.2f s.\n", tg);
    printf("\nPer-run values:\n\n");
    print_runs("durable save", t_save, runs, 1, "s");
    print_runs("write+fsync", t_write, runs, 1, "s");
    print_runs("load pread", t_load, runs, 1, "s");
    print_runs("malloc+memcpy", t_copy, runs, 1, "s");
    print_runs("mmap open", t_open, runs, 1e3, "ms");
    print_runs("mmap open + read every page", t_touch, runs, 1, "s");
    print_runs("peak RSS save / data", rss_save, runs, 1, "x");
    print_runs("peak RSS convert F32 / data", rss_conv, runs, 1, "x");
    print_runs("peak RSS convert BF16 / data", rss_bf16, runs, 1, "x");
    print_runs("wv convert F32 wall time", t_conv, runs, 1, "s");
    print_runs("wv convert BF16 wall time", t_bf16, runs, 1, "s");
    if (torch_json[0])
        printf("- torch_baseline.py: %s", torch_json);

    unlink(p_big);
    free(p_big);
    free(p_ours);
    free(p_base);
    free(p_conv);
    free(p_bf16);
    return 0;
}
