/*
 * t_repo.c -- the checkpoint repository: commit, checkout, dedup,
 * compression, refs, damaged data.
 */
#include "object.h"
#include "repo.h"
#include "wvtest.h"

#include <dirent.h>

static wv_model *make_set(int variant, size_t big)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    size_t n = big / 4;
    float *w = wv_malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++)
        w[i] = (float)((i * 2654435761u) % 10007) / 10007.0f - 0.5f;
    uint64_t shape[2] = {n / 256, 256};
    wv_model_add(m, "big.weight", WV_F32, 2, shape, w, n * 4, WV_DATA_TAKE);
    uint16_t h[100];
    for (int i = 0; i < 100; i++)
        h[i] = (uint16_t)(0x3c00 + i + variant);
    uint64_t s1[1] = {100};
    wv_model_add(m, "small.bias", WV_BF16, 1, s1, h, sizeof h, WV_DATA_COPY);
    int64_t step = 1000 + variant;
    wv_model_add(m, "step", WV_I64, 0, NULL, &step, 8, WV_DATA_COPY);
    wv_model_add(m, "empty", WV_F32, 1, (uint64_t[]){0}, NULL, 0,
                 WV_DATA_BORROW);
    wv_model_set_meta(m, "epoch", variant ? "2" : "1");
    return m;
}

static int same(const wv_model *a, const wv_model *b)
{
    if (wv_model_count(a) != wv_model_count(b))
        return 0;
    for (size_t i = 0; i < wv_model_count(a); i++) {
        const wv_tensor *t = wv_model_tensor(a, i);
        const wv_tensor *u = wv_model_find(b, wv_tensor_name(t));
        if (u == NULL || wv_tensor_dtype(t) != wv_tensor_dtype(u) ||
            wv_tensor_ndim(t) != wv_tensor_ndim(u) ||
            wv_tensor_nbytes(t) != wv_tensor_nbytes(u) ||
            memcmp(wv_tensor_shape(t), wv_tensor_shape(u),
                   (size_t)wv_tensor_ndim(t) * 8) != 0 ||
            (wv_tensor_nbytes(t) &&
             memcmp(wv_tensor_data(t), wv_tensor_data(u),
                    wv_tensor_nbytes(t)) != 0))
            return 0;
    }
    return 1;
}

static size_t count_files(const char *dir)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "find %s -type f | wc -l", dir);
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    if (p) {
        if (fscanf(p, "%zu", &n) != 1)
            n = 0;
        pclose(p);
    }
    return n;
}

