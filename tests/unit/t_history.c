/*
 * t_history.c -- checkpoint descriptions, history walks, tags and
 * branches, and diff figures checked against values worked out by hand.
 */
#include "repo.h"
#include "wvtest.h"

static wv_repo *new_repo(const char *uri)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    char eb[WV_ERRBUF_SIZE] = "";
    wv_repo *r = NULL;
    io.chunk_size = 4096;
    io.pack_size = 64 << 10;
    if (wv_repo_init(uri, &io) != WV_OK ||
        wv_repo_open(uri, eb, sizeof eb, &r) != WV_OK)
        return NULL;
    return r;
}

/* Commit float tensor "w" = {v0, 2, 3, 4}, a 3-chunk tensor "big" and the
 * metadata step=<step>. */
static int commit_step(wv_repo *r, const char *branch, float v0, int step,
                       const char *msg, char id[WV_ID_HEX])
{
    wv_model *m;
    char s[16];
    float w[4] = {v0, 2, 3, 4};
    static float big[3000];
    uint64_t sw[2] = {2, 2}, sb[1] = {3000};
    for (int i = 0; i < 3000; i++)
        big[i] = (float)i;
    if (wv_model_new(&m) != WV_OK)
        return WV_NOMEM;
    snprintf(s, sizeof s, "%d", step);
    wv_model_add(m, "w", WV_F32, 2, sw, w, sizeof w, WV_DATA_COPY);
    wv_model_add(m, "big", WV_F32, 1, sb, big, sizeof big, WV_DATA_COPY);
    wv_model_set_meta(m, "step", s);
    wv_model_set_meta(m, "config", "{\"layers\": 2}");
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.message = msg;
    int rc = wv_repo_commit(r, m, branch, &co, id);
    wv_model_free(m);
    return rc;
}

TEST_IMPL(history_stat_and_log)
{
    wv_repo *r = new_repo("mem://hist-log");
    char id[3][WV_ID_HEX];
    wv_checkpoint *c = NULL;
    ASSERT_NOT_NULL(r);
    ASSERT_EQ(wv_repo_stat(r, "latest", &c), WV_NOTFOUND);
    ASSERT(c == NULL);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(commit_step(r, NULL, (float)i, 100 * (i + 1),
                              i == 2 ? "third" : "", id[i]));

    ASSERT_OK(wv_repo_stat(r, "latest", &c));
    ASSERT_STREQ(wv_checkpoint_id(c), id[2]);
    ASSERT_STREQ(wv_checkpoint_parent(c), id[1]);
    ASSERT_STREQ(wv_checkpoint_branch(c), "main");
    ASSERT_STREQ(wv_checkpoint_message(c), "third");
    ASSERT_EQ(strlen(wv_checkpoint_time(c)), 20);
    ASSERT_EQ(wv_checkpoint_meta_count(c), 2);
    ASSERT_STREQ(wv_checkpoint_get_meta(c, "step"), "300");
    ASSERT(wv_checkpoint_get_meta(c, "nope") == NULL);
    const char *k, *v;
    ASSERT_OK(wv_checkpoint_meta(c, 1, &k, &v));
    ASSERT_STREQ(k, "config");
    ASSERT_EQ(wv_checkpoint_meta(c, 2, &k, &v), WV_RANGE);
    ASSERT_EQ(wv_checkpoint_tensor_count(c), 2);
    ASSERT_STREQ(wv_checkpoint_tensor_name(c, 0), "w");
    ASSERT_EQ(wv_checkpoint_tensor_dtype(c, 0), WV_F32);
    ASSERT_EQ(wv_checkpoint_tensor_ndim(c, 0), 2);
    ASSERT_EQ(wv_checkpoint_tensor_shape(c, 0)[1], 2);
    ASSERT_EQ(wv_checkpoint_tensor_nbytes(c, 0), 16);
    ASSERT_EQ(wv_checkpoint_tensor_nbytes(c, 1), 12000);
    ASSERT_EQ(wv_checkpoint_total_bytes(c), 12016);
    ASSERT(wv_checkpoint_tensor_name(c, 2) == NULL);
    ASSERT_EQ(wv_checkpoint_tensor_ndim(c, 2), -1);
    ASSERT_EQ(wv_checkpoint_tensor_dtype(c, 2), WV_DTYPE_INVALID);
    wv_checkpoint_free(c);

    /* A prefix and a full id give the same checkpoint. */
    char pfx[8];
    memcpy(pfx, id[1], 7);
    pfx[7] = '\0';
    ASSERT_OK(wv_repo_stat(r, pfx, &c));
    ASSERT_STREQ(wv_checkpoint_id(c), id[1]);
    ASSERT_STREQ(wv_checkpoint_parent(c), id[0]);
    ASSERT_STREQ(wv_checkpoint_message(c), "");
    wv_checkpoint_free(c);

    /* Walk: three checkpoints, newest first, ending without a parent. */
    int n = 0;
    ASSERT_OK(wv_repo_stat(r, "main", &c));
    while (c) {
        ASSERT(n < 3);
        ASSERT_STREQ(wv_checkpoint_id(c), id[2 - n]);
        n++;
        wv_checkpoint *p = NULL;
        if (wv_checkpoint_parent(c)[0])
            ASSERT_OK(wv_repo_stat(r, wv_checkpoint_parent(c), &p));
        wv_checkpoint_free(c);
        c = p;
    }
    ASSERT_EQ(n, 3);

    /* Prune the oldest manifest: the walk stops at the second. */
    char key[96];
    wv__manifest_key(id[0], key);
    ASSERT_OK(wv__store_del(r->store, key));
    ASSERT_EQ(wv_repo_stat(r, id[0], &c), WV_NOTFOUND);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "missing");
    ASSERT_EQ(wv_repo_stat(r, "nosuch", &c), WV_NOTFOUND);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "'nosuch'");
    ASSERT(c == NULL);
    wv_repo_close(r);
}

