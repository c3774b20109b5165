/*
 * object.c -- the content-addressed object layer (docs/repo-format.md
 * sections 3-6 and 14): chunk ids, encoding and opening chunks, naming,
 * reading and writing whole objects, and pack trailers. Every plain
 * commit and checkout goes through here too; in an encrypted repository
 * the same calls seal and unseal through crypt.c (the domains and
 * associated data below bind each sealed thing to its name).
 *
 * Calls down only: crypt.c (sealing, keyed hashes), util.c, the store,
 * the codecs and core.
 */
#include "object.h"

#include "crypt.h"
#include "repo.h"

#include <openssl/crypto.h> /* CRYPTO_memcmp: constant-time compare */

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
    return wv__codec_bound(n) + WV__ID_LEN +
           (r->crypt ? WV__SEAL_OVERHEAD : 0);
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

/* A plain repository whose chunks may be delta bases writes zstd's
 * content checksum in its frames: a commit reads its bases back and
 * checks them by that (WV__CHECK_FRAME) instead of by SHA-256. A sealed
 * chunk's tag already does it. */
static bool frames_summed(const wv_repo *r)
{
    return r->crypt == NULL && WV__VERSION_HAS_DELTA(r->cfg.version);
}

int wv__chunk_encode(const wv_repo *r, const unsigned char id[32],
                      const void *p, size_t n, unsigned elem,
                      unsigned char *out, struct wv__codec_ws *scratch,
                      size_t *stored,
                      uint8_t *codec, uint8_t *elem_out,
                      struct wv__err *err)
{
    size_t off = r->crypt ? WV__SEAL_NONCE : 0, len = n;
    int c = WV__CODEC_NONE;
    const void *src = p;
    /* Uncompressed and sealed: straight from the source, no copy. */
    if (r->crypt == NULL || r->cfg.compression != WV__CODEC_NONE) {
        wv__codec_ws_checksum(scratch, frames_summed(r));
        int rc = wv__codec_encode(r->cfg.compression, r->cfg.level, elem, p,
                                  n, out + off, wv__codec_bound(n), scratch,
                                  &len, &c, err);
        if (rc != WV_OK)
            return rc;
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
    return WV_OK;
}

int wv__chunk_encode_delta(const wv_repo *r, const unsigned char id[32],
                           const void *p, size_t n, unsigned elem,
                           const unsigned char base_id[32],
                           const void *base, bool grouped, unsigned char *out,
                           struct wv__codec_ws *scratch, size_t *stored,
                           uint8_t *elem_out, struct wv__err *err)
{
    size_t off = r->crypt ? WV__SEAL_NONCE : 0, len = 0;
    int c = WV__CODEC_NONE;
    *stored = 0;
    *elem_out = 0;
    wv__codec_ws_checksum(scratch, frames_summed(r));
    int rc = (grouped ? wv__codec_encode_delta_grouped
                      : wv__codec_encode_delta)(
        r->cfg.level, elem, p, base, n, out + off + WV__ID_LEN,
        wv__codec_bound(n), scratch, &len, &c, err);
    if (rc != WV_OK || c != WV__CODEC_DELTA)
        return rc;
    memcpy(out + off, base_id, WV__ID_LEN);
    len += WV__ID_LEN;
    uint8_t e = (uint8_t)(elem > 1 ? elem : 0);
    if (r->crypt) {
        struct wv__ad ad;
        chunk_ad(&ad, id, n, WV__CODEC_DELTA, e);
        wv__seal(r->crypt->k_data, &ad, out + off, len, out);
        len += WV__SEAL_OVERHEAD;
    }
    *stored = len;
    *elem_out = e;
    return WV_OK;
}

int wv__chunk_open(const wv_repo *r, const struct wv__chunk_loc *l,
                   unsigned char *stored, void *out, size_t raw_len,
                   struct wv__codec_ws *scratch, int check_id,
                   struct wv__err *err)
{
    return wv__chunk_open_base(r, l, stored, out, raw_len, NULL, scratch,
                               check_id, err);
}

int wv__chunk_payload(const wv_repo *r, const struct wv__chunk_loc *l,
                      unsigned char *stored, unsigned char *none_out,
                      size_t raw_len, const unsigned char **payload,
                      size_t *plen, struct wv__err *err)
{
    char hex[65], pack[65];
    *payload = stored;
    *plen = (size_t)l->stored_len;
    if (r->crypt == NULL)
        return WV_OK;
    struct wv__ad ad;
    unsigned char *dst = l->codec == WV__CODEC_NONE && none_out != NULL
                             ? none_out
                             : stored + WV__SEAL_NONCE;
    wv__hex(l->id, 32, hex);
    wv__hex(l->pack, 32, pack);
    if (*plen < WV__SEAL_OVERHEAD ||
        (l->codec == WV__CODEC_NONE && *plen != raw_len + WV__SEAL_OVERHEAD))
        return wv__seterr(err, WV_CORRUPT,
                          "%s: chunk %.12s in pack %.12s has an "
                          "impossible stored length",
                          r->uri, hex, pack);
    chunk_ad(&ad, l->id, raw_len, l->codec, l->elem);
    if (wv__unseal(r->crypt->k_data, &ad, stored, *plen, dst) != 0)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: chunk %.12s in pack %.12s is damaged or "
                          "was altered (it does not authenticate)",
                          r->uri, hex, pack);
    *payload = dst;
    *plen -= WV__SEAL_OVERHEAD;
    return WV_OK;
}

