/*
 * t_dist.c -- multi-writer checkpoints (issue 16): 4 writer processes
 * (fork) commit parts of one checkpoint whose large tensors are row-,
 * column- and block-sharded and whose small ones are replicated; it is
 * read back whole (checkout) and as regions by 3 and by 8 readers, bit for
 * bit equal to the unsharded tensors, on a local directory, S3
 * (unit.s3_dist) and RADOS (unit.rados_dist). Then the refusals of
 * finishing (overlap, gap, parents, another transaction, a missing part),
 * write-once parts, idempotent and deterministic finishing, pending
 * transactions and their gc.
 */
#include "object.h"
#include "repo.h"
#include "store.h"
#include "wv_int.h"
#include "wvtest.h"

#include <sys/wait.h>
#include <unistd.h>

#define NW 4

/* The global (unsharded) tensors. */
struct gt {
    const char *name;
    wv_dtype dt;
    int ndim;
    uint64_t shape[2];
    size_t es;
    /* how writers hold it: 'r' rows, 'c' columns, 'b' 2x2 blocks,
     * 'R' replicated whole, '0' writer 0 only (whole) */
    char how;
    unsigned char *data;
    size_t nbytes;
};

static struct gt G[] = {
    {"emb.weight", WV_F32, 2, {512, 64}, 4, 'r', NULL, 0},
    {"proj.weight", WV_F32, 2, {96, 256}, 4, 'c', NULL, 0},
    {"attn.block", WV_F16, 2, {64, 80}, 2, 'b', NULL, 0},
    {"proj.bias", WV_F32, 1, {256, 0}, 4, 'R', NULL, 0},
    {"norm.scale", WV_BF16, 1, {10, 0}, 2, 'R', NULL, 0},
    {"step", WV_I64, 0, {0, 0}, 8, '0', NULL, 0},
};
#define NG (sizeof G / sizeof G[0])

static void make_globals(unsigned seed)
{
    for (size_t i = 0; i < NG; i++) {
        struct gt *g = &G[i];
        size_t n = 1;
        for (int d = 0; d < g->ndim; d++)
            n *= g->shape[d];
        free(g->data);
        g->nbytes = n * g->es;
        g->data = malloc(g->nbytes ? g->nbytes : 1);
        for (size_t k = 0; k < g->nbytes; k++)
            g->data[k] =
                (unsigned char)(((k + 1) * 2654435761u + seed * 97u + i) >>
                                13);
    }
}

/* Copy the box (off, shp) of global g, row-major, into out. */
static void box(const struct gt *g, const uint64_t *off, const uint64_t *shp,
                unsigned char *out)
{
    if (g->ndim == 0) {
        memcpy(out, g->data, g->es);
        return;
    }
    if (g->ndim == 1) {
        memcpy(out, g->data + off[0] * g->es, shp[0] * g->es);
        return;
    }
    for (uint64_t r = 0; r < shp[0]; r++)
        memcpy(out + r * shp[1] * g->es,
               g->data + ((off[0] + r) * g->shape[1] + off[1]) * g->es,
               shp[1] * g->es);
}

/* Writer w's region of g: returns 0 if w holds none of it. */
static int region_of(const struct gt *g, int w, uint64_t *off, uint64_t *shp)
{
    off[0] = off[1] = 0;
    shp[0] = g->shape[0];
    shp[1] = g->shape[1];
    switch (g->how) {
    case 'r':
        shp[0] = g->shape[0] / NW;
        off[0] = (uint64_t)w * shp[0];
        return 1;
    case 'c':
        shp[1] = g->shape[1] / NW;
        off[1] = (uint64_t)w * shp[1];
        return 1;
    case 'b':
        shp[0] = g->shape[0] / 2;
        shp[1] = g->shape[1] / 2;
        off[0] = (uint64_t)(w / 2) * shp[0];
        off[1] = (uint64_t)(w % 2) * shp[1];
        return 1;
    case 'R':
        return 1;
    default:
        return w == 0;
    }
}

/* Writer w's tensor set. */
static wv_model *writer_set(int w)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    for (size_t i = 0; i < NG; i++) {
        const struct gt *g = &G[i];
        uint64_t off[2], shp[2];
        if (!region_of(g, w, off, shp))
            continue;
        size_t n = g->es;
        for (int d = 0; d < g->ndim; d++)
            n *= shp[d];
        unsigned char *b = wv_malloc(n ? n : 1);
        box(g, off, shp, b);
        if (wv_model_add(m, g->name, g->dt, g->ndim, shp, b, n,
                         WV_DATA_TAKE) != WV_OK)
            return NULL;
        if (g->how != 'R' && g->how != '0' &&
            wv_model_set_region(m, g->name, g->shape, off) != WV_OK)
            return NULL;
    }
    wv_model_set_meta(m, "step", "1200");
    return m;
}

/* Fork NW writers committing txn to url; each exits 0 on WV_OK (the
 * checkpoint exists) or WV_BUSY (parts missing), 1 otherwise. Returns the
 * number of writers that failed. */
