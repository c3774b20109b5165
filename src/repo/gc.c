/*
 * gc.c -- retention: prune (which checkpoints to keep) and gc (which data
 * to keep).
 *
 * prune deletes manifests only. Kept always: every branch head and tag
 * target, and any manifest it cannot read (never delete what cannot be
 * judged). Per branch (the one recorded in each manifest) it keeps the N
 * most recent, ordered by time, then by depth in the parent chain (a child
 * committed in the same second as its parent is newer), then by id; and the
 * K best by a numeric metadata value. Under the exclusive lock, so a commit
 * whose manifest is written but whose branch is not yet moved can never
 * see that manifest deleted under it.
 *
 * A delta chunk (codec 3) needs its base, which may be a chunk no
 * remaining manifest names (its checkpoint was pruned): step 2b keeps the
 * base of every live delta live too, through whole chains, and step 4
 * checks a repacked delta by decoding it against its base, read at its
 * place before the repack.
 *
 * gc, under the exclusive lock (no commit can be running: a commit takes
 * its shared lock and then lists the locks, gc takes its exclusive lock and
 * then lists; whichever comes second sees the other and backs off), one
 * gc_* function per step, run in order by repo_gc_locked:
 *   1. mark: every chunk referenced by any manifest is live, and every
 *      chunk of a part record of an unfinished multi-writer checkpoint
 *      younger than the pending timeout; older parts, and the parts of
 *      finished ones, are removed (parts.c). A manifest, part record or
 *      index object that cannot be read stops gc before anything changes,
 *      since what it references would otherwise be taken for garbage;
 *   2. choose one location per live chunk among the index entries whose
 *      pack exists (concurrent commits may have stored a chunk twice);
 *   3. per pack: no live chunk (or in no index: the leftovers of a killed
 *      commit) -> delete; dead bytes above repack_percent of its size ->
 *      repack; otherwise keep;
 *   4. repack: copy the live chunks of those packs, as stored, verified
 *      against their ids, into new packs, one pack buffer at a time (the
 *      repository is never held in memory);
 *   5. write ONE consolidated index object listing every live chunk at its
 *      (new) location, then a sync barrier makes new packs and index
 *      durable;
 *   6. check our lock still exists (nobody broke it as stale);
 *   7. delete the old index objects;
 *   8. delete the dead and repacked packs.
 * Why this order: until step 7 every old index still points at packs that
 * exist (nothing was deleted), and the new index points at packs that are
 * durable; so a crash before or during 7 leaves readers a valid location
 * for every chunk (old or new, both correct). After 7 no index names the
 * packs of step 8, so a crash during 8 leaves only unindexed packs, which
 * the next gc deletes as orphans. Power loss is covered to the extent the
 * store keeps deletions in order (the local backend does not fsync
 * directories after unlink: a resurrected old index would name a deleted
 * pack, which verify reports and the next gc cleans).
 *
 * Stale locks (their process is gone) are removed while the exclusive lock
 * is taken (repo.c). Step 9 asks the store to remove its own leftovers
 * (the local backend's temporary files of killed writers) untouched for
 * opts->tmp_age seconds (default an hour): no commit can be running under
 * our lock, but a writer on another host sharing the directory could be,
 * and an hour is far longer than any object write. A file whose writer
 * (the pid in its name) still runs on this host is never removed.
 */
#include "core.h"
#include "crypt.h"
#include "object.h"
#include "refs.h"
#include "repo.h"

#include <math.h>

/* "manifests/ab/<64 hex>" -> the hex, or NULL for any other key. */
const char *wv__manifest_key_hex(const char *key)
{
    unsigned char id[32];
    if (strncmp(key, "manifests/", 10) != 0 || strlen(key) != 10 + 3 + 64 ||
        key[12] != '/' || strncmp(key + 10, key + 13, 2) != 0 ||
        wv__unhex(key + 13, id, 32) != 0)
        return NULL;
    return key + 13;
}

/* "packs/ab/<64 hex>" -> the id; -1 for any other key. */
int wv__pack_key_id(const char *key, unsigned char id[32])
{
    if (strncmp(key, "packs/", 6) != 0 || strlen(key) != 6 + 3 + 64 ||
        key[8] != '/' || strncmp(key + 6, key + 9, 2) != 0)
        return -1;
    return wv__unhex(key + 9, id, 32);
}

/* ---- prune -------------------------------------------------------------- */

struct pitem {
    char id[65], parent[65];
    char *branch, *time, *step, *metric;
    bool readable, has_value, keep, considered;
    double value;
    long depth;
    char reason[200];
};

static void add_reason(struct pitem *it, const char *why)
{
    size_t l = strlen(it->reason), w = strlen(why);
    it->keep = true;
    if (l + 2 + w >= sizeof it->reason)
        return; /* enough reasons already */
    if (l) {
        memcpy(it->reason + l, ", ", 2);
        l += 2;
    }
    memcpy(it->reason + l, why, w + 1);
}

static int cmp_item_id(const void *a, const void *b)
{
    return strcmp(((const struct pitem *)a)->id,
                  ((const struct pitem *)b)->id);
}

static struct pitem *find_item(struct pitem *v, size_t n, const char *id)
{
    struct pitem key;
    memcpy(key.id, id, 65);
    return n ? bsearch(&key, v, n, sizeof *v, cmp_item_id) : NULL;
}

/* Newest first within a branch. */
static int cmp_recency(const struct pitem *a, const struct pitem *b)
{
    int c = strcmp(b->time ? b->time : "", a->time ? a->time : "");
    if (c)
        return c;
    if (a->depth != b->depth)
        return a->depth > b->depth ? -1 : 1;
    return strcmp(b->id, a->id);
}

