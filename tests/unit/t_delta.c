/*
 * t_delta.c -- delta chunks (codec 3) against the parent checkpoint: the
 * codec's round trip and damage, chains bounded by the keyframe interval
 * (every checkpoint of a long run reads back, no chain longer than K-1),
 * keyframes, --no-delta, gc after a prune keeps the bases kept
 * checkpoints need (also through a repack), verify names a broken base,
 * an encrypted repository, and sync (push into a new repository; refused
 * into one whose format has no deltas), and index entries of deltas;
 * zstd's frame checksum by which a commit checks the bases it reads.
 */
#include "codec.h"
#include "repo.h"
#include "wvsets.h"
#include "wvtest.h"

#include <fcntl.h>
#include <unistd.h>

/* A training-like step: n F32 weights of tensor i, every one moved a
 * little at every step (w += 1e-3 * pseudo-random), from a fixed start. */
static wv_model *step_set(int n_tensors, size_t elems, int step)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    for (int t = 0; t < n_tensors; t++) {
        float *w = wv_malloc(elems * 4);
        uint32_t x = 12345u + (uint32_t)t * 7919u;
        for (size_t j = 0; j < elems; j++) {
            x = x * 1664525u + 1013904223u;
            float v = ((float)(x >> 8) / 16777216.0f - 0.5f) * 0.1f;
            uint32_t y = x ^ 0x9e3779b9u;
            for (int s = 1; s <= step; s++) {
                y = y * 1664525u + 1013904223u;
                v += ((float)(y >> 8) / 16777216.0f - 0.5f) * 1e-3f;
            }
            w[j] = v;
        }
        char name[16];
        snprintf(name, sizeof name, "w%d", t);
        uint64_t shape[1] = {elems};
        wv_model_add(m, name, WV_F32, 1, shape, w, elems * 4, WV_DATA_TAKE);
    }
    return m;
}

static int reads_back(wv_repo *r, const char *ref, const wv_model *m)
{
    wv_model *back = NULL;
    if (wv_repo_checkout(r, ref, NULL, &back) != WV_OK)
        return 0;
    int ok = wvf_same(m, back, WVF_BY_NAME);
    wv_model_free(back);
    return ok;
}

static int make_repo(const char *dir, int keyframe, int encrypt)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = 16 << 10;
    io.pack_size = 1 << 20;
    io.delta_keyframe = keyframe;
    io.encrypt = encrypt;
    io.passphrase = encrypt ? "delta test" : NULL;
    return wv_repo_init(dir, &io);
}

static int open_repo(const char *dir, int encrypt, wv_repo **r)
{
    wv_open_opts oo = WV_OPEN_OPTS_INIT;
    oo.passphrase = encrypt ? "delta test" : NULL;
    return wv_repo_open_ex(dir, &oo, r);
}

/* Flip a bit of byte off of object key in the local repository at dir;
 * false if it cannot. */
