/*
 * pth.c -- PyTorch torch.save files: the zip format of torch 1.6 to 2.x and
 * the legacy (pre-1.6) pickle stream. See FORMATS.md section 2.
 *
 *   zip format: a zip archive (zip.c) whose members all live under one
 *   directory <p>/ (p = the saved file's stem, "archive" for streams):
 *     <p>/data.pkl           pickle (protocol 2) of the object; tensors are
 *                            torch._utils._rebuild_tensor_v2(storage,
 *                            offset, size, stride, requires_grad, hooks)
 *                            with storage = BINPERSID of ('storage',
 *                            torch.FloatStorage, key, location, numel)
 *                            (v3 + torch.UntypedStorage + dtype for
 *                            float8 and unsigned types, numel in bytes)
 *     <p>/data/<key>         raw storage bytes, numel * element size
 *     <p>/byteorder          "little" or "big" (2.1+; absent = little)
 *     <p>/version            "3\n" (required, as torch requires it)
 *     <p>/.format_version, <p>/.storage_alignment,
 *     <p>/.data/serialization_id   ignored
 *   legacy format: five pickles back to back -- the magic number
 *   0x1950a86a20f9469cfc6c (LONG1), the protocol version 1001, a sys_info
 *   dict ({'little_endian': True, ...}), the object (persistent ids are
 *   6-tuples ending in a view_metadata that must be None), the list of
 *   storage keys -- then for each key in that order: u64 LE numel and
 *   numel * element size bytes, up to the end of the file.
 *
 * Reading: the pickle is run by the restricted reader of pickle.c (nothing
 * executes; unknown globals are refused by name). The object is flattened
 * to dotted names: dict keys (str, or int and bool as their decimal/
 * Python text) and list/tuple indices joined by '.'; {"model": sd,
 * "epoch": 3} gives model.fc1.weight, ..., and metadata epoch = "3". A
 * root that is itself a tensor is named "tensor", a root scalar "value".
 * Non-tensor leaves become metadata: int as decimal, float as Python's
 * repr ("0.1", "1e-05", "inf"), bool as "True"/"False", str as is; None,
 * bytes, torch.device and other inert objects are dropped. Nesting is
 * bounded (MAX_DEPTH) and so is the number of nodes visited (MAX_VISITS,
 * the pickle may share subtrees). An OrderedDict root may carry a BUILD
 * state {'_metadata': {'weightvault:metadata': {k: v}}}: those string
 * entries become metadata too (our writer's side channel, see below).
 * Every tensor is checked against its storage (offset + the extent of its
 * size/stride inside numel, overflow-checked) and every storage against
 * its record (record bytes == numel * element size, exactly). Tensors
 * that are C-contiguous little-endian borrow their bytes from the mapping
 * (stored members, mmap loads); views with other strides (Fortran order,
 * transposes, broadcasts) are gathered into owned C-order copies; big-
 * endian storages are swapped into owned copies; deflated members and
 * pread loads read each storage once (CRC-checked) and hand it to its last
 * user or copy ranges out of it. Storages shared by several tensors are
 * fine.
 *
 * TorchScript archives (torch.jit.save; a <p>/constants.pkl or <p>/code/
 * member): data.pkl pickles the module tree as __torch__.<Class> objects
 * (NEWOBJ, then BUILD with the attribute dict: `training`, parameters,
 * buffers, submodules, other attributes), read as placeholders. data.pkl
 * alone does not tell a parameter or buffer from a plain Tensor
 * attribute (torch.jit.load's state_dict() leaves those out, and lists
 * non-persistent buffers, which TorchScript does not mark), so the class
 * declaration in code/<module path>.py decides: its "__parameters__ =
 * [...]" and "__buffers__ = [...]" lines (read as text; nothing there is
 * run). Names are those of torch.jit.load(f).state_dict(): per module the
 * declared parameters, then the declared buffers, in attribute order, then
 * the attributes holding modules ("class X(Module)"), recursively; shared
 * submodules appear under each path. Storages come from data/<key>, or
 * constants/<key> when the constants own that key. constants.pkl itself
 * (traced constants) and code/ debug records are not read. A class
 * without its declaration is refused. Writing TorchScript is not
 * supported: .pth output is always a torch.save state_dict archive.
 *
 * Whole-model and object pickles (torch.save(model)), with
 * WV_LOAD_OBJECTS only (refused otherwise, naming the option): unknown
 * classes become placeholders (pickle.h; no import, call or __setstate__).
 * A placeholder whose state holds _parameters and _modules is an
 * nn.Module: its tensors are named as model.state_dict() names them
 * (_parameters, then _buffers minus _non_persistent_buffers_set, then
 * _modules recursively; plain tensor attributes left out); its public
 * scalar and string attributes become metadata at their dotted path.
 * Other placeholders contribute their state (and dict items) as
 * containers, or their constructor arguments when they have no state.
 * Legacy files name module classes through ('module', class, file,
 * source) persistent ids: the source is ignored. The depth and visit
 * bounds above hold through placeholders.
 *
 * Writing: archive/data.pkl, archive/byteorder ("little"), archive/data/<i>
 * (one storage per tensor, keys 0..n-1 in set order; tensors holding the
 * very same bytes -- one buffer, same length and dtype, as tied weights
 * read from any format are -- share the first one's record, so they are
 * written once), archive/version
 * ("3\n"); every member stored, CRC-32, payload 64-byte aligned with the
 * 'FB' extra field, ZIP64 where sizes or offsets need it (zip.c). The
 * pickle uses only opcodes torch 1.13's weights_only loader allows: a flat
 * OrderedDict name -> tensor by default; with WV_SAVE_NEST the dict tree
 * is rebuilt from the dotted names (nested OrderedDicts). Metadata: in
 * nested mode each entry is a str leaf at its dotted place; in flat mode
 * (a state_dict that model.load_state_dict() must accept without unknown
 * keys) the entries go into the OrderedDict's _metadata attribute under
 * the key 'weightvault:metadata', which load_state_dict never consults.
 * Entries that are not valid UTF-8 are skipped. Types torch 1.13 has no
 * storage class for (U16, U32, U64, F8_E4M3, F8_E5M2) are written as
 * torch 2.x does (_rebuild_tensor_v3, loadable by torch >= 2.1/2.3).
 */
#include "core.h"
#include "fmt.h"
#include "pickle.h"
#include "tensor.h"
#include "zip.h"

#define MAX_DEPTH 100
#define MAX_VISITS ((size_t)1 << 24)
#define ALIGN 64

static const unsigned char legacy_magic[10] = {
    0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
};

/* ---- detection ---------------------------------------------------------- */

static bool is_legacy(const unsigned char *h, size_t n)
{
    return n >= 14 && h[0] == 0x80 && h[1] >= 2 && h[1] <= 5 &&
           h[2] == 0x8a && h[3] == 10 && memcmp(h + 4, legacy_magic, 10) == 0;
}

/* "<p>/data.pkl" with p non-empty and without '/'. */
static bool is_data_pkl(const char *s, size_t n)
{
    const char *sl = memchr(s, '/', n);
    return sl != NULL && sl != s && (size_t)(s + n - sl) == 9 &&
           memcmp(sl, "/data.pkl", 9) == 0;
}

static int probe(const struct wv__src *src, const unsigned char *h,
                 size_t n)
{
    if (is_legacy(h, n))
        return 1;
    if (n < 30 || memcmp(h, "PK\003\004", 4) != 0)
        return 0;
    /* Cheap path: the first local header names <p>/data.pkl. */
    size_t nl = wv__le16(h + 26);
    char name[512];
    struct wv__err e = {0};
    if (nl > 0 && nl < sizeof name &&
        wv__src_read(src, 30, name, nl, &e) == WV_OK &&
        is_data_pkl(name, nl))
        return 1;
    /* Otherwise look for <p>/data.pkl in the central directory. */
    struct wv__zip z;
    int found = 0;
    if (wv__zip_open(&z, src, &e) != WV_OK)
        return 0;
    if (z.n_ents > 0) {
        const char *f = z.ents[0].name, *sl = strchr(f, '/');
        size_t pl = sl ? (size_t)(sl - f) : 0;
        for (size_t i = 0; i < z.n_ents && pl && !found; i++)
            found = z.ents[i].name_len == pl + 9 &&
                    memcmp(z.ents[i].name, f, pl) == 0 &&
                    is_data_pkl(z.ents[i].name, z.ents[i].name_len);
    }
    wv__zip_close(&z);
    return found;
}

