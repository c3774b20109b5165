/*
 * fmt.c -- the format table, content detection, and the public load and
 * save entry points that open files and hand them to a format.
 *
 * Detection is by content, never by extension: a reader gets the first
 * bytes and the file size. Every load gets one amplification budget (see
 * wv__expand_charge below), the only place the bound is enforced. Writing
 * picks the format from the options or the target's extension (a target
 * that is a directory, or ends in '/', is a TF.js DIR/model.json), and
 * always goes through an atomic wv__wfile.
 */
#include "core.h"
#include "fmt.h"
#include "tensor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Probe order matters where containers overlap: zip-based formats that
 * look for their own members (pth, keras) come before npz. */
static const struct wv__format_ops *const formats[] = {
    &wv__fmt_safetensors,
    &wv__fmt_npy,
    &wv__fmt_gguf,
    &wv__fmt_mxnet,
    &wv__fmt_pth,
    &wv__fmt_keras,
    &wv__fmt_npz,
    &wv__fmt_tfjs,     /* JSON with a weightsManifest */
    &wv__fmt_tfbundle, /* its magic is at the end of the file */
    &wv__fmt_onnx,     /* last: no magic, a whole protobuf ModelProto walk */
};
#define N_FORMATS (sizeof formats / sizeof formats[0])

const struct wv__format_ops *wv__format_get(wv_format id)
{
    for (size_t i = 0; i < N_FORMATS; i++)
        if (formats[i]->id == id)
            return formats[i];
    return NULL;
}

const char *wv_format_name(wv_format fmt)
{
    const struct wv__format_ops *f = wv__format_get(fmt);
    return f ? f->name : NULL;
}

int wv_format_from_name(const char *name, wv_format *out)
{
    for (size_t i = 0; i < N_FORMATS; i++) {
        if (strcmp(formats[i]->name, name) == 0) {
            *out = formats[i]->id;
            return WV_OK;
        }
    }
    *out = WV_FMT_AUTO;
    return WV_NOTFOUND;
}

int wv_format_from_path(const char *path, wv_format *out)
{
    size_t pl = strlen(path);
    for (size_t i = 0; i < N_FORMATS; i++) {
        const char *e = formats[i]->ext;
        while (*e) {
            size_t el = strcspn(e, " ");
            if (pl > el && memcmp(path + pl - el, e, el) == 0) {
                *out = formats[i]->id;
                return WV_OK;
            }
            e += el;
            e += strspn(e, " ");
        }
    }
    *out = WV_FMT_AUTO;
    return WV_NOTFOUND;
}

/* A save to `path` writes a TF.js directory: it ends in '/' or names one. */
static bool dir_target(const char *path)
{
    struct stat st;
    size_t pl = strlen(path);
    return pl > 0 && (path[pl - 1] == '/' ||
                      (stat(path, &st) == 0 && S_ISDIR(st.st_mode)));
}

int wv_format_for_save(const char *path, wv_format *out)
{
    if (dir_target(path)) {
        *out = WV_FMT_TFJS;
        return WV_OK;
    }
    return wv_format_from_path(path, out);
}

static void copy_err(const wv_load_opts *o, const struct wv__err *e)
{
    if (o && o->errbuf && o->errbuf_size)
        snprintf(o->errbuf, o->errbuf_size, "%s", e->msg);
}

/* ---- the amplification bound ---------------------------------------------
 * The only place that enforces WV_MAX_EXPAND_DEFAULT (or the caller's
 * factor): readers charge what they allocate beyond the input through
 * wv__expand_charge(), and expand_output() checks the tensor bytes a load
 * produced before the set is handed out. */

static uint64_t expand_factor(const wv_load_opts *o)
{
    if (o && wv__load_opts_has_max_expand(o) && o->max_expand > 0)
        return o->max_expand;
    const char *env = getenv("WV_MAX_EXPAND");
    if (env && *env) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(env, &end, 10);
        if (errno == 0 && end && *end == '\0' && v > 0 && env[0] != '-')
            return (uint64_t)v;
    }
    return WV_MAX_EXPAND_DEFAULT;
}

static void expand_init(struct wv__expand *ex, uint64_t size,
                        const wv_load_opts *o, const char *name)
{
    ex->factor = expand_factor(o);
    ex->used = 0;
    ex->name = name;
    if (wv__mul_overflow(size, ex->factor, &ex->limit) ||
        wv__add_overflow(ex->limit, WV__EXPAND_SLACK, &ex->limit))
        ex->limit = UINT64_MAX;
}

