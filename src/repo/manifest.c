/*
 * manifest.c -- checkpoint manifests: encoding, parsing, loading.
 *
 * A manifest is JSON (docs/repo-format.md), written deterministically so
 * its id, the SHA-256 of its bytes, depends only on its content:
 *
 *   {"weightvault_manifest": 1,
 *    "parent": "<64 hex>" or null,
 *    "branch": "main", "time": "2026-11-28T14:00:00Z", "message": "...",
 *    "chunk_size": 4194304,
 *    "metadata": {"k": "v", ...} or null, ["metadata_defaults": true,]
 *    "tensors": [
 *     {"name": "w", "dtype": "F32", "shape": [2, 3], "nbytes": 24,
 *      "chunks": ["<64 hex>", ...]},
 *     ...]}
 *
 * "metadata": null records a source whose metadata was explicitly absent
 * (a safetensors file without __metadata__), so a checkout writes the same
 * file back. Parsing checks every tensor: known dtype, shape within limits,
 * nbytes equal to the shape's size, and exactly ceil(nbytes / chunk_size)
 * chunks.
 *
 * A signed manifest has one more member, always the last:
 *    ...]},
 *    "signature": {"alg": "ed25519", "key": "<64 hex>", "sig": "<128 hex>"}}
 * The signature is over "wv-manifest-signature-v1\n" and the manifest as
 * it was before the member was added: the bytes up to the end of the value
 * before the member's comma, followed by "}\n". Parsing checks it, so a
 * parsed manifest knows whether its signature verifies (trust.c decides
 * what a checkout accepts); wv__manifest_sign adds the member.
 *
 * Calls down only: object.c (reading a manifest), crypt.c (Ed25519),
 * util.c, the JSON helpers and core.
 */
#include "core.h"
#include "crypt.h"
#include "json.h"
#include "object.h"
#include "repo.h"
#include "tensor.h"

void wv__manifest_release(struct wv__manifest *mf)
{
    wv__free(mf->branch);
    wv__free(mf->time);
    wv__free(mf->message);
    for (size_t i = 0; i < mf->n_meta; i++) {
        wv__free(mf->meta[i].key);
        wv__free(mf->meta[i].value);
    }
    wv__free(mf->meta);
    for (size_t i = 0; i < mf->n_tensors; i++) {
        wv__free(mf->tensors[i].name);
        wv__free(mf->tensors[i].chunks);
        wv__free(mf->tensors[i].shards);
        wv__free(mf->tensors[i].writers);
    }
    wv__free(mf->tensors);
    wv__free(mf->txn);
    wv__free(mf->parts);
    memset(mf, 0, sizeof *mf);
}

static void put_str(struct wv__buf *b, const char *s)
{
    if (s == NULL)
        wv__buf_adds(b, "null");
    else
        wv__json_put_string(b, s, strlen(s));
}

static void put_dims(struct wv__buf *b, int ndim, const uint64_t *v)
{
    wv__buf_addc(b, '[');
    for (int d = 0; d < ndim; d++)
        wv__buf_addf(b, "%s%llu", d ? ", " : "", (unsigned long long)v[d]);
    wv__buf_addc(b, ']');
}

static void put_ids(struct wv__buf *b, const unsigned char (*ids)[32],
                    size_t n)
{
    char hex[65];
    wv__buf_addc(b, '[');
    for (size_t c = 0; c < n; c++) {
        wv__hex(ids[c], 32, hex);
        wv__buf_addf(b, "%s\"%s\"", c ? ", " : "", hex);
    }
    wv__buf_addc(b, ']');
}

/* Version 2: a part record or a multi-writer checkpoint (fields a reader
 * of version 1 would ignore and then misread). */
static int manifest_version(const struct wv__manifest *mf)
{
    if (mf->txn || mf->n_parts)
        return 2;
    for (size_t i = 0; i < mf->n_tensors; i++)
        if (mf->tensors[i].n_shards || mf->tensors[i].n_writers)
            return 2;
    return 1;
}

