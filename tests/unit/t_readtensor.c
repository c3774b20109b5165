/*
 * t_readtensor.c -- reading one tensor of a checkpoint without checking it
 * out: ranged reads at and across chunk boundaries, ranges past the end,
 * the streaming visit (each chunk once, bounded, a callback's error
 * returned), an encrypted repository, a damaged chunk named, and the
 * per-tensor chunk ids that say what a checkpoint shares with its parent.
 */
#include "repo.h"
#include "wvtest.h"

#define CS 4096
#define PASS "read tensor passphrase"

/* n bytes of a pattern that differs from chunk to chunk (seed varies it). */
static unsigned char *pattern(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n ? n : 1);
    uint32_t x = 2463534242u + seed;
    for (size_t i = 0; p && i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
    return p;
}

/* Commit "small" (16 bytes) and "big" (nbig bytes of data) as U8. */
static int commit_two(wv_repo *r, const unsigned char *data, size_t nbig,
                      char id[WV_ID_HEX])
{
    wv_model *m;
    static const unsigned char small[16] = {1, 2, 3};
    uint64_t s1[1] = {16}, s2[1] = {nbig};
    if (wv_model_new(&m) != WV_OK)
        return WV_NOMEM;
    wv_model_add(m, "small", WV_U8, 1, s1, small, 16, WV_DATA_COPY);
    wv_model_add(m, "big", WV_U8, 1, s2, data, nbig, WV_DATA_COPY);
    int rc = wv_repo_commit(r, m, NULL, NULL, id);
    wv_model_free(m);
    return rc;
}

/* Every range of a table read back equal to the data. */
static void check_ranges(wv_repo *r, const char *id,
                         const unsigned char *data, uint64_t n)
{
    const uint64_t ranges[][2] = {
        {0, 0},      {0, 1},          {0, n},        {CS, CS},
        {CS - 1, 2}, {2 * CS - 1, 1}, {n - 1, 1},    {1, n - 2},
        {CS, n - CS}, {n, 0},         {3 * CS + 7, 100},
    };
    unsigned char *buf = malloc(n);
    ASSERT_NOT_NULL(buf);
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        uint64_t off = ranges[k][0], len = ranges[k][1];
        memset(buf, 0xAA, n);
        int rc = wv_repo_read_tensor(r, id, "big", off, len, buf);
        if (rc != WV_OK)
            WVT_FAIL("range %llu+%llu: %s", (unsigned long long)off,
                     (unsigned long long)len, wv_repo_errmsg(r));
        if (len && memcmp(buf, data + off, (size_t)len) != 0)
            WVT_FAIL("range %llu+%llu: wrong bytes",
                     (unsigned long long)off, (unsigned long long)len);
    }
    free(buf);
}

struct seen {
    pthread_mutex_t mu;
    uint64_t calls, bytes, first_off, last_end;
    int fail_at; /* return an error from this call (0: never) */
    const unsigned char *data;
    bool wrong;
};

static int on_chunk(void *arg, uint64_t off, const void *p, size_t n)
{
    struct seen *s = arg;
    int rc = WV_OK;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    s->bytes += n;
    if (off < s->first_off)
        s->first_off = off;
    if (off + n > s->last_end)
        s->last_end = off + n;
    if (off % CS != 0 || memcmp(p, s->data + off, n) != 0)
        s->wrong = true;
    if (s->fail_at && s->calls >= (uint64_t)s->fail_at)
        rc = WV_ERROR;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void seen_init(struct seen *s, const unsigned char *data)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->first_off = UINT64_MAX;
    s->data = data;
}