static int run_writers(const char *url, const char *txn)
{
    pid_t pid[NW];
    int bad = 0;
    for (int w = 0; w < NW; w++) {
        pid[w] = fork();
        if (pid[w] == 0) {
            wv_repo *r = NULL;
            char msg[256], id[WV_ID_HEX];
            if (wv_repo_open(url, msg, sizeof msg, &r) != WV_OK) {
                fprintf(stderr, "writer %d: %s\n", w, msg);
                _exit(1);
            }
            wv_model *m = writer_set(w);
            wv_part_opts po = WV_PART_OPTS_INIT;
            po.txn = txn;
            po.writer = (uint32_t)w;
            po.n_writers = NW;
            int rc = wv_repo_commit_part(r, m, "main", &po, NULL, id);
            if (rc != WV_OK && rc != WV_BUSY)
                fprintf(stderr, "writer %d: %s\n", w, wv_repo_errmsg(r));
            if ((rc == WV_OK) != (id[0] != '\0'))
                rc = WV_ERROR;
            wv_model_free(m);
            wv_repo_close(r);
            _exit(rc == WV_OK || rc == WV_BUSY ? 0 : 1);
        }
    }
    for (int w = 0; w < NW; w++) {
        int st = 0;
        waitpid(pid[w], &st, 0);
        bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    return bad;
}

/* Read every global tensor as k x j regions (rows split k ways, columns
 * j ways) and compare with the truth; the bytes read from the store may
 * not exceed those needed by more than the chunks cut at region edges. */
static int read_regions(wv_repo *r, const char *ref, int k, int j)
{
    for (size_t i = 0; i < NG; i++) {
        const struct gt *g = &G[i];
        int kk = g->ndim >= 1 ? k : 1, jj = g->ndim >= 2 ? j : 1;
        for (int a = 0; a < kk; a++) {
            for (int b = 0; b < jj; b++) {
                uint64_t off[2] = {0, 0}, shp[2] = {0, 0};
                if (g->ndim >= 1) {
                    off[0] = g->shape[0] * (uint64_t)a / (uint64_t)kk;
                    shp[0] = g->shape[0] * (uint64_t)(a + 1) / (uint64_t)kk -
                             off[0];
                }
                if (g->ndim >= 2) {
                    off[1] = g->shape[1] * (uint64_t)b / (uint64_t)jj;
                    shp[1] = g->shape[1] * (uint64_t)(b + 1) / (uint64_t)jj -
                             off[1];
                }
                size_t n = g->es;
                for (int d = 0; d < g->ndim; d++)
                    n *= shp[d];
                unsigned char *want = malloc(n + 1), *got = malloc(n + 1);
                box(g, off, shp, want);
                memset(got, 0xAA, n + 1);
                int rc = wv_repo_read_region(r, ref, g->name, g->ndim, off,
                                             shp, got, n);
                int ok = rc == WV_OK && memcmp(want, got, n) == 0;
                if (!ok)
                    fprintf(stderr, "region %d,%d of %s (%d x %d): rc %d %s\n",
                            a, b, g->name, kk, jj, rc, wv_repo_errmsg(r));
                free(want);
                free(got);
                if (!ok)
                    return 0;
            }
        }
    }
    return 1;
}

/* The checked-out set equals the globals. */
static int same_as_globals(const wv_model *m)
{
    if (wv_model_count(m) != NG)
        return 0;
    for (size_t i = 0; i < NG; i++) {
        const wv_tensor *t = wv_model_find(m, G[i].name);
        if (t == NULL || wv_tensor_nbytes(t) != G[i].nbytes ||
            wv_tensor_ndim(t) != G[i].ndim ||
            memcmp(wv_tensor_data(t), G[i].data, G[i].nbytes) != 0)
            return 0;
        for (int d = 0; d < G[i].ndim; d++)
            if (wv_tensor_shape(t)[d] != G[i].shape[d])
                return 0;
    }
    return 1;
}

struct pend {
    int n;
    char txn[128];
    uint32_t n_writers, n_parts;
};

static int pend_cb(void *arg, const char *branch, const char *txn,
                   uint32_t n_writers, uint32_t n_parts, const char *oldest)
{
    struct pend *p = arg;
    (void)branch;
    (void)oldest;
    p->n++;
    snprintf(p->txn, sizeof p->txn, "%s", txn);
    p->n_writers = n_writers;
    p->n_parts = n_parts;
    return 0;
}

static void dist_roundtrip(const char *url)
{
    char id[WV_ID_HEX], id2[WV_ID_HEX], msg[256];
    wv_repo *r = NULL;
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = 4096;
    make_globals(1);
    if (wv_repo_init(url, &io) != WV_OK)
        WVT_FAIL("init %s: %s", url, io.errbuf ? io.errbuf : "");
    ASSERT_EQ(run_writers(url, "step-1200"), 0);
    ASSERT_OK(wv_repo_open(url, msg, sizeof msg, &r));
    /* some writer finished it; finishing again gives the same id */
    ASSERT_OK(wv_repo_resolve(r, "latest", id));
    ASSERT_OK(wv_repo_finish(r, "main", "step-1200", NW, NULL, id2));
    ASSERT_STREQ(id, id2);
    /* nothing pending once finished */
    struct pend p;
    memset(&p, 0, sizeof p);
    ASSERT_OK(wv_repo_list_pending(r, pend_cb, &p));
    ASSERT_EQ(p.n, 0);

    /* whole, by one reader */
    wv_model *m = NULL;
    ASSERT_OK(wv_repo_checkout(r, "latest", NULL, &m));
    ASSERT(same_as_globals(m));
    wv_model_free(m);
    /* stat: global shapes, shards and writers */
    wv_checkpoint *c = NULL;
    ASSERT_OK(wv_repo_stat(r, id, &c));
    ASSERT_EQ(wv_checkpoint_tensor_count(c), NG);
    for (size_t i = 0; i < NG; i++) {
        ASSERT_STREQ(wv_checkpoint_tensor_name(c, i), G[i].name);
        ASSERT_EQ(wv_checkpoint_tensor_nbytes(c, i), G[i].nbytes);
        uint32_t ws[8];
        size_t nw = wv_checkpoint_tensor_writers(c, i, ws, 8);
        size_t sh = wv_checkpoint_tensor_shards(c, i);
        if (G[i].how == 'R') {
            ASSERT_EQ(nw, NW);
            ASSERT_EQ(sh, 1);
        } else if (G[i].how == '0') {
            ASSERT_EQ(nw, 1);
            ASSERT_EQ(ws[0], 0);
        } else {
            ASSERT_EQ(nw, NW);
            ASSERT_EQ(sh, NW);
        }
    }
    wv_checkpoint_free(c);
    /* as regions, by 3 and by 8 readers (8: 4 row bands x 2 columns) */
    ASSERT(read_regions(r, id, 3, 1));
    ASSERT(read_regions(r, id, 4, 2));
    /* (odd splits: every region edge inside some chunk; local only, as
     * each read is a few round trips to a remote store) */
    if (strstr(url, "://") == NULL)
        ASSERT(read_regions(r, id, 7, 5));
    /* only the chunks overlapping: a quarter of the rows of emb.weight
     * (one writer's shard, 8 chunks of 4096) reads exactly those */
    {
        uint64_t off[2] = {128, 0}, shp[2] = {128, 64};
        size_t n = 128 * 64 * 4;
        unsigned char *b = malloc(n);
        ASSERT_OK(wv_repo_read_region(r, id, "emb.weight", 2, off, shp, b,
                                      n));
        ASSERT_EQ(r->n_region_read, n);
        free(b);
    }
    /* refusals of a bad region */
    {
        uint64_t off[2] = {500, 0}, shp[2] = {13, 64};
        unsigned char b[13 * 64 * 4];
        ASSERT_EQ(wv_repo_read_region(r, id, "emb.weight", 2, off, shp, b,
                                      sizeof b),
                  WV_RANGE);
        ASSERT_CONTAINS(wv_repo_errmsg(r), "dimension 0");
        shp[0] = 12;
        ASSERT_EQ(wv_repo_read_region(r, id, "emb.weight", 2, off, shp, b,
                                      sizeof b),
                  WV_RANGE);
        ASSERT_EQ(wv_repo_read_region(r, id, "nope", 2, off, shp, b, 12),
                  WV_NOTFOUND);
    }
    /* a ranged read of a global tensor through the flat byte API */
    {
        unsigned char b[1000];
        ASSERT_OK(wv_repo_read_tensor(r, id, "proj.weight", 5000, 1000, b));
        ASSERT_MEMEQ(b, G[1].data + 5000, 1000);
    }
    /* the whole of it: each of its chunks read once, though the reading
     * windows cut across its four column regions */
    {
        unsigned char *b = malloc(G[1].nbytes);
        ASSERT_OK(wv_repo_read_tensor(r, id, "proj.weight", 0, G[1].nbytes,
                                      b));
        ASSERT_MEMEQ(b, G[1].data, G[1].nbytes);
        ASSERT_EQ(r->n_region_read, G[1].nbytes);
        free(b);
    }
    /* to a file, streamed (the index comes without data), whole or
     * through a budget of two chunks (fewer than the column regions of
     * proj.weight: they share the reader's chunks), bit for bit */
    for (int small = 0; small < 2; small++) {
        char out[1200];
        wv_checkout_opts co = WV_CHECKOUT_OPTS_INIT;
        wv_model *ix = NULL, *back = NULL;
        if (small)
            co.buffer_bytes = 2 * 4096;
        snprintf(out, sizeof out, "%s/dist-%d.safetensors", wvtest_tmpdir(),
                 small);
        ASSERT_OK(wv_repo_checkout_file(r, id, &co, out, NULL, &ix));
        ASSERT_NOT_NULL(ix);
        ASSERT(wv_tensor_data(wv_model_find(ix, "proj.weight")) == NULL);
        wv_model_free(ix);
        ASSERT_OK(wv_model_load(out, NULL, &back));
        ASSERT(same_as_globals(back));
        wv_model_free(back);
    }
    /* verify: every chunk of every region */
    wv_verify_stats vs;
    memset(&vs, 0, sizeof vs);
    ASSERT_OK(wv_repo_verify(r, NULL, NULL, &vs));
    /* gc keeps it */
    wv_gc_opts go = WV_GC_OPTS_INIT;
    ASSERT_OK(wv_repo_gc(r, &go, NULL));
    ASSERT_OK(wv_repo_checkout(r, "latest", NULL, &m));
    ASSERT(same_as_globals(m));
    wv_model_free(m);

    /* a second step, 10 % changed: dedup per writer */
    make_globals(1);
    for (size_t k = 0; k < G[0].nbytes / 10; k++)
        G[0].data[k] ^= 0x5a;
    ASSERT_EQ(run_writers(url, "step-1300"), 0);
    ASSERT_OK(wv_repo_resolve(r, "latest", id2));
    ASSERT(strcmp(id, id2) != 0);
    ASSERT_OK(wv_repo_checkout(r, "latest", NULL, &m));
    ASSERT(same_as_globals(m));
    wv_model_free(m);
    ASSERT_OK(wv_repo_stat(r, id2, &c));
    ASSERT_STREQ(wv_checkpoint_parent(c), id);
    wv_checkpoint_free(c);
    /* diff: the changed global tensor is compared by value, the others
     * are equal by their chunks */
    {
        wv_diff *d = NULL;
        ASSERT_OK(wv_repo_diff(r, id, id2, 0, &d));
        ASSERT_EQ(wv_diff_count(d), NG);
        for (size_t i = 0; i < wv_diff_count(d); i++) {
            const wv_diff_entry *e = wv_diff_entry_at(d, i);
            if (strcmp(e->name, "emb.weight") == 0) {
                ASSERT_EQ(e->kind, WV_DIFF_CHANGED);
                ASSERT_EQ(e->compared, 1);
                ASSERT(e->n_differ > 0);
            } else {
                ASSERT_EQ(e->kind, WV_DIFF_UNCHANGED);
            }
        }
        wv_diff_free(d);
    }
    wv_checkpoint_storage st = WV_CHECKPOINT_STORAGE_INIT;
    ASSERT_OK(wv_repo_storage(r, id2, &st));
    /* emb.weight's first 10 %: 13 of its 32 chunks hold changed bytes at
     * most; everything else is its parent's */
    ASSERT(st.new_raw_bytes <= 16 * 4096);
    ASSERT(st.new_raw_bytes > 0);
    wv_repo_close(r);
    /* push copies it as it is: the copy checks out the same */
    if (strstr(url, "://") == NULL) {
        char dst[1200];
        wv_sync_result res;
        memset(&res, 0, sizeof res);
        snprintf(dst, sizeof dst, "%s-copy", url);
        ASSERT_OK(wv_repo_sync(url, dst, NULL, &res));
        ASSERT_OK(wv_repo_open(dst, msg, sizeof msg, &r));
        ASSERT_OK(wv_repo_resolve(r, "latest", id));
        ASSERT_STREQ(id, id2);
        ASSERT_OK(wv_repo_checkout(r, "latest", NULL, &m));
        ASSERT(same_as_globals(m));
        wv_model_free(m);
        ASSERT_OK(wv_repo_verify(r, NULL, NULL, &vs));
        wv_repo_close(r);
    }
}

/* Remove everything under a remote repository (best effort). */
static int del_cb(void *arg, const char *key, uint64_t size)
{
    (void)size;
    wv__store_del(arg, key);
    return 0;
}

static void wipe(const char *url)
{
    struct wv__err err = {0};
    struct wv__store *s = NULL;
    if (wv__store_open(url, false, &err, &s) != WV_OK)
        return;
    wv__store_list(s, "", del_cb, s);
    wv__store_close(s);
}

TEST_IMPL(dist_local)
{
    char url[1100];
    snprintf(url, sizeof url, "%s/repo", wvtest_tmpdir());
    dist_roundtrip(url);
}

TEST_IMPL(s3_dist)
{
    const char *e = getenv("AWS_ENDPOINT_URL");
    if (e == NULL || e[0] == '\0')
        WVTEST_SKIP("AWS_ENDPOINT_URL is not set (no S3 server)");
    char url[256];
    snprintf(url, sizeof url, "s3://wvt-s3-unit/dist-%ld", (long)getpid());
    dist_roundtrip(url);
    wipe(url);
}

TEST_IMPL(rados_dist)
{
    const char *c = getenv("CEPH_CONF");
    if (c == NULL || c[0] == '\0')
        WVTEST_SKIP("CEPH_CONF is not set (no Ceph cluster)");
    char url[256];
    snprintf(url, sizeof url, "rados://wvt-rados-unit/dist-%ld",
             (long)getpid());
    dist_roundtrip(url);
    wipe(url);
}

/* ---- refusals ------------------------------------------------------------ */

/* A set of one tensor "w" F32 [10, 4], rows [r0, r1) with the globals'
 * bytes (xor `flip`), as a region of [10, 4]. */
static wv_model *rows_set(uint64_t r0, uint64_t r1, unsigned char flip)
{
    wv_model *m;
    static float all[40];
    for (int i = 0; i < 40; i++)
        all[i] = (float)i;
    wv_model_new(&m);
    uint64_t shp[2] = {r1 - r0, 4}, g[2] = {10, 4}, off[2] = {r0, 0};
    unsigned char b[160];
    memcpy(b, all + r0 * 4, (size_t)(r1 - r0) * 16);
    for (size_t i = 0; i < (r1 - r0) * 16; i++)
        b[i] ^= flip;
    wv_model_add(m, "w", WV_F32, 2, shp, b, (size_t)(r1 - r0) * 16,
                 WV_DATA_COPY);
    wv_model_set_region(m, "w", g, off);
    return m;
}

static int part(wv_repo *r, const char *txn, uint32_t w, uint32_t n,
                wv_model *m, int no_finish, char id[WV_ID_HEX])
{
    wv_part_opts po = WV_PART_OPTS_INIT;
    po.txn = txn;
    po.writer = w;
    po.n_writers = n;
    po.no_finish = no_finish;
    int rc = wv_repo_commit_part(r, m, "main", &po, NULL, id);
    wv_model_free(m);
    return rc;
}

static wv_repo *fresh(const char *name)
{
    char url[1100], msg[256];
    wv_repo *r = NULL;
    snprintf(url, sizeof url, "%s/%s", wvtest_tmpdir(), name);
    if (wv_repo_init(url, NULL) != WV_OK ||
        wv_repo_open(url, msg, sizeof msg, &r) != WV_OK)
        return NULL;
    return r;
}

TEST_IMPL(dist_refusals)
{
    char id[WV_ID_HEX], head[WV_ID_HEX], id2[WV_ID_HEX];
    wv_repo *r = fresh("refuse");
    ASSERT_NOT_NULL(r);
    wv_model *m0;
    wv_model_new(&m0);
    ASSERT_OK(wv_repo_commit(r, m0, "main", NULL, head));
    wv_model_free(m0);

    /* overlapping regions with different bytes */
    ASSERT_EQ(part(r, "ov", 0, 2, rows_set(0, 6, 0), 1, id), WV_BUSY);
    ASSERT_STREQ(id, "");
    ASSERT_EQ(part(r, "ov", 1, 2, rows_set(4, 10, 0), 0, id), WV_CORRUPT);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "tensor 'w'");
    ASSERT_CONTAINS(wv_repo_errmsg(r), "writers 0 and 1 overlap");
    /* the same region twice with different bytes */
    ASSERT_EQ(part(r, "ov2", 0, 3, rows_set(0, 5, 0), 1, id), WV_BUSY);
    ASSERT_EQ(part(r, "ov2", 1, 3, rows_set(0, 5, 1), 1, id), WV_BUSY);
    ASSERT_EQ(part(r, "ov2", 2, 3, rows_set(5, 10, 0), 0, id), WV_CORRUPT);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "writers 0 and 1 overlap with "
                                       "different bytes");
    /* ... and bit-identical: a replicated region, allowed */
    ASSERT_EQ(part(r, "rep", 0, 3, rows_set(0, 5, 0), 1, id), WV_BUSY);
    ASSERT_EQ(part(r, "rep", 1, 3, rows_set(0, 5, 0), 1, id), WV_BUSY);
    ASSERT_OK(part(r, "rep", 2, 3, rows_set(5, 10, 0), 0, id));
    {
        float w[40];
        uint64_t off[2] = {3, 1}, shp[2] = {4, 2};
        ASSERT_OK(wv_repo_read_region(r, id, "w", 2, off, shp, w, 32));
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 2; j++)
                ASSERT_EQ((int)w[i * 2 + j], (3 + i) * 4 + 1 + j);
    }
    ASSERT_OK(wv_repo_resolve(r, "main", head));
    /* a gap */
    ASSERT_EQ(part(r, "gap", 0, 2, rows_set(0, 4, 0), 1, id), WV_BUSY);
    ASSERT_EQ(part(r, "gap", 1, 2, rows_set(5, 10, 0), 0, id), WV_CORRUPT);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "tensor 'w'");
    ASSERT_CONTAINS(wv_repo_errmsg(r), "gap");
    /* parts naming different parents: the branch moved in between */
    ASSERT_EQ(part(r, "par", 0, 2, rows_set(0, 5, 0), 1, id), WV_BUSY);
    wv_model_new(&m0);
    wv_model_set_meta(m0, "x", "y");
    ASSERT_OK(wv_repo_commit(r, m0, "main", NULL, head));
    wv_model_free(m0);
    ASSERT_EQ(part(r, "par", 1, 2, rows_set(5, 10, 0), 0, id), WV_CORRUPT);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "different parents");
    /* a part from another transaction (copied into this one's folder) */
    ASSERT_EQ(part(r, "tA", 0, 2, rows_set(0, 5, 0), 1, id), WV_BUSY);
    ASSERT_EQ(part(r, "tB", 1, 2, rows_set(5, 10, 0), 1, id), WV_BUSY);
    {
        char cmd[3000];
        snprintf(cmd, sizeof cmd, "cp '%s/refuse/parts/main/tA/0' "
                                  "'%s/refuse/parts/main/tB/0'",
                 wvtest_tmpdir(), wvtest_tmpdir());
        ASSERT_OK(system(cmd));
    }
    ASSERT_EQ(wv_repo_finish(r, "main", "tB", 2, NULL, id), WV_CORRUPT);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "belongs to transaction 'tA'");
    /* a part declaring another number of writers */
    ASSERT_EQ(wv_repo_finish(r, "main", "tA", 3, NULL, id), WV_BUSY);
    /* a missing part: WV_BUSY naming it, the branch stays */
    ASSERT_OK(wv_repo_resolve(r, "main", head));
    ASSERT_EQ(part(r, "miss", 0, 3, rows_set(0, 3, 0), 1, id), WV_BUSY);
    ASSERT_EQ(part(r, "miss", 2, 3, rows_set(6, 10, 0), 0, id), WV_BUSY);
    ASSERT_STREQ(id, "");
    ASSERT_CONTAINS(wv_repo_errmsg(r), "writer 1 is missing");
    ASSERT_EQ(wv_repo_finish(r, "main", "miss", 3, NULL, id), WV_BUSY);
    ASSERT_OK(wv_repo_resolve(r, "main", id2));
    ASSERT_STREQ(id2, head);
    /* write-once: another content for the same writer is a conflict, the
     * same content again is fine */
    ASSERT_EQ(part(r, "miss", 0, 3, rows_set(0, 3, 7), 1, id), WV_CONFLICT);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "already exists with other content");
    ASSERT_EQ(part(r, "miss", 0, 3, rows_set(0, 3, 0), 1, id), WV_BUSY);
    /* pending: listed */
    struct pend p;
    memset(&p, 0, sizeof p);
    ASSERT_OK(wv_repo_list_pending(r, pend_cb, &p));
    ASSERT(p.n >= 1);
    /* gc keeps pending parts' chunks (default timeout): finish after it */
    wv_gc_opts go = WV_GC_OPTS_INIT;
    ASSERT_OK(wv_repo_gc(r, &go, NULL));
    ASSERT_OK(part(r, "miss", 1, 3, rows_set(3, 6, 0), 0, id));
    wv_model *m = NULL;
    ASSERT_OK(wv_repo_checkout(r, id, NULL, &m));
    const wv_tensor *t = wv_model_find(m, "w");
    ASSERT_NOT_NULL(t);
    for (int i = 0; i < 40; i++)
        ASSERT_EQ((int)((const float *)wv_tensor_data(t))[i], i);
    wv_model_free(m);
    /* finishing twice, or a writer retrying after the finish: its id */
    ASSERT_OK(wv_repo_finish(r, "main", "miss", 3, NULL, id2));
    ASSERT_STREQ(id, id2);
    ASSERT_OK(part(r, "miss", 2, 3, rows_set(6, 10, 0), 0, id2));
    ASSERT_STREQ(id, id2);
    /* a finished transaction is no longer pending */
    memset(&p, 0, sizeof p);
    ASSERT_OK(wv_repo_list_pending(r, pend_cb, &p));
    for (int i = 0; i < 1; i++)
        ASSERT(strcmp(p.txn, "miss") != 0 || p.n == 0);
    /* gc past the timeout removes the orphans, and counts them */
    sleep(2);
    memset(&p, 0, sizeof p);
    ASSERT_OK(wv_repo_list_pending(r, pend_cb, &p));
    ASSERT(p.n > 0);
    go.pending_timeout = 1;
    wv_gc_stats gs;
    go.dry_run = 1;
    ASSERT_OK(wv_repo_gc(r, &go, &gs));
    ASSERT_EQ(gs.pending_removed, (uint64_t)p.n);
    go.dry_run = 0;
    ASSERT_OK(wv_repo_gc(r, &go, &gs));
    ASSERT_EQ(gs.pending_removed, (uint64_t)p.n);
    memset(&p, 0, sizeof p);
    ASSERT_OK(wv_repo_list_pending(r, pend_cb, &p));
    ASSERT_EQ(p.n, 0);
    ASSERT_OK(wv_repo_checkout(r, "latest", NULL, &m));
    wv_model_free(m);
    wv_verify_stats vs;
    memset(&vs, 0, sizeof vs);
    ASSERT_OK(wv_repo_verify(r, NULL, NULL, &vs));
    /* bad arguments */
    ASSERT_EQ(wv_repo_finish(r, "main", "a/b", 2, NULL, id), WV_MISUSE);
    ASSERT_EQ(wv_repo_finish(r, "main", "ok", 0, NULL, id), WV_MISUSE);
    ASSERT_EQ(part(r, "ok", 2, 2, rows_set(0, 10, 0), 0, id), WV_MISUSE);
    wv_repo_close(r);
}

