/*
 * t_crypt.c -- encrypted repositories (key slots, sealed objects, keyed
 * ids), signed checkpoints and trusted keys.
 *
 * The privacy test writes distinctive tensor names, metadata, messages,
 * branch and tag names and incompressible data, then searches every byte
 * the store holds for each of them and for 64-byte samples of the data:
 * no hit in an encrypted repository (with and without compression), while
 * the same search finds them in a plain one (so it can fail). The tamper
 * tests flip one byte of a chunk, a manifest, a ref, an index object and a
 * pack trailer and require a refusal that names the object.
 */
#include "crypt.h"
#include "object.h"
#include "refs.h"
#include "repo.h"
#include "trust.h"
#include "wvsets.h"
#include "wvtest.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#define PASS "correct horse battery staple"

static const char *const secret_names[] = {
    "zebra_secret.encoder.layer0.weight", "zebra_secret.encoder.bias",
    "zebra_secret.head.logits_scale"};

/* A set whose data does not compress (so it is stored as is unless
 * encrypted) and whose names and metadata are easy to look for. */
static wv_model *make_secret(int variant, size_t n_floats)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    uint64_t x = 0x9e3779b97f4a7c15ull + (uint64_t)variant;
    for (int t = 0; t < 3; t++) {
        size_t n = t == 0 ? n_floats : t == 1 ? 1000 : 1;
        uint32_t *w = wv_malloc(n * 4);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w[i] = (uint32_t)x;
        }
        uint64_t shape[1] = {n};
        wv_model_add(m, secret_names[t], WV_U32, 1, shape, w, n * 4,
                     WV_DATA_TAKE);
    }
    wv_model_set_meta(m, "zebra_project", "falcon_confidential_run");
    return m;
}

static void init_enc(const char *uri, const char *compression, size_t cs)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    char eb[WV_ERRBUF_SIZE] = "";
    io.compression = compression;
    io.chunk_size = cs;
    io.pack_size = cs * 4;
    io.encrypt = 1;
    io.passphrase = PASS;
    io.key_label = "alice";
    io.errbuf = eb;
    io.errbuf_size = sizeof eb;
    int rc = wv_repo_init(uri, &io);
    if (rc != WV_OK)
        fprintf(stderr, "init %s: %s\n", uri, eb);
}

static int open_pass(const char *uri, const char *pass, wv_repo **r,
                     char *eb, size_t cap)
{
    wv_open_opts o = WV_OPEN_OPTS_INIT;
    o.passphrase = pass;
    o.errbuf = eb;
    o.errbuf_size = cap;
    return wv_repo_open_ex(uri, &o, r);
}

/* Every regular file under dir, concatenated into one buffer. */
struct blob {
    unsigned char *p;
    size_t n, cap;
    size_t files;
};

static void slurp(const char *dir, struct blob *b)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char path[1200];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            slurp(path, b);
            continue;
        }
        size_t len;
        unsigned char *f = wvtest_read_file(path, &len);
        if (f == NULL)
            continue;
        if (b->n + len + 1 > b->cap) {
            b->cap = (b->n + len + 1) * 2;
            b->p = realloc(b->p, b->cap);
        }
        memcpy(b->p + b->n, f, len);
        b->n += len;
        b->p[b->n++] = 0; /* no match across files */
        b->files++;
        free(f);
    }
    closedir(d);
}

/* How many of the secrets the store's bytes show. */
static int leaks(const char *dir, const wv_model *m, const char *extra[],
                 int n_extra)
{
    struct blob b = {0};
    int hits = 0;
    slurp(dir, &b);
    if (b.n == 0)
        return -1;
    for (size_t i = 0; i < wv_model_count(m); i++) {
        const wv_tensor *t = wv_model_tensor(m, i);
        const char *nm = wv_tensor_name(t);
        hits += memmem(b.p, b.n, nm, strlen(nm)) != NULL;
        size_t len = wv_tensor_nbytes(t);
        const unsigned char *d = wv_tensor_data(t);
        /* 64-byte samples of the data, spread over the tensor. */
        for (size_t off = 0; len >= 64 && off + 64 <= len;
             off += len / 16 + 64)
            hits += memmem(b.p, b.n, d + off, 64) != NULL;
    }
    for (size_t i = 0; i < wv_model_meta_count(m); i++) {
        const char *k, *v;
        wv_model_meta(m, i, &k, &v);
        hits += memmem(b.p, b.n, k, strlen(k)) != NULL;
        hits += memmem(b.p, b.n, v, strlen(v)) != NULL;
    }
    for (int i = 0; i < n_extra; i++)
        hits += memmem(b.p, b.n, extra[i], strlen(extra[i])) != NULL;
    free(b.p);
    return hits;
}

static int commit_named(wv_repo *r, const wv_model *m, const char *branch,
                        char id[WV_ID_HEX])
{
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.message = "zebra_message_about_the_secret_run";
    return wv_repo_commit(r, m, branch, &co, id);
}

static void privacy(const char *compression, bool encrypted)
{
    char dir[600], eb[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/%s-%s", wvtest_tmpdir(),
             encrypted ? "enc" : "plain", compression);
    if (encrypted) {
        init_enc(dir, compression, 64 << 10);
    } else {
        wv_init_opts io = WV_INIT_OPTS_INIT;
        io.compression = compression;
        io.chunk_size = 64 << 10;
        io.pack_size = 256 << 10;
        ASSERT_OK(wv_repo_init(dir, &io));
    }
    wv_repo *r = NULL;
    ASSERT_OK(open_pass(dir, PASS, &r, eb, sizeof eb));
    ASSERT_EQ(wv_repo_encrypted(r), encrypted);
    wv_model *m = make_secret(0, 100000);
    ASSERT_OK(commit_named(r, m, "zebra_branch_secret", id));
    ASSERT_OK(commit_named(r, m, NULL, id));
    ASSERT_OK(wv_repo_tag(r, "zebra_tag_secret", id));
    /* Locks are in the store while a commit runs: hold one for the scan. */
    ASSERT_OK(wv__repo_lock(r, false));
    /* (No needle shorter than 8 bytes: a 3-byte one turns up by chance
     * in a megabyte of ciphertext about one time in ten.) */
    const char *extra[] = {"zebra_message_about", "zebra_branch_secret",
                           "zebra_tag_secret", "\"dtype\": \"U32\"",
                           "\"pid\": "};
    int hits = leaks(dir, m, extra, 5);
    wv__repo_unlock(r);
    if (encrypted)
        ASSERT_EQ(hits, 0);
    else
        ASSERT(hits >= 10); /* the search does find them in the clear */
    /* And it all reads back. */
    wv_model *back = NULL;
    ASSERT_OK(wv_repo_checkout(r, "zebra_tag_secret", NULL, &back));
    ASSERT(wvf_same(m, back, WVF_BY_NAME | WVF_META_ORDER));
    wv_model_free(back);
    wv_model_free(m);
    wv_repo_close(r);
}

