/* One-query attention as decode runs it (kern_attention): Qwen2.5-0.5B's GQA group (7 query
 * heads of 64 per KV head, 2 KV heads, one task per KV head over the process-wide pool) over a
 * paged cache of 16-position blocks, in order (one sequence's) and shuffled (a long-running
 * cache's), at several context lengths and each KV cache type. JSON lines: microseconds per call
 * (one layer's attention for one token, median of reps, and the best), the K/V bytes read per
 * second and that as a fraction of the machine's read bandwidth (the bound at long contexts), and
 * GFLOP/s (2 x 2 x heads x positions x head_dim).
 * usage: bench_attention [reps=15] [types=f32,f16,bf16,bf16dot,bf16tiles] [ctx=640,8192,32768] [layers=24]
 *        (bf16: a BF16 cache in f32 arithmetic; bf16dot: in bf16 dot products, kern_attn_args.bf16_dot;
 *        bf16tiles: bf16dot on a cache in the tile layout, AMX tiles where kern_attention_tiles, as
 *        the engine lays out a BF16 cache there; elsewhere skipped) (the values are random either way)
 *        (layers=1: one cache read again and again, from the caches at short contexts) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "machine.h"
#include "s1c/base.h"
#include "s1c/formats.h"

enum { GROUP = 7, HD = 64, KV_HEADS = 2, BS = 16, MAX_LAYERS = 64 };

typedef struct {
    const float *q;
    float *out, *scratch;
    const void *k, *v;
    const int32_t *blocks;
    int n, dtype;
    size_t es;
    bool dot, tiles;
    size_t nblk; /* blocks per KV head's slab */
} job;

