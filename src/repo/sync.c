/*
 * sync.c -- copying checkpoints between repositories (push, pull, clone).
 *
 * Every object but a ref is immutable and named by its content, so a copy
 * is a set difference: list what the source has, list what the
 * destination has, copy the rest, then move the refs. The order makes a
 * transfer safe to interrupt anywhere and to run again:
 *
 *   1. config     only when the destination has none (a new repository),
 *                 after the key slots of an encrypted one;
 *   2. keys/, trust/  key slots and trusted keys the destination lacks;
 *      packs      data first ...
 *   3. index      ... then what locates it ...
 *   4. manifests  ... then the checkpoints that need both;
 *   5. revoked/   slots and trusted keys removed at the source are
 *                 removed here too (after step 2: never zero slots);
 *   6. sync       one durability barrier on the destination;
 *   7. refs       the sealed trust list (encrypted: when the
 *                 destination's is missing or older), then each ref by
 *                 compare-and-swap, fast-forward only unless forced, so
 *                 a destination ref never names a checkpoint whose bytes
 *                 are not all there. A ref is written anew (re-sealed
 *                 with the destination's next write counter), so its
 *                 readers there never see it go back.
 *
 * A re-run after an interruption lists again and copies only what is
 * still missing. Objects are copied byte for byte. Every pack is checked
 * as it arrives, before it is kept (object.c, wv__pack_check): its frame,
 * a trailer that hashes to its name (and, sealed, authenticates), entries
 * inside it, then each chunk on its own: in a plain repository decoded
 * and hashed to its id (a chunk stored as is: hashed where it lies); in
 * an encrypted one unsealed, which authenticates it against its id,
 * length and codec, and decoded. Both ends are opened with the key (a
 * sync reads refs through the handles, to check ancestry and re-seal
 * them), so there is no keyless copy to fall back to. A delta chunk's
 * base may be in a pack that has not arrived yet: its frame is decoded to
 * exactly its length (and authenticated when sealed), and its hash is
 * checked when it is read (checkout, wv verify). A pack that fails is not
 * kept (the file it streamed into is dropped, the buffer never written),
 * the transfer fails with a message naming the pack and the chunk, and a
 * re-run fetches it again. Index objects and manifests are checked the
 * same way against their names (unsealed first when encrypted), so a
 * manifest damaged on the way never lands under a ref. The check runs
 * on the worker that fetched the pack, so it spreads over the `jobs`
 * workers as the copies do. The destination holds a shared lock while
 * objects arrive, so a gc there cannot delete them before a ref names
 * them; the source is only read (a user with read-only access can pull
 * and clone).
 *
 * Objects move in parallel: `jobs` workers, each with its own store
 * handles (and so its own error context and connections), take the next
 * object from a shared cursor, read it whole into its buffer (or map it,
 * from local disk), check it (packs, index objects and manifests), and
 * write it whole; from S3 to local disk it streams into the new object's
 * file instead, checked from that file through a read-only mapping (the
 * page cache it was just written to) before the file is renamed into
 * place (stream_one). Memory
 * in flight is at most jobs x the largest object (32 MiB packs by
 * default), plus each worker's scratch for one decoded chunk.
 */
#include "core.h"
#include "object.h"
#include "refs.h"
#include "repo.h"
#include "trust.h"

#include <pthread.h>
#include <sys/mman.h>

static int cmp_obj(const void *a, const void *b)
{
    return strcmp(((const struct wv__obj *)a)->key,
                  ((const struct wv__obj *)b)->key);
}

/* ---- the parallel copy ------------------------------------------------- */

struct copier {
    const char *src_uri, *dst_uri;
    const wv_repo *check; /* packs, index objects and manifests: checked
                             as this repository's (its keys open them);
                             NULL: other objects, not checked           */
    struct wv__obj *todo;
    size_t n_todo;
    size_t next; /* cursor, under mu */
    pthread_mutex_t mu;
    int rc;      /* first failure */
    struct wv__err err;
    uint64_t done_bytes, total_bytes, done_objects;
    uint64_t chunks; /* checked, under mu */
    struct wv__store_count moved; /* the workers' handles, under mu */
    const wv_sync_opts *opts;
};

