/*
 * t_checkout_file.c -- wv_repo_checkout_file: a checkout written straight
 * to a file (issue 20, restore speed).
 *
 *   - streamed (safetensors, npy, npz stored and deflated, gguf; with and
 *     without a cast; a subset of the tensors; compressed and
 *     uncompressed repositories) the file is byte for byte what
 *     wv_repo_checkout + wv_model_save write, and the library's peak of
 *     live memory (a counting allocator) stays far below the set's size
 *     with a buffer bound smaller than the set;
 *   - a format that cannot stream (.pth) and a sharded save take the
 *     in-memory path and give the same file too;
 *   - a write or fsync failure in the middle, or a chunk whose bytes were
 *     altered, fails with a message and leaves no file (and an existing
 *     target as it was), no temporary behind.
 */
#include "core.h"
#include "codec.h"
#include "store.h"
#include "wvtest.h"

#include <errno.h>
#include <sys/stat.h>

/* ---- a counting allocator (thread-safe: the workers allocate too) ----- */

static size_t g_live, g_peak;

static void note(size_t add, size_t sub)
{
    size_t now = __atomic_add_fetch(&g_live, add - sub, __ATOMIC_SEQ_CST);
    size_t peak = __atomic_load_n(&g_peak, __ATOMIC_SEQ_CST);
    while (now > peak &&
           !__atomic_compare_exchange_n(&g_peak, &peak, now, false,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        ;
}

static void *c_alloc(void *o, size_t n)
{
    (void)o;
    size_t *p = malloc(n + 16);
    if (p == NULL)
        return NULL;
    p[0] = n;
    note(n, 0);
    return (unsigned char *)p + 16;
}

static void *c_realloc(void *o, void *q, size_t n)
{
    (void)o;
    size_t *p = q ? (size_t *)((unsigned char *)q - 16) : NULL;
    size_t old = p ? p[0] : 0;
    size_t *np = realloc(p, n + 16);
    if (np == NULL)
        return NULL;
    np[0] = n;
    note(n, old);
    return (unsigned char *)np + 16;
}

static void c_free(void *o, void *q)
{
    (void)o;
    if (q == NULL)
        return;
    size_t *p = (size_t *)((unsigned char *)q - 16);
    note(0, p[0]);
    free(p);
}

static const wv_allocator counting = {c_alloc, c_realloc, c_free, NULL};

/* ---- the set -------------------------------------------------------------- */

/* About 4.1 MiB: F32 matrices over many 4 KiB chunks, an F16 one whose
 * size is no multiple of the chunk, an I64 scalar, an empty tensor,
 * metadata. */
static wv_model *make_set(void)
{
    wv_model *m;
    if (wv_model_new(&m) != WV_OK)
        return NULL;
    uint64_t big[2] = {1024, 1000}, odd[2] = {33, 517}, none[1] = {0};
    wvtest_add_pattern(m, "layers.0.weight", WV_F32, 2, big, 1);
    wvtest_add_pattern(m, "layers.1.weight", WV_F16, 2, odd, 2);
    wvtest_add_pattern(m, "head.bias", WV_F32, 1, odd + 1, 3);
    int64_t step = 1234;
    wv_model_add(m, "step", WV_I64, 0, NULL, &step, 8, WV_DATA_COPY);
    wv_model_add(m, "empty", WV_F32, 1, none, NULL, 0, WV_DATA_COPY);
    wv_model_set_meta(m, "run", "checkout-file");
    return m;
}

static void init_repo(const char *dir, const char *compression)
{
    wv_init_opts io = WV_INIT_OPTS_INIT;
    io.chunk_size = 4096;
    io.pack_size = 65536;
    io.compression = compression;
    ASSERT_OK(wv_repo_init(dir, &io));
}

static bool same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    unsigned char *pa = wvtest_read_file(a, &na), *pb = wvtest_read_file(b, &nb);
    bool same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
    if (!same)
        fprintf(stderr, "%s (%zu bytes) and %s (%zu bytes) differ\n", a, na,
                b, nb);
    free(pa);
    free(pb);
    return same;
}

/* Nothing but `keep` (may be NULL) in dir: no temporary left behind. */
static int count_files(const char *dir)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "exit $(ls -A %s | wc -l)", dir);
    return WEXITSTATUS(system(cmd));
}

