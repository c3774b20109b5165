/*
 * weightvault.h -- the public contract of libweightvault.
 *
 * Everything a program (the `wv` command, the Python binding, your code)
 * may rely on is declared here; anything else in the source tree is private
 * and may change between releases.
 *
 * Conventions, which hold for every function below:
 *  - The status is the return value: WV_OK (0) or a code from WV_ERRNO_MAP.
 *    Results go into out-parameters, which are set to NULL or zero when the
 *    call fails.
 *  - A `const char *` or `const wv_tensor *` handed back is BORROWED: it stays
 *    valid until the handle it came from is freed or changed.
 *  - Memory the library allocates for the caller is released with wv_free().
 *  - Option structs begin with `struct_size`; initialise them with the
 *    matching *_INIT macro. Passing NULL means "all defaults".
 *  - Destructors accept NULL.
 *
 * Threads. The library starts threads of its own (repository workers,
 * transfers, asynchronous commits) and may be called from any number of
 * threads, on these terms:
 *  - Calls on different handles, or with no handle (wv_model_load,
 *    wv_repo_open, wv_repo_sync, wv_keygen, ...), may run at the same time
 *    on any threads, in every format: the readers and writers keep no
 *    state outside the handle they work on. Keras HDF5 loads and saves
 *    take one process-wide lock (libhdf5, a thread-safe build, serialises
 *    its calls anyway), so they do not run in parallel with each other.
 *  - A handle shared between threads: see the line at each handle type.
 *    In short, a wv_repo may be shared (its calls take turns), a wv_model
 *    only for functions taking a const wv_model * and wv_repo_commit, and
 *    the result handles (wv_checkpoint, wv_diff, wv_commit_handle) for
 *    reading.
 *  - The message of a failed call (wv_model_errmsg, wv_repo_errmsg) is
 *    the handle's last one: read it on the thread that made the call,
 *    before another thread uses the handle. The errbuf of an options
 *    struct belongs to its call alone.
 *  - Process-wide settings are not synchronised: call wv_set_allocator
 *    before any other function and never while another thread is in the
 *    library, and do not change the WV_* environment variables
 *    (WV_ALLOW_ROLLBACK, WV_SANDBOX, ...) while another thread is in it;
 *    they are read at each call.
 *  - A Keras HDF5 load first parses the file in a forked child process
 *    (WV_SANDBOX=0 skips that). An allocator hook that takes a lock, or a
 *    program that calls libhdf5 itself on other threads, can leave that
 *    child waiting on a lock another thread held at the fork, until the
 *    child's time limit; set WV_SANDBOX=0 in such a program.
 */
#ifndef WEIGHTVAULT_H
#define WEIGHTVAULT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(WV_BUILDING_LIBRARY)
#define WV_API __attribute__((visibility("default")))
#else
#define WV_API
#endif

#define WV_VERSION_MAJOR 0
#define WV_VERSION_MINOR 1
#define WV_VERSION_PATCH 0
#define WV_VERSION_STRING "0.1.0"
#define WV_VERSION_NUMBER \
    (WV_VERSION_MAJOR * 10000 + WV_VERSION_MINOR * 100 + WV_VERSION_PATCH)

/* Version of the library actually linked, to compare with the header's. */
WV_API int wv_version_number(void);
WV_API const char *wv_version_string(void);

/* ------------------------------------------------------------------------
 * Status codes. Never renumbered or removed; new codes are appended.
 * Extended codes may carry detail in bits 8 and up: wv_primary() masks it.
 */
#define WV_ERRNO_MAP(XX)                                              \
    XX(OK, 0, "success")                                              \
    XX(ERROR, 1, "generic error")                                     \
    XX(NOMEM, 2, "out of memory")                                     \
    XX(IO, 3, "I/O error")                                            \
    XX(CORRUPT, 4, "data is malformed or fails its checksum")         \
    XX(FORMAT, 5, "unsupported file format or version")               \
    XX(NOTFOUND, 6, "object, ref or tensor not found")                \
    XX(EXISTS, 7, "already exists")                                   \
    XX(CONFLICT, 8, "concurrent update (ref changed)")                \
    XX(AUTH, 9, "authentication or decryption failed")                \
    XX(RANGE, 10, "value out of range / too large")                   \
    XX(MISUSE, 11, "library used incorrectly")                        \
    XX(BACKEND, 12, "remote backend error")                           \
    XX(UNSUPPORTED, 13, "feature not built in or not supported")       \
    XX(BUSY, 14, "operation still in progress")

enum {
#define WV__ERR_ENUM(name, val, msg) WV_##name = val,
    WV_ERRNO_MAP(WV__ERR_ENUM)
#undef WV__ERR_ENUM
    WV__ERR_LAST
};

/* Extended codes. */
#define WV_IO_SHORT_READ (WV_IO | (1 << 8))
#define WV_CORRUPT_CHECKSUM (WV_CORRUPT | (1 << 8))
/* An encrypted repository was opened without a passphrase or key file;
 * with a secret that none of its key slots accepts ("wrong key"); a
 * checkpoint's signature is missing, foreign or does not verify. */
#define WV_AUTH_NO_KEY (WV_AUTH | (1 << 8))
#define WV_AUTH_WRONG_KEY (WV_AUTH | (2 << 8))
#define WV_AUTH_SIGNATURE (WV_AUTH | (3 << 8))
#define WV_AUTH_ROLLBACK (WV_AUTH | (4 << 8)) /* an older sealed ref or
                                                 trust list than seen */

/* Static English description of a status code ("unknown error" if none). */
WV_API const char *wv_strerror(int code);
/* The primary code of an extended code. */
WV_API int wv_primary(int code);

/* Escape text that came from a file or repository (names, keys, metadata,
 * messages) for printing: C0 controls and DEL, the C1 controls U+0080..
 * U+009F and bytes that are not valid UTF-8 become \n, \t, ... or \xNN;
 * printable UTF-8 is kept. With WV_ESCAPE_QUOTE, a string with anything
 * escaped (or starting with '"') is also put in double quotes with its '"'
 * and '\' escaped, as git quotes paths. Writes at most cap bytes with the
 * NUL, never part of an escape, and returns the length the whole result
 * needs (as snprintf); n is src's length in bytes. Error messages of the
 * library are already escaped this way (without quotes). */
#define WV_ESCAPE_QUOTE 1u
WV_API size_t wv_escape(char *dst, size_t cap, const char *src, size_t n,
                        unsigned flags);

/* Size of the optional error buffers passed in option structs. */
#define WV_ERRBUF_SIZE 256

/* ------------------------------------------------------------------------
 * Memory.
 */
typedef struct wv_allocator {
    void *(*alloc)(void *opaque, size_t size);
    void *(*realloc)(void *opaque, void *ptr, size_t size);
    void (*free)(void *opaque, void *ptr);
    void *opaque;
} wv_allocator;

/* Replace the allocator used for everything the library allocates. Call it
 * before any other function; NULL restores malloc/realloc/free. Not
 * thread-safe: no other thread may be in the library meanwhile. The hooks
 * themselves are called from any thread of the library (and in the Keras
 * sandbox child), so they must be thread-safe. */
WV_API int wv_set_allocator(const wv_allocator *a);
/* Allocate and release memory through the library's allocator. Buffers
 * handed to wv_model_add() with WV_DATA_TAKE must come from wv_malloc(). */
WV_API void *wv_malloc(size_t size);
WV_API void wv_free(void *ptr);

/* ------------------------------------------------------------------------
 * Element types, spelled as safetensors spells them.
 */
typedef enum wv_dtype {
    WV_DTYPE_INVALID = 0,
    WV_BOOL,
    WV_U8,
    WV_I8,
    WV_U16,
    WV_I16,
    WV_U32,
    WV_I32,
    WV_U64,
    WV_I64,
    WV_F16,
    WV_BF16,
    WV_F32,
    WV_F64,
    WV_C64,
    WV_F8_E4M3,
    WV_F8_E5M2,
    /* ggml block-quantised types (GGUF), carried as opaque blocks: a
     * tensor's innermost dimension is a multiple of the block's element
     * count, and its bytes are numel / block_elems * block_bytes.
     * wv_dtype_block() gives both numbers. */
    WV_Q4_0,    /* 32 elems, 18 bytes  */
    WV_Q4_1,    /* 32, 20   */
    WV_Q5_0,    /* 32, 22   */
    WV_Q5_1,    /* 32, 24   */
    WV_Q8_0,    /* 32, 34   */
    WV_Q8_1,    /* 32, 36   */
    WV_Q2_K,    /* 256, 84  */
    WV_Q3_K,    /* 256, 110 */
    WV_Q4_K,    /* 256, 144 */
    WV_Q5_K,    /* 256, 176 */
    WV_Q6_K,    /* 256, 210 */
    WV_Q8_K,    /* 256, 292 */
    WV_IQ2_XXS, /* 256, 66  */
    WV_IQ2_XS,  /* 256, 74  */
    WV_IQ3_XXS, /* 256, 98  */
    WV_IQ1_S,   /* 256, 50  */
    WV_IQ4_NL,  /* 32, 18   */
    WV_IQ3_S,   /* 256, 110 */
    WV_IQ2_S,   /* 256, 82  */
    WV_IQ4_XS,  /* 256, 136 */
    WV_IQ1_M,   /* 256, 56  */
    WV_TQ1_0,   /* 256, 54  */
    WV_TQ2_0,   /* 256, 66  */
    WV_MXFP4,   /* 32, 17   */
    WV__DTYPE_COUNT
} wv_dtype;

