/*
 * fuzz_pickle.c -- libFuzzer harness for the restricted pickle reader
 * alone (pickle.c): every input runs as one pickle, plain and then with
 * placeholders for unknown classes (as --objects and TorchScript); on
 * success the resulting object graph is walked (bounded, as it may share
 * nodes or contain cycles) and its scalars are formatted as metadata
 * would be.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wv_int.h"
#include "../src/formats/pickle.h"

static size_t walk(const struct wv__pk_obj *o, int depth, size_t budget)
{
    char buf[64];
    if (depth > 40 || budget == 0)
        return budget;
    budget--;
    if (o->kind == WV__PK_INT || o->kind == WV__PK_BIGINT) {
        struct wv__buf b = {0};
        wv__pk_int_str(o, &b);
        wv__buf_release(&b);
    } else if (o->kind == WV__PK_FLOAT) {
        wv__pk_float_repr(o->f, buf, sizeof buf);
        if (strtod(buf, NULL) != o->f && o->f == o->f)
            abort(); /* repr must round-trip */
    } else if (o->kind == WV__PK_TENSOR) {
        if (o->storage == NULL || o->storage->kind != WV__PK_STORAGE ||
            o->ndim < 0 || o->ndim > WV_MAX_DIMS)
            abort();
    }
    if (o->kind == WV__PK_TUPLE || o->kind == WV__PK_LIST ||
        o->kind == WV__PK_DICT || o->kind == WV__PK_OBJECT)
        for (size_t i = 0; i < o->n && budget; i++)
            budget = walk(o->items[i], depth + 1, budget);
    if (o->kind == WV__PK_OBJECT) {
        if (o->cls == NULL || o->cls->s == NULL ||
            o->cls->gid != WV__G_PLACEHOLDER)
            abort(); /* a placeholder always names its class */
        if (o->args && budget)
            budget = walk(o->args, depth + 1, budget);
        if (o->state && budget)
            budget = walk(o->state, depth + 1, budget);
    }
    return budget;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Each input runs plain, then with placeholders (objects mode and
     * TorchScript classes). */
    for (int mode = 0; mode < 2; mode++) {
        struct wv__err err = {0};
        struct wv__pk pk;
        struct wv__pk_obj *root;
        size_t used;
        wv__pk_init(&pk, "<fuzz>", &err);
        if (mode)
            pk.placeholders = WV__PK_PH_ANY | WV__PK_PH_TORCHSCRIPT;
        if (wv__pk_load(&pk, data, size, &used, &root) == WV_OK) {
            if (used > size || root == NULL)
                abort();
            walk(root, 0, 100000);
        } else if (err.msg[0] == '\0') {
            abort(); /* every failure explains itself */
        }
        wv__pk_free(&pk);
    }
    return 0;
}
