/*
 * npy.c -- NumPy's .npy array format (numpy/lib/format.py, numpy 1.24).
 *
 *   offset 0   6 bytes  "\x93NUMPY"
 *   offset 6   u8 major, u8 minor: 1.0, 2.0 or 3.0
 *   offset 8   v1: u16 HEADER_LEN; v2, v3: u32 HEADER_LEN (little-endian)
 *   then       HEADER_LEN bytes (latin-1 for v1/v2, UTF-8 for v3): a Python
 *              dict literal padded with spaces and a final '\n', e.g.
 *              {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 *   then       prod(shape) * itemsize bytes of elements, C order or (when
 *              fortran_order is True) Fortran order, in descr's byte order
 *
 * A .npy file is one tensor, named after the file's base name without its
 * extension ("array" for memory sources). The npz reader hands each member
 * to wv__npy_load_src() as a memory source.
 *
 * Reading: the dict is parsed by a small bounded parser of exactly what
 * numpy (also Python 2 numpy) writes: keys 'descr', 'fortran_order' and
 * 'shape', each exactly once, in any order; strings in single or double
 * quotes without escapes; True/False; a tuple of non-negative ints (with an
 * optional Python 2 'L' suffix, and the trailing comma a 1-tuple needs);
 * an optional trailing comma; then only whitespace. The header may be at
 * most 10000 bytes in v1 (numpy's _MAX_HEADER_SIZE) and 1 MiB in v2/v3.
 * At most WV_MAX_DIMS dimensions; the element count times the item size is
 * overflow-checked and must fit in an int64 as numpy's npy_intp does.
 * Supported descr: b1 u1 i1 u2 i2 u4 i4 u8 i8 f2 f4 f8 c8 with byte order
 * '<', '>', '|' or '=' (or none); '|' and '=' are read as little-endian,
 * the byte order of every machine we build for. Object arrays ('|O') are
 * refused (they would need pickle, and nothing is ever unpickled), as are
 * structured (list) descrs, strings, void, datetimes and complex128.
 *
 * The data must be exactly prod(shape) * itemsize bytes. numpy ignores
 * trailing bytes after the array (np.load reads `count` items); we refuse
 * them, because they are either corruption or a second array appended with
 * a second np.save() to the same file, which we would silently drop.
 *
 * Tensors are C order and little-endian: C-order little-endian data is
 * borrowed (zero copy from a mapping), Fortran-order data is transposed and
 * big-endian data byte-swapped into an owned buffer.
 *
 * Writing reproduces np.save byte for byte (format.py _write_array_header
 * and _wrap_header): the dict with keys sorted, repr() values, 21 minus the
 * digits of shape[0] spaces of growth room, then spaces and '\n' so that
 * magic + length + header is a multiple of 64 (64 more spaces when already
 * aligned, as numpy does). Version 1.0 unless the header exceeds 65535
 * bytes (2.0). Data is always C order, little-endian.
 */
#include "core.h"
#include "fmt.h"
#include "tensor.h"
#include "zip.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER_V1 10000u
#define NPY_MAX_HEADER_V2 (1u << 20)
#define NPY_ALIGN 64u
#define NPY_GROWTH_DIGITS 21

struct npy_hdr {
    wv_dtype dtype;
    bool swap;
    bool fortran;
    int ndim;
    uint64_t shape[WV_MAX_DIMS];
};

/* ---- descr strings ------------------------------------------------------ */

static const struct {
    const char *code;
    wv_dtype dt;
} descr_map[] = {
    {"b1", WV_BOOL}, {"u1", WV_U8},  {"i1", WV_I8},  {"u2", WV_U16},
    {"i2", WV_I16},  {"u4", WV_U32}, {"i4", WV_I32}, {"u8", WV_U64},
    {"i8", WV_I64},  {"f2", WV_F16}, {"f4", WV_F32}, {"f8", WV_F64},
    {"c8", WV_C64},
};

