/*
 * http.c -- S3 configuration, URLs, and the libcurl engine that runs
 * batches of HTTP requests in parallel with retries; the remote object
 * reader (wv__robj) for s3:// and http(s):// URLs.
 *
 * Engine. A call to wv__http_run takes a multi handle from the engine's
 * pool (each keeps its own connection cache, so connections are reused
 * across calls without sharing one cache between threads, which libcurl
 * does not support), starts up to `concurrency` transfers, and schedules
 * a failed attempt again after a full-jitter backoff. Only DNS and TLS
 * sessions are shared (a curl share handle with one mutex per kind).
 * The sockets of each multi handle's connections are known to it, so that
 * what arrives on them is acknowledged at once (conn_ack: no 40 ms
 * delayed-ACK stall against a server that writes a reply in two pieces).
 * Bodies are never copied by us: uploads are read by libcurl from the
 * caller's buffer, downloads written straight to their place in the
 * caller's buffer. A budget of bytes in flight (WV_S3_MAX_INFLIGHT) is
 * shared by all threads: a transfer starts only when its bytes fit, or
 * when its call has nothing else in flight (so no call waits while
 * holding budget, and none can starve).
 *
 * Retries: transport failures that may be transient (refused, reset,
 * timed out, nothing received), 5xx, 429, 408 and S3's RequestTimeout,
 * up to cfg.retries attempts, and once a signed (S3) request's 400 that
 * carries no S3 error (a stray reply on a reused connection); a retry
 * after a transport failure or that 400 takes a fresh connection. A request flagged WV__HREQ_NO_RETRY_5XX
 * (a conditional ref write whose outcome is unknown after a 500 or a
 * dropped connection) is handed back to the caller instead, which
 * re-reads.
 */
#include "core.h"
#include "http.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>

#define RESP_MAX ((size_t)8 << 20)
#define DEFAULT_PART ((size_t)16 << 20)
#define DEFAULT_INFLIGHT ((size_t)256 << 20)

/* ---- small helpers ------------------------------------------------------- */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? wv__strdup(s) : NULL;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t rnd64(void)
{
    static __thread uint64_t s;
    if (s == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
            ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&s;
        if (s == 0)
            s = 0x9e3779b97f4a7c15ull;
    }
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
}

uint64_t wv__backoff_ms(int attempt, uint64_t rnd)
{
    uint64_t cap = 100;
    for (int i = 1; i < attempt && cap < 10000; i++)
        cap *= 2;
    if (cap > 10000)
        cap = 10000;
    return rnd % (cap + 1);
}

void wv__backoff_sleep(int attempt)
{
    uint64_t ms = wv__backoff_ms(attempt, rnd64());
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

bool wv__http_status_retryable(long status, const char *s3code)
{
    if (status >= 500 || status == 429 || status == 408)
        return true;
    return s3code && (strcmp(s3code, "RequestTimeout") == 0 ||
                      strcmp(s3code, "SlowDown") == 0 ||
                      strcmp(s3code, "ConditionalRequestConflict") == 0 ||
                      strcmp(s3code, "InternalError") == 0);
}

/* Read a small file whole (bounded); NULL if missing or unreadable, and
 * *oom set if memory ran out. */
static char *read_small(const char *path, size_t *len, bool *oom)
{
    char *p = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size > (1 << 20))
        goto out;
    p = wv__malloc((size_t)st.st_size + 1);
    if (p == NULL) {
        *oom = true;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    p[got] = '\0';
    *len = got;
out:
    close(fd);
    return p;
}

/* ---- INI files ----------------------------------------------------------- */

static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t' || **s == '\r'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t' ||
                       (*e)[-1] == '\r'))
        (*e)--;
}

static bool span_is(const char *s, const char *e, const char *want)
{
    return (size_t)(e - s) == strlen(want) && memcmp(s, want, e - s) == 0;
}

/* "[ profile  name ]" matches "profile name": words compared one by one. */
static bool section_is(const char *s, const char *e, const char *want)
{
    for (;;) {
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (*want == ' ')
            want++;
        if (s == e || *want == '\0')
            return s == e && *want == '\0';
        while (s < e && *s != ' ' && *s != '\t' && *want && *want != ' ') {
            if (*s != *want)
                return false;
            s++;
            want++;
        }
        if ((s < e && *s != ' ' && *s != '\t') || (*want && *want != ' '))
            return false;
    }
}

int wv__ini_get(const char *text, size_t len, const char *section,
                const char *sub, const char *key, char *out, size_t cap)
{
    const char *p = text, *end = text + len;
    bool in_sec = false, in_sub = false;
    while (p < end) {
        const char *ls = p, *le = memchr(p, '\n', (size_t)(end - p));
        if (le == NULL)
            le = end;
        p = le < end ? le + 1 : end;
        bool indented = ls < le && (*ls == ' ' || *ls == '\t');
        trim(&ls, &le);
        if (ls == le || *ls == '#' || *ls == ';')
            continue;
        if (*ls == '[') {
            in_sub = false;
            in_sec = le[-1] == ']' && le - ls >= 2 &&
                     section_is(ls + 1, le - 1, section);
            continue;
        }
        if (!in_sec)
            continue;
        const char *eq = memchr(ls, '=', (size_t)(le - ls));
        if (eq == NULL)
            continue;
        const char *ks = ls, *ke = eq, *vs = eq + 1, *ve = le;
        trim(&ks, &ke);
        trim(&vs, &ve);
        if (!indented) {
            in_sub = sub && span_is(ks, ke, sub) && vs == ve;
            if (sub || !span_is(ks, ke, key))
                continue;
        } else if (!(sub && in_sub && span_is(ks, ke, key))) {
            continue;
        }
        if (cap == 0)
            return 1;
        size_t n = (size_t)(ve - vs) < cap - 1 ? (size_t)(ve - vs) : cap - 1;
        memcpy(out, vs, n);
        out[n] = '\0';
        return 1;
    }
    return 0;
}

/* ---- configuration ------------------------------------------------------- */

void wv__s3cfg_release(struct wv__s3cfg *c)
{
    if (c == NULL)
        return;
    wv__free(c->endpoint);
    wv__free(c->region);
    wv__free(c->access_key);
    if (c->secret_key) {
        memset(c->secret_key, 0, strlen(c->secret_key));
        wv__free(c->secret_key);
    }
    if (c->session_token) {
        memset(c->session_token, 0, strlen(c->session_token));
        wv__free(c->session_token);
    }
    wv__free(c->ca_bundle);
    wv__free(c->profile);
    memset(c, 0, sizeof *c);
}

