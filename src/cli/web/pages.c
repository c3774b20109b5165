/*
 * pages.c -- the pages of the web view, rendered on the server as HTML
 * with inline SVG charts and inline CSS, without any script:
 *   history     branches, tags, and every checkpoint reachable from a
 *               branch head, newest first (manifests only, wv_repo_stat);
 *   metrics     per branch, a line chart of each numeric metadata key over
 *               the commits (over `step` when every point has one), the
 *               best commit marked by the rule of `wv prune --keep-best`
 *               itself (wv_repo_prune in dry-run mode, which takes no lock
 *               and deletes nothing);
 *   checkpoint  its metadata and tensors; per tensor, how many of its
 *               chunks are stored once for it and its parent, of all
 *               (chunk ids from wv_repo_tensor_chunks: manifests only);
 *   tensor      statistics of one tensor, computed on demand by streaming
 *               that tensor's chunks (stats.c) and kept in memory;
 *   diff        wv_repo_diff with values: relative L2 change and max|a-b|
 *               as sorted bar charts, and the histogram of the differences
 *               of one tensor.
 * The same bodies make `wv serve`'s pages and `wv report`'s single file;
 * in a report, links are #anchors to the sections the file contains.
 * Every string from the repository goes through wb_text (web.h).
 */
#include "web.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- statistics cache ---------------------------------------------------- */

enum { CACHE_MAX = 2048 };

struct web_cache {
    struct centry {
        char id[WV_ID_HEX];
        char *name;
        struct web_stats st;
    } *v;
    size_t n;
};

void web_cache_free(struct web_cache *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].name);
    free(c->v);
    free(c);
}

static const struct web_stats *cache_get(struct web *w, const char *id,
                                         const char *name)
{
    if (w->cache == NULL)
        return NULL;
    for (size_t i = 0; i < w->cache->n; i++)
        if (strcmp(w->cache->v[i].id, id) == 0 &&
            strcmp(w->cache->v[i].name, name) == 0)
            return &w->cache->v[i].st;
    return NULL;
}

static void cache_put(struct web *w, const char *id, const char *name,
                      const struct web_stats *st)
{
    if (w->cache == NULL && (w->cache = calloc(1, sizeof *w->cache)) == NULL)
        return;
    struct web_cache *c = w->cache;
    if (c->v == NULL && (c->v = calloc(CACHE_MAX, sizeof *c->v)) == NULL)
        return;
    char *nm = strdup(name);
    if (nm == NULL)
        return;
    if (c->n == CACHE_MAX) { /* forget the oldest */
        free(c->v[0].name);
        memmove(c->v, c->v + 1, (CACHE_MAX - 1) * sizeof *c->v);
        c->n--;
    }
    snprintf(c->v[c->n].id, WV_ID_HEX, "%s", id);
    c->v[c->n].name = nm;
    c->v[c->n].st = *st;
    c->n++;
}

/* ---- page frame and links ------------------------------------------------ */

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;"
    "background:#fafafa}"
    "header{background:#234;color:#fff;padding:8px 16px}"
    "header a{color:#cde;margin-right:16px}header .repo{float:right;"
    "color:#9ab}main{padding:8px 16px}"
    "table{border-collapse:collapse;margin:8px 0;background:#fff}"
    "td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;"
    "vertical-align:top}th{background:#eef}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".id{font-family:monospace}.msg{white-space:pre-wrap}"
    "pre{background:#fff;border:1px solid #ddd;padding:6px;max-height:20em;"
    "overflow:auto;white-space:pre-wrap}"
    ".ref{background:#dfd;border-radius:3px;padding:0 3px;margin-right:3px;"
    "font-size:12px}.ref.tag{background:#fed}"
    "svg.chart{background:#fff;border:1px solid #ddd;margin:4px 0}"
    "svg text{font:11px sans-serif;fill:#333}svg .label{font-weight:bold}"
    "svg .grid{stroke:#eee}svg .axis{stroke:#888}"
    "svg .series{fill:none;stroke:#36c;stroke-width:1.5}"
    "svg .pt{fill:#36c}svg circle.best{fill:none;stroke:#d22;"
    "stroke-width:2.5}svg text.best{fill:#d22;font-weight:bold}"
    "svg .bar{fill:#69c}svg .bar.inf{fill:#d22}"
    "figure{margin:8px 0 16px}figcaption{color:#555}.note{color:#555}"
    ".err{background:#fee;border:1px solid #d99;padding:8px}"
    "section{margin-bottom:24px}";

void web_open(struct web *w, struct wbuf *b, const char *title)
{
    wb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-"
               "8\"><meta name=\"viewport\" content=\"width=device-width\">"
               "<meta http-equiv=\"Content-Security-Policy\" content=\""
               "default-src 'none'; style-src 'unsafe-inline'; img-src "
               "data:\"><title>");
    wb_text(b, title);
    wb_puts(b, "</title><style>");
    wb_puts(b, css);
    wb_puts(b, "</style></head><body><header>");
    if (w->report)
        wb_puts(b, "<a href=\"#history\">History</a><a href=\"#metrics\">"
                   "Metrics</a>");
    else
        wb_puts(b, "<a href=\"/\">History</a><a href=\"/metrics\">Metrics"
                   "</a>");
    wb_puts(b, "<span class=\"repo\">");
    wb_text(b, w->uri);
    wb_puts(b, "</span></header><main>\n");
}

void web_close(struct wbuf *b)
{
    wb_puts(b, "</main></body></html>\n");
}

void web_error(struct wbuf *b, const char *what, const char *msg)
{
    wb_puts(b, "<div class=\"err\"><h2>");
    wb_text(b, what);
    wb_puts(b, "</h2><p>");
    wb_text(b, msg);
    wb_puts(b, "</p></div>\n");
}

static bool has_anchor(const struct web *w, const char *id)
{
    for (size_t i = 0; w->anchors && i < w->anchors->n; i++)
        if (!w->anchors->v[i].tag && strcmp(w->anchors->v[i].id, id) == 0)
            return true;
    return false;
}