int wv__manifest_encode(const struct wv__manifest *mf, struct wv__buf *b)
{
    wv__buf_addf(b, "{\"weightvault_manifest\": %d,\n \"parent\": ",
                 manifest_version(mf));
    put_str(b, mf->parent[0] ? mf->parent : NULL);
    wv__buf_adds(b, ",\n \"branch\": ");
    put_str(b, mf->branch);
    wv__buf_adds(b, ", \"time\": ");
    put_str(b, mf->time);
    wv__buf_adds(b, ", \"message\": ");
    put_str(b, mf->message ? mf->message : "");
    wv__buf_addf(b, ",\n \"chunk_size\": %llu,\n \"metadata\": ",
                 (unsigned long long)mf->chunk_size);
    if (mf->meta_absent && mf->n_meta == 0) {
        wv__buf_adds(b, "null");
    } else {
        wv__buf_addc(b, '{');
        for (size_t i = 0; i < mf->n_meta; i++) {
            if (i)
                wv__buf_adds(b, ", ");
            put_str(b, mf->meta[i].key);
            wv__buf_adds(b, ": ");
            put_str(b, mf->meta[i].value);
        }
        wv__buf_addc(b, '}');
    }
    if (mf->meta_default)
        wv__buf_adds(b, ", \"metadata_defaults\": true");
    if (mf->txn) {
        wv__buf_adds(b, ",\n \"part\": {\"txn\": ");
        put_str(b, mf->txn);
        wv__buf_addf(b, ", \"writer\": %u, \"n_writers\": %u}",
                     mf->writer, mf->n_writers);
    }
    if (mf->n_parts) {
        wv__buf_adds(b, ",\n \"parts\": [");
        for (size_t i = 0; i < mf->n_parts; i++)
            wv__buf_addf(b, "%s\"%s\"", i ? ", " : "", mf->parts[i]);
        wv__buf_addc(b, ']');
    }
    wv__buf_adds(b, ",\n \"tensors\": [");
    for (size_t i = 0; i < mf->n_tensors; i++) {
        const struct wv__mtensor *t = &mf->tensors[i];
        wv__buf_adds(b, i ? ",\n  {\"name\": " : "\n  {\"name\": ");
        put_str(b, t->name);
        wv__buf_addf(b, ", \"dtype\": \"%s\", \"shape\": ",
                     wv_dtype_name(t->dtype));
        put_dims(b, t->ndim, t->shape);
        wv__buf_addf(b, ", \"nbytes\": %llu", (unsigned long long)t->nbytes);
        if (mf->txn && t->has_region) {
            wv__buf_adds(b, ", \"region\": {\"global\": ");
            put_dims(b, t->ndim, t->gshape);
            wv__buf_adds(b, ", \"offset\": ");
            put_dims(b, t->ndim, t->goffset);
            wv__buf_addc(b, '}');
        }
        if (t->n_writers) {
            wv__buf_adds(b, ", \"writers\": [");
            for (size_t w = 0; w < t->n_writers; w++)
                wv__buf_addf(b, "%s%u", w ? ", " : "", t->writers[w]);
            wv__buf_addc(b, ']');
        }
        if (t->n_shards) {
            wv__buf_adds(b, ", \"shards\": [");
            for (size_t k = 0; k < t->n_shards; k++) {
                const struct wv__mshard *sh = &t->shards[k];
                wv__buf_addf(b, "%s{\"writer\": %u, \"offset\": ",
                             k ? ",\n   " : "\n   ", sh->writer);
                put_dims(b, t->ndim, sh->offset);
                wv__buf_adds(b, ", \"shape\": ");
                put_dims(b, t->ndim, sh->shape);
                wv__buf_adds(b, ", \"chunks\": ");
                put_ids(b, (const unsigned char(*)[32])t->chunks + sh->first,
                        sh->n_chunks);
                wv__buf_addc(b, '}');
            }
            wv__buf_adds(b, "]}");
        } else {
            wv__buf_adds(b, ", \"chunks\": ");
            put_ids(b, (const unsigned char(*)[32])t->chunks, t->n_chunks);
            wv__buf_addc(b, '}');
        }
    }
    wv__buf_adds(b, "]}\n");
    if (mf->has_sig && !b->oom) {
        char key[65], sig[129];
        wv__hex(mf->sig_key, 32, key);
        wv__hex(mf->sig, 64, sig);
        b->len -= 2; /* "}\n": the signature is the last member */
        wv__buf_addf(b, ",\n \"signature\": {\"alg\": \"ed25519\", \"key\": "
                        "\"%s\", \"sig\": \"%s\"}}\n",
                     key, sig);
    }
    return b->oom ? WV_NOMEM : WV_OK;
}