static int env_int(const char *name, long lo, long hi, long def, long *out,
                   const char *what, struct wv__err *err)
{
    const char *v = env(name);
    *out = def;
    if (v == NULL)
        return WV_OK;
    char *e;
    errno = 0;
    long n = strtol(v, &e, 10);
    if (e == v || *e != '\0' || errno != 0 || n < lo || n > hi)
        return wv__seterr(err, WV_MISUSE,
                          "%s: %s must be a number from %ld to %ld", what,
                          name, lo, hi);
    *out = n;
    return WV_OK;
}

static int env_size(const char *name, uint64_t lo, uint64_t hi, uint64_t def,
                    uint64_t *out, const char *what, struct wv__err *err)
{
    const char *v = env(name);
    *out = def;
    if (v == NULL)
        return WV_OK;
    if (!wv__parse_size(v, out) || *out < lo || *out > hi)
        return wv__seterr(err, WV_MISUSE,
                          "%s: %s must be a size from %llu to %llu bytes "
                          "(suffixes K, M, G allowed)",
                          what, name, (unsigned long long)lo,
                          (unsigned long long)hi);
    return WV_OK;
}

/* The path of an AWS file: $OVERRIDE, else $HOME/rel; NULL if neither
 * (*oom set if memory ran out). */
static char *home_file(const char *override, const char *rel, bool *oom)
{
    const char *o = env(override), *home = env("HOME");
    char *p = NULL;
    if (o) {
        p = wv__strdup(o);
    } else if (home) {
        size_t n = strlen(home) + strlen(rel) + 2;
        if ((p = wv__malloc(n)) != NULL)
            snprintf(p, n, "%s/%s", home, rel);
    } else {
        return NULL;
    }
    if (p == NULL)
        *oom = true;
    return p;
}

int wv__s3cfg_load(struct wv__s3cfg *c, const char *what, struct wv__err *err)
{
    int rc = WV_OK;
    char *cred_path = NULL, *conf_path = NULL, *cred = NULL, *conf = NULL;
    size_t cred_len = 0, conf_len = 0;
    char sec[300], val[1024], key_id[256] = "", secret[256] = "",
         token[4096] = "";
    const char *v;
    bool have = false;

    memset(c, 0, sizeof *c);
    const char *profile = env("AWS_PROFILE");
    if (profile == NULL)
        profile = "default";
    WV_CHECK(strlen(profile) < 200, WV_MISUSE, "%s: AWS_PROFILE is too long",
             what);
    c->profile = wv__strdup(profile);
    bool oom = c->profile == NULL;
    cred_path = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials",
                          &oom);
    conf_path = home_file("AWS_CONFIG_FILE", ".aws/config", &oom);
    if (cred_path)
        cred = read_small(cred_path, &cred_len, &oom);
    if (conf_path)
        conf = read_small(conf_path, &conf_len, &oom);
    WV_CHECK(!oom, WV_NOMEM, "out of memory");
    if (strcmp(profile, "default") == 0)
        snprintf(sec, sizeof sec, "default");
    else
        snprintf(sec, sizeof sec, "profile %s", profile);
#define CONF(sub, k) (conf && wv__ini_get(conf, conf_len, sec, sub, k, val, \
                                          sizeof val) && val[0])

    /* Region. */
    if ((v = env("AWS_REGION")) || (v = env("AWS_DEFAULT_REGION")))
        c->region = wv__strdup(v);
    else if (CONF(NULL, "region"))
        c->region = wv__strdup(val);
    else
        c->region = wv__strdup("us-east-1");
    WV_CHECK(c->region != NULL, WV_NOMEM, "out of memory");
    for (const char *q = c->region; *q; q++)
        WV_CHECK((*q >= 'a' && *q <= 'z') || (*q >= '0' && *q <= '9') ||
                     *q == '-',
                 WV_MISUSE, "%s: invalid AWS region '%.40s'", what,
                 c->region);

    /* Endpoint. */
    c->custom_endpoint = true;
    if ((v = env("AWS_ENDPOINT_URL_S3")) || (v = env("AWS_ENDPOINT_URL")))
        c->endpoint = wv__strdup(v);
    else if (CONF("s3", "endpoint_url") || CONF(NULL, "endpoint_url"))
        c->endpoint = wv__strdup(val);
    else {
        c->custom_endpoint = false;
        size_t n = strlen(c->region) + 40;
        c->endpoint = wv__malloc(n);
        if (c->endpoint)
            snprintf(c->endpoint, n, "https://s3.%s.amazonaws.com",
                     c->region);
    }
    WV_CHECK(c->endpoint != NULL, WV_NOMEM, "out of memory");
    {
        size_t n = strlen(c->endpoint);
        while (n > 0 && c->endpoint[n - 1] == '/')
            c->endpoint[--n] = '\0';
        bool scheme_ok = strncmp(c->endpoint, "http://", 7) == 0 ||
                         strncmp(c->endpoint, "https://", 8) == 0;
        bool clean = true;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)c->endpoint[i] <= ' ' ||
                c->endpoint[i] == '?' || c->endpoint[i] == '#' ||
                c->endpoint[i] == '@')
                clean = false;
        WV_CHECK(scheme_ok && clean && n > 8, WV_MISUSE,
                 "%s: the S3 endpoint must be an http:// or https:// URL "
                 "without credentials, query or spaces",
                 what);
    }

    /* Addressing. */
    c->path_style = c->custom_endpoint;
    if ((v = env("WV_S3_ADDRESSING"))) {
        WV_CHECK(strcmp(v, "path") == 0 || strcmp(v, "virtual") == 0,
                 WV_MISUSE, "%s: WV_S3_ADDRESSING must be 'path' or "
                            "'virtual'",
                 what);
        c->path_style = strcmp(v, "path") == 0;
        c->addressing_set = true;
    }

    /* Credentials: the environment, else the profile. */
    const char *ek = env("AWS_ACCESS_KEY_ID");
    const char *es = env("AWS_SECRET_ACCESS_KEY");
    WV_CHECK((ek == NULL) == (es == NULL), WV_AUTH,
             "%s: %s is set but %s is not", what,
             ek ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
             ek ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
    if (ek) {
        snprintf(key_id, sizeof key_id, "%s", ek);
        snprintf(secret, sizeof secret, "%s", es);
        if ((v = env("AWS_SESSION_TOKEN")))
            snprintf(token, sizeof token, "%s", v);
        have = true;
    } else {
        const char *files[2] = {cred, conf};
        size_t lens[2] = {cred_len, conf_len};
        const char *secs[2] = {profile, sec};
        for (int f = 0; f < 2 && !have; f++) {
            if (files[f] == NULL)
                continue;
            if (wv__ini_get(files[f], lens[f], secs[f], NULL,
                            "aws_access_key_id", key_id, sizeof key_id) &&
                key_id[0] &&
                wv__ini_get(files[f], lens[f], secs[f], NULL,
                            "aws_secret_access_key", secret,
                            sizeof secret) &&
                secret[0]) {
                have = true;
                if (!wv__ini_get(files[f], lens[f], secs[f], NULL,
                                 "aws_session_token", token, sizeof token))
                    token[0] = '\0';
            }
        }
    }
    if (have) {
        c->access_key = wv__strdup(key_id);
        c->secret_key = wv__strdup(secret);
        WV_CHECK(c->access_key && c->secret_key, WV_NOMEM, "out of memory");
        if (token[0]) {
            c->session_token = wv__strdup(token);
            WV_CHECK(c->session_token, WV_NOMEM, "out of memory");
        }
        for (const char *q = token; *q; q++)
            WV_CHECK((unsigned char)*q > ' ' && *q != 0x7f, WV_MISUSE,
                     "%s: the session token holds invalid characters",
                     what);
    }

    if ((v = env("AWS_CA_BUNDLE")) || (CONF(NULL, "ca_bundle") && (v = val))) {
        c->ca_bundle = wv__strdup(v);
        WV_CHECK(c->ca_bundle != NULL, WV_NOMEM, "out of memory");
    }

    /* Tuning. */
    uint64_t u;
    long l;
    WV_TRY(env_size("WV_S3_PART_SIZE", WV__S3_MIN_PART, WV__S3_MAX_PART,
                    DEFAULT_PART, &u, what, err));
    c->part_size = (size_t)u;
    WV_TRY(env_int("WV_S3_CONCURRENCY", 1, 64, 8, &l, what, err));
    c->concurrency = (int)l;
    WV_TRY(env_size("WV_S3_MAX_INFLIGHT", WV__S3_MIN_PART,
                    (uint64_t)1 << 40, DEFAULT_INFLIGHT, &u, what, err));
    c->max_inflight = (size_t)u;
    WV_TRY(env_int("WV_S3_RETRIES", 1, 20, 6, &l, what, err));
    c->retries = (int)l;
    /* Objects another account writes into the bucket stay readable by its
     * owner (RGW gives the writer ownership). "none" sends no ACL. */
    v = getenv("WV_S3_ACL");
    if (v == NULL)
        v = "bucket-owner-full-control";
    else if (strcmp(v, "none") == 0)
        v = "";
    WV_CHECK(strlen(v) < sizeof c->acl &&
                 strspn(v, "abcdefghijklmnopqrstuvwxyz-") == strlen(v),
             WV_MISUSE, "%s: WV_S3_ACL must be a canned ACL (such as "
                        "bucket-owner-full-control) or 'none'",
             what);
    snprintf(c->acl, sizeof c->acl, "%s", v);
#undef CONF
out:
    memset(secret, 0, sizeof secret);
    memset(token, 0, sizeof token);
    if (cred) {
        memset(cred, 0, cred_len);
        wv__free(cred);
    }
    if (conf) {
        memset(conf, 0, conf_len);
        wv__free(conf);
    }
    wv__free(cred_path);
    wv__free(conf_path);
    if (rc != WV_OK)
        wv__s3cfg_release(c);
    return rc;
}