static bool flip_stored_byte(const char *dir, const char *key, uint64_t off)
{
    char path[800];
    unsigned char byte = 0;
    snprintf(path, sizeof path, "%s/%s", dir, key);
    int fd = open(path, O_RDWR);
    bool ok = fd >= 0 && pread(fd, &byte, 1, (off_t)off) == 1;
    byte ^= 0x40;
    ok = ok && pwrite(fd, &byte, 1, (off_t)off) == 1;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Delta chunks in the index, and the longest chain among the chunks of
 * checkpoint `ref`. */
struct chains {
    size_t deltas, whole;
    int longest;
    int depth_of_first; /* of the first chunk of the first tensor */
    unsigned char first[32], base_of_first[32]; /* its id, its base's */
};

static int count_chains(wv_repo *r, const char *ref, struct chains *c)
{
    char id[65];
    struct wv__manifest mf;
    memset(c, 0, sizeof *c);
    memset(&mf, 0, sizeof mf);
    if (wv__repo_load_index(r) != WV_OK ||
        wv__repo_resolve(r, ref, id) != WV_OK ||
        wv__manifest_load(r, id, &mf) != WV_OK)
        return -1;
    struct wv__chain ch = {.r = r, .x = &r->cidx};
    for (size_t t = 0; t < mf.n_tensors; t++)
        for (size_t k = 0; k < mf.tensors[t].n_chunks; k++) {
            int d = wv__chain_depth(&ch, mf.tensors[t].chunks[k]);
            if (d < 0) {
                wv__manifest_release(&mf);
                return -1;
            }
            if (t == 0 && k == 0) {
                const struct wv__chunk_loc *l =
                    wv__cidx_get(&r->cidx, mf.tensors[t].chunks[k]);
                c->depth_of_first = d;
                memcpy(c->first, mf.tensors[t].chunks[k], 32);
                if (d > 0)
                    memcpy(c->base_of_first, l->base, 32);
            }
            if (d > c->longest)
                c->longest = d;
            if (d > 0)
                c->deltas++;
            else
                c->whole++;
        }
    wv__manifest_release(&mf);
    return 0;
}

/* The entropy estimate that weighs a delta against the whole encoding
 * (commit.c): zero for constant planes and for a chunk XOR itself, about
 * 8 bits a byte for random bytes, per plane (a random low byte under a
 * constant high byte: about 8 bits per element of 2), the bytes past the
 * last whole element at 8 bits; and it orders a small XOR change below
 * the whole chunk, which is what the commit asks of it. */
TEST_IMPL(delta_estimate)
{
    enum { N = 1 << 16 };
    unsigned char *p = wv_malloc(N + 1), *q = wv_malloc(N + 1);
    ASSERT(p && q);
    uint32_t x = 12345u;
    for (size_t i = 0; i < N + 1; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (unsigned char)(x >> 24);
    }
    double r = wv__codec_estimate(1, p, NULL, N);
    ASSERT(r > 7.9 * N && r <= 8.0 * N);
    ASSERT(wv__codec_estimate(4, p, p, N) == 0);
    memset(q, 0x3f, N + 1);
    ASSERT(wv__codec_estimate(4, q, NULL, N) == 0);
    ASSERT(wv__codec_estimate(4, q, NULL, N + 1) == 8); /* the tail byte */
    for (size_t i = 0; i < N; i += 2)
        q[i] = p[i]; /* random low bytes, constant high */
    r = wv__codec_estimate(2, q, NULL, N);
    ASSERT(r > 7.9 * (N / 2) && r <= 8.0 * (N / 2));
    /* floats that moved a little: the XOR against the old is smaller */
    float *a = (float *)(void *)p, *b = (float *)(void *)q;
    for (size_t i = 0; i < N / 4; i++) {
        x = x * 1664525u + 1013904223u;
        a[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * 0.1f;
        b[i] = a[i] * (1.0f + 1e-4f * (float)((x >> 4) & 15));
    }
    double whole = wv__codec_estimate(4, q, NULL, N);
    double delta = wv__codec_estimate(4, q, p, N);
    ASSERT(delta < whole * 0.8);
    wv_free(p);
    wv_free(q);
}

/* Byte grouping against its definition (plane j holds byte j of every
 * element, the bytes past the last whole element follow as they are):
 * 2- and 4-byte elements go 16 at a time (SSE2) then one by one, so every
 * count of elements around 16 and 32 and every tail, for the plain
 * grouping and the delta's XOR grouped in the same pass (against a base
 * in plaintext or one grouped already, the same frame); a round trip
 * alone would pass a grouping that is wrong both ways, and the stored
 * format is the definition's. */
TEST_IMPL(delta_group_definition)
{
    enum { MAXN = 40 * 8 + 7 };
    unsigned char a[MAXN], b[MAXN], x[MAXN], want[MAXN], got[MAXN],
        back[MAXN], z[1024];
    struct wv__codec_ws *ws = NULL;
    ASSERT_OK(wv__codec_ws_new(MAXN, &ws));
    uint32_t st = 99;
    for (size_t i = 0; i < MAXN; i++) {
        st = st * 1664525u + 1013904223u;
        a[i] = (unsigned char)(st >> 24);
        b[i] = (unsigned char)(i % 16 ? a[i] : a[i] ^ (st >> 16));
        x[i] = (unsigned char)(a[i] ^ b[i]);
    }
    static const unsigned ks[] = {2, 3, 4, 8};
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        unsigned k = ks[ki];
        size_t n_delta = 0; /* of 16 elements or more */
        for (size_t n = k; n <= MAXN && n / k <= 40; n++) {
            size_t m = n / k;
            for (size_t i = 0; i < m; i++)
                for (unsigned j = 0; j < k; j++)
                    want[j * m + i] = a[i * k + j];
            memcpy(want + m * k, a + m * k, n - m * k);
            memset(got, 0xa5, sizeof got);
            wv__codec_group(a, n, k, got);
            if (memcmp(got, want, n) != 0)
                fprintf(stderr, "group: %u-byte elements, %zu bytes\n", k,
                        n);
            ASSERT_MEMEQ(got, want, n);
            wv__codec_ungroup(want, n, k, back);
            ASSERT_MEMEQ(back, a, n);
            /* the delta of b on a: its frame holds the XOR, grouped */
            size_t len = 0;
            int used = -1;
            struct wv__err e = {0};
            ASSERT_OK(wv__codec_encode_delta(1, k, b, a, n, z, sizeof z, ws,
                                             &len, &used, &e));
            if (used != WV__CODEC_DELTA)
                continue; /* stored as is: nothing grouped to check */
            n_delta += m >= 16;
            for (size_t i = 0; i < m; i++)
                for (unsigned j = 0; j < k; j++)
                    want[j * m + i] = x[i * k + j];
            memcpy(want + m * k, x + m * k, n - m * k);
            ASSERT_OK(wv__codec_unzstd(z, len, got, n, ws, &e));
            if (memcmp(got, want, n) != 0)
                fprintf(stderr, "delta: %u-byte elements, %zu bytes\n", k,
                        n);
            ASSERT_MEMEQ(got, want, n);
            /* against the base grouped (a commit's base read back): the
             * same frame, and the same estimate of any slice */
            unsigned char ga[MAXN], z2[1024];
            size_t len2 = 0;
            wv__codec_group(a, n, k, ga);
            ASSERT_OK(wv__codec_encode_delta_grouped(1, k, b, ga, n, z2,
                                                     sizeof z2, ws, &len2,
                                                     &used, &e));
            ASSERT_EQ(used, WV__CODEC_DELTA);
            ASSERT_EQ(len2, len);
            ASSERT_MEMEQ(z2, z, len);
            for (size_t f = 0; f < m; f += 7)
                ASSERT(wv__codec_estimate_grouped(k, b + f * k, ga + f, m,
                                                  (m - f) * k) ==
                       wv__codec_estimate(k, b + f * k, a + f * k,
                                          (m - f) * k));
        }
        ASSERT(n_delta >= 16 * k);
    }
    wv__codec_ws_free(ws);
}

TEST_IMPL(delta_codec_roundtrip)
{
    size_t sizes[4] = {4096, 4099, 3, 65536};
    unsigned elems[3] = {1, 2, 4};
    struct wv__codec_ws *ws = NULL;
    ASSERT_OK(wv__codec_ws_new(65536, &ws));
    for (int si = 0; si < 4; si++)
        for (int ei = 0; ei < 3; ei++) {
            size_t n = sizes[si];
            unsigned char *a = wv_malloc(n), *b = wv_malloc(n),
                          *z = wv_malloc(wv__codec_bound(n)),
                          *o = wv_malloc(n);
            uint32_t x = 7;
            for (size_t i = 0; i < n; i++) {
                x = x * 1664525u + 1013904223u;
                a[i] = (unsigned char)(x >> 24);
                b[i] = (i % 4 == 0) ? (unsigned char)(a[i] ^ 1) : a[i];
            }
            size_t len = 0;
            int used = -1;
            struct wv__err e = {0};
            ASSERT_OK(wv__codec_encode_delta(1, elems[ei], b, a, n, z,
                                             wv__codec_bound(n), ws, &len,
                                             &used, &e));
            if (n >= 4096) {
                ASSERT_EQ(used, WV__CODEC_DELTA);
                ASSERT(len < n / 4);
            }
            if (used == WV__CODEC_DELTA) {
                ASSERT_OK(wv__codec_decode_delta(elems[ei], z, len, a, o, n,
                                                 ws, &e));
                ASSERT_MEMEQ(o, b, n);
                /* A damaged frame or the wrong length is refused. */
                z[len / 2] ^= 0x55;
                int rc = wv__codec_decode_delta(elems[ei], z, len, a, o, n,
                                                ws, &e);
                ASSERT(rc == WV_CORRUPT || memcmp(o, b, n) != 0);
                ASSERT_EQ(wv__codec_decode_delta(elems[ei], z, len, a, o,
                                                 n - 1, ws, &e),
                          WV_CORRUPT);
            }
            wv_free(a);
            wv_free(b);
            wv_free(z);
            wv_free(o);
        }
    wv__codec_ws_free(ws);
}

/* Keyframes every K: seven commits with K = 3 read back, deltas are used,
 * each against the keyframe (one link), and every K-th commit is a
 * keyframe. */
static void chain_case(const char *dir, int encrypt)
{
    enum { K = 3, N = 7 };
    wv_repo *r;
    char ids[N][WV_ID_HEX];
    wv_model *m[N];
    ASSERT_OK(make_repo(dir, K, encrypt));
    ASSERT_OK(open_repo(dir, encrypt, &r));
    ASSERT_EQ(r->cfg.version, encrypt ? 4 : 3);
    ASSERT_EQ(r->cfg.delta_keyframe, K);
    unsigned char key[32]; /* the first chunk of the last keyframe */
    for (int i = 0; i < N; i++) {
        m[i] = step_set(2, 12 * 1024, i); /* 48 KiB: 3 chunks each */
        ASSERT_NOT_NULL(m[i]);
        ASSERT_OK(wv_repo_commit(r, m[i], NULL, NULL, ids[i]));
        struct chains c;
        ASSERT_OK(count_chains(r, ids[i], &c));
        if (i % K == 0)
            memcpy(key, c.first, 32);
        else /* on the keyframe, also two commits on */
            ASSERT_EQ(memcmp(c.base_of_first, key, 32), 0);
        /* every delta is against its keyframe: depths 0 1 1 0 1 1 0 */
        ASSERT(c.longest <= 1);
        ASSERT_EQ(c.depth_of_first, i % K ? 1 : 0);
        if (i % K != 0)
            ASSERT_EQ(c.deltas, 6);
    }
    for (int i = 0; i < N; i++)
        ASSERT(reads_back(r, ids[i], m[i]));
    ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
    wv_repo_close(r);
    for (int i = 0; i < N; i++)
        wv_model_free(m[i]);
}

TEST_IMPL(delta_chains_keyframes)
{
    chain_case(wvtest_path("plain"), 0);
}

TEST_IMPL(crypt_delta_chains)
{
    chain_case(wvtest_path("enc"), 1);
    /* gc on the encrypted repository keeps what the chains need */
    wv_repo *r;
    ASSERT_OK(open_repo(wvtest_path("enc"), 1, &r));
    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    po.keep_last = 1;
    ASSERT_OK(wv_repo_prune(r, &po, NULL, NULL, NULL));
    wv_gc_opts go = WV_GC_OPTS_INIT;
    go.repack_percent = 0;
    ASSERT_OK(wv_repo_gc(r, &go, NULL));
    wv_model *m = step_set(2, 12 * 1024, 6);
    ASSERT(reads_back(r, "latest", m));
    ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
    wv_model_free(m);
    wv_repo_close(r);
}

static size_t packs_bytes(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "du -sb '%s/packs' | cut -f1", dir);
    FILE *f = popen(cmd, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        pclose(f);
    }
    return (size_t)v;
}

