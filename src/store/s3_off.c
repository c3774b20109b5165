/*
 * s3_off.c -- the s3:// scheme of a library built without libcurl
 * (WV_WITH_S3=OFF): compiled instead of s3.c, it keeps the scheme known so
 * that opening one says which option left it out rather than calling the
 * scheme unknown.
 */
#include "store.h"

static int s3_off_open(const char *uri, const char *rest, bool create,
                       struct wv__err *err, struct wv__store **out)
{
    (void)rest;
    (void)create;
    *out = NULL;
    return wv__seterr(err, WV_UNSUPPORTED,
                      "%s: built without S3 support (WV_WITH_S3=OFF)", uri);
}

const struct wv__backend wv__backend_s3 = {"s3", s3_off_open};
