/*
 * zip.c -- a strict reader and a streaming writer of zip archives (PKWARE
 * APPNOTE 6.3), enough for numpy .npz and PyTorch's zip checkpoints.
 *
 *   [local header 1][payload 1][data descriptor 1] ... [local header n]...
 *   [central directory: one header per entry]
 *   [ZIP64 end of central directory record]      only when needed
 *   [ZIP64 end of central directory locator]     only when needed
 *   [end of central directory record][comment]
 *
 *   local header (30 bytes + name + extra)
 *     u32 0x04034b50, u16 version needed, u16 flags, u16 method,
 *     u16 time, u16 date, u32 crc32, u32 comp size, u32 size,
 *     u16 name len, u16 extra len
 *   central header (46 bytes + name + extra + comment)
 *     u32 0x02014b50, u16 made by, u16 needed, u16 flags, u16 method,
 *     u16 time, u16 date, u32 crc32, u32 comp size, u32 size,
 *     u16 name len, u16 extra len, u16 comment len, u16 disk,
 *     u16 internal attr, u32 external attr, u32 local header offset
 *   extra fields: u16 id, u16 len, data. id 0x0001 (ZIP64) holds, in this
 *     order, the u64 size, comp size, offset and u32 disk whose 32-bit (16
 *     for the disk) fields are all ones. id 0x4246 ('FB') is PyTorch's
 *     padding that aligns the payload.
 *   data descriptor (general-purpose flag bit 3)
 *     u32 0x08074b50, u32 crc32, then u32 sizes (or u64 sizes when the
 *     local header had a ZIP64 extra field)
 *   EOCD (22 bytes + comment)
 *     u32 0x06054b50, u16 disk, u16 cd disk, u16 entries on disk,
 *     u16 entries, u32 cd size, u32 cd offset, u16 comment len
 *   ZIP64 locator (20 bytes): u32 0x07064b50, u32 disk, u64 EOCD64 offset,
 *     u32 total disks
 *   ZIP64 EOCD (56 bytes + extensible data): u32 0x06064b50, u64 record
 *     size, u16 made by, u16 needed, u32 disk, u32 cd disk,
 *     u64 entries on disk, u64 entries, u64 cd size, u64 cd offset
 *
 * Reader invariants, established by wv__zip_open() before any entry is
 * used: the EOCD ends exactly at the end of the file (its comment length
 * matches); the central directory lies inside the file before the end
 * records; the entry count fits the directory; every entry is unencrypted,
 * stored or deflated, on disk 0, with a local header whose name, method,
 * data-descriptor flag, CRC-32 and sizes agree with the central one (CRC
 * and sizes may be zero when a data descriptor follows); no name is empty,
 * absolute, has a '..' component, a backslash or a control character;
 * every payload lies before the central directory and no two entries
 * overlap; names are unique; a stored entry's
 * sizes agree, and a deflated entry declares at most 1032 times its
 * compressed size (zlib's maximum ratio) so a bomb is refused before any
 * allocation. Reading an entry inflates into a buffer of exactly the
 * declared size, refuses a stream that would produce more or less, and
 * checks the CRC-32 (also of stored entries, unless they are borrowed
 * from a mapping without WV_LOAD_CHECKSUMS). Data prepended to the archive
 * (self-extracting stubs) is not supported: offsets are absolute.
 *
 * Writer invariants: every entry has flag bit 3 and a data descriptor, so
 * nothing is ever rewritten (the output is a pure stream); times are the
 * fixed DOS epoch 1980-01-01 so equal inputs give equal bytes; entries
 * whose size hint reaches 4 GiB get ZIP64 local extra fields and 64-bit
 * descriptors; the central directory uses ZIP64 fields and end records only
 * for the values that need them.
 */
#include "core.h"
#include "fmt.h"
#include "tensor.h"
#include "zip.h"

#include <zlib.h>

#define SIG_LH 0x04034b50u
#define SIG_CD 0x02014b50u
#define SIG_DD 0x08074b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u

#define EOCD_LEN 22u
#define LOC64_LEN 20u
#define EOCD64_LEN 56u
#define CD_LEN 46u
#define LH_LEN 30u
#define MAX_RATIO 1032u
#define U32_ALL 0xffffffffu
#define U16_ALL 0xffffu

#define ZBUF_SIZE (256u << 10)
#define ZCHUNK ((size_t)1 << 30)

/* ---- reader ------------------------------------------------------------- */

const struct wv__zip_entry *wv__zip_find(const struct wv__zip *z,
                                         const char *name)
{
    for (size_t i = 0; i < z->n_ents; i++)
        if (strcmp(z->ents[i].name, name) == 0)
            return &z->ents[i];
    return NULL;
}

void wv__zip_close(struct wv__zip *z)
{
    for (size_t i = 0; i < z->n_ents; i++)
        wv__free(z->ents[i].name);
    wv__free(z->ents);
    z->ents = NULL;
    z->n_ents = 0;
}

static int cmp_name(const void *a, const void *b)
{
    const struct wv__zip_entry *x = *(const struct wv__zip_entry *const *)a;
    const struct wv__zip_entry *y = *(const struct wv__zip_entry *const *)b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c)
        return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static int cmp_off(const void *a, const void *b)
{
    const struct wv__zip_entry *x = *(const struct wv__zip_entry *const *)a;
    const struct wv__zip_entry *y = *(const struct wv__zip_entry *const *)b;
    return x->lh_off < y->lh_off ? -1 : x->lh_off > y->lh_off;
}