/* ---- URLs ---------------------------------------------------------------- */

static bool bucket_ok(const char *b, size_t n)
{
    if (n < 3 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = b[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || (ch >= 'A' && ch <= 'Z') ||
              ch == '_'))
            return false;
    }
    return b[0] != '-' && b[0] != '.' && b[n - 1] != '-' && b[n - 1] != '.';
}

int wv__s3_split(const char *rest, char **bucket, char **prefix,
                 struct wv__err *err)
{
    *bucket = *prefix = NULL;
    const char *slash = strchr(rest, '/');
    size_t bl = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!bucket_ok(rest, bl))
        return wv__seterr(err, WV_MISUSE,
                          "s3://%.80s: invalid bucket name '%.*s'", rest,
                          (int)(bl > 63 ? 63 : bl), rest);
    const char *p = slash ? slash + 1 : "";
    while (*p == '/')
        p++;
    size_t pl = strlen(p);
    while (pl > 0 && p[pl - 1] == '/')
        pl--;
    for (size_t i = 0; i < pl; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return wv__seterr(err, WV_MISUSE,
                              "s3://%.80s: control characters in the path",
                              rest);
    if (pl > 900)
        return wv__seterr(err, WV_MISUSE, "s3://%.80s...: path too long",
                          rest);
    *bucket = wv__strndup(rest, bl);
    *prefix = wv__strndup(p, pl);
    if (*bucket == NULL || *prefix == NULL) {
        wv__free(*bucket);
        wv__free(*prefix);
        *bucket = *prefix = NULL;
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    return WV_OK;
}

void wv__uri_encode(struct wv__buf *b, const char *s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
            ch == '_' || ch == '~' || (ch == '/' && keep_slash)) {
            wv__buf_addc(b, (char)ch);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            wv__buf_add(b, e, 3);
        }
    }
}

char *wv__s3_url(const struct wv__s3cfg *c, const char *bucket,
                 const char *key, const char *query)
{
    struct wv__buf b = {0};
    if (c->path_style || (!c->addressing_set && strchr(bucket, '.'))) {
        wv__buf_adds(&b, c->endpoint);
        wv__buf_addc(&b, '/');
        wv__uri_encode(&b, bucket, false);
        if (key) {
            wv__buf_addc(&b, '/');
            wv__uri_encode(&b, key, true);
        }
    } else {
        const char *ep = c->endpoint;
        const char *auth = strstr(ep, "://") + 3;
        const char *path = strchr(auth, '/');
        if (path == NULL)
            path = auth + strlen(auth);
        wv__buf_add(&b, ep, (size_t)(auth - ep));
        wv__uri_encode(&b, bucket, false);
        wv__buf_addc(&b, '.');
        wv__buf_add(&b, auth, (size_t)(path - auth));
        wv__buf_adds(&b, path);
        wv__buf_addc(&b, '/');
        if (key)
            wv__uri_encode(&b, key, true);
    }
    if (query && query[0]) {
        wv__buf_addc(&b, '?');
        wv__buf_adds(&b, query);
    }
    if (b.oom) {
        wv__buf_release(&b);
        return NULL;
    }
    if (b.p == NULL)
        return wv__strdup("");
    return b.p;
}

