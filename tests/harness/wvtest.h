/*
 * wvtest.h -- a small test harness in the manner of libuv's test/task.h.
 *
 * TEST_IMPL(name) { ... } defines a test; the runner executes the one named
 * on its command line (each is its own ctest entry) or all of them. ASSERT_*
 * print file, line and expression and fail the test.
 *
 * Inputs the tests read (the real fixtures, tests/data) go through
 * wvtest_fixture() or wvtest_input(): when such a file is missing, the
 * test fails with the one line "FILE:LINE: missing input PATH ..." in
 * place of whatever assertion tripped over it.
 */
#ifndef WVTEST_H
#define WVTEST_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weightvault.h"

typedef void (*wvtest_fn)(void);
void wvtest_register(const char *name, wvtest_fn fn);
extern int wvtest_failed;

#define TEST_IMPL(name)                                                   \
    static void test_##name(void);                                        \
    __attribute__((constructor)) static void reg_##name(void)             \
    {                                                                     \
        wvtest_register(#name, test_##name);                              \
    }                                                                     \
    static void test_##name(void)

/* Print "FILE:LINE: message" (or the missing-input line when an input
 * was missing) and mark the running test failed. */
void wvtest_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define WVT_FAIL(...)                                                     \
    do {                                                                  \
        wvtest_fail_at(__FILE__, __LINE__, __VA_ARGS__);                  \
        return;                                                           \
    } while (0)

/* Skip the running test: the runner prints "skip" and, when it ran only
 * this test, exits 77 (ctest's SKIP_RETURN_CODE). */
extern int wvtest_skipped;
#define WVTEST_SKIP(...)                                                  \
    do {                                                                  \
        fprintf(stderr, "skip: ");                                        \
        fprintf(stderr, __VA_ARGS__);                                     \
        fputc('\n', stderr);                                              \
        wvtest_skipped = 1;                                               \
        return;                                                           \
    } while (0)

#define ASSERT(expr)                                                      \
    do {                                                                  \
        if (!(expr))                                                      \
            WVT_FAIL("assertion failed: %s", #expr);                      \
    } while (0)
#define ASSERT_EQ(a, b)                                                   \
    do {                                                                  \
        long long va_ = (long long)(a), vb_ = (long long)(b);             \
        if (va_ != vb_)                                                   \
            WVT_FAIL("%s == %s failed: %lld != %lld", #a, #b, va_, vb_);  \
    } while (0)
#define ASSERT_OK(expr) ASSERT_EQ((expr), 0)
#define ASSERT_NOT_NULL(p) ASSERT((p) != NULL)
#define ASSERT_STREQ(a, b)                                                \
    do {                                                                  \
        const char *sa_ = (a), *sb_ = (b);                                \
        if (sa_ == NULL || sb_ == NULL || strcmp(sa_, sb_) != 0)          \
            WVT_FAIL("%s == %s failed: \"%s\" != \"%s\"", #a, #b,         \
                     sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");          \
    } while (0)
#define ASSERT_CONTAINS(hay, needle)                                      \
    do {                                                                  \
        const char *h_ = (hay), *n_ = (needle);                           \
        if (h_ == NULL || strstr(h_, n_) == NULL)                         \
            WVT_FAIL("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", \
                     n_);                                                 \
    } while (0)
#define ASSERT_MEMEQ(a, b, n) ASSERT(memcmp((a), (b), (n)) == 0)

/* A fresh scratch directory for the running test (removed on success). */
const char *wvtest_tmpdir(void);
/* "<tmpdir>/<name>" in one of 8 rotating static buffers. */
char *wvtest_path(const char *name);
/* The real fixtures: $WV_FIXTURES, else the directory the build names;
 * wvtest_fixture("pth", "x.pth") is "<that>/pth/x.pth" in one of 8
 * rotating static buffers. */
const char *wvtest_fixtures(void);
char *wvtest_fixture(const char *sub, const char *name);
/* `path` itself, after noting it as a missing input of the running test
 * when it cannot be read (the test then fails naming it; see above). */
const char *wvtest_input(const char *path);
/* The unit tests' deterministic byte pattern for n bytes (seed varies it;
 * BOOL gets 0/1 only), and a tensor of it added to m, owned by the set:
 * wv_model_add's status, -1 if the shape is invalid or memory short. */
void wvtest_fill_pattern(unsigned char *p, size_t n, wv_dtype dt,
                         unsigned seed);
int wvtest_add_pattern(wv_model *m, const char *name, wv_dtype dt, int ndim,
                       const uint64_t *shape, unsigned seed);
/* Read a whole file into a malloc()ed buffer; NULL on failure. */
unsigned char *wvtest_read_file(const char *path, size_t *len);
int wvtest_write_file(const char *path, const void *p, size_t len);

/* Scripted HTTP servers on loopback (t_http.c, t_s3xml.c): listen on an
 * ephemeral port of 127.0.0.1 and run `main(arg)` on a thread that accepts
 * on *fd until wvtest_srv_stop() closes it. 0 on success. */
int wvtest_srv_start(int *fd, int *port, pthread_t *th,
                     void *(*main)(void *), void *arg);
void wvtest_srv_stop(int fd, pthread_t th);
/* send() all of p; gives up quietly when the client went away. */
void wvtest_send_all(int fd, const void *p, size_t n);

/* A sync from src into dst (a local directory; a new repository when
 * create, else one holding an older copy of src's branch main) while one
 * chunk, of a pack dst lacks, is damaged in src: the sync must fail naming
 * the pack and the chunk, leave no file of that pack and no moved ref in
 * dst, and complete and verify once the byte is repaired (t_repo.c; also
 * run by t_crypt.c and t_s3.c on their repositories). */
void wvtest_sync_damaged_pack(const char *src, const char *dst, int create);

#endif
