/*
 * bench_dist.c -- the benchmark of multi-writer checkpoints (issue 16), on
 * a local disk (and an S3 store, --s3).
 *
 * On the deterministic F32 set of bench_io (bench_common.h; 1 GiB by
 * default), every tensor of two or more rows cut into 4 row bands (one per
 * writer, each a region of the global tensor; the others, small, held by
 * writer 0), it measures, with the median of N runs (default 3) and in the
 * same run as its baseline:
 *
 *   (1) 4 writer processes (fork; each opens the repository and calls
 *       wv_repo_commit_part, the last one finishing) committing the set
 *       into a fresh repository, from start to the checkpoint on the
 *       branch, vs 1 process committing the same set with wv_repo_commit:
 *       aggregate throughput and its ratio (4 writers / 1 writer);
 *   (2) resharded reads, wv_repo_read_region of a quarter of every tensor
 *       (rows [3/8, 5/8) of it, across two writers' bands; and the first
 *       quarter of the columns, every row): bytes read from the store
 *       (the read() bytes of this process, /proc/self/io rchar: pack
 *       chunks plus manifest and index) / bytes asked for;
 *   (3) a second step in which 10 % of the bytes changed (the first tenth
 *       of every tensor's elements), committed by the 4 writers on top of
 *       the first: the bytes the repository grew by vs the first step's,
 *       against the same for 1 writer committing both steps.
 *
 * Compression "none" (the 4-writer coordination is what is measured; a
 * compressed commit is CPU-bound and 2 cores are shared by 4 writers).
 *
 * --serial (a diagnostic) runs the 4 writers one after the other instead
 * of at once, to tell the cost of 4 commits (4 opens, locks, index
 * objects and durability barriers) from that of their concurrency.
 *
 * Uses the public API (weightvault.h) only. Usage:
 *
 *   bench_dist --dir SCRATCH [--runs N] [--size-mib M] [--serial]
 *              [--s3 s3://BUCKET/PREFIX]
 *
 * --s3 adds (1) on an S3 store (the project's Ceph: source the env file
 * scripts/ceph-dev.sh writes), each run into new repositories under
 * PREFIX, emptied after it (a commit of nothing, prune, gc; the S3
 * server may free the space only later: radosgw-admin gc process).
 */
#include "bench_common.h"

#include <ftw.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define NW 4

static const char *scratch;
static bool serial;

/* Bytes of every file under a directory (what a repository takes). */
static uint64_t du_bytes;
static int du_cb(const char *p, const struct stat *st, int flag,
                 struct FTW *f)
{
    (void)p;
    (void)f;
    if (flag == FTW_F)
        du_bytes += (uint64_t)st->st_size;
    return 0;
}
static uint64_t dir_bytes(const char *dir)
{
    du_bytes = 0;
    nftw(dir, du_cb, 16, FTW_PHYS);
    return du_bytes;
}

static int rm_cb(const char *p, const struct stat *st, int flag,
                 struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}
static void rm_rf(const char *dir)
{
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t rchar(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    unsigned long long v = 0;
    if (f == NULL)
        bench_die("cannot read /proc/self/io");
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "rchar: %llu", &v) == 1)
            break;
    fclose(f);
    return v;
}

static void init_repo(const char *dir)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    char eb[256] = "";
    io.compression = "none";
    io.errbuf = eb;
    io.errbuf_size = sizeof eb;
    if (strstr(dir, "://") == NULL)
        rm_rf(dir);
    if (wv_repo_init(dir, &io) != WV_OK)
        bench_die("init %s: %s", dir, eb);
}

static wv_repo *open_repo(const char *dir)
{
    wv_repo *r;
    char eb[256];
    if (wv_repo_open(dir, eb, sizeof eb, &r) != WV_OK)
        bench_die("open %s: %s", dir, eb);
    return r;
}

/* Free what a repository in a bucket holds (a Ceph S3 test cluster keeps
 * objects in memory): a commit of nothing becomes the head, so that every
 * checkpoint before it can be pruned and its data collected. */
