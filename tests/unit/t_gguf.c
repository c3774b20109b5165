/*
 * t_gguf.c -- GGUF reading and writing and the ggml block dtypes.
 *
 * Round trips of every dtype GGUF holds (plain and all 24 block types)
 * through mmap and pread loads, the real llama.cpp fixture with exact
 * names, dtypes, shapes, values and KVs, byte-identical rewrites, the
 * typed metadata encoding (every type, NaN payloads, raw bytes, fallbacks),
 * foreign metadata kept exactly through the weightvault.foreign_keys
 * marker (and hand-made markers), general.alignment, Q8_0/Q4_0 dequantisation against hand-computed
 * values, and refusals with their messages.
 */
#include "wv_int.h"
#include "wvtest.h"
#include "wvsets.h"

static const char *fixture(void)
{
    return wvtest_fixture("gguf", "stories260K.gguf");
}

static const wv_dtype plain_types[] = {WV_F32, WV_F16, WV_BF16, WV_F64,
                                       WV_I8,  WV_I16, WV_I32,  WV_I64};

static float f32_at(const wv_tensor *t, size_t i)
{
    float f;
    memcpy(&f, (const unsigned char *)wv_tensor_data(t) + 4 * i, 4);
    return f;
}

TEST_IMPL(gguf_block_dtypes)
{
    static const struct {
        wv_dtype dt;
        const char *name;
        size_t be, bb;
    } want[] = {
        {WV_Q4_0, "Q4_0", 32, 18},       {WV_Q4_1, "Q4_1", 32, 20},
        {WV_Q5_0, "Q5_0", 32, 22},       {WV_Q5_1, "Q5_1", 32, 24},
        {WV_Q8_0, "Q8_0", 32, 34},       {WV_Q8_1, "Q8_1", 32, 36},
        {WV_Q2_K, "Q2_K", 256, 84},      {WV_Q3_K, "Q3_K", 256, 110},
        {WV_Q4_K, "Q4_K", 256, 144},     {WV_Q5_K, "Q5_K", 256, 176},
        {WV_Q6_K, "Q6_K", 256, 210},     {WV_Q8_K, "Q8_K", 256, 292},
        {WV_IQ2_XXS, "IQ2_XXS", 256, 66}, {WV_IQ2_XS, "IQ2_XS", 256, 74},
        {WV_IQ3_XXS, "IQ3_XXS", 256, 98}, {WV_IQ1_S, "IQ1_S", 256, 50},
        {WV_IQ4_NL, "IQ4_NL", 32, 18},   {WV_IQ3_S, "IQ3_S", 256, 110},
        {WV_IQ2_S, "IQ2_S", 256, 82},    {WV_IQ4_XS, "IQ4_XS", 256, 136},
        {WV_IQ1_M, "IQ1_M", 256, 56},    {WV_TQ1_0, "TQ1_0", 256, 54},
        {WV_TQ2_0, "TQ2_0", 256, 66},    {WV_MXFP4, "MXFP4", 32, 17},
    };
    size_t be, bb;
    wv_dtype dt;
    ASSERT_EQ(sizeof want / sizeof want[0], 24);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ASSERT_STREQ(wv_dtype_name(want[i].dt), want[i].name);
        ASSERT_OK(wv_dtype_from_name(want[i].name, &dt));
        ASSERT_EQ(dt, want[i].dt);
        ASSERT_EQ(wv_dtype_size(want[i].dt), 0);
        ASSERT_OK(wv_dtype_block(want[i].dt, &be, &bb));
        ASSERT_EQ(be, want[i].be);
        ASSERT_EQ(bb, want[i].bb);
        ASSERT(!wv_dtype_is_float(want[i].dt));
    }
    ASSERT_OK(wv_dtype_block(WV_F32, &be, &bb));
    ASSERT_EQ(be, 1);
    ASSERT_EQ(bb, 4);
    ASSERT_EQ(wv_dtype_block(WV_DTYPE_INVALID, &be, &bb), WV_MISUSE);
    ASSERT_EQ(be, 0);

    /* Shapes: the innermost extent must be a multiple of the block. */
    wv_model *m;
    unsigned char buf[34 * 4] = {0};
    uint64_t s2[2] = {2, 64}, bad[2] = {4, 16}, s0[1] = {0};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "q", WV_Q8_0, 2, s2, buf, 34 * 4,
                           WV_DATA_COPY));
    ASSERT_EQ(wv_tensor_numel(wv_model_find(m, "q")), 128);
    ASSERT_EQ(wv_model_add(m, "b", WV_Q8_0, 2, bad, buf, 34 * 2,
                           WV_DATA_COPY),
              WV_RANGE);
    ASSERT_EQ(wv_model_add(m, "s", WV_Q8_0, 0, NULL, buf, 34,
                           WV_DATA_COPY),
              WV_RANGE);
    ASSERT_EQ(wv_model_add(m, "w", WV_Q8_0, 2, s2, buf, 34 * 3,
                           WV_DATA_COPY),
              WV_RANGE);
    ASSERT_OK(wv_model_add(m, "e", WV_Q6_K, 1, s0, NULL, 0, WV_DATA_COPY));
    wv_model_free(m);
}

