/*
 * mxnet.c -- MXNet NDArray list files (mx.nd.save, Gluon save_parameters,
 * Module save_checkpoint): apache/mxnet src/ndarray/ndarray.cc
 * NDArray::Save/Load and NDArray::LegacyLoad, include/mxnet/tuple.h,
 * 3rdparty/mshadow/mshadow/base.h (TypeFlag). All fields little-endian.
 *
 *   file:
 *     u64 0x112            kMXAPINDArrayListMagic
 *     u64 0                reserved
 *     u64 N                number of arrays
 *     N x record
 *     u64 K                number of names: 0 (a list) or N (a dict)
 *     K x { u64 len; len bytes, no NUL terminator }
 *     EOF
 *
 *   record V2 (magic 0xF993FAC9) and V3 (0xF993FACA, np-shape semantics):
 *     u32 magic
 *     i32 stype            0 dense; 1 row_sparse, 2 csr (refused);
 *                          -1 undefined (a 'none' array, refused)
 *     i32 ndim; ndim x i64 dims
 *                          V2: ndim 0 is a 'none' array (refused);
 *                          V3: ndim -1 is 'none' (refused), 0 a scalar
 *     i32 dev_type, i32 dev_id   context: 1 cpu, 2 gpu, 3 cpu_pinned,
 *                          5 cpu_shared; the data is on disk either way
 *     i32 type_flag        0 f32, 1 f64, 2 f16, 3 u8, 4 i32, 5 i8, 6 i64,
 *                          7 bool, 8 i16, 9 u16, 10 u32, 11 u64, 12 bf16
 *     prod(dims) x sizeof(type) bytes, C order
 *   record V1 (magic 0xF993FAC8): as V2 without the stype field.
 *   record pre-V1: the u32 magic IS ndim, then ndim x u32 dims, then the
 *     context, type_flag and data as above (ndim 0 is a 'none' array).
 *
 * Reading. Every count and length is checked against the bytes left:
 * N against the smallest valid record (20 bytes), ndim against
 * WV_MAX_DIMS (a pre-V1 "ndim" above 8 is an unknown magic), every dim
 * non-negative, the data size overflow-checked and within the file, the
 * name count 0 or N, each name within the file, and nothing after the
 * last name (MXNet ignores trailing bytes; we refuse them as a second
 * list appended to the file). Records are parsed twice, once to find the
 * names that follow them and once to add the tensors in lock step with
 * the names, so no allocation depends on N. Names are kept as stored
 * ("arg:"/"aux:" prefixes included) and must be non-empty UTF-8 without
 * NUL and unique (MXNet's dict would keep the last duplicate); a list
 * without names gets "0", "1", ... The data is borrowed from the mapping
 * (the stored layout is C order little-endian already), and read into an
 * owned buffer in pread mode. The context is validated (known dev_type,
 * dev_id >= 0) and otherwise ignored.
 *
 * Loading "<prefix>-NNNN.params" (four or more digits, as save_checkpoint
 * names it) from a file attaches "<prefix>-symbol.json" from the same
 * directory, when it exists, as metadata "mxnet.symbol": at most 64 MiB,
 * valid UTF-8 and one JSON value, else the load fails naming that file.
 *
 * Writing reproduces MXNet 1.x (numpy-shape semantics off): V2 dense
 * records with context cpu(0), then the names. A set whose names are
 * exactly "0", "1", ... in order is written as a list (no names), which is
 * how such a set was read. 0-d tensors cannot be held by V2 records (ndim
 * 0 means 'none'); a set holding one is written entirely with V3 records,
 * which MXNet loads with np-shape semantics on (npx.set_np()). C64 and the
 * float8 types have no MXNet type flag and are refused. Metadata is not
 * written (the format has no place for it, and no side file is created).
 */
#include "core.h"
#include "fmt.h"
#include "json.h"
#include "tensor.h"

#define MX_LIST_MAGIC 0x112ull
#define MX_V1 0xF993FAC8u
#define MX_V2 0xF993FAC9u
#define MX_V3 0xF993FACAu
#define MX_MIN_RECORD 20u /* pre-V1, one dim, no data */
#define MX_SYMBOL_MAX ((uint64_t)64 << 20)

static const wv_dtype flag_map[] = {
    WV_F32, WV_F64, WV_F16, WV_U8,  WV_I32, WV_I8,  WV_I64,
    WV_BOOL, WV_I16, WV_U16, WV_U32, WV_U64, WV_BF16,
};
#define N_FLAGS ((int)(sizeof flag_map / sizeof flag_map[0]))

