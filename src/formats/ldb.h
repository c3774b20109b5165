/*
 * ldb.h -- LevelDB-format immutable tables ("SSTables"), as TensorFlow
 * writes the .index file of a tensor bundle, with the CRC-32C and snappy
 * codecs they need.
 *
 * The reader takes the whole table in memory and walks every entry of
 * every data block in order, checking: the footer magic and block handles;
 * each block's trailer (compression type, masked CRC-32C); the restart
 * array; prefix-compressed keys (shared <= previous key); strictly
 * increasing keys across the whole table; and that the index block's
 * separator keys fall between the blocks they separate. The writer
 * produces exactly what LevelDB's (and TensorFlow's copy of its)
 * TableBuilder produces for the same options and entries.
 */
#ifndef WV_LDB_H
#define WV_LDB_H

#include "core.h"

#define WV__LDB_MAGIC 0xdb4775248b80fb57ull
#define WV__LDB_FOOTER 48 /* two handles padded to 40 bytes, + magic */

/* ---- CRC-32C (Castagnoli), software, slicing by 8 ---------------------- */
/* Extend crc (0 to start) with n bytes: crc32c(a ‖ b) =
 * wv__crc32c(wv__crc32c(0, a), b). */
uint32_t wv__crc32c(uint32_t crc, const void *p, size_t n);
/* LevelDB's masking of stored CRCs (a CRC of data holding CRCs). */
static inline uint32_t wv__crc32c_mask(uint32_t c)
{
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}
static inline uint32_t wv__crc32c_unmask(uint32_t m)
{
    uint32_t r = m - 0xa282ead8u;
    return (r >> 17) | (r << 15);
}

/* ---- snappy (raw block format) ------------------------------------------ */
/* Decode a snappy block into a wv__malloc()ed buffer (*out, *out_len).
 * The declared length may not exceed what n input bytes can encode (64x).
 * WV_CORRUPT with *why on malformed input, WV_NOMEM. */
int wv__snappy_decode(const unsigned char *in, size_t n, unsigned char **out,
                      size_t *out_len, const char **why);

/* ---- reading ------------------------------------------------------------ */
/* Called for each entry in key order. key and val are valid only during
 * the call. A non-WV_OK return stops the walk and is returned. */
typedef int (*wv__ldb_entry_fn)(void *ctx, const unsigned char *key,
                                size_t key_len, const unsigned char *val,
                                size_t val_len, struct wv__err *err);
/* Walk the table held in buf[0, n). `what` names it in messages. */
int wv__ldb_walk(const unsigned char *buf, size_t n, const char *what,
                 wv__ldb_entry_fn fn, void *ctx, struct wv__err *err);

/* ---- writing ------------------------------------------------------------ */
/* Compress n bytes into out (appending); return false to store the block
 * uncompressed. The block is kept compressed only if it shrinks by at
 * least 1/8, as LevelDB does. */
typedef bool (*wv__ldb_compress_fn)(const unsigned char *in, size_t n,
                                    struct wv__buf *out);

/* One block being built: entries with prefix-compressed keys and a
 * restart point every `interval` entries. */
struct wv__ldb_block_builder {
    struct wv__buf buf;
    uint32_t *restarts;
    size_t n_restarts, cap_restarts;
    int counter, interval;
    struct wv__buf last; /* previous key */
    bool oom;
};

struct wv__ldb_writer {
    struct wv__buf out;   /* the table so far                           */
    struct wv__ldb_block_builder data, index;
    struct wv__buf last_key;
    size_t n_entries;
    bool pending;         /* a flushed data block awaits its index entry */
    uint64_t pending_off, pending_size;
    size_t block_size;    /* 262144 in TensorFlow                       */
    wv__ldb_compress_fn compress; /* NULL: never compress                */
    bool oom;
};
void wv__ldb_writer_init(struct wv__ldb_writer *w, size_t block_size,
                         int restart_interval, wv__ldb_compress_fn compress);
/* Keys must come in strictly increasing bytewise order (WV_MISUSE). */
int wv__ldb_writer_add(struct wv__ldb_writer *w, const void *key,
                       size_t key_len, const void *val, size_t val_len);
/* Finish the table: its bytes are w->out (owned by the writer until
 * release). WV_NOMEM if any allocation failed. */
int wv__ldb_writer_finish(struct wv__ldb_writer *w);
void wv__ldb_writer_release(struct wv__ldb_writer *w);

#endif /* WV_LDB_H */
