/* Evaluation of expression trees.
 *
 * gr_eval_rat: exact rational value with checked int64 arithmetic (128-bit intermediates);
 *   false when the expression is not a rational constant or a value does not fit.
 * gr_eval: numeric value in double at one sample point. Free variables take pseudo-random
 *   values derived from their name and the point's seed (so both answers see the same value
 *   for the same name without a symbol table); subscripted symbols F_{n-k} are uninterpreted
 *   functions of their evaluated subscript; \sum/\prod iterate when their bounds are integers
 *   (else need_int is set and the caller retries with integer-valued variables). Every node
 *   visit costs fuel, so time is bounded whatever the tree. */
#include <math.h>
#include <string.h>

#include "grade_internal.h"

/* ---------------------------------------------------------------- rationals */
static int64_t gcd64(int64_t a, int64_t b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) { int64_t t = a % b; a = b; b = t; }
    return a;
}

static bool rat_make(__int128 n, __int128 d, rat *out) {
    if (d == 0) return false;
    if (d < 0) n = -n, d = -d;
    __int128 a = n < 0 ? -n : n, b = d;
    while (b) { __int128 t = a % b; a = b; b = t; }
    if (a > 1) n /= a, d /= a;
    if (n > INT64_MAX || n < -INT64_MAX || d > INT64_MAX) return false;
    out->n = (int64_t)n, out->d = (int64_t)d;
    return true;
}

static bool rat_pow(rat b, int64_t e, rat *out) {
    if (e < -64 || e > 64) {
        if (b.d == 1 && (b.n == 1 || b.n == 0)) { *out = b; return e >= 0 || b.n; }
        if (b.d == 1 && b.n == -1) { out->n = (e % 2) ? -1 : 1, out->d = 1; return true; }
        return false;
    }
    rat r = {1, 1};
    bool neg = e < 0;
    for (int64_t k = 0; k < (neg ? -e : e); k++)
        if (!rat_make((__int128)r.n * b.n, (__int128)r.d * b.d, &r)) return false;
    if (neg) return rat_make(r.d, r.n, out);
    *out = r;
    return true;
}

bool gr_eval_rat(const node *e, rat *out, int depth) {
    if (!e || depth > GR_MAX_DEPTH * 2) return false;
    rat a, b;
    switch (e->kind) {
    case N_NUM:
        if (!e->exact) return false;
        { int64_t g = gcd64(e->num, e->den); out->n = e->num / (g ? g : 1), out->d = e->den / (g ? g : 1); }
        return true;
    case N_NEG:
        if (!gr_eval_rat(e->kid[0], &a, depth + 1)) return false;
        out->n = -a.n, out->d = a.d;
        return true;
    case N_ADD:
        *out = (rat){0, 1};
        for (int i = 0; i < e->n; i++) {
            if (!gr_eval_rat(e->kid[i], &a, depth + 1)) return false;
            if (!rat_make((__int128)out->n * a.d + (__int128)a.n * out->d, (__int128)out->d * a.d, out)) return false;
        }
        return true;
    case N_MUL:
        *out = (rat){1, 1};
        for (int i = 0; i < e->n; i++) {
            if (!gr_eval_rat(e->kid[i], &a, depth + 1)) return false;
            if (!rat_make((__int128)out->n * a.n, (__int128)out->d * a.d, out)) return false;
        }
        return true;
    case N_DIV:
        if (!gr_eval_rat(e->kid[0], &a, depth + 1) || !gr_eval_rat(e->kid[1], &b, depth + 1)) return false;
        return rat_make((__int128)a.n * b.d, (__int128)a.d * b.n, out);
    case N_POW:
        if (!gr_eval_rat(e->kid[0], &a, depth + 1) || !gr_eval_rat(e->kid[1], &b, depth + 1) || b.d != 1) return false;
        return rat_pow(a, b.n, out);
    default: return false;
    }
}

