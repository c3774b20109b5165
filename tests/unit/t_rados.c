/*
 * t_rados.c -- the RADOS backend (src/store/rados.c) against a running
 * Ceph cluster. Skipped (exit 77) when CEPH_CONF is unset; ctest gives it
 * the cluster of tests/ceph_fixture.sh.
 *
 * Every test works under its own prefix "<test>-<pid>" in the pool
 * "wvt-rados-unit" and removes what it wrote, also when an assertion
 * fails (the body runs in a function of its own). What the backend
 * hides (tail pieces of striped objects) is checked with the `rados`
 * command's raw listing.
 */
#include "store.h"
#include "wvtest.h"

#include <pthread.h>

#define POOL "wvt-rados-unit"

extern int wv__rados_fail_piece; /* rados.c's test hook */

struct ctx {
    char uri[256];
    char prefix[128];
    struct wv__err err;
    struct wv__store *s;
};

static bool have_ceph(void)
{
    const char *c = getenv("CEPH_CONF");
    return c != NULL && c[0] != '\0';
}

static int ctx_open(struct ctx *c, const char *name)
{
    memset(c, 0, sizeof *c);
    snprintf(c->prefix, sizeof c->prefix, "%s-%ld", name, (long)getpid());
    snprintf(c->uri, sizeof c->uri, "rados://" POOL "/%s", c->prefix);
    return wv__store_open(c->uri, true, &c->err, &c->s);
}

static int del_cb(void *arg, const char *key, uint64_t size)
{
    (void)size;
    struct wv__store *s = arg;
    s->methods->del(s, key);
    return 0;
}

/* Remove everything under the test's prefix, orphaned pieces included. */
static void ctx_close(struct ctx *c)
{
    if (c->s == NULL)
        return;
    c->s->methods->list(c->s, "", del_cb, c->s);
    struct wv__store_sweep age = {0, 0};
    c->s->methods->control(c->s, WV_STORE_SWEEP, &age);
    wv__store_close(c->s);
    c->s = NULL;
}

/* How many raw RADOS objects have names starting with "<prefix>/<start>". */
static int raw_count(const struct ctx *c, const char *start)
{
    char cmd[512], line[1024], want[512];
    snprintf(cmd, sizeof cmd, "rados -p %s ls 2>/dev/null", POOL);
    snprintf(want, sizeof want, "%s/%s", c->prefix, start);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    int n = 0;
    while (fgets(line, sizeof line, p))
        if (strncmp(line, want, strlen(want)) == 0)
            n++;
    return pclose(p) == 0 ? n : -1;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    for (; i < n; i++)
        p[i] = (unsigned char)(i * 31 + seed);
}

struct seen {
    char keys[16][64];
    uint64_t sizes[16];
    int n;
};

static int seen_cb(void *arg, const char *key, uint64_t size)
{
    struct seen *sn = arg;
    if (sn->n < 16) {
        snprintf(sn->keys[sn->n], sizeof sn->keys[0], "%s", key);
        sn->sizes[sn->n] = size;
    }
    sn->n++;
    return 0;
}

static uint64_t seen_size(const struct seen *sn, const char *key)
{
    for (int i = 0; i < sn->n && i < 16; i++)
        if (strcmp(sn->keys[i], key) == 0)
            return sn->sizes[i];
    return UINT64_MAX;
}

static int stop_cb(void *arg, const char *key, uint64_t size)
{
    (void)key;
    (void)size;
    ++*(int *)arg;
    return 42;
}

/* ---- put/get/stat/del/list ----------------------------------------------- */

