/*
 * ldb.c -- LevelDB-format tables: CRC-32C, snappy decoding, the table
 * reader and the table writer declared in ldb.h.
 *
 * Table layout (LevelDB doc/table_format.md; TensorFlow core/lib/io):
 *
 *   data block 0 | trailer | data block 1 | trailer | ...
 *   metaindex block | trailer        (empty in TensorFlow's files)
 *   index block | trailer            key: >= last key of block i and
 *                                    < first key of block i+1;
 *                                    value: handle of block i
 *   footer (48 bytes): metaindex handle, index handle, zero padding to
 *                      40 bytes, u64 magic 0xdb4775248b80fb57 (LE)
 *
 *   handle   = varint64 offset, varint64 size (of the block without its
 *              trailer)
 *   trailer  = u8 type (0 none, 1 snappy) + u32 masked crc32c of the
 *              stored block bytes and the type byte
 *   block    = entries, u32 restart[num_restarts], u32 num_restarts
 *   entry    = varint32 shared, varint32 non_shared, varint32 value_len,
 *              key bytes [shared, shared+non_shared), value
 *              (key = first `shared` bytes of the previous key + these);
 *              at a restart offset shared is 0.
 *
 * Snappy raw format: varint32 uncompressed length, then elements: tag byte
 * low 2 bits 00 literal (length-1 in the high 6 bits, or 60..63 -> 1..4
 * following LE bytes hold length-1), 01 copy of 4..11 bytes with an 11-bit
 * offset, 10 copy of 1..64 bytes with a 16-bit offset, 11 the same with a
 * 32-bit offset. Copies may overlap their output.
 */
#include "core.h"
#include "ldb.h"
#include "pb.h"

#include <pthread.h>