/* No deltas: --no-delta at init (version 1, readable by older builds),
 * or for one commit; and a smaller store with them. */
TEST_IMPL(delta_off)
{
    const char *on = wvtest_path("on"), *off = wvtest_path("off");
    wv_repo *a, *b;
    char id[WV_ID_HEX];
    ASSERT_OK(make_repo(on, WV__DELTA_KEYFRAME_DEFAULT, 0));
    ASSERT_OK(make_repo(off, 0, 0)); /* the default: no deltas */
    ASSERT_OK(wv_repo_open(on, NULL, 0, &a));
    ASSERT_OK(wv_repo_open(off, NULL, 0, &b));
    ASSERT_EQ(a->cfg.version, 3);
    ASSERT_EQ(a->cfg.delta_keyframe, WV__DELTA_KEYFRAME_DEFAULT);
    ASSERT_EQ(b->cfg.version, 1);
    for (int i = 0; i < 3; i++) {
        wv_model *m = step_set(2, 12 * 1024, i);
        ASSERT_OK(wv_repo_commit(a, m, NULL, NULL, id));
        ASSERT_OK(wv_repo_commit(b, m, NULL, NULL, id));
        struct chains c;
        ASSERT_OK(count_chains(b, id, &c));
        ASSERT_EQ(c.deltas, 0);
        wv_model_free(m);
    }
    ASSERT(packs_bytes(on) * 10 < packs_bytes(off) * 9);
    /* --no-delta for one commit */
    wv_model *m = step_set(2, 12 * 1024, 3);
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.delta_keyframe = 1;
    ASSERT_OK(wv_repo_commit(a, m, NULL, &co, id));
    struct chains c;
    ASSERT_OK(count_chains(a, id, &c));
    ASSERT_EQ(c.deltas, 0);
    ASSERT(reads_back(a, id, m));
    wv_model_free(m);
    wv_repo_close(a);
    wv_repo_close(b);
    /* A version this build does not know is refused, naming it. */
    char path[700], eb[WV_ERRBUF_SIZE] = "";
    snprintf(path, sizeof path, "%s/config", off);
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fputs("{\"weightvault_repo\": 5, \"chunk_size\": 16384, \"pack_size\": "
          "1048576, \"compression\": \"zstd-bg\", \"level\": 1}\n",
          f);
    fclose(f);
    ASSERT_EQ(wv_repo_open(off, eb, sizeof eb, &b), WV_FORMAT);
    ASSERT_CONTAINS(eb, "version 5 is not supported");
}

