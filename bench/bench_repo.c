/*
 * bench_repo.c -- the benchmark of the checkpoint repository (issue 4).
 *
 * On the deterministic F32 set of bench_io (bench_common.h; 1 GiB by
 * default) it measures, with the median of N runs:
 *
 *   (1) wv_repo_commit of the set into a fresh repository created with
 *       compression "none" vs write() of the same bytes from the same
 *       buffers to one file + fsync() + fsync() of the directory;
 *   (2) a second commit in which about 10 % of the bytes (whole tensors:
 *       the first layers, convolutions and small tensors) changed: its time
 *       against the first commit's, and the growth of the repository on
 *       disk (st_blocks of every file and directory, as du counts);
 *   (3) wv_repo_checkout of the whole set to memory (every chunk re-hashed)
 *       vs malloc() of a fresh buffer + memcpy() of the same bytes;
 *   (6) the time wv_repo_commit_async (WV_ASYNC_COPY, and WV_ASYNC_TAKE for
 *       reference) blocks the caller vs a synchronous wv_repo_commit of the
 *       set, each into a fresh repository (compression none);
 *   (4) compression on one core (the process is pinned to one CPU, so the
 *       commit's pack-writer thread shares it): commits into fresh
 *       repositories with compression none, zstd and zstd-bg of the F32 set,
 *       the same set rounded to BF16, and the real fixtures (F32 as stored
 *       and rounded to BF16): stored pack bytes, ratio raw/stored, MB/s of
 *       the whole commit (wall) and MB per CPU-second;
 *   (7) encrypted vs plain: commit of the set into a fresh repository
 *       created with --encrypt and one created without, compression none
 *       and zstd-bg, then wv_repo_checkout of it to memory (page cache
 *       warm), in the same run, alternating which goes first (issue 6's
 *       target: encrypted at most 15 % slower);
 *   (5) ten successive checkpoints of the C training example
 *       (examples/train_mlp.c, run as a child process; emulated in-process
 *       if the binary is missing or fails, which the output says): bytes of
 *       the repository vs the sum of ten separate safetensors files of the
 *       same checkpoints (written from wv_repo_checkout with
 *       wv_model_save).
 *
 * Fairness, as in bench_io (see bench/README.md): one untimed warm-up pair,
 * alternating order, sync() and a --settle pause before each timed write.
 *
 * Uses the public API (weightvault.h) only. Usage:
 *
 *   bench_repo --dir SCRATCH [--runs N] [--size-mib M] [--settle S]
 *              [--fixtures DIR] [--train PATH | --emulate-train]
 *              [--cpu C]
 *
 * bench/run.sh passes the right paths.
 */
#include "bench_common.h"

#include <ftw.h>
#include <math.h>
#include <sched.h>
#include <glob.h>
#include <sys/utsname.h>
#include <sys/wait.h>

/* ---- options ------------------------------------------------------------ */

static struct {
    const char *dir;
    const char *fixtures;
    const char *train;
    int runs;
    uint64_t size_mib;
    double settle;
    bool emulate_train;
    int cpu;
    bool crypt_only;
    bool commit_only;
} opt = {NULL, NULL, NULL, 5, 1024, 3.0, false, 0, false, false};

static const char usage[] =
    "usage: bench_repo --dir SCRATCH [--runs N] [--size-mib M] [--settle S]\n"
    "                  [--fixtures DIR] [--train PATH | --emulate-train]\n"
    "                  [--cpu C] [--crypt-only | --commit-only]\n";

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--dir") == 0 && has)
            opt.dir = argv[++i];
        else if (strcmp(a, "--fixtures") == 0 && has)
            opt.fixtures = argv[++i];
        else if (strcmp(a, "--train") == 0 && has)
            opt.train = argv[++i];
        else if (strcmp(a, "--runs") == 0 && has)
            opt.runs = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--size-mib") == 0 && has)
            opt.size_mib = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--settle") == 0 && has)
            opt.settle = atof(argv[++i]);
        else if (strcmp(a, "--cpu") == 0 && has)
            opt.cpu = (int)strtol(argv[++i], NULL, 10);
        else if (strcmp(a, "--emulate-train") == 0)
            opt.emulate_train = true;
        else if (strcmp(a, "--crypt-only") == 0)
            opt.crypt_only = true;
        else if (strcmp(a, "--commit-only") == 0)
            opt.commit_only = true;
        else {
            fputs(usage, stderr);
            exit(2);
        }
    }
    if (opt.dir == NULL) {
        fputs(usage, stderr);
        exit(2);
    }
    if (opt.runs < 1 || opt.runs > MAX_RUNS)
        bench_die("--runs must be between 1 and %d", MAX_RUNS);
}

/* ---- directories -------------------------------------------------------- */

static int rm_cb(const char *p, const struct stat *st, int type,
                 struct FTW *f)
{
    (void)st;
    (void)type;
    (void)f;
    if (remove(p) != 0 && errno != ENOENT)
        bench_die("remove %s: %s", p, strerror(errno));
    return 0;
}

static void rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) != 0)
        bench_die("removing %s failed", path);
}

static uint64_t g_apparent, g_blocks;

static int du_cb(const char *p, const struct stat *st, int type,
                 struct FTW *f)
{
    (void)p;
    (void)f;
    if (type == FTW_F)
        g_apparent += (uint64_t)st->st_size;
    g_blocks += (uint64_t)st->st_blocks * 512;
    return 0;
}

/* Bytes of the regular files under `path` (apparent) and bytes allocated
 * to files and directories (du). */
static void dir_usage(const char *path, uint64_t *apparent, uint64_t *du)
{
    g_apparent = g_blocks = 0;
    if (nftw(path, du_cb, 16, FTW_PHYS) != 0)
        bench_die("walking %s failed", path);
    if (apparent)
        *apparent = g_apparent;
    if (du)
        *du = g_blocks;
}

static uint64_t file_blocks(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        bench_die("stat %s: %s", path, strerror(errno));
    return (uint64_t)st.st_blocks * 512;
}

/* ---- repositories ------------------------------------------------------- */

