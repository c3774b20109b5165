/*
 * err.c -- status codes, their descriptions, and per-handle messages.
 *
 * The table is generated from WV_ERRNO_MAP so codes and strings cannot drift
 * apart. Messages follow one rule: lower case, no trailing period, what
 * failed first, the subject quoted. Control characters in them (from
 * names the message quotes) are escaped by wv_escape (esc.c).
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

const char *wv_strerror(int code)
{
    switch (wv_primary(code)) {
#define WV__ERR_CASE(name, val, msg) \
    case val:                        \
        return msg;
        WV_ERRNO_MAP(WV__ERR_CASE)
#undef WV__ERR_CASE
    default:
        return "unknown error";
    }
}

int wv_primary(int code)
{
    return code & 0xff;
}

int wv_version_number(void)
{
    return WV_VERSION_NUMBER;
}

const char *wv_version_string(void)
{
    return WV_VERSION_STRING;
}

int wv__seterr(struct wv__err *e, int code, const char *fmt, ...)
{
    if (e == NULL || e->code != WV_OK)
        return code;
    e->code = code;
    /* Messages embed names taken from files and repositories: escape
     * their control characters here, once, so no caller of the C API (or
     * the CLI, or Python) gets a raw ESC or newline in a message. */
    char raw[WV_ERRBUF_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    wv_escape(e->msg, sizeof e->msg, raw, strlen(raw), 0);
    return code;
}

void wv__clearerr(struct wv__err *e)
{
    e->code = WV_OK;
    e->msg[0] = '\0';
}
