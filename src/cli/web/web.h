/*
 * web.h -- what the files of the web view (wv serve, wv report,
 * wv diff --html) share: an output buffer with HTML escaping (html.c),
 * SVG charts (svg.c), tensor statistics (stats.c) and the pages (pages.c).
 * Like the rest of the `wv` command it uses the public API only.
 *
 * Every string that comes from a repository (names, keys, values,
 * messages, refs) reaches the page through wb_text/wb_text_ml, which
 * escape control characters as the CLI does (wv_escape) and then the five
 * HTML metacharacters; URLs are built with wb_url, which percent-encodes
 * everything but unreserved characters. No page carries a script.
 */
#ifndef WV_CLI_WEB_H
#define WV_CLI_WEB_H

#include "../cli.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- html.c: a growing buffer ------------------------------------------ */
struct wbuf {
    char *p;
    size_t n, cap;
    bool oom; /* an append failed: the content is incomplete */
};

void wb_put(struct wbuf *b, const char *s, size_t n);
void wb_puts(struct wbuf *b, const char *s);
void wb_printf(struct wbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Repository text as HTML text or attribute value: controls escaped
 * (\n, \xNN), then & < > " ' as entities. _n: at most n bytes. */
void wb_text(struct wbuf *b, const char *s);
void wb_textn(struct wbuf *b, const char *s, size_t n);
/* The same keeping newlines (for messages, shown pre-wrapped). */
void wb_text_ml(struct wbuf *b, const char *s);
/* Percent-encoded (RFC 3986 unreserved kept), for a query value. */
void wb_url(struct wbuf *b, const char *s);
/* A number as text ("1.5", "nan", "inf"). */
void wb_num(struct wbuf *b, double v);
void wb_release(struct wbuf *b);

/* A ref as the pages accept it from a URL: 1..100 of [A-Za-z0-9._-]
 * (branch and tag names, "latest", hex ids and prefixes). */
bool web_valid_ref(const char *s);

/* ---- stats.c: per-tensor statistics ------------------------------------ */
enum { WEB_BINS = 40 };

struct web_stats {
    uint64_t n;        /* elements                                    */
    uint64_t nonfinite; /* NaN and infinities (left out of the rest)  */
    uint64_t zeros;
    double min, max, mean, std;
    uint64_t bins[WEB_BINS]; /* over [min, max]                        */
    /* Every element is counted in the bin of a value within res of it
     * (0: the histogram is exact; see stats.c). */
    double res;
    /* Streamed (web_stats_stream): the chunks and bytes the one pass
     * read, and how many accumulators (threads at once) it used. */
    uint64_t chunks, bytes;
    int workers;
};

/* 1 if tensors of this dtype can be read as numbers here. */
bool web_dtype_numeric(wv_dtype dt);
/* Statistics of n elements of dtype dt at a (or, with b, of b - a),
 * in one pass, split over the cores for large tensors. WV_UNSUPPORTED
 * for a dtype that is not numeric here, WV_NOMEM. */
int web_stats_compute(wv_dtype dt, const void *a, const void *b, uint64_t n,
                      struct web_stats *out);
/* The same statistics of tensor `name` (nbytes bytes) of checkpoint id,
 * streamed from the repository chunk by chunk in one pass, each chunk
 * processed on the library's reader threads as it is checked: memory
 * stays bounded whatever the tensor's size. wv status; on a repository
 * failure wv_repo_errmsg(r) says why. */
int web_stats_stream(wv_repo *r, const char *id, const char *name,
                     wv_dtype dt, uint64_t nbytes, struct web_stats *out);

/* ---- svg.c: charts ------------------------------------------------------ */
/* A line chart of y over x (n points, x ascending), the point `best`
 * (-1: none) marked. Labels name the axes; tips[i] (may be NULL) is the
 * tooltip of point i (plain text, escaped here). */
void svg_line(struct wbuf *b, const char *xlabel, const char *ylabel,
              const double *x, const double *y, const char *const *tips,
              size_t n, long best);
/* Horizontal bars, one per label, in the given order, scaled to the
 * largest finite value. */
void svg_bars(struct wbuf *b, const char *title, const char *const *labels,
              const double *v, size_t n);
/* A histogram of WEB_BINS bins over [lo, hi]. */
void svg_hist(struct wbuf *b, const uint64_t *bins, double lo, double hi);

/* ---- pages.c ------------------------------------------------------------ */
struct web_cache; /* statistics computed so far (pages.c) */

struct web {
    wv_repo *r;
    const char *uri;
    bool report;          /* one file: links are #anchors          */
    int mode;             /* -1: per key by name; else WV_PRUNE_MIN/MAX */
    struct web_cache *cache;
    /* report mode: the branch heads, which have a section each */
    const struct cli_refs *anchors;
    char err[512];        /* the message of a failed page           */
};

/* Document head (CSS inline) and navigation; and its end. */
void web_open(struct web *w, struct wbuf *b, const char *title);
void web_close(struct wbuf *b);
/* The pages' bodies. Each returns a wv status; on failure w->err says
 * why (and nothing useful was added to b). */
int web_history(struct web *w, struct wbuf *b);
int web_metrics(struct web *w, struct wbuf *b);
int web_checkpoint(struct web *w, struct wbuf *b, const char *ref,
                   bool with_stats);
int web_tensor(struct web *w, struct wbuf *b, const char *ref,
               const char *tensor);
int web_diff(struct web *w, struct wbuf *b, const char *a, const char *bref,
             const char *tensor);
/* The diff page of a comparison already made (wv diff --html). */
int web_diff_of(struct web *w, struct wbuf *b, const wv_diff *d,
                const char *tensor);
void web_error(struct wbuf *b, const char *what, const char *msg);
void web_cache_free(struct web_cache *c);

/* Write b to path atomically (a temporary file renamed over it). */
int web_write_file(const char *path, const struct wbuf *b);
/* wv diff --html FILE: the diff page of d, as one file. */
int web_diff_html(wv_repo *r, const char *uri, const wv_diff *d,
                  const char *path);

#endif
