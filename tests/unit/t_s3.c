/*
 * t_s3.c -- the S3 backend (src/store/s3.c) and the remote object reader
 * against a running S3 server (the Ceph RGW of tests/ceph_fixture.sh).
 * Skipped (exit 77) when AWS_ENDPOINT_URL is unset.
 *
 * Every test works under its own prefix "<test>-<pid>" of the bucket
 * "wvt-s3-unit" and removes what it wrote, also when an assertion fails
 * (the body runs in a function of its own). What the backend hides
 * (tombstones, multipart uploads) is checked with raw requests made
 * through the same HTTP engine.
 */
#include "http.h"
#include "store.h"
#include "wvtest.h"

#include <openssl/evp.h>
#include <pthread.h>

#define BUCKET "wvt-s3-unit"

static bool have_s3(void)
{
    const char *e = getenv("AWS_ENDPOINT_URL");
    return e != NULL && e[0] != '\0';
}

#define NEED_S3()                                                         \
    do {                                                                  \
        if (!have_s3())                                                   \
            WVTEST_SKIP("AWS_ENDPOINT_URL is not set (no S3 server)");    \
    } while (0)

struct ctx {
    char uri[256];
    char prefix[128];
    struct wv__err err;
    struct wv__store *s;
    /* raw access */
    struct wv__s3cfg cfg;
    struct wv__http *http;
};

static int ctx_open(struct ctx *c, const char *name)
{
    memset(c, 0, sizeof *c);
    snprintf(c->prefix, sizeof c->prefix, "%s-%ld", name, (long)getpid());
    snprintf(c->uri, sizeof c->uri, "s3://" BUCKET "/%s", c->prefix);
    int rc = wv__s3cfg_load(&c->cfg, c->uri, &c->err);
    if (rc == WV_OK)
        rc = wv__http_new(&c->cfg, &c->cfg, &c->err, &c->http);
    if (rc == WV_OK)
        rc = wv__store_open(c->uri, true, &c->err, &c->s);
    return rc;
}

/* A raw request on "<prefix>/<key>" (key NULL: the bucket). Returns the
 * status; the response stays in *r (release it). */
static long raw(struct ctx *c, const char *method, const char *key,
                const char *query, const char *hdr, struct wv__hreq *r)
{
    char fk[600];
    char *url;
    if (key)
        snprintf(fk, sizeof fk, "%s/%s", c->prefix, key);
    url = wv__s3_url(&c->cfg, BUCKET, key ? fk : NULL, query);
    memset(r, 0, sizeof *r);
    r->method = method;
    r->url = url;
    r->hdr[0] = hdr;
    if (method[0] == 'P') {
        r->body = "";
        r->body_len = 0;
    }
    wv__http_run(c->http, r, 1, 1);
    r->url = NULL;
    wv__free(url);
    return r->xerr ? -1 : r->status;
}

static int del_cb(void *arg, const char *key, uint64_t size)
{
    (void)size;
    struct wv__store *s = arg;
    s->methods->del(s, key);
    return 0;
}

static void ctx_close(struct ctx *c, const char *const *raw_keys)
{
    if (c->s) {
        struct wv__err e = {0};
        c->s->err = &e;
        c->s->methods->list(c->s, "", del_cb, c->s);
        struct wv__store_sweep age = {0, 0};
        c->s->methods->control(c->s, WV_STORE_SWEEP, &age);
        wv__store_close(c->s);
        c->s = NULL;
    }
    for (int i = 0; raw_keys && raw_keys[i]; i++) { /* tombstones */
        struct wv__hreq r;
        raw(c, "DELETE", raw_keys[i], NULL, NULL, &r);
        wv__hreq_release(&r);
    }
    wv__http_free(c->http);
    wv__s3cfg_release(&c->cfg);
}

/* A test's body on a fresh context under prefix name, the store's objects
 * and raw_keys (NULL-terminated, or NULL) removed afterwards. */
static void run_s3(const char *name, void (*body)(struct ctx *c),
                   const char *const *raw_keys)
{
    struct ctx c;
    NEED_S3();
    if (ctx_open(&c, name) != WV_OK)
        WVT_FAIL("open: %s", c.err.msg);
    body(&c);
    ctx_close(&c, raw_keys);
}

/* Another handle on c's store, with 5 MiB parts (the least S3 allows). */
static int open_5m(struct ctx *c, struct wv__err *e, struct wv__store **s)
{
    setenv("WV_S3_PART_SIZE", "5M", 1);
    int rc = wv__store_open(c->uri, false, e, s);
    unsetenv("WV_S3_PART_SIZE");
    return rc;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (unsigned char)(x >> 24);
    }
}

struct listed {
    int n;
    uint64_t bytes;
    bool saw[2000];
    const char *only_prefix;
    int stop_at;
};

static int count_cb(void *arg, const char *key, uint64_t size)
{
    struct listed *l = arg;
    int k;
    l->n++;
    l->bytes += size;
    if (sscanf(key, "many/k%d", &k) == 1 && k >= 0 && k < 2000)
        l->saw[k] = true;
    if (l->stop_at && l->n == l->stop_at)
        return 7;
    return 0;
}

/* ---- objects ------------------------------------------------------------- */

