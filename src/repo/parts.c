/*
 * parts.c -- multi-writer checkpoints: part records, finishing them into
 * one checkpoint, the unfinished transactions (docs/repo-format.md
 * "Multi-writer checkpoints").
 *
 * Writers of one checkpoint agree on a transaction name (txn) and their
 * count; each commits its tensors through the commit pipeline (commit.c:
 * chunking, dedup, compression, sealing, packs and index), and instead of
 * a manifest stores a part record, write-once, under
 *   parts/<branch>/<txn>/<writer>      (plain repository)
 *   parts/<32 hex>/<writer>            (encrypted: a keyed hash of
 *                                       branch/txn, as for ref names)
 * A part record is a manifest (manifest.c, version 2) with a "part" member
 * (txn, writer, n_writers) whose tensors may carry a "region" (global
 * shape and offset); it is sealed like a manifest in an encrypted
 * repository. Coordination is through the store only, so it works alike on
 * a shared directory, s3:// and rados://.
 *
 * Finishing reads the n part records, checks them (same txn, n_writers and
 * parent; regions of each global tensor tile it exactly, replicated copies
 * bit-identical by chunk id) and merges them into one manifest whose every
 * field comes from the parts (time: the newest part's), so whoever
 * finishes makes the same bytes, the same checkpoint id; the manifest
 * lists the part records' names ("parts"), which a signature then covers.
 * The branch moves from the parts' parent by compare-and-swap: of two
 * racing finishers one moves it and the other finds it there. The
 * finisher then writes a marker parts/<dir>/done holding the id (a later
 * finish or commit of the same txn returns it) and deletes the part
 * records; gc removes markers, and the parts of transactions whose newest
 * part is older than the pending timeout (their chunks with them), while
 * younger parts keep their chunks alive.
 *
 * Calls commit.c (the pipeline, manifests, heads), manifest.c, object.c,
 * refs.c, trust.c and util.c.
 */
#include "core.h"
#include "crypt.h"
#include "object.h"
#include "refs.h"
#include "repo.h"
#include "tensor.h"
#include "trust.h"

#include <time.h>

#define PART_DIR_MAX 256

/* The store folder of (branch, txn), without the trailing '/'. */
static int part_dir(wv_repo *r, const char *branch, const char *txn,
                    char dir[PART_DIR_MAX])
{
    if (r->crypt == NULL) {
        snprintf(dir, PART_DIR_MAX, "parts/%s/%s", branch, txn);
        return WV_OK;
    }
    char in[256], hex[65];
    unsigned char d[32];
    int n = snprintf(in, sizeof in, "%s/%s", branch, txn);
    if (wv__hmac(r->crypt->k_name, "wv-partdir", in, (size_t)n, d) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    wv__hex(d, 16, hex);
    snprintf(dir, PART_DIR_MAX, "parts/%s", hex);
    return WV_OK;
}

static void part_key(const char *dir, uint32_t writer, char key[300])
{
    snprintf(key, 300, "%s/%u", dir, writer);
}

/* "2026-11-28T14:00:00Z" to seconds since the epoch (-1: not one). */
static int64_t parse_utc(const char *s)
{
    struct tm tm;
    char z = 0;
    memset(&tm, 0, sizeof tm);
    if (s == NULL ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &z) != 7 ||
        z != 'Z')
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm);
}

/* Read part record `key` (NOTFOUND passes through) into mf; its name (the
 * object name of its plaintext) into name when not NULL. */
static int read_part(wv_repo *r, const char *key, struct wv__manifest *mf,
                     char name[65])
{
    unsigned char *text = NULL;
    size_t len;
    char what[400];
    memset(mf, 0, sizeof *mf);
    int rc = wv__object_get(r, "part", key, NULL, WV__MAX_JSON, &text, &len);
    if (rc != WV_OK)
        return rc;
    snprintf(what, sizeof what, "%s: part record %s", r->uri, key);
    rc = wv__manifest_parse((const char *)text, len, what, mf, &r->err);
    if (rc == WV_OK && mf->txn == NULL) {
        wv__manifest_release(mf);
        rc = wv__seterr(&r->err, WV_CORRUPT, "%s is not a part record",
                        what);
    }
    if (rc == WV_OK && name &&
        wv__object_name(r, "part", text, len, name) != WV_OK)
        rc = wv__seterr(&r->err, WV_NOMEM, "out of memory");
    if (rc != WV_OK)
        wv__manifest_release(mf);
    wv__free(text);
    return rc;
}

int wv__part_done_parse(const char *text, size_t len, char id[65],
                        int64_t *when)
{
    unsigned char raw[32];
    char t[32];
    *when = -1;
    if (len < 64 || wv__unhex_n(text, raw, 32) != 0 ||
        (len > 64 && text[64] != ' '))
        return -1;
    memcpy(id, text, 64);
    id[64] = '\0';
    if (len > 65 && len - 65 < sizeof t) {
        memcpy(t, text + 65, len - 65);
        t[len - 65] = '\0';
        t[strcspn(t, "\n")] = '\0';
        *when = parse_utc(t);
    }
    return 0;
}