static void roundtrip(struct ctx *c)
{
    struct wv__store *s = c->s;
    char buf[64];
    size_t n;
    uint64_t sz;

    ASSERT_OK(wv__store_put(s, "a/x", "hello", 5, 0));
    ASSERT_OK(wv__store_put(s, "a/y", "world!", 6, WV_PUT_NOSYNC));
    ASSERT_OK(wv__store_put(s, "b/z", "", 0, 0));
    ASSERT_OK(wv__store_control(s, WV_STORE_SYNC, NULL));

    ASSERT_OK(wv__store_get(s, "a/x", 0, buf, 5, &n));
    ASSERT_EQ(n, 5);
    ASSERT_MEMEQ(buf, "hello", 5);
    ASSERT_OK(wv__store_get(s, "a/y", 2, buf, 3, &n));
    ASSERT_MEMEQ(buf, "rld", 3);
    /* Past the end: what is there, zeros after, WV_IO_SHORT_READ. */
    memset(buf, 'q', sizeof buf);
    ASSERT_EQ(wv__store_get(s, "a/y", 4, buf, 8, &n), WV_IO_SHORT_READ);
    ASSERT_EQ(n, 2);
    ASSERT_MEMEQ(buf, "d!\0\0\0\0\0", 8);
    wv__clearerr(&c->err);
    ASSERT_EQ(wv__store_get(s, "a/x", 100, buf, 4, &n), WV_IO_SHORT_READ);
    ASSERT_EQ(n, 0);
    wv__clearerr(&c->err);
    ASSERT_OK(wv__store_get(s, "b/z", 0, buf, 0, &n));
    ASSERT_EQ(n, 0);

    /* Missing keys. */
    ASSERT_EQ(wv__store_get(s, "a/nope", 0, buf, 4, &n), WV_NOTFOUND);
    ASSERT_CONTAINS(c->err.msg, "a/nope");
    ASSERT_CONTAINS(c->err.msg, POOL);
    wv__clearerr(&c->err);
    ASSERT_EQ(wv__store_stat(s, "a/nope", &sz), WV_NOTFOUND);
    ASSERT_EQ(wv__store_del(s, "a/nope"), WV_NOTFOUND);
    wv__clearerr(&c->err);

    ASSERT_OK(wv__store_stat(s, "a/y", &sz));
    ASSERT_EQ(sz, 6);
    ASSERT_OK(wv__store_stat(s, "b/z", &sz));
    ASSERT_EQ(sz, 0);

    struct seen sn = {0};
    ASSERT_OK(wv__store_list(s, "a/", seen_cb, &sn));
    ASSERT_EQ(sn.n, 2);
    ASSERT_EQ(seen_size(&sn, "a/x"), 5);
    ASSERT_EQ(seen_size(&sn, "a/y"), 6);
    memset(&sn, 0, sizeof sn);
    ASSERT_OK(wv__store_list(s, "", seen_cb, &sn));
    ASSERT_EQ(sn.n, 3);
    ASSERT_EQ(seen_size(&sn, "b/z"), 0);
    memset(&sn, 0, sizeof sn);
    ASSERT_OK(wv__store_list(s, "c/", seen_cb, &sn));
    ASSERT_EQ(sn.n, 0);
    int calls = 0;
    ASSERT_EQ(wv__store_list(s, "", stop_cb, &calls), 42);
    ASSERT_EQ(calls, 1);

    /* IF_ABSENT keeps the existing object; a plain put replaces it. */
    ASSERT_OK(wv__store_put(s, "a/x", "HELLO", 5, WV_PUT_IF_ABSENT));
    ASSERT_OK(wv__store_get(s, "a/x", 0, buf, 5, &n));
    ASSERT_MEMEQ(buf, "hello", 5);
    ASSERT_OK(wv__store_put(s, "a/x", "bye", 3, 0));
    ASSERT_OK(wv__store_stat(s, "a/x", &sz));
    ASSERT_EQ(sz, 3);

    /* Modification time, unknown control ops. */
    struct wv__store_mtime mt = {"a/x", 0};
    ASSERT_OK(wv__store_control(s, WV_STORE_MTIME, &mt));
    ASSERT(llabs((long long)(mt.mtime - time(NULL))) < 120);
    struct wv__store_mtime mt2 = {"a/nope", 0};
    ASSERT_EQ(wv__store_control(s, WV_STORE_MTIME, &mt2), WV_NOTFOUND);
    ASSERT_EQ(wv__store_control(s, 999, NULL), WV_NOTFOUND);

    /* Deletes. */
    ASSERT_OK(wv__store_del(s, "a/x"));
    ASSERT_EQ(wv__store_stat(s, "a/x", &sz), WV_NOTFOUND);
    ASSERT_EQ(wv__store_del(s, "a/x"), WV_NOTFOUND);
    memset(&sn, 0, sizeof sn);
    ASSERT_OK(wv__store_list(s, "a/", seen_cb, &sn));
    ASSERT_EQ(sn.n, 1);

    /* A second handle on the same pool and prefix sees the same objects;
     * one on another prefix does not. */
    struct ctx o = {0};
    struct wv__store *s2 = NULL;
    ASSERT_OK(wv__store_open(c->uri, false, &o.err, &s2));
    ASSERT_OK(wv__store_get(s2, "a/y", 0, buf, 6, &n));
    ASSERT_MEMEQ(buf, "world!", 6);
    wv__store_close(s2);
    snprintf(o.uri, sizeof o.uri, "rados://" POOL "/%.100s-other", c->prefix);
    ASSERT_OK(wv__store_open(o.uri, false, &o.err, &s2));
    ASSERT_EQ(wv__store_stat(s2, "a/y", &sz), WV_NOTFOUND);
    wv__store_close(s2);
    /* Without a prefix (or with an empty one) keys are object names. */
    const char *bare[] = {"rados://" POOL, "rados://" POOL "/",
                          "rados://" POOL "//"};
    for (int i = 0; i < 3; i++) {
        char key[160];
        snprintf(key, sizeof key, "%s/a/y", c->prefix);
        ASSERT_OK(wv__store_open(bare[i], false, &o.err, &s2));
        ASSERT_OK(wv__store_stat(s2, key, &sz));
        ASSERT_EQ(sz, 6);
        snprintf(key, sizeof key, "%s/a/", c->prefix);
        memset(&sn, 0, sizeof sn);
        ASSERT_OK(wv__store_list(s2, key, seen_cb, &sn));
        wv__store_close(s2);
        ASSERT_EQ(sn.n, 1);
        snprintf(key, sizeof key, "%s/a/y", c->prefix);
        ASSERT_STREQ(sn.keys[0], key);
    }
}