static void roundtrip(const char *compression, const char *uri)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.compression = compression;
    io.chunk_size = 64 << 10;
    io.pack_size = 256 << 10;
    char eb[WV_ERRBUF_SIZE] = "";
    io.errbuf = eb;
    io.errbuf_size = sizeof eb;
    ASSERT_OK(wv_repo_init(uri, &io));
    ASSERT_EQ(wv_repo_init(uri, &io), WV_EXISTS);
    wv_repo *r;
    ASSERT_OK(wv_repo_open(uri, eb, sizeof eb, &r));
    wv_model *m = make_set(0, 1 << 20);
    char id1[WV_ID_HEX], id2[WV_ID_HEX], rid[WV_ID_HEX];
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.message = "first";
    ASSERT_OK(wv_repo_commit(r, m, NULL, &co, id1));
    ASSERT_EQ(strlen(id1), 64);
    ASSERT_OK(wv_repo_resolve(r, "latest", rid));
    ASSERT_STREQ(rid, id1);
    ASSERT_OK(wv_repo_resolve(r, "main", rid));
    ASSERT_STREQ(rid, id1);
    char pfx[9];
    memcpy(pfx, id1, 8);
    pfx[8] = '\0';
    ASSERT_OK(wv_repo_resolve(r, pfx, rid));
    ASSERT_STREQ(rid, id1);
    wv_model *back;
    ASSERT_OK(wv_repo_checkout(r, "latest", NULL, &back));
    ASSERT(same(m, back));
    ASSERT(same(back, m));
    ASSERT_STREQ(wv_model_get_meta(back, "epoch"), "1");
    wv_model_free(back);

    /* One tensor alone. */
    const char *names[] = {"small.bias"};
    wv_checkout_opts cko = WV_CHECKOUT_OPTS_INIT;
    cko.names = names;
    cko.n_names = 1;
    ASSERT_OK(wv_repo_checkout(r, id1, &cko, &back));
    ASSERT_EQ(wv_model_count(back), 1);
    ASSERT_NOT_NULL(wv_model_find(back, "small.bias"));
    wv_model_free(back);
    const char *bad[] = {"nope"};
    cko.names = bad;
    ASSERT_EQ(wv_repo_checkout(r, id1, &cko, &back), WV_NOTFOUND);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "nope");

    /* Second commit: only the changed tensors are new. */
    wv_model *m2 = make_set(1, 1 << 20);
    ASSERT_OK(wv_repo_commit(r, m2, NULL, NULL, id2));
    ASSERT(strcmp(id1, id2) != 0);
    struct wv__manifest mf;
    ASSERT_OK(wv__manifest_load(r, id2, &mf));
    ASSERT_STREQ(mf.parent, id1);
    wv__manifest_release(&mf);
    ASSERT_OK(wv_repo_checkout(r, "main", NULL, &back));
    ASSERT(same(m2, back));
    wv_model_free(back);
    ASSERT_OK(wv_repo_checkout(r, id1, NULL, &back));
    ASSERT(same(m, back));
    wv_model_free(back);

    ASSERT_EQ(wv_repo_resolve(r, "nosuchbranch", rid), WV_NOTFOUND);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "nosuchbranch");
    wv_model_free(m);
    wv_model_free(m2);
    wv_repo_close(r);
}

TEST_IMPL(repo_roundtrip_mem)
{
    roundtrip("none", "mem://rt-none");
    roundtrip("zstd", "mem://rt-zstd");
    roundtrip("zstd-bg", "mem://rt-bg");
}

TEST_IMPL(repo_roundtrip_local)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/repo", wvtest_tmpdir());
    roundtrip("zstd-bg", dir);
}

