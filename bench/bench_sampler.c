/* One draw of the sampler (s1c_sampler_sample) over a vocabulary of Qwen2.5's size (151936), for
 * logits shaped like a trained model's (a few likely tokens over a N(0, 2^2) floor: "peaked"),
 * wider ones (N(0, 6^2): "wide") and an untrained model's (N(0, 0.5^2): "flat", the worst case:
 * top-p then keeps most of the vocabulary, all of it in the first bands, which are sorted
 * whole), greedy and with the usual cuts. JSON lines: microseconds per
 * draw (median of reps, and the best) and the logits' bytes per second (one thread; the logits
 * are in the caches here, as they are right after the forward that wrote them, so the machine's
 * memory bandwidth is no bound: the floor is a few passes over them at the cache's speed).
 * "full_sort_us": what sorting the whole vocabulary alone costs (the sampler did that for every
 * draw before it built its order a band at a time), and "speedup" the ratio to it (0 for greedy, which never sorted).
 * usage: bench_sampler [reps=50] [vocab=151936] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/base.h"
#include "s1c/infer.h"

typedef struct {
    float logit;
    int id;
} full_cand;

static int cmp_full(const void *a, const void *b) {
    const full_cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 50, V = argc > 2 ? atoi(argv[2]) : 151936;
    if (reps < 1 || V < 16) { fprintf(stderr, "usage: bench_sampler [reps>=1] [vocab>=16]\n"); return 2; }
    static const struct { const char *name; float temp, top_p, min_p; int top_k; } settings[] = {
        {"greedy", 0.0f, 1.0f, 0.0f, 0}, {"t0.6_top_p0.95", 0.6f, 0.95f, 0.0f, 0}, {"t1_top_k40", 1.0f, 1.0f, 0.0f, 40},
        {"t1", 1.0f, 1.0f, 0.0f, 0},     {"t1_min_p0.05", 1.0f, 1.0f, 0.05f, 0},
    };
    float *logits = malloc((size_t)V * sizeof *logits), *work = malloc((size_t)V * sizeof *work);
    full_cand *fc = malloc((size_t)V * sizeof *fc);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!logits || !work || !fc || !t) { fprintf(stderr, "out of memory\n"); return 1; }
    s1c_rng r;
    s1c_rng_seed(&r, 5);
    static const char *shapes[] = {"peaked", "wide", "flat"};
    static const float sigma[] = {2.0f, 6.0f, 0.5f};
    for (int shape = 0; shape < 3; shape++) {
        for (int i = 0; i < V; i++) logits[i] = sigma[shape] * s1c_rng_normal(&r);
        if (shape == 0)
            for (int k = 0; k < 5; k++) logits[(int)(s1c_rng_u64(&r) % (uint64_t)V)] = 12.0f + (float)k;
        double sort_best = 1e30;
        for (int rep = 0; rep < 5; rep++) {
            double t0 = s1c_now();
            for (int i = 0; i < V; i++) fc[i] = (full_cand){logits[i], i};
            qsort(fc, (size_t)V, sizeof *fc, cmp_full);
            double dt = s1c_now() - t0;
            if (dt < sort_best) sort_best = dt;
        }
        for (size_t si = 0; si < sizeof settings / sizeof *settings; si++) {
            s1c_sampler_params sp = s1c_sampler_defaults();
            sp.temperature = settings[si].temp, sp.top_p = settings[si].top_p, sp.min_p = settings[si].min_p, sp.top_k = settings[si].top_k;
            sp.seed = 42;
            s1c_err err;
            s1c_sampler *s;
            if (s1c_sampler_new(&s, &sp, V, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
            long sink = 0;
            for (int rep = 0; rep < reps; rep++) {
                memcpy(work, logits, (size_t)V * sizeof *work); /* the sampler works in place */
                double t0 = s1c_now();
                sink += s1c_sampler_sample(s, work, NULL, 0);
                t[rep] = s1c_now() - t0;
            }
            s1c_sampler_free(s);
            qsort(t, (size_t)reps, sizeof *t, cmp_double);
            double med = t[reps / 2], bytes = (double)V * sizeof(float);
            printf("{\"bench\":\"sampler\",\"logits\":\"%s\",\"setting\":\"%s\",\"vocab\":%d,\"us\":%.1f,\"best_us\":%.1f,\"gb_s\":%.2f,"
                   "\"full_sort_us\":%.0f,\"speedup\":%.0f,\"sink\":%ld}\n",
                   shapes[shape], settings[si].name, V, med * 1e6, t[0] * 1e6, bytes / med / 1e9, sort_best * 1e6,
                   settings[si].temp > 0 ? sort_best / med : 0.0, sink);
            fflush(stdout);
        }
    }
    free(logits);
    free(work);
    free(fc);
    free(t);
    return 0;
}
