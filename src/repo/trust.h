/*
 * trust.h -- trusted keys and the signature policy (trust.c): the trust/
 * objects naming the public keys whose signatures a repository accepts,
 * the sealed trust list of an encrypted repository (refs/trust), and
 * whether a checkpoint's signature is acceptable. The Ed25519 primitives
 * and key files themselves are in crypt.h.
 */
#ifndef WV_TRUST_H
#define WV_TRUST_H

#include "crypt.h"
#include "refs.h" /* WV__REF_RAW_MAX only: trust.c calls nothing there */

struct wv__manifest;

/* Is checkpoint mf acceptable? A signature that does not verify never
 * is; with a verify_signer key file, or trusted keys in the repository,
 * a signature by that key (one of them) is required (*required says
 * whether one was; may be NULL). WV_AUTH_SIGNATURE naming what failed. */
int wv__sig_policy(wv_repo *r, const struct wv__manifest *mf,
                   const char *verify_signer, bool *required);
/* The trusted public keys (wv__free the array). */
int wv__trust_keys(wv_repo *r, unsigned char (**keys)[32], size_t *n);
/* Encrypted repositories: the sealed trust list (a ref-like object whose
 * version only grows; docs/repo-format.md 14.10) is copied from s to d
 * when d's is missing or older (push, pull). */
#define WV__TRUST_REF "refs/trust"
int wv__trust_sync(wv_repo *s, wv_repo *d, struct wv__err *err);
/* How many keys the repository trusts (*n) and whether pk (NULL: none)
 * is one of them (*found): the one check of commits (is the signing key
 * trusted?) and of checkouts (is the signer?). */
int wv__trust_has(wv_repo *r, const unsigned char *pk, size_t *n,
                  bool *found);

/* ---- for refs.c and keyapi.c ------------------------------------------- */

/* A trusted key object trust/<name>. */
struct wv__tkey {
    unsigned char pk[32];
    char key[160];
    char label[WV__MAX_LABEL + 1];
};
/* The store key of the trusted-key object of pk. */
int wv__trust_name(const wv_repo *r, const unsigned char pk[32],
                   char key[160]);
/* Parse an untrusted trusted-key object. */
int wv__trust_parse(const char *text, size_t len, const char *what,
                    struct wv__tkey *t, struct wv__err *err);
/* The trusted keys: the trust/ objects, and in an encrypted repository
 * checked against the sealed list (*out: wv__free). */
int wv__trust_load(wv_repo *r, struct wv__tkey **out, size_t *nout);
/* The public keys of the trust/ objects, unchecked (*pks: wv__free). */
int wv__trust_pks(wv_repo *r, unsigned char (**pks)[32], size_t *n);

/* The sealed trust list refs/trust, as read. */
struct wv__trec {
    bool present;
    uint64_t version;
    uint32_t count;
    unsigned char digest[32];
    char raw[WV__REF_RAW_MAX]; /* as stored, for a compare-and-swap */
};
/* Read refs/trust (absent: t->present false). WV_CORRUPT if it does
 * not authenticate. Encrypted repositories only. */
int wv__trec_load(wv_repo *r, struct wv__trec *t);
/* Write refs/trust for the trust/ objects as they are now, one version
 * above any seen. */
int wv__trust_publish(wv_repo *r);

#endif
