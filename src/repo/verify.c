/*
 * verify.c -- the integrity check of a whole repository.
 *
 * Everything is read back and checked against what names it, and every
 * problem is reported (one line each, naming the object key and, where one
 * is affected, the checkpoint, its branch and the tensor), never only the
 * first:
 *   refs       hold a checkpoint id whose manifest exists and is sound;
 *   manifests  hash to their name and parse (manifest.c checks shapes,
 *              sizes and chunk counts);
 *   index      objects hash to their name and parse; every entry lies
 *              inside an existing pack and agrees with that pack's trailer;
 *   packs      start with the magic, end with a trailer that parses, whose
 *              entries lie inside the pack, and whose hash is the pack's
 *              name;
 *   chunks     every chunk of every stored checkpoint (not only those
 *              reachable from refs) is in an index, is read, decoded and
 *              re-hashed: each distinct chunk once, in pack order;
 *   signatures every signed manifest's signature verifies, and if the
 *              repository trusts keys, every checkpoint is signed by one.
 * In an encrypted repository every object is also unsealed, so one that
 * was altered (or sealed under another key) is reported as such.
 *
 * A shared lock is held throughout, as a commit holds one, so gc cannot
 * delete anything meanwhile. Commits may run: objects are listed in the
 * order a commit writes them in reverse (refs, manifests, index, packs), so
 * whatever a listed object names was written before the listing that looks
 * for it, and a commit in flight can never look like damage. Packs in no
 * index are not problems (a commit in flight, or garbage for gc).
 *
 * Memory grows with the number of chunks (ids and locations), never with
 * the data: one chunk is read at a time.
 */
#include "core.h"
#include "object.h"
#include "refs.h"
#include "repo.h"
#include "trust.h"

struct vman {
    char id[65];
    char *branch;
};

struct vref {
    unsigned char id[32];
    uint32_t m, t; /* manifest and tensor that use it */
    uint64_t raw;
};

struct ventry {
    struct wv__chunk_loc l;
    uint32_t idx; /* which index object */
};

struct vctx {
    wv_repo *r;
    wv_verify_cb cb;
    void *arg;
    wv_verify_stats st;
    struct vman *man;
    size_t n_man, cap_man;
    char **ids; /* c->man's ids, sorted */
    char **bad_man; /* ids of damaged manifests */
    size_t n_bad, cap_bad;
    struct vref *refs;
    size_t n_refs, cap_refs;
    struct ventry *ents;
    size_t n_ents, cap_ents;
    uint32_t cur_idx;
    unsigned char (*trusted)[32]; /* the repository's trusted keys */
    bool trust_bad;               /* ... could not be read (reported)  */
    size_t n_trusted;
};

static void problem(struct vctx *c, const char *object, const char *ckpt,
                    const char *branch, const char *tensor, const char *fmt,
                    ...) __attribute__((format(printf, 6, 7)));

static void problem(struct vctx *c, const char *object, const char *ckpt,
                    const char *branch, const char *tensor, const char *fmt,
                    ...)
{
    char raw[1024], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    wv_escape(msg, sizeof msg, raw, strlen(raw), 0); /* names in it */
    c->st.problems++;
    if (c->cb) {
        wv_verify_problem p = {object, ckpt, branch, tensor, msg};
        c->cb(c->arg, &p);
    }
}