static void objects_body(struct ctx *c)
{
    struct wv__store *s = c->s;
    const struct wv__store_methods *m = s->methods;
    unsigned char buf[256];
    size_t nread;
    uint64_t size;
    const char *keys[] = {"config", "packs/ab/abcdef", "odd key+&=%~é.txt"};
    for (int i = 0; i < 3; i++) {
        char val[64];
        int n = snprintf(val, sizeof val, "value of %s", keys[i]);
        ASSERT_OK(wv__store_put(s, keys[i], val, (size_t)n, 0));
        ASSERT_OK(wv__store_stat(s, keys[i], &size));
        ASSERT_EQ(size, n);
        memset(buf, 0xee, sizeof buf);
        ASSERT_OK(wv__store_get(s, keys[i], 0, buf, (size_t)n, &nread));
        ASSERT_EQ(nread, n);
        ASSERT_MEMEQ(buf, val, (size_t)n);
        ASSERT_OK(wv__store_get(s, keys[i], 3, buf, 4, &nread));
        ASSERT_MEMEQ(buf, val + 3, 4);
        /* Past the end: what there is, zeros after, a short read. */
        memset(buf, 0xee, sizeof buf);
        ASSERT_EQ(wv__store_get(s, keys[i], 2, buf, 100, &nread),
                  WV_IO_SHORT_READ);
        ASSERT_EQ(nread, n - 2);
        ASSERT_MEMEQ(buf, val + 2, (size_t)n - 2);
        ASSERT_EQ(buf[n - 2], 0);
        ASSERT_EQ(buf[99], 0);
        wv__clearerr(&c->err);
        ASSERT_EQ(wv__store_get(s, keys[i], 1000, buf, 10, &nread),
                  WV_IO_SHORT_READ);
        ASSERT_EQ(nread, 0);
        wv__clearerr(&c->err);
    }
    /* The odd key is stored under its own name (no encoding leaks). */
    struct wv__hreq r;
    ASSERT_EQ(raw(c, "HEAD", "odd key+&=%~é.txt", NULL, NULL, &r), 200);
    wv__hreq_release(&r);

    /* Missing keys. */
    ASSERT_EQ(wv__store_stat(s, "nope", &size), WV_NOTFOUND);
    ASSERT_EQ(wv__store_get(s, "nope", 0, buf, 10, &nread), WV_NOTFOUND);
    ASSERT_CONTAINS(c->err.msg, "no such key");
    wv__clearerr(&c->err);
    ASSERT_EQ(wv__store_del(s, "nope"), WV_NOTFOUND);
    wv__clearerr(&c->err);

    /* Empty objects. */
    ASSERT_OK(wv__store_put(s, "empty", "", 0, 0));
    ASSERT_OK(wv__store_stat(s, "empty", &size));
    ASSERT_EQ(size, 0);
    ASSERT_OK(wv__store_get(s, "empty", 0, buf, 0, &nread));
    ASSERT_EQ(wv__store_get(s, "empty", 0, buf, 1, &nread),
              WV_IO_SHORT_READ);
    wv__clearerr(&c->err);

    /* IF_ABSENT keeps what is there (objects are content-addressed). */
    ASSERT_OK(wv__store_put(s, "config", "other", 5, WV_PUT_IF_ABSENT));
    ASSERT_OK(wv__store_get(s, "config", 0, buf, 6, &nread));
    ASSERT_MEMEQ(buf, "value ", 6);
    ASSERT_OK(wv__store_put(s, "fresh", "abc", 3,
                            WV_PUT_IF_ABSENT | WV_PUT_NOSYNC));
    ASSERT_OK(wv__store_stat(s, "fresh", &size));
    ASSERT_EQ(size, 3);
    ASSERT_OK(wv__store_control(s, WV_STORE_SYNC, NULL));

    /* Overwrite, delete. */
    ASSERT_OK(wv__store_put(s, "fresh", "abcd", 4, 0));
    ASSERT_OK(wv__store_stat(s, "fresh", &size));
    ASSERT_EQ(size, 4);
    ASSERT_OK(wv__store_del(s, "fresh"));
    ASSERT_EQ(wv__store_stat(s, "fresh", &size), WV_NOTFOUND);

    /* Control: mtime from Last-Modified; unknown ops. */
    struct wv__store_mtime mt = {"config", 0};
    ASSERT_OK(wv__store_control(s, WV_STORE_MTIME, &mt));
    ASSERT(mt.mtime > 1600000000 && llabs(mt.mtime - time(NULL)) < 3600);
    mt.key = "nope";
    ASSERT_EQ(wv__store_control(s, WV_STORE_MTIME, &mt), WV_NOTFOUND);
    ASSERT_EQ(m->control(s, 999, NULL), WV_NOTFOUND);

    /* Invalid keys never reach the server. */
    ASSERT_EQ(wv__store_put(s, "../escape", "x", 1, 0), WV_MISUSE);
    wv__clearerr(&c->err);
}

TEST_IMPL(s3_objects)
{
    struct ctx c;
    NEED_S3();
    int rc = ctx_open(&c, "objects");
    if (rc != WV_OK)
        WVT_FAIL("open: %s", c.err.msg);
    objects_body(&c);
    ctx_close(&c, NULL);
}

/* ---- listing ------------------------------------------------------------- */

struct putter {
    struct wv__store *s;
    int from, to;
    int rc;
};

static void *put_range(void *arg)
{
    struct putter *p = arg;
    for (int i = p->from; i < p->to && p->rc == WV_OK; i++) {
        char key[32], val[32];
        snprintf(key, sizeof key, "many/k%d", i);
        int n = snprintf(val, sizeof val, "%d", i);
        p->rc = p->s->methods->put(p->s, key, val, (size_t)n, 0);
    }
    return NULL;
}

static void list_body(struct ctx *c)
{
    enum { N = 1100, T = 8 };
    pthread_t th[T];
    struct putter p[T];
    for (int t = 0; t < T; t++) {
        p[t] = (struct putter){c->s, t * N / T, (t + 1) * N / T, WV_OK};
        pthread_create(&th[t], NULL, put_range, &p[t]);
    }
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        ASSERT_OK(p[t].rc);
    }
    ASSERT_OK(wv__store_put(c->s, "other/x", "x", 1, 0));
    ASSERT_OK(wv__store_put(c->s, "manyx", "x", 1, 0));

    static struct listed l;
    memset(&l, 0, sizeof l);
    ASSERT_OK(wv__store_list(c->s, "many/", count_cb, &l));
    ASSERT_EQ(l.n, N); /* more than one page of 1000 */
    for (int i = 0; i < N; i++)
        if (!l.saw[i])
            WVT_FAIL("key many/k%d not listed", i);
    uint64_t bytes = 0;
    for (int i = 0; i < N; i++) {
        char v[16];
        bytes += (uint64_t)snprintf(v, sizeof v, "%d", i);
    }
    ASSERT_EQ(l.bytes, bytes);
    memset(&l, 0, sizeof l);
    ASSERT_OK(wv__store_list(c->s, "", count_cb, &l));
    ASSERT_EQ(l.n, N + 2);
    memset(&l, 0, sizeof l);
    ASSERT_OK(wv__store_list(c->s, "many/k10", count_cb, &l));
    ASSERT_EQ(l.n, 1 + 10 + 100); /* k10, k100..k109, k1000..k1099 */
    memset(&l, 0, sizeof l);
    ASSERT_OK(wv__store_list(c->s, "none/", count_cb, &l));
    ASSERT_EQ(l.n, 0);
    /* A non-zero return from the callback stops and is returned. */
    memset(&l, 0, sizeof l);
    l.stop_at = 1050;
    ASSERT_EQ(wv__store_list(c->s, "many/", count_cb, &l), 7);
    ASSERT_EQ(l.n, 1050);
}

TEST_IMPL(s3_list_many)
{
    run_s3("list", list_body, NULL);
}

/* ---- multipart ----------------------------------------------------------- */