static int flag_of(wv_dtype dt)
{
    for (int i = 0; i < N_FLAGS; i++)
        if (flag_map[i] == dt)
            return i;
    return -1;
}

struct rec {
    unsigned version; /* 0 pre-V1, 1, 2, 3 */
    wv_dtype dtype;
    int ndim;
    uint64_t shape[WV_MAX_DIMS];
    uint64_t data_off, nbytes;
};

/* Read n bytes at *off and advance, or fail naming array `idx`. */
static int get(const struct wv__src *src, uint64_t *off, void *buf, size_t n,
               uint64_t idx, const char *what, struct wv__err *err)
{
    int rc = WV_OK;
    WV_CHECK(*off <= src->size && n <= src->size - *off, WV_CORRUPT,
             "%s: array %llu: truncated %s: needs %zu bytes at offset %llu, "
             "the file has %llu",
             src->name, (unsigned long long)idx, what, n,
             (unsigned long long)*off, (unsigned long long)src->size);
    WV_TRY(wv__src_read(src, *off, buf, n, err));
    *off += n;
out:
    return rc;
}

static int read_record(const struct wv__src *src, uint64_t *off,
                       uint64_t idx, struct rec *r, struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char b[8 * WV_MAX_DIMS];
    const char *nm = src->name;
    unsigned long long ix = (unsigned long long)idx;

    memset(r, 0, sizeof *r);
    WV_TRY(get(src, off, b, 4, idx, "record magic", err));
    uint32_t magic = wv__le32(b);
    if (magic == MX_V1 || magic == MX_V2 || magic == MX_V3) {
        r->version = magic - MX_V1 + 1;
    } else {
        WV_CHECK(magic <= WV_MAX_DIMS, WV_CORRUPT,
                 "%s: array %llu: unknown record magic 0x%08x (not V1, V2 "
                 "or V3; as a pre-V1 ndim it exceeds %d dims)",
                 nm, ix, (unsigned)magic, WV_MAX_DIMS);
        r->version = 0;
    }
    if (r->version >= 2) {
        WV_TRY(get(src, off, b, 4, idx, "storage type", err));
        int32_t stype = (int32_t)wv__le32(b);
        WV_CHECK(stype != 1 && stype != 2, WV_UNSUPPORTED,
                 "%s: array %llu: sparse storage (%s) is not supported; "
                 "make it dense in MXNet first (tostype('default'))",
                 nm, ix, stype == 1 ? "row_sparse" : "csr");
        WV_CHECK(stype != -1, WV_FORMAT,
                 "%s: array %llu: undefined storage type: a 'none' array "
                 "holds no data", nm, ix);
        WV_CHECK(stype == 0, WV_CORRUPT,
                 "%s: array %llu: unknown storage type %d", nm, ix,
                 (int)stype);
    }
    if (r->version == 0) {
        r->ndim = (int)magic;
        WV_CHECK(r->ndim > 0, WV_FORMAT,
                 "%s: array %llu: a 'none' array (pre-V1 ndim 0) holds no "
                 "data", nm, ix);
        WV_TRY(get(src, off, b, 4 * (size_t)r->ndim, idx, "shape", err));
        for (int i = 0; i < r->ndim; i++)
            r->shape[i] = wv__le32(b + 4 * i);
    } else {
        WV_TRY(get(src, off, b, 4, idx, "ndim", err));
        int32_t nd = (int32_t)wv__le32(b);
        WV_CHECK(!(r->version == 3 && nd == -1), WV_FORMAT,
                 "%s: array %llu: a 'none' array (V3 ndim -1) holds no data",
                 nm, ix);
        WV_CHECK(nd >= 0, WV_CORRUPT, "%s: array %llu: negative ndim %d",
                 nm, ix, (int)nd);
        WV_CHECK(nd <= WV_MAX_DIMS, WV_FORMAT,
                 "%s: array %llu: %d dims, more than %d are not supported "
                 "(too many dims)",
                 nm, ix, (int)nd, WV_MAX_DIMS);
        WV_CHECK(nd > 0 || r->version == 3, WV_FORMAT,
                 "%s: array %llu: a 'none' array (V%u ndim 0) holds no data",
                 nm, ix, r->version);
        r->ndim = nd;
        WV_TRY(get(src, off, b, 8 * (size_t)nd, idx, "shape", err));
        for (int i = 0; i < nd; i++) {
            int64_t d = (int64_t)wv__le64(b + 8 * i);
            WV_CHECK(d >= 0, WV_CORRUPT,
                     "%s: array %llu: dimension %d is negative (%lld)", nm,
                     ix, i, (long long)d);
            r->shape[i] = (uint64_t)d;
        }
    }
    WV_TRY(get(src, off, b, 12, idx, "context and type flag", err));
    int32_t dev_type = (int32_t)wv__le32(b);
    int32_t dev_id = (int32_t)wv__le32(b + 4);
    int32_t flag = (int32_t)wv__le32(b + 8);
    WV_CHECK(dev_type == 1 || dev_type == 2 || dev_type == 3 ||
                 dev_type == 5,
             WV_CORRUPT, "%s: array %llu: unknown context device type %d",
             nm, ix, (int)dev_type);
    WV_CHECK(dev_id >= 0, WV_CORRUPT,
             "%s: array %llu: negative context device id %d", nm, ix,
             (int)dev_id);
    WV_CHECK(flag >= 0 && flag < N_FLAGS, WV_CORRUPT,
             "%s: array %llu: unknown type flag %d", nm, ix, (int)flag);
    r->dtype = flag_map[flag];
    uint64_t numel = 1;
    for (int i = 0; i < r->ndim; i++)
        WV_CHECK(!wv__mul_overflow(numel, r->shape[i], &numel), WV_CORRUPT,
                 "%s: array %llu: shape overflow: the element count does "
                 "not fit 64 bits", nm, ix);
    WV_CHECK(!wv__mul_overflow(numel, wv_dtype_size(r->dtype), &r->nbytes),
             WV_CORRUPT, "%s: array %llu: shape overflow: the data size "
             "does not fit 64 bits", nm, ix);
    WV_CHECK(r->nbytes <= src->size - *off, WV_CORRUPT,
             "%s: array %llu: truncated data: %s %s needs %llu bytes at "
             "offset %llu, %llu remain",
             nm, ix, wv_dtype_name(r->dtype),
             r->ndim > 0 ? "with its shape" : "scalar",
             (unsigned long long)r->nbytes, (unsigned long long)*off,
             (unsigned long long)(src->size - *off));
    r->data_off = *off;
    *off += r->nbytes;
out:
    return rc;
}