/* A message from lower layers without the "<uri>: " they start with. */
static const char *bare(const wv_repo *r, const char *msg)
{
    size_t n = strlen(r->uri);
    if (strncmp(msg, r->uri, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- manifests ---------------------------------------------------------- */

static int check_manifest(struct vctx *c, const char *key)
{
    wv_repo *r = c->r;
    struct wv__err *err = &r->err;
    struct wv__manifest mf;
    unsigned char *text = NULL;
    size_t len;
    char hex[65], what[160];
    int rc = WV_OK;
    memset(&mf, 0, sizeof mf);
    const char *id = wv__manifest_key_hex(key);
    if (id == NULL) {
        problem(c, key, NULL, NULL, NULL,
                "%s: not a manifest name (expected manifests/<2 hex>/<64 "
                "hex>)",
                key);
        return WV_OK;
    }
    bool sealed_bad = false;
    rc = wv__object_get(r, "manifest", key, NULL, WV__MAX_JSON, &text,
                        &len);
    if (rc == WV_NOTFOUND) { /* superseded by a re-parented commit */
        wv__clearerr(err);
        return WV_OK;
    }
    if (rc == WV_NOMEM)
        return rc;
    if (wv_primary(rc) == WV_CORRUPT && r->crypt) {
        sealed_bad = true; /* reported below, as damaged */
        wv__clearerr(err);
        rc = WV_OK;
    } else if (rc != WV_OK) {
        problem(c, key, id, NULL, NULL, "%s: cannot be read: %s", key,
                bare(r, err->msg));
        wv__clearerr(err);
        return WV_OK;
    }
    if (sealed_bad) {
        problem(c, key, id, NULL, NULL,
                "%s: checkpoint %.12s is damaged or was altered (it does "
                "not authenticate under the repository's key)",
                key, id);
        if (wv__grow(&c->bad_man, &c->cap_bad, c->n_bad,
                     sizeof *c->bad_man, 64) != WV_OK ||
            (c->bad_man[c->n_bad] = wv__strdup(id)) == NULL)
            return wv__seterr(err, WV_NOMEM, "out of memory");
        c->n_bad++;
        return WV_OK;
    }
    WV_CHECK(wv__object_name(r, "manifest", text, len, hex) == WV_OK,
             WV_NOMEM, "out of memory");
    snprintf(what, sizeof what, "manifest %.12s", id);
    struct wv__err pe = {0};
    int prc = wv__manifest_parse((const char *)text, len, what, &mf, &pe);
    if (prc == WV_NOMEM) {
        rc = wv__seterr(err, WV_NOMEM, "out of memory");
        goto out;
    }
    if (strcmp(hex, id) != 0 || prc != WV_OK) {
        const char *b = prc == WV_OK && mf.branch ? mf.branch : NULL;
        if (strcmp(hex, id) != 0)
            problem(c, key, id, b, NULL,
                    "%s: checkpoint %.12s%s%s is damaged (its content does "
                    "not hash to its name)",
                    key, id, b ? " of branch " : "", b ? b : "");
        else
            problem(c, key, id, NULL, NULL, "%s: checkpoint %.12s does not "
                                            "parse: %s",
                    key, id, pe.msg);
        if (wv__grow(&c->bad_man, &c->cap_bad, c->n_bad,
                     sizeof *c->bad_man, 64) != WV_OK ||
            (c->bad_man[c->n_bad] = wv__strdup(id)) == NULL) {
            rc = wv__seterr(err, WV_NOMEM, "out of memory");
            goto out;
        }
        c->n_bad++;
        goto out;
    }
    /* Signatures: a bad one always, a missing or untrusted one when the
     * repository trusts keys (the checkpoint stays in the chunk check). */
    char signer[65] = "";
    if (mf.has_sig)
        wv__hex(mf.sig_key, 32, signer);
    if (mf.has_sig && !mf.sig_ok) {
        problem(c, key, id, mf.branch, NULL,
                "%s: checkpoint %.12s: its signature by key %.16s does not "
                "verify (altered after it was signed)",
                key, id, signer);
    } else if (c->n_trusted) {
        bool ok = false;
        for (size_t i = 0; mf.has_sig && i < c->n_trusted && !ok; i++)
            ok = memcmp(c->trusted[i], mf.sig_key, 32) == 0;
        if (!ok)
            problem(c, key, id, mf.branch, NULL,
                    mf.has_sig ? "%s: checkpoint %.12s is signed by key "
                                 "%.16s, which the repository does not "
                                 "trust"
                               : "%s: checkpoint %.12s is not signed, and "
                                 "the repository trusts only signed "
                                 "checkpoints%.0s",
                    key, id, signer);
    }
    WV_CHECK(wv__grow(&c->man, &c->cap_man, c->n_man,
                      sizeof *c->man, 64) == WV_OK,
             WV_NOMEM, "out of memory");
    struct vman *vm = &c->man[c->n_man];
    memcpy(vm->id, id, 65);
    vm->branch = wv__strdup(mf.branch ? mf.branch : "");
    WV_CHECK(vm->branch != NULL, WV_NOMEM, "out of memory");
    for (size_t t = 0; t < mf.n_tensors; t++) {
        const struct wv__mtensor *mt = &mf.tensors[t];
        for (size_t k = 0; k < mt->n_chunks; k++) {
            WV_CHECK(wv__grow(&c->refs, &c->cap_refs, c->n_refs,
                              sizeof *c->refs, 64) == WV_OK,
                     WV_NOMEM, "out of memory");
            struct vref *vr = &c->refs[c->n_refs++];
            memcpy(vr->id, mt->chunks[k], 32);
            vr->m = (uint32_t)c->n_man;
            vr->t = (uint32_t)t;
            /* a region's chunks cut the region's own bytes */
            vr->raw = wv__mtensor_chunk_len(mt, mf.chunk_size, k);
        }
    }
    c->n_man++;
    c->st.checkpoints++;
out:
    wv__free(text);
    wv__manifest_release(&mf);
    return rc;
}

/* ---- refs --------------------------------------------------------------- */

static int check_refs(struct vctx *c, char **keys, size_t n)
{
    wv_repo *r = c->r;
    for (size_t i = 0; i < n; i++) {
        char raw[WV__REF_RAW_MAX], buf[65], mkey[96];
        uint64_t sz;
        int rc = wv__ref_read(r, keys[i], NULL, raw, buf, NULL, 0);
        if (rc == WV_NOTFOUND) { /* deleted meanwhile */
            wv__clearerr(&r->err);
            continue;
        }
        if (rc == WV_NOMEM)
            return rc;
        if (wv_primary(rc) == WV_CORRUPT) {
            c->st.refs++;
            problem(c, keys[i], NULL, NULL, NULL, "%s", bare(r, r->err.msg));
            wv__clearerr(&r->err);
            continue;
        }
        if (rc != WV_OK) {
            problem(c, keys[i], NULL, NULL, NULL, "%s: cannot be read: %s",
                    keys[i], bare(r, r->err.msg));
            wv__clearerr(&r->err);
            continue;
        }
        c->st.refs++;
        const char *bp = buf;
        if (c->n_man &&
            bsearch(&bp, c->ids, c->n_man, sizeof *c->ids, cmp_strp))
            continue;
        if (c->n_bad && bsearch(&bp, c->bad_man, c->n_bad,
                                sizeof *c->bad_man, cmp_strp)) {
            problem(c, keys[i], buf, NULL, NULL,
                    "%s: points at damaged checkpoint %.12s", keys[i], buf);
            continue;
        }
        wv__manifest_key(buf, mkey);
        rc = wv__store_stat(r->store, mkey, &sz);
        if (rc == WV_NOTFOUND) {
            wv__clearerr(&r->err);
            problem(c, keys[i], buf, NULL, NULL,
                    "%s: dangling ref: checkpoint %.12s does not exist",
                    keys[i], buf);
        } else if (rc != WV_OK) {
            problem(c, mkey, buf, NULL, NULL, "%s: cannot be read: %s", mkey,
                    bare(r, r->err.msg));
            wv__clearerr(&r->err);
        } /* else committed after the manifests were listed */
    }
    return WV_OK;
}

/* ---- index objects ------------------------------------------------------ */

static int index_cb(void *arg, const struct wv__chunk_loc *l)
{
    struct vctx *c = arg;
    if (wv__grow(&c->ents, &c->cap_ents, c->n_ents, sizeof *c->ents, 64) !=
        WV_OK)
        return wv__seterr(&c->r->err, WV_NOMEM, "out of memory");
    c->ents[c->n_ents].l = *l;
    c->ents[c->n_ents].idx = c->cur_idx;
    c->n_ents++;
    return WV_OK;
}

static int check_index(struct vctx *c, const char *key, uint32_t idx)
{
    wv_repo *r = c->r;
    unsigned char *text = NULL, id[32];
    size_t len, first = c->n_ents;
    char hex[65];
    if (strncmp(key, "index/", 6) != 0 || wv__unhex(key + 6, id, 32) != 0) {
        problem(c, key, NULL, NULL, NULL,
                "%s: not an index object name (expected index/<64 hex>)",
                key);
        return WV_OK;
    }
    int rc = wv__object_get(r, "index", key, NULL, WV__MAX_JSON, &text,
                            &len);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(&r->err);
        return WV_OK;
    }
    if (rc == WV_NOMEM)
        return rc;
    if (wv_primary(rc) == WV_CORRUPT && r->crypt) {
        problem(c, key, NULL, NULL, NULL,
                "%s is damaged or was altered (it does not authenticate "
                "under the repository's key)",
                key);
        wv__clearerr(&r->err);
        return WV_OK;
    }
    if (rc != WV_OK) {
        problem(c, key, NULL, NULL, NULL, "%s: cannot be read: %s", key,
                bare(r, r->err.msg));
        wv__clearerr(&r->err);
        return WV_OK;
    }
    if (wv__object_name(r, "index", text, len, hex) != WV_OK) {
        wv__free(text);
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    }
    struct wv__err pe = {0};
    c->cur_idx = idx;
    rc = wv__index_parse((const char *)text, len, key, index_cb, c, &pe);
    wv__free(text);
    if (rc == WV_NOMEM)
        return rc;
    if (strcmp(hex, key + 6) != 0 || rc != WV_OK) {
        /* Its entries cannot be trusted: drop them. Chunks found only
         * there are reported below as missing from every index. */
        c->n_ents = first;
        if (strcmp(hex, key + 6) != 0)
            problem(c, key, NULL, NULL, NULL,
                    "%s: damaged (its content does not hash to its name)",
                    key);
        else
            problem(c, key, NULL, NULL, NULL, "%s", pe.msg);
        return WV_OK;
    }
    c->st.indexes++;
    return WV_OK;
}

/* ---- packs -------------------------------------------------------------- */

static int cmp_ent_place(const void *pa, const void *pb)
{
    const struct ventry *a = pa, *b = pb;
    int k = memcmp(a->l.pack, b->l.pack, 32);
    if (k)
        return k;
    if (a->idx != b->idx)
        return a->idx < b->idx ? -1 : 1;
    return memcmp(a->l.id, b->l.id, 32);
}

static int cmp_loc_id(const void *a, const void *b)
{
    return memcmp(((const struct wv__chunk_loc *)a)->id,
                  ((const struct wv__chunk_loc *)b)->id, 32);
}

/* Parse the pack's trailer into *tr (sorted by chunk id). Returns WV_OK,
 * WV_NOMEM, or WV_CORRUPT after reporting the problem. */
static int read_trailer(struct vctx *c, const char *key,
                        const unsigned char id[32], uint64_t size,
                        struct wv__chunk_loc **tr, size_t *ntr)
{
    wv_repo *r = c->r;
    unsigned char tail[12], head[8], *t = NULL;
    struct wv__err pe = {0};
    uint32_t n = 0;
    uint64_t tlen = 0;
    size_t got;
    int rc = WV_OK;
    *tr = NULL;
    *ntr = 0;
    if (size >= 8 + 12) {
        rc = wv__store_get(r->store, key, 0, head, 8, &got);
        if (rc == WV_OK)
            rc = wv__store_get(r->store, key, size - 12, tail, 12, &got);
        if (rc == WV_NOMEM)
            return rc;
        if (rc != WV_OK) {
            problem(c, key, NULL, NULL, NULL, "%s: cannot be read: %s", key,
                    bare(r, r->err.msg));
            wv__clearerr(&r->err);
            return WV_CORRUPT;
        }
    }
    if (wv__pack_frame(r, key, size, head, tail, &n, &tlen, &pe) != WV_OK) {
        problem(c, key, NULL, NULL, NULL, "%s", pe.msg);
        return WV_CORRUPT;
    }
    t = wv__malloc((size_t)tlen);
    *tr = wv__calloc(n ? n : 1, sizeof **tr);
    if (t == NULL || *tr == NULL) {
        wv__free(t);
        wv__free(*tr);
        *tr = NULL;
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    }
    rc = wv__store_get(r->store, key, size - tlen, t, (size_t)tlen, &got);
    if (rc != WV_OK) {
        wv__free(t);
        wv__free(*tr);
        *tr = NULL;
        if (rc == WV_NOMEM)
            return rc;
        problem(c, key, NULL, NULL, NULL, "%s: cannot be read: %s", key,
                bare(r, r->err.msg));
        wv__clearerr(&r->err);
        return WV_CORRUPT;
    }
    rc = wv__pack_entries(r, key, id, size, t, (size_t)tlen, n, *tr, &pe);
    wv__free(t);
    if (rc != WV_OK) {
        problem(c, key, NULL, NULL, NULL, "%s", pe.msg);
        wv__free(*tr);
        *tr = NULL;
        return WV_CORRUPT;
    }
    if (n)
        qsort(*tr, n, sizeof **tr, cmp_loc_id);
    *ntr = n;
    return WV_OK;
}

/* Compare the index entries ents[lo, hi) (all of pack `id`, grouped by
 * index object) with the pack's trailer. */
static void check_entries(struct vctx *c, char **ikeys, size_t lo,
                          size_t hi, const char *pkey,
                          const struct wv__chunk_loc *tr, size_t ntr,
                          bool pack_ok)
{
    size_t i = lo;
    while (i < hi) {
        size_t j = i, bad = 0;
        while (j < hi && c->ents[j].idx == c->ents[i].idx)
            j++;
        const char *ikey = ikeys[c->ents[i].idx];
        if (pack_ok) {
            for (size_t k = i; k < j; k++) {
                const struct wv__chunk_loc *e = &c->ents[k].l;
                const struct wv__chunk_loc *t =
                    ntr ? bsearch(e, tr, ntr, sizeof *tr, cmp_loc_id) : NULL;
                if (t == NULL || t->off != e->off ||
                    t->stored_len != e->stored_len ||
                    t->raw_len != e->raw_len || t->codec != e->codec ||
                    t->elem != e->elem)
                    bad++;
            }
            if (bad)
                problem(c, ikey, NULL, NULL, NULL,
                        "%s: %zu of its %zu entries for %s disagree with "
                        "that pack's trailer",
                        ikey, bad, j - i, pkey);
        } else if (pkey == NULL) {
            char h[65], k[96];
            wv__hex(c->ents[i].l.pack, 32, h);
            wv__pack_key(c->ents[i].l.pack, k);
            problem(c, ikey, NULL, NULL, NULL,
                    "%s: %zu entries point into missing pack %s", ikey,
                    j - i, k);
        }
        i = j;
    }
}

struct vpack {
    unsigned char id[32];
    size_t k; /* in the listing */
};

static int cmp_vpack(const void *a, const void *b)
{
    return memcmp(((const struct vpack *)a)->id,
                  ((const struct vpack *)b)->id, 32);
}

static int check_packs(struct vctx *c, char **ikeys)
{
    wv_repo *r = c->r;
    struct wv__objlist pl = {0};
    struct vpack *vp = NULL;
    size_t nvp = 0;
    int rc = wv__repo_list_sized(r, "packs/", &pl);
    if (rc != WV_OK)
        goto done;
    vp = wv__calloc(pl.n ? pl.n : 1, sizeof *vp);
    if (vp == NULL) {
        rc = WV_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < pl.n; i++) {
        if (wv__pack_key_id(pl.v[i].key, vp[nvp].id) != 0) {
            problem(c, pl.v[i].key, NULL, NULL, NULL,
                    "%s: not a pack name (expected packs/<2 hex>/<64 hex>)",
                    pl.v[i].key);
            continue;
        }
        vp[nvp++].k = i;
    }
    if (nvp)
        qsort(vp, nvp, sizeof *vp, cmp_vpack);
    if (c->n_ents)
        qsort(c->ents, c->n_ents, sizeof *c->ents, cmp_ent_place);
    /* Merge packs and entries, both sorted by pack id. */
    size_t e = 0;
    for (size_t p = 0; p <= nvp; p++) {
        /* Entries of packs that sort before this one do not exist. */
        while (e < c->n_ents &&
               (p == nvp || memcmp(c->ents[e].l.pack, vp[p].id, 32) < 0)) {
            size_t j = e;
            while (j < c->n_ents &&
                   memcmp(c->ents[j].l.pack, c->ents[e].l.pack, 32) == 0)
                j++;
            check_entries(c, ikeys, e, j, NULL, NULL, 0, false);
            e = j;
        }
        if (p == nvp)
            break;
        const char *key = pl.v[vp[p].k].key;
        struct wv__chunk_loc *tr = NULL;
        size_t ntr = 0;
        rc = read_trailer(c, key, vp[p].id, pl.v[vp[p].k].size, &tr, &ntr);
        if (rc == WV_NOMEM)
            goto done;
        c->st.packs++;
        size_t j = e;
        while (j < c->n_ents && memcmp(c->ents[j].l.pack, vp[p].id, 32) == 0)
            j++;
        check_entries(c, ikeys, e, j, key, tr, ntr, rc == WV_OK);
        rc = WV_OK;
        e = j;
        wv__free(tr);
    }
done:
    if (rc == WV_NOMEM)
        wv__seterr(&r->err, WV_NOMEM, "out of memory");
    wv__objlist_release(&pl);
    wv__free(vp);
    return rc;
}

/* ---- chunks ------------------------------------------------------------- */

struct uchunk {
    struct vref ref;  /* the first checkpoint and tensor using it */
    size_t n_ckpt;    /* distinct checkpoints using it            */
    const struct wv__chunk_loc *loc;
};

static int cmp_ref(const void *pa, const void *pb)
{
    const struct vref *a = pa, *b = pb;
    int k = memcmp(a->id, b->id, 32);
    if (k)
        return k;
    if (a->m != b->m)
        return a->m < b->m ? -1 : 1;
    return a->t < b->t ? -1 : a->t > b->t;
}

static int cmp_uchunk_place(const void *pa, const void *pb)
{
    const struct uchunk *a = pa, *b = pb;
    if (a->loc == NULL || b->loc == NULL)
        return (a->loc == NULL) - (b->loc == NULL);
    int k = memcmp(a->loc->pack, b->loc->pack, 32);
    if (k)
        return k;
    return a->loc->off < b->loc->off ? -1 : a->loc->off > b->loc->off;
}

/* Report a bad chunk with the first tensor and checkpoint that use it. */
static void chunk_problem(struct vctx *c, const char *object,
                          const struct uchunk *u, const char *what)
{
    wv_repo *r = c->r;
    struct wv__manifest mf;
    const struct vman *vm = &c->man[u->ref.m];
    char hex[65], more[64] = "";
    const char *tensor = "?";
    wv__hex(u->ref.id, 32, hex);
    if (wv__manifest_load(r, vm->id, &mf) == WV_OK &&
        u->ref.t < mf.n_tensors)
        tensor = mf.tensors[u->ref.t].name;
    wv__clearerr(&r->err);
    if (u->n_ckpt > 1)
        snprintf(more, sizeof more, "; %zu checkpoints use it",
                 u->n_ckpt);
    problem(c, object, vm->id, vm->branch, tensor,
            "%s: chunk %.12s %s (tensor '%.200s' of checkpoint %.12s, "
            "branch %s%s)",
            object, hex, what, tensor, vm->id,
            vm->branch[0] ? vm->branch : "?", more);
    wv__manifest_release(&mf);
}

static int check_chunks(struct vctx *c, struct wv__chunk_index *cidx)
{
    wv_repo *r = c->r;
    struct uchunk *u = NULL;
    size_t nu = 0;
    uint64_t max_raw = 0;
    unsigned char *buf = NULL, *pack_buf = NULL;
    struct wv__codec_ws *ws = NULL;
    size_t pack_cap = 0;
    struct wv__chunk_index saved;
    int rc = WV_OK;
    if (c->n_refs)
        qsort(c->refs, c->n_refs, sizeof *c->refs, cmp_ref);
    u = wv__calloc(c->n_refs ? c->n_refs : 1, sizeof *u);
    if (u == NULL)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < c->n_refs; i++) {
        const struct vref *v = &c->refs[i];
        if (nu && memcmp(u[nu - 1].ref.id, v->id, 32) == 0) {
            if (c->refs[i - 1].m != v->m)
                u[nu - 1].n_ckpt++;
            continue;
        }
        u[nu].ref = *v;
        u[nu].n_ckpt = 1;
        u[nu].loc = wv__cidx_get(cidx, v->id);
        if (v->raw > max_raw)
            max_raw = v->raw;
        nu++;
    }
    if (nu)
        qsort(u, nu, sizeof *u, cmp_uchunk_place);
    if (max_raw > ((uint64_t)1 << 30))
        max_raw = (uint64_t)1 << 30; /* manifest.c bounds chunk_size */
    buf = wv__malloc(max_raw ? (size_t)max_raw : 1);
    if (buf == NULL || wv__codec_ws_new((size_t)max_raw, &ws) != WV_OK) {
        rc = wv__seterr(&r->err, WV_NOMEM, "out of memory");
        goto out;
    }
    /* wv__repo_read_chunk looks chunks up in r->cidx: lend it ours. */
    saved = r->cidx;
    r->cidx = *cidx;
    for (size_t i = 0; i < nu; i++) {
        char pkey[96];
        if (u[i].loc == NULL) {
            wv__manifest_key(c->man[u[i].ref.m].id, pkey);
            chunk_problem(c, pkey, &u[i], "is missing from every index");
            continue;
        }
        wv__pack_key(u[i].loc->pack, pkey);
        if (u[i].ref.raw > max_raw) {
            chunk_problem(c, pkey, &u[i], "is larger than any chunk");
            continue;
        }
        int e = wv__repo_read_chunk(r, u[i].ref.id, buf,
                                    (size_t)u[i].ref.raw, ws,
                                    (size_t)max_raw, &pack_buf, &pack_cap);
        if (e == WV_NOMEM) {
            rc = e;
            break;
        }
        if (e != WV_OK) {
            char what[WV_ERRBUF_SIZE + 64];
            if (strstr(r->err.msg, "(a base of ") != NULL ||
                strstr(r->err.msg, "delta base") != NULL)
                /* its own bytes may be fine: a link of its chain is not */
                snprintf(what, sizeof what,
                         "is a delta whose chain of bases is broken (%s)",
                         bare(r, r->err.msg));
            else if (e == WV_CORRUPT_CHECKSUM)
                snprintf(what, sizeof what,
                         "is damaged (its bytes do not hash to its id)");
            else
                snprintf(what, sizeof what, "cannot be read (%s)",
                         bare(r, r->err.msg));
            wv__clearerr(&r->err);
            chunk_problem(c, pkey, &u[i], what);
            continue;
        }
        c->st.chunks++;
        c->st.bytes += u[i].ref.raw;
    }
    *cidx = r->cidx;
    r->cidx = saved;
out:
    wv__free(u);
    wv__free(buf);
    wv__codec_ws_free(ws);
    wv__free(pack_buf);
    return rc;
}

/* ---- the whole check ---------------------------------------------------- */

static int put_ent(void *arg, const struct wv__chunk_loc *l)
{
    return wv__cidx_put(arg, l);
}

static int repo_verify_locked(wv_repo *r, wv_verify_cb cb, void *arg,
                   wv_verify_stats *stats)
{
    struct wv__err *err = &r->err;
    struct vctx c;
    int rc = WV_OK;
    char **refs = NULL, **tags = NULL, **mkeys = NULL, **ikeys = NULL;
    size_t n_refs = 0, n_tags = 0, n_mkeys = 0, n_ikeys = 0;
    struct wv__chunk_index cidx = {0};

    memset(&c, 0, sizeof c);
    c.r = r;
    c.cb = cb;
    c.arg = arg;
    wv__clearerr(err);
    /* A reader without write access cannot write a lock: check all the
     * same, saying so (nothing then stops a gc from deleting what we are
     * about to read, which would show as missing objects). */
    rc = wv__repo_lock(r, false);
    if (wv_primary(rc) == WV_AUTH || wv_primary(rc) == WV_IO) {
        snprintf(c.st.unlocked, sizeof c.st.unlocked,
                 "could not write a lock object under locks/ (%.200s)",
                 bare(r, err->msg));
        wv__clearerr(err);
        rc = WV_OK;
    }
    WV_TRY(rc);
    rc = wv__trust_keys(r, &c.trusted, &c.n_trusted);
    if (rc == WV_NOMEM)
        goto out;
    if (rc != WV_OK) {
        problem(&c, "trust/", NULL, NULL, NULL,
                "trust/: the trusted keys cannot be read: %s",
                bare(r, err->msg));
        c.trust_bad = true;
        wv__clearerr(err);
        rc = WV_OK;
    }
    /* Listed in the reverse of the order a commit writes them. */
    WV_TRY(wv__repo_list(r, "refs/heads/", &refs, &n_refs));
    WV_TRY(wv__repo_list(r, "refs/tags/", &tags, &n_tags));
    WV_TRY(wv__repo_list(r, "manifests/", &mkeys, &n_mkeys));
    for (size_t i = 0; i < n_mkeys; i++)
        WV_TRY(check_manifest(&c, mkeys[i]));
    /* Sorted ids for the refs (c.man keeps its order: chunk references
     * point into it by position). */
    c.ids = wv__malloc((c.n_man ? c.n_man : 1) * sizeof *c.ids);
    WV_CHECK(c.ids != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < c.n_man; i++)
        c.ids[i] = c.man[i].id;
    if (c.n_man)
        qsort(c.ids, c.n_man, sizeof *c.ids, cmp_strp);
    if (c.n_bad)
        qsort(c.bad_man, c.n_bad, sizeof *c.bad_man, cmp_strp);
    WV_TRY(check_refs(&c, refs, n_refs));
    WV_TRY(check_refs(&c, tags, n_tags));
    /* The refs may say the trust list is newer than the one read first
     * (a client that never saw the repository): check it again. */
    if (r->crypt && !c.trust_bad) {
        unsigned char(*again)[32] = NULL;
        size_t n_again = 0;
        rc = wv__trust_keys(r, &again, &n_again);
        wv__free(again);
        if (rc == WV_NOMEM)
            goto out;
        if (rc != WV_OK)
            problem(&c, WV__TRUST_REF, NULL, NULL, NULL,
                    "the trusted keys cannot be read: %s",
                    bare(r, err->msg));
        wv__clearerr(err);
        rc = WV_OK;
    }
    WV_TRY(wv__repo_list(r, "index/", &ikeys, &n_ikeys));
    for (size_t i = 0; i < n_ikeys; i++)
        WV_TRY(check_index(&c, ikeys[i], (uint32_t)i));
    /* The lookup table, first location winning as in repo.c. */
    for (size_t i = 0; i < c.n_ents; i++)
        WV_CHECK(put_ent(&cidx, &c.ents[i].l) == WV_OK, WV_NOMEM,
                 "out of memory");
    WV_TRY(check_packs(&c, ikeys));
    WV_TRY(check_chunks(&c, &cidx));
out:
    wv__repo_unlock(r);
    for (size_t i = 0; i < c.n_man; i++)
        wv__free(c.man[i].branch);
    wv__free(c.man);
    wv__free(c.ids);
    wv__repo_list_free(c.bad_man, c.n_bad);
    wv__free(c.refs);
    wv__free(c.ents);
    wv__free(c.trusted);
    wv__cidx_release(&cidx);
    wv__repo_list_free(refs, n_refs);
    wv__repo_list_free(tags, n_tags);
    wv__repo_list_free(mkeys, n_mkeys);
    wv__repo_list_free(ikeys, n_ikeys);
    if (rc == WV_OK && c.st.problems)
        rc = wv__seterr(err, WV_CORRUPT, "%s: %llu problem%s found",
                        r->uri, (unsigned long long)c.st.problems,
                        c.st.problems == 1 ? "" : "s");
    if (stats)
        *stats = c.st;
    return rc;
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
int wv_repo_verify(wv_repo *r, wv_verify_cb cb, void *arg,
                   wv_verify_stats *stats)
{
    return WV__REPO_LOCKED(r, repo_verify_locked(r, cb, arg, stats));
}
