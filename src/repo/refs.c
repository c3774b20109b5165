/*
 * refs.c -- branch and tag refs as stored (docs/repo-format.md sections 7
 * and 14.9): a plain ref holds its checkpoint id; an encrypted
 * repository's ref name is a keyed hash and its value is sealed, holding
 * the name, the id, a write counter that only grows and the version of
 * the sealed trust list it was written under (so a client notices a ref
 * or trust list put back to an older value).
 *
 * Calls: crypt.c (sealing), trust.c (the sealed trust list's version, and
 * publishing one for a repository from before sealed trust lists),
 * state.c (what this client has seen), util.c, the store. Nothing below
 * calls back here: keyapi.c re-seals the heads when the trust list
 * changes.
 */
#include "refs.h"

#include "crypt.h"
#include "repo.h"
#include "trust.h"

int wv__ref_key(const wv_repo *r, const char *dir, const char *name,
                char key[160])
{
    if (r->crypt == NULL) {
        snprintf(key, 160, "refs/%s/%s", dir, name);
        return WV_OK;
    }
    char in[128], hex[65];
    unsigned char d[32];
    int n = snprintf(in, sizeof in, "%s/%s", dir, name);
    if (wv__hmac(r->crypt->k_name, "wv-refname", in, (size_t)n, d) != WV_OK)
        return WV_NOMEM;
    wv__hex(d, 16, hex);
    snprintf(key, 160, "refs/%s/%s", dir, hex);
    return WV_OK;
}

static void ref_ad(struct wv__ad *ad, const char *key)
{
    wv__ad_init(ad, "wv-ref");
    wv__ad_str(ad, key);
}

/* A ref's stored value `raw` (read from `key`) to its checkpoint id, name,
 * write counter and trust-list version, without the client-state checks.
 * A sealed value of the first format (name NUL id) has counter and
 * version 0. */
static int ref_decode(wv_repo *r, const char *key, const char *shown,
                      const char *raw, char id[65], char *name,
                      size_t name_cap, uint64_t *counter, uint64_t *tv)
{
    unsigned char bin[WV__REF_RAW_MAX], tmp[32];
    size_t n;
    *counter = 0;
    *tv = 0;
    /* Exactly the value a writer stores: the id or the sealed value, one
     * newline, nothing after it. */
    size_t len = strcspn(raw, "\r\n");
    if (raw[len] != '\n' || raw[len + 1] != '\0')
        return wv__seterr(&r->err, WV_CORRUPT,
                          "%s: ref '%s' does not hold exactly one line "
                          "(trailing or missing bytes)",
                          r->uri, shown);
    if (r->crypt == NULL) {
        if (len != 64 || wv__unhex_n(raw, tmp, 32) != 0)
            return wv__seterr(&r->err, WV_CORRUPT,
                              "%s: ref '%s' does not hold a checkpoint id",
                              r->uri, shown);
        memcpy(id, raw, 64);
        id[64] = '\0';
        if (name && name_cap) {
            const char *slash = strchr(key + 5, '/');
            snprintf(name, name_cap, "%s", slash ? slash + 1 : key);
        }
        return WV_OK;
    }
    struct wv__ad ad;
    ref_ad(&ad, key);
    if (wv__unb64(raw, len, bin, sizeof bin, &n) != 0 ||
        wv__unseal(r->crypt->k_meta, &ad, bin, n, bin + WV__SEAL_NONCE) != 0)
        return wv__seterr(&r->err, WV_CORRUPT,
                          "%s: ref '%s' is damaged or was altered (it does "
                          "not authenticate under the repository's key)",
                          r->uri, shown);
    /* name NUL id[32] [le64 counter le64 trust-list version] */
    unsigned char *pt = bin + WV__SEAL_NONCE;
    n -= WV__SEAL_OVERHEAD;
    size_t nl = strnlen((const char *)pt, n);
    char nm[128], want[160];
    const char *slash = strchr(key + 5, '/');
    char dir[8] = "";
    if (slash && slash - (key + 5) < (ptrdiff_t)sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - (key + 5)), key + 5);
    if (nl >= sizeof nm ||
        (nl + 1 + 32 != n && nl + 1 + 32 + 16 != n))
        return wv__seterr(&r->err, WV_CORRUPT,
                          "%s: ref '%s' does not hold a name and a "
                          "checkpoint id",
                          r->uri, shown);
    memcpy(nm, pt, nl + 1);
    if (!wv__ref_name_ok(nm) || wv__ref_key(r, dir, nm, want) != WV_OK ||
        strcmp(want, key) != 0)
        return wv__seterr(&r->err, WV_CORRUPT,
                          "%s: ref '%s' holds the name of another ref",
                          r->uri, shown);
    wv__hex(pt + nl + 1, 32, id);
    if (n == nl + 1 + 32 + 16) {
        *counter = wv__le64(pt + nl + 1 + 32);
        *tv = wv__le64(pt + nl + 1 + 32 + 8);
    }
    if (name && name_cap)
        snprintf(name, name_cap, "%s", nm);
    return WV_OK;
}

