/*
 * t_esc.c -- wv_escape (esc.c), the escaper for names and messages, and
 * the library's error messages built with it (no raw control character
 * reaches a caller of the C API).
 */
#include "wv_int.h"
#include "wvtest.h"

#include <string.h>

static const char *esc(const char *s, unsigned flags)
{
    static char buf[512];
    size_t need = wv_escape(buf, sizeof buf, s, strlen(s), flags);
    return need < sizeof buf ? buf : "(too long)";
}

static bool has_control(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 &&
                                        p[1] < 0xa0))
            return true;
    return false;
}

TEST_IMPL(esc_plain_and_controls)
{
    /* printable ASCII and UTF-8 stay as they are, quoted or not */
    ASSERT_STREQ(esc("layer.0.weight", 0), "layer.0.weight");
    ASSERT_STREQ(esc("layer.0.weight", WV_ESCAPE_QUOTE), "layer.0.weight");
    ASSERT_STREQ(esc("h\xc3\xa9llo \xe4\xb8\x96 \xf0\x9f\x98\x80",
                     WV_ESCAPE_QUOTE),
                 "h\xc3\xa9llo \xe4\xb8\x96 \xf0\x9f\x98\x80");
    ASSERT_STREQ(esc("a\"b\\c", WV_ESCAPE_QUOTE), "a\"b\\c");
    /* C0: named escapes where C has them, \xNN otherwise */
    ASSERT_STREQ(esc("a\x1b[31mb\a\n\r\t\b\f\v", 0),
                 "a\\x1b[31mb\\a\\n\\r\\t\\b\\f\\v");
    ASSERT_STREQ(esc("\x01\x1f\x7f", 0), "\\x01\\x1f\\x7f");
    /* C1 controls in UTF-8 (U+0080..U+009F), but not U+00A0 */
    ASSERT_STREQ(esc("x\xc2\x9b" "1m\xc2\x80\xc2\xa0", 0),
                 "x\\xc2\\x9b1m\\xc2\\x80\xc2\xa0");
    /* bytes that are not UTF-8: lone continuation, truncated, overlong,
     * surrogate */
    ASSERT_STREQ(esc("\x80" "a\xe4\xb8" "b\xc0\xaf\xed\xa0\x80", 0),
                 "\\x80a\\xe4\\xb8b\\xc0\\xaf\\xed\\xa0\\x80");
}

TEST_IMPL(esc_quote_as_git)
{
    ASSERT_STREQ(esc("a\nb", WV_ESCAPE_QUOTE), "\"a\\nb\"");
    /* once quoted, '"' and '\' are escaped too */
    ASSERT_STREQ(esc("\"x\\\x1b", WV_ESCAPE_QUOTE), "\"\\\"x\\\\\\x1b\"");
    /* a leading '"' alone quotes, so "..." always means escaped text */
    ASSERT_STREQ(esc("\"a\"", WV_ESCAPE_QUOTE), "\"\\\"a\\\"\"");
    ASSERT_STREQ(esc("", WV_ESCAPE_QUOTE), "");
    /* without quotes, escaping is idempotent (messages escaped twice) */
    const char *once = esc("m\x1b[2J\\x1b\n", 0);
    char copy[512];
    snprintf(copy, sizeof copy, "%s", once);
    ASSERT_STREQ(esc(copy, 0), copy);
}

TEST_IMPL(esc_lengths_and_truncation)
{
    const char *s = "ab\x1b" "cd";
    char buf[16];
    /* the whole length, as snprintf; NULL and 0 measure only */
    ASSERT_EQ(wv_escape(NULL, 0, s, strlen(s), 0), 8);
    ASSERT_EQ(wv_escape(NULL, 0, s, strlen(s), WV_ESCAPE_QUOTE), 10);
    /* embedded NUL when n says so */
    ASSERT_EQ(wv_escape(buf, sizeof buf, "a\0b", 3, 0), 6);
    ASSERT_STREQ(buf, "a\\x00b");
    /* never half an escape, never half a character; always terminated */
    memset(buf, 'z', sizeof buf);
    ASSERT_EQ(wv_escape(buf, 5, s, strlen(s), 0), 8);
    ASSERT_STREQ(buf, "ab");
    memset(buf, 'z', sizeof buf);
    ASSERT_EQ(wv_escape(buf, 4, "a\xe4\xb8\x96", 4, 0), 4);
    ASSERT_STREQ(buf, "a");
    memset(buf, 'z', sizeof buf);
    ASSERT_EQ(wv_escape(buf, 1, s, strlen(s), 0), 8);
    ASSERT_STREQ(buf, "");
}

TEST_IMPL(esc_error_messages)
{
    /* wv__seterr escapes what it formats */
    struct wv__err e;
    wv__clearerr(&e);
    wv__seterr(&e, WV_CORRUPT, "member '%s': bad", "x\nwv: fake\x1b[31m");
    ASSERT_STREQ(e.msg, "member 'x\\nwv: fake\\x1b[31m': bad");
    /* a long name: the message is cut, still without a raw byte */
    char name[400];
    for (size_t i = 0; i < sizeof name - 1; i++)
        name[i] = i % 3 ? 'a' : '\x1b';
    name[sizeof name - 1] = '\0';
    wv__clearerr(&e);
    wv__seterr(&e, WV_CORRUPT, "tensor '%s'", name);
    ASSERT(!has_control(e.msg));
    ASSERT(strlen(e.msg) < sizeof e.msg);
    /* through the public API: a path with a newline and ESC */
    char errbuf[WV_ERRBUF_SIZE] = "";
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    o.errbuf = errbuf;
    o.errbuf_size = sizeof errbuf;
    wv_model *m = NULL;
    ASSERT(wv_model_load("/nonexistent/a\nwv: \x1b[31mb.safetensors", &o,
                         &m) != WV_OK);
    ASSERT(errbuf[0] != '\0');
    ASSERT(!has_control(errbuf));
    ASSERT_CONTAINS(errbuf, "a\\nwv: \\x1b[31mb.safetensors");
}