TEST_IMPL(dist_region_api)
{
    wv_model *m;
    ASSERT_OK(wv_model_new(&m));
    float w[6] = {0};
    uint64_t shp[2] = {2, 3}, g[2] = {4, 3}, off[2] = {2, 0};
    ASSERT_OK(wv_model_add(m, "w", WV_F32, 2, shp, w, sizeof w, WV_DATA_COPY));
    const uint64_t *gs = NULL, *os = NULL;
    ASSERT_EQ(wv_tensor_region(wv_model_find(m, "w"), &gs, &os), 0);
    ASSERT_EQ(wv_model_set_region(m, "nope", g, off), WV_NOTFOUND);
    off[0] = 3;
    ASSERT_EQ(wv_model_set_region(m, "w", g, off), WV_RANGE);
    ASSERT_CONTAINS(wv_model_errmsg(m), "dimension 0");
    off[0] = 2;
    ASSERT_OK(wv_model_set_region(m, "w", g, off));
    ASSERT_EQ(wv_tensor_region(wv_model_find(m, "w"), &gs, &os), 1);
    ASSERT_EQ(gs[0], 4);
    ASSERT_EQ(os[0], 2);
    wv_model_free(m);
}

/* The rejection rules of version-2 manifests and part records
 * (manifest.c), each with its message. */