int wv__expand_charge(struct wv__expand *ex, uint64_t bytes, const char *what,
                      struct wv__err *err)
{
    if (ex == NULL)
        return WV_OK;
    if (wv__add_overflow(ex->used, bytes, &ex->used) || ex->used > ex->limit) {
        char esc[256];
        wv__esc_name(what, strlen(what), esc, sizeof esc);
        ex->used = UINT64_MAX;
        return wv__seterr(err, WV_RANGE,
                          "%s: '%s' would take reading this file past %llu "
                          "bytes of memory, %llu times its size plus 1 MiB "
                          "(amplification bound; raise it with --max-expand "
                          "N or WV_MAX_EXPAND)",
                          ex->name, esc, (unsigned long long)ex->limit,
                          (unsigned long long)ex->factor);
    }
    return WV_OK;
}

void wv__expand_add_input(struct wv__expand *ex, uint64_t size)
{
    uint64_t more;
    if (ex == NULL)
        return;
    if (wv__mul_overflow(size, ex->factor, &more) ||
        wv__add_overflow(ex->limit, more, &ex->limit))
        ex->limit = UINT64_MAX;
}

int wv__open_part(const char *what, const char *role, const char *path,
                  bool use_map, wv_model *m, struct wv__expand *ex, int *fd,
                  struct wv__src *src, struct wv__err *err)
{
    int rc = WV_OK;
    struct stat st;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    WV_CHECK(*fd >= 0, errno == ENOENT ? WV_NOTFOUND : WV_IO, "%s: %s %s: %s",
             what, role, path, strerror(errno));
    WV_CHECK(fstat(*fd, &st) == 0 && S_ISREG(st.st_mode), WV_IO,
             "%s: %s %s is not a readable regular file", what, role, path);
    *src = (struct wv__src){.fd = *fd, .size = (uint64_t)st.st_size,
                            .name = path};
    wv__expand_add_input(ex, (uint64_t)st.st_size);
    if (use_map && st.st_size > 0) {
        WV_CHECK((uint64_t)st.st_size <= SIZE_MAX, WV_RANGE,
                 "%s: %s %s: too large to map", what, role, path);
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE,
                         *fd, 0);
        WV_CHECK(map != MAP_FAILED, WV_IO, "%s: %s %s: mmap failed: %s", what,
                 role, path, strerror(errno));
        WV_CHECK(m == NULL ||
                     wv__model_keep(m, map, (size_t)st.st_size, true) ==
                         WV_OK,
                 WV_NOMEM, "out of memory");
        src->map = map;
    } else if (use_map) {
        src->map = (const unsigned char *)"";
    }
out:
    return rc;
}

static int expand_output(const struct wv__expand *ex, const wv_model *m,
                         struct wv__err *err)
{
    uint64_t total = 0;
    for (size_t i = 0; i < m->n_tensors; i++)
        if (wv__add_overflow(total, m->tensors[i].nbytes, &total))
            total = UINT64_MAX;
    if (total <= ex->limit)
        return WV_OK;
    return wv__seterr(err, WV_RANGE,
                      "%s: its %zu tensors hold %llu bytes, more than %llu "
                      "times the file's size plus 1 MiB (%llu bytes; "
                      "amplification bound: raise it with --max-expand N or "
                      "WV_MAX_EXPAND)",
                      ex->name, m->n_tensors, (unsigned long long)total,
                      (unsigned long long)ex->factor,
                      (unsigned long long)ex->limit);
}

