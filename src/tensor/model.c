/*
 * model.c -- the tensor set (wv_model): tensors in insertion order with a
 * name index, ordered string metadata, and the memory the tensors borrow.
 *
 * Invariants: names are unique; every tensor's nbytes equals its element
 * count times its dtype size, or for block-quantised dtypes its element
 * count / block elements * block bytes with the innermost extent a multiple
 * of the block elements (checked with overflow-safe arithmetic when the
 * tensor is added); `data` is non-NULL whenever nbytes > 0.
 */
#include "core.h"
#include "tensor.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int wv_model_new(wv_model **out)
{
    *out = wv__calloc(1, sizeof(wv_model));
    return *out ? WV_OK : WV_NOMEM;
}

void wv_model_free(wv_model *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n_tensors; i++) {
        wv__free(m->tensors[i].name);
        wv__free(m->tensors[i].owned);
    }
    for (size_t i = 0; i < m->n_meta; i++) {
        wv__free(m->meta[i].key);
        wv__free(m->meta[i].value);
    }
    wv__free(m->tensors);
    wv__free(m->index);
    wv__free(m->meta);
    for (size_t i = 0; i < m->n_regions; i++) {
        if (m->regions[i].mapped)
            munmap(m->regions[i].p, m->regions[i].len);
        else
            wv__free(m->regions[i].p);
    }
    wv__free(m->regions);
    wv__free(m);
}

static void release_region(void *p, size_t len, bool mapped)
{
    if (mapped)
        munmap(p, len);
    else
        wv__free(p);
}

int wv__model_keep(wv_model *m, void *p, size_t len, bool mapped)
{
    if (p == NULL)
        return WV_OK;
    struct wv__region *r =
        wv__realloc(m->regions, (m->n_regions + 1) * sizeof *r);
    if (r == NULL) {
        release_region(p, len, mapped);
        return WV_NOMEM;
    }
    m->regions = r;
    r[m->n_regions++] = (struct wv__region){p, len, mapped};
    return WV_OK;
}

int wv__model_absorb(wv_model *dst, wv_model *src, struct wv__err *err)
{
    int rc = WV_OK;
    size_t i, moved = 0;
    for (i = 0; i < src->n_tensors; i++)
        WV_CHECK(wv_model_find(dst, src->tensors[i].name) == NULL, WV_EXISTS,
                 "tensor '%.200s' appears twice", src->tensors[i].name);
    /* Reserve first so the moves below cannot fail half-way. */
    struct wv__region *r = wv__realloc(
        dst->regions, (dst->n_regions + src->n_regions + 1) * sizeof *r);
    WV_CHECK(r != NULL, WV_NOMEM, "out of memory");
    dst->regions = r;
    dst->index_only |= src->index_only;
    for (i = 0; i < src->n_tensors; i++) {
        struct wv_tensor *t = &src->tensors[i];
        WV_TRY(wv__model_add(dst, t->name, strlen(t->name), t->dtype,
                             t->ndim, t->shape, t->data, t->nbytes, t->owned,
                             err));
        t->owned = NULL; /* dst owns it now, even had the add failed */
        moved++;
    }
    memcpy(dst->regions + dst->n_regions, src->regions,
           src->n_regions * sizeof *r);
    dst->n_regions += src->n_regions;
    src->n_regions = 0;
    for (i = 0; i < src->n_meta; i++)
        if (wv_model_get_meta(dst, src->meta[i].key) == NULL)
            WV_CHECK(wv_model_set_meta(dst, src->meta[i].key,
                                       src->meta[i].value) == WV_OK,
                     WV_NOMEM, "out of memory");
out:
    if (rc != WV_OK && moved > 0 && src->n_regions > 0) {
        /* Tensors already moved borrow from src's regions: keep those
         * alive by moving the regions anyway. */
        memcpy(dst->regions + dst->n_regions, src->regions,
               src->n_regions * sizeof *dst->regions);
        dst->n_regions += src->n_regions;
        src->n_regions = 0;
    }
    wv_model_free(src);
    return rc;
}

const char *wv_model_errmsg(const wv_model *m)
{
    return m ? m->err.msg : "no tensor set";
}

