/*
 * checkout.c -- reading a checkpoint back into a tensor set.
 *
 * Every chunk is located through the chunk index, read with one ranged get
 * from its pack, decoded, and checked against its SHA-256 id before it is
 * used: a damaged pack can never hand back wrong bytes silently. Only the
 * chunks of the requested tensors are read.
 */
#include "repo.h"

int wv__repo_read_chunk(wv_repo *r, const unsigned char id[32], void *out,
                        size_t raw_len, void *scratch, size_t scratch_len,
                        unsigned char **pack_buf, size_t *pack_cap)
{
    struct wv__err *err = &r->err;
    char key[96], hex[65];
    unsigned char d[32];
    int rc;
    const struct wv__chunk_loc *l = wv__cidx_get(&r->cidx, id);
    wv__hex(id, 32, hex);
    if (l == NULL)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: chunk %.12s is missing from every index",
                          r->uri, hex);
    if (l->raw_len != raw_len)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: chunk %.12s has %llu bytes in the index, the "
                          "manifest needs %zu",
                          r->uri, hex, (unsigned long long)l->raw_len,
                          raw_len);
    if (l->stored_len > SIZE_MAX || (l->codec != WV__CODEC_NONE &&
                                     raw_len > scratch_len))
        return wv__seterr(err, WV_CORRUPT, "%s: chunk %.12s is too large",
                          r->uri, hex);
    wv__pack_key(l->pack, key);
    const unsigned char *src;
    size_t n;
    if (l->codec == WV__CODEC_NONE) {
        if (l->stored_len != raw_len)
            return wv__seterr(err, WV_CORRUPT,
                              "%s: chunk %.12s: stored and raw lengths "
                              "differ for an uncompressed chunk",
                              r->uri, hex);
        rc = wv__store_get(r->store, key, l->off, out, raw_len, &n);
        src = out;
    } else {
        if (*pack_cap < l->stored_len) {
            unsigned char *nb = wv__realloc(*pack_buf, (size_t)l->stored_len);
            if (nb == NULL)
                return wv__seterr(err, WV_NOMEM, "out of memory");
            *pack_buf = nb;
            *pack_cap = (size_t)l->stored_len;
        }
        rc = wv__store_get(r->store, key, l->off, *pack_buf,
                           (size_t)l->stored_len, &n);
        src = *pack_buf;
    }
    if (rc == WV_NOTFOUND || rc == WV_IO_SHORT_READ) {
        wv__clearerr(err);
        return wv__seterr(err, WV_CORRUPT,
                          "%s: chunk %.12s: pack %.12s is %s", r->uri, hex,
                          key + 9, rc == WV_NOTFOUND ? "missing" : "truncated");
    }
    if (rc != WV_OK)
        return rc;
    if (l->codec != WV__CODEC_NONE) {
        struct wv__err e = {0};
        rc = wv__codec_decode(l->codec, l->elem, src, (size_t)l->stored_len,
                              out, raw_len, scratch, &e);
        if (rc != WV_OK)
            return wv__seterr(err, WV_CORRUPT, "%s: chunk %.12s in pack "
                                               "%.12s: %s",
                              r->uri, hex, key + 9, e.msg);
    }
    wv__sha256_buf(out, raw_len, d);
    if (memcmp(d, id, 32) != 0)
        return wv__seterr(err, WV_CORRUPT_CHECKSUM,
                          "%s: chunk %.12s in pack %.12s is damaged (its "
                          "bytes do not hash to its id)",
                          r->uri, hex, key + 9);
    return WV_OK;
}