char *wv__s3_query(const char *const *names, const char *const *values,
                   size_t n)
{
    size_t ord[8];
    struct wv__buf b = {0};
    if (n > 8)
        return NULL;
    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    for (size_t i = 1; i < n; i++) /* insertion sort by name */
        for (size_t j = i; j > 0 && strcmp(names[ord[j - 1]],
                                           names[ord[j]]) > 0;
             j--) {
            size_t t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        if (i)
            wv__buf_addc(&b, '&');
        wv__uri_encode(&b, names[ord[i]], false);
        wv__buf_addc(&b, '=');
        if (values[ord[i]])
            wv__uri_encode(&b, values[ord[i]], false);
    }
    if (b.oom) {
        wv__buf_release(&b);
        return NULL;
    }
    return b.p ? b.p : wv__strdup("");
}

/* ---- the engine ---------------------------------------------------------- */

/* A multi handle and the sockets of the connections it opened (its own
 * connection cache holds them; see conn_ack). */
#define MC_FDS 160 /* > 64 transfers + 68 cached connections */
struct mconn {
    CURLM *m;
    curl_socket_t fd[MC_FDS];
    size_t n_fd;
    bool ack; /* a reply's status line arrived since the last conn_ack */
};

struct wv__http {
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    pthread_mutex_t mu; /* pool and budget */
    pthread_cond_t cv;
    struct mconn **pool;
    size_t n_pool, cap_pool;
    size_t inflight, max_inflight;
    bool sign;
    char sigv4[96];
    char *user, *pass;
    char *token_hdr;
    char *ca_bundle;
    int concurrency, retries;
    /* Requests sent (every attempt) and body bytes moved, for
     * wv__http_counts (atomics: runs on many threads share an engine). */
    uint64_t n_requests, n_sent, n_received;
};

struct xfer {
    struct wv__http *h;
    struct mconn *mc;
    struct wv__hreq *rq;
    CURL *e;
    struct curl_slist *hdrs;
    size_t up_off;
    size_t budget;
    uint64_t due;
    bool active, done, enough, too_big;
    char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc;

static void global_init(void)
{
    g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *e, curl_lock_data d, curl_lock_access a,
                       void *u)
{
    struct wv__http *h = u;
    (void)e;
    (void)a;
    pthread_mutex_lock(&h->share_mu[(int)d % CURL_LOCK_DATA_LAST]);
}

static void share_unlock(CURL *e, curl_lock_data d, void *u)
{
    struct wv__http *h = u;
    (void)e;
    pthread_mutex_unlock(&h->share_mu[(int)d % CURL_LOCK_DATA_LAST]);
}

void wv__http_counts(struct wv__http *h, uint64_t *requests,
                     uint64_t *sent, uint64_t *received)
{
    *requests = __atomic_load_n(&h->n_requests, __ATOMIC_RELAXED);
    *sent = __atomic_load_n(&h->n_sent, __ATOMIC_RELAXED);
    *received = __atomic_load_n(&h->n_received, __ATOMIC_RELAXED);
}

static void mconn_free(struct mconn *mc)
{
    if (mc == NULL)
        return;
    if (mc->m)
        curl_multi_cleanup(mc->m); /* closes its sockets: sock_close */
    wv__free(mc);
}

void wv__http_free(struct wv__http *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n_pool; i++)
        mconn_free(h->pool[i]);
    wv__free(h->pool);
    if (h->share)
        curl_share_cleanup(h->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&h->share_mu[i]);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    wv__free(h->user);
    if (h->pass) {
        memset(h->pass, 0, strlen(h->pass));
        wv__free(h->pass);
    }
    if (h->token_hdr) {
        memset(h->token_hdr, 0, strlen(h->token_hdr));
        wv__free(h->token_hdr);
    }
    wv__free(h->ca_bundle);
    wv__free(h);
}

int wv__http_new(const struct wv__s3cfg *sign, const struct wv__s3cfg *tune,
                 struct wv__err *err, struct wv__http **out)
{
    *out = NULL;
    pthread_once(&g_once, global_init);
    if (g_init_rc != CURLE_OK)
        return wv__seterr(err, WV_BACKEND, "cannot initialise libcurl: %s",
                          curl_easy_strerror(g_init_rc));
    struct wv__http *h = wv__calloc(1, sizeof *h);
    if (h == NULL)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&h->share_mu[i], NULL);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->concurrency = tune ? tune->concurrency : 8;
    h->retries = tune ? tune->retries : 6;
    h->max_inflight = tune ? tune->max_inflight : DEFAULT_INFLIGHT;
    const char *ca = sign ? sign->ca_bundle : tune ? tune->ca_bundle : NULL;
    bool oom = false;
    if (ca && (h->ca_bundle = wv__strdup(ca)) == NULL)
        oom = true;
    if (sign) {
        h->sign = true;
        snprintf(h->sigv4, sizeof h->sigv4, "aws:amz:%s:s3", sign->region);
        h->user = dup_or_null(sign->access_key);
        h->pass = dup_or_null(sign->secret_key);
        if (!h->user || !h->pass)
            oom = true;
        if (sign->session_token) {
            size_t n = strlen(sign->session_token) + 32;
            h->token_hdr = wv__malloc(n);
            if (h->token_hdr)
                snprintf(h->token_hdr, n, "x-amz-security-token: %s",
                         sign->session_token);
            else
                oom = true;
        }
    }
    h->share = curl_share_init();
    if (h->share == NULL || oom) {
        wv__http_free(h);
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(h->share, CURLSHOPT_USERDATA, h);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    *out = h;
    return WV_OK;
}

static struct mconn *pool_get(struct wv__http *h)
{
    struct mconn *mc = NULL;
    pthread_mutex_lock(&h->mu);
    if (h->n_pool)
        mc = h->pool[--h->n_pool];
    pthread_mutex_unlock(&h->mu);
    if (mc == NULL && (mc = wv__calloc(1, sizeof *mc)) != NULL) {
        if ((mc->m = curl_multi_init()) == NULL) {
            wv__free(mc);
            return NULL;
        }
        curl_multi_setopt(mc->m, CURLMOPT_MAXCONNECTS,
                          (long)(h->concurrency + 4));
    }
    return mc;
}

