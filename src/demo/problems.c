/* Synthetic problems and the programmatic teacher of `s1c demo`.
 *
 * Every problem folds a list of two-digit numbers with one operation (the last digit of a sum,
 * or of a product, a count above a threshold, a running maximum or minimum);
 * difficulty is the length of the list, so harder problems need longer thinking — what makes
 * accuracy grow with the thinking budget rather than jump at one length.
 *
 * The teacher writes one line per number ("b: +85 = 32.") so a small model learns each step
 * locally. Sometimes it checks its result: "Wait, again from b:" and the same fold started
 * at the next number (a rotation: other intermediate values, so a slip in one pass is not
 * repeated in the next), then "32 again." when a result repeats an earlier pass, or "32
 * differs." and another rotation. A checking teacher sometimes slips (one step written wrong,
 * the rest of that pass computed from the wrong value, as a person would), which is what the
 * check is for: the answer is the first result two passes agree on. So "Wait" is useful in
 * this world for the reason s1 gives — a second, independent look catches a slip — and a
 * model that learned it can be made to look again by budget forcing.
 *
 * Questions name the numbers ("Let a=52, b=73. Find the last digit of a+b."), have eight words or
 * more, and every word 8-gram of them holds two numbers or more.
 *
 * Why these five (each measured with the demo's 0.77M-parameter model): two arithmetic tables
 * (sums and products mod 10) are what it learns in the training budget. Signed sums were a
 * sixth table: with the signs in the expression ("a-b+c") it had to find a sign by position and
 * reached 47%; with the signs in the definitions ("b=-73") it learned subtraction and sums fell
 * from 100% to 25% (in a run that also checked more). A minimum needs no table: 96.7% overall. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/demo.h"

static const char *const domain_names[DEMO_N_DOMAINS] = {"sum", "min", "count", "max", "product"};

const char *demo_domain_name(int d) { return d >= 0 && d < DEMO_N_DOMAINS ? domain_names[d] : "?"; }

/* ---------------------------------------------------------------- text building */

typedef struct text {
    char *s;
    size_t len, cap;
    bool oom;
} text;

