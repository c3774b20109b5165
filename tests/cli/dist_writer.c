/*
 * dist_writer.c -- the writer and checker of tests/cli/dist.sh (issue 16),
 * on the public API only.
 *
 *   dist_writer write REPO TXN WRITER N SEED   commit writer WRITER's part
 *       of a checkpoint of N writers (row-, column- and block-sharded
 *       tensors, replicated ones), its bytes a function of SEED; exit 0
 *       finished (the id on stdout), 10 parts still missing, 1 error
 *   dist_writer check REPO N                   check out @latest and
 *       compare every tensor with the globals of the seed in its metadata
 *       (exit 0 equal, 1 not, 2 no checkpoint yet); then read a region of
 *       every tensor per reader for 3 readers and compare
 */
#include "weightvault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gt {
    const char *name;
    wv_dtype dt;
    int ndim;
    uint64_t shape[2];
    size_t es;
    char how; /* r rows, c columns, b blocks, R replicated, 0 writer 0 */
};

static const struct gt G[] = {
    {"emb.weight", WV_F32, 2, {512, 64}, 4, 'r'},
    {"proj.weight", WV_F32, 2, {96, 256}, 4, 'c'},
    {"attn.block", WV_F16, 2, {64, 80}, 2, 'b'},
    {"proj.bias", WV_F32, 1, {256, 0}, 4, 'R'},
    {"step", WV_I64, 0, {0, 0}, 8, '0'},
};
#define NG (sizeof G / sizeof G[0])

static size_t numel(int nd, const uint64_t *s)
{
    size_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= s[d];
    return n;
}

/* Byte k of global tensor i under seed. */
static unsigned char gbyte(unsigned seed, size_t i, size_t k)
{
    return (unsigned char)(((k + 1) * 2654435761u + seed * 97u + i) >> 13);
}

/* The box (off, shp) of global i, row-major. */
static void box(unsigned seed, size_t i, const uint64_t *off,
                const uint64_t *shp, unsigned char *out)
{
    const struct gt *g = &G[i];
    size_t n = numel(g->ndim, shp), o = 0;
    for (size_t e = 0; e < n; e++) {
        size_t gi = 0, rem = e;
        for (int d = g->ndim - 1; d >= 0; d--) {
            size_t c = rem % shp[d];
            rem /= shp[d];
            size_t stride = 1;
            for (int k = d + 1; k < g->ndim; k++)
                stride *= g->shape[k];
            gi += (off[d] + c) * stride;
        }
        for (size_t b = 0; b < g->es; b++)
            out[o++] = gbyte(seed, i, gi * g->es + b);
    }
}

static int region_of(const struct gt *g, int w, int nw, uint64_t *off,
                     uint64_t *shp)
{
    off[0] = off[1] = 0;
    shp[0] = g->shape[0];
    shp[1] = g->shape[1];
    switch (g->how) {
    case 'r':
        off[0] = g->shape[0] * (uint64_t)w / (uint64_t)nw;
        shp[0] = g->shape[0] * (uint64_t)(w + 1) / (uint64_t)nw - off[0];
        return 1;
    case 'c':
        off[1] = g->shape[1] * (uint64_t)w / (uint64_t)nw;
        shp[1] = g->shape[1] * (uint64_t)(w + 1) / (uint64_t)nw - off[1];
        return 1;
    case 'b': /* rows split between halves of the writers, columns in two */
        if (nw == 1)
            return 1;
        {
            int half = nw / 2, rw = w % half, cw = w / half;
            if (w >= 2 * half) /* odd count: the last one has nothing */
                return 0;
            off[0] = g->shape[0] * (uint64_t)rw / (uint64_t)half;
            shp[0] = g->shape[0] * (uint64_t)(rw + 1) / (uint64_t)half -
                     off[0];
            off[1] = g->shape[1] * (uint64_t)cw / 2;
            shp[1] = g->shape[1] * (uint64_t)(cw + 1) / 2 - off[1];
        }
        return 1;
    case 'R':
        return 1;
    default:
        return w == 0;
    }
}

