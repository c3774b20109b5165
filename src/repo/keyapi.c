/*
 * keyapi.c -- the public key and trust calls: wv_repo_encrypted,
 * wv_repo_key_list/add/remove (key slots of an encrypted repository) and
 * wv_repo_trust_add/list/remove (the keys whose signatures it accepts),
 * with removal markers (docs/repo-format.md section 14.3) and, in an
 * encrypted repository, a new sealed trust list and re-sealed branch
 * heads after every change of the trusted keys.
 *
 * The top of the key rooms: calls crypt.c (key slots, secrets), trust.c,
 * refs.c, async.c (the handle's mutex), util.c and the store. Built only
 * with WV_WITH_CRYPTO=ON (nocrypt.c has the calls otherwise).
 */
#include "crypt.h"
#include "object.h"
#include "refs.h"
#include "json.h"
#include "repo.h"
#include "trust.h"

/* Re-seal every branch head (same checkpoint, next counter), so each
 * carries the current trust-list version: a client that reads any head
 * afterwards knows the list cannot be older. Tags keep theirs. */
static int reseal_heads(wv_repo *r)
{
    struct wv__err *err = &r->err;
    char **keys = NULL;
    size_t nk = 0;
    int rc = WV_OK;
    WV_TRY(wv__repo_list(r, "refs/heads/", &keys, &nk));
    for (size_t i = 0; i < nk; i++) {
        for (int attempt = 0; attempt < 20; attempt++) {
            char raw[WV__REF_RAW_MAX], id[65], name[128],
                val[WV__REF_RAW_MAX];
            rc = wv__ref_read(r, keys[i], NULL, raw, id, name, sizeof name);
            if (rc == WV_NOTFOUND) { /* deleted meanwhile */
                wv__clearerr(err);
                rc = WV_OK;
                break;
            }
            WV_TRY(rc);
            WV_TRY(wv__ref_value(r, keys[i], name, id, val));
            rc = wv__store_ref_cas(r->store, keys[i], raw, val);
            if (rc != WV_CONFLICT)
                break;
            wv__clearerr(err); /* a commit moved it: read it again */
        }
        WV_TRY(rc);
    }
out:
    wv__repo_list_free(keys, nk);
    return rc;
}


int wv__crypt_parse(int which, const char *text, size_t len,
                    struct wv__err *err)
{
    if (which == 0) {
        struct wv__slot s;
        return wv__slot_parse(text, len, "key slot", &s, err);
    }
    struct wv__tkey t;
    memset(&t, 0, sizeof t);
    return wv__trust_parse(text, len, "trusted key", &t, err);
}

/* ---- the public key-management calls ----------------------------------- */

int wv_repo_encrypted(const wv_repo *r)
{
    return r && r->crypt ? 1 : 0;
}

static int need_crypt(wv_repo *r)
{
    if (r->crypt == NULL)
        return wv__seterr(&r->err, WV_MISUSE,
                          "%s: the repository is not encrypted (it has no "
                          "keys; create one with wv init --encrypt)",
                          r->uri);
    return WV_OK;
}

static int key_list_locked(wv_repo *r, wv_key_cb cb, void *arg)
{
    struct wv__slots ss;
    int rc;
    memset(&ss, 0, sizeof ss);
    wv__clearerr(&r->err);
    if ((rc = need_crypt(r)) == WV_OK)
        rc = wv__slots_load(r, &ss);
    for (size_t i = 0; rc == WV_OK && i < ss.n; i++) {
        wv_key_slot k = {ss.v[i].id, ss.v[i].label,
                         ss.v[i].kdf == WV__KDF_ARGON2ID ? "passphrase"
                                                     : "key file",
                         ss.v[i].created,
                         strcmp(ss.v[i].id, r->crypt->slot) == 0};
        rc = cb ? cb(arg, &k) : WV_OK;
    }
    wv__slots_release(&ss);
    return rc;
}

int wv_repo_key_list(wv_repo *r, wv_key_cb cb, void *arg)
{
    return WV__REPO_LOCKED(r, key_list_locked(r, cb, arg));
}

