/*
 * shard.c -- sharded checkpoints in the Hugging Face convention.
 *
 *   model.safetensors.index.json (or pytorch_model.bin.index.json):
 *     {"metadata": {"total_size": <bytes>},
 *      "weight_map": {"<tensor>": "<shard file>", ...}}
 *   shards beside it: model-00001-of-00003.safetensors, ...
 *
 * Reading: any path whose content is a JSON object with a "weight_map" is
 * an index. Shard names are relative to the index's directory and may not
 * be absolute or contain "..": an index cannot make us read files outside
 * its directory tree. Each shard is read with the normal, content-detected
 * loader (an index cannot name another index) and the sets are merged.
 * The index and the shards must agree exactly: every mapped tensor is in
 * the shard named for it, and every tensor of a shard is mapped to it.
 *
 * Writing: tensors are taken in set order and cut into shards of at most
 * opts->shard_size bytes of (output) tensor data; a tensor larger than that
 * gets a shard of its own. Every shard is written atomically, and the index
 * is written last, so a reader that goes through the index never sees a
 * shard list naming files that are not complete. The index is formatted
 * like transformers' (indent 2, keys sorted, trailing newline).
 */
#include "core.h"
#include "fmt.h"
#include "json.h"
#include "tensor.h"

#define WV__INDEX_MAX ((uint64_t)64 << 20)

struct wmap {
    char *tensor;
    char *file;
};

static void wmap_free(struct wmap *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wv__free(w[i].tensor);
        wv__free(w[i].file);
    }
    wv__free(w);
}

bool wv__shard_is_index(const unsigned char *head, size_t n)
{
    size_t i = 0;
    while (i < n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' ||
                     head[i] == '\t'))
        i++;
    return i < n && head[i] == '{';
}

static bool safe_relpath(const char *p)
{
    if (p[0] == '\0' || p[0] == '/')
        return false;
    for (const char *s = p; *s;) {
        size_t l = strcspn(s, "/");
        if ((l == 2 && s[0] == '.' && s[1] == '.') || l == 0)
            return false;
        s += l;
        if (*s == '/')
            s++;
    }
    return true;
}

static int parse_index(const char *path, const char *text, size_t len,
                       struct wmap **out, size_t *n_out, struct wv__err *err)
{
    int rc = WV_OK;
    struct wmap *w = NULL;
    size_t n = 0, cap = 0;
    char *key = NULL, *t = NULL, *f = NULL;
    size_t kl, tl, fl;
    bool seen_map = false;
    char what[300];
    snprintf(what, sizeof what, "%s", path);
    struct wv__json j = {text, text, text + len, what, err};

    WV_CHECK(wv__json_eat(&j, '{'), WV_FORMAT,
             "%s: not a recognised weights file or shard index", path);
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&it, &key, &kl)) {
        if (strcmp(key, "weight_map") != 0) {
            WV_TRY(wv__json_skip(&j));
            continue;
        }
        WV_CHECK(!seen_map, WV_CORRUPT, "%s: duplicate \"weight_map\"",
                 path);
        seen_map = true;
        WV_CHECK(wv__json_eat(&j, '{'), WV_CORRUPT,
                 "%s: \"weight_map\" is not an object", path);
        struct wv__json_obj map = WV__JSON_OBJ(&j);
        while (wv__json_obj_next(&map, &t, &tl)) {
            WV_TRY(wv__json_string(&j, &f, &fl));
            WV_CHECK(strlen(t) == tl && strlen(f) == fl, WV_CORRUPT,
                     "%s: NUL character in \"weight_map\"", path);
            WV_CHECK(safe_relpath(f), WV_CORRUPT,
                     "%s: tensor '%.200s' names shard '%.200s', "
                     "which is not a relative path inside the "
                     "index's directory",
                     path, t, f);
            WV_CHECK(wv__grow(&w, &cap, n, sizeof *w, 64) == WV_OK,
                     WV_NOMEM, "out of memory");
            w[n].tensor = t;
            w[n].file = f;
            n++;
            t = f = NULL;
        }
        WV_TRY(map.rc);
    }
    WV_TRY(it.rc);
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_CORRUPT,
             "%s: trailing characters after the JSON object", path);
    WV_CHECK(seen_map, WV_FORMAT,
             "%s: a JSON file without \"weight_map\" is not a shard index",
             path);
