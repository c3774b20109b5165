/*
 * t_maint.c -- retention and integrity: prune selection, gc (dead packs,
 * repacking, crash points, locks, long-lived handles), verify (each kind
 * of damage named), and malformed index objects.
 */
#include "repo.h"
#include "wvtest.h"

#include <dirent.h>

/* A set of `n` F32 tensors "t0".."t<n-1>" of `bytes` each; tensor i's
 * content depends on seeds[i] only (so sets can share tensors). */
static wv_model *make_set(const unsigned *seeds, int n, size_t bytes,
                          const char *step, const char *loss)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    for (int i = 0; i < n; i++) {
        size_t k = bytes / 4;
        uint32_t *w = wv_malloc(bytes);
        uint32_t x = seeds[i] * 2654435761u + 1;
        for (size_t j = 0; j < k; j++) {
            x = x * 1664525u + 1013904223u;
            w[j] = x;
        }
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        uint64_t shape[1] = {k};
        wv_model_add(m, name, WV_F32, 1, shape, w, bytes, WV_DATA_TAKE);
    }
    if (step)
        wv_model_set_meta(m, "step", step);
    if (loss)
        wv_model_set_meta(m, "val_loss", loss);
    return m;
}

static int same(const wv_model *a, const wv_model *b)
{
    if (wv_model_count(a) != wv_model_count(b))
        return 0;
    for (size_t i = 0; i < wv_model_count(a); i++) {
        const wv_tensor *t = wv_model_tensor(a, i);
        const wv_tensor *u = wv_model_find(b, wv_tensor_name(t));
        if (u == NULL || wv_tensor_nbytes(t) != wv_tensor_nbytes(u) ||
            memcmp(wv_tensor_data(t), wv_tensor_data(u),
                   wv_tensor_nbytes(t)) != 0)
            return 0;
    }
    return 1;
}

static int reads_back(wv_repo *r, const char *ref, const wv_model *m)
{
    wv_model *back = NULL;
    if (wv_repo_checkout(r, ref, NULL, &back) != WV_OK)
        return 0;
    int ok = same(m, back);
    wv_model_free(back);
    return ok;
}

/* Keys under a directory of the repository, one string "a\nb\n...". */
static void list_dir(const char *dir, char *out, size_t cap)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cd %s 2>/dev/null && find . -type f | sort",
             dir);
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    out[0] = '\0';
    if (p) {
        n = fread(out, 1, cap - 1, p);
        pclose(p);
    }
    out[n] = '\0';
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void init_repo(const char *uri, const char *comp, uint64_t pack)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.compression = comp;
    io.chunk_size = 16 << 10;
    io.pack_size = pack;
    /* Whole chunks: these cases count chunks and packs (t_delta.c covers
     * gc and verify with delta chains). */
    io.delta_keyframe = 1;
    if (wv_repo_init(uri, &io) != WV_OK)
        fprintf(stderr, "init %s failed\n", uri);
}

/* ---- prune -------------------------------------------------------------- */

struct decisions {
    char ids[32][65];
    int keep[32];
    char reason[32][200];
    int n;
};

static int record(void *arg, const wv_prune_decision *d)
{
    struct decisions *ds = arg;
    if (ds->n < 32) {
        memcpy(ds->ids[ds->n], d->id, 65);
        ds->keep[ds->n] = d->keep;
        snprintf(ds->reason[ds->n], 200, "%s", d->reason);
        ds->n++;
    }
    return 0;
}

static int kept(const struct decisions *ds, const char *id)
{
    for (int i = 0; i < ds->n; i++)
        if (strcmp(ds->ids[i], id) == 0)
            return ds->keep[i];
    return -1;
}

static int exists(wv_repo *r, const char *id)
{
    struct wv__manifest mf;
    int rc = wv__manifest_load(r, id, &mf);
    wv__manifest_release(&mf);
    wv__clearerr(&r->err);
    return rc == WV_OK;
}