/* The id a finished transaction's marker holds (WV_NOTFOUND: none), and
 * when it was written (may be NULL). */
static int read_done_t(wv_repo *r, const char *dir, char id[65],
                       int64_t *when)
{
    char key[300];
    unsigned char *text = NULL;
    size_t len;
    int64_t t;
    snprintf(key, sizeof key, "%s/done", dir);
    int rc = wv__object_get(r, "part-done", key, NULL, 256, &text, &len);
    if (rc != WV_OK)
        return rc;
    if (wv__part_done_parse((const char *)text, len, id, &t) != 0)
        rc = wv__seterr(&r->err, WV_CORRUPT, "%s: %s is damaged (not a "
                                             "checkpoint id and a time)",
                        r->uri, key);
    else if (when)
        *when = t;
    wv__free(text);
    return rc;
}

static int read_done(wv_repo *r, const char *dir, char id[65])
{
    return read_done_t(r, dir, id, NULL);
}

/* ---- storing a part ------------------------------------------------------ */

struct part_ctx {
    wv_repo *r;
    const char *txn;
    uint32_t writer, n_writers;
    char key[300];
};

/* commit.c's publish hook: the part record instead of a manifest. A record
 * already there for this writer must be this one (its time aside: a
 * writer retrying after a crash). */
static int publish_part(void *arg, struct wv__manifest *mf)
{
    struct part_ctx *c = arg;
    wv_repo *r = c->r;
    struct wv__err *err = &r->err;
    struct wv__buf b = {0}, b2 = {0};
    struct wv__manifest old;
    int rc = WV_OK;
    memset(&old, 0, sizeof old);
    mf->txn = wv__strdup(c->txn);
    WV_CHECK(mf->txn != NULL, WV_NOMEM, "out of memory");
    mf->writer = c->writer;
    mf->n_writers = c->n_writers;
    WV_CHECK(wv__manifest_encode(mf, &b) == WV_OK, WV_NOMEM,
             "out of memory");
    WV_TRY(wv__object_put(r, "part", c->key, b.p, b.len, WV_PUT_IF_ABSENT));
    /* Write-once: what is stored now is the first writer's. Gone already:
     * another writer saw every part, finished the transaction and removed
     * the parts (its done marker holds the id the finish step finds). */
    rc = read_part(r, c->key, &old, NULL);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(err);
        rc = WV_OK;
        goto out;
    }
    WV_TRY(rc);
    {
        struct wv__buf b3 = {0};
        char *t = mf->time;
        mf->time = old.time;
        rc = wv__manifest_encode(mf, &b2);
        mf->time = t;
        if (rc == WV_OK)
            rc = wv__manifest_encode(&old, &b3);
        bool same = rc == WV_OK && b3.len == b2.len &&
                    memcmp(b3.p, b2.p, b2.len) == 0;
        wv__buf_release(&b3);
        WV_CHECK(rc == WV_OK, WV_NOMEM, "out of memory");
        WV_CHECK(same, WV_CONFLICT,
                 "%s: a part of writer %u for transaction '%s' on branch "
                 "'%s' already exists with other content (%s)",
                 r->uri, c->writer, c->txn, mf->branch, c->key);
    }
out:
    wv__buf_release(&b);
    wv__buf_release(&b2);
    wv__manifest_release(&old);
    return rc;
}

static int check_part_args(struct wv__err *err, const char *branch,
                           const char *txn, uint32_t writer,
                           uint32_t n_writers)
{
    int rc = WV_OK;
    WV_CHECK(wv__ref_name_ok(branch) && strcmp(branch, "latest") != 0,
             WV_MISUSE, "'%s' is not a valid branch name", branch);
    WV_CHECK(txn != NULL && wv__txn_name_ok(txn), WV_MISUSE,
             "'%.120s' is not a valid transaction name (1 to 100 of "
             "[A-Za-z0-9._-], not starting with '.')",
             txn ? txn : "(null)");
    WV_CHECK(n_writers >= 1 && n_writers <= WV__MAX_WRITERS, WV_MISUSE,
             "the number of writers must be 1 to %d, not %u",
             WV__MAX_WRITERS, n_writers);
    WV_CHECK(writer < n_writers, WV_MISUSE,
             "writer index %u is not below the number of writers %u", writer,
             n_writers);
out:
    return rc;
}

int wv__part_check(const wv_model *m, const char *branch,
                   const wv_part_opts *part, struct wv__err *err)
{
    int rc = WV_OK;
    WV_CHECK(m != NULL && part != NULL &&
                 part->struct_size >= offsetof(wv_part_opts, no_finish) +
                                          sizeof part->no_finish,
             WV_MISUSE, "a part needs a tensor set and part options from "
                        "this header (WV_PART_OPTS_INIT)");
    WV_TRY(check_part_args(err, branch ? branch : "main", part->txn,
                           part->writer, part->n_writers));
out:
    return rc;
}

