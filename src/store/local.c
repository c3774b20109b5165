/*
 * local.c -- the local-disk backend ("file:///path" or a plain path).
 *
 * A key is a file under the root ("packs/ab/abcd..." is ROOT/packs/ab/...).
 * Objects are written to a temporary file in their directory and renamed
 * into place, so a reader never sees a partial object; with durability the
 * file is fsynced before and its directory after the rename. NOSYNC puts
 * skip both and are remembered until a WV_STORE_SYNC barrier fsyncs them
 * all (a commit writes many packs, then syncs once before its manifest).
 *
 * Refs are files too. A compare-and-swap takes "<ref>.lock" with O_EXCL
 * (git's lockfile protocol), compares, writes the new value into the lock
 * file, fsyncs it and renames it over the ref. A lock left by a killed
 * process on this host is detected by its pid and broken.
 */
#include "core.h"
#include "store.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>

struct local {
    struct wv__store base;
    char *root;
    char **pending; /* NOSYNC puts awaiting the sync barrier */
    size_t n_pending, cap_pending;
};

static char *key_path(struct local *l, const char *key)
{
    size_t n = strlen(l->root) + strlen(key) + 2;
    char *p = wv__malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", l->root, key);
    return p;
}

static bool key_ok(const char *key)
{
    /* Keys come from the repository code, but refuse anything that could
     * escape the root all the same. */
    if (key[0] == '\0' || key[0] == '/' || strstr(key, "..") != NULL)
        return false;
    return true;
}

static int mkdirs(char *path) /* path of a file: make its parents */
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0777);
        int e = errno;
        *p = '/';
        if (r != 0 && e != EEXIST)
            return e;
    }
    return 0;
}

static int fsync_parent(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n == 0 || n >= sizeof dir)
        return 0;
    memcpy(dir, path, n);
    dir[n] = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int e = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return e == EINVAL ? 0 : e;
}

static int io_err(struct local *l, const char *what, const char *key, int e)
{
    return wv__seterr(l->base.err, e == ENOENT ? WV_NOTFOUND : WV_IO,
                      "%s: %s '%s': %s", l->base.uri, what, key,
                      strerror(e));
}

static void l_close(struct wv__store *s)
{
    struct local *l = (struct local *)s;
    for (size_t i = 0; i < l->n_pending; i++)
        wv__free(l->pending[i]);
    wv__free(l->pending);
    wv__free(l->root);
    wv__free(l);
}

static int l_get(struct wv__store *s, const char *key, uint64_t off,
                 void *buf, size_t len, size_t *nread)
{
    struct local *l = (struct local *)s;
    int rc = WV_OK;
    char *p = key_path(l, key);
    if (p == NULL)
        return WV_NOMEM;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = io_err(l, "cannot open", key, errno);
        goto out;
    }
    unsigned char *b = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, b + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = io_err(l, "read failed on", key, errno);
            break;
        }
        if (r == 0) {
            memset(b + got, 0, len - got);
            rc = wv__seterr(s->err, WV_IO_SHORT_READ,
                            "%s: object '%s' is shorter than expected",
                            s->uri, key);
            break;
        }
        got += (size_t)r;
    }
    *nread = got;
    close(fd);
out:
    wv__free(p);
    return rc;
}

/* Write every piece, in order (writev: a pack goes from the tensors to
 * the file without a gathering copy). */
static int write_pieces(int fd, const struct iovec *iov, size_t n)
{
    size_t i = 0, skip = 0; /* bytes of iov[i] already written */
    while (i < n) {
        if (skip == iov[i].iov_len) {
            i++;
            skip = 0;
            continue;
        }
        struct iovec cur[64];
        int k = 0;
        for (size_t j = i; j < n && k < 64; j++, k++) {
            size_t from = j == i ? skip : 0;
            cur[k].iov_base = (unsigned char *)iov[j].iov_base + from;
            cur[k].iov_len = iov[j].iov_len - from;
        }
        ssize_t w = writev(fd, cur, k);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : ENOSPC;
        for (size_t left = (size_t)w; left > 0;) {
            size_t room = iov[i].iov_len - skip;
            if (left < room) {
                skip += left;
                left = 0;
            } else {
                left -= room;
                i++;
                skip = 0;
            }
        }
    }
    return 0;
}