TEST_IMPL(repo_dedup)
{
    char dir[512], id[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/dedup", wvtest_tmpdir());
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.compression = "none";
    io.chunk_size = 64 << 10;
    io.pack_size = 256 << 10;
    ASSERT_OK(wv_repo_init(dir, &io));
    wv_repo *r;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    wv_model *m = make_set(0, 4 << 20);
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
    char packs[600];
    snprintf(packs, sizeof packs, "%s/packs", dir);
    size_t n1 = count_files(packs);
    ASSERT(n1 >= 16); /* 4 MiB in packs of 256 KiB */
    /* The same set again: no new pack at all. */
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
    ASSERT_EQ(count_files(packs), n1);
    /* Reopened (index read from the store), still no new pack. */
    wv_repo_close(r);
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    ASSERT_OK(wv_repo_commit(r, m, "other", NULL, id));
    ASSERT_EQ(count_files(packs), n1);
    /* Changing the small tensor adds one small pack. */
    wv_model *m2 = make_set(1, 4 << 20);
    ASSERT_OK(wv_repo_commit(r, m2, NULL, NULL, id));
    ASSERT_EQ(count_files(packs), n1 + 1);
    wv_model_free(m);
    wv_model_free(m2);
    wv_repo_close(r);
}

TEST_IMPL(repo_metadata_states)
{
    /* A safetensors file without __metadata__ comes back without it; a
     * set built in memory still gets the writer's defaults. */
    const char *uri = "mem://meta";
    char id[WV_ID_HEX], path[512];
    ASSERT_OK(wv_repo_init(uri, NULL));
    wv_repo *r;
    ASSERT_OK(wv_repo_open(uri, NULL, 0, &r));
    wv_model *m;
    const char *fix = wvtest_fixture("safetensors",
                                     "candle-connect4-dqn-small.safetensors");
    ASSERT_OK(wv_model_load(fix, NULL, &m));
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
    wv_model *back;
    ASSERT_OK(wv_repo_checkout(r, id, NULL, &back));
    snprintf(path, sizeof path, "%s/c.safetensors", wvtest_tmpdir());
    ASSERT_OK(wv_model_save(back, path, NULL));
    size_t n1, n2;
    unsigned char *a = wvtest_read_file(path, &n1);
    unsigned char *b = wvtest_read_file(fix, &n2);
    ASSERT(a && b && n1 == n2 && memcmp(a, b, n1) == 0);
    free(a);
    free(b);
    wv_model_free(back);
    wv_model_free(m);
    wv_repo_close(r);
}

TEST_IMPL(repo_damage_detected)
{
    char dir[512], id[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/damage", wvtest_tmpdir());
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.compression = "none";
    io.chunk_size = 64 << 10;
    ASSERT_OK(wv_repo_init(dir, &io));
    wv_repo *r;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    wv_model *m = make_set(0, 1 << 20);
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
    wv_repo_close(r);
    /* Flip one byte in the middle of every pack. */
    char cmd[700];
    snprintf(cmd, sizeof cmd,
             "for f in $(find %s/packs -type f); do printf '\\xff' | dd "
             "of=$f bs=1 seek=5000 conv=notrunc status=none; done",
             dir);
    ASSERT_OK(system(cmd));
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    wv_model *back;
    ASSERT_EQ(wv_repo_checkout(r, id, NULL, &back), WV_CORRUPT_CHECKSUM);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "damaged");
    ASSERT_CONTAINS(wv_repo_errmsg(r), "big.weight");
    wv_model_free(m);
    wv_repo_close(r);
}

TEST_IMPL(repo_errors)
{
    char eb[WV_ERRBUF_SIZE] = "";
    wv_repo *r;
    ASSERT_EQ(wv_repo_open("/nonexistent/dir", eb, sizeof eb, &r),
              WV_NOTFOUND);
    ASSERT(r == NULL);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/notrepo", wvtest_tmpdir());
    mkdir(dir, 0777);
    ASSERT_EQ(wv_repo_open(dir, eb, sizeof eb, &r), WV_NOTFOUND);
    ASSERT_CONTAINS(eb, "not a weightvault repository");
    ASSERT_OK(wv_repo_init("mem://err", NULL));
    ASSERT_OK(wv_repo_open("mem://err", eb, sizeof eb, &r));
    wv_model *m = make_set(0, 4096);
    char id[WV_ID_HEX];
    ASSERT_EQ(wv_repo_commit(r, m, "../evil", NULL, id), WV_MISUSE);
    ASSERT_EQ(wv_repo_commit(r, m, "latest", NULL, id), WV_MISUSE);
    wv_model_free(m);
    wv_repo_close(r);
}

TEST_IMPL(repo_manifest_duplicate_fields)
{
    /* A field given twice is refused (a second "metadata" used to be
     * appended past the first one's allocation; a second "branch" leaked). */
    static const char *const bad[] = {
        "{\"weightvault_manifest\": 1, \"chunk_size\": 4096, "
        "\"metadata\": {\"a\": \"1\"}, \"metadata\": {\"b\": \"2\"}, "
        "\"tensors\": []}",
        "{\"weightvault_manifest\": 1, \"chunk_size\": 4096, "
        "\"branch\": \"a\", \"branch\": \"b\", \"tensors\": []}",
        "{\"weightvault_manifest\": 1, \"chunk_size\": 4096, "
        "\"tensors\": [], \"tensors\": []}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct wv__err err = {0};
        struct wv__manifest mf;
        ASSERT_EQ(wv__manifest_parse(bad[i], strlen(bad[i]), "m", &mf, &err),
                  WV_CORRUPT);
        ASSERT_CONTAINS(err.msg, "duplicate field");
    }
    const char *good = "{\"weightvault_manifest\": 1, \"chunk_size\": 4096, "
                       "\"metadata\": {\"a\": \"1\"}, \"tensors\": []}";
    struct wv__err err = {0};
    struct wv__manifest mf;
    ASSERT_OK(wv__manifest_parse(good, strlen(good), "m", &mf, &err));
    ASSERT_EQ(mf.n_meta, 1);
    wv__manifest_release(&mf);
}

/* A commit compares the chunks its parent stored raw instead of hashing
 * them: the ids it records are still the SHA-256 of the bytes, unchanged
 * chunks are found by comparison, changed ones are not, and a store that
 * cannot map (memory) or a compressed repository simply hashes. */
static void check_ids_are_hashes(wv_repo *r, const char *id,
                                 const wv_model *m)
{
    struct wv__manifest mf;
    ASSERT_OK(wv__manifest_load(r, id, &mf));
    for (size_t i = 0; i < mf.n_tensors; i++) {
        const struct wv__mtensor *t = &mf.tensors[i];
        const wv_tensor *u = wv_model_find(m, t->name);
        ASSERT_NOT_NULL(u);
        for (size_t c = 0; c < t->n_chunks; c++) {
            size_t off = c * (size_t)mf.chunk_size;
            size_t n = wv_tensor_nbytes(u) - off < mf.chunk_size
                           ? wv_tensor_nbytes(u) - off
                           : (size_t)mf.chunk_size;
            unsigned char want[32];
            ASSERT_OK(wv__chunk_id(r, (const unsigned char *)
                                          wv_tensor_data(u) + off,
                                   n, want));
            ASSERT_MEMEQ(t->chunks[c], want, 32);
        }
    }
    wv__manifest_release(&mf);
}

/* expect: 0 none compared; 1 every raw chunk; 2 some at most (a
 * compressed repository stores only incompressible chunks raw) */
static void same_as_parent(const char *uri, const char *compression,
                           int expect)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.compression = compression;
    io.chunk_size = 64 << 10;
    io.pack_size = 256 << 10;
    ASSERT_OK(wv_repo_init(uri, &io));
    wv_repo *r;
    ASSERT_OK(wv_repo_open(uri, NULL, 0, &r));
    wv_model *m = make_set(0, 4 << 20), *m2 = make_set(1, 4 << 20), *back;
    char id1[WV_ID_HEX], id2[WV_ID_HEX], id3[WV_ID_HEX];
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id1));
    ASSERT_EQ(r->n_same_as_parent, 0); /* no parent */
    /* big.weight (64 chunks) unchanged; small.bias and step changed. */
    wv_repo_close(r); /* the index comes back from the store */
    ASSERT_OK(wv_repo_open(uri, NULL, 0, &r));
    ASSERT_OK(wv_repo_commit(r, m2, NULL, NULL, id2));
    if (expect == 1)
        ASSERT_EQ(r->n_same_as_parent, 64);
    else if (expect == 0)
        ASSERT_EQ(r->n_same_as_parent, 0);
    else
        ASSERT(r->n_same_as_parent < 64);
    check_ids_are_hashes(r, id2, m2);
    /* One element of chunk 5 of big.weight changes: the other 63 and the
     * two small tensors, unchanged since, are compared. */
    float *w = (float *)wv_tensor_data(wv_model_find(m2, "big.weight"));
    w[5 * (64 << 10) / 4 + 17] += 1.0f;
    ASSERT_OK(wv_repo_commit(r, m2, NULL, NULL, id3));
    if (expect == 1)
        ASSERT_EQ(r->n_same_as_parent, 65);
    else if (expect == 0)
        ASSERT_EQ(r->n_same_as_parent, 0);
    else
        ASSERT(r->n_same_as_parent < 65);
    check_ids_are_hashes(r, id3, m2);
    ASSERT_OK(wv_repo_checkout(r, id3, NULL, &back));
    ASSERT(same(m2, back));
    wv_model_free(back);
    ASSERT_OK(wv_repo_checkout(r, id1, NULL, &back));
    ASSERT(same(m, back));
    wv_model_free(back);
    ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
    wv_model_free(m);
    wv_model_free(m2);
    wv_repo_close(r);
}