TEST_IMPL(rados_roundtrip)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    ASSERT_OK(ctx_open(&c, "roundtrip"));
    roundtrip(&c);
    /* no streamed transfers: sync gets and puts, a direct call is refused
     * in one line */
    struct wv__store_wfile w = {"packs/ab/x", 0, -1, NULL};
    bool exists;
    size_t n;
    ASSERT(!wv__store_can_stream(c.s, c.s));
    ASSERT_EQ(wv__store_put_open(c.s, &w, &exists), WV_UNSUPPORTED);
    ASSERT_EQ(wv__store_get_fd(c.s, "packs/ab/x", 0, 3, 1, 0, &n),
              WV_UNSUPPORTED);
    ASSERT_CONTAINS(c.err.msg, "no streamed transfers");
    wv__clearerr(&c.err);
    ctx_close(&c);
}

/* ---- striped objects ----------------------------------------------------- */

struct range {
    uint64_t off;
    size_t len;
};

/* Put `size` pattern bytes, read them back whole and at ranges around every
 * stripe boundary and at random, then delete: no raw object is left. */
static void striped(struct ctx *c, size_t size, size_t stripe, int nrand)
{
    struct wv__store *s = c->s;
    unsigned char *src = malloc(size), *dst = malloc(size + 64);
    ASSERT(src && dst);
    fill(src, size, size);
    ASSERT_OK(wv__store_put(s, "packs/big", src, size, WV_PUT_NOSYNC));
    uint64_t pieces = (size - 1) / stripe + 1, sz;
    ASSERT(pieces > 1);
    ASSERT_EQ(raw_count(c, "packs/big"), (int)pieces);
    ASSERT_OK(wv__store_stat(s, "packs/big", &sz));
    ASSERT_EQ(sz, size);
    struct seen sn = {0};
    ASSERT_OK(wv__store_list(s, "packs/", seen_cb, &sn));
    ASSERT_EQ(sn.n, 1);
    ASSERT_EQ(seen_size(&sn, "packs/big"), size);

    size_t n;
    memset(dst, 0xee, size);
    ASSERT_OK(wv__store_get(s, "packs/big", 0, dst, size, &n));
    ASSERT_EQ(n, size);
    ASSERT(memcmp(src, dst, size) == 0);

    struct range rg[64];
    int k = 0;
    for (uint64_t b = stripe; b < size && k < 40; b += stripe) {
        rg[k++] = (struct range){b - 1, 2};
        rg[k++] = (struct range){b, 1};
        rg[k++] = (struct range){b - 100, stripe + 200 < size - (b - 100)
                                              ? stripe + 200
                                              : size - (b - 100)};
    }
    rg[k++] = (struct range){size - 1, 1};
    rg[k++] = (struct range){0, 1};
    uint64_t x = 12345;
    for (int i = 0; i < nrand && k < 64; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t off = (x >> 11) % size;
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t room = size - off;
        if (i % 2 && room > 3 * stripe)
            room = 3 * stripe; /* short ranges too, not only long ones */
        size_t len = (size_t)((x >> 11) % room + 1);
        rg[k++] = (struct range){off, len};
    }
    for (int i = 0; i < k; i++) {
        memset(dst, 0xee, rg[i].len);
        ASSERT_OK(wv__store_get(s, "packs/big", rg[i].off, dst, rg[i].len,
                                &n));
        ASSERT_EQ(n, rg[i].len);
        if (memcmp(dst, src + rg[i].off, rg[i].len) != 0)
            WVT_FAIL("range %llu+%zu differs",
                     (unsigned long long)rg[i].off, rg[i].len);
    }
    /* Across the end. */
    memset(dst, 0xee, 64);
    ASSERT_EQ(wv__store_get(s, "packs/big", size - 10, dst, 64, &n),
              WV_IO_SHORT_READ);
    ASSERT_EQ(n, 10);
    ASSERT_MEMEQ(dst, src + size - 10, 10);
    ASSERT(dst[10] == 0 && dst[63] == 0);
    wv__clearerr(&c->err);

    /* IF_ABSENT on an existing striped object writes nothing. */
    ASSERT_OK(wv__store_put(s, "packs/big", dst, size, WV_PUT_IF_ABSENT));
    ASSERT_OK(wv__store_get(s, "packs/big", size / 2, dst, 4096, &n));
    ASSERT_MEMEQ(dst, src + size / 2, 4096);

    ASSERT_OK(wv__store_del(s, "packs/big"));
    ASSERT_EQ(wv__store_stat(s, "packs/big", &sz), WV_NOTFOUND);
    ASSERT_EQ(raw_count(c, "packs/big"), 0);
    free(src);
    free(dst);
}

TEST_IMPL(rados_striped_300m)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    unsetenv("WV_RADOS_STRIPE");
    ASSERT_OK(ctx_open(&c, "big"));
    /* 300 MiB and an odd tail: 38 pieces of the default 8 MiB. */
    striped(&c, (300u << 20) + 12345, 8u << 20, 20);
    ctx_close(&c);
}