/* "F32", "BF16", ...; NULL for an invalid dtype. */
WV_API const char *wv_dtype_name(wv_dtype dt);
/* Parse a dtype name (exact, upper case). WV_NOTFOUND if unknown. */
WV_API int wv_dtype_from_name(const char *name, wv_dtype *out);
/* Parse a dtype as people type it, ignoring case: the names above and the
 * usual aliases (f16, fp16, half, float16, bf16, bfloat16, f32, fp32,
 * float, float32, f64, double, float64, i8/int8, u8/uint8, i16/int16,
 * i32/int32, i64/int64, u16 ... u64/uint64, bool). WV_NOTFOUND if none.
 * For names typed by a user; file formats use wv_dtype_from_name. */
WV_API int wv_dtype_parse(const char *name, wv_dtype *out);
/* Bytes per element; 0 for an invalid dtype and for block-quantised types
 * (Q4_0, Q8_0, the K-quants, ...), whose elements have no byte size of
 * their own: use wv_dtype_block() for those. */
WV_API size_t wv_dtype_size(wv_dtype dt);
/* Elements and bytes of one storage block: (1, size) for plain dtypes,
 * (32, 34) for Q8_0, (256, 210) for Q6_K, ... WV_MISUSE (and 0, 0) for an
 * invalid dtype. A dtype is block-quantised when *elems > 1. */
WV_API int wv_dtype_block(wv_dtype dt, size_t *elems, size_t *bytes);
/* Non-zero for F16, BF16, F32, F64, F8_E4M3 and F8_E5M2. */
WV_API int wv_dtype_is_float(wv_dtype dt);

/* ------------------------------------------------------------------------
 * File formats. Reading detects the format from the content; writing takes
 * it from the options or, failing that, from the file name's extension.
 */
typedef enum wv_format {
    WV_FMT_AUTO = 0,
    WV_FMT_SAFETENSORS,
    WV_FMT_NPY,
    WV_FMT_NPZ,
    WV_FMT_PTH,    /* PyTorch torch.save: zip (1.6+) and legacy pickle   */
    WV_FMT_KERAS,  /* Keras HDF5 (.h5, .weights.h5) and .keras zips      */
    WV_FMT_MXNET,  /* MXNet NDArray list (.params)                        */
    WV_FMT_GGUF,   /* GGUF v2/v3 (llama.cpp)                              */
    WV_FMT_TFBUNDLE, /* TensorFlow checkpoint (.index + .data-*)          */
    WV_FMT_TFJS,   /* TensorFlow.js model.json / weights manifest + .bin
                      shards (written as a directory: wv_model_save)      */
    WV_FMT_ONNX,   /* ONNX model (.onnx): its initializers; written over a
                      template model (wv_save_opts.template_path)     */
    WV__FMT_COUNT
} wv_format;

/* "safetensors", "npy", "npz"; NULL for WV_FMT_AUTO or unknown values. */
WV_API const char *wv_format_name(wv_format fmt);
/* Parse a format name; WV_NOTFOUND if unknown. */
WV_API int wv_format_from_name(const char *name, wv_format *out);
/* The format a path's extension names (".safetensors", ".npy", ".npz");
 * WV_NOTFOUND if the extension names none. */
WV_API int wv_format_from_path(const char *path, wv_format *out);
/* The format wv_model_save() writes to `path` when asked for WV_FMT_AUTO:
 * WV_FMT_TFJS (DIR/model.json and its shards) for a path that ends in '/'
 * or names an existing directory, else the extension's as above. */
WV_API int wv_format_for_save(const char *path, wv_format *out);

/* ------------------------------------------------------------------------
 * The tensor set: named tensors plus ordered string metadata.
 *
 * A tensor has a UTF-8 name (unique in its set), a dtype, a shape of at most
 * WV_MAX_DIMS dimensions (0 dimensions is a scalar; a 0 extent is an empty
 * tensor) and its elements in C order, little-endian. The bytes are either
 * borrowed (a file mapping, caller memory) or owned by the set.
 */
#define WV_MAX_DIMS 8

/* Threads: a wv_model (and its wv_tensors) may be read by several threads
 * at once through the functions taking a const wv_model * or const
 * wv_tensor * (and wv_repo_commit, which reads it); every other call on it
 * (wv_model_add, wv_model_set_meta, wv_model_save, which records its
 * error in the set, wv_model_free) needs it to itself. */
typedef struct wv_model wv_model;
typedef struct wv_tensor wv_tensor;

/* Create an empty tensor set. WV_NOMEM on failure. */
WV_API int wv_model_new(wv_model **out);
/* Free a set and everything it owns; unmaps files it mapped. */
WV_API void wv_model_free(wv_model *m);
/* Message of the last failed call on `m` ("" if none). Borrowed. */
WV_API const char *wv_model_errmsg(const wv_model *m);
/* Format the set was read from, or NULL if it was built in memory. */
WV_API const char *wv_model_source_format(const wv_model *m);

/* How wv_model_add() treats `data`. */
#define WV_DATA_COPY 0u   /* copy the bytes now                           */
#define WV_DATA_BORROW 1u /* keep the pointer; caller keeps it alive until
                             the set is freed                             */
#define WV_DATA_TAKE 2u   /* take ownership of a wv_malloc()ed buffer,
                             also when the call fails                     */

/* Add a tensor. `len` must equal the product of `shape` times the dtype
 * size (for block types: the product / block elements * block bytes, with
 * the innermost extent a multiple of the block elements). Returns WV_EXISTS for a duplicate name, WV_RANGE for a bad shape or
 * length, WV_MISUSE for a bad dtype, name or flag. */
WV_API int wv_model_add(wv_model *m, const char *name, wv_dtype dt, int ndim,
                        const uint64_t *shape, const void *data, size_t len,
                        unsigned flags);

/* Number of tensors; tensor i in set order (the file's order on load). */
WV_API size_t wv_model_count(const wv_model *m);
WV_API const wv_tensor *wv_model_tensor(const wv_model *m, size_t i);
/* Tensor by name, or NULL. */
WV_API const wv_tensor *wv_model_find(const wv_model *m, const char *name);

/* Set (or replace) a metadata entry; keys keep their first insertion order. */
WV_API int wv_model_set_meta(wv_model *m, const char *key, const char *value);
/* Value of a metadata key, or NULL. Borrowed. */
WV_API const char *wv_model_get_meta(const wv_model *m, const char *key);
WV_API size_t wv_model_meta_count(const wv_model *m);
/* Entry i of the metadata (borrowed strings). WV_RANGE if i is too big. */
WV_API int wv_model_meta(const wv_model *m, size_t i, const char **key,
                         const char **value);

/* Tensor accessors. Strings and arrays are borrowed from the set. */
WV_API const char *wv_tensor_name(const wv_tensor *t);
WV_API wv_dtype wv_tensor_dtype(const wv_tensor *t);
WV_API int wv_tensor_ndim(const wv_tensor *t);
WV_API const uint64_t *wv_tensor_shape(const wv_tensor *t);
WV_API uint64_t wv_tensor_numel(const wv_tensor *t);
WV_API size_t wv_tensor_nbytes(const wv_tensor *t);
/* Zero-copy view of the elements (C order, little-endian). The pointer
 * lives as long as the set; it is not necessarily aligned to the dtype. */
WV_API const void *wv_tensor_data(const wv_tensor *t);
/* Copy `len` bytes starting at byte `off` of the tensor into `buf`.
 * WV_RANGE if the range lies outside the tensor. */
WV_API int wv_tensor_read(const wv_tensor *t, size_t off, void *buf,
                          size_t len);
