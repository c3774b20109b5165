/*
 * store.c -- backend registry, URI parsing and the wrappers through which
 * the repository reaches every backend. The wrappers are the single place
 * where store faults are injected in tests (wv__store_fail_after; the
 * state is in store_fault.c, compiled only with WV_FAULT_INJECTION:
 * without it wv__sfault_due is a constant "none" and a call takes no
 * lock) and where backend errors get a message even if the backend left
 * none, and where each handle's requests and bytes are counted
 * (wv__store_counts).
 *
 * The backends are those this build has: s3.c and rados.c, or their
 * stand-ins s3_off.c and rados_off.c, which refuse naming the option
 * (WV_WITH_S3, WV_WITH_RADOS) that left them out.
 */
#include "core.h"
#include "store.h"

static const struct wv__backend *const backends[] = {
    &wv__backend_file,
    &wv__backend_mem,
    &wv__backend_rados,
    &wv__backend_s3,
};

static int fault_msg(struct wv__store *s, const char *op, const char *key)
{
    int code, errnum;
    wv__sfault_code(&code, &errnum);
    return wv__seterr(s->err, code, "%s: %s '%s' failed: %s", s->uri, op, key,
                      strerror(errnum));
}

static int injected(struct wv__store *s, const char *op, const char *key)
{
    int opk = strcmp(op, "read") == 0 ? WV__SOP_GET : WV__SOP_OTHER;
    if (wv__sfault_due(opk) != WV__SFAULT_FAIL)
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
    int kind = wv__sfault_due(WV__SOP_GET);
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
    int rc, kind = wv__sfault_due(WV__SOP_PUT), code = WV_OK, errnum = 0;
    if (kind == WV__SFAULT_FAIL)
        return fault_msg(s, "write", key);
    if (kind >= 0)
        wv__sfault_code(&code, &errnum);
    if (kind == WV__SFAULT_FSYNC && !(flags & WV_PUT_NOSYNC))
        return wv__seterr(s->err, code, "%s: fsync failed on '%s': %s",
                          s->uri, key, strerror(errnum));
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
        rc = wv__seterr(s->err, code,
                        "%s: short write on '%s' (%zu of %zu bytes): %s",
                        s->uri, key, len / 2, len, strerror(errnum));
        s->methods->del(s, key); /* never leave a torn object behind */
        return rc;
    }
    rc = put_pieces(s, key, iov, n_iov, flags);
    size_t sent = 0;
    for (size_t i = 0; i < n_iov; i++)
        sent += iov[i].iov_len;
    count(s, sent, 0);
    if (kind == WV__SFAULT_FSYNC && rc == WV_OK)
        wv__sfault_sync_note(key);
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

bool wv__store_can_stream(struct wv__store *src, struct wv__store *dst)
{
    return src->methods->get_fd && dst->methods->put_open &&
           dst->methods->put_close;
}

static int no_stream(struct wv__store *s, const char *what, const char *key)
{
    return wv__seterr(s->err, WV_UNSUPPORTED,
                      "%s: cannot %s '%s' through a file (this storage has "
                      "no streamed transfers)",
                      s->uri, what, key);
}

int wv__store_get_fd(struct wv__store *s, const char *key, uint64_t off,
                     size_t len, int fd, uint64_t fd_off, size_t *nread)
{
    *nread = 0;
    if (s->methods->get_fd == NULL)
        return no_stream(s, "read", key);
    if (len == 0 || fd < 0)
        return wv__seterr(s->err, WV_MISUSE,
                          "%s: a streamed read of '%s' needs bytes and a "
                          "file",
                          s->uri, key);
    int kind = wv__sfault_due(WV__SOP_GET);
    if (kind == WV__SFAULT_FAIL)
        return fault_msg(s, "read", key);
    int rc = s->methods->get_fd(s, key, off, len, fd, fd_off, nread);
    count(s, 0, *nread);
    unsigned char b;
    off_t at = (off_t)(fd_off + *nread / 2);
    if (kind == WV__SFAULT_BITFLIP && rc == WV_OK && *nread > 0 &&
        pread(fd, &b, 1, at) == 1) {
        b ^= 0x10;
        if (pwrite(fd, &b, 1, at) != 1)
            return wv__seterr(s->err, WV_IO, "%s: cannot flip a bit of '%s'",
                              s->uri, key);
    }
    return rc;
}