TEST_IMPL(crypt_no_plaintext_in_store)
{
    privacy("none", true);
    privacy("zstd-bg", true);
    privacy("zstd", true);
    privacy("none", false);
}

TEST_IMPL(crypt_roundtrip_dedup_history)
{
    const char *uris[] = {"mem://crypt-rt", NULL};
    char local[600];
    snprintf(local, sizeof local, "%s/rt", wvtest_tmpdir());
    uris[1] = local;
    for (int u = 0; u < 2; u++) {
        char eb[WV_ERRBUF_SIZE] = "", id1[WV_ID_HEX], id2[WV_ID_HEX];
        char rid[WV_ID_HEX];
        init_enc(uris[u], "zstd-bg", 16384);
        wv_repo *r = NULL;
        ASSERT_OK(open_pass(uris[u], PASS, &r, eb, sizeof eb));
        wv_model *a = make_secret(0, 50000), *b = make_secret(1, 50000);
        ASSERT_OK(commit_named(r, a, NULL, id1));
        /* The same data again: nothing new is stored. */
        wv_verify_stats st1, st2;
        ASSERT_OK(wv_repo_verify(r, NULL, NULL, &st1));
        ASSERT_OK(commit_named(r, a, NULL, id2));
        ASSERT_OK(wv_repo_verify(r, NULL, NULL, &st2));
        ASSERT_EQ(st1.packs, st2.packs);
        ASSERT_EQ(st1.chunks, st2.chunks);
        ASSERT_OK(commit_named(r, b, "other", id2));
        ASSERT_OK(wv_repo_resolve(r, "other", rid));
        ASSERT_STREQ(rid, id2);
        char pfx[9];
        memcpy(pfx, id1, 8);
        pfx[8] = '\0';
        ASSERT_OK(wv_repo_resolve(r, pfx, rid));
        ASSERT_STREQ(rid, id1);
        ASSERT_OK(wv_repo_branch(r, "feature", id1));
        ASSERT_OK(wv_repo_tag(r, "best", id2));
        ASSERT_EQ(wv_repo_tag(r, "best", id1), WV_EXISTS);
        wv_checkpoint *c = NULL;
        ASSERT_OK(wv_repo_stat(r, "best", &c));
        ASSERT_STREQ(wv_checkpoint_branch(c), "other");
        ASSERT_STREQ(wv_checkpoint_signer(c), "");
        wv_checkpoint_free(c);
        wv_repo_close(r);

        /* A new handle: everything decodes, names included. */
        ASSERT_OK(open_pass(uris[u], PASS, &r, eb, sizeof eb));
        wv_model *back = NULL;
        ASSERT_OK(wv_repo_checkout(r, "latest", NULL, &back));
        ASSERT(wvf_same(a, back, WVF_BY_NAME | WVF_META_ORDER));
        wv_model_free(back);
        const char *one[] = {secret_names[1]};
        wv_checkout_opts ko = WV_CHECKOUT_OPTS_INIT;
        ko.names = one;
        ko.n_names = 1;
        ASSERT_OK(wv_repo_checkout(r, "best", &ko, &back));
        ASSERT_EQ(wv_model_count(back), 1);
        ASSERT(wvf_same_tensor(wv_model_find(b, secret_names[1]),
                               wv_model_find(back, secret_names[1])));
        wv_model_free(back);
        wv_diff *d = NULL;
        ASSERT_OK(wv_repo_diff(r, id1, id2, 0, &d));
        ASSERT(wv_diff_count(d) >= 3);
        wv_diff_free(d);

        /* Prune, gc (with a repack) and verify on sealed objects. */
        ASSERT_OK(wv_repo_branch_delete(r, "feature"));
        ASSERT_OK(wv_repo_tag_delete(r, "best"));
        ASSERT_OK(wv_repo_branch_delete(r, "other"));
        ASSERT_OK(commit_named(r, b, NULL, id2)); /* a's data now dead */
        wv_prune_opts po = WV_PRUNE_OPTS_INIT;
        po.keep_last = 1;
        wv_prune_stats ps;
        ASSERT_OK(wv_repo_prune(r, &po, NULL, NULL, &ps));
        ASSERT(ps.removed >= 1);
        wv_gc_opts go = WV_GC_OPTS_INIT;
        go.repack_percent = 0;
        wv_gc_stats gs;
        ASSERT_OK(wv_repo_gc(r, &go, &gs));
        ASSERT(gs.packs_deleted + gs.packs_repacked >= 1);
        wv_verify_stats vs;
        ASSERT_OK(wv_repo_verify(r, NULL, NULL, &vs));
        ASSERT_EQ(vs.problems, 0);
        ASSERT_OK(wv_repo_checkout(r, "latest", NULL, &back));
        ASSERT(wvf_same(b, back, WVF_BY_NAME));
        wv_model_free(back);
        wv_model_free(a);
        wv_model_free(b);
        wv_repo_close(r);
    }
}

TEST_IMPL(crypt_wrong_or_missing_key)
{
    char uri[600], eb[WV_ERRBUF_SIZE] = "";
    snprintf(uri, sizeof uri, "%s/keys", wvtest_tmpdir());
    init_enc(uri, "none", 4096);
    wv_repo *r = NULL;
    unsetenv("WV_PASSPHRASE");
    unsetenv("WV_KEY_FILE");
    ASSERT_EQ(wv_repo_open(uri, eb, sizeof eb, &r), WV_AUTH_NO_KEY);
    ASSERT(r == NULL);
    ASSERT_CONTAINS(eb, "repository is encrypted: give a passphrase "
                        "(WV_PASSPHRASE, --key-file or a terminal)");
    ASSERT_EQ(open_pass(uri, "not it", &r, eb, sizeof eb), WV_AUTH_WRONG_KEY);
    ASSERT_CONTAINS(eb, "wrong key");
    ASSERT(strstr(eb, "not it") == NULL); /* never the secret itself */
    /* The environment. */
    setenv("WV_PASSPHRASE", PASS, 1);
    ASSERT_OK(wv_repo_open(uri, eb, sizeof eb, &r));
    wv_repo_close(r);
    setenv("WV_PASSPHRASE", "wrong", 1);
    ASSERT_EQ(wv_repo_open(uri, eb, sizeof eb, &r), WV_AUTH_WRONG_KEY);
    ASSERT_CONTAINS(eb, "wrong key");
    unsetenv("WV_PASSPHRASE");
    /* A plain repository ignores secrets. */
    char plain[600];
    snprintf(plain, sizeof plain, "%s/plain", wvtest_tmpdir());
    ASSERT_OK(wv_repo_init(plain, NULL));
    ASSERT_OK(open_pass(plain, "anything", &r, eb, sizeof eb));
    ASSERT_EQ(wv_repo_encrypted(r), 0);
    ASSERT_EQ(wv_repo_key_list(r, NULL, NULL), WV_MISUSE);
    wv_repo_close(r);
    /* init --encrypt without a secret */
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.encrypt = 1;
    io.errbuf = eb;
    io.errbuf_size = sizeof eb;
    snprintf(plain, sizeof plain, "%s/nokey", wvtest_tmpdir());
    ASSERT_EQ(wv_repo_init(plain, &io), WV_AUTH_NO_KEY);
    ASSERT_CONTAINS(eb, "give a passphrase");
    /* An older, smaller wv_init_opts still works (no encryption). */
    wv_init_opts old = WV_INIT_OPTS_INIT;
    old.struct_size = (uint32_t)offsetof(wv_init_opts, encrypt);
    snprintf(plain, sizeof plain, "%s/old", wvtest_tmpdir());
    ASSERT_OK(wv_repo_init(plain, &old));
    old.struct_size = 8;
    snprintf(plain, sizeof plain, "%s/older", wvtest_tmpdir());
    ASSERT_EQ(wv_repo_init(plain, &old), WV_MISUSE);
}

