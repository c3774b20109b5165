/*
 * stream.c -- a tensor's elements converted to another dtype, in slices.
 *
 * Format writers that save under a cast (wv convert --dtype) get the
 * converted bytes slice by slice through a sink, so no second whole copy
 * of a tensor is ever made;
 * wv__wfile_tensor() is the sink that writes them to an output file
 * (core/file.c). The conversion itself is wv__cast() (dtype.c).
 *
 * A deferred tensor (a checkout streamed to a file) has no data in memory:
 * its source feeds its bytes as they are read, in pieces of any size; a
 * cast then gathers whole slices of elements in a staging buffer first.
 */
#include "core.h"
#include "tensor.h"

/* Elements per conversion slice: whole blocks of any block dtype, since
 * 131072 is a multiple of every ggml block size (32 and 256), and at most
 * 1 MiB of 8-byte elements. */
#define WV__STREAM_SLICE ((size_t)1 << 17)

/* The bytes of a deferred tensor, converted a slice at a time. */
struct cast_stage {
    wv_dtype from, to;
    unsigned char *stage, *tmp; /* a slice of source bytes; converted */
    size_t have, cap;           /* bytes staged; a slice's bytes */
    uint64_t left;              /* elements still to come */
    bool (*sink)(void *arg, const void *p, size_t n);
    void *arg;
    bool stopped;
};

/* Convert and pass on the staged bytes: `elems` elements. */
static bool stage_flush(struct cast_stage *c, uint64_t elems)
{
    wv__cast(c->from, c->stage, c->to, c->tmp, (size_t)elems);
    c->left -= elems;
    c->have = 0;
    if (!c->sink(c->arg, c->tmp, (size_t)wv__dtype_span(c->to, elems)))
        c->stopped = true;
    return !c->stopped;
}

static bool stage_sink(void *arg, const void *p, size_t n)
{
    struct cast_stage *c = arg;
    const unsigned char *b = p;
    while (n > 0 && !c->stopped) {
        size_t k = c->cap - c->have < n ? c->cap - c->have : n;
        memcpy(c->stage + c->have, b, k);
        c->have += k;
        b += k;
        n -= k;
        if (c->have == c->cap)
            stage_flush(c, WV__STREAM_SLICE);
    }
    return !c->stopped;
}

static int stream_deferred(const struct wv_tensor *t, wv_dtype to,
                           bool (*sink)(void *arg, const void *p, size_t n),
                           void *arg)
{
    const struct wv__tensor_src *s = t->src;
    if (to == t->dtype || to == WV_DTYPE_INVALID)
        return s->fill(s->arg, t, sink, arg);
    struct cast_stage c = {t->dtype, to, NULL, NULL, 0, 0,
                           wv_tensor_numel(t), sink, arg, false};
    c.cap = (size_t)wv__dtype_span(t->dtype, WV__STREAM_SLICE);
    c.stage = wv__malloc(c.cap);
    c.tmp = wv__malloc((size_t)wv__dtype_span(to, WV__STREAM_SLICE));
    int rc = c.stage && c.tmp ? s->fill(s->arg, t, stage_sink, &c)
                              : WV_NOMEM;
    /* the last, partial slice (whole elements, since the tensor is),
     * once the source gave every byte */
    if (rc == WV_OK && !c.stopped && c.left > 0 && c.left < WV__STREAM_SLICE &&
        wv__dtype_span(t->dtype, c.left) == c.have)
        stage_flush(&c, c.left);
    wv__free(c.stage);
    wv__free(c.tmp);
    return rc;
}

int wv__tensor_stream(const struct wv_tensor *t, wv_dtype to,
                      bool (*sink)(void *arg, const void *p, size_t n),
                      void *arg)
{
    if (t->data == NULL && t->src != NULL && t->nbytes > 0)
        return stream_deferred(t, to, sink, arg);
    if (to == t->dtype || to == WV_DTYPE_INVALID) {
        sink(arg, t->data, t->nbytes);
        return WV_OK;
    }
    uint64_t n = wv_tensor_numel(t);
    size_t slice = WV__STREAM_SLICE;
    unsigned char *tmp = wv__malloc((size_t)wv__dtype_span(to, slice));
    if (tmp == NULL)
        return WV_NOMEM;
    for (uint64_t i = 0; i < n; i += slice) {
        size_t k = n - i < slice ? (size_t)(n - i) : slice;
        wv__cast(t->dtype, t->data + wv__dtype_span(t->dtype, i), to, tmp,
                 k);
        if (!sink(arg, tmp, (size_t)wv__dtype_span(to, k)))
            break;
    }
    wv__free(tmp);
    return WV_OK;
}

static bool wfile_sink(void *arg, const void *p, size_t n)
{
    struct wv__wfile *f = arg;
    wv__wfile_write(f, p, n);
    return f->rc == WV_OK;
}

void wv__wfile_tensor(struct wv__wfile *f, const struct wv_tensor *t,
                      wv_dtype to)
{
    int rc = wv__tensor_stream(t, to, wfile_sink, f);
    if (rc != WV_OK && f->rc == WV_OK)
        f->rc = rc != WV_NOMEM ? rc /* its message is set */
                               : wv__seterr(f->err, WV_NOMEM,
                                            "%s: out of memory", f->path);
}