static int open_uploads(struct ctx *c)
{
    struct wv__hreq r;
    char q[300];
    snprintf(q, sizeof q, "prefix=%s%%2F&uploads=", c->prefix);
    if (raw(c, "GET", NULL, q, NULL, &r) != 200) {
        wv__hreq_release(&r);
        return -1;
    }
    int n = 0;
    for (const char *p = r.resp.p; p && (p = strstr(p, "<Upload>")); p++)
        n++;
    wv__hreq_release(&r);
    return n;
}

static void multipart_body(struct ctx *c)
{
    size_t len = ((size_t)70 << 20) + 12345;
    unsigned char *a = malloc(len), *b = malloc(len);
    size_t nread;
    uint64_t size;
    ASSERT(a && b);
    fill(a, len, 1);
    ASSERT_OK(wv__store_put(c->s, "packs/big", a, len, WV_PUT_IF_ABSENT));
    ASSERT_OK(wv__store_stat(c->s, "packs/big", &size));
    ASSERT_EQ(size, len);
    memset(b, 0, len);
    ASSERT_OK(wv__store_get(c->s, "packs/big", 0, b, len, &nread));
    ASSERT_EQ(nread, len);
    if (memcmp(a, b, len) != 0)
        WVT_FAIL("70 MiB object read back differs");
    /* Ranges across part boundaries, odd offsets. */
    size_t off = ((size_t)16 << 20) - 7, n = ((size_t)33 << 20) + 3;
    memset(b, 0, n);
    ASSERT_OK(wv__store_get(c->s, "packs/big", off, b, n, &nread));
    ASSERT_MEMEQ(b, a + off, n);
    /* Past the end of a large object: parallel parts, a short read. */
    memset(b, 0xff, len);
    ASSERT_EQ(wv__store_get(c->s, "packs/big", len - 100, b,
                            (size_t)40 << 20, &nread),
              WV_IO_SHORT_READ);
    ASSERT_EQ(nread, 100);
    ASSERT_MEMEQ(b, a + len - 100, 100);
    ASSERT_EQ(b[100], 0);
    ASSERT_EQ(b[((size_t)40 << 20) - 1], 0);
    wv__clearerr(&c->err);

    /* IF_ABSENT on an existing large object uploads nothing. */
    struct wv__store_mtime m1 = {"packs/big", 0}, m2 = {"packs/big", 0};
    ASSERT_OK(wv__store_control(c->s, WV_STORE_MTIME, &m1));
    sleep(1);
    fill(b, len, 2);
    ASSERT_OK(wv__store_put(c->s, "packs/big", b, len, WV_PUT_IF_ABSENT));
    ASSERT_OK(wv__store_control(c->s, WV_STORE_MTIME, &m2));
    ASSERT_EQ(m1.mtime, m2.mtime);
    ASSERT_OK(wv__store_get(c->s, "packs/big", 0, b, 4096, &nread));
    ASSERT_MEMEQ(b, a, 4096);

    /* Sizes around the part size (5 MiB parts for this store). */
    struct wv__err e2 = {0};
    struct wv__store *s5;
    if (open_5m(c, &e2, &s5) != WV_OK)
        WVT_FAIL("open: %s", e2.msg);
    size_t sizes[] = {((size_t)5 << 20), ((size_t)5 << 20) + 1,
                      ((size_t)10 << 20) + 4097};
    for (size_t i = 0; i < 3; i++) {
        char key[32];
        snprintf(key, sizeof key, "sz/%zu", sizes[i]);
        fill(a, sizes[i], 10 + i);
        ASSERT_OK(wv__store_put(s5, key, a, sizes[i], 0));
        memset(b, 0, sizes[i]);
        ASSERT_OK(wv__store_get(s5, key, 0, b, sizes[i], &nread));
        if (memcmp(a, b, sizes[i]) != 0)
            WVT_FAIL("object of %zu bytes read back differs", sizes[i]);
        ASSERT_OK(wv__store_stat(c->s, key, &size));
        ASSERT_EQ(size, sizes[i]);
    }
    wv__store_close(s5);
    ASSERT_EQ(open_uploads(c), 0); /* none left open */
    free(a);
    free(b);
}

TEST_IMPL(s3_multipart)
{
    run_s3("multipart", multipart_body, NULL);
}

/* A multipart upload a killed writer left behind is aborted by the sweep
 * (gc), once old enough. */
static void sweep_body(struct ctx *c)
{
    struct wv__hreq r;
    ASSERT_EQ(raw(c, "POST", "packs/orphan", "uploads=", NULL, &r), 200);
    wv__hreq_release(&r);
    ASSERT_EQ(open_uploads(c), 1);
    struct wv__store_sweep age = {3600, 0};
    ASSERT_OK(wv__store_control(c->s, WV_STORE_SWEEP, &age));
    ASSERT_EQ(open_uploads(c), 1); /* too young */
    age.min_age = 0;
    ASSERT_OK(wv__store_control(c->s, WV_STORE_SWEEP, &age));
    ASSERT_EQ(open_uploads(c), 0);
}

TEST_IMPL(s3_sweep)
{
    run_s3("sweep", sweep_body, NULL);
}

/* ---- refs ---------------------------------------------------------------- */

static int list_names(void *arg, const char *key, uint64_t size)
{
    (void)size;
    struct wv__buf *b = arg;
    wv__buf_adds(b, key);
    wv__buf_addc(b, ' ');
    return 0;
}