/* <a> to a checkpoint's page (its first 12 digits as the text); plain
 * text in a report that has no section for it. */
static void link_ckpt(struct web *w, struct wbuf *b, const char *id)
{
    if (!w->report)
        wb_printf(b, "<a class=\"id\" href=\"/commit/%s\">%.12s</a>", id, id);
    else if (has_anchor(w, id))
        wb_printf(b, "<a class=\"id\" href=\"#c-%s\">%.12s</a>", id, id);
    else
        wb_printf(b, "<span class=\"id\">%.12s</span>", id);
}

static int fail_repo(struct web *w, int rc)
{
    snprintf(w->err, sizeof w->err, "%s",
             rc == WV_NOMEM ? "out of memory" : wv_repo_errmsg(w->r));
    if (w->err[0] == '\0')
        snprintf(w->err, sizeof w->err, "%s", wv_strerror(rc));
    return rc;
}

static int fail_msg(struct web *w, int rc, const char *msg)
{
    snprintf(w->err, sizeof w->err, "%s", msg);
    return rc;
}

/* ---- the history --------------------------------------------------------- */

struct hist {
    wv_checkpoint **c;
    size_t n, cap;
    struct cli_refs refs; /* branches, then tags */
    /* ids seen: open addressing over c's indices + 1 (0: empty) */
    size_t *set;
    size_t set_cap;
};

static void hist_release(struct hist *h)
{
    for (size_t i = 0; i < h->n; i++)
        wv_checkpoint_free(h->c[i]);
    free(h->c);
    free(h->set);
    cli_refs_release(&h->refs);
    memset(h, 0, sizeof *h);
}

static size_t id_hash(const char *id)
{
    size_t x = 0;
    for (int i = 0; i < 16 && id[i]; i++)
        x = x * 16 + (size_t)(id[i] <= '9' ? id[i] - '0' : id[i] - 'a' + 10);
    return x;
}

/* Index of id in h->c, or (size_t)-1. */
static size_t hist_find(const struct hist *h, const char *id)
{
    if (h->set_cap == 0)
        return (size_t)-1;
    for (size_t k = id_hash(id) & (h->set_cap - 1);; k = (k + 1) &
                                                       (h->set_cap - 1)) {
        if (h->set[k] == 0)
            return (size_t)-1;
        if (strcmp(wv_checkpoint_id(h->c[h->set[k] - 1]), id) == 0)
            return h->set[k] - 1;
    }
}

static int hist_add(struct hist *h, wv_checkpoint *c)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        void *nv = realloc(h->c, cap * sizeof *h->c);
        if (nv == NULL)
            return WV_NOMEM;
        h->c = nv;
        h->cap = cap;
    }
    if ((h->n + 1) * 2 > h->set_cap) {
        size_t cap = h->set_cap ? h->set_cap * 2 : 128;
        size_t *ns = calloc(cap, sizeof *ns);
        if (ns == NULL)
            return WV_NOMEM;
        free(h->set);
        h->set = ns;
        h->set_cap = cap;
        for (size_t i = 0; i < h->n; i++) {
            size_t k = id_hash(wv_checkpoint_id(h->c[i])) & (cap - 1);
            while (ns[k])
                k = (k + 1) & (cap - 1);
            ns[k] = i + 1;
        }
    }
    h->c[h->n] = c;
    size_t k = id_hash(wv_checkpoint_id(c)) & (h->set_cap - 1);
    while (h->set[k])
        k = (k + 1) & (h->set_cap - 1);
    h->set[k] = ++h->n;
    return WV_OK;
}

static struct hist *sort_h;

static int cmp_newest(const void *x, const void *y)
{
    const wv_checkpoint *a = *(wv_checkpoint *const *)x;
    const wv_checkpoint *b = *(wv_checkpoint *const *)y;
    int c = strcmp(wv_checkpoint_time(b), wv_checkpoint_time(a));
    if (c)
        return c;
    /* same second: discovery order (a child is found before its parent) */
    size_t ia = hist_find(sort_h, wv_checkpoint_id(a));
    size_t ib = hist_find(sort_h, wv_checkpoint_id(b));
    return ia < ib ? -1 : ia > ib;
}

/* Every checkpoint reachable from a branch head, newest first. */
static int hist_load(struct web *w, struct hist *h)
{
    int rc = cli_refs_collect(w->r, &h->refs);
    if (rc != WV_OK)
        return fail_repo(w, rc);
    for (size_t i = 0; i < h->refs.n && !h->refs.v[i].tag; i++) {
        const char *id = h->refs.v[i].id;
        char next[WV_ID_HEX];
        snprintf(next, sizeof next, "%s", id);
        while (next[0] && hist_find(h, next) == (size_t)-1) {
            wv_checkpoint *c = NULL;
            rc = wv_repo_stat(w->r, next, &c);
            if (rc == WV_NOTFOUND && strcmp(next, id) != 0)
                break; /* pruned parent: the history stops */
            if (rc != WV_OK)
                return fail_repo(w, rc);
            if ((rc = hist_add(h, c)) != WV_OK) {
                wv_checkpoint_free(c);
                return fail_msg(w, rc, "out of memory");
            }
            snprintf(next, sizeof next, "%s", wv_checkpoint_parent(c));
        }
    }
    /* Sorting moves entries, so the set (by index) is rebuilt after. */
    wv_checkpoint **order = malloc((h->n ? h->n : 1) * sizeof *order);
    if (order == NULL)
        return fail_msg(w, WV_NOMEM, "out of memory");
    memcpy(order, h->c, h->n * sizeof *order);
    sort_h = h;
    qsort(order, h->n, sizeof *order, cmp_newest);
    sort_h = NULL;
    size_t n = h->n;
    h->n = 0;
    memset(h->set, 0, h->set_cap * sizeof *h->set);
    for (size_t i = 0; i < n; i++)
        hist_add(h, order[i]); /* cannot fail: capacity is there */
    free(order);
    return WV_OK;
}

