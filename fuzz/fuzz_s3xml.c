/*
 * fuzz_s3xml.c -- libFuzzer harness for the bounded parser of S3's XML
 * replies (src/net/s3xml.c): listings, errors, multipart replies, the
 * bytes an S3 backend reads from a server it may not trust.
 *
 * Every input goes through the three entry points. The entries a listing
 * yields must be NUL-free UTF-8 of at most 4096 bytes; they are written
 * back as a document (escaped) which must parse to the same entries, in
 * the same order. Any difference abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MAXV 4096

static const char *const fields[3] = {"Key", "Size", "ETag"};

struct entries {
    struct wv__buf doc; /* the entries written back */
    size_t n;
};

static void check_value(const char *v)
{
    if (v == NULL)
        return;
    size_t n = strlen(v);
    if (n > MAXV || !wv__utf8_valid(v, n))
        abort();
}

static int collect(void *arg, const char *const *vals)
{
    struct entries *e = arg;
    wv__buf_adds(&e->doc, "<Contents>");
    for (int i = 0; i < 3; i++) {
        check_value(vals[i]);
        if (vals[i] == NULL)
            continue;
        wv__buf_addf(&e->doc, "<%s>", fields[i]);
        wv__xml_escape(&e->doc, vals[i]);
        wv__buf_addf(&e->doc, "</%s>", fields[i]);
    }
    wv__buf_adds(&e->doc, "</Contents>");
    e->n++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *xml = size ? (const char *)data : "";
    char name[64], code[256];
    wv__s3xml_root(xml, size, name, sizeof name);
    if (wv__s3xml_field(xml, size, "Code", code, sizeof code) == WV_OK)
        check_value(code);
    wv__s3xml_field(xml, size, "NextContinuationToken", code, sizeof code);

    struct entries a;
    memset(&a, 0, sizeof a);
    wv__buf_adds(&a.doc, "<ListBucketResult>");
    int rc = wv__s3xml_each(xml, size, "Contents", fields, 3, collect, &a);
    wv__buf_adds(&a.doc, "</ListBucketResult>");
    if (rc == WV_NOMEM || a.doc.oom) {
        wv__buf_release(&a.doc);
        return 0;
    }
    if (rc != WV_OK) {
        if (a.n != 0) /* nothing is delivered from a bad document */
            abort();
        wv__buf_release(&a.doc);
        return 0;
    }
    /* Written back and read again: the same entries. */
    struct entries b;
    memset(&b, 0, sizeof b);
    wv__buf_adds(&b.doc, "<ListBucketResult>");
    if (wv__s3xml_each(a.doc.p, a.doc.len, "Contents", fields, 3, collect,
                       &b) != WV_OK)
        abort();
    wv__buf_adds(&b.doc, "</ListBucketResult>");
    if (b.n != a.n || b.doc.len != a.doc.len ||
        memcmp(a.doc.p, b.doc.p, a.doc.len) != 0)
        abort();
    wv__buf_release(&a.doc);
    wv__buf_release(&b.doc);
    return 0;
}
