/*
 * http.h -- the HTTP engine (libcurl) under the S3 backend and the remote
 * object reader, S3 configuration from the AWS environment, and the
 * bounded parser of S3's XML responses.
 *
 * Nothing here exposes libcurl: <curl/curl.h> is included by the .c files
 * only. Three layers:
 *
 *  - configuration (struct wv__s3cfg): endpoint, region, credentials,
 *    addressing and tuning, resolved the way the AWS tools do it from the
 *    environment and the shared config/credentials files;
 *  - an engine (struct wv__http) that runs batches of requests over a pool
 *    of libcurl multi handles, in parallel, with retries (exponential
 *    backoff with full jitter), SigV4 signing and a budget of bytes in
 *    flight shared by every thread using the engine;
 *  - the read-only remote object (struct wv__robj) for s3:// and
 *    http(s):// URLs: size from HEAD, ranged GETs straight into the
 *    caller's buffer.
 *
 * Secrets (the secret key, the session token) are handed to libcurl as
 * options and never appear in a URL or a message.
 */
#ifndef WV_HTTP_H
#define WV_HTTP_H

#include "core.h"

/* ---- configuration ------------------------------------------------------- */

#define WV__S3_MIN_PART ((size_t)5 << 20)
#define WV__S3_MAX_PART ((size_t)5 << 30)

struct wv__s3cfg {
    char *endpoint;      /* "https://s3.us-east-1.amazonaws.com", no '/' at
                            the end                                        */
    char *region;        /* "us-east-1"                                   */
    char *access_key;    /* NULL when none was found                      */
    char *secret_key;
    char *session_token; /* NULL unless set                                */
    char *ca_bundle;     /* NULL: the system's CAs                         */
    char *profile;       /* the profile the files were read for           */
    bool custom_endpoint;/* from the environment or a profile             */
    bool path_style;     /* bucket in the path, not in the host name      */
    bool addressing_set; /* by WV_S3_ADDRESSING (else a bucket name with
                            '.' is addressed path-style: it cannot match
                            a wildcard TLS certificate)                  */
    size_t part_size;    /* ranged GET and multipart part size            */
    int concurrency;     /* parallel transfers per call                   */
    size_t max_inflight; /* bytes of transfers in flight, all threads     */
    int retries;         /* attempts per request, at least 1              */
    char acl[48];        /* canned ACL of written objects ("" for none)   */
};

/* Resolve the configuration from the environment (AWS_ENDPOINT_URL_S3,
 * AWS_ENDPOINT_URL, AWS_REGION, AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_PROFILE,
 * AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE, AWS_CA_BUNDLE,
 * WV_S3_ADDRESSING, WV_S3_PART_SIZE, WV_S3_CONCURRENCY, WV_S3_MAX_INFLIGHT,
 * WV_S3_RETRIES, WV_S3_ACL) and the profile's sections of
 * ~/.aws/credentials and ~/.aws/config. `what` names the subject in
 * messages ("s3://b/p"). Missing credentials are not an error here
 * (access_key stays NULL): the caller decides whether it needs them.
 * WV_MISUSE for a bad setting, WV_NOMEM. */
int wv__s3cfg_load(struct wv__s3cfg *c, const char *what,
                   struct wv__err *err);
void wv__s3cfg_release(struct wv__s3cfg *c);

/* The value of `key` in section `section` of an INI text (the AWS files:
 * "[name]" headers, "key = value" lines, '#' and ';' comments). With `sub`
 * the key is looked up in the indented block under "sub =" (the AWS
 * config's per-service settings: "s3 =\n  endpoint_url = ..."). Returns 1
 * and the trimmed value in out (truncated to cap-1), 0 if absent. */
int wv__ini_get(const char *text, size_t len, const char *section,
                const char *sub, const char *key, char *out, size_t cap);

/* Split the part after "s3://" into a bucket and a key prefix without
 * slashes at either end (wv__malloc()ed; the prefix may be ""). WV_MISUSE
 * for an invalid bucket name. */
int wv__s3_split(const char *rest, char **bucket, char **prefix,
                 struct wv__err *err);

/* Append s percent-encoded the way SigV4 wants it: every byte but
 * A-Z a-z 0-9 - . _ ~ (and '/' when keep_slash) becomes %XX. */
void wv__uri_encode(struct wv__buf *b, const char *s, bool keep_slash);

/* The URL of `key` (NULL: the bucket itself) in `bucket`, path-style or
 * virtual-hosted as c says, with an optional canonical query string
 * (already sorted and encoded; see wv__s3_query). wv__malloc()ed, NULL
 * when out of memory. */
char *wv__s3_url(const struct wv__s3cfg *c, const char *bucket,
                 const char *key, const char *query);

/* A canonical query string from n name/value pairs (value NULL: ""):
 * sorted by name, each encoded, '=' always present, as SigV4 signs it
 * (libcurl 7.88 signs the query exactly as given). wv__malloc()ed. */
char *wv__s3_query(const char *const *names, const char *const *values,
                   size_t n);

/* Full-jitter backoff before retry number `attempt` (1 = the first retry):
 * uniform in [0, min(10 s, 100 ms * 2^(attempt-1))], from the random
 * 64-bit value rnd. In milliseconds. */
uint64_t wv__backoff_ms(int attempt, uint64_t rnd);

/* Whether an HTTP status or S3 error code is worth another attempt:
 * 5xx, 429, 408 and S3's RequestTimeout/SlowDown/InternalError. */