struct slot_seen {
    int n, current;
    char ids[8][17];
    char labels[8][101];
};

static int on_slot(void *arg, const wv_key_slot *k)
{
    struct slot_seen *s = arg;
    if (s->n < 8) {
        snprintf(s->ids[s->n], 17, "%s", k->id);
        snprintf(s->labels[s->n], 101, "%s", k->label);
    }
    s->current += k->current;
    s->n++;
    return 0;
}

TEST_IMPL(crypt_key_slots)
{
    char uri[600], eb[WV_ERRBUF_SIZE] = "", kf[600], pf[600];
    char id_b[17], id_c[17], cid[WV_ID_HEX];
    snprintf(uri, sizeof uri, "%s/slots", wvtest_tmpdir());
    snprintf(kf, sizeof kf, "%s/raw.key", wvtest_tmpdir());
    snprintf(pf, sizeof pf, "%s/pass.txt", wvtest_tmpdir());
    init_enc(uri, "zstd", 4096);
    wv_repo *r = NULL;
    ASSERT_OK(open_pass(uri, PASS, &r, eb, sizeof eb));
    wv_model *m = make_secret(2, 3000);
    ASSERT_OK(commit_named(r, m, NULL, cid));
    /* A raw key file and a passphrase file. */
    /* The key file's directory entry is synced too: a failure there is
     * reported and leaves no file behind. */
    wv__fault_arm(WV__FAULT_DIRSYNC, EIO);
    int krc = wv_secret_keygen(kf, eb, sizeof eb);
    wv__fault_arm(WV__FAULT_DIRSYNC, 0);
    ASSERT_EQ(krc, WV_IO);
    ASSERT_CONTAINS(eb, kf);
    ASSERT_CONTAINS(eb, "directory");
    ASSERT_CONTAINS(eb, strerror(EIO));
    ASSERT(access(kf, F_OK) != 0);
    ASSERT_OK(wv_secret_keygen(kf, eb, sizeof eb));
    ASSERT_EQ(wv_secret_keygen(kf, eb, sizeof eb), WV_EXISTS);
    struct stat st;
    ASSERT_OK(stat(kf, &st));
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT_OK(wvtest_write_file(pf, "bob's passphrase\n", 17));
    ASSERT_OK(wv_repo_key_add(r, NULL, kf, "ci", id_b));
    ASSERT_OK(wv_repo_key_add(r, "carol's words", NULL, "carol", id_c));
    struct slot_seen s = {0};
    ASSERT_OK(wv_repo_key_list(r, on_slot, &s));
    ASSERT_EQ(s.n, 3);
    ASSERT_EQ(s.current, 1);
    wv_repo_close(r);

    /* Each secret opens it. */
    wv_open_opts o = WV_OPEN_OPTS_INIT;
    o.key_file = kf;
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;
    ASSERT_OK(wv_repo_open_ex(uri, &o, &r));
    wv_model *back = NULL;
    ASSERT_OK(wv_repo_checkout(r, "latest", NULL, &back));
    ASSERT(wvf_same(m, back, WVF_BY_NAME));
    wv_model_free(back);
    /* A passphrase file holds a passphrase (the final newline dropped). */
    ASSERT_OK(wv_repo_key_add(r, NULL, pf, "bob", NULL));
    wv_repo_close(r);
    o.key_file = pf;
    ASSERT_OK(wv_repo_open_ex(uri, &o, &r));
    wv_repo_close(r);
    ASSERT_OK(open_pass(uri, "bob's passphrase", &r, eb, sizeof eb));
    wv_repo_close(r);
    ASSERT_OK(open_pass(uri, "carol's words", &r, eb, sizeof eb));

    /* Remove alice's slot: the others keep working, alice is out. */
    memset(&s, 0, sizeof s);
    ASSERT_OK(wv_repo_key_list(r, on_slot, &s));
    ASSERT_EQ(s.n, 4);
    const char *alice = NULL;
    for (int i = 0; i < s.n; i++)
        if (strcmp(s.labels[i], "alice") == 0)
            alice = s.ids[i];
    ASSERT_NOT_NULL(alice);
    ASSERT_EQ(wv_repo_key_remove(r, "zz"), WV_MISUSE);
    ASSERT_EQ(wv_repo_key_remove(r, "ffffffffffffffff"), WV_NOTFOUND);
    ASSERT_OK(wv_repo_key_remove(r, alice));
    wv_repo_close(r);
    ASSERT_EQ(open_pass(uri, PASS, &r, eb, sizeof eb), WV_AUTH_WRONG_KEY);
    ASSERT_CONTAINS(eb, "wrong key");
    o.key_file = kf;
    ASSERT_OK(wv_repo_open_ex(uri, &o, &r));
    ASSERT_OK(wv_repo_checkout(r, cid, NULL, &back));
    wv_model_free(back);
    /* Down to one slot, which cannot go. */
    ASSERT_OK(wv_repo_key_remove(r, id_c));
    memset(&s, 0, sizeof s);
    ASSERT_OK(wv_repo_key_list(r, on_slot, &s));
    for (int i = 0; i < s.n; i++)
        if (strcmp(s.ids[i], id_b) != 0)
            ASSERT_OK(wv_repo_key_remove(r, s.ids[i]));
    ASSERT_EQ(wv_repo_key_remove(r, id_b), WV_MISUSE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "last one");
    wv_repo_close(r);
    ASSERT_OK(wv_repo_open_ex(uri, &o, &r));
    wv_repo_close(r);
    /* A junk object among the slots locks nobody out. */
    char junk[700];
    snprintf(junk, sizeof junk, "%s/keys/0000000000000000", uri);
    ASSERT_OK(wvtest_write_file(junk, "{\"weightvault_key\": 1}", 22));
    ASSERT_OK(wv_repo_open_ex(uri, &o, &r));
    wv_repo_close(r);
    ASSERT_EQ(open_pass(uri, "nope", &r, eb, sizeof eb), WV_AUTH_WRONG_KEY);
    ASSERT_CONTAINS(eb, "1 damaged key slot skipped");
    wv_model_free(m);
}