/* ---- reading ------------------------------------------------------------ */

struct tref {
    char *name;
    struct wv__pk_obj *t;
};

struct sdata {
    const unsigned char *data;
    void *owned;
    uint64_t bytes;
    size_t users;
    bool loaded;
    const struct wv__zip_entry *ent; /* zip: its record */
};

struct ctx {
    const struct wv__src *src;
    wv_model *m;
    struct wv__err *err;
    struct wv__pk pk;
    struct tref *tens;
    size_t nt, ct;
    struct wv__buf path;
    size_t visits;
    bool big_endian;
    struct sdata *sd;
    /* zip */
    struct wv__zip *z;
    const struct wv__zip_entry **sorted;
    char *prefix;
    bool objects; /* WV_LOAD_OBJECTS: placeholder objects are walked   */
    bool ts;      /* a TorchScript archive                              */
    struct tscls *cls;
    size_t ncls, ccls;
};

/* A TorchScript class as its code/ record declares it. */
struct tscls {
    bool module;       /* "class X(Module):"                            */
    struct wv__buf params, bufs; /* "\0name\0name\0" (lookup by strstr) */
};

static int add_meta(struct ctx *c, const char *key, const char *val,
                    size_t vlen)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    const char *k = *key ? key : "value";
    WV_CHECK(memchr(val, '\0', vlen) == NULL, WV_FORMAT,
             "%s: value '%.200s' holds a NUL byte (metadata values are "
             "C strings)",
             c->src->name, k);
    WV_CHECK(wv_model_get_meta(c->m, k) == NULL, WV_CORRUPT,
             "%s: name '%.200s' occurs twice", c->src->name, k);
    WV_CHECK(wv_model_set_meta(c->m, k, val) == WV_OK, WV_NOMEM,
             "out of memory");
out:
    return rc;
}

static int add_tref(struct ctx *c, struct wv__pk_obj *t)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    if (c->nt == c->ct) {
        size_t cap = c->ct ? c->ct * 2 : 16;
        struct tref *nt = wv__realloc(c->tens, cap * sizeof *nt);
        WV_CHECK(nt != NULL, WV_NOMEM, "out of memory");
        c->tens = nt;
        c->ct = cap;
    }
    const char *nm = c->path.len ? c->path.p : "tensor";
    c->tens[c->nt].name = wv__strdup(nm);
    WV_CHECK(c->tens[c->nt].name != NULL, WV_NOMEM, "out of memory");
    c->tens[c->nt].t = t;
    c->nt++;
out:
    return rc;
}

/* Append ".seg" (or "seg" at the root) to the path. */
static void path_push(struct ctx *c, size_t base, const char *s, size_t n)
{
    c->path.len = base;
    if (base)
        wv__buf_addc(&c->path, '.');
    wv__buf_add(&c->path, s, n);
    wv__buf_addc(&c->path, '\0');
    c->path.len--;
}

static const struct wv__zip_entry *find_rec(struct ctx *c, const char *rec);
static int flatten(struct ctx *c, const struct wv__pk_obj *o, int depth);

/* The quoted names of a "  __parameters__ = [\"a\", \"b\", ]" line, as
 * "\0a\0b\0". */
static void decl_names(const char *l, const char *end, struct wv__buf *b)
{
    const char *q = memchr(l, '[', (size_t)(end - l));
    wv__buf_addc(b, '\0');
    while (q && q < end && *q != ']') {
        const char *o = memchr(q, '"', (size_t)(end - q)), *e;
        if (o == NULL || (e = memchr(o + 1, '"', (size_t)(end - o - 1))) ==
                             NULL)
            break;
        wv__buf_add(b, o + 1, (size_t)(e - o - 1));
        wv__buf_addc(b, '\0');
        q = e + 1;
    }
}

/* The class behind a TorchScript placeholder: its GLOBAL "__torch__.a.b.X"
 * is declared as "class X(Module):" in record code/__torch__/a/b.py, with
 * "__parameters__ = [...]" and "__buffers__ = [...]" lines. Only those
 * lines are read (as text); the class's code is never run. Cached on the
 * GLOBAL (its `i` holds the table index + 1). */
static int ts_class(struct ctx *c, struct wv__pk_obj *g, struct tscls **out)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    const unsigned char *d = NULL;
    void *own = NULL;
    struct wv__buf rn = {0}, hd = {0};
    const char *dot = strrchr(g->s, '.');

    if (g->i > 0 && (size_t)g->i <= c->ncls) {
        *out = &c->cls[g->i - 1];
        goto out;
    }
    WV_CHECK(dot != NULL && dot[1] != '\0', WV_FORMAT,
             "%s: TorchScript class '%.200s' has no module", c->src->name,
             g->s);
    wv__buf_adds(&rn, "code/");
    for (const char *p = g->s; p < dot; p++)
        wv__buf_addc(&rn, *p == '.' ? '/' : *p);
    wv__buf_adds(&rn, ".py");
    wv__buf_addc(&rn, '\0');
    wv__buf_adds(&hd, "class ");
    wv__buf_adds(&hd, dot + 1);
    wv__buf_addc(&hd, '(');
    WV_CHECK(!rn.oom && !hd.oom, WV_NOMEM, "out of memory");
    const struct wv__zip_entry *e = find_rec(c, rn.p);
    WV_CHECK(e != NULL && e->size <= SIZE_MAX, WV_FORMAT,
             "%s: TorchScript class '%.200s' has no record '%.200s%.200s' "
             "(its parameters and buffers are declared there)",
             c->src->name, g->s, c->prefix, rn.p);
    WV_TRY(wv__zip_entry_data(c->z, e, &d, &own, err));
    if (c->ncls == c->ccls) {
        size_t cap = c->ccls ? c->ccls * 2 : 8;
        struct tscls *nc = wv__realloc(c->cls, cap * sizeof *nc);
        WV_CHECK(nc != NULL, WV_NOMEM, "out of memory");
        c->cls = nc;
        c->ccls = cap;
    }
    struct tscls *k = &c->cls[c->ncls];
    memset(k, 0, sizeof *k);
    c->ncls++;
    bool found = false, in = false;
    const char *p = (const char *)d, *end = p + e->size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        size_t ll = (size_t)(le - p);
        if (ll > 0 && p[0] != ' ' && p[0] != '\t') {
            if (in)
                break; /* the next top-level statement ends the class */
            if (ll > hd.len && memcmp(p, hd.p, hd.len) == 0) {
                const char *cb = memchr(p, ')', ll);
                found = in = true;
                k->module = cb != NULL &&
                            (size_t)(cb - p) >= hd.len + 6 &&
                            memcmp(cb - 6, "Module", 6) == 0;
            }
        } else if (in) {
            const char *t = p;
            while (t < le && *t == ' ')
                t++;
            if ((size_t)(le - t) > 14 && memcmp(t, "__parameters__", 14) == 0)
                decl_names(t, le, &k->params);
            else if ((size_t)(le - t) > 11 &&
                     memcmp(t, "__buffers__", 11) == 0)
                decl_names(t, le, &k->bufs);
        }
        p = nl ? nl + 1 : end;
    }
    WV_CHECK(!k->params.oom && !k->bufs.oom, WV_NOMEM, "out of memory");
    WV_CHECK(found, WV_FORMAT,
             "%s: record '%.200s' does not declare class '%.200s'",
             c->src->name, e->name, dot + 1);
    g->i = (int64_t)c->ncls;
    *out = k;
out:
    wv__free(own);
    wv__buf_release(&rn);
    wv__buf_release(&hd);
    return rc;
}

static bool in_names(const struct wv__buf *b, const char *s, size_t n)
{
    if (b->p == NULL || n == 0)
        return false;
    for (size_t i = 0; i + n + 2 <= b->len; i++)
        if (b->p[i] == '\0' && memcmp(b->p + i + 1, s, n) == 0 &&
            b->p[i + n + 1] == '\0')
            return true;
    return false;
}

static bool in_items(const struct wv__pk_obj *l, const char *s, size_t n)
{
    for (size_t i = 0; l && i < l->n; i++)
        if (l->items[i]->kind == WV__PK_STR && l->items[i]->len == n &&
            memcmp(l->items[i]->s, s, n) == 0)
            return true;
    return false;
}

static bool in_set(const struct wv__pk_obj *set, const char *s, size_t n)
{
    if (set == NULL || set->kind != WV__PK_OPAQUE || set->i != 1)
        return false;
    return in_items(set, s, n) ||
           (set->args && (set->args->kind == WV__PK_LIST ||
                          set->args->kind == WV__PK_TUPLE) &&
            in_items(set->args, s, n));
}