/* Prune the middle of a run, gc (also repacking everything), and every
 * kept checkpoint still reads back: the bases its chunks need stayed. */
TEST_IMPL(delta_gc_keeps_bases)
{
    const char *dir = wvtest_path("gc");
    enum { N = 6 };
    wv_repo *r;
    char ids[N][WV_ID_HEX];
    ASSERT_OK(make_repo(dir, 4, 0));
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    for (int i = 0; i < N; i++) {
        wv_model *m = step_set(2, 12 * 1024, i);
        ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, ids[i]));
        wv_model_free(m);
    }
    /* keep 0 (tagged) and the newest; 1..4 go */
    ASSERT_OK(wv_repo_tag(r, "first", ids[0]));
    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    po.keep_last = 1;
    wv_prune_stats ps;
    ASSERT_OK(wv_repo_prune(r, &po, NULL, NULL, &ps));
    ASSERT_EQ(ps.removed, 4);
    for (int pass = 0; pass < 2; pass++) {
        wv_gc_opts go = WV_GC_OPTS_INIT;
        go.repack_percent = pass ? 0 : 30;
        wv_gc_stats gs;
        ASSERT_OK(wv_repo_gc(r, &go, &gs));
        ASSERT_EQ(gs.missing_chunks, 0);
        wv_model *m0 = step_set(2, 12 * 1024, 0);
        wv_model *m5 = step_set(2, 12 * 1024, 5);
        ASSERT(reads_back(r, ids[0], m0));
        ASSERT(reads_back(r, ids[5], m5));
        wv_model_free(m0);
        wv_model_free(m5);
        ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
    }
    /* checkpoint 5 is a delta on 4 (pruned): its base outlived it */
    struct chains c;
    ASSERT_OK(count_chains(r, ids[5], &c));
    ASSERT_EQ(c.longest, 1);
    wv_repo_close(r);
}

struct vproblems {
    int n;
    char first[1024];
};

static void on_problem(void *arg, const wv_verify_problem *p)
{
    struct vproblems *v = arg;
    if (v->n++ == 0)
        snprintf(v->first, sizeof v->first, "%s", p->message);
}

/* Damage a base that only a later checkpoint needs (its own checkpoint
 * pruned): verify and checkout report the chunk whose base is broken. */
TEST_IMPL(delta_verify_broken_base)
{
    const char *dir = wvtest_path("vb");
    wv_repo *r;
    char a[WV_ID_HEX], b[WV_ID_HEX], hex[65], key[96];
    ASSERT_OK(make_repo(dir, 4, 0));
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    wv_model *m0 = step_set(1, 4096, 0), *m1 = step_set(1, 4096, 1);
    ASSERT_OK(wv_repo_commit(r, m0, NULL, NULL, a));
    ASSERT_OK(wv_repo_commit(r, m1, NULL, NULL, b));
    struct chains c;
    ASSERT_OK(count_chains(r, b, &c));
    ASSERT_EQ(c.deltas, 1);
    /* the base: checkpoint a's only chunk */
    struct wv__manifest mf;
    memset(&mf, 0, sizeof mf);
    ASSERT_OK(wv__manifest_load(r, a, &mf));
    const struct wv__chunk_loc *l = wv__cidx_get(&r->cidx,
                                                 mf.tensors[0].chunks[0]);
    ASSERT_NOT_NULL(l);
    wv__hex(l->id, 32, hex);
    wv__pack_key(l->pack, key);
    uint64_t off = l->off + l->stored_len / 2;
    wv__manifest_release(&mf);
    wv_repo_close(r);
    ASSERT(flip_stored_byte(dir, key, off));
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    struct vproblems v = {0};
    ASSERT_EQ(wv_repo_verify(r, on_problem, &v, NULL), WV_CORRUPT);
    ASSERT(v.n >= 2); /* the base in a, and b's chunk through it */
    wv_model *back = NULL;
    int rc = wv_repo_checkout(r, b, NULL, &back);
    ASSERT(rc == WV_CORRUPT || rc == WV_CORRUPT_CHECKSUM);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "a base of");
    wv_repo_close(r);
    wv_model_free(m0);
    wv_model_free(m1);
}

