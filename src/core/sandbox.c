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
 * The child writes its status and message into a pipe and leaves with
 * _exit, so no atexit handler, buffered stdio or leak check of the caller
 * runs twice. Its stderr goes to /dev/null: a sanitizer report from the
 * child would otherwise interleave with the caller's output. Setting
 * WV_SANDBOX=0 in the environment skips the child (for debugging).
 */
#include "wv_int.h"

#include <signal.h>
#include <sys/wait.h>

/* Sanitizer runtimes (if linked) let a death callback replace theirs: the
 * child uses it to leave quietly instead of, under libFuzzer, saving the
 * input as a crash of the fuzzed process. */
extern void __sanitizer_set_death_callback(void (*cb)(void))
    __attribute__((weak));

static void child_death(void)
{
    _exit(97);
}

struct report {
    int rc;
    char msg[WV_ERRBUF_SIZE];
};

int wv__sandbox_check(int (*fn)(void *arg, struct wv__err *err), void *arg,
                      const char *what, struct wv__err *err)
{
    const char *env = getenv("WV_SANDBOX");
    if (env && strcmp(env, "0") == 0)
        return WV_OK;
    int fds[2];
    if (pipe(fds) != 0)
        return wv__seterr(err, WV_IO, "%s: pipe failed: %s", what,
                          strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return wv__seterr(err, WV_IO, "%s: fork failed: %s", what,
                          strerror(e));
    }
    if (pid == 0) {
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
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
    while (got < sizeof r) {
        ssize_t n = read(fds[0], (char *)&r + got, sizeof r - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
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
