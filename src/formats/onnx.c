/*
 * onnx.c -- ONNX models (.onnx, a protobuf ModelProto): read, every
 * initializer becomes a tensor, graph and opset information metadata;
 * written over a template model whose initializers the tensors replace
 * (see "writing" below).
 *
 * Messages read (onnx/onnx.proto, field numbers; pb.c walks the wire):
 *   ModelProto   1 ir_version, 2 producer_name, 3 producer_version,
 *                4 domain, 5 model_version, 6 doc_string, 7 graph,
 *                8 opset_import {1 domain, 2 version},
 *                14 metadata_props {1 key, 2 value}
 *   GraphProto   1 node, 2 name, 5 initializer, 11 input, 12 output
 *                ({1 name}), 15 sparse_initializer
 *   NodeProto    3 name, 4 op_type, 5 attribute {1 name, 6 g, 11 graphs}
 *   TensorProto  1 dims, 2 data_type, 3 segment (refused), 4 float_data,
 *                5 int32_data, 6 string_data, 7 int64_data, 8 name,
 *                9 raw_data, 10 double_data, 11 uint64_data,
 *                13 external_data {1 key, 2 value}, 14 data_location
 *   SparseTensorProto 1 values, 2 indices, 3 dims
 *
 * Data: raw_data (little-endian, borrowed from the file), or the typed
 * field the data type stores in, packed or not: float_data (float; two
 * per complex64), int32_data (int8/16, uint8/16, int32, bool, and the
 * bit patterns of float16, bfloat16 and the float8s), int64_data,
 * double_data, uint64_data (uint32, uint64); each value must fit its type.
 * Data types: float, double, float16, bfloat16, int8..64, uint8..64, bool,
 * complex64, float8 e4m3fn and e5m2; string, complex128, the fnuz float8s
 * and the 4/2-bit types are refused naming the initializer.
 *
 * External data (data_location EXTERNAL): external_data keys location
 * (relative to the model's directory; absolute paths and ".." components
 * are refused), offset, length (decimal; [offset, offset+length) must lie
 * in the file and hold exactly the tensor's bytes) and checksum (the
 * SHA-1 of the whole file, checked when present). Such a model is read by
 * path only (not from memory or a URL).
 *
 * Names: a graph's initializers keep their names. Initializers of
 * subgraphs (attributes of type GRAPH or GRAPHS: If, Loop, Scan) are named
 * "<node>/<attribute>/<initializer>", with "<attribute>[k]" for the k-th
 * graph of a GRAPHS attribute; <node> is the node's name, or
 * "<op_type>[i]" (i its position in its graph) for a nameless node;
 * nested subgraphs repeat the scheme ("outer/body/inner/then_branch/w").
 * Subgraphs nest at most MAX_GRAPH_DEPTH deep. Sparse initializers become
 * dense tensors (values scattered into zeros at their indices, linear
 * [NNZ] or coordinates [NNZ, rank], strictly increasing), when the dense
 * size is at most SPARSE_RATIO times the sparse message plus 1 MiB and at
 * most 1 GiB.
 *
 * Not read: the graphs of training_info (TrainingInfoProto) and of
 * functions (FunctionProto), which hold no weights of the model itself.
 *
 * Metadata: onnx.ir_version, onnx.producer_name, onnx.producer_version,
 * onnx.domain, onnx.model_version, onnx.doc_string, onnx.opset_import
 * ([{"domain": "", "version": 13}, ...]), onnx.graph_name, onnx.inputs and
 * onnx.outputs (JSON lists of names), and onnx.metadata_props.<key>; text
 * that is not UTF-8 without NUL is given as "base64:...".
 */
#include "core.h"
#include "fmt.h"
#include "json.h"
#include "pb.h"
#include "tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_GRAPH_DEPTH 16
#define SPARSE_RATIO 1024u
#define SPARSE_MAX ((uint64_t)1 << 30)
#define PROBE_FIELDS 4096

#define FIELDS(f) (int)((f).len > 200 ? 200 : (f).len), (const char *)(f).data

struct extfile {
    char *loc;      /* as written in the model */
    char *path;     /* joined with the model's directory */
    int fd;
    struct wv__src src;
    bool sha_checked;
};

struct ctx {
    const char *what;
    wv_model *m;
    struct wv__expand *ex; /* the load's amplification budget */
    unsigned flags;
    bool can_ext;      /* the model was opened by path */
    const char *dir;   /* its directory ("" for the current one) */
    size_t dir_len;
    struct extfile *ext;
    size_t n_ext, cap_ext;
    struct wv__buf prefix; /* the scoped name of the current graph */
    struct wv__buf name;
    /* What read_node() does with a subgraph: read_graph() when NULL (the
     * writer plans its template through the same naming walk). */
    int (*graph)(struct ctx *c, const struct wv__pb *parent,
                 const struct wv__pb_field *gf, int gdepth,
                 struct wv__err *err);
};

/* A TensorProto, read in one pass; data decoded afterwards. */
struct tproto {
    const unsigned char *msg;
    size_t msg_len;
    int depth;
    const unsigned char *name;
    size_t name_len;
    uint64_t data_type;
    int ndim;
    uint64_t dims[WV_MAX_DIMS];
    const unsigned char *raw;
    size_t raw_len;
    bool have_raw, have_strings, segment;
    uint32_t typed;   /* field number of the typed data, 0 if none */
    uint64_t n_typed; /* values in it */
    uint64_t location;
    struct wv__pb_field loc, off, len, sum;
    bool have_loc, have_off, have_len, have_sum;
};

struct dtinfo {
    wv_dtype dt;
    uint32_t field; /* typed field */
    int64_t lo, hi; /* range of int32_data values */
};

static const char *onnx_type_name(uint64_t t)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT",   "UINT8",   "INT8",       "UINT16",
        "INT16",     "INT32",   "INT64",   "STRING",     "BOOL",
        "FLOAT16",   "DOUBLE",  "UINT32",  "UINT64",     "COMPLEX64",
        "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ",
        "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1",
        "FLOAT8E8M0", "UINT2", "INT2"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

static bool map_type(uint64_t t, struct dtinfo *d)
{
    switch (t) {
    case 1: *d = (struct dtinfo){WV_F32, 4, 0, 0}; return true;
    case 2: *d = (struct dtinfo){WV_U8, 5, 0, 255}; return true;
    case 3: *d = (struct dtinfo){WV_I8, 5, -128, 127}; return true;
    case 4: *d = (struct dtinfo){WV_U16, 5, 0, 65535}; return true;
    case 5: *d = (struct dtinfo){WV_I16, 5, -32768, 32767}; return true;
    case 6: *d = (struct dtinfo){WV_I32, 5, INT32_MIN, INT32_MAX}; return true;
    case 7: *d = (struct dtinfo){WV_I64, 7, 0, 0}; return true;
    case 9: *d = (struct dtinfo){WV_BOOL, 5, 0, 1}; return true;
    case 10: *d = (struct dtinfo){WV_F16, 5, 0, 65535}; return true;
    case 11: *d = (struct dtinfo){WV_F64, 10, 0, 0}; return true;
    case 12: *d = (struct dtinfo){WV_U32, 11, 0, 0}; return true;
    case 13: *d = (struct dtinfo){WV_U64, 11, 0, 0}; return true;
    case 14: *d = (struct dtinfo){WV_C64, 4, 0, 0}; return true;
    case 16: *d = (struct dtinfo){WV_BF16, 5, 0, 65535}; return true;
    case 17: *d = (struct dtinfo){WV_F8_E4M3, 5, 0, 255}; return true;
    case 19: *d = (struct dtinfo){WV_F8_E5M2, 5, 0, 255}; return true;
    default: return false;
    }
}

static const char *field_name(uint32_t f)
{
    switch (f) {
    case 4: return "float_data";
    case 5: return "int32_data";
    case 7: return "int64_data";
    case 10: return "double_data";
    case 11: return "uint64_data";
    default: return "?";
    }
}

/* ---- metadata ------------------------------------------------------------ */

static void put_text(struct wv__buf *o, const unsigned char *p, size_t n)
{
    if (n == 0)
        return;
    wv__buf_add_meta_value(o, p, n, false, false);
}

static int set_meta(struct ctx *c, const char *key, const char *kx,
                    size_t kxn, const unsigned char *v, size_t n,
                    struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__buf k = {0}, o = {0};
    wv__buf_adds(&k, key);
    if (kx)
        put_text(&k, (const unsigned char *)kx, kxn);
    wv__buf_addc(&k, '\0');
    put_text(&o, v, n);
    wv__buf_addc(&o, '\0');
    WV_CHECK(!k.oom && !o.oom, WV_NOMEM, "out of memory");
    WV_CHECK(wv_model_set_meta(c->m, k.p, o.p) == WV_OK, WV_NOMEM,
             "out of memory");
out:
    wv__buf_release(&k);
    wv__buf_release(&o);
    return rc;
}

/* ---- TensorProto --------------------------------------------------------- */

