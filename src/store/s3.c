/*
 * s3.c -- the S3 backend ("s3://bucket/prefix"), over the HTTP engine in
 * src/net/http.c.
 *
 * A key "packs/ab/abcd..." is the object "prefix/packs/ab/abcd..." of the
 * bucket. Reads are ranged GETs written straight into the caller's
 * buffer (or file: get_fd, as the bytes arrive), split into
 * parallel parts of cfg.part_size; writes are one PUT
 * up to a part, else a multipart upload whose parts are uploaded in
 * parallel from the caller's buffer, completed, or aborted on any
 * failure. A completed PUT is durable, so WV_PUT_NOSYNC and the sync
 * barrier mean nothing here.
 *
 * Refs are small objects updated with conditional PUTs (see "S3 backend"
 * in docs/repo-format.md):
 *   create   PUT If-None-Match: *           (412: it exists -> conflict)
 *   update   GET value+ETag, compare with the expected value, then
 *            PUT If-Match: <ETag, unquoted>  (412 -> conflict)
 *   delete   the same conditional PUT of a tombstone value, because a
 *            DELETE cannot be made conditional (RGW ignores If-Match on
 *            DELETE). ref_get reports a tombstone as absent, listings
 *            hide it, and a later create replaces it with If-Match on the
 *            tombstone's ETag.
 * A 500 or a dropped connection after a conditional PUT leaves the outcome
 * unknown (RGW answers some losers of a race with 500): the ref is read
 * again; holding our value means we won, holding what it held before
 * means nothing happened and the write is tried again, anything else is a
 * conflict.
 *
 * Opening with create (wv init) makes the bucket if needed and probes once
 * that the server honours conditional writes, refusing a server that does
 * not: it would let two writers both "win" a ref.
 */
#include "core.h"
#include "store.h"

#include "http.h"

#define TOMB "weightvault:deleted-ref\n"
#define TOMB_LEN (sizeof TOMB - 1)
#define TOMB_MD5 "b44a6607e260823f88cbe7ef79c9fe97"
#define REF_MAX 512
#define PROBE_KEY ".wv-s3-probe"

struct s3 {
    struct wv__store base;
    struct wv__s3cfg cfg;
    struct wv__http *http;
    char *bucket;
    char *prefix; /* "" or "a/b", no slash at either end */
    char acl_hdr[80]; /* "x-amz-acl: ..." for writes, "" for none */
};

/* The ACL header of object writes, NULL when none is configured. */
static const char *acl(struct s3 *s)
{
    return s->acl_hdr[0] ? s->acl_hdr : NULL;
}

