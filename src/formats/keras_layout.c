/*
 * keras_layout.c -- translate a set between Keras 2's legacy HDF5 layout
 * and Keras 3's .weights.h5 layout (the Keras writer, keras.c, calls it
 * when the target's layout is not the one the tensor names follow).
 *
 * The model config (metadata keras.model_config, or keras.config: a
 * .keras archive's config.json or a model.json given to `wv convert
 * --config`) says which layer owns which weight:
 *   {"class_name": "Sequential" | "Functional" | "Model",
 *    "config": {"name": ..., "layers": [<layer>, ...]}}
 *   <layer> = {"class_name": ..., "config": {"name": ..., "trainable":
 *              ..., "use_bias"/"center"/"scale": ..., "layers": [...]}}
 * a layer whose config has "layers" being a nested model.
 *
 * Keras 3 (saving_lib) names a model's layers in its weights file by
 * container position, not by layer name: the snake_case of the class name
 * ("Conv2D" -> "conv2d", "BatchNormalization" -> "batch_normalization"),
 * "_1", "_2", ... for the second, third one of a class in the same list.
 * Each saveable gets a group "vars" (attribute name=<its name>, also when
 * empty) holding its variables as datasets "0", "1", ...:
 *   vars                          the model's own (name = model name)
 *   layers/<c>/vars/<i>           layer c's variables, trainable first
 *   layers/<c>/layers/<c2>/...    a nested model's layers
 *   optimizer/vars/<i>            the optimizer's (name = its name)
 * A Sequential model's list leaves out its InputLayer; a functional one
 * keeps it. Keras 2 writes each layer of model.layers (same rule) as a
 * group <layer name> listed in layer_names, with weight_names the layer's
 * weights (trainable then non-trainable) as "<layer>/<variable>:0"
 * (Keras 3's legacy writer: without ":0"), stored at
 * <layer name>/<weight name>; a nested model's group lists all of its
 * layers' weights, every trainable one before the non-trainable ones.
 *
 * Legacy -> Keras 3: tensor "<layer>/<weight name>" goes to the vars of
 * the config layer of that name, in the order of keras.weight_names (the
 * reader's record of Keras' order), for a nested model to the vars of its
 * layer named by the weight name's first component. Keras 3 -> legacy:
 * the vars of container c go to the layer the config puts there, named
 * "<layer>/<variable><suffix>", the variable names of the classes below
 * where the count matches (kernel/bias, gamma/beta/moving_mean/
 * moving_variance, ...), else "variable", "variable_1", ... (Keras reads
 * a legacy group's weights by position, so only count and order matter to
 * it); the suffix is ":0" unless the config is Keras 3's (its entries
 * carry "module"). Every tensor must find its layer, every config layer
 * of a known class its number of weights, and the file's layer list
 * (keras.layer_names) every config layer: otherwise the translation is
 * refused with one line naming the layer.
 */
#include "keras_layout.h"

#define KL_MAX_DEPTH 32
#define KL_MAX_PATH 4096

struct klayer {
    char *name, *cls;
    signed char trainable, use_bias, center, scale; /* -1 unknown */
    bool model;             /* its config has "layers" */
    bool keras3;            /* the entry carries "module" */
    struct klayer *sub;
    size_t n_sub, cap_sub;
};

static void klayer_free(struct klayer *l)
{
    for (size_t i = 0; i < l->n_sub; i++)
        klayer_free(&l->sub[i]);
    wv__free(l->sub);
    wv__free(l->name);
    wv__free(l->cls);
    memset(l, 0, sizeof *l);
}

/* ---- the config, pulled from its JSON ------------------------------------ */
static int parse_layer(struct wv__json *j, struct klayer *out, int depth);

/* true/false at the cursor: 1/0 and consumed; -1 (cursor unmoved) if the
 * value is something else. */
static int json_bool(struct wv__json *j)
{
    wv__json_ws(j);
    size_t left = (size_t)(j->end - j->p);
    if (left >= 4 && memcmp(j->p, "true", 4) == 0) {
        j->p += 4;
        return 1;
    }
    if (left >= 5 && memcmp(j->p, "false", 5) == 0) {
        j->p += 5;
        return 0;
    }
    return -1;
}

/* A string value into *dst (replacing it), or any other value skipped. */
static int json_str_or_skip(struct wv__json *j, char **dst)
{
    size_t l;
    wv__json_ws(j);
    if (j->p < j->end && *j->p == '"') {
        char *s = NULL;
        int rc = wv__json_string(j, &s, &l);
        if (rc != WV_OK)
            return rc;
        if (strlen(s) != l) { /* a NUL inside: not a name */
            wv__free(s);
            return wv__seterr(j->err, WV_FORMAT, "%s: a name holds a NUL "
                              "byte", j->what);
        }
        wv__free(*dst);
        *dst = s;
        return WV_OK;
    }
    return wv__json_skip(j);
}

