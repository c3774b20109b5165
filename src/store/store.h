/*
 * store.h -- the storage backend vtable, modelled on SQLite's VFS.
 *
 * A store is a flat namespace of keys ("packs/ab/abcd...", "refs/heads/main")
 * holding immutable objects, plus refs: the only mutable things, changed by
 * an atomic compare-and-swap. Everything above (the repository) is written
 * once against this interface; local disk, memory (tests), S3 and RADOS are
 * backends. The repository calls backends only through the wv__store_*
 * wrappers in store.c, which host the fault-injection points.
 *
 * Contract for backends:
 *  - get reads a byte range; reading past the end is WV_IO_SHORT_READ with
 *    *nread set to what was read. A missing key is WV_NOTFOUND.
 *  - put stores a whole object (putv, optional: given as pieces, in order,
 *    without gathering them first). It is durable when it returns unless
 *    WV_PUT_NOSYNC is given, in which case durability comes with the next
 *    WV_STORE_SYNC control call, or WV_PUT_EPHEMERAL (never). With WV_PUT_IF_ABSENT an existing key is
 *    left as it is and WV_OK returned (objects are content-addressed, so
 *    the existing one is the same). A reader never sees a partial object.
 *  - ref_cas atomically replaces the value of a ref if it equals `expect`
 *    (NULL: the ref must not exist); otherwise WV_CONFLICT. `desired` NULL
 *    deletes the ref.
 *  - list calls cb for every key under a prefix, in no particular order;
 *    a non-zero return from cb stops the listing and is returned.
 *  - get_fd, put_open and put_close (optional) move an object through a
 *    file instead of a buffer: put_open's file becomes the object only at
 *    put_close, as put would make it.
 *  - control ops a backend does not know return WV_NOTFOUND.
 */
#ifndef WV_STORE_H
#define WV_STORE_H

#include "core.h"

#include <errno.h>
#include <sys/uio.h>

#define WV_PUT_IF_ABSENT 1u
#define WV_PUT_NOSYNC 2u
/* The object need never be durable, not even at the next sync barrier:
 * it matters only while the process that wrote it runs (a lock object).
 * A backend whose puts are durable anyway ignores it. (Fault injection
 * treats it as a durable put: an injected fsync failure fails it.) */
#define WV_PUT_EPHEMERAL 4u

enum {
    WV_STORE_SYNC = 1,  /* make every NOSYNC put durable                */
    WV_STORE_MTIME = 2, /* arg: struct wv__store_mtime (seconds)        */
    WV_STORE_SWEEP = 3, /* arg: struct wv__store_sweep: remove the
                           backend's own leftovers (temporary files of
                           killed writers) older than min_age seconds   */
    WV_STORE_MAP = 4,   /* arg: struct wv__store_map: map an object
                           read-only into memory (local disk only; an
                           optimisation, callers fall back on get)      */
    WV_STORE_UNMAP = 5, /* arg: struct wv__store_map from WV_STORE_MAP  */
    WV_STORE_COUNT = 6, /* arg: struct wv__store_count: what the backend
                           counted itself (S3: HTTP requests, retries
                           included, and body bytes); WV_NOTFOUND when
                           it counts nothing: the wrappers' counts stand */
};
/* Requests made and bytes moved through a store handle. */
struct wv__store_count {
    uint64_t requests;
    uint64_t bytes_sent;     /* object and ref bytes written          */
    uint64_t bytes_received; /* object bytes read                     */
};
struct wv__store_map {
    const char *key;
    const unsigned char *p; /* out: the object's bytes            */
    size_t len;             /* out: its size                      */
};

/* A new object the caller writes through a file descriptor (put_open,
 * put_close). */
struct wv__store_wfile {
    const char *key;
    unsigned flags; /* WV_PUT_*: how put_close makes the object        */
    int fd;         /* out of put_open: write the bytes here (pwrite:
                       in any order); they may be read back (pread,
                       mmap) before put_close                          */
    void *priv;     /* the backend's                                   */
};

struct wv__store_sweep {
    int64_t min_age;  /* seconds since the leftover was last written  */
    uint64_t removed; /* out: how many were removed (where counted)   */
};

struct wv__store_mtime {
    const char *key;
    int64_t mtime;
};

struct wv__store;

