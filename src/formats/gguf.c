/*
 * gguf.c -- GGUF v2 and v3, the ggml / llama.cpp weights format.
 *
 * Byte layout (all integers little-endian; big-endian GGUF exists but
 * cannot be told apart reliably, so only LE is read: a version whose low
 * 16 bits are zero is refused as "big-endian"):
 *
 *   u32  magic "GGUF" (47 47 55 46)
 *   u32  version, 2 or 3 (v1 used 32-bit counts and is refused)
 *   u64  tensor_count
 *   u64  kv_count
 *   kv_count x   { string key; u32 type; value }
 *   tensor_count x { string name; u32 n_dims; u64 ne[n_dims];
 *                    u32 ggml_type; u64 offset }
 *   zero padding to `alignment` (general.alignment, u32, default 32)
 *   tensor data: tensor i at data_start + offset[i], each padded with
 *                zeros to `alignment`
 *
 *   string = u64 length + bytes (no terminator; not necessarily UTF-8)
 *   value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool
 *   (one byte, 0 or 1), 8 string, 9 array (u32 elem_type, u64 count,
 *   elements), 10 u64, 11 i64, 12 f64.
 *
 * ne[] is in ggml order, fastest-varying first: the reported shape is its
 * reverse, as numpy shows it (a (rows, cols) matrix is stored ne=[cols,
 * rows]). Block-quantised ggml types (Q4_0, Q8_0, the K-quants, IQ*, TQ*,
 * MXFP4) become the opaque block dtypes of dtype.c; ne[0] must be a
 * multiple of the block's element count.
 *
 * The reader enforces what ggml's gguf_init_from_file_impl enforces, and
 * bounds everything by the file size before allocating: version 2 or 3; no
 * duplicate keys or tensor names; arrays not nested; bool values 0 or 1;
 * general.alignment a u32 power of two (and at most 1 MiB, our cap);
 * tensor names under 64 bytes; at most 4 dims, each below 2^63, element
 * counts that do not overflow; known ggml types; offset[i] equal to the
 * running sum of the padded sizes of the tensors before it; tensor data
 * inside the file, and nothing after the last tensor but its padding. We
 * also refuse more than 8192 KV pairs and keys or tensor names that are
 * not UTF-8 or contain NUL bytes (a tensor set cannot hold them).
 *
 * Metadata. Every KV becomes the entry "gguf.<key>" whose value is a typed
 * text encoding, lossless and parseable back by the writer:
 *
 *   scalar   TYPE ":" VALUE            u32:7   f32:9.99999975e-06
 *   array    TYPE "[]:[" V,V,... "]"    f32[]:[0,-1.5]   str[]:["a","b"]
 *   TYPE     u8 i8 u16 i16 u32 i32 u64 i64 f32 f64 bool str
 *   integer  decimal, "-" for negative values
 *   f32/f64  C "%.9g" / "%.17g" (round-trip exact; "inf", "-inf"), or
 *            "nan:0x7fc00000" (f32) / "nan:0x7ff8000000000000" (f64): the
 *            raw bits of a NaN, so payloads survive
 *   bool     true / false
 *   str      a JSON string: '"' and '\' escaped, \b \f \n \r \t, other
 *            bytes below 0x20 as \u00xx, valid UTF-8 as is, and every byte
 *            that is not part of valid UTF-8 as \udcXX (the lone low
 *            surrogate U+DC00 + byte, Python's "surrogateescape"); so the
 *            value is UTF-8 text without NUL bytes, and any bytes survive.
 * Numbers are printed and parsed in the C locale (the library never calls
 * setlocale).
 *
 * Foreign metadata. Entries that are not typed "gguf.<key>" ones (the
 * architecture from other formats, keras.model_config, mxnet.symbol,
 * safetensors __metadata__ keys, or a "gguf." value that does not parse)
 * are written as plain string KVs under their own full key, which ggml
 * tools read as ordinary strings, and the writer adds one last KV
 *
 *   weightvault.foreign_keys   array of str: those keys, in order
 *
 * The reader maps exactly the keys it lists back: KV <key> of type str
 * becomes the entry <key> (not "gguf.<key>") whose value is the string's
 * bytes as they are, and the marker itself is not kept as metadata. So
 * such entries survive a trip through GGUF unchanged (same keys, same
 * values), and a rewrite is byte-identical. A listed key whose KV is
 * missing, not a string, holds a NUL byte or bytes that are not UTF-8, or
 * whose plain key is already taken is left as "gguf.<key>"; a marker that
 * is not an array of strings is kept as ordinary metadata. Writing a set
 * whose own metadata would land on the marker's key while foreign entries
 * exist is refused.
 *
 * Writing: version 3; KVs in metadata order. A "gguf.<key>" entry whose
 * value parses as above is written as that typed KV under <key>; every
 * other entry is written as a foreign string KV (above). When two
 * entries map to the same GGUF key the first wins (ggml refuses duplicate
 * keys). general.alignment is honoured (a non-u32 one is dropped, an
 * invalid u32 one refused). Tensors follow the set order, each at the
 * running padded offset, zero-padded, the last one too; tensor data is
 * streamed through wv__wfile_tensor (with --dtype casts, which also
 * dequantise Q4_0/Q4_1/Q5_0/Q5_1/Q8_0). Rewriting a file written by ggml
 * or gguf-py reproduces it byte for byte (the order of KVs and tensors and
 * the padding are theirs). Dtypes GGUF lacks (BOOL, U8, U16, U32, U64,
 * C64, F8_*), more than 4 dims and names of 64 bytes or more are refused.
 */
#include "core.h"
#include "fmt.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

