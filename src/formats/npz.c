/* TEMPORARY STUB -- to be replaced by the real npz implementation. */
#include "wv_int.h"
static int probe(const unsigned char *h, size_t n, uint64_t size) { (void)h; (void)n; (void)size; return 0; }
static int load(const struct wv__src *s, unsigned fl, wv_model *m, struct wv__err *err) { (void)s; (void)fl; (void)m; return wv__seterr(err, WV_UNSUPPORTED, "not yet"); }
const struct wv__format_ops wv__fmt_npz = { WV_FMT_NPZ, "npz", ".npz", probe, load, NULL };