static void ref_badges(struct wbuf *b, const struct hist *h, const char *id)
{
    for (size_t i = 0; i < h->refs.n; i++)
        if (strcmp(h->refs.v[i].id, id) == 0) {
            wb_puts(b, h->refs.v[i].tag ? "<span class=\"ref tag\">tag "
                                        : "<span class=\"ref\">");
            wb_text(b, h->refs.v[i].name);
            wb_puts(b, "</span>");
        }
}

static void meta_brief(struct wbuf *b, const wv_checkpoint *c)
{
    for (size_t i = 0; i < wv_checkpoint_meta_count(c); i++) {
        const char *k, *v;
        wv_checkpoint_meta(c, i, &k, &v);
        wb_puts(b, i ? "<br>" : "");
        wb_textn(b, k, 60);
        wb_puts(b, "=");
        wb_textn(b, v, 60);
        if (strlen(v) > 60)
            wb_puts(b, "\xe2\x80\xa6");
    }
}

static void ref_table(struct web *w, struct wbuf *b, const char *title,
                      const char *cls, const struct cli_refs *l, bool tags)
{
    wb_printf(b, "<h2>%s</h2><table class=\"%s\"><tr><th>name</th>"
                 "<th>checkpoint</th></tr>", title, cls);
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].tag != tags)
            continue;
        wb_puts(b, "<tr><td>");
        wb_text(b, l->v[i].name);
        wb_puts(b, "</td><td>");
        link_ckpt(w, b, l->v[i].id);
        wb_puts(b, "</td></tr>");
    }
    wb_puts(b, "</table>\n");
}

int web_history(struct web *w, struct wbuf *b)
{
    struct hist h = {0};
    int rc = hist_load(w, &h);
    if (rc != WV_OK)
        goto out;
    wb_puts(b, "<section id=\"history\"><h1>History</h1>");
    ref_table(w, b, "Branches", "branches", &h.refs, false);
    ref_table(w, b, "Tags", "tags", &h.refs, true);
    if (!w->report)
        wb_puts(b, "<form action=\"/diff\" method=\"get\">Compare "
                   "<input name=\"a\" size=\"14\" placeholder=\"old ref\"> "
                   "with <input name=\"b\" size=\"14\" placeholder=\"new "
                   "ref\"> <button>diff</button></form>");
    wb_printf(b, "<h2>Checkpoints (%zu)</h2><table class=\"commits\"><tr>"
                 "<th>checkpoint</th><th>time (UTC)</th><th>branch</th>"
                 "<th>message</th><th>metadata</th><th>tensors</th>"
                 "<th>size</th><th>signer</th></tr>\n",
              h.n);
    for (size_t i = 0; i < h.n; i++) {
        const wv_checkpoint *c = h.c[i];
        char hb[32];
        cli_human_bytes(wv_checkpoint_total_bytes(c), hb, sizeof hb);
        wb_puts(b, "<tr class=\"commit\"><td>");
        link_ckpt(w, b, wv_checkpoint_id(c));
        wb_puts(b, " ");
        ref_badges(b, &h, wv_checkpoint_id(c));
        if (!w->report && wv_checkpoint_parent(c)[0])
            wb_printf(b, " <a href=\"/diff?a=%s&amp;b=%s\">diff</a>",
                      wv_checkpoint_parent(c), wv_checkpoint_id(c));
        wb_puts(b, "</td><td>");
        wb_text(b, wv_checkpoint_time(c));
        wb_puts(b, "</td><td>");
        wb_text(b, wv_checkpoint_branch(c));
        wb_puts(b, "</td><td class=\"msg\">");
        wb_text_ml(b, wv_checkpoint_message(c));
        wb_puts(b, "</td><td>");
        meta_brief(b, c);
        wb_printf(b, "</td><td class=\"num\">%zu</td><td class=\"num\">%s"
                     "</td><td class=\"id\">",
                  wv_checkpoint_tensor_count(c), hb);
        wb_textn(b, wv_checkpoint_signer(c), 16);
        wb_puts(b, "</td></tr>\n");
    }
    wb_puts(b, "</table></section>\n");
out:
    hist_release(&h);
    return rc;
}

/* ---- metrics ------------------------------------------------------------- */

static bool num_of(const char *v, double *out)
{
    if (v == NULL || !cli_is_number(v))
        return false;
    *out = strtod(v, NULL);
    return isfinite(*out);
}

/* min or max for a key: the page's ?mode, else by its name (accuracies
 * and scores are better high, losses and everything else low). */
static int mode_for(const struct web *w, const char *key)
{
    static const char *const high[] = {"acc", "score", "f1", "auc", "bleu",
                                       "precision", "recall", "reward"};
    if (w->mode >= 0)
        return w->mode;
    for (size_t i = 0; i < sizeof high / sizeof *high; i++)
        if (strstr(key, high[i]))
            return WV_PRUNE_MAX;
    return WV_PRUNE_MIN;
}

struct bests {
    struct {
        char *branch;
        char id[WV_ID_HEX];
    } v[64];
    size_t n;
};

static int take_best(void *arg, const wv_prune_decision *d)
{
    struct bests *bs = arg;
    if (strstr(d->reason, "best 1 of ") == NULL || bs->n == 64)
        return 0;
    bs->v[bs->n].branch = strdup(d->branch);
    snprintf(bs->v[bs->n].id, WV_ID_HEX, "%s", d->id);
    if (bs->v[bs->n].branch)
        bs->n++;
    return 0;
}

struct keys {
    char *v[16];
    size_t n;
};