/* SHA-256 of the elements in C order, little-endian. */
WV_API int wv_tensor_sha256(const wv_tensor *t, unsigned char out[32]);
/* ---- Regions of a global tensor (sharded training) --------------------
 * A tensor of a set may be a region of a larger global tensor: global
 * shape and, per dimension, the offset of this part; the tensor's own
 * shape gives the extents. Whole tensors have no region. A commit stores a
 * region as it is; wv_repo_commit_part() records it so that the finished
 * checkpoint holds the global tensor (block-quantised dtypes cannot be
 * regions: WV_MISUSE). */
WV_API int wv_model_set_region(wv_model *m, const char *name,
                               const uint64_t *global_shape,
                               const uint64_t *offset);
  /* ndim = the tensor's ndim. WV_NOTFOUND unknown name, WV_RANGE when
     offset+shape exceeds global_shape in some dimension (message names it). */
WV_API int wv_tensor_region(const wv_tensor *t, const uint64_t **global_shape,
                            const uint64_t **offset);
  /* 1 and borrowed arrays (ndim each) if t is a region; 0 if whole. */

/* Copy every tensor into memory the caller already has, on every core:
 * dst[i] receives the wv_tensor_nbytes() bytes of wv_model_tensor(m, i);
 * a NULL dst[i] skips that tensor. n_dst must equal wv_model_count(m)
 * (WV_MISUSE otherwise). With a set loaded by mmap (the default) this is
 * the fastest way to fill existing buffers (a model's parameters, pinned
 * staging memory): one copy, no allocation. */
WV_API int wv_model_read_all(const wv_model *m, void *const *dst,
                             size_t n_dst);

/* ------------------------------------------------------------------------
 * Reading and writing files.
 */
#define WV_LOAD_MMAP 0u  /* default: map the file, tensors borrow from it */
#define WV_LOAD_PREAD 1u /* read the data into owned memory with large
                            pread() calls (network filesystems)          */
