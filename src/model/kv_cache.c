/* Paged KV cache: K and V for every layer in fixed-size blocks of positions. A block id names
 * block_size positions of every layer and KV head, so one id serves a whole sequence slice and
 * a block table is one list per sequence. Layout (bs = block_size, hd = head_dim): per layer and
 * KV head a slab of every block in id order, and per block
 *   K  [hd][bs]   transposed: element i of every position side by side, so the attention's
 *                 scores take 16 positions per vector load, shared by every query head of the
 *                 group, with no reduction across lanes
 *   V  [bs][hd]   the rows in order (the weighted sum reads them so)
 * One KV head's part of a block is one contiguous run of bs x hd elements, and a sequence whose
 * blocks have consecutive ids (a single sequence's, as the free list hands out low ids first)
 * is one run per layer and head. With the heads side by side in each block (runs of one block,
 * 2 KiB at bf16 for Qwen2.5-0.5B) decode attention waited longer on memory: with attention.c's
 * prefetch, 8K positions from memory in order, bf16 dot, 2 threads, 215 -> 168 us a layer
 * (bench_attention); one token's attention per layer in Q8_0 0.5B decode at 512-640 positions,
 * timed in place, 20-26 -> 16-17 us; s1c bench decode_ctx8k 64.9 -> 66.7 tok/s (4 interleaved
 * rounds).
 *
 * The tile layout (kv->tiles, where kern_attention_tiles says so: a BF16 cache of a suitable
 * shape on a CPU whose kernels take AMX) swaps the two: K [bs][hd] (a 16-position group's keys
 * are an AMX A tile as stored, for S^T = K Q^T) and V [hd][bs] (its values transposed, an A tile
 * for O^T = V^T P^T), so the tiles load both in place. Writing the pairs the tiles need for every
 * call instead ran only 1.13-1.18x the AVX-512 dot steps with both cores busy, the tile layout
 * ~2-2.7x (bench/results/2026-11-28-s19). */
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kv_internal.h"

uint64_t s1c_kv_block_bytes(const s1c_config *c, int block_size, int dtype) {
    uint64_t es = dtype == S1C_F32 ? 4 : 2;
    return 2ull * (uint64_t)c->n_layers * (uint64_t)block_size * (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim * es;
}

int s1c_kv_new(s1c_kv **out, const s1c_config *c, int block_size, int n_blocks, int dtype, s1c_err *err) {
    *out = NULL;
    if (block_size <= 0 || n_blocks <= 0) return s1c_fail(err, "KV cache: block size and block count must be positive");
    if (dtype != S1C_F32 && dtype != S1C_F16 && dtype != S1C_BF16) return s1c_fail(err, "KV cache: storage type must be f32, f16 or bf16");
    s1c_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return s1c_fail(err, "KV cache: out of memory");
    kv->n_layers = c->n_layers;
    kv->kv_dim = c->n_kv_heads * c->head_dim;
    kv->head_dim = c->head_dim;
    kv->block_size = block_size;
    kv->n_blocks = n_blocks;
    kv->dtype = dtype;
    kv->elem_size = dtype == S1C_F32 ? 4 : 2;
    kv->tiles = c->n_kv_heads > 0 && kern_attention_tiles(dtype, c->n_heads / c->n_kv_heads, c->head_dim, block_size);
    uint64_t half = s1c_kv_block_bytes(c, block_size, dtype) / 2 * (uint64_t)n_blocks;
    kv->k = s1c_alloc_huge(half); /* a token reads every layer's rows: huge pages keep it a stream */
    kv->v = s1c_alloc_huge(half);
    kv->refcount = calloc((size_t)n_blocks, sizeof(int32_t));
    kv->free_list = malloc((size_t)n_blocks * sizeof(int32_t));
    if (!kv->k || !kv->v || !kv->refcount || !kv->free_list) {
        s1c_kv_free(kv);
        return s1c_fail(err, "KV cache: cannot allocate %llu MiB", (unsigned long long)(2 * half >> 20));
    }
    /* hand out low block ids first */
    for (int i = 0; i < n_blocks; i++) kv->free_list[i] = n_blocks - 1 - i;
    kv->n_free = n_blocks;
    *out = kv;
    return 0;
}

void s1c_kv_free(s1c_kv *kv) {
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv->refcount);
    free(kv->free_list);
    free(kv);
}

