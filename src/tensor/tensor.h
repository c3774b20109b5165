/*
 * tensor.h -- the tensor layer (src/tensor): the tensor set a load fills
 * and a save or commit reads (model.c), dtypes and casts (dtype.c), and
 * streaming a tensor's elements converted to another dtype (stream.c).
 * Uses core only.
 */
#ifndef WV_TENSOR_H
#define WV_TENSOR_H

#include "core.h"

/* ---- the tensor set ---------------------------------------------------- */
/* Where the bytes of a deferred tensor come from (a checkout streamed to a
 * file, repo/checkout.c): fill feeds the tensor's bytes, in order, to sink
 * (a false return from sink stops it: WV_OK). On failure it returns the
 * status with its message already set in the error context of the save
 * that asked for the bytes. */
struct wv__tensor_src {
    int (*fill)(void *arg, const struct wv_tensor *t,
                bool (*sink)(void *sarg, const void *p, size_t n),
                void *sink_arg);
    void *arg;
};

struct wv_tensor {
    char *name;
    wv_dtype dtype;
    int ndim;
    uint64_t shape[WV_MAX_DIMS];
    const unsigned char *data;
    size_t nbytes;
    void *owned; /* wv__free()d with the set, or NULL if borrowed */
    /* A deferred tensor (data NULL, in a set built index-only): its bytes
     * come from src when a writer streams it (wv__tensor_stream). */
    const struct wv__tensor_src *src;
    /* A region of a global tensor (wv_model_set_region): its shape and
     * this part's offset per dimension (ndim each). */
    bool has_region;
    uint64_t gshape[WV_MAX_DIMS], goffset[WV_MAX_DIMS];
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

/* ---- streaming converted elements (stream.c) ---------------------------- */
/* Feed a tensor's elements converted to `to` (C order, little-endian) to
 * `sink` in slices (no whole second copy); a false return from sink stops.
 * WV_NOMEM if the conversion buffer cannot be had. A deferred tensor's
 * bytes come from its source (struct wv__tensor_src) as they arrive; a
 * failure of the source is its status, its message already set. */
int wv__tensor_stream(const struct wv_tensor *t, wv_dtype to,
                      bool (*sink)(void *arg, const void *p, size_t n),
                      void *arg);
/* Write a tensor's elements converted to `to`, streaming in slices. */
void wv__wfile_tensor(struct wv__wfile *f, const struct wv_tensor *t,
                      wv_dtype to);

#endif /* WV_TENSOR_H */
