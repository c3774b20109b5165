/*
 * wv_int.h -- all of the library's internal headers at once, for the unit
 * tests and fuzz harnesses only. Files in src/ must not include it: each
 * includes the headers of the layers it uses (scripts/layers.sh checks).
 */
#ifndef WV_INT_H
#define WV_INT_H
#include "core.h"
#include "json.h"
#include "tensor.h"
#include "fmt.h"
#endif /* WV_INT_H */