int wv__chunk_open_base(const wv_repo *r, const struct wv__chunk_loc *l,
                        unsigned char *stored, void *out, size_t raw_len,
                        const void *base, struct wv__codec_ws *scratch,
                        int check_id, struct wv__err *err)
{
    char hex[65], pack[65];
    unsigned char d[32];
    const unsigned char *payload;
    size_t plen;
    int prc = wv__chunk_payload(r, l, stored, out, raw_len, &payload, &plen,
                                err);
    if (prc != WV_OK)
        return prc;
    /* the frame's checksum counts only where it stands in for the id */
    wv__codec_ws_check_sum(scratch,
                           check_id == WV__CHECK_FRAME && r->crypt == NULL);
    wv__hex(l->id, 32, hex);
    wv__hex(l->pack, 32, pack);
    if (l->codec == WV__CODEC_DELTA) {
        struct wv__err e = {0};
        char bhex[65];
        if (base == NULL)
            return wv__seterr(err, WV_MISUSE,
                              "%s: chunk %.12s is a delta, read without its "
                              "base",
                              r->uri, hex);
        wv__hex(l->base, 32, bhex);
        if (plen < WV__ID_LEN || memcmp(payload, l->base, WV__ID_LEN) != 0)
            return wv__seterr(err, WV_CORRUPT,
                              "%s: chunk %.12s in pack %.12s does not name "
                              "its base %.12s (damaged)",
                              r->uri, hex, pack, bhex);
        int rc = wv__codec_decode_delta(l->elem, payload + WV__ID_LEN,
                                        plen - WV__ID_LEN, base, out,
                                        raw_len, scratch, &e);
        if (rc == WV_NOMEM)
            return wv__seterr(err, rc, "out of memory");
        if (rc != WV_OK)
            return wv__seterr(err, WV_CORRUPT,
                              "%s: chunk %.12s in pack %.12s (delta against "
                              "%.12s): %s",
                              r->uri, hex, pack, bhex, e.msg);
    } else if (l->codec != WV__CODEC_NONE) {
        struct wv__err e = {0};
        int rc = wv__codec_decode(l->codec, l->elem, payload, plen, out,
                                  raw_len, scratch, &e);
        if (rc == WV_NOMEM)
            return wv__seterr(err, rc, "out of memory");
        if (rc != WV_OK)
            return wv__seterr(err, WV_CORRUPT,
                              "%s: chunk %.12s in pack %.12s: %s", r->uri,
                              hex, pack, e.msg);
    } else if (payload != out) {
        memcpy(out, payload, raw_len);
    }
    if (r->crypt && check_id != WV__CHECK_ID)
        return WV_OK; /* authenticated, bound to its id */
    if (check_id == WV__CHECK_FRAME && l->codec != WV__CODEC_NONE &&
        (l->codec == WV__CODEC_DELTA
             ? wv__codec_frame_summed(payload + WV__ID_LEN,
                                      plen - WV__ID_LEN)
             : wv__codec_frame_summed(payload, plen)))
        return WV_OK; /* decoded against its frame's checksum */
    if (wv__chunk_id(r, out, raw_len, d) != WV_OK)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    if (CRYPTO_memcmp(d, l->id, 32) != 0)
        return wv__seterr(err, WV_CORRUPT_CHECKSUM,
                          "%s: chunk %.12s in pack %.12s is damaged (its "
                          "bytes do not hash to its id)",
                          r->uri, hex, pack);
    return WV_OK;
}

