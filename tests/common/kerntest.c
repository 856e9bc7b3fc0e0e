#include "kerntest.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "testutil.h"

float *kt_randv(s1c_rng *r, size_t n, float scale) {
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = scale * s1c_rng_normal(r);
    return v;
}

s1c_pool *kt_pool(int threads) {
    s1c_pool *p = NULL;
    s1c_err err;
    if (threads > 1) assert_int_equal(s1c_pool_new(&p, threads, &err), 0);
    return p;
}

bool kt_have_packed(int dtype) {
    kern_packed *p = NULL;
    s1c_err err;
    static uint8_t row[256 * 4]; /* one row of 256 values in any type (all zero: a valid block) */
    assert_int_equal(kern_pack(&p, row, dtype, 256, 1, 0, &err), 0);
    bool ok = p != NULL;
    kern_packed_free(p);
    return ok;
}

void kt_check_families_rowmajor(const int *types, int nt, int n, mr_matrix_fn make) {
    static const char *fam[] = {"ref", "avx2", "avx512"};
    s1c_pool *pool2 = kt_pool(2);
    s1c_rng r;
    s1c_rng_seed(&r, 13);
    int d = 37, M = 5;
    for (int ti = 0; ti < nt; ti++) {
        int dt = types[ti];
        float *deq;
        uint8_t *w = make(&r, dt, n, d, &deq);
        float *x = kt_randv(&r, (size_t)M * n, 1.0f);
        size_t sz = (size_t)M * d * sizeof(float);
        float *ref = malloc(sz), *got = malloc(sz);
        kern_ref_matmul(ref, x, M, w, dt, n, d);
        for (int f = 0; f < 3; f++) {
            if (kern_select(fam[f]) != 0) continue;
            kern_matmul(got, x, M, w, dt, n, d);
            if (memcmp(got, ref, sz) != 0) fail_msg("%s, family %s: kern_matmul differs from the reference", s1c_dtype_name(dt), fam[f]);
            memset(got, 0, sz);
            kern_matmul_mt(pool2, got, x, M, w, dt, n, d);
            if (memcmp(got, ref, sz) != 0) fail_msg("%s, family %s: kern_matmul_mt differs from the reference", s1c_dtype_name(dt), fam[f]);
        }
        free(w), free(deq), free(x), free(ref), free(got);
    }
    kern_select("auto");
    s1c_pool_free(pool2);
}

void kt_check_avx2_rows(const int *types, int nt, const int (*shapes)[3], int ns, mr_matrix_fn make) {
    if (kern_select("avx2") != 0) {
        print_message("no AVX2 here: skipped\n");
        return;
    }
    s1c_rng r;
    s1c_rng_seed(&r, 31);
    for (int ti = 0; ti < nt; ti++)
        for (int k = 0; k < ns; k++) {
            int dt = types[ti], n = shapes[k][0], d = shapes[k][1], M = shapes[k][2];
            float *deq, *x = kt_randv(&r, (size_t)M * n, 1.0f);
            uint8_t *w = make(&r, dt, n, d, &deq);
            for (int j = 0; j < 32; j++) x[j] = j % 3 ? 2.0f : -2.0f;
            size_t sz = (size_t)M * d * sizeof(float);
            float *ref = malloc(sz), *got = malloc(sz);
            kern_ref_matmul(ref, x, M, w, dt, n, d);
            kern_matmul(got, x, M, w, dt, n, d);
            if (memcmp(got, ref, sz) != 0) fail_msg("avx2 %s n=%d d=%d rows=%d: differs from the reference", s1c_dtype_name(dt), n, d, M);
            free(w), free(deq), free(x), free(ref), free(got);
        }
    kern_select("auto");
}
