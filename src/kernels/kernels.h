/* Scalar reference kernels: plain C over float arrays, written to be read. Every fast
 * kernel added later is tested against these. Reductions run in index order, one output
 * at a time, so a row's result never depends on which other rows share the call: the
 * batch-invariance that forks and sweeps rely on (DESIGN.md). */
#ifndef S1C_KERNELS_H
#define S1C_KERNELS_H

#include <stdbool.h>
#include <stdint.h>
#include "s1c/formats.h"

/* o = x / sqrt(mean(x^2) + eps) * w, over n elements. o may alias x. */
void kern_rmsnorm(float *o, const float *x, const float *w, int n, float eps);

/* out[t][i] = sum_j W[i][j] * x[t][j] for t < n_rows, i < d; W is [d][n] of dtype
 * F32, F16 or BF16 (row-major, rows contiguous). */
void kern_matmul(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d);

/* Rotates each head of vec (n_heads heads of head_dim) by position pos. Pairs are
 * (i, i + head_dim/2) when rotate_half (HF/NEOX layout), else (2i, 2i+1) (llama2.c/GGUF llama). */
void kern_rope(float *vec, int n_heads, int head_dim, int pos, float theta, bool rotate_half);

/* In-place softmax over n elements. */
void kern_softmax(float *x, int n);

/* a[i] = silu(a[i]) * b[i] */
void kern_swiglu(float *a, const float *b, int n);

/* Row `row` of a [rows][n] matrix of dtype F32/F16/BF16, as f32. */
void kern_get_row(float *dst, const void *w, int dtype, int64_t row, int n);

#endif
