/*
 * nocrypt.c -- what crypt.c and keyapi.c provide, in a library built with
 * WV_WITH_CRYPTO=OFF (no libsodium; CMakeLists.txt compiles this file
 * instead of those two).
 *
 * Every entry point that needs cryptography fails with WV_UNSUPPORTED and
 * a message naming the option (WV__NO_CRYPTO_MSG): creating or opening an
 * encrypted repository, its keys, signing, checking a signature, trusting
 * a key, making key files. So no handle ever holds keys (r->crypt stays
 * NULL), and the sealing helpers that object.c, refs.c and trust.c call
 * only for such a handle are never reached: they fail closed (nothing
 * authenticates, keyed hashes are refused, sealing writes zeros).
 * Plain repositories work fully.
 */
#include "crypt.h"
#include "repo.h"

/* The message of a call that needs cryptography, naming what was asked. */
static int unsupported(struct wv__err *err, const char *what)
{
    return wv__seterr(err, WV_UNSUPPORTED, "%s: %s", what, WV__NO_CRYPTO_MSG);
}

static void to_errbuf(const struct wv__err *e, char *buf, size_t cap)
{
    if (buf && cap)
        snprintf(buf, cap, "%s", e->msg);
}

static int repo_unsupported_locked(wv_repo *r, const char *what)
{
    wv__clearerr(&r->err);
    return wv__seterr(&r->err, WV_UNSUPPORTED, "%s: %s: %s", r->uri, what,
                      WV__NO_CRYPTO_MSG);
}

/* A public call on a handle: its message, under the handle's mutex. */
static int repo_unsupported(wv_repo *r, const char *what)
{
    return WV__REPO_LOCKED(r, repo_unsupported_locked(r, what));
}

/* ---- primitives --------------------------------------------------------- */

int wv__crypt_ready(struct wv__err *err)
{
    return unsupported(err, "signatures and encryption");
}

void wv__crypt_free(struct wv__crypt *c)
{
    (void)c; /* never allocated in this build */
}

void wv__ad_init(struct wv__ad *a, const char *domain)
{
    (void)domain;
    a->n = 0;
}

void wv__ad_add(struct wv__ad *a, const void *p, size_t n)
{
    (void)a;
    (void)p;
    (void)n;
}

void wv__ad_str(struct wv__ad *a, const char *s)
{
    (void)a;
    (void)s;
}

void wv__seal(const unsigned char key[32], const struct wv__ad *ad,
              const void *in, size_t n, unsigned char *out)
{
    (void)key;
    (void)ad;
    (void)in;
    memset(out, 0, n + WV__SEAL_OVERHEAD);
}

int wv__unseal(const unsigned char key[32], const struct wv__ad *ad,
               const unsigned char *in, size_t n, unsigned char *out)
{
    (void)key;
    (void)ad;
    (void)in;
    (void)n;
    (void)out;
    return -1; /* does not authenticate */
}

int wv__hmac(const unsigned char key[32], const char *domain, const void *p,
             size_t n, unsigned char out[32])
{
    (void)key;
    (void)domain;
    (void)p;
    (void)n;
    memset(out, 0, 32);
    return WV_UNSUPPORTED;
}

size_t wv__b64_len(size_t n)
{
    return (n * 4 + 2) / 3;
}

void wv__b64(const void *p, size_t n, char *out)
{
    (void)p;
    memset(out, 'A', wv__b64_len(n));
    out[wv__b64_len(n)] = '\0';
}

int wv__unb64(const char *s, size_t len, unsigned char *out, size_t cap,
              size_t *n)
{
    (void)s;
    (void)len;
    (void)out;
    (void)cap;
    *n = 0;
    return -1;
}

/* ---- secrets, encrypted repositories ------------------------------------ */

int wv__secret_get(const char *uri, const char *passphrase,
                   const char *key_file, struct wv__secret *s,
                   struct wv__err *err)
{
    (void)passphrase;
    (void)key_file;
    memset(s, 0, sizeof *s);
    return wv__seterr(err, WV_UNSUPPORTED,
                      "%s: cannot create an encrypted repository: %s", uri,
                      WV__NO_CRYPTO_MSG);
}

int wv__secret_from_file(const char *path, struct wv__secret *s,
                         struct wv__err *err)
{
    memset(s, 0, sizeof *s);
    return unsupported(err, path);
}

int wv__secret_from_pass(const char *pass, struct wv__secret *s,
                         struct wv__err *err)
{
    (void)pass;
    memset(s, 0, sizeof *s);
    return unsupported(err, "passphrase");
}

void wv__secret_wipe(struct wv__secret *s)
{
    memset(s, 0, sizeof *s);
}