TEST_IMPL(gguf_roundtrip_all_dtypes)
{
    wv_model *m, *r;
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    char name[32];
    unsigned seed = 1;
    ASSERT_OK(wv_model_new(&m));
    for (size_t i = 0; i < sizeof plain_types / sizeof plain_types[0];
         i++) {
        uint64_t s[3] = {2, 3, 5};
        snprintf(name, sizeof name, "p.%s", wv_dtype_name(plain_types[i]));
        ASSERT_OK(wvtest_add_pattern(m, name, plain_types[i], 3, s, seed++));
    }
    for (int dt = WV_Q4_0; dt < WV__DTYPE_COUNT; dt++) {
        size_t be, bb;
        wv_dtype_block((wv_dtype)dt, &be, &bb);
        uint64_t s[2] = {3, 2 * be};
        snprintf(name, sizeof name, "q.%s", wv_dtype_name((wv_dtype)dt));
        ASSERT_OK(wvtest_add_pattern(m, name, (wv_dtype)dt, 2, s, seed++));
    }
    uint64_t s4[4] = {1, 2, 3, 4}, s0[2] = {0, 7};
    ASSERT_OK(wvtest_add_pattern(m, "four.d", WV_F32, 4, s4, 9));
    ASSERT_OK(wvtest_add_pattern(m, "scalar", WV_F64, 0, NULL, 10));
    ASSERT_OK(wvtest_add_pattern(m, "empty", WV_F16, 2, s0, 11));
    ASSERT_OK(wv_model_set_meta(m, "gguf.general.architecture",
                                "str:\"test\""));
    so.format = WV_FMT_GGUF;
    const char *p1 = wvtest_path("all.gguf"), *p2 = wvtest_path("all2.gguf");
    ASSERT_OK(wv_model_save(m, p1, &so));
    for (int mode = 0; mode < 2; mode++) {
        wv_load_opts lo = WV_LOAD_OPTS_INIT;
        lo.flags = mode ? WV_LOAD_PREAD : WV_LOAD_MMAP;
        ASSERT_OK(wv_model_load(p1, &lo, &r));
        ASSERT_STREQ(wv_model_source_format(r), "gguf");
        ASSERT(wvf_same(m, r, WVF_META_ORDER));
        if (mode == 1) {
            /* Rewriting what we wrote is byte-identical. */
            size_t n1, n2;
            ASSERT_OK(wv_model_save(r, p2, &so));
            unsigned char *b1 = wvtest_read_file(p1, &n1);
            unsigned char *b2 = wvtest_read_file(p2, &n2);
            ASSERT(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
            free(b1);
            free(b2);
        }
        wv_model_free(r);
    }
    wv_model_free(m);
}

TEST_IMPL(gguf_fixture)
{
    wv_model *m, *r;
    const wv_tensor *t;
    ASSERT_OK(wv_model_load(fixture(), NULL, &m));
    ASSERT_STREQ(wv_model_source_format(m), "gguf");
    ASSERT_EQ(wv_model_count(m), 48);
    ASSERT_EQ(wv_model_meta_count(m), 19);
    for (size_t i = 0; i < 48; i++)
        ASSERT_EQ(wv_tensor_dtype(wv_model_tensor(m, i)), WV_F32);
    t = wv_model_tensor(m, 0);
    ASSERT_STREQ(wv_tensor_name(t), "token_embd.weight");
    ASSERT_EQ(wv_tensor_ndim(t), 2);
    ASSERT_EQ(wv_tensor_shape(t)[0], 512);
    ASSERT_EQ(wv_tensor_shape(t)[1], 64);
    ASSERT(f32_at(t, 0) == -0.29474878311157227f);
    ASSERT(f32_at(t, 1) == 0.5618956089019775f);
    t = wv_model_tensor(m, 4);
    ASSERT_STREQ(wv_tensor_name(t), "blk.0.attn_k.weight");
    ASSERT_EQ(wv_tensor_shape(t)[0], 32);
    ASSERT_EQ(wv_tensor_shape(t)[1], 64);
    ASSERT(f32_at(t, 0) == 0.2161301076412201f);
    t = wv_model_find(m, "output_norm.weight");
    ASSERT_NOT_NULL(t);
    ASSERT_EQ(wv_tensor_ndim(t), 1);
    ASSERT_EQ(wv_tensor_shape(t)[0], 64);
    ASSERT(f32_at(t, 0) == 2.4583089351654053f);
    t = wv_model_tensor(m, 47);
    ASSERT_STREQ(wv_tensor_name(t), "blk.4.ffn_norm.weight");
    ASSERT(f32_at(t, 1) == 0.9257742166519165f);

    ASSERT_STREQ(wv_model_get_meta(m, "gguf.general.architecture"),
                 "str:\"llama\"");
    ASSERT_STREQ(wv_model_get_meta(m, "gguf.llama.block_count"), "u32:5");
    ASSERT_STREQ(wv_model_get_meta(
                     m, "gguf.llama.attention.layer_norm_rms_epsilon"),
                 "f32:9.99999975e-06");
    ASSERT_STREQ(wv_model_get_meta(m, "gguf.tokenizer.ggml.padding_token_id"),
                 "u32:4294967295");
    const char *tok = wv_model_get_meta(m, "gguf.tokenizer.ggml.tokens");
    ASSERT_NOT_NULL(tok);
    ASSERT(strncmp(tok, "str[]:[\"<unk>\",\"<s>\",\"</s>\",\"<0x00>\"", 35) ==
           0);
    ASSERT_NOT_NULL(
        strstr(wv_model_get_meta(m, "gguf.tokenizer.ggml.token_type"),
               "i32[]:[2,3,3,6,"));

    /* Byte-identical rewrite, also from a pread load. */
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    lo.flags = WV_LOAD_PREAD;
    ASSERT_OK(wv_model_load(fixture(), &lo, &r));
    ASSERT(wvf_same(m, r, WVF_META_ORDER));
    const char *out = wvtest_path("fix.gguf");
    ASSERT_OK(wv_model_save(r, out, &so));
    size_t n1, n2;
    unsigned char *b1 = wvtest_read_file(fixture(), &n1);
    unsigned char *b2 = wvtest_read_file(out, &n2);
    ASSERT(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
    wv_model_free(r);

    /* Through safetensors' __metadata__ and back: same KVs. */
    const char *st = wvtest_path("fix.safetensors"), *g2 = wvtest_path("fix2.gguf");
    ASSERT_OK(wv_model_save(m, st, NULL));
    ASSERT_OK(wv_model_load(st, NULL, &r));
    ASSERT_OK(wv_model_save(r, g2, NULL));
    wv_model_free(r);
    ASSERT_OK(wv_model_load(g2, NULL, &r));
    ASSERT_EQ(wv_model_meta_count(r), 19);
    for (size_t i = 0; i < 19; i++) {
        const char *k1, *v1, *k2, *v2;
        wv_model_meta(m, i, &k1, &v1);
        wv_model_meta(r, i, &k2, &v2);
        ASSERT_STREQ(k1, k2);
        ASSERT_STREQ(v1, v2);
    }
    wv_model_free(r);
    wv_model_free(m);
}

TEST_IMPL(gguf_metadata_encoding)
{
    static const char *const typed[][2] = {
        {"gguf.a.u8", "u8:255"},
        {"gguf.a.i8", "i8:-128"},
        {"gguf.a.u16", "u16:65535"},
        {"gguf.a.i16", "i16:-32768"},
        {"gguf.a.u32", "u32:4294967295"},
        {"gguf.a.i32", "i32:-2147483648"},
        {"gguf.a.u64", "u64:18446744073709551615"},
        {"gguf.a.i64", "i64:-9223372036854775808"},
        {"gguf.a.f32", "f32:0.100000001"},
        {"gguf.a.f32inf", "f32:-inf"},
        {"gguf.a.f32neg0", "f32:-0"},
        {"gguf.a.f32nan", "f32:nan:0x7fc01234"},
        {"gguf.a.f64", "f64:0.10000000000000001"},
        {"gguf.a.f64nan", "f64:nan:0xfff0000000000001"},
        {"gguf.a.bool", "bool:true"},
        {"gguf.a.str", "str:\"caf\xc3\xa9 \\udcff\\\"\\\\\\n\\u0001\""},
        {"gguf.a.arr_u8", "u8[]:[0,1,255]"},
        {"gguf.a.arr_empty", "i64[]:[]"},
        {"gguf.a.arr_f32", "f32[]:[1.5,-2.25,nan:0x7f800001]"},
        {"gguf.a.arr_str", "str[]:[\"\",\"a,b\",\"]\",\"\\udc80\"]"},
        {"gguf.a.arr_bool", "bool[]:[false,true]"},
    };
    /* Not in the encoding: written as foreign string KVs under the full
     * key, and read back as they were. */
    static const char *const fallback[][2] = {
        {"gguf.b.bad_type", "x32:1"},
        {"gguf.b.range", "u8:256"},
        {"gguf.b.unsigned_neg", "u32:-1"},
        {"gguf.b.trailing", "u32:1 "},
        {"gguf.b.lone_surrogate", "str:\"\\ud800\""},
        {"gguf.b.unterminated", "str[]:[\"a\""},
        {"gguf.b.nan_len", "f32:nan:0x7fc0"},
        {"gguf.b.float_junk", "f64:1.5x"},
        {"keras.model_config", "{\"a\": [1]}"},
        {"raw", "caf\xc3\xa9 \xe2\x98\x83\x01\"\\,]"},
    };
    wv_model *m, *r, *r2;
    ASSERT_OK(wv_model_new(&m));
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++)
        ASSERT_OK(wv_model_set_meta(m, typed[i][0], typed[i][1]));
    for (size_t i = 0; i < sizeof fallback / sizeof fallback[0]; i++)
        ASSERT_OK(wv_model_set_meta(m, fallback[i][0], fallback[i][1]));
    /* Same GGUF key as gguf.a.u8: the first wins. */
    ASSERT_OK(wv_model_set_meta(m, "a.u8", "dropped"));
    const char *p = wvtest_path("meta.gguf"), *p2 = wvtest_path("meta2.gguf");
    ASSERT_OK(wv_model_save(m, p, NULL));
    ASSERT_OK(wv_model_load(p, NULL, &r));
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++)
        ASSERT_STREQ(wv_model_get_meta(r, typed[i][0]), typed[i][1]);
    for (size_t i = 0; i < sizeof fallback / sizeof fallback[0]; i++) {
        char key[128];
        snprintf(key, sizeof key, "gguf.%s", fallback[i][0]);
        ASSERT_STREQ(wv_model_get_meta(r, fallback[i][0]), fallback[i][1]);
        ASSERT(wv_model_get_meta(r, key) == NULL);
    }
    ASSERT(wv_model_get_meta(r, "gguf.gguf.a.u8") == NULL);
    ASSERT(wv_model_get_meta(r, "gguf." "weightvault.foreign_keys") == NULL);
    ASSERT_EQ(wv_model_meta_count(r), sizeof typed / sizeof typed[0] +
                                          sizeof fallback / sizeof fallback[0]);
    /* Same order as written, and a rewrite is byte-identical. */
    for (size_t i = 0; i < wv_model_meta_count(r); i++) {
        const char *k1, *v1, *k2, *v2;
        ASSERT_OK(wv_model_meta(m, i, &k1, &v1));
        ASSERT_OK(wv_model_meta(r, i, &k2, &v2));
        ASSERT_STREQ(k1, k2);
    }
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    lo.flags = WV_LOAD_PREAD;
    ASSERT_OK(wv_model_save(r, p2, NULL));
    ASSERT_OK(wv_model_load(p2, &lo, &r2));
    ASSERT_EQ(wv_model_meta_count(r2), wv_model_meta_count(r));
    ASSERT_STREQ(wv_model_get_meta(r2, "raw"), fallback[9][1]);
    wv_model_free(r2);
    size_t n1, n2;
    unsigned char *b1 = wvtest_read_file(p, &n1);
    unsigned char *b2 = wvtest_read_file(p2, &n2);
    ASSERT(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0);
    free(b1);
    free(b2);
    wv_model_free(r);
    wv_model_free(m);
}

