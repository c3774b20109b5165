/*
 * manifest.c -- checkpoint manifests: encoding, parsing, loading.
 *
 * A manifest is JSON (docs/repo-format.md), written deterministically so
 * its id, the SHA-256 of its bytes, depends only on its content:
 *
 *   {"weightvault_manifest": 1,
 *    "parent": "<64 hex>" or null,
 *    "branch": "main", "time": "2026-11-28T14:00:00Z", "message": "...",
 *    "chunk_size": 4194304,
 *    "metadata": {"k": "v", ...} or null, ["metadata_defaults": true,]
 *    "tensors": [
 *     {"name": "w", "dtype": "F32", "shape": [2, 3], "nbytes": 24,
 *      "chunks": ["<64 hex>", ...]},
 *     ...]}
 *
 * "metadata": null records a source whose metadata was explicitly absent
 * (a safetensors file without __metadata__), so a checkout writes the same
 * file back. Parsing checks every tensor: known dtype, shape within limits,
 * nbytes equal to the shape's size, and exactly ceil(nbytes / chunk_size)
 * chunks.
 *
 * A signed manifest has one more member, always the last:
 *    ...]},
 *    "signature": {"alg": "ed25519", "key": "<64 hex>", "sig": "<128 hex>"}}
 * The signature is over "wv-manifest-signature-v1\n" and the manifest as
 * it was before the member was added: the bytes up to the end of the value
 * before the member's comma, followed by "}\n". Parsing checks it, so a
 * parsed manifest knows whether its signature verifies (trust.c decides
 * what a checkout accepts); wv__manifest_sign adds the member.
 *
 * Calls down only: object.c (reading a manifest), crypt.c (Ed25519),
 * util.c, the JSON helpers and core.
 */
#include "core.h"
#include "crypt.h"
#include "json.h"
#include "object.h"
#include "repo.h"
#include "tensor.h"

void wv__manifest_release(struct wv__manifest *mf)
{
    wv__free(mf->branch);
    wv__free(mf->time);
    wv__free(mf->message);
    for (size_t i = 0; i < mf->n_meta; i++) {
        wv__free(mf->meta[i].key);
        wv__free(mf->meta[i].value);
    }
    wv__free(mf->meta);
    for (size_t i = 0; i < mf->n_tensors; i++) {
        wv__free(mf->tensors[i].name);
        wv__free(mf->tensors[i].chunks);
    }
    wv__free(mf->tensors);
    memset(mf, 0, sizeof *mf);
}

static void put_str(struct wv__buf *b, const char *s)
{
    if (s == NULL)
        wv__buf_adds(b, "null");
    else
        wv__json_put_string(b, s, strlen(s));
}