static void drop_repo(const char *url)
{
    wv_repo *r = open_repo(url);
    wv_model *none;
    char id[WV_ID_HEX];
    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    po.keep_last = 1;
    po.keep_best = -1;
    wv_gc_opts go = WV_GC_OPTS_INIT;
    go.pending_timeout = 1;
    if (wv_model_new(&none) != WV_OK ||
        wv_repo_commit(r, none, "main", NULL, id) != WV_OK ||
        wv_repo_prune(r, &po, NULL, NULL, NULL) != WV_OK ||
        wv_repo_gc(r, &go, NULL) != WV_OK)
        bench_die("dropping %s: %s", url, wv_repo_errmsg(r));
    wv_model_free(none);
    wv_repo_close(r);
}

/* Writer w's band of tensor i: rows [*r0, *r0 + *n); 0 if it holds
 * none of it. */
static int band(size_t i, int w, uint64_t *r0, uint64_t *n)
{
    const struct tdef *d = &defs[i];
    if (d->ndim == 0 || d->shape[0] < NW) {
        *r0 = 0;
        *n = d->ndim ? d->shape[0] : 1;
        return w == 0;
    }
    *r0 = d->shape[0] * (uint64_t)w / NW;
    *n = d->shape[0] * (uint64_t)(w + 1) / NW - *r0;
    return 1;
}

/* Writer w's set: its bands, borrowed from bufs, as regions. */
static wv_model *writer_model(int w)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        bench_die("wv_model_new");
    for (size_t i = 0; i < n_defs; i++) {
        const struct tdef *d = &defs[i];
        uint64_t r0, n;
        if (!band(i, w, &r0, &n))
            continue;
        uint64_t row = numel_of(d) / (d->ndim ? d->shape[0] : 1);
        uint64_t shp[4], off[4] = {r0, 0, 0, 0};
        memcpy(shp, d->shape, sizeof shp);
        if (d->ndim)
            shp[0] = n;
        int rc = wv_model_add(m, d->name, WV_F32, d->ndim, shp,
                              bufs[i] + r0 * row, n * row * 4,
                              WV_DATA_BORROW);
        if (rc == WV_OK && d->ndim && d->shape[0] >= NW)
            rc = wv_model_set_region(m, d->name, d->shape, off);
        if (rc != WV_OK)
            bench_die("%s: %s", d->name, wv_model_errmsg(m));
    }
    return m;
}

/* The writer processes of commit_4; reaped[w] once waited for. */
static pid_t kids[NW];
static bool reaped[NW];

/* Stop if a writer process ended otherwise than with status 0. */
static void check_kids(bool block)
{
    for (int w = 0; w < NW; w++) {
        int st;
        if (reaped[w])
            continue;
        pid_t k = waitpid(kids[w], &st, block ? 0 : WNOHANG);
        if (k == 0)
            continue;
        reaped[w] = true;
        if (k < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bench_die("writer %d failed", w);
    }
}

/* One byte from fd (a pipe the writers write to), watching that none of
 * them fails meanwhile. */
static void get_byte(int fd, const char *what)
{
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int k = poll(&p, 1, 200);
        if (k > 0) {
            char c;
            if (read(fd, &c, 1) == 1)
                return;
            bench_die("%s: %s", what, strerror(errno));
        }
        if (k < 0 && errno != EINTR)
            bench_die("poll: %s", strerror(errno));
        check_kids(false);
    }
}

/* In a writer process: wait for the start signal (0: none came). */
static int wait_go(int fd)
{
    char c;
    ssize_t k;
    do
        k = read(fd, &c, 1);
    while (k < 0 && errno == EINTR);
    return k == 1;
}

/* 4 forked writers commit txn; returns the seconds from their start
 * signal until the last one's wv_repo_commit_part returned (the
 * checkpoint is then on main). Like the ranks of a training job, the
 * writers exist, hold their tensors and have the repository open before
 * the clock starts, as the 1 writer has in commit_1: neither side times
 * process creation (a fork of this 1 GiB process costs 0.1-0.4 s a child
 * on this VM, one after the other) or exit. */