static const struct wv__pk_obj *dict_get(const struct wv__pk_obj *d,
                                         const char *key)
{
    if (d == NULL || d->kind != WV__PK_DICT)
        return NULL;
    for (size_t i = 0; i + 1 < d->n; i += 2)
        if (d->items[i]->kind == WV__PK_STR &&
            strcmp(d->items[i]->s, key) == 0)
            return d->items[i + 1];
    return NULL;
}

static bool is_scalar(const struct wv__pk_obj *v)
{
    return v->kind == WV__PK_INT || v->kind == WV__PK_BIGINT ||
           v->kind == WV__PK_FLOAT || v->kind == WV__PK_BOOL ||
           v->kind == WV__PK_STR;
}

/* Tensors of the (name -> value) pairs of dict d at path.name, optionally
 * only names in `only` (TorchScript declarations) and not in `skip` (a
 * module's non-persistent buffers). */
static int walk_pairs(struct ctx *c, const struct wv__pk_obj *d, int depth,
                      const struct wv__buf *only, const struct wv__pk_obj *skip,
                      int what)
{
    int rc = WV_OK;
    size_t base = c->path.len;
    if (d == NULL || d->kind != WV__PK_DICT)
        return WV_OK;
    for (size_t i = 0; i + 1 < d->n; i += 2) {
        const struct wv__pk_obj *k = d->items[i], *v = d->items[i + 1];
        /* Scanning counts against the visit bound too (a shared module
         * with many attributes may be reached many times), in units of
         * about 64 bytes compared. */
        size_t units = 1 + (only ? only->len / 64 : 0) +
                       (skip ? (skip->n + (skip->args ? skip->args->n : 0)) /
                                   8
                             : 0);
        c->visits += units;
        if (c->visits > MAX_VISITS) {
            rc = wv__seterr(c->err, WV_FORMAT,
                            "%s: the pickled object has more than %zu nodes "
                            "(shared subtrees?)",
                            c->src->name, MAX_VISITS);
            break;
        }
        if (k->kind != WV__PK_STR || memchr(k->s, '\0', k->len))
            continue;
        if (only && !in_names(only, k->s, k->len))
            continue;
        if (in_set(skip, k->s, k->len))
            continue;
        bool take = what == 0 ? v->kind == WV__PK_TENSOR
                  : what == 1 ? v->kind == WV__PK_OBJECT
                              : is_scalar(v) && k->s[0] != '_';
        if (!take)
            continue;
        path_push(c, base, k->s, k->len);
        rc = flatten(c, v, depth + 1);
        c->path.len = base;
        if (c->path.p)
            c->path.p[base] = '\0';
        if (rc != WV_OK)
            break;
    }
    return rc;
}

/* A placeholder object. A torch.nn.Module (its state has _parameters)
 * gives exactly model.state_dict()'s names: _parameters, then _buffers
 * without _non_persistent_buffers_set, then _modules recursively; its
 * public scalar attributes become metadata. A TorchScript module gives
 * torch.jit.load(f).state_dict()'s names: its attributes declared in
 * __parameters__, then __buffers__ (code/), then attributes holding
 * modules. Any other object: its state (and dict items) as containers. */
static int walk_object(struct ctx *c, const struct wv__pk_obj *o, int depth)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    const struct wv__pk_obj *st = o->state;
    const char *cn = o->cls ? o->cls->s : "?";

    if (c->ts && o->cls && strncmp(cn, "__torch__", 9) == 0) {
        struct tscls *k = NULL;
        WV_TRY(ts_class(c, o->cls, &k));
        if (!k->module)
            goto out; /* a TorchScript class: not in state_dict() */
        WV_CHECK(st == NULL || st->kind == WV__PK_DICT, WV_FORMAT,
                 "%s: TorchScript module '%.200s' at '%.200s' has a state "
                 "that is not a dict",
                 c->src->name, cn, c->path.len ? c->path.p : "(root)");
        WV_TRY(walk_pairs(c, st, depth, &k->params, NULL, 0));
        WV_TRY(walk_pairs(c, st, depth, &k->bufs, NULL, 0));
        WV_TRY(walk_pairs(c, st, depth, NULL, NULL, 1));
        WV_TRY(walk_pairs(c, st, depth, NULL, NULL, 2));
        goto out;
    }
    WV_CHECK(c->objects, WV_FORMAT,
             "%s: object of class '%.200s' at '%.200s': read it with "
             "--objects (objects=True in Python, WV_LOAD_OBJECTS)",
             c->src->name, cn, c->path.len ? c->path.p : "(root)");
    if (st && st->kind == WV__PK_TUPLE && st->n == 2 &&
        st->items[0]->kind == WV__PK_DICT)
        st = st->items[0]; /* (__dict__, slots) */
    if (dict_get(st, "_parameters") && dict_get(st, "_modules")) {
        const struct wv__pk_obj *mods = dict_get(st, "_modules");
        WV_TRY(walk_pairs(c, dict_get(st, "_parameters"), depth, NULL, NULL,
                          0));
        WV_TRY(walk_pairs(c, dict_get(st, "_buffers"), depth, NULL,
                          dict_get(st, "_non_persistent_buffers_set"), 0));
        WV_TRY(walk_pairs(c, mods, depth, NULL, NULL, 1));
        WV_TRY(walk_pairs(c, st, depth, NULL, NULL, 2));
        goto out;
    }
    if (st)
        WV_TRY(flatten(c, st, depth + 1));
    if (o->n > 0) {
        struct wv__pk_obj fake;
        memset(&fake, 0, sizeof fake);
        fake.kind = WV__PK_DICT;
        fake.items = o->items;
        fake.n = o->n;
        WV_TRY(flatten(c, &fake, depth + 1));
    }
    if (st == NULL && o->n == 0 && o->args && o->args->n > 0)
        WV_TRY(flatten(c, o->args, depth + 1));
out:
    return rc;
}

static int flatten(struct ctx *c, const struct wv__pk_obj *o, int depth)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    size_t base = c->path.len;
    char num[32];
    const char *at = base ? c->path.p : "(root)";

    WV_CHECK(++c->visits <= MAX_VISITS, WV_FORMAT,
             "%s: the pickled object has more than %zu nodes (shared "
             "subtrees?)",
             c->src->name, MAX_VISITS);
    WV_CHECK(depth <= MAX_DEPTH, WV_FORMAT,
             "%s: objects nested deeper than %d levels at '%.200s'",
             c->src->name, MAX_DEPTH, at);
    WV_CHECK(!c->path.oom, WV_NOMEM, "out of memory");
    switch (o->kind) {
    case WV__PK_DICT:
        for (size_t i = 0; i + 1 < o->n; i += 2) {
            const struct wv__pk_obj *k = o->items[i];
            if (k->kind == WV__PK_STR) {
                WV_CHECK(memchr(k->s, '\0', k->len) == NULL, WV_FORMAT,
                         "%s: a dict key under '%.200s' holds a NUL byte",
                         c->src->name, at);
                path_push(c, base, k->s, k->len);
            } else if (k->kind == WV__PK_INT || k->kind == WV__PK_BIGINT) {
                struct wv__buf b = {0};
                wv__pk_int_str(k, &b);
                path_push(c, base, b.p ? b.p : "", b.len);
                wv__buf_release(&b);
            } else if (k->kind == WV__PK_BOOL) {
                path_push(c, base, k->i ? "True" : "False", k->i ? 4 : 5);
            } else {
                WV_CHECK(0, WV_FORMAT,
                         "%s: a dict key under '%.200s' is not a str, int "
                         "or bool",
                         c->src->name, at);
            }
            WV_TRY(flatten(c, o->items[i + 1], depth + 1));
        }
        break;
    case WV__PK_LIST:
    case WV__PK_TUPLE:
        for (size_t i = 0; i < o->n; i++) {
            int l = snprintf(num, sizeof num, "%zu", i);
            path_push(c, base, num, (size_t)l);
            WV_TRY(flatten(c, o->items[i], depth + 1));
        }
        break;
    case WV__PK_TENSOR:
        WV_TRY(add_tref(c, (struct wv__pk_obj *)o));
        break;
    case WV__PK_OBJECT:
        WV_TRY(walk_object(c, o, depth));
        break;
    case WV__PK_INT:
    case WV__PK_BIGINT: {
        struct wv__buf b = {0};
        wv__pk_int_str(o, &b);
        WV_CHECK(!b.oom && b.p, WV_NOMEM, "out of memory");
        rc = add_meta(c, c->path.len ? c->path.p : "", b.p, b.len);
        wv__buf_release(&b);
        break;
    }
    case WV__PK_BOOL:
        WV_TRY(add_meta(c, c->path.len ? c->path.p : "",
                        o->i ? "True" : "False", o->i ? 4 : 5));
        break;
    case WV__PK_FLOAT: {
        char fb[40];
        wv__pk_float_repr(o->f, fb, sizeof fb);
        WV_TRY(add_meta(c, c->path.len ? c->path.p : "", fb, strlen(fb)));
        break;
    }
    case WV__PK_STR:
        WV_TRY(add_meta(c, c->path.len ? c->path.p : "", o->s, o->len));
        break;
    default:
        break; /* None, bytes, devices, globals, bare storages: dropped */
    }
