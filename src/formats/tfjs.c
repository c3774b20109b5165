/*
 * tfjs.c -- TensorFlow.js weights (model.json + .bin shards): read, and
 * written (see "writing" below).
 *
 * Input: a model.json (a layers or graph model: an object with
 * "modelTopology" and "weightsManifest") or a bare weights manifest (the
 * JSON array itself). The manifest is a list of groups
 *
 *   {"paths": ["group1-shard1of2.bin", ...],
 *    "weights": [{"name": N, "shape": [d...], "dtype": D,
 *                 "quantization"?: {"dtype": Q, "scale": S, "min": M,
 *                                   "original_dtype"?: ...}}, ...]}
 *
 * A group's shard files, concatenated in the order of "paths", hold its
 * weights back to back in the order listed (tfjs-core io.decodeWeights).
 * Paths are relative to the manifest's directory; absolute ones, ones with
 * a ".." component and ones resolving (through symlinks) outside that
 * directory are refused. The weights of a group must fill its shards
 * exactly: the summed sizes of the shard files are checked against the
 * bytes the manifest describes. A weight may span shard boundaries (it is
 * then copied; otherwise it borrows from the mapped shard).
 *
 * dtypes: float32, int32, bool (bytes 0 or 1) become F32, I32, BOOL.
 * string weights (per element a little-endian u32 length, then the bytes)
 * become metadata "tfjs.string.<name>": the text of a scalar, or the JSON
 * {"shape": [...], "values": [...]}; a value that is not UTF-8 without
 * NUL is written "base64:..." . complex64 is refused.
 *
 * Quantization, dequantised as decodeWeights does: uint8/uint16 (scale and
 * min required) to float32 as the float32 rounding of v*scale + min
 * computed in double (JavaScript numbers), or to int32 as Math.round of it
 * (halves toward +infinity) wrapped as ToInt32; float16 (weights of dtype
 * float32 only) widened exactly, NaN payloads kept. With
 * WV_LOAD_TFJS_QUANTIZED the stored U8/U16/F16 values are kept and
 * "tfjs.quantization.<name>" records the quantization object as JSON.
 *
 * Metadata: every top-level key of model.json other than the manifest is
 * kept as "tfjs.<key>" (its JSON text; strings decoded), so
 * "tfjs.modelTopology" carries the topology for a later writer.
 *
 * scale and min are parsed with strtod (correctly rounded in glibc, as
 * JavaScript's parse; the C locale's decimal point is assumed).
 */
#include "core.h"
#include "fmt.h"
#include "json.h"
#include "tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define JSON_MAX ((uint64_t)256 << 20)
#define MAX_GROUPS 100000
#define MAX_PATHS 100000

enum { T_F32 = 1, T_I32, T_BOOL, T_STRING };
enum { Q_NONE = 0, Q_U8, Q_U16, Q_F16 };

struct wspec {
    char *name;
    size_t name_len;
    int type;
    int ndim;
    uint64_t shape[WV_MAX_DIMS];
    uint64_t numel;
    int q;
    bool has_scale, has_min;
    double scale, min;
    char *qjson; /* the quantization object's JSON text */
};

struct group {
    char **paths;
    size_t n_paths;
    struct wspec *w;
    size_t n_w, cap_w;
};

struct manifest {
    struct group *g;
    size_t n_g, cap_g;
    /* other top-level keys of model.json: key, value text */
    char **mkey, **mval;
    size_t n_meta, cap_meta;
};

static void manifest_release(struct manifest *mf)
{
    for (size_t i = 0; i < mf->n_g; i++) {
        struct group *g = &mf->g[i];
        for (size_t k = 0; k < g->n_paths; k++)
            wv__free(g->paths[k]);
        wv__free(g->paths);
        for (size_t k = 0; k < g->n_w; k++) {
            wv__free(g->w[k].name);
            wv__free(g->w[k].qjson);
        }
        wv__free(g->w);
    }
    wv__free(mf->g);
    for (size_t i = 0; i < mf->n_meta; i++) {
        wv__free(mf->mkey[i]);
        wv__free(mf->mval[i]);
    }
    wv__free(mf->mkey);
    wv__free(mf->mval);
    memset(mf, 0, sizeof *mf);
}

static int grow(void **p, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    void *q = wv__realloc(*p, nc * sz);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

static int jfail(struct wv__json *j, const char *msg)
{
    return wv__seterr(j->err, WV_CORRUPT, "%s: %s (at byte %zu)", j->what,
                      msg, (size_t)(j->p - j->start));
}

/* A JSON number (any syntax JSON allows) as a double. */
static int json_double(struct wv__json *j, double *out)
{
    int rc;
    wv__json_ws(j);
    const char *s = j->p;
    if (s >= j->end || !(*s == '-' || (*s >= '0' && *s <= '9')))
        return jfail(j, "expected a number");
    if ((rc = wv__json_skip(j)) != WV_OK)
        return rc;
    size_t n = (size_t)(j->p - s);
    char buf[128];
    if (n >= sizeof buf)
        return jfail(j, "number too long");
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e = NULL;
    errno = 0;
    double v = strtod(buf, &e);
    if (e != buf + n || isnan(v) || isinf(v))
        return jfail(j, "number out of range");
    *out = v;
    return WV_OK;
}

/* Is the value that follows `null`? (consumed if so) */
static bool json_null(struct wv__json *j)
{
    wv__json_ws(j);
    if (j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
        j->p += 4;
        return true;
    }
    return false;
}

static int parse_quant(struct wv__json *j, struct wspec *w)
{
    int rc = WV_OK;
    char *k = NULL, *v = NULL;
    size_t kl, vl;
    wv__json_ws(j);
    const char *start = j->p;
    struct wv__err *err = j->err;
    if ((rc = wv__json_expect(j, '{')) != WV_OK)
        return rc;
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "dtype") == 0) {
            WV_TRY(wv__json_string(j, &v, &vl));
            if (strcmp(v, "uint8") == 0)
                w->q = Q_U8;
            else if (strcmp(v, "uint16") == 0)
                w->q = Q_U16;
            else if (strcmp(v, "float16") == 0)
                w->q = Q_F16;
            else {
                rc = wv__seterr(j->err, WV_UNSUPPORTED,
                                "%s: weight '%.200s': unknown "
                                "quantization dtype '%.40s' (uint8, "
                                "uint16, float16)",
                                j->what, w->name, v);
                goto out;
            }
            wv__free(v);
            v = NULL;
        } else if (strcmp(k, "scale") == 0 && !json_null(j)) {
            WV_TRY(json_double(j, &w->scale));
            w->has_scale = true;
        } else if (strcmp(k, "min") == 0 && !json_null(j)) {
            WV_TRY(json_double(j, &w->min));
            w->has_min = true;
        } else {
            WV_TRY(wv__json_skip(j));
        }
    }
    WV_TRY(it.rc);
    w->qjson = wv__malloc((size_t)(j->p - start) + 1);
    WV_CHECK(w->qjson != NULL, WV_NOMEM, "out of memory");
    memcpy(w->qjson, start, (size_t)(j->p - start));
    w->qjson[j->p - start] = '\0';