int web_metrics(struct web *w, struct wbuf *b)
{
    struct hist h = {0};
    struct keys keys = {{0}, 0};
    struct bests best[16];
    size_t *idx = NULL, *pidx = NULL;
    double *xs = NULL, *ys = NULL;
    char **tips = NULL;
    int rc = hist_load(w, &h);
    memset(best, 0, sizeof best);
    if (rc != WV_OK)
        goto out;
    idx = malloc((h.n + 1) * sizeof *idx);
    pidx = malloc((h.n + 1) * sizeof *pidx);
    xs = malloc((h.n + 1) * sizeof *xs);
    ys = malloc((h.n + 1) * sizeof *ys);
    tips = calloc(h.n + 1, sizeof *tips);
    if (!idx || !pidx || !xs || !ys || !tips) {
        rc = fail_msg(w, WV_NOMEM, "out of memory");
        goto out;
    }
    /* The numeric keys, in order of first appearance (oldest first). */
    for (size_t i = h.n; i-- > 0 && keys.n < 16;) {
        for (size_t k = 0; k < wv_checkpoint_meta_count(h.c[i]); k++) {
            const char *key, *v;
            double d;
            wv_checkpoint_meta(h.c[i], k, &key, &v);
            bool have = false;
            for (size_t j = 0; j < keys.n; j++)
                have = have || strcmp(keys.v[j], key) == 0;
            if (have || !num_of(v, &d) || strcmp(key, "step") == 0 ||
                keys.n == 16)
                continue;
            if ((keys.v[keys.n] = strdup(key)) == NULL) {
                rc = fail_msg(w, WV_NOMEM, "out of memory");
                goto out;
            }
            keys.n++;
        }
    }
    /* The best commit per key and branch, as prune --keep-best 1 picks it
     * (dry run: nothing deleted, no lock). */
    for (size_t k = 0; k < keys.n; k++) {
        wv_prune_opts po = WV_PRUNE_OPTS_INIT;
        po.keep_best = 1;
        po.metric = keys.v[k];
        po.mode = mode_for(w, keys.v[k]);
        po.dry_run = 1;
        if ((rc = wv_repo_prune(w->r, &po, take_best, &best[k], NULL)) !=
            WV_OK) {
            fail_repo(w, rc);
            goto out;
        }
    }
    wb_puts(b, "<section id=\"metrics\"><h1>Metrics</h1>");
    if (keys.n == 0)
        wb_puts(b, "<p>No checkpoint has numeric metadata (commit with "
                   "<code>--meta val_loss=0.31</code>).</p>");
    for (size_t bi = 0; bi < h.refs.n && !h.refs.v[bi].tag; bi++) {
        const char *br = h.refs.v[bi].name;
        /* this branch's commits, oldest first */
        size_t m = 0;
        for (size_t i = h.n; i-- > 0;)
            if (strcmp(wv_checkpoint_branch(h.c[i]), br) == 0)
                idx[m++] = i;
        bool header = false;
        for (size_t k = 0; k < keys.n; k++) {
            size_t np = 0;
            bool by_step = true;
            long bp = -1;
            const char *bid = NULL;
            for (size_t j = 0; j < best[k].n; j++)
                if (strcmp(best[k].v[j].branch, br) == 0)
                    bid = best[k].v[j].id;
            for (size_t j = 0; j < m; j++) {
                double y, s;
                if (!num_of(wv_checkpoint_get_meta(h.c[idx[j]], keys.v[k]),
                            &y))
                    continue;
                if (!num_of(wv_checkpoint_get_meta(h.c[idx[j]], "step"), &s))
                    by_step = false;
                ys[np] = y;
                xs[np] = by_step ? s : 0;
                pidx[np] = idx[j];
                np++;
            }
            if (np == 0)
                continue;
            if (!header) {
                wb_puts(b, "<h2>Branch ");
                wb_text(b, br);
                wb_puts(b, "</h2>");
                header = true;
            }
            for (size_t j = 0; j < np; j++) {
                const wv_checkpoint *c = h.c[pidx[j]];
                if (!by_step)
                    xs[j] = (double)(j + 1);
                if (bid && strcmp(wv_checkpoint_id(c), bid) == 0)
                    bp = (long)j;
                char tip[200];
                snprintf(tip, sizeof tip, "%.12s %s=%.40s%s%.40s",
                         wv_checkpoint_id(c), keys.v[k],
                         wv_checkpoint_get_meta(c, keys.v[k]),
                         by_step ? " step=" : "",
                         by_step ? wv_checkpoint_get_meta(c, "step") : "");
                free(tips[j]);
                tips[j] = strdup(tip);
            }
            wb_puts(b, "<figure class=\"metric\" data-key=\"");
            wb_text(b, keys.v[k]);
            wb_puts(b, "\" data-branch=\"");
            wb_text(b, br);
            wb_printf(b, "\" data-points=\"%zu\"><figcaption><b>", np);
            wb_text(b, keys.v[k]);
            wb_printf(b, "</b> over %s, %zu checkpoints. ",
                      by_step ? "step" : "commits (oldest first)", np);
            if (bp >= 0) {
                const wv_checkpoint *c = h.c[pidx[bp]];
                wb_puts(b, "Best: ");
                link_ckpt(w, b, wv_checkpoint_id(c));
                wb_puts(b, " (");
                wb_text(b, keys.v[k]);
                wb_puts(b, "=");
                wb_text(b, wv_checkpoint_get_meta(c, keys.v[k]));
                wb_printf(b, "), the %s, as <code>wv prune --keep-best 1 "
                             "--metric ",
                          mode_for(w, keys.v[k]) == WV_PRUNE_MAX ? "highest"
                                                                  : "lowest");
                wb_text(b, keys.v[k]);
                wb_printf(b, " --mode %s</code> keeps it.",
                          mode_for(w, keys.v[k]) == WV_PRUNE_MAX ? "max"
                                                                  : "min");
            }
            wb_puts(b, "</figcaption>");
            svg_line(b, by_step ? "step" : "commit", keys.v[k], xs, ys,
                     (const char *const *)tips, np, bp);
            wb_puts(b, "</figure>\n");
        }
    }
    wb_puts(b, "</section>\n");
out:
    for (size_t k = 0; k < keys.n; k++)
        free(keys.v[k]);
    for (size_t k = 0; k < 16; k++)
        for (size_t j = 0; j < best[k].n; j++)
            free(best[k].v[j].branch);
    if (tips)
        for (size_t i = 0; i <= h.n; i++)
            free(tips[i]);
    free(tips);
    free(idx);
    free(pidx);
    free(xs);
    free(ys);
    hist_release(&h);
    return rc;
}

