/*
 * wv_int.h -- private declarations shared by the library's source files.
 *
 * Nothing here is part of the public contract. Internal non-static symbols
 * are spelled wv__name.
 */
#ifndef WV_INT_H
#define WV_INT_H

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
void wv__free(void *p); /* preserves errno */
char *wv__strdup(const char *s);
char *wv__strndup(const char *s, size_t n);
/* Test hook: the n-th allocation from now on fails (0 disables). */
void wv__alloc_fail_after(long n);

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
int wv__fault_sim(int id); /* 0, or the errno to fail with */
void wv__fault_arm(int id, int err);
#define WV__FAULT_SIM(id) wv__fault_sim(id)

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
    /* The amplification budget of this load (NULL: unbounded, as for the
     * inner sources readers build over a member). */
    struct wv__expand *ex;
    /* Check every checksum now, even of bytes borrowed from a mapping
     * (WV_LOAD_CHECKSUMS). */
    bool check_sums;
};

/* The amplification bound (WV_MAX_EXPAND_DEFAULT in weightvault.h): one
 * budget per loaded file, enforced only by wv__expand_charge() and
 * wv__expand_output() in fmt.c. `limit` is the file size times the factor
 * plus WV__EXPAND_SLACK; `used` the memory readers have charged so far. */
#define WV__EXPAND_SLACK ((uint64_t)1 << 20)
struct wv__expand {
    uint64_t limit, used, factor;
    const char *name; /* the file, for messages */
};
/* Charge `bytes` of memory a reader is about to allocate beyond the input
 * (`what`: the member or tensor, for the message). WV_RANGE once the total
 * passes the limit; a NULL budget accepts everything. */
int wv__expand_charge(struct wv__expand *ex, uint64_t bytes, const char *what,
                      struct wv__err *err);
/* A format whose input is several files (a TensorFlow bundle's data
 * shards) adds each further file's size to the input the bound scales. */
void wv__expand_add_input(struct wv__expand *ex, uint64_t size);
/* Open a further file of a multi-file input (TensorFlow data shards, TF.js
 * weight shards, ONNX external data) read-only: a regular file, mapped
 * into m's keep list when use_map (an empty one gets a non-NULL empty
 * map), its size added to the budget ex as input. *fd and *src describe
 * it (src->name is path, which must outlive src); the caller closes *fd.
 * Messages read "WHAT: ROLE PATH: reason". */
int wv__open_part(const char *what, const char *role, const char *path,
                  bool use_map, wv_model *m, struct wv__expand *ex, int *fd,
                  struct wv__src *src, struct wv__err *err);
/* Copy [off, off+len) into buf. WV_CORRUPT if the range passes the end. */
int wv__src_read(const struct wv__src *s, uint64_t off, void *buf, size_t len,
                 struct wv__err *err);

/* ---- the tensor set ---------------------------------------------------- */
struct wv_tensor {
    char *name;
    wv_dtype dtype;
    int ndim;
    uint64_t shape[WV_MAX_DIMS];
    const unsigned char *data;
    size_t nbytes;
    void *owned; /* wv__free()d with the set, or NULL if borrowed */
};

struct wv__meta {
    char *key;
    char *value;
};

enum wv__meta_state {
    WV__META_DEFAULT = 0, /* built in memory or read from a format without
                             metadata: writers may add their defaults    */
    WV__META_FROM_FILE,   /* read from a file that held metadata         */
    WV__META_NONE         /* read from a file of a format that has a
                             metadata field, which was absent            */
};

struct wv_model {
    struct wv_tensor *tensors;
    size_t n_tensors, cap_tensors;
    /* Open-addressing index name -> tensor position + 1 (0 = empty). */
    size_t *index;
    size_t index_cap;
    struct wv__meta *meta;
    size_t n_meta, cap_meta;
    enum wv__meta_state meta_state;
    /* Loaded with WV_LOAD_INDEX: tensors may have no data (NULL). */
    bool index_only;
    const char *source_format;
    /* Memory the tensors may borrow from, released with the set: file
     * mappings (munmap) and owned buffers (wv__free). */
    struct wv__region {
        void *p;
        size_t len;
        bool mapped;
    } *regions;
    size_t n_regions;
    struct wv__err err;
};

int wv__model_add(wv_model *m, const char *name, size_t name_len,
                  wv_dtype dt, int ndim, const uint64_t *shape,
                  const void *data, size_t len, void *owned,
                  struct wv__err *err);
/* Hand memory to the set: it is unmapped (mapped) or wv__free()d when the
 * set is freed. On failure the memory is released at once. */
