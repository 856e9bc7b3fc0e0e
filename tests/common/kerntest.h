/* Helpers of the quantized-kernel tests (test_kquant_kernels.c, test_q5x_kernels.c): random
 * vectors, a private pool, whether this CPU packs a type, and the row-major paths of every
 * kernel family against the reference. */
#ifndef S1C_KERNTEST_H
#define S1C_KERNTEST_H

#include <stdbool.h>
#include "modelrun.h"
#include "s1c/base.h"

/* n values of scale * N(0, 1) (malloc'd). */
float *kt_randv(s1c_rng *r, size_t n, float scale);
/* A pool of `threads` workers, or NULL (the caller's thread) for 1; s1c_pool_free frees it. */
s1c_pool *kt_pool(int threads);
/* Whether kern_pack keeps matrices of dtype packed on this CPU (else the row-major kernels run). */
bool kt_have_packed(int dtype);
/* For each of the nt types: a random [d][n] matrix from make, and kern_matmul / kern_matmul_mt of
 * every family (ref, avx2, avx512) equal bitwise to kern_ref_matmul on 5 rows. */
void kt_check_families_rowmajor(const int *types, int nt, int n, mr_matrix_fn make);
/* The AVX2 family's rows (qmatmul_avx2.c: groups of 8 output rows, runs of blocks) bitwise as
 * kern_ref_matmul for each type and shape {n, d, rows}; the first activation block at +-127
 * once quantized. A message and nothing else where the CPU has no AVX2. */
void kt_check_avx2_rows(const int *types, int nt, const int (*shapes)[3], int ns, mr_matrix_fn make);

#endif
