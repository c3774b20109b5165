/*
 * trust.c -- trusted keys and the signature policy (docs/repo-format.md
 * sections 14.6-14.10): the trust/ objects naming the public keys whose
 * signatures a repository accepts, the sealed trust list refs/trust of an
 * encrypted repository (its version only grows), copying it on push and
 * pull, and whether a checkpoint's signature is acceptable.
 *
 * Calls down only: object.c (the trust/ objects), crypt.c (sealing,
 * keyed names, public key files), state.c (versions seen), util.c and
 * the store. Ed25519 itself is in crypt.c, so this file builds without
 * libsodium; with WV_WITH_CRYPTO=OFF a repository that trusts keys or
 * holds a signed checkpoint fails with WV_UNSUPPORTED (wv__crypt_ready).
 */
#include "trust.h"

#include "object.h"
#include "json.h"
#include "repo.h"

/* ---- the sealed trust list ------------------------------------------------
 * refs/trust (encrypted repositories only) holds
 * b64(Seal(k_meta, "wv-trustlist\0" || "refs/trust",
 *          le64(version) || le32(count) || digest[32])) "\n"
 * where digest is the SHA-256 of "wv-trustlist-v1\n" and the trusted public
 * keys, sorted: only holders of K can say which keys are trusted, and a
 * version that only grows lets clients (and sealed refs, which carry the
 * version they were written under) notice an older list put back. */

static void trec_ad(struct wv__ad *ad)
{
    wv__ad_init(ad, "wv-trustlist");
    wv__ad_str(ad, WV__TRUST_REF);
}

static int cmp_pk(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* digest and count of the public keys pks[0..n) (sorted in place). */
static int trust_digest(unsigned char (*pks)[32], size_t n,
                        unsigned char d[32])
{
    if (n)
        qsort(pks, n, 32, cmp_pk);
    struct wv__sha256 *h = wv__sha256_new();
    if (h == NULL)
        return WV_NOMEM;
    wv__sha256_update(h, "wv-trustlist-v1\n", 16);
    for (size_t i = 0; i < n; i++)
        wv__sha256_update(h, pks[i], 32);
    wv__sha256_final(h, d);
    wv__sha256_free(h);
    return WV_OK;
}

int wv__trec_load(wv_repo *r, struct wv__trec *t)
{
    unsigned char bin[WV__REF_RAW_MAX];
    size_t n;
    memset(t, 0, sizeof *t);
    int rc = wv__store_ref_get(r->store, WV__TRUST_REF, t->raw, sizeof t->raw);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(&r->err);
        t->raw[0] = '\0';
        return WV_OK;
    }
    if (rc != WV_OK)
        return rc;
    t->present = true;
    size_t len = strcspn(t->raw, "\r\n");
    struct wv__ad ad;
    trec_ad(&ad);
    if (t->raw[len] != '\n' || t->raw[len + 1] != '\0' ||
        wv__unb64(t->raw, len, bin, sizeof bin, &n) != 0 ||
        n != WV__SEAL_OVERHEAD + 8 + 4 + 32 ||
        wv__unseal(r->crypt->k_meta, &ad, bin, n, bin + WV__SEAL_NONCE) != 0)
        return wv__seterr(&r->err, WV_CORRUPT,
                          "%s: the sealed trust list %s is damaged or was "
                          "altered (it does not authenticate under the "
                          "repository's key)",
                          r->uri, WV__TRUST_REF);
    const unsigned char *pt = bin + WV__SEAL_NONCE;
    t->version = wv__le64(pt);
    t->count = wv__le32(pt + 8);
    memcpy(t->digest, pt + 12, 32);
    return WV_OK;
}

/* Compare-and-swap refs/trust from `expect` (NULL: absent) to version v of
 * the list pks[0..n). */