const char *wv_model_source_format(const wv_model *m)
{
    return m->source_format;
}

size_t wv_model_count(const wv_model *m)
{
    return m->n_tensors;
}

const wv_tensor *wv_model_tensor(const wv_model *m, size_t i)
{
    return i < m->n_tensors ? &m->tensors[i] : NULL;
}

/* FNV-1a: names are short, and the index only needs spreading. */
static size_t hash_name(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)h;
}

static size_t *index_slot(const wv_model *m, const char *name, size_t n)
{
    size_t mask = m->index_cap - 1;
    for (size_t i = hash_name(name, n) & mask;; i = (i + 1) & mask) {
        size_t v = m->index[i];
        if (v == 0)
            return &m->index[i];
        const char *tn = m->tensors[v - 1].name;
        if (strncmp(tn, name, n) == 0 && tn[n] == '\0')
            return &m->index[i];
    }
}

/* Enter every tensor into the (empty) index. */
static void index_fill(wv_model *m)
{
    for (size_t i = 0; i < m->n_tensors; i++) {
        const char *nm = m->tensors[i].name;
        *index_slot(m, nm, strlen(nm)) = i + 1;
    }
}

static int index_grow(wv_model *m)
{
    size_t cap = m->index_cap ? m->index_cap * 2 : 64;
    size_t *idx = wv__calloc(cap, sizeof *idx);
    if (idx == NULL)
        return WV_NOMEM;
    wv__free(m->index);
    m->index = idx;
    m->index_cap = cap;
    index_fill(m);
    return WV_OK;
}

int wv__model_select(wv_model *m, const char *const *names, size_t n,
                     struct wv__err *err)
{
    for (size_t k = 0; k < n; k++)
        if (wv_model_find(m, names[k]) == NULL)
            return wv__seterr(err, WV_NOTFOUND, "no tensor named '%.200s'",
                              names[k]);
    size_t keep = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        bool want = false;
        for (size_t k = 0; k < n && !want; k++)
            want = strcmp(m->tensors[i].name, names[k]) == 0;
        if (!want) {
            wv__free(m->tensors[i].name);
            wv__free(m->tensors[i].owned);
            continue;
        }
        m->tensors[keep++] = m->tensors[i];
    }
    m->n_tensors = keep;
    if (m->index_cap) { /* no index (NULL) while the set was empty */
        memset(m->index, 0, m->index_cap * sizeof *m->index);
        index_fill(m);
    }
    return WV_OK;
}

const wv_tensor *wv_model_find(const wv_model *m, const char *name)
{
    if (m->index_cap == 0)
        return NULL;
    size_t v = *index_slot(m, name, strlen(name));
    return v ? &m->tensors[v - 1] : NULL;
}

int wv__shape_bytes(wv_dtype dt, int ndim, const uint64_t *shape,
                    uint64_t *numel, uint64_t *nbytes)
{
    uint64_t n = 1;
    size_t be, bb;
    if (wv_dtype_block(dt, &be, &bb) != WV_OK)
        return WV_RANGE;
    for (int i = 0; i < ndim; i++)
        if (wv__mul_overflow(n, shape[i], &n))
            return WV_RANGE;
    /* Blocks run along the innermost dimension (a scalar has none). */
    if (be > 1 && (ndim == 0 || shape[ndim - 1] % be != 0))
        return WV_RANGE;
    if (wv__mul_overflow(n / be, bb, nbytes))
        return WV_RANGE;
    *numel = n;
    return WV_OK;
}

uint64_t wv__cast_nbytes(const struct wv_tensor *t, wv_dtype to)
{
    uint64_t numel = wv_tensor_numel(t);
    return wv__dtype_span(to, numel);
}