TEST_IMPL(dist_manifest_malformed)
{
#define H "{\"weightvault_manifest\": 2, \"chunk_size\": 64, \"tensors\": ["
#define C1 "\"" \
    "0000000000000000000000000000000000000000000000000000000000000000\""
    static const struct {
        const char *text, *msg;
    } bad[] = {
        /* shards that overlap, leave a gap, exceed the shape */
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"shards\": [{\"writer\": 0, \"offset\": [0], \"shape\": [3], "
           "\"chunks\": [" C1 "]}, {\"writer\": 1, \"offset\": [2], "
           "\"shape\": [2], \"chunks\": [" C1 "]}]}]}",
         "writers 0 and 1 overlap"},
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"shards\": [{\"writer\": 0, \"offset\": [0], \"shape\": [3], "
           "\"chunks\": [" C1 "]}]}]}",
         "leave a gap"},
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"shards\": [{\"writer\": 0, \"offset\": [2], \"shape\": [4], "
           "\"chunks\": [" C1 "]}]}]}",
         "exceeds the global shape"},
        /* a shard of another rank, with the wrong chunk count, lacking a
         * field, with an unknown one */
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"shards\": [{\"writer\": 0, \"offset\": [0, 0], \"shape\": [4, 1],"
           " \"chunks\": [" C1 "]}]}]}",
         "shard of another rank"},
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"shards\": [{\"writer\": 0, \"offset\": [0], \"shape\": [4], "
           "\"chunks\": [" C1 ", " C1 "]}]}]}",
         "a shard lists 2 chunks"},
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"shards\": [{\"offset\": [0], \"shape\": [4], "
           "\"chunks\": [" C1 "]}]}]}",
         "a shard lacks writer"},
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"shards\": [{\"writer\": 0, \"x\": 1, \"offset\": [0], "
           "\"shape\": [4], \"chunks\": [" C1 "]}]}]}",
         "unknown or repeated field \"x\" in a shard"},
        /* chunks and shards both; an empty list of shards */
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"chunks\": [" C1 "], \"shards\": []}]}",
         "chunks and shards"},
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"shards\": []}]}",
         "an empty list of shards"},
        /* writers unsorted, out of range */
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"writers\": [1, 0], \"chunks\": [" C1 "]}]}",
         "unsorted writer index"},
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"writers\": [70000], \"chunks\": [" C1 "]}]}",
         "bad or unsorted writer index"},
        /* regions: of another rank, past the global shape */
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"region\": {\"global\": [8, 1], \"offset\": [0, 0]}, "
           "\"chunks\": [" C1 "]}]}",
         "a region of another rank"},
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"region\": {\"global\": [6], \"offset\": [3]}, "
           "\"chunks\": [" C1 "]}]}",
         "exceeds its global shape"},
        /* the part member: bad txn, writer out of range, missing field */
        {"{\"weightvault_manifest\": 2, \"chunk_size\": 64, \"part\": "
         "{\"txn\": \"a/b\", \"writer\": 0, \"n_writers\": 1}, "
         "\"tensors\": []}",
         "bad transaction name"},
        {"{\"weightvault_manifest\": 2, \"chunk_size\": 64, \"part\": "
         "{\"txn\": \"t\", \"writer\": 2, \"n_writers\": 2}, "
         "\"tensors\": []}",
         "writer index is out of range"},
        {"{\"weightvault_manifest\": 2, \"chunk_size\": 64, \"part\": "
         "{\"txn\": \"t\", \"writer\": 0}, \"tensors\": []}",
         "the part lacks txn"},
        /* parts: not hex */
        {"{\"weightvault_manifest\": 2, \"chunk_size\": 64, \"parts\": "
         "[\"zz\"], \"tensors\": []}",
         "bad part name"},
        /* a region in a checkpoint; shards in a part record */
        {H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4,"
           " \"region\": {\"global\": [8], \"offset\": [0]}, "
           "\"chunks\": [" C1 "]}]}",
         "a checkpoint's tensor has a region"},
        {"{\"weightvault_manifest\": 2, \"chunk_size\": 64, \"part\": "
         "{\"txn\": \"t\", \"writer\": 0, \"n_writers\": 1}, "
         "\"tensors\": [{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], "
         "\"nbytes\": 4, \"shards\": [{\"writer\": 0, \"offset\": [0], "
         "\"shape\": [4], \"chunks\": [" C1 "]}]}]}",
         "a part record's tensor has shards"},
        /* the version and the fields disagree */
        {"{\"weightvault_manifest\": 1, \"chunk_size\": 64, \"tensors\": "
         "[{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], \"nbytes\": 4, "
         "\"writers\": [0], \"chunks\": [" C1 "]}]}",
         "manifest version 1 does not fit its fields"},
        {"{\"weightvault_manifest\": 2, \"chunk_size\": 64, "
         "\"tensors\": []}",
         "manifest version 2 does not fit its fields"},
        /* a version this build does not know */
        {"{\"weightvault_manifest\": 3, \"chunk_size\": 64, "
         "\"tensors\": []}",
         "manifest version 3 is not supported"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct wv__err err = {0};
        struct wv__manifest mf;
        int rc = wv__manifest_parse(bad[i].text, strlen(bad[i].text), "m",
                                    &mf, &err);
        if (rc == WV_OK)
            WVT_FAIL("case %zu parsed", i);
        if (strstr(err.msg, bad[i].msg) == NULL)
            WVT_FAIL("case %zu: \"%s\" lacks \"%s\"", i, err.msg,
                     bad[i].msg);
    }
    /* a good one round-trips to the same bytes */
    const char *good =
        H "{\"name\": \"w\", \"dtype\": \"U8\", \"shape\": [4], "
          "\"nbytes\": 4, \"writers\": [0, 1], \"shards\": [{\"writer\": 0, "
          "\"offset\": [0], \"shape\": [1], \"chunks\": [" C1 "]}, "
          "{\"writer\": 1, \"offset\": [1], \"shape\": [3], \"chunks\": "
          "[" C1 "]}]}]}";
    struct wv__err err = {0};
    struct wv__manifest mf, mf2;
    struct wv__buf b = {0}, b2 = {0};
    ASSERT_OK(wv__manifest_parse(good, strlen(good), "m", &mf, &err));
    ASSERT_EQ(mf.tensors[0].n_shards, 2);
    ASSERT_EQ(wv__mtensor_chunk_len(&mf.tensors[0], 64, 1), 3);
    ASSERT_OK(wv__manifest_encode(&mf, &b));
    ASSERT_OK(wv__manifest_parse(b.p, b.len, "m", &mf2, &err));
    ASSERT_OK(wv__manifest_encode(&mf2, &b2));
    ASSERT_EQ(b.len, b2.len);
    ASSERT_MEMEQ(b.p, b2.p, b.len);
    ASSERT_CONTAINS(b.p, "\"weightvault_manifest\": 2");
    wv__manifest_release(&mf);
    wv__manifest_release(&mf2);
    wv__buf_release(&b);
    wv__buf_release(&b2);