out:
    c->path.len = base;
    if (c->path.p)
        c->path.p[base] = '\0';
    return rc;
}

static size_t esize(wv_dtype dt)
{
    return wv_dtype_size(dt);
}

/* Check one tensor against its storage; *contig says whether its bytes
 * are one C-order run starting at element `offset`. */
static int check_tensor(struct ctx *c, const struct tref *r, bool *contig,
                        uint64_t *nbytes)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    const struct wv__pk_obj *t = r->t, *st = t->storage;
    uint64_t numel, sbytes, last = 0, need;

    WV_CHECK(t->dtype != WV_DTYPE_INVALID, WV_FORMAT,
             "%s: tensor '%.200s': dtype %s is not supported",
             c->src->name, r->name, t->refused ? t->refused : "(unknown)");
    WV_CHECK(st->dtype != WV_DTYPE_INVALID, WV_FORMAT,
             "%s: tensor '%.200s': storage type %s is not supported",
             c->src->name, r->name, st->refused ? st->refused : "(unknown)");
    WV_CHECK(wv__shape_bytes(t->dtype, t->ndim, t->shape, &numel, nbytes) ==
                     WV_OK &&
                 *nbytes <= SIZE_MAX,
             WV_CORRUPT, "%s: tensor '%.200s': shape size overflows",
             c->src->name, r->name);
    WV_CHECK(!wv__mul_overflow(st->numel, esize(st->dtype), &sbytes),
             WV_CORRUPT, "%s: storage '%.100s': size overflows",
             c->src->name, st->s);
    *contig = true;
    uint64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expect)
            *contig = false;
        expect *= t->shape[i] ? t->shape[i] : 1;
    }
    if (numel == 0)
        goto out;
    /* Highest element index used, then its end in bytes. */
    last = t->offset;
    bool ovf = false;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        ovf |= wv__mul_overflow(t->shape[i] - 1, t->stride[i], &d);
        ovf |= wv__add_overflow(last, d, &last);
    }
    ovf |= wv__add_overflow(last, 1, &need);
    ovf |= wv__mul_overflow(need, esize(t->dtype), &need);
    WV_CHECK(!ovf && need <= sbytes, WV_CORRUPT,
             "%s: tensor '%.200s': offset %llu with its size and stride "
             "reaches past storage '%.100s' (%llu bytes)",
             c->src->name, r->name, (unsigned long long)t->offset, st->s,
             (unsigned long long)sbytes);
out:
    return rc;
}

static int load_storage(struct ctx *c, const struct wv__pk_obj *st,
                        struct sdata *s)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    if (s->loaded)
        goto out;
    if (c->m->index_only) {
        /* WV_LOAD_INDEX: s->data stays NULL, the tensors get none */
    } else if (c->z) {
        WV_TRY(wv__zip_entry_data(c->z, s->ent, &s->data, &s->owned, err));
    } else {
        WV_TRY(wv__src_data(c->src, st->data_off, s->bytes, &s->data,
                            &s->owned, err));
    }
    s->loaded = true;
out:
    return rc;
}

/* Copy the tensor's elements from its storage in C order. */
static void gather(const struct wv__pk_obj *t, const unsigned char *sbase,
                   unsigned char *dst, size_t es)
{
    uint64_t idx[WV_MAX_DIMS] = {0};
    uint64_t numel = 1;
    for (int i = 0; i < t->ndim; i++)
        numel *= t->shape[i];
    for (uint64_t k = 0; k < numel; k++) {
        uint64_t e = t->offset;
        for (int i = 0; i < t->ndim; i++)
            e += idx[i] * t->stride[i];
        memcpy(dst + k * es, sbase + e * es, es);
        for (int i = t->ndim - 1; i >= 0; i--) {
            if (++idx[i] < t->shape[i])
                break;
            idx[i] = 0;
        }
    }
}

static void swap_elems(void *p, uint64_t nbytes, wv_dtype dt)
{
    size_t es = esize(dt);
    if (dt == WV_C64)
        es = 4; /* two float32 halves */
    if (es > 1)
        wv__bswap(p, (size_t)(nbytes / es), es);
}

static int load_tensors(struct ctx *c)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    void *own = NULL;

    for (size_t i = 0; i < c->nt; i++) {
        bool contig;
        uint64_t nbytes;
        WV_TRY(check_tensor(c, &c->tens[i], &contig, &nbytes));
        c->sd[c->tens[i].t->storage->i].users++;
    }
    for (size_t i = 0; i < c->nt; i++) {
        const struct tref *r = &c->tens[i];
        const struct wv__pk_obj *t = r->t, *st = t->storage;
        struct sdata *s = &c->sd[st->i];
        bool contig;
        uint64_t nbytes;
        const unsigned char *data = NULL;
        size_t es = esize(t->dtype);
        WV_TRY(check_tensor(c, r, &contig, &nbytes));
        WV_CHECK(wv_model_find(c->m, r->name) == NULL, WV_CORRUPT,
                 "%s: tensor name '%.200s' occurs twice", c->src->name,
                 r->name);
        rc = load_storage(c, st, s);
        if (rc != WV_OK) {
            /* Name the tensor too (a CRC mismatch names file and member). */
            char msg[WV_ERRBUF_SIZE];
            snprintf(msg, sizeof msg, "%s", err->msg);
            wv__clearerr(err);
            WV_CHECK(0, rc, "%s (tensor '%.200s')", msg, r->name);
        }
        uint64_t off = t->offset * es; /* within sbytes: checked */
        if (nbytes == 0 || s->data == NULL) { /* NULL: an index load */
            data = NULL;
        } else if (contig && !c->big_endian && s->owned == NULL) {
            data = s->data + off;
        } else if (contig && !c->big_endian && s->users == 1 && off == 0 &&
                   nbytes == s->bytes) {
            own = s->owned;
            s->owned = NULL;
            data = own;
        } else if (contig && !c->big_endian) {
            /* Several tensors view this storage (tied weights, a memo
             * that names it many times): the set keeps it once and every
             * view borrows from it, so memory does not grow with them. */
            void *keep = s->owned;
            s->owned = NULL;
            WV_CHECK(wv__model_keep(c->m, keep, (size_t)s->bytes, false) ==
                         WV_OK,
                     WV_NOMEM, "out of memory");
            data = s->data + off;
        } else {
            WV_TRY(wv__expand_charge(c->src->ex, nbytes, r->name, err));
            own = wv__malloc((size_t)nbytes);
            WV_CHECK(own != NULL, WV_NOMEM,
                     "%s: tensor '%.200s': out of memory for %llu bytes",
                     c->src->name, r->name, (unsigned long long)nbytes);
            if (contig)
                memcpy(own, s->data + off, (size_t)nbytes);
            else
                gather(t, s->data, own, es);
            if (c->big_endian)
                swap_elems(own, nbytes, t->dtype);
            data = own;
        }
        if (--s->users == 0) {
            wv__free(s->owned);
            s->owned = NULL;
        }
        void *o = own;
        own = NULL;
        WV_TRY(wv__model_add(c->m, r->name, strlen(r->name), t->dtype,
                             t->ndim, t->shape, data, (size_t)nbytes, o,
                             err));
    }
out:
    wv__free(own);
    return rc;
}

static int cmp_ent(const void *a, const void *b)
{
    const struct wv__zip_entry *x = *(const struct wv__zip_entry *const *)a;
    const struct wv__zip_entry *y = *(const struct wv__zip_entry *const *)b;
    return strcmp(x->name, y->name);
}

