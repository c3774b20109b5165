/*
 * history.c -- checkpoint descriptions, refs (tags and branches) and the
 * comparison of two checkpoints.
 *
 * A wv_checkpoint is a parsed manifest: describing a checkpoint or walking
 * its history never reads tensor data. Refs are changed only through one
 * compare-and-swap of the ref object (store.h): creating expects the ref
 * to be absent, deleting expects the value just read, so a concurrent
 * writer makes the call fail instead of being overwritten. Tags are never
 * moved by this file; branches move only by commits (commit.c).
 *
 * wv_repo_storage adds up what a checkpoint's chunks take in the store,
 * from the manifest and the index (and its parent's manifest, to tell
 * the chunks it added): stored bytes per codec, delta chains.
 *
 * A diff matches tensors by name. Chunk ids are SHA-256 of the plaintext,
 * so two tensors of the same dtype and shape whose chunk id lists are
 * equal hold equal bytes: they are reported unchanged without a read. The
 * others are read through the checkout code (every chunk verified), in
 * batches of at most DIFF_BATCH bytes per side so memory stays bounded,
 * and compared element by element in double precision.
 */
#include "core.h"
#include "refs.h"
#include "repo.h"
#include "tensor.h"

#define DIFF_BATCH ((uint64_t)256 << 20)
#define DIFF_BLOCK 4096 /* elements converted at a time (multiple of 256) */

struct wv_checkpoint {
    struct wv__manifest mf;
    uint64_t total;
    char signer[65];
};

/* ---- describing a checkpoint -------------------------------------------- */

static bool is_hex(const char *s, size_t min, size_t max)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Load checkpoint `ref` into a new handle (r->err is not cleared). */
static int stat_ref(wv_repo *r, const char *ref, wv_checkpoint **out)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char id[WV_ID_HEX];
    wv_checkpoint *c = NULL;
    *out = NULL;
    if (ref != NULL && is_hex(ref, 64, 64))
        memcpy(id, ref, 65); /* a full id: no listing needed */
    else
        WV_TRY(wv__repo_resolve(r, ref, id));
    wv__clearerr(err); /* a stale message of a read that succeeded */
    c = wv__calloc(1, sizeof *c);
    WV_CHECK(c != NULL, WV_NOMEM, "out of memory");
    WV_TRY(wv__manifest_load(r, id, &c->mf));
    for (size_t i = 0; i < c->mf.n_tensors; i++)
        c->total += c->mf.tensors[i].nbytes;
    if (c->mf.has_sig && c->mf.sig_ok)
        wv__hex(c->mf.sig_key, 32, c->signer);