#undef H
#undef C1
}

#ifdef WV_HAVE_CRYPTO
/* An encrypted repository whose trusted key signs: every writer opens it
 * with the passphrase, the part folders are keyed hashes (no branch or
 * transaction name in the store), the finisher signs, and the checkpoint
 * checks out under the signature policy. */
TEST_IMPL(dist_encrypted_signed)
{
    char url[1100], key[1100], pub[1200], eb[WV_ERRBUF_SIZE] = "";
    char id[WV_ID_HEX], cmd[3000];
    snprintf(url, sizeof url, "%s/enc", wvtest_tmpdir());
    snprintf(key, sizeof key, "%s/signer", wvtest_tmpdir());
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.encrypt = 1;
    io.passphrase = "dist pass";
    io.errbuf = eb;
    io.errbuf_size = sizeof eb;
    ASSERT_OK(wv_repo_init(url, &io));
    ASSERT_OK(wv_keygen(key, eb, sizeof eb));
    snprintf(pub, sizeof pub, "%s.pub", key);
    wv_open_opts oo = WV_OPEN_OPTS_INIT;
    oo.passphrase = "dist pass";
    wv_repo *r = NULL, *r2 = NULL;
    ASSERT_OK(wv_repo_open_ex(url, &oo, &r));
    ASSERT_OK(wv_repo_open_ex(url, &oo, &r2));
    ASSERT_OK(wv_repo_trust_add(r, pub, "ci", NULL));
    snprintf(key, sizeof key, "%s/signer.key", wvtest_tmpdir());
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.sign_key = key;
    wv_part_opts po = WV_PART_OPTS_INIT;
    po.txn = "secret-step";
    po.n_writers = 2;
    wv_model *m = rows_set(0, 7, 0);
    ASSERT_EQ(wv_repo_commit_part(r, m, "main", &po, &co, id), WV_BUSY);
    wv_model_free(m);
    /* no name in the clear */
    snprintf(cmd, sizeof cmd,
             "find '%s/parts' -type f | grep -q -e secret-step -e /main/",
             url);
    ASSERT(system(cmd) != 0);
    snprintf(cmd, sizeof cmd,
             "find '%s/parts' -type f | grep -Eq '/parts/[0-9a-f]{32}/0$'",
             url);
    ASSERT_OK(system(cmd));
    struct pend p;
    memset(&p, 0, sizeof p);
    ASSERT_OK(wv_repo_list_pending(r2, pend_cb, &p));
    ASSERT_EQ(p.n, 1);
    ASSERT_STREQ(p.txn, "secret-step");
    po.writer = 1;
    m = rows_set(7, 10, 0);
    ASSERT_OK(wv_repo_commit_part(r2, m, "main", &po, &co, id));
    wv_model_free(m);
    wv_checkpoint *c = NULL;
    ASSERT_OK(wv_repo_stat(r, "latest", &c));
    ASSERT_STREQ(wv_checkpoint_id(c), id);
    ASSERT(wv_checkpoint_signer(c)[0] != '\0');
    ASSERT_EQ(wv_checkpoint_tensor_shards(c, 0), 2);
    wv_checkpoint_free(c);
    ASSERT_OK(wv_repo_checkout(r, "latest", NULL, &m));
    const wv_tensor *t = wv_model_find(m, "w");
    ASSERT_NOT_NULL(t);
    for (int i = 0; i < 40; i++)
        ASSERT_EQ((int)((const float *)wv_tensor_data(t))[i], i);
    wv_model_free(m);
    wv_verify_stats vs;
    memset(&vs, 0, sizeof vs);
    ASSERT_OK(wv_repo_verify(r, NULL, NULL, &vs));
    wv_repo_close(r);
    wv_repo_close(r2);
}
#endif

