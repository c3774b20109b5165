/*
 * t_s3xml.c -- the S3 XML parser (src/net/s3xml.c) and the S3 backend's
 * listing checks (src/store/s3.c) against the documents in
 * tests/data/s3xml (written by its gen_s3xml.py, which documents them):
 *
 *   malformed/  one file per rejection rule. Without a .expect, each of
 *               wv__s3xml_root, wv__s3xml_field and wv__s3xml_each must
 *               return WV_CORRUPT and deliver nothing; with one, the
 *               checks it lists (a rule only one entry point has).
 *   valid/      real radosgw replies and edge cases at the limits: their
 *               .expect checks pass, and every proper prefix of the file
 *               that does not hold the whole root element is refused.
 *   listing/    ListObjectsV2 pages served by a scripted HTTP server on
 *               loopback to wv__store_list of s3://bkt/p.
 *
 * A failure names the file (and the .expect line); every file is checked
 * before the test fails. The 8 MiB size limit is checked on documents
 * built here (no 8 MiB file in the tree).
 *
 * The tests are named xmlfiles_* rather than s3xml_*: ctest gives the
 * unit.s3* tests the Ceph fixture, and these need no cluster.
 */
#include "http.h"
#include "store.h"
#include "wvtest.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#define DATA WV_TEST_DATA "/s3xml"
#define MAX_ENTRIES 64
#define MAX_FIELDS 8

static int failures;

#define FAILF(...)                                                        \
    do {                                                                  \
        fprintf(stderr, __VA_ARGS__);                                     \
        fputc('\n', stderr);                                              \
        failures++;                                                       \
    } while (0)

/* ---- files --------------------------------------------------------------- */

struct names {
    char **v;
    size_t n;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.xml files of dir, sorted. */
static void list_xml(const char *dir, struct names *out)
{
    DIR *d = opendir(wvtest_input(dir));
    struct dirent *e;
    memset(out, 0, sizeof *out);
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".xml") != 0)
            continue;
        char **nv = realloc(out->v, (out->n + 1) * sizeof *nv);
        if (nv == NULL)
            break;
        out->v = nv;
        out->v[out->n++] = strdup(e->d_name);
    }
    closedir(d);
    if (out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
}

static void names_free(struct names *n)
{
    for (size_t i = 0; i < n->n; i++)
        free(n->v[i]);
    free(n->v);
}

static const struct {
    const char *name;
    int code;
} codes[] = {{"OK", WV_OK},         {"CORRUPT", WV_CORRUPT},
             {"RANGE", WV_RANGE},   {"NOTFOUND", WV_NOTFOUND},
             {"BACKEND", WV_BACKEND}, {"MISUSE", WV_MISUSE}};

static int code_of(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strlen(codes[i].name) == n && memcmp(codes[i].name, s, n) == 0)
            return codes[i].code;
    return -1;
}

static const char *name_of(int code)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].code == code)
            return codes[i].name;
    return "?";
}

/* ---- entries delivered by wv__s3xml_each --------------------------------- */

struct entries {
    size_t n_fields;
    char fields[MAX_FIELDS][64];
    size_t n; /* delivered (only the first MAX_ENTRIES are kept) */
    char *vals[MAX_ENTRIES][MAX_FIELDS];
};

static void entries_clear(struct entries *e)
{
    size_t kept = e->n < MAX_ENTRIES ? e->n : MAX_ENTRIES;
    for (size_t i = 0; i < kept; i++)
        for (size_t f = 0; f < e->n_fields; f++) {
            free(e->vals[i][f]);
            e->vals[i][f] = NULL;
        }
    e->n = 0;
}

static int collect(void *arg, const char *const *vals)
{
    struct entries *e = arg;
    if (e->n < MAX_ENTRIES)
        for (size_t f = 0; f < e->n_fields; f++)
            e->vals[e->n][f] = vals[f] ? strdup(vals[f]) : NULL;
    e->n++;
    return 0;
}

/* Set e's fields from "A,B,C". */
static bool set_fields(struct entries *e, const char *spec)
{
    entries_clear(e);
    e->n_fields = 0;
    for (const char *p = spec; *p;) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == 0 || l >= 64 || e->n_fields == MAX_FIELDS)
            return false;
        memcpy(e->fields[e->n_fields], p, l);
        e->fields[e->n_fields++][l] = '\0';
        p += l + (c ? 1 : 0);
    }
    return e->n_fields > 0;
}

