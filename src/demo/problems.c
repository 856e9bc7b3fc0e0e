/* Synthetic problems and the programmatic teacher of `s1c demo`.
 *
 * Questions have at least eight words with numbers spread through them, so the real
 * decontamination (word 8-grams against the held-out test set) removes near copies of test
 * problems, not a whole template.
 *
 * Every problem is a short chain of integer steps. The teacher writes one step per line in
 * the form "12 * 4 = 48." so a small character-level model can learn each step locally; with
 * probability slip_p a step is first written with a wrong result, followed by "Wait, 12 * 4 =
 * 48, not 46." and the chain continues from the right value — the behaviour s1's "Wait"
 * extension relies on; with probability verify_p the trace ends with a check of the result. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/demo.h"

static const char *const domain_names[DEMO_N_DOMAINS] = {"arithmetic", "modular", "linear", "counting", "units"};

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

/* A wrong value near the right one (never negative, never equal). */
static long slip_value(s1c_rng *r, long right) {
    long d = rnd(r, 1, 3) * (chance(r, 0.5) ? 1 : -1);
    if (right + d < 0 || d == 0) d = rnd(r, 1, 3);
    return right + d;
}

/* The teacher's state while it writes one problem's trace. */
typedef struct teacher {
    text trace;
    s1c_rng *rng;
    double slip_p;
    int slips;
} teacher;

/* One step "lhs = value.", maybe first written wrong and corrected after "Wait". */
static void step(teacher *t, const char *lhs, long value) {
    if (chance(t->rng, t->slip_p)) {
        long wrong = slip_value(t->rng, value);
        addf(&t->trace, "%s = %ld.\nWait, %s = %ld, not %ld.\n", lhs, wrong, lhs, value, wrong);
        t->slips++;
        return;
    }
    addf(&t->trace, "%s = %ld.\n", lhs, value);
}