/* A marker written by hand (a typed "gguf." entry, so no foreign entry
 * takes its place): a listed key that is not a string, missing, not
 * UTF-8 text, or whose plain key is taken stays "gguf.<key>"; a marker that is not a string
 * array is ordinary metadata; metadata that would take the marker's key
 * beside foreign entries is refused. */
TEST_IMPL(gguf_foreign_marker)
{
    wv_model *m, *r;
    const char *p = wvtest_path("marker.gguf");
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_set_meta(m, "gguf.n", "u32:7"));
    ASSERT_OK(wv_model_set_meta(m, "gguf.t", "str:\"x\""));
    ASSERT_OK(wv_model_set_meta(m, "gguf.u", "str:\"y\""));
    ASSERT_OK(wv_model_set_meta(m, "gguf.gguf.u", "str:\"z\""));
    ASSERT_OK(wv_model_set_meta(m, "gguf.v", "str:\"\\udcff\""));
    ASSERT_OK(wv_model_set_meta(m, "gguf.weightvault.foreign_keys",
                                "str[]:[\"n\",\"gone\",\"t\",\"gguf.u\","
                                "\"v\"]"));
    ASSERT_OK(wv_model_save(m, p, NULL));
    ASSERT_OK(wv_model_load(p, NULL, &r));
    ASSERT_EQ(wv_model_meta_count(r), 5);
    ASSERT_STREQ(wv_model_get_meta(r, "gguf.v"), "str:\"\\udcff\"");
    ASSERT_STREQ(wv_model_get_meta(r, "gguf.n"), "u32:7");
    ASSERT_STREQ(wv_model_get_meta(r, "t"), "x");
    ASSERT_STREQ(wv_model_get_meta(r, "gguf.u"), "str:\"y\"");
    ASSERT_STREQ(wv_model_get_meta(r, "gguf.gguf.u"), "str:\"z\"");
    wv_model_free(r);
    wv_model_free(m);

    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_set_meta(m, "gguf.weightvault.foreign_keys", "u32:3"));
    ASSERT_OK(wv_model_save(m, p, NULL));
    ASSERT_OK(wv_model_load(p, NULL, &r));
    ASSERT_EQ(wv_model_meta_count(r), 1);
    ASSERT_STREQ(wv_model_get_meta(r, "gguf.weightvault.foreign_keys"),
                 "u32:3");
    wv_model_free(r);
    ASSERT_OK(wv_model_set_meta(m, "x", "y"));
    ASSERT_EQ(wv_model_save(m, wvtest_path("marker2.gguf"), NULL), WV_FORMAT);
    ASSERT_CONTAINS(wv_model_errmsg(m),
                    "metadata key 'gguf.weightvault.foreign_keys' would "
                    "take the GGUF key 'weightvault.foreign_keys', which "
                    "is reserved");
    ASSERT(access(wvtest_path("marker2.gguf"), F_OK) != 0);
    wv_model_free(m);
}

