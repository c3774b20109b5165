/*
 * crypt.c -- the cryptographic primitives of the repository
 * (docs/repo-format.md section 14): sealing and keyed hashes, secrets, key
 * slots, opening and creating encrypted repositories, Ed25519 signatures
 * and their key files. The only file that includes <sodium.h>; built only
 * with WV_WITH_CRYPTO=ON (nocrypt.c stands in for it otherwise).
 *
 * What uses these: object.c (chunks, objects, pack trailers), refs.c
 * (sealed refs), trust.c (trusted keys, the sealed trust list, the
 * signature policy) and keyapi.c (the public key and trust calls). This
 * file calls none of them: only the store, util.c and core.
 *
 * Keys. An encrypted repository has one random 32-byte repository key K,
 * never stored in clear: each key slot `keys/<16 hex>` holds K sealed
 * under a key-encryption key derived from one secret (Argon2id of a
 * passphrase, or keyed BLAKE2b of a raw key file), so several people open
 * the same repository with their own secrets and a slot can be removed
 * while the others keep working. From K, crypto_kdf (BLAKE2b, context
 * "wvrepo01") derives:
 *   1 k_id    HMAC-SHA256 key of chunk ids: equal plaintext still has one
 *             id (dedup works), but an id reveals nothing without the key;
 *   2 k_name  HMAC-SHA256 key of manifest, index, trust and ref names;
 *   3 k_data  XChaCha20-Poly1305 key of chunk payloads;
 *   4 k_meta  XChaCha20-Poly1305 key of every other sealed object: the
 *             config's sealed part, manifests, index objects, pack
 *             trailers, refs, locks, trusted keys;
 *   5 fp      a fingerprint, compared (never shown) to tell whether two
 *             handles hold the same repository key.
 * HMAC-SHA256 rather than keyed BLAKE2b: SHA-256 runs on SHA-NI through
 * libcrypto at about 1.7 GB/s per core here, BLAKE2b in libsodium at
 * about 1 GB/s, and a commit of unchanged data is nothing but hashing.
 *
 * Sealing. Every sealed object is nonce[24] || ciphertext || tag[16]
 * (XChaCha20-Poly1305 IETF, random nonce) and binds in its associated
 * data a domain string and what names it: the object's key for objects,
 * the ref's key for refs, and for a chunk its id, plaintext length, codec
 * and element size. So no sealed bytes can be moved under another name,
 * swapped with another chunk, or truncated without failing to
 * authenticate; the order and number of a tensor's chunks are in its
 * manifest, itself sealed and bound to its name. After unsealing, a chunk
 * is still checked against its keyed id, so a holder of the repository
 * key (who could seal anything) still cannot change what a signed
 * manifest's ids name.
 *
 * Signatures. A signed manifest ends with a "signature" member holding an
 * Ed25519 signature over "wv-manifest-signature-v1\n" || the manifest
 * without that member (which is what the writer produced before signing).
 * The checkpoint id is the hash of the whole stored manifest, signature
 * included, so the id names exactly the signed content.
 *
 * Secrets (passphrases, raw keys, the repository key, secret signing keys)
 * live in memory locked where the system allows and are wiped
 * (sodium_memzero) as soon as they are no longer needed. No message ever
 * contains one: messages name only where a secret came from.
 */
#include "core.h"
#include "crypt.h"
#include "json.h"
#include "repo.h"

#include <pthread.h>
#include <sodium.h>

#define KDF_CONTEXT "wvrepo01"
#define SIG_DOMAIN "wv-manifest-signature-v1\n"
#define MAX_SECRET 4096
#define SLOT_MAX_BYTES 4096
#define OPS_MAX 16
#define MEM_MAX ((uint64_t)1 << 30)

/* ---- library start ------------------------------------------------------ */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_sodium = -1;

static void sodium_start(void)
{
    g_sodium = sodium_init();
}

int wv__crypt_ready(struct wv__err *err)
{
    pthread_once(&g_once, sodium_start);
    if (g_sodium < 0)
        return wv__seterr(err, WV_ERROR, "libsodium failed to initialise");
    return WV_OK;
}

static struct wv__crypt *crypt_new(void)
{
    struct wv__crypt *c = wv__calloc(1, sizeof *c);
    if (c)
        sodium_mlock(c, sizeof *c); /* best effort (RLIMIT_MEMLOCK) */
    return c;
}

void wv__crypt_free(struct wv__crypt *c)
{
    if (c == NULL)
        return;
    sodium_munlock(c, sizeof *c); /* zeroes, then unlocks */
    sodium_memzero(c, sizeof *c);
    wv__free(c);
}