static double commit_4(const char *dir, const char *txn)
{
    int go[2], ready[2], done[2];
    double t = 0;
    if (pipe(go) != 0 || pipe(ready) != 0 || pipe(done) != 0)
        bench_die("pipe: %s", strerror(errno));
    for (int w = 0; w < NW; w++) {
        reaped[w] = false;
        kids[w] = fork();
        if (kids[w] < 0)
            bench_die("fork: %s", strerror(errno));
        if (kids[w] == 0) {
            close(go[1]);
            close(ready[0]);
            close(done[0]);
            wv_repo *r = open_repo(dir);
            wv_model *m = writer_model(w);
            wv_part_opts po = WV_PART_OPTS_INIT;
            char id[WV_ID_HEX];
            po.txn = txn;
            po.writer = (uint32_t)w;
            po.n_writers = NW;
            if (write(ready[1], "r", 1) != 1 || !wait_go(go[0]))
                _exit(1);
            int rc = wv_repo_commit_part(r, m, "main", &po, NULL, id);
            if (rc != WV_OK && rc != WV_BUSY) {
                fprintf(stderr, "bench_dist: writer %d: %s\n", w,
                        wv_repo_errmsg(r));
                _exit(1);
            }
            if (write(done[1], "d", 1) != 1)
                _exit(1);
            wv_model_free(m);
            wv_repo_close(r);
            _exit(0);
        }
    }
    close(go[0]);
    close(ready[1]);
    close(done[1]);
    for (int w = 0; w < NW; w++)
        get_byte(ready[0], "a writer's ready signal");
    if (serial) { /* diagnostic: one writer after the other */
        for (int w = 0; w < NW; w++) {
            double t0 = bench_now();
            if (write(go[1], "g", 1) != 1)
                bench_die("pipe: %s", strerror(errno));
            get_byte(done[0], "a writer's done signal");
            t += bench_now() - t0;
        }
    } else {
        double t0 = bench_now();
        if (write(go[1], "gggg", NW) != NW)
            bench_die("pipe: %s", strerror(errno));
        for (int w = 0; w < NW; w++)
            get_byte(done[0], "a writer's done signal");
        t = bench_now() - t0;
    }
    close(go[1]);
    close(ready[0]);
    close(done[0]);
    check_kids(true);
    /* the checkpoint is there (finished by one of them) */
    wv_repo *r = open_repo(dir);
    char id[WV_ID_HEX];
    if (wv_repo_finish(r, "main", txn, NW, NULL, id) != WV_OK)
        bench_die("finish %s: %s", txn, wv_repo_errmsg(r));
    wv_repo_close(r);
    return t;
}

/* CPU seconds (user + system) of this process (or of its reaped
 * children). */
