/*
 * t_tfbundle.c -- TensorFlow tensor bundles and what they are built on:
 * CRC-32C (published check values), the snappy decoder (on blocks a small
 * compressor here writes, and hand-made element streams), the LevelDB
 * table reader and writer (every real fixture index rebuilt from its
 * entries byte for byte; multi-block and snappy tables; one test per
 * rejection rule), and the bundle reader (every dtype, string tensors as
 * metadata, shards, each way of naming a bundle, and one test per
 * rejection rule on bundles generated here).
 */
#include "wv_int.h"
#include "wvtest.h"
#include "../../src/formats/ldb.h"
#include "../../src/formats/pb.h"

/* ---- CRC-32C ------------------------------------------------------------ */

TEST_IMPL(tf_crc32c)
{
    unsigned char z[32] = {0}, ff[32], inc[32];
    memset(ff, 0xff, sizeof ff);
    for (int i = 0; i < 32; i++)
        inc[i] = (unsigned char)i;
    /* RFC 3720 B.4 and the usual check value */
    ASSERT_EQ(wv__crc32c(0, "123456789", 9), 0xe3069283u);
    ASSERT_EQ(wv__crc32c(0, z, 32), 0x8a9136aau);
    ASSERT_EQ(wv__crc32c(0, ff, 32), 0x62a8ab43u);
    ASSERT_EQ(wv__crc32c(0, inc, 32), 0x46dd794eu);
    /* extending = one pass, at every split (slicing and byte paths) */
    for (size_t k = 0; k <= 32; k++)
        ASSERT_EQ(wv__crc32c(wv__crc32c(0, inc, k), inc + k, 32 - k),
                  0x46dd794eu);
    ASSERT_EQ(wv__crc32c_unmask(wv__crc32c_mask(0x12345678u)), 0x12345678u);
    ASSERT(wv__crc32c_mask(0x12345678u) != 0x12345678u);
}

/* ---- snappy -------------------------------------------------------------- */

static void sn_literal(struct wv__buf *o, const unsigned char *p, size_t n)
{
    while (n > 0) {
        size_t l = n > 70000 ? 70000 : n, m = l - 1;
        if (m < 60) {
            wv__buf_addc(o, (char)(m << 2));
        } else {
            int nb = m <= 0xff ? 1 : m <= 0xffff ? 2 : 3;
            wv__buf_addc(o, (char)((59 + nb) << 2));
            for (int i = 0; i < nb; i++)
                wv__buf_addc(o, (char)(m >> (8 * i)));
        }
        wv__buf_add(o, p, l);
        p += l;
        n -= l;
    }
}

static void sn_copy(struct wv__buf *o, size_t off, size_t len)
{
    unsigned char t[5];
    if (len >= 4 && len <= 11 && off < 2048) {
        t[0] = (unsigned char)(1 | ((len - 4) << 2) | ((off >> 8) << 5));
        t[1] = (unsigned char)off;
        wv__buf_add(o, t, 2);
    } else if (off <= 0xffff) {
        t[0] = (unsigned char)(2 | ((len - 1) << 2));
        wv__put16(t + 1, (uint16_t)off);
        wv__buf_add(o, t, 3);
    } else {
        t[0] = (unsigned char)(3 | ((len - 1) << 2));
        wv__put32(t + 1, (uint32_t)off);
        wv__buf_add(o, t, 5);
    }
}

/* A small greedy snappy compressor: 4-byte hash matches, copies of up to
 * 64 bytes (any offset; 1-, 2- or 4-byte offset forms as they fit). */
static bool test_snappy(const unsigned char *in, size_t n,
                        struct wv__buf *o)
{
    static size_t tab[4096];
    size_t i = 0, lit = 0;
    for (size_t k = 0; k < 4096; k++)
        tab[k] = SIZE_MAX;
    wv__pb_put_varint(o, n);
    while (i + 4 <= n) {
        uint32_t h = (wv__le32(in + i) * 0x1e35a7bdu) >> 20;
        size_t c = tab[h];
        tab[h] = i;
        if (c != SIZE_MAX && memcmp(in + c, in + i, 4) == 0) {
            size_t len = 4;
            while (i + len < n && len < 64 && in[c + len] == in[i + len])
                len++;
            sn_literal(o, in + lit, i - lit);
            sn_copy(o, i - c, len);
            i += len;
            lit = i;
        } else {
            i++;
        }
    }
    sn_literal(o, in + lit, n - lit);
    return !o->oom;
}

static void sn_roundtrip(const unsigned char *p, size_t n)
{
    struct wv__buf c = {0};
    unsigned char *d = NULL;
    size_t dl = 0;
    const char *why = "";
    ASSERT(test_snappy(p, n, &c));
    ASSERT_OK(wv__snappy_decode((unsigned char *)c.p, c.len, &d, &dl, &why));
    ASSERT_EQ(dl, n);
    ASSERT(n == 0 || memcmp(d, p, n) == 0);
    wv__free(d);
    wv__buf_release(&c);
}