static void derive(struct wv__crypt *c, const unsigned char master[32])
{
    memcpy(c->master, master, 32);
    crypto_kdf_derive_from_key(c->k_id, 32, 1, KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(c->k_name, 32, 2, KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(c->k_data, 32, 3, KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(c->k_meta, 32, 4, KDF_CONTEXT, master);
    crypto_kdf_derive_from_key(c->fp, 32, 5, KDF_CONTEXT, master);
}

/* ---- associated data, sealing, keyed hashes ---------------------------- */

void wv__ad_init(struct wv__ad *a, const char *domain)
{
    a->n = 0;
    wv__ad_add(a, domain, strlen(domain) + 1);
}

void wv__ad_add(struct wv__ad *a, const void *p, size_t n)
{
    /* Callers add bounded items; clamping keeps both sides equal. */
    if (n > sizeof a->b - a->n)
        n = sizeof a->b - a->n;
    memcpy(a->b + a->n, p, n);
    a->n += n;
}

void wv__ad_str(struct wv__ad *a, const char *s)
{
    wv__ad_add(a, s, strlen(s));
}

void wv__seal(const unsigned char key[32], const struct wv__ad *ad,
              const void *in, size_t n, unsigned char *out)
{
    unsigned long long clen;
    randombytes_buf(out, WV__SEAL_NONCE);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        out + WV__SEAL_NONCE, &clen, in, n, ad->b, ad->n, NULL, out, key);
}

int wv__unseal(const unsigned char key[32], const struct wv__ad *ad,
               const unsigned char *in, size_t n, unsigned char *out)
{
    unsigned long long mlen;
    if (n < WV__SEAL_OVERHEAD)
        return -1;
    return crypto_aead_xchacha20poly1305_ietf_decrypt(
               out, &mlen, NULL, in + WV__SEAL_NONCE, n - WV__SEAL_NONCE,
               ad->b, ad->n, in, key) == 0
               ? 0
               : -1;
}

int wv__hmac(const unsigned char key[32], const char *domain, const void *p,
             size_t n, unsigned char out[32])
{
    unsigned char pad[64], inner[32];
    struct wv__sha256 *h = wv__sha256_new();
    if (h == NULL)
        return WV_NOMEM;
    for (int i = 0; i < 64; i++)
        pad[i] = (unsigned char)((i < 32 ? key[i] : 0) ^ 0x36);
    wv__sha256_update(h, pad, 64);
    if (domain)
        wv__sha256_update(h, domain, strlen(domain) + 1);
    wv__sha256_update(h, p, n);
    wv__sha256_final(h, inner);
    wv__sha256_free(h);
    h = wv__sha256_new();
    if (h == NULL) {
        sodium_memzero(pad, sizeof pad);
        return WV_NOMEM;
    }
    for (int i = 0; i < 64; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    wv__sha256_update(h, pad, 64);
    wv__sha256_update(h, inner, 32);
    wv__sha256_final(h, out);
    wv__sha256_free(h);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
    return WV_OK;
}

/* ---- base64 ------------------------------------------------------------- */

#define B64 sodium_base64_VARIANT_URLSAFE_NO_PADDING

size_t wv__b64_len(size_t n)
{
    return sodium_base64_ENCODED_LEN(n, B64) - 1;
}

void wv__b64(const void *p, size_t n, char *out)
{
    sodium_bin2base64(out, wv__b64_len(n) + 1, p, n, B64);
}

int wv__unb64(const char *s, size_t len, unsigned char *out, size_t cap,
              size_t *n)
{
    const char *end = NULL;
    if (sodium_base642bin(out, cap, s, len, NULL, n, &end, B64) != 0 ||
        end != s + len)
        return -1;
    return 0;
}

/* ---- small files -------------------------------------------------------- */

/* Read a file of at most max bytes into locked memory (for secrets) or
 * ordinary memory. */
static int read_small(const char *path, size_t max, bool secret,
                      unsigned char **out, size_t *len, struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char *b = NULL;
    size_t got = 0;
    struct stat st;
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return wv__seterr(err, errno == ENOENT ? WV_NOTFOUND : WV_IO,
                          "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = wv__seterr(err, WV_IO, "%s: not a regular file", path);
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        rc = wv__seterr(err, WV_FORMAT, "%s: more than %zu bytes: not a "
                                        "key file",
                        path, max);
        goto out;
    }
    b = wv__malloc(max + 1);
    if (b == NULL) {
        rc = wv__seterr(err, WV_NOMEM, "out of memory");
        goto out;
    }
    if (secret)
        sodium_mlock(b, max + 1);
    for (;;) {
        ssize_t r = read(fd, b + got, max - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = wv__seterr(err, WV_IO, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got == max) {
            char c;
            if (read(fd, &c, 1) == 1) {
                rc = wv__seterr(err, WV_FORMAT,
                                "%s: more than %zu bytes: not a key file",
                                path, max);
                goto out;
            }
            break;
        }
    }
    b[got] = '\0';
out:
    close(fd);
    if (rc != WV_OK && b) {
        if (secret)
            sodium_munlock(b, max + 1);
        wv__free(b);
        b = NULL;
        got = 0;
    }
    *out = b;
    *len = got;
    return rc;
}

static void free_small(unsigned char *b, size_t max, bool secret)
{
    if (b == NULL)
        return;
    if (secret)
        sodium_munlock(b, max + 1);
    wv__free(b);
}

/* A new file with `mode`, never replacing one; its bytes and its name
 * (the directory entry) are on disk when this returns WV_OK. */
static int write_new(const char *path, const void *p, size_t n, mode_t mode,
                     struct wv__err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return wv__seterr(err, errno == EEXIST ? WV_EXISTS : WV_IO,
                          "%s: %s", path,
                          errno == EEXIST ? "exists already (not replaced)"
                                          : strerror(errno));
    const unsigned char *b = p;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, b + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int e = done < n ? errno : 0;
    if (e == 0 && fsync(fd) != 0)
        e = errno;
    close(fd);
    const char *what = "";
    if (e == 0 && (e = wv__fsync_dir(path)) != 0)
        what = "fsync of the directory failed: ";
    if (e != 0) {
        unlink(path);
        return wv__seterr(err, WV_IO, "%s: %s%s", path, what,
                          strerror(e ? e : EIO));
    }
    return WV_OK;
}

/* ---- secrets ------------------------------------------------------------ */

static int secret_set(struct wv__secret *s, int kind, const void *p,
                      size_t n, struct wv__err *err)
{
    s->p = wv__malloc(n ? n : 1);
    if (s->p == NULL)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    sodium_mlock(s->p, n ? n : 1);
    memcpy(s->p, p, n);
    s->n = n;
    s->kind = kind;
    return WV_OK;
}

void wv__secret_wipe(struct wv__secret *s)
{
    if (s->p) {
        sodium_munlock(s->p, s->n ? s->n : 1);
        wv__free(s->p);
    }
    memset(s, 0, sizeof *s);
}

int wv__secret_from_pass(const char *pass, struct wv__secret *s,
                         struct wv__err *err)
{
    size_t n = strlen(pass);
    memset(s, 0, sizeof *s);
    if (n == 0)
        return wv__seterr(err, WV_MISUSE, "the passphrase is empty");
    if (n > MAX_SECRET)
        return wv__seterr(err, WV_MISUSE,
                          "the passphrase is longer than %d bytes",
                          MAX_SECRET);
    snprintf(s->from, sizeof s->from, "the passphrase given");
    return secret_set(s, WV__SECRET_PASS, pass, n, err);
}

int wv__secret_from_file(const char *path, struct wv__secret *s,
                         struct wv__err *err)
{
    unsigned char *b = NULL;
    size_t n;
    int rc;
    memset(s, 0, sizeof *s);
    if ((rc = read_small(path, MAX_SECRET, true, &b, &n, err)) != WV_OK)
        return rc;
    size_t m = n;
    if (m && b[m - 1] == '\n')
        m--;
    if (m && b[m - 1] == '\r')
        m--;
    snprintf(s->from, sizeof s->from, "key file '%.120s'", path);
    if (m == 7 + 64 && memcmp(b, "wvkey1:", 7) == 0 &&
        wv__is_hex((const char *)b + 7, 64)) {
        unsigned char raw[32];
        wv__unhex_n((const char *)b + 7, raw, 32);
        rc = secret_set(s, WV__SECRET_RAW, raw, 32, err);
        sodium_memzero(raw, sizeof raw);
    } else if (m == 0) {
        rc = wv__seterr(err, WV_FORMAT, "%s: empty key file", path);
    } else {
        rc = secret_set(s, WV__SECRET_PASS, b, m, err);
    }
    sodium_memzero(b, n);
    free_small(b, MAX_SECRET, true);
    return rc;
}

int wv__secret_get(const char *uri, const char *passphrase,
                   const char *key_file, struct wv__secret *s,
                   struct wv__err *err)
{
    const char *e;
    int rc;
    memset(s, 0, sizeof *s);
    if (passphrase)
        return wv__secret_from_pass(passphrase, s, err);
    if (key_file)
        return wv__secret_from_file(key_file, s, err);
    if ((e = getenv("WV_PASSPHRASE")) != NULL && e[0]) {
        rc = wv__secret_from_pass(e, s, err);
        if (rc == WV_OK)
            snprintf(s->from, sizeof s->from, "$WV_PASSPHRASE");
        return rc;
    }
    if ((e = getenv("WV_KEY_FILE")) != NULL && e[0])
        return wv__secret_from_file(e, s, err);
    return wv__seterr(err, WV_AUTH_NO_KEY,
                      "%s: repository is encrypted: give a passphrase "
                      "(WV_PASSPHRASE, --key-file or a terminal)",
                      uri);
}

/* ---- key slots ---------------------------------------------------------- */

static const char *kdf_name(int kdf)
{
    return kdf == WV__KDF_ARGON2ID ? "argon2id13" : "blake2b";
}

static void slot_ad(const struct wv__slot *s, struct wv__ad *ad)
{
    char salt[33], buf[256];
    wv__hex(s->salt, 16, salt);
    snprintf(buf, sizeof buf, "%s|%s|%llu|%llu|%s|%s", s->id, kdf_name(s->kdf),
             (unsigned long long)s->ops, (unsigned long long)s->mem, salt,
             s->label);
    wv__ad_init(ad, "wv-slot");
    wv__ad_str(ad, buf);
}

/* The key-encryption key of slot s for secret sec; WV_AUTH if the kinds
 * differ. */
static int slot_kek(const struct wv__slot *s, const struct wv__secret *sec,
                    unsigned char kek[32], struct wv__err *err)
{
    if (s->kdf == WV__KDF_ARGON2ID && sec->kind == WV__SECRET_PASS) {
        if (crypto_pwhash(kek, 32, (const char *)sec->p, sec->n, s->salt,
                          s->ops, (size_t)s->mem,
                          crypto_pwhash_ALG_ARGON2ID13) != 0)
            return wv__seterr(err, WV_NOMEM,
                              "out of memory deriving a key (Argon2id, "
                              "%llu MiB)",
                              (unsigned long long)(s->mem >> 20));
        return WV_OK;
    }
    if (s->kdf == WV__KDF_RAW && sec->kind == WV__SECRET_RAW) {
        unsigned char msg[10 + 16];
        memcpy(msg, "wv-kek-v1", 10);
        memcpy(msg + 10, s->salt, 16);
        crypto_generichash(kek, 32, msg, sizeof msg, sec->p, 32);
        return WV_OK;
    }
    return WV_AUTH;
}

int wv__slot_make(const struct wv__secret *sec,
                  const unsigned char master[32], const char *label,
                  struct wv__slot *s, struct wv__err *err)
{
    unsigned char id[8], kek[32];
    struct wv__ad ad;
    int rc;
    memset(s, 0, sizeof *s);
    randombytes_buf(id, sizeof id);
    wv__hex(id, 8, s->id);
    snprintf(s->label, sizeof s->label, "%s", label ? label : "");
    s->kdf = sec->kind == WV__SECRET_RAW ? WV__KDF_RAW : WV__KDF_ARGON2ID;
    if (s->kdf == WV__KDF_ARGON2ID) {
        s->ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
        s->mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    }
    randombytes_buf(s->salt, sizeof s->salt);
    wv__utc_now(s->created);
    if ((rc = slot_kek(s, sec, kek, err)) != WV_OK)
        return rc;
    slot_ad(s, &ad);
    wv__seal(kek, &ad, master, 32, s->wrapped);
    sodium_memzero(kek, sizeof kek);
    return WV_OK;
}

static int slot_encode(const struct wv__slot *s, struct wv__buf *b)
{
    char salt[33], w[128];
    wv__hex(s->salt, 16, salt);
    wv__b64(s->wrapped, sizeof s->wrapped, w);
    wv__buf_addf(b, "{\"weightvault_key\": 1, \"slot\": \"%s\", \"label\": ",
                 s->id);
    wv__json_put_string(b, s->label, strlen(s->label));
    wv__buf_addf(b,
                 ", \"kdf\": \"%s\", \"opslimit\": %llu, \"memlimit\": %llu,"
                 " \"salt\": \"%s\", \"created\": \"%s\", \"wrapped\": "
                 "\"%s\"}\n",
                 kdf_name(s->kdf), (unsigned long long)s->ops,
                 (unsigned long long)s->mem, salt, s->created, w);
    return b->oom ? WV_NOMEM : WV_OK;
}

int wv__slot_parse(const char *text, size_t len, const char *what,
                   struct wv__slot *s, struct wv__err *err)
{
    int rc = WV_OK;
    char *k = NULL, *v = NULL;
    size_t kl, vl;
    uint64_t version = 0;
    unsigned seen = 0;
    struct wv__json j = {text, text, text + len, what, err};
    memset(s, 0, sizeof *s);
    WV_CHECK(wv__json_eat(&j, '{'), WV_CORRUPT, "%s is not a JSON object",
             what);
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        static const char *const fields[] = {
            "weightvault_key", "slot", "label", "kdf", "opslimit",
            "memlimit", "salt", "created", "wrapped"};
        int f = -1;
        for (int i = 0; i < (int)(sizeof fields / sizeof fields[0]); i++)
            if (strcmp(k, fields[i]) == 0)
                f = i;
        if (f < 0) {
            WV_TRY(wv__json_skip(&j));
        } else {
            WV_CHECK(!(seen & (1u << f)), WV_CORRUPT,
                     "%s: duplicate field \"%s\"", what, k);
            seen |= 1u << f;
            if (f == 0 || f == 4 || f == 5) {
                uint64_t u;
                WV_TRY(wv__json_u64(&j, &u));
                if (f == 0)
                    version = u;
                else if (f == 4)
                    s->ops = u;
                else
                    s->mem = u;
            } else {
                WV_TRY(wv__json_string(&j, &v, &vl));
                WV_CHECK(strlen(v) == vl, WV_CORRUPT, "%s: NUL in \"%s\"",
                         what, k);
                if (f == 1) {
                    WV_CHECK(vl == 16 && wv__is_hex(v, 16), WV_CORRUPT,
                             "%s: bad slot id", what);
                    memcpy(s->id, v, 17);
                } else if (f == 2) {
                    WV_CHECK(vl <= WV__MAX_LABEL, WV_CORRUPT,
                             "%s: label too long", what);
                    memcpy(s->label, v, vl + 1);
                } else if (f == 3) {
                    s->kdf = strcmp(v, "argon2id13") == 0 ? WV__KDF_ARGON2ID
                             : strcmp(v, "blake2b") == 0  ? WV__KDF_RAW
                                                          : 0;
                    WV_CHECK(s->kdf != 0, WV_FORMAT,
                             "%s: unknown key derivation '%.40s'", what, v);
                } else if (f == 6) {
                    WV_CHECK(vl == 32 && wv__unhex(v, s->salt, 16) == 0,
                             WV_CORRUPT, "%s: bad salt", what);
                } else if (f == 7) {
                    WV_CHECK(vl < sizeof s->created, WV_CORRUPT,
                             "%s: bad creation time", what);
                    memcpy(s->created, v, vl + 1);
                } else {
                    size_t n = 0;
                    WV_CHECK(wv__unb64(v, vl, s->wrapped, sizeof s->wrapped,
                                       &n) == 0 &&
                                 n == sizeof s->wrapped,
                             WV_CORRUPT, "%s: bad wrapped key", what);
                }
                wv__free(v);
                v = NULL;
            }
        }
    }
    WV_TRY(it.rc);
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_CORRUPT, "%s: trailing bytes", what);
    WV_CHECK(version == 1, WV_FORMAT, "%s: key slot version %llu is not "
                                      "supported",
             what, (unsigned long long)version);
    WV_CHECK((seen & 0x14b) == 0x14b, WV_CORRUPT,
             "%s: lacks slot, kdf, salt or wrapped key", what);
    if (s->kdf == WV__KDF_ARGON2ID)
        WV_CHECK(s->ops >= crypto_pwhash_OPSLIMIT_MIN && s->ops <= OPS_MAX &&
                     s->mem >= crypto_pwhash_MEMLIMIT_MIN &&
                     s->mem <= MEM_MAX,
                 WV_CORRUPT, "%s: Argon2id limits out of range (opslimit "
                             "%llu, memlimit %llu)",
                 what, (unsigned long long)s->ops,
                 (unsigned long long)s->mem);
    else
        WV_CHECK(s->ops == 0 && s->mem == 0, WV_CORRUPT,
                 "%s: limits given for a raw key slot", what);
out:
    wv__free(k);
    wv__free(v);
    return rc;
}

void wv__slots_release(struct wv__slots *ss)
{
    wv__free(ss->v);
    wv__repo_list_free(ss->keys, ss->n_keys);
    memset(ss, 0, sizeof *ss);
}

static int cmp_slot(const void *a, const void *b)
{
    return strcmp(((const struct wv__slot *)a)->id,
                  ((const struct wv__slot *)b)->id);
}

/* Every key slot object that parses. One that does not is skipped and
 * counted (a junk object must not lock everybody out); the wrong-key
 * message then mentions it. */
int wv__slots_load(wv_repo *r, struct wv__slots *ss)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    unsigned char *text = NULL;
    size_t len;
    memset(ss, 0, sizeof *ss);
    WV_TRY(wv__repo_list(r, "keys/", &ss->keys, &ss->n_keys));
    ss->v = wv__calloc(ss->n_keys ? ss->n_keys : 1, sizeof *ss->v);
    WV_CHECK(ss->v != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < ss->n_keys; i++) {
        char what[200];
        rc = wv__store_get_all(r->store, ss->keys[i], SLOT_MAX_BYTES, &text,
                               &len);
        if (rc == WV_NOTFOUND) { /* removed meanwhile */
            wv__clearerr(err);
            rc = WV_OK;
            continue;
        }
        WV_TRY(rc);
        snprintf(what, sizeof what, "%s: %s", r->uri, ss->keys[i]);
        struct wv__err pe = {0};
        rc = wv__slot_parse((const char *)text, len, what, &ss->v[ss->n], &pe);
        wv__free(text);
        text = NULL;
        WV_CHECK(rc != WV_NOMEM, WV_NOMEM, "out of memory");
        if (rc != WV_OK || strcmp(ss->keys[i] + 5, ss->v[ss->n].id) != 0) {
            ss->n_bad++;
            rc = WV_OK;
            continue;
        }
        ss->n++;
    }
    if (ss->n > 1)
        qsort(ss->v, ss->n, sizeof *ss->v, cmp_slot);
out:
    wv__free(text);
    return rc;
}

/* ---- opening and creating ---------------------------------------------- */

static int config_ad(struct wv__ad *ad)
{
    wv__ad_init(ad, "wv-config");
    wv__ad_str(ad, "config");
    return WV_OK;
}

int wv__crypt_unlock(wv_repo *r, const char *sealed, size_t sealed_len,
                     const char *passphrase, const char *key_file,
                     unsigned char **inner, size_t *inner_len)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    struct wv__secret sec;
    struct wv__slots ss;
    struct wv__crypt *c = NULL;
    unsigned char master[32], kek[32], *b = NULL;
    size_t n = 0, tried = 0;
    struct wv__ad ad;

    memset(&sec, 0, sizeof sec);
    memset(&ss, 0, sizeof ss);
    *inner = NULL;
    *inner_len = 0;
    WV_TRY(wv__crypt_ready(err));
    WV_TRY(wv__secret_get(r->uri, passphrase, key_file, &sec, err));
    WV_TRY(wv__slots_load(r, &ss));
    WV_CHECK(ss.n > 0, WV_CORRUPT, "%s: encrypted repository without any "
                                   "readable key slot (%zu in keys/ do not "
                                   "parse)",
             r->uri, ss.n_bad);
    c = crypt_new();
    WV_CHECK(c != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < ss.n && c->slot[0] == '\0'; i++) {
        rc = slot_kek(&ss.v[i], &sec, kek, err);
        if (rc == WV_AUTH) { /* a slot for the other kind of secret */
            rc = WV_OK;
            continue;
        }
        WV_TRY(rc);
        tried++;
        slot_ad(&ss.v[i], &ad);
        if (wv__unseal(kek, &ad, ss.v[i].wrapped, sizeof ss.v[i].wrapped,
                       master) == 0) {
            derive(c, master);
            memcpy(c->slot, ss.v[i].id, sizeof c->slot);
        }
        sodium_memzero(kek, sizeof kek);
    }
    sodium_memzero(master, sizeof master);
    if (c->slot[0] == '\0') {
        char bad[64] = "";
        if (ss.n_bad)
            snprintf(bad, sizeof bad, " (%zu damaged key slot%s skipped)",
                     ss.n_bad, ss.n_bad == 1 ? "" : "s");
        if (tried == 0)
            WV_CHECK(0, WV_AUTH_WRONG_KEY,
                     "%s: wrong key: none of its %zu key slots takes a %s "
                     "(%s)%s",
                     r->uri, ss.n,
                     sec.kind == WV__SECRET_RAW ? "raw key" : "passphrase",
                     sec.from, bad);
        WV_CHECK(0, WV_AUTH_WRONG_KEY,
                 "%s: wrong key: no key slot opens with %s%s", r->uri,
                 sec.from, bad);
    }
    b = wv__malloc(sealed_len + 1);
    WV_CHECK(b != NULL, WV_NOMEM, "out of memory");
    config_ad(&ad);
    WV_CHECK(wv__unb64(sealed, sealed_len, b, sealed_len, &n) == 0 &&
                 wv__unseal(c->k_meta, &ad, b, n, b + WV__SEAL_NONCE) == 0,
             WV_CORRUPT, "%s: config is damaged or was altered (its sealed "
                         "part does not authenticate)",
             r->uri);
    n -= WV__SEAL_OVERHEAD;
    memmove(b, b + WV__SEAL_NONCE, n);
    b[n] = '\0';
    r->crypt = c;
    c = NULL;
    *inner = b;
    *inner_len = n;
    b = NULL;
out:
    wv__secret_wipe(&sec);
    wv__slots_release(&ss);
    wv__crypt_free(c);
    wv__free(b);
    return rc;
}