static void refs_body(struct ctx *c)
{
    struct wv__store *s = c->s;
    char v[128];
    const char *ref = "refs/heads/main";
    ASSERT_EQ(wv__store_ref_get(s, ref, v, sizeof v), WV_NOTFOUND);
    wv__clearerr(&c->err);
    ASSERT_OK(wv__store_ref_cas(s, ref, NULL, "aaaa\n"));
    ASSERT_OK(wv__store_ref_get(s, ref, v, sizeof v));
    ASSERT_STREQ(v, "aaaa\n");
    ASSERT_EQ(wv__store_ref_cas(s, ref, NULL, "bbbb\n"), WV_CONFLICT);
    wv__clearerr(&c->err);
    ASSERT_EQ(wv__store_ref_cas(s, ref, "zzzz\n", "bbbb\n"), WV_CONFLICT);
    ASSERT_CONTAINS(c->err.msg, "changed while updating");
    wv__clearerr(&c->err);
    ASSERT_OK(wv__store_ref_cas(s, ref, "aaaa\n", "bbbb\n"));
    ASSERT_OK(wv__store_ref_get(s, ref, v, sizeof v));
    ASSERT_STREQ(v, "bbbb\n");
    /* A short buffer gets a truncated, terminated value. */
    char small[3];
    ASSERT_OK(wv__store_ref_get(s, ref, small, sizeof small));
    ASSERT_STREQ(small, "bb");

    /* Delete: a tombstone, hidden everywhere. */
    ASSERT_OK(wv__store_ref_cas(s, "refs/tags/t1", NULL, "cccc\n"));
    ASSERT_EQ(wv__store_ref_cas(s, "refs/tags/t1", "dddd\n", NULL),
              WV_CONFLICT);
    wv__clearerr(&c->err);
    ASSERT_OK(wv__store_ref_cas(s, "refs/tags/t1", "cccc\n", NULL));
    ASSERT_EQ(wv__store_ref_get(s, "refs/tags/t1", v, sizeof v),
              WV_NOTFOUND);
    wv__clearerr(&c->err);
    uint64_t size;
    ASSERT_EQ(wv__store_stat(s, "refs/tags/t1", &size), WV_NOTFOUND);
    struct wv__buf names = {0};
    ASSERT_OK(wv__store_list(s, "refs/", list_names, &names));
    ASSERT_STREQ(names.p, "refs/heads/main ");
    wv__buf_release(&names);
    /* The raw object is the tombstone, with the ETag listings rely on. */
    struct wv__hreq r;
    ASSERT_EQ(raw(c, "HEAD", "refs/tags/t1", NULL, NULL, &r), 200);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdl = 0;
    const char tomb[] = "weightvault:deleted-ref\n";
    EVP_Digest(tomb, sizeof tomb - 1, md, &mdl, EVP_md5(), NULL);
    char hex[40], quoted[48];
    for (unsigned i = 0; i < mdl; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    snprintf(quoted, sizeof quoted, "\"%s\"", hex);
    ASSERT_STREQ(r.etag, quoted);
    ASSERT_STREQ(hex, "b44a6607e260823f88cbe7ef79c9fe97");
    wv__hreq_release(&r);
    /* Deleting again, or deleting what must not exist, is refused. */
    ASSERT_EQ(wv__store_ref_cas(s, "refs/tags/t1", "cccc\n", NULL),
              WV_CONFLICT);
    wv__clearerr(&c->err);
    ASSERT_EQ(wv__store_ref_cas(s, "refs/tags/t1", NULL, NULL),
              WV_NOTFOUND);
    wv__clearerr(&c->err);
    /* An update from the deleted value fails; a create succeeds. */
    ASSERT_EQ(wv__store_ref_cas(s, "refs/tags/t1", "cccc\n", "eeee\n"),
              WV_CONFLICT);
    wv__clearerr(&c->err);
    ASSERT_OK(wv__store_ref_cas(s, "refs/tags/t1", NULL, "eeee\n"));
    ASSERT_OK(wv__store_ref_get(s, "refs/tags/t1", v, sizeof v));
    ASSERT_STREQ(v, "eeee\n");
    ASSERT_EQ(wv__store_ref_cas(s, "refs/tags/t1", NULL, "ffff\n"),
              WV_CONFLICT);
    wv__clearerr(&c->err);
    ASSERT_OK(wv__store_list(s, "refs/tags/", list_names, &names));
    ASSERT_STREQ(names.p, "refs/tags/t1 ");
    wv__buf_release(&names);
    /* The tombstone value itself cannot be written. */
    ASSERT_EQ(wv__store_ref_cas(s, "refs/tags/t2", NULL, tomb), WV_MISUSE);
    wv__clearerr(&c->err);
}

static const char *const ref_keys[] = {"refs/heads/main", "refs/tags/t1",
                                       "refs/heads/race", NULL};

TEST_IMPL(s3_refs)
{
    run_s3("refs", refs_body, ref_keys);
}

/* Eight writers race on one ref, each with its own store (as separate
 * processes would): in every round exactly one wins. Every other round
 * starts from a deleted ref, so creates race on the tombstone too. */
enum { RACERS = 8, ROUNDS = 12 };

struct racer {
    struct wv__store *s;
    struct wv__err err;
    pthread_barrier_t *bar;
    int id;
    int won[ROUNDS];
    int rc_other;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    for (int round = 0; round < ROUNDS; round++) {
        char expect[32], mine[32];
        snprintf(expect, sizeof expect, "start-%d\n", round);
        snprintf(mine, sizeof mine, "r%d-%d\n", r->id, round);
        pthread_barrier_wait(r->bar);
        wv__clearerr(&r->err);
        int rc = wv__store_ref_cas(r->s, "refs/heads/race",
                                   round % 2 ? NULL : expect, mine);
        if (rc == WV_OK)
            r->won[round] = 1;
        else if (rc != WV_CONFLICT)
            r->rc_other = rc;
        pthread_barrier_wait(r->bar); /* the main thread resets */
        pthread_barrier_wait(r->bar);
    }
    return NULL;
}

static void race_body(struct ctx *c)
{
    static struct racer rs[RACERS];
    pthread_t th[RACERS];
    pthread_barrier_t bar;
    char v[64];
    pthread_barrier_init(&bar, NULL, RACERS + 1);
    for (int i = 0; i < RACERS; i++) {
        memset(&rs[i], 0, sizeof rs[i]);
        rs[i].id = i;
        rs[i].bar = &bar;
        if (wv__store_open(c->uri, false, &rs[i].err, &rs[i].s) != WV_OK)
            WVT_FAIL("open: %s", rs[i].err.msg);
    }
    ASSERT_OK(wv__store_ref_cas(c->s, "refs/heads/race", NULL, "start-0\n"));
    for (int i = 0; i < RACERS; i++)
        pthread_create(&th[i], NULL, race, &rs[i]);
    int bad = -1;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_wait(&bar); /* go */
        pthread_barrier_wait(&bar); /* all done */
        int winners = 0, who = -1;
        for (int i = 0; i < RACERS; i++)
            if (rs[i].won[round]) {
                winners++;
                who = i;
            }
        char want[32];
        snprintf(want, sizeof want, "r%d-%d\n", who, round);
        wv__clearerr(&c->err);
        if (winners != 1 ||
            wv__store_ref_get(c->s, "refs/heads/race", v, sizeof v) !=
                WV_OK ||
            strcmp(v, want) != 0) {
            if (bad < 0)
                bad = round;
        }
        /* Next round: a value to update, or no ref at all. */
        char next[32];
        snprintf(next, sizeof next, "start-%d\n", round + 1);
        if ((round + 1) % 2)
            wv__store_ref_cas(c->s, "refs/heads/race", v, NULL);
        else
            wv__store_ref_cas(c->s, "refs/heads/race", v, next);
        pthread_barrier_wait(&bar);
    }
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        ASSERT_OK(rs[i].rc_other);
        wv__store_close(rs[i].s);
    }
    pthread_barrier_destroy(&bar);
    if (bad >= 0)
        WVT_FAIL("round %d did not have exactly one winner", bad);
}

