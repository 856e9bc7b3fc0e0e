#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "s1c/infer.h"

typedef struct cand {
    float logit;
    int id;
} cand;

struct s1c_sampler {
    s1c_sampler_params p;
    int n_vocab;
    s1c_rng rng;
    cand *c;      /* [n_vocab] */
    uint8_t *seen; /* [n_vocab], for the penalty */
};

s1c_sampler_params s1c_sampler_defaults(void) {
    return (s1c_sampler_params){.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f,
                                .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0};
}

int s1c_sampler_check(const s1c_sampler_params *p, s1c_err *err) {
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature)) return s1c_fail(err, "temperature must be >= 0");
    if (p->top_k < 0) return s1c_fail(err, "top-k must be >= 0");
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f)) return s1c_fail(err, "top-p must be in (0, 1]");
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f)) return s1c_fail(err, "min-p must be in [0, 1]");
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty)) return s1c_fail(err, "repetition penalty must be > 0");
    if (p->repeat_last_n < 0) return s1c_fail(err, "repeat-last-n must be >= 0");
    return 0;
}

int s1c_sampler_new(s1c_sampler **out, const s1c_sampler_params *p, int n_vocab, s1c_err *err) {
    *out = NULL;
    if (s1c_sampler_check(p, err) != 0) return -1;
    s1c_sampler *s = calloc(1, sizeof *s);
    if (!s) return s1c_fail(err, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->c = malloc((size_t)n_vocab * sizeof(cand));
    s->seen = calloc((size_t)n_vocab, 1);
    if (!s->c || !s->seen) { s1c_sampler_free(s); return s1c_fail(err, "sampler: out of memory"); }
    s1c_rng_seed(&s->rng, p->seed);
    *out = s;
    return 0;
}

void s1c_sampler_free(s1c_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->seen);
    free(s);
}

static void apply_penalty(s1c_sampler *s, float *logits, const int32_t *hist, int n_hist) {
    float pen = s->p.repeat_penalty;
    if (pen == 1.0f || n_hist <= 0) return;
    int start = s->p.repeat_last_n > 0 && n_hist > s->p.repeat_last_n ? n_hist - s->p.repeat_last_n : 0;
    /* each distinct token is penalized once, however often it occurred */
    for (int i = start; i < n_hist; i++) {
        int t = hist[i];
        if (t < 0 || t >= s->n_vocab || s->seen[t]) continue;
        s->seen[t] = 1;
        logits[t] = logits[t] > 0 ? logits[t] / pen : logits[t] * pen;
    }
    for (int i = start; i < n_hist; i++)
        if (hist[i] >= 0 && hist[i] < s->n_vocab) s->seen[hist[i]] = 0;
}

static int cmp_cand_desc(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

int s1c_sampler_sample(s1c_sampler *s, float *logits, const int32_t *history, int n_history) {
    apply_penalty(s, logits, history, n_history);
    if (s->p.temperature <= 0.0f) return kern_argmax(logits, s->n_vocab);
    int n = s->n_vocab;
    for (int i = 0; i < n; i++) s->c[i] = (cand){logits[i] / s->p.temperature, i};
    qsort(s->c, (size_t)n, sizeof(cand), cmp_cand_desc);
    if (s->p.top_k > 0 && s->p.top_k < n) n = s->p.top_k;
    /* probabilities over the survivors (c[0] holds the max logit) */
    double sum = 0.0;
    float max = s->c[0].logit;
    for (int i = 0; i < n; i++) {
        s->c[i].logit = expf(s->c[i].logit - max);
        sum += s->c[i].logit;
    }
    if (s->p.top_p < 1.0f) {
        double cum = 0.0;
        for (int i = 0; i < n; i++) {
            cum += s->c[i].logit / sum;
            if (cum >= s->p.top_p) { n = i + 1; break; }
        }
    }
    if (s->p.min_p > 0.0f) {
        float thr = s->p.min_p * s->c[0].logit; /* relative to the most likely token */
        int k = 1;
        while (k < n && s->c[k].logit >= thr) k++;
        n = k;
    }
    double total = 0.0;
    for (int i = 0; i < n; i++) total += s->c[i].logit;
    double r = (double)s1c_rng_float(&s->rng) * total, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += s->c[i].logit;
        if (r < cum) return s->c[i].id;
    }
    return s->c[n - 1].id;
}