int wv__slot_put(struct wv__store *s, const struct wv__slot *sl,
                 struct wv__err *err)
{
    struct wv__buf b = {0};
    char key[32];
    if (slot_encode(sl, &b) != WV_OK) {
        wv__buf_release(&b);
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    snprintf(key, sizeof key, "keys/%s", sl->id);
    int rc = wv__store_put(s, key, b.p, b.len, WV_PUT_IF_ABSENT);
    wv__buf_release(&b);
    return rc;
}

int wv__crypt_create(struct wv__store *s, const char *uri, const char *inner,
                     size_t inner_len, const wv_init_opts *opts,
                     struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__secret sec;
    struct wv__crypt *c = NULL;
    struct wv__slot sl;
    unsigned char master[32], *sealed = NULL, *back = NULL;
    char *b64 = NULL, *cfg = NULL, key[32] = "";
    size_t back_len;
    struct wv__ad ad;

    memset(&sec, 0, sizeof sec);
    WV_TRY(wv__crypt_ready(err));
    WV_TRY(wv__secret_get(uri, opts->passphrase, opts->key_file, &sec, err));
    WV_CHECK(opts->key_label == NULL ||
                 strlen(opts->key_label) <= WV__MAX_LABEL,
             WV_MISUSE, "key label longer than %d bytes", WV__MAX_LABEL);
    c = crypt_new();
    WV_CHECK(c != NULL, WV_NOMEM, "out of memory");
    randombytes_buf(master, sizeof master);
    derive(c, master);
    rc = wv__slot_make(&sec, master,
                       opts->key_label ? opts->key_label : "first", &sl, err);
    sodium_memzero(master, sizeof master);
    WV_TRY(rc);
    sealed = wv__malloc(inner_len + WV__SEAL_OVERHEAD);
    b64 = wv__malloc(wv__b64_len(inner_len + WV__SEAL_OVERHEAD) + 1);
    cfg = wv__malloc(wv__b64_len(inner_len + WV__SEAL_OVERHEAD) + 256);
    WV_CHECK(sealed && b64 && cfg, WV_NOMEM, "out of memory");
    config_ad(&ad);
    wv__seal(c->k_meta, &ad, inner, inner_len, sealed);
    wv__b64(sealed, inner_len + WV__SEAL_OVERHEAD, b64);
    int n = snprintf(cfg, wv__b64_len(inner_len + WV__SEAL_OVERHEAD) + 256,
                     "{\"weightvault_repo\": %d, \"encryption\": "
                     "\"xchacha20poly1305\", \"sealed\": \"%s\"}\n",
                     wv__init_version(opts), b64);
    /* The slot first: a config without a slot would be unopenable. */
    WV_TRY(wv__slot_put(s, &sl, err));
    snprintf(key, sizeof key, "keys/%s", sl.id);
    WV_TRY(wv__store_put(s, "config", cfg, (size_t)n, WV_PUT_IF_ABSENT));
    /* A concurrent init may have won the config: then our slot would
     * wrap a key nothing uses. */
    WV_TRY(wv__store_get_all(s, "config", 1 << 20, &back, &back_len));
    if (back_len != (size_t)n || memcmp(back, cfg, back_len) != 0) {
        wv__store_del(s, key);
        WV_CHECK(0, WV_EXISTS, "%s: a repository already exists here", uri);
    }
    key[0] = '\0';
out:
    if (rc != WV_OK && key[0])
        wv__store_del(s, key);
    wv__secret_wipe(&sec);
    wv__crypt_free(c);
    wv__free(sealed);
    wv__free(b64);
    wv__free(cfg);
    wv__free(back);
    return rc;
}
int wv__crypt_repo_id(const wv_repo *r, char hex[33])
{
    unsigned char d[32];
    if (r->crypt == NULL ||
        wv__hmac(r->crypt->k_name, "wv-client-state", "", 0, d) != WV_OK)
        return WV_NOMEM;
    wv__hex(d, 16, hex);
    return WV_OK;
}

/* ---- signatures --------------------------------------------------------- */

static unsigned char *sig_message(const void *a, size_t na, const void *b,
                                  size_t nb, size_t *n)
{
    size_t dl = strlen(SIG_DOMAIN);
    unsigned char *m = wv__malloc(dl + na + nb + 1);
    if (m == NULL)
        return NULL;
    memcpy(m, SIG_DOMAIN, dl);
    if (na)
        memcpy(m + dl, a, na);
    if (nb)
        memcpy(m + dl + na, b, nb);
    *n = dl + na + nb;
    return m;
}

int wv__sig_sign(const unsigned char sk[64], const void *a, size_t na,
                 const void *b, size_t nb, unsigned char sig[64])
{
    size_t n;
    unsigned char *m = sig_message(a, na, b, nb, &n);
    if (m == NULL)
        return WV_NOMEM;
    crypto_sign_detached(sig, NULL, m, n, sk);
    wv__free(m);
    return WV_OK;
}

bool wv__sig_verify(const unsigned char pk[32], const unsigned char sig[64],
                    const void *a, size_t na, const void *b, size_t nb)
{
    size_t n;
    if (wv__crypt_ready(&(struct wv__err){0}) != WV_OK)
        return false;
    unsigned char *m = sig_message(a, na, b, nb, &n);
    if (m == NULL)
        return false;
    bool ok = crypto_sign_verify_detached(sig, m, n, pk) == 0;
    wv__free(m);
    return ok;
}

#define PUB_PREFIX "wv-ed25519-public "
#define SEC_PREFIX "wv-ed25519-secret "

int wv__sig_load_secret(const char *path, unsigned char **sk,
                        struct wv__err *err)
{
    unsigned char *b = NULL, *k = NULL;
    size_t n, blen = 0;
    int rc = WV_OK;
    size_t pl = strlen(SEC_PREFIX);
    *sk = NULL;
    WV_TRY(wv__crypt_ready(err));
    WV_TRY(read_small(path, 4096, true, &b, &n, err));
    blen = n;
    while (n && (b[n - 1] == '\n' || b[n - 1] == '\r'))
        n--;
    k = wv__malloc(64);
    WV_CHECK(k != NULL, WV_NOMEM, "out of memory");
    sodium_mlock(k, 64);
    WV_CHECK(n == pl + 128 && memcmp(b, SEC_PREFIX, pl) == 0 &&
                 wv__is_hex((const char *)b + pl, 128),
             WV_FORMAT, "%s: not a weightvault secret signing key (wv "
                        "keygen writes one)",
             path);
    wv__unhex_n((const char *)b + pl, k, 64);
    /* libsodium's secret key is seed || public key: check they agree. */
    unsigned char pk[32], seed_sk[64];
    crypto_sign_seed_keypair(pk, seed_sk, k);
    bool agree = sodium_memcmp(pk, k + 32, 32) == 0;
    sodium_memzero(seed_sk, sizeof seed_sk);
    WV_CHECK(agree, WV_FORMAT, "%s: damaged secret signing key", path);
    *sk = k;
    k = NULL;
out:
    if (b) {
        sodium_memzero(b, blen);
        free_small(b, 4096, true);
    }
    wv__sig_key_free(k);
    return rc;
}

void wv__sig_key_free(unsigned char *sk)
{
    if (sk == NULL)
        return;
    sodium_munlock(sk, 64);
    sodium_memzero(sk, 64);
    wv__free(sk);
}

static int parse_public(const char *text, size_t n, unsigned char pk[32])
{
    size_t pl = strlen(PUB_PREFIX);
    if (n < pl + 64 || memcmp(text, PUB_PREFIX, pl) != 0 ||
        !wv__is_hex(text + pl, 64) ||
        (n > pl + 64 && text[pl + 64] != ' ' && text[pl + 64] != '\n' &&
         text[pl + 64] != '\r'))
        return -1;
    return wv__unhex_n(text + pl, pk, 32);
}

int wv__sig_load_public(const char *path, unsigned char pk[32],
                        struct wv__err *err)
{
    unsigned char *b = NULL;
    size_t n;
    int rc = read_small(path, 4096, false, &b, &n, err);
    if (rc != WV_OK)
        return rc;
    if (parse_public((const char *)b, n, pk) != 0)
        rc = wv__seterr(err, WV_FORMAT,
                        "%s: not a weightvault public key (wv keygen writes "
                        "NAME.pub)",
                        path);
    free_small(b, 4096, false);
    return rc;
}

int wv_keygen(const char *base, char *errbuf, size_t errbuf_size)
{
    struct wv__err e = {0}, *err = &e;
    int rc = WV_OK;
    unsigned char pk[32], *sk = NULL;
    char *kp = NULL, *pp = NULL, line[256], *sec = NULL;
    size_t bl = base ? strlen(base) : 0;
    WV_CHECK(bl > 0, WV_MISUSE, "keygen: no file name given");
    WV_TRY(wv__crypt_ready(err));
    kp = wv__malloc(bl + 5);
    pp = wv__malloc(bl + 5);
    sk = wv__malloc(64);
    sec = wv__malloc(256);
    WV_CHECK(kp && pp && sk && sec, WV_NOMEM, "out of memory");
    sodium_mlock(sk, 64);
    sodium_mlock(sec, 256);
    snprintf(kp, bl + 5, "%s.key", base);
    snprintf(pp, bl + 5, "%s.pub", base);
    crypto_sign_keypair(pk, sk);
    int n = snprintf(sec, 256, "%s", SEC_PREFIX);
    wv__hex(sk, 64, sec + n);
    n += 128;
    sec[n++] = '\n';
    char hex[65];
    wv__hex(pk, 32, hex);
    const char *slash = strrchr(base, '/');
    int ln = snprintf(line, sizeof line, "%s%s %.100s\n", PUB_PREFIX, hex,
                      slash ? slash + 1 : base);
    WV_TRY(write_new(kp, sec, (size_t)n, 0600, err));
    rc = write_new(pp, line, (size_t)ln, 0644, err);
    if (rc != WV_OK)
        unlink(kp);
out:
    if (sk) {
        sodium_munlock(sk, 64);
        wv__free(sk);
    }
    if (sec) {
        sodium_munlock(sec, 256);
        wv__free(sec);
    }
    wv__free(kp);
    wv__free(pp);
    if (rc != WV_OK && errbuf && errbuf_size)
        snprintf(errbuf, errbuf_size, "%s", e.msg);
    return rc;
}

int wv_secret_keygen(const char *path, char *errbuf, size_t errbuf_size)
{
    struct wv__err e = {0}, *err = &e;
    int rc = WV_OK;
    char *line = NULL;
    unsigned char raw[32];
    WV_CHECK(path && path[0], WV_MISUSE, "keygen: no file name given");
    WV_TRY(wv__crypt_ready(err));
    line = wv__malloc(80);
    WV_CHECK(line != NULL, WV_NOMEM, "out of memory");
    sodium_mlock(line, 80);
    randombytes_buf(raw, sizeof raw);
    memcpy(line, "wvkey1:", 7);
    wv__hex(raw, 32, line + 7);
    line[71] = '\n';
    sodium_memzero(raw, sizeof raw);
    rc = write_new(path, line, 72, 0600, err);
out:
    if (line) {
        sodium_munlock(line, 80);
        wv__free(line);
    }
    if (rc != WV_OK && errbuf && errbuf_size)
        snprintf(errbuf, errbuf_size, "%s", e.msg);
    return rc;
}

/* ---- for tests and fuzzing ---------------------------------------------- */

int wv__crypt_from_key(const unsigned char master[32], struct wv__crypt **out)
{
    struct wv__err e = {0};
    *out = NULL;
    if (wv__crypt_ready(&e) != WV_OK)
        return e.code;
    struct wv__crypt *c = crypt_new();
    if (c == NULL)
        return WV_NOMEM;
    derive(c, master);
    snprintf(c->slot, sizeof c->slot, "0000000000000000");
    *out = c;
    return WV_OK;
}

bool wv__repo_same_keys(const wv_repo *a, const wv_repo *b)
{
    if (a->crypt == NULL || b->crypt == NULL)
        return a->crypt == NULL && b->crypt == NULL;
    return sodium_memcmp(a->crypt->fp, b->crypt->fp, 32) == 0;
}