/* ---- a checkpoint and its tensors ---------------------------------------- */

static uint64_t params_of(const wv_checkpoint *c, size_t i)
{
    uint64_t p = 1;
    const uint64_t *s = wv_checkpoint_tensor_shape(c, i);
    for (int d = 0; d < wv_checkpoint_tensor_ndim(c, i); d++)
        p *= s[d];
    return p;
}

static long tensor_index(const wv_checkpoint *c, const char *name)
{
    for (size_t i = 0; i < wv_checkpoint_tensor_count(c); i++)
        if (strcmp(wv_checkpoint_tensor_name(c, i), name) == 0)
            return (long)i;
    return -1;
}

/* Statistics of tensor `name` of checkpoint id (cached). */
static int tensor_stats(struct web *w, const char *id, const char *name,
                        wv_dtype dt, uint64_t nbytes, struct web_stats *st)
{
    const struct web_stats *hit = cache_get(w, id, name);
    if (hit) {
        *st = *hit;
        return WV_OK;
    }
    if (!web_dtype_numeric(dt))
        return fail_msg(w, WV_UNSUPPORTED, "no statistics for this dtype");
    int rc = web_stats_stream(w->r, id, name, dt, nbytes, st);
    if (rc == WV_UNSUPPORTED)
        return fail_msg(w, rc, "the tensor cannot be read as numbers");
    if (rc != WV_OK)
        return fail_repo(w, rc);
    cache_put(w, id, name, st);
    return WV_OK;
}

static void stats_table(struct wbuf *b, const struct web_stats *st)
{
    wb_printf(b, "<table class=\"stats\"><tr><th>elements</th><td class="
                 "\"num\">%llu</td></tr><tr><th>min</th><td class=\"num\">",
              (unsigned long long)st->n);
    wb_num(b, st->min);
    wb_puts(b, "</td></tr><tr><th>max</th><td class=\"num\">");
    wb_num(b, st->max);
    wb_puts(b, "</td></tr><tr><th>mean</th><td class=\"num\">");
    wb_num(b, st->mean);
    wb_puts(b, "</td></tr><tr><th>std</th><td class=\"num\">");
    wb_num(b, st->std);
    wb_printf(b, "</td></tr><tr><th>zeros</th><td class=\"num\">%.4f"
                 "</td></tr>",
              st->n ? (double)st->zeros / (double)st->n : 0.0);
    if (st->nonfinite)
        wb_printf(b, "<tr><th>NaN/inf</th><td class=\"num\">%llu</td></tr>",
                  (unsigned long long)st->nonfinite);
    wb_puts(b, "</table>");
    if (st->n > st->nonfinite) {
        svg_hist(b, st->bins, st->min, st->max);
        /* how exact the histogram is (stats.c) and what was read */
        wb_printf(b, "<p class=\"note hist-note\" data-res=\"%.17g\" "
                     "data-chunks=\"%llu\" data-bytes=\"%llu\">%d bins "
                     "over [min, max]; ",
                  st->res, (unsigned long long)st->chunks,
                  (unsigned long long)st->bytes, WEB_BINS);
        if (st->res == 0) {
            wb_puts(b, "every element is in its bin.");
        } else {
            wb_puts(b, "every element is counted in the bin of a value "
                       "within ");
            wb_num(b, st->res);
            wb_puts(b, " of it (values are grouped by sign, exponent and 7 "
                       "mantissa bits first: within 0.8% of their "
                       "magnitude).");
        }
        if (st->chunks)
            wb_printf(b, " Read in one pass: %llu chunk%s, %llu bytes, on "
                         "%d thread%s.",
                      (unsigned long long)st->chunks,
                      st->chunks == 1 ? "" : "s",
                      (unsigned long long)st->bytes, st->workers,
                      st->workers == 1 ? "" : "s");
        wb_puts(b, "</p>");
    }
}

static void ckpt_head(struct web *w, struct wbuf *b, const wv_checkpoint *c)
{
    char hb[32];
    cli_human_bytes(wv_checkpoint_total_bytes(c), hb, sizeof hb);
    wb_printf(b, "<table class=\"head\"><tr><th>checkpoint</th><td class="
                 "\"id\">%s</td></tr><tr><th>parent</th><td>",
              wv_checkpoint_id(c));
    if (wv_checkpoint_parent(c)[0])
        link_ckpt(w, b, wv_checkpoint_parent(c));
    else
        wb_puts(b, "(none)");
    wb_puts(b, "</td></tr><tr><th>time</th><td>");
    wb_text(b, wv_checkpoint_time(c));
    wb_puts(b, "</td></tr><tr><th>branch</th><td>");
    wb_text(b, wv_checkpoint_branch(c));
    wb_puts(b, "</td></tr><tr><th>message</th><td class=\"msg\">");
    wb_text_ml(b, wv_checkpoint_message(c));
    wb_puts(b, "</td></tr><tr><th>signer</th><td class=\"id\">");
    wb_text(b, wv_checkpoint_signer(c)[0] ? wv_checkpoint_signer(c)
                                          : "(unsigned)");
    wb_printf(b, "</td></tr><tr><th>size</th><td>%zu tensors, %s</td></tr>"
                 "</table>",
              wv_checkpoint_tensor_count(c), hb);
}

/* ---- chunks shared with the parent ------------------------------------- */

/* Every chunk id of a checkpoint (collect), then, per tensor of its child
 * in order, how many of its chunks are among them (count). */