out:
    wv__free(k);
    wv__free(v);
    return rc;
}

static int parse_spec(struct wv__json *j, struct wspec *w)
{
    int rc = WV_OK;
    char *k = NULL, *v = NULL;
    size_t kl, vl;
    bool have_shape = false, have_q = false;
    struct wv__err *err = j->err;
    WV_TRY(wv__json_expect(j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "name") == 0) {
            WV_CHECK(w->name == NULL, WV_CORRUPT,
                     "%s: a weight has two names", j->what);
            WV_TRY(wv__json_string(j, &w->name, &w->name_len));
            WV_CHECK(memchr(w->name, '\0', w->name_len) == NULL,
                     WV_CORRUPT, "%s: a weight name holds a NUL byte",
                     j->what);
        } else if (strcmp(k, "shape") == 0) {
            WV_TRY(wv__json_expect(j, '['));
            w->ndim = 0;
            if (!wv__json_eat(j, ']')) {
                do {
                    WV_CHECK(w->ndim < WV_MAX_DIMS, WV_UNSUPPORTED,
                             "%s: a weight has more than %d dimensions",
                             j->what, WV_MAX_DIMS);
                    WV_TRY(wv__json_u64(j, &w->shape[w->ndim]));
                    w->ndim++;
                } while (wv__json_eat(j, ','));
                WV_TRY(wv__json_expect(j, ']'));
            }
            have_shape = true;
        } else if (strcmp(k, "dtype") == 0) {
            WV_TRY(wv__json_string(j, &v, &vl));
            if (strcmp(v, "float32") == 0)
                w->type = T_F32;
            else if (strcmp(v, "int32") == 0)
                w->type = T_I32;
            else if (strcmp(v, "bool") == 0)
                w->type = T_BOOL;
            else if (strcmp(v, "string") == 0)
                w->type = T_STRING;
            else {
                rc = wv__seterr(j->err, WV_UNSUPPORTED,
                                "%s: a weight has the dtype '%.40s' "
                                "(read: float32, int32, bool, string)",
                                j->what, v);
                goto out;
            }
            wv__free(v);
            v = NULL;
        } else if (strcmp(k, "quantization") == 0 && !json_null(j)) {
            WV_CHECK(!have_q, WV_CORRUPT,
                     "%s: a weight has two quantization objects",
                     j->what);
            have_q = true;
            WV_TRY(parse_quant(j, w));
        } else {
            WV_TRY(wv__json_skip(j));
        }
    }
    WV_TRY(it.rc);
    WV_CHECK(w->name != NULL, WV_CORRUPT, "%s: a weight has no name",
             j->what);
    WV_CHECK(have_shape, WV_CORRUPT, "%s: weight '%.200s' has no shape",
             j->what, w->name);
    WV_CHECK(w->type != 0, WV_CORRUPT, "%s: weight '%.200s' has no dtype",
             j->what, w->name);
    w->numel = 1;
    for (int i = 0; i < w->ndim; i++)
        WV_CHECK(!wv__mul_overflow(w->numel, w->shape[i], &w->numel),
                 WV_CORRUPT, "%s: weight '%.200s': its shape overflows",
                 j->what, w->name);
    if (have_q) {
        WV_CHECK(w->q != Q_NONE, WV_CORRUPT,
                 "%s: weight '%.200s': quantization without a dtype",
                 j->what, w->name);
        WV_CHECK(w->q == Q_F16 || (w->has_scale && w->has_min), WV_CORRUPT,
                 "%s: weight '%.200s': %s quantization without scale and "
                 "min",
                 j->what, w->name, w->q == Q_U8 ? "uint8" : "uint16");
        WV_CHECK(w->type == T_F32 || (w->type == T_I32 && w->q != Q_F16),
                 WV_UNSUPPORTED,
                 "%s: weight '%.200s': %s quantization of a weight of "
                 "dtype %s "
                 "(tfjs dequantises float32, and int32 from uint8/uint16)",
                 j->what, w->name,
                 w->q == Q_F16 ? "float16" : w->q == Q_U8 ? "uint8" : "uint16",
                 w->type == T_I32 ? "int32" : w->type == T_BOOL ? "bool"
                                                                : "string");
    }
out:
    wv__free(k);
    wv__free(v);
    return rc;
}

static int parse_group(struct wv__json *j, struct group *g)
{
    int rc = WV_OK;
    char *k = NULL;
    size_t kl, cap_p = 0;
    bool have_paths = false, have_weights = false;
    struct wv__err *err = j->err;
    WV_TRY(wv__json_expect(j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "paths") == 0 && !have_paths) {
            have_paths = true;
            WV_TRY(wv__json_expect(j, '['));
            if (!wv__json_eat(j, ']')) {
                do {
                    char *s;
                    size_t sl;
                    WV_CHECK(g->n_paths < MAX_PATHS, WV_UNSUPPORTED,
                             "%s: a group has over %d paths", j->what,
                             MAX_PATHS);
                    WV_CHECK(grow((void **)&g->paths, &cap_p, g->n_paths,
                                  sizeof *g->paths) == 0,
                             WV_NOMEM, "out of memory");
                    WV_TRY(wv__json_string(j, &s, &sl));
                    g->paths[g->n_paths++] = s;
                    WV_CHECK(sl > 0 && memchr(s, '\0', sl) == NULL,
                             WV_CORRUPT,
                             "%s: a shard path is empty or holds a NUL "
                             "byte",
                             j->what);
                } while (wv__json_eat(j, ','));
                WV_TRY(wv__json_expect(j, ']'));
            }
        } else if (strcmp(k, "weights") == 0 && !have_weights) {
            have_weights = true;
            WV_TRY(wv__json_expect(j, '['));
            if (!wv__json_eat(j, ']')) {
                do {
                    WV_CHECK(grow((void **)&g->w, &g->cap_w, g->n_w,
                                  sizeof *g->w) == 0,
                             WV_NOMEM, "out of memory");
                    memset(&g->w[g->n_w], 0, sizeof *g->w);
                    g->n_w++;
                    WV_TRY(parse_spec(j, &g->w[g->n_w - 1]));
                } while (wv__json_eat(j, ','));
                WV_TRY(wv__json_expect(j, ']'));
            }
        } else {
            WV_TRY(wv__json_skip(j));
        }
    }
    WV_TRY(it.rc);
    WV_CHECK(have_paths && have_weights, WV_CORRUPT,
             "%s: a weights group needs \"paths\" and \"weights\"", j->what);