static int mx_probe(const struct wv__src *src, const unsigned char *h,
                    size_t n)
{
    (void)src;
    return n >= 8 && wv__le64(h) == MX_LIST_MAGIC;
}

/* Name i, read at *noff into a fresh NUL-terminated buffer, validated. */
static int read_name(const struct wv__src *src, uint64_t *noff, uint64_t i,
                     char **out, struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char b[8];
    char *s = NULL;
    const char *nm = src->name;
    unsigned long long ix = (unsigned long long)i;

    WV_TRY(wv__src_read(src, *noff, b, 8, err));
    uint64_t len = wv__le64(b);
    *noff += 8;
    /* The first pass checked len against the file. */
    s = wv__malloc((size_t)len + 1);
    WV_CHECK(s != NULL, WV_NOMEM, "%s: out of memory", nm);
    WV_TRY(wv__src_read(src, *noff, s, (size_t)len, err));
    s[len] = '\0';
    *noff += len;
    int sl = (int)(len > 200 ? 200 : len);
    WV_CHECK(len > 0, WV_FORMAT, "%s: array %llu: empty name", nm, ix);
    WV_CHECK(memchr(s, '\0', (size_t)len) == NULL, WV_FORMAT,
             "%s: array %llu: name '%.*s' contains a NUL byte", nm, ix, sl,
             s);
    WV_CHECK(wv__utf8_valid(s, (size_t)len), WV_FORMAT,
             "%s: array %llu: name is not valid UTF-8", nm, ix);
    *out = s;
    s = NULL;
out:
    wv__free(s);
    return rc;
}

