/* The multi-row matmul (kern_matmul_packed) against the per-row kernels (kern_matmul_mt) at the
 * Qwen2.5-0.5B FFN shapes (W [4864][896] and [896][4864]), for 1, 32 and 512 activation rows and
 * each packed weight type, through the process-wide pool. JSON lines: GFLOP/s (int8 ops for the
 * quantized types) and the speed-up; best of reps. Then "packed_cold": one row (decode) over
 * copies of the packed matrix that together overflow the caches, as microseconds per matmul and
 * the packed bytes read per second, and the same for 32 rows (batched decode) as GFLOP/s.
 * The K-quants (q4_k, q5_k, q6_k: random super-blocks, their rows must be whole 256-blocks) run
 * at the Qwen2.5-1.5B FFN shapes instead ([8960][1536] and [1536][8960]); their row-wise
 * comparison is the scalar reference, as it is for q4_1, q5_0 and q5_1 (at the 0.5B shapes, where
 * Q4_K_M files have them).
 * usage: bench_packed [reps=3] [types=f32,bf16,bf16dot,q8_0,q4_0,q4_1,q5_0,q5_1,q4_k,q5_k,q6_k] [rows=1,32,512]
 *                     [shapes=NxD,...]
 *        (bf16dot: KERN_PACK_BF16_DOT; rows=1 for decode alone; shapes: n inputs x d outputs per
 *        matrix instead of the FFN's, n at most 8960, e.g. 896x151936 for the 0.5B's lm_head) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "s1c/base.h"
#include "s1c/formats.h"

static int type_of(const char *tn) {
    static const struct { const char *n; int t; } types[] = {{"f32", S1C_F32}, {"bf16", S1C_BF16}, {"bf16dot", S1C_BF16}, {"q8_0", S1C_Q8_0},
                                                            {"q4_0", S1C_Q4_0}, {"q4_1", S1C_Q4_1}, {"q5_0", S1C_Q5_0}, {"q5_1", S1C_Q5_1}, {"q4_k", S1C_Q4_K}, {"q5_k", S1C_Q5_K}, {"q6_k", S1C_Q6_K}};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (!strcmp(tn, types[i].n)) return types[i].t;
    return -1;
}

/* Random K-quant super-blocks with small finite f16 scales (any such bytes are a valid block). */
static void random_kq(s1c_rng *r, uint8_t *w, int dt, size_t bytes) {
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)s1c_rng_u64(r);
    size_t ts = (size_t)s1c_dtype_type_size(dt);
    uint16_t h = s1c_f32_to_f16(1e-4f);
    for (size_t b = 0; b < bytes; b += ts) {
        memcpy(w + b + (dt == S1C_Q6_K ? 208 : 0), &h, 2);
        if (dt != S1C_Q6_K) memcpy(w + b + 2, &h, 2);
    }
}

/* The packed matmul with the workspace the engine gives it (without one, a 32 x 4864 activation
 * buffer was mmapped and faulted in on every call: the down projection read ~20% slow). */
static double best_of(int reps, s1c_pool *pool, float *out, const float *x, int rows, const void *w, int dt, int n, int d,
                      const kern_packed *p, kern_ws *ws) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = s1c_now();
        if (p) kern_matmul_packed(pool, out, x, rows, p, ws);
        else kern_matmul_mt(pool, out, x, rows, w, dt, n, d);
        t = s1c_now() - t;
        if (t < best) best = t;
    }
    return best;
}

/* Seconds per matmul of rows activation rows over the copies in turn (together larger than the
 * caches, so each one's weights come from memory), best of reps passes. */