static int cmp_order(const void *pa, const void *pb)
{
    const struct pitem *a = *(struct pitem *const *)pa;
    const struct pitem *b = *(struct pitem *const *)pb;
    if (a->readable != b->readable)
        return a->readable ? -1 : 1;
    int c = strcmp(a->branch ? a->branch : "", b->branch ? b->branch : "");
    return c ? c : cmp_recency(a, b);
}

/* Best first: `value` is negated in max mode, so lower is always better;
 * ties go to the newer checkpoint. */
static int cmp_best(const void *pa, const void *pb)
{
    const struct pitem *a = *(struct pitem *const *)pa;
    const struct pitem *b = *(struct pitem *const *)pb;
    if (a->value != b->value)
        return a->value < b->value ? -1 : 1;
    return cmp_recency(a, b);
}

static bool parse_number(const char *s, double *v)
{
    char *end;
    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    *v = strtod(s, &end);
    while (*end == ' ')
        end++;
    return *end == '\0' && errno == 0 && isfinite(*v);
}

/* Depth in the parent chain among the stored manifests, without recursion:
 * walk up to a known depth (or the end), then assign on the way down. */
static int compute_depths(struct pitem *v, size_t n)
{
    size_t *stack = wv__malloc((n ? n : 1) * sizeof *stack);
    if (stack == NULL)
        return WV_NOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t sp = 0, cur = i;
        long base = -1;
        if (!v[i].readable)
            continue;
        while (v[cur].depth < 0 && sp < n) {
            stack[sp++] = cur;
            struct pitem *p =
                v[cur].parent[0] ? find_item(v, n, v[cur].parent) : NULL;
            if (p == NULL || !p->readable)
                break;
            cur = (size_t)(p - v);
        }
        if (v[cur].depth >= 0)
            base = v[cur].depth;
        while (sp > 0)
            v[stack[--sp]].depth = ++base;
    }
    wv__free(stack);
    return WV_OK;
}

static void release_items(struct pitem *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wv__free(v[i].branch);
        wv__free(v[i].time);
        wv__free(v[i].step);
        wv__free(v[i].metric);
    }
    wv__free(v);
}

/* Mark the heads and tags under `prefix` as kept. */
static int keep_refs(wv_repo *r, const char *prefix, const char *what,
                     struct pitem *v, size_t n)
{
    char **keys = NULL;
    size_t nk = 0;
    int rc = wv__repo_list(r, prefix, &keys, &nk);
    for (size_t i = 0; rc == WV_OK && i < nk; i++) {
        char raw[WV__REF_RAW_MAX], id[65], name[128];
        int g = wv__ref_read(r, keys[i], NULL, raw, id, name, sizeof name);
        if (g == WV_NOTFOUND) {
            wv__clearerr(&r->err);
            continue;
        }
        /* A plain ref that holds no id protects nothing; a sealed one that
         * does not open might protect anything: stop. */
        if (wv_primary(g) == WV_CORRUPT && r->crypt == NULL) {
            wv__clearerr(&r->err);
            continue;
        }
        if (g != WV_OK) {
            rc = g;
            break;
        }
        struct pitem *it = find_item(v, n, id);
        if (it) {
            char why[160];
            snprintf(why, sizeof why, "%s %.100s", what, name);
            add_reason(it, why);
        }
    }
    wv__repo_list_free(keys, nk);
    return rc;
}