static int finish_locked(wv_repo *r, const char *branch, const char *txn,
                         uint32_t n_writers, const wv_commit_opts *opts,
                         char id[WV_ID_HEX]);

int wv__repo_commit_part_locked(wv_repo *r, const wv_model *m,
                                const char *branch, const wv_part_opts *part,
                                const wv_commit_opts *opts,
                                char id[WV_ID_HEX])
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    struct part_ctx c;
    char dir[PART_DIR_MAX];
    wv__clearerr(err);
    id[0] = '\0';
    if (branch == NULL)
        branch = "main";
    WV_TRY(wv__part_check(m, branch, part, err));
    WV_TRY(part_dir(r, branch, part->txn, dir));
    /* A transaction already finished (a writer retrying): its id. */
    rc = read_done(r, dir, id);
    if (rc != WV_NOTFOUND)
        goto out;
    wv__clearerr(err);
    rc = WV_OK;
    memset(&c, 0, sizeof c);
    c.r = r;
    c.txn = part->txn;
    c.writer = part->writer;
    c.n_writers = part->n_writers;
    part_key(dir, part->writer, c.key);
    WV_TRY(wv__repo_commit_ex(r, m, branch, opts, publish_part, &c, id));
    id[0] = '\0';
    if (part->no_finish) {
        rc = wv__seterr(err, WV_BUSY,
                        "%s: part %u of %u of transaction '%s' is stored; "
                        "finishing is left to wv_repo_finish",
                        r->uri, part->writer, part->n_writers, part->txn);
        goto out;
    }
    rc = finish_locked(r, branch, part->txn, part->n_writers, opts, id);
out:
    if (rc != WV_OK)
        id[0] = '\0';
    return rc;
}

int wv_repo_commit_part(wv_repo *r, const wv_model *m, const char *branch,
                        const wv_part_opts *part, const wv_commit_opts *opts,
                        char id[WV_ID_HEX])
{
    return WV__REPO_LOCKED(
        r, wv__repo_commit_part_locked(r, m, branch, part, opts, id));
}

/* ---- finishing ----------------------------------------------------------- */

/* "0, 2 and 3" into buf: the writers w with mark[w]. */
static void writer_list(const bool *mark, uint32_t n, char *buf, size_t cap)
{
    size_t len = 0, k = 0, total = 0;
    for (uint32_t w = 0; w < n; w++)
        total += mark[w];
    buf[0] = '\0';
    for (uint32_t w = 0; w < n && len + 24 < cap; w++) {
        if (!mark[w])
            continue;
        k++;
        len += (size_t)snprintf(buf + len, cap - len, "%s%u",
                                k == 1           ? ""
                                : k == total     ? " and "
                                                 : ", ",
                                w);
    }
    if (k < total && len + 5 < cap)
        snprintf(buf + len, cap - len, ", ...");
}

static bool same_ids(const struct wv__mtensor *a, const struct wv__mtensor *b)
{
    return a->n_chunks == b->n_chunks &&
           (a->n_chunks == 0 ||
            memcmp(a->chunks, b->chunks, a->n_chunks * WV__ID_LEN) == 0);
}

/* The box (offset, shape) a part's tensor covers in its global tensor. */
static void part_box(const struct wv__mtensor *p, uint64_t *off,
                     uint64_t *gshape)
{
    for (int d = 0; d < p->ndim; d++) {
        off[d] = p->has_region ? p->goffset[d] : 0;
        gshape[d] = p->has_region ? p->gshape[d] : p->shape[d];
    }
}

/* Merge the copies parts[w] of tensor `name` (NULL where a writer lacks
 * it) into out. */