int s1c_kv_block_size(const s1c_kv *kv) { return kv->block_size; }
int s1c_kv_n_free(const s1c_kv *kv) { return kv->n_free; }

int s1c_kv_alloc(s1c_kv *kv) {
    if (kv->n_free == 0) return -1;
    int b = kv->free_list[--kv->n_free];
    kv->refcount[b] = 1;
    return b;
}

void s1c_kv_ref(s1c_kv *kv, int block) { kv->refcount[block]++; }

void s1c_kv_unref(s1c_kv *kv, int block) {
    if (--kv->refcount[block] == 0) kv->free_list[kv->n_free++] = block;
}

int s1c_kv_n_blocks(const s1c_kv *kv) { return kv->n_blocks; }
int s1c_kv_refcount(const s1c_kv *kv, int block) { return kv->refcount[block]; }

/* Element 0 of (layer, KV head, block) in K or V. */
static uint8_t *block_at(const s1c_kv *kv, void *base, int layer, int head, int block) {
    size_t heads = (size_t)(kv->kv_dim / kv->head_dim);
    size_t idx = (((size_t)layer * heads + (size_t)head) * (size_t)kv->n_blocks + (size_t)block) * (size_t)kv->block_size * (size_t)kv->head_dim;
    return (uint8_t *)base + idx * kv->elem_size;
}

/* n values x[j] to elements i0 + j * stride of base, in the cache's type (one type test per
 * run, not per element). */
static void put_run(const s1c_kv *kv, uint8_t *base, size_t i0, size_t stride, const float *x, size_t n) {
    if (kv->dtype == S1C_F32) {
        float *d = (float *)base + i0;
        for (size_t j = 0; j < n; j++) d[j * stride] = x[j];
        return;
    }
    uint16_t *d = (uint16_t *)base + i0;
    if (kv->dtype == S1C_F16)
        for (size_t j = 0; j < n; j++) d[j * stride] = s1c_f32_to_f16(x[j]);
    else
        for (size_t j = 0; j < n; j++) d[j * stride] = s1c_f32_to_bf16(x[j]);
}

/* Per KV head: K transposed (element e of a block's positions bs apart: e * bs + off), V by row
 * (off * hd + i); in the tile layout K by row and V transposed. */
void kv_store(s1c_kv *kv, int layer, int block, int off, const float *k, const float *v) {
    size_t bs = (size_t)kv->block_size, hd = (size_t)kv->head_dim;
    size_t at_t = (size_t)off, at_r = (size_t)off * hd; /* a transposed run's start, a row's */
    for (int h = 0; h < kv->kv_dim / kv->head_dim; h++) {
        put_run(kv, block_at(kv, kv->k, layer, h, block), kv->tiles ? at_r : at_t, kv->tiles ? 1 : bs, k + (size_t)h * hd, hd);
        put_run(kv, block_at(kv, kv->v, layer, h, block), kv->tiles ? at_t : at_r, kv->tiles ? bs : 1, v + (size_t)h * hd, hd);
    }
}

const void *kv_head_base(const s1c_kv *kv, bool is_v, int layer, int head) { return block_at(kv, is_v ? kv->v : kv->k, layer, head, 0); }

void s1c_kv_copy(s1c_kv *kv, int dst, int src, int n) {
    /* a position's elements are spread over the block (K is transposed): the whole block is
     * copied; its positions from n on are written again before they are read */
    if (n <= 0) return;
    size_t bytes = (size_t)kv->block_size * (size_t)kv->head_dim * kv->elem_size;
    for (int l = 0; l < kv->n_layers; l++)
        for (int h = 0; h < kv->kv_dim / kv->head_dim; h++) {
            memcpy(block_at(kv, kv->k, l, h, dst), block_at(kv, kv->k, l, h, src), bytes);
            memcpy(block_at(kv, kv->v, l, h, dst), block_at(kv, kv->v, l, h, src), bytes);
        }
}
