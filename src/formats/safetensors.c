/*
 * safetensors.c -- the Hugging Face safetensors format.
 *
 *   offset 0     u64 N, little-endian: byte length of the JSON header
 *   offset 8     N bytes of UTF-8 JSON, possibly padded with whitespace:
 *                {"__metadata__": {"k": "v", ...},
 *                 "name": {"dtype": "F32", "shape": [2, 3],
 *                          "data_offsets": [begin, end]}, ...}
 *   offset 8+N   the byte buffer; [begin, end) are relative to its start
 *   EOF          exactly 8 + N + the largest end
 *
 * Reading is as strict as the Rust reference (safetensors/src/tensor.rs):
 * header at most 100,000,000 bytes, UTF-8, a JSON object, known dtypes,
 * offsets that tile the buffer from 0 with no gap or overlap, byte lengths
 * equal to the shape product times the dtype size (overflow-checked), and
 * no trailing bytes. We are stricter in two places: duplicate tensor names
 * or metadata keys are refused (the reference silently keeps the last), and
 * more than WV_MAX_DIMS dimensions are refused.
 *
 * Writing reproduces the current reference layout: compact JSON,
 * "__metadata__" first, tensors sorted by dtype in the reference's
 * descending enum order and then by name, offsets contiguous from 0, the
 * header padded with spaces to a multiple of 8 so every tensor is naturally
 * aligned. Metadata read from a safetensors file is written back as it was
 * (including its absence); a set from anywhere else gets {"format": "pt"},
 * which Hugging Face loaders require.
 */
#include "core.h"
#include "fmt.h"
#include "json.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER 100000000ull

/* Rank of each dtype in the reference's `enum Dtype` (derive(Ord)):
 * BOOL < U8 < I8 < F8_E5M2 < F8_E4M3 < I16 < U16 < F16 < BF16 < I32 < U32
 * < F32 < C64 < F64 < I64 < U64. The writer sorts by descending rank. */
static int dtype_rank(wv_dtype dt)
{
    switch (dt) {
    case WV_BOOL: return 0;
    case WV_U8: return 1;
    case WV_I8: return 2;
    case WV_F8_E5M2: return 3;
    case WV_F8_E4M3: return 4;
    case WV_I16: return 5;
    case WV_U16: return 6;
    case WV_F16: return 7;
    case WV_BF16: return 8;
    case WV_I32: return 9;
    case WV_U32: return 10;
    case WV_F32: return 11;
    case WV_C64: return 12;
    case WV_F64: return 13;
    case WV_I64: return 14;
    case WV_U64: return 15;
    default: return -1;
    }
}

struct entry {
    char *name;
    size_t name_len;
    wv_dtype dtype;
    int ndim;
    uint64_t shape[WV_MAX_DIMS];
    uint64_t begin, end;
};

