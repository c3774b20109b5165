/*
 * tfbundle.c -- TensorFlow tensor bundles (checkpoints): read and write.
 *
 * Files for prefix P (tensorflow core/util/tensor_bundle):
 *
 *   P.index                      a LevelDB-format table (ldb.c), keys sorted
 *                                bytewise:
 *     ""      -> BundleHeaderProto { int32 num_shards = 1;
 *                  enum endianness = 2 (0 little, 1 big);
 *                  VersionDef version = 3 { int32 producer = 1;
 *                  int32 min_consumer = 2; repeated int32 bad_consumers
 *                  = 3 } }
 *     <name>  -> BundleEntryProto { DataType dtype = 1;
 *                  TensorShapeProto shape = 2 { repeated Dim dim = 2
 *                  { int64 size = 1; string name = 2 };
 *                  bool unknown_rank = 3 };
 *                  int32 shard_id = 3; int64 offset = 4; int64 size = 5;
 *                  fixed32 crc32c = 6; repeated TensorSliceProto
 *                  slices = 7 }
 *   P.data-SSSSS-of-NNNNN        shard S of N (%05d): tensors' bytes,
 *                                row-major, little-endian, at [offset,
 *                                offset+size); crc32c is the masked
 *                                CRC-32C of those bytes
 *
 * DT_STRING tensors hold, for n elements: n varint64 lengths, a u32
 * masked CRC-32C of the lengths (each fed to the CRC as a little-endian
 * u32, or u64 if it does not fit), then the bytes. Their entry crc32c
 * covers the lengths as fed above, the stored length CRC and the bytes.
 * TF2 checkpoints keep the object graph (_CHECKPOINTABLE_OBJECT_GRAPH, a
 * serialized TrackableObjectGraph) and Keras layer configs
 * (.../.ATTRIBUTES/OBJECT_CONFIG_JSON) in them; they become metadata, not
 * tensors: the key is the bundle key, the value the string as is when it
 * is UTF-8 without NUL bytes and does not start with "base64:" or
 * '{"shape": ', else "base64:" and its base64; a non-scalar string tensor
 * becomes the JSON {"shape": [...], "values": [...]} of such values. A
 * bundle of several shards also gets "tensorflow.shards": the number of
 * (non-string) tensors in each shard, in order ("25,98"), so that a
 * rewrite can keep the layout.
 *
 * Enforced (besides the table's own checks): the first key is the header;
 * num_shards >= 1; little-endian; a version this reader may consume
 * (min_consumer <= 1, 1 not among bad_consumers); per entry a known dtype
 * (float, double, half, bfloat16, int8..64, uint8..64, bool, complex64,
 * the two float8s; string as above), a shape of at most 8 known
 * dimensions, no slices (partitioned variables), shard_id < num_shards,
 * size equal to the shape's bytes, [offset, offset+size) inside the shard
 * file, the CRC-32C, bool bytes 0 or 1, and keys that are UTF-8 without
 * NUL. Tensors are listed in data order (shard, offset), as TensorFlow
 * wrote them; names are the bundle keys.
 *
 * Inputs: the .index file, a data file, the prefix, a `checkpoint` state
 * file (its model_checkpoint_path, relative to its directory), or a
 * directory holding variables/variables.index (a SavedModel),
 * variables.index (its variables directory) or a `checkpoint` file:
 * wv__tfbundle_resolve() turns them into the .index
 * path. The data files are found next to the index, so a bundle cannot be
 * read from memory or a URL.
 */
#include "core.h"
#include "fmt.h"
#include "json.h"
#include "ldb.h"
#include "pb.h"
#include "tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define INDEX_MAX ((uint64_t)1 << 30)
#define DT_STRING 7
#define SHARDS_KEY "tensorflow.shards"
#define GRAPH_KEY "_CHECKPOINTABLE_OBJECT_GRAPH"

struct entry {
    char *key;
    size_t key_len;
    uint32_t tf_dtype;
    wv_dtype dtype; /* WV_DTYPE_INVALID for strings */
    int ndim;
    uint64_t shape[WV_MAX_DIMS];
    uint64_t shard, off, size;
    uint32_t crc; /* masked, as stored */
};

struct bundle {
    const char *what;
    bool have_header;
    uint64_t num_shards;
    struct entry *ents;
    size_t n, cap;
};

static void bundle_release(struct bundle *b)
{
    for (size_t i = 0; i < b->n; i++)
        wv__free(b->ents[i].key);
    wv__free(b->ents);
    b->ents = NULL;
    b->n = b->cap = 0;
}

static wv_dtype map_dtype(uint32_t t)
{
    switch (t) {
    case 1: return WV_F32;
    case 2: return WV_F64;
    case 3: return WV_I32;
    case 4: return WV_U8;
    case 5: return WV_I16;
    case 6: return WV_I8;
    case 8: return WV_C64;
    case 9: return WV_I64;
    case 10: return WV_BOOL;
    case 14: return WV_BF16;
    case 17: return WV_U16;
    case 19: return WV_F16;
    case 22: return WV_U32;
    case 23: return WV_U64;
    case 24: return WV_F8_E5M2;
    case 25: return WV_F8_E4M3;
    default: return WV_DTYPE_INVALID;
    }
}

/* TensorFlow's names of the types it has that we cannot hold. */
static const char *tf_dtype_name(uint32_t t)
{
    static const char *const names[] = {
        [11] = "qint8",    [12] = "quint8",   [13] = "qint32",
        [15] = "qint16",   [16] = "quint16",  [18] = "complex128",
        [20] = "resource", [21] = "variant",  [26] = "float8_e4m3fnuz",
        [27] = "float8_e4m3b11fnuz", [28] = "float8_e5m2fnuz",
        [29] = "int4",     [30] = "uint4",    [31] = "int2",
        [32] = "uint2"};
    if (t < sizeof names / sizeof names[0] && names[t])
        return names[t];
    return NULL;
}

#define KEYF(e) (int)((e)->key_len > 200 ? 200 : (e)->key_len), (e)->key