static int repo_prune_locked(wv_repo *r, const wv_prune_opts *opts, wv_prune_cb cb,
                  void *arg, wv_prune_stats *stats)
{
    static const wv_prune_opts defaults = WV_PRUNE_OPTS_INIT;
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char **keys = NULL;
    size_t nk = 0, n = 0;
    struct pitem *v = NULL;
    struct pitem **ord = NULL, **grp = NULL;
    struct wv__manifest mf;
    wv_prune_stats st = {0, 0};

    memset(&mf, 0, sizeof mf);
    wv__clearerr(err);
    if (opts == NULL)
        opts = &defaults;
    WV_CHECK(opts->struct_size >= sizeof(wv_prune_opts), WV_MISUSE,
             "prune options from an incompatible header");
    WV_CHECK(opts->keep_last >= 0 || opts->keep_best >= 0, WV_MISUSE,
             "prune needs a rule: keep_last and/or keep_best (otherwise "
             "only branch heads and tags would remain)");
    WV_CHECK(opts->keep_last >= -1 && opts->keep_best >= -1, WV_MISUSE,
             "prune: negative keep count");
    WV_CHECK(opts->keep_best < 0 || (opts->metric && opts->metric[0]),
             WV_MISUSE, "prune: keep_best needs a metric name");
    WV_CHECK(opts->mode == WV_PRUNE_MIN || opts->mode == WV_PRUNE_MAX,
             WV_MISUSE, "prune: mode must be min or max");
    if (!opts->dry_run)
        WV_TRY(wv__repo_lock(r, true));

    WV_TRY(wv__repo_list(r, "manifests/", &keys, &nk));
    v = wv__calloc(nk ? nk : 1, sizeof *v);
    WV_CHECK(v != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < nk; i++) {
        const char *hex = wv__manifest_key_hex(keys[i]);
        if (hex == NULL)
            continue; /* not a manifest: left alone */
        struct pitem *it = &v[n];
        memcpy(it->id, hex, 65);
        it->depth = -1;
        rc = wv__manifest_load(r, hex, &mf);
        if (rc == WV_NOTFOUND) {
            wv__clearerr(err);
            rc = WV_OK;
            continue;
        }
        if (wv_primary(rc) == WV_CORRUPT || rc == WV_FORMAT) {
            wv__clearerr(err);
            rc = WV_OK;
            add_reason(it, "unreadable manifest");
            n++;
            continue;
        }
        WV_TRY(rc);
        it->readable = true;
        memcpy(it->parent, mf.parent, 65);
        it->branch = wv__strdup(mf.branch ? mf.branch : "");
        it->time = wv__strdup(mf.time ? mf.time : "");
        WV_CHECK(it->branch && it->time, WV_NOMEM, "out of memory");
        for (size_t k = 0; k < mf.n_meta; k++) {
            char **dst = NULL;
            if (strcmp(mf.meta[k].key, "step") == 0)
                dst = &it->step;
            else if (opts->metric && strcmp(mf.meta[k].key, opts->metric) ==
                                         0)
                dst = &it->metric;
            if (dst && *dst == NULL) {
                *dst = wv__strdup(mf.meta[k].value);
                WV_CHECK(*dst != NULL, WV_NOMEM, "out of memory");
            }
        }
        it->has_value = parse_number(it->metric, &it->value);
        if (opts->mode == WV_PRUNE_MAX)
            it->value = -it->value;
        n++;
        wv__manifest_release(&mf);
    }
    if (n)
        qsort(v, n, sizeof *v, cmp_item_id);
    WV_CHECK(compute_depths(v, n) == WV_OK, WV_NOMEM, "out of memory");
    WV_TRY(keep_refs(r, "refs/heads/", "head of", v, n));
    WV_TRY(keep_refs(r, "refs/tags/", "tag", v, n));

    /* Per branch: newest first, then the rules. */
    ord = wv__calloc(n ? n : 1, sizeof *ord);
    grp = wv__calloc(n ? n : 1, sizeof *grp);
    WV_CHECK(ord && grp, WV_NOMEM, "out of memory");
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        v[i].considered = !v[i].readable || opts->branch == NULL ||
                          strcmp(v[i].branch, opts->branch) == 0;
        if (opts->branch && !v[i].readable)
            v[i].considered = false;
        if (v[i].considered)
            ord[m++] = &v[i];
    }
    if (m)
        qsort(ord, m, sizeof *ord, cmp_order);
    for (size_t i = 0; i < m;) {
        size_t j = i;
        if (!ord[i]->readable) {
            i++;
            continue;
        }
        while (j < m && ord[j]->readable &&
               strcmp(ord[j]->branch, ord[i]->branch) == 0)
            j++;
        const char *b = ord[i]->branch;
        char why[200];
        snprintf(why, sizeof why, "last %ld of %.100s", opts->keep_last, b);
        for (size_t k = i; opts->keep_last > 0 && k < j &&
                           k - i < (size_t)opts->keep_last;
             k++)
            add_reason(ord[k], why);
        size_t ng = 0;
        for (size_t k = i; k < j; k++)
            if (ord[k]->has_value)
                grp[ng++] = ord[k];
        if (ng)
            qsort(grp, ng, sizeof *grp, cmp_best);
        snprintf(why, sizeof why, "best %ld of %.80s by %.80s",
                 opts->keep_best, b, opts->metric ? opts->metric : "");
        for (size_t k = 0; opts->keep_best > 0 && k < ng &&
                           k < (size_t)opts->keep_best;
             k++)
            add_reason(grp[k], why);
        i = j;
    }

    /* Report every decision before deleting anything. */
    for (size_t i = 0; i < m; i++) {
        struct pitem *it = ord[i];
        wv_prune_decision d = {it->id, it->branch ? it->branch : "",
                               it->time ? it->time : "", it->step,
                               it->metric, it->keep, it->reason};
        if (it->keep)
            st.kept++;
        else
            st.removed++;
        if (cb && cb(arg, &d) != 0)
            WV_CHECK(0, WV_ERROR, "%s: prune cancelled; nothing was "
                                  "deleted",
                     r->uri);
    }
    if (!opts->dry_run) {
        for (size_t i = 0; i < m; i++) {
            char key[96];
            if (ord[i]->keep)
                continue;
            wv__manifest_key(ord[i]->id, key);
            rc = wv__store_del(r->store, key);
            if (rc == WV_NOTFOUND) {
                wv__clearerr(err);
                rc = WV_OK;
            }
            WV_TRY(rc);
        }
    }
out:
    wv__manifest_release(&mf);
    wv__repo_list_free(keys, nk);
    release_items(v, n);
    wv__free(ord);
    wv__free(grp);
    wv__repo_unlock(r);
    if (stats)
        *stats = rc == WV_OK ? st : (wv_prune_stats){0, 0};
    return rc;
}

/* ---- gc ----------------------------------------------------------------- */

struct locvec {
    struct wv__chunk_loc *v;
    size_t n, cap;
};

static int locvec_add(struct locvec *lv, const struct wv__chunk_loc *l)
{
    if (wv__grow(&lv->v, &lv->cap, lv->n, sizeof *lv->v, 256) != WV_OK)
        return WV_NOMEM;
    lv->v[lv->n++] = *l;
    return WV_OK;
}

struct gidx_ctx {
    struct locvec *lv;
    struct wv__err *err;
};

static int gc_index_cb(void *arg, const struct wv__chunk_loc *l)
{
    struct gidx_ctx *c = arg;
    if (locvec_add(c->lv, l) != WV_OK)
        return wv__seterr(c->err, WV_NOMEM, "out of memory");
    return WV_OK;
}

enum { FATE_KEEP, FATE_DELETE, FATE_REPACK };

struct gpack {
    unsigned char id[32];
    uint64_t size, live, n_live;
    int fate;
};

static int cmp_pack(const void *a, const void *b)
{
    return memcmp(((const struct gpack *)a)->id,
                  ((const struct gpack *)b)->id, 32);
}