TEST_IMPL(gguf_alignment)
{
    wv_model *m, *r;
    uint64_t s[1] = {3};
    size_t n;
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "a", WV_F32, 1, s, 1));
    ASSERT_OK(wvtest_add_pattern(m, "b", WV_I8, 1, s, 2));
    ASSERT_OK(wv_model_set_meta(m, "gguf.general.alignment", "u32:64"));
    const char *p = wvtest_path("align.gguf");
    ASSERT_OK(wv_model_save(m, p, NULL));
    unsigned char *b = wvtest_read_file(p, &n);
    ASSERT_NOT_NULL(b);
    ASSERT_EQ(n % 64, 0);
    ASSERT_OK(wv_model_load(p, NULL, &r));
    const wv_tensor *ta = wv_model_find(r, "a"), *tb = wv_model_find(r, "b");
    ASSERT_EQ((const unsigned char *)wv_tensor_data(tb) -
                  (const unsigned char *)wv_tensor_data(ta),
              64);
    ASSERT(wvf_same(m, r, WVF_META_ORDER));
    wv_model_free(r);
    free(b);

    /* An invalid u32 alignment is refused; a non-u32 one dropped. */
    ASSERT_OK(wv_model_set_meta(m, "gguf.general.alignment", "u32:48"));
    ASSERT_EQ(wv_model_save(m, p, NULL), WV_FORMAT);
    ASSERT_CONTAINS(wv_model_errmsg(m), "general.alignment 48");
    ASSERT_OK(wv_model_set_meta(m, "gguf.general.alignment", "u64:64"));
    ASSERT_OK(wv_model_save(m, p, NULL));
    ASSERT_OK(wv_model_load(p, NULL, &r));
    ASSERT(wv_model_get_meta(r, "gguf.general.alignment") == NULL);
    ASSERT_EQ((const unsigned char *)wv_tensor_data(wv_model_find(r, "b")) -
                  (const unsigned char *)wv_tensor_data(
                      wv_model_find(r, "a")),
              32);
    wv_model_free(r);
    wv_model_free(m);
}