#define WV_LOAD_KERAS_NAMES 4u /* TensorFlow checkpoints: name tensors as
                            a Keras .h5 of the model does ("dense/dense/
                            kernel:0", optimizer state "optimizer/...")
                            instead of by their checkpoint keys       */
/* Checksums. Every checksum a format carries (zip CRC-32 of .npz, .pth and
 * .keras members; HDF5 Fletcher-32 filters) is checked before the bytes are
 * used, with one exception: a zero-copy WV_LOAD_MMAP load of a stored
 * (uncompressed) zip member borrows the member's bytes from the mapping
 * without reading them, so its CRC-32 is NOT checked unless this flag is
 * given. WV_LOAD_PREAD loads, deflated members and HDF5 filters are always
 * checked. `wv inspect --json`, `wv convert`, `wv commit` and `wv verify`
 * always pass it (plain `wv inspect` lists with WV_LOAD_INDEX and reads
 * no member data). A mismatch is WV_CORRUPT_CHECKSUM naming the file, the member
 * and the tensor. */
#define WV_LOAD_CHECKSUMS 2u

/* Amplification bound. The bytes of all tensors a load produces (what a
 * save writes; tensors sharing one storage are held once in memory but
 * each counts as the bytes it writes) and the memory a reader allocates
 * beyond the input (inflated members, gathered or decoded tensors, pickle
 * objects) are each at most max_expand times the file's size plus 1 MiB.
 * 0 takes the environment variable WV_MAX_EXPAND (a positive integer), or
 * else WV_MAX_EXPAND_DEFAULT. Exceeding it is WV_RANGE naming the file and
 * what would exceed it. */
#define WV_MAX_EXPAND_DEFAULT 64u

/* Only the index: names, dtypes, shapes, sizes and metadata, without the
 * tensor data, for listing a file. safetensors, pth, GGUF and npy files
 * skip their data (a remote one is read with a few ranged requests: the
 * header, or the zip directory and data.pkl); other formats are read in
 * full. The set's tensors may then have no data (wv_tensor_data NULL):
 * wv_tensor_read, wv_tensor_sha256, wv_model_read_all, saving and
 * committing it return WV_MISUSE. */
#define WV_LOAD_INDEX 8u
#define WV_LOAD_TFJS_QUANTIZED 16u /* TF.js: keep uint8/uint16/float16
                            quantized weights as U8/U16/F16 (metadata
                            "tfjs.quantization.NAME" holds scale and min)
                            instead of dequantising them as tfjs does  */
#define WV_LOAD_OBJECTS 32u /* .pth: read whole-model and other object
                            pickles (torch.save(model)): classes the reader
                            does not know become inert placeholders (never
                            imported or called) and the tensors are taken
                            from their state -- a module's by the names of
                            its state_dict(); scalars become metadata.
                            Without it such files are refused.          */

typedef struct wv_load_opts {
    uint32_t struct_size;
    unsigned flags;    /* WV_LOAD_*                                       */
    wv_format format;  /* WV_FMT_AUTO: detect from the content            */
    char *errbuf;      /* optional: message when the load fails           */
    size_t errbuf_size;
    /* Only these tensors (NULL: all). Each must exist (WV_NOTFOUND).
     * From a remote safetensors file only their bytes are fetched. */
    const char *const *names;
    size_t n_names;
    uint64_t max_expand; /* see WV_MAX_EXPAND_DEFAULT; 0: the default     */
} wv_load_opts;
#define WV_LOAD_OPTS_INIT {sizeof(wv_load_opts), WV_LOAD_MMAP, WV_FMT_AUTO, NULL, 0, NULL, 0, 0}

/* Read a file into a new tensor set. `path` may also be a URL:
 * s3://BUCKET/KEY (signed with the AWS credentials of the environment) or
 * http(s)://HOST/PATH, read with ranged GETs (a safetensors file's header
 * first, then only the tensors wanted; other formats are fetched whole
 * into memory). `path` may also be a Hugging Face
 * shard index (model.safetensors.index.json, pytorch_model.bin.index.json):
 * the shards it names, in its directory, are read as one set, and the
 * index and the shards must agree tensor for tensor.
 * Every length, offset and shape is
 * validated before use; a rejection returns WV_CORRUPT (malformed) or
 * WV_FORMAT (not a known format, or a feature of it we refuse, such as
 * pickled object arrays) with a message naming the tensor and the rule. */
WV_API int wv_model_load(const char *path, const wv_load_opts *opts,
                         wv_model **out);
/* The same from memory. The set borrows `buf`, which must outlive it. */
WV_API int wv_model_load_mem(const void *buf, size_t len,
                             const wv_load_opts *opts, wv_model **out);

typedef struct wv_save_opts {
    uint32_t struct_size;
    wv_format format; /* WV_FMT_AUTO: from the path's extension          */
    wv_dtype cast;    /* WV_DTYPE_INVALID: keep dtypes; F32, F16 or BF16:
                         convert every floating-point tensor to it, and
                         dequantise Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
                         Q2_K to Q8_K, IQ4_NL, IQ4_XS and MXFP4;
                         other block types are refused by every format
                         but GGUF, which keeps them as they are          */
    unsigned flags;   /* WV_SAVE_*                                        */
    uint64_t shard_size; /* 0: one file. Otherwise split into shards of at
                         most this many bytes of tensor data (a larger
                         tensor gets a shard of its own), named as Hugging
                         Face does: model.safetensors gives
                         model-00001-of-00003.safetensors, ... and the
                         index model.safetensors.index.json. A set that
                         fits in one shard is written as one plain file */
    /* Optional: called from the saving thread as the file is written,
     * with the bytes written so far, never more than total: the tensor
     * data (casts applied). safetensors counts its tensor data alone and
     * ends at total; other formats count their headers too (done reaches
     * total a little before the end), a compressed npz may end below it.
     * Not called for a sharded save. */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
    /* ONNX output: the model (.onnx path) whose initializers are replaced
     * by the set's tensors of the same names, everything else of it kept
     * (required: ONNX is written only this way; see the onnx format notes
     * in wv convert --help). Keras output (.h5, .weights.h5; optional): a
     * Keras .h5, .weights.h5 or .keras file whose layout and metadata the
     * file gets, filled with the set's tensors by name (the template's
     * tensor names) or else by order and shape; WV_FORMAT naming the
     * first tensor that does not fit (see wv convert --help). Ignored by
     * the other formats. */
    const char *template_path;
} wv_save_opts;
#define WV_SAVE_OPTS_INIT \
    {sizeof(wv_save_opts), WV_FMT_AUTO, WV_DTYPE_INVALID, 0, 0, NULL, NULL, \
     NULL}

#define WV_SAVE_COMPRESS 1u /* npz: deflate the members                   */
#define WV_SAVE_NEST 2u     /* pth: rebuild the dict tree from dotted names */

/* Write the set to `path` durably and atomically: the bytes go to a
 * temporary file in the same directory, which is fsynced and renamed over
 * `path`, and the directory is fsynced. On failure `path` is untouched.
 * Narrowing casts round to nearest even; NaN, infinities and subnormals
 * follow IEEE 754. Messages go to wv_model_errmsg(m).
 * TF.js (format WV_FMT_TFJS or WV_FMT_AUTO) is a directory of files: a
 * `path` that ends in '/' or names a directory means DIR/model.json, with
 * its .bin shards beside it; the directory is made if missing (one level:
 * its parent must exist), also for an explicit DIR/model.json. */
WV_API int wv_model_save(wv_model *m, const char *path,
                         const wv_save_opts *opts);


/* ------------------------------------------------------------------------
 * Checkpoint repositories: versioned, deduplicated, atomic (see
 * docs/repo-format.md). A URI is a directory path, "file:///path", or
 * "mem://name" (in-process, for tests).
 */
/* Threads: a wv_repo may be shared by any number of threads. Its calls
 * take turns on a mutex of the handle (after waiting for the asynchronous
 * commits started before them), except wv_repo_commit_async and
 * wv_repo_commit_part_async, which only queue; wv_repo_errmsg reads the
 * message of the handle's last call, whichever thread made it. Several
 * handles, threads or processes may work on one repository at once (refs
 * move by compare-and-swap; gc and prune take its lock). wv_repo_close
 * needs the handle to itself. */
typedef struct wv_repo wv_repo;

/* A checkpoint id: 64 lowercase hex digits and a NUL. */
#define WV_ID_HEX 65

typedef struct wv_init_opts {
    uint32_t struct_size;
    const char *compression; /* "none", "zstd", "zstd-bg" (byte-grouped
                                zstd for floats; the default)            */
    int level;               /* zstd level, 1..19 (default 1)            */
    uint64_t chunk_size;     /* default 4 MiB                            */
    uint64_t pack_size;      /* default 32 MiB                           */
    char *errbuf;
    size_t errbuf_size;
    /* Encryption (docs/repo-format.md section 14). With `encrypt`, a
     * random repository key encrypts everything but the format version;
     * it is stored wrapped by the secret given here: `passphrase`, else
     * `key_file` (a raw key written by wv_secret_keygen(), or a file
     * holding a passphrase), else $WV_PASSPHRASE, else the file named by
     * $WV_KEY_FILE (WV_AUTH_NO_KEY if none). More secrets can be added
     * later (wv_repo_key_add). */
    int encrypt;
    const char *passphrase;
    const char *key_file;
    const char *key_label; /* a name for that key slot (default "first") */
    /* Delta chunks, EXPERIMENTAL and off by default (docs/repo-format.md
     * "Delta chunks"; they make stores smaller but commits and checkouts
     * slower, see the README's benchmarks): a changed chunk
     * of a tensor the parent checkpoint has is stored as its difference
     * to that chunk's keyframe (the same chunk as last stored whole) when
     * that is smaller, and whole at least every `delta_keyframe` commits
     * of a branch, so a checkout reads one base per chunk. 0 (the default) or 1: no deltas (the
     * repository stays readable by builds before deltas, version 1/2);
     * K = 2..65: deltas (4 is a good start). Needs compression (none: no
     * deltas). */
    int delta_keyframe;
} wv_init_opts;
#define WV_INIT_OPTS_INIT \
    {sizeof(wv_init_opts), "zstd-bg", 1, (uint64_t)4 << 20, \
     (uint64_t)32 << 20, NULL, 0, 0, NULL, NULL, NULL, 0}

/* Create a repository at `uri` (the directory is made if missing).
 * WV_EXISTS if one is there already. */
WV_API int wv_repo_init(const char *uri, const wv_init_opts *opts);
/* Open an existing repository. On failure the message goes to errbuf.
 * An encrypted repository is opened with $WV_PASSPHRASE or the key file
 * named by $WV_KEY_FILE (see wv_repo_open_ex). */
WV_API int wv_repo_open(const char *uri, char *errbuf, size_t errbuf_size,
                        wv_repo **out);

typedef struct wv_open_opts {
    uint32_t struct_size;
    const char *passphrase; /* for an encrypted repository: a passphrase, */
    const char *key_file;   /* or a key file (raw key or passphrase);
                               neither: $WV_PASSPHRASE, then $WV_KEY_FILE */
    char *errbuf;
    size_t errbuf_size;
} wv_open_opts;
#define WV_OPEN_OPTS_INIT {sizeof(wv_open_opts), NULL, NULL, NULL, 0}

/* wv_repo_open with options. For an encrypted repository without any
 * secret: WV_AUTH_NO_KEY; with a secret no key slot accepts:
 * WV_AUTH_WRONG_KEY and a message saying "wrong key". Plain repositories
 * ignore the secret. */
WV_API int wv_repo_open_ex(const char *uri, const wv_open_opts *opts,
                           wv_repo **out);
WV_API void wv_repo_close(wv_repo *r);
/* Message of the last failed call on `r`. Borrowed. */
WV_API const char *wv_repo_errmsg(const wv_repo *r);

typedef struct wv_commit_opts {
    uint32_t struct_size;
    const char *message;
    int max_retries; /* when another writer moved the branch meanwhile,
                        re-parent onto its new head and try again this
                        many times (the data is not written again); 0:
                        report WV_CONFLICT at once                       */
    uint64_t staging_bytes; /* wv_repo_commit_async() with WV_ASYNC_COPY:
                        the most bytes the staged copies of the pending
                        asynchronous commits of a repository hold
                        together; the call blocks while they would
                        exceed it (a set larger than this alone waits
                        until nothing else is staged). 0: 1 GiB          */
    const char *sign_key; /* sign the checkpoint with this Ed25519 secret
                        key file (written by wv_keygen); NULL: unsigned  */
    /* Optional: called from the committing thread (the repository's
     * background thread for wv_repo_commit_async) as the chunks are
     * hashed and stored: bytes of tensor data done so far, of total. */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
    /* Delta chunks in a repository that allows them (wv_init_opts):
     * 0: its keyframe interval (config); 1: store every changed chunk
     * whole this time; K >= 2: this interval for this commit. */
    int delta_keyframe;
} wv_commit_opts;
#define WV_COMMIT_OPTS_INIT \
    {sizeof(wv_commit_opts), NULL, 16, 0, NULL, NULL, NULL, 0}

/* Store the set as a new checkpoint on `branch` (NULL: "main") and move
 * the branch to it. Returns its id in `id`. The checkpoint is durable and
 * the branch updated atomically when this returns WV_OK; on WV_CONFLICT
 * the checkpoint is stored (its id is in `id`) but the branch moved on. */
WV_API int wv_repo_commit(wv_repo *r, const wv_model *m, const char *branch,
                          const wv_commit_opts *opts, char id[WV_ID_HEX]);

/* ---- Multi-writer checkpoints ------------------------------------------
 * Several processes (on any machines that see the same store) each commit
 * a part of one checkpoint; it appears, atomically, when the last part is
 * durable and one of them (or wv_repo_finish) merges the parts. They
 * coordinate through the store only: each part is a write-once record
 * parts/<branch>/<txn>/<writer> (docs/repo-format.md). */
typedef struct wv_part_opts {
    uint32_t struct_size;
    const char *txn;     /* required: the name all writers of this checkpoint
                            agree on, e.g. "step-1200": [A-Za-z0-9._-], 1..100 */
    uint32_t writer;     /* this writer's index, < n_writers            */
    uint32_t n_writers;  /* >= 1                                        */
    int no_finish;       /* 1: never finish here; leave it to wv_repo_finish */
} wv_part_opts;
#define WV_PART_OPTS_INIT {sizeof(wv_part_opts), NULL, 0, 1, 0}

WV_API int wv_repo_commit_part(wv_repo *r, const wv_model *m,
                               const char *branch, const wv_part_opts *part,
                               const wv_commit_opts *opts, char id[WV_ID_HEX]);
  /* Stores this writer's chunks and its part record; both are durable when
     it returns. Then, unless no_finish, tries to finish. WV_OK + id: the
     checkpoint exists (finished here or by another writer). WV_BUSY + id ""
     : parts still missing (durable; someone else will finish). Other codes:
     errors, e.g. WV_CONFLICT a part for (txn, writer) with different content
     already exists; WV_CORRUPT/WV_MISUSE refusals of finishing (see below). */

WV_API int wv_repo_finish(wv_repo *r, const char *branch, const char *txn,
                          uint32_t n_writers, const wv_commit_opts *opts,
                          char id[WV_ID_HEX]);
  /* Merges the n_writers part records into one manifest and moves the
     branch (compare-and-swap, as wv_repo_commit). Deterministic: the same
     checkpoint id whoever finishes (no wall-clock time of the finisher in
     the manifest: take it from the parts). Idempotent: finishing a finished
     txn returns WV_OK and its id. WV_BUSY when parts are missing (message
     names the missing writer indices). Refuses (WV_CORRUPT, one-line message
     naming the tensor and writers) when regions of a global tensor overlap
     partly, repeat with different bytes, leave a gap, or disagree on dtype
     or global shape; when parts name different parents; when a part belongs
     to another txn or declares another n_writers. A region may repeat in
     several writers (a replicated copy) only bit for bit (same chunk ids). */

typedef int (*wv_pending_cb)(void *arg, const char *branch, const char *txn,
                             uint32_t n_writers, uint32_t n_parts,
                             const char *oldest_part_time /* ISO 8601 UTC */);
WV_API int wv_repo_list_pending(wv_repo *r, wv_pending_cb cb, void *arg);
  /* Calls cb once per unfinished transaction (parts stored, no checkpoint
     yet), sorted by branch and txn. A non-zero return from cb stops the
     listing and is returned. */

/* Resharding read: the region [offset, offset + shape) of global tensor
 * `name` of checkpoint `ref` (whole tensors too), row-major, into buf (len =
 * product(shape) x dtype size, else WV_RANGE), reading only the chunks that
 * overlap it, each verified as checkout verifies. */
WV_API int wv_repo_read_region(wv_repo *r, const char *ref, const char *name,
                               int ndim, const uint64_t *offset,
                               const uint64_t *shape, void *buf, size_t len);

/* Resolve a ref: a branch ("main"), "latest" (the head of main), a tag, or
 * a unique prefix of a checkpoint id (at least 6 hex digits). */
WV_API int wv_repo_resolve(wv_repo *r, const char *ref, char id[WV_ID_HEX]);

typedef struct wv_checkout_opts {
    uint32_t struct_size;
    const char *const *names; /* only these tensors (NULL: all)          */
    size_t n_names;
    const char *verify_signer; /* a public key file (wv_keygen's .pub): the
                                  checkpoint must carry a valid signature
                                  by that key, else WV_AUTH_SIGNATURE    */
    /* Optional: called from the calling thread as chunks are read: bytes
     * of tensor data read so far, of total. */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
    /* wv_repo_checkout_file: the most bytes of chunk buffers in flight
     * (0: 64 MiB); at least one chunk's buffers are always used. */
    uint64_t buffer_bytes;
} wv_checkout_opts;
#define WV_CHECKOUT_OPTS_INIT \
    {sizeof(wv_checkout_opts), NULL, 0, NULL, NULL, NULL, 0}

/* Read checkpoint `ref` into a new tensor set with its metadata. Every
 * chunk is checked against its SHA-256 (keyed, in an encrypted
 * repository). Reads only the chunks of the tensors asked for. A
 * checkpoint whose signature does not verify is refused
 * (WV_AUTH_SIGNATURE); so is
 * an unsigned one, or one signed by another key, when opts->verify_signer
 * is given or the repository trusts keys (wv_repo_trust_add) and none of
 * them signed it. */
WV_API int wv_repo_checkout(wv_repo *r, const char *ref,
                            const wv_checkout_opts *opts, wv_model **out);

/* Check checkpoint `ref` out straight to the file `path`, written as
 * wv_model_save(set, path, save_opts) would write the set that
 * wv_repo_checkout(r, ref, opts) returns, with the same checks (every
 * chunk verified before a byte of it is written, the signature policy)
 * and the same durability (a temporary file, fsync, rename, fsync of the
 * directory: on failure `path` is untouched and no temporary remains).
 * For formats whose writer takes tensors as a stream (safetensors, npy,
 * npz, gguf; one file, no shard_size) the chunks are read, decoded and
 * checked in parallel and written as they come, in order: memory stays
 * within opts->buffer_bytes whatever the checkpoint's size (twice that
 * for a multi-writer checkpoint, whose global tensors are assembled from
 * their regions in chunk-sized windows on the calling thread). Other
 * formats and sharded saves check the set out into memory first and save
 * it.
 * With `index` non-NULL it receives the checked-out set's tensors and
 * metadata (without data when streamed: as WV_LOAD_INDEX) for the
 * caller's summaries; free it with wv_model_free. Messages go to
 * wv_repo_errmsg(r). */
WV_API int wv_repo_checkout_file(wv_repo *r, const char *ref,
                                 const wv_checkout_opts *opts,
                                 const char *path,
                                 const wv_save_opts *save_opts,
                                 wv_model **index);

/* ---- Reading one tensor without checking it out -----------------------
 *
 * wv_repo_visit_tensor() reads the chunks of tensor `name` of checkpoint
 * `ref` that overlap bytes [offset, offset + len), each checked as
 * wv_repo_checkout() checks it (hash or authentication, and the
 * repository's signature policy), and calls cb with each: `data` holds the
 * tensor's bytes [chunk_offset, chunk_offset + n), the whole chunk (it may
 * start before `offset` or end after the range). Memory stays bounded
 * whatever the tensor's size: a ring of at most 2 x cores + 2 chunks
 * (fewer for chunks of many MiB) is in flight at a time. The callbacks run on worker threads, several at once and
 * in any order (each chunk exactly once); `data` is valid only during the
 * call. A callback's non-zero return stops the read and is returned.
 * A range past the end of the tensor is WV_RANGE; an unknown tensor
 * WV_NOTFOUND; a damaged chunk WV_CORRUPT or WV_CORRUPT_CHECKSUM with a
 * message naming the chunk, its tensor and checkpoint (wv_repo_errmsg).
 *
 * wv_repo_read_tensor() copies bytes [offset, offset + len) of the tensor
 * into buf, reading only the chunks that overlap them. */
typedef int (*wv_chunk_cb)(void *arg, uint64_t chunk_offset,
                           const void *data, size_t n);
WV_API int wv_repo_visit_tensor(wv_repo *r, const char *ref,
                                const char *name, uint64_t offset,
                                uint64_t len, wv_chunk_cb cb, void *arg);
WV_API int wv_repo_read_tensor(wv_repo *r, const char *ref, const char *name,
                               uint64_t offset, uint64_t len, void *buf);

/* The chunk ids of every tensor of checkpoint `ref`, from its manifest
 * alone (no data is read): cb is called once per tensor, in checkpoint
 * order, with the chunk size and its n_chunks ids (32 bytes each, borrowed
 * during the call). Equal ids are the same stored bytes, so comparing two
 * checkpoints' ids says which chunks they share. A non-zero return from cb
 * stops the walk and is returned. */
typedef int (*wv_tensor_chunks_cb)(void *arg, const char *name,
                                   uint64_t chunk_size, size_t n_chunks,
                                   const unsigned char (*ids)[32]);
WV_API int wv_repo_tensor_chunks(wv_repo *r, const char *ref,
                                 wv_tensor_chunks_cb cb, void *arg);

/* ---- Checkpoint information, history and refs ------------------------
 *
 * A wv_checkpoint describes one checkpoint as its manifest records it: no
 * tensor data is read. Following wv_checkpoint_parent() from a branch head
 * walks the history; the walk ends at a checkpoint without a parent or at
 * one whose parent was pruned (wv_repo_stat then says WV_NOTFOUND).
 */
/* Threads: a wv_checkpoint is immutable; any threads may read it until it
 * is freed. */
typedef struct wv_checkpoint wv_checkpoint;

/* Describe checkpoint `ref` (any form wv_repo_resolve() takes; a full
 * 64-digit id is looked up directly). WV_NOTFOUND if nothing has that name
 * or its manifest is gone (pruned), WV_CORRUPT if the manifest is damaged.
 * Free the result with wv_checkpoint_free(). */
WV_API int wv_repo_stat(wv_repo *r, const char *ref, wv_checkpoint **out);
WV_API void wv_checkpoint_free(wv_checkpoint *c);

/* Strings are borrowed from `c`. The id is 64 hex digits; the parent is ""
 * for a first checkpoint; the time is RFC 3339 UTC ("2026-11-28T14:00:00Z");
 * the branch is the one the checkpoint was committed on; the message may
 * be "". */
WV_API const char *wv_checkpoint_id(const wv_checkpoint *c);
WV_API const char *wv_checkpoint_parent(const wv_checkpoint *c);
WV_API const char *wv_checkpoint_branch(const wv_checkpoint *c);
WV_API const char *wv_checkpoint_time(const wv_checkpoint *c);
WV_API const char *wv_checkpoint_message(const wv_checkpoint *c);
/* The metadata stored with the checkpoint, in its order (borrowed).
 * wv_checkpoint_meta() returns WV_RANGE if i is too big. */
WV_API size_t wv_checkpoint_meta_count(const wv_checkpoint *c);
WV_API int wv_checkpoint_meta(const wv_checkpoint *c, size_t i,
                              const char **key, const char **value);
WV_API const char *wv_checkpoint_get_meta(const wv_checkpoint *c,
                                          const char *key);
/* Tensor i in checkpoint order. Out of range: NULL, WV_DTYPE_INVALID, -1,
 * NULL and 0. The shape has wv_checkpoint_tensor_ndim() extents. */
WV_API size_t wv_checkpoint_tensor_count(const wv_checkpoint *c);
WV_API const char *wv_checkpoint_tensor_name(const wv_checkpoint *c,
                                             size_t i);
WV_API wv_dtype wv_checkpoint_tensor_dtype(const wv_checkpoint *c, size_t i);
WV_API int wv_checkpoint_tensor_ndim(const wv_checkpoint *c, size_t i);
WV_API const uint64_t *wv_checkpoint_tensor_shape(const wv_checkpoint *c,
                                                  size_t i);
WV_API uint64_t wv_checkpoint_tensor_nbytes(const wv_checkpoint *c,
                                            size_t i);
/* Stored regions of tensor i: 1 for an ordinary tensor, the number of
 * shards of a global tensor of a multi-writer checkpoint (0 out of
 * range). wv_checkpoint_tensor_writers() copies the indices of the
 * writers that stored it (all of them for a replicated tensor; none for a
 * checkpoint of one writer) into out, at most cap, and returns how many
 * there are. wv_checkpoint_tensor_shard() gives shard k's offset and
 * shape (borrowed, ndim each) and its writer (WV_RANGE when i or k is out
 * of range). */
WV_API size_t wv_checkpoint_tensor_shards(const wv_checkpoint *c, size_t i);
WV_API size_t wv_checkpoint_tensor_writers(const wv_checkpoint *c, size_t i,
                                           uint32_t *out, size_t cap);
WV_API int wv_checkpoint_tensor_shard(const wv_checkpoint *c, size_t i,
                                      size_t k, const uint64_t **offset,
                                      const uint64_t **shape,
                                      uint32_t *writer);
/* Sum of the tensors' bytes. */
WV_API uint64_t wv_checkpoint_total_bytes(const wv_checkpoint *c);
/* What checkpoint `ref` takes in the store (from its manifest and the
 * chunk index; no data is read). Each distinct chunk counts once.
 * `new_*` count the chunks its parent checkpoint does not list (all of
 * them for a first checkpoint, or one whose parent was pruned): what
 * committing it added, unless another checkpoint stored the same chunk.
 * Codecs: 0 none, 1 zstd, 2 bg-zstd (byte-grouped zstd), 3 xor-bg-zstd (a
 * delta against the parent's chunk, docs/repo-format.md). */
typedef struct wv_checkpoint_storage {
    uint32_t struct_size;
    uint64_t chunks, stored_bytes, raw_bytes;
    uint64_t new_chunks, new_stored_bytes, new_raw_bytes;
    uint64_t new_by_codec[4];        /* new chunks per codec        */
    uint64_t new_stored_by_codec[4]; /* their stored bytes          */
    int max_chain; /* longest delta chain among its chunks (0: none) */
} wv_checkpoint_storage;
#define WV_CHECKPOINT_STORAGE_INIT \
    {sizeof(wv_checkpoint_storage), 0, 0, 0, 0, 0, 0, {0}, {0}, 0}
WV_API int wv_repo_storage(wv_repo *r, const char *ref,
                           wv_checkpoint_storage *out);
/* The public key (64 hex digits) whose valid signature the checkpoint
 * carries, or "" if it is unsigned or its signature does not verify. */
WV_API const char *wv_checkpoint_signer(const wv_checkpoint *c);

/* Refs. Names are 1..100 characters of [A-Za-z0-9._-], not starting with
 * '.' or '-', without "..", not ending in ".lock", not "latest" and not
 * 6 to 64 lowercase hex digits (which would shadow id prefixes); a bad
 * name is WV_MISUSE. A branch and a tag may not share a name (WV_EXISTS).
 * `ref` is resolved as wv_repo_resolve() does; NULL means "latest".
 *
 * Tags never move: wv_repo_tag() returns WV_EXISTS if the tag exists,
 * wherever it points. Branches are created with wv_repo_branch() (WV_EXISTS
 * if it exists) and moved by commits. Deleting a ref removes the name
 * only: its checkpoints stay until a prune removes them. The branch "main"
 * cannot be deleted (WV_MISUSE), since "latest" is its head. Deleting a
 * missing ref is WV_NOTFOUND. Every change is one compare-and-swap of the
 * ref, so a concurrent change makes it fail with WV_CONFLICT (delete) or
 * WV_EXISTS (create), never half done. */
WV_API int wv_repo_tag(wv_repo *r, const char *name, const char *ref);
WV_API int wv_repo_tag_delete(wv_repo *r, const char *name);
WV_API int wv_repo_branch(wv_repo *r, const char *name, const char *ref);
WV_API int wv_repo_branch_delete(wv_repo *r, const char *name);

/* List the branches (refs/heads) or the tags (refs/tags), sorted by name:
 * cb is called once per ref with its name and checkpoint id (both valid
 * during the call only). The refs are read first, so on an error before
 * the first call cb is never called. A non-zero return from cb stops the
 * listing and is returned. */
typedef int (*wv_ref_cb)(void *arg, const char *name, const char *id);
WV_API int wv_repo_list_branches(wv_repo *r, wv_ref_cb cb, void *arg);
WV_API int wv_repo_list_tags(wv_repo *r, wv_ref_cb cb, void *arg);

/* ---- Comparing two checkpoints ---------------------------------------- */
typedef enum wv_diff_kind {
    WV_DIFF_UNCHANGED = 0, /* same dtype, shape and bytes               */
    WV_DIFF_ADDED,         /* only in b                                 */
    WV_DIFF_REMOVED,       /* only in a                                 */
    WV_DIFF_CHANGED        /* in both, with another dtype, shape or
                              content                                   */
} wv_diff_kind;

/* One tensor of a comparison. Fields may be appended in later versions;
 * entries are only ever handed out by the library. */
typedef struct wv_diff_entry {
    const char *name;  /* borrowed from the wv_diff                     */
    wv_diff_kind kind;
    long a, b;         /* its index in checkpoint a / b, -1 if absent   */
    int compared;      /* CHANGED with the same dtype and shape and a
                          numeric dtype (float, integer, BOOL, or a
                          block type that dequantises): values were
                          read and the figures below are set           */
    uint64_t n_differ; /* elements whose values differ                 */
    double max_abs;    /* max |a_i - b_i|                               */
    double rel_l2;     /* ||a - b||_2 / ||a||_2 (+inf if ||a|| is 0 and
                          a != b)                                       */
} wv_diff_entry;

/* Compare checkpoint `a` (the old one) with `b`. Tensors are matched by
 * name. A tensor whose chunk ids are all equal in both is UNCHANGED
 * without reading its data; only the CHANGED tensors of the same dtype and
 * shape are read (verified, through wv_repo_checkout()) and their values
 * compared in double precision: NaN against NaN and equal infinities count
 * as equal, a NaN on one side only makes max_abs and rel_l2 NaN. With
 * WV_DIFF_NO_VALUES no data is read at all (compared stays 0). Entries come
 * in b's order, then the removed tensors in a's order. Free the result with
 * wv_diff_free(). */
#define WV_DIFF_NO_VALUES 1u
/* Threads: a wv_diff is immutable once returned; any threads may read
 * it until it is freed. */
typedef struct wv_diff wv_diff;
WV_API int wv_repo_diff(wv_repo *r, const char *a, const char *b,
                        unsigned flags, wv_diff **out);
WV_API void wv_diff_free(wv_diff *d);
WV_API size_t wv_diff_count(const wv_diff *d);
/* Entry i, or NULL if i is too big. Borrowed from d. */
WV_API const wv_diff_entry *wv_diff_entry_at(const wv_diff *d, size_t i);
/* The two checkpoints compared (borrowed from d). */
WV_API const wv_checkpoint *wv_diff_a(const wv_diff *d);
WV_API const wv_checkpoint *wv_diff_b(const wv_diff *d);
/* Bytes of tensor data read (both sides) to compute the figures. */
WV_API uint64_t wv_diff_bytes_read(const wv_diff *d);

/* ---- Asynchronous commits ---------------------------------------------
 *
 * wv_repo_commit_async() returns as soon as the set is staged; chunking,
 * hashing, compression and writing go on in a background thread of the
 * repository, one commit after the other in the order they were started.
 * Every other wv_repo_* call on the repository (a synchronous commit, a
 * checkout, wv_repo_close(), ...) first waits until the pending
 * asynchronous commits are done, so it sees them and order is kept.
 *
 * How the set is staged (exactly one of):
 *   WV_ASYNC_COPY  copy the tensors and metadata now; the caller may
 *                  change or free the set as soon as the call returns.
 *                  The copies of the pending commits are bounded by
 *                  opts->staging_bytes: the call blocks while it is full.
 *                  The largest staging buffer is kept for the next copy
 *                  (faulted-in pages copy several times faster than fresh
 *                  memory) until the repository is closed.
 *   WV_ASYNC_TAKE  take the set itself without copying; the library frees
 *                  it with wv_model_free() when the commit is done, also
 *                  when the call fails. The caller must not touch it.
 * The result is the same as wv_repo_commit()'s with the same arguments.
 */
#define WV_ASYNC_COPY 1u
#define WV_ASYNC_TAKE 2u

/* Threads: a wv_commit_handle may be polled and waited on from any
 * threads (it has its own mutex) until wv_commit_free, which needs it to
 * itself; it stays usable after its repository is closed. */
typedef struct wv_commit_handle wv_commit_handle;

/* Start an asynchronous commit of `m` to `branch` (NULL: "main"). On
 * WV_OK *out is a handle to wait on, poll, and free with wv_commit_free().
 * Bad arguments are reported at once (WV_MISUSE, message in
 * wv_repo_errmsg()), errors of the commit itself through the handle. */
WV_API int wv_repo_commit_async(wv_repo *r, const wv_model *m,
                                const char *branch,
                                const wv_commit_opts *opts, unsigned flags,
                                wv_commit_handle **out);
/* A part of a multi-writer checkpoint, asynchronously: the arguments of
 * wv_repo_commit_part() (checked at once: WV_MISUSE, message in
 * wv_repo_errmsg()) and the staging `flags` above. The handle then gives
 * what wv_repo_commit_part() would have returned: WV_OK and the
 * checkpoint id when it exists, WV_BUSY and "" when other writers' parts
 * are still missing (this one is durable), or an error and its message
 * (wv_commit_errmsg). */
WV_API int wv_repo_commit_part_async(wv_repo *r, const wv_model *m,
                                     const char *branch,
                                     const wv_part_opts *part,
                                     const wv_commit_opts *opts,
                                     unsigned flags,
                                     wv_commit_handle **out);
/* WV_BUSY while the commit is queued or running; then its status, as
 * wv_repo_commit() (wv_repo_commit_part()) would have returned it. Never blocks. */
WV_API int wv_commit_poll(wv_commit_handle *h);
/* Block until the commit is done; return its status and, on WV_OK (and on
 * WV_CONFLICT, as wv_repo_commit() does), its checkpoint id in `id` (may
 * be NULL; "" for a part whose checkpoint is not finished: WV_BUSY). */
WV_API int wv_commit_wait(wv_commit_handle *h, char id[WV_ID_HEX]);
/* The message of a failed commit ("" while running or on success).
 * Borrowed from h. */
WV_API const char *wv_commit_errmsg(const wv_commit_handle *h);
/* Wait for the commit if it is still running, then free the handle. A
 * handle may be freed before or after its repository is closed. */
WV_API void wv_commit_free(wv_commit_handle *h);

/* ---- Retention and integrity: prune, gc, verify ------------------------
 *
 * A checkpoint exists while its manifest does. wv_repo_prune() deletes
 * manifests (never data); wv_repo_gc() then deletes the data no remaining
 * checkpoint uses. Both take the repository's exclusive lock: a commit
 * running meanwhile makes them fail with WV_CONFLICT, and a commit started
 * while they run fails with WV_CONFLICT ("locked") without writing
 * anything; retry later.
 */
#define WV_PRUNE_MIN 0 /* lower metric values are better (a loss)     */
#define WV_PRUNE_MAX 1 /* higher values are better (an accuracy)      */

typedef struct wv_prune_opts {
    uint32_t struct_size;
    long keep_last;     /* per branch, keep the N most recent (by time,
                           ties by the parent chain); -1: no such rule */
    long keep_best;     /* per branch, keep the K best by `metric`
                           (checkpoints without a numeric value for it
                           are never "best"); -1: no such rule         */
    const char *metric; /* metadata key, required with keep_best       */
    int mode;           /* WV_PRUNE_MIN or WV_PRUNE_MAX                */
    const char *branch; /* consider only this branch's checkpoints (by
                           the branch recorded in each manifest); NULL:
                           every branch                                */
    int dry_run;        /* decide and report, delete nothing           */
} wv_prune_opts;
#define WV_PRUNE_OPTS_INIT \
    {sizeof(wv_prune_opts), -1, -1, NULL, WV_PRUNE_MIN, NULL, 0}

/* One decision, borrowed for the duration of the callback. */
typedef struct wv_prune_decision {
    const char *id;     /* 64 hex digits                               */
    const char *branch; /* the manifest's branch ("" if none)          */
    const char *time;   /* RFC 3339 UTC ("" if none)                   */
    const char *step;   /* metadata "step", NULL if absent             */
    const char *metric; /* metadata opts->metric, NULL if absent/none  */
    int keep;           /* 1 kept, 0 removed                           */
    const char *reason; /* why kept: "head of main", "tag v1", "last 2
                           of main", "best 1 of main by val_loss",
                           "other branch", "unreadable manifest"; ""
                           when removed                                */
} wv_prune_decision;
typedef int (*wv_prune_cb)(void *arg, const wv_prune_decision *d);

typedef struct wv_prune_stats {
    uint64_t kept, removed; /* removed: would be, with dry_run */
} wv_prune_stats;

/* Decide which checkpoints to keep and delete the others' manifests.
 * Always kept: every branch head and every tag target, and (so nothing is
 * lost to a damaged file) any manifest that cannot be read. At least one
 * of keep_last and keep_best must be given (>= 0), else WV_MISUSE. cb (may
 * be NULL) is called for every checkpoint considered, by branch, newest
 * first, BEFORE anything is deleted; a non-zero return cancels the prune
 * with nothing deleted (WV_ERROR). stats may be NULL. */
WV_API int wv_repo_prune(wv_repo *r, const wv_prune_opts *opts,
                         wv_prune_cb cb, void *arg, wv_prune_stats *stats);

typedef struct wv_gc_opts {
    uint32_t struct_size;
    int dry_run;          /* compute and report, change nothing        */
    int repack_percent;   /* rewrite a pack when more than this share
                             of its bytes is dead (default 30)         */
    int64_t tmp_age;      /* seconds a temporary file left by a killed
                             writer must be untouched before gc removes
                             it (default 3600); one whose writing
                             process still runs on this host is kept   */
    uint32_t pending_timeout; /* seconds: the parts of an unfinished
                             multi-writer checkpoint whose newest part
                             is older than this are removed, and their
                             chunks with them (0: 86400); younger ones
                             keep their chunks alive                   */
} wv_gc_opts;
#define WV_GC_OPTS_INIT {sizeof(wv_gc_opts), 0, 30, 3600, 0}

typedef struct wv_gc_stats {
    uint64_t checkpoints;     /* manifests kept alive                  */
    uint64_t live_chunks;     /* chunks they reference                 */
    uint64_t missing_chunks;  /* referenced but in no index or pack
                                 (already lost; run wv_repo_verify)    */
    uint64_t packs;           /* packs before                          */
    uint64_t packs_deleted;   /* wholly dead (or in no index)          */
    uint64_t packs_repacked;  /* rewritten without their dead chunks   */
    uint64_t packs_written;   /* new packs holding the moved chunks    */
    uint64_t indexes_deleted; /* index objects replaced                */
    uint64_t indexes_written; /* 0 or 1: the consolidated index        */
    uint64_t locks_removed;   /* stale locks cleared                   */
    uint64_t bytes_before;    /* packs and index objects               */
    uint64_t bytes_after;
    uint64_t bytes_freed;     /* before - after (estimated: dry run)   */
    uint64_t tmp_removed;     /* temporary files of killed writers
                                 removed (local stores)                */
    uint64_t pending_removed; /* unfinished multi-writer checkpoints
                                 whose parts were removed (older than
                                 pending_timeout)                      */
} wv_gc_stats;

/* Delete the data no checkpoint references. Refuses to run (WV_CORRUPT)
 * if a manifest or index object is damaged, since it could not tell what
 * is live; run wv_repo_verify(). A crash at any point leaves a readable
 * repository (see src/repo/gc.c). stats may be NULL. */
WV_API int wv_repo_gc(wv_repo *r, const wv_gc_opts *opts,
                      wv_gc_stats *stats);

/* One problem found by wv_repo_verify(); borrowed during the callback. */
typedef struct wv_verify_problem {
    const char *object;     /* store key of the damaged object
                               ("packs/ab/ab...", "index/...",
                               "manifests/..", "refs/heads/main")      */
    const char *checkpoint; /* an affected checkpoint (64 hex), or NULL */
    const char *branch;     /* its branch, or NULL                      */
    const char *tensor;     /* an affected tensor, or NULL              */
    const char *message;    /* one line naming all of the above         */
} wv_verify_problem;
typedef void (*wv_verify_cb)(void *arg, const wv_verify_problem *p);

typedef struct wv_verify_stats {
    uint64_t checkpoints; /* manifests that parse and match their name */
    uint64_t refs, indexes, packs;
    uint64_t chunks;      /* distinct chunks re-hashed successfully    */
    uint64_t bytes;       /* their plaintext bytes                     */
    uint64_t problems;
    char unlocked[256];   /* "" normally; else why verify ran without
                             its shared lock (a user who may only read
                             the store cannot write one): a gc running
                             meanwhile could make objects look missing */
} wv_verify_stats;

/* Check the whole repository: every ref names an existing checkpoint;
 * every manifest hashes to its name and parses; every index object hashes
 * to its name, parses, and agrees with the trailers of the packs it
 * points into; every pack parses and is named by its trailer's hash; and
 * every chunk of every stored checkpoint (not only those reachable from
 * refs) is in an index, decodes, and hashes to its id. Each problem is
 * passed to cb (may be NULL). Returns WV_OK if there was none, WV_CORRUPT
 * if there were, or the error that stopped the check (I/O, WV_CONFLICT
 * when gc holds the lock). Takes a shared lock, as a commit does. */
WV_API int wv_repo_verify(wv_repo *r, wv_verify_cb cb, void *arg,
                          wv_verify_stats *stats);

/* ------------------------------------------------------------------------
 * Push, pull, clone: copying checkpoints between repositories on any two
 * stores (a local directory, s3://, rados://).
 */
typedef struct wv_sync_opts {
    uint32_t struct_size;
    const char *branch; /* copy this branch (and what it needs); NULL:
                           every branch and tag                          */
    int jobs;           /* objects transferred at once (default 4)      */
    int force;          /* move a destination branch or tag that is not
                           an ancestor of the source's (drops the
                           destination's own checkpoints from the ref)  */
    int no_create;      /* refuse a destination that is not a repository
                           yet (by default it is created with the
                           source's configuration)                      */
    /* Called from the transfer threads (one at a time) after each object
     * with the bytes copied so far and the total to copy. May be NULL. */
    void (*progress)(void *arg, uint64_t done, uint64_t total);
    void *progress_arg;
    char *errbuf;
    size_t errbuf_size;
} wv_sync_opts;
#define WV_SYNC_OPTS_INIT {sizeof(wv_sync_opts), NULL, 4, 0, 0, \
                           NULL, NULL, NULL, 0}