/* ---- tampering ------------------------------------------------------- */

static int find_file(const char *dir, const char *sub, char *out, size_t cap)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "find '%s/%s' -type f ! -name '*.lock' | sort | head -1", dir, sub);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    int ok = fgets(out, (int)cap, p) != NULL;
    pclose(p);
    if (!ok)
        return -1;
    out[strcspn(out, "\n")] = '\0';
    return 0;
}

static int flip(const char *path, long off)
{
    size_t len;
    unsigned char *b = wvtest_read_file(path, &len);
    if (b == NULL || len == 0)
        return -1;
    size_t at = off >= 0 ? (size_t)off : len + (size_t)off;
    if (at >= len)
        at = len / 2;
    b[at] ^= 0x01;
    int rc = wvtest_write_file(path, b, len);
    free(b);
    return rc;
}

struct probs {
    int n;
    char first[1024];
};

static void on_problem(void *arg, const wv_verify_problem *p)
{
    struct probs *pr = arg;
    if (pr->n++ == 0)
        snprintf(pr->first, sizeof pr->first, "%s", p->message);
}

/* A fresh encrypted repository with one checkpoint; then damage `what`
 * and check that checkout (or verify, for a trailer) refuses, naming it. */
static void tamper(const char *what, const char *sub, long off,
                   const char *needle, bool checkout_refuses)
{
    char dir[600], eb[WV_ERRBUF_SIZE] = "", file[1200], id[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/tamper-%s", wvtest_tmpdir(), what);
    init_enc(dir, "zstd-bg", 16384);
    wv_repo *r = NULL;
    ASSERT_OK(open_pass(dir, PASS, &r, eb, sizeof eb));
    wv_model *m = make_secret(3, 20000);
    ASSERT_OK(commit_named(r, m, NULL, id));
    wv_repo_close(r);
    ASSERT_OK(find_file(dir, sub, file, sizeof file));
    ASSERT_OK(flip(file, off));
    ASSERT_OK(open_pass(dir, PASS, &r, eb, sizeof eb));
    wv_model *back = NULL;
    int rc = wv_repo_checkout(r, "latest", NULL, &back);
    if (checkout_refuses) {
        if (rc == WV_OK)
            WVT_FAIL("%s: a damaged %s was not noticed", dir, what);
        ASSERT_CONTAINS(wv_repo_errmsg(r), needle);
    } else {
        ASSERT_OK(rc);
        ASSERT(wvf_same(m, back, WVF_BY_NAME));
    }
    wv_model_free(back);
    struct probs pr = {0, ""};
    ASSERT_EQ(wv_primary(wv_repo_verify(r, on_problem, &pr, NULL)),
              WV_CORRUPT);
    ASSERT(pr.n >= 1);
    if (!checkout_refuses)
        ASSERT_CONTAINS(pr.first, needle);
    wv_repo_close(r);
    wv_model_free(m);
}

TEST_IMPL(crypt_tamper_refused)
{
    /* A byte inside the first chunk's ciphertext. */
    tamper("chunk", "packs", 8 + 30, "was altered (it does not authenticate)",
           true);
    tamper("manifest", "manifests", 40, "is damaged or was altered", true);
    tamper("ref", "refs/heads", 10, "ref 'refs/heads/main' is damaged", true);
    tamper("index", "index", 50, "is damaged or was altered", true);
    /* The trailer's tag: checkout never reads a trailer; verify does. */
    tamper("trailer", "packs", -20, "damaged pack", false);
}

/* ---- signatures ------------------------------------------------------ */

static void sign_case(const char *uri, bool encrypted)
{
    char eb[WV_ERRBUF_SIZE] = "", k1[600], k2[600], k1key[700], k1pub[700];
    char k2key[700], k2pub[700], unsig[WV_ID_HEX], s1[WV_ID_HEX];
    char s2[WV_ID_HEX];
    static int round;
    round++;
    snprintf(k1, sizeof k1, "%s/alice%d", wvtest_tmpdir(), round);
    snprintf(k2, sizeof k2, "%s/mallory%d", wvtest_tmpdir(), round);
    snprintf(k1key, sizeof k1key, "%s.key", k1);
    snprintf(k1pub, sizeof k1pub, "%s.pub", k1);
    snprintf(k2key, sizeof k2key, "%s.key", k2);
    snprintf(k2pub, sizeof k2pub, "%s.pub", k2);
    wv__fault_arm(WV__FAULT_DIRSYNC, EIO); /* neither file is left */
    int krc = wv_keygen(k1, eb, sizeof eb);
    wv__fault_arm(WV__FAULT_DIRSYNC, 0);
    ASSERT_EQ(krc, WV_IO);
    ASSERT_CONTAINS(eb, "directory");
    ASSERT(access(k1key, F_OK) != 0 && access(k1pub, F_OK) != 0);
    ASSERT_OK(wv_keygen(k1, eb, sizeof eb));
    ASSERT_OK(wv_keygen(k2, eb, sizeof eb));
    ASSERT_EQ(wv_keygen(k1, eb, sizeof eb), WV_EXISTS);
    struct stat st;
    ASSERT_OK(stat(k1key, &st));
    ASSERT_EQ(st.st_mode & 0777, 0600);

    if (encrypted)
        init_enc(uri, "zstd-bg", 8192);
    else
        ASSERT_OK(wv_repo_init(uri, NULL));
    wv_repo *r = NULL;
    ASSERT_OK(open_pass(uri, PASS, &r, eb, sizeof eb));
    wv_model *m = make_secret(4, 5000);
    ASSERT_OK(commit_named(r, m, NULL, unsig));
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.sign_key = k1key;
    ASSERT_OK(wv_repo_commit(r, m, NULL, &co, s1));
    co.sign_key = k2key;
    ASSERT_OK(wv_repo_commit(r, m, "b2", &co, s2));
    co.sign_key = k1pub; /* not a secret key */
    char bad[WV_ID_HEX];
    ASSERT_EQ(wv_repo_commit(r, m, NULL, &co, bad), WV_FORMAT);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "not a weightvault secret");

    wv_checkpoint *c = NULL;
    ASSERT_OK(wv_repo_stat(r, s1, &c));
    ASSERT_EQ(strlen(wv_checkpoint_signer(c)), 64);
    wv_checkpoint_free(c);

    wv_checkout_opts ko = WV_CHECKOUT_OPTS_INIT;
    wv_model *back = NULL;
    ko.verify_signer = k1pub;
    ASSERT_OK(wv_repo_checkout(r, s1, &ko, &back));
    ASSERT(wvf_same(m, back, WVF_BY_NAME));
    wv_model_free(back);
    back = NULL;
    ASSERT_EQ(wv_repo_checkout(r, unsig, &ko, &back), WV_AUTH_SIGNATURE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "is not signed");
    ASSERT_EQ(wv_repo_checkout(r, s2, &ko, &back), WV_AUTH_SIGNATURE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "not by key");
    /* Without a requirement, any checkpoint with a valid (or no)
     * signature reads. */
    ASSERT_OK(wv_repo_checkout(r, unsig, NULL, &back));
    wv_model_free(back);
    back = NULL;

    /* Altered after signing: re-stored under its new name (what a key
     * holder or, in a plain repository, anyone with write access could
     * do) and the branch moved to it. */
    struct wv__manifest mf;
    struct wv__buf b = {0};
    char hex[65], key[96], raw[WV__REF_RAW_MAX], head[65], val[WV__REF_RAW_MAX];
    char refkey[160];
    ASSERT_OK(wv__manifest_load(r, s1, &mf));
    ASSERT(mf.has_sig && mf.sig_ok);
    mf.tensors[0].shape[0] = mf.tensors[0].shape[0]; /* keep shape valid */
    free(mf.message);
    mf.message = strdup("history rewritten");
    ASSERT_OK(wv__manifest_encode(&mf, &b)); /* carries the old signature */
    wv__manifest_release(&mf);
    ASSERT_OK(wv__object_name(r, "manifest", b.p, b.len, hex));
    wv__manifest_key(hex, key);
    ASSERT_OK(wv__object_put(r, "manifest", key, b.p, b.len, 0));
    wv__buf_release(&b);
    ASSERT_OK(wv__ref_key(r, "heads", "main", refkey));
    ASSERT_OK(wv__ref_read(r, refkey, NULL, raw, head, NULL, 0));
    ASSERT_OK(wv__ref_value(r, refkey, "main", hex, val));
    ASSERT_OK(wv__store_ref_cas(r->store, refkey, raw, val));
    ASSERT_EQ(wv_repo_checkout(r, "main", NULL, &back), WV_AUTH_SIGNATURE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "does not verify");
    ASSERT_EQ(wv_repo_checkout(r, "main", &ko, &back), WV_AUTH_SIGNATURE);
    struct probs pr = {0, ""};
    ASSERT_EQ(wv_primary(wv_repo_verify(r, on_problem, &pr, NULL)),
              WV_CORRUPT);
    ASSERT_CONTAINS(pr.first, "does not verify");
    ASSERT_OK(wv_repo_branch(r, "fixed", s1));

    /* Trusted keys in the repository. */
    char tid[17];
    ASSERT_OK(wv_repo_trust_add(r, k1pub, "alice", tid));
    ASSERT_EQ(strlen(tid), 16);
    ASSERT_EQ(wv_repo_checkout(r, unsig, NULL, &back), WV_AUTH_SIGNATURE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "not signed");
    ASSERT_EQ(wv_repo_checkout(r, s2, NULL, &back), WV_AUTH_SIGNATURE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "does not trust");
    ASSERT_OK(wv_repo_checkout(r, "fixed", NULL, &back));
    wv_model_free(back);
    back = NULL;
    /* Commits are refused where checkouts would refuse them: unsigned, or
     * signed by a key the repository does not trust; nothing moves. */
    char before[WV_ID_HEX], after[WV_ID_HEX], nid[WV_ID_HEX];
    ASSERT_OK(wv_repo_resolve(r, "main", before));
    ASSERT_EQ(commit_named(r, m, NULL, nid), WV_AUTH_SIGNATURE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "--sign");
    ASSERT_CONTAINS(wv_repo_errmsg(r), "trusts 1 key");
    co.sign_key = k2key;
    ASSERT_EQ(wv_repo_commit(r, m, NULL, &co, nid), WV_AUTH_SIGNATURE);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "not one of the repository's");
    ASSERT_OK(wv_repo_resolve(r, "main", after));
    ASSERT_STREQ(before, after);
    co.sign_key = k1key;
    ASSERT_OK(wv_repo_commit(r, m, "signed-after-trust", &co, nid));
    ASSERT_OK(wv_repo_checkout(r, nid, NULL, &back));
    wv_model_free(back);
    back = NULL;
    ASSERT_EQ(wv_repo_trust_remove(r, "0000"), WV_NOTFOUND);
    ASSERT_OK(wv_repo_trust_remove(r, tid));
    ASSERT_OK(wv_repo_checkout(r, unsig, NULL, &back));
    wv_model_free(back);
    wv_model_free(m);
    wv_repo_close(r);
}