/* "<prefix>-NNNN.params" -> "<prefix>-symbol.json", or NULL. */
static char *symbol_path(const char *path)
{
    size_t n = strlen(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (n < 7 || memcmp(path + n - 7, ".params", 7) != 0)
        return NULL;
    size_t e = n - 7, d = e;
    while (d > (size_t)(base - path) && path[d - 1] >= '0' &&
           path[d - 1] <= '9')
        d--;
    if (e - d < 4 || d <= (size_t)(base - path) + 1 || path[d - 1] != '-')
        return NULL;
    size_t pl = d; /* through the '-' */
    char *s = wv__malloc(pl + sizeof "symbol.json");
    if (s == NULL)
        return NULL;
    memcpy(s, path, pl);
    memcpy(s + pl, "symbol.json", sizeof "symbol.json");
    return s;
}

static int attach_symbol(const struct wv__src *src, wv_model *m,
                         struct wv__err *err)
{
    int rc = WV_OK;
    char *path = NULL, *text = NULL;
    int fd = -1;
    struct stat st;

    if (src->fd < 0 || src->name == NULL)
        goto out;
    path = symbol_path(src->name);
    if (path == NULL)
        goto out;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto out; /* no symbol beside the checkpoint */
    WV_CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode), WV_IO,
             "%s: symbol file beside it is not a regular file: %s",
             src->name, path);
    WV_CHECK((uint64_t)st.st_size <= MX_SYMBOL_MAX, WV_FORMAT,
             "%s: symbol file %s is larger than 64 MiB", src->name, path);
    size_t len = (size_t)st.st_size;
    text = wv__malloc(len + 1);
    WV_CHECK(text != NULL, WV_NOMEM, "%s: out of memory", path);
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, text + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        WV_CHECK(r > 0, WV_IO, "%s: cannot read symbol file %s: %s",
                 src->name, path, r < 0 ? strerror(errno) : "short read");
        got += (size_t)r;
    }
    text[len] = '\0';
    WV_CHECK(memchr(text, '\0', len) == NULL && wv__utf8_valid(text, len),
             WV_CORRUPT, "%s: symbol file %s is not UTF-8 text", src->name,
             path);
    struct wv__json j = {text, text, text + len, path, err};
    WV_TRY(wv__json_skip(&j));
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_CORRUPT,
             "%s is not valid JSON: trailing characters at byte %zu", path,
             (size_t)(j.p - j.start));
    rc = wv_model_set_meta(m, "mxnet.symbol", text);
    WV_CHECK(rc == WV_OK, rc, "%s: cannot attach %s as metadata", src->name,
             path);
out:
    if (fd >= 0)
        close(fd);
    wv__free(text);
    wv__free(path);
    return rc;
}

static int mx_load(const struct wv__src *src, unsigned flags, wv_model *m,
                   struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char b[24];
    char *name = NULL;
    void *owned = NULL;
    const char *nm = src->name;
    struct rec r;
    (void)flags;

    WV_CHECK(src->size >= 24, WV_CORRUPT,
             "%s: %llu bytes is too short for the NDArray list header",
             nm, (unsigned long long)src->size);
    WV_TRY(wv__src_read(src, 0, b, 24, err));
    WV_CHECK(wv__le64(b) == MX_LIST_MAGIC, WV_CORRUPT,
             "%s: bad magic 0x%llx: not an MXNet NDArray list (0x112)", nm,
             (unsigned long long)wv__le64(b));
    WV_CHECK(wv__le64(b + 8) == 0, WV_CORRUPT,
             "%s: reserved header field is %llu, not 0", nm,
             (unsigned long long)wv__le64(b + 8));
    uint64_t n = wv__le64(b + 16);
    WV_CHECK(n <= (src->size - 24) / MX_MIN_RECORD, WV_CORRUPT,
             "%s: array count %llu is more than %llu bytes can hold", nm,
             (unsigned long long)n, (unsigned long long)src->size);

    /* Pass 1: walk the records to find the names. */
    uint64_t off = 24;
    for (uint64_t i = 0; i < n; i++)
        WV_TRY(read_record(src, &off, i, &r, err));
    WV_CHECK(src->size - off >= 8, WV_CORRUPT,
             "%s: truncated: the name count after %llu arrays is missing",
             nm, (unsigned long long)n);
    WV_TRY(wv__src_read(src, off, b, 8, err));
    uint64_t k = wv__le64(b);
    off += 8;
    WV_CHECK(k == 0 || k == n, WV_CORRUPT,
             "%s: name count %llu is neither 0 nor the array count %llu",
             nm, (unsigned long long)k, (unsigned long long)n);
    uint64_t names_off = off;
    for (uint64_t i = 0; i < k; i++) {
        WV_CHECK(src->size - off >= 8, WV_CORRUPT,
                 "%s: array %llu: truncated name length at offset %llu", nm,
                 (unsigned long long)i, (unsigned long long)off);
        WV_TRY(wv__src_read(src, off, b, 8, err));
        uint64_t len = wv__le64(b);
        off += 8;
        WV_CHECK(len <= src->size - off, WV_CORRUPT,
                 "%s: array %llu: truncated name: %llu bytes declared at "
                 "offset %llu, %llu remain",
                 nm, (unsigned long long)i, (unsigned long long)len,
                 (unsigned long long)off,
                 (unsigned long long)(src->size - off));
        off += len;
    }
    WV_CHECK(off == src->size, WV_CORRUPT,
             "%s: %llu trailing bytes after the names (a second list "
             "appended to the file?)",
             nm, (unsigned long long)(src->size - off));

    /* Pass 2: the records again, with their names. */
    off = 24;
    uint64_t noff = names_off;
    for (uint64_t i = 0; i < n; i++) {
        char num[24];
        const char *tn = num;
        WV_TRY(read_record(src, &off, i, &r, err));
        if (k) {
            WV_TRY(read_name(src, &noff, i, &name, err));
            tn = name;
        } else {
            snprintf(num, sizeof num, "%llu", (unsigned long long)i);
        }
        WV_CHECK(wv_model_find(m, tn) == NULL, WV_FORMAT,
                 "%s: array %llu: duplicate name '%.200s'", nm,
                 (unsigned long long)i, tn);
        WV_CHECK(r.nbytes <= SIZE_MAX, WV_RANGE,
                 "%s: array %llu ('%.200s'): too large for this machine",
                 nm, (unsigned long long)i, tn);
        const unsigned char *data;
        WV_TRY(wv__src_data(src, r.data_off, r.nbytes, &data, &owned, err));
        rc = wv__model_add(m, tn, strlen(tn), r.dtype, r.ndim, r.shape,
                           data, (size_t)r.nbytes, owned, err);
        owned = NULL; /* taken even on failure */
        if (rc != WV_OK)
            goto out;
        wv__free(name);
        name = NULL;
    }
    WV_TRY(attach_symbol(src, m, err));
out:
    wv__free(owned);
    wv__free(name);
    return rc;
}