static int parse_lconfig(struct wv__json *j, struct klayer *out, int depth)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *key = NULL;
    size_t kl;
    wv__json_ws(j);
    if (j->p >= j->end || *j->p != '{')
        return wv__json_skip(j);
    WV_TRY(wv__json_expect(j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &key, &kl)) {
        signed char *flag = strcmp(key, "trainable") == 0 ? &out->trainable
                            : strcmp(key, "use_bias") == 0 ? &out->use_bias
                            : strcmp(key, "center") == 0   ? &out->center
                            : strcmp(key, "scale") == 0    ? &out->scale
                                                           : NULL;
        if (strcmp(key, "name") == 0) {
            WV_TRY(json_str_or_skip(j, &out->name));
        } else if (flag != NULL) {
            int b = json_bool(j);
            if (b >= 0)
                *flag = (signed char)b;
            else
                WV_TRY(wv__json_skip(j));
        } else if (strcmp(key, "layers") == 0) {
            WV_CHECK(depth < KL_MAX_DEPTH, WV_FORMAT, "%s: models nested "
                     "deeper than %d", j->what, KL_MAX_DEPTH);
            WV_TRY(wv__json_expect(j, '['));
            out->model = true;
            if (!wv__json_eat(j, ']')) {
                do {
                    WV_CHECK(wv__grow(&out->sub, &out->cap_sub, out->n_sub,
                                      sizeof *out->sub, 8) == WV_OK,
                             WV_NOMEM, "out of memory");
                    struct klayer *s = &out->sub[out->n_sub];
                    memset(s, 0, sizeof *s);
                    out->n_sub++;
                    WV_TRY(parse_layer(j, s, depth + 1));
                } while (wv__json_eat(j, ','));
                WV_TRY(wv__json_expect(j, ']'));
            }
        } else {
            WV_TRY(wv__json_skip(j));
        }
    }
    WV_TRY(it.rc);
out:
    wv__free(key);
    return rc;
}

static int parse_layer(struct wv__json *j, struct klayer *out, int depth)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *key = NULL, *ename = NULL;
    size_t kl;
    out->trainable = out->use_bias = out->center = out->scale = -1;
    WV_TRY(wv__json_expect(j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &key, &kl)) {
        if (strcmp(key, "class_name") == 0) {
            WV_TRY(json_str_or_skip(j, &out->cls));
        } else if (strcmp(key, "config") == 0) {
            WV_TRY(parse_lconfig(j, out, depth));
        } else if (strcmp(key, "name") == 0) {
            WV_TRY(json_str_or_skip(j, &ename));
        } else {
            if (strcmp(key, "module") == 0)
                out->keras3 = true;
            WV_TRY(wv__json_skip(j));
        }
    }
    WV_TRY(it.rc);
    if (out->name == NULL) { /* a functional entry's outer "name" */
        out->name = ename;
        ename = NULL;
    }
    WV_CHECK(out->cls != NULL && out->name != NULL && *out->name &&
                 strchr(out->name, '/') == NULL &&
                 strlen(out->name) < 256,
             WV_FORMAT, "%s: a layer has no class_name or no usable name "
             "('%.100s')", j->what, out->name ? out->name : "");
out:
    wv__free(key);
    wv__free(ename);
    return rc;
}

static int parse_config(const char *text, const char *fname,
                        struct klayer *top, struct wv__err *err)
{
    int rc = WV_OK;
    char what[300];
    snprintf(what, sizeof what, "%.200s: the model config", fname);
    struct wv__json j = {text, text, text + strlen(text), what, err};
    memset(top, 0, sizeof *top);
    rc = parse_layer(&j, top, 0);
    if (rc == WV_CORRUPT) {
        /* bad JSON is a config the layout cannot use (keras_layout.h):
         * WV_FORMAT, the parser's message kept */
        rc = WV_FORMAT;
        if (err)
            err->code = WV_FORMAT;
    }
    if (rc != WV_OK)
        goto out;
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_FORMAT, "%s: text after the end at byte %zu",
             what, (size_t)(j.p - j.start));
    WV_CHECK(top->model, WV_FORMAT, "%s: its %.100s has no list of layers",
             what, top->cls);
out:
    if (rc != WV_OK)
        klayer_free(top);
    return rc;
}