/* Add the requests and bytes of store handle st to *to. */
static void tally(struct wv__store_count *to, struct wv__store *st)
{
    struct wv__store_count c;
    wv__store_counts(st, &c);
    to->requests += c.requests;
    to->bytes_sent += c.bytes_sent;
    to->bytes_received += c.bytes_received;
}

static void copier_fail(struct copier *c, int rc, const struct wv__err *e)
{
    pthread_mutex_lock(&c->mu);
    if (c->rc == WV_OK) {
        c->rc = rc;
        c->err = *e;
        if (c->err.msg[0] == '\0')
            wv__seterr(&c->err, rc, "%s", wv_strerror(rc));
    }
    pthread_mutex_unlock(&c->mu);
}

static int size_changed(struct wv__store *src, const char *key)
{
    return wv__seterr(src->err, WV_CORRUPT,
                      "%s: object '%s' changed size while copied", src->uri,
                      key);
}

/* An object that arrived damaged: the check's message (naming the chunk,
 * for a pack) behind one naming the object, and that nothing of it is
 * kept. */
static int refuse(struct wv__store *src, const struct copier *c,
                  const char *key, int rc, const struct wv__err *e)
{
    const char *m = e->msg;
    size_t ul = strlen(c->check->uri);
    if (strncmp(m, c->check->uri, ul) == 0 && m[ul] == ':' &&
        m[ul + 1] == ' ')
        m += ul + 2; /* "<uri>: " and "<key>: " once are enough */
    size_t kl = strlen(key);
    if (strncmp(m, key, kl) == 0 && m[kl] == ':' && m[kl + 1] == ' ')
        m += kl + 2;
    if (rc == WV_NOMEM)
        return wv__seterr(src->err, rc, "out of memory");
    return wv__seterr(src->err, rc,
                      "%s: object '%s' failed its check on arrival, so it "
                      "was not copied: %s",
                      c->src_uri, key, m);
}

/* Check object `key` (len bytes at p) as it arrived: a pack with its
 * chunks (counted into *chunks), an index object or a manifest against
 * its name. A copier without c->check checks nothing. */
static int check_object(const struct copier *c, struct wv__store *src,
                        const char *key, const unsigned char *p, size_t len,
                        struct wv__pack_scratch *ps, uint64_t *chunks)
{
    struct wv__err e = {0};
    uint64_t n = 0;
    int rc;
    if (c->check == NULL)
        return WV_OK;
    if (strncmp(key, "packs/", 6) == 0) {
        rc = wv__pack_check(c->check, key, p, len, ps, &n, &e);
    } else {
        bool idx = strncmp(key, "index/", 6) == 0;
        const char *name = idx ? key + 6 : wv__manifest_key_hex(key);
        if (name == NULL || strlen(name) != 64 || !wv__is_hex(name, 64))
            rc = wv__seterr(&e, WV_CORRUPT, "not %s name (expected %s)",
                            idx ? "an index object" : "a manifest",
                            idx ? "index/<64 hex>"
                                : "manifests/<2 hex>/<64 hex>");
        else
            rc = wv__object_check(c->check, idx ? "index" : "manifest",
                                  key, name, p, len, ps, &e);
    }
    if (rc != WV_OK)
        return refuse(src, c, key, rc, &e);
    *chunks += n;
    return WV_OK;
}

/* Copy object key (len bytes) from src into a new object of dst through
 * a file (src's get_fd into the file of dst's put_open), checked from
 * that file (read back from the page cache through a mapping) before it
 * is kept; the object appears only whole and checked, and not at all on
 * a failure. */
static int stream_one(const struct copier *c, struct wv__store *src,
                      struct wv__store *dst, const char *key, size_t len,
                      struct wv__pack_scratch *ps, uint64_t *chunks)
{
    struct wv__store_wfile w = {key, WV_PUT_IF_ABSENT | WV_PUT_NOSYNC, -1,
                                NULL};
    bool exists;
    size_t n = 0;
    int rc = wv__store_put_open(dst, &w, &exists);
    if (rc != WV_OK || exists)
        return rc;
    rc = wv__store_get_fd(src, key, 0, len, w.fd, 0, &n);
    if (rc == WV_IO_SHORT_READ || (rc == WV_OK && n != len))
        rc = size_changed(src, key);
    if (rc == WV_OK && c->check != NULL) {
        int fl = MAP_SHARED;
#ifdef MAP_POPULATE
        fl |= MAP_POPULATE; /* the pages are cached: map them at once */
#endif
        void *m = mmap(NULL, len, PROT_READ, fl, w.fd, 0);
        if (m == MAP_FAILED) {
            rc = wv__seterr(src->err, WV_IO,
                            "%s: cannot read back '%s' to check it: %s",
                            c->dst_uri, key, strerror(errno));
        } else {
            rc = check_object(c, src, key, m, len, ps, chunks);
            munmap(m, len);
        }
    }
    int rc2 = wv__store_put_close(dst, &w, len, rc == WV_OK);
    return rc != WV_OK ? rc : rc2;
}