static int trec_write(wv_repo *r, const char *expect, uint64_t v,
                      unsigned char (*pks)[32], size_t n)
{
    unsigned char pt[8 + 4 + 32], ct[sizeof pt + WV__SEAL_OVERHEAD];
    char out[WV__REF_RAW_MAX];
    wv__put64(pt, v);
    wv__put32(pt + 8, (uint32_t)n);
    if (trust_digest(pks, n, pt + 12) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    struct wv__ad ad;
    trec_ad(&ad);
    wv__seal(r->crypt->k_meta, &ad, pt, sizeof pt, ct);
    wv__b64(ct, sizeof ct, out);
    size_t bl = strlen(out);
    out[bl] = '\n';
    out[bl + 1] = '\0';
    return wv__store_ref_cas(r->store, WV__TRUST_REF, expect, out);
}

static int trust_load_set(wv_repo *r, struct wv__tkey **out, size_t *nout);

/* The public keys of the trust/ objects (*pks: wv__free). */
int wv__trust_pks(wv_repo *r, unsigned char (**pks)[32], size_t *n)
{
    struct wv__tkey *v = NULL;
    size_t nv = 0;
    *pks = NULL;
    *n = 0;
    int rc = trust_load_set(r, &v, &nv);
    if (rc == WV_OK) {
        *pks = wv__malloc((nv ? nv : 1) * 32);
        if (*pks == NULL)
            rc = wv__seterr(&r->err, WV_NOMEM, "out of memory");
        for (size_t i = 0; rc == WV_OK && i < nv; i++)
            memcpy((*pks)[i], v[i].pk, 32);
        *n = nv;
    }
    wv__free(v);
    return rc;
}

/* Write refs/trust for the trust/ objects as they are now, one version
 * above any seen (a damaged record is replaced). */
int wv__trust_publish(wv_repo *r)
{
    struct wv__err *err = &r->err;
    unsigned char(*pks)[32] = NULL;
    size_t n = 0;
    struct wv__trec t;
    int rc = WV_OK;
    for (int attempt = 0; attempt < 20; attempt++) {
        uint64_t known = 0;
        wv__free(pks);
        pks = NULL;
        WV_TRY(wv__trust_pks(r, &pks, &n));
        rc = wv__trec_load(r, &t);
        if (wv_primary(rc) == WV_CORRUPT) {
            wv__clearerr(err);
            t.version = 0;
        } else {
            WV_TRY(rc);
        }
        WV_TRY(wv__state_raise(r, WV__TRUST_REF, 0, &known));
        uint64_t v = (t.version > known ? t.version : known) + 1;
        rc = trec_write(r, t.present ? t.raw : NULL, v, pks, n);
        if (rc != WV_CONFLICT)
            break;
        wv__clearerr(err);
    }
out:
    wv__free(pks);
    return rc;
}

/* The trusted keys v[0..n) of an encrypted repository against its sealed
 * list and what this client has seen of it. */
static int trust_authenticate(wv_repo *r, const struct wv__tkey *v, size_t n)
{
    struct wv__err *err = &r->err;
    struct wv__trec t;
    uint64_t known = 0;
    unsigned char(*pks)[32] = NULL, d[32];
    int rc = WV_OK;
    bool allow = wv__allow_rollback();
    WV_TRY(wv__trec_load(r, &t));
    if (!t.present) {
        WV_TRY(wv__state_raise(r, WV__TRUST_REF, 0, &known));
        WV_CHECK(known == 0 || allow, WV_AUTH_ROLLBACK,
                 "%s: the sealed trust list %s is missing, but the "
                 "repository had one (version %llu): it was removed "
                 "without the key; --allow-rollback accepts that",
                 r->uri, WV__TRUST_REF, (unsigned long long)known);
        goto out; /* a repository from before sealed trust lists */
    }
    WV_TRY(wv__state_raise(r, WV__TRUST_REF, t.version, &known));
    WV_CHECK(t.version >= known || allow, WV_AUTH_ROLLBACK,
             "%s: the sealed trust list %s was rolled back (version "
             "%llu; this client saw version %llu); --allow-rollback "
             "accepts it",
             r->uri, WV__TRUST_REF, (unsigned long long)t.version,
             (unsigned long long)known);
    pks = wv__malloc((n ? n : 1) * 32);
    WV_CHECK(pks != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        memcpy(pks[i], v[i].pk, 32);
    WV_CHECK(trust_digest(pks, n, d) == WV_OK, WV_NOMEM, "out of memory");
    WV_CHECK((t.count == n && memcmp(d, t.digest, 32) == 0) || allow,
             WV_AUTH_ROLLBACK,
             "%s: the trusted keys under trust/ (%zu) are not those of the "
             "sealed trust list (version %llu, %u key%s): changed without "
             "the key; --allow-rollback accepts them",
             r->uri, n, (unsigned long long)t.version, t.count,
             t.count == 1 ? "" : "s");
out:
    wv__free(pks);
    return rc;
}

int wv__trust_sync(wv_repo *s, wv_repo *d, struct wv__err *err)
{
    struct wv__trec ts, td;
    if (s->crypt == NULL || d->crypt == NULL)
        return WV_OK;
    int rc = wv__trec_load(s, &ts);
    if (rc != WV_OK) {
        *err = s->err;
        return rc;
    }
    if (!ts.present)
        return WV_OK;
    rc = wv__trec_load(d, &td);
    if (rc != WV_OK && wv_primary(rc) != WV_CORRUPT) {
        *err = d->err;
        return rc;
    }
    wv__clearerr(&d->err);
    if (td.present && rc == WV_OK && td.version >= ts.version)
        return WV_OK;
    /* bound to the same key name under the same K: copied as stored */
    rc = wv__store_ref_cas(d->store, WV__TRUST_REF,
                           td.present ? td.raw : NULL, ts.raw);
    if (rc == WV_CONFLICT) {
        wv__clearerr(&d->err);
        return wv__seterr(err, WV_CONFLICT,
                          "%s: the trust list changed while it was being "
                          "updated; run again",
                          d->uri);
    }
    if (rc != WV_OK)
        *err = d->err;
    return rc;
}

/* ---- trusted keys ------------------------------------------------------- */


int wv__trust_name(const wv_repo *r, const unsigned char pk[32],
                   char key[160])
{
    char hex[65];
    if (r->crypt == NULL) {
        wv__hex(pk, 32, hex);
    } else {
        unsigned char d[32];
        if (wv__hmac(r->crypt->k_name, "wv-trust", pk, 32, d) != WV_OK)
            return WV_NOMEM;
        wv__hex(d, 32, hex);
    }
    snprintf(key, 160, "trust/%s", hex);
    return WV_OK;
}

int wv__trust_parse(const char *text, size_t len, const char *what,
                    struct wv__tkey *t, struct wv__err *err)
{
    int rc = WV_OK;
    char *k = NULL, *v = NULL;
    size_t kl, vl;
    uint64_t version = 0;
    bool have_key = false;
    struct wv__json j = {text, text, text + len, what, err};
    WV_CHECK(wv__json_eat(&j, '{'), WV_CORRUPT, "%s is not a JSON object",
             what);
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "weightvault_trust") == 0) {
            WV_TRY(wv__json_u64(&j, &version));
        } else if (strcmp(k, "key") == 0 || strcmp(k, "label") == 0) {
            WV_TRY(wv__json_string(&j, &v, &vl));
            if (k[0] == 'k') {
                WV_CHECK(!have_key && vl == 64 &&
                             wv__unhex(v, t->pk, 32) == 0,
                         WV_CORRUPT, "%s: bad public key", what);
                have_key = true;
            } else {
                WV_CHECK(vl <= WV__MAX_LABEL && strlen(v) == vl, WV_CORRUPT,
                         "%s: bad label", what);
                memcpy(t->label, v, vl + 1);
            }
            wv__free(v);
            v = NULL;
        } else {
            WV_TRY(wv__json_skip(&j));
        }
    }
    WV_TRY(it.rc);
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end && version == 1 && have_key, WV_CORRUPT,
             "%s: not a trusted key object", what);