/* "signature": {"alg": "ed25519", "key": "<64 hex>", "sig": "<128 hex>"} */
static int parse_signature(struct wv__json *j, struct wv__manifest *mf)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *k = NULL, *v = NULL;
    size_t kl, vl;
    unsigned have = 0;
    WV_TRY(wv__json_expect(j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "alg") == 0 || strcmp(k, "key") == 0 ||
            strcmp(k, "sig") == 0) {
            unsigned bit = k[0] == 'a' ? 1u : k[0] == 'k' ? 2u : 4u;
            WV_CHECK(!(have & bit), WV_CORRUPT,
                     "%s: duplicate field \"%s\" in the signature", j->what,
                     k);
            have |= bit;
            WV_TRY(wv__json_string(j, &v, &vl));
            if (bit == 1)
                WV_CHECK(strcmp(v, "ed25519") == 0 && vl == 7, WV_FORMAT,
                         "%s: unknown signature algorithm '%.40s'", j->what,
                         v);
            else if (bit == 2)
                WV_CHECK(vl == 64 && wv__unhex(v, mf->sig_key, 32) == 0,
                         WV_CORRUPT, "%s: bad signature key", j->what);
            else
                WV_CHECK(vl == 128 && wv__unhex(v, mf->sig, 64) == 0,
                         WV_CORRUPT, "%s: bad signature", j->what);
            wv__free(v);
            v = NULL;
        } else {
            WV_TRY(wv__json_skip(j));
        }
    }
    WV_TRY(it.rc);
    WV_CHECK(have == 7, WV_CORRUPT, "%s: the signature lacks alg, key or sig",
             j->what);
    mf->has_sig = true;
out:
    wv__free(k);
    wv__free(v);
    return rc;
}

static int parse_nullable_string(struct wv__json *j, char **out)
{
    size_t l;
    wv__json_ws(j);
    if (j->end - j->p >= 4 && memcmp(j->p, "null", 4) == 0) {
        j->p += 4;
        *out = NULL;
        return WV_OK;
    }
    return wv__json_string(j, out, &l);
}

/* [u64, ...] of at most WV_MAX_DIMS values into v; their count in *n. */
static int parse_dims(struct wv__json *j, uint64_t *v, int *n)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    *n = 0;
    WV_TRY(wv__json_expect(j, '['));
    if (!wv__json_eat(j, ']')) {
        do {
            WV_CHECK(*n < WV_MAX_DIMS, WV_CORRUPT, "%s: too many dimensions",
                     j->what);
            WV_TRY(wv__json_u64(j, &v[(*n)++]));
        } while (wv__json_eat(j, ','));
        WV_TRY(wv__json_expect(j, ']'));
    }
out:
    return rc;
}

/* ["<64 hex>", ...] appended to t's chunks (capacity *cap). */
static int parse_ids(struct wv__json *j, struct wv__mtensor *t, size_t *cap)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *v = NULL;
    size_t vl;
    WV_TRY(wv__json_expect(j, '['));
    if (!wv__json_eat(j, ']')) {
        do {
            if (t->n_chunks == *cap) {
                WV_CHECK(*cap < (SIZE_MAX / WV__ID_LEN) / 2, WV_CORRUPT,
                         "%s: too many chunks", j->what);
                *cap = *cap ? *cap * 2 : 4;
                void *nc = wv__realloc(t->chunks, *cap * WV__ID_LEN);
                WV_CHECK(nc != NULL, WV_NOMEM, "out of memory");
                t->chunks = nc;
            }
            WV_TRY(wv__json_string(j, &v, &vl));
            WV_CHECK(vl == 64 && wv__unhex(v, t->chunks[t->n_chunks], 32) == 0,
                     WV_CORRUPT, "%s: bad chunk id", j->what);
            t->n_chunks++;
            wv__free(v);
            v = NULL;
        } while (wv__json_eat(j, ','));
        WV_TRY(wv__json_expect(j, ']'));
    }
out:
    wv__free(v);
    return rc;
}

/* {"global": [...], "offset": [...]}: a part record's region. */
static int parse_region(struct wv__json *j, struct wv__mtensor *t, int *ng,
                        int *no)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *k = NULL;
    size_t kl;
    *ng = *no = -1;
    WV_TRY(wv__json_expect(j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "global") == 0 && *ng < 0)
            WV_TRY(parse_dims(j, t->gshape, ng));
        else if (strcmp(k, "offset") == 0 && *no < 0)
            WV_TRY(parse_dims(j, t->goffset, no));
        else
            WV_CHECK(0, WV_CORRUPT, "%s: unknown or repeated field \"%.40s\" "
                                    "in a region",
                     j->what, k);
    }
    WV_TRY(it.rc);
    t->has_region = true;
out:
    wv__free(k);
    return rc;
}

/* [{"writer": w, "offset": [...], "shape": [...], "chunks": [...]}, ...]:
 * the stored regions of a global tensor; each one's dimension count in
 * dims[] (checked against the tensor's once it is known). */
