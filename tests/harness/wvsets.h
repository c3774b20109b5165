/*
 * wvsets.h -- what the unit tests and the fuzz harnesses share: comparing
 * two tensor sets after a round trip, and reading a file back. Header-only (static
 * functions): each harness is its own program.
 */
#ifndef WV_TEST_SETS_H
#define WV_TEST_SETS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weightvault.h"

#define WVF_BY_NAME 1u      /* match b's tensors by name, not position    */
#define WVF_IGNORE_NAMES 2u /* by position, names may differ              */
#define WVF_META_ORDER 4u   /* metadata equal, in the same order          */
#define WVF_META_KEYS 8u    /* metadata equal as a map                    */

static inline int wvf_same_tensor(const wv_tensor *x, const wv_tensor *y)
{
    if (y == NULL || wv_tensor_dtype(x) != wv_tensor_dtype(y) ||
        wv_tensor_ndim(x) != wv_tensor_ndim(y) ||
        wv_tensor_nbytes(x) != wv_tensor_nbytes(y))
        return 0;
    if (memcmp(wv_tensor_shape(x), wv_tensor_shape(y),
               sizeof(uint64_t) * (size_t)wv_tensor_ndim(x)) != 0)
        return 0;
    return wv_tensor_nbytes(x) == 0 ||
           memcmp(wv_tensor_data(x), wv_tensor_data(y),
                  wv_tensor_nbytes(x)) == 0;
}

/* Same tensors (and metadata when asked) in a and b. */
static inline int wvf_same(const wv_model *a, const wv_model *b, unsigned how)
{
    if (wv_model_count(a) != wv_model_count(b))
        return 0;
    for (size_t i = 0; i < wv_model_count(a); i++) {
        const wv_tensor *x = wv_model_tensor(a, i);
        const wv_tensor *y = (how & WVF_BY_NAME)
                                 ? wv_model_find(b, wv_tensor_name(x))
                                 : wv_model_tensor(b, i);
        if (!(how & (WVF_BY_NAME | WVF_IGNORE_NAMES)) && y &&
            strcmp(wv_tensor_name(x), wv_tensor_name(y)) != 0)
            return 0;
        if (!wvf_same_tensor(x, y))
            return 0;
    }
    if (!(how & (WVF_META_ORDER | WVF_META_KEYS)))
        return 1;
    if (wv_model_meta_count(a) != wv_model_meta_count(b))
        return 0;
    for (size_t i = 0; i < wv_model_meta_count(a); i++) {
        const char *k1, *v1, *k2, *v2;
        wv_model_meta(a, i, &k1, &v1);
        if (how & WVF_META_ORDER) {
            wv_model_meta(b, i, &k2, &v2);
            if (strcmp(k1, k2) != 0)
                return 0;
        } else {
            v2 = wv_model_get_meta(b, k1);
        }
        if (v2 == NULL || strcmp(v1, v2) != 0)
            return 0;
    }
    return 1;
}

/* A whole file in a malloc()ed buffer, or NULL. */
static inline unsigned char *wvf_slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(len > 0 ? (size_t)len : 1);
    if (p && len > 0 && fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = len > 0 ? (size_t)len : 0;
    return p;
}

#endif