static int run_each(const char *doc, size_t len, const char *elem,
                    struct entries *e)
{
    const char *f[MAX_FIELDS];
    for (size_t i = 0; i < e->n_fields; i++)
        f[i] = e->fields[i];
    entries_clear(e);
    return wv__s3xml_each(doc, len, elem, f, e->n_fields, collect, e);
}

/* ---- the listing of a scripted server ------------------------------------ */

struct srv {
    int fd, port;
    pthread_t th;
    const char *body; /* the page sent for every request after the first */
    size_t body_len;
    int hits;
};



static void *srv_main(void *arg)
{
    static const char empty[] =
        "<ListBucketResult><IsTruncated>false</IsTruncated>"
        "</ListBucketResult>";
    struct srv *s = arg;
    for (;;) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        char req[8192];
        size_t n = 0;
        while (n < sizeof req - 1) {
            ssize_t r = recv(c, req + n, sizeof req - 1 - n, 0);
            if (r <= 0)
                break;
            n += (size_t)r;
            req[n] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        /* The first request is the bucket check of the open. */
        const char *b = s->hits++ == 0 ? empty : s->body;
        size_t bl = b == empty ? strlen(empty) : s->body_len;
        char hdr[256];
        snprintf(hdr, sizeof hdr,
                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 bl);
        wvtest_send_all(c, hdr, strlen(hdr));
        wvtest_send_all(c, b, bl);
        close(c);
    }
    return NULL;
}

static int srv_start(struct srv *s)
{
    return wvtest_srv_start(&s->fd, &s->port, &s->th, srv_main, s);
}

static void srv_stop(struct srv *s)
{
    wvtest_srv_stop(s->fd, s->th);
}

static int listed(void *arg, const char *key, uint64_t size)
{
    struct wv__buf *b = arg;
    wv__buf_addf(b, "%s%s=%llu", b->len ? " " : "", key,
                 (unsigned long long)size);
    return 0;
}

/* List s3://bkt/p on a server that answers with doc; the listing's text
 * ("key=size ...") goes to out, its message to msg. */