struct chunk_share {
    unsigned char (*ids)[32];
    size_t n, cap;
    size_t *shared, *total; /* per tensor of the child */
    size_t n_tensors, at;
    bool overflow;
};

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static int collect_ids(void *arg, const char *name, uint64_t chunk_size,
                       size_t n, const unsigned char (*ids)[32])
{
    struct chunk_share *cs = arg;
    (void)name;
    (void)chunk_size;
    if (n > cs->cap - cs->n) {
        size_t cap = cs->cap ? cs->cap : 256;
        while (cap - cs->n < n) {
            if (cap > SIZE_MAX / 64)
                return WV_NOMEM;
            cap *= 2;
        }
        unsigned char(*v)[32] = realloc(cs->ids, cap * 32);
        if (v == NULL)
            return WV_NOMEM;
        cs->ids = v;
        cs->cap = cap;
    }
    memcpy(cs->ids[cs->n], ids, n * 32);
    cs->n += n;
    return WV_OK;
}

static int count_shared(void *arg, const char *name, uint64_t chunk_size,
                        size_t n, const unsigned char (*ids)[32])
{
    struct chunk_share *cs = arg;
    size_t hit = 0;
    (void)name;
    (void)chunk_size;
    if (cs->at >= cs->n_tensors) {
        cs->overflow = true;
        return WV_OK;
    }
    for (size_t k = 0; k < n; k++)
        hit += bsearch(ids[k], cs->ids, cs->n, 32, cmp_id) != NULL;
    cs->shared[cs->at] = hit;
    cs->total[cs->at] = n;
    cs->at++;
    return WV_OK;
}

/* Fill cs->shared/total for the tensors of c (false: no column, as for a
 * first checkpoint or one whose parent was pruned). */
static bool share_with_parent(struct web *w, const wv_checkpoint *c,
                              struct chunk_share *cs)
{
    memset(cs, 0, sizeof *cs);
    if (!wv_checkpoint_parent(c)[0])
        return false;
    cs->n_tensors = wv_checkpoint_tensor_count(c);
    cs->shared = calloc(cs->n_tensors + 1, sizeof *cs->shared);
    cs->total = calloc(cs->n_tensors + 1, sizeof *cs->total);
    bool ok = cs->shared && cs->total &&
              wv_repo_tensor_chunks(w->r, wv_checkpoint_parent(c),
                                    collect_ids, cs) == WV_OK;
    if (ok) {
        if (cs->n > 0)
            qsort(cs->ids, cs->n, 32, cmp_id);
        ok = wv_repo_tensor_chunks(w->r, wv_checkpoint_id(c), count_shared,
                                   cs) == WV_OK &&
             cs->at == cs->n_tensors && !cs->overflow;
    }
    free(cs->ids);
    cs->ids = NULL;
    return ok;
}

static void share_release(struct chunk_share *cs)
{
    free(cs->ids);
    free(cs->shared);
    free(cs->total);
}

int web_checkpoint(struct web *w, struct wbuf *b, const char *ref,
                   bool with_stats)
{
    wv_checkpoint *c = NULL;
    struct chunk_share cs;
    int rc = wv_repo_stat(w->r, ref, &c);
    if (rc != WV_OK)
        return fail_repo(w, rc);
    const char *id = wv_checkpoint_id(c);
    bool pd = share_with_parent(w, c, &cs);
    wb_printf(b, "<section class=\"checkpoint\" id=\"c-%s\"><h1>Checkpoint "
                 "<span class=\"id\">%.12s</span></h1>",
              id, id);
    ckpt_head(w, b, c);
    wb_puts(b, "<h2>Metadata</h2><table class=\"meta\"><tr><th>key</th>"
               "<th>value</th></tr>");
    for (size_t i = 0; i < wv_checkpoint_meta_count(c); i++) {
        const char *k, *v;
        wv_checkpoint_meta(c, i, &k, &v);
        wb_puts(b, "<tr><td>");
        wb_text(b, k);
        bool block = strlen(v) > 80 || strchr(v, '\n') || v[0] == '{' ||
                     v[0] == '[';
        wb_puts(b, block ? "</td><td><pre>" : "</td><td>");
        wb_text_ml(b, v);
        wb_puts(b, block ? "</pre></td></tr>" : "</td></tr>");
    }
    wb_puts(b, "</table>");
    size_t n = wv_checkpoint_tensor_count(c);
    wb_printf(b, "<h2>Tensors (%zu)</h2><table class=\"tensors\"><tr>"
                 "<th>name</th><th>dtype</th><th>shape</th><th>params</th>"
                 "<th>bytes</th>%s<th>statistics</th></tr>\n",
              n, pd ? "<th title=\"chunks of the tensor stored once for "
                      "both this checkpoint and its parent, of all its "
                      "chunks\">chunks shared with parent</th>"
                    : "");
    for (size_t i = 0; i < n; i++) {
        const char *name = wv_checkpoint_tensor_name(c, i);
        char shape[256];
        cli_ckpt_shape(c, i, shape, sizeof shape);
        wb_puts(b, "<tr class=\"tensor\"><td class=\"tname\">");
        wb_text(b, name);
        wb_printf(b, "</td><td>%s</td><td>%s</td><td class=\"num\">%llu</td>"
                     "<td class=\"num\">%llu</td>",
                  wv_dtype_name(wv_checkpoint_tensor_dtype(c, i)), shape,
                  (unsigned long long)params_of(c, i),
                  (unsigned long long)wv_checkpoint_tensor_nbytes(c, i));
        if (pd)
            wb_printf(b, "<td class=\"num shared\" data-shared=\"%zu\" "
                         "data-chunks=\"%zu\">%zu / %zu</td>",
                      cs.shared[i], cs.total[i], cs.shared[i], cs.total[i]);
        wb_puts(b, "<td>");
        if (!web_dtype_numeric(wv_checkpoint_tensor_dtype(c, i))) {
            wb_puts(b, "-");
        } else if (with_stats) {
            struct web_stats st;
            if (tensor_stats(w, id, name, wv_checkpoint_tensor_dtype(c, i),
                             wv_checkpoint_tensor_nbytes(c, i),
                             &st) == WV_OK) {
                wb_puts(b, "<details><summary>min ");
                wb_num(b, st.min);
                wb_puts(b, ", max ");
                wb_num(b, st.max);
                wb_puts(b, "</summary>");
                stats_table(b, &st);
                wb_puts(b, "</details>");
            } else {
                wb_text(b, w->err);
                w->err[0] = '\0';
            }
        } else {
            wb_printf(b, "<a href=\"/tensor?c=%s&amp;t=", id);
            wb_url(b, name);
            wb_puts(b, "\">statistics</a>");
        }
        wb_puts(b, "</td></tr>\n");
    }
    wb_puts(b, "</table></section>\n");
    share_release(&cs);
    wv_checkpoint_free(c);
    return WV_OK;
}