static int parse_shards(struct wv__json *j, struct wv__mtensor *t,
                        size_t *cap_chunks, int **dims, size_t *dcap)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *k = NULL;
    size_t kl, cap = 0;
    uint64_t w;
    WV_TRY(wv__json_expect(j, '['));
    if (wv__json_eat(j, ']'))
        goto out;
    do {
        WV_CHECK(t->n_shards < WV__MAX_SHARDS, WV_CORRUPT,
                 "%s: more than %d shards in a tensor", j->what,
                 WV__MAX_SHARDS);
        WV_CHECK(wv__grow(&t->shards, &cap, t->n_shards, sizeof *t->shards,
                          4) == WV_OK &&
                     wv__grow(dims, dcap, t->n_shards, 2 * sizeof **dims,
                              4) == WV_OK,
                 WV_NOMEM, "out of memory");
        struct wv__mshard *sh = &t->shards[t->n_shards];
        int *nd = &(*dims)[2 * t->n_shards];
        memset(sh, 0, sizeof *sh);
        nd[0] = nd[1] = -1;
        t->n_shards++;
        sh->first = t->n_chunks;
        bool have_w = false, have_c = false;
        WV_TRY(wv__json_expect(j, '{'));
        struct wv__json_obj it = WV__JSON_OBJ(j);
        while (wv__json_obj_next(&it, &k, &kl)) {
            if (strcmp(k, "writer") == 0 && !have_w) {
                WV_TRY(wv__json_u64(j, &w));
                WV_CHECK(w < WV__MAX_WRITERS, WV_CORRUPT,
                         "%s: bad writer index %llu", j->what,
                         (unsigned long long)w);
                sh->writer = (uint32_t)w;
                have_w = true;
            } else if (strcmp(k, "offset") == 0 && nd[0] < 0) {
                WV_TRY(parse_dims(j, sh->offset, &nd[0]));
            } else if (strcmp(k, "shape") == 0 && nd[1] < 0) {
                WV_TRY(parse_dims(j, sh->shape, &nd[1]));
            } else if (strcmp(k, "chunks") == 0 && !have_c) {
                WV_TRY(parse_ids(j, t, cap_chunks));
                have_c = true;
            } else {
                WV_CHECK(0, WV_CORRUPT, "%s: unknown or repeated field "
                                        "\"%.40s\" in a shard",
                         j->what, k);
            }
        }
        WV_TRY(it.rc);
        WV_CHECK(have_w && have_c && nd[0] >= 0 && nd[1] >= 0, WV_CORRUPT,
                 "%s: a shard lacks writer, offset, shape or chunks",
                 j->what);
        sh->n_chunks = t->n_chunks - sh->first;
    } while (wv__json_eat(j, ','));
    WV_TRY(wv__json_expect(j, ']'));
out:
    wv__free(k);
    return rc;
}

uint64_t wv__mtensor_chunk_len(const struct wv__mtensor *t,
                               uint64_t chunk_size, size_t k)
{
    uint64_t base = 0, nb = t->nbytes;
    for (size_t i = 0; i < t->n_shards; i++) {
        const struct wv__mshard *sh = &t->shards[i];
        if (k >= sh->first && k - sh->first < sh->n_chunks) {
            k -= sh->first;
            nb = sh->nbytes;
            break;
        }
    }
    base = (uint64_t)k * chunk_size;
    if (base >= nb)
        return 0;
    return nb - base < chunk_size ? nb - base : chunk_size;
}

int wv__shards_tile(const struct wv__mtensor *t, const char *what,
                    struct wv__err *err)
{
    int rc = WV_OK;
    uint64_t total = 0, numel, nb, want;
    for (size_t a = 0; a < t->n_shards; a++) {
        const struct wv__mshard *x = &t->shards[a];
        for (int d = 0; d < t->ndim; d++)
            WV_CHECK(x->offset[d] <= t->shape[d] &&
                         x->shape[d] <= t->shape[d] - x->offset[d],
                     WV_CORRUPT, "%s: tensor '%.200s': the region of writer "
                                 "%u exceeds the global shape in dimension "
                                 "%d",
                     what, t->name, x->writer, d);
        for (size_t b = a + 1; b < t->n_shards; b++) {
            const struct wv__mshard *y = &t->shards[b];
            bool apart = false;
            for (int d = 0; d < t->ndim && !apart; d++)
                apart = x->offset[d] + x->shape[d] <= y->offset[d] ||
                        y->offset[d] + y->shape[d] <= x->offset[d] ||
                        x->shape[d] == 0 || y->shape[d] == 0;
            WV_CHECK(apart, WV_CORRUPT, "%s: tensor '%.200s': the regions of "
                                        "writers %u and %u overlap partly "
                                        "(only a whole region may repeat, "
                                        "as a bit-identical copy)",
                     what, t->name, x->writer, y->writer);
        }
        WV_CHECK(wv__shape_bytes(t->dtype, t->ndim, x->shape, &numel, &nb) ==
                         WV_OK &&
                     !__builtin_add_overflow(total, numel, &total),
                 WV_CORRUPT, "%s: tensor '%.200s': bad region shape", what,
                 t->name);
    }
    WV_CHECK(wv__shape_bytes(t->dtype, t->ndim, t->shape, &want, &nb) ==
                 WV_OK,
             WV_CORRUPT, "%s: tensor '%.200s': bad shape", what, t->name);
    WV_CHECK(total == want, WV_CORRUPT, "%s: tensor '%.200s': the regions "
                                        "leave a gap (they cover %llu of "
                                        "%llu elements)",
             what, t->name, (unsigned long long)total,
             (unsigned long long)want);
out:
    return rc;
}