static int list_page(const char *doc, size_t len, struct wv__buf *out,
                     char *msg, size_t cap)
{
    static const char *const vars[] = {
        "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE", "AWS_CA_BUNDLE", "WV_S3_ADDRESSING",
        "WV_S3_PART_SIZE", "WV_S3_CONCURRENCY", "WV_S3_MAX_INFLIGHT",
        "WV_S3_ACL"};
    struct srv s;
    struct wv__err err = {0};
    struct wv__store *st = NULL;
    char ep[64];
    int rc;
    memset(&s, 0, sizeof s);
    s.body = doc;
    s.body_len = len;
    if (srv_start(&s) != 0) {
        snprintf(msg, cap, "cannot start the scripted server");
        return -1;
    }
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("HOME", wvtest_tmpdir(), 1);
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", s.port);
    setenv("AWS_ENDPOINT_URL", ep, 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SECRETFAKE", 1);
    setenv("WV_S3_RETRIES", "1", 1);
    rc = wv__store_open("s3://bkt/p", false, &err, &st);
    if (rc == WV_OK) {
        rc = wv__store_list(st, "", listed, out);
        wv__store_close(st);
    }
    snprintf(msg, cap, "%s", err.msg);
    srv_stop(&s);
    return rc;
}

/* ---- one .expect line ---------------------------------------------------- */

struct run {
    const char *path; /* for messages */
    int line;
    const char *doc;
    size_t len;
    struct entries ent;
    bool listed_done;
    struct wv__buf listing;
    int list_rc;
    char list_msg[WV_ERRBUF_SIZE];
};

/* Split "CALL A B -> RESULT" into up to 4 words and the result. */
static bool split_line(char *l, char **w, int *nw, char **result)
{
    char *arrow = strstr(l, " ->");
    if (arrow == NULL)
        return false;
    *arrow = '\0';
    *result = arrow + 3;
    if (**result == ' ')
        (*result)++;
    *nw = 0;
    for (char *p = l; *p;) {
        while (*p == ' ')
            *p++ = '\0';
        if (*p == '\0')
            break;
        if (*nw == 4)
            return false;
        w[(*nw)++] = p;
        while (*p && *p != ' ')
            p++;
    }
    return *nw > 0;
}

/* RESULT = "CODE [rest]": the code and the rest ("" if none). */
static bool split_result(const char *r, int *code, const char **rest)
{
    const char *sp = strchr(r, ' ');
    size_t n = sp ? (size_t)(sp - r) : strlen(r);
    *code = code_of(r, n);
    *rest = sp ? sp + 1 : "";
    return *code >= 0;
}

static size_t cap_of(char **w, int nw, int at, size_t dflt)
{
    if (nw <= at)
        return dflt;
    return (size_t)strtoul(w[at], NULL, 10);
}

#define BAD(...)                                                          \
    do {                                                                  \
        fprintf(stderr, "%s: check %d: ", r->path, r->line);              \
        FAILF(__VA_ARGS__);                                               \
        return;                                                           \
    } while (0)

static void check_line(struct run *r, char *l)
{
    char *w[4], *res;
    int nw, want, got;
    const char *rest;
    if (!split_line(l, w, &nw, &res))
        BAD("cannot read the line");
    if (strcmp(w[0], "entry") == 0) {
        if (nw != 3)
            BAD("entry I FIELD -> VALUE");
        size_t i = (size_t)strtoul(w[1], NULL, 10), f = 0;
        while (f < r->ent.n_fields && strcmp(r->ent.fields[f], w[2]) != 0)
            f++;
        if (f == r->ent.n_fields || i >= r->ent.n || i >= MAX_ENTRIES)
            BAD("no entry %zu field %s from the last each", i, w[2]);
        const char *v = r->ent.vals[i][f];
        const char *want_v = strcmp(res, "(empty)") == 0 ? "" : res;
        if (strcmp(res, "(absent)") == 0 ? v != NULL
                                         : v == NULL || strcmp(v, want_v))
            BAD("entry %zu %s is '%s', wanted '%s'", i, w[2],
                v ? v : "(absent)", res);
        return;
    }
    if (strcmp(w[0], "listed") == 0) {
        if (!r->listed_done)
            BAD("listed before list");
        if (strcmp(r->listing.p ? r->listing.p : "", res) != 0)
            BAD("the listing delivered '%s', wanted '%s'",
                r->listing.p ? r->listing.p : "", res);
        return;
    }
    if (!split_result(res, &want, &rest))
        BAD("unknown result '%s'", res);
    if (strcmp(w[0], "root") == 0) {
        char name[4096];
        size_t cap = cap_of(w, nw, 1, 256);
        if (cap == 0 || cap > sizeof name)
            BAD("bad capacity");
        got = wv__s3xml_root(r->doc, r->len, name, cap);
        if (got != want)
            BAD("root gives %s, wanted %s", name_of(got),
                name_of(want));
        if (got == WV_OK && strcmp(name, rest) != 0)
            BAD("root is '%s', wanted '%s'", name, rest);
    } else if (strcmp(w[0], "field") == 0) {
        size_t cap = cap_of(w, nw, 2, 4096);
        char *out = nw >= 2 && cap >= 1 ? malloc(cap) : NULL;
        if (out == NULL)
            BAD("field NAME [CAP] -> CODE [VALUE]");
        got = wv__s3xml_field(r->doc, r->len, w[1], out, cap);
        bool ok = got == want && (got != WV_OK || strcmp(out, rest) == 0);
        if (!ok)
            fprintf(stderr, "%s: field %s (cap %zu) gives %s '%.80s', "
                            "wanted %s '%.80s'\n",
                    r->path, w[1], cap, name_of(got), got ? "" : out,
                    name_of(want), rest);
        free(out);
        if (!ok)
            BAD("(field)");
    } else if (strcmp(w[0], "each") == 0) {
        if (nw != 3 || !set_fields(&r->ent, w[2]))
            BAD("each ELEM F1,F2 -> CODE [COUNT]");
        got = run_each(r->doc, r->len, w[1], &r->ent);
        if (got != want)
            BAD("each %s gives %s, wanted %s", w[1],
                name_of(got), name_of(want));
        if (got != WV_OK && r->ent.n != 0)
            BAD("each %s delivered %zu entries of a refused document",
                w[1], r->ent.n);
        if (got == WV_OK && rest[0] &&
            r->ent.n != (size_t)strtoul(rest, NULL, 10))
            BAD("each %s delivered %zu entries, wanted %s",
                w[1], r->ent.n, rest);
    } else if (strcmp(w[0], "list") == 0) {
        wv__buf_release(&r->listing);
        memset(&r->listing, 0, sizeof r->listing);
        r->list_rc = list_page(r->doc, r->len, &r->listing, r->list_msg,
                               sizeof r->list_msg);
        r->listed_done = true;
        got = wv_primary(r->list_rc);
        if (got != want)
            BAD("the listing gives %s (%s), wanted %s",
                name_of(got), r->list_msg, name_of(want));
        if (got == WV_OK &&
            strcmp(r->listing.p ? r->listing.p : "", rest) != 0)
            BAD("the listing is '%s', wanted '%s'",
                r->listing.p ? r->listing.p : "", rest);
        if (got != WV_OK && strstr(r->list_msg, rest) == NULL)
            BAD("the listing's message '%s' lacks '%s'",
                r->list_msg, rest);
        if (got != WV_OK && strstr(r->list_msg, "SECRETFAKE") != NULL)
            BAD("the secret key is in a message");
    } else {
        BAD("unknown check '%s'", w[0]);
    }
}

/* Run the checks of path.expect (or `dflt` if there is none and dflt is
 * not NULL) on the document at path. Returns the number of checks run. */
static int check_file(const char *path, const char *dflt)
{
    struct run r;
    char ep[1200], *ex = NULL;
    size_t exl = 0;
    int n = 0;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.doc = (const char *)wvtest_read_file(path, &r.len);
    if (r.doc == NULL) {
        FAILF("%s: cannot read it", path);
        return 0;
    }
    if (snprintf(ep, sizeof ep, "%s.expect", path) >= (int)sizeof ep) {
        FAILF("%s: path too long", path);
        free((void *)r.doc);
        return 0;
    }
    ex = (char *)wvtest_read_file(ep, &exl);
    if (ex == NULL && dflt == NULL) {
        FAILF("%s: no .expect", path);
        free((void *)r.doc);
        return 0;
    }
    const char *text = ex ? ex : dflt;
    size_t tl = ex ? exl : strlen(dflt);
    for (size_t off = 0; off < tl;) {
        const char *nl = memchr(text + off, '\n', tl - off);
        size_t ll = nl ? (size_t)(nl - (text + off)) : tl - off;
        r.line++;
        char *l = malloc(ll + 1);
        memcpy(l, text + off, ll);
        l[ll] = '\0';
        if (ll && l[0] != '#') {
            check_line(&r, l);
            n++;
        }
        free(l);
        off += ll + 1;
    }
    if (n == 0)
        FAILF("%s: nothing checked", path);
    entries_clear(&r.ent);
    wv__buf_release(&r.listing);
    free(ex);
    free((void *)r.doc);
    return n;
}

static const char all_refuse[] = "root -> CORRUPT\n"
                                 "field Code -> CORRUPT\n"
                                 "field Key -> CORRUPT\n"
                                 "each Contents Key,Size,ETag -> CORRUPT\n";

/* Check every file of DATA/sub; returns how many there were. */
static size_t check_dir(const char *sub, const char *dflt)
{
    struct names nm;
    char dir[600], path[1200];
    snprintf(dir, sizeof dir, "%s/%s", DATA, sub);
    list_xml(dir, &nm);
    for (size_t i = 0; i < nm.n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, nm.v[i]);
        check_file(path, dflt);
    }
    size_t n = nm.n;
    names_free(&nm);
    return n;
}