out:
    wv__free(k);
    return rc;
}

static int parse_groups(struct wv__json *j, struct manifest *mf)
{
    int rc = WV_OK;
    struct wv__err *err = j->err;
    WV_TRY(wv__json_expect(j, '['));
    if (wv__json_eat(j, ']'))
        goto out;
    do {
        WV_CHECK(mf->n_g < MAX_GROUPS, WV_UNSUPPORTED,
                 "%s: over %d weight groups", j->what, MAX_GROUPS);
        WV_CHECK(grow((void **)&mf->g, &mf->cap_g, mf->n_g, sizeof *mf->g) ==
                     0,
                 WV_NOMEM, "out of memory");
        memset(&mf->g[mf->n_g], 0, sizeof *mf->g);
        mf->n_g++;
        WV_TRY(parse_group(j, &mf->g[mf->n_g - 1]));
    } while (wv__json_eat(j, ','));
    WV_TRY(wv__json_expect(j, ']'));
out:
    return rc;
}

static int add_meta(struct manifest *mf, char *key, char *val)
{
    if (grow((void **)&mf->mkey, &mf->cap_meta, mf->n_meta,
             sizeof *mf->mkey) != 0)
        return -1;
    size_t c = mf->cap_meta;
    void *q = wv__realloc(mf->mval, c * sizeof *mf->mval);
    if (q == NULL)
        return -1;
    mf->mval = q;
    mf->mkey[mf->n_meta] = key;
    mf->mval[mf->n_meta] = val;
    mf->n_meta++;
    return 0;
}

/* model.json or a bare manifest, whole. */
static int parse_json(const char *buf, size_t n, const char *what,
                      struct manifest *mf, struct wv__err *err)
{
    int rc = WV_OK;
    char *k = NULL, *val = NULL, *key = NULL;
    size_t kl, vl;
    bool have_manifest = false;
    struct wv__json j = {buf, buf, buf + n, what, err};
    wv__json_ws(&j);
    if (j.p < j.end && *j.p == '[') {
        WV_TRY(parse_groups(&j, mf));
        have_manifest = true;
    } else {
        WV_TRY(wv__json_expect(&j, '{'));
        struct wv__json_obj it = WV__JSON_OBJ(&j);
        while (wv__json_obj_next(&it, &k, &kl)) {
            if (strcmp(k, "weightsManifest") == 0) {
                WV_CHECK(!have_manifest, WV_CORRUPT,
                         "%s: two weightsManifest keys", what);
                WV_TRY(parse_groups(&j, mf));
                have_manifest = true;
                continue;
            }
            WV_CHECK(memchr(k, '\0', kl) == NULL, WV_CORRUPT,
                     "%s: a key holds a NUL byte", what);
            wv__json_ws(&j);
            if (j.p < j.end && *j.p == '"') {
                WV_TRY(wv__json_string(&j, &val, &vl));
                if (memchr(val, '\0', vl) != NULL) {
                    wv__free(val);
                    val = NULL;
                }
            } else {
                const char *s = j.p;
                WV_TRY(wv__json_skip(&j));
                val = wv__malloc((size_t)(j.p - s) + 1);
                WV_CHECK(val != NULL, WV_NOMEM, "out of memory");
                memcpy(val, s, (size_t)(j.p - s));
                val[j.p - s] = '\0';
            }
            if (val) {
                key = wv__malloc(kl + 6);
                WV_CHECK(key != NULL, WV_NOMEM, "out of memory");
                memcpy(key, "tfjs.", 5);
                memcpy(key + 5, k, kl + 1);
                WV_CHECK(add_meta(mf, key, val) == 0, WV_NOMEM,
                         "out of memory");
                key = val = NULL;
            }
        }
        WV_TRY(it.rc);
    }
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_CORRUPT, "%s: text after the JSON value",
             what);
    WV_CHECK(have_manifest, WV_CORRUPT,
             "%s: a TF.js model.json without a weightsManifest", what);
out:
    wv__free(k);
    wv__free(val);
    wv__free(key);
    return rc;
}

int wv__tfjs_check_manifest(const void *buf, size_t n, size_t *n_weights,
                            struct wv__err *err)
{
    struct manifest mf = {0};
    int rc = parse_json(buf, n, "<memory>", &mf, err);
    size_t c = 0;
    for (size_t i = 0; i < mf.n_g; i++)
        c += mf.g[i].n_w;
    *n_weights = rc == WV_OK ? c : 0;
    manifest_release(&mf);
    return rc;
}

/* ---- detection ----------------------------------------------------------- */

static int probe(const struct wv__src *src, const unsigned char *h, size_t n)
{
    size_t i = 0;
    while (i < n && (h[i] == ' ' || h[i] == '\t' || h[i] == '\n' ||
                     h[i] == '\r'))
        i++;
    if (i >= n || (h[i] != '{' && h[i] != '['))
        return 0;
    if (src->size > JSON_MAX)
        return 0;
    /* Look for the key a manifest must have ("weightsManifest" in an
     * object, a group's "weights" in an array) in the first MiB. */
    size_t len = src->size < ((size_t)1 << 20) ? (size_t)src->size
                                                : ((size_t)1 << 20);
    const unsigned char *p = src->map;
    void *tmp = NULL;
    int found = 0;
    if (p == NULL) {
        struct wv__err e = {0};
        tmp = wv__malloc(len ? len : 1);
        if (tmp == NULL || wv__src_read(src, 0, tmp, len, &e) != WV_OK)
            goto out;
        p = tmp;
    }
    if (h[i] == '{')
        found = memmem(p, len, "\"weightsManifest\"", 17) != NULL;
    else
        found = memmem(p, len, "\"weights\"", 9) != NULL;
out:
    wv__free(tmp);
    return found;
}

/* ---- reading ------------------------------------------------------------- */

struct shard {
    int fd;
    struct wv__src src;
    char *path;
    uint64_t start; /* offset in the group's concatenation */
};