TEST_IMPL(s3_ref_race)
{
    run_s3("race", race_body, ref_keys);
}

/* ---- one store, many threads --------------------------------------------- */

struct worker {
    struct wv__store *s;
    int id;
    int fails;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    size_t cap = (size_t)6 << 20;
    unsigned char *a = malloc(cap), *b = malloc(cap);
    for (int i = 0; i < 3 && a && b; i++) {
        /* small, one part, two parts (multipart) */
        size_t sizes[3] = {100000, (size_t)3 << 20, ((size_t)5 << 20) + 1};
        size_t n = sizes[i] + (size_t)w->id * 77;
        char key[48];
        size_t got;
        snprintf(key, sizeof key, "threads/w%d/o%d", w->id, i);
        fill(a, n, (uint64_t)(w->id * 100 + i));
        if (w->s->methods->put(w->s, key, a, n, WV_PUT_NOSYNC) != WV_OK ||
            w->s->methods->get(w->s, key, 0, b, n, &got) != WV_OK ||
            got != n || memcmp(a, b, n) != 0)
            w->fails++;
    }
    free(a);
    free(b);
    return NULL;
}

static void threads_body(struct ctx *c)
{
    enum { W = 4 };
    pthread_t th[W];
    struct worker w[W];
    /* Small parts and budget: parts wait for each other's bytes. */
    setenv("WV_S3_PART_SIZE", "5M", 1);
    setenv("WV_S3_MAX_INFLIGHT", "12M", 1);
    struct wv__err e = {0};
    struct wv__store *s;
    int rc = wv__store_open(c->uri, false, &e, &s);
    unsetenv("WV_S3_PART_SIZE");
    unsetenv("WV_S3_MAX_INFLIGHT");
    if (rc != WV_OK)
        WVT_FAIL("open: %s", e.msg);
    for (int i = 0; i < W; i++) {
        w[i] = (struct worker){s, i, 0};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    int fails = 0;
    for (int i = 0; i < W; i++) {
        pthread_join(th[i], NULL);
        fails += w[i].fails;
    }
    wv__store_close(s);
    ASSERT_EQ(fails, 0);
}

TEST_IMPL(s3_threads)
{
    run_s3("threads", threads_body, NULL);
}

/* ---- errors -------------------------------------------------------------- */

static void no_secret(const char *msg, const char *secret)
{
    if (secret && secret[0] && strstr(msg, secret) != NULL)
        fprintf(stderr, "secret leaked into: %s\n", msg), abort();
}

TEST_IMPL(s3_auth)
{
    NEED_S3();
    char *key = strdup(getenv("AWS_ACCESS_KEY_ID"));
    char *secret = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
    struct wv__err err = {0};
    struct wv__store *s = NULL;
    /* The bucket must exist for the tests below to mean anything. */
    ASSERT_OK(wv__store_open("s3://" BUCKET "/auth", true, &err, &s));
    wv__store_close(s);

    setenv("AWS_SECRET_ACCESS_KEY", "wrongwrongwrongwrongwrongwrong00", 1);
    wv__clearerr(&err);
    ASSERT_EQ(wv__store_open("s3://" BUCKET "/auth", false, &err, &s),
              WV_AUTH);
    ASSERT(s == NULL);
    ASSERT_CONTAINS(err.msg, "SignatureDoesNotMatch");
    ASSERT_CONTAINS(err.msg, BUCKET);
    no_secret(err.msg, "wrongwrongwrongwrongwrongwrong00");
    no_secret(err.msg, secret);

    setenv("AWS_ACCESS_KEY_ID", "NOSUCHKEYNOSUCHKEY00", 1);
    wv__clearerr(&err);
    ASSERT_EQ(wv__store_open("s3://" BUCKET "/auth", false, &err, &s),
              WV_AUTH);
    ASSERT_CONTAINS(err.msg, "InvalidAccessKeyId");
    no_secret(err.msg, "wrongwrongwrongwrongwrongwrong00");

    /* Another user's bucket: access denied. */
    const char *bk = getenv("WV_S3_B_ACCESS_KEY_ID");
    const char *bs = getenv("WV_S3_B_SECRET_ACCESS_KEY");
    if (bk && bs) {
        setenv("AWS_ACCESS_KEY_ID", bk, 1);
        setenv("AWS_SECRET_ACCESS_KEY", bs, 1);
        wv__clearerr(&err);
        ASSERT_EQ(wv__store_open("s3://" BUCKET "/auth", false, &err, &s),
                  WV_AUTH);
        ASSERT_CONTAINS(err.msg, "s3://" BUCKET);
        ASSERT_CONTAINS(err.msg, "access denied (AccessDenied)");
        no_secret(err.msg, bs);
        no_secret(err.msg, secret);
    }

    /* No credentials anywhere. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_PROFILE");
    setenv("HOME", wvtest_tmpdir(), 1);
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    unsetenv("AWS_CONFIG_FILE");
    wv__clearerr(&err);
    ASSERT_EQ(wv__store_open("s3://" BUCKET "/auth", false, &err, &s),
              WV_AUTH);
    ASSERT_CONTAINS(err.msg, "no S3 credentials");
    /* ... but a profile file works. */
    char dir[600], text[400];
    snprintf(dir, sizeof dir, "%s/.aws", wvtest_tmpdir());
    mkdir(dir, 0700);
    snprintf(text, sizeof text,
             "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
             key, secret);
    wvtest_write_file(wvtest_path(".aws/credentials"), text, strlen(text));
    wv__clearerr(&err);
    ASSERT_OK(wv__store_open("s3://" BUCKET "/auth", false, &err, &s));
    wv__store_close(s);
    free(key);
    free(secret);
}

TEST_IMPL(s3_no_bucket)
{
    NEED_S3();
    struct wv__err err = {0};
    struct wv__store *s = NULL;
    char uri[128];
    snprintf(uri, sizeof uri, "s3://wvt-s3-nobucket-%ld/p", (long)getpid());
    ASSERT_EQ(wv__store_open(uri, false, &err, &s), WV_NOTFOUND);
    ASSERT(s == NULL);
    ASSERT_CONTAINS(err.msg, "no such bucket");
    /* create makes it (and probes conditional writes). */
    wv__clearerr(&err);
    ASSERT_OK(wv__store_open(uri, true, &err, &s));
    ASSERT_OK(wv__store_put(s, "x", "1", 1, 0));
    ASSERT_OK(wv__store_del(s, "x"));
    /* Remove the bucket again. */
    struct wv__s3cfg cfg;
    struct wv__http *h;
    struct wv__hreq r;
    ASSERT_OK(wv__s3cfg_load(&cfg, uri, &err));
    ASSERT_OK(wv__http_new(&cfg, &cfg, &err, &h));
    char bucket[64];
    snprintf(bucket, sizeof bucket, "wvt-s3-nobucket-%ld", (long)getpid());
    char *url = wv__s3_url(&cfg, bucket, NULL, NULL);
    memset(&r, 0, sizeof r);
    r.method = "DELETE";
    r.url = url;
    ASSERT_OK(wv__http_run(h, &r, 1, 1));
    ASSERT_EQ(r.status, 204);
    wv__hreq_release(&r);
    wv__free(url);
    wv__http_free(h);
    wv__s3cfg_release(&cfg);
    wv__store_close(s);
    wv__clearerr(&err);
    ASSERT_EQ(wv__store_open(uri, false, &err, &s), WV_NOTFOUND);
    /* Invalid bucket names never reach the server. */
    wv__clearerr(&err);
    ASSERT_EQ(wv__store_open("s3://x/p", false, &err, &s), WV_MISUSE);
}

TEST_IMPL(s3_unreachable)
{
    NEED_S3();
    struct wv__err err = {0};
    struct wv__store *s = NULL;
    setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1", 1);
    setenv("WV_S3_RETRIES", "2", 1);
    time_t t0 = time(NULL);
    ASSERT_EQ(wv__store_open("s3://" BUCKET "/p", false, &err, &s),
              WV_BACKEND);
    ASSERT(time(NULL) - t0 <= 3);
    ASSERT_CONTAINS(err.msg, "cannot reach http://127.0.0.1:1: "
                             "Connection refused (after 2 attempts)");
    struct wv__robj *o;
    wv__clearerr(&err);
    ASSERT_EQ(wv__robj_open("s3://" BUCKET "/p/x", &err, &o), WV_BACKEND);
    ASSERT_CONTAINS(err.msg, "Connection refused (after 2 attempts)");
}

/* ---- remote objects ------------------------------------------------------ */

static void robj_body(struct ctx *c)
{
    size_t len = ((size_t)11 << 20) + 999; /* 3 parts of 5 MiB */
    unsigned char *a = malloc(len), *b = malloc(len);
    struct wv__robj *o = NULL;
    struct wv__err err = {0};
    char url[600];
    ASSERT(a && b);
    fill(a, len, 5);
    ASSERT_OK(wv__store_put(c->s, "model.bin", a, len, 0));

    /* s3://, signed; 5 MiB parts in parallel. */
    setenv("WV_S3_PART_SIZE", "5M", 1);
    snprintf(url, sizeof url, "s3://" BUCKET "/%s/model.bin", c->prefix);
    int rc = wv__robj_open(url, &err, &o);
    if (rc != WV_OK)
        WVT_FAIL("robj_open: %s", err.msg);
    ASSERT_EQ(wv__robj_size(o), len);
    memset(b, 0, len);
    ASSERT_OK(wv__robj_read(o, 0, b, len, &err));
    if (memcmp(a, b, len) != 0)
        WVT_FAIL("s3:// read back differs");
    ASSERT_OK(wv__robj_read(o, 5242000, b, 5555, &err));
    ASSERT_MEMEQ(b, a + 5242000, 5555); /* across a part boundary */
    ASSERT_EQ(wv__robj_read(o, len - 5, b, 6, &err), WV_IO_SHORT_READ);
    /* Replaced under the reader: refused, not mixed. */
    a[100] ^= 1;
    ASSERT_OK(wv__store_put(c->s, "model.bin", a, len, 0));
    wv__clearerr(&err);
    ASSERT_EQ(wv__robj_read(o, 0, b, 1000, &err), WV_IO);
    ASSERT_CONTAINS(err.msg, "changed while it was read");
    wv__robj_close(o);
    o = NULL;

    /* http://, unsigned, on the object made public-read. */
    struct wv__hreq r;
    ASSERT_EQ(raw(c, "PUT", "model.bin", "acl=", "x-amz-acl: public-read",
                  &r),
              200);
    wv__hreq_release(&r);
    snprintf(url, sizeof url, "%s/" BUCKET "/%s/model.bin",
             getenv("AWS_ENDPOINT_URL"), c->prefix);
    wv__clearerr(&err);
    rc = wv__robj_open(url, &err, &o);
    if (rc != WV_OK)
        WVT_FAIL("robj_open: %s", err.msg);
    ASSERT_EQ(wv__robj_size(o), len);
    memset(b, 0, len);
    ASSERT_OK(wv__robj_read(o, 0, b, len, &err));
    if (memcmp(a, b, len) != 0)
        WVT_FAIL("http:// read back differs");
    ASSERT_OK(wv__robj_read(o, len - 3, b, 3, &err));
    ASSERT_MEMEQ(b, a + len - 3, 3);
    wv__robj_close(o);
    unsetenv("WV_S3_PART_SIZE");

    /* Missing objects, both ways; a private object over http://. */
    snprintf(url, sizeof url, "s3://" BUCKET "/%s/nope", c->prefix);
    wv__clearerr(&err);
    ASSERT_EQ(wv__robj_open(url, &err, &o), WV_NOTFOUND);
    ASSERT_OK(wv__store_put(c->s, "private", "x", 1, 0));
    snprintf(url, sizeof url, "%s/" BUCKET "/%s/private",
             getenv("AWS_ENDPOINT_URL"), c->prefix);
    wv__clearerr(&err);
    ASSERT_EQ(wv__robj_open(url, &err, &o), WV_AUTH);
    free(a);
    free(b);
}

TEST_IMPL(s3_robj)
{
    run_s3("robj", robj_body, NULL);
}

/* ---- the repository on S3 ------------------------------------------------ */

static void repo_body(struct ctx *c)
{
    char uri[300], err[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX], id2[WV_ID_HEX];
    wv_repo *r = NULL;
    wv_model *m = NULL, *back = NULL;
    snprintf(uri, sizeof uri, "%s/repo", c->uri);
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.errbuf = err;
    io.errbuf_size = sizeof err;
    io.chunk_size = 1 << 20;
    io.pack_size = 4 << 20;
    if (wv_repo_init(uri, &io) != WV_OK)
        WVT_FAIL("init: %s", err);
    ASSERT_EQ(wv_repo_init(uri, &io), WV_EXISTS);
    if (wv_repo_open(uri, err, sizeof err, &r) != WV_OK)
        WVT_FAIL("open: %s", err);
    ASSERT_OK(wv_model_new(&m));
    size_t n = (size_t)9 << 20;
    unsigned char *w = malloc(n);
    fill(w, n, 9);
    uint64_t shape[1] = {n / 4};
    ASSERT_OK(wv_model_add(m, "w", WV_F32, 1, shape, w, n, WV_DATA_BORROW));
    if (wv_repo_commit(r, m, NULL, NULL, id) != WV_OK)
        WVT_FAIL("commit: %s", wv_repo_errmsg(r));
    w[12345] ^= 0x40;
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id2));
    ASSERT(strcmp(id, id2) != 0);
    if (wv_repo_checkout(r, id, NULL, &back) != WV_OK)
        WVT_FAIL("checkout: %s", wv_repo_errmsg(r));
    const wv_tensor *t = wv_model_find(back, "w");
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(wv_tensor_nbytes(t), n);
    w[12345] ^= 0x40;
    ASSERT_MEMEQ(wv_tensor_data(t), w, n);
    wv_model_free(back);
    ASSERT_OK(wv_repo_tag(r, "first", id));
    ASSERT_OK(wv_repo_tag_delete(r, "first"));
    ASSERT_OK(wv_repo_tag(r, "first", id2));
    char res[WV_ID_HEX];
    ASSERT_OK(wv_repo_resolve(r, "first", res));
    ASSERT_STREQ(res, id2);
    wv_model_free(m);
    wv_repo_close(r);
    free(w);
}

