/* kern_sgemm throughput at the trainer's shapes for a Qwen2.5-0.5B linear layer (X [T][n]
 * activations, W [d][n] weights): forward Y = X W^T (trans_b), input gradient dX = dY W, and
 * weight gradient dW += dY^T X (trans_a, beta 1), for (n, d) = (896, 4864) and (4864, 896).
 * Each product runs in f32 (kern_sgemm) and bf16 (kern_sgemm_bf16). Each result is the
 * median of `reps` runs, with 1 thread and with the process-wide pool, in GFLOP/s and as a
 * fraction of the measured peak of its kind (f32 FMA or bf16 dot; one core x threads).
 * usage: bench_gemm [T=512] [reps=5] [families=auto] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "machine.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct op {
    const char *name;
    bool ta, tb;
} op;

/* The median seconds of one product of the given kind. */
static double time_op(s1c_pool *pool, bool bf16, const op *o, int T, int n, int d, const float *X, const float *W, const float *dY, float *Y,
                      float *dX, float *dW, int reps) {
    double ts[32];
    void (*gemm)(s1c_pool *, bool, bool, int, int, int, const float *, int, const float *, int, float, float *, int) =
        bf16 ? kern_sgemm_bf16 : kern_sgemm;
    if (reps > 32) reps = 32;
    for (int r = 0; r < reps; r++) {
        double t = s1c_now();
        if (!o->ta && o->tb) gemm(pool, false, true, T, d, n, X, n, W, n, 0.0f, Y, d);
        else if (!o->ta) gemm(pool, false, false, T, n, d, dY, d, W, n, 0.0f, dX, n);
        else gemm(pool, true, false, d, n, T, dY, d, X, n, 1.0f, dW, n);
        ts[r] = s1c_now() - t;
    }
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    return ts[reps / 2];
}

int main(int argc, char **argv) {
    int T = argc > 1 ? atoi(argv[1]) : 512, reps = argc > 2 ? atoi(argv[2]) : 5;
    const char *fams = argc > 3 ? argv[3] : "auto";
    if (T < 1 || reps < 1) {
        fprintf(stderr, "usage: bench_gemm [T>=1] [reps>=1] [families]\n");
        return 2;
    }
    const char *isa;
    double peak1 = machine_flops_one_core(&isa), peak1_bf16 = bench_peak_bf16(NULL);
    s1c_pool *pool = s1c_pool_global();
    printf("{\"bench\":\"machine\",\"fma_gflops_one_core\":%.2f,\"bf16_dot_gflops_one_core\":%.2f,\"isa\":\"%s\",\"threads\":%d}\n",
           peak1 / 1e9, peak1_bf16 / 1e9, isa, s1c_pool_threads(pool));
    static const int shapes[][2] = {{896, 4864}, {4864, 896}};
    static const op ops[] = {{"fwd", false, true}, {"dx", false, false}, {"dw", true, false}};
    s1c_rng r;
    s1c_rng_seed(&r, 1);
    for (int s = 0; s < 2; s++) {
        int n = shapes[s][0], d = shapes[s][1];
        float *X = malloc((size_t)T * n * sizeof(float)), *W = malloc((size_t)d * n * sizeof(float));
        float *dY = malloc((size_t)T * d * sizeof(float)), *Y = malloc((size_t)T * d * sizeof(float));
        float *dX = malloc((size_t)T * n * sizeof(float)), *dW = calloc((size_t)d * n, sizeof(float));
        if (!X || !W || !dY || !Y || !dX || !dW) { fprintf(stderr, "bench_gemm: out of memory\n"); return 1; }
        for (size_t i = 0; i < (size_t)T * n; i++) X[i] = s1c_rng_normal(&r);
        for (size_t i = 0; i < (size_t)d * n; i++) W[i] = 0.03f * s1c_rng_normal(&r);
        for (size_t i = 0; i < (size_t)T * d; i++) dY[i] = s1c_rng_normal(&r);
        char list[128];
        snprintf(list, sizeof list, "%s", fams);
        for (char *fam = strtok(list, ","); fam; fam = strtok(NULL, ",")) {
            if (kern_select(fam) != 0) continue;
            for (int prec = 0; prec < 2; prec++)
                for (int o = 0; o < 3; o++)
                    for (int mt = 0; mt < 2; mt++) {
                        s1c_pool *p = mt ? pool : NULL;
                        int th = s1c_pool_threads(p);
                        double peak = prec && peak1_bf16 > 0 ? peak1_bf16 : peak1;
                        time_op(p, prec, &ops[o], T, n, d, X, W, dY, Y, dX, dW, 1); /* warm-up */
                        double sec = time_op(p, prec, &ops[o], T, n, d, X, W, dY, Y, dX, dW, reps);
                        double gflops = 2.0 * T * (double)n * d / sec / 1e9;
                        printf("{\"bench\":\"%s\",\"kernels\":\"%s\",\"op\":\"%s\",\"T\":%d,\"n\":%d,\"d\":%d,\"threads\":%d,\"ms\":%.3f,"
                               "\"gflops\":%.2f,\"frac_of_peak\":%.4f}\n",
                               prec ? "sgemm_bf16" : "sgemm", kern_name(), ops[o].name, T, n, d, th, sec * 1e3, gflops,
                               gflops * 1e9 / (th * peak));
                        fflush(stdout);
                    }
        }
        free(X); free(W); free(dY); free(Y); free(dX); free(dW);
    }
    return 0;
}
