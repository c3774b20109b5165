/*
 * mem.c -- an in-memory backend ("mem://name") for tests. Stores with the
 * same name share their contents within a process, so a test can open a
 * repository twice. The list of names is guarded by a mutex (stores may
 * be opened on several threads); the contents of one name are not: not
 * thread-safe across stores of the same name.
 */
#include "core.h"
#include "store.h"

#include <pthread.h>

struct obj {
    char *key;
    unsigned char *data;
    size_t len;
};

struct space {
    char *name;
    struct obj *objs;
    size_t n, cap;
    struct space *next;
};

static struct space *spaces; /* guarded by spaces_mu */
static pthread_mutex_t spaces_mu = PTHREAD_MUTEX_INITIALIZER;

struct mem {
    struct wv__store base;
    struct space *sp;
};

static struct obj *find(struct space *sp, const char *key)
{
    for (size_t i = 0; i < sp->n; i++)
        if (strcmp(sp->objs[i].key, key) == 0)
            return &sp->objs[i];
    return NULL;
}

static void m_close(struct wv__store *s)
{
    wv__free(s);
}

static int m_get(struct wv__store *s, const char *key, uint64_t off,
                 void *buf, size_t len, size_t *nread)
{
    struct obj *o = find(((struct mem *)s)->sp, key);
    if (o == NULL)
        return wv__seterr(s->err, WV_NOTFOUND, "%s: no object '%s'", s->uri,
                          key);
    size_t avail = off >= o->len ? 0 : o->len - (size_t)off;
    size_t n = len < avail ? len : avail;
    if (n)
        memcpy(buf, o->data + off, n);
    *nread = n;
    if (n < len) {
        memset((unsigned char *)buf + n, 0, len - n);
        return WV_IO_SHORT_READ;
    }
    return WV_OK;
}

static int m_put(struct wv__store *s, const char *key, const void *buf,
                 size_t len, unsigned flags)
{
    struct space *sp = ((struct mem *)s)->sp;
    struct obj *o = find(sp, key);
    if (o && (flags & WV_PUT_IF_ABSENT))
        return WV_OK;
    unsigned char *d = wv__malloc(len);
    if (d == NULL)
        return WV_NOMEM;
    if (len)
        memcpy(d, buf, len);
    if (o == NULL) {
        if (sp->n == sp->cap) {
            size_t cap = sp->cap ? sp->cap * 2 : 16;
            struct obj *no = wv__realloc(sp->objs, cap * sizeof *no);
            if (no == NULL) {
                wv__free(d);
                return WV_NOMEM;
            }
            sp->objs = no;
            sp->cap = cap;
        }
        o = &sp->objs[sp->n];
        o->key = wv__strdup(key);
        if (o->key == NULL) {
            wv__free(d);
            return WV_NOMEM;
        }
        o->data = NULL;
        sp->n++;
    }
    wv__free(o->data);
    o->data = d;
    o->len = len;
    return WV_OK;
}

static int m_stat(struct wv__store *s, const char *key, uint64_t *size)
{
    struct obj *o = find(((struct mem *)s)->sp, key);
    if (o == NULL)
        return WV_NOTFOUND;
    *size = o->len;
    return WV_OK;
}

static int m_del(struct wv__store *s, const char *key)
{
    struct space *sp = ((struct mem *)s)->sp;
    struct obj *o = find(sp, key);
    if (o == NULL)
        return WV_NOTFOUND;
    wv__free(o->key);
    wv__free(o->data);
    *o = sp->objs[--sp->n];
    return WV_OK;
}

static int m_list(struct wv__store *s, const char *prefix,
                  int (*cb)(void *, const char *, uint64_t), void *arg)
{
    struct space *sp = ((struct mem *)s)->sp;
    size_t pl = strlen(prefix);
    for (size_t i = 0; i < sp->n; i++) {
        if (strncmp(sp->objs[i].key, prefix, pl) != 0)
            continue;
        int rc = cb(arg, sp->objs[i].key, sp->objs[i].len);
        if (rc != WV_OK)
            return rc;
    }
    return WV_OK;
}

static int m_ref_get(struct wv__store *s, const char *ref, char *buf,
                     size_t cap)
{
    struct obj *o = find(((struct mem *)s)->sp, ref);
    if (o == NULL)
        return WV_NOTFOUND;
    size_t n = o->len < cap - 1 ? o->len : cap - 1;
    memcpy(buf, o->data, n);
    buf[n] = '\0';
    return WV_OK;
}

static int m_ref_cas(struct wv__store *s, const char *ref, const char *expect,
                     const char *desired)
{
    char cur[256];
    int rc = m_ref_get(s, ref, cur, sizeof cur);
    bool exists = rc == WV_OK;
    if ((expect == NULL) != !exists || (expect && strcmp(expect, cur) != 0))
        return wv__seterr(s->err, WV_CONFLICT,
                          "%s: ref '%s' changed while updating it", s->uri,
                          ref);
    if (desired == NULL)
        return m_del(s, ref);
    return m_put(s, ref, desired, strlen(desired), 0);
}

static int m_control(struct wv__store *s, int op, void *arg)
{
    (void)s;
    (void)arg;
    return op == WV_STORE_SYNC ? WV_OK : WV_NOTFOUND;
}

static const struct wv__store_methods mem_methods = {
    2, m_close, m_get, m_put, m_stat, m_del, m_list, m_ref_get, m_ref_cas,
    m_control, NULL, NULL, NULL, NULL,
};

static int m_open(const char *uri, const char *rest, bool create,
                  struct wv__err *err, struct wv__store **out)
{
    struct space *sp;
    int rc = WV_OK;
    pthread_mutex_lock(&spaces_mu);
    for (sp = spaces; sp; sp = sp->next)
        if (strcmp(sp->name, rest) == 0)
            break;
    if (sp == NULL && !create) {
        rc = wv__seterr(err, WV_NOTFOUND, "%s: no such store", uri);
    } else if (sp == NULL) {
        sp = wv__calloc(1, sizeof *sp);
        if (sp != NULL && (sp->name = wv__strdup(rest)) == NULL) {
            wv__free(sp);
            sp = NULL;
        }
        if (sp == NULL) {
            rc = wv__seterr(err, WV_NOMEM, "out of memory");
        } else {
            sp->next = spaces;
            spaces = sp;
        }
    }
    pthread_mutex_unlock(&spaces_mu);
    if (rc != WV_OK)
        return rc;
    struct mem *m = wv__calloc(1, sizeof *m);
    if (m == NULL)
        return wv__seterr(err, WV_NOMEM, "out of memory");
    m->base.methods = &mem_methods;
    m->base.err = err;
    m->base.uri = uri;
    m->sp = sp;
    *out = &m->base;
    return WV_OK;
}

const struct wv__backend wv__backend_mem = {"mem", m_open};