static int parse_header(struct bundle *b, const unsigned char *v, size_t n,
                        struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__pb r, s;
    struct wv__pb_field f, g;
    const char *why = "";
    int k;
    uint64_t endian = 0, min_consumer = 0;
    bool bad = false;
    b->num_shards = 0;
    wv__pb_init(&r, v, n);
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        if (f.num == 1 && f.wire == WV__PB_VARINT)
            b->num_shards = f.v;
        else if (f.num == 2 && f.wire == WV__PB_VARINT)
            endian = f.v;
        else if (f.num == 3 && f.wire == WV__PB_LEN) {
            WV_CHECK(wv__pb_sub(&r, &f, &s, &why) == 0, WV_CORRUPT,
                     "%s: header: %s", b->what, why);
            while ((k = wv__pb_next(&s, &g, &why)) == 1) {
                if (g.num == 2 && g.wire == WV__PB_VARINT)
                    min_consumer = g.v;
                else if (g.num == 3 && g.wire == WV__PB_VARINT)
                    bad = bad || g.v == 1;
                else if (g.num == 3 && g.wire == WV__PB_LEN) {
                    const unsigned char *p = g.data, *e = g.data + g.len;
                    uint64_t x;
                    while (p < e) {
                        WV_CHECK(wv__pb_varint(&p, e, &x) == 0, WV_CORRUPT,
                                 "%s: header: truncated varint in "
                                 "bad_consumers",
                                 b->what);
                        bad = bad || x == 1;
                    }
                }
            }
            WV_CHECK(k == 0, WV_CORRUPT, "%s: header version: %s", b->what,
                     why);
        }
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: header: %s", b->what, why);
    WV_CHECK(b->num_shards >= 1 && b->num_shards <= INT32_MAX, WV_CORRUPT,
             "%s: header: num_shards %lld is not a positive int32", b->what,
             (long long)b->num_shards);
    WV_CHECK(endian == 0, WV_UNSUPPORTED,
             "%s: the bundle is big-endian; only little-endian bundles "
             "are read",
             b->what);
    WV_CHECK(min_consumer <= 1 && !bad, WV_UNSUPPORTED,
             "%s: the bundle's version (min_consumer %llu%s) needs a newer "
             "reader",
             b->what, (unsigned long long)min_consumer,
             bad ? ", this reader listed as bad" : "");
    b->have_header = true;
out:
    return rc;
}

static int parse_shape(struct bundle *b, struct entry *e,
                       const struct wv__pb *parent,
                       const struct wv__pb_field *sf, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__pb r, d;
    struct wv__pb_field f, g;
    const char *why = "";
    int k;
    WV_CHECK(wv__pb_sub(parent, sf, &r, &why) == 0, WV_CORRUPT,
             "%s: tensor '%.*s': shape: %s", b->what, KEYF(e), why);
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        if (f.num == 3 && f.wire == WV__PB_VARINT && f.v != 0)
            WV_CORRUPT_BKPT("%s: tensor '%.*s' has an unknown rank", b->what,
                            KEYF(e));
        if (f.num != 2)
            continue;
        WV_CHECK(e->ndim < WV_MAX_DIMS, WV_UNSUPPORTED,
                 "%s: tensor '%.*s' has more than %d dimensions", b->what,
                 KEYF(e), WV_MAX_DIMS);
        WV_CHECK(wv__pb_sub(&r, &f, &d, &why) == 0, WV_CORRUPT,
                 "%s: tensor '%.*s': shape: %s", b->what, KEYF(e), why);
        uint64_t size = 0;
        while ((k = wv__pb_next(&d, &g, &why)) == 1)
            if (g.num == 1 && g.wire == WV__PB_VARINT)
                size = g.v;
        WV_CHECK(k == 0, WV_CORRUPT, "%s: tensor '%.*s': shape: %s",
                 b->what, KEYF(e), why);
        WV_CHECK(size <= INT64_MAX, WV_CORRUPT,
                 "%s: tensor '%.*s' has a dimension of unknown or negative "
                 "size",
                 b->what, KEYF(e));
        e->shape[e->ndim++] = size;
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: tensor '%.*s': shape: %s", b->what,
             KEYF(e), why);
out:
    return rc;
}

static int parse_entry(struct bundle *b, struct entry *e,
                       const unsigned char *v, size_t n,
                       struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__pb r;
    struct wv__pb_field f;
    const char *why = "";
    int k;
    bool have_dtype = false;
    wv__pb_init(&r, v, n);
    while ((k = wv__pb_next(&r, &f, &why)) == 1) {
        switch (f.num) {
        case 1:
            if (f.wire == WV__PB_VARINT) {
                WV_CHECK(f.v <= INT32_MAX, WV_CORRUPT,
                         "%s: tensor '%.*s' has dtype %llu", b->what,
                         KEYF(e), (unsigned long long)f.v);
                e->tf_dtype = (uint32_t)f.v;
                have_dtype = true;
            }
            break;
        case 2:
            WV_TRY(parse_shape(b, e, &r, &f, err));
            break;
        case 3:
            if (f.wire == WV__PB_VARINT)
                e->shard = f.v;
            break;
        case 4:
            if (f.wire == WV__PB_VARINT)
                e->off = f.v;
            break;
        case 5:
            if (f.wire == WV__PB_VARINT)
                e->size = f.v;
            break;
        case 6:
            if (f.wire == WV__PB_I32)
                e->crc = (uint32_t)f.v;
            break;
        case 7:
            WV_CHECK(0, WV_UNSUPPORTED,
                     "%s: tensor '%.*s' is stored as slices (a partitioned "
                     "variable), which is not supported",
                     b->what, KEYF(e));
            break;
        default:
            break;
        }
    }
    WV_CHECK(k == 0, WV_CORRUPT, "%s: tensor '%.*s': %s", b->what, KEYF(e),
             why);
    WV_CHECK(have_dtype && e->tf_dtype != 0, WV_CORRUPT,
             "%s: tensor '%.*s' has no dtype", b->what, KEYF(e));
    e->dtype = map_dtype(e->tf_dtype);
    if (e->dtype == WV_DTYPE_INVALID && e->tf_dtype != DT_STRING) {
        const char *nm = tf_dtype_name(e->tf_dtype);
        if (nm)
            WV_CHECK(0, WV_UNSUPPORTED,
                     "%s: tensor '%.*s' has dtype %s, which is not "
                     "supported",
                     b->what, KEYF(e), nm);
        WV_CORRUPT_BKPT("%s: tensor '%.*s' has unknown dtype %u", b->what,
                        KEYF(e), e->tf_dtype);
    }
    WV_CHECK(e->shard < b->num_shards, WV_CORRUPT,
             "%s: tensor '%.*s' is in shard %llu but the bundle has %llu",
             b->what, KEYF(e), (unsigned long long)e->shard,
             (unsigned long long)b->num_shards);
    WV_CHECK(e->off <= INT64_MAX && e->size <= INT64_MAX, WV_CORRUPT,
             "%s: tensor '%.*s' has a negative offset or size", b->what,
             KEYF(e));
    if (e->dtype != WV_DTYPE_INVALID) {
        uint64_t numel, nbytes;
        WV_CHECK(wv__shape_bytes(e->dtype, e->ndim, e->shape, &numel,
                                 &nbytes) == WV_OK,
                 WV_CORRUPT, "%s: tensor '%.*s': its shape overflows",
                 b->what, KEYF(e));
        WV_CHECK(nbytes == e->size, WV_CORRUPT,
                 "%s: tensor '%.*s' has %llu bytes but its shape and dtype "
                 "need %llu",
                 b->what, KEYF(e), (unsigned long long)e->size,
                 (unsigned long long)nbytes);
    }
    WV_CHECK(memchr(e->key, '\0', e->key_len) == NULL &&
                 wv__utf8_valid(e->key, e->key_len),
             WV_CORRUPT, "%s: a key is not UTF-8 text without NUL bytes",
             b->what);
out:
    return rc;
}

