/*
 * delta.c -- delta chains (docs/repo-format.md "Delta chunks"): a chunk
 * stored with codec 3 is the XOR of its plaintext and its base's (the
 * same chunk of the parent checkpoint), and the base may itself be a
 * delta. Reading one follows the chain of bases through a chunk index
 * down to a chunk stored whole, decodes that, and applies the deltas
 * forwards, two plaintext buffers in turn. Writers bound chains (commit.c:
 * a chunk is stored whole when its base's chain has K-1 links); readers
 * refuse a chain longer than WV__CHAIN_MAX, which only damage (a cycle)
 * makes. Every link is checked against its id as it is decoded, so a
 * damaged base is reported as such, naming the chunk that needs it.
 * The last commit's plaintext, kept by the handle for the next commit's
 * bases (struct wv__pcache), is at the end.
 *
 * Calls down only: object.c (opening chunks), the store, core.
 */
#include "core.h"
#include "object.h"
#include "repo.h"

/* The location of chunk id, copied out under the index's lock. */
static bool chain_get(struct wv__chain *c, const unsigned char id[32],
                      struct wv__chunk_loc *out)
{
    if (c->x_mu)
        pthread_mutex_lock(c->x_mu);
    const struct wv__chunk_loc *l = wv__cidx_get(c->x, id);
    if (l)
        *out = *l;
    if (c->x_mu)
        pthread_mutex_unlock(c->x_mu);
    return l != NULL;
}

int wv__chain_depth(struct wv__chain *c, const unsigned char id[32])
{
    struct wv__chunk_loc l;
    int d = 0;
    if (!chain_get(c, id, &l))
        return -1;
    while (l.codec == WV__CODEC_DELTA) {
        if (++d > WV__CHAIN_MAX || !chain_get(c, l.base, &l))
            return -1;
    }
    return d;
}

static int grow(unsigned char **p, size_t *cap, size_t n)
{
    if (*cap >= n)
        return WV_OK;
    unsigned char *q = wv__realloc(*p, n);
    if (q == NULL)
        return WV_NOMEM;
    *p = q;
    *cap = n;
    return WV_OK;
}

/* Read link l's stored bytes into c->stored. */
static int chain_fetch(struct wv__chain *c, const struct wv__chunk_loc *l,
                       const char *of, struct wv__err *err)
{
    wv_repo *r = c->r;
    char key[96], hex[65];
    size_t got = 0;
    int rc = WV_OK;
    wv__hex(l->id, 32, hex);
    wv__pack_key(l->pack, key);
    WV_CHECK(l->stored_len <= wv__chunk_bound(r, (size_t)l->raw_len),
             WV_CORRUPT, "%s: chunk %.12s (a base of %.12s) is too large",
             r->uri, hex, of);
    WV_CHECK(grow(&c->stored, &c->stored_cap, (size_t)l->stored_len) ==
                 WV_OK,
             WV_NOMEM, "out of memory");
    if (c->store_mu)
        pthread_mutex_lock(c->store_mu);
    rc = wv__store_get(r->store, key, l->off, c->stored,
                       (size_t)l->stored_len, &got);
    struct wv__err se = r->err;
    if (rc != WV_OK)
        wv__clearerr(&r->err);
    if (c->store_mu)
        pthread_mutex_unlock(c->store_mu);
    WV_CHECK(rc == WV_OK, rc == WV_NOTFOUND || rc == WV_IO_SHORT_READ
                              ? WV_CORRUPT
                              : rc,
             "%s: chunk %.12s (a base of %.12s): pack %.12s is %s", r->uri,
             hex, of, key + 9,
             rc == WV_NOTFOUND        ? "missing"
             : rc == WV_IO_SHORT_READ ? "truncated"
                                      : se.msg);
out:
    return rc;
}

/* Read and open link l (whose base, if a delta, is the plaintext at
 * base) into out, checked against its id. */