static void stepf(teacher *t, long value, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void stepf(teacher *t, long value, const char *fmt, ...) {
    char lhs[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lhs, sizeof lhs, fmt, ap);
    va_end(ap);
    step(t, lhs, value);
}

/* ---------------------------------------------------------------- the domains */

/* Each writes the question into q, the steps through t, the check (when verify) and returns
 * the answer. */
typedef long (*domain_fn)(text *q, teacher *t, int difficulty, bool verify);

static long make_arith(text *q, teacher *t, int diff, bool verify) {
    s1c_rng *r = t->rng;
    long top = diff == 1 ? 9 : diff == 2 ? 20 : 50;
    long a = rnd(r, 2, top), b = rnd(r, 2, 9), c = rnd(r, 2, diff == 1 ? 9 : 12);
    long bc = b * c, sum = a + bc;
    if (diff == 1) {
        addf(q, "Compute the value of %ld + %ld * %ld.", a, b, c);
        stepf(t, bc, "%ld * %ld", b, c);
        stepf(t, sum, "%ld + %ld", a, bc);
        if (verify) addf(&t->trace, "Check: %ld - %ld = %ld. Yes.\n", sum, bc, a);
        return sum;
    }
    long d = rnd(r, 1, sum - 1);
    addf(q, "Compute the value of %ld + %ld * %ld - %ld.", a, b, c, d);
    stepf(t, bc, "%ld * %ld", b, c);
    stepf(t, sum, "%ld + %ld", a, bc);
    stepf(t, sum - d, "%ld - %ld", sum, d);
    if (verify) addf(&t->trace, "Check: %ld + %ld = %ld. Yes.\n", sum - d, d, sum);
    return sum - d;
}

static long make_mod(text *q, teacher *t, int diff, bool verify) {
    s1c_rng *r = t->rng;
    long k = rnd(r, 2, diff == 3 ? 19 : 9), n = rnd(r, k + 1, diff == 1 ? 99 : diff == 2 ? 500 : 2000);
    long m = n / k, rem = n % k;
    addf(q, "What is the remainder of %ld divided by %ld?", n, k);
    stepf(t, k * m, "%ld * %ld", k, m);
    stepf(t, rem, "%ld - %ld", n, k * m);
    if (verify) addf(&t->trace, "Check: %ld + %ld = %ld and %ld < %ld. Yes.\n", k * m, rem, n, rem, k);
    return rem;
}

static long make_linear(text *q, teacher *t, int diff, bool verify) {
    s1c_rng *r = t->rng;
    long a = rnd(r, 2, diff == 1 ? 5 : 9), x = rnd(r, 1, diff == 3 ? 30 : 12), b = rnd(r, 1, diff == 1 ? 9 : 40);
    bool minus = diff == 3 && chance(r, 0.5) && a * x > b;
    long c = minus ? a * x - b : a * x + b;
    addf(q, "Solve %ldx %c %ld = %ld for the unknown x.", a, minus ? '-' : '+', b, c);
    if (minus) stepf(t, a * x, "%ldx = %ld + %ld", a, c, b);
    else stepf(t, a * x, "%ldx = %ld - %ld", a, c, b);
    stepf(t, x, "x = %ld / %ld", a * x, a);
    if (verify) addf(&t->trace, "Check: %ld * %ld %c %ld = %ld. Yes.\n", a, x, minus ? '-' : '+', b, c);
    return x;
}

static long make_count(text *q, teacher *t, int diff, bool verify) {
    s1c_rng *r = t->rng;
    long k = rnd(r, 2, diff == 1 ? 5 : 12), n = rnd(r, k * 2, diff == 1 ? 50 : diff == 2 ? 200 : 999);
    long m = n / k;
    addf(q, "Between 1 and %ld, how many multiples of %ld are there?", n, k);
    stepf(t, k * m, "%ld * %ld", k, m);
    stepf(t, k * (m + 1), "%ld * %ld", k, m + 1);
    addf(&t->trace, "%ld > %ld, so %ld.\n", k * (m + 1), n, m);
    if (verify) addf(&t->trace, "Check: %ld <= %ld. Yes.\n", k * m, n);
    return m;
}

static long make_units(text *q, teacher *t, int diff, bool verify) {
    s1c_rng *r = t->rng;
    if (diff == 1) {
        long h = rnd(r, 1, 9), mi = rnd(r, 1, 59);
        addf(q, "How many minutes are in %ld h %ld min?", h, mi);
        stepf(t, h * 60, "%ld * 60", h);
        stepf(t, h * 60 + mi, "%ld + %ld", h * 60, mi);
        if (verify) addf(&t->trace, "Check: %ld - %ld = %ld. Yes.\n", h * 60 + mi, mi, h * 60);
        return h * 60 + mi;
    }
    if (diff == 2) {
        long d = rnd(r, 1, 9), h = rnd(r, 1, 23);
        addf(q, "How many hours are in %ld d %ld h?", d, h);
        stepf(t, d * 24, "%ld * 24", d);
        stepf(t, d * 24 + h, "%ld + %ld", d * 24, h);
        if (verify) addf(&t->trace, "Check: %ld - %ld = %ld. Yes.\n", d * 24 + h, h, d * 24);
        return d * 24 + h;
    }
    long h = rnd(r, 1, 5), mi = rnd(r, 1, 59), s = rnd(r, 1, 59);
    addf(q, "How many seconds are in %ld h %ld min %ld s?", h, mi, s);
    stepf(t, h * 60, "%ld * 60", h);
    stepf(t, h * 60 + mi, "%ld + %ld", h * 60, mi);
    stepf(t, (h * 60 + mi) * 60, "%ld * 60", h * 60 + mi);
    stepf(t, (h * 60 + mi) * 60 + s, "%ld + %ld", (h * 60 + mi) * 60, s);
    if (verify) addf(&t->trace, "Check: %ld - %ld = %ld. Yes.\n", (h * 60 + mi) * 60 + s, s, (h * 60 + mi) * 60);
    return (h * 60 + mi) * 60 + s;
}

static const domain_fn domains[DEMO_N_DOMAINS] = {make_arith, make_mod, make_linear, make_count, make_units};

int demo_problem_make(demo_problem *p, int domain, int difficulty, double slip_p, double verify_p, s1c_rng *rng,
                      s1c_err *err) {
    memset(p, 0, sizeof *p);
    if (domain < 0 || domain >= DEMO_N_DOMAINS) return s1c_fail(err, "demo: no domain %d", domain);
    if (difficulty < 1 || difficulty > 3) return s1c_fail(err, "demo: difficulty %d is not 1..3", difficulty);
    text q = {0};
    teacher t = {.rng = rng, .slip_p = slip_p};
    bool verify = chance(rng, verify_p);
    long answer = domains[domain](&q, &t, difficulty, verify);
    if (q.oom || t.trace.oom || !q.s || !t.trace.s) {
        free(q.s);
        free(t.trace.s);
        return s1c_fail(err, "demo: out of memory");
    }
    if (t.trace.len && t.trace.s[t.trace.len - 1] == '\n') t.trace.s[--t.trace.len] = 0;
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", answer);
    p->domain = domain;
    p->difficulty = difficulty;
    p->question = q.s;
    p->trace = t.trace.s;
    p->answer = strdup(buf);
    p->n_slips = t.slips;
    p->verified = verify;
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