/* Resolve a shard path against the manifest's directory; refuse escapes. */
static int shard_path(const char *what, const char *dir, const char *real_dir,
                      const char *rel, char **out, struct wv__err *err)
{
    int rc = WV_OK;
    char *p = NULL, *real = NULL;
    *out = NULL;
    WV_CHECK(rel[0] != '/', WV_CORRUPT,
             "%s: shard path '%.200s' is absolute (refused: shards must be "
             "inside the model's directory)",
             what, rel);
    for (const char *c = rel; *c;) {
        size_t l = strcspn(c, "/\\");
        WV_CHECK(!(l == 2 && c[0] == '.' && c[1] == '.'), WV_CORRUPT,
                 "%s: shard path '%.200s' leaves the model's directory "
                 "(refused)",
                 what, rel);
        c += l;
        if (*c)
            c++;
    }
    size_t dl = strlen(dir), rl = strlen(rel);
    p = wv__malloc(dl + rl + 2);
    WV_CHECK(p != NULL, WV_NOMEM, "out of memory");
    memcpy(p, dir, dl);
    p[dl] = '/';
    memcpy(p + dl + 1, rel, rl + 1);
    real = realpath(p, NULL);
    WV_CHECK(real != NULL, errno == ENOENT ? WV_NOTFOUND : WV_IO,
             "%s: shard %s: %s", what, p, strerror(errno));
    size_t ll = strlen(real_dir);
    WV_CHECK(strncmp(real, real_dir, ll) == 0 &&
                 (real[ll] == '/' || (ll == 1 && real_dir[0] == '/')),
             WV_CORRUPT,
             "%s: shard path '%.200s' resolves outside the model's "
             "directory (refused)",
             what, rel);
    *out = p;
    p = NULL;
out:
    free(real); /* from realpath(): the C library's allocator */
    wv__free(p);
    return rc;
}


/* Copy [off, off+len) of the group's concatenated shards into dst. */
static int gather(const struct shard *sh, size_t n, uint64_t off,
                  unsigned char *dst, uint64_t len, struct wv__err *err)
{
    int rc = WV_OK;
    for (size_t k = 0; k < n && len > 0; k++) {
        uint64_t s = sh[k].start, e = s + sh[k].src.size;
        if (off >= e)
            continue;
        uint64_t take = e - off < len ? e - off : len;
        WV_TRY(wv__src_read(&sh[k].src, off - s, dst, (size_t)take, err));
        dst += take;
        off += take;
        len -= take;
    }
    WV_CHECK(len == 0, WV_CORRUPT, "tfjs: read past the shards");
out:
    return rc;
}

/* JavaScript's Math.round, then ToInt32 (as an Int32Array stores it). */
static int32_t js_round_int32(double x)
{
    double r = floor(x);
    if (x - r >= 0.5)
        r += 1.0;
    if (!isfinite(r))
        return 0;
    double m = fmod(r, 4294967296.0);
    if (m < 0)
        m += 4294967296.0;
    uint32_t u = (uint32_t)m;
    return (int32_t)u;
}

/* float16 bits to float32 bits, exactly (subnormals normalised; infinities
 * and NaNs keep their payload shifted into place). */
static uint32_t half_bits_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f)
        return sign | 0x7f800000u | (man << 13);
    if (exp != 0)
        return sign | ((exp + 112) << 23) | (man << 13);
    if (man == 0)
        return sign;
    int e = 113;
    while (!(man & 0x400)) {
        man <<= 1;
        e--;
    }
    return sign | ((uint32_t)e << 23) | ((man & 0x3ff) << 13);
}

static void dequantise(const struct wspec *w, const unsigned char *q,
                       unsigned char *out)
{
    for (uint64_t i = 0; i < w->numel; i++) {
        if (w->q == Q_F16) {
            wv__put32(out + 4 * i,
                      half_bits_to_float((uint16_t)(q[2 * i] |
                                                    q[2 * i + 1] << 8)));
            continue;
        }
        double v = w->q == Q_U8 ? q[i] : (double)(q[2 * i] | q[2 * i + 1] << 8);
        /* Two roundings, as JavaScript does them: no fused multiply-add. */
        volatile double prod = v * w->scale;
        double x = prod + w->min;
        if (w->type == T_F32) {
            float f = (float)x;
            uint32_t b;
            memcpy(&b, &f, 4);
            wv__put32(out + 4 * i, b);
        } else {
            wv__put32(out + 4 * i, (uint32_t)js_round_int32(x));
        }
    }
}

/* A string weight at *cur: its metadata value; *cur moves past it. */
static int read_strings(const char *what, const struct wspec *w,
                        const struct shard *sh, size_t n_sh, uint64_t total,
                        uint64_t *cur, struct wv__buf *o, struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char *s = NULL;
    WV_CHECK(w->numel <= (total - *cur) / 4, WV_CORRUPT,
             "%s: string weight '%.200s' has %llu elements but %llu bytes "
             "remain in its shards",
             what, w->name, (unsigned long long)w->numel,
             (unsigned long long)(total - *cur));
    if (w->ndim > 0) {
        char shs[256];
        wv__shape_str(w->ndim, w->shape, shs, sizeof shs);
        wv__buf_addf(o, "{\"shape\": %s, \"values\": [", shs);
    }
    for (uint64_t i = 0; i < w->numel; i++) {
        unsigned char lb[4];
        WV_CHECK(total - *cur >= 4, WV_CORRUPT,
                 "%s: string weight '%.200s' passes the end of its shards",
                 what, w->name);
        WV_TRY(gather(sh, n_sh, *cur, lb, 4, err));
        *cur += 4;
        uint64_t l = wv__le32(lb);
        WV_CHECK(l <= total - *cur, WV_CORRUPT,
                 "%s: string weight '%.200s': an element of %llu bytes "
                 "passes the end of its shards",
                 what, w->name, (unsigned long long)l);
        s = wv__malloc(l ? (size_t)l : 1);
        WV_CHECK(s != NULL, WV_NOMEM, "out of memory");
        WV_TRY(gather(sh, n_sh, *cur, s, l, err));
        *cur += l;
        if (i)
            wv__buf_adds(o, ", ");
        wv__buf_add_meta_value(o, s, (size_t)l, w->ndim > 0, false);
        wv__free(s);
        s = NULL;
    }
    if (w->ndim > 0)
        wv__buf_adds(o, "]}");
    WV_CHECK(!o->oom, WV_NOMEM, "out of memory");
out:
    wv__free(s);
    return rc;
}

static int set_meta2(wv_model *m, const char *pfx, const char *name,
                     const char *val, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__buf k = {0};
    wv__buf_addf(&k, "%s%s", pfx, name);
    WV_CHECK(!k.oom && wv_model_set_meta(m, k.p, val) == WV_OK, WV_NOMEM,
             "out of memory");
out:
    wv__buf_release(&k);
    return rc;
}

/* One group's weights into m. Its shards are the files its paths name
 * (below dir), or, when mem is given (the fuzz harness), all that source. */
static int load_group(const char *what, const struct group *g,
                      const char *dir, const char *real_dir,
                      const struct wv__src *mem, struct wv__expand *ex,
                      unsigned flags, wv_model *m, bool *any_meta,
                      struct wv__err *err)
{
    int rc = WV_OK;
    struct shard *sh = NULL;
    size_t n_open = 0;
    unsigned char *buf = NULL, *deq = NULL;
    struct wv__buf val = {0};
    uint64_t total = 0, need = 0;
    bool keep_q = (flags & WV_LOAD_TFJS_QUANTIZED) != 0;