/* zstd's content checksum in the codec's frames: written only when the
 * workspace asks for it; decoding checks it unless told the plaintext is
 * checked another way (its id), so damage to the checksum alone is
 * caught by a reader that trusts it and ignored by one that hashes. */
TEST_IMPL(delta_frame_checksum)
{
    enum { N = 1 << 14 };
    float *f = wv_malloc(N * sizeof *f);
    unsigned char *z = wv_malloc(wv__codec_bound(N * 4)),
                  *o = wv_malloc(N * 4), *g = wv_malloc(N * 4);
    struct wv__codec_ws *ws = NULL;
    struct wv__err e = {0};
    size_t len = 0;
    int used = -1;
    ASSERT(f && z && o && g);
    ASSERT_OK(wv__codec_ws_new(N * 4, &ws));
    for (size_t i = 0; i < N; i++)
        f[i] = 0.01f * (float)(i % 97) - 0.3f;
    wv__codec_group(f, N * 4, 4, g);
    ASSERT_OK(wv__codec_encode(WV__CODEC_BG_ZSTD, 1, 4, f, N * 4, z,
                               wv__codec_bound(N * 4), ws, &len, &used, &e));
    ASSERT_EQ(used, WV__CODEC_BG_ZSTD);
    ASSERT(!wv__codec_frame_summed(z, len));
    wv__codec_ws_checksum(ws, true);
    ASSERT_OK(wv__codec_encode(WV__CODEC_BG_ZSTD, 1, 4, f, N * 4, z,
                               wv__codec_bound(N * 4), ws, &len, &used, &e));
    ASSERT(wv__codec_frame_summed(z, len));
    ASSERT_OK(wv__codec_unzstd(z, len, o, N * 4, ws, &e));
    ASSERT_MEMEQ(o, g, N * 4);
    z[len - 1] ^= 0x01; /* the checksum's last byte */
    ASSERT_EQ(wv__codec_unzstd(z, len, o, N * 4, ws, &e), WV_CORRUPT);
    wv__codec_ws_check_sum(ws, false);
    ASSERT_OK(wv__codec_unzstd(z, len, o, N * 4, ws, &e));
    ASSERT_MEMEQ(o, g, N * 4);
    wv__codec_ws_check_sum(ws, true);
    ASSERT_EQ(wv__codec_unzstd(z, len, o, N * 4, ws, &e), WV_CORRUPT);
    wv__codec_ws_free(ws);
    wv_free(f);
    wv_free(z);
    wv_free(o);
    wv_free(g);
}

/* The location of the first chunk of checkpoint `ref`'s first tensor. */
static int first_chunk(wv_repo *r, const char *ref, struct wv__chunk_loc *out)
{
    char id[65];
    struct wv__manifest mf;
    memset(&mf, 0, sizeof mf);
    if (wv__repo_load_index(r) != WV_OK ||
        wv__repo_resolve(r, ref, id) != WV_OK ||
        wv__manifest_load(r, id, &mf) != WV_OK)
        return -1;
    const struct wv__chunk_loc *l =
        wv__cidx_get(&r->cidx, mf.tensors[0].chunks[0]);
    if (l != NULL)
        *out = *l;
    wv__manifest_release(&mf);
    return l != NULL ? 0 : -1;
}

/* Whether chunk l's zstd frame (stored in the local repository at dir)
 * declares zstd's content checksum. */
static bool frame_summed(const char *dir, const struct wv__chunk_loc *l)
{
    char key[96], path[800];
    unsigned char head[64];
    wv__pack_key(l->pack, key);
    snprintf(path, sizeof path, "%s/%s", dir, key);
    int fd = open(path, O_RDONLY);
    size_t skip = l->codec == WV__CODEC_DELTA ? 32 : 0;
    bool ok = fd >= 0 && pread(fd, head, sizeof head, (off_t)l->off) ==
                             (ssize_t)sizeof head;
    if (fd >= 0)
        close(fd);
    return ok && wv__codec_frame_summed(head + skip, sizeof head - skip);
}

/* A plain repository with deltas writes zstd's content checksum in its
 * frames, and a commit checks the bases it reads back by it instead of
 * by SHA-256 (object.c WV__CHECK_FRAME): a base damaged in its pack
 * (from a fresh handle, nothing cached) is not built on, the chunk is
 * stored whole and reads back. A repository without deltas writes the
 * frames zstd writes by default; a keyframe without the checksum is
 * hashed instead. */