/* ---- writing ------------------------------------------------------------ */

/* 1 if the names are exactly "0", "1", ... in set order. */
static bool is_plain_list(const wv_model *m)
{
    char num[24];
    for (size_t i = 0; i < m->n_tensors; i++) {
        snprintf(num, sizeof num, "%zu", i);
        if (strcmp(m->tensors[i].name, num) != 0)
            return false;
    }
    return true;
}

static int mx_save(const wv_model *m, struct wv__wfile *f,
                   const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char b[16 + 8 * WV_MAX_DIMS + 16];
    bool v3 = false;

    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        wv_dtype to = wv__cast_target(t->dtype, opts->cast);
        WV_CHECK(flag_of(to) >= 0, WV_UNSUPPORTED,
                 "tensor '%.200s': MXNet has no %s type", t->name,
                 wv_dtype_name(to) ? wv_dtype_name(to) : "such");
        if (t->ndim == 0)
            v3 = true;
    }
    wv__put64(b, MX_LIST_MAGIC);
    wv__put64(b + 8, 0);
    wv__put64(b + 16, (uint64_t)m->n_tensors);
    wv__wfile_write(f, b, 24);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        wv_dtype to = wv__cast_target(t->dtype, opts->cast);
        size_t o = 0;
        wv__put32(b, v3 ? MX_V3 : MX_V2);
        wv__put32(b + 4, 0); /* dense */
        wv__put32(b + 8, (uint32_t)t->ndim);
        o = 12;
        for (int d = 0; d < t->ndim; d++, o += 8)
            wv__put64(b + o, t->shape[d]);
        wv__put32(b + o, 1); /* cpu */
        wv__put32(b + o + 4, 0);
        wv__put32(b + o + 8, (uint32_t)flag_of(to));
        wv__wfile_write(f, b, o + 12);
        wv__wfile_tensor(f, t, to);
    }
    bool list = is_plain_list(m);
    wv__put64(b, list ? 0 : (uint64_t)m->n_tensors);
    wv__wfile_write(f, b, 8);
    for (size_t i = 0; !list && i < m->n_tensors; i++) {
        size_t len = strlen(m->tensors[i].name);
        wv__put64(b, (uint64_t)len);
        wv__wfile_write(f, b, 8);
        wv__wfile_write(f, m->tensors[i].name, len);
    }
    rc = f->rc;
out:
    return rc;
}

const struct wv__format_ops wv__fmt_mxnet = {
    WV_FMT_MXNET, "mxnet", ".params .nd", mx_probe, mx_load, mx_save,
    WV__SHARDS_INDEX, NULL,
};
