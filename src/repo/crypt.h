/*
 * crypt.h -- the cryptographic primitives of the repository (crypt.c; the
 * format is in docs/repo-format.md, section 14): sealing, keyed hashes,
 * secrets, key slots, opening and creating encrypted repositories, and
 * Ed25519 signatures and their key files.
 *
 * Only crypt.c includes <sodium.h>: everything cryptographic the
 * repository does goes through the functions below. A library built with
 * WV_WITH_CRYPTO=OFF (WV_HAVE_CRYPTO not defined) compiles nocrypt.c instead, whose
 * entry points fail with WV_UNSUPPORTED and WV__NO_CRYPTO_MSG; no handle
 * ever holds keys there, so the sealing helpers are never reached.
 */
#ifndef WV_CRYPT_H
#define WV_CRYPT_H

#include "core.h"

/* The message of every entry point that needs libsodium in a build
 * without it. */
#define WV__NO_CRYPTO_MSG \
    "built without encryption support (WV_WITH_CRYPTO=OFF)"

struct wv__store;

#define WV__SEAL_NONCE 24 /* XChaCha20-Poly1305 nonce                */
#define WV__SEAL_TAG 16   /* Poly1305 tag                            */
#define WV__SEAL_OVERHEAD (WV__SEAL_NONCE + WV__SEAL_TAG)
#define WV__SLOT_ID_HEX 17  /* 16 hex digits and a NUL               */
#define WV__MAX_LABEL 100   /* labels of key slots and trusted keys  */

/* The keys of an open encrypted repository, derived from its 32-byte
 * repository key, kept only to wrap it for new key slots. Locked in memory
 * where the system allows it; wv__crypt_free() wipes them. */
struct wv__crypt {
    unsigned char master[32]; /* the repository key (to add key slots) */
    unsigned char k_id[32];   /* HMAC-SHA256: chunk ids                */
    unsigned char k_name[32]; /* HMAC-SHA256: object and ref names     */
    unsigned char k_data[32]; /* XChaCha20-Poly1305: chunk payloads    */
    unsigned char k_meta[32]; /* XChaCha20-Poly1305: every other object */
    unsigned char fp[32];     /* comparable fingerprint of the key     */
    char slot[WV__SLOT_ID_HEX]; /* the key slot that opened it         */
};

/* sodium_init() once for the process (thread-safe); WV_ERROR if the
 * library cannot start. */
int wv__crypt_ready(struct wv__err *err);
void wv__crypt_free(struct wv__crypt *c);

/* Associated data: a domain string (its NUL included) then bytes. */
struct wv__ad {
    unsigned char b[320];
    size_t n;
};
void wv__ad_init(struct wv__ad *a, const char *domain);
void wv__ad_add(struct wv__ad *a, const void *p, size_t n);
void wv__ad_str(struct wv__ad *a, const char *s);

/* XChaCha20-Poly1305 with a random nonce: out = nonce || ciphertext ||
 * tag (n + WV__SEAL_OVERHEAD bytes). `in` may be out + WV__SEAL_NONCE
 * (in place). */
void wv__seal(const unsigned char key[32], const struct wv__ad *ad,
              const void *in, size_t n, unsigned char *out);
/* The inverse: n stored bytes to n - WV__SEAL_OVERHEAD plaintext bytes at
 * out (which may be in + WV__SEAL_NONCE). -1 if they do not authenticate
 * (damaged, altered, or sealed under another key or associated data). */
int wv__unseal(const unsigned char key[32], const struct wv__ad *ad,
               const unsigned char *in, size_t n, unsigned char *out);

/* HMAC-SHA256 of (domain with its NUL, if not NULL) || p under key. Runs
 * on SHA-NI through libcrypto. WV_NOMEM only. Thread-safe. */
int wv__hmac(const unsigned char key[32], const char *domain, const void *p,
             size_t n, unsigned char out[32]);

/* ---- secrets that open a repository ------------------------------------ */

enum { WV__SECRET_PASS = 1, WV__SECRET_RAW = 2 };
struct wv__secret {
    int kind;
    unsigned char *p; /* locked; wv__secret_wipe() wipes and frees */
    size_t n;
    char from[160];   /* "the passphrase given", "key file 'x'"      */
};
/* The secret given by an option, else by $WV_PASSPHRASE, else by the file
 * named in $WV_KEY_FILE. WV_AUTH_NO_KEY (message naming `uri` and the
 * ways to give one) if there is none. */
int wv__secret_get(const char *uri, const char *passphrase,
                   const char *key_file, struct wv__secret *s,
                   struct wv__err *err);