static int on_entry(void *ctx, const unsigned char *key, size_t key_len,
                    const unsigned char *val, size_t val_len,
                    struct wv__err *err)
{
    struct bundle *b = ctx;
    int rc = WV_OK;
    if (!b->have_header) {
        WV_CHECK(key_len == 0, WV_CORRUPT,
                 "%s: the first key is not the bundle header (the empty "
                 "key)",
                 b->what);
        return parse_header(b, val, val_len, err);
    }
    WV_CHECK(wv__grow(&b->ents, &b->cap, b->n, sizeof *b->ents, 16) ==
                 WV_OK,
             WV_NOMEM, "out of memory");
    struct entry *e = &b->ents[b->n];
    memset(e, 0, sizeof *e);
    e->key = wv__strndup((const char *)key, key_len);
    WV_CHECK(e->key != NULL, WV_NOMEM, "out of memory");
    e->key_len = key_len;
    b->n++;
    rc = parse_entry(b, e, val, val_len, err);
out:
    return rc;
}

/* Parse the index held in buf: every entry checked, nothing read from the
 * data files. */
static int parse_index(const unsigned char *buf, size_t n, struct bundle *b,
                       struct wv__err *err)
{
    int rc = WV_OK;
    WV_TRY(wv__ldb_walk(buf, n, b->what, on_entry, b, err));
    WV_CHECK(b->have_header, WV_CORRUPT,
             "%s: the table is empty: no bundle header", b->what);
out:
    return rc;
}

int wv__tfbundle_check_index(const void *buf, size_t n, size_t *n_tensors,
                             struct wv__err *err)
{
    struct bundle b = {0};
    b.what = "<memory>";
    int rc = parse_index(buf, n, &b, err);
    *n_tensors = b.n;
    bundle_release(&b);
    return rc;
}

/* ---- probing and loading ------------------------------------------------- */

static int probe(const struct wv__src *src, const unsigned char *h, size_t n)
{
    unsigned char tail[8];
    struct wv__err e = {0};
    (void)h, (void)n;
    if (src->size < WV__LDB_FOOTER ||
        wv__src_read(src, src->size - 8, tail, 8, &e) != WV_OK)
        return 0;
    return wv__le64(tail) == WV__LDB_MAGIC;
}

static int cmp_data_order(const void *pa, const void *pb)
{
    const struct entry *a = pa, *b = pb;
    if (a->shard != b->shard)
        return a->shard < b->shard ? -1 : 1;
    if (a->off != b->off)
        return a->off < b->off ? -1 : 1;
    return strcmp(a->key, b->key);
}

/* One string element as metadata text (see the opening comment): a value
 * that looks like the JSON of a non-scalar tensor is given in base64. */
static void put_string_value(struct wv__buf *o, const unsigned char *p,
                             size_t n, bool json)
{
    wv__buf_add_meta_value(o, p, n, json,
                           n >= 10 && memcmp(p, "{\"shape\": ", 10) == 0);
}

/* A DT_STRING tensor's bytes: check and turn into a metadata value. */
static int string_meta(const char *what, const struct entry *e,
                       const unsigned char *d, size_t n, struct wv__buf *o,
                       struct wv__buf *raw, struct wv__err *err)
{
    int rc = WV_OK;
    uint64_t numel = 1;
    uint64_t *lens = NULL;
    const unsigned char *p = d, *end = d + n;
    for (int i = 0; i < e->ndim; i++)
        WV_CHECK(!wv__mul_overflow(numel, e->shape[i], &numel), WV_CORRUPT,
                 "%s: string tensor '%.*s': its shape overflows", what,
                 KEYF(e));
    /* Each element takes at least one byte of length. */
    WV_CHECK(numel <= n, WV_CORRUPT,
             "%s: string tensor '%.*s' has %llu elements in %zu bytes",
             what, KEYF(e), (unsigned long long)numel, n);
    lens = wv__calloc(numel ? (size_t)numel : 1, sizeof *lens);
    WV_CHECK(lens != NULL, WV_NOMEM, "out of memory");
    uint32_t crc = 0;
    for (uint64_t i = 0; i < numel; i++) {
        unsigned char t[8];
        WV_CHECK(wv__pb_varint(&p, end, &lens[i]) == 0, WV_CORRUPT,
                 "%s: string tensor '%.*s': truncated varint length", what,
                 KEYF(e));
        if (lens[i] <= UINT32_MAX) {
            wv__put32(t, (uint32_t)lens[i]);
            crc = wv__crc32c(crc, t, 4);
        } else {
            wv__put64(t, lens[i]);
            crc = wv__crc32c(crc, t, 8);
        }
    }
    if (numel > 0) {
        WV_CHECK(end - p >= 4, WV_CORRUPT,
                 "%s: string tensor '%.*s': truncated length checksum",
                 what, KEYF(e));
        WV_CHECK(wv__crc32c_unmask(wv__le32(p)) == crc, WV_CORRUPT,
                 "%s: string tensor '%.*s': the lengths fail their CRC-32C",
                 what, KEYF(e));
        crc = wv__crc32c(crc, p, 4);
        p += 4;
    }
    uint64_t total = 0;
    for (uint64_t i = 0; i < numel; i++)
        WV_CHECK(!wv__add_overflow(total, lens[i], &total), WV_CORRUPT,
                 "%s: string tensor '%.*s': lengths overflow", what,
                 KEYF(e));
    WV_CHECK(total == (uint64_t)(end - p), WV_CORRUPT,
             "%s: string tensor '%.*s': %llu bytes of strings but %zu "
             "stored",
             what, KEYF(e), (unsigned long long)total, (size_t)(end - p));
    crc = wv__crc32c(crc, p, (size_t)total);
    WV_CHECK(crc == wv__crc32c_unmask(e->crc), WV_CORRUPT,
             "%s: string tensor '%.*s' fails its CRC-32C", what, KEYF(e));
    if (e->ndim == 0) {
        put_string_value(o, p, (size_t)lens[0], false);
        if (raw)
            wv__buf_add(raw, p, (size_t)lens[0]);
    } else {
        char sh[256];
        wv__shape_str(e->ndim, e->shape, sh, sizeof sh);
        wv__buf_addf(o, "{\"shape\": %s, \"values\": [", sh);
        for (uint64_t i = 0; i < numel; i++) {
            if (i)
                wv__buf_adds(o, ", ");
            put_string_value(o, p, (size_t)lens[i], true);
            p += lens[i];
        }
        wv__buf_adds(o, "]}");
    }
    WV_CHECK(!o->oom, WV_NOMEM, "out of memory");
out:
    wv__free(lens);
    return rc;
}

struct shard {
    uint64_t id;
    int fd;
    struct wv__src src;
    char *path;
};

static int open_shard(const char *what, const char *prefix, size_t pl,
                      uint64_t s, uint64_t ns, bool use_map, wv_model *m,
                      struct wv__expand *ex, struct shard *sh,
                      struct wv__err *err)
{
    int rc = WV_OK;
    size_t cap = pl + 40;
    sh->path = wv__malloc(cap);
    WV_CHECK(sh->path != NULL, WV_NOMEM, "out of memory");
    snprintf(sh->path, cap, "%.*s.data-%05llu-of-%05llu", (int)pl, prefix,
             (unsigned long long)s, (unsigned long long)ns);
    WV_TRY(wv__open_part(what, "data file", sh->path, use_map, m, ex,
                         &sh->fd, &sh->src, err));
out:
    return rc;
}