static struct gpack *find_pack(struct gpack *v, size_t n,
                               const unsigned char id[32])
{
    struct gpack key;
    memcpy(key.id, id, 32);
    return n ? bsearch(&key, v, n, sizeof *v, cmp_pack) : NULL;
}

static int cmp_loc_id(const void *a, const void *b)
{
    return memcmp(((const struct wv__chunk_loc *)a)->id,
                  ((const struct wv__chunk_loc *)b)->id, 32);
}

static int cmp_loc_place(const void *pa, const void *pb)
{
    const struct wv__chunk_loc *a = pa, *b = pb;
    int c = memcmp(a->pack, b->pack, 32);
    if (c)
        return c;
    return a->off < b->off ? -1 : a->off > b->off;
}

/* The pack being filled by the repack. */
struct newpack {
    unsigned char *p;
    size_t len, cap;
    size_t *members;       /* indexes into chosen of its chunks      */
    size_t n_members, cap_members;
    struct locvec written; /* ids of packs written, for the deletes  */
    uint64_t bytes;
    unsigned char *tmp;    /* a sealed chunk's copy, to check it     */
    size_t tmp_cap;
};

static int newpack_flush(wv_repo *r, struct newpack *np,
                         struct wv__chunk_loc *chosen)
{
    struct wv__buf t = {0};
    unsigned char id[32];
    char key[96];
    int rc;
    if (np->n_members == 0)
        return WV_OK;
    /* The trailer (sealed in an encrypted repository): object.c. */
    struct wv__chunk_loc *ents = wv__malloc(np->n_members * sizeof *ents);
    if (ents == NULL)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < np->n_members; i++)
        ents[i] = chosen[np->members[i]];
    rc = wv__pack_tail(r, ents, np->n_members, &t);
    wv__free(ents);
    if (rc != WV_OK || t.oom || np->len + t.len > np->cap) {
        void *nb = t.oom || rc != WV_OK
                       ? NULL
                       : wv__realloc(np->p, np->len + t.len);
        if (nb == NULL) {
            wv__buf_release(&t);
            return wv__seterr(&r->err, WV_NOMEM, "out of memory");
        }
        np->p = nb;
        np->cap = np->len + t.len;
    }
    wv__sha256_buf(t.p, t.len, id);
    memcpy(np->p + np->len, t.p, t.len);
    wv__pack_key(id, key);
    rc = wv__store_put(r->store, key, np->p, np->len + t.len,
                       WV_PUT_IF_ABSENT | WV_PUT_NOSYNC);
    if (rc == WV_OK) {
        struct wv__chunk_loc w;
        memset(&w, 0, sizeof w);
        memcpy(w.pack, id, 32);
        w.stored_len = np->len + t.len;
        np->bytes += w.stored_len;
        for (size_t i = 0; i < np->n_members; i++)
            memcpy(chosen[np->members[i]].pack, id, 32);
        if (locvec_add(&np->written, &w) != WV_OK)
            rc = wv__seterr(&r->err, WV_NOMEM, "out of memory");
    }
    wv__buf_release(&t);
    np->len = 0;
    np->n_members = 0;
    return rc;
}

/* Read one stored chunk, check it decodes to its id, and append it as
 * stored to the new pack. */
static int repack_chunk(wv_repo *r, struct newpack *np,
                        struct wv__chunk_loc *chosen, size_t ci,
                        unsigned char **raw, size_t *raw_cap,
                        struct wv__codec_ws **ws, struct wv__chain *chain)
{
    struct wv__chunk_loc *l = &chosen[ci];
    char key[96], hex[65];
    size_t got;
    int rc;
    unsigned char **tmp = &np->tmp;
    size_t *tmp_cap = &np->tmp_cap;
    wv__hex(l->id, 32, hex);
    wv__pack_key(l->pack, key);
    if (l->stored_len > ((uint64_t)1 << 31) ||
        l->raw_len > ((uint64_t)1 << 30) ||
        (l->codec == WV__CODEC_NONE &&
         l->stored_len != l->raw_len + (r->crypt ? WV__SEAL_OVERHEAD : 0)))
        return wv__seterr(&r->err, WV_CORRUPT,
                          "%s: gc stopped, nothing deleted: the index entry "
                          "of chunk %.12s in %s is implausible; run 'wv "
                          "verify'",
                          r->uri, hex, key);
    size_t stored = (size_t)l->stored_len, rawn = (size_t)l->raw_len;
    if (np->len == 0) {
        memcpy(np->p, WV__PACK_MAGIC, 8);
        np->len = 8;
    }
    if (np->len + stored > np->cap) {
        void *nb = wv__realloc(np->p, np->len + stored);
        if (nb == NULL)
            return wv__seterr(&r->err, WV_NOMEM, "out of memory");
        np->p = nb;
        np->cap = np->len + stored;
    }
    if (*raw_cap < rawn) {
        void *a = wv__realloc(*raw, rawn);
        if (a)
            *raw = a;
        if (a == NULL || (*ws ? wv__codec_ws_reserve(*ws, rawn)
                              : wv__codec_ws_new(rawn, ws)) != WV_OK)
            return wv__seterr(&r->err, WV_NOMEM, "out of memory");
        *raw_cap = rawn;
    }
    unsigned char *dst = np->p + np->len;
    rc = wv__store_get(r->store, key, l->off, dst, stored, &got);
    if (rc == WV_NOTFOUND || rc == WV_IO_SHORT_READ) {
        wv__clearerr(&r->err);
        return wv__seterr(&r->err, WV_CORRUPT,
                          "%s: gc stopped, nothing deleted: chunk %.12s: "
                          "%s is %s; run 'wv verify'",
                          r->uri, hex, key,
                          rc == WV_NOTFOUND ? "missing" : "truncated");
    }
    if (rc != WV_OK)
        return rc;
    /* Copied as stored; checked on a copy (unsealing works in place). */
    unsigned char *src = dst;
    if (r->crypt) {
        if (*tmp_cap < stored) {
            void *t = wv__realloc(*tmp, stored);
            if (t == NULL)
                return wv__seterr(&r->err, WV_NOMEM, "out of memory");
            *tmp = t;
            *tmp_cap = stored;
        }
        memcpy(*tmp, dst, stored);
        src = *tmp;
    }
    struct wv__err e = {0};
    const unsigned char *base = NULL;
    rc = l->codec == WV__CODEC_DELTA
             ? wv__chain_base(chain, l, *ws, &base, &e)
             : WV_OK;
    if (rc == WV_OK)
        rc = wv__chunk_open_base(r, l, src,
                                 r->crypt == NULL &&
                                         l->codec == WV__CODEC_NONE
                                     ? dst
                                     : *raw,
                                 rawn, base, *ws, true, &e);
    if (rc == WV_NOMEM)
        return wv__seterr(&r->err, rc, "out of memory");
    if (rc != WV_OK) {
        size_t ul = strlen(r->uri);
        const char *m = strncmp(e.msg, r->uri, ul) == 0 && e.msg[ul] == ':'
                            ? e.msg + ul + 2
                            : e.msg;
        return wv__seterr(&r->err, rc,
                          "%s: gc stopped, nothing deleted: %s; run 'wv "
                          "verify'",
                          r->uri, m);
    }
    if (np->n_members == np->cap_members) {
        size_t cap = np->cap_members ? np->cap_members * 2 : 64;
        void *nm = wv__realloc(np->members, cap * sizeof *np->members);
        if (nm == NULL)
            return wv__seterr(&r->err, WV_NOMEM, "out of memory");
        np->members = nm;
        np->cap_members = cap;
    }
    np->members[np->n_members++] = ci;
    l->off = np->len;
    np->len += stored;
    return WV_OK;
}

