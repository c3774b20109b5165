/*
 * pickle.c -- a restricted pickle reader that executes nothing.
 *
 *   A pickle is a program for a stack machine: one opcode byte, then its
 *   inline argument, until STOP ('.'):
 *     \x80 v        PROTO (v <= 5)        \x95 u64       FRAME (length <= rest)
 *     ( MARK        0 POP    1 POP_MARK   2 DUP
 *     N NONE        \x88 NEWTRUE          \x89 NEWFALSE
 *     J i32 BININT  K u8 BININT1  M u16 BININT2
 *     \x8a u8 n, n bytes LONG1   \x8b u32 n, n bytes LONG4 (two's compl.)
 *     G f64be BINFLOAT
 *     X u32 n UTF-8 BINUNICODE   \x8c u8 n  SHORT_BINUNICODE
 *     \x8d u64 n BINUNICODE8     U u8 n / T u32 n  (SHORT_)BINSTRING
 *     C u8 n / B u32 n / \x8e u64 n  (SHORT_)BINBYTES(8)
 *     ) EMPTY_TUPLE  t TUPLE  \x85 \x86 \x87 TUPLE1..3
 *     ] EMPTY_LIST  l LIST  a APPEND  e APPENDS
 *     } EMPTY_DICT  d DICT  s SETITEM  u SETITEMS
 *     \x8f EMPTY_SET  \x90 ADDITEMS  \x91 FROZENSET
 *     c "module\nname\n" GLOBAL   \x93 STACK_GLOBAL
 *     R REDUCE   \x81 NEWOBJ   b BUILD   Q BINPERSID
 *     q u8 / r u32 BINPUT   \x94 MEMOIZE   h u8 / j u32 BINGET
 *   Every other opcode (INST, OBJ, PERSID, EXT*, the text opcodes of
 *   protocol 0, out-of-band buffers) is refused by name.
 *
 * Invariants: no opcode runs code. GLOBAL resolves module.name against a
 * fixed table (collections.OrderedDict, torch storage classes and dtypes,
 * torch._utils tensor and parameter rebuilds, torch.Size, a few inert
 * objects); anything else is refused as "refusing global <module>.<name>".
 * REDUCE and NEWOBJ only "call" table entries, each interpreted here with
 * its argument shapes checked. SETITEM(S) only target dicts, APPEND(S)
 * only lists, BUILD only tensors and OrderedDicts. Every inline length is
 * checked against the bytes left before anything is allocated; integers
 * wider than 256 bytes are refused; memo indices are bounded by the pickle
 * length; STOP needs exactly one object on the stack and no open MARK.
 * Placeholder mode (pickle.h): an unknown global that qualifies becomes a
 * WV__G_PLACEHOLDER; REDUCE/NEWOBJ of it make a WV__PK_OBJECT that only
 * records its arguments, BUILD only records the state, SETITEM(S) on it
 * record pairs (dict subclasses). Globals of the refused modules (code
 * execution, imports, files, processes) stay refused in every mode.
 * The object graph may share nodes (memo) and even contain cycles: freeing
 * walks the allocation list, never the graph, and consumers bound their
 * own recursion. Work and memory are linear in the pickle's length, and
 * the memory (objects, stack, memo, marks) is charged to the load's
 * amplification budget as it grows, so a deflated pickle that inflates to
 * a huge stack is refused long before it is run to the end.
 */
#include "core.h"
#include "fmt.h"
#include "pickle.h"

#include <math.h>

#define MAX_LONG_BYTES 256u

struct vm {
    struct wv__pk *pk;
    const unsigned char *p;
    size_t n, pos, op_pos;
    struct wv__pk_obj **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nm, mcap;
    struct wv__pk_obj **memo;
    size_t memo_len, memo_count;
};

#define ERR(code, ...) wv__seterr(vm->pk->err, (code), __VA_ARGS__)
#define VCHECK(cond, code, fmt, ...)                                      \
    do {                                                                  \
        if (!(cond)) {                                                    \
            rc = ERR((code), "%s: byte %zu: " fmt, vm->pk->what,          \
                     vm->op_pos, __VA_ARGS__);                            \
            goto out;                                                     \
        }                                                                 \
    } while (0)

void wv__pk_init(struct wv__pk *pk, const char *what, struct wv__err *err)
{
    memset(pk, 0, sizeof *pk);
    pk->what = what;
    pk->err = err;
}

void wv__pk_free(struct wv__pk *pk)
{
    struct wv__pk_obj *o = pk->objs;
    while (o) {
        struct wv__pk_obj *nx = o->next;
        wv__free(o->s);
        wv__free(o->items);
        wv__free(o);
        o = nx;
    }
    wv__free(pk->storages);
    pk->objs = NULL;
    pk->storages = NULL;
    pk->n_storages = pk->cap_storages = 0;
}

static struct wv__pk_obj *new_obj(struct wv__pk *pk, enum wv__pk_kind k)
{
    struct wv__pk_obj *o = wv__calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    o->kind = k;
    pk->mem += sizeof *o;
    o->next = pk->objs;
    pk->objs = o;
    return o;
}

static bool add_item(struct wv__pk_obj *o, struct wv__pk_obj *it)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 4;
        struct wv__pk_obj **ni = wv__realloc(o->items, cap * sizeof *ni);
        if (ni == NULL)
            return false;
        o->items = ni;
        o->cap = cap;
    }
    o->items[o->n++] = it;
    return true;
}

static const char *kind_name(const struct wv__pk_obj *o)
{
    switch (o->kind) {
    case WV__PK_NONE: return "None";
    case WV__PK_BOOL: return "bool";
    case WV__PK_INT:
    case WV__PK_BIGINT: return "int";
    case WV__PK_FLOAT: return "float";
    case WV__PK_STR: return "str";
    case WV__PK_BYTES: return "bytes";
    case WV__PK_TUPLE: return "tuple";
    case WV__PK_LIST: return "list";
    case WV__PK_DICT: return o->ordered ? "OrderedDict" : "dict";
    case WV__PK_GLOBAL: return "global";
    case WV__PK_STORAGE: return "storage";
    case WV__PK_TENSOR: return "tensor";
    case WV__PK_OBJECT: return "object";
    default: return "object";
    }
}

/* ---- globals ------------------------------------------------------------ */

struct gdef {
    const char *mod, *name;
    enum wv__pk_global gid;
    wv_dtype dtype;
    const char *refused; /* refused dtype / tensor kind, for messages */
};