TEST_IMPL(crypt_signatures)
{
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/signed-plain", wvtest_tmpdir());
    snprintf(b, sizeof b, "%s/signed-enc", wvtest_tmpdir());
    sign_case(a, false);
    sign_case(b, true);
    sign_case("mem://signed-enc", true);
}

/* ---- concurrency and faults ------------------------------------------ */

struct cworker {
    const char *uri;
    int k, ok;
};

static void *committer(void *arg)
{
    struct cworker *w = arg;
    char eb[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX];
    wv_repo *r = NULL;
    if (open_pass(w->uri, PASS, &r, eb, sizeof eb) != WV_OK)
        return NULL;
    wv_model *m = make_secret(100 + w->k, 2000);
    for (int i = 0; i < 5; i++) {
        wv_model_set_meta(m, "i", i % 2 ? "odd" : "even");
        if (commit_named(r, m, NULL, id) == WV_OK)
            w->ok++;
    }
    wv_model_free(m);
    wv_repo_close(r);
    return NULL;
}

TEST_IMPL(crypt_concurrent_commits_cas)
{
    char uri[600], eb[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX];
    snprintf(uri, sizeof uri, "%s/conc", wvtest_tmpdir());
    init_enc(uri, "zstd", 4096);
    pthread_t th[3];
    struct cworker w[3];
    for (int k = 0; k < 3; k++) {
        w[k] = (struct cworker){uri, k, 0};
        pthread_create(&th[k], NULL, committer, &w[k]);
    }
    for (int k = 0; k < 3; k++)
        pthread_join(th[k], NULL);
    ASSERT_EQ(w[0].ok + w[1].ok + w[2].ok, 15);
    /* All 15 on the branch: the compare-and-swap compared the sealed
     * values it read, and losers re-parented. */
    wv_repo *r = NULL;
    ASSERT_OK(open_pass(uri, PASS, &r, eb, sizeof eb));
    ASSERT_OK(wv_repo_resolve(r, "main", id));
    int depth = 0;
    while (id[0] && depth < 100) {
        wv_checkpoint *c = NULL;
        ASSERT_OK(wv_repo_stat(r, id, &c));
        snprintf(id, sizeof id, "%s", wv_checkpoint_parent(c));
        wv_checkpoint_free(c);
        depth++;
    }
    ASSERT_EQ(depth, 15);
    wv_repo_close(r);
}