/* The consolidated index, in commit.c's format, of `chosen` sorted by
 * place. */
static int encode_index(const struct locvec *c, struct wv__buf *b)
{
    char hex[65];
    wv__buf_adds(b, "{\"packs\": {");
    for (size_t i = 0; i < c->n; i++) {
        const struct wv__chunk_loc *l = &c->v[i];
        bool first = i == 0 || memcmp(c->v[i - 1].pack, l->pack, 32) != 0;
        if (first) {
            wv__hex(l->pack, 32, hex);
            wv__buf_addf(b, "%s\n \"%s\": [", i ? "]," : "", hex);
        }
        wv__hex(l->id, 32, hex);
        wv__buf_addf(b, "%s\n  [\"%s\", %llu, %llu, %llu, %u, %u",
                     first ? "" : ",", hex, (unsigned long long)l->off,
                     (unsigned long long)l->stored_len,
                     (unsigned long long)l->raw_len, l->codec, l->elem);
        if (l->codec == WV__CODEC_DELTA) {
            wv__hex(l->base, 32, hex);
            wv__buf_addf(b, ", \"%s\"", hex);
        }
        wv__buf_adds(b, "]");
    }
    wv__buf_adds(b, c->n ? "]}}\n" : "}}\n");
    return b->oom ? WV_NOMEM : WV_OK;
}

static bool key_listed(char **keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], key) == 0)
            return true;
    return false;
}

static bool obj_listed(const struct wv__objlist *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].key, key) == 0)
            return true;
    return false;
}

/* ---- gc, phase by phase (the numbers of the opening comment) ------------
 * The phases share one struct gc; each frees what only it uses, and
 * gc_release frees the rest. A phase returns its status, with the message
 * in r->err; the first failure stops gc (nothing after it runs). */
struct gc {
    wv_repo *r;
    const wv_gc_opts *opts;
    wv_gc_stats st;
    struct wv__objlist ik;        /* the index objects (2, 5, 7) */
    struct wv__chunk_index live;  /* chunks some manifest names (1) */
    struct locvec entries;        /* every index entry (2) */
    struct locvec chosen;         /* one location per live chunk (2b) */
    struct gpack *packs;          /* sorted by id (2), with fates (3) */
    size_t n_packs;
    struct newpack np;            /* the repack's packs (4) */
    struct wv__buf ib;            /* the consolidated index (5) */
    char ikey[96];                /* its key */
    bool index_same;  /* it is the only index already */
    bool index_empty; /* no live chunk: no index at all */
    uint32_t pending_timeout; /* of multi-writer parts (0: default) */
};

/* Take the exclusive lock, counting the stale locks it removed. */
static int gc_lock(struct gc *g)
{
    wv_repo *r = g->r;
    char **lk_before = NULL, **lk_after = NULL;
    size_t n_before = 0, n_after = 0;
    int rc = WV_OK;
    WV_TRY(wv__repo_list(r, "locks/", &lk_before, &n_before));
    WV_TRY(wv__repo_lock(r, true));
    WV_TRY(wv__repo_list(r, "locks/", &lk_after, &n_after));
    for (size_t i = 0; i < n_before; i++)
        if (!key_listed(lk_after, n_after, lk_before[i]))
            g->st.locks_removed++;
out:
    wv__repo_list_free(lk_before, n_before);
    wv__repo_list_free(lk_after, n_after);
    return rc;
}

/* gc could not read what decides what lives (status rc, its message in
 * r->err): nothing is deleted yet; say so and what to run. */
static int gc_stopped(wv_repo *r, int rc)
{
    char msg[WV_ERRBUF_SIZE];
    snprintf(msg, sizeof msg, "%s", r->err.msg);
    wv__clearerr(&r->err);
    return wv__seterr(&r->err, rc,
                      "gc stopped, nothing deleted: %s; run 'wv verify'",
                      msg);
}