int wv__check_plain_dtypes(const wv_model *m, wv_dtype cast,
                           const char *path, struct wv__err *err)
{
    int rc = WV_OK;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        if (!wv__dtype_is_block(t->dtype))
            continue;
        if (!wv__dtype_is_block(wv__cast_target(t->dtype, cast)))
            continue;
        if (cast == WV_DTYPE_INVALID)
            WV_CHECK(0, WV_UNSUPPORTED,
                     "%s: tensor '%.200s' is %s; convert with --dtype "
                     "F32|F16|BF16 (dequantises Q4_0, Q4_1, Q5_0, Q5_1, "
                     "Q8_0, the K-quants Q2_K to Q8_K, IQ4_NL, IQ4_XS and "
                     "MXFP4) "
                     "or write GGUF",
                     path, t->name, wv_dtype_name(t->dtype));
        WV_CHECK(0, WV_UNSUPPORTED,
                 "%s: tensor '%.200s' is %s, which cannot be dequantised "
                 "(Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K to Q8_K, IQ4_NL, "
                 "IQ4_XS and MXFP4 can); "
                 "write GGUF to keep it",
                 path, t->name, wv_dtype_name(t->dtype));
    }
out:
    return rc;
}

void wv__shape_str(int ndim, const uint64_t *shape, char *buf, size_t cap)
{
    size_t o = 0;
    o += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", i ? ", " : "",
                              (unsigned long long)shape[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
}

int wv__model_add(wv_model *m, const char *name, size_t name_len,
                  wv_dtype dt, int ndim, const uint64_t *shape,
                  const void *data, size_t len, void *owned,
                  struct wv__err *err)
{
    int rc = WV_OK;
    uint64_t numel, nbytes;
    char *nm = NULL;
    WV_CHECK(dt > WV_DTYPE_INVALID && dt < WV__DTYPE_COUNT, WV_MISUSE,
             "tensor '%.*s' has an invalid dtype", (int)name_len, name);
    WV_CHECK(ndim >= 0 && ndim <= WV_MAX_DIMS, WV_RANGE,
             "tensor '%.*s' has %d dimensions, more than %d", (int)name_len,
             name, ndim, WV_MAX_DIMS);
    WV_CHECK(name_len > 0 && memchr(name, '\0', name_len) == NULL &&
                 wv__utf8_valid(name, name_len),
             WV_MISUSE, "tensor name '%.*s' is empty or not UTF-8",
             (int)name_len, name);
    WV_CHECK(wv__shape_bytes(dt, ndim, shape, &numel, &nbytes) == WV_OK,
             WV_RANGE, "tensor '%.*s' has a shape whose size overflows",
             (int)name_len, name);
    WV_CHECK(nbytes == len, WV_RANGE,
             "tensor '%.*s' has %zu bytes but its shape and dtype need %llu",
             (int)name_len, name, len, (unsigned long long)nbytes);
    WV_CHECK(len == 0 || data != NULL || m->index_only, WV_MISUSE,
             "tensor '%.*s' has no data", (int)name_len, name);
    if (m->n_tensors + 1 > m->index_cap / 2)
        WV_CHECK(index_grow(m) == WV_OK, WV_NOMEM, "out of memory");
    size_t *slot = index_slot(m, name, name_len);
    WV_CHECK(*slot == 0, WV_EXISTS, "duplicate tensor name '%.*s'",
             (int)name_len, name);
    if (m->n_tensors == m->cap_tensors) {
        size_t cap = m->cap_tensors ? m->cap_tensors * 2 : 16;
        struct wv_tensor *t = wv__realloc(m->tensors, cap * sizeof *t);
        WV_CHECK(t != NULL, WV_NOMEM, "out of memory");
        m->tensors = t;
        m->cap_tensors = cap;
    }
    nm = wv__strndup(name, name_len);
    WV_CHECK(nm != NULL, WV_NOMEM, "out of memory");
    struct wv_tensor *t = &m->tensors[m->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = nm;
    nm = NULL;
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->data = data;
    t->nbytes = len;
    t->owned = owned;
    owned = NULL;
    *slot = ++m->n_tensors;
out:
    wv__free(nm);
    wv__free(owned); /* ownership was passed in even when we fail */
    return rc;
}

int wv_model_add(wv_model *m, const char *name, wv_dtype dt, int ndim,
                 const uint64_t *shape, const void *data, size_t len,
                 unsigned flags)
{
    wv__clearerr(&m->err);
    void *owned = NULL;
    if (flags == WV_DATA_TAKE) {
        owned = (void *)(uintptr_t)data;
    } else if (flags == WV_DATA_COPY) {
        owned = wv__malloc(len);
        if (owned == NULL)
            return wv__seterr(&m->err, WV_NOMEM, "out of memory");
        if (len)
            memcpy(owned, data, len);
        data = owned;
    } else if (flags != WV_DATA_BORROW) {
        return wv__seterr(&m->err, WV_MISUSE, "unknown data flag %u", flags);
    }
    if (name == NULL)
        name = "";
    return wv__model_add(m, name, strlen(name), dt, ndim, shape, data, len,
                         owned, &m->err);
}

/* ---- metadata ----------------------------------------------------------- */

const char *wv_model_get_meta(const wv_model *m, const char *key)
{
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, key) == 0)
            return m->meta[i].value;
    return NULL;
}

