/*
 * html.c -- the web view's output buffer and its escaping: every string
 * from a repository goes through wb_text (controls escaped as the CLI
 * escapes them, then & < > " ' as entities) or wb_url (percent-encoded),
 * so a tensor named <script>alert(1)</script> is shown as text, never
 * parsed as markup. Also writing a finished page to a file atomically.
 */
#include "web.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void wb_put(struct wbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->cap - b->n < n + 1) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

void wb_puts(struct wbuf *b, const char *s)
{
    wb_put(b, s, strlen(s));
}

void wb_printf(struct wbuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        wb_put(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    wb_put(b, big, (size_t)n);
    free(big);
}

/* Entities for the five characters that mean something in HTML text and
 * quoted attributes; everything else (escaped printable UTF-8) as is. */
static void put_entities(struct wbuf *b, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        switch (s[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default: break;
        }
        if (e == NULL)
            continue;
        wb_put(b, s + run, i - run);
        wb_puts(b, e);
        run = i + 1;
    }
    wb_put(b, s + run, n - run);
}

void wb_textn(struct wbuf *b, const char *s, size_t n)
{
    char small[256];
    size_t len = strnlen(s, n);
    size_t need = wv_escape(NULL, 0, s, len, 0);
    char *t = need < sizeof small ? small : malloc(need + 1);
    if (t == NULL) {
        b->oom = true;
        return;
    }
    wv_escape(t, need + 1, s, len, 0);
    put_entities(b, t, need);
    if (t != small)
        free(t);
}

void wb_text(struct wbuf *b, const char *s)
{
    wb_textn(b, s, SIZE_MAX);
}

void wb_text_ml(struct wbuf *b, const char *s)
{
    while (*s) {
        size_t n = strcspn(s, "\n");
        wb_textn(b, s, n);
        if (s[n] == '\n')
            wb_puts(b, "\n");
        s += n + (s[n] == '\n');
    }
}

void wb_url(struct wbuf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            wb_put(b, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            wb_put(b, e, 3);
        }
    }
}

void wb_num(struct wbuf *b, double v)
{
    if (isnan(v))
        wb_puts(b, "nan");
    else if (isinf(v))
        wb_puts(b, v > 0 ? "inf" : "-inf");
    else
        wb_printf(b, "%.6g", v);
}

void wb_release(struct wbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

bool web_valid_ref(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 100 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                          c == '-'))
            return false;
    }
    return n > 0;
}

int web_write_file(const char *path, const struct wbuf *b)
{
    int rc = WV_OK, fd = -1;
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 48);
    const char *what = path;
    if (tmp == NULL || b->oom) {
        fprintf(stderr, "wv: %s: out of memory\n", cli_q(path));
        rc = WV_NOMEM;
        goto out;
    }
    /* a sibling no one else can have made or linked: O_EXCL|O_NOFOLLOW,
     * a fresh name per try */
    for (int i = 0; fd < 0 && i < 16; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(tmp, pl + 48, "%s.tmp-%ld-%lx", path, (long)getpid(),
                 (unsigned long)ts.tv_nsec ^ ((unsigned long)i << 20));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        fprintf(stderr, "wv: %s: %s\n", cli_q(path), strerror(errno));
        free(tmp);
        tmp = NULL;
        rc = WV_IO;
        goto out;
    }
    what = tmp;
    for (size_t off = 0; off < b->n;) {
        ssize_t w = write(fd, b->p + off, b->n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto io;
        off += (size_t)w;
    }
    if (fsync(fd) != 0)
        goto io;
    int e = close(fd);
    fd = -1;
    if (e != 0)
        goto io;
    what = path;
    if (rename(tmp, path) != 0)
        goto io;
    free(tmp);
    tmp = NULL;
    /* the rename itself durable: fsync the directory */
    {
        const char *sl = strrchr(path, '/');
        char *dir = sl ? strndup(path, sl == path ? 1 : (size_t)(sl - path))
                       : strdup(".");
        int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
        bool ok = dfd >= 0 && fsync(dfd) == 0;
        if (dfd >= 0)
            close(dfd);
        free(dir);
        if (!ok)
            goto io;
    }
    goto out;
io:
    fprintf(stderr, "wv: %s: %s\n", cli_q(what), strerror(errno));
    rc = WV_IO;
out:
    if (fd >= 0)
        close(fd);
    if (tmp)
        unlink(tmp);
    free(tmp);
    return rc;
}