static int write_file(int fd, const void *buf, size_t len)
{
    struct iovec one = {(void *)buf, len};
    return write_pieces(fd, &one, 1);
}

/* A new object being written: its temporary file, open, and its path. */
struct tmpobj {
    char *path, *tmp;
    int fd;
};

static void tmp_drop(struct tmpobj *t)
{
    if (t->fd >= 0) {
        close(t->fd);
        unlink(t->tmp);
    }
    wv__free(t->path);
    wv__free(t->tmp);
    t->path = t->tmp = NULL;
    t->fd = -1;
}

/* Start object `key`: a fresh temporary file in its directory, opened for
 * writing. With WV_PUT_IF_ABSENT and the object there, *exists and no
 * file. */
static int tmp_open(struct local *l, const char *key, unsigned flags,
                    struct tmpobj *t, bool *exists)
{
    static unsigned counter;
    struct stat st;
    int e;
    t->fd = -1;
    t->path = t->tmp = NULL;
    *exists = false;
    if (!key_ok(key))
        return wv__seterr(l->base.err, WV_MISUSE, "invalid key '%s'", key);
    size_t tl = strlen(l->root) + strlen(key) + 64;
    t->path = key_path(l, key);
    t->tmp = wv__malloc(tl);
    if (!t->path || !t->tmp) {
        tmp_drop(t);
        return wv__seterr(l->base.err, WV_NOMEM, "out of memory");
    }
    if ((flags & WV_PUT_IF_ABSENT) && stat(t->path, &st) == 0) {
        tmp_drop(t);
        *exists = true; /* content-addressed: already there */
        return WV_OK;
    }
    if ((e = mkdirs(t->path)) != 0) {
        tmp_drop(t);
        return io_err(l, "cannot create the directory of", key, e);
    }
    const char *slash = strrchr(t->path, '/');
    snprintf(t->tmp, tl, "%.*s/.tmp-%ld-%u", (int)(slash - t->path),
             t->path, (long)getpid(),
             __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
    /* read and write: a caller of put_open may read back what it wrote
     * (sync.c checks a pack before it is kept) */
    t->fd = open(t->tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (t->fd < 0) {
        e = errno;
        tmp_drop(t);
        return io_err(l, "cannot create a temporary file for", key, e);
    }
    return WV_OK;
}

/* Make the written temporary file object `key`: durable first unless
 * NOSYNC (then remembered for the sync barrier), renamed into place, its
 * directory synced. Releases t either way. */
static int tmp_commit(struct local *l, const char *key, struct tmpobj *t,
                      unsigned flags)
{
    int rc = WV_OK, e;
    /* room on the barrier's list first: an object renamed into place but
     * not on it would never be synced, and a re-run would find it there */
    if ((flags & WV_PUT_NOSYNC) && l->n_pending == l->cap_pending) {
        size_t cap = l->cap_pending ? l->cap_pending * 2 : 16;
        char **np = wv__realloc(l->pending, cap * sizeof *np);
        if (np == NULL) {
            rc = wv__seterr(l->base.err, WV_NOMEM, "out of memory");
            goto out;
        }
        l->pending = np;
        l->cap_pending = cap;
    }
    /* an ephemeral object is never synced, nor remembered for that */
    if (flags & WV_PUT_EPHEMERAL)
        flags = (flags & ~WV_PUT_NOSYNC) | WV_PUT_EPHEMERAL;
#ifdef SYNC_FILE_RANGE_WRITE
    /* Start its writeback now (a hint, not a barrier): a commit writes
     * many packs before one sync, which then only waits for the tail. */
    if (flags & WV_PUT_NOSYNC)
        sync_file_range(t->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#endif
    if (!(flags & (WV_PUT_NOSYNC | WV_PUT_EPHEMERAL)) && fsync(t->fd) != 0) {
        rc = io_err(l, "fsync failed on", key, errno);
        goto out;
    }
    e = close(t->fd) == 0 ? 0 : errno;
    t->fd = -1;
    if (e) {
        rc = io_err(l, "close failed on", key, e);
        goto out;
    }
    if (rename(t->tmp, t->path) != 0) {
        rc = io_err(l, "rename failed for", key, errno);
        goto out;
    }
    if (flags & WV_PUT_NOSYNC) {
        l->pending[l->n_pending++] = t->path;
        t->path = NULL;
    } else if (!(flags & WV_PUT_EPHEMERAL) &&
               (e = fsync_parent(t->path)) != 0) {
        rc = io_err(l, "fsync of the directory failed for", key, e);
    }
out:
    if (rc != WV_OK && t->fd < 0 && t->tmp)
        unlink(t->tmp);
    tmp_drop(t);
    return rc;
}

static int l_putv(struct wv__store *s, const char *key,
                  const struct iovec *iov, size_t n_iov, unsigned flags)
{
    struct local *l = (struct local *)s;
    struct tmpobj t;
    bool exists;
    int rc = tmp_open(l, key, flags, &t, &exists), e;
    if (rc != WV_OK || exists)
        return rc;
    if ((e = write_pieces(t.fd, iov, n_iov)) != 0) {
        tmp_drop(&t);
        return io_err(l, "write failed on", key, e);
    }
    return tmp_commit(l, key, &t, flags);
}

/* put_open and put_close: l_putv in two halves, the caller writing
 * between them. */
static int l_put_open(struct wv__store *s, struct wv__store_wfile *w,
                      bool *exists)
{
    struct local *l = (struct local *)s;
    struct tmpobj *t = wv__malloc(sizeof *t);
    if (t == NULL)
        return wv__seterr(s->err, WV_NOMEM, "out of memory");
    int rc = tmp_open(l, w->key, w->flags, t, exists);
    if (rc != WV_OK || *exists) {
        wv__free(t);
        return rc;
    }
    w->fd = t->fd;
    w->priv = t;
    return WV_OK;
}

static int l_put_close(struct wv__store *s, struct wv__store_wfile *w,
                       bool keep)
{
    struct tmpobj *t = w->priv;
    int rc = WV_OK;
    w->priv = NULL;
    w->fd = -1;
    if (t == NULL)
        return WV_OK; /* nothing was opened */
    if (keep)
        rc = tmp_commit((struct local *)s, w->key, t, w->flags);
    else
        tmp_drop(t);
    wv__free(t);
    return rc;
}

static int l_put(struct wv__store *s, const char *key, const void *buf,
                 size_t len, unsigned flags)
{
    struct iovec one = {(void *)buf, len};
    return l_putv(s, key, &one, 1, flags);
}

static int l_stat(struct wv__store *s, const char *key, uint64_t *size)
{
    struct local *l = (struct local *)s;
    struct stat st;
    char *p = key_path(l, key);
    if (p == NULL)
        return WV_NOMEM;
    int r = stat(p, &st), e = errno;
    wv__free(p);
    if (r != 0)
        return e == ENOENT ? WV_NOTFOUND : io_err(l, "cannot stat", key, e);
    *size = (uint64_t)st.st_size;
    return WV_OK;
}

static int l_del(struct wv__store *s, const char *key)
{
    struct local *l = (struct local *)s;
    char *p = key_path(l, key);
    if (p == NULL)
        return WV_NOMEM;
    int r = unlink(p), e = errno;
    wv__free(p);
    if (r != 0)
        return e == ENOENT ? WV_NOTFOUND : io_err(l, "cannot delete", key, e);
    return WV_OK;
}

/* Walk dir (relative key prefix `rel`) calling cb for files whose key starts
 * with `prefix`. Temporary and lock files are not objects. */
static int walk(struct local *l, const char *rel, const char *prefix,
                int (*cb)(void *, const char *, uint64_t), void *arg,
                int depth)
{
    int rc = WV_OK;
    char *dirp = key_path(l, rel[0] ? rel : ".");
    if (dirp == NULL)
        return WV_NOMEM;
    DIR *d = opendir(dirp);
    if (d == NULL) {
        int e = errno;
        wv__free(dirp);
        return e == ENOENT || e == ENOTDIR ? WV_OK
                                           : io_err(l, "cannot list", rel, e);
    }
    struct dirent *de;
    while (rc == WV_OK && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        size_t nl = strlen(rel) + strlen(de->d_name) + 2;
        char *key = wv__malloc(nl);
        if (key == NULL) {
            rc = WV_NOMEM;
            break;
        }
        snprintf(key, nl, "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        size_t kl = strlen(key), pl = strlen(prefix);
        bool may_match = strncmp(key, prefix, kl < pl ? kl : pl) == 0;
        struct stat st;
        char *full = may_match ? key_path(l, key) : NULL;
        /* Inside refs/heads/ and refs/tags/ every name is a ref: one that
         * is not a regular file (a symlink, a directory, a FIFO) is listed
         * all the same, so whoever reads it (verify) reports it. */
        bool in_refs = strncmp(rel, "refs/", 5) == 0 &&
                       strchr(rel + 5, '/') == NULL && kl >= pl &&
                       (kl < 5 || strcmp(key + kl - 5, ".lock") != 0);
        if (in_refs && full && lstat(full, &st) == 0 &&
            !S_ISREG(st.st_mode)) {
            rc = cb(arg, key, 0);
        } else if (may_match && full && stat(full, &st) == 0) {
            if (S_ISDIR(st.st_mode) && depth < 16)
                rc = walk(l, key, prefix, cb, arg, depth + 1);
            else if (S_ISREG(st.st_mode) && kl >= pl &&
                     (kl < 5 || strcmp(key + kl - 5, ".lock") != 0))
                rc = cb(arg, key, (uint64_t)st.st_size);
        }
        wv__free(full);
        wv__free(key);
    }
    closedir(d);
    wv__free(dirp);
    return rc;
}

static int l_list(struct wv__store *s, const char *prefix,
                  int (*cb)(void *, const char *, uint64_t), void *arg)
{
    struct local *l = (struct local *)s;
    /* Start at the deepest directory the prefix names. */
    char rel[1024];
    const char *slash = strrchr(prefix, '/');
    size_t n = slash ? (size_t)(slash - prefix) : 0;
    if (n >= sizeof rel)
        return WV_RANGE;
    memcpy(rel, prefix, n);
    rel[n] = '\0';
    return walk(l, rel, prefix, cb, arg, 0);
}

/* Refs are read like untrusted objects: opened without following a
 * symlink and without blocking on a FIFO, and only a regular file no
 * longer than a ref value and without NUL bytes is one. Anything else in
 * its place is WV_CORRUPT naming what it is, so a damaged store can make
 * a command fail but never hang it or read elsewhere. */
static int l_ref_get(struct wv__store *s, const char *ref, char *buf,
                     size_t cap)
{
    struct local *l = (struct local *)s;
    int rc = WV_OK, fd = -1;
    struct stat st;
    buf[0] = '\0';
    if (!key_ok(ref))
        return wv__seterr(s->err, WV_MISUSE, "invalid ref '%s'", ref);
    char *p = key_path(l, ref);
    if (p == NULL)
        return WV_NOMEM;
    fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            rc = wv__seterr(s->err, WV_CORRUPT,
                            "%s: ref '%s' is a symbolic link, not a ref",
                            s->uri, ref);
        else
            rc = io_err(l, "cannot open ref", ref, e);
        goto out;
    }
    if (fstat(fd, &st) != 0) {
        rc = io_err(l, "cannot stat ref", ref, errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = wv__seterr(s->err, WV_CORRUPT,
                        "%s: ref '%s' is %s, not a ref file", s->uri, ref,
                        S_ISDIR(st.st_mode)    ? "a directory"
                        : S_ISFIFO(st.st_mode) ? "a FIFO"
                        : S_ISSOCK(st.st_mode) ? "a socket"
                                               : "a device");
        goto out;
    }
    if ((uint64_t)st.st_size >= cap) {
        rc = wv__seterr(s->err, WV_CORRUPT,
                        "%s: ref '%s' holds %llu bytes, more than any ref "
                        "value",
                        s->uri, ref, (unsigned long long)st.st_size);
        goto out;
    }
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t r = pread(fd, buf + got, cap - 1 - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = io_err(l, "read failed on ref", ref, errno);
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    if (memchr(buf, '\0', got) != NULL) {
        buf[0] = '\0';
        rc = wv__seterr(s->err, WV_CORRUPT, "%s: ref '%s' holds a NUL byte",
                        s->uri, ref);
    }
out:
    if (fd >= 0)
        close(fd);
    wv__free(p);
    return rc;
}

/* A lock that names no holder (being written, or holding the ref's new
 * value: its holder may have died before the rename) is stale this many
 * seconds after it was last written. */
#define LOCK_STALE_S 10

/* Take "<ref>.lock". Waits for a live holder, and longer than a lock takes
 * to go stale, so that a holder killed at any moment is outwaited (a
 * compare-and-swap fails with WV_CONFLICT only when the ref changed or a
 * live holder keeps it); breaks the lock of a process on this host that
 * no longer exists. */
static int take_lock(struct local *l, const char *lock, const char *ref)
{
    struct timespec t0, tn;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int attempt = 0;; attempt++) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return -io_err(l, "cannot lock ref", ref, errno);
        char buf[32] = "";
        int rfd = open(lock, O_RDONLY | O_CLOEXEC);
        if (rfd >= 0) {
            ssize_t r = read(rfd, buf, sizeof buf - 1);
            close(rfd);
            buf[r > 0 ? r : 0] = '\0';
        }
        /* Only a whole "<pid>\n" line names the holder: the holder
         * rewrites the lock with the ref's new value before renaming it,
         * and the leading digits of a hex id are not a pid. */
        char *end;
        long pid = strtol(buf, &end, 10);
        if (end == buf || *end != '\n')
            pid = 0;
        struct stat st;
        if (pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            unlink(lock); /* its owner died holding it */
            continue;
        }
        if (pid <= 0 && stat(lock, &st) == 0 &&
            time(NULL) - st.st_mtime > LOCK_STALE_S) {
            unlink(lock); /* no holder named for that long: stale */
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &tn);
        if (tn.tv_sec - t0.tv_sec > LOCK_STALE_S + 5)
            break;
        struct timespec ts = {0, 5000000 + (attempt < 400 ? attempt : 400) *
                                               100000L};
        nanosleep(&ts, NULL);
    }
    return -wv__seterr(l->base.err, WV_CONFLICT,
                       "%s: ref '%s' stays locked by another process",
                       l->base.uri, ref);
}

static int l_ref_cas(struct wv__store *s, const char *ref, const char *expect,
                     const char *desired)
{
    struct local *l = (struct local *)s;
    int rc = WV_OK, fd = -1, e;
    char *p = NULL, *lock = NULL;
    char cur[512];
    bool locked = false;

    if (!key_ok(ref))
        return wv__seterr(s->err, WV_MISUSE, "invalid ref '%s'", ref);
    p = key_path(l, ref);
    lock = wv__malloc(strlen(l->root) + strlen(ref) + 8);
    if (!p || !lock) {
        rc = WV_NOMEM;
        goto out;
    }
    snprintf(lock, strlen(l->root) + strlen(ref) + 8, "%s.lock", p);
    if ((e = mkdirs(p)) != 0) {
        rc = io_err(l, "cannot create the directory of ref", ref, e);
        goto out;
    }
    fd = take_lock(l, lock, ref);
    if (fd < 0) {
        rc = -fd;
        fd = -1;
        goto out;
    }
    locked = true;
    char pidbuf[24];
    int pl = snprintf(pidbuf, sizeof pidbuf, "%ld\n", (long)getpid());
    if (write_file(fd, pidbuf, (size_t)pl) != 0) {
        rc = io_err(l, "cannot write the lock of ref", ref, errno);
        goto out;
    }
    rc = l_ref_get(s, ref, cur, sizeof cur);
    bool exists = rc == WV_OK;
    if (rc == WV_NOTFOUND)
        rc = WV_OK;
    if (rc != WV_OK)
        goto out;
    if ((expect == NULL) != !exists ||
        (expect != NULL && strcmp(cur, expect) != 0)) {
        rc = wv__seterr(s->err, WV_CONFLICT,
                        "%s: ref '%s' changed while updating it", s->uri,
                        ref);
        goto out;
    }
    if (desired == NULL) {
        if (unlink(p) != 0)
            rc = io_err(l, "cannot delete ref", ref, errno);
        else if ((e = fsync_parent(p)) != 0)
            rc = io_err(l, "fsync of the directory failed for ref", ref, e);
        goto out;
    }
    /* The lock file becomes the ref: rewrite it with the value only. */
    if (ftruncate(fd, 0) != 0 || pwrite(fd, desired, strlen(desired), 0) !=
                                     (ssize_t)strlen(desired)) {
        rc = io_err(l, "cannot write ref", ref, errno);
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = io_err(l, "fsync failed on ref", ref, errno);
        goto out;
    }
    close(fd);
    fd = -1;
    if (rename(lock, p) != 0) {
        rc = io_err(l, "cannot update ref", ref, errno);
        goto out;
    }
    if ((e = fsync_parent(p)) != 0)
        rc = io_err(l, "fsync of the directory failed for ref", ref, e);
    locked = false; /* renamed: it is the ref now */
out:
    if (fd >= 0)
        close(fd);
    if (locked)
        unlink(lock);
    wv__free(p);
    wv__free(lock);
    return rc;
}

static int l_sync(struct local *l)
{
    int rc = WV_OK;
    for (size_t i = 0; i < l->n_pending; i++) {
        int fd = open(l->pending[i], O_RDONLY | O_CLOEXEC);
        int e = fd < 0 ? errno : (fsync(fd) == 0 ? 0 : errno);
        if (fd >= 0)
            close(fd);
        if (e == 0)
            e = fsync_parent(l->pending[i]);
        if (e && rc == WV_OK)
            rc = wv__seterr(l->base.err, WV_IO, "%s: fsync failed on '%s': %s",
                            l->base.uri, l->pending[i], strerror(e));
    }
    for (size_t i = 0; i < l->n_pending; i++)
        wv__free(l->pending[i]);
    l->n_pending = 0;
    return rc;
}

/* Could the writer of temporary file `name` (".tmp-<pid>-<n>", written
 * by l_putv) still rename it? Yes while a process with that pid lives on
 * this host (or the name carries no pid): such a file is never removed,
 * however old, since a writer may take longer than any grace period. */
static bool tmp_writer_alive(const char *name)
{
    char *end;
    errno = 0;
    long pid = strtol(name + 5, &end, 10);
    if (end == name + 5 || *end != '-' || errno != 0 || pid <= 0 ||
        (long)(pid_t)pid != pid)
        return true;
    return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

/* Remove ".tmp-*" files (objects, lock objects and refs a killed writer
 * never renamed) untouched for min_age seconds whose writer is gone, under
 * dir, depth-bounded. */
static void sweep_dir(const char *dir, struct wv__store_sweep *sw, int depth)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    time_t now = time(NULL);
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, de->d_name) >=
            sizeof p)
            continue;
        struct stat st;
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && de->d_name[0] != '.' && depth < 16)
            sweep_dir(p, sw, depth + 1);
        else if (S_ISREG(st.st_mode) &&
                 strncmp(de->d_name, ".tmp-", 5) == 0 &&
                 (int64_t)(now - st.st_mtime) >= sw->min_age &&
                 !tmp_writer_alive(de->d_name) && unlink(p) == 0)
            sw->removed++;
    }
    closedir(d);
}