/* Fields of an end record, after ZIP64 resolution. */
struct eocd {
    uint64_t disk, cd_disk, n_disk, n_total, cd_size, cd_off;
    uint64_t limit; /* where the end records start */
};

static int find_eocd(const struct wv__src *src, struct eocd *r,
                     struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char *tail = NULL;
    uint64_t size = src->size;
    WV_CHECK(size >= EOCD_LEN, WV_CORRUPT,
             "%s: not a zip archive: %llu bytes is less than the 22-byte "
             "end-of-central-directory record",
             src->name, (unsigned long long)size);
    size_t tail_len = size < EOCD_LEN + 65535u ? (size_t)size
                                               : EOCD_LEN + 65535u;
    uint64_t tail_off = size - tail_len;
    tail = wv__malloc(tail_len);
    WV_CHECK(tail != NULL, WV_NOMEM, "out of memory");
    WV_TRY(wv__src_read(src, tail_off, tail, tail_len, err));
    size_t i = tail_len - EOCD_LEN;
    bool found = false;
    for (;;) {
        if (wv__le32(tail + i) == SIG_EOCD &&
            i + EOCD_LEN + wv__le16(tail + i + 20) == tail_len) {
            found = true;
            break;
        }
        if (i == 0)
            break;
        i--;
    }
    if (!found)
        WV_CORRUPT_BKPT("%s: bad end-of-central-directory record: none "
                        "ends the file (not a zip archive, or truncated)",
                        src->name);
    const unsigned char *e = tail + i;
    uint64_t eocd_off = tail_off + i;
    r->disk = wv__le16(e + 4);
    r->cd_disk = wv__le16(e + 6);
    r->n_disk = wv__le16(e + 8);
    r->n_total = wv__le16(e + 10);
    r->cd_size = wv__le32(e + 12);
    r->cd_off = wv__le32(e + 16);
    r->limit = eocd_off;

    unsigned char loc[LOC64_LEN], e64[EOCD64_LEN];
    bool have_loc = false;
    if (eocd_off >= LOC64_LEN) {
        WV_TRY(wv__src_read(src, eocd_off - LOC64_LEN, loc, LOC64_LEN, err));
        have_loc = wv__le32(loc) == SIG_LOC64;
    }
    if (!have_loc) {
        WV_CHECK(r->n_total != U16_ALL && r->n_disk != U16_ALL &&
                     r->cd_size != U32_ALL && r->cd_off != U32_ALL,
                 WV_CORRUPT,
                 "%s: bad end-of-central-directory record: ZIP64 markers "
                 "without a ZIP64 locator",
                 src->name);
        goto out;
    }
    uint64_t loc_off = eocd_off - LOC64_LEN;
    uint64_t off64 = wv__le64(loc + 8);
    WV_CHECK(wv__le32(loc + 4) == 0 && wv__le32(loc + 16) <= 1, WV_FORMAT,
             "%s: multi-disk zip archives are not supported", src->name);
    WV_CHECK(off64 <= loc_off && loc_off - off64 >= EOCD64_LEN, WV_CORRUPT,
             "%s: bad ZIP64 locator: end record offset %llu is out of range",
             src->name, (unsigned long long)off64);
    WV_TRY(wv__src_read(src, off64, e64, EOCD64_LEN, err));
    WV_CHECK(wv__le32(e64) == SIG_EOCD64, WV_CORRUPT,
             "%s: bad ZIP64 end-of-central-directory record signature",
             src->name);
    uint64_t rec = wv__le64(e64 + 4);
    WV_CHECK(rec >= EOCD64_LEN - 12 && rec <= loc_off - off64 - 12,
             WV_CORRUPT,
             "%s: bad ZIP64 end-of-central-directory record size %llu",
             src->name, (unsigned long long)rec);
    r->disk = wv__le32(e64 + 16);
    r->cd_disk = wv__le32(e64 + 20);
    r->n_disk = wv__le64(e64 + 24);
    r->n_total = wv__le64(e64 + 32);
    r->cd_size = wv__le64(e64 + 40);
    r->cd_off = wv__le64(e64 + 48);
    r->limit = off64;
out:
    wv__free(tail);
    return rc;
}

/* Resolve the ZIP64 extra field of a central header. */
static int parse_extra(const struct wv__src *src, const unsigned char *x,
                       size_t xlen, struct wv__zip_entry *e, uint32_t *disk,
                       struct wv__err *err)
{
    int rc = WV_OK;
    size_t pos = 0;
    while (pos < xlen) {
        WV_CHECK(xlen - pos >= 4, WV_CORRUPT,
                 "%s: member '%.200s': truncated extra field", src->name,
                 e->name);
        unsigned id = wv__le16(x + pos), len = wv__le16(x + pos + 2);
        pos += 4;
        WV_CHECK(len <= xlen - pos, WV_CORRUPT,
                 "%s: member '%.200s': extra field 0x%04x runs past its "
                 "header",
                 src->name, e->name, id);
        if (id == 0x0001) {
            const unsigned char *p = x + pos;
            size_t left = len;
            uint64_t *f64[3] = {&e->size, &e->comp_size, &e->lh_off};
            for (int k = 0; k < 3; k++) {
                if (*f64[k] != U32_ALL)
                    continue;
                WV_CHECK(left >= 8, WV_CORRUPT,
                         "%s: member '%.200s': ZIP64 extra field too short",
                         src->name, e->name);
                *f64[k] = wv__le64(p);
                p += 8;
                left -= 8;
            }
            if (*disk == U16_ALL) {
                WV_CHECK(left >= 4, WV_CORRUPT,
                         "%s: member '%.200s': ZIP64 extra field too short",
                         src->name, e->name);
                *disk = wv__le32(p);
            }
        }
        pos += len;
    }
out:
    return rc;
}