static const struct wv__zip_entry *find_rec(struct ctx *c, const char *rec)
{
    struct wv__zip_entry key;
    const struct wv__zip_entry *kp = &key, **hit;
    struct wv__buf b = {0};
    wv__buf_adds(&b, c->prefix);
    wv__buf_adds(&b, rec);
    wv__buf_addc(&b, '\0');
    if (b.oom)
        return NULL;
    key.name = b.p;
    hit = bsearch(&kp, c->sorted, c->z->n_ents, sizeof *c->sorted, cmp_ent);
    wv__buf_release(&b);
    return hit ? *hit : NULL;
}

/* A small text record (version, byteorder) as a NUL-terminated string. */
static int small_rec(struct ctx *c, const struct wv__zip_entry *e,
                     char *buf, size_t cap)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    const unsigned char *d;
    void *own = NULL;
    WV_CHECK(e->size < cap, WV_CORRUPT,
             "%s: record '%.200s' is %llu bytes, too long", c->src->name,
             e->name, (unsigned long long)e->size);
    WV_TRY(wv__zip_entry_data(c->z, e, &d, &own, err));
    memcpy(buf, d, (size_t)e->size);
    buf[e->size] = '\0';
out:
    wv__free(own);
    return rc;
}

static int run_pickle(struct ctx *c, const unsigned char *p, size_t n,
                      struct wv__pk_obj **root, const char *rec)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    size_t used;
    WV_TRY(wv__pk_load(&c->pk, p, n, &used, root));
    WV_CHECK(used == n, WV_CORRUPT,
             "%s: record '%.200s': %zu bytes after the pickle's STOP",
             c->src->name, rec, n - used);
out:
    return rc;
}

static int finish(struct ctx *c, struct wv__pk_obj *root)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    c->sd = wv__calloc(c->pk.n_storages + 1, sizeof *c->sd);
    WV_CHECK(c->sd != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < c->pk.n_storages; i++)
        c->pk.storages[i]->i = (int64_t)i;
    wv__buf_addc(&c->path, '\0');
    c->path.len = 0;
    WV_TRY(flatten(c, root, 0));
    if (root->kind == WV__PK_DICT && root->attr_meta) {
        const struct wv__pk_obj *am = root->attr_meta;
        for (size_t i = 0; i + 1 < am->n; i += 2)
            if (am->items[i]->kind == WV__PK_STR &&
                am->items[i + 1]->kind == WV__PK_STR &&
                am->items[i]->len > 0 &&
                memchr(am->items[i]->s, '\0', am->items[i]->len) == NULL)
                WV_TRY(add_meta(c, am->items[i]->s, am->items[i + 1]->s,
                                am->items[i + 1]->len));
    }
out:
    return rc;
}

static int load_zip(struct ctx *c)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    struct wv__zip z;
    const unsigned char *pd = NULL;
    void *pown = NULL;
    struct wv__pk_obj *root;
    char txt[16];
    const char *nm = c->src->name;

    /* An index load reads no storage: their local headers, spread over
     * the file, are left unread (each would be a request remotely). */
    WV_TRY(c->m->index_only ? wv__zip_open_lazy(&z, c->src, err)
                            : wv__zip_open(&z, c->src, err));
    c->z = &z;
    WV_CHECK(z.n_ents > 0, WV_CORRUPT, "%s: empty zip archive", nm);
    const char *first = z.ents[0].name, *sl = strchr(first, '/');
    WV_CHECK(sl != NULL && sl != first, WV_CORRUPT,
             "%s: first member '%.200s' is not in a directory (PyTorch "
             "archives keep every record under '<name>/')",
             nm, first);
    size_t pl = (size_t)(sl - first) + 1;
    c->prefix = wv__strndup(first, pl);
    WV_CHECK(c->prefix != NULL, WV_NOMEM, "out of memory");
    c->sorted = wv__malloc(z.n_ents * sizeof *c->sorted);
    WV_CHECK(c->sorted != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < z.n_ents; i++) {
        const struct wv__zip_entry *e = &z.ents[i];
        WV_CHECK(e->name_len > pl && memcmp(e->name, c->prefix, pl) == 0,
                 WV_CORRUPT,
                 "%s: member '%.200s' lies outside the archive directory "
                 "'%.200s'",
                 nm, e->name, c->prefix);
        const char *rest = e->name + pl;
        if (strcmp(rest, "constants.pkl") == 0 ||
            strncmp(rest, "code/", 5) == 0)
            c->ts = true;
        c->sorted[i] = e;
    }
    qsort(c->sorted, z.n_ents, sizeof *c->sorted, cmp_ent);

    const struct wv__zip_entry *e = find_rec(c, "version");
    WV_CHECK(e != NULL, WV_CORRUPT,
             "%s: no record '%.200sversion' (torch.load requires it)", nm,
             c->prefix);
    WV_TRY(small_rec(c, e, txt, sizeof txt));
    size_t tl = strlen(txt);
    if (tl > 0 && txt[tl - 1] == '\n')
        txt[--tl] = '\0';
    WV_CHECK(tl > 0 && tl <= 2 && strspn(txt, "0123456789") == tl &&
                 strtol(txt, NULL, 10) >= 1 && strtol(txt, NULL, 10) <= 10,
             WV_FORMAT,
             "%s: record '%.200s' holds archive version '%.12s', not 1 to "
             "10",
             nm, e->name, txt);
    e = find_rec(c, "byteorder");
    if (e) {
        WV_TRY(small_rec(c, e, txt, sizeof txt));
        WV_CHECK(strcmp(txt, "little") == 0 || strcmp(txt, "big") == 0,
                 WV_CORRUPT,
                 "%s: record '%.200s' holds '%.12s', not 'little' or 'big'",
                 nm, e->name, txt);
        c->big_endian = strcmp(txt, "big") == 0;
    }
    e = find_rec(c, "data.pkl");
    WV_CHECK(e != NULL, WV_CORRUPT, "%s: no record '%.200sdata.pkl'", nm,
             c->prefix);
    WV_CHECK(e->size <= SIZE_MAX, WV_RANGE, "%s: data.pkl too large", nm);
    WV_TRY(wv__zip_entry_data(&z, e, &pd, &pown, err));
    char what[512];
    snprintf(what, sizeof what, "%s: record '%.200s'", nm, e->name);
    c->pk.what = what;
    if (c->ts)
        c->pk.placeholders |= WV__PK_PH_TORCHSCRIPT;
    WV_TRY(run_pickle(c, pd, (size_t)e->size, &root, e->name));
    c->pk.what = nm;
    WV_TRY(finish(c, root));
    /* Every storage against its record. */
    for (size_t i = 0; i < c->pk.n_storages; i++) {
        const struct wv__pk_obj *st = c->pk.storages[i];
        struct sdata *s = &c->sd[i];
        struct wv__buf rn = {0};
        wv__buf_adds(&rn, "data/");
        wv__buf_adds(&rn, st->s);
        wv__buf_addc(&rn, '\0');
        WV_CHECK(!rn.oom, WV_NOMEM, "out of memory");
        s->ent = find_rec(c, rn.p);
        if (s->ent == NULL && c->ts) {
            /* TorchScript shares storage keys between data.pkl and
             * constants.pkl: a storage written with the constants is not
             * written again under data/. */
            rn.len = 0;
            wv__buf_adds(&rn, "constants/");
            wv__buf_adds(&rn, st->s);
            wv__buf_addc(&rn, '\0');
            WV_CHECK(!rn.oom, WV_NOMEM, "out of memory");
            s->ent = find_rec(c, rn.p);
        }
        wv__buf_release(&rn);
        WV_CHECK(st->legacy == false, WV_CORRUPT,
                 "%s: storage '%.100s' has a legacy 6-item persistent id "
                 "in a zip archive",
                 nm, st->s);
        WV_CHECK(s->ent != NULL, WV_CORRUPT,
                 "%s: storage '%.100s' has no record '%.200sdata/%.100s'",
                 nm, st->s, c->prefix, st->s);
        if (st->dtype == WV_DTYPE_INVALID)
            continue; /* refused with the tensor's name */
        WV_CHECK(!wv__mul_overflow(st->numel, esize(st->dtype), &s->bytes) &&
                     s->bytes == s->ent->size,
                 WV_CORRUPT,
                 "%s: storage '%.100s' declares %llu elements of %s but "
                 "record '%.200s' holds %llu bytes (storage size mismatch)",
                 nm, st->s, (unsigned long long)st->numel,
                 wv_dtype_name(st->dtype), s->ent->name,
                 (unsigned long long)s->ent->size);
    }
    WV_TRY(load_tensors(c));