#define TNAME(t) (int)((t)->name_len > 200 ? 200 : (t)->name_len), \
                 (const char *)(t)->name

/* Values in a typed field occurrence (one unpacked value or a packed run):
 * -1 if malformed. */
static int64_t count_values(const struct wv__pb_field *f, int fixed)
{
    if (f->wire != WV__PB_LEN)
        return 1;
    if (fixed)
        return f->len % (size_t)fixed ? -1 : (int64_t)(f->len / (size_t)fixed);
    int64_t n = 0;
    const unsigned char *p = f->data, *e = f->data + f->len;
    uint64_t v;
    while (p < e) {
        if (wv__pb_varint(&p, e, &v) != 0)
            return -1;
        n++;
    }
    return n;
}

static int parse_tensor(struct ctx *c, const struct wv__pb *parent,
                        const struct wv__pb_field *tf, struct tproto *t,
                        struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__pb r, s;
    struct wv__pb_field f, g;
    const char *why = "";
    int k;
    uint64_t n_dims = 0;
    memset(t, 0, sizeof *t);
    WV_CHECK(wv__pb_sub(parent, tf, &r, &why) == 0, WV_CORRUPT,
             "%s: tensor: %s", c->what, why);
    t->msg = tf->data;
    t->msg_len = tf->len;
    t->depth = r.depth;
    /* the name first, for the messages */
    while ((k = wv__pb_next(&r, &f, &why)) == 1)
        if (f.num == 8 && f.wire == WV__PB_LEN) {
            t->name = f.data;
            t->name_len = f.len;
        }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: tensor: %s", c->what, why);
    wv__pb_init(&r, tf->data, tf->len);
    r.depth = t->depth;
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        int want = -1;
        switch (f.num) {
        case 1: {
            const unsigned char *p = f.data,
                                *e = f.data ? f.data + f.len : NULL;
            uint64_t v = f.v;
            bool packed = f.wire == WV__PB_LEN;
            WV_CHECK(packed || f.wire == WV__PB_VARINT, WV_CORRUPT,
                     "%s: tensor '%.*s': dims has wire type %d", c->what,
                     TNAME(t), f.wire);
            while (!packed || p < e) {
                if (packed)
                    WV_CHECK(wv__pb_varint(&p, e, &v) == 0, WV_CORRUPT,
                             "%s: tensor '%.*s': truncated varint in dims",
                             c->what, TNAME(t));
                WV_CHECK((int64_t)v >= 0, WV_CORRUPT,
                         "%s: tensor '%.*s' has a negative dimension",
                         c->what, TNAME(t));
                if (n_dims < WV_MAX_DIMS)
                    t->dims[n_dims] = v;
                n_dims++;
                if (!packed)
                    break;
            }
            break;
        }
        case 2: want = WV__PB_VARINT; t->data_type = f.v; break;
        case 3: t->segment = true; break;
        case 6: t->have_strings = true; break;
        case 8: want = WV__PB_LEN; break;
        case 9:
            want = WV__PB_LEN;
            t->raw = f.data;
            t->raw_len = f.len;
            t->have_raw = true;
            break;
        case 14: want = WV__PB_VARINT; t->location = f.v; break;
        case 13:
            WV_CHECK(wv__pb_sub(&r, &f, &s, &why) == 0, WV_CORRUPT,
                     "%s: tensor '%.*s': external_data: %s", c->what,
                     TNAME(t), why);
            {
                struct wv__pb_field key = {0}, val = {0};
                while ((k = wv__pb_next(&s, &g, &why)) == 1) {
                    if (g.num == 1 && g.wire == WV__PB_LEN)
                        key = g;
                    else if (g.num == 2 && g.wire == WV__PB_LEN)
                        val = g;
                }
                WV_CHECK(k == 0, WV_CORRUPT,
                         "%s: tensor '%.*s': external_data: %s", c->what,
                         TNAME(t), why);
#define KEY_IS(s) (key.len == sizeof(s) - 1 && memcmp(key.data, s, key.len) == 0)
                if (KEY_IS("location"))
                    t->loc = val, t->have_loc = true;
                else if (KEY_IS("offset"))
                    t->off = val, t->have_off = true;
                else if (KEY_IS("length"))
                    t->len = val, t->have_len = true;
                else if (KEY_IS("checksum"))
                    t->sum = val, t->have_sum = true;
#undef KEY_IS
            }
            break;
        case 4: case 5: case 7: case 10: case 11: {
            int fixed = f.num == 4 ? 4 : f.num == 10 ? 8 : 0;
            int unpacked = f.num == 4 ? WV__PB_I32
                           : f.num == 10 ? WV__PB_I64 : WV__PB_VARINT;
            WV_CHECK(f.wire == WV__PB_LEN || f.wire == unpacked, WV_CORRUPT,
                     "%s: tensor '%.*s': %s has wire type %d", c->what,
                     TNAME(t), field_name(f.num), f.wire);
            WV_CHECK(t->typed == 0 || t->typed == f.num, WV_CORRUPT,
                     "%s: tensor '%.*s' holds both %s and %s", c->what,
                     TNAME(t), field_name(t->typed), field_name(f.num));
            int64_t n = count_values(&f, fixed);
            WV_CHECK(n >= 0, WV_CORRUPT,
                     "%s: tensor '%.*s': malformed packed %s", c->what,
                     TNAME(t), field_name(f.num));
            t->typed = f.num;
            t->n_typed += (uint64_t)n;
            break;
        }
        default: break;
        }
        WV_CHECK(want < 0 || f.wire == want, WV_CORRUPT,
                 "%s: tensor '%.*s': field %u has wire type %d", c->what,
                 TNAME(t), f.num, f.wire);
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: tensor '%.*s': %s", c->what, TNAME(t),
             why);
    WV_CHECK(n_dims <= WV_MAX_DIMS, WV_UNSUPPORTED,
             "%s: tensor '%.*s' has %llu dimensions, more than %d",
             c->what, TNAME(t), (unsigned long long)n_dims, WV_MAX_DIMS);
    t->ndim = (int)n_dims;
out:
    return rc;
}

/* Decode a typed field into out (nbytes of dtype d->dt). */
static int decode_typed(struct ctx *c, const struct tproto *t,
                        const struct dtinfo *d, unsigned char *out,
                        struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__pb r;
    struct wv__pb_field f;
    const char *why = "";
    int k;
    size_t es = wv_dtype_size(d->dt);
    if (d->dt == WV_C64)
        es = 4;
    unsigned char *o = out;
    wv__pb_init(&r, t->msg, t->msg_len);
    r.depth = t->depth;
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        if (f.num != t->typed)
            continue;
        const unsigned char *p = f.data,
                                *e = f.data ? f.data + f.len : NULL;
        bool packed = f.wire == WV__PB_LEN;
        while (!packed || p < e) {
            uint64_t v = f.v;
            if (t->typed == 4) {
                if (packed)
                    v = wv__le32(p), p += 4;
                wv__put32(o, (uint32_t)v);
            } else if (t->typed == 10) {
                if (packed)
                    v = wv__le64(p), p += 8;
                wv__put64(o, v);
            } else {
                if (packed && wv__pb_varint(&p, e, &v) != 0)
                    break; /* counted before: cannot happen */
                if (t->typed == 5) {
                    int64_t x = (int64_t)v;
                    WV_CHECK(x >= d->lo && x <= d->hi, WV_CORRUPT,
                             "%s: tensor '%.*s': int32_data value %lld is "
                             "out of range for %s",
                             c->what, TNAME(t), (long long)x,
                             onnx_type_name(t->data_type));
                    if (es == 1)
                        *o = (unsigned char)x;
                    else if (es == 2)
                        wv__put16(o, (uint16_t)x);
                    else
                        wv__put32(o, (uint32_t)x);
                } else if (t->typed == 11 && es == 4) {
                    WV_CHECK(v <= UINT32_MAX, WV_CORRUPT,
                             "%s: tensor '%.*s': uint64_data value %llu is "
                             "out of range for UINT32",
                             c->what, TNAME(t), (unsigned long long)v);
                    wv__put32(o, (uint32_t)v);
                } else {
                    wv__put64(o, v);
                }
            }
            o += es;
            if (!packed)
                break;
        }
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: tensor '%.*s': %s", c->what, TNAME(t),
             why);
out:
    return rc;
}

static bool dec_field(const struct wv__pb_field *f, uint64_t *v)
{
    const char *s = (const char *)f->data;
    if (f->len == 0 || f->len > 20)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (s[i] < '0' || s[i] > '9' ||
            wv__mul_overflow(x, 10, &x) ||
            wv__add_overflow(x, (uint64_t)(s[i] - '0'), &x))
            return false;
    }
    *v = x;
    return true;
}