    sh = wv__calloc(g->n_paths + 1, sizeof *sh);
    WV_CHECK(sh != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_paths; i++) {
        sh[i].fd = -1;
        n_open++;
        if (mem) {
            sh[i].src = *mem;
        } else {
            WV_TRY(shard_path(what, dir, real_dir, g->paths[i], &sh[i].path,
                              err));
            /* the shards are input too: the bound scales with them */
            WV_TRY(wv__open_part(what, "shard", sh[i].path,
                                 !(flags & WV_LOAD_PREAD), m, ex, &sh[i].fd,
                                 &sh[i].src, err));
        }
        sh[i].start = total;
        WV_CHECK(!wv__add_overflow(total, sh[i].src.size, &total), WV_RANGE,
                 "%s: shard sizes overflow", what);
    }
    /* The bytes the manifest describes (strings: at least their lengths)
     * against what the shards hold, before reading any. */
    for (size_t i = 0; i < g->n_w; i++) {
        const struct wspec *w = &g->w[i];
        uint64_t es = w->q == Q_U8 ? 1 : w->q ? 2 : w->type == T_BOOL ? 1 : 4;
        uint64_t b;
        WV_CHECK(!wv__mul_overflow(w->numel, es, &b) &&
                     !wv__add_overflow(need, b, &need),
                 WV_CORRUPT, "%s: the weights' sizes overflow", what);
    }
    WV_CHECK(need <= total, WV_CORRUPT,
             "%s: the weights of group [%s%s] need %llu bytes but its %zu "
             "shard(s) hold %llu",
             what, g->n_paths ? g->paths[0] : "", g->n_paths > 1 ? ", ..." : "",
             (unsigned long long)need, g->n_paths, (unsigned long long)total);

    uint64_t cur = 0;
    for (size_t i = 0; i < g->n_w; i++) {
        const struct wspec *w = &g->w[i];
        if (w->type == T_STRING) {
            val.len = 0;
            WV_TRY(read_strings(what, w, sh, g->n_paths, total, &cur, &val,
                                err));
            WV_TRY(set_meta2(m, "tfjs.string.", w->name, val.p, err));
            *any_meta = true;
            continue;
        }
        uint64_t es = w->q == Q_U8 ? 1 : w->q ? 2 : w->type == T_BOOL ? 1 : 4;
        uint64_t nb = w->numel * es; /* checked above */
        WV_CHECK(nb <= total - cur, WV_CORRUPT,
                 "%s: weight '%.200s' passes the end of its shards", what,
                 w->name);
        WV_CHECK(nb <= SIZE_MAX, WV_RANGE, "%s: weight '%.200s' too large",
                 what, w->name);
        WV_CHECK(wv_model_find(m, w->name) == NULL, WV_CORRUPT,
                 "%s: two weights are named '%.200s'", what, w->name);
        const unsigned char *d = (const unsigned char *)"";
        void *owned = NULL;
        size_t k = 0;
        while (k + 1 < g->n_paths && cur >= sh[k].start + sh[k].src.size)
            k++;
        if (nb == 0) {
            /* nothing to read */
        } else if (cur + nb <= sh[k].start + sh[k].src.size) {
            WV_TRY(wv__src_data(&sh[k].src, cur - sh[k].start, nb, &d, &owned,
                                err));
        } else {
            buf = wv__malloc((size_t)nb);
            WV_CHECK(buf != NULL, WV_NOMEM, "out of memory");
            WV_TRY(gather(sh, g->n_paths, cur, buf, nb, err));
            d = buf;
            owned = buf;
            buf = NULL;
        }
        cur += nb;
        wv_dtype dt;
        if (w->q != Q_NONE && keep_q) {
            dt = w->q == Q_U8 ? WV_U8 : w->q == Q_U16 ? WV_U16 : WV_F16;
            rc = set_meta2(m, "tfjs.quantization.", w->name, w->qjson, err);
            if (rc != WV_OK) {
                wv__free(owned);
                goto out;
            }
            *any_meta = true;
        } else if (w->q != Q_NONE) {
            WV_CHECK(w->numel <= SIZE_MAX / 4, WV_RANGE,
                     "%s: weight '%.200s' too large", what, w->name);
            deq = wv__malloc(w->numel ? (size_t)w->numel * 4 : 1);
            if (deq == NULL)
                wv__free(owned);
            WV_CHECK(deq != NULL, WV_NOMEM, "out of memory");
            dequantise(w, d, deq);
            wv__free(owned);
            owned = deq;
            d = deq;
            deq = NULL;
            nb = w->numel * 4;
            dt = w->type == T_F32 ? WV_F32 : WV_I32;
        } else {
            dt = w->type == T_F32 ? WV_F32 : w->type == T_I32 ? WV_I32
                                                               : WV_BOOL;
            if (dt == WV_BOOL)
                for (uint64_t b = 0; b < nb; b++)
                    if (d[b] > 1) {
                        wv__free(owned);
                        WV_CHECK(0, WV_CORRUPT,
                                 "%s: bool weight '%.200s' holds the byte %u",
                                 what, w->name, d[b]);
                    }
        }
        rc = wv__model_add(m, w->name, w->name_len, dt, w->ndim, w->shape, d,
                           (size_t)nb, owned, err);
        WV_TRY(rc);
    }
    WV_CHECK(cur == total, WV_CORRUPT,
             "%s: the weights of group [%s%s] take %llu bytes but its %zu "
             "shard(s) hold %llu",
             what, g->n_paths ? g->paths[0] : "", g->n_paths > 1 ? ", ..." : "",
             (unsigned long long)cur, g->n_paths, (unsigned long long)total);
out:
    for (size_t i = 0; i < n_open; i++) {
        if (sh[i].fd >= 0)
            close(sh[i].fd);
        wv__free(sh[i].path);
    }
    wv__free(sh);
    wv__free(buf);
    wv__free(deq);
    wv__buf_release(&val);
    return rc;
}

