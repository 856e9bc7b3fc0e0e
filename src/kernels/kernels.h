/* Kernels: the math of the forward pass over float arrays.
 *
 * Two families behind one API. The scalar reference (ref.c) is plain C written to be read:
 * reductions run in index order, one output at a time. The fast kernels (avx512.c, avx2.c)
 * are picked at run time from what the CPU supports (dispatch.c); they round differently
 * from the reference (vector accumulators; tolerances in tests/unit/test_kernels.c) but keep
 * the property forks and sweeps rely on (DESIGN.md, "Batch invariance"): every output
 * element is one reduction whose order depends only on the vector length n, never on which
 * other rows share the call, how the rows are blocked or how many threads split the work.
 * So within one kernel family a sequence's logits are bitwise the same alone or in a batch.
 * The model's matrices go through packed copies (kern_pack) where the avx512 family has a packed
 * kernel; one kernel serves one row and many, so the same holds there. Attention
 * (kern_attention) is one call per row and KV head.
 *
 * $S1C_KERNELS picks the family ("ref", "avx2", "avx512"; unset or "auto": the best this CPU
 * runs); kern_select does the same from code. */
#ifndef S1C_KERNELS_H
#define S1C_KERNELS_H

#include <stdbool.h>
#include <stdint.h>
#include "s1c/base.h"
#include "s1c/formats.h"

/* o = x / sqrt(mean(x^2) + eps) * w, over n elements. o may alias x. */
void kern_rmsnorm(float *o, const float *x, const float *w, int n, float eps);

/* out[t][i] = sum_j W[i][j] * x[t][j] for t < n_rows, i < d; W is [d][n] of dtype
 * F32, F16 or BF16 (row-major, rows contiguous), Q8_0 / Q4_0 / Q4_1 / Q5_0 / Q5_1 (rows of
 * n / 32 ggml blocks, n a multiple of 32) or Q4_K / Q5_K / Q6_K (rows of n / 256 ggml
 * super-blocks, n a multiple of 256). Float weights are widened to f32 exactly and multiplied
 * with f32 activations in every family; with quantized weights the activations are quantized to
 * 8 bits per 32-block (scale max|x| / 127) and each block's integer dot is exact (llama.cpp's
 * q8_0 scheme; for Q4_1/Q5_x and the K-quants each 32-block's, or 16-element sub-block's,
 * integer dot, then its scale and min: the exact steps are in qmatmul.c), so the result is
 * within the activations' rounding of the dequantized product. The row-major path of Q4_1/Q5_x
 * and the K-quants is the scalar reference in every family; their fast path is the packed
 * kernel, which gives the reference's bits. */
void kern_matmul(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d);
/* Whether kern_matmul reads this dtype's blocks in place (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
 * Q5_K, Q6_K); the loader widens matrices of the other block types (Q2_K, Q3_K) to f32. */
bool kern_is_qmatmul_dtype(int dtype);
/* The same, with the output rows i split over the pool's threads (pool NULL: this thread).
 * Bitwise the same result as kern_matmul for any thread count. */
void kern_matmul_mt(s1c_pool *pool, float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d);

/* A weight matrix repacked once (at model load) for the multi-row kernels of prefill and batched
 * decode, which decode uses too (M = 1), so a row's result never depends on the batch.
 * Layout: panels of 16 output rows, k-major, so one zmm load holds 16 rows' weights for one k
 * (F32), one k-pair (BF16) or four k (Q8_0/Q4_0 bytes; block scales beside), and a tile of
 * up to 6 activation rows x 4 panels keeps its outputs in registers. Reduction order per output:
 * F32 and BF16: one FMA chain over k from 0 on the exactly widened weights (so BF16 gives the F32
 * kernel's result on the widened matrix); with KERN_PACK_BF16_DOT, BF16 instead rounds the
 * activations to bf16 (as llama.cpp does) and takes one vdpbf16ps per k-pair (twice the
 * throughput, activations' rounding 2^-9 relative); Q8_0/Q4_0: each block's exact integer dot (vpdpbusd), then one
 * FMA chain over blocks of isum * (w scale * x scale); Q4_1/Q5_0/Q5_1 (5.0/5.5/6.0 bits per weight
 * packed, as in the files: records per pair of blocks of f16 d (and m), fifth bits as a bit-plane
 * and Q4_0's nibbles, one stream per panel) and Q4_K/Q5_K/Q6_K (4.625/5.625/6.625 bits per
 * weight packed: nibbles in Q4_0's layout, high bits as byte masks, u8/i8 sub-block scales, f16
 * super-block scales, one stream per panel): the reference's operations per 32-block (qmatmul.c),
 * so the same bits as kern_ref_matmul. None of it depends on the number of rows,
 * how they are tiled or how the panels are split over threads. Several matrices in one
 * kern_matmul_packed_n pass may mix quantized types (one activation quantization serves all). */