static int open_ext(struct ctx *c, const struct tproto *t,
                    struct extfile **out, struct wv__err *err)
{
    int rc = WV_OK;
    const struct wv__pb_field *l = &t->loc;
    struct extfile *x = NULL;
    *out = NULL;
    WV_CHECK(t->have_loc && l->len > 0, WV_CORRUPT,
             "%s: tensor '%.*s': external data without a location", c->what,
             TNAME(t));
    WV_CHECK(memchr(l->data, '\0', l->len) == NULL &&
                 wv__utf8_valid(l->data, l->len),
             WV_CORRUPT,
             "%s: tensor '%.*s': external data location is not UTF-8 text",
             c->what, TNAME(t));
    WV_CHECK(l->data[0] != '/' && l->data[0] != '\\' &&
                 !(l->len >= 2 && l->data[1] == ':'),
             WV_CORRUPT,
             "%s: tensor '%.*s': external data location '%.*s' is absolute "
             "(it must be inside the model's directory)",
             c->what, TNAME(t), FIELDS(*l));
    for (size_t i = 0; i < l->len;) {
        size_t j = i;
        while (j < l->len && l->data[j] != '/' && l->data[j] != '\\')
            j++;
        WV_CHECK(!(j - i == 2 && l->data[i] == '.' && l->data[i + 1] == '.'),
                 WV_CORRUPT,
                 "%s: tensor '%.*s': external data location '%.*s' leaves "
                 "the model's directory (..)",
                 c->what, TNAME(t), FIELDS(*l));
        i = j + 1;
    }
    WV_CHECK(c->can_ext, WV_UNSUPPORTED,
             "%s: tensor '%.*s' is stored in the external file '%.*s': "
             "load the .onnx file by its path",
             c->what, TNAME(t), FIELDS(*l));
    for (size_t i = 0; i < c->n_ext; i++)
        if (strlen(c->ext[i].loc) == l->len &&
            memcmp(c->ext[i].loc, l->data, l->len) == 0) {
            *out = &c->ext[i];
            goto out;
        }
    WV_CHECK(wv__grow(&c->ext, &c->cap_ext, c->n_ext, sizeof *c->ext, 4) ==
                 WV_OK,
             WV_NOMEM, "out of memory");
    x = &c->ext[c->n_ext];
    memset(x, 0, sizeof *x);
    x->fd = -1;
    c->n_ext++;
    x->loc = wv__strndup((const char *)l->data, l->len);
    x->path = wv__malloc(c->dir_len + l->len + 1);
    WV_CHECK(x->loc && x->path, WV_NOMEM, "out of memory");
    memcpy(x->path, c->dir, c->dir_len);
    memcpy(x->path + c->dir_len, l->data, l->len);
    x->path[c->dir_len + l->len] = '\0';
    char role[160];
    snprintf(role, sizeof role, "tensor '%.*s': external data file",
             TNAME(t));
    /* external data is input too: the bound scales with it */
    WV_TRY(wv__open_part(c->what, role, x->path, !(c->flags & WV_LOAD_PREAD),
                         c->m, c->ex, &x->fd, &x->src, err));
    *out = x;
out:
    return rc;
}

static int check_sha1(struct ctx *c, const struct tproto *t,
                      struct extfile *x, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__sha1 *s = wv__sha1_new();
    unsigned char dig[20];
    char hex[41];
    unsigned char *buf = NULL;
    const size_t step = (size_t)1 << 20;
    WV_CHECK(s != NULL, WV_NOMEM, "out of memory");
    if (x->src.map) {
        wv__sha1_update(s, x->src.map, (size_t)x->src.size);
    } else {
        buf = wv__malloc(step);
        WV_CHECK(buf != NULL, WV_NOMEM, "out of memory");
        for (uint64_t o = 0; o < x->src.size; o += step) {
            size_t n = x->src.size - o < step ? (size_t)(x->src.size - o)
                                              : step;
            WV_TRY(wv__src_read(&x->src, o, buf, n, err));
            wv__sha1_update(s, buf, n);
        }
    }
    wv__sha1_final(s, dig);
    for (int i = 0; i < 20; i++)
        snprintf(hex + 2 * i, 3, "%02x", dig[i]);
    bool same = t->sum.len == 40;
    for (size_t i = 0; same && i < 40; i++) {
        char ch = (char)t->sum.data[i];
        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch - 'A' + 'a');
        same = ch == hex[i];
    }
    WV_CHECK(same, WV_CORRUPT,
             "%s: tensor '%.*s': external data file %s fails its checksum "
             "(SHA-1 %s, the model says '%.*s')",
             c->what, TNAME(t), x->path, hex, FIELDS(t->sum));
    x->sha_checked = true;
out:
    wv__sha1_free(s);
    wv__free(buf);
    return rc;
}

/* The tensor's bytes: *data (borrowed, or *owned). */
static int tensor_data(struct ctx *c, const struct tproto *t,
                       const struct dtinfo *d, uint64_t nbytes,
                       const unsigned char **data, void **owned,
                       struct wv__err *err)
{
    int rc = WV_OK;
    *data = (const unsigned char *)"";
    *owned = NULL;
    if (t->location == 1) {
        struct extfile *x;
        uint64_t off = 0, len, end;
        WV_CHECK(!t->have_raw && t->typed == 0, WV_CORRUPT,
                 "%s: tensor '%.*s' is external but also holds data",
                 c->what, TNAME(t));
        WV_TRY(open_ext(c, t, &x, err));
        WV_CHECK(!t->have_off || dec_field(&t->off, &off), WV_CORRUPT,
                 "%s: tensor '%.*s': external data offset '%.*s' is not a "
                 "decimal number",
                 c->what, TNAME(t), FIELDS(t->off));
        len = x->src.size >= off ? x->src.size - off : 0;
        WV_CHECK(!t->have_len || dec_field(&t->len, &len), WV_CORRUPT,
                 "%s: tensor '%.*s': external data length '%.*s' is not a "
                 "decimal number",
                 c->what, TNAME(t), FIELDS(t->len));
        WV_CHECK(!wv__add_overflow(off, len, &end) && end <= x->src.size,
                 WV_CORRUPT,
                 "%s: tensor '%.*s': external data [%llu, +%llu) passes the "
                 "end of %s (%llu bytes)",
                 c->what, TNAME(t), (unsigned long long)off,
                 (unsigned long long)len, x->path,
                 (unsigned long long)x->src.size);
        WV_CHECK(len == nbytes, WV_CORRUPT,
                 "%s: tensor '%.*s': external data of %llu bytes, its shape "
                 "and type need %llu",
                 c->what, TNAME(t), (unsigned long long)len,
                 (unsigned long long)nbytes);
        if (t->have_sum && !x->sha_checked)
            WV_TRY(check_sha1(c, t, x, err));
        if (len > 0)
            WV_TRY(wv__src_data(&x->src, off, len, data, owned, err));
        goto out;
    }
    WV_CHECK(t->location == 0, WV_CORRUPT,
             "%s: tensor '%.*s': unknown data_location %llu", c->what,
             TNAME(t), (unsigned long long)t->location);
    if (t->have_raw) {
        WV_CHECK(t->typed == 0, WV_CORRUPT,
                 "%s: tensor '%.*s' holds both raw_data and %s", c->what,
                 TNAME(t), field_name(t->typed));
        WV_CHECK(t->raw_len == nbytes, WV_CORRUPT,
                 "%s: tensor '%.*s': raw_data of %zu bytes, its shape and "
                 "type need %llu",
                 c->what, TNAME(t), t->raw_len, (unsigned long long)nbytes);
        *data = t->raw;
        goto out;
    }
    uint64_t numel = nbytes / wv_dtype_size(d->dt);
    uint64_t want = d->dt == WV_C64 ? numel * 2 : numel;
    if (t->typed == 0) {
        WV_CHECK(numel == 0, WV_CORRUPT,
                 "%s: tensor '%.*s' has no data (%llu elements expected)",
                 c->what, TNAME(t), (unsigned long long)numel);
        goto out;
    }
    WV_CHECK(t->typed == d->field, WV_CORRUPT,
             "%s: tensor '%.*s': a %s tensor cannot hold %s", c->what,
             TNAME(t), onnx_type_name(t->data_type), field_name(t->typed));
    WV_CHECK(t->n_typed == want, WV_CORRUPT,
             "%s: tensor '%.*s': %s holds %llu values, its shape needs %llu",
             c->what, TNAME(t), field_name(t->typed),
             (unsigned long long)t->n_typed, (unsigned long long)want);
    /* Each value took at least one byte of the message: the allocation is
     * at most 8 times the input; it is charged all the same. */
    WV_TRY(wv__expand_charge(c->ex, nbytes, c->what, err));
    unsigned char *buf = wv__malloc(nbytes ? (size_t)nbytes : 1);
    WV_CHECK(buf != NULL, WV_NOMEM, "out of memory");
    *owned = buf;
    WV_TRY(decode_typed(c, t, d, buf, err));
    *data = buf;
out:
    if (rc != WV_OK) {
        wv__free(*owned);
        *owned = NULL;
    }
    return rc;
}

