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
 *
 * An index load (WV_LOAD_INDEX: names, dtypes and shapes, no data) of a
 * format whose reader can skip the data -- safetensors, npy, GGUF, pth --
 * reads through a small cache of ranged GETs instead (struct rcache): a
 * miss fetches at least 64 KiB from the offset asked for, twice as much
 * as the last fetch when the readers go on where it ended (GGUF's key-
 * values and tensor infos, a long data.pkl), and what was fetched serves
 * later small reads. A safetensors header then costs one or two GETs, a
 * pth file the zip's tail (end records and central directory), the start
 * (data.pkl) and perhaps the rest of a long pickle. Other formats (Keras
 * HDF5, MXNet, npz) are fetched whole, as for a full load.
 */
#include "core.h"
#include "fmt.h"
#include "http.h"
#include "tensor.h"

static int robj_read(void *ctx, uint64_t off, void *buf, size_t len,
                     struct wv__err *err)
{
    return wv__robj_read(ctx, off, buf, len, err);
}

#define RC_FIRST ((size_t)64 << 10) /* the smallest fetch                */
#define RC_MAX ((size_t)16 << 20)   /* readahead stops growing here;
                                       larger reads bypass the cache    */
#define RC_SLOTS 8                  /* extents kept (oldest replaced)   */

struct rcache {
    struct wv__robj *o;
    struct rc_ext {
        uint64_t off;
        size_t len;
        unsigned char *p;
    } ext[RC_SLOTS];
    size_t next;   /* the slot the next fetch replaces   */
    size_t step;   /* the next fetch's least length      */
    uint64_t last; /* where the last fetch ended          */
};

static void rcache_release(struct rcache *c)
{
    for (size_t i = 0; i < RC_SLOTS; i++)
        wv__free(c->ext[i].p);
}

/* Copy [off, off+len) into buf from the cached extents, fetching what
 * they lack. */
static int rcache_read(void *ctx, uint64_t off, void *buf, size_t len,
                       struct wv__err *err)
{
    struct rcache *c = ctx;
    unsigned char *dst = buf, *p = NULL;
    uint64_t size = wv__robj_size(c->o);
    int rc = WV_OK;
    while (len > 0) {
        const struct rc_ext *hit = NULL;
        for (size_t i = 0; i < RC_SLOTS && hit == NULL; i++)
            if (c->ext[i].p && off >= c->ext[i].off &&
                off - c->ext[i].off < c->ext[i].len)
                hit = &c->ext[i];
        if (hit) {
            size_t have = hit->len - (size_t)(off - hit->off);
            size_t k = len < have ? len : have;
            memcpy(dst, hit->p + (off - hit->off), k);
            dst += k;
            off += k;
            len -= k;
            continue;
        }
        if (len >= RC_MAX) { /* a large read: straight into buf */
            WV_TRY(wv__robj_read(c->o, off, dst, len, err));
            break;
        }
        /* Reading on from the last fetch: fetch more next time. */
        if (off != c->last)
            c->step = RC_FIRST;
        else if (c->step < RC_MAX)
            c->step *= 2;
        size_t want = len > c->step ? len : c->step;
        if (want > size - off) /* off + len <= size: wv__src_read checked */
            want = (size_t)(size - off);
        p = wv__malloc(want);
        WV_CHECK(p != NULL, WV_NOMEM, "out of memory");
        WV_TRY(wv__robj_read(c->o, off, p, want, err));
        struct rc_ext *e = &c->ext[c->next];
        c->next = (c->next + 1) % RC_SLOTS;
        wv__free(e->p);
        *e = (struct rc_ext){off, want, p};
        p = NULL;
        c->last = off + want;
    }
out:
    wv__free(p);
    return rc;
}

/* Whether the content is of a format whose reader skips the tensor data
 * of an index load; its id in *fmt. */
static int indexable(const struct wv__src *src, wv_format *fmt,
                     struct wv__err *err)
{
    static const wv_format ids[] = {WV_FMT_SAFETENSORS, WV_FMT_NPY,
                                    WV_FMT_GGUF, WV_FMT_PTH};
    unsigned char head[64];
    size_t hn = src->size < sizeof head ? (size_t)src->size : sizeof head;
    int rc = wv__src_read(src, 0, head, hn, err);
    *fmt = WV_FMT_AUTO;
    for (size_t i = 0; rc == WV_OK && i < sizeof ids / sizeof ids[0]; i++)
        if (wv__format_get(ids[i])->probe(src, head, hn)) {
            *fmt = ids[i];
            break;
        }
    return rc;
}

int wv__load_remote(const char *url, const wv_load_opts *opts,
                    wv_model **out, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__robj *o = NULL;
    unsigned char *whole = NULL;
    struct rcache cache = {0};
    *out = NULL;
    WV_TRY(wv__robj_open(url, err, &o));
    struct wv__src src = {-1, wv__robj_size(o), NULL, url, robj_read, o,
                          NULL, 0, NULL, false};
    if (opts && wv__load_opts_has_names(opts) && opts->names) {
        src.names = opts->names;
        src.n_names = opts->n_names;
    }
    if (opts && (opts->flags & WV_LOAD_INDEX)) {
        wv_format fmt = opts->format;
        cache.o = o;
        cache.step = RC_FIRST;
        cache.last = UINT64_MAX;
        struct wv__src cached = src;
        cached.remote_read = rcache_read;
        cached.remote_ctx = &cache;
        if (fmt == WV_FMT_AUTO)
            WV_TRY(indexable(&cached, &fmt, err));
        if (fmt == WV_FMT_SAFETENSORS || fmt == WV_FMT_NPY ||
            fmt == WV_FMT_GGUF || fmt == WV_FMT_PTH) {
            wv_load_opts o2 = WV_LOAD_OPTS_INIT;
            o2.flags = opts->flags;
            o2.format = fmt;
            if (wv__load_opts_has_max_expand(opts))
                o2.max_expand = opts->max_expand;
            rc = wv__load_src(&cached, &o2, out, err, NULL, 0);
            goto out;
        }
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
    rcache_release(&cache);
    wv__robj_close(o);
    return rc;
}