int wv__model_keep(wv_model *m, void *p, size_t len, bool mapped);
/* Move every tensor, metadata entry absent from `dst` and region of `src`
 * into `dst`, then free `src`. WV_EXISTS (nothing moved, src still freed)
 * if a tensor name is in both. */
int wv__model_absorb(wv_model *dst, wv_model *src, struct wv__err *err);
/* wv_load_opts grew `names`; older callers pass a smaller struct. */
#define wv__load_opts_has_names(o) \
    ((o)->struct_size >= offsetof(wv_load_opts, n_names) + sizeof(size_t))
#define wv__load_opts_has_max_expand(o) \
    ((o)->struct_size >= offsetof(wv_load_opts, max_expand) + sizeof(uint64_t))
/* Keep only the tensors named (each must exist: WV_NOTFOUND naming the
 * first missing one, and nothing changes). */
int wv__model_select(wv_model *m, const char *const *names, size_t n,
                     struct wv__err *err);
/* Validate a shape against a dtype: computes element count and byte size
 * with overflow checks. */
int wv__shape_bytes(wv_dtype dt, int ndim, const uint64_t *shape,
                    uint64_t *numel, uint64_t *nbytes);
/* "[2, 3]" into buf. */
void wv__shape_str(int ndim, const uint64_t *shape, char *buf, size_t cap);

/* ---- dtypes and casts -------------------------------------------------- */
/* The dtype a tensor is written as under `cast` (WV_DTYPE_INVALID: keep). */
wv_dtype wv__cast_target(wv_dtype from, wv_dtype cast);
/* Convert n elements. Only pairs where wv__cast_target(from, to) == to. */
void wv__cast(wv_dtype from, const void *src, wv_dtype to, void *dst,
              size_t n);
/* Block-quantised ggml dtype (Q4_0, Q8_0, ...)? */
bool wv__dtype_is_block(wv_dtype dt);
/* Block types that wv__cast() can dequantise to F32, F16 and BF16. */
bool wv__dtype_dequantises(wv_dtype dt);
/* Bytes of `elems` elements of dt (elems a multiple of its block). */
uint64_t wv__dtype_span(wv_dtype dt, uint64_t elems);
/* Bytes tensor t takes when written as `to`. */
uint64_t wv__cast_nbytes(const struct wv_tensor *t, wv_dtype to);
/* Refuse (WV_UNSUPPORTED, naming `path` and the tensor) a set holding a
 * block-quantised tensor that `cast` does not dequantise: for writers of
 * formats without block types. */
int wv__check_plain_dtypes(const wv_model *m, wv_dtype cast,
                           const char *path, struct wv__err *err);
/* Reverse the byte order of n elements of `size` bytes in place. */
void wv__bswap(void *p, size_t n, size_t size);

/* ---- output files ------------------------------------------------------ */
/* A file written atomically: bytes go to a temporary sibling which is
 * renamed over the target by wv__wfile_commit(). Errors are sticky: after
 * the first failure every write is a no-op and commit reports it. */
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
    /* optional: told the bytes written so far, of about progress_total */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
    uint64_t progress_total;
};
int wv__wfile_open(struct wv__wfile *f, const char *path,
                   struct wv__err *err);
void wv__wfile_write(struct wv__wfile *f, const void *p, size_t n);
void wv__wfile_zero(struct wv__wfile *f, size_t n);
/* Feed a tensor's elements converted to `to` (C order, little-endian) to
 * `sink` in slices (no whole second copy); a false return from sink stops.
 * WV_NOMEM if the conversion buffer cannot be had. */
int wv__tensor_stream(const struct wv_tensor *t, wv_dtype to,
                      bool (*sink)(void *arg, const void *p, size_t n),
                      void *arg);
/* Write a tensor's elements converted to `to`, streaming in slices. */
void wv__wfile_tensor(struct wv__wfile *f, const struct wv_tensor *t,
                      wv_dtype to);
int wv__wfile_commit(struct wv__wfile *f);
void wv__wfile_abort(struct wv__wfile *f);

/* ---- formats ----------------------------------------------------------- */
struct wv__format_ops {
    wv_format id;
    const char *name;
    const char *ext; /* extensions, space-separated: ".pth .pt" */
    /* 1 if the source looks like this format. `head` holds its first n
     * bytes (n <= 64); container formats may look further into `src`. */
    int (*probe)(const struct wv__src *src, const unsigned char *head,
                 size_t n);
    int (*load)(const struct wv__src *src, unsigned flags, wv_model *m,
                struct wv__err *err);
    int (*save)(const wv_model *m, struct wv__wfile *f,
                const wv_save_opts *opts, struct wv__err *err);
};
const struct wv__format_ops *wv__format_get(wv_format id);

/* Open, map (unless WV_LOAD_PREAD) and load a file; with allow_index a
 * JSON shard index is followed. */