/* The CRC-32 and sizes of a local header against the central directory's:
 * equal, or (with a data descriptor, flag bit 3) zero; all-ones sizes are
 * taken from the local ZIP64 extra field. */
static int check_local_sizes(const struct wv__src *src,
                             const struct wv__zip_entry *e,
                             const unsigned char *lh, size_t nlen,
                             size_t xlen, uint64_t cd_off,
                             struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char *x = NULL;
    uint64_t lcrc = wv__le32(lh + 14), lcomp = wv__le32(lh + 18),
             lsize = wv__le32(lh + 22);
    bool dd = (e->flags & 0x08) != 0;
    if (lsize == U32_ALL || lcomp == U32_ALL) {
        uint64_t xoff = e->lh_off + LH_LEN + nlen;
        WV_CHECK(xoff + xlen <= cd_off, WV_CORRUPT,
                 "%s: member '%.200s': local extra field runs past the "
                 "central directory",
                 src->name, e->name);
        x = wv__malloc(xlen ? xlen : 1);
        WV_CHECK(x != NULL, WV_NOMEM, "out of memory");
        WV_TRY(wv__src_read(src, xoff, x, xlen, err));
        bool found = false;
        for (size_t pos = 0; pos + 4 <= xlen && !found;) {
            unsigned id = wv__le16(x + pos), len = wv__le16(x + pos + 2);
            pos += 4;
            if (len > xlen - pos)
                break;
            if (id == 0x0001) {
                const unsigned char *p = x + pos;
                size_t left = len;
                uint64_t *f64[2] = {&lsize, &lcomp};
                for (int k = 0; k < 2; k++) {
                    if (*f64[k] != U32_ALL)
                        continue;
                    WV_CHECK(left >= 8, WV_CORRUPT,
                             "%s: member '%.200s': local ZIP64 extra field "
                             "too short",
                             src->name, e->name);
                    *f64[k] = wv__le64(p);
                    p += 8;
                    left -= 8;
                }
                found = true;
            }
            pos += len;
        }
    }
    WV_CHECK(lcrc == e->crc || (dd && lcrc == 0), WV_CORRUPT,
             "%s: member '%.200s': local header CRC-32 %08llx differs from "
             "the central directory's %08x",
             src->name, e->name, (unsigned long long)lcrc, (unsigned)e->crc);
    WV_CHECK((lcomp == e->comp_size && lsize == e->size) ||
                 (dd && lcomp == 0 && lsize == 0),
             WV_CORRUPT,
             "%s: member '%.200s': local header sizes %llu/%llu differ from "
             "the central directory's %llu/%llu (compressed/uncompressed)",
             src->name, e->name, (unsigned long long)lcomp,
             (unsigned long long)lsize, (unsigned long long)e->comp_size,
             (unsigned long long)e->size);
out:
    wv__free(x);
    return rc;
}

static int check_local(const struct wv__src *src, struct wv__zip_entry *e,
                       uint64_t cd_off, struct wv__err *err)
{
    int rc = WV_OK;
    unsigned char lh[LH_LEN];
    char *lname = NULL;
    uint64_t end;
    WV_CHECK(e->lh_off < cd_off && cd_off - e->lh_off >= LH_LEN, WV_CORRUPT,
             "%s: member '%.200s': local header offset %llu is out of range "
             "(central directory at %llu)",
             src->name, e->name, (unsigned long long)e->lh_off,
             (unsigned long long)cd_off);
    WV_TRY(wv__src_read(src, e->lh_off, lh, LH_LEN, err));
    WV_CHECK(wv__le32(lh) == SIG_LH, WV_CORRUPT,
             "%s: member '%.200s': bad local header signature at offset %llu",
             src->name, e->name, (unsigned long long)e->lh_off);
    uint16_t lflags = wv__le16(lh + 6), lmethod = wv__le16(lh + 8);
    size_t nlen = wv__le16(lh + 26), xlen = wv__le16(lh + 28);
    WV_CHECK(!(lflags & 0x41), WV_FORMAT,
             "%s: member '%.200s' is encrypted; encrypted zip members are "
             "not supported",
             src->name, e->name);
    WV_CHECK(lmethod == e->method, WV_CORRUPT,
             "%s: member '%.200s': local header method %u differs from the "
             "central directory's %u",
             src->name, e->name, lmethod, e->method);
    WV_CHECK((lflags & 0x08) == (e->flags & 0x08), WV_CORRUPT,
             "%s: member '%.200s': local header and central directory "
             "disagree on the data descriptor flag",
             src->name, e->name);
    e->data_off = e->lh_off + LH_LEN + nlen + xlen;
    WV_TRY(check_local_sizes(src, e, lh, nlen, xlen, cd_off, err));
    WV_CHECK(e->data_off <= cd_off &&
                 !wv__add_overflow(e->data_off, e->comp_size, &end) &&
                 end <= cd_off,
             WV_CORRUPT,
             "%s: member '%.200s': data [%llu, +%llu) runs past the start "
             "of the central directory at %llu",
             src->name, e->name, (unsigned long long)e->data_off,
             (unsigned long long)e->comp_size, (unsigned long long)cd_off);
    lname = wv__malloc(nlen + 1);
    WV_CHECK(lname != NULL, WV_NOMEM, "out of memory");
    WV_TRY(wv__src_read(src, e->lh_off + LH_LEN, lname, nlen, err));
    WV_CHECK(nlen == e->name_len && memcmp(lname, e->name, nlen) == 0,
             WV_CORRUPT,
             "%s: member '%.200s': local header names it '%.*s'", src->name,
             e->name, (int)(nlen > 200 ? 200 : nlen), lname);
out:
    wv__free(lname);
    return rc;
}