/* A dense tensor's type, shape and bytes. */
static int tensor_decode(struct ctx *c, const struct tproto *t,
                         wv_dtype *dt, const unsigned char **data,
                         size_t *nbytes, void **owned, struct wv__err *err)
{
    int rc = WV_OK;
    struct dtinfo d;
    uint64_t numel, nb;
    *owned = NULL;
    WV_CHECK(!t->segment, WV_UNSUPPORTED,
             "%s: tensor '%.*s' is segmented (not read)", c->what, TNAME(t));
    WV_CHECK(t->data_type != 8 && !t->have_strings, WV_UNSUPPORTED,
             "%s: tensor '%.*s' holds strings (not read)", c->what,
             TNAME(t));
    WV_CHECK(map_type(t->data_type, &d), WV_UNSUPPORTED,
             "%s: tensor '%.*s' has the data type %s (%llu), which is not "
             "read",
             c->what, TNAME(t), onnx_type_name(t->data_type),
             (unsigned long long)t->data_type);
    WV_CHECK(wv__shape_bytes(d.dt, t->ndim, t->dims, &numel, &nb) == WV_OK &&
                 nb <= SIZE_MAX,
             WV_CORRUPT, "%s: tensor '%.*s': its shape overflows", c->what,
             TNAME(t));
    WV_TRY(tensor_data(c, t, &d, nb, data, owned, err));
    if (d.dt == WV_BOOL)
        for (uint64_t i = 0; i < nb; i++)
            WV_CHECK((*data)[i] <= 1, WV_CORRUPT,
                     "%s: bool tensor '%.*s' holds the byte %u", c->what,
                     TNAME(t), (*data)[i]);
    *dt = d.dt;
    *nbytes = (size_t)nb;
out:
    if (rc != WV_OK) {
        wv__free(*owned);
        *owned = NULL;
    }
    return rc;
}

static int add_tensor(struct ctx *c, const struct tproto *t, wv_dtype dt,
                      int ndim, const uint64_t *shape,
                      const unsigned char *data, size_t nbytes, void *owned,
                      struct wv__err *err)
{
    int rc = WV_OK;
    c->name.len = 0;
    wv__buf_add(&c->name, c->prefix.p, c->prefix.len);
    wv__buf_add(&c->name, t->name, t->name_len);
    wv__buf_addc(&c->name, '\0');
    WV_CHECK(!c->name.oom, WV_NOMEM, "out of memory");
    WV_CHECK(t->name_len > 0, WV_CORRUPT,
             "%s: an initializer without a name (in %s%.*s)", c->what,
             c->prefix.len ? "the subgraph " : "the main graph",
             (int)(c->prefix.len > 200 ? 200 : c->prefix.len),
             c->prefix.len ? c->prefix.p : "");
    WV_CHECK(memchr(t->name, '\0', t->name_len) == NULL &&
                 wv__utf8_valid(t->name, t->name_len),
             WV_CORRUPT, "%s: an initializer's name is not UTF-8 text",
             c->what);
    WV_CHECK(wv_model_find(c->m, c->name.p) == NULL, WV_CORRUPT,
             "%s: two initializers are named '%.200s'", c->what, c->name.p);
    rc = wv__model_add(c->m, c->name.p, c->name.len - 1, dt, ndim, shape,
                       data, nbytes, owned, err);
    owned = NULL;
out:
    wv__free(owned);
    return rc;
}

static int read_initializer(struct ctx *c, const struct wv__pb *g,
                            const struct wv__pb_field *f, struct wv__err *err)
{
    int rc = WV_OK;
    struct tproto t;
    wv_dtype dt;
    const unsigned char *data;
    size_t nb;
    void *owned = NULL;
    WV_TRY(parse_tensor(c, g, f, &t, err));
    WV_TRY(tensor_decode(c, &t, &dt, &data, &nb, &owned, err));
    rc = add_tensor(c, &t, dt, t.ndim, t.dims, data, nb, owned, err);
out:
    return rc;
}

static int read_sparse(struct ctx *c, const struct wv__pb *g,
                       const struct wv__pb_field *sf, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__pb r;
    struct wv__pb_field f, vf = {0}, xf = {0};
    const char *why = "";
    int k;
    struct tproto vt, xt;
    uint64_t dims[WV_MAX_DIMS];
    uint64_t n_dims = 0;
    void *vown = NULL, *xown = NULL;
    unsigned char *dense = NULL;
    const unsigned char *vd, *xd;
    size_t vn, xn;
    wv_dtype vdt, xdt;
    WV_CHECK(wv__pb_sub(g, sf, &r, &why) == 0, WV_CORRUPT,
             "%s: sparse initializer: %s", c->what, why);
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        if (f.num == 1 && f.wire == WV__PB_LEN)
            vf = f;
        else if (f.num == 2 && f.wire == WV__PB_LEN)
            xf = f;
        else if (f.num == 3) {
            const unsigned char *p = f.data,
                                *e = f.data ? f.data + f.len : NULL;
            uint64_t v = f.v;
            bool packed = f.wire == WV__PB_LEN;
            while (!packed || p < e) {
                WV_CHECK(!packed || wv__pb_varint(&p, e, &v) == 0,
                         WV_CORRUPT,
                         "%s: sparse initializer: truncated varint in dims",
                         c->what);
                WV_CHECK((int64_t)v >= 0, WV_CORRUPT,
                         "%s: sparse initializer has a negative dimension",
                         c->what);
                if (n_dims < WV_MAX_DIMS)
                    dims[n_dims] = v;
                n_dims++;
                if (!packed)
                    break;
            }
        }
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: sparse initializer: %s", c->what, why);
    WV_CHECK(vf.data != NULL && xf.data != NULL, WV_CORRUPT,
             "%s: a sparse initializer lacks its values or indices", c->what);
    WV_TRY(parse_tensor(c, &r, &vf, &vt, err));
    WV_TRY(parse_tensor(c, &r, &xf, &xt, err));
    WV_CHECK(n_dims <= WV_MAX_DIMS, WV_UNSUPPORTED,
             "%s: sparse initializer '%.*s' has %llu dimensions, more than %d",
             c->what, TNAME(&vt), (unsigned long long)n_dims, WV_MAX_DIMS);
    WV_TRY(tensor_decode(c, &vt, &vdt, &vd, &vn, &vown, err));
    WV_TRY(tensor_decode(c, &xt, &xdt, &xd, &xn, &xown, err));
    uint64_t nnz = vt.ndim == 1 ? vt.dims[0] : 0, numel, nbytes;
    WV_CHECK(vt.ndim == 1, WV_CORRUPT,
             "%s: sparse initializer '%.*s': values are not a 1-D tensor",
             c->what, TNAME(&vt));
    WV_CHECK(xdt == WV_I64 &&
                 ((xt.ndim == 1 && xt.dims[0] == nnz) ||
                  (xt.ndim == 2 && xt.dims[0] == nnz &&
                   xt.dims[1] == n_dims)),
             WV_CORRUPT,
             "%s: sparse initializer '%.*s': indices must be INT64 of shape "
             "[%llu] or [%llu, %llu]",
             c->what, TNAME(&vt), (unsigned long long)nnz,
             (unsigned long long)nnz, (unsigned long long)n_dims);
    WV_CHECK(wv__shape_bytes(vdt, (int)n_dims, dims, &numel, &nbytes) ==
                 WV_OK,
             WV_CORRUPT, "%s: sparse initializer '%.*s': its shape overflows",
             c->what, TNAME(&vt));
    WV_CHECK(nbytes <= SPARSE_MAX &&
                 nbytes <= (uint64_t)sf->len * SPARSE_RATIO + (1u << 20),
             WV_UNSUPPORTED,
             "%s: sparse initializer '%.*s' would be %llu bytes dense, more "
             "than allowed for its %zu-byte message",
             c->what, TNAME(&vt), (unsigned long long)nbytes, sf->len);
    WV_TRY(wv__expand_charge(c->ex, nbytes, c->what, err));
    dense = wv__calloc(nbytes ? (size_t)nbytes : 1, 1);
    WV_CHECK(dense != NULL, WV_NOMEM, "out of memory");
    size_t es = wv_dtype_size(vdt);
    uint64_t prev = 0;
    for (uint64_t i = 0; i < nnz; i++) {
        uint64_t lin = 0;
        if (xt.ndim == 1) {
            lin = wv__le64(xd + 8 * i);
        } else {
            for (uint64_t j = 0; j < n_dims; j++) {
                uint64_t x = wv__le64(xd + 8 * (i * n_dims + j));
                WV_CHECK(x < dims[j], WV_CORRUPT,
                         "%s: sparse initializer '%.*s': index %lld out of "
                         "range in dimension %llu",
                         c->what, TNAME(&vt), (long long)x,
                         (unsigned long long)j);
                lin = lin * dims[j] + x;
            }
        }
        WV_CHECK(lin < numel && (i == 0 || lin > prev), WV_CORRUPT,
                 "%s: sparse initializer '%.*s': index %lld is out of range "
                 "or not above the one before",
                 c->what, TNAME(&vt), (long long)lin);
        prev = lin;
        memcpy(dense + lin * es, vd + i * es, es);
    }
    rc = add_tensor(c, &vt, vdt, (int)n_dims, dims, dense, (size_t)nbytes,
                    dense, err);
    dense = NULL;
out:
    wv__free(dense);
    wv__free(vown);
    wv__free(xown);
    return rc;
}