TEST_IMPL(rados_striped_small)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    /* 64 KiB stripes: 21 pieces, more than any window in flight. */
    setenv("WV_RADOS_STRIPE", "64K", 1);
    int rc = ctx_open(&c, "small");
    unsetenv("WV_RADOS_STRIPE");
    ASSERT_OK(rc);
    striped(&c, (20u << 16) + 777, 64u << 10, 20);
    ctx_close(&c);
}

TEST_IMPL(rados_bad_stripe)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    setenv("WV_RADOS_STRIPE", "100M", 1);
    int rc = ctx_open(&c, "badstripe");
    unsetenv("WV_RADOS_STRIPE");
    ASSERT_EQ(rc, WV_MISUSE);
    ASSERT_CONTAINS(c.err.msg, "WV_RADOS_STRIPE");
}

/* ---- a put that fails halfway leaves nothing ----------------------------- */

static void put_fails(struct ctx *c)
{
    struct wv__store *s = c->s;
    size_t size = 10 * 65536 + 99; /* 11 pieces */
    unsigned char *src = malloc(size);
    uint64_t sz;
    ASSERT(src);
    fill(src, size, 7);
    /* A tail fails (after others were written, in parallel), then the
     * head itself fails; with and without IF_ABSENT. */
    int fail_at[] = {6, 10, 0};
    for (int f = 0; f < 3; f++) {
        for (unsigned flags = 0; flags <= WV_PUT_IF_ABSENT; flags++) {
            wv__clearerr(&c->err);
            wv__rados_fail_piece = fail_at[f];
            int rc = wv__store_put(s, "packs/torn", src, size, flags);
            wv__rados_fail_piece = -1;
            ASSERT_EQ(rc, WV_BACKEND);
            ASSERT_CONTAINS(c->err.msg, "packs/torn");
            ASSERT_CONTAINS(c->err.msg, POOL);
            ASSERT_EQ(wv__store_stat(s, "packs/torn", &sz), WV_NOTFOUND);
            struct seen sn = {0};
            ASSERT_OK(wv__store_list(s, "", seen_cb, &sn));
            ASSERT_EQ(sn.n, 0);
            ASSERT_EQ(raw_count(c, "packs/torn"), 0);
        }
    }
    /* The same through the store wrapper's short-write fault. */
    wv__clearerr(&c->err);
    wv__store_fault(1, WV__SFAULT_SHORT_WRITE, WV_IO, EIO);
    ASSERT_EQ(wv__store_put(s, "packs/torn", src, size, 0), WV_IO);
    wv__store_fault(0, 0, 0, 0);
    ASSERT_EQ(wv__store_stat(s, "packs/torn", &sz), WV_NOTFOUND);
    ASSERT_EQ(raw_count(c, "packs/torn"), 0);
    /* And then it works. */
    wv__clearerr(&c->err);
    ASSERT_OK(wv__store_put(s, "packs/torn", src, size, WV_PUT_IF_ABSENT));
    ASSERT_OK(wv__store_stat(s, "packs/torn", &sz));
    ASSERT_EQ(sz, size);
    ASSERT_EQ(raw_count(c, "packs/torn"), 11);
    free(src);
}

TEST_IMPL(rados_put_fails)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    setenv("WV_RADOS_STRIPE", "65536", 1);
    int rc = ctx_open(&c, "torn");
    unsetenv("WV_RADOS_STRIPE");
    ASSERT_OK(rc);
    put_fails(&c);
    wv__rados_fail_piece = -1;
    ctx_close(&c);
}

/* ---- delete and recreate; overwrite; orphan sweep ------------------------ */