TEST_IMPL(crypt_store_faults)
{
    wv_model *a = make_secret(5, 4000), *b = make_secret(6, 4000);
    for (int kind = 0; kind < 2; kind++) {
        long n;
        for (n = 1; n < 5000; n++) {
            char uri[64], eb[WV_ERRBUF_SIZE] = "", ida[WV_ID_HEX];
            char idb[WV_ID_HEX];
            snprintf(uri, sizeof uri, "mem://crypt-faults-%d-%ld", kind, n);
            init_enc(uri, "zstd-bg", 4096);
            wv_repo *r = NULL;
            ASSERT_OK(open_pass(uri, PASS, &r, eb, sizeof eb));
            ASSERT_OK(commit_named(r, a, NULL, ida));
            wv__store_fault(n, kind ? WV__SFAULT_SHORT_WRITE
                                    : WV__SFAULT_FAIL,
                            WV_IO, EIO);
            int rc = commit_named(r, b, NULL, idb);
            bool fired = !wv__store_fault_pending();
            wv__store_fault(0, WV__SFAULT_FAIL, 0, 0);
            wv_model *back = NULL;
            /* Whatever happened, what is there reads back right. */
            ASSERT_OK(wv_repo_checkout(r, "main", NULL, &back));
            ASSERT(wvf_same(rc == WV_OK ? b : a, back, WVF_BY_NAME));
            wv_model_free(back);
            ASSERT_OK(commit_named(r, b, NULL, idb));
            wv_repo_close(r);
            ASSERT_OK(open_pass(uri, PASS, &r, eb, sizeof eb));
            ASSERT_OK(wv_repo_checkout(r, "main", NULL, &back));
            ASSERT(wvf_same(b, back, WVF_BY_NAME));
            wv_model_free(back);
            ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
            wv_repo_close(r);
            if (!fired)
                break;
        }
        ASSERT(n > 5);
    }
    /* Bits flipped on reads: an error, or the right bytes. */
    const char *uri = "mem://crypt-flips";
    char eb[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX];
    init_enc(uri, "zstd-bg", 4096);
    wv_repo *r = NULL;
    ASSERT_OK(open_pass(uri, PASS, &r, eb, sizeof eb));
    ASSERT_OK(commit_named(r, a, NULL, id));
    long n;
    for (n = 1; n < 5000; n++) {
        wv_model *back = NULL;
        wv__store_fault(n, WV__SFAULT_BITFLIP, 0, 0);
        int rc = wv_repo_checkout(r, id, NULL, &back);
        bool fired = !wv__store_fault_pending();
        wv__store_fault(0, WV__SFAULT_FAIL, 0, 0);
        if (rc == WV_OK)
            ASSERT(wvf_same(a, back, WVF_BY_NAME));
        wv_model_free(back);
        if (!fired)
            break;
    }
    ASSERT(n > 5);
    wv_repo_close(r);
    wv_model_free(a);
    wv_model_free(b);
}

TEST_IMPL(crypt_alloc_failures)
{
    const char *uri = "mem://crypt-alloc";
    char eb[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX];
    init_enc(uri, "zstd-bg", 4096);
    wv_model *a = make_secret(7, 3000);
    wv_repo *r = NULL;
    int rc = WV_NOMEM;
    /* Every allocation of an open, a commit, a checkout failing in turn:
     * a clean error (no crash, no leak under ASan), then success. */
    for (long n = 1; rc != WV_OK && n < 100000; n++) {
        wv__alloc_fail_after(n);
        rc = open_pass(uri, PASS, &r, eb, sizeof eb);
        wv__alloc_fail_after(0);
        ASSERT((rc == WV_OK) == (r != NULL));
        if (rc != WV_OK)
            ASSERT(wv_primary(rc) == WV_NOMEM || eb[0] != '\0');
    }
    ASSERT_OK(rc);
    rc = WV_NOMEM;
    for (long n = 1; rc != WV_OK && n < 100000; n++) {
        wv__alloc_fail_after(n);
        rc = commit_named(r, a, NULL, id);
        wv__alloc_fail_after(0);
    }
    ASSERT_OK(rc);
    rc = WV_NOMEM;
    for (long n = 1; rc != WV_OK && n < 100000; n++) {
        wv_model *back = NULL;
        wv__alloc_fail_after(n);
        rc = wv_repo_checkout(r, id, NULL, &back);
        wv__alloc_fail_after(0);
        if (rc == WV_OK)
            ASSERT(wvf_same(a, back, WVF_BY_NAME));
        wv_model_free(back);
    }
    ASSERT_OK(rc);
    ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
    wv_repo_close(r);
    wv_model_free(a);
}

/* ---- the pieces -------------------------------------------------------- */

TEST_IMPL(crypt_primitives)
{
    struct wv__err e = {0};
    ASSERT_OK(wv__crypt_ready(&e));
    unsigned char key[32], out[64 + WV__SEAL_OVERHEAD], back[64];
    for (int i = 0; i < 32; i++)
        key[i] = (unsigned char)i;
    struct wv__ad ad;
    wv__ad_init(&ad, "wv-test");
    wv__ad_str(&ad, "name");
    const char msg[] = "sixty-four bytes of a message that nobody should read";
    wv__seal(key, &ad, msg, sizeof msg, out);
    ASSERT(memmem(out, sizeof msg + WV__SEAL_OVERHEAD, "nobody", 6) == NULL);
    ASSERT_OK(wv__unseal(key, &ad, out, sizeof msg + WV__SEAL_OVERHEAD, back));
    ASSERT_MEMEQ(back, msg, sizeof msg);
    /* Another name, a flipped byte, a short input: refused. */
    struct wv__ad ad2;
    wv__ad_init(&ad2, "wv-test");
    wv__ad_str(&ad2, "other");
    ASSERT_EQ(wv__unseal(key, &ad2, out, sizeof msg + WV__SEAL_OVERHEAD,
                         back),
              -1);
    out[30] ^= 1;
    ASSERT_EQ(wv__unseal(key, &ad, out, sizeof msg + WV__SEAL_OVERHEAD, back),
              -1);
    ASSERT_EQ(wv__unseal(key, &ad, out, 39, back), -1);
    /* HMAC-SHA256 with a 32-byte key, against Python's hmac module. */
    unsigned char h[32];
    char hex[65];
    ASSERT_OK(wv__hmac(key, NULL, "abc", 3, h));
    wv__hex(h, 32, hex);
    ASSERT_STREQ(hex, "f0133729c4163dede81e21cd47839256da58171238c8a0d874397c73b14e1e47");
    /* base64 */
    char b64[64];
    unsigned char raw[40];
    size_t n;
    wv__b64("\xff\x00\x10", 3, b64);
    ASSERT_STREQ(b64, "_wAQ");
    ASSERT_OK(wv__unb64(b64, 4, raw, sizeof raw, &n));
    ASSERT_EQ(n, 3);
    ASSERT_EQ(wv__unb64("_wA=", 4, raw, sizeof raw, &n), -1);
}