#define GGUF_DEFAULT_ALIGN 32u
#define GGUF_MAX_ALIGN (1u << 20)
#define GGUF_MAX_NAME 64 /* ggml's GGML_MAX_NAME, including the NUL */
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_KV 8192
#define RD_WIN 65536
/* The KV naming the keys of foreign metadata (see the header comment). */
#define FOREIGN_KEY "weightvault.foreign_keys"

enum {
    T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR,
    T_U64, T_I64, T_F64, T_COUNT
};
static const char *const tnames[T_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32",
    "bool", "str", "arr", "u64", "i64", "f64",
};
/* Bytes of a value; for strings the length field, the least they take. */
static const unsigned char tsizes[T_COUNT] = {1, 1, 2, 2, 4, 4, 4,
                                              1, 8, 0, 8, 8, 8};

/* ggml type id -> dtype (WV_DTYPE_INVALID: removed or unknown). */
static const wv_dtype ggml_types[] = {
    [0] = WV_F32,      [1] = WV_F16,      [2] = WV_Q4_0,
    [3] = WV_Q4_1,     [6] = WV_Q5_0,     [7] = WV_Q5_1,
    [8] = WV_Q8_0,     [9] = WV_Q8_1,     [10] = WV_Q2_K,
    [11] = WV_Q3_K,    [12] = WV_Q4_K,    [13] = WV_Q5_K,
    [14] = WV_Q6_K,    [15] = WV_Q8_K,    [16] = WV_IQ2_XXS,
    [17] = WV_IQ2_XS,  [18] = WV_IQ3_XXS, [19] = WV_IQ1_S,
    [20] = WV_IQ4_NL,  [21] = WV_IQ3_S,   [22] = WV_IQ2_S,
    [23] = WV_IQ4_XS,  [24] = WV_I8,      [25] = WV_I16,
    [26] = WV_I32,     [27] = WV_I64,     [28] = WV_F64,
    [29] = WV_IQ1_M,   [30] = WV_BF16,    [34] = WV_TQ1_0,
    [35] = WV_TQ2_0,   [39] = WV_MXFP4,
};
#define N_GGML_TYPES (sizeof ggml_types / sizeof ggml_types[0])

static int ggml_id(wv_dtype dt)
{
    for (size_t i = 0; i < N_GGML_TYPES; i++)
        if (ggml_types[i] == dt && dt != WV_DTYPE_INVALID)
            return (int)i;
    return -1;
}

static bool pad_to(uint64_t x, uint64_t align, uint64_t *out)
{
    uint64_t r = x % align;
    if (r == 0) {
        *out = x;
        return true;
    }
    return !wv__add_overflow(x, align - r, out);
}

/* ---- reader ------------------------------------------------------------- */

/* A cursor over the source: mapped sources are read in place, pread ones
 * through a window so that small fields do not cost a syscall each. */
struct rd {
    const struct wv__src *src;
    uint64_t off;
    unsigned char *win;
    uint64_t win_off;
    size_t win_len;
    char ctx[200]; /* what is being read, for messages */
    struct wv__err *err;
};

static int rd_bytes(struct rd *r, void *buf, size_t n)
{
    struct wv__err *err = r->err;
    int rc = WV_OK;
    WV_CHECK(n <= r->src->size - r->off, WV_CORRUPT,
             "%s: truncated in %s: %zu bytes needed at offset %llu but the "
             "file has %llu",
             r->src->name, r->ctx, n, (unsigned long long)r->off,
             (unsigned long long)r->src->size);
    if (r->src->map) {
        if (n)
            memcpy(buf, r->src->map + r->off, n);
    } else if (n > RD_WIN / 2) {
        WV_TRY(wv__src_read(r->src, r->off, buf, n, err));
    } else {
        if (r->off < r->win_off || r->off + n > r->win_off + r->win_len) {
            uint64_t left = r->src->size - r->off;
            size_t len = left < RD_WIN ? (size_t)left : RD_WIN;
            WV_TRY(wv__src_read(r->src, r->off, r->win, len, err));
            r->win_off = r->off;
            r->win_len = len;
        }
        if (n)
            memcpy(buf, r->win + (r->off - r->win_off), n);
    }
    r->off += n;
out:
    return rc;
}

static int rd_u32(struct rd *r, uint32_t *v)
{
    unsigned char b[4] = {0};
    int rc = rd_bytes(r, b, 4);
    *v = rc == WV_OK ? wv__le32(b) : 0;
    return rc;
}

static int rd_u64(struct rd *r, uint64_t *v)
{
    unsigned char b[8] = {0};
    int rc = rd_bytes(r, b, 8);
    *v = rc == WV_OK ? wv__le64(b) : 0;
    return rc;
}

/* A string into a wv__malloc()ed, NUL-terminated buffer. */
static int rd_str(struct rd *r, char **out, size_t *len)
{
    struct wv__err *err = r->err;
    int rc = WV_OK;
    uint64_t n;
    char *s = NULL;
    *out = NULL;
    WV_TRY(rd_u64(r, &n));
    WV_CHECK(n <= r->src->size - r->off, WV_CORRUPT,
             "%s: %s: string of %llu bytes runs past the end of the file",
             r->src->name, r->ctx, (unsigned long long)n);
    s = wv__malloc((size_t)n + 1);
    WV_CHECK(s != NULL, WV_NOMEM, "out of memory");
    WV_TRY(rd_bytes(r, s, (size_t)n));
    s[n] = '\0';
    *out = s;
    *len = (size_t)n;
    s = NULL;
out:
    wv__free(s);
    return rc;
}