static void recreate(struct ctx *c)
{
    struct wv__store *s = c->s;
    size_t big = 9 * 65536 + 5, small = 3 * 65536 + 1, n;
    unsigned char *a = malloc(big), *b = malloc(big), *d = malloc(big);
    uint64_t sz;
    ASSERT(a && b && d);
    fill(a, big, 1);
    fill(b, big, 2);

    /* Objects whose names look like pieces are listed unless they are
     * pieces of a head listed with them. */
    ASSERT_OK(wv__store_put(s, "x", a, small, 0));
    ASSERT_OK(wv__store_put(s, "x.000007", "seven", 5, 0));
    ASSERT_OK(wv__store_put(s, "v1", "v", 1, 0));
    ASSERT_OK(wv__store_put(s, "v1.000001", "one", 3, 0));
    struct seen sn = {0};
    ASSERT_OK(wv__store_list(s, "", seen_cb, &sn));
    ASSERT_EQ(sn.n, 4);
    ASSERT_EQ(seen_size(&sn, "x"), small);
    ASSERT_EQ(seen_size(&sn, "x.000007"), 5);
    ASSERT_EQ(seen_size(&sn, "v1"), 1);
    ASSERT_EQ(seen_size(&sn, "v1.000001"), 3);
    ASSERT_OK(wv__store_get(s, "x.000007", 0, d, 5, &n));
    ASSERT_MEMEQ(d, "seven", 5);
    ASSERT_EQ(wv__store_stat(s, "x.000001", &sz), WV_NOTFOUND);
    memset(&sn, 0, sizeof sn);
    ASSERT_OK(wv__store_list(s, "x.", seen_cb, &sn));
    ASSERT_EQ(sn.n, 1);
    ASSERT_OK(wv__store_del(s, "x"));
    ASSERT_OK(wv__store_del(s, "x.000007"));
    ASSERT_OK(wv__store_del(s, "v1"));
    ASSERT_OK(wv__store_del(s, "v1.000001"));
    ASSERT_EQ(raw_count(c, "x"), 0);
    ASSERT_EQ(raw_count(c, "v1"), 0);
    ASSERT_OK(wv__store_put(s, "obj", a, big, 0));
    ASSERT_OK(wv__store_del(s, "obj"));
    ASSERT_EQ(raw_count(c, "obj"), 0);
    ASSERT_OK(wv__store_put(s, "obj", b, big, WV_PUT_IF_ABSENT));
    ASSERT_OK(wv__store_get(s, "obj", 0, d, big, &n));
    ASSERT(memcmp(d, b, big) == 0);

    /* A plain put over a striped object with fewer pieces: readers see
     * the new one; the old extra tails are orphans, hidden from list and
     * removed by the sweep. */
    ASSERT_OK(wv__store_put(s, "obj", a, small, 0));
    ASSERT_OK(wv__store_stat(s, "obj", &sz));
    ASSERT_EQ(sz, small);
    ASSERT_OK(wv__store_get(s, "obj", 0, d, small, &n));
    ASSERT(memcmp(d, a, small) == 0);
    memset(&sn, 0, sizeof sn);
    ASSERT_OK(wv__store_list(s, "", seen_cb, &sn));
    ASSERT_EQ(sn.n, 1);
    ASSERT_EQ(seen_size(&sn, "obj"), small);
    ASSERT_EQ(raw_count(c, "obj"), 10);
    struct wv__store_sweep age = {3600, 0};
    ASSERT_OK(wv__store_control(s, WV_STORE_SWEEP, &age));
    ASSERT_EQ(raw_count(c, "obj"), 10); /* too young */
    age.min_age = 0;
    ASSERT_OK(wv__store_control(s, WV_STORE_SWEEP, &age));
    ASSERT_EQ(raw_count(c, "obj"), 4);
    ASSERT_OK(wv__store_get(s, "obj", 0, d, small, &n));
    ASSERT(memcmp(d, a, small) == 0);
    /* Back to a small single object, and to nothing. */
    ASSERT_OK(wv__store_put(s, "obj", "tiny", 4, 0));
    ASSERT_OK(wv__store_get(s, "obj", 0, d, 4, &n));
    ASSERT_MEMEQ(d, "tiny", 4);
    ASSERT_OK(wv__store_control(s, WV_STORE_SWEEP, &age));
    ASSERT_EQ(raw_count(c, "obj"), 1);
    ASSERT_OK(wv__store_del(s, "obj"));
    ASSERT_EQ(raw_count(c, "obj"), 0);

    /* Refs: create, delete, create again. */
    char v[128];
    ASSERT_OK(wv__store_ref_cas(s, "refs/heads/main", NULL, "aaa\n"));
    ASSERT_OK(wv__store_ref_get(s, "refs/heads/main", v, sizeof v));
    ASSERT_STREQ(v, "aaa\n");
    ASSERT_EQ(wv__store_ref_cas(s, "refs/heads/main", NULL, "bbb\n"),
              WV_CONFLICT);
    ASSERT_EQ(wv__store_ref_cas(s, "refs/heads/main", "zzz\n", NULL),
              WV_CONFLICT);
    ASSERT_EQ(wv__store_ref_cas(s, "refs/heads/main", "aa", "x"),
              WV_CONFLICT);
    wv__clearerr(&c->err);
    ASSERT_OK(wv__store_ref_cas(s, "refs/heads/main", "aaa\n", NULL));
    ASSERT_EQ(wv__store_ref_get(s, "refs/heads/main", v, sizeof v),
              WV_NOTFOUND);
    ASSERT_CONTAINS(c->err.msg, "refs/heads/main");
    wv__clearerr(&c->err);
    ASSERT_EQ(wv__store_ref_cas(s, "refs/heads/main", "aaa\n", "ccc\n"),
              WV_CONFLICT);
    wv__clearerr(&c->err);
    ASSERT_OK(wv__store_ref_cas(s, "refs/heads/main", NULL, "ccc\n"));
    ASSERT_OK(wv__store_ref_cas(s, "refs/heads/main", "ccc\n", "ddd\n"));
    ASSERT_OK(wv__store_ref_get(s, "refs/heads/main", v, 3));
    ASSERT_STREQ(v, "dd"); /* cap - 1 bytes */
    memset(&sn, 0, sizeof sn);
    ASSERT_OK(wv__store_list(s, "refs/", seen_cb, &sn));
    ASSERT_EQ(sn.n, 1);
    ASSERT_EQ(seen_size(&sn, "refs/heads/main"), 4);
    free(a);
    free(b);
    free(d);
}