out:
    wv__free(k);
    wv__free(v);
    return rc;
}

/* Every trusted key object; one that cannot be read or checked stops
 * (the list decides what checkouts accept). */
static int trust_load_set(wv_repo *r, struct wv__tkey **out, size_t *nout)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char **keys = NULL, want[160];
    size_t nk = 0, n = 0;
    unsigned char *text = NULL;
    size_t len;
    struct wv__tkey *v = NULL;
    *out = NULL;
    *nout = 0;
    WV_TRY(wv__repo_list(r, "trust/", &keys, &nk));
    if (nk == 0)
        goto out;
    WV_TRY(wv__crypt_ready(err));
    v = wv__calloc(nk, sizeof *v);
    WV_CHECK(v != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < nk; i++) {
        char what[200];
        rc = wv__object_get(r, "trust", keys[i], NULL, 4096, &text, &len);
        if (rc == WV_NOTFOUND) {
            wv__clearerr(err);
            rc = WV_OK;
            continue;
        }
        WV_TRY(rc);
        snprintf(what, sizeof what, "%s: %s", r->uri, keys[i]);
        memset(&v[n], 0, sizeof v[n]);
        WV_TRY(wv__trust_parse((const char *)text, len, what, &v[n], err));
        WV_CHECK(wv__trust_name(r, v[n].pk, want) == WV_OK, WV_NOMEM,
                 "out of memory");
        WV_CHECK(strcmp(want, keys[i]) == 0, WV_CORRUPT,
                 "%s: holds another key than its name says", what);
        snprintf(v[n].key, sizeof v[n].key, "%s", keys[i]);
        n++;
        wv__free(text);
        text = NULL;
    }
    *out = v;
    *nout = n;
    v = NULL;