static void task(void *ctx, int t, int n_tasks) {
    const job *j = ctx;
    for (int g = t; g < KV_HEADS; g += n_tasks) {
        kern_attn_args a = {.q = j->q + (size_t)g * GROUP * HD, .out = j->out + (size_t)g * GROUP * HD, .nh = GROUP, .hd = HD,
                            .n = j->n, .bs = BS, .dtype = j->dtype,
                            /* the KV cache's layout: per KV head a slab of every block, per block K [HD][BS], V [BS][HD] */
                            .k = (const uint8_t *)j->k + (size_t)g * j->nblk * HD * BS * j->es,
                            .v = (const uint8_t *)j->v + (size_t)g * j->nblk * HD * BS * j->es,
                            .blocks = j->blocks, .block_stride = (size_t)BS * HD, .ld = HD,
                            .scale = 0.125f, .scratch = j->scratch + (size_t)t * KERN_ATTN_SCRATCH, .bf16_dot = j->dot, .tiles = j->tiles};
        kern_attention(&a);
    }
    kern_attention_done();
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Fills n elements of dtype with N(0,1) values. */
static void fill(void *dst, int dtype, size_t n, s1c_rng *rng) {
    for (size_t i = 0; i < n; i++) {
        float x = s1c_rng_normal(rng);
        if (dtype == S1C_F32) ((float *)dst)[i] = x;
        else ((uint16_t *)dst)[i] = dtype == S1C_F16 ? s1c_f32_to_f16(x) : s1c_f32_to_bf16(x);
    }
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 15;
    char types[64], ctxs[128];
    snprintf(types, sizeof types, "%s", argc > 2 ? argv[2] : "f32,f16,bf16,bf16dot,bf16tiles");
    snprintf(ctxs, sizeof ctxs, "%s", argc > 3 ? argv[3] : "640,8192,32768");
    int LAYERS = argc > 4 ? atoi(argv[4]) : 24;
    if (LAYERS < 1 || LAYERS > MAX_LAYERS) LAYERS = 24;
    s1c_pool *pool = s1c_pool_global();
    int T = s1c_pool_threads(pool);
    double bw = machine_bandwidth();
    printf("{\"bench\":\"machine\",\"threads\":%d,\"read_gb_s\":%.2f}\n", T, bw / 1e9);
    s1c_rng rng;
    s1c_rng_seed(&rng, 7);
    float *q = malloc(sizeof(float) * KV_HEADS * GROUP * HD), *out = malloc(sizeof(float) * KV_HEADS * GROUP * HD);
    float *scratch = malloc(sizeof(float) * (size_t)T * KERN_ATTN_SCRATCH);
    for (int i = 0; i < KV_HEADS * GROUP * HD; i++) q[i] = s1c_rng_normal(&rng);
    for (char *ts = NULL, *tn = strtok_r(types, ",", &ts); tn; tn = strtok_r(NULL, ",", &ts)) {
        bool tiles = !strcmp(tn, "bf16tiles"), dot = tiles || !strcmp(tn, "bf16dot");
        if (tiles && !kern_attention_tiles(S1C_BF16, GROUP, HD, BS)) continue;
        int dt = !strcmp(tn, "f16") ? S1C_F16 : !strcmp(tn, "bf16") || dot ? S1C_BF16 : S1C_F32;
        size_t es = dt == S1C_F32 ? 4 : 2;
        char cl[128];
        snprintf(cl, sizeof cl, "%s", ctxs);
        for (char *cs = NULL, *cn = strtok_r(cl, ",", &cs); cn; cn = strtok_r(NULL, ",", &cs)) {
            int n = atoi(cn), nblk = (n + BS - 1) / BS;
            /* one cache per layer, so a token's 24 calls read 24 different caches as decode does */
            size_t per_layer = (size_t)nblk * BS * KV_HEADS * HD;
            void **k = malloc(sizeof(void *) * LAYERS), **v = malloc(sizeof(void *) * LAYERS);
            int32_t *blocks = malloc(sizeof(int32_t) * (size_t)nblk);
            /* as the engine's cache (src/model/kv_cache.c): one buffer per K and V, huge pages */
            uint8_t *kall = s1c_alloc_huge(per_layer * es * LAYERS), *vall = s1c_alloc_huge(per_layer * es * LAYERS);
            for (int l = 0; l < LAYERS; l++) {
                k[l] = kall + (size_t)l * per_layer * es, v[l] = vall + (size_t)l * per_layer * es;
                fill(k[l], dt, per_layer, &rng), fill(v[l], dt, per_layer, &rng);
            }
            double *ts_ = malloc(sizeof(double) * (size_t)reps);
            /* ordered: one sequence's blocks as the free list hands them out (consecutive ids: a
             * run per KV head); shuffled: the pages of a long-running cache shared by many */
            for (int shuffled = 0; shuffled < 2; shuffled++) {
                for (int b = 0; b < nblk; b++) blocks[b] = b;
                for (int b = nblk - 1; shuffled && b > 0; b--) {
                    int r = (int)(s1c_rng_u64(&rng) % (uint64_t)(b + 1)), t = blocks[b];
                    blocks[b] = blocks[r], blocks[r] = t;
                }
                for (int r = 0; r < reps; r++) {
                    double t0 = s1c_now();
                    for (int l = 0; l < LAYERS; l++) {
                        job j = {q, out, scratch, k[l], v[l], blocks, n, dt, es, dot, tiles, (size_t)nblk};
                        if (T <= 1) task(&j, 0, 1);
                        else s1c_pool_run(pool, T, task, &j);
                    }
                    ts_[r] = (s1c_now() - t0) / LAYERS;
                }
                qsort(ts_, (size_t)reps, sizeof(double), cmp_double);
                double t = ts_[reps / 2], bytes = 2.0 * n * KV_HEADS * HD * (double)es, flops = 4.0 * KV_HEADS * GROUP * n * HD;
                printf("{\"bench\":\"attention_decode\",\"type\":\"%s\",\"ctx\":%d,\"blocks\":\"%s\",\"layers\":%d,\"threads\":%d,\"us\":%.2f,"
                       "\"best_us\":%.2f,\"kv_gb_s\":%.2f,\"fraction_bw\":%.3f,\"gflops\":%.2f}\n",
                       tn, n, shuffled ? "shuffled" : "ordered", LAYERS, T, t * 1e6, ts_[0] * 1e6, bytes / t / 1e9, bytes / t / bw, flops / t / 1e9);
                fflush(stdout);
            }
            free(kall), free(vall), free(k), free(v), free(blocks), free(ts_);
        }
    }
    free(q), free(out), free(scratch);
    return 0;
}