/* 1. Mark: every chunk a manifest or a pending part names is live. */
static int gc_mark(struct gc *g)
{
    wv_repo *r = g->r;
    struct wv__err *err = &r->err;
    char **mkeys = NULL;
    size_t n_mkeys = 0;
    struct wv__manifest mf;
    int rc = WV_OK;
    memset(&mf, 0, sizeof mf);
    WV_TRY(wv__repo_list(r, "manifests/", &mkeys, &n_mkeys));
    for (size_t i = 0; i < n_mkeys; i++) {
        const char *h = wv__manifest_key_hex(mkeys[i]);
        if (h == NULL)
            continue;
        rc = wv__manifest_load(r, h, &mf);
        if (rc == WV_NOTFOUND) {
            wv__clearerr(err);
            rc = WV_OK;
            continue;
        }
        if (rc != WV_OK) {
            rc = gc_stopped(r, rc);
            goto out;
        }
        g->st.checkpoints++;
        for (size_t t = 0; t < mf.n_tensors; t++) {
            const struct wv__mtensor *mt = &mf.tensors[t];
            for (size_t c = 0; c < mt->n_chunks; c++) {
                struct wv__chunk_loc l;
                memset(&l, 0, sizeof l);
                memcpy(l.id, mt->chunks[c], 32);
                l.stored_len = 1; /* occupied */
                WV_CHECK(wv__cidx_put(&g->live, &l) == WV_OK, WV_NOMEM,
                         "out of memory");
            }
        }
        wv__manifest_release(&mf);
    }
    /* Parts of unfinished multi-writer checkpoints keep their chunks
     * until their timeout; then they go (parts.c). */
    rc = wv__parts_gc(r, g->pending_timeout, g->opts->dry_run != 0,
                      &g->live, &g->st.pending_removed);
    if (rc != WV_OK && rc != WV_NOMEM) {
        rc = gc_stopped(r, rc);
        goto out;
    }
    WV_TRY(rc);
    g->st.live_chunks = g->live.n;
out:
    wv__manifest_release(&mf);
    wv__repo_list_free(mkeys, n_mkeys);
    return rc;
}

/* 2. Every index entry, then the packs. */
static int gc_read_indexes(struct gc *g)
{
    wv_repo *r = g->r;
    struct wv__err *err = &r->err;
    struct wv__objlist pk = {0};
    int rc = WV_OK;
    WV_TRY(wv__repo_list_sized(r, "index/", &g->ik));
    for (size_t i = 0; i < g->ik.n; i++) {
        const struct wv__obj *o = &g->ik.v[i];
        unsigned char *text = NULL;
        size_t len;
        char what[200];
        g->st.bytes_before += o->size;
        /* Checked against its name (and unsealed, if encrypted). */
        if (strncmp(o->key, "index/", 6) == 0 && strlen(o->key) == 6 + 64)
            rc = wv__object_get(r, "index", o->key, o->key + 6,
                                WV__MAX_JSON, &text, &len);
        else
            rc = wv__seterr(err, WV_CORRUPT_CHECKSUM,
                            "%s: %s is damaged (its content does not hash "
                            "to its name)",
                            r->uri, o->key);
        if (rc == WV_OK) {
            struct gidx_ctx c = {&g->entries, err};
            snprintf(what, sizeof what, "%s: %s", r->uri, o->key);
            rc = wv__index_parse((const char *)text, len, what, gc_index_cb,
                                 &c, err);
        }
        wv__free(text);
        if (rc != WV_OK) {
            rc = gc_stopped(r, rc);
            goto out;
        }
    }
    WV_TRY(wv__repo_list_sized(r, "packs/", &pk));
    g->packs = wv__calloc(pk.n ? pk.n : 1, sizeof *g->packs);
    WV_CHECK(g->packs != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < pk.n; i++) {
        struct gpack *p = &g->packs[g->n_packs];
        if (wv__pack_key_id(pk.v[i].key, p->id) != 0)
            continue; /* not a pack: left alone */
        p->size = pk.v[i].size;
        g->st.bytes_before += pk.v[i].size;
        g->n_packs++;
    }
    g->st.packs = g->n_packs;
    if (g->n_packs)
        qsort(g->packs, g->n_packs, sizeof *g->packs, cmp_pack);
out:
    wv__objlist_release(&pk);
    return rc;
}

/* 2b. One location per live chunk, among the entries whose pack exists;
 * the base of a live delta is live too (passes until no base is added:
 * one per link of the longest chain). */
static int gc_choose(struct gc *g)
{
    struct wv__err *err = &g->r->err;
    struct wv__chunk_index picked = {0};
    int rc = WV_OK;
    bool added = true;
    if (g->entries.n)
        qsort(g->entries.v, g->entries.n, sizeof *g->entries.v, cmp_loc_id);
    for (int pass = 0; added && pass <= WV__CHAIN_MAX + 1; pass++) {
        added = false;
        for (size_t i = 0; i < g->entries.n; i++) {
            const struct wv__chunk_loc *l = &g->entries.v[i];
            struct gpack *p;
            if (wv__cidx_get(&g->live, l->id) == NULL ||
                wv__cidx_get(&picked, l->id) != NULL)
                continue;
            p = find_pack(g->packs, g->n_packs, l->pack);
            if (p == NULL || l->off < 8 || l->stored_len > p->size ||
                l->off > p->size - l->stored_len)
                continue;
            WV_CHECK(wv__cidx_put(&picked, l) == WV_OK &&
                         locvec_add(&g->chosen, l) == WV_OK,
                     WV_NOMEM, "out of memory");
            p->live += l->stored_len;
            p->n_live++;
            if (l->codec == WV__CODEC_DELTA &&
                wv__cidx_get(&g->live, l->base) == NULL) {
                struct wv__chunk_loc b;
                memset(&b, 0, sizeof b);
                memcpy(b.id, l->base, 32);
                b.stored_len = 1; /* occupied */
                WV_CHECK(wv__cidx_put(&g->live, &b) == WV_OK, WV_NOMEM,
                         "out of memory");
                added = true;
            }
        }
    }
    g->st.live_chunks = g->live.n;
    g->st.missing_chunks = g->live.n - picked.n;
out:
    wv__cidx_release(&picked);
    return rc;
}