int wv__repo_checkout_locked(wv_repo *r, const char *ref,
                           const wv_checkout_opts *opts, wv_model **out)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char id[65];
    struct wv__manifest mf;
    wv_model *m = NULL;
    unsigned char *scratch = NULL, *pack_buf = NULL;
    size_t pack_cap = 0;
    void *buf = NULL;

    memset(&mf, 0, sizeof mf);
    *out = NULL;
    wv__clearerr(err);
    WV_CHECK(opts == NULL || opts->struct_size >= sizeof(wv_checkout_opts),
             WV_MISUSE, "checkout options from an incompatible header");
    WV_TRY(wv__repo_resolve(r, ref, id));
    WV_TRY(wv__manifest_load(r, id, &mf));
    WV_TRY(wv__repo_load_index(r));
    if (opts && opts->names) {
        for (size_t k = 0; k < opts->n_names; k++) {
            bool found = false;
            for (size_t i = 0; i < mf.n_tensors && !found; i++)
                found = strcmp(mf.tensors[i].name, opts->names[k]) == 0;
            WV_CHECK(found, WV_NOTFOUND,
                     "%s: checkpoint %.12s has no tensor '%.200s'", r->uri,
                     id, opts->names[k]);
        }
    }
    WV_CHECK(wv_model_new(&m) == WV_OK, WV_NOMEM, "out of memory");
    m->source_format = "repository";
    for (size_t i = 0; i < mf.n_meta; i++)
        WV_CHECK(wv_model_set_meta(m, mf.meta[i].key, mf.meta[i].value) ==
                     WV_OK,
                 WV_NOMEM, "out of memory");
    m->meta_state = mf.meta_absent    ? WV__META_NONE
                    : mf.meta_default ? WV__META_DEFAULT
                                      : WV__META_FROM_FILE;
    scratch = wv__malloc((size_t)mf.chunk_size);
    WV_CHECK(scratch != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < mf.n_tensors; i++) {
        const struct wv__mtensor *t = &mf.tensors[i];
        if (opts && opts->names) {
            bool want = false;
            for (size_t k = 0; k < opts->n_names && !want; k++)
                want = strcmp(t->name, opts->names[k]) == 0;
            if (!want)
                continue;
        }
        WV_CHECK(t->nbytes <= SIZE_MAX, WV_RANGE, "tensor too large");
        buf = wv__malloc((size_t)t->nbytes);
        WV_CHECK(buf != NULL, WV_NOMEM,
                 "out of memory for tensor '%.200s' (%llu bytes)", t->name,
                 (unsigned long long)t->nbytes);
        for (size_t c = 0; c < t->n_chunks; c++) {
            uint64_t off = c * mf.chunk_size;
            size_t n = (size_t)(t->nbytes - off < mf.chunk_size
                                    ? t->nbytes - off
                                    : mf.chunk_size);
            rc = wv__repo_read_chunk(r, t->chunks[c],
                                     (unsigned char *)buf + off, n, scratch,
                                     (size_t)mf.chunk_size, &pack_buf,
                                     &pack_cap);
            if (rc != WV_OK) {
                char msg[WV_ERRBUF_SIZE];
                snprintf(msg, sizeof msg, "%s", err->msg);
                wv__clearerr(err);
                wv__seterr(err, rc, "%s (tensor '%.100s' of checkpoint "
                                    "%.12s)",
                           msg, t->name, id);
                goto out;
            }
        }
        rc = wv__model_add(m, t->name, strlen(t->name), t->dtype, t->ndim,
                           t->shape, buf, (size_t)t->nbytes, buf, err);
        buf = NULL; /* owned by the set now, or freed by the failed add */
        WV_TRY(rc);
    }
out:
    wv__free(buf);
    wv__free(scratch);
    wv__free(pack_buf);
    wv__manifest_release(&mf);
    if (rc != WV_OK) {
        wv_model_free(m);
        m = NULL;
    }
    *out = m;
    return rc;
}

int wv_repo_checkout(wv_repo *r, const char *ref,
                     const wv_checkout_opts *opts, wv_model **out)
{
    wv__repo_enter(r); /* after the pending asynchronous commits */
    int rc = wv__repo_checkout_locked(r, ref, opts, out);
    wv__repo_leave(r);
    return rc;
}
