/* Matmul throughput at the Qwen2.5-0.5B FFN shape (W [4864][896]), 24 distinct matrices
 * (one per layer, far larger than the caches, as in decode), for each weight dtype and
 * kernel family, with 1 and 8 activation rows, through the process-wide thread pool.
 * Prints JSON lines: GB/s of weights streamed as a fraction of measured read bandwidth
 * (what bounds decode) and GFLOP/s as a fraction of the measured 2-core FMA peak.
 * usage: bench_matmul [reps=5] [families=ref,auto] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "machine.h"

enum { LAYERS = 24, N = 896, D = 4864 };

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 5;
    const char *fams = argc > 2 ? argv[2] : "ref,auto";
    const char *isa;
    double bw = machine_bandwidth(), peak1 = machine_flops_one_core(&isa);
    s1c_pool *pool = s1c_pool_global();
    int T = s1c_pool_threads(pool);
    printf("{\"bench\":\"machine\",\"read_gb_s\":%.2f,\"fma_gflops_one_core\":%.2f,\"isa\":\"%s\",\"threads\":%d}\n", bw / 1e9,
           peak1 / 1e9, isa, T);
    static const int dtypes[] = {S1C_F32, S1C_BF16, S1C_F16};
    static const char *dnames[] = {"f32", "bf16", "f16"};
    float *x = malloc(8 * N * sizeof(float)), *out = malloc(8 * D * sizeof(float));
    s1c_rng r;
    s1c_rng_seed(&r, 1);
    for (int i = 0; i < 8 * N; i++) x[i] = s1c_rng_normal(&r);
    for (int di = 0; di < 3; di++) {
        size_t es = dtypes[di] == S1C_F32 ? 4 : 2, bytes = (size_t)N * D * es;
        uint8_t *w = malloc(bytes * LAYERS);
        for (size_t i = 0; i < bytes * LAYERS / 2; i++) ((uint16_t *)w)[i] = (uint16_t)(0x3c00 ^ (s1c_rng_u64(&r) & 0x03ff)); /* finite in every dtype */
        char list[128];
        snprintf(list, sizeof list, "%s", fams);
        for (char *fam = strtok(list, ","); fam; fam = strtok(NULL, ",")) {
            if (kern_select(fam) != 0) continue;
            for (int rows = 1; rows <= 8; rows += 7) {
                double best = 1e30;
                for (int rep = 0; rep < reps; rep++) {
                    double t = s1c_now();
                    for (int l = 0; l < LAYERS; l++) kern_matmul_mt(pool, out, x, rows, w + (size_t)l * bytes, dtypes[di], N, D);
                    t = s1c_now() - t;
                    if (t < best) best = t;
                }
                double gbs = (double)bytes * LAYERS / best, gflops = 2.0 * rows * N * (double)D * LAYERS / best;
                printf("{\"bench\":\"matmul\",\"kernels\":\"%s\",\"dtype\":\"%s\",\"rows\":%d,\"n\":%d,\"d\":%d,\"layers\":%d,\"threads\":%d,"
                       "\"ms\":%.3f,\"weight_gb_s\":%.2f,\"frac_of_read_bw\":%.4f,\"gflops\":%.2f,\"frac_of_fma_peak\":%.4f}\n",
                       kern_name(), dnames[di], rows, N, D, LAYERS, T, best * 1e3, gbs / 1e9, gbs / bw, gflops / 1e9,
                       gflops / (T * peak1));
                fflush(stdout);
            }
        }
        free(w);
    }
    free(x);
    free(out);
    return 0;
}
