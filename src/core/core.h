/*
 * core.h -- the core layer (src/core): what every other layer may use.
 * Allocation and fault injection (alloc.c), error messages (err.c), the
 * growable buffer (buf.c), input sources and atomic output files (file.c),
 * UTF-8 and name escaping (utf8.c, esc.c), hashing (hash.c), numbers in
 * text (num.c), parallel ranges (par.c), the parser sandbox (sandbox.c),
 * checked arithmetic and little-endian helpers.
 *
 * Nothing here is part of the public contract. Internal non-static symbols
 * are spelled wv__name. Core includes no header of a higher layer
 * (scripts/layers.sh).
 */
#ifndef WV_CORE_H
#define WV_CORE_H

#include "weightvault.h"

/* System headers come before banned.h so its macros cannot clash with their
 * declarations; later includes of them in .c files are no-ops. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "banned.h"

/* ---- checked arithmetic ------------------------------------------------ */
static inline bool wv__mul_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out);
}
static inline bool wv__add_overflow(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_add_overflow(a, b, out);
}

/* ---- memory ------------------------------------------------------------ */
void *wv__malloc(size_t n);
void *wv__calloc(size_t n, size_t size);
void *wv__realloc(void *p, size_t n);
/* Room for element n of a growable array: pv points to the array's
 * pointer (any element type), *cap is its capacity in elements of `elem`
 * bytes; when full it doubles (from `first`). WV_NOMEM leaves it as it
 * was. */
int wv__grow(void *pv, size_t *cap, size_t n, size_t elem, size_t first);
/* Room for `need` elements of a growable array as wv__grow's (doubling
 * as often as it takes; the first time exactly `need`): for appending
 * many at once. WV_NOMEM leaves it as it was. */
int wv__reserve(void *pv, size_t *cap, size_t need, size_t elem);
void wv__free(void *p); /* preserves errno */
char *wv__strdup(const char *s);
char *wv__strndup(const char *s, size_t n);

/* Fault-injection sites. Numbers are never reused. A test arms one site
 * with wv__fault_arm(id, errno_value); the site then fails once. */
enum {
    WV__FAULT_WRITE = 1,
    WV__FAULT_FSYNC = 2,
    WV__FAULT_RENAME = 3,
    WV__FAULT_DIRSYNC = 4,
    WV__FAULT_OPEN_TMP = 5,
    WV__FAULT_PREAD = 6,
    /* not a failure: the next chunk a checkout decodes from a read
     * buffer waits this many milliseconds first (tests of buffer reuse) */
    WV__FAULT_SLOW_DECODE = 7,
};
#ifdef WV_FAULT_INJECTION
/* Test hooks, only in builds with the tests (CMake WV_FAULT_INJECTION):
 * the n-th allocation from now on fails (0 disables); a site fails once. */
void wv__alloc_fail_after(long n);
int wv__fault_sim(int id); /* 0, or the errno to fail with */
void wv__fault_arm(int id, int err);
/* The same, failing the nth hit of the site from now on (n >= 1). */
void wv__fault_arm_nth(int id, int err, int n);
#define WV__FAULT_SIM(id) wv__fault_sim(id)
#else
/* Without them a site is the constant 0: no call, no branch taken. */
#define WV__FAULT_SIM(id) ((void)(id), 0)
#endif

/* Run fn(arg) in a forked child first (sandbox.c): WV_OK if it finished
 * with WV_OK; its own error if it failed cleanly; WV_CORRUPT naming `what`
 * if it crashed or overran its time (scaled with `size`, the input's
 * bytes). For third-party parsers not hardened against hostile input. */
struct wv__err;
int wv__sandbox_check(int (*fn)(void *arg, struct wv__err *err), void *arg,
                      uint64_t size, const char *what, struct wv__err *err);

/* Split [0, n) over the cores when n is large (par.c), in slices of
 * whole 2 MiB, and call fn(ctx, off, len, err) on each, one thread each.
 * The first failing slice's status and message are returned. */
typedef int (*wv__range_fn)(void *ctx, size_t off, size_t len,
                            struct wv__err *err);
int wv__par_run(size_t n, wv__range_fn fn, void *ctx, struct wv__err *err);
/* memcpy through wv__par_run. */
void wv__memcpy_par(void *dst, const void *src, size_t n);

/* ---- error messages ---------------------------------------------------- */
/* An error context: a message buffer filled by the first failure. Handles
 * embed one; loads without a handle use a stack one. */
struct wv__err {
    int code;
    char msg[WV_ERRBUF_SIZE];
};
/* Record `code` and a printf-style message (first error wins unless the
 * context was reset). Returns `code`. */