static void addf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || t->oom) return;
    if (t->len + (size_t)n + 1 > t->cap) {
        size_t cap = (t->len + (size_t)n + 1) * 2;
        char *s = realloc(t->s, cap);
        if (!s) {
            t->oom = true;
            return;
        }
        t->s = s;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

static long rnd(s1c_rng *r, long lo, long hi) { return lo + (long)(s1c_rng_u64(r) % (uint64_t)(hi - lo + 1)); }

static bool chance(s1c_rng *r, double p) { return s1c_rng_float(r) < p; }

/* ---------------------------------------------------------------- the domains */

/* A problem: the terms, the threshold for DEMO_COUNT. */
typedef struct fold {
    int domain, difficulty, n;
    long term[DEMO_MAX_TERMS];
    long threshold;
} fold;

static long mod(long a, long m) { return ((a % m) + m) % m; }

/* The running value before the first term (a minimum starts above every two-digit number). */
static long fold_start(const fold *f) { return f->domain == DEMO_PRODUCT ? 1 : f->domain == DEMO_MIN ? 100 : 0; }

/* The running value after one more term. */
static long fold_step(const fold *f, long acc, long x) {
    switch (f->domain) {
    case DEMO_SUM: return mod(acc + x, 10);
    case DEMO_MIN: return x < acc ? x : acc;
    case DEMO_COUNT: return acc + (x > f->threshold);
    case DEMO_MAX: return x > acc ? x : acc;
    default: return acc * (x % 10) % 10;
    }
}

/* The step's line: the number's name and value, what the step looks at, and the running
 * value written. Naming the number ("b: +73 = 5.") makes copying it from the question a
 * lookup of "b=" instead of counting list positions — which small models learn poorly. */
static void step_line(text *t, const fold *f, int i, long written) {
    long x = f->term[i];
    addf(t, "%c: ", 'a' + i);
    switch (f->domain) {
    case DEMO_SUM: addf(t, "+%ld = %ld.\n", x, written); break;
    case DEMO_COUNT:
        addf(t, "%ld %c %ld, so %ld.\n", x, x > f->threshold ? '>' : x < f->threshold ? '<' : '=', f->threshold, written);
        break;
    case DEMO_MAX: addf(t, "%ld, max %ld.\n", x, written); break;
    case DEMO_MIN: addf(t, "%ld, min %ld.\n", x, written); break;
    default: addf(t, "*%ld = %ld.\n", x, written); break;
    }
}

/* A plausible wrong running value in place of right (never equal to it). */
static long slip_value(const fold *f, long right, long prev, s1c_rng *r) {
    switch (f->domain) {
    case DEMO_SUM: return mod(right + rnd(r, 1, 9), 10);
    case DEMO_COUNT: return right > 0 && chance(r, 0.5) ? right - 1 : right + 1;
    case DEMO_MAX:
    case DEMO_MIN: return prev; /* keeps the old extreme: only called where it changes */
    default: return mod(right + rnd(r, 1, 9), 10);
    }
}

/* "Let a=52, b=73, c=83." and the question about the names. Every word 8-gram holds two
 * numbers or more, so decontamination (word 8-grams against the test set) removes the pool
 * problems that share numbers with a test problem, never a whole template. */
static void make_question(text *q, const fold *f) {
    addf(q, "Let");
    for (int i = 0; i < f->n; i++) addf(q, " %c=%ld%s", 'a' + i, f->term[i], i + 1 < f->n ? "," : ".");
    char names[2 * DEMO_MAX_TERMS + 1];
    int k = 0;
    for (int i = 0; i < f->n; i++) {
        if (i) names[k++] = f->domain == DEMO_SUM ? '+' : f->domain == DEMO_PRODUCT ? '*' : ',';
        names[k++] = (char)('a' + i);
    }
    names[k] = 0;
    switch (f->domain) {
    case DEMO_COUNT: addf(q, " How many are larger than %ld?", f->threshold); break;
    case DEMO_MAX: addf(q, " What is the largest of %s?", names); break;
    case DEMO_MIN: addf(q, " What is the smallest of %s?", names); break;
    default: addf(q, " Find the last digit of %s.", names); break;
    }
}

static void draw_fold(fold *f, int domain, int difficulty, s1c_rng *r) {
    static const int lo[4] = {0, 2, 4, 6}, hi[4] = {0, 3, 5, 7};
    f->domain = domain;
    f->difficulty = difficulty;
    f->n = (int)rnd(r, lo[difficulty], hi[difficulty]);
    f->threshold = rnd(r, 20, 80);
    for (int i = 0; i < f->n; i++) {
        f->term[i] = rnd(r, 10, 99);
    }
}

/* ---------------------------------------------------------------- the teacher */

/* One pass over the terms starting at index `from` (cyclically). With slip_at >= 0 the
 * running value of that step is written wrong and the pass continues from what it wrote.
 * Returns the pass's result; writes its lines when t is not NULL. */
static long fold_pass(const fold *f, int from, int slip_at, long wrong, text *t) {
    long acc = fold_start(f);
    for (int k = 0; k < f->n; k++) {
        int i = (from + k) % f->n;
        acc = k == slip_at ? wrong : fold_step(f, acc, f->term[i]);
        if (t) step_line(t, f, i, acc);
    }
    return acc;
}

/* Picks a slip for the pass starting at `from` whose result is none of avoid[0..n_avoid)
 * (the right answer and earlier wrong results, so the first repeat is always right).
 * Returns false when no such slip exists. */
static bool pick_slip(const fold *f, int from, const long *avoid, int n_avoid, s1c_rng *r, int *at, long *wrong) {
    for (int attempt = 0; attempt < 16; attempt++) {
        int k = (int)rnd(r, 0, f->n - 1);
        long acc = fold_start(f);
        for (int j = 0; j < k; j++) acc = fold_step(f, acc, f->term[(from + j) % f->n]);
        long right = fold_step(f, acc, f->term[(from + k) % f->n]);
        /* an extreme slips by keeping the old one: where it changes, after the first number */
        if ((f->domain == DEMO_MAX || f->domain == DEMO_MIN) && (right == acc || k == 0)) continue;
        long w = slip_value(f, right, acc, r);
        if (w == right) continue;
        long result = fold_pass(f, from, k, w, NULL);
        bool clash = false;
        for (int i = 0; i < n_avoid; i++) clash |= result == avoid[i];
        if (clash) continue;
        *at = k;
        *wrong = w;
        return true;
    }
    return false;
}

static void pass_header(text *t, int from) { addf(t, "Wait, again from %c:\n", 'a' + from); }

/* Writes the whole trace; returns the answer. check_p: probability of checking the hardest
 * problems (difficulty d checks with check_p * d / 3: a careful person checks long sums more
 * often, so thinking grows with difficulty, not with luck); slip_p: probability that a pass of a
 * checking trace slips. */
static long teach(const fold *f, text *t, double check_p, double slip_p, s1c_rng *r, int *n_slips, int *n_passes) {
    long right = fold_pass(f, 0, -1, 0, NULL);
    bool check = f->n > 1 && chance(r, check_p * f->difficulty / 3.0);
    long results[DEMO_MAX_PASSES];
    int n = 0, n_right = 0;
    *n_slips = 0;
    for (int pass = 0; pass < DEMO_MAX_PASSES; pass++) {
        int from = pass % f->n, at = -1;
        long wrong = 0;
        /* a pass slips only while enough passes remain for two right ones, so a checking trace
         * always ends on a repeat of the right result */
        bool may_slip = DEMO_MAX_PASSES - 1 - pass >= 2 - n_right;
        if (check && may_slip && chance(r, slip_p)) {
            results[n] = right;
            if (pick_slip(f, from, results, n + 1, r, &at, &wrong)) ++*n_slips;
        }
        if (pass > 0) pass_header(t, from);
        long got = fold_pass(f, from, at, wrong, t);
        n_right += got == right;
        bool repeat = false;
        for (int i = 0; i < n; i++) repeat |= results[i] == got;
        results[n++] = got;
        if (!check) break;
        if (pass > 0) addf(t, "%ld %s.\n", got, repeat ? "again" : "differs");
        if (repeat) break;
    }
    *n_passes = n;
    return right;
}

int demo_problem_make(demo_problem *p, int domain, int difficulty, double check_p, double slip_p, s1c_rng *rng,
                      s1c_err *err) {
    memset(p, 0, sizeof *p);
    if (domain < 0 || domain >= DEMO_N_DOMAINS) return s1c_fail(err, "demo: no domain %d", domain);
    if (difficulty < 1 || difficulty > 3) return s1c_fail(err, "demo: difficulty %d is not 1..3", difficulty);
    fold f;
    draw_fold(&f, domain, difficulty, rng);
    text q = {0}, t = {0};
    make_question(&q, &f);
    long answer = teach(&f, &t, check_p, slip_p, rng, &p->n_slips, &p->n_passes);
    if (q.oom || t.oom || !q.s || !t.s) {
        free(q.s);
        free(t.s);
        return s1c_fail(err, "demo: out of memory");
    }
    if (t.len && t.s[t.len - 1] == '\n') t.s[--t.len] = 0;
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", answer);
    p->domain = domain;
    p->difficulty = difficulty;
    p->n_terms = f.n;
    p->question = q.s;
    p->trace = t.s;
    p->answer = strdup(buf);
    if (!p->answer) {
        demo_problem_free(p);
        return s1c_fail(err, "demo: out of memory");
    }
    return 0;
}

void demo_problem_free(demo_problem *p) {
    free(p->question);
    free(p->trace);
    free(p->answer);
    memset(p, 0, sizeof *p);
}