static const char *const repo_refs[] = {"repo/refs/tags/first", NULL};

TEST_IMPL(s3_repo)
{
    run_s3("repo", repo_body, repo_refs);
}

/* ---- allocation failures --------------------------------------------------- */

/* Each allocation of a sequence of store calls fails in turn: every call
 * returns WV_OK or WV_NOMEM (or, after an earlier call failed, what that
 * failure explains), nothing crashes or leaks (the sanitizer build
 * checks), and the sequence completes once allocations stop failing. */
static int count_only(void *arg, const char *key, uint64_t size)
{
    (void)key;
    (void)size;
    ++*(int *)arg;
    return 0;
}

static void oom_body(struct ctx *c)
{
    char big[70000];
    fill((unsigned char *)big, sizeof big, 3);
    int completed = 0;
    for (long n = 1; n < 300 && !completed; n++) {
        char key[40], ref[40], v[80], back[sizeof big];
        size_t got;
        int listed = 0;
        snprintf(key, sizeof key, "oom/%ld", n);
        snprintf(ref, sizeof ref, "refs/heads/oom%ld", n);
        wv__alloc_fail_after(n);
        int r1 = wv__store_put(c->s, key, big, sizeof big, WV_PUT_IF_ABSENT);
        int r2 = wv__store_get(c->s, key, 0, back, sizeof big, &got);
        int r3 = wv__store_list(c->s, "oom/", count_only, &listed);
        int r4 = wv__store_ref_cas(c->s, ref, NULL, "x\n");
        int r5 = wv__store_ref_get(c->s, ref, v, sizeof v);
        int r6 = wv__store_ref_cas(c->s, ref, "x\n", NULL);
        wv__alloc_fail_after(0);
        int rs[6] = {r1, r2, r3, r4, r5, r6};
        for (int i = 0; i < 6; i++)
            if (rs[i] != WV_OK && rs[i] != WV_NOMEM &&
                rs[i] != WV_NOTFOUND && rs[i] != WV_CONFLICT)
                WVT_FAIL("n=%ld call %d: %d (%s)", n, i, rs[i], c->err.msg);
        wv__clearerr(&c->err);
        if (r1 == WV_OK && r2 == WV_OK && r3 == WV_OK && r4 == WV_OK &&
            r5 == WV_OK && r6 == WV_OK) {
            completed = 1;
            ASSERT_MEMEQ(back, big, sizeof big);
            ASSERT(listed >= 1);
        }
        /* Whatever happened, the ref is gone or deletable again. */
        struct wv__hreq r;
        raw(c, "DELETE", ref, NULL, NULL, &r);
        wv__hreq_release(&r);
    }
    ASSERT(completed);
}

