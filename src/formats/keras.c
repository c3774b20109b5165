/*
 * keras.c -- Keras weights in HDF5 (through libhdf5) and .keras archives.
 *
 * HDF5 file (signature at offset 0; libhdf5 parses the rest):
 *   offset 0   "\x89HDF\r\n\x1a\n"
 *   offset 8   superblock version (0..3); v0/v1: sizes of offsets and
 *              lengths at 13 and 14, base address at 24 (v0) or 28 (v1),
 *              EOF address two addresses later; v2/v3: sizes at 9 and 10,
 *              base address at 12, EOF address at 12 + 2 * offset size
 *   ...        object headers, B-trees, heaps and raw data at the
 *              addresses they name
 *
 * Keras layouts inside (FORMATS.md section 3):
 *   legacy weights  / attrs layer_names (list), backend, keras_version
 *                   /<layer> attrs weight_names (list, may be empty)
 *                   /<layer>/<weight_name> datasets ("dense/kernel:0")
 *   legacy model    / attrs model_config, training_config, backend, ...
 *                   /model_weights = the legacy weights layout above
 *                   /optimizer_weights attr weight_names (list, Keras'
 *                   order of the optimizer's variables), datasets at
 *                   those paths ("RMSprop/dense/kernel/rms:0",
 *                   "adam/dense_kernel_momentum")
 *   Keras 3         /layers/<l>/vars/<i>, /optimizer/vars/<i>, /vars;
 *                   every vars group has attribute name=<object name>
 *   .keras zip      metadata.json, config.json, model.weights.h5
 *
 * Reading. Every HDF5 image is opened through the core driver with the
 * file-image callbacks below, which hand libhdf5 our bytes without a copy:
 * the mapping (mmap mode, memory sources, stored zip members) or one owned
 * buffer kept by the set (pread mode, deflated members). The weights root
 * is /model_weights when the root has no layer_names and a model_weights
 * group exists, otherwise /. Tensor names are dataset paths relative to
 * it. The whole tree below the weights root is walked before any dataset
 * is opened: every link must be a hard link (soft, external and
 * user-defined links are refused), nesting is bounded, a group reached
 * twice is refused (cycles, aliasing bombs); a dataset reached by several
 * hard links is read once (its object address is remembered) and the
 * other names borrow its bytes, so memory does not grow with the links
 * (the amplification bound in fmt.c still counts each name's bytes).
 * Order: with layer_names, the
 * datasets its layers' weight_names list, in that order (Keras' own
 * order: trainable then non-trainable), then every other dataset in name
 * order, digit-only names compared as numbers (vars/2 before vars/10).
 * A full-model file's /optimizer_weights: the datasets its weight_names
 * lists become tensors "optimizer/vars/<i>", i the position in that list,
 * which is how Keras 3 names the same variables in .weights.h5 (the
 * fixture's model.h5 and model.weights.h5 agree bit for bit); the list
 * itself is metadata "keras.optimizer_weight_names" (a JSON array). The
 * walk of optimizer_weights obeys the same link, nesting and alias rules
 * (one group list for both trees). What a full-model file holds beside
 * model_weights and optimizer_weights, and optimizer datasets weight_names
 * does not list, are not read: their paths are metadata
 * "keras.skipped_objects" (a JSON array), which the CLI prints as a
 * warning. With layer_names, the paths its layers' weight_names list are
 * metadata "keras.weight_names" (a JSON array, in that order), so the
 * writer can restore Keras' order of a layer's weights after a trip
 * through a format that sorts tensors by name.
 * Datasets: external storage and virtual layouts are refused; contiguous
 * data must lie inside the file; any dataset must not declare more than
 * 1 MiB + 1000 times the bytes it stores (Keras' shape-bomb rule).
 * Contiguous, unfiltered, little-endian data is borrowed from the image;
 * everything else (chunked, gzip, big-endian) is read with H5Dread into an
 * owned buffer, charged to the load's amplification budget; H5Dread
 * verifies Fletcher-32 filter checksums and a mismatch fails the load with
 * the dataset's name.
 * Types: IEEE float 16/32/64, integers of 1/2/4/8 bytes,
 * h5py's bool enum {FALSE=0, TRUE=1}, h5py's complex64 compound {r, i},
 * and opaque 2-byte/1-byte data with attribute dtype="bfloat16",
 * "float8_e4m3fn" or "float8_e5m2" (Keras 3). Strings, vlen, references
 * and other compounds are refused with WV_FORMAT.
 *
 * Metadata. Each root attribute X becomes "keras.X": a string is kept as
 * is, a 1-D string list (h5py vlen or fixed NULLPAD) becomes a JSON array
 * of strings, other types are skipped. Except the attributes our writer
 * lists in the root attribute "weightvault.foreign_keys" (a vlen string
 * holding a JSON array of names, see Writing): each of those becomes the
 * entry X itself, and the marker is not kept (one that is not a JSON
 * array of strings stays ordinary metadata). The weights root's
 * layer_names of a full-model file is "keras.layer_names" as well. For .keras archives,
 * config.json is "keras.config" and metadata.json "keras.metadata".
 *
 * Writing over a template (wv_save_opts.template_path, a Keras .h5,
 * .weights.h5 or .keras file): the set written is the template's tensor
 * names, order and metadata holding the source's bytes, matched by name
 * (every source tensor named as a template tensor) or else by order and
 * shape; see template_view. It is then written as below.
 * Writing. The layout is chosen by the target name: "*.weights.h5" gives
 * the Keras 3 layout; any other name gives the legacy layout, unless it
 * ends neither in .h5 nor .hdf5 and every tensor name has the form
 * ".../vars/<digits>". A set whose names follow the other layout (legacy:
 * metadata keras.layer_names lists layers and some name is not a Keras 3
 * path; Keras 3: every name is one and there is no keras.layer_names) is
 * first translated by its model config (keras_layout.c), or refused
 * without one. Every tensor is a dataset at its name's path.
 * Legacy: the layers are the first components of the names, in the order
 * of "keras.layer_names" (a JSON array) when present, then first
 * appearance; each layer group gets weight_names (fixed-length NULLPAD
 * strings, or an empty float64 array as Keras 2 writes for weightless
 * layers), the weights root gets layer_names, and backend and
 * keras_version when the set has them (none is invented); Keras >= 2.13
 * (or, without a version, a Keras 3 config) also gets the empty group
 * top_level_model_weights; a layer's weight_names follow the
 * order of "keras.weight_names" where it names them. With
 * "keras.model_config" present the full-model layout is written (weights
 * under /model_weights) and tensors "optimizer/vars/<i>" go to
 * /optimizer_weights in the order of i, at the paths (and weight_names) of
 * "keras.optimizer_weight_names" when it names one per tensor, else at
 * their own names. "keras.skipped_objects" and "keras.weight_names" are
 * never written as attributes, "keras.optimizer_weight_names" not when
 * the optimizer_weights group holds it. Keras 3:
 * each "vars" group gets attribute name=<its parent group's name>, and
 * no "keras.X" metadata is written: Keras 3 writes no root attribute
 * (its model config lives in a .keras archive's config.json), so the
 * file has exactly Keras' tree and attributes, and turning it back into
 * the legacy layout needs the config again (wv convert --config).
 * Legacy: metadata "keras.X" becomes root attribute X (a vlen string).
 * In both layouts any other key K becomes root attribute K, and those K are listed in the root attribute
 * "weightvault.foreign_keys" (a JSON array in a vlen string, which Keras
 * ignores), so they read back as K, not "keras.K": foreign metadata
 * (mxnet.symbol, gguf.*, safetensors __metadata__ keys) survives a trip
 * through HDF5 exactly. When "keras.X" and a bare "X" both exist, the
 * first wins the attribute (and the other is dropped); a set whose own
 * metadata would take the marker's name beside foreign keys is refused.
 * What a layout cannot hold: "keras.vars" is rebuilt from the
 * vars groups in the Keras 3 layout and kept as root attribute "vars" in
 * the legacy one; keys that start with "layer_names" after the "keras."
 * prefix are reserved for the legacy layer list and not written.
 * Types: as read; BF16 and F8 as opaque with the dtype attribute, C64 as
 * the h5py compound. libhdf5 writes a skeleton file (metadata only; every
 * dataset contiguous, allocated early, never filled, so its data is a hole
 * of the sparse file) beside the temporary target; the output is then
 * streamed through the wv__wfile: skeleton bytes, each tensor's bytes
 * (cast on the fly) at its H5Dget_offset, skeleton bytes. Timestamps are
 * off, so output is deterministic.
 */
#include "core.h"
#include "fmt.h"
#include "json.h"
#include "tensor.h"
#include "keras_layout.h"
#include "zip.h"

#include <hdf5.h>
#include <pthread.h>

#define K_MAX_DEPTH 32
#define K_MAX_OBJECTS 100000
#define K_MAX_PATH 4096
#define K_MAX_LIST 1000000
#define K_MAX_JSON (64u << 20)
#define K_BOMB_SLACK (1u << 20)
#define K_BOMB_RATIO 1000u
#define K_OBJECT_HEADER_LIMIT 64512u
/* Root attribute naming the attributes that hold foreign metadata. */
#define FOREIGN_ATTR "weightvault.foreign_keys"


/* libhdf5 is started once per process (pthread_once: readers on several
 * threads may get here together). Its error stacks, and so the switch
 * that stops it printing errors, are per thread in a thread-safe build
 * (which serialises every libhdf5 call): set on every entry. */
static pthread_once_t h5_once = PTHREAD_ONCE_INIT;
static void h5_start(void)
{
    H5open();
}

static void h5_init(void)
{
    pthread_once(&h5_once, h5_start);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    H5Eclear2(H5E_DEFAULT);
}

static herr_t why_cb(unsigned n, const H5E_error2_t *e, void *ud)
{
    char *buf = ud;
    if (n == 0 && e->desc)
        snprintf(buf, 120, "%s", e->desc);
    return 0;
}

/* The innermost libhdf5 error description, for one-line messages. */
static const char *h5why(char *buf)
{
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, why_cb, buf);
    H5Eclear2(H5E_DEFAULT);
    if (buf[0] == '\0')
        snprintf(buf, 120, "libhdf5 error");
    return buf;
}

static void hclose(hid_t *id, herr_t (*fn)(hid_t))
{
    if (*id >= 0)
        fn(*id);
    *id = -1;
}

/* ---- file images without copies ------------------------------------- */
struct img {
    void *p;
    size_t len;
};

static void *img_malloc(size_t size, H5FD_file_image_op_t op, void *ud)
{
    struct img *u = ud;
    (void)op;
    return size == u->len ? u->p : NULL;
}

static void *img_memcpy(void *dest, const void *src, size_t size,
                        H5FD_file_image_op_t op, void *ud)
{
    (void)size;
    (void)op;
    (void)ud;
    return dest == src ? dest : NULL;
}

static void *img_realloc(void *p, size_t size, H5FD_file_image_op_t op,
                         void *ud)
{
    (void)p;
    (void)size;
    (void)op;
    (void)ud;
    return NULL;
}

static herr_t img_free(void *p, H5FD_file_image_op_t op, void *ud)
{
    (void)p;
    (void)op;
    (void)ud;
    return 0;
}

static void *img_udata_copy(void *ud)
{
    return ud;
}

static herr_t img_udata_free(void *ud)
{
    (void)ud;
    return 0;
}

/* ---- reading ----------------------------------------------------------- */
struct kr {
    const char *fname;
    const unsigned char *img;
    size_t img_len;
    struct img ud;
    hid_t fid;
    struct wv__err *err;
    struct wv__expand *ex;  /* the load's amplification budget          */
    /* Datasets read so far, a hash table of object address -> tensor
     * index + 1 (0: empty slot), so one reached by several hard links is
     * read once and aliased. */
    haddr_t *ds_addr;
    size_t *ds_tensor;
    size_t n_ds, cap_ds;
};