static int parse_tensor(struct wv__json *j, struct wv__mtensor *t,
                        uint64_t chunk_size)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *k = NULL, *v = NULL;
    size_t kl, vl, cap = 0, wcap = 0, dcap = 0;
    bool have_dtype = false, have_shape = false, have_nbytes = false;
    bool have_chunks = false, have_shards = false, have_writers = false;
    int ng = 0, no = 0, *sdims = NULL;
    uint64_t w;
    WV_TRY(wv__json_expect(j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "name") == 0) {
            WV_CHECK(t->name == NULL, WV_CORRUPT, "%s: duplicate name",
                     j->what);
            WV_TRY(wv__json_string(j, &t->name, &vl));
            WV_CHECK(strlen(t->name) == vl && vl > 0, WV_CORRUPT,
                     "%s: bad tensor name", j->what);
        } else if (strcmp(k, "dtype") == 0) {
            WV_TRY(wv__json_string(j, &v, &vl));
            WV_CHECK(wv_dtype_from_name(v, &t->dtype) == WV_OK, WV_CORRUPT,
                     "%s: unknown dtype '%.40s'", j->what, v);
            have_dtype = true;
        } else if (strcmp(k, "shape") == 0) {
            WV_CHECK(!have_shape, WV_CORRUPT, "%s: duplicate shape",
                     j->what);
            WV_TRY(parse_dims(j, t->shape, &t->ndim));
            have_shape = true;
        } else if (strcmp(k, "nbytes") == 0) {
            WV_TRY(wv__json_u64(j, &t->nbytes));
            have_nbytes = true;
        } else if (strcmp(k, "chunks") == 0) {
            WV_CHECK(!have_chunks && !have_shards, WV_CORRUPT,
                     "%s: a tensor has chunks twice, or chunks and shards",
                     j->what);
            WV_TRY(parse_ids(j, t, &cap));
            have_chunks = true;
        } else if (strcmp(k, "shards") == 0) {
            WV_CHECK(!have_chunks && !have_shards, WV_CORRUPT,
                     "%s: a tensor has shards twice, or chunks and shards",
                     j->what);
            WV_TRY(parse_shards(j, t, &cap, &sdims, &dcap));
            have_shards = true;
        } else if (strcmp(k, "region") == 0) {
            WV_CHECK(!t->has_region, WV_CORRUPT, "%s: duplicate region",
                     j->what);
            WV_TRY(parse_region(j, t, &ng, &no));
        } else if (strcmp(k, "writers") == 0) {
            WV_CHECK(!have_writers, WV_CORRUPT, "%s: duplicate writers",
                     j->what);
            have_writers = true;
            WV_TRY(wv__json_expect(j, '['));
            if (!wv__json_eat(j, ']')) {
                do {
                    WV_CHECK(t->n_writers < WV__MAX_WRITERS, WV_CORRUPT,
                             "%s: too many writers", j->what);
                    WV_CHECK(wv__grow(&t->writers, &wcap, t->n_writers,
                                      sizeof *t->writers, 4) == WV_OK,
                             WV_NOMEM, "out of memory");
                    WV_TRY(wv__json_u64(j, &w));
                    WV_CHECK(w < WV__MAX_WRITERS &&
                                 (t->n_writers == 0 ||
                                  w > t->writers[t->n_writers - 1]),
                             WV_CORRUPT, "%s: bad or unsorted writer index",
                             j->what);
                    t->writers[t->n_writers++] = (uint32_t)w;
                } while (wv__json_eat(j, ','));
                WV_TRY(wv__json_expect(j, ']'));
            }
        } else {
            WV_TRY(wv__json_skip(j));
        }
        wv__free(v);
        v = NULL;
    }
    WV_TRY(it.rc);
    WV_CHECK(t->name && have_dtype && have_shape && have_nbytes, WV_CORRUPT,
             "%s: a tensor lacks name, dtype, shape or nbytes", j->what);
    uint64_t numel, nb;
    WV_CHECK(wv__shape_bytes(t->dtype, t->ndim, t->shape, &numel, &nb) ==
                     WV_OK &&
                 nb == t->nbytes,
             WV_CORRUPT, "%s: tensor '%.200s' has nbytes %llu that its "
                         "shape and dtype contradict",
             j->what, t->name, (unsigned long long)t->nbytes);
    if (t->has_region) {
        WV_CHECK(ng == t->ndim && no == t->ndim, WV_CORRUPT,
                 "%s: tensor '%.200s' has a region of another rank", j->what,
                 t->name);
        for (int d = 0; d < t->ndim; d++)
            WV_CHECK(t->goffset[d] <= t->gshape[d] &&
                         t->shape[d] <= t->gshape[d] - t->goffset[d],
                     WV_CORRUPT, "%s: tensor '%.200s' exceeds its global "
                                 "shape in dimension %d",
                     j->what, t->name, d);
        WV_CHECK(wv__shape_bytes(t->dtype, t->ndim, t->gshape, &numel, &nb) ==
                     WV_OK,
                 WV_CORRUPT, "%s: tensor '%.200s' has a bad global shape",
                 j->what, t->name);
    }
    if (!have_shards) {
        WV_CHECK(t->n_chunks == (t->nbytes + chunk_size - 1) / chunk_size,
                 WV_CORRUPT, "%s: tensor '%.200s' lists %zu chunks, its "
                             "size needs %llu",
                 j->what, t->name, t->n_chunks,
                 (unsigned long long)((t->nbytes + chunk_size - 1) /
                                      chunk_size));
        goto out;
    }
    WV_CHECK(t->n_shards > 0 && !t->has_region, WV_CORRUPT,
             "%s: tensor '%.200s' has an empty list of shards, or shards "
             "and a region",
             j->what, t->name);
    for (size_t i = 0; i < t->n_shards; i++) {
        struct wv__mshard *sh = &t->shards[i];
        WV_CHECK(sdims[2 * i] == t->ndim && sdims[2 * i + 1] == t->ndim,
                 WV_CORRUPT, "%s: tensor '%.200s' has a shard of another "
                             "rank",
                 j->what, t->name);
        WV_CHECK(wv__shape_bytes(t->dtype, t->ndim, sh->shape, &numel,
                                 &sh->nbytes) == WV_OK &&
                     sh->n_chunks ==
                         (sh->nbytes + chunk_size - 1) / chunk_size,
                 WV_CORRUPT, "%s: tensor '%.200s': a shard lists %zu chunks, "
                             "its size needs another number",
                 j->what, t->name, sh->n_chunks);
    }
    WV_TRY(wv__shards_tile(t, j->what, err));