/* Check `ref` out to out (streamed, buffer bound `bound`) and to ref_out
 * through memory, the same options: the files must be equal. *peak: the
 * library's peak of live memory during the streamed checkout. */
static void compare(size_t *peak, const char *dir, wv_repo *r, const char *ref, const char *out,
                      const char *ref_out, const wv_save_opts *so,
                      const char *const *names, size_t n_names,
                      uint64_t bound)
{
    wv_checkout_opts co = WV_CHECKOUT_OPTS_INIT;
    co.names = names;
    co.n_names = n_names;
    co.buffer_bytes = bound;
    wv_model *m = NULL, *index = NULL;
    ASSERT_OK(wv_repo_checkout(r, ref, &co, &m));
    int src = wv_model_save(m, ref_out, so);
    if (src != WV_OK)
        fprintf(stderr, "%s: %s\n", ref_out, wv_model_errmsg(m));
    ASSERT_OK(src);
    wv_model_free(m);
    /* a handle of its own: nothing crosses the change of allocator */
    wv_repo *r2 = NULL;
    g_live = g_peak = 0;
    ASSERT_OK(wv_set_allocator(&counting));
    int rc = wv_repo_open(dir, NULL, 0, &r2);
    if (rc == WV_OK) {
        rc = wv_repo_checkout_file(r2, ref, &co, out, so, &index);
        if (rc != WV_OK)
            fprintf(stderr, "%s: %s\n", out, wv_repo_errmsg(r2));
    }
    *peak = g_peak;
    wv_model_free(index);
    wv_repo_close(r2);
    wv_set_allocator(NULL);
    ASSERT_OK(rc);
    if (so->shard_size == 0) {
        ASSERT(same_file(out, ref_out));
        return;
    }
    /* shards and their index, in two directories */
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "diff -r \"$(dirname '%s')\" \"$(dirname '%s')\"",
             out, ref_out);
    ASSERT_OK(system(cmd));
}