static int chain_open(struct wv__chain *c, const struct wv__chunk_loc *l,
                      const unsigned char *base, unsigned char *out,
                      struct wv__codec_ws *ws, const char *of,
                      struct wv__err *err)
{
    int rc = WV_OK;
    WV_TRY(chain_fetch(c, l, of, err));
    struct wv__err e = {0};
    rc = wv__chunk_open_base(c->r, l, c->stored, out, (size_t)l->raw_len,
                             base, ws, c->check_id, &e);
    WV_CHECK(rc == WV_OK, rc, "%s (a base of %.12s)", e.msg, of);
out:
    return rc;
}

/* The chain of bases of delta chunk l: links[0] is l's base,
 * links[*n - 1] the chunk stored whole; and c->a, c->b grown to l's
 * plaintext size (the buffers of either reading). */
static int chain_links(struct wv__chain *c, const struct wv__chunk_loc *l,
                       struct wv__chunk_loc *links, int *n,
                       struct wv__err *err)
{
    wv_repo *r = c->r;
    char hex[65], bhex[65];
    int rc = WV_OK;
    size_t raw = (size_t)l->raw_len;
    wv__hex(l->id, 32, hex);
    *n = 0;
    const unsigned char *want = l->base;
    for (;;) {
        wv__hex(want, 32, bhex);
        WV_CHECK(*n < WV__CHAIN_MAX, WV_CORRUPT,
                 "%s: chunk %.12s: its chain of delta bases is longer than "
                 "%d (damaged)",
                 r->uri, hex, WV__CHAIN_MAX);
        struct wv__chunk_loc *k = &links[*n];
        WV_CHECK(chain_get(c, want, k), WV_CORRUPT,
                 "%s: chunk %.12s: its delta base %.12s is missing from "
                 "every index",
                 r->uri, hex, bhex);
        WV_CHECK(k->raw_len == raw, WV_CORRUPT,
                 "%s: chunk %.12s: its delta base %.12s has %llu bytes, not "
                 "%zu",
                 r->uri, hex, bhex, (unsigned long long)k->raw_len, raw);
        ++*n;
        if (k->codec != WV__CODEC_DELTA)
            break;
        want = k->base;
    }
    WV_CHECK(grow(&c->a, &c->a_cap, raw) == WV_OK &&
                 grow(&c->b, &c->b_cap, raw) == WV_OK,
             WV_NOMEM, "out of memory");
out:
    return rc;
}

/* The link-by-link reading: the base of l from its chain, every link
 * checked against its id as it is decoded (the one that names a damaged
 * link). */
static int chain_base_checked(struct wv__chain *c,
                              const struct wv__chunk_loc *l,
                              const struct wv__chunk_loc *links, int n,
                              struct wv__codec_ws *ws,
                              const unsigned char **base, struct wv__err *err)
{
    char hex[65];
    int rc = WV_OK;
    wv__hex(l->id, 32, hex);
    /* Forwards: the whole chunk, then each delta on the one before. */
    unsigned char *cur = c->a, *next = c->b;
    WV_TRY(chain_open(c, &links[n - 1], NULL, cur, ws, hex, err));
    for (int k = n - 2; k >= 0; k--) {
        WV_TRY(chain_open(c, &links[k], cur, next, ws, hex, err));
        unsigned char *t = cur;
        cur = next;
        next = t;
    }
    *base = cur;
out:
    return rc;
}

/* ---- composing a chain in the grouped domain -----------------------------
 * Byte grouping is a permutation and XOR works bytewise, so the deltas of
 * a chain compose without undoing the grouping at each link: decompress
 * the whole chunk (grouped already when it is bg-zstd), XOR each delta's
 * decompressed frame into it, and ungroup once at the end. Only the
 * result is hashed: a damaged link changes it (a delta decodes to the
 * XOR of its base), which its id then reports; the link-by-link reading
 * then runs to name the damaged link. On the trained F32 run
 * (bench/bench_delta.sh) a checkout through 3 links took 2.04x the CPU of
 * one without chains, 2.87x when every link was ungrouped and hashed. */

