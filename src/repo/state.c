/*
 * state.c -- what this client has seen of each encrypted repository, so a
 * store writer without the repository key cannot roll it back unnoticed
 * (docs/repo-format.md section 14.10; TUF clients keep the same kind of
 * record).
 *
 * Every sealed ref carries a counter that grows with each write, and the
 * sealed trust list (refs/trust) a version. For each repository and
 * location this file keeps the highest value seen per ref key:
 *
 *   $WV_STATE_DIR, else $XDG_STATE_HOME/weightvault, else
 *   $HOME/.local/state/weightvault
 *     <repository id, 32 hex>-<location, 16 hex>
 *       wv-state 1
 *       <ref key> <decimal counter>
 *       ...
 *
 * The repository id is a keyed hash only holders of the repository key can
 * compute (crypt.c); the location is a hash of the canonical URI (a local
 * path resolved), so a mirror that lags behind its origin is not taken
 * for a rollback of it. Updates are read-modify-write under an flock on
 * "<file>.lock" and land by rename, so concurrent clients merge their
 * records and a crash leaves the old or the new file. A state directory
 * that cannot be written only loses protection for what is not yet
 * recorded: reads go on (a read-only home must not stop a checkout); a
 * state file that cannot be parsed is an error naming it.
 */
#include "core.h"
#include "crypt.h"
#include "repo.h"
#include "trust.h"

#include <limits.h>
#include <sys/file.h>

#define STATE_MAGIC "wv-state 1\n"
#define STATE_MAX ((size_t)1 << 20) /* bytes of one state file        */
#define STATE_KEY_MAX 160           /* as wv__ref_key's buffers      */

/* The state file of r (path into out), or WV_NOTFOUND when there is no
 * directory to put it in (no $HOME). Computed once per handle, at open
 * (wv__state_open): the repository id is a keyed hash, and the location
 * a realpath and a SHA-256. */
static int state_path(wv_repo *r, char *out, size_t cap)
{
    char dir[3072], id[33], canon[PATH_MAX];
    unsigned char h[32];
    const char *e = getenv("WV_STATE_DIR");
    if (e && e[0]) {
        snprintf(dir, sizeof dir, "%s", e);
    } else if ((e = getenv("XDG_STATE_HOME")) != NULL && e[0] == '/') {
        snprintf(dir, sizeof dir, "%s/weightvault", e);
    } else if ((e = getenv("HOME")) != NULL && e[0] == '/') {
        snprintf(dir, sizeof dir, "%s/.local/state/weightvault", e);
    } else {
        return WV_NOTFOUND;
    }
    if (wv__crypt_repo_id(r, id) != WV_OK)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    const char *u = r->uri;
    if (strncmp(u, "file://", 7) == 0)
        u += 7;
    if (strstr(u, "://") == NULL && realpath(u, canon) != NULL)
        u = canon;
    wv__sha256_buf(u, strlen(u), h);
    char lh[17];
    wv__hex(h, 8, lh);
    if ((size_t)snprintf(out, cap, "%s/%s-%s", dir, id, lh) >= cap)
        return WV_NOTFOUND;
    return WV_OK;
}

/* mkdir -p of the directory of file `path`, private. */
static void state_mkdirs(const char *path)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        mkdir(p, 0700);
        *s = '/';
    }
}

struct entry {
    char key[STATE_KEY_MAX];
    uint64_t v;
};
struct table {
    struct entry *e;
    size_t n, cap;
};

/* Parse the bytes of a state file (len of them) into t. */
static int state_parse(wv_repo *r, const char *path, const char *p,
                       size_t len, struct table *t)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    size_t ml = strlen(STATE_MAGIC), at = ml;
    WV_CHECK(len >= ml && memcmp(p, STATE_MAGIC, ml) == 0, WV_CORRUPT,
             "client state file %s is not one (remove it to start over)",
             path);
    while (at < len) {
        const char *nl = memchr(p + at, '\n', len - at);
        const char *sp = nl ? memchr(p + at, ' ', (size_t)(nl - p) - at)
                            : NULL;
        WV_CHECK(nl && sp && sp > p + at &&
                     (size_t)(sp - (p + at)) < STATE_KEY_MAX &&
                     nl - sp > 1 && nl - sp <= 21,
                 WV_CORRUPT,
                 "client state file %s: bad line (remove the file to "
                 "start over)",
                 path);
        uint64_t v = 0;
        for (const char *d = sp + 1; d < nl; d++) {
            WV_CHECK(*d >= '0' && *d <= '9' &&
                         v <= (UINT64_MAX - (uint64_t)(*d - '0')) / 10,
                     WV_CORRUPT,
                     "client state file %s: bad counter (remove the file "
                     "to start over)",
                     path);
            v = v * 10 + (uint64_t)(*d - '0');
        }
        WV_CHECK(wv__grow(&t->e, &t->cap, t->n, sizeof *t->e, 16) == WV_OK,
                 WV_NOMEM, "out of memory");
        struct entry *en = &t->e[t->n++];
        memcpy(en->key, p + at, (size_t)(sp - (p + at)));
        en->key[sp - (p + at)] = '\0';
        en->v = v;
        at = (size_t)(nl - p) + 1;
    }
out:
    return rc;
}