out:
    wv__free(k);
    wv__free(v);
    wv__free(sdims);
    return rc;
}

/* "part": {"txn": "...", "writer": w, "n_writers": n} */
static int parse_part(struct wv__json *j, struct wv__manifest *mf)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *k = NULL;
    size_t kl, vl;
    uint64_t w = 0, n = 0;
    bool have_w = false, have_n = false;
    WV_TRY(wv__json_expect(j, '{'));
    struct wv__json_obj it = WV__JSON_OBJ(j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        if (strcmp(k, "txn") == 0 && mf->txn == NULL) {
            WV_TRY(wv__json_string(j, &mf->txn, &vl));
            WV_CHECK(vl == strlen(mf->txn) && wv__txn_name_ok(mf->txn),
                     WV_CORRUPT, "%s: bad transaction name", j->what);
        } else if (strcmp(k, "writer") == 0 && !have_w) {
            WV_TRY(wv__json_u64(j, &w));
            have_w = true;
        } else if (strcmp(k, "n_writers") == 0 && !have_n) {
            WV_TRY(wv__json_u64(j, &n));
            have_n = true;
        } else {
            WV_CHECK(0, WV_CORRUPT, "%s: unknown or repeated field "
                                    "\"%.40s\" in the part",
                     j->what, k);
        }
    }
    WV_TRY(it.rc);
    WV_CHECK(mf->txn && have_w && have_n && n >= 1 && n <= WV__MAX_WRITERS &&
                 w < n,
             WV_CORRUPT, "%s: the part lacks txn, writer or n_writers, or "
                         "its writer index is out of range",
             j->what);
    mf->writer = (uint32_t)w;
    mf->n_writers = (uint32_t)n;
out:
    wv__free(k);
    return rc;
}

/* "parts": ["<64 hex>", ...] */
static int parse_parts(struct wv__json *j, struct wv__manifest *mf)
{
    struct wv__err *err = j->err;
    int rc = WV_OK;
    char *v = NULL;
    size_t vl, cap = 0;
    unsigned char id[32];
    WV_TRY(wv__json_expect(j, '['));
    if (!wv__json_eat(j, ']')) {
        do {
            WV_CHECK(mf->n_parts < WV__MAX_WRITERS, WV_CORRUPT,
                     "%s: too many parts", j->what);
            WV_CHECK(wv__grow(&mf->parts, &cap, mf->n_parts,
                              sizeof *mf->parts, 4) == WV_OK,
                     WV_NOMEM, "out of memory");
            WV_TRY(wv__json_string(j, &v, &vl));
            WV_CHECK(vl == 64 && wv__unhex(v, id, 32) == 0, WV_CORRUPT,
                     "%s: bad part name", j->what);
            memcpy(mf->parts[mf->n_parts++], v, 65);
            wv__free(v);
            v = NULL;
        } while (wv__json_eat(j, ','));
        WV_TRY(wv__json_expect(j, ']'));
    }
out:
    wv__free(v);
    return rc;
}

