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

#endif
