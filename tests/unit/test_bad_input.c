/* Malformed model files fail cleanly: every reader (GGUF, safetensors, llama2.c, and the
 * model loader above them) returns -1 with one line that names the file and the problem,
 * and never crashes or reads outside the file (the sanitizer build runs this under
 * ASan/UBSan). The bad files are made from the real stories260K model by byte surgery,
 * from GGUFs rebuilt with gguf_writer, and from safetensors written with st_write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s1c/model.h"
#include "testutil.h"

static char *g_dir;              /* $S1C_TMP/bad_input */
static uint8_t *g_gguf;          /* stories260K.gguf, read once */
static size_t g_gguf_len;
static uint8_t *g_bin;           /* stories260K.bin */
static size_t g_bin_len;
static char *g_gguf_path, *g_bin_path;

/* ------------------------------------------------------------------ helpers */

/* Paths the test makes live until the end of the run (main frees them), so call sites
 * need no frees and the leak checker of the sanitizer build stays quiet. */
static char *g_paths[256];
static int g_n_paths;

static char *keep_path(char *p) {
    if (g_n_paths == (int)(sizeof g_paths / sizeof g_paths[0])) fail_msg("too many paths: raise g_paths");
    return g_paths[g_n_paths++] = p;
}

static char *tmp_path(const char *name) { return keep_path(s1c_path_join(g_dir, name)); }

static char *write_tmp(const char *name, const void *data, size_t len) {
    char *path = tmp_path(name);
    assert_int_equal(tu_write(path, data, len), 0);
    return path;
}

/* Asserts a failure (rc -1) with a one-line message naming `who` (usually the file) and
 * containing `what` (the problem). Reports the message when it does not. */
static void check_fails(int rc, const s1c_err *err, const char *who, const char *what, int line) {
    if (rc == -1 && strstr(err->msg, who) && strstr(err->msg, what) && !strchr(err->msg, '\n')) return;
    fail_msg("line %d: want rc -1 and one line naming '%s' and '%s'; got rc %d: '%s'", line, who, what, rc, err->msg);
}

/* Opens a GGUF and expects the failure; a successful open is closed before failing. */
static void gguf_open_fails(const char *path, const char *what, int line) {
    gguf_file g;
    s1c_err err = {{0}};
    int rc = gguf_open(&g, path, &err);
    if (rc == 0) gguf_close(&g);
    check_fails(rc, &err, path, what, line);
}

static void model_open_fails(const char *path, const char *what, int line) {
    s1c_model *m = NULL;
    s1c_err err = {{0}};
    int rc = s1c_model_open(&m, path, &err);
    if (rc != 0 && m != NULL) fail_msg("line %d: %s: a failed open must leave no model", line, path);
    s1c_model_free(m);
    check_fails(rc, &err, path, what, line);
}
#define assert_gguf_fails(path, what) gguf_open_fails((path), (what), __LINE__)
#define assert_model_fails(path, what) model_open_fails((path), (what), __LINE__)

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* A private copy of the real GGUF to cut into. */
static uint8_t *gguf_copy(void) {
    uint8_t *p = malloc(g_gguf_len);
    memcpy(p, g_gguf, g_gguf_len);
    return p;
}

/* Offset of a GGUF string (u64 length + bytes) in the image: found by its exact encoding,
 * so "output.weight" does not match inside "blk.0.attn_output.weight". */
static size_t find_gguf_str(const uint8_t *d, size_t n, const char *s) {
    size_t len = strlen(s);
    uint8_t key[128];
    assert_true(len + 8 <= sizeof key);
    put_u64(key, len);
    memcpy(key + 8, s, len);
    const uint8_t *hit = memmem(d, n, key, len + 8);
    if (!hit) fail_msg("'%s' not found in stories260K.gguf", s);
    return (size_t)(hit - d);
}

/* Where the fields of a tensor info lie (GGUF: name, u32 n_dims, u64 dims[], u32 type, u64 offset). */
typedef struct info_at {
    size_t name, ndim, dims, dtype, offset;
} info_at;

static info_at find_info(const uint8_t *d, const char *tensor) {
    info_at at;
    at.name = find_gguf_str(d, g_gguf_len, tensor);
    at.ndim = at.name + 8 + strlen(tensor);
    at.dims = at.ndim + 4;
    at.dtype = at.dims + 8 * get_u32(d + at.ndim);
    at.offset = at.dtype + 4;
    return at;
}

/* Writes a patched copy of the real GGUF and expects gguf_open to fail with `what`; the
 * model loader must refuse it too (its message may differ, but must name the file). */
static void expect_patched_gguf(const char *name, uint8_t *img, const char *what, int line) {
    char *path = write_tmp(name, img, g_gguf_len);
    gguf_open_fails(path, what, line);
    model_open_fails(path, "", line);
    free(img);
}
#define assert_patched_gguf_fails(name, img, what) expect_patched_gguf((name), (img), (what), __LINE__)