int wv__manifest_encode(const struct wv__manifest *mf, struct wv__buf *b)
{
    char hex[65];
    wv__buf_adds(b, "{\"weightvault_manifest\": 1,\n \"parent\": ");
    put_str(b, mf->parent[0] ? mf->parent : NULL);
    wv__buf_adds(b, ",\n \"branch\": ");
    put_str(b, mf->branch);
    wv__buf_adds(b, ", \"time\": ");
    put_str(b, mf->time);
    wv__buf_adds(b, ", \"message\": ");
    put_str(b, mf->message ? mf->message : "");
    wv__buf_addf(b, ",\n \"chunk_size\": %llu,\n \"metadata\": ",
                 (unsigned long long)mf->chunk_size);
    if (mf->meta_absent && mf->n_meta == 0) {
        wv__buf_adds(b, "null");
    } else {
        wv__buf_addc(b, '{');
        for (size_t i = 0; i < mf->n_meta; i++) {
            if (i)
                wv__buf_adds(b, ", ");
            put_str(b, mf->meta[i].key);
            wv__buf_adds(b, ": ");
            put_str(b, mf->meta[i].value);
        }
        wv__buf_addc(b, '}');
    }
    if (mf->meta_default)
        wv__buf_adds(b, ", \"metadata_defaults\": true");
    wv__buf_adds(b, ",\n \"tensors\": [");
    for (size_t i = 0; i < mf->n_tensors; i++) {
        const struct wv__mtensor *t = &mf->tensors[i];
        wv__buf_adds(b, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
        put_str(b, t->name);
        wv__buf_addf(b, ", \"dtype\": \"%s\", \"shape\": [",
                     wv_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            wv__buf_addf(b, "%s%llu", d ? ", " : "",
                         (unsigned long long)t->shape[d]);
        wv__buf_addf(b, "], \"nbytes\": %llu, \"chunks\": [",
                     (unsigned long long)t->nbytes);
        for (size_t c = 0; c < t->n_chunks; c++) {
            wv__hex(t->chunks[c], 32, hex);
            wv__buf_addf(b, "%s\"%s\"", c ? ", " : "", hex);
        }
        wv__buf_adds(b, "]}");
    }
    wv__buf_adds(b, "]}\n");
    if (mf->has_sig && !b->oom) {
        char key[65], sig[129];
        wv__hex(mf->sig_key, 32, key);
        wv__hex(mf->sig, 64, sig);
        b->len -= 2; /* "}\n": the signature is the last member */
        wv__buf_addf(b, ",\n \"signature\": {\"alg\": \"ed25519\", \"key\": "
                        "\"%s\", \"sig\": \"%s\"}}\n",
                     key, sig);
    }
    return b->oom ? WV_NOMEM : WV_OK;
}

/* "signature": {"alg": "ed25519", "key": "<64 hex>", "sig": "<128 hex>"} */
static int parse_signature(struct wv__json *j, struct wv__manifest *mf)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *k = NULL, *v = NULL;
    size_t kl, vl;
    unsigned have = 0;
    WV_TRY(wv__json_expect(j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "alg") == 0 || strcmp(k, "key") == 0 ||
            strcmp(k, "sig") == 0) {
            unsigned bit = k[0] == 'a' ? 1u : k[0] == 'k' ? 2u : 4u;
            WV_CHECK(!(have & bit), WV_CORRUPT,
                     "%s: duplicate field \"%s\" in the signature", j->what,
                     k);
            have |= bit;
            WV_TRY(wv__json_string(j, &v, &vl));
            if (bit == 1)
                WV_CHECK(strcmp(v, "ed25519") == 0 && vl == 7, WV_FORMAT,
                         "%s: unknown signature algorithm '%.40s'", j->what,
                         v);
            else if (bit == 2)
                WV_CHECK(vl == 64 && wv__unhex(v, mf->sig_key, 32) == 0,
                         WV_CORRUPT, "%s: bad signature key", j->what);
            else
                WV_CHECK(vl == 128 && wv__unhex(v, mf->sig, 64) == 0,
                         WV_CORRUPT, "%s: bad signature", j->what);
            wv__free(v);
            v = NULL;
        } else {
            WV_TRY(wv__json_skip(j));
        }
    }
    WV_TRY(it.rc);
    WV_CHECK(have == 7, WV_CORRUPT, "%s: the signature lacks alg, key or sig",
             j->what);
    mf->has_sig = true;
out:
    wv__free(k);
    wv__free(v);
    return rc;
}

static int parse_nullable_string(struct wv__json *j, char **out)
{
    size_t l;
    wv__json_ws(j);
    if (j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
        j->p += 4;
        *out = NULL;
        return WV_OK;
    }
    return wv__json_string(j, out, &l);
}

static int parse_tensor(struct wv__json *j, struct wv__mtensor *t,
                        uint64_t chunk_size)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *k = NULL, *v = NULL;
    size_t kl, vl, cap = 0;
    bool have_dtype = false, have_shape = false, have_nbytes = false;
    WV_TRY(wv__json_expect(j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "name") == 0) {
            WV_CHECK(t->name == NULL, WV_CORRUPT, "%s: duplicate name",
                     j->what);
            WV_TRY(wv__json_string(j, &t->name, &vl));
            WV_CHECK(strlen(t->name) == vl && vl > 0, WV_CORRUPT,
                     "%s: bad tensor name", j->what);
        } else if (strcmp(k, "dtype") == 0) {
            WV_TRY(wv__json_string(j, &v, &vl));
            WV_CHECK(wv_dtype_from_name(v, &t->dtype) == WV_OK, WV_CORRUPT,
                     "%s: unknown dtype '%.40s'", j->what, v);
            have_dtype = true;
        } else if (strcmp(k, "shape") == 0) {
            WV_TRY(wv__json_expect(j, '['));
            t->ndim = 0;
            if (!wv__json_eat(j, ']')) {
                do {
                    WV_CHECK(t->ndim < WV_MAX_DIMS, WV_CORRUPT,
                             "%s: too many dimensions", j->what);
                    WV_TRY(wv__json_u64(j, &t->shape[t->ndim++]));
                } while (wv__json_eat(j, ','));
                WV_TRY(wv__json_expect(j, ']'));
            }
            have_shape = true;
        } else if (strcmp(k, "nbytes") == 0) {
            WV_TRY(wv__json_u64(j, &t->nbytes));
            have_nbytes = true;
        } else if (strcmp(k, "chunks") == 0) {
            WV_TRY(wv__json_expect(j, '['));
            if (!wv__json_eat(j, ']')) {
                do {
                    if (t->n_chunks == cap) {
                        cap = cap ? cap * 2 : 4;
                        void *nc = wv__realloc(t->chunks, cap * WV__ID_LEN);
                        WV_CHECK(nc != NULL, WV_NOMEM, "out of memory");
                        t->chunks = nc;
                    }
                    WV_TRY(wv__json_string(j, &v, &vl));
                    WV_CHECK(vl == 64 &&
                                 wv__unhex(v, t->chunks[t->n_chunks], 32) == 0,
                             WV_CORRUPT, "%s: bad chunk id", j->what);
                    t->n_chunks++;
                    wv__free(v);
                    v = NULL;
                } while (wv__json_eat(j, ','));
                WV_TRY(wv__json_expect(j, ']'));
            }
        } else {
            WV_TRY(wv__json_skip(j));
        }
        wv__free(v);
        v = NULL;
    }
    WV_TRY(it.rc);
    WV_CHECK(t->name && have_dtype && have_shape && have_nbytes, WV_CORRUPT,
             "%s: a tensor lacks name, dtype, shape or nbytes", j->what);
    uint64_t numel, nb;
    WV_CHECK(wv__shape_bytes(t->dtype, t->ndim, t->shape, &numel, &nb) ==
                     WV_OK &&
                 nb == t->nbytes,
             WV_CORRUPT, "%s: tensor '%.200s' has nbytes %llu that its "
                         "shape and dtype contradict",
             j->what, t->name, (unsigned long long)t->nbytes);
    WV_CHECK(t->n_chunks == (t->nbytes + chunk_size - 1) / chunk_size,
             WV_CORRUPT, "%s: tensor '%.200s' lists %zu chunks, its size "
                         "needs %llu",
             j->what, t->name, t->n_chunks,
             (unsigned long long)((t->nbytes + chunk_size - 1) / chunk_size));
