/*
 * t_json.c -- the JSON layer (src/json/json.c): the object-field iterator
 * every parser of JSON objects uses, on good, empty and malformed objects.
 */
#include "json.h"
#include "wvtest.h"

/* Walk the object `text` (whose '{' the iterator expects consumed): the
 * keys, each followed by its value skipped, joined by ',' into out. The
 * iterator's status is returned. */
static int walk(const char *text, char *out, size_t cap, struct wv__err *e)
{
    struct wv__json j = {text, text, text + strlen(text), "test", e};
    char *k = NULL;
    size_t kl;
    out[0] = '\0';
    if (!wv__json_eat(&j, '{'))
        return -1;
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (out[0])
            strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, k, cap - strlen(out) - 1);
        if (wv__json_skip(&j) != WV_OK) {
            wv__free(k);
            return e->code;
        }
    }
    if (k != NULL) /* the iterator leaves no key behind */
        return -2;
    if (it.rc == WV_OK) {
        wv__json_ws(&j);
        if (j.p != j.end)
            return -3;
    }
    return it.rc;
}

TEST_IMPL(json_obj_iter)
{
    char keys[128];
    struct wv__err e = {0};
    ASSERT_EQ(walk("{\"a\": 1, \"b\": [1, {\"c\": 2}], \"\\u00e9\": null}",
                   keys, sizeof keys, &e),
              WV_OK);
    ASSERT_STREQ(keys, "a,b,\xc3\xa9");
    ASSERT_EQ(walk(" { } ", keys, sizeof keys, &e), WV_OK);
    ASSERT_STREQ(keys, "");
    /* a key the caller keeps is not freed by the next call */
    const char *t = "{\"x\": 1, \"y\": 2}";
    struct wv__json j = {t, t, t + strlen(t), "test", &e};
    char *k = NULL, *kept = NULL;
    size_t kl;
    ASSERT(wv__json_eat(&j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    ASSERT(wv__json_obj_next(&it, &k, &kl));
    ASSERT(kl == 1 && k[0] == 'x');
    kept = k;
    k = NULL;
    ASSERT_EQ(wv__json_skip(&j), WV_OK);
    ASSERT(wv__json_obj_next(&it, &k, &kl));
    ASSERT_STREQ(k, "y");
    ASSERT_EQ(wv__json_skip(&j), WV_OK);
    ASSERT(!wv__json_obj_next(&it, &k, &kl));
    ASSERT(k == NULL && it.rc == WV_OK);
    ASSERT_STREQ(kept, "x");
    wv__free(kept);
}

TEST_IMPL(json_obj_iter_malformed)
{
    static const char *const bad[] = {
        "{\"a\": 1,}",     /* trailing comma            */
        "{\"a\" 1}",       /* no colon                  */
        "{\"a\": 1 \"b\": 2}", /* no comma              */
        "{a: 1}",          /* key not a string          */
        "{\"a\": 1",       /* unterminated              */
        "{,}",             /* no field before the comma */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char keys[64];
        struct wv__err e = {0};
        ASSERT_EQ(walk(bad[i], keys, sizeof keys, &e), WV_CORRUPT);
        ASSERT(strstr(e.msg, "test is not valid JSON") != NULL);
    }
}
