/* Training throughput: one optimizer step (forward + backward of one row of `seq` random
 * tokens, every position predicting, then clipping + AdamW) of a randomly initialised model
 * of a preset's shape, with fp32 master weights. Prints JSON lines: the machine's f32 FMA
 * peak (all threads), then per run tok/s, seconds per step (median of `reps`) and the fraction
 * of the peak, counting model FLOPs as bench/torch_train_step.py does:
 *   flops_per_token = 6 * N_matmul + 6 * L * H * D * (T + 1)
 * (the recomputation of gradient checkpointing is not counted: it is a cost, not work).
 * With --torch it then runs bench/torch_train_step.py on the same shape, sequence and thread
 * count, and prints the ratio.
 *
 * usage: bench_train [--preset qwen2.5-0.5b] [--seq 512] [--reps 3] [--layers N] [--recompute] [--torch]
 *                    [--dim N --hidden N --heads N --kv-heads N --vocab N] [--segment N]
 * (--recompute: gradient checkpointing even where every layer's internals fit in memory;
 * --dim ... --vocab: the preset's shape with these sizes, e.g. s1c demo's small models:
 * --preset tiny --dim 128 --layers 4 --heads 4 --kv-heads 2 --hidden 352 --vocab 270;
 * --segment N: the row packs samples of N tokens, each its own segment, as s1c train groups
 * short samples into one forward call) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/limits.h"
#include "machine.h"
#include "s1c/train.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void init_params(s1c_params *p, uint64_t seed) {
    s1c_rng r;
    s1c_rng_seed(&r, seed);
    for (int i = 0; i < p->n_tensors; i++) {
        const s1c_param_info *t = &p->info[i];
        bool norm = t->ndim == 1 && t->decay;
        for (uint64_t k = 0; k < t->n; k++)
            p->data[t->offset + k] = norm ? 1.0f : t->ndim == 1 ? 0.0f : 0.02f * s1c_rng_normal(&r);
    }
}

static double flops_per_token(const s1c_config *c, int T) {
    double q = (double)c->n_heads * c->head_dim, kv = (double)c->n_kv_heads * c->head_dim;
    double per_layer = c->dim * (q + 2 * kv) + q * c->dim + 3.0 * c->dim * c->hidden_dim;
    double n_matmul = per_layer * c->n_layers + (double)c->vocab_size * c->dim;
    return 6 * n_matmul + 6.0 * c->n_layers * c->n_heads * c->head_dim * (T + 1);
}

int main(int argc, char **argv) {
    const char *preset = "qwen2.5-0.5b";
    int T = 512, reps = 3, layers = 0, dim = 0, hidden = 0, heads = 0, kv_heads = 0, vocab = 0, segment = 0;
    uint64_t keep_bytes = (uint64_t)2 << 30; /* as s1c train: no recomputation when it fits 2 GiB */
    bool torch = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--preset") && i + 1 < argc) preset = argv[++i];
        else if (!strcmp(argv[i], "--seq") && i + 1 < argc) T = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) dim = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) hidden = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--heads") && i + 1 < argc) heads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kv-heads") && i + 1 < argc) kv_heads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--segment") && i + 1 < argc) segment = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--torch")) torch = true;
        else if (!strcmp(argv[i], "--recompute")) keep_bytes = 0;
        else {
            fprintf(stderr, "usage: bench_train [--preset NAME] [--seq N] [--reps N] [--layers N] [--recompute] [--torch] "
                            "[--dim N --hidden N --heads N --kv-heads N --vocab N] [--segment N]\n");
            return 2;
        }
    }
    if (T < 2 || reps < 1 || reps > 64) return fprintf(stderr, "bench_train: bad --seq or --reps\n"), 2;
    if (torch && (dim || hidden || heads || kv_heads || vocab || segment || layers))
        return fprintf(stderr, "bench_train: --torch compares a preset's shape as it is (no --dim/--layers/.../--segment)\n"), 2;
    if (segment < 0) return fprintf(stderr, "bench_train: bad --segment\n"), 2;
    s1c_err err;
    s1c_config c;
    if (s1c_config_preset(&c, "qwen2", preset, &err) != 0) return fprintf(stderr, "%s\n", err.msg), 1;
    if (layers > 0) c.n_layers = layers; /* a shallower model of the same widths, for profiling */
    if (dim > 0) c.dim = dim;
    if (hidden > 0) c.hidden_dim = hidden;
    if (heads > 0) c.n_heads = heads;
    if (kv_heads > 0) c.n_kv_heads = kv_heads;
    if (vocab > 0) c.vocab_size = vocab;
    if (dim > 0 || heads > 0) c.head_dim = c.dim / c.n_heads;
    if (s1c_config_validate(&c, "bench_train", &err) != 0) return fprintf(stderr, "%s\n", err.msg), 2;
    s1c_pool *pool = s1c_pool_global();
    const char *isa;
    double peak = bench_peak_f32(pool, &isa), peak_bf16 = bench_peak_bf16(pool);
    int threads = s1c_pool_threads(pool);
    printf("{\"bench\":\"machine\",\"threads\":%d,\"f32_gflops\":%.1f,\"bf16_gflops\":%.1f,\"isa\":\"%s\"}\n", threads,
           peak / 1e9, peak_bf16 / 1e9, isa);
    fflush(stdout);

    s1c_params p;
    s1c_gradws *ws;
    if (s1c_params_new(&p, &c, &err) != 0 || s1c_gradws_new(&ws, &c, T, 256, keep_bytes, &err) != 0)
        return fprintf(stderr, "%s\n", err.msg), 1;
    init_params(&p, 1);
    float *g = calloc(p.n, sizeof *g), *m = calloc(p.n, sizeof *m), *v = calloc(p.n, sizeof *v);
    int32_t *tok = malloc((size_t)T * sizeof *tok), *tgt = malloc((size_t)T * sizeof *tgt);
    int32_t *seg = segment > 0 ? malloc((size_t)T * sizeof *seg) : NULL;
    float *w = malloc((size_t)T * sizeof *w);
    if (!g || !m || !v || !tok || !tgt || !w || (segment > 0 && !seg)) return fprintf(stderr, "bench_train: out of memory\n"), 1;
    s1c_rng r;
    s1c_rng_seed(&r, 2);
    for (int t = 0; t < T; t++) tok[t] = (int32_t)(s1c_rng_u64(&r) % (uint64_t)c.vocab_size);
    /* every position predicts the next token of its segment */
    int n_targets = 0;
    for (int t = 0; t < T; t++) {
        if (seg) seg[t] = t / segment;
        tgt[t] = t + 1 < T && (!seg || seg[t + 1] == seg[t]) ? tok[t + 1] : -1;
        n_targets += tgt[t] >= 0;
    }
    for (int t = 0; t < T; t++) w[t] = 1.0f / (float)n_targets;
    s1c_adamw o;
    s1c_adamw_defaults(&o, 100);
    s1c_grad_row row = {T, tok, tgt, w, seg};
    double tok_s_of[2] = {0, 0};
    for (int type = 0; type < 2; type++) { /* f32, then bf16 compute */
        s1c_gradws_set_bf16(ws, type == 1);
        double ts[64], loss = 0;
        for (int k = 0; k <= reps; k++) { /* k == 0 warms up (first touch of the buffers) */
            double t0 = s1c_now();
            int nt;
            memset(g, 0, p.n * sizeof *g);
            if (s1c_grad_row_run(ws, &p, g, &row, &loss, &nt, &err) != 0) return fprintf(stderr, "%s\n", err.msg), 1;
            s1c_adamw_step(&o, &p, g, m, v, k);
            if (k > 0) ts[k - 1] = s1c_now() - t0;
        }
        qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
        double step_s = ts[reps / 2], tok_s = T / step_s, fpt = flops_per_token(&c, segment > 0 && segment < T ? segment : T), lim = type ? peak_bf16 : peak;
        tok_s_of[type] = tok_s;
        printf("{\"name\":\"train_step\",\"impl\":\"s1c\",\"type\":\"%s\",\"preset\":\"%s\",\"dim\":%d,\"layers\":%d,"
               "\"hidden\":%d,\"heads\":%d,\"kv_heads\":%d,\"vocab\":%d,\"segment\":%d,\"threads\":%d,\"seq\":%d,"
               "\"step_s\":%.3f,\"step_s_best\":%.3f,\"tok_s\":%.2f,\"flops_per_token\":%.4g,\"gflops\":%.1f,"
               "\"fraction_of_peak\":%.3f,\"peak\":\"%s\",\"loss\":%.4f,\"activation_mib\":%.0f}\n",
               type ? "bf16" : "f32", preset, c.dim, c.n_layers, c.hidden_dim, c.n_heads, c.n_kv_heads, c.vocab_size,
               segment, threads, T, step_s, ts[0], tok_s, fpt, fpt * tok_s / 1e9,
               lim > 0 ? fpt * tok_s / lim : 0, type ? "bf16_dot" : "f32_fma", loss, (double)s1c_gradws_bytes(&c, T, 256, keep_bytes) / 1048576.0);
        fflush(stdout);
    }
    s1c_gradws_free(ws);
    s1c_params_free(&p);
    free(g), free(m), free(v), free(tok), free(tgt), free(w), free(seg);
    if (!torch) return 0;
    /* PyTorch on the same shape, sequence and threads, in this run */
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 %s/bench/torch_train_step.py --preset %s --seq %d --threads %d "
             "--repeats %d --types f32,bf16",
             S1C_SOURCE_DIR, preset, T, threads, reps);
    FILE *f = popen(cmd, "r");
    if (!f) return fprintf(stderr, "bench_train: cannot run %s\n", cmd), 1;
    char line[2048];
    double torch_tok_s[2] = {0, 0};
    while (fgets(line, sizeof line, f)) {
        fputs(line, stdout);
        const char *k = strstr(line, "\"tok_s\":");
        if (strstr(line, "torch_train_step") && k) torch_tok_s[strstr(line, "\"bf16\"") ? 1 : 0] = atof(k + 8);
    }
    pclose(f);
    for (int type = 0; type < 2; type++)
        if (torch_tok_s[type] > 0)
            printf("{\"name\":\"train_step_vs_torch\",\"type\":\"%s\",\"s1c_tok_s\":%.2f,\"torch_tok_s\":%.2f,\"ratio\":%.2f}\n",
                   type ? "bf16" : "f32", tok_s_of[type], torch_tok_s[type], tok_s_of[type] / torch_tok_s[type]);
    return 0;
}