int wv_model_set_meta(wv_model *m, const char *key, const char *value)
{
    char *v = wv__strdup(value);
    if (v == NULL)
        return wv__seterr(&m->err, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_meta; i++) {
        if (strcmp(m->meta[i].key, key) == 0) {
            wv__free(m->meta[i].value);
            m->meta[i].value = v;
            return WV_OK;
        }
    }
    if (m->n_meta == m->cap_meta) {
        size_t cap = m->cap_meta ? m->cap_meta * 2 : 8;
        struct wv__meta *nm = wv__realloc(m->meta, cap * sizeof *nm);
        if (nm == NULL) {
            wv__free(v);
            return wv__seterr(&m->err, WV_NOMEM, "out of memory");
        }
        m->meta = nm;
        m->cap_meta = cap;
    }
    char *k = wv__strdup(key);
    if (k == NULL) {
        wv__free(v);
        return wv__seterr(&m->err, WV_NOMEM, "out of memory");
    }
    m->meta[m->n_meta].key = k;
    m->meta[m->n_meta].value = v;
    m->n_meta++;
    if (m->meta_state == WV__META_NONE)
        m->meta_state = WV__META_FROM_FILE;
    return WV_OK;
}

size_t wv_model_meta_count(const wv_model *m)
{
    return m->n_meta;
}

int wv_model_meta(const wv_model *m, size_t i, const char **key,
                  const char **value)
{
    if (i >= m->n_meta) {
        *key = *value = NULL;
        return WV_RANGE;
    }
    *key = m->meta[i].key;
    *value = m->meta[i].value;
    return WV_OK;
}

/* ---- tensors ------------------------------------------------------------ */

const char *wv_tensor_name(const wv_tensor *t)
{
    return t->name;
}
wv_dtype wv_tensor_dtype(const wv_tensor *t)
{
    return t->dtype;
}
int wv_tensor_ndim(const wv_tensor *t)
{
    return t->ndim;
}
const uint64_t *wv_tensor_shape(const wv_tensor *t)
{
    return t->shape;
}
size_t wv_tensor_nbytes(const wv_tensor *t)
{
    return t->nbytes;
}
uint64_t wv_tensor_numel(const wv_tensor *t)
{
    size_t be, bb;
    if (wv_dtype_block(t->dtype, &be, &bb) != WV_OK || bb == 0)
        return 0;
    return (uint64_t)(t->nbytes / bb) * be;
}
const void *wv_tensor_data(const wv_tensor *t)
{
    return t->data;
}

int wv_model_set_region(wv_model *m, const char *name,
                        const uint64_t *global_shape, const uint64_t *offset)
{
    struct wv__err *err = &m->err;
    int rc = WV_OK;
    wv__clearerr(err);
    WV_CHECK(name != NULL && (global_shape != NULL && offset != NULL),
             WV_MISUSE, "a region needs a tensor name, a global shape and "
                        "an offset");
    wv_tensor *t = (wv_tensor *)wv_model_find(m, name);
    WV_CHECK(t != NULL, WV_NOTFOUND, "no tensor '%.200s' in the set", name);
    WV_CHECK(!wv__dtype_is_block(t->dtype), WV_MISUSE,
             "tensor '%.200s' has the block-quantised dtype %s, which "
             "cannot be cut into regions",
             name, wv_dtype_name(t->dtype));
    uint64_t numel, nb;
    for (int d = 0; d < t->ndim; d++) {
        WV_CHECK(offset[d] <= global_shape[d] &&
                     t->shape[d] <= global_shape[d] - offset[d],
                 WV_RANGE, "tensor '%.200s': offset %llu + extent %llu "
                           "exceeds the global extent %llu in dimension %d",
                 name, (unsigned long long)offset[d],
                 (unsigned long long)t->shape[d],
                 (unsigned long long)global_shape[d], d);
    }
    WV_CHECK(wv__shape_bytes(t->dtype, t->ndim, global_shape, &numel, &nb) ==
                 WV_OK,
             WV_RANGE, "tensor '%.200s': the global shape is too large",
             name);
    memcpy(t->gshape, global_shape, (size_t)t->ndim * sizeof *t->gshape);
    memcpy(t->goffset, offset, (size_t)t->ndim * sizeof *t->goffset);
    t->has_region = true;
out:
    return rc;
}