/* Append bytes as the JSON-like string of the metadata encoding. */
static void put_str(struct wv__buf *b, const unsigned char *s, size_t n)
{
    wv__buf_addc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c >= 0x80) {
            size_t k = wv__utf8_seq(s + i, n - i);
            if (k == 0) {
                wv__buf_addf(b, "\\u%04x", 0xdc00u + c);
                i++;
            } else {
                wv__buf_add(b, s + i, k);
                i += k;
            }
            continue;
        }
        i++;
        switch (c) {
        case '"': wv__buf_adds(b, "\\\""); break;
        case '\\': wv__buf_adds(b, "\\\\"); break;
        case '\b': wv__buf_adds(b, "\\b"); break;
        case '\f': wv__buf_adds(b, "\\f"); break;
        case '\n': wv__buf_adds(b, "\\n"); break;
        case '\r': wv__buf_adds(b, "\\r"); break;
        case '\t': wv__buf_adds(b, "\\t"); break;
        default:
            if (c < 0x20)
                wv__buf_addf(b, "\\u%04x", c);
            else
                wv__buf_addc(b, (char)c);
        }
    }
    wv__buf_addc(b, '"');
}

/* Read one value of scalar type t and append its text encoding; *raw
 * gets its bits (0 for strings). */
static int put_scalar(struct rd *r, struct wv__buf *b, uint32_t t,
                      uint64_t *raw)
{
    struct wv__err *err = r->err;
    int rc = WV_OK;
    unsigned char v[8] = {0};
    char *s = NULL;
    size_t n;
    *raw = 0;
    if (t == T_STR) {
        WV_TRY(rd_str(r, &s, &n));
        put_str(b, (const unsigned char *)s, n);
        goto out;
    }
    WV_TRY(rd_bytes(r, v, tsizes[t]));
    memset(v + tsizes[t], 0, 8 - tsizes[t]);
    *raw = wv__le64(v);
    switch (t) {
    case T_U8: wv__buf_addf(b, "%u", v[0]); break;
    case T_I8: wv__buf_addf(b, "%d", (int)(signed char)v[0]); break;
    case T_U16: wv__buf_addf(b, "%u", wv__le16(v)); break;
    case T_I16: wv__buf_addf(b, "%d", (int)(int16_t)wv__le16(v)); break;
    case T_U32: wv__buf_addf(b, "%lu", (unsigned long)wv__le32(v)); break;
    case T_I32: wv__buf_addf(b, "%ld", (long)(int32_t)wv__le32(v)); break;
    case T_U64:
        wv__buf_addf(b, "%llu", (unsigned long long)wv__le64(v));
        break;
    case T_I64:
        wv__buf_addf(b, "%lld", (long long)(int64_t)wv__le64(v));
        break;
    case T_F32: {
        uint32_t bits = wv__le32(v);
        float f;
        memcpy(&f, &bits, 4);
        if (f != f)
            wv__buf_addf(b, "nan:0x%08lx", (unsigned long)bits);
        else
            wv__buf_addf(b, "%.9g", (double)f);
        break;
    }
    case T_F64: {
        uint64_t bits = wv__le64(v);
        double d;
        memcpy(&d, &bits, 8);
        if (d != d)
            wv__buf_addf(b, "nan:0x%016llx", (unsigned long long)bits);
        else
            wv__buf_addf(b, "%.17g", d);
        break;
    }
    case T_BOOL:
        WV_CHECK(v[0] <= 1, WV_CORRUPT,
                 "%s: %s: bool value %u is not 0 or 1", r->src->name,
                 r->ctx, v[0]);
        wv__buf_adds(b, v[0] ? "true" : "false");
        break;
    default:
        break;
    }
out:
    wv__free(s);
    return rc;
}

/* A KV value of type t (already read) as text into b. For a u32 the value
 * is also returned in *u32. */
static int put_value(struct rd *r, struct wv__buf *b, uint32_t t,
                     uint32_t *u32)
{
    struct wv__err *err = r->err;
    int rc = WV_OK;
    WV_CHECK(t < T_COUNT, WV_CORRUPT, "%s: %s: unknown value type %lu",
             r->src->name, r->ctx, (unsigned long)t);
    uint64_t raw;
    if (t != T_ARR) {
        wv__buf_adds(b, tnames[t]);
        wv__buf_addc(b, ':');
        WV_TRY(put_scalar(r, b, t, &raw));
        *u32 = (uint32_t)raw;
        goto out;
    }
    uint32_t et;
    uint64_t count;
    WV_TRY(rd_u32(r, &et));
    WV_CHECK(et != T_ARR, WV_FORMAT,
             "%s: %s: arrays of arrays are not supported (ggml refuses "
             "them)",
             r->src->name, r->ctx);
    WV_CHECK(et < T_COUNT, WV_CORRUPT,
             "%s: %s: unknown array element type %lu", r->src->name, r->ctx,
             (unsigned long)et);
    WV_TRY(rd_u64(r, &count));
    WV_CHECK(count <= (r->src->size - r->off) / tsizes[et], WV_CORRUPT,
             "%s: %s: array of %llu %s values cannot fit in the rest of the "
             "file",
             r->src->name, r->ctx, (unsigned long long)count, tnames[et]);
    wv__buf_adds(b, tnames[et]);
    wv__buf_adds(b, "[]:[");
    for (uint64_t i = 0; i < count; i++) {
        if (i)
            wv__buf_addc(b, ',');
        WV_TRY(put_scalar(r, b, et, &raw));
        WV_CHECK(!b->oom, WV_NOMEM, "out of memory");
    }
    wv__buf_addc(b, ']');
out:
    return rc;
}

struct info {
    char *name;
    size_t name_len;
    wv_dtype dtype;
    int ndim;
    uint64_t shape[GGUF_MAX_DIMS];
    uint64_t off, nbytes;
};

static int probe(const struct wv__src *src, const unsigned char *h, size_t n)
{
    (void)src;
    return n >= 4 && memcmp(h, "GGUF", 4) == 0;
}