/* f16 bits of d, exact for the small powers of two used here. */
TEST_IMPL(gguf_dequant_q8_0_q4_0)
{
    unsigned char q8[2 * 34], q4[2 * 18];
    /* Q8_0 block 0: d = 0.5 (0x3800), q = j - 16; block 1: d = -2
     * (0xc000), q = 127 - j. */
    wv__put16(q8, 0x3800);
    wv__put16(q8 + 34, 0xc000);
    for (int j = 0; j < 32; j++) {
        q8[2 + j] = (unsigned char)(signed char)(j - 16);
        q8[36 + j] = (unsigned char)(127 - j);
    }
    /* Q4_0 block 0: d = 2 (0x4000), byte j = low j & 15, high 15 - j;
     * block 1: d = 0.25 (0x3400), all bytes 0x80. */
    wv__put16(q4, 0x4000);
    wv__put16(q4 + 18, 0x3400);
    for (int j = 0; j < 16; j++) {
        q4[2 + j] = (unsigned char)((j & 15) | ((15 - j) << 4));
        q4[20 + j] = 0x80;
    }
    wv_model *m, *r;
    uint64_t s[2] = {2, 32};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wv_model_add(m, "q8", WV_Q8_0, 2, s, q8, sizeof q8,
                           WV_DATA_COPY));
    ASSERT_OK(wv_model_add(m, "q4", WV_Q4_0, 2, s, q4, sizeof q4,
                           WV_DATA_COPY));
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    so.cast = WV_F32;
    const char *p = wvtest_path("deq.safetensors");
    ASSERT_OK(wv_model_save(m, p, &so));
    ASSERT_OK(wv_model_load(p, NULL, &r));
    const wv_tensor *t8 = wv_model_find(r, "q8"), *t4 = wv_model_find(r, "q4");
    ASSERT_EQ(wv_tensor_dtype(t8), WV_F32);
    ASSERT_EQ(wv_tensor_shape(t8)[0], 2);
    ASSERT_EQ(wv_tensor_shape(t8)[1], 32);
    for (int j = 0; j < 32; j++) {
        ASSERT(f32_at(t8, (size_t)j) == (float)(j - 16) * 0.5f);
        ASSERT(f32_at(t8, (size_t)(32 + j)) == (float)(127 - j) * -2.0f);
    }
    for (int j = 0; j < 16; j++) {
        ASSERT(f32_at(t4, (size_t)j) == (float)((j & 15) - 8) * 2.0f);
        ASSERT(f32_at(t4, (size_t)(16 + j)) == (float)(15 - j - 8) * 2.0f);
        ASSERT(f32_at(t4, (size_t)(32 + j)) == -8 * 0.25f);
        ASSERT(f32_at(t4, (size_t)(48 + j)) == 0.0f);
    }
    wv_model_free(r);

    /* F16 target: the same values, exactly representable. */
    so.cast = WV_F16;
    p = wvtest_path("deq16.npz");
    ASSERT_OK(wv_model_save(m, p, &so));
    ASSERT_OK(wv_model_load(p, NULL, &r));
    t8 = wv_model_find(r, "q8");
    ASSERT_EQ(wv_tensor_dtype(t8), WV_F16);
    ASSERT_EQ(wv__le16((const unsigned char *)wv_tensor_data(t8) + 2 * 63),
              0xda00); /* (127 - 31) * -2 = -192 */
    wv_model_free(r);
    wv_model_free(m);
}