/* ------------------------------------------------------------------ baseline */

/* The unmodified inputs open: without this, every failure below could be vacuous. */
static void test_real_files_open(void **state) {
    (void)state;
    s1c_model *m = NULL;
    s1c_err err = {{0}};
    assert_int_equal(s1c_model_open(&m, g_gguf_path, &err), 0);
    s1c_model_free(m);
    assert_int_equal(s1c_model_open(&m, g_bin_path, &err), 0);
    s1c_model_free(m);
    gguf_file g;
    assert_int_equal(gguf_open(&g, g_gguf_path, &err), 0);
    gguf_close(&g);
    memset(&g, 0, sizeof g);
    assert_int_equal(gguf_parse(&g, g_gguf, g_gguf_len, "mem", &err), 0);
    gguf_close(&g);
}

/* ------------------------------------------------------------------ GGUF: truncation */

static bool says_truncated(const char *msg) {
    return strstr(msg, "truncated") || strstr(msg, "past the end") || strstr(msg, "more than the file holds");
}

/* Parses the first `cut` bytes from a buffer of exactly that size, so ASan sees any read
 * past the cut. */
static void parse_prefix_fails(size_t cut) {
    uint8_t *buf = malloc(cut ? cut : 1);
    memcpy(buf, g_gguf, cut);
    gguf_file g;
    memset(&g, 0, sizeof g);
    s1c_err err = {{0}};
    int rc = gguf_parse(&g, buf, cut, "cut.gguf", &err);
    gguf_close(&g);
    free(buf);
    if (rc != -1 || !strstr(err.msg, "cut.gguf") || !(cut < 4 ? strstr(err.msg, "magic") != NULL : says_truncated(err.msg)))
        fail_msg("cut at %zu of %zu: rc %d, '%s'", cut, g_gguf_len, rc, err.msg);
}

static void test_gguf_truncated(void **state) {
    (void)state;
    size_t infos = find_gguf_str(g_gguf, g_gguf_len, "token_embd.weight");
    /* every cut through the header, the metadata and the tensor infos; then through the data */
    for (size_t cut = 0; cut < infos + 2048; cut += cut < 64 ? 1 : 7) parse_prefix_fails(cut);
    for (size_t cut = infos + 2048; cut < g_gguf_len; cut += 4099) parse_prefix_fails(cut);
    parse_prefix_fails(g_gguf_len - 1);

    /* the same through files and the model loader (which must name the path) */
    const size_t cuts[] = {12, 24, 5000 /* mid tokens */, infos + 30, g_gguf_len / 2, g_gguf_len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "cut_%zu.gguf", cuts[i]);
        char *path = write_tmp(name, g_gguf, cuts[i]);
        gguf_file g;
        s1c_model *m = NULL;
        s1c_err err = {{0}}, merr = {{0}};
        assert_int_equal(gguf_open(&g, path, &err), -1);
        assert_int_equal(s1c_model_open(&m, path, &merr), -1);
        if (!strstr(err.msg, path) || !says_truncated(err.msg) || strcmp(err.msg, merr.msg) != 0)
            fail_msg("cut at %zu: gguf_open says '%s', the model loader '%s'", cuts[i], err.msg, merr.msg);
    }
    char *empty = write_tmp("empty.gguf", "", 0);
    assert_model_fails(empty, "truncated");
}

/* ------------------------------------------------------------------ GGUF: header */

static void test_gguf_header(void **state) {
    (void)state;
    uint8_t *img = gguf_copy();
    memcpy(img, "GGUX", 4);
    assert_patched_gguf_fails("magic.gguf", img, "bad magic");

    img = gguf_copy();
    put_u32(img + 4, 4);
    assert_patched_gguf_fails("v4.gguf", img, "version 4 is not supported");
    img = gguf_copy();
    put_u32(img + 4, 1);
    assert_patched_gguf_fails("v1.gguf", img, "version 1 is not supported");

    /* counts that could never fit in the file are refused before allocating for them */
    img = gguf_copy();
    put_u64(img + 8, 1ull << 40);
    assert_patched_gguf_fails("many_tensors.gguf", img, "1099511627776 tensors, more than the file holds");
    img = gguf_copy();
    put_u64(img + 16, UINT64_MAX);
    assert_patched_gguf_fails("many_kv.gguf", img, "metadata entries, more than the file holds");
    /* a count that fits the size check but not the contents */
    img = gguf_copy();
    put_u64(img + 16, get_u64(img + 16) + 1);
    assert_patched_gguf_fails("one_more_kv.gguf", img, "");
    img = gguf_copy();
    put_u64(img + 8, get_u64(img + 8) + 1);
    assert_patched_gguf_fails("one_more_tensor.gguf", img, "");
}