TEST_IMPL(repo_same_as_parent)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/parent-none", wvtest_tmpdir());
    same_as_parent(dir, "none", 1);
    snprintf(dir, sizeof dir, "%s/parent-zstd", wvtest_tmpdir());
    same_as_parent(dir, "zstd-bg", 2);
    same_as_parent("mem://parent-none", "none", 0);
}

/* A checkout decodes chunks on worker threads from a ring of read
 * buffers; chunks read in place (stored raw) skip the ring. A buffer may
 * only be refilled once every earlier user of it is done: here the first
 * chunk (compressed) is decoded slowly while a run of raw chunks longer
 * than the ring goes by and compressed chunks follow, one of which maps
 * to the first chunk's buffer. Found by the kill-and-resume test of the
 * Python checkpointer (a healthy repository failed to check out about
 * one time in a hundred). */
TEST_IMPL(repo_checkout_buffer_reuse)
{
    char dir[512], eb[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX];
    wv_init_opts io = WV_INIT_OPTS_INIT;
    wv_repo *r = NULL;
    wv_model *m = NULL, *back = NULL;
    const size_t cs = 4096;
    uint64_t s1[1] = {cs / 4}, s20[1] = {20 * cs / 4};
    snprintf(dir, sizeof dir, "%s/ring", wvtest_tmpdir());
    io.compression = "zstd";
    io.chunk_size = cs;
    ASSERT_OK(wv_repo_init(dir, &io));
    ASSERT_OK(wv_repo_open(dir, eb, sizeof eb, &r));
    ASSERT_OK(wv_model_new(&m));
    /* compressible: a slow pattern; incompressible: a hash stream */
    float *a = malloc(cs), *c = malloc(20 * cs);
    unsigned char *b = malloc(20 * cs);
    ASSERT(a && b && c);
    for (size_t i = 0; i < cs / 4; i++)
        a[i] = (float)(i % 7);
    for (size_t i = 0; i < 20 * cs; i += 32)
        wv__sha256_buf(&i, sizeof i, b + i);
    for (size_t i = 0; i < 20 * cs / 4; i++)
        c[i] = (float)(i % 5 + i / 1024);
    ASSERT_OK(wv_model_add(m, "a", WV_F32, 1, s1, a, cs, WV_DATA_COPY));
    ASSERT_OK(wv_model_add(m, "b", WV_U8, 1, (uint64_t[]){20 * cs}, b,
                           20 * cs, WV_DATA_COPY));
    ASSERT_OK(wv_model_add(m, "c", WV_F32, 1, s20, c, 20 * cs,
                           WV_DATA_COPY));
    free(a);
    free(b);
    free(c);
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
    for (int round = 0; round < 3; round++) {
        wv__fault_arm(WV__FAULT_SLOW_DECODE, 300);
        int rc = wv_repo_checkout(r, id, NULL, &back);
        wv__fault_arm(WV__FAULT_SLOW_DECODE, 0);
        if (rc != WV_OK)
            WVT_FAIL("round %d: %s", round, wv_repo_errmsg(r));
        ASSERT(same(m, back));
        wv_model_free(back);
        back = NULL;
    }
    wv_model_free(m);
    wv_repo_close(r);
}