static void roundtrips(const char *compression)
{
    char dir[600], out[700], ref_out[700], id[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/cf-%s", wvtest_tmpdir(), compression);
    init_repo(dir, compression);
    wv_repo *r;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    wv_model *set = make_set();
    ASSERT_NOT_NULL(set);
    ASSERT_OK(wv_repo_commit(r, set, NULL, NULL, id));
    uint64_t set_bytes = 0;
    for (size_t i = 0; i < wv_model_count(set); i++)
        set_bytes += wv_tensor_nbytes(wv_model_tensor(set, i));
    wv_model_free(set);

    wv_save_opts so = WV_SAVE_OPTS_INIT;
    size_t peak = 0;
    static const char *const exts[] = {"safetensors", "npz", "gguf"};
    for (size_t e = 0; e < 3; e++) {
        snprintf(out, sizeof out, "%s/out.%s", dir, exts[e]);
        snprintf(ref_out, sizeof ref_out, "%s/ref.%s", dir, exts[e]);
        /* a bound of 16 KiB: two chunks of 4 KiB and their twins */
        compare(&peak, dir, r, "latest", out, ref_out, &so, NULL, 0,
                              16384);
        /* the set is 4.1 MiB; the ring, the workers' codec workspaces
         * and the 1 MiB write buffer stay under half of it (the set
         * checked out to memory first would take all of it) */
        fprintf(stderr, "%s: peak %zu bytes of the library's for a "
                        "%llu-byte set\n",
                out, peak, (unsigned long long)set_bytes);
        ASSERT(peak < set_bytes / 2);
    }
    /* streamed with a cast (gathered into whole slices) */
    so.cast = WV_BF16;
    snprintf(out, sizeof out, "%s/cast.safetensors", dir);
    snprintf(ref_out, sizeof ref_out, "%s/cast-ref.safetensors", dir);
    compare(&peak, dir, r, "latest", out, ref_out, &so, NULL, 0, 8192);
    so.cast = WV_F16;
    snprintf(out, sizeof out, "%s/cast.gguf", dir);
    snprintf(ref_out, sizeof ref_out, "%s/cast-ref.gguf", dir);
    compare(&peak, dir, r, "latest", out, ref_out, &so, NULL, 0, 0);
    so.cast = WV_DTYPE_INVALID;
    /* deflated npz members */
    so.flags = WV_SAVE_COMPRESS;
    snprintf(out, sizeof out, "%s/z.npz", dir);
    snprintf(ref_out, sizeof ref_out, "%s/z-ref.npz", dir);
    compare(&peak, dir, r, "latest", out, ref_out, &so, NULL, 0, 1);
    so.flags = 0;
    /* one tensor, as npy */
    static const char *const one[] = {"layers.1.weight"};
    snprintf(out, sizeof out, "%s/one.npy", dir);
    snprintf(ref_out, sizeof ref_out, "%s/one-ref.npy", dir);
    compare(&peak, dir, r, "latest", out, ref_out, &so, one, 1, 4096);
    /* the in-memory path: a format that does not stream, a sharded save */
    snprintf(out, sizeof out, "%s/out.pth", dir);
    snprintf(ref_out, sizeof ref_out, "%s/ref.pth", dir);
    compare(&peak, dir, r, "latest", out, ref_out, &so, NULL, 0, 0);
    so.shard_size = 1 << 19;
    snprintf(out, sizeof out, "%s/sh/m.safetensors", dir);
    snprintf(ref_out, sizeof ref_out, "%s/shref/m.safetensors", dir);
    char sub[800];
    snprintf(sub, sizeof sub, "%s/sh", dir);
    mkdir(sub, 0777);
    snprintf(sub, sizeof sub, "%s/shref", dir);
    mkdir(sub, 0777);
    compare(&peak, dir, r, "latest", out, ref_out, &so, NULL, 0, 0);
    /* an unknown tensor and an unknown ref: no file */
    static const char *const nope[] = {"nope"};
    wv_checkout_opts co = WV_CHECKOUT_OPTS_INIT;
    co.names = nope;
    co.n_names = 1;
    snprintf(out, sizeof out, "%s/none.safetensors", dir);
    ASSERT_EQ(wv_repo_checkout_file(r, "latest", &co, out, NULL, NULL),
              WV_NOTFOUND);
    ASSERT_CONTAINS(wv_repo_errmsg(r), "nope");
    ASSERT_EQ(wv_repo_checkout_file(r, "feedfacefeed", NULL, out, NULL,
                                    NULL),
              WV_NOTFOUND);
    struct stat st;
    ASSERT(stat(out, &st) != 0);
    wv_repo_close(r);
}

TEST_IMPL(checkout_file_streams_bounded_equal)
{
    roundtrips("zstd-bg");
    roundtrips("none");
}

/* ---- failures --------------------------------------------------------------- */

/* In an empty directory: a checkout to dir/out.safetensors fails with
 * `code`, a message containing `needle`, and leaves the directory as it
 * was (empty, or holding the old target unchanged). */
static void fails_clean(wv_repo *r, const char *dir, int code,
                        const char *needle, bool old_target)
{
    char out[700], old[700];
    snprintf(out, sizeof out, "%s/out.safetensors", dir);
    snprintf(old, sizeof old, "%s.old", dir);
    wv_checkout_opts co = WV_CHECKOUT_OPTS_INIT;
    co.buffer_bytes = 16384;
    int rc = wv_repo_checkout_file(r, "latest", &co, out, NULL, NULL);
    if (rc != code)
        fprintf(stderr, "rc %d: %s\n", rc, wv_repo_errmsg(r));
    ASSERT_EQ(rc, code);
    ASSERT_CONTAINS(wv_repo_errmsg(r), needle);
    ASSERT_EQ(count_files(dir), old_target ? 1 : 0);
    if (old_target)
        ASSERT(same_file(out, old));
}

TEST_IMPL(checkout_file_faults_leave_nothing)
{
    char dir[600], outdir[700], out[800], old[800], id[WV_ID_HEX];
    snprintf(dir, sizeof dir, "%s/cf-faults", wvtest_tmpdir());
    init_repo(dir, "zstd-bg");
    wv_repo *r;
    ASSERT_OK(wv_repo_open(dir, NULL, 0, &r));
    wv_model *set = make_set();
    ASSERT_OK(wv_repo_commit(r, set, NULL, NULL, id));
    wv_model_free(set);
    snprintf(outdir, sizeof outdir, "%s/o", dir);
    ASSERT_OK(mkdir(outdir, 0777));

    /* the 2nd write(): tensor data, with chunks in flight */
    wv__fault_arm_nth(WV__FAULT_WRITE, EIO, 2);
    fails_clean(r, outdir, WV_IO, "write failed", false);
    wv__fault_arm(WV__FAULT_WRITE, 0);
    wv__fault_arm(WV__FAULT_FSYNC, ENOSPC);
    fails_clean(r, outdir, WV_IO, "fsync failed", false);
    wv__fault_arm(WV__FAULT_FSYNC, 0);

    /* a chunk read back altered (the 40th store read: mid-set) */
    wv__store_fault(40, WV__SFAULT_BITFLIP, WV_IO, EIO);
    fails_clean(r, outdir, WV_CORRUPT_CHECKSUM, "tensor '", false);
    wv__store_fault(0, WV__SFAULT_FAIL, 0, 0);
    /* a store read failing mid-set */
    wv__store_fault(30, WV__SFAULT_FAIL, WV_IO, EIO);
    fails_clean(r, outdir, WV_IO, strerror(EIO), false);
    wv__store_fault(0, WV__SFAULT_FAIL, 0, 0);

    /* with a target already there: it stays as it was */
    snprintf(out, sizeof out, "%s/out.safetensors", outdir);
    snprintf(old, sizeof old, "%s.old", outdir);
    ASSERT_OK(wvtest_write_file(out, "old bytes", 9));
    ASSERT_OK(wvtest_write_file(old, "old bytes", 9));
    wv__fault_arm_nth(WV__FAULT_WRITE, EIO, 2);
    fails_clean(r, outdir, WV_IO, "write failed", true);
    wv__fault_arm(WV__FAULT_WRITE, 0);
    wv__store_fault(35, WV__SFAULT_BITFLIP, WV_IO, EIO);
    fails_clean(r, outdir, WV_CORRUPT_CHECKSUM, "damaged", true);
    wv__store_fault(0, WV__SFAULT_FAIL, 0, 0);

    /* and with nothing failing it is replaced */
    ASSERT_OK(wv_repo_checkout_file(r, "latest", NULL, out, NULL, NULL));
    ASSERT_EQ(count_files(outdir), 1);
    ASSERT(!same_file(out, old));
    wv_repo_close(r);
}

/* ---- byte grouping ----------------------------------------------------------
 * The ungrouping of 2- and 4-byte elements is vectorised (16 elements at a
 * time, then a scalar tail): every element size and length around those
 * boundaries decodes back to its input. */
TEST_IMPL(codec_bg_roundtrip_elem_sizes)
{
    enum { N = (1 << 16) + 77 };
    unsigned char *in = malloc(N), *z = malloc(wv__codec_bound(N)),
                  *back = malloc(N);
    ASSERT(in && z && back);
    for (size_t i = 0; i < N; i++)
        in[i] = (unsigned char)(i % 4 == 3 ? 0x3f : (i * 2654435761u) >> 13);
    struct wv__codec_ws *ws = NULL;
    ASSERT_OK(wv__codec_ws_new(N, &ws));
    static const size_t lens[] = {0,  1,  3,   31,  63,  64,   65,  127,
                                  128, 129, 130, 4097, 8191, N - 1, N};
    for (unsigned elem = 1; elem <= 8; elem++) {
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            size_t n = lens[k], zn = 0;
            int used = 0;
            struct wv__err e = {0};
            ASSERT_OK(wv__codec_encode(WV__CODEC_BG_ZSTD, 1, elem, in, n, z,
                                       wv__codec_bound(n), ws, &zn, &used,
                                       &e));
            if ((elem == 2 || elem == 4) && n >= 4096)
                ASSERT_EQ(used, WV__CODEC_BG_ZSTD); /* grouped indeed */
            memset(back, 0xa5, N);
            ASSERT_OK(wv__codec_decode(used, elem, z, zn, back, n, ws, &e));
            if (memcmp(back, in, n) != 0)
                fprintf(stderr, "elem %u, %zu bytes: differ\n", elem, n);
            ASSERT_MEMEQ(back, in, n);
        }
    }
    wv__codec_ws_free(ws);
    free(in);
    free(z);
    free(back);
}