static double cpu_secs(int who)
{
    struct rusage u;
    getrusage(who, &u);
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

static double commit_1(const char *dir)
{
    wv_repo *r = open_repo(dir);
    wv_model *m = bench_build_model();
    char id[WV_ID_HEX];
    double t0 = bench_now();
    if (wv_repo_commit(r, m, "main", NULL, id) != WV_OK)
        bench_die("commit: %s", wv_repo_errmsg(r));
    double t = bench_now() - t0;
    wv_model_free(m);
    wv_repo_close(r);
    return t;
}

/* Change the first tenth of every tensor's elements. */
static void change_tenth(void)
{
    for (size_t i = 0; i < n_defs; i++) {
        uint64_t n = numel_of(&defs[i]);
        for (uint64_t k = 0; k < n / 10; k++)
            bufs[i][k] += 1.0f;
    }
}

static void undo_tenth(void)
{
    for (size_t i = 0; i < n_defs; i++) {
        uint64_t n = numel_of(&defs[i]);
        for (uint64_t k = 0; k < n / 10; k++)
            bufs[i][k] -= 1.0f;
    }
}

/* Read a quarter of every tensor of at least 2 dimensions as a region
 * (rows [3/8, 5/8), or the first quarter of the last dimension's
 * columns): bytes read from the store and bytes asked for. */
static void read_quarters(const char *dir, int cols, uint64_t *read,
                          uint64_t *needed, double *secs)
{
    wv_repo *r = open_repo(dir);
    char id[WV_ID_HEX];
    if (wv_repo_resolve(r, "main", id) != WV_OK)
        bench_die("resolve: %s", wv_repo_errmsg(r));
    *read = *needed = 0;
    double t0 = bench_now();
    for (size_t i = 0; i < n_defs; i++) {
        const struct tdef *d = &defs[i];
        if (d->ndim < 2)
            continue;
        uint64_t off[4] = {0, 0, 0, 0}, shp[4];
        memcpy(shp, d->shape, sizeof shp);
        int last = d->ndim - 1;
        if (cols) {
            shp[last] = d->shape[last] / 4 ? d->shape[last] / 4 : 1;
        } else {
            off[0] = d->shape[0] * 3 / 8;
            shp[0] = d->shape[0] * 5 / 8 - off[0];
            if (shp[0] == 0)
                shp[0] = 1;
        }
        uint64_t n = 4;
        for (int k = 0; k < d->ndim; k++)
            n *= shp[k];
        void *b = malloc(n);
        if (b == NULL)
            bench_die("out of memory");
        uint64_t before = rchar();
        if (wv_repo_read_region(r, id, d->name, d->ndim, off, shp, b,
                                (size_t)n) != WV_OK)
            bench_die("read_region %s: %s", d->name, wv_repo_errmsg(r));
        *read += rchar() - before;
        *needed += n;
        free(b);
    }
    *secs = bench_now() - t0;
    wv_repo_close(r);
}

/* `runs` commits of the set by 4 writers (into d4) and by 1 (into d1),
 * alternating which goes first; seconds in t4 and t1. In a bucket
 * (`fresh`), each run into its own new repositories, dropped after. */
static void compare(const char *d4, const char *d1, int runs, double *t4,
                    double *t1, bool fresh)
{
    for (int k = 0; k < runs; k++) {
        double c[2];
        for (int j = 0; j < 2; j++) {
            bool four = (j == 0) == (k % 2 == 0);
            char dir[1024];
            snprintf(dir, sizeof dir, fresh ? "%s-%d" : "%s", four ? d4 : d1,
                     k);
            init_repo(dir);
            bench_settle(0);
            double c0 = cpu_secs(four ? RUSAGE_CHILDREN : RUSAGE_SELF);
            if (four)
                t4[k] = commit_4(dir, "step-1");
            else
                t1[k] = commit_1(dir);
            c[j] = cpu_secs(four ? RUSAGE_CHILDREN : RUSAGE_SELF) - c0;
            if (fresh)
                drop_repo(dir);
        }
        /* per run, with the CPU time of the committing processes (the
         * writers': from their start to their exit) */
        bool four_first = k % 2 == 0;
        fprintf(stderr,
                "bench_dist: %s run %d: 4 writers %.3f s (CPU %.2f s), 1 "
                "writer %.3f s (CPU %.2f s)\n",
                fresh ? "S3" : "local", k + 1, t4[k], c[four_first ? 0 : 1],
                t1[k], c[four_first ? 1 : 0]);
    }
}

int main(int argc, char **argv)
{
    int runs = 3;
    uint64_t mib = 1024;
    const char *s3 = NULL;
    bench_prog = "bench_dist";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            scratch = argv[++i];
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--serial") == 0)
            serial = true;
        else if (strcmp(argv[i], "--size-mib") == 0 && i + 1 < argc)
            mib = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--s3") == 0 && i + 1 < argc)
            s3 = argv[++i];
        else
            bench_die("usage: bench_dist --dir SCRATCH [--runs N] "
                      "[--size-mib M] [--serial] [--s3 s3://BUCKET/PREFIX]");
    }
    if (scratch == NULL || runs < 1 || runs > MAX_RUNS ||
        (s3 && (strncmp(s3, "s3://", 5) != 0 || strlen(s3) > 900)))
        bench_die("usage: bench_dist --dir SCRATCH [--runs N] "
                  "[--size-mib M] [--serial] [--s3 s3://BUCKET/PREFIX]");
    bench_make_defs(mib << 20);
    bench_generate();
    char *d4 = bench_path(scratch, "dist4"), *d1 = bench_path(scratch,
                                                              "dist1");
    double t4[MAX_RUNS], t1[MAX_RUNS];
    double gb = (double)total_bytes / 1e9;

    /* (1) commit throughput, alternating which goes first */
    fprintf(stderr, "bench_dist: %d runs of 4 writers vs 1 writer, %.2f GB\n",
            runs, gb);
    compare(d4, d1, runs, t4, t1, false);
    double m4 = bench_median(t4, runs), m1 = bench_median(t1, runs);
    printf("## weightvault multi-writer checkpoints (bench_dist)\n\n");
    printf("- set: %zu F32 tensors, %.3f GB; rows of every tensor of 4+ "
           "rows in 4 bands (one per writer); compression none; local "
           "disk%s; median of %d runs%s\n\n",
           n_defs, gb, s3 ? " and Ceph S3" : "", runs,
           serial ? "; the 4 writers one after the other (--serial)" : "");
    printf("| what | ours | baseline | ratio |\n|---|---|---|---|\n");
    printf("| commit %.2f GB, local disk: 4 writers vs 1 writer (GB/s) | "
           "%.3f | %.3f | %.3f |\n",
           gb, gb / m4, gb / m1, m1 / m4);
    if (s3) {
        char u4[1024], u1[1024];
        double s4[MAX_RUNS], s1[MAX_RUNS];
        snprintf(u4, sizeof u4, "%s/dist4-%ld", s3, (long)getpid());
        snprintf(u1, sizeof u1, "%s/dist1-%ld", s3, (long)getpid());
        compare(u4, u1, runs, s4, s1, true);
        double n4 = bench_median(s4, runs), n1 = bench_median(s1, runs);
        printf("| commit %.2f GB, Ceph S3: 4 writers vs 1 writer (GB/s) | "
               "%.3f | %.3f | %.3f |\n",
               gb, gb / n4, gb / n1, n1 / n4);
    }

    /* (2) resharded reads of the 4-writer checkpoint */
    uint64_t rd, nd;
    double s;
    read_quarters(d4, 0, &rd, &nd, &s);
    printf("| read rows [3/8, 5/8) of every tensor: bytes read from the "
           "store vs bytes needed (MB) | %.1f | %.1f | %.3f |\n",
           (double)rd / 1e6, (double)nd / 1e6, (double)rd / (double)nd);
    read_quarters(d4, 1, &rd, &nd, &s);
    printf("| read the first quarter of the columns of every tensor "
           "(every row): bytes read vs needed (MB) | %.1f | %.1f | %.3f "
           "|\n",
           (double)rd / 1e6, (double)nd / 1e6, (double)rd / (double)nd);

    /* (3) second step, 10 % changed: growth vs the first step's */
    uint64_t a4 = dir_bytes(d4), a1 = dir_bytes(d1);
    change_tenth();
    commit_4(d4, "step-2");
    commit_1(d1);
    undo_tenth();
    uint64_t b4 = dir_bytes(d4), b1 = dir_bytes(d1);
    printf("| second step, 10 %% of the bytes changed: bytes written vs the "
           "first step, 4 writers (ours) vs 1 writer | %.3f | %.3f | %.3f "
           "|\n",
           (double)(b4 - a4) / (double)a4, (double)(b1 - a1) / (double)a1,
           ((double)(b4 - a4) / (double)a4) /
               ((double)(b1 - a1) / (double)a1));
    rm_rf(d4);
    rm_rf(d1);
    free(d4);
    free(d1);
    bench_release_set();
    return 0;
}