/* Copy object o from src to dst whole: from a mapping of it (local disk)
 * or through the worker's buffer *buf (*cap bytes, grown as needed: fresh
 * memory for every object would cost a page fault per 4 KiB each time),
 * checked before it is written. */
static int copy_one(const struct copier *c, struct wv__store *src,
                    struct wv__store *dst, const struct wv__obj *o,
                    unsigned char **buf, size_t *cap,
                    struct wv__pack_scratch *ps, uint64_t *chunks)
{
    size_t len = (size_t)o->size, n = 0;
    struct wv__store_map m = {o->key, NULL, 0};
    int rc = WV_OK;
    if (o->size > SIZE_MAX / 2)
        return wv__seterr(src->err, WV_RANGE, "%s: object '%s' is too large",
                          src->uri, o->key);
    /* A local source is mapped, not read: the upload takes its bytes from
     * the page cache, with no copy into a buffer first (whose first use
     * faults in every page). */
    if (len > 0 && wv__store_control(src, WV_STORE_MAP, &m) == WV_OK) {
        n = m.len;
    } else {
        wv__clearerr(src->err);
        m.p = NULL;
        if (len > *cap) {
            unsigned char *nb = wv__realloc(*buf, len);
            if (nb == NULL)
                return wv__seterr(src->err, WV_NOMEM, "out of memory");
            *buf = nb;
            *cap = len;
        }
        /* the size is the listing's: objects never change, and a GET
         * needs no HEAD first */
        if (len > 0)
            rc = wv__store_get(src, o->key, 0, *buf, len, &n);
    }
    if (rc == WV_IO_SHORT_READ || (rc == WV_OK && n != len))
        rc = size_changed(src, o->key);
    const void *from = m.p    ? (const void *)m.p
                       : len ? (const void *)*buf
                             : (const void *)"";
    if (rc == WV_OK)
        rc = check_object(c, src, o->key, from, len, ps, chunks);
    if (rc == WV_OK)
        rc = wv__store_put(dst, o->key, from, len,
                           WV_PUT_IF_ABSENT | WV_PUT_NOSYNC);
    if (m.p != NULL)
        wv__store_control(src, WV_STORE_UNMAP, &m);
    return rc;
}

static void *copy_worker(void *arg)
{
    struct copier *c = arg;
    struct wv__err e = {0};
    struct wv__store *src = NULL, *dst = NULL;
    unsigned char *buf = NULL;
    size_t cap = 0;
    struct wv__pack_scratch ps = {0};
    int rc;
    if ((rc = wv__store_open(c->src_uri, false, &e, &src)) != WV_OK ||
        (rc = wv__store_open(c->dst_uri, false, &e, &dst)) != WV_OK) {
        copier_fail(c, rc, &e);
        goto out;
    }
    /* From S3 to local disk the bytes stream from the socket into the
     * file that becomes the object: no buffer, and the copy into the page
     * cache happens while they are still in the CPU's cache. */
    bool stream = wv__store_can_stream(src, dst);
    for (;;) {
        pthread_mutex_lock(&c->mu);
        bool stop = c->rc != WV_OK || c->next >= c->n_todo;
        size_t i = stop ? 0 : c->next++;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        const struct wv__obj *o = &c->todo[i];
        size_t len = (size_t)o->size;
        uint64_t chunks = 0;
        if (stream && len > 0 && o->size <= SIZE_MAX / 2)
            rc = stream_one(c, src, dst, o->key, len, &ps, &chunks);
        else
            rc = copy_one(c, src, dst, o, &buf, &cap, &ps, &chunks);
        if (rc != WV_OK) {
            copier_fail(c, rc, &e);
            break;
        }
        pthread_mutex_lock(&c->mu);
        c->done_bytes += len;
        c->done_objects++;
        c->chunks += chunks;
        if (c->opts && c->opts->progress)
            c->opts->progress(c->opts->progress_arg, c->done_bytes,
                              c->total_bytes);
        pthread_mutex_unlock(&c->mu);
    }
    /* the durability barrier for what this handle wrote unsynced */
    if (c->rc == WV_OK && (rc = wv__store_control(dst, WV_STORE_SYNC,
                                                  NULL)) != WV_OK &&
        rc != WV_NOTFOUND)
        copier_fail(c, rc, &e);
out:
    wv__free(buf);
    wv__pack_scratch_release(&ps);
    pthread_mutex_lock(&c->mu);
    tally(&c->moved, src);
    tally(&c->moved, dst);
    pthread_mutex_unlock(&c->mu);
    wv__store_close(src);
    wv__store_close(dst);
    return NULL;
}

