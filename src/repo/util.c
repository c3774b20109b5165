/*
 * util.c -- helpers every room of src/repo/ shares: hex, the store keys of
 * packs and manifests, ref names, listing keys under a prefix, the time.
 * Calls only the store and core, so any file here may use it.
 */
#include "repo.h"

/* ---- hex and keys ------------------------------------------------------- */

void wv__hex(const unsigned char *id, size_t n, char *out)
{
    static const char h[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = h[id[i] >> 4];
        out[2 * i + 1] = h[id[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Exactly 2n hex digits, then the terminator. */
int wv__unhex(const char *hex, unsigned char *id, size_t n)
{
    return wv__unhex_n(hex, id, n) == 0 && hex[2 * n] == '\0' ? 0 : -1;
}

void wv__pack_key(const unsigned char id[32], char out[96])
{
    char hex[65];
    wv__hex(id, 32, hex);
    snprintf(out, 96, "packs/%.2s/%s", hex, hex);
}

void wv__manifest_key(const char *hex, char out[96])
{
    snprintf(out, 96, "manifests/%.2s/%s", hex, hex);
}

/* 1 to 100 of [A-Za-z0-9._-], not starting with '.'. */
static bool name_chars_ok(const char *name, size_t n)
{
    if (n == 0 || n > 100 || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool wv__ref_name_ok(const char *name)
{
    size_t n = strlen(name);
    return name_chars_ok(name, n) && name[0] != '-' &&
           strstr(name, "..") == NULL &&
           !(n >= 5 && strcmp(name + n - 5, ".lock") == 0);
}

bool wv__txn_name_ok(const char *name)
{
    return name_chars_ok(name, strlen(name));
}

bool wv__is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* n bytes from 2n hex digits (no terminator needed); -1 if not hex. */
int wv__unhex_n(const char *hex, unsigned char *out, size_t n)
{
    if (!wv__is_hex(hex, 2 * n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        for (int d = 0; d < 2; d++) {
            char c = hex[2 * i + (size_t)d];
            v = v * 16 + (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}


/* ---- listing ------------------------------------------------------------ */

static int collect_obj(void *arg, const char *key, uint64_t size)
{
    struct wv__objlist *l = arg;
    if (wv__grow(&l->v, &l->cap, l->n, sizeof *l->v, 256) != WV_OK)
        return WV_NOMEM;
    if ((l->v[l->n].key = wv__strdup(key)) == NULL)
        return WV_NOMEM;
    l->v[l->n++].size = size;
    return WV_OK;
}

int wv__repo_list_sized(wv_repo *r, const char *prefix,
                        struct wv__objlist *out)
{
    int rc = wv__store_list(r->store, prefix, collect_obj, out);
    if (rc == WV_NOMEM)
        wv__seterr(&r->err, rc, "out of memory listing '%s'", prefix);
    return rc;
}

void wv__objlist_release(struct wv__objlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        wv__free(l->v[i].key);
    wv__free(l->v);
    memset(l, 0, sizeof *l);
}

int wv__repo_list(wv_repo *r, const char *prefix, char ***keys, size_t *n)
{
    struct wv__objlist l = {0};
    char **v = NULL;
    *keys = NULL;
    *n = 0;
    int rc = wv__repo_list_sized(r, prefix, &l);
    if (rc == WV_OK && (v = wv__calloc(l.n ? l.n : 1, sizeof *v)) == NULL)
        rc = wv__seterr(&r->err, WV_NOMEM, "out of memory");
    if (rc != WV_OK) {
        wv__objlist_release(&l);
        return rc;
    }
    for (size_t i = 0; i < l.n; i++)
        v[i] = l.v[i].key; /* the keys move to v */
    *keys = v;
    *n = l.n;
    wv__free(l.v);
    return WV_OK;
}

void wv__repo_list_free(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wv__free(keys[i]);
    wv__free(keys);
}

/* ---- time --------------------------------------------------------------- */

void wv__utc_now(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