TEST_IMPL(delta_commit_damaged_base)
{
    const char *dir = wvtest_path("db"), *plain = wvtest_path("db-plain"),
               *hurt = wvtest_path("db-hurt");
    wv_repo *r;
    char a[WV_ID_HEX], b[WV_ID_HEX], key[96];
    struct wv__chunk_loc l;
    ASSERT_OK(make_repo(dir, 4, 0));
    ASSERT_OK(make_repo(plain, 0, 0));
    wv_model *m0 = step_set(1, 4096, 0), *m1 = step_set(1, 4096, 1);
    ASSERT_OK(wv_repo_open(plain, NULL, 0, &r));
    ASSERT_OK(wv_repo_commit(r, m0, NULL, NULL, a));
    ASSERT_EQ(first_chunk(r, a, &l), 0);
    ASSERT_EQ(l.codec, WV__CODEC_BG_ZSTD);
    ASSERT(!frame_summed(plain, &l));
    wv_repo_close(r);
    /* undamaged: the next commit is a delta, its frame checksummed too */
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    ASSERT_OK(wv_repo_commit(r, m0, NULL, NULL, a));
    wv_repo_close(r);
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    ASSERT_OK(wv_repo_commit(r, m1, NULL, NULL, b));
    ASSERT_EQ(first_chunk(r, a, &l), 0);
    ASSERT_EQ(l.codec, WV__CODEC_BG_ZSTD);
    ASSERT(frame_summed(dir, &l));
    ASSERT_EQ(first_chunk(r, b, &l), 0);
    ASSERT_EQ(l.codec, WV__CODEC_DELTA);
    ASSERT(frame_summed(dir, &l));
    wv_repo_close(r);
    /* damage the base's frame in the middle (its compressed content) and
     * commit the same step from a new handle: stored whole this time */
    ASSERT_OK(make_repo(hurt, 4, 0));
    ASSERT_OK(wv_repo_open(hurt, NULL, 0, &r));
    ASSERT_OK(wv_repo_commit(r, m0, NULL, NULL, a));
    ASSERT_EQ(first_chunk(r, a, &l), 0);
    wv_repo_close(r);
    wv__pack_key(l.pack, key);
    ASSERT(flip_stored_byte(hurt, key, l.off + l.stored_len / 2));
    ASSERT_OK(wv_repo_open(hurt, NULL, 0, &r));
    ASSERT_OK(wv_repo_commit(r, m1, NULL, NULL, b));
    ASSERT_EQ(first_chunk(r, b, &l), 0);
    ASSERT_EQ(l.codec, WV__CODEC_BG_ZSTD);
    ASSERT(reads_back(r, b, m1));
    wv_repo_close(r);
    /* a keyframe without the checksum (as an earlier writer stored it:
     * the repository made without deltas, then given them) is hashed
     * instead: the delta is built on it, and not once it is damaged */
    for (int damaged = 0; damaged <= 1; damaged++) {
        const char *old = wvtest_path(damaged ? "db-old-hurt" : "db-old");
        char cfg[800], text[512];
        ASSERT_OK(make_repo(old, 0, 0));
        ASSERT_OK(wv_repo_open(old, NULL, 0, &r));
        ASSERT_OK(wv_repo_commit(r, m0, NULL, NULL, a));
        ASSERT_EQ(first_chunk(r, a, &l), 0);
        ASSERT(!frame_summed(old, &l));
        wv_repo_close(r);
        snprintf(cfg, sizeof cfg, "%s/config", old);
        FILE *f = fopen(cfg, "r+");
        ASSERT_NOT_NULL(f);
        size_t tn = fread(text, 1, sizeof text - 1, f);
        text[tn] = '\0';
        char *v = strstr(text, "\"weightvault_repo\": 1");
        char *end = strrchr(text, '}');
        ASSERT(v != NULL && end != NULL);
        v[strlen("\"weightvault_repo\": ")] = '3';
        snprintf(end, sizeof text - (size_t)(end - text),
                 ", \"delta_keyframe\": 4}");
        ASSERT(fseek(f, 0, SEEK_SET) == 0 && fputs(text, f) >= 0);
        fclose(f);
        if (damaged) {
            wv__pack_key(l.pack, key);
            ASSERT(flip_stored_byte(old, key, l.off + l.stored_len / 2));
        }
        ASSERT_OK(wv_repo_open(old, NULL, 0, &r));
        ASSERT_OK(wv_repo_commit(r, m1, NULL, NULL, b));
        ASSERT_EQ(first_chunk(r, b, &l), 0);
        ASSERT_EQ(l.codec, damaged ? WV__CODEC_BG_ZSTD : WV__CODEC_DELTA);
        ASSERT(reads_back(r, b, m1));
        wv_repo_close(r);
    }
    wv_model_free(m0);
    wv_model_free(m1);
}

/* Push copies the deltas and their bases; a destination whose format has
 * no deltas refuses them. */
TEST_IMPL(delta_sync)
{
    const char *src = wvtest_path("src"), *dst = wvtest_path("dst"),
               *old = wvtest_path("old");
    wv_repo *r;
    char id[WV_ID_HEX];
    ASSERT_OK(make_repo(src, WV__DELTA_KEYFRAME_DEFAULT, 0));
    ASSERT_OK(wv_repo_open(src, NULL, 0, &r));
    for (int i = 0; i < 3; i++) {
        wv_model *m = step_set(2, 12 * 1024, i);
        ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
        wv_model_free(m);
    }
    wv_repo_close(r);
    ASSERT_OK(wv_repo_sync(src, dst, NULL, NULL));
    ASSERT_OK(wv_repo_open(dst, NULL, 0, &r));
    ASSERT_EQ(r->cfg.version, 3);
    struct chains c;
    ASSERT_OK(count_chains(r, "latest", &c));
    ASSERT(c.deltas > 0);
    wv_model *m = step_set(2, 12 * 1024, 2);
    ASSERT(reads_back(r, "latest", m));
    wv_model_free(m);
    ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
    wv_repo_close(r);
    ASSERT_OK(make_repo(old, 1, 0));
    char eb[WV_ERRBUF_SIZE] = "";
    wv_sync_opts so = WV_SYNC_OPTS_INIT;
    so.errbuf = eb;
    so.errbuf_size = sizeof eb;
    ASSERT_EQ(wv_repo_sync(src, old, &so, NULL), WV_MISUSE);
    ASSERT_CONTAINS(eb, "delta chunks");
}

static int count_cb(void *arg, const struct wv__chunk_loc *l)
{
    size_t *n = arg;
    *n += l->codec == WV__CODEC_DELTA && l->base[0] == 0xbb;
    return WV_OK;
}

/* Index entries: a delta names its base (a seventh member); one without,
 * or naming itself, is damage. */