/* The keys of `s` under prefix that `d` lacks, into *want. */
static int plan_prefix(wv_repo *s, wv_repo *d, const char *prefix,
                       struct wv__objlist *want, wv_sync_result *res,
                       struct wv__err *err)
{
    struct wv__objlist have = {0};
    int rc;
    if ((rc = wv__repo_list_sized(s, prefix, want)) != WV_OK) {
        *err = s->err;
        goto out;
    }
    if ((rc = wv__repo_list_sized(d, prefix, &have)) != WV_OK) {
        *err = d->err;
        goto out;
    }
    if (have.n > 1) /* qsort's array may not be NULL, even when empty */
        qsort(have.v, have.n, sizeof *have.v, cmp_obj);
    if (want->n > 1)
        qsort(want->v, want->n, sizeof *want->v, cmp_obj);
    /* want -= have, in place (both sorted) */
    size_t k = 0, j = 0;
    for (size_t i = 0; i < want->n; i++) {
        while (j < have.n && strcmp(have.v[j].key, want->v[i].key) < 0)
            j++;
        if (j < have.n && strcmp(have.v[j].key, want->v[i].key) == 0) {
            wv__free(want->v[i].key);
            continue;
        }
        want->v[k++] = want->v[i];
    }
    res->objects_total += want->n;
    want->n = k;
out:
    wv__objlist_release(&have);
    return rc;
}

/* Copy the objects of `want` on opts->jobs threads, each checked on
 * arrival when `check` (packs, index objects, manifests); progress counts
 * on from *done towards `total` (the bytes of the whole sync). */
static int copy_objects(wv_repo *s, wv_repo *d, struct wv__objlist *want,
                        bool check, const wv_sync_opts *opts,
                        uint64_t *done,
                        uint64_t total, wv_sync_result *res,
                        struct wv__err *err)
{
    struct copier c;
    pthread_t th[32];
    int nth = 0, rc;
    if (want->n == 0)
        return WV_OK;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.mu, NULL);
    c.src_uri = s->uri;
    c.dst_uri = d->uri;
    c.check = check ? s : NULL;
    c.todo = want->v;
    c.n_todo = want->n;
    c.opts = opts;
    c.done_bytes = *done;
    c.total_bytes = total;
    int jobs = opts && opts->jobs > 0 ? opts->jobs : 4;
    if (jobs > (int)(sizeof th / sizeof th[0]))
        jobs = (int)(sizeof th / sizeof th[0]);
    if ((size_t)jobs > want->n)
        jobs = (int)want->n;
    for (nth = 0; nth < jobs; nth++)
        if (pthread_create(&th[nth], NULL, copy_worker, &c) != 0)
            break;
    if (nth == 0)
        copy_worker(&c);
    for (int i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    res->objects_copied += c.done_objects;
    res->chunks_verified += c.chunks;
    res->bytes_copied += c.done_bytes - *done;
    res->requests += c.moved.requests;
    res->bytes_sent += c.moved.bytes_sent;
    res->bytes_received += c.moved.bytes_received;
    *done = c.done_bytes;
    rc = c.rc;
    if (rc != WV_OK)
        *err = c.err;
    pthread_mutex_destroy(&c.mu);
    return rc;
}

/* ---- refs ---------------------------------------------------------------- */

