/* kern_sgemm's two paths give the same bits: products at most one nc block (512 columns) wide
 * take the unpacked path of gemm_driver.c (op(A) read in place, op(B) in place unless
 * transposed), wider ones pack both operands. Both promise the same arithmetic — each C
 * element one FMA chain in increasing k over the same kc slices, from 0 or from C — so a
 * 600-column product (packed) and the same product computed as two 300-column halves
 * (unpacked) must agree bitwise, for every trans_a/trans_b, beta 0 and 1, M crossing the
 * 12- and 6-row tiles, K crossing the 256-deep slices, in every family this CPU runs. The
 * tolerance against the scalar reference is tests/unit/test_gemm.c's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "testutil.h"

static float *randn(s1c_rng *r, size_t n) {
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = s1c_rng_normal(r);
    return x;
}

static void check_family(const char *fam) {
    if (kern_select(fam) != 0) return; /* not on this CPU */
    s1c_rng r;
    s1c_rng_seed(&r, 11);
    const int Ms[] = {1, 13, 37}, Ks[] = {1, 33, 300}, N = 600, H = 300;
    for (int mi = 0; mi < 3; mi++)
        for (int ki = 0; ki < 3; ki++)
            for (int tr = 0; tr < 4; tr++)
                for (int beta = 0; beta < 2; beta++) {
                    int M = Ms[mi], K = Ks[ki];
                    bool ta = tr & 1, tb = tr & 2;
                    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N + 7;
                    float *A = randn(&r, (size_t)(ta ? K : M) * lda), *B = randn(&r, (size_t)(tb ? N : K) * ldb);
                    float *C0 = randn(&r, (size_t)M * ldc), *full = malloc((size_t)M * ldc * sizeof(float)),
                          *half = malloc((size_t)M * ldc * sizeof(float));
                    memcpy(full, C0, (size_t)M * ldc * sizeof(float));
                    memcpy(half, C0, (size_t)M * ldc * sizeof(float));
                    kern_sgemm(NULL, ta, tb, M, N, K, A, lda, B, ldb, (float)beta, full, ldc);
                    for (int h = 0; h < 2; h++) {
                        const float *Bh = tb ? B + (size_t)h * H * ldb : B + (size_t)h * H;
                        kern_sgemm(NULL, ta, tb, M, H, K, A, lda, Bh, ldb, (float)beta, half + (size_t)h * H, ldc);
                    }
                    for (int m = 0; m < M; m++)
                        if (memcmp(full + (size_t)m * ldc, half + (size_t)m * ldc, (size_t)N * sizeof(float)) != 0)
                            fail_msg("%s: M %d K %d ta %d tb %d beta %d: row %d differs between the paths", fam, M, K, ta, tb,
                                     beta, m);
                    /* the padding between C's rows is never touched */
                    for (int m = 0; m < M; m++)
                        for (int j = N; j < ldc; j++) assert_true(full[(size_t)m * ldc + j] == C0[(size_t)m * ldc + j]);
                    free(A), free(B), free(C0), free(full), free(half);
                }
}

static void test_paths_agree(void **state) {
    (void)state;
    const char *before = kern_name();
    check_family("avx512");
    check_family("avx2");
    assert_int_equal(kern_select(before), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_paths_agree)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
