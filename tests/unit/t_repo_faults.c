/*
 * t_repo_faults.c -- store faults during commit and checkout.
 *
 * For every store call n = 1, 2, ... of a commit, and each kind of fault
 * (EIO, ENOSPC, a short write, a failed fsync), on a fresh repository per
 * n: the commit fails with a message naming the object (or the fault hit a
 * call whose failure is harmless and it succeeds), the previous checkpoint
 * still checks out bit-exactly, and a retry succeeds and reads back
 * bit-exactly, also through a new handle. The loop ends when n passes the
 * commit's last store call. Leaks are ASan/LSan's to find. Checkout gets
 * the same treatment with EIO and with silently flipped bits: an error, or
 * the right bytes, never wrong ones.
 */
#include "repo.h"
#include "wvtest.h"

#include <errno.h>

static wv_model *make(int v)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    size_t n = 10000; /* 40000 bytes: 10 chunks of 4 KiB, several packs */
    float *w = wv_malloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++)
        w[i] = (float)((i * 2654435761u + (unsigned)v * 97u) % 1009) / 7.0f;
    uint64_t shape[1] = {n};
    wv_model_add(m, "w", WV_F32, 1, shape, w, n * sizeof *w, WV_DATA_TAKE);
    int64_t step = 100 + v;
    wv_model_add(m, "step", WV_I64, 0, NULL, &step, 8, WV_DATA_COPY);
    wv_model_set_meta(m, "v", v ? "b" : "a");
    return m;
}

static int same(const wv_model *a, const wv_model *b)
{
    if (a == NULL || b == NULL || wv_model_count(a) != wv_model_count(b))
        return 0;
    for (size_t i = 0; i < wv_model_count(a); i++) {
        const wv_tensor *t = wv_model_tensor(a, i);
        const wv_tensor *u = wv_model_find(b, wv_tensor_name(t));
        if (u == NULL || wv_tensor_nbytes(t) != wv_tensor_nbytes(u) ||
            wv_tensor_dtype(t) != wv_tensor_dtype(u) ||
            memcmp(wv_tensor_data(t), wv_tensor_data(u),
                   wv_tensor_nbytes(t)) != 0)
            return 0;
    }
    return 1;
}

static int checks_out(wv_repo *r, const char *ref, const wv_model *want)
{
    wv_model *back = NULL;
    int ok = wv_repo_checkout(r, ref, NULL, &back) == WV_OK &&
             same(want, back);
    wv_model_free(back);
    return ok;
}

static void init_small(const char *uri)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = 4096;
    io.pack_size = 16384;
    io.compression = "zstd-bg";
    int rc = wv_repo_init(uri, &io);
    if (rc != WV_OK)
        fprintf(stderr, "init %s: %d\n", uri, rc);
}

/* Returns the number of store calls the commit made (the first n that
 * did not fire), or 0 after a failed assertion. */
static long commit_faults(const char *tag, int local, int kind, int code,
                          int errnum, const char *needle)
{
    wv_model *a = make(0), *b = make(1);
    long n, calls = 0;
    for (n = 1; n < 10000; n++) {
        char uri[600], ida[WV_ID_HEX], idb[WV_ID_HEX], head[WV_ID_HEX];
        if (local)
            snprintf(uri, sizeof uri, "%s/%s-%ld", wvtest_tmpdir(), tag, n);
        else
            snprintf(uri, sizeof uri, "mem://faults-%s-%ld", tag, n);
        init_small(uri);
        wv_repo *r = NULL;
        if (wv_repo_open(uri, NULL, 0, &r) != WV_OK ||
            wv_repo_commit(r, a, NULL, NULL, ida) != WV_OK) {
            fprintf(stderr, "%s n=%ld: setup failed\n", tag, n);
            wv_repo_close(r);
            break;
        }
        wv__store_fault(n, kind, code, errnum);
        int rc = wv_repo_commit(r, b, NULL, NULL, idb);
        bool fired = !wv__store_fault_pending();
        wv__store_fault(0, WV__SFAULT_FAIL, 0, 0);
        if (!fired) {
            if (rc != WV_OK)
                fprintf(stderr, "%s: clean commit failed: %s\n", tag,
                        wv_repo_errmsg(r));
            calls = rc == WV_OK ? n : 0;
            wv_repo_close(r);
            break;
        }
        bool failed = rc != WV_OK;
        if (failed && (strstr(wv_repo_errmsg(r), needle) == NULL ||
                       strchr(wv_repo_errmsg(r), '\'') == NULL)) {
            fprintf(stderr, "%s n=%ld: unclear message '%s'\n", tag, n,
                    wv_repo_errmsg(r));
            wv_repo_close(r);
            break;
        }
        /* The earlier checkpoint is intact; the branch is on a or b. */
        bool ok = checks_out(r, ida, a) &&
                  wv_repo_resolve(r, "main", head) == WV_OK &&
                  strcmp(head, failed ? ida : idb) == 0;
        /* A retry succeeds and reads back, also through a new handle. */
        ok = ok && wv_repo_commit(r, b, NULL, NULL, idb) == WV_OK &&
             checks_out(r, "main", b);
        wv_repo_close(r);
        r = NULL;
        ok = ok && wv_repo_open(uri, NULL, 0, &r) == WV_OK &&
             checks_out(r, ida, a) && checks_out(r, idb, b);
        if (!ok)
            fprintf(stderr, "%s n=%ld (%s): state after the fault is wrong: "
                            "%s\n",
                    tag, n, failed ? "failed" : "tolerated",
                    r ? wv_repo_errmsg(r) : "");
        wv_repo_close(r);
        if (!ok)
            break;
    }
    wv_model_free(a);
    wv_model_free(b);
    return calls;
}