/* ---- Keras names (WV_LOAD_KERAS_NAMES) --------------------------------------
 *
 * The object graph (_CHECKPOINTABLE_OBJECT_GRAPH, a TrackableObjectGraph:
 * nodes = 1 { attributes = 2 { name = 1; full_name = 2; checkpoint_key =
 * 3 } }) gives each variable's full name ("dense_54/kernel"). A Keras .h5
 * names the weight "<layer>/<full name>:0" inside its layer's group; the
 * layer is the one the key starts with (layer_with_weights-N, layer-N),
 * named by its OBJECT_CONFIG_JSON ("config": {"name": ...}) when the bundle
 * has it, else by the full name's first component. Optimizer state (keys
 * under optimizer/ or with .OPTIMIZER_SLOT) becomes "optimizer/<full
 * name>:0". Other keys (metrics, TF1 checkpoints) keep their names.
 */

struct kname {
    const char *key; /* into the graph bytes */
    size_t key_len;
    char *name;
};

static int cmp_kname(const void *pa, const void *pb)
{
    const struct kname *a = pa, *b = pb;
    size_t m = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, m);
    if (c)
        return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

/* "config": {"name": X} of a Keras layer config, or NULL. */
static char *config_name(const char *json)
{
    struct wv__err e = {0};
    struct wv__json j = {json, json, json + strlen(json), "config", &e};
    char *k = NULL, *name = NULL;
    size_t kl;
    if (!wv__json_eat(&j, '{'))
        return NULL;
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "config") != 0) {
            if (wv__json_skip(&j) != WV_OK)
                break;
            continue;
        }
        if (!wv__json_eat(&j, '{'))
            break;
        struct wv__json_obj cfg = WV__JSON_OBJ(&j);
        while (wv__json_obj_next(&cfg, &k, &kl)) {
            if (strcmp(k, "name") == 0) {
                wv__free(k);
                wv__json_string(&j, &name, &kl);
                if (name && strlen(name) != kl) {
                    wv__free(name);
                    name = NULL;
                }
                return name;
            }
            if (wv__json_skip(&j) != WV_OK)
                break;
        }
        break;
    }
    wv__free(k);
    return NULL;
}

static bool starts(const char *s, size_t n, const char *p)
{
    size_t pl = strlen(p);
    return n >= pl && memcmp(s, p, pl) == 0;
}

static int keras_names(const wv_model *m, const char *what,
                       const unsigned char *g, size_t gn,
                       struct kname **out, size_t *n_out,
                       struct wv__err *err)
{
    int rc = WV_OK;
    struct kname *k = NULL;
    size_t n = 0, cap = 0;
    struct wv__pb r, node, at;
    struct wv__pb_field f, h, x;
    const char *why = "";
    char *layer = NULL;
    int c1, c2, c3;
    wv__pb_init(&r, g, gn);
    while ((c1 = wv__pb_next(&r, &f, &why)) == 1) {
        if (f.num != 1)
            continue;
        WV_CHECK(wv__pb_sub(&r, &f, &node, &why) == 0, WV_CORRUPT,
                 "%s: object graph: %s", what, why);
        while ((c2 = wv__pb_next(&node, &h, &why)) == 1) {
            if (h.num != 2)
                continue;
            WV_CHECK(wv__pb_sub(&node, &h, &at, &why) == 0, WV_CORRUPT,
                     "%s: object graph: %s", what, why);
            const char *full = NULL, *key = NULL;
            size_t fl = 0, kl = 0;
            while ((c3 = wv__pb_next(&at, &x, &why)) == 1) {
                if (x.num == 2 && x.wire == WV__PB_LEN) {
                    full = (const char *)x.data;
                    fl = x.len;
                } else if (x.num == 3 && x.wire == WV__PB_LEN) {
                    key = (const char *)x.data;
                    kl = x.len;
                }
            }
            WV_CHECK(c3 == 0, WV_CORRUPT, "%s: object graph: %s", what, why);
            if (!key || !full || fl == 0 || memchr(full, '\0', fl))
                continue;
            struct wv__buf nm = {0};
            if (starts(key, kl, "optimizer/") ||
                memmem(key, kl, "/.OPTIMIZER_SLOT/", 17) != NULL) {
                wv__buf_adds(&nm, "optimizer/");
            } else if (starts(key, kl, "layer_with_weights-") ||
                       starts(key, kl, "layer-")) {
                const char *sl = memchr(key, '/', kl);
                size_t pl = sl ? (size_t)(sl - key) : kl;
                struct wv__buf ck = {0};
                wv__buf_add(&ck, key, pl);
                wv__buf_adds(&ck, "/.ATTRIBUTES/OBJECT_CONFIG_JSON");
                const char *cfg = ck.oom ? NULL : wv_model_get_meta(m, ck.p);
                wv__buf_release(&ck);
                layer = cfg ? config_name(cfg) : NULL;
                if (layer) {
                    wv__buf_adds(&nm, layer);
                } else {
                    const char *fs = memchr(full, '/', fl);
                    if (fs)
                        wv__buf_add(&nm, full, (size_t)(fs - full));
                    else
                        wv__buf_add(&nm, key, pl);
                }
                wv__free(layer);
                layer = NULL;
                wv__buf_addc(&nm, '/');
            } else {
                continue;
            }
            wv__buf_add(&nm, full, fl);
            wv__buf_adds(&nm, ":0");
            if (nm.oom || wv__grow(&k, &cap, n, sizeof *k, 16) != WV_OK) {
                wv__buf_release(&nm);
                WV_CHECK(0, WV_NOMEM, "out of memory");
            }
            k[n].key = key;
            k[n].key_len = kl;
            k[n].name = nm.p;
            n++;
        }
        WV_CHECK(c2 == 0, WV_CORRUPT, "%s: object graph: %s", what, why);
    }
    WV_CHECK(c1 == 0, WV_CORRUPT, "%s: object graph: %s", what, why);
    if (n > 1)
        qsort(k, n, sizeof *k, cmp_kname);
out:
    if (rc != WV_OK) {
        for (size_t i = 0; i < n; i++)
            wv__free(k[i].name);
        wv__free(k);
        k = NULL;
        n = 0;
    }
    *out = k;
    *n_out = n;
    return rc;
}

int wv__tfbundle_check_graph(const void *g, size_t n, size_t *n_names,
                             struct wv__err *err)
{
    wv_model *m = NULL;
    struct kname *k = NULL;
    size_t nk = 0;
    if (wv_model_new(&m) != WV_OK)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    int rc = keras_names(m, "<memory>", g, n, &k, &nk, err);
    for (size_t i = 0; i < nk; i++)
        wv__free(k[i].name);
    wv__free(k);
    wv_model_free(m);
    *n_names = nk;
    return rc;
}

