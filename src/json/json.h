/*
 * json.h -- the JSON layer (json.c): a bounded pull cursor over JSON text
 * and the writer of JSON strings, used by the format readers and writers
 * (formats/) and by the repository for its own objects (repo/).
 *
 * Nothing here knows about tensors, formats or repositories.
 */
#ifndef WV_JSON_H
#define WV_JSON_H

#include "core.h"

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
/* The fields of an object, in order, for a caller that has just consumed
 * its '{' (and worded its own message if it was missing):
 *
 *     struct wv__json_obj it = WV__JSON_OBJ(j);
 *     char *k = NULL;  (freed at the function's exit)
 *     size_t kl;
 *     while (wv__json_obj_next(&it, &k, &kl)) {
 *         ... k names the field, the cursor is at its value: consume it
 *         (or wv__json_skip) ...
 *     }
 *     WV_TRY(it.rc);
 *
 * Each call frees the previous key in *key (a caller that keeps one sets
 * *key = NULL first), reads the next key and its ':', and returns true; at
 * the closing '}' (consumed) or on malformed text it leaves *key NULL and
 * returns false, with the status in it.rc. An empty object has no fields. */
struct wv__json_obj {
    struct wv__json *j;
    bool started; /* wv__json_obj_next() has been called               */
    int rc;       /* WV_OK, or why the walk stopped                      */
};
#define WV__JSON_OBJ(j) {(j), false, WV_OK}
bool wv__json_obj_next(struct wv__json_obj *it, char **key, size_t *len);
/* Append s as a JSON string the way serde_json writes it. */
void wv__json_put_string(struct wv__buf *b, const char *s, size_t n);

#endif /* WV_JSON_H */