static uint64_t le_n(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Checks libhdf5 does late or not at all, with our own messages. */
static int check_superblock(const struct kr *k, unsigned *offsize,
                            unsigned *lensize, struct wv__err *err)
{
    int rc = WV_OK;
    unsigned sl_out = 8, so_out = 8;
    const unsigned char *p = k->img;
    size_t n = k->img_len;
    unsigned ver, so, sl, base_at;
    WV_CHECK(n >= 8 && memcmp(p, wv__h5_sig, 8) == 0, WV_CORRUPT,
             "%s: no HDF5 signature at offset 0", k->fname);
    WV_CHECK(n >= 16, WV_CORRUPT, "%s: HDF5 superblock truncated",
             k->fname);
    ver = p[8];
    WV_CHECK(ver <= 3, WV_FORMAT,
             "%s: HDF5 superblock version %u is not 0..3", k->fname, ver);
    if (ver <= 1) {
        so = p[13];
        sl = p[14];
        base_at = ver == 0 ? 24 : 28;
    } else {
        so = p[9];
        sl = p[10];
        base_at = 12;
    }
    WV_CHECK((so == 4 || so == 8) && (sl == 4 || sl == 8), WV_FORMAT,
             "%s: HDF5 superblock has offset size %u and length size %u "
             "(only 4 or 8 are read)",
             k->fname, so, sl);
    WV_CHECK(n >= base_at + 3u * so, WV_CORRUPT,
             "%s: HDF5 superblock truncated", k->fname);
    sl_out = sl;
    so_out = so;
    WV_CHECK(le_n(p + base_at, so) == 0, WV_FORMAT,
             "%s: HDF5 base address is not 0 (user blocks are refused)",
             k->fname);
    uint64_t eof = le_n(p + base_at + 2u * so, so);
    WV_CHECK(eof <= n || eof == (so == 8 ? UINT64_MAX : 0xffffffffu),
             WV_CORRUPT,
             "%s: HDF5 superblock end-of-file address %llu is past the end "
             "of the file (%zu bytes): truncated",
             k->fname, (unsigned long long)eof, n);
out:
    *lensize = sl_out;
    *offsize = so_out;
    return rc;
}

/* libhdf5 1.10 loops forever on a global heap collection (where vlen
 * strings live) whose object walk does not advance (H5HG deserialize:
 * a free-space object of size 0), and walks past the collection on sizes
 * that overflow. Collections are not reachable without parsing the whole
 * file, so every "GCOL" signature followed by version 1 is checked (not
 * the three reserved bytes: libhdf5 skips them unread, and a fuzzed file
 * with them set hung it): each object must advance and end inside the
 * collection. Random tensor bytes match those 5 bytes and then a size
 * that fits the file with odds below 2^-60 per offset for 8-byte lengths;
 * bytes chosen to match followed by a broken collection are refused (a
 * false alarm on hostile data, never a hang). The sandbox's CPU limit
 * (src/core/sandbox.c) is the second line against any other spin. */
static int check_global_heaps(const struct kr *k, unsigned sl,
                              struct wv__err *err)
{
    int rc = WV_OK;
    const unsigned char *p = k->img, *end = k->img + k->img_len;
    const uint64_t hdr = 8 + sl, objhdr = 8 + sl;
    while ((p = memmem(p, (size_t)(end - p), "GCOL\1", 5)) != NULL) {
        uint64_t at = (uint64_t)(p - k->img), size, o;
        if ((uint64_t)(end - p) < hdr) {
            p++;
            continue;
        }
        size = le_n(p + 8, sl);
        /* One that would end past the end of the file is no danger:
         * libhdf5 fails to read it (past the end-of-file address, which
         * check_superblock bounds). Nor is one too small for its own
         * header. Both are more likely the same eight bytes inside
         * tensor data (a Keras file is all the user's numbers), so they
         * are skipped rather than refused. */
        if (size < hdr || size > (uint64_t)(end - p)) {
            p++;
            continue;
        }
        for (o = hdr; o + objhdr <= size;) {
            unsigned idx = wv__le16(p + o);
            uint64_t osz = le_n(p + o + 8, sl), need;
            if (idx > 0) {
                WV_CHECK(osz <= size, WV_CORRUPT, "%s: global heap "
                         "collection at %llu holds an object larger than "
                         "itself", k->fname, (unsigned long long)at);
                need = objhdr + ((osz + 7) & ~(uint64_t)7);
            } else {
                need = osz;
            }
            WV_CHECK(need > 0 && need <= size - o, WV_CORRUPT,
                     "%s: global heap collection at %llu has an object of "
                     "%llu bytes at %llu that does not fit it (a libhdf5 "
                     "hang)", k->fname, (unsigned long long)at,
                     (unsigned long long)need, (unsigned long long)o);
            o += need;
        }
        p++;
    }
out:
    return rc;
}

/* libhdf5 1.10 strdup()s link names out of a local heap (old-style
 * groups) without bounding them to the heap, reading past its buffer
 * when the heap's data does not end in a NUL. Every "HEAP" signature
 * with version 0 and zero reserved bytes is checked: its data segment
 * must lie inside the file and end with a NUL byte (libhdf5's own heaps
 * always do: names are NUL-terminated and padded, free blocks are
 * zero-extended sizes). */
static int check_local_heaps(const struct kr *k, unsigned so, unsigned sl,
                             struct wv__err *err)
{
    int rc = WV_OK;
    const unsigned char *p = k->img, *end = k->img + k->img_len;
    while ((p = memmem(p, (size_t)(end - p), "HEAP\0\0\0\0", 8)) != NULL) {
        uint64_t at = (uint64_t)(p - k->img), size, addr, stop;
        if ((uint64_t)(end - p) < 8u + 2u * sl + so) {
            p++;
            continue;
        }
        size = le_n(p + 8, sl);
        addr = le_n(p + 8 + 2 * sl, so);
        WV_CHECK(size > 0 && !wv__add_overflow(addr, size, &stop) &&
                     stop <= k->img_len && k->img[stop - 1] == 0,
                 WV_CORRUPT, "%s: local heap at %llu has a data segment "
                 "that is outside the file or not NUL-terminated",
                 k->fname, (unsigned long long)at);
        p++;
    }
out:
    return rc;
}

static int kr_open(struct kr *k, struct wv__err *err)
{
    int rc = WV_OK;
    hid_t fapl = -1;
    char why[128], name[48];
    H5FD_file_image_callbacks_t cb = {
        img_malloc,     img_memcpy,     img_realloc, img_free,
        img_udata_copy, img_udata_free, NULL,
    };
    unsigned so, sl;
    k->fid = -1;
    WV_TRY(check_superblock(k, &so, &sl, err));
    WV_TRY(check_global_heaps(k, sl, err));
    WV_TRY(check_local_heaps(k, so, sl, err));
    k->ud.p = (void *)(uintptr_t)k->img;
    k->ud.len = k->img_len;
    cb.udata = &k->ud;
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    WV_CHECK(fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 &&
                 H5Pset_file_image_callbacks(fapl, &cb) >= 0 &&
                 H5Pset_file_image(fapl, k->ud.p, k->ud.len) >= 0,
             WV_ERROR, "%s: cannot set up libhdf5: %s", k->fname,
             h5why(why));
    /* A name of its own: libhdf5 takes an open of a name it already has
     * open (core driver, no backing file) for that same file, so two
     * images opened on two threads under one name would read each
     * other's bytes. k is live until the image is closed. */
    snprintf(name, sizeof name, "wv-image-%p", (void *)k);
    k->fid = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    WV_CHECK(k->fid >= 0, WV_CORRUPT, "%s: libhdf5 cannot open it: %s",
             k->fname, h5why(why));
out:
    hclose(&fapl, H5Pclose);
    return rc;
}

struct strlist {
    char **s;
    size_t n;
};

static void strlist_free(struct strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        wv__free(l->s[i]);
    wv__free(l->s);
    l->s = NULL;
    l->n = 0;
}

/* Read attribute `aid` as a list of strings. *kind: 0 not strings (the
 * list is empty), 1 a scalar string, 2 a list (an empty non-string array
 * counts as an empty list, as Keras 2 writes for weightless layers). */
static int read_strs(const struct kr *k, hid_t aid, const char *what,
                     struct strlist *out, int *kind, struct wv__err *err)
{
    int rc = WV_OK;
    hid_t tid = -1, sid = -1, mem = -1;
    char **vl = NULL;
    char *fixed = NULL;
    size_t n = 0;
    char why[128];

    *kind = 0;
    out->s = NULL;
    out->n = 0;
    tid = H5Aget_type(aid);
    sid = H5Aget_space(aid);
    WV_CHECK(tid >= 0 && sid >= 0, WV_CORRUPT,
             "%s: attribute %s cannot be read: %s", k->fname, what,
             h5why(why));
    H5S_class_t sc = H5Sget_simple_extent_type(sid);
    int rank = H5Sget_simple_extent_ndims(sid);
    hssize_t np = H5Sget_simple_extent_npoints(sid);
    WV_CHECK(np >= 0 && np <= K_MAX_LIST, WV_CORRUPT,
             "%s: attribute %s has %lld values (at most %d)", k->fname,
             what, (long long)np, K_MAX_LIST);
    if (sc == H5S_NULL || rank > 1)
        goto out;
    n = (size_t)np;
    if (H5Tget_class(tid) != H5T_STRING) {
        if (n == 0 && sc == H5S_SIMPLE)
            *kind = 2;
        goto out;
    }
    out->s = wv__calloc(n ? n : 1, sizeof *out->s);
    WV_CHECK(out->s != NULL, WV_NOMEM, "out of memory");
    htri_t var = H5Tis_variable_str(tid);
    mem = H5Tcopy(H5T_C_S1);
    WV_CHECK(var >= 0 && mem >= 0, WV_CORRUPT,
             "%s: attribute %s has a bad string type: %s", k->fname, what,
             h5why(why));
    H5Tset_cset(mem, H5Tget_cset(tid));
    if (var) {
        H5Tset_size(mem, H5T_VARIABLE);
        vl = wv__calloc(n ? n : 1, sizeof *vl);
        WV_CHECK(vl != NULL, WV_NOMEM, "out of memory");
        WV_CHECK(n == 0 || H5Aread(aid, mem, vl) >= 0, WV_CORRUPT,
                 "%s: attribute %s cannot be read: %s", k->fname, what,
                 h5why(why));
        for (size_t i = 0; i < n; i++) {
            out->s[i] = wv__strdup(vl[i] ? vl[i] : "");
            out->n = i + 1;
            WV_CHECK(out->s[i] != NULL, WV_NOMEM, "out of memory");
        }
    } else {
        size_t sz = H5Tget_size(tid);
        uint64_t total;
        WV_CHECK(sz > 0 && !wv__mul_overflow(sz, n, &total) &&
                     total <= k->img_len,
                 WV_CORRUPT,
                 "%s: attribute %s declares %zu strings of %zu bytes, "
                 "more than the file holds",
                 k->fname, what, n, sz);
        H5Tset_size(mem, sz);
        H5Tset_strpad(mem, H5Tget_strpad(tid));
        fixed = wv__malloc(total ? (size_t)total : 1);
        WV_CHECK(fixed != NULL, WV_NOMEM, "out of memory");
        WV_CHECK(n == 0 || H5Aread(aid, mem, fixed) >= 0, WV_CORRUPT,
                 "%s: attribute %s cannot be read: %s", k->fname, what,
                 h5why(why));
        bool space = H5Tget_strpad(tid) == H5T_STR_SPACEPAD;
        for (size_t i = 0; i < n; i++) {
            const char *e = fixed + i * sz;
            size_t l = strnlen(e, sz);
            while (space && l > 0 && e[l - 1] == ' ')
                l--;
            out->s[i] = wv__strndup(e, l);
            out->n = i + 1;
            WV_CHECK(out->s[i] != NULL, WV_NOMEM, "out of memory");
        }
    }
    *kind = sc == H5S_SCALAR ? 1 : 2;
out:
    if (vl) {
        H5Dvlen_reclaim(mem, sid, H5P_DEFAULT, vl);
        wv__free(vl);
    }
    wv__free(fixed);
    if (rc != WV_OK)
        strlist_free(out);
    hclose(&mem, H5Tclose);
    hclose(&tid, H5Tclose);
    hclose(&sid, H5Sclose);
    return rc;
}

/* Keras' load_attributes_from_hdf5_group: `name`, or name0, name1, ...
 * *found is false when neither exists. */
static int read_list_attr(const struct kr *k, hid_t loc, const char *where,
                          const char *name, struct strlist *out,
                          bool *found, struct wv__err *err)
{
    int rc = WV_OK;
    hid_t aid = -1;
    struct strlist part = {0};
    char an[64], what[K_MAX_PATH + 80];
    int kind;
    *found = false;
    out->s = NULL;
    out->n = 0;
    for (long chunk = -1; chunk < K_MAX_LIST; chunk++) {
        if (chunk < 0)
            snprintf(an, sizeof an, "%s", name);
        else
            snprintf(an, sizeof an, "%s%ld", name, chunk);
        htri_t ex = H5Aexists(loc, an);
        if (ex <= 0) {
            if (chunk < 0)
                continue;
            break;
        }
        snprintf(what, sizeof what, "'%s' of '%s'", an, where);
        aid = H5Aopen(loc, an, H5P_DEFAULT);
        WV_CHECK(aid >= 0, WV_CORRUPT, "%s: attribute %s cannot be opened",
                 k->fname, what);
        WV_TRY(read_strs(k, aid, what, &part, &kind, err));
        hclose(&aid, H5Aclose);
        WV_CHECK(kind == 2, WV_CORRUPT,
                 "%s: attribute %s is not a list of strings", k->fname,
                 what);
        WV_CHECK(out->n + part.n <= K_MAX_LIST, WV_CORRUPT,
                 "%s: attribute %s lists too many names", k->fname, what);
        char **s = wv__realloc(out->s, (out->n + part.n + 1) * sizeof *s);
        WV_CHECK(s != NULL, WV_NOMEM, "out of memory");
        out->s = s;
        if (part.n)
            memcpy(s + out->n, part.s, part.n * sizeof *s);
        out->n += part.n;
        wv__free(part.s);
        part.s = NULL;
        part.n = 0;
        *found = true;
        if (chunk < 0)
            break;
    }
out:
    hclose(&aid, H5Aclose);
    strlist_free(&part);
    if (rc != WV_OK)
        strlist_free(out);
    return rc;
}

static void json_list(struct wv__buf *b, const struct strlist *l)
{
    wv__buf_addc(b, '[');
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            wv__buf_adds(b, ", ");
        wv__json_put_string(b, l->s[i], strlen(l->s[i]));
    }
    wv__buf_addc(b, ']');
}

static int set_meta(const struct kr *k, wv_model *m, const char *key,
                    const char *val, size_t len, struct wv__err *err)
{
    int rc = WV_OK;
    WV_CHECK(wv__utf8_valid(key, strlen(key)) && wv__utf8_valid(val, len) &&
                 memchr(val, '\0', len) == NULL,
             WV_CORRUPT, "%s: metadata '%.100s' is not UTF-8", k->fname,
             key);
    WV_CHECK(wv_model_get_meta(m, key) == NULL, WV_CORRUPT,
             "%s: metadata '%.100s' appears twice", k->fname, key);
    rc = wv_model_set_meta(m, key, val);
    WV_CHECK(rc == WV_OK, rc, "%s: cannot keep metadata '%.100s'", k->fname,
             key);
out:
    return rc;
}

static bool all_digits(const char *s);

struct attr_it {
    const struct kr *k;
    wv_model *m;
    struct wv__err *err;
    int rc;
};

static herr_t root_attr_cb(hid_t loc, const char *name,
                           const H5A_info_t *info, void *ud)
{
    struct attr_it *it = ud;
    struct wv__err *err = it->err;
    int rc = WV_OK;
    hid_t aid = -1;
    struct strlist l = {0};
    struct wv__buf b = {0};
    char what[300];
    int kind;
    (void)info;
    /* layer_names split as layer_names0, 1, ... is joined by load_h5. */
    if (strncmp(name, "layer_names", 11) == 0 && all_digits(name + 11))
        goto out;
    snprintf(what, sizeof what, "'%.200s' of the root group", name);
    aid = H5Aopen(loc, name, H5P_DEFAULT);
    WV_CHECK(aid >= 0, WV_CORRUPT, "%s: attribute %s cannot be opened",
             it->k->fname, what);
    WV_TRY(read_strs(it->k, aid, what, &l, &kind, err));
    if (kind == 0)
        goto out;
    wv__buf_adds(&b, "keras.");
    wv__buf_adds(&b, name);
    wv__buf_addc(&b, '\0');
    size_t vat = b.len;
    if (kind == 1)
        wv__buf_adds(&b, l.s[0]);
    else
        json_list(&b, &l);
    wv__buf_addc(&b, '\0');
    WV_CHECK(!b.oom, WV_NOMEM, "out of memory");
    WV_TRY(set_meta(it->k, it->m, b.p, b.p + vat, b.len - vat - 1, err));
out:
    hclose(&aid, H5Aclose);
    strlist_free(&l);
    wv__buf_release(&b);
    it->rc = rc;
    return rc == WV_OK ? 0 : -1;
}

/* ---- the tree walk ----------------------------------------------------- */
struct child {
    char *name;
    int type;
};

struct walk {
    const struct kr *k;
    struct wv__err *err;
    int rc;
    struct strlist paths;   /* datasets, relative to the weights root */
    size_t cap;
    haddr_t *groups;        /* addresses of groups seen */
    size_t n_groups, cap_groups;
    size_t n_objects;
    /* per-group child collection */
    struct child *kids;
    size_t n_kids, cap_kids;
    const char *where;
    struct wv__buf vars;    /* {"path/vars": "name", ...} (Keras 3) */
};

static herr_t link_cb(hid_t g, const char *name, const H5L_info_t *info,
                      void *ud)
{
    struct walk *w = ud;
    struct wv__err *err = w->err;
    int rc = WV_OK;
    (void)g;
    WV_CHECK(++w->n_objects <= K_MAX_OBJECTS, WV_CORRUPT,
             "%s: more than %d links", w->k->fname, K_MAX_OBJECTS);
    WV_CHECK(info->type == H5L_TYPE_HARD, WV_FORMAT,
             "%s: '%.200s%s%.200s' is %s link (refused: only hard "
             "links are followed)",
             w->k->fname, w->where, *w->where ? "/" : "", name,
             info->type == H5L_TYPE_SOFT       ? "a soft"
             : info->type == H5L_TYPE_EXTERNAL ? "an external"
                                               : "a user-defined");
    if (w->n_kids == w->cap_kids) {
        size_t cap = w->cap_kids ? w->cap_kids * 2 : 16;
        struct child *c = wv__realloc(w->kids, cap * sizeof *c);
        WV_CHECK(c != NULL, WV_NOMEM, "out of memory");
        w->kids = c;
        w->cap_kids = cap;
    }
    w->kids[w->n_kids].name = wv__strdup(name);
    WV_CHECK(w->kids[w->n_kids].name != NULL, WV_NOMEM, "out of memory");
    w->n_kids++;
out:
    w->rc = rc;
    return rc == WV_OK ? 0 : -1;
}

static bool all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Name order, with digit-only names first and by value. */
static int natcmp(const void *a, const void *b)
{
    const char *x = ((const struct child *)a)->name;
    const char *y = ((const struct child *)b)->name;
    bool dx = all_digits(x), dy = all_digits(y);
    if (dx && dy) {
        while (*x == '0' && x[1])
            x++;
        while (*y == '0' && y[1])
            y++;
        size_t lx = strlen(x), ly = strlen(y);
        if (lx != ly)
            return lx < ly ? -1 : 1;
    } else if (dx != dy) {
        return dx ? -1 : 1;
    }
    return strcmp(x, y);
}