static int read_graph(struct ctx *c, const struct wv__pb *parent,
                      const struct wv__pb_field *gf, int gdepth,
                      struct wv__err *err);

/* A node's GRAPH and GRAPHS attributes. */
static int read_node(struct ctx *c, const struct wv__pb *g,
                     const struct wv__pb_field *nf, uint64_t index,
                     int gdepth, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__pb r, a;
    struct wv__pb_field f, h, name = {0}, op = {0}, an;
    const char *why = "";
    int k;
    size_t keep = c->prefix.len;
    WV_CHECK(wv__pb_sub(g, nf, &r, &why) == 0, WV_CORRUPT, "%s: node: %s",
             c->what, why);
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        if (f.num == 3 && f.wire == WV__PB_LEN)
            name = f;
        else if (f.num == 4 && f.wire == WV__PB_LEN)
            op = f;
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: node: %s", c->what, why);
    wv__pb_sub(g, nf, &r, &why);
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        if (f.num != 5)
            continue;
        WV_CHECK(wv__pb_sub(&r, &f, &a, &why) == 0, WV_CORRUPT,
                 "%s: node '%.*s': attribute: %s", c->what, FIELDS(name), why);
        memset(&an, 0, sizeof an);
        bool sub = false;
        while ((k = wv__pb_next(&a, &h, &why)) == 1) {
            if (h.num == 1 && h.wire == WV__PB_LEN)
                an = h;
            sub = sub || h.num == 6 || h.num == 11;
        }
        WV_CHECK(k == 0, WV_CORRUPT, "%s: node '%.*s': attribute: %s",
                 c->what, FIELDS(name), why);
        if (!sub)
            continue;
        WV_CHECK(gdepth + 1 <= MAX_GRAPH_DEPTH, WV_UNSUPPORTED,
                 "%s: subgraphs nested more than %d deep", c->what,
                 MAX_GRAPH_DEPTH);
        uint64_t gi = 0;
        wv__pb_sub(&r, &f, &a, &why);
        while ((k = wv__pb_next(&a, &h, &why)) == 1) {
            if (h.num != 6 && h.num != 11)
                continue;
            c->prefix.len = keep;
            if (name.len > 0)
                put_text(&c->prefix, name.data, name.len);
            else {
                put_text(&c->prefix, op.data ? op.data : (const unsigned char *)"node",
                         op.data ? op.len : 4);
                wv__buf_addf(&c->prefix, "[%llu]", (unsigned long long)index);
            }
            wv__buf_addc(&c->prefix, '/');
            put_text(&c->prefix, an.data ? an.data : (const unsigned char *)"",
                     an.len);
            if (h.num == 11)
                wv__buf_addf(&c->prefix, "[%llu]", (unsigned long long)gi++);
            wv__buf_addc(&c->prefix, '/');
            WV_CHECK(!c->prefix.oom, WV_NOMEM, "out of memory");
            WV_TRY(c->graph ? c->graph(c, &a, &h, gdepth + 1, err)
                            : read_graph(c, &a, &h, gdepth + 1, err));
        }
        WV_CHECK(k == 0, WV_CORRUPT, "%s: node '%.*s': attribute: %s",
                 c->what, FIELDS(name), why);
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: node: %s", c->what, why);
out:
    c->prefix.len = keep;
    return rc;
}

static int name_list(struct ctx *c, const struct wv__pb *r,
                     const struct wv__pb_field *f, struct wv__buf *o,
                     struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__pb s;
    struct wv__pb_field h;
    const char *why = "";
    int k;
    WV_CHECK(wv__pb_sub(r, f, &s, &why) == 0, WV_CORRUPT,
             "%s: graph input/output: %s", c->what, why);
    wv__buf_addc(o, o->len ? ',' : '[');
    struct wv__buf t = {0};
    bool any = false;
    while ((k = wv__pb_next(&s, &h, &why)) == 1)
        if (h.num == 1 && h.wire == WV__PB_LEN) {
            t.len = 0;
            put_text(&t, h.data, h.len);
            any = true;
        }
    if (!any)
        wv__buf_adds(o, "\"\"");
    else
        wv__json_put_string(o, t.p ? t.p : "", t.len);
    wv__buf_release(&t);
    WV_CHECK(k == 0, WV_CORRUPT, "%s: graph input/output: %s", c->what, why);
out:
    return rc;
}

static int read_graph(struct ctx *c, const struct wv__pb *parent,
                      const struct wv__pb_field *gf, int gdepth,
                      struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__pb r;
    struct wv__pb_field f;
    const char *why = "";
    int k;
    uint64_t node_i = 0;
    struct wv__buf in = {0}, outs = {0};
    WV_CHECK(gf->wire == WV__PB_LEN, WV_CORRUPT,
             "%s: a graph field is not length-delimited", c->what);
    WV_CHECK(wv__pb_sub(parent, gf, &r, &why) == 0, WV_CORRUPT,
             "%s: graph: %s", c->what, why);
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        if (f.num == 5)
            WV_TRY(read_initializer(c, &r, &f, err));
        else if (f.num == 15)
            WV_TRY(read_sparse(c, &r, &f, err));
        else if (f.num == 1) {
            WV_CHECK(f.wire == WV__PB_LEN, WV_CORRUPT,
                     "%s: a node field is not length-delimited", c->what);
            WV_TRY(read_node(c, &r, &f, node_i++, gdepth, err));
        } else if (gdepth == 0 && f.num == 2 && f.wire == WV__PB_LEN)
            WV_TRY(set_meta(c, "onnx.graph_name", NULL, 0, f.data, f.len,
                            err));
        else if (gdepth == 0 && f.num == 11 && f.wire == WV__PB_LEN)
            WV_TRY(name_list(c, &r, &f, &in, err));
        else if (gdepth == 0 && f.num == 12 && f.wire == WV__PB_LEN)
            WV_TRY(name_list(c, &r, &f, &outs, err));
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: graph: %s", c->what, why);
    if (gdepth == 0) {
        wv__buf_adds(&in, in.len ? "]" : "[]");
        wv__buf_adds(&outs, outs.len ? "]" : "[]");
        wv__buf_addc(&in, '\0');
        wv__buf_addc(&outs, '\0');
        WV_CHECK(!in.oom && !outs.oom, WV_NOMEM, "out of memory");
        WV_CHECK(wv_model_set_meta(c->m, "onnx.inputs", in.p) == WV_OK &&
                     wv_model_set_meta(c->m, "onnx.outputs", outs.p) ==
                         WV_OK,
                 WV_NOMEM, "out of memory");
    }
out:
    wv__buf_release(&in);
    wv__buf_release(&outs);
    return rc;
}

/* ---- the model ----------------------------------------------------------- */

