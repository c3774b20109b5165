/*
 * keras_off.c -- Keras HDF5 in a library built without libhdf5
 * (WV_WITH_HDF5=OFF): compiled instead of keras.c, it keeps the format in
 * the table (its name, its extensions, the HDF5 signature and the .keras
 * archive's members) so that reading or writing one says which option left
 * it out, rather than "not a recognised weights file" or another format
 * claiming it (a .keras archive is also a zip, as npz is).
 */
#include "core.h"
#include "fmt.h"
#include "tensor.h"
#include "zip.h"

static const unsigned char h5sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n',
                                       0x1a, '\n'};

static int has_member(const struct wv__zip *z, const char *name)
{
    for (size_t i = 0; i < z->n_ents; i++)
        if (strcmp(z->ents[i].name, name) == 0)
            return 1;
    return 0;
}

static int probe(const struct wv__src *src, const unsigned char *h,
                 size_t n)
{
    if (n >= 8 && memcmp(h, h5sig, 8) == 0)
        return 1;
    if (n < 4 || h[0] != 'P' || h[1] != 'K' || h[2] != 3 || h[3] != 4)
        return 0;
    struct wv__err e = {0};
    struct wv__zip z;
    if (wv__zip_open(&z, src, &e) != WV_OK)
        return 0;
    int yes = has_member(&z, "model.weights.h5") &&
              has_member(&z, "config.json");
    wv__zip_close(&z);
    return yes;
}

static int load(const struct wv__src *src, unsigned flags, wv_model *m,
                struct wv__err *err)
{
    (void)flags;
    (void)m;
    return wv__seterr(err, WV_UNSUPPORTED,
                      "%s: Keras HDF5: built without HDF5 support "
                      "(WV_WITH_HDF5=OFF)",
                      src->name);
}

static int save(const wv_model *m, struct wv__wfile *f,
                const wv_save_opts *opts, struct wv__err *err)
{
    (void)m;
    (void)opts;
    return wv__seterr(err, WV_UNSUPPORTED,
                      "%s: Keras HDF5: built without HDF5 support "
                      "(WV_WITH_HDF5=OFF)",
                      f->path);
}

const struct wv__format_ops wv__fmt_keras = {
    WV_FMT_KERAS, "keras", ".weights.h5 .h5 .hdf5 .keras", probe, load, save,
};