int wv__ref_read(wv_repo *r, const char *key, const char *shown,
                 char raw[WV__REF_RAW_MAX], char id[65], char *name,
                 size_t name_cap)
{
    uint64_t counter, tv;
    if (shown == NULL)
        shown = key;
    int rc = wv__store_ref_get(r->store, key, raw, WV__REF_RAW_MAX);
    if (rc != WV_OK)
        return rc;
    rc = ref_decode(r, key, shown, raw, id, name, name_cap, &counter, &tv);
    if (rc != WV_OK || r->crypt == NULL)
        return rc;
    /* Never older than what this client saw; and the trust list it was
     * written under is the least the repository's can be. */
    char what[200];
    snprintf(what, sizeof what, "ref '%s'", shown);
    return wv__state_seen(r, key, counter, what, tv);
}

int wv__ref_value(wv_repo *r, const char *key, const char *name,
                  const char *id, char out[WV__REF_RAW_MAX])
{
    if (r->crypt == NULL) {
        snprintf(out, WV__REF_RAW_MAX, "%s\n", id);
        return WV_OK;
    }
    unsigned char pt[128 + 32 + 16], ct[sizeof pt + WV__SEAL_OVERHEAD];
    size_t nl = strlen(name);
    if (nl > 100 || wv__unhex_n(id, pt + nl + 1, 32) != 0)
        return wv__seterr(&r->err, WV_MISUSE, "bad ref value");
    memcpy(pt, name, nl + 1);
    /* The counter: above the value there now (whatever this client saw of
     * it) and, so a ref deleted and made again starts above its old
     * values, at least the time in microseconds. */
    char cur[WV__REF_RAW_MAX], cid[65];
    uint64_t prev = 0, ptv, seen = 0;
    int rc = wv__store_ref_get(r->store, key, cur, sizeof cur);
    if (rc == WV_OK)
        rc = ref_decode(r, key, key, cur, cid, NULL, 0, &prev, &ptv);
    if (rc != WV_OK)
        prev = 0;
    wv__clearerr(&r->err);
    if (wv__state_raise(r, key, 0, &seen) != WV_OK)
        wv__clearerr(&r->err);
    if (seen > prev)
        prev = seen;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    uint64_t counter = prev + 1 > now ? prev + 1 : now;
    /* The trust-list version it is written under; a repository from
     * before sealed trust lists gets one now if it trusts keys. */
    struct wv__trec t;
    rc = wv__trec_load(r, &t);
    if (rc != WV_OK)
        return rc;
    if (!t.present) {
        unsigned char(*pks)[32] = NULL;
        size_t n = 0;
        rc = wv__trust_pks(r, &pks, &n);
        wv__free(pks);
        if (rc != WV_OK)
            return rc;
        if (n) {
            if ((rc = wv__trust_publish(r)) != WV_OK ||
                (rc = wv__trec_load(r, &t)) != WV_OK)
                return rc;
        }
    }
    wv__put64(pt + nl + 1 + 32, counter);
    wv__put64(pt + nl + 1 + 32 + 8, t.present ? t.version : 0);
    struct wv__ad ad;
    ref_ad(&ad, key);
    size_t pl = nl + 1 + 32 + 16;
    wv__seal(r->crypt->k_meta, &ad, pt, pl, ct);
    wv__b64(ct, pl + WV__SEAL_OVERHEAD, out);
    size_t bl = strlen(out);
    out[bl] = '\n';
    out[bl + 1] = '\0';
    return WV_OK;
}
