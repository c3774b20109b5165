/*
 * npz.c -- NumPy's .npz archives (numpy/lib/npyio.py savez, numpy 1.24).
 *
 *   a zip archive (see zip.c for the container layout) whose members are
 *   .npy images (see npy.c) named '<key>.npy':
 *     np.savez             ZIP_STORED members
 *     np.savez_compressed  ZIP_DEFLATED members
 *   numpy opens every member with force_zip64=True, so its local headers
 *   carry ZIP64 extra fields even for small arrays.
 *
 * Reading: the archive is validated by wv__zip_open(), which refuses
 * member names that could escape a directory ('..' components, a leading
 * '/', backslashes, control characters); each member must be
 * named '<key>.npy' with a non-empty key and becomes tensor '<key>' (keys
 * may contain '/'); anything else is refused with the member's name, so a
 * zip that is not an npz (a PyTorch checkpoint, say) gets a clear message.
 * Stored members are parsed in place: C-order little-endian data is
 * borrowed from the mapping. Deflated members are inflated into an owned
 * buffer which the tensor keeps. Tensors keep the archive's central
 * directory order.
 *
 * Writing: one member '<name>.npy' per tensor in set order (a tensor name
 * that could escape a directory, as above, is refused), holding exactly
 * the bytes np.save would write; stored by default (like np.savez),
 * deflated with WV_SAVE_COMPRESS (like np.savez_compressed). The deflater
 * streams the tensor in slices into the file, so memory use does not grow
 * with the tensor size. ZIP64 fields appear only where sizes or offsets
 * need them.
 */
#include "core.h"
#include "fmt.h"
#include "tensor.h"
#include "zip.h"


static int npz_probe(const struct wv__src *src, const unsigned char *h,
                      size_t n)
{
    uint64_t size = src->size;
    (void)size;
    return n >= 4 && h[0] == 'P' && h[1] == 'K' &&
           ((h[2] == 3 && h[3] == 4) || (h[2] == 5 && h[3] == 6));
}

static int npz_load(const struct wv__src *src, unsigned flags, wv_model *m,
                    struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__zip z;
    (void)flags;

    WV_TRY(wv__zip_open(&z, src, err));
    for (size_t i = 0; i < z.n_ents; i++) {
        const struct wv__zip_entry *e = &z.ents[i];
        WV_CHECK(e->name_len > 4 &&
                     memcmp(e->name + e->name_len - 4, ".npy", 4) == 0,
                 WV_FORMAT,
                 "%s: member '%.200s' is not a .npy file (member not .npy: "
                 "an npz holds only '<name>.npy' arrays)",
                 src->name, e->name);
        const unsigned char *data;
        void *owned;
        WV_TRY(wv__zip_entry_data(&z, e, &data, &owned, err));
        char what[512];
        snprintf(what, sizeof what, "%s: member '%.200s'", src->name,
                 e->name);
        /* the member shares the archive's amplification budget: a copy
         * the .npy reader makes (Fortran order, byte swap) is charged */
        struct wv__src ms = {-1,   e->size, data, what, NULL,
                             NULL, NULL,    0,    src->ex, false};
        WV_TRY(wv__npy_load_src(&ms, e->name, e->name_len - 4, owned, m,
                                err));
    }
out:
    wv__zip_close(&z);
    return rc;
}

static int npz_save(const wv_model *m, struct wv__wfile *f,
                    const wv_save_opts *opts, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__zipw w;
    struct wv__buf hdr = {0};
    char *mname = NULL;
    int method = (opts->flags & WV_SAVE_COMPRESS) ? WV__ZIP_DEFLATED
                                                  : WV__ZIP_STORED;

    wv__zipw_init(&w, f, err);
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        wv_dtype to = wv__cast_target(t->dtype, opts->cast);
        hdr.len = 0;
        WV_TRY(wv__npy_header(t, to, &hdr, err));
        size_t nl = strlen(t->name);
        const char *why = wv__path_name_bad(t->name, nl);
        if (why) {
            char esc[256];
            wv__esc_name(t->name, nl, esc, sizeof esc);
            WV_CHECK(0, WV_FORMAT,
                     "%s: tensor '%s': name unsafe for an npz member (%s)",
                     f->path, esc, why);
        }
        WV_CHECK(nl <= 0xffff - 4, WV_RANGE,
                 "tensor '%.200s': name too long for a zip member", t->name);
        mname = wv__malloc(nl + 5);
        WV_CHECK(mname != NULL, WV_NOMEM, "out of memory");
        memcpy(mname, t->name, nl);
        memcpy(mname + nl, ".npy", 5);
        uint64_t out_bytes = wv__cast_nbytes(t, to);
        WV_TRY(wv__zipw_begin(&w, mname, method, hdr.len + out_bytes, 1));
        wv__zipw_write(&w, hdr.p, hdr.len);
        wv__zipw_tensor(&w, t, to);
        WV_TRY(wv__zipw_end(&w));
        wv__free(mname);
        mname = NULL;
    }
    WV_TRY(wv__zipw_finish(&w));
    rc = f->rc;
out:
    if (rc == WV_OK && w.rc != WV_OK)
        rc = w.rc;
    wv__zipw_release(&w);
    wv__buf_release(&hdr);
    wv__free(mname);
    return rc;
}

const struct wv__format_ops wv__fmt_npz = {
    WV_FMT_NPZ, "npz", ".npz", npz_probe, npz_load, npz_save,
    WV__SHARDS_INDEX, NULL,
};
