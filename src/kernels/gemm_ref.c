/* The scalar reference kern_sgemm (and kern_sgemm_bf16, on rounded inputs): one output at a time, c = beta*c then c += a*b in
 * increasing k (the fast families take the same order with fused multiply-adds). */
#include "kern_internal.h"
#include "s1c/base.h"

static inline float round_bf16(float v) { return s1c_bf16_to_f32(s1c_f32_to_bf16(v)); }

static void ref_sgemm_block(const gemm_args *g, int m0, int m1, int n0, int n1) {
    for (int m = m0; m < m1; m++)
        for (int n = n0; n < n1; n++) {
            float *c = g->C + (size_t)m * g->ldc + n;
            float s = g->beta == 0.0f ? 0.0f : g->beta * *c;
            for (int k = 0; k < g->K; k++) {
                float a = g->ta ? g->A[(size_t)k * g->lda + m] : g->A[(size_t)m * g->lda + k];
                float b = g->tb ? g->B[(size_t)n * g->ldb + k] : g->B[(size_t)k * g->ldb + n];
                if (g->bf16) {
                    a = round_bf16(a);
                    b = round_bf16(b);
                }
                s += a * b;
            }
            *c = s;
        }
}

void kern_ref_sgemm(bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc) {
    gemm_args g = {trans_a, trans_b, false, M, N, K, A, B, lda, ldb, ldc, beta, C};
    ref_sgemm_block(&g, 0, M, 0, N);
}

void kern_ref_sgemm_bf16(bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                         float beta, float *C, int ldc) {
    gemm_args g = {trans_a, trans_b, true, M, N, K, A, B, lda, ldb, ldc, beta, C};
    ref_sgemm_block(&g, 0, M, 0, N);
}

void gemm_ref_block(const gemm_args *g, int m0, int m1, int n0, int n1) { ref_sgemm_block(g, m0, m1, n0, n1); }