int wv__store_put_open(struct wv__store *s, struct wv__store_wfile *w,
                       bool *exists)
{
    *exists = false;
    w->fd = -1;
    w->priv = NULL;
    if (s->methods->put_open == NULL || s->methods->put_close == NULL)
        return no_stream(s, "write", w->key);
    INJECT("write", w->key);
    return s->methods->put_open(s, w, exists);
}

/* put_close with keep, as wv__store_putv treats a put: the faults of a
 * put, the object counted as one request of len bytes. */
int wv__store_put_close(struct wv__store *s, struct wv__store_wfile *w,
                        uint64_t len, bool keep)
{
    if (!keep) /* a release */
        return s->methods->put_close(s, w, false);
    int rc, kind = wv__sfault_due(WV__SOP_PUT), code = WV_OK, errnum = 0;
    if (kind >= 0)
        wv__sfault_code(&code, &errnum);
    if (kind == WV__SFAULT_FAIL ||
        (kind == WV__SFAULT_FSYNC && !(w->flags & WV_PUT_NOSYNC))) {
        s->methods->put_close(s, w, false);
        if (kind == WV__SFAULT_FAIL)
            return fault_msg(s, "write", w->key);
        return wv__seterr(s->err, code, "%s: fsync failed on '%s': %s",
                          s->uri, w->key, strerror(errnum));
    }
    if (kind == WV__SFAULT_SHORT_WRITE) {
        /* the backend takes the first half for the object (synced), then
         * the object is deleted: never a torn object left behind */
        if (ftruncate(w->fd, (off_t)(len / 2)) == 0) {
            w->flags &= ~WV_PUT_NOSYNC;
            s->methods->put_close(s, w, true);
        } else {
            s->methods->put_close(s, w, false);
        }
        rc = wv__seterr(s->err, code,
                        "%s: short write on '%s' (%llu of %llu bytes): %s",
                        s->uri, w->key, (unsigned long long)(len / 2),
                        (unsigned long long)len, strerror(errnum));
        s->methods->del(s, w->key);
        return rc;
    }
    rc = s->methods->put_close(s, w, true);
    count(s, len, 0);
    if (kind == WV__SFAULT_FSYNC && rc == WV_OK)
        wv__sfault_sync_note(w->key);
    return rc;
}

int wv__store_control(struct wv__store *s, int op, void *arg)
{
    if (op == WV_STORE_UNMAP) /* a release: never fails, no fault point */
        return s->methods->control(s, op, arg);
    int kind = wv__sfault_due(op == WV_STORE_SYNC ? WV__SOP_SYNC
                                                  : WV__SOP_OTHER);
    int code, errnum;
    if (kind == WV__SFAULT_FAIL)
        return fault_msg(s, op == WV_STORE_SYNC ? "sync" : "control", "*");
    if (kind == WV__SFAULT_FSYNC) {
        wv__sfault_code(&code, &errnum);
        return wv__seterr(s->err, code,
                          "%s: the sync barrier failed: fsync failed on "
                          "'*': %s",
                          s->uri, strerror(errnum));
    }
    char key[160];
    if (op == WV_STORE_SYNC && wv__sfault_sync_take(key, sizeof key)) {
        wv__sfault_code(&code, &errnum);
        return wv__seterr(s->err, code, "%s: fsync failed on '%s': %s",
                          s->uri, key, strerror(errnum));
    }
    int rc = s->methods->control(s, op, arg);
    if (op == WV_STORE_MAP && rc == WV_OK) /* a read of the whole object */
        count(s, 0, ((struct wv__store_map *)arg)->len);
    return rc;
}