/* A key file: `wvkey1:` and 64 hex digits (a raw key, as
 * wv_secret_keygen writes), or exactly 32 bytes (raw), or else a
 * passphrase (the file's bytes without one final newline). */
int wv__secret_from_file(const char *path, struct wv__secret *s,
                         struct wv__err *err);
int wv__secret_from_pass(const char *pass, struct wv__secret *s,
                         struct wv__err *err);
void wv__secret_wipe(struct wv__secret *s);

/* ---- key slots (keys/<16 hex>) ----------------------------------------- */

enum { WV__KDF_ARGON2ID = 1, WV__KDF_RAW = 2 };

struct wv__slot {
    char id[WV__SLOT_ID_HEX];
    char label[WV__MAX_LABEL + 1];
    int kdf;
    uint64_t ops, mem;
    unsigned char salt[16];
    unsigned char wrapped[32 + WV__SEAL_OVERHEAD];
    char created[32];
};

struct wv__slots {
    struct wv__slot *v;
    size_t n;
    char **keys;
    size_t n_keys;
    size_t n_bad; /* slot objects that do not parse (skipped) */
};
/* A new slot wrapping `master` under secret sec. */
int wv__slot_make(const struct wv__secret *sec,
                  const unsigned char master[32], const char *label,
                  struct wv__slot *out, struct wv__err *err);
int wv__slot_put(struct wv__store *s, const struct wv__slot *sl,
                 struct wv__err *err);
/* Parse an untrusted key slot object. */
int wv__slot_parse(const char *text, size_t len, const char *what,
                   struct wv__slot *s, struct wv__err *err);
/* Every key slot object that parses (sorted by id); wv__slots_release
 * releases them, also after a failure. */
int wv__slots_load(wv_repo *r, struct wv__slots *ss);
void wv__slots_release(struct wv__slots *ss);

/* ---- opening and creating an encrypted repository --------------------- */

/* Open-time: the sealed part of an encrypted config (base64 text) to the
 * inner config's JSON, after unwrapping the repository key from a key
 * slot with the secret given (or from the environment). */
int wv__crypt_unlock(wv_repo *r, const char *sealed, size_t sealed_len,
                     const char *passphrase, const char *key_file,
                     unsigned char **inner, size_t *inner_len);
/* Init-time: write a key slot for the secret given and the config whose
 * sealed part is `inner` (the plain config's JSON). */
int wv__crypt_create(struct wv__store *s, const char *uri, const char *inner,
                     size_t inner_len, const wv_init_opts *opts,
                     struct wv__err *err);
/* An id of an encrypted repository only holders of its key can compute
 * (32 hex digits), naming its client state. */
int wv__crypt_repo_id(const wv_repo *r, char hex[33]);
/* Do chunk ids and sealed objects mean the same in both (both plain, or
 * both encrypted with the same repository key)? For push and pull, which
 * copy objects as they are stored. */
bool wv__repo_same_keys(const wv_repo *a, const wv_repo *b);

/* ---- signatures --------------------------------------------------------- */

/* Ed25519 over "wv-manifest-signature-v1\n" || a || b (the unsigned
 * manifest, given in two pieces). */
int wv__sig_sign(const unsigned char sk[64], const void *a, size_t na,
                 const void *b, size_t nb, unsigned char sig[64]);
bool wv__sig_verify(const unsigned char pk[32], const unsigned char sig[64],
                    const void *a, size_t na, const void *b, size_t nb);
/* Key files written by wv_keygen(). The secret is locked memory the caller
 * releases with wv__sig_key_free() (which wipes it). */
int wv__sig_load_secret(const char *path, unsigned char **sk,
                        struct wv__err *err);
void wv__sig_key_free(unsigned char *sk);
int wv__sig_load_public(const char *path, unsigned char pk[32],
                        struct wv__err *err);

/* ---- for tests and fuzzing --------------------------------------------- */

/* Keys derived from a given repository key (wv__crypt_free them). */
int wv__crypt_from_key(const unsigned char master[32],
                       struct wv__crypt **out);
/* Parse an untrusted clear-text object and discard it: which 0 a key
 * slot, 1 a trusted-key object. */
int wv__crypt_parse(int which, const char *text, size_t len,
                    struct wv__err *err);

/* ---- base64 (URL-safe, no padding) ------------------------------------- */
size_t wv__b64_len(size_t n);
void wv__b64(const void *p, size_t n, char *out); /* out: b64_len + 1 */
/* -1 unless `s` (len bytes) is valid; *n set to the decoded length. */
int wv__unb64(const char *s, size_t len, unsigned char *out, size_t cap,
              size_t *n);

#endif