static int add_path(struct walk *w, const char *p)
{
    struct wv__err *err = w->err;
    int rc = WV_OK;
    if (w->paths.n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 32;
        char **s = wv__realloc(w->paths.s, cap * sizeof *s);
        WV_CHECK(s != NULL, WV_NOMEM, "out of memory");
        w->paths.s = s;
        w->cap = cap;
    }
    w->paths.s[w->paths.n] = wv__strdup(p);
    WV_CHECK(w->paths.s[w->paths.n] != NULL, WV_NOMEM, "out of memory");
    w->paths.n++;
out:
    return rc;
}

/* Keras 3 names every vars group (attribute name=<object name>), also
 * empty ones: keep them as metadata keras.vars so a writer can rebuild
 * them. */
static int note_vars(struct walk *w, hid_t g, const char *base,
                     const char *path)
{
    struct wv__err *err = w->err;
    int rc = WV_OK;
    struct strlist l = {0};
    int kind = 0;
    hid_t aid = -1;
    char what[K_MAX_PATH + 40];
    if (strcmp(base, "vars") != 0 || H5Aexists(g, "name") <= 0)
        goto out;
    snprintf(what, sizeof what, "'name' of '%s'", path);
    aid = H5Aopen(g, "name", H5P_DEFAULT);
    WV_CHECK(aid >= 0, WV_CORRUPT, "%s: attribute %s cannot be opened",
             w->k->fname, what);
    WV_TRY(read_strs(w->k, aid, what, &l, &kind, err));
    if (kind != 1)
        goto out;
    wv__buf_addc(&w->vars, w->vars.len ? ',' : '{');
    wv__json_put_string(&w->vars, path, strlen(path));
    wv__buf_addc(&w->vars, ':');
    wv__json_put_string(&w->vars, l.s[0], strlen(l.s[0]));
out:
    H5Eclear2(H5E_DEFAULT);
    hclose(&aid, H5Aclose);
    strlist_free(&l);
    return rc;
}

static int walk_group(struct walk *w, hid_t g, const char *prefix,
                      int depth)
{
    struct wv__err *err = w->err;
    const struct kr *k = w->k;
    int rc = WV_OK;
    struct child *kids = NULL;
    size_t n_kids = 0;
    char path[K_MAX_PATH];
    char why[128];
    hsize_t idx = 0;

    WV_CHECK(depth <= K_MAX_DEPTH, WV_CORRUPT,
             "%s: groups nested deeper than %d at '%.200s'", k->fname,
             K_MAX_DEPTH, prefix);
    w->kids = NULL;
    w->n_kids = w->cap_kids = 0;
    w->where = prefix;
    w->rc = WV_OK;
    herr_t hr = H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, link_cb,
                           w);
    kids = w->kids;
    n_kids = w->n_kids;
    w->kids = NULL;
    if (w->rc != WV_OK) {
        rc = w->rc;
        goto out;
    }
    WV_CHECK(hr >= 0, WV_CORRUPT, "%s: group '%.200s' cannot be listed: %s",
             k->fname, prefix, h5why(why));
    if (n_kids > 1)
        qsort(kids, n_kids, sizeof *kids, natcmp);
    for (size_t i = 0; i < n_kids; i++) {
        H5O_info_t oi;
        int pl = snprintf(path, sizeof path, "%s%s%s", prefix,
                          *prefix ? "/" : "", kids[i].name);
        WV_CHECK(pl > 0 && (size_t)pl < sizeof path, WV_CORRUPT,
                 "%s: object path longer than %d bytes under '%.200s'",
                 k->fname, K_MAX_PATH, prefix);
        WV_CHECK(H5Oget_info_by_name2(g, kids[i].name, &oi, H5O_INFO_BASIC,
                                      H5P_DEFAULT) >= 0,
                 WV_CORRUPT, "%s: object '%.200s' cannot be read: %s",
                 k->fname, path, h5why(why));
        if (oi.type == H5O_TYPE_DATASET) {
            WV_TRY(add_path(w, path));
        } else if (oi.type == H5O_TYPE_GROUP) {
            for (size_t j = 0; j < w->n_groups; j++)
                WV_CHECK(w->groups[j] != oi.addr, WV_CORRUPT,
                         "%s: group '%.200s' is reached twice (a hard-link "
                         "cycle or alias)",
                         k->fname, path);
            if (w->n_groups == w->cap_groups) {
                size_t cap = w->cap_groups ? w->cap_groups * 2 : 16;
                haddr_t *a = wv__realloc(w->groups, cap * sizeof *a);
                WV_CHECK(a != NULL, WV_NOMEM, "out of memory");
                w->groups = a;
                w->cap_groups = cap;
            }
            w->groups[w->n_groups++] = oi.addr;
            hid_t sub = H5Gopen2(g, kids[i].name, H5P_DEFAULT);
            WV_CHECK(sub >= 0, WV_CORRUPT,
                     "%s: group '%.200s' cannot be opened: %s", k->fname,
                     path, h5why(why));
            rc = note_vars(w, sub, kids[i].name, path);
            if (rc == WV_OK)
                rc = walk_group(w, sub, path, depth + 1);
            H5Gclose(sub);
            if (rc != WV_OK)
                goto out;
        }
    }
out:
    for (size_t i = 0; i < n_kids; i++)
        wv__free(kids[i].name);
    wv__free(kids);
    return rc;
}

/* ---- datasets ---------------------------------------------------------- */
static const char *class_name(H5T_class_t c)
{
    switch (c) {
    case H5T_STRING: return "string";
    case H5T_VLEN: return "variable-length";
    case H5T_REFERENCE: return "reference";
    case H5T_ARRAY: return "array";
    case H5T_BITFIELD: return "bitfield";
    case H5T_TIME: return "time";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_OPAQUE: return "opaque";
    default: return "unknown";
    }
}

/* Dataset attribute "dtype" (Keras 3 bfloat16 / float8), or "". */
static void dtype_attr(const struct kr *k, hid_t did, char *buf, size_t cap)
{
    struct wv__err e = {0};
    struct strlist l = {0};
    int kind = 0;
    buf[0] = '\0';
    if (H5Aexists(did, "dtype") <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return;
    }
    hid_t aid = H5Aopen(did, "dtype", H5P_DEFAULT);
    if (aid < 0)
        return;
    if (read_strs(k, aid, "dtype", &l, &kind, &e) == WV_OK && kind == 1)
        snprintf(buf, cap, "%s", l.s[0]);
    strlist_free(&l);
    H5Aclose(aid);
    H5Eclear2(H5E_DEFAULT);
}

static bool std_float(hid_t t, size_t size)
{
    size_t sp, ep, es, mp, ms;
    if (H5Tget_fields(t, &sp, &ep, &es, &mp, &ms) < 0)
        return false;
    size_t eb = H5Tget_ebias(t);
    if (H5Tget_offset(t) != 0 || H5Tget_precision(t) != size * 8 ||
        H5Tget_norm(t) != H5T_NORM_IMPLIED)
        return false;
    switch (size) {
    case 2: return sp == 15 && ep == 10 && es == 5 && mp == 0 && ms == 10 &&
                   eb == 15;
    case 4: return sp == 31 && ep == 23 && es == 8 && mp == 0 && ms == 23 &&
                   eb == 127;
    case 8: return sp == 63 && ep == 52 && es == 11 && mp == 0 &&
                   ms == 52 && eb == 1023;
    default: return false;
    }
}

static bool bf16_float(hid_t t)
{
    size_t sp, ep, es, mp, ms;
    if (H5Tget_fields(t, &sp, &ep, &es, &mp, &ms) < 0)
        return false;
    return H5Tget_size(t) == 2 && sp == 15 && ep == 7 && es == 8 &&
           mp == 0 && ms == 7 && H5Tget_ebias(t) == 127 &&
           H5Tget_precision(t) == 16 && H5Tget_offset(t) == 0;
}

/* Map a dataset's file type. *mem: the memory type for H5Dread; *conv:
 * the stored bytes are not already our layout. */
static int map_type(const struct kr *k, const char *name, hid_t did,
                    hid_t tid, wv_dtype *dt, hid_t *mem, bool *conv,
                    struct wv__err *err)
{
    int rc = WV_OK;
    H5T_class_t cls = H5Tget_class(tid);
    size_t size = H5Tget_size(tid);
    char da[64];
    *dt = WV_DTYPE_INVALID;
    *conv = false;
    *mem = -1;
    switch (cls) {
    case H5T_INTEGER: {
        bool sg = H5Tget_sign(tid) == H5T_SGN_2;
        WV_CHECK(H5Tget_precision(tid) == size * 8 &&
                     H5Tget_offset(tid) == 0,
                 WV_FORMAT, "%s: dataset '%.200s' has a %zu-bit integer type "
                 "with padding (refused)", k->fname, name,
                 (size_t)H5Tget_precision(tid));
        if (size == 1)
            *dt = sg ? WV_I8 : WV_U8;
        else if (size == 2)
            *dt = sg ? WV_I16 : WV_U16;
        else if (size == 4)
            *dt = sg ? WV_I32 : WV_U32;
        else if (size == 8)
            *dt = sg ? WV_I64 : WV_U64;
        WV_CHECK(*dt != WV_DTYPE_INVALID, WV_FORMAT,
                 "%s: dataset '%.200s' has %zu-byte integers (refused)",
                 k->fname, name, size);
        *conv = size > 1 && H5Tget_order(tid) != H5T_ORDER_LE;
        break;
    }
    case H5T_FLOAT:
        if (std_float(tid, size))
            *dt = size == 2 ? WV_F16 : size == 4 ? WV_F32 : WV_F64;
        else if (bf16_float(tid))
            *dt = WV_BF16;
        WV_CHECK(*dt != WV_DTYPE_INVALID, WV_FORMAT,
                 "%s: dataset '%.200s' has a non-IEEE %zu-byte float type "
                 "(refused)", k->fname, name, size);
        *conv = H5Tget_order(tid) != H5T_ORDER_LE;
        break;
    case H5T_ENUM: {
        int nm = H5Tget_nmembers(tid);
        bool ok = size == 1 && nm == 2;
        for (int i = 0; ok && i < 2; i++) {
            char *mn = H5Tget_member_name(tid, (unsigned)i);
            signed char v = -1;
            ok = mn != NULL &&
                 H5Tget_member_value(tid, (unsigned)i, &v) >= 0 &&
                 strcmp(mn, v == 0 ? "FALSE" : "TRUE") == 0 && v == i;
            if (mn)
                H5free_memory(mn);
        }
        WV_CHECK(ok, WV_FORMAT, "%s: dataset '%.200s' has an enum type that "
                 "is not h5py's bool {FALSE=0, TRUE=1} (refused)",
                 k->fname, name);
        *dt = WV_BOOL;
        break;
    }
    case H5T_OPAQUE:
        dtype_attr(k, did, da, sizeof da);
        if (size == 2 && strcmp(da, "bfloat16") == 0)
            *dt = WV_BF16;
        else if (size == 1 && strcmp(da, "float8_e4m3fn") == 0)
            *dt = WV_F8_E4M3;
        else if (size == 1 && strcmp(da, "float8_e5m2") == 0)
            *dt = WV_F8_E5M2;
        WV_CHECK(*dt != WV_DTYPE_INVALID, WV_FORMAT,
                 "%s: dataset '%.200s' holds %zu-byte opaque values without "
                 "a known dtype attribute (refused)", k->fname, name, size);
        break;
    case H5T_COMPOUND: {
        bool ok = size == 8 && H5Tget_nmembers(tid) == 2;
        for (unsigned i = 0; ok && i < 2; i++) {
            char *mn = H5Tget_member_name(tid, i);
            hid_t mt = H5Tget_member_type(tid, i);
            ok = mn != NULL && strcmp(mn, i ? "i" : "r") == 0 && mt >= 0 &&
                 H5Tget_class(mt) == H5T_FLOAT && std_float(mt, 4) &&
                 H5Tget_member_offset(tid, i) == 4 * i;
            if (ok && H5Tget_order(mt) != H5T_ORDER_LE)
                *conv = true;
            if (mn)
                H5free_memory(mn);
            if (mt >= 0)
                H5Tclose(mt);
        }
        WV_CHECK(ok, WV_FORMAT, "%s: dataset '%.200s' holds compound "
                 "values that are not h5py's complex64 {r, i} (refused)",
                 k->fname, name);
        *dt = WV_C64;
        *mem = H5Tcreate(H5T_COMPOUND, 8);
        WV_CHECK(*mem >= 0 &&
                     H5Tinsert(*mem, "r", 0, H5T_IEEE_F32LE) >= 0 &&
                     H5Tinsert(*mem, "i", 4, H5T_IEEE_F32LE) >= 0,
                 WV_NOMEM, "%s: libhdf5 cannot build a complex type",
                 k->fname);
        break;
    }
    default:
        WV_CHECK(0, WV_FORMAT,
                 "%s: dataset '%.200s' holds %s values, not numbers "
                 "(refused)", k->fname, name, class_name(cls));
    }
    WV_CHECK(size == wv_dtype_size(*dt), WV_FORMAT,
             "%s: dataset '%.200s' has %zu-byte elements", k->fname, name,
             size);
    if (*mem < 0) {
        *mem = H5Tcopy(tid);
        WV_CHECK(*mem >= 0, WV_NOMEM, "%s: libhdf5 cannot copy a type",
                 k->fname);
        if (cls == H5T_INTEGER || cls == H5T_FLOAT)
            H5Tset_order(*mem, H5T_ORDER_LE);
    }
out:
    return rc;
}

/* Slot of address `a` in the open-addressing table of datasets read so
 * far (an empty slot if absent). */
static size_t ds_slot(const struct kr *k, haddr_t a)
{
    uint64_t h = (uint64_t)a * 0x9e3779b97f4a7c15ull;
    size_t mask = k->cap_ds - 1, i = (size_t)(h >> 17) & mask;
    while (k->ds_tensor[i] != 0 && k->ds_addr[i] != a)
        i = (i + 1) & mask;
    return i;
}

/* Room for one more entry: the table stays at most half full. */
static int ds_grow(struct kr *k, struct wv__err *err)
{
    int rc = WV_OK;
    haddr_t *oa = k->ds_addr;
    size_t *ot = k->ds_tensor, ocap = k->cap_ds;
    if (2 * (k->n_ds + 1) <= k->cap_ds)
        goto out;
    size_t cap = ocap ? ocap * 2 : 64;
    k->ds_addr = wv__calloc(cap, sizeof *k->ds_addr);
    k->ds_tensor = wv__calloc(cap, sizeof *k->ds_tensor);
    if (k->ds_addr == NULL || k->ds_tensor == NULL) {
        wv__free(k->ds_addr);
        wv__free(k->ds_tensor);
        k->ds_addr = oa;
        k->ds_tensor = ot;
        oa = NULL;
        ot = NULL;
        WV_CHECK(0, WV_NOMEM, "out of memory");
    }
    k->cap_ds = cap;
    for (size_t i = 0; i < ocap; i++) {
        if (ot[i] == 0)
            continue;
        size_t j = ds_slot(k, oa[i]);
        k->ds_addr[j] = oa[i];
        k->ds_tensor[j] = ot[i];
    }
out:
    if (rc == WV_OK && oa != k->ds_addr) {
        wv__free(oa);
        wv__free(ot);
    }
    return rc;
}

/* A dataset already read under another name (several hard links to one
 * object): the new tensor borrows the first one's bytes, which the set
 * keeps once. *done tells whether `name` was handled here; if not, the
 * dataset is remembered as the tensor about to be added. */