int wv__crypt_unlock(wv_repo *r, const char *sealed, size_t sealed_len,
                     const char *passphrase, const char *key_file,
                     unsigned char **inner, size_t *inner_len)
{
    (void)sealed;
    (void)sealed_len;
    (void)passphrase;
    (void)key_file;
    *inner = NULL;
    *inner_len = 0;
    return wv__seterr(&r->err, WV_UNSUPPORTED,
                      "%s: the repository is encrypted, and this library "
                      "was %s",
                      r->uri, WV__NO_CRYPTO_MSG);
}

int wv__crypt_create(struct wv__store *s, const char *uri, const char *inner,
                     size_t inner_len, const wv_init_opts *opts,
                     struct wv__err *err)
{
    (void)s;
    (void)inner;
    (void)inner_len;
    (void)opts;
    return wv__seterr(err, WV_UNSUPPORTED,
                      "%s: cannot create an encrypted repository: %s", uri,
                      WV__NO_CRYPTO_MSG);
}

int wv__crypt_repo_id(const wv_repo *r, char hex[33])
{
    (void)r;
    hex[0] = '\0';
    return WV_UNSUPPORTED;
}

bool wv__repo_same_keys(const wv_repo *a, const wv_repo *b)
{
    return a->crypt == NULL && b->crypt == NULL;
}

/* ---- signatures --------------------------------------------------------- */

int wv__sig_sign(const unsigned char sk[64], const void *a, size_t na,
                 const void *b, size_t nb, unsigned char sig[64])
{
    (void)sk;
    (void)a;
    (void)na;
    (void)b;
    (void)nb;
    memset(sig, 0, 64);
    return WV_UNSUPPORTED;
}

bool wv__sig_verify(const unsigned char pk[32], const unsigned char sig[64],
                    const void *a, size_t na, const void *b, size_t nb)
{
    (void)pk;
    (void)sig;
    (void)a;
    (void)na;
    (void)b;
    (void)nb;
    return false; /* trust.c reports the signature as unsupported */
}

int wv__sig_load_secret(const char *path, unsigned char **sk,
                        struct wv__err *err)
{
    *sk = NULL;
    return wv__seterr(err, WV_UNSUPPORTED, "%s: cannot sign: %s", path,
                      WV__NO_CRYPTO_MSG);
}

void wv__sig_key_free(unsigned char *sk)
{
    (void)sk; /* never allocated in this build */
}

int wv__sig_load_public(const char *path, unsigned char pk[32],
                        struct wv__err *err)
{
    memset(pk, 0, 32);
    return wv__seterr(err, WV_UNSUPPORTED,
                      "%s: cannot check signatures: %s", path,
                      WV__NO_CRYPTO_MSG);
}

/* ---- for tests and fuzzing ---------------------------------------------- */

int wv__crypt_from_key(const unsigned char master[32], struct wv__crypt **out)
{
    (void)master;
    *out = NULL;
    return WV_UNSUPPORTED;
}

int wv__crypt_parse(int which, const char *text, size_t len,
                    struct wv__err *err)
{
    (void)which;
    (void)text;
    (void)len;
    return unsupported(err, "key slot or trusted key");
}

/* ---- the public calls (crypt.c, keyapi.c) ------------------------------- */

int wv_keygen(const char *base, char *errbuf, size_t errbuf_size)
{
    struct wv__err e = {0};
    int rc = unsupported(&e, base && base[0] ? base : "keygen");
    to_errbuf(&e, errbuf, errbuf_size);
    return rc;
}

int wv_secret_keygen(const char *path, char *errbuf, size_t errbuf_size)
{
    struct wv__err e = {0};
    int rc = unsupported(&e, path && path[0] ? path : "keygen");
    to_errbuf(&e, errbuf, errbuf_size);
    return rc;
}

int wv_repo_encrypted(const wv_repo *r)
{
    (void)r;
    return 0;
}

int wv_repo_key_list(wv_repo *r, wv_key_cb cb, void *arg)
{
    (void)cb;
    (void)arg;
    return repo_unsupported(r, "key list");
}

int wv_repo_key_add(wv_repo *r, const char *passphrase, const char *key_file,
                    const char *label, char id[17])
{
    (void)passphrase;
    (void)key_file;
    (void)label;
    if (id)
        id[0] = '\0';
    return repo_unsupported(r, "key add");
}

int wv_repo_key_remove(wv_repo *r, const char *id)
{
    (void)id;
    return repo_unsupported(r, "key remove");
}

int wv_repo_trust_add(wv_repo *r, const char *pub_file, const char *label,
                      char id[17])
{
    (void)pub_file;
    (void)label;
    if (id)
        id[0] = '\0';
    return repo_unsupported(r, "trust add");
}

int wv_repo_trust_list(wv_repo *r, wv_trust_cb cb, void *arg)
{
    (void)cb;
    (void)arg;
    return repo_unsupported(r, "trust list");
}

int wv_repo_trust_remove(wv_repo *r, const char *id)
{
    (void)id;
    return repo_unsupported(r, "trust remove");
}