/* Read the state file at path into t (empty if it does not exist). */
static int state_read(wv_repo *r, const char *path, struct table *t)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK;
    char *buf = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == EACCES)
            return WV_OK;
        return wv__seterr(err, WV_IO, "client state file %s: %s", path,
                          strerror(errno));
    }
    WV_CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                 (uint64_t)st.st_size <= STATE_MAX,
             WV_CORRUPT,
             "client state file %s is not a regular file of at most 1 MiB",
             path);
    buf = wv__malloc((size_t)st.st_size + 1);
    WV_CHECK(buf != NULL, WV_NOMEM, "out of memory");
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        WV_CHECK(n > 0, WV_IO, "client state file %s: cannot read it",
                 path);
        got += (size_t)n;
    }
    WV_TRY(state_parse(r, path, buf, got, t));
out:
    close(fd);
    wv__free(buf);
    return rc;
}

/* Write t to path atomically and durably (wv__wfile: temporary sibling,
 * fsync, rename, directory fsync), mode 0600. Best effort: a failure
 * leaves the old file and is ignored (the state only hardens clients). */
static void state_write(const char *path, const struct table *t)
{
    struct wv__err err = {0};
    struct wv__wfile f;
    if (wv__wfile_open(&f, path, &err) != WV_OK)
        return;
    if (fchmod(f.fd, 0600) != 0) {
        wv__wfile_abort(&f);
        return;
    }
    wv__wfile_write(&f, STATE_MAGIC, strlen(STATE_MAGIC));
    for (size_t i = 0; i < t->n; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, " %llu\n",
                         (unsigned long long)t->e[i].v);
        wv__wfile_write(&f, t->e[i].key, strlen(t->e[i].key));
        wv__wfile_write(&f, line, (size_t)n);
    }
    (void)wv__wfile_commit(&f);
}

/* One value of an update: `seen` for `key`; check: refuse a value below
 * the record (rollback) unless WV_ALLOW_ROLLBACK is set, naming `shown`;
 * known: the recorded value before (out). */
struct state_item {
    const char *key;
    uint64_t seen;
    bool check;
    const char *shown;
    uint64_t known;
};

/* The record of `key` in t, or NULL. */
static struct entry *state_find(struct table *t, const char *key)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].key, key) == 0)
            return &t->e[i];
    return NULL;
}

/* The core: one locked read of the state file, every check of it[0..n)
 * against the records, then every record raised to its item's value in
 * one write. A failed check writes nothing. The state directory is made
 * only when there is something to write into it. */
static int state_update(wv_repo *r, struct state_item *it, size_t n)
{
    struct wv__err *err = &r->err;
    int rc = WV_OK, lfd = -1;
    const char *path = r->state_file;
    char lock[4200];
    struct table t = {0};
    bool grows = false, dirty = false;
    for (size_t i = 0; i < n; i++) {
        it[i].known = 0;
        grows = grows || it[i].seen > 0;
    }
    if (path == NULL)
        return WV_OK; /* nowhere to remember anything */
    snprintf(lock, sizeof lock, "%s.lock", path);
    lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lfd < 0 && errno == ENOENT && grows) {
        /* No directory, so no records: every value above 0 is news. */
        state_mkdirs(path);
        lfd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    }
    if (lfd >= 0)
        while (flock(lfd, LOCK_EX) != 0 && errno == EINTR)
            ;
    WV_TRY(state_read(r, path, &t));
    for (size_t i = 0; i < n; i++) {
        const struct entry *en = state_find(&t, it[i].key);
        uint64_t have = en ? en->v : 0;
        it[i].known = have;
        if (it[i].check && it[i].seen < have && !wv__allow_rollback())
            WV_CHECK(0, WV_AUTH_ROLLBACK,
                     "%s: %s was rolled back (write %llu; this client saw "
                     "write %llu); --allow-rollback accepts it",
                     r->uri, it[i].shown, (unsigned long long)it[i].seen,
                     (unsigned long long)have);
    }
    for (size_t i = 0; i < n && lfd >= 0; i++) {
        struct entry *en = state_find(&t, it[i].key);
        if (it[i].seen <= (en ? en->v : 0) ||
            strlen(it[i].key) >= STATE_KEY_MAX)
            continue;
        if (en == NULL) {
            WV_CHECK(wv__grow(&t.e, &t.cap, t.n, sizeof *t.e, 16) == WV_OK,
                     WV_NOMEM, "out of memory");
            en = &t.e[t.n++];
            snprintf(en->key, sizeof en->key, "%s", it[i].key);
        }
        en->v = it[i].seen;
        dirty = true;
    }
    if (dirty)
        state_write(path, &t);
out:
    if (lfd >= 0)
        close(lfd); /* releases the flock */
    wv__free(t.e);
    return rc;
}

int wv__state_open(wv_repo *r)
{
    char path[4096];
    if (r->crypt == NULL)
        return WV_OK;
    int rc = state_path(r, path, sizeof path);
    if (rc == WV_NOTFOUND)
        return WV_OK; /* nowhere to remember anything */
    if (rc != WV_OK)
        return rc;
    r->state_file = wv__strdup(path);
    if (r->state_file == NULL)
        return wv__seterr(&r->err, WV_NOMEM, "out of memory");
    return WV_OK;
}

bool wv__allow_rollback(void)
{
    const char *e = getenv("WV_ALLOW_ROLLBACK");
    return e != NULL && e[0] != '\0' && strcmp(e, "0") != 0;
}

int wv__state_seen(wv_repo *r, const char *key, uint64_t seen,
                   const char *shown, uint64_t trust_v)
{
    struct state_item it[2] = {{key, seen, true, shown, 0},
                               {WV__TRUST_REF, trust_v, false, NULL, 0}};
    return state_update(r, it, 2);
}

int wv__state_raise(wv_repo *r, const char *key, uint64_t v, uint64_t *known)
{
    struct state_item it = {key, v, false, key, 0};
    int rc = state_update(r, &it, 1);
    if (known)
        *known = it.known;
    return rc;
}