out:
    wv__free(pown);
    if (c->sd)
        for (size_t i = 0; i < c->pk.n_storages; i++)
            wv__free(c->sd[i].owned);
    wv__zip_close(&z);
    c->z = NULL;
    return rc;
}

static int load_legacy_pickles(struct ctx *c, const unsigned char *p,
                               size_t n, struct wv__pk_obj **root,
                               struct wv__pk_obj **keys, size_t *end)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    struct wv__pk_obj *o;
    size_t pos = 0, used;
    const char *nm = c->src->name;

    WV_TRY(wv__pk_load(&c->pk, p, n, &used, &o));
    WV_CHECK(o->kind == WV__PK_BIGINT && o->len == 10 &&
                 memcmp(o->s, legacy_magic, 10) == 0,
             WV_CORRUPT, "%s: legacy magic number is wrong", nm);
    pos += used;
    WV_TRY(wv__pk_load(&c->pk, p + pos, n - pos, &used, &o));
    WV_CHECK(o->kind == WV__PK_INT && o->i == 1001, WV_FORMAT,
             "%s: legacy protocol version is not 1001", nm);
    pos += used;
    WV_TRY(wv__pk_load(&c->pk, p + pos, n - pos, &used, &o));
    WV_CHECK(o->kind == WV__PK_DICT, WV_CORRUPT,
             "%s: legacy sys_info is a %s, not a dict", nm,
             o->kind == WV__PK_LIST ? "list" : "non-dict");
    for (size_t i = 0; i + 1 < o->n; i += 2)
        if (o->items[i]->kind == WV__PK_STR &&
            strcmp(o->items[i]->s, "little_endian") == 0)
            c->big_endian = o->items[i + 1]->kind == WV__PK_BOOL &&
                            o->items[i + 1]->i == 0;
    pos += used;
    WV_TRY(wv__pk_load(&c->pk, p + pos, n - pos, &used, root));
    pos += used;
    WV_TRY(wv__pk_load(&c->pk, p + pos, n - pos, &used, keys));
    pos += used;
    *end = pos;
out:
    return rc;
}

static int load_legacy(struct ctx *c)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    const unsigned char *p = NULL;
    void *own = NULL;
    struct wv__pk_obj *root = NULL, *keys = NULL;
    size_t end = 0;
    const char *nm = c->src->name;
    uint64_t len = c->src->size < ((uint64_t)1 << 20) ? c->src->size
                                                      : (uint64_t)1 << 20;

    /* The pickles' length is only known by running them: in pread mode,
     * read a growing prefix until they fit. */
    for (;;) {
        WV_CHECK(len <= SIZE_MAX, WV_RANGE, "%s: too large", nm);
        WV_TRY(wv__src_data(c->src, 0, len, &p, &own, err));
        c->pk.what = nm;
        rc = load_legacy_pickles(c, p, (size_t)len, &root, &keys, &end);
        if (rc == WV_OK || len == c->src->size || rc != WV_CORRUPT)
            break;
        wv__pk_free(&c->pk);
        wv__pk_init(&c->pk, nm, err);
        c->pk.ex = c->src->ex;
        wv__free(own);
        own = NULL;
        wv__clearerr(err);
        len = len > c->src->size / 4 ? c->src->size : len * 4;
    }
    WV_TRY(rc);
    WV_TRY(finish(c, root));
    WV_CHECK(keys->kind == WV__PK_LIST, WV_CORRUPT,
             "%s: legacy storage key list is not a list", nm);
    uint64_t off = end;
    for (size_t i = 0; i < keys->n; i++) {
        const struct wv__pk_obj *k = keys->items[i], *st = NULL;
        WV_CHECK(k->kind == WV__PK_STR, WV_CORRUPT,
                 "%s: legacy storage key %zu is not a string", nm, i);
        for (size_t j = 0; j < c->pk.n_storages && st == NULL; j++)
            if (strcmp(c->pk.storages[j]->s, k->s) == 0)
                st = c->pk.storages[j];
        WV_CHECK(st != NULL, WV_CORRUPT,
                 "%s: storage key '%.100s' is listed but no tensor uses it",
                 nm, k->s);
        struct wv__pk_obj *sw = c->pk.storages[st->i];
        WV_CHECK(!sw->placed, WV_CORRUPT,
                 "%s: storage key '%.100s' is listed twice", nm, k->s);
        WV_CHECK(sw->legacy, WV_CORRUPT,
                 "%s: storage '%.100s' has a 5-item persistent id in a "
                 "legacy file",
                 nm, k->s);
        WV_CHECK(sw->dtype != WV_DTYPE_INVALID, WV_FORMAT,
                 "%s: storage '%.100s': %s is not supported", nm, k->s,
                 sw->refused ? sw->refused : "its type");
        unsigned char hdr[8];
        WV_TRY(wv__src_read(c->src, off, hdr, 8, err));
        uint64_t cnt = wv__le64(hdr), bytes, stop;
        WV_CHECK(cnt == sw->numel, WV_CORRUPT,
                 "%s: storage '%.100s': record holds %llu elements but its "
                 "persistent id says %llu (storage size mismatch)",
                 nm, k->s, (unsigned long long)cnt,
                 (unsigned long long)sw->numel);
        WV_CHECK(!wv__mul_overflow(cnt, esize(sw->dtype), &bytes) &&
                     !wv__add_overflow(off + 8, bytes, &stop) &&
                     stop <= c->src->size,
                 WV_CORRUPT,
                 "%s: storage '%.100s' (%llu elements of %s) runs past the "
                 "end of the file",
                 nm, k->s, (unsigned long long)cnt,
                 wv_dtype_name(sw->dtype));
        sw->placed = true;
        sw->data_off = off + 8;
        c->sd[st->i].bytes = bytes;
        off = stop;
    }
    for (size_t j = 0; j < c->pk.n_storages; j++)
        WV_CHECK(c->pk.storages[j]->placed, WV_CORRUPT,
                 "%s: storage '%.100s' is not in the storage key list", nm,
                 c->pk.storages[j]->s);
    WV_CHECK(off == c->src->size, WV_CORRUPT,
             "%s: %llu trailing bytes after the last storage", nm,
             (unsigned long long)(c->src->size - off));
    wv__free(own);
    own = NULL;
    WV_TRY(load_tensors(c));
out:
    wv__free(own);
    if (c->sd)
        for (size_t i = 0; i < c->pk.n_storages; i++)
            wv__free(c->sd[i].owned);
    return rc;
}

static int load(const struct wv__src *src, unsigned flags, wv_model *m,
                struct wv__err *err)
{
    int rc = WV_OK;
    struct ctx c;
    unsigned char h[14];
    size_t hn = src->size < sizeof h ? (size_t)src->size : sizeof h;

    memset(&c, 0, sizeof c);
    c.src = src;
    c.m = m;
    c.err = err;
    wv__pk_init(&c.pk, src->name, err);
    c.pk.ex = src->ex;
    c.objects = (flags & WV_LOAD_OBJECTS) != 0;
    if (c.objects)
        c.pk.placeholders = WV__PK_PH_ANY;
    WV_TRY(wv__src_read(src, 0, h, hn, err));
    if (is_legacy(h, hn)) {
        WV_TRY(load_legacy(&c));
    } else {
        WV_CHECK(hn >= 4 && memcmp(h, "PK\003\004", 4) == 0, WV_FORMAT,
                 "%s: not a PyTorch file (neither a zip archive nor a "
                 "legacy torch.save stream)",
                 src->name);
        WV_TRY(load_zip(&c));
    }
    m->meta_state = WV__META_FROM_FILE;
out:
    for (size_t i = 0; i < c.nt; i++)
        wv__free(c.tens[i].name);
    wv__free(c.tens);
    wv__free(c.sd);
    wv__free(c.sorted);
    wv__free(c.prefix);
    for (size_t i = 0; i < c.ncls; i++) {
        wv__buf_release(&c.cls[i].params);
        wv__buf_release(&c.cls[i].bufs);
    }
    wv__free(c.cls);
    wv__buf_release(&c.path);
    wv__pk_free(&c.pk);
    return rc;
}

/* ---- writing ------------------------------------------------------------ */

struct pw {
    struct wv__buf b;
    const char *gname[40];
    unsigned gmemo[40];
    size_t ng;
    unsigned memo;
    size_t *key; /* tensor i's storage key: the first tensor with its bytes */
};