typedef struct wv_sync_result {
    uint64_t objects_total;  /* data objects (packs, indexes, manifests)
                                the source has                          */
    uint64_t objects_copied; /* of which were missing and copied        */
    uint64_t bytes_copied;
    int refs_updated, refs_unchanged;
    /* Requests made to both repositories' stores and the bytes sent to
     * and received from them: for s3:// the HTTP requests (each retry
     * too) and their body bytes; for local directories and rados:// the
     * store operations (object reads and writes, listings, ref reads and
     * updates) and the object bytes they moved. */
    uint64_t requests;
    uint64_t bytes_sent, bytes_received;
    /* Chunks checked as their packs arrived, before each pack was kept
     * (every chunk of every pack copied: decoded and hashed to its id,
     * or authenticated in an encrypted repository; a delta without its
     * base, see docs/repo-format.md "Copying between repositories"). */
    uint64_t chunks_verified;
} wv_sync_result;

/* Copy to `dst` every object of `src` that `dst` lacks, then move the
 * refs (each by compare-and-swap, only forward unless opts->force). The
 * destination never names a checkpoint it does not hold in full; an
 * interrupted transfer is resumed by calling this again, which copies only
 * what is still missing. WV_CONFLICT when a destination ref diverged (or
 * moved meanwhile): objects are copied, that ref is left as it was. */