static int key_add_locked(wv_repo *r, const char *passphrase,
                          const char *key_file, const char *label,
                          char id[17])
{
    struct wv__err *err = &r->err;
    struct wv__secret sec;
    struct wv__slot sl;
    int rc = WV_OK;
    memset(&sec, 0, sizeof sec);
    if (id)
        id[0] = '\0';
    wv__clearerr(err);
    WV_TRY(need_crypt(r));
    WV_CHECK(passphrase || key_file, WV_MISUSE,
             "key add: give the new passphrase or key file");
    WV_CHECK(label == NULL || strlen(label) <= WV__MAX_LABEL, WV_MISUSE,
             "key label longer than %d bytes", WV__MAX_LABEL);
    if (passphrase)
        WV_TRY(wv__secret_from_pass(passphrase, &sec, err));
    else
        WV_TRY(wv__secret_from_file(key_file, &sec, err));
    WV_TRY(wv__slot_make(&sec, r->crypt->master, label ? label : "", &sl,
                         err));
    WV_TRY(wv__slot_put(r->store, &sl, err));
    if (id)
        memcpy(id, sl.id, 17);
out:
    wv__secret_wipe(&sec);
    return rc;
}

int wv_repo_key_add(wv_repo *r, const char *passphrase, const char *key_file,
                    const char *label, char id[17])
{
    return WV__REPO_LOCKED(
        r, key_add_locked(r, passphrase, key_file, label, id));
}

/* The one item of names[0..n) that `id` (>= 4 hex digits) starts. */
static int pick(wv_repo *r, const char *what, const char *id, char **names,
                size_t n, size_t *at)
{
    size_t il = id ? strlen(id) : 0, hits = 0;
    if (il < 4 || il > 64 || !wv__is_hex(id, il))
        return wv__seterr(&r->err, WV_MISUSE,
                          "'%.70s' is not a %s id (at least 4 hex digits)",
                          id ? id : "", what);
    for (size_t i = 0; i < n; i++)
        if (strncmp(names[i], id, il) == 0) {
            *at = i;
            hits++;
        }
    if (hits == 1)
        return WV_OK;
    if (hits)
        return wv__seterr(&r->err, WV_MISUSE,
                          "%s: '%s' matches %zu %ss; give more digits",
                          r->uri, id, hits, what);
    return wv__seterr(&r->err, WV_NOTFOUND, "%s: no %s with id '%s'",
                      r->uri, what, id);
}

/* Remove a key slot or trusted key `key`: the marker first (section 14.3
 * of docs/repo-format.md), so an interrupted removal is finished by the
 * next one and never leaves a removal that a sync would not carry. */
static int revoke_key(wv_repo *r, const char *key)
{
    struct wv__err *err = &r->err;
    struct wv__buf b = {0};
    char mk[200], now[32];
    int rc = WV_OK;
    int n = snprintf(mk, sizeof mk, WV__REVOKED "%s", key);
    WV_CHECK(n > 0 && (size_t)n < sizeof mk, WV_MISUSE, "%s: key too long",
             key);
    wv__utc_now(now);
    wv__buf_adds(&b, "{\"weightvault_revoked\": 1, \"key\": ");
    wv__json_put_string(&b, key, strlen(key));
    wv__buf_addf(&b, ", \"time\": \"%s\"}\n", now);
    WV_CHECK(!b.oom, WV_NOMEM, "out of memory");
    WV_TRY(wv__store_put(r->store, mk, b.p, b.len, 0));
    rc = wv__store_del(r->store, key);
    if (rc == WV_NOTFOUND) { /* removed by a concurrent removal */
        wv__clearerr(err);
        rc = WV_OK;
    }
out:
    wv__buf_release(&b);
    return rc;
}

/* `key` is trusted again: its marker goes, so no later sync removes it
 * from the copies. */
static int unrevoke_key(wv_repo *r, const char *key)
{
    char mk[200];
    snprintf(mk, sizeof mk, WV__REVOKED "%s", key);
    int rc = wv__store_del(r->store, mk);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(&r->err);
        rc = WV_OK;
    }
    return rc;
}

static int key_remove_locked(wv_repo *r, const char *id)
{
    struct wv__err *err = &r->err;
    struct wv__slots ss;
    char **ids = NULL, key[32];
    size_t at = 0;
    int rc = WV_OK;
    memset(&ss, 0, sizeof ss);
    wv__clearerr(err);
    WV_TRY(need_crypt(r));
    WV_TRY(wv__slots_load(r, &ss));
    ids = wv__calloc(ss.n ? ss.n : 1, sizeof *ids);
    WV_CHECK(ids != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < ss.n; i++)
        ids[i] = ss.v[i].id;
    WV_TRY(pick(r, "key slot", id, ids, ss.n, &at));
    WV_CHECK(ss.n > 1, WV_MISUSE,
             "%s: key slot %s is the last one: removing it would leave the "
             "repository unopenable (add another key first)",
             r->uri, ss.v[at].id);
    snprintf(key, sizeof key, "keys/%s", ss.v[at].id);
    rc = revoke_key(r, key);
out:
    wv__free(ids);
    wv__slots_release(&ss);
    return rc;
}