static int zip_open(struct wv__zip *z, const struct wv__src *src,
                    bool lazy, struct wv__err *err)
{
    int rc = WV_OK;
    struct eocd r = {0};
    unsigned char *cd_owned = NULL;
    const unsigned char *cd;
    struct wv__zip_entry **idx = NULL;
    uint64_t cd_end, need;

    memset(z, 0, sizeof *z);
    z->src = src;
    z->lazy = lazy;
    WV_TRY(find_eocd(src, &r, err));
    z->cd_off = r.cd_off;
    WV_CHECK(r.disk == 0 && r.cd_disk == 0 && r.n_disk == r.n_total,
             WV_FORMAT, "%s: multi-disk zip archives are not supported",
             src->name);
    WV_CHECK(!wv__add_overflow(r.cd_off, r.cd_size, &cd_end) &&
                 cd_end <= r.limit,
             WV_CORRUPT,
             "%s: central directory [%llu, +%llu) is out of range (end "
             "records start at %llu)",
             src->name, (unsigned long long)r.cd_off,
             (unsigned long long)r.cd_size, (unsigned long long)r.limit);
    WV_CHECK(!wv__mul_overflow(r.n_total, CD_LEN, &need) &&
                 need <= r.cd_size,
             WV_CORRUPT,
             "%s: central directory claims %llu entries but its %llu bytes "
             "hold at most %llu",
             src->name, (unsigned long long)r.n_total,
             (unsigned long long)r.cd_size,
             (unsigned long long)(r.cd_size / CD_LEN));
    if (r.n_total == 0)
        goto out;
    /* Both bounded by the file size, checked above. */
    z->ents = wv__calloc((size_t)r.n_total, sizeof *z->ents);
    WV_CHECK(z->ents != NULL, WV_NOMEM, "out of memory");
    if (src->map) {
        cd = src->map + r.cd_off;
    } else {
        cd_owned = wv__malloc((size_t)r.cd_size);
        WV_CHECK(cd_owned != NULL, WV_NOMEM, "out of memory");
        WV_TRY(wv__src_read(src, r.cd_off, cd_owned, (size_t)r.cd_size, err));
        cd = cd_owned;
    }
    size_t pos = 0, cd_len = (size_t)r.cd_size;
    for (uint64_t i = 0; i < r.n_total; i++) {
        struct wv__zip_entry *e = &z->ents[z->n_ents];
        WV_CHECK(cd_len - pos >= CD_LEN && wv__le32(cd + pos) == SIG_CD,
                 WV_CORRUPT,
                 "%s: central directory entry %llu: bad signature or "
                 "truncated",
                 src->name, (unsigned long long)i);
        const unsigned char *h = cd + pos;
        size_t nlen = wv__le16(h + 28), xlen = wv__le16(h + 30),
               clen = wv__le16(h + 32);
        WV_CHECK(cd_len - pos - CD_LEN >= nlen + xlen + clen, WV_CORRUPT,
                 "%s: central directory entry %llu runs past the directory",
                 src->name, (unsigned long long)i);
        const char *why = wv__path_name_bad((const char *)h + CD_LEN, nlen);
        if (why) {
            char esc[256];
            wv__esc_name((const char *)h + CD_LEN, nlen, esc, sizeof esc);
            WV_CORRUPT_BKPT("%s: member '%s' (central directory entry "
                            "%llu): unsafe name (%s)",
                            src->name, esc, (unsigned long long)i, why);
        }
        e->name = wv__strndup((const char *)h + CD_LEN, nlen);
        WV_CHECK(e->name != NULL, WV_NOMEM, "out of memory");
        e->name_len = nlen;
        z->n_ents++;
        e->flags = wv__le16(h + 8);
        e->method = wv__le16(h + 10);
        e->crc = wv__le32(h + 16);
        e->comp_size = wv__le32(h + 20);
        e->size = wv__le32(h + 24);
        e->lh_off = wv__le32(h + 42);
        uint32_t disk = wv__le16(h + 34);
        WV_CHECK(!(e->flags & 0x41) && e->method != 99, WV_FORMAT,
                 "%s: member '%.200s' is encrypted; encrypted zip members "
                 "are not supported",
                 src->name, e->name);
        WV_CHECK(e->method == WV__ZIP_STORED || e->method == WV__ZIP_DEFLATED,
                 WV_FORMAT,
                 "%s: member '%.200s' uses unknown compression method %u "
                 "(only stored and deflate are supported)",
                 src->name, e->name, e->method);
        WV_TRY(parse_extra(src, h + CD_LEN + nlen, xlen, e, &disk, err));
        WV_CHECK(disk == 0, WV_FORMAT,
                 "%s: multi-disk zip archives are not supported", src->name);
        if (e->method == WV__ZIP_STORED)
            WV_CHECK(e->comp_size == e->size, WV_CORRUPT,
                     "%s: member '%.200s' is stored but its compressed size "
                     "%llu differs from its size %llu",
                     src->name, e->name, (unsigned long long)e->comp_size,
                     (unsigned long long)e->size);
        else
            WV_CHECK(!wv__mul_overflow(e->comp_size, MAX_RATIO, &need) &&
                         e->size <= need,
                     WV_CORRUPT,
                     "%s: member '%.200s' declares %llu bytes from %llu "
                     "compressed, beyond deflate's maximum ratio of 1032:1 "
                     "(zip bomb)",
                     src->name, e->name, (unsigned long long)e->size,
                     (unsigned long long)e->comp_size);
        if (!lazy)
            WV_TRY(check_local(src, e, r.cd_off, err));
        else /* bounds the overlap check's sums below */
            WV_CHECK(e->lh_off < r.cd_off &&
                         r.cd_off - e->lh_off >= LH_LEN + e->name_len &&
                         e->comp_size <=
                             r.cd_off - e->lh_off - LH_LEN - e->name_len,
                     WV_CORRUPT,
                     "%s: member '%.200s': header at %llu and %llu bytes "
                     "of data run past the central directory at %llu",
                     src->name, e->name, (unsigned long long)e->lh_off,
                     (unsigned long long)e->comp_size,
                     (unsigned long long)r.cd_off);
        pos += CD_LEN + nlen + xlen + clen;
    }

    idx = wv__malloc(z->n_ents * sizeof *idx);
    WV_CHECK(idx != NULL, WV_NOMEM, "out of memory");
    for (size_t i = 0; i < z->n_ents; i++)
        idx[i] = &z->ents[i];
    qsort(idx, z->n_ents, sizeof *idx, cmp_name);
    for (size_t i = 1; i < z->n_ents; i++)
        WV_CHECK(cmp_name(&idx[i - 1], &idx[i]) != 0, WV_CORRUPT,
                 "%s: duplicate member name '%.200s'", src->name,
                 idx[i]->name);
    qsort(idx, z->n_ents, sizeof *idx, cmp_off);
    for (size_t i = 1; i < z->n_ents; i++)
        WV_CHECK((lazy ? idx[i - 1]->lh_off + LH_LEN + idx[i - 1]->name_len
                       : idx[i - 1]->data_off) +
                         idx[i - 1]->comp_size <=
                     idx[i]->lh_off,
                 WV_CORRUPT, "%s: members '%.120s' and '%.120s' overlap",
                 src->name, idx[i - 1]->name, idx[i]->name);
out:
    wv__free(cd_owned);
    wv__free(idx);
    if (rc != WV_OK)
        wv__zip_close(z);
    return rc;
}