static int do_write(const char *url, const char *txn, int w, int nw,
                    unsigned seed)
{
    wv_repo *r = NULL;
    wv_model *m = NULL;
    char msg[256], id[WV_ID_HEX], sv[32];
    if (wv_repo_open(url, msg, sizeof msg, &r) != WV_OK) {
        fprintf(stderr, "dist_writer: %s\n", msg);
        return 1;
    }
    if (wv_model_new(&m) != WV_OK)
        return 1;
    for (size_t i = 0; i < NG; i++) {
        uint64_t off[2], shp[2];
        if (!region_of(&G[i], w, nw, off, shp))
            continue;
        size_t n = numel(G[i].ndim, shp) * G[i].es;
        unsigned char *b = wv_malloc(n ? n : 1);
        box(seed, i, off, shp, b);
        if (wv_model_add(m, G[i].name, G[i].dt, G[i].ndim, shp, b, n,
                         WV_DATA_TAKE) != WV_OK ||
            (G[i].how != 'R' && G[i].how != '0' &&
             wv_model_set_region(m, G[i].name, G[i].shape, off) != WV_OK)) {
            fprintf(stderr, "dist_writer: %s\n", wv_model_errmsg(m));
            return 1;
        }
    }
    snprintf(sv, sizeof sv, "%u", seed);
    wv_model_set_meta(m, "seed", sv);
    wv_part_opts po = WV_PART_OPTS_INIT;
    po.txn = txn;
    po.writer = (uint32_t)w;
    po.n_writers = (uint32_t)nw;
    int rc = wv_repo_commit_part(r, m, "main", &po, NULL, id);
    if (rc == WV_OK)
        printf("%s\n", id);
    else if (rc != WV_BUSY)
        fprintf(stderr, "dist_writer: writer %d: %s\n", w, wv_repo_errmsg(r));
    wv_model_free(m);
    wv_repo_close(r);
    return rc == WV_OK ? 0 : rc == WV_BUSY ? 10 : 1;
}

static int do_check(const char *url, int readers)
{
    wv_repo *r = NULL;
    wv_model *m = NULL;
    char msg[256];
    int bad = 0;
    if (wv_repo_open(url, msg, sizeof msg, &r) != WV_OK) {
        fprintf(stderr, "dist_writer: %s\n", msg);
        return 1;
    }
    int rc = wv_repo_checkout(r, "latest", NULL, &m);
    if (rc == WV_NOTFOUND) {
        wv_repo_close(r);
        return 2;
    }
    if (rc != WV_OK) {
        fprintf(stderr, "dist_writer: checkout: %s\n", wv_repo_errmsg(r));
        return 1;
    }
    const char *sv = wv_model_get_meta(m, "seed");
    if (sv == NULL) { /* the first, empty checkpoint */
        bad = wv_model_count(m) != 0;
        goto out;
    }
    unsigned seed = (unsigned)strtoul(sv, NULL, 10);
    if (wv_model_count(m) != NG) {
        fprintf(stderr, "dist_writer: @latest has %zu tensors, not %zu\n",
                wv_model_count(m), NG);
        bad = 1;
    }
    for (size_t i = 0; i < NG && !bad; i++) {
        const wv_tensor *t = wv_model_find(m, G[i].name);
        uint64_t zero[2] = {0, 0};
        size_t n = numel(G[i].ndim, G[i].shape) * G[i].es;
        unsigned char *want = malloc(n + 1), *got = malloc(n + 1);
        box(seed, i, zero, G[i].shape, want);
        if (t == NULL || wv_tensor_nbytes(t) != n ||
            memcmp(wv_tensor_data(t), want, n) != 0) {
            fprintf(stderr, "dist_writer: tensor %s of @latest differs\n",
                    G[i].name);
            bad = 1;
        }
        /* each reader's rows */
        for (int k = 0; k < readers && !bad && G[i].ndim > 0; k++) {
            uint64_t off[2] = {0, 0}, shp[2] = {0, G[i].shape[1]};
            off[0] = G[i].shape[0] * (uint64_t)k / (uint64_t)readers;
            shp[0] = G[i].shape[0] * (uint64_t)(k + 1) / (uint64_t)readers -
                     off[0];
            size_t rn = numel(G[i].ndim, shp) * G[i].es;
            box(seed, i, off, shp, want);
            if (wv_repo_read_region(r, "latest", G[i].name, G[i].ndim, off,
                                    shp, got, rn) != WV_OK ||
                memcmp(got, want, rn) != 0) {
                fprintf(stderr, "dist_writer: region %d/%d of %s: %s\n", k,
                        readers, G[i].name, wv_repo_errmsg(r));
                bad = 1;
            }
        }
        free(want);
        free(got);
    }
out:
    wv_model_free(m);
    wv_repo_close(r);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "write") == 0)
        return do_write(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]),
                        (unsigned)strtoul(argv[6], NULL, 10));
    if (argc == 4 && strcmp(argv[1], "check") == 0)
        return do_check(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: dist_writer write REPO TXN WRITER N SEED\n"
                    "       dist_writer check REPO READERS\n");
    return 2;
}