static int probe(const struct wv__src *src, const unsigned char *h,
                  size_t n)
{
    uint64_t size = src->size;
    if (n < 9)
        return 0;
    uint64_t len = wv__le64(h);
    if (len > ST_MAX_HEADER || len + 8 > size)
        return 0;
    unsigned char c = h[8];
    return c == '{' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int cmp_offsets(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    const struct entry *x = *(const struct entry *const *)a;
    const struct entry *y = *(const struct entry *const *)b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* One tensor entry: {"dtype": ..., "shape": [...], "data_offsets": [b, e]}
 * with fields in any order; unknown fields are skipped as the reference
 * does. */
static int parse_entry(struct wv__json *j, struct entry *e)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *field = NULL, *dt = NULL;
    size_t flen, dtlen;
    bool have_dtype = false, have_shape = false, have_off = false;
    const char *nm = e->name;
    int nl = (int)(e->name_len > 200 ? 200 : e->name_len);

    WV_CHECK(wv__json_eat(j, '{'), WV_CORRUPT,
             "tensor '%.*s': entry is not a JSON object", nl, nm);
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &field, &flen)) {
        if (strcmp(field, "dtype") == 0 && flen == 5) {
            WV_CHECK(!have_dtype, WV_CORRUPT,
                     "tensor '%.*s': duplicate field 'dtype'", nl, nm);
            WV_TRY(wv__json_string(j, &dt, &dtlen));
            WV_CHECK(strlen(dt) == dtlen &&
                         wv_dtype_from_name(dt, &e->dtype) == WV_OK,
                     WV_CORRUPT, "tensor '%.*s': unknown dtype '%.40s'", nl,
                     nm, dt);
            have_dtype = true;
        } else if (strcmp(field, "shape") == 0 && flen == 5) {
            WV_CHECK(!have_shape, WV_CORRUPT,
                     "tensor '%.*s': duplicate field 'shape'", nl, nm);
            WV_CHECK(wv__json_eat(j, '['), WV_CORRUPT,
                     "tensor '%.*s': shape is not an array", nl, nm);
            e->ndim = 0;
            if (!wv__json_eat(j, ']')) {
                do {
                    uint64_t d;
                    WV_TRY(wv__json_u64(j, &d));
                    WV_CHECK(e->ndim < WV_MAX_DIMS, WV_FORMAT,
                             "tensor '%.*s': more than %d dimensions are "
                             "not supported",
                             nl, nm, WV_MAX_DIMS);
                    e->shape[e->ndim++] = d;
                } while (wv__json_eat(j, ','));
                WV_TRY(wv__json_expect(j, ']'));
            }
            have_shape = true;
        } else if (strcmp(field, "data_offsets") == 0 && flen == 12) {
            WV_CHECK(!have_off, WV_CORRUPT,
                     "tensor '%.*s': duplicate field 'data_offsets'", nl, nm);
            WV_CHECK(wv__json_eat(j, '['), WV_CORRUPT,
                     "tensor '%.*s': data_offsets is not an array", nl, nm);
            WV_TRY(wv__json_u64(j, &e->begin));
            WV_CHECK(wv__json_eat(j, ','), WV_CORRUPT,
                     "tensor '%.*s': data_offsets needs two numbers", nl, nm);
            WV_TRY(wv__json_u64(j, &e->end));
            WV_CHECK(wv__json_eat(j, ']'), WV_CORRUPT,
                     "tensor '%.*s': data_offsets needs exactly two numbers",
                     nl, nm);
            have_off = true;
        } else {
            WV_TRY(wv__json_skip(j));
        }
    }
    WV_TRY(it.rc);
    WV_CHECK(have_dtype, WV_CORRUPT, "tensor '%.*s': missing field 'dtype'",
             nl, nm);
    WV_CHECK(have_shape, WV_CORRUPT, "tensor '%.*s': missing field 'shape'",
             nl, nm);
    WV_CHECK(have_off, WV_CORRUPT,
             "tensor '%.*s': missing field 'data_offsets'", nl, nm);
out:
    wv__free(field);
    wv__free(dt);
    return rc;
}

static int parse_metadata(struct wv__json *j, wv_model *m)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *k = NULL, *v = NULL;
    size_t kl, vl;
    wv__json_ws(j);
    if (j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
        j->p += 4; /* serde reads null as "no metadata" */
        goto out;
    }
    WV_CHECK(wv__json_eat(j, '{'), WV_CORRUPT,
             "%s: __metadata__ is not an object", j->what);
    m->meta_state = WV__META_FROM_FILE;
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        wv__json_ws(j);
        WV_CHECK(j->p < j->end && *j->p == '"', WV_CORRUPT,
                 "%s: __metadata__ value of '%.100s' is not a string",
                 j->what, k);
        WV_TRY(wv__json_string(j, &v, &vl));
        WV_CHECK(strlen(k) == kl && strlen(v) == vl, WV_FORMAT,
                 "%s: __metadata__ entry '%.100s' contains a NUL character",
                 j->what, k);
        WV_CHECK(wv_model_get_meta(m, k) == NULL, WV_CORRUPT,
                 "%s: duplicate __metadata__ key '%.100s'", j->what, k);
        if (wv_model_set_meta(m, k, v) != WV_OK)
            WV_CHECK(0, WV_NOMEM, "out of memory");
        wv__free(v);
        v = NULL;
    }
    WV_TRY(it.rc);