out:
    if (rc != WV_OK) {
        wv_checkpoint_free(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

static int repo_stat_locked(wv_repo *r, const char *ref, wv_checkpoint **out)
{
    wv__clearerr(&r->err);
    return stat_ref(r, ref, out);
}

void wv_checkpoint_free(wv_checkpoint *c)
{
    if (c == NULL)
        return;
    wv__manifest_release(&c->mf);
    wv__free(c);
}

const char *wv_checkpoint_id(const wv_checkpoint *c)
{
    return c->mf.id;
}

const char *wv_checkpoint_parent(const wv_checkpoint *c)
{
    return c->mf.parent;
}

const char *wv_checkpoint_branch(const wv_checkpoint *c)
{
    return c->mf.branch ? c->mf.branch : "";
}

const char *wv_checkpoint_time(const wv_checkpoint *c)
{
    return c->mf.time ? c->mf.time : "";
}

const char *wv_checkpoint_message(const wv_checkpoint *c)
{
    return c->mf.message ? c->mf.message : "";
}

size_t wv_checkpoint_meta_count(const wv_checkpoint *c)
{
    return c->mf.n_meta;
}

int wv_checkpoint_meta(const wv_checkpoint *c, size_t i, const char **key,
                       const char **value)
{
    if (i >= c->mf.n_meta) {
        *key = *value = NULL;
        return WV_RANGE;
    }
    *key = c->mf.meta[i].key;
    *value = c->mf.meta[i].value;
    return WV_OK;
}

const char *wv_checkpoint_get_meta(const wv_checkpoint *c, const char *key)
{
    for (size_t i = 0; i < c->mf.n_meta; i++)
        if (strcmp(c->mf.meta[i].key, key) == 0)
            return c->mf.meta[i].value;
    return NULL;
}

size_t wv_checkpoint_tensor_count(const wv_checkpoint *c)
{
    return c->mf.n_tensors;
}

const char *wv_checkpoint_tensor_name(const wv_checkpoint *c, size_t i)
{
    return i < c->mf.n_tensors ? c->mf.tensors[i].name : NULL;
}

wv_dtype wv_checkpoint_tensor_dtype(const wv_checkpoint *c, size_t i)
{
    return i < c->mf.n_tensors ? c->mf.tensors[i].dtype : WV_DTYPE_INVALID;
}

int wv_checkpoint_tensor_ndim(const wv_checkpoint *c, size_t i)
{
    return i < c->mf.n_tensors ? c->mf.tensors[i].ndim : -1;
}

const uint64_t *wv_checkpoint_tensor_shape(const wv_checkpoint *c, size_t i)
{
    return i < c->mf.n_tensors ? c->mf.tensors[i].shape : NULL;
}

uint64_t wv_checkpoint_tensor_nbytes(const wv_checkpoint *c, size_t i)
{
    return i < c->mf.n_tensors ? c->mf.tensors[i].nbytes : 0;
}

size_t wv_checkpoint_tensor_shards(const wv_checkpoint *c, size_t i)
{
    if (i >= c->mf.n_tensors)
        return 0;
    return c->mf.tensors[i].n_shards ? c->mf.tensors[i].n_shards : 1;
}

size_t wv_checkpoint_tensor_writers(const wv_checkpoint *c, size_t i,
                                    uint32_t *out, size_t cap)
{
    if (i >= c->mf.n_tensors)
        return 0;
    const struct wv__mtensor *t = &c->mf.tensors[i];
    for (size_t k = 0; out && k < t->n_writers && k < cap; k++)
        out[k] = t->writers[k];
    return t->n_writers;
}

int wv_checkpoint_tensor_shard(const wv_checkpoint *c, size_t i, size_t k,
                               const uint64_t **offset,
                               const uint64_t **shape, uint32_t *writer)
{
    static const uint64_t zero[WV_MAX_DIMS];
    if (i >= c->mf.n_tensors)
        return WV_RANGE;
    const struct wv__mtensor *t = &c->mf.tensors[i];
    if (k >= (t->n_shards ? t->n_shards : 1))
        return WV_RANGE;
    if (offset)
        *offset = t->n_shards ? t->shards[k].offset : zero;
    if (shape)
        *shape = t->n_shards ? t->shards[k].shape : t->shape;
    if (writer)
        *writer = t->n_shards ? t->shards[k].writer
                  : t->n_writers ? t->writers[0]
                                 : 0;
    return WV_OK;
}

uint64_t wv_checkpoint_total_bytes(const wv_checkpoint *c)
{
    return c->total;
}

const char *wv_checkpoint_signer(const wv_checkpoint *c)
{
    return c->signer;
}

/* ---- refs --------------------------------------------------------------- */

static int check_new_name(wv_repo *r, const char *kind, const char *name)
{
    if (name == NULL || !wv__ref_name_ok(name) ||
        strcmp(name, "latest") == 0 || is_hex(name, 6, 64))
        return wv__seterr(&r->err, WV_MISUSE,
                          "'%.100s' is not a valid %s name (letters, digits, "
                          "'.', '_', '-'; not 'latest' nor a hex id prefix)",
                          name ? name : "", kind);
    return WV_OK;
}

/* Read ref `key`: its raw value, id and name (repo.h: wv__ref_read). The
 * local backend reads a ref as an object and records a "shorter than
 * expected" message for the short read it then accepts: drop such a
 * message on success, or it would hide ours (the first error wins). */
static int get_ref(wv_repo *r, const char *key, const char *shown,
                   char raw[WV__REF_RAW_MAX], char id[65], char *name,
                   size_t name_cap)
{
    int rc = wv__ref_read(r, key, shown, raw, id, name, name_cap);
    if (rc == WV_OK)
        wv__clearerr(&r->err);
    return rc;
}

/* Does refs/<dir>/<name> exist? */
static int ref_exists(wv_repo *r, const char *dir, const char *name,
                      bool *yes)
{
    char key[160], shown[160], raw[WV__REF_RAW_MAX], id[65];
    *yes = false;
    snprintf(shown, sizeof shown, "refs/%s/%s", dir, name);
    if (wv__ref_key(r, dir, name, key) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    int rc = get_ref(r, key, shown, raw, id, NULL, 0);
    *yes = rc == WV_OK;
    if (rc == WV_NOTFOUND) {
        wv__clearerr(&r->err);
        rc = WV_OK;
    }
    return rc;
}

/* Create refs/<dir>/<name> at `ref`; `other` is the directory of the refs
 * that must not share the name. */
static int create_ref(wv_repo *r, const char *dir, const char *kind,
                      const char *other, const char *name, const char *ref)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char id[WV_ID_HEX], key[160], val[WV__REF_RAW_MAX];
    bool clash;
    wv_checkpoint *c = NULL;
    wv__clearerr(err);
    WV_TRY(check_new_name(r, kind, name));
    WV_TRY(ref_exists(r, other, name, &clash));
    WV_CHECK(!clash, WV_EXISTS, "%s: there is a %s named '%s' already",
             r->uri, strcmp(other, "tags") == 0 ? "tag" : "branch", name);
    /* The target must exist as a checkpoint, not only as a name. */
    WV_TRY(stat_ref(r, ref ? ref : "latest", &c));
    memcpy(id, c->mf.id, sizeof id);
    WV_CHECK(wv__ref_key(r, dir, name, key) == WV_OK, WV_NOMEM,
             "out of memory");
    WV_TRY(wv__ref_value(r, key, name, id, val));
    rc = wv__store_ref_cas(r->store, key, NULL, val);
    if (rc == WV_CONFLICT) {
        wv__clearerr(err);
        WV_CHECK(0, WV_EXISTS, "%s: %s '%s' exists already%s", r->uri, kind,
                 name, strcmp(dir, "tags") == 0 ? " (tags never move)" : "");
    }
out:
    wv_checkpoint_free(c);
    return rc;
}

static int delete_ref(wv_repo *r, const char *dir, const char *kind,
                      const char *name)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char key[160], shown[160], cur[WV__REF_RAW_MAX], id[65];
    wv__clearerr(err);
    WV_CHECK(name != NULL && wv__ref_name_ok(name), WV_MISUSE,
             "'%.100s' is not a valid %s name", name ? name : "", kind);
    WV_CHECK(strcmp(dir, "heads") != 0 || strcmp(name, "main") != 0,
             WV_MISUSE, "%s: the branch 'main' cannot be deleted ('latest' "
                        "is its head)",
             r->uri);
    snprintf(shown, sizeof shown, "refs/%s/%s", dir, name);
    WV_CHECK(wv__ref_key(r, dir, name, key) == WV_OK, WV_NOMEM,
             "out of memory");
    /* A value that does not decode is still deleted: it names nothing. */
    rc = get_ref(r, key, shown, cur, id, NULL, 0);
    if (wv_primary(rc) == WV_CORRUPT) {
        wv__clearerr(err);
        rc = WV_OK;
    }
    if (rc == WV_NOTFOUND) {
        wv__clearerr(err);
        WV_CHECK(0, WV_NOTFOUND, "%s: no %s named '%s'", r->uri, kind, name);
    }
    WV_TRY(rc);
    rc = wv__store_ref_cas(r->store, key, cur, NULL);
    if (rc == WV_CONFLICT) {
        wv__clearerr(err);
        WV_CHECK(0, WV_CONFLICT, "%s: %s '%s' changed while deleting it; "
                                 "not deleted",
                 r->uri, kind, name);
    }
out:
    return rc;
}

static int repo_tag_locked(wv_repo *r, const char *name, const char *ref)
{
    return create_ref(r, "tags", "tag", "heads", name, ref);
}

static int repo_tag_delete_locked(wv_repo *r, const char *name)
{
    return delete_ref(r, "tags", "tag", name);
}

static int repo_branch_locked(wv_repo *r, const char *name, const char *ref)
{
    return create_ref(r, "heads", "branch", "tags", name, ref);
}

static int repo_branch_delete_locked(wv_repo *r, const char *name)
{
    return delete_ref(r, "heads", "branch", name);
}

struct named_ref {
    char name[128];
    char id[WV_ID_HEX];
};

static int cmp_named_ref(const void *x, const void *y)
{
    return strcmp(((const struct named_ref *)x)->name,
                  ((const struct named_ref *)y)->name);
}

static int list_refs(wv_repo *r, const char *dir, wv_ref_cb cb, void *arg)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char prefix[32], **keys = NULL, raw[WV__REF_RAW_MAX];
    size_t n_keys = 0, n = 0;
    struct named_ref *refs = NULL;
    wv__clearerr(err);
    snprintf(prefix, sizeof prefix, "refs/%s/", dir);
    WV_TRY(wv__repo_list(r, prefix, &keys, &n_keys));
    refs = wv__calloc(n_keys ? n_keys : 1, sizeof *refs);
    WV_CHECK(refs != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n_keys; i++) {
        const char *name = keys[i] + strlen(prefix);
        if (!wv__ref_name_ok(name))
            continue; /* not a ref this library writes */
        /* The name is the key's, or (encrypted) the one sealed in the
         * value, which must hash to the key. */
        rc = get_ref(r, keys[i], NULL, raw, refs[n].id, refs[n].name,
                     sizeof refs[n].name);
        if (rc == WV_NOTFOUND) { /* deleted since the listing */
            wv__clearerr(err);
            rc = WV_OK;
            continue;
        }
        WV_TRY(rc);
        n++;
    }
    if (n > 1)
        qsort(refs, n, sizeof *refs, cmp_named_ref);
    for (size_t i = 0; i < n && rc == WV_OK; i++)
        rc = cb(arg, refs[i].name, refs[i].id);
out:
    wv__free(refs);
    wv__repo_list_free(keys, n_keys);
    return rc;
}