TEST_IMPL(s3_oom)
{
    run_s3("oom", oom_body, NULL);
}

/* ---- streamed reads (get_fd) -------------------------------------------- */

/* An object read straight into a file, in parallel 5 MiB parts written at
 * their offsets (at an offset of the file, from an offset of the object);
 * past the end a short read; a file that cannot be written is an I/O
 * error naming the object, not a network failure. */
static void get_fd_body(struct ctx *c)
{
    size_t len = ((size_t)11 << 20) + 999; /* 3 parts of 5 MiB */
    unsigned char *a = malloc(len), *b = malloc(len);
    ASSERT(a && b);
    fill(a, len, 9);
    ASSERT_OK(wv__store_put(c->s, "packs/fd", a, len, 0));
    struct wv__err e2 = {0};
    struct wv__store *s5;
    if (open_5m(c, &e2, &s5) != WV_OK)
        WVT_FAIL("open: %s", e2.msg);
    ASSERT(wv__store_can_stream(s5, c->s) == false); /* S3 has no put_open */
    size_t n;

    char *path = wvtest_path("s3-get-fd");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT(fd >= 0);
    ASSERT_OK(wv__store_get_fd(s5, "packs/fd", 100, len - 100, fd, 7, &n));
    ASSERT_EQ(n, len - 100);
    memset(b, 0, len);
    ASSERT_EQ(pread(fd, b, len, 7), (ssize_t)(len - 100));
    if (memcmp(a + 100, b, len - 100) != 0)
        WVT_FAIL("the object streamed into a file differs");

    ASSERT_EQ(wv__store_get_fd(s5, "packs/fd", len - 10, 4096, fd, 0, &n),
              WV_IO_SHORT_READ);
    ASSERT_EQ(n, 10);
    wv__clearerr(&e2);
    ASSERT_EQ(wv__store_get_fd(s5, "packs/none", 0, 10, fd, 0, &n),
              WV_NOTFOUND);
    wv__clearerr(&e2);
    /* the store faults of a get: a flipped bit lands in the file */
    wv__store_fault(1, WV__SFAULT_BITFLIP, WV_IO, EIO);
    ASSERT_OK(wv__store_get_fd(s5, "packs/fd", 0, 4096, fd, 0, &n));
    ASSERT(!wv__store_fault_pending());
    ASSERT_EQ(pread(fd, b, 4096, 0), 4096);
    ASSERT_EQ(b[2048], a[2048] ^ 0x10);
    b[2048] ^= 0x10;
    ASSERT_MEMEQ(b, a, 4096);
    wv__store_fail_after(1, WV_IO, ENOSPC);
    ASSERT_EQ(wv__store_get_fd(s5, "packs/fd", 0, 4096, fd, 0, &n), WV_IO);
    ASSERT_EQ(n, 0);
    ASSERT_CONTAINS(e2.msg, "read 'packs/fd' failed");
    wv__clearerr(&e2);
    close(fd);

    int ro = open(path, O_RDONLY);
    ASSERT(ro >= 0);
    ASSERT_EQ(wv__store_get_fd(s5, "packs/fd", 0, len, ro, 0, &n), WV_IO);
    ASSERT_CONTAINS(e2.msg, "packs/fd");
    ASSERT_CONTAINS(e2.msg, "Bad file descriptor");
    close(ro);
    unlink(path);
    wv__store_close(s5);
    free(a);
    free(b);
}