TEST_IMPL(tf_snappy)
{
    size_t n = 300000;
    unsigned char *p = malloc(n);
    ASSERT_NOT_NULL(p);
    uint32_t x = 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        /* runs, repeats near and far, and noise */
        p[i] = i % 1000 < 500 ? (unsigned char)(i % 7)
               : i > 100000 && i % 1000 < 800 ? p[i - 70001]
                                              : (unsigned char)(x >> 24);
    }
    sn_roundtrip(p, 0);
    sn_roundtrip(p, 1);
    sn_roundtrip(p, 100);
    sn_roundtrip(p, n);
    free(p);

    /* Hand-made streams: every element form. */
    static const unsigned char s1[] = {
        13,                          /* 13 bytes */
        0x08, 'a', 'b', 'c',         /* literal 3 */
        0x01 | (1 << 2), 3,          /* copy1 len 5 off 3: abcab */
        0x02 | (2 << 2), 2, 0,       /* copy2 len 3 off 2: cab */
        0x03 | (1 << 2), 8, 0, 0, 0, /* copy4 len 2 off 8: ab  */
    };
    unsigned char *d;
    size_t dl;
    const char *why = "";
    ASSERT_OK(wv__snappy_decode(s1, sizeof s1, &d, &dl, &why));
    ASSERT_EQ(dl, 13);
    ASSERT_MEMEQ(d, "abcabcababaab", 13);
    wv__free(d);
    unsigned char s2[2 + 1 + 300];
    s2[0] = 0xac; /* 300 = 0xac 0x02 */
    s2[1] = 0x02;
    s2[2] = 61 << 2; /* literal, length-1 in 2 bytes */
    unsigned char s2b[sizeof s2 + 1];
    memcpy(s2b, s2, 3);
    s2b[3] = (unsigned char)(299 & 0xff);
    s2b[4] = (unsigned char)(299 >> 8);
    memset(s2b + 5, 'z', 299);
    ASSERT_EQ(wv__snappy_decode(s2b, 5 + 299, &d, &dl, &why), WV_CORRUPT);
    ASSERT_CONTAINS(why, "truncated"); /* 300 declared, literal of 300 */
    unsigned char s3[5 + 300];
    memcpy(s3, s2b, 5);
    memset(s3 + 5, 'z', 300);
    ASSERT_OK(wv__snappy_decode(s3, sizeof s3, &d, &dl, &why));
    ASSERT_EQ(dl, 300);
    wv__free(d);

    /* Rejections. */
    static const unsigned char off0[] = {5, 0x00, 'a', 0x01, 0};
    static const unsigned char before[] = {6, 0x00, 'a', 0x01, 2};
    static const unsigned char longer[] = {2, 0x08, 'a', 'b', 'c'};
    static const unsigned char shorter[] = {4, 0x04, 'a', 'b'};
    static const unsigned char trunc[] = {4, 0x02, 0x01};
    static const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0};
    static const unsigned char badlen[] = {0xff, 0xff, 0xff, 0xff, 0xff,
                                           0x01};
    ASSERT_EQ(wv__snappy_decode(off0, sizeof off0, &d, &dl, &why),
              WV_CORRUPT);
    ASSERT_CONTAINS(why, "before the start");
    ASSERT_EQ(wv__snappy_decode(before, sizeof before, &d, &dl, &why),
              WV_CORRUPT);
    ASSERT_CONTAINS(why, "before the start");
    ASSERT_EQ(wv__snappy_decode(longer, sizeof longer, &d, &dl, &why),
              WV_CORRUPT);
    ASSERT_CONTAINS(why, "longer than its declared");
    ASSERT_EQ(wv__snappy_decode(shorter, sizeof shorter, &d, &dl, &why),
              WV_CORRUPT);
    ASSERT_CONTAINS(why, "shorter than its declared");
    ASSERT_EQ(wv__snappy_decode(trunc, sizeof trunc, &d, &dl, &why),
              WV_CORRUPT);
    ASSERT_CONTAINS(why, "truncated");
    ASSERT_EQ(wv__snappy_decode(huge, sizeof huge, &d, &dl, &why),
              WV_CORRUPT);
    ASSERT_CONTAINS(why, "more than its input can encode");
    ASSERT_EQ(wv__snappy_decode(badlen, sizeof badlen, &d, &dl, &why),
              WV_CORRUPT);
    ASSERT_CONTAINS(why, "varint32");
    ASSERT(d == NULL);
}

/* ---- LevelDB tables ------------------------------------------------------ */

struct kv {
    struct wv__buf k[512], v[512];
    size_t n;
};

static int collect(void *ctx, const unsigned char *key, size_t key_len,
                   const unsigned char *val, size_t val_len,
                   struct wv__err *err)
{
    struct kv *kv = ctx;
    (void)err;
    if (kv->n == 512)
        return WV_RANGE;
    memset(&kv->k[kv->n], 0, sizeof kv->k[0]);
    memset(&kv->v[kv->n], 0, sizeof kv->v[0]);
    wv__buf_add(&kv->k[kv->n], key, key_len);
    wv__buf_add(&kv->v[kv->n], val, val_len);
    kv->n++;
    return WV_OK;
}

static void kv_release(struct kv *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        wv__buf_release(&kv->k[i]);
        wv__buf_release(&kv->v[i]);
    }
    kv->n = 0;
}

static const char *const fixture_indexes[] = {
    "a/CodeAshing-Boston_house/variables/variables.index",
    "b/Gauraviitkgp-Tensorflow/1_BASIC/weights/my_model.index",
    "b/dpong-Keras_Stock_Price_Prediction/model_weights.index",
    ("c/wenjunpku-learning-tensorflow/logs/fully_connected_feed/"
     "model.cpkt-1999.index"),
    "c/sbhtkx-urgent_sms_python/out/one_hidden_layer.chkp.index",
    "d/fcuyttsai-overtoppingEve/variables/variables.index",
};

/* Every real index: its entries, fed to our writer with TensorFlow's
 * options, give the same bytes. */
TEST_IMPL(tf_table_rebuild_fixtures)
{
    static struct kv kv;
    for (size_t f = 0; f < 6; f++) {
        size_t n;
        struct wv__err err = {0};
        unsigned char *b =
            wvtest_read_file(wvtest_fixture("tf", fixture_indexes[f]), &n);
        ASSERT_NOT_NULL(b);
        ASSERT_OK(wv__ldb_walk(b, n, fixture_indexes[f], collect, &kv,
                               &err));
        ASSERT(kv.n > 1);
        ASSERT_EQ(kv.k[0].len, 0); /* the header */
        struct wv__ldb_writer w;
        wv__ldb_writer_init(&w, 262144, 16, NULL);
        for (size_t i = 0; i < kv.n; i++)
            ASSERT_OK(wv__ldb_writer_add(&w, kv.k[i].p, kv.k[i].len,
                                         kv.v[i].p, kv.v[i].len));
        ASSERT_OK(wv__ldb_writer_finish(&w));
        ASSERT_EQ(w.out.len, n);
        ASSERT_MEMEQ(w.out.p, b, n);
        wv__ldb_writer_release(&w);
        kv_release(&kv);
        free(b);
    }
}