static int load(const struct wv__src *src, unsigned flags, wv_model *m,
                struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char *ibuf = NULL;
    struct bundle b = {0};
    struct shard *shards = NULL;
    size_t n_shards_open = 0;
    struct wv__buf val = {0}, graph = {0};
    void *owned = NULL;
    bool any_meta = false;
    struct kname *kn = NULL;
    size_t n_kn = 0;

    b.what = src->name;
    WV_CHECK(src->size <= INDEX_MAX, WV_RANGE,
             "%s: a bundle index over 1 GiB is not read", src->name);
    ibuf = wv__malloc(src->size ? (size_t)src->size : 1);
    WV_CHECK(ibuf != NULL, WV_NOMEM, "out of memory");
    if (src->map)
        memcpy(ibuf, src->map, (size_t)src->size);
    else
        WV_TRY(wv__src_read(src, 0, ibuf, (size_t)src->size, err));
    WV_TRY(parse_index(ibuf, (size_t)src->size, &b, err));

    size_t nl = strlen(src->name);
    WV_CHECK(src->fd >= 0 && src->remote_read == NULL && nl > 6 &&
                 strcmp(src->name + nl - 6, ".index") == 0,
             WV_UNSUPPORTED,
             "%s: a TensorFlow bundle index needs its data files beside "
             "it: load the .index file by its path",
             src->name);
    if (b.n > 1)
        qsort(b.ents, b.n, sizeof *b.ents, cmp_data_order);
    /* Shards are opened as tensors need them (in shard order). */
    shards = wv__calloc(b.n + 1, sizeof *shards);
    WV_CHECK(shards != NULL, WV_NOMEM, "out of memory");
    /* Two passes: the string tensors (metadata, and the object graph
     * that Keras names need), then the others. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && (flags & WV_LOAD_KERAS_NAMES) && graph.len > 0)
            WV_TRY(keras_names(m, src->name, (unsigned char *)graph.p,
                               graph.len, &kn, &n_kn, err));
        for (size_t i = 0; i < b.n; i++) {
            struct entry *e = &b.ents[i];
            if ((e->dtype == WV_DTYPE_INVALID) != (pass == 0))
                continue;
            struct shard *sh = NULL;
            for (size_t k = 0; k < n_shards_open && !sh; k++)
                if (shards[k].id == e->shard)
                    sh = &shards[k];
            if (sh == NULL) {
                sh = &shards[n_shards_open];
                sh->fd = -1;
                sh->id = e->shard;
                n_shards_open++;
                /* the data files are input too: the bound scales with them */
                WV_TRY(open_shard(src->name, src->name, nl - 6, e->shard,
                                  b.num_shards, !(flags & WV_LOAD_PREAD), m,
                                  src->ex, sh, err));
            }
            uint64_t end;
            WV_CHECK(!wv__add_overflow(e->off, e->size, &end) &&
                         end <= sh->src.size,
                     WV_CORRUPT,
                     "%s: tensor '%.*s' at [%llu, +%llu) passes the end of "
                     "%s (%llu bytes)",
                     src->name, KEYF(e), (unsigned long long)e->off,
                     (unsigned long long)e->size, sh->path,
                     (unsigned long long)sh->src.size);
            const unsigned char *d = (const unsigned char *)"";
            if (e->size > 0)
                WV_TRY(wv__src_data(&sh->src, e->off, e->size, &d, &owned,
                                    err));
            if (e->dtype == WV_DTYPE_INVALID) {
                val.len = 0;
                bool is_graph = strcmp(e->key, GRAPH_KEY) == 0;
                WV_TRY(string_meta(src->name, e, d, (size_t)e->size, &val,
                                   is_graph ? &graph : NULL, err));
                WV_CHECK(!graph.oom, WV_NOMEM, "out of memory");
                WV_CHECK(wv_model_set_meta(m, e->key, val.p) == WV_OK,
                         WV_NOMEM, "out of memory");
                any_meta = true;
                wv__free(owned);
                owned = NULL;
                continue;
            }
            uint32_t crc = wv__crc32c(0, d, (size_t)e->size);
            WV_CHECK(crc == wv__crc32c_unmask(e->crc), WV_CORRUPT,
                     "%s: tensor '%.*s' fails its CRC-32C (stored %08x, "
                     "computed %08x over %s [%llu, +%llu))",
                     src->name, KEYF(e), wv__crc32c_unmask(e->crc), crc,
                     sh->path, (unsigned long long)e->off,
                     (unsigned long long)e->size);
            if (e->dtype == WV_BOOL)
                for (uint64_t k = 0; k < e->size; k++)
                    WV_CHECK(d[k] <= 1, WV_CORRUPT,
                             "%s: bool tensor '%.*s' holds the byte %u",
                             src->name, KEYF(e), d[k]);
            const char *name = e->key;
            size_t name_len = e->key_len;
            if (n_kn > 0) {
                struct kname q = {e->key, e->key_len, NULL};
                const struct kname *hit =
                    bsearch(&q, kn, n_kn, sizeof *kn, cmp_kname);
                if (hit) {
                    name = hit->name;
                    name_len = strlen(hit->name);
                    WV_CHECK(wv_model_find(m, name) == NULL, WV_CORRUPT,
                             "%s: Keras names: two tensors would be named "
                             "'%.200s'",
                             src->name, name);
                }
            }
            rc = wv__model_add(m, name, name_len, e->dtype, e->ndim,
                               e->shape, d, (size_t)e->size, owned, err);
            owned = NULL;
            WV_TRY(rc);
        }
    }
    if (b.num_shards > 1 && b.num_shards <= 10000) {
        /* How the numeric tensors (in set order) fall into the shards,
         * so a rewrite can keep the layout: "25,98". */
        val.len = 0;
        size_t k = 0;
        for (uint64_t sd = 0; sd < b.num_shards && sd < 10000; sd++) {
            size_t c = 0;
            while (k < b.n && b.ents[k].shard == sd) {
                c += b.ents[k].dtype != WV_DTYPE_INVALID;
                k++;
            }
            wv__buf_addf(&val, "%s%zu", sd ? "," : "", c);
        }
        WV_CHECK(!val.oom && wv_model_set_meta(m, SHARDS_KEY, val.p) ==
                                 WV_OK,
                 WV_NOMEM, "out of memory");
        any_meta = true;
    }
    m->meta_state = any_meta ? WV__META_FROM_FILE : WV__META_NONE;
out:
    wv__free(owned);
    if (shards) {
        for (size_t i = 0; i < n_shards_open; i++) {
            if (shards[i].fd >= 0)
                close(shards[i].fd);
            wv__free(shards[i].path);
        }
        wv__free(shards);
    }
    wv__buf_release(&val);
    wv__buf_release(&graph);
    for (size_t i = 0; i < n_kn; i++)
        wv__free(kn[i].name);
    wv__free(kn);
    bundle_release(&b);
    wv__free(ibuf);
    return rc;
}