WV_API int wv_repo_sync(const char *src, const char *dst,
                        const wv_sync_opts *opts, wv_sync_result *result);

/* ------------------------------------------------------------------------
 * Keys and signatures (docs/repo-format.md section 14).
 *
 * An encrypted repository's key is stored once per "key slot", wrapped by
 * one secret (a passphrase through Argon2id, or a raw key file), so
 * several people open it with their own secrets. Checkpoints may carry an
 * Ed25519 signature (wv_commit_opts.sign_key); checkouts check it against
 * wv_checkout_opts.verify_signer or the repository's trusted keys.
 * Secrets are wiped from memory after use and never appear in messages.
 */

/* 1 if the repository is encrypted, 0 if not. */
WV_API int wv_repo_encrypted(const wv_repo *r);

typedef struct wv_key_slot {
    const char *id;      /* 16 hex digits                              */
    const char *label;
    const char *kind;    /* "passphrase" or "key file"                 */
    const char *created; /* RFC 3339 UTC                               */
    int current;         /* 1 for the slot this handle was opened with */
} wv_key_slot;
typedef int (*wv_key_cb)(void *arg, const wv_key_slot *slot);

/* The key slots of an encrypted repository, sorted by id (borrowed
 * during the callback; a non-zero return stops and is returned).
 * WV_MISUSE for a repository that is not encrypted. */