static const struct gdef gtab[] = {
    {"collections", "OrderedDict", WV__G_ORDEREDDICT, 0, NULL},
    {"torch._utils", "_rebuild_tensor", WV__G_REBUILD_TENSOR, 0, NULL},
    {"torch._utils", "_rebuild_tensor_v2", WV__G_REBUILD_TENSOR_V2, 0, NULL},
    {"torch._utils", "_rebuild_tensor_v3", WV__G_REBUILD_TENSOR_V3, 0, NULL},
    {"torch._utils", "_rebuild_parameter", WV__G_REBUILD_PARAM, 0, NULL},
    {"torch._utils", "_rebuild_parameter_with_state", WV__G_REBUILD_PARAM_ST,
     0, NULL},
    {"torch._tensor", "_rebuild_from_type_v2", WV__G_REBUILD_FROM_TYPE, 0,
     NULL},
    {"torch.nn.parameter", "Parameter", WV__G_PARAMETER, 0, NULL},
    {"torch", "Size", WV__G_SIZE, 0, NULL},
    {"torch", "Tensor", WV__G_TENSOR_TYPE, 0, NULL},
    {"torch", "device", WV__G_OPAQUE_CALL, 0, NULL},
    {"torch.serialization", "_get_layout", WV__G_OPAQUE_CALL, 0, NULL},
    {"builtins", "set", WV__G_OPAQUE_CALL, 0, NULL},
    {"builtins", "frozenset", WV__G_OPAQUE_CALL, 0, NULL},
    {"__builtin__", "set", WV__G_OPAQUE_CALL, 0, NULL},
    {"__builtin__", "frozenset", WV__G_OPAQUE_CALL, 0, NULL},
    {"builtins", "bytearray", WV__G_OPAQUE_CALL, 0, NULL},
    {"builtins", "complex", WV__G_OPAQUE_CALL, 0, NULL},
    {"collections", "Counter", WV__G_OPAQUE_CALL, 0, NULL},
    {"_codecs", "encode", WV__G_CODECS_ENCODE, 0, NULL},
    {"torch", "UntypedStorage", WV__G_UNTYPED_STORAGE, WV_U8, NULL},
    {"torch._utils", "_rebuild_sparse_tensor", WV__G_REFUSED_TENSOR, 0,
     "sparse tensors"},
    {"torch._utils", "_rebuild_sparse_csr_tensor", WV__G_REFUSED_TENSOR, 0,
     "sparse tensors"},
    {"torch._utils", "_rebuild_qtensor", WV__G_REFUSED_TENSOR, 0,
     "quantized tensors"},
    {"torch._utils", "_rebuild_meta_tensor_no_storage", WV__G_REFUSED_TENSOR,
     0, "meta tensors (no data)"},
    {"torch._utils", "_rebuild_nested_tensor", WV__G_REFUSED_TENSOR, 0,
     "nested tensors"},
    {"torch._utils", "_rebuild_wrapper_subclass", WV__G_REFUSED_TENSOR, 0,
     "tensor subclasses"},
    {"torch._utils", "_rebuild_device_tensor_from_numpy",
     WV__G_REFUSED_TENSOR, 0, "numpy-backed device tensors"},
    {"torch._utils", "_rebuild_device_tensor_from_cpu_tensor",
     WV__G_REFUSED_TENSOR, 0, "device tensors"},
};

/* torch.<X>Storage (also torch.cuda.<X>Storage in legacy files). */
static const struct gdef storages[] = {
    {NULL, "DoubleStorage", WV__G_STORAGE, WV_F64, NULL},
    {NULL, "FloatStorage", WV__G_STORAGE, WV_F32, NULL},
    {NULL, "HalfStorage", WV__G_STORAGE, WV_F16, NULL},
    {NULL, "BFloat16Storage", WV__G_STORAGE, WV_BF16, NULL},
    {NULL, "LongStorage", WV__G_STORAGE, WV_I64, NULL},
    {NULL, "IntStorage", WV__G_STORAGE, WV_I32, NULL},
    {NULL, "ShortStorage", WV__G_STORAGE, WV_I16, NULL},
    {NULL, "CharStorage", WV__G_STORAGE, WV_I8, NULL},
    {NULL, "ByteStorage", WV__G_STORAGE, WV_U8, NULL},
    {NULL, "BoolStorage", WV__G_STORAGE, WV_BOOL, NULL},
    {NULL, "ComplexFloatStorage", WV__G_STORAGE, WV_C64, NULL},
    {NULL, "ComplexDoubleStorage", WV__G_STORAGE, 0, "complex128"},
    {NULL, "QInt8Storage", WV__G_STORAGE, 0, "quantized qint8"},
    {NULL, "QUInt8Storage", WV__G_STORAGE, 0, "quantized quint8"},
    {NULL, "QInt32Storage", WV__G_STORAGE, 0, "quantized qint32"},
    {NULL, "QUInt4x2Storage", WV__G_STORAGE, 0, "quantized quint4x2"},
    {NULL, "QUInt2x4Storage", WV__G_STORAGE, 0, "quantized quint2x4"},
};

/* torch.<dtype>. */
static const struct gdef dtypes[] = {
    {NULL, "float32", WV__G_DTYPE, WV_F32, NULL},
    {NULL, "float", WV__G_DTYPE, WV_F32, NULL},
    {NULL, "float64", WV__G_DTYPE, WV_F64, NULL},
    {NULL, "double", WV__G_DTYPE, WV_F64, NULL},
    {NULL, "float16", WV__G_DTYPE, WV_F16, NULL},
    {NULL, "half", WV__G_DTYPE, WV_F16, NULL},
    {NULL, "bfloat16", WV__G_DTYPE, WV_BF16, NULL},
    {NULL, "int64", WV__G_DTYPE, WV_I64, NULL},
    {NULL, "long", WV__G_DTYPE, WV_I64, NULL},
    {NULL, "int32", WV__G_DTYPE, WV_I32, NULL},
    {NULL, "int", WV__G_DTYPE, WV_I32, NULL},
    {NULL, "int16", WV__G_DTYPE, WV_I16, NULL},
    {NULL, "short", WV__G_DTYPE, WV_I16, NULL},
    {NULL, "int8", WV__G_DTYPE, WV_I8, NULL},
    {NULL, "uint8", WV__G_DTYPE, WV_U8, NULL},
    {NULL, "uint16", WV__G_DTYPE, WV_U16, NULL},
    {NULL, "uint32", WV__G_DTYPE, WV_U32, NULL},
    {NULL, "uint64", WV__G_DTYPE, WV_U64, NULL},
    {NULL, "bool", WV__G_DTYPE, WV_BOOL, NULL},
    {NULL, "complex64", WV__G_DTYPE, WV_C64, NULL},
    {NULL, "cfloat", WV__G_DTYPE, WV_C64, NULL},
    {NULL, "float8_e4m3fn", WV__G_DTYPE, WV_F8_E4M3, NULL},
    {NULL, "float8_e5m2", WV__G_DTYPE, WV_F8_E5M2, NULL},
    {NULL, "complex128", WV__G_DTYPE, 0, "complex128"},
    {NULL, "cdouble", WV__G_DTYPE, 0, "complex128"},
    {NULL, "complex32", WV__G_DTYPE, 0, "complex32"},
    {NULL, "chalf", WV__G_DTYPE, 0, "complex32"},
    {NULL, "float8_e4m3fnuz", WV__G_DTYPE, 0, "float8_e4m3fnuz"},
    {NULL, "float8_e5m2fnuz", WV__G_DTYPE, 0, "float8_e5m2fnuz"},
    {NULL, "float8_e8m0fnu", WV__G_DTYPE, 0, "float8_e8m0fnu"},
    {NULL, "qint8", WV__G_DTYPE, 0, "quantized qint8"},
    {NULL, "quint8", WV__G_DTYPE, 0, "quantized quint8"},
    {NULL, "qint32", WV__G_DTYPE, 0, "quantized qint32"},
};

static bool streq(const char *a, size_t an, const char *b)
{
    return strlen(b) == an && memcmp(a, b, an) == 0;
}