TEST_IMPL(maint_prune_selection)
{
    const char *uri = "mem://prune";
    char id[8][WV_ID_HEX], e[3][WV_ID_HEX];
    const char *loss[8] = {"0.9", "0.2", "0.5", "nan?", "0.1", "0.8", "0.7",
                           "0.6"};
    init_repo(uri, "none", 1 << 20);
    wv_repo *r;
    ASSERT_OK(wv_repo_open(uri, NULL, 0, &r));
    for (int i = 0; i < 8; i++) {
        unsigned s[1] = {(unsigned)i + 1};
        char step[16];
        snprintf(step, sizeof step, "%d", i * 100);
        /* Checkpoint 6 has no metric at all. */
        wv_model *m = make_set(s, 1, 4096, step, i == 6 ? NULL : loss[i]);
        ASSERT_OK(wv_repo_commit(r, m, NULL, NULL, id[i]));
        wv_model_free(m);
    }
    for (int i = 0; i < 3; i++) {
        unsigned s[1] = {(unsigned)i + 100};
        wv_model *m = make_set(s, 1, 4096, NULL, "0.01");
        ASSERT_OK(wv_repo_commit(r, m, "exp", NULL, e[i]));
        wv_model_free(m);
    }
    /* Tag checkpoint 0. */
    char v[80];
    snprintf(v, sizeof v, "%s\n", id[0]);
    ASSERT_OK(wv__store_ref_cas(r->store, "refs/tags/first", NULL, v));

    /* No rule: refused. */
    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    ASSERT_EQ(wv_repo_prune(r, &po, NULL, NULL, NULL), WV_MISUSE);
    po.keep_best = 1;
    ASSERT_EQ(wv_repo_prune(r, &po, NULL, NULL, NULL), WV_MISUSE);

    /* Dry run on main only: last 2 (all in the same second, so the parent
     * chain orders them) and best 2 by val_loss (min). */
    struct decisions ds;
    memset(&ds, 0, sizeof ds);
    po.keep_last = 2;
    po.keep_best = 2;
    po.metric = "val_loss";
    po.branch = "main";
    po.dry_run = 1;
    wv_prune_stats st;
    ASSERT_OK(wv_repo_prune(r, &po, record, &ds, &st));
    ASSERT_EQ(ds.n, 8);
    ASSERT_EQ(st.kept, 5);
    ASSERT_EQ(st.removed, 3);
    ASSERT_STREQ(ds.ids[0], id[7]); /* newest first */
    ASSERT_CONTAINS(ds.reason[0], "head of main");
    ASSERT_CONTAINS(ds.reason[0], "last 2 of main");
    ASSERT_EQ(kept(&ds, id[6]), 1); /* last 2 */
    ASSERT_EQ(kept(&ds, id[4]), 1); /* best: 0.1 */
    ASSERT_EQ(kept(&ds, id[1]), 1); /* best: 0.2 */
    ASSERT_EQ(kept(&ds, id[0]), 1); /* tag */
    ASSERT_EQ(kept(&ds, id[2]), 0);
    ASSERT_EQ(kept(&ds, id[3]), 0); /* "nan?" is not a number */
    ASSERT_EQ(kept(&ds, id[5]), 0);
    ASSERT_EQ(kept(&ds, e[0]), -1); /* other branch: not considered */
    ASSERT(exists(r, id[2]));       /* dry run */

    /* Max mode picks the other end. */
    memset(&ds, 0, sizeof ds);
    po.keep_last = 0;
    po.keep_best = 1;
    po.mode = WV_PRUNE_MAX;
    ASSERT_OK(wv_repo_prune(r, &po, record, &ds, &st));
    ASSERT_EQ(kept(&ds, id[0]), 1); /* 0.9, also the tag */
    ASSERT_CONTAINS(ds.reason[7], "tag first");
    ASSERT_CONTAINS(ds.reason[7], "best 1 of main by val_loss");
    ASSERT_EQ(kept(&ds, id[5]), 0);
    ASSERT_EQ(st.kept, 2); /* the head and the tag */

    /* For real, every branch: keep the last 1. */
    memset(&ds, 0, sizeof ds);
    wv_prune_opts p2 = WV_PRUNE_OPTS_INIT;
    p2.keep_last = 1;
    ASSERT_OK(wv_repo_prune(r, &p2, record, &ds, &st));
    ASSERT_EQ(ds.n, 11);
    ASSERT_EQ(st.kept, 3); /* heads of main and exp, the tag */
    ASSERT_EQ(st.removed, 8);
    ASSERT(exists(r, id[7]));
    ASSERT(exists(r, id[0]));
    ASSERT(exists(r, e[2]));
    ASSERT(!exists(r, id[3]));
    ASSERT(!exists(r, e[1]));
    /* The kept checkpoints still read; the history just stops. */
    wv_model *back;
    ASSERT_OK(wv_repo_checkout(r, "main", NULL, &back));
    wv_model_free(back);
    ASSERT_OK(wv_repo_checkout(r, "first", NULL, &back));
    wv_model_free(back);

    /* A callback that says stop: nothing deleted. */
    wv_repo_close(r);
}

static int stop_cb(void *arg, const wv_prune_decision *d)
{
    (void)arg;
    (void)d;
    return 1;
}

TEST_IMPL(maint_prune_cancel)
{
    const char *uri = "mem://prune-cancel";
    char a[WV_ID_HEX], b[WV_ID_HEX];
    init_repo(uri, "none", 1 << 20);
    wv_repo *r;
    ASSERT_OK(wv_repo_open(uri, NULL, 0, &r));
    unsigned s1[1] = {1}, s2[1] = {2};
    wv_model *m1 = make_set(s1, 1, 4096, NULL, NULL);
    wv_model *m2 = make_set(s2, 1, 4096, NULL, NULL);
    ASSERT_OK(wv_repo_commit(r, m1, NULL, NULL, a));
    ASSERT_OK(wv_repo_commit(r, m2, NULL, NULL, b));
    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    po.keep_last = 0;
    ASSERT_EQ(wv_repo_prune(r, &po, stop_cb, NULL, NULL), WV_ERROR);
    ASSERT(exists(r, a));
    ASSERT_OK(wv_repo_prune(r, &po, NULL, NULL, NULL));
    ASSERT(!exists(r, a));
    ASSERT(exists(r, b));
    wv_model_free(m1);
    wv_model_free(m2);
    wv_repo_close(r);
}

/* ---- gc ----------------------------------------------------------------- */

