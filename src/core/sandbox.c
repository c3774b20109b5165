/*
 * sandbox.c -- run a parser of hostile input in a child process first.
 *
 * Some third-party parsers we rely on (libhdf5) are not hardened against
 * malicious files: a crafted file can make them read or write out of
 * bounds. Our promise is that bad input gets a clear error, never a crash,
 * so before such a parser touches a file in the caller's process, the same
 * parse runs in a forked child. Parsers are deterministic: if the child
 * finishes, the parent's identical run will too; if the child dies (signal,
 * sanitizer abort, unexpected exit status) the parent refuses the file
 * with one line and never runs the parser on it.
 *
 * The child is also bounded in time: a file crafted to make the parser
 * spin gets a CPU-time limit (RLIMIT_CPU, scaled with the input size: an
 * honest file is parsed at hundreds of MB per CPU-second, so the limit is
 * far above that), and the parent stops waiting after a wall-clock limit
 * (a child stuck without using CPU) and kills it. The child also dies with
 * its parent (PR_SET_PDEATHSIG), so an interrupted caller leaves nothing
 * running. WV_SANDBOX_SECONDS=N sets the CPU limit to N seconds.
 *
 * A child that uses no CPU at all for 10 s (WV_SANDBOX_STALL=N) is not
 * parsing but blocked: fork copies every lock of the caller's process,
 * and one another thread held at that moment (a sanitizer runtime's
 * allocator lock, seen under ASan) is never released in the child. Such
 * a child is killed and the check runs once more; a second stall refuses
 * the file.
 *
 * The child writes its status and message into a pipe and leaves with
 * _exit, so no atexit handler, buffered stdio or leak check of the caller
 * runs twice. Its stderr goes to /dev/null: a sanitizer report from the
 * child would otherwise interleave with the caller's output. Setting
 * WV_SANDBOX=0 in the environment skips the child (for debugging).
 */
#include "core.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

/* Sanitizer runtimes (if linked) let a death callback replace theirs: the
 * child uses it to leave quietly instead of, under libFuzzer, saving the
 * input as a crash of the fuzzed process. */
extern void __sanitizer_set_death_callback(void (*cb)(void))
    __attribute__((weak));

static void child_death(void)
{
    _exit(97);
}

/* Seconds (1..86400) from environment variable `name`, or 0. */
static unsigned env_seconds(const char *name)
{
    const char *env = getenv(name);
    uint64_t v;
    if (env && wv__parse_u64(&env, 10, &v) && *env == '\0' && v >= 1 &&
        v <= 86400)
        return (unsigned)v;
    return 0;
}

/* CPU seconds the child may use on `size` bytes of input. */
static unsigned cpu_budget(uint64_t size)
{
    unsigned v = env_seconds("WV_SANDBOX_SECONDS");
    if (v != 0)
        return v;
    uint64_t s = 60 + size / (16u << 20);
    return s > 86400 ? 86400 : (unsigned)s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct report {
    int rc;
    char msg[WV_ERRBUF_SIZE];
};

/* Seconds a child may go without using any CPU before it counts as
 * stuck (WV_SANDBOX_STALL=N). */
static unsigned stall_limit(void)
{
    unsigned v = env_seconds("WV_SANDBOX_STALL");
    return v != 0 ? v : 10;
}

/* CPU clock ticks (user + system) process pid has used, from
 * /proc/PID/stat (fields 14 and 15); -1 when unknown. */
static long long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold anything */
    if (p == NULL)
        return -1;
    p++;
    uint64_t v[2];
    for (int field = 3; field <= 15; field++) {
        while (*p == ' ')
            p++;
        if (field >= 14) {
            if (!wv__parse_u64(&p, 10, &v[field - 14]))
                return -1;
        } else {
            while (*p != ' ' && *p != '\0')
                p++;
        }
    }
    return (long long)(v[0] + v[1]);
}

enum run_end { RUN_DONE, RUN_LATE, RUN_STALLED };

/* One child: fork, run fn in it, wait for its report. RUN_DONE: *r, *got
 * and *status say how it ended; RUN_LATE: past the wall-clock limit;
 * RUN_STALLED: no CPU used for `stall` seconds (killed and reaped in both
 * cases). WV_IO when the child cannot be made. */
