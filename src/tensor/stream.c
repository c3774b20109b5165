/*
 * stream.c -- a tensor's elements converted to another dtype, in slices.
 *
 * Format writers that save under a cast (wv convert --dtype) get the
 * converted bytes slice by slice through a sink, so no second whole copy
 * of a tensor is ever made;
 * wv__wfile_tensor() is the sink that writes them to an output file
 * (core/file.c). The conversion itself is wv__cast() (dtype.c).
 */
#include "core.h"
#include "tensor.h"

/* Elements per conversion slice: whole blocks of any block dtype, since
 * 131072 is a multiple of every ggml block size (32 and 256), and at most
 * 1 MiB of 8-byte elements. */
#define WV__STREAM_SLICE ((size_t)1 << 17)

int wv__tensor_stream(const struct wv_tensor *t, wv_dtype to,
                      bool (*sink)(void *arg, const void *p, size_t n),
                      void *arg)
{
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
    if (wv__tensor_stream(t, to, wfile_sink, f) != WV_OK && f->rc == WV_OK)
        f->rc = wv__seterr(f->err, WV_NOMEM, "%s: out of memory", f->path);
}