static void pool_put(struct wv__http *h, struct mconn *mc)
{
    pthread_mutex_lock(&h->mu);
    if (h->n_pool == h->cap_pool) {
        size_t cap = h->cap_pool ? h->cap_pool * 2 : 8;
        struct mconn **np = wv__realloc(h->pool, cap * sizeof *np);
        if (np) {
            h->pool = np;
            h->cap_pool = cap;
        }
    }
    if (h->n_pool < h->cap_pool) {
        h->pool[h->n_pool++] = mc;
        mc = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    mconn_free(mc);
}

/* Sockets are tracked per multi handle: a new connection's socket is
 * added by sock_opened, and removed by sock_close, which libcurl calls
 * (with the mconn of the transfer that opened it) whenever it closes that
 * connection, up to the multi handle's cleanup. */
static int sock_opened(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    struct mconn *mc = ud;
    if (purpose == CURLSOCKTYPE_IPCXN && mc->n_fd < MC_FDS)
        mc->fd[mc->n_fd++] = fd;
    return CURL_SOCKOPT_OK;
}

static int sock_close(void *ud, curl_socket_t fd)
{
    struct mconn *mc = ud;
    for (size_t i = 0; i < mc->n_fd; i++)
        if (mc->fd[i] == fd) {
            mc->fd[i] = mc->fd[--mc->n_fd];
            break;
        }
    return close(fd);
}

/* Acknowledge at once what the connections have received, when a reply
 * began since the last call. On a reused connection Linux delays the ACK
 * of a reply's first segment (by up to 40 ms, hoping to carry it on our
 * next request), and a server that writes a reply's status and headers
 * apart from the rest of it (radosgw) holds that rest back under Nagle's
 * algorithm until the ACK comes: a 40 ms stall on nearly every small
 * request over a reused connection (a push of a tiny repository took 8x
 * as long as with a fresh connection per request). One setsockopt per
 * connection per reply; a connection with nothing pending is unaffected. */
static void conn_ack(struct mconn *mc)
{
    if (!mc->ack)
        return;
    mc->ack = false;
#ifdef TCP_QUICKACK
    int one = 1;
    for (size_t i = 0; i < mc->n_fd; i++)
        (void)setsockopt(mc->fd[i], IPPROTO_TCP, TCP_QUICKACK, &one,
                         sizeof one);
#endif
}

/* Take n bytes of the in-flight budget. Waits (block) or gives up when
 * they do not fit; an empty budget always admits. */
static bool budget_take(struct wv__http *h, size_t n, bool block)
{
    bool ok;
    pthread_mutex_lock(&h->mu);
    for (;;) {
        ok = h->inflight == 0 || h->inflight + n <= h->max_inflight;
        if (ok || !block)
            break;
        pthread_cond_wait(&h->cv, &h->mu);
    }
    if (ok)
        h->inflight += n;
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static void budget_give(struct wv__http *h, size_t n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&h->mu);
    h->inflight -= n;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

void wv__hreq_release(struct wv__hreq *r)
{
    wv__buf_release(&r->resp);
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    struct xfer *x = ud;
    struct wv__hreq *r = x->rq;
    size_t len = sz * nm;
    const char *s = p, *e = p + len;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        x->mc->ack = true; /* see conn_ack */
        r->etag[0] = '\0';
        r->has_total = false;
        return len;
    }
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return len;
    const char *vs = colon + 1, *ve = e;
    while (vs < ve && (*vs == ' ' || *vs == '\t'))
        vs++;
    while (ve > vs && (ve[-1] == '\r' || ve[-1] == '\n' || ve[-1] == ' '))
        ve--;
    size_t nl = (size_t)(colon - s), vl = (size_t)(ve - vs);
    if (nl == 4 && strncasecmp(s, "etag", 4) == 0) {
        if (vl < sizeof r->etag) {
            memcpy(r->etag, vs, vl);
            r->etag[vl] = '\0';
        }
    } else if (nl == 13 && strncasecmp(s, "content-range", 13) == 0) {
        /* "bytes a-b/total" or "bytes * /total" */
        const char *slash = memchr(vs, '/', vl);
        if (slash && slash + 1 < ve) {
            uint64_t t = 0;
            bool ok = true;
            for (const char *q = slash + 1; q < ve; q++) {
                if (*q < '0' || *q > '9' || t > UINT64_MAX / 10 - 10) {
                    ok = false;
                    break;
                }
                t = t * 10 + (uint64_t)(*q - '0');
            }
            if (ok) {
                r->total = t;
                r->has_total = true;
            }
        }
    }
    return len;
}

static size_t on_write(char *p, size_t sz, size_t nm, void *ud)
{
    struct xfer *x = ud;
    struct wv__hreq *r = x->rq;
    size_t len = sz * nm;
    long code = 0;
    curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && code < 300 && (r->dst || r->to_fd)) {
        if (r->ranged && code == 200) {
            r->range_ignored = true;
            if (r->range_off != 0)
                return 0; /* the wrong bytes: abort */
        }
        size_t room = r->dst_cap - r->got;
        size_t k = len < room ? len : room;
        if (r->dst) {
            memcpy((unsigned char *)r->dst + r->got, p, k);
        } else {
            /* straight to the file while the bytes are in the cache:
             * no buffer to fault in, no cold copy later */
            for (size_t w = 0; w < k;) {
                ssize_t n = pwrite(r->dst_fd, p + w, k - w,
                                   (off_t)(r->dst_fd_off + r->got + w));
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0) {
                    r->fd_errno = n < 0 ? errno : ENOSPC;
                    return 0; /* abort: a write error, not retried */
                }
                w += (size_t)n;
            }
        }
        r->got += k;
        if (k < len) {
            x->enough = true; /* all we asked for: stop here */
            return 0;
        }
        return len;
    }
    if (r->resp.len + len > RESP_MAX) {
        x->too_big = true;
        return 0;
    }
    wv__buf_add(&r->resp, p, len);
    return r->resp.oom ? 0 : len;
}

static size_t on_read(char *p, size_t sz, size_t nm, void *ud)
{
    struct xfer *x = ud;
    struct wv__hreq *r = x->rq;
    size_t room = sz * nm, left = r->body_len - x->up_off;
    size_t k = room < left ? room : left;
    if (k)
        memcpy(p, (const unsigned char *)r->body + x->up_off, k);
    x->up_off += k;
    return k;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
    struct xfer *x = ud;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->rq->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    x->up_off = (size_t)off;
    return CURL_SEEKFUNC_OK;
}

static bool add_hdr(struct curl_slist **l, const char *h)
{
    struct curl_slist *n = curl_slist_append(*l, h);
    if (n == NULL)
        return false;
    *l = n;
    return true;
}

static size_t xfer_budget(const struct xfer *x)
{
    const struct wv__hreq *r = x->rq;
    return r->body_len + (r->dst ? r->dst_cap : 0);
}

static void xfer_cleanup(CURLM *m, struct xfer *x)
{
    if (x->e) {
        curl_multi_remove_handle(m, x->e);
        curl_easy_cleanup(x->e);
        x->e = NULL;
    }
    curl_slist_free_all(x->hdrs);
    x->hdrs = NULL;
    budget_give(x->h, x->budget);
    x->budget = 0;
    x->active = false;
}

