/*
 * commit.c -- storing a tensor set as a checkpoint.
 *
 * Protocol (a crash at any point leaves the previous state intact and at
 * worst unreferenced objects that gc removes):
 *   1. take a shared lock (gc cannot run meanwhile);
 *   2. cut every tensor into chunks, hash each, and encode the chunks the
 *      repository does not have yet into packs; a background thread writes
 *      full packs (without fsync) while the next one is filled;
 *   3. write the index object of the new packs, then one sync barrier makes
 *      packs and index durable;
 *   4. write the manifest (durable);
 *   5. compare-and-swap the branch ref from the head seen in step 2 to the
 *      new manifest. If another writer moved it, re-parent the manifest on
 *      the new head and retry (the data is already stored), or report.
 *
 * Pack layout (docs/repo-format.md):
 *   "WVPACK01" | stored chunk bytes ... | trailer
 *   trailer = n x {id[32], u64 off, u64 stored_len, u64 raw_len, u8 codec,
 *                  u8 elem} | u32 n | "WVPKEND1"
 * all little-endian. A pack's id is the SHA-256 of its trailer, which names
 * every chunk (by plaintext hash) and its placement, so identical packs get
 * identical ids without hashing the data twice.
 */
#include "repo.h"

#include <pthread.h>

#define PACK_MAGIC "WVPACK01"
#define PACK_END "WVPKEND1"
#define TRAILER_ENTRY 58

struct packbuf {
    unsigned char *p;
    size_t len, cap;
    struct wv__chunk_loc *ents;
    size_t n_ents, cap_ents;
};

struct packer {
    wv_repo *r;
    struct packbuf buf[2];
    int cur;
    /* background writer */
    pthread_t th;
    bool th_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int job;      /* buffer index to write, -1 none */
    bool busy;    /* writer working on a job */
    bool quit;
    int wrc;      /* writer's sticky status */
    char wmsg[WV_ERRBUF_SIZE];
    /* everything written by this commit, for the index object */
    struct wv__chunk_loc *all;
    size_t n_all, cap_all;
};

static void trailer_bytes(const struct packbuf *b, struct wv__buf *t)
{
    unsigned char e[TRAILER_ENTRY];
    for (size_t i = 0; i < b->n_ents; i++) {
        const struct wv__chunk_loc *l = &b->ents[i];
        memcpy(e, l->id, 32);
        wv__put64(e + 32, l->off);
        wv__put64(e + 40, l->stored_len);
        wv__put64(e + 48, l->raw_len);
        e[56] = l->codec;
        e[57] = l->elem;
        wv__buf_add(t, e, sizeof e);
    }
    unsigned char n[4];
    wv__put32(n, (uint32_t)b->n_ents);
    wv__buf_add(t, n, 4);
    wv__buf_add(t, PACK_END, 8);
}