/* Remove `path`, create a repository there with `compression`, open it. */
static wv_repo *repo_fresh(const char *path, const char *compression)
{
    char eb[WV_ERRBUF_SIZE] = "";
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.compression = compression;
    io.errbuf = eb;
    io.errbuf_size = sizeof eb;
    rmtree(path);
    int rc = wv_repo_init(path, &io);
    if (rc != WV_OK)
        bench_die("wv_repo_init %s: %s (%s)", path, eb, wv_strerror(rc));
    wv_repo *r;
    rc = wv_repo_open(path, eb, sizeof eb, &r);
    if (rc != WV_OK)
        bench_die("wv_repo_open %s: %s (%s)", path, eb, wv_strerror(rc));
    return r;
}

/* The same, encrypted (a passphrase; Argon2id runs once, at open). */
static wv_repo *repo_fresh_enc(const char *path, const char *compression)
{
    char eb[WV_ERRBUF_SIZE] = "";
    wv_init_opts io = WV_INIT_OPTS_INIT;
    wv_open_opts oo = WV_OPEN_OPTS_INIT;
    io.compression = compression;
    io.errbuf = eb;
    io.errbuf_size = sizeof eb;
    io.encrypt = 1;
    io.passphrase = "bench passphrase";
    rmtree(path);
    int rc = wv_repo_init(path, &io);
    if (rc != WV_OK)
        bench_die("wv_repo_init %s: %s (%s)", path, eb, wv_strerror(rc));
    wv_repo *r;
    oo.passphrase = io.passphrase;
    oo.errbuf = eb;
    oo.errbuf_size = sizeof eb;
    rc = wv_repo_open_ex(path, &oo, &r);
    if (rc != WV_OK)
        bench_die("wv_repo_open %s: %s (%s)", path, eb, wv_strerror(rc));
    return r;
}

static void commit_or_die(wv_repo *r, const wv_model *m,
                          char id[WV_ID_HEX])
{
    char tmp[WV_ID_HEX];
    int rc = wv_repo_commit(r, m, NULL, NULL, id ? id : tmp);
    if (rc != WV_OK)
        bench_die("wv_repo_commit: %s (%s)", wv_repo_errmsg(r),
                  wv_strerror(rc));
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- BF16 --------------------------------------------------------------- */

/* Round to nearest even; NaN stays NaN (quiet). */
static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* A copy of `src` with every F32 tensor rounded to BF16 (owned by the new
 * set); other tensors are borrowed from `src`, which must outlive it. */
static wv_model *to_bf16(const wv_model *src)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        bench_die("wv_model_new failed");
    for (size_t i = 0; i < wv_model_count(src); i++) {
        const wv_tensor *t = wv_model_tensor(src, i);
        wv_dtype dt = wv_tensor_dtype(t);
        size_t nb = wv_tensor_nbytes(t);
        int rc;
        if (dt == WV_F32) {
            size_t n = nb / 4;
            uint16_t *d = wv_malloc(n ? n * 2 : 2);
            if (d == NULL)
                bench_die("out of memory");
            const unsigned char *s = wv_tensor_data(t);
            for (size_t k = 0; k < n; k++) {
                float f;
                memcpy(&f, s + 4 * k, 4);
                d[k] = f32_to_bf16(f);
            }
            rc = wv_model_add(m, wv_tensor_name(t), WV_BF16,
                              wv_tensor_ndim(t), wv_tensor_shape(t), d,
                              n * 2, WV_DATA_TAKE);
        } else {
            rc = wv_model_add(m, wv_tensor_name(t), dt, wv_tensor_ndim(t),
                              wv_tensor_shape(t), wv_tensor_data(t), nb,
                              WV_DATA_BORROW);
        }
        if (rc != WV_OK)
            bench_die("wv_model_add %s: %s", wv_tensor_name(t),
                      wv_model_errmsg(m));
    }
    return m;
}

static uint64_t model_bytes(const wv_model *m)
{
    uint64_t s = 0;
    for (size_t i = 0; i < wv_model_count(m); i++)
        s += wv_tensor_nbytes(wv_model_tensor(m, i));
    return s;
}

/* ---- (4) compression ---------------------------------------------------- */

#define N_CODECS 3
static const char *const codecs[N_CODECS] = {"none", "zstd", "zstd-bg"};

struct comp {
    char label[160];
    uint64_t raw;
    uint64_t stored[N_CODECS]; /* bytes of packs/ */
    int runs;
    double wall[N_CODECS][MAX_RUNS], cpu[N_CODECS][MAX_RUNS];
};

#define MAX_COMP 32
static struct comp comps[MAX_COMP];
static size_t n_comps;

static void measure_compression(const char *label, const wv_model *m,
                                int runs, bool settle)
{
    if (n_comps == MAX_COMP)
        return;
    struct comp *c = &comps[n_comps++];
    char *p_repo = bench_path(opt.dir, "repo-comp");
    char *p_packs = bench_path(p_repo, "packs");
    snprintf(c->label, sizeof c->label, "%s", label);
    c->raw = model_bytes(m);
    c->runs = runs;
    fprintf(stderr, "bench_repo: compression of %s...\n", label);
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < N_CODECS; k++) {
            int ci = (k + r) % N_CODECS; /* rotate the order */
            wv_repo *rp = repo_fresh(p_repo, codecs[ci]);
            if (settle)
                bench_settle(opt.settle);
            double c0 = cpu_now(), t0 = bench_now();
            commit_or_die(rp, m, NULL);
            c->wall[ci][r] = bench_now() - t0;
            c->cpu[ci][r] = cpu_now() - c0;
            wv_repo_close(rp);
            if (r == 0)
                dir_usage(p_packs, &c->stored[ci], NULL);
            rmtree(p_repo);
        }
    }
    free(p_packs);
    free(p_repo);
}

static void print_compression(void)
{
    printf("| data | raw MB | codec | stored MB | ratio raw/stored | "
           "commit MB/s, 1 core | MB per CPU-s |\n");
    printf("|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < n_comps; i++) {
        const struct comp *c = &comps[i];
        for (int k = 0; k < N_CODECS; k++) {
            double w = bench_median(c->wall[k], c->runs);
            double u = bench_median(c->cpu[k], c->runs);
            printf("| %s | %.3f | %s | %.3f | %.3f | %.0f | %.0f |\n",
                   c->label, (double)c->raw / 1e6,
                   k == 2 ? "bg-zstd" : codecs[k],
                   (double)c->stored[k] / 1e6,
                   (double)c->raw / (double)c->stored[k],
                   (double)c->raw / 1e6 / w, (double)c->raw / 1e6 / u);
        }
    }
}