out:
    wv__free(text);
    wv__free(v);
    wv__repo_list_free(keys, nk);
    return rc;
}

/* The trusted keys: the trust/ objects, and in an encrypted repository
 * checked against the sealed list (trust_authenticate). */
int wv__trust_load(wv_repo *r, struct wv__tkey **out, size_t *nout)
{
    int rc = trust_load_set(r, out, nout);
    if (rc == WV_OK && r->crypt != NULL)
        rc = trust_authenticate(r, *out, *nout);
    if (rc != WV_OK) {
        wv__free(*out);
        *out = NULL;
        *nout = 0;
    }
    return rc;
}

int wv__trust_keys(wv_repo *r, unsigned char (**keys)[32], size_t *n)
{
    struct wv__tkey *v = NULL;
    size_t nv = 0;
    *keys = NULL;
    *n = 0;
    int rc = wv__trust_load(r, &v, &nv);
    if (rc != WV_OK || nv == 0) {
        wv__free(v);
        return rc;
    }
    unsigned char(*k)[32] = wv__malloc(nv * 32);
    if (k == NULL) {
        wv__free(v);
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < nv; i++)
        memcpy(k[i], v[i].pk, 32);
    wv__free(v);
    *keys = k;
    *n = nv;
    return WV_OK;
}

int wv__sig_policy(wv_repo *r, const struct wv__manifest *mf,
                   const char *verify_signer, bool *required)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char signer[65] = "", want[65];
    unsigned char pk[32];
    size_t n = 0;
    if (required)
        *required = false;
    if (mf->has_sig)
        wv__hex(mf->sig_key, 32, signer);
    /* Without libsodium (WV_WITH_CRYPTO=OFF) no signature could be
     * checked: a signed checkpoint is unsupported, not altered. */
    if (mf->has_sig)
        WV_TRY(wv__crypt_ready(err));
    WV_CHECK(!mf->has_sig || mf->sig_ok, WV_AUTH_SIGNATURE,
             "%s: checkpoint %.12s: its signature by key %.16s does not "
             "verify (the checkpoint was altered after it was signed)",
             r->uri, mf->id, signer);
    if (verify_signer) {
        if (required)
            *required = true;
        WV_TRY(wv__sig_load_public(verify_signer, pk, err));
        wv__hex(pk, 32, want);
        WV_CHECK(mf->has_sig, WV_AUTH_SIGNATURE,
                 "%s: checkpoint %.12s is not signed (a signature by key "
                 "%.16s of %s is required)",
                 r->uri, mf->id, want, verify_signer);
        WV_CHECK(memcmp(pk, mf->sig_key, 32) == 0, WV_AUTH_SIGNATURE,
                 "%s: checkpoint %.12s is signed by key %.16s, not by key "
                 "%.16s of %s",
                 r->uri, mf->id, signer, want, verify_signer);
        goto out;
    }
    bool ok = false;
    WV_TRY(wv__trust_has(r, mf->has_sig ? mf->sig_key : NULL, &n, &ok));
    if (n == 0)
        goto out;
    if (required)
        *required = true;
    WV_CHECK(mf->has_sig, WV_AUTH_SIGNATURE,
             "%s: checkpoint %.12s is not signed, and the repository "
             "accepts only checkpoints signed by one of its %zu trusted "
             "keys",
             r->uri, mf->id, n);
    WV_CHECK(ok, WV_AUTH_SIGNATURE,
             "%s: checkpoint %.12s is signed by key %.16s, which the "
             "repository does not trust",
             r->uri, mf->id, signer);
out:
    return rc;
}

int wv__trust_has(wv_repo *r, const unsigned char *pk, size_t *n,
                  bool *found)
{
    unsigned char(*keys)[32] = NULL;
    int rc = wv__trust_keys(r, &keys, n);
    *found = false;
    for (size_t i = 0; rc == WV_OK && pk && i < *n && !*found; i++)
        *found = memcmp(keys[i], pk, 32) == 0;
    wv__free(keys);
    return rc;
}
