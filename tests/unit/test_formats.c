/* Writers and readers agree: GGUF (every metadata type, arrays, tensors of several dtypes
 * and ranks), safetensors (single file and a sharded index), HF config.json, `init`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/model.h"
#include "s1c/text.h"
#include "testutil.h"

static void test_gguf_roundtrip(void **state) {
    (void)state;
    s1c_err err;
    char *path = tu_path("S1C_TMP", "roundtrip.gguf");
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[64];
    for (int i = 0; i < 64; i++) h[i] = s1c_f32_to_bf16((float)i * 0.5f);
    uint8_t q8[34 * 2];
    for (size_t i = 0; i < sizeof q8; i++) q8[i] = (uint8_t)i;
    const char *strs[3] = {"alpha", "", "gamma \xe2\x96\x81"};
    int32_t ints[4] = {-1, 0, 7, 1 << 30};
    gguf_writer *w = gguf_writer_new();
    gguf_w_str(w, "general.architecture", "llama");
    gguf_w_u32(w, "k.u32", 4000000000u);
    gguf_w_i32(w, "k.i32", -5);
    gguf_w_u64(w, "k.u64", 1ull << 40);
    gguf_w_f32(w, "k.f32", 0.25f);
    gguf_w_bool(w, "k.bool", true);
    gguf_w_arr_str(w, "k.strs", strs, 3);
    gguf_w_arr_i32(w, "k.ints", ints, 4);
    gguf_w_arr_f32(w, "k.floats", a, 6);
    int64_t s2[2] = {2, 3}, s1[1] = {64}, sq[2] = {1, 64}, s3[3] = {1, 2, 3};
    gguf_w_tensor(w, "t.f32", S1C_F32, 2, s2, a);
    gguf_w_tensor(w, "t.bf16", S1C_BF16, 1, s1, h);
    gguf_w_tensor(w, "t.q8", S1C_Q8_0, 2, sq, q8);
    gguf_w_tensor(w, "t.3d", S1C_F32, 3, s3, a);
    assert_int_equal(gguf_writer_write(w, path, &err), 0);
    gguf_writer_free(w);

    gguf_file g;
    if (gguf_open(&g, path, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(g.version, 3);
    uint64_t u;
    double f;
    bool b;
    s1c_str s;
    assert_int_equal(gguf_get_u64(&g, "k.u32", &u, &err), 1);
    assert_true(u == 4000000000u);
    assert_int_equal(gguf_get_u64(&g, "k.i32", &u, &err), -1); /* negative: not a u64 */
    assert_int_equal(gguf_get_u64(&g, "k.u64", &u, &err), 1);
    assert_true(u == 1ull << 40);
    assert_int_equal(gguf_get_f64(&g, "k.f32", &f, &err), 1);
    assert_true(f == 0.25);
    assert_int_equal(gguf_get_bool(&g, "k.bool", &b, &err), 1);
    assert_true(b);
    assert_int_equal(gguf_get_str(&g, "general.architecture", &s, &err), 1);
    assert_true(s.len == 5 && memcmp(s.p, "llama", 5) == 0);
    assert_int_equal(gguf_get_str(&g, "missing", &s, &err), 0);
    const gguf_kv *kv = gguf_find(&g, "k.strs");
    assert_non_null(kv);
    assert_int_equal(kv->arr_n, 3);
    for (int i = 0; i < 3; i++) assert_true(kv->arr_strs[i].len == strlen(strs[i]) && memcmp(kv->arr_strs[i].p, strs[i], kv->arr_strs[i].len) == 0);
    kv = gguf_find(&g, "k.ints");
    for (int i = 0; i < 4; i++) assert_true(gguf_arr_i64(kv, (uint64_t)i) == ints[i]);
    kv = gguf_find(&g, "k.floats");
    for (int i = 0; i < 6; i++) assert_true(gguf_arr_f64(kv, (uint64_t)i) == a[i]);
    const s1c_tensor *t = gguf_find_tensor(&g, "t.f32");
    assert_true(t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->dtype == S1C_F32);
    assert_memory_equal(t->data, a, sizeof a);
    t = gguf_find_tensor(&g, "t.bf16");
    assert_memory_equal(t->data, h, sizeof h);
    t = gguf_find_tensor(&g, "t.q8");
    assert_true(t->dtype == S1C_Q8_0 && t->nbytes == 68 && t->shape[1] == 64); /* 2 blocks of 34 bytes */
    assert_memory_equal(t->data, q8, 68);
    t = gguf_find_tensor(&g, "t.3d");
    assert_true(t->ndim == 3 && t->shape[0] == 1 && t->shape[1] == 2 && t->shape[2] == 3);
    for (uint64_t i = 0; i < g.n_tensors; i++) assert_int_equal((uintptr_t)g.tensors[i].data % 32, 0);
    gguf_close(&g);
    free(path);
}