/* ---- tests --------------------------------------------------------------- */

TEST_IMPL(xmlfiles_malformed)
{
    failures = 0;
    size_t n = check_dir("malformed", all_refuse);
    fprintf(stderr, "%zu malformed documents checked\n", n);
    ASSERT(n >= 80);
    ASSERT_EQ(failures, 0);
}

/* A prefix of a valid document that does not hold its root element whole
 * must be refused; one that does may only be followed by misc (comments,
 * processing instructions, whitespace). */
static void check_prefixes(const char *path)
{
    size_t len;
    char *doc = (char *)wvtest_read_file(path, &len);
    char name[256];
    struct entries e;
    memset(&e, 0, sizeof e);
    set_fields(&e, "Key,Size,ETag");
    if (doc == NULL) {
        FAILF("%s: cannot read it", path);
        return;
    }
    for (size_t k = 0; k < len; k++) {
        int rc = wv__s3xml_root(doc, k, name, sizeof name);
        int rc2 = run_each(doc, k, "Contents", &e);
        if (rc == WV_OK && rc2 == WV_OK) {
            /* the rest must be misc only: after a root it still parses */
            size_t rl = len - k;
            char *rest = malloc(rl + 4);
            memcpy(rest, "<x/>", 4);
            memcpy(rest + 4, doc + k, rl);
            int rr = wv__s3xml_root(rest, rl + 4, name, sizeof name);
            free(rest);
            if (rr != WV_OK) {
                FAILF("%s: its first %zu bytes are accepted, cut inside "
                      "the root element",
                      path, k);
                break;
            }
        } else if (rc != WV_CORRUPT || rc2 != WV_CORRUPT || e.n != 0) {
            FAILF("%s: its first %zu bytes give %s and %s (%zu entries), "
                  "wanted CORRUPT",
                  path, k, name_of(rc), name_of(rc2), e.n);
            break;
        }
    }
    entries_clear(&e);
    free(doc);
}