static int repo_list_branches_locked(wv_repo *r, wv_ref_cb cb, void *arg)
{
    return list_refs(r, "heads", cb, arg);
}

static int repo_list_tags_locked(wv_repo *r, wv_ref_cb cb, void *arg)
{
    return list_refs(r, "tags", cb, arg);
}

/* ---- diff --------------------------------------------------------------- */

struct wv_diff {
    wv_checkpoint *a, *b;
    wv_diff_entry *e;
    size_t n;
    uint64_t bytes_read;
};

void wv_diff_free(wv_diff *d)
{
    if (d == NULL)
        return;
    wv_checkpoint_free(d->a);
    wv_checkpoint_free(d->b);
    wv__free(d->e);
    wv__free(d);
}

size_t wv_diff_count(const wv_diff *d)
{
    return d->n;
}

const wv_diff_entry *wv_diff_entry_at(const wv_diff *d, size_t i)
{
    return i < d->n ? &d->e[i] : NULL;
}

const wv_checkpoint *wv_diff_a(const wv_diff *d)
{
    return d->a;
}

const wv_checkpoint *wv_diff_b(const wv_diff *d)
{
    return d->b;
}

uint64_t wv_diff_bytes_read(const wv_diff *d)
{
    return d->bytes_read;
}

/* Tensor positions sorted by name, to match names in O(n log n). */
struct by_name {
    const struct wv__mtensor *t;
    long pos;
};

