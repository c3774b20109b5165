/*
 * fmt.h -- the formats layer (src/formats): the format registry and the
 * loaders (fmt.c), each format's ops, remote and sharded inputs, the
 * amplification budget of a load, and metadata values that may be binary
 * (metaval.c). Uses core, json (in the .c files that parse JSON), tensor
 * and net (remote.c).
 */
#ifndef WV_FMT_H
#define WV_FMT_H

#include "core.h"
#include "tensor.h"

/* ---- loads ------------------------------------------------------------- */
/* wv_load_opts grew `names`; older callers pass a smaller struct. */
#define wv__load_opts_has_names(o) \
    ((o)->struct_size >= offsetof(wv_load_opts, n_names) + sizeof(size_t))
#define wv__load_opts_has_max_expand(o) \
    ((o)->struct_size >= offsetof(wv_load_opts, max_expand) + sizeof(uint64_t))

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
 * With m NULL (a template a writer reads) the caller unmaps a non-empty
 * map itself (src->map, src->size). Messages read "WHAT: ROLE PATH: reason". */
int wv__open_part(const char *what, const char *role, const char *path,
                  bool use_map, wv_model *m, struct wv__expand *ex, int *fd,
                  struct wv__src *src, struct wv__err *err);

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
    /* What a shard size (wv_save_opts.shard_size) does for it. */
    enum {
        WV__SHARDS_INDEX = 0, /* files of that size and a JSON shard index
                               * (shard.c) */
        WV__SHARDS_OWN,       /* its save splits its data itself (TF.js) */
        WV__SHARDS_NONE,      /* refused: no_shards says why */
    } shards;
    const char *no_shards; /* "... (no --shard-size)", after "PATH: " */
};
const struct wv__format_ops *wv__format_get(wv_format id);

/* Could wv__model_save_ex write a deferred set (every tensor's bytes from
 * its source) to `path` with these options: one file (no shards) of a
 * format whose save reads tensor data only through wv__tensor_stream (or
 * wv__wfile_tensor), each tensor once, in an order that depends only on
 * the set's names, dtypes, shapes and metadata (safetensors, npy, npz,
 * gguf; fmt.c keeps the list)? */
bool wv__save_streams(const char *path, const wv_save_opts *opts);
/* wv_model_save with the messages in err. deferred: the set was built
 * index-only and its tensors have sources (wv__save_streams must hold).
 * dry: a rehearsal (wv__wfile_open_dry): nothing is written. */
int wv__model_save_ex(wv_model *m, const char *path,
                      const wv_save_opts *opts, bool deferred, bool dry,
                      struct wv__err *err);

/* Open, map (unless WV_LOAD_PREAD) and load a file; with allow_index a
 * JSON shard index is followed. */
int wv__load_file(const char *path, const wv_load_opts *opts, wv_model **out,
                  struct wv__err *err, bool allow_index);
/* Detect the format (unless opts says it) and load a source; the set
 * keeps `map` (map_len bytes, unmapped with it) if given (fmt.c). */
int wv__load_src(const struct wv__src *src, const wv_load_opts *opts,
                 wv_model **out, struct wv__err *err, void *map,
                 size_t map_len);
/* Keras: the HDF5 file signature and the content probe (keras_probe.c),
 * shared by keras.c and its stand-in keras_off.c. */
extern const unsigned char wv__h5_sig[8];
int wv__keras_probe(const struct wv__src *src, const unsigned char *h,
                    size_t n);
/* s3://, http://, https:// (fmt.c). */
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

extern const struct wv__format_ops wv__fmt_safetensors;
extern const struct wv__format_ops wv__fmt_npy;
extern const struct wv__format_ops wv__fmt_npz;
extern const struct wv__format_ops wv__fmt_pth;
extern const struct wv__format_ops wv__fmt_keras;
extern const struct wv__format_ops wv__fmt_mxnet;
extern const struct wv__format_ops wv__fmt_gguf;
extern const struct wv__format_ops wv__fmt_tfbundle;
extern const struct wv__format_ops wv__fmt_tfjs;
/* Parse and check a shard index (model.safetensors.index.json) in memory,
 * shards untouched (the fuzz harness): its entries and distinct shards
 * (shard.c). */
int wv__shard_check_index(const void *buf, size_t n, size_t *n_entries,
                          size_t *n_shards, struct wv__err *err);
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

/* ---- metadata values that may be binary (metaval.c) ------------------- */
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

#endif /* WV_FMT_H */