static int read_model(struct ctx *c, const unsigned char *buf, size_t n,
                      struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__pb r, s;
    struct wv__pb_field f, h, graph = {0};
    const char *why = "";
    int k;
    char num[32];
    struct wv__buf ops = {0};
    bool have_ir = false;
    wv__pb_init(&r, buf, n);
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        switch (f.num) {
        case 1: case 5:
            WV_CHECK(f.wire == WV__PB_VARINT, WV_CORRUPT,
                     "%s: ModelProto field %u has wire type %d", c->what,
                     f.num, f.wire);
            snprintf(num, sizeof num, "%lld", (long long)f.v);
            WV_TRY(set_meta(c, f.num == 1 ? "onnx.ir_version"
                                          : "onnx.model_version",
                            NULL, 0, (const unsigned char *)num, strlen(num),
                            err));
            have_ir = have_ir || f.num == 1;
            break;
        case 2: case 3: case 4: case 6: {
            static const char *const keys[] = {
                [2] = "onnx.producer_name", [3] = "onnx.producer_version",
                [4] = "onnx.domain", [6] = "onnx.doc_string"};
            WV_CHECK(f.wire == WV__PB_LEN, WV_CORRUPT,
                     "%s: ModelProto field %u has wire type %d", c->what,
                     f.num, f.wire);
            if (f.len > 0)
                WV_TRY(set_meta(c, keys[f.num], NULL, 0, f.data, f.len,
                                err));
            break;
        }
        case 7:
            WV_CHECK(f.wire == WV__PB_LEN, WV_CORRUPT,
                     "%s: the graph field is not length-delimited", c->what);
            /* protobuf would merge them; no ONNX writer makes two */
            WV_CHECK(graph.data == NULL, WV_CORRUPT,
                     "%s: ONNX model with two graph fields", c->what);
            graph = f;
            break;
        case 8: case 14: {
            struct wv__pb_field a = {0}, b = {0};
            uint64_t ver = 0;
            WV_CHECK(wv__pb_sub(&r, &f, &s, &why) == 0, WV_CORRUPT,
                     "%s: %s: %s", c->what,
                     f.num == 8 ? "opset_import" : "metadata_props", why);
            while ((k = wv__pb_next(&s, &h, &why)) == 1) {
                if (h.num == 1 && h.wire == WV__PB_LEN)
                    a = h;
                else if (h.num == 2 && h.wire == WV__PB_LEN)
                    b = h;
                else if (h.num == 2 && h.wire == WV__PB_VARINT)
                    ver = h.v;
            }
            WV_CHECK(k == 0, WV_CORRUPT, "%s: %s: %s", c->what,
                     f.num == 8 ? "opset_import" : "metadata_props", why);
            if (f.num == 14) {
                WV_TRY(set_meta(c, "onnx.metadata_props.",
                                a.data ? (const char *)a.data : "", a.len,
                                b.data ? b.data : (const unsigned char *)"",
                                b.len, err));
                break;
            }
            struct wv__buf t = {0};
            put_text(&t, a.data ? a.data : (const unsigned char *)"", a.len);
            wv__buf_adds(&ops, ops.len ? ", " : "[");
            wv__buf_adds(&ops, "{\"domain\": ");
            wv__json_put_string(&ops, t.p ? t.p : "", t.len);
            wv__buf_addf(&ops, ", \"version\": %lld}", (long long)ver);
            wv__buf_release(&t);
            break;
        }
        default:
            break;
        }
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: not a valid ONNX model: %s", c->what,
             why);
    WV_CHECK(have_ir, WV_CORRUPT, "%s: ONNX model without an ir_version",
             c->what);
    WV_CHECK(graph.data != NULL, WV_CORRUPT, "%s: ONNX model without a graph",
             c->what);
    if (ops.len) {
        wv__buf_adds(&ops, "]");
        wv__buf_addc(&ops, '\0');
        WV_CHECK(!ops.oom, WV_NOMEM, "out of memory");
        WV_CHECK(wv_model_set_meta(c->m, "onnx.opset_import", ops.p) == WV_OK,
                 WV_NOMEM, "out of memory");
    }
    WV_TRY(read_graph(c, &r, &graph, 0, err));
    c->m->meta_state = WV__META_FROM_FILE;
out:
    wv__buf_release(&ops);
    return rc;
}

/* Probing: the file is a ModelProto whose first field is ir_version (as
 * every serializer writes it: fields in number order), whose top-level
 * fields all parse with the wire types ONNX gives them, and which has a
 * graph. Only tags and lengths are read. */
static int probe(const struct wv__src *src, const unsigned char *h, size_t n)
{
    struct wv__err e = {0};
    uint64_t pos = 0;
    bool graph = false;
    if (n < 2 || h[0] != 0x08)
        return 0;
    for (int i = 0; i < PROBE_FIELDS && pos < src->size; i++) {
        unsigned char b[24];
        size_t bn = src->size - pos < sizeof b ? (size_t)(src->size - pos)
                                               : sizeof b;
        if (wv__src_read(src, pos, b, bn, &e) != WV_OK)
            return 0;
        const unsigned char *p = b, *end = b + bn;
        uint64_t tag, v;
        if (wv__pb_varint(&p, end, &tag) != 0 || (tag >> 3) == 0)
            return 0;
        uint64_t num = tag >> 3, wire = tag & 7;
        static const signed char wt[26] = {
            -1, 0, 2, 2, 2, 0, 2, 2, 2, -1, -1, -1, -1, -1,
            2,  -1, -1, -1, -1, -1, 2, -1, -1, -1, -1, 2};
        if (num < 26 && wt[num] >= 0 && (uint64_t)wt[num] != wire)
            return 0;
        if (num < 26 && wt[num] < 0)
            return 0;
        if (wire == WV__PB_VARINT) {
            if (wv__pb_varint(&p, end, &v) != 0)
                return 0;
        } else if (wire == WV__PB_LEN) {
            if (wv__pb_varint(&p, end, &v) != 0)
                return 0;
            uint64_t at = pos + (uint64_t)(p - b);
            /* A known field running past the end: a truncated model,
             * which load() reports as such. */
            if (v > src->size - at)
                return num < 26 && wt[num] == 2;
            graph = graph || num == 7;
            pos = at + v;
            continue;
        } else if (wire == WV__PB_I64) {
            p += 8;
        } else if (wire == WV__PB_I32) {
            p += 4;
        } else {
            return 0;
        }
        pos += (uint64_t)(p - b);
        if (pos > src->size)
            return 0;
    }
    return graph;
}

static int load(const struct wv__src *src, unsigned flags, wv_model *m,
                struct wv__err *err)
{
    int rc = WV_OK;
    struct ctx c = {0};
    unsigned char *buf = NULL;
    const unsigned char *p = src->map;
    c.what = src->name;
    c.m = m;
    c.ex = src->ex;
    c.flags = flags;
    c.can_ext = src->fd >= 0 && src->remote_read == NULL;
    const char *slash = strrchr(src->name, '/');
    c.dir = src->name;
    c.dir_len = slash ? (size_t)(slash - src->name) + 1 : 0;
    WV_CHECK(src->size <= SIZE_MAX, WV_RANGE, "%s: too large", src->name);
    if (p == NULL) {
        buf = wv__malloc(src->size ? (size_t)src->size : 1);
        WV_CHECK(buf != NULL, WV_NOMEM, "out of memory");
        WV_TRY(wv__src_read(src, 0, buf, (size_t)src->size, err));
        p = buf;
        WV_CHECK(wv__model_keep(m, buf, (size_t)src->size, false) == WV_OK,
                 WV_NOMEM, "out of memory");
        buf = NULL;
    }
    WV_TRY(read_model(&c, p, (size_t)src->size, err));
out:
    wv__free(buf);
    for (size_t i = 0; i < c.n_ext; i++) {
        if (c.ext[i].fd >= 0)
            close(c.ext[i].fd);
        wv__free(c.ext[i].loc);
        wv__free(c.ext[i].path);
    }
    wv__free(c.ext);
    wv__buf_release(&c.prefix);
    wv__buf_release(&c.name);
    return rc;
}

int wv__onnx_check(const void *buf, size_t n, size_t *n_tensors,
                   struct wv__err *err)
{
    int rc = WV_OK;
    wv_model *m = NULL;
    struct wv__src src = {.fd = -1, .size = n,
                          .map = n ? buf : (const void *)"",
                          .name = "<fuzz>"};
    *n_tensors = 0;
    WV_CHECK(wv_model_new(&m) == WV_OK, WV_NOMEM, "out of memory");
    /* the probe runs for coverage; the reader must hold whatever it says */
    (void)probe(&src, src.map, n < 64 ? n : 64);
    WV_TRY(load(&src, 0, m, err));
    *n_tensors = wv_model_count(m);
out:
    wv_model_free(m);
    return rc;
}

/* ==== writing: a template's initializers replaced ========================
 *
 * ONNX is written only over a template (wv_save_opts.template_path): the
 * template's ModelProto is emitted again field by field, every field
 * copied byte for byte except the graphs that hold initializers (the main
 * graph, and subgraphs of If/Loop/Scan nodes, reached through their nodes
 * and attributes) and the initializers themselves. A replaced
 * TensorProto keeps its fields in their order (name, dims, data_type,
 * doc_string, ...) with its data fields (typed fields, raw_data,
 * external_data, data_location) swapped for raw_data of the new bytes, or
 * for external_data {location, offset, length} + data_location EXTERNAL,
 * at the place of the first of them. The same weights over the same
 * raw_data template give the template's bytes back.
 *
 * Names are matched as the reader names them (scoped names in
 * subgraphs). Every initializer of a type the reader decodes must have a
 * tensor of its name in the set, with the same shape and the same dtype
 * after the save's cast (--dtype); every tensor of the set must be an
 * initializer. Initializers of other types (strings, 4-bit types) and
 * sparse initializers are kept as the template has them; a tensor named
 * like one is refused.
 *
 * External data: when the template keeps initializers in external files,
 * those initializers go to one new file beside OUT, named OUT's file name
 * + ".data" (offsets aligned to EXT_ALIGN; no checksum is written), and
 * the others stay inline; when the model would pass protobuf's 2 GiB
 * limit, every initializer of EXT_MIN bytes or more goes there too. The
 * data file is written (temporary file, fsync, rename) before OUT, which
 * is written last. The template's own external files are not read. */

#define EXT_ALIGN 64
#define EXT_MIN 1024
#define PB_LIMIT ((uint64_t)INT32_MAX)

enum { K_GRAPH, K_NODE, K_ATTR, K_TENSOR };

struct winit {
    const unsigned char *msg;  /* the template's TensorProto: the key */
    const struct wv_tensor *t; /* its replacement */
    wv_dtype to;
    uint64_t nbytes, off;
    bool was_ext, ext;
};