static int cmp_by_name(const void *x, const void *y)
{
    return strcmp(((const struct by_name *)x)->t->name,
                  ((const struct by_name *)y)->t->name);
}

static struct by_name *sort_names(const struct wv__manifest *mf)
{
    struct by_name *s = wv__calloc(mf->n_tensors ? mf->n_tensors : 1,
                                   sizeof *s);
    if (s == NULL)
        return NULL;
    for (size_t i = 0; i < mf->n_tensors; i++) {
        s[i].t = &mf->tensors[i];
        s[i].pos = (long)i;
    }
    if (mf->n_tensors > 1)
        qsort(s, mf->n_tensors, sizeof *s, cmp_by_name);
    return s;
}

static long find_name(const struct by_name *s, size_t n, const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s[mid].t->name, name);
        if (c == 0)
            return s[mid].pos;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static bool numeric_dtype(wv_dtype dt)
{
    if (wv_dtype_is_float(dt) || wv__dtype_dequantises(dt))
        return true;
    switch (dt) {
    case WV_BOOL: case WV_U8: case WV_I8: case WV_U16: case WV_I16:
    case WV_U32: case WV_I32: case WV_U64: case WV_I64:
        return true;
    default:
        return false;
    }
}

/* Convert k elements of dt at p to doubles (k a multiple of the block
 * elements for block types). `tmp` holds 8 * k bytes. */