/* ---- naming the input ---------------------------------------------------- */

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static const char *last_part(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static char *join(const char *a, size_t al, const char *b)
{
    size_t bl = strlen(b);
    char *s = wv__malloc(al + bl + 1);
    if (s) {
        memcpy(s, a, al);
        memcpy(s + al, b, bl + 1);
    }
    return s;
}

/* The prefix a `checkpoint` state file names (model_checkpoint_path:
 * "..."), relative to its directory unless absolute; NULL and a message
 * if it has none. */
static int read_state(const char *path, char **prefix, struct wv__err *err)
{
    int rc = WV_OK;
    char text[8192];
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *prefix = NULL;
    WV_CHECK(fd >= 0, WV_IO, "%s: %s", path, strerror(errno));
    for (;;) {
        ssize_t r = read(fd, text + n, sizeof text - 1 - n);
        WV_CHECK(r >= 0, WV_IO, "%s: %s", path, strerror(errno));
        if (r == 0)
            break;
        n += (size_t)r;
        WV_CHECK(n < sizeof text - 1, WV_FORMAT,
                 "%s: a checkpoint state file over 8 KiB is not read", path);
    }
    text[n] = '\0';
    const char *k = strstr(text, "model_checkpoint_path:");
    WV_CHECK(k != NULL && (k == text || k[-1] == '\n'), WV_FORMAT,
             "%s: not a weights file nor a checkpoint state file (no "
             "model_checkpoint_path)",
             path);
    k += strlen("model_checkpoint_path:");
    k += strspn(k, " \t");
    WV_CHECK(*k == '"', WV_FORMAT,
             "%s: model_checkpoint_path is not a quoted string", path);
    const char *q = strchr(k + 1, '"');
    size_t ql = q ? (size_t)(q - k - 1) : 0;
    WV_CHECK(q != NULL && ql > 0 && memchr(k + 1, '\\', ql) == NULL &&
                 memchr(k + 1, '\n', ql) == NULL,
             WV_FORMAT,
             "%s: model_checkpoint_path is empty, unterminated or escaped",
             path);
    const char *slash = strrchr(path, '/');
    size_t dl = (k[1] == '/' || slash == NULL) ? 0
                                               : (size_t)(slash - path) + 1;
    char *v = wv__strndup(k + 1, (size_t)(q - k - 1));
    WV_CHECK(v != NULL, WV_NOMEM, "out of memory");
    *prefix = join(path, dl, v);
    wv__free(v);
    WV_CHECK(*prefix != NULL, WV_NOMEM, "out of memory");
out:
    if (fd >= 0)
        close(fd);
    return rc;
}

int wv__tfbundle_resolve(const char *path, char **out, struct wv__err *err)
{
    int rc = WV_OK;
    struct stat st;
    char *p = NULL, *prefix = NULL;
    size_t pl = strlen(path);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    *out = NULL;

    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* A SavedModel, or a directory with a checkpoint state file. */
        while (pl > 1 && path[pl - 1] == '/')
            pl--;
        p = join(path, pl, "/variables/variables.index");
        WV_CHECK(p != NULL, WV_NOMEM, "out of memory");
        if (is_file(p))
            goto out;
        wv__free(p);
        p = join(path, pl, "/variables.index"); /* its variables/ */
        WV_CHECK(p != NULL, WV_NOMEM, "out of memory");
        if (is_file(p))
            goto out;
        wv__free(p);
        p = join(path, pl, "/checkpoint");
        WV_CHECK(p != NULL, WV_NOMEM, "out of memory");
        if (!is_file(p)) {
            wv__free(p);
            p = NULL;
            goto out; /* not ours: the caller reports the directory */
        }
        WV_TRY(read_state(p, &prefix, err));
        wv__free(p);
        p = join(prefix, strlen(prefix), ".index");
        WV_CHECK(p != NULL, WV_NOMEM, "out of memory");
        WV_CHECK(is_file(p), WV_NOTFOUND,
                 "%.*s: its checkpoint file names '%s', whose .index does "
                 "not exist",
                 (int)pl, path, last_part(prefix));
        goto out;
    }
    if (strcmp(base, "checkpoint") == 0 && is_file(path)) {
        WV_TRY(read_state(path, &prefix, err));
        p = join(prefix, strlen(prefix), ".index");
        WV_CHECK(p != NULL, WV_NOMEM, "out of memory");
        WV_CHECK(is_file(p), WV_NOTFOUND,
                 "%s names '%s', whose .index does not exist", path,
                 last_part(prefix));
        goto out;
    }
    /* PREFIX.data-00000-of-00001 */
    if (pl > 20) {
        const char *s = path + pl - 20;
        bool digits = true;
        for (int i = 0; i < 5; i++)
            digits = digits && s[6 + i] >= '0' && s[6 + i] <= '9' &&
                     s[15 + i] >= '0' && s[15 + i] <= '9';
        if (digits && memcmp(s, ".data-", 6) == 0 &&
            memcmp(s + 11, "-of-", 4) == 0) {
            p = join(path, pl - 20, ".index");
            WV_CHECK(p != NULL, WV_NOMEM, "out of memory");
            if (is_file(p))
                goto out;
            wv__free(p);
            p = NULL;
            goto out;
        }
    }
    /* A bare prefix. */
    if (stat(path, &st) != 0 && errno == ENOENT) {
        p = join(path, pl, ".index");
        WV_CHECK(p != NULL, WV_NOMEM, "out of memory");
        if (!is_file(p)) {
            wv__free(p);
            p = NULL;
        }
    }
out:
    wv__free(prefix);
    if (rc != WV_OK) {
        wv__free(p);
        p = NULL;
    }
    *out = p;
    return rc;
}

/* ---- writing ---------------------------------------------------------------
 *
 * PREFIX.index and PREFIX.data-SSSSS-of-NNNNN as TensorFlow's BundleWriter
 * writes them (data_alignment 1, uncompressed table, block size 256 KiB,
 * restart interval 16), so that a bundle read and written back gives the
 * same bytes: tensors go to the data file(s) in set order (the order they
 * were read in), split over shards as "tensorflow.shards" says when it
 * fits the set (else one shard); every other metadata entry becomes a
 * DT_STRING tensor (values as the reader made them: text, base64:, or the
 * {"shape", "values"} JSON; a value that only looks like the last two is
 * taken as text), written first in shard 0, except
 * _CHECKPOINTABLE_OBJECT_GRAPH, written last there, where TensorFlow puts
 * it. Entries are serialized as proto3 does (fields in number order, zero
 * scalars left out, the shape always present).
 */

static uint32_t tf_code(wv_dtype dt)
{
    for (uint32_t c = 1; c < 32; c++)
        if (map_dtype(c) == dt)
            return c;
    return 0;
}

struct went {
    const char *key;
    size_t key_len;
    uint32_t dtype;
    int ndim;
    uint64_t shape[WV_MAX_DIMS];
    uint64_t shard, off, size;
    uint32_t crc; /* masked */
};

static int cmp_went(const void *pa, const void *pb)
{
    const struct went *a = pa, *b = pb;
    size_t m = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, m);
    if (c)
        return c;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

/* One string value as the reader wrote it: "base64:..." decoded, else the
 * text itself. */
static int value_bytes(const char *v, size_t n, struct wv__buf *o)
{
    if (n < 7 || memcmp(v, "base64:", 7) != 0) {
        wv__buf_add(o, v, n);
        return 0;
    }
    return wv__buf_add_unb64(o, v + 7, n - 7);
}

/* A metadata value -> the DT_STRING tensor bytes (lengths, their CRC,
 * the strings), its shape and its entry CRC. */
