/*
 * remote.c -- reading a weights file straight from object storage or a web
 * server: s3://BUCKET/KEY and http(s)://HOST/PATH (src/net/http.h does the
 * requests). Nothing is staged on disk.
 *
 * A safetensors file is read as a pread-mode source whose reads are ranged
 * GETs: the 8-byte length and the header first, then the data of the
 * tensors wanted, each in one (parallel, for large ones) ranged read into
 * its own buffer. Every other format is fetched whole into memory with
 * parallel ranged GETs and parsed from there: their readers hop around the
 * file in small steps that would each cost a round trip.
 */
#include "wv_int.h"
#include "http.h"

bool wv__is_url(const char *path)
{
    return strncmp(path, "s3://", 5) == 0 ||
           strncmp(path, "http://", 7) == 0 ||
           strncmp(path, "https://", 8) == 0;
}

static int robj_read(void *ctx, uint64_t off, void *buf, size_t len,
                     struct wv__err *err)
{
    return wv__robj_read(ctx, off, buf, len, err);
}

int wv__load_remote(const char *url, const wv_load_opts *opts,
                    wv_model **out, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__robj *o = NULL;
    unsigned char *whole = NULL;
    *out = NULL;
    WV_TRY(wv__robj_open(url, err, &o));
    struct wv__src src = {-1, wv__robj_size(o), NULL, url, robj_read, o,
                          NULL, 0, NULL, false};
    if (opts && wv__load_opts_has_names(opts) && opts->names) {
        src.names = opts->names;
        src.n_names = opts->n_names;
    }
    unsigned char head[64];
    size_t hn = src.size < sizeof head ? (size_t)src.size : sizeof head;
    WV_TRY(wv__src_read(&src, 0, head, hn, err));
    bool st = (opts && opts->format == WV_FMT_SAFETENSORS) ||
              ((opts == NULL || opts->format == WV_FMT_AUTO) &&
               wv__format_get(WV_FMT_SAFETENSORS)->probe(&src, head, hn));
    if (st) {
        wv_load_opts o2 = WV_LOAD_OPTS_INIT;
        if (opts) {
            o2.flags = opts->flags;
            if (wv__load_opts_has_max_expand(opts))
                o2.max_expand = opts->max_expand;
        }
        o2.format = WV_FMT_SAFETENSORS;
        rc = wv__load_src(&src, &o2, out, err, NULL, 0);
        goto out;
    }
    WV_CHECK(src.size <= SIZE_MAX / 2, WV_RANGE, "%s: too large (%llu bytes)",
             url, (unsigned long long)src.size);
    whole = wv__malloc(src.size ? (size_t)src.size : 1);
    WV_CHECK(whole != NULL, WV_NOMEM, "%s: out of memory for %llu bytes", url,
             (unsigned long long)src.size);
    WV_TRY(wv__src_read(&src, 0, whole, (size_t)src.size, err));
    struct wv__src mem = {-1, src.size, whole, url, NULL, NULL, src.names,
                          src.n_names, NULL, false};
    rc = wv__load_src(&mem, opts, out, err, NULL, 0);
    if (rc == WV_OK) {
        rc = wv__model_keep(*out, whole, 0, false);
        whole = NULL; /* kept, or released by the failed keep */
        if (rc != WV_OK) {
            wv_model_free(*out);
            *out = NULL;
            WV_CHECK(0, WV_NOMEM, "out of memory");
        }
    }
out:
    wv__free(whole);
    wv__robj_close(o);
    return rc;
}
