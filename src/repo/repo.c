/*
 * repo.c -- opening and creating repositories, their configuration, the
 * chunk index, locks and ref resolution.
 *
 * Locks follow restic's protocol, which works on any store with
 * read-after-write listing: a committer creates its shared lock object and
 * THEN lists the locks; gc creates its exclusive lock and THEN lists. Each
 * side backs off if it sees the other, so a commit and a gc can never both
 * proceed, whatever the interleaving.
 */
#include "core.h"
#include "crypt.h"
#include "json.h"
#include "object.h"
#include "refs.h"
#include "repo.h"

#include <signal.h>

/* ---- chunk index table -------------------------------------------------- */

static size_t slot_of(const unsigned char id[32], size_t cap)
{
    uint64_t h;
    memcpy(&h, id, 8); /* ids are SHA-256 outputs: already uniform */
    return (size_t)h & (cap - 1);
}

/* Chunks are never empty, so a slot with stored_len 0 is free. */
int wv__cidx_put(struct wv__chunk_index *x, const struct wv__chunk_loc *l)
{
    if ((x->n + 1) * 2 > x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 1024;
        struct wv__chunk_loc *s = wv__calloc(cap, sizeof *s);
        if (s == NULL)
            return WV_NOMEM;
        for (size_t i = 0; i < x->cap; i++) {
            if (x->slots[i].stored_len == 0)
                continue;
            size_t j = slot_of(x->slots[i].id, cap);
            while (s[j].stored_len != 0)
                j = (j + 1) & (cap - 1);
            s[j] = x->slots[i];
        }
        wv__free(x->slots);
        x->slots = s;
        x->cap = cap;
    }
    size_t j = slot_of(l->id, x->cap);
    while (x->slots[j].stored_len != 0) {
        if (memcmp(x->slots[j].id, l->id, 32) == 0)
            return WV_OK; /* first location wins */
        j = (j + 1) & (x->cap - 1);
    }
    x->slots[j] = *l;
    x->n++;
    return WV_OK;
}

const struct wv__chunk_loc *wv__cidx_get(const struct wv__chunk_index *x,
                                         const unsigned char id[32])
{
    if (x->cap == 0)
        return NULL;
    size_t j = slot_of(id, x->cap);
    while (x->slots[j].stored_len != 0) {
        if (memcmp(x->slots[j].id, id, 32) == 0)
            return &x->slots[j];
        j = (j + 1) & (x->cap - 1);
    }
    return NULL;
}

void wv__cidx_release(struct wv__chunk_index *x)
{
    wv__free(x->slots);
    memset(x, 0, sizeof *x);
}

/* ---- index objects ------------------------------------------------------ */

/* index/<id>: {"packs": {"<pack hex>": [["<chunk hex>", off, stored,
 * raw, codec, elem], ...], ...}}; a delta (codec 3) has one more member,
 * "<base chunk hex>". */