/* ------------------------------------------------------------------ GGUF: strings */

static void test_gguf_strings(void **state) {
    (void)state;
    /* the first key's length runs past the end */
    uint8_t *img = gguf_copy();
    put_u64(img + 24, g_gguf_len);
    assert_patched_gguf_fails("key_len.gguf", img, "truncated metadata key #0");

    /* a string value's length */
    img = gguf_copy();
    size_t arch = find_gguf_str(img, g_gguf_len, "general.architecture");
    size_t val = arch + 8 + strlen("general.architecture") + 4;
    assert_int_equal(get_u64(img + val), 5); /* "llama" */
    put_u64(img + val, UINT64_MAX - 3);
    assert_patched_gguf_fails("value_len.gguf", img, "truncated string value of 'general.architecture'");

    /* a string inside an array, and the array's count */
    size_t toks = find_gguf_str(g_gguf, g_gguf_len, "tokenizer.ggml.tokens");
    size_t arr = toks + 8 + strlen("tokenizer.ggml.tokens") + 4; /* u32 element type, u64 count */
    assert_int_equal(get_u32(g_gguf + arr), GGUF_STRING);
    img = gguf_copy();
    put_u64(img + arr + 12, 1ull << 62);
    assert_patched_gguf_fails("arr_str_len.gguf", img, "truncated string 0 of array 'tokenizer.ggml.tokens'");
    img = gguf_copy();
    put_u64(img + arr + 4, 1ull << 61);
    assert_patched_gguf_fails("arr_count.gguf", img, "array 'tokenizer.ggml.tokens' has 2305843009213693952 strings");

    /* a numeric array whose count runs past the end, and an unknown element type */
    size_t scores = find_gguf_str(g_gguf, g_gguf_len, "tokenizer.ggml.scores");
    arr = scores + 8 + strlen("tokenizer.ggml.scores") + 4;
    img = gguf_copy();
    put_u64(img + arr + 4, 1ull << 60);
    assert_patched_gguf_fails("arr_f32_count.gguf", img, "array 'tokenizer.ggml.scores'");
    img = gguf_copy();
    put_u32(img + arr, 77);
    assert_patched_gguf_fails("arr_type.gguf", img, "unknown element type 77");
    /* an unknown value type */
    img = gguf_copy();
    put_u32(img + arch + 8 + strlen("general.architecture"), 13);
    assert_patched_gguf_fails("value_type.gguf", img, "unknown value type 13");
}

/* ------------------------------------------------------------------ GGUF: tensor infos */

static void test_gguf_tensor_infos(void **state) {
    (void)state;
    uint8_t *img = gguf_copy();
    put_u32(img + find_info(img, "blk.1.ffn_up.weight").ndim, 0);
    assert_patched_gguf_fails("ndim0.gguf", img, "tensor 'blk.1.ffn_up.weight' has 0 dimensions");
    img = gguf_copy();
    put_u32(img + find_info(img, "blk.1.ffn_up.weight").ndim, 5);
    assert_patched_gguf_fails("ndim5.gguf", img, "tensor 'blk.1.ffn_up.weight' has 5 dimensions");

    /* 2^40 x 2^40 elements: the product overflows 64 bits */
    img = gguf_copy();
    info_at at = find_info(img, "token_embd.weight");
    put_u64(img + at.dims, 1ull << 40);
    put_u64(img + at.dims + 8, 1ull << 40);
    assert_patched_gguf_fails("dims_overflow.gguf", img, "tensor 'token_embd.weight' has an invalid or overflowing dimension");
    img = gguf_copy();
    put_u64(img + at.dims + 8, 0);
    assert_patched_gguf_fails("dim_zero.gguf", img, "tensor 'token_embd.weight' has an invalid or overflowing dimension 0");
    /* a product that fits in 64 bits but whose byte count does not (today's message blames
     * the block size, so only the tensor is checked) */
    img = gguf_copy();
    put_u64(img + at.dims, 1ull << 31);
    put_u64(img + at.dims + 8, 1ull << 31);
    assert_patched_gguf_fails("bytes_overflow.gguf", img, "tensor 'token_embd.weight'");
    /* large but representable: the data runs past the end */
    img = gguf_copy();
    put_u64(img + at.dims + 8, 1ull << 30);
    assert_patched_gguf_fails("dims_big.gguf", img, "tensor 'token_embd.weight' (274877906944 bytes at offset 0) runs past the end");

    img = gguf_copy();
    put_u32(img + find_info(img, "output.weight").dtype, 99);
    assert_patched_gguf_fails("dtype99.gguf", img, "tensor 'output.weight' has unknown type id 99");
    img = gguf_copy();
    put_u32(img + find_info(img, "output.weight").dtype, 4); /* a retired GGML type */
    assert_patched_gguf_fails("dtype4.gguf", img, "unknown type id 4");
    img = gguf_copy();
    put_u32(img + find_info(img, "output_norm.weight").dtype, S1C_Q4_K); /* 64 is no whole 256-block */
    assert_patched_gguf_fails("dtype_blocks.gguf", img, "tensor 'output_norm.weight': row of 64 is not a whole number of q4_k blocks");

    img = gguf_copy();
    at = find_info(img, "output_norm.weight");
    put_u64(img + at.offset, get_u64(img + at.offset) + 4);
    assert_patched_gguf_fails("misaligned.gguf", img, "tensor 'output_norm.weight' offset 131076 is not aligned to 32");

    img = gguf_copy();
    at = find_info(img, "blk.4.ffn_norm.weight"); /* the last tensor: 32 bytes further is past the end */
    put_u64(img + at.offset, get_u64(img + at.offset) + 32);
    assert_patched_gguf_fails("offset_past_end.gguf", img, "tensor 'blk.4.ffn_norm.weight' (256 bytes at offset 1170976) runs past the end");
    img = gguf_copy();
    put_u64(img + at.offset, UINT64_MAX - 31); /* aligned, and overflows when added to the data start */
    assert_patched_gguf_fails("offset_overflow.gguf", img, "tensor 'blk.4.ffn_norm.weight'");

    img = gguf_copy();
    at = find_info(img, "blk.1.attn_q.weight");
    img[at.name + 8 + 4] = '0'; /* "blk.1..." -> "blk.0...", a name already taken */
    assert_patched_gguf_fails("duplicate.gguf", img, "tensor 'blk.0.attn_q.weight' appears twice");
}