TEST_IMPL(maint_gc_deletes_dead_packs)
{
    char dir[512], packs[600], before[8192], mid[8192], after[8192];
    char a[WV_ID_HEX], b[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/gc", wvtest_tmpdir());
    snprintf(packs, sizeof packs, "%s/packs", dir);
    init_repo(dir, "none", 64 << 10);
    wv_repo *r;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    unsigned sa[2] = {1, 2}, sb[2] = {3, 4};
    wv_model *ma = make_set(sa, 2, 128 << 10, "1", NULL);
    wv_model *mb = make_set(sb, 2, 128 << 10, "2", NULL);
    ASSERT_OK(wv_repo_commit(r, ma, NULL, NULL, a));
    list_dir(packs, before, sizeof before);
    ASSERT_OK(wv_repo_commit(r, mb, NULL, NULL, b));
    list_dir(packs, mid, sizeof mid);
    size_t na = count_lines(before), nall = count_lines(mid);
    ASSERT(na >= 4);
    ASSERT(nall > na);

    /* Nothing is dead yet: gc changes no pack. */
    wv_gc_stats gs;
    ASSERT_OK(wv_repo_gc(r, NULL, &gs));
    ASSERT_EQ(gs.packs_deleted, 0);
    ASSERT_EQ(gs.packs_repacked, 0);
    ASSERT_EQ(gs.checkpoints, 2);
    list_dir(packs, after, sizeof after);
    ASSERT_STREQ(after, mid);

    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    po.keep_last = 1;
    ASSERT_OK(wv_repo_prune(r, &po, NULL, NULL, NULL));
    /* Dry run: reports, changes nothing. */
    wv_gc_opts go = WV_GC_OPTS_INIT;
    go.dry_run = 1;
    ASSERT_OK(wv_repo_gc(r, &go, &gs));
    ASSERT_EQ(gs.packs_deleted, na);
    ASSERT(gs.bytes_freed >= (256u << 10));
    list_dir(packs, after, sizeof after);
    ASSERT_STREQ(after, mid);

    ASSERT_OK(wv_repo_gc(r, NULL, &gs));
    ASSERT_EQ(gs.packs_deleted, na);
    ASSERT_EQ(gs.packs_repacked, 0);
    ASSERT_EQ(gs.live_chunks, 16); /* 256 KiB in 16 KiB chunks */
    ASSERT_EQ(gs.indexes_written, 1);
    ASSERT(gs.bytes_freed >= (256u << 10));
    /* Exactly A's packs went: every remaining one was there after B. */
    list_dir(packs, after, sizeof after);
    ASSERT_EQ(count_lines(after), nall - na);
    for (char *line = before; *line;) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        ASSERT(strstr(after, line) == NULL);
        line = nl + 1;
    }
    ASSERT(reads_back(r, "latest", mb));
    wv_verify_stats vs;
    ASSERT_OK(wv_repo_verify(r, NULL, NULL, &vs));
    ASSERT_EQ(vs.checkpoints, 1);
    ASSERT_EQ(vs.indexes, 1);

    /* Reopened: still whole. */
    wv_repo_close(r);
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    ASSERT(reads_back(r, b, mb));
    wv_model_free(ma);
    wv_model_free(mb);
    wv_repo_close(r);
}

/* A: t0 t1 t2 in one pack; B keeps t0, adds t3. Once A is pruned, A's pack
 * is two-thirds dead: repacked. */
static void repack_case(const char *dir, const char *comp, wv_model **mb,
                        char b[WV_ID_HEX])
{
    char a[WV_ID_HEX];
    init_repo(dir, comp, 1 << 20);
    wv_repo *r;
    if (wv_repo_open(dir, NULL, 0, &r) != WV_OK)
        return;
    unsigned sa[3] = {1, 2, 3}, sb[2] = {1, 4};
    wv_model *ma = make_set(sa, 3, 64 << 10, "1", NULL);
    *mb = make_set(sb, 2, 64 << 10, "2", NULL);
    wv_repo_commit(r, ma, NULL, NULL, a);
    wv_repo_commit(r, *mb, NULL, NULL, b);
    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    po.keep_last = 1;
    wv_repo_prune(r, &po, NULL, NULL, NULL);
    wv_model_free(ma);
    wv_repo_close(r);
}

TEST_IMPL(maint_gc_repack)
{
    const char *comps[2] = {"none", "zstd-bg"};
    for (int c = 0; c < 2; c++) {
        char dir[512], packs[600], before[8192], after[8192];
        char b[WV_ID_HEX];
        wv_model *mb = NULL;
        snprintf(dir, sizeof dir, "%s/repack-%d", wvtest_tmpdir(), c);
        snprintf(packs, sizeof packs, "%s/packs", dir);
        repack_case(dir, comps[c], &mb, b);
        ASSERT_NOT_NULL(mb);
        list_dir(packs, before, sizeof before);
        ASSERT_EQ(count_lines(before), 2);
        wv_repo *r;
        ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
        wv_gc_stats gs;
        ASSERT_OK(wv_repo_gc(r, NULL, &gs));
        ASSERT_EQ(gs.packs_repacked, 1);
        ASSERT_EQ(gs.packs_written, 1);
        ASSERT_EQ(gs.packs_deleted, 0);
        ASSERT_EQ(gs.live_chunks, 8);
        ASSERT(gs.bytes_after < gs.bytes_before);
        list_dir(packs, after, sizeof after);
        ASSERT_EQ(count_lines(after), 2);
        ASSERT(strcmp(before, after) != 0);
        ASSERT(reads_back(r, b, mb));
        ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
        /* Again: nothing left to do. */
        ASSERT_OK(wv_repo_gc(r, NULL, &gs));
        ASSERT_EQ(gs.packs_repacked + gs.packs_deleted, 0);
        ASSERT_EQ(gs.bytes_freed, 0);
        wv_model_free(mb);
        wv_repo_close(r);
    }
}