int wv__index_parse(const char *text, size_t len, const char *what,
                    int (*cb)(void *arg, const struct wv__chunk_loc *l),
                    void *arg, struct wv__err *err)
{
    int rc = WV_OK;
    char *k = NULL, *pk = NULL, *ck = NULL;
    size_t kl, pkl, ckl;
    struct wv__json j = {text, text, text + len, what, err};
    WV_CHECK(wv__json_eat(&j, '{'), WV_CORRUPT, "%s is not an object", what);
    struct wv__json_obj top = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&top, &k, &kl)) {
        if (strcmp(k, "packs") != 0) {
            WV_TRY(wv__json_skip(&j));
            continue;
        }
        WV_TRY(wv__json_expect(&j, '{'));
        struct wv__json_obj packs = WV__JSON_OBJ(&j);
        while (wv__json_obj_next(&packs, &pk, &pkl)) {
            struct wv__chunk_loc l;
            memset(&l, 0, sizeof l);
            WV_CHECK(pkl == 64 && wv__unhex(pk, l.pack, 32) == 0,
                     WV_CORRUPT, "%s: bad pack id", what);
            WV_TRY(wv__json_expect(&j, '['));
            if (!wv__json_eat(&j, ']')) {
                do {
                    uint64_t v[5];
                    WV_TRY(wv__json_expect(&j, '['));
                    WV_TRY(wv__json_string(&j, &ck, &ckl));
                    WV_CHECK(ckl == 64 && wv__unhex(ck, l.id, 32) == 0,
                             WV_CORRUPT, "%s: bad chunk id", what);
                    for (int i = 0; i < 5; i++) {
                        WV_TRY(wv__json_expect(&j, ','));
                        WV_TRY(wv__json_u64(&j, &v[i]));
                    }
                    memset(l.base, 0, sizeof l.base);
                    if (v[3] == WV__CODEC_DELTA) {
                        WV_TRY(wv__json_expect(&j, ','));
                        wv__free(ck);
                        ck = NULL;
                        WV_TRY(wv__json_string(&j, &ck, &ckl));
                        WV_CHECK(ckl == 64 && wv__unhex(ck, l.base, 32) == 0 &&
                                     memcmp(l.base, l.id, 32) != 0,
                                 WV_CORRUPT, "%s: bad delta base", what);
                    }
                    WV_TRY(wv__json_expect(&j, ']'));
                    WV_CHECK(v[3] <= WV__CODEC_DELTA && v[4] <= 16 &&
                                 v[1] > 0,
                             WV_CORRUPT, "%s: bad chunk entry", what);
                    l.off = v[0];
                    l.stored_len = v[1];
                    l.raw_len = v[2];
                    l.codec = (uint8_t)v[3];
                    l.elem = (uint8_t)v[4];
                    WV_TRY(cb(arg, &l));
                    wv__free(ck);
                    ck = NULL;
                } while (wv__json_eat(&j, ','));
                WV_TRY(wv__json_expect(&j, ']'));
            }
        }
        WV_TRY(packs.rc);
    }
    WV_TRY(top.rc);
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_CORRUPT, "%s: trailing bytes", what);
out:
    wv__free(k);
    wv__free(pk);
    wv__free(ck);
    return rc;
}