/* ---- names --------------------------------------------------------------- */
static bool is_up(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lo(char c) { return c >= 'a' && c <= 'z'; }

/* Keras' naming.to_snake_case: drop non-word characters, "_" before an
 * upper-case letter that starts a lower-case run (after any character),
 * then between a lower-case and an upper-case letter, then lower-case. */
static void snake_case(const char *cls, char *out, size_t cap)
{
    char a[256], b[512];
    size_t na = 0, nb = 0, no = 0;
    for (const char *p = cls; *p && na + 1 < sizeof a; p++)
        if (is_up(*p) || is_lo(*p) || (*p >= '0' && *p <= '9') ||
            *p == '_' || (unsigned char)*p >= 0x80)
            a[na++] = *p;
    for (size_t i = 0; i < na && nb + 2 < sizeof b;) {
        if (i + 2 < na + 1 && i + 1 < na && is_up(a[i + 1]) &&
            i + 2 < na && is_lo(a[i + 2])) {
            b[nb++] = a[i];
            b[nb++] = '_';
            size_t e = i + 2;
            b[nb++] = a[i + 1];
            while (e < na && is_lo(a[e]) && nb + 1 < sizeof b)
                b[nb++] = a[e++];
            i = e;
        } else {
            b[nb++] = a[i++];
        }
    }
    for (size_t i = 0; i < nb && no + 3 < cap;) {
        if (i + 1 < nb && is_lo(b[i]) && is_up(b[i + 1])) {
            out[no++] = b[i];
            out[no++] = '_';
            out[no++] = b[i + 1];
            i += 2;
        } else {
            out[no++] = b[i++];
        }
    }
    out[no] = '\0';
    for (size_t i = 0; i < no; i++)
        if (is_up(out[i]))
            out[i] = (char)(out[i] - 'A' + 'a');
}

/* The variables of the classes whose weights are known: their names in
 * Keras' order, and how many are trainable (the rest are not). 0 if the
 * class is unknown (*n is then left at SIZE_MAX). */
static int class_vars(const struct klayer *l, const char **names,
                      size_t *n, size_t *trainable)
{
    static const char *const conv[] = {
        "Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose",
        "Conv2DTranspose", "Conv3DTranspose", "Convolution2D",
        "Convolution1D", "Convolution3D", "Deconvolution2D"};
    static const char *const none[] = {
        "InputLayer", "Flatten", "Dropout", "Activation", "Reshape",
        "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
        "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
        "GlobalAveragePooling2D", "GlobalAveragePooling3D",
        "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
        "MaxPool2D", "AvgPool2D", "ReLU", "Softmax", "LeakyReLU", "ELU",
        "Concatenate", "Add", "Subtract", "Multiply", "Average", "Maximum",
        "Minimum", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D",
        "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
        "Permute", "RepeatVector", "UpSampling1D", "UpSampling2D",
        "UpSampling3D", "Cropping1D", "Cropping2D", "Cropping3D",
        "GaussianNoise", "GaussianDropout", "AlphaDropout",
        "ActivityRegularization", "Rescaling", "Masking"};
    size_t k = 0;
    *n = SIZE_MAX;
    *trainable = 0;
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++)
        if (strcmp(l->cls, none[i]) == 0) {
            *n = 0;
            return 1;
        }
    for (size_t i = 0; i < sizeof conv / sizeof conv[0]; i++)
        if (strcmp(l->cls, conv[i]) == 0) {
            names[k++] = "kernel";
            if (l->use_bias != 0)
                names[k++] = "bias";
            *n = *trainable = k;
            return 1;
        }
    if (strcmp(l->cls, "DepthwiseConv2D") == 0 ||
        strcmp(l->cls, "DepthwiseConv1D") == 0 ||
        strcmp(l->cls, "SeparableConv1D") == 0 ||
        strcmp(l->cls, "SeparableConv2D") == 0) {
        names[k++] = "depthwise_kernel";
        if (l->cls[0] == 'S')
            names[k++] = "pointwise_kernel";
        if (l->use_bias != 0)
            names[k++] = "bias";
        *n = *trainable = k;
        return 1;
    }
    if (strcmp(l->cls, "Embedding") == 0) {
        names[k++] = "embeddings";
        *n = *trainable = k;
        return 1;
    }
    if (strcmp(l->cls, "BatchNormalization") == 0 ||
        strcmp(l->cls, "LayerNormalization") == 0) {
        if (l->scale != 0)
            names[k++] = "gamma";
        if (l->center != 0)
            names[k++] = "beta";
        *trainable = k;
        if (l->cls[0] == 'B') {
            names[k++] = "moving_mean";
            names[k++] = "moving_variance";
        }
        *n = k;
        return 1;
    }
    return 0;
}

static bool is_input(const struct klayer *l)
{
    return strcmp(l->cls, "InputLayer") == 0;
}

/* Does model `l` list layer j in model.layers? (Sequential: not its
 * InputLayers.) */
static bool listed(const struct klayer *l, size_t j)
{
    return !(strcmp(l->cls, "Sequential") == 0 && is_input(&l->sub[j]));
}

/* Container names of l's listed layers, as Keras 3 assigns them. */
static int container_names(const struct klayer *l, char (*cn)[300],
                           const char *fname, struct wv__err *err)
{
    int rc = WV_OK;
    for (size_t j = 0; j < l->n_sub; j++) {
        char base[256];
        size_t used = 0;
        cn[j][0] = '\0';
        if (!listed(l, j))
            continue;
        snake_case(l->sub[j].cls, base, sizeof base);
        WV_CHECK(*base, WV_FORMAT, "%s: layer '%.100s' has class name "
                 "'%.100s', which gives no Keras 3 name", fname,
                 l->sub[j].name, l->sub[j].cls);
        for (size_t k = 0; k < j; k++) {
            char other[256];
            if (!listed(l, k))
                continue;
            snake_case(l->sub[k].cls, other, sizeof other);
            used += strcmp(other, base) == 0;
        }
        if (used)
            snprintf(cn[j], 300, "%s_%zu", base, used);
        else
            snprintf(cn[j], 300, "%s", base);
    }
out:
    return rc;
}