int wv__zip_open(struct wv__zip *z, const struct wv__src *src,
                 struct wv__err *err)
{
    return zip_open(z, src, false, err);
}

int wv__zip_open_lazy(struct wv__zip *z, const struct wv__src *src,
                      struct wv__err *err)
{
    return zip_open(z, src, true, err);
}

static int inflate_all(const struct wv__src *src,
                       const struct wv__zip_entry *e, const unsigned char *in,
                       unsigned char *out, struct wv__err *err)
{
    int rc = WV_OK;
    z_stream zs;
    bool init = false;
    uint64_t in_left = e->comp_size, out_left = e->size;

    memset(&zs, 0, sizeof zs);
    WV_CHECK(inflateInit2(&zs, -15) == Z_OK, WV_NOMEM,
             "%s: member '%.200s': cannot initialise zlib", src->name,
             e->name);
    init = true;
    zs.next_in = (unsigned char *)(uintptr_t)in;
    zs.next_out = out;
    for (;;) {
        if (zs.avail_in == 0 && in_left > 0) {
            zs.avail_in = (uInt)(in_left > ZCHUNK ? ZCHUNK : in_left);
            in_left -= zs.avail_in;
        }
        if (zs.avail_out == 0 && out_left > 0) {
            zs.avail_out = (uInt)(out_left > ZCHUNK ? ZCHUNK : out_left);
            out_left -= zs.avail_out;
        }
        int z = inflate(&zs, Z_NO_FLUSH);
        if (z == Z_STREAM_END)
            break;
        if (z == Z_OK)
            continue;
        WV_CHECK(z != Z_BUF_ERROR || zs.avail_out != 0 || out_left != 0,
                 WV_CORRUPT,
                 "%s: member '%.200s' inflates to more than its declared "
                 "size of %llu bytes",
                 src->name, e->name, (unsigned long long)e->size);
        WV_CHECK(z != Z_BUF_ERROR, WV_CORRUPT,
                 "%s: member '%.200s': deflate stream is truncated (inflated "
                 "size mismatch: less than the declared %llu bytes)",
                 src->name, e->name, (unsigned long long)e->size);
        WV_CORRUPT_BKPT("%s: member '%.200s': corrupt deflate data: %s",
                        src->name, e->name,
                        zs.msg ? zs.msg : "inflate failed");
    }
    WV_CHECK(zs.avail_out == 0 && out_left == 0, WV_CORRUPT,
             "%s: member '%.200s': inflated size mismatch: the stream ends "
             "after %llu bytes but %llu are declared",
             src->name, e->name,
             (unsigned long long)(e->size - out_left - zs.avail_out),
             (unsigned long long)e->size);
    WV_CHECK(zs.avail_in == 0 && in_left == 0, WV_CORRUPT,
             "%s: member '%.200s': deflate stream ends %llu bytes before its "
             "compressed size",
             src->name, e->name,
             (unsigned long long)(in_left + zs.avail_in));
out:
    if (init)
        inflateEnd(&zs);
    return rc;
}