out:
    wv__free(key);
    wv__free(t);
    wv__free(f);
    if (rc != WV_OK) {
        wmap_free(w, n);
        w = NULL;
        n = 0;
    }
    *out = w;
    *n_out = n;
    return rc;
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp(((const struct wmap *)a)->tensor,
                  ((const struct wmap *)b)->tensor);
}

/* Sorts pointers to map entries by shard file, then by position, so the
 * first of each run is that file's first appearance. */
static int cmp_file_pos(const void *a, const void *b)
{
    const struct wmap *x = *(const struct wmap *const *)a;
    const struct wmap *y = *(const struct wmap *const *)b;
    int c = strcmp(x->file, y->file);
    return c ? c : (x > y) - (x < y);
}

/* Parse and check an index in memory: the map sorted by tensor, no
 * tensor mapped twice, and `first[i]` set for the entries that are their
 * shard file's first appearance (in tensor order). O(n log n) in the
 * entries, whatever the hostile index: a loop per shard over the entries
 * before it was quadratic. */
static int check_index(const char *path, const char *text, size_t len,
                       struct wmap **out, size_t *n_out, bool **first_out,
                       struct wv__err *err)
{
    int rc = WV_OK;
    struct wmap *w = NULL, **byfile = NULL;
    bool *first = NULL;
    size_t n = 0;

    WV_TRY(parse_index(path, text, len, &w, &n, err));
    WV_CHECK(n > 0, WV_CORRUPT, "%s: \"weight_map\" is empty", path);
    qsort(w, n, sizeof *w, cmp_tensor);
    for (size_t i = 1; i < n; i++)
        WV_CHECK(strcmp(w[i - 1].tensor, w[i].tensor) != 0, WV_CORRUPT,
                 "%s: tensor '%.200s' is mapped twice", path, w[i].tensor);
    byfile = wv__malloc(n * sizeof *byfile);
    first = wv__calloc(n, sizeof *first);
    WV_CHECK(byfile && first, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        byfile[i] = &w[i];
    qsort(byfile, n, sizeof *byfile, cmp_file_pos);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || strcmp(byfile[i - 1]->file, byfile[i]->file) != 0)
            first[byfile[i] - w] = true;
out:
    wv__free(byfile);
    if (rc != WV_OK) {
        wmap_free(w, n);
        w = NULL;
        n = 0;
        wv__free(first);
        first = NULL;
    }
    *out = w;
    *n_out = n;
    *first_out = first;
    return rc;
}

int wv__shard_check_index(const void *buf, size_t n, size_t *n_entries,
                          size_t *n_shards, struct wv__err *err)
{
    struct wmap *w = NULL;
    bool *first = NULL;
    size_t k = 0;
    *n_entries = *n_shards = 0;
    char *text = wv__malloc(n + 1);
    if (text == NULL)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    memcpy(text, buf, n);
    text[n] = '\0';
    int rc = wv__utf8_valid(text, n)
                 ? check_index("index", text, n, &w, &k, &first, err)
                 : wv__seterr(err, WV_FORMAT, "index: not UTF-8");
    if (rc == WV_OK) {
        *n_entries = k;
        for (size_t i = 0; i < k; i++)
            *n_shards += first[i];
    }
    wmap_free(w, k);
    wv__free(first);
    wv__free(text);
    return rc;
}

static const struct wmap *find_tensor(const struct wmap *w, size_t n,
                                      const char *name)
{
    struct wmap key = {(char *)(uintptr_t)name, NULL};
    return bsearch(&key, w, n, sizeof *w, cmp_tensor);
}