static int alias_dataset(struct kr *k, hid_t did, const char *name,
                         wv_model *m, bool *done, struct wv__err *err)
{
    int rc = WV_OK;
    H5O_info_t oi;
    char why[128];
    *done = false;
    WV_CHECK(H5Oget_info2(did, &oi, H5O_INFO_BASIC) >= 0, WV_CORRUPT,
             "%s: dataset '%.200s' cannot be read: %s", k->fname, name,
             h5why(why));
    WV_TRY(ds_grow(k, err));
    size_t j = ds_slot(k, oi.addr);
    if (k->ds_tensor[j] == 0) {
        k->ds_addr[j] = oi.addr;
        k->ds_tensor[j] = m->n_tensors + 1; /* 1-based: 0 marks empty */
        k->n_ds++;
        goto out;
    }
    struct wv_tensor *p = &m->tensors[k->ds_tensor[j] - 1];
    if (p->owned) {
        void *keep = p->owned;
        p->owned = NULL;
        WV_CHECK(wv__model_keep(m, keep, p->nbytes, false) == WV_OK,
                 WV_NOMEM, "out of memory");
    }
    uint64_t shape[WV_MAX_DIMS];
    memcpy(shape, p->shape, sizeof shape);
    rc = wv__model_add(m, name, strlen(name), p->dtype, p->ndim, shape,
                       p->data, p->nbytes, NULL, err);
    *done = true;
out:
    return rc;
}

/* Dataset `name` (a path below `root`) as tensor `tname`. */
static int read_dataset_as(struct kr *k, hid_t root, const char *name,
                           const char *tname, wv_model *m,
                           struct wv__err *err)
{
    int rc = WV_OK;
    hid_t did = -1, tid = -1, sid = -1, dcpl = -1, mem = -1;
    void *owned = NULL;
    char why[128];
    wv_dtype dt;
    bool conv;
    int ndim = 0;
    uint64_t shape[WV_MAX_DIMS], numel, nbytes;

    did = H5Dopen2(root, name, H5P_DEFAULT);
    WV_CHECK(did >= 0, WV_CORRUPT, "%s: dataset '%.200s' cannot be opened: "
             "%s", k->fname, name, h5why(why));
    bool aliased;
    WV_TRY(alias_dataset(k, did, tname, m, &aliased, err));
    if (aliased)
        goto out;
    dcpl = H5Dget_create_plist(did);
    WV_CHECK(dcpl >= 0, WV_CORRUPT, "%s: dataset '%.200s' has no creation "
             "properties: %s", k->fname, name, h5why(why));
    H5D_layout_t lay = H5Pget_layout(dcpl);
    WV_CHECK(lay != H5D_VIRTUAL, WV_FORMAT,
             "%s: dataset '%.200s' is a virtual dataset (refused)",
             k->fname, name);
    WV_CHECK(H5Pget_external_count(dcpl) == 0, WV_FORMAT,
             "%s: dataset '%.200s' keeps its data in external files "
             "(refused)", k->fname, name);
    WV_CHECK(lay == H5D_CONTIGUOUS || lay == H5D_CHUNKED ||
                 lay == H5D_COMPACT,
             WV_CORRUPT, "%s: dataset '%.200s' has an unknown layout",
             k->fname, name);
    sid = H5Dget_space(did);
    WV_CHECK(sid >= 0, WV_CORRUPT, "%s: dataset '%.200s' has no dataspace: "
             "%s", k->fname, name, h5why(why));
    H5S_class_t sc = H5Sget_simple_extent_type(sid);
    WV_CHECK(sc == H5S_SCALAR || sc == H5S_SIMPLE, WV_FORMAT,
             "%s: dataset '%.200s' has a null dataspace (no value)",
             k->fname, name);
    if (sc == H5S_SIMPLE) {
        hsize_t d[H5S_MAX_RANK];
        ndim = H5Sget_simple_extent_ndims(sid);
        WV_CHECK(ndim >= 0 && ndim <= WV_MAX_DIMS, WV_FORMAT,
                 "%s: dataset '%.200s' has %d dimensions, more than %d",
                 k->fname, name, ndim, WV_MAX_DIMS);
        WV_CHECK(H5Sget_simple_extent_dims(sid, d, NULL) == ndim,
                 WV_CORRUPT, "%s: dataset '%.200s' has a bad dataspace",
                 k->fname, name);
        for (int i = 0; i < ndim; i++)
            shape[i] = d[i];
    }
    tid = H5Dget_type(did);
    WV_CHECK(tid >= 0, WV_CORRUPT, "%s: dataset '%.200s' has no type: %s",
             k->fname, name, h5why(why));
    WV_TRY(map_type(k, name, did, tid, &dt, &mem, &conv, err));
    WV_CHECK(wv__shape_bytes(dt, ndim, shape, &numel, &nbytes) == WV_OK &&
                 nbytes <= SIZE_MAX,
             WV_CORRUPT, "%s: dataset '%.200s' has a shape whose byte size "
             "overflows", k->fname, name);
    /* Shape bombs: the stored bytes bound what we allocate. */
    uint64_t stored = H5Dget_storage_size(did), cap;
    haddr_t off = lay == H5D_CONTIGUOUS ? H5Dget_offset(did) : HADDR_UNDEF;
    H5Eclear2(H5E_DEFAULT);
    if (wv__mul_overflow(stored, K_BOMB_RATIO, &cap) ||
        wv__add_overflow(cap, K_BOMB_SLACK, &cap))
        cap = UINT64_MAX;
    WV_CHECK(nbytes <= cap, WV_CORRUPT,
             "%s: dataset '%.200s' declares %llu bytes but stores %llu "
             "(more than %ux: shape bomb)", k->fname, name,
             (unsigned long long)nbytes, (unsigned long long)stored,
             K_BOMB_RATIO);
    if (off != HADDR_UNDEF) {
        uint64_t end;
        WV_CHECK(!wv__add_overflow(off, nbytes, &end) && end <= k->img_len,
                 WV_CORRUPT, "%s: dataset '%.200s' data [%llu, +%llu) lies "
                 "past the end of the file (%zu bytes)", k->fname, name,
                 (unsigned long long)off, (unsigned long long)nbytes,
                 k->img_len);
    }
    int nf = H5Pget_nfilters(dcpl);
    if (off != HADDR_UNDEF && nf == 0 && !conv) {
        rc = wv__model_add(m, tname, strlen(tname), dt, ndim, shape,
                           k->img + off, (size_t)nbytes, NULL, err);
        goto out;
    }
    WV_TRY(wv__expand_charge(k->ex, nbytes, name, err));
    owned = wv__malloc(nbytes ? (size_t)nbytes : 1);
    WV_CHECK(owned != NULL, WV_NOMEM, "%s: out of memory for dataset "
             "'%.200s'", k->fname, name);
    WV_CHECK(nbytes == 0 ||
                 H5Dread(did, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, owned) >= 0,
             WV_CORRUPT, "%s: dataset '%.200s' cannot be read: %s",
             k->fname, name, h5why(why));
    rc = wv__model_add(m, tname, strlen(tname), dt, ndim, shape,
                       nbytes ? owned : "", (size_t)nbytes, owned, err);
    owned = NULL;
out:
    wv__free(owned);
    hclose(&mem, H5Tclose);
    hclose(&tid, H5Tclose);
    hclose(&sid, H5Sclose);
    hclose(&dcpl, H5Pclose);
    hclose(&did, H5Dclose);
    return rc;
}

static int read_dataset(struct kr *k, hid_t root, const char *name,
                        wv_model *m, struct wv__err *err)
{
    return read_dataset_as(k, root, name, name, m, err);
}

/* order[0..l->n) = the indexes of l's paths in strcmp order. The sort
 * runs on (path, index) pairs, so its comparator needs no state outside
 * them: two files may be read on two threads at once. */
struct path_ix {
    const char *s;
    size_t i;
};
static int path_ix_cmp(const void *a, const void *b)
{
    const struct path_ix *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}

