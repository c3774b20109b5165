/*
 * keras_layout.h -- private interface of keras_layout.c: translation of a
 * set between Keras 2's legacy HDF5 layout and Keras 3's .weights.h5
 * layout, driven by the model config. Used by the Keras writer (keras.c)
 * only.
 */
#ifndef WV_KERAS_LAYOUT_H
#define WV_KERAS_LAYOUT_H

#include "core.h"
#include "fmt.h"
#include "json.h"
#include "tensor.h"

/* Which way a set is translated before it is written. */
enum wv__keras_xlate {
    WV__KERAS_TO_K3 = 1,     /* legacy names -> layers/<c>/vars/<i> */
    WV__KERAS_TO_LEGACY = 2  /* layers/<c>/vars/<i> -> <layer>/<weight> */
};

/* Build in *out a new set holding m's tensors (borrowing their bytes)
 * under the names of the other layout, with the metadata that layout's
 * writer needs (keras.vars for Keras 3; keras.layer_names and
 * keras.weight_names for the legacy layout). `fname` names the target in
 * messages. WV_FORMAT (one line) when m holds no model config
 * (keras.model_config or keras.config), when the config is not valid,
 * names a layer the set does not hold or misses one it holds, or gives a
 * layer another number of weights than the set. */
int wv__keras_translate(const wv_model *m, enum wv__keras_xlate way,
                        const char *fname, wv_model **out,
                        struct wv__err *err);

/* Sort the tensor indexes ix[0..n) by rank[ix] (all 0 if rank is NULL),
 * then by index: Keras' order of a layer's weights. Reentrant. */
int wv__keras_sort_by_rank(size_t *ix, size_t n, const size_t *rank,
                           struct wv__err *err);

#endif
