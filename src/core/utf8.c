/*
 * utf8.c -- UTF-8 validation with the same acceptance as Rust's
 * str::from_utf8: no overlong forms, no surrogates, nothing past U+10FFFF.
 */
#include "core.h"

size_t wv__utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    size_t len;
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        len = 2;
    else if ((c & 0xf0) == 0xe0)
        len = 3;
    else if ((c & 0xf8) == 0xf0)
        len = 4;
    else
        return 0;
    if (avail < len)
        return 0;
    uint32_t cp = c & (0x7fu >> len);
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool wv__utf8_valid(const void *s, size_t n)
{
    const unsigned char *p = s;
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = wv__utf8_seq(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* Names that containers map to paths (zip members, npz keys): refuse what
 * could climb out of, or confuse, a directory an extractor writes into. */
const char *wv__path_name_bad(const char *name, size_t len)
{
    if (len == 0)
        return "empty name";
    if (name[0] == '/')
        return "absolute path: leading '/'";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '\0')
            return "a NUL byte";
        if (c < 0x20 || c == 0x7f)
            return "a control character";
        if (c == '\\')
            return "a backslash";
    }
    for (size_t i = 0; i < len;) {
        size_t k = i;
        while (k < len && name[k] != '/')
            k++;
        if (k - i == 2 && name[i] == '.' && name[i + 1] == '.')
            return "a '..' component";
        i = k + 1;
    }
    return NULL;
}

void wv__esc_name(const char *name, size_t len, char *out, size_t cap)
{
    /* one escaper for every message and printed name (esc.c) */
    if (cap > 0)
        wv_escape(out, cap, name, len, 0);
}