TEST_IMPL(xmlfiles_valid)
{
    struct names nm;
    char dir[600], path[1200];
    failures = 0;
    size_t n = check_dir("valid", NULL);
    snprintf(dir, sizeof dir, "%s/valid", DATA);
    list_xml(dir, &nm);
    size_t rgw = 0;
    for (size_t i = 0; i < nm.n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, nm.v[i]);
        check_prefixes(path);
        rgw += strncmp(nm.v[i], "rgw_", 4) == 0;
    }
    names_free(&nm);
    fprintf(stderr, "%zu valid documents checked (%zu from radosgw), "
                    "with every prefix\n",
            n, rgw);
    ASSERT(n >= 10 && rgw >= 8);
    ASSERT_EQ(failures, 0);
}

TEST_IMPL(xmlfiles_listing)
{
    failures = 0;
    size_t n = check_dir("listing", NULL);
    fprintf(stderr, "%zu listing pages checked\n", n);
    ASSERT(n >= 15);
    ASSERT_EQ(failures, 0);
}

/* 8 MiB is the largest document: one byte more is refused, whatever it
 * holds (by the parser, and before it by the HTTP layer, which keeps no
 * larger reply). */
TEST_IMPL(xmlfiles_size_limit)
{
    size_t max = (size_t)8 << 20;
    char *doc = malloc(max + 1), name[64];
    static const char head[] = "<ListBucketResult><Contents><Key>p/k</Key>"
                               "<Size>5</Size></Contents>",
                      tail[] = "</ListBucketResult>";
    struct entries e;
    ASSERT_NOT_NULL(doc);
    memset(&e, 0, sizeof e);
    set_fields(&e, "Key");
    /* head, whitespace text in the root, tail: exactly 8 MiB */
    memcpy(doc, head, sizeof head - 1);
    memset(doc + sizeof head - 1, ' ', max - (sizeof head - 1));
    memcpy(doc + max - (sizeof tail - 1), tail, sizeof tail - 1);
    ASSERT_OK(wv__s3xml_root(doc, max, name, sizeof name));
    ASSERT_STREQ(name, "ListBucketResult");
    ASSERT_OK(run_each(doc, max, "Contents", &e));
    ASSERT_EQ(e.n, 1);
    struct wv__buf out = {0};
    char msg[WV_ERRBUF_SIZE];
    ASSERT_OK(list_page(doc, max, &out, msg, sizeof msg));
    ASSERT_STREQ(out.p, "k=5");
    wv__buf_release(&out);
    memset(&out, 0, sizeof out);
    /* one more space inside the root */
    memmove(doc + max + 1 - (sizeof tail - 1), doc + max - (sizeof tail - 1),
            sizeof tail - 1);
    doc[max - (sizeof tail - 1)] = ' ';
    ASSERT_EQ(wv__s3xml_root(doc, max + 1, name, sizeof name), WV_CORRUPT);
    ASSERT_EQ(run_each(doc, max + 1, "Contents", &e), WV_CORRUPT);
    ASSERT_EQ(e.n, 0);
    char v[16];
    ASSERT_EQ(wv__s3xml_field(doc, max + 1, "Contents", v, sizeof v),
              WV_CORRUPT);
    /* the S3 backend's listing never gets it */
    ASSERT_EQ(list_page(doc, max + 1, &out, msg, sizeof msg), WV_BACKEND);
    ASSERT_CONTAINS(msg, "reply is larger than the 8388608 bytes allowed");
    ASSERT(strstr(msg, "cannot reach") == NULL); /* it answered */
    ASSERT_EQ(out.len, 0);
    wv__buf_release(&out);
    entries_clear(&e);
    free(doc);
}
