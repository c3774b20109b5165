/*
 * crypt.c -- encrypted repositories, key slots, and signed checkpoints
 * (docs/repo-format.md section 14). The only file that includes
 * <sodium.h>.
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
#include "json.h"
#include "repo.h"

#include <pthread.h>
#include <sodium.h>

#define KDF_CONTEXT "wvrepo01"
#define SIG_DOMAIN "wv-manifest-signature-v1\n"
#define MAX_SECRET 4096
#define MAX_LABEL 100
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

/* A new file with `mode`, never replacing one. */
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
    if (e != 0) {
        unlink(path);
        return wv__seterr(err, WV_IO, "%s: %s", path, strerror(e ? e : EIO));
    }
    return WV_OK;
}

static bool is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* n bytes from 2n hex digits (no terminator needed); -1 if not hex. */
static int unhex_n(const char *hex, unsigned char *out, size_t n)
{
    if (!is_hex(hex, 2 * n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int d = 0; d < 2; d++) {
            char c = hex[2 * i + (size_t)d];
            v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        out[i] = (unsigned char)v;
    }
    return 0;
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
        is_hex((const char *)b + 7, 64)) {
        unsigned char raw[32];
        unhex_n((const char *)b + 7, raw, 32);
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

enum { KDF_ARGON2ID = 1, KDF_RAW = 2 };

struct slot {
    char id[WV__SLOT_ID_HEX];
    char label[MAX_LABEL + 1];
    int kdf;
    uint64_t ops, mem;
    unsigned char salt[16];
    unsigned char wrapped[32 + WV__SEAL_OVERHEAD];
    char created[32];
};

static const char *kdf_name(int kdf)
{
    return kdf == KDF_ARGON2ID ? "argon2id13" : "blake2b";
}

static void slot_ad(const struct slot *s, struct wv__ad *ad)
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
static int slot_kek(const struct slot *s, const struct wv__secret *sec,
                    unsigned char kek[32], struct wv__err *err)
{
    if (s->kdf == KDF_ARGON2ID && sec->kind == WV__SECRET_PASS) {
        if (crypto_pwhash(kek, 32, (const char *)sec->p, sec->n, s->salt,
                          s->ops, (size_t)s->mem,
                          crypto_pwhash_ALG_ARGON2ID13) != 0)
            return wv__seterr(err, WV_NOMEM,
                              "out of memory deriving a key (Argon2id, "
                              "%llu MiB)",
                              (unsigned long long)(s->mem >> 20));
        return WV_OK;
    }
    if (s->kdf == KDF_RAW && sec->kind == WV__SECRET_RAW) {
        unsigned char msg[10 + 16];
        memcpy(msg, "wv-kek-v1", 10);
        memcpy(msg + 10, s->salt, 16);
        crypto_generichash(kek, 32, msg, sizeof msg, sec->p, 32);
        return WV_OK;
    }
    return WV_AUTH;
}

static int slot_make(const struct wv__secret *sec,
                     const unsigned char master[32], const char *label,
                     struct slot *s, struct wv__err *err)
{
    unsigned char id[8], kek[32];
    struct wv__ad ad;
    int rc;
    memset(s, 0, sizeof *s);
    randombytes_buf(id, sizeof id);
    wv__hex(id, 8, s->id);
    snprintf(s->label, sizeof s->label, "%s", label ? label : "");
    s->kdf = sec->kind == WV__SECRET_RAW ? KDF_RAW : KDF_ARGON2ID;
    if (s->kdf == KDF_ARGON2ID) {
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

static int slot_encode(const struct slot *s, struct wv__buf *b)
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

static int slot_parse(const char *text, size_t len, const char *what,
                      struct slot *s, struct wv__err *err)
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
    do {
        WV_TRY(wv__json_string(&j, &k, &kl));
        WV_TRY(wv__json_expect(&j, ':'));
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
                    WV_CHECK(vl == 16 && is_hex(v, 16), WV_CORRUPT,
                             "%s: bad slot id", what);
                    memcpy(s->id, v, 17);
                } else if (f == 2) {
                    WV_CHECK(vl <= MAX_LABEL, WV_CORRUPT,
                             "%s: label too long", what);
                    memcpy(s->label, v, vl + 1);
                } else if (f == 3) {
                    s->kdf = strcmp(v, "argon2id13") == 0 ? KDF_ARGON2ID
                             : strcmp(v, "blake2b") == 0  ? KDF_RAW
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
        wv__free(k);
        k = NULL;
    } while (wv__json_eat(&j, ','));
    WV_TRY(wv__json_expect(&j, '}'));
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_CORRUPT, "%s: trailing bytes", what);
    WV_CHECK(version == 1, WV_FORMAT, "%s: key slot version %llu is not "
                                      "supported",
             what, (unsigned long long)version);
    WV_CHECK((seen & 0x14b) == 0x14b, WV_CORRUPT,
             "%s: lacks slot, kdf, salt or wrapped key", what);
    if (s->kdf == KDF_ARGON2ID)
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

struct slots {
    struct slot *v;
    size_t n;
    char **keys;
    size_t n_keys;
    size_t n_bad; /* slot objects that do not parse (skipped) */
};

static void slots_release(struct slots *ss)
{
    wv__free(ss->v);
    wv__repo_list_free(ss->keys, ss->n_keys);
    memset(ss, 0, sizeof *ss);
}

static int cmp_slot(const void *a, const void *b)
{
    return strcmp(((const struct slot *)a)->id, ((const struct slot *)b)->id);
}

/* Every key slot object that parses. One that does not is skipped and
 * counted (a junk object must not lock everybody out); the wrong-key
 * message then mentions it. */
static int slots_load(wv_repo *r, struct slots *ss)
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
        rc = slot_parse((const char *)text, len, what, &ss->v[ss->n], &pe);
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
    struct slots ss;
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
    WV_TRY(slots_load(r, &ss));
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
    slots_release(&ss);
    wv__crypt_free(c);
    wv__free(b);
    return rc;
}

static int put_slot(struct wv__store *s, const struct slot *sl,
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
    struct slot sl;
    unsigned char master[32], *sealed = NULL, *back = NULL;
    char *b64 = NULL, *cfg = NULL, key[32] = "";
    size_t back_len;
    struct wv__ad ad;

    memset(&sec, 0, sizeof sec);
    WV_TRY(wv__crypt_ready(err));
    WV_TRY(wv__secret_get(uri, opts->passphrase, opts->key_file, &sec, err));
    WV_CHECK(opts->key_label == NULL || strlen(opts->key_label) <= MAX_LABEL,
             WV_MISUSE, "key label longer than %d bytes", MAX_LABEL);
    c = crypt_new();
    WV_CHECK(c != NULL, WV_NOMEM, "out of memory");
    randombytes_buf(master, sizeof master);
    derive(c, master);
    rc = slot_make(&sec, master, opts->key_label ? opts->key_label : "first",
                   &sl, err);
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
                     "{\"weightvault_repo\": 2, \"encryption\": "
                     "\"xchacha20poly1305\", \"sealed\": \"%s\"}\n",
                     b64);
    /* The slot first: a config without a slot would be unopenable. */
    WV_TRY(put_slot(s, &sl, err));
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

/* ---- chunks ------------------------------------------------------------- */

int wv__chunk_id(const wv_repo *r, const void *p, size_t n,
                 unsigned char id[32])
{
    if (r->crypt == NULL) {
        wv__sha256_buf(p, n, id);
        return WV_OK;
    }
    return wv__hmac(r->crypt->k_id, NULL, p, n, id);
}

size_t wv__chunk_bound(const wv_repo *r, size_t n)
{
    return wv__codec_bound(n) + (r->crypt ? WV__SEAL_OVERHEAD : 0);
}

static void chunk_ad(struct wv__ad *ad, const unsigned char id[32],
                     uint64_t raw_len, uint8_t codec, uint8_t elem)
{
    unsigned char b[8];
    wv__ad_init(ad, "wv-chunk");
    wv__ad_add(ad, id, 32);
    wv__put64(b, raw_len);
    wv__ad_add(ad, b, 8);
    wv__ad_add(ad, &codec, 1);
    wv__ad_add(ad, &elem, 1);
}

void wv__chunk_encode(const wv_repo *r, const unsigned char id[32],
                      const void *p, size_t n, unsigned elem,
                      unsigned char *out, void *scratch, size_t *stored,
                      uint8_t *codec, uint8_t *elem_out)
{
    size_t off = r->crypt ? WV__SEAL_NONCE : 0, len = n;
    int c = WV__CODEC_NONE;
    const void *src = p;
    /* Uncompressed and sealed: straight from the source, no copy. */
    if (r->crypt == NULL || r->cfg.compression != WV__CODEC_NONE) {
        c = wv__codec_encode(r->cfg.compression, r->cfg.level, elem, p, n,
                             out + off, wv__codec_bound(n), scratch, &len);
        src = out + off;
    }
    uint8_t e = (uint8_t)(c == WV__CODEC_BG_ZSTD ? elem : 0);
    if (r->crypt) {
        struct wv__ad ad;
        chunk_ad(&ad, id, n, (uint8_t)c, e);
        wv__seal(r->crypt->k_data, &ad, src, len, out);
        len += WV__SEAL_OVERHEAD;
    }
    *stored = len;
    *codec = (uint8_t)c;
    *elem_out = e;
}

int wv__chunk_open(const wv_repo *r, const struct wv__chunk_loc *l,
                   unsigned char *stored, void *out, size_t raw_len,
                   void *scratch, bool check_id, struct wv__err *err)
{
    char hex[65], pack[65];
    unsigned char d[32];
    const unsigned char *payload = stored;
    size_t plen = (size_t)l->stored_len;
    wv__hex(l->id, 32, hex);
    wv__hex(l->pack, 32, pack);
    if (r->crypt) {
        struct wv__ad ad;
        unsigned char *dst = l->codec == WV__CODEC_NONE
                                 ? (unsigned char *)out
                                 : stored + WV__SEAL_NONCE;
        if (plen < WV__SEAL_OVERHEAD ||
            (l->codec == WV__CODEC_NONE &&
             plen != raw_len + WV__SEAL_OVERHEAD))
            return wv__seterr(err, WV_CORRUPT,
                              "%s: chunk %.12s in pack %.12s has an "
                              "impossible stored length",
                              r->uri, hex, pack);
        chunk_ad(&ad, l->id, raw_len, l->codec, l->elem);
        if (wv__unseal(r->crypt->k_data, &ad, stored, plen, dst) != 0)
            return wv__seterr(err, WV_CORRUPT,
                              "%s: chunk %.12s in pack %.12s is damaged or "
                              "was altered (it does not authenticate)",
                              r->uri, hex, pack);
        payload = dst;
        plen -= WV__SEAL_OVERHEAD;
    }
    if (l->codec != WV__CODEC_NONE) {
        struct wv__err e = {0};
        if (wv__codec_decode(l->codec, l->elem, payload, plen, out, raw_len,
                             scratch, &e) != WV_OK)
            return wv__seterr(err, WV_CORRUPT,
                              "%s: chunk %.12s in pack %.12s: %s", r->uri,
                              hex, pack, e.msg);
    } else if (payload != out) {
        memcpy(out, payload, raw_len);
    }
    if (r->crypt && !check_id)
        return WV_OK; /* authenticated, bound to its id */
    if (wv__chunk_id(r, out, raw_len, d) != WV_OK)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    if (sodium_memcmp(d, l->id, 32) != 0)
        return wv__seterr(err, WV_CORRUPT_CHECKSUM,
                          "%s: chunk %.12s in pack %.12s is damaged (its "
                          "bytes do not hash to its id)",
                          r->uri, hex, pack);
    return WV_OK;
}

/* ---- whole objects ------------------------------------------------------ */

static void object_ad(struct wv__ad *ad, const char *kind, const char *key)
{
    char domain[32];
    snprintf(domain, sizeof domain, "wv-%s", kind);
    wv__ad_init(ad, domain);
    wv__ad_str(ad, key);
}

int wv__object_name(const wv_repo *r, const char *kind, const void *p,
                    size_t n, char hex[65])
{
    unsigned char d[32];
    if (r->crypt == NULL) {
        wv__sha256_buf(p, n, d);
    } else {
        char domain[32];
        snprintf(domain, sizeof domain, "wv-%s", kind);
        if (wv__hmac(r->crypt->k_name, domain, p, n, d) != WV_OK)
            return WV_NOMEM;
    }
    wv__hex(d, 32, hex);
    return WV_OK;
}

int wv__object_get(wv_repo *r, const char *kind, const char *key,
                   const char *name, size_t max, unsigned char **out,
                   size_t *len)
{
    unsigned char *b = NULL;
    size_t n = 0;
    char what[120], hex[65];
    *out = NULL;
    *len = 0;
    if (name)
        snprintf(what, sizeof what, "%s %.12s", kind, name);
    else
        snprintf(what, sizeof what, "%.100s", key);
    int rc = wv__store_get_all(r->store, key,
                               max + (r->crypt ? WV__SEAL_OVERHEAD : 0), &b,
                               &n);
    if (rc != WV_OK)
        return rc;
    if (r->crypt) {
        struct wv__ad ad;
        object_ad(&ad, kind, key);
        if (wv__unseal(r->crypt->k_meta, &ad, b, n, b + WV__SEAL_NONCE) !=
            0) {
            wv__free(b);
            return wv__seterr(&r->err, WV_CORRUPT_CHECKSUM,
                              "%s: %s is damaged or was altered (it does "
                              "not authenticate under the repository's "
                              "key)",
                              r->uri, what);
        }
        n -= WV__SEAL_OVERHEAD;
        memmove(b, b + WV__SEAL_NONCE, n);
        b[n] = '\0';
    }
    if (name) {
        if (wv__object_name(r, kind, b, n, hex) != WV_OK) {
            wv__free(b);
            return wv__seterr(&r->err, WV_NOMEM, "out of memory");
        }
        if (strcmp(hex, name) != 0) {
            wv__free(b);
            return wv__seterr(&r->err, WV_CORRUPT_CHECKSUM,
                              "%s: %s is damaged (its content does not "
                              "hash to its name)",
                              r->uri, what);
        }
    }
    *out = b;
    *len = n;
    return WV_OK;
}

int wv__object_put(wv_repo *r, const char *kind, const char *key,
                   const void *p, size_t n, unsigned flags)
{
    if (r->crypt == NULL)
        return wv__store_put(r->store, key, p, n, flags);
    unsigned char *b = wv__malloc(n + WV__SEAL_OVERHEAD);
    if (b == NULL)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    struct wv__ad ad;
    object_ad(&ad, kind, key);
    wv__seal(r->crypt->k_meta, &ad, p, n, b);
    int rc = wv__store_put(r->store, key, b, n + WV__SEAL_OVERHEAD, flags);
    wv__free(b);
    return rc;
}

/* ---- pack tails --------------------------------------------------------- */

uint64_t wv__pack_tail_len(const wv_repo *r, uint32_t n)
{
    return (uint64_t)n * WV__PACK_ENTRY + 12 +
           (r->crypt ? WV__SEAL_OVERHEAD : 0);
}

const char *wv__pack_end(const wv_repo *r)
{
    return r->crypt ? WV__PACK_END_SEALED : WV__PACK_END;
}

static void trailer_ad(struct wv__ad *ad, uint32_t n)
{
    unsigned char b[4];
    wv__put32(b, n);
    wv__ad_init(ad, "wv-trailer");
    wv__ad_add(ad, b, 4);
}

int wv__pack_tail(const wv_repo *r, const struct wv__chunk_loc *ents,
                  size_t n, struct wv__buf *t)
{
    size_t off = r->crypt ? WV__SEAL_NONCE : 0;
    size_t elen = n * WV__PACK_ENTRY;
    unsigned char *e = wv__malloc(elen + WV__SEAL_OVERHEAD);
    unsigned char n4[4];
    if (e == NULL)
        return WV_NOMEM;
    for (size_t i = 0; i < n; i++) {
        unsigned char *x = e + off + i * WV__PACK_ENTRY;
        const struct wv__chunk_loc *l = &ents[i];
        memcpy(x, l->id, 32);
        wv__put64(x + 32, l->off);
        wv__put64(x + 40, l->stored_len);
        wv__put64(x + 48, l->raw_len);
        x[56] = l->codec;
        x[57] = l->elem;
    }
    if (r->crypt) {
        struct wv__ad ad;
        trailer_ad(&ad, (uint32_t)n);
        wv__seal(r->crypt->k_meta, &ad, e + off, elen, e);
        elen += WV__SEAL_OVERHEAD;
    }
    wv__buf_add(t, e, elen);
    wv__free(e);
    wv__put32(n4, (uint32_t)n);
    wv__buf_add(t, n4, 4);
    wv__buf_add(t, wv__pack_end(r), 8);
    return t->oom ? WV_NOMEM : WV_OK;
}

int wv__pack_tail_open(const wv_repo *r, unsigned char *tail, size_t tlen,
                       uint32_t n, const unsigned char **entries)
{
    if (tlen != wv__pack_tail_len(r, n))
        return -1;
    if (r->crypt == NULL) {
        *entries = tail;
        return 0;
    }
    struct wv__ad ad;
    trailer_ad(&ad, n);
    if (wv__unseal(r->crypt->k_meta, &ad, tail,
                   (size_t)n * WV__PACK_ENTRY + WV__SEAL_OVERHEAD,
                   tail + WV__SEAL_NONCE) != 0)
        return -1;
    *entries = tail + WV__SEAL_NONCE;
    return 0;
}

/* ---- refs --------------------------------------------------------------- */

struct tkey {
    unsigned char pk[32];
    char key[160];
    char label[MAX_LABEL + 1];
};


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

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
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
        if (len != 64 || unhex_n(raw, tmp, 32) != 0)
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
        *counter = get_le64(pt + nl + 1 + 32);
        *tv = get_le64(pt + nl + 1 + 32 + 8);
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
    rc = wv__state_seen(r, key, counter, what);
    if (rc == WV_OK)
        rc = wv__state_raise(r, WV__TRUST_REF, tv, NULL);
    return rc;
}

/* ---- the sealed trust list ------------------------------------------------
 * refs/trust (encrypted repositories only) holds
 * b64(Seal(k_meta, "wv-trustlist\0" || "refs/trust",
 *          le64(version) || le32(count) || digest[32])) "\n"
 * where digest is the SHA-256 of "wv-trustlist-v1\n" and the trusted public
 * keys, sorted: only holders of K can say which keys are trusted, and a
 * version that only grows lets clients (and sealed refs, which carry the
 * version they were written under) notice an older list put back. */

struct trec {
    bool present;
    uint64_t version;
    uint32_t count;
    unsigned char digest[32];
    char raw[WV__REF_RAW_MAX]; /* as stored, for a compare-and-swap */
};

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

static int trec_load(wv_repo *r, struct trec *t)
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
    t->version = get_le64(pt);
    t->count = (uint32_t)pt[8] | (uint32_t)pt[9] << 8 |
               (uint32_t)pt[10] << 16 | (uint32_t)pt[11] << 24;
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
    put_le64(pt, v);
    for (int i = 0; i < 4; i++)
        pt[8 + i] = (unsigned char)((uint64_t)n >> (8 * i));
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

static int trust_load_set(wv_repo *r, struct tkey **out, size_t *nout);

/* The public keys of the trust/ objects (*pks: wv__free). */
static int trust_pks(wv_repo *r, unsigned char (**pks)[32], size_t *n)
{
    struct tkey *v = NULL;
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
static int trust_publish(wv_repo *r)
{
    struct wv__err *err = &r->err;
    unsigned char(*pks)[32] = NULL;
    size_t n = 0;
    struct trec t;
    int rc = WV_OK;
    for (int attempt = 0; attempt < 20; attempt++) {
        uint64_t known = 0;
        wv__free(pks);
        pks = NULL;
        WV_TRY(trust_pks(r, &pks, &n));
        rc = trec_load(r, &t);
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

/* The trusted keys v[0..n) of an encrypted repository against its sealed
 * list and what this client has seen of it. */
static int trust_authenticate(wv_repo *r, const struct tkey *v, size_t n)
{
    struct wv__err *err = &r->err;
    struct trec t;
    uint64_t known = 0;
    unsigned char(*pks)[32] = NULL, d[32];
    int rc = WV_OK;
    bool allow = wv__allow_rollback();
    WV_TRY(trec_load(r, &t));
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
    struct trec ts, td;
    if (s->crypt == NULL || d->crypt == NULL)
        return WV_OK;
    int rc = trec_load(s, &ts);
    if (rc != WV_OK) {
        *err = s->err;
        return rc;
    }
    if (!ts.present)
        return WV_OK;
    rc = trec_load(d, &td);
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

int wv__crypt_repo_id(const wv_repo *r, char hex[33])
{
    unsigned char d[32];
    if (r->crypt == NULL ||
        wv__hmac(r->crypt->k_name, "wv-client-state", "", 0, d) != WV_OK)
        return WV_NOMEM;
    wv__hex(d, 16, hex);
    return WV_OK;
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
    if (nl > 100 || unhex_n(id, pt + nl + 1, 32) != 0)
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
    struct trec t;
    rc = trec_load(r, &t);
    if (rc != WV_OK)
        return rc;
    if (!t.present) {
        unsigned char(*pks)[32] = NULL;
        size_t n = 0;
        rc = trust_pks(r, &pks, &n);
        wv__free(pks);
        if (rc != WV_OK)
            return rc;
        if (n) {
            if ((rc = trust_publish(r)) != WV_OK ||
                (rc = trec_load(r, &t)) != WV_OK)
                return rc;
        }
    }
    put_le64(pt + nl + 1 + 32, counter);
    put_le64(pt + nl + 1 + 32 + 8, t.present ? t.version : 0);
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
                 is_hex((const char *)b + pl, 128),
             WV_FORMAT, "%s: not a weightvault secret signing key (wv "
                        "keygen writes one)",
             path);
    unhex_n((const char *)b + pl, k, 64);
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
        !is_hex(text + pl, 64) ||
        (n > pl + 64 && text[pl + 64] != ' ' && text[pl + 64] != '\n' &&
         text[pl + 64] != '\r'))
        return -1;
    char hex[65];
    memcpy(hex, text + pl, 64);
    hex[64] = '\0';
    return wv__unhex(hex, pk, 32);
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

/* ---- trusted keys ------------------------------------------------------- */


static int trust_name(const wv_repo *r, const unsigned char pk[32],
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

static int trust_parse(const char *text, size_t len, const char *what,
                       struct tkey *t, struct wv__err *err)
{
    int rc = WV_OK;
    char *k = NULL, *v = NULL;
    size_t kl, vl;
    uint64_t version = 0;
    bool have_key = false;
    struct wv__json j = {text, text, text + len, what, err};
    WV_CHECK(wv__json_eat(&j, '{'), WV_CORRUPT, "%s is not a JSON object",
             what);
    do {
        WV_TRY(wv__json_string(&j, &k, &kl));
        WV_TRY(wv__json_expect(&j, ':'));
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
                WV_CHECK(vl <= MAX_LABEL && strlen(v) == vl, WV_CORRUPT,
                         "%s: bad label", what);
                memcpy(t->label, v, vl + 1);
            }
            wv__free(v);
            v = NULL;
        } else {
            WV_TRY(wv__json_skip(&j));
        }
        wv__free(k);
        k = NULL;
    } while (wv__json_eat(&j, ','));
    WV_TRY(wv__json_expect(&j, '}'));
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
static int trust_load_set(wv_repo *r, struct tkey **out, size_t *nout)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char **keys = NULL, want[160];
    size_t nk = 0, n = 0;
    unsigned char *text = NULL;
    size_t len;
    struct tkey *v = NULL;
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
        WV_TRY(trust_parse((const char *)text, len, what, &v[n], err));
        WV_CHECK(trust_name(r, v[n].pk, want) == WV_OK, WV_NOMEM,
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
static int trust_load(wv_repo *r, struct tkey **out, size_t *nout)
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
    struct tkey *v = NULL;
    size_t nv = 0;
    *keys = NULL;
    *n = 0;
    int rc = trust_load(r, &v, &nv);
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
    unsigned char pk[32], (*trusted)[32] = NULL;
    size_t n = 0;
    if (required)
        *required = false;
    if (mf->has_sig)
        wv__hex(mf->sig_key, 32, signer);
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
    WV_TRY(wv__trust_keys(r, &trusted, &n));
    if (n == 0)
        goto out;
    if (required)
        *required = true;
    WV_CHECK(mf->has_sig, WV_AUTH_SIGNATURE,
             "%s: checkpoint %.12s is not signed, and the repository "
             "accepts only checkpoints signed by one of its %zu trusted "
             "keys",
             r->uri, mf->id, n);
    bool ok = false;
    for (size_t i = 0; i < n && !ok; i++)
        ok = memcmp(trusted[i], mf->sig_key, 32) == 0;
    WV_CHECK(ok, WV_AUTH_SIGNATURE,
             "%s: checkpoint %.12s is signed by key %.16s, which the "
             "repository does not trust",
             r->uri, mf->id, signer);
out:
    wv__free(trusted);
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

int wv__crypt_parse(int which, const char *text, size_t len,
                    struct wv__err *err)
{
    if (which == 0) {
        struct slot s;
        return slot_parse(text, len, "key slot", &s, err);
    }
    struct tkey t;
    memset(&t, 0, sizeof t);
    return trust_parse(text, len, "trusted key", &t, err);
}

/* ---- the public key-management calls ----------------------------------- */

int wv_repo_encrypted(const wv_repo *r)
{
    return r && r->crypt ? 1 : 0;
}

bool wv__repo_same_keys(const wv_repo *a, const wv_repo *b)
{
    if (a->crypt == NULL || b->crypt == NULL)
        return a->crypt == NULL && b->crypt == NULL;
    return sodium_memcmp(a->crypt->fp, b->crypt->fp, 32) == 0;
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

int wv_repo_key_list(wv_repo *r, wv_key_cb cb, void *arg)
{
    struct slots ss;
    int rc;
    memset(&ss, 0, sizeof ss);
    wv__repo_enter(r);
    wv__clearerr(&r->err);
    if ((rc = need_crypt(r)) == WV_OK)
        rc = slots_load(r, &ss);
    for (size_t i = 0; rc == WV_OK && i < ss.n; i++) {
        wv_key_slot k = {ss.v[i].id, ss.v[i].label,
                         ss.v[i].kdf == KDF_ARGON2ID ? "passphrase"
                                                     : "key file",
                         ss.v[i].created,
                         strcmp(ss.v[i].id, r->crypt->slot) == 0};
        rc = cb ? cb(arg, &k) : WV_OK;
    }
    slots_release(&ss);
    wv__repo_leave(r);
    return rc;
}

int wv_repo_key_add(wv_repo *r, const char *passphrase, const char *key_file,
                    const char *label, char id[17])
{
    struct wv__err *err = &r->err;
    struct wv__secret sec;
    struct slot sl;
    int rc = WV_OK;
    memset(&sec, 0, sizeof sec);
    if (id)
        id[0] = '\0';
    wv__repo_enter(r);
    wv__clearerr(err);
    WV_TRY(need_crypt(r));
    WV_CHECK(passphrase || key_file, WV_MISUSE,
             "key add: give the new passphrase or key file");
    WV_CHECK(label == NULL || strlen(label) <= MAX_LABEL, WV_MISUSE,
             "key label longer than %d bytes", MAX_LABEL);
    if (passphrase)
        WV_TRY(wv__secret_from_pass(passphrase, &sec, err));
    else
        WV_TRY(wv__secret_from_file(key_file, &sec, err));
    WV_TRY(slot_make(&sec, r->crypt->master, label ? label : "", &sl, err));
    WV_TRY(put_slot(r->store, &sl, err));
    if (id)
        memcpy(id, sl.id, 17);
out:
    wv__secret_wipe(&sec);
    wv__repo_leave(r);
    return rc;
}

/* The one item of names[0..n) that `id` (>= 4 hex digits) starts. */
static int pick(wv_repo *r, const char *what, const char *id, char **names,
                size_t n, size_t *at)
{
    size_t il = id ? strlen(id) : 0, hits = 0;
    if (il < 4 || il > 64 || !is_hex(id, il))
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

int wv_repo_key_remove(wv_repo *r, const char *id)
{
    struct wv__err *err = &r->err;
    struct slots ss;
    char **ids = NULL, key[32];
    size_t at = 0;
    int rc = WV_OK;
    memset(&ss, 0, sizeof ss);
    wv__repo_enter(r);
    wv__clearerr(err);
    WV_TRY(need_crypt(r));
    WV_TRY(slots_load(r, &ss));
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
    slots_release(&ss);
    wv__repo_leave(r);
    return rc;
}

int wv_repo_trust_add(wv_repo *r, const char *pub_file, const char *label,
                      char id[17])
{
    struct wv__err *err = &r->err;
    struct wv__buf b = {0};
    unsigned char pk[32];
    char key[160], hex[65];
    int rc = WV_OK;
    if (id)
        id[0] = '\0';
    wv__repo_enter(r);
    wv__clearerr(err);
    WV_CHECK(label == NULL || strlen(label) <= MAX_LABEL, WV_MISUSE,
             "label longer than %d bytes", MAX_LABEL);
    WV_TRY(wv__crypt_ready(err));
    WV_TRY(wv__sig_load_public(pub_file, pk, err));
    WV_CHECK(trust_name(r, pk, key) == WV_OK, WV_NOMEM, "out of memory");
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
        WV_TRY(trust_publish(r));
        WV_TRY(reseal_heads(r));
    }
    if (id)
        snprintf(id, 17, "%.16s", hex);
out:
    wv__buf_release(&b);
    wv__repo_leave(r);
    return rc;
}

int wv_repo_trust_list(wv_repo *r, wv_trust_cb cb, void *arg)
{
    struct tkey *v = NULL;
    size_t n = 0;
    wv__repo_enter(r);
    wv__clearerr(&r->err);
    int rc = trust_load(r, &v, &n);
    for (size_t i = 0; rc == WV_OK && i < n; i++) {
        char hex[65], kid[17];
        wv__hex(v[i].pk, 32, hex);
        snprintf(kid, sizeof kid, "%.16s", hex);
        wv_trusted_key k = {kid, hex, v[i].label};
        rc = cb ? cb(arg, &k) : WV_OK;
    }
    wv__free(v);
    wv__repo_leave(r);
    return rc;
}

int wv_repo_trust_remove(wv_repo *r, const char *id)
{
    struct wv__err *err = &r->err;
    struct tkey *v = NULL;
    size_t n = 0, at = 0;
    char **ids = NULL, *hexes = NULL;
    int rc = WV_OK;
    wv__repo_enter(r);
    wv__clearerr(err);
    WV_TRY(trust_load(r, &v, &n));
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
        WV_TRY(trust_publish(r));
        WV_TRY(reseal_heads(r));
    }
out:
    wv__free(ids);
    wv__free(hexes);
    wv__free(v);
    wv__repo_leave(r);
    return rc;
}