/* Regions of very different sizes: writer 0 stores one row (one 4 KiB
 * chunk), writer 1 the other 63 (63 chunks). The finish gathers their chunk ids
 * into one growing array, and gc the ids of pending parts: both must grow
 * it to the whole count, not by one doubling (which overran the heap). */
TEST_IMPL(dist_uneven_regions)
{
    char url[1100], id[WV_ID_HEX], msg[256];
    snprintf(url, sizeof url, "%s/uneven", wvtest_tmpdir());
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = 4096;
    ASSERT_OK(wv_repo_init(url, &io));
    wv_repo *r = NULL;
    ASSERT_OK(wv_repo_open(url, msg, sizeof msg, &r));
    static float g[64 * 1024];
    for (int i = 0; i < 64 * 1024; i++)
        g[i] = (float)i;
    const uint64_t gs[2] = {64, 1024};
    for (uint32_t w = 0; w < 2; w++) {
        wv_model *m;
        uint64_t off[2] = {w ? 1 : 0, 0}, shp[2] = {w ? 63 : 1, 1024};
        ASSERT_OK(wv_model_new(&m));
        ASSERT_OK(wv_model_add(m, "w", WV_F32, 2, shp, g + off[0] * 1024,
                               shp[0] * 4096, WV_DATA_COPY));
        ASSERT_OK(wv_model_set_region(m, "w", gs, off));
        if (w == 0) {
            /* pending: gc keeps its chunk and reads the part once */
            ASSERT_EQ(part(r, "uneven", 0, 2, m, 1, id), WV_BUSY);
            wv_gc_stats st;
            ASSERT_OK(wv_repo_gc(r, NULL, &st));
            ASSERT_EQ(st.live_chunks, 1);
        } else {
            ASSERT_OK(part(r, "uneven", 1, 2, m, 0, id));
        }
    }
    wv_checkpoint *c = NULL;
    ASSERT_OK(wv_repo_stat(r, id, &c));
    ASSERT_EQ(wv_checkpoint_tensor_shards(c, 0), 2);
    wv_checkpoint_free(c);
    wv_model *m = NULL;
    ASSERT_OK(wv_repo_checkout(r, id, NULL, &m));
    const wv_tensor *t = wv_model_find(m, "w");
    ASSERT_NOT_NULL(t);
    ASSERT_MEMEQ(wv_tensor_data(t), g, sizeof g);
    wv_model_free(m);
    wv_repo_close(r);
}

