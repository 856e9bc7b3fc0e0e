/* llama2.c checkpoints ("legacy" version 0 format, as run.c reads them): 7 int32 header
 * fields, then float32 tensors in a fixed order; a negative vocab_size means a separate
 * classifier follows. The tensors are exposed under GGUF llama names so the model loader
 * has one naming scheme. Layer-stacked arrays are split into per-layer views. */
#include "s1c/formats.h"
#include "cursor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;  /* GGUF name, with %d for the layer */
    int64_t rows, cols; /* per layer; cols 0 = 1-D */
    bool per_layer;
} l2c_slot;

static int add_view(l2c_file *f, const char *name, int layer, int64_t rows, int64_t cols, const uint8_t *p) {
    s1c_tensor *t = &f->tensors[f->n_tensors++];
    char buf[64];
    snprintf(buf, sizeof buf, name, layer);
    t->name = strdup(buf);
    t->dtype = S1C_F32;
    t->ndim = cols ? 2 : 1;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->data = p;
    t->nbytes = (uint64_t)rows * (uint64_t)(cols ? cols : 1) * 4;
    return t->name ? 0 : -1;
}

int l2c_open(l2c_file *f, const char *path, s1c_err *err) {
    memset(f, 0, sizeof *f);
    if (s1c_mfile_open(&f->file, path, err) != 0) return -1;
    cursor c = {.base = f->file.data, .size = f->file.size};
    l2c_header *h = &f->hdr;
    h->dim = cur_i32(&c);
    h->hidden_dim = cur_i32(&c);
    h->n_layers = cur_i32(&c);
    h->n_heads = cur_i32(&c);
    h->n_kv_heads = cur_i32(&c);
    h->vocab_size = cur_i32(&c);
    h->seq_len = cur_i32(&c);
    if (c.bad) { l2c_close(f); return s1c_fail(err, "%s: truncated llama2.c header (%zu bytes)", path, f->file.size); }
    h->shared_classifier = h->vocab_size > 0;
    /* INT32_MIN has no positive counterpart: make it 0, which the bounds below refuse */
    if (h->vocab_size < 0) h->vocab_size = h->vocab_size == INT32_MIN ? 0 : -h->vocab_size;
    /* reasonable bounds: they also keep every product below in 64-bit range */
    if (h->dim <= 0 || h->dim > 65536 || h->hidden_dim <= 0 || h->hidden_dim > 1 << 20 || h->n_layers <= 0 ||
        h->n_layers > 1024 || h->n_heads <= 0 || h->n_kv_heads <= 0 || h->n_kv_heads > h->n_heads ||
        h->n_heads % h->n_kv_heads != 0 || h->dim % h->n_heads != 0 || (h->dim / h->n_heads) % 2 != 0 ||
        h->vocab_size <= 0 || h->vocab_size > 1 << 24 || h->seq_len <= 0 || h->seq_len > 1 << 24) {
        l2c_close(f);
        return s1c_fail(err, "%s: not a llama2.c checkpoint (implausible header: dim %d, hidden %d, layers %d, heads %d/%d, vocab %d, seq_len %d)",
                        path, h->dim, h->hidden_dim, h->n_layers, h->n_heads, h->n_kv_heads, h->vocab_size, h->seq_len);
    }
    int64_t dim = h->dim, hid = h->hidden_dim, L = h->n_layers, V = h->vocab_size;
    int64_t hs = dim / h->n_heads, kv_dim = hs * h->n_kv_heads;
    /* run.c's order */
    const l2c_slot slots[] = {
        {"token_embd.weight", V, dim, false},
        {"blk.%d.attn_norm.weight", dim, 0, true},
        {"blk.%d.attn_q.weight", dim, dim, true},
        {"blk.%d.attn_k.weight", kv_dim, dim, true},
        {"blk.%d.attn_v.weight", kv_dim, dim, true},
        {"blk.%d.attn_output.weight", dim, dim, true},
        {"blk.%d.ffn_norm.weight", dim, 0, true},
        {"blk.%d.ffn_gate.weight", hid, dim, true},
        {"blk.%d.ffn_down.weight", dim, hid, true},
        {"blk.%d.ffn_up.weight", hid, dim, true},
        {"output_norm.weight", dim, 0, false},
    };
    int nslots = (int)(sizeof slots / sizeof slots[0]);
    int max_tensors = 3 + 9 * (int)L;
    f->tensors = calloc((size_t)max_tensors, sizeof(s1c_tensor));
    if (!f->tensors) { l2c_close(f); return s1c_fail(err, "%s: out of memory", path); }
    uint64_t need = 28;
    for (int s = 0; s < nslots; s++) {
        int nl = slots[s].per_layer ? (int)L : 1;
        uint64_t per = (uint64_t)slots[s].rows * (uint64_t)(slots[s].cols ? slots[s].cols : 1) * 4;
        for (int l = 0; l < nl; l++) {
            if (need + per > f->file.size) {
                char nm[64];
                snprintf(nm, sizeof nm, slots[s].name, l);
                uint64_t total = need + per;
                l2c_close(f);
                return s1c_fail(err, "%s: truncated: tensor '%s' needs bytes up to %llu, the file has %zu", path, nm, (unsigned long long)total, (size_t)c.size);
            }
            if (add_view(f, slots[s].name, l, slots[s].rows, slots[s].cols, f->file.data + need) != 0) {
                l2c_close(f);
                return s1c_fail(err, "%s: out of memory", path);
            }
            need += per;
        }
    }
    /* legacy RoPE tables (freq_cis_real, freq_cis_imag), unused: run.c recomputes RoPE */
    need += (uint64_t)h->seq_len * (uint64_t)hs * 4;
    if (h->shared_classifier) {
        if (need > f->file.size) { uint64_t n = need; l2c_close(f); return s1c_fail(err, "%s: truncated: RoPE tables end at %llu, the file has %zu bytes", path, (unsigned long long)n, (size_t)c.size); }
    } else {
        uint64_t per = (uint64_t)V * (uint64_t)dim * 4;
        if (need + per > f->file.size) { uint64_t n = need + per; l2c_close(f); return s1c_fail(err, "%s: truncated: classifier ends at %llu, the file has %zu bytes", path, (unsigned long long)n, (size_t)c.size); }
        add_view(f, "output.weight", 0, V, dim, f->file.data + need);
        need += per;
    }
    return 0;
}

void l2c_close(l2c_file *f) {
    for (int i = 0; i < f->n_tensors; i++) free((char *)f->tensors[i].name);
    free(f->tensors);
    s1c_mfile_close(&f->file);
    memset(f, 0, sizeof *f);
}

const s1c_tensor *l2c_find(const l2c_file *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}
