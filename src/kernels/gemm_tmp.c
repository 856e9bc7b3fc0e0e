/* Placeholder for kern_sgemm until the blocked kernels land: plain loops, fixed order. */
#include "kernels.h"

void kern_sgemm(s1c_pool *pool, bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc) {
    (void)pool;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            float acc = 0;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(size_t)k * lda + m] : A[(size_t)m * lda + k];
                float b = trans_b ? B[(size_t)n * ldb + k] : B[(size_t)k * ldb + n];
                acc += a * b;
            }
            float *c = &C[(size_t)m * ldc + n];
            *c = beta == 0.0f ? acc : *c + acc;
        }
}