static int xfer_start(struct wv__http *h, CURLM *m, struct xfer *x)
{
    struct wv__hreq *r = x->rq;
    bool ok = true;
    char range[80];
    /* A retry after a transport failure or a stray 400 (see xfer_finish)
     * takes a fresh connection: the pooled one may be what failed. Other
     * retries (5xx, SlowDown) keep it: no new handshake while the server
     * asks clients to slow down. */
    bool fresh = r->attempts > 0 && (r->xerr != 0 || r->status == 400);
    r->status = 0;
    r->got = 0;
    r->resp.len = 0;
    if (r->resp.p)
        r->resp.p[0] = '\0';
    r->resp.oom = false;
    r->etag[0] = '\0';
    r->has_total = false;
    r->total = 0;
    r->clen = -1;
    r->mtime = -1;
    r->range_ignored = false;
    r->fd_errno = 0;
    r->xerr = 0;
    r->too_big = false;
    r->xmsg[0] = '\0';
    r->attempts++;
    x->up_off = 0;
    x->enough = x->too_big = false;
    x->errbuf[0] = '\0';

    CURL *e = curl_easy_init();
    if (e == NULL)
        return WV_NOMEM;
    x->e = e;
    if (fresh)
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    bool sign = h->sign && !(r->flags & WV__HREQ_UNSIGNED);
    if (sign) {
        ok &= add_hdr(&x->hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
        if (h->token_hdr)
            ok &= add_hdr(&x->hdrs, h->token_hdr);
    }
    if (r->ranged) {
        snprintf(range, sizeof range, "Range: bytes=%llu-%llu",
                 (unsigned long long)r->range_off,
                 (unsigned long long)(r->range_off + r->range_len - 1));
        ok &= add_hdr(&x->hdrs, range);
    }
    bool upload = strcmp(r->method, "PUT") == 0;
    bool post = strcmp(r->method, "POST") == 0;
    for (int i = 0; i < 4 && r->hdr[i]; i++)
        ok &= add_hdr(&x->hdrs, r->hdr[i]);
    if (!ok) {
        curl_easy_cleanup(e);
        x->e = NULL;
        curl_slist_free_all(x->hdrs);
        x->hdrs = NULL;
        return WV_NOMEM;
    }
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, sock_opened);
    curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, (void *)x->mc);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, sock_close);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, (void *)x->mc);
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SHARE, h->share);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 1024L * 1024);
    curl_easy_setopt(e, CURLOPT_FILETIME, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, (void *)x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, (void *)x);
    if (h->ca_bundle)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_bundle);
    if (sign) {
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, h->sigv4);
        curl_easy_setopt(e, CURLOPT_USERNAME, h->user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, h->pass);
    } else if (r->flags & WV__HREQ_FOLLOW) {
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    }
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (upload) {
        /* libcurl sends every PUT with "Expect: 100-continue" and waits
         * for the 100 before the body (it cannot be turned off here: a
         * removed Expect header would still be signed). Small bodies go
         * at once; large ones wait a little for a refusal (auth, ...)
         * that saves sending them, not the full second. */
        curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS,
                         r->body_len < ((size_t)1 << 20) ? 0L : 300L);
        curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(e, CURLOPT_READDATA, (void *)x);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, (void *)x);
        curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE,
                         (curl_off_t)r->body_len);
    } else if (post) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS,
                         r->body ? (const char *)r->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
    }
    if (curl_multi_add_handle(m, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        x->e = NULL;
        curl_slist_free_all(x->hdrs);
        x->hdrs = NULL;
        return WV_NOMEM;
    }
    x->active = true;
    return WV_OK;
}

/* Failures worth another attempt; `sent` is false when the request
 * surely never reached the server. */