typedef struct kern_packed kern_packed;
/* Packs W ([d][n] of dtype, as kern_matmul takes it; it must outlive the packing, which keeps a
 * view for the other kernel families). *out is NULL (and 0 returned) when this CPU or the
 * selected family has no packed kernel for dtype; the caller keeps the row-major path. */
enum { KERN_PACK_BF16_DOT = 1 };
int kern_pack(kern_packed **out, const void *w, int dtype, int n, int d, int flags, s1c_err *err);
/* Whether KERN_PACK_BF16_DOT packs here (the AVX-512 family on a CPU with AVX512_BF16). */
bool kern_packs_bf16_dot(void);
/* The row count from which packed matmuls of dtype run on AMX int8 tiles (Q4_0 batches on an
 * Intel Xeon with AMX; the same bits as below it), 0 where they never do. For the benchmark's
 * limits. */
int kern_packed_amx_int8_rows(int dtype);
void kern_packed_free(kern_packed *p);
size_t kern_packed_bytes(const kern_packed *p);
/* Scratch for the converted activations, reused from call to call (a multi-megabyte buffer
 * allocated per call would be fresh pages, zeroed by the kernel, every time). Start zeroed;
 * one per calling thread; kern_ws_free releases it. */
typedef struct kern_ws {
    void *buf;
    size_t cap;
} kern_ws;
void kern_ws_free(kern_ws *ws);
/* out[t][i] = sum_j W[i][j] x[t][j] through the packed kernel, output panels split over the pool
 * (pool NULL: this thread); ws NULL: a temporary workspace. Another family selected since the
 * packing: kern_matmul_mt on W. */
void kern_matmul_packed(s1c_pool *pool, float *out, const float *x, int n_rows, const kern_packed *p, kern_ws *ws);
/* Several matrices on the same activations (q, k, v; gate, up) in one pass over the pool: the
 * activations are prepared once and the threads meet once. out[i] = x W_i^T, each bitwise as
 * kern_matmul_packed would give it. */
void kern_matmul_packed_n(s1c_pool *pool, int n_mats, float *const *out, const float *x, int n_rows, const kern_packed *const *p,
                          kern_ws *ws);
/* The feed-forward's gated pair: gate_out = silu(x gate^T) * (x up^T), up_out its scratch
 * (overwritten); bitwise kern_matmul_packed_n on both, then kern_swiglu. */
void kern_matmul_packed_glu(s1c_pool *pool, float *gate_out, float *up_out, const float *x, int n_rows, const kern_packed *gate,
                            const kern_packed *up, kern_ws *ws);

/* sum_i a[i] * b[i] (the attention score). */
float kern_dot(const float *a, const float *b, int n);
/* y[i] += a * x[i] (the attention-weighted sum of values). */
void kern_axpy(float *y, float a, const float *x, int n);

/* Attention of one query row for the nh query heads that share one KV head (a GQA group), over
 * positions 0..n-1 of a paged cache (the KV cache's layout, src/model/kv_cache.c): with
 * B = blocks[j / bs] * block_stride, element i of position j's key is k[B + i * bs + j % bs]
 * (K transposed within a block) and its value row starts at v[B + (j % bs) * ld]; dtype F32,
 * F16 or BF16, hd <= KERN_ATTN_MAX_HD. out[h] = sum_j softmax_j(scale * q[h] . k_j) v_j, computed flash-style over
 * chunks of 64 positions with an online softmax (attention.c); nothing depends on other rows,
 * so a row's result is bitwise the same in any batch and thread split. */
/* Scratch: the scores of a chunk for every head, then two chunks of K and V rows converted to f32
 * (head sizes up to KERN_ATTN_CONV_HD; larger heads take the generic steps, one row at a time). */
enum { KERN_ATTN_MAX_HEADS = 64, KERN_ATTN_MAX_HD = 1024, KERN_ATTN_CONV_HD = 256,
       KERN_ATTN_SCRATCH = KERN_ATTN_MAX_HEADS * 64 + 2 * 64 * KERN_ATTN_CONV_HD /* floats */ };
typedef struct kern_attn_args {
    const float *q; /* [nh][hd] */
    float *out;     /* [nh][hd] */
    int nh, hd, n, bs, dtype;
    const void *k, *v;
    const int32_t *blocks;
    size_t block_stride, ld; /* elements from one block to the next; from one V row to the next */
    float scale;
    float *scratch; /* KERN_ATTN_SCRATCH floats */
    bool bf16_dot;  /* a BF16 cache where the CPU has AVX512_BF16: the query and the softmax weights
                     * rounded to bf16, vdpbf16ps (attention.c); else f32 arithmetic */
    int n_cached;   /* positions [0, n_cached) are expected in the caches (other rows of the batch
                     * read them too): not prefetched. A hint: the result does not depend on it */
    bool tiles;     /* the cache's tile layout (kern_attention_tiles): within a block K [bs][hd]
                     * (rows) and V [hd][bs] (transposed), what AMX tiles load in place; element i
                     * of position j's key at k[B + (j % bs) * hd + i], of its value at
                     * v[B + i * bs + j % bs] (ld unused) */
} kern_attn_args;
void kern_attention(const kern_attn_args *a);
/* Whether kern_attention takes the bf16 dot steps for a (bf16_dot asked for, a BF16 cache, an
 * even head size, the avx512 family on a CPU with AVX512_BF16; in the tile layout: the AMX steps). */