static void to_double(wv_dtype dt, const unsigned char *p, size_t k,
                      unsigned char *tmp, double *out)
{
    if (wv_dtype_is_float(dt) || wv__dtype_dequantises(dt)) {
        wv__cast(dt, p, WV_F64, tmp, k);
        for (size_t i = 0; i < k; i++) {
            uint64_t b = wv__le64(tmp + 8 * i);
            memcpy(&out[i], &b, 8);
        }
        return;
    }
    size_t es = wv_dtype_size(dt);
    for (size_t i = 0; i < k; i++, p += es) {
        switch (dt) {
        case WV_BOOL: out[i] = p[0] != 0; break;
        case WV_U8: out[i] = p[0]; break;
        case WV_I8: out[i] = (int8_t)p[0]; break;
        case WV_U16: out[i] = wv__le16(p); break;
        case WV_I16: out[i] = (int16_t)wv__le16(p); break;
        case WV_U32: out[i] = wv__le32(p); break;
        case WV_I32: out[i] = (int32_t)wv__le32(p); break;
        case WV_U64: out[i] = (double)wv__le64(p); break;
        case WV_I64: out[i] = (double)(int64_t)wv__le64(p); break;
        default: out[i] = 0; break;
        }
    }
}

/* Square root of a finite x > 0 by Newton's method from an estimate that
 * halves the exponent (within a few ulps; the library does not link libm).
 * Infinity is returned as it is. */
static double sqrt_pos(double x)
{
    uint64_t b;
    double y;
    if (!(x > 0) || x > 1.7976931348623157e308)
        return x > 0 ? x : 0;
    if (x < 1e-290) /* subnormal range: scale by 2^200 and back */
        return sqrt_pos(x * 0x1p200) * 0x1p-100;
    memcpy(&b, &x, 8);
    b = (b >> 1) + ((uint64_t)0x3ff << 51); /* about sqrt(x) */
    memcpy(&y, &b, 8);
    for (int i = 0; i < 8; i++)
        y = 0.5 * (y + x / y);
    return y;
}

/* Fill the figures of e from the bytes of both sides (same dtype, same
 * shape, len bytes each). Sums are taken per block and then added, which
 * keeps the rounding error of long tensors small. */
static void compare_values(wv_diff_entry *e, wv_dtype dt, uint64_t numel,
                           const unsigned char *pa, const unsigned char *pb,
                           unsigned char *tmp, double *va, double *vb)
{
    size_t blk_elems, blk_bytes;
    double max_abs = 0, sum_d2 = 0, sum_a2 = 0;
    bool nan = false;
    uint64_t n_differ = 0;
    wv_dtype_block(dt, &blk_elems, &blk_bytes);
    for (uint64_t done = 0; done < numel;) {
        size_t k = numel - done < DIFF_BLOCK ? (size_t)(numel - done)
                                             : DIFF_BLOCK;
        size_t off = (size_t)(done / blk_elems * blk_bytes);
        double bd2 = 0, ba2 = 0;
        to_double(dt, pa + off, k, tmp, va);
        to_double(dt, pb + off, k, tmp, vb);
        for (size_t i = 0; i < k; i++) {
            double x = va[i], y = vb[i], d;
            if (x == y || (x != x && y != y)) {
                d = 0;
            } else {
                n_differ++;
                d = x > y ? x - y : y - x;
                if (d != d || x != x || y != y)
                    nan = true;
            }
            if (d > max_abs)
                max_abs = d;
            bd2 += d * d;
            ba2 += x * x;
        }
        sum_d2 += bd2;
        sum_a2 += ba2;
        done += k;
    }
    e->compared = 1;
    e->n_differ = n_differ;
    if (nan) {
        e->max_abs = __builtin_nan("");
        e->rel_l2 = __builtin_nan("");
        return;
    }
    e->max_abs = max_abs;
    if (sum_d2 == 0)
        e->rel_l2 = 0;
    else if (sum_a2 == 0)
        e->rel_l2 = __builtin_inf();
    else
        e->rel_l2 = sqrt_pos(sum_d2 / sum_a2);
}