static void p_op(struct pw *w, unsigned char op)
{
    wv__buf_addc(&w->b, (char)op);
}

static void p_str(struct pw *w, const char *s, size_t n)
{
    unsigned char l[4];
    wv__put32(l, (uint32_t)n);
    p_op(w, 'X');
    wv__buf_add(&w->b, l, 4);
    wv__buf_add(&w->b, s, n);
}

static void p_uint(struct pw *w, uint64_t v)
{
    unsigned char q[9];
    if (v < 256) {
        p_op(w, 'K');
        wv__buf_addc(&w->b, (char)v);
    } else if (v < 65536) {
        p_op(w, 'M');
        wv__put16(q, (uint16_t)v);
        wv__buf_add(&w->b, q, 2);
    } else if (v < 0x80000000u) {
        p_op(w, 'J');
        wv__put32(q, (uint32_t)v);
        wv__buf_add(&w->b, q, 4);
    } else {
        /* LONG1: minimal little-endian two's complement (positive). */
        size_t n = 0;
        uint64_t x = v;
        while (x) {
            q[n++] = (unsigned char)x;
            x >>= 8;
        }
        if (q[n - 1] & 0x80)
            q[n++] = 0;
        p_op(w, 0x8a);
        wv__buf_addc(&w->b, (char)n);
        wv__buf_add(&w->b, q, n);
    }
}

/* GLOBAL "mod\nname\n", memoised after its first use. */
static void p_global(struct pw *w, const char *line)
{
    unsigned char q[4];
    for (size_t i = 0; i < w->ng; i++) {
        if (w->gname[i] == line) {
            if (w->gmemo[i] < 256) {
                p_op(w, 'h');
                wv__buf_addc(&w->b, (char)w->gmemo[i]);
            } else {
                p_op(w, 'j');
                wv__put32(q, w->gmemo[i]);
                wv__buf_add(&w->b, q, 4);
            }
            return;
        }
    }
    p_op(w, 'c');
    wv__buf_adds(&w->b, line);
    if (w->ng < 40) {
        w->gname[w->ng] = line;
        w->gmemo[w->ng++] = w->memo;
        if (w->memo < 256) {
            p_op(w, 'q');
            wv__buf_addc(&w->b, (char)w->memo);
        } else {
            p_op(w, 'r');
            wv__put32(q, w->memo);
            wv__buf_add(&w->b, q, 4);
        }
        w->memo++;
    }
}

static const char G_OD[] = "collections\nOrderedDict\n";
static const char G_V2[] = "torch._utils\n_rebuild_tensor_v2\n";
static const char G_V3[] = "torch._utils\n_rebuild_tensor_v3\n";
static const char G_UNTYPED[] = "torch\nUntypedStorage\n";

/* Storage class (v2) or dtype (v3) global of a dtype. */
static const char *storage_global(wv_dtype dt, const char **dtype_global)
{
    *dtype_global = NULL;
    switch (dt) {
    case WV_F64: return "torch\nDoubleStorage\n";
    case WV_F32: return "torch\nFloatStorage\n";
    case WV_F16: return "torch\nHalfStorage\n";
    case WV_BF16: return "torch\nBFloat16Storage\n";
    case WV_I64: return "torch\nLongStorage\n";
    case WV_I32: return "torch\nIntStorage\n";
    case WV_I16: return "torch\nShortStorage\n";
    case WV_I8: return "torch\nCharStorage\n";
    case WV_U8: return "torch\nByteStorage\n";
    case WV_BOOL: return "torch\nBoolStorage\n";
    case WV_C64: return "torch\nComplexFloatStorage\n";
    case WV_U16: *dtype_global = "torch\nuint16\n"; break;
    case WV_U32: *dtype_global = "torch\nuint32\n"; break;
    case WV_U64: *dtype_global = "torch\nuint64\n"; break;
    case WV_F8_E4M3: *dtype_global = "torch\nfloat8_e4m3fn\n"; break;
    case WV_F8_E5M2: *dtype_global = "torch\nfloat8_e5m2\n"; break;
    default: return NULL;
    }
    return G_UNTYPED;
}

static void p_tuple(struct pw *w, int n, const uint64_t *v)
{
    if (n == 0) {
        p_op(w, ')');
        return;
    }
    if (n > 3)
        p_op(w, '(');
    for (int i = 0; i < n; i++)
        p_uint(w, v[i]);
    p_op(w, n > 3 ? 't' : (unsigned char)(0x84 + n));
}

static int p_tensor(struct pw *w, const struct wv_tensor *t, wv_dtype to,
                    size_t key, struct wv__err *err)
{
    int rc = WV_OK;
    const char *dg;
    const char *sg = storage_global(to, &dg);
    uint64_t stride[WV_MAX_DIMS], numel = wv_tensor_numel(t);
    char ks[32];
    int kl = snprintf(ks, sizeof ks, "%zu", key);

    WV_CHECK(sg != NULL, WV_FORMAT,
             "tensor '%.200s': dtype %s has no PyTorch equivalent", t->name,
             wv_dtype_name(to));
    uint64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= t->shape[i] ? t->shape[i] : 1;
    }
    p_global(w, dg ? G_V3 : G_V2);
    p_op(w, '(');
    p_op(w, '(');
    p_str(w, "storage", 7);
    p_global(w, sg);
    p_str(w, ks, (size_t)kl);
    p_str(w, "cpu", 3);
    p_uint(w, dg ? numel * wv_dtype_size(to) : numel);
    p_op(w, 't');
    p_op(w, 'Q');
    p_uint(w, 0);
    p_tuple(w, t->ndim, t->shape);
    p_tuple(w, t->ndim, stride);
    p_op(w, 0x89);
    p_global(w, G_OD);
    p_op(w, ')');
    p_op(w, 'R');
    if (dg)
        p_global(w, dg);
    p_op(w, 't');
    p_op(w, 'R');
out:
    return rc;
}

/* The nested tree of --nest: nodes with children in insertion order and a
 * hash of (parent, segment) for lookups. */
struct node {
    const char *seg;
    size_t seglen;
    size_t parent, first, last, next; /* indices; 0 = none (0 is root) */
    int kind;                         /* 0 dict, 1 tensor, 2 metadata */
    size_t idx;
};

struct tree {
    struct node *n;
    size_t nn, cn;
    size_t *hash;
    size_t hcap;
};

static size_t node_hash(size_t parent, const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ parent;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)h;
}

static int tree_insert(struct tree *tr, const char *name, int kind,
                       size_t idx, struct wv__err *err)
{
    int rc = WV_OK;
    size_t cur = 0, depth = 0;
    const char *s = name;
    for (;;) {
        const char *dot = strchr(s, '.');
        size_t sl = dot ? (size_t)(dot - s) : strlen(s);
        bool leaf = dot == NULL;
        WV_CHECK(++depth < MAX_DEPTH, WV_FORMAT,
                 "'%.200s' has more than %d dotted parts to nest",
                 name, MAX_DEPTH - 1);
        WV_CHECK(tr->n[cur].kind == 0, WV_FORMAT,
                 "cannot nest '%.200s': a prefix of it is a tensor or "
                 "metadata entry (write it flat)",
                 name);
        size_t h = node_hash(cur, s, sl) & (tr->hcap - 1), found = 0;
        while (tr->hash[h]) {
            struct node *x = &tr->n[tr->hash[h]];
            if (x->parent == cur && x->seglen == sl &&
                memcmp(x->seg, s, sl) == 0) {
                found = tr->hash[h];
                break;
            }
            h = (h + 1) & (tr->hcap - 1);
        }
        if (found) {
            WV_CHECK(!leaf, WV_FORMAT,
                     "cannot nest '%.200s': it is also a prefix of another "
                     "name (write it flat)",
                     name);
            cur = found;
        } else {
            WV_CHECK(tr->nn < tr->cn, WV_ERROR, "nest tree overflow");
            size_t k = tr->nn++;
            struct node *x = &tr->n[k];
            memset(x, 0, sizeof *x);
            x->seg = s;
            x->seglen = sl;
            x->parent = cur;
            x->kind = leaf ? kind : 0;
            x->idx = idx;
            if (tr->n[cur].last)
                tr->n[tr->n[cur].last].next = k;
            else
                tr->n[cur].first = k;
            tr->n[cur].last = k;
            tr->hash[h] = k;
            cur = k;
        }
        if (leaf)
            break;
        s = dot + 1;
    }
out:
    return rc;
}

