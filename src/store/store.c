/*
 * store.c -- backend registry, URI parsing and the wrappers through which
 * the repository reaches every backend. The wrappers are the single place
 * where store faults are injected in tests (wv__store_fail_after) and where
 * backend errors get a message even if the backend left none.
 */
#include "store.h"

static const struct wv__backend *const backends[] = {
    &wv__backend_file,
    &wv__backend_mem,
};

static long g_fail_after;
static int g_fail_code, g_fail_errno;

void wv__store_fail_after(long n, int code, int errnum)
{
    g_fail_after = n;
    g_fail_code = code;
    g_fail_errno = errnum;
}

static int injected(struct wv__store *s, const char *op, const char *key)
{
    if (g_fail_after <= 0 || --g_fail_after > 0)
        return WV_OK;
    return wv__seterr(s->err, g_fail_code, "%s: %s '%s' failed: %s", s->uri,
                      op, key, strerror(g_fail_errno));
}

int wv__store_open(const char *uri, bool create, struct wv__err *err,
                   struct wv__store **out)
{
    *out = NULL;
    const char *sep = strstr(uri, "://");
    if (sep == NULL)
        return wv__backend_file.open(uri, uri, create, err, out);
    size_t sl = (size_t)(sep - uri);
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (strlen(backends[i]->scheme) == sl &&
            memcmp(backends[i]->scheme, uri, sl) == 0)
            return backends[i]->open(uri, sep + 3, create, err, out);
    return wv__seterr(err, WV_UNSUPPORTED,
                      "%s: unknown storage scheme '%.*s' (this build knows "
                      "file:// and local paths)",
                      uri, (int)sl, uri);
}

void wv__store_close(struct wv__store *s)
{
    if (s)
        s->methods->close(s);
}

#define INJECT(op, key)                                                    \
    do {                                                                   \
        int inj_ = injected(s, op, key);                                   \
        if (inj_ != WV_OK)                                                 \
            return inj_;                                                   \
    } while (0)

int wv__store_get(struct wv__store *s, const char *key, uint64_t off,
                  void *buf, size_t len, size_t *nread)
{
    size_t dummy;
    if (nread == NULL)
        nread = &dummy;
    *nread = 0;
    INJECT("read", key);
    return s->methods->get(s, key, off, buf, len, nread);
}

int wv__store_get_all(struct wv__store *s, const char *key, size_t max,
                      unsigned char **out, size_t *len)
{
    uint64_t size;
    *out = NULL;
    *len = 0;
    int rc = wv__store_stat(s, key, &size);
    if (rc != WV_OK)
        return rc;
    if (size > max)
        return wv__seterr(s->err, WV_CORRUPT,
                          "%s: object '%s' is %llu bytes, more than the "
                          "%zu allowed",
                          s->uri, key, (unsigned long long)size, max);
    unsigned char *b = wv__malloc((size_t)size + 1);
    if (b == NULL)
        return wv__seterr(s->err, WV_NOMEM, "out of memory");
    size_t n;
    rc = wv__store_get(s, key, 0, b, (size_t)size, &n);
    if (rc == WV_OK && n != size)
        rc = wv__seterr(s->err, WV_IO_SHORT_READ,
                        "%s: object '%s' changed size while read", s->uri,
                        key);
    if (rc != WV_OK) {
        wv__free(b);
        return rc;
    }
    b[size] = '\0';
    *out = b;
    *len = (size_t)size;
    return WV_OK;
}

int wv__store_put(struct wv__store *s, const char *key, const void *buf,
                  size_t len, unsigned flags)
{
    INJECT("write", key);
    return s->methods->put(s, key, buf, len, flags);
}

int wv__store_stat(struct wv__store *s, const char *key, uint64_t *size)
{
    INJECT("stat", key);
    return s->methods->stat(s, key, size);
}

int wv__store_del(struct wv__store *s, const char *key)
{
    INJECT("delete", key);
    return s->methods->del(s, key);
}

int wv__store_list(struct wv__store *s, const char *prefix,
                   int (*cb)(void *arg, const char *key, uint64_t size),
                   void *arg)
{
    INJECT("list", prefix);
    return s->methods->list(s, prefix, cb, arg);
}

int wv__store_ref_get(struct wv__store *s, const char *ref, char *buf,
                      size_t cap)
{
    INJECT("read ref", ref);
    return s->methods->ref_get(s, ref, buf, cap);
}

int wv__store_ref_cas(struct wv__store *s, const char *ref,
                      const char *expect, const char *desired)
{
    INJECT("update ref", ref);
    return s->methods->ref_cas(s, ref, expect, desired);
}

int wv__store_control(struct wv__store *s, int op, void *arg)
{
    INJECT("sync", "*");
    return s->methods->control(s, op, arg);
}