static int encode_strings(const char *key, const char *v, bool raw,
                          struct went *e, struct wv__buf *out,
                          struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__buf elems = {0}; /* the strings, concatenated */
    uint64_t *lens = NULL;
    size_t n = 0, cap = 0;
    char *str = NULL;
    size_t sl;
    e->ndim = 0;
    if (raw || strncmp(v, "{\"shape\": ", 10) != 0) {
        if (raw)
            wv__buf_add(&elems, v, strlen(v));
        else
            WV_CHECK(value_bytes(v, strlen(v), &elems) == 0, WV_CORRUPT,
                     "metadata '%.200s': bad base64", key);
        WV_CHECK(wv__grow(&lens, &cap, n, sizeof *lens, 1) == WV_OK,
                 WV_NOMEM, "out of memory");
        lens[n++] = elems.len;
    } else {
        struct wv__json j = {v, v, v + strlen(v), key, err};
        uint64_t numel = 1;
        WV_TRY(wv__json_expect(&j, '{'));
        WV_TRY(wv__json_string(&j, &str, &sl));
        WV_CHECK(strcmp(str, "shape") == 0, WV_CORRUPT,
                 "metadata '%.200s': not a string tensor", key);
        WV_TRY(wv__json_expect(&j, ':'));
        WV_TRY(wv__json_expect(&j, '['));
        if (!wv__json_eat(&j, ']')) {
            do {
                WV_CHECK(e->ndim < WV_MAX_DIMS, WV_RANGE,
                         "metadata '%.200s': too many dimensions", key);
                WV_TRY(wv__json_u64(&j, &e->shape[e->ndim]));
                WV_CHECK(!wv__mul_overflow(numel, e->shape[e->ndim], &numel),
                         WV_RANGE, "metadata '%.200s': shape overflows",
                         key);
                e->ndim++;
            } while (wv__json_eat(&j, ','));
            WV_TRY(wv__json_expect(&j, ']'));
        }
        WV_TRY(wv__json_expect(&j, ','));
        wv__free(str);
        str = NULL;
        WV_TRY(wv__json_string(&j, &str, &sl));
        WV_CHECK(strcmp(str, "values") == 0, WV_CORRUPT,
                 "metadata '%.200s': not a string tensor", key);
        WV_TRY(wv__json_expect(&j, ':'));
        WV_TRY(wv__json_expect(&j, '['));
        if (!wv__json_eat(&j, ']')) {
            do {
                wv__free(str);
                str = NULL;
                WV_TRY(wv__json_string(&j, &str, &sl));
                WV_CHECK(wv__grow(&lens, &cap, n, sizeof *lens, 16) ==
                             WV_OK,
                         WV_NOMEM, "out of memory");
                size_t before = elems.len;
                WV_CHECK(value_bytes(str, sl, &elems) == 0, WV_CORRUPT,
                         "metadata '%.200s': bad base64", key);
                lens[n++] = elems.len - before;
            } while (wv__json_eat(&j, ','));
            WV_TRY(wv__json_expect(&j, ']'));
        }
        WV_TRY(wv__json_expect(&j, '}'));
        WV_CHECK(numel == n, WV_CORRUPT,
                 "metadata '%.200s': %zu values for %llu elements", key, n,
                 (unsigned long long)numel);
    }
    WV_CHECK(!elems.oom, WV_NOMEM, "out of memory");
    uint32_t crc = 0;
    unsigned char t[8];
    for (size_t i = 0; i < n; i++) {
        wv__pb_put_varint(out, lens[i]);
        wv__put32(t, (uint32_t)lens[i]);
        crc = wv__crc32c(crc, t, 4);
    }
    if (n > 0) {
        wv__put32(t, wv__crc32c_mask(crc));
        wv__buf_add(out, t, 4);
        crc = wv__crc32c(crc, t, 4);
    }
    wv__buf_add(out, elems.p, elems.len);
    crc = wv__crc32c(crc, elems.p, elems.len);
    WV_CHECK(!out->oom, WV_NOMEM, "out of memory");
    e->crc = wv__crc32c_mask(crc);
    e->dtype = DT_STRING;
    e->key = key;
    e->key_len = strlen(key);
out:
    wv__free(str);
    wv__free(lens);
    wv__buf_release(&elems);
    return rc;
}

struct csink {
    struct wv__wfile *f;
    uint32_t crc;
};

static bool crc_sink(void *arg, const void *p, size_t n)
{
    struct csink *c = arg;
    c->crc = wv__crc32c(c->crc, p, n);
    wv__wfile_write(c->f, p, n);
    return c->f->rc == WV_OK;
}

static void put_entry(struct wv__buf *v, const struct went *e)
{
    struct wv__buf sh = {0}, d = {0};
    wv__pb_put_uint(v, 1, e->dtype);
    for (int k = 0; k < e->ndim; k++) {
        d.len = 0;
        if (e->shape[k])
            wv__pb_put_uint(&d, 1, e->shape[k]);
        wv__pb_put_bytes(&sh, 2, d.p, d.len);
    }
    wv__pb_put_bytes(v, 2, sh.p, sh.len);
    if (e->shard)
        wv__pb_put_uint(v, 3, e->shard);
    if (e->off)
        wv__pb_put_uint(v, 4, e->off);
    if (e->size)
        wv__pb_put_uint(v, 5, e->size);
    if (e->crc)
        wv__pb_put_fixed32(v, 6, e->crc);
    if (sh.oom || d.oom)
        v->oom = true;
    wv__buf_release(&sh);
    wv__buf_release(&d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The index keys (tensor names and the string entries) are unique and
 * not empty (the empty key is the header's). */
static int check_keys(const wv_model *m, const char *path,
                      struct wv__err *err)
{
    int rc = WV_OK;
    size_t n = 0;
    const char **k = wv__calloc(m->n_tensors + m->n_meta + 1, sizeof *k);
    WV_CHECK(k != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_tensors; i++)
        k[n++] = m->tensors[i].name;
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[i].key, SHARDS_KEY) != 0)
            k[n++] = m->meta[i].key;
    qsort(k, n, sizeof *k, cmp_str);
    WV_CHECK(n == 0 || k[0][0] != '\0', WV_MISUSE,
             "%s: an empty key is the bundle header's", path);
    for (size_t i = 1; i < n; i++)
        WV_CHECK(strcmp(k[i - 1], k[i]) != 0, WV_EXISTS,
                 "%s: '%.200s' is both a tensor and a metadata key", path,
                 k[i]);
out:
    wv__free(k);
    return rc;
}

/* Is `nm` BASE.data-S-of-M (decimal, at least 5 digits each, S < M) with
 * M != n: a data file of a bundle with another shard count? */
static bool stale_data(const char *nm, const char *base, size_t bl,
                       uint64_t n)
{
    uint64_t sv = 0, mv = 0;
    const char *p = nm + bl;
    if (strncmp(nm, base, bl) != 0 || strncmp(p, ".data-", 6) != 0)
        return false;
    p += 6;
    for (int part = 0; part < 2; part++) {
        uint64_t *v = part ? &mv : &sv;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (++digits > 18)
                return false;
            *v = *v * 10 + (uint64_t)(*p++ - '0');
        }
        if (digits < 5)
            return false;
        if (part == 0) {
            if (strncmp(p, "-of-", 4) != 0)
                return false;
            p += 4;
        }
    }
    return *p == '\0' && sv < mv && mv != n;
}