/* 3. Fates: delete, repack or keep each pack. */
static void gc_fates(struct gc *g)
{
    for (size_t i = 0; i < g->n_packs; i++) {
        struct gpack *p = &g->packs[i];
        uint64_t need = 8 + p->live +
                        wv__pack_tail_len(g->r, (uint32_t)p->n_live);
        uint64_t dead = p->size > need ? p->size - need : 0;
        if (p->n_live == 0)
            p->fate = FATE_DELETE;
        else if (dead * 100 > (uint64_t)g->opts->repack_percent * p->size)
            p->fate = FATE_REPACK;
        else
            p->fate = FATE_KEEP;
        if (p->fate == FATE_DELETE)
            g->st.packs_deleted++;
        else if (p->fate == FATE_REPACK)
            g->st.packs_repacked++;
    }
}

/* 4. Repack, in place order, one pack buffer at a time. */
static int gc_repack(struct gc *g)
{
    wv_repo *r = g->r;
    struct wv__err *err = &r->err;
    struct newpack *np = &g->np;
    unsigned char *raw = NULL;
    size_t raw_cap = 0;
    struct wv__codec_ws *ws = NULL;
    /* Delta bases are read where they were before the repack. */
    struct wv__chunk_index before = {0};
    struct wv__chain chain = {.r = r, .x = &before, .check_id = true};
    int rc = WV_OK;
    if (g->chosen.n)
        qsort(g->chosen.v, g->chosen.n, sizeof *g->chosen.v, cmp_loc_place);
    if (g->opts->dry_run || g->st.packs_repacked == 0)
        return WV_OK;
    for (size_t i = 0; i < g->chosen.n; i++)
        WV_CHECK(wv__cidx_put(&before, &g->chosen.v[i]) == WV_OK, WV_NOMEM,
                 "out of memory");
    np->cap = (size_t)r->cfg.pack_size + 8;
    np->p = wv__malloc(np->cap);
    WV_CHECK(np->p != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < g->chosen.n; i++) {
        struct gpack *p = find_pack(g->packs, g->n_packs,
                                    g->chosen.v[i].pack);
        if (p->fate != FATE_REPACK)
            continue;
        if (np->len > 8 &&
            np->len + g->chosen.v[i].stored_len > r->cfg.pack_size)
            WV_TRY(newpack_flush(r, np, g->chosen.v));
        WV_TRY(repack_chunk(r, np, g->chosen.v, i, &raw, &raw_cap, &ws,
                            &chain));
    }
    WV_TRY(newpack_flush(r, np, g->chosen.v));
    g->st.packs_written = np->written.n;
    qsort(g->chosen.v, g->chosen.n, sizeof *g->chosen.v, cmp_loc_place);
out:
    wv__free(raw);
    wv__codec_ws_free(ws);
    wv__chain_release(&chain);
    wv__cidx_release(&before);
    return rc;
}

/* 5. The consolidated index (not written on a dry run), and the sizes
 * after (estimated for a dry run: a repacked pack shrinks to its live
 * chunks and their trailer entries). */
static int gc_write_index(struct gc *g)
{
    wv_repo *r = g->r;
    struct wv__err *err = &r->err;
    wv_gc_stats *st = &g->st;
    char hex[65];
    int rc = WV_OK;
    WV_CHECK(encode_index(&g->chosen, &g->ib) == WV_OK, WV_NOMEM,
             "out of memory");
    WV_CHECK(wv__object_name(r, "index", g->ib.p, g->ib.len, hex) == WV_OK,
             WV_NOMEM, "out of memory");
    snprintf(g->ikey, sizeof g->ikey, "index/%s", hex);
    g->index_same = g->ik.n == 1 && strcmp(g->ik.v[0].key, g->ikey) == 0;
    g->index_empty = g->chosen.n == 0;
    if (!g->index_same && !g->index_empty) {
        st->indexes_written = 1;
        if (!g->opts->dry_run)
            WV_TRY(wv__object_put(r, "index", g->ikey, g->ib.p, g->ib.len,
                                  WV_PUT_IF_ABSENT | WV_PUT_NOSYNC));
    }
    if (!g->index_same)
        st->indexes_deleted =
            g->ik.n - (obj_listed(&g->ik, g->ikey) && !g->index_empty);

    for (size_t i = 0; i < g->n_packs; i++) {
        const struct gpack *p = &g->packs[i];
        if (p->fate == FATE_KEEP)
            st->bytes_after += p->size;
        else if (p->fate == FATE_REPACK && g->opts->dry_run)
            st->bytes_after +=
                8 + p->live + wv__pack_tail_len(r, (uint32_t)p->n_live);
    }
    if (!g->opts->dry_run) {
        for (size_t i = 0; i < g->np.written.n; i++)
            if (find_pack(g->packs, g->n_packs, g->np.written.v[i].pack) ==
                NULL)
                st->bytes_after += g->np.written.v[i].stored_len;
    }
    if (g->index_same)
        st->bytes_after += g->ik.v[0].size;
    else if (!g->index_empty)
        st->bytes_after += g->ib.len;
    st->bytes_freed = st->bytes_before > st->bytes_after
                          ? st->bytes_before - st->bytes_after
                          : 0;
out:
    return rc;
}