out:
    wv__free(k);
    wv__free(v);
    return rc;
}

int wv__manifest_parse(const char *text, size_t len, const char *what,
                       struct wv__manifest *mf, struct wv__err *err)
{
    int rc = WV_OK;
    char *k = NULL, *v = NULL, *pv = NULL, *mk = NULL;
    size_t kl, vl, mkl;
    uint64_t version = 0;
    bool have_tensors = false, sig_last = false;
    unsigned seen = 0;
    const char *tensors_at = NULL, *value_end = NULL, *sig_cut = NULL;
    struct wv__json j = {text, text, text + len, what, err};
    memset(mf, 0, sizeof *mf);
    WV_CHECK(wv__json_eat(&j, '{'), WV_CORRUPT, "%s is not a JSON object",
             what);
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        sig_last = false;
        /* Each known field once: a repeated one would leak or, for
         * metadata, append past what was sized for it. */
        static const char *const fields[] = {
            "weightvault_manifest", "parent", "branch", "time", "message",
            "chunk_size", "metadata", "metadata_defaults", "tensors",
            "signature"};
        for (unsigned f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            if (strcmp(k, fields[f]) != 0)
                continue;
            WV_CHECK(!(seen & (1u << f)), WV_CORRUPT,
                     "%s: duplicate field \"%s\"", what, fields[f]);
            seen |= 1u << f;
        }
        if (strcmp(k, "weightvault_manifest") == 0) {
            WV_TRY(wv__json_u64(&j, &version));
        } else if (strcmp(k, "parent") == 0) {
            WV_TRY(parse_nullable_string(&j, &pv));
            if (pv) {
                unsigned char id[32];
                WV_CHECK(wv__unhex(pv, id, 32) == 0, WV_CORRUPT,
                         "%s: bad parent id", what);
                memcpy(mf->parent, pv, 65);
            }
        } else if (strcmp(k, "branch") == 0) {
            WV_TRY(parse_nullable_string(&j, &mf->branch));
        } else if (strcmp(k, "time") == 0) {
            WV_TRY(parse_nullable_string(&j, &mf->time));
        } else if (strcmp(k, "message") == 0) {
            WV_TRY(parse_nullable_string(&j, &mf->message));
        } else if (strcmp(k, "chunk_size") == 0) {
            WV_TRY(wv__json_u64(&j, &mf->chunk_size));
        } else if (strcmp(k, "metadata") == 0) {
            wv__json_ws(&j);
            if (j.end - j.p >= 4 && memcmp(j.p, "null", 4) == 0) {
                j.p += 4;
                mf->meta_absent = true;
            } else {
                size_t cap = 0;
                WV_TRY(wv__json_expect(&j, '{'));
                struct wv__json_obj meta = WV__JSON_OBJ(&j);
                while (wv__json_obj_next(&meta, &mk, &mkl)) {
                    WV_CHECK(wv__grow(&mf->meta, &cap, mf->n_meta,
                                      sizeof *mf->meta, 8) == WV_OK,
                             WV_NOMEM, "out of memory");
                    struct wv__meta *e = &mf->meta[mf->n_meta];
                    e->key = mk;
                    e->value = NULL;
                    mk = NULL;
                    mf->n_meta++;
                    WV_TRY(wv__json_string(&j, &e->value, &vl));
                }
                WV_TRY(meta.rc);
            }
        } else if (strcmp(k, "metadata_defaults") == 0) {
            wv__json_ws(&j);
            if (j.end - j.p >= 4 && memcmp(j.p, "true", 4) == 0)
                mf->meta_default = true;
            WV_TRY(wv__json_skip(&j));
        } else if (strcmp(k, "tensors") == 0) {
            /* chunk_size may come later: remember where, parse after. */
            tensors_at = j.p;
            have_tensors = true;
            WV_TRY(wv__json_skip(&j));
        } else if (strcmp(k, "signature") == 0) {
            WV_CHECK(value_end != NULL, WV_CORRUPT,
                     "%s: the signature is the only member", what);
            sig_cut = value_end;
            WV_TRY(parse_signature(&j, mf));
            sig_last = true;
        } else {
            WV_TRY(wv__json_skip(&j));
        }
        value_end = j.p;
    }
    WV_TRY(it.rc);
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_CORRUPT, "%s: trailing bytes", what);
    WV_CHECK(!mf->has_sig || sig_last, WV_CORRUPT,
             "%s: the signature is not the last member", what);
    if (mf->has_sig)
        mf->sig_ok = wv__sig_verify(mf->sig_key, mf->sig, text,
                                    (size_t)(sig_cut - text), "}\n", 2);
    WV_CHECK(version == 1, WV_FORMAT, "%s: manifest version %llu is not "
                                      "supported",
             what, (unsigned long long)version);
    WV_CHECK(have_tensors && mf->chunk_size >= 64, WV_CORRUPT,
             "%s: missing tensors or chunk_size", what);
    {
        struct wv__json t = {text, tensors_at, text + len, what, err};
        size_t cap = 0;
        WV_TRY(wv__json_expect(&t, '['));
        if (!wv__json_eat(&t, ']')) {
            do {
                if (mf->n_tensors == cap) {
                    cap = cap ? cap * 2 : 16;
                    void *nt = wv__realloc(mf->tensors,
                                           cap * sizeof *mf->tensors);
                    WV_CHECK(nt != NULL, WV_NOMEM, "out of memory");
                    mf->tensors = nt;
                }
                struct wv__mtensor *mt = &mf->tensors[mf->n_tensors++];
                memset(mt, 0, sizeof *mt);
                WV_TRY(parse_tensor(&t, mt, mf->chunk_size));
            } while (wv__json_eat(&t, ','));
            WV_TRY(wv__json_expect(&t, ']'));
        }
    }
