/*
 * mxnet.c -- placeholder: the mxnet reader/writer is being written. Its probe
 * matches nothing, so no file is ever routed here, and it is not listed in
 * `wv --help` or the README.
 */
#include "wv_int.h"

static int probe(const struct wv__src *src, const unsigned char *h, size_t n)
{
    (void)src;
    (void)h;
    (void)n;
    return 0;
}

static int load(const struct wv__src *src, unsigned flags, wv_model *m,
                struct wv__err *err)
{
    (void)flags;
    (void)m;
    return wv__seterr(err, WV_UNSUPPORTED, "%s: mxnet is not supported yet",
                      src->name);
}

const struct wv__format_ops wv__fmt_mxnet = {
    WV_FMT_MXNET, "mxnet", ".mxnet-unsupported", probe, load, NULL,
};
