#ifndef S1C_KV_INTERNAL_H
#define S1C_KV_INTERNAL_H

#include "s1c/model.h"

struct s1c_kv {
    int n_layers, kv_dim, head_dim, block_size, n_blocks;
    int dtype;
    bool tiles; /* the tile layout (kern_attention_tiles): per block K [bs][hd], V [hd][bs] */
    size_t elem_size;
    void *k, *v;
    int32_t *refcount;
    int32_t *free_list;
    int n_free;
};

/* Position `off` of a block: its K and V rows (kv_dim values each) stored in the cache's type
 * and layout (kv_cache.c). */
void kv_store(s1c_kv *kv, int layer, int block, int off, const float *k, const float *v);

/* KV head `head` of layer `layer`, its K (or V) at block 0: block b starts b * block_size *
 * head_dim elements further; inside a block K is [head_dim][block_size], V [block_size][head_dim]
 * (kern_attention reads blocks in place), or in the tile layout the other way round. */
const void *kv_head_base(const s1c_kv *kv, bool is_v, int layer, int head);

#endif
