/*
 * keras_probe.c -- recognising a Keras file: the HDF5 signature, or a
 * .keras archive (a zip holding model.weights.h5 and config.json). Built
 * with or without libhdf5, so keras.c and its stand-in keras_off.c claim
 * the same files.
 */
#include "core.h"
#include "fmt.h"
#include "zip.h"

const unsigned char wv__h5_sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a,
                                     '\n'};

int wv__keras_probe(const struct wv__src *src, const unsigned char *h,
                    size_t n)
{
    if (n >= 8 && memcmp(h, wv__h5_sig, 8) == 0)
        return 1;
    if (n < 4 || h[0] != 'P' || h[1] != 'K' || h[2] != 3 || h[3] != 4)
        return 0;
    struct wv__err e = {0};
    struct wv__zip z;
    if (wv__zip_open(&z, src, &e) != WV_OK)
        return 0;
    int yes = wv__zip_find(&z, "model.weights.h5") != NULL &&
              wv__zip_find(&z, "config.json") != NULL;
    wv__zip_close(&z);
    return yes;
}