/* Grow *b to n bytes (never shrinks): the scratch of the checks of
 * objects that just arrived (wv__object_check, wv__pack_check). */
static int scratch_grow(unsigned char **b, size_t *cap, size_t n)
{
    if (n <= *cap)
        return WV_OK;
    unsigned char *nb = wv__realloc(*b, n ? n : 1);
    if (nb == NULL)
        return WV_NOMEM;
    *b = nb;
    *cap = n;
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

/* The stored bytes b[0..*n) of object `key` (kind `kind`, shown as
 * `what`): unsealed in place when encrypted (the plaintext moved to b,
 * *n its length), and with `name` (64 hex) checked to be named so. */
static int object_open(const wv_repo *r, const char *kind, const char *key,
                       const char *name, const char *what, unsigned char *b,
                       size_t *n, struct wv__err *err)
{
    char hex[65];
    if (r->crypt) {
        struct wv__ad ad;
        object_ad(&ad, kind, key);
        if (*n < WV__SEAL_OVERHEAD ||
            wv__unseal(r->crypt->k_meta, &ad, b, *n, b + WV__SEAL_NONCE) !=
                0)
            return wv__seterr(err, WV_CORRUPT_CHECKSUM,
                              "%s: %s is damaged or was altered (it does "
                              "not authenticate under the repository's "
                              "key)",
                              r->uri, what);
        *n -= WV__SEAL_OVERHEAD;
        memmove(b, b + WV__SEAL_NONCE, *n);
    }
    if (name) {
        if (wv__object_name(r, kind, b, *n, hex) != WV_OK)
            return wv__seterr(err, WV_NOMEM, "out of memory");
        if (strcmp(hex, name) != 0)
            return wv__seterr(err, WV_CORRUPT_CHECKSUM,
                              "%s: %s is damaged (its content does not "
                              "hash to its name)",
                              r->uri, what);
    }
    return WV_OK;
}

int wv__object_get(wv_repo *r, const char *kind, const char *key,
                   const char *name, size_t max, unsigned char **out,
                   size_t *len)
{
    unsigned char *b = NULL;
    size_t n = 0;
    char what[120];
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
    rc = object_open(r, kind, key, name, what, b, &n, &r->err);
    if (rc != WV_OK) {
        wv__free(b);
        return rc;
    }
    b[n] = '\0';
    *out = b;
    *len = n;
    return WV_OK;
}

int wv__object_check(const wv_repo *r, const char *kind, const char *key,
                     const char *name, const unsigned char *p, size_t len,
                     struct wv__pack_scratch *s, struct wv__err *err)
{
    char what[120];
    snprintf(what, sizeof what, "%s %.12s", kind, name);
    /* unsealed in place: a copy (none for a plain object) */
    if (r->crypt) {
        if (scratch_grow(&s->in, &s->in_cap, len) != WV_OK)
            return wv__seterr(err, WV_NOMEM, "out of memory");
        if (len)
            memcpy(s->in, p, len);
        p = s->in;
    }
    /* (a plain object is only read) */
    return object_open(r, kind, key, name, what, (unsigned char *)p, &len,
                       err);
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

/* ---- checking a pack ---------------------------------------------------- */

int wv__pack_frame(const wv_repo *r, const char *key, uint64_t size,
                   const unsigned char head[8], const unsigned char end[12],
                   uint32_t *n, uint64_t *tlen, struct wv__err *err)
{
    *n = 0;
    *tlen = 0;
    if (size < 8 + 12)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: damaged pack (%llu bytes: too short for a "
                          "pack)",
                          key, (unsigned long long)size);
    *n = wv__le32(end);
    *tlen = wv__pack_tail_len(r, *n);
    if (memcmp(head, WV__PACK_MAGIC, 8) != 0 ||
        memcmp(end + 4, wv__pack_end(r), 8) != 0 || *tlen > size - 8)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: damaged pack (bad magic or trailer: not a "
                          "pack, or truncated)",
                          key);
    return WV_OK;
}

int wv__pack_entries(const wv_repo *r, const char *key,
                     const unsigned char id[32], uint64_t size,
                     unsigned char *tail, size_t tlen, uint32_t n,
                     struct wv__chunk_loc *ents, struct wv__err *err)
{
    unsigned char d[32];
    const unsigned char *e = NULL;
    wv__sha256_buf(tail, tlen, d);
    if (memcmp(d, id, 32) != 0)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: damaged pack (its trailer does not hash to "
                          "its name)",
                          key);
    if (wv__pack_tail_open(r, tail, tlen, n, &e) != 0)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: damaged pack (its trailer does not "
                          "authenticate under the repository's key)",
                          key);
    uint64_t data_end = size - tlen;
    for (uint32_t i = 0; i < n; i++, e += WV__PACK_ENTRY) {
        struct wv__chunk_loc *l = &ents[i];
        memset(l, 0, sizeof *l);
        memcpy(l->id, e, 32);
        memcpy(l->pack, id, 32);
        l->off = wv__le64(e + 32);
        l->stored_len = wv__le64(e + 40);
        l->raw_len = wv__le64(e + 48);
        l->codec = e[56];
        l->elem = e[57];
        if (l->off < 8 || l->stored_len == 0 || l->codec > WV__CODEC_DELTA ||
            l->elem > 16 || l->stored_len > data_end ||
            l->off > data_end - l->stored_len) {
            char h[65];
            wv__hex(l->id, 32, h);
            return wv__seterr(err, WV_CORRUPT,
                              "%s: damaged pack (trailer entry %u, chunk "
                              "%.12s, lies outside the pack or is invalid)",
                              key, i, h);
        }
    }
    return WV_OK;
}

void wv__pack_scratch_release(struct wv__pack_scratch *s)
{
    wv__codec_ws_free(s->ws);
    wv__free(s->in);
    wv__free(s->out);
    memset(s, 0, sizeof *s);
}

/* Chunk l of a pack just arrived, its stored bytes copied into `stored`
 * (overwritten), raw_len bytes of room at out: checked without its base
 * when it is a delta (docs/repo-format.md, "Copying between
 * repositories"). */
static int chunk_check(const wv_repo *r, const struct wv__chunk_loc *l,
                       unsigned char *stored, unsigned char *out,
                       struct wv__codec_ws *ws, struct wv__err *err)
{
    size_t raw = (size_t)l->raw_len;
    if (l->codec != WV__CODEC_DELTA)
        return wv__chunk_open(r, l, stored, out, raw, ws, false, err);
    const unsigned char *payload;
    size_t plen;
    char hex[65], pack[65];
    struct wv__err e = {0};
    int rc = wv__chunk_payload(r, l, stored, NULL, raw, &payload, &plen,
                               err);
    if (rc != WV_OK)
        return rc;
    wv__hex(l->id, 32, hex);
    wv__hex(l->pack, 32, pack);
    if (plen < WV__ID_LEN)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: chunk %.12s in pack %.12s is a delta too "
                          "short to name its base (damaged)",
                          r->uri, hex, pack);
    rc = wv__codec_unzstd(payload + WV__ID_LEN, plen - WV__ID_LEN, out, raw,
                          ws, &e);
    if (rc == WV_NOMEM)
        return wv__seterr(err, rc, "out of memory");
    if (rc != WV_OK)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: chunk %.12s in pack %.12s (a delta): %s",
                          r->uri, hex, pack, e.msg);
    return WV_OK;
}