/* ---- the translated set --------------------------------------------------- */
struct xl {
    const wv_model *m;
    const char *fname;
    struct wv__err *err;
    size_t *dst;        /* per source tensor: index into names, or SIZE_MAX */
    char **names;       /* new names, in the order they are assigned */
    size_t n_names;
    struct wv__buf vars;    /* keras.vars (Keras 3) */
    struct wv__buf wnames;  /* keras.weight_names (legacy) */
    const size_t *rank;     /* legacy -> K3: place in keras.weight_names */
    const char *suffix;     /* K3 -> legacy: ":0" or "" */
};

static int assign(struct xl *x, size_t t, const char *name)
{
    struct wv__err *err = x->err;
    int rc = WV_OK;
    WV_CHECK(x->dst[t] == SIZE_MAX, WV_FORMAT, "%s: tensor '%.200s' is "
             "claimed by two layers of the model config", x->fname,
             x->m->tensors[t].name);
    x->names[x->n_names] = wv__strdup(name);
    WV_CHECK(x->names[x->n_names] != NULL, WV_NOMEM, "out of memory");
    x->dst[t] = x->n_names++;
out:
    return rc;
}

static void add_vars(struct xl *x, const char *path, const char *name)
{
    wv__buf_addc(&x->vars, x->vars.len ? ',' : '{');
    wv__json_put_string(&x->vars, path, strlen(path));
    wv__buf_addc(&x->vars, ':');
    wv__json_put_string(&x->vars, name, strlen(name));
}

/* Keras' order of a layer's weights (metadata keras.weight_names, which a
 * safetensors trip keeps while the tensor order is lost): by rank, then
 * by set order. */