static int index_put_cb(void *arg, const struct wv__chunk_loc *l)
{
    wv_repo *r = arg;
    if (wv__cidx_put(&r->cidx, l) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    return WV_OK;
}

static int parse_index(wv_repo *r, const char *key, const char *text,
                       size_t len)
{
    char what[160];
    snprintf(what, sizeof what, "%s: %s", r->uri, key);
    return wv__index_parse(text, len, what, index_put_cb, r, &r->err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool key_in(char **sorted, size_t n, const char *key)
{
    return n && bsearch(&key, sorted, n, sizeof *sorted, cmp_str) != NULL;
}

static void forget_index(wv_repo *r)
{
    wv__repo_list_free(r->idx_keys, r->n_idx_keys);
    r->idx_keys = NULL;
    r->n_idx_keys = 0;
    wv__cidx_release(&r->cidx);
    r->cidx_loaded = false;
}

/* Load the index objects into r->cidx. A loaded table is refreshed, not
 * trusted: index objects are immutable, so if every object it was built
 * from still exists only the new ones are read; if one is gone, a gc has
 * replaced the indexes (and may have deleted or moved packs), so the table
 * is rebuilt. Without this a long-lived handle would deduplicate against
 * chunks a gc deleted meanwhile and commit manifests naming missing data.
 * An object that vanishes between the listing and the read means the same:
 * start again. */
int wv__repo_load_index(wv_repo *r)
{
    int rc = WV_OK;
    char **keys = NULL;
    size_t n = 0;
    unsigned char *text = NULL;
    size_t len;
    if (!r->cidx_loaded)
        forget_index(r);
    for (int attempt = 0;; attempt++) {
        bool vanished = false;
        rc = wv__repo_list(r, "index/", &keys, &n);
        if (rc != WV_OK)
            break;
        if (n)
            qsort(keys, n, sizeof *keys, cmp_str);
        for (size_t i = 0; r->cidx_loaded && i < r->n_idx_keys; i++)
            if (!key_in(keys, n, r->idx_keys[i]))
                forget_index(r); /* replaced by a gc: rebuild */
        for (size_t i = 0; rc == WV_OK && !vanished && i < n; i++) {
            if (key_in(r->idx_keys, r->n_idx_keys, keys[i]))
                continue;
            /* Checked against its name (and unsealed): a damaged index
             * is named here, not taken for missing or damaged chunks. */
            const char *name = strlen(keys[i]) == 6 + 64 ? keys[i] + 6
                                                         : NULL;
            rc = name ? wv__object_get(r, "index", keys[i], name,
                                       WV__MAX_JSON, &text, &len)
                      : wv__seterr(&r->err, WV_CORRUPT,
                                   "%s: %s is not an index object name",
                                   r->uri, keys[i]);
            if (rc == WV_NOTFOUND) { /* removed by a gc since the listing */
                wv__clearerr(&r->err);
                rc = WV_OK;
                vanished = true;
                continue;
            }
            if (rc == WV_OK)
                rc = parse_index(r, keys[i], (const char *)text, len);
            wv__free(text);
            text = NULL;
        }
        if (rc != WV_OK || (vanished && attempt < 8)) {
            wv__repo_list_free(keys, n);
            keys = NULL;
            forget_index(r);
            if (rc != WV_OK)
                break;
            continue;
        }
        /* The table now holds exactly what `keys` names. */
        wv__repo_list_free(r->idx_keys, r->n_idx_keys);
        r->idx_keys = keys;
        r->n_idx_keys = n;
        r->cidx_loaded = true;
        break;
    }
    return rc;
}

/* ---- config, init, open ------------------------------------------------- */

static int codec_from_name(const char *s)
{
    if (strcmp(s, "none") == 0)
        return WV__CODEC_NONE;
    if (strcmp(s, "zstd") == 0)
        return WV__CODEC_ZSTD;
    if (strcmp(s, "zstd-bg") == 0 || strcmp(s, "bg-zstd") == 0)
        return WV__CODEC_BG_ZSTD;
    return -1;
}

static const char *codec_config_name(int c)
{
    return c == WV__CODEC_NONE ? "none" : c == WV__CODEC_ZSTD ? "zstd"
                                                              : "zstd-bg";
}

/* The config: version 1 (plain), or version 2 (encrypted), whose object
 * holds only the version, the cipher and the sealed part; the sealed
 * part (inner) is a config of version 2 with the settings. For an outer
 * version-2 config *sealed receives the sealed text (wv__free it). */
static int parse_config(wv_repo *r, const char *text, size_t len,
                        bool inner, char **sealed, size_t *sealed_len)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char *k = NULL, *v = NULL, *enc = NULL;
    size_t kl, vl;
    uint64_t version = 0;
    char what[160];
    snprintf(what, sizeof what, "%s: config", r->uri);
    struct wv__json j = {text, text, text + len, what, err};
    r->cfg.compression = -1;
    WV_CHECK(wv__json_eat(&j, '{'), WV_CORRUPT, "%s is not an object", what);
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        uint64_t u;
        if (strcmp(k, "weightvault_repo") == 0) {
            WV_TRY(wv__json_u64(&j, &version));
        } else if (!inner && sealed && *sealed == NULL &&
                   strcmp(k, "sealed") == 0) {
            WV_TRY(wv__json_string(&j, sealed, sealed_len));
        } else if (!inner && enc == NULL &&
                   strcmp(k, "encryption") == 0) {
            WV_TRY(wv__json_string(&j, &enc, &vl));
        } else if (strcmp(k, "chunk_size") == 0) {
            WV_TRY(wv__json_u64(&j, &r->cfg.chunk_size));
        } else if (strcmp(k, "pack_size") == 0) {
            WV_TRY(wv__json_u64(&j, &r->cfg.pack_size));
        } else if (strcmp(k, "level") == 0) {
            WV_TRY(wv__json_u64(&j, &u));
            WV_CHECK(u <= 22, WV_CORRUPT, "%s: bad level", what);
            r->cfg.level = (int)u;
        } else if (strcmp(k, "delta_keyframe") == 0) {
            WV_TRY(wv__json_u64(&j, &u));
            WV_CHECK(u <= WV__CHAIN_MAX + 1, WV_CORRUPT,
                     "%s: bad delta_keyframe", what);
            r->cfg.delta_keyframe = (int)u;
        } else if (strcmp(k, "compression") == 0) {
            WV_TRY(wv__json_string(&j, &v, &vl));
            r->cfg.compression = codec_from_name(v);
            WV_CHECK(r->cfg.compression >= 0, WV_FORMAT,
                     "%s: unknown compression '%.40s'", what, v);
        } else {
            WV_TRY(wv__json_skip(&j));
        }
    }
    WV_TRY(it.rc);
    WV_CHECK(version >= WV__REPO_VERSION &&
                 version <= WV__REPO_VERSION_ENCRYPTED_DELTA,
             WV_FORMAT,
             "%s: repository format version %llu is not supported (this "
             "build reads versions %d to %d)",
             r->uri, (unsigned long long)version, WV__REPO_VERSION,
             WV__REPO_VERSION_ENCRYPTED_DELTA);
    bool encrypted = version == WV__REPO_VERSION_ENCRYPTED ||
                     version == WV__REPO_VERSION_ENCRYPTED_DELTA;
    WV_CHECK(!inner || (int)version == r->cfg.version, WV_CORRUPT,
             "%s: the sealed part has version %llu", what,
             (unsigned long long)version);
    r->cfg.version = (int)version;
    if (!WV__VERSION_HAS_DELTA(r->cfg.version))
        r->cfg.delta_keyframe = 0; /* no reader of the version knows them */
    if (encrypted && !inner) {
        WV_CHECK(enc && strcmp(enc, "xchacha20poly1305") == 0, WV_FORMAT,
                 "%s: unknown encryption '%.40s'", what,
                 enc ? enc : "(none)");
        WV_CHECK(sealed && *sealed, WV_CORRUPT,
                 "%s: encrypted, but without its sealed part", what);
        goto out; /* the settings are in the sealed part */
    }
    WV_CHECK(r->cfg.chunk_size >= 4096 && r->cfg.chunk_size % 64 == 0 &&
                 r->cfg.chunk_size <= ((uint64_t)1 << 30) &&
                 r->cfg.pack_size >= r->cfg.chunk_size &&
                 r->cfg.pack_size <= ((uint64_t)4 << 30) &&
                 r->cfg.compression >= 0,
             WV_CORRUPT, "%s: inconsistent chunk_size, pack_size or "
                         "compression",
             what);
out:
    wv__free(k);
    wv__free(v);
    wv__free(enc);
    return rc;
}

static void copy_errbuf(char *buf, size_t cap, const struct wv__err *e)
{
    if (buf && cap)
        snprintf(buf, cap, "%s", e->msg);
}

int wv__init_version(const wv_init_opts *o)
{
    /* delta_keyframe 0 (the default) or 1: every chunk whole (no deltas,
     * readable by older builds); K >= 2: delta chunks (experimental),
     * which need a compressing codec. */
    bool delta = o->delta_keyframe >= 2 &&
                 (o->compression == NULL ||
                  strcmp(o->compression, "none") != 0);
    if (o->encrypt)
        return delta ? WV__REPO_VERSION_ENCRYPTED_DELTA
                     : WV__REPO_VERSION_ENCRYPTED;
    return delta ? WV__REPO_VERSION_DELTA : WV__REPO_VERSION;
}

/* wv_init_opts before it grew the encryption fields. */
#define INIT_OPTS_V1 offsetof(wv_init_opts, encrypt)

int wv_repo_init(const char *uri, const wv_init_opts *given)
{
    wv_init_opts o = WV_INIT_OPTS_INIT, *opts = &o;
    struct wv__err e = {0}, *err = &e;
    struct wv__store *s = NULL;
    int rc = WV_OK;
    char cfg[512];
    /* An older (smaller) struct is taken as far as it goes; the fields it
     * lacks keep their defaults. */
    if (given) {
        WV_CHECK(given->struct_size >= INIT_OPTS_V1, WV_MISUSE,
                 "init options from an incompatible header");
        memcpy(&o, given, given->struct_size < sizeof o ? given->struct_size
                                                        : sizeof o);
    }
    int comp = codec_from_name(opts->compression ? opts->compression
                                                 : "zstd-bg");
    WV_CHECK(comp >= 0, WV_MISUSE,
             "%s: compression must be none, zstd or zstd-bg", uri);
    WV_CHECK(opts->level >= 1 && opts->level <= 19, WV_MISUSE,
             "%s: zstd level must be 1..19", uri);
    WV_CHECK(opts->delta_keyframe >= 0 &&
                 opts->delta_keyframe <= WV__CHAIN_MAX + 1,
             WV_MISUSE, "%s: delta keyframe interval must be 1..%d", uri,
             WV__CHAIN_MAX + 1);
    WV_CHECK(opts->chunk_size >= 4096 && opts->chunk_size % 64 == 0 &&
                 opts->chunk_size <= ((uint64_t)1 << 30),
             WV_MISUSE, "%s: chunk size must be a multiple of 64 from 4096 "
                        "to 1 GiB",
             uri);
    WV_CHECK(opts->pack_size >= opts->chunk_size &&
                 opts->pack_size <= ((uint64_t)4 << 30),
             WV_MISUSE, "%s: pack size must be at least the chunk size",
             uri);
    if (opts->encrypt) {
        /* No secret, no repository: before the store makes anything. */
        struct wv__secret sec;
        rc = wv__secret_get(uri, opts->passphrase, opts->key_file, &sec,
                            err);
        wv__secret_wipe(&sec);
        WV_TRY(rc);
    }
    WV_TRY(wv__store_open(uri, true, err, &s));
    uint64_t sz;
    rc = wv__store_stat(s, "config", &sz);
    WV_CHECK(rc == WV_NOTFOUND, rc == WV_OK ? WV_EXISTS : rc,
             "%s: a repository already exists here", uri);
    rc = WV_OK;
    int version = wv__init_version(opts);
    int n = snprintf(cfg, sizeof cfg,
                     "{\"weightvault_repo\": %d, \"chunk_size\": %llu, "
                     "\"pack_size\": %llu, \"compression\": \"%s\", "
                     "\"level\": %d",
                     version, (unsigned long long)opts->chunk_size,
                     (unsigned long long)opts->pack_size,
                     codec_config_name(comp), opts->level);
    if (WV__VERSION_HAS_DELTA(version))
        n += snprintf(cfg + n, sizeof cfg - (size_t)n,
                      ", \"delta_keyframe\": %d",
                      opts->delta_keyframe);
    n += snprintf(cfg + n, sizeof cfg - (size_t)n, "}\n");
    if (opts->encrypt)
        WV_TRY(wv__crypt_create(s, uri, cfg, (size_t)n, opts, err));
    else
        WV_TRY(wv__store_put(s, "config", cfg, (size_t)n, WV_PUT_IF_ABSENT));
out:
    wv__store_close(s);
    if (rc != WV_OK)
        copy_errbuf(opts->errbuf, opts->errbuf_size, err);
    return rc;
}

int wv_repo_open(const char *uri, char *errbuf, size_t errbuf_size,
                 wv_repo **out)
{
    wv_open_opts o = WV_OPEN_OPTS_INIT;
    o.errbuf = errbuf;
    o.errbuf_size = errbuf_size;
    return wv_repo_open_ex(uri, &o, out);
}

int wv_repo_open_ex(const char *uri, const wv_open_opts *opts,
                    wv_repo **out)
{
    static const wv_open_opts defaults = WV_OPEN_OPTS_INIT;
    int rc = WV_OK;
    wv_repo *r = NULL;
    unsigned char *text = NULL, *inner = NULL;
    char *sealed = NULL;
    size_t len, sealed_len = 0, inner_len = 0;
    struct wv__err *err;
    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    if (opts->struct_size < sizeof(wv_open_opts)) {
        if (opts->struct_size >= offsetof(wv_open_opts, errbuf_size) +
                                     sizeof(size_t))
            copy_errbuf(opts->errbuf, opts->errbuf_size,
                        &(struct wv__err){WV_MISUSE, "open options from an "
                                                     "incompatible header"});
        return WV_MISUSE;
    }
    r = wv__calloc(1, sizeof *r);
    if (r == NULL)
        return WV_NOMEM;
    err = &r->err;
    r->uri = wv__strdup(uri);
    WV_CHECK(r->uri != NULL, WV_NOMEM, "out of memory");
    rc = wv__store_open(r->uri, false, err, &r->store);
    if (rc == WV_NOTFOUND) {
        /* "DIR: No such file or directory": say what is missing and how
         * to make one. */
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        size_t ul = strlen(uri);
        const char *w = why;
        if (ul + 2 < sizeof why && strncmp(why, uri, ul) == 0 &&
            why[ul] == ':' && why[ul + 1] == ' ')
            w = why + ul + 2;
        wv__clearerr(err);
        WV_CHECK(0, WV_NOTFOUND, "%s: no repository here (%s); create one "
                                 "with 'wv init %s'",
                 uri, w, uri);
    }
    WV_TRY(rc);
    rc = wv__store_get_all(r->store, "config", 1 << 16, &text, &len);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(err);
        WV_CHECK(0, WV_NOTFOUND, "%s: not a weightvault repository (no "
                                 "config; create one with 'wv init')",
                 uri);
    }
    WV_TRY(rc);
    WV_TRY(parse_config(r, (const char *)text, len, false, &sealed,
                        &sealed_len));
    if (sealed) {
        WV_TRY(wv__crypt_unlock(r, sealed, sealed_len, opts->passphrase,
                                opts->key_file, &inner, &inner_len));
        WV_TRY(parse_config(r, (const char *)inner, inner_len, true, NULL,
                            NULL));
        WV_TRY(wv__state_open(r));
    }
    WV_TRY(wv__repo_async_init(r));
out:
    wv__free(text);
    wv__free(sealed);
    wv__free(inner);
    if (rc != WV_OK) {
        copy_errbuf(opts->errbuf, opts->errbuf_size, &r->err);
        wv_repo_close(r);
        r = NULL;
    }
    *out = r;
    return rc;
}

