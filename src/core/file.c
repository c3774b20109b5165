/*
 * file.c -- input sources and atomic output files.
 *
 * Input: a wv__src is either a buffer (a file mapping or caller memory) or a
 * file descriptor read with pread(). Readers go through wv__src_read() and
 * wv__src_data(), which check every range against the source size, so a
 * reader can never touch bytes past the end.
 *
 * Output: a wv__wfile writes to a temporary file beside the target, then
 * fsync, rename over the target, fsync of the directory. A failure or a
 * kill at any instant leaves the old target intact; at worst a temporary
 * file named ".<target>.wv-tmp-*" stays behind. A set of files (side
 * files: data files, shards) commits the same way, every temporary
 * fsynced before the first rename, the main file renamed last. Errors are sticky (the
 * first one is kept and every later write is a no-op) so writers can stream
 * without checking each call, as Redis's rio does.
 */
#include "core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WV__WBUF_SIZE (1u << 20)
#define WV__PREAD_CHUNK ((size_t)64 << 20)
#define WV__KICK_BYTES ((uint64_t)8 << 20)

/* Read [off, off+len) with pread() in large steps. */
static int pread_all(const struct wv__src *s, uint64_t off, unsigned char *p,
                     size_t len, struct wv__err *err)
{
    while (len > 0) {
        size_t step = len > WV__PREAD_CHUNK ? WV__PREAD_CHUNK : len;
        int fe = WV__FAULT_SIM(WV__FAULT_PREAD);
        ssize_t r = fe ? (errno = fe, -1) : pread(s->fd, p, step, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return wv__seterr(err, WV_IO, "%s: read failed: %s", s->name,
                              strerror(errno));
        if (r == 0)
            return wv__seterr(err, WV_IO_SHORT_READ,
                              "%s: file shrank while reading", s->name);
        p += r;
        off += (uint64_t)r;
        len -= (size_t)r;
    }
    return WV_OK;
}

/* Large reads are split over the cores (par.c: the cost of a read into
 * fresh memory is mostly the kernel handing out its pages, which scales
 * with cores). */
struct pread_ctx {
    const struct wv__src *s;
    uint64_t off;
    unsigned char *p;
};

static int pread_range(void *ctx, size_t off, size_t len, struct wv__err *err)
{
    struct pread_ctx *c = ctx;
    return pread_all(c->s, c->off + off, c->p + off, len, err);
}

static int pread_parallel(const struct wv__src *s, uint64_t off,
                          unsigned char *p, size_t len, struct wv__err *err)
{
    struct pread_ctx c = {s, off, p};
    return wv__par_run(len, pread_range, &c, err);
}

int wv__src_read(const struct wv__src *s, uint64_t off, void *buf, size_t len,
                 struct wv__err *err)
{
    uint64_t end;
    if (wv__add_overflow(off, len, &end) || end > s->size)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: truncated: needs bytes up to %llu but the "
                          "file has %llu",
                          s->name, (unsigned long long)(off + len),
                          (unsigned long long)s->size);
    if (s->map) {
        if (len)
            memcpy(buf, s->map + off, len);
        return WV_OK;
    }
    if (s->remote_read)
        return len ? s->remote_read(s->remote_ctx, off, buf, len, err)
                   : WV_OK;
    return pread_parallel(s, off, buf, len, err);
}

