/*
 * fuzz_onnx.c -- libFuzzer harness for the ONNX reader (onnx.c): the
 * probe's top-level walk, ModelProto, GraphProto with nodes and their
 * GRAPH/GRAPHS attributes (nested subgraphs), TensorProto with raw and
 * typed fields packed or not, sparse initializers scattered to dense, and
 * external_data keys (the location checks; from memory no file is opened).
 *
 * Properties: no crash, leak or sanitizer report; a rejection always
 * comes with a message; parsing is deterministic (a second parse gives the
 * same status, tensor count and message).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wv_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wv__err e1 = {0}, e2 = {0};
    size_t n1 = 0, n2 = 0;
    int r1 = wv__onnx_check(data, size, &n1, &e1);
    int r2 = wv__onnx_check(data, size, &n2, &e2);
    if (r1 != r2 || n1 != n2 || strcmp(e1.msg, e2.msg) != 0) {
        fprintf(stderr, "onnx parse is not deterministic\n");
        abort();
    }
    if (r1 != WV_OK && r1 != WV_NOMEM && e1.msg[0] == '\0') {
        fprintf(stderr, "rejected (%d) without a message\n", r1);
        abort();
    }
    return 0;
}