int wv__manifest_parse(const char *text, size_t len, const char *what,
                       struct wv__manifest *mf, struct wv__err *err)
{
    int rc = WV_OK;
    char *k = NULL, *v = NULL, *pv = NULL, *mk = NULL;
    size_t kl, vl, mkl;
    uint64_t version = 0;
    bool have_tensors = false, sig_last = false;
    unsigned seen = 0;
    const char *tensors_at = NULL, *value_end = NULL, *sig_cut = NULL;
    struct wv__json j = {text, text, text + len, what, err};
    memset(mf, 0, sizeof *mf);
    WV_CHECK(wv__json_eat(&j, '{'), WV_CORRUPT, "%s is not a JSON object",
             what);
    struct wv__json_obj it = WV__JSON_OBJ(&j);
    while (wv__json_obj_next(&it, &k, &kl)) {
        sig_last = false;
        /* Each known field once: a repeated one would leak or, for
         * metadata, append past what was sized for it. */
        static const char *const fields[] = {
            "weightvault_manifest", "parent", "branch", "time", "message",
            "chunk_size", "metadata", "metadata_defaults", "tensors",
            "signature", "part", "parts"};
        for (unsigned f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            if (strcmp(k, fields[f]) != 0)
                continue;
            WV_CHECK(!(seen & (1u << f)), WV_CORRUPT,
                     "%s: duplicate field \"%s\"", what, fields[f]);
            seen |= 1u << f;
        }
        if (strcmp(k, "weightvault_manifest") == 0) {
            WV_TRY(wv__json_u64(&j, &version));
        } else if (strcmp(k, "parent") == 0) {
            WV_TRY(parse_nullable_string(&j, &pv));
            if (pv) {
                unsigned char id[32];
                WV_CHECK(wv__unhex(pv, id, 32) == 0, WV_CORRUPT,
                         "%s: bad parent id", what);
                memcpy(mf->parent, pv, 65);
            }
        } else if (strcmp(k, "branch") == 0) {
            WV_TRY(parse_nullable_string(&j, &mf->branch));
        } else if (strcmp(k, "time") == 0) {
            WV_TRY(parse_nullable_string(&j, &mf->time));
        } else if (strcmp(k, "message") == 0) {
            WV_TRY(parse_nullable_string(&j, &mf->message));
        } else if (strcmp(k, "chunk_size") == 0) {
            WV_TRY(wv__json_u64(&j, &mf->chunk_size));
        } else if (strcmp(k, "metadata") == 0) {
            wv__json_ws(&j);
            if (j.end - j.p >= 4 && memcmp(j.p, "null", 4) == 0) {
                j.p += 4;
                mf->meta_absent = true;
            } else {
                size_t cap = 0;
                WV_TRY(wv__json_expect(&j, '{'));
                struct wv__json_obj meta = WV__JSON_OBJ(&j);
                while (wv__json_obj_next(&meta, &mk, &mkl)) {
                    WV_CHECK(wv__grow(&mf->meta, &cap, mf->n_meta,
                                      sizeof *mf->meta, 8) == WV_OK,
                             WV_NOMEM, "out of memory");
                    struct wv__meta *e = &mf->meta[mf->n_meta];
                    e->key = mk;
                    e->value = NULL;
                    mk = NULL;
                    mf->n_meta++;
                    WV_TRY(wv__json_string(&j, &e->value, &vl));
                }
                WV_TRY(meta.rc);
            }
        } else if (strcmp(k, "metadata_defaults") == 0) {
            wv__json_ws(&j);
            if (j.end - j.p >= 4 && memcmp(j.p, "true", 4) == 0)
                mf->meta_default = true;
            WV_TRY(wv__json_skip(&j));
        } else if (strcmp(k, "tensors") == 0) {
            /* chunk_size may come later: remember where, parse after. */
            tensors_at = j.p;
            have_tensors = true;
            WV_TRY(wv__json_skip(&j));
        } else if (strcmp(k, "part") == 0) {
            WV_TRY(parse_part(&j, mf));
        } else if (strcmp(k, "parts") == 0) {
            WV_TRY(parse_parts(&j, mf));
        } else if (strcmp(k, "signature") == 0) {
            WV_CHECK(value_end != NULL, WV_CORRUPT,
                     "%s: the signature is the only member", what);
            sig_cut = value_end;
            WV_TRY(parse_signature(&j, mf));
            sig_last = true;
        } else {
            WV_TRY(wv__json_skip(&j));
        }
        value_end = j.p;
    }
    WV_TRY(it.rc);
    wv__json_ws(&j);
    WV_CHECK(j.p == j.end, WV_CORRUPT, "%s: trailing bytes", what);
    WV_CHECK(!mf->has_sig || sig_last, WV_CORRUPT,
             "%s: the signature is not the last member", what);
    if (mf->has_sig)
        mf->sig_ok = wv__sig_verify(mf->sig_key, mf->sig, text,
                                    (size_t)(sig_cut - text), "}\n", 2);
    WV_CHECK(version == 1 || version == 2, WV_FORMAT, "%s: manifest version %llu is not "
                                      "supported",
             what, (unsigned long long)version);
    WV_CHECK(have_tensors && mf->chunk_size >= 64, WV_CORRUPT,
             "%s: missing tensors or chunk_size", what);
    {
        struct wv__json t = {text, tensors_at, text + len, what, err};
        size_t cap = 0;
        WV_TRY(wv__json_expect(&t, '['));
        if (!wv__json_eat(&t, ']')) {
            do {
                if (mf->n_tensors == cap) {
                    cap = cap ? cap * 2 : 16;
                    void *nt = wv__realloc(mf->tensors,
                                           cap * sizeof *mf->tensors);
                    WV_CHECK(nt != NULL, WV_NOMEM, "out of memory");
                    mf->tensors = nt;
                }
                struct wv__mtensor *mt = &mf->tensors[mf->n_tensors++];
                memset(mt, 0, sizeof *mt);
                WV_TRY(parse_tensor(&t, mt, mf->chunk_size));
                /* a part record's tensors are regions, a checkpoint's may
                 * be stored as shards: never the other way round */
                WV_CHECK(mf->txn ? mt->n_shards == 0 && mt->n_writers == 0
                                 : !mt->has_region,
                         WV_CORRUPT, "%s: tensor '%.200s': %s", what,
                         mt->name,
                         mf->txn ? "a part record's tensor has shards or "
                                   "writers"
                                 : "a checkpoint's tensor has a region "
                                   "(only part records have one)");
            } while (wv__json_eat(&t, ','));
            WV_TRY(wv__json_expect(&t, ']'));
        }
    }
    WV_CHECK(version == (uint64_t)manifest_version(mf), WV_CORRUPT,
             "%s: manifest version %llu does not fit its fields (parts, "
             "regions or shards are version 2, and only they)",
             what, (unsigned long long)version);
out:
    wv__free(k);
    wv__free(v);
    wv__free(pv);
    wv__free(mk);
    if (rc != WV_OK)
        wv__manifest_release(mf);
    return rc;
}