static bool key_ok(const char *key)
{
    if (key[0] == '\0' || key[0] == '/' || strstr(key, "..") != NULL ||
        strlen(key) > 900)
        return false;
    for (const char *p = key; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* "prefix/key" (wv__malloc()ed). */
static char *full_key(struct s3 *s, const char *key)
{
    size_t n = strlen(s->prefix) + strlen(key) + 2;
    char *p = wv__malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", s->prefix, s->prefix[0] ? "/" : "", key);
    return p;
}

static char *key_url(struct s3 *s, const char *fk, const char *query)
{
    return wv__s3_url(&s->cfg, s->bucket, fk, query);
}

static void printable(char *p)
{
    for (; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
}

static bool auth_code(const char *c)
{
    static const char *const codes[] = {
        "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
        "ExpiredToken", "TokenRefreshRequired", "InvalidSecurity",
        "AuthorizationHeaderMalformed", "RequestTimeTooSkewed",
        "AccessDenied", "AllAccessDisabled", "AccountProblem"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(c, codes[i]) == 0)
            return true;
    return false;
}

/* Record what went wrong with a finished request that did not succeed.
 * `fk` is the object's full key, NULL for the bucket. */
static int s3_fail(struct s3 *s, const struct wv__hreq *r, const char *op,
                   const char *fk)
{
    struct wv__err *err = s->base.err;
    char code[64] = "", msg[128] = "", subj[300];
    snprintf(subj, sizeof subj, "s3://%s%s%.200s", s->bucket, fk ? "/" : "",
             fk ? fk : "");
    if (r->xerr && r->too_big) /* it answered: not a reachability issue */
        return wv__seterr(err, WV_BACKEND, "%s: %s %s: %s", s->base.uri, op,
                          subj, r->xmsg);
    if (r->xerr)
        return wv__seterr(err, WV_BACKEND,
                          "%s: cannot reach %s: %s (after %d attempt%s)",
                          s->base.uri, s->cfg.endpoint, r->xmsg, r->attempts,
                          r->attempts == 1 ? "" : "s");
    if (r->resp.len && !r->resp.oom) {
        wv__s3xml_field(r->resp.p, r->resp.len, "Code", code, sizeof code);
        wv__s3xml_field(r->resp.p, r->resp.len, "Message", msg, sizeof msg);
        printable(code);
        printable(msg);
    }
    if (strcmp(code, "NoSuchBucket") == 0)
        return wv__seterr(err, WV_NOTFOUND, "s3://%s: no such bucket",
                          s->bucket);
    if (r->status == 404)
        return wv__seterr(err, WV_NOTFOUND, "%s: no such key", subj);
    if (r->status == 403 && (code[0] == '\0' ||
                             strcmp(code, "AccessDenied") == 0))
        return wv__seterr(err, WV_AUTH, "%s: access denied (%s)", subj,
                          code[0] ? code : "HTTP 403");
    if (r->status == 401 || r->status == 403 || auth_code(code))
        return wv__seterr(err, WV_AUTH,
                          "%s: access denied (%s): the server refused the "
                          "credentials for bucket '%s'",
                          subj,
                          code[0] ? code : r->status == 401 ? "HTTP 401"
                                                            : "HTTP 403",
                          s->bucket);
    char after[40] = "";
    if (r->attempts > 1)
        snprintf(after, sizeof after, " (after %d attempts)", r->attempts);
    return wv__seterr(err, WV_BACKEND, "%s: %s failed: HTTP %ld%s%s%s%s%s",
                      subj, op, r->status, code[0] ? " " : "", code,
                      msg[0] ? ": " : "", msg, after);
}

static bool ok2xx(const struct wv__hreq *r)
{
    return r->xerr == 0 && r->status >= 200 && r->status < 300;
}

/* Run one request; WV_NOMEM (with a message) if it could not run. */
static int run1(struct s3 *s, struct wv__hreq *r)
{
    if (wv__http_run(s->http, r, 1, 1) != WV_OK)
        return wv__seterr(s->base.err, WV_NOMEM, "out of memory");
    return WV_OK;
}

static void unquote(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in);
    if (n >= 2 && in[0] == 'W' && in[1] == '/') {
        in += 2;
        n -= 2;
    }
    if (n >= 2 && in[0] == '"' && in[n - 1] == '"') {
        in++;
        n -= 2;
    }
    snprintf(out, cap, "%.*s", (int)n, in);
}

static void s_close(struct wv__store *st)
{
    struct s3 *s = (struct s3 *)st;
    if (s == NULL)
        return;
    wv__http_free(s->http);
    wv__s3cfg_release(&s->cfg);
    wv__free(s->bucket);
    wv__free(s->prefix);
    wv__free(s);
}

/* ---- objects ------------------------------------------------------------- */

static int head(struct s3 *s, const char *fk, struct wv__hreq *r)
{
    int rc;
    char *url = key_url(s, fk, NULL);
    if (url == NULL)
        return wv__seterr(s->base.err, WV_NOMEM, "out of memory");
    memset(r, 0, sizeof *r);
    r->method = "HEAD";
    r->url = url;
    rc = run1(s, r);
    r->url = NULL;
    wv__free(url);
    return rc;
}

/* Is the object fk (size bytes) a ref tombstone? Reads it when its size
 * says it may be. */
static int is_tomb(struct s3 *s, const char *fk, uint64_t size,
                   const char *etag, bool *yes)
{
    char e[136], buf[TOMB_LEN];
    *yes = false;
    if (size != TOMB_LEN)
        return WV_OK;
    unquote(etag ? etag : "", e, sizeof e);
    if (strcmp(e, TOMB_MD5) == 0) {
        *yes = true;
        return WV_OK;
    }
    struct wv__hreq r;
    memset(&r, 0, sizeof r);
    char *url = key_url(s, fk, NULL);
    if (url == NULL)
        return wv__seterr(s->base.err, WV_NOMEM, "out of memory");
    r.method = "GET";
    r.url = url;
    r.dst = buf;
    r.dst_cap = sizeof buf;
    int rc = run1(s, &r);
    if (rc == WV_OK && ok2xx(&r))
        *yes = r.got == TOMB_LEN && memcmp(buf, TOMB, TOMB_LEN) == 0;
    else if (rc == WV_OK && r.status != 404)
        rc = s3_fail(s, &r, "GET", fk);
    wv__hreq_release(&r);
    wv__free(url);
    return rc;
}

/* Read [off, off+len) of key into buf, or with buf NULL into file fd at
 * fd_off, in parallel parts. */
static int s_read(struct wv__store *st, const char *key, uint64_t off,
                  void *buf, int fd, uint64_t fd_off, size_t len,
                  size_t *nread)
{
    struct s3 *s = (struct s3 *)st;
    int rc = WV_OK;
    struct wv__hreq *rs = NULL;
    size_t n = 0;
    char *fk = full_key(s, key), *url = NULL;
    *nread = 0;
    if (fk == NULL || (url = key_url(s, fk, NULL)) == NULL) {
        rc = wv__seterr(st->err, WV_NOMEM, "out of memory");
        goto out;
    }
    if (len == 0) { /* nothing to read: only say whether it exists */
        struct wv__hreq r;
        WV_TRY(head(s, fk, &r));
        if (!ok2xx(&r))
            rc = s3_fail(s, &r, "HEAD", fk);
        wv__hreq_release(&r);
        goto out;
    }
    size_t ps = s->cfg.part_size;
    n = (len + ps - 1) / ps;
    rs = wv__calloc(n, sizeof *rs);
    if (rs == NULL) {
        rc = wv__seterr(st->err, WV_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t pl = i + 1 < n ? ps : len - i * ps;
        rs[i].method = "GET";
        rs[i].url = url;
        rs[i].ranged = true;
        rs[i].range_off = off + (uint64_t)i * ps;
        rs[i].range_len = pl;
        if (buf) {
            rs[i].dst = (unsigned char *)buf + i * ps;
        } else {
            rs[i].to_fd = true;
            rs[i].dst_fd = fd;
            rs[i].dst_fd_off = fd_off + (uint64_t)i * ps;
        }
        rs[i].dst_cap = pl;
    }
    if (wv__http_run(s->http, rs, n, 0) != WV_OK) {
        rc = wv__seterr(st->err, WV_NOMEM, "out of memory");
        goto out;
    }
    size_t got = 0;
    bool short_seen = false;
    for (size_t i = 0; i < n; i++) {
        struct wv__hreq *r = &rs[i];
        if (r->status == 416 && r->xerr == 0) {
            short_seen = true; /* starts past the end */
            continue;
        }
        if (r->fd_errno) {
            rc = wv__seterr(st->err, WV_IO,
                            "%s: writing object '%s' as it arrived failed: "
                            "%s",
                            st->uri, key, strerror(r->fd_errno));
            goto out;
        }
        if (!ok2xx(r)) {
            rc = s3_fail(s, r, "GET", fk);
            goto out;
        }
        if (r->range_ignored && r->range_off != 0) {
            rc = wv__seterr(st->err, WV_BACKEND,
                            "s3://%s/%s: the server ignored the byte range",
                            s->bucket, fk);
            goto out;
        }
        if (!short_seen)
            got += r->got;
        if (r->got < r->range_len)
            short_seen = true;
    }
    *nread = got;
    if (got < len) {
        if (buf)
            memset((unsigned char *)buf + got, 0, len - got);
        rc = wv__seterr(st->err, WV_IO_SHORT_READ,
                        "%s: object '%s' is shorter than expected",
                        st->uri, key);
    }
out:
    for (size_t i = 0; rs && i < n; i++)
        wv__hreq_release(&rs[i]);
    wv__free(rs);
    wv__free(url);
    wv__free(fk);
    return rc;
}

static int s_get(struct wv__store *st, const char *key, uint64_t off,
                 void *buf, size_t len, size_t *nread)
{
    return s_read(st, key, off, buf, -1, 0, len, nread);
}

static int s_get_fd(struct wv__store *st, const char *key, uint64_t off,
                    size_t len, int fd, uint64_t fd_off, size_t *nread)
{
    return s_read(st, key, off, NULL, fd, fd_off, len, nread);
}

static int abort_upload(struct s3 *s, const char *fk, const char *id)
{
    const char *names[1] = {"uploadId"}, *vals[1] = {id};
    char *q = wv__s3_query(names, vals, 1);
    char *url = q ? key_url(s, fk, q) : NULL;
    struct wv__hreq r;
    memset(&r, 0, sizeof r);
    if (url) {
        r.method = "DELETE";
        r.url = url;
        wv__http_run(s->http, &r, 1, 1);
    }
    bool ok = ok2xx(&r) || r.status == 404;
    wv__hreq_release(&r);
    wv__free(url);
    wv__free(q);
    return ok ? WV_OK : WV_BACKEND;
}

static int put_multipart(struct s3 *s, const char *fk, const void *buf,
                         size_t len)
{
    struct wv__err *err = s->base.err;
    int rc = WV_OK;
    struct wv__hreq init, done;
    struct wv__hreq *parts = NULL;
    char **urls = NULL;
    char *url = NULL, *q = NULL;
    char upload_id[1024] = "", root[64];
    struct wv__buf body = {0};
    size_t n = 0;
    memset(&init, 0, sizeof init);
    memset(&done, 0, sizeof done);

    size_t ps = s->cfg.part_size;
    if ((len + ps - 1) / ps > 10000) { /* S3's limit on parts */
        ps = (len + 9999) / 10000;
        ps = (ps + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    }
    n = (len + ps - 1) / ps;

    /* Initiate. */
    const char *un[1] = {"uploads"}, *uv[1] = {NULL};
    q = wv__s3_query(un, uv, 1);
    url = q ? key_url(s, fk, q) : NULL;
    WV_CHECK(url != NULL, WV_NOMEM, "out of memory");
    init.method = "POST";
    init.url = url;
    init.hdr[0] = acl(s);
    WV_TRY(run1(s, &init));
    if (!ok2xx(&init)) {
        rc = s3_fail(s, &init, "starting the multipart upload of", fk);
        goto out;
    }
    rc = wv__s3xml_field(init.resp.p ? init.resp.p : "",
                         init.resp.len, "UploadId", upload_id,
                         sizeof upload_id);
    WV_CHECK(rc == WV_OK && upload_id[0], WV_BACKEND,
             "s3://%s/%s: the reply to starting a multipart upload holds "
             "no upload id",
             s->bucket, fk);

    /* Parts, in parallel, from the caller's buffer. */
    parts = wv__calloc(n, sizeof *parts);
    urls = wv__calloc(n, sizeof *urls);
    WV_CHECK(parts && urls, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        char num[24];
        snprintf(num, sizeof num, "%zu", i + 1);
        const char *pn[2] = {"partNumber", "uploadId"};
        const char *pv[2] = {num, upload_id};
        char *pq = wv__s3_query(pn, pv, 2);
        urls[i] = pq ? key_url(s, fk, pq) : NULL;
        wv__free(pq);
        WV_CHECK(urls[i] != NULL, WV_NOMEM, "out of memory");
        parts[i].method = "PUT";
        parts[i].url = urls[i];
        parts[i].body = (const unsigned char *)buf + i * ps;
        parts[i].body_len = i + 1 < n ? ps : len - i * ps;
    }
    WV_CHECK(wv__http_run(s->http, parts, n, 0) == WV_OK, WV_NOMEM,
             "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (!ok2xx(&parts[i])) {
            rc = s3_fail(s, &parts[i], "uploading a part of", fk);
            goto out;
        }
        WV_CHECK(parts[i].etag[0], WV_BACKEND,
                 "s3://%s/%s: part %zu was stored without an ETag",
                 s->bucket, fk, i + 1);
    }

    /* Complete. */
    wv__buf_adds(&body, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < n; i++) {
        wv__buf_addf(&body, "<Part><PartNumber>%zu</PartNumber><ETag>",
                     i + 1);
        wv__xml_escape(&body, parts[i].etag);
        wv__buf_adds(&body, "</ETag></Part>");
    }
    wv__buf_adds(&body, "</CompleteMultipartUpload>");
    WV_CHECK(!body.oom, WV_NOMEM, "out of memory");
    wv__free(url);
    wv__free(q);
    const char *cn[1] = {"uploadId"}, *cv[1] = {upload_id};
    q = wv__s3_query(cn, cv, 1);
    url = q ? key_url(s, fk, q) : NULL;
    WV_CHECK(url != NULL, WV_NOMEM, "out of memory");
    for (int attempt = 1;; attempt++) {
        wv__hreq_release(&done);
        memset(&done, 0, sizeof done);
        done.method = "POST";
        done.url = url;
        done.body = body.p;
        done.body_len = body.len;
        done.hdr[0] = "Content-Type: application/xml";
        WV_TRY(run1(s, &done));
        if (done.status == 404 && (done.attempts > 1 || attempt > 1)) {
            /* A retried completion whose first try went through. */
            struct wv__hreq h;
            WV_TRY(head(s, fk, &h));
            bool there = ok2xx(&h) && h.clen == (int64_t)len;
            wv__hreq_release(&h);
            if (there)
                goto out;
        }
        if (!ok2xx(&done)) {
            rc = s3_fail(s, &done, "completing the multipart upload of", fk);
            goto out;
        }
        /* S3 may answer 200 and put an error in the body. */
        char code[64] = "";
        if (done.resp.len &&
            wv__s3xml_root(done.resp.p, done.resp.len, root,
                           sizeof root) == WV_OK &&
            strcmp(root, "Error") == 0) {
            wv__s3xml_field(done.resp.p, done.resp.len, "Code", code,
                            sizeof code);
            printable(code);
            if (wv__http_status_retryable(0, code) &&
                attempt < s->cfg.retries) {
                wv__backoff_sleep(attempt);
                continue;
            }
            WV_CHECK(0, WV_BACKEND,
                     "s3://%s/%s: completing the multipart upload failed "
                     "(%s)",
                     s->bucket, fk, code[0] ? code : "no code");
        }
        break;
    }
out:
    if (rc != WV_OK && upload_id[0])
        abort_upload(s, fk, upload_id);
    wv__hreq_release(&init);
    wv__hreq_release(&done);
    for (size_t i = 0; parts && i < n; i++)
        wv__hreq_release(&parts[i]);
    for (size_t i = 0; urls && i < n; i++)
        wv__free(urls[i]);
    wv__free(parts);
    wv__free(urls);
    wv__buf_release(&body);
    wv__free(url);
    wv__free(q);
    return rc;
}

static int s_put(struct wv__store *st, const char *key, const void *buf,
                 size_t len, unsigned flags)
{
    struct s3 *s = (struct s3 *)st;
    struct wv__err *err = st->err;
    int rc = WV_OK;
    char *fk = NULL, *url = NULL;
    struct wv__hreq r;
    memset(&r, 0, sizeof r);
    WV_CHECK(key_ok(key), WV_MISUSE, "invalid key '%.100s'", key);
    fk = full_key(s, key);
    WV_CHECK(fk != NULL, WV_NOMEM, "out of memory");
    if (len > s->cfg.part_size) {
        if (flags & WV_PUT_IF_ABSENT) {
            WV_TRY(head(s, fk, &r));
            if (ok2xx(&r))
                goto out; /* content-addressed: already there */
            if (r.status != 404) {
                rc = s3_fail(s, &r, "HEAD", fk);
                goto out;
            }
        }
        rc = put_multipart(s, fk, buf, len);
        goto out;
    }
    url = key_url(s, fk, NULL);
    WV_CHECK(url != NULL, WV_NOMEM, "out of memory");
    r.method = "PUT";
    r.url = url;
    r.body = buf;
    r.body_len = len;
    r.hdr[0] = acl(s);
    if (flags & WV_PUT_IF_ABSENT)
        r.hdr[r.hdr[0] ? 1 : 0] = "If-None-Match: *";
    WV_TRY(run1(s, &r));
    if (r.status == 412 && (flags & WV_PUT_IF_ABSENT))
        goto out; /* there already */
    if (!ok2xx(&r))
        rc = s3_fail(s, &r, "PUT", fk);
out:
    wv__hreq_release(&r);
    wv__free(url);
    wv__free(fk);
    return rc;
}

static int s_stat(struct wv__store *st, const char *key, uint64_t *size)
{
    struct s3 *s = (struct s3 *)st;
    struct wv__hreq r;
    int rc;
    char *fk = full_key(s, key);
    if (fk == NULL)
        return wv__seterr(st->err, WV_NOMEM, "out of memory");
    if ((rc = head(s, fk, &r)) != WV_OK)
        goto out;
    if (r.status == 404 && r.xerr == 0) {
        rc = WV_NOTFOUND;
    } else if (!ok2xx(&r) || r.clen < 0) {
        rc = ok2xx(&r) ? wv__seterr(st->err, WV_BACKEND,
                                    "%s: no size for '%s'", st->uri, key)
                       : s3_fail(s, &r, "HEAD", fk);
    } else {
        bool tomb;
        *size = (uint64_t)r.clen;
        rc = is_tomb(s, fk, *size, r.etag, &tomb);
        if (rc == WV_OK && tomb)
            rc = WV_NOTFOUND;
    }
    wv__hreq_release(&r);
out:
    wv__free(fk);
    return rc;
}

static int s_del(struct wv__store *st, const char *key)
{
    struct s3 *s = (struct s3 *)st;
    struct wv__hreq r;
    int rc;
    char *fk = full_key(s, key), *url = NULL;
    if (fk == NULL)
        return wv__seterr(st->err, WV_NOMEM, "out of memory");
    /* DELETE succeeds on a missing key; ask first to report it the way
     * the local backend does. */
    if ((rc = head(s, fk, &r)) != WV_OK)
        goto out;
    if (r.status == 404 && r.xerr == 0) {
        rc = WV_NOTFOUND;
        goto out;
    }
    if (!ok2xx(&r)) {
        rc = s3_fail(s, &r, "HEAD", fk);
        goto out;
    }
    wv__hreq_release(&r);
    memset(&r, 0, sizeof r);
    url = key_url(s, fk, NULL);
    if (url == NULL) {
        rc = wv__seterr(st->err, WV_NOMEM, "out of memory");
        goto out;
    }
    r.method = "DELETE";
    r.url = url;
    if ((rc = run1(s, &r)) == WV_OK && !ok2xx(&r) && r.status != 404)
        rc = s3_fail(s, &r, "DELETE", fk);
out:
    wv__hreq_release(&r);
    wv__free(url);
    wv__free(fk);
    return rc;
}

/* ---- listing ------------------------------------------------------------- */

struct list_ctx {
    struct s3 *s;
    size_t strip; /* bytes of "prefix/" to drop from each key */
    int (*cb)(void *, const char *, uint64_t);
    void *arg;
    bool stopped;
};

/* A listing's Size: the whole element, all of 0 .. 2^64-1. */
static bool parse_size_elem(const char *p, uint64_t *out)
{
    return p != NULL && wv__parse_u64(&p, 10, out) && *p == '\0';
}

static int list_entry(void *arg, const char *const *v)
{
    struct list_ctx *c = arg;
    struct s3 *s = c->s;
    uint64_t size;
    if (v[0] == NULL || !parse_size_elem(v[1], &size))
        return wv__seterr(s->base.err, WV_CORRUPT,
                          "%s: a listing entry without a key or size",
                          s->base.uri);
    if (strlen(v[0]) < c->strip ||
        (c->strip && (strncmp(v[0], s->prefix, c->strip - 1) != 0 ||
                      v[0][c->strip - 1] != '/')))
        return WV_OK; /* not under our prefix: not ours */
    if (strcmp(v[0] + c->strip, PROBE_KEY) == 0)
        return WV_OK;
    bool tomb;
    int rc = is_tomb(s, v[0], size, v[2], &tomb);
    if (rc != WV_OK || tomb)
        return rc;
    rc = c->cb(c->arg, v[0] + c->strip, size);
    if (rc != 0)
        c->stopped = true;
    return rc;
}

static int s_list(struct wv__store *st, const char *prefix,
                  int (*cb)(void *, const char *, uint64_t), void *arg)
{
    struct s3 *s = (struct s3 *)st;
    struct wv__err *err = st->err;
    int rc = WV_OK;
    char *fp = full_key(s, prefix), *q = NULL, *url = NULL;
    char *token = NULL;
    char trunc[16], *next = NULL;
    struct wv__hreq r;
    struct list_ctx c = {s, s->prefix[0] ? strlen(s->prefix) + 1 : 0, cb,
                         arg, false};
    static const char *const fields[3] = {"Key", "Size", "ETag"};
    memset(&r, 0, sizeof r);
    WV_CHECK(fp != NULL, WV_NOMEM, "out of memory");
    next = wv__malloc(4096);
    WV_CHECK(next != NULL, WV_NOMEM, "out of memory");
    for (int page = 0;; page++) {
        const char *names[3] = {"list-type", "prefix", "continuation-token"};
        const char *vals[3] = {"2", fp, token};
        q = wv__s3_query(names, vals, token ? 3 : 2);
        url = q ? wv__s3_url(&s->cfg, s->bucket, NULL, q) : NULL;
        WV_CHECK(url != NULL, WV_NOMEM, "out of memory");
        memset(&r, 0, sizeof r);
        r.method = "GET";
        r.url = url;
        WV_TRY(run1(s, &r));
        if (!ok2xx(&r)) {
            rc = s3_fail(s, &r, "listing", fp);
            goto out;
        }
        const char *xml = r.resp.p ? r.resp.p : "";
        rc = wv__s3xml_each(xml, r.resp.len, "Contents", fields, 3,
                            list_entry, &c);
        if (c.stopped || rc != WV_OK) {
            if (rc == WV_CORRUPT && !c.stopped)
                wv__seterr(err, rc, "%s: malformed listing from the server",
                           st->uri);
            goto out;
        }
        if (wv__s3xml_field(xml, r.resp.len, "IsTruncated", trunc,
                            sizeof trunc) != WV_OK ||
            strcmp(trunc, "true") != 0)
            break;
        rc = wv__s3xml_field(xml, r.resp.len, "NextContinuationToken", next,
                             4096);
        WV_CHECK(rc == WV_OK && next[0] &&
                     (token == NULL || strcmp(token, next) != 0),
                 WV_BACKEND, "%s: the listing is truncated but gives no new "
                             "continuation token",
                 st->uri);
        wv__free(token);
        token = wv__strdup(next);
        WV_CHECK(token != NULL, WV_NOMEM, "out of memory");
        wv__hreq_release(&r);
        wv__free(url);
        wv__free(q);
        url = q = NULL;
    }
out:
    wv__hreq_release(&r);
    wv__free(url);
    wv__free(q);
    wv__free(fp);
    wv__free(token);
    wv__free(next);
    return rc;
}

/* ---- refs ---------------------------------------------------------------- */

enum { REF_ABSENT, REF_TOMB, REF_VALUE };

/* Read a ref: its state, value (NUL-terminated) and ETag (unquoted). */
static int ref_read(struct s3 *s, const char *fk, const char *ref,
                    int *state, char *val, char *etag, size_t ecap)
{
    struct wv__hreq r;
    int rc;
    char *url = key_url(s, fk, NULL);
    if (url == NULL)
        return wv__seterr(s->base.err, WV_NOMEM, "out of memory");
    memset(&r, 0, sizeof r);
    r.method = "GET";
    r.url = url;
    r.dst = val;
    r.dst_cap = REF_MAX - 1;
    *state = REF_ABSENT;
    val[0] = '\0';
    etag[0] = '\0';
    if ((rc = run1(s, &r)) != WV_OK)
        goto out;
    if (r.status == 404 && r.xerr == 0) {
        char code[64] = "";
        if (r.resp.len)
            wv__s3xml_field(r.resp.p, r.resp.len, "Code", code, sizeof code);
        if (strcmp(code, "NoSuchBucket") == 0)
            rc = s3_fail(s, &r, "GET", fk);
        goto out;
    }
    if (!ok2xx(&r)) {
        rc = s3_fail(s, &r, "GET", fk);
        goto out;
    }
    if (r.clen > (int64_t)r.got) {
        rc = wv__seterr(s->base.err, WV_CORRUPT,
                        "%s: ref '%s' is larger than %d bytes",
                        s->base.uri, ref, REF_MAX - 1);
        goto out;
    }
    val[r.got] = '\0';
    unquote(r.etag, etag, ecap);
    *state = r.got == TOMB_LEN && memcmp(val, TOMB, TOMB_LEN) == 0
                 ? REF_TOMB
                 : REF_VALUE;
    if (*state != REF_VALUE)
        val[0] = '\0';
out:
    wv__hreq_release(&r);
    wv__free(url);
    return rc;
}

static int s_ref_get(struct wv__store *st, const char *ref, char *buf,
                     size_t cap)
{
    struct s3 *s = (struct s3 *)st;
    char val[REF_MAX], etag[136];
    int state, rc;
    char *fk = full_key(s, ref);
    if (fk == NULL)
        return wv__seterr(st->err, WV_NOMEM, "out of memory");
    buf[0] = '\0';
    rc = ref_read(s, fk, ref, &state, val, etag, sizeof etag);
    wv__free(fk);
    if (rc != WV_OK)
        return rc;
    if (state != REF_VALUE)
        return wv__seterr(st->err, WV_NOTFOUND, "%s: no ref '%s'", st->uri,
                          ref);
    snprintf(buf, cap, "%s", val);
    return WV_OK;
}

enum { PUT_DONE, PUT_REFUSED, PUT_UNKNOWN };

/* One conditional PUT of a ref; its outcome in *how. Errors that are
 * neither (auth, bucket gone, ...) are returned with a message. */
static int cond_put(struct s3 *s, const char *fk, const char *body,
                    const char *cond, int *how)
{
    struct wv__hreq r;
    int rc;
    char *url = key_url(s, fk, NULL);
    if (url == NULL)
        return wv__seterr(s->base.err, WV_NOMEM, "out of memory");
    memset(&r, 0, sizeof r);
    r.method = "PUT";
    r.url = url;
    r.body = body;
    r.body_len = strlen(body);
    r.hdr[0] = cond;
    r.hdr[1] = acl(s);
    r.flags = WV__HREQ_NO_RETRY_5XX;
    if ((rc = run1(s, &r)) != WV_OK)
        goto out;
    if (ok2xx(&r))
        *how = PUT_DONE;
    else if (r.xerr == 0 && (r.status == 412 || r.status == 404))
        *how = PUT_REFUSED;
    else if (r.xerr != 0 || r.status >= 500 || r.status == 409 ||
             r.status == 429)
        *how = PUT_UNKNOWN;
    else
        rc = s3_fail(s, &r, "PUT", fk);
out:
    wv__hreq_release(&r);
    wv__free(url);
    return rc;
}

static int s_ref_cas(struct wv__store *st, const char *ref,
                     const char *expect, const char *desired)
{
    struct s3 *s = (struct s3 *)st;
    struct wv__err *err = st->err;
    int rc = WV_OK, state, how = PUT_DONE;
    char cur[REF_MAX], etag[136] = "", etag2[136], hdr[200];
    bool have_etag = false;
    char *fk = NULL;
    const char *body = desired ? desired : TOMB;

    WV_CHECK(key_ok(ref), WV_MISUSE, "invalid ref '%.100s'", ref);
    WV_CHECK(desired == NULL || (strlen(desired) < REF_MAX - 1 &&
                                 strcmp(desired, TOMB) != 0),
             WV_MISUSE, "%s: invalid value for ref '%s'", st->uri, ref);
    fk = full_key(s, ref);
    WV_CHECK(fk != NULL, WV_NOMEM, "out of memory");
    if (expect == NULL && desired == NULL) { /* delete what must not be */
        WV_TRY(ref_read(s, fk, ref, &state, cur, etag, sizeof etag));
        WV_CHECK(state != REF_VALUE, WV_CONFLICT,
                 "%s: ref '%s' changed while updating it", st->uri, ref);
        WV_CHECK(0, WV_NOTFOUND, "%s: no ref '%s'", st->uri, ref);
    }
    for (int attempt = 1;; attempt++) {
        WV_CHECK(attempt <= s->cfg.retries, WV_BACKEND,
                 "%s: ref '%s': the server kept failing conditional writes "
                 "(%d attempts)",
                 st->uri, ref, s->cfg.retries);
        if (attempt > 1)
            wv__backoff_sleep(attempt - 1);
        if (expect == NULL && !have_etag) {
            /* Create: atomic if nothing is there. */
            WV_TRY(cond_put(s, fk, body, "If-None-Match: *", &how));
            if (how == PUT_DONE)
                goto out;
            WV_TRY(ref_read(s, fk, ref, &state, cur, etag, sizeof etag));
            if (state == REF_VALUE) {
                WV_CHECK(how == PUT_UNKNOWN && strcmp(cur, desired) == 0,
                         WV_CONFLICT, "%s: ref '%s' exists already", st->uri,
                         ref);
                goto out; /* our write went through */
            }
            if (state == REF_ABSENT)
                continue; /* try the create again */
            have_etag = true; /* a tombstone: replace it, conditionally */
        } else if (!have_etag) {
            WV_TRY(ref_read(s, fk, ref, &state, cur, etag, sizeof etag));
            WV_CHECK(state == REF_VALUE && strcmp(cur, expect) == 0,
                     WV_CONFLICT, "%s: ref '%s' changed while updating it",
                     st->uri, ref);
            have_etag = true;
        }
        WV_CHECK(etag[0] && strlen(etag) < 128, WV_BACKEND,
                 "%s: ref '%s' has no usable ETag", st->uri, ref);
        snprintf(hdr, sizeof hdr, "If-Match: %s", etag);
        WV_TRY(cond_put(s, fk, body, hdr, &how));
        if (how == PUT_DONE)
            goto out;
        WV_CHECK(how != PUT_REFUSED, WV_CONFLICT,
                 "%s: ref '%s' changed while updating it", st->uri, ref);
        /* Unknown outcome: look. */
        WV_TRY(ref_read(s, fk, ref, &state, cur, etag2, sizeof etag2));
        if (desired ? state == REF_VALUE && strcmp(cur, desired) == 0
                    : state == REF_TOMB)
            goto out;
        WV_CHECK(state != REF_ABSENT && strcmp(etag, etag2) == 0,
                 WV_CONFLICT, "%s: ref '%s' changed while updating it",
                 st->uri, ref);
        /* Unchanged: the write did not happen; try it again. */
    }
out:
    wv__free(fk);
    return rc;
}

/* ---- control ------------------------------------------------------------- */

struct sweep_ctx {
    struct s3 *s;
    int64_t min_age;
    time_t now;
    size_t strip;
};

static bool parse_iso(const char *t, time_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h, mi, sec;
    if (t == NULL ||
        sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6)
        return false;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return *out != (time_t)-1;
}

static int sweep_entry(void *arg, const char *const *v)
{
    struct sweep_ctx *c = arg;
    time_t t;
    if (v[0] == NULL || v[1] == NULL || !parse_iso(v[2], &t))
        return WV_OK;
    if (c->now - t >= c->min_age)
        abort_upload(c->s, v[0], v[1]); /* a killed writer's upload */
    return WV_OK;
}

/* Abort multipart uploads under the prefix older than min_age seconds. */
static int sweep(struct s3 *s, int64_t min_age)
{
    int rc = WV_OK;
    char *fp = full_key(s, ""), *q = NULL, *url = NULL;
    char km[1024] = "", um[1024] = "", trunc[16];
    struct wv__hreq r;
    struct sweep_ctx c = {s, min_age, time(NULL), 0};
    static const char *const fields[3] = {"Key", "UploadId", "Initiated"};
    memset(&r, 0, sizeof r);
    if (fp == NULL)
        return wv__seterr(s->base.err, WV_NOMEM, "out of memory");
    for (int page = 0; page < 1000; page++) {
        const char *names[4] = {"uploads", "prefix", "key-marker",
                                "upload-id-marker"};
        const char *vals[4] = {NULL, fp, km, um};
        q = wv__s3_query(names, vals, km[0] ? 4 : 2);
        url = q ? wv__s3_url(&s->cfg, s->bucket, NULL, q) : NULL;
        if (url == NULL) {
            rc = wv__seterr(s->base.err, WV_NOMEM, "out of memory");
            break;
        }
        memset(&r, 0, sizeof r);
        r.method = "GET";
        r.url = url;
        if ((rc = run1(s, &r)) != WV_OK)
            break;
        if (!ok2xx(&r)) {
            rc = s3_fail(s, &r, "listing the multipart uploads of", fp);
            break;
        }
        const char *xml = r.resp.p ? r.resp.p : "";
        if (wv__s3xml_each(xml, r.resp.len, "Upload", fields, 3, sweep_entry,
                           &c) != WV_OK)
            break; /* best effort */
        if (wv__s3xml_field(xml, r.resp.len, "IsTruncated", trunc,
                            sizeof trunc) != WV_OK ||
            strcmp(trunc, "true") != 0 ||
            wv__s3xml_field(xml, r.resp.len, "NextKeyMarker", km,
                            sizeof km) != WV_OK ||
            km[0] == '\0')
            break;
        if (wv__s3xml_field(xml, r.resp.len, "NextUploadIdMarker", um,
                            sizeof um) != WV_OK)
            um[0] = '\0';
        wv__hreq_release(&r);
        wv__free(url);
        wv__free(q);
        url = q = NULL;
    }
    wv__hreq_release(&r);
    wv__free(url);
    wv__free(q);
    wv__free(fp);
    return rc;
}

static int s_control(struct wv__store *st, int op, void *arg)
{
    struct s3 *s = (struct s3 *)st;
    if (op == WV_STORE_SYNC)
        return WV_OK; /* a completed PUT is durable */
    if (op == WV_STORE_COUNT) { /* what went over the wire */
        struct wv__store_count *c = arg;
        wv__http_counts(s->http, &c->requests, &c->bytes_sent,
                        &c->bytes_received);
        return WV_OK;
    }
    if (op == WV_STORE_SWEEP)
        return sweep(s, ((const struct wv__store_sweep *)arg)->min_age);
    if (op == WV_STORE_MTIME) {
        struct wv__store_mtime *m = arg;
        struct wv__hreq r;
        char *fk = full_key(s, m->key);
        if (fk == NULL)
            return wv__seterr(st->err, WV_NOMEM, "out of memory");
        int rc = head(s, fk, &r);
        if (rc == WV_OK) {
            if (r.status == 404 && r.xerr == 0)
                rc = WV_NOTFOUND;
            else if (!ok2xx(&r))
                rc = s3_fail(s, &r, "HEAD", fk);
            else if (r.mtime < 0)
                rc = wv__seterr(st->err, WV_BACKEND,
                                "%s: no Last-Modified for '%s'", st->uri,
                                m->key);
            else
                m->mtime = r.mtime;
        }
        wv__hreq_release(&r);
        wv__free(fk);
        return rc;
    }
    return WV_NOTFOUND;
}

static const struct wv__store_methods s3_methods = {
    3, s_close, s_get, s_put, s_stat, s_del, s_list, s_ref_get, s_ref_cas,
    s_control, NULL, s_get_fd, NULL, NULL,
};

/* ---- open ---------------------------------------------------------------- */

/* Does the bucket exist (and may we use it)? One cheap listing says, with
 * an error code in the body where a HEAD would have none. */
static int check_bucket(struct s3 *s, long *status)
{
    const char *names[2] = {"list-type", "max-keys"}, *vals[2] = {"2", "1"};
    char *q = wv__s3_query(names, vals, 2);
    char *url = q ? wv__s3_url(&s->cfg, s->bucket, NULL, q) : NULL;
    struct wv__hreq r;
    int rc = WV_OK;
    memset(&r, 0, sizeof r);
    *status = 0;
    if (url == NULL) {
        rc = wv__seterr(s->base.err, WV_NOMEM, "out of memory");
        goto out;
    }
    r.method = "GET";
    r.url = url;
    if ((rc = run1(s, &r)) != WV_OK)
        goto out;
    *status = r.status;
    if (ok2xx(&r))
        goto out;
    rc = s3_fail(s, &r, "listing", NULL);
out:
    wv__hreq_release(&r);
    wv__free(url);
    wv__free(q);
    return rc;
}

static int create_bucket(struct s3 *s)
{
    struct wv__hreq r;
    struct wv__buf body = {0};
    int rc = WV_OK;
    char code[64] = "";
    char *url = wv__s3_url(&s->cfg, s->bucket, NULL, NULL);
    memset(&r, 0, sizeof r);
    if (url == NULL)
        return wv__seterr(s->base.err, WV_NOMEM, "out of memory");
    if (!s->cfg.custom_endpoint && strcmp(s->cfg.region, "us-east-1") != 0) {
        wv__buf_adds(&body, "<CreateBucketConfiguration><LocationConstraint>");
        wv__xml_escape(&body, s->cfg.region);
        wv__buf_adds(&body, "</LocationConstraint>"
                            "</CreateBucketConfiguration>");
        if (body.oom) {
            rc = wv__seterr(s->base.err, WV_NOMEM, "out of memory");
            goto out;
        }
    }
    r.method = "PUT";
    r.url = url;
    r.body = body.p;
    r.body_len = body.len;
    if ((rc = run1(s, &r)) != WV_OK || ok2xx(&r))
        goto out;
    if (r.resp.len)
        wv__s3xml_field(r.resp.p, r.resp.len, "Code", code, sizeof code);
    if (r.status == 409 && strcmp(code, "BucketAlreadyOwnedByYou") == 0)
        goto out;
    if (r.status == 409 && strcmp(code, "BucketAlreadyExists") == 0)
        rc = wv__seterr(s->base.err, WV_AUTH,
                        "s3://%s: the bucket exists and belongs to another "
                        "account",
                        s->bucket);
    else
        rc = s3_fail(s, &r, "creating the bucket", NULL);
out:
    wv__hreq_release(&r);
    wv__buf_release(&body);
    wv__free(url);
    return rc;
}

/* The server must refuse a PUT If-None-Match: * on an existing key and a
 * PUT If-Match with a wrong ETag; refs rely on both. */
static int probe_conditional(struct s3 *s)
{
    int rc = WV_OK, how;
    char *fk = full_key(s, PROBE_KEY);
    if (fk == NULL)
        return wv__seterr(s->base.err, WV_NOMEM, "out of memory");
    const char *why = NULL;
    for (int i = 0; i < 2 && rc == WV_OK; i++) {
        rc = cond_put(s, fk, "probe\n", "If-None-Match: *", &how);
        if (rc == WV_OK && i == 1 && how == PUT_DONE)
            why = "If-None-Match: * on an existing object";
    }
    if (rc == WV_OK && why == NULL) {
        rc = cond_put(s, fk, "probe\n",
                      "If-Match: 0123456789abcdef0123456789abcdef", &how);
        if (rc == WV_OK && how == PUT_DONE)
            why = "If-Match with a wrong ETag";
    }
    if (rc == WV_OK && why)
        rc = wv__seterr(s->base.err, WV_UNSUPPORTED,
                        "%s: the server ignores conditional writes (a PUT "
                        "with %s succeeded); refs could not be updated "
                        "safely, so it is refused",
                        s->base.uri, why);
    if (rc == WV_OK) { /* leave nothing behind */
        struct wv__hreq r;
        char *url = key_url(s, fk, NULL);
        memset(&r, 0, sizeof r);
        if (url) {
            r.method = "DELETE";
            r.url = url;
            wv__http_run(s->http, &r, 1, 1);
        }
        wv__hreq_release(&r);
        wv__free(url);
    }
    wv__free(fk);
    return rc;
}

static int s_open(const char *uri, const char *rest, bool create,
                  struct wv__err *err, struct wv__store **out)
{
    int rc = WV_OK;
    long status;
    *out = NULL;
    struct s3 *s = wv__calloc(1, sizeof *s);
    if (s == NULL)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    s->base.methods = &s3_methods;
    s->base.err = err;
    s->base.uri = uri;
    WV_TRY(wv__s3_split(rest, &s->bucket, &s->prefix, err));
    WV_TRY(wv__s3cfg_load(&s->cfg, uri, err));
    WV_CHECK(s->cfg.access_key != NULL, WV_AUTH,
             "%s: no S3 credentials: set AWS_ACCESS_KEY_ID and "
             "AWS_SECRET_ACCESS_KEY, or add a profile '%s' to "
             "~/.aws/credentials",
             uri, s->cfg.profile);
    if (s->cfg.acl[0])
        snprintf(s->acl_hdr, sizeof s->acl_hdr, "x-amz-acl: %s", s->cfg.acl);
    WV_TRY(wv__http_new(&s->cfg, &s->cfg, err, &s->http));
    rc = check_bucket(s, &status);
    if (rc == WV_NOTFOUND && status == 404) {
        if (!create) {
            wv__clearerr(err);
            WV_CHECK(0, WV_NOTFOUND, "s3://%s: no such bucket", s->bucket);
        }
        wv__clearerr(err);
        rc = create_bucket(s);
    }
    WV_TRY(rc);
    if (create)
        WV_TRY(probe_conditional(s));
out:
    if (rc != WV_OK) {
        s_close(&s->base);
        s = NULL;
    }
    *out = s ? &s->base : NULL;
    return rc;
}

const struct wv__backend wv__backend_s3 = {"s3", s_open};
