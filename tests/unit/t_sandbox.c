/*
 * t_sandbox.c -- the child-process check run before libhdf5 parses a file.
 *
 * A parse that finishes passes its status through; one that crashes, spins
 * or hangs is refused with a message saying which, and never keeps the
 * caller waiting for longer than the limit.
 */
#include "wv_int.h"
#include "wvtest.h"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static int fn_ok(void *arg, struct wv__err *err)
{
    (void)err;
    *(int *)arg = 1; /* the child's copy: the parent's stays 0 */
    return WV_OK;
}

static int fn_fails(void *arg, struct wv__err *err)
{
    (void)arg;
    return wv__seterr(err, WV_FORMAT, "x.h5: bad superblock");
}

static int fn_crashes(void *arg, struct wv__err *err)
{
    (void)arg;
    (void)err;
    abort();
}

static int fn_spins(void *arg, struct wv__err *err)
{
    (void)arg;
    (void)err;
    volatile unsigned long n = 0;
    for (;;)
        n++;
    return WV_OK;
}

static int fn_sleeps(void *arg, struct wv__err *err)
{
    (void)arg;
    (void)err;
    for (;;)
        pause();
    return WV_OK;
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

TEST_IMPL(sandbox_status)
{
    struct wv__err err = {0};
    int touched = 0;
    ASSERT_EQ(wv__sandbox_check(fn_ok, &touched, 100, "x.h5", &err), WV_OK);
    ASSERT_EQ(touched, 0);
    ASSERT_EQ(wv__sandbox_check(fn_fails, NULL, 100, "x.h5", &err),
              WV_FORMAT);
    ASSERT_STREQ(err.msg, "x.h5: bad superblock");
    wv__clearerr(&err);
    ASSERT_EQ(wv__sandbox_check(fn_crashes, NULL, 100, "x.h5", &err),
              WV_CORRUPT);
    ASSERT_CONTAINS(err.msg, "x.h5: malformed");
    ASSERT_CONTAINS(err.msg, "signal 6");
}

TEST_IMPL(sandbox_time_limits)
{
    struct wv__err err = {0};
    ASSERT_OK(setenv("WV_SANDBOX_SECONDS", "1", 1));
    int rc = wv__sandbox_check(fn_spins, NULL, 100, "spin.h5", &err);
    double t1 = mono();
    ASSERT_EQ(rc, WV_CORRUPT);
    ASSERT_CONTAINS(err.msg, "spin.h5: malformed");
    /* the CPU limit fired, not the wall-clock one (no bound on the wall
     * time here: a loaded machine gives the child less than a core) */
    ASSERT_CONTAINS(err.msg, "more than 1 s of CPU time");
    wv__clearerr(&err);
    /* Stuck without using CPU: the wall-clock limit (5 + 4 x CPU). */
    rc = wv__sandbox_check(fn_sleeps, NULL, 100, "stuck.h5", &err);
    double t2 = mono();
    ASSERT_OK(unsetenv("WV_SANDBOX_SECONDS"));
    ASSERT_EQ(rc, WV_CORRUPT);
    ASSERT_CONTAINS(err.msg, "stuck.h5: malformed: the parser did not "
                             "finish within 9 s");
    /* not before its time (a hang past it is the ctest timeout's) */
    ASSERT(t2 - t1 >= 8.5);
}

/* Stalls (blocks without using CPU) the first time: the marker file at
 * arg does not exist yet. */
static int fn_stalls_once(void *arg, struct wv__err *err)
{
    (void)err;
    int fd = open((const char *)arg, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return WV_OK; /* the second child */
    close(fd);
    for (;;)
        pause();
    return WV_OK;
}

/* A child that stops using CPU is killed early and the check retried (a
 * fork can copy a lock another thread held); two stalls refuse the file,
 * saying so (not the wall-clock limit, 245 s for this size). */
TEST_IMPL(sandbox_stall_retry)
{
    struct wv__err err = {0};
    const char *marker = wvtest_path("stalled-once");
    ASSERT_OK(setenv("WV_SANDBOX_STALL", "1", 1));
    ASSERT_EQ(wv__sandbox_check(fn_stalls_once, (void *)marker, 100,
                                "once.h5", &err),
              WV_OK);
    ASSERT_EQ(access(marker, F_OK), 0); /* the first child did stall */
    int rc = wv__sandbox_check(fn_sleeps, NULL, 100, "stuck.h5", &err);
    ASSERT_OK(unsetenv("WV_SANDBOX_STALL"));
    ASSERT_EQ(rc, WV_CORRUPT);
    ASSERT_CONTAINS(err.msg, "stuck.h5: malformed: the parser stopped "
                             "using CPU for 1 s in a sandbox process, twice");
}