static int merge_tensor(wv_repo *r, const char *name,
                        const struct wv__mtensor *const *pt, uint32_t n,
                        struct wv__mtensor *out)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    const struct wv__mtensor *first = NULL;
    uint32_t w0 = 0;
    uint64_t off[WV_MAX_DIMS], gs[WV_MAX_DIMS], off2[WV_MAX_DIMS],
        gs2[WV_MAX_DIMS];
    size_t wcap = 0, scap = 0, ccap = 0;
    bool any_region = false;
    memset(out, 0, sizeof *out);
    out->name = wv__strdup(name);
    WV_CHECK(out->name != NULL, WV_NOMEM, "out of memory");
    for (uint32_t w = 0; w < n; w++) {
        if (pt[w] == NULL)
            continue;
        any_region |= pt[w]->has_region;
        if (first == NULL) {
            first = pt[w];
            w0 = w;
        }
    }
    part_box(first, off, gs);
    out->dtype = first->dtype;
    out->ndim = first->ndim;
    memcpy(out->shape, gs, sizeof gs);
    for (uint32_t w = 0; w < n; w++) {
        const struct wv__mtensor *p = pt[w];
        if (p == NULL)
            continue;
        part_box(p, off2, gs2);
        WV_CHECK(p->dtype == out->dtype && p->ndim == out->ndim &&
                     memcmp(gs2, gs, (size_t)p->ndim * sizeof *gs) == 0,
                 WV_CORRUPT, "%s: tensor '%.200s': writers %u and %u disagree "
                             "on its dtype or global shape",
                 r->uri, name, w0, w);
        /* w ascends: the list stays sorted */
        WV_CHECK(wv__grow(&out->writers, &wcap, out->n_writers,
                          sizeof *out->writers, 4) == WV_OK,
                 WV_NOMEM, "out of memory");
        out->writers[out->n_writers++] = w;
        /* the same region as a shard already taken: a replicated copy */
        bool dup = false;
        for (size_t k = 0; k < out->n_shards && !dup; k++) {
            struct wv__mshard *sh = &out->shards[k];
            if (memcmp(sh->offset, off2, (size_t)p->ndim * sizeof *off2) ||
                memcmp(sh->shape, p->shape, (size_t)p->ndim * sizeof *off2))
                continue;
            const struct wv__mtensor *q = pt[sh->writer];
            WV_CHECK(same_ids(p, q), WV_CORRUPT,
                     "%s: tensor '%.200s': the regions of writers %u and %u "
                     "overlap with different bytes",
                     r->uri, name, sh->writer, w);
            dup = true;
        }
        if (dup)
            continue;
        WV_CHECK(out->n_shards < WV__MAX_SHARDS, WV_CORRUPT,
                 "%s: tensor '%.200s' has more than %d regions", r->uri,
                 name, WV__MAX_SHARDS);
        WV_CHECK(wv__grow(&out->shards, &scap, out->n_shards,
                          sizeof *out->shards, 4) == WV_OK,
                 WV_NOMEM, "out of memory");
        struct wv__mshard *sh = &out->shards[out->n_shards++];
        memset(sh, 0, sizeof *sh);
        memcpy(sh->offset, off2, sizeof off2);
        memcpy(sh->shape, p->shape, sizeof sh->shape);
        sh->nbytes = p->nbytes;
        sh->writer = w;
        sh->first = out->n_chunks;
        sh->n_chunks = p->n_chunks;
        if (p->n_chunks) {
            WV_CHECK(wv__reserve(&out->chunks, &ccap,
                                 out->n_chunks + p->n_chunks,
                                 WV__ID_LEN) == WV_OK,
                     WV_NOMEM, "out of memory");
            memcpy(out->chunks[out->n_chunks], p->chunks,
                   p->n_chunks * WV__ID_LEN);
            out->n_chunks += p->n_chunks;
        }
    }
    uint64_t numel;
    WV_CHECK(wv__shape_bytes(out->dtype, out->ndim, out->shape, &numel,
                             &out->nbytes) == WV_OK,
             WV_CORRUPT, "%s: tensor '%.200s' has a bad global shape",
             r->uri, name);
    {
        char what[300];
        snprintf(what, sizeof what, "%s: finishing", r->uri);
        WV_TRY(wv__shards_tile(out, what, err));
    }
    /* One region covering the whole tensor: stored whole. */
    if (out->n_shards == 1 && !any_region) {
        wv__free(out->shards);
        out->shards = NULL;
        out->n_shards = 0;
    } else if (out->n_shards == 1) {
        bool whole = true;
        for (int d = 0; d < out->ndim; d++)
            whole &= out->shards[0].offset[d] == 0;
        if (whole) {
            wv__free(out->shards);
            out->shards = NULL;
            out->n_shards = 0;
        }
    }
out:
    return rc;
}

/* A tensor of a part: its name, writer and index in the part (and, for
 * a name's first copy, where the run of its copies starts). */
struct tref {
    const char *name;
    uint32_t w;
    size_t i, run;
};

