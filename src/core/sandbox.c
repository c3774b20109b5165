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

/* CPU seconds the child may use on `size` bytes of input. */
static unsigned cpu_budget(uint64_t size)
{
    const char *env = getenv("WV_SANDBOX_SECONDS");
    uint64_t v;
    if (env && wv__parse_u64(&env, 10, &v) && *env == '\0' && v >= 1 &&
        v <= 86400)
        return (unsigned)v;
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

int wv__sandbox_check(int (*fn)(void *arg, struct wv__err *err), void *arg,
                      uint64_t size, const char *what, struct wv__err *err)
{
    const char *env = getenv("WV_SANDBOX");
    if (env && strcmp(env, "0") == 0)
        return WV_OK;
    unsigned cpu = cpu_budget(size);
    double wall = 5.0 + 4.0 * cpu;
    int fds[2];
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
        struct report r;
        memset(&r, 0, sizeof r);
        r.rc = fn(arg, &ce);
        memcpy(r.msg, ce.msg, sizeof r.msg);
        ssize_t w = write(fds[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r ? 0 : 98);
    }
    close(fds[1]);
    struct report r;
    size_t got = 0;
    bool late = false;
    double deadline = now_s() + wall;
    while (got < sizeof r) {
        double left = deadline - now_s();
        if (left <= 0) {
            late = true;
            break;
        }
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int pr = poll(&pfd, 1, left > 3600 ? 3600000 : (int)(left * 1000) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            break;
        if (pr == 0)
            continue;
        ssize_t n = read(fds[0], (char *)&r + got, sizeof r - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    if (late)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (late)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: malformed: the parser did not finish within "
                          "%.0f s in a sandbox process",
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