static bool transport_retryable(CURLcode c, bool *sent)
{
    *sent = true;
    switch (c) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        *sent = false;
        return true;
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

/* Collect a finished transfer's outcome; true if it should run again. */
static bool xfer_finish(struct wv__http *h, struct xfer *x, CURLcode res)
{
    struct wv__hreq *r = x->rq;
    CURL *e = x->e;
    long code = 0;
    curl_off_t cl = -1, ft = -1, up = 0, down = 0;
    curl_easy_getinfo(e, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &down);
    __atomic_fetch_add(&h->n_requests, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->n_sent, (uint64_t)(up > 0 ? up : 0),
                       __ATOMIC_RELAXED);
    __atomic_fetch_add(&h->n_received, (uint64_t)(down > 0 ? down : 0),
                       __ATOMIC_RELAXED);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(e, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    curl_easy_getinfo(e, CURLINFO_FILETIME_T, &ft);
    r->clen = cl;
    r->mtime = ft;
    if (res == CURLE_WRITE_ERROR && x->enough)
        res = CURLE_OK;
    if (res == CURLE_WRITE_ERROR && r->range_ignored && !r->fd_errno)
        res = CURLE_OK; /* the caller sees range_ignored */
    if (res != CURLE_OK) {
        long oserr = 0;
        curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &oserr);
        r->xerr = (int)res;
        r->status = 0;
        r->too_big = x->too_big;
        if (x->too_big)
            snprintf(r->xmsg, sizeof r->xmsg, "its reply is larger than "
                                              "the %zu bytes allowed",
                     RESP_MAX);
        else if (r->fd_errno)
            snprintf(r->xmsg, sizeof r->xmsg, "writing what arrived "
                                              "failed: %s",
                     strerror(r->fd_errno));
        else if (oserr > 0 && res == CURLE_COULDNT_CONNECT)
            snprintf(r->xmsg, sizeof r->xmsg, "%s", strerror((int)oserr));
        else if (x->errbuf[0])
            snprintf(r->xmsg, sizeof r->xmsg, "%.150s", x->errbuf);
        else
            snprintf(r->xmsg, sizeof r->xmsg, "%s", curl_easy_strerror(res));
        bool sent;
        bool again = transport_retryable(res, &sent);
        if ((r->flags & WV__HREQ_NO_RETRY_5XX) && sent)
            again = false;
        return again && r->attempts < h->retries;
    }
    r->status = code;
    if (r->attempts >= h->retries)
        return false;
    if (code >= 500 && (r->flags & WV__HREQ_NO_RETRY_5XX))
        return false;
    char s3code[64] = "";
    if (code >= 400 && r->resp.len && !r->resp.oom)
        wv__s3xml_field(r->resp.p, r->resp.len, "Code", s3code,
                        sizeof s3code);
    /* A 400 that is no S3 error (no Code in its body) on a first attempt
     * is taken for a stray reply on a reused connection: radosgw answers
     * a refused PUT before reading its body, then parses that body as the
     * next request ("bad method") and sends 400 to whoever reuses the
     * connection. Tried once more, on a fresh connection. */
    if (code == 400 && s3code[0] == '\0' && r->attempts == 1 && h->sign &&
        !(r->flags & WV__HREQ_UNSIGNED))
        return true;
    if (code >= 400 || code == 0)
        return wv__http_status_retryable(code, s3code[0] ? s3code : NULL);
    return false;
}

int wv__http_run(struct wv__http *h, struct wv__hreq *reqs, size_t n,
                 int concurrency)
{
    int rc = WV_OK;
    if (n == 0)
        return WV_OK;
    if (concurrency <= 0)
        concurrency = h->concurrency;
    struct xfer *xs = wv__calloc(n, sizeof *xs);
    struct mconn *mc = xs ? pool_get(h) : NULL;
    if (mc == NULL) {
        wv__free(xs);
        return WV_NOMEM;
    }
    CURLM *m = mc->m;
    for (size_t i = 0; i < n; i++) {
        xs[i].h = h;
        xs[i].mc = mc;
        xs[i].rq = &reqs[i];
        reqs[i].attempts = 0;
    }
    size_t n_done = 0, next = 0;
    int active = 0;
    while (n_done < n) {
        uint64_t now = now_ms(), next_due = UINT64_MAX;
        /* Start what may start, in order, within the limits. */
        for (size_t k = 0; k < n && active < concurrency; k++) {
            struct xfer *x = &xs[(next + k) % n];
            if (x->done || x->active)
                continue;
            if (x->due > now) {
                if (x->due < next_due)
                    next_due = x->due;
                continue;
            }
            size_t want = xfer_budget(x);
            if (!budget_take(h, want, active == 0))
                break;
            x->budget = want;
            if (xfer_start(h, m, x) != WV_OK) {
                budget_give(h, want);
                x->budget = 0;
                rc = WV_NOMEM;
                goto out;
            }
            active++;
        }
        if (active == 0) {
            if (next_due == UINT64_MAX)
                break; /* cannot happen: something is pending */
            uint64_t wait = next_due > now ? next_due - now : 0;
            struct timespec ts = {(time_t)(wait / 1000),
                                  (long)(wait % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        int running = 0;
        curl_multi_perform(m, &running);
        conn_ack(mc);
        int left, finished = 0;
        CURLMsg *msg;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct xfer *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
                              (char **)&x);
            if (x == NULL)
                continue;
            bool again = xfer_finish(h, x, msg->data.result);
            if (x->rq->resp.oom) { /* a body we could not keep */
                again = false;
                rc = WV_NOMEM;
            }
            xfer_cleanup(m, x);
            active--;
            finished++;
            if (again) {
                x->due = now_ms() + wv__backoff_ms(x->rq->attempts, rnd64());
            } else {
                x->done = true;
                n_done++;
            }
            next = (size_t)(x - xs) + 1;
        }
        if (finished == 0 && active > 0) {
            int wait = 1000;
            now = now_ms();
            if (next_due != UINT64_MAX)
                wait = next_due <= now ? 0
                       : next_due - now < 1000 ? (int)(next_due - now)
                                               : 1000;
            curl_multi_poll(m, NULL, 0, wait, NULL);
        }
    }
out:
    for (size_t i = 0; i < n; i++)
        if (xs[i].active)
            xfer_cleanup(m, &xs[i]);
    pool_put(h, mc);
    wv__free(xs);
    return rc;
}

/* ---- remote objects ------------------------------------------------------ */

struct wv__robj {
    struct wv__s3cfg cfg;
    struct wv__http *http;
    char *url;  /* the object's URL (signed requests for s3://)    */
    char *name; /* for messages                                    */
    char etag[136];
    uint64_t size;
    bool s3;
};

/* A copy of url without any "user:password@" part, for messages. */
static void safe_url(const char *url, char *out, size_t cap)
{
    const char *s = strstr(url, "://");
    const char *at = s ? strchr(s + 3, '@') : NULL;
    const char *slash = s ? strchr(s + 3, '/') : NULL;
    if (at && (slash == NULL || at < slash))
        snprintf(out, cap, "%.*s%s", (int)(s + 3 - url), url, at + 1);
    else
        snprintf(out, cap, "%s", url);
}

static int robj_fail(struct wv__robj *o, const struct wv__hreq *r,
                     const char *op, struct wv__err *err)
{
    char s3code[64] = "", msg[128] = "";
    if (r->xerr && r->too_big) /* it answered: not a reachability issue */
        return wv__seterr(err, WV_BACKEND, "%s: %s %s: %s", o->name, op,
                          o->s3 ? o->cfg.endpoint : o->name, r->xmsg);
    if (r->xerr)
        return wv__seterr(err, WV_BACKEND, "%s: cannot reach %s: %s (after "
                                           "%d attempts)",
                          o->name, o->s3 ? o->cfg.endpoint : o->name,
                          r->xmsg, r->attempts);
    if (r->resp.len && !r->resp.oom) {
        wv__s3xml_field(r->resp.p, r->resp.len, "Code", s3code,
                        sizeof s3code);
        wv__s3xml_field(r->resp.p, r->resp.len, "Message", msg, sizeof msg);
    }
    for (char *q = msg; *q; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f)
            *q = '?';
    for (char *q = s3code; *q; q++)
        if ((unsigned char)*q < 0x20 || (unsigned char)*q >= 0x7f)
            *q = '?';
    if (r->status == 404)
        return wv__seterr(err, WV_NOTFOUND, "%s: not found (%s)", o->name,
                          s3code[0] ? s3code : "HTTP 404");
    if (r->status == 401 || r->status == 403)
        return wv__seterr(err, WV_AUTH, "%s: access denied (%s)", o->name,
                          s3code[0] ? s3code : r->status == 401 ? "HTTP 401"
                                                                : "HTTP 403");
    if (r->status == 412)
        return wv__seterr(err, WV_IO, "%s: the object changed while it was "
                                      "read",
                          o->name);
    return wv__seterr(err, WV_BACKEND, "%s: %s failed: HTTP %ld%s%s%s%s",
                      o->name, op, r->status, s3code[0] ? " " : "", s3code,
                      msg[0] ? ": " : "", msg);
}

void wv__robj_close(struct wv__robj *o)
{
    if (o == NULL)
        return;
    wv__http_free(o->http);
    wv__s3cfg_release(&o->cfg);
    wv__free(o->url);
    wv__free(o->name);
    wv__free(o);
}

uint64_t wv__robj_size(const struct wv__robj *o)
{
    return o->size;
}

int wv__robj_open(const char *url, struct wv__err *err, struct wv__robj **out)
{
    int rc = WV_OK;
    char *bucket = NULL, *key = NULL;
    struct wv__hreq r;
    char name[600];
    memset(&r, 0, sizeof r);
    *out = NULL;
    struct wv__robj *o = wv__calloc(1, sizeof *o);
    if (o == NULL)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    safe_url(url, name, sizeof name);
    o->name = wv__strdup(name);
    WV_CHECK(o->name != NULL, WV_NOMEM, "out of memory");
    if (strncmp(url, "s3://", 5) == 0) {
        o->s3 = true;
        WV_TRY(wv__s3_split(url + 5, &bucket, &key, err));
        WV_CHECK(key[0] != '\0', WV_MISUSE, "%s: no object key after the "
                                            "bucket",
                 name);
        WV_TRY(wv__s3cfg_load(&o->cfg, name, err));
        WV_CHECK(o->cfg.access_key != NULL, WV_AUTH,
                 "%s: no S3 credentials: set AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY, or a profile in "
                 "~/.aws/credentials",
                 name);
        o->url = wv__s3_url(&o->cfg, bucket, key, NULL);
        WV_CHECK(o->url != NULL, WV_NOMEM, "out of memory");
        WV_TRY(wv__http_new(&o->cfg, &o->cfg, err, &o->http));
    } else {
        WV_CHECK(strncmp(url, "http://", 7) == 0 ||
                     strncmp(url, "https://", 8) == 0,
                 WV_MISUSE, "%s: not an s3://, http:// or https:// URL",
                 name);
        /* Only the tuning matters; a bad credentials setup must not stop
         * an unsigned download. */
        struct wv__err e2 = {0};
        if (wv__s3cfg_load(&o->cfg, name, &e2) != WV_OK) {
            WV_CHECK(e2.code != WV_MISUSE, WV_MISUSE, "%s", e2.msg);
            memset(&o->cfg, 0, sizeof o->cfg);
            o->cfg.part_size = DEFAULT_PART;
            o->cfg.concurrency = 8;
            o->cfg.max_inflight = DEFAULT_INFLIGHT;
            o->cfg.retries = 6;
        }
        o->url = wv__strdup(url);
        WV_CHECK(o->url != NULL, WV_NOMEM, "out of memory");
        WV_TRY(wv__http_new(NULL, &o->cfg, err, &o->http));
    }
    unsigned fl = o->s3 ? 0 : WV__HREQ_UNSIGNED | WV__HREQ_FOLLOW;
    r.method = "HEAD";
    r.url = o->url;
    r.flags = fl;
    WV_CHECK(wv__http_run(o->http, &r, 1, 1) == WV_OK, WV_NOMEM,
             "out of memory");
    if (!o->s3 && r.xerr == 0 &&
        (r.status == 405 || r.status == 403 || r.status == 501 ||
         r.clen < 0)) {
        /* No HEAD (or no length): ask for the first byte instead. */
        unsigned char b1;
        memset(&r, 0, sizeof r);
        r.method = "GET";
        r.url = o->url;
        r.flags = fl;
        r.ranged = true;
        r.range_len = 1;
        r.dst = &b1;
        r.dst_cap = 1;
        WV_CHECK(wv__http_run(o->http, &r, 1, 1) == WV_OK, WV_NOMEM,
                 "out of memory");
        if (r.status == 206 && r.has_total)
            r.clen = (int64_t)r.total;
        else if (r.status == 416)
            r.clen = 0, r.status = 200;
        else if (r.status == 200 && r.range_ignored)
            WV_CHECK(0, WV_UNSUPPORTED, "%s: the server does not serve "
                                        "byte ranges",
                     name);
    }
    if (r.xerr || r.status < 200 || r.status >= 300) {
        rc = robj_fail(o, &r, "HEAD", err);
        goto out;
    }
    WV_CHECK(r.clen >= 0, WV_BACKEND, "%s: the server sent no size",
             name);
    o->size = (uint64_t)r.clen;
    snprintf(o->etag, sizeof o->etag, "%s", r.etag);
out:
    wv__hreq_release(&r);
    wv__free(bucket);
    wv__free(key);
    if (rc != WV_OK) {
        wv__robj_close(o);
        o = NULL;
    }
    *out = o;
    return rc;
}

int wv__robj_read(struct wv__robj *o, uint64_t off, void *buf, size_t len,
                  struct wv__err *err)
{
    int rc = WV_OK;
    uint64_t endoff;
    if (len == 0)
        return WV_OK;
    if (wv__add_overflow(off, len, &endoff) || endoff > o->size)
        return wv__seterr(err, WV_IO_SHORT_READ,
                          "%s: read of %zu bytes at %llu passes the end "
                          "(%llu bytes)",
                          o->name, len, (unsigned long long)off,
                          (unsigned long long)o->size);
    size_t ps = o->cfg.part_size ? o->cfg.part_size : DEFAULT_PART;
    size_t n = (len + ps - 1) / ps;
    struct wv__hreq *rs = wv__calloc(n, sizeof *rs);
    char ifm[160];
    if (rs == NULL)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    /* s3: every part must come from the version HEAD saw (GETs take the
     * ETag as sent, quoted; only RGW's conditional PUTs want it bare). */
    size_t el = strlen(o->etag);
    snprintf(ifm, sizeof ifm, "If-Match: %s", o->etag);
    for (size_t i = 0; i < n; i++) {
        size_t pl = i + 1 < n ? ps : len - i * ps;
        rs[i].method = "GET";
        rs[i].url = o->url;
        rs[i].flags = o->s3 ? 0 : WV__HREQ_UNSIGNED | WV__HREQ_FOLLOW;
        rs[i].ranged = true;
        rs[i].range_off = off + i * ps;
        rs[i].range_len = pl;
        rs[i].dst = (unsigned char *)buf + i * ps;
        rs[i].dst_cap = pl;
        if (o->s3 && el)
            rs[i].hdr[0] = ifm;
    }
    if (wv__http_run(o->http, rs, n, 0) != WV_OK) {
        rc = wv__seterr(err, WV_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n && rc == WV_OK; i++) {
        struct wv__hreq *r = &rs[i];
        if (r->xerr || r->status < 200 || r->status >= 300) {
            rc = robj_fail(o, r, "GET", err);
        } else if (r->range_ignored &&
                   !(r->range_off == 0 && r->got == r->range_len)) {
            rc = wv__seterr(err, WV_UNSUPPORTED,
                            "%s: the server does not serve byte ranges",
                            o->name);
        } else if (r->got != r->range_len) {
            rc = wv__seterr(err, WV_IO_SHORT_READ,
                            "%s: %zu of %zu bytes at %llu came back (the "
                            "object changed?)",
                            o->name, r->got, r->range_len,
                            (unsigned long long)r->range_off);
        }
    }
out:
    for (size_t i = 0; i < n; i++)
        wv__hreq_release(&rs[i]);
    wv__free(rs);
    return rc;
}