void wv_repo_close(wv_repo *r)
{
    if (r == NULL)
        return;
    wv__repo_async_release(r); /* waits for the pending async commits */
    wv__repo_unlock(r);
    wv__store_close(r->store);
    wv__cidx_release(&r->cidx);
    wv__pcache_release(&r->pcache);
    wv__repo_list_free(r->idx_keys, r->n_idx_keys);
    wv__crypt_free(r->crypt);
    wv__free(r->state_file);
    wv__free(r->uri);
    wv__free(r);
}

const char *wv_repo_errmsg(const wv_repo *r)
{
    return r ? r->err.msg : "no repository";
}

/* ---- locks -------------------------------------------------------------- */

struct lockscan {
    wv_repo *r;
    bool want_exclusive_only; /* a committer only fears exclusive locks */
    const char *self;
    char found[96];
};

static bool lock_is_stale(const char *text, int64_t mtime)
{
    char host[256] = "";
    long pid = 0;
    const char *h = strstr(text, "\"host\": \"");
    const char *p = strstr(text, "\"pid\": ");
    if (h) {
        h += 9;
        size_t n = strcspn(h, "\"");
        if (n < sizeof host) {
            memcpy(host, h, n);
            host[n] = '\0';
        }
    }
    if (p)
        pid = strtol(p + 7, NULL, 10);
    char me[256] = "";
    gethostname(me, sizeof me - 1);
    if (host[0] && strcmp(host, me) == 0 && pid > 0) {
        /* On this host the process table is the truth: a live owner's
         * lock is never stale, however long its commit or gc runs (age
         * alone would let a gc break the lock of a commit running longer
         * than WV__LOCK_STALE and delete the packs it is writing). */
        return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
    }
    return mtime > 0 && time(NULL) - mtime > WV__LOCK_STALE;
}