struct wv__store_methods {
    int version; /* 3 (putv; get_fd, put_open, put_close) */
    void (*close)(struct wv__store *s);
    int (*get)(struct wv__store *s, const char *key, uint64_t off, void *buf,
               size_t len, size_t *nread);
    int (*put)(struct wv__store *s, const char *key, const void *buf,
               size_t len, unsigned flags);
    int (*stat)(struct wv__store *s, const char *key, uint64_t *size);
    int (*del)(struct wv__store *s, const char *key);
    int (*list)(struct wv__store *s, const char *prefix,
                int (*cb)(void *arg, const char *key, uint64_t size),
                void *arg);
    /* Read a ref's value (at most cap-1 bytes, NUL-terminated). */
    int (*ref_get)(struct wv__store *s, const char *ref, char *buf,
                   size_t cap);
    int (*ref_cas)(struct wv__store *s, const char *ref, const char *expect,
                   const char *desired);
    int (*control)(struct wv__store *s, int op, void *arg);
    /* NULL: the wrapper gathers the pieces into one buffer for put. */
    int (*putv)(struct wv__store *s, const char *key, const struct iovec *iov,
                size_t n_iov, unsigned flags);
    /* Streaming a copy from one store to another without a buffer (sync:
     * an S3 object goes from the socket into the file that becomes the
     * local object). Optional, NULL where a backend has no such path;
     * callers then get and put (wv__store_can_stream).
     * get_fd: as get, the bytes written at fd_off of file fd (pwrite). */
    int (*get_fd)(struct wv__store *s, const char *key, uint64_t off,
                  size_t len, int fd, uint64_t fd_off, size_t *nread);
    /* put_open: a new object w->key, written by the caller through w->fd
     * and invisible until put_close; with WV_PUT_IF_ABSENT and the key
     * there, *exists and nothing opened. put_close: with keep, the bytes
     * written become the object as a put with w->flags would make it
     * (durable, or at the next WV_STORE_SYNC); without, they are dropped.
     * It always releases what put_open took. */
    int (*put_open)(struct wv__store *s, struct wv__store_wfile *w,
                    bool *exists);
    int (*put_close)(struct wv__store *s, struct wv__store_wfile *w,
                     bool keep);
};

/* The base of every backend's store struct (embedded first). */
struct wv__store {
    const struct wv__store_methods *methods;
    struct wv__err *err; /* where backends record messages */
    const char *uri;
    /* Every wrapper call that reached the backend counts one request,
     * with the bytes it moved (atomically: a handle may serve several
     * threads). Zeroed by wv__store_open. */
    struct wv__store_count count;
};

struct wv__backend {
    const char *scheme; /* "file", "mem" */
    int (*open)(const char *uri, const char *rest, bool create,
                struct wv__err *err, struct wv__store **out);
};

/* Open the store for a URI: "file:///path", "mem://name", or a plain path
 * (local). `create` makes the location if missing. */
int wv__store_open(const char *uri, bool create, struct wv__err *err,
                   struct wv__store **out);
void wv__store_close(struct wv__store *s);
/* The requests and bytes of handle s so far: the backend's own counts
 * (WV_STORE_COUNT) if it keeps them, else the wrappers'. */
void wv__store_counts(struct wv__store *s, struct wv__store_count *out);

/* Wrappers: every call from the repository goes through these. */
int wv__store_get(struct wv__store *s, const char *key, uint64_t off,
                  void *buf, size_t len, size_t *nread);
/* Read a whole object into a wv__malloc()ed buffer (max bytes). */
int wv__store_get_all(struct wv__store *s, const char *key, size_t max,
                      unsigned char **out, size_t *len);
int wv__store_put(struct wv__store *s, const char *key, const void *buf,
                  size_t len, unsigned flags);
/* The same object given as n_iov pieces (a pack straight from the tensors
 * it holds): faults as put; WV_NOMEM if a backend without putv cannot get
 * the buffer to gather them into. */
int wv__store_putv(struct wv__store *s, const char *key,
                   const struct iovec *iov, size_t n_iov, unsigned flags);
/* Streaming (the backends' get_fd, put_open, put_close): can objects of
 * src go to dst through a file? get_fd faults and counts as get (a bit
 * flip lands in the file); put_open faults as any call and counts
 * nothing; put_close with keep faults and counts as a put of len bytes,
 * without keep it is a release (never fails). Without the backend's
 * method: WV_UNSUPPORTED. */