/* Progress callbacks of commit, checkout and save: called, increasing,
 * ending at the total (the tensor data). */
struct prog {
    int calls;
    uint64_t done, total;
    int backwards;
};

static void on_prog(void *arg, uint64_t done, uint64_t total)
{
    struct prog *p = arg;
    if (done < p->done)
        p->backwards++;
    p->calls++;
    p->done = done;
    p->total = total;
}

TEST_IMPL(repo_progress_callbacks)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = 64 << 10;
    ASSERT_OK(wv_repo_init("mem://progress", &io));
    wv_repo *r = NULL;
    char eb[WV_ERRBUF_SIZE], id[WV_ID_HEX];
    ASSERT_OK(wv_repo_open("mem://progress", eb, sizeof eb, &r));
    wv_model *m = make_set(0, 1 << 20), *back = NULL;
    uint64_t bytes = 0;
    for (size_t i = 0; i < wv_model_count(m); i++)
        bytes += wv_tensor_nbytes(wv_model_tensor(m, i));

    struct prog pc = {0, 0, 0, 0};
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.progress = on_prog;
    co.progress_arg = &pc;
    ASSERT_OK(wv_repo_commit(r, m, NULL, &co, id));
    ASSERT(pc.calls >= 16); /* 1 MiB in 64 KiB chunks */
    ASSERT_EQ(pc.backwards, 0);
    ASSERT_EQ(pc.total, bytes);
    ASSERT_EQ(pc.done, bytes);

    struct prog pk = {0, 0, 0, 0};
    wv_checkout_opts ko = WV_CHECKOUT_OPTS_INIT;
    ko.progress = on_prog;
    ko.progress_arg = &pk;
    ASSERT_OK(wv_repo_checkout(r, id, &ko, &back));
    ASSERT(pk.calls >= 16);
    ASSERT_EQ(pk.backwards, 0);
    ASSERT_EQ(pk.total, bytes);
    ASSERT_EQ(pk.done, bytes);

    struct prog ps = {0, 0, 0, 0};
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.progress = on_prog;
    so.progress_arg = &ps;
    so.cast = WV_F16; /* F32 and BF16 halve or stay; the total says so */
    ASSERT_OK(wv_model_save(back, wvtest_path("progress.safetensors"), &so));
    ASSERT(ps.calls >= 1);
    ASSERT_EQ(ps.backwards, 0);
    ASSERT_EQ(ps.total, (bytes - 200 - 8) / 2 + 200 + 8);
    ASSERT(ps.done >= ps.total); /* the header comes on top */
    wv_model_free(back);
    wv_model_free(m);
    wv_repo_close(r);
}