static const char *descr_of(wv_dtype dt)
{
    switch (dt) {
    case WV_BOOL: return "|b1";
    case WV_U8: return "|u1";
    case WV_I8: return "|i1";
    case WV_U16: return "<u2";
    case WV_I16: return "<i2";
    case WV_U32: return "<u4";
    case WV_I32: return "<i4";
    case WV_U64: return "<u8";
    case WV_I64: return "<i8";
    case WV_F16: return "<f2";
    case WV_F32: return "<f4";
    case WV_F64: return "<f8";
    case WV_C64: return "<c8";
    default: return NULL;
    }
}

static int map_descr(const char *what, const char *s, size_t n,
                     struct npy_hdr *h, struct wv__err *err)
{
    int rc = WV_OK;
    int sl = (int)(n > 40 ? 40 : n);
    char order = '=';
    const char *k = s;
    size_t kn = n;
    if (kn > 0 && strchr("<>|=", k[0]) != NULL) {
        order = k[0];
        k++;
        kn--;
    }
    WV_CHECK(!(kn > 0 && k[0] == 'O'), WV_FORMAT,
             "%s: object arrays (dtype '%.*s') would need pickle to load; "
             "weightvault never unpickles",
             what, sl, s);
    for (size_t i = 0; i < sizeof descr_map / sizeof descr_map[0]; i++) {
        if (kn == 2 && memcmp(k, descr_map[i].code, 2) == 0) {
            h->dtype = descr_map[i].dt;
            h->swap = order == '>' && wv_dtype_size(h->dtype) > 1;
            goto out;
        }
    }
    const char *why = "";
    if (kn > 0 && (k[0] == 'U' || k[0] == 'S' || k[0] == 'a'))
        why = " (string arrays are not supported)";
    else if (kn > 0 && k[0] == 'V')
        why = " (void/raw arrays are not supported)";
    else if (kn > 0 && (k[0] == 'M' || k[0] == 'm'))
        why = " (datetime arrays are not supported)";
    else if (kn == 3 && memcmp(k, "c16", 3) == 0)
        why = " (complex128 is not supported)";
    WV_CHECK(0, WV_FORMAT, "%s: unsupported dtype '%.*s'%s", what, sl, s,
             why);
out:
    return rc;
}

/* ---- the header dict ---------------------------------------------------- */

struct cur {
    const char *p, *end;
    const char *what;
    struct wv__err *err;
};