/* Compose links[n-1] (stored whole) .. links[0], then `top` when not
 * NULL (a delta on links[0], stored bytes in top_stored), into dst:
 * raw_len plaintext bytes, checked against the id of the last one
 * composed. acc and tmp are raw_len-byte buffers (dst may be tmp).
 * WV_OK, WV_NOMEM, or any other status: read it link by link. */
static int chain_compose(struct wv__chain *c,
                         const struct wv__chunk_loc *links, int n,
                         const struct wv__chunk_loc *top,
                         unsigned char *top_stored, unsigned char *acc,
                         unsigned char *tmp, unsigned char *dst,
                         struct wv__codec_ws *ws, const char *of)
{
    wv_repo *r = c->r;
    struct wv__err e = {0};
    const struct wv__chunk_loc *last = top ? top : &links[0];
    size_t raw = (size_t)last->raw_len;
    unsigned elem = top ? top->elem : links[0].elem;
    unsigned g = elem > 1 && raw >= elem ? elem : 0;
    const unsigned char *pl;
    size_t plen;
    int rc;
    /* Every delta grouped alike (one dtype): otherwise link by link. */
    for (int k = 0; k < n - 1; k++)
        if (links[k].elem != elem)
            return WV_CORRUPT;
    const struct wv__chunk_loc *w = &links[n - 1];
    if ((rc = chain_fetch(c, w, of, &e)) != WV_OK ||
        (rc = wv__chunk_payload(r, w, c->stored, NULL, raw, &pl, &plen,
                                &e)) != WV_OK)
        return rc;
    if (g && w->codec == WV__CODEC_BG_ZSTD && w->elem == g) {
        rc = wv__codec_unzstd(pl, plen, acc, raw, ws, &e);
    } else {
        rc = wv__codec_decode(w->codec, w->elem, pl, plen, g ? tmp : acc,
                              raw, ws, &e);
        if (rc == WV_OK && g)
            wv__codec_group(tmp, raw, g, acc);
    }
    for (int k = n - 2; rc == WV_OK && k >= -1; k--) {
        const struct wv__chunk_loc *d = k >= 0 ? &links[k] : top;
        if (d == NULL)
            break;
        if (k >= 0 && (rc = chain_fetch(c, d, of, &e)) != WV_OK)
            break;
        /* after the fetch, which may move c->stored */
        unsigned char *st = k >= 0 ? c->stored : top_stored;
        if ((rc = wv__chunk_payload(r, d, st, NULL, raw, &pl, &plen, &e)) !=
            WV_OK)
            break;
        if (plen < WV__ID_LEN || memcmp(pl, d->base, WV__ID_LEN) != 0)
            return WV_CORRUPT;
        rc = wv__codec_unzstd(pl + WV__ID_LEN, plen - WV__ID_LEN, tmp, raw,
                              ws, &e);
        if (rc == WV_OK)
            wv__codec_xor(acc, acc, tmp, raw);
    }
    if (rc != WV_OK)
        return rc;
    if (g)
        wv__codec_ungroup(acc, raw, g, dst);
    else if (dst != acc)
        memcpy(dst, acc, raw);
    if (r->crypt && c->check_id != WV__CHECK_ID)
        return WV_OK; /* every link authenticated, bound to its id */
    unsigned char id[WV__ID_LEN];
    if (wv__chunk_id(r, dst, raw, id) != WV_OK)
        return WV_NOMEM;
    return memcmp(id, last->id, WV__ID_LEN) == 0 ? WV_OK
                                                 : WV_CORRUPT_CHECKSUM;
}