static double cold_best(int reps, s1c_pool *pool, float *out, const float *x, int rows, kern_packed *const *cp, int copies, kern_ws *ws) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = s1c_now();
        for (int c = 0; c < copies; c++) kern_matmul_packed(pool, out, x, rows, cp[c], ws);
        t = (s1c_now() - t) / copies;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 3;
    const char *types = argc > 2 ? argv[2] : "f32,bf16,q8_0,q4_0";
    int shapes[8][2] = {{896, 4864}, {4864, 896}}, n_shapes = 2;
    static const int kshapes[][2] = {{1536, 8960}, {8960, 1536}};
    int rowss[3] = {1, 32, 512}, n_rowss = 3;
    if (argc > 4) {
        n_shapes = 0;
        char sl[256];
        snprintf(sl, sizeof sl, "%s", argv[4]);
        for (char *save = NULL, *e = strtok_r(sl, ",", &save); e && n_shapes < 8; e = strtok_r(NULL, ",", &save)) {
            int n = 0, d = 0;
            if (sscanf(e, "%dx%d", &n, &d) != 2 || n < 32 || n > 8960 || n % 32 || d < 1) {
                fprintf(stderr, "%s: a shape is NxD, n a multiple of 32 up to 8960\n", e);
                return 1;
            }
            shapes[n_shapes][0] = n, shapes[n_shapes][1] = d, n_shapes++;
        }
    }
    if (argc > 3) {
        n_rowss = 0;
        char rl[64];
        snprintf(rl, sizeof rl, "%s", argv[3]);
        for (char *save = NULL, *r = strtok_r(rl, ",", &save); r && n_rowss < 3; r = strtok_r(NULL, ",", &save)) rowss[n_rowss++] = atoi(r);
    }
    s1c_pool *pool = s1c_pool_global();
    kern_ws ws = {0};
    s1c_rng rng;
    s1c_rng_seed(&rng, 1);
    size_t out_n = (size_t)512 * 8960;
    for (int s = 0; s < n_shapes; s++)
        if ((size_t)512 * shapes[s][1] > out_n) out_n = (size_t)512 * shapes[s][1];
    float *x = malloc((size_t)512 * 8960 * sizeof(float)), *out = malloc(out_n * sizeof(float));
    for (size_t i = 0; i < (size_t)512 * 8960; i++) x[i] = s1c_rng_normal(&rng);
    char list[128];
    snprintf(list, sizeof list, "%s", types);
    for (char *tn = strtok(list, ","); tn; tn = strtok(NULL, ",")) {
        int dt = type_of(tn);
        if (dt < 0) {
            fprintf(stderr, "%s: unknown type\n", tn);
            return 1;
        }
        int flags = strcmp(tn, "bf16dot") == 0 ? KERN_PACK_BF16_DOT : 0;
        bool kq = dt == S1C_Q4_K || dt == S1C_Q5_K || dt == S1C_Q6_K;
        for (int s = 0; s < (kq ? 2 : n_shapes); s++) {
            int n = kq ? kshapes[s][0] : shapes[s][0], d = kq ? kshapes[s][1] : shapes[s][1];
            size_t ne = (size_t)n * d;
            float *wf = malloc(ne * sizeof(float));
            for (size_t i = 0; i < ne; i++) wf[i] = s1c_rng_normal(&rng) * 0.05f;
            uint64_t bytes;
            s1c_dtype_nbytes(dt, ne, &bytes);
            void *w = malloc(bytes);
            s1c_err err;
            if (dt == S1C_F32) memcpy(w, wf, bytes);
            else if (dt == S1C_BF16)
                for (size_t i = 0; i < ne; i++) ((uint16_t *)w)[i] = s1c_f32_to_bf16(wf[i]);
            else if (kq) random_kq(&rng, w, dt, bytes);
            else s1c_quantize(w, wf, dt, ne, &err);
            kern_packed *p = NULL;
            if (kern_pack(&p, w, dt, n, d, flags, &err) != 0 || !p) {
                fprintf(stderr, "%s: no packed kernel here\n", tn);
                return 1;
            }
            for (size_t ri = 0; ri < (size_t)n_rowss; ri++) {
                int rows = rowss[ri];
                double tp = best_of(reps, pool, out, x, rows, w, dt, n, d, p, &ws);
                double tr = best_of(rows >= 512 ? 1 : reps, pool, out, x, rows, w, dt, n, d, NULL, &ws);
                double fl = 2.0 * rows * (double)n * d;
                printf("{\"bench\":\"packed\",\"type\":\"%s\",\"n\":%d,\"d\":%d,\"rows\":%d,\"threads\":%d,\"packed_gflops\":%.2f,"
                       "\"rowwise_gflops\":%.2f,\"speedup\":%.2f}\n",
                       tn, n, d, rows, s1c_pool_threads(pool), fl / tp / 1e9, fl / tr / 1e9, tr / tp);
                fflush(stdout);
            }
            /* decode as the model sees it: one row, the weights from memory, not the cache (a pass
             * over copies that together overflow the L3) */
            int copies = (int)((128u << 20) / kern_packed_bytes(p)) + 2;
            kern_packed **cp = calloc((size_t)copies, sizeof *cp);
            for (int c = 0; c < copies; c++)
                if (kern_pack(&cp[c], w, dt, n, d, flags, &err) != 0) {
                    fprintf(stderr, "%s: %s\n", tn, err.msg);
                    return 1;
                }
            double tc = cold_best(reps, pool, out, x, 1, cp, copies, &ws);
            printf("{\"bench\":\"packed_cold\",\"type\":\"%s\",\"n\":%d,\"d\":%d,\"rows\":1,\"threads\":%d,\"copies\":%d,"
                   "\"us\":%.1f,\"gb_s\":%.2f}\n",
                   tn, n, d, s1c_pool_threads(pool), copies, tc * 1e6, (double)kern_packed_bytes(p) / tc / 1e9);
            fflush(stdout);
            /* batched decode as the model sees it: 32 rows, the weights from memory */
            tc = cold_best(reps, pool, out, x, 32, cp, copies, &ws);
            printf("{\"bench\":\"packed_cold\",\"type\":\"%s\",\"n\":%d,\"d\":%d,\"rows\":32,\"threads\":%d,\"copies\":%d,"
                   "\"us\":%.1f,\"gflops\":%.2f}\n",
                   tn, n, d, s1c_pool_threads(pool), copies, tc * 1e6, 2.0 * 32 * n * (double)d / tc / 1e9);
            fflush(stdout);
            for (int c = 0; c < copies; c++) kern_packed_free(cp[c]);
            free(cp);
            kern_packed_free(p);
            free(w);
            free(wf);
        }
    }
    kern_ws_free(&ws);
    free(x);
    free(out);
    return 0;
}