/* ---- (7) encrypted vs plain --------------------------------------------- */

struct crypt_row {
    const char *compression;
    double commit[2][MAX_RUNS], checkout[2][MAX_RUNS]; /* [plain, enc] */
    double commit_cpu[2][MAX_RUNS], checkout_cpu[2][MAX_RUNS];
};

static void checkout_or_die(wv_repo *r, const char *id)
{
    wv_model *l;
    int rc = wv_repo_checkout(r, id, NULL, &l);
    if (rc != WV_OK)
        bench_die("wv_repo_checkout: %s", wv_repo_errmsg(r));
    wv_model_free(l);
}

static void measure_crypt(const wv_model *m, int runs,
                          struct crypt_row *row)
{
    char *p[2] = {bench_path(opt.dir, "repo-plain"),
                  bench_path(opt.dir, "repo-enc")};
    char id[2][WV_ID_HEX];
    fprintf(stderr, "bench_repo: encrypted vs plain, %s...\n",
            row->compression);
    for (int r = -1; r < runs; r++) {
        wv_repo *rp[2];
        for (int k = 0; k < 2; k++) {
            int e = (k + (r < 0 ? 0 : r)) % 2; /* alternate the order */
            rp[e] = e ? repo_fresh_enc(p[e], row->compression)
                      : repo_fresh(p[e], row->compression);
            bench_settle(opt.settle);
            double c0 = cpu_now(), t0 = bench_now();
            commit_or_die(rp[e], m, id[e]);
            if (r >= 0) {
                row->commit[e][r] = bench_now() - t0;
                row->commit_cpu[e][r] = cpu_now() - c0;
            }
        }
        for (int k = 0; k < 2; k++) {
            int e = (k + (r < 0 ? 0 : r)) % 2;
            if (r < 0) { /* untimed: fill the page cache */
                checkout_or_die(rp[e], id[e]);
                continue;
            }
            double c0 = cpu_now(), t0 = bench_now();
            checkout_or_die(rp[e], id[e]);
            row->checkout[e][r] = bench_now() - t0;
            row->checkout_cpu[e][r] = cpu_now() - c0;
        }
        if (r < 0) { /* and check once that both give the same bytes */
            wv_model *a, *b;
            if (wv_repo_checkout(rp[0], id[0], NULL, &a) != WV_OK ||
                wv_repo_checkout(rp[1], id[1], NULL, &b) != WV_OK)
                bench_die("checkout failed");
            for (size_t i = 0; i < wv_model_count(a); i++) {
                const wv_tensor *x = wv_model_tensor(a, i);
                const wv_tensor *y = wv_model_find(b, wv_tensor_name(x));
                if (y == NULL || wv_tensor_nbytes(x) != wv_tensor_nbytes(y) ||
                    memcmp(wv_tensor_data(x), wv_tensor_data(y),
                           wv_tensor_nbytes(x)) != 0)
                    bench_die("encrypted checkout differs from plain");
            }
            wv_model_free(a);
            wv_model_free(b);
        }
        wv_repo_close(rp[0]);
        wv_repo_close(rp[1]);
    }
    rmtree(p[0]);
    rmtree(p[1]);
    free(p[0]);
    free(p[1]);
}

static void print_crypt(const struct crypt_row *rows, int n, int runs,
                        double data)
{
    for (int i = 0; i < n; i++) {
        const struct crypt_row *c = &rows[i];
        for (int w = 0; w < 2; w++) {
            double tp = bench_median(w ? c->checkout[0] : c->commit[0], runs);
            double te = bench_median(w ? c->checkout[1] : c->commit[1], runs);
            double up = bench_median(w ? c->checkout_cpu[0] : c->commit_cpu[0],
                                     runs);
            double ue = bench_median(w ? c->checkout_cpu[1] : c->commit_cpu[1],
                                     runs);
            double slower = 100.0 * (te / tp - 1.0);
            printf("| %s, compression %s: encrypted vs plain (GB/s; CPU s) "
                   "| %.3f GB/s; %.2f s | %.3f GB/s; %.2f s | %+.1f %%; CPU "
                   "%+.1f %% | <= +15 %% | %s |\n",
                   w ? "checkout to memory" : "commit of new data",
                   c->compression, data / te / 1e9, ue, data / tp / 1e9, up,
                   slower, 100.0 * (ue / up - 1.0),
                   slower <= 15.0 ? "yes" : "**no**");
        }
    }
}

static void print_crypt_runs(const struct crypt_row *rows, int n, int runs)
{
    for (int i = 0; i < n; i++)
        for (int e = 0; e < 2; e++) {
            char what[200];
            snprintf(what, sizeof what, "commit, %s, %s",
                     rows[i].compression, e ? "encrypted" : "plain");
            bench_print_runs(what, rows[i].commit[e], runs, 1, "s");
            snprintf(what, sizeof what, "checkout, %s, %s",
                     rows[i].compression, e ? "encrypted" : "plain");
            bench_print_runs(what, rows[i].checkout[e], runs, 1, "s");
            snprintf(what, sizeof what, "commit CPU, %s, %s",
                     rows[i].compression, e ? "encrypted" : "plain");
            bench_print_runs(what, rows[i].commit_cpu[e], runs, 1, "s");
            snprintf(what, sizeof what, "checkout CPU, %s, %s",
                     rows[i].compression, e ? "encrypted" : "plain");
            bench_print_runs(what, rows[i].checkout_cpu[e], runs, 1, "s");
        }
}

/* ---- (5) ten checkpoints of the training example ------------------------ */

struct ckpt_result {
    char what[256];
    int n;                  /* checkpoints found on main               */
    uint64_t raw;           /* tensor bytes of all of them             */
    uint64_t repo, repo_du; /* repository: file bytes, du              */
    uint64_t st, st_du;     /* the safetensors files: bytes, du        */
};