struct wctx {
    struct ctx c; /* first: read_node() calls back with it */
    const wv_model *m;
    const wv_save_opts *opts;
    const char *out;
    struct winit *in;
    size_t n_in, cap_in;
    unsigned char *used; /* per tensor of the set */
    char *loc;           /* the external data file's location */
};

struct emit {
    struct wv__wfile *f; /* NULL: only count */
    uint64_t n;
};

static int plan_graph(struct ctx *c, const struct wv__pb *parent,
                      const struct wv__pb_field *gf, int gdepth,
                      struct wv__err *err);

static int cmp_winit(const void *a, const void *b)
{
    const struct winit *x = a, *y = b;
    return x->msg < y->msg ? -1 : x->msg > y->msg;
}

static const char *dtype_hint(wv_dtype dt)
{
    return dt == WV_F32 || dt == WV_F16 || dt == WV_BF16 ? wv_dtype_name(dt)
                                                         : NULL;
}

static void shape_text(char *o, size_t n, int ndim, const uint64_t *dims)
{
    size_t k = (size_t)snprintf(o, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(o + k, n - k, "%s%llu", i ? ", " : "",
                              (unsigned long long)dims[i]);
    if (k < n)
        snprintf(o + k, n - k, "]");
}

/* An initializer of the template: its replacement found and checked. */
static int plan_init(struct wctx *w, const struct wv__pb *r,
                     const struct wv__pb_field *f, bool sparse,
                     struct wv__err *err)
{
    int rc = WV_OK;
    struct ctx *c = &w->c;
    struct tproto t;
    struct dtinfo d;
    struct wv__pb s;
    struct wv__pb_field g, vf = {0};
    const char *why = "";
    int k;
    if (sparse) {
        /* SparseTensorProto: its values tensor carries the name */
        WV_CHECK(wv__pb_sub(r, f, &s, &why) == 0, WV_CORRUPT,
                 "%s: sparse initializer: %s", c->what, why);
        while ((k = wv__pb_next(&s, &g, &why)) == 1)
            if (g.num == 1 && g.wire == WV__PB_LEN)
                vf = g;
        WV_CHECK(k == 0 && vf.data != NULL, WV_CORRUPT,
                 "%s: sparse initializer without values%s%s", c->what,
                 k ? ": " : "", k ? why : "");
        WV_TRY(parse_tensor(c, &s, &vf, &t, err));
    } else {
        WV_TRY(parse_tensor(c, r, f, &t, err));
    }
    c->name.len = 0;
    wv__buf_add(&c->name, c->prefix.p, c->prefix.len);
    wv__buf_add(&c->name, t.name, t.name_len);
    wv__buf_addc(&c->name, '\0');
    WV_CHECK(!c->name.oom, WV_NOMEM, "out of memory");
    WV_CHECK(t.name_len > 0 && memchr(t.name, '\0', t.name_len) == NULL &&
                 wv__utf8_valid(t.name, t.name_len),
             WV_CORRUPT,
             "%s: an initializer without a name, or whose name is not "
             "UTF-8 text",
             c->what);
    const struct wv_tensor *src = wv_model_find(w->m, c->name.p);
    bool kept = sparse || t.data_type == 8 || t.have_strings ||
                !map_type(t.data_type, &d);
    if (kept) {
        WV_CHECK(src == NULL, WV_UNSUPPORTED,
                 "%s: the template's initializer '%.200s' is %s, which is "
                 "kept as the template has it and cannot be replaced",
                 w->out, c->name.p,
                 sparse ? "sparse" : onnx_type_name(t.data_type));
        goto out;
    }
    WV_CHECK(src != NULL, WV_NOTFOUND,
             "%s: the template %s has the initializer '%.200s', which the "
             "set lacks (every initializer is replaced)",
             w->out, c->what, c->name.p);
    size_t idx = (size_t)(src - w->m->tensors);
    WV_CHECK(!w->used[idx], WV_CORRUPT,
             "%s: two initializers are named '%.200s'", c->what, c->name.p);
    w->used[idx] = 1;
    WV_CHECK(!t.segment, WV_UNSUPPORTED,
             "%s: initializer '%.200s' is segmented (not written)", c->what,
             c->name.p);
    wv_dtype to = wv__cast_target(src->dtype, w->opts->cast);
    WV_CHECK(to == d.dt, WV_MISUSE,
             "%s: tensor '%.200s' is %s, the template's initializer is %s "
             "(%s)%s%s",
             w->out, c->name.p, wv_dtype_name(to),
             onnx_type_name(t.data_type), wv_dtype_name(d.dt),
             dtype_hint(d.dt) && dtype_hint(to) ? "; convert with --dtype "
                                                : "",
             dtype_hint(d.dt) && dtype_hint(to) ? wv_dtype_name(d.dt) : "");
    bool same = src->ndim == t.ndim;
    for (int i = 0; same && i < t.ndim; i++)
        same = src->shape[i] == t.dims[i];
    if (!same) {
        char a[160], b[160];
        shape_text(a, sizeof a, src->ndim, src->shape);
        shape_text(b, sizeof b, t.ndim, t.dims);
        WV_CHECK(false, WV_MISUSE,
                 "%s: tensor '%.200s' has the shape %s, the template's "
                 "initializer %s",
                 w->out, c->name.p, a, b);
    }
    WV_CHECK(wv__grow(&w->in, &w->cap_in, w->n_in, sizeof *w->in, 16) ==
                 WV_OK,
             WV_NOMEM, "out of memory");
    w->in[w->n_in++] = (struct winit){
        .msg = f->data, .t = src, .to = to,
        .nbytes = wv__cast_nbytes(src, to), .was_ext = t.location == 1};
out:
    return rc;
}

static int plan_graph(struct ctx *c, const struct wv__pb *parent,
                      const struct wv__pb_field *gf, int gdepth,
                      struct wv__err *err)
{
    int rc = WV_OK;
    struct wctx *w = (struct wctx *)c;
    struct wv__pb r;
    struct wv__pb_field f;
    const char *why = "";
    int k;
    uint64_t node_i = 0;
    WV_CHECK(gf->wire == WV__PB_LEN, WV_CORRUPT,
             "%s: a graph field is not length-delimited", c->what);
    WV_CHECK(wv__pb_sub(parent, gf, &r, &why) == 0, WV_CORRUPT,
             "%s: graph: %s", c->what, why);
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        if (f.num == 5 || f.num == 15) {
            WV_CHECK(f.wire == WV__PB_LEN, WV_CORRUPT,
                     "%s: an initializer field is not length-delimited",
                     c->what);
            WV_TRY(plan_init(w, &r, &f, f.num == 15, err));
        } else if (f.num == 1) {
            WV_CHECK(f.wire == WV__PB_LEN, WV_CORRUPT,
                     "%s: a node field is not length-delimited", c->what);
            WV_TRY(read_node(c, &r, &f, node_i++, gdepth, err));
        }
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: graph: %s", c->what, why);
out:
    return rc;
}

static struct winit *find_init(struct wctx *w, const unsigned char *msg)
{
    struct winit key = {.msg = msg};
    return w->n_in ? bsearch(&key, w->in, w->n_in, sizeof *w->in,
                             cmp_winit)
                   : NULL;
}

static void e_raw(struct emit *e, const void *p, size_t n)
{
    if (e->f && n)
        wv__wfile_write(e->f, p, n);
    e->n += n;
}

static void e_varint(struct emit *e, uint64_t v)
{
    unsigned char b[10];
    size_t k = 0;
    do {
        b[k++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    e_raw(e, b, k);
}

static void e_tag(struct emit *e, uint32_t num, int wire)
{
    e_varint(e, (uint64_t)num << 3 | (unsigned)wire);
}

static void e_bytes(struct emit *e, uint32_t num, const void *p, size_t n)
{
    e_tag(e, num, WV__PB_LEN);
    e_varint(e, n);
    e_raw(e, p, n);
}

static void emit_body(struct wctx *w, struct emit *e, int kind,
                      const unsigned char *p, size_t n);

/* A nested message: its size counted first, for its length prefix. */
static void emit_msg(struct wctx *w, struct emit *e, uint32_t num, int kind,
                     const unsigned char *p, size_t n)
{
    struct emit cnt = {NULL, 0};
    emit_body(w, &cnt, kind, p, n);
    e_tag(e, num, WV__PB_LEN);
    e_varint(e, cnt.n);
    if (e->f)
        emit_body(w, e, kind, p, n);
    else
        e->n += cnt.n;
}

static void emit_payload(struct wctx *w, struct emit *e,
                         const struct winit *x)
{
    if (!x->ext) {
        e_tag(e, 9, WV__PB_LEN);
        e_varint(e, x->nbytes);
        if (e->f)
            wv__wfile_tensor(e->f, x->t, x->to);
        e->n += x->nbytes;
        return;
    }
    char num[2][24];
    const char *key[3] = {"location", "offset", "length"};
    const char *val[3] = {w->loc, num[0], num[1]};
    snprintf(num[0], sizeof num[0], "%llu", (unsigned long long)x->off);
    snprintf(num[1], sizeof num[1], "%llu", (unsigned long long)x->nbytes);
    for (int i = 0; i < 3; i++) {
        size_t kl = strlen(key[i]), vl = strlen(val[i]);
        e_tag(e, 13, WV__PB_LEN);
        e_varint(e, 2 + kl + wv__pb_varint_len(kl) + vl +
                        wv__pb_varint_len(vl));
        e_bytes(e, 1, key[i], kl);
        e_bytes(e, 2, val[i], vl);
    }
    e_tag(e, 14, WV__PB_VARINT);
    e_varint(e, 1);
}

/* The template's message bytes were checked by the plan: its fields are
 * walked again without the checks. */
static void emit_body(struct wctx *w, struct emit *e, int kind,
                      const unsigned char *p, size_t n)
{
    struct wv__pb r;
    struct wv__pb_field f;
    const char *why;
    const struct winit *x = NULL;
    bool done = false;
    if (kind == K_TENSOR) {
        x = find_init(w, p);
        if (x == NULL) {
            e_raw(e, p, n);
            return;
        }
    }
    wv__pb_init(&r, p, n);
    for (;;) {
        const unsigned char *start = r.p;
        if (wv__pb_next(&r, &f, &why) != 1)
            break;
        int sub = -1;
        if (kind == K_GRAPH && f.num == 5 && f.wire == WV__PB_LEN)
            sub = K_TENSOR;
        else if (kind == K_GRAPH && f.num == 1 && f.wire == WV__PB_LEN)
            sub = K_NODE;
        else if (kind == K_NODE && f.num == 5 && f.wire == WV__PB_LEN)
            sub = K_ATTR;
        else if (kind == K_ATTR && (f.num == 6 || f.num == 11) &&
                 f.wire == WV__PB_LEN)
            sub = K_GRAPH;
        if (sub >= 0) {
            emit_msg(w, e, f.num, sub, f.data, f.len);
            continue;
        }
        if (kind == K_TENSOR &&
            ((f.num >= 4 && f.num <= 7) || (f.num >= 9 && f.num <= 11) ||
             f.num == 13 || f.num == 14)) {
            if (!done)
                emit_payload(w, e, x);
            done = true;
            continue;
        }
        e_raw(e, start, (size_t)(r.p - start));
    }
    if (kind == K_TENSOR && !done)
        emit_payload(w, e, x);
}

/* The whole ModelProto: every field but the graph copied. */
static void emit_model(struct wctx *w, struct emit *e,
                       const unsigned char *p, size_t n)
{
    struct wv__pb r;
    struct wv__pb_field f;
    const char *why;
    wv__pb_init(&r, p, n);
    for (;;) {
        const unsigned char *start = r.p;
        if (wv__pb_next(&r, &f, &why) != 1)
            break;
        if (f.num == 7 && f.wire == WV__PB_LEN)
            emit_msg(w, e, 7, K_GRAPH, f.data, f.len);
        else
            e_raw(e, start, (size_t)(r.p - start));
    }
}

static int save(const wv_model *m, struct wv__wfile *f,
                const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    struct wctx w = {0};
    const char *tpl = NULL;
    int fd = -1;
    void *map = MAP_FAILED;
    size_t size = 0;
    struct wv__src tsrc;
    struct wv__pb r;
    struct wv__pb_field fl, graph = {0};
    const char *why = "";
    int k;
    char *dpath = NULL;
    struct wv__wfile *df = NULL;

    if (opts->struct_size >= offsetof(wv_save_opts, template_path) +
                                 sizeof opts->template_path)
        tpl = opts->template_path;
    WV_CHECK(tpl != NULL && *tpl, WV_MISUSE,
             "%s: ONNX is written over a template model: give the .onnx "
             "model whose initializers the tensors replace (wv convert "
             "--template MODEL.onnx)",
             f->path);
    w.c.what = tpl;
    w.c.graph = plan_graph;
    w.m = m;
    w.opts = opts;
    w.out = f->path;
    WV_TRY(wv__open_part(f->path, "template", tpl, true, NULL, NULL, &fd,
                         &tsrc, err));
    if (tsrc.size > 0)
        map = (void *)tsrc.map; /* ours to unmap */
    WV_CHECK(tsrc.size > 0, WV_IO, "%s: template %s is an empty file",
             f->path, tpl);
    size = (size_t)tsrc.size;
    w.used = wv__calloc(m->n_tensors + 1, 1);
    WV_CHECK(w.used != NULL, WV_NOMEM, "out of memory");

    /* The plan: the template checked, every initializer matched. */
    wv__pb_init(&r, map, size);
    while ((k = wv__pb_next(&r, &fl, &why)) == 1)
        if (fl.num == 7) {
            WV_CHECK(fl.wire == WV__PB_LEN, WV_CORRUPT,
                     "%s: the graph field is not length-delimited", tpl);
            WV_CHECK(graph.data == NULL, WV_CORRUPT,
                     "%s: ONNX model with two graph fields", tpl);
            graph = fl;
        }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: not a valid ONNX model: %s", tpl, why);
    WV_CHECK(graph.data != NULL, WV_CORRUPT, "%s: ONNX model without a graph",
             tpl);
    wv__pb_init(&r, map, size);
    WV_TRY(plan_graph(&w.c, &r, &graph, 0, err));
    for (size_t i = 0; i < m->n_tensors; i++)
        WV_CHECK(w.used[i], WV_NOTFOUND,
                 "%s: tensor '%.200s' is not an initializer of the template "
                 "%s",
                 f->path, m->tensors[i].name, tpl);
    if (w.n_in > 1) /* none: w.in is NULL, which qsort may not get */
        qsort(w.in, w.n_in, sizeof *w.in, cmp_winit);

    /* External data: as the template has it, and past 2 GiB. */
    bool any_ext = false;
    for (size_t i = 0; i < w.n_in; i++) {
        w.in[i].ext = w.in[i].was_ext;
        any_ext = any_ext || w.in[i].ext;
    }
    const char *base = strrchr(f->path, '/');
    base = base ? base + 1 : f->path;
    w.loc = wv__malloc(strlen(base) + 6);
    dpath = wv__malloc(strlen(f->path) + 6);
    WV_CHECK(w.loc && dpath, WV_NOMEM, "out of memory");
    snprintf(w.loc, strlen(base) + 6, "%s.data", base);
    snprintf(dpath, strlen(f->path) + 6, "%s.data", f->path);
    struct emit cnt = {NULL, 0};
    emit_model(&w, &cnt, map, size);
    if (cnt.n > PB_LIMIT) {
        for (size_t i = 0; i < w.n_in; i++)
            if (w.in[i].nbytes >= EXT_MIN)
                w.in[i].ext = any_ext = true;
        cnt.n = 0;
        emit_model(&w, &cnt, map, size);
        WV_CHECK(cnt.n <= PB_LIMIT, WV_RANGE,
                 "%s: the model takes %llu bytes even with its tensors in "
                 "external data, more than protobuf's 2 GiB",
                 f->path, (unsigned long long)cnt.n);
    }
    if (any_ext) {
        /* in the template's order (w.in is sorted by position): the
         * data file reads front to back */
        struct winit **ord = wv__calloc(w.n_in, sizeof *ord);
        size_t no = 0;
        uint64_t at = 0;
        WV_CHECK(ord != NULL, WV_NOMEM, "out of memory");
        for (size_t i = 0; i < w.n_in; i++)
            if (w.in[i].ext)
                ord[no++] = &w.in[i];
        /* committed with OUT by the caller, OUT renamed last */
        rc = wv__wfile_side(f, dpath, &df);
        if (rc == WV_OK)
            for (size_t i = 0; i < no; i++) {
                uint64_t pad = (EXT_ALIGN - at % EXT_ALIGN) % EXT_ALIGN;
                wv__wfile_zero(df, (size_t)pad);
                at += pad;
                ord[i]->off = at;
                wv__wfile_tensor(df, ord[i]->t, ord[i]->to);
                at += ord[i]->nbytes;
            }
        wv__free(ord);
        WV_TRY(rc);
        WV_TRY(df->rc);
    } else {
        /* a previous version's OUT.data, now unreferenced */
        WV_TRY(wv__wfile_drop_after(f, dpath));
    }
    struct emit out = {f, 0};
    emit_model(&w, &out, map, size);
out:
    if (map != MAP_FAILED)
        munmap(map, size);
    if (fd >= 0)
        close(fd);
    wv__free(w.in);
    wv__free(w.used);
    wv__free(w.loc);
    wv__free(dpath);
    wv__buf_release(&w.c.prefix);
    wv__buf_release(&w.c.name);
    return rc;
}

const struct wv__format_ops wv__fmt_onnx = {
    WV_FMT_ONNX, "onnx", ".onnx", probe, load, save, WV__SHARDS_NONE,
    "an ONNX model is written as one file, with its template's layout "
    "(no --shard-size)",
};