/* The done marker of a finished transaction ("<64 hex> <time>\n"): what
 * the parser takes and refuses, and a damaged one in a repository: a
 * writer of that transaction gets one line naming it, and gc removes it
 * (it answers no one). */
TEST_IMPL(dist_done_marker)
{
#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    char id[65];
    int64_t when;
    ASSERT_OK(wv__part_done_parse(ID " 2026-12-07T12:36:07Z\n", 86, id,
                                  &when));
    ASSERT_STREQ(id, ID);
    ASSERT_EQ(when, 1796646967);
    ASSERT_OK(wv__part_done_parse(ID " not a time\n", 77, id, &when));
    ASSERT_EQ(when, -1);
    static const char *const bad[] = {
        "", "0123", ID "x 2026-12-07T12:36:07Z\n",
        "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (wv__part_done_parse(bad[i], strlen(bad[i]), id, &when) == 0)
            WVT_FAIL("marker %zu parsed", i);

    char url[1100], dir[1200], path[1300], rid[WV_ID_HEX];
    wv_repo *r = fresh("donemark");
    ASSERT_NOT_NULL(r);
    snprintf(url, sizeof url, "%s/donemark", wvtest_tmpdir());
    snprintf(dir, sizeof dir, "%s/parts/main/t1", url);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    ASSERT_OK(system(cmd));
    snprintf(path, sizeof path, "%s/done", dir);
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fputs(ID "x 2026-12-07T12:36:07Z\n", f);
    fclose(f);
    ASSERT_EQ(part(r, "t1", 0, 2, rows_set(0, 5, 0), 0, rid), WV_CORRUPT);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "parts/main/t1/done is damaged");
    ASSERT(strchr(wv_repo_errmsg(r), '\n') == NULL);
    ASSERT_OK(wv_repo_gc(r, NULL, NULL));
    ASSERT(access(path, F_OK) != 0);
    wv_repo_close(r);
#undef ID
}

