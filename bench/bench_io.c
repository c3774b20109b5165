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
 * The set and the timing helpers are in bench_common.h (shared with
 * bench_repo.c). Uses the public API (weightvault.h) only. Usage:
 *
 *   bench_io --dir SCRATCH [--runs N] [--size-mib M] [--wv PATH]
 *            [--torch-script PATH] [--python PATH] [--no-torch]
 *
 * bench/run.sh passes the right paths. Peak RSS comes from wait4()'s
 * ru_maxrss; the RSS children are started before this process allocates the
 * set, so the high-water mark a child inherits from us is small.
 */
#include "bench_common.h"

#include <pthread.h>

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

/* ---- helpers ------------------------------------------------------------ */

static char *path_in(const char *name)
{
    return bench_path(opt.dir, name);
}

static void save_or_die(wv_model *m, const char *path)
{
    int rc = wv_model_save(m, path, NULL);
    if (rc != WV_OK)
        bench_die("wv_model_save %s: %s", path, wv_model_errmsg(m));
}

/* Run argv in a child; returns its ru_maxrss in bytes and wall time. */
static uint64_t run_child_rss(char *const argv[], double *secs)
{
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        execv(argv[0], argv);
        fprintf(stderr, "bench_io: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            bench_die("wait4: %s", strerror(errno));
    *secs = bench_now() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("%s %s failed (status %d)", argv[0], argv[1], status);
    return (uint64_t)ru.ru_maxrss * 1024;
}

/* A forked child (forked while this process is still small) generates the
 * set and saves it to `path`. */
static uint64_t save_child_rss(const char *path, double *secs)
{
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        bench_generate();
        wv_model *m = bench_build_model();
        save_or_die(m, path);
        wv_model_free(m);
        _exit(0);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR)
            bench_die("wait4: %s", strerror(errno));
    *secs = bench_now() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("save child failed (status %d)", status);
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
            opt.runs = (int)strtol(argv[++i], NULL, 10);
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
        bench_die("--runs must be between 3 and %d", MAX_RUNS);
}

/* The floor of an owned load: the set's bytes copied, split over the
 * cores, into `dst` whose pages are already present. */