TEST_IMPL(s3_get_fd)
{
    run_s3("getfd", get_fd_body, NULL);
}

/* ---- a clone from S3 under store faults ----------------------------------- */

/* A clone from S3 to local disk (its objects streamed into their files)
 * with a fault at each store call in turn (a failure, a short write, a
 * failed fsync): when the clone fails, the destination holds no temporary
 * file, and a clone run again without faults completes and verifies, so
 * no object was left there torn (a re-run skips what it finds). */
static void clone_faults_body(struct ctx *c)
{
    char uri[300], dst[512], err[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX];
    wv_repo *r = NULL;
    wv_model *m = NULL;
    snprintf(uri, sizeof uri, "%s/repo", c->uri);
    snprintf(dst, sizeof dst, "%s/s3-clone-faults", wvtest_tmpdir());
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = 1 << 20;
    io.pack_size = 1 << 20; /* two packs, each streamed */
    ASSERT_OK(wv_repo_init(uri, &io));
    ASSERT_OK(wv_repo_open(uri, err, sizeof err, &r));
    ASSERT_OK(wv_model_new(&m));
    size_t n = (size_t)2 << 20;
    unsigned char *w = malloc(n);
    ASSERT_NOT_NULL(w);
    fill(w, n, 4);
    uint64_t shape[1] = {n / 4};
    ASSERT_OK(wv_model_add(m, "w", WV_F32, 1, shape, w, n, WV_DATA_BORROW));
    ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
    wv_model_free(m);
    wv_repo_close(r);
    free(w);

    const int kinds[3] = {WV__SFAULT_FAIL, WV__SFAULT_SHORT_WRITE,
                          WV__SFAULT_FSYNC};
    wv_sync_opts so = WV_SYNC_OPTS_INIT;
    so.jobs = 2;
    so.errbuf = err;
    so.errbuf_size = sizeof err;
    char cmd[700];
    for (int k = 0; k < 3; k++) {
        int failed = 0;
        for (long at = 1; at < 400; at++) {
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", dst);
            ASSERT_EQ(system(cmd), 0);
            err[0] = '\0';
            wv__store_fault(at, kinds[k], WV_IO, EIO);
            int rc = wv_repo_sync(uri, dst, &so, NULL);
            bool hit = !wv__store_fault_pending();
            wv__store_fault(0, WV__SFAULT_FAIL, 0, 0);
            if (!hit)
                break; /* past the clone's last store call */
            if (rc == WV_OK)
                continue; /* a call whose failure is harmless */
            failed++;
            if (err[0] == '\0')
                WVT_FAIL("fault %d at call %ld: failed with no message", k,
                         at);
            snprintf(cmd, sizeof cmd,
                     "test -z \"$(find '%s' -name '.tmp-*' 2>/dev/null)\"",
                     dst);
            if (system(cmd) != 0)
                WVT_FAIL("fault %d at call %ld: a temporary file is left "
                         "(%s)",
                         k, at, err);
            if (wv_repo_sync(uri, dst, &so, NULL) != WV_OK)
                WVT_FAIL("fault %d at call %ld: the re-run failed: %s", k,
                         at, err);
            ASSERT_OK(wv_repo_open(dst, err, sizeof err, &r));
            if (wv_repo_verify(r, NULL, NULL, NULL) != WV_OK)
                WVT_FAIL("fault %d at call %ld: the clone does not verify "
                         "after a re-run: %s",
                         k, at, wv_repo_errmsg(r));
            wv_repo_close(r);
        }
        if (failed == 0)
            WVT_FAIL("fault %d never made the clone fail", k);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dst);
    ASSERT_EQ(system(cmd), 0);
}

static const char *const clone_refs[] = {"repo/refs/heads/main", NULL};

TEST_IMPL(s3_clone_faults)
{
    run_s3("clonef", clone_faults_body, clone_refs);
}

/* ---- a damaged pack in an S3 source ------------------------------------ */

/* Clone and pull from S3 (each pack streamed into its file, checked there
 * before it is renamed into place): a chunk damaged in the source is
 * refused, naming the pack and the chunk, with nothing of that pack kept;
 * the run after the repair completes and verifies (t_repo.c). */
static void sync_checks_body(struct ctx *c)
{
    char uri[300], dst[512], err[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX];
    wv_repo *r = NULL;
    snprintf(uri, sizeof uri, "%s/repo", c->uri);
    snprintf(dst, sizeof dst, "%s/s3-damaged", wvtest_tmpdir());
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = 256 << 10;
    io.pack_size = 1 << 20;
    ASSERT_OK(wv_repo_init(uri, &io));
    for (int k = 0; k < 2 && !wvtest_failed; k++) {
        wv_model *m = NULL;
        ASSERT_OK(wv_repo_open(uri, err, sizeof err, &r));
        ASSERT_OK(wv_model_new(&m));
        size_t n = (size_t)2 << 20;
        unsigned char *w = malloc(n);
        ASSERT_NOT_NULL(w);
        fill(w, n, 10 + (uint64_t)k);
        uint64_t shape[1] = {n / 4};
        ASSERT_OK(
            wv_model_add(m, "w", WV_F32, 1, shape, w, n, WV_DATA_BORROW));
        ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id));
        wv_model_free(m);
        wv_repo_close(r);
        free(w);
        wvtest_sync_damaged_pack(uri, dst, k == 0); /* clone, then pull */
    }
}

static const char *const sync_checks_refs[] = {"repo/refs/heads/main",
                                               NULL};

TEST_IMPL(s3_sync_checks_chunks)
{
    run_s3("syncchk", sync_checks_body, sync_checks_refs);
}
