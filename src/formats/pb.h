/*
 * pb.h -- a bounded reader (and a small writer) for the protocol-buffer
 * wire format, shared by the formats stored as protobuf messages
 * (TensorFlow tensor bundles, and later ONNX).
 *
 * Why our own and not protobuf-c: the formats need only a handful of
 * messages, and we read them field by field as they come, so generated code
 * (a .proto compiler step in the build) buys nothing; there is no new
 * library dependency to package, audit and keep patched; and every bound is
 * ours to choose and to test: a varint is at most 10 bytes, a
 * length-delimited field must fit in what remains of the message that
 * holds it (so no sub-message can reach past its parent), nesting is
 * limited to WV__PB_MAX_DEPTH, and nothing is allocated at all: fields are
 * views into the caller's buffer. protobuf-c's unpacker, by contrast,
 * allocates the whole message tree up front and applies its own limits.
 *
 * Reading: wv__pb_init() over a message's bytes, then wv__pb_next() until
 * it returns 0 (end) or -1 (malformed, with a reason for the caller's
 * message). Unknown fields are simply not looked at by the caller; their
 * bytes have been bounds-checked like any other. Groups (wire types 3 and
 * 4, deprecated since proto2) are refused.
 */
#ifndef WV_PB_H
#define WV_PB_H

#include "core.h"

#define WV__PB_VARINT 0
#define WV__PB_I64 1
#define WV__PB_LEN 2
#define WV__PB_I32 5

#define WV__PB_MAX_DEPTH 64

struct wv__pb {
    const unsigned char *p, *end;
    int depth; /* 0 for the outermost message */
};

struct wv__pb_field {
    uint32_t num;  /* field number, 1 .. 2^29-1                        */
    int wire;      /* WV__PB_VARINT, _I64, _LEN or _I32                 */
    uint64_t v;    /* the value of VARINT, I64 and I32 fields           */
    const unsigned char *data; /* LEN: the bytes (inside the message)   */
    size_t len;
};

void wv__pb_init(struct wv__pb *r, const void *p, size_t n);
/* The next field: 1, 0 at the end of the message, -1 if malformed (*why
 * says what, e.g. "truncated varint"). */
int wv__pb_next(struct wv__pb *r, struct wv__pb_field *f, const char **why);
/* A reader over LEN field f as a nested message: -1 (*why) if nesting
 * would pass WV__PB_MAX_DEPTH or f is not length-delimited. */
int wv__pb_sub(const struct wv__pb *parent, const struct wv__pb_field *f,
               struct wv__pb *child, const char **why);
/* One varint at *p (at most 10 bytes, not past end, the 10th byte at most
 * 1): 0 and *p advanced, or -1. */
int wv__pb_varint(const unsigned char **p, const unsigned char *end,
                  uint64_t *out);
/* Bytes a varint of v takes (1 .. 10). */
size_t wv__pb_varint_len(uint64_t v);

/* Writing into a growable buffer (its oom flag reports failure). */
void wv__pb_put_varint(struct wv__buf *b, uint64_t v);
void wv__pb_put_tag(struct wv__buf *b, uint32_t num, int wire);
void wv__pb_put_uint(struct wv__buf *b, uint32_t num, uint64_t v);
void wv__pb_put_fixed32(struct wv__buf *b, uint32_t num, uint32_t v);
void wv__pb_put_bytes(struct wv__buf *b, uint32_t num, const void *p,
                      size_t n);

#endif /* WV_PB_H */