/* Probe and load from an open source into a new set. */
int wv__load_src(const struct wv__src *src_in, const wv_load_opts *o,
                 wv_model **out, struct wv__err *err, void *map,
                 size_t map_len)
{
    int rc = WV_OK;
    wv_model *m = NULL;
    const struct wv__format_ops *f = NULL;
    unsigned char head[64];
    struct wv__expand ex;
    struct wv__src srcv = *src_in;
    const struct wv__src *src = &srcv;
    size_t hn = src->size < sizeof head ? (size_t)src->size : sizeof head;

    expand_init(&ex, src->size, o, src->name);
    srcv.ex = &ex;
    srcv.check_sums = o && (o->flags & WV_LOAD_CHECKSUMS);

    if (o && o->format != WV_FMT_AUTO) {
        f = wv__format_get(o->format);
        WV_CHECK(f != NULL, WV_MISUSE, "%s: unknown format %d", src->name,
                 (int)o->format);
    } else {
        WV_TRY(wv__src_read(src, 0, head, hn, err));
        for (size_t i = 0; i < N_FORMATS && f == NULL; i++)
            if (formats[i]->probe(src, head, hn))
                f = formats[i];
        WV_CHECK(f != NULL, WV_FORMAT,
                 "%s: not a recognised weights file (known formats: "
                 "safetensors, npy, npz, pth, keras, mxnet, gguf, tensorflow, "
                 "tfjs, onnx)",
                 src->name);
    }
    WV_CHECK(wv_model_new(&m) == WV_OK, WV_NOMEM, "out of memory");
    WV_CHECK(wv__model_keep(m, map, map_len, true) == WV_OK, WV_NOMEM,
             "out of memory");
    map = NULL;
    m->source_format = f->name;
    m->index_only = o && (o->flags & WV_LOAD_INDEX);
    WV_TRY(f->load(src, o ? o->flags : 0, m, err));
    WV_TRY(expand_output(&ex, m, err));
    if (src->names) {
        rc = wv__model_select(m, src->names, src->n_names, err);
        if (rc != WV_OK) {
            char msg[WV_ERRBUF_SIZE];
            snprintf(msg, sizeof msg, "%s", err->msg);
            wv__clearerr(err);
            WV_CHECK(0, rc, "%s: %s", src->name, msg);
        }
    }
out:
    if (map)
        munmap(map, map_len);
    if (rc != WV_OK) {
        wv_model_free(m);
        m = NULL;
    }
    *out = m;
    return rc;
}

int wv_model_load(const char *path, const wv_load_opts *opts, wv_model **out)
{
    struct wv__err e = {0};
    *out = NULL;
    if (opts && opts->struct_size < offsetof(wv_load_opts, names))
        return WV_MISUSE;
    int rc = wv__load_file(path, opts, out, &e, true);
    if (rc != WV_OK)
        copy_err(opts, &e);
    return rc;
}

/* s3://, http://, https://: read by remote.c (or refused by remote_off.c
 * in a build without libcurl), never opened as local paths. */
bool wv__is_url(const char *path)
{
    return strncmp(path, "s3://", 5) == 0 ||
           strncmp(path, "http://", 7) == 0 ||
           strncmp(path, "https://", 8) == 0;
}

int wv__load_file(const char *path, const wv_load_opts *opts, wv_model **out,
                  struct wv__err *err, bool allow_index)
{
    int rc = WV_OK;
    int fd = -1;
    void *map = NULL;
    size_t map_len = 0;
    struct stat st;
    char *tf_index = NULL;
    *out = NULL;

    if (wv__is_url(path))
        return wv__load_remote(path, opts, out, err);
    WV_TRY(wv__tfbundle_resolve(path, &tf_index, err));
    if (tf_index)
        path = tf_index;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    WV_CHECK(fd >= 0, errno == ENOENT ? WV_NOTFOUND : WV_IO, "%s: %s", path,
             strerror(errno));
    WV_CHECK(fstat(fd, &st) == 0, WV_IO, "%s: %s", path, strerror(errno));
    WV_CHECK(S_ISREG(st.st_mode), WV_IO, "%s: not a regular file", path);
    struct wv__src src = {fd, (uint64_t)st.st_size, NULL, path, NULL, NULL,
                          NULL, 0, NULL, false};
    if (opts && wv__load_opts_has_names(opts) && opts->names) {
        src.names = opts->names;
        src.n_names = opts->n_names;
    }
    if (allow_index && (opts == NULL || opts->format == WV_FMT_AUTO)) {
        unsigned char head[64];
        size_t hn = src.size < sizeof head ? (size_t)src.size : sizeof head;
        WV_TRY(wv__src_read(&src, 0, head, hn, err));
        /* a JSON object: a shard index, unless it is a TF.js model.json */
        if (wv__shard_is_index(head, hn) &&
            !wv__fmt_tfjs.probe(&src, head, hn)) {
            rc = wv__shard_load(path, fd, src.size, opts, out, err);
            goto out;
        }
    }
    bool use_map = !(opts && (opts->flags & WV_LOAD_PREAD));
    if (use_map && st.st_size > 0) {
        WV_CHECK((uint64_t)st.st_size <= SIZE_MAX, WV_RANGE,
                 "%s: file too large to map", path);
        map_len = (size_t)st.st_size;
        map = mmap(NULL, map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        WV_CHECK(map != MAP_FAILED, WV_IO, "%s: mmap failed: %s", path,
                 strerror(errno));
        src.map = map;
    } else if (use_map) {
        src.map = (const unsigned char *)"";
    }
    rc = wv__load_src(&src, opts, out, err, map, map_len);
    map = NULL; /* load_src owns it now */
out:
    if (fd >= 0)
        close(fd);
    wv__free(tf_index);
    return rc;
}

int wv_model_load_mem(const void *buf, size_t len, const wv_load_opts *opts,
                      wv_model **out)
{
    struct wv__err e = {0};
    *out = NULL;
    if (opts && opts->struct_size < offsetof(wv_load_opts, names))
        return WV_MISUSE;
    struct wv__src src = {-1, len, buf ? buf : (const void *)"", "<memory>",
                          NULL, NULL, NULL, 0, NULL, false};
    if (opts && wv__load_opts_has_names(opts) && opts->names) {
        src.names = opts->names;
        src.n_names = opts->n_names;
    }
    int rc = wv__load_src(&src, opts, out, &e, NULL, 0);
    if (rc != WV_OK)
        copy_err(opts, &e);
    return rc;
}

/* The bytes of tensor data a save writes, casts applied: what a progress
 * callback counts towards. */
static uint64_t save_bytes(const wv_model *m, wv_dtype cast)
{
    uint64_t total = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const struct wv_tensor *t = &m->tensors[i];
        wv_dtype to = wv__cast_target(t->dtype, cast);
        if (to == t->dtype) {
            total += t->nbytes;
            continue;
        }
        uint64_t elems = 1;
        for (int d = 0; d < t->ndim; d++)
            elems *= t->shape[d];
        total += elems * wv_dtype_size(to);
    }
    return total;
}

