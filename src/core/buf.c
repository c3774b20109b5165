/*
 * buf.c -- a growable byte buffer with a sticky out-of-memory flag, so code
 * that builds headers can append freely and check once.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

void wv__buf_add(struct wv__buf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *np = wv__realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void wv__buf_addc(struct wv__buf *b, char c)
{
    wv__buf_add(b, &c, 1);
}

void wv__buf_adds(struct wv__buf *b, const char *s)
{
    wv__buf_add(b, s, strlen(s));
}

void wv__buf_addf(struct wv__buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = true; /* only short fragments are formatted here */
        return;
    }
    wv__buf_add(b, tmp, (size_t)n);
}

void wv__buf_release(struct wv__buf *b)
{
    wv__free(b->p);
    memset(b, 0, sizeof *b);
}