int wv__src_data(const struct wv__src *s, uint64_t off, uint64_t len,
                 const unsigned char **data, void **owned,
                 struct wv__err *err)
{
    uint64_t end;
    *data = NULL;
    *owned = NULL;
    if (wv__add_overflow(off, len, &end) || end > s->size)
        return wv__seterr(err, WV_CORRUPT,
                          "%s: truncated: data ends at %llu but the file has "
                          "%llu bytes",
                          s->name, (unsigned long long)end,
                          (unsigned long long)s->size);
    if (len > SIZE_MAX)
        return wv__seterr(err, WV_RANGE, "%s: tensor too large", s->name);
    if (s->map) {
        *data = s->map + off;
        return WV_OK;
    }
    void *buf = wv__malloc((size_t)len);
    if (buf == NULL)
        return wv__seterr(err, WV_NOMEM, "%s: out of memory for %llu bytes",
                          s->name, (unsigned long long)len);
    int rc = wv__src_read(s, off, buf, (size_t)len, err);
    if (rc != WV_OK) {
        wv__free(buf);
        return rc;
    }
    *data = buf;
    *owned = buf;
    return WV_OK;
}

/* ---- output ------------------------------------------------------------- */

static void wfail(struct wv__wfile *f, int code, const char *what, int e)
{
    if (f->rc == WV_OK)
        f->rc = wv__seterr(f->err, code, "%s: %s: %s", f->path, what,
                           strerror(e));
}

int wv__wfile_open(struct wv__wfile *f, const char *path, struct wv__err *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->err = err;
    size_t plen = strlen(path);
    f->path = wv__strdup(path);
    f->tmp_path = wv__malloc(plen + 64);
    f->buf = wv__malloc(WV__WBUF_SIZE);
    if (!f->path || !f->tmp_path || !f->buf) {
        f->rc = wv__seterr(err, WV_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    const char *slash = strrchr(path, '/');
    size_t dirlen = slash ? (size_t)(slash - path) + 1 : 0;
    static unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(f->tmp_path, plen + 64, "%.*s.%s.wv-tmp-%ld-%u", (int)dirlen,
                 path, path + dirlen, (long)getpid(),
                 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED));
        int fe = WV__FAULT_SIM(WV__FAULT_OPEN_TMP);
        f->fd = fe ? (errno = fe, -1)
                   : open(f->tmp_path,
                          O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0 || errno != EEXIST)
            break;
    }
    if (f->fd < 0) {
        wfail(f, WV_IO, "cannot create temporary file", errno);
        goto fail;
    }
    return WV_OK;
fail:
    wv__free(f->path);
    wv__free(f->tmp_path);
    wv__free(f->buf);
    f->path = f->tmp_path = NULL;
    f->buf = NULL;
    return f->rc;
}

int wv__wfile_open_dry(struct wv__wfile *f, const char *path,
                       struct wv__err *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->err = err;
    f->dry = true;
    f->path = wv__strdup(path);
    f->buf = wv__malloc(WV__WBUF_SIZE);
    if (!f->path || !f->buf) {
        f->rc = wv__seterr(err, WV_NOMEM, "%s: out of memory", path);
        wv__free(f->path);
        wv__free(f->buf);
        f->path = NULL;
        f->buf = NULL;
    }
    return f->rc;
}

static void raw_write(struct wv__wfile *f, const unsigned char *p, size_t n)
{
    if (f->dry) {
        f->fd_off += n;
        return;
    }
    while (n > 0 && f->rc == WV_OK) {
        size_t step = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        int fe = WV__FAULT_SIM(WV__FAULT_WRITE);
        ssize_t w = fe ? (errno = fe, -1) : write(f->fd, p, step);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            wfail(f, WV_IO, "write failed", w < 0 ? errno : ENOSPC);
            return;
        }
        p += w;
        n -= (size_t)w;
        f->fd_off += (uint64_t)w;
    }
    /* Start the writeback of what is written so far, without waiting:
     * the device works while we produce the next bytes, and the final
     * fsync only waits for the tail. (Only a hint: errors surface at
     * fsync.) */
    if (f->fd_off - f->kicked >= WV__KICK_BYTES) {
#ifdef SYNC_FILE_RANGE_WRITE
        sync_file_range(f->fd, (off_t)f->kicked,
                        (off_t)(f->fd_off - f->kicked),
                        SYNC_FILE_RANGE_WRITE);
#endif
        f->kicked = f->fd_off;
    }
    if (f->progress) {
        uint64_t done =
            f->fd_off > f->progress_skip ? f->fd_off - f->progress_skip : 0;
        f->progress(f->progress_arg,
                    done < f->progress_total ? done : f->progress_total,
                    f->progress_total);
    }
}