static int scan_lock(void *arg, const char *key, uint64_t size)
{
    struct lockscan *ls = arg;
    unsigned char *text = NULL;
    size_t len;
    (void)size;
    if (strcmp(key, ls->self) == 0)
        return WV_OK;
    int rc = wv__object_get(ls->r, "lock", key, NULL, 4096, &text, &len);
    if (wv_primary(rc) == WV_CORRUPT) {
        /* Sealed under another key, or damaged: it cannot be judged by
         * its owner, only by its age; until then it excludes everyone. */
        wv__clearerr(&ls->r->err);
        text = (unsigned char *)wv__strdup("{\"exclusive\": true}");
        if (text == NULL)
            return WV_NOMEM;
    } else if (rc != WV_OK) {
        return WV_OK; /* vanished or unreadable: not a live lock */
    }
    struct wv__store_mtime mt = {key, 0};
    wv__store_control(ls->r->store, WV_STORE_MTIME, &mt);
    bool excl = strstr((char *)text, "\"exclusive\": true") != NULL;
    if (lock_is_stale((char *)text, mt.mtime)) {
        wv__store_del(ls->r->store, key);
    } else if (excl || !ls->want_exclusive_only) {
        snprintf(ls->found, sizeof ls->found, "%s", key);
    }
    wv__free(text);
    return ls->found[0] ? 1 : WV_OK;
}