/* Called by the writer thread (or inline): finish and store pack `b`. */
static int write_pack(struct packer *pk, struct packbuf *b,
                      struct wv__err *err)
{
    struct wv__buf t = {0};
    unsigned char id[32];
    char key[96];
    int rc = WV_OK;
    trailer_bytes(b, &t);
    if (t.oom || b->len + t.len > b->cap) {
        wv__buf_release(&t);
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    wv__sha256_buf(t.p, t.len, id);
    memcpy(b->p + b->len, t.p, t.len);
    wv__pack_key(id, key);
    rc = wv__store_put(pk->r->store, key, b->p, b->len + t.len,
                       WV_PUT_IF_ABSENT | WV_PUT_NOSYNC);
    wv__buf_release(&t);
    for (size_t i = 0; i < b->n_ents; i++)
        memcpy(b->ents[i].pack, id, 32);
    return rc;
}

static void *writer_main(void *arg)
{
    struct packer *pk = arg;
    pthread_mutex_lock(&pk->mu);
    for (;;) {
        while (pk->job < 0 && !pk->quit)
            pthread_cond_wait(&pk->cv, &pk->mu);
        if (pk->job < 0 && pk->quit)
            break;
        int j = pk->job;
        pk->job = -1;
        pk->busy = true;
        pthread_mutex_unlock(&pk->mu);
        struct wv__err e = {0};
        int rc = pk->wrc == WV_OK ? write_pack(pk, &pk->buf[j], &e) : WV_OK;
        pthread_mutex_lock(&pk->mu);
        if (rc != WV_OK && pk->wrc == WV_OK) {
            pk->wrc = rc;
            /* Store errors land in the repository's message. */
            snprintf(pk->wmsg, sizeof pk->wmsg, "%s",
                     e.msg[0] ? e.msg : pk->r->err.msg);
        }
        pk->busy = false;
        pthread_cond_broadcast(&pk->cv);
    }
    pthread_mutex_unlock(&pk->mu);
    return NULL;
}

/* Wait until the writer is idle. */
static void writer_wait(struct packer *pk)
{
    if (!pk->th_started)
        return;
    pthread_mutex_lock(&pk->mu);
    while (pk->job >= 0 || pk->busy)
        pthread_cond_wait(&pk->cv, &pk->mu);
    pthread_mutex_unlock(&pk->mu);
}

static int record_written(struct packer *pk, struct packbuf *b)
{
    for (size_t i = 0; i < b->n_ents; i++) {
        if (pk->n_all == pk->cap_all) {
            size_t cap = pk->cap_all ? pk->cap_all * 2 : 256;
            void *na = wv__realloc(pk->all, cap * sizeof *pk->all);
            if (na == NULL)
                return WV_NOMEM;
            pk->all = na;
            pk->cap_all = cap;
        }
        pk->all[pk->n_all++] = b->ents[i];
        /* The index entry was inserted with a zero pack id. */
        struct wv__chunk_loc *l =
            (struct wv__chunk_loc *)wv__cidx_get(&pk->r->cidx, b->ents[i].id);
        if (l)
            memcpy(l->pack, b->ents[i].pack, 32);
    }
    b->n_ents = 0;
    b->len = 0;
    return WV_OK;
}

/* Hand the current buffer to the writer and continue in the other one. */
static int flush_pack(struct packer *pk, struct wv__err *err)
{
    struct packbuf *b = &pk->buf[pk->cur];
    if (b->n_ents == 0)
        return WV_OK;
    if (!pk->th_started) {
        int rc = write_pack(pk, b, err);
        return rc == WV_OK ? record_written(pk, b) : rc;
    }
    int other = 1 - pk->cur;
    pthread_mutex_lock(&pk->mu);
    while (pk->job >= 0 || pk->busy)
        pthread_cond_wait(&pk->cv, &pk->mu);
    int wrc = pk->wrc;
    pthread_mutex_unlock(&pk->mu);
    if (wrc != WV_OK)
        return wv__seterr(err, wrc, "%s", pk->wmsg);
    /* The other buffer's pack is written: record it, then reuse it. */
    if (pk->buf[other].n_ents && record_written(pk, &pk->buf[other]) != WV_OK)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    pthread_mutex_lock(&pk->mu);
    pk->job = pk->cur;
    pthread_cond_broadcast(&pk->cv);
    pthread_mutex_unlock(&pk->mu);
    pk->cur = other;
    return WV_OK;
}

/* ---- parallel hashing ---------------------------------------------------
 * SHA-256 runs at about 1.7 GB/s per core here; a commit of unchanged data
 * is nothing but hashing, so the ids are computed by one thread per core,
 * claiming chunks in order, while the committing thread consumes them in
 * order. */
#define WV__MAX_HASHERS 8

struct hjob {
    const unsigned char *p;
    size_t n;
    unsigned char *id;
    unsigned elem;
};

struct hasher {
    struct hjob *jobs;
    unsigned char *done;
    size_t n, next;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th[WV__MAX_HASHERS];
    int n_th;
    bool stop;
};

static int hasher_init(struct hasher *h, size_t n_jobs)
{
    memset(h, 0, sizeof *h);
    h->jobs = wv__calloc(n_jobs + 1, sizeof *h->jobs);
    h->done = wv__calloc(n_jobs + 1, 1);
    if (!h->jobs || !h->done) {
        wv__free(h->jobs);
        wv__free(h->done);
        return WV_NOMEM;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    return WV_OK;
}

static void *hash_main(void *arg)
{
    struct hasher *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop && h->next < h->n) {
        size_t i = h->next++;
        pthread_mutex_unlock(&h->mu);
        wv__sha256_buf(h->jobs[i].p, h->jobs[i].n, h->jobs[i].id);
        pthread_mutex_lock(&h->mu);
        h->done[i] = 1;
        pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

static void hasher_start(struct hasher *h)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int want = ncpu < 1 ? 1 : ncpu > WV__MAX_HASHERS ? WV__MAX_HASHERS
                                                     : (int)ncpu;
    if ((size_t)want > h->n)
        want = (int)h->n;
    for (int i = 0; i < want; i++) {
        if (pthread_create(&h->th[h->n_th], NULL, hash_main, h) != 0)
            break;
        h->n_th++;
    }
}

/* Wait until job i is hashed (or hash it here if no thread could start). */
static void hasher_wait(struct hasher *h, size_t i)
{
    pthread_mutex_lock(&h->mu);
    if (h->n_th == 0 && !h->done[i]) {
        h->next = i + 1;
        pthread_mutex_unlock(&h->mu);
        wv__sha256_buf(h->jobs[i].p, h->jobs[i].n, h->jobs[i].id);
        h->done[i] = 1;
        return;
    }
    while (!h->done[i])
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
}

static void hasher_release(struct hasher *h)
{
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < h->n_th; i++)
        pthread_join(h->th[i], NULL);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    wv__free(h->jobs);
    wv__free(h->done);
    memset(h, 0, sizeof *h);
}

static int packer_init(struct packer *pk, wv_repo *r, struct wv__err *err)
{
    memset(pk, 0, sizeof *pk);
    pk->r = r;
    pk->job = -1;
    size_t cap = (size_t)r->cfg.pack_size +
                 wv__codec_bound((size_t)r->cfg.chunk_size) + 8 +
                 (size_t)(r->cfg.pack_size / 4096 + 8) * TRAILER_ENTRY;
    for (int i = 0; i < 2; i++) {
        pk->buf[i].p = wv__malloc(cap);
        pk->buf[i].cap = cap;
        if (pk->buf[i].p == NULL)
            return wv__seterr(err, WV_NOMEM, "out of memory for pack buffers");
    }
    pthread_mutex_init(&pk->mu, NULL);
    pthread_cond_init(&pk->cv, NULL);
    pk->th_started = pthread_create(&pk->th, NULL, writer_main, pk) == 0;
    return WV_OK;
}

static void packer_release(struct packer *pk)
{
    if (pk->th_started) {
        pthread_mutex_lock(&pk->mu);
        pk->quit = true;
        pthread_cond_broadcast(&pk->cv);
        pthread_mutex_unlock(&pk->mu);
        pthread_join(pk->th, NULL);
        pk->th_started = false;
    }
    if (pk->r) {
        pthread_mutex_destroy(&pk->mu);
        pthread_cond_destroy(&pk->cv);
    }
    for (int i = 0; i < 2; i++) {
        wv__free(pk->buf[i].p);
        wv__free(pk->buf[i].ents);
    }
    wv__free(pk->all);
    memset(pk, 0, sizeof *pk);
}

/* Add one chunk (already hashed) to the current pack. */
static int pack_chunk(struct packer *pk, const unsigned char id[32],
                      const unsigned char *data, size_t n, unsigned elem,
                      void *scratch, struct wv__err *err)
{
    wv_repo *r = pk->r;
    struct packbuf *b = &pk->buf[pk->cur];
    if (b->len == 0) {
        memcpy(b->p, PACK_MAGIC, 8);
        b->len = 8;
    }
    if (b->n_ents == b->cap_ents) {
        size_t cap = b->cap_ents ? b->cap_ents * 2 : 64;
        void *ne = wv__realloc(b->ents, cap * sizeof *b->ents);
        if (ne == NULL)
            return wv__seterr(err, WV_NOMEM, "out of memory");
        b->ents = ne;
        b->cap_ents = cap;
    }
    size_t stored;
    int codec = wv__codec_encode(r->cfg.compression, r->cfg.level, elem,
                                 data, n, b->p + b->len,
                                 b->cap - b->len - 8, scratch, &stored);
    struct wv__chunk_loc *l = &b->ents[b->n_ents++];
    memset(l, 0, sizeof *l);
    memcpy(l->id, id, 32);
    l->off = b->len;
    l->stored_len = stored;
    l->raw_len = n;
    l->codec = (uint8_t)codec;
    l->elem = (uint8_t)(codec == WV__CODEC_BG_ZSTD ? elem : 0);
    b->len += stored;
    if (wv__cidx_put(&r->cidx, l) != WV_OK)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    /* Keep room for one more encoded chunk plus the trailer. */
    if (b->len >= r->cfg.pack_size ||
        b->cap - b->len < wv__codec_bound((size_t)r->cfg.chunk_size) + 8 +
                              (b->n_ents + 1) * TRAILER_ENTRY + 12)
        return flush_pack(pk, err);
    return WV_OK;
}

static int write_index(struct packer *pk, struct wv__err *err)
{
    struct wv__buf b = {0};
    char hex[65], key[96];
    unsigned char id[32];
    int rc = WV_OK;
    if (pk->n_all == 0)
        return WV_OK;
    wv__buf_adds(&b, "{\"packs\": {");
    for (size_t i = 0; i < pk->n_all; i++) {
        const struct wv__chunk_loc *l = &pk->all[i];
        bool first_of_pack =
            i == 0 || memcmp(pk->all[i - 1].pack, l->pack, 32) != 0;
        if (first_of_pack) {
            wv__hex(l->pack, 32, hex);
            wv__buf_addf(&b, "%s\n \"%s\": [", i ? "]," : "", hex);
        }
        wv__hex(l->id, 32, hex);
        wv__buf_addf(&b, "%s\n  [\"%s\", %llu, %llu, %llu, %u, %u]",
                     first_of_pack ? "" : ",", hex,
                     (unsigned long long)l->off,
                     (unsigned long long)l->stored_len,
                     (unsigned long long)l->raw_len, l->codec, l->elem);
    }
    wv__buf_adds(&b, "]}}\n");
    if (b.oom) {
        wv__buf_release(&b);
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    wv__sha256_buf(b.p, b.len, id);
    wv__hex(id, 32, hex);
    snprintf(key, sizeof key, "index/%s", hex);
    rc = wv__store_put(pk->r->store, key, b.p, b.len,
                       WV_PUT_IF_ABSENT | WV_PUT_NOSYNC);
    wv__buf_release(&b);
    return rc;
}

static void utc_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Store the manifest under its id; returns the id in hex. */
static int put_manifest(wv_repo *r, const struct wv__manifest *mf,
                        char hex[65])
{
    struct wv__buf b = {0};
    unsigned char id[32];
    char key[96];
    int rc = wv__manifest_encode(mf, &b);
    if (rc != WV_OK) {
        wv__buf_release(&b);
        return wv__seterr(&r->err, rc, "out of memory");
    }
    wv__sha256_buf(b.p, b.len, id);
    wv__hex(id, 32, hex);
    wv__manifest_key(hex, key);
    rc = wv__store_put(r->store, key, b.p, b.len, WV_PUT_IF_ABSENT);
    wv__buf_release(&b);
    return rc;
}

int wv__repo_commit_locked(wv_repo *r, const wv_model *m, const char *branch,
                           const wv_commit_opts *opts,
                           char out_id[WV_ID_HEX])
{
    static const wv_commit_opts defaults = WV_COMMIT_OPTS_INIT;
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    struct packer pk;
    struct hasher hs;
    bool packing = false, hashing = false;
    struct wv__manifest mf;
    unsigned char *scratch = NULL;
    char head[65] = "", refkey[160], tnow[32], hex[65] = "", prev[65] = "";

    memset(&mf, 0, sizeof mf);
    memset(&pk, 0, sizeof pk);
    memset(&hs, 0, sizeof hs);
    wv__clearerr(err);
    out_id[0] = '\0';
    if (opts == NULL)
        opts = &defaults;
    if (branch == NULL)
        branch = "main";
    WV_CHECK(opts->struct_size >= sizeof(wv_commit_opts), WV_MISUSE,
             "commit options from an incompatible header");
    WV_CHECK(wv__ref_name_ok(branch) && strcmp(branch, "latest") != 0,
             WV_MISUSE, "'%s' is not a valid branch name", branch);
    snprintf(refkey, sizeof refkey, "refs/heads/%s", branch);

    WV_TRY(wv__repo_lock(r, false));
    WV_TRY(wv__repo_load_index(r));
    rc = wv__repo_resolve(r, branch, head);
    if (rc == WV_NOTFOUND) {
        wv__clearerr(err);
        head[0] = '\0';
        rc = WV_OK;
    }
    WV_TRY(rc);
    /* A tag of that name would have resolved too: make sure it is the
     * branch. */
    if (head[0]) {
        char buf[128];
        if (wv__store_ref_get(r->store, refkey, buf, sizeof buf) ==
            WV_NOTFOUND) {
            wv__clearerr(err);
            head[0] = '\0';
        }
    }

    /* The manifest skeleton. */
    utc_now(tnow);
    mf.branch = wv__strdup(branch);
    mf.time = wv__strdup(tnow);
    mf.message = wv__strdup(opts->message ? opts->message : "");
    mf.chunk_size = r->cfg.chunk_size;
    mf.meta_absent = m->meta_state == WV__META_NONE;
    mf.meta_default = m->meta_state == WV__META_DEFAULT;
    WV_CHECK(mf.branch && mf.time && mf.message, WV_NOMEM, "out of memory");
    if (m->n_meta) {
        mf.meta = wv__calloc(m->n_meta, sizeof *mf.meta);
        WV_CHECK(mf.meta != NULL, WV_NOMEM, "out of memory");
        for (size_t i = 0; i < m->n_meta; i++) {
            mf.meta[i].key = wv__strdup(m->meta[i].key);
            mf.meta[i].value = wv__strdup(m->meta[i].value);
            mf.n_meta++;
            WV_CHECK(mf.meta[i].key && mf.meta[i].value, WV_NOMEM,
                     "out of memory");
        }
    }
    mf.tensors = wv__calloc(m->n_tensors ? m->n_tensors : 1,
                            sizeof *mf.tensors);
    WV_CHECK(mf.tensors != NULL, WV_NOMEM, "out of memory");

    /* Chunks: ids are computed by hashing threads running ahead, in
     * order; this thread deduplicates and packs them as they come. */
    WV_TRY(packer_init(&pk, r, err));
    packing = true;
    scratch = wv__malloc((size_t)r->cfg.chunk_size);
    WV_CHECK(scratch != NULL, WV_NOMEM, "out of memory");
    size_t cs = (size_t)r->cfg.chunk_size, n_jobs = 0;
    for (size_t i = 0; i < m->n_tensors; i++)
        n_jobs += (m->tensors[i].nbytes + cs - 1) / cs;
    WV_CHECK(hasher_init(&hs, n_jobs) == WV_OK, WV_NOMEM, "out of memory");
    hashing = true;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        struct wv__mtensor *mt = &mf.tensors[mf.n_tensors++];
        mt->name = wv__strdup(t->name);
        WV_CHECK(mt->name != NULL, WV_NOMEM, "out of memory");
        mt->dtype = t->dtype;
        mt->ndim = t->ndim;
        memcpy(mt->shape, t->shape, sizeof mt->shape);
        mt->nbytes = t->nbytes;
        mt->n_chunks = (t->nbytes + cs - 1) / cs;
        if (mt->n_chunks) {
            mt->chunks = wv__malloc(mt->n_chunks * WV__ID_LEN);
            WV_CHECK(mt->chunks != NULL, WV_NOMEM, "out of memory");
        }
        unsigned elem = wv_dtype_is_float(t->dtype)
                            ? (unsigned)wv_dtype_size(t->dtype)
                            : 1;
        for (size_t c = 0; c < mt->n_chunks; c++) {
            size_t off = c * cs;
            struct hjob *j = &hs.jobs[hs.n++];
            j->p = t->data + off;
            j->n = t->nbytes - off < cs ? t->nbytes - off : cs;
            j->id = mt->chunks[c];
            j->elem = elem;
        }
    }
    hasher_start(&hs);
    for (size_t i = 0; i < hs.n; i++) {
        const struct hjob *j = &hs.jobs[i];
        hasher_wait(&hs, i);
        if (wv__cidx_get(&r->cidx, j->id) != NULL)
            continue; /* stored already: never written again */
        WV_TRY(pack_chunk(&pk, j->id, j->p, j->n, j->elem, scratch, err));
    }
    WV_TRY(flush_pack(&pk, err));
    writer_wait(&pk);
    if (pk.wrc != WV_OK)
        WV_CHECK(0, pk.wrc, "%s", pk.wmsg);
    for (int i = 0; i < 2; i++)
        if (pk.buf[i].n_ents)
            WV_CHECK(record_written(&pk, &pk.buf[i]) == WV_OK, WV_NOMEM,
                     "out of memory");
    WV_TRY(write_index(&pk, err));
    WV_TRY(wv__store_control(r->store, WV_STORE_SYNC, NULL));

    /* Manifest, then the ref; re-parent on conflict. */
    for (int attempt = 0;; attempt++) {
        memcpy(mf.parent, head, 65);
        WV_TRY(put_manifest(r, &mf, hex));
        if (prev[0] && strcmp(prev, hex) != 0) {
            /* The attempt that lost the race is superseded by this one. */
            char key[96];
            wv__manifest_key(prev, key);
            wv__store_del(r->store, key);
        }
        memcpy(prev, hex, 65);
        char desired[80];
        snprintf(desired, sizeof desired, "%s\n", hex);
        char expect[80];
        snprintf(expect, sizeof expect, "%s\n", head);
        rc = wv__store_ref_cas(r->store, refkey, head[0] ? expect : NULL,
                               desired);
        if (rc != WV_CONFLICT || attempt >= opts->max_retries)
            break;
        wv__clearerr(err);
        rc = wv__repo_resolve(r, branch, head);
        if (rc == WV_NOTFOUND) {
            wv__clearerr(err);
            head[0] = '\0';
            rc = WV_OK;
        }
        WV_TRY(rc);
    }
    memcpy(out_id, hex, 65);
    if (rc == WV_CONFLICT) {
        wv__clearerr(err);
        wv__seterr(err, WV_CONFLICT,
                   "%s: branch '%s' kept moving; checkpoint %.12s is stored "
                   "but not on the branch",
                   r->uri, branch, hex);
    }
out:
    if (hashing)
        hasher_release(&hs);
    if (packing)
        packer_release(&pk);
    wv__free(scratch);
    wv__manifest_release(&mf);
    wv__repo_unlock(r);
    if (rc != WV_OK && rc != WV_CONFLICT) {
        out_id[0] = '\0';
        /* The in-memory index may name chunks of packs never written. */
        wv__cidx_release(&r->cidx);
        r->cidx_loaded = false;
    }
    return rc;
}

int wv_repo_commit(wv_repo *r, const wv_model *m, const char *branch,
                   const wv_commit_opts *opts, char out_id[WV_ID_HEX])
{
    wv__repo_enter(r); /* after the pending asynchronous commits */
    int rc = wv__repo_commit_locked(r, m, branch, opts, out_id);
    wv__repo_leave(r);
    return rc;
}
