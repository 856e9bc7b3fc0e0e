/* libFuzzer target: the GGUF reader. A parse either fails cleanly (err filled, nothing
 * leaked) or yields a file whose every view is safe to read: every tensor's bytes, every
 * metadata value and every string of every string array. Reading them all here is what lets
 * ASan catch a view that points outside the input. */
#include <stdint.h>
#include <string.h>

#include "s1c/formats.h"

/* Keeps the sums alive so the reads are not optimized away. */
static volatile uint64_t sink;

static uint64_t sum_bytes(const void *p, uint64_t n) {
    const uint8_t *b = p;
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) s += b[i];
    return s;
}

static uint64_t touch_kv(const gguf_file *g, const gguf_kv *kv) {
    uint64_t s = strlen(kv->key);
    s1c_str str;
    uint64_t u;
    double f;
    bool b;
    /* the typed getters must cope with any stored type (they convert or refuse) */
    if (gguf_get_str(g, kv->key, &str, NULL) == 1) s += sum_bytes(str.p, str.len);
    if (gguf_get_u64(g, kv->key, &u, NULL) == 1) s += u;
    if (gguf_get_f64(g, kv->key, &f, NULL) == 1) s += f == f;
    if (gguf_get_bool(g, kv->key, &b, NULL) == 1) s += b;
    if (kv->type != GGUF_ARRAY) return s;
    if (kv->arr_type == GGUF_STRING) {
        for (uint64_t i = 0; i < kv->arr_n; i++) s += sum_bytes(kv->arr_strs[i].p, kv->arr_strs[i].len);
    } else if (kv->arr_type != GGUF_ARRAY) {
        /* numeric: read every element through the public accessor; the integer view of a
         * float array is only defined for finite values, so read floats as doubles */
        bool is_float = kv->arr_type == GGUF_F32 || kv->arr_type == GGUF_F64;
        for (uint64_t i = 0; i < kv->arr_n; i++)
            s += is_float ? (uint64_t)(gguf_arr_f64(kv, i) == 0.0) : (uint64_t)gguf_arr_i64(kv, i);
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_file g;
    memset(&g, 0, sizeof g); /* gguf_parse expects a zeroed struct (gguf_open does this) */
    s1c_err err = {{0}};
    if (gguf_parse(&g, data, size, "<fuzz>", &err) == 0) {
        uint64_t s = g.version + g.alignment + g.data_offset;
        for (uint64_t i = 0; i < g.n_kv; i++) s += touch_kv(&g, &g.kv[i]);
        for (uint64_t i = 0; i < g.n_tensors; i++) {
            const s1c_tensor *t = &g.tensors[i];
            /* lookups by name must find a tensor of that name (names are unique) */
            if (gguf_find_tensor(&g, t->name) != t) __builtin_trap();
            s += sum_bytes(t->data, t->nbytes) + s1c_tensor_nelem(t);
        }
        sink = s;
    } else if (err.msg[0] == 0) {
        __builtin_trap(); /* a failure must say why */
    }
    gguf_close(&g);
    return 0;
}
