/*
 * json.h -- the JSON layer (json.c): a bounded pull cursor over JSON text
 * and the writer of JSON strings, used by the format readers and writers
 * (formats/) and by the repository for its own objects (repo/).
 *
 * Nothing here knows about tensors, formats or repositories.
 */
#ifndef WV_JSON_H
#define WV_JSON_H

#include "wv_int.h"

/* ---- JSON --------------------------------------------------------------- */
/* A bounded cursor over JSON text: no document tree is built, the caller
 * pulls values in the order it expects them. Errors name the byte offset. */
struct wv__json {
    const char *start, *p, *end;
    const char *what; /* "header of 'x.safetensors'" for messages */
    struct wv__err *err;
};
void wv__json_ws(struct wv__json *j);
/* After whitespace: is the next character c? Consumes it if so. */
bool wv__json_eat(struct wv__json *j, char c);
int wv__json_expect(struct wv__json *j, char c);
/* A string, unescaped to UTF-8 (NUL bytes allowed, so *len counts). The
 * result is wv__malloc()ed. */
int wv__json_string(struct wv__json *j, char **out, size_t *len);
/* A non-negative integer without sign, fraction or exponent. */
int wv__json_u64(struct wv__json *j, uint64_t *out);
/* Skip any value (nesting bounded). */
int wv__json_skip(struct wv__json *j);
/* Append s as a JSON string the way serde_json writes it. */
void wv__json_put_string(struct wv__buf *b, const char *s, size_t n);

#endif /* WV_JSON_H */
