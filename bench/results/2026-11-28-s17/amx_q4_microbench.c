/* Session 17: the packed Q8_0 / Q4_0 matmul (in cache: the same matrix every call) with the AMX int8
 * tile off and on, interleaved in one process, medians. Built against a build of that commit:
 *   gcc -O2 -Isrc -Iinclude amx_q4_microbench.c build/libs1c.a -lm -lpthread -o mb && ./mb ROWS ROUNDS
 * (Q8_0 rows show the tile before it was limited to Q4_0: amx_q_takes now passes Q8_0 to the
 * AVX-512 tile, so both columns are that tile.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kern_internal.h"
#include "kernels/kernels.h"
#include "s1c/base.h"
#include "s1c/formats.h"
static int cmpd(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    int rows = argc > 1 ? atoi(argv[1]) : 512, rounds = argc > 2 ? atoi(argv[2]) : 15;
    int dts[2] = {S1C_Q8_0, S1C_Q4_0};
    int shapes[2][2] = {{896, 4864}, {4864, 896}};
    s1c_pool *pool = s1c_pool_global();
    kern_ws ws = {0};
    s1c_rng r; s1c_rng_seed(&r, 1);
    for (int di = 0; di < 2; di++) for (int si = 0; si < 2; si++) {
        int n = shapes[si][0], d = shapes[si][1], dt = dts[di];
        float *wf = malloc((size_t)n * d * 4), *x = malloc((size_t)rows * n * 4), *out = malloc((size_t)rows * d * 4);
        for (size_t i = 0; i < (size_t)n * d; i++) wf[i] = s1c_rng_normal(&r) * 0.05f;
        for (size_t i = 0; i < (size_t)rows * n; i++) x[i] = s1c_rng_normal(&r);
        uint64_t bytes; s1c_dtype_nbytes(dt, (uint64_t)n * d, &bytes);
        void *w = malloc(bytes); s1c_err err;
        s1c_quantize(w, wf, dt, (uint64_t)n * d, &err);
        kern_packed *p;
        if (kern_pack(&p, w, dt, n, d, 0, &err) || !p) { printf("pack failed\n"); return 1; }
        double t[2][64];
        for (int k = 0; k < rounds; k++) for (int a = getenv("MB_ONLY") ? 1 : 0; a < 2; a++) {
            pk_amx(a);
            kern_matmul_packed(pool, out, x, rows, p, &ws);
            double t0 = s1c_now();
            for (int it = 0; it < 3; it++) kern_matmul_packed(pool, out, x, rows, p, &ws);
            t[a][k] = (s1c_now() - t0) / 3;
        }
        double fl = 2.0 * rows * n * d;
        for (int a = 0; a < 2; a++) qsort(t[a], rounds, sizeof(double), cmpd);
        printf("%s %dx%d rows %d threads %d: vnni %.0f  amx %.0f GOP/s (median), amx/vnni %.2f\n", s1c_dtype_name(dt), n, d, rows,
               s1c_pool_threads(pool), fl / t[0][rounds / 2] / 1e9, fl / t[1][rounds / 2] / 1e9, t[0][rounds / 2] / t[1][rounds / 2]);
        kern_packed_free(p); free(w); free(wf); free(x); free(out);
    }
    pk_amx(-1);
    return 0;
}