static int read_info(struct rd *r, struct info *e, size_t idx)
{
    struct wv__err *err = r->err;
    int rc = WV_OK;
    const char *fn = r->src->name;
    uint32_t nd, ty;
    uint64_t ne[GGUF_MAX_DIMS];

    snprintf(r->ctx, sizeof r->ctx, "tensor info %zu", idx);
    WV_TRY(rd_str(r, &e->name, &e->name_len));
    int nl = (int)(e->name_len > 100 ? 100 : e->name_len);
    const char *nm = e->name;
    snprintf(r->ctx, sizeof r->ctx, "tensor info '%.*s'", nl, nm);
    WV_CHECK(e->name_len > 0 && memchr(nm, '\0', e->name_len) == NULL &&
                 wv__utf8_valid(nm, e->name_len),
             WV_FORMAT,
             "%s: tensor %zu: name is empty, not UTF-8 or contains a NUL "
             "byte, which is not supported",
             fn, idx);
    WV_CHECK(e->name_len < GGUF_MAX_NAME, WV_CORRUPT,
             "%s: tensor '%.*s': name is %zu bytes; GGUF (ggml) allows at "
             "most %d",
             fn, nl, nm, e->name_len, GGUF_MAX_NAME - 1);
    WV_TRY(rd_u32(r, &nd));
    WV_CHECK(nd <= GGUF_MAX_DIMS, WV_CORRUPT,
             "%s: tensor '%.*s' has %lu dimensions; GGUF (ggml) allows at "
             "most %d",
             fn, nl, nm, (unsigned long)nd, GGUF_MAX_DIMS);
    for (uint32_t i = 0; i < nd; i++) {
        WV_TRY(rd_u64(r, &ne[i]));
        WV_CHECK(ne[i] <= (uint64_t)INT64_MAX, WV_CORRUPT,
                 "%s: tensor '%.*s': dimension %lu is negative", fn, nl, nm,
                 (unsigned long)i);
    }
    WV_TRY(rd_u32(r, &ty));
    WV_TRY(rd_u64(r, &e->off));
    if (ty < N_GGML_TYPES)
        e->dtype = ggml_types[ty];
    WV_CHECK(ty != 40 && ty != 41, WV_UNSUPPORTED,
             "%s: tensor '%.*s' has ggml type %lu (%s), which is not "
             "supported",
             fn, nl, nm, (unsigned long)ty, ty == 40 ? "NVFP4" : "Q1_0");
    WV_CHECK(ty < N_GGML_TYPES && e->dtype != WV_DTYPE_INVALID, WV_CORRUPT,
             "%s: tensor '%.*s' has unknown or removed ggml type %lu", fn,
             nl, nm, (unsigned long)ty);
    e->ndim = (int)nd;
    for (int i = 0; i < e->ndim; i++)
        e->shape[i] = ne[e->ndim - 1 - i];
    size_t be, bb;
    wv_dtype_block(e->dtype, &be, &bb);
    WV_CHECK(be == 1 || (nd > 0 && ne[0] % be == 0), WV_CORRUPT,
             "%s: tensor '%.*s': row of %llu elements is not a multiple of "
             "the %zu-element blocks of %s",
             fn, nl, nm, (unsigned long long)(nd ? ne[0] : 1), be,
             wv_dtype_name(e->dtype));
    uint64_t numel;
    WV_CHECK(wv__shape_bytes(e->dtype, e->ndim, e->shape, &numel,
                             &e->nbytes) == WV_OK &&
                 numel <= (uint64_t)INT64_MAX,
             WV_CORRUPT, "%s: tensor '%.*s': element count overflows", fn,
             nl, nm);
out:
    return rc;
}

static int map_foreign(wv_model *m, const char *list, struct wv__err *err);

static int gguf_load(const struct wv__src *src, unsigned flags, wv_model *m,
                     struct wv__err *err)
{
    int rc = WV_OK;
    char *foreign = NULL; /* the marker's encoded value, if any */
    struct rd r = {src, 0, NULL, 0, 0, "the file header", err};
    struct info *infos = NULL;
    uint64_t n_tensors = 0, n_kv;
    char *key = NULL, *mkey = NULL;
    size_t klen;
    struct wv__buf val = {0};
    uint32_t align = GGUF_DEFAULT_ALIGN;
    const char *fn = src->name;
    unsigned char hdr[8] = {0};

    if (src->map == NULL) {
        r.win = wv__malloc(RD_WIN);
        WV_CHECK(r.win != NULL, WV_NOMEM, "out of memory");
    }
    WV_TRY(rd_bytes(&r, hdr, 8));
    WV_CHECK(memcmp(hdr, "GGUF", 4) == 0, WV_CORRUPT,
             "%s: no GGUF magic at offset 0", fn);
    uint32_t version = wv__le32(hdr + 4);
    WV_CHECK(version != 1, WV_FORMAT,
             "%s: GGUF version 1 is not supported (only 2 and 3)", fn);
    WV_CHECK((version & 0xffffu) != 0, WV_FORMAT,
             "%s: GGUF version 0x%08lx looks big-endian; only "
             "little-endian GGUF is supported",
             fn, (unsigned long)version);
    WV_CHECK(version == 2 || version == 3, WV_FORMAT,
             "%s: GGUF version %lu is not supported (only 2 and 3)", fn,
             (unsigned long)version);
    WV_TRY(rd_u64(&r, &n_tensors));
    WV_TRY(rd_u64(&r, &n_kv));
    WV_CHECK(n_kv <= GGUF_MAX_KV, WV_FORMAT,
             "%s: %llu KV pairs; more than %d are not supported", fn,
             (unsigned long long)n_kv, GGUF_MAX_KV);
    /* A tensor info takes at least 24 bytes and a KV 13. */
    WV_CHECK(n_tensors <= (src->size - r.off) / 24 &&
                 n_kv <= (src->size - r.off) / 13,
             WV_CORRUPT,
             "%s: %llu tensors and %llu KV pairs cannot fit in the "
             "%llu-byte file",
             fn, (unsigned long long)n_tensors, (unsigned long long)n_kv,
             (unsigned long long)src->size);
    m->meta_state = WV__META_FROM_FILE;

