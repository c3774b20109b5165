/*
 * t_pb.c -- the bounded protocol-buffer wire reader (src/formats/pb.c):
 * every wire type, the 10-byte varint cap, lengths bounded by the
 * enclosing message, the nesting limit, refused groups, and the writer
 * feeding the reader.
 */
#include "wv_int.h"
#include "wvtest.h"
#include "../../src/formats/pb.h"

TEST_IMPL(pb_wire_types)
{
    struct wv__buf b = {0};
    wv__pb_put_uint(&b, 1, 300);
    wv__pb_put_fixed32(&b, 6, 0xdeadbeefu);
    wv__pb_put_bytes(&b, 7, "abc", 3);
    wv__pb_put_uint(&b, 0x1fffffff, UINT64_MAX);
    unsigned char f64[9] = {0x21 /* field 4, wire 1 */, 1, 2, 3, 4, 5, 6, 7,
                            8};
    wv__buf_add(&b, f64, sizeof f64);
    ASSERT(!b.oom);
    struct wv__pb r;
    struct wv__pb_field f;
    const char *why = NULL;
    wv__pb_init(&r, b.p, b.len);
    ASSERT_EQ(wv__pb_next(&r, &f, &why), 1);
    ASSERT_EQ(f.num, 1);
    ASSERT_EQ(f.wire, WV__PB_VARINT);
    ASSERT_EQ(f.v, 300);
    ASSERT_EQ(wv__pb_next(&r, &f, &why), 1);
    ASSERT_EQ(f.num, 6);
    ASSERT_EQ(f.wire, WV__PB_I32);
    ASSERT_EQ(f.v, 0xdeadbeefu);
    ASSERT_EQ(wv__pb_next(&r, &f, &why), 1);
    ASSERT_EQ(f.wire, WV__PB_LEN);
    ASSERT_EQ(f.len, 3);
    ASSERT_MEMEQ(f.data, "abc", 3);
    ASSERT_EQ(wv__pb_next(&r, &f, &why), 1);
    ASSERT_EQ(f.num, 0x1fffffff);
    ASSERT(f.v == UINT64_MAX);
    ASSERT_EQ(wv__pb_next(&r, &f, &why), 1);
    ASSERT_EQ(f.num, 4);
    ASSERT(f.v == 0x0807060504030201ull);
    ASSERT_EQ(wv__pb_next(&r, &f, &why), 0);
    ASSERT_EQ(wv__pb_varint_len(0), 1);
    ASSERT_EQ(wv__pb_varint_len(127), 1);
    ASSERT_EQ(wv__pb_varint_len(128), 2);
    ASSERT_EQ(wv__pb_varint_len(UINT64_MAX), 10);
    wv__buf_release(&b);
}

static int one(const void *p, size_t n, const char **why)
{
    struct wv__pb r;
    struct wv__pb_field f;
    int rc;
    wv__pb_init(&r, p, n);
    while ((rc = wv__pb_next(&r, &f, why)) == 1)
        ;
    return rc;
}

TEST_IMPL(pb_rejects)
{
    const char *why = NULL;
    /* varints: 10 bytes is the cap, the 10th holds one bit */
    static const unsigned char ten[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0x01};
    static const unsigned char ten2[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0x02};
    static const unsigned char eleven[] = {0x08, 0x80, 0x80, 0x80, 0x80,
                                           0x80, 0x80, 0x80, 0x80, 0x80,
                                           0x80, 0x00};
    static const unsigned char trunc[] = {0x08, 0x80};
    static const unsigned char lenpast[] = {0x12, 0x05, 'a', 'b'};
    static const unsigned char f32[] = {0x0d, 1, 2, 3};
    static const unsigned char f64[] = {0x09, 1, 2, 3, 4, 5, 6, 7};
    static const unsigned char group[] = {0x0b, 0x0c};
    static const unsigned char field0[] = {0x00, 0x01};
    static const unsigned char wire6[] = {0x0e, 0x01};
    ASSERT_EQ(one(ten, sizeof ten, &why), 0);
    ASSERT_EQ(one(ten2, sizeof ten2, &why), -1);
    ASSERT_CONTAINS(why, "varint");
    ASSERT_EQ(one(eleven, sizeof eleven, &why), -1);
    ASSERT_CONTAINS(why, "varint");
    ASSERT_EQ(one(trunc, sizeof trunc, &why), -1);
    ASSERT_CONTAINS(why, "truncated");
    ASSERT_EQ(one(lenpast, sizeof lenpast, &why), -1);
    ASSERT_CONTAINS(why, "longer than its message");
    ASSERT_EQ(one(f32, sizeof f32, &why), -1);
    ASSERT_CONTAINS(why, "fixed32");
    ASSERT_EQ(one(f64, sizeof f64, &why), -1);
    ASSERT_CONTAINS(why, "fixed64");
    ASSERT_EQ(one(group, sizeof group, &why), -1);
    ASSERT_CONTAINS(why, "group");
    ASSERT_EQ(one(field0, sizeof field0, &why), -1);
    ASSERT_EQ(one(wire6, sizeof wire6, &why), -1);

    /* A sub-message is bounded by its parent: its own length cannot
     * reach past the parent's end even if the buffer goes on. */
    static const unsigned char nested[] = {0x0a, 0x02, 0x12, 0x03,
                                           'x', 'y', 'z'};
    struct wv__pb r, c;
    struct wv__pb_field f;
    wv__pb_init(&r, nested, 4); /* the outer message is 4 bytes */
    ASSERT_EQ(wv__pb_next(&r, &f, &why), 1);
    ASSERT_EQ(wv__pb_sub(&r, &f, &c, &why), 0);
    ASSERT_EQ(wv__pb_next(&c, &f, &why), -1);
    ASSERT_CONTAINS(why, "longer than its message");

    /* Depth limit. */
    r.depth = WV__PB_MAX_DEPTH;
    r.p = nested;
    r.end = nested + 4;
    ASSERT_EQ(wv__pb_next(&r, &f, &why), 1);
    ASSERT_EQ(wv__pb_sub(&r, &f, &c, &why), -1);
    ASSERT_CONTAINS(why, "nested too deeply");
    /* A varint field is not a message. */
    static const unsigned char vi[] = {0x08, 0x01};
    wv__pb_init(&r, vi, 2);
    ASSERT_EQ(wv__pb_next(&r, &f, &why), 1);
    ASSERT_EQ(wv__pb_sub(&r, &f, &c, &why), -1);
}