/* gc stopped by a failing store call at every possible point: the
 * repository stays readable and complete, and a later gc finishes. */
TEST_IMPL(maint_gc_fault_points)
{
    int done = 0;
    for (long n = 1; n < 400 && !done; n++) {
        char dir[512], b[WV_ID_HEX];
        wv_model *mb = NULL;
        snprintf(dir, sizeof dir, "%s/fault-%ld", wvtest_tmpdir(), n);
        repack_case(dir, "zstd", &mb, b);
        ASSERT_NOT_NULL(mb);
        wv_repo *r;
        ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
        wv__store_fail_after(n, WV_IO, EIO);
        int rc = wv_repo_gc(r, NULL, NULL);
        wv__store_fail_after(0, 0, 0);
        if (rc == WV_OK)
            done = 1;
        else
            ASSERT(wv_repo_errmsg(r)[0] != '\0');
        wv_repo_close(r);
        /* A failed unlock leaves our lock behind, as a killed gc would
         * leave its own; our process is alive, so clear it by hand. */
        char rm[600];
        snprintf(rm, sizeof rm, "rm -f %s/locks/*", dir);
        ASSERT_OK(system(rm));
        ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
        ASSERT(reads_back(r, b, mb));
        ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
        ASSERT_OK(wv_repo_gc(r, NULL, NULL));
        ASSERT(reads_back(r, b, mb));
        ASSERT_OK(wv_repo_verify(r, NULL, NULL, NULL));
        wv_model_free(mb);
        wv_repo_close(r);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        ASSERT_OK(system(cmd));
    }
    ASSERT(done);
}

/* A handle kept open across someone else's prune and gc must not trust
 * its cached chunk index: the chunks it remembers may be gone. */
TEST_IMPL(maint_gc_under_open_handle)
{
    char dir[512], a[WV_ID_HEX], b[WV_ID_HEX], a2[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/handle", wvtest_tmpdir());
    init_repo(dir, "none", 64 << 10);
    wv_repo *r1, *r2;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r1));
    unsigned sa[1] = {7}, sb[1] = {8};
    wv_model *ma = make_set(sa, 1, 64 << 10, NULL, NULL);
    wv_model *mb = make_set(sb, 1, 64 << 10, NULL, NULL);
    ASSERT_OK(wv_repo_commit(r1, ma, NULL, NULL, a));
    ASSERT_OK(wv_repo_commit(r1, mb, NULL, NULL, b));
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r2));
    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    po.keep_last = 1;
    ASSERT_OK(wv_repo_prune(r2, &po, NULL, NULL, NULL));
    wv_gc_stats gs;
    ASSERT_OK(wv_repo_gc(r2, NULL, &gs));
    ASSERT(gs.packs_deleted >= 1);
    /* r1 commits A's tensors again: they must be stored again. */
    ASSERT_OK(wv_repo_commit(r1, ma, NULL, NULL, a2));
    ASSERT(reads_back(r2, a2, ma));
    ASSERT(reads_back(r1, "latest", ma));
    ASSERT_OK(wv_repo_verify(r2, NULL, NULL, NULL));
    wv_model_free(ma);
    wv_model_free(mb);
    wv_repo_close(r1);
    wv_repo_close(r2);
}

/* A commit that loses the race for its branch re-parents onto the winner.
 * The winner was stamped later, so the loser's manifest must be stamped
 * again: prune's "last 1" then keeps the new head alone (it kept the
 * winner too when the two stamps were seconds apart). */
struct race_arg {
    const char *dir;
    wv_model *other;
    char other_id[WV_ID_HEX];
    int fired, rc;
};

static void race_progress(void *arg, uint64_t done, uint64_t total)
{
    struct race_arg *ra = arg;
    wv_repo *r2;
    (void)done;
    (void)total;
    if (ra->fired++)
        return;
    /* Let the second tick over, then land another commit first. */
    struct timespec ts = {1, 100000000};
    nanosleep(&ts, NULL);
    ra->rc = wv_repo_open(ra->dir, NULL, 0, &r2);
    if (ra->rc == WV_OK) {
        ra->rc = wv_repo_commit(r2, ra->other, NULL, NULL, ra->other_id);
        wv_repo_close(r2);
    }
}