/* Read the tensors of entries [from, to) that need values from both sides
 * and compare them. */
static int diff_batch(wv_repo *r, wv_diff *d, const size_t *idx, size_t n,
                      unsigned char *tmp, double *va, double *vb)
{
    int rc = WV_OK;
    wv_model *ma = NULL, *mb = NULL;
    const char **names = wv__calloc(n, sizeof *names);
    if (names == NULL)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        names[i] = d->e[idx[i]].name;
    wv_checkout_opts co = WV_CHECKOUT_OPTS_INIT;
    co.names = names;
    co.n_names = n;
    WV_TRY(wv__repo_checkout_locked(r, d->a->mf.id, &co, &ma));
    WV_TRY(wv__repo_checkout_locked(r, d->b->mf.id, &co, &mb));
    for (size_t i = 0; i < n; i++) {
        wv_diff_entry *e = &d->e[idx[i]];
        const wv_tensor *ta = wv_model_find(ma, e->name);
        const wv_tensor *tb = wv_model_find(mb, e->name);
        if (ta == NULL || tb == NULL) {
            rc = wv__seterr(&r->err, WV_CORRUPT, "%s: tensor '%.200s' went "
                                                 "missing while comparing",
                            r->uri, e->name);
            goto out;
        }
        d->bytes_read += wv_tensor_nbytes(ta) + wv_tensor_nbytes(tb);
        if (wv_tensor_nbytes(ta) == wv_tensor_nbytes(tb) &&
            memcmp(wv_tensor_data(ta), wv_tensor_data(tb),
                   wv_tensor_nbytes(ta)) == 0) {
            e->kind = WV_DIFF_UNCHANGED; /* same bytes, other chunking */
            continue;
        }
        compare_values(e, wv_tensor_dtype(ta), wv_tensor_numel(ta),
                       wv_tensor_data(ta), wv_tensor_data(tb), tmp, va, vb);
    }
out:
    wv_model_free(ma);
    wv_model_free(mb);
    wv__free(names);
    return rc;
}

static bool same_layout(const struct wv__mtensor *x,
                        const struct wv__mtensor *y)
{
    return x->dtype == y->dtype && x->ndim == y->ndim &&
           memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof x->shape[0]) ==
               0;
}

static bool same_chunks(const struct wv__mtensor *x,
                        const struct wv__mtensor *y)
{
    if (x->n_shards != y->n_shards)
        return false; /* stored another way: compare values */
    for (size_t k = 0; k < x->n_shards; k++) {
        const struct wv__mshard *a = &x->shards[k], *b = &y->shards[k];
        if (a->n_chunks != b->n_chunks ||
            memcmp(a->offset, b->offset, sizeof a->offset) != 0 ||
            memcmp(a->shape, b->shape, sizeof a->shape) != 0)
            return false;
    }
    return x->nbytes == y->nbytes && x->n_chunks == y->n_chunks &&
           (x->n_chunks == 0 ||
            memcmp(x->chunks, y->chunks, x->n_chunks * WV__ID_LEN) == 0);
}