/* Is `anc` the checkpoint `id` or one of its ancestors in `r`? A missing
 * (pruned) parent ends the walk: not provably an ancestor. */
static int is_ancestor(wv_repo *r, const char *anc, const char *id,
                       bool *yes)
{
    char cur[65];
    int rc = WV_OK;
    *yes = false;
    snprintf(cur, sizeof cur, "%s", id);
    for (long steps = 0; cur[0] && steps < 10000000; steps++) {
        if (strcmp(cur, anc) == 0) {
            *yes = true;
            return WV_OK;
        }
        struct wv__manifest mf;
        memset(&mf, 0, sizeof mf);
        rc = wv__manifest_load(r, cur, &mf);
        if (rc == WV_NOTFOUND) {
            wv__clearerr(&r->err);
            return WV_OK;
        }
        if (rc != WV_OK)
            return rc;
        snprintf(cur, sizeof cur, "%s", mf.parent);
        wv__manifest_release(&mf);
    }
    return WV_OK;
}

struct reflist {
    char **keys;
    size_t n;
};

static int sync_ref(wv_repo *s, wv_repo *d, const char *key,
                    const wv_sync_opts *opts, wv_sync_result *res,
                    struct wv__err *err)
{
    char sraw[WV__REF_RAW_MAX], draw[WV__REF_RAW_MAX], val[WV__REF_RAW_MAX];
    char sid[65], did[65];
    bool tag = strncmp(key, "refs/tags/", 10) == 0;
    char name[160];
    int rc = wv__ref_read(s, key, NULL, sraw, sid, name, sizeof name);
    if (rc != WV_OK) {
        *err = s->err;
        return rc;
    }
    rc = wv__ref_read(d, key, NULL, draw, did, NULL, 0);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(&d->err);
        rc = wv__ref_value(d, key, name, sid, val);
        if (rc == WV_OK)
            rc = wv__store_ref_cas(d->store, key, NULL, val);
    } else if (rc != WV_OK) {
        *err = d->err;
        return rc;
    } else if (strcmp(sid, did) == 0) {
        res->refs_unchanged++;
        return WV_OK;
    } else {
        bool ff = false, behind = false;
        if (!tag) {
            if ((rc = is_ancestor(s, did, sid, &ff)) != WV_OK) {
                *err = s->err;
                return rc;
            }
            if (!ff && (rc = is_ancestor(d, sid, did, &behind)) != WV_OK) {
                *err = d->err;
                return rc;
            }
        }
        if (behind) { /* the destination already has it and more */
            res->refs_unchanged++;
            return WV_OK;
        }
        if (!ff && !(opts && opts->force))
            return wv__seterr(
                err, WV_CONFLICT,
                "%s: %s '%s' is at %.12s there and at %.12s here, and "
                "neither contains the other (%s); nothing moved: give "
                "--force to overwrite it",
                d->uri, tag ? "tag" : "branch", name, did, sid,
                tag ? "tags never move" : "the histories diverged");
        rc = wv__ref_value(d, key, name, sid, val);
        if (rc == WV_OK)
            rc = wv__store_ref_cas(d->store, key, draw, val);
    }
    if (rc == WV_CONFLICT) {
        wv__clearerr(&d->err);
        return wv__seterr(err, WV_CONFLICT,
                          "%s: %s '%s' changed while it was being updated "
                          "(another push or commit); run again",
                          d->uri, tag ? "tag" : "branch", name);
    }
    if (rc != WV_OK) {
        *err = d->err;
        return rc;
    }
    res->refs_updated++;
    return WV_OK;
}