struct seen {
    char names[8][32];
    char ids[8][WV_ID_HEX];
    int n;
    int stop_at;
};

static int see(void *arg, const char *name, const char *id)
{
    struct seen *s = arg;
    if (s->n == s->stop_at)
        return 42;
    if (s->n < 8) {
        snprintf(s->names[s->n], 32, "%s", name);
        snprintf(s->ids[s->n], WV_ID_HEX, "%s", id);
    }
    s->n++;
    return 0;
}

TEST_IMPL(history_tags_and_branches)
{
    wv_repo *r = new_repo("mem://hist-refs");
    char a[WV_ID_HEX], b[WV_ID_HEX], c[WV_ID_HEX], got[WV_ID_HEX];
    ASSERT_NOT_NULL(r);
    ASSERT_EQ(wv_repo_tag(r, "early", NULL), WV_NOTFOUND); /* empty repo */
    ASSERT_OK(commit_step(r, NULL, 1, 1, "a", a));

    /* Tags: created once, never moved. */
    ASSERT_OK(wv_repo_tag(r, "v1", NULL));
    ASSERT_OK(wv_repo_resolve(r, "v1", got));
    ASSERT_STREQ(got, a);
    ASSERT_OK(commit_step(r, NULL, 2, 2, "b", b));
    ASSERT_EQ(wv_repo_tag(r, "v1", "latest"), WV_EXISTS);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "never move");
    ASSERT_EQ(wv_repo_tag(r, "v1", a), WV_EXISTS); /* even to the same */
    ASSERT_OK(wv_repo_resolve(r, "v1", got));
    ASSERT_STREQ(got, a);
    ASSERT_OK(wv_repo_tag(r, "best", b));
    ASSERT_EQ(wv_repo_tag(r, "x", "nosuch"), WV_NOTFOUND);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "nosuch");

    /* Names. */
    const char *bad[] = {"", "latest", "abcdef", "0123456789", "a/b",
                         ".hidden", "-x", "a..b", "x.lock", "sp ace"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ASSERT_EQ(wv_repo_tag(r, bad[i], NULL), WV_MISUSE);
        ASSERT_EQ(wv_repo_branch(r, bad[i], NULL), WV_MISUSE);
    }
    ASSERT_EQ(wv_repo_tag(r, NULL, NULL), WV_MISUSE);
    ASSERT_OK(wv_repo_tag(r, "abcde", NULL)); /* 5 hex digits is a name */

    /* Branches: created at a ref, moved by commits on them only. */
    ASSERT_OK(wv_repo_branch(r, "exp", "v1"));
    ASSERT_OK(wv_repo_resolve(r, "exp", got));
    ASSERT_STREQ(got, a);
    ASSERT_EQ(wv_repo_branch(r, "exp", NULL), WV_EXISTS);
    ASSERT_EQ(wv_repo_branch(r, "v1", NULL), WV_EXISTS); /* a tag's name */
    ASSERT_CONTAINS(wv_repo_errmsg(r), "tag");
    ASSERT_EQ(wv_repo_tag(r, "exp", NULL), WV_EXISTS);   /* a branch's */
    ASSERT_EQ(wv_repo_tag(r, "main", NULL), WV_EXISTS);
    ASSERT_OK(commit_step(r, "exp", 3, 3, "c", c));
    wv_checkpoint *ck;
    ASSERT_OK(wv_repo_stat(r, "exp", &ck));
    ASSERT_STREQ(wv_checkpoint_id(ck), c);
    ASSERT_STREQ(wv_checkpoint_parent(ck), a);
    ASSERT_STREQ(wv_checkpoint_branch(ck), "exp");
    wv_checkpoint_free(ck);
    ASSERT_OK(wv_repo_resolve(r, "main", got));
    ASSERT_STREQ(got, b);
    ASSERT_OK(wv_repo_resolve(r, "v1", got));
    ASSERT_STREQ(got, a);

    /* Listing: sorted, a callback's non-zero return stops it. */
    struct seen s = {.stop_at = -1};
    ASSERT_OK(wv_repo_list_branches(r, see, &s));
    ASSERT_EQ(s.n, 2);
    ASSERT_STREQ(s.names[0], "exp");
    ASSERT_STREQ(s.ids[0], c);
    ASSERT_STREQ(s.names[1], "main");
    ASSERT_STREQ(s.ids[1], b);
    memset(&s, 0, sizeof s);
    s.stop_at = -1;
    ASSERT_OK(wv_repo_list_tags(r, see, &s));
    ASSERT_EQ(s.n, 3);
    ASSERT_STREQ(s.names[0], "abcde");
    ASSERT_STREQ(s.names[1], "best");
    ASSERT_STREQ(s.ids[1], b);
    ASSERT_STREQ(s.names[2], "v1");
    memset(&s, 0, sizeof s);
    s.stop_at = 1;
    ASSERT_EQ(wv_repo_list_tags(r, see, &s), 42);
    ASSERT_EQ(s.n, 1);

    /* Deleting removes the name, not the checkpoint. */
    ASSERT_EQ(wv_repo_branch_delete(r, "main"), WV_MISUSE);
    ASSERT_OK(wv_repo_branch_delete(r, "exp"));
    ASSERT_EQ(wv_repo_branch_delete(r, "exp"), WV_NOTFOUND);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "'exp'");
    ASSERT_EQ(wv_repo_resolve(r, "exp", got), WV_NOTFOUND);
    ASSERT_OK(wv_repo_stat(r, c, &ck));
    wv_checkpoint_free(ck);
    ASSERT_OK(wv_repo_tag_delete(r, "v1"));
    ASSERT_EQ(wv_repo_tag_delete(r, "v1"), WV_NOTFOUND);
    ASSERT_OK(wv_repo_tag(r, "v1", "best")); /* the name is free again */
    ASSERT_OK(wv_repo_resolve(r, "v1", got));
    ASSERT_STREQ(got, b);
    ASSERT_EQ(wv_repo_tag_delete(r, "a/b"), WV_MISUSE);

    /* A damaged ref is named, not skipped; odd keys are ignored. */
    ASSERT_OK(wv__store_ref_cas(r->store, "refs/tags/broken", NULL,
                                "not an id\n"));
    ASSERT_EQ(wv_repo_list_tags(r, see, &s), WV_CORRUPT);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "refs/tags/broken");
    ASSERT_OK(wv__store_ref_cas(r->store, "refs/tags/broken",
                                "not an id\n", NULL));
    ASSERT_OK(wv__store_ref_cas(r->store, "refs/heads/sub/dir", NULL,
                                "zz\n"));
    memset(&s, 0, sizeof s);
    s.stop_at = -1;
    ASSERT_OK(wv_repo_list_branches(r, see, &s));
    ASSERT_EQ(s.n, 1);
    wv_repo_close(r);
}