out:
    wv__free(k);
    wv__free(v);
    wv__free(pv);
    wv__free(mk);
    if (rc != WV_OK)
        wv__manifest_release(mf);
    return rc;
}

int wv__manifest_load(wv_repo *r, const char *hex_id, struct wv__manifest *mf)
{
    char key[96], what[200];
    unsigned char *text = NULL;
    size_t len;
    int rc;
    memset(mf, 0, sizeof *mf);
    wv__manifest_key(hex_id, key);
    /* Checked against its name (the hash of its bytes, keyed in an
     * encrypted repository, where it is unsealed first). */
    rc = wv__object_get(r, "manifest", key, hex_id, WV__MAX_JSON, &text,
                        &len);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(&r->err);
        return wv__seterr(&r->err, WV_NOTFOUND,
                          "%s: checkpoint %.12s is missing (pruned?)", r->uri,
                          hex_id);
    }
    if (rc != WV_OK)
        return rc;
    snprintf(what, sizeof what, "%s: manifest %.12s", r->uri, hex_id);
    rc = wv__manifest_parse((const char *)text, len, what, mf, &r->err);
    if (rc == WV_OK)
        memcpy(mf->id, hex_id, 65);
    wv__free(text);
    return rc;
}

/* ---- signing ------------------------------------------------------------ */

int wv__manifest_sign(wv_repo *r, const unsigned char *sk,
                      struct wv__manifest *mf, struct wv__buf *b)
{
    unsigned char sig[64];
    if (wv__sig_sign(sk, b->p, b->len, NULL, 0, sig) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    mf->has_sig = true;
    mf->sig_ok = true;
    memcpy(mf->sig_key, sk + 32, 32);
    memcpy(mf->sig, sig, 64);
    b->len = 0;
    if (wv__manifest_encode(mf, b) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    return WV_OK;
}