/* ------------------------------------------------------------------ GGUF: model level */

/* How to change the real GGUF when rebuilding it with gguf_writer. */
typedef struct gguf_edit {
    const char *tensor;   /* the tensor to change (NULL: none) */
    bool drop;            /* leave that tensor out */
    int dtype;            /* its new type (-1: keep) */
    int64_t outer;        /* its new outermost dimension (0: keep) */
    const char *drop_key; /* a metadata key to leave out */
    const char *key;      /* a metadata key to set to the string `str` instead of its value */
    const char *str;
    const char *add_key;  /* a u32 metadata entry to add */
    uint32_t add_u32;
} gguf_edit;

static void copy_kv(gguf_writer *w, const gguf_kv *kv, const gguf_edit *e) {
    if (e->drop_key && strcmp(kv->key, e->drop_key) == 0) return;
    if (e->key && strcmp(kv->key, e->key) == 0) { gguf_w_str(w, kv->key, e->str); return; }
    switch (kv->type) {
    case GGUF_U32: gguf_w_u32(w, kv->key, (uint32_t)kv->v.u); return;
    case GGUF_I32: gguf_w_i32(w, kv->key, (int32_t)kv->v.i); return;
    case GGUF_F32: gguf_w_f32(w, kv->key, (float)kv->v.f); return;
    case GGUF_STRING: {
        char *s = strndup(kv->v.s.p, kv->v.s.len);
        gguf_w_str(w, kv->key, s);
        free(s);
        return;
    }
    case GGUF_ARRAY: break;
    default: fail_msg("stories260K.gguf: unexpected metadata type %d for '%s'", kv->type, kv->key);
    }
    uint64_t n = kv->arr_n;
    if (kv->arr_type == GGUF_STRING) {
        char **s = malloc(n * sizeof *s);
        for (uint64_t i = 0; i < n; i++) s[i] = strndup(kv->arr_strs[i].p, kv->arr_strs[i].len);
        gguf_w_arr_str(w, kv->key, (const char *const *)s, n);
        for (uint64_t i = 0; i < n; i++) free(s[i]);
        free(s);
    } else if (kv->arr_type == GGUF_I32) {
        int32_t *v = malloc(n * sizeof *v);
        for (uint64_t i = 0; i < n; i++) v[i] = (int32_t)gguf_arr_i64(kv, i);
        gguf_w_arr_i32(w, kv->key, v, n);
        free(v);
    } else if (kv->arr_type == GGUF_F32) {
        float *v = malloc(n * sizeof *v);
        for (uint64_t i = 0; i < n; i++) v[i] = (float)gguf_arr_f64(kv, i);
        gguf_w_arr_f32(w, kv->key, v, n);
        free(v);
    } else {
        fail_msg("stories260K.gguf: unexpected array type %d for '%s'", kv->arr_type, kv->key);
    }
}

/* Rebuilds stories260K.gguf with one edit; returns the new file's path. Changed tensors
 * only ever shrink, so their data can be borrowed from the original. */