TEST_IMPL(maint_race_loser_restamped)
{
    char dir[512], first[WV_ID_HEX], loser[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/race", wvtest_tmpdir());
    init_repo(dir, "none", 64 << 10);
    wv_repo *r;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    unsigned s0[1] = {3}, sa[1] = {4}, sb[1] = {5};
    wv_model *m0 = make_set(s0, 1, 64 << 10, NULL, NULL);
    wv_model *ma = make_set(sa, 1, 64 << 10, NULL, NULL);
    wv_model *mb = make_set(sb, 1, 64 << 10, NULL, NULL);
    ASSERT_OK(wv_repo_commit(r, m0, NULL, NULL, first));
    struct race_arg ra = {dir, mb, "", 0, -1};
    wv_commit_opts co = WV_COMMIT_OPTS_INIT;
    co.progress = race_progress;
    co.progress_arg = &ra;
    ASSERT_OK(wv_repo_commit(r, ma, NULL, &co, loser));
    ASSERT_OK(ra.rc);
    wv_checkpoint *cl, *cw;
    ASSERT_OK(wv_repo_stat(r, loser, &cl));
    ASSERT_OK(wv_repo_stat(r, ra.other_id, &cw));
    ASSERT_STREQ(wv_checkpoint_parent(cl), ra.other_id);
    ASSERT(strcmp(wv_checkpoint_time(cl), wv_checkpoint_time(cw)) >= 0);
    wv_checkpoint_free(cl);
    wv_checkpoint_free(cw);
    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    po.keep_last = 1;
    wv_prune_stats ps;
    ASSERT_OK(wv_repo_prune(r, &po, NULL, NULL, &ps));
    ASSERT_EQ(ps.kept, 1);
    ASSERT_EQ(ps.removed, 2);
    ASSERT(reads_back(r, "latest", ma));
    wv_model_free(m0);
    wv_model_free(ma);
    wv_model_free(mb);
    wv_repo_close(r);
}

TEST_IMPL(maint_gc_locks)
{
    const char *uri = "mem://locks";
    char id[WV_ID_HEX];
    init_repo(uri, "none", 1 << 20);
    wv_repo *r1, *r2;
    ASSERT_OK(wv_repo_open(uri, NULL, 0, &r1));
    ASSERT_OK(wv_repo_open(uri, NULL, 0, &r2));
    unsigned s[1] = {1};
    wv_model *m = make_set(s, 1, 4096, NULL, NULL);
    /* A commit holds its shared lock: gc and prune back off. */
    ASSERT_OK(wv__repo_lock(r1, false));
    ASSERT_EQ(wv_repo_gc(r2, NULL, NULL), WV_CONFLICT);
    ASSERT_CONTAINS(wv_repo_errmsg(r2), "locked");
    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    po.keep_last = 1;
    ASSERT_EQ(wv_repo_prune(r2, &po, NULL, NULL, NULL), WV_CONFLICT);
    wv__repo_unlock(r1);
    /* gc holds the exclusive lock: a commit backs off, writing nothing. */
    ASSERT_OK(wv__repo_lock(r2, true));
    ASSERT_EQ(wv_repo_commit(r1, m, NULL, NULL, id), WV_CONFLICT);
    ASSERT_CONTAINS(wv_repo_errmsg(r1), "locked");
    ASSERT_CONTAINS(wv_repo_errmsg(r1), "gc");
    ASSERT_EQ(wv_repo_verify(r1, NULL, NULL, NULL), WV_CONFLICT);
    wv__repo_unlock(r2);
    ASSERT_OK(wv_repo_commit(r1, m, NULL, NULL, id));
    /* A lock left by a dead process on this host is stale: removed. */
    char body[200];
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    int n = snprintf(body, sizeof body,
                     "{\"exclusive\": true, \"host\": \"%s\", \"pid\": "
                     "999999999, \"time\": 1}\n",
                     host);
    ASSERT_OK(wv__store_put(r1->store, "locks/deadbeef", body, (size_t)n,
                            0));
    wv_gc_stats gs;
    ASSERT_OK(wv_repo_gc(r2, NULL, &gs));
    ASSERT_EQ(gs.locks_removed, 1);
    /* A live process's lock is never stale, however old. */
    n = snprintf(body, sizeof body,
                 "{\"exclusive\": false, \"host\": \"%s\", \"pid\": %ld, "
                 "\"time\": 1}\n",
                 host, (long)getpid());
    ASSERT_OK(wv__store_put(r1->store, "locks/old", body, (size_t)n, 0));
    ASSERT_EQ(wv_repo_gc(r2, NULL, NULL), WV_CONFLICT);
    ASSERT_OK(wv__store_del(r1->store, "locks/old"));
    wv_model_free(m);
    wv_repo_close(r1);
    wv_repo_close(r2);
}

/* ---- verify ------------------------------------------------------------- */

struct problems {
    char lines[16][1024];
    int n;
};

static void collect(void *arg, const wv_verify_problem *p)
{
    struct problems *ps = arg;
    if (ps->n < 16)
        snprintf(ps->lines[ps->n++], 1024, "%s", p->message);
}

/* Lines name checkpoints by their first 12 digits. */
static const char *find_line(const struct problems *ps, const char *a,
                             const char *b)
{
    char a12[13], b12[13];
    if (strlen(a) == 64) {
        snprintf(a12, sizeof a12, "%.12s", a);
        a = a12;
    }
    if (b && strlen(b) == 64) {
        snprintf(b12, sizeof b12, "%.12s", b);
        b = b12;
    }
    for (int i = 0; i < ps->n; i++)
        if (strstr(ps->lines[i], a) && (b == NULL || strstr(ps->lines[i], b)))
            return ps->lines[i];
    return NULL;
}

/* A fresh repository: main has A then B, branch exp has C. */
static void verify_case(const char *dir, char a[WV_ID_HEX],
                        char b[WV_ID_HEX], char c[WV_ID_HEX])
{
    init_repo(dir, "zstd", 1 << 20);
    wv_repo *r;
    if (wv_repo_open(dir, NULL, 0, &r) != WV_OK)
        return;
    unsigned sa[2] = {1, 2}, sb[2] = {3, 4}, sc[1] = {5};
    wv_model *ma = make_set(sa, 2, 32 << 10, NULL, NULL);
    wv_model *mb = make_set(sb, 2, 32 << 10, NULL, NULL);
    wv_model *mc = make_set(sc, 1, 32 << 10, NULL, NULL);
    wv_repo_commit(r, ma, NULL, NULL, a);
    wv_repo_commit(r, mb, NULL, NULL, b);
    wv_repo_commit(r, mc, "exp", NULL, c);
    wv_model_free(ma);
    wv_model_free(mb);
    wv_model_free(mc);
    wv_repo_close(r);
}

static int run_verify(const char *dir, struct problems *ps,
                      wv_verify_stats *vs)
{
    wv_repo *r;
    memset(ps, 0, sizeof *ps);
    if (wv_repo_open(dir, NULL, 0, &r) != WV_OK)
        return -1;
    int rc = wv_repo_verify(r, collect, ps, vs);
    wv_repo_close(r);
    return rc;
}

/* The key of the (only) pack a checkpoint's first chunk lives in. */
static void first_pack_of(const char *dir, const char *id, char out[96])
{
    wv_repo *r;
    struct wv__manifest mf;
    out[0] = '\0';
    if (wv_repo_open(dir, NULL, 0, &r) != WV_OK)
        return;
    if (wv__manifest_load(r, id, &mf) == WV_OK &&
        wv__repo_load_index(r) == WV_OK) {
        const struct wv__chunk_loc *l =
            wv__cidx_get(&r->cidx, mf.tensors[0].chunks[0]);
        if (l)
            wv__pack_key(l->pack, out);
    }
    wv__manifest_release(&mf);
    wv_repo_close(r);
}

static void flip(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    if (f == NULL)
        return;
    if (off < 0) {
        fseek(f, 0, SEEK_END);
        off += ftell(f);
    }
    fseek(f, off, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(ch ^ 0x5a, f);
    fclose(f);
}

TEST_IMPL(maint_verify_clean)
{
    char dir[512], a[WV_ID_HEX], b[WV_ID_HEX], c[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/clean", wvtest_tmpdir());
    verify_case(dir, a, b, c);
    struct problems ps;
    wv_verify_stats vs;
    ASSERT_OK(run_verify(dir, &ps, &vs));
    ASSERT_EQ(ps.n, 0);
    ASSERT_EQ(vs.checkpoints, 3);
    ASSERT_EQ(vs.refs, 2);
    ASSERT_EQ(vs.chunks, 10); /* 5 tensors of 32 KiB in 16 KiB chunks */
    ASSERT_EQ(vs.bytes, 5 * (32 << 10));
    ASSERT_EQ(vs.indexes, 3);
    ASSERT_EQ(vs.packs, 3);
    /* An unreferenced checkpoint (pruned branch head kept as manifest) is
     * verified too: delete the branch ref, the manifest stays. */
    char ref[600];
    snprintf(ref, sizeof ref, "%s/refs/heads/exp", dir);
    ASSERT_OK(unlink(ref));
    ASSERT_OK(run_verify(dir, &ps, &vs));
    ASSERT_EQ(vs.checkpoints, 3);
    ASSERT_EQ(vs.chunks, 10);
}

TEST_IMPL(maint_verify_flipped_pack_byte)
{
    char dir[512], a[WV_ID_HEX], b[WV_ID_HEX], c[WV_ID_HEX], pk[96];
    char path[700];
    snprintf(dir, sizeof dir, "%s/flip", wvtest_tmpdir());
    verify_case(dir, a, b, c);
    first_pack_of(dir, c, pk);
    ASSERT(pk[0]);
    snprintf(path, sizeof path, "%s/%s", dir, pk);
    flip(path, 100); /* inside the first chunk's bytes */
    struct problems ps;
    wv_verify_stats vs;
    ASSERT_EQ(run_verify(dir, &ps, &vs), WV_CORRUPT);
    ASSERT_EQ(ps.n, 1);
    const char *l = find_line(&ps, pk, c);
    ASSERT_NOT_NULL(l);
    ASSERT_CONTAINS(l, "'t0'");
    ASSERT_CONTAINS(l, "branch exp");
    ASSERT_EQ(vs.chunks, 9);
    /* Checkout says the same. */
    wv_repo *r;
    wv_model *m;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    ASSERT_EQ(wv_repo_checkout(r, "exp", NULL, &m), WV_CORRUPT_CHECKSUM);
    wv_repo_close(r);
}

TEST_IMPL(maint_verify_deleted_pack)
{
    char dir[512], a[WV_ID_HEX], b[WV_ID_HEX], c[WV_ID_HEX], pk[96];
    char path[700];
    snprintf(dir, sizeof dir, "%s/delpack", wvtest_tmpdir());
    verify_case(dir, a, b, c);
    first_pack_of(dir, a, pk);
    snprintf(path, sizeof path, "%s/%s", dir, pk);
    ASSERT_OK(unlink(path));
    struct problems ps;
    ASSERT_EQ(run_verify(dir, &ps, NULL), WV_CORRUPT);
    /* The index names the missing pack; each of A's chunks is named with
     * its tensor and checkpoint. */
    ASSERT_NOT_NULL(find_line(&ps, "index/", "missing pack"));
    ASSERT_NOT_NULL(find_line(&ps, "'t0'", a));
    ASSERT_NOT_NULL(find_line(&ps, "'t1'", a));
    ASSERT_NOT_NULL(find_line(&ps, "branch main", "missing"));
    ASSERT_EQ(ps.n, 5); /* 1 index line + 4 chunks */
}

TEST_IMPL(maint_verify_damaged_manifest)
{
    char dir[512], a[WV_ID_HEX], b[WV_ID_HEX], c[WV_ID_HEX], key[96];
    char path[700];
    snprintf(dir, sizeof dir, "%s/badman", wvtest_tmpdir());
    verify_case(dir, a, b, c);
    wv__manifest_key(b, key);
    snprintf(path, sizeof path, "%s/%s", dir, key);
    flip(path, 40);
    struct problems ps;
    ASSERT_EQ(run_verify(dir, &ps, NULL), WV_CORRUPT);
    ASSERT_NOT_NULL(find_line(&ps, key, "damaged"));
    /* main's head is that checkpoint. */
    ASSERT_NOT_NULL(find_line(&ps, "refs/heads/main", "damaged"));
    ASSERT_EQ(ps.n, 2);
    /* gc must refuse: it cannot tell what B needs. */
    wv_repo *r;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    char before[8192], after[8192], packs[600];
    snprintf(packs, sizeof packs, "%s/packs", dir);
    list_dir(packs, before, sizeof before);
    ASSERT_EQ(wv_repo_gc(r, NULL, NULL), WV_CORRUPT_CHECKSUM);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "nothing deleted");
    list_dir(packs, after, sizeof after);
    ASSERT_STREQ(before, after);
    /* prune keeps what it cannot read. */
    wv_prune_opts po = WV_PRUNE_OPTS_INIT;
    po.keep_last = 0;
    struct decisions ds;
    memset(&ds, 0, sizeof ds);
    ASSERT_OK(wv_repo_prune(r, &po, record, &ds, NULL));
    ASSERT_EQ(kept(&ds, b), 1);
    ASSERT_EQ(kept(&ds, a), 0);
    wv_repo_close(r);
}

TEST_IMPL(maint_verify_damaged_index)
{
    char dir[512], a[WV_ID_HEX], b[WV_ID_HEX], c[WV_ID_HEX];
    char cmd[800], path[700] = "";
    snprintf(dir, sizeof dir, "%s/badidx", wvtest_tmpdir());
    verify_case(dir, a, b, c);
    /* Damage every index object but the first listed: find one. */
    snprintf(cmd, sizeof cmd, "ls %s/index | head -1", dir);
    FILE *p = popen(cmd, "r");
    char name[128] = "";
    ASSERT(p && fgets(name, sizeof name, p));
    pclose(p);
    name[strcspn(name, "\n")] = '\0';
    snprintf(path, sizeof path, "%s/index/%s", dir, name);
    flip(path, 30);
    struct problems ps;
    ASSERT_EQ(run_verify(dir, &ps, NULL), WV_CORRUPT);
    char key[200];
    snprintf(key, sizeof key, "index/%.100s", name);
    ASSERT_NOT_NULL(find_line(&ps, key, "damaged"));
    /* Its chunks are missing from every index now, each named. */
    ASSERT_NOT_NULL(find_line(&ps, "missing from every index", "'t0'"));
    wv_repo *r;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    ASSERT(wv_repo_gc(r, NULL, NULL) != WV_OK);
    wv_repo_close(r);
}

TEST_IMPL(maint_verify_dangling_ref)
{
    char dir[512], a[WV_ID_HEX], b[WV_ID_HEX], c[WV_ID_HEX], path[700];
    snprintf(dir, sizeof dir, "%s/dangling", wvtest_tmpdir());
    verify_case(dir, a, b, c);
    snprintf(path, sizeof path, "%s/refs/tags", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/refs/tags/ghost", dir);
    char v[80];
    snprintf(v, sizeof v, "%064d\n", 7);
    ASSERT_OK(wvtest_write_file(path, v, strlen(v)));
    snprintf(path, sizeof path, "%s/refs/heads/junk", dir);
    ASSERT_OK(wvtest_write_file(path, "hello\n", 6));
    struct problems ps;
    ASSERT_EQ(run_verify(dir, &ps, NULL), WV_CORRUPT);
    ASSERT_NOT_NULL(find_line(&ps, "refs/tags/ghost", "dangling"));
    ASSERT_NOT_NULL(find_line(&ps, "refs/heads/junk", "checkpoint id"));
    ASSERT_EQ(ps.n, 2);
}

TEST_IMPL(maint_verify_malformed_packs)
{
    char dir[512], a[WV_ID_HEX], b[WV_ID_HEX], c[WV_ID_HEX], pk[96];
    char path[700];
    snprintf(dir, sizeof dir, "%s/badpacks", wvtest_tmpdir());
    verify_case(dir, a, b, c);
    first_pack_of(dir, a, pk);
    snprintf(path, sizeof path, "%s/%s", dir, pk);
    size_t len;
    unsigned char *orig = wvtest_read_file(path, &len);
    ASSERT_NOT_NULL(orig);
    struct problems ps;
    /* Each damage to the pack's frame is named as such. */
    struct {
        size_t cut;    /* new length (0: keep) */
        long at;       /* byte to flip (from the end if < 0), or 0 */
        const char *says;
    } cases[] = {
        {10, 0, "too short"},
        {len - 3, 0, "bad magic or trailer"},
        {0, 2, "bad magic"},
        {0, -6, "bad magic or trailer"},    /* end marker */
        {0, -12, "damaged pack"},           /* entry count */
        {0, -40, "does not hash"},          /* a trailer entry */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ASSERT_OK(wvtest_write_file(path, orig,
                                    cases[i].cut ? cases[i].cut : len));
        if (cases[i].at)
            flip(path, cases[i].at);
        ASSERT_EQ(run_verify(dir, &ps, NULL), WV_CORRUPT);
        if (find_line(&ps, pk, cases[i].says) == NULL)
            WVT_FAIL("case %zu: no '%s' for %s (first: %s)", i,
                     cases[i].says, pk, ps.n ? ps.lines[0] : "none");
    }
    ASSERT_OK(wvtest_write_file(path, orig, len));
    /* A pack named by the hash of a trailer whose entry lies outside it. */
    {
        unsigned char buf[8 + 16 + WV__PACK_ENTRY + 12], id[32];
        char key[96];
        memset(buf, 0, sizeof buf);
        memcpy(buf, WV__PACK_MAGIC, 8);
        unsigned char *e = buf + 24;
        wv__put64(e + 32, 8);
        wv__put64(e + 40, 1000); /* beyond the data */
        wv__put64(e + 48, 1000);
        wv__put32(e + WV__PACK_ENTRY, 1);
        memcpy(e + WV__PACK_ENTRY + 4, WV__PACK_END, 8);
        wv__sha256_buf(e, WV__PACK_ENTRY + 12, id);
        wv__pack_key(id, key);
        snprintf(path, sizeof path, "%s/%s", dir, key);
        char mk[800];
        snprintf(mk, sizeof mk, "mkdir -p $(dirname %s)", path);
        ASSERT_OK(system(mk));
        ASSERT_OK(wvtest_write_file(path, buf, sizeof buf));
        ASSERT_EQ(run_verify(dir, &ps, NULL), WV_CORRUPT);
        ASSERT_NOT_NULL(find_line(&ps, key, "outside the pack"));
        unlink(path);
    }
    free(orig);
}

/* ---- malformed index objects -------------------------------------------- */

static int count_cb(void *arg, const struct wv__chunk_loc *l)
{
    (void)l;
    (*(int *)arg)++;
    return WV_OK;
}

TEST_IMPL(maint_index_parse_malformed)
{
    const char *P = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaa";
    const char *C = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                    "abcdef";
    char good[400], bad[24][400];
    int nb = 0;
    snprintf(good, sizeof good,
             "{\"packs\": {\"%s\": [[\"%s\", 8, 10, 20, 1, 0]]}}\n", P, C);
    int n = 0;
    struct wv__err e = {0};
    ASSERT_OK(wv__index_parse(good, strlen(good), "t", count_cb, &n, &e));
    ASSERT_EQ(n, 1);
#define BAD(...) snprintf(bad[nb++], sizeof bad[0], __VA_ARGS__)
    BAD("%s", "");
    BAD("[]");
    BAD("{\"packs\": [] }");
    BAD("{\"packs\": {\"%.63s\": []}}", P);
    BAD("{\"packs\": {\"%.63sg\": []}}", P);
    BAD("{\"packs\": {\"%s\": [[\"%.62s\", 8, 10, 20, 1, 0]]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8, 0, 20, 1, 0]]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8, 10, 20, 3, 0]]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8, 10, 20, 2, 17]]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8, 10, 20, 1]]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8, 10, 20, 1, 0, 5]]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", -8, 10, 20, 1, 0]]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8.5, 10, 20, 1, 0]]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 99999999999999999999999, 1, 2, 1, "
        "0]]}}",
        P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8, 10, 20, 1, 0]]}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8, 10, 20, 1, 0]]}} x", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8, 10, 20, 1, 0],]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[%s, 8, 10, 20, 1, 0]]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", \"8\", 10, 20, 1, 0]]}}", P, C);
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8, 10, 20, 1, 0]]}, }", P, C);
    BAD("{\"packs\"}");
    BAD("{\"packs\": {\"%s\": [[\"%s\", 8, 10, 20, 1, 0]]}}\"", P, C);
#undef BAD
    for (int i = 0; i < nb; i++) {
        /* Every prefix too: truncations anywhere. */
        size_t l = strlen(bad[i]);
        struct wv__err e2 = {0};
        n = 0;
        if (wv__index_parse(bad[i], l, "t", count_cb, &n, &e2) == WV_OK)
            WVT_FAIL("accepted malformed index %d: %s", i, bad[i]);
        ASSERT(e2.msg[0] != '\0');
    }
    for (size_t l = 0; l + 1 < strlen(good); l++) {
        struct wv__err e3 = {0};
        n = 0;
        if (wv__index_parse(good, l, "t", count_cb, &n, &e3) == WV_OK)
            WVT_FAIL("accepted index truncated to %zu bytes", l);
    }
}
