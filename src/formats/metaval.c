/*
 * metaval.c -- metadata values that may be binary.
 *
 * Formats whose string fields may hold any bytes (TensorFlow string tensors,
 * TF.js string weights, ONNX attributes) give them to metadata as the text
 * itself when it is UTF-8 without NUL and does not start with "base64:",
 * else as "base64:" and the standard base64 (RFC 4648, padded). A value is
 * written as plain text or as a JSON string (json.h).
 */
#include "core.h"
#include "fmt.h"
#include "json.h"

#include <string.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static bool meta_is_text(const void *p, size_t n)
{
    return memchr(p, '\0', n) == NULL && wv__utf8_valid(p, n) &&
           !(n >= 7 && memcmp(p, "base64:", 7) == 0);
}

static void buf_add_b64(struct wv__buf *b, const void *p, size_t n)
{
    const unsigned char *s = p;
    wv__buf_adds(b, "base64:");
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char q[4] = {b64_alphabet[(v >> 18) & 63],
                     b64_alphabet[(v >> 12) & 63],
                     i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=',
                     i + 2 < n ? b64_alphabet[v & 63] : '='};
        wv__buf_add(b, q, 4);
    }
}

void wv__buf_add_meta_value(struct wv__buf *b, const void *p, size_t n,
                            bool json, bool force_b64)
{
    if (!force_b64 && meta_is_text(p, n)) {
        if (json)
            wv__json_put_string(b, p, n);
        else
            wv__buf_add(b, p, n);
        return;
    }
    if (json)
        wv__buf_addc(b, '"');
    buf_add_b64(b, p, n);
    if (json)
        wv__buf_addc(b, '"');
}

static int b64_digit(char c)
{
    const char *p = c ? strchr(b64_alphabet, c) : NULL;
    return p ? (int)(p - b64_alphabet) : -1;
}

int wv__buf_add_unb64(struct wv__buf *b, const char *s, size_t n)
{
    if (n % 4)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        int q[4];
        for (int k = 0; k < 4; k++) {
            bool pad = s[i + k] == '=' && i + 4 == n && k >= 2;
            q[k] = pad ? 0 : b64_digit(s[i + k]);
        }
        if (q[0] < 0 || q[1] < 0 || q[2] < 0 || q[3] < 0)
            return -1;
        uint32_t x = (uint32_t)q[0] << 18 | (uint32_t)q[1] << 12 |
                     (uint32_t)q[2] << 6 | (uint32_t)q[3];
        unsigned char t[3] = {(unsigned char)(x >> 16),
                              (unsigned char)(x >> 8), (unsigned char)x};
        size_t keep = i + 4 == n ? 3 - (s[n - 1] == '=') - (s[n - 2] == '=')
                                 : 3;
        wv__buf_add(b, t, keep);
    }
    return 0;
}