static char *rebuild_gguf(const char *name, gguf_edit e) {
    gguf_file g;
    s1c_err err = {{0}};
    assert_int_equal(gguf_open(&g, g_gguf_path, &err), 0);
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < g.n_kv; i++) copy_kv(w, &g.kv[i], &e);
    if (e.add_key) gguf_w_u32(w, e.add_key, e.add_u32);
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const s1c_tensor *t = &g.tensors[i];
        s1c_tensor c = *t;
        if (e.tensor && strcmp(t->name, e.tensor) == 0) {
            if (e.drop) continue;
            if (e.dtype >= 0) c.dtype = e.dtype;
            if (e.outer) c.shape[0] = e.outer;
        }
        gguf_w_tensor(w, c.name, c.dtype, c.ndim, c.shape, c.data);
    }
    char *path = tmp_path(name);
    int rc = gguf_writer_write(w, path, &err);
    gguf_writer_free(w);
    gguf_close(&g);
    if (rc != 0) fail_msg("rebuilding %s: %s", name, err.msg);
    return path;
}

static void test_gguf_model_level(void **state) {
    (void)state;
    /* the rebuild itself is faithful: an unedited copy loads */
    char *p = rebuild_gguf("rebuilt.gguf", (gguf_edit){.dtype = -1});
    s1c_model *m = NULL;
    s1c_err err = {{0}};
    assert_int_equal(s1c_model_open(&m, p, &err), 0);
    s1c_model_free(m);

    p = rebuild_gguf("shape.gguf", (gguf_edit){.tensor = "blk.2.ffn_down.weight", .dtype = -1, .outer = 32});
    assert_model_fails(p, "tensor 'blk.2.ffn_down.weight' has shape [32,172], config says [64,172]");
    p = rebuild_gguf("missing.gguf", (gguf_edit){.tensor = "blk.3.attn_v.weight", .drop = true, .dtype = -1});
    assert_model_fails(p, "missing tensor 'blk.3.attn_v.weight'");
    p = rebuild_gguf("no_embd.gguf", (gguf_edit){.tensor = "token_embd.weight", .drop = true, .dtype = -1});
    assert_model_fails(p, "missing tensor 'token_embd.weight'");
    /* quantized matrices load (dequantized); a type with no dequantizer is refused */
    p = rebuild_gguf("q8k.gguf", (gguf_edit){.tensor = "blk.0.attn_k.weight", .dtype = S1C_Q8_K});
    assert_model_fails(p, "q8_k");
    p = rebuild_gguf("i32.gguf", (gguf_edit){.tensor = "blk.0.ffn_up.weight", .dtype = S1C_I32});
    assert_model_fails(p, "tensor 'blk.0.ffn_up.weight' has type i32");
    p = rebuild_gguf("gpt2.gguf", (gguf_edit){.dtype = -1, .key = "general.architecture", .str = "gpt2"});
    assert_model_fails(p, "unsupported architecture 'gpt2'");
    p = rebuild_gguf("no_arch.gguf", (gguf_edit){.dtype = -1, .drop_key = "general.architecture"});
    assert_model_fails(p, "missing metadata 'general.architecture'");
    p = rebuild_gguf("no_dim.gguf", (gguf_edit){.dtype = -1, .drop_key = "llama.embedding_length"});
    assert_model_fails(p, "missing metadata 'llama.embedding_length'");
    p = rebuild_gguf("align3.gguf", (gguf_edit){.dtype = -1, .add_key = "general.alignment", .add_u32 = 3});
    assert_model_fails(p, "general.alignment must be a power of two");
    p = rebuild_gguf("align0.gguf", (gguf_edit){.dtype = -1, .add_key = "general.alignment", .add_u32 = 0});
    assert_model_fails(p, "general.alignment must be a power of two");
    p = rebuild_gguf("align2m.gguf", (gguf_edit){.dtype = -1, .add_key = "general.alignment", .add_u32 = 1u << 21});
    assert_model_fails(p, "general.alignment must be a power of two up to 1 MiB");
    p = rebuild_gguf("str_layers.gguf", (gguf_edit){.dtype = -1, .key = "llama.block_count", .str = "five"});
    assert_model_fails(p, "'llama.block_count' should be a non-negative integer");
}

/* ------------------------------------------------------------------ safetensors */

/* Writes a safetensors file from a header text and data bytes. */
static char *write_st(const char *name, const char *json, const void *data, size_t data_len) {
    size_t jl = strlen(json);
    uint8_t *buf = malloc(8 + jl + data_len + 1);
    put_u64(buf, jl);
    memcpy(buf + 8, json, jl);
    if (data_len) memcpy(buf + 8 + jl, data, data_len);
    char *path = write_tmp(name, buf, 8 + jl + data_len);
    free(buf);
    return path;
}