int wv__chain_base(struct wv__chain *c, const struct wv__chunk_loc *l,
                   struct wv__codec_ws *ws, const unsigned char **base,
                   struct wv__err *err)
{
    struct wv__chunk_loc links[WV__CHAIN_MAX];
    char hex[65];
    int n = 0, rc = WV_OK;
    *base = NULL;
    wv__hex(l->id, 32, hex);
    WV_TRY(chain_links(c, l, links, &n, err));
    if (n >= 2) {
        rc = chain_compose(c, links, n, NULL, NULL, c->a, c->b, c->b, ws,
                           hex);
        WV_CHECK(rc != WV_NOMEM, rc, "out of memory");
        if (rc == WV_OK) {
            *base = c->b;
            goto out;
        }
    }
    rc = chain_base_checked(c, l, links, n, ws, base, err);
out:
    return rc;
}

int wv__chain_base_grouped(struct wv__chain *c, const struct wv__chunk_loc *l,
                           unsigned elem, const unsigned char *stored,
                           struct wv__codec_ws *ws,
                           const unsigned char **base, bool *grouped,
                           struct wv__err *err)
{
    struct wv__chunk_loc links[WV__CHAIN_MAX];
    char hex[65];
    int n = 0, rc = WV_OK;
    const unsigned char *pl;
    size_t plen, raw = (size_t)l->raw_len;
    *base = NULL;
    *grouped = false;
    wv__hex(l->id, 32, hex);
    WV_TRY(chain_links(c, l, links, &n, err));
    const struct wv__chunk_loc *k = &links[0];
    if (n != 1 || c->check_id != WV__CHECK_FRAME || elem < 2 ||
        raw < elem || k->codec != WV__CODEC_BG_ZSTD || k->elem != elem)
        return wv__chain_base(c, l, ws, base, err);
    struct wv__err e = {0};
    if (stored != NULL && c->r->crypt == NULL) { /* mapped: no copy */
        pl = stored;
        plen = (size_t)k->stored_len;
    } else {
        WV_TRY(chain_fetch(c, k, hex, err));
        rc = wv__chunk_payload(c->r, k, c->stored, NULL, raw, &pl, &plen,
                               &e);
        WV_CHECK(rc == WV_OK, rc, "%s (a base of %.12s)", e.msg, hex);
    }
    /* plain: its frame's checksum is the check (sealed: its tag); a
     * frame without one (an earlier writer's) is opened from the same
     * bytes and hashed, in plaintext */
    if (c->r->crypt == NULL && !wv__codec_frame_summed(pl, plen)) {
        rc = wv__chunk_open_base(c->r, k, (unsigned char *)pl, c->b, raw,
                                 NULL, ws, WV__CHECK_ID, &e);
        WV_CHECK(rc == WV_OK, rc, "%s (a base of %.12s)", e.msg, hex);
        *base = c->b;
        goto out;
    }
    wv__codec_ws_check_sum(ws, true);
    rc = wv__codec_unzstd(pl, plen, c->b, raw, ws, &e);
    WV_CHECK(rc != WV_NOMEM, rc, "out of memory");
    char bhex[65];
    wv__hex(k->id, 32, bhex);
    WV_CHECK(rc == WV_OK, rc, "%s: chunk %.12s (a base of %.12s): %s",
             c->r->uri, bhex, hex, e.msg);
    *base = c->b;
    *grouped = true;
out:
    return rc;
}

int wv__chain_open(struct wv__chain *c, const struct wv__chunk_loc *l,
                   unsigned char *stored, void *out, struct wv__codec_ws *ws,
                   struct wv__err *err)
{
    struct wv__chunk_loc links[WV__CHAIN_MAX];
    const unsigned char *base = NULL;
    char hex[65];
    int n = 0, rc = WV_OK;
    size_t raw = (size_t)l->raw_len;
    wv__hex(l->id, 32, hex);
    WV_TRY(chain_links(c, l, links, &n, err));
    rc = chain_compose(c, links, n, l, stored, c->a, c->b, out, ws, hex);
    WV_CHECK(rc != WV_NOMEM, rc, "out of memory");
    if (rc == WV_OK)
        goto out;
    /* Link by link, to say which one is damaged; l's own stored bytes
     * again (unsealing works in place). */
    WV_TRY(chain_base_checked(c, l, links, n, ws, &base, err));
    WV_TRY(chain_fetch(c, l, hex, err));
    rc = wv__chunk_open_base(c->r, l, c->stored, out, raw, base, ws,
                             c->check_id, err);
out:
    return rc;
}