int wv__load_file(const char *path, const wv_load_opts *opts, wv_model **out,
                  struct wv__err *err, bool allow_index);
/* Detect the format (unless opts says it) and load a source; the set
 * keeps `map` (map_len bytes, unmapped with it) if given (fmt.c). */
int wv__load_src(const struct wv__src *src, const wv_load_opts *opts,
                 wv_model **out, struct wv__err *err, void *map,
                 size_t map_len);
/* s3://, http://, https:// (remote.c). */
bool wv__is_url(const char *path);
int wv__load_remote(const char *url, const wv_load_opts *opts,
                    wv_model **out, struct wv__err *err);
/* Sharded checkpoints (shard.c). */
bool wv__shard_is_index(const unsigned char *head, size_t n);
int wv__shard_load(const char *path, int fd, uint64_t size,
                   const wv_load_opts *opts, wv_model **out,
                   struct wv__err *err);
int wv__shard_save(wv_model *m, const char *path, wv_format fmt,
                   const wv_save_opts *opts, struct wv__err *err);

/* Tensor data at [off, off+len) of the source: borrowed from the mapping,
 * or read into an owned buffer (returned in *owned) in pread mode. */
int wv__src_data(const struct wv__src *s, uint64_t off, uint64_t len,
                 const unsigned char **data, void **owned,
                 struct wv__err *err);

extern const struct wv__format_ops wv__fmt_safetensors;
extern const struct wv__format_ops wv__fmt_npy;
extern const struct wv__format_ops wv__fmt_npz;
extern const struct wv__format_ops wv__fmt_pth;
extern const struct wv__format_ops wv__fmt_keras;
extern const struct wv__format_ops wv__fmt_mxnet;
extern const struct wv__format_ops wv__fmt_gguf;
extern const struct wv__format_ops wv__fmt_tfbundle;
extern const struct wv__format_ops wv__fmt_tfjs;
/* Parse a TF.js model.json or weights manifest in memory, shards untouched
 * (the fuzz harness): the number of weights (tfjs.c). */
int wv__tfjs_check_manifest(const void *buf, size_t n, size_t *n_weights,
                            struct wv__err *err);
/* The same, then its weights decoded from `data` as every group's shards
 * (the fuzz harness): how many tensors. */
int wv__tfjs_check_load(const void *json, size_t n, const void *data,
                        size_t dn, unsigned flags, size_t *n_tensors,
                        struct wv__err *err);
/* A TensorFlow bundle named another way than by its .index (a prefix, a
 * data file, a `checkpoint` state file, a SavedModel directory): the
 * .index path in *out (wv__malloc()ed), else NULL (tfbundle.c). */
int wv__tfbundle_resolve(const char *path, char **out, struct wv__err *err);
/* Parse and check a bundle index in memory, data files untouched (the
 * fuzz harness). */
int wv__tfbundle_check_index(const void *buf, size_t n, size_t *n_tensors,
                             struct wv__err *err);
/* The Keras names an object graph (TrackableObjectGraph) gives: how many
 * (the fuzz harness). */
int wv__tfbundle_check_graph(const void *g, size_t n, size_t *n_names,
                             struct wv__err *err);

extern const struct wv__format_ops wv__fmt_onnx;
/* Parse an ONNX model in memory (no external data): its tensor count (the
 * fuzz harness). */
int wv__onnx_check(const void *buf, size_t n, size_t *n_tensors,
                   struct wv__err *err);

/* ---- hashing ----------------------------------------------------------- */
struct wv__sha256;
struct wv__sha256 *wv__sha256_new(void);
void wv__sha256_update(struct wv__sha256 *h, const void *p, size_t n);
void wv__sha256_final(struct wv__sha256 *h, unsigned char out[32]);
void wv__sha256_free(struct wv__sha256 *h);
/* One-shot SHA-256 of a buffer. */
void wv__sha256_buf(const void *p, size_t n, unsigned char out[32]);
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
/* Metadata values from fields that may hold any bytes (TensorFlow string
 * tensors, TF.js string weights, ONNX attributes): the text when it is
 * UTF-8 without NUL not starting "base64:", else "base64:" and its RFC 4648
 * base64. wv__buf_add_unb64 decodes the base64 part (without the prefix):
 * -1 if it is not base64. */
int wv__buf_add_unb64(struct wv__buf *b, const char *s, size_t n);
/* One such value (the text, or "base64:..." when it is no text or
 * force_b64), as a JSON string when json. */
void wv__buf_add_meta_value(struct wv__buf *b, const void *p, size_t n,
                            bool json, bool force_b64);

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

/* JSON (src/json/json.h) */
#include "json.h"

#endif /* WV_INT_H */
