/*
 * num.c -- numbers in text we did not write: listing sizes, object tags,
 * environment settings. Strict, unlike strtoull: no sign, no leading
 * space, no base prefix, and overflow is an error rather than a clamp.
 */
#include "core.h"

static int digit(char c, int base)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (base == 16 && c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool wv__parse_u64(const char **s, int base, uint64_t *out)
{
    const char *p = *s;
    uint64_t v = 0;
    if (p == NULL || digit(*p, base) < 0)
        return false;
    for (int d; (d = digit(*p, base)) >= 0; p++)
        if (wv__mul_overflow(v, (uint64_t)base, &v) ||
            wv__add_overflow(v, (uint64_t)d, &v))
            return false;
    *out = v;
    *s = p;
    return true;
}

bool wv__parse_size(const char *s, uint64_t *out)
{
    uint64_t v;
    if (!wv__parse_u64(&s, 10, &v))
        return false;
    unsigned shift = 0;
    switch (*s) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    default: break;
    }
    if (shift) {
        s++;
        if (s[0] == 'i' && s[1] == 'B')
            s += 2;
        else if (s[0] == 'B')
            s++;
    }
    if (*s != '\0' || v > (UINT64_MAX >> shift))
        return false;
    *out = v << shift;
    return true;
}