/* The handle of the first data block / the index block of a table. */
static void footer_handles(const unsigned char *b, size_t n, uint64_t *ioff,
                           uint64_t *isz)
{
    const unsigned char *q = b + n - 48;
    uint64_t x;
    wv__pb_varint(&q, q + 40, &x);
    wv__pb_varint(&q, q + 40, &x);
    wv__pb_varint(&q, q + 40, ioff);
    wv__pb_varint(&q, q + 40, isz);
}

static void first_block(const unsigned char *b, size_t n, uint64_t *off,
                        uint64_t *sz)
{
    uint64_t ioff, isz, sh, ns, vl;
    footer_handles(b, n, &ioff, &isz);
    const unsigned char *q = b + ioff, *e = b + ioff + isz;
    wv__pb_varint(&q, e, &sh);
    wv__pb_varint(&q, e, &ns);
    wv__pb_varint(&q, e, &vl);
    q += ns;
    wv__pb_varint(&q, e, off);
    wv__pb_varint(&q, e, sz);
}

static void build_table(struct wv__ldb_writer *w, size_t n, size_t bs,
                        int interval, wv__ldb_compress_fn c)
{
    char k[32], v[64];
    wv__ldb_writer_init(w, bs, interval, c);
    for (size_t i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "key/%05zu", i);
        int vl = snprintf(v, sizeof v, "value %zu value %zu value", i, i);
        wv__ldb_writer_add(w, k, (size_t)kl, v, (size_t)vl);
    }
    wv__ldb_writer_finish(w);
}

TEST_IMPL(tf_table_roundtrip)
{
    static struct kv kv;
    struct wv__err err = {0};
    const int intervals[] = {1, 3, 16};
    for (int ci = 0; ci < 2; ci++) {
        for (size_t ii = 0; ii < 3; ii++) {
            struct wv__ldb_writer w;
            build_table(&w, 300, ci ? 4000 : 1000, intervals[ii],
                        ci ? test_snappy : NULL);
            ASSERT(!w.oom);
            ASSERT_OK(wv__ldb_walk((unsigned char *)w.out.p, w.out.len, "t",
                                   collect, &kv, &err));
            ASSERT_EQ(kv.n, 300);
            for (size_t i = 0; i < 300; i++) {
                char k[32];
                int kl = snprintf(k, sizeof k, "key/%05zu", i);
                ASSERT_EQ(kv.k[i].len, (size_t)kl);
                ASSERT_MEMEQ(kv.k[i].p, k, (size_t)kl);
            }
            kv_release(&kv);
            /* snappy blocks really are there when compressing */
            uint64_t off, sz;
            first_block((unsigned char *)w.out.p, w.out.len, &off, &sz);
            ASSERT_EQ((unsigned char)w.out.p[off + sz], ci ? 1 : 0);
            wv__ldb_writer_release(&w);
        }
    }
    /* out-of-order keys are refused by the writer */
    struct wv__ldb_writer w;
    wv__ldb_writer_init(&w, 4096, 16, NULL);
    ASSERT_OK(wv__ldb_writer_add(&w, "b", 1, "", 0));
    ASSERT_EQ(wv__ldb_writer_add(&w, "a", 1, "", 0), WV_MISUSE);
    ASSERT_EQ(wv__ldb_writer_add(&w, "b", 1, "", 0), WV_MISUSE);
    wv__ldb_writer_release(&w);
}

static void fix_crc(unsigned char *b, uint64_t off, uint64_t sz)
{
    wv__put32(b + off + sz + 1,
              wv__crc32c_mask(wv__crc32c(0, b + off, (size_t)sz + 1)));
}

static int walk_msg(const unsigned char *b, size_t n, char *msg)
{
    struct wv__err err = {0};
    static struct kv kv;
    int rc = wv__ldb_walk(b, n, "t.index", collect, &kv, &err);
    kv_release(&kv);
    snprintf(msg, WV_ERRBUF_SIZE, "%s", err.msg);
    return rc;
}

/* One small table per rejection rule. */
TEST_IMPL(tf_table_rejects)
{
    struct wv__ldb_writer w;
    char msg[WV_ERRBUF_SIZE];
    unsigned char *b;
    size_t n;
    uint64_t off, sz;

#define FRESH(nk, bs, iv, c)                                             \
    do {                                                                  \
        build_table(&w, nk, bs, iv, c);                                   \
        n = w.out.len;                                                    \
        b = malloc(n);                                                    \
        memcpy(b, w.out.p, n);                                            \
        wv__ldb_writer_release(&w);                                       \
        first_block(b, n, &off, &sz);                                     \
    } while (0)
#define REJECT(what)                                                      \
    do {                                                                  \
        ASSERT_EQ(walk_msg(b, n, msg), WV_CORRUPT);                       \
        ASSERT_CONTAINS(msg, what);                                       \
        free(b);                                                          \
    } while (0)

    FRESH(3, 4096, 16, NULL);
    ASSERT_EQ(walk_msg(b, n, msg), WV_OK);
    b[n - 1] ^= 1;
    REJECT("bad table magic");

    FRESH(3, 4096, 16, NULL);
    ASSERT_EQ(walk_msg(b, 40, msg), WV_CORRUPT);
    ASSERT_CONTAINS(msg, "shorter than a table footer");
    b[off + 5] ^= 0x20;
    REJECT("fails its CRC-32C");

    FRESH(3, 4096, 16, NULL);
    b[off + sz] = 2;
    fix_crc(b, off, sz);
    REJECT("unknown compression type 2");

    /* keys out of order: the second key ("key/00001") made "key/00000" */
    FRESH(3, 4096, 1, NULL);
    {
        size_t e2 = 3 + 9 + b[off + 2]; /* header, key, value */
        ASSERT_EQ(b[off + e2 + 3 + 8], '1');
        b[off + e2 + 3 + 8] = '0';
        fix_crc(b, off, sz);
    }
    REJECT("does not sort after");

    /* shared longer than the previous key */
    FRESH(3, 4096, 16, NULL);
    {
        size_t e2 = 3 + 9 + b[off + 2];
        ASSERT_EQ(b[off + e2], 8); /* entry 2 shares "key/0000" */
        b[off + e2] = 12;
    }
    fix_crc(b, off, sz);
    REJECT("shares 12 bytes");

    /* a restart point that is not at an entry */
    FRESH(3, 4096, 1, NULL);
    wv__put32(b + off + sz - 8, 5);
    fix_crc(b, off, sz);
    REJECT("is not at an entry");

    /* more restart points than fit */
    FRESH(3, 4096, 16, NULL);
    wv__put32(b + off + sz - 4, 1000);
    fix_crc(b, off, sz);
    REJECT("restart points, more than fit");

    /* an entry running past its block */
    FRESH(3, 4096, 16, NULL);
    b[off + 2] = 120; /* value length of entry 1 */
    fix_crc(b, off, sz);
    REJECT("runs past the block");

    /* a handle past the footer */
    FRESH(3, 4096, 16, NULL);
    {
        unsigned char *q = b + n - 48;
        memset(q, 0, 40);
        q[0] = 0;
        q[1] = 0x80; /* metaindex size 0x4000 */
        q[2] = 0x80;
        q[3] = 0x01;
    }
    REJECT("pass the footer");

    /* a corrupt snappy block (declared length made too long) */
    FRESH(200, 100000, 16, test_snappy);
    ASSERT_EQ(b[off + sz], 1);
    {
        const unsigned char *q = b + off;
        uint64_t ul;
        ASSERT_OK(wv__pb_varint(&q, b + off + sz, &ul));
        ASSERT_EQ(q - (b + off), 2);
        b[off] = (unsigned char)(b[off] + 1);
        fix_crc(b, off, sz);
    }
    REJECT("snappy output is shorter");

    /* index separators: before the last key of their block, or not before
     * the next block's first key */
    FRESH(40, 200, 16, NULL);
    {
        uint64_t ioff, isz;
        footer_handles(b, n, &ioff, &isz);
        unsigned char *q = b + ioff;
        ASSERT_EQ(q[0], 0);
        size_t kl = q[1];
        q[3 + kl - 1]--;
        fix_crc(b, ioff, isz);
    }
    REJECT("sorts before the last key");
    FRESH(40, 200, 16, NULL);
    {
        uint64_t ioff, isz;
        footer_handles(b, n, &ioff, &isz);
        unsigned char *q = b + ioff;
        size_t kl = q[1];
        q[3 + kl - 1] = 'z';
        fix_crc(b, ioff, isz);
    }
    REJECT("does not sort after the index key");
#undef FRESH
#undef REJECT
}

