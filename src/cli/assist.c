/*
 * assist.c -- what helps a person at the terminal, shared by the `wv`
 * commands: "did you mean" for a misspelled command, option or
 * subcommand (by edit distance, the options taken from the command's own
 * help text), dtype names as people type them, the save of convert and
 * checkout with the one-line summary after it, and the progress bar drawn
 * on a terminal.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- suggestions -------------------------------------------------------- */

/* Optimal string alignment distance (Levenshtein plus transpositions of
 * neighbours), for words up to 63 characters; longer ones are "far". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > 63 || nb > 63)
        return 64;
    size_t d[64][64];
    for (size_t i = 0; i <= na; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= na; i++) {
        for (size_t j = 1; j <= nb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[na][nb];
}

const char *cli_closest(const char *word, const char *const *cands,
                        size_t n)
{
    const char *best = NULL, *prefix_of = NULL;
    size_t best_d = 64, n_prefix = 0;
    const char *w = word;
    while (*w == '-')
        w++;
    size_t wl = strlen(w);
    if (wl == 0)
        return NULL;
    /* A close misspelling: at most 1 edit in a short word, 2 in one of 6
     * or more characters. */
    size_t limit = wl >= 6 ? 2 : 1;
    for (size_t i = 0; i < n; i++) {
        const char *c = cands[i];
        while (*c == '-')
            c++;
        if (wl >= 3 && strncmp(c, w, wl) == 0 && c[wl] != '\0') {
            prefix_of = cands[i];
            n_prefix++;
        }
        size_t dist = edit_distance(w, c);
        /* "-dtype" for "--dtype": the dashes count as one edit */
        if (strcmp(w, c) == 0)
            dist = 1;
        if (dist < best_d) {
            best_d = dist;
            best = cands[i];
        }
    }
    const char *r = best && best_d <= limit ? best
                    : n_prefix == 1       ? prefix_of
                                          : NULL;
    /* never "did you mean" the word itself */
    return r && strcmp(r, word) != 0 ? r : NULL;
}

/* The options a help text names: every "-x" or "--word" on its usage
 * lines ("usage: wv ..." up to the first empty line) and on the lines
 * that describe an option (indented, first non-blank character '-'; a
 * line of prose that happens to start with an option is not indented). */
static size_t help_options(const char *help, char (*out)[40], size_t cap)
{
    size_t n = 0;
    bool in_usage = false;
    for (const char *line = help; *line && n < cap;) {
        size_t len = strcspn(line, "\n");
        const char *p = line;
        while (p < line + len && *p == ' ')
            p++;
        /* the usage block runs to the first empty line */
        bool usage = strncmp(p, "usage:", 6) == 0 ||
                     (in_usage && p < line + len);
        bool optline = *p == '-' && p > line; /* indented, not prose */
        in_usage = usage;
        for (const char *q = p; (usage || optline) && q < line + len; q++) {
            if (*q != '-' || (q > line && q[-1] != ' ' && q[-1] != '[' &&
                              q[-1] != '(' && q[-1] != '|' && q[-1] != ','))
                continue;
            size_t k = 0;
            while (q + k < line + len && k < 39 &&
                   (q[k] == '-' || (q[k] >= 'a' && q[k] <= 'z') ||
                    (q[k] >= '0' && q[k] <= '9')))
                k++;
            bool dup = false;
            for (size_t i = 0; i < n && !dup; i++)
                dup = strlen(out[i]) == k && memcmp(out[i], q, k) == 0;
            if (k >= 2 && q[k - 1] != '-' && n < cap && !dup) {
                memcpy(out[n], q, k);
                out[n][k] = '\0';
                n++;
            }
            q += k ? k - 1 : 0;
        }
        line += len + (line[len] == '\n');
    }
    return n;
}

int cli_unknown_option(const char *cmd, const char *help, const char *opt)
{
    char found[96][40];
    const char *cands[100];
    size_t n = help_options(help, found, 96);
    for (size_t i = 0; i < n; i++)
        cands[i] = found[i];
    cands[n++] = "--help";
    cands[n++] = "--key-file";
    const char *s = cli_closest(opt, cands, n);
    if (s)
        return cli_usage(cmd, "unknown option '%s'; did you mean '%s'?", opt,
                         s);
    return cli_usage(cmd, "unknown option '%s'", opt);
}