int wv__zip_entry_data(const struct wv__zip *z,
                       const struct wv__zip_entry *e,
                       const unsigned char **data, void **owned,
                       struct wv__err *err)
{
    int rc = WV_OK;
    const struct wv__src *src = z->src;
    const unsigned char *in = NULL;
    void *in_owned = NULL;
    unsigned char *out = NULL;

    struct wv__zip_entry checked;

    *data = NULL;
    *owned = NULL;
    if (z->lazy) { /* its local header is read now */
        checked = *e;
        WV_TRY(check_local(src, &checked, z->cd_off, err));
        e = &checked;
    }
    WV_TRY(wv__src_data(src, e->data_off, e->comp_size, &in, &in_owned,
                        err));
    if (e->method == WV__ZIP_STORED) {
        *data = in;
        *owned = in_owned;
        in_owned = NULL;
    } else {
        WV_CHECK(e->size < SIZE_MAX, WV_RANGE,
                 "%s: member '%.200s' is too large", src->name, e->name);
        WV_TRY(wv__expand_charge(src->ex, e->size, e->name, err));
        out = wv__malloc(e->size ? (size_t)e->size : 1);
        WV_CHECK(out != NULL, WV_NOMEM,
                 "%s: member '%.200s': out of memory for %llu bytes",
                 src->name, e->name, (unsigned long long)e->size);
        WV_TRY(inflate_all(src, e, in, out, err));
        *data = out;
        *owned = out;
        out = NULL;
    }
    /* A stored member borrowed from a mapping stays untouched until the
     * caller reads it (zero-copy open) unless the load asked for checksums
     * (WV_LOAD_CHECKSUMS: every CLI command does); everything read into
     * memory is CRC-checked. */
    bool lazy = e->method == WV__ZIP_STORED && *owned == NULL &&
                !src->check_sums;
    uint32_t crc = lazy ? e->crc : wv__crc32(0, *data, (size_t)e->size);
    WV_CHECK(crc == e->crc, WV_CORRUPT_CHECKSUM,
             "%s: member '%.200s': crc mismatch (computed %08x, recorded "
             "%08x)",
             src->name, e->name, (unsigned)crc, (unsigned)e->crc);
out:
    wv__free(in_owned);
    wv__free(out);
    if (rc != WV_OK) {
        wv__free(*owned);
        *owned = NULL;
        *data = NULL;
    }
    return rc;
}

/* ---- writer ------------------------------------------------------------- */

static void zfail(struct wv__zipw *w, int code, const char *msg)
{
    if (w->rc == WV_OK)
        w->rc = wv__seterr(w->err, code, "%s: %s", w->f->path, msg);
}

