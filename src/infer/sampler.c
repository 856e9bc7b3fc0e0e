/* Token sampling: repetition penalty, then greedy (temperature 0) or a draw from the
 * temperature-scaled softmax truncated by top-k, top-p and min-p.
 *
 * The draw is defined on the tokens in order of probability (ties: lower id first): top-k keeps
 * the first k, top-p the shortest prefix whose mass reaches top_p of the kept mass, min-p the
 * tokens at least min_p times as likely as the first; then r = u * (the prefix's mass), u from
 * the sequence's generator, picks the first token whose running mass exceeds r. Only that prefix
 * needs the order, so it is built lazily (sorted_until): tokens are sorted a band of
 * probabilities at a time, [2^-6, 1], then [2^-12, 2^-6), ..., and a band only when the prefix
 * must reach into it. A trained model's next token is rarely far from the top: a 151936-token
 * vocabulary took 23 ms per draw when every draw sorted the whole vocabulary (qsort), several times
 * the forward of a 0.5B model, and 32 sequences' draws dwarfed their batched forward.
 *
 * Arithmetic that decides a draw: c_i = l_i * (1 / T), p_i = exp(c_i - max_j c_j) (f32, vmath's
 * exp: the same bits in every kernel family), running masses in double in that order, and the
 * mass of the whole vocabulary (what top-p is a fraction of when top-k keeps everything) as
 * vmath_exp_mass adds it, in chunks of CHUNK in index order. The draw depends on the logits and
 * the generator alone, not on the kernel family or the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "kernels/vmath.h"
#include "s1c/infer.h"

typedef struct cand {
    float p;
    int id;
} cand;

struct s1c_sampler {
    s1c_sampler_params p;
    int n_vocab;
    s1c_rng rng;
    uint8_t *seen; /* [n_vocab], for the penalty */
    /* the current draw's prefix in order: sorted[i], mass[i] = p of sorted[0..i] summed */
    cand *sorted, *tmp; /* tmp: the radix sort's other buffer */
    double *mass;
    int n_sorted, cap;
    int band;      /* the next band to add to the order (N_BANDS: every token is in) */
    bool oom;      /* an allocation failed: the draw falls back on the order already built */
};

/* The probability bands: band b holds p in [2^-(BAND_BITS (b+1)), 2^-(BAND_BITS b)), the last
 * everything below (down to 0). */
enum { BAND_BITS = 6, N_BANDS = 25 };

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
    s->seen = calloc((size_t)n_vocab, 1);
    if (!s->seen) { s1c_sampler_free(s); return s1c_fail(err, "sampler: out of memory"); }
    s1c_rng_seed(&s->rng, p->seed);
    *out = s;
    return 0;
}