static void test_stories_gguf_matches_bin(void **state) {
    (void)state;
    /* llama.cpp's converter copied every tensor of stories260K.bin unchanged */
    s1c_err err;
    gguf_file g;
    l2c_file l;
    char *gp = tu_path("S1C_DATA", "models/stories260K/stories260K.gguf");
    char *bp = tu_path("S1C_DATA", "models/stories260K/stories260K.bin");
    if (gguf_open(&g, gp, &err) != 0) fail_msg("%s", err.msg);
    if (l2c_open(&l, bp, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(l.hdr.dim, 64);
    assert_int_equal(l.hdr.n_layers, 5);
    for (int i = 0; i < l.n_tensors; i++) {
        const s1c_tensor *a = &l.tensors[i], *b = gguf_find_tensor(&g, a->name);
        if (!b) fail_msg("GGUF lacks %s", a->name);
        assert_int_equal(a->nbytes, b->nbytes);
        assert_int_equal(a->ndim, b->ndim);
        for (int d = 0; d < a->ndim; d++) assert_true(a->shape[d] == b->shape[d]);
        assert_memory_equal(a->data, b->data, a->nbytes);
    }
    gguf_close(&g);
    l2c_close(&l);
    free(gp);
    free(bp);
}

static void test_safetensors_roundtrip_and_shards(void **state) {
    (void)state;
    s1c_err err;
    char *dir = tu_path("S1C_TMP", "st_shards");
    tu_system("rm -rf %s && mkdir -p %s", dir, dir);
    float a[4] = {1, -2, 3.5f, 1e-3f};
    uint16_t hb[3] = {0x3f80, 0xc000, 0x0001};
    int64_t ids[2] = {-7, 1ll << 40};
    s1c_tensor t1[2] = {{.name = "a", .dtype = S1C_F32, .ndim = 2, .shape = {2, 2}, .data = a, .nbytes = 16},
                        {.name = "ids", .dtype = S1C_I64, .ndim = 1, .shape = {2}, .data = ids, .nbytes = 16}};
    s1c_tensor t2[2] = {{.name = "h", .dtype = S1C_BF16, .ndim = 1, .shape = {3}, .data = hb, .nbytes = 6},
                        {.name = "scalar", .dtype = S1C_F32, .ndim = 0, .data = a, .nbytes = 4}};
    char p1[512], p2[512], idx[512];
    snprintf(p1, sizeof p1, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.safetensors", dir);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    assert_int_equal(st_write(p1, t1, 2, &err), 0);
    assert_int_equal(st_write(p2, t2, 2, &err), 0);
    const char *index = "{\"metadata\":{\"total_size\":42},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                        "\"ids\":\"model-00001-of-00002.safetensors\",\"h\":\"model-00002-of-00002.safetensors\","
                        "\"scalar\":\"model-00002-of-00002.safetensors\"}}";
    assert_int_equal(tu_write(idx, index, strlen(index)), 0);
    st_set s;
    if (st_open(&s, dir, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(s.n_files, 2);
    assert_int_equal(s.n_tensors, 4);
    const s1c_tensor *t = st_find(&s, "a");
    assert_true(t->dtype == S1C_F32 && t->ndim == 2 && t->shape[1] == 2);
    assert_memory_equal(t->data, a, 16);
    t = st_find(&s, "h");
    assert_true(t->dtype == S1C_BF16);
    assert_memory_equal(t->data, hb, 6);
    t = st_find(&s, "ids");
    assert_memory_equal(t->data, ids, 16);
    t = st_find(&s, "scalar");
    assert_true(t->ndim == 0 && t->nbytes == 4);
    assert_non_null(s.metadata_json);
    st_close(&s);
    /* an index naming a tensor its shard does not hold */
    const char *bad = "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"zzz\":\"model-00001-of-00002.safetensors\"}}";
    assert_int_equal(tu_write(idx, bad, strlen(bad)), 0);
    assert_int_equal(st_open(&s, dir, &err), -1);
    assert_non_null(strstr(err.msg, "zzz"));
    free(dir);
}

static void test_half_conversions(void **state) {
    (void)state;
    /* exhaustive: every f16 converts to f32 and back unchanged (NaNs stay NaN) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = s1c_f16_to_f32((uint16_t)h);
        uint16_t back = s1c_f32_to_f16(f);
        if (f != f) assert_true((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
        else assert_int_equal(back, h);
    }
    assert_int_equal(s1c_f32_to_f16(65520.0f), 0x7c00); /* rounds to inf */
    assert_int_equal(s1c_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie to even */
    assert_int_equal(s1c_f32_to_f16(5.96046448e-08f), 0x0001);    /* smallest subnormal */
    assert_int_equal(s1c_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(s1c_f32_to_bf16(1.00390625f), 0x3f80);       /* tie to even (down) */
    assert_int_equal(s1c_f32_to_bf16(1.01171875f), 0x3f82);       /* tie to even (up) */
}

static void test_init_and_config(void **state) {
    (void)state;
    s1c_err err;
    s1c_config c;
    assert_int_equal(s1c_config_preset(&c, "qwen2", "tiny", &err), 0);
    char *dir = tu_path("S1C_TMP", "init_tiny");
    assert_int_equal(s1c_model_init_hf(&c, 1, S1C_BF16, dir, &err), 0);
    s1c_model *m;
    if (s1c_model_open(&m, dir, &err) != 0) fail_msg("%s", err.msg);
    const s1c_config *r = s1c_model_config(m);
    assert_int_equal(r->dim, c.dim);
    assert_int_equal(r->hidden_dim, c.hidden_dim);
    assert_int_equal(r->n_layers, c.n_layers);
    assert_int_equal(r->n_heads, c.n_heads);
    assert_int_equal(r->n_kv_heads, c.n_kv_heads);
    assert_int_equal(r->vocab_size, c.vocab_size);
    assert_true(r->tied_embeddings && r->qkv_bias);
    assert_true(r->rope_theta == c.rope_theta && r->norm_eps == c.norm_eps);
    assert_int_equal(r->rope_layout, S1C_ROPE_HALF);
    s1c_model_free(m);
    /* same seed, same bytes */
    char *dir2 = tu_path("S1C_TMP", "init_tiny2");
    assert_int_equal(s1c_model_init_hf(&c, 1, S1C_BF16, dir2, &err), 0);
    assert_int_equal(tu_system("cmp -s %s/model.safetensors %s/model.safetensors", dir, dir2), 0);
    assert_int_equal(s1c_config_preset(&c, "qwen2", "qwen2.5-0.5b", &err), 0);
    assert_true(s1c_config_n_params(&c) == 494032768ull); /* Qwen2.5-0.5B's published count */
    assert_int_equal(s1c_config_preset(&c, "qwen2", "nope", &err), -1);
    free(dir);
    free(dir2);
}

static void test_spm_tokenizer(void **state) {
    (void)state;
    /* the ids run.c produced for these prompts (greedy_reference.jsonl), from both vocab forms */
    s1c_err err;
    s1c_tokenizer *a, *b;
    gguf_file g;
    char *tp = tu_path("S1C_DATA", "models/stories260K/tok512.bin");
    char *gp = tu_path("S1C_DATA", "models/stories260K/stories260K.gguf");
    if (s1c_tok_load_llama2c(&a, tp, 512, &err) != 0) fail_msg("%s", err.msg);
    if (gguf_open(&g, gp, &err) != 0) fail_msg("%s", err.msg);
    free(tp);
    free(gp);
    if (s1c_tok_load_gguf(&b, &g, &err) != 0) fail_msg("%s", err.msg);
    const int32_t want[] = {1, 301, 314, 269, 317, 263, 377};
    for (int k = 0; k < 2; k++) {
        int32_t *ids;
        int n;
        assert_int_equal(s1c_tok_encode(k ? b : a, "Sam and Lily went", true, &ids, &n, &err), 0);
        assert_int_equal(n, 7);
        assert_memory_equal(ids, want, sizeof want);
        free(ids);
        /* characters outside the vocabulary fall back to bytes and decode back */
        assert_int_equal(s1c_tok_encode(k ? b : a, "\xc3\xa9\xe2\x82\xac", false, &ids, &n, &err), 0);
        char out[64];
        int len = 0;
        s1c_detok d = {0};
        for (int i = 0; i < n; i++) {
            char piece[32];
            int pl = s1c_tok_decode(k ? b : a, i ? ids[i - 1] : -1, ids[i], piece, 32);
            len += s1c_detok_push(&d, piece, pl, out + len, 64 - len);
        }
        len += s1c_detok_flush(&d, out + len, 64 - len);
        assert_int_equal(len, 6);
        assert_memory_equal(out, " \xc3\xa9\xe2\x82\xac", 6);
        free(ids);
    }
    s1c_tok_free(a);
    s1c_tok_free(b);
    gguf_close(&g);
}

static void test_detok_streaming(void **state) {
    (void)state;
    s1c_detok d = {0};
    char out[32];
    /* a 3-byte character split over two tokens comes out whole */
    assert_int_equal(s1c_detok_push(&d, "a\xe2\x82", 3, out, 32), 1);
    assert_int_equal(s1c_detok_push(&d, "\xac", 1, out, 32), 3);
    assert_memory_equal(out, "\xe2\x82\xac", 3);
    /* an invalid byte passes through; a cut sequence is released, not dropped */
    assert_int_equal(s1c_detok_push(&d, "\xff", 1, out, 32), 1);
    assert_int_equal(s1c_detok_push(&d, "\xe2x", 2, out, 32), 2);
    assert_memory_equal(out, "\xe2x", 2);
    assert_int_equal(s1c_detok_push(&d, "\xf0\x9f", 2, out, 32), 0);
    assert_int_equal(s1c_detok_flush(&d, out, 32), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_roundtrip),  cmocka_unit_test(test_stories_gguf_matches_bin),
        cmocka_unit_test(test_safetensors_roundtrip_and_shards), cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_init_and_config), cmocka_unit_test(test_spm_tokenizer),
        cmocka_unit_test(test_detok_streaming),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