static int collect_refs(wv_repo *s, const char *branch, struct reflist *rl,
                        struct wv__err *err)
{
    int rc;
    if (branch) {
        char key[160];
        rl->keys = wv__calloc(1, sizeof *rl->keys);
        if (rl->keys == NULL)
            return wv__seterr(err, WV_NOMEM, "out of memory");
        if (wv__ref_key(s, "heads", branch, key) != WV_OK ||
            (rl->keys[0] = wv__strdup(key)) == NULL)
            return wv__seterr(err, WV_NOMEM, "out of memory");
        rl->n = 1;
        return WV_OK;
    }
    char **h = NULL, **t = NULL;
    size_t nh = 0, nt = 0;
    if ((rc = wv__repo_list(s, "refs/heads/", &h, &nh)) != WV_OK ||
        (rc = wv__repo_list(s, "refs/tags/", &t, &nt)) != WV_OK) {
        wv__repo_list_free(h, nh);
        *err = s->err;
        return rc;
    }
    rl->keys = wv__calloc(nh + nt + 1, sizeof *rl->keys);
    if (rl->keys == NULL) {
        wv__repo_list_free(h, nh);
        wv__repo_list_free(t, nt);
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < nh + nt; i++) {
        const char *k = i < nh ? h[i] : t[i - nh];
        /* refs only: skip the local backend's ref locks and the like
         * (an encrypted repository's ref names are hex digests) */
        const char *nm = k + (i < nh ? 11 : 10);
        if (wv__ref_name_ok(nm) && strlen(nm) < 120)
            rl->keys[rl->n++] = i < nh ? h[i] : t[i - nh];
        else
            wv__free(i < nh ? h[i] : t[i - nh]);
        if (i < nh)
            h[i] = NULL;
        else
            t[i - nh] = NULL;
    }
    wv__free(h);
    wv__free(t);
    return WV_OK;
}

/* ---- entry point ------------------------------------------------------- */

static int open_dest(const char *uri, wv_repo *s, bool create,
                     wv_repo **out, struct wv__store_count *moved,
                     struct wv__err *err)
{
    char eb[WV_ERRBUF_SIZE] = "";
    int rc = wv_repo_open(uri, eb, sizeof eb, out);
    if (rc != WV_NOTFOUND || !create) {
        if (rc != WV_OK)
            wv__seterr(err, rc, "%s", eb);
        return rc;
    }
    /* a new repository: the source's config, byte for byte */
    struct wv__store *st = NULL;
    unsigned char *cfg = NULL;
    size_t len = 0;
    if ((rc = wv__store_get_all(s->store, "config", 1 << 16, &cfg,
                                &len)) != WV_OK) {
        *err = s->err;
        return rc;
    }
    rc = wv__store_open(uri, true, err, &st);
    /* an encrypted repository opens through its key slots: copy them
     * before the config that makes the destination a repository */
    struct wv__objlist slots = {0};
    if (rc == WV_OK &&
        (rc = wv__repo_list_sized(s, "keys/", &slots)) != WV_OK)
        *err = s->err;
    for (size_t i = 0; rc == WV_OK && i < slots.n; i++) {
        unsigned char *b = NULL;
        size_t bl = 0;
        rc = wv__store_get_all(s->store, slots.v[i].key, 1 << 20, &b, &bl);
        if (rc != WV_OK)
            *err = s->err;
        else
            rc = wv__store_put(st, slots.v[i].key, b, bl, WV_PUT_IF_ABSENT);
        wv__free(b);
    }
    wv__objlist_release(&slots);
    if (rc == WV_OK)
        rc = wv__store_put(st, "config", cfg, len, WV_PUT_IF_ABSENT);
    if (st)
        tally(moved, st);
    wv__store_close(st);
    wv__free(cfg);
    if (rc != WV_OK)
        return rc;
    rc = wv_repo_open(uri, eb, sizeof eb, out);
    if (rc != WV_OK)
        wv__seterr(err, rc, "%s", eb);
    return rc;
}

/* Does the source hold delta chunks (codec 3)? */
static int has_deltas(wv_repo *s, bool *yes, struct wv__err *err)
{
    *yes = false;
    if (!WV__VERSION_HAS_DELTA(s->cfg.version))
        return WV_OK;
    int rc = wv__repo_load_index(s);
    if (rc != WV_OK) {
        *err = s->err;
        return rc;
    }
    for (size_t i = 0; i < s->cidx.cap && !*yes; i++)
        *yes = s->cidx.slots[i].stored_len != 0 &&
               s->cidx.slots[i].codec == WV__CODEC_DELTA;
    return WV_OK;
}

/* Two repositories can exchange checkpoints when their chunk ids mean the
 * same thing: plain SHA-256 on both sides, or the same keyed hash; and
 * delta chunks (with their bases: every pack is copied) go only to a
 * repository whose format version has them, so that its older readers
 * never meet one. */