/* Every store call that reaches the backend counts one request with the
 * bytes it moved; wv_repo_sync reports the sum over its handles. */
TEST_IMPL(store_counts_requests)
{
    struct wv__err e = {0};
    struct wv__store *s;
    struct wv__store_count c;
    unsigned char buf[16];
    size_t n;
    uint64_t size;
    ASSERT_OK(wv__store_open("mem://counts", true, &e, &s));
    wv__store_counts(s, &c);
    ASSERT_EQ(c.requests, 0);
    ASSERT_OK(wv__store_put(s, "packs/a", "0123456789", 10, 0));
    ASSERT_OK(wv__store_get(s, "packs/a", 2, buf, 8, &n));
    ASSERT_OK(wv__store_stat(s, "packs/a", &size));
    ASSERT_EQ(wv__store_get(s, "packs/none", 0, buf, 4, &n), WV_NOTFOUND);
    wv__store_counts(s, &c);
    ASSERT_EQ(c.requests, 4);
    ASSERT_EQ(c.bytes_sent, 10);
    ASSERT_EQ(c.bytes_received, 8);
    /* a fault injected by the wrapper never reached the backend */
    wv__store_fail_after(1, WV_IO, 5);
    ASSERT_EQ(wv__store_stat(s, "packs/a", &size), WV_IO);
    wv__store_fail_after(0, 0, 0);
    wv__store_counts(s, &c);
    ASSERT_EQ(c.requests, 4);
    wv__store_close(s);
}

TEST_IMPL(sync_counts_requests)
{
    char a[512], b[512], id[WV_ID_HEX];
    wv_repo *r;
    wv_sync_result res;
    snprintf(a, sizeof a, "%s/count-a", wvtest_tmpdir());
    snprintf(b, sizeof b, "%s/count-b", wvtest_tmpdir());
    ASSERT_OK(wv_repo_init(a, NULL));
    ASSERT_OK(wv_repo_open(a, NULL, 0, &r));
    wv_model *m = make_set(0, 1 << 20);
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
    wv_model_free(m);
    wv_repo_close(r);

    memset(&res, 0xff, sizeof res);
    ASSERT_OK(wv_repo_sync(a, b, NULL, &res));
    ASSERT(res.objects_copied > 0);
    /* each copied object: a get from a, a put to b, at least */
    ASSERT(res.requests >= 2 * res.objects_copied);
    ASSERT(res.bytes_received >= res.bytes_copied);
    ASSERT(res.bytes_sent >= res.bytes_copied);
    ASSERT(res.bytes_copied > 0);
    uint64_t first = res.requests;

    /* Up to date: listings and ref reads only, no object bytes. */
    memset(&res, 0xff, sizeof res);
    ASSERT_OK(wv_repo_sync(a, b, NULL, &res));
    ASSERT_EQ(res.objects_copied, 0);
    ASSERT(res.requests > 0 && res.requests < first);
    ASSERT(res.bytes_received < (1 << 16));
    ASSERT(res.bytes_sent < 4096); /* the lock, no object */
}