/* Run the example as a child (stdout to /dev/null). 0 on success. */
static int run_train(const char *repo, int hidden, int steps, int every)
{
    char s_steps[32], s_every[32], s_hidden[32];
    snprintf(s_steps, sizeof s_steps, "%d", steps);
    snprintf(s_every, sizeof s_every, "%d", every);
    snprintf(s_hidden, sizeof s_hidden, "%d", hidden);
    char *av[] = {(char *)opt.train, (char *)repo, "--steps", s_steps,
                  "--every", s_every, "--hidden", s_hidden, "--quiet",
                  NULL};
    pid_t pid = fork();
    if (pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 1);
        execv(av[0], av);
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            bench_die("waitpid: %s", strerror(errno));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* What train_mlp checkpoints, emulated: a 16-H-1 MLP's weights and Adam
 * moments (12 F32 tensors), the step (I64) and a PRNG state (U64); between
 * two checkpoints `every` Adam steps with random gradients change every
 * element a little, as training does. Committed to a repository with the
 * default options, as the example does. */
static void emulate_train(const char *repo, int hidden, int steps, int every)
{
    static const char *names[4] = {"fc1.weight", "fc1.bias", "fc2.weight",
                                   "fc2.bias"};
    size_t n[4] = {(size_t)hidden * 16, (size_t)hidden, (size_t)hidden, 1};
    int ndim[4] = {2, 1, 2, 1};
    uint64_t shape[4][2] = {{(uint64_t)hidden, 16},
                            {(uint64_t)hidden, 0},
                            {1, (uint64_t)hidden},
                            {1, 0}};
    float *w[4], *mo[4], *v[4];
    uint64_t x = 12345;
    for (int i = 0; i < 4; i++) {
        w[i] = malloc(n[i] * 4);
        mo[i] = calloc(n[i], 4);
        v[i] = calloc(n[i], 4);
        if (!w[i] || !mo[i] || !v[i])
            bench_die("out of memory");
        bench_fill(w[i], n[i], (uint64_t)i + 100);
    }
    char eb[WV_ERRBUF_SIZE] = "";
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.errbuf = eb;
    io.errbuf_size = sizeof eb;
    rmtree(repo);
    if (wv_repo_init(repo, &io) != WV_OK)
        bench_die("wv_repo_init %s: %s", repo, eb);
    wv_repo *r;
    if (wv_repo_open(repo, eb, sizeof eb, &r) != WV_OK)
        bench_die("wv_repo_open %s: %s", repo, eb);
    for (int64_t step = 1; step <= steps; step++) {
        for (int i = 0; i < 4; i++)
            for (size_t k = 0; k < n[i]; k++) {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                float g = (float)((x * 0x2545F4914F6CDD1Dull) >> 40) *
                              (2.0f / 16777216.0f) -
                          1.0f;
                g *= 0.01f;
                mo[i][k] = 0.9f * mo[i][k] + 0.1f * g;
                v[i][k] = 0.999f * v[i][k] + 0.001f * g * g;
                w[i][k] -= 1e-3f * mo[i][k] / (sqrtf(v[i][k]) + 1e-8f);
            }
        if (step % every != 0)
            continue;
        wv_model *m;
        char name[96], val[32];
        if (wv_model_new(&m) != WV_OK)
            bench_die("wv_model_new failed");
        for (int i = 0; i < 4; i++) {
            const float *src[3] = {w[i], mo[i], v[i]};
            static const char *fmt[3] = {"model.%s", "optim.%s.exp_avg",
                                         "optim.%s.exp_avg_sq"};
            for (int j = 0; j < 3; j++) {
                snprintf(name, sizeof name, fmt[j], names[i]);
                if (wv_model_add(m, name, WV_F32, ndim[i], shape[i], src[j],
                                 n[i] * 4, WV_DATA_BORROW) != WV_OK)
                    bench_die("wv_model_add: %s", wv_model_errmsg(m));
            }
        }
        uint64_t one = 1;
        if (wv_model_add(m, "optim.step", WV_I64, 0, NULL, &step,
                         sizeof step, WV_DATA_BORROW) != WV_OK ||
            wv_model_add(m, "rng.state", WV_U64, 1, &one, &x, sizeof x,
                         WV_DATA_BORROW) != WV_OK)
            bench_die("wv_model_add: %s", wv_model_errmsg(m));
        snprintf(val, sizeof val, "%lld", (long long)step);
        wv_model_set_meta(m, "step", val);
        commit_or_die(r, m, NULL);
        wv_model_free(m);
    }
    wv_repo_close(r);
    for (int i = 0; i < 4; i++) {
        free(w[i]);
        free(mo[i]);
        free(v[i]);
    }
}

/* Sizes of the repository and of one safetensors file per checkpoint of
 * its main branch. */
static void measure_ckpts(const char *repo, struct ckpt_result *res)
{
    char eb[WV_ERRBUF_SIZE] = "";
    wv_repo *r;
    if (wv_repo_open(repo, eb, sizeof eb, &r) != WV_OK)
        bench_die("wv_repo_open %s: %s", repo, eb);
    char ids[64][WV_ID_HEX];
    int n = 0;
    char cur[WV_ID_HEX];
    if (wv_repo_resolve(r, "main", cur) != WV_OK)
        bench_die("resolve main: %s", wv_repo_errmsg(r));
    while (cur[0] && n < 64) {
        wv_checkpoint *c;
        if (wv_repo_stat(r, cur, &c) != WV_OK)
            break;
        memcpy(ids[n++], cur, WV_ID_HEX);
        snprintf(cur, sizeof cur, "%s", wv_checkpoint_parent(c));
        wv_checkpoint_free(c);
    }
    res->n = n;
    res->raw = res->st = res->st_du = 0;
    char *p_st = bench_path(opt.dir, "ckpt.safetensors");
    for (int i = 0; i < n; i++) {
        wv_model *m;
        int rc = wv_repo_checkout(r, ids[i], NULL, &m);
        if (rc != WV_OK)
            bench_die("checkout %.12s: %s", ids[i], wv_repo_errmsg(r));
        res->raw += model_bytes(m);
        rc = wv_model_save(m, p_st, NULL);
        if (rc != WV_OK)
            bench_die("wv_model_save %s: %s", p_st, wv_model_errmsg(m));
        res->st += bench_file_size(p_st);
        res->st_du += file_blocks(p_st);
        unlink(p_st);
        wv_model_free(m);
    }
    free(p_st);
    wv_repo_close(r);
    dir_usage(repo, &res->repo, &res->repo_du);
}

/* ---- main --------------------------------------------------------------- */

/* The two in-memory sets and the changed tensors of the second. */
static void release_sets(wv_model *m, wv_model *m2, float **bufs2)
{
    wv_model_free(m2);
    wv_model_free(m);
    for (size_t i = 0; i < n_defs; i++)
        if (bufs2[i] != bufs[i])
            free(bufs2[i]);
    bench_release_set();
}

int main(int argc, char **argv)
{
    bench_prog = "bench_repo";
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int runs = opt.runs;

    /* The example defaults to the binary next to this one. */
    char train_default[4096];
    if (opt.train == NULL) {
        ssize_t n = readlink("/proc/self/exe", train_default,
                             sizeof train_default - 32);
        if (n < 0)
            bench_die("readlink /proc/self/exe: %s", strerror(errno));
        train_default[n] = '\0';
        char *slash = strrchr(train_default, '/');
        char *base = slash ? slash + 1 : train_default;
        snprintf(base, sizeof train_default - (size_t)(base - train_default),
                 "example_train_mlp");
        opt.train = train_default;
    }
    if (mkdir(opt.dir, 0777) != 0 && errno != EEXIST)
        bench_die("mkdir %s: %s", opt.dir, strerror(errno));

    bench_make_defs(opt.size_mib << 20);
    const double data = (double)total_bytes;
    const double GB = 1e9;
    char *p_repo = bench_path(opt.dir, "repo-a");
    char *p_base = bench_path(opt.dir, "baseline.bin");

    struct utsname un;
    uname(&un);
    char host[256];
    bench_cpu_name(host, sizeof host);
    printf("## weightvault repository benchmark\n\n");
    printf("- machine: %ld CPUs online (%s), %s %s %s\n",
           sysconf(_SC_NPROCESSORS_ONLN), host, un.sysname, un.release,
           un.machine);
    printf("- weightvault %s, scratch dir %s\n", wv_version_string(),
           opt.dir);
    printf("- data: %zu F32 tensors, %llu bytes (%.3f GiB); runs: %d "
           "(medians shown)\n\n",
           n_defs, (unsigned long long)total_bytes, data / (1 << 30), runs);

    fprintf(stderr, "bench_repo: generating %.2f GiB...\n", data / (1 << 30));
    double tg = bench_now();
    bench_generate();
    tg = bench_now() - tg;
    wv_model *m = bench_build_model();

    /* The second checkpoint: whole tensors change, about 10 % of the
     * bytes, taken in set order while they fit (the two embeddings are
     * too big); every element of each moves a little. */
    float *bufs2[MAX_TENSORS];
    uint64_t changed = 0;
    size_t n_changed = 0;
    for (size_t i = 0; i < n_defs; i++) {
        uint64_t nb = numel_of(&defs[i]) * 4;
        bufs2[i] = bufs[i];
        if (changed + nb > total_bytes / 10)
            continue;
        float *c = malloc(nb ? nb : 4);
        if (c == NULL)
            bench_die("out of memory");
        for (uint64_t k = 0; k < nb / 4; k++)
            c[k] = bufs[i][k] * 0.999f + 1e-4f;
        bufs2[i] = c;
        changed += nb;
        n_changed++;
    }
    wv_model *m2 = bench_build_model_from(bufs2);
    double changed_pct = 100.0 * (double)changed / data;

    /* (7) Encrypted vs plain, commit and checkout, same run. */
    static struct crypt_row crows[2];
    crows[0].compression = "none";
    crows[1].compression = "zstd-bg";
    for (int i = 0; i < 2; i++)
        measure_crypt(m, runs, &crows[i]);
    if (opt.crypt_only) {
        printf("| measure | weightvault encrypted | plain | slower by (wall; "
               "CPU) | target | met |\n");
        printf("|---|---|---|---|---|---|\n");
        print_crypt(crows, 2, runs, data);
        printf("\n- encrypted: wv init --encrypt (XChaCha20-Poly1305 per "
               "chunk, keyed HMAC-SHA256 ids, sealed manifest, index, "
               "trailers and refs); plain: the same without. Fresh "
               "repository per commit, sync() and a %.1f s pause before "
               "each; checkouts with the packs in the page cache. Medians "
               "of %d runs. CPU s: the process's CPU time (all threads), "
               "which other load on the machine disturbs less than wall "
               "time.\n\nPer-run values:\n\n",
               opt.settle, runs);
        print_crypt_runs(crows, 2, runs);
        release_sets(m, m2, bufs2);
        free(p_base);
        free(p_repo);
        return 0;
    }

    /* (1) + (2): commit into a fresh repository vs write+fsync; second
     * commit. One untimed pair first, then alternate which goes first. */
    fprintf(stderr, "bench_repo: commit vs write+fsync, second commit...\n");
    double t_c1[MAX_RUNS], t_c2[MAX_RUNS], t_w[MAX_RUNS], grow[MAX_RUNS];
    uint64_t du1 = 0, du2 = 0, app1 = 0, app2 = 0;
    char id1[WV_ID_HEX] = "", id2[WV_ID_HEX] = "";
    for (int r = -1; r < runs; r++) {
        for (int k = 0; k < 2; k++) {
            bool ours = (k == 0) == (r % 2 == 0);
            if (ours) {
                wv_repo *rp = repo_fresh(p_repo, "none");
                bench_settle(opt.settle);
                double t0 = bench_now();
                commit_or_die(rp, m, id1);
                double t1 = bench_now() - t0;
                dir_usage(p_repo, &app1, &du1);
                bench_settle(opt.settle);
                t0 = bench_now();
                commit_or_die(rp, m2, id2);
                double t2 = bench_now() - t0;
                dir_usage(p_repo, &app2, &du2);
                wv_repo_close(rp);
                if (r >= 0) {
                    t_c1[r] = t1;
                    t_c2[r] = t2;
                    grow[r] = 100.0 * ((double)du2 - (double)du1) /
                              (double)du1;
                }
            } else {
                unlink(p_base);
                bench_settle(opt.settle);
                double t0 = bench_now();
                bench_baseline_write(p_base, opt.dir, 0);
                double t = bench_now() - t0;
                if (bench_file_size(p_base) != total_bytes)
                    bench_die("%s has the wrong size", p_base);
                unlink(p_base);
                if (r >= 0)
                    t_w[r] = t;
            }
        }
    }

    if (opt.commit_only) { /* rows (1) and (2) alone, for work on them */
        double c1 = bench_median(t_c1, runs), c2 = bench_median(t_c2, runs);
        double w = bench_median(t_w, runs);
        printf("| measure | weightvault | baseline | ratio | target |\n");
        printf("|---|---|---|---|---|\n");
        printf("| commit of new data, none (GB/s) vs write()+fsync() | "
               "%.3f | %.3f | %.2f | >= 0.8 |\n",
               data / c1 / GB, data / w / GB, w / c1);
        printf("| second commit, %.1f %% changed, vs first commit | %.3f s "
               "| %.3f s | %.2fx | <= 0.25x |\n",
               changed_pct, c2, c1, c2 / c1);
        printf("| growth after the second commit | +%.1f %% | - | - | "
               "about 10 %% |\n\nPer-run values:\n\n",
               bench_median(grow, runs));
        bench_print_runs("first commit", t_c1, runs, 1, "s");
        bench_print_runs("second commit", t_c2, runs, 1, "s");
        bench_print_runs("write+fsync", t_w, runs, 1, "s");
        release_sets(m, m2, bufs2);
        free(p_base);
        free(p_repo);
        return 0;
    }

    /* (3) Checkout of the first checkpoint (the repository of the last
     * run, in the page cache) vs malloc + memcpy. */
    fprintf(stderr, "bench_repo: checkout vs memcpy...\n");
    double t_co[MAX_RUNS], t_cp[MAX_RUNS];
    {
        char eb[WV_ERRBUF_SIZE] = "";
        wv_repo *rp;
        if (wv_repo_open(p_repo, eb, sizeof eb, &rp) != WV_OK)
            bench_die("wv_repo_open %s: %s", p_repo, eb);
        for (int r = -1; r < runs; r++) {
            for (int k = 0; k < 2; k++) {
                bool ours = (k == 0) == (r % 2 == 0);
                if (ours) {
                    wv_model *l;
                    double t0 = bench_now();
                    int rc = wv_repo_checkout(rp, id1, NULL, &l);
                    double t = bench_now() - t0;
                    if (rc != WV_OK)
                        bench_die("wv_repo_checkout: %s",
                                  wv_repo_errmsg(rp));
                    if (r == -1) { /* check once: the right bytes */
                        for (size_t i = 0; i < n_defs; i++) {
                            const wv_tensor *t1 =
                                wv_model_find(l, defs[i].name);
                            size_t nb = numel_of(&defs[i]) * 4;
                            if (t1 == NULL || wv_tensor_nbytes(t1) != nb ||
                                memcmp(wv_tensor_data(t1), bufs[i], nb) != 0)
                                bench_die("checked out tensor %s differs",
                                          defs[i].name);
                        }
                    }
                    wv_model_free(l);
                    if (r >= 0)
                        t_co[r] = t;
                } else {
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
                    double t = bench_now() - t0;
                    volatile unsigned char sink = dst[total_bytes / 2];
                    (void)sink;
                    free(dst);
                    if (r >= 0)
                        t_cp[r] = t;
                }
            }
        }
        wv_repo_close(rp);
    }
    rmtree(p_repo);

    /* (6) Blocking time of an asynchronous commit vs a synchronous one
     * (compression none). The synchronous commit and the TAKE leg go into
     * a fresh repository each run; the COPY leg commits through one
     * repository handle kept open across the runs, as a training loop
     * does, so after the untimed first run its staging buffer is the one
     * the library keeps between commits (steady state). */
    bool have_async = false;
    double t_sync[MAX_RUNS], t_acopy[MAX_RUNS], t_acopy_all[MAX_RUNS],
        t_atake[MAX_RUNS], t_atake_all[MAX_RUNS];
#ifdef WV_ASYNC_COPY
    have_async = true;
    fprintf(stderr, "bench_repo: asynchronous vs synchronous commit...\n");
    char *p_repo_copy = bench_path(opt.dir, "repo-a-copy");
    wv_repo *rp_copy = repo_fresh(p_repo_copy, "none");
    for (int r = -1; r < runs; r++) {
        for (int k = 0; k < 3; k++) {
            int leg = (k + (r < 0 ? 0 : r)) % 3; /* 0 sync, 1 copy, 2 take */
            wv_repo *rp = leg == 1 ? rp_copy : repo_fresh(p_repo, "none");
            wv_model *mt = leg == 2 ? bench_build_model() : NULL;
            bench_settle(opt.settle);
            double t0 = bench_now(), tb, ta;
            if (leg == 0) {
                commit_or_die(rp, m, NULL);
                tb = ta = bench_now() - t0;
            } else {
                wv_commit_handle *h;
                int rc = wv_repo_commit_async(
                    rp, leg == 1 ? m : mt, NULL, NULL,
                    leg == 1 ? WV_ASYNC_COPY : WV_ASYNC_TAKE, &h);
                tb = bench_now() - t0;
                if (rc != WV_OK)
                    bench_die("wv_repo_commit_async: %s",
                              wv_repo_errmsg(rp));
                rc = wv_commit_wait(h, NULL);
                ta = bench_now() - t0;
                if (rc != WV_OK)
                    bench_die("asynchronous commit: %s", wv_commit_errmsg(h));
                wv_commit_free(h);
            }
            if (rp != rp_copy)
                wv_repo_close(rp);
            if (r >= 0) {
                if (leg == 0)
                    t_sync[r] = tb;
                else if (leg == 1) {
                    t_acopy[r] = tb;
                    t_acopy_all[r] = ta;
                } else {
                    t_atake[r] = tb;
                    t_atake_all[r] = ta;
                }
            }
        }
    }
    wv_repo_close(rp_copy);
    rmtree(p_repo_copy);
    free(p_repo_copy);
    rmtree(p_repo);
#else
    (void)t_sync;
    (void)t_acopy;
    (void)t_acopy_all;
    (void)t_atake;
    (void)t_atake_all;
#endif

    /* (4) Compression on one core. */
    cpu_set_t old_mask, one;
    bool pinned = false;
    if (sched_getaffinity(0, sizeof old_mask, &old_mask) == 0) {
        CPU_ZERO(&one);
        CPU_SET(opt.cpu, &one);
        pinned = sched_setaffinity(0, sizeof one, &one) == 0;
    }
    measure_compression("F32 set", m, runs, true);
    {
        wv_model *mb = to_bf16(m);
        measure_compression("same set, BF16", mb, runs, true);
        wv_model_free(mb);
    }
    int n_fix = 0;
    if (opt.fixtures != NULL) {
        static const char *pats[] = {"safetensors/*.safetensors",
                                     "gguf/*.gguf"};
        for (size_t p = 0; p < sizeof pats / sizeof *pats; p++) {
            char *pat = bench_path(opt.fixtures, pats[p]);
            glob_t g;
            if (glob(pat, 0, NULL, &g) == 0) {
                for (size_t i = 0; i < g.gl_pathc; i++) {
                    wv_model *f;
                    if (wv_model_load(g.gl_pathv[i], NULL, &f) != WV_OK) {
                        fprintf(stderr, "bench_repo: cannot load %s\n",
                                g.gl_pathv[i]);
                        continue;
                    }
                    const char *base = strrchr(g.gl_pathv[i], '/');
                    base = base ? base + 1 : g.gl_pathv[i];
                    char label[160];
                    snprintf(label, sizeof label, "%s", base);
                    measure_compression(label, f, runs, false);
                    wv_model *fb = to_bf16(f);
                    snprintf(label, sizeof label, "%s, BF16", base);
                    measure_compression(label, fb, runs, false);
                    wv_model_free(fb);
                    wv_model_free(f);
                    n_fix++;
                }
                globfree(&g);
            }
            free(pat);
        }
    }
    if (pinned)
        sched_setaffinity(0, sizeof old_mask, &old_mask);

    release_sets(m, m2, bufs2);

    /* (5) Ten checkpoints of the training example. */
    fprintf(stderr, "bench_repo: ten checkpoints of the training "
                    "example...\n");
    static const struct {
        int hidden, steps, every;
    } cfgs[2] = {{64, 1000, 100}, {4096, 100, 10}};
    struct ckpt_result ck[2];
    char *p_train = bench_path(opt.dir, "repo-train");
    bool train_ok = !opt.emulate_train && access(opt.train, X_OK) == 0;
    for (int i = 0; i < 2; i++) {
        rmtree(p_train);
        bool ran = train_ok && run_train(p_train, cfgs[i].hidden,
                                         cfgs[i].steps, cfgs[i].every) == 0;
        if (ran)
            snprintf(ck[i].what, sizeof ck[i].what,
                     "train_mlp --hidden %d --steps %d --every %d "
                     "(examples/train_mlp.c, run)",
                     cfgs[i].hidden, cfgs[i].steps, cfgs[i].every);
        else {
            emulate_train(p_train, cfgs[i].hidden, cfgs[i].steps,
                          cfgs[i].every);
            snprintf(ck[i].what, sizeof ck[i].what,
                     "EMULATED 16-%d-1 MLP + Adam, %d steps, every %d%s",
                     cfgs[i].hidden, cfgs[i].steps, cfgs[i].every,
                     train_ok ? " (the example failed)"
                              : " (no example binary)");
        }
        measure_ckpts(p_train, &ck[i]);
        rmtree(p_train);
    }
    free(p_train);

    /* ---- the tables ---- */
    double mc1 = bench_median(t_c1, runs), mc2 = bench_median(t_c2, runs);
    double mw = bench_median(t_w, runs), mg = bench_median(grow, runs);
    double mco = bench_median(t_co, runs), mcp = bench_median(t_cp, runs);
    double r1 = mw / mc1, r2 = mc2 / mc1;
    const struct comp *cf = &comps[0], *cb = &comps[1];

    printf("| measure | weightvault | baseline | ratio | target | met |\n");
    printf("|---|---|---|---|---|---|\n");
    printf("| commit of new data, compression none (GB/s) vs "
           "write()+fsync() | %.3f GB/s | %.3f GB/s | %.2f | >= 0.8 | %s |\n",
           data / mc1 / GB, data / mw / GB, r1, r1 >= 0.8 ? "yes" : "**no**");
    printf("| second commit, %.1f %% of the bytes changed: time vs first "
           "commit | %.3f s | %.3f s | %.2fx | <= 0.25x | %s |\n",
           changed_pct, mc2, mc1, r2, r2 <= 0.25 ? "yes" : "**no**");
    printf("| repository growth on disk (du) after the second commit | "
           "+%.1f %% | %.1f %% of the bytes changed | - | about 10 %% | "
           "%s |\n",
           mg, changed_pct,
           fabs(mg - changed_pct) <= 2.0 ? "yes" : "**no**");
    printf("| checkout to memory (GB/s) vs malloc+memcpy | %.3f GB/s | "
           "%.3f GB/s | %.2f | (reference) | - |\n",
           data / mco / GB, data / mcp / GB, mcp / mco);

    for (int i = 0; i < 2; i++) {
        const struct comp *c = i == 0 ? cf : cb;
        double rz = (double)c->raw / (double)c->stored[1];
        double rb = (double)c->raw / (double)c->stored[2];
        double wz = (double)c->raw / 1e6 / bench_median(c->wall[1], c->runs);
        double wb = (double)c->raw / 1e6 / bench_median(c->wall[2], c->runs);
        printf("| compression, %s: bg-zstd vs zstd (ratio raw/stored; "
               "commit MB/s on 1 core) | %.3f; %.0f MB/s | %.3f; %.0f MB/s "
               "| %.2f | (reference) | - |\n",
               c->label, rb, wb, rz, wz, rb / rz);
    }
    for (int i = 0; i < 2; i++)
        printf("| 10 checkpoints of the training example (hidden %d): "
               "repository bytes vs 10 safetensors files | %.3f MB | "
               "%.3f MB | %.2f | (reference) | - |\n",
               cfgs[i].hidden, (double)ck[i].repo / 1e6,
               (double)ck[i].st / 1e6,
               (double)ck[i].st / (double)ck[i].repo);
    if (have_async) {
        double ms = bench_median(t_sync, runs);
        double mac = bench_median(t_acopy, runs);
        double mat = bench_median(t_atake, runs);
        printf("| asynchronous commit (WV_ASYNC_COPY): blocking time vs "
               "synchronous commit | %.3f s | %.3f s | %.2fx | <= 0.15x | "
               "%s |\n",
               mac, ms, mac / ms, mac / ms <= 0.15 ? "yes" : "**no**");
        printf("| asynchronous commit (WV_ASYNC_TAKE): blocking time vs "
               "synchronous commit | %.4f s | %.3f s | %.4fx | <= 0.15x | "
               "%s |\n",
               mat, ms, mat / ms, mat / ms <= 0.15 ? "yes" : "**no**");
    } else {
        printf("| asynchronous commit: blocking time vs synchronous commit "
               "| n/a | n/a | n/a | <= 0.15x | n/a (wv_repo_commit_async is "
               "not in weightvault.h) |\n");
    }

    printf("\nEncrypted vs plain repository (same run; 'slower by' = "
           "encrypted time / plain time - 1; both on every core):\n\n");
    printf("| measure | weightvault encrypted | plain | slower by (wall; CPU) "
           "| target | met |\n");
    printf("|---|---|---|---|---|---|\n");
    print_crypt(crows, 2, runs, data);

    printf("\nCompression (one core; fresh repository per commit; stored = "
           "bytes of packs/, chunk trailers included):\n\n");
    print_compression();

    printf("\nTen successive checkpoints of the training example:\n\n");
    printf("| run | checkpoints | tensor bytes | repository bytes (du) | "
           "10 safetensors files (du) | safetensors / repository |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int i = 0; i < 2; i++)
        printf("| %s | %d | %llu | %llu (%llu) | %llu (%llu) | %.2f |\n",
               ck[i].what, ck[i].n, (unsigned long long)ck[i].raw,
               (unsigned long long)ck[i].repo,
               (unsigned long long)ck[i].repo_du,
               (unsigned long long)ck[i].st,
               (unsigned long long)ck[i].st_du,
               (double)ck[i].st / (double)ck[i].repo);

    printf("\nNotes:\n");
    printf("- GB = 1e9 bytes, MB = 1e6 bytes; data = tensor bytes only "
           "(%llu).\n",
           (unsigned long long)total_bytes);
    printf("- ratio: baseline time / weightvault time (higher is better for "
           "us), except the rows marked 'x', which are weightvault's time "
           "as a fraction of the baseline's (lower is better), the "
           "compression rows (bg-zstd ratio / zstd ratio) and the "
           "checkpoint rows (safetensors bytes / repository bytes).\n");
    printf("- each pair ran back to back, alternating which went first, "
           "after one untimed pair (or triple); sync() and a %.1f s pause "
           "(--settle) before each timed commit or write.\n",
           opt.settle);
    printf("- commit: a repository created with compression none (chunks "
           "4 MiB, packs 32 MiB), already open; wv_repo_commit hashes every "
           "chunk (SHA-256), writes packs, index, manifest and ref and "
           "syncs them. Baseline: open+write() of each tensor buffer into "
           "one file + fsync + fsync dir.\n");
    printf("- second commit: %zu of %zu tensors changed (%.1f %% of the "
           "bytes; every element of each moved a little); the other "
           "chunks are compared byte for byte with the parent's (its packs "
           "in the page cache), not hashed. Growth: du of the "
           "repository directory (files and directories, st_blocks) after "
           "the second commit vs after the first (last run: %llu -> %llu "
           "bytes; files %llu -> %llu).\n",
           n_changed, n_defs, changed_pct, (unsigned long long)du1,
           (unsigned long long)du2, (unsigned long long)app1,
           (unsigned long long)app2);
    printf("- checkout: wv_repo_checkout of the first checkpoint, packs in "
           "the page cache, every chunk verified against its SHA-256, into "
           "owned memory; baseline: malloc() of a fresh buffer + memcpy() "
           "of the same bytes.\n");
    if (have_async)
        printf("- async: wv_repo_commit_async into a fresh repository "
               "(compression none), timed until it returns; then "
               "wv_commit_wait. Whole commit (until wait returns), median: "
               "COPY %.3f s, TAKE %.3f s; synchronous %.3f s.\n",
               bench_median(t_acopy_all, runs),
               bench_median(t_atake_all, runs), bench_median(t_sync, runs));
    printf("- compression: process pinned to CPU %d (%s): one core for "
           "hashing, compression and the pack writer; commit MB/s = raw "
           "bytes / wall time of the whole commit (includes SHA-256 and the "
           "syncs; the 'none' rows show that floor); MB per CPU-s = raw "
           "bytes / process CPU time. BF16: every F32 tensor rounded to "
           "nearest even. %d fixture file(s)%s; for files this small the "
           "per-commit fixed costs (syncs of pack, index, manifest, ref) "
           "dominate the MB/s.\n",
           opt.cpu, pinned ? "pinned" : "pinning FAILED", n_fix,
           opt.fixtures ? "" : " (no --fixtures)");
    printf("- checkpoints: the example's repository (default options: "
           "zstd-bg) after 10 commits of the main branch; bytes = sizes of "
           "all its files; the safetensors files are the same 10 "
           "checkpoints checked out and written with wv_model_save.\n");
    printf("- generating the set took %.2f s.\n", tg);
    printf("\nPer-run values:\n\n");
    bench_print_runs("first commit", t_c1, runs, 1, "s");
    bench_print_runs("write+fsync", t_w, runs, 1, "s");
    bench_print_runs("second commit", t_c2, runs, 1, "s");
    bench_print_runs("growth after the second commit", grow, runs, 1, "%");
    bench_print_runs("checkout", t_co, runs, 1, "s");
    bench_print_runs("malloc+memcpy", t_cp, runs, 1, "s");
    print_crypt_runs(crows, 2, runs);
    if (have_async) {
        bench_print_runs("synchronous commit", t_sync, runs, 1, "s");
        bench_print_runs("async COPY, blocking", t_acopy, runs, 1, "s");
        bench_print_runs("async COPY, until done", t_acopy_all, runs, 1,
                         "s");
        bench_print_runs("async TAKE, blocking", t_atake, runs, 1e3, "ms");
        bench_print_runs("async TAKE, until done", t_atake_all, runs, 1,
                         "s");
    }
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < N_CODECS; k++) {
            char what[200];
            snprintf(what, sizeof what, "commit of %.100s, %s", comps[i].label,
                     codecs[k]);
            bench_print_runs(what, comps[i].wall[k], comps[i].runs, 1, "s");
        }

    unlink(p_base);
    free(p_base);
    free(p_repo);
    return 0;
}