static int emit_node(struct pw *w, const wv_model *m, const struct tree *tr,
                     size_t k, const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    const struct node *x = &tr->n[k];
    if (x->kind == 1) {
        const struct wv_tensor *t = &m->tensors[x->idx];
        WV_TRY(p_tensor(w, t, wv__cast_target(t->dtype, opts->cast),
                        w->key[x->idx], err));
    } else if (x->kind == 2) {
        const char *v = m->meta[x->idx].value;
        p_str(w, v, strlen(v));
    } else {
        p_global(w, G_OD);
        p_op(w, ')');
        p_op(w, 'R');
        size_t batch = 0;
        for (size_t c = x->first; c; c = tr->n[c].next) {
            if (batch == 0)
                p_op(w, '(');
            p_str(w, tr->n[c].seg, tr->n[c].seglen);
            WV_TRY(emit_node(w, m, tr, c, opts, err));
            if (++batch == 1000 || tr->n[c].next == 0) {
                p_op(w, 'u');
                batch = 0;
            }
        }
    }
out:
    return rc;
}

static bool meta_ok(const struct wv__meta *e)
{
    return *e->key && wv__utf8_valid(e->key, strlen(e->key)) &&
           wv__utf8_valid(e->value, strlen(e->value));
}

static int build_pickle(const wv_model *m, const wv_save_opts *opts,
                        struct pw *w, struct wv__err *err)
{
    int rc = WV_OK;
    struct tree tr = {0};
    bool nest = (opts->flags & WV_SAVE_NEST) != 0;

    p_op(w, 0x80);
    p_op(w, 2);
    if (nest) {
        size_t segs = 1;
        for (size_t i = 0; i < m->n_tensors; i++)
            for (const char *s = m->tensors[i].name; *s; s++)
                segs += *s == '.';
        for (size_t i = 0; i < m->n_meta; i++)
            for (const char *s = m->meta[i].key; *s; s++)
                segs += *s == '.';
        segs += m->n_tensors + m->n_meta;
        tr.cn = segs;
        tr.n = wv__calloc(segs, sizeof *tr.n);
        tr.hcap = 16;
        while (tr.hcap < 2 * segs)
            tr.hcap *= 2;
        tr.hash = wv__calloc(tr.hcap, sizeof *tr.hash);
        WV_CHECK(tr.n != NULL && tr.hash != NULL, WV_NOMEM,
                 "out of memory");
        tr.nn = 1; /* the root */
        for (size_t i = 0; i < m->n_tensors; i++)
            WV_TRY(tree_insert(&tr, m->tensors[i].name, 1, i, err));
        for (size_t i = 0; i < m->n_meta; i++)
            if (meta_ok(&m->meta[i]))
                WV_TRY(tree_insert(&tr, m->meta[i].key, 2, i, err));
        WV_TRY(emit_node(w, m, &tr, 0, opts, err));
    } else {
        p_global(w, G_OD);
        p_op(w, ')');
        p_op(w, 'R');
        for (size_t i = 0; i < m->n_tensors; i++) {
            const struct wv_tensor *t = &m->tensors[i];
            if (i % 1000 == 0)
                p_op(w, '(');
            p_str(w, t->name, strlen(t->name));
            WV_TRY(p_tensor(w, t, wv__cast_target(t->dtype, opts->cast),
                            w->key[i], err));
            if (i % 1000 == 999 || i + 1 == m->n_tensors)
                p_op(w, 'u');
        }
        size_t nmeta = 0;
        for (size_t i = 0; i < m->n_meta; i++)
            nmeta += meta_ok(&m->meta[i]);
        if (nmeta) {
            p_op(w, '}');
            p_str(w, "_metadata", 9);
            p_op(w, '}');
            p_str(w, "weightvault:metadata", 20);
            p_op(w, '}');
            p_op(w, '(');
            for (size_t i = 0; i < m->n_meta; i++) {
                const struct wv__meta *e = &m->meta[i];
                if (!meta_ok(e))
                    continue;
                p_str(w, e->key, strlen(e->key));
                p_str(w, e->value, strlen(e->value));
            }
            p_op(w, 'u');
            p_op(w, 's');
            p_op(w, 's');
            p_op(w, 'b');
        }
    }
    p_op(w, '.');
    WV_CHECK(!w->b.oom, WV_NOMEM, "out of memory");
out:
    wv__free(tr.n);
    wv__free(tr.hash);
    return rc;
}

static int put_record(struct wv__zipw *zw, const char *name, const void *p,
                      size_t n)
{
    int rc = wv__zipw_begin(zw, name, WV__ZIP_STORED, n, ALIGN);
    if (rc != WV_OK)
        return rc;
    wv__zipw_write(zw, p, n);
    return wv__zipw_end(zw);
}

/* Tensors holding the very same bytes (one buffer, same length and dtype:
 * tied weights, views of one storage) get one storage record, as torch
 * itself writes them. */
struct alias_ix {
    uintptr_t data;
    size_t nbytes;
    int dtype;
    size_t i;
};
static int alias_cmp(const void *a, const void *b)
{
    const struct alias_ix *x = a, *y = b;
    if (x->data != y->data)
        return x->data < y->data ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    if (x->dtype != y->dtype)
        return x->dtype < y->dtype ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* key[i] = the first tensor holding i's bytes. The sort runs on records
 * that carry what the comparator needs, so it needs no state outside them
 * (reentrant: two sets may be saved on two threads at once). */
static int storage_keys(const wv_model *m, size_t *key, struct wv__err *err)
{
    int rc = WV_OK;
    size_t n = m->n_tensors;
    struct alias_ix *ord = wv__malloc((n ? n : 1) * sizeof *ord);
    WV_CHECK(ord != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        key[i] = i;
        ord[i] = (struct alias_ix){(uintptr_t)t->data, t->nbytes,
                                   (int)t->dtype, i};
    }
    qsort(ord, n, sizeof *ord, alias_cmp);
    for (size_t i = 1; i < n; i++) {
        const struct wv_tensor *a = &m->tensors[ord[i - 1].i];
        const struct wv_tensor *b = &m->tensors[ord[i].i];
        if (b->nbytes > 0 && a->data == b->data && a->nbytes == b->nbytes &&
            a->dtype == b->dtype)
            key[ord[i].i] = key[ord[i - 1].i];
    }
out:
    wv__free(ord);
    return rc;
}

static int save(const wv_model *m, struct wv__wfile *f,
                const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    struct pw w;
    struct wv__zipw zw;
    char rec[48];

    memset(&w, 0, sizeof w);
    wv__zipw_init(&zw, f, err);
    for (size_t i = 0; i < m->n_tensors; i++)
        WV_CHECK(strlen(m->tensors[i].name) < 0xffffffffu, WV_RANGE,
                 "tensor name too long");
    w.key = wv__malloc((m->n_tensors ? m->n_tensors : 1) * sizeof *w.key);
    WV_CHECK(w.key != NULL, WV_NOMEM, "out of memory");
    WV_TRY(storage_keys(m, w.key, err));
    WV_TRY(build_pickle(m, opts, &w, err));
    WV_TRY(put_record(&zw, "archive/data.pkl", w.b.p, w.b.len));
    WV_TRY(put_record(&zw, "archive/byteorder", "little", 6));
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        if (w.key[i] != i)
            continue; /* its bytes are record key[i]'s */
        wv_dtype to = wv__cast_target(t->dtype, opts->cast);
        uint64_t out_bytes = wv__cast_nbytes(t, to);
        snprintf(rec, sizeof rec, "archive/data/%zu", i);
        WV_TRY(wv__zipw_begin(&zw, rec, WV__ZIP_STORED, out_bytes, ALIGN));
        wv__zipw_tensor(&zw, t, to);
        WV_TRY(wv__zipw_end(&zw));
    }
    WV_TRY(put_record(&zw, "archive/version", "3\n", 2));
    WV_TRY(wv__zipw_finish(&zw));
    rc = f->rc;
out:
    if (rc == WV_OK && zw.rc != WV_OK)
        rc = zw.rc;
    if (rc == WV_OK && f->rc != WV_OK)
        rc = f->rc;
    wv__zipw_release(&zw);
    wv__buf_release(&w.b);
    wv__free(w.key);
    return rc;
}

const struct wv__format_ops wv__fmt_pth = {
    WV_FMT_PTH, "pth", ".pth .pt .bin .ckpt", probe, load, save,
    WV__SHARDS_INDEX, NULL,
};