TEST_IMPL(repo_faults_commit_mem)
{
    long c1 = commit_faults("eio", 0, WV__SFAULT_FAIL, WV_IO, EIO,
                            strerror(EIO));
    ASSERT(c1 > 10);
    long c2 = commit_faults("enospc", 0, WV__SFAULT_FAIL, WV_IO, ENOSPC,
                            strerror(ENOSPC));
    ASSERT_EQ(c2, c1);
    ASSERT(commit_faults("short", 0, WV__SFAULT_SHORT_WRITE, WV_IO, ENOSPC,
                         "short write") > 10);
    ASSERT(commit_faults("fsync", 0, WV__SFAULT_FSYNC, WV_IO, EIO,
                         "fsync failed") > 10);
}

TEST_IMPL(repo_faults_commit_local)
{
    long c1 = commit_faults("eio", 1, WV__SFAULT_FAIL, WV_IO, EIO,
                            strerror(EIO));
    ASSERT(c1 > 10);
    ASSERT(commit_faults("enospc", 1, WV__SFAULT_FAIL, WV_IO, ENOSPC,
                         strerror(ENOSPC)) == c1);
    ASSERT(commit_faults("short", 1, WV__SFAULT_SHORT_WRITE, WV_IO, ENOSPC,
                         "short write") > 10);
    ASSERT(commit_faults("fsync", 1, WV__SFAULT_FSYNC, WV_IO, EIO,
                         "fsync failed") > 10);
}

/* Without the wrapper's cleanup a torn pack would be trusted by the next
 * commit (WV_PUT_IF_ABSENT): show the short write really reaches the
 * backend and leaves nothing. */
