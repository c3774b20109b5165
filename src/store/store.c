/*
 * store.c -- backend registry, URI parsing and the wrappers through which
 * the repository reaches every backend. The wrappers are the single place
 * where store faults are injected in tests (wv__store_fail_after) and where
 * backend errors get a message even if the backend left none, and where
 * each handle's requests and bytes are counted (wv__store_counts).
 *
 * Fault state is global (tests arm it, then run repository code, which
 * may call the store from its pack-writer thread) and guarded by one
 * mutex. A fault is "due" once its countdown reaches zero and fires at the
 * first call of a kind it applies to; a fired FSYNC fault on an unsynced
 * put leaves one more failure behind, for the next sync barrier.
 */
#include "core.h"
#include "store.h"

#include <pthread.h>

static const struct wv__backend *const backends[] = {
    &wv__backend_file,
    &wv__backend_mem,
    &wv__backend_rados,
    &wv__backend_s3,
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static long g_fail_after;
static int g_fail_kind, g_fail_code, g_fail_errno;
static bool g_due;
static bool g_sync_fails; /* an FSYNC fault hit an unsynced put */
static char g_sync_key[160];

void wv__store_fault(long n, int kind, int code, int errnum)
{
    pthread_mutex_lock(&g_mu);
    g_fail_after = n > 0 ? n : 0;
    g_fail_kind = kind;
    g_fail_code = code;
    g_fail_errno = errnum;
    g_due = false;
    g_sync_fails = false;
    pthread_mutex_unlock(&g_mu);
}

void wv__store_fail_after(long n, int code, int errnum)
{
    wv__store_fault(n, WV__SFAULT_FAIL, code, errnum);
}

bool wv__store_fault_pending(void)
{
    pthread_mutex_lock(&g_mu);
    bool p = g_fail_after > 0 || g_due;
    pthread_mutex_unlock(&g_mu);
    return p;
}

enum { OP_GET, OP_PUT, OP_SYNC, OP_OTHER };

/* Count this call; the kind of fault to simulate on it, or -1. */
static int fault_due(int op)
{
    int kind = -1;
    pthread_mutex_lock(&g_mu);
    if (g_fail_after > 0 && --g_fail_after == 0)
        g_due = true;
    if (g_due) {
        bool applies = g_fail_kind == WV__SFAULT_FAIL ||
                       (g_fail_kind == WV__SFAULT_SHORT_WRITE &&
                        op == OP_PUT) ||
                       (g_fail_kind == WV__SFAULT_FSYNC &&
                        (op == OP_PUT || op == OP_SYNC)) ||
                       (g_fail_kind == WV__SFAULT_BITFLIP && op == OP_GET);
        if (applies) {
            kind = g_fail_kind;
            g_due = false;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return kind;
}

static int fault_msg(struct wv__store *s, const char *op, const char *key)
{
    return wv__seterr(s->err, g_fail_code, "%s: %s '%s' failed: %s", s->uri,
                      op, key, strerror(g_fail_errno));
}

static int injected(struct wv__store *s, const char *op, const char *key)
{
    int opk = strcmp(op, "read") == 0 ? OP_GET : OP_OTHER;
    if (fault_due(opk) != WV__SFAULT_FAIL)
        return WV_OK;
    return fault_msg(s, op, key);
}

static int store_open(const char *uri, bool create, struct wv__err *err,
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
                      "file://, s3://, rados:// and local paths)",
                      uri, (int)sl, uri);
}

int wv__store_open(const char *uri, bool create, struct wv__err *err,
                   struct wv__store **out)
{
    int rc = store_open(uri, create, err, out);
    if (rc == WV_OK)
        memset(&(*out)->count, 0, sizeof (*out)->count);
    return rc;
}

/* One request that reached the backend, with the bytes it moved. */
static void count(struct wv__store *s, uint64_t sent, uint64_t received)
{
    __atomic_fetch_add(&s->count.requests, 1, __ATOMIC_RELAXED);
    if (sent)
        __atomic_fetch_add(&s->count.bytes_sent, sent, __ATOMIC_RELAXED);
    if (received)
        __atomic_fetch_add(&s->count.bytes_received, received,
                           __ATOMIC_RELAXED);
}

void wv__store_counts(struct wv__store *s, struct wv__store_count *out)
{
    memset(out, 0, sizeof *out);
    if (s == NULL ||
        s->methods->control(s, WV_STORE_COUNT, out) == WV_OK)
        return;
    memset(out, 0, sizeof *out);
    out->requests = __atomic_load_n(&s->count.requests, __ATOMIC_RELAXED);
    out->bytes_sent =
        __atomic_load_n(&s->count.bytes_sent, __ATOMIC_RELAXED);
    out->bytes_received =
        __atomic_load_n(&s->count.bytes_received, __ATOMIC_RELAXED);
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
    int kind = fault_due(OP_GET);
    if (kind == WV__SFAULT_FAIL)
        return fault_msg(s, "read", key);
    int rc = s->methods->get(s, key, off, buf, len, nread);
    count(s, 0, *nread);
    if (kind == WV__SFAULT_BITFLIP && rc == WV_OK && *nread > 0)
        ((unsigned char *)buf)[*nread / 2] ^= 0x10;
    return rc;
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

/* The bytes of pieces [iov, iov+n) from offset 0, at most max of them,
 * in one wv__malloc()ed buffer (*len: how many). */
static unsigned char *gather(const struct iovec *iov, size_t n, size_t max,
                             size_t *len)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += iov[i].iov_len;
    if (total > max)
        total = max;
    unsigned char *b = wv__malloc(total ? total : 1);
    if (b == NULL)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < n && at < total; i++) {
        size_t k = iov[i].iov_len < total - at ? iov[i].iov_len : total - at;
        memcpy(b + at, iov[i].iov_base, k);
        at += k;
    }
    *len = total;
    return b;
}

/* One object from pieces through the backend's putv, or put (gathered
 * when there are several and the backend has no putv). */
static int put_pieces(struct wv__store *s, const char *key,
                      const struct iovec *iov, size_t n, unsigned flags)
{
    if (n == 1)
        return s->methods->put(s, key, iov[0].iov_base, iov[0].iov_len,
                               flags);
    if (s->methods->putv)
        return s->methods->putv(s, key, iov, n, flags);
    size_t len = 0;
    unsigned char *b = gather(iov, n, SIZE_MAX, &len);
    if (b == NULL)
        return wv__seterr(s->err, WV_NOMEM, "out of memory");
    int rc = s->methods->put(s, key, b, len, flags);
    wv__free(b);
    return rc;
}

int wv__store_putv(struct wv__store *s, const char *key,
                   const struct iovec *iov, size_t n_iov, unsigned flags)
{
    int rc, kind = fault_due(OP_PUT);
    if (kind == WV__SFAULT_FAIL)
        return fault_msg(s, "write", key);
    if (kind == WV__SFAULT_FSYNC && !(flags & WV_PUT_NOSYNC))
        return wv__seterr(s->err, g_fail_code, "%s: fsync failed on '%s': %s",
                          s->uri, key, strerror(g_fail_errno));
    if (kind == WV__SFAULT_SHORT_WRITE) {
        /* The backend gets half the bytes and takes them for the object.
         * Synced, so no backend keeps it on a list for the barrier. */
        size_t len = 0, half;
        for (size_t i = 0; i < n_iov; i++)
            len += iov[i].iov_len;
        unsigned char *b = gather(iov, n_iov, len / 2, &half);
        if (b != NULL)
            s->methods->put(s, key, b, half, flags & ~WV_PUT_NOSYNC);
        wv__free(b);
        rc = wv__seterr(s->err, g_fail_code,
                        "%s: short write on '%s' (%zu of %zu bytes): %s",
                        s->uri, key, len / 2, len, strerror(g_fail_errno));
        s->methods->del(s, key); /* never leave a torn object behind */
        return rc;
    }
    rc = put_pieces(s, key, iov, n_iov, flags);
    size_t sent = 0;
    for (size_t i = 0; i < n_iov; i++)
        sent += iov[i].iov_len;
    count(s, sent, 0);
    if (kind == WV__SFAULT_FSYNC && rc == WV_OK) {
        pthread_mutex_lock(&g_mu);
        g_sync_fails = true;
        snprintf(g_sync_key, sizeof g_sync_key, "%s", key);
        pthread_mutex_unlock(&g_mu);
    }
    return rc;
}

int wv__store_put(struct wv__store *s, const char *key, const void *buf,
                  size_t len, unsigned flags)
{
    struct iovec one = {(void *)buf, len};
    return wv__store_putv(s, key, &one, 1, flags);
}

int wv__store_stat(struct wv__store *s, const char *key, uint64_t *size)
{
    INJECT("stat", key);
    count(s, 0, 0);
    return s->methods->stat(s, key, size);
}

int wv__store_del(struct wv__store *s, const char *key)
{
    INJECT("delete", key);
    count(s, 0, 0);
    return s->methods->del(s, key);
}

int wv__store_list(struct wv__store *s, const char *prefix,
                   int (*cb)(void *arg, const char *key, uint64_t size),
                   void *arg)
{
    INJECT("list", prefix);
    count(s, 0, 0);
    return s->methods->list(s, prefix, cb, arg);
}

int wv__store_ref_get(struct wv__store *s, const char *ref, char *buf,
                      size_t cap)
{
    INJECT("read ref", ref);
    count(s, 0, 0);
    return s->methods->ref_get(s, ref, buf, cap);
}

int wv__store_ref_cas(struct wv__store *s, const char *ref,
                      const char *expect, const char *desired)
{
    INJECT("update ref", ref);
    count(s, desired ? strlen(desired) : 0, 0);
    return s->methods->ref_cas(s, ref, expect, desired);
}

int wv__store_control(struct wv__store *s, int op, void *arg)
{
    if (op == WV_STORE_UNMAP) /* a release: never fails, no fault point */
        return s->methods->control(s, op, arg);
    int kind = fault_due(op == WV_STORE_SYNC ? OP_SYNC : OP_OTHER);
    if (kind == WV__SFAULT_FAIL)
        return fault_msg(s, op == WV_STORE_SYNC ? "sync" : "control", "*");
    if (kind == WV__SFAULT_FSYNC)
        return wv__seterr(s->err, g_fail_code,
                          "%s: the sync barrier failed: fsync failed on "
                          "'*': %s",
                          s->uri, strerror(g_fail_errno));
    if (op == WV_STORE_SYNC) {
        char key[160] = "";
        pthread_mutex_lock(&g_mu);
        if (g_sync_fails)
            snprintf(key, sizeof key, "%s", g_sync_key);
        g_sync_fails = false;
        pthread_mutex_unlock(&g_mu);
        if (key[0])
            return wv__seterr(s->err, g_fail_code,
                              "%s: fsync failed on '%s': %s", s->uri, key,
                              strerror(g_fail_errno));
    }
    return s->methods->control(s, op, arg);
}