/* ---- asynchronous parts ---------------------------------------------------- */

/* 4 forked writers each start their part with wv_repo_commit_part_async
 * (writers 0 and 2 staging a copy, then scribbling over their own set
 * before the part is done; 1 and 3 handing theirs over), then wait: the
 * finished checkpoint reads back bit-identical, every handle reports the
 * part's outcome (WV_OK with the id, or WV_BUSY with ""), and the id all
 * the WV_OK ones report is the branch's. */
TEST_IMPL(dist_async)
{
    char url[1100], msg[256], id[WV_ID_HEX];
    wv_repo *r = NULL;
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = 4096;
    make_globals(7);
    snprintf(url, sizeof url, "%s/async", wvtest_tmpdir());
    ASSERT_OK(wv_repo_init(url, &io));
    int fd[2];
    ASSERT_OK(pipe(fd));
    pid_t pid[NW];
    for (int w = 0; w < NW; w++) {
        pid[w] = fork();
        ASSERT(pid[w] >= 0);
        if (pid[w] != 0)
            continue;
        close(fd[0]);
        wv_repo *wr = NULL;
        wv_commit_handle *h = NULL;
        char got[WV_ID_HEX] = "x";
        int ok = wv_repo_open(url, msg, sizeof msg, &wr) == WV_OK;
        wv_model *m = ok ? writer_set(w) : NULL;
        wv_part_opts po = WV_PART_OPTS_INIT;
        po.txn = "step-9";
        po.writer = (uint32_t)w;
        po.n_writers = NW;
        bool copy = w % 2 == 0;
        if (m == NULL ||
            wv_repo_commit_part_async(wr, m, "main", &po, NULL,
                                      copy ? WV_ASYNC_COPY : WV_ASYNC_TAKE,
                                      &h) != WV_OK) {
            fprintf(stderr, "writer %d: %s\n", w,
                    wr ? wv_repo_errmsg(wr) : msg);
            _exit(1);
        }
        if (copy) { /* the staged copy is what gets stored */
            for (size_t i = 0; i < wv_model_count(m); i++) {
                const wv_tensor *t = wv_model_tensor(m, i);
                memset((void *)wv_tensor_data(t), 0xA5, wv_tensor_nbytes(t));
            }
            wv_model_free(m);
        }
        int rc = wv_commit_wait(h, got);
        if (rc != WV_OK && rc != WV_BUSY)
            fprintf(stderr, "writer %d: %s\n", w, wv_commit_errmsg(h));
        /* WV_OK: the checkpoint's id; WV_BUSY: none yet */
        bool good = (rc == WV_OK && strlen(got) == 64) ||
                    (rc == WV_BUSY && got[0] == '\0');
        if (rc == WV_OK && write(fd[1], got, 64) != 64)
            good = false;
        wv_commit_free(h);
        wv_repo_close(wr);
        _exit(good ? 0 : 1);
    }
    close(fd[1]);
    int bad = 0;
    for (int w = 0; w < NW; w++) {
        int st = 0;
        waitpid(pid[w], &st, 0);
        bad += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    ASSERT_EQ(bad, 0);
    /* the ids reported by the writers that saw the checkpoint */
    char ids[NW * 64 + 1];
    ssize_t k, n = 0;
    while ((k = read(fd[0], ids + n, sizeof ids - 1 - (size_t)n)) > 0)
        n += k;
    close(fd[0]);
    ASSERT(n >= 64 && n % 64 == 0);
    ASSERT_OK(wv_repo_open(url, msg, sizeof msg, &r));
    ASSERT_OK(wv_repo_resolve(r, "main", id));
    for (ssize_t i = 0; i < n; i += 64)
        ASSERT(memcmp(ids + i, id, 64) == 0);
    wv_model *m = NULL;
    ASSERT_OK(wv_repo_checkout(r, "main", NULL, &m));
    ASSERT(same_as_globals(m));
    wv_model_free(m);
    for (int j = 3; j <= 8; j += 5)
        ASSERT(read_regions(r, id, j, 1));
    wv_repo_close(r);
}

/* An asynchronous part's wrong arguments are refused at once, with a
 * message; an error of the part itself (another part of the same writer
 * with other bytes) comes through the handle. */
TEST_IMPL(dist_async_errors)
{
    char id[WV_ID_HEX];
    wv_commit_handle *h = NULL;
    wv_repo *r = fresh("asyncerr");
    ASSERT_NOT_NULL(r);
    wv_part_opts po = WV_PART_OPTS_INIT;
    wv_model *m = rows_set(0, 5, 0);
    po.txn = "bad/name";
    po.n_writers = 2;
    ASSERT_EQ(wv_repo_commit_part_async(r, m, "main", &po, NULL,
                                        WV_ASYNC_COPY, &h),
              WV_MISUSE);
    ASSERT(h == NULL);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "not a valid transaction name");
    po.txn = "t1";
    po.writer = 2;
    ASSERT_EQ(wv_repo_commit_part_async(r, m, "main", &po, NULL,
                                        WV_ASYNC_COPY, &h),
              WV_MISUSE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "writer index 2 is not below");
    /* writer 0's part, then another one with other bytes */
    po.writer = 0;
    ASSERT_OK(wv_repo_commit_part_async(r, m, "main", &po, NULL,
                                        WV_ASYNC_COPY, &h));
    ASSERT_EQ(wv_commit_wait(h, id), WV_BUSY);
    ASSERT_STREQ(id, "");
    wv_commit_free(h);
    wv_model_free(m);
    ASSERT_OK(wv_repo_commit_part_async(r, rows_set(0, 5, 1), "main", &po,
                                        NULL, WV_ASYNC_TAKE, &h));
    ASSERT_EQ(wv_commit_wait(h, id), WV_CONFLICT);
    ASSERT_CONTAINS(wv_commit_errmsg(h), "already exists with other content");
    wv_commit_free(h);
    /* writer 1 completes it */
    po.writer = 1;
    ASSERT_OK(wv_repo_commit_part_async(r, rows_set(5, 10, 0), "main", &po,
                                        NULL, WV_ASYNC_TAKE, &h));
    ASSERT_OK(wv_commit_wait(h, id));
    ASSERT_EQ(strlen(id), 64);
    wv_commit_free(h);
    char head[WV_ID_HEX];
    ASSERT_OK(wv_repo_resolve(r, "main", head));
    ASSERT_STREQ(head, id);
    wv_repo_close(r);
}
