/*
 * fuzz_manifest.c -- libFuzzer harness for the repository's JSON parsers:
 * manifests and part records (src/repo/manifest.c, versions 1 and 2) and
 * index objects (src/repo/repo.c), and the done markers of multi-writer
 * checkpoints (src/repo/parts.c): the bytes a repository reads back from
 * a store it may not trust.
 *
 * Every input is parsed as a manifest and as an index object. A manifest
 * that parses is encoded again, and the encoding must parse to the same
 * checkpoint and encode to identical bytes (its id is the hash of those
 * bytes, so the encoder must be deterministic). Any difference abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "repo.h"

static int count_entry(void *arg, const struct wv__chunk_loc *l)
{
    (void)l;
    ++*(size_t *)arg;
    return WV_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = size ? (const char *)data : "";
    struct wv__err err = {0};
    size_t n = 0;
    wv__index_parse(text, size, "index", count_entry, &n, &err);
    char id[65];
    int64_t when;
    if (wv__part_done_parse(text, size, id, &when) == 0 &&
        (strlen(id) != 64 || when < -1))
        abort();

    struct wv__manifest a, b;
    wv__clearerr(&err);
    if (wv__manifest_parse(text, size, "manifest", &a, &err) != WV_OK)
        return 0;
    struct wv__buf e1 = {0}, e2 = {0};
    if (wv__manifest_encode(&a, &e1) != WV_OK)
        abort();
    wv__clearerr(&err);
    if (wv__manifest_parse(e1.p, e1.len, "re-encoded", &b, &err) != WV_OK)
        abort();
    if (wv__manifest_encode(&b, &e2) != WV_OK || e1.len != e2.len ||
        memcmp(e1.p, e2.p, e1.len) != 0 || a.n_tensors != b.n_tensors ||
        a.n_meta != b.n_meta || strcmp(a.parent, b.parent) != 0)
        abort();
    wv__buf_release(&e1);
    wv__buf_release(&e2);
    wv__manifest_release(&a);
    wv__manifest_release(&b);
    return 0;
}