int wv__pack_check(const wv_repo *r, const char *key,
                   const unsigned char *p, size_t len,
                   struct wv__pack_scratch *s, uint64_t *n_chunks,
                   struct wv__err *err)
{
    unsigned char id[32];
    struct wv__chunk_loc *ents = NULL;
    uint32_t n = 0;
    uint64_t tlen = 0;
    int rc = WV_OK;
    *n_chunks = 0;
    if (wv__pack_key_id(key, id) != 0)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: not a pack name (expected packs/<2 hex>/<64 "
                          "hex>)",
                          key);
    if (len < 8 + 12)
        return wv__pack_frame(r, key, len, p, p, &n, &tlen, err);
    WV_TRY(wv__pack_frame(r, key, len, p, p + len - 12, &n, &tlen, err));
    /* the tail is unsealed in place: a copy; n is bounded by the pack */
    WV_CHECK(scratch_grow(&s->in, &s->in_cap, (size_t)tlen) == WV_OK,
             WV_NOMEM, "out of memory");
    memcpy(s->in, p + len - tlen, (size_t)tlen);
    ents = wv__malloc((n ? n : 1) * sizeof *ents);
    WV_CHECK(ents != NULL, WV_NOMEM, "out of memory");
    WV_TRY(wv__pack_entries(r, key, id, len, s->in, (size_t)tlen, n, ents,
                            err));
    if (s->ws == NULL)
        WV_CHECK(wv__codec_ws_new(0, &s->ws) == WV_OK, WV_NOMEM,
                 "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        const struct wv__chunk_loc *l = &ents[i];
        const unsigned char *b = p + l->off;
        size_t sl = (size_t)l->stored_len;
        if (r->crypt == NULL && l->codec == WV__CODEC_NONE) {
            /* stored as is: hashed where it lies, no copy */
            unsigned char d[32];
            char hex[65], pack[65];
            wv__hex(l->id, 32, hex);
            wv__hex(l->pack, 32, pack);
            WV_CHECK(l->stored_len == l->raw_len, WV_CORRUPT,
                     "%s: chunk %.12s in pack %.12s has an impossible "
                     "stored length",
                     r->uri, hex, pack);
            wv__sha256_buf(b, sl, d);
            WV_CHECK(CRYPTO_memcmp(d, l->id, 32) == 0, WV_CORRUPT_CHECKSUM,
                     "%s: chunk %.12s in pack %.12s is damaged (its bytes "
                     "do not hash to its id)",
                     r->uri, hex, pack);
            continue;
        }
        /* manifest.c bounds chunk_size: larger is damage, and no
         * allocation follows a length nothing else checked */
        if (l->raw_len > ((uint64_t)1 << 30)) {
            char hex[65];
            wv__hex(l->id, 32, hex);
            WV_CHECK(0, WV_CORRUPT,
                     "%s: damaged pack (chunk %.12s claims %llu bytes, "
                     "more than any chunk)",
                     key, hex, (unsigned long long)l->raw_len);
        }
        size_t raw = (size_t)l->raw_len;
        WV_CHECK(scratch_grow(&s->out, &s->out_cap, raw) == WV_OK &&
                     wv__codec_ws_reserve(s->ws, raw) == WV_OK,
                 WV_NOMEM, "out of memory");
        /* Unsealing works in place, so a sealed chunk is checked from a
         * copy; a plain one is only read (wv__chunk_payload writes to
         * `stored` only to unseal), so from where it lies: the pack may
         * be a read-only mapping, and the copy was a second pass over
         * every compressed byte of a clone. */
        unsigned char *st = (unsigned char *)(uintptr_t)b;
        if (r->crypt != NULL) {
            WV_CHECK(scratch_grow(&s->in, &s->in_cap, sl) == WV_OK, WV_NOMEM,
                     "out of memory");
            memcpy(s->in, b, sl);
            st = s->in;
        }
        WV_TRY(chunk_check(r, l, st, s->out, s->ws, err));
    }
    *n_chunks = n;
out:
    wv__free(ents);
    return rc;
}
