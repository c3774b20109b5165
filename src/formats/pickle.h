/*
 * pickle.h -- a restricted reader of Python pickles (pickle.c), enough for
 * PyTorch's torch.save files. It executes nothing: it builds a tree of
 * plain objects, resolves a fixed allowlist of globals to tags, and turns
 * the few torch calls a checkpoint needs (tensor and parameter rebuilds,
 * OrderedDict, torch.Size) into objects of its own. Everything else is
 * refused by name -- unless the caller asks for placeholders
 * (wv__pk.placeholders): then TorchScript classes (__torch__.*) or, in
 * objects mode, any class outside a list of refused modules (os, sys,
 * builtins, subprocess, ...) become inert WV__PK_OBJECT nodes holding the
 * arguments and state the pickle gave them; no class is ever imported,
 * called or given its __setstate__.
 */
#ifndef WV_PICKLE_H
#define WV_PICKLE_H

#include "core.h"

enum wv__pk_kind {
    WV__PK_NONE = 1,
    WV__PK_BOOL,
    WV__PK_INT,     /* fits int64: i                                       */
    WV__PK_BIGINT,  /* s/len: little-endian two's complement bytes         */
    WV__PK_FLOAT,   /* f                                                   */
    WV__PK_STR,     /* s/len: valid UTF-8, NUL-terminated                  */
    WV__PK_BYTES,   /* s/len                                               */
    WV__PK_TUPLE,   /* items/n                                             */
    WV__PK_LIST,    /* items/n                                             */
    WV__PK_DICT,    /* items/n: key, value, key, value, ...; `ordered`     */
    WV__PK_GLOBAL,  /* gid (+ dtype for storage classes and dtypes), s     */
    WV__PK_STORAGE, /* s: key, dtype, numel, loc; data_off/data filled by
                       the caller                                          */
    WV__PK_TENSOR,  /* storage, dtype, offset, ndim, shape, stride         */
    WV__PK_OPAQUE,  /* an allowed object we do not model (torch.device,
                       a set -- i == 1, its items in items and, for
                       set(list), the list in args --, a layout, ...)     */
    WV__PK_OBJECT   /* placeholder instance of a class the reader does not
                       know (objects / TorchScript mode): cls = its GLOBAL
                       (cls->s "module.name"), args = what REDUCE/NEWOBJ
                       passed,
                       state = what BUILD set (NULL if none); nothing of
                       the class is imported, called or run                */
};

/* Globals the reader knows. */
enum wv__pk_global {
    WV__G_ORDEREDDICT = 1,
    WV__G_REBUILD_TENSOR,    /* torch._utils._rebuild_tensor               */
    WV__G_REBUILD_TENSOR_V2, /* torch._utils._rebuild_tensor_v2            */
    WV__G_REBUILD_TENSOR_V3, /* torch._utils._rebuild_tensor_v3            */
    WV__G_REBUILD_PARAM,     /* torch._utils._rebuild_parameter            */
    WV__G_REBUILD_PARAM_ST,  /* torch._utils._rebuild_parameter_with_state */
    WV__G_REBUILD_FROM_TYPE, /* torch._tensor._rebuild_from_type_v2        */
    WV__G_PARAMETER,         /* torch.nn.parameter.Parameter               */
    WV__G_STORAGE,           /* torch.FloatStorage, ...; dtype             */
    WV__G_UNTYPED_STORAGE,   /* torch.UntypedStorage                       */
    WV__G_DTYPE,             /* torch.float32, ...; dtype                  */
    WV__G_SIZE,              /* torch.Size                                 */
    WV__G_OPAQUE_CALL,       /* torch.device, _get_layout, builtins.set... */
    WV__G_CODECS_ENCODE,     /* _codecs.encode (bytes in protocol 2)       */
    WV__G_TENSOR_TYPE,       /* torch.Tensor                               */
    WV__G_REFUSED_TENSOR,    /* sparse, quantized, meta, nested: refused
                                when called, with `s` in the message       */
    WV__G_PLACEHOLDER,       /* objects mode: any other class; calling it
                                makes a WV__PK_OBJECT (nothing runs)       */
    WV__G_JIT_IDENTITY       /* torch.jit._pickle.build_* and
                                restore_type_tag: return the first argument */
};

/* Which unknown globals become placeholders (wv__pk.placeholders). */
#define WV__PK_PH_TORCHSCRIPT 1u /* __torch__.* (TorchScript classes)     */
#define WV__PK_PH_ANY 2u         /* any class outside the refused modules  */

struct wv__pk_obj {
    enum wv__pk_kind kind;
    bool ordered;               /* DICT: an OrderedDict                     */
    int64_t i;
    double f;
    char *s;                    /* owned                                    */
    size_t len;
    struct wv__pk_obj **items;  /* owned array of borrowed pointers         */
    size_t n, cap;
    /* GLOBAL */
    enum wv__pk_global gid;
    /* GLOBAL storage/dtype, STORAGE and TENSOR: the element type, or
     * WV_DTYPE_INVALID with `refused` naming the torch type. */
    wv_dtype dtype;
    const char *refused;
    /* STORAGE */
    uint64_t numel;             /* elements of `dtype`                      */
    bool legacy;                /* 6-tuple persistent id                    */
    uint64_t data_off;          /* legacy: where its bytes start            */
    bool placed;                /* legacy: listed in the key pickle         */
    /* TENSOR */
    struct wv__pk_obj *storage;
    uint64_t offset;
    int ndim;
    uint64_t shape[WV_MAX_DIMS], stride[WV_MAX_DIMS];
    /* OBJECT */
    struct wv__pk_obj *args, *state, *cls; /* cls: its GLOBAL */
    /* DICT: the weightvault metadata a BUILD attached (see pth.c). */
    struct wv__pk_obj *attr_meta;
    struct wv__pk_obj *next;    /* allocation list                          */
};

/* One reader: objects of all pickles it reads live until wv__pk_free(). */
struct wv__pk {
    struct wv__pk_obj *objs;    /* every object, for freeing                */
    struct wv__pk_obj **storages;
    size_t n_storages, cap_storages;
    const char *what;           /* "f.pth: record 'a/data.pkl'" (messages) */
    struct wv__err *err;
    /* The load's amplification budget (may be NULL): objects, stack, memo
     * and marks are charged as they grow. */
    struct wv__expand *ex;
    uint64_t mem, charged;
    /* WV__PK_PH_* bits: unknown globals become inert placeholders. */
    unsigned placeholders;
};

void wv__pk_init(struct wv__pk *pk, const char *what, struct wv__err *err);
void wv__pk_free(struct wv__pk *pk);

/* Run one pickle from p[0..n): on success *out is the object STOP
 * returned and *used the bytes up to and including STOP (the rest is left
 * to the caller). Persistent ids must be torch storage tuples; storages are
 * de-duplicated by key (pk->storages, in order of first sight). */
int wv__pk_load(struct wv__pk *pk, const unsigned char *p, size_t n,
                size_t *used, struct wv__pk_obj **out);

/* Decimal text of an INT or BIGINT into a wv__buf. */
void wv__pk_int_str(const struct wv__pk_obj *o, struct wv__buf *b);

/* Python's repr() of a float: shortest round-trip digits, "1e-05",
 * "1.0", "inf", "nan". */
void wv__pk_float_repr(double f, char *buf, size_t cap);

#endif /* WV_PICKLE_H */