int wv__shard_load(const char *path, int fd, uint64_t size,
                   const wv_load_opts *opts, wv_model **out,
                   struct wv__err *err)
{
    int rc = WV_OK;
    char *text = NULL, *shard_path = NULL;
    struct wmap *w = NULL;
    size_t n = 0;
    wv_model *set = NULL, *part = NULL;
    const char **sub = NULL;
    const char **name_file = NULL; /* the shard of each wanted name */
    bool *first = NULL; /* entry i is its shard's first appearance */

    *out = NULL;
    WV_CHECK(size <= WV__INDEX_MAX, WV_FORMAT,
             "%s: not a recognised weights file (a JSON shard index would "
             "be smaller than 64 MiB)",
             path);
    text = wv__malloc((size_t)size + 1);
    WV_CHECK(text != NULL, WV_NOMEM, "out of memory");
    struct wv__src src = {fd,   size, NULL, path, NULL,
                          NULL, NULL, 0,    NULL, false};
    WV_TRY(wv__src_read(&src, 0, text, (size_t)size, err));
    text[size] = '\0';
    WV_CHECK(wv__utf8_valid(text, (size_t)size), WV_FORMAT,
             "%s: not a recognised weights file", path);
    WV_TRY(check_index(path, text, (size_t)size, &w, &n, &first, err));

    /* Only some tensors wanted: each is in the map, and only the shards
     * that hold them are read, each asked for its own (a shard asked for
     * a name it does not hold would refuse the load). */
    bool wanted = opts && wv__load_opts_has_names(opts) && opts->names;
    if (wanted) {
        sub = wv__calloc(opts->n_names + 1, sizeof *sub);
        name_file = wv__calloc(opts->n_names + 1, sizeof *name_file);
        WV_CHECK(sub && name_file, WV_NOMEM, "out of memory");
        for (size_t k = 0; k < opts->n_names; k++) {
            const struct wmap *e = find_tensor(w, n, opts->names[k]);
            WV_CHECK(e != NULL, WV_NOTFOUND, "%s: no tensor named '%.200s'",
                     path, opts->names[k]);
            name_file[k] = e->file;
        }
    }
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    /* Shards in order of first appearance in the (sorted) map. */
    for (size_t i = 0; i < n; i++) {
        if (!first[i])
            continue;
        wv_load_opts one;
        const wv_load_opts *po = opts;
        if (wanted) {
            size_t ns = 0;
            for (size_t k = 0; k < opts->n_names; k++)
                if (strcmp(name_file[k], w[i].file) == 0)
                    sub[ns++] = opts->names[k];
            if (ns == 0)
                continue;
            memset(&one, 0, sizeof one);
            memcpy(&one, opts, opts->struct_size < sizeof one
                                   ? opts->struct_size
                                   : sizeof one);
            one.struct_size = (uint32_t)(opts->struct_size < sizeof one
                                             ? opts->struct_size
                                             : sizeof one);
            one.names = sub;
            one.n_names = ns;
            po = &one;
        }
        size_t fl = strlen(w[i].file);
        wv__free(shard_path);
        shard_path = wv__malloc(dirlen + fl + 1);
        WV_CHECK(shard_path != NULL, WV_NOMEM, "out of memory");
        memcpy(shard_path, path, dirlen);
        memcpy(shard_path + dirlen, w[i].file, fl + 1);
        rc = wv__load_file(shard_path, po, &part, err, false);
        if (rc != WV_OK) {
            /* Say which index named the shard. */
            char why[WV_ERRBUF_SIZE];
            snprintf(why, sizeof why, "%s", err->msg);
            wv__clearerr(err);
            wv__seterr(err, rc, "%s: shard '%.100s': %s", path, w[i].file,
                       why);
            goto out;
        }
        for (size_t t = 0; t < part->n_tensors; t++) {
            const char *tn = part->tensors[t].name;
            const struct wmap *e = find_tensor(w, n, tn);
            WV_CHECK(e != NULL, WV_CORRUPT,
                     "%s: shard '%.200s' has tensor '%.200s', which the "
                     "index does not map",
                     path, w[i].file, tn);
            WV_CHECK(strcmp(e->file, w[i].file) == 0, WV_CORRUPT,
                     "%s: tensor '%.200s' is in shard '%.200s' but the "
                     "index maps it to '%.200s'",
                     path, tn, w[i].file, e->file);
        }
        if (set == NULL) {
            set = part;
        } else {
            rc = wv__model_absorb(set, part, err);
            if (rc != WV_OK) {
                part = NULL;
                goto out;
            }
        }
        part = NULL;
    }
    if (set == NULL) /* none wanted */
        WV_CHECK(wv_model_new(&set) == WV_OK, WV_NOMEM, "out of memory");
    /* Every mapped tensor came with its shard. (Names given: each was
     * found in the map, and each shard load refuses a name it lacks.) */
    for (size_t i = 0; !wanted && i < n; i++)
        WV_CHECK(wv_model_find(set, w[i].tensor) != NULL, WV_CORRUPT,
                 "%s: tensor '%.200s' is mapped to shard '%.200s', which "
                 "does not contain it",
                 path, w[i].tensor, w[i].file);
out:
    wv__free(first);
    wv__free(sub);
    wv__free(name_file);
    wv_model_free(part);
    wmap_free(w, n);
    wv__free(text);
    wv__free(shard_path);
    if (rc != WV_OK) {
        wv_model_free(set);
        set = NULL;
    }
    *out = set;
    return rc;
}