/* The format `path` is written as under opts (WV_MISUSE if unknown). */
static int save_format(const char *path, const wv_save_opts *opts,
                       wv_format *fmt)
{
    *fmt = opts->format;
    if (*fmt == WV_FMT_AUTO && wv_format_from_path(path, fmt) != WV_OK)
        return WV_MISUSE;
    return WV_OK;
}

static bool has_shards(const wv_save_opts *opts)
{
    return opts->struct_size >= offsetof(wv_save_opts, shard_size) +
                                    sizeof opts->shard_size &&
           opts->shard_size > 0;
}

bool wv__save_streams(const char *path, const wv_save_opts *opts)
{
    static const wv_save_opts defaults = WV_SAVE_OPTS_INIT;
    wv_format fmt;
    if (opts == NULL)
        opts = &defaults;
    if (opts->struct_size < offsetof(wv_save_opts, shard_size) ||
        save_format(path, opts, &fmt) != WV_OK)
        return false;
    /* The writers that take a deferred set (see fmt.h). The others may
     * look at tensor data directly (pth compares storages, Keras and
     * MXNet lay out groups, TF.js and ONNX shard and template). */
    bool streams = fmt == WV_FMT_SAFETENSORS || fmt == WV_FMT_NPY ||
                   fmt == WV_FMT_NPZ || fmt == WV_FMT_GGUF;
    return streams && !has_shards(opts);
}

/* A TF.js model is a directory of files (model.json and its .bin shards).
 * For an automatic or TF.js save, a path that ends in '/' or names an
 * existing directory means DIR/model.json (*owned holds that path, which
 * the caller frees) and TF.js. */
static int tfjs_target(const char **path, wv_format *fmt, char **owned,
                       struct wv__err *err)
{
    int rc = WV_OK;
    const char *p = *path;
    size_t pl = strlen(p);
    struct wv__buf b = {0};
    if ((*fmt == WV_FMT_AUTO || *fmt == WV_FMT_TFJS) && dir_target(p)) {
        wv__buf_add(&b, p, pl);
        wv__buf_adds(&b, p[pl - 1] == '/' ? "model.json" : "/model.json");
        wv__buf_addc(&b, '\0');
        WV_CHECK(!b.oom, WV_NOMEM, "out of memory");
        *path = *owned = b.p;
        memset(&b, 0, sizeof b);
        *fmt = WV_FMT_TFJS;
    }
out:
    wv__buf_release(&b);
    return rc;
}

/* The directory of a TF.js save's model.json, made if missing (one level:
 * its parent must exist). *made: the path of the directory this call made
 * (the caller removes it again if the save fails, and frees it), or NULL. */
static int tfjs_dir(const char *path, char **made, struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__buf b = {0};
    const char *sl = strrchr(path, '/');
    *made = NULL;
    if (sl == NULL || sl == path)
        goto out;
    wv__buf_add(&b, path, (size_t)(sl - path));
    wv__buf_addc(&b, '\0');
    WV_CHECK(!b.oom, WV_NOMEM, "out of memory");
    if (mkdir(b.p, 0777) == 0) {
        *made = b.p;
        memset(&b, 0, sizeof b);
    } else {
        WV_CHECK(errno == EEXIST, WV_IO, "%s: cannot make the directory: %s",
                 b.p, strerror(errno));
    }
out:
    wv__buf_release(&b);
    return rc;
}