/* ---- a pack damaged in the source of a sync ---------------------------- */

/* Flip one byte of object key in store uri (read whole, written back). */
static int flip_object_byte(const char *uri, const char *key, uint64_t off)
{
    struct wv__err e = {0};
    struct wv__store *s = NULL;
    unsigned char *b = NULL;
    size_t n = 0;
    int rc = wv__store_open(uri, false, &e, &s);
    if (rc == WV_OK)
        rc = wv__store_get_all(s, key, (size_t)1 << 30, &b, &n);
    if (rc == WV_OK && off >= n)
        rc = WV_RANGE;
    if (rc == WV_OK) {
        b[off] ^= 0x40;
        rc = wv__store_put(s, key, b, n, 0);
    }
    wv__free(b);
    wv__store_close(s);
    return rc;
}

void wvtest_sync_damaged_pack(const char *src, const char *dst, int create)
{
    char eb[WV_ERRBUF_SIZE] = "", pkey[96], chunk[65], before[WV_ID_HEX] = "";
    char after[WV_ID_HEX] = "", cmd[1200];
    struct wv__chunk_loc pick;
    struct wv__err e = {0};
    struct wv__store *ds = NULL;
    wv_repo *r = NULL;
    uint64_t size;
    bool found = false;
    memset(&pick, 0, sizeof pick);
    /* The largest chunk of the source in a pack the destination lacks. */
    if (!create) {
        ASSERT_OK(wv_repo_open(dst, eb, sizeof eb, &r));
        ASSERT_OK(wv_repo_resolve(r, "main", before));
        wv_repo_close(r);
        ASSERT_OK(wv__store_open(dst, false, &e, &ds));
    }
    ASSERT_OK(wv_repo_open(src, eb, sizeof eb, &r));
    ASSERT_OK(wv__repo_load_index(r));
    for (size_t i = 0; i < r->cidx.cap; i++) {
        const struct wv__chunk_loc *l = &r->cidx.slots[i];
        if (l->stored_len == 0 || (found && l->stored_len <= pick.stored_len))
            continue;
        wv__pack_key(l->pack, pkey);
        if (ds && wv__store_stat(ds, pkey, &size) == WV_OK)
            continue;
        pick = *l;
        found = true;
    }
    wv_repo_close(r);
    wv__store_close(ds);
    ASSERT(found);
    wv__pack_key(pick.pack, pkey);
    wv__hex(pick.id, 32, chunk);
    chunk[12] = '\0';
    uint64_t at = pick.off + pick.stored_len / 2;
    ASSERT_OK(flip_object_byte(src, pkey, at));

    /* refused, naming the pack and the chunk; nothing of it kept */
    wv_sync_opts so = WV_SYNC_OPTS_INIT;
    wv_sync_result res;
    so.no_create = !create;
    so.errbuf = eb;
    so.errbuf_size = sizeof eb;
    eb[0] = '\0';
    int rc = wv_repo_sync(src, dst, &so, &res);
    ASSERT_EQ(wv_primary(rc), WV_CORRUPT);
    ASSERT_CONTAINS(eb, pkey);
    ASSERT_CONTAINS(eb, chunk);
    ASSERT_CONTAINS(eb, "not copied");
    ASSERT_OK(wv__store_open(dst, false, &e, &ds));
    ASSERT_EQ(wv__store_stat(ds, pkey, &size), WV_NOTFOUND);
    wv__store_close(ds);
    snprintf(cmd, sizeof cmd,
             "test -z \"$(find '%s' -name '.tmp-*' 2>/dev/null)\"", dst);
    ASSERT_EQ(system(cmd), 0);
    /* no ref moved (a new destination has none) */
    ASSERT_OK(wv_repo_open(dst, eb, sizeof eb, &r));
    rc = wv_repo_resolve(r, "main", after);
    wv_repo_close(r);
    if (create)
        ASSERT_EQ(rc, WV_NOTFOUND);
    else
        ASSERT_STREQ(after, before);

    /* repaired: the same call fetches it, checked, and the copy verifies */
    ASSERT_OK(flip_object_byte(src, pkey, at));
    memset(&res, 0, sizeof res);
    ASSERT_OK(wv_repo_sync(src, dst, &so, &res));
    ASSERT(res.chunks_verified >= 1);
    ASSERT_OK(wv_repo_open(dst, eb, sizeof eb, &r));
    rc = wv_repo_verify(r, NULL, NULL, NULL);
    if (rc != WV_OK)
        WVT_FAIL("%s does not verify: %s", dst, wv_repo_errmsg(r));
    wv_repo_close(r);
}