    for (uint64_t i = 0; i < n_kv; i++) {
        uint32_t type, u32 = 0;
        snprintf(r.ctx, sizeof r.ctx, "KV %llu", (unsigned long long)i);
        WV_TRY(rd_str(&r, &key, &klen));
        int kl = (int)(klen > 100 ? 100 : klen);
        WV_CHECK(memchr(key, '\0', klen) == NULL &&
                     wv__utf8_valid(key, klen),
                 WV_FORMAT,
                 "%s: KV %llu: key is not UTF-8 or contains a NUL byte, "
                 "which is not supported",
                 fn, (unsigned long long)i);
        snprintf(r.ctx, sizeof r.ctx, "KV '%.*s'", kl, key);
        mkey = wv__malloc(klen + 6);
        WV_CHECK(mkey != NULL, WV_NOMEM, "out of memory");
        memcpy(mkey, "gguf.", 5);
        memcpy(mkey + 5, key, klen + 1);
        bool marker = strcmp(key, FOREIGN_KEY) == 0;
        WV_CHECK(wv_model_get_meta(m, mkey) == NULL &&
                     !(marker && foreign != NULL),
                 WV_CORRUPT, "%s: duplicate key '%.*s'", fn, kl, key);
        WV_TRY(rd_u32(&r, &type));
        val.len = 0;
        WV_TRY(put_value(&r, &val, type, &u32));
        wv__buf_addc(&val, '\0');
        WV_CHECK(!val.oom, WV_NOMEM, "out of memory");
        if (strcmp(key, "general.alignment") == 0) {
            WV_CHECK(type == T_U32, WV_CORRUPT,
                     "%s: general.alignment has type %s; it must be u32",
                     fn, type < T_COUNT ? tnames[type] : "?");
            WV_CHECK(u32 != 0 && (u32 & (u32 - 1)) == 0, WV_CORRUPT,
                     "%s: general.alignment %lu is not a power of two", fn,
                     (unsigned long)u32);
            WV_CHECK(u32 <= GGUF_MAX_ALIGN, WV_FORMAT,
                     "%s: general.alignment %lu is over the supported "
                     "limit of %u",
                     fn, (unsigned long)u32, GGUF_MAX_ALIGN);
            align = u32;
        }
        if (marker && type == T_ARR && strncmp(val.p, "str[]:[", 7) == 0) {
            foreign = wv__strdup(val.p);
            WV_CHECK(foreign != NULL, WV_NOMEM, "out of memory");
        } else {
            WV_CHECK(wv_model_set_meta(m, mkey, val.p) == WV_OK, WV_NOMEM,
                     "out of memory");
        }
        wv__free(key);
        wv__free(mkey);
        key = mkey = NULL;
    }
    if (foreign != NULL)
        WV_TRY(map_foreign(m, foreign, err));

    infos = wv__calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *infos);
    WV_CHECK(infos != NULL, WV_NOMEM, "out of memory");
    for (uint64_t i = 0; i < n_tensors; i++)
        WV_TRY(read_info(&r, &infos[i], (size_t)i));

    /* Data: offsets are the running sum of padded sizes (as ggml demands),
     * inside the file, followed by nothing but the last one's padding. */
    uint64_t data_start, expect = 0, end = 0;
    WV_CHECK(pad_to(r.off, align, &data_start), WV_CORRUPT,
             "%s: data offset overflows", fn);
    for (uint64_t i = 0; i < n_tensors; i++) {
        struct info *e = &infos[i];
        int nl = (int)(e->name_len > 100 ? 100 : e->name_len);
        WV_CHECK(e->off == expect, WV_CORRUPT,
                 "%s: tensor '%.*s' has offset %llu, expected %llu (the "
                 "padded end of the tensor before it)",
                 fn, nl, e->name, (unsigned long long)e->off,
                 (unsigned long long)expect);
        uint64_t abs_end;
        WV_CHECK(!wv__add_overflow(e->off, e->nbytes, &end) &&
                     !wv__add_overflow(data_start, end, &abs_end) &&
                     abs_end <= src->size,
                 WV_CORRUPT,
                 "%s: truncated: tensor '%.*s' (%llu bytes at offset %llu) "
                 "ends past the end of the %llu-byte file",
                 fn, nl, e->name, (unsigned long long)e->nbytes,
                 (unsigned long long)e->off,
                 (unsigned long long)src->size);
        WV_CHECK(pad_to(end, align, &expect), WV_CORRUPT,
                 "%s: tensor '%.*s': offset overflows", fn, nl, e->name);
    }
    uint64_t used = n_tensors ? data_start + end : r.off;
    uint64_t limit = n_tensors ? data_start + expect : data_start;
    WV_CHECK(src->size <= limit && src->size >= used, WV_CORRUPT,
             "%s: %llu trailing bytes after the %s", fn,
             (unsigned long long)(src->size - used),
             n_tensors ? "last tensor's data" : "header");

    const unsigned char *base = NULL;
    bool index = (flags & WV_LOAD_INDEX) != 0; /* no data wanted */
    if (index) {
        base = NULL;
    } else if (src->map) {
        base = src->map + data_start;
    } else if (end > 0) {
        void *owned;
        WV_TRY(wv__src_data(src, data_start, end, &base, &owned, err));
        WV_CHECK(wv__model_keep(m, owned, 0, false) == WV_OK, WV_NOMEM,
                 "out of memory");
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        struct info *e = &infos[i];
        int nl = (int)(e->name_len > 100 ? 100 : e->name_len);
        WV_CHECK(wv_model_find(m, e->name) == NULL, WV_CORRUPT,
                 "%s: duplicate tensor name '%.*s'", fn, nl, e->name);
        WV_TRY(wv__model_add(m, e->name, e->name_len, e->dtype, e->ndim,
                             e->shape,
                             e->nbytes && !index ? base + e->off : NULL,
                             (size_t)e->nbytes, NULL, err));
    }