/* ---- bundles ------------------------------------------------------------- */

struct tt {
    const char *key;
    size_t key_len;    /* 0: strlen(key) */
    uint32_t dtype;
    int ndim;          /* -1: unknown rank */
    int64_t shape[10];
    uint64_t shard;
    const void *data;  /* bytes in the shard */
    size_t len;
    /* overrides */
    bool set_off, set_size, set_crc, slices;
    uint64_t off, size;
    uint32_t crc;      /* masked */
    const char *extra; /* raw bytes appended to the entry */
    size_t extra_len;
};

struct bspec {
    uint64_t num_shards;
    uint64_t endian, min_consumer;
    bool no_header;
    bool short_shard; /* shard 0 written 1 byte short */
};

/* The prefix's files: .index and the data shards. */
static int write_bundle(const char *prefix, const struct bspec *s,
                        const struct tt *t, size_t n)
{
    struct wv__ldb_writer w;
    struct wv__buf data[4] = {{0}};
    struct wv__buf v = {0}, sh = {0}, d = {0}, ver = {0};
    char path[512];
    int rc = 0;
    wv__ldb_writer_init(&w, 262144, 16, NULL);
    if (!s->no_header) {
        wv__pb_put_uint(&v, 1, s->num_shards);
        if (s->endian)
            wv__pb_put_uint(&v, 2, s->endian);
        wv__pb_put_uint(&ver, 1, 1);
        if (s->min_consumer)
            wv__pb_put_uint(&ver, 2, s->min_consumer);
        wv__pb_put_bytes(&v, 3, ver.p, ver.len);
        wv__ldb_writer_add(&w, "", 0, v.p, v.len);
    }
    for (size_t i = 0; i < n; i++) {
        const struct tt *e = &t[i];
        uint64_t sd = e->shard < 4 ? e->shard : 0;
        uint64_t off = data[sd].len;
        wv__buf_add(&data[sd], e->data, e->len);
        v.len = sh.len = 0;
        wv__pb_put_uint(&v, 1, e->dtype);
        if (e->ndim < 0) {
            wv__pb_put_uint(&sh, 3, 1);
        } else {
            for (int k = 0; k < e->ndim; k++) {
                d.len = 0;
                wv__pb_put_uint(&d, 1, (uint64_t)e->shape[k]);
                wv__pb_put_bytes(&sh, 2, d.p, d.len);
            }
        }
        wv__pb_put_bytes(&v, 2, sh.p, sh.len);
        if (e->shard)
            wv__pb_put_uint(&v, 3, e->shard);
        wv__pb_put_uint(&v, 4, e->set_off ? e->off : off);
        wv__pb_put_uint(&v, 5, e->set_size ? e->size : e->len);
        wv__pb_put_fixed32(&v, 6,
                           e->set_crc ? e->crc
                                      : wv__crc32c_mask(wv__crc32c(
                                            0, e->data, e->len)));
        if (e->slices)
            wv__pb_put_bytes(&v, 7, "", 0);
        wv__buf_add(&v, e->extra, e->extra_len);
        if (wv__ldb_writer_add(&w, e->key,
                               e->key_len ? e->key_len : strlen(e->key),
                               v.p, v.len) != WV_OK)
            rc = -1;
    }
    wv__ldb_writer_finish(&w);
    snprintf(path, sizeof path, "%s.index", prefix);
    if (rc == 0)
        rc = wvtest_write_file(path, w.out.p, w.out.len);
    for (uint64_t sd = 0; sd < s->num_shards && sd < 4 && rc == 0; sd++) {
        snprintf(path, sizeof path, "%s.data-%05llu-of-%05llu", prefix,
                 (unsigned long long)sd, (unsigned long long)s->num_shards);
        size_t l = data[sd].len;
        if (sd == 0 && s->short_shard && l > 0)
            l--;
        rc = wvtest_write_file(path, data[sd].p ? data[sd].p : "", l);
    }
    for (int k = 0; k < 4; k++)
        wv__buf_release(&data[k]);
    wv__buf_release(&v);
    wv__buf_release(&sh);
    wv__buf_release(&d);
    wv__buf_release(&ver);
    wv__ldb_writer_release(&w);
    return rc;
}