TEST_IMPL(readtensor_ranges_and_visit)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = CS;
    io.pack_size = 16 * CS;
    ASSERT_OK(wv_repo_init("mem://readtensor", &io));
    wv_repo *r = NULL;
    ASSERT_OK(wv_repo_open("mem://readtensor", NULL, 0, &r));
    /* 200 chunks and a partial one: more than the reader's ring */
    size_t n = 200 * CS + 123;
    unsigned char *data = pattern(n, 1);
    char id[WV_ID_HEX];
    ASSERT_NOT_NULL(data);
    ASSERT_OK(commit_two(r, data, n, id));
    check_ranges(r, id, data, n);

    /* past the end, an overflowing range, an unknown tensor */
    unsigned char b[8];
    ASSERT_EQ(wv_repo_read_tensor(r, id, "big", n, 1, b), WV_RANGE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "past the end of tensor 'big'");
    ASSERT_EQ(wv_repo_read_tensor(r, id, "big", n - 1, 2, b), WV_RANGE);
    ASSERT_EQ(wv_repo_read_tensor(r, id, "big", UINT64_MAX, 2, b), WV_RANGE);
    ASSERT_EQ(wv_repo_read_tensor(r, id, "small", 10, 7, b), WV_RANGE);
    ASSERT_EQ(wv_repo_read_tensor(r, id, "nope", 0, 1, b), WV_NOTFOUND);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "no tensor 'nope'");
    ASSERT_OK(wv_repo_read_tensor(r, "latest", "small", 0, 3, b));
    ASSERT_EQ(b[2], 3);

    /* a visit hands every overlapping chunk once, whole */
    struct seen s;
    seen_init(&s, data);
    ASSERT_OK(wv_repo_visit_tensor(r, id, "big", 0, n, on_chunk, &s));
    ASSERT_EQ(s.calls, 201);
    ASSERT_EQ(s.bytes, n);
    ASSERT(!s.wrong);
    seen_init(&s, data);
    ASSERT_OK(wv_repo_visit_tensor(r, id, "big", CS - 1, 2, on_chunk, &s));
    ASSERT_EQ(s.calls, 2);
    ASSERT_EQ(s.first_off, 0);
    ASSERT_EQ(s.last_end, 2 * CS);
    seen_init(&s, data);
    ASSERT_OK(wv_repo_visit_tensor(r, id, "big", 5 * CS, CS, on_chunk, &s));
    ASSERT_EQ(s.calls, 1);
    ASSERT_EQ(s.first_off, 5 * CS);
    /* a callback's error stops the read and comes back */
    seen_init(&s, data);
    s.fail_at = 3;
    ASSERT_EQ(wv_repo_visit_tensor(r, id, "big", 0, n, on_chunk, &s),
              WV_ERROR);
    ASSERT(s.calls < 201);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "stopped by the caller");
    ASSERT_EQ(wv_repo_visit_tensor(r, id, "big", 0, n, NULL, NULL),
              WV_MISUSE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "callback");
    /* no buffer: refused with its own message, not the last call's */
    ASSERT_EQ(wv_repo_read_tensor(r, id, "big", 0, 4, NULL), WV_MISUSE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "buffer");
    free(data);
    wv_repo_close(r);
}

TEST_IMPL(readtensor_encrypted)
{
    char dir[600], eb[WV_ERRBUF_SIZE] = "";
    snprintf(dir, sizeof dir, "%s/readtensor-enc", wvtest_tmpdir());
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.compression = "zstd";
    io.chunk_size = CS;
    io.pack_size = 16 * CS;
    io.encrypt = 1;
    io.passphrase = PASS;
    io.errbuf = eb;
    io.errbuf_size = sizeof eb;
    if (wv_repo_init(dir, &io) != WV_OK)
        WVT_FAIL("init %s: %s", dir, eb);
    wv_open_opts oo = WV_OPEN_OPTS_INIT;
    oo.passphrase = PASS;
    oo.errbuf = eb;
    oo.errbuf_size = sizeof eb;
    wv_repo *r = NULL;
    ASSERT_OK(wv_repo_open_ex(dir, &oo, &r));
    ASSERT_EQ(wv_repo_encrypted(r), 1);
    size_t n = 20 * CS + 5;
    unsigned char *data = pattern(n, 2);
    /* half of it compressible */
    memset(data, 0, 10 * CS);
    char id[WV_ID_HEX];
    ASSERT_OK(commit_two(r, data, n, id));
    wv_repo_close(r);
    ASSERT_OK(wv_repo_open_ex(dir, &oo, &r));
    check_ranges(r, id, data, n);
    free(data);
    wv_repo_close(r);
}