int wv_repo_key_remove(wv_repo *r, const char *id)
{
    return WV__REPO_LOCKED(r, key_remove_locked(r, id));
}

static int trust_add_locked(wv_repo *r, const char *pub_file,
                            const char *label, char id[17])
{
    struct wv__err *err = &r->err;
    struct wv__buf b = {0};
    unsigned char pk[32];
    char key[160], hex[65];
    int rc = WV_OK;
    if (id)
        id[0] = '\0';
    wv__clearerr(err);
    WV_CHECK(label == NULL || strlen(label) <= WV__MAX_LABEL, WV_MISUSE,
             "label longer than %d bytes", WV__MAX_LABEL);
    WV_TRY(wv__crypt_ready(err));
    WV_TRY(wv__sig_load_public(pub_file, pk, err));
    WV_CHECK(wv__trust_name(r, pk, key) == WV_OK, WV_NOMEM, "out of memory");
    wv__hex(pk, 32, hex);
    wv__buf_addf(&b, "{\"weightvault_trust\": 1, \"key\": \"%s\", "
                     "\"label\": ",
                 hex);
    wv__json_put_string(&b, label ? label : "", label ? strlen(label) : 0);
    wv__buf_adds(&b, "}\n");
    WV_CHECK(!b.oom, WV_NOMEM, "out of memory");
    WV_TRY(unrevoke_key(r, key));
    WV_TRY(wv__object_put(r, "trust", key, b.p, b.len, 0));
    if (r->crypt) { /* the sealed list, then the heads that carry it */
        WV_TRY(wv__trust_publish(r));
        WV_TRY(reseal_heads(r));
    }
    if (id)
        snprintf(id, 17, "%.16s", hex);
out:
    wv__buf_release(&b);
    return rc;
}

int wv_repo_trust_add(wv_repo *r, const char *pub_file, const char *label,
                      char id[17])
{
    return WV__REPO_LOCKED(r, trust_add_locked(r, pub_file, label, id));
}

static int trust_list_locked(wv_repo *r, wv_trust_cb cb, void *arg)
{
    struct wv__tkey *v = NULL;
    size_t n = 0;
    wv__clearerr(&r->err);
    int rc = wv__trust_load(r, &v, &n);
    for (size_t i = 0; rc == WV_OK && i < n; i++) {
        char hex[65], kid[17];
        wv__hex(v[i].pk, 32, hex);
        snprintf(kid, sizeof kid, "%.16s", hex);
        wv_trusted_key k = {kid, hex, v[i].label};
        rc = cb ? cb(arg, &k) : WV_OK;
    }
    wv__free(v);
    return rc;
}

int wv_repo_trust_list(wv_repo *r, wv_trust_cb cb, void *arg)
{
    return WV__REPO_LOCKED(r, trust_list_locked(r, cb, arg));
}

static int trust_remove_locked(wv_repo *r, const char *id)
{
    struct wv__err *err = &r->err;
    struct wv__tkey *v = NULL;
    size_t n = 0, at = 0;
    char **ids = NULL, *hexes = NULL;
    int rc = WV_OK;
    wv__clearerr(err);
    WV_TRY(wv__trust_load(r, &v, &n));
    ids = wv__calloc(n ? n : 1, sizeof *ids);
    hexes = wv__malloc((n ? n : 1) * 65);
    WV_CHECK(ids && hexes, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        wv__hex(v[i].pk, 32, hexes + i * 65);
        ids[i] = hexes + i * 65;
    }
    WV_TRY(pick(r, "trusted key", id, ids, n, &at));
    WV_TRY(revoke_key(r, v[at].key));
    if (r->crypt) {
        WV_TRY(wv__trust_publish(r));
        WV_TRY(reseal_heads(r));
    }
out:
    wv__free(ids);
    wv__free(hexes);
    wv__free(v);
    return rc;
}

int wv_repo_trust_remove(wv_repo *r, const char *id)
{
    return WV__REPO_LOCKED(r, trust_remove_locked(r, id));
}