/* TensorFlow's DT_STRING encoding; *crc gets the entry's masked CRC. */
static size_t enc_strings(unsigned char *out, const char *const *s,
                          const size_t *len, size_t n, uint32_t *crc)
{
    struct wv__buf b = {0};
    uint32_t c = 0;
    unsigned char t[4];
    for (size_t i = 0; i < n; i++) {
        wv__pb_put_varint(&b, len[i]);
        wv__put32(t, (uint32_t)len[i]);
        c = wv__crc32c(c, t, 4);
    }
    wv__put32(t, wv__crc32c_mask(c));
    wv__buf_add(&b, t, 4);
    c = wv__crc32c(c, t, 4);
    for (size_t i = 0; i < n; i++) {
        wv__buf_add(&b, s[i], len[i]);
        c = wv__crc32c(c, s[i], len[i]);
    }
    *crc = wv__crc32c_mask(c);
    memcpy(out, b.p, b.len);
    size_t r = b.len;
    wv__buf_release(&b);
    return r;
}

TEST_IMPL(tf_bundle_dtypes_strings_shards)
{
    static const struct {
        const char *key;
        uint32_t tf;
        wv_dtype dt;
    } types[] = {
        {"t/bf16", 14, WV_BF16}, {"t/bool", 10, WV_BOOL},
        {"t/c64", 8, WV_C64},    {"t/f16", 19, WV_F16},
        {"t/f32", 1, WV_F32},    {"t/f64", 2, WV_F64},
        {"t/i16", 5, WV_I16},    {"t/i32", 3, WV_I32},
        {"t/i64", 9, WV_I64},    {"t/i8", 6, WV_I8},
        {"t/u16", 17, WV_U16},   {"t/u32", 22, WV_U32},
        {"t/u64", 23, WV_U64},   {"t/u8", 4, WV_U8},
    };
    enum { NT = sizeof types / sizeof types[0] };
    static unsigned char bytes[NT][2 * 3 * 8];
    static unsigned char s1[64], s2[64], s3[128];
    struct tt t[NT + 3];
    memset(t, 0, sizeof t);
    size_t n = 0;
    /* strings first (keys sort "_..." < "s..." < "t...") */
    const char *txt[] = {"{\"class_name\": \"Dense\"}"};
    const char *bin[] = {"\x0a\x00\x01z"};
    const char *vec[] = {"a", "", "base64:x", "\xff"};
    size_t txt_l[] = {strlen(txt[0])}, bin_l[] = {4}, vec_l[] = {1, 0, 8, 1};
    uint32_t c;
    t[n] = (struct tt){.key = "_CHECKPOINTABLE_OBJECT_GRAPH", .dtype = 7,
                       .data = s1, .len = enc_strings(s1, bin, bin_l, 1, &c),
                       .set_crc = true, .shard = 1};
    t[n++].crc = c;
    t[n] = (struct tt){.key = "s/.ATTRIBUTES/OBJECT_CONFIG_JSON", .dtype = 7,
                       .data = s2, .len = enc_strings(s2, txt, txt_l, 1, &c),
                       .set_crc = true};
    t[n++].crc = c;
    t[n] = (struct tt){.key = "s/vec", .dtype = 7, .ndim = 2,
                       .shape = {2, 2}, .data = s3,
                       .len = enc_strings(s3, vec, vec_l, 4, &c),
                       .set_crc = true};
    t[n++].crc = c;
    for (size_t i = 0; i < NT; i++) {
        size_t es = wv_dtype_size(types[i].dt);
        wvtest_fill_pattern(bytes[i], 6 * es, types[i].dt, (unsigned)i);
        t[n++] = (struct tt){.key = types[i].key, .dtype = types[i].tf,
                             .ndim = 2, .shape = {2, 3},
                             .shard = i % 2, .data = bytes[i],
                             .len = 6 * es};
    }
    struct bspec s = {.num_shards = 2};
    const char *pre = wvtest_path("ck");
    ASSERT_OK(write_bundle(pre, &s, t, n));

    for (int mode = 0; mode < 2; mode++) {
        wv_load_opts o = WV_LOAD_OPTS_INIT;
        wv_model *m = NULL;
        char eb[WV_ERRBUF_SIZE] = "";
        o.flags = mode ? WV_LOAD_PREAD : WV_LOAD_MMAP;
        o.errbuf = eb;
        o.errbuf_size = sizeof eb;
        /* by its prefix in one mode, its .index in the other */
        char ip[600];
        snprintf(ip, sizeof ip, "%s%s", pre, mode ? ".index" : "");
        ASSERT_EQ(wv_model_load(ip, &o, &m), WV_OK);
        ASSERT_STREQ(wv_model_source_format(m), "tensorflow");
        ASSERT_EQ(wv_model_count(m), NT);
        for (size_t i = 0; i < NT; i++) {
            const wv_tensor *x = wv_model_find(m, types[i].key);
            ASSERT_NOT_NULL(x);
            ASSERT_EQ(wv_tensor_dtype(x), types[i].dt);
            ASSERT_EQ(wv_tensor_ndim(x), 2);
            ASSERT_EQ(wv_tensor_shape(x)[0], 2);
            ASSERT_EQ(wv_tensor_shape(x)[1], 3);
            ASSERT_EQ(wv_tensor_nbytes(x), 6 * wv_dtype_size(types[i].dt));
            ASSERT_MEMEQ(wv_tensor_data(x), bytes[i], wv_tensor_nbytes(x));
        }
        /* data order: shard 0's tensors first */
        ASSERT_STREQ(wv_tensor_name(wv_model_tensor(m, 0)), "t/bf16");
        ASSERT_STREQ(wv_tensor_name(wv_model_tensor(m, NT / 2)), "t/bool");
        ASSERT_EQ(wv_model_meta_count(m), 4);
        /* tensors per shard, for a rewrite */
        ASSERT_STREQ(wv_model_get_meta(m, "tensorflow.shards"), "7,7");
        ASSERT_STREQ(wv_model_get_meta(m, "s/.ATTRIBUTES/OBJECT_CONFIG_JSON"),
                     txt[0]);
        ASSERT_STREQ(wv_model_get_meta(m, "_CHECKPOINTABLE_OBJECT_GRAPH"),
                     "base64:CgABeg==");
        ASSERT_STREQ(wv_model_get_meta(m, "s/vec"),
                     "{\"shape\": [2, 2], \"values\": [\"a\", \"\", "
                     "\"base64:YmFzZTY0Ong=\", \"base64:/w==\"]}");
        wv_model_free(m);
    }
    /* the data file names the bundle too */
    wv_model *m = NULL;
    char dp[600];
    snprintf(dp, sizeof dp, "%s.data-00001-of-00002", pre);
    ASSERT_OK(wv_model_load(dp, NULL, &m));
    ASSERT_EQ(wv_model_count(m), NT);
    wv_model_free(m);
}