static const struct gdef *find_in(const struct gdef *t, size_t n,
                                  const char *name, size_t nl)
{
    for (size_t i = 0; i < n; i++)
        if (streq(name, nl, t[i].name))
            return &t[i];
    return NULL;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct gdef *find_global(const char *mod, size_t ml,
                                      const char *name, size_t nl)
{
    for (size_t i = 0; i < COUNT(gtab); i++)
        if (streq(mod, ml, gtab[i].mod) && streq(name, nl, gtab[i].name))
            return &gtab[i];
    if (streq(mod, ml, "torch") || streq(mod, ml, "torch.cuda")) {
        const struct gdef *g = find_in(storages, COUNT(storages), name, nl);
        if (g)
            return g;
    }
    if (streq(mod, ml, "torch"))
        return find_in(dtypes, COUNT(dtypes), name, nl);
    return NULL;
}

/* ---- the machine -------------------------------------------------------- */

static int push(struct vm *vm, struct wv__pk_obj *o)
{
    int rc = WV_OK;
    VCHECK(o != NULL, WV_NOMEM, "%s", "out of memory");
    if (vm->sp == vm->scap) {
        size_t cap = vm->scap ? vm->scap * 2 : 64;
        struct wv__pk_obj **ns = wv__realloc(vm->stack, cap * sizeof *ns);
        VCHECK(ns != NULL, WV_NOMEM, "%s", "out of memory");
        vm->stack = ns;
        vm->scap = cap;
    }
    vm->stack[vm->sp++] = o;
out:
    return rc;
}

/* Items above the top mark. */
static int marked(struct vm *vm, size_t *base, const char *op)
{
    int rc = WV_OK;
    VCHECK(vm->nm > 0, WV_CORRUPT, "%s without a MARK", op);
    *base = vm->marks[--vm->nm];
out:
    return rc;
}

static int need(struct vm *vm, size_t k, const char *op)
{
    int rc = WV_OK;
    size_t floor = vm->nm ? vm->marks[vm->nm - 1] : 0;
    VCHECK(vm->sp >= floor + k, WV_CORRUPT,
           "%s needs %zu stack items (stack underflow)", op, k);
out:
    return rc;
}

static int take(struct vm *vm, size_t k, const char *what,
                const unsigned char **q)
{
    int rc = WV_OK;
    VCHECK(vm->n - vm->pos >= k, WV_CORRUPT,
           "%s needs %zu bytes but only %zu remain (truncated pickle)", what,
           k, vm->n - vm->pos);
    *q = vm->p + vm->pos;
    vm->pos += k;
out:
    return rc;
}

/* A length-prefixed argument: lsize bytes of little-endian length, then
 * the bytes. */
static int take_len(struct vm *vm, size_t lsize, const char *what,
                    const unsigned char **q, size_t *len)
{
    int rc = WV_OK;
    const unsigned char *l = NULL;
    uint64_t v = 0;
    WV_TRY(take(vm, lsize, what, &l));
    for (size_t i = 0; i < lsize; i++)
        v |= (uint64_t)l[i] << (8 * i);
    VCHECK(v <= vm->n - vm->pos, WV_CORRUPT,
           "%s length %llu runs past the end of the pickle (%zu bytes left)",
           what, (unsigned long long)v, vm->n - vm->pos);
    *len = (size_t)v;
    *q = vm->p + vm->pos;
    vm->pos += (size_t)v;
out:
    return rc;
}

static int make_str(struct vm *vm, enum wv__pk_kind k, const unsigned char *q,
                    size_t len, const char *what)
{
    int rc = WV_OK;
    struct wv__pk_obj *o;
    if (k == WV__PK_STR)
        VCHECK(wv__utf8_valid(q, len), WV_CORRUPT, "%s is not valid UTF-8",
               what);
    o = new_obj(vm->pk, k);
    VCHECK(o != NULL, WV_NOMEM, "%s", "out of memory");
    o->s = wv__malloc(len + 1);
    VCHECK(o->s != NULL, WV_NOMEM, "%s", "out of memory");
    memcpy(o->s, q, len);
    o->s[len] = '\0';
    o->len = len;
    WV_TRY(push(vm, o));
out:
    return rc;
}

static int make_int(struct vm *vm, int64_t v)
{
    struct wv__pk_obj *o = new_obj(vm->pk, WV__PK_INT);
    if (o)
        o->i = v;
    return push(vm, o);
}

/* Two's complement little-endian of n bytes. */
static int make_long(struct vm *vm, const unsigned char *q, size_t n)
{
    int rc = WV_OK;
    VCHECK(n <= MAX_LONG_BYTES, WV_FORMAT,
           "integer of %zu bytes is too large (limit %u)", n,
           MAX_LONG_BYTES);
    if (n == 0)
        return make_int(vm, 0);
    bool neg = (q[n - 1] & 0x80) != 0;
    size_t k = n;
    /* Drop redundant sign bytes. */
    while (k > 1 && q[k - 1] == (neg ? 0xff : 0x00) &&
           ((q[k - 2] & 0x80) != 0) == neg)
        k--;
    if (k <= 8) {
        uint64_t u = neg ? UINT64_MAX : 0;
        for (size_t i = 0; i < k; i++) {
            u &= ~((uint64_t)0xff << (8 * i));
            u |= (uint64_t)q[i] << (8 * i);
        }
        int64_t v;
        memcpy(&v, &u, sizeof v);
        return make_int(vm, v);
    }
    WV_TRY(make_str(vm, WV__PK_BYTES, q, k, "integer"));
    vm->stack[vm->sp - 1]->kind = WV__PK_BIGINT;
out:
    return rc;
}

/* Modules whose globals are never made placeholders: their members run
 * code, import, touch files, processes or the interpreter. A placeholder
 * never calls anything anyway; refusing them names the attempt. */
static const char *const refused_mods[] = {
    "builtins", "__builtin__", "os", "posix", "nt", "subprocess", "sys",
    "shutil", "importlib", "pickle", "_pickle", "marshal", "runpy",
    "socket", "code", "codeop", "ctypes", "io", "_io", "pty", "operator",
    "functools", "types", "inspect", "pydoc", "timeit", "platform",
    "signal", "multiprocessing", "asyncio", "threading", "tempfile", "glob",
    "pathlib", "webbrowser", "codecs", "_codecs", "copyreg", "copy_reg",
    "pip", "setuptools", "distutils", "http", "urllib", "ftplib",
    "smtplib", "telnetlib", "bdb", "pdb", "trace", "cProfile", "profile",
    "torch.hub", "torch.jit", "torch._C", "torch.ops", "torch.load",
    "torch.serialization", "torch.utils.cpp_extension", "numpy.testing",
    /* protocol 2 writes Python 3 modules under their Python 2 names */
    "commands", "popen2", "cPickle", "imp", "new", "dl", "thread",
    "_thread", "urllib2", "httplib", "SocketServer", "socketserver",
    "posixpath", "ntpath", "genericpath", "zipimport", "pkgutil", "site",
    "sysconfig", "gc", "weakref", "_ctypes", "cffi", "dill",
    "cloudpickle", "joblib", "yaml", "exceptions",
};

static bool refused_mod(const char *mod, size_t ml)
{
    if (ml == 0 || memchr(mod, '\0', ml))
        return true;
    for (size_t i = 0; i < COUNT(refused_mods); i++) {
        size_t rl = strlen(refused_mods[i]);
        if (ml >= rl && memcmp(mod, refused_mods[i], rl) == 0 &&
            (ml == rl || mod[rl] == '.'))
            return true;
    }
    return false;
}

static bool placeholder_ok(const struct vm *vm, const char *mod, size_t ml)
{
    unsigned ph = vm->pk->placeholders;
    if ((ph & (WV__PK_PH_TORCHSCRIPT | WV__PK_PH_ANY)) &&
        (streq(mod, ml, "__torch__") ||
         (ml > 10 && memcmp(mod, "__torch__.", 10) == 0)))
        return true;
    return (ph & WV__PK_PH_ANY) && !refused_mod(mod, ml);
}

static int make_global(struct vm *vm, const char *mod, size_t ml,
                       const char *name, size_t nl)
{
    int rc = WV_OK;
    static const struct gdef ph = {NULL, NULL, WV__G_PLACEHOLDER, 0, NULL};
    static const struct gdef jid = {NULL, NULL, WV__G_JIT_IDENTITY, 0, NULL};
    const struct gdef *g = find_global(mod, ml, name, nl);
    if (g == NULL && vm->pk->placeholders && streq(mod, ml, "torch.jit._pickle")
        && (streq(name, nl, "restore_type_tag") ||
            (nl > 6 && memcmp(name, "build_", 6) == 0 &&
             !streq(name, nl, "build_tensor_from_id"))))
        g = &jid;
    if (g == NULL && memchr(name, '\0', nl) == NULL &&
        placeholder_ok(vm, mod, ml))
        g = &ph;
    VCHECK(g != NULL, WV_FORMAT, "refusing global %.*s.%.*s%s",
           (int)(ml > 100 ? 100 : ml), mod, (int)(nl > 100 ? 100 : nl),
           name,
           refused_mod(mod, ml)
               ? ""
               : vm->pk->placeholders & WV__PK_PH_ANY
                     ? " (its module is never made a placeholder)"
                     : " (whole-model pickles: read them with --objects)");
    struct wv__pk_obj *o = new_obj(vm->pk, WV__PK_GLOBAL);
    VCHECK(o != NULL, WV_NOMEM, "%s", "out of memory");
    o->gid = g->gid;
    o->dtype = g->dtype;
    o->refused = g->refused;
    o->len = ml + 1 + nl;
    o->s = wv__malloc(o->len + 1);
    VCHECK(o->s != NULL, WV_NOMEM, "%s", "out of memory");
    memcpy(o->s, mod, ml);
    o->s[ml] = '.';
    memcpy(o->s + ml + 1, name, nl);
    o->s[o->len] = '\0';
    WV_TRY(push(vm, o));
out:
    return rc;
}

/* GLOBAL and INST: "module\nname\n". */
static int read_line(struct vm *vm, const char **s, size_t *len,
                     const char *what)
{
    int rc = WV_OK;
    const unsigned char *q = vm->p + vm->pos;
    const unsigned char *nl = memchr(q, '\n', vm->n - vm->pos);
    VCHECK(nl != NULL, WV_CORRUPT, "%s is not terminated by a newline",
           what);
    *s = (const char *)q;
    *len = (size_t)(nl - q);
    vm->pos += *len + 1;
out:
    return rc;
}

static bool is_int(const struct wv__pk_obj *o)
{
    return o->kind == WV__PK_INT;
}

/* A tuple of non-negative ints (a torch.Size is a tuple here). */
static int int_tuple(struct vm *vm, const struct wv__pk_obj *t,
                     uint64_t *out, int *nd, const char *what)
{
    int rc = WV_OK;
    VCHECK(t->kind == WV__PK_TUPLE, WV_CORRUPT, "tensor %s is a %s, not a "
           "tuple", what, kind_name(t));
    VCHECK(t->n <= WV_MAX_DIMS, WV_FORMAT,
           "tensor has %zu dimensions, more than %d", t->n, WV_MAX_DIMS);
    for (size_t i = 0; i < t->n; i++) {
        VCHECK(is_int(t->items[i]) && t->items[i]->i >= 0, WV_CORRUPT,
               "tensor %s item %zu is not a non-negative integer", what, i);
        out[i] = (uint64_t)t->items[i]->i;
    }
    *nd = (int)t->n;
out:
    return rc;
}

/* _rebuild_tensor(storage, offset, size, stride), v2 adds requires_grad,
 * backward_hooks[, metadata], v3 adds dtype after the hooks. */
static int rebuild_tensor(struct vm *vm, enum wv__pk_global gid,
                          struct wv__pk_obj *a, struct wv__pk_obj **res)
{
    int rc = WV_OK;
    size_t lo = gid == WV__G_REBUILD_TENSOR ? 4
                : gid == WV__G_REBUILD_TENSOR_V2 ? 6 : 7;
    size_t hi = gid == WV__G_REBUILD_TENSOR ? 4 : lo + 1;
    int nd_size, nd_stride;
    struct wv__pk_obj *t;

    VCHECK(a->n >= lo && a->n <= hi, WV_CORRUPT,
           "tensor rebuild takes %zu to %zu arguments, not %zu", lo, hi,
           a->n);
    struct wv__pk_obj *st = a->items[0];
    VCHECK(st->kind == WV__PK_STORAGE, WV_CORRUPT,
           "tensor rebuild: first argument is a %s, not a storage",
           kind_name(st));
    VCHECK(is_int(a->items[1]) && a->items[1]->i >= 0, WV_CORRUPT,
           "%s", "tensor storage offset is not a non-negative integer");
    t = new_obj(vm->pk, WV__PK_TENSOR);
    VCHECK(t != NULL, WV_NOMEM, "%s", "out of memory");
    t->storage = st;
    t->offset = (uint64_t)a->items[1]->i;
    WV_TRY(int_tuple(vm, a->items[2], t->shape, &nd_size, "size"));
    WV_TRY(int_tuple(vm, a->items[3], t->stride, &nd_stride, "stride"));
    VCHECK(nd_size == nd_stride, WV_CORRUPT,
           "tensor size has %d dimensions but its stride %d", nd_size,
           nd_stride);
    t->ndim = nd_size;
    if (gid == WV__G_REBUILD_TENSOR_V3) {
        struct wv__pk_obj *d = a->items[6];
        VCHECK(d->kind == WV__PK_GLOBAL && d->gid == WV__G_DTYPE, WV_CORRUPT,
               "%s", "_rebuild_tensor_v3: argument 7 is not a torch dtype");
        VCHECK(st->gid == WV__G_UNTYPED_STORAGE, WV_CORRUPT, "%s",
               "_rebuild_tensor_v3 needs a torch.UntypedStorage");
        t->dtype = d->dtype;
        t->refused = d->refused;
    } else {
        VCHECK(st->gid == WV__G_STORAGE, WV_CORRUPT, "%s",
               "tensor rebuild of a torch.UntypedStorage without a dtype");
        t->dtype = st->dtype;
        t->refused = st->refused;
    }
    *res = t;
out:
    return rc;
}

static int persid(struct vm *vm)
{
    int rc = WV_OK;
    struct wv__pk *pk = vm->pk;
    struct wv__pk_obj *pid = vm->stack[vm->sp - 1], *st = NULL;

    /* Legacy torch.save(model): a module class is the persistent id
     * ('module', class, source file, source); objects mode takes the
     * (placeholder) class and ignores the source, which is never run. */
    if (pk->placeholders & WV__PK_PH_ANY && pid->kind == WV__PK_TUPLE &&
        pid->n == 4 && pid->items[0]->kind == WV__PK_STR &&
        strcmp(pid->items[0]->s, "module") == 0) {
        VCHECK(pid->items[1]->kind == WV__PK_GLOBAL &&
                   pid->items[1]->gid == WV__G_PLACEHOLDER,
               WV_CORRUPT, "%s", "persistent id ('module', ...) does not "
               "name a class");
        vm->stack[vm->sp - 1] = pid->items[1];
        goto out;
    }
    VCHECK(pid->kind == WV__PK_TUPLE && (pid->n == 5 || pid->n == 6) &&
               pid->items[0]->kind == WV__PK_STR &&
               strcmp(pid->items[0]->s, "storage") == 0,
           WV_CORRUPT, "%s",
           "persistent id is not a ('storage', type, key, location, "
           "numel) tuple");
    struct wv__pk_obj *ty = pid->items[1], *key = pid->items[2],
                      *loc = pid->items[3], *num = pid->items[4];
    VCHECK(ty->kind == WV__PK_GLOBAL && (ty->gid == WV__G_STORAGE ||
                                         ty->gid == WV__G_UNTYPED_STORAGE),
           WV_CORRUPT, "%s", "persistent id: item 2 is not a storage type");
    VCHECK(key->kind == WV__PK_STR && loc->kind == WV__PK_STR, WV_CORRUPT,
           "%s", "persistent id: key or location is not a string");
    VCHECK(is_int(num) && num->i >= 0, WV_CORRUPT, "%s",
           "persistent id: numel is not a non-negative integer");
    if (pid->n == 6)
        VCHECK(pid->items[5]->kind == WV__PK_NONE, WV_UNSUPPORTED,
               "storage '%.100s': legacy storage views are not supported",
               key->s);
    for (size_t i = 0; i < pk->n_storages; i++) {
        struct wv__pk_obj *s = pk->storages[i];
        if (strcmp(s->s, key->s) != 0)
            continue;
        VCHECK(s->gid == ty->gid && s->dtype == ty->dtype &&
                   s->numel == (uint64_t)num->i &&
                   s->legacy == (pid->n == 6),
               WV_CORRUPT,
               "storage '%.100s' is declared twice with different types "
               "or sizes",
               key->s);
        st = s;
        break;
    }
    if (st == NULL) {
        VCHECK(memchr(key->s, '\0', key->len) == NULL, WV_CORRUPT, "%s",
               "storage key contains a NUL byte");
        st = new_obj(pk, WV__PK_STORAGE);
        VCHECK(st != NULL, WV_NOMEM, "%s", "out of memory");
        st->s = wv__strdup(key->s);
        VCHECK(st->s != NULL, WV_NOMEM, "%s", "out of memory");
        st->len = key->len;
        st->gid = ty->gid;
        st->dtype = ty->dtype;
        st->refused = ty->refused;
        st->numel = (uint64_t)num->i;
        st->legacy = pid->n == 6;
        if (pk->n_storages == pk->cap_storages) {
            size_t cap = pk->cap_storages ? pk->cap_storages * 2 : 16;
            struct wv__pk_obj **ns =
                wv__realloc(pk->storages, cap * sizeof *ns);
            VCHECK(ns != NULL, WV_NOMEM, "%s", "out of memory");
            pk->storages = ns;
            pk->cap_storages = cap;
        }
        pk->storages[pk->n_storages++] = st;
    }
    vm->stack[vm->sp - 1] = st;
out:
    return rc;
}

/* REDUCE / NEWOBJ of an allowed global with a tuple of arguments. */
static int call(struct vm *vm, struct wv__pk_obj *f, struct wv__pk_obj *a,
                struct wv__pk_obj **res, const char *op)
{
    int rc = WV_OK;
    struct wv__pk_obj *o = NULL;
    VCHECK(f->kind == WV__PK_GLOBAL, WV_CORRUPT, "%s of a %s, not a global",
           op, kind_name(f));
    VCHECK(a->kind == WV__PK_TUPLE, WV_CORRUPT,
           "%s of %s with a %s of arguments, not a tuple", op, f->s,
           kind_name(a));
    switch (f->gid) {
    case WV__G_ORDEREDDICT:
        o = new_obj(vm->pk, WV__PK_DICT);
        VCHECK(o != NULL, WV_NOMEM, "%s", "out of memory");
        o->ordered = true;
        VCHECK(a->n <= 1, WV_CORRUPT, "%s", "OrderedDict takes at most 1 "
               "argument");
        if (a->n == 1) {
            struct wv__pk_obj *l = a->items[0];
            VCHECK(l->kind == WV__PK_LIST || l->kind == WV__PK_TUPLE,
                   WV_CORRUPT, "OrderedDict of a %s", kind_name(l));
            for (size_t i = 0; i < l->n; i++) {
                struct wv__pk_obj *pr = l->items[i];
                VCHECK((pr->kind == WV__PK_TUPLE || pr->kind == WV__PK_LIST)
                           && pr->n == 2,
                       WV_CORRUPT, "%s", "OrderedDict item is not a pair");
                VCHECK(add_item(o, pr->items[0]) && add_item(o, pr->items[1]),
                       WV_NOMEM, "%s", "out of memory");
            }
        }
        break;
    case WV__G_REBUILD_TENSOR:
    case WV__G_REBUILD_TENSOR_V2:
    case WV__G_REBUILD_TENSOR_V3:
        WV_TRY(rebuild_tensor(vm, f->gid, a, &o));
        break;
    case WV__G_REBUILD_PARAM:
    case WV__G_REBUILD_PARAM_ST:
    case WV__G_PARAMETER:
        VCHECK(a->n >= 1 && a->n <= 4 && a->items[0]->kind == WV__PK_TENSOR,
               WV_CORRUPT, "%s of %s: first argument is not a tensor", op,
               f->s);
        o = a->items[0];
        break;
    case WV__G_REBUILD_FROM_TYPE: {
        VCHECK(a->n == 4 && a->items[0]->kind == WV__PK_GLOBAL &&
                   a->items[2]->kind == WV__PK_TUPLE,
               WV_CORRUPT, "%s",
               "_rebuild_from_type_v2 takes (func, type, args, state)");
        struct wv__pk_obj *ty = a->items[1];
        VCHECK(ty->kind == WV__PK_GLOBAL &&
                   (ty->gid == WV__G_TENSOR_TYPE ||
                    ty->gid == WV__G_PARAMETER),
               WV_FORMAT, "%s", "_rebuild_from_type_v2: only torch.Tensor "
               "and Parameter are supported");
        enum wv__pk_global g = a->items[0]->gid;
        VCHECK(g >= WV__G_REBUILD_TENSOR && g <= WV__G_REBUILD_PARAM_ST,
               WV_FORMAT, "_rebuild_from_type_v2 of %s", a->items[0]->s);
        WV_TRY(call(vm, a->items[0], a->items[2], &o, op));
        break;
    }
    case WV__G_SIZE:
        VCHECK(a->n == 1 && a->items[0]->kind == WV__PK_TUPLE, WV_CORRUPT,
               "%s", "torch.Size takes one tuple");
        o = a->items[0];
        break;
    case WV__G_OPAQUE_CALL:
        o = new_obj(vm->pk, WV__PK_OPAQUE);
        VCHECK(o != NULL, WV_NOMEM, "%s", "out of memory");
        /* set(iterable) / frozenset(iterable): keep the items (a module's
         * _non_persistent_buffers_set names buffers to leave out). */
        if ((strcmp(f->s, "builtins.set") == 0 ||
             strcmp(f->s, "builtins.frozenset") == 0 ||
             strcmp(f->s, "__builtin__.set") == 0 ||
             strcmp(f->s, "__builtin__.frozenset") == 0) &&
            a->n == 1 && (a->items[0]->kind == WV__PK_LIST ||
                          a->items[0]->kind == WV__PK_TUPLE)) {
            o->i = 1;
            o->args = a->items[0]; /* shared, not copied: a memoized list
                                      may be passed many times */
        }
        break;
    case WV__G_PLACEHOLDER:
        /* Its class name is cls->s (not copied: one memoized global may
         * be instantiated many times). */
        o = new_obj(vm->pk, WV__PK_OBJECT);
        VCHECK(o != NULL, WV_NOMEM, "%s", "out of memory");
        o->args = a;
        o->cls = f;
        break;
    case WV__G_JIT_IDENTITY:
        VCHECK(a->n >= 1, WV_CORRUPT, "%s of %s without arguments", op,
               f->s);
        o = a->items[0];
        break;
    case WV__G_CODECS_ENCODE:
        VCHECK(a->n == 2 && a->items[0]->kind == WV__PK_STR, WV_CORRUPT,
               "%s", "_codecs.encode takes (str, encoding)");
        o = new_obj(vm->pk, WV__PK_BYTES);
        VCHECK(o != NULL, WV_NOMEM, "%s", "out of memory");
        break;
    case WV__G_REFUSED_TENSOR:
        VCHECK(0, WV_UNSUPPORTED, "%s (%s) are not supported", f->refused,
               f->s);
        break;
    default:
        VCHECK(0, WV_FORMAT, "refusing %s of %s", op, f->s);
    }
    *res = o;
out:
    return rc;
}

/* BUILD: only tensors (state ignored) and OrderedDicts (attributes: the
 * weightvault metadata under _metadata is kept, see pth.c). */
static int build(struct vm *vm, struct wv__pk_obj *inst,
                 struct wv__pk_obj *state)
{
    int rc = WV_OK;
    if (inst->kind == WV__PK_TENSOR)
        goto out;
    if (inst->kind == WV__PK_OBJECT) {
        /* Recorded, never applied: no __setstate__ runs. A second BUILD
         * (rare) replaces the first. */
        inst->state = state;
        goto out;
    }
    VCHECK(inst->kind == WV__PK_DICT && inst->ordered, WV_FORMAT,
           "BUILD on a %s (only tensors, OrderedDicts and placeholder "
           "objects)", kind_name(inst));
    if (state->kind != WV__PK_DICT)
        goto out;
    for (size_t i = 0; i + 1 < state->n; i += 2) {
        struct wv__pk_obj *k = state->items[i], *v = state->items[i + 1];
        if (k->kind != WV__PK_STR || strcmp(k->s, "_metadata") != 0 ||
            v->kind != WV__PK_DICT)
            continue;
        for (size_t j = 0; j + 1 < v->n; j += 2) {
            struct wv__pk_obj *k2 = v->items[j];
            if (k2->kind == WV__PK_STR &&
                strcmp(k2->s, "weightvault:metadata") == 0 &&
                v->items[j + 1]->kind == WV__PK_DICT)
                inst->attr_meta = v->items[j + 1];
        }
    }
out:
    return rc;
}

static const char *opname(unsigned char op)
{
    switch (op) {
    case 'i': return "INST";
    case 'o': return "OBJ";
    case 'P': return "PERSID";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 'I': return "INT";
    case 'L': return "LONG";
    case 'F': return "FLOAT";
    case 'S': return "STRING";
    case 'V': return "UNICODE";
    case 'g': return "GET";
    case 'p': return "PUT";
    case 0x92: return "NEWOBJ_EX";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return "unknown";
    }
}

static int memo_put(struct vm *vm, uint64_t idx)
{
    int rc = WV_OK;
    WV_TRY(need(vm, 1, "PUT"));
    VCHECK(idx <= vm->n, WV_CORRUPT,
           "memo index %llu is out of range for a pickle of %zu bytes",
           (unsigned long long)idx, vm->n);
    if (idx >= vm->memo_len) {
        size_t len = (size_t)idx + 1;
        if (len < vm->memo_len * 2)
            len = vm->memo_len * 2;
        if (len > vm->n + 1)
            len = vm->n + 1;
        struct wv__pk_obj **nm = wv__realloc(vm->memo, len * sizeof *nm);
        VCHECK(nm != NULL, WV_NOMEM, "%s", "out of memory");
        memset(nm + vm->memo_len, 0, (len - vm->memo_len) * sizeof *nm);
        vm->memo = nm;
        vm->memo_len = len;
    }
    if (vm->memo[idx] == NULL)
        vm->memo_count++;
    vm->memo[idx] = vm->stack[vm->sp - 1];
out:
    return rc;
}

static int memo_get(struct vm *vm, uint64_t idx)
{
    int rc = WV_OK;
    VCHECK(idx < vm->memo_len && vm->memo[idx] != NULL, WV_CORRUPT,
           "memo GET of index %llu, which was never set",
           (unsigned long long)idx);
    WV_TRY(push(vm, vm->memo[idx]));
out:
    return rc;
}

static int step(struct vm *vm, bool *stop)
{
    int rc = WV_OK;
    const unsigned char *q = NULL;
    size_t len = 0, base = 0;
    struct wv__pk_obj *o, *a, *b;
    unsigned char op = vm->p[vm->pos++];

    switch (op) {
    case 0x80: /* PROTO */
        WV_TRY(take(vm, 1, "PROTO", &q));
        VCHECK(q[0] <= 5, WV_FORMAT, "pickle protocol %u is not supported",
               q[0]);
        break;
    case 0x95: /* FRAME: a length hint, which must fit what is left */
        WV_TRY(take(vm, 8, "FRAME", &q));
        VCHECK(wv__le64(q) <= vm->n - vm->pos, WV_CORRUPT,
               "FRAME length %llu runs past the end of the pickle (%zu "
               "bytes left)",
               (unsigned long long)wv__le64(q), vm->n - vm->pos);
        break;
    case '.':
        VCHECK(vm->nm == 0, WV_CORRUPT, "%s", "STOP with an open MARK");
        VCHECK(vm->sp == 1, WV_CORRUPT,
               "STOP with %zu objects on the stack (want 1)", vm->sp);
        *stop = true;
        break;
    case '(':
        if (vm->nm == vm->mcap) {
            size_t cap = vm->mcap ? vm->mcap * 2 : 16;
            size_t *nmk = wv__realloc(vm->marks, cap * sizeof *nmk);
            VCHECK(nmk != NULL, WV_NOMEM, "%s", "out of memory");
            vm->marks = nmk;
            vm->mcap = cap;
        }
        vm->marks[vm->nm++] = vm->sp;
        break;
    case '0':
        WV_TRY(need(vm, 1, "POP"));
        vm->sp--;
        break;
    case '1':
        WV_TRY(marked(vm, &base, "POP_MARK"));
        vm->sp = base;
        break;
    case '2':
        WV_TRY(need(vm, 1, "DUP"));
        WV_TRY(push(vm, vm->stack[vm->sp - 1]));
        break;
    case 'N':
        WV_TRY(push(vm, new_obj(vm->pk, WV__PK_NONE)));
        break;
    case 0x88:
    case 0x89:
        o = new_obj(vm->pk, WV__PK_BOOL);
        if (o)
            o->i = op == 0x88;
        WV_TRY(push(vm, o));
        break;
    case 'J':
        WV_TRY(take(vm, 4, "BININT", &q));
        WV_TRY(make_int(vm, (int32_t)wv__le32(q)));
        break;
    case 'K':
        WV_TRY(take(vm, 1, "BININT1", &q));
        WV_TRY(make_int(vm, q[0]));
        break;
    case 'M':
        WV_TRY(take(vm, 2, "BININT2", &q));
        WV_TRY(make_int(vm, wv__le16(q)));
        break;
    case 0x8a:
        WV_TRY(take_len(vm, 1, "LONG1", &q, &len));
        WV_TRY(make_long(vm, q, len));
        break;
    case 0x8b:
        WV_TRY(take_len(vm, 4, "LONG4", &q, &len));
        WV_TRY(make_long(vm, q, len));
        break;
    case 'G': {
        WV_TRY(take(vm, 8, "BINFLOAT", &q));
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
            u = (u << 8) | q[i];
        o = new_obj(vm->pk, WV__PK_FLOAT);
        if (o)
            memcpy(&o->f, &u, sizeof o->f);
        WV_TRY(push(vm, o));
        break;
    }
    case 'X':
        WV_TRY(take_len(vm, 4, "BINUNICODE", &q, &len));
        WV_TRY(make_str(vm, WV__PK_STR, q, len, "BINUNICODE"));
        break;
    case 0x8c:
        WV_TRY(take_len(vm, 1, "SHORT_BINUNICODE", &q, &len));
        WV_TRY(make_str(vm, WV__PK_STR, q, len, "SHORT_BINUNICODE"));
        break;
    case 0x8d:
        WV_TRY(take_len(vm, 8, "BINUNICODE8", &q, &len));
        WV_TRY(make_str(vm, WV__PK_STR, q, len, "BINUNICODE8"));
        break;
    case 'U':
        WV_TRY(take_len(vm, 1, "SHORT_BINSTRING", &q, &len));
        WV_TRY(make_str(vm, WV__PK_STR, q, len, "SHORT_BINSTRING"));
        break;
    case 'T':
        WV_TRY(take_len(vm, 4, "BINSTRING", &q, &len));
        WV_TRY(make_str(vm, WV__PK_STR, q, len, "BINSTRING"));
        break;
    case 'C':
        WV_TRY(take_len(vm, 1, "SHORT_BINBYTES", &q, &len));
        WV_TRY(make_str(vm, WV__PK_BYTES, q, len, "SHORT_BINBYTES"));
        break;
    case 'B':
        WV_TRY(take_len(vm, 4, "BINBYTES", &q, &len));
        WV_TRY(make_str(vm, WV__PK_BYTES, q, len, "BINBYTES"));
        break;
    case 0x8e:
        WV_TRY(take_len(vm, 8, "BINBYTES8", &q, &len));
        WV_TRY(make_str(vm, WV__PK_BYTES, q, len, "BINBYTES8"));
        break;
    case ')':
        WV_TRY(push(vm, new_obj(vm->pk, WV__PK_TUPLE)));
        break;
    case ']':
        WV_TRY(push(vm, new_obj(vm->pk, WV__PK_LIST)));
        break;
    case '}':
        WV_TRY(push(vm, new_obj(vm->pk, WV__PK_DICT)));
        break;
    case 0x8f: /* EMPTY_SET: kept as an opaque object that takes items */
        o = new_obj(vm->pk, WV__PK_OPAQUE);
        if (o)
            o->i = 1;
        WV_TRY(push(vm, o));
        break;
    case 't':
    case 'l':
    case 0x91: /* FROZENSET */
        WV_TRY(marked(vm, &base, op == 't' ? "TUPLE" : op == 'l'
                                                           ? "LIST"
                                                           : "FROZENSET"));
        o = new_obj(vm->pk, op == 't'   ? WV__PK_TUPLE
                            : op == 'l' ? WV__PK_LIST
                                        : WV__PK_OPAQUE);
        VCHECK(o != NULL, WV_NOMEM, "%s", "out of memory");
        if (op != 0x91)
            for (size_t i = base; i < vm->sp; i++)
                VCHECK(add_item(o, vm->stack[i]), WV_NOMEM, "%s",
                       "out of memory");
        vm->sp = base;
        WV_TRY(push(vm, o));
        break;
    case 0x85:
    case 0x86:
    case 0x87: {
        size_t k = (size_t)(op - 0x84);
        WV_TRY(need(vm, k, "TUPLEn"));
        o = new_obj(vm->pk, WV__PK_TUPLE);
        VCHECK(o != NULL, WV_NOMEM, "%s", "out of memory");
        for (size_t i = vm->sp - k; i < vm->sp; i++)
            VCHECK(add_item(o, vm->stack[i]), WV_NOMEM, "%s",
                   "out of memory");
        vm->sp -= k;
        WV_TRY(push(vm, o));
        break;
    }
    case 'a':
        WV_TRY(need(vm, 2, "APPEND"));
        a = vm->stack[vm->sp - 2];
        VCHECK(a->kind == WV__PK_LIST, WV_FORMAT,
               "APPEND to a %s (only lists take APPEND)", kind_name(a));
        VCHECK(add_item(a, vm->stack[vm->sp - 1]), WV_NOMEM, "%s",
               "out of memory");
        vm->sp--;
        break;
    case 'e':
    case 0x90: /* ADDITEMS */
        WV_TRY(marked(vm, &base, op == 'e' ? "APPENDS" : "ADDITEMS"));
        VCHECK(base > (vm->nm ? vm->marks[vm->nm - 1] : 0), WV_CORRUPT,
               "%s", "APPENDS/ADDITEMS without a target (stack underflow)");
        a = vm->stack[base - 1];
        if (op == 'e') {
            VCHECK(a->kind == WV__PK_LIST, WV_FORMAT,
                   "APPENDS to a %s (only lists take APPENDS)",
                   kind_name(a));
            for (size_t i = base; i < vm->sp; i++)
                VCHECK(add_item(a, vm->stack[i]), WV_NOMEM, "%s",
                       "out of memory");
        } else {
            VCHECK(a->kind == WV__PK_OPAQUE && a->i == 1, WV_FORMAT,
                   "ADDITEMS to a %s (only sets take ADDITEMS)",
                   kind_name(a));
            for (size_t i = base; i < vm->sp; i++)
                VCHECK(add_item(a, vm->stack[i]), WV_NOMEM, "%s",
                       "out of memory");
        }
        vm->sp = base;
        break;
    case 'd':
        WV_TRY(marked(vm, &base, "DICT"));
        VCHECK((vm->sp - base) % 2 == 0, WV_CORRUPT, "%s",
               "DICT with an odd number of items");
        o = new_obj(vm->pk, WV__PK_DICT);
        VCHECK(o != NULL, WV_NOMEM, "%s", "out of memory");
        for (size_t i = base; i < vm->sp; i++)
            VCHECK(add_item(o, vm->stack[i]), WV_NOMEM, "%s",
                   "out of memory");
        vm->sp = base;
        WV_TRY(push(vm, o));
        break;
    case 's':
        WV_TRY(need(vm, 3, "SETITEM"));
        a = vm->stack[vm->sp - 3];
        VCHECK(a->kind == WV__PK_DICT || a->kind == WV__PK_OBJECT,
               WV_FORMAT, "SETITEM on a %s (only dicts take SETITEM)",
               kind_name(a));
        VCHECK(add_item(a, vm->stack[vm->sp - 2]) &&
                   add_item(a, vm->stack[vm->sp - 1]),
               WV_NOMEM, "%s", "out of memory");
        vm->sp -= 2;
        break;
    case 'u':
        WV_TRY(marked(vm, &base, "SETITEMS"));
        VCHECK(base > (vm->nm ? vm->marks[vm->nm - 1] : 0), WV_CORRUPT,
               "%s", "SETITEMS without a target (stack underflow)");
        VCHECK((vm->sp - base) % 2 == 0, WV_CORRUPT, "%s",
               "SETITEMS with an odd number of items");
        a = vm->stack[base - 1];
        VCHECK(a->kind == WV__PK_DICT || a->kind == WV__PK_OBJECT,
               WV_FORMAT, "SETITEMS on a %s (only dicts take SETITEMS)",
               kind_name(a));
        for (size_t i = base; i < vm->sp; i++)
            VCHECK(add_item(a, vm->stack[i]), WV_NOMEM, "%s",
                   "out of memory");
        vm->sp = base;
        break;
    case 'c': {
        const char *m = NULL, *nm = NULL;
        size_t ml = 0, nl = 0;
        WV_TRY(read_line(vm, &m, &ml, "GLOBAL module"));
        WV_TRY(read_line(vm, &nm, &nl, "GLOBAL name"));
        WV_TRY(make_global(vm, m, ml, nm, nl));
        break;
    }
    case 'i': {
        const char *m = NULL, *nm = NULL;
        size_t ml = 0, nl = 0;
        WV_TRY(read_line(vm, &m, &ml, "INST module"));
        WV_TRY(read_line(vm, &nm, &nl, "INST name"));
        VCHECK(0, WV_FORMAT, "refusing global %.*s.%.*s (INST)",
               (int)(ml > 100 ? 100 : ml), m, (int)(nl > 100 ? 100 : nl),
               nm);
        break;
    }
    case 0x93: /* STACK_GLOBAL */
        WV_TRY(need(vm, 2, "STACK_GLOBAL"));
        a = vm->stack[vm->sp - 2];
        b = vm->stack[vm->sp - 1];
        VCHECK(a->kind == WV__PK_STR && b->kind == WV__PK_STR, WV_CORRUPT,
               "%s", "STACK_GLOBAL needs two strings");
        vm->sp -= 2;
        WV_TRY(make_global(vm, a->s, a->len, b->s, b->len));
        break;
    case 'R':
    case 0x81: /* NEWOBJ */
        WV_TRY(need(vm, 2, op == 'R' ? "REDUCE" : "NEWOBJ"));
        a = vm->stack[vm->sp - 2];
        b = vm->stack[vm->sp - 1];
        if (op == 0x81)
            VCHECK(a->kind == WV__PK_GLOBAL &&
                       (a->gid == WV__G_PARAMETER ||
                        a->gid == WV__G_ORDEREDDICT ||
                        a->gid == WV__G_PLACEHOLDER),
                   WV_FORMAT, "refusing NEWOBJ of %s",
                   a->kind == WV__PK_GLOBAL ? a->s : kind_name(a));
        WV_TRY(call(vm, a, b, &o, op == 'R' ? "REDUCE" : "NEWOBJ"));
        vm->sp -= 2;
        WV_TRY(push(vm, o));
        break;
    case 'b':
        WV_TRY(need(vm, 2, "BUILD"));
        WV_TRY(build(vm, vm->stack[vm->sp - 2], vm->stack[vm->sp - 1]));
        vm->sp--;
        break;
    case 'Q':
        WV_TRY(need(vm, 1, "BINPERSID"));
        WV_TRY(persid(vm));
        break;
    case 'q':
        WV_TRY(take(vm, 1, "BINPUT", &q));
        WV_TRY(memo_put(vm, q[0]));
        break;
    case 'r':
        WV_TRY(take(vm, 4, "LONG_BINPUT", &q));
        WV_TRY(memo_put(vm, wv__le32(q)));
        break;
    case 0x94: /* MEMOIZE */
        WV_TRY(memo_put(vm, vm->memo_count));
        break;
    case 'h':
        WV_TRY(take(vm, 1, "BINGET", &q));
        WV_TRY(memo_get(vm, q[0]));
        break;
    case 'j':
        WV_TRY(take(vm, 4, "LONG_BINGET", &q));
        WV_TRY(memo_get(vm, wv__le32(q)));
        break;
    default:
        VCHECK(0, WV_FORMAT, "refusing pickle opcode 0x%02x (%s)", op,
               opname(op));
    }
out:
    return rc;
}

int wv__pk_load(struct wv__pk *pk, const unsigned char *p, size_t n,
                size_t *used, struct wv__pk_obj **out)
{
    int rc = WV_OK;
    struct vm v = {0}, *vm = &v;
    bool stop = false;

    *out = NULL;
    *used = 0;
    vm->pk = pk;
    vm->p = p;
    vm->n = n;
    while (!stop) {
        vm->op_pos = vm->pos;
        VCHECK(vm->pos < vm->n, WV_CORRUPT, "%s",
               "pickle ends without STOP (truncated)");
        WV_TRY(step(vm, &stop));
        /* Memory grows with the pickle, never faster than a constant per
         * byte; the budget bounds it by the file (a deflated data.pkl). */
        uint64_t now = pk->mem + (uint64_t)(vm->scap + vm->memo_len) *
                                     sizeof(void *) +
                       (uint64_t)vm->mcap * sizeof(size_t);
        if (now > pk->charged) {
            WV_TRY(wv__expand_charge(pk->ex, now - pk->charged, "pickle",
                                     pk->err));
            pk->charged = now;
        }
    }
    *out = vm->stack[0];
    *used = vm->pos;
out:
    wv__free(vm->stack);
    wv__free(vm->marks);
    wv__free(vm->memo);
    return rc;
}

/* ---- text forms --------------------------------------------------------- */

void wv__pk_int_str(const struct wv__pk_obj *o, struct wv__buf *b)
{
    if (o->kind == WV__PK_INT) {
        wv__buf_addf(b, "%lld", (long long)o->i);
        return;
    }
    /* BIGINT: magnitude in base 256, most significant first, then
     * repeated division by 10^9. */
    size_t n = o->len;
    const unsigned char *q = (const unsigned char *)o->s;
    bool neg = n > 0 && (q[n - 1] & 0x80);
    unsigned char mag[MAX_LONG_BYTES];
    uint32_t chunks[MAX_LONG_BYTES * 8 / 29 + 2];
    size_t nc = 0;
    unsigned carry = 1;
    for (size_t i = 0; i < n; i++) {
        unsigned v = q[i];
        if (neg) {
            v = (~v & 0xffu) + carry;
            carry = v >> 8;
            v &= 0xffu;
        }
        mag[n - 1 - i] = (unsigned char)v;
    }
    size_t start = 0;
    while (start < n) {
        uint64_t rem = 0;
        for (size_t i = start; i < n; i++) {
            uint64_t cur = (rem << 8) | mag[i];
            mag[i] = (unsigned char)(cur / 1000000000u);
            rem = cur % 1000000000u;
        }
        chunks[nc++] = (uint32_t)rem;
        while (start < n && mag[start] == 0)
            start++;
    }
    if (neg)
        wv__buf_addc(b, '-');
    if (nc == 0) {
        wv__buf_addc(b, '0');
        return;
    }
    wv__buf_addf(b, "%u", (unsigned)chunks[nc - 1]);
    for (size_t i = nc - 1; i-- > 0;)
        wv__buf_addf(b, "%09u", (unsigned)chunks[i]);
}

void wv__pk_float_repr(double f, char *buf, size_t cap)
{
    char tmp[40], digits[24];
    int e = 0, k = 0;
    bool neg;

    if (isnan(f)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, "%s", f < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f)
            break;
    }
    /* tmp is "[-]d[.ddd]e[+-]xx". */
    const char *s = tmp;
    neg = *s == '-';
    if (neg)
        s++;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && k < (int)sizeof digits - 1)
            digits[k++] = *s;
    if (*s == 'e')
        e = (int)strtol(s + 1, NULL, 10);
    while (k > 1 && digits[k - 1] == '0')
        k--;
    digits[k] = '\0';
    if (f == 0)
        e = 0;
    struct wv__buf b = {0};
    if (neg)
        wv__buf_addc(&b, '-');
    if (e >= -4 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++)
                wv__buf_addc(&b, i < k ? digits[i] : '0');
            wv__buf_addc(&b, '.');
            if (k > e + 1)
                wv__buf_add(&b, digits + e + 1, (size_t)(k - e - 1));
            else
                wv__buf_addc(&b, '0');
        } else {
            wv__buf_adds(&b, "0.");
            for (int i = 0; i < -e - 1; i++)
                wv__buf_addc(&b, '0');
            wv__buf_add(&b, digits, (size_t)k);
        }
    } else {
        wv__buf_addc(&b, digits[0]);
        if (k > 1) {
            wv__buf_addc(&b, '.');
            wv__buf_add(&b, digits + 1, (size_t)(k - 1));
        }
        wv__buf_addf(&b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    if (b.oom || b.p == NULL)
        snprintf(buf, cap, "%.17g", f);
    else
        snprintf(buf, cap, "%.*s", (int)b.len, b.p);
    wv__buf_release(&b);
}
