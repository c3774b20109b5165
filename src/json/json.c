/*
 * json.c -- a pull cursor over JSON text and a writer for JSON strings.
 *
 * The reader never builds a tree: callers ask for the value they expect
 * next, so memory stays proportional to what they keep. It is strict RFC
 * 8259: no comments, no trailing commas, no leading zeros, strings must be
 * valid UTF-8 and escapes must not produce lone surrogates. Nesting in
 * skipped values is bounded (WV__JSON_MAX_DEPTH) so hostile input cannot
 * exhaust the stack.
 *
 * wv__json_obj_next() walks the fields of an object, so callers do not
 * each write the loop over keys, ':' and ','.
 *
 * The writer escapes as serde_json does (", \, and control characters as
 * \b \t \n \f \r or \u00xx; everything else verbatim), because the
 * safetensors writer must reproduce the Rust reference byte for byte.
 */
#include "core.h"
#include "json.h"

#include <string.h>

#define WV__JSON_MAX_DEPTH 128

static int jerr(struct wv__json *j, const char *what)
{
    return wv__seterr(j->err, WV_CORRUPT, "%s is not valid JSON: %s at byte %zu",
                      j->what, what, (size_t)(j->p - j->start));
}

void wv__json_ws(struct wv__json *j)
{
    while (j->p < j->end &&
           (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

bool wv__json_eat(struct wv__json *j, char c)
{
    wv__json_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

int wv__json_expect(struct wv__json *j, char c)
{
    if (wv__json_eat(j, c))
        return WV_OK;
    char msg[32];
    if (j->p >= j->end)
        return jerr(j, "unexpected end");
    memcpy(msg, "expected ' '", 13);
    msg[10] = c;
    return jerr(j, msg);
}

static int hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void put_utf8(struct wv__buf *b, uint32_t cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    wv__buf_add(b, u, n);
}

static int string_impl(struct wv__json *j, struct wv__buf *b)
{
    if (!wv__json_eat(j, '"'))
        return j->p >= j->end ? jerr(j, "unexpected end")
                              : jerr(j, "expected a string");
    for (;;) {
        if (j->p >= j->end)
            return jerr(j, "unterminated string");
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            return WV_OK;
        }
        if (c < 0x20)
            return jerr(j, "control character in string");
        if (c == '\\') {
            if (j->end - j->p < 2)
                return jerr(j, "unterminated escape");
            char e = j->p[1];
            j->p += 2;
            const char *simple = strchr("\"\\/bfnrt", e);
            if (e != '\0' && simple != NULL) {
                static const char repl[] = "\"\\/\b\f\n\r\t";
                if (b)
                    wv__buf_addc(b, repl[simple - "\"\\/bfnrt"]);
                continue;
            }
            if (e != 'u')
                return jerr(j, "invalid escape");
            uint32_t cp, lo;
            if (j->end - j->p < 4 || hex4(j->p, &cp) != 0)
                return jerr(j, "invalid \\u escape");
            j->p += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return jerr(j, "lone low surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                    hex4(j->p + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
                    return jerr(j, "lone high surrogate in \\u escape");
                j->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (b)
                put_utf8(b, cp);
            continue;
        }
        size_t n = wv__utf8_seq((const unsigned char *)j->p,
                                (size_t)(j->end - j->p));
        if (n == 0)
            return jerr(j, "invalid UTF-8 in string");
        if (b)
            wv__buf_add(b, j->p, n);
        j->p += n;
    }
}

int wv__json_string(struct wv__json *j, char **out, size_t *len)
{
    struct wv__buf b = {0};
    *out = NULL;
    *len = 0;
    int rc = string_impl(j, &b);
    if (rc == WV_OK && b.oom)
        rc = wv__seterr(j->err, WV_NOMEM, "out of memory parsing %s", j->what);
    if (rc == WV_OK && b.p == NULL) {
        b.p = wv__strdup("");
        if (b.p == NULL)
            rc = wv__seterr(j->err, WV_NOMEM, "out of memory");
    }
    if (rc != WV_OK) {
        wv__buf_release(&b);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return WV_OK;
}

int wv__json_u64(struct wv__json *j, uint64_t *out)
{
    wv__json_ws(j);
    const char *p = j->p;
    uint64_t v = 0;
    if (p >= j->end || *p < '0' || *p > '9')
        return jerr(j, "expected a non-negative integer");
    if (*p == '0' && p + 1 < j->end && p[1] >= '0' && p[1] <= '9')
        return jerr(j, "leading zero in number");
    while (p < j->end && *p >= '0' && *p <= '9') {
        if (wv__mul_overflow(v, 10, &v) ||
            wv__add_overflow(v, (uint64_t)(*p - '0'), &v))
            return jerr(j, "integer does not fit in 64 bits");
        p++;
    }
    if (p < j->end && (*p == '.' || *p == 'e' || *p == 'E'))
        return jerr(j, "expected an integer, found a fraction or exponent");
    j->p = p;
    *out = v;
    return WV_OK;
}

static int skip_number(struct wv__json *j)
{
    const char *p = j->p;
    if (p < j->end && *p == '-')
        p++;
    if (p >= j->end || *p < '0' || *p > '9')
        return jerr(j, "invalid value");
    if (*p == '0')
        p++;
    else
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
    if (p < j->end && *p == '.') {
        p++;
        if (p >= j->end || *p < '0' || *p > '9')
            return jerr(j, "invalid number");
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < j->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < j->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= j->end || *p < '0' || *p > '9')
            return jerr(j, "invalid number");
        while (p < j->end && *p >= '0' && *p <= '9')
            p++;
    }
    j->p = p;
    return WV_OK;
}

static int skip_depth(struct wv__json *j, int depth)
{
    int rc;
    if (depth > WV__JSON_MAX_DEPTH)
        return jerr(j, "nesting too deep");
    wv__json_ws(j);
    if (j->p >= j->end)
        return jerr(j, "unexpected end");
    char c = *j->p;
    if (c == '"')
        return string_impl(j, NULL);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->p++;
        if (wv__json_eat(j, close))
            return WV_OK;
        do {
            if (c == '{') {
                if ((rc = string_impl(j, NULL)) != WV_OK ||
                    (rc = wv__json_expect(j, ':')) != WV_OK)
                    return rc;
            }
            if ((rc = skip_depth(j, depth + 1)) != WV_OK)
                return rc;
        } while (wv__json_eat(j, ','));
        return wv__json_expect(j, close);
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);
        if ((size_t)(j->end - j->p) >= n && memcmp(j->p, words[i], n) == 0) {
            j->p += n;
            return WV_OK;
        }
    }
    return skip_number(j);
}

int wv__json_skip(struct wv__json *j)
{
    return skip_depth(j, 0);
}

bool wv__json_obj_next(struct wv__json_obj *it, char **key, size_t *len)
{
    struct wv__json *j = it->j;
    wv__free(*key);
    *key = NULL;
    *len = 0;
    if (it->rc != WV_OK)
        return false;
    if (!it->started) {
        it->started = true;
        if (wv__json_eat(j, '}'))
            return false;
    } else if (!wv__json_eat(j, ',')) {
        it->rc = wv__json_expect(j, '}');
        return false;
    }
    if ((it->rc = wv__json_string(j, key, len)) != WV_OK ||
        (it->rc = wv__json_expect(j, ':')) != WV_OK) {
        wv__free(*key);
        *key = NULL;
        return false;
    }
    return true;
}

void wv__json_put_string(struct wv__buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    wv__buf_addc(b, '"');
    size_t run = 0; /* bytes since the last escape, appended in one go */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[6];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
                u[4] = hex[c >> 4]; u[5] = hex[c & 15];
            }
        }
        if (esc == NULL && c >= 0x20) {
            run++;
            continue;
        }
        wv__buf_add(b, s + i - run, run);
        run = 0;
        if (esc)
            wv__buf_adds(b, esc);
        else
            wv__buf_add(b, u, 6);
    }
    wv__buf_add(b, s + n - run, run);
    wv__buf_addc(b, '"');
}