int cli_unknown_word(const char *cmd, const char *what, const char *word,
                     const char *const *cands, size_t n)
{
    const char *s = cli_closest(word, cands, n);
    if (s)
        return cli_usage(cmd, "unknown %s '%s'; did you mean '%s'?", what,
                         word, s);
    return cli_usage(cmd, "unknown %s '%s'", what, word);
}

/* ---- dtypes -------------------------------------------------------------- */

int cli_cast_dtype(const char *cmd, const char *v, wv_dtype *out)
{
    if (wv_dtype_parse(v, out) == WV_OK &&
        (*out == WV_F32 || *out == WV_F16 || *out == WV_BF16))
        return 0;
    *out = WV_DTYPE_INVALID;
    return cli_usage(cmd, "--dtype must be F32, F16 or BF16 (or f32, fp32, "
                          "float, f16, fp16, half, bf16, bfloat16, in any "
                          "case), not '%s'",
                     v);
}

/* ---- summary ------------------------------------------------------------- */

double cli_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

uint64_t cli_model_bytes(const wv_model *m, wv_dtype cast)
{
    uint64_t total = 0;
    for (size_t i = 0; i < wv_model_count(m); i++) {
        const wv_tensor *t = wv_model_tensor(m, i);
        wv_dtype dt = wv_tensor_dtype(t);
        /* a cast applies to float and block-quantised tensors */
        if (cast == WV_DTYPE_INVALID ||
            !(wv_dtype_is_float(dt) || wv_dtype_size(dt) == 0)) {
            total += wv_tensor_nbytes(t);
            continue;
        }
        uint64_t elems = 1;
        for (int d = 0; d < wv_tensor_ndim(t); d++)
            elems *= wv_tensor_shape(t)[d];
        total += elems * wv_dtype_size(cast);
    }
    return total;
}

void cli_summary(const char *what, size_t tensors, uint64_t bytes, double t0)
{
    char hb[32];
    cli_human_bytes(bytes, hb, sizeof hb);
    fprintf(stderr, "wv: %s: %zu tensor%s, %s in %.2f s\n", what, tensors,
            tensors == 1 ? "" : "s", hb, cli_now() - t0);
}

int cli_save(wv_model *m, const char *out, wv_save_opts *so, bool quiet,
             double t0)
{
    struct cli_progress prog;
    cli_progress_init(&prog, quiet, CLI_PROGRESS_MIN);
    if (prog.on) {
        so->progress = cli_progress_cb;
        so->progress_arg = &prog;
    }
    int rc = wv_model_save(m, out, so);
    cli_progress_end(&prog, rc == WV_OK);
    so->progress = NULL;
    so->progress_arg = NULL;
    if (rc != WV_OK)
        cli_die(wv_model_errmsg(m));
    else if (!quiet)
        cli_save_summary(m, out, so, t0);
    return rc;
}

void cli_save_summary(const wv_model *m, const char *out,
                      const wv_save_opts *so, double t0)
{
    char what[600];
    snprintf(what, sizeof what, "wrote %.500s (%s)", out,
             wv_format_name(so->format));
    cli_summary(what, wv_model_count(m), cli_model_bytes(m, so->cast), t0);
}

/* ---- progress bar ---------------------------------------------------------- */

void cli_progress_init(struct cli_progress *p, bool quiet, uint64_t min_total)
{
    memset(p, 0, sizeof *p);
    p->on = !quiet && isatty(2);
    p->min_total = min_total;
    p->t0 = cli_now();
}

