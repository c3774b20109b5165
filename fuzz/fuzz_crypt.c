/*
 * fuzz_crypt.c -- libFuzzer harness for what an encrypted repository reads
 * back from a store it does not trust (src/repo/crypt.c, and the manifest
 * and index parsers behind it), with a fixed test key so that inputs
 * reproduce.
 *
 * The first byte picks what the rest is:
 *   0  a manifest's plaintext: sealed here under its keyed name, stored,
 *      then loaded (unsealed, name checked, parsed, signature checked);
 *      a manifest that loads must re-encode and re-parse identically;
 *   1  a stored manifest object as is (nonce || ciphertext || tag);
 *   2  an index object's plaintext, sealed here, then loaded into the
 *      chunk index; 3 a stored index object as is;
 *   4  a stored ref value (base64 text and what follows it); 5 a ref's
 *      plaintext (name NUL id [le64 counter le64 trust-list version]),
 *      sealed and encoded here with its newline;
 *   6  a pack's tail as stored; 7 a chunk's plaintext, encoded (codec
 *      and seal) and opened again, which must give it back, and then the
 *      same bytes taken as a stored chunk;
 *   8  a key slot (JSON in clear); 9 a trusted-key object's plaintext.
 * Any inconsistency abort()s; rejections are fine.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypt.h"
#include "object.h"
#include "refs.h"
#include "repo.h"
#include "trust.h"

static wv_repo *g_r;

static wv_repo *repo(void)
{
    static wv_repo r;
    static const unsigned char key[32] = "weightvault fuzz test key 0001!";
    if (g_r)
        return g_r;
    memset(&r, 0, sizeof r);
    r.uri = (char *)"mem://fuzz-crypt";
    r.cfg.chunk_size = 4096;
    r.cfg.pack_size = 16384;
    r.cfg.compression = WV__CODEC_BG_ZSTD;
    r.cfg.level = 1;
    /* No client state: every input is read as by a client that never
     * saw the repository (a directory that cannot be made). */
    setenv("WV_STATE_DIR", "/proc/wv-fuzz-no-client-state", 1);
    if (wv__store_open(r.uri, true, &r.err, &r.store) != WV_OK ||
        wv__crypt_from_key(key, &r.crypt) != WV_OK)
        abort();
    g_r = &r;
    return g_r;
}

static void forget_index(wv_repo *r)
{
    wv__cidx_release(&r->cidx);
    wv__repo_list_free(r->idx_keys, r->n_idx_keys);
    r->idx_keys = NULL;
    r->n_idx_keys = 0;
    r->cidx_loaded = false;
}

static void manifest_roundtrip(const struct wv__manifest *a)
{
    struct wv__buf e1 = {0}, e2 = {0};
    struct wv__manifest b;
    struct wv__err err = {0};
    if (wv__manifest_encode(a, &e1) != WV_OK)
        abort();
    if (wv__manifest_parse(e1.p, e1.len, "re-encoded", &b, &err) != WV_OK)
        abort();
    /* (Not sig_ok: encoding drops unknown members and may give back the
     * very bytes that were signed, so a signature that did not verify on
     * the stored manifest can verify on its re-encoding.) */
    if (wv__manifest_encode(&b, &e2) != WV_OK || e1.len != e2.len ||
        memcmp(e1.p, e2.p, e1.len) != 0 || a->n_tensors != b.n_tensors ||
        a->has_sig != b.has_sig)
        abort();
    wv__buf_release(&e1);
    wv__buf_release(&e2);
    wv__manifest_release(&b);
}