/* Objects are immutable and replaced only by rename, so a mapping sees
 * the bytes the object had when mapped (gc, which deletes, cannot run
 * while a commit holds its shared lock). */
static int l_map(struct local *l, struct wv__store_map *m)
{
    int rc = WV_OK;
    struct stat st;
    m->p = NULL;
    m->len = 0;
    char *p = key_path(l, m->key);
    if (p == NULL)
        return WV_NOMEM;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = io_err(l, "cannot open", m->key, errno);
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > SIZE_MAX) {
        rc = wv__seterr(l->base.err, WV_NOTFOUND, "%s: cannot map '%s'",
                        l->base.uri, m->key);
        goto out;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = io_err(l, "cannot map", m->key, errno);
        goto out;
    }
    m->p = map;
    m->len = (size_t)st.st_size;
out:
    if (fd >= 0)
        close(fd);
    wv__free(p);
    return rc;
}

static int l_control(struct wv__store *s, int op, void *arg)
{
    struct local *l = (struct local *)s;
    if (op == WV_STORE_SWEEP) {
        sweep_dir(l->root, arg, 0);
        return WV_OK;
    }
    if (op == WV_STORE_SYNC)
        return l_sync(l);
    if (op == WV_STORE_MAP)
        return l_map(l, arg);
    if (op == WV_STORE_UNMAP) {
        struct wv__store_map *m = arg;
        if (m->p != NULL && m->len > 0)
            munmap((void *)m->p, m->len);
        m->p = NULL;
        return WV_OK;
    }
    if (op == WV_STORE_MTIME) {
        struct wv__store_mtime *m = arg;
        struct stat st;
        char *p = key_path(l, m->key);
        if (p == NULL)
            return WV_NOMEM;
        int r = stat(p, &st), e = errno;
        wv__free(p);
        if (r != 0)
            return e == ENOENT ? WV_NOTFOUND
                               : io_err(l, "cannot stat", m->key, e);
        m->mtime = (int64_t)st.st_mtime;
        return WV_OK;
    }
    return WV_NOTFOUND;
}