TEST_IMPL(delta_index_entries)
{
    char a[65], b[65], t[600];
    struct wv__err e = {0};
    size_t n = 0;
    memset(a, 'a', 64);
    memset(b, 'b', 64);
    a[64] = b[64] = '\0';
    snprintf(t, sizeof t,
             "{\"packs\": {\"%s\": [[\"%s\", 8, 10, 4096, 3, 4, \"%s\"]]}}",
             b, a, b);
    ASSERT_OK(wv__index_parse(t, strlen(t), "i", count_cb, &n, &e));
    ASSERT_EQ(n, 1);
    snprintf(t, sizeof t,
             "{\"packs\": {\"%s\": [[\"%s\", 8, 10, 4096, 3, 4]]}}", b, a);
    ASSERT_EQ(wv__index_parse(t, strlen(t), "i", count_cb, &n, &e),
              WV_CORRUPT);
    snprintf(t, sizeof t,
             "{\"packs\": {\"%s\": [[\"%s\", 8, 10, 4096, 3, 4, \"%s\"]]}}",
             b, a, a);
    ASSERT_EQ(wv__index_parse(t, strlen(t), "i", count_cb, &n, &e),
              WV_CORRUPT);
    snprintf(t, sizeof t,
             "{\"packs\": {\"%s\": [[\"%s\", 8, 10, 4096, 4, 4]]}}", b, a);
    ASSERT_EQ(wv__index_parse(t, strlen(t), "i", count_cb, &n, &e),
              WV_CORRUPT);
}

/* The names of the packs of a repository, sorted, in one string. */
static void pack_names(const char *dir, char *out, size_t cap)
{
    char cmd[700];
    size_t n = 0;
    snprintf(cmd, sizeof cmd, "cd '%s' && find packs -type f | sort", dir);
    FILE *f = popen(cmd, "r");
    out[0] = '\0';
    if (f == NULL)
        return;
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    pclose(f);
}

/* Write step `step` of the training-like run into m's own buffers (the
 * way a training loop updates its weights in place). */
static void step_into(wv_model *m, int step)
{
    wv_model *s = step_set((int)wv_model_count(m), 12 * 1024, step);
    ASSERT_NOT_NULL(s);
    for (size_t i = 0; i < wv_model_count(m); i++)
        memcpy((void *)wv_tensor_data(wv_model_tensor(m, i)),
               wv_tensor_data(wv_model_tensor(s, i)), 12 * 1024 * 4);
    wv_model_free(s);
}

/* One handle committing a run (the Checkpointer's way) takes the bases
 * from the plaintext its last commit kept: from its third commit on,
 * every base the chain would give, and the same packs as a handle per
 * commit (which reads every base back). The weights change in place
 * between commits: the kept plaintext is a copy. A base another writer
 * made is not in it (hits 0) and is read back. */
static void parent_cache_case(int encrypt)
{
    const char *one = wvtest_path(encrypt ? "pc-enc" : "pc"),
               *each = wvtest_path(encrypt ? "pe-enc" : "pe");
    enum { N = 5 };
    wv_repo *r, *q;
    char ids[N + 1][WV_ID_HEX], id[WV_ID_HEX];
    static char pa[1 << 14], pb[1 << 14];
    ASSERT_OK(make_repo(one, 4, encrypt));
    ASSERT_OK(make_repo(each, 4, 0));
    ASSERT_OK(open_repo(one, encrypt, &r));
    wv_model *m = step_set(2, 12 * 1024, 0); /* 3 chunks per tensor */
    ASSERT_NOT_NULL(m);
    for (int i = 0; i < N; i++) {
        step_into(m, i);
        ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, ids[i]));
        /* hits from the third commit; the fifth is a keyframe (K = 4) */
        ASSERT_EQ(r->n_pcache_hits, i >= 2 && i < 4 ? 6 : 0);
        if (encrypt) /* sealing draws fresh nonces: never the same packs */
            continue;
        ASSERT_OK(open_repo(each, encrypt, &q));
        ASSERT_OK(wv_repo_commit(q, m, NULL, NULL, id));
        ASSERT_EQ(q->n_pcache_hits, 0);
        wv_repo_close(q);
    }
    if (!encrypt) {
        pack_names(one, pa, sizeof pa);
        pack_names(each, pb, sizeof pb);
        ASSERT(pa[0] != '\0');
        ASSERT_STREQ(pa, pb);
    }
    for (int i = 0; i < N; i++) {
        wv_model *s = step_set(2, 12 * 1024, i);
        ASSERT(reads_back(r, ids[i], s));
        wv_model_free(s);
    }
    /* Another writer moves the branch: its checkpoint is a delta on the
     * keyframe r committed last, so r's next commit, two commits from
     * that keyframe, takes the same bases, from r's cache. */
    ASSERT_OK(open_repo(one, encrypt, &q));
    wv_model *o = step_set(2, 12 * 1024, 9);
    ASSERT_OK(wv_repo_commit(q, o, NULL, NULL, id));
    wv_repo_close(q);
    step_into(m, 5);
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, ids[N]));
    ASSERT_EQ(r->n_pcache_hits, 6);
    struct chains c;
    ASSERT_OK(count_chains(r, ids[N], &c));
    ASSERT_EQ(c.depth_of_first, 1); /* on the keyframe, not on q's delta */
    ASSERT_EQ(c.deltas, 6);
    ASSERT(reads_back(r, ids[N], m));
    ASSERT(reads_back(r, id, o));
    ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
    wv_repo_close(r);
    wv_model_free(m);
    wv_model_free(o);
}

TEST_IMPL(delta_parent_cache)
{
    parent_cache_case(0);
}

TEST_IMPL(crypt_delta_parent_cache)
{
    parent_cache_case(1);
}

