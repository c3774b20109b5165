/*
 * pb.c -- the protocol-buffer wire reader and writer declared in pb.h
 * (see there why it is ours and which bounds it keeps).
 *
 * Wire format: a message is a sequence of (tag, value) with tag = varint
 * (field_number << 3 | wire_type). Wire types: 0 varint (1-10 bytes, 7 bits
 * each, low group first, high bit = more), 1 fixed 64-bit little-endian,
 * 2 length-delimited (varint length, then that many bytes: strings, bytes,
 * sub-messages, packed repeated scalars), 5 fixed 32-bit little-endian;
 * 3 and 4 (groups) are refused.
 */
#include "core.h"
#include "pb.h"

void wv__pb_init(struct wv__pb *r, const void *p, size_t n)
{
    r->p = p;
    r->end = r->p + n;
    r->depth = 0;
}

int wv__pb_varint(const unsigned char **p, const unsigned char *end,
                  uint64_t *out)
{
    const unsigned char *q = *p;
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (q == end)
            return -1;
        unsigned char c = *q++;
        /* The 10th byte holds bit 63 only. */
        if (i == 9 && c > 1)
            return -1;
        v |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *out = v;
            *p = q;
            return 0;
        }
    }
    return -1;
}

size_t wv__pb_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int wv__pb_next(struct wv__pb *r, struct wv__pb_field *f, const char **why)
{
    uint64_t tag, v;
    if (r->p == r->end)
        return 0;
    if (wv__pb_varint(&r->p, r->end, &tag) != 0) {
        *why = "truncated or overlong varint in a field tag";
        return -1;
    }
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) {
        *why = "field number 0 or above 2^29-1";
        return -1;
    }
    f->num = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    f->v = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->wire) {
    case WV__PB_VARINT:
        if (wv__pb_varint(&r->p, r->end, &f->v) != 0) {
            *why = "truncated or overlong varint";
            return -1;
        }
        return 1;
    case WV__PB_I64:
        if (r->end - r->p < 8) {
            *why = "truncated fixed64 field";
            return -1;
        }
        f->v = wv__le64(r->p);
        r->p += 8;
        return 1;
    case WV__PB_I32:
        if (r->end - r->p < 4) {
            *why = "truncated fixed32 field";
            return -1;
        }
        f->v = wv__le32(r->p);
        r->p += 4;
        return 1;
    case WV__PB_LEN:
        if (wv__pb_varint(&r->p, r->end, &v) != 0) {
            *why = "truncated or overlong varint in a length";
            return -1;
        }
        if (v > (uint64_t)(r->end - r->p)) {
            *why = "length-delimited field longer than its message";
            return -1;
        }
        f->data = r->p;
        f->len = (size_t)v;
        r->p += v;
        return 1;
    default:
        *why = "group or unknown wire type";
        return -1;
    }
}

int wv__pb_sub(const struct wv__pb *parent, const struct wv__pb_field *f,
               struct wv__pb *child, const char **why)
{
    if (f->wire != WV__PB_LEN) {
        *why = "a sub-message field is not length-delimited";
        return -1;
    }
    if (parent->depth + 1 > WV__PB_MAX_DEPTH) {
        *why = "messages nested too deeply";
        return -1;
    }
    child->p = f->data;
    child->end = f->data + f->len;
    child->depth = parent->depth + 1;
    return 0;
}

/* ---- writing ------------------------------------------------------------ */

void wv__pb_put_varint(struct wv__buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    wv__buf_add(b, tmp, n);
}

void wv__pb_put_tag(struct wv__buf *b, uint32_t num, int wire)
{
    wv__pb_put_varint(b, ((uint64_t)num << 3) | (uint64_t)wire);
}

void wv__pb_put_uint(struct wv__buf *b, uint32_t num, uint64_t v)
{
    wv__pb_put_tag(b, num, WV__PB_VARINT);
    wv__pb_put_varint(b, v);
}

void wv__pb_put_fixed32(struct wv__buf *b, uint32_t num, uint32_t v)
{
    unsigned char tmp[4];
    wv__put32(tmp, v);
    wv__pb_put_tag(b, num, WV__PB_I32);
    wv__buf_add(b, tmp, 4);
}

void wv__pb_put_bytes(struct wv__buf *b, uint32_t num, const void *p,
                      size_t n)
{
    wv__pb_put_tag(b, num, WV__PB_LEN);
    wv__pb_put_varint(b, n);
    wv__buf_add(b, p, n);
}