static int bench_ncpu(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

struct floor_job {
    unsigned char *dst;
    uint64_t lo, hi; /* bytes [lo, hi) of the concatenated set */
};

static void *floor_main(void *arg)
{
    struct floor_job *j = arg;
    uint64_t pos = 0;
    for (size_t i = 0; i < n_defs; i++) {
        uint64_t nb = numel_of(&defs[i]) * 4;
        uint64_t a = pos > j->lo ? pos : j->lo;
        uint64_t b = pos + nb < j->hi ? pos + nb : j->hi;
        if (a < b)
            memcpy(j->dst + a, (const unsigned char *)bufs[i] + (a - pos),
                   (size_t)(b - a));
        pos += nb;
    }
    return NULL;
}

static void bench_copy_par(unsigned char *dst)
{
    int k = bench_ncpu();
    pthread_t th[8];
    struct floor_job jobs[8];
    uint64_t per = total_bytes / (uint64_t)k;
    for (int i = 0; i < k; i++) {
        jobs[i] = (struct floor_job){dst, per * (uint64_t)i,
                                     i == k - 1 ? total_bytes
                                                : per * (uint64_t)(i + 1)};
        if (pthread_create(&th[i], NULL, floor_main, &jobs[i]) != 0)
            bench_die("pthread_create failed");
    }
    for (int i = 0; i < k; i++)
        pthread_join(th[i], NULL);
}

int main(int argc, char **argv)
{
    bench_prog = "bench_io";
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int runs = opt.runs;

    /* wv defaults to the binary next to this one. */
    char wv_default[4096];
    if (opt.wv == NULL) {
        ssize_t n = readlink("/proc/self/exe", wv_default,
                             sizeof wv_default - 4);
        if (n < 0)
            bench_die("readlink /proc/self/exe: %s", strerror(errno));
        wv_default[n] = '\0';
        char *slash = strrchr(wv_default, '/');
        char *base = slash ? slash + 1 : wv_default;
        snprintf(base, sizeof wv_default - (size_t)(base - wv_default), "wv");
        opt.wv = wv_default;
    }
    if (access(opt.wv, X_OK) != 0)
        bench_die("wv binary %s: %s (use --wv)", opt.wv, strerror(errno));
    if (mkdir(opt.dir, 0777) != 0 && errno != EEXIST)
        bench_die("mkdir %s: %s", opt.dir, strerror(errno));

    bench_make_defs(opt.size_mib << 20);
    const double data = (double)total_bytes;
    char *p_big = path_in("big.safetensors");
    char *p_ours = path_in("save.safetensors");
    char *p_base = path_in("baseline.bin");
    char *p_conv = path_in("convert.safetensors");
    char *p_bf16 = path_in("convert-bf16.safetensors");

    struct utsname un;
    uname(&un);
    char host[256];
    bench_cpu_name(host, sizeof host);
    printf("## weightvault I/O benchmark\n\n");
    printf("- machine: %ld CPUs online (%s), %s %s %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), host, un.sysname,
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
    uint64_t big_size = bench_file_size(p_big);
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
    double tg = bench_now();
    bench_generate();
    tg = bench_now() - tg;
    wv_model *m = bench_build_model();
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
            bench_settle(opt.settle);
            double t0 = bench_now();
            if (ours)
                save_or_die(m, p);
            else
                bench_baseline_write(p, opt.dir, header_len);
            double t = bench_now() - t0;
            if (bench_file_size(p) != big_size)
                bench_die("%s has %llu bytes, expected %llu", p,
                    (unsigned long long)bench_file_size(p),
                    (unsigned long long)big_size);
            unlink(p);
            if (r >= 0)
                (ours ? t_save : t_write)[r] = t;
        }
    }

    /* (b) Load into owned memory (warm) vs malloc + memcpy; load into
     * memory the caller already has (mmap open + wv_model_read_all); and
     * the floor of that: the same bytes copied on every core into memory
     * that is already faulted in. Rotating order. */
    fprintf(stderr, "bench_io: owned loads vs memcpy...\n");
    bench_warm(p_big);
    double t_load[MAX_RUNS], t_copy[MAX_RUNS], t_floor[MAX_RUNS],
        t_into[MAX_RUNS], t_open[MAX_RUNS];
    unsigned char *warm_dst = malloc(total_bytes);
    if (warm_dst == NULL)
        bench_die("out of memory");
    memset(warm_dst, 1, total_bytes);
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < 4; k++) {
            int what = (k + r) % 4;
            if (what == 0) {
                wv_load_opts lo = WV_LOAD_OPTS_INIT;
                lo.flags = WV_LOAD_PREAD;
                wv_model *l;
                double t0 = bench_now();
                int rc = wv_model_load(p_big, &lo, &l);
                t_load[r] = bench_now() - t0;
                if (rc != WV_OK)
                    bench_die("wv_model_load %s: %s", p_big, wv_strerror(rc));
                if (r == 0) { /* check once that it loaded the right bytes */
                    for (size_t i = 0; i < n_defs; i++) {
                        const wv_tensor *t = wv_model_find(l, defs[i].name);
                        if (t == NULL || wv_tensor_nbytes(t) !=
                                             numel_of(&defs[i]) * 4 ||
                            memcmp(wv_tensor_data(t), bufs[i],
                                   wv_tensor_nbytes(t)) != 0)
                            bench_die("loaded tensor %s differs",
                                      defs[i].name);
                    }
                }
                wv_model_free(l);
            } else if (what == 1) {
                double t0 = bench_now();
                unsigned char *dst = malloc(total_bytes);
                if (dst == NULL)
                    bench_die("out of memory");
                size_t off = 0;
                for (size_t i = 0; i < n_defs; i++) {
                    size_t nb = numel_of(&defs[i]) * 4;
                    memcpy(dst + off, bufs[i], nb);
                    off += nb;
                }
                t_copy[r] = bench_now() - t0;
                /* keep the copy from being optimised away */
                volatile unsigned char sink = dst[total_bytes / 2];
                (void)sink;
                free(dst);
            } else if (what == 3) {
                /* The set in file order is the set in bench order. */
                void *dsts[MAX_TENSORS];
                wv_model *l;
                double t0 = bench_now();
                int rc = wv_model_load(p_big, NULL, &l);
                if (rc != WV_OK || wv_model_count(l) != n_defs)
                    bench_die("wv_model_load %s: %s", p_big,
                              wv_strerror(rc));
                size_t off = 0;
                for (size_t i = 0; i < n_defs; i++) {
                    const wv_tensor *t = wv_model_tensor(l, i);
                    dsts[i] = warm_dst + off;
                    off += wv_tensor_nbytes(t);
                }
                rc = wv_model_read_all(l, dsts, n_defs);
                t_into[r] = bench_now() - t0;
                if (rc != WV_OK)
                    bench_die("wv_model_read_all: %s", wv_strerror(rc));
                if (r == 0) { /* the right bytes, once */
                    for (size_t i = 0; i < n_defs; i++) {
                        const wv_tensor *t = wv_model_find(l, defs[i].name);
                        size_t ti = 0;
                        while (wv_model_tensor(l, ti) != t)
                            ti++;
                        if (memcmp(dsts[ti], bufs[i],
                                   numel_of(&defs[i]) * 4) != 0)
                            bench_die("read_all: tensor %s differs",
                                      defs[i].name);
                    }
                }
                wv_model_free(l);
            } else {
                double t0 = bench_now();
                bench_copy_par(warm_dst);
                t_floor[r] = bench_now() - t0;
                volatile unsigned char sink = warm_dst[total_bytes / 3];
                (void)sink;
            }
        }
    }
    free(warm_dst);

    /* (c) mmap open, no data touched. */
    fprintf(stderr, "bench_io: mmap open...\n");
    for (int r = 0; r < runs; r++) {
        wv_model *l;
        double t0 = bench_now();
        int rc = wv_model_load(p_big, NULL, &l);
        t_open[r] = bench_now() - t0;
        if (rc != WV_OK)
            bench_die("wv_model_load %s: %s", p_big, wv_strerror(rc));
        if (wv_model_count(l) != n_defs)
            bench_die("mmap load found %zu tensors", wv_model_count(l));
        wv_model_free(l);
    }
    /* (c') mmap open + read one byte of every page: what a zero-copy user
     * pays to have all the data mapped in (page cache warm). */
    double t_touch[MAX_RUNS];
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (int r = 0; r < runs; r++) {
        wv_model *l;
        double t0 = bench_now();
        int rc = wv_model_load(p_big, NULL, &l);
        if (rc != WV_OK)
            bench_die("wv_model_load %s: %s", p_big, wv_strerror(rc));
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
        t_touch[r] = bench_now() - t0;
        volatile unsigned sink = sum;
        (void)sink;
        wv_model_free(l);
    }
    wv_model_free(m);
    bench_release_set();

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
    double ms_save = bench_median(t_save, runs);
    double ms_write = bench_median(t_write, runs);
    double ms_load = bench_median(t_load, runs);
    double ms_floor = bench_median(t_floor, runs);
    double ms_into = bench_median(t_into, runs);
    double ms_copy = bench_median(t_copy, runs);
    double ms_open = bench_median(t_open, runs);
    double ms_touch = bench_median(t_touch, runs);
    double r_save = ms_write / ms_save;
    double r_copy = ms_copy / ms_load;
    double rs_save = bench_median(rss_save, runs);
    double rs_conv = bench_median(rss_conv, runs);
    double rs_bf16 = bench_median(rss_bf16, runs);

    printf("| measure | weightvault | baseline | ratio | target | met |\n");
    printf("|---|---|---|---|---|---|\n");
    printf("| durable save (GB/s) vs write()+fsync() | %.3f GB/s | %.3f GB/s "
           "| %.2f | >= 0.9 | %s |\n",
           data / ms_save / GB, data / ms_write / GB, r_save,
           r_save >= 0.9 ? "yes" : "**no**");
    printf("| load to owned memory (WV_LOAD_PREAD), warm (GB/s) vs "
           "malloc+memcpy | %.3f GB/s | %.3f GB/s | %.2f | (reference) | - "
           "|\n",
           data / ms_load / GB, data / ms_copy / GB, r_copy);
    printf("| floor of any owned load: parallel memcpy into memory already "
           "faulted in (s) | - | %.3f s | - | (reference) | - |\n",
           ms_floor);
    if (torch_load > 0) {
        double r1 = torch_load / ms_load, r2 = torch_load / ms_open;
        printf("| load to owned memory (WV_LOAD_PREAD) vs torch.load (s) | "
               "%.3f s | %.3f s | %.1fx | >= 5x | %s |\n",
               ms_load, torch_load, r1, r1 >= 5 ? "yes" : "**no**");
        printf("| load into memory the caller already has (mmap open + "
               "wv_model_read_all) vs torch.load (s) | %.3f s | %.3f s | "
               "%.1fx | >= 5x | %s |\n",
               ms_into, torch_load, torch_load / ms_into,
               torch_load / ms_into >= 5 ? "yes" : "**no**");
        printf("| floor (above) vs torch.load: the best ratio any load "
               "could reach here | %.3f s | %.3f s | %.1fx | (reference) | - "
               "|\n",
               ms_floor, torch_load, torch_load / ms_floor);
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
    printf("- load: wv_model_load(WV_LOAD_PREAD) of a file in the page "
           "cache vs malloc() of a fresh buffer + memcpy() of the same bytes "
           "from the in-memory set (both fault in fresh pages); "
           "into caller memory: wv_model_load (mmap) + wv_model_read_all "
           "into one buffer of the caller's whose pages are already present "
           "(as a model's parameters are); floor: the same bytes copied by "
           "%d threads into that buffer (no load can beat it).\n",
           bench_ncpu());
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
    bench_print_runs("durable save", t_save, runs, 1, "s");
    bench_print_runs("write+fsync", t_write, runs, 1, "s");
    bench_print_runs("load pread", t_load, runs, 1, "s");
    bench_print_runs("load into caller memory (mmap + read_all)", t_into,
                     runs, 1, "s");
    bench_print_runs("floor (parallel memcpy, warm destination)", t_floor,
                     runs, 1, "s");
    bench_print_runs("malloc+memcpy", t_copy, runs, 1, "s");
    bench_print_runs("mmap open", t_open, runs, 1e3, "ms");
    bench_print_runs("mmap open + read every page", t_touch, runs, 1, "s");
    bench_print_runs("peak RSS save / data", rss_save, runs, 1, "x");
    bench_print_runs("peak RSS convert F32 / data", rss_conv, runs, 1, "x");
    bench_print_runs("peak RSS convert BF16 / data", rss_bf16, runs, 1, "x");
    bench_print_runs("wv convert F32 wall time", t_conv, runs, 1, "s");
    bench_print_runs("wv convert BF16 wall time", t_bf16, runs, 1, "s");
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