void s1c_sampler_free(s1c_sampler *s) {
    if (!s) return;
    free(s->seen);
    free(s->sorted);
    free(s->tmp);
    free(s->mass);
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

/* Sorts c[0..n) by p, largest first, keeping the order of equal ones (they were pushed in
 * increasing id: ties stay lowest id first). A stable radix sort on the bits of p (p >= 0: the
 * bits order as the values), three passes of 11 bits; short runs by insertion. tmp: room for n. */
static void sort_by_p(cand *c, cand *tmp, int n) {
    if (n < 64) {
        for (int i = 1; i < n; i++) {
            cand v = c[i];
            int j = i;
            for (; j > 0 && c[j - 1].p < v.p; j--) c[j] = c[j - 1];
            c[j] = v;
        }
        return;
    }
    cand *from = c, *to = tmp;
    for (int shift = 0; shift < 33; shift += 11) {
        int count[2048 + 1] = {0};
        for (int i = 0; i < n; i++) {
            uint32_t key;
            memcpy(&key, &from[i].p, sizeof key);
            count[((~key) >> shift & 2047) + 1]++;
        }
        for (int d = 0; d < 2048; d++) count[d + 1] += count[d];
        for (int i = 0; i < n; i++) {
            uint32_t key;
            memcpy(&key, &from[i].p, sizeof key);
            to[count[(~key) >> shift & 2047]++] = from[i];
        }
        cand *t = from;
        from = to, to = t;
    }
    /* three passes: the result is in tmp */
    memcpy(c, from, (size_t)n * sizeof *c);
}

static float band_low(int b) { return b + 1 >= N_BANDS ? 0.0f : ldexpf(1.0f, -BAND_BITS * (b + 1)); }


/* Appends token id to the order's unsorted end; false when memory ran out (the order then keeps
 * the bands sorted before). */
static bool push(s1c_sampler *s, float p, int id) {
    if (s->oom) return false;
    if (s->n_sorted == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        if (cap > s->n_vocab) cap = s->n_vocab;
        cand *c = realloc(s->sorted, (size_t)cap * sizeof *c), *t = realloc(s->tmp, (size_t)cap * sizeof *t);
        if (c) s->sorted = c;
        if (t) s->tmp = t;
        double *m = realloc(s->mass, (size_t)cap * sizeof *m);
        if (m) s->mass = m;
        if (!c || !t || !m) {
            s->oom = true;
            return false;
        }
        s->cap = cap;
    }
    s->sorted[s->n_sorted++] = (cand){p, id};
    return true;
}

/* Sorts the band pushed from `first` on and extends the running masses over it (or, after a
 * failed push, drops it: the order ends with the bands before). */
static void sort_band(s1c_sampler *s, int first) {
    if (s->oom) {
        s->n_sorted = first;
        return;
    }
    sort_by_p(s->sorted + first, s->tmp, s->n_sorted - first);
    double run = first ? s->mass[first - 1] : 0.0;
    for (int i = first; i < s->n_sorted; i++) s->mass[i] = run += s->sorted[i].p;
    s->band++;
}

enum { CHUNK = 2048 }; /* values scanned at a time */

/* Pushes the tokens of p[c0 .. c0 + n) in [lo, hi) (n <= CHUNK); false when memory ran out. */
static bool push_range(s1c_sampler *s, const float *p, int c0, int n, float lo, float hi) {
    int idx[CHUNK];
    int k = vmath_select(idx, p + c0, lo, hi, n);
    for (int j = 0; j < k; j++)
        if (!push(s, p[c0 + idx[j]], c0 + idx[j])) return false;
    return true;
}

/* Appends the next band's tokens to the order (a pass over the vocabulary, then a sort of the
 * band). Returns false when every token is in already (or memory ran out). */
static bool add_band(s1c_sampler *s, const float *p) {
    if (s->band >= N_BANDS || s->oom) return false;
    float lo = band_low(s->band), hi = s->band == 0 ? INFINITY : band_low(s->band - 1);
    int first = s->n_sorted;
    for (int c0 = 0; c0 < s->n_vocab; c0 += CHUNK)
        if (!push_range(s, p, c0, s->n_vocab - c0 < CHUNK ? s->n_vocab - c0 : CHUNK, lo, hi)) break;
    sort_band(s, first);
    return !s->oom;
}

/* Makes the order hold at least n tokens (fewer only if memory ran out). */
static void sorted_until(s1c_sampler *s, const float *p, int n) {
    while (s->n_sorted < n && add_band(s, p)) {}
}

/* The first i < n whose running mass reaches `target` (>=, or > when strict), extending the
 * order as needed; n when none does. */
static int first_reaching(s1c_sampler *s, const float *p, int n, double target, bool strict) {
    int i = 0;
    for (;;) {
        int end = s->n_sorted < n ? s->n_sorted : n;
        for (; i < end; i++)
            if (strict ? s->mass[i] > target : s->mass[i] >= target) return i;
        if (end == n || !add_band(s, p)) return n;
    }
}

/* logits -> l / T in place (as l * (1 / T); NaN as -inf); returns the largest. */
static float scale_by_temperature(float *x, int n, float t) {
    float inv = 1.0f / t;
    for (int i = 0; i < n; i++) {
        float c = x[i] * inv;
        x[i] = c == c ? c : -INFINITY;
    }
    return vmath_max(x, -INFINITY, n);
}

/* x -> p = exp(x - mx) in place, chunk by chunk (vmath_exp_mass: the chunks' masses added in
 * order are the vocabulary's), and band 0 of the order from each chunk while it is in L1.
 * Returns the mass of the whole vocabulary. */
static double weights_and_first_band(s1c_sampler *s, float *x, float mx) {
    double mass = 0.0;
    int first = s->n_sorted;
    for (int c0 = 0; c0 < s->n_vocab; c0 += CHUNK) {
        int n = s->n_vocab - c0 < CHUNK ? s->n_vocab - c0 : CHUNK;
        mass += vmath_exp_mass(x + c0, x + c0, mx, n);
        if (!s->oom) push_range(s, x, c0, n, band_low(0), INFINITY);
    }
    sort_band(s, first);
    return mass;
}

int s1c_sampler_sample(s1c_sampler *s, float *logits, const int32_t *history, int n_history) {
    apply_penalty(s, logits, history, n_history);
    if (s->p.temperature <= 0.0f) return kern_argmax(logits, s->n_vocab);
    int V = s->n_vocab;
    float mx = scale_by_temperature(logits, V, s->p.temperature);
    if (mx == -INFINITY) return 0; /* every token banned: the lowest id */
    if (mx == INFINITY) {           /* the first of the infinitely likely */
        int i = 0;
        while (logits[i] != INFINITY) i++;
        return i;
    }
    float *p = logits;
    s->n_sorted = 0;
    s->band = 0;
    s->oom = false;
    double kept = weights_and_first_band(s, p, mx); /* p in [0, 1], 1 at the most likely */
    /* band 0 holds the most likely token and later bands never shrink the order: empty only
     * when memory ran out */
    if (s->n_sorted == 0) return kern_argmax(p, V);
    int n = V;
    if (s->p.top_k > 0 && s->p.top_k < V) {
        sorted_until(s, p, s->p.top_k);
        n = s->p.top_k < s->n_sorted ? s->p.top_k : s->n_sorted;
        kept = s->mass[n - 1];
    }
    if (s->p.top_p < 1.0f) {
        int i = first_reaching(s, p, n, (double)s->p.top_p * kept, false);
        if (i < n) n = i + 1;
    }
    if (s->p.min_p > 0.0f) {
        float thr = s->p.min_p * s->sorted[0].p; /* relative to the most likely token */
        int k = 1;
        for (;;) {
            int end = s->n_sorted < n ? s->n_sorted : n;
            while (k < end && s->sorted[k].p >= thr) k++;
            if (k < end || end == n || !add_band(s, p)) break;
        }
        n = k;
    }
    /* the draw: over the whole vocabulary its mass is `kept`, else the prefix's (in the order by
     * now: each cut above fell inside it) */
    double total = n == V ? kept : s->mass[(n < s->n_sorted ? n : s->n_sorted) - 1];
    int i = first_reaching(s, p, n, (double)s1c_rng_float(&s->rng) * total, true);
    if (i >= s->n_sorted) { /* rounding past the end (or no memory): the last likely one in order */
        i = s->n_sorted - 1;
        while (i > 0 && s->sorted[i].p == 0.0f) i--;
    }
    return s->sorted[i].id;
}