TEST_IMPL(readtensor_damaged_chunk_named)
{
    char dir[600], cmd[1400];
    snprintf(dir, sizeof dir, "%s/readtensor-damage", wvtest_tmpdir());
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.compression = "none";
    io.chunk_size = CS;
    io.pack_size = 1 << 20;
    ASSERT_OK(wv_repo_init(dir, &io));
    wv_repo *r = NULL;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    size_t n = 64 * CS;
    unsigned char *data = pattern(n, 3);
    char id[WV_ID_HEX];
    ASSERT_OK(commit_two(r, data, n, id));
    wv_repo_close(r);
    /* One byte flipped 100 KiB into the (single) pack: inside one of the
     * chunks of "big", which is all but 16 bytes of the pack. */
    snprintf(cmd, sizeof cmd,
             "for f in $(find %s/packs -type f); do printf '\\xff' | dd "
             "of=$f bs=1 seek=102400 conv=notrunc status=none; done",
             dir);
    ASSERT_OK(system(cmd));
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    unsigned char *buf = malloc(n);
    ASSERT_NOT_NULL(buf);
    ASSERT_EQ(wv_repo_read_tensor(r, id, "big", 0, n, buf),
              WV_CORRUPT_CHECKSUM);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "damaged");
    ASSERT_CONTAINS(wv_repo_errmsg(r), "chunk ");
    ASSERT_CONTAINS(wv_repo_errmsg(r), "tensor 'big'");
    /* Ranges that miss the damaged chunk still read: only the chunks
     * that overlap are read. Find one that fails and one that does not. */
    int bad = 0, good = 0;
    for (size_t c = 0; c < 64; c++) {
        int rc = wv_repo_read_tensor(r, id, "big", c * CS, CS, buf);
        if (rc == WV_OK && memcmp(buf, data + c * CS, CS) == 0)
            good++;
        else if (rc == WV_CORRUPT_CHECKSUM)
            bad++;
        else
            WVT_FAIL("chunk %zu: %d %s", c, rc, wv_repo_errmsg(r));
    }
    ASSERT_EQ(bad, 1);
    ASSERT_EQ(good, 63);
    free(buf);
    free(data);
    wv_repo_close(r);
}

struct ids {
    size_t n_tensors;
    size_t n[4];
    unsigned char id[4][80][32];
    uint64_t chunk_size;
};

static int on_tensor(void *arg, const char *name, uint64_t cs, size_t n,
                     const unsigned char (*ids)[32])
{
    struct ids *s = arg;
    (void)name;
    if (s->n_tensors >= 4 || n > 80)
        return WV_RANGE;
    s->chunk_size = cs;
    s->n[s->n_tensors] = n;
    memcpy(s->id[s->n_tensors], ids, n * 32);
    s->n_tensors++;
    return WV_OK;
}

TEST_IMPL(readtensor_chunk_ids_shared)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = CS;
    io.pack_size = 16 * CS;
    ASSERT_OK(wv_repo_init("mem://readtensor-ids", &io));
    wv_repo *r = NULL;
    ASSERT_OK(wv_repo_open("mem://readtensor-ids", NULL, 0, &r));
    size_t n = 10 * CS;
    unsigned char *data = pattern(n, 4);
    char a[WV_ID_HEX], b[WV_ID_HEX];
    ASSERT_OK(commit_two(r, data, n, a));
    data[3 * CS + 5] ^= 1; /* chunk 3 changes */
    ASSERT_OK(commit_two(r, data, n, b));
    struct ids *x = calloc(2, sizeof *x);
    ASSERT_NOT_NULL(x);
    ASSERT_OK(wv_repo_tensor_chunks(r, a, on_tensor, &x[0]));
    ASSERT_OK(wv_repo_tensor_chunks(r, b, on_tensor, &x[1]));
    ASSERT_EQ(x[0].n_tensors, 2);
    ASSERT_EQ(x[0].chunk_size, CS);
    ASSERT_EQ(x[0].n[0], 1);  /* small */
    ASSERT_EQ(x[0].n[1], 10); /* big */
    for (size_t c = 0; c < 10; c++)
        ASSERT_EQ(memcmp(x[0].id[1][c], x[1].id[1][c], 32) == 0, c != 3);
    ASSERT_EQ(memcmp(x[0].id[0][0], x[1].id[0][0], 32), 0);
    ASSERT_EQ(wv_repo_tensor_chunks(r, "nosuchref", on_tensor, &x[0]),
              WV_NOTFOUND);
    free(x);
    free(data);
    wv_repo_close(r);
}
