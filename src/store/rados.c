/*
 * rados.c -- the Ceph RADOS backend ("rados://pool/prefix").
 *
 * A key is the RADOS object "prefix/key" in the pool's default namespace
 * (just "key" when the prefix is empty). Every object this backend writes
 * carries an xattr "wv" describing it:
 *
 *   head:  "wv1 h <size> <stripe> <pieces> <gen>"
 *   tail:  "wv1 t <gen> <index>"
 *
 * One RADOS write is limited to 90 MiB and one object to 128 MiB, so an
 * object larger than the stripe unit (WV_RADOS_STRIPE: 4 KiB to 64 MiB,
 * default 8 MiB) is cut into pieces: bytes [0, stripe) in the head object
 * "prefix/key", piece i (bytes [i*stripe, (i+1)*stripe)) in
 * "prefix/key.000001" and so on. Tails are written first, in parallel (at
 * most WV_RADOS_INFLIGHT, default 4, writes in flight: librados copies
 * each, so this bounds the memory held), and the head last, in one atomic
 * write op together with its "wv" xattr: until the head exists the object
 * does not, so a reader never sees part of one. A failed put removes the
 * tails it wrote. Reads of several pieces go out in parallel, straight
 * into the caller's buffer. 8 MiB pieces (Ceph's own RBD and RGW stripe at
 * 4 MiB) moved a 512 MiB object about twice as fast as 64 MiB pieces on
 * the test cluster, and spread over more OSDs on a real one.
 *
 * `gen` ties the pieces of one write together: a reader checks each tail's
 * xattr against the head's layout inside the same read op (cmpxattr), so a
 * concurrent overwrite or delete is noticed and the read retried instead of
 * returning a mix. Content-addressed puts (WV_PUT_IF_ABSENT) use gen 0: two
 * writers of the same key write the same bytes, so their pieces are
 * interchangeable and the loser's tails need no cleanup.
 *
 * Refs are small objects whose value is both the data and an xattr
 * "wv.ref"; a compare-and-swap is one write op on the OSD: cmpxattr on
 * "wv.ref" (or create-exclusive when the ref must not exist), then
 * write_full + setxattr, or remove. A failed comparison is WV_CONFLICT.
 *
 * Writes are acknowledged by RADOS once durable, so WV_PUT_NOSYNC changes
 * nothing and the sync barrier is a no-op. WV_STORE_SWEEP removes tail
 * pieces whose head is gone or belongs to another write (left by a killed
 * writer), once they are older than the given age.
 *
 * Everything here is thread-safe: librados handles are, and each call
 * keeps its state on its own stack.
 */
#include "core.h"
#include "store.h"

#include <dlfcn.h>
#include <pthread.h>
#include <rados/librados.h>

#define STRIPE_DEFAULT ((size_t)8 << 20)
#define STRIPE_MIN ((size_t)4096)
#define STRIPE_MAX ((size_t)64 << 20) /* < the 90 MiB op limit */
#define MAX_PIECES 1000000u           /* suffixes .000001 .. .999999 */
#define INFLIGHT_DEFAULT 4
#define INFLIGHT_MAX 64
#define READ_WINDOW 8
#define PROBE_BATCH 32
#define READ_RETRIES 8
#define TAG_MAX 128
/* Every write op: on a full cluster or pool, deletes go through and
 * writes fail at once with ENOSPC or EDQUOT instead of waiting (until the
 * op timeout) for space. */
#define WOP_FLAGS LIBRADOS_OPERATION_FULL_TRY

/* librados is loaded at the first rados:// open, not at program start:
 * its C++ static initialisation (libceph-common) cost every wv process
 * about 20 ms, and much more under ASan, whether or not it used RADOS.
 * <rados/librados.h> still gives the types and prototypes; the functions
 * called are the pointers of `rl`, resolved by dlsym from the list below
 * (add a function here when calling a new one). WV_RADOS_LIB names another
 * file to load instead of librados.so.2; it is for the tests of the
 * failure path. */
#define RADOS_LIB "librados.so.2"
#define RADOS_FUNCS(X) \
    X(rados_aio_create_completion2) \
    X(rados_aio_get_return_value) \
    X(rados_aio_read_op_operate) \
    X(rados_aio_release) \
    X(rados_aio_wait_for_complete) \
    X(rados_aio_write_op_operate) \
    X(rados_application_enable) \
    X(rados_conf_get) \
    X(rados_conf_parse_env) \
    X(rados_conf_read_file) \
    X(rados_conf_set) \
    X(rados_connect) \
    X(rados_create2) \
    X(rados_create_read_op) \
    X(rados_create_write_op) \
    X(rados_getxattrs_end) \
    X(rados_getxattrs_next) \
    X(rados_ioctx_create) \
    X(rados_ioctx_destroy) \
    X(rados_nobjects_list_close) \
    X(rados_nobjects_list_next2) \
    X(rados_nobjects_list_open) \
    X(rados_pool_create) \
    X(rados_pool_lookup) \
    X(rados_read) \
    X(rados_read_op_cmpxattr) \
    X(rados_read_op_getxattrs) \
    X(rados_read_op_operate) \
    X(rados_read_op_read) \
    X(rados_read_op_stat) \
    X(rados_release_read_op) \
    X(rados_release_write_op) \
    X(rados_shutdown) \
    X(rados_write_op_cmpxattr) \
    X(rados_write_op_create) \
    X(rados_write_op_operate) \
    X(rados_write_op_remove) \
    X(rados_write_op_setxattr) \
    X(rados_write_op_write_full)

static struct {
#define X(f) __typeof__(f) *f;
    RADOS_FUNCS(X)
#undef X
} rl;
static pthread_once_t rl_once = PTHREAD_ONCE_INIT;
static char rl_error[512]; /* why loading failed; "" once loaded */

static void rl_load(void)
{
    const char *lib = getenv("WV_RADOS_LIB"), *missing = NULL;
    void *h, *sym;
    if (lib == NULL || lib[0] == '\0')
        lib = RADOS_LIB;
    h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        const char *why = dlerror();
        snprintf(rl_error, sizeof rl_error,
                 "cannot load %s (install librados2): %s", lib,
                 why ? why : "unknown error");
        goto out;
    }
    /* h stays open, also when a function is missing: librados is not
     * made to be unloaded */