struct rank_ix {
    size_t rank, i;
};
static int rank_ix_cmp(const void *a, const void *b)
{
    const struct rank_ix *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Sort the tensor indexes ix[0..n) by rank[ix] (all 0 if rank is NULL),
 * then by index. The sort runs on (rank, index) pairs, so its comparator
 * needs no state outside them (reentrant). */
int wv__keras_sort_by_rank(size_t *ix, size_t n, const size_t *rank,
                           struct wv__err *err)
{
    int rc = WV_OK;
    struct rank_ix *v = NULL;
    if (n < 2)
        return WV_OK;
    v = wv__malloc(n * sizeof *v);
    WV_CHECK(v != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = (struct rank_ix){rank ? rank[ix[i]] : 0, ix[i]};
    qsort(v, n, sizeof *v, rank_ix_cmp);
    for (size_t i = 0; i < n; i++)
        ix[i] = v[i].i;
out:
    wv__free(v);
    return rc;
}


/* The part of a legacy weight name `w` that names layer `l` of a nested
 * model: its first component, after components naming enclosing models
 * (`outer`, a "/"-joined list). */
static bool owns(const struct klayer *l, const char *w, const char *outer)
{
    size_t ln = strlen(l->name);
    for (;;) {
        if (strncmp(w, l->name, ln) == 0 && w[ln] == '/')
            return true;
        size_t c = strcspn(w, "/");
        if (w[c] == '\0')
            return false;
        /* skip one component if it names an enclosing model */
        bool enclosing = false;
        for (const char *o = outer; *o;) {
            size_t ol = strcspn(o, "/");
            if (ol == c && strncmp(o, w, c) == 0)
                enclosing = true;
            o += ol;
            if (*o == '/')
                o++;
        }
        if (!enclosing)
            return false;
        w += c + 1;
    }
}

/* Legacy -> Keras 3, layer `l` at Keras 3 path `path`, owning the tensors
 * idx[0..n) (legacy names; `wpos` is where each one's weight name starts)
 * in Keras' order. */
static int to_k3_layer(struct xl *x, const struct klayer *l, const char *path,
                       const size_t *idx, size_t n, size_t wpos,
                       const char *outer, int depth)
{
    struct wv__err *err = x->err;
    int rc = WV_OK;
    char p[KL_MAX_PATH], (*cn)[300] = NULL, outer2[KL_MAX_PATH];
    size_t *sub = NULL;
    const char *vn[8];
    size_t want, tr;
    int pl = snprintf(p, sizeof p, "%s/vars", path);
    WV_CHECK(pl > 0 && (size_t)pl < sizeof p, WV_FORMAT,
             "%s: path under '%.200s' too long", x->fname, path);
    add_vars(x, p, l->name);
    if (!l->model) {
        if (class_vars(l, vn, &want, &tr) && want != n)
            WV_CHECK(0, WV_FORMAT, "%s: layer '%.100s' (%.100s) has %zu "
                     "weights in the model config's terms, the file holds "
                     "%zu", x->fname, l->name, l->cls, want, n);
        for (size_t i = 0; i < n; i++) {
            pl = snprintf(p, sizeof p, "%s/vars/%zu", path, i);
            WV_CHECK(pl > 0 && (size_t)pl < sizeof p, WV_FORMAT,
                     "%s: path under '%.200s' too long", x->fname, path);
            WV_TRY(assign(x, idx[i], p));
        }
        goto out;
    }
    WV_CHECK(depth < KL_MAX_DEPTH, WV_FORMAT, "%s: models nested too deep",
             x->fname);
    pl = snprintf(outer2, sizeof outer2, "%s%s%s", outer, *outer ? "/" : "",
                  l->name);
    WV_CHECK(pl > 0 && (size_t)pl < sizeof outer2, WV_FORMAT,
             "%s: nested model path '%.200s' too long", x->fname, outer);
    cn = wv__calloc(l->n_sub ? l->n_sub : 1, sizeof *cn);
    sub = wv__calloc(n ? n : 1, sizeof *sub);
    WV_CHECK(cn != NULL && sub != NULL, WV_NOMEM, "out of memory");
    WV_TRY(container_names(l, cn, x->fname, err));
    for (size_t j = 0; j < l->n_sub; j++) {
        const struct klayer *s = &l->sub[j];
        size_t k = 0;
        if (!listed(l, j))
            continue;
        for (size_t i = 0; i < n; i++)
            if (x->dst[idx[i]] == SIZE_MAX &&
                owns(s, x->m->tensors[idx[i]].name + wpos, outer2))
                sub[k++] = idx[i];
        pl = snprintf(p, sizeof p, "%s/layers/%s", path, cn[j]);
        WV_CHECK(pl > 0 && (size_t)pl < sizeof p, WV_FORMAT,
                 "%s: path under '%.200s' too long", x->fname, path);
        WV_TRY(to_k3_layer(x, s, p, sub, k, wpos, outer2, depth + 1));
    }
    for (size_t i = 0; i < n; i++)
        WV_CHECK(x->dst[idx[i]] != SIZE_MAX, WV_FORMAT,
                 "%s: weight '%.200s' of nested model '%.100s' belongs to "
                 "none of its layers in the model config", x->fname,
                 x->m->tensors[idx[i]].name, l->name);
out:
    wv__free(cn);
    wv__free(sub);
    return rc;
}

static long vars_index(const char *name, const char *prefix)
{
    size_t pl = strlen(prefix);
    const char *d = name + pl;
    if (strncmp(name, prefix, pl) != 0 || *d == '\0' || strlen(d) > 6)
        return -1;
    for (const char *q = d; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    if (d[0] == '0' && d[1] != '\0')
        return -1;
    return strtol(d, NULL, 10);
}

static int to_k3(struct xl *x, const struct klayer *top)
{
    struct wv__err *err = x->err;
    const wv_model *m = x->m;
    int rc = WV_OK;
    char (*cn)[300] = NULL;
    size_t *idx = NULL, n = m->n_tensors;
    char p[KL_MAX_PATH];
    const char *ln = wv_model_get_meta(m, "keras.layer_names");
    cn = wv__calloc(top->n_sub ? top->n_sub : 1, sizeof *cn);
    idx = wv__calloc(n ? n : 1, sizeof *idx);
    WV_CHECK(cn != NULL && idx != NULL, WV_NOMEM, "out of memory");
    WV_TRY(container_names(top, cn, x->fname, err));
    add_vars(x, "vars", top->name);
    for (size_t j = 0; j < top->n_sub; j++) {
        const struct klayer *l = &top->sub[j];
        size_t k = 0, nl = strlen(l->name);
        if (!listed(top, j))
            continue;
        /* The file's own list of layers must hold every config layer. */
        if (ln != NULL) {
            struct wv__buf q = {0};
            wv__json_put_string(&q, l->name, nl);
            wv__buf_addc(&q, '\0');
            bool there = !q.oom && strstr(ln, q.p) != NULL;
            wv__buf_release(&q);
            WV_CHECK(there, WV_FORMAT, "%s: the model config names layer "
                     "'%.100s', which the file's layer_names does not list",
                     x->fname, l->name);
        }
        for (size_t i = 0; i < n; i++)
            if (strncmp(m->tensors[i].name, l->name, nl) == 0 &&
                m->tensors[i].name[nl] == '/')
                idx[k++] = i;
        WV_TRY(wv__keras_sort_by_rank(idx, k, x->rank, err));
        snprintf(p, sizeof p, "layers/%s", cn[j]);
        WV_TRY(to_k3_layer(x, l, p, idx, k, nl + 1, "", 1));
    }
    /* The model's own weights (Keras >= 2.13 top_level_model_weights) and
     * the optimizer's. */
    size_t own = 0, nopt = 0;
    for (size_t i = 0; i < n; i++) {
        const char *tn = m->tensors[i].name;
        if (strncmp(tn, "top_level_model_weights/", 24) == 0) {
            snprintf(p, sizeof p, "vars/%zu", own++);
            WV_TRY(assign(x, i, p));
        } else if (vars_index(tn, "optimizer/vars/") >= 0) {
            WV_TRY(assign(x, i, tn));
            nopt++;
        }
    }
    if (nopt) {
        const char *on = wv_model_get_meta(m, "keras.optimizer_weight_names");
        char name[256] = "optimizer";
        if (on != NULL) {
            struct wv__err e = {0};
            struct wv__json j = {on, on, on + strlen(on), "", &e};
            char *first = NULL;
            size_t l;
            if (wv__json_expect(&j, '[') == WV_OK &&
                wv__json_string(&j, &first, &l) == WV_OK &&
                strcspn(first, "/") < l && strcspn(first, "/") < sizeof name)
                snprintf(name, sizeof name, "%.*s", (int)strcspn(first, "/"),
                         first);
            wv__free(first);
        }
        add_vars(x, "optimizer/vars", name);
    }
    for (size_t i = 0; i < n; i++)
        WV_CHECK(x->dst[i] != SIZE_MAX, WV_FORMAT,
                 "%s: tensor '%.200s' belongs to no layer of the model "
                 "config", x->fname, m->tensors[i].name);
out:
    wv__free(cn);
    wv__free(idx);
    return rc;
}

/* Keras 3 -> legacy: collect the tensors of Keras 3 path `path` (its vars
 * first, in index order, then its sublayers' in config order) for layer
 * `l` as weight names "<leaf layer>/<variable><suffix>"; trainable ones go
 * to `tr`, the others to `nt` (lists of source index + weight name). */
struct wlist {
    size_t *t;
    char **w;
    size_t n;
};

static int wl_add(struct wlist *l, size_t t, const char *w, size_t cap)
{
    if (l->n >= cap)
        return WV_FORMAT;
    l->w[l->n] = wv__strdup(w);
    if (l->w[l->n] == NULL)
        return WV_NOMEM;
    l->t[l->n++] = t;
    return WV_OK;
}

static int to_legacy_layer(struct xl *x, const struct klayer *l,
                           const char *path, struct wlist *tr,
                           struct wlist *nt, bool frozen, int depth)
{
    struct wv__err *err = x->err;
    const wv_model *m = x->m;
    int rc = WV_OK;
    char p[KL_MAX_PATH], w[KL_MAX_PATH], (*cn)[300] = NULL;
    const char *vn[8];
    size_t want = SIZE_MAX, ntr = 0, n = m->n_tensors, cnt = 0;
    bool known = false;
    frozen = frozen || l->trainable == 0;
    WV_CHECK(depth < KL_MAX_DEPTH, WV_FORMAT, "%s: models nested too deep",
             x->fname);
    snprintf(p, sizeof p, "%s/vars/", path);
    for (size_t i = 0; i < n; i++)
        cnt += vars_index(m->tensors[i].name, p) >= 0;
    if (!l->model) {
        known = class_vars(l, vn, &want, &ntr) != 0;
        WV_CHECK(!known || want == cnt, WV_FORMAT, "%s: layer '%.100s' "
                 "(%.100s) has %zu weights in the model config's terms, the "
                 "file holds %zu", x->fname, l->name, l->cls, want, cnt);
    }
    for (size_t v = 0; v < cnt; v++) {
        size_t at = SIZE_MAX;
        for (size_t i = 0; i < n && at == SIZE_MAX; i++)
            if (vars_index(m->tensors[i].name, p) == (long)v)
                at = i;
        WV_CHECK(at != SIZE_MAX, WV_FORMAT, "%s: '%.200s%zu' is missing "
                 "(the indices of a vars group must run from 0)", x->fname,
                 p, v);
        if (known)
            snprintf(w, sizeof w, "%s/%s%s", l->name, vn[v], x->suffix);
        else if (v == 0)
            snprintf(w, sizeof w, "%s/variable%s", l->name, x->suffix);
        else
            snprintf(w, sizeof w, "%s/variable_%zu%s", l->name, v,
                     x->suffix);
        bool trainable = !frozen && (!known || v < ntr);
        rc = wl_add(trainable ? tr : nt, at, w, n);
        WV_CHECK(rc == WV_OK, rc, "%s: out of memory", x->fname);
        x->dst[at] = 0; /* claimed; renamed by to_legacy */
    }
    if (!l->model)
        goto out;
    cn = wv__calloc(l->n_sub ? l->n_sub : 1, sizeof *cn);
    WV_CHECK(cn != NULL, WV_NOMEM, "out of memory");
    WV_TRY(container_names(l, cn, x->fname, err));
    for (size_t j = 0; j < l->n_sub; j++) {
        if (!listed(l, j))
            continue;
        snprintf(p, sizeof p, "%s/layers/%s", path, cn[j]);
        WV_TRY(to_legacy_layer(x, &l->sub[j], p, tr, nt, frozen,
                               depth + 1));
    }
out:
    wv__free(cn);
    return rc;
}

static int to_legacy(struct xl *x, const struct klayer *top,
                     struct wv__buf *layer_names)
{
    struct wv__err *err = x->err;
    const wv_model *m = x->m;
    int rc = WV_OK;
    char (*cn)[300] = NULL, p[KL_MAX_PATH], name[2 * KL_MAX_PATH];
    size_t n = m->n_tensors;
    struct wlist tr = {0}, nt = {0};
    cn = wv__calloc(top->n_sub ? top->n_sub : 1, sizeof *cn);
    tr.t = wv__calloc(n ? n : 1, sizeof *tr.t);
    tr.w = wv__calloc(n ? n : 1, sizeof *tr.w);
    nt.t = wv__calloc(n ? n : 1, sizeof *nt.t);
    nt.w = wv__calloc(n ? n : 1, sizeof *nt.w);
    WV_CHECK(cn && tr.t && tr.w && nt.t && nt.w, WV_NOMEM, "out of memory");
    WV_TRY(container_names(top, cn, x->fname, err));
    for (size_t j = 0; j < top->n_sub; j++) {
        const struct klayer *l = &top->sub[j];
        if (!listed(top, j))
            continue;
        wv__buf_addc(layer_names, layer_names->len ? ',' : '[');
        wv__json_put_string(layer_names, l->name, strlen(l->name));
        snprintf(p, sizeof p, "layers/%s", cn[j]);
        WV_TRY(to_legacy_layer(x, l, p, &tr, &nt, false, 1));
        for (int pass = 0; pass < 2; pass++) {
            struct wlist *w = pass ? &nt : &tr;
            for (size_t i = 0; i < w->n; i++) {
                snprintf(name, sizeof name, "%s/%s", l->name, w->w[i]);
                x->dst[w->t[i]] = SIZE_MAX;
                WV_TRY(assign(x, w->t[i], name));
                wv__buf_addc(&x->wnames, x->wnames.len ? ',' : '[');
                wv__json_put_string(&x->wnames, name, strlen(name));
            }
        }
        for (int pass = 0; pass < 2; pass++) {
            struct wlist *w = pass ? &nt : &tr;
            for (size_t i = 0; i < w->n; i++)
                wv__free(w->w[i]);
            w->n = 0;
        }
    }
    if (!layer_names->len)
        wv__buf_addc(layer_names, '[');
    for (size_t i = 0; i < n; i++) {
        const char *tn = m->tensors[i].name;
        if (x->dst[i] != SIZE_MAX)
            continue;
        WV_CHECK(vars_index(tn, "optimizer/vars/") >= 0, WV_FORMAT,
                 "%s: tensor '%.200s' belongs to no layer of the model "
                 "config%s", x->fname, tn,
                 strncmp(tn, "vars/", 5) == 0
                     ? " (a model's own variables have no place in the "
                       "legacy layout)"
                     : "");
        WV_TRY(assign(x, i, tn));
    }
out:
    for (size_t i = 0; i < tr.n; i++)
        wv__free(tr.w[i]);
    for (size_t i = 0; i < nt.n; i++)
        wv__free(nt.w[i]);
    wv__free(tr.t);
    wv__free(tr.w);
    wv__free(nt.t);
    wv__free(nt.w);
    wv__free(cn);
    return rc;
}

/* keras_version of a .keras archive's metadata.json, or NULL. */
static char *archive_version(const wv_model *m)
{
    const char *v = wv_model_get_meta(m, "keras.metadata");
    struct wv__err e = {0};
    char *key = NULL, *val = NULL;
    size_t l;
    if (v == NULL)
        return NULL;
    struct wv__json j = {v, v, v + strlen(v), "", &e};
    if (wv__json_expect(&j, '{') != WV_OK)
        return NULL;
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&it, &key, &l)) {
        if (strcmp(key, "keras_version") != 0) {
            if (wv__json_skip(&j) != WV_OK)
                break;
            continue;
        }
        wv__json_ws(&j);
        if (j.p < j.end && *j.p == '"' &&
            wv__json_string(&j, &val, &l) == WV_OK && strlen(val) == l)
            break;
        wv__free(val);
        val = NULL;
        break;
    }
    wv__free(key);
    return val;
}

int wv__keras_translate(const wv_model *m, enum wv__keras_xlate way,
                        const char *fname, wv_model **out,
                        struct wv__err *err)
{
    int rc = WV_OK;
    struct klayer top = {0};
    struct xl x = {m, fname, err, NULL, NULL, 0, {0}, {0}, NULL, ":0"};
    struct wv__buf layer_names = {0};
    wv_model *v = NULL;
    size_t *rank = NULL, n = m->n_tensors;
    char *version = NULL;
    const char *cfg = wv_model_get_meta(m, "keras.model_config");
    bool from_archive = false;
    *out = NULL;
    if (cfg == NULL) {
        cfg = wv_model_get_meta(m, "keras.config");
        from_archive = cfg != NULL;
    }
    WV_CHECK(cfg != NULL, WV_FORMAT, "%s: the set's tensors follow the %s "
             "layout and it has no model config to translate them to the %s "
             "one (%s)", fname,
             way == WV__KERAS_TO_K3 ? "Keras 2 (legacy .h5)"
                                    : "Keras 3 (.weights.h5)",
             way == WV__KERAS_TO_K3 ? "Keras 3" : "Keras 2",
             way == WV__KERAS_TO_K3
                 ? "a full-model .h5, a .keras, or wv convert --config "
                   "model.json gives it"
                 : "a .weights.h5 holds none, as Keras writes it: wv "
                   "convert --config config.json gives it");
    WV_TRY(parse_config(cfg, fname, &top, err));
    x.dst = wv__malloc((n ? n : 1) * sizeof *x.dst);
    x.names = wv__calloc(n ? n : 1, sizeof *x.names);
    rank = wv__malloc((n ? n : 1) * sizeof *rank);
    WV_CHECK(x.dst && x.names && rank, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        x.dst[i] = SIZE_MAX;
        rank[i] = SIZE_MAX;
    }
    /* Keras 3 configs carry "module" in their entries (not always at
     * the top of a legacy file's model_config). */
    x.suffix = top.keras3 || strstr(cfg, "\"module\"") != NULL ? "" : ":0";
    if (way == WV__KERAS_TO_K3) {
        const char *wn = wv_model_get_meta(m, "keras.weight_names");
        if (wn != NULL) {
            struct wv__err e = {0};
            struct wv__json j = {wn, wn, wn + strlen(wn), "", &e};
            size_t pos = 0, l;
            if (wv__json_expect(&j, '[') == WV_OK && !wv__json_eat(&j, ']')) {
                do {
                    char *s = NULL;
                    if (wv__json_string(&j, &s, &l) != WV_OK)
                        break;
                    const wv_tensor *t = wv_model_find(m, s);
                    if (t && rank[t - m->tensors] == SIZE_MAX)
                        rank[t - m->tensors] = pos;
                    pos++;
                    wv__free(s);
                } while (wv__json_eat(&j, ','));
            }
        }
        x.rank = rank;
        WV_TRY(to_k3(&x, &top));
    } else {
        WV_TRY(to_legacy(&x, &top, &layer_names));
    }
    WV_CHECK(wv_model_new(&v) == WV_OK, WV_NOMEM, "out of memory");
    /* Tensors in the order the new names were given. */
    for (size_t k = 0; k < x.n_names; k++) {
        size_t i = 0;
        while (i < n && x.dst[i] != k)
            i++;
        const struct wv_tensor *t = &m->tensors[i];
        WV_TRY(wv__model_add(v, x.names[k], strlen(x.names[k]), t->dtype,
                             t->ndim, t->shape, t->data, t->nbytes, NULL,
                             err));
    }
    bool opt = false;
    for (size_t k = 0; k < x.n_names; k++)
        opt = opt || vars_index(x.names[k], "optimizer/vars/") >= 0;
    for (size_t i = 0; i < m->n_meta; i++) {
        const char *key = m->meta[i].key, *val = m->meta[i].value;
        if (strcmp(key, "keras.layer_names") == 0 ||
            strcmp(key, "keras.weight_names") == 0 ||
            strcmp(key, "keras.vars") == 0)
            continue;
        /* Legacy with optimizer state: the full-model layout, whose
         * model_config an archive's config.json becomes. */
        if (way == WV__KERAS_TO_LEGACY && from_archive && opt &&
            strcmp(key, "keras.config") == 0)
            key = "keras.model_config";
        WV_CHECK(wv_model_set_meta(v, key, val) == WV_OK, WV_NOMEM,
                 "out of memory");
    }
    if (way == WV__KERAS_TO_K3) {
        wv__buf_adds(&x.vars, "}");
        wv__buf_addc(&x.vars, '\0');
        WV_CHECK(!x.vars.oom, WV_NOMEM, "out of memory");
        WV_CHECK(wv_model_set_meta(v, "keras.vars", x.vars.p) == WV_OK,
                 WV_NOMEM, "out of memory");
    } else {
        wv__buf_adds(&layer_names, "]");
        wv__buf_addc(&layer_names, '\0');
        wv__buf_adds(&x.wnames, x.wnames.len ? "]" : "[]");
        wv__buf_addc(&x.wnames, '\0');
        WV_CHECK(!layer_names.oom && !x.wnames.oom, WV_NOMEM,
                 "out of memory");
        WV_CHECK(wv_model_set_meta(v, "keras.layer_names", layer_names.p) ==
                         WV_OK &&
                     wv_model_set_meta(v, "keras.weight_names",
                                       x.wnames.p) == WV_OK,
                 WV_NOMEM, "out of memory");
        version = wv_model_get_meta(m, "keras.keras_version")
                      ? NULL
                      : archive_version(m);
        if (version != NULL)
            WV_CHECK(wv_model_set_meta(v, "keras.keras_version", version) ==
                         WV_OK,
                     WV_NOMEM, "out of memory");
    }
    v->meta_state = m->meta_state;
    v->source_format = m->source_format;
    *out = v;
    v = NULL;
out:
    wv_model_free(v);
    klayer_free(&top);
    for (size_t k = 0; k < x.n_names; k++)
        wv__free(x.names[k]);
    wv__free(x.names);
    wv__free(x.dst);
    wv__free(rank);
    wv__free(version);
    wv__buf_release(&x.vars);
    wv__buf_release(&x.wnames);
    wv__buf_release(&layer_names);
    return rc;
}