TEST_IMPL(gguf_refusals)
{
    wv_model *m;
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    uint64_t s[2] = {1, 256};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "x", WV_IQ2_XS, 2, s, 1));
    /* Other formats refuse block types that cannot be dequantised. */
    ASSERT_EQ(wv_model_save(m, wvtest_path("x.safetensors"), NULL),
              WV_UNSUPPORTED);
    ASSERT_CONTAINS(wv_model_errmsg(m),
                    "tensor 'x' is IQ2_XS; convert with --dtype "
                    "F32|F16|BF16 (dequantises Q4_0");
    so.cast = WV_F32;
    ASSERT_EQ(wv_model_save(m, wvtest_path("x.npz"), &so), WV_UNSUPPORTED);
    ASSERT_CONTAINS(wv_model_errmsg(m), "IQ2_XS, which cannot be dequantised");
    ASSERT(access(wvtest_path("x.npz"), F_OK) != 0);
    /* GGUF keeps it, cast or not. */
    ASSERT_OK(wv_model_save(m, wvtest_path("x.gguf"), &so));
    wv_model_free(m);

    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "u", WV_U8, 1, s, 1));
    ASSERT_EQ(wv_model_save(m, wvtest_path("u.gguf"), NULL), WV_UNSUPPORTED);
    ASSERT_CONTAINS(wv_model_errmsg(m), "tensor 'u' is U8, which GGUF "
                                        "cannot hold");
    wv_model_free(m);

    uint64_t s5[5] = {1, 1, 1, 1, 2};
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, "five", WV_F32, 5, s5, 1));
    ASSERT_EQ(wv_model_save(m, wvtest_path("5.gguf"), NULL), WV_UNSUPPORTED);
    ASSERT_CONTAINS(wv_model_errmsg(m), "has 5 dimensions");
    wv_model_free(m);

    char longname[80];
    memset(longname, 'n', 64);
    longname[64] = '\0';
    ASSERT_OK(wv_model_new(&m));
    ASSERT_OK(wvtest_add_pattern(m, longname, WV_F32, 1, s, 1));
    ASSERT_EQ(wv_model_save(m, wvtest_path("long.gguf"), NULL), WV_UNSUPPORTED);
    ASSERT_CONTAINS(wv_model_errmsg(m), "allows at most 63");
    wv_model_free(m);
}

/* Hand-built inputs from memory: truncations at every byte are refused
 * without crashing, and the fixture's header cut anywhere too. */
TEST_IMPL(gguf_truncations)
{
    size_t n;
    unsigned char *b = wvtest_read_file(fixture(), &n);
    ASSERT_NOT_NULL(b);
    wv_load_opts lo = WV_LOAD_OPTS_INIT;
    char msg[WV_ERRBUF_SIZE];
    lo.format = WV_FMT_GGUF;
    lo.errbuf = msg;
    lo.errbuf_size = sizeof msg;
    for (size_t cut = 0; cut < 14200; cut += 7) {
        wv_model *m = NULL;
        msg[0] = '\0';
        ASSERT_EQ(wv_model_load_mem(b, cut, &lo, &m), WV_CORRUPT);
        ASSERT(m == NULL);
        ASSERT(msg[0] != '\0');
    }
    wv_model *m = NULL;
    ASSERT_EQ(wv_model_load_mem(b, n - 1, &lo, &m), WV_CORRUPT);
    ASSERT_CONTAINS(msg, "truncated: tensor 'blk.4.ffn_norm.weight'");
    ASSERT_OK(wv_model_load_mem(b, n, &lo, &m));
    ASSERT_EQ(wv_model_count(m), 48);
    wv_model_free(m);
    free(b);
}

