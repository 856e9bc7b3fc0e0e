#ifndef S1C_KV_INTERNAL_H
#define S1C_KV_INTERNAL_H

#include "s1c/model.h"

struct s1c_kv {
    int n_layers, kv_dim, head_dim, block_size, n_blocks;
    int dtype;
    size_t elem_size;
    void *k, *v;
    int32_t *refcount;
    int32_t *free_list;
    int n_free;
};

/* Position `off` of a block: its K and V rows (kv_dim values each) stored in the cache's type
 * and layout (kv_cache.c). */
void kv_store(s1c_kv *kv, int layer, int block, int off, const float *k, const float *v);

/* Layer `layer`'s K (or V) at block 0: block b of that layer starts b * block_size * kv_dim
 * elements further; inside a block K is [kv_dim][block_size], V [kv_heads][block_size][head_dim]
 * (kern_attention reads blocks in place). */
const void *kv_layer_base(const s1c_kv *kv, bool is_v, int layer);

#endif