int wv_tensor_region(const wv_tensor *t, const uint64_t **global_shape,
                     const uint64_t **offset)
{
    if (global_shape)
        *global_shape = t->has_region ? t->gshape : NULL;
    if (offset)
        *offset = t->has_region ? t->goffset : NULL;
    return t->has_region ? 1 : 0;
}

int wv_tensor_read(const wv_tensor *t, size_t off, void *buf, size_t len)
{
    size_t end;
    if (__builtin_add_overflow(off, len, &end) || end > t->nbytes)
        return WV_RANGE;
    if (len && t->data == NULL) /* loaded with WV_LOAD_INDEX */
        return WV_MISUSE;
    if (len)
        memcpy(buf, t->data + off, len);
    return WV_OK;
}

int wv_tensor_sha256(const wv_tensor *t, unsigned char out[32])
{
    if (t->data == NULL && t->nbytes > 0) /* loaded with WV_LOAD_INDEX */
        return WV_MISUSE;
    struct wv__sha256 *h = wv__sha256_new();
    if (h == NULL)
        return WV_NOMEM;
    wv__sha256_update(h, t->data, t->nbytes);
    wv__sha256_final(h, out);
    wv__sha256_free(h);
    return WV_OK;
}

/* ---- copying a whole set out -------------------------------------------- */

struct readall_ctx {
    const wv_model *m;
    void *const *dst;
    const uint64_t *start; /* start[i]: tensor i's offset in the sum */
};

/* Copy bytes [off, off+len) of the tensors laid end to end. */
static int readall_range(void *ctx, size_t off, size_t len,
                         struct wv__err *err)
{
    const struct readall_ctx *c = ctx;
    size_t n = c->m->n_tensors, lo = 0, hi = n;
    (void)err;
    while (lo + 1 < hi) { /* last tensor starting at or before off */
        size_t mid = lo + (hi - lo) / 2;
        if (c->start[mid] <= off)
            lo = mid;
        else
            hi = mid;
    }
    uint64_t end = (uint64_t)off + len;
    for (size_t i = lo; i < n && c->start[i] < end; i++) {
        const struct wv_tensor *t = &c->m->tensors[i];
        uint64_t a = c->start[i] > off ? c->start[i] : off;
        uint64_t b = c->start[i] + t->nbytes < end ? c->start[i] + t->nbytes
                                                   : end;
        if (a < b && c->dst[i] != NULL)
            memcpy((unsigned char *)c->dst[i] + (a - c->start[i]),
                   t->data + (a - c->start[i]), (size_t)(b - a));
    }
    return WV_OK;
}

int wv_model_read_all(const wv_model *m, void *const *dst, size_t n_dst)
{
    if (m == NULL || (dst == NULL && n_dst > 0) || n_dst != m->n_tensors ||
        m->index_only)
        return WV_MISUSE;
    if (n_dst == 0)
        return WV_OK;
    uint64_t *start = wv__malloc(n_dst * sizeof *start);
    if (start == NULL)
        return WV_NOMEM;
    uint64_t sum = 0;
    for (size_t i = 0; i < n_dst; i++) {
        start[i] = sum;
        sum += m->tensors[i].nbytes;
    }
    int rc = WV_OK;
    if (sum > SIZE_MAX)
        rc = WV_RANGE;
    else {
        struct readall_ctx c = {m, dst, start};
        rc = wv__par_run((size_t)sum, readall_range, &c, NULL);
    }
    wv__free(start);
    return rc;
}