#define X(f)                                                              \
    if ((sym = dlsym(h, #f)) == NULL) {                                   \
        missing = #f;                                                     \
        goto out;                                                         \
    }                                                                     \
    memcpy(&rl.f, &sym, sizeof sym);
    RADOS_FUNCS(X)
#undef X
out:
    if (missing)
        snprintf(rl_error, sizeof rl_error,
                 "cannot load %s: it has no function %s (librados2 too "
                 "old?)",
                 lib, missing);
}

/* Loads librados once (thread-safe); WV_UNSUPPORTED naming the library
 * and what is missing when it cannot. */
static int rl_ready(const char *uri, struct wv__err *err)
{
    pthread_once(&rl_once, rl_load);
    if (rl_error[0] != '\0')
        return wv__seterr(err, WV_UNSUPPORTED, "%s: %s", uri, rl_error);
    return WV_OK;
}

/* Test hook: when >= 0, the put of that piece (0: the head) fails with
 * EIO as if the OSD had refused it. */
int wv__rados_fail_piece = -1;

struct rstore {
    struct wv__store base;
    rados_t cl;
    rados_ioctx_t io;
    bool have_cl, have_io;
    char *pool;
    char *prefix; /* "" or "dir/" */
    size_t stripe;
    int inflight;
};

/* ---- names, tags, errors ------------------------------------------------ */

/* "prefix/key" or, for piece > 0, "prefix/key.000001"; wv__malloc()ed. */
static char *oname(const struct rstore *rs, const char *key, uint64_t piece)
{
    size_t n = strlen(rs->prefix) + strlen(key) + 24;
    char *p = wv__malloc(n);
    if (p == NULL)
        return NULL;
    if (piece == 0)
        snprintf(p, n, "%s%s", rs->prefix, key);
    else
        snprintf(p, n, "%s%s.%06llu", rs->prefix, key,
                 (unsigned long long)piece);
    return p;
}

static int head_tag(char *t, uint64_t size, uint64_t stripe, uint64_t pieces,
                    uint64_t gen)
{
    return snprintf(t, TAG_MAX, "wv1 h %llu %llu %llu %016llx",
                    (unsigned long long)size, (unsigned long long)stripe,
                    (unsigned long long)pieces, (unsigned long long)gen);
}

static int tail_tag(char *t, uint64_t gen, uint64_t index)
{
    return snprintf(t, TAG_MAX, "wv1 t %016llx %llu",
                    (unsigned long long)gen, (unsigned long long)index);
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* A generation for a plain (overwriting) put: never 0. */
static uint64_t new_gen(void)
{
    static uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t c = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
    uint64_t g = mix64((uint64_t)ts.tv_sec * 1000000000ull +
                       (uint64_t)ts.tv_nsec) ^
                 mix64(((uint64_t)getpid() << 32) ^ c);
    return g ? g : 1;
}

static int code_of(int e)
{
    switch (e) {
    case ENOENT:
        return WV_NOTFOUND;
    case EACCES:
    case EPERM:
        return WV_AUTH;
    case ENOSPC:
    case EDQUOT:
        return WV_IO;
    default:
        return WV_BACKEND;
    }
}

static const char *hint_of(int e)
{
    switch (e) {
    case EACCES:
    case EPERM:
        return " (does the client have osd caps on the pool?)";
    case ENOSPC:
    case EDQUOT:
        return " (the cluster or the pool is full)";
    case ETIMEDOUT:
    case ENOTCONN:
    case ESHUTDOWN:
    case ECONNREFUSED:
        return " (is the cluster reachable?)";
    default:
        return "";
    }
}

/* Record a librados failure r (< 0) on `key`. */
static int rerr(struct rstore *rs, int r, const char *what, const char *key)
{
    int e = -r;
    return wv__seterr(rs->base.err, code_of(e),
                      "%s: %s '%s' in pool '%s': %s%s", rs->base.uri, what,
                      key, rs->pool, strerror(e), hint_of(e));
}

/* ---- probing an object: its size, mtime and "wv" tag --------------------- */

enum { P_FOREIGN, P_HEAD, P_TAIL };

struct probe {
    int kind;
    uint64_t osize; /* the RADOS object's own size */
    time_t mtime;
    uint64_t size, stripe, pieces, gen; /* P_HEAD */
    uint64_t index;                     /* P_TAIL (gen too) */
    char tag[TAG_MAX];
};

/* One read op: stat + getxattrs [+ read]. Filled by the OSD. */
struct probe_op {
    rados_read_op_t op;
    rados_xattrs_iter_t it;
    uint64_t osize;
    time_t mtime;
    size_t br;
    int pr_stat, pr_x, pr_read;
};

static int probe_op_init(struct probe_op *po, uint64_t off, void *buf,
                         size_t len)
{
    memset(po, 0, sizeof *po);
    po->op = rl.rados_create_read_op();
    if (po->op == NULL)
        return WV_NOMEM;
    rl.rados_read_op_stat(po->op, &po->osize, &po->mtime, &po->pr_stat);
    rl.rados_read_op_getxattrs(po->op, &po->it, &po->pr_x);
    if (len > 0)
        rl.rados_read_op_read(po->op, off, len, buf, &po->br, &po->pr_read);
    return WV_OK;
}

static void probe_op_release(struct probe_op *po)
{
    if (po->it)
        rl.rados_getxattrs_end(po->it);
    if (po->op)
        rl.rados_release_read_op(po->op);
    memset(po, 0, sizeof *po);
}

/* Parse a "wv" tag into p (kind P_HEAD or P_TAIL); false if malformed. */
static bool parse_tag(struct probe *p)
{
    const char *s = p->tag;
    if (strncmp(s, "wv1 h ", 6) == 0) {
        s += 6;
        if (!wv__parse_u64(&s, 10, &p->size) || *s++ != ' ' ||
            !wv__parse_u64(&s, 10, &p->stripe) || *s++ != ' ' ||
            !wv__parse_u64(&s, 10, &p->pieces) || *s++ != ' ' ||
            !wv__parse_u64(&s, 16, &p->gen) || *s != '\0')
            return false;
        if (p->stripe == 0 || p->pieces == 0 || p->pieces > MAX_PIECES)
            return false;
        uint64_t want = p->size == 0 ? 1 : (p->size - 1) / p->stripe + 1;
        if (want != p->pieces)
            return false;
        p->kind = P_HEAD;
        return true;
    }
    if (strncmp(s, "wv1 t ", 6) == 0) {
        s += 6;
        if (!wv__parse_u64(&s, 16, &p->gen) || *s++ != ' ' ||
            !wv__parse_u64(&s, 10, &p->index) || *s != '\0' || p->index == 0)
            return false;
        p->kind = P_TAIL;
        return true;
    }
    return false;
}

/* Interpret a completed probe op whose overall result was OK. */
static int probe_finish(struct rstore *rs, struct probe_op *po,
                        const char *key, struct probe *p)
{
    memset(p, 0, sizeof *p);
    p->kind = P_FOREIGN;
    p->osize = po->osize;
    p->mtime = po->mtime;
    p->size = po->osize;
    p->pieces = 1;
    bool have = false;
    const char *name, *val;
    size_t vl;
    while (po->it && rl.rados_getxattrs_next(po->it, &name, &val, &vl) == 0 &&
           name != NULL) {
        if (strcmp(name, "wv") != 0)
            continue;
        if (vl >= TAG_MAX || (vl && memchr(val, '\0', vl)))
            goto bad;
        memcpy(p->tag, val, vl);
        p->tag[vl] = '\0';
        have = true;
    }
    if (!have)
        return WV_OK;
    if (!parse_tag(p))
        goto bad;
    if (p->kind == P_HEAD &&
        p->osize != (p->pieces > 1 ? p->stripe : p->size))
        return wv__seterr(rs->base.err, WV_CORRUPT,
                          "%s: object '%s' in pool '%s' is %llu bytes, its "
                          "layout says otherwise ('%s')",
                          rs->base.uri, key, rs->pool,
                          (unsigned long long)p->osize, p->tag);
    return WV_OK;
bad:
    return wv__seterr(rs->base.err, WV_CORRUPT,
                      "%s: object '%s' in pool '%s' has a malformed layout "
                      "attribute",
                      rs->base.uri, key, rs->pool);
}

/* Probe the head of `key`, reading [off, off+len) of it into buf at the
 * same time. WV_NOTFOUND (no message) if there is no such object. */
static int probe_head(struct rstore *rs, const char *key, uint64_t off,
                      void *buf, size_t len, struct probe *p, size_t *br)
{
    struct probe_op po;
    int rc;
    char *oid = oname(rs, key, 0);
    if (oid == NULL)
        return wv__seterr(rs->base.err, WV_NOMEM, "out of memory");
    if ((rc = probe_op_init(&po, off, buf, len)) != WV_OK) {
        wv__free(oid);
        return wv__seterr(rs->base.err, rc, "out of memory");
    }
    int r = rl.rados_read_op_operate(po.op, rs->io, oid, 0);
    if (r == -ENOENT)
        rc = WV_NOTFOUND;
    else if (r < 0)
        rc = rerr(rs, r, "cannot read", key);
    else if (len > 0 && po.pr_read < 0)
        rc = rerr(rs, po.pr_read, "cannot read", key);
    else
        rc = probe_finish(rs, &po, key, p);
    if (rc == WV_OK && p->kind == P_TAIL)
        rc = WV_NOTFOUND; /* a piece of another object, not an object */
    if (br)
        *br = po.br;
    probe_op_release(&po);
    wv__free(oid);
    return rc;
}

/* ---- asynchronous windows ----------------------------------------------- */

struct slot {
    rados_completion_t c;
    rados_write_op_t wop;
    rados_read_op_t rop;
    uint64_t piece;
    size_t want, br;
    int prval;
    bool busy;
};

/* Wait for a busy slot; its librados result (< 0 on failure). */
static int slot_wait(struct slot *sl)
{
    int r = 0;
    if (!sl->busy)
        return 0;
    rl.rados_aio_wait_for_complete(sl->c);
    r = rl.rados_aio_get_return_value(sl->c);
    rl.rados_aio_release(sl->c);
    if (sl->wop)
        rl.rados_release_write_op(sl->wop);
    if (sl->rop)
        rl.rados_release_read_op(sl->rop);
    sl->c = NULL;
    sl->wop = NULL;
    sl->rop = NULL;
    sl->busy = false;
    if (r >= 0 && sl->prval < 0)
        r = sl->prval;
    return r;
}

static int slot_submit_write(struct rstore *rs, struct slot *sl,
                             const char *oid, const unsigned char *p,
                             size_t n, const char *tag)
{
    if (rl.rados_aio_create_completion2(NULL, NULL, &sl->c) < 0)
        return -ENOMEM;
    sl->wop = rl.rados_create_write_op();
    if (sl->wop == NULL) {
        rl.rados_aio_release(sl->c);
        sl->c = NULL;
        return -ENOMEM;
    }
    rl.rados_write_op_write_full(sl->wop, (const char *)p, n);
    rl.rados_write_op_setxattr(sl->wop, "wv", tag, strlen(tag));
    int r = rl.rados_aio_write_op_operate(sl->wop, rs->io, sl->c, oid, NULL,
                                          WOP_FLAGS);
    if (r < 0) {
        rl.rados_release_write_op(sl->wop);
        rl.rados_aio_release(sl->c);
        sl->wop = NULL;
        sl->c = NULL;
        return r;
    }
    sl->prval = 0;
    sl->busy = true;
    return 0;
}

/* Remove piece `piece` of key if it still carries `tag`; errors ignored. */
static void remove_piece(struct rstore *rs, const char *key, uint64_t piece,
                         const char *tag)
{
    char *oid = oname(rs, key, piece);
    rados_write_op_t op = rl.rados_create_write_op();
    if (oid && op) {
        rl.rados_write_op_cmpxattr(op, "wv", LIBRADOS_CMPXATTR_OP_EQ, tag,
                                   strlen(tag));
        rl.rados_write_op_remove(op);
        rl.rados_write_op_operate(op, rs->io, oid, NULL, WOP_FLAGS);
    }
    if (op)
        rl.rados_release_write_op(op);
    wv__free(oid);
}

/* Remove tails [1, upto] of a write with generation gen, in parallel. */
static void remove_tails(struct rstore *rs, const char *key, uint64_t gen,
                         uint64_t upto)
{
    struct slot win[INFLIGHT_MAX];
    int w = rs->inflight;
    memset(win, 0, sizeof win);
    for (uint64_t i = 1; i <= upto; i++) {
        struct slot *sl = &win[(i - 1) % (uint64_t)w];
        slot_wait(sl);
        char tag[TAG_MAX];
        tail_tag(tag, gen, i);
        char *oid = oname(rs, key, i);
        if (oid == NULL ||
            rl.rados_aio_create_completion2(NULL, NULL, &sl->c) < 0) {
            wv__free(oid);
            sl->c = NULL;
            remove_piece(rs, key, i, tag);
            continue;
        }
        sl->wop = rl.rados_create_write_op();
        if (sl->wop)
            rl.rados_write_op_cmpxattr(sl->wop, "wv", LIBRADOS_CMPXATTR_OP_EQ,
                                       tag, strlen(tag));
        if (sl->wop)
            rl.rados_write_op_remove(sl->wop);
        if (sl->wop && rl.rados_aio_write_op_operate(
                           sl->wop, rs->io, sl->c, oid, NULL, WOP_FLAGS) == 0) {
            sl->busy = true;
        } else {
            if (sl->wop)
                rl.rados_release_write_op(sl->wop);
            rl.rados_aio_release(sl->c);
            sl->wop = NULL;
            sl->c = NULL;
            remove_piece(rs, key, i, tag);
        }
        wv__free(oid);
    }
    for (int k = 0; k < w; k++)
        slot_wait(&win[k]);
}

/* ---- put ----------------------------------------------------------------- */

static bool fail_now(uint64_t piece)
{
    int f = __atomic_load_n(&wv__rados_fail_piece, __ATOMIC_RELAXED);
    return f >= 0 && (uint64_t)f == piece;
}

/* Write the head: one atomic op with its layout tag. With `excl` an
 * existing head is left alone (1 returned). */
static int write_head(struct rstore *rs, const char *key, const void *buf,
                      size_t n, const char *tag, bool excl)
{
    if (fail_now(0))
        return rerr(rs, -EIO, "cannot write", key);
    char *oid = oname(rs, key, 0);
    rados_write_op_t op = rl.rados_create_write_op();
    int rc = WV_OK;
    if (oid == NULL || op == NULL) {
        rc = wv__seterr(rs->base.err, WV_NOMEM, "out of memory");
        goto out;
    }
    if (excl)
        rl.rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
    rl.rados_write_op_write_full(op, buf, n);
    rl.rados_write_op_setxattr(op, "wv", tag, strlen(tag));
    int r = rl.rados_write_op_operate(op, rs->io, oid, NULL, WOP_FLAGS);
    if (r == -EEXIST && excl)
        rc = 1;
    else if (r < 0)
        rc = rerr(rs, r, "cannot write", key);
out:
    if (op)
        rl.rados_release_write_op(op);
    wv__free(oid);
    return rc;
}

static int put_striped(struct rstore *rs, const char *key,
                       const unsigned char *buf, size_t len, unsigned flags)
{
    const uint64_t S = rs->stripe;
    const uint64_t pieces = (len - 1) / S + 1;
    const bool absent = (flags & WV_PUT_IF_ABSENT) != 0;
    const uint64_t gen = absent ? 0 : new_gen();
    struct slot win[INFLIGHT_MAX];
    const int w = rs->inflight;
    uint64_t submitted = 0;
    int rc = WV_OK;
    char tag[TAG_MAX];
    struct probe p;

    if (pieces > MAX_PIECES)
        return wv__seterr(rs->base.err, WV_RANGE,
                          "%s: object '%s' (%zu bytes) needs more than %u "
                          "pieces of %zu bytes (raise WV_RADOS_STRIPE)",
                          rs->base.uri, key, len, MAX_PIECES, rs->stripe);
    if (absent) {
        rc = probe_head(rs, key, 0, NULL, 0, &p, NULL);
        if (rc == WV_OK)
            return WV_OK; /* content-addressed: already there */
        if (rc != WV_NOTFOUND)
            return rc;
        rc = WV_OK;
    }
    memset(win, 0, sizeof win);
    for (uint64_t i = 1; i < pieces && rc == WV_OK; i++) {
        struct slot *sl = &win[(i - 1) % (uint64_t)w];
        int r = slot_wait(sl);
        if (r < 0) {
            rc = rerr(rs, r, "cannot write a piece of", key);
            break;
        }
        if (fail_now(i)) {
            rc = rerr(rs, -EIO, "cannot write a piece of", key);
            break;
        }
        char *oid = oname(rs, key, i);
        if (oid == NULL) {
            rc = wv__seterr(rs->base.err, WV_NOMEM, "out of memory");
            break;
        }
        size_t off = (size_t)(i * S);
        size_t n = len - off < S ? len - off : (size_t)S;
        tail_tag(tag, gen, i);
        r = slot_submit_write(rs, sl, oid, buf + off, n, tag);
        wv__free(oid);
        if (r < 0) {
            rc = rerr(rs, r, "cannot write a piece of", key);
            break;
        }
        sl->piece = i;
        submitted = i;
    }
    for (int k = 0; k < w; k++) {
        int r = slot_wait(&win[k]);
        if (r < 0 && rc == WV_OK)
            rc = rerr(rs, r, "cannot write a piece of", key);
    }
    if (rc == WV_OK) {
        head_tag(tag, len, S, pieces, gen);
        rc = write_head(rs, key, buf, (size_t)S, tag, absent);
        if (rc == 1) /* another writer stored the same object first */
            return WV_OK;
    }
    if (rc != WV_OK && submitted > 0) {
        /* Remove what we wrote, unless another writer of the same
         * content-addressed object completed it meanwhile (its tails
         * are ours: same names, same bytes, gen 0). */
        bool keep = absent && probe_head(rs, key, 0, NULL, 0, &p, NULL) ==
                                  WV_OK;
        if (!keep)
            remove_tails(rs, key, gen, submitted);
    }
    return rc;
}

static int r_put(struct wv__store *s, const char *key, const void *buf,
                 size_t len, unsigned flags)
{
    struct rstore *rs = (struct rstore *)s;
    char tag[TAG_MAX];
    if (key[0] == '\0')
        return wv__seterr(s->err, WV_MISUSE, "invalid key ''");
    if (len > rs->stripe)
        return put_striped(rs, key, buf, len, flags);
    head_tag(tag, len, rs->stripe, 1, 0);
    int rc = write_head(rs, key, buf, len, tag,
                        (flags & WV_PUT_IF_ABSENT) != 0);
    return rc == 1 ? WV_OK : rc;
}

/* ---- get ----------------------------------------------------------------- */

/* Read the tails of a striped object that overlap [off, off+len) into buf
 * (which maps to off), each checked against the head's generation in the
 * same op. 1: a tail changed or vanished (retry from the head). */
static int read_tails(struct rstore *rs, const char *key,
                      const struct probe *p, uint64_t off,
                      unsigned char *buf, uint64_t end)
{
    const uint64_t S = p->stripe;
    struct slot win[READ_WINDOW];
    char tags[READ_WINDOW][TAG_MAX];
    int rc = WV_OK;
    bool changed = false;
    uint64_t first = off / S < 1 ? 1 : off / S;
    uint64_t last = (end - 1) / S; /* end > S here */
    memset(win, 0, sizeof win);
    for (uint64_t i = first; i <= last; i++) {
        int k = (int)((i - first) % READ_WINDOW);
        struct slot *sl = &win[k];
        if (sl->busy) {
            int r = slot_wait(sl);
            if (r == -ECANCELED || r == -ENOENT)
                changed = true;
            else if (r < 0 && rc == WV_OK)
                rc = rerr(rs, r, "cannot read a piece of", key);
            else if (r >= 0 && sl->br != sl->want && rc == WV_OK)
                rc = wv__seterr(rs->base.err, WV_CORRUPT,
                                "%s: piece %llu of '%s' in pool '%s' is "
                                "short",
                                rs->base.uri, (unsigned long long)sl->piece,
                                key, rs->pool);
        }
        if (rc != WV_OK || changed)
            break;
        uint64_t ps = i * S, pe = ps + S < p->size ? ps + S : p->size;
        uint64_t a = off > ps ? off : ps, b = end < pe ? end : pe;
        char *oid = oname(rs, key, i);
        if (oid == NULL) {
            rc = wv__seterr(rs->base.err, WV_NOMEM, "out of memory");
            break;
        }
        tail_tag(tags[k], p->gen, i);
        int r = -ENOMEM;
        sl->rop = rl.rados_create_read_op();
        if (sl->rop &&
            rl.rados_aio_create_completion2(NULL, NULL, &sl->c) == 0) {
            rl.rados_read_op_cmpxattr(sl->rop, "wv", LIBRADOS_CMPXATTR_OP_EQ,
                                      tags[k], strlen(tags[k]));
            sl->want = (size_t)(b - a);
            sl->br = 0;
            sl->prval = 0;
            sl->piece = i;
            rl.rados_read_op_read(sl->rop, a - ps, sl->want,
                                  (char *)buf + (a - off), &sl->br, &sl->prval);
            r = rl.rados_aio_read_op_operate(sl->rop, rs->io, sl->c, oid, 0);
        } else {
            sl->c = NULL;
        }
        wv__free(oid);
        if (r < 0) {
            if (sl->rop)
                rl.rados_release_read_op(sl->rop);
            if (sl->c)
                rl.rados_aio_release(sl->c);
            sl->rop = NULL;
            sl->c = NULL;
            rc = rerr(rs, r, "cannot read a piece of", key);
            break;
        }
        sl->busy = true;
    }
    for (int k = 0; k < READ_WINDOW; k++) {
        if (!win[k].busy)
            continue;
        int r = slot_wait(&win[k]);
        if (r == -ECANCELED || r == -ENOENT)
            changed = true;
        else if (r < 0 && rc == WV_OK)
            rc = rerr(rs, r, "cannot read a piece of", key);
        else if (r >= 0 && win[k].br != win[k].want && rc == WV_OK)
            rc = wv__seterr(rs->base.err, WV_CORRUPT,
                            "%s: piece %llu of '%s' in pool '%s' is short",
                            rs->base.uri, (unsigned long long)win[k].piece,
                            key, rs->pool);
    }
    if (rc == WV_OK && changed)
        return 1;
    return rc;
}

/* Read the rest of an unstriped object too large for the first read (one
 * not written by this backend). */
static int read_plain(struct rstore *rs, const char *key, uint64_t off,
                      unsigned char *buf, size_t len)
{
    char *oid = oname(rs, key, 0);
    if (oid == NULL)
        return wv__seterr(rs->base.err, WV_NOMEM, "out of memory");
    int rc = WV_OK;
    size_t got = 0;
    while (got < len) {
        size_t n = len - got < STRIPE_MAX ? len - got : STRIPE_MAX;
        int r = rl.rados_read(rs->io, oid, (char *)buf + got, n, off + got);
        if (r < 0) {
            rc = rerr(rs, r, "cannot read", key);
            break;
        }
        if ((size_t)r < n) {
            rc = wv__seterr(rs->base.err, WV_IO,
                            "%s: object '%s' in pool '%s' changed while "
                            "read",
                            rs->base.uri, key, rs->pool);
            break;
        }
        got += n;
    }
    wv__free(oid);
    return rc;
}

static int r_get(struct wv__store *s, const char *key, uint64_t off,
                 void *buf, size_t len, size_t *nread)
{
    struct rstore *rs = (struct rstore *)s;
    unsigned char *b = buf;
    struct probe p;
    int rc = WV_OK;
    *nread = 0;
    if (off > UINT64_MAX - len)
        return wv__seterr(s->err, WV_RANGE, "%s: read of '%s' out of range",
                          s->uri, key);
    for (int attempt = 0;; attempt++) {
        size_t first = len < STRIPE_MAX ? len : STRIPE_MAX, br = 0;
        rc = probe_head(rs, key, off, b, first, &p, &br);
        if (rc == WV_NOTFOUND)
            return wv__seterr(s->err, WV_NOTFOUND,
                              "%s: no object '%s' in pool '%s'", s->uri, key,
                              rs->pool);
        if (rc != WV_OK)
            return rc;
        uint64_t end = off + len < p.size ? off + len : p.size;
        uint64_t total = off < end ? end - off : 0;
        if (p.pieces <= 1) {
            if (total > br)
                rc = read_plain(rs, key, off + br, b + br,
                                (size_t)(total - br));
        } else if (total > 0 && end > p.stripe) {
            rc = read_tails(rs, key, &p, off, b, end);
            if (rc == 1) {
                if (attempt + 1 < READ_RETRIES) {
                    /* A writer replaces the tails before the head: give
                     * it time to land its head (1, 4, 16, 64, 100 ms). */
                    long ms = attempt < 4 ? 1L << (2 * attempt) : 100;
                    struct timespec ts = {0, ms * 1000000L};
                    nanosleep(&ts, NULL);
                    continue;
                }
                return wv__seterr(s->err, WV_IO,
                                  "%s: object '%s' in pool '%s' keeps "
                                  "changing while read",
                                  s->uri, key, rs->pool);
            }
        }
        if (rc != WV_OK)
            return rc;
        *nread = (size_t)total;
        if (total < len) {
            memset(b + total, 0, len - (size_t)total);
            return wv__seterr(s->err, WV_IO_SHORT_READ,
                              "%s: object '%s' is shorter than expected",
                              s->uri, key);
        }
        return WV_OK;
    }
}

/* ---- stat, del, list -------------------------------------------------- */

static int r_stat(struct wv__store *s, const char *key, uint64_t *size)
{
    struct probe p;
    int rc = probe_head((struct rstore *)s, key, 0, NULL, 0, &p, NULL);
    if (rc == WV_OK)
        *size = p.size;
    return rc;
}

static int r_del(struct wv__store *s, const char *key)
{
    struct rstore *rs = (struct rstore *)s;
    struct probe p;
    char *oid = oname(rs, key, 0);
    int rc = WV_OK;
    if (oid == NULL)
        return wv__seterr(s->err, WV_NOMEM, "out of memory");
    for (int attempt = 0; attempt < READ_RETRIES; attempt++) {
        rc = probe_head(rs, key, 0, NULL, 0, &p, NULL);
        if (rc != WV_OK)
            break;
        /* Remove the head we looked at (readers stop seeing the object),
         * then its tails. */
        rados_write_op_t op = rl.rados_create_write_op();
        if (op == NULL) {
            rc = wv__seterr(s->err, WV_NOMEM, "out of memory");
            break;
        }
        if (p.kind == P_HEAD)
            rl.rados_write_op_cmpxattr(op, "wv", LIBRADOS_CMPXATTR_OP_EQ, p.tag,
                                       strlen(p.tag));
        rl.rados_write_op_remove(op);
        int r = rl.rados_write_op_operate(op, rs->io, oid, NULL, WOP_FLAGS);
        rl.rados_release_write_op(op);
        if (r == -ECANCELED || r == -ENOENT) {
            rc = WV_CONFLICT; /* rewritten or removed meanwhile: look again */
            continue;
        }
        if (r < 0) {
            rc = rerr(rs, r, "cannot delete", key);
            break;
        }
        if (p.pieces > 1)
            remove_tails(rs, key, p.gen, p.pieces - 1);
        break;
    }
    if (rc == WV_CONFLICT)
        rc = wv__seterr(s->err, WV_CONFLICT,
                        "%s: object '%s' in pool '%s' keeps changing while "
                        "deleted",
                        s->uri, key, rs->pool);
    wv__free(oid);
    return rc;
}

struct names {
    char **v;
    size_t n, cap;
};

static void names_release(struct names *nm)
{
    for (size_t i = 0; i < nm->n; i++)
        wv__free(nm->v[i]);
    wv__free(nm->v);
    memset(nm, 0, sizeof *nm);
}

/* Every object name (without the store's prefix) under `prefix`. */
static int collect_names(struct rstore *rs, const char *prefix,
                         struct names *nm)
{
    rados_list_ctx_t ctx;
    size_t spl = strlen(rs->prefix), pl = strlen(prefix);
    int rc = WV_OK;
    int r = rl.rados_nobjects_list_open(rs->io, &ctx);
    if (r < 0)
        return rerr(rs, r, "cannot list", prefix);
    for (;;) {
        const char *entry, *lkey, *ns;
        size_t el, kl, nl;
        r = rl.rados_nobjects_list_next2(ctx, &entry, &lkey, &ns, &el, &kl,
                                         &nl);
        if (r == -ENOENT)
            break;
        if (r < 0) {
            rc = rerr(rs, r, "cannot list", prefix);
            break;
        }
        if (el < spl + pl || memchr(entry, '\0', el) != NULL ||
            memcmp(entry, rs->prefix, spl) != 0 ||
            memcmp(entry + spl, prefix, pl) != 0 || el == spl)
            continue;
        if (nm->n == nm->cap) {
            size_t cap = nm->cap ? nm->cap * 2 : 64;
            char **nv = wv__realloc(nm->v, cap * sizeof *nv);
            if (nv == NULL) {
                rc = wv__seterr(rs->base.err, WV_NOMEM, "out of memory");
                break;
            }
            nm->v = nv;
            nm->cap = cap;
        }
        if ((nm->v[nm->n] = wv__strndup(entry + spl, el - spl)) == NULL) {
            rc = wv__seterr(rs->base.err, WV_NOMEM, "out of memory");
            break;
        }
        nm->n++;
    }
    rl.rados_nobjects_list_close(ctx);
    return rc;
}

typedef int (*probe_fn)(struct rstore *rs, const char *name, size_t id,
                        const struct probe *p, void *arg);

/* Probe names all[ids[0..n)] (n <= PROBE_BATCH) in parallel; fn is called
 * for each that still exists. A non-zero return from fn stops. */
static int probe_batch(struct rstore *rs, char **all, const size_t *ids,
                       size_t n, probe_fn fn, void *arg)
{
    struct probe_op po[PROBE_BATCH];
    rados_completion_t c[PROBE_BATCH];
    int sub[PROBE_BATCH];
    int rc = WV_OK;
    memset(po, 0, sizeof po);
    memset(c, 0, sizeof c);
    for (size_t i = 0; i < n; i++) {
        sub[i] = -ENOMEM;
        char *oid = oname(rs, all[ids[i]], 0);
        if (oid && probe_op_init(&po[i], 0, NULL, 0) == WV_OK) {
            if (rl.rados_aio_create_completion2(NULL, NULL, &c[i]) == 0)
                sub[i] = rl.rados_aio_read_op_operate(po[i].op, rs->io, c[i],
                                                      oid, 0);
            else
                c[i] = NULL;
        }
        wv__free(oid);
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = all[ids[i]];
        int r = sub[i];
        if (r == 0) {
            rl.rados_aio_wait_for_complete(c[i]);
            r = rl.rados_aio_get_return_value(c[i]);
        }
        struct probe p;
        if (rc == WV_OK) {
            if (r == -ENOENT)
                ; /* deleted since listed */
            else if (r < 0)
                rc = rerr(rs, r, "cannot stat", name);
            else if ((rc = probe_finish(rs, &po[i], name, &p)) == WV_OK)
                rc = fn(rs, name, ids[i], &p, arg);
        }
        if (c[i])
            rl.rados_aio_release(c[i]);
        probe_op_release(&po[i]);
    }
    return rc;
}

static int probe_all(struct rstore *rs, char **all, const size_t *ids,
                     size_t n, probe_fn fn, void *arg)
{
    int rc = WV_OK;
    for (size_t i = 0; rc == WV_OK && i < n; i += PROBE_BATCH)
        rc = probe_batch(rs, all, ids + i,
                         n - i < PROBE_BATCH ? n - i : PROBE_BATCH, fn, arg);
    return rc;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The piece index if `name` looks like a tail piece ("X.000001"), else 0. */
static uint64_t tail_index(const char *name)
{
    size_t n = strlen(name);
    if (n < 8 || name[n - 7] != '.')
        return 0;
    uint64_t v = 0;
    for (size_t i = n - 6; i < n; i++) {
        if (name[i] < '0' || name[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    return v;
}

/* The position of `name`'s first n bytes as a whole name in the sorted
 * list, or SIZE_MAX. */
static size_t find_name(char **v, size_t count, const char *name, size_t n)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(v[mid], name, n);
        if (c == 0 && v[mid][n] != '\0')
            c = 1;
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

struct list_arg {
    int (*cb)(void *, const char *, uint64_t);
    void *arg;
    uint64_t *pieces; /* per name: the piece count of a head, else 0 */
};

static int list_one(struct rstore *rs, const char *name, size_t id,
                    const struct probe *p, void *arg)
{
    struct list_arg *la = arg;
    (void)rs;
    if (p->kind == P_TAIL)
        return WV_OK; /* a piece of a striped object */
    if (p->kind == P_HEAD)
        la->pieces[id] = p->pieces;
    return la->cb(la->arg, name, p->size);
}

/* Every object under the prefix, each probed for its size and kind. Names
 * that look like tail pieces of a head listed too are probed last, and
 * only if that head's layout does not account for them: a listing of
 * striped packs costs one probe per object, not per piece. */
static int r_list(struct wv__store *s, const char *prefix,
                  int (*cb)(void *, const char *, uint64_t), void *arg)
{
    struct rstore *rs = (struct rstore *)s;
    struct names nm = {0};
    struct list_arg la = {cb, arg, NULL};
    size_t *first = NULL, *later = NULL, nf = 0, nl = 0, nr = 0;
    int rc = collect_names(rs, prefix, &nm);
    if (rc != WV_OK || nm.n == 0)
        goto out;
    qsort(nm.v, nm.n, sizeof *nm.v, cmp_name);
    la.pieces = wv__calloc(nm.n, sizeof *la.pieces);
    first = wv__malloc(nm.n * sizeof *first);
    later = wv__malloc(nm.n * sizeof *later);
    if (!la.pieces || !first || !later) {
        rc = wv__seterr(s->err, WV_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nm.n; i++) {
        bool tailish = tail_index(nm.v[i]) > 0 &&
                       find_name(nm.v, nm.n, nm.v[i],
                                 strlen(nm.v[i]) - 7) != SIZE_MAX;
        if (tailish)
            later[nl++] = i;
        else
            first[nf++] = i;
    }
    rc = probe_all(rs, nm.v, first, nf, list_one, &la);
    if (rc != WV_OK)
        goto out;
    for (size_t k = 0; k < nl; k++) {
        const char *name = nm.v[later[k]];
        size_t h = find_name(nm.v, nm.n, name, strlen(name) - 7);
        if (la.pieces[h] <= tail_index(name)) /* not one of its pieces */
            later[nr++] = later[k];
    }
    rc = probe_all(rs, nm.v, later, nr, list_one, &la);
out:
    wv__free(first);
    wv__free(later);
    wv__free(la.pieces);
    names_release(&nm);
    return rc;
}

/* Probe every object under the prefix, tails included. */
static int walk(struct rstore *rs, const char *prefix, probe_fn fn,
                void *arg)
{
    struct names nm = {0};
    size_t *ids = NULL;
    int rc = collect_names(rs, prefix, &nm);
    if (rc == WV_OK && nm.n > 0) {
        ids = wv__malloc(nm.n * sizeof *ids);
        if (ids == NULL)
            rc = wv__seterr(rs->base.err, WV_NOMEM, "out of memory");
        for (size_t i = 0; ids && i < nm.n; i++)
            ids[i] = i;
        if (ids)
            rc = probe_all(rs, nm.v, ids, nm.n, fn, arg);
    }
    wv__free(ids);
    names_release(&nm);
    return rc;
}

/* ---- refs ------------------------------------------------------------- */

static int r_ref_get(struct wv__store *s, const char *ref, char *buf,
                     size_t cap)
{
    struct rstore *rs = (struct rstore *)s;
    char *oid = oname(rs, ref, 0);
    if (oid == NULL)
        return wv__seterr(s->err, WV_NOMEM, "out of memory");
    buf[0] = '\0';
    int r = rl.rados_read(rs->io, oid, buf, cap - 1, 0);
    wv__free(oid);
    if (r == -ENOENT)
        return wv__seterr(s->err, WV_NOTFOUND, "%s: no ref '%s' in pool '%s'",
                          s->uri, ref, rs->pool);
    if (r < 0)
        return rerr(rs, r, "cannot read ref", ref);
    buf[r] = '\0';
    return WV_OK;
}

static int r_ref_cas(struct wv__store *s, const char *ref, const char *expect,
                     const char *desired)
{
    struct rstore *rs = (struct rstore *)s;
    char tag[TAG_MAX];
    int rc = WV_OK;
    if (ref[0] == '\0')
        return wv__seterr(s->err, WV_MISUSE, "invalid ref ''");
    char *oid = oname(rs, ref, 0);
    rados_write_op_t op = rl.rados_create_write_op();
    if (oid == NULL || op == NULL) {
        rc = wv__seterr(s->err, WV_NOMEM, "out of memory");
        goto out;
    }
    if (expect == NULL)
        rl.rados_write_op_create(op, LIBRADOS_CREATE_EXCLUSIVE, NULL);
    else
        rl.rados_write_op_cmpxattr(op, "wv.ref", LIBRADOS_CMPXATTR_OP_EQ,
                                   expect, strlen(expect));
    if (desired == NULL) {
        rl.rados_write_op_remove(op);
    } else {
        size_t n = strlen(desired);
        head_tag(tag, n, rs->stripe, 1, 0);
        rl.rados_write_op_write_full(op, desired, n);
        rl.rados_write_op_setxattr(op, "wv", tag, strlen(tag));
        rl.rados_write_op_setxattr(op, "wv.ref", desired, n);
    }
    int r = rl.rados_write_op_operate(op, rs->io, oid, NULL, WOP_FLAGS);
    if (r == -ECANCELED || r == -EEXIST || r == -ENOENT)
        rc = wv__seterr(s->err, WV_CONFLICT,
                        "%s: ref '%s' changed while updating it", s->uri,
                        ref);
    else if (r < 0)
        rc = rerr(rs, r, "cannot update ref", ref);
out:
    if (op)
        rl.rados_release_write_op(op);
    wv__free(oid);
    return rc;
}

/* ---- control ------------------------------------------------------------ */

struct sweep_arg {
    int64_t min_age;
    time_t now;
};

/* Remove a tail piece left by a killed or failed writer: its head is gone,
 * or belongs to another write, and it is older than min_age. */
static int sweep_one(struct rstore *rs, const char *name, size_t id,
                     const struct probe *p, void *arg)
{
    struct sweep_arg *sa = arg;
    (void)id;
    if (p->kind != P_TAIL || (int64_t)(sa->now - p->mtime) < sa->min_age)
        return WV_OK;
    size_t n = strlen(name);
    if (tail_index(name) != p->index)
        return WV_OK; /* its tag names another piece: not ours to judge */
    char *key = wv__strndup(name, n - 7);
    if (key == NULL)
        return wv__seterr(rs->base.err, WV_NOMEM, "out of memory");
    struct probe h;
    int rc = probe_head(rs, key, 0, NULL, 0, &h, NULL);
    bool orphan = rc == WV_NOTFOUND ||
                  (rc == WV_OK && (h.kind != P_HEAD || h.gen != p->gen ||
                                   p->index >= h.pieces));
    if (orphan)
        remove_piece(rs, key, p->index, p->tag);
    wv__free(key);
    return rc == WV_OK || rc == WV_NOTFOUND ? WV_OK : rc;
}

static int r_control(struct wv__store *s, int op, void *arg)
{
    struct rstore *rs = (struct rstore *)s;
    if (op == WV_STORE_SYNC)
        return WV_OK; /* RADOS acknowledges writes once durable */
    if (op == WV_STORE_MTIME) {
        struct wv__store_mtime *m = arg;
        struct probe p;
        int rc = probe_head(rs, m->key, 0, NULL, 0, &p, NULL);
        if (rc == WV_OK)
            m->mtime = (int64_t)p.mtime;
        return rc;
    }
    if (op == WV_STORE_SWEEP) {
        struct sweep_arg sa = {((const struct wv__store_sweep *)arg)->min_age,
                              time(NULL)};
        return walk(rs, "", sweep_one, &sa);
    }
    return WV_NOTFOUND;
}

/* ---- open/close --------------------------------------------------------- */

static void r_close(struct wv__store *s)
{
    struct rstore *rs = (struct rstore *)s;
    if (rs->have_io)
        rl.rados_ioctx_destroy(rs->io);
    if (rs->have_cl)
        rl.rados_shutdown(rs->cl);
    wv__free(rs->pool);
    wv__free(rs->prefix);
    wv__free(rs);
}

static const struct wv__store_methods rados_methods = {
    2, r_close, r_get, r_put, r_stat, r_del, r_list, r_ref_get, r_ref_cas,
    r_control, NULL, NULL, NULL, NULL,
};

/* A size from the environment (wv__parse_size); unset leaves *out. */
static bool env_size(const char *name, size_t lo, size_t hi, size_t *out)
{
    const char *v = getenv(name);
    uint64_t x;
    if (v == NULL || v[0] == '\0')
        return true;
    if (!wv__parse_size(v, &x) || x < lo || x > hi)
        return false;
    *out = (size_t)x;
    return true;
}

static int r_connect(struct rstore *rs, const char *client,
                     struct wv__err *err)
{
    const char *uri = rs->base.uri;
    size_t timeout = 30;
    char tbuf[24];
    int r = rl.rados_create2(&rs->cl, "ceph", client, 0);
    if (r < 0)
        return wv__seterr(err, WV_BACKEND,
                          "%s: cannot create a rados client '%s': %s", uri,
                          client, strerror(-r));
    rs->have_cl = true;
    /* Errors reach the caller as one message; librados's own lines on
     * stderr would only repeat them (a configuration can turn them on). */
    rl.rados_conf_set(rs->cl, "log_to_stderr", "false");
    rl.rados_conf_set(rs->cl, "err_to_stderr", "false");
    const char *conf = getenv("CEPH_CONF");
    r = rl.rados_conf_read_file(rs->cl, NULL);
    if (r < 0 && conf && conf[0])
        return wv__seterr(err, WV_BACKEND,
                          "%s: cannot read the ceph configuration '%s': %s",
                          uri, conf, strerror(-r));
    bool read_conf = r == 0;
    rl.rados_conf_parse_env(rs->cl, NULL);
    char mon[8] = "";
    r = rl.rados_conf_get(rs->cl, "mon_host", mon, sizeof mon);
    bool have_mon = r == -ENAMETOOLONG || (r == 0 && mon[0] != '\0');
    if (!read_conf && !have_mon) /* else librados asks DNS, on stderr */
        return wv__seterr(err, WV_BACKEND,
                          "%s: no ceph configuration found (set CEPH_CONF)",
                          uri);
    const char *keyring = getenv("CEPH_KEYRING");
    if (keyring && keyring[0] &&
        (r = rl.rados_conf_set(rs->cl, "keyring", keyring)) < 0)
        return wv__seterr(err, WV_BACKEND, "%s: bad CEPH_KEYRING '%s': %s",
                          uri, keyring, strerror(-r));
    if (!env_size("WV_RADOS_TIMEOUT", 1, 3600, &timeout))
        return wv__seterr(err, WV_MISUSE,
                          "%s: WV_RADOS_TIMEOUT must be 1 to 3600 seconds",
                          uri);
    snprintf(tbuf, sizeof tbuf, "%zu", timeout);
    rl.rados_conf_set(rs->cl, "client_mount_timeout", tbuf);
    rl.rados_conf_set(rs->cl, "rados_mon_op_timeout", tbuf);
    rl.rados_conf_set(rs->cl, "rados_osd_op_timeout", tbuf);
    r = rl.rados_connect(rs->cl);
    if (r == -EACCES || r == -EPERM)
        return wv__seterr(err, WV_AUTH,
                          "%s: the cluster refused client '%s' (wrong key "
                          "in the keyring%s%s?): %s",
                          uri, client, keyring ? " " : "",
                          keyring ? keyring : "", strerror(-r));
    if (r == -ENOENT && (have_mon || read_conf))
        return wv__seterr(err, WV_AUTH,
                          "%s: no key for client '%s' (no keyring has it; "
                          "set CEPH_KEYRING or WV_RADOS_CLIENT)",
                          uri, client);
    if (r < 0)
        return wv__seterr(err, WV_BACKEND,
                          "%s: cannot connect to the ceph cluster as '%s' "
                          "(%zu s timeout): %s",
                          uri, client, timeout, strerror(-r));
    return WV_OK;
}

static int r_open(const char *uri, const char *rest, bool create,
                  struct wv__err *err, struct wv__store **out)
{
    struct rstore *rs;
    char client[128];
    int rc = rl_ready(uri, err), r;
    if (rc != WV_OK)
        return rc;
    rs = wv__calloc(1, sizeof *rs);
    if (rs == NULL)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    rs->base.methods = &rados_methods;
    rs->base.err = err;
    rs->base.uri = uri;
    rs->stripe = STRIPE_DEFAULT;
    rs->inflight = INFLIGHT_DEFAULT;

    const char *slash = strchr(rest, '/');
    size_t pl = slash ? (size_t)(slash - rest) : strlen(rest);
    WV_CHECK(pl > 0 && pl < 256, WV_MISUSE,
             "%s: expected rados://POOL[/PREFIX]", uri);
    rs->pool = wv__strndup(rest, pl);
    const char *px = slash ? slash + 1 : "";
    while (*px == '/')
        px++;
    size_t xl = strlen(px);
    while (xl > 0 && px[xl - 1] == '/')
        xl--;
    rs->prefix = wv__malloc(xl + 2);
    WV_CHECK(rs->pool && rs->prefix, WV_NOMEM, "out of memory");
    memcpy(rs->prefix, px, xl);
    if (xl)
        rs->prefix[xl++] = '/';
    rs->prefix[xl] = '\0';

    WV_CHECK(env_size("WV_RADOS_STRIPE", STRIPE_MIN, STRIPE_MAX, &rs->stripe),
             WV_MISUSE, "%s: WV_RADOS_STRIPE must be %zu to %zu bytes", uri,
             STRIPE_MIN, STRIPE_MAX);
    size_t inflight = INFLIGHT_DEFAULT;
    WV_CHECK(env_size("WV_RADOS_INFLIGHT", 1, INFLIGHT_MAX, &inflight),
             WV_MISUSE, "%s: WV_RADOS_INFLIGHT must be 1 to %d", uri,
             INFLIGHT_MAX);
    rs->inflight = (int)inflight;

    const char *c = getenv("WV_RADOS_CLIENT"), *id = getenv("CEPH_CLIENT_ID");
    if (c && c[0])
        snprintf(client, sizeof client, "%s%s",
                 strchr(c, '.') ? "" : "client.", c);
    else if (id && id[0])
        snprintf(client, sizeof client, "client.%s", id);
    else
        snprintf(client, sizeof client, "client.admin");
    WV_TRY(r_connect(rs, client, err));

    int64_t pid = rl.rados_pool_lookup(rs->cl, rs->pool);
    if (pid == -ENOENT && create) {
        r = rl.rados_pool_create(rs->cl, rs->pool);
        WV_CHECK(r == 0 || r == -EEXIST, code_of(-r),
                 "%s: cannot create pool '%s': %s%s", uri, rs->pool,
                 strerror(-r),
                 r == -EPERM || r == -EACCES
                     ? " (the client may not create pools: create it "
                       "with 'ceph osd pool create')"
                     : "");
        pid = 0;
    }
    WV_CHECK(pid != -ENOENT, WV_NOTFOUND, "%s: no such pool '%s'", uri,
             rs->pool);
    WV_CHECK(pid >= 0, code_of((int)-pid), "%s: cannot look up pool '%s': %s",
             uri, rs->pool, strerror((int)-pid));
    r = rl.rados_ioctx_create(rs->cl, rs->pool, &rs->io);
    WV_CHECK(r == 0, code_of(-r), "%s: cannot open pool '%s': %s%s", uri,
             rs->pool, strerror(-r), hint_of(-r));
    rs->have_io = true;
    if (create) /* quiets the cluster's "application not enabled" warning */
        rl.rados_application_enable(rs->io, "weightvault", 1);
out:
    if (rc != WV_OK) {
        r_close(&rs->base);
        return rc;
    }
    *out = &rs->base;
    return WV_OK;
}

const struct wv__backend wv__backend_rados = {"rados", r_open};