void wv__chain_release(struct wv__chain *c)
{
    wv__free(c->stored);
    wv__free(c->a);
    wv__free(c->b);
    c->stored = c->a = c->b = NULL;
    c->stored_cap = c->a_cap = c->b_cap = 0;
}

/* ---- the last commit's plaintext ---------------------------------------- */

static int ent_cmp(const void *a, const void *b)
{
    return memcmp(((const struct wv__pcache_ent *)a)->id,
                  ((const struct wv__pcache_ent *)b)->id, WV__ID_LEN);
}

/* The entry of chunk id with n bytes, or NULL. */
static struct wv__pcache_ent *ent_find(const struct wv__pcache *pc,
                                       const unsigned char id[32], size_t n)
{
    struct wv__pcache_ent key;
    if (pc->n == 0)
        return NULL; /* pc->v is NULL: not for bsearch */
    memcpy(key.id, id, WV__ID_LEN);
    struct wv__pcache_ent *e = bsearch(&key, pc->v, pc->n, sizeof *pc->v,
                                       ent_cmp);
    return e != NULL && e->n == n ? e : NULL;
}

const unsigned char *wv__pcache_get(const struct wv__pcache *pc,
                                    const unsigned char id[32], size_t n)
{
    const struct wv__pcache_ent *e = ent_find(pc, id, n);
    return e != NULL ? e->p : NULL;
}

unsigned char *wv__pcache_take(struct wv__pcache *pc,
                               const unsigned char id[32], size_t n)
{
    struct wv__pcache_ent *e = ent_find(pc, id, n);
    if (e == NULL)
        return NULL;
    unsigned char *p = e->p;
    e->p = NULL;
    return p;
}

unsigned char *wv__pcache_spare(struct wv__pcache *pc, size_t n)
{
    for (size_t i = pc->n_spare; i-- > 0;)
        if (pc->spare[i].n == n && pc->spare[i].p != NULL) {
            unsigned char *p = pc->spare[i].p;
            pc->spare[i] = pc->spare[--pc->n_spare];
            return p;
        }
    return NULL;
}

static void free_ents(struct wv__pcache_ent *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wv__free(v[i].p);
    wv__free(v);
}

void wv__pcache_release(struct wv__pcache *pc)
{
    free_ents(pc->v, pc->n);
    free_ents(pc->spare, pc->n_spare);
    memset(pc, 0, sizeof *pc);
}

int wv__pcache_set(struct wv__pcache *pc, unsigned char *const *ids,
                   unsigned char **p, const size_t *lens, size_t n)
{
    size_t k = 0;
    free_ents(pc->spare, pc->n_spare);
    pc->spare = pc->v;
    pc->n_spare = pc->n;
    pc->v = NULL;
    pc->n = 0;
    for (size_t i = 0; i < n; i++)
        k += p[i] != NULL;
    struct wv__pcache_ent *v = wv__calloc(k ? k : 1, sizeof *v);
    if (v == NULL) {
        wv__pcache_release(pc);
        for (size_t i = 0; i < n; i++) {
            wv__free(p[i]);
            p[i] = NULL;
        }
        return WV_NOMEM;
    }
    k = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] != NULL) {
            memcpy(v[k].id, ids[i], WV__ID_LEN);
            v[k].p = p[i];
            v[k++].n = lens[i];
            p[i] = NULL;
        }
    qsort(v, k, sizeof *v, ent_cmp);
    /* one entry per id (a chunk repeated in the set) */
    size_t w = 0;
    for (size_t i = 0; i < k; i++) {
        if (w > 0 && memcmp(v[w - 1].id, v[i].id, WV__ID_LEN) == 0) {
            wv__free(v[i].p);
            continue;
        }
        v[w++] = v[i];
    }
    pc->v = v;
    pc->n = w;
    return WV_OK;
}