TEST_IMPL(rados_recreate)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    setenv("WV_RADOS_STRIPE", "65536", 1);
    int rc = ctx_open(&c, "recreate");
    unsetenv("WV_RADOS_STRIPE");
    ASSERT_OK(rc);
    recreate(&c);
    ctx_close(&c);
}

/* ---- compare-and-swap race ----------------------------------------------- */

#define RACERS 8
#define ROUNDS 25

struct race {
    struct wv__store *s;
    pthread_barrier_t bar;
    char cur[64];         /* the value every racer expects this round */
    int wins[ROUNDS + 2]; /* winners per round */
    int other[ROUNDS + 2];
    char won_value[ROUNDS + 2][64];
    pthread_mutex_t mu;
};

struct racer {
    struct race *r;
    int id;
};

static void *race_main(void *arg)
{
    struct racer *me = arg;
    struct race *r = me->r;
    for (int round = 0; round < ROUNDS + 2; round++) {
        char want[64], expect[64];
        pthread_barrier_wait(&r->bar);
        snprintf(expect, sizeof expect, "%s", r->cur);
        snprintf(want, sizeof want, "r%d-t%d\n", round, me->id);
        pthread_barrier_wait(&r->bar);
        /* Round 0 creates, the last deletes, the others move it. */
        int rc = wv__store_ref_cas(r->s, "refs/heads/race",
                                   round == 0 ? NULL : expect,
                                   round == ROUNDS + 1 ? NULL : want);
        pthread_mutex_lock(&r->mu);
        if (rc == WV_OK) {
            r->wins[round]++;
            snprintf(r->won_value[round], 64, "%s", want);
        } else if (rc != WV_CONFLICT) {
            r->other[round]++;
        }
        pthread_mutex_unlock(&r->mu);
        pthread_barrier_wait(&r->bar);
        if (me->id == 0) { /* set up the next round */
            char v[64] = "";
            if (wv__store_ref_get(r->s, "refs/heads/race", v, sizeof v) !=
                WV_OK)
                v[0] = '\0';
            snprintf(r->cur, sizeof r->cur, "%s", v);
        }
    }
    return NULL;
}

static void race(struct ctx *c)
{
    static struct race r;
    struct racer rs[RACERS];
    pthread_t th[RACERS];
    memset(&r, 0, sizeof r);
    r.s = c->s;
    pthread_barrier_init(&r.bar, NULL, RACERS);
    pthread_mutex_init(&r.mu, NULL);
    for (int i = 0; i < RACERS; i++) {
        rs[i] = (struct racer){&r, i};
        ASSERT_OK(pthread_create(&th[i], NULL, race_main, &rs[i]));
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);
    for (int round = 0; round < ROUNDS + 2; round++) {
        if (r.wins[round] != 1 || r.other[round] != 0)
            WVT_FAIL("round %d: %d winners, %d other errors", round,
                     r.wins[round], r.other[round]);
    }
    char v[64];
    ASSERT_EQ(wv__store_ref_get(c->s, "refs/heads/race", v, sizeof v),
              WV_NOTFOUND);
    wv__clearerr(&c->err);
    pthread_barrier_destroy(&r.bar);
    pthread_mutex_destroy(&r.mu);
}

TEST_IMPL(rados_ref_race)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    ASSERT_OK(ctx_open(&c, "race"));
    race(&c);
    ctx_close(&c);
}

/* ---- connection and pool errors ------------------------------------------ */

TEST_IMPL(rados_auth)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    /* A client the cluster does not know. */
    setenv("WV_RADOS_CLIENT", "client.wvnosuch", 1);
    int rc = ctx_open(&c, "auth");
    unsetenv("WV_RADOS_CLIENT");
    ASSERT_EQ(rc, WV_AUTH);
    ASSERT_CONTAINS(c.err.msg, "client.wvnosuch");
    ASSERT(c.s == NULL);
    /* CEPH_CLIENT_ID is the fallback, with a keyring that has its name. */
    const char *kr = wvtest_path("nosuch.keyring");
    const char *krt = "[client.wvnosuch]\n\tkey = "
                      "AQBVj1VnAAAAABAAQb6fKoWwn0FJ2rQTA0a0wA==\n";
    ASSERT_OK(wvtest_write_file(kr, krt, strlen(krt)));
    setenv("CEPH_CLIENT_ID", "wvnosuch", 1);
    setenv("CEPH_KEYRING", kr, 1);
    rc = ctx_open(&c, "auth");
    unsetenv("CEPH_CLIENT_ID");
    ASSERT_EQ(rc, WV_AUTH);
    ASSERT_CONTAINS(c.err.msg, "client.wvnosuch");
    ASSERT_CONTAINS(c.err.msg, "refused");
    /* The admin with a wrong key. */
    const char *bad = wvtest_path("bad.keyring");
    const char *badt = "[client.admin]\n\tkey = "
                       "AQBVj1VnAAAAABAAQb6fKoWwn0FJ2rQTA0a0wA==\n";
    ASSERT_OK(wvtest_write_file(bad, badt, strlen(badt)));
    setenv("CEPH_KEYRING", bad, 1);
    rc = ctx_open(&c, "auth");
    unsetenv("CEPH_KEYRING");
    ASSERT_EQ(rc, WV_AUTH);
    ASSERT_CONTAINS(c.err.msg, "client.admin");
    ASSERT_CONTAINS(c.err.msg, "refused");
    ASSERT(strstr(c.err.msg, "AQBVj1") == NULL); /* no secrets */
    /* No keyring at all. */
    setenv("CEPH_KEYRING", wvtest_path("missing.keyring"), 1);
    rc = ctx_open(&c, "auth");
    unsetenv("CEPH_KEYRING");
    ASSERT_EQ(rc, WV_AUTH);
    ASSERT_CONTAINS(c.err.msg, "no key");
}