/* By writer, then index in the part: the order names first appear in. */
static int cmp_tref_first(const void *a, const void *b)
{
    const struct tref *x = a, *y = b;
    if (x->w != y->w)
        return x->w < y->w ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* By name, then writer and index: a name's copies in a run, its first
 * copy (in writer order) first. */
static int cmp_tref_name(const void *a, const void *b)
{
    int c = strcmp(((const struct tref *)a)->name,
                   ((const struct tref *)b)->name);
    return c ? c : cmp_tref_first(a, b);
}

/* Is checkpoint `id` on the history of `head` (at most `depth` back)? */
static bool in_history(wv_repo *r, const char *head, const char *id,
                       int depth)
{
    char cur[65];
    snprintf(cur, sizeof cur, "%s", head);
    for (int i = 0; i < depth && cur[0]; i++) {
        struct wv__manifest mf;
        if (strcmp(cur, id) == 0)
            return true;
        if (wv__manifest_load(r, cur, &mf) != WV_OK) {
            wv__clearerr(&r->err);
            return false;
        }
        memcpy(cur, mf.parent, 65);
        wv__manifest_release(&mf);
    }
    return false;
}

static int finish_locked(wv_repo *r, const char *branch, const char *txn,
                         uint32_t n, const wv_commit_opts *given,
                         char out_id[WV_ID_HEX])
{
    wv_commit_opts o = WV_COMMIT_OPTS_INIT;
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char dir[PART_DIR_MAX], key[300], hex[65] = "", refkey[160];
    char head[65] = "", head_raw[WV__REF_RAW_MAX], desired[WV__REF_RAW_MAX];
    struct wv__manifest *parts = NULL, mf;
    char (*names)[65] = NULL;
    bool *missing = NULL, locked = false;
    const struct wv__mtensor **pt = NULL;
    struct tref *refs = NULL, *heads = NULL;
    unsigned char *sk = NULL;
    uint32_t n_missing = 0;
    size_t mcap = 0;

    memset(&mf, 0, sizeof mf);
    out_id[0] = '\0';
    if (branch == NULL)
        branch = "main";
    if (given) {
        WV_CHECK(given->struct_size >= offsetof(wv_commit_opts, sign_key),
                 WV_MISUSE, "commit options from an incompatible header");
        memcpy(&o, given, given->struct_size < sizeof o ? given->struct_size
                                                        : sizeof o);
    }
    WV_TRY(check_part_args(err, branch, txn, 0, n));
    WV_TRY(part_dir(r, branch, txn, dir));
    WV_TRY(wv__repo_lock(r, false));
    locked = true;
    rc = read_done(r, dir, out_id);
    if (rc != WV_NOTFOUND)
        goto out;
    wv__clearerr(err);
    rc = WV_OK;

    parts = wv__calloc(n, sizeof *parts);
    names = wv__calloc(n, sizeof *names);
    missing = wv__calloc(n, sizeof *missing);
    pt = wv__calloc(n, sizeof *pt);
    WV_CHECK(parts && names && missing && pt, WV_NOMEM, "out of memory");
    for (uint32_t w = 0; w < n; w++) {
        part_key(dir, w, key);
        rc = read_part(r, key, &parts[w], names[w]);
        if (rc == WV_NOTFOUND) {
            wv__clearerr(err);
            rc = WV_OK;
            missing[w] = true;
            n_missing++;
        }
        WV_TRY(rc);
    }
    if (n_missing) {
        /* Finished meanwhile by another writer (which removed the parts)? */
        rc = read_done(r, dir, out_id);
        if (rc != WV_NOTFOUND)
            goto out;
        wv__clearerr(err);
        char list[200];
        writer_list(missing, n, list, sizeof list);
        rc = wv__seterr(err, WV_BUSY,
                        "%s: transaction '%s' on branch '%s' is not complete: "
                        "the part%s of writer%s %s %s missing (%u of %u "
                        "stored)",
                        r->uri, txn, branch, n_missing == 1 ? "" : "s",
                        n_missing == 1 ? "" : "s", list,
                        n_missing == 1 ? "is" : "are", n - n_missing, n);
        goto out;
    }
    /* Every part belongs here and names the same parent. */
    for (uint32_t w = 0; w < n; w++) {
        const struct wv__manifest *p = &parts[w];
        WV_CHECK(strcmp(p->txn, txn) == 0, WV_CORRUPT,
                 "%s: the part of writer %u belongs to transaction '%.100s', "
                 "not '%s'",
                 r->uri, w, p->txn, txn);
        WV_CHECK(p->n_writers == n && p->writer == w, WV_CORRUPT,
                 "%s: the part of writer %u of transaction '%s' declares "
                 "writer %u of %u, not of %u",
                 r->uri, w, txn, p->writer, p->n_writers, n);
        WV_CHECK(p->branch && strcmp(p->branch, branch) == 0, WV_CORRUPT,
                 "%s: the part of writer %u of transaction '%s' was "
                 "written for branch '%.100s', not '%s'",
                 r->uri, w, txn, p->branch ? p->branch : "", branch);
        WV_CHECK(strcmp(p->parent, parts[0].parent) == 0, WV_CORRUPT,
                 "%s: transaction '%s': the parts name different parents "
                 "(writer 0: %.12s, writer %u: %.12s); the branch moved "
                 "while they were written",
                 r->uri, txn, parts[0].parent[0] ? parts[0].parent : "none",
                 w, p->parent[0] ? p->parent : "none");
        WV_CHECK(p->chunk_size == parts[0].chunk_size, WV_CORRUPT,
                 "%s: transaction '%s': writers 0 and %u used different "
                 "chunk sizes",
                 r->uri, txn, w);
    }

    /* The manifest, from the parts only. */
    memcpy(mf.parent, parts[0].parent, 65);
    mf.branch = wv__strdup(branch);
    mf.message = wv__strdup(parts[0].message ? parts[0].message : "");
    const char *newest = parts[0].time ? parts[0].time : "";
    for (uint32_t w = 1; w < n; w++)
        if (parts[w].time && strcmp(parts[w].time, newest) > 0)
            newest = parts[w].time;
    mf.time = wv__strdup(newest);
    mf.chunk_size = parts[0].chunk_size;
    mf.meta_absent = parts[0].meta_absent;
    mf.meta_default = parts[0].meta_default;
    mf.parts = wv__calloc(n, sizeof *mf.parts);
    WV_CHECK(mf.branch && mf.message && mf.time && mf.parts, WV_NOMEM,
             "out of memory");
    memcpy(mf.parts, names, n * sizeof *names);
    mf.n_parts = n;
    /* metadata: each key from the first writer that has it */
    for (uint32_t w = 0; w < n; w++) {
        for (size_t i = 0; i < parts[w].n_meta; i++) {
            bool seen = false;
            for (size_t k = 0; k < mf.n_meta && !seen; k++)
                seen = strcmp(mf.meta[k].key, parts[w].meta[i].key) == 0;
            if (seen)
                continue;
            WV_CHECK(wv__grow(&mf.meta, &mcap, mf.n_meta, sizeof *mf.meta,
                              8) == WV_OK,
                     WV_NOMEM, "out of memory");
            struct wv__meta *e = &mf.meta[mf.n_meta];
            e->key = wv__strdup(parts[w].meta[i].key);
            e->value = wv__strdup(parts[w].meta[i].value);
            mf.n_meta++;
            WV_CHECK(e->key && e->value, WV_NOMEM, "out of memory");
        }
    }
    /* tensors: in the order of writer 0's, then each writer's new ones;
     * every part's copies found by sorting all (name, writer, index)
     * once, not by searching every part per name */
    size_t total = 0;
    for (uint32_t w = 0; w < n; w++)
        total += parts[w].n_tensors;
    mf.tensors = wv__calloc(total ? total : 1, sizeof *mf.tensors);
    refs = wv__calloc(total ? total : 1, sizeof *refs);
    heads = wv__calloc(total ? total : 1, sizeof *heads);
    WV_CHECK(mf.tensors && refs && heads, WV_NOMEM, "out of memory");
    size_t nr = 0, nh = 0;
    for (uint32_t w = 0; w < n; w++)
        for (size_t i = 0; i < parts[w].n_tensors; i++)
            refs[nr++] = (struct tref){parts[w].tensors[i].name, w, i, 0};
    qsort(refs, nr, sizeof *refs, cmp_tref_name);
    for (size_t k = 0; k < nr; k++)
        if (k == 0 || strcmp(refs[k].name, refs[k - 1].name) != 0)
            heads[nh++] = (struct tref){refs[k].name, refs[k].w, refs[k].i,
                                        k};
    qsort(heads, nh, sizeof *heads, cmp_tref_first);
    for (size_t h = 0; h < nh; h++) {
        size_t k0 = heads[h].run, k = k0;
        for (; k < nr && strcmp(refs[k].name, heads[h].name) == 0; k++)
            if (pt[refs[k].w] == NULL)
                pt[refs[k].w] = &parts[refs[k].w].tensors[refs[k].i];
        rc = merge_tensor(r, heads[h].name, pt, n,
                          &mf.tensors[mf.n_tensors++]);
        for (k = k0; k < nr && strcmp(refs[k].name, heads[h].name) == 0; k++)
            pt[refs[k].w] = NULL;
        WV_TRY(rc);
    }

    if (o.sign_key)
        WV_TRY(wv__sig_load_secret(o.sign_key, &sk, err));
    WV_TRY(wv__signer_trusted(r, sk));
    WV_TRY(wv__put_manifest(r, &mf, sk, hex));
    WV_CHECK(wv__ref_key(r, "heads", branch, refkey) == WV_OK, WV_NOMEM,
             "out of memory");
    WV_TRY(wv__read_head(r, refkey, branch, head, head_raw));
    if (strcmp(head, mf.parent) == 0) {
        WV_TRY(wv__ref_value(r, refkey, branch, hex, desired));
        rc = wv__store_ref_cas(r->store, refkey, head[0] ? head_raw : NULL,
                               desired);
        if (rc == WV_CONFLICT) {
            /* the ref changed: another finisher, or another commit */
            wv__clearerr(err);
            rc = WV_OK;
            WV_TRY(wv__read_head(r, refkey, branch, head, head_raw));
        } else {
            WV_TRY(rc);
            memcpy(head, hex, 65);
        }
    }
    WV_CHECK(strcmp(head, hex) == 0 || in_history(r, head, hex, 1000),
             WV_CONFLICT,
             "%s: branch '%s' moved to %.12s after the parts of transaction "
             "'%s' were written on %.12s: checkpoint %.12s is stored but not "
             "on the branch",
             r->uri, branch, head[0] ? head : "none", txn,
             mf.parent[0] ? mf.parent : "none", hex);
    memcpy(out_id, hex, 65);
    /* Done: the marker, then the parts go (best effort: gc removes what
     * stays). */
    {
        char line[128], now[32];
        wv__utc_now(now);
        snprintf(key, sizeof key, "%s/done", dir);
        int ll = snprintf(line, sizeof line, "%s %s\n", hex, now);
        if (wv__object_put(r, "part-done", key, line, (size_t)ll,
                           WV_PUT_IF_ABSENT) == WV_OK) {
            for (uint32_t w = 0; w < n; w++) {
                part_key(dir, w, key);
                wv__store_del(r->store, key);
            }
        }
        wv__clearerr(err);
    }
out:
    if (locked)
        wv__repo_unlock(r);
    for (uint32_t w = 0; parts && w < n; w++)
        wv__manifest_release(&parts[w]);
    wv__free(parts);
    wv__free(names);
    wv__free(missing);
    wv__free(pt);
    wv__free(refs);
    wv__free(heads);
    wv__sig_key_free(sk);
    wv__manifest_release(&mf);
    if (rc != WV_OK)
        out_id[0] = '\0';
    return rc;
}

int wv_repo_finish(wv_repo *r, const char *branch, const char *txn,
                   uint32_t n_writers, const wv_commit_opts *opts,
                   char id[WV_ID_HEX])
{
    return WV__REPO_LOCKED(r, (wv__clearerr(&r->err),
                               finish_locked(r, branch, txn, n_writers, opts,
                                             id)));
}

/* ---- unfinished transactions --------------------------------------------- */

/* The part folders of the repository: each one's key prefix and what its
 * records say. */
struct pgroup {
    char dir[PART_DIR_MAX];
    bool done;
    size_t n_parts;
    char **keys; /* its part records */
    size_t cap_keys;
    char *branch, *txn;
    uint32_t n_writers;
    char oldest[32], newest[32];
    unsigned char (*ids)[32]; /* its chunks (list_groups' keep_ids) */
    size_t n_ids, cap_ids;
};

struct pgroups {
    struct pgroup *v;
    size_t n, cap;
};

static void pgroups_release(struct pgroups *g)
{
    for (size_t i = 0; i < g->n; i++) {
        for (size_t k = 0; k < g->v[i].n_parts; k++)
            wv__free(g->v[i].keys[k]);
        wv__free(g->v[i].keys);
        wv__free(g->v[i].branch);
        wv__free(g->v[i].txn);
        wv__free(g->v[i].ids);
    }
    wv__free(g->v);
    memset(g, 0, sizeof *g);
}

static int cmp_group(const void *a, const void *b)
{
    const struct pgroup *x = a, *y = b;
    int c = strcmp(x->branch ? x->branch : "", y->branch ? y->branch : "");
    if (c == 0)
        c = strcmp(x->txn ? x->txn : "", y->txn ? y->txn : "");
    return c ? c : strcmp(x->dir, y->dir);
}

/* The chunk ids of part record mf appended to its group's. */
static int keep_ids(struct pgroup *p, const struct wv__manifest *mf)
{
    for (size_t t = 0; t < mf->n_tensors; t++) {
        const struct wv__mtensor *mt = &mf->tensors[t];
        if (mt->n_chunks == 0)
            continue;
        if (wv__reserve(&p->ids, &p->cap_ids, p->n_ids + mt->n_chunks,
                        sizeof *p->ids) != WV_OK)
            return WV_NOMEM;
        memcpy(p->ids[p->n_ids], mt->chunks, mt->n_chunks * WV__ID_LEN);
        p->n_ids += mt->n_chunks;
    }
    return WV_OK;
}

/* List parts/ into groups; read every part record of a group not done
 * when `read` (the names, writers count and times; with `ids` its chunk
 * ids too). */
static int list_groups(wv_repo *r, struct pgroups *g, bool read, bool ids)
{
    struct wv__err *err = &r->err;
    char **keys = NULL;
    size_t n_keys = 0;
    int rc = WV_OK;
    struct wv__manifest mf;
    memset(&mf, 0, sizeof mf);
    WV_TRY(wv__repo_list(r, "parts/", &keys, &n_keys));
    for (size_t i = 0; i < n_keys; i++) {
        const char *slash = strrchr(keys[i], '/');
        size_t dl = (size_t)(slash - keys[i]);
        if (dl >= PART_DIR_MAX)
            continue; /* not one of ours */
        struct pgroup *p = NULL;
        for (size_t k = 0; k < g->n && !p; k++)
            if (strlen(g->v[k].dir) == dl &&
                memcmp(g->v[k].dir, keys[i], dl) == 0)
                p = &g->v[k];
        if (p == NULL) {
            WV_CHECK(wv__grow(&g->v, &g->cap, g->n, sizeof *g->v, 8) ==
                         WV_OK,
                     WV_NOMEM, "out of memory");
            p = &g->v[g->n++];
            memset(p, 0, sizeof *p);
            memcpy(p->dir, keys[i], dl);
        }
        if (strcmp(slash + 1, "done") == 0) {
            p->done = true;
            continue;
        }
        WV_CHECK(wv__grow(&p->keys, &p->cap_keys, p->n_parts,
                          sizeof *p->keys, 4) == WV_OK,
                 WV_NOMEM, "out of memory");
        p->keys[p->n_parts++] = keys[i];
        keys[i] = NULL;
    }
    for (size_t k = 0; read && k < g->n; k++) {
        struct pgroup *p = &g->v[k];
        if (p->done)
            continue;
        for (size_t i = 0; i < p->n_parts; i++) {
            rc = read_part(r, p->keys[i], &mf, NULL);
            if (rc == WV_NOTFOUND) { /* finished and removed meanwhile */
                wv__clearerr(err);
                rc = WV_OK;
                continue;
            }
            WV_TRY(rc);
            if (p->branch == NULL) {
                p->branch = wv__strdup(mf.branch ? mf.branch : "");
                p->txn = wv__strdup(mf.txn);
                p->n_writers = mf.n_writers;
                WV_CHECK(p->branch && p->txn, WV_NOMEM, "out of memory");
            }
            const char *t = mf.time ? mf.time : "";
            if (p->oldest[0] == '\0' || strcmp(t, p->oldest) < 0)
                snprintf(p->oldest, sizeof p->oldest, "%s", t);
            if (strcmp(t, p->newest) > 0)
                snprintf(p->newest, sizeof p->newest, "%s", t);
            if (ids)
                WV_CHECK(keep_ids(p, &mf) == WV_OK, WV_NOMEM,
                         "out of memory");
            wv__manifest_release(&mf);
        }
    }
out:
    wv__manifest_release(&mf);
    wv__repo_list_free(keys, n_keys);
    return rc;
}

static int pending_locked(wv_repo *r, wv_pending_cb cb, void *arg)
{
    struct wv__err *err = &r->err;
    struct pgroups g = {0};
    int rc = WV_OK;
    wv__clearerr(err);
    WV_CHECK(cb != NULL, WV_MISUSE, "listing pending parts needs a callback");
    WV_TRY(list_groups(r, &g, true, false));
    if (g.n)
        qsort(g.v, g.n, sizeof *g.v, cmp_group);
    for (size_t k = 0; k < g.n; k++) {
        const struct pgroup *p = &g.v[k];
        if (p->done || p->branch == NULL)
            continue;
        WV_TRY(cb(arg, p->branch, p->txn, p->n_writers,
                  (uint32_t)p->n_parts, p->oldest));
    }
out:
    pgroups_release(&g);
    return rc;
}

int wv_repo_list_pending(wv_repo *r, wv_pending_cb cb, void *arg)
{
    return WV__REPO_LOCKED(r, pending_locked(r, cb, arg));
}

/* ---- gc ------------------------------------------------------------------ */

int wv__parts_gc(wv_repo *r, uint32_t timeout, bool dry_run,
                 struct wv__chunk_index *live, uint64_t *removed)
{
    struct wv__err *err = &r->err;
    struct pgroups g = {0};
    int rc = WV_OK;
    char now[32];
    *removed = 0;
    if (timeout == 0)
        timeout = 86400;
    wv__utc_now(now);
    int64_t t_now = parse_utc(now);
    WV_TRY(list_groups(r, &g, true, true));
    for (size_t k = 0; k < g.n; k++) {
        struct pgroup *p = &g.v[k];
        int64_t t = parse_utc(p->newest);
        if (p->done) {
            /* finished: its parts go at once, its marker (which answers a
             * writer retrying) after the timeout */
            char id[65];
            if (read_done_t(r, p->dir, id, &t) != WV_OK)
                t = -1;
            wv__clearerr(err);
        }
        bool expired = (p->done || p->n_parts == 0) ? true
                       : t >= 0 && t_now - t >= (int64_t)timeout;
        bool drop_marker = p->done && (t < 0 || t_now - t >= (int64_t)timeout);
        if (!expired) {
            /* still pending: its chunks live */
            for (size_t i = 0; i < p->n_ids; i++) {
                struct wv__chunk_loc l;
                memset(&l, 0, sizeof l);
                memcpy(l.id, p->ids[i], 32);
                l.stored_len = 1; /* occupied */
                WV_CHECK(wv__cidx_put(live, &l) == WV_OK, WV_NOMEM,
                         "out of memory");
            }
            continue;
        }
        for (size_t i = 0; !dry_run && i < p->n_parts; i++)
            wv__store_del(r->store, p->keys[i]);
        if (!p->done && p->n_parts)
            (*removed)++;
        if (drop_marker && !dry_run) {
            char key[300];
            snprintf(key, sizeof key, "%s/done", p->dir);
            wv__store_del(r->store, key);
        }
        wv__clearerr(err);
    }
out:
    pgroups_release(&g);
    return rc;
}
