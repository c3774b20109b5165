/*
 * rados_off.c -- the rados:// scheme of a library built without librados
 * (WV_WITH_RADOS=OFF): compiled instead of rados.c, it keeps the scheme
 * known so that opening one says which option left it out rather than
 * calling the scheme unknown.
 */
#include "store.h"

static int rados_off_open(const char *uri, const char *rest, bool create,
                          struct wv__err *err, struct wv__store **out)
{
    (void)rest;
    (void)create;
    *out = NULL;
    return wv__seterr(err, WV_UNSUPPORTED,
                      "%s: built without RADOS support (WV_WITH_RADOS=OFF)",
                      uri);
}

const struct wv__backend wv__backend_rados = {"rados", rados_off_open};