TEST_IMPL(repo_faults_short_write_leaves_nothing)
{
    char dir[512], cmd[2048], id[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/torn", wvtest_tmpdir());
    init_small(dir);
    wv_repo *r;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    wv_model *a = make(0);
    /* Calls: lock put, lock list, ref read, index list, then the first
     * pack put: fire at the first put from call 5 on. */
    wv__store_fault(5, WV__SFAULT_SHORT_WRITE, WV_IO, ENOSPC);
    ASSERT_EQ(wv_repo_commit(r, a, NULL, NULL, id), WV_IO);
    ASSERT(!wv__store_fault_pending());
    ASSERT_CONTAINS(wv_repo_errmsg(r), "packs/");
    ASSERT_CONTAINS(wv_repo_errmsg(r), "short write");
    snprintf(cmd, sizeof cmd,
             "test -z \"$(find %s/packs %s/index %s/manifests -type f "
             "2>/dev/null)\"",
             dir, dir, dir);
    ASSERT_OK(system(cmd));
    ASSERT_OK(wv_repo_commit(r, a, NULL, NULL, id));
    ASSERT(checks_out(r, id, a));
    wv_model_free(a);
    wv_repo_close(r);
}

static long checkout_faults(const char *uri, int kind, const wv_model *want,
                            const char *id)
{
    for (long n = 1; n < 10000; n++) {
        wv_repo *r = NULL;
        wv_model *back = NULL;
        if (wv_repo_open(uri, NULL, 0, &r) != WV_OK)
            return 0;
        wv__store_fault(n, kind, WV_IO, EIO);
        int rc = wv_repo_checkout(r, id, NULL, &back);
        bool fired = !wv__store_fault_pending();
        wv__store_fault(0, WV__SFAULT_FAIL, 0, 0);
        bool ok = rc == WV_OK ? same(want, back)
                              : back == NULL && wv_repo_errmsg(r)[0] != '\0';
        if (!ok)
            fprintf(stderr, "checkout n=%ld: rc %d, %s\n", n, rc,
                    rc == WV_OK ? "WRONG DATA" : "no message");
        if (ok && rc != WV_OK && kind == WV__SFAULT_FAIL)
            ok = strstr(wv_repo_errmsg(r), strerror(EIO)) != NULL;
        wv_model_free(back);
        wv_repo_close(r);
        if (!ok)
            return 0;
        if (!fired)
            return rc == WV_OK ? n : 0;
    }
    return 0;
}

TEST_IMPL(repo_faults_checkout)
{
    const char *uri = "mem://faults-checkout";
    char id[WV_ID_HEX];
    init_small(uri);
    wv_repo *r;
    ASSERT_OK(wv_repo_open(uri, NULL, 0, &r));
    wv_model *a = make(0), *b = make(1);
    ASSERT_OK(wv_repo_commit(r, a, NULL, NULL, id));
    ASSERT_OK(wv_repo_commit(r, b, NULL, NULL, id));
    wv_repo_close(r);
    ASSERT(checkout_faults(uri, WV__SFAULT_FAIL, b, id) > 5);
    ASSERT(checkout_faults(uri, WV__SFAULT_BITFLIP, b, id) > 5);
    wv_model_free(a);
    wv_model_free(b);
}

/* wv__store_putv: the local backend writes the pieces with writev (more
 * than one batch of 64, empty pieces, a large one), the memory backend
 * gets them gathered; both read back as the concatenation. A short write
 * through putv leaves nothing either. */
static void putv_roundtrip(const char *uri)
{
    struct wv__err err = {0};
    struct wv__store *s;
    ASSERT_OK(wv__store_open(uri, true, &err, &s));
    enum { N = 150 };
    struct iovec iov[N];
    size_t big = (size_t)3 << 20, total = 0;
    unsigned char *src = malloc(big + N * 16);
    ASSERT_NOT_NULL(src);
    for (size_t i = 0; i < big + N * 16; i++)
        src[i] = (unsigned char)(i * 131u + 7u);
    size_t at = 0;
    for (int i = 0; i < N; i++) {
        size_t n = i == 77 ? big : (size_t)(i % 7) * 2; /* some empty */
        /* every other piece from the far end: no two join up */
        iov[i].iov_base = i % 2 ? src + big + N * 16 - at % 1000 - n
                                : src + at;
        iov[i].iov_len = n;
        at += n;
        total += n;
    }
    unsigned char *want = malloc(total), *got = NULL;
    ASSERT_NOT_NULL(want);
    for (int i = 0, k = 0; i < N; k += (int)iov[i].iov_len, i++)
        memcpy(want + k, iov[i].iov_base, iov[i].iov_len);
    ASSERT_OK(wv__store_putv(s, "packs/aa/v", iov, N, WV_PUT_NOSYNC));
    ASSERT_OK(wv__store_control(s, WV_STORE_SYNC, NULL));
    size_t len = 0;
    ASSERT_OK(wv__store_get_all(s, "packs/aa/v", total + 1, &got, &len));
    ASSERT_EQ(len, total);
    ASSERT_MEMEQ(got, want, total);
    wv__free(got);

    wv__store_fault(1, WV__SFAULT_SHORT_WRITE, WV_IO, ENOSPC);
    ASSERT_EQ(wv__store_putv(s, "packs/aa/w", iov, N, 0), WV_IO);
    wv__store_fault(0, WV__SFAULT_FAIL, 0, 0);
    ASSERT_CONTAINS(err.msg, "short write");
    uint64_t sz;
    ASSERT_EQ(wv__store_stat(s, "packs/aa/w", &sz), WV_NOTFOUND);
    wv__store_close(s);
    free(want);
    free(src);
}

TEST_IMPL(store_putv_pieces)
{
    putv_roundtrip(wvtest_path("putv"));
    putv_roundtrip("mem://putv-pieces");
}

/* Streamed puts (put_open / put_close: sync streams S3 objects through
 * them): the object appears only at a close that keeps it, whole, and is
 * counted as one put; a close that drops it, or a close hit by a fault
 * (a failure, a failed fsync of a durable put, a short write), leaves
 * neither the object nor a temporary file; an fsync fault on an unsynced
 * one fails the next barrier naming it, as for any put; an object already
 * there is reported and nothing opened. A backend without streams (the
 * memory one; RADOS has none either) says so in one line. */
static int count_files(void *arg, const char *key, uint64_t size)
{
    (void)key;
    (void)size;
    (*(int *)arg)++;
    return 0;
}

/* Open key on s for a streamed put and write "abc" into it. */
static void fd_abc(struct wv__store *s, struct wv__store_wfile *w,
                   const char *key, unsigned flags)
{
    bool exists;
    *w = (struct wv__store_wfile){key, flags, -1, NULL};
    ASSERT_OK(wv__store_put_open(s, w, &exists));
    ASSERT(!exists && w->fd >= 0);
    ASSERT_EQ(write(w->fd, "abc", 3), 3);
}

TEST_IMPL(store_fdput)
{
    struct wv__err err = {0};
    struct wv__store *s, *m;
    struct wv__store_wfile w;
    struct wv__store_count c0, c1;
    uint64_t sz;
    unsigned char *got = NULL;
    size_t len = 0, n;
    bool exists;
    const char *dir = wvtest_path("fdput");
    ASSERT_OK(wv__store_open(dir, true, &err, &s));
    ASSERT_OK(wv__store_open("mem://fdput", true, &err, &m));
    ASSERT(!wv__store_can_stream(m, s)); /* the memory store has no get_fd */
    ASSERT(!wv__store_can_stream(s, m)); /* ... nor put_open */
    w = (struct wv__store_wfile){"packs/ab/x", 0, -1, NULL};
    ASSERT_EQ(wv__store_put_open(m, &w, &exists), WV_UNSUPPORTED);
    ASSERT_CONTAINS(err.msg, "mem://fdput");
    ASSERT_CONTAINS(err.msg, "packs/ab/x");
    ASSERT_EQ(wv__store_get_fd(s, "packs/ab/x", 0, 3, 1, 0, &n),
              WV_UNSUPPORTED);
    wv__clearerr(&err);
    wv__store_close(m);

    w = (struct wv__store_wfile){"packs/ab/x", WV_PUT_IF_ABSENT, -1, NULL};
    ASSERT_OK(wv__store_put_open(s, &w, &exists));
    ASSERT(!exists && w.fd >= 0);
    ASSERT_EQ(pwrite(w.fd, "world", 5, 6), 5); /* out of order */
    ASSERT_EQ(pwrite(w.fd, "hello ", 6, 0), 6);
    ASSERT_EQ(wv__store_stat(s, "packs/ab/x", &sz), WV_NOTFOUND);
    wv__clearerr(&err);
    wv__store_counts(s, &c0);
    ASSERT_OK(wv__store_put_close(s, &w, 11, true));
    wv__store_counts(s, &c1);
    ASSERT_EQ(c1.requests - c0.requests, 1);
    ASSERT_EQ(c1.bytes_sent - c0.bytes_sent, 11);
    ASSERT_EQ(w.fd, -1);
    ASSERT_OK(wv__store_get_all(s, "packs/ab/x", 100, &got, &len));
    ASSERT_EQ(len, 11);
    ASSERT_MEMEQ(got, "hello world", 11);
    wv__free(got);

    /* there already: nothing opened */
    w = (struct wv__store_wfile){"packs/ab/x", WV_PUT_IF_ABSENT, -1, NULL};
    ASSERT_OK(wv__store_put_open(s, &w, &exists));
    ASSERT(exists && w.fd == -1);

    /* dropped; faults at the close: no object, no temporary file */
    fd_abc(s, &w, "packs/cd/y", 0);
    ASSERT_OK(wv__store_put_close(s, &w, 3, false));
    const int kinds[3] = {WV__SFAULT_FAIL, WV__SFAULT_FSYNC,
                          WV__SFAULT_SHORT_WRITE};
    const char *says[3] = {"write 'packs/cd/y' failed", "fsync failed on",
                           "short write on 'packs/cd/y' (1 of 3 bytes)"};
    for (int k = 0; k < 3; k++) {
        fd_abc(s, &w, "packs/cd/y", 0);
        wv__store_fault(1, kinds[k], WV_IO, EIO);
        ASSERT_EQ(wv__store_put_close(s, &w, 3, true), WV_IO);
        ASSERT(!wv__store_fault_pending());
        ASSERT_CONTAINS(err.msg, says[k]);
        ASSERT_CONTAINS(err.msg, "packs/cd/y");
        ASSERT_EQ(w.fd, -1);
        ASSERT_EQ(wv__store_stat(s, "packs/cd/y", &sz), WV_NOTFOUND);
        wv__clearerr(&err);
    }
    /* unsynced: the put goes through, the barrier fails naming it */
    fd_abc(s, &w, "packs/cd/z", WV_PUT_NOSYNC);
    wv__store_fault(1, WV__SFAULT_FSYNC, WV_IO, EIO);
    ASSERT_OK(wv__store_put_close(s, &w, 3, true));
    ASSERT_EQ(wv__store_control(s, WV_STORE_SYNC, NULL), WV_IO);
    ASSERT_CONTAINS(err.msg, "fsync failed on 'packs/cd/z'");
    wv__store_fault(0, WV__SFAULT_FAIL, 0, 0);
    wv__clearerr(&err);

    char cmd[600];
    snprintf(cmd, sizeof cmd, "test -z \"$(find '%s' -name '.tmp-*')\"",
             dir);
    ASSERT_EQ(system(cmd), 0);
    int files = 0;
    ASSERT_OK(wv__store_list(s, "packs/", count_files, &files));
    ASSERT_EQ(files, 2); /* x and z */
    w = (struct wv__store_wfile){"../escape", 0, -1, NULL};
    ASSERT_EQ(wv__store_put_open(s, &w, &exists), WV_MISUSE);
    wv__store_close(s);
}

/* A process killed while holding a ref's lock in the local store, after it
 * wrote the new value into the lock file and before the rename, leaves a
 * lock that names no holder. A compare-and-swap waits until that lock is
 * stale and breaks it, rather than giving up first with WV_CONFLICT while
 * the ref still holds what it expects (parts.c's finish took that for
 * "the branch moved"). Takes about LOCK_STALE_S + 1 seconds. */
TEST_IMPL(store_ref_cas_outwaits_dead_holder)
{
    struct wv__err err = {0};
    struct wv__store *s;
    char path[1200], cur[64];
    const char *dir = wvtest_path("reflock");
    ASSERT_OK(wv__store_open(dir, true, &err, &s));
    ASSERT_OK(wv__store_ref_cas(s, "refs/heads/main", NULL, "a\n"));
    wv__clearerr(&err);
    snprintf(path, sizeof path, "%s/refs/heads/main.lock", dir);
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fputs("b\n", f); /* the dead holder's new value, no "<pid>\n" */
    fclose(f);
    int rc = wv__store_ref_cas(s, "refs/heads/main", "a\n", "c\n");
    if (rc != WV_OK)
        WVT_FAIL("the compare-and-swap gave up: %d %s", rc, err.msg);
    ASSERT_OK(wv__store_ref_get(s, "refs/heads/main", cur, sizeof cur));
    ASSERT_STREQ(cur, "c\n");
    ASSERT(access(path, F_OK) != 0);
    wv__store_close(s);
}

/* Out of memory at each allocation of a local put, buffered and streamed,
 * unsynced (on a fresh handle: its barrier's list grows at its first):
 * WV_NOMEM with a message, and no object; never an object left in place
 * but off the barrier's list, which no sync would reach and a re-run
 * would take for done. */
TEST_IMPL(store_local_oom)
{
    const char *dir = wvtest_path("local-oom");
    bool ok[2] = {false, false}; /* a buffered, a streamed put went through */
    for (long n = 1; n < 40 && !(ok[0] && ok[1]); n++) {
        for (int streamed = 0; streamed < 2; streamed++) {
            struct wv__err err = {0};
            struct wv__store *s;
            struct wv__store_wfile w = {streamed ? "packs/b" : "packs/a",
                                        WV_PUT_IF_ABSENT | WV_PUT_NOSYNC,
                                        -1, NULL};
            bool exists = false;
            uint64_t sz;
            ASSERT_OK(wv__store_open(dir, true, &err, &s));
            wv__alloc_fail_after(n);
            int rc;
            if (!streamed) {
                rc = wv__store_put(s, w.key, "abc", 3, w.flags);
            } else if ((rc = wv__store_put_open(s, &w, &exists)) == WV_OK) {
                ASSERT_EQ(write(w.fd, "abc", 3), 3);
                rc = wv__store_put_close(s, &w, 3, true);
            }
            wv__alloc_fail_after(0);
            if (rc == WV_OK) {
                ASSERT_OK(wv__store_control(s, WV_STORE_SYNC, NULL));
                ASSERT_OK(wv__store_del(s, w.key));
                ok[streamed] = true;
            } else {
                ASSERT_EQ(rc, WV_NOMEM);
                if (err.msg[0] == '\0')
                    WVT_FAIL("n=%ld: WV_NOMEM without a message", n);
                if (wv__store_stat(s, w.key, &sz) != WV_NOTFOUND)
                    WVT_FAIL("n=%ld: '%s' is there after WV_NOMEM", n,
                             w.key);
            }
            wv__store_close(s);
        }
    }
    ASSERT(ok[0] && ok[1]);
}
