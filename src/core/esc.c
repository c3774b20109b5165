/*
 * esc.c -- the one escaper for text that came from a file or repository
 * (tensor names, keys, metadata, commit messages, ref names) and for the
 * error messages that embed such text. Control characters never reach a
 * terminal raw: C0 bytes and DEL, the C1 controls U+0080..U+009F and bytes
 * that are not valid UTF-8 become backslash escapes (\n, \t, \x1b, \xc2\x9b);
 * printable UTF-8 is kept as it is.
 *
 * Without WV_ESCAPE_QUOTE (messages) only those bytes change, so escaping
 * twice is escaping once. With it (names and values printed on their own)
 * the result is quoted as git quotes paths: a string with anything escaped,
 * or one that starts with '"', is wrapped in double quotes and its '"' and
 * '\' are escaped too, so the printed form reads back unambiguously.
 */
#include "core.h"

#include <string.h>

/* Length of the character at p (1..4) if it prints as it is, else 0: the
 * byte at p is escaped. */
static size_t plain_len(const unsigned char *p, size_t avail)
{
    if (p[0] < 0x20 || p[0] == 0x7f)
        return 0;
    if (p[0] < 0x80)
        return 1;
    size_t k = wv__utf8_seq(p, avail);
    if (k == 2 && p[0] == 0xc2 && p[1] < 0xa0) /* C1: U+0080..U+009F */
        return 0;
    return k;
}

static bool needs_quotes(const unsigned char *p, size_t n)
{
    if (n > 0 && p[0] == '"')
        return true;
    for (size_t i = 0; i < n;) {
        size_t k = plain_len(p + i, n - i);
        if (k == 0)
            return true;
        i += k;
    }
    return false;
}

/* The escape for one byte that does not print as it is. */
static size_t esc_byte(unsigned char c, char out[5])
{
    static const char named[] = "\aa\bb\tt\nn\vv\ff\rr";
    const char *q = c ? memchr(named, c, sizeof named - 1) : NULL;
    if (q != NULL && (q - named) % 2 == 0) {
        out[0] = '\\';
        out[1] = q[1];
        return 2;
    }
    static const char hex[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = 'x';
    out[2] = hex[c >> 4];
    out[3] = hex[c & 15];
    return 4;
}

size_t wv_escape(char *dst, size_t cap, const char *src, size_t n,
                 unsigned flags)
{
    const unsigned char *p = (const unsigned char *)src;
    bool quote = (flags & WV_ESCAPE_QUOTE) && needs_quotes(p, n);
    size_t need = 0; /* output length so far, written or not */
    bool full = false; /* stopped writing: the next piece did not fit */
    char piece[5];

#define EMIT(buf, len)                                                    \
    do {                                                                  \
        size_t l_ = (len);                                                \
        if (!full && cap > 0 && need + l_ < cap)                          \
            memcpy(dst + need, (buf), l_);                                \
        else                                                              \
            full = true;                                                  \
        if (!full)                                                        \
            dst[need + l_] = '\0';                                        \
        need += l_;                                                       \
    } while (0)

    if (cap > 0)
        dst[0] = '\0';
    if (quote)
        EMIT("\"", 1);
    for (size_t i = 0; i < n;) {
        size_t k = plain_len(p + i, n - i);
        if (k == 0) {
            EMIT(piece, esc_byte(p[i], piece));
            i++;
        } else if (quote && (p[i] == '"' || p[i] == '\\')) {
            piece[0] = '\\';
            piece[1] = (char)p[i];
            EMIT(piece, 2);
            i++;
        } else {
            EMIT(src + i, k);
            i += k;
        }
    }
    if (quote)
        EMIT("\"", 1);
#undef EMIT
    return need;
}
