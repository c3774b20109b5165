/*
 * t_num.c -- the strict number parsers for text from outside (num.c).
 */
#include "wv_int.h"
#include "wvtest.h"

static bool u64(const char *s, int base, uint64_t *v, const char **rest)
{
    bool ok = wv__parse_u64(&s, base, v);
    *rest = s;
    return ok;
}

TEST_IMPL(num_parse_u64)
{
    uint64_t v = 7;
    const char *rest;
    ASSERT(u64("0", 10, &v, &rest) && v == 0 && *rest == '\0');
    ASSERT(u64("18446744073709551615", 10, &v, &rest) && v == UINT64_MAX);
    ASSERT(u64("ffffffffffffffff", 16, &v, &rest) && v == UINT64_MAX);
    ASSERT(u64("12 34", 10, &v, &rest) && v == 12 && strcmp(rest, " 34") == 0);
    ASSERT(u64("1a", 10, &v, &rest) && v == 1 && strcmp(rest, "a") == 0);
    ASSERT(u64("1a", 16, &v, &rest) && v == 0x1a && *rest == '\0');
    v = 7;
    rest = NULL;
    ASSERT(!u64("18446744073709551616", 10, &v, &rest)); /* 2^64 */
    ASSERT(!u64("10000000000000000", 16, &v, &rest));
    ASSERT(!u64("", 10, &v, &rest));
    ASSERT(!u64("-1", 10, &v, &rest));
    ASSERT(!u64("+1", 10, &v, &rest));
    ASSERT(!u64(" 1", 10, &v, &rest));
    ASSERT(!u64("A", 16, &v, &rest)); /* tags are written in lower case */
    ASSERT(!u64("0x10", 16, &v, &rest) || v == 0); /* "0" then "x10" */
    ASSERT_EQ(v, 0);
}

TEST_IMPL(num_parse_size)
{
    uint64_t v = 0;
    ASSERT(wv__parse_size("4096", &v) && v == 4096);
    ASSERT(wv__parse_size("64k", &v) && v == 64u << 10);
    ASSERT(wv__parse_size("8M", &v) && v == 8u << 20);
    ASSERT(wv__parse_size("8MB", &v) && v == 8u << 20);
    ASSERT(wv__parse_size("2GiB", &v) && v == 2ull << 30);
    ASSERT(wv__parse_size("17179869183G", &v) && v == 17179869183ull << 30);
    ASSERT(!wv__parse_size("17179869184G", &v)); /* 2^64 */
    ASSERT(!wv__parse_size("", &v));
    ASSERT(!wv__parse_size("M", &v));
    ASSERT(!wv__parse_size("5T", &v));
    ASSERT(!wv__parse_size("5 M", &v));
    ASSERT(!wv__parse_size("5MiBs", &v));
    ASSERT(!wv__parse_size("-5", &v));
}
