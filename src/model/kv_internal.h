#ifndef S1C_KV_INTERNAL_H
#define S1C_KV_INTERNAL_H

#include "s1c/model.h"

struct s1c_kv {
    int n_layers, kv_dim, block_size, n_blocks;
    int dtype;
    size_t elem_size;
    void *k, *v;
    int32_t *refcount;
    int32_t *free_list;
    int n_free;
};

void kv_store(s1c_kv *kv, int layer, int block, int off, const float *k, const float *v);
/* One position's K (or V) row as f32: a pointer into the cache for F32 storage, else
 * converted into scratch (kv_dim floats). */
const float *kv_row(const s1c_kv *kv, bool is_v, int layer, int block, int off, float *scratch);

/* Layer `layer`'s K (or V) rows of block 0, position 0: block b's position o of that layer starts
 * (b * block_size + o) * kv_dim elements further (kern_attention reads blocks in place). */
const void *kv_layer_base(const s1c_kv *kv, bool is_v, int layer);

#endif