static int repo_diff_locked(wv_repo *r, const char *a, const char *b, unsigned flags,
                 wv_diff **out)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    wv_diff *d = NULL;
    struct by_name *sa = NULL, *sb = NULL;
    size_t *todo = NULL, n_todo = 0;
    unsigned char *tmp = NULL;
    double *va = NULL, *vb = NULL;

    *out = NULL;
    wv__clearerr(err);
    WV_CHECK((flags & ~WV_DIFF_NO_VALUES) == 0, WV_MISUSE,
             "unknown diff flags %#x", flags);
    d = wv__calloc(1, sizeof *d);
    WV_CHECK(d != NULL, WV_NOMEM, "out of memory");
    WV_TRY(stat_ref(r, a, &d->a));
    WV_TRY(stat_ref(r, b, &d->b));
    const struct wv__manifest *A = &d->a->mf, *B = &d->b->mf;
    sa = sort_names(A);
    sb = sort_names(B);
    d->e = wv__calloc(A->n_tensors + B->n_tensors + 1, sizeof *d->e);
    todo = wv__calloc(B->n_tensors + 1, sizeof *todo);
    WV_CHECK(sa && sb && d->e && todo, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < B->n_tensors; i++) {
        const struct wv__mtensor *tb = &B->tensors[i];
        wv_diff_entry *e = &d->e[d->n++];
        e->name = tb->name;
        e->b = (long)i;
        e->a = find_name(sa, A->n_tensors, tb->name);
        if (e->a < 0) {
            e->kind = WV_DIFF_ADDED;
            continue;
        }
        const struct wv__mtensor *ta = &A->tensors[e->a];
        if (same_layout(ta, tb) && same_chunks(ta, tb)) {
            e->kind = WV_DIFF_UNCHANGED;
            continue;
        }
        e->kind = WV_DIFF_CHANGED;
        if (same_layout(ta, tb) && numeric_dtype(tb->dtype) &&
            !(flags & WV_DIFF_NO_VALUES))
            todo[n_todo++] = d->n - 1;
    }
    for (size_t i = 0; i < A->n_tensors; i++) {
        if (find_name(sb, B->n_tensors, A->tensors[i].name) >= 0)
            continue;
        wv_diff_entry *e = &d->e[d->n++];
        e->name = A->tensors[i].name;
        e->kind = WV_DIFF_REMOVED;
        e->a = (long)i;
        e->b = -1;
    }
    if (n_todo) {
        tmp = wv__malloc(DIFF_BLOCK * 8);
        va = wv__malloc(DIFF_BLOCK * sizeof *va);
        vb = wv__malloc(DIFF_BLOCK * sizeof *vb);
        WV_CHECK(tmp && va && vb, WV_NOMEM, "out of memory");
    }
    /* Batches of at most DIFF_BATCH bytes per side (one tensor at least). */
    for (size_t i = 0; i < n_todo;) {
        uint64_t bytes = 0;
        size_t j = i;
        while (j < n_todo) {
            uint64_t nb = B->tensors[d->e[todo[j]].b].nbytes;
            if (j > i && bytes + nb > DIFF_BATCH)
                break;
            bytes += nb;
            j++;
        }
        WV_TRY(diff_batch(r, d, todo + i, j - i, tmp, va, vb));
        i = j;
    }
out:
    wv__free(sa);
    wv__free(sb);
    wv__free(todo);
    wv__free(tmp);
    wv__free(va);
    wv__free(vb);
    if (rc != WV_OK) {
        wv_diff_free(d);
        d = NULL;
    }
    *out = d;
    return rc;
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
/* ---- storage of a checkpoint --------------------------------------------- */