/* stale_data for wv__wfile_drop_stale: the prefix's base name and the
 * new shard count. */
struct stale_arg {
    const char *base;
    size_t bl;
    uint64_t n;
};

static bool stale_data_of(const char *nm, void *arg)
{
    const struct stale_arg *a = arg;
    return stale_data(nm, a->base, a->bl, a->n);
}

static int save(const wv_model *m, struct wv__wfile *f,
                const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    struct went *w = NULL;
    size_t nw = 0;
    size_t *per = NULL; /* tensors per shard */
    uint64_t ns = 1;
    char *dpath = NULL;
    struct wv__buf sb = {0}, v = {0};
    struct wv__ldb_writer lw;
    struct wv__wfile *df = NULL;
    const char *graph = "_CHECKPOINTABLE_OBJECT_GRAPH";
    size_t pl = strlen(f->path);

    wv__ldb_writer_init(&lw, 262144, 16, NULL);
    WV_CHECK(pl > 6 && strcmp(f->path + pl - 6, ".index") == 0, WV_MISUSE,
             "%s: name a TensorFlow bundle by its PREFIX.index", f->path);
    pl -= 6;
    w = wv__calloc(m->n_tensors + m->n_meta + 1, sizeof *w);
    per = wv__calloc(m->n_tensors + 1, sizeof *per);
    dpath = wv__malloc(pl + 40);
    WV_CHECK(w && per && dpath, WV_NOMEM, "out of memory");
    per[0] = m->n_tensors;
    const char *plan = wv_model_get_meta(m, SHARDS_KEY);
    if (plan) {
        /* Keep the layout it records if it fits this set. */
        uint64_t c, sum = 0, k = 0;
        const char *q = plan;
        bool ok = true;
        while (ok && k < m->n_tensors + 1) {
            ok = wv__parse_u64(&q, 10, &c) && !wv__add_overflow(sum, c, &sum);
            if (!ok)
                break;
            per[k++] = (size_t)c;
            if (*q != ',')
                break;
            q++;
        }
        if (ok && *q == '\0' && sum == m->n_tensors && k >= 1) {
            ns = k;
        } else {
            memset(per, 0, (m->n_tensors + 1) * sizeof *per);
            per[0] = m->n_tensors;
        }
    }
    /* Every refusal before the first data file is written: a bundle that
     * cannot be finished must not replace the shards of an existing one. */
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        wv_dtype to = wv__cast_target(t->dtype, opts->cast);
        WV_CHECK(tf_code(to) != 0, WV_UNSUPPORTED,
                 "%s: tensor '%.200s' is %s, which a TensorFlow "
                 "bundle cannot hold",
                 f->path, t->name, wv_dtype_name(to));
    }
    WV_TRY(check_keys(m, f->path, err));
    size_t ti = 0;
    for (uint64_t s = 0; s < ns; s++) {
        snprintf(dpath, pl + 40, "%.*s.data-%05llu-of-%05llu", (int)pl,
                 f->path, (unsigned long long)s, (unsigned long long)ns);
        /* a side file of the .index: renamed only with it, last */
        WV_TRY(wv__wfile_side(f, dpath, &df));
        uint64_t off = 0;
        /* shard 0: the string tensors but the object graph, first */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; s == 0 && i < m->n_meta; i++) {
                const char *k = m->meta[i].key;
                if (strcmp(k, SHARDS_KEY) == 0 ||
                    (strcmp(k, graph) == 0) != (pass == 1))
                    continue;
                struct went *e = &w[nw];
                sb.len = 0;
                rc = encode_strings(k, m->meta[i].value, false, e, &sb, err);
                if (rc == WV_CORRUPT) {
                    /* Not a value the reader made (bad base64 or JSON):
                     * the text itself is the string. */
                    wv__clearerr(err);
                    sb.len = 0;
                    memset(e, 0, sizeof *e);
                    rc = encode_strings(k, m->meta[i].value, true, e, &sb,
                                        err);
                }
                WV_TRY(rc);
                e->off = off;
                e->size = sb.len;
                wv__wfile_write(df, sb.p, sb.len);
                off += sb.len;
                nw++;
            }
            if (pass == 1)
                break;
            for (size_t c = 0; c < per[s]; c++, ti++) {
                const struct wv_tensor *t = &m->tensors[ti];
                wv_dtype to = wv__cast_target(t->dtype, opts->cast);
                struct went *e = &w[nw++];
                struct csink cs = {df, 0};
                e->key = t->name;
                e->key_len = strlen(t->name);
                e->dtype = tf_code(to); /* nonzero: checked up front */
                e->ndim = t->ndim;
                memcpy(e->shape, t->shape, sizeof e->shape);
                e->shard = s;
                e->off = off;
                e->size = wv__cast_nbytes(t, to);
                WV_CHECK(wv__tensor_stream(t, to, crc_sink, &cs) == WV_OK,
                         WV_NOMEM, "out of memory");
                e->crc = wv__crc32c_mask(cs.crc);
                off += e->size;
            }
        }
        WV_CHECK(!sb.oom, WV_NOMEM, "out of memory");
        WV_TRY(wv__wfile_seal(df));
    }
    {
        /* the data files a bundle of another shard count left */
        size_t dl = pl;
        while (dl > 0 && f->path[dl - 1] != '/')
            dl--;
        struct stale_arg sa = {f->path + dl, pl - dl, ns};
        WV_TRY(wv__wfile_drop_stale(f, stale_data_of, &sa));
    }

    /* The index, keys in order; the header first. */
    qsort(w, nw, sizeof *w, cmp_went); /* unique: check_keys() */
    struct wv__buf ver = {0};
    wv__pb_put_uint(&v, 1, ns);
    wv__pb_put_uint(&ver, 1, 1); /* producer 1, min_consumer 0 */
    wv__pb_put_bytes(&v, 3, ver.p, ver.len);
    wv__buf_release(&ver);
    WV_CHECK(!v.oom && wv__ldb_writer_add(&lw, "", 0, v.p, v.len) == WV_OK,
             WV_NOMEM, "out of memory");
    for (size_t i = 0; i < nw; i++) {
        v.len = 0;
        put_entry(&v, &w[i]);
        WV_CHECK(!v.oom && wv__ldb_writer_add(&lw, w[i].key, w[i].key_len,
                                              v.p, v.len) == WV_OK,
                 WV_NOMEM, "out of memory");
    }
    WV_CHECK(wv__ldb_writer_finish(&lw) == WV_OK, WV_NOMEM,
             "out of memory");
    wv__wfile_write(f, lw.out.p, lw.out.len);
out:
    wv__ldb_writer_release(&lw);
    wv__buf_release(&sb);
    wv__buf_release(&v);
    wv__free(w);
    wv__free(per);
    wv__free(dpath);
    return rc;
}

const struct wv__format_ops wv__fmt_tfbundle = {
    WV_FMT_TFBUNDLE, "tensorflow", ".index", probe, load, save,
    WV__SHARDS_NONE,
    "a TensorFlow bundle is written as one data file (no --shard-size)",
};