static void load_manifest(wv_repo *r, const char *name)
{
    struct wv__manifest mf;
    if (wv__manifest_load(r, name, &mf) == WV_OK) {
        manifest_roundtrip(&mf);
        wv__sig_policy(r, &mf, NULL, NULL);
        wv__manifest_release(&mf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wv_repo *r = repo();
    char name[65], key[160], raw[WV__REF_RAW_MAX], id[65], nm[128];
    if (size == 0 || size > (1u << 20))
        return 0;
    int mode = data[0] % 10;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    wv__clearerr(&r->err);
    switch (mode) {
    case 0:
        if (wv__object_name(r, "manifest", p, n, name) != WV_OK)
            break;
        wv__manifest_key(name, key);
        if (wv__object_put(r, "manifest", key, p, n, 0) == WV_OK)
            load_manifest(r, name);
        wv__store_del(r->store, key);
        break;
    case 1:
        memset(name, 'a', 64);
        name[64] = '\0';
        wv__manifest_key(name, key);
        if (wv__store_put(r->store, key, p, n, 0) == WV_OK)
            load_manifest(r, name);
        wv__store_del(r->store, key);
        break;
    case 2:
    case 3:
        if (mode == 2) {
            if (wv__object_name(r, "index", p, n, name) != WV_OK)
                break;
            snprintf(key, sizeof key, "index/%s", name);
            if (wv__object_put(r, "index", key, p, n, 0) != WV_OK)
                break;
        } else {
            snprintf(key, sizeof key, "index/%064d", 0);
            if (wv__store_put(r->store, key, p, n, 0) != WV_OK)
                break;
        }
        forget_index(r);
        wv__repo_load_index(r);
        forget_index(r);
        wv__store_del(r->store, key);
        break;
    case 4:
    case 5: {
        char val[WV__REF_RAW_MAX];
        if (wv__ref_key(r, "heads", "main", key) != WV_OK)
            break;
        if (mode == 4) {
            size_t k = n < sizeof val - 1 ? n : sizeof val - 1;
            memcpy(val, p, k);
            val[k] = '\0';
        } else {
            unsigned char ct[200 + WV__SEAL_OVERHEAD];
            struct wv__ad ad;
            size_t k = n < 200 ? n : 200;
            wv__ad_init(&ad, "wv-ref");
            wv__ad_str(&ad, key);
            wv__seal(r->crypt->k_meta, &ad, p, k, ct);
            wv__b64(ct, k + WV__SEAL_OVERHEAD, val);
            size_t vl = strlen(val);
            val[vl] = '\n';
            val[vl + 1] = '\0';
        }
        if (strlen(val) == 0)
            break;
        if (wv__store_ref_cas(r->store, key, NULL, val) == WV_OK) {
            if (wv__ref_read(r, key, NULL, raw, id, nm, sizeof nm) ==
                    WV_OK &&
                (strlen(id) != 64 || !wv__ref_name_ok(nm)))
                abort();
            wv__store_ref_cas(r->store, key, val, NULL);
        }
        break;
    }
    case 6: {
        unsigned char *t = malloc(n ? n : 1);
        const unsigned char *ents;
        memcpy(t, p, n);
        uint32_t cnt = n >= 12 ? wv__le32(p + n - 12) : 0;
        if (wv__pack_tail_open(r, t, n, cnt, &ents) == 0 &&
            (ents < t || ents + (size_t)cnt * WV__PACK_ENTRY > t + n))
            abort();
        free(t);
        break;
    }
    case 7: {
        size_t cs = (size_t)r->cfg.chunk_size, m = n < cs ? n : cs;
        unsigned char *st = malloc(wv__chunk_bound(r, cs));
        unsigned char *out = malloc(cs);
        struct wv__codec_ws *scr = NULL; /* codec workspace (codec.h) */
        struct wv__chunk_loc l;
        struct wv__err e = {0};
        size_t stored;
        memset(&l, 0, sizeof l);
        if (wv__codec_ws_new(cs, &scr) != WV_OK)
            abort();
        if (m && wv__chunk_id(r, p, m, l.id) == WV_OK) {
            if (wv__chunk_encode(r, l.id, p, m, 4, st, scr, &stored,
                                 &l.codec, &l.elem, &e) != WV_OK)
                abort(); /* the workspace holds the chunk */
            l.stored_len = stored;
            l.raw_len = m;
            if (wv__chunk_open(r, &l, st, out, m, scr, true, &e) != WV_OK ||
                memcmp(out, p, m) != 0)
                abort();
            /* The input itself as stored bytes of that chunk. */
            memcpy(st, p, m);
            l.stored_len = m;
            wv__chunk_open(r, &l, st, out, m, scr, false, &e);
        }
        free(st);
        free(out);
        wv__codec_ws_free(scr);
        break;
    }
    case 8:
    case 9: {
        struct wv__err e = {0};
        wv__crypt_parse(mode - 8, (const char *)p, n, &e);
        break;
    }
    }
    return 0;
}