/* A set with one tensor per dtype of the diff test. */
static wv_model *diff_set(int side)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    float f[4] = {1, 2, 3, 4};
    if (side) {
        f[1] = 2.5f;
        f[3] = 2;
    }
    wv_model_add(m, "f32", WV_F32, 1, (uint64_t[]){4}, f, sizeof f,
                 WV_DATA_COPY);
    int32_t i[2] = {10, side ? -25 : -20};
    wv_model_add(m, "i32", WV_I32, 1, (uint64_t[]){2}, i, sizeof i,
                 WV_DATA_COPY);
    /* F16 1.0 = 0x3c00, 1.5 = 0x3e00, 2.0 = 0x4000, 0.5 = 0x3800 */
    uint16_t h[2] = {0x3c00, side ? 0x3800 : 0x4000};
    wv_model_add(m, "f16", WV_F16, 1, (uint64_t[]){2}, h, sizeof h,
                 WV_DATA_COPY);
    /* BF16 3.0 = 0x4040, -1.0 = 0xbf80 */
    uint16_t bf[1] = {side ? 0xbf80 : 0x4040};
    wv_model_add(m, "bf16", WV_BF16, 1, (uint64_t[]){1}, bf, sizeof bf,
                 WV_DATA_COPY);
    uint8_t u8[3] = {0, 200, 7};
    if (side)
        u8[1] = 0;
    wv_model_add(m, "zero_a", WV_U8, 1, (uint64_t[]){3}, u8, sizeof u8,
                 WV_DATA_COPY);
    float zero[2] = {0, 0}, nz[2] = {0, 1e-3f};
    wv_model_add(m, "from_zero", WV_F32, 1, (uint64_t[]){2},
                 side ? nz : zero, sizeof zero, WV_DATA_COPY);
    float nan1[2] = {__builtin_nanf(""), 1};
    float nan2[2] = {1, 1};
    wv_model_add(m, "nan", WV_F32, 1, (uint64_t[]){2}, side ? nan1 : nan2,
                 sizeof nan1, WV_DATA_COPY);
    float negz[1] = {side ? -0.0f : 0.0f};
    wv_model_add(m, "negzero", WV_F32, 1, (uint64_t[]){1}, negz,
                 sizeof negz, WV_DATA_COPY);
    /* Same bytes, other shape: changed without figures. */
    wv_model_add(m, "reshaped", WV_F32, side ? 2 : 1,
                 side ? (uint64_t[]){2, 2} : (uint64_t[]){4}, (float[]){1, 2,
                 3, 4}, 16, WV_DATA_COPY);
    /* A 3-chunk tensor equal on both sides: must not be read. */
    static float big[3000];
    for (int k = 0; k < 3000; k++)
        big[k] = (float)k / 7;
    wv_model_add(m, "big", WV_F32, 1, (uint64_t[]){3000}, big, sizeof big,
                 WV_DATA_COPY);
    wv_model_add(m, side ? "only_b" : "only_a", WV_I64, 0, NULL,
                 (int64_t[]){5}, 8, WV_DATA_COPY);
    return m;
}