/* ---- removals travel with push and pull ------------------------------ */

static int count_trusted(void *arg, const wv_trusted_key *k)
{
    (void)k;
    (*(int *)arg)++;
    return 0;
}

static int n_trusted(const char *uri)
{
    char eb[WV_ERRBUF_SIZE] = "";
    wv_repo *r = NULL;
    int n = 0;
    if (wv_repo_open(uri, eb, sizeof eb, &r) != WV_OK)
        return -1;
    if (wv_repo_trust_list(r, count_trusted, &n) != WV_OK)
        n = -1;
    wv_repo_close(r);
    return n;
}

/* A trusted key removed in one repository is removed from its copy by
 * the next sync; trusted again, it is trusted again there, and a copy of
 * that copy (which holds the old removal marker and the key) trusts it. */
TEST_IMPL(crypt_trust_removal_syncs)
{
    char a[600], b[600], c[600], k[600], pub[700], eb[WV_ERRBUF_SIZE] = "";
    char tid[17];
    wv_repo *r = NULL;
    snprintf(a, sizeof a, "%s/trs-a", wvtest_tmpdir());
    snprintf(b, sizeof b, "%s/trs-b", wvtest_tmpdir());
    snprintf(c, sizeof c, "%s/trs-c", wvtest_tmpdir());
    snprintf(k, sizeof k, "%s/trs-key", wvtest_tmpdir());
    snprintf(pub, sizeof pub, "%s.pub", k);
    ASSERT_OK(wv_keygen(k, eb, sizeof eb));
    ASSERT_OK(wv_repo_init(a, NULL));
    ASSERT_OK(wv_repo_open(a, eb, sizeof eb, &r));
    ASSERT_OK(wv_repo_trust_add(r, pub, "alice", tid));
    ASSERT_OK(wv_repo_sync(a, b, NULL, NULL));
    ASSERT_EQ(n_trusted(b), 1);
    ASSERT_OK(wv_repo_trust_remove(r, tid));
    ASSERT_EQ(n_trusted(b), 1);
    ASSERT_OK(wv_repo_sync(a, b, NULL, NULL));
    ASSERT_EQ(n_trusted(b), 0);
    ASSERT_OK(wv_repo_sync(a, b, NULL, NULL)); /* again: nothing to do */
    ASSERT_EQ(n_trusted(b), 0);
    ASSERT_OK(wv_repo_trust_add(r, pub, "alice again", tid));
    ASSERT_OK(wv_repo_sync(a, b, NULL, NULL));
    ASSERT_EQ(n_trusted(b), 1);
    ASSERT_OK(wv_repo_sync(b, c, NULL, NULL));
    ASSERT_EQ(n_trusted(c), 1);
    ASSERT_EQ(n_trusted(a), 1);
    /* removed a second time: carried again */
    ASSERT_OK(wv_repo_trust_remove(r, tid));
    ASSERT_OK(wv_repo_sync(a, b, NULL, NULL));
    ASSERT_EQ(n_trusted(b), 0);
    wv_repo_close(r);
}

/* ---- repositories from before sealed trust lists and ref counters ----- */

/* Write ref `name` of branch dir "heads" as the first format sealed it:
 * Seal(k_meta, "wv-ref\0" || key, name NUL id[32]), no counter. */
static void write_v1_ref(wv_repo *r, const char *dir, const char *name,
                         const char *hex_id)
{
    char key[160], path[900], val[WV__REF_RAW_MAX];
    unsigned char pt[128 + 32], ct[sizeof pt + WV__SEAL_OVERHEAD];
    size_t nl = strlen(name);
    ASSERT_OK(wv__ref_key(r, "heads", name, key));
    memcpy(pt, name, nl + 1);
    ASSERT_OK(wv__unhex(hex_id, pt + nl + 1, 32));
    struct wv__ad ad;
    wv__ad_init(&ad, "wv-ref");
    wv__ad_str(&ad, key);
    wv__seal(r->crypt->k_meta, &ad, pt, nl + 1 + 32, ct);
    wv__b64(ct, nl + 1 + 32 + WV__SEAL_OVERHEAD, val);
    size_t vl = strlen(val);
    val[vl] = '\n';
    val[vl + 1] = '\0';
    snprintf(path, sizeof path, "%s/%s", dir, key);
    FILE *f = fopen(path, "w");
    ASSERT_NOT_NULL(f);
    fputs(val, f);
    fclose(f);
}

static size_t file_size(const char *dir, const char *rel)
{
    char p[900];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    return stat(p, &st) == 0 ? (size_t)st.st_size : 0;
}

TEST_IMPL(crypt_legacy_refs_upgrade)
{
    char dir[600], eb[WV_ERRBUF_SIZE] = "", k1[700], k1key[760], k1pub[760];
    char id1[WV_ID_HEX], id2[WV_ID_HEX], state[700], key[160], p[900];
    snprintf(dir, sizeof dir, "%s/legacy", wvtest_tmpdir());
    snprintf(state, sizeof state, "%s/legacy-state", wvtest_tmpdir());
    snprintf(k1, sizeof k1, "%s/legacy-signer", wvtest_tmpdir());
    snprintf(k1key, sizeof k1key, "%s.key", k1);
    snprintf(k1pub, sizeof k1pub, "%s.pub", k1);
    char saved[700] = "";
    const char *was = getenv("WV_STATE_DIR");
    if (was)
        snprintf(saved, sizeof saved, "%s", was);
    setenv("WV_STATE_DIR", state, 1);
    unsetenv("WV_ALLOW_ROLLBACK");
    ASSERT_OK(wv_keygen(k1, eb, sizeof eb));
    init_enc(dir, "zstd", 8192);
    wv_repo *r = NULL;
    ASSERT_OK(open_pass(dir, PASS, &r, eb, sizeof eb));
    wv_model *m = make_secret(7, 3000), *back = NULL;
    ASSERT_OK(commit_named(r, m, NULL, id1));
    ASSERT_OK(wv_repo_trust_add(r, k1pub, "signer", NULL));
    /* Make it look as a repository written before: no sealed trust list,
     * the head in the first ref format, no client state. */
    snprintf(p, sizeof p, "%s/refs/trust", dir);
    ASSERT_OK(unlink(p));
    write_v1_ref(r, dir, "main", id1);
    wv_repo_close(r);
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", state);
    ASSERT_OK(system(cmd));

    ASSERT_OK(open_pass(dir, PASS, &r, eb, sizeof eb));
    ASSERT_OK(wv__ref_key(r, "heads", "main", key));
    size_t v1_len = file_size(dir, key);
    /* It reads: the old ref opens, the trusted key still applies (the
     * checkpoint is unsigned, so it is refused), verify says so only. */
    ASSERT_EQ(wv_repo_checkout(r, "main", NULL, &back), WV_AUTH_SIGNATURE);
    wv_verify_stats vs;
    ASSERT_EQ(wv_repo_verify(r, NULL, NULL, &vs), WV_CORRUPT);
    ASSERT_EQ(vs.problems, 1);
    /* The first ref write upgrades: a signed commit writes refs/trust
     * (from the trust/ objects) and a ref with a counter. */
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.sign_key = k1key;
    ASSERT_OK(wv_repo_commit(r, m, NULL, &co, id2));
    ASSERT(file_size(dir, "refs/trust") > 0);
    ASSERT(file_size(dir, key) > v1_len);
    ASSERT_OK(wv_repo_checkout(r, "main", NULL, &back));
    wv_model_free(back);
    back = NULL;
    /* From now on the trust list cannot be stripped ... */
    char **tk = NULL;
    size_t ntk = 0;
    ASSERT_OK(wv__repo_list(r, "trust/", &tk, &ntk));
    ASSERT_EQ(ntk, 1);
    snprintf(p, sizeof p, "%s/%s", dir, tk[0]);
    wv__repo_list_free(tk, ntk);
    ASSERT_OK(unlink(p));
    ASSERT_EQ(wv_repo_checkout(r, "main", NULL, &back), WV_AUTH_ROLLBACK);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "not those of the sealed trust list");
    /* ... nor the old head put back */
    write_v1_ref(r, dir, "main", id1);
    ASSERT_EQ(wv_repo_checkout(r, "main", NULL, &back), WV_AUTH_ROLLBACK);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "was rolled back");
    /* the override accepts what the store holds */
    setenv("WV_ALLOW_ROLLBACK", "1", 1);
    ASSERT_OK(wv_repo_checkout(r, "main", NULL, &back));
    unsetenv("WV_ALLOW_ROLLBACK");
    wv_model_free(back);
    wv_model_free(m);
    wv_repo_close(r);
    if (saved[0])
        setenv("WV_STATE_DIR", saved, 1);
    else
        unsetenv("WV_STATE_DIR");
}

