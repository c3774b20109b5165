/*
 * runner.c -- runs the test named on the command line, or every test.
 */
#include "wvtest.h"
#include "wv_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_TESTS 1024

static struct {
    const char *name;
    wvtest_fn fn;
} tests[MAX_TESTS];
static int n_tests;
int wvtest_failed;
int wvtest_skipped;
static char tmpdir[256];
/* The first input of the running test that could not be read. */
static char missing[600];
static int missing_said;
static int missing_any;

void wvtest_register(const char *name, wvtest_fn fn)
{
    if (n_tests < MAX_TESTS) {
        tests[n_tests].name = name;
        tests[n_tests].fn = fn;
        n_tests++;
    }
}

const char *wvtest_tmpdir(void)
{
    if (tmpdir[0] == '\0') {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/wvtest-XXXXXX");
        if (mkdtemp(tmpdir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return tmpdir;
}

char *wvtest_path(const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", wvtest_tmpdir(), name);
    return p;
}

#ifndef WV_FIXTURES
#define WV_FIXTURES "."
#endif

const char *wvtest_fixtures(void)
{
    const char *e = getenv("WV_FIXTURES");
    return e && *e ? e : WV_FIXTURES;
}

const char *wvtest_input(const char *path)
{
    if (access(path, R_OK) != 0 && missing[0] == '\0')
        snprintf(missing, sizeof missing, "%s (%s)", path, strerror(errno));
    return path;
}

char *wvtest_fixture(const char *sub, const char *name)
{
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s/%s", wvtest_fixtures(), sub, name);
    wvtest_input(p);
    return p;
}

void wvtest_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (missing[0]) {
        /* what failed is the missing file: say that, once */
        if (!missing_said)
            fprintf(stderr, "%s:%d: missing input %s\n", file, line, missing);
        missing_said = 1;
    } else {
        fprintf(stderr, "%s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    wvtest_failed = 1;
}

void wvtest_fill_pattern(unsigned char *p, size_t n, wv_dtype dt,
                         unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(i * 131u + seed * 7u + (i >> 8));
    if (dt == WV_BOOL)
        for (size_t i = 0; i < n; i++)
            p[i] &= 1;
}

int wvtest_add_pattern(wv_model *m, const char *name, wv_dtype dt, int ndim,
                       const uint64_t *shape, unsigned seed)
{
    uint64_t numel, nbytes;
    if (wv__shape_bytes(dt, ndim, shape, &numel, &nbytes) != WV_OK ||
        nbytes > SIZE_MAX)
        return -1;
    unsigned char *p = wv_malloc(nbytes ? (size_t)nbytes : 1);
    if (p == NULL)
        return -1;
    wvtest_fill_pattern(p, (size_t)nbytes, dt, seed);
    return wv_model_add(m, name, dt, ndim, shape, p, (size_t)nbytes,
                        WV_DATA_TAKE);
}

static int rm_entry(const char *p, const struct stat *s, int flag,
                    struct FTW *f)
{
    (void)s;
    (void)flag;
    (void)f;
    return remove(p);
}

unsigned char *wvtest_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    if (p)
        *len = (size_t)n;
    return p;
}

int wvtest_write_file(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t w = fwrite(p, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

int wvtest_srv_start(int *fd, int *port, pthread_t *th,
                     void *(*main)(void *), void *arg)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(*fd, 64) != 0 ||
        getsockname(*fd, (struct sockaddr *)&a, &al) != 0)
        return -1;
    *port = ntohs(a.sin_port);
    return pthread_create(th, NULL, main, arg);
}

void wvtest_srv_stop(int fd, pthread_t th)
{
    shutdown(fd, SHUT_RDWR);
    close(fd);
    pthread_join(th, NULL);
}

void wvtest_send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static int run(int i)
{
    wvtest_failed = 0;
    wvtest_skipped = 0;
    tmpdir[0] = '\0';
    missing[0] = '\0';
    missing_said = 0;
    tests[i].fn();
    /* A missing input fails the test even where nothing asserted on it. */
    if (missing[0] && !missing_said) {
        fprintf(stderr, "%s: missing input %s\n", tests[i].name, missing);
        wvtest_failed = 1;
    }
    printf("%s %s\n",
           wvtest_failed ? "FAIL" : wvtest_skipped ? "skip" : "ok  ",
           tests[i].name);
    if (tmpdir[0] && !wvtest_failed)
        nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (missing[0])
        missing_any = 1;
    return wvtest_failed;
}

int main(int argc, char **argv)
{
    int failed = 0, found = 0;
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < n_tests; i++)
            printf("%s\n", tests[i].name);
        return 0;
    }
    for (int i = 0; i < n_tests; i++) {
        if (argc > 1 && strcmp(argv[1], tests[i].name) != 0)
            continue;
        found++;
        failed += run(i);
    }
    if (argc > 1 && found == 0) {
        fprintf(stderr, "no test named %s\n", argv[1]);
        return 2;
    }
    if (failed == 0 && found == 1 && argc > 1 && wvtest_skipped)
        return 77;
    /* A test stopped by a missing input leaves what it had allocated; the
     * one line naming the file says all there is (no leak report). */
    if (missing_any && found == 1) {
        fflush(NULL);
        _exit(1);
    }
    return failed ? 1 : 0;
}