static void draw(struct cli_progress *p, bool final)
{
    double t = cli_now(), el = t - p->t0;
    if (!final && t - p->last < 0.2)
        return;
    p->last = t;
    p->drawn = true;
    char d[32], tot[32], rate[32];
    uint64_t done = p->done < p->total ? p->done : p->total;
    cli_human_bytes(done, d, sizeof d);
    cli_human_bytes(p->total, tot, sizeof tot);
    double r = el > 0 ? (double)done / el : 0;
    cli_human_bytes((uint64_t)r, rate, sizeof rate);
    int pct = p->total ? (int)(100.0 * (double)done / (double)p->total)
                       : 100;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    long eta = r > 0 ? (long)((double)(p->total - done) / r) : 0;
    fprintf(stderr, "\r[%s] %3d%%  %s / %s  %s/s  ETA %ld:%02ld ", bar, pct,
            d, tot, rate, eta / 60, eta % 60);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

void cli_progress_cb(void *arg, uint64_t done, uint64_t total)
{
    struct cli_progress *p = arg;
    p->done = done;
    p->total = total;
    if (p->on && total >= p->min_total)
        draw(p, false);
}

void cli_progress_end(struct cli_progress *p, bool ok)
{
    if (!p->on || p->total == 0 || p->total < p->min_total)
        return;
    if (ok)
        p->done = p->total;
    if (ok || p->drawn)
        draw(p, true);
}

/* ---- losses worth a word ------------------------------------------------------ */

void cli_warn_opaque(const wv_model *m, const wv_save_opts *so,
                     const char *out)
{
    size_t n = 0;
    wv_dtype first = WV_DTYPE_INVALID;
    if (so->format != WV_FMT_KERAS)
        return;
    for (size_t i = 0; i < wv_model_count(m); i++) {
        wv_dtype dt = wv_tensor_dtype(wv_model_tensor(m, i));
        if (so->cast != WV_DTYPE_INVALID &&
            (wv_dtype_is_float(dt) || wv_dtype_size(dt) == 0))
            dt = so->cast;
        if (dt == WV_BF16 || dt == WV_F8_E4M3 || dt == WV_F8_E5M2) {
            if (n++ == 0)
                first = dt;
        }
    }
    if (n == 0)
        return;
    fprintf(stderr,
            "wv: warning: %s: HDF5 has no %s type: %zu tensor%s written as "
            "opaque values tagged dtype=\"%s\"; Keras and h5py see an "
            "opaque type (weightvault reads them back; --dtype F32 or F16 "
            "for Keras)\n",
            out, wv_dtype_name(first), n, n == 1 ? "" : "s",
            first == WV_BF16      ? "bfloat16"
            : first == WV_F8_E4M3 ? "float8_e4m3fn"
                                  : "float8_e5m2");
}

/* Keras' own names: ".../vars/<digits>" (Keras 3) or a TensorFlow
 * variable name "...:<digits>" below a layer (Keras 2). */
static bool keras_name(const char *s)
{
    const char *slash = strrchr(s, '/'), *colon = strrchr(s, ':');
    const char *d = NULL;
    if (slash && slash - s >= 4 && strncmp(slash - 4, "vars", 4) == 0 &&
        (slash - s == 4 || slash[-5] == '/'))
        d = slash + 1;
    else if (slash && colon && colon > slash)
        d = colon + 1;
    if (d == NULL || *d == '\0')
        return false;
    for (; *d; d++)
        if (*d < '0' || *d > '9')
            return false;
    return true;
}

void cli_warn_layout(const wv_model *m, const wv_save_opts *so,
                     const char *out, bool keras_names)
{
    size_t n = wv_model_count(m);
    if (so->format != WV_FMT_KERAS || n == 0)
        return;
    if (so->template_path != NULL) {
        /* the template gives the layout and the metadata */
        size_t k = wv_model_meta_count(m);
        if (k > 0)
            fprintf(stderr,
                    "wv: warning: %s: written with the layout and metadata "
                    "of the template %s: %zu metadata entr%s of the source "
                    "not carried over\n",
                    out, so->template_path, k, k == 1 ? "y" : "ies");
        return;
    }
    if (keras_names)
        return;
    if (strcmp(wv_model_source_format(m), "keras") == 0 ||
        wv_model_get_meta(m, "keras.layer_names") != NULL ||
        wv_model_get_meta(m, "keras.vars") != NULL ||
        wv_model_get_meta(m, "keras.model_config") != NULL)
        return;
    size_t i = 0;
    while (i < n && keras_name(wv_tensor_name(wv_model_tensor(m, i))))
        i++;
    if (i == n)
        return;
    fprintf(stderr,
            "wv: warning: %s: the source is not a Keras model: the file "
            "holds its tensors as HDF5 datasets but no Keras layout (Keras "
            "cannot load it); --template KERAS_FILE writes the layout of a "
            "Keras file of the model, filled by name or by order and "
            "shape\n",
            out);
}