static void flush_buf(struct wv__wfile *f)
{
    if (f->buf_len) {
        raw_write(f, f->buf, f->buf_len);
        f->buf_len = 0;
    }
}

void wv__wfile_write(struct wv__wfile *f, const void *p, size_t n)
{
    if (f->rc != WV_OK || n == 0)
        return;
    if (f->crc_on)
        f->crc = wv__crc32(f->crc, p, n);
    f->off += n;
    if (n >= WV__WBUF_SIZE) {
        flush_buf(f);
        raw_write(f, p, n);
        return;
    }
    if (f->buf_len + n > WV__WBUF_SIZE)
        flush_buf(f);
    memcpy(f->buf + f->buf_len, p, n);
    f->buf_len += n;
}

void wv__wfile_zero(struct wv__wfile *f, size_t n)
{
    static const unsigned char zeros[256];
    while (n > 0) {
        size_t step = n > sizeof zeros ? sizeof zeros : n;
        wv__wfile_write(f, zeros, step);
        n -= step;
    }
}

int wv__fsync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (slash == NULL) {
        dir[0] = '.';
        dir[1] = '\0';
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0)
            n = 1; /* "/file" lives in "/" */
        if (n >= sizeof dir)
            return ENAMETOOLONG;
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    int fe = WV__FAULT_SIM(WV__FAULT_DIRSYNC);
    if (fe)
        return fe;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno;
    int e = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    /* Some filesystems refuse fsync on directories; that is not a failure
     * of ours. */
    return (e == EINVAL || e == EBADF) ? 0 : e;
}

static void free_set(struct wv__wfile *f)
{
    for (size_t i = 0; i < f->n_sides; i++) {
        wv__wfile_abort(f->sides[i]);
        wv__free(f->sides[i]);
    }
    wv__free(f->sides);
    f->sides = NULL;
    f->n_sides = f->cap_sides = 0;
    for (size_t i = 0; i < f->n_drops; i++)
        wv__free(f->drops[i]);
    wv__free(f->drops);
    f->drops = NULL;
    f->n_drops = f->cap_drops = 0;
}

void wv__wfile_abort(struct wv__wfile *f)
{
    if (f->fd >= 0)
        close(f->fd);
    if ((f->fd >= 0 || f->sealed) && f->tmp_path)
        unlink(f->tmp_path);
    f->fd = -1;
    f->sealed = false;
    free_set(f);
    wv__free(f->path);
    wv__free(f->tmp_path);
    wv__free(f->buf);
    f->path = f->tmp_path = NULL;
    f->buf = NULL;
}

int wv__wfile_side(struct wv__wfile *main, const char *path,
                   struct wv__wfile **out)
{
    struct wv__wfile *s = NULL;
    *out = NULL;
    if (main->rc != WV_OK)
        return main->rc;
    if (wv__grow(&main->sides, &main->cap_sides, main->n_sides,
                 sizeof *main->sides, 4) != WV_OK ||
        (s = wv__malloc(sizeof *s)) == NULL)
        return main->rc = wv__seterr(main->err, WV_NOMEM,
                                     "%s: out of memory", path);
    int rc = wv__wfile_open(s, path, main->err);
    if (rc != WV_OK) {
        wv__free(s);
        return main->rc = rc;
    }
    main->sides[main->n_sides++] = s;
    *out = s;
    return WV_OK;
}

