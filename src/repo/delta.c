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

/* Read and open link l (whose base, if a delta, is the plaintext at
 * base) into out. */
static int chain_open(struct wv__chain *c, const struct wv__chunk_loc *l,
                      const unsigned char *base, unsigned char *out,
                      struct wv__codec_ws *ws, const char *of,
                      struct wv__err *err)
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
    struct wv__err e = {0};
    rc = wv__chunk_open_base(r, l, c->stored, out, (size_t)l->raw_len, base,
                             ws, c->check_id, &e);
    WV_CHECK(rc == WV_OK, rc, "%s (a base of %.12s)", e.msg, of);
out:
    return rc;
}

int wv__chain_base(struct wv__chain *c, const struct wv__chunk_loc *l,
                   struct wv__codec_ws *ws, const unsigned char **base,
                   struct wv__err *err)
{
    wv_repo *r = c->r;
    struct wv__chunk_loc links[WV__CHAIN_MAX];
    char hex[65], bhex[65];
    int n = 0, rc = WV_OK;
    size_t raw = (size_t)l->raw_len;
    *base = NULL;
    wv__hex(l->id, 32, hex);
    /* links[0] is l's base, links[n-1] the chunk stored whole. */
    const unsigned char *want = l->base;
    for (;;) {
        wv__hex(want, 32, bhex);
        WV_CHECK(n < WV__CHAIN_MAX, WV_CORRUPT,
                 "%s: chunk %.12s: its chain of delta bases is longer than "
                 "%d (damaged)",
                 r->uri, hex, WV__CHAIN_MAX);
        WV_CHECK(chain_get(c, want, &links[n]), WV_CORRUPT,
                 "%s: chunk %.12s: its delta base %.12s is missing from "
                 "every index",
                 r->uri, hex, bhex);
        WV_CHECK(links[n].raw_len == raw, WV_CORRUPT,
                 "%s: chunk %.12s: its delta base %.12s has %llu bytes, not "
                 "%zu",
                 r->uri, hex, bhex, (unsigned long long)links[n].raw_len,
                 raw);
        if (links[n++].codec != WV__CODEC_DELTA)
            break;
        want = links[n - 1].base;
    }
    WV_CHECK(grow(&c->a, &c->a_cap, raw) == WV_OK &&
                 grow(&c->b, &c->b_cap, raw) == WV_OK,
             WV_NOMEM, "out of memory");
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

void wv__chain_release(struct wv__chain *c)
{
    wv__free(c->stored);
    wv__free(c->a);
    wv__free(c->b);
    c->stored = c->a = c->b = NULL;
    c->stored_cap = c->a_cap = c->b_cap = 0;
}