int wv__tfjs_check_load(const void *json, size_t n, const void *data,
                        size_t dn, unsigned flags, size_t *n_tensors,
                        struct wv__err *err)
{
    int rc = WV_OK;
    struct manifest mf = {0};
    wv_model *m = NULL;
    bool any_meta = false;
    struct wv__src mem = {.fd = -1, .size = dn,
                          .map = data ? data : (const void *)"",
                          .name = "<shard>"};
    *n_tensors = 0;
    WV_TRY(parse_json(json, n, "<memory>", &mf, err));
    WV_CHECK(wv_model_new(&m) == WV_OK, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < mf.n_g; i++) {
        /* the shards repeat `data`: few, so that memory stays bounded */
        WV_CHECK(mf.g[i].n_paths <= 64, WV_UNSUPPORTED,
                 "<memory>: over 64 shards in a group");
        WV_TRY(load_group("<memory>", &mf.g[i], NULL, NULL, &mem, NULL,
                          flags, m, &any_meta, err));
    }
    *n_tensors = wv_model_count(m);
out:
    wv_model_free(m);
    manifest_release(&mf);
    return rc;
}

static int load(const struct wv__src *src, unsigned flags, wv_model *m,
                struct wv__err *err)
{
    int rc = WV_OK;
    char *jbuf = NULL, *dir = NULL, *real_dir = NULL;
    struct manifest mf = {0};
    bool any_meta = false;

    WV_CHECK(src->size <= JSON_MAX, WV_RANGE,
             "%s: a TF.js manifest over 256 MiB is not read", src->name);
    jbuf = wv__malloc(src->size ? (size_t)src->size : 1);
    WV_CHECK(jbuf != NULL, WV_NOMEM, "out of memory");
    WV_TRY(wv__src_read(src, 0, jbuf, (size_t)src->size, err));
    WV_TRY(parse_json(jbuf, (size_t)src->size, src->name, &mf, err));
    WV_CHECK(src->fd >= 0 && src->remote_read == NULL, WV_UNSUPPORTED,
             "%s: a TF.js manifest needs its shard files beside it: load "
             "the model.json by its path",
             src->name);
    const char *slash = strrchr(src->name, '/');
    size_t dl = slash ? (size_t)(slash - src->name) : 1;
    dir = wv__malloc(dl + 1);
    WV_CHECK(dir != NULL, WV_NOMEM, "out of memory");
    if (slash)
        memcpy(dir, src->name, dl);
    else
        dir[0] = '.';
    if (slash && dl == 0) {
        dir[0] = '/';
        dl = 1;
    }
    dir[dl] = '\0';
    real_dir = realpath(dir, NULL);
    WV_CHECK(real_dir != NULL, WV_IO, "%s: its directory: %s", src->name,
             strerror(errno));
    for (size_t i = 0; i < mf.n_meta; i++) {
        WV_CHECK(wv_model_set_meta(m, mf.mkey[i], mf.mval[i]) == WV_OK,
                 WV_NOMEM, "out of memory");
        any_meta = true;
    }
    for (size_t i = 0; i < mf.n_g; i++)
        WV_TRY(load_group(src->name, &mf.g[i], dir, real_dir, NULL,
                          src->ex, flags, m, &any_meta, err));
    m->meta_state = any_meta ? WV__META_FROM_FILE : WV__META_NONE;
out:
    free(real_dir); /* realpath()'s */
    wv__free(dir);
    wv__free(jbuf);
    manifest_release(&mf);
    return rc;
}

/* ==== writing ===============================================================
 *
 * OUT is DIR/model.json (wv convert also takes a directory): the tensors go,
 * in the set's order, into one weight group whose bytes are cut into shards
 * of opts->shard_size bytes (DEFAULT_SHARD when 0; tfjs's own 4 MiB),
 * DIR/group1-shardKofN.bin, a tensor crossing shard boundaries as tfjs
 * writes them. F32, I32 and BOOL are float32, int32 and bool; F16 is a
 * float32 weight with float16 quantization (the half values stored as they
 * are, widened exactly by a reader); other dtypes are refused (--dtype F32
 * converts floats). uint8/uint16 quantization is not written, nor string
 * weights (tfjs.string.* metadata stays behind: a warning-free loss only
 * of text a graph model kept).
 *
 * model.json: the "tfjs.<key>" metadata a TF.js source left (its
 * modelTopology, format, ...) are its top-level keys again, values that
 * are whole JSON values as they are and others as strings ("format" and
 * "generatedBy" always strings), so a layers or graph model read by wv is
 * written back loadable; "convertedBy" names weightvault. A set without
 * them but with a Keras model_config (a Keras .h5) is a layers model
 * tfjs-layers loads (keras_topology() below); any other set gets a
 * weights-only model.json: {"format": "weights-only", "generatedBy":
 * "weightvault V", "convertedBy": null, "weightsManifest"}.
 *
 * Shards are written first, each to its own temporary file, fsynced when
 * full; they are side files of model.json (core.h): renamed only once
 * model.json is written too, model.json last, so a failure leaves the
 * previous model whole. Shards of the previous version with another count
 * (group1-shardKofM.bin, M not the new count) are removed after. */

#define DEFAULT_SHARD ((uint64_t)4 << 20)

struct ssink {
    struct wv__wfile *main; /* model.json: the shards are its side files */
    struct wv__wfile *f;
    bool open;
    uint64_t in_cur, size;
    uint64_t idx, n;
    const char *dir;
    size_t dir_len;
    char *path;
    int rc;
    struct wv__err *err;
};

static void shard_name(char *o, size_t n, uint64_t k, uint64_t total)
{
    snprintf(o, n, "group1-shard%lluof%llu.bin", (unsigned long long)k + 1,
             (unsigned long long)total);
}

static bool shard_sink(void *arg, const void *p, size_t n)
{
    struct ssink *s = arg;
    const unsigned char *b = p;
    while (n > 0 && s->rc == WV_OK) {
        if (!s->open) {
            size_t k = s->dir_len;
            memcpy(s->path, s->dir, k);
            shard_name(s->path + k, 64, s->idx, s->n);
            s->rc = wv__wfile_side(s->main, s->path, &s->f);
            if (s->rc != WV_OK)
                break;
            s->open = true;
            s->in_cur = 0;
        }
        uint64_t room = s->size - s->in_cur;
        size_t k = n < room ? n : (size_t)room;
        wv__wfile_write(s->f, b, k);
        s->in_cur += k;
        b += k;
        n -= k;
        if (s->in_cur == s->size) {
            s->open = false;
            s->idx++;
            s->rc = wv__wfile_seal(s->f); /* renamed with model.json */
        }
    }
    return s->rc == WV_OK;
}

/* Is `nm` group1-shardKofM.bin (decimal, no leading zeros, 1 <= K <= M)
 * with M != n: a shard of another version? */
static bool stale_shard(const char *nm, uint64_t n)
{
    uint64_t k = 0, mm = 0;
    const char *p = nm;
    if (strncmp(p, "group1-shard", 12) != 0)
        return false;
    p += 12;
    for (int part = 0; part < 2; part++) {
        uint64_t *v = part ? &mm : &k;
        if (*p < '1' || *p > '9')
            return false;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (++digits > 18)
                return false;
            *v = *v * 10 + (uint64_t)(*p++ - '0');
        }
        if (part == 0) {
            if (strncmp(p, "of", 2) != 0)
                return false;
            p += 2;
        }
    }
    return strcmp(p, ".bin") == 0 && k <= mm && mm != n;
}