static int sort_paths(const struct strlist *l, size_t *order,
                      struct wv__err *err)
{
    int rc = WV_OK;
    size_t n = l->n;
    struct path_ix *v = wv__malloc((n ? n : 1) * sizeof *v);
    WV_CHECK(v != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        v[i] = (struct path_ix){l->s[i], i};
    if (n > 1)
        qsort(v, n, sizeof *v, path_ix_cmp);
    for (size_t i = 0; i < n; i++)
        order[i] = v[i].i;
out:
    wv__free(v);
    return rc;
}

/* Index of path `p` in the walk's list, or SIZE_MAX. `order` sorts it
 * (sort_paths). */

static size_t find_path(const struct strlist *l, const size_t *order,
                        const char *p)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(l->s[order[mid]], p);
        if (c == 0)
            return order[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

static int parse_list(const char *s, struct strlist *out);

/* Reader side of FOREIGN_ATTR: "keras.X" becomes X, in place, for every
 * X the marker lists that is not itself "keras."-prefixed or taken; the
 * marker entry is then removed. */
static int map_foreign(wv_model *m, struct wv__err *err)
{
    int rc = WV_OK;
    struct strlist l = {0};
    struct wv__buf b = {0};
    size_t at = 0;
    while (at < m->n_meta &&
           strcmp(m->meta[at].key, "keras." FOREIGN_ATTR) != 0)
        at++;
    if (at == m->n_meta || parse_list(m->meta[at].value, &l) != WV_OK)
        goto out;
    for (size_t j = 0; j < l.n; j++) {
        const char *x = l.s[j];
        if (strncmp(x, "keras.", 6) == 0 || wv_model_get_meta(m, x) != NULL)
            continue;
        b.len = 0;
        wv__buf_adds(&b, "keras.");
        wv__buf_adds(&b, x);
        wv__buf_addc(&b, '\0');
        WV_CHECK(!b.oom, WV_NOMEM, "out of memory");
        size_t i = 0;
        while (i < m->n_meta && strcmp(m->meta[i].key, b.p) != 0)
            i++;
        if (i == m->n_meta || i == at)
            continue;
        char *nk = wv__strdup(x);
        WV_CHECK(nk != NULL, WV_NOMEM, "out of memory");
        wv__free(m->meta[i].key);
        m->meta[i].key = nk;
    }
    wv__free(m->meta[at].key);
    wv__free(m->meta[at].value);
    memmove(&m->meta[at], &m->meta[at + 1],
            (m->n_meta - at - 1) * sizeof m->meta[0]);
    m->n_meta--;
out:
    strlist_free(&l);
    wv__buf_release(&b);
    return rc;
}

/* Note `what` (a path from the file's root) as an object the reader
 * skips: the list becomes metadata "keras.skipped_objects" (a JSON array),
 * which the CLI prints as a warning and the Keras writer does not write. */
static int note_skipped(struct wv__buf *b, const char *what,
                        struct wv__err *err)
{
    int rc = WV_OK;
    wv__buf_addc(b, b->len ? ',' : '[');
    wv__json_put_string(b, what, strlen(what));
    WV_CHECK(!b->oom, WV_NOMEM, "out of memory");
out:
    return rc;
}

/* Legacy full model: /optimizer_weights (attribute weight_names, Keras'
 * order of the optimizer's variables) becomes tensors optimizer/vars/<i>,
 * i the position in weight_names, as Keras 3 names the same variables in
 * .weights.h5; the names go to metadata "keras.optimizer_weight_names".
 * Every other object at the root besides model_weights, and every dataset
 * of optimizer_weights its weight_names does not list, is noted as
 * skipped. The walk shares `w`'s group list (aliases across both trees
 * are refused) and object count. */
static int load_optimizer(struct kr *k, hid_t root, struct walk *w,
                          wv_model *m, struct wv__buf *skipped,
                          struct wv__err *err)
{
    int rc = WV_OK;
    hid_t og = -1;
    struct child *kids = NULL;
    size_t n_kids = 0, *order = NULL;
    struct walk ow = {0};
    struct strlist wn = {0};
    unsigned char *used = NULL;
    char why[128], path[K_MAX_PATH], tname[64];
    hsize_t idx = 0;
    bool found = false;

    w->kids = NULL;
    w->n_kids = w->cap_kids = 0;
    w->where = "";
    w->rc = WV_OK;
    herr_t hr = H5Literate(root, H5_INDEX_NAME, H5_ITER_NATIVE, &idx,
                           link_cb, w);
    kids = w->kids;
    n_kids = w->n_kids;
    w->kids = NULL;
    WV_TRY(w->rc);
    WV_CHECK(hr >= 0, WV_CORRUPT, "%s: the root group cannot be listed: %s",
             k->fname, h5why(why));
    if (n_kids > 1)
        qsort(kids, n_kids, sizeof *kids, natcmp);
    for (size_t i = 0; i < n_kids; i++) {
        H5O_info_t oi;
        if (strcmp(kids[i].name, "model_weights") == 0)
            continue;
        if (strcmp(kids[i].name, "optimizer_weights") != 0 ||
            H5Oget_info_by_name2(root, kids[i].name, &oi, H5O_INFO_BASIC,
                                 H5P_DEFAULT) < 0 ||
            oi.type != H5O_TYPE_GROUP) {
            H5Eclear2(H5E_DEFAULT);
            WV_TRY(note_skipped(skipped, kids[i].name, err));
            continue;
        }
        for (size_t j = 0; j < w->n_groups; j++)
            WV_CHECK(w->groups[j] != oi.addr, WV_CORRUPT,
                     "%s: group 'optimizer_weights' is reached twice (a "
                     "hard-link cycle or alias)", k->fname);
        og = H5Gopen2(root, "optimizer_weights", H5P_DEFAULT);
        WV_CHECK(og >= 0, WV_CORRUPT, "%s: group 'optimizer_weights' cannot "
                 "be opened: %s", k->fname, h5why(why));
    }
    if (og < 0)
        goto out;
    ow.k = k;
    ow.err = err;
    ow.groups = w->groups;
    ow.n_groups = w->n_groups;
    ow.cap_groups = w->cap_groups;
    ow.n_objects = w->n_objects;
    rc = walk_group(&ow, og, "", 1);
    w->groups = ow.groups;
    w->n_groups = ow.n_groups;
    w->cap_groups = ow.cap_groups;
    w->n_objects = ow.n_objects;
    ow.groups = NULL;
    WV_TRY(rc);
    WV_TRY(read_list_attr(k, og, "optimizer_weights", "weight_names", &wn,
                          &found, err));
    size_t n = ow.paths.n;
    order = wv__calloc(n ? n : 1, sizeof *order);
    used = wv__calloc(n ? n : 1, 1);
    WV_CHECK(order && used, WV_NOMEM, "out of memory");
    WV_TRY(sort_paths(&ow.paths, order, err));
    for (size_t j = 0; j < wn.n; j++) {
        size_t at = find_path(&ow.paths, order, wn.s[j]);
        WV_CHECK(at != SIZE_MAX, WV_CORRUPT,
                 "%s: weight_names of 'optimizer_weights' lists '%.200s', "
                 "which is not a dataset", k->fname, wn.s[j]);
        WV_CHECK(!used[at], WV_CORRUPT,
                 "%s: weight 'optimizer_weights/%.200s' is listed twice in "
                 "weight_names", k->fname, wn.s[j]);
        used[at] = 1;
        snprintf(tname, sizeof tname, "optimizer/vars/%zu", j);
        WV_CHECK(wv_model_find(m, tname) == NULL, WV_FORMAT,
                 "%s: optimizer weight '%.200s' would be tensor '%s', which "
                 "a layer already holds", k->fname, wn.s[j], tname);
        WV_TRY(read_dataset_as(k, og, ow.paths.s[at], tname, m, err));
    }
    if (found) {
        struct wv__buf b = {0};
        json_list(&b, &wn);
        wv__buf_addc(&b, '\0');
        rc = b.oom ? WV_NOMEM
                   : set_meta(k, m, "keras.optimizer_weight_names", b.p,
                              b.len - 1, err);
        wv__buf_release(&b);
        WV_CHECK(rc == WV_OK, rc, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (used[i])
            continue;
        snprintf(path, sizeof path, "optimizer_weights/%s", ow.paths.s[i]);
        WV_TRY(note_skipped(skipped, path, err));
    }
out:
    for (size_t i = 0; i < n_kids; i++)
        wv__free(kids[i].name);
    wv__free(kids);
    wv__free(order);
    wv__free(used);
    strlist_free(&wn);
    strlist_free(&ow.paths);
    wv__free(ow.groups);
    wv__buf_release(&ow.vars);
    hclose(&og, H5Gclose);
    return rc;
}

static int load_h5(struct kr *k, wv_model *m, struct wv__err *err)
{
    int rc = WV_OK;
    hid_t root = -1, wroot = -1;
    struct walk w = {0};
    struct wv__buf skipped = {0}, order_json = {0};
    struct strlist layers = {0}, wn = {0};
    size_t *order = NULL;
    unsigned char *used = NULL;
    char why[128];
    bool legacy = false, full = false;

    w.k = k;
    w.err = err;
    WV_TRY(kr_open(k, err));
    root = H5Gopen2(k->fid, "/", H5P_DEFAULT);
    WV_CHECK(root >= 0, WV_CORRUPT, "%s: the root group cannot be opened: "
             "%s", k->fname, h5why(why));
    struct attr_it it = {k, m, err, WV_OK};
    hsize_t aidx = 0;
    herr_t hr = H5Aiterate2(root, H5_INDEX_NAME, H5_ITER_NATIVE, &aidx,
                            root_attr_cb, &it);
    WV_TRY(it.rc);
    WV_CHECK(hr >= 0, WV_CORRUPT, "%s: root attributes cannot be listed: "
             "%s", k->fname, h5why(why));
    WV_TRY(map_foreign(m, err));
    WV_TRY(read_list_attr(k, root, "/", "layer_names", &layers, &legacy,
                          err));
    if (!legacy) {
        H5L_info_t li;
        H5O_info_t oi;
        if (H5Lexists(root, "model_weights", H5P_DEFAULT) > 0 &&
            H5Lget_info(root, "model_weights", &li, H5P_DEFAULT) >= 0 &&
            li.type == H5L_TYPE_HARD &&
            H5Oget_info_by_name2(root, "model_weights", &oi, H5O_INFO_BASIC,
                                 H5P_DEFAULT) >= 0 &&
            oi.type == H5O_TYPE_GROUP)
            full = true;
        H5Eclear2(H5E_DEFAULT);
    }
    if (full) {
        wroot = H5Gopen2(root, "model_weights", H5P_DEFAULT);
        WV_CHECK(wroot >= 0, WV_CORRUPT, "%s: group 'model_weights' cannot "
                 "be opened: %s", k->fname, h5why(why));
        WV_TRY(read_list_attr(k, wroot, "model_weights", "layer_names",
                              &layers, &legacy, err));
    }
    if (legacy && wv_model_get_meta(m, "keras.layer_names") == NULL) {
        struct wv__buf b = {0};
        json_list(&b, &layers);
        wv__buf_addc(&b, '\0');
        rc = b.oom ? WV_NOMEM
                   : set_meta(k, m, "keras.layer_names", b.p, b.len - 1,
                              err);
        wv__buf_release(&b);
        WV_CHECK(rc == WV_OK, rc, "out of memory");
    }
    if (!full) {
        wroot = H5Gopen2(root, ".", H5P_DEFAULT);
        WV_CHECK(wroot >= 0, WV_CORRUPT, "%s: the root group cannot be "
                 "opened: %s", k->fname, h5why(why));
    }
    WV_TRY(walk_group(&w, wroot, "", 0));
    if (!legacy && w.vars.len) {
        wv__buf_adds(&w.vars, "}");
        wv__buf_addc(&w.vars, '\0');
        WV_CHECK(!w.vars.oom, WV_NOMEM, "out of memory");
        WV_TRY(set_meta(k, m, "keras.vars", w.vars.p, w.vars.len - 1, err));
    }
    size_t n = w.paths.n;
    order = wv__calloc(n ? n : 1, sizeof *order);
    used = wv__calloc(n ? n : 1, 1);
    WV_CHECK(order && used, WV_NOMEM, "out of memory");
    WV_TRY(sort_paths(&w.paths, order, err));
    const char *wname = full ? "model_weights" : "/";
    for (size_t li = 0; legacy && li < layers.n; li++) {
        const char *ln = layers.s[li];
        bool found;
        H5O_info_t oi;
        WV_CHECK(*ln && strlen(ln) < K_MAX_PATH && ln[0] != '/' &&
                     H5Lexists(wroot, ln, H5P_DEFAULT) > 0 &&
                     H5Oget_info_by_name2(wroot, ln, &oi, H5O_INFO_BASIC,
                                          H5P_DEFAULT) >= 0 &&
                     oi.type == H5O_TYPE_GROUP,
                 WV_CORRUPT, "%s: layer_names of '%s' lists '%.200s', which "
                 "is not a group", k->fname, wname, ln);
        hid_t lg = H5Gopen2(wroot, ln, H5P_DEFAULT);
        WV_CHECK(lg >= 0, WV_CORRUPT, "%s: layer group '%.200s' cannot be "
                 "opened: %s", k->fname, ln, h5why(why));
        rc = read_list_attr(k, lg, ln, "weight_names", &wn, &found, err);
        H5Gclose(lg);
        WV_TRY(rc);
        for (size_t j = 0; j < wn.n; j++) {
            char p[K_MAX_PATH];
            int pl = snprintf(p, sizeof p, "%s/%s", ln, wn.s[j]);
            size_t at = pl > 0 && (size_t)pl < sizeof p
                            ? find_path(&w.paths, order, p)
                            : SIZE_MAX;
            WV_CHECK(at != SIZE_MAX, WV_CORRUPT,
                     "%s: weight_names of layer '%.200s' lists '%.200s', "
                     "which is not a dataset", k->fname, ln, wn.s[j]);
            WV_CHECK(!used[at], WV_CORRUPT,
                     "%s: weight '%.200s' is listed twice in weight_names",
                     k->fname, p);
            used[at] = 1;
            wv__buf_addc(&order_json, order_json.len ? ',' : '[');
            wv__json_put_string(&order_json, p, strlen(p));
            WV_TRY(read_dataset(k, wroot, w.paths.s[at], m, err));
        }
        strlist_free(&wn);
    }
    if (order_json.len && !wv_model_get_meta(m, "keras.weight_names")) {
        wv__buf_adds(&order_json, "]");
        wv__buf_addc(&order_json, '\0');
        WV_CHECK(!order_json.oom, WV_NOMEM, "out of memory");
        WV_TRY(set_meta(k, m, "keras.weight_names", order_json.p,
                        order_json.len - 1, err));
    }
    for (size_t i = 0; i < n; i++)
        if (!used[i])
            WV_TRY(read_dataset(k, wroot, w.paths.s[i], m, err));
    if (full) {
        WV_TRY(load_optimizer(k, root, &w, m, &skipped, err));
        if (skipped.len && !wv_model_get_meta(m, "keras.skipped_objects")) {
            wv__buf_adds(&skipped, "]");
            wv__buf_addc(&skipped, '\0');
            WV_CHECK(!skipped.oom, WV_NOMEM, "out of memory");
            WV_TRY(set_meta(k, m, "keras.skipped_objects", skipped.p,
                            skipped.len - 1, err));
        }
    }
out:
    wv__buf_release(&skipped);
    wv__buf_release(&order_json);
    strlist_free(&layers);
    strlist_free(&wn);
    strlist_free(&w.paths);
    wv__free(w.groups);
    wv__buf_release(&w.vars);
    wv__free(order);
    wv__free(used);
    hclose(&wroot, H5Gclose);
    hclose(&root, H5Gclose);
    hclose(&k->fid, H5Fclose);
    H5Eclear2(H5E_DEFAULT);
    wv__free(k->ds_addr);
    wv__free(k->ds_tensor);
    k->ds_addr = NULL;
    k->ds_tensor = NULL;
    k->n_ds = k->cap_ds = 0;
    return rc;
}

/* ---- .keras archives ---------------------------------------------------- */
static int zip_meta(const struct wv__src *src, const struct wv__zip *z,
                    const char *member, const char *key, wv_model *m,
                    struct wv__err *err)
{
    int rc = WV_OK;
    const struct wv__zip_entry *e = wv__zip_find(z, member);
    const unsigned char *data = NULL;
    void *owned = NULL;
    char *s = NULL;
    if (e == NULL)
        goto out;
    WV_CHECK(e->size <= K_MAX_JSON, WV_FORMAT,
             "%s: %s is %llu bytes (at most %u are read)", src->name, member,
             (unsigned long long)e->size, K_MAX_JSON);
    WV_TRY(wv__zip_entry_data(z, e, &data, &owned, err));
    WV_CHECK(wv__utf8_valid(data, (size_t)e->size) &&
                 memchr(data, '\0', (size_t)e->size) == NULL,
             WV_CORRUPT, "%s: %s is not UTF-8 text", src->name, member);
    s = wv__strndup((const char *)data, (size_t)e->size);
    WV_CHECK(s != NULL, WV_NOMEM, "out of memory");
    rc = wv_model_set_meta(m, key, s);
    WV_CHECK(rc == WV_OK, rc, "%s: cannot keep %s", src->name, member);
out:
    wv__free(s);
    wv__free(owned);
    return rc;
}


/* The whole parse into a scratch set, for the sandbox child. */
static int load_h5_scratch(void *arg, struct wv__err *err)
{
    struct kr k = *(const struct kr *)arg;
    wv_model *m = NULL;
    k.err = err;
    if (wv_model_new(&m) != WV_OK)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    int rc = load_h5(&k, m, err);
    wv_model_free(m);
    return rc;
}

static int load_locked(const struct wv__src *src, unsigned flags,
                       wv_model *m, struct wv__err *err)
{
    int rc = WV_OK;
    struct kr k = {src->name, NULL, 0, {NULL, 0}, -1, err, src->ex,
                   NULL, NULL, 0, 0};
    struct wv__zip z;
    bool zopen = false;
    const unsigned char *data = NULL;
    void *owned = NULL;
    unsigned char head[8] = {0};
    (void)flags;

    h5_init();
    if (src->size >= 8)
        WV_TRY(wv__src_read(src, 0, head, 8, err));
    if (memcmp(head, wv__h5_sig, 8) == 0) {
        WV_CHECK(src->size <= SIZE_MAX, WV_RANGE, "%s: too large",
                 src->name);
        WV_TRY(wv__src_data(src, 0, src->size, &data, &owned, err));
        k.img_len = (size_t)src->size;
    } else {
        WV_CHECK(head[0] == 'P' && head[1] == 'K', WV_FORMAT,
                 "%s: neither an HDF5 file nor a .keras zip archive",
                 src->name);
        WV_TRY(wv__zip_open(&z, src, err));
        zopen = true;
        const struct wv__zip_entry *e = wv__zip_find(&z, "model.weights.h5");
        WV_CHECK(e != NULL, wv__zip_find(&z, "model.weights.npz") ? WV_UNSUPPORTED
                                                              : WV_FORMAT,
                 "%s: .keras archive without model.weights.h5", src->name);
        WV_CHECK(e->size <= SIZE_MAX, WV_RANGE, "%s: too large", src->name);
        WV_TRY(zip_meta(src, &z, "config.json", "keras.config", m, err));
        WV_TRY(zip_meta(src, &z, "metadata.json", "keras.metadata", m, err));
        WV_TRY(wv__zip_entry_data(&z, e, &data, &owned, err));
        k.img_len = (size_t)e->size;
    }
    if (owned) {
        rc = wv__model_keep(m, owned, k.img_len, false);
        owned = NULL;
        WV_CHECK(rc == WV_OK, rc, "out of memory");
    }
    k.img = data;
    /* libhdf5 is not hardened against hostile files: the same parse runs
     * in a child process first, so a file that would crash it is refused
     * with a message instead (src/core/sandbox.c). */
    WV_TRY(wv__sandbox_check(load_h5_scratch, &k, k.img_len, src->name,
                             err));
    WV_TRY(load_h5(&k, m, err));
    m->meta_state = wv_model_meta_count(m) ? WV__META_FROM_FILE
                                           : WV__META_NONE;
out:
    wv__free(owned);
    if (zopen)
        wv__zip_close(&z);
    return rc;
}

/* ---- writing ------------------------------------------------------------ */
struct kw {
    const char *fname;
    struct wv__err *err;
    hid_t fid;
    hid_t gcpl, dcpl_base;
    const unsigned char *opt; /* per tensor: goes to optimizer_weights */
    const size_t *rank; /* per tensor: place in keras.weight_names */
};

static bool ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* A name HDF5 can hold as a path: non-empty components, no "." */
static bool h5_path_ok(const char *s)
{
    const char *p = s;
    if (*s == '\0')
        return false;
    for (;;) {
        size_t l = strcspn(p, "/");
        if (l == 0 || (l == 1 && p[0] == '.'))
            return false;
        p += l;
        if (*p == '\0')
            return true;
        p++;
    }
}

static bool keras3_name(const char *s)
{
    const char *v = NULL;
    for (const char *p = s; (p = strstr(p, "vars/")) != NULL; p++)
        if (p == s || p[-1] == '/')
            v = p;
    return v != NULL && all_digits(v + 5);
}

/* Create every group of `path` (all of it when `whole`, else all but the
 * last component) below `loc`. */
static int ensure_groups(struct kw *w, hid_t loc, const char *path,
                         bool whole)
{
    struct wv__err *err = w->err;
    int rc = WV_OK;
    char buf[K_MAX_PATH];
    char why[128];
    size_t len = strlen(path);
    WV_CHECK(len < sizeof buf, WV_FORMAT, "%s: name '%.200s' is too long "
             "for an HDF5 path", w->fname, path);
    memcpy(buf, path, len + 1);
    for (size_t i = 0; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        if (buf[i] == '\0' && !whole)
            break;
        char c = buf[i];
        buf[i] = '\0';
        htri_t ex = H5Lexists(loc, buf, H5P_DEFAULT);
        if (ex <= 0) {
            hid_t g = H5Gcreate2(loc, buf, H5P_DEFAULT, w->gcpl,
                                 H5P_DEFAULT);
            WV_CHECK(g >= 0, WV_FORMAT, "%s: group '%.200s' cannot be "
                     "created: %s", w->fname, buf, h5why(why));
            H5Gclose(g);
        } else {
            H5O_info_t oi;
            WV_CHECK(H5Oget_info_by_name2(loc, buf, &oi, H5O_INFO_BASIC,
                                          H5P_DEFAULT) >= 0 &&
                         oi.type == H5O_TYPE_GROUP,
                     WV_FORMAT, "%s: '%.200s' is both a tensor and a "
                     "group prefix of another tensor's name", w->fname,
                     buf);
        }
        buf[i] = c;
    }
out:
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

static int put_vstr(struct kw *w, hid_t loc, const char *name,
                    const char *val, bool utf8)
{
    struct wv__err *err = w->err;
    int rc = WV_OK;
    hid_t t = -1, s = -1, a = -1;
    char why[128];
    if (H5Aexists(loc, name) > 0)
        goto out; /* first writer wins: "backend" and "keras.backend" */
    t = H5Tcopy(H5T_C_S1);
    s = H5Screate(H5S_SCALAR);
    WV_CHECK(t >= 0 && s >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 &&
                 H5Tset_cset(t, utf8 ? H5T_CSET_UTF8 : H5T_CSET_ASCII) >= 0,
             WV_ERROR, "%s: libhdf5: %s", w->fname, h5why(why));
    a = H5Acreate2(loc, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    WV_CHECK(a >= 0 && H5Awrite(a, t, &val) >= 0, WV_FORMAT,
             "%s: attribute '%.200s' cannot be written: %s", w->fname, name,
             h5why(why));
out:
    H5Eclear2(H5E_DEFAULT);
    hclose(&a, H5Aclose);
    hclose(&s, H5Sclose);
    hclose(&t, H5Tclose);
    return rc;
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* A list as Keras 2 / numpy S<n> writes it: fixed-length NULLPAD strings
 * of the longest length, or an empty float64 array for an empty list.
 * Lists over HDF5_OBJECT_HEADER_LIMIT bytes are split as name0, name1. */
static int put_list(struct kw *w, hid_t loc, const char *name,
                    char *const *s, size_t n)
{
    struct wv__err *err = w->err;
    int rc = WV_OK;
    hid_t t = -1, sp = -1, a = -1;
    char *buf = NULL;
    char why[128], an[64];
    size_t maxl = 1, chunks = 1;
    for (size_t i = 0; i < n; i++)
        if (strlen(s[i]) > maxl)
            maxl = strlen(s[i]);
    if (n == 0) {
        hsize_t d0 = 0;
        sp = H5Screate_simple(1, &d0, NULL);
        a = H5Acreate2(loc, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT,
                       H5P_DEFAULT);
        WV_CHECK(a >= 0, WV_FORMAT, "%s: attribute '%s' cannot be written: "
                 "%s", w->fname, name, h5why(why));
        goto out;
    }
    while (chunks < n && (n / chunks + 1) * maxl > K_OBJECT_HEADER_LIMIT)
        chunks++;
    if ((n + chunks - 1) / chunks * maxl > K_OBJECT_HEADER_LIMIT)
        chunks = n;
    buf = wv__calloc(n, maxl);
    WV_CHECK(buf != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * maxl, s[i], strlen(s[i]));
    t = H5Tcopy(H5T_C_S1);
    WV_CHECK(t >= 0 && H5Tset_size(t, maxl) >= 0 &&
                 H5Tset_strpad(t, H5T_STR_NULLPAD) >= 0,
             WV_ERROR, "%s: libhdf5: %s", w->fname, h5why(why));
    /* numpy.array_split: the first n % chunks parts get one more. */
    size_t at = 0;
    for (size_t c = 0; c < chunks; c++) {
        size_t cnt = n / chunks + (c < n % chunks ? 1 : 0);
        hsize_t d = cnt;
        if (chunks == 1)
            snprintf(an, sizeof an, "%s", name);
        else
            snprintf(an, sizeof an, "%s%zu", name, c);
        sp = H5Screate_simple(1, &d, NULL);
        a = H5Acreate2(loc, an, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        WV_CHECK(a >= 0 && H5Awrite(a, t, buf + at * maxl) >= 0, WV_FORMAT,
                 "%s: attribute '%s' cannot be written: %s", w->fname, an,
                 h5why(why));
        hclose(&a, H5Aclose);
        hclose(&sp, H5Sclose);
        at += cnt;
    }
out:
    wv__free(buf);
    hclose(&a, H5Aclose);
    hclose(&sp, H5Sclose);
    hclose(&t, H5Tclose);
    return rc;
}

static hid_t file_type(wv_dtype dt)
{
    hid_t t = -1;
    switch (dt) {
    case WV_BOOL: {
        signed char v0 = 0, v1 = 1;
        t = H5Tenum_create(H5T_STD_I8LE);
        if (t >= 0) {
            H5Tenum_insert(t, "FALSE", &v0);
            H5Tenum_insert(t, "TRUE", &v1);
        }
        return t;
    }
    case WV_U8: return H5Tcopy(H5T_STD_U8LE);
    case WV_I8: return H5Tcopy(H5T_STD_I8LE);
    case WV_U16: return H5Tcopy(H5T_STD_U16LE);
    case WV_I16: return H5Tcopy(H5T_STD_I16LE);
    case WV_U32: return H5Tcopy(H5T_STD_U32LE);
    case WV_I32: return H5Tcopy(H5T_STD_I32LE);
    case WV_U64: return H5Tcopy(H5T_STD_U64LE);
    case WV_I64: return H5Tcopy(H5T_STD_I64LE);
    case WV_F16:
        /* h5py's half: IEEE binary16, little-endian. */
        t = H5Tcopy(H5T_IEEE_F32LE);
        if (t >= 0 && (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 ||
                       H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0)) {
            H5Tclose(t);
            t = -1;
        }
        return t;
    case WV_F32: return H5Tcopy(H5T_IEEE_F32LE);
    case WV_F64: return H5Tcopy(H5T_IEEE_F64LE);
    case WV_C64:
        t = H5Tcreate(H5T_COMPOUND, 8);
        if (t >= 0) {
            H5Tinsert(t, "r", 0, H5T_IEEE_F32LE);
            H5Tinsert(t, "i", 4, H5T_IEEE_F32LE);
        }
        return t;
    case WV_BF16: return H5Tcreate(H5T_OPAQUE, 2);
    case WV_F8_E4M3:
    case WV_F8_E5M2: return H5Tcreate(H5T_OPAQUE, 1);
    default: return -1;
    }
}

static const char *dtype_tag(wv_dtype dt)
{
    switch (dt) {
    case WV_BF16: return "bfloat16";
    case WV_F8_E4M3: return "float8_e4m3fn";
    case WV_F8_E5M2: return "float8_e5m2";
    default: return NULL;
    }
}

struct region {
    uint64_t off, len;
    size_t t;
    wv_dtype to;
};

static int region_cmp(const void *a, const void *b)
{
    const struct region *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static int create_dataset(struct kw *w, hid_t loc, const struct wv_tensor *t,
                          wv_dtype to, struct region *r)
{
    struct wv__err *err = w->err;
    int rc = WV_OK;
    hid_t ft = -1, sp = -1, d = -1;
    hsize_t dims[WV_MAX_DIMS];
    char why[128];
    WV_TRY(ensure_groups(w, loc, t->name, false));
    for (int i = 0; i < t->ndim; i++)
        dims[i] = t->shape[i];
    ft = file_type(to);
    sp = t->ndim ? H5Screate_simple(t->ndim, dims, NULL)
                 : H5Screate(H5S_SCALAR);
    WV_CHECK(ft >= 0 && sp >= 0, WV_ERROR, "%s: libhdf5 type for '%.200s': "
             "%s", w->fname, t->name, h5why(why));
    WV_CHECK(H5Lexists(loc, t->name, H5P_DEFAULT) <= 0, WV_FORMAT,
             "%s: tensor '%.200s' is also a group prefix of another tensor's "
             "name", w->fname, t->name);
    d = H5Dcreate2(loc, t->name, ft, sp, H5P_DEFAULT, w->dcpl_base,
                   H5P_DEFAULT);
    WV_CHECK(d >= 0, WV_FORMAT, "%s: dataset '%.200s' cannot be created: %s",
             w->fname, t->name, h5why(why));
    if (dtype_tag(to))
        WV_TRY(put_vstr(w, d, "dtype", dtype_tag(to), true));
    r->len = wv_dtype_size(to) * wv_tensor_numel(t);
    r->to = to;
    r->off = UINT64_MAX;
    if (r->len) {
        haddr_t off = H5Dget_offset(d);
        WV_CHECK(off != HADDR_UNDEF, WV_ERROR, "%s: libhdf5 did not "
                 "allocate dataset '%.200s'", w->fname, t->name);
        r->off = off;
    }
out:
    H5Eclear2(H5E_DEFAULT);
    hclose(&d, H5Dclose);
    hclose(&sp, H5Sclose);
    hclose(&ft, H5Tclose);
    return rc;
}

/* Parse a JSON array of strings (metadata keras.layer_names). */
static int parse_list(const char *s, struct strlist *out)
{
    struct wv__err e = {0};
    struct wv__json j = {s, s, s + strlen(s), "keras.layer_names", &e};
    size_t cap = 0;
    out->s = NULL;
    out->n = 0;
    if (wv__json_expect(&j, '[') != WV_OK)
        goto bad;
    if (wv__json_eat(&j, ']'))
        return WV_OK;
    do {
        char *v = NULL;
        size_t l;
        if (wv__json_string(&j, &v, &l) != WV_OK)
            goto bad;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            char **n = wv__realloc(out->s, cap * sizeof *n);
            if (n == NULL) {
                wv__free(v);
                goto bad;
            }
            out->s = n;
        }
        out->s[out->n++] = v;
    } while (wv__json_eat(&j, ','));
    if (wv__json_expect(&j, ']') == WV_OK)
        return WV_OK;
bad:
    strlist_free(out);
    return WV_CORRUPT;
}

/* The leading decimal number of s (0 if none; saturates). */
static unsigned atoi_ok(const char *s)
{
    unsigned v = 0;
    for (; *s >= '0' && *s <= '9' && v < 100000; s++)
        v = v * 10 + (unsigned)(*s - '0');
    return v;
}

static int first_comp(const char *name, char *buf, size_t cap)
{
    size_t l = strcspn(name, "/");
    if (name[l] == '\0' || l >= cap)
        return -1;
    memcpy(buf, name, l);
    buf[l] = '\0';
    return 0;
}

static int write_legacy_attrs(struct kw *w, const wv_model *m, hid_t wroot,
                              struct strlist *out)
{
    struct wv__err *err = w->err;
    int rc = WV_OK;
    struct strlist layers = {0};
    char **wn = NULL;
    size_t *ix = NULL;
    size_t cap = 0;
    char lb[K_MAX_PATH];
    const char *v;

    v = wv_model_get_meta(m, "keras.layer_names");
    if (v == NULL || parse_list(v, &layers) != WV_OK) {
        layers.s = NULL;
        layers.n = 0;
    }
    cap = layers.n;
    for (size_t i = 0; i < m->n_tensors; i++) {
        if ((w->opt && w->opt[i]) ||
            first_comp(m->tensors[i].name, lb, sizeof lb) != 0)
            continue;
        bool have = false;
        for (size_t j = 0; j < layers.n && !have; j++)
            have = strcmp(layers.s[j], lb) == 0;
        if (have)
            continue;
        if (layers.n == cap) {
            cap = cap ? cap * 2 : 16;
            char **s = wv__realloc(layers.s, cap * sizeof *s);
            WV_CHECK(s != NULL, WV_NOMEM, "out of memory");
            layers.s = s;
        }
        layers.s[layers.n] = wv__strdup(lb);
        WV_CHECK(layers.s[layers.n] != NULL, WV_NOMEM, "out of memory");
        layers.n++;
    }
    for (size_t j = 0; j < layers.n; j++)
        WV_CHECK(h5_path_ok(layers.s[j]) && strchr(layers.s[j], '/') == NULL,
                 WV_FORMAT, "%s: layer name '%.200s' in keras.layer_names "
                 "cannot be an HDF5 group name", w->fname, layers.s[j]);
    WV_TRY(put_list(w, wroot, "layer_names", layers.s, layers.n));
    /* Keras 2.13 and later also write the model's own (usually no)
     * weights in a group that layer_names does not list. */
    v = wv_model_get_meta(m, "keras.keras_version");
    const char *cfg = wv_model_get_meta(m, "keras.model_config");
    if (cfg == NULL)
        cfg = wv_model_get_meta(m, "keras.config");
    /* Without a version: Keras 3 when its config is Keras 3's (entries
     * carry "module"). */
    if (v == NULL)
        v = cfg != NULL && strstr(cfg, "\"module\"") != NULL ? "3." : "";
    if ((v[0] >= '3' && v[1] == '.') ||
        (v[0] == '2' && v[1] == '.' && atoi_ok(v + 2) >= 13)) {
        bool have = false;
        for (size_t j = 0; j < layers.n && !have; j++)
            have = strcmp(layers.s[j], "top_level_model_weights") == 0;
        for (size_t i = 0; i < m->n_tensors && !have; i++)
            have = strncmp(m->tensors[i].name, "top_level_model_weights",
                           23) == 0;
        if (!have) {
            WV_TRY(ensure_groups(w, wroot, "top_level_model_weights", true));
            hid_t g = H5Gopen2(wroot, "top_level_model_weights", H5P_DEFAULT);
            WV_CHECK(g >= 0, WV_FORMAT, "%s: group top_level_model_weights "
                     "cannot be opened", w->fname);
            rc = put_list(w, g, "weight_names", NULL, 0);
            H5Gclose(g);
            WV_TRY(rc);
        }
    }
    wn = wv__calloc(m->n_tensors ? m->n_tensors : 1, sizeof *wn);
    ix = wv__calloc(m->n_tensors ? m->n_tensors : 1, sizeof *ix);
    WV_CHECK(wn != NULL && ix != NULL, WV_NOMEM, "out of memory");
    for (size_t j = 0; j < layers.n; j++) {
        size_t n = 0, ll = strlen(layers.s[j]);
        for (size_t i = 0; i < m->n_tensors; i++) {
            const char *tn = m->tensors[i].name;
            if (w->opt && w->opt[i])
                continue;
            if (strncmp(tn, layers.s[j], ll) == 0 && tn[ll] == '/')
                ix[n++] = i;
        }
        WV_TRY(wv__keras_sort_by_rank(ix, n, w->rank, err));
        for (size_t i = 0; i < n; i++)
            wn[i] = (char *)(uintptr_t)(m->tensors[ix[i]].name + ll + 1);
        WV_TRY(ensure_groups(w, wroot, layers.s[j], true));
        hid_t g = H5Gopen2(wroot, layers.s[j], H5P_DEFAULT);
        WV_CHECK(g >= 0, WV_FORMAT, "%s: layer group '%.200s' cannot be "
                 "opened", w->fname, layers.s[j]);
        rc = put_list(w, g, "weight_names", wn, n);
        H5Gclose(g);
        WV_TRY(rc);
    }
out:
    wv__free(wn);
    wv__free(ix);
    if (rc == WV_OK) {
        *out = layers;
        layers.s = NULL;
        layers.n = 0;
    }
    strlist_free(&layers);
    return rc;
}

/* Keras 3 vars groups: those recorded in metadata keras.vars (with their
 * names, also empty ones) and every ".../vars" prefix of a tensor name
 * (named after its parent group), created and named in walk order so the
 * bytes do not depend on the order of the metadata. */
struct vgroup {
    char *path, *name;
};

static int natcmp_n(const char *x, size_t lx, const char *y, size_t ly);

static int vg_cmp(const void *a, const void *b)
{
    const char *x = ((const struct vgroup *)a)->path;
    const char *y = ((const struct vgroup *)b)->path;
    for (;;) {
        size_t lx = strcspn(x, "/"), ly = strcspn(y, "/");
        int c = natcmp_n(x, lx, y, ly);
        if (c)
            return c;
        x += lx;
        y += ly;
        if (*x == '\0' || *y == '\0')
            return (*x != '\0') - (*y != '\0');
        x++;
        y++;
    }
}

static int vg_add(struct vgroup **v, size_t *n, size_t *cap, char *path,
                  char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i].path, path) == 0) {
            wv__free(path);
            wv__free(name);
            return WV_OK;
        }
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        struct vgroup *g = wv__realloc(*v, c * sizeof *g);
        if (g == NULL) {
            wv__free(path);
            wv__free(name);
            return WV_NOMEM;
        }
        *v = g;
        *cap = c;
    }
    (*v)[(*n)++] = (struct vgroup){path, name};
    return WV_OK;
}

static int name_vars(struct kw *w, const wv_model *m, hid_t root)
{
    struct wv__err *err = w->err;
    int rc = WV_OK;
    struct vgroup *v = NULL;
    size_t n = 0, cap = 0;
    const char *rec = wv_model_get_meta(m, "keras.vars");
    if (rec) {
        struct wv__err e = {0};
        struct wv__json j = {rec, rec, rec + strlen(rec), "keras.vars", &e};
        if (wv__json_expect(&j, '{') == WV_OK) {
            char *path = NULL;
            size_t pl;
            struct wv__json_obj it = WV__JSON_OBJ(&j);
            while (wv__json_obj_next(&it, &path, &pl)) {
                char *name = NULL;
                size_t l;
                if (wv__json_string(&j, &name, &l) != WV_OK) {
                    wv__free(name);
                    break;
                }
                if (!h5_path_ok(path) || strlen(path) >= K_MAX_PATH ||
                    strlen(name) != l) {
                    wv__free(name);
                    continue;
                }
                char *taken = path;
                path = NULL; /* vg_add() owns both from here */
                WV_CHECK(vg_add(&v, &n, &cap, taken, name) == WV_OK,
                         WV_NOMEM, "out of memory");
            }
            wv__free(path);
        }
    }
    for (size_t i = 0; i < m->n_tensors; i++) {
        const char *tn = m->tensors[i].name;
        for (const char *p = tn; (p = strstr(p, "vars/")) != NULL; p++) {
            if (p != tn && p[-1] != '/')
                continue;
            size_t l = (size_t)(p - tn) + 4;
            const char *par = tn, *q = tn;
            size_t pl = 0;
            while (q + 1 < p) {
                size_t c = strcspn(q, "/");
                if (q + c + 1 >= p) {
                    par = q;
                    pl = c;
                    break;
                }
                q += c + 1;
            }
            char *path = wv__strndup(tn, l), *name = wv__strndup(par, pl);
            WV_CHECK(path && name, WV_NOMEM, "out of memory");
            WV_CHECK(vg_add(&v, &n, &cap, path, name) == WV_OK, WV_NOMEM,
                     "out of memory");
        }
    }
    if (n > 1)
        qsort(v, n, sizeof *v, vg_cmp);
    for (size_t i = 0; i < n; i++) {
        WV_TRY(ensure_groups(w, root, v[i].path, true));
        hid_t g = H5Gopen2(root, v[i].path, H5P_DEFAULT);
        H5Eclear2(H5E_DEFAULT);
        if (g < 0)
            continue;
        rc = put_vstr(w, g, "name", v[i].name, true); /* h5py: UTF-8 */
        H5Gclose(g);
        WV_TRY(rc);
    }
out:
    for (size_t i = 0; i < n; i++) {
        wv__free(v[i].path);
        wv__free(v[i].name);
    }
    wv__free(v);
    return rc;
}

static int copy_range(int fd, struct wv__wfile *f, uint64_t from,
                      uint64_t to, unsigned char *buf, size_t cap,
                      const char *what, struct wv__err *err)
{
    int rc = WV_OK;
    while (from < to) {
        size_t n = to - from < cap ? (size_t)(to - from) : cap;
        ssize_t r = pread(fd, buf, n, (off_t)from);
        WV_CHECK(r > 0, WV_IO, "%s: reading the HDF5 skeleton: %s", what,
                 r < 0 ? strerror(errno) : "short read");
        wv__wfile_write(f, buf, (size_t)r);
        from += (uint64_t)r;
    }
out:
    return rc;
}

/* The legacy weights root: layer groups and their attributes. */
static int legacy_root(struct kw *w, const wv_model *m, hid_t wroot,
                       struct strlist *layers)
{
    int rc = WV_OK;
    const char *be = wv_model_get_meta(m, "keras.backend");
    const char *kv = wv_model_get_meta(m, "keras.keras_version");
    WV_TRY(write_legacy_attrs(w, m, wroot, layers));
    /* The source's own, or none: an invented version would be a claim
     * about who wrote the file. */
    if (be != NULL)
        WV_TRY(put_vstr(w, wroot, "backend", be, !is_ascii(be)));
    if (kv != NULL)
        WV_TRY(put_vstr(w, wroot, "keras_version", kv, !is_ascii(kv)));
out:
    return rc;
}

/* natcmp on counted strings. */
static int natcmp_n(const char *x, size_t lx, const char *y, size_t ly)
{
    bool dx = lx > 0, dy = ly > 0;
    for (size_t i = 0; i < lx; i++)
        dx = dx && x[i] >= '0' && x[i] <= '9';
    for (size_t i = 0; i < ly; i++)
        dy = dy && y[i] >= '0' && y[i] <= '9';
    if (dx && dy) {
        while (lx > 1 && *x == '0') {
            x++;
            lx--;
        }
        while (ly > 1 && *y == '0') {
            y++;
            ly--;
        }
        if (lx != ly)
            return lx < ly ? -1 : 1;
    } else if (dx != dy) {
        return dx ? -1 : 1;
    }
    int c = memcmp(x, y, lx < ly ? lx : ly);
    return c ? c : (lx > ly) - (lx < ly);
}

/* Depth-first walk order of two paths: component by component. The sorts
 * below run on records carrying what their comparators need (a name or an
 * index, and the tensor's position), so they need no state outside them
 * (reentrant). */
struct name_ix {
    const char *name;
    long key;
    size_t i;
};
static int path_cmp(const void *a, const void *b)
{
    const struct name_ix *rx = a, *ry = b;
    const char *x = rx->name, *y = ry->name;
    for (;;) {
        size_t lx = strcspn(x, "/"), ly = strcspn(y, "/");
        int c = natcmp_n(x, lx, y, ly);
        if (c)
            return c;
        x += lx;
        y += ly;
        if (*x == '\0' || *y == '\0') {
            if (*x != '\0' || *y != '\0')
                return (*x != '\0') - (*y != '\0');
            return (rx->i > ry->i) - (rx->i < ry->i);
        }
        x++;
        y++;
    }
}

static const char *attr_name(const char *key)
{
    return strncmp(key, "keras.", 6) == 0 ? key + 6 : key;
}

static int meta_cmp(const void *a, const void *b)
{
    const struct wv__meta *x = *(const struct wv__meta *const *)a;
    const struct wv__meta *y = *(const struct wv__meta *const *)b;
    int c = strcmp(attr_name(x->key), attr_name(y->key));
    /* "keras.X" before a bare "X": it wins the attribute name. */
    return c ? c : (x->key != attr_name(x->key) ? -1 : 1);
}

/* The i of a tensor named optimizer/vars/<i> (canonical digits), or -1. */
static long opt_index(const char *name)
{
    const char *d = name + 15;
    if (strncmp(name, "optimizer/vars/", 15) != 0 || !all_digits(d) ||
        (d[0] == '0' && d[1] != '\0') || strlen(d) > 6)
        return -1;
    return (long)atoi_ok(d);
}

static int opt_cmp(const void *a, const void *b)
{
    const struct name_ix *x = a, *y = b;
    if (x->key != y->key)
        return (x->key > y->key) - (x->key < y->key);
    return (x->i > y->i) - (x->i < y->i);
}

/* Sort the tensor indexes ix[0..n) of m with cmp (path_cmp: by name;
 * opt_cmp: by optimizer index), through name_ix records. */
static int sort_tensors(const wv_model *m, size_t *ix, size_t n,
                        int (*cmp)(const void *, const void *),
                        struct wv__err *err)
{
    int rc = WV_OK;
    struct name_ix *v = NULL;
    if (n < 2)
        return WV_OK;
    v = wv__malloc(n * sizeof *v);
    WV_CHECK(v != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *name = m->tensors[ix[i]].name;
        v[i] = (struct name_ix){name, opt_index(name), ix[i]};
    }
    qsort(v, n, sizeof *v, cmp);
    for (size_t i = 0; i < n; i++)
        ix[i] = v[i].i;
out:
    wv__free(v);
    return rc;
}

/* Full model: the optimizer_weights group as Keras writes it, its
 * weight_names attribute listing the tensors optimizer/vars/<i> in the
 * order of i, under the names of metadata keras.optimizer_weight_names
 * when it names exactly one per index (else under their tensor names).
 * The datasets are created at those paths below the group; ord[0..no)
 * lists the optimizer tensors in index order. */
static int write_optimizer(struct kw *w, const wv_model *m, hid_t root,
                           const size_t *ord, size_t no,
                           struct region *regs, const wv_save_opts *opts)
{
    struct wv__err *err = w->err;
    int rc = WV_OK;
    struct strlist names = {0};
    char **wn = NULL;
    hid_t og = -1;
    const char *v = wv_model_get_meta(m, "keras.optimizer_weight_names");
    bool named = v != NULL && parse_list(v, &names) == WV_OK;
    for (size_t k = 0; named && k < no; k++) {
        long ix = opt_index(m->tensors[ord[k]].name);
        named = ix >= 0 && (size_t)ix < names.n && names.n == no &&
                h5_path_ok(names.s[ix]);
    }
    wn = wv__calloc(no ? no : 1, sizeof *wn);
    WV_CHECK(wn != NULL, WV_NOMEM, "out of memory");
    WV_TRY(ensure_groups(w, root, "optimizer_weights", true));
    og = H5Gopen2(root, "optimizer_weights", H5P_DEFAULT);
    WV_CHECK(og >= 0, WV_FORMAT, "%s: group optimizer_weights cannot be "
             "opened", w->fname);
    for (size_t k = 0; k < no; k++) {
        struct wv_tensor t = m->tensors[ord[k]];
        if (named)
            t.name = names.s[opt_index(t.name)];
        wn[k] = (char *)(uintptr_t)t.name;
        WV_TRY(create_dataset(w, og, &t, wv__cast_target(t.dtype, opts->cast),
                              &regs[k]));
        regs[k].t = ord[k];
    }
    WV_TRY(put_list(w, og, "weight_names", wn, no));
out:
    hclose(&og, H5Gclose);
    wv__free(wn);
    strlist_free(&names);
    return rc;
}

/* Does the set follow the legacy layout (the reader's layer list, names
 * that are not Keras 3 paths)? */
static bool legacy_set(const wv_model *m)
{
    struct strlist l = {0};
    const char *v = wv_model_get_meta(m, "keras.layer_names");
    bool yes = v != NULL && parse_list(v, &l) == WV_OK && l.n > 0;
    strlist_free(&l);
    for (size_t i = 0; yes && i < m->n_tensors; i++)
        if (!keras3_name(m->tensors[i].name))
            return true;
    return false;
}

/* Does it follow the Keras 3 layout (every name a Keras 3 path, no
 * legacy layer list)? */
static bool keras3_set(const wv_model *m)
{
    if (m->n_tensors == 0 || wv_model_get_meta(m, "keras.layer_names"))
        return false;
    for (size_t i = 0; i < m->n_tensors; i++)
        if (!keras3_name(m->tensors[i].name))
            return false;
    return true;
}

static int save_locked(const wv_model *m, struct wv__wfile *f,
                       const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    wv_model *view = NULL; /* m under the target layout's names */
    struct kw w = {f->path, err, -1, -1, -1, NULL, NULL};
    unsigned char *opt = NULL;
    size_t n_opt = 0, *rank = NULL;
    hid_t root = -1, wroot = -1;
    struct region *regs = NULL;
    struct strlist layers = {0};
    size_t *ord = NULL;
    const struct wv__meta **mord = NULL;
    struct wv__buf foreign = {0}; /* JSON array of foreign keys */
    unsigned char *buf = NULL;
    char *skel = NULL;
    int fd = -1;
    char why[128];
    bool keras3, full;
    size_t n = m->n_tensors;

    h5_init();
    WV_TRY(wv__check_plain_dtypes(m, opts->cast, f->path, err));
    WV_CHECK(!ends_with(f->path, ".keras"), WV_UNSUPPORTED,
             "%s: writing .keras archives is not supported (write "
             ".weights.h5)", f->path);
    keras3 = ends_with(f->path, ".weights.h5");
    if (!keras3 && !ends_with(f->path, ".h5") &&
        !ends_with(f->path, ".hdf5") && n > 0) {
        keras3 = true;
        for (size_t i = 0; i < n && keras3; i++)
            keras3 = keras3_name(m->tensors[i].name);
    }
    /* A layout the names do not follow: translated by the model config
     * (keras_layout.c), or refused. */
    if (keras3 ? legacy_set(m) : keras3_set(m)) {
        WV_TRY(wv__keras_translate(m, keras3 ? WV__KERAS_TO_K3
                                             : WV__KERAS_TO_LEGACY,
                                   f->path, &view, err));
        m = view;
        n = m->n_tensors;
    }
    full = !keras3 && wv_model_get_meta(m, "keras.model_config") != NULL;
    for (size_t i = 0; i < n; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        WV_CHECK(h5_path_ok(t->name) && strlen(t->name) < K_MAX_PATH,
                 WV_FORMAT, "%s: tensor name '%.200s' cannot be an HDF5 "
                 "path (empty or '.' component, or too long)", f->path,
                 t->name);
        WV_CHECK(!full || strcmp(t->name, "model_weights") != 0, WV_FORMAT,
                 "%s: tensor name 'model_weights' clashes with the group",
                 f->path);
    }
    opt = wv__calloc(n ? n : 1, 1);
    WV_CHECK(opt != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; full && i < n; i++)
        if (opt_index(m->tensors[i].name) >= 0) {
            opt[i] = 1;
            n_opt++;
        }
    w.opt = opt;
    rank = wv__malloc((n ? n : 1) * sizeof *rank);
    WV_CHECK(rank != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        rank[i] = SIZE_MAX;
    const char *wnv = wv_model_get_meta(m, "keras.weight_names");
    struct strlist wnl = {0};
    if (!keras3 && wnv && parse_list(wnv, &wnl) == WV_OK) {
        for (size_t j = 0; j < wnl.n; j++) {
            const wv_tensor *t = wv_model_find(m, wnl.s[j]);
            if (t && rank[t - m->tensors] == SIZE_MAX)
                rank[t - m->tensors] = j;
        }
        strlist_free(&wnl);
    }
    w.rank = rank;
    size_t sl = strlen(f->tmp_path);
    skel = wv__malloc(sl + 8);
    regs = wv__calloc(n ? n : 1, sizeof *regs);
    buf = wv__malloc(1 << 20);
    WV_CHECK(skel && regs && buf, WV_NOMEM, "out of memory");
    memcpy(skel, f->tmp_path, sl);
    memcpy(skel + sl, ".skel", 6);
    w.gcpl = H5Pcreate(H5P_GROUP_CREATE);
    w.dcpl_base = H5Pcreate(H5P_DATASET_CREATE);
    WV_CHECK(w.gcpl >= 0 && w.dcpl_base >= 0 &&
                 H5Pset_obj_track_times(w.gcpl, 0) >= 0 &&
                 H5Pset_obj_track_times(w.dcpl_base, 0) >= 0 &&
                 H5Pset_layout(w.dcpl_base, H5D_CONTIGUOUS) >= 0 &&
                 H5Pset_alloc_time(w.dcpl_base, H5D_ALLOC_TIME_EARLY) >= 0 &&
                 H5Pset_fill_time(w.dcpl_base, H5D_FILL_TIME_NEVER) >= 0,
             WV_ERROR, "%s: libhdf5 properties: %s", f->path, h5why(why));
    w.fid = H5Fcreate(skel, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    WV_CHECK(w.fid >= 0, WV_IO, "%s: libhdf5 cannot create %s: %s",
             f->path, skel, h5why(why));
    root = H5Gopen2(w.fid, "/", H5P_DEFAULT);
    WV_CHECK(root >= 0, WV_ERROR, "%s: libhdf5: %s", f->path, h5why(why));
    if (!keras3 && !full)
        WV_TRY(legacy_root(&w, m, root, &layers));
    /* Root attributes from the metadata, created in name order so that
     * the bytes do not depend on the metadata order (a reread lists
     * attributes by name). */
    mord = wv__calloc(m->n_meta ? m->n_meta : 1, sizeof *mord);
    WV_CHECK(mord != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < m->n_meta; i++)
        mord[i] = &m->meta[i];
    if (m->n_meta > 1)
        qsort(mord, m->n_meta, sizeof *mord, meta_cmp);
    for (size_t i = 0; i < m->n_meta; i++) {
        const char *key = mord[i]->key, *val = mord[i]->value;
        const char *an = strncmp(key, "keras.", 6) == 0 ? key + 6 : key;
        if (*an == '\0' || strncmp(an, "layer_names", 11) == 0 ||
            strcmp(key, "keras.skipped_objects") == 0 ||
            strcmp(key, "keras.weight_names") == 0 ||
            (n_opt && strcmp(key, "keras.optimizer_weight_names") == 0) ||
            (keras3 && an != key))
            continue;
        if (an == key) { /* foreign: listed if it gets the attribute */
            if (H5Aexists(root, an) > 0)
                continue;
            wv__buf_addc(&foreign, foreign.len ? ',' : '[');
            wv__json_put_string(&foreign, key, strlen(key));
        }
        WV_TRY(put_vstr(&w, root, an, val, !is_ascii(val)));
    }
    if (foreign.len) {
        wv__buf_adds(&foreign, "]");
        wv__buf_addc(&foreign, '\0');
        WV_CHECK(!foreign.oom, WV_NOMEM, "out of memory");
        WV_CHECK(H5Aexists(root, FOREIGN_ATTR) <= 0, WV_FORMAT,
                 "%s: metadata would take the root attribute '"
                 FOREIGN_ATTR "', which is reserved for the list of "
                 "foreign metadata keys", f->path);
        WV_TRY(put_vstr(&w, root, FOREIGN_ATTR, foreign.p,
                        !is_ascii(foreign.p)));
    }
    if (full) {
        WV_TRY(ensure_groups(&w, root, "model_weights", true));
        wroot = H5Gopen2(root, "model_weights", H5P_DEFAULT);
    } else {
        wroot = H5Gopen2(root, ".", H5P_DEFAULT);
    }
    WV_CHECK(wroot >= 0, WV_ERROR, "%s: libhdf5: %s", f->path, h5why(why));
    if (full)
        WV_TRY(legacy_root(&w, m, wroot, &layers));
    /* Datasets in the order a reader lists them, so the bytes depend on
     * the set's content only: per layer of layer_names in set order, then
     * the rest in walk order (legacy); walk order (Keras 3). */
    ord = wv__calloc(n ? n : 1, sizeof *ord);
    WV_CHECK(ord != NULL, WV_NOMEM, "out of memory");
    size_t no = 0;
    for (size_t j = 0; !keras3 && j < layers.n; j++) {
        size_t ll = strlen(layers.s[j]), from = no;
        for (size_t i = 0; i < n; i++)
            if (!opt[i] && strncmp(m->tensors[i].name, layers.s[j], ll) == 0 &&
                m->tensors[i].name[ll] == '/')
                ord[no++] = i;
        WV_TRY(wv__keras_sort_by_rank(ord + from, no - from, rank, err));
    }
    size_t first_rest = no;
    for (size_t i = 0; i < n; i++)
        if (!opt[i] && (keras3 || strchr(m->tensors[i].name, '/') == NULL))
            ord[no++] = i;
    WV_CHECK(no + n_opt == n, WV_ERROR, "%s: tensors do not map onto layers",
             f->path);
    size_t first_opt = no;
    for (size_t i = 0; i < n; i++)
        if (opt[i])
            ord[no++] = i;
    WV_TRY(sort_tensors(m, ord + first_opt, n_opt, opt_cmp, err));
    WV_TRY(sort_tensors(m, ord + first_rest, first_opt - first_rest,
                        path_cmp, err));
    for (size_t k = 0; k < first_opt; k++) {
        size_t i = ord[k];
        const struct wv_tensor *t = &m->tensors[i];
        wv_dtype to = wv__cast_target(t->dtype, opts->cast);
        WV_TRY(create_dataset(&w, wroot, t, to, &regs[k]));
        regs[k].t = i;
    }
    if (keras3)
        WV_TRY(name_vars(&w, m, wroot));
    if (n_opt)
        WV_TRY(write_optimizer(&w, m, root, ord + first_opt, n_opt,
                               regs + first_opt, opts));
    hclose(&wroot, H5Gclose);
    hclose(&root, H5Gclose);
    herr_t hr = H5Fclose(w.fid);
    w.fid = -1;
    WV_CHECK(hr >= 0, WV_IO, "%s: libhdf5 cannot finish %s: %s", f->path,
             skel, h5why(why));
    /* Stream: skeleton bytes around each tensor's reserved range. */
    struct stat st;
    fd = open(skel, O_RDONLY | O_CLOEXEC);
    WV_CHECK(fd >= 0 && fstat(fd, &st) == 0, WV_IO, "%s: %s: %s", f->path,
             skel, strerror(errno));
    if (n > 1)
        qsort(regs, n, sizeof *regs, region_cmp);
    uint64_t at = 0, size = (uint64_t)st.st_size;
    for (size_t i = 0; i < n; i++) {
        const struct region *r = &regs[i];
        if (r->len == 0)
            continue;
        WV_CHECK(r->off >= at && r->off + r->len <= size, WV_ERROR,
                 "%s: libhdf5 placed tensor '%.200s' outside its file",
                 f->path, m->tensors[r->t].name);
        WV_TRY(copy_range(fd, f, at, r->off, buf, 1 << 20, f->path, err));
        wv__wfile_tensor(f, &m->tensors[r->t], r->to);
        at = r->off + r->len;
    }
    WV_TRY(copy_range(fd, f, at, size, buf, 1 << 20, f->path, err));
    rc = f->rc;
out:
    hclose(&wroot, H5Gclose);
    hclose(&root, H5Gclose);
    hclose(&w.fid, H5Fclose);
    hclose(&w.gcpl, H5Pclose);
    hclose(&w.dcpl_base, H5Pclose);
    H5Eclear2(H5E_DEFAULT);
    if (fd >= 0)
        close(fd);
    if (skel)
        unlink(skel);
    wv__free(skel);
    wv__free(regs);
    wv__free(ord);
    wv__free(opt);
    wv__free(rank);
    strlist_free(&layers);
    wv__free(mord);
    wv__buf_release(&foreign);
    wv__free(buf);
    wv_model_free(view);
    return rc;
}

/* ---- a template's layout, filled ----------------------------------------- */
/* "dtype [shape]" of a tensor, for messages. */
static void describe(const struct wv_tensor *t, wv_dtype dt, char *buf,
                     size_t cap)
{
    int k = snprintf(buf, cap, "%s ", wv_dtype_name(dt));
    if (k > 0 && (size_t)k < cap)
        wv__shape_str(t->ndim, t->shape, buf + k, cap - (size_t)k);
}

/* keras.vars (a JSON object path -> name) without the optimizer's
 * groups, into b (NUL-terminated; b->oom on failure). An entry that is
 * not a string ends the copy, as name_vars() ends its reading there. */
static void vars_without_optimizer(const char *rec, struct wv__buf *b)
{
    struct wv__err e = {0};
    struct wv__json j = {rec, rec, rec + strlen(rec), "keras.vars", &e};
    char *path = NULL, *name = NULL;
    size_t pl, l;
    wv__buf_addc(b, '{');
    if (wv__json_expect(&j, '{') == WV_OK) {
        struct wv__json_obj it = WV__JSON_OBJ(&j);
        bool first = true;
        while (wv__json_obj_next(&it, &path, &pl)) {
            if (wv__json_string(&j, &name, &l) != WV_OK)
                break;
            if (strncmp(path, "optimizer/", 10) != 0) {
                if (!first)
                    wv__buf_addc(b, ',');
                first = false;
                wv__json_put_string(b, path, pl);
                wv__buf_addc(b, ':');
                wv__json_put_string(b, name, l);
            }
            wv__free(path);
            wv__free(name);
            path = name = NULL;
        }
    }
    wv__free(path);
    wv__free(name);
    wv__buf_adds(b, "}");
    wv__buf_addc(b, '\0');
}

/* Is every tensor of m named as one of the template t's? */
static bool in_template(const wv_model *t, const wv_model *m)
{
    for (size_t i = 0; i < m->n_tensors; i++)
        if (wv_model_find(t, m->tensors[i].name) == NULL)
            return false;
    return m->n_tensors > 0;
}

/* Build in *out the set to write for m over the Keras file `tpl`
 * (wv_save_opts.template_path): the template's tensor names, order and
 * metadata (so its groups, layer_names/weight_names, vars names,
 * weightless layers and root attributes; and m's keras.config when the
 * template has no model config), each tensor's bytes m's.
 * Matching: by name when every tensor of m is named as one of the
 * template's; otherwise by order and shape, m's i-th tensor filling the
 * template's i-th. Either way m must fill every weight of the model, and
 * the template's optimizer state (optimizer/vars/<i>) too, or none of it
 * (then it is left out, with its metadata). A tensor fills a template
 * tensor of the same shape and dtype (after opts->cast). WV_FORMAT, one
 * line naming the first tensor that does not fit, otherwise. Runs before
 * h5_mu is taken: the template is read by the Keras reader. */
static int template_view(const wv_model *m, const char *tpl,
                         const wv_save_opts *opts, const char *fname,
                         wv_model **out, struct wv__err *err)
{
    int rc = WV_OK;
    wv_model *t = NULL, *v = NULL;
    struct wv__err te = {0};
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    const struct wv_tensor **pick = NULL; /* per template tensor: m's */
    struct wv__buf vars = {0}; /* keras.vars without the optimizer */
    size_t nt, n = m->n_tensors, n_model = 0, n_opt_m = 0;
    bool by_name, with_opt;
    char a[64], b[64];

    *out = NULL;
    lo.format = WV_FMT_KERAS;
    rc = wv__load_file(tpl, &lo, &t, &te, false);
    if (rc != WV_OK) {
        rc = wv__seterr(err, rc, "%s: template: %s", fname, te.msg);
        goto out;
    }
    nt = t->n_tensors;
    for (size_t j = 0; j < nt; j++)
        if (opt_index(t->tensors[j].name) < 0)
            n_model++;
    WV_CHECK(nt > 0, WV_FORMAT, "%s: template %s holds no weights", fname,
             tpl);
    pick = wv__calloc(nt, sizeof *pick);
    WV_CHECK(pick != NULL, WV_NOMEM, "out of memory");
    by_name = in_template(t, m);
    if (by_name) {
        for (size_t i = 0; i < n; i++)
            if (opt_index(m->tensors[i].name) >= 0)
                n_opt_m++;
        with_opt = n_opt_m > 0;
        for (size_t j = 0; j < nt; j++) {
            const struct wv_tensor *x = &t->tensors[j];
            if (!with_opt && opt_index(x->name) >= 0)
                continue;
            pick[j] = wv_model_find(m, x->name);
            WV_CHECK(pick[j] != NULL, WV_FORMAT,
                     "%s: template tensor '%.150s' has no tensor of that "
                     "name in the source (filled by name)", fname, x->name);
        }
    } else {
        WV_CHECK(n == nt || n == n_model, WV_FORMAT,
                 "%s: count mismatch: template %.100s holds %zu tensors "
                 "(%zu without optimizer state), the source %zu (filled by "
                 "order and shape)", fname, tpl, nt, n_model, n);
        with_opt = n == nt;
        for (size_t j = 0, i = 0; j < nt; j++)
            if (with_opt || opt_index(t->tensors[j].name) < 0)
                pick[j] = &m->tensors[i++];
    }
    for (size_t j = 0; j < nt; j++) {
        const struct wv_tensor *x = &t->tensors[j], *y = pick[j];
        if (y == NULL)
            continue;
        wv_dtype to = wv__cast_target(y->dtype, opts->cast);
        bool fits = to == x->dtype && y->ndim == x->ndim;
        for (int d = 0; fits && d < x->ndim; d++)
            fits = x->shape[d] == y->shape[d];
        if (!fits) {
            describe(y, to, a, sizeof a);
            describe(x, x->dtype, b, sizeof b);
            WV_CHECK(0, WV_FORMAT, "%s: tensor '%.80s' (%s) does not fit "
                     "template tensor '%.80s' (%s) (filled by %s)", fname,
                     y->name, a, x->name, b,
                     by_name ? "name" : "order and shape");
        }
    }
    WV_CHECK(wv_model_new(&v) == WV_OK, WV_NOMEM, "out of memory");
    for (size_t j = 0; j < nt; j++) {
        const struct wv_tensor *x = &t->tensors[j], *y = pick[j];
        if (y != NULL)
            WV_TRY(wv__model_add(v, x->name, strlen(x->name), y->dtype,
                                 y->ndim, y->shape, y->data, y->nbytes,
                                 NULL, err));
    }
    for (size_t i = 0; i < t->n_meta; i++) {
        const char *key = t->meta[i].key;
        const char *val = t->meta[i].value;
        if (!with_opt && strcmp(key, "keras.optimizer_weight_names") == 0)
            continue;
        if (!with_opt && strcmp(key, "keras.vars") == 0) {
            vars_without_optimizer(val, &vars);
            WV_CHECK(!vars.oom, WV_NOMEM, "out of memory");
            val = vars.p;
        }
        WV_CHECK(wv_model_set_meta(v, key, val) == WV_OK, WV_NOMEM,
                 "out of memory");
    }
    /* a config given for the source (wv convert --config) serves a
     * template that holds none, to translate its layout */
    const char *cfg = wv_model_get_meta(m, "keras.config");
    if (cfg && !wv_model_get_meta(t, "keras.config") &&
        !wv_model_get_meta(t, "keras.model_config"))
        WV_CHECK(wv_model_set_meta(v, "keras.config", cfg) == WV_OK,
                 WV_NOMEM, "out of memory");
    v->meta_state = t->meta_state;
    v->source_format = t->source_format;
    *out = v;
    v = NULL;
out:
    wv__free(pick);
    wv__buf_release(&vars);
    wv_model_free(v);
    wv_model_free(t);
    return rc;
}

/* ---- one libhdf5 user at a time ------------------------------------------ */
/* Every call into libhdf5 from here runs under h5_mu, one load or save at
 * a time. libhdf5 (a thread-safe build) serialises its calls anyway; the
 * mutex is for the sandbox: load forks a child that parses with libhdf5,
 * and a child forked while another thread was inside libhdf5 would
 * inherit libhdf5's lock held and hang until the sandbox's wall-clock
 * limit. (A program that calls libhdf5 itself on other threads meanwhile
 * can still cause that: WV_SANDBOX=0 avoids the fork.) */
static pthread_mutex_t h5_mu = PTHREAD_MUTEX_INITIALIZER;

static int load(const struct wv__src *src, unsigned flags, wv_model *m,
                struct wv__err *err)
{
    pthread_mutex_lock(&h5_mu);
    int rc = load_locked(src, flags, m, err);
    pthread_mutex_unlock(&h5_mu);
    return rc;
}

static int save(const wv_model *m, struct wv__wfile *f,
                const wv_save_opts *opts, struct wv__err *err)
{
    wv_model *view = NULL;
    const char *tpl = NULL;
    if (opts->struct_size >= offsetof(wv_save_opts, template_path) +
                                 sizeof opts->template_path)
        tpl = opts->template_path;
    if (tpl != NULL && *tpl) {
        int rc = template_view(m, tpl, opts, f->path, &view, err);
        if (rc != WV_OK)
            return rc;
        m = view;
    }
    pthread_mutex_lock(&h5_mu);
    int rc = save_locked(m, f, opts, err);
    pthread_mutex_unlock(&h5_mu);
    wv_model_free(view);
    return rc;
}

const struct wv__format_ops wv__fmt_keras = {
    WV_FMT_KERAS, "keras", ".weights.h5 .h5 .hdf5 .keras", wv__keras_probe,
    load, save,
    WV__SHARDS_INDEX, NULL,
};