static void st_open_fails(const char *path, const char *what, int line) {
    st_set s;
    s1c_err err = {{0}};
    int rc = st_open(&s, path, &err);
    if (rc == 0) st_close(&s);
    check_fails(rc, &err, path, what, line);
}
#define assert_st_fails(path, what) st_open_fails((path), (what), __LINE__)

/* One bad header per line: {file name, header, expected problem}. 16 bytes of data follow. */
static const struct { const char *name, *json, *what; } st_bad_headers[] = {
    {"not_json.safetensors", "{\"a\": {\"dtype\": ", "header is not a JSON object"},
    {"array.safetensors", "[1, 2, 3]", "header is not a JSON object"},
    {"no_dtype.safetensors", "{\"a\":{\"shape\":[4],\"data_offsets\":[0,16]}}", "tensor 'a' lacks dtype, shape or data_offsets"},
    {"no_shape.safetensors", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", "tensor 'a' lacks dtype, shape or data_offsets"},
    {"no_offsets.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", "tensor 'a' lacks dtype, shape or data_offsets"},
    {"one_offset.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}", "tensor 'a' lacks dtype, shape or data_offsets"},
    {"not_object.safetensors", "{\"a\":[1,2]}", "tensor 'a' lacks dtype, shape or data_offsets"},
    {"past_end.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]}}", "tensor 'a' ends at byte 32 of the data, which has only 16"},
    {"far_past_end.safetensors", "{\"a\":{\"dtype\":\"I8\",\"shape\":[8],\"data_offsets\":[1e15,1000000000000008]}}", "tensor 'a' ends at byte 1000000000000008"},
    {"disagree.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}", "tensor 'a' takes 8 bytes but its shape and dtype need 16"},
    {"disagree2.safetensors", "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", "tensor 'a' takes 16 bytes but its shape and dtype need 12"},
    {"backwards.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", "tensor 'a' has invalid data_offsets"},
    {"negative.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", "tensor 'a' has invalid data_offsets"},
    {"neg_dim.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}}", "tensor 'a' has an invalid dimension"},
    {"frac_dim.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,16]}}", "tensor 'a' has an invalid dimension"},
    {"five_dims.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,4],\"data_offsets\":[0,16]}}", "tensor 'a' has 5 dimensions"},
    {"huge_dims.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,16]}}", "tensor 'a': size overflows"},
    {"dtype_f8.safetensors", "{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[16],\"data_offsets\":[0,16]}}", "tensor 'a' has unsupported dtype F8_E4M3"},
    {"dtype_num.safetensors", "{\"a\":{\"dtype\":4,\"shape\":[4],\"data_offsets\":[0,16]}}", "tensor 'a' lacks dtype"},
    {"twice.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "tensor 'a' appears twice"},
};

static void test_st_file_level(void **state) {
    (void)state;
    /* a valid file written by st_write opens: the bad ones below differ from it on purpose */
    float x[4] = {1, 2, 3, 4};
    s1c_tensor ts[2] = {
        {.name = "a", .dtype = S1C_F32, .ndim = 1, .shape = {4}, .data = x, .nbytes = 16},
        {.name = "b", .dtype = S1C_F32, .ndim = 2, .shape = {2, 2}, .data = x, .nbytes = 16},
    };
    char *good = tmp_path("good.safetensors");
    s1c_err err = {{0}};
    assert_int_equal(st_write(good, ts, 2, &err), 0);
    st_set s;
    assert_int_equal(st_open(&s, good, &err), 0);
    assert_int_equal(s.n_tensors, 2);
    st_close(&s);

    /* the header length: past the end, over the limit, and a file too short to hold it */
    size_t len;
    uint8_t *img = (uint8_t *)tu_read(good, &len);
    put_u64(img, len - 8 + 1);
    char *p = write_tmp("hlen.safetensors", img, len);
    assert_st_fails(p, "header length");
    put_u64(img, UINT64_MAX);
    p = write_tmp("hlen_max.safetensors", img, len);
    assert_st_fails(p, "header length 18446744073709551615 is past the end");
    p = write_tmp("short.safetensors", img, 5);
    assert_st_fails(p, "not a safetensors file (5 bytes)");
    /* cut through the header and the data */
    for (size_t cut = 8; cut < len; cut += 5) {
        p = write_tmp("cut.safetensors", img, cut);
        assert_st_fails(p, "");
    }
    free(img);

    uint8_t data[16] = {0};
    for (size_t i = 0; i < sizeof st_bad_headers / sizeof st_bad_headers[0]; i++) {
        p = write_st(st_bad_headers[i].name, st_bad_headers[i].json, data, sizeof data);
        st_open_fails(p, st_bad_headers[i].what, __LINE__);
    }
}

/* ------------------------------------------------------------------ Hugging Face dirs */

/* A freshly initialized tiny qwen2 model, written once; variants copy from it. */
static char *hf_base(void) {
    static char *dir;
    if (dir) return dir;
    dir = tmp_path("hf_base");
    s1c_config c;
    s1c_err err = {{0}};
    assert_int_equal(s1c_config_preset(&c, "qwen2", "tiny", &err), 0);
    if (s1c_model_init_hf(&c, 1, S1C_F32, dir, &err) != 0) fail_msg("init: %s", err.msg);
    return dir;
}

/* Makes DIR = the base model with its config.json replaced (config != NULL) and/or its
 * weights rewritten through st_write with one tensor changed (tensor != NULL). */
typedef struct hf_edit {
    const char *config;   /* config.json text, or NULL to keep */
    const char *tensor;   /* tensor to change */
    bool drop;            /* leave it out */
    int dtype;            /* new dtype of the same byte size (-1: keep) */
    int64_t outer;        /* new outermost dimension, smaller (0: keep) */
} hf_edit;

static char *hf_variant(const char *name, hf_edit e) {
    char *dir = tmp_path(name), *base = hf_base();
    s1c_err err = {{0}};
    assert_int_equal(s1c_mkdir_p(dir, &err), 0);
    char *cfg_src = s1c_path_join(base, "config.json"), *cfg_dst = s1c_path_join(dir, "config.json");
    size_t len;
    char *text = tu_read(cfg_src, &len);
    assert_non_null(text);
    assert_int_equal(s1c_write_file_atomic(cfg_dst, e.config ? e.config : text, e.config ? strlen(e.config) : len, &err), 0);
    free(text);
    st_set s;
    assert_int_equal(st_open(&s, base, &err), 0);
    s1c_tensor *ts = malloc(s.n_tensors * sizeof *ts);
    int n = 0;
    for (uint64_t i = 0; i < s.n_tensors; i++) {
        s1c_tensor t = s.tensors[i];
        if (e.tensor && strcmp(t.name, e.tensor) == 0) {
            if (e.drop) continue;
            if (e.dtype >= 0) t.dtype = e.dtype;
            if (e.outer) {
                t.nbytes = t.nbytes / (uint64_t)t.shape[0] * (uint64_t)e.outer;
                t.shape[0] = e.outer;
            }
        }
        ts[n++] = t;
    }
    char *st_path = s1c_path_join(dir, "model.safetensors");
    if (st_write(st_path, ts, n, &err) != 0) fail_msg("%s", err.msg);
    st_close(&s);
    free(ts);
    free(st_path);
    free(cfg_src);
    free(cfg_dst);
    return dir;
}

/* The base model's config with a different hidden size. */
static char *config_with_dim(int dim) {
    s1c_config c;
    s1c_err err = {{0}};
    assert_int_equal(s1c_config_preset(&c, "qwen2", "tiny", &err), 0);
    c.dim = dim;
    return s1c_config_to_hf_json(&c, "float32");
}

static void test_hf_model_level(void **state) {
    (void)state;
    char *p = hf_variant("hf_same", (hf_edit){.dtype = -1});
    s1c_model *m = NULL;
    s1c_err err = {{0}};
    if (s1c_model_open(&m, p, &err) != 0) fail_msg("unedited HF copy: %s", err.msg);
    s1c_model_free(m);

    char *cfg = config_with_dim(32);
    p = hf_variant("hf_dim", (hf_edit){.config = cfg, .dtype = -1});
    assert_model_fails(p, "tensor 'model.embed_tokens.weight' has shape [512,64], config says [512,32]");
    free(cfg);
    p = hf_variant("hf_bert", (hf_edit){.config = "{\"model_type\": \"bert\", \"hidden_size\": 64}", .dtype = -1});
    assert_model_fails(p, "unsupported architecture 'bert'");
    p = hf_variant("hf_bad_json", (hf_edit){.config = "{\"model_type\": \"qwen2\", ", .dtype = -1});
    assert_model_fails(p, "config.json: not valid JSON");
    p = hf_variant("hf_no_layers", (hf_edit){.config = "{\"model_type\": \"qwen2\", \"hidden_size\": 64}", .dtype = -1});
    assert_model_fails(p, "config.json: missing \"intermediate_size\"");

    p = hf_variant("hf_missing", (hf_edit){.tensor = "model.layers.1.mlp.up_proj.weight", .drop = true, .dtype = -1});
    assert_model_fails(p, "missing tensor 'model.layers.1.mlp.up_proj.weight'");
    p = hf_variant("hf_no_bias", (hf_edit){.tensor = "model.layers.1.self_attn.k_proj.bias", .drop = true, .dtype = -1});
    assert_model_fails(p, "missing tensor 'model.layers.1.self_attn.k_proj.bias'");
    p = hf_variant("hf_shape", (hf_edit){.tensor = "model.layers.0.self_attn.q_proj.weight", .dtype = -1, .outer = 32});
    assert_model_fails(p, "tensor 'model.layers.0.self_attn.q_proj.weight' has shape [32,64], config says [64,64]");
    p = hf_variant("hf_i32", (hf_edit){.tensor = "model.layers.0.mlp.down_proj.weight", .dtype = S1C_I32});
    assert_model_fails(p, "tensor 'model.layers.0.mlp.down_proj.weight' has type i32");

    /* an empty directory: no config.json */
    char *dir = tmp_path("hf_no_config");
    assert_int_equal(s1c_mkdir_p(dir, &err), 0);
    assert_model_fails(dir, "config.json");
    /* and one with a config but no weights */
    p = hf_variant("hf_no_weights", (hf_edit){.dtype = -1});
    char *w = keep_path(s1c_path_join(p, "model.safetensors"));
    assert_int_equal(unlink(w), 0);
    assert_model_fails(p, "no model.safetensors");
}

/* ------------------------------------------------------------------ llama2.c .bin */

static void l2c_open_fails(const char *path, const char *what, int line) {
    l2c_file f;
    s1c_err err = {{0}};
    int rc = l2c_open(&f, path, &err);
    if (rc == 0) l2c_close(&f);
    check_fails(rc, &err, path, what, line);
}

static void test_llama2c(void **state) {
    (void)state;
    /* cuts through the header, the weights, the RoPE tables, and one byte short */
    const size_t cuts[] = {0, 4, 27, 28, 100, 4096, g_bin_len / 3, g_bin_len / 2, g_bin_len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char *p = write_tmp("cut.bin", g_bin, cuts[i]);
        const char *what = cuts[i] < 28 ? "truncated llama2.c header" : "truncated";
        l2c_open_fails(p, what, __LINE__);
        model_open_fails(p, what, __LINE__);
    }

    /* implausible headers: each field in turn */
    const struct { int field; int32_t value; } bad[] = {
        {0, 0}, {0, -64}, {0, 1 << 20}, {1, 0}, {2, 0}, {2, 100000}, {3, 0}, {3, 7} /* 64 % 7 */,
        {4, 0}, {4, 16} /* more kv heads than heads */, {4, 3}, {5, 0}, {5, INT32_MIN + 1}, {5, INT32_MIN}, {6, 0}, {6, -1},
    };
    uint8_t *img = malloc(g_bin_len);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(img, g_bin, g_bin_len);
        memcpy(img + 4 * bad[i].field, &bad[i].value, 4);
        char *p = write_tmp("implausible.bin", img, g_bin_len);
        l2c_open_fails(p, "implausible header", __LINE__);
        model_open_fails(p, "implausible header", __LINE__);
    }
    /* a header that asks for more data than the file holds */
    memcpy(img, g_bin, g_bin_len);
    int32_t layers = 6;
    memcpy(img + 8, &layers, 4);
    char *p = write_tmp("more_layers.bin", img, g_bin_len);
    l2c_open_fails(p, "truncated", __LINE__);
    free(img);

    p = tmp_path("does_not_exist.bin");
    assert_model_fails(p, "no such file");
}

/* ------------------------------------------------------------------ main */

static uint8_t *read_or_skip(const char *path, size_t *len) {
    uint8_t *p = (uint8_t *)tu_read(path, len);
    if (!p) {
        fprintf(stderr, "test_bad_input: %s not found: skipping\n", path);
        exit(77);
    }
    return p;
}

int main(void) {
    g_gguf_path = tu_path("S1C_DATA", "models/stories260K/stories260K.gguf");
    g_bin_path = tu_path("S1C_DATA", "models/stories260K/stories260K.bin");
    g_gguf = read_or_skip(g_gguf_path, &g_gguf_len);
    g_bin = read_or_skip(g_bin_path, &g_bin_len);
    g_dir = tu_path("S1C_TMP", "bad_input");
    s1c_err err;
    if (s1c_mkdir_p(g_dir, &err) != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_files_open),
        cmocka_unit_test(test_gguf_truncated),
        cmocka_unit_test(test_gguf_header),
        cmocka_unit_test(test_gguf_strings),
        cmocka_unit_test(test_gguf_tensor_infos),
        cmocka_unit_test(test_gguf_model_level),
        cmocka_unit_test(test_st_file_level),
        cmocka_unit_test(test_hf_model_level),
        cmocka_unit_test(test_llama2c),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed) tu_system("rm -rf '%s'", g_dir); /* ~60 MB of bad files; kept when a test failed */
    for (int i = 0; i < g_n_paths; i++) free(g_paths[i]);
    free(g_gguf);
    free(g_bin);
    free(g_gguf_path);
    free(g_bin_path);
    free(g_dir);
    return failed;
}