/* stale_shard for wv__wfile_drop_stale: arg is the new shard count. */
static bool stale_shard_of(const char *nm, void *arg)
{
    return stale_shard(nm, *(const uint64_t *)arg);
}

/* Is the text one whole JSON value? */
static bool whole_json(const char *v)
{
    struct wv__err e = {0};
    struct wv__json j = {v, v, v + strlen(v), "", &e};
    if (wv__json_skip(&j) != WV_OK)
        return false;
    wv__json_ws(&j);
    return j.p == j.end;
}

/* ---- a Keras model_config as a tfjs-layers topology ----------------------
 * A Keras .h5's model_config (keras.model_config) becomes modelTopology
 * {"keras_version", "backend", "model_config"} with the two spellings of
 * Keras 3 that tfjs-layers 4 does not read made Keras 2 ones: a dtype
 * policy object ({"class_name": "DTypePolicy", "config": {"name": N}})
 * becomes the string N, and "batch_shape" becomes "batch_input_shape".
 * Weights are named as tfjs-layers looks them up: the h5 tensor name
 * "LAYER/LAYER/kernel:0" without its first component and ":0" suffix
 * ("LAYER/kernel"); the optimizer's tensors are left out. */

#define TOPO_DEPTH 64

/* The string value at j (j not moved), or NULL if it is not one. */
static char *peek_string(const struct wv__json *j)
{
    struct wv__json s = *j;
    char *v = NULL;
    size_t vl;
    wv__json_ws(&s);
    if (s.p >= s.end || *s.p != '"' || wv__json_string(&s, &v, &vl) != WV_OK)
        return NULL;
    return v;
}

/* Copy the JSON value at j into o, in one walk. An object whose
 * "class_name" is "DTypePolicy" and whose "config" object has a string
 * "name" is rolled back and written as that string. With name_out, the
 * first string "name" field of an object value is returned there (the
 * caller frees it). */
static int topo_copy(struct wv__json *j, struct wv__buf *o, int depth,
                     char **name_out)
{
    int rc = WV_OK;
    struct wv__err *err = j->err;
    char *k = NULL, *cfg_name = NULL, *v = NULL;
    size_t kl;
    WV_CHECK(depth < TOPO_DEPTH, WV_UNSUPPORTED,
             "%s: model_config nested more than %d deep", j->what,
             TOPO_DEPTH);
    wv__json_ws(j);
    if (j->p < j->end && *j->p == '{') {
        size_t start = o->len;
        bool policy = false;
        WV_TRY(wv__json_expect(j, '{'));
        wv__buf_addc(o, '{');
        bool first = true;
        struct wv__json_obj it = WV__JSON_OBJ(j);
        while (wv__json_obj_next(&it, &k, &kl)) {
            if (!first)
                wv__buf_adds(o, ", ");
            first = false;
            if (strcmp(k, "class_name") == 0 &&
                (v = peek_string(j)) != NULL) {
                policy = strcmp(v, "DTypePolicy") == 0;
                wv__free(v);
                v = NULL;
            } else if (strcmp(k, "name") == 0 && name_out &&
                       *name_out == NULL) {
                *name_out = peek_string(j);
            }
            if (strcmp(k, "batch_shape") == 0)
                wv__buf_adds(o, "\"batch_input_shape\"");
            else
                wv__json_put_string(o, k, kl);
            wv__buf_adds(o, ": ");
            WV_TRY(topo_copy(j, o, depth + 1,
                             strcmp(k, "config") == 0 && cfg_name == NULL
                                 ? &cfg_name
                                 : NULL));
        }
        WV_TRY(it.rc);
        wv__buf_addc(o, '}');
        if (policy && cfg_name != NULL) { /* the policy as its name */
            o->len = start;
            wv__json_put_string(o, cfg_name, strlen(cfg_name));
        }
    } else if (j->p < j->end && *j->p == '[') {
        WV_TRY(wv__json_expect(j, '['));
        wv__buf_addc(o, '[');
        if (!wv__json_eat(j, ']')) {
            bool first = true;
            do {
                if (!first)
                    wv__buf_adds(o, ", ");
                first = false;
                WV_TRY(topo_copy(j, o, depth + 1, NULL));
            } while (wv__json_eat(j, ','));
            WV_TRY(wv__json_expect(j, ']'));
        }
        wv__buf_addc(o, ']');
    } else {
        const char *s = j->p;
        WV_TRY(wv__json_skip(j));
        wv__buf_add(o, s, (size_t)(j->p - s));
    }
out:
    wv__free(k);
    wv__free(cfg_name);
    return rc;
}

/* modelTopology from keras.model_config into o. */
static int keras_topology(const wv_model *m, const char *path,
                          struct wv__buf *o, struct wv__err *err)
{
    int rc = WV_OK;
    const char *cfg = wv_model_get_meta(m, "keras.model_config");
    const char *kv = wv_model_get_meta(m, "keras.keras_version");
    const char *be = wv_model_get_meta(m, "keras.backend");
    char what[600];
    snprintf(what, sizeof what, "%.500s: its keras.model_config", path);
    struct wv__json j = {cfg, cfg, cfg + strlen(cfg), what, err};
    wv__buf_adds(o, "{\"keras_version\": ");
    wv__json_put_string(o, kv ? kv : "", kv ? strlen(kv) : 0);
    wv__buf_adds(o, ", \"backend\": ");
    wv__json_put_string(o, be ? be : "tensorflow", be ? strlen(be) : 10);
    wv__buf_adds(o, ", \"model_config\": ");
    WV_TRY(topo_copy(&j, o, 0, NULL));
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_CORRUPT, "%s: text after the JSON value",
             what);
    wv__buf_addc(o, '}');
out:
    return rc;
}

/* A Keras tensor's name as tfjs-layers looks it up (its length into *n):
 * NULL for an optimizer's tensor, which a layers model leaves out. */
static const char *layers_name(const char *name, size_t *n)
{
    if (strncmp(name, "optimizer/", 10) == 0 ||
        strncmp(name, "optimizer_weights/", 18) == 0)
        return NULL;
    const char *s = strchr(name, '/');
    const char *p = s ? s + 1 : name;
    size_t l = strlen(p);
    if (l > 2 && strcmp(p + l - 2, ":0") == 0)
        l -= 2;
    *n = l;
    return p;
}