int wv__manifest_load(wv_repo *r, const char *hex_id, struct wv__manifest *mf)
{
    char key[96], what[200];
    unsigned char *text = NULL;
    size_t len;
    int rc;
    memset(mf, 0, sizeof *mf);
    wv__manifest_key(hex_id, key);
    /* Checked against its name (the hash of its bytes, keyed in an
     * encrypted repository, where it is unsealed first). */
    rc = wv__object_get(r, "manifest", key, hex_id, WV__MAX_JSON, &text,
                        &len);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(&r->err);
        return wv__seterr(&r->err, WV_NOTFOUND,
                          "%s: checkpoint %.12s is missing (pruned?)", r->uri,
                          hex_id);
    }
    if (rc != WV_OK)
        return rc;
    snprintf(what, sizeof what, "%s: manifest %.12s", r->uri, hex_id);
    rc = wv__manifest_parse((const char *)text, len, what, mf, &r->err);
    if (rc == WV_OK && mf->txn != NULL) {
        wv__manifest_release(mf);
        rc = wv__seterr(&r->err, WV_CORRUPT,
                        "%s is a part record, not a checkpoint", what);
    }
    if (rc == WV_OK)
        memcpy(mf->id, hex_id, 65);
    wv__free(text);
    return rc;
}

/* ---- signing ------------------------------------------------------------ */

int wv__manifest_sign(wv_repo *r, const unsigned char *sk,
                      struct wv__manifest *mf, struct wv__buf *b)
{
    unsigned char sig[64];
    if (wv__sig_sign(sk, b->p, b->len, NULL, 0, sig) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    mf->has_sig = true;
    mf->sig_ok = true;
    memcpy(mf->sig_key, sk + 32, 32);
    memcpy(mf->sig, sig, 64);
    b->len = 0;
    if (wv__manifest_encode(mf, b) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    return WV_OK;
}