static int storage_locked(wv_repo *r, const char *ref,
                          wv_checkpoint_storage *out)
{
    struct wv__err *err = &r->err;
    struct wv__manifest mf, pf;
    struct wv__chunk_index seen = {0}, parent = {0};
    char id[65];
    int rc = WV_OK;
    memset(&mf, 0, sizeof mf);
    memset(&pf, 0, sizeof pf);
    wv__clearerr(err);
    WV_CHECK(out != NULL && out->struct_size >= sizeof *out, WV_MISUSE,
             "storage statistics from an incompatible header");
    memset((char *)out + sizeof out->struct_size, 0,
           sizeof *out - sizeof out->struct_size);
    WV_TRY(wv__repo_resolve(r, ref, id));
    WV_TRY(wv__manifest_load(r, id, &mf));
    WV_TRY(wv__repo_load_index(r));
    if (mf.parent[0]) {
        rc = wv__manifest_load(r, mf.parent, &pf);
        if (rc == WV_NOTFOUND) { /* pruned: everything counts as new */
            wv__clearerr(err);
            rc = WV_OK;
        }
        WV_TRY(rc);
    }
    struct wv__chunk_loc k;
    memset(&k, 0, sizeof k);
    k.stored_len = 1; /* occupied */
    for (size_t t = 0; t < pf.n_tensors; t++)
        for (size_t c = 0; c < pf.tensors[t].n_chunks; c++) {
            memcpy(k.id, pf.tensors[t].chunks[c], 32);
            WV_CHECK(wv__cidx_put(&parent, &k) == WV_OK, WV_NOMEM,
                     "out of memory");
        }
    struct wv__chain ch = {.r = r, .x = &r->cidx};
    for (size_t t = 0; t < mf.n_tensors; t++)
        for (size_t c = 0; c < mf.tensors[t].n_chunks; c++) {
            const unsigned char *cid = mf.tensors[t].chunks[c];
            if (wv__cidx_get(&seen, cid))
                continue;
            memcpy(k.id, cid, 32);
            WV_CHECK(wv__cidx_put(&seen, &k) == WV_OK, WV_NOMEM,
                     "out of memory");
            const struct wv__chunk_loc *l = wv__cidx_get(&r->cidx, cid);
            char hex[65];
            wv__hex(cid, 32, hex);
            WV_CHECK(l != NULL, WV_CORRUPT,
                     "%s: chunk %.12s of checkpoint %.12s is missing from "
                     "every index",
                     r->uri, hex, id);
            out->chunks++;
            out->stored_bytes += l->stored_len;
            out->raw_bytes += l->raw_len;
            int d = wv__chain_depth(&ch, cid);
            if (d > out->max_chain)
                out->max_chain = d;
            if (wv__cidx_get(&parent, cid))
                continue;
            out->new_chunks++;
            out->new_stored_bytes += l->stored_len;
            out->new_raw_bytes += l->raw_len;
            if (l->codec < 4) {
                out->new_by_codec[l->codec]++;
                out->new_stored_by_codec[l->codec] += l->stored_len;
            }
        }
out:
    wv__cidx_release(&seen);
    wv__cidx_release(&parent);
    wv__manifest_release(&mf);
    wv__manifest_release(&pf);
    return rc;
}

int wv_repo_storage(wv_repo *r, const char *ref, wv_checkpoint_storage *out)
{
    return WV__REPO_LOCKED(r, storage_locked(r, ref, out));
}

int wv_repo_stat(wv_repo *r, const char *ref, wv_checkpoint **out)
{
    return WV__REPO_LOCKED(r, repo_stat_locked(r, ref, out));
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
int wv_repo_tag(wv_repo *r, const char *name, const char *ref)
{
    return WV__REPO_LOCKED(r, repo_tag_locked(r, name, ref));
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
int wv_repo_tag_delete(wv_repo *r, const char *name)
{
    return WV__REPO_LOCKED(r, repo_tag_delete_locked(r, name));
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
int wv_repo_branch(wv_repo *r, const char *name, const char *ref)
{
    return WV__REPO_LOCKED(r, repo_branch_locked(r, name, ref));
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
int wv_repo_branch_delete(wv_repo *r, const char *name)
{
    return WV__REPO_LOCKED(r, repo_branch_delete_locked(r, name));
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
int wv_repo_list_branches(wv_repo *r, wv_ref_cb cb, void *arg)
{
    return WV__REPO_LOCKED(r, repo_list_branches_locked(r, cb, arg));
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
int wv_repo_list_tags(wv_repo *r, wv_ref_cb cb, void *arg)
{
    return WV__REPO_LOCKED(r, repo_list_tags_locked(r, cb, arg));
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
int wv_repo_diff(wv_repo *r, const char *a, const char *b, unsigned flags,
                 wv_diff **out)
{
    return WV__REPO_LOCKED(r, repo_diff_locked(r, a, b, flags, out));
}