static const wv_diff_entry *entry(const wv_diff *d, const char *name)
{
    for (size_t i = 0; i < wv_diff_count(d); i++)
        if (strcmp(wv_diff_entry_at(d, i)->name, name) == 0)
            return wv_diff_entry_at(d, i);
    return NULL;
}

static int close_to(double x, double want)
{
    double e = x > want ? x - want : want - x;
    return e <= 1e-12 * (want > 1 ? want : 1);
}

TEST_IMPL(history_diff_figures)
{
    wv_repo *r = new_repo("mem://hist-diff");
    char a[WV_ID_HEX], b[WV_ID_HEX];
    wv_diff *d = NULL;
    const wv_diff_entry *e;
    ASSERT_NOT_NULL(r);
    wv_model *ma = diff_set(0), *mb = diff_set(1);
    ASSERT_OK(wv_repo_commit(r, ma, NULL, NULL, a));
    ASSERT_OK(wv_repo_commit(r, mb, NULL, NULL, b));
    wv_model_free(ma);
    wv_model_free(mb);

    ASSERT_OK(wv_repo_diff(r, a, "latest", 0, &d));
    ASSERT_STREQ(wv_checkpoint_id(wv_diff_a(d)), a);
    ASSERT_STREQ(wv_checkpoint_id(wv_diff_b(d)), b);
    ASSERT_EQ(wv_diff_count(d), 12);
    ASSERT(wv_diff_entry_at(d, 12) == NULL);
    /* b's order, then the removed ones. */
    ASSERT_STREQ(wv_diff_entry_at(d, 0)->name, "f32");
    ASSERT_STREQ(wv_diff_entry_at(d, 10)->name, "only_b");
    ASSERT_STREQ(wv_diff_entry_at(d, 11)->name, "only_a");

    /* f32: {1,2,3,4} -> {1,2.5,3,2}: |d| = .5, 2; ||d||^2 = 4.25,
     * ||a||^2 = 30. */
    e = entry(d, "f32");
    ASSERT_EQ(e->kind, WV_DIFF_CHANGED);
    ASSERT_EQ(e->a, 0);
    ASSERT_EQ(e->b, 0);
    ASSERT(e->compared);
    ASSERT_EQ(e->n_differ, 2);
    ASSERT(close_to(e->max_abs, 2.0));
    ASSERT(close_to(e->rel_l2, 0.37638632635454052)); /* sqrt(4.25/30) */
    /* i32: {10,-20} -> {10,-25}: 5 / sqrt(500). */
    e = entry(d, "i32");
    ASSERT(e->compared && e->n_differ == 1);
    ASSERT(close_to(e->max_abs, 5.0));
    ASSERT(close_to(e->rel_l2, 0.22360679774997896));
    /* f16: {1,2} -> {1,0.5}: 1.5 / sqrt(5). */
    e = entry(d, "f16");
    ASSERT(close_to(e->max_abs, 1.5));
    ASSERT(close_to(e->rel_l2, 0.67082039324993692));
    /* bf16: 3 -> -1: |d| = 4, relative 4/3. */
    e = entry(d, "bf16");
    ASSERT(close_to(e->max_abs, 4.0));
    ASSERT(close_to(e->rel_l2, 4.0 / 3.0));
    /* u8: {0,200,7} -> {0,0,7}: 200 / sqrt(40049). */
    e = entry(d, "zero_a");
    ASSERT(close_to(e->max_abs, 200.0));
    ASSERT(close_to(e->rel_l2, 200.0 / 200.12246250733574));
    /* ||a|| = 0: relative change is infinite. */
    e = entry(d, "from_zero");
    ASSERT(e->compared && e->n_differ == 1);
    ASSERT(close_to(e->max_abs, (double)1e-3f));
    ASSERT(e->rel_l2 > 1e308);
    /* A NaN on one side. */
    e = entry(d, "nan");
    ASSERT(e->compared && e->n_differ == 1);
    ASSERT(e->max_abs != e->max_abs);
    ASSERT(e->rel_l2 != e->rel_l2);
    /* 0.0 -> -0.0: other bytes, equal values. */
    e = entry(d, "negzero");
    ASSERT_EQ(e->kind, WV_DIFF_CHANGED);
    ASSERT(e->compared && e->n_differ == 0 && e->max_abs == 0);
    ASSERT(e->rel_l2 == 0);
    e = entry(d, "reshaped");
    ASSERT_EQ(e->kind, WV_DIFF_CHANGED);
    ASSERT(!e->compared);
    e = entry(d, "big");
    ASSERT_EQ(e->kind, WV_DIFF_UNCHANGED);
    ASSERT_EQ(entry(d, "only_b")->kind, WV_DIFF_ADDED);
    ASSERT_EQ(entry(d, "only_b")->a, -1);
    ASSERT_EQ(entry(d, "only_a")->kind, WV_DIFF_REMOVED);
    ASSERT_EQ(entry(d, "only_a")->b, -1);
    /* Only the 8 compared tensors were read, twice each: 16 + 8 + 4 + 2 +
     * 3 + 8 + 8 + 4 bytes, not the 12000 of "big". */
    ASSERT_EQ(wv_diff_bytes_read(d), 2 * (16 + 8 + 4 + 2 + 3 + 8 + 8 + 4));
    wv_diff_free(d);

    /* Without values nothing is read. */
    ASSERT_OK(wv_repo_diff(r, a, b, WV_DIFF_NO_VALUES, &d));
    ASSERT_EQ(wv_diff_bytes_read(d), 0);
    ASSERT_EQ(entry(d, "f32")->kind, WV_DIFF_CHANGED);
    ASSERT(!entry(d, "f32")->compared);
    wv_diff_free(d);

    /* A checkpoint against itself. */
    ASSERT_OK(wv_repo_diff(r, b, b, 0, &d));
    for (size_t i = 0; i < wv_diff_count(d); i++)
        ASSERT_EQ(wv_diff_entry_at(d, i)->kind, WV_DIFF_UNCHANGED);
    ASSERT_EQ(wv_diff_bytes_read(d), 0);
    wv_diff_free(d);

    ASSERT_EQ(wv_repo_diff(r, a, "nosuch", 0, &d), WV_NOTFOUND);
    ASSERT(d == NULL);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "nosuch");
    ASSERT_EQ(wv_repo_diff(r, a, b, 0x80, &d), WV_MISUSE);

    /* Every allocation and every store call failing in turn: a clean
     * error, never a crash or a leak (ASan/LSan), then success. */
    int rc = WV_NOMEM;
    for (long n = 1; rc != WV_OK && n < 10000; n++) {
        wv__alloc_fail_after(n);
        rc = wv_repo_diff(r, a, b, 0, &d);
        wv__alloc_fail_after(0);
        ASSERT(rc == WV_OK || rc == WV_NOMEM);
        ASSERT((rc == WV_OK) == (d != NULL));
        wv_diff_free(d);
        d = NULL;
    }
    ASSERT_OK(rc);
    rc = WV_IO;
    for (long n = 1; rc != WV_OK && n < 10000; n++) {
        wv__store_fail_after(n, WV_IO, 5 /* EIO */);
        rc = wv_repo_diff(r, a, b, 0, &d);
        wv__store_fail_after(0, 0, 0);
        ASSERT(rc == WV_OK || wv_repo_errmsg(r)[0] != '\0');
        wv_diff_free(d);
        d = NULL;
    }
    ASSERT_OK(rc);
    rc = WV_IO;
    for (long n = 1; rc != WV_OK && n < 1000; n++) {
        char t[16];
        snprintf(t, sizeof t, "t%ld", n);
        wv__store_fail_after(n, WV_IO, 5);
        rc = wv_repo_tag(r, t, "latest");
        wv__store_fail_after(0, 0, 0);
        if (rc != WV_OK) { /* failed: no tag left behind */
            char got[WV_ID_HEX];
            ASSERT_EQ(wv_repo_resolve(r, t, got), WV_NOTFOUND);
        }
    }
    ASSERT_OK(rc);
    wv_repo_close(r);
}