bool wv__http_status_retryable(long status, const char *s3code);
/* Sleep wv__backoff_ms(attempt, <random>) milliseconds. */
void wv__backoff_sleep(int attempt);

/* ---- the engine ---------------------------------------------------------- */

enum {
    WV__HREQ_UNSIGNED = 1u,     /* no SigV4 (plain http/https)            */
    WV__HREQ_NO_RETRY_5XX = 2u, /* the caller handles 5xx itself          */
    WV__HREQ_FOLLOW = 4u,       /* follow redirects (unsigned only)       */
};

/* One request. The caller fills the inputs; wv__http_run fills the
 * results. Memory named by the inputs must outlive the run. */
struct wv__hreq {
    /* inputs */
    const char *method; /* "GET", "HEAD", "PUT", "POST", "DELETE"       */
    const char *url;
    const char *hdr[4]; /* extra headers ("If-Match: x"), NULL ends     */
    const void *body;   /* PUT/POST payload (not copied)                */
    size_t body_len;
    void *dst;          /* a 2xx response body goes here ...            */
    size_t dst_cap;     /* ... up to this many bytes                    */
    bool to_fd;         /* ... or, with dst NULL, to file dst_fd, at
                           dst_fd_off (pwrite, as it arrives)           */
    int dst_fd;
    uint64_t dst_fd_off;
    bool ranged;        /* send "Range: bytes=off-(off+len-1)"          */
    uint64_t range_off;
    size_t range_len;
    unsigned flags;
    /* results */
    long status;        /* HTTP status of the last attempt; 0: none     */
    int attempts;
    size_t got;         /* bytes written to dst (or dst_fd)             */
    int fd_errno;       /* writing to dst_fd failed (xerr is set too)   */
    struct wv__buf resp;/* any other body (XML), at most 8 MiB          */
    char etag[136];     /* as sent, quotes included                     */
    bool has_total;     /* total object size from Content-Range         */
    uint64_t total;
    int64_t clen;       /* Content-Length, -1 if unknown                */
    int64_t mtime;      /* Last-Modified (seconds since 1970), -1       */
    bool range_ignored; /* 200 with the whole object to a Range request */
    int xerr;           /* transport failure: 0, or a CURLcode          */
    bool too_big;       /* ... because the reply outgrew its limit      */
    char xmsg[160];     /* its description ("Connection refused")       */
};
/* Release what a run left in r (the response buffer). */
void wv__hreq_release(struct wv__hreq *r);

struct wv__http;

/* An engine. `sign` NULL makes an unsigned engine (http/https objects);
 * otherwise requests are signed with its credentials unless flagged
 * WV__HREQ_UNSIGNED. The configuration is copied. */
int wv__http_new(const struct wv__s3cfg *sign, const struct wv__s3cfg *tune,
                 struct wv__err *err, struct wv__http **out);
void wv__http_free(struct wv__http *h);

/* Run n requests, at most `concurrency` at once (0: the engine's), each
 * retried on transport failures and retryable statuses. WV_OK when every
 * request has its final outcome in its results (which may be an HTTP
 * error or a transport failure); WV_NOMEM if the engine could not run
 * them or keep a response body. Thread-safe: calls from many threads share connections through a
 * pool of multi handles and one budget of bytes in flight. */
int wv__http_run(struct wv__http *h, struct wv__hreq *reqs, size_t n,
                 int concurrency);
/* The requests this engine has sent (every attempt, retries included)
 * and the body bytes it sent and received, since it was made. */
void wv__http_counts(struct wv__http *h, uint64_t *requests,
                     uint64_t *sent, uint64_t *received);

/* ---- S3 XML responses (s3xml.c) ------------------------------------------ */

/* All three parse the whole document (bounded: 8 MiB, depth 32, each text
 * at most 4096 bytes once unescaped) and return WV_CORRUPT if it is not
 * well-formed XML of the subset S3 writes (no DOCTYPE, no CDATA). */

/* The name of the root element. */
int wv__s3xml_root(const char *xml, size_t len, char *name, size_t cap);
/* The unescaped text of the first child of the root named `name`;
 * WV_NOTFOUND if there is none, WV_RANGE if longer than cap-1. */
int wv__s3xml_field(const char *xml, size_t len, const char *name,
                    char *out, size_t cap);
/* For each child of the root named `elem`, cb gets the unescaped texts of
 * its children named fields[0..n_fields) (NULL where absent; n_fields at
 * most 8). A non-zero return from cb stops and is returned. */
int wv__s3xml_each(const char *xml, size_t len, const char *elem,
                   const char *const *fields, size_t n_fields,
                   int (*cb)(void *arg, const char *const *vals),
                   void *arg);
/* Append s with & < > " ' escaped. */
void wv__xml_escape(struct wv__buf *b, const char *s);

/* ---- remote objects ------------------------------------------------------ */

struct wv__robj;
/* Open s3://bucket/key (signed, configured as above) or an http:// or
 * https:// URL (unsigned; redirects followed); HEAD gives the size.
 * WV_NOTFOUND, WV_AUTH, WV_BACKEND with a message in err. */
int wv__robj_open(const char *url, struct wv__err *err,
                  struct wv__robj **out);
uint64_t wv__robj_size(const struct wv__robj *o);
/* Read [off, off+len) into buf: parallel ranged GETs for large reads.
 * Reading past the size is WV_IO_SHORT_READ. Thread-safe. */
int wv__robj_read(struct wv__robj *o, uint64_t off, void *buf, size_t len,
                  struct wv__err *err);
void wv__robj_close(struct wv__robj *o);

#endif