int wv__wfile_drop_after(struct wv__wfile *main, const char *path)
{
    char *d = NULL;
    if (main->rc != WV_OK)
        return main->rc;
    if (wv__grow(&main->drops, &main->cap_drops, main->n_drops,
                 sizeof *main->drops, 4) != WV_OK ||
        (d = wv__strdup(path)) == NULL)
        return main->rc = wv__seterr(main->err, WV_NOMEM,
                                     "%s: out of memory", path);
    main->drops[main->n_drops++] = d;
    return WV_OK;
}

int wv__wfile_drop_stale(struct wv__wfile *main,
                         bool (*stale)(const char *name, void *arg),
                         void *arg)
{
    const char *slash = strrchr(main->path, '/');
    size_t dl = slash ? (size_t)(slash - main->path) + 1 : 0;
    struct wv__buf p = {0};
    DIR *d = NULL;
    wv__buf_add(&p, main->path, dl);
    wv__buf_add(&p, "", 1);
    if (p.oom) {
        main->rc = wv__seterr(main->err, WV_NOMEM, "%s: out of memory",
                              main->path);
        goto out;
    }
    d = opendir(dl ? p.p : "."); /* unlisted: nothing to clean */
    for (struct dirent *e; main->rc == WV_OK && d && (e = readdir(d));) {
        if (!stale(e->d_name, arg))
            continue;
        p.len = dl;
        wv__buf_adds(&p, e->d_name);
        wv__buf_add(&p, "", 1);
        if (p.oom)
            main->rc = wv__seterr(main->err, WV_NOMEM, "%s: out of memory",
                                  main->path);
        else
            (void)wv__wfile_drop_after(main, p.p); /* sets main->rc */
    }
out:
    if (d)
        closedir(d);
    wv__buf_release(&p);
    return main->rc;
}

int wv__wfile_seal(struct wv__wfile *f)
{
    if (f->sealed || f->fd < 0)
        return f->rc;
    flush_buf(f);
    if (f->rc == WV_OK) {
        int fe = WV__FAULT_SIM(WV__FAULT_FSYNC);
        if (fe || fsync(f->fd) != 0)
            wfail(f, WV_IO, "fsync failed", fe ? fe : errno);
    }
    int e = close(f->fd);
    f->fd = -1;
    if (f->rc == WV_OK && e != 0)
        wfail(f, WV_IO, "close failed", errno);
    f->sealed = true; /* the temporary goes at abort or rename */
    return f->rc;
}

static int rename_sealed(struct wv__wfile *f)
{
    int fe = WV__FAULT_SIM(WV__FAULT_RENAME);
    if (fe || rename(f->tmp_path, f->path) != 0)
        wfail(f, WV_IO, "rename failed", fe ? fe : errno);
    else
        f->sealed = false; /* renamed: nothing left to remove */
    return f->rc;
}

int wv__wfile_commit(struct wv__wfile *f)
{
    int rc = WV_OK;
    /* 1. every temporary on disk, or nothing is renamed */
    for (size_t i = 0; i < f->n_sides && rc == WV_OK; i++)
        rc = wv__wfile_seal(f->sides[i]);
    if (rc == WV_OK)
        rc = wv__wfile_seal(f);
    else if (f->rc == WV_OK)
        f->rc = rc;
    /* 2. the side files, the main file last */
    for (size_t i = 0; i < f->n_sides && rc == WV_OK; i++)
        rc = rename_sealed(f->sides[i]);
    if (rc == WV_OK)
        rc = rename_sealed(f);
    else if (f->rc == WV_OK)
        f->rc = rc;
    /* 3. the stale files of the previous version, then one fsync of the
     * directory (the set shares it) for all of it */
    for (size_t i = 0; i < f->n_drops && rc == WV_OK; i++)
        (void)unlink(f->drops[i]); /* best effort: stale, unreferenced */
    if (rc == WV_OK) {
        int e = wv__fsync_dir(f->path);
        if (e)
            wfail(f, WV_IO, "fsync of the directory failed", e);
        rc = f->rc;
    }
    wv__wfile_abort(f); /* frees; removes the temporaries not renamed */
    return rc;
}