static void ws(struct cur *c)
{
    while (c->p < c->end &&
           (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool eat(struct cur *c, char ch)
{
    ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static bool eat_word(struct cur *c, const char *w)
{
    size_t n = strlen(w);
    ws(c);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return true;
    }
    return false;
}

static int quoted(struct cur *c, const char **s, size_t *n)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    ws(c);
    WV_CHECK(c->p < c->end && (*c->p == '\'' || *c->p == '"'), WV_CORRUPT,
             "%s: header is not a dict of the form numpy writes: expected a "
             "quoted string",
             c->what);
    char q = *c->p++;
    const char *b = c->p;
    while (c->p < c->end && *c->p != q) {
        WV_CHECK(*c->p != '\\' && *c->p != '\n', WV_CORRUPT,
                 "%s: header string has an escape or a line break",
                 c->what);
        c->p++;
    }
    WV_CHECK(c->p < c->end, WV_CORRUPT, "%s: header has an unterminated "
             "string", c->what);
    *s = b;
    *n = (size_t)(c->p - b);
    c->p++;
out:
    return rc;
}

static int parse_shape(struct cur *c, struct npy_hdr *h)
{
    struct wv__err *err = c->err;
    int rc = WV_OK;
    WV_CHECK(eat(c, '('), WV_CORRUPT, "%s: shape is not a tuple", c->what);
    h->ndim = 0;
    bool comma = false;
    for (;;) {
        if (eat(c, ')'))
            break;
        ws(c);
        WV_CHECK(!(c->p < c->end && *c->p == '-'), WV_CORRUPT,
                 "%s: shape has a negative dimension", c->what);
        WV_CHECK(c->p < c->end && *c->p >= '0' && *c->p <= '9', WV_CORRUPT,
                 "%s: shape is not a tuple of ints", c->what);
        uint64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            WV_CHECK(!wv__mul_overflow(v, 10, &v) &&
                         !wv__add_overflow(v, (uint64_t)(*c->p - '0'), &v) &&
                         v <= (uint64_t)INT64_MAX,
                     WV_CORRUPT, "%s: shape dimension overflows int64",
                     c->what);
            c->p++;
        }
        if (c->p < c->end && (*c->p == 'L' || *c->p == 'l'))
            c->p++; /* Python 2 long */
        WV_CHECK(h->ndim < WV_MAX_DIMS, WV_FORMAT,
                 "%s: shape has more than %d dimensions (too many dims)",
                 c->what, WV_MAX_DIMS);
        h->shape[h->ndim++] = v;
        comma = eat(c, ',');
        if (!comma) {
            WV_CHECK(eat(c, ')'), WV_CORRUPT,
                     "%s: shape is not a tuple of ints", c->what);
            break;
        }
    }
    /* "(3)" is an int in Python, not a tuple. */
    WV_CHECK(h->ndim != 1 || comma, WV_CORRUPT,
             "%s: shape is not a tuple ('(n)' needs a comma: '(n,)')",
             c->what);
out:
    return rc;
}

static int parse_dict(const char *s, size_t n, const char *what,
                      struct npy_hdr *h, struct wv__err *err)
{
    int rc = WV_OK;
    struct cur c = {s, s + n, what, err};
    bool have[3] = {false, false, false};
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};

    WV_CHECK(eat(&c, '{'), WV_CORRUPT,
             "%s: header is not a dict (does not start with '{')", what);
    while (!eat(&c, '}')) {
        const char *k;
        size_t kn;
        WV_TRY(quoted(&c, &k, &kn));
        int which = -1;
        for (int i = 0; i < 3; i++)
            if (kn == strlen(keys[i]) && memcmp(k, keys[i], kn) == 0)
                which = i;
        WV_CHECK(which >= 0, WV_CORRUPT,
                 "%s: header has unexpected extra key '%.*s' (exactly "
                 "'descr', 'fortran_order' and 'shape' are allowed)",
                 what, (int)(kn > 40 ? 40 : kn), k);
        WV_CHECK(!have[which], WV_CORRUPT, "%s: header has duplicate key "
                 "'%s'", what, keys[which]);
        have[which] = true;
        WV_CHECK(eat(&c, ':'), WV_CORRUPT, "%s: header is not a dict: "
                 "expected ':' after key '%s'", what, keys[which]);
        if (which == 0) {
            const char *d;
            size_t dn;
            WV_CHECK(!eat(&c, '['), WV_FORMAT,
                     "%s: structured dtypes (a list descr) are not "
                     "supported",
                     what);
            WV_CHECK(!eat(&c, '('), WV_FORMAT,
                     "%s: sub-array dtypes (a tuple descr) are not "
                     "supported",
                     what);
            WV_TRY(quoted(&c, &d, &dn));
            WV_TRY(map_descr(what, d, dn, h, err));
        } else if (which == 1) {
            if (eat_word(&c, "True"))
                h->fortran = true;
            else if (eat_word(&c, "False"))
                h->fortran = false;
            else
                WV_CORRUPT_BKPT("%s: fortran_order is not a bool (True or "
                                "False)",
                                what);
        } else {
            WV_TRY(parse_shape(&c, h));
        }
        if (eat(&c, ','))
            continue;
        WV_CHECK(eat(&c, '}'), WV_CORRUPT,
                 "%s: header is not a dict: expected ',' or '}' at byte %zu",
                 what, (size_t)(c.p - s));
        break;
    }
    ws(&c);
    WV_CHECK(c.p == c.end, WV_CORRUPT,
             "%s: header has trailing characters after the dict at byte %zu",
             what, (size_t)(c.p - s));
    for (int i = 0; i < 3; i++)
        WV_CHECK(have[i], WV_CORRUPT, "%s: header is missing key '%s'",
                 what, keys[i]);
out:
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

/* Fortran order to C order: walk the output in C order with an odometer and
 * keep the matching Fortran offset. */
static void transpose(const unsigned char *src, unsigned char *dst,
                      const struct npy_hdr *h, uint64_t numel, size_t isz)
{
    uint64_t fstride[WV_MAX_DIMS], idx[WV_MAX_DIMS] = {0};
    uint64_t s = 1;
    for (int k = 0; k < h->ndim; k++) {
        fstride[k] = s;
        s *= h->shape[k];
    }
    uint64_t off = 0;
    for (uint64_t i = 0; i < numel; i++) {
        memcpy(dst + i * isz, src + off * isz, isz);
        for (int k = h->ndim - 1; k >= 0; k--) {
            if (++idx[k] < h->shape[k]) {
                off += fstride[k];
                break;
            }
            off -= fstride[k] * (idx[k] - 1);
            idx[k] = 0;
        }
    }
}

int wv__npy_load_src(const struct wv__src *src, const char *name,
                     size_t name_len, void *owned, wv_model *m,
                     struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char pre[12];
    unsigned char *hdr_owned = NULL;
    const char *hdr;
    const unsigned char *data = NULL;
    void *data_owned = NULL;
    unsigned char *conv = NULL;
    struct npy_hdr h;
    const char *what = src->name;

    memset(&h, 0, sizeof h);
    WV_CHECK(src->size >= 10, WV_CORRUPT,
             "%s: %llu bytes is too short for an npy preamble (bad magic)",
             what, (unsigned long long)src->size);
    WV_TRY(wv__src_read(src, 0, pre, 10, err));
    WV_CHECK(memcmp(pre, NPY_MAGIC, 6) == 0, WV_CORRUPT,
             "%s: bad magic: not an npy file", what);
    unsigned major = pre[6], minor = pre[7];
    WV_CHECK((major == 1 || major == 2 || major == 3) && minor == 0,
             WV_FORMAT, "%s: unsupported npy format version %u.%u (bad magic "
             "version; 1.0, 2.0 and 3.0 are known)",
             what, major, minor);
    uint64_t hstart, hlen, cap;
    if (major == 1) {
        hstart = 10;
        hlen = wv__le16(pre + 8);
        cap = NPY_MAX_HEADER_V1;
    } else {
        WV_CHECK(src->size >= 12, WV_CORRUPT,
                 "%s: truncated npy preamble", what);
        WV_TRY(wv__src_read(src, 0, pre, 12, err));
        hstart = 12;
        hlen = wv__le32(pre + 8);
        cap = NPY_MAX_HEADER_V2;
    }
    WV_CHECK(hlen <= cap, WV_CORRUPT,
             "%s: header of %llu bytes is too long (limit %llu for version "
             "%u.0)",
             what, (unsigned long long)hlen, (unsigned long long)cap, major);
    WV_CHECK(hstart + hlen <= src->size, WV_CORRUPT,
             "%s: truncated header: %llu bytes declared, file has %llu",
             what, (unsigned long long)hlen,
             (unsigned long long)(src->size - hstart));
    if (src->map) {
        hdr = (const char *)src->map + hstart;
    } else {
        hdr_owned = wv__malloc(hlen ? (size_t)hlen : 1);
        WV_CHECK(hdr_owned != NULL, WV_NOMEM, "out of memory");
        WV_TRY(wv__src_read(src, hstart, hdr_owned, (size_t)hlen, err));
        hdr = (const char *)hdr_owned;
    }
    if (major == 3)
        WV_CHECK(wv__utf8_valid(hdr, (size_t)hlen), WV_CORRUPT,
                 "%s: version 3.0 header is not valid UTF-8", what);
    WV_TRY(parse_dict(hdr, (size_t)hlen, what, &h, err));

    /* Sizes: the product of the non-zero extents must fit npy_intp even
     * when another extent is zero, as numpy requires. */
    uint64_t numel = 1, nz = 1, nbytes;
    size_t isz = wv_dtype_size(h.dtype);
    for (int i = 0; i < h.ndim; i++) {
        numel *= h.shape[i] ? 1 : 0;
        if (h.shape[i])
            WV_CHECK(!wv__mul_overflow(nz, h.shape[i], &nz), WV_CORRUPT,
                     "%s: shape overflow: the element count does not fit "
                     "64 bits",
                     what);
    }
    numel *= nz;
    WV_CHECK(!wv__mul_overflow(nz, isz, &nbytes) &&
                 nbytes <= (uint64_t)INT64_MAX,
             WV_CORRUPT, "%s: shape overflow: the data size does not fit "
             "int64", what);
    nbytes = numel * isz;
    uint64_t data_off = hstart + hlen, avail = src->size - data_off;
    WV_CHECK(nbytes <= avail, WV_CORRUPT,
             "%s: truncated data: dtype %s and shape need %llu bytes but "
             "%llu follow the header",
             what, wv_dtype_name(h.dtype), (unsigned long long)nbytes,
             (unsigned long long)avail);
    WV_CHECK(nbytes == avail, WV_CORRUPT,
             "%s: %llu trailing bytes after the array data (a second array "
             "appended to the file?)",
             what, (unsigned long long)(avail - nbytes));
    WV_CHECK(nbytes <= SIZE_MAX, WV_RANGE, "%s: array too large", what);
    if (m->index_only) { /* WV_LOAD_INDEX: the header is all we want */
        rc = wv__model_add(m, name, name_len, h.dtype, h.ndim, h.shape, NULL,
                           (size_t)nbytes, NULL, err);
        goto out;
    }
    WV_TRY(wv__src_data(src, data_off, nbytes, &data, &data_owned, err));

    bool transp = h.fortran && h.ndim > 1 && numel > 1;
    if (transp || (h.swap && numel > 0)) {
        if (transp || (data_owned == NULL && owned == NULL)) {
            char lbl[208]; /* the array, as the bound's message names it */
            snprintf(lbl, sizeof lbl, "%.*s",
                     (int)(name_len < 200 ? name_len : 200), name);
            WV_TRY(wv__expand_charge(src->ex, nbytes, lbl, err));
            conv = wv__malloc((size_t)nbytes);
            WV_CHECK(conv != NULL, WV_NOMEM,
                     "%s: out of memory for %llu bytes", what,
                     (unsigned long long)nbytes);
            if (transp)
                transpose(data, conv, &h, numel, isz);
            else
                memcpy(conv, data, (size_t)nbytes);
            data = conv;
        }
        if (h.swap) {
            /* `data` lies in a buffer we own: conv, data_owned, or the
             * member buffer `owned` that src->map points into. */
            /* complex64 is two float32s, each swapped on its own. */
            size_t part = h.dtype == WV_C64 ? isz / 2 : isz;
            wv__bswap((unsigned char *)(uintptr_t)data,
                      (size_t)(nbytes / part), part);
        }
    }
    void *keep;
    if (conv) {
        keep = conv;
        conv = NULL;
    } else if (data_owned) {
        keep = data_owned;
        data_owned = NULL;
    } else {
        keep = owned;
        owned = NULL;
    }
    if (keep != owned) {
        wv__free(owned);
        owned = NULL;
    }
    rc = wv__model_add(m, name, name_len, h.dtype, h.ndim, h.shape, data,
                       (size_t)nbytes, keep, err);
out:
    wv__free(owned);
    wv__free(data_owned);
    wv__free(conv);
    wv__free(hdr_owned);
    return rc;
}

static int npy_probe(const struct wv__src *src, const unsigned char *h,
                      size_t n)
{
    uint64_t size = src->size;
    (void)size;
    return n >= 6 && memcmp(h, NPY_MAGIC, 6) == 0;
}

static int npy_load(const struct wv__src *src, unsigned flags, wv_model *m,
                    struct wv__err *err)
{
    (void)flags;
    const char *name = "array";
    size_t len = 5;
    if (src->fd >= 0 && src->name) {
        const char *base = strrchr(src->name, '/');
        base = base ? base + 1 : src->name;
        const char *dot = strrchr(base, '.');
        size_t bl = dot && dot != base ? (size_t)(dot - base) : strlen(base);
        if (bl > 0 && wv__utf8_valid(base, bl) &&
            memchr(base, '\0', bl) == NULL) {
            name = base;
            len = bl;
        }
    }
    return wv__npy_load_src(src, name, len, NULL, m, err);
}

/* ---- writing ------------------------------------------------------------ */

static const char *numpy_lacks(wv_dtype dt)
{
    switch (dt) {
    case WV_BF16: return "bfloat16";
    case WV_F8_E4M3: return "float8_e4m3";
    case WV_F8_E5M2: return "float8_e5m2";
    default: return NULL;
    }
}

int wv__npy_header(const struct wv_tensor *t, wv_dtype to, struct wv__buf *b,
                   struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__buf d = {0};
    const char *descr = descr_of(to);
    const char *lack = numpy_lacks(to);
    WV_CHECK(lack == NULL, WV_UNSUPPORTED,
             "tensor '%.200s': npy has no %s type; convert with --dtype F32",
             t->name, lack);
    WV_CHECK(descr != NULL, WV_MISUSE, "tensor '%.200s': invalid dtype",
             t->name);
    wv__buf_addf(&d, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                 descr);
    for (int i = 0; i < t->ndim; i++)
        wv__buf_addf(&d, "%s%llu", i ? ", " : "",
                     (unsigned long long)t->shape[i]);
    wv__buf_adds(&d, t->ndim == 1 ? ",), }" : "), }");
    if (t->ndim > 0) {
        char digits[24];
        int nd = snprintf(digits, sizeof digits, "%llu",
                          (unsigned long long)t->shape[0]);
        for (int i = nd; i < NPY_GROWTH_DIGITS; i++)
            wv__buf_addc(&d, ' ');
    }
    WV_CHECK(!d.oom, WV_NOMEM, "out of memory");
    size_t hlen = d.len + 1; /* with the final '\n' */
    size_t pre = 10;
    size_t pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    if (hlen + pad > 0xffff) {
        pre = 12;
        pad = NPY_ALIGN - (pre + hlen) % NPY_ALIGN;
    }
    unsigned char p[12];
    memcpy(p, NPY_MAGIC, 6);
    p[6] = pre == 10 ? 1 : 2;
    p[7] = 0;
    if (pre == 10)
        wv__put16(p + 8, (uint16_t)(hlen + pad));
    else
        wv__put32(p + 8, (uint32_t)(hlen + pad));
    wv__buf_add(b, p, pre);
    wv__buf_add(b, d.p, d.len);
    for (size_t i = 0; i < pad; i++)
        wv__buf_addc(b, ' ');
    wv__buf_addc(b, '\n');
    WV_CHECK(!b->oom, WV_NOMEM, "out of memory");
out:
    wv__buf_release(&d);
    return rc;
}

static int npy_save(const wv_model *m, struct wv__wfile *f,
                    const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__buf b = {0};
    WV_CHECK(m->n_tensors == 1, WV_MISUSE,
             "%s: npy holds one array; this set has %zu tensors (write .npz)",
             f->path, m->n_tensors);
    const struct wv_tensor *t = &m->tensors[0];
    wv_dtype to = wv__cast_target(t->dtype, opts->cast);
    WV_TRY(wv__npy_header(t, to, &b, err));
    wv__wfile_write(f, b.p, b.len);
    wv__wfile_tensor(f, t, to);
    rc = f->rc;
out:
    wv__buf_release(&b);
    return rc;
}

const struct wv__format_ops wv__fmt_npy = {
    WV_FMT_NPY, "npy", ".npy", npy_probe, npy_load, npy_save,
    WV__SHARDS_INDEX, NULL,
};