TEST_IMPL(rados_no_pool)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    memset(&c, 0, sizeof c);
    snprintf(c.uri, sizeof c.uri, "rados://wvt-nosuch-%ld/x", (long)getpid());
    ASSERT_EQ(wv__store_open(c.uri, false, &c.err, &c.s), WV_NOTFOUND);
    ASSERT_CONTAINS(c.err.msg, "no such pool");
    ASSERT_CONTAINS(c.err.msg, "wvt-nosuch-");
    ASSERT(c.s == NULL);
    wv__clearerr(&c.err);
    ASSERT_EQ(wv__store_open("rados://", true, &c.err, &c.s), WV_MISUSE);
    ASSERT_CONTAINS(c.err.msg, "rados://POOL");
    wv__clearerr(&c.err);
    ASSERT_EQ(wv__store_open("rados:///x", true, &c.err, &c.s), WV_MISUSE);
}

TEST_IMPL(rados_unreachable)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    /* Monitors nobody listens on (with the cluster's real admin keyring,
     * beside its configuration): an error after the timeout, no hang. */
    char *old = strdup(getenv("CEPH_CONF")), text[1024];
    ASSERT(old);
    const char *slash = strrchr(old, '/');
    snprintf(text, sizeof text,
             "[global]\n\tmon host = 127.0.0.1:9\n"
             "\tkeyring = %.*s/ceph.client.admin.keyring\n",
             slash ? (int)(slash - old) : 1, slash ? old : ".");
    const char *conf = wvtest_path("dead.conf");
    ASSERT_OK(wvtest_write_file(conf, text, strlen(text)));
    setenv("CEPH_CONF", conf, 1);
    setenv("WV_RADOS_TIMEOUT", "2", 1);
    time_t t0 = time(NULL);
    int rc = ctx_open(&c, "dead");
    setenv("CEPH_CONF", old, 1);
    unsetenv("WV_RADOS_TIMEOUT");
    free(old);
    ASSERT(c.s == NULL);
    ASSERT_EQ(rc, WV_BACKEND);
    ASSERT(time(NULL) - t0 < 30);
    ASSERT_CONTAINS(c.err.msg, "rados://");
}

/* ---- readers racing an overwriting writer -------------------------------- */

struct owrace {
    struct wv__store *s;
    const unsigned char *v[2];
    size_t size;
    volatile int done;
    int puts_failed;
};

static void *overwriter(void *arg)
{
    struct owrace *o = arg;
    for (int i = 0; i < 40; i++) {
        if (wv__store_put(o->s, "obj", o->v[i % 2], o->size, 0) != WV_OK)
            o->puts_failed++;
        struct timespec ts = {0, 3000000}; /* readers get gaps too */
        nanosleep(&ts, NULL);
    }
    __atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void overwrite_race(struct ctx *c)
{
    static struct owrace o;
    size_t size = 8 * 65536 + 4321, n;
    unsigned char *a = malloc(size), *b = malloc(size), *d = malloc(size);
    ASSERT(a && b && d);
    fill(a, size, 11);
    fill(b, size, 12);
    o = (struct owrace){c->s, {a, b}, size, 0, 0};
    ASSERT_OK(wv__store_put(c->s, "obj", a, size, 0));
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, overwriter, &o));
    int good = 0, changing = 0, bad = 0, other = 0;
    while (!__atomic_load_n(&o.done, __ATOMIC_ACQUIRE)) {
        int rc = wv__store_get(c->s, "obj", 0, d, size, &n);
        if (rc == WV_OK && n == size &&
            (memcmp(d, a, size) == 0 || memcmp(d, b, size) == 0))
            good++;
        else if (rc == WV_OK)
            bad++; /* a mix of two writes */
        else if (rc == WV_IO)
            changing++; /* gave up after retries: allowed, never wrong */
        else
            other++;
        wv__clearerr(&c->err);
    }
    pthread_join(th, NULL);
    ASSERT_EQ(o.puts_failed, 0);
    ASSERT_EQ(bad, 0);
    ASSERT_EQ(other, 0);
    ASSERT(good > 0);
    fprintf(stderr, "%d whole reads, %d gave up while it kept changing\n",
            good, changing);
    ASSERT_OK(wv__store_get(c->s, "obj", 0, d, size, &n));
    ASSERT(memcmp(d, b, size) == 0); /* the last put wins */
    free(a);
    free(b);
    free(d);
}

