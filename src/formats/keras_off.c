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
    WV_FMT_KERAS, "keras", ".weights.h5 .h5 .hdf5 .keras", wv__keras_probe,
    load, save,
    WV__SHARDS_INDEX, NULL,
};