int web_tensor(struct web *w, struct wbuf *b, const char *ref,
               const char *tensor)
{
    wv_checkpoint *c = NULL;
    struct web_stats st;
    int rc = wv_repo_stat(w->r, ref, &c);
    if (rc != WV_OK)
        return fail_repo(w, rc);
    long i = tensor_index(c, tensor);
    if (i < 0) {
        rc = fail_msg(w, WV_NOTFOUND, "the checkpoint has no tensor of "
                                      "that name");
        goto out;
    }
    rc = tensor_stats(w, wv_checkpoint_id(c), tensor,
                      wv_checkpoint_tensor_dtype(c, (size_t)i),
                      wv_checkpoint_tensor_nbytes(c, (size_t)i), &st);
    if (rc != WV_OK)
        goto out;
    char shape[256];
    cli_ckpt_shape(c, (size_t)i, shape, sizeof shape);
    wb_puts(b, "<section class=\"tensor-stats\"><h1>Tensor <span "
               "class=\"tname\">");
    wb_text(b, tensor);
    wb_puts(b, "</span></h1><p>of checkpoint ");
    link_ckpt(w, b, wv_checkpoint_id(c));
    wb_printf(b, ": %s %s</p>",
              wv_dtype_name(wv_checkpoint_tensor_dtype(c, (size_t)i)), shape);
    stats_table(b, &st);
    wb_puts(b, "</section>\n");
out:
    wv_checkpoint_free(c);
    return rc;
}

/* ---- diff ---------------------------------------------------------------- */

static const wv_diff *sort_d;
static int sort_by; /* 0: rel_l2, 1: max_abs */

static double fig(const wv_diff_entry *e)
{
    double v = sort_by ? e->max_abs : e->rel_l2;
    return isnan(v) ? INFINITY : v;
}

static int cmp_fig(const void *x, const void *y)
{
    double a = fig(wv_diff_entry_at(sort_d, *(const size_t *)x));
    double b = fig(wv_diff_entry_at(sort_d, *(const size_t *)y));
    return a < b ? 1 : a > b ? -1 : 0;
}

static const char *kind_word(wv_diff_kind k)
{
    return k == WV_DIFF_ADDED     ? "added"
           : k == WV_DIFF_REMOVED ? "removed"
           : k == WV_DIFF_CHANGED ? "changed"
                                  : "unchanged";
}

/* The histogram of b - a for one tensor compared in d. */
static int diff_hist(struct web *w, struct wbuf *b, const wv_diff *d,
                     const wv_diff_entry *e)
{
    const wv_checkpoint *ca = wv_diff_a(d), *cb = wv_diff_b(d);
    wv_model *ma = NULL, *mb = NULL;
    wv_checkout_opts co = WV_CHECKOUT_OPTS_INIT;
    const char *names[1] = {e->name};
    struct web_stats st;
    co.names = names;
    co.n_names = 1;
    int rc = wv_repo_checkout(w->r, wv_checkpoint_id(ca), &co, &ma);
    if (rc == WV_OK)
        rc = wv_repo_checkout(w->r, wv_checkpoint_id(cb), &co, &mb);
    if (rc != WV_OK) {
        fail_repo(w, rc);
        goto out;
    }
    const wv_tensor *ta = wv_model_find(ma, e->name);
    const wv_tensor *tb = wv_model_find(mb, e->name);
    if (!ta || !tb || wv_tensor_dtype(ta) != wv_tensor_dtype(tb) ||
        wv_tensor_numel(ta) != wv_tensor_numel(tb)) {
        rc = fail_msg(w, WV_NOTFOUND, "the tensor differs in dtype or shape");
        goto out;
    }
    rc = web_stats_compute(wv_tensor_dtype(ta), wv_tensor_data(ta),
                           wv_tensor_data(tb), wv_tensor_numel(ta), &st);
    if (rc == WV_UNSUPPORTED) {
        /* a block type (GGUF quants): the table above has its figures;
         * the page goes on without a histogram */
        wb_puts(b, "<p class=\"note\">No histogram of differences for ");
        wb_text(b, e->name);
        wb_printf(b, ": %s values are not read element by element here.</p>",
                  wv_dtype_name(wv_tensor_dtype(ta)));
        rc = WV_OK;
        goto out;
    }
    if (rc != WV_OK) {
        fail_msg(w, rc, rc == WV_NOMEM ? "out of memory"
                                       : "the tensor cannot be read as numbers");
        goto out;
    }
    wb_puts(b, "<h2>Differences b - a of <span class=\"tname\">");
    wb_text(b, e->name);
    wb_puts(b, "</span></h2><div class=\"diffhist\">");
    stats_table(b, &st);
    wb_puts(b, "</div>");
out:
    wv_model_free(ma);
    wv_model_free(mb);
    return rc;
}

