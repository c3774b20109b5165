/*
 * zip.h -- private interface of the zip container (zip.c) and of the npy
 * array codec (npy.c) that the zip-based formats share.
 *
 * The reader validates the whole central directory when it opens an
 * archive; afterwards every entry's ranges are known to lie inside the
 * source, not to overlap each other or the directory, and its sizes to be
 * consistent with its method. The writer streams entries through a
 * wv__wfile: local header, data (CRC computed on the fly), data descriptor,
 * and the central directory at the end; ZIP64 records are used where a size,
 * an offset or the entry count needs them.
 */
#ifndef WV_ZIP_H
#define WV_ZIP_H

#include "core.h"
#include "tensor.h"

/* ---- reading ------------------------------------------------------------ */

#define WV__ZIP_STORED 0
#define WV__ZIP_DEFLATED 8

struct wv__zip_entry {
    char *name;           /* NUL-terminated; name_len excludes the NUL    */
    size_t name_len;
    uint16_t method;      /* WV__ZIP_STORED or WV__ZIP_DEFLATED           */
    uint16_t flags;       /* general-purpose bit flags                    */
    uint32_t crc;
    uint64_t comp_size;
    uint64_t size;        /* uncompressed size                            */
    uint64_t lh_off;      /* local header                                 */
    uint64_t data_off;    /* first byte of the (compressed) payload       */
};

struct wv__zip {
    const struct wv__src *src;
    struct wv__zip_entry *ents; /* central directory order */
    size_t n_ents;
    uint64_t cd_off; /* where the central directory starts              */
    bool lazy;       /* local headers checked when a member is read     */
};

/* Read and validate the central directory of `src`. Refuses multi-disk
 * archives, encrypted entries, methods other than stored and deflate,
 * out-of-range or overlapping entries, local headers that disagree with
 * the central directory (name, method, data-descriptor flag, CRC-32,
 * sizes), names that could escape a directory (wv__path_name_bad),
 * duplicate names and deflated entries
 * whose declared size exceeds zlib's maximum ratio (1032:1). On failure the
 * struct is left empty (wv__zip_close is still safe). */
int wv__zip_open(struct wv__zip *z, const struct wv__src *src,
                 struct wv__err *err);
/* The same, but each member's local header is read and checked only when
 * wv__zip_entry_data reads that member (its data_off is 0 until then), and
 * members are checked not to overlap by their local header offsets: for
 * listing an archive read by ranged requests without visiting every
 * member. */
int wv__zip_open_lazy(struct wv__zip *z, const struct wv__src *src,
                      struct wv__err *err);
void wv__zip_close(struct wv__zip *z);
/* The member named exactly `name`, or NULL. */
const struct wv__zip_entry *wv__zip_find(const struct wv__zip *z,
                                         const char *name);

/* The uncompressed bytes of an entry, CRC-checked unless it is a stored
 * entry borrowed from a mapping and the load did not ask for checksums
 * (src->check_sums, WV_LOAD_CHECKSUMS, which every CLI command passes;
 * pread-mode loads always check). A deflated entry's size is charged to
 * the load's amplification budget before it is allocated. Stored entries are
 * borrowed from a mapped source (*owned = NULL) or read into an owned
 * buffer; deflated entries are inflated into an owned wv__malloc()ed
 * buffer of exactly e->size bytes. The caller frees *owned. */
int wv__zip_entry_data(const struct wv__zip *z,
                       const struct wv__zip_entry *e,
                       const unsigned char **data, void **owned,
                       struct wv__err *err);

/* ---- writing ------------------------------------------------------------ */

struct wv__zipw_ent {
    char *name;
    uint16_t method;
    bool zip64;
    uint32_t crc;
    uint64_t comp_size, size, lh_off;
};

struct wv__zipw {
    struct wv__wfile *f;
    struct wv__err *err;
    struct wv__zipw_ent *ents;
    size_t n_ents, cap_ents;
    bool open;            /* an entry is being written                    */
    void *zs;             /* z_stream of the current deflated entry       */
    unsigned char *zbuf;  /* deflate output buffer                        */
    uint64_t data_start;  /* offset of the current payload                */
    int rc;               /* sticky error                                 */
};

/* Start an archive on `f` (which must be at offset 0 or wherever the
 * archive begins; offsets are taken from f->off). */
void wv__zipw_init(struct wv__zipw *w, struct wv__wfile *f,
                   struct wv__err *err);
/* Begin an entry. `size_hint` is an upper bound of the uncompressed size
 * (UINT64_MAX if unknown); it decides whether the entry gets ZIP64 fields.
 * `align` > 1 (stored entries only) pads the local header with an 'FB'
 * extra field so the payload starts at a multiple of `align`, as PyTorch
 * does. */
int wv__zipw_begin(struct wv__zipw *w, const char *name, int method,
                   uint64_t size_hint, size_t align);
/* Append payload bytes to the current entry. Errors are sticky. */
void wv__zipw_write(struct wv__zipw *w, const void *p, size_t n);
/* Append a tensor's elements converted to `to`, streamed in slices. */
void wv__zipw_tensor(struct wv__zipw *w, const struct wv_tensor *t,
                     wv_dtype to);
/* Finish the current entry: flush the compressor, write the data
 * descriptor. */
int wv__zipw_end(struct wv__zipw *w);
/* Write the central directory and end records. */
int wv__zipw_finish(struct wv__zipw *w);
/* Free everything (also after a failure). */
void wv__zipw_release(struct wv__zipw *w);

/* ---- npy arrays (npy.c), shared by the npz and future pth readers ------- */

/* Parse the npy image `src` (a whole .npy file, or a zip member presented
 * as a memory source) and add it to `m` as tensor `name`. `owned`, which may
 * be NULL, is the wv__malloc()ed buffer backing src->map; ownership passes
 * to this call in every case. */
int wv__npy_load_src(const struct wv__src *src, const char *name,
                     size_t name_len, void *owned, wv_model *m,
                     struct wv__err *err);
/* Append to `b` the npy header (magic, version, length, dict, padding)
 * numpy 1.24's np.save writes for tensor `t` stored as dtype `to`. Refuses
 * dtypes numpy has no type for. */
int wv__npy_header(const struct wv_tensor *t, wv_dtype to, struct wv__buf *b,
                   struct wv__err *err);

#endif /* WV_ZIP_H */