static int compatible(wv_repo *s, wv_repo *d, struct wv__err *err)
{
    bool deltas = false;
    int rc = has_deltas(s, &deltas, err);
    if (rc != WV_OK)
        return rc;
    if (deltas && !WV__VERSION_HAS_DELTA(d->cfg.version))
        return wv__seterr(err, WV_MISUSE,
                          "%s holds delta chunks, which %s (format version "
                          "%d, readable by builds without deltas) cannot "
                          "hold: copy into a new repository, or one made "
                          "with deltas allowed",
                          s->uri, d->uri, d->cfg.version);
    if (!wv__repo_same_keys(s, d))
        return wv__seterr(err, WV_MISUSE,
                          "%s and %s cannot exchange checkpoints: %s",
                          s->uri, d->uri,
                          (s->crypt == NULL) != (d->crypt == NULL)
                              ? "one is encrypted and the other is not"
                              : "they are encrypted with different keys "
                                "(push and pull work between a repository "
                                "and its clones)");
    return WV_OK;
}

/* Key slots removed at the destination stay removed: a slot's id is
 * random and never reused, so a marker there means that slot is gone for
 * good, even if the source (an older copy) still has it. */
static int drop_revoked_slots(wv_repo *d, struct wv__objlist *want,
                              struct wv__err *err)
{
    struct wv__objlist marks = {0};
    size_t pre = strlen(WV__REVOKED), k = 0;
    int rc = wv__repo_list_sized(d, WV__REVOKED "keys/", &marks);
    if (rc != WV_OK) {
        *err = d->err;
        goto out;
    }
    for (size_t i = 0; i < want->n; i++) {
        bool gone = false;
        for (size_t j = 0; j < marks.n && !gone; j++)
            gone = strcmp(marks.v[j].key + pre, want->v[i].key) == 0;
        if (gone)
            wv__free(want->v[i].key);
        else
            want->v[k++] = want->v[i];
    }
    want->n = k;
out:
    wv__objlist_release(&marks);
    return rc;
}

/* Trusted keys just copied are trusted again at the source: a marker of
 * an earlier removal at the destination goes, so that marker and key
 * never both stay there (and a later removal is carried again). */
static int clear_markers(wv_repo *d, const struct wv__objlist *copied,
                         struct wv__err *err)
{
    char mk[200];
    for (size_t i = 0; i < copied->n; i++) {
        snprintf(mk, sizeof mk, WV__REVOKED "%s", copied->v[i].key);
        int rc = wv__store_del(d->store, mk);
        if (rc == WV_NOTFOUND) {
            wv__clearerr(&d->err);
            continue;
        }
        if (rc != WV_OK) {
            *err = d->err;
            return rc;
        }
    }
    return WV_OK;
}

/* Step 5: each marker "revoked/<key>" the source has and the
 * destination lacks (keyapi.c), when the source no longer has the key slot
 * or trusted key it names: that object is deleted at the destination and
 * then the marker is copied, so a key removed in one repository stops
 * opening (or being trusted by) its copies at the next push or pull, and
 * a marker already at the destination means its removal is done (each
 * sync does no work for old removals). A marker whose object the source
 * has again (a key trusted anew) is not applied. Markers naming anything
 * but keys/ and trust/ are ignored: a sync never deletes data. */
static int sync_revocations(wv_repo *s, wv_repo *d, struct wv__err *err)
{
    struct wv__objlist marks = {0};
    wv_sync_result uncounted; /* markers are not checkpoint objects */
    unsigned char *b = NULL;
    memset(&uncounted, 0, sizeof uncounted);
    int rc = plan_prefix(s, d, WV__REVOKED, &marks, &uncounted, err);
    for (size_t i = 0; rc == WV_OK && i < marks.n; i++) {
        const char *obj = marks.v[i].key + strlen(WV__REVOKED);
        uint64_t sz;
        size_t bl = 0;
        if (strncmp(obj, "keys/", 5) != 0 && strncmp(obj, "trust/", 6) != 0)
            continue;
        rc = wv__store_stat(s->store, obj, &sz);
        if (rc == WV_OK)
            continue;
        if (rc == WV_NOTFOUND) {
            wv__clearerr(&s->err);
            rc = wv__store_get_all(s->store, marks.v[i].key, 1 << 16, &b,
                                   &bl);
        }
        if (rc != WV_OK) {
            *err = s->err;
            break;
        }
        rc = wv__store_del(d->store, obj);
        if (rc == WV_NOTFOUND) {
            wv__clearerr(&d->err);
            rc = WV_OK;
        }
        if (rc == WV_OK)
            rc = wv__store_put(d->store, marks.v[i].key, b, bl,
                               WV_PUT_IF_ABSENT);
        if (rc != WV_OK)
            *err = d->err;
        wv__free(b);
        b = NULL;
    }
    wv__objlist_release(&marks);
    return rc;
}