/* ---------------------------------------------------------------- numeric */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t hash_name(const char *s, int n, uint64_t h) {
    for (int i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static double value_of_hash(uint64_t h, const eval_ctx *c) {
    h = mix64(h ^ mix64(c->seed + 0x9e3779b97f4a7c15ULL));
    if (c->int_mode) return (double)(2 + h % 10);
    return 0.3 + 2.4 * (double)(h >> 11) / 9007199254740992.0;
}

static bool name_is(const node *e, const char *s) {
    return e->name_len == (int)strlen(s) && memcmp(e->name, s, (size_t)e->name_len) == 0;
}

static bool is_pi(const node *e) { return e->kind == N_SYM && (name_is(e, "\\pi") || name_is(e, "\xCF\x80")); }
static bool is_e(const node *e) { return e->kind == N_SYM && name_is(e, "e"); }

static double sym_value(const char *name, int len, eval_ctx *c) {
    for (int i = c->nbound; i-- > 0;)
        if (c->bound_len[i] == len && memcmp(c->bound_name[i], name, (size_t)len) == 0) return c->bound_val[i];
    return value_of_hash(hash_name(name, len, 0xcbf29ce484222325ULL), c);
}

static bool near_int(double x) { return isfinite(x) && fabs(x - nearbyint(x)) < 1e-9 * (1 + fabs(x)); }

/* A name-ish hash of a node used as the "function" of a subscript: F in F_{n-k}. */
static uint64_t base_hash(const node *e, eval_ctx *c, int depth) {
    if (e->kind == N_SYM || e->kind == N_WORD) return hash_name(e->name, e->name_len, 0x84222325cbf29ce4ULL);
    double v = gr_eval(e, c, depth + 1);
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return mix64(u);
}

double gr_eval(const node *e, eval_ctx *c, int depth) {
    if (!e || --c->fuel < 0 || depth > GR_MAX_DEPTH * 2) { c->unsupported = true; return NAN; }
    double a, b;
    switch (e->kind) {
    case N_NUM: return e->val;
    case N_SYM:
        if (is_pi(e)) return M_PI;
        if (is_e(e)) return M_E;
        return sym_value(e->name, e->name_len, c);
    case N_WORD: {
        double r = 1;
        for (int i = 0; i < e->name_len; i++) r *= sym_value(e->name + i, 1, c);
        return r;
    }
    case N_INF: return INFINITY;
    case N_ADD:
        a = 0;
        for (int i = 0; i < e->n; i++) a += gr_eval(e->kid[i], c, depth + 1);
        return a;
    case N_MUL:
        a = 1;
        for (int i = 0; i < e->n; i++) a *= gr_eval(e->kid[i], c, depth + 1);
        return a;
    case N_NEG: return -gr_eval(e->kid[0], c, depth + 1);
    case N_DIV:
        a = gr_eval(e->kid[0], c, depth + 1), b = gr_eval(e->kid[1], c, depth + 1);
        return b == 0 ? NAN : a / b;
    case N_POW:
        a = gr_eval(e->kid[0], c, depth + 1), b = gr_eval(e->kid[1], c, depth + 1);
        if (a < 0 && !near_int(b)) return NAN;
        return pow(a, near_int(b) ? nearbyint(b) : b);
    case N_PM: {
        double s = ((c->pm_mask >> (e->pm_index & 31)) & 1) ? -1 : 1;
        if (e->op) s = -s;
        return s * gr_eval(e->kid[0], c, depth + 1);
    }
    case N_PRIME: {
        const node *k = e->kid[0];
        uint64_t h = (k->kind == N_SYM || k->kind == N_WORD) ? hash_name(k->name, k->name_len, 77) : base_hash(k, c, depth);
        return value_of_hash(h * 31 + 0x27, c);
    }
    case N_SUB: {
        double s = gr_eval(e->kid[1], c, depth + 1);
        if (!isfinite(s)) return NAN;
        double r = nearbyint(s * 1e6);
        uint64_t q;
        memcpy(&q, &r, sizeof q);
        return value_of_hash(base_hash(e->kid[0], c, depth) ^ mix64(q + 12345), c);
    }
    case N_ROOT:
        a = gr_eval(e->kid[0], c, depth + 1), b = gr_eval(e->kid[1], c, depth + 1);
        if (a == 0) return NAN;
        if (b < 0) return (near_int(a) && fabs(a) < 1e15 && ((int64_t)nearbyint(a)) % 2) ? -pow(-b, 1 / a) : NAN;
        return pow(b, 1 / a);
    case N_BINOM: {
        a = gr_eval(e->kid[0], c, depth + 1), b = gr_eval(e->kid[1], c, depth + 1);
        if (near_int(a) && near_int(b) && b >= 0 && b <= 1000) {
            double r = 1;
            int64_t k = (int64_t)nearbyint(b);
            for (int64_t i = 1; i <= k; i++) r = r * (a - k + i) / (double)i;
            return r;
        }
        return tgamma(a + 1) / (tgamma(b + 1) * tgamma(a - b + 1));
    }
    case N_SUM: case N_PROD: {
        const node *var = e->kid[0];
        double lo = gr_eval(e->kid[1], c, depth + 1), hi = gr_eval(e->kid[2], c, depth + 1);
        if (!near_int(lo) || !near_int(hi)) { if (isfinite(lo) && isfinite(hi)) c->need_int = true; return NAN; }
        if (hi - lo > 10000 || c->nbound >= 8) { c->unsupported = true; return NAN; }
        int slot = c->nbound++;
        c->bound_name[slot] = var->name, c->bound_len[slot] = var->name_len;
        double acc = e->kind == N_SUM ? 0 : 1;
        for (double k = nearbyint(lo); k <= hi + 0.5 && c->fuel > 0; k += 1) {
            c->bound_val[slot] = k;
            double v = gr_eval(e->kid[3], c, depth + 1);
            acc = e->kind == N_SUM ? acc + v : acc * v;
        }
        c->nbound--;
        return acc;
    }
    case N_FUNC: {
        a = gr_eval(e->kid[0], c, depth + 1);
        switch (e->op) {
        case F_SIN: return sin(a);
        case F_COS: return cos(a);
        case F_TAN: return tan(a);
        case F_COT: return 1 / tan(a);
        case F_SEC: return 1 / cos(a);
        case F_CSC: return 1 / sin(a);
        case F_ASIN: return asin(a);
        case F_ACOS: return acos(a);
        case F_ATAN: return atan(a);
        case F_SINH: return sinh(a);
        case F_COSH: return cosh(a);
        case F_TANH: return tanh(a);
        case F_LN: return a > 0 ? log(a) : NAN;
        case F_LOG:
            if (a <= 0) return NAN;
            if (e->close && e->n >= 2) {
                b = gr_eval(e->kid[e->n - 1], c, depth + 1);
                return b > 0 && b != 1 ? log(a) / log(b) : NAN;
            }
            return log10(a);
        case F_EXP: return exp(a);
        case F_ABS: return fabs(a);
        case F_FLOOR: return floor(a);
        case F_CEIL: return ceil(a);
        case F_SQRT: return a >= 0 ? sqrt(a) : NAN;
        case F_FACT:
            if (!near_int(a)) { if (isfinite(a)) c->need_int = true; return NAN; }
            return a < 0 ? NAN : a > 170 ? INFINITY : tgamma(nearbyint(a) + 1);
        case F_MAX: case F_MIN: {
            int n = e->close ? e->n - 1 : e->n;
            for (int i = 1; i < n; i++) {
                b = gr_eval(e->kid[i], c, depth + 1);
                a = e->op == F_MAX ? fmax(a, b) : fmin(a, b);
            }
            return a;
        }
        case F_GCD: case F_LCM: {
            int n = e->close ? e->n - 1 : e->n;
            if (!near_int(a) || fabs(a) > 1e15) return NAN;
            int64_t g = (int64_t)fabs(nearbyint(a));
            for (int i = 1; i < n; i++) {
                b = gr_eval(e->kid[i], c, depth + 1);
                if (!near_int(b) || fabs(b) > 1e15) return NAN;
                int64_t y = (int64_t)fabs(nearbyint(b)), x = g;
                int64_t gg = gcd64(x, y);
                if (e->op == F_GCD) g = gg;
                else if (!gg) g = 0;
                else if (__builtin_mul_overflow(x / gg, y, &g)) return NAN;
            }
            return (double)g;
        }
        default: c->unsupported = true; return NAN;
        }
    }
    default: c->unsupported = true; return NAN;
    }
}

bool gr_has_vars(const node *e, int depth) {
    if (!e || depth > GR_MAX_DEPTH * 2) return false;
    switch (e->kind) {
    case N_SYM: return !is_pi(e) && !is_e(e);
    case N_WORD: case N_SUB: case N_PRIME: return true;
    default:
        for (int i = 0; i < e->n; i++)
            if (gr_has_vars(e->kid[i], depth + 1)) return true;
        return false;
    }
}