bool kern_attention_dot(const kern_attn_args *a);
/* Whether a KV cache of this type and shape takes the tile layout: BF16, groups of at most 16
 * heads, hd a multiple of 32 up to 128, blocks of a multiple of 16 positions, where the packed
 * kernels take AMX (avx512 family, AVX512_BF16). Its attention then runs the bf16 dot steps on AMX
 * tiles, the keys and values read in place (with bf16_dot; without, the generic steps). */
bool kern_attention_tiles(int dtype, int nh, int hd, int bs);
/* The end of a task that called kern_attention: the thread's AMX tiles returned (TILERELEASE), as
 * the packed kernels' tasks do, so that no thread waits or is switched out with tiles in use. */
void kern_attention_done(void);

/* RoPE for position pos: kern_rope_angles gives cs[i], sn[i] = cos, sin of pos / theta^(2i /
 * head_dim) for i < head_dim / 2 (HF's fp32 inv_freq), the same for every head, layer, q and k;
 * kern_rope_apply rotates each head of vec (n_heads heads of head_dim) by them. Pairs are
 * (i, i + head_dim/2) when rotate_half (HF/NEOX layout), else (2i, 2i+1) (llama2.c/GGUF llama). */
void kern_rope_angles(float *cs, float *sn, int head_dim, int pos, float theta);
void kern_rope_apply(float *vec, int n_heads, int head_dim, const float *cs, const float *sn, bool rotate_half);

/* In-place softmax over n elements. */
void kern_softmax(float *x, int n);

/* The first index of the largest of x[0..n-1] (greedy sampling): NaNs never win, except that
 * x[0] NaN gives 0 (the scalar fold `if (x[i] > x[best]) best = i` in every family). */
int kern_argmax(const float *x, int n);

/* a[i] = silu(a[i]) * b[i] */
void kern_swiglu(float *a, const float *b, int n);
/* kern_swiglu over the pool (NULL: this thread). */
void kern_swiglu_mt(s1c_pool *pool, float *a, const float *b, size_t n);

/* Row `row` of a [rows][n] matrix of dtype F32/F16/BF16 or a block type (a whole number of
 * blocks per row: the quantized token embeddings), as f32. */
void kern_get_row(float *dst, const void *w, int dtype, int64_t row, int n);

/* C = beta*C + op(A) * op(B), row-major, f32 (the trainer's matrix products). op(A) is M x K:
 * A[m*lda + k], or A[k*lda + m] when trans_a. op(B) is K x N: B[k*ldb + n], or B[n*ldb + k]
 * when trans_b. beta 0: C is only written, never read (it may hold NaNs); beta 1: accumulate
 * (other values scale C first). Work is split over the pool's threads by blocks of C (pool
 * NULL: this thread). Every C element is one multiply-add chain in increasing k, starting
 * from 0 or from C, so the result is bitwise the same for any thread count or blocking. */
void kern_sgemm(s1c_pool *pool, bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda, const float *B,
                int ldb, float beta, float *C, int ldc);
/* The same contract with A and B rounded to bf16 (round to nearest even) and multiplied with
 * f32 accumulation (the trainer's BF16 compute mode): AVX512_BF16 dot products (vdpbf16ps,
 * two products per step) where the CPU has them, else the f32 kernels on rounded values. */
void kern_sgemm_bf16(s1c_pool *pool, bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc);

/* Selects the kernel family: "ref", "avx2", "avx512" or "auto". Returns -1 (and changes
 * nothing) for an unknown name or one this CPU cannot run. Not thread-safe against kernels
 * running at the same time: call it before a forward, not during one. */
int kern_select(const char *name);
/* The family in use ("ref", "avx2", "avx512"). */
const char *kern_name(void);
/* The same as a value, for the kernels' own tests of it on hot paths (a pointer comparison). */
typedef enum { KERN_REF, KERN_AVX2, KERN_AVX512 } kern_family_id;
kern_family_id kern_family(void);

/* The scalar reference, callable whatever family is selected (tests compare against it). */
void kern_ref_rmsnorm(float *o, const float *x, const float *w, int n, float eps);
void kern_ref_matmul(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d);
float kern_ref_dot(const float *a, const float *b, int n);
void kern_ref_axpy(float *y, float a, const float *x, int n);
int kern_ref_argmax(const float *x, int n);
/* kern_sgemm in plain C, one thread: c = beta*c, then c += a*b in increasing k. */
void kern_ref_sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc);
/* kern_sgemm_bf16 in plain C: A and B rounded to bf16, then as kern_ref_sgemm. */
void kern_ref_sgemm_bf16(bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                         float beta, float *C, int ldc);

#endif