static int run_child(int (*fn)(void *arg, struct wv__err *err), void *arg,
                     unsigned cpu, double wall, unsigned stall,
                     const char *what, struct report *r, size_t *got,
                     int *status, enum run_end *end, struct wv__err *err)
{
    int fds[2];
    *got = 0;
    *status = 0;
    *end = RUN_DONE;
    if (pipe(fds) != 0)
        return wv__seterr(err, WV_IO, "%s: pipe failed: %s", what,
                          strerror(errno));
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return wv__seterr(err, WV_IO, "%s: fork failed: %s", what,
                          strerror(e));
    }
    if (pid == 0) {
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT,
                                   SIGFPE,  SIGILL, SIGXCPU};
        struct rlimit rl = {(rlim_t)cpu, (rlim_t)cpu + 1};
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* it died before the line above */
            _exit(99);
        (void)setrlimit(RLIMIT_CPU, &rl);
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        if (__sanitizer_set_death_callback)
            __sanitizer_set_death_callback(child_death);
        int dn = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (dn >= 0)
            dup2(dn, 2);
        close(fds[0]);
        struct wv__err ce = {0};
        struct report cr;
        memset(&cr, 0, sizeof cr);
        cr.rc = fn(arg, &ce);
        memcpy(cr.msg, ce.msg, sizeof cr.msg);
        ssize_t w = write(fds[1], &cr, sizeof cr);
        _exit(w == (ssize_t)sizeof cr ? 0 : 98);
    }
    close(fds[1]);
    double start = now_s(), deadline = start + wall, idle_since = start;
    long long ticks = cpu_ticks(pid);
    while (*got < sizeof *r) {
        double t = now_s(), left = deadline - t;
        if (left <= 0) {
            *end = RUN_LATE;
            break;
        }
        /* a child that uses no CPU at all is blocked, not parsing (the
         * parse reads an image in memory): a lock another thread held at
         * the fork, say */
        long long tk = cpu_ticks(pid);
        if (tk < 0 || tk != ticks) {
            ticks = tk;
            idle_since = t;
        } else if (t - idle_since >= (double)stall) {
            *end = RUN_STALLED;
            break;
        }
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int pr = poll(&pfd, 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            break;
        if (pr == 0)
            continue;
        ssize_t n = read(fds[0], (char *)r + *got, sizeof *r - *got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        *got += (size_t)n;
    }
    close(fds[0]);
    if (*end != RUN_DONE)
        kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return WV_OK;
}

int wv__sandbox_check(int (*fn)(void *arg, struct wv__err *err), void *arg,
                      uint64_t size, const char *what, struct wv__err *err)
{
    const char *env = getenv("WV_SANDBOX");
    if (env && strcmp(env, "0") == 0)
        return WV_OK;
    unsigned cpu = cpu_budget(size), stall = stall_limit();
    double wall = 5.0 + 4.0 * cpu;
    struct report r;
    size_t got = 0;
    int status = 0, rc = WV_OK;
    enum run_end end = RUN_DONE;
    /* A stalled child is tried once more: a fork in a process with other
     * threads can copy a lock one of them held (in the allocator of a
     * sanitizer runtime, say), which the child then waits on forever. */
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = run_child(fn, arg, cpu, wall, stall, what, &r, &got, &status,
                       &end, err);
        if (rc != WV_OK)
            return rc;
        if (end != RUN_STALLED)
            break;
    }
    if (end == RUN_STALLED)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: malformed: the parser stopped using CPU for "
                          "%u s in a sandbox process, twice",
                          what, stall);
    if (end == RUN_LATE)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: malformed: the parser did not "
                          "finish within %.0f s in a sandbox process",
                          what, wall);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: malformed: the parser used more than %u s of "
                          "CPU time in a sandbox process (a file crafted to "
                          "make it spin?); WV_SANDBOX_SECONDS raises the "
                          "limit",
                          what, cpu);
    if (got != sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: malformed: the parser failed on it in a "
                          "sandbox process (%s %d)",
                          what,
                          WIFSIGNALED(status) ? "signal" : "exit status",
                          WIFSIGNALED(status) ? WTERMSIG(status)
                                              : WEXITSTATUS(status));
    if (r.rc != WV_OK) {
        r.msg[sizeof r.msg - 1] = '\0';
        return wv__seterr(err, r.rc, "%s", r.msg);
    }
    return WV_OK;
}