/* ---- CRC-32C ------------------------------------------------------------ */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^
                            crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t wv__crc32c(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = wv__le32(b) ^ crc, hi = wv__le32(b + 4);
        crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
              crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
              crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
              crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
        b += 8;
        n -= 8;
    }
    while (n--)
        crc = crc_tab[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- snappy ------------------------------------------------------------- */

int wv__snappy_decode(const unsigned char *in, size_t n, unsigned char **out,
                      size_t *out_len, const char **why)
{
    const unsigned char *p = in, *end = in + n;
    const unsigned char *vend = n > 5 ? in + 5 : end;
    unsigned char *o = NULL;
    uint64_t ulen;
    size_t pos = 0;

    *out = NULL;
    *out_len = 0;
    if (wv__pb_varint(&p, vend, &ulen) != 0 || ulen > UINT32_MAX) {
        *why = "snappy length is not a varint32";
        return WV_CORRUPT;
    }
    if (ulen / 64 > n) {
        *why = "snappy length is more than its input can encode";
        return WV_CORRUPT;
    }
    o = wv__malloc(ulen ? (size_t)ulen : 1);
    if (o == NULL)
        return WV_NOMEM;
    while (p < end) {
        unsigned tag = *p++;
        size_t len, off;
        switch (tag & 3) {
        case 0:
            len = tag >> 2;
            if (len >= 60) {
                size_t nb = len - 59;
                if ((size_t)(end - p) < nb)
                    goto trunc;
                len = 0;
                for (size_t i = 0; i < nb; i++)
                    len |= (size_t)p[i] << (8 * i);
                p += nb;
            }
            len += 1;
            if ((size_t)(end - p) < len)
                goto trunc;
            if (len > ulen - pos)
                goto over;
            memcpy(o + pos, p, len);
            p += len;
            pos += len;
            continue;
        case 1:
            if (end - p < 1)
                goto trunc;
            len = 4 + ((tag >> 2) & 7);
            off = ((size_t)(tag >> 5) << 8) | p[0];
            p += 1;
            break;
        case 2:
            if (end - p < 2)
                goto trunc;
            len = 1 + (tag >> 2);
            off = wv__le16(p);
            p += 2;
            break;
        default:
            if (end - p < 4)
                goto trunc;
            len = 1 + (tag >> 2);
            off = wv__le32(p);
            p += 4;
            break;
        }
        if (off == 0 || off > pos) {
            *why = "snappy copy reaches before the start of the output";
            goto bad;
        }
        if (len > ulen - pos)
            goto over;
        for (size_t i = 0; i < len; i++, pos++)
            o[pos] = o[pos - off];
    }
    if (pos != ulen) {
        *why = "snappy output is shorter than its declared length";
        goto bad;
    }
    *out = o;
    *out_len = pos;
    return WV_OK;
trunc:
    *why = "snappy element is truncated";
    goto bad;
over:
    *why = "snappy output is longer than its declared length";
bad:
    wv__free(o);
    return WV_CORRUPT;
}

/* ---- reading ------------------------------------------------------------ */

struct handle {
    uint64_t off, size;
};

struct walk {
    const unsigned char *buf;
    size_t n;       /* bytes before the footer */
    const char *what;
    struct wv__buf key;  /* current key */
    struct wv__buf prev; /* previous entry's key in the table */
    bool have_prev;
    struct wv__buf sep;  /* the previous index separator */
    bool have_sep;
    bool block_first;    /* the next entry is the first of its block */
    wv__ldb_entry_fn fn;
    void *ctx;
};

static int get_handle(const unsigned char **p, const unsigned char *end,
                      struct handle *h)
{
    if (wv__pb_varint(p, end, &h->off) != 0 ||
        wv__pb_varint(p, end, &h->size) != 0)
        return -1;
    return 0;
}

/* The contents of the block at h: checked and decompressed. *owned is set
 * when the contents live in a new buffer. */
static int read_block(struct walk *w, const struct handle *h,
                      const char *kind, const unsigned char **data,
                      size_t *len, unsigned char **owned, struct wv__err *err)
{
    int rc = WV_OK;
    const char *why = NULL;
    uint64_t end;
    *owned = NULL;
    WV_CHECK(!wv__add_overflow(h->off, h->size, &end) &&
                 !wv__add_overflow(end, 5, &end) && end <= w->n,
             WV_CORRUPT,
             "%s: %s block [%llu, +%llu) and its trailer pass the footer "
             "at %zu",
             w->what, kind, (unsigned long long)h->off,
             (unsigned long long)h->size, w->n);
    const unsigned char *b = w->buf + h->off;
    size_t bl = (size_t)h->size;
    uint32_t crc = wv__crc32c(0, b, bl + 1); /* the block and its type */
    uint32_t stored = wv__le32(b + bl + 1);
    WV_CHECK(wv__crc32c_unmask(stored) == crc, WV_CORRUPT,
             "%s: %s block at offset %llu fails its CRC-32C (stored "
             "%08x, computed %08x)",
             w->what, kind, (unsigned long long)h->off,
             wv__crc32c_unmask(stored), crc);
    switch (b[bl]) {
    case 0:
        *data = b;
        *len = bl;
        break;
    case 1:
        rc = wv__snappy_decode(b, bl, owned, len, &why);
        WV_CHECK(rc != WV_NOMEM, WV_NOMEM, "out of memory");
        WV_CHECK(rc == WV_OK, WV_CORRUPT, "%s: %s block at offset %llu: %s",
                 w->what, kind, (unsigned long long)h->off, why);
        *data = *owned;
        break;
    default:
        WV_CORRUPT_BKPT("%s: %s block at offset %llu has unknown "
                        "compression type %u",
                        w->what, kind, (unsigned long long)h->off, b[bl]);
    }
out:
    return rc;
}

static int varint32(const unsigned char **p, const unsigned char *end,
                    uint32_t *v)
{
    uint64_t x;
    const unsigned char *vend = end - *p > 5 ? *p + 5 : end;
    if (wv__pb_varint(p, vend, &x) != 0 || x > UINT32_MAX)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

static int bytes_cmp(const unsigned char *a, size_t al,
                     const unsigned char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0)
        return c;
    return al < bl ? -1 : al > bl;
}

/* Walk the entries of one block; fn(ctx, ...) per entry. For data blocks
 * (table != 0) keys must increase across the table; index blocks check
 * their own order. */
typedef int (*block_fn)(struct walk *w, const unsigned char *key,
                        size_t key_len, const unsigned char *val,
                        size_t val_len, struct wv__err *err);

static int walk_block(struct walk *w, const unsigned char *d, size_t len,
                      const char *kind, uint64_t boff, block_fn fn,
                      struct wv__err *err)
{
    int rc = WV_OK;
    struct wv__buf prev = {0};
    bool first = true;
    WV_CHECK(len >= 4, WV_CORRUPT,
             "%s: %s block at offset %llu is shorter than its restart count",
             w->what, kind, (unsigned long long)boff);
    uint32_t nr = wv__le32(d + len - 4);
    WV_CHECK(nr <= (len - 4) / 4, WV_CORRUPT,
             "%s: %s block at offset %llu claims %u restart points, more "
             "than fit",
             w->what, kind, (unsigned long long)boff, nr);
    size_t elen = len - 4 - 4 * (size_t)nr;
    const unsigned char *rs = d + elen;
    WV_CHECK(elen == 0 || (nr > 0 && wv__le32(rs) == 0), WV_CORRUPT,
             "%s: %s block at offset %llu: the first restart point is not "
             "the first entry",
             w->what, kind, (unsigned long long)boff);
    const unsigned char *p = d, *end = d + elen;
    size_t ri = 0;
    w->key.len = 0;
    while (p < end) {
        uint32_t shared, nonshared, vlen;
        size_t at = (size_t)(p - d);
        if (ri < nr && wv__le32(rs + 4 * ri) == at) {
            ri++;
        } else {
            WV_CHECK(ri >= nr || wv__le32(rs + 4 * ri) > at, WV_CORRUPT,
                     "%s: %s block at offset %llu: restart point %zu (%u) "
                     "is not at an entry",
                     w->what, kind, (unsigned long long)boff, ri,
                     wv__le32(rs + 4 * ri));
        }
        bool restart = ri > 0 && wv__le32(rs + 4 * (ri - 1)) == at;
        WV_CHECK(varint32(&p, end, &shared) == 0 &&
                     varint32(&p, end, &nonshared) == 0 &&
                     varint32(&p, end, &vlen) == 0,
                 WV_CORRUPT,
                 "%s: %s block at offset %llu: truncated entry header at "
                 "byte %zu",
                 w->what, kind, (unsigned long long)boff, at);
        WV_CHECK(shared <= w->key.len && (!restart || shared == 0),
                 WV_CORRUPT,
                 "%s: %s block at offset %llu: entry at byte %zu shares %u "
                 "bytes with a previous key of %zu%s",
                 w->what, kind, (unsigned long long)boff, at, shared,
                 restart ? (size_t)0 : w->key.len,
                 restart ? " (at a restart point)" : "");
        WV_CHECK((uint64_t)nonshared + vlen <= (uint64_t)(end - p),
                 WV_CORRUPT,
                 "%s: %s block at offset %llu: entry at byte %zu runs past "
                 "the block",
                 w->what, kind, (unsigned long long)boff, at);
        w->key.len = shared;
        wv__buf_add(&w->key, p, nonshared);
        WV_CHECK(!w->key.oom, WV_NOMEM, "out of memory");
        p += nonshared;
        if (!first)
            WV_CHECK(bytes_cmp((const unsigned char *)prev.p, prev.len,
                               (const unsigned char *)w->key.p,
                               w->key.len) < 0,
                     WV_CORRUPT,
                     "%s: %s block at offset %llu: key '%.*s' does not sort "
                     "after '%.*s'",
                     w->what, kind, (unsigned long long)boff,
                     (int)(w->key.len > 200 ? 200 : w->key.len), w->key.p,
                     (int)(prev.len > 200 ? 200 : prev.len), prev.p);
        prev.len = 0;
        wv__buf_add(&prev, w->key.p, w->key.len);
        WV_CHECK(!prev.oom, WV_NOMEM, "out of memory");
        first = false;
        WV_TRY(fn(w, (const unsigned char *)w->key.p, w->key.len, p, vlen,
                  err));
        p += vlen;
    }
    WV_CHECK(ri == nr || (elen == 0 && nr <= 1), WV_CORRUPT,
             "%s: %s block at offset %llu: %u restart points but only %zu "
             "lie at entries",
             w->what, kind, (unsigned long long)boff, nr, ri);
out:
    wv__buf_release(&prev);
    return rc;
}

static int data_entry(struct walk *w, const unsigned char *key,
                      size_t key_len, const unsigned char *val,
                      size_t val_len, struct wv__err *err)
{
    int rc = WV_OK;
    WV_CHECK(!w->have_prev ||
                 bytes_cmp((const unsigned char *)w->prev.p, w->prev.len,
                           key, key_len) < 0,
             WV_CORRUPT, "%s: key '%.*s' does not sort after '%.*s'",
             w->what, (int)(key_len > 200 ? 200 : key_len), key,
             (int)(w->prev.len > 200 ? 200 : w->prev.len), w->prev.p);
    WV_CHECK(!w->block_first || !w->have_sep ||
                 bytes_cmp((const unsigned char *)w->sep.p, w->sep.len, key,
                           key_len) < 0,
             WV_CORRUPT,
             "%s: key '%.*s' does not sort after the index key '%.*s' of "
             "the block before",
             w->what, (int)(key_len > 200 ? 200 : key_len), key,
             (int)(w->sep.len > 200 ? 200 : w->sep.len), w->sep.p);
    w->block_first = false;
    w->prev.len = 0;
    wv__buf_add(&w->prev, key, key_len);
    WV_CHECK(!w->prev.oom, WV_NOMEM, "out of memory");
    w->have_prev = true;
    rc = w->fn(w->ctx, key, key_len, val, val_len, err);
out:
    return rc;
}

static int ignore_entry(struct walk *w, const unsigned char *key,
                        size_t key_len, const unsigned char *val,
                        size_t val_len, struct wv__err *err)
{
    (void)w, (void)key, (void)key_len, (void)val, (void)val_len, (void)err;
    return WV_OK;
}

/* An index entry: the data block it names, walked now. Its key must be
 * >= the block's last key and < the next block's first key. */
static int index_entry(struct walk *w, const unsigned char *key,
                       size_t key_len, const unsigned char *val,
                       size_t val_len, struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char *owned = NULL;
    struct wv__buf bkey = {0};
    const unsigned char *p = val, *vend = val + val_len, *d;
    size_t dl;
    struct handle h;
    WV_CHECK(get_handle(&p, vend, &h) == 0 && p == vend, WV_CORRUPT,
             "%s: index entry '%.*s' does not hold a block handle",
             w->what, (int)(key_len > 200 ? 200 : key_len), key);
    WV_TRY(read_block(w, &h, "data", &d, &dl, &owned, err));
    /* walk_block reuses w->key for the data block's keys: the index
     * key (which lives there) is saved first. */
    wv__buf_add(&bkey, key, key_len);
    WV_CHECK(!bkey.oom, WV_NOMEM, "out of memory");
    struct wv__buf ikey = w->key;
    w->key = (struct wv__buf){0};
    w->block_first = true;
    rc = walk_block(w, d, dl, "data", h.off, data_entry, err);
    wv__buf_release(&w->key);
    w->key = ikey;
    WV_TRY(rc);
    WV_CHECK(!w->have_prev ||
                 bytes_cmp((const unsigned char *)w->prev.p, w->prev.len,
                           (const unsigned char *)bkey.p, bkey.len) <= 0,
             WV_CORRUPT,
             "%s: index key '%.*s' sorts before the last key '%.*s' of "
             "its block",
             w->what, (int)(bkey.len > 200 ? 200 : bkey.len), bkey.p,
             (int)(w->prev.len > 200 ? 200 : w->prev.len), w->prev.p);
    w->sep.len = 0;
    wv__buf_add(&w->sep, bkey.p, bkey.len);
    WV_CHECK(!w->sep.oom, WV_NOMEM, "out of memory");
    w->have_sep = true;
out:
    wv__free(owned);
    wv__buf_release(&bkey);
    return rc;
}

int wv__ldb_walk(const unsigned char *buf, size_t n, const char *what,
                 wv__ldb_entry_fn fn, void *ctx, struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char *owned = NULL;
    struct walk w = {0};
    struct handle meta, index;
    const unsigned char *d;
    size_t dl;

    WV_CHECK(n >= WV__LDB_FOOTER, WV_CORRUPT,
             "%s: %zu bytes, shorter than a table footer", what, n);
    const unsigned char *f = buf + n - WV__LDB_FOOTER;
    WV_CHECK(wv__le64(buf + n - 8) == WV__LDB_MAGIC, WV_CORRUPT,
             "%s: bad table magic %016llx in the footer (want %016llx)",
             what, (unsigned long long)wv__le64(buf + n - 8),
             (unsigned long long)WV__LDB_MAGIC);
    const unsigned char *p = f, *hend = f + 40;
    WV_CHECK(get_handle(&p, hend, &meta) == 0 &&
                 get_handle(&p, hend, &index) == 0,
             WV_CORRUPT, "%s: footer block handles are malformed", what);
    w.buf = buf;
    w.n = n - WV__LDB_FOOTER;
    w.what = what;
    w.fn = fn;
    w.ctx = ctx;
    /* The metaindex block is checked (TensorFlow writes it empty). */
    WV_TRY(read_block(&w, &meta, "metaindex", &d, &dl, &owned, err));
    WV_TRY(walk_block(&w, d, dl, "metaindex", meta.off, ignore_entry, err));
    wv__free(owned);
    owned = NULL;
    WV_TRY(read_block(&w, &index, "index", &d, &dl, &owned, err));
    WV_TRY(walk_block(&w, d, dl, "index", index.off, index_entry, err));
out:
    wv__free(owned);
    wv__buf_release(&w.key);
    wv__buf_release(&w.prev);
    wv__buf_release(&w.sep);
    return rc;
}

/* ---- writing ------------------------------------------------------------ */

static void bb_reset(struct wv__ldb_block_builder *b)
{
    b->buf.len = 0;
    b->last.len = 0;
    b->counter = 0;
    b->n_restarts = 0;
    if (wv__grow(&b->restarts, &b->cap_restarts, 0, sizeof *b->restarts,
                 16) != WV_OK) {
        b->oom = true;
        return;
    }
    b->restarts[b->n_restarts++] = 0;
}

static void bb_init(struct wv__ldb_block_builder *b, int interval)
{
    memset(b, 0, sizeof *b);
    b->interval = interval;
    bb_reset(b);
}

static void bb_release(struct wv__ldb_block_builder *b)
{
    wv__buf_release(&b->buf);
    wv__buf_release(&b->last);
    wv__free(b->restarts);
    memset(b, 0, sizeof *b);
}

static void bb_add(struct wv__ldb_block_builder *b, const void *key,
                   size_t key_len, const void *val, size_t val_len)
{
    size_t shared = 0;
    if (b->oom)
        return;
    if (b->counter < b->interval) {
        size_t m = b->last.len < key_len ? b->last.len : key_len;
        while (shared < m &&
               (unsigned char)b->last.p[shared] ==
                   ((const unsigned char *)key)[shared])
            shared++;
    } else {
        if (wv__grow(&b->restarts, &b->cap_restarts, b->n_restarts,
                     sizeof *b->restarts, 16) != WV_OK) {
            b->oom = true;
            return;
        }
        b->restarts[b->n_restarts++] = (uint32_t)b->buf.len;
        b->counter = 0;
    }
    wv__pb_put_varint(&b->buf, shared);
    wv__pb_put_varint(&b->buf, key_len - shared);
    wv__pb_put_varint(&b->buf, val_len);
    wv__buf_add(&b->buf, (const unsigned char *)key + shared,
                key_len - shared);
    wv__buf_add(&b->buf, val, val_len);
    b->last.len = 0;
    wv__buf_add(&b->last, key, key_len);
    b->counter++;
    if (b->buf.oom || b->last.oom)
        b->oom = true;
}

static size_t bb_estimate(const struct wv__ldb_block_builder *b)
{
    return b->buf.len + 4 * b->n_restarts + 4;
}

static void bb_finish(struct wv__ldb_block_builder *b)
{
    unsigned char t[4];
    for (size_t i = 0; i < b->n_restarts; i++) {
        wv__put32(t, b->restarts[i]);
        wv__buf_add(&b->buf, t, 4);
    }
    wv__put32(t, (uint32_t)b->n_restarts);
    wv__buf_add(&b->buf, t, 4);
    if (b->buf.oom)
        b->oom = true;
}

static void write_block(struct wv__ldb_writer *w,
                        struct wv__ldb_block_builder *b, uint64_t *off,
                        uint64_t *size)
{
    struct wv__buf c = {0};
    const unsigned char *data;
    size_t len;
    unsigned char type = 0, t[4];
    bb_finish(b);
    if (b->oom) {
        w->oom = true;
        return;
    }
    data = (const unsigned char *)b->buf.p;
    len = b->buf.len;
    if (w->compress && w->compress(data, len, &c) && !c.oom &&
        c.len < len - len / 8) {
        data = (const unsigned char *)c.p;
        len = c.len;
        type = 1;
    }
    *off = w->out.len;
    *size = len;
    wv__buf_add(&w->out, data, len);
    wv__buf_add(&w->out, &type, 1);
    uint32_t crc = wv__crc32c(wv__crc32c(0, data, len), &type, 1);
    wv__put32(t, wv__crc32c_mask(crc));
    wv__buf_add(&w->out, t, 4);
    wv__buf_release(&c);
    bb_reset(b);
    if (w->out.oom || b->oom)
        w->oom = true;
}

static void put_handle(struct wv__buf *b, uint64_t off, uint64_t size)
{
    wv__pb_put_varint(b, off);
    wv__pb_put_varint(b, size);
}

/* LevelDB's BytewiseComparator::FindShortestSeparator, in place on s. */
static void shortest_separator(struct wv__buf *s, const unsigned char *limit,
                               size_t limit_len)
{
    size_t m = s->len < limit_len ? s->len : limit_len, i = 0;
    while (i < m && (unsigned char)s->p[i] == limit[i])
        i++;
    if (i >= m)
        return; /* one is a prefix of the other */
    unsigned char c = (unsigned char)s->p[i];
    if (c < 0xff && c + 1 < limit[i]) {
        s->p[i] = (char)(c + 1);
        s->len = i + 1;
    }
}

/* LevelDB's BytewiseComparator::FindShortSuccessor, in place on s. */
static void short_successor(struct wv__buf *s)
{
    for (size_t i = 0; i < s->len; i++) {
        if ((unsigned char)s->p[i] != 0xff) {
            s->p[i] = (char)((unsigned char)s->p[i] + 1);
            s->len = i + 1;
            return;
        }
    }
}

static void flush_data(struct wv__ldb_writer *w)
{
    if (w->data.buf.len == 0)
        return;
    write_block(w, &w->data, &w->pending_off, &w->pending_size);
    w->pending = true;
}

static void index_pending(struct wv__ldb_writer *w, const void *next,
                          size_t next_len)
{
    struct wv__buf sep = {0}, h = {0};
    wv__buf_add(&sep, w->last_key.p, w->last_key.len);
    if (next)
        shortest_separator(&sep, next, next_len);
    else
        short_successor(&sep);
    put_handle(&h, w->pending_off, w->pending_size);
    if (sep.oom || h.oom)
        w->oom = true;
    else
        bb_add(&w->index, sep.p, sep.len, h.p, h.len);
    w->pending = false;
    wv__buf_release(&sep);
    wv__buf_release(&h);
}

void wv__ldb_writer_init(struct wv__ldb_writer *w, size_t block_size,
                         int restart_interval, wv__ldb_compress_fn compress)
{
    memset(w, 0, sizeof *w);
    bb_init(&w->data, restart_interval);
    bb_init(&w->index, 1);
    w->block_size = block_size;
    w->compress = compress;
}

int wv__ldb_writer_add(struct wv__ldb_writer *w, const void *key,
                       size_t key_len, const void *val, size_t val_len)
{
    if (w->n_entries > 0 &&
        bytes_cmp((const unsigned char *)w->last_key.p, w->last_key.len,
                  key, key_len) >= 0)
        return WV_MISUSE;
    if (w->pending)
        index_pending(w, key, key_len);
    bb_add(&w->data, key, key_len, val, val_len);
    w->last_key.len = 0;
    wv__buf_add(&w->last_key, key, key_len);
    w->n_entries++;
    if (bb_estimate(&w->data) >= w->block_size)
        flush_data(w);
    if (w->data.oom || w->last_key.oom)
        w->oom = true;
    return w->oom ? WV_NOMEM : WV_OK;
}

int wv__ldb_writer_finish(struct wv__ldb_writer *w)
{
    struct wv__ldb_block_builder meta;
    uint64_t moff, msize, ioff, isize;
    unsigned char t[8];
    flush_data(w);
    bb_init(&meta, 16);
    write_block(w, &meta, &moff, &msize);
    bb_release(&meta);
    if (w->pending)
        index_pending(w, NULL, 0);
    write_block(w, &w->index, &ioff, &isize);
    size_t foot = w->out.len;
    put_handle(&w->out, moff, msize);
    put_handle(&w->out, ioff, isize);
    while (!w->out.oom && w->out.len < foot + 40)
        wv__buf_addc(&w->out, 0);
    wv__put64(t, WV__LDB_MAGIC);
    wv__buf_add(&w->out, t, 8);
    if (w->out.oom)
        w->oom = true;
    return w->oom ? WV_NOMEM : WV_OK;
}

void wv__ldb_writer_release(struct wv__ldb_writer *w)
{
    wv__buf_release(&w->out);
    wv__buf_release(&w->last_key);
    bb_release(&w->data);
    bb_release(&w->index);
}