bool wv__store_can_stream(struct wv__store *src, struct wv__store *dst);
int wv__store_get_fd(struct wv__store *s, const char *key, uint64_t off,
                     size_t len, int fd, uint64_t fd_off, size_t *nread);
int wv__store_put_open(struct wv__store *s, struct wv__store_wfile *w,
                       bool *exists);
int wv__store_put_close(struct wv__store *s, struct wv__store_wfile *w,
                        uint64_t len, bool keep);
int wv__store_stat(struct wv__store *s, const char *key, uint64_t *size);
int wv__store_del(struct wv__store *s, const char *key);
int wv__store_list(struct wv__store *s, const char *prefix,
                   int (*cb)(void *arg, const char *key, uint64_t size),
                   void *arg);
int wv__store_ref_get(struct wv__store *s, const char *ref, char *buf,
                      size_t cap);
int wv__store_ref_cas(struct wv__store *s, const char *ref,
                      const char *expect, const char *desired);
int wv__store_control(struct wv__store *s, int op, void *arg);

/* Fault injection for tests (builds with WV_FAULT_INJECTION only): the
 * n-th store call from now (counting every wrapper call) fails with `code`
 * and the message of `errnum` (EIO, ENOSPC, ...) without reaching the
 * backend; n = 0 disables. */
#ifdef WV_FAULT_INJECTION
void wv__store_fail_after(long n, int code, int errnum);
#endif

/* Other kinds of fault (wv__store_fault). The fault is due at the n-th
 * wrapper call from now and fires at the first call, from that one on, it
 * applies to:
 *   WV__SFAULT_FAIL         any call: as wv__store_fail_after().
 *   WV__SFAULT_SHORT_WRITE  a put: the backend receives only the first half
 *                          of the bytes, then the call fails (WV_IO, with
 *                          the message of errnum). A backend without
 *                          atomic puts would keep such a torn object, so
 *                          the wrapper deletes the key after any put that
 *                          ended in a short write: WV_PUT_IF_ABSENT must
 *                          never find and trust it later.
 *   WV__SFAULT_FSYNC        a put or a sync barrier: a WV_PUT_NOSYNC put
 *                          goes through (unsynced) and the next
 *                          WV_STORE_SYNC fails naming it; a durable put
 *                          fails with nothing stored (as local.c leaves
 *                          none when its fsync fails); a sync fails.
 *   WV__SFAULT_BITFLIP      a get: the backend's bytes come back with one
 *                          bit flipped and WV_OK (silent corruption).
 * wv__store_fault_pending() is true while an armed fault has not fired;
 * n = 0 disarms. The state is global and thread-safe. */
enum {
    WV__SFAULT_FAIL = 0,
    WV__SFAULT_SHORT_WRITE,
    WV__SFAULT_FSYNC,
    WV__SFAULT_BITFLIP
};
/* What the wrappers ask of the fault state (store_fault.c): the kind of
 * fault to simulate on this call of kind op (WV__SOP_*), or -1 (the call
 * is counted towards an armed countdown); the code and errno an armed
 * fault fails with; an FSYNC fault that hit an unsynced put is noted, and
 * taken (its key, true) by the next sync barrier. */
enum { WV__SOP_GET, WV__SOP_PUT, WV__SOP_SYNC, WV__SOP_OTHER };
#ifdef WV_FAULT_INJECTION
void wv__store_fault(long n, int kind, int code, int errnum);
bool wv__store_fault_pending(void);
int wv__sfault_due(int op);
void wv__sfault_code(int *code, int *errnum);
void wv__sfault_sync_note(const char *key);
bool wv__sfault_sync_take(char *key, size_t cap);
#else
/* Built without fault injection: nothing is ever due, and the compiler
 * drops the wrappers' fault branches. */
static inline int wv__sfault_due(int op)
{
    (void)op;
    return -1;
}
static inline void wv__sfault_code(int *code, int *errnum)
{
    *code = WV_IO;
    *errnum = EIO;
}
static inline void wv__sfault_sync_note(const char *key)
{
    (void)key;
}
static inline bool wv__sfault_sync_take(char *key, size_t cap)
{
    (void)key;
    (void)cap;
    return false;
}
#endif

extern const struct wv__backend wv__backend_file;
extern const struct wv__backend wv__backend_mem;
extern const struct wv__backend wv__backend_rados;
extern const struct wv__backend wv__backend_s3;

#endif