out:
    wv__free(k);
    wv__free(v);
    return rc;
}

static int st_load(const struct wv__src *src, unsigned flags, wv_model *m,
                   struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char lenbuf[8];
    unsigned char *hdr_owned = NULL;
    const unsigned char *hdr;
    struct entry *ents = NULL, **byname = NULL;
    size_t n_ents = 0, cap_ents = 0;
    char *key = NULL;
    size_t keylen;
    bool seen_meta = false;

    WV_CHECK(src->size >= 8, WV_CORRUPT,
             "%s: file is %llu bytes, smaller than the 8-byte header length",
             src->name, (unsigned long long)src->size);
    WV_TRY(wv__src_read(src, 0, lenbuf, 8, err));
    uint64_t n = wv__le64(lenbuf);
    WV_CHECK(n <= ST_MAX_HEADER, WV_CORRUPT,
             "%s: header length %llu exceeds the 100000000-byte limit",
             src->name, (unsigned long long)n);
    WV_CHECK(8 + n <= src->size, WV_CORRUPT,
             "%s: header length %llu runs past the end of the %llu-byte file",
             src->name, (unsigned long long)n,
             (unsigned long long)src->size);
    if (src->map) {
        hdr = src->map + 8;
    } else {
        hdr_owned = wv__malloc((size_t)n);
        WV_CHECK(hdr_owned != NULL, WV_NOMEM, "out of memory");
        WV_TRY(wv__src_read(src, 8, hdr_owned, (size_t)n, err));
        hdr = hdr_owned;
    }
    WV_CHECK(wv__utf8_valid(hdr, (size_t)n), WV_CORRUPT,
             "%s: header is not valid UTF-8", src->name);

    char what[300];
    snprintf(what, sizeof what, "%s: header", src->name);
    struct wv__json j = {(const char *)hdr, (const char *)hdr,
                         (const char *)hdr + n, what, err};
    WV_CHECK(wv__json_eat(&j, '{'), WV_CORRUPT,
             "%s: header is not a JSON object", src->name);
    m->meta_state = WV__META_NONE;
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&it, &key, &keylen)) {
        if (keylen == 12 && memcmp(key, "__metadata__", 12) == 0) {
            WV_CHECK(!seen_meta, WV_CORRUPT,
                     "%s: duplicate __metadata__", src->name);
            seen_meta = true;
            WV_TRY(parse_metadata(&j, m));
            continue;
        }
        WV_CHECK(wv__grow(&ents, &cap_ents, n_ents, sizeof *ents, 64) ==
                     WV_OK,
                 WV_NOMEM, "out of memory");
        /* Valid JSON and accepted by the reference, but a tensor set
         * cannot hold such a name: refuse it as unsupported rather
         * than fail later as a misuse of wv__model_add(). */
        WV_CHECK(keylen > 0 && memchr(key, '\0', keylen) == NULL,
                 WV_FORMAT,
                 "%s: tensor name '%.*s' is empty or contains a NUL "
                 "character, which is not supported",
                 src->name, (int)(keylen > 200 ? 200 : keylen), key);
        struct entry *e = &ents[n_ents++];
        memset(e, 0, sizeof *e);
        e->name = key;
        e->name_len = keylen;
        key = NULL;
        WV_TRY(parse_entry(&j, e));
    }
    WV_TRY(it.rc);
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_CORRUPT,
             "%s: header has trailing characters after the JSON object at "
             "byte %zu",
             src->name, (size_t)(j.p - j.start));

    /* Duplicate names. */
    if (n_ents > 1) {
        byname = wv__malloc(n_ents * sizeof *byname);
        WV_CHECK(byname != NULL, WV_NOMEM, "out of memory");
        for (size_t i = 0; i < n_ents; i++)
            byname[i] = &ents[i];
        qsort(byname, n_ents, sizeof *byname, cmp_names);
        for (size_t i = 1; i < n_ents; i++)
            WV_CHECK(cmp_names(&byname[i - 1], &byname[i]) != 0, WV_CORRUPT,
                     "%s: duplicate tensor name '%.*s'", src->name,
                     (int)(byname[i]->name_len > 200 ? 200
                                                     : byname[i]->name_len),
                     byname[i]->name);
    }

    /* Offsets must tile [0, end) exactly, in the reference's order of
     * checks. */
    if (n_ents > 1) /* ents is NULL when there are none */
        qsort(ents, n_ents, sizeof *ents, cmp_offsets);
    uint64_t pos = 0;
    for (size_t i = 0; i < n_ents; i++) {
        struct entry *e = &ents[i];
        int nl = (int)(e->name_len > 200 ? 200 : e->name_len);
        uint64_t numel, nbytes;
        WV_CHECK(e->begin == pos && e->end >= e->begin, WV_CORRUPT,
                 "%s: tensor '%.*s' has data_offsets [%llu, %llu] but the "
                 "previous tensor ends at %llu (offsets must be contiguous "
                 "from 0)",
                 src->name, nl, e->name, (unsigned long long)e->begin,
                 (unsigned long long)e->end, (unsigned long long)pos);
        pos = e->end;
        WV_CHECK(wv__shape_bytes(e->dtype, e->ndim, e->shape, &numel,
                                 &nbytes) == WV_OK,
                 WV_CORRUPT, "%s: tensor '%.*s': shape size overflows",
                 src->name, nl, e->name);
        WV_CHECK(e->end - e->begin == nbytes, WV_CORRUPT,
                 "%s: tensor '%.*s' has %llu bytes of data but dtype %s and "
                 "its shape need %llu",
                 src->name, nl, e->name,
                 (unsigned long long)(e->end - e->begin),
                 wv_dtype_name(e->dtype), (unsigned long long)nbytes);
    }
    WV_CHECK(8 + n + pos == src->size, WV_CORRUPT,
             "%s: the tensors cover %llu data bytes but the file has %llu "
             "(%s)",
             src->name, (unsigned long long)pos,
             (unsigned long long)(src->size - 8 - n),
             8 + n + pos > src->size ? "truncated" : "trailing bytes");

    /* Data: none for an index load, borrowed from the mapping, or one
     * buffer read with large preads. */
    const unsigned char *base;
    if (flags & WV_LOAD_INDEX) {
        for (size_t i = 0; i < n_ents; i++) {
            struct entry *e = &ents[i];
            WV_TRY(wv__model_add(m, e->name, e->name_len, e->dtype, e->ndim,
                                 e->shape, NULL, (size_t)(e->end - e->begin),
                                 NULL, err));
        }
        goto out;
    } else if (src->map) {
        base = src->map + 8 + n;
    } else if (src->names) {
        /* Read only the tensors asked for, one range each (a remote file
         * is not downloaded whole). */
        for (size_t i = 0; i < n_ents; i++) {
            struct entry *e = &ents[i];
            bool want = false;
            for (size_t k = 0; k < src->n_names && !want; k++)
                want = strlen(src->names[k]) == e->name_len &&
                       memcmp(src->names[k], e->name, e->name_len) == 0;
            if (!want)
                continue;
            const unsigned char *d;
            void *owned;
            WV_TRY(wv__src_data(src, 8 + n + e->begin, e->end - e->begin, &d,
                                &owned, err));
            WV_TRY(wv__model_add(m, e->name, e->name_len, e->dtype, e->ndim,
                                 e->shape, d, (size_t)(e->end - e->begin),
                                 owned, err));
        }
        goto out;
    } else {
        void *owned;
        WV_TRY(wv__src_data(src, 8 + n, pos, &base, &owned, err));
        WV_CHECK(wv__model_keep(m, owned, 0, false) == WV_OK, WV_NOMEM,
                 "out of memory");
    }
    for (size_t i = 0; i < n_ents; i++) {
        struct entry *e = &ents[i];
        WV_TRY(wv__model_add(m, e->name, e->name_len, e->dtype, e->ndim,
                             e->shape, base + e->begin,
                             (size_t)(e->end - e->begin), NULL, err));
    }