/* Clone and pull check every chunk as its pack arrives: a damaged one in
 * the source fails the transfer, naming the pack and the chunk, with
 * nothing of that pack or any ref kept; the run after the repair
 * completes. Compressed chunks (decoded, then hashed) and stored ones
 * (hashed where they lie); the count of checked chunks is every chunk.
 * A damaged manifest is refused the same way. */
TEST_IMPL(sync_checks_chunks)
{
    const char *comp[2] = {"zstd", "none"};
    for (int k = 0; k < 2; k++) {
        char a[512], b[512], id[WV_ID_HEX], eb[WV_ERRBUF_SIZE] = "";
        char cmd[600];
        wv_repo *r = NULL;
        wv_sync_result res;
        snprintf(a, sizeof a, "%s/damaged-%s-a", wvtest_tmpdir(), comp[k]);
        snprintf(b, sizeof b, "%s/damaged-%s-b", wvtest_tmpdir(), comp[k]);
        wv_init_opts io = WV_INIT_OPTS_INIT;
        io.compression = comp[k];
        io.chunk_size = 64 << 10;
        io.pack_size = 256 << 10;
        ASSERT_OK(wv_repo_init(a, &io));
        ASSERT_OK(wv_repo_open(a, eb, sizeof eb, &r));
        wv_model *m = make_set(0, 1 << 20);
        ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
        wv_model_free(m);
        ASSERT_OK(wv__repo_load_index(r));
        size_t n_chunks = r->cidx.n;
        wv_repo_close(r);
        /* a clean clone checks every chunk */
        ASSERT_OK(wv_repo_sync(a, b, NULL, &res));
        ASSERT_EQ(res.chunks_verified, n_chunks);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", b);
        ASSERT_EQ(system(cmd), 0);

        wvtest_sync_damaged_pack(a, b, 1); /* clone */
        if (wvtest_failed)
            return;
        ASSERT_OK(wv_repo_open(a, eb, sizeof eb, &r));
        m = make_set(1, 1 << 20);
        ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
        wv_model_free(m);
        wv_repo_close(r);
        wvtest_sync_damaged_pack(a, b, 0); /* pull */
        if (wvtest_failed)
            return;
        /* a manifest is checked against its name on arrival too */
        char mkey[96], c[600];
        struct wv__err e = {0};
        struct wv__store *cs = NULL;
        uint64_t size;
        wv__manifest_key(id, mkey);
        snprintf(c, sizeof c, "%s/damaged-%s-c", wvtest_tmpdir(), comp[k]);
        ASSERT_OK(flip_object_byte(a, mkey, 20));
        wv_sync_opts so = WV_SYNC_OPTS_INIT;
        so.errbuf = eb;
        so.errbuf_size = sizeof eb;
        ASSERT_EQ(wv_primary(wv_repo_sync(a, c, &so, NULL)), WV_CORRUPT);
        ASSERT_CONTAINS(eb, mkey);
        ASSERT_CONTAINS(eb, "does not hash to its name");
        ASSERT_OK(wv__store_open(c, false, &e, &cs));
        ASSERT_EQ(wv__store_stat(cs, mkey, &size), WV_NOTFOUND);
        wv__store_close(cs);
        ASSERT_OK(flip_object_byte(a, mkey, 20));
        ASSERT_OK(wv_repo_sync(a, c, &so, NULL));
    }
}