/* K-quant blocks built by hand; expected values worked out from the block
 * layouts (ggml-common.h) without the code under test. */
static float deq1(wv_dtype dt, const unsigned char *blk, size_t bytes,
                  size_t at)
{
    wv_model *m = NULL, *r = NULL;
    wv_save_opts so = WV_SAVE_OPTS_INIT;
    uint64_t s[1] = {256};
    float v = -12345.0f;
    so.cast = WV_F32;
    if (wv_model_new(&m) != WV_OK ||
        wv_model_add(m, "k", dt, 1, s, blk, bytes, WV_DATA_COPY) != WV_OK ||
        wv_model_save(m, wvtest_path("k.safetensors"), &so) != WV_OK ||
        wv_model_load(wvtest_path("k.safetensors"), NULL, &r) != WV_OK)
        goto out;
    const wv_tensor *t = wv_model_find(r, "k");
    if (t && wv_tensor_dtype(t) == WV_F32)
        memcpy(&v, (const unsigned char *)wv_tensor_data(t) + 4 * at, 4);
out:
    wv_model_free(m);
    wv_model_free(r);
    return v;
}

TEST_IMPL(gguf_dequant_k_quants)
{
    unsigned char b[292];
    /* Q4_K: d = 1 (0x3c00), dmin = 0.5 (0x3800). Sub-block 0: scale
     * byte 4 + 0 = 2, min byte 4 + 4 = 3; sub-block 1: scale 1, min 0;
     * sub-block 4: scale = low nibble of byte 4 + 8 (1) | top bits of
     * byte 4 + 0 (0) << 4 = 1, min = high nibble of byte 4 + 8 (2) |
     * top bits of byte 4 + 4 << 4 = 2 + 16 with byte 4 + 4 = 0x43. */
    memset(b, 0, sizeof b);
    wv__put16(b, 0x3c00);
    wv__put16(b + 2, 0x3800);
    b[4 + 0] = 2;
    b[4 + 4] = 0x43; /* min 3 for sub-block 0; bit 6 set: min 4 gets +16 */
    b[4 + 1] = 1;
    b[4 + 8] = 0x21;
    b[16 + 0] = 0x5a;  /* element 0: 2*10 - 0.5*3; element 32: 1*5 - 0 */
    b[16 + 64] = 0x07; /* element 128: 1*7 - 0.5*18 */
    ASSERT(deq1(WV_Q4_K, b, 144, 0) == 18.5f);
    ASSERT(deq1(WV_Q4_K, b, 144, 32) == 5.0f);
    ASSERT(deq1(WV_Q4_K, b, 144, 128) == -2.0f);
    ASSERT(deq1(WV_Q4_K, b, 144, 1) == -1.5f); /* q 0: 0 - 1.5 */

    /* Q5_K: the same, plus qh: bit 0 of qh[0] adds 16 to element 0, bit
     * 5 of qh[0] (chunk 2's high half) adds 16 to element 160. */
    memset(b, 0, sizeof b);
    wv__put16(b, 0x3c00);
    wv__put16(b + 2, 0x3800);
    b[4 + 0] = 2;
    b[4 + 4] = 3;
    b[4 + 5] = 0; /* sub-block 5: scale low nibble of byte 4 + 9 */
    b[4 + 9] = 0x03;
    b[16 + 0] = 0x21;
    b[48 + 0] = 0x5a;
    b[48 + 64] = 0x40; /* element 160: high nibble 4 (+16), scale 3 */
    ASSERT(deq1(WV_Q5_K, b, 176, 0) == 2.0f * 26 - 1.5f);
    ASSERT(deq1(WV_Q5_K, b, 176, 160) == 3.0f * 20);

    /* Q6_K: d = 0.5; scales[0] = -3, scales[2] = 5 (element 32's, l/16 =
     * 0, +2); ql[0] = 0x0f, qh[0] = 0x02: element 0 = 15 | 2 << 4 = 47,
     * - 32 = 15 -> 0.5 * -3 * 15; element 64 = high nibble 0 | (qh >> 4
     * & 3) << 4 = 0 - 32 -> 0.5 * scales[4] * -32 with scales[4] = 1;
     * element 32: ql[32] = 0x01, (qh >> 2) & 3 = 0: 1 - 32 = -31. */
    memset(b, 0, sizeof b);
    b[0] = 0x0f;
    b[32] = 0x01;
    b[128] = 0x02;
    b[192 + 0] = (unsigned char)(signed char)-3;
    b[192 + 2] = 5;
    b[192 + 4] = 1;
    wv__put16(b + 208, 0x3800);
    ASSERT(deq1(WV_Q6_K, b, 210, 0) == -22.5f);
    ASSERT(deq1(WV_Q6_K, b, 210, 32) == 0.5f * 5 * -31);
    ASSERT(deq1(WV_Q6_K, b, 210, 64) == -16.0f);

    /* Q3_K: d = 2. Scale 0 = low nibble of byte 96 (5) | bits 0-1 of
     * byte 104 (1) << 4 = 21, - 32 = -11. Element 0: qs[0] & 3 = 2,
     * hmask[0] bit 0 clear: 2 - 4 = -2 -> 2 * -11 * -2 = 44. Element 32
     * (shift 2, bit 1 of hmask[0] set): (qs[0] >> 2) & 3 = 3 -> scale 2
     * = byte 97 low nibble (0) | (byte 104 >> 0 ... of j = 2: bits 0-1
     * of byte 106 (2)) << 4 = 32, - 32 = 0 -> 0. */
    memset(b, 0, sizeof b);
    b[0] = 0x02;        /* hmask[0]: bit 1 set */
    b[32] = 0x0e;       /* qs[0]: 2 | 3 << 2 */
    b[96] = 0x05;
    b[104] = 0x01;
    b[106] = 0x02;
    wv__put16(b + 108, 0x4000);
    ASSERT(deq1(WV_Q3_K, b, 110, 0) == 44.0f);
    ASSERT(deq1(WV_Q3_K, b, 110, 32) == 0.0f);
    ASSERT(deq1(WV_Q3_K, b, 110, 1) == 2.0f * -11 * -4); /* q 0, no bit */

    /* Q2_K: scales[0] = 0x32 (scale 2, min 3), d = 1, dmin = 0.25;
     * qs[0] = 0x03: element 0 = 2 * 3 - 0.75. */
    memset(b, 0, sizeof b);
    b[0] = 0x32;
    b[16] = 0x03;
    wv__put16(b + 80, 0x3c00);
    wv__put16(b + 82, 0x3400);
    ASSERT(deq1(WV_Q2_K, b, 84, 0) == 5.25f);

    /* IQ4_XS: d = 0.5; sub-block 3's scale = high nibble of scales_l[1]
     * (5) | bits 6-7 of scales_h (2) << 4 = 37, - 32 = 5; element 96 +
     * 17 = high nibble of qs[48 + 1] = 15 -> level 113. */
    memset(b, 0, sizeof b);
    wv__put16(b, 0x3800);
    wv__put16(b + 2, 0x0080);
    b[5] = 0x50;
    b[8 + 48 + 1] = 0xf0;
    ASSERT(deq1(WV_IQ4_XS, b, 136, 96 + 17) == 0.5f * 5 * 113);
    ASSERT(deq1(WV_IQ4_XS, b, 136, 96 + 1) == 0.5f * 5 * -127);

    /* MXFP4 (32 elements): e = 128 -> scale 2^(128-127) / 2 = 1; qs[0] =
     * 0x9f: element 0 = level 15 (-12), element 16 = level 9 (-1). With
     * e = 0 the scale is the subnormal 2^-128. */
    {
        unsigned char mx[2 * 17];
        memset(mx, 0, sizeof mx);
        mx[0] = 128;
        mx[1] = 0x9f;
        mx[17] = 0;
        mx[18] = 0x07; /* level 7: 12 */
        wv_model *mm = NULL, *rr = NULL;
        wv_save_opts so = WV_SAVE_OPTS_INIT;
        uint64_t sh[1] = {64};
        float v[64];
        so.cast = WV_F32;
        ASSERT_OK(wv_model_new(&mm));
        ASSERT_OK(wv_model_add(mm, "x", WV_MXFP4, 1, sh, mx, sizeof mx,
                               WV_DATA_COPY));
        ASSERT_OK(wv_model_save(mm, wvtest_path("mx.safetensors"), &so));
        ASSERT_OK(wv_model_load(wvtest_path("mx.safetensors"), NULL, &rr));
        memcpy(v, wv_tensor_data(wv_model_find(rr, "x")), sizeof v);
        ASSERT(v[0] == -12.0f && v[16] == -1.0f && v[1] == 0.0f);
        ASSERT(v[32] == 12.0f * 0x1p-128f);
        wv_model_free(mm);
        wv_model_free(rr);
    }

    /* Q8_K: d = 0.25 as f32, qs[7] = -8. */
    memset(b, 0, sizeof b);
    float d = 0.25f;
    uint32_t db;
    memcpy(&db, &d, 4);
    wv__put32(b, db);
    b[4 + 7] = (unsigned char)(signed char)-8;
    ASSERT(deq1(WV_Q8_K, b, 292, 7) == -2.0f);
}