int wv__repo_lock(wv_repo *r, bool exclusive)
{
    unsigned char rnd[16];
    char hex[33], body[512], host[256] = "";
    int rc;
    if (r->lock_key[0])
        return WV_OK;
    struct wv__sha256 *h = wv__sha256_new();
    if (h == NULL)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long pid = (long)getpid();
    wv__sha256_update(h, &ts, sizeof ts);
    wv__sha256_update(h, &pid, sizeof pid);
    wv__sha256_update(h, r, sizeof r);
    unsigned char d[32];
    wv__sha256_final(h, d);
    wv__sha256_free(h);
    memcpy(rnd, d, sizeof rnd);
    wv__hex(rnd, sizeof rnd, hex);
    gethostname(host, sizeof host - 1);
    int n = snprintf(body, sizeof body,
                     "{\"exclusive\": %s, \"host\": \"%s\", \"pid\": %ld, "
                     "\"time\": %lld}\n",
                     exclusive ? "true" : "false", host, pid,
                     (long long)ts.tv_sec);
    snprintf(r->lock_key, sizeof r->lock_key, "locks/%s", hex);
    /* Visible to every other process at once, and never worth an fsync:
     * a lock matters only while this process runs (after a crash it is
     * stale, or gone). Two fsyncs less per commit, each a journal commit
     * on a busy disk. */
    rc = wv__object_put(r, "lock", r->lock_key, body, (size_t)n,
                        WV_PUT_EPHEMERAL);
    if (rc != WV_OK) {
        r->lock_key[0] = '\0';
        return rc;
    }
    struct lockscan ls = {r, !exclusive, r->lock_key, ""};
    rc = wv__store_list(r->store, "locks/", scan_lock, &ls);
    if (rc == 1 || ls.found[0]) {
        wv__repo_unlock(r);
        return wv__seterr(&r->err, WV_CONFLICT,
                          "%s: the repository is locked by %s (%s); retry "
                          "when it is done",
                          r->uri, ls.found,
                          exclusive ? "a commit or gc is running"
                                    : "gc is running");
    }
    if (rc != WV_OK)
        wv__repo_unlock(r);
    return rc;
}