WV_API int wv_repo_key_list(wv_repo *r, wv_key_cb cb, void *arg);
/* Add a slot for a new secret (a passphrase, else a key file); its id
 * goes to `id` (17 bytes). */
WV_API int wv_repo_key_add(wv_repo *r, const char *passphrase,
                           const char *key_file, const char *label,
                           char id[17]);
/* Remove a slot (by id or a unique prefix of at least 4 digits). The
 * other secrets keep working; the last slot cannot be removed. Removing a
 * slot does not re-encrypt anything: whoever read the repository key
 * while holding that secret can still use it. */
WV_API int wv_repo_key_remove(wv_repo *r, const char *id);

/* Write a new random raw key to `path` (mode 0600; WV_EXISTS if the file
 * exists): a key file for wv_init_opts.key_file / wv_repo_key_add. */
WV_API int wv_secret_keygen(const char *path, char *errbuf,
                            size_t errbuf_size);
/* Write a new Ed25519 key pair: BASE.key (secret, mode 0600) and
 * BASE.pub. WV_EXISTS if either exists. */
WV_API int wv_keygen(const char *base, char *errbuf, size_t errbuf_size);

typedef struct wv_trusted_key {
    const char *id;    /* the first 16 hex digits of the public key    */
    const char *key;   /* the public key, 64 hex digits                */
    const char *label;
} wv_trusted_key;
typedef int (*wv_trust_cb)(void *arg, const wv_trusted_key *k);

/* Trust the public key in `pub_file` (wv_keygen's .pub): from now on
 * every checkout must find a valid signature by a trusted key. In an
 * encrypted repository the list is sealed with the repository key, so
 * only key holders can change it; in a plain one it is as safe as write
 * access to the store (give verify_signer to rely on a key of your own).
 * Its id goes to `id` (17 bytes; may be NULL). */
WV_API int wv_repo_trust_add(wv_repo *r, const char *pub_file,
                             const char *label, char id[17]);
WV_API int wv_repo_trust_list(wv_repo *r, wv_trust_cb cb, void *arg);
/* Remove a trusted key by id (or unique prefix, >= 4 digits). */
WV_API int wv_repo_trust_remove(wv_repo *r, const char *id);

#ifdef __cplusplus
}
#endif
#endif /* WEIGHTVAULT_H */