/* Each way of naming a bundle but the prefix: a SavedModel directory, its
 * variables directory, a checkpoint state file, a directory holding one. */
TEST_IMPL(tf_bundle_inputs)
{
    static const float v[2] = {1.5f, -2};
    struct tt t = {.key = "w", .dtype = 1, .ndim = 1, .shape = {2},
                   .data = v, .len = 8};
    struct bspec s = {.num_shards = 1};
    char p[600];
    wv_model *m = NULL;
    const char *dir = wvtest_path("sm");
    snprintf(p, sizeof p, "%s/variables", dir);
    ASSERT_OK(mkdir(dir, 0755));
    ASSERT_OK(mkdir(p, 0755));
    snprintf(p, sizeof p, "%s/variables/variables", dir);
    ASSERT_OK(write_bundle(p, &s, &t, 1));
    ASSERT_OK(wv_model_load(dir, NULL, &m));
    ASSERT_EQ(wv_model_count(m), 1);
    wv_model_free(m);
    snprintf(p, sizeof p, "%s/variables/", dir);
    ASSERT_OK(wv_model_load(p, NULL, &m));
    wv_model_free(m);

    const char *cd = wvtest_path("ck");
    ASSERT_OK(mkdir(cd, 0755));
    snprintf(p, sizeof p, "%s/model.ckpt-7", cd);
    ASSERT_OK(write_bundle(p, &s, &t, 1));
    snprintf(p, sizeof p, "%s/checkpoint", cd);
    const char *st = "model_checkpoint_path: \"model.ckpt-7\"\n"
                     "all_model_checkpoint_paths: \"model.ckpt-7\"\n";
    ASSERT_OK(wvtest_write_file(p, st, strlen(st)));
    ASSERT_OK(wv_model_load(p, NULL, &m));
    ASSERT_MEMEQ(wv_tensor_data(wv_model_find(m, "w")), v, 8);
    wv_model_free(m);
    ASSERT_OK(wv_model_load(cd, NULL, &m));
    wv_model_free(m);

    /* a state file naming a missing prefix; one without a path */
    char eb[WV_ERRBUF_SIZE];
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    o.errbuf = eb;
    o.errbuf_size = sizeof eb;
    st = "model_checkpoint_path: \"gone\"\n";
    ASSERT_OK(wvtest_write_file(p, st, strlen(st)));
    ASSERT_EQ(wv_model_load(p, &o, &m), WV_NOTFOUND);
    ASSERT_CONTAINS(eb, "names 'gone', whose .index does not exist");
    st = "something else\n";
    ASSERT_OK(wvtest_write_file(p, st, strlen(st)));
    ASSERT_EQ(wv_model_load(p, &o, &m), WV_FORMAT);
    ASSERT_CONTAINS(eb, "no model_checkpoint_path");

    /* from memory: refused, with the way out */
    size_t n;
    snprintf(p, sizeof p, "%s/model.ckpt-7.index", cd);
    unsigned char *b = wvtest_read_file(p, &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(wv_model_load_mem(b, n, &o, &m), WV_UNSUPPORTED);
    ASSERT_CONTAINS(eb, "needs its data files beside it");
    free(b);
}

/* Load a one-tensor-or-more bundle and expect `code` with `what`. */
static int bundle_msg(const struct bspec *s, const struct tt *t, size_t n,
                      char *msg)
{
    static int seq;
    char pre[64];
    snprintf(pre, sizeof pre, "r%d", seq++);
    const char *p = wvtest_path(pre);
    if (write_bundle(p, s, t, n) != 0)
        return -1;
    wv_load_opts o = WV_LOAD_OPTS_INIT;
    wv_model *m = NULL;
    o.errbuf = msg;
    o.errbuf_size = WV_ERRBUF_SIZE;
    msg[0] = '\0';
    int rc = wv_model_load(p, &o, &m);
    wv_model_free(m);
    return rc;
}

TEST_IMPL(tf_bundle_rejects)
{
    static const float f[3] = {1, 2, 3};
    static const unsigned char bools[2] = {1, 2};
    static const char trunc_varint[] = {0x20, (char)0x80}; /* offset: 0x80.. */
    static const char neg_dim_shape[] = {0};
    char msg[WV_ERRBUF_SIZE];
    struct bspec one = {.num_shards = 1};
    struct tt base = {.key = "w", .dtype = 1, .ndim = 1, .shape = {3},
                      .data = f, .len = 12};
    struct tt t;
    (void)neg_dim_shape;

    ASSERT_EQ(bundle_msg(&one, &base, 1, msg), WV_OK);
    ASSERT_EQ(bundle_msg(&one, &base, 0, msg), WV_OK); /* header only */

#define REJECT(spec, code, what)                                          \
    do {                                                                  \
        ASSERT_EQ(bundle_msg(spec, &t, 1, msg), code);                    \
        ASSERT_CONTAINS(msg, what);                                       \
        t = base;                                                         \
    } while (0)

    t = base;
    t.set_crc = true;
    t.crc = 12345;
    REJECT(&one, WV_CORRUPT, "tensor 'w' fails its CRC-32C");

    t.set_off = true;
    t.off = 4; /* [4, 16) in a 12-byte shard */
    REJECT(&one, WV_CORRUPT, "passes the end of");
    {
        struct bspec sh = {.num_shards = 1, .short_shard = true};
        ASSERT_EQ(bundle_msg(&sh, &t, 1, msg), WV_CORRUPT);
        ASSERT_CONTAINS(msg, "passes the end of");
    }
    t.set_off = true;
    t.off = UINT64_MAX - 3;
    REJECT(&one, WV_CORRUPT, "negative offset or size");

    t.extra = trunc_varint;
    t.extra_len = sizeof trunc_varint;
    REJECT(&one, WV_CORRUPT, "truncated or overlong varint");

    t.dtype = 99;
    REJECT(&one, WV_CORRUPT, "unknown dtype 99");
    t.dtype = 18;
    REJECT(&one, WV_UNSUPPORTED, "dtype complex128");
    t.dtype = 20;
    REJECT(&one, WV_UNSUPPORTED, "dtype resource");
    t.dtype = 0;
    REJECT(&one, WV_CORRUPT, "has no dtype");

    t.shard = 3;
    REJECT(&one, WV_CORRUPT, "is in shard 3 but the bundle has 1");

    t.set_size = true;
    t.size = 8;
    REJECT(&one, WV_CORRUPT, "has 8 bytes but its shape and dtype need 12");

    t.slices = true;
    REJECT(&one, WV_UNSUPPORTED, "slices");

    t.ndim = -1;
    REJECT(&one, WV_CORRUPT, "unknown rank");
    t.shape[0] = -1;
    REJECT(&one, WV_CORRUPT, "unknown or negative size");
    t.ndim = 9;
    for (int k = 0; k < 9; k++)
        t.shape[k] = 1;
    t.len = 4;
    REJECT(&one, WV_UNSUPPORTED, "more than 8 dimensions");

    t.key = "bad\xff";
    REJECT(&one, WV_CORRUPT, "not UTF-8");
    t.key = "nul\0x";
    t.key_len = 5;
    REJECT(&one, WV_CORRUPT, "not UTF-8");

    t.dtype = 10;
    t.data = bools;
    t.len = 2;
    t.shape[0] = 2;
    REJECT(&one, WV_CORRUPT, "holds the byte 2");

    {
        struct bspec s = {.num_shards = 1, .no_header = true};
        REJECT(&s, WV_CORRUPT, "first key is not the bundle header");
        ASSERT_EQ(bundle_msg(&s, &t, 0, msg), WV_CORRUPT);
        ASSERT_CONTAINS(msg, "no bundle header");
        s = (struct bspec){.num_shards = 1, .endian = 1};
        REJECT(&s, WV_UNSUPPORTED, "big-endian");
        s = (struct bspec){.num_shards = 1, .min_consumer = 5};
        REJECT(&s, WV_UNSUPPORTED, "needs a newer reader");
        s = (struct bspec){.num_shards = 0};
        REJECT(&s, WV_CORRUPT, "num_shards 0");
        /* a shard file that does not exist */
        s = (struct bspec){.num_shards = 6};
        t.shard = 5;
        REJECT(&s, WV_NOTFOUND, "data-00005-of-00006");
    }

    /* string tensors: lengths' CRC, entry CRC, lengths vs bytes */
    {
        unsigned char sb[64];
        const char *v[] = {"hello"};
        size_t vl[] = {5};
        uint32_t c;
        size_t n = enc_strings(sb, v, vl, 1, &c);
        struct tt st = {.key = "s", .dtype = 7, .data = sb, .len = n,
                        .set_crc = true, .crc = c};
        ASSERT_EQ(bundle_msg(&one, &st, 1, msg), WV_OK);
        t = st;
        t.crc = c + 1;
        REJECT(&one, WV_CORRUPT, "string tensor 's' fails its CRC-32C");
        sb[1] ^= 1; /* the stored length checksum */
        t = st;
        REJECT(&one, WV_CORRUPT, "the lengths fail their CRC-32C");
        sb[1] ^= 1;
        t = st;
        t.len = n - 1;
        REJECT(&one, WV_CORRUPT, "5 bytes of strings but 4 stored");
        t = st;
        t.data = "\x80";
        t.len = 1;
        REJECT(&one, WV_CORRUPT, "truncated varint length");
        t = st;
        t.ndim = 1;
        t.shape[0] = 100;
        REJECT(&one, WV_CORRUPT, "has 100 elements in 10 bytes");
    }
#undef REJECT
}

/* ---- writing ------------------------------------------------------------- */

static const char *const fixture_prefixes[] = {
    "a/CodeAshing-Boston_house/variables/variables",
    "b/Gauraviitkgp-Tensorflow/1_BASIC/weights/my_model",
    "b/dpong-Keras_Stock_Price_Prediction/model_weights",
    ("c/wenjunpku-learning-tensorflow/logs/fully_connected_feed/"
     "model.cpkt-1999"),
    "c/sbhtkx-urgent_sms_python/out/one_hidden_layer.chkp",
    "d/fcuyttsai-overtoppingEve/variables/variables",
};

static bool same_file(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *pa = wvtest_read_file(a, &na);
    unsigned char *pb = wvtest_read_file(b, &nb);
    bool same = pa && pb && na == nb && memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return same;
}

/* Every real bundle read and written back: the same .index and the same
 * data files, byte for byte. */
TEST_IMPL(tf_bundle_rewrite_fixtures)
{
    for (size_t f = 0; f < 6; f++) {
        wv_model *m = NULL;
        char in[1024], out[1024], a[1100], b[1100];
        char idx[1024];
        snprintf(idx, sizeof idx, "%s.index", fixture_prefixes[f]);
        /* the prefix is no file: the .index names the input */
        snprintf(in, sizeof in, "%s", wvtest_fixture("tf", idx));
        in[strlen(in) - strlen(".index")] = '\0';
        snprintf(out, sizeof out, "%s", wvtest_path("rw"));
        ASSERT_OK(wv_model_load(in, NULL, &m));
        snprintf(a, sizeof a, "%s.index", out);
        ASSERT_OK(wv_model_save(m, a, NULL));
        snprintf(b, sizeof b, "%s.index", in);
        if (!same_file(a, b))
            WVT_FAIL("%s: rewritten .index differs", fixture_prefixes[f]);
        int ns = f == 5 ? 2 : 1;
        for (int s = 0; s < ns; s++) {
            snprintf(a, sizeof a, "%s.data-%05d-of-%05d", out, s, ns);
            snprintf(b, sizeof b, "%s.data-%05d-of-%05d", in, s, ns);
            if (!same_file(a, b))
                WVT_FAIL("%s: rewritten data shard %d differs",
                         fixture_prefixes[f], s);
        }
        wv_model_free(m);
    }
}

/* A set built here: every dtype, metadata of each kind, a cast; written,
 * read back equal. */
TEST_IMPL(tf_bundle_write_roundtrip)
{
    static const wv_dtype dts[] = {WV_BOOL, WV_U8,  WV_I8,  WV_U16,
                                   WV_I16,  WV_U32, WV_I32, WV_U64,
                                   WV_I64,  WV_F16, WV_BF16, WV_F32,
                                   WV_F64,  WV_C64, WV_F8_E4M3,
                                   WV_F8_E5M2};
    wv_model *m, *r = NULL;
    uint64_t sh[3] = {2, 0, 3}, sc[1] = {5};
    char name[32];
    ASSERT_OK(wv_model_new(&m));
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        snprintf(name, sizeof name, "v/%s", wv_dtype_name(dts[i]));
        ASSERT_OK(wvtest_add_pattern(m, name, dts[i], 1, sc, (unsigned)i));
    }
    ASSERT_OK(wvtest_add_pattern(m, "empty", WV_F32, 3, sh, 1));
    ASSERT_OK(wvtest_add_pattern(m, "scalar", WV_F32, 0, NULL, 2));
    ASSERT_OK(wv_model_set_meta(m, "_CHECKPOINTABLE_OBJECT_GRAPH",
                                "base64:CgABeg=="));
    ASSERT_OK(wv_model_set_meta(m, "format", "pt"));
    ASSERT_OK(wv_model_set_meta(m, "odd", "base64:not base64"));
    ASSERT_OK(wv_model_set_meta(m, "vec",
                                "{\"shape\": [2], \"values\": [\"a\", "
                                "\"base64:/w==\"]}"));
    const char *p = wvtest_path("w.index");
    ASSERT_OK(wv_model_save(m, p, NULL));
    ASSERT_OK(wv_model_load(p, NULL, &r));
    ASSERT_STREQ(wv_model_source_format(r), "tensorflow");
    ASSERT_EQ(wv_model_count(r), wv_model_count(m));
    for (size_t i = 0; i < wv_model_count(m); i++) {
        const wv_tensor *a = wv_model_tensor(m, i), *b = wv_model_tensor(r, i);
        ASSERT_STREQ(wv_tensor_name(a), wv_tensor_name(b));
        ASSERT_EQ(wv_tensor_dtype(a), wv_tensor_dtype(b));
        ASSERT_EQ(wv_tensor_ndim(a), wv_tensor_ndim(b));
        ASSERT_EQ(wv_tensor_nbytes(a), wv_tensor_nbytes(b));
        ASSERT(wv_tensor_nbytes(a) == 0 ||
               memcmp(wv_tensor_data(a), wv_tensor_data(b),
                      wv_tensor_nbytes(a)) == 0);
    }
    ASSERT_EQ(wv_model_meta_count(r), 4);
    ASSERT_STREQ(wv_model_get_meta(r, "format"), "pt");
    /* kept as its bytes: read back base64'd, as such text always is */
    ASSERT_STREQ(wv_model_get_meta(r, "odd"),
                 "base64:YmFzZTY0Om5vdCBiYXNlNjQ=");
    ASSERT_STREQ(wv_model_get_meta(r, "_CHECKPOINTABLE_OBJECT_GRAPH"),
                 "base64:CgABeg==");
    ASSERT_STREQ(wv_model_get_meta(r, "vec"),
                 "{\"shape\": [2], \"values\": [\"a\", \"base64:/w==\"]}");
    wv_model_free(r);

    /* cast to F16: floats change, integers stay */
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.cast = WV_F16;
    ASSERT_OK(wv_model_save(m, p, &so));
    ASSERT_OK(wv_model_load(p, NULL, &r));
    ASSERT_EQ(wv_tensor_dtype(wv_model_find(r, "v/F32")), WV_F16);
    ASSERT_EQ(wv_tensor_dtype(wv_model_find(r, "v/I32")), WV_I32);
    wv_model_free(r);

    /* refusals: a path without .index; a key both tensor and metadata */
    ASSERT_EQ(wv_model_save(m, wvtest_path("w.bin"), &(wv_save_opts){
                  .struct_size = sizeof(wv_save_opts),
                  .format = WV_FMT_TFBUNDLE, .cast = WV_DTYPE_INVALID}),
              WV_MISUSE);
    ASSERT_CONTAINS(wv_model_errmsg(m), "PREFIX.index");
    ASSERT_OK(wv_model_set_meta(m, "scalar", "x"));
    ASSERT_EQ(wv_model_save(m, p, NULL), WV_EXISTS);
    ASSERT_CONTAINS(wv_model_errmsg(m), "both a tensor and a metadata key");
    /* refused before a data file was touched: the F16 bundle is whole */
    ASSERT_OK(wv_model_load(p, NULL, &r));
    ASSERT_EQ(wv_tensor_dtype(wv_model_find(r, "v/F32")), WV_F16);
    wv_model_free(r);
    wv_model_free(m);

    /* only an empty tensor: an empty data file, in both load modes */
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "none", WV_F32, 3, sh, 1));
    p = wvtest_path("e.index");
    ASSERT_OK(wv_model_save(m, p, NULL));
    wv_model_free(m);
    for (int mode = 0; mode < 2; mode++) {
        wv_load_opts o = WV_LOAD_OPTS_INIT;
        o.flags = mode ? WV_LOAD_PREAD : WV_LOAD_MMAP;
        ASSERT_OK(wv_model_load(p, &o, &r));
        ASSERT_EQ(wv_tensor_nbytes(wv_model_find(r, "none")), 0);
        wv_model_free(r);
    }
}
