/*
 * remote_off.c -- reading s3:// and http(s):// URLs in a library built
 * without libcurl (WV_WITH_S3=OFF): compiled instead of remote.c, it
 * refuses them naming the option (wv__is_url, in fmt.c, still sends them
 * here rather than to open(2)).
 */
#include "core.h"
#include "fmt.h"
#include "tensor.h"

int wv__load_remote(const char *url, const wv_load_opts *opts,
                    wv_model **out, struct wv__err *err)
{
    (void)opts;
    *out = NULL;
    return wv__seterr(err, WV_UNSUPPORTED,
                      "%s: built without S3 support (WV_WITH_S3=OFF), "
                      "which also reads http(s):// URLs",
                      url);
}