void wv__repo_unlock(wv_repo *r)
{
    if (r->lock_key[0]) {
        wv__store_del(r->store, r->lock_key);
        r->lock_key[0] = '\0';
    }
}

/* ---- refs --------------------------------------------------------------- */

struct prefix_scan {
    const char *prefix;
    size_t plen;
    char match[65];
    int count;
};

static int scan_manifest(void *arg, const char *key, uint64_t size)
{
    struct prefix_scan *ps = arg;
    (void)size;
    const char *slash = strrchr(key, '/');
    const char *hex = slash ? slash + 1 : key;
    if (strlen(hex) == 64 && strncmp(hex, ps->prefix, ps->plen) == 0) {
        if (ps->count++ == 0)
            memcpy(ps->match, hex, 65);
    }
    return WV_OK;
}

/* Branch or tag `name` (dir "heads" or "tags") -> checkpoint id. */
static int read_ref(wv_repo *r, const char *dir, const char *name,
                    char out[65])
{
    char key[160], shown[160], raw[WV__REF_RAW_MAX];
    snprintf(shown, sizeof shown, "refs/%s/%s", dir, name);
    if (wv__ref_key(r, dir, name, key) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    return wv__ref_read(r, key, shown, raw, out, NULL, 0);
}

int wv__repo_resolve(wv_repo *r, const char *ref, char out[65])
{
    int rc;
    out[0] = '\0';
    if (ref == NULL || ref[0] == '\0' || strcmp(ref, "latest") == 0)
        ref = "main";
    if (wv__ref_name_ok(ref)) {
        rc = read_ref(r, "heads", ref, out);
        if (rc != WV_NOTFOUND)
            return rc;
        wv__clearerr(&r->err);
        rc = read_ref(r, "tags", ref, out);
        if (rc != WV_NOTFOUND)
            return rc;
        wv__clearerr(&r->err);
    }
    size_t n = strlen(ref);
    bool hex = n >= 6 && n <= 64;
    for (size_t i = 0; hex && i < n; i++)
        hex = (ref[i] >= '0' && ref[i] <= '9') || (ref[i] >= 'a' && ref[i] <= 'f');
    if (hex) {
        struct prefix_scan ps = {ref, n, "", 0};
        char pfx[16];
        snprintf(pfx, sizeof pfx, "manifests/%.2s/", ref);
        rc = wv__store_list(r->store, pfx, scan_manifest, &ps);
        if (rc != WV_OK)
            return rc;
        if (ps.count == 1) {
            memcpy(out, ps.match, 65);
            return WV_OK;
        }
        if (ps.count > 1)
            return wv__seterr(&r->err, WV_NOTFOUND,
                              "%s: '%s' matches %d checkpoints; give more "
                              "digits",
                              r->uri, ref, ps.count);
    }
    wv__clearerr(&r->err);
    return wv__seterr(&r->err, WV_NOTFOUND,
                      "%s: no branch, tag or checkpoint named '%s'", r->uri,
                      ref);
}

int wv_repo_resolve(wv_repo *r, const char *ref, char id[WV_ID_HEX])
{
    return WV__REPO_LOCKED(
        r, (wv__clearerr(&r->err), wv__repo_resolve(r, ref, id)));
}