void wv__zipw_init(struct wv__zipw *w, struct wv__wfile *f,
                   struct wv__err *err)
{
    memset(w, 0, sizeof *w);
    w->f = f;
    w->err = err;
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

int wv__zipw_begin(struct wv__zipw *w, const char *name, int method,
                   uint64_t size_hint, size_t align)
{
    struct wv__zipw_ent *e;
    size_t nlen = strlen(name);
    unsigned char lh[LH_LEN + 20 + 4];
    size_t lx;

    if (w->rc != WV_OK)
        return w->rc;
    if (w->open || (method != WV__ZIP_STORED && method != WV__ZIP_DEFLATED) ||
        (align > 1 && method != WV__ZIP_STORED) || align > 4096) {
        zfail(w, WV_MISUSE, "bad zip entry request");
        return w->rc;
    }
    if (nlen == 0 || nlen > U16_ALL) {
        zfail(w, WV_RANGE, "zip member name is empty or longer than 65535");
        return w->rc;
    }
    const char *why = wv__path_name_bad(name, nlen);
    if (why) {
        char esc[256];
        wv__esc_name(name, nlen, esc, sizeof esc);
        if (w->rc == WV_OK)
            w->rc = wv__seterr(w->err, WV_FORMAT,
                               "%s: member '%s': unsafe name (%s)",
                               w->f->path, esc, why);
        return w->rc;
    }
    if (w->n_ents == w->cap_ents) {
        size_t cap = w->cap_ents ? w->cap_ents * 2 : 16;
        struct wv__zipw_ent *ne = wv__realloc(w->ents, cap * sizeof *ne);
        if (ne == NULL) {
            zfail(w, WV_NOMEM, "out of memory");
            return w->rc;
        }
        w->ents = ne;
        w->cap_ents = cap;
    }
    e = &w->ents[w->n_ents];
    memset(e, 0, sizeof *e);
    e->name = wv__strdup(name);
    if (e->name == NULL) {
        zfail(w, WV_NOMEM, "out of memory");
        return w->rc;
    }
    w->n_ents++;
    e->method = (uint16_t)method;
    e->lh_off = w->f->off;
    /* Deflate can expand incompressible data slightly (5 bytes per 16 KiB
     * stored block plus a few), so leave room in the bound. */
    uint64_t bound = size_hint;
    if (method == WV__ZIP_DEFLATED && bound != UINT64_MAX)
        bound = bound > UINT64_MAX / 2 ? UINT64_MAX : bound + bound / 1024 + 64;
    e->zip64 = bound >= U32_ALL;

    uint16_t flags = 0x0008 | (is_ascii(name) ? 0 : 0x0800);
    wv__put32(lh, SIG_LH);
    wv__put16(lh + 4, e->zip64 ? 45 : 20);
    wv__put16(lh + 6, flags);
    wv__put16(lh + 8, (uint16_t)method);
    wv__put16(lh + 10, 0);      /* 00:00:00 */
    wv__put16(lh + 12, 0x0021); /* 1980-01-01 */
    wv__put32(lh + 14, 0);
    wv__put32(lh + 18, e->zip64 ? U32_ALL : 0);
    wv__put32(lh + 22, e->zip64 ? U32_ALL : 0);
    wv__put16(lh + 26, (uint16_t)nlen);
    lx = 0;
    unsigned char *x = lh + LH_LEN;
    if (e->zip64) {
        wv__put16(x, 0x0001);
        wv__put16(x + 2, 16);
        wv__put64(x + 4, 0);
        wv__put64(x + 12, 0);
        lx = 20;
    }
    size_t pad = 0;
    if (align > 1) {
        uint64_t base = w->f->off + LH_LEN + nlen + lx + 4;
        pad = (size_t)((align - base % align) % align);
        wv__put16(x + lx, 0x4246); /* 'FB' */
        wv__put16(x + lx + 2, (uint16_t)pad);
        lx += 4;
    }
    wv__put16(lh + 28, (uint16_t)(lx + pad));
    wv__wfile_write(w->f, lh, LH_LEN);
    wv__wfile_write(w->f, name, nlen);
    wv__wfile_write(w->f, x, lx);
    for (size_t i = 0; i < pad; i++)
        wv__wfile_write(w->f, "Z", 1);

    w->data_start = w->f->off;
    if (method == WV__ZIP_DEFLATED) {
        z_stream *zs = wv__calloc(1, sizeof *zs);
        if (w->zbuf == NULL)
            w->zbuf = wv__malloc(ZBUF_SIZE);
        if (zs == NULL || w->zbuf == NULL) {
            wv__free(zs);
            zfail(w, WV_NOMEM, "out of memory");
            return w->rc;
        }
        if (deflateInit2(zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            wv__free(zs);
            zfail(w, WV_NOMEM, "cannot initialise zlib");
            return w->rc;
        }
        w->zs = zs;
        e->crc = 0;
    } else {
        w->f->crc_on = true;
        w->f->crc = 0;
    }
    w->open = true;
    return w->f->rc != WV_OK ? (w->rc = w->f->rc) : WV_OK;
}

/* Run deflate over the pending input with `flush`, writing full output
 * buffers to the file. */
static void pump(struct wv__zipw *w, int flush)
{
    z_stream *zs = w->zs;
    for (;;) {
        zs->next_out = w->zbuf;
        zs->avail_out = ZBUF_SIZE;
        int z = deflate(zs, flush);
        if (z == Z_STREAM_ERROR) {
            zfail(w, WV_ERROR, "deflate failed");
            return;
        }
        wv__wfile_write(w->f, w->zbuf, ZBUF_SIZE - zs->avail_out);
        if (flush == Z_FINISH ? z == Z_STREAM_END
                              : (zs->avail_out != 0 && zs->avail_in == 0))
            return;
        if (w->f->rc != WV_OK)
            return;
    }
}

void wv__zipw_write(struct wv__zipw *w, const void *p, size_t n)
{
    if (w->rc != WV_OK || !w->open)
        return;
    struct wv__zipw_ent *e = &w->ents[w->n_ents - 1];
    e->size += n;
    if (e->method == WV__ZIP_STORED) {
        wv__wfile_write(w->f, p, n);
        return;
    }
    e->crc = wv__crc32(e->crc, p, n);
    z_stream *zs = w->zs;
    const unsigned char *b = p;
    while (n > 0 && w->rc == WV_OK && w->f->rc == WV_OK) {
        size_t step = n > ZCHUNK ? ZCHUNK : n;
        zs->next_in = (unsigned char *)(uintptr_t)b;
        zs->avail_in = (uInt)step;
        pump(w, Z_NO_FLUSH);
        b += step;
        n -= step;
    }
}

static bool zipw_sink(void *arg, const void *p, size_t n)
{
    struct wv__zipw *w = arg;
    wv__zipw_write(w, p, n);
    return w->rc == WV_OK && w->f->rc == WV_OK;
}

void wv__zipw_tensor(struct wv__zipw *w, const struct wv_tensor *t,
                     wv_dtype to)
{
    if (w->rc != WV_OK || !w->open)
        return;
    int rc = wv__tensor_stream(t, to, zipw_sink, w);
    if (rc != WV_OK) /* a deferred tensor's source set its message */
        w->rc = rc != WV_NOMEM ? rc
                               : wv__seterr(w->err, WV_NOMEM, "out of memory");
}

int wv__zipw_end(struct wv__zipw *w)
{
    unsigned char dd[24];
    if (!w->open) {
        zfail(w, WV_MISUSE, "no zip entry is open");
        return w->rc;
    }
    struct wv__zipw_ent *e = &w->ents[w->n_ents - 1];
    if (e->method == WV__ZIP_DEFLATED) {
        if (w->rc == WV_OK)
            pump(w, Z_FINISH);
        deflateEnd(w->zs);
        wv__free(w->zs);
        w->zs = NULL;
    } else {
        e->crc = w->f->crc;
        w->f->crc_on = false;
    }
    w->open = false;
    e->comp_size = w->f->off - w->data_start;
    if (!e->zip64 && (e->size >= U32_ALL || e->comp_size >= U32_ALL))
        zfail(w, WV_RANGE, "zip member outgrew its size hint");
    if (w->rc != WV_OK)
        return w->rc;
    wv__put32(dd, SIG_DD);
    wv__put32(dd + 4, e->crc);
    if (e->zip64) {
        wv__put64(dd + 8, e->comp_size);
        wv__put64(dd + 16, e->size);
    } else {
        wv__put32(dd + 8, (uint32_t)e->comp_size);
        wv__put32(dd + 12, (uint32_t)e->size);
    }
    wv__wfile_write(w->f, dd, e->zip64 ? 24 : 16);
    return w->f->rc != WV_OK ? (w->rc = w->f->rc) : WV_OK;
}

int wv__zipw_finish(struct wv__zipw *w)
{
    unsigned char h[CD_LEN + 28];
    if (w->open)
        zfail(w, WV_MISUSE, "zip entry still open");
    if (w->rc != WV_OK)
        return w->rc;
    uint64_t cd_off = w->f->off;
    for (size_t i = 0; i < w->n_ents; i++) {
        const struct wv__zipw_ent *e = &w->ents[i];
        size_t nlen = strlen(e->name);
        unsigned char x[28];
        size_t xl = 4;
        bool big_u = e->size >= U32_ALL, big_c = e->comp_size >= U32_ALL,
             big_o = e->lh_off >= U32_ALL;
        if (big_u)
            wv__put64(x + (xl += 8) - 8, e->size);
        if (big_c)
            wv__put64(x + (xl += 8) - 8, e->comp_size);
        if (big_o)
            wv__put64(x + (xl += 8) - 8, e->lh_off);
        wv__put16(x, 0x0001);
        wv__put16(x + 2, (uint16_t)(xl - 4));
        if (xl == 4)
            xl = 0;
        uint16_t ver = (e->zip64 || xl) ? 45 : 20;
        wv__put32(h, SIG_CD);
        wv__put16(h + 4, (uint16_t)(0x0300 | ver)); /* made by Unix */
        wv__put16(h + 6, ver);
        wv__put16(h + 8, (uint16_t)(0x0008 | (is_ascii(e->name) ? 0 : 0x0800)));
        wv__put16(h + 10, e->method);
        wv__put16(h + 12, 0);
        wv__put16(h + 14, 0x0021);
        wv__put32(h + 16, e->crc);
        wv__put32(h + 20, big_c ? U32_ALL : (uint32_t)e->comp_size);
        wv__put32(h + 24, big_u ? U32_ALL : (uint32_t)e->size);
        wv__put16(h + 28, (uint16_t)nlen);
        wv__put16(h + 30, (uint16_t)xl);
        wv__put16(h + 32, 0);
        wv__put16(h + 34, 0);
        wv__put16(h + 36, 0);
        wv__put32(h + 38, 0100644u << 16);
        wv__put32(h + 42, big_o ? U32_ALL : (uint32_t)e->lh_off);
        wv__wfile_write(w->f, h, CD_LEN);
        wv__wfile_write(w->f, e->name, nlen);
        wv__wfile_write(w->f, x, xl);
    }
    uint64_t cd_size = w->f->off - cd_off;
    uint64_t n = w->n_ents;
    if (n >= U16_ALL || cd_off >= U32_ALL || cd_size >= U32_ALL) {
        unsigned char r[EOCD64_LEN + LOC64_LEN];
        uint64_t off64 = w->f->off;
        wv__put32(r, SIG_EOCD64);
        wv__put64(r + 4, EOCD64_LEN - 12);
        wv__put16(r + 12, 0x0300 | 45);
        wv__put16(r + 14, 45);
        wv__put32(r + 16, 0);
        wv__put32(r + 20, 0);
        wv__put64(r + 24, n);
        wv__put64(r + 32, n);
        wv__put64(r + 40, cd_size);
        wv__put64(r + 48, cd_off);
        unsigned char *l = r + EOCD64_LEN;
        wv__put32(l, SIG_LOC64);
        wv__put32(l + 4, 0);
        wv__put64(l + 8, off64);
        wv__put32(l + 16, 1);
        wv__wfile_write(w->f, r, sizeof r);
    }
    unsigned char eo[EOCD_LEN];
    wv__put32(eo, SIG_EOCD);
    wv__put16(eo + 4, 0);
    wv__put16(eo + 6, 0);
    wv__put16(eo + 8, (uint16_t)(n >= U16_ALL ? U16_ALL : n));
    wv__put16(eo + 10, (uint16_t)(n >= U16_ALL ? U16_ALL : n));
    wv__put32(eo + 12, cd_size >= U32_ALL ? U32_ALL : (uint32_t)cd_size);
    wv__put32(eo + 16, cd_off >= U32_ALL ? U32_ALL : (uint32_t)cd_off);
    wv__put16(eo + 20, 0);
    wv__wfile_write(w->f, eo, EOCD_LEN);
    return w->f->rc != WV_OK ? (w->rc = w->f->rc) : WV_OK;
}

void wv__zipw_release(struct wv__zipw *w)
{
    if (w->zs) {
        deflateEnd(w->zs);
        wv__free(w->zs);
        w->zs = NULL;
    }
    if (w->f && w->open)
        w->f->crc_on = false;
    for (size_t i = 0; i < w->n_ents; i++)
        wv__free(w->ents[i].name);
    wv__free(w->ents);
    wv__free(w->zbuf);
    memset(w, 0, sizeof *w);
}