int web_diff_of(struct web *w, struct wbuf *b, const wv_diff *d,
                const char *tensor)
{
    const wv_checkpoint *ca = wv_diff_a(d), *cb = wv_diff_b(d);
    size_t n = wv_diff_count(d), nc = 0, count[4] = {0};
    size_t *ord = malloc((n ? n : 1) * sizeof *ord);
    const char **labels = malloc((n ? n : 1) * sizeof *labels);
    double *v = malloc((n ? n : 1) * sizeof *v);
    int rc = WV_OK;
    if (!ord || !labels || !v) {
        rc = fail_msg(w, WV_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const wv_diff_entry *e = wv_diff_entry_at(d, i);
        count[e->kind]++;
        if (e->compared)
            ord[nc++] = i;
    }
    wb_puts(b, "<section class=\"diff\" id=\"diff\"><h1>Diff</h1><table "
               "class=\"head\"><tr><th></th><th>checkpoint</th><th>time</th>"
               "<th>branch</th><th>message</th></tr>");
    for (int s = 0; s < 2; s++) {
        const wv_checkpoint *c = s ? cb : ca;
        wb_printf(b, "<tr><th>%s</th><td>", s ? "b (new)" : "a (old)");
        link_ckpt(w, b, wv_checkpoint_id(c));
        wb_puts(b, "</td><td>");
        wb_text(b, wv_checkpoint_time(c));
        wb_puts(b, "</td><td>");
        wb_text(b, wv_checkpoint_branch(c));
        wb_puts(b, "</td><td class=\"msg\">");
        wb_text_ml(b, wv_checkpoint_message(c));
        wb_puts(b, "</td></tr>");
    }
    wb_printf(b, "</table><p class=\"summary\">%zu added, %zu removed, %zu "
                 "changed, %zu unchanged</p>",
              count[WV_DIFF_ADDED], count[WV_DIFF_REMOVED],
              count[WV_DIFF_CHANGED], count[WV_DIFF_UNCHANGED]);
    sort_d = d;
    for (sort_by = 0; sort_by < 2 && nc; sort_by++) {
        qsort(ord, nc, sizeof *ord, cmp_fig);
        for (size_t i = 0; i < nc; i++) {
            const wv_diff_entry *e = wv_diff_entry_at(d, ord[i]);
            labels[i] = e->name;
            v[i] = sort_by ? e->max_abs : e->rel_l2;
        }
        svg_bars(b, sort_by ? "max |a - b| per tensor"
                            : "relative L2 change ||a - b|| / ||a|| per "
                              "tensor",
                 labels, v, nc);
    }
    sort_by = 0;
    if (nc)
        qsort(ord, nc, sizeof *ord, cmp_fig);
    sort_d = NULL;
    wb_puts(b, "<table class=\"difftab\"><tr><th>tensor</th><th>status</th>"
               "<th>dtype</th><th>shape</th><th>rel L2</th><th>max|a-b|</th>"
               "<th>elements differing</th></tr>\n");
    for (size_t i = 0; i < n; i++) {
        const wv_diff_entry *e = wv_diff_entry_at(d, i);
        const wv_checkpoint *c = e->b >= 0 ? cb : ca;
        size_t ci = (size_t)(e->b >= 0 ? e->b : e->a);
        char shape[256];
        cli_ckpt_shape(c, ci, shape, sizeof shape);
        wb_puts(b, "<tr class=\"dt\"><td class=\"tname\">");
        if (e->compared && !w->report) {
            wb_printf(b, "<a href=\"/diff?a=%s&amp;b=%s&amp;t=",
                      wv_checkpoint_id(ca), wv_checkpoint_id(cb));
            wb_url(b, e->name);
            wb_puts(b, "\">");
            wb_text(b, e->name);
            wb_puts(b, "</a>");
        } else {
            wb_text(b, e->name);
        }
        wb_printf(b, "</td><td>%s</td><td>%s</td><td>%s</td>",
                  kind_word(e->kind),
                  wv_dtype_name(wv_checkpoint_tensor_dtype(c, ci)), shape);
        if (e->compared) {
            wb_puts(b, "<td class=\"num\">");
            wb_num(b, e->rel_l2);
            wb_puts(b, "</td><td class=\"num\">");
            wb_num(b, e->max_abs);
            wb_printf(b, "</td><td class=\"num\">%llu</td></tr>\n",
                      (unsigned long long)e->n_differ);
        } else {
            wb_puts(b, "<td></td><td></td><td></td></tr>\n");
        }
    }
    wb_puts(b, "</table>");
    /* the histogram: the tensor asked for, else the most changed */
    const wv_diff_entry *pick = nc ? wv_diff_entry_at(d, ord[0]) : NULL;
    if (tensor) {
        pick = NULL;
        for (size_t i = 0; i < n; i++) {
            const wv_diff_entry *e = wv_diff_entry_at(d, i);
            if (strcmp(e->name, tensor) == 0)
                pick = e;
        }
        if (pick == NULL || !pick->compared) {
            rc = fail_msg(w, WV_NOTFOUND, "no tensor of that name was "
                                          "compared by value in this diff");
            goto out;
        }
    }
    if (pick && (rc = diff_hist(w, b, d, pick)) != WV_OK)
        goto out;
    wb_puts(b, "</section>\n");
out:
    free(ord);
    free(labels);
    free(v);
    return rc;
}

int web_diff(struct web *w, struct wbuf *b, const char *a, const char *bref,
             const char *tensor)
{
    wv_diff *d = NULL;
    int rc = wv_repo_diff(w->r, a, bref, 0, &d);
    if (rc != WV_OK)
        return fail_repo(w, rc);
    rc = web_diff_of(w, b, d, tensor);
    wv_diff_free(d);
    return rc;
}

int web_diff_html(wv_repo *r, const char *uri, const wv_diff *d,
                  const char *path)
{
    struct web w = {.r = r, .uri = uri, .report = true, .mode = -1};
    struct wbuf b = {0};
    web_open(&w, &b, "wv diff");
    int rc = web_diff_of(&w, &b, d, NULL);
    if (rc != WV_OK) {
        fprintf(stderr, "wv: %s: %s\n", cli_q(path), cli_text(w.err));
    } else {
        web_close(&b);
        rc = web_write_file(path, &b);
    }
    wb_release(&b);
    web_cache_free(w.cache);
    return rc;
}