static int save(const wv_model *m, struct wv__wfile *f,
                const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    struct ssink s = {0};
    struct wv__buf o = {0}, tb = {0};
    uint64_t total = 0;
    const char *slash = strrchr(f->path, '/');
    bool topo = wv_model_get_meta(m, "tfjs.modelTopology") != NULL;
    bool keras = !topo && wv_model_get_meta(m, "keras.model_config") != NULL;
    size_t nl;

    s.size = opts->struct_size >= offsetof(wv_save_opts, shard_size) +
                                      sizeof opts->shard_size &&
                     opts->shard_size > 0
                 ? opts->shard_size
                 : DEFAULT_SHARD;
    s.dir = f->path;
    s.dir_len = slash ? (size_t)(slash - f->path) + 1 : 0;
    s.err = err;
    s.main = f;
    s.path = wv__malloc(s.dir_len + 64);
    WV_CHECK(s.path != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        wv_dtype to = wv__cast_target(t->dtype, opts->cast);
        if (keras && layers_name(t->name, &nl) == NULL)
            continue;
        WV_CHECK(to == WV_F32 || to == WV_F16 || to == WV_I32 ||
                     to == WV_BOOL,
                 WV_UNSUPPORTED,
                 "%s: tensor '%.200s' is %s, which TF.js does not hold "
                 "(float32, int32, bool, float16-quantized float32)%s",
                 f->path, t->name, wv_dtype_name(to),
                 wv__cast_target(to, WV_F32) == WV_F32 ? "; convert with "
                                                         "--dtype F32"
                                                       : "");
        total += wv__cast_nbytes(t, to);
    }
    s.n = total ? (total + s.size - 1) / s.size : 1;
    /* the topology checked before any file is written */
    if (keras) {
        WV_TRY(keras_topology(m, f->path, &tb, err));
        WV_CHECK(!tb.oom, WV_NOMEM, "out of memory");
    }

    /* the shards */
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        wv_dtype to = wv__cast_target(t->dtype, opts->cast);
        if (keras && layers_name(t->name, &nl) == NULL)
            continue;
        if (wv__tensor_stream(t, to, shard_sink, &s) != WV_OK &&
            s.rc == WV_OK)
            s.rc = wv__seterr(err, WV_NOMEM, "out of memory");
        WV_TRY(s.rc);
    }
    if (total == 0) { /* one empty shard */
        memcpy(s.path, s.dir, s.dir_len);
        shard_name(s.path + s.dir_len, 64, 0, 1);
        WV_TRY(wv__wfile_side(f, s.path, &s.f));
        s.open = true;
    }
    if (s.open) {
        s.open = false;
        WV_TRY(wv__wfile_seal(s.f));
    }
    WV_TRY(wv__wfile_drop_stale(f, stale_shard_of, &s.n));

    /* model.json */
    wv__buf_adds(&o, "{");
    bool first = true;
    for (size_t i = 0; topo && i < m->n_meta; i++) {
        const char *k = m->meta[i].key, *v = m->meta[i].value;
        if (strncmp(k, "tfjs.", 5) != 0 || strncmp(k, "tfjs.string.", 12) == 0 ||
            strncmp(k, "tfjs.quantization.", 18) == 0 ||
            strcmp(k, "tfjs.convertedBy") == 0 ||
            strcmp(k, "tfjs.weightsManifest") == 0)
            continue;
        wv__buf_adds(&o, first ? "\n  " : ",\n  ");
        first = false;
        wv__json_put_string(&o, k + 5, strlen(k + 5));
        wv__buf_adds(&o, ": ");
        if (strcmp(k, "tfjs.format") != 0 &&
            strcmp(k, "tfjs.generatedBy") != 0 && whole_json(v))
            wv__buf_adds(&o, v);
        else
            wv__json_put_string(&o, v, strlen(v));
    }
    if (keras) {
        const char *kv = wv_model_get_meta(m, "keras.keras_version");
        wv__buf_adds(&o, "\n  \"format\": \"layers-model\",\n  "
                         "\"generatedBy\": ");
        if (kv) {
            struct wv__buf g = {0};
            wv__buf_adds(&g, "keras v");
            wv__buf_adds(&g, kv);
            wv__json_put_string(&o, g.p ? g.p : "", g.len);
            o.oom = o.oom || g.oom;
            wv__buf_release(&g);
        } else {
            wv__buf_addf(&o, "\"weightvault %s\"", wv_version_string());
        }
        wv__buf_adds(&o, ",\n  \"modelTopology\": ");
        wv__buf_add(&o, tb.p, tb.len);
        topo = true;
        first = false;
    } else if (!topo) {
        wv__buf_addf(&o, "\n  \"format\": \"weights-only\",\n  "
                         "\"generatedBy\": \"weightvault %s\"",
                     wv_version_string());
        first = false;
    }
    wv__buf_addf(&o, "%s\n  \"convertedBy\": %s%s%s,\n  \"weightsManifest\": "
                     "[{\"paths\": [",
                 first ? "" : ",", topo ? "\"weightvault " : "null",
                 topo ? wv_version_string() : "", topo ? "\"" : "");
    for (uint64_t k = 0; k < s.n; k++) {
        char nm[64];
        shard_name(nm, sizeof nm, k, s.n);
        wv__buf_addf(&o, "%s\"%s\"", k ? ", " : "", nm);
    }
    wv__buf_adds(&o, "], \"weights\": [");
    bool any = false;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        wv_dtype to = wv__cast_target(t->dtype, opts->cast);
        const char *name = t->name;
        nl = strlen(name);
        if (keras && (name = layers_name(t->name, &nl)) == NULL)
            continue;
        wv__buf_adds(&o, any ? ",\n    {\"name\": " : "\n    {\"name\": ");
        any = true;
        wv__json_put_string(&o, name, nl);
        wv__buf_adds(&o, ", \"shape\": [");
        for (int d = 0; d < t->ndim; d++)
            wv__buf_addf(&o, "%s%llu", d ? ", " : "",
                         (unsigned long long)t->shape[d]);
        wv__buf_addf(&o, "], \"dtype\": \"%s\"%s}",
                     to == WV_I32 ? "int32" : to == WV_BOOL ? "bool"
                                                            : "float32",
                     to == WV_F16 ? ", \"quantization\": {\"dtype\": "
                                    "\"float16\"}"
                                  : "");
    }
    wv__buf_adds(&o, "]}]\n}\n");
    WV_CHECK(!o.oom, WV_NOMEM, "out of memory");
    wv__wfile_write(f, o.p, o.len);
out:
    wv__buf_release(&o);
    wv__buf_release(&tb);
    wv__free(s.path);
    return rc;
}

const struct wv__format_ops wv__fmt_tfjs = {
    WV_FMT_TFJS, "tfjs", "model.json", probe, load, save, WV__SHARDS_OWN,
    NULL,
};