TEST_IMPL(rados_overwrite_race)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    setenv("WV_RADOS_STRIPE", "65536", 1);
    int rc = ctx_open(&c, "owrace");
    unsetenv("WV_RADOS_STRIPE");
    ASSERT_OK(rc);
    overwrite_race(&c);
    ctx_close(&c);
}

/* ---- writers of one content-addressed object at once --------------------- */

struct samerace {
    struct wv__store *s;
    const unsigned char *v;
    size_t size;
    pthread_barrier_t bar;
    int failed;
};

static void *same_writer(void *arg)
{
    struct samerace *r = arg;
    pthread_barrier_wait(&r->bar);
    if (wv__store_put(r->s, "packs/same", r->v, r->size,
                      WV_PUT_IF_ABSENT | WV_PUT_NOSYNC) != WV_OK)
        __atomic_add_fetch(&r->failed, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void same_race(struct ctx *c)
{
    static struct samerace r;
    size_t size = 12 * 65536 + 3, n;
    unsigned char *a = malloc(size), *d = malloc(size);
    pthread_t th[4];
    ASSERT(a && d);
    fill(a, size, 21);
    for (int round = 0; round < 5; round++) {
        r = (struct samerace){c->s, a, size, {{0}}, 0};
        pthread_barrier_init(&r.bar, NULL, 4);
        for (int i = 0; i < 4; i++)
            ASSERT_OK(pthread_create(&th[i], NULL, same_writer, &r));
        for (int i = 0; i < 4; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&r.bar);
        ASSERT_EQ(r.failed, 0);
        memset(d, 0, size);
        ASSERT_OK(wv__store_get(c->s, "packs/same", 0, d, size, &n));
        ASSERT(memcmp(d, a, size) == 0);
        ASSERT_EQ(raw_count(c, "packs/same"), 13);
        ASSERT_OK(wv__store_del(c->s, "packs/same"));
        ASSERT_EQ(raw_count(c, "packs/same"), 0);
    }
    free(a);
    free(d);
}

TEST_IMPL(rados_same_put_race)
{
    struct ctx c;
    if (!have_ceph())
        WVTEST_SKIP("CEPH_CONF is unset: no Ceph cluster");
    setenv("WV_RADOS_STRIPE", "65536", 1);
    int rc = ctx_open(&c, "samerace");
    unsetenv("WV_RADOS_STRIPE");
    ASSERT_OK(rc);
    same_race(&c);
    ctx_close(&c);
}

/* ---- loading librados (no cluster needed) ---------------------------------
 * rados.c loads librados.so.2 at the first rados:// open. These run each
 * in a process of their own (one ctest entry each), as the library is
 * loaded once per process; the names keep them out of the Ceph fixture. */

/* Whether this process has mapped a file whose name contains `name`. */
static bool mapped(const char *name)
{
    char line[4096];
    bool found = false;
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, name) != NULL;
    fclose(f);
    return found;
}

/* Nothing loads librados before a rados:// store is opened. */
TEST_IMPL(librados_lazy)
{
    struct wv__err err;
    struct wv__store *s = NULL;
    memset(&err, 0, sizeof err);
    if (access("/proc/self/maps", R_OK) != 0)
        WVTEST_SKIP("no /proc/self/maps");
    ASSERT(!mapped("librados"));
    /* a URI rados.c refuses before connecting still loads it */
    ASSERT_EQ(wv__store_open("rados://", false, &err, &s), WV_MISUSE);
    ASSERT(s == NULL);
    ASSERT(mapped("librados"));
}

/* A library that cannot be loaded: one line naming it, WV_UNSUPPORTED,
 * and the same again on the next open. */
TEST_IMPL(librados_missing)
{
    struct wv__err err;
    struct wv__store *s = NULL;
    memset(&err, 0, sizeof err);
    setenv("WV_RADOS_LIB", "/nonexistent/librados-wvtest.so.2", 1);
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(wv__store_open("rados://pool/x", true, &err, &s),
                  WV_UNSUPPORTED);
        ASSERT(s == NULL);
        ASSERT_CONTAINS(err.msg, "rados://pool/x: cannot load "
                                 "/nonexistent/librados-wvtest.so.2 "
                                 "(install librados2)");
        ASSERT(strchr(err.msg, '\n') == NULL);
        wv__clearerr(&err);
    }
    ASSERT(!mapped("librados"));
}

/* A library without the functions: names the first one missing. */
TEST_IMPL(librados_nosym)
{
    struct wv__err err;
    struct wv__store *s = NULL;
    memset(&err, 0, sizeof err);
    setenv("WV_RADOS_LIB", "libz.so.1", 1);
    ASSERT_EQ(wv__store_open("rados://pool", false, &err, &s),
              WV_UNSUPPORTED);
    ASSERT(s == NULL);
    ASSERT_CONTAINS(err.msg, "rados://pool: cannot load libz.so.1: it has "
                             "no function rados_");
    ASSERT(strchr(err.msg, '\n') == NULL);
}