static const struct wv__store_methods local_methods = {
    3, l_close, l_get, l_put, l_stat, l_del, l_list, l_ref_get, l_ref_cas,
    l_control, l_putv, NULL, l_put_open, l_put_close,
};

static int l_open(const char *uri, const char *rest, bool create,
                  struct wv__err *err, struct wv__store **out)
{
    struct local *l = wv__calloc(1, sizeof *l);
    if (l == NULL)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    l->base.methods = &local_methods;
    l->base.err = err;
    l->base.uri = uri;
    size_t n = strlen(rest);
    while (n > 1 && rest[n - 1] == '/')
        n--;
    l->root = wv__strndup(rest, n);
    if (l->root == NULL) {
        wv__free(l);
        return wv__seterr(err, WV_NOMEM, "out of memory");
    }
    struct stat st;
    if (stat(l->root, &st) != 0) {
        int e = errno;
        if (!create || e != ENOENT || mkdir(l->root, 0777) != 0) {
            if (create && e == ENOENT)
                e = errno;
            wv__seterr(err, e == ENOENT ? WV_NOTFOUND : WV_IO, "%s: %s", uri,
                       strerror(e));
            l_close(&l->base);
            return err->code;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        l_close(&l->base);
        return wv__seterr(err, WV_NOTFOUND, "%s: not a directory", uri);
    }
    *out = &l->base;
    return WV_OK;
}

const struct wv__backend wv__backend_file = {"file", l_open};