int wv_model_save(wv_model *m, const char *path, const wv_save_opts *opts)
{
    wv__clearerr(&m->err);
    return wv__model_save_ex(m, path, opts, false, false, &m->err);
}

int wv__model_save_ex(wv_model *m, const char *path,
                      const wv_save_opts *opts, bool deferred, bool dry,
                      struct wv__err *err)
{
    static const wv_save_opts defaults = WV_SAVE_OPTS_INIT;
    int rc = WV_OK;
    struct wv__wfile f;
    bool open = false;
    wv_format fmt;
    char *owned = NULL; /* DIR/model.json for a TF.js directory */
    char *made = NULL;  /* that directory, if this save made it */

    if (opts == NULL)
        opts = &defaults;
    WV_CHECK(opts->struct_size >= offsetof(wv_save_opts, shard_size),
             WV_MISUSE,
             "save options from an incompatible header");
    WV_CHECK(opts->cast == WV_DTYPE_INVALID || opts->cast == WV_F32 ||
                 opts->cast == WV_F16 || opts->cast == WV_BF16,
             WV_MISUSE, "can only convert floating-point tensors to F32, F16 "
                        "or BF16");
    WV_CHECK(!m->index_only || deferred, WV_MISUSE,
             "%s: the tensor set was loaded with WV_LOAD_INDEX and has no "
             "data to save",
             path);
    fmt = opts->format;
    WV_TRY(tfjs_target(&path, &fmt, &owned, err));
    if (fmt == WV_FMT_AUTO)
        WV_CHECK(wv_format_from_path(path, &fmt) == WV_OK, WV_MISUSE,
                 "%s: cannot tell the format from the extension (use "
                 ".safetensors, .npy, .npz, .pth, .h5, .params or .gguf, "
                 "or name the format)",
                 path);
    const struct wv__format_ops *ops = wv__format_get(fmt);
    WV_CHECK(ops != NULL && ops->save != NULL, WV_UNSUPPORTED,
             "%s: writing this format is not supported", path);
    WV_CHECK(!deferred || wv__save_streams(path, opts), WV_MISUSE,
             "%s: %s cannot be written as it is read", path, ops->name);
    if (fmt == WV_FMT_TFJS && !dry)
        WV_TRY(tfjs_dir(path, &made, err));
    /* Only GGUF holds block-quantised tensors; for every other format they
     * must be dequantised by the cast, or the save is refused. */
    if (fmt != WV_FMT_GGUF)
        WV_TRY(wv__check_plain_dtypes(m, opts->cast, path, err));
    if (has_shards(opts) && ops->shards != WV__SHARDS_OWN) {
        WV_CHECK(ops->shards != WV__SHARDS_NONE, WV_UNSUPPORTED, "%s: %s",
                 path, ops->no_shards ? ops->no_shards
                                      : "no --shard-size for this format");
        rc = wv__shard_save(m, path, fmt, opts, err);
        goto out;
    }
    WV_TRY(dry ? wv__wfile_open_dry(&f, path, err)
               : wv__wfile_open(&f, path, err));
    open = true;
    if (opts->struct_size >= offsetof(wv_save_opts, progress_arg) +
                                 sizeof opts->progress_arg &&
        opts->progress) {
        f.progress = opts->progress;
        f.progress_arg = opts->progress_arg;
        f.progress_total = save_bytes(m, opts->cast);
    }
    rc = ops->save(m, &f, opts, err);
    if (rc == WV_OK && !dry)
        rc = wv__wfile_commit(&f);
    else
        wv__wfile_abort(&f);
    open = false;
    if (rc != WV_OK && err->code != WV_OK && strstr(err->msg, path) == NULL) {
        /* "tensor 'w': ..." from a writer: name the output and format */
        char inner[WV_ERRBUF_SIZE];
        snprintf(inner, sizeof inner, "%s", err->msg);
        wv__clearerr(err);
        wv__seterr(err, rc, "%s: cannot write it as %s: %s", path, ops->name,
                   inner);
    }
out:
    if (open)
        wv__wfile_abort(&f);
    if (rc != WV_OK && made)
        rmdir(made); /* a refused save leaves no empty directory behind */
    wv__free(made);
    wv__free(owned);
    return rc;
}