int wv__seterr(struct wv__err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void wv__clearerr(struct wv__err *e);

/* Reject with a message unless `cond` holds. Needs a `struct wv__err *err`,
 * an `int rc` and an `out:` label in scope. */
#define WV_CHECK(cond, code, ...)                                         \
    do {                                                                  \
        if (!(cond)) {                                                    \
            rc = wv__seterr(err, (code), __VA_ARGS__);                    \
            goto out;                                                     \
        }                                                                 \
    } while (0)
#define WV_TRY(expr)                                                      \
    do {                                                                  \
        rc = (expr);                                                      \
        if (rc != WV_OK)                                                  \
            goto out;                                                     \
    } while (0)
/* Every parser rejection goes through here. */
#define WV_CORRUPT_BKPT(...) WV_CHECK(0, WV_CORRUPT, __VA_ARGS__)

/* ---- input sources ----------------------------------------------------- */
struct wv__expand; /* a load's amplification budget: formats (fmt.h) */
/* Bytes a reader parses: a mapped or caller-provided buffer, or a file read
 * with pread() when mapping is unwanted. */
struct wv__src {
    int fd;                   /* -1 for memory sources                   */
    uint64_t size;
    const unsigned char *map; /* whole input, or NULL in pread mode      */
    const char *name;         /* for messages                            */
    /* A remote object (s3://, https://) read with ranged requests
     * instead of the file descriptor, when set. */
    int (*remote_read)(void *ctx, uint64_t off, void *buf, size_t len,
                       struct wv__err *err);
    void *remote_ctx;
    /* Only these tensors are wanted (readers that can skip the others'
     * bytes do; the rest are dropped after the load). */
    const char *const *names;
    size_t n_names;
    /* The amplification budget of this load (fmt.h; NULL: unbounded, as
     * for the inner sources readers build over a member). */
    struct wv__expand *ex;
    /* Check every checksum now, even of bytes borrowed from a mapping
     * (WV_LOAD_CHECKSUMS). */
    bool check_sums;
};

/* Copy [off, off+len) into buf. WV_CORRUPT if the range passes the end. */
int wv__src_read(const struct wv__src *s, uint64_t off, void *buf, size_t len,
                 struct wv__err *err);
/* Tensor data at [off, off+len) of the source: borrowed from the mapping,
 * or read into an owned buffer (returned in *owned) in pread mode. */
int wv__src_data(const struct wv__src *s, uint64_t off, uint64_t len,
                 const unsigned char **data, void **owned,
                 struct wv__err *err);

/* ---- output files ------------------------------------------------------ */
/* A file written atomically: bytes go to a temporary sibling which is
 * renamed over the target by wv__wfile_commit(). Errors are sticky: after
 * the first failure every write is a no-op and commit reports it.
 *
 * A set of files (a model and its data files, shards or index) commits as
 * one: the side files opened with wv__wfile_side() belong to the main file;
 * wv__wfile_commit() of the main file first fsyncs every temporary (side
 * files may be sealed earlier, when finished, to bound the open
 * descriptors), and only when all are on disk renames the side files, the
 * main file last, then removes the stale files given to
 * wv__wfile_drop_after() and fsyncs the directory once. A failure before
 * that leaves every previous file as it was; aborting the main file
 * aborts its side files. */
struct wv__wfile {
    int fd;
    char *path;
    char *tmp_path;
    uint64_t off;
    uint64_t fd_off;  /* bytes handed to write() so far               */
    uint64_t kicked;  /* bytes whose writeback has been started       */
    unsigned char *buf;
    size_t buf_len;
    bool crc_on;
    uint32_t crc;
    int rc;
    struct wv__err *err;
    /* optional: told the bytes written so far past the first
     * progress_skip (a header the format sets), at most progress_total
     * (the tensor data: the rest of the file is headers) */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
    uint64_t progress_total, progress_skip;
    bool sealed; /* flushed, fsynced and closed; the temporary remains */
    struct wv__wfile **sides; /* committed before this one, in order */
    size_t n_sides, cap_sides;
    char **drops; /* removed once the set is committed */
    size_t n_drops, cap_drops;
    bool dry; /* wv__wfile_open_dry: counts the bytes, writes nothing */
};
int wv__wfile_open(struct wv__wfile *f, const char *path,
                   struct wv__err *err);
/* A file that only counts what is written to it (no file is created; the
 * bytes are dropped): a rehearsal of a save, to learn the order in which
 * a writer asks for its tensors. Released with wv__wfile_abort. */
int wv__wfile_open_dry(struct wv__wfile *f, const char *path,
                       struct wv__err *err);
void wv__wfile_write(struct wv__wfile *f, const void *p, size_t n);
void wv__wfile_zero(struct wv__wfile *f, size_t n);
int wv__wfile_commit(struct wv__wfile *f);
void wv__wfile_abort(struct wv__wfile *f);
/* fsync the directory holding `path` (so a file created or renamed there
 * survives a crash): 0 or an errno value (0 too on a filesystem that does
 * not sync directories). */
int wv__fsync_dir(const char *path);
/* Open a side file of `main` (same error context) in *out; it is owned by
 * main and committed or aborted with it. */
int wv__wfile_side(struct wv__wfile *main, const char *path,
                   struct wv__wfile **out);
/* Flush, fsync and close a finished file, its temporary kept for the
 * commit of its set: its status. */
int wv__wfile_seal(struct wv__wfile *f);
/* A file of the previous version to remove once main is committed (an
 * exact name the format would have written that the new set lacks). */
int wv__wfile_drop_after(struct wv__wfile *main, const char *path);
/* wv__wfile_drop_after() for every file of main's directory whose name
 * stale(name, arg) accepts (a directory that cannot be listed has none). */
int wv__wfile_drop_stale(struct wv__wfile *main,
                         bool (*stale)(const char *name, void *arg),
                         void *arg);

/* ---- hashing ----------------------------------------------------------- */
struct wv__sha256;
struct wv__sha256 *wv__sha256_new(void);
void wv__sha256_update(struct wv__sha256 *h, const void *p, size_t n);
void wv__sha256_final(struct wv__sha256 *h, unsigned char out[32]);
void wv__sha256_free(struct wv__sha256 *h);
/* One-shot SHA-256 of a buffer. */
void wv__sha256_buf(const void *p, size_t n, unsigned char out[32]);
/* SHA-1, only to check checksums other formats carry (ONNX external
 * data): the same shape as SHA-256's. */
struct wv__sha1;
struct wv__sha1 *wv__sha1_new(void);
void wv__sha1_update(struct wv__sha1 *h, const void *p, size_t n);
void wv__sha1_final(struct wv__sha1 *h, unsigned char out[20]);
void wv__sha1_free(struct wv__sha1 *h);
uint32_t wv__crc32(uint32_t crc, const void *p, size_t n);

/* ---- numbers in text --------------------------------------------------- */
/* Digits in `base` (10, or 16 in lower case) at *s, advancing *s past
 * them: no sign or space, all of 0 .. 2^64-1 and nothing beyond (num.c). */
bool wv__parse_u64(const char **s, int base, uint64_t *out);
/* A whole string: decimal with an optional K, M or G (powers of 1024),
 * which may be followed by "B" or "iB": "64M", "2GiB", "4096". */
bool wv__parse_size(const char *s, uint64_t *out);

/* ---- UTF-8 ------------------------------------------------------------ */
/* Length of the valid UTF-8 sequence at p, 0 if invalid. */
size_t wv__utf8_seq(const unsigned char *p, size_t avail);
bool wv__utf8_valid(const void *s, size_t n);
/* Why `name` (len bytes) may not name a container member that maps to a
 * path: empty, a leading '/', a '..' component, a backslash, a NUL or a
 * control character. NULL when it is fine. */
const char *wv__path_name_bad(const char *name, size_t len);
/* `name` for a message, escaped as wv_escape() does without quotes
 * (control characters, invalid UTF-8), truncated to fit `cap` (always
 * NUL-terminated). */
void wv__esc_name(const char *name, size_t len, char *out, size_t cap);

/* ---- growable byte buffer ---------------------------------------------- */
/* Appends never fail loudly: an allocation failure sets `oom`, later
 * appends are no-ops, and the owner checks `oom` once at the end. */
struct wv__buf {
    char *p;
    size_t len, cap;
    bool oom;
};
void wv__buf_add(struct wv__buf *b, const void *p, size_t n);
void wv__buf_addc(struct wv__buf *b, char c);
void wv__buf_adds(struct wv__buf *b, const char *s);
void wv__buf_addf(struct wv__buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void wv__buf_release(struct wv__buf *b);

/* ---- little-endian helpers --------------------------------------------- */
static inline uint16_t wv__le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t wv__le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}
static inline uint64_t wv__le64(const unsigned char *p)
{
    return (uint64_t)wv__le32(p) | ((uint64_t)wv__le32(p + 4) << 32);
}
static inline void wv__put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static inline void wv__put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}
static inline void wv__put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

#endif /* WV_CORE_H */