int wv_repo_sync(const char *src, const char *dst, const wv_sync_opts *opts,
                 wv_sync_result *result)
{
    struct wv__err e = {0}, *err = &e;
    wv_repo *s = NULL, *d = NULL;
    struct reflist rl = {0};
    struct wv__objlist plan[5] = {{0}};
    uint64_t done = 0, total = 0;
    wv_sync_result res;
    struct wv__store_count moved = {0}; /* the handles of s and d */
    char eb[WV_ERRBUF_SIZE] = "";
    int rc = WV_OK;
    memset(&res, 0, sizeof res);
    WV_CHECK(src && dst, WV_MISUSE, "sync: NULL repository");
    WV_CHECK(opts == NULL || opts->struct_size >= sizeof(wv_sync_opts),
             WV_MISUSE, "sync options from an incompatible header");
    WV_CHECK(opts == NULL || opts->branch == NULL ||
                 wv__ref_name_ok(opts->branch),
             WV_MISUSE, "'%s' is not a valid branch name",
             opts ? opts->branch : "");
    rc = wv_repo_open(src, eb, sizeof eb, &s);
    WV_CHECK(rc == WV_OK, rc, "%s", eb);
    WV_TRY(open_dest(dst, s, !(opts && opts->no_create), &d, &moved, err));
    WV_TRY(compatible(s, d, err));
    if (opts && opts->branch) {
        char id[65];
        rc = wv__repo_resolve(s, opts->branch, id);
        if (rc != WV_OK) {
            *err = s->err;
            goto out;
        }
    }
    rc = wv__repo_lock(d, false);
    if (rc != WV_OK) {
        *err = d->err;
        goto out;
    }
    WV_TRY(collect_refs(s, opts ? opts->branch : NULL, &rl, err));
    /* key slots and trusted keys added since (those removed: step 5) */
    static const char *const order[] = {"keys/", "trust/", "packs/",
                                        "index/", "manifests/"};
    _Static_assert(sizeof order / sizeof order[0] ==
                       sizeof plan / sizeof plan[0],
                   "one plan per kind of object");
    /* Everything to copy is known before the first byte moves, so the
     * progress has one total; then kind by kind, in this order (a
     * manifest never arrives before the packs it names). */
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++)
        WV_TRY(plan_prefix(s, d, order[i], &plan[i], &res, err));
    WV_TRY(drop_revoked_slots(d, &plan[0], err));
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++)
        for (size_t k = 0; k < plan[i].n; k++)
            total += plan[i].v[k].size;
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++)
        WV_TRY(copy_objects(s, d, &plan[i],
                            strcmp(order[i], "keys/") != 0 &&
                                strcmp(order[i], "trust/") != 0,
                            opts, &done, total, &res, err));
    WV_TRY(clear_markers(d, &plan[1], err));
    WV_TRY(sync_revocations(s, d, err));
    WV_TRY(wv__trust_sync(s, d, err));
    for (size_t i = 0; i < rl.n; i++)
        WV_TRY(sync_ref(s, d, rl.keys[i], opts, &res, err));
out:
    for (size_t i = 0; i < sizeof plan / sizeof plan[0]; i++)
        wv__objlist_release(&plan[i]);
    wv__repo_list_free(rl.keys, rl.n);
    if (d)
        wv__repo_unlock(d);
    if (s)
        tally(&moved, s->store);
    if (d)
        tally(&moved, d->store);
    res.requests += moved.requests;
    res.bytes_sent += moved.bytes_sent;
    res.bytes_received += moved.bytes_received;
    wv_repo_close(s);
    wv_repo_close(d);
    if (result)
        *result = res;
    if (rc != WV_OK && opts && opts->errbuf && opts->errbuf_size)
        snprintf(opts->errbuf, opts->errbuf_size, "%s",
                 e.msg[0] ? e.msg : wv_strerror(rc));
    return rc;
}