/* 6. Still ours? A lock broken as stale means a commit may be running
 * on the belief that no gc is: delete nothing. */
static int gc_check_lock(struct gc *g)
{
    wv_repo *r = g->r;
    struct wv__err *err = &r->err;
    unsigned char *lockbuf = NULL;
    size_t lock_len;
    int rc = wv__store_get_all(r->store, r->lock_key, 4096, &lockbuf,
                               &lock_len);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(err);
        WV_CHECK(0, WV_CONFLICT, "%s: gc lost its lock %s (another process "
                                 "took it for stale); nothing was deleted",
                 r->uri, r->lock_key);
    }
out:
    wv__free(lockbuf);
    return rc;
}

/* Delete key; already gone is fine. */
static int gc_del(wv_repo *r, const char *key)
{
    int rc = wv__store_del(r->store, key);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(&r->err);
        rc = WV_OK;
    }
    return rc;
}

/* 7. Old index objects. */
static int gc_delete_indexes(struct gc *g)
{
    int rc = WV_OK;
    for (size_t i = 0; !g->index_same && i < g->ik.n && rc == WV_OK; i++) {
        if (!g->index_empty && strcmp(g->ik.v[i].key, g->ikey) == 0)
            continue;
        rc = gc_del(g->r, g->ik.v[i].key);
    }
    return rc;
}

/* 8. Dead and repacked packs (never one the repack just wrote, should it
 * have come out identical). */
static int gc_delete_packs(struct gc *g)
{
    int rc = WV_OK;
    for (size_t i = 0; i < g->n_packs && rc == WV_OK; i++) {
        char key[96];
        bool rewritten = false;
        if (g->packs[i].fate == FATE_KEEP)
            continue;
        for (size_t k = 0; k < g->np.written.n && !rewritten; k++)
            rewritten =
                memcmp(g->np.written.v[k].pack, g->packs[i].id, 32) == 0;
        if (rewritten)
            continue;
        wv__pack_key(g->packs[i].id, key);
        rc = gc_del(g->r, key);
    }
    return rc;
}

/* 9. Leftovers of killed writers the store keeps out of listings (local
 * temporary files), once they are surely abandoned. */
static int gc_sweep(struct gc *g)
{
    struct wv__store_sweep sw = {g->opts->tmp_age, 0};
    int rc = wv__store_control(g->r->store, WV_STORE_SWEEP, &sw);
    g->st.tmp_removed = sw.removed;
    if (rc == WV_NOTFOUND) {
        wv__clearerr(&g->r->err);
        rc = WV_OK;
    }
    return rc;
}

static void gc_release(struct gc *g)
{
    wv__objlist_release(&g->ik);
    wv__cidx_release(&g->live);
    wv__free(g->entries.v);
    wv__free(g->chosen.v);
    wv__free(g->packs);
    wv__free(g->np.p);
    wv__free(g->np.members);
    wv__free(g->np.written.v);
    wv__free(g->np.tmp);
    wv__buf_release(&g->ib);
}

static int repo_gc_locked(wv_repo *r, const wv_gc_opts *opts, wv_gc_stats *stats)
{
    static const wv_gc_opts defaults = WV_GC_OPTS_INIT;
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    struct gc g;

    memset(&g, 0, sizeof g);
    g.r = r;
    g.opts = opts ? opts : &defaults;
    wv__clearerr(err);
    /* pending_timeout came last: an older struct goes without it */
    WV_CHECK(g.opts->struct_size >= offsetof(wv_gc_opts, pending_timeout),
             WV_MISUSE, "gc options from an incompatible header");
    if (g.opts->struct_size >= sizeof(wv_gc_opts))
        g.pending_timeout = g.opts->pending_timeout;
    WV_CHECK(g.opts->repack_percent >= 0 && g.opts->repack_percent <= 100,
             WV_MISUSE, "gc: repack_percent must be 0..100");
    WV_CHECK(g.opts->tmp_age >= 0, WV_MISUSE,
             "gc: tmp_age must be 0 or more seconds");

    WV_TRY(gc_lock(&g));
    WV_TRY(gc_mark(&g));          /* 1 */
    WV_TRY(gc_read_indexes(&g));  /* 2 */
    WV_TRY(gc_choose(&g));        /* 2b */
    gc_fates(&g);                 /* 3 */
    WV_TRY(gc_repack(&g));        /* 4 */
    WV_TRY(gc_write_index(&g));   /* 5 */
    if (g.opts->dry_run)
        goto out;
    WV_TRY(wv__store_control(r->store, WV_STORE_SYNC, NULL));
    WV_TRY(gc_check_lock(&g));    /* 6 */
    WV_TRY(gc_delete_indexes(&g)); /* 7 */
    WV_TRY(gc_delete_packs(&g));  /* 8 */
    WV_TRY(gc_sweep(&g));         /* 9 */
out:
    gc_release(&g);
    wv__repo_unlock(r);
    if (stats) {
        if (rc != WV_OK)
            memset(&g.st, 0, sizeof g.st);
        *stats = g.st;
    }
    return rc;
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
int wv_repo_prune(wv_repo *r, const wv_prune_opts *opts, wv_prune_cb cb,
                  void *arg, wv_prune_stats *stats)
{
    return WV__REPO_LOCKED(r, repo_prune_locked(r, opts, cb, arg, stats));
}

/* Public entry: waits for pending asynchronous commits and holds the
 * repository's lock for the call. */
int wv_repo_gc(wv_repo *r, const wv_gc_opts *opts, wv_gc_stats *stats)
{
    return WV__REPO_LOCKED(r, repo_gc_locked(r, opts, stats));
}