/* The client state: its file is found once, at open; a ref read is one
 * locked read-compare-raise of the ref's counter and the trust list's
 * version; the state directory is made only for a write. */
TEST_IMPL(crypt_state_one_update)
{
    char dir[600], eb[WV_ERRBUF_SIZE] = "", state[700], other[700];
    char saved[700] = "", sp[800];
    snprintf(dir, sizeof dir, "%s/stateone", wvtest_tmpdir());
    snprintf(state, sizeof state, "%s/stateone-state/a/b", wvtest_tmpdir());
    snprintf(other, sizeof other, "%s/stateone-other", wvtest_tmpdir());
    const char *was = getenv("WV_STATE_DIR");
    if (was)
        snprintf(saved, sizeof saved, "%s", was);
    setenv("WV_STATE_DIR", state, 1);
    unsetenv("WV_ALLOW_ROLLBACK");
    init_enc(dir, "zstd", 8192);
    wv_repo *r = NULL;
    ASSERT_OK(open_pass(dir, PASS, &r, eb, sizeof eb));
    ASSERT_NOT_NULL(r->state_file);
    ASSERT(strncmp(r->state_file, state, strlen(state)) == 0);
    snprintf(sp, sizeof sp, "%s", r->state_file);
    /* Later changes of the environment do not move it. */
    setenv("WV_STATE_DIR", other, 1);
    struct stat st;
    uint64_t known = 7;
    /* Reading the records writes nothing, and makes no directory. */
    ASSERT_OK(wv__state_raise(r, "refs/heads/x", 0, &known));
    ASSERT_EQ(known, 0);
    ASSERT(stat(state, &st) != 0);
    /* A ref read: the ref's counter and the trust version, together. */
    ASSERT_OK(wv__state_seen(r, "refs/heads/x", 5, "ref 'x'", 2));
    ASSERT_OK(stat(sp, &st));
    ASSERT_EQ(st.st_mode & 0777, 0600);
    ASSERT(stat(other, &st) != 0);
    ASSERT_OK(wv__state_raise(r, "refs/heads/x", 0, &known));
    ASSERT_EQ(known, 5);
    ASSERT_OK(wv__state_raise(r, WV__TRUST_REF, 0, &known));
    ASSERT_EQ(known, 2);
    /* A rollback is refused and raises nothing, not even the trust
     * version it came with. */
    ASSERT_EQ(wv__state_seen(r, "refs/heads/x", 4, "ref 'x'", 9),
              WV_AUTH_ROLLBACK);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "ref 'x' was rolled back");
    wv__clearerr(&r->err);
    ASSERT_OK(wv__state_raise(r, WV__TRUST_REF, 0, &known));
    ASSERT_EQ(known, 2);
    /* Equal or higher goes through and raises both. */
    ASSERT_OK(wv__state_seen(r, "refs/heads/x", 5, "ref 'x'", 3));
    ASSERT_OK(wv__state_raise(r, WV__TRUST_REF, 0, &known));
    ASSERT_EQ(known, 3);
    ASSERT_OK(wv__state_raise(r, "refs/heads/x", 0, &known));
    ASSERT_EQ(known, 5);
    wv_repo_close(r);
    if (saved[0])
        setenv("WV_STATE_DIR", saved, 1);
    else
        unsetenv("WV_STATE_DIR");
}

/* Clone and pull of an encrypted repository (opened with its key, as every
 * sync is) authenticate every chunk as its pack arrives: a damaged one is
 * refused, naming the pack and the chunk, and nothing of it is kept
 * (t_repo.c's wvtest_sync_damaged_pack); sealed as is and compressed. */
TEST_IMPL(crypt_sync_checks_chunks)
{
    const char *comp[2] = {"none", "zstd"};
    setenv("WV_PASSPHRASE", PASS, 1);
    for (int k = 0; k < 2 && !wvtest_failed; k++) {
        char a[600], b[600], eb[WV_ERRBUF_SIZE] = "", id[WV_ID_HEX];
        wv_repo *r = NULL;
        snprintf(a, sizeof a, "%s/scc-%s-a", wvtest_tmpdir(), comp[k]);
        snprintf(b, sizeof b, "%s/scc-%s-b", wvtest_tmpdir(), comp[k]);
        init_enc(a, comp[k], 16384);
        ASSERT_OK(open_pass(a, PASS, &r, eb, sizeof eb));
        wv_model *m = make_secret(0, 50000);
        ASSERT_OK(commit_named(r, m, NULL, id));
        wv_model_free(m);
        wv_repo_close(r);
        wvtest_sync_damaged_pack(a, b, 1);
        if (wvtest_failed)
            break;
        ASSERT_OK(open_pass(a, PASS, &r, eb, sizeof eb));
        m = make_secret(1, 50000);
        ASSERT_OK(commit_named(r, m, NULL, id));
        wv_model_free(m);
        wv_repo_close(r);
        wvtest_sync_damaged_pack(a, b, 0);
    }
    unsetenv("WV_PASSPHRASE");
}