out:
    for (uint64_t i = 0; infos && i < n_tensors; i++)
        wv__free(infos[i].name);
    wv__free(infos);
    wv__free(key);
    wv__free(mkey);
    wv__free(foreign);
    wv__buf_release(&val);
    wv__free(r.win);
    return rc;
}

/* ---- writer ------------------------------------------------------------- */

/* Parser of the metadata text encoding. Failures are not errors: the
 * caller then writes the value as a plain string. */
struct tp {
    const char *p;
};

static void put_le(struct wv__buf *b, uint64_t v, int n)
{
    unsigned char t[8];
    wv__put64(t, v);
    wv__buf_add(b, t, (size_t)n);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool tp_hex(const char *s, int digits, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < digits; i++) {
        int h = hexval(s[i]);
        if (h < 0)
            return false;
        v = (v << 4) | (uint64_t)h;
    }
    *out = v;
    return true;
}

static void put_utf8(struct wv__buf *b, uint32_t cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    wv__buf_add(b, u, n);
}

/* A string value: u64 length + bytes appended to out. */
static bool tp_str(struct tp *t, struct wv__buf *out)
{
    struct wv__buf s = {0};
    bool ok = false;
    const char *p = t->p;
    if (*p++ != '"')
        goto out;
    while (*p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c == '\0' || c < 0x20)
            goto out;
        if (c != '\\') {
            wv__buf_addc(&s, (char)c);
            p++;
            continue;
        }
        p++;
        char e = *p++;
        uint64_t u, lo;
        switch (e) {
        case '"': wv__buf_addc(&s, '"'); break;
        case '\\': wv__buf_addc(&s, '\\'); break;
        case '/': wv__buf_addc(&s, '/'); break;
        case 'b': wv__buf_addc(&s, '\b'); break;
        case 'f': wv__buf_addc(&s, '\f'); break;
        case 'n': wv__buf_addc(&s, '\n'); break;
        case 'r': wv__buf_addc(&s, '\r'); break;
        case 't': wv__buf_addc(&s, '\t'); break;
        case 'u':
            if (!tp_hex(p, 4, &u))
                goto out;
            p += 4;
            if (u >= 0xdc80 && u <= 0xdcff) {
                wv__buf_addc(&s, (char)(u - 0xdc00)); /* a raw byte */
            } else if (u >= 0xd800 && u <= 0xdbff) {
                if (p[0] != '\\' || p[1] != 'u' || !tp_hex(p + 2, 4, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    goto out;
                p += 6;
                put_utf8(&s, (uint32_t)(0x10000 + ((u - 0xd800) << 10) +
                                        (lo - 0xdc00)));
            } else if (u >= 0xdc00 && u <= 0xdfff) {
                goto out;
            } else {
                put_utf8(&s, (uint32_t)u);
            }
            break;
        default:
            goto out;
        }
    }
    p++;
    if (s.oom)
        goto out;
    put_le(out, s.len, 8);
    wv__buf_add(out, s.p, s.len);
    t->p = p;
    ok = true;
out:
    wv__buf_release(&s);
    return ok;
}

/* The reader's side of the foreign-key marker: list is its encoded value,
 * 'str[]:["k1","k2",...]'. Each listed key K whose entry "gguf.K" holds a
 * string of UTF-8 text without NUL bytes (as all metadata from other
 * formats is) becomes the entry K with the string's bytes, in place (the
 * metadata order is kept). The list was encoded by put_str(), which
 * tp_str() inverts, so only allocations can fail. */
static int map_foreign(wv_model *m, const char *list, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__buf k = {0}, mk = {0}, v = {0};
    char *nk = NULL, *nv = NULL;
    struct tp t = {list + 7};
    while (*t.p != ']') {
        k.len = mk.len = v.len = 0;
        WV_CHECK(tp_str(&t, &k), WV_NOMEM, "out of memory");
        if (*t.p == ',')
            t.p++;
        wv__buf_addc(&k, '\0');
        wv__buf_adds(&mk, "gguf.");
        WV_CHECK(!k.oom, WV_NOMEM, "out of memory");
        const char *key = k.p + 8;
        size_t klen = k.len - 9;
        wv__buf_add(&mk, key, klen + 1);
        WV_CHECK(!mk.oom, WV_NOMEM, "out of memory");
        if (memchr(key, '\0', klen) != NULL ||
            wv_model_get_meta(m, key) != NULL)
            continue;
        size_t i = 0;
        while (i < m->n_meta && strcmp(m->meta[i].key, mk.p) != 0)
            i++;
        if (i == m->n_meta || strncmp(m->meta[i].value, "str:", 4) != 0)
            continue;
        struct tp tv = {m->meta[i].value + 4};
        if (!tp_str(&tv, &v) || *tv.p != '\0') {
            WV_CHECK(!v.oom, WV_NOMEM, "out of memory");
            continue;
        }
        size_t vlen = v.len - 8;
        if (memchr(v.p + 8, '\0', vlen) != NULL ||
            !wv__utf8_valid(v.p + 8, vlen))
            continue;
        nk = wv__strdup(key);
        nv = wv__malloc(vlen + 1);
        WV_CHECK(nk != NULL && nv != NULL, WV_NOMEM, "out of memory");
        memcpy(nv, v.p + 8, vlen);
        nv[vlen] = '\0';
        wv__free(m->meta[i].key);
        wv__free(m->meta[i].value);
        m->meta[i].key = nk;
        m->meta[i].value = nv;
        nk = nv = NULL;
    }
out:
    wv__free(nk);
    wv__free(nv);
    wv__buf_release(&k);
    wv__buf_release(&mk);
    wv__buf_release(&v);
    return rc;
}

/* A scalar of type ty appended to out in GGUF binary. */
static bool tp_scalar(struct tp *t, uint32_t ty, struct wv__buf *out,
                      uint64_t *ival)
{
    const char *p = t->p;
    if (ty == T_STR)
        return tp_str(t, out);
    if (ty == T_BOOL) {
        if (strncmp(p, "true", 4) == 0) {
            wv__buf_addc(out, 1);
            t->p += 4;
            return true;
        }
        if (strncmp(p, "false", 5) == 0) {
            wv__buf_addc(out, 0);
            t->p += 5;
            return true;
        }
        return false;
    }
    size_t n = strcspn(p, ",]");
    char tok[64];
    if (n == 0 || n >= sizeof tok)
        return false;
    memcpy(tok, p, n);
    tok[n] = '\0';
    if (ty == T_F32 || ty == T_F64) {
        int w = ty == T_F32 ? 4 : 8;
        uint64_t bits;
        if (strncmp(tok, "nan:0x", 6) == 0) {
            if (n != (size_t)(6 + 2 * w) || !tp_hex(tok + 6, 2 * w, &bits))
                return false;
        } else {
            char *e;
            if (strchr("+-.0123456789in", tok[0]) == NULL)
                return false;
            if (ty == T_F32) {
                float f = strtof(tok, &e);
                uint32_t b32;
                memcpy(&b32, &f, 4);
                bits = b32;
            } else {
                double d = strtod(tok, &e);
                memcpy(&bits, &d, 8);
            }
            if (*e != '\0')
                return false;
        }
        put_le(out, bits, w);
        t->p += n;
        return true;
    }
    /* Integers: optional '-', decimal digits, no leading '+'. */
    bool neg = tok[0] == '-';
    uint64_t mag = 0;
    const char *d = tok + neg;
    if (*d == '\0')
        return false;
    for (; *d; d++) {
        uint64_t dig = (uint64_t)(*d - '0');
        if (*d < '0' || *d > '9' || mag > (UINT64_MAX - dig) / 10)
            return false;
        mag = mag * 10 + dig;
    }
    static const uint64_t umax[T_COUNT] = {
        [T_U8] = 0xff, [T_U16] = 0xffff, [T_U32] = 0xffffffffu,
        [T_U64] = UINT64_MAX, [T_I8] = 0x7f, [T_I16] = 0x7fff,
        [T_I32] = 0x7fffffff, [T_I64] = (uint64_t)INT64_MAX};
    bool is_signed = ty == T_I8 || ty == T_I16 || ty == T_I32 || ty == T_I64;
    if (neg && (!is_signed || mag > umax[ty] + 1 || mag == 0))
        return false;
    if (!neg && mag > umax[ty])
        return false;
    uint64_t v = neg ? (uint64_t)0 - mag : mag;
    put_le(out, v, tsizes[ty]);
    *ival = v;
    t->p += n;
    return true;
}

static int type_by_name(const char *p, size_t n)
{
    for (int i = 0; i < T_COUNT; i++)
        if (i != T_ARR && strlen(tnames[i]) == n &&
            memcmp(tnames[i], p, n) == 0)
            return i;
    return -1;
}

/* Parse an encoded value into GGUF bytes (u32 type, value) in out. Returns
 * false if it is not in the encoding. *type gets the GGUF type and, for a
 * u32, *u32 its value. */
static bool parse_typed(const char *v, struct wv__buf *out, uint32_t *type,
                        uint32_t *u32)
{
    size_t tl = strcspn(v, "[:");
    int ty = type_by_name(v, tl);
    uint64_t ival = 0;
    if (ty < 0)
        return false;
    struct tp t = {v + tl};
    if (t.p[0] == ':') {
        t.p++;
        put_le(out, (uint32_t)ty, 4);
        if (!tp_scalar(&t, (uint32_t)ty, out, &ival) || *t.p != '\0')
            return false;
        *type = (uint32_t)ty;
        *u32 = (uint32_t)ival;
        return !out->oom;
    }
    if (strncmp(t.p, "[]:[", 4) != 0)
        return false;
    t.p += 4;
    put_le(out, T_ARR, 4);
    put_le(out, (uint32_t)ty, 4);
    size_t count_at = out->len;
    put_le(out, 0, 8);
    uint64_t count = 0;
    if (*t.p != ']') {
        for (;;) {
            if (!tp_scalar(&t, (uint32_t)ty, out, &ival))
                return false;
            count++;
            if (*t.p == ',') {
                t.p++;
                continue;
            }
            break;
        }
    }
    if (t.p[0] != ']' || t.p[1] != '\0' || out->oom)
        return false;
    wv__put64((unsigned char *)out->p + count_at, count);
    *type = T_ARR;
    return true;
}

struct kv {
    const char *key; /* GGUF key, borrowed from the set */
    size_t at, len;  /* value bytes (type + value) in the KV buffer */
    bool foreign;    /* a plain string under the entry's own key */
};

static int gguf_save(const wv_model *m, struct wv__wfile *f,
                     const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__buf vals = {0}, h = {0};
    struct kv *kvs = NULL;
    wv_dtype *to = NULL;
    size_t n_kv = 0, n_foreign = 0, n = m->n_tensors;
    uint32_t align = GGUF_DEFAULT_ALIGN;

    to = wv__calloc(n ? n : 1, sizeof *to);
    kvs = wv__calloc(m->n_meta + 1, sizeof *kvs); /* + the marker */
    WV_CHECK(to != NULL && kvs != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        to[i] = wv__cast_target(t->dtype, opts->cast);
        WV_CHECK(ggml_id(to[i]) >= 0, WV_UNSUPPORTED,
                 "%s: tensor '%.200s' is %s, which GGUF cannot hold (it has "
                 "F32, F16, BF16, F64, I8, I16, I32, I64 and the ggml block "
                 "types)",
                 f->path, t->name, wv_dtype_name(to[i]));
        WV_CHECK(t->ndim <= GGUF_MAX_DIMS, WV_UNSUPPORTED,
                 "%s: tensor '%.200s' has %d dimensions; GGUF (ggml) allows "
                 "at most %d",
                 f->path, t->name, t->ndim, GGUF_MAX_DIMS);
        WV_CHECK(strlen(t->name) < GGUF_MAX_NAME, WV_UNSUPPORTED,
                 "%s: tensor '%.200s': name is %zu bytes; GGUF (ggml) allows "
                 "at most %d",
                 f->path, t->name, strlen(t->name), GGUF_MAX_NAME - 1);
    }

    /* KVs: typed "gguf.<key>" entries, everything else as foreign
     * strings; the first entry for a GGUF key wins. */
    for (size_t i = 0; i < m->n_meta; i++) {
        const char *k = m->meta[i].key, *v = m->meta[i].value;
        size_t at = vals.len;
        uint32_t type = T_STR, u32 = 0;
        bool typed = strncmp(k, "gguf.", 5) == 0 &&
                     parse_typed(v, &vals, &type, &u32);
        if (typed) {
            k += 5;
        } else {
            vals.len = at;
            vals.oom = false;
            type = T_STR;
            put_le(&vals, T_STR, 4);
            put_le(&vals, strlen(v), 8);
            wv__buf_adds(&vals, v);
        }
        WV_CHECK(!vals.oom, WV_NOMEM, "out of memory");
        bool dup = false;
        for (size_t j = 0; j < n_kv && !dup; j++)
            dup = strcmp(kvs[j].key, k) == 0;
        if (strcmp(k, "general.alignment") == 0) {
            if (type != T_U32) {
                dup = true; /* ggml would refuse it: keep the default */
            } else if (!dup) {
                WV_CHECK(u32 != 0 && (u32 & (u32 - 1)) == 0 &&
                             u32 <= GGUF_MAX_ALIGN,
                         WV_FORMAT,
                         "%s: general.alignment %lu is not a power of two "
                         "up to %u",
                         f->path, (unsigned long)u32, GGUF_MAX_ALIGN);
                align = u32;
            }
        }
        if (dup) {
            vals.len = at;
            continue;
        }
        kvs[n_kv].key = k;
        kvs[n_kv].at = at;
        kvs[n_kv].len = vals.len - at;
        kvs[n_kv].foreign = !typed;
        n_foreign += !typed;
        n_kv++;
    }
    /* The marker naming the foreign keys, last. */
    if (n_foreign > 0) {
        size_t at = vals.len;
        for (size_t j = 0; j < n_kv; j++)
            WV_CHECK(strcmp(kvs[j].key, FOREIGN_KEY) != 0, WV_FORMAT,
                     "%s: metadata key '%s' would take the GGUF key "
                     "'" FOREIGN_KEY "', which is reserved for the list "
                     "of foreign metadata keys",
                     f->path,
                     kvs[j].foreign ? kvs[j].key : kvs[j].key - 5);
        put_le(&vals, T_ARR, 4);
        put_le(&vals, T_STR, 4);
        put_le(&vals, n_foreign, 8);
        for (size_t j = 0; j < n_kv; j++) {
            if (!kvs[j].foreign)
                continue;
            put_le(&vals, strlen(kvs[j].key), 8);
            wv__buf_adds(&vals, kvs[j].key);
        }
        WV_CHECK(!vals.oom, WV_NOMEM, "out of memory");
        kvs[n_kv].key = FOREIGN_KEY;
        kvs[n_kv].at = at;
        kvs[n_kv].len = vals.len - at;
        n_kv++;
    }

    wv__buf_add(&h, "GGUF", 4);
    put_le(&h, 3, 4);
    put_le(&h, n, 8);
    put_le(&h, n_kv, 8);
    for (size_t i = 0; i < n_kv; i++) {
        put_le(&h, strlen(kvs[i].key), 8);
        wv__buf_adds(&h, kvs[i].key);
        if (!vals.oom)
            wv__buf_add(&h, vals.p + kvs[i].at, kvs[i].len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        put_le(&h, strlen(t->name), 8);
        wv__buf_adds(&h, t->name);
        put_le(&h, (uint64_t)t->ndim, 4);
        for (int d = t->ndim - 1; d >= 0; d--)
            put_le(&h, t->shape[d], 8);
        put_le(&h, (uint64_t)ggml_id(to[i]), 4);
        put_le(&h, off, 8);
        WV_CHECK(!wv__add_overflow(off, wv__cast_nbytes(t, to[i]), &off) &&
                     pad_to(off, align, &off),
                 WV_RANGE, "%s: tensor data too large", f->path);
    }
    while (!h.oom && h.len % align != 0)
        wv__buf_addc(&h, 0);
    WV_CHECK(!h.oom, WV_NOMEM, "out of memory building the header");
    wv__wfile_write(f, h.p, h.len);
    for (size_t i = 0; i < n; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        uint64_t nb = wv__cast_nbytes(t, to[i]), padded;
        wv__wfile_tensor(f, t, to[i]);
        pad_to(nb, align, &padded);
        wv__wfile_zero(f, (size_t)(padded - nb));
    }
    rc = f->rc;
out:
    wv__buf_release(&vals);
    wv__buf_release(&h);
    wv__free(kvs);
    wv__free(to);
    return rc;
}

const struct wv__format_ops wv__fmt_gguf = {
    WV_FMT_GGUF, "gguf", ".gguf", probe, gguf_load, gguf_save,
    WV__SHARDS_INDEX, NULL,
};