/* ---- writing ------------------------------------------------------------ */

static uint64_t out_bytes(const struct wv_tensor *t, wv_dtype cast)
{
    uint64_t numel, nbytes;
    if (wv__shape_bytes(wv__cast_target(t->dtype, cast), t->ndim, t->shape,
                        &numel, &nbytes) != WV_OK)
        return t->nbytes;
    return nbytes;
}

int wv__shard_save(wv_model *m, const char *path, wv_format fmt,
                   const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    size_t *first = NULL; /* index of the first tensor of each shard */
    size_t n_shards = 0;
    char *index_path = NULL;
    char **files = NULL;
    size_t *shard_of = NULL;
    wv_model *part = NULL;
    struct wv__buf b = {0};
    struct wv__wfile f;
    bool fopen_ = false;
    const struct wv__format_ops *ops = wv__format_get(fmt);
    wv_save_opts one = *opts;
    one.shard_size = 0;

    /* Cut into shards. */
    first = wv__calloc(m->n_tensors + 1, sizeof *first);
    shard_of = wv__calloc(m->n_tensors + 1, sizeof *shard_of);
    WV_CHECK(first && shard_of, WV_NOMEM, "out of memory");
    uint64_t fill = 0, total = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        uint64_t nb = out_bytes(&m->tensors[i], opts->cast);
        if (n_shards == 0 || (fill > 0 && fill + nb > opts->shard_size)) {
            first[n_shards++] = i;
            fill = 0;
        }
        fill += nb;
        total += nb;
        shard_of[i] = n_shards - 1;
    }
    first[n_shards] = m->n_tensors;
    if (n_shards <= 1) {
        /* Fits in one file: write it plainly, as transformers does. */
        WV_TRY(wv__wfile_open(&f, path, err));
        rc = ops->save(m, &f, &one, err);
        rc = rc == WV_OK ? wv__wfile_commit(&f) : (wv__wfile_abort(&f), rc);
        goto out;
    }
    WV_CHECK(n_shards <= 99999, WV_RANGE,
             "%s: %zu shards; the naming convention allows 99999", path,
             n_shards);

    /* Names: <dir>/<stem>-00001-of-0000N<ext>, index <path>.index.json. */
    size_t pl = strlen(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t stem_len = dot && dot != base ? (size_t)(dot - path) : pl;
    const char *ext = stem_len < pl ? path + stem_len : "";
    files = wv__calloc(n_shards, sizeof *files);
    WV_CHECK(files != NULL, WV_NOMEM, "out of memory");
    for (size_t s = 0; s < n_shards; s++) {
        size_t cap = pl + 32;
        files[s] = wv__malloc(cap);
        WV_CHECK(files[s] != NULL, WV_NOMEM, "out of memory");
        snprintf(files[s], cap, "%.*s-%05zu-of-%05zu%s", (int)stem_len, path,
                 s + 1, n_shards, ext);
    }

    /* Each shard: a set that borrows the tensors, with the metadata. */
    for (size_t s = 0; s < n_shards; s++) {
        WV_CHECK(wv_model_new(&part) == WV_OK, WV_NOMEM, "out of memory");
        part->meta_state = m->meta_state;
        for (size_t i = 0; i < m->n_meta; i++)
            WV_CHECK(wv_model_set_meta(part, m->meta[i].key,
                                       m->meta[i].value) == WV_OK,
                     WV_NOMEM, "out of memory");
        part->meta_state = m->meta_state;
        for (size_t i = first[s]; i < first[s + 1]; i++) {
            const struct wv_tensor *t = &m->tensors[i];
            WV_TRY(wv__model_add(part, t->name, strlen(t->name), t->dtype,
                                 t->ndim, t->shape, t->data, t->nbytes, NULL,
                                 err));
        }
        WV_TRY(wv__wfile_open(&f, files[s], err));
        rc = ops->save(part, &f, &one, err);
        rc = rc == WV_OK ? wv__wfile_commit(&f) : (wv__wfile_abort(&f), rc);
        WV_TRY(rc);
        wv_model_free(part);
        part = NULL;
    }

    /* The index, last. */
    /* weight_map sorted by tensor name, as transformers writes it. */
    struct wmap *sorted = wv__calloc(m->n_tensors + 1, sizeof *sorted);
    WV_CHECK(sorted != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_tensors; i++) {
        sorted[i].tensor = m->tensors[i].name;
        const char *fn = strrchr(files[shard_of[i]], '/');
        sorted[i].file = fn ? (char *)(uintptr_t)(fn + 1) : files[shard_of[i]];
    }
    qsort(sorted, m->n_tensors, sizeof *sorted, cmp_tensor);
    wv__buf_addf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n"
                     "  \"weight_map\": {\n",
                 (unsigned long long)total);
    for (size_t i = 0; i < m->n_tensors; i++) {
        wv__buf_adds(&b, "    ");
        wv__json_put_string(&b, sorted[i].tensor, strlen(sorted[i].tensor));
        wv__buf_adds(&b, ": ");
        wv__json_put_string(&b, sorted[i].file, strlen(sorted[i].file));
        wv__buf_adds(&b, i + 1 < m->n_tensors ? ",\n" : "\n");
    }
    wv__buf_adds(&b, "  }\n}\n");
    wv__free(sorted);
    WV_CHECK(!b.oom, WV_NOMEM, "out of memory");
    index_path = wv__malloc(pl + 16);
    WV_CHECK(index_path != NULL, WV_NOMEM, "out of memory");
    snprintf(index_path, pl + 16, "%s.index.json", path);
    WV_TRY(wv__wfile_open(&f, index_path, err));
    fopen_ = true;
    wv__wfile_write(&f, b.p, b.len);
    fopen_ = false;
    WV_TRY(wv__wfile_commit(&f));
out:
    if (fopen_)
        wv__wfile_abort(&f);
    wv_model_free(part);
    if (files)
        for (size_t s = 0; s < n_shards; s++)
            wv__free(files[s]);
    wv__free(files);
    wv__free(first);
    wv__free(shard_of);
    wv__free(index_path);
    wv__buf_release(&b);
    return rc;
}