/* A chain composed in the grouped domain (delta.c) from a whole chunk
 * smaller than the deltas after it (F32: a block of 256 values repeated,
 * which compresses well, then new low bytes at every step, which the
 * deltas carry), and bytes (U8: no grouping) whose whole chunk is stored
 * uncompressed; a damaged middle link is named. */
TEST_IMPL(delta_chain_compose)
{
    const char *dir = wvtest_path("cc"), *wdir = wvtest_path("ccw");
    enum { N = 4, E = 8192 };
    wv_repo *r, *rw;
    char ids[N][WV_ID_HEX], wid[N][WV_ID_HEX];
    wv_model *m[N], *mw[N];
    ASSERT_OK(make_repo(dir, 4, 0));
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    /* "w" alone too: every chain read there starts with a whole chunk
     * smaller than the deltas on it (buffers grow in the middle of it) */
    ASSERT_OK(make_repo(wdir, 4, 0));
    ASSERT_OK(wv_repo_open(wdir, NULL, 0, &rw));
    /* chains as earlier releases wrote them (deltas on deltas) */
    r->delta_chained = rw->delta_chained = true;
    for (int s = 0; s < N; s++) {
        float *w = wv_malloc(E * 4);
        unsigned char *b = wv_malloc(E * 4);
        ASSERT(w && b);
        uint32_t x = 777u, y = 99u, z = 5u + (uint32_t)s;
        for (size_t j = 0; j < E; j++) {
            if (j < 256) {
                x = x * 1664525u + 1013904223u;
                w[j] = ((float)(x >> 8) / 16777216.0f - 0.5f) * 0.2f;
            } else {
                w[j] = w[j % 256];
            }
        }
        for (size_t j = 0; s > 0 && j < E; j++) {
            uint32_t v;
            memcpy(&v, &w[j], 4);
            z = z * 1664525u + 1013904223u;
            v = (v & ~0xffu) | (z >> 24);
            memcpy(&w[j], &v, 4);
        }
        for (size_t j = 0; j < (size_t)E * 4; j++) {
            y = y * 1664525u + 1013904223u;
            b[j] = (unsigned char)(y >> 24); /* incompressible */
        }
        for (int t = 1; t <= s; t++) /* a few bytes changed per step */
            for (size_t j = (size_t)t; j < (size_t)E * 4; j += 997)
                b[j] ^= (unsigned char)(0x11 * t);
        uint64_t shape[1] = {E}, bshape[1] = {(uint64_t)E * 4};
        float *w2 = wv_malloc(E * 4);
        ASSERT_NOT_NULL(w2);
        memcpy(w2, w, E * 4);
        ASSERT_OK(wv_model_new(&mw[s]));
        ASSERT_OK(wv_model_add(mw[s], "w", WV_F32, 1, shape, w2, E * 4,
                               WV_DATA_TAKE));
        ASSERT_OK(wv_repo_commit(rw, mw[s], NULL, NULL, wid[s]));
        ASSERT_OK(wv_model_new(&m[s]));
        ASSERT_OK(wv_model_add(m[s], "w", WV_F32, 1, shape, w, E * 4,
                               WV_DATA_TAKE));
        ASSERT_OK(wv_model_add(m[s], "b", WV_U8, 1, bshape, b, E * 4,
                               WV_DATA_TAKE));
        ASSERT_OK(wv_repo_commit(r, m[s], NULL, NULL, ids[s]));
    }
    struct chains c;
    ASSERT_OK(count_chains(r, ids[N - 1], &c));
    ASSERT_EQ(c.longest, N - 1);
    ASSERT_EQ(c.deltas, 4); /* two chunks of each tensor */
    for (int s = 0; s < N; s++) {
        ASSERT(reads_back(r, ids[s], m[s]));
        ASSERT(reads_back(rw, wid[s], mw[s]));
    }
    ASSERT_OK(count_chains(rw, wid[N - 1], &c));
    ASSERT_EQ(c.deltas, 2);
    ASSERT_OK(wv_repo_verify(rw, NULL, NULL, NULL));
    wv_repo_close(rw);
    /* the keyframe of "w" is smaller than the deltas on it */
    struct wv__manifest mf;
    memset(&mf, 0, sizeof mf);
    ASSERT_OK(wv__manifest_load(r, ids[0], &mf));
    const struct wv__chunk_loc *k0 =
        wv__cidx_get(&r->cidx, mf.tensors[0].chunks[0]);
    ASSERT_NOT_NULL(k0);
    uint64_t k0_len = k0->stored_len;
    wv__manifest_release(&mf);
    memset(&mf, 0, sizeof mf);
    ASSERT_OK(wv__manifest_load(r, ids[1], &mf));
    const struct wv__chunk_loc *d1 =
        wv__cidx_get(&r->cidx, mf.tensors[0].chunks[0]);
    ASSERT_NOT_NULL(d1);
    ASSERT_EQ(d1->codec, WV__CODEC_DELTA);
    ASSERT(k0_len < d1->stored_len);
    char key[96];
    wv__pack_key(d1->pack, key);
    uint64_t off = d1->off + d1->stored_len / 2;
    wv__manifest_release(&mf);
    wv_repo_close(r);
    /* damage the middle link (checkpoint 1's chunk) */
    ASSERT(flip_stored_byte(dir, key, off));
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    wv_model *back = NULL;
    int rc = wv_repo_checkout(r, ids[N - 1], NULL, &back);
    ASSERT(rc == WV_CORRUPT || rc == WV_CORRUPT_CHECKSUM);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "a base of");
    wv_repo_close(r);
    for (int s = 0; s < N; s++) {
        wv_model_free(m[s]);
        wv_model_free(mw[s]);
    }
}