out:
    for (size_t i = 0; i < n_ents; i++)
        wv__free(ents[i].name);
    wv__free(ents);
    wv__free(byname);
    wv__free(key);
    wv__free(hdr_owned);
    return rc;
}

/* ---- writer ------------------------------------------------------------- */

struct order {
    const struct wv_tensor *t;
    wv_dtype out;
};

static int cmp_order(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    int rx = dtype_rank(x->out), ry = dtype_rank(y->out);
    if (rx != ry)
        return ry - rx;
    return strcmp(x->t->name, y->t->name);
}

static void put_meta(struct wv__buf *b, const char *k, const char *v,
                     bool *first)
{
    if (!*first)
        wv__buf_addc(b, ',');
    *first = false;
    wv__json_put_string(b, k, strlen(k));
    wv__buf_addc(b, ':');
    wv__json_put_string(b, v, strlen(v));
}

static int st_save(const wv_model *m, struct wv__wfile *f,
                   const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__buf h = {0};
    struct order *ord = NULL;
    size_t n = m->n_tensors;

    ord = wv__calloc(n ? n : 1, sizeof *ord);
    WV_CHECK(ord != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        /* The name would be read back as the metadata map. */
        WV_CHECK(strcmp(m->tensors[i].name, "__metadata__") != 0,
                 WV_UNSUPPORTED,
                 "%s: a safetensors file cannot hold a tensor named "
                 "'__metadata__'",
                 f->path);
        ord[i].t = &m->tensors[i];
        ord[i].out = wv__cast_target(m->tensors[i].dtype, opts->cast);
    }
    qsort(ord, n, sizeof *ord, cmp_order);

    wv__buf_addc(&h, '{');
    bool first = true;
    if (m->meta_state == WV__META_DEFAULT || m->n_meta > 0 ||
        m->meta_state == WV__META_FROM_FILE) {
        wv__buf_adds(&h, "\"__metadata__\":{");
        bool mfirst = true;
        if (m->meta_state == WV__META_DEFAULT &&
            wv_model_get_meta(m, "format") == NULL)
            put_meta(&h, "format", "pt", &mfirst);
        for (size_t i = 0; i < m->n_meta; i++)
            put_meta(&h, m->meta[i].key, m->meta[i].value, &mfirst);
        wv__buf_addc(&h, '}');
        first = false;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const struct wv_tensor *t = ord[i].t;
        uint64_t nb = wv__cast_nbytes(t, ord[i].out);
        if (!first)
            wv__buf_addc(&h, ',');
        first = false;
        wv__json_put_string(&h, t->name, strlen(t->name));
        wv__buf_addf(&h, ":{\"dtype\":\"%s\",\"shape\":[",
                     wv_dtype_name(ord[i].out));
        for (int d = 0; d < t->ndim; d++)
            wv__buf_addf(&h, "%s%llu", d ? "," : "",
                         (unsigned long long)t->shape[d]);
        wv__buf_addf(&h, "],\"data_offsets\":[%llu,%llu]}",
                     (unsigned long long)off, (unsigned long long)(off + nb));
        off += nb;
    }
    wv__buf_addc(&h, '}');
    while (!h.oom && h.len % 8 != 0)
        wv__buf_addc(&h, ' ');
    WV_CHECK(!h.oom, WV_NOMEM, "out of memory building the header");
    WV_CHECK(h.len <= ST_MAX_HEADER, WV_RANGE,
             "%s: header would be %zu bytes, over the 100000000-byte limit",
             f->path, h.len);

    unsigned char lenbuf[8];
    wv__put64(lenbuf, h.len);
    wv__wfile_write(f, lenbuf, 8);
    wv__wfile_write(f, h.p, h.len);
    f->progress_skip = f->off; /* progress counts the tensor data */
    for (size_t i = 0; i < n; i++)
        wv__wfile_tensor(f, ord[i].t, ord[i].out);
    rc = f->rc;
out:
    wv__buf_release(&h);
    wv__free(ord);
    return rc;
}

const struct wv__format_ops wv__fmt_safetensors = {
    WV_FMT_SAFETENSORS, "safetensors", ".safetensors", probe, st_load, st_save,
    WV__SHARDS_INDEX, NULL,
};
