/* Equivalence of two answers: the public grade_equal.
 *
 * Order of decisions (each documented in grade.h's terms):
 *   1. identical strings (after trimming)                          -> EQUAL
 *   2. both digit strings: integers, leading zeros ignored (023=23) -> EQUAL / NOT_EQUAL
 *   3. gold a single capital letter, pred "C." / "C)" / "(C)"       -> letter match
 *   4. parse both (lex.c, parse.c); a failure -> normalized strings equal ? EQUAL : UNSURE
 *   5. compare the answer lists: one item each -> compare items; else as sets (order and
 *      repeats ignored), with `\pm` expanded, a lone set or a lone tuple matched against a
 *      bare list; items: relations (labels `x =`, `f(x) =`, `AB =` dropped against a bare
 *      value; equations/inequalities compared up to a constant factor), tuples/intervals
 *      (brackets must agree), sets, matrices, ratios, scalars; scalars: structure (with
 *      commutative + and *), words (case-insensitive), exact rationals, numbers with a
 *      relative tolerance of 1e-9, random points for free variables.
 * Anything undecidable (NaN, infinities, unsupported constructs, fuel exhausted) is UNSURE. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grade_internal.h"

typedef enum { C_NE = 0, C_EQ = 1, C_UN = 2 } cres;

typedef struct cmp {
    uint64_t seed;
    long fuel;
} cmp;

static cres cmp_value(cmp *C, const node *a, unsigned ma, const node *b, unsigned mb, int depth);

/* ---------------------------------------------------------------- helpers */
static bool is_container(int k) {
    return k == N_SEQ || k == N_SET || k == N_MATRIX || k == N_UNION || k == N_RATIO || k == N_REL || k == N_LIST;
}

/* true if a container sits somewhere below arithmetic (e.g. -[0,1)): not a scalar */
static bool has_container(const node *e, int depth) {
    if (!e || depth > GR_MAX_DEPTH * 2) return true;
    if (is_container(e->kind)) return true;
    for (int i = 0; i < e->n; i++)
        if (has_container(e->kid[i], depth + 1)) return true;
    return false;
}

static bool has_pm(const node *e, int depth) {
    if (!e || depth > GR_MAX_DEPTH * 2) return false;
    if (e->kind == N_PM) return true;
    for (int i = 0; i < e->n; i++)
        if (has_pm(e->kid[i], depth + 1)) return true;
    return false;
}

static void number_pm(node *e, int *count, int depth) {
    if (!e || depth > GR_MAX_DEPTH * 2) return;
    if (e->kind == N_PM) e->pm_index = (*count)++;
    for (int i = 0; i < e->n; i++) number_pm(e->kid[i], count, depth + 1);
}

static bool names_eq(const node *a, const node *b) {
    return a->name_len == b->name_len && memcmp(a->name, b->name, (size_t)a->name_len) == 0;
}

static bool num_eq(const node *a, const node *b) {
    if (a->exact && b->exact) return (__int128)a->num * b->den == (__int128)b->num * a->den;
    return a->val == b->val;
}

/* Structural equality; + and * (and sets) compare as multisets. */
static bool struct_eq(const node *a, const node *b, int depth) {
    if (a == b) return true;
    if (!a || !b || depth > GR_MAX_DEPTH * 2) return false;
    if (a->kind != b->kind || a->n != b->n || a->op != b->op) return false;
    switch (a->kind) {
    case N_NUM: return num_eq(a, b);
    case N_SYM: case N_WORD: return names_eq(a, b);
    case N_SEQ: if (a->close != b->close) return false; break;
    case N_MATRIX: if (a->rows != b->rows || a->cols != b->cols) return false; break;
    case N_REL:
        for (int i = 0; i + 1 < a->n; i++)
            if (a->ops[i] != b->ops[i]) return false;
        break;
    default: break;
    }
    if ((a->kind == N_ADD || a->kind == N_MUL || a->kind == N_SET) && a->n <= 64) {
        uint64_t used = 0;
        for (int i = 0; i < a->n; i++) {
            bool found = false;
            for (int j = 0; j < b->n && !found; j++)
                if (!(used >> j & 1) && struct_eq(a->kid[i], b->kid[j], depth + 1)) used |= 1ULL << j, found = true;
            if (!found) return false;
        }
        return true;
    }
    for (int i = 0; i < a->n; i++)
        if (!struct_eq(a->kid[i], b->kid[i], depth + 1)) return false;
    return true;
}

/* Words only ("Even", "\text{odd}", "Navin"): compared case-insensitively. */
static bool is_textual(const node *e) {
    if (e->kind == N_WORD) return true;
    if (e->kind != N_MUL) return false;
    bool word = false;
    for (int i = 0; i < e->n; i++) {
        if (e->kid[i]->kind == N_WORD) word = true;
        else if (e->kid[i]->kind != N_SYM) return false;
    }
    return word;
}

static size_t text_key(const node *e, char *buf, size_t cap, size_t at) {
    if (e->kind == N_WORD || e->kind == N_SYM) {
        for (int i = 0; i < e->name_len && at < cap; i++) buf[at++] = (char)tolower((unsigned char)e->name[i]);
        return at;
    }
    for (int i = 0; i < e->n; i++) at = text_key(e->kid[i], buf, cap, at);
    return at;
}

/* A label on the left of "=": a name, not a computation (x, f(x), |AB|, a_3, \frac{NO}{BO},
 * (p,q,r), S_{MBCN}:S). Numbers and + / - make it an equation instead (a + 3z = 0). */
static bool is_label(const node *e, int depth) {
    if (!e || depth > 64) return false;
    switch (e->kind) {
    case N_SYM: case N_WORD: case N_PRIME: return true;
    case N_SUB: return is_label(e->kid[0], depth + 1);
    case N_FUNC: return e->op == F_ABS && is_label(e->kid[0], depth + 1);
    case N_MUL: case N_DIV: case N_RATIO: case N_SEQ:
        if (e->n == 0) return false;
        for (int i = 0; i < e->n; i++)
            if (!is_label(e->kid[i], depth + 1)) return false;
        return true;
    default: return false;
    }
}

/* ---------------------------------------------------------------- numbers */
static bool close_rel(double x, double y, double tol) {
    if (isinf(x) || isinf(y)) return x == y;
    double s = fmax(1.0, fmax(fabs(x), fabs(y)));
    return fabs(x - y) <= tol * s;
}

/* One side a plain decimal (0.577) that matches the other only to its written precision. */
static bool rounded_match(const node *a, double va, const node *b, double vb) {
    if (a->kind == N_NUM && b->kind == N_NUM) return false; /* two literals: exact */
    /* two or more written decimals: 4.5 against 2\sqrt5 is simply wrong */
    const node *d = a->kind == N_NUM && a->decimals > 1 ? a : b->kind == N_NUM && b->decimals > 1 ? b : NULL;
    if (!d || !isfinite(va) || !isfinite(vb)) return false;
    return fabs(va - vb) <= 0.5 * pow(10, -d->decimals) * (1 + 1e-9);
}

static cres cmp_points(cmp *C, const node *a, unsigned ma, const node *b, unsigned mb) {
    int agree = 0, disagree = 0;
    for (int mode = 0; mode < 2; mode++) {
        bool need_int = false;
        for (int k = 0; k < 8; k++) {
            eval_ctx ea = {.seed = C->seed + (uint64_t)k * 7919, .int_mode = mode == 1, .pm_mask = ma, .fuel = C->fuel};
            double va = gr_eval(a, &ea, 0);
            eval_ctx eb = ea;
            eb.pm_mask = mb, eb.fuel = ea.fuel, eb.need_int = false, eb.unsupported = false;
            double vb = gr_eval(b, &eb, 0);
            C->fuel = eb.fuel;
            if (C->fuel <= 0) return C_UN;
            if (ea.need_int || eb.need_int) { need_int = true; break; }
            if (ea.unsupported || eb.unsupported) return C_UN;
            if (isnan(va) || isnan(vb)) continue;
            if (isinf(va) || isinf(vb)) { if (va == vb) agree++; else if (isinf(va) != isinf(vb)) disagree++; continue; }
            if (close_rel(va, vb, 1e-7)) agree++;
            else disagree++;
        }
        if (!need_int) break;
        agree = disagree = 0;
    }
    if (disagree) return C_NE;
    return agree >= 3 ? C_EQ : C_UN;
}

static cres cmp_scalar(cmp *C, const node *a, unsigned ma, const node *b, unsigned mb) {
    bool pm = has_pm(a, 0) || has_pm(b, 0);
    if (!pm && struct_eq(a, b, 0)) return C_EQ;
    if (is_textual(a) && is_textual(b)) {
        char ka[256], kb[256];
        size_t la = text_key(a, ka, sizeof ka, 0), lb = text_key(b, kb, sizeof kb, 0);
        return la == lb && memcmp(ka, kb, la) == 0 ? C_EQ : C_NE;
    }
    bool ca = has_container(a, 0), cb = has_container(b, 0);
    if (ca || cb) return ca && cb ? C_UN : C_NE;
    if (gr_has_vars(a, 0) || gr_has_vars(b, 0)) return cmp_points(C, a, ma, b, mb);
    rat ra, rb;
    bool xa = !pm && gr_eval_rat(a, &ra, 0), xb = !pm && gr_eval_rat(b, &rb, 0);
    if (xa && xb) {
        if (ra.n == rb.n && ra.d == rb.d) return C_EQ;
        return rounded_match(a, (double)ra.n / ra.d, b, (double)rb.n / rb.d) ? C_UN : C_NE;
    }
    eval_ctx ea = {.seed = C->seed, .pm_mask = ma, .fuel = C->fuel};
    double va = gr_eval(a, &ea, 0);
    eval_ctx eb = {.seed = C->seed, .pm_mask = mb, .fuel = ea.fuel};
    double vb = gr_eval(b, &eb, 0);
    C->fuel = eb.fuel;
    if (ea.unsupported || eb.unsupported || ea.need_int || eb.need_int) return C_UN;
    if (isnan(va) || isnan(vb)) return C_UN;
    if (isinf(va) || isinf(vb)) { /* \infty against a number; overflowed values stay undecided */
        bool ia = a->kind == N_INF || (a->kind == N_NEG && a->kid[0]->kind == N_INF);
        bool ib = b->kind == N_INF || (b->kind == N_NEG && b->kid[0]->kind == N_INF);
        if (ia && ib) return va == vb ? C_EQ : C_NE;
        if ((ia && isfinite(vb)) || (ib && isfinite(va))) return C_NE;
        return C_UN;
    }
    if (close_rel(va, vb, 1e-9)) {
        /* beyond 2^53 a double cannot tell neighbouring integers apart */
        bool big = fmax(fabs(va), fabs(vb)) > 9007199254740992.0;
        return big && !(xa && xb) ? C_UN : C_EQ;
    }
    if (rounded_match(a, va, b, vb)) return C_UN; /* 0.577 for \frac{\sqrt3}{3}: the judge decides */
    return C_NE;
}

/* (al - ar) = c (bl - br) for a constant c (> 0 when positive): equations and inequalities
 * equivalent up to scaling (x^2/4 + y^2/3 = 1 and x^2/16 + y^2/12 = 1/4). */
static cres cmp_proportional(cmp *C, const node *al, const node *ar, unsigned ma, const node *bl, const node *br,
                             unsigned mb, bool positive) {
    if (has_container(al, 0) || has_container(ar, 0) || has_container(bl, 0) || has_container(br, 0)) return C_UN;
    double r0 = NAN;
    int agree = 0;
    for (int mode = 0; mode < 2; mode++) {
        bool need_int = false;
        agree = 0;
        r0 = NAN;
        for (int k = 0; k < 8; k++) {
            eval_ctx e = {.seed = C->seed + (uint64_t)k * 7919, .int_mode = mode == 1, .pm_mask = ma, .fuel = C->fuel};
            double x1 = gr_eval(al, &e, 0), x2 = gr_eval(ar, &e, 0);
            e.pm_mask = mb;
            double y1 = gr_eval(bl, &e, 0), y2 = gr_eval(br, &e, 0);
            C->fuel = e.fuel;
            if (C->fuel <= 0 || e.unsupported) return C_UN;
            if (e.need_int) { need_int = true; break; }
            if (!isfinite(x1) || !isfinite(x2) || !isfinite(y1) || !isfinite(y2)) continue;
            double d1 = x1 - x2, d2 = y1 - y2;
            bool z1 = fabs(d1) <= 1e-10 * fmax(1, fmax(fabs(x1), fabs(x2)));
            bool z2 = fabs(d2) <= 1e-10 * fmax(1, fmax(fabs(y1), fabs(y2)));
            if (z1 && z2) continue;
            if (z1 != z2) return C_NE;
            double r = d1 / d2;
            if (isnan(r0)) r0 = r;
            else if (!close_rel(r, r0, 1e-7)) return C_NE;
            agree++;
        }
        if (!need_int) break;
    }
    if (agree < 3) return C_UN;
    if (positive && r0 <= 0) return C_NE;
    return C_EQ;
}

/* ---------------------------------------------------------------- relations */
typedef struct chain { const node *kid[66]; uint8_t ops[65]; int n; } chain;

/* x > 5 -> 5 < x, so every chain reads with < and <= where it can. */
static void chain_of(const node *r, chain *c) {
    c->n = r->n > 66 ? 66 : r->n;
    bool all_gt = true;
    for (int i = 0; i + 1 < c->n; i++) all_gt &= r->ops[i] == R_GT || r->ops[i] == R_GE;
    for (int i = 0; i < c->n; i++) c->kid[i] = r->kid[all_gt ? c->n - 1 - i : i];
    for (int i = 0; i + 1 < c->n; i++) {
        uint8_t op = r->ops[all_gt ? c->n - 2 - i : i];
        if (all_gt) op = op == R_GT ? R_LT : R_LE;
        c->ops[i] = op;
    }
}

static cres combine_all(cres acc, cres r) { return acc == C_NE || r == C_NE ? C_NE : (acc == C_UN || r == C_UN) ? C_UN : C_EQ; }

static cres cmp_rel(cmp *C, const node *a, unsigned ma, const node *b, unsigned mb, int depth) {
    chain x, y;
    chain_of(a, &x), chain_of(b, &y);
    if (x.n != y.n) return C_NE;
    for (int i = 0; i + 1 < x.n; i++)
        if (x.ops[i] != y.ops[i]) return C_NE;
    if (x.n == 2) {
        int op = x.ops[0];
        if ((op == R_EQ || op == R_IN) && is_label(x.kid[0], 0) && is_label(y.kid[0], 0)) {
            cres l = cmp_value(C, x.kid[0], ma, y.kid[0], mb, depth + 1);
            if (l == C_EQ) return cmp_value(C, x.kid[1], ma, y.kid[1], mb, depth + 1);
        }
        if (op != R_IN) {
            cres r = cmp_proportional(C, x.kid[0], x.kid[1], ma, y.kid[0], y.kid[1], mb, op == R_LT || op == R_LE);
            if (r != C_UN) return r;
        }
    }
    cres acc = C_EQ;
    for (int i = 0; i < x.n && acc != C_NE; i++) acc = combine_all(acc, cmp_value(C, x.kid[i], ma, y.kid[i], mb, depth + 1));
    return acc;
}

/* "x = 5", "f(x) = 1", "x \in [-2,7]", "a = b = 5": the value after the labels, or NULL. */
static const node *rel_value(const node *r) {
    for (int i = 0; i + 1 < r->n; i++) {
        if (r->ops[i] != R_EQ && r->ops[i] != R_IN) return NULL;
        if (!is_label(r->kid[i], 0)) return NULL;
    }
    return r->kid[r->n - 1];
}

/* ---------------------------------------------------------------- containers */
typedef struct item { const node *e; unsigned mask; } item;

static cres cmp_sets(cmp *C, const item *a, int na, const item *b, int nb, int depth) {
    bool unsure = false;
    for (int side = 0; side < 2; side++) {
        const item *x = side ? b : a, *y = side ? a : b;
        int nx = side ? nb : na, ny = side ? na : nb;
        for (int i = 0; i < nx; i++) {
            bool found = false, un = false;
            for (int j = 0; j < ny && !found; j++) {
                cres r = side ? cmp_value(C, y[j].e, y[j].mask, x[i].e, x[i].mask, depth + 1)
                              : cmp_value(C, x[i].e, x[i].mask, y[j].e, y[j].mask, depth + 1);
                if (r == C_EQ) found = true;
                else if (r == C_UN) un = true;
                if (C->fuel <= 0) return C_UN;
            }
            if (!found && !un) return C_NE;
            if (!found) unsure = true;
        }
    }
    return unsure ? C_UN : C_EQ;
}

static cres cmp_kids_set(cmp *C, const node *a, unsigned ma, const node *b, unsigned mb, int depth) {
    if (a->n > GR_MAX_ITEMS || b->n > GR_MAX_ITEMS) return C_UN;
    item *x = malloc((size_t)(a->n + 1) * sizeof *x), *y = malloc((size_t)(b->n + 1) * sizeof *y);
    cres r = C_UN;
    if (x && y) {
        for (int i = 0; i < a->n; i++) x[i] = (item){a->kid[i], ma};
        for (int i = 0; i < b->n; i++) y[i] = (item){b->kid[i], mb};
        r = cmp_sets(C, x, a->n, y, b->n, depth);
    }
    free(x), free(y);
    return r;
}

static cres cmp_ordered(cmp *C, const node *a, unsigned ma, const node *b, unsigned mb, int depth) {
    if (a->n != b->n) return C_NE;
    cres acc = C_EQ;
    for (int i = 0; i < a->n && acc != C_NE; i++) acc = combine_all(acc, cmp_value(C, a->kid[i], ma, b->kid[i], mb, depth + 1));
    return acc;
}

static cres cmp_value(cmp *C, const node *a, unsigned ma, const node *b, unsigned mb, int depth) {
    if (depth > 64 || C->fuel <= 0) return C_UN;
    C->fuel -= 1;
    if (a->kind == N_REL && b->kind == N_REL) return cmp_rel(C, a, ma, b, mb, depth);
    if (a->kind == N_REL || b->kind == N_REL) {
        const node *r = a->kind == N_REL ? a : b, *o = a->kind == N_REL ? b : a;
        const node *v = rel_value(r);
        if (!v) return C_NE;
        return a->kind == N_REL ? cmp_value(C, v, ma, o, mb, depth + 1) : cmp_value(C, o, ma, v, mb, depth + 1);
    }
    if (is_container(a->kind) || is_container(b->kind)) {
        if (a->kind != b->kind) return struct_eq(a, b, 0) ? C_EQ : C_NE;
        switch (a->kind) {
        case N_SEQ:
            if (a->op != b->op || a->close != b->close) return C_NE;
            return cmp_ordered(C, a, ma, b, mb, depth);
        case N_MATRIX:
            if (a->rows != b->rows || a->cols != b->cols) return C_NE;
            return cmp_ordered(C, a, ma, b, mb, depth);
        case N_RATIO: return cmp_ordered(C, a, ma, b, mb, depth);
        case N_SET: case N_UNION: return cmp_kids_set(C, a, ma, b, mb, depth);
        default: return C_UN;
        }
    }
    return cmp_scalar(C, a, ma, b, mb);
}

/* ---------------------------------------------------------------- answers */
typedef struct items { item *v; int n, cap; } items;

static bool items_push(items *s, const node *e, unsigned mask) {
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 16;
        item *nv = realloc(s->v, (size_t)nc * sizeof *nv);
        if (!nv) return false;
        s->v = nv, s->cap = nc;
    }
    s->v[s->n++] = (item){e, mask};
    return true;
}

/* The list's items, each \pm-bearing item expanded into its sign choices (at most 2^4). */
static int expand(node *list, items *out) {
    for (int i = 0; i < list->n; i++) {
        int npm = 0;
        number_pm(list->kid[i], &npm, 0);
        if (npm > 4) npm = 4;
        for (unsigned m = 0; m < (1u << npm); m++)
            if (!items_push(out, list->kid[i], m)) return -1;
        if (out->n > GR_MAX_ITEMS * 4) return 1;
    }
    return 0;
}

/* A lone set {a, b} or a lone tuple (a, b) against a bare list of as many values. */
static void flatten(items *x, const items *y) {
    if (x->n != 1) return;
    const node *e = x->v[0].e;
    bool set = e->kind == N_SET;
    bool tuple = e->kind == N_SEQ && e->op == '(' && e->close == ')' && e->n >= 2 && y->n == e->n;
    if (tuple)
        for (int j = 0; j < y->n; j++)
            if (y->v[j].e->kind == N_SEQ) tuple = false;
    if (!set && !tuple) return;
    if (e->n == 0 || e->n > GR_MAX_ITEMS) return;
    unsigned m = x->v[0].mask;
    x->n = 0;
    for (int j = 0; j < e->n; j++) items_push(x, e->kid[j], m); /* cannot fail: cap >= 16... */
}

static cres cmp_answers(cmp *C, node *A, node *B, bool *oom) {
    items x = {0}, y = {0};
    cres r = C_UN;
    int ex = expand(A, &x);
    if (ex == 0) ex = expand(B, &y);
    if (ex) { *oom = ex < 0; goto done; }
    /* make room so flatten's pushes cannot fail */
    for (items *s = &x; s; s = s == &x ? &y : NULL) {
        const node *e = s->v[0].e;
        if (s->n == 1 && e->n > s->cap) {
            item *nv = realloc(s->v, (size_t)e->n * sizeof *nv);
            if (!nv) { *oom = true; goto done; }
            s->v = nv, s->cap = e->n;
        }
    }
    flatten(&x, &y);
    flatten(&y, &x);
    if (x.n == 1 && y.n == 1) r = cmp_value(C, x.v[0].e, x.v[0].mask, y.v[0].e, y.v[0].mask, 0);
    else r = cmp_sets(C, x.v, x.n, y.v, y.n, 0);
done:
    free(x.v), free(y.v);
    return r;
}

/* ---------------------------------------------------------------- strings */
static void trim(const char **s, size_t *n) {
    while (*n && isspace((unsigned char)**s)) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

static bool all_digits(const char *s, size_t n) {
    if (!n) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

static bool int_strings_equal(const char *a, size_t na, const char *b, size_t nb) {
    while (na > 1 && *a == '0') a++, na--;
    while (nb > 1 && *b == '0') b++, nb--;
    return na == nb && memcmp(a, b, na) == 0;
}

/* Compares the strings with whitespace, '$', "\!", "\,", "\left", "\right" removed and
 * letters lowercased, without allocating. */
static size_t squash_next(const char *s, size_t n, size_t *i) {
    while (*i < n) {
        unsigned char c = (unsigned char)s[*i];
        if (isspace(c) || c == '$') { (*i)++; continue; }
        if (c == '\\' && *i + 1 < n && (s[*i + 1] == '!' || s[*i + 1] == ',' || s[*i + 1] == ';' || s[*i + 1] == ' ')) { *i += 2; continue; }
        if (c == '\\' && *i + 5 <= n && !memcmp(s + *i, "\\left", 5)) { *i += 5; continue; }
        if (c == '\\' && *i + 6 <= n && !memcmp(s + *i, "\\right", 6)) { *i += 6; continue; }
        return (size_t)tolower(c) + 1;
    }
    return 0;
}

static bool squashed_equal(const char *a, size_t na, const char *b, size_t nb) {
    size_t i = 0, j = 0;
    for (;;) {
        size_t x = squash_next(a, na, &i), y = squash_next(b, nb, &j);
        if (x != y) return false;
        if (!x) return true;
        i++, j++;
    }
}

/* "C", "C.", "C)", "(C)", "C. x = 42", "C: ..." -> 'C'; 0 if pred does not open with a letter choice */
static char choice_letter(const char *s, size_t n) {
    size_t i = 0;
    bool paren = n > 0 && s[0] == '(';
    if (paren) i++;
    if (i >= n || s[i] < 'A' || s[i] > 'Z') return 0;
    char c = s[i++];
    if (i == n) return paren ? 0 : c;
    if (paren) return s[i] == ')' ? c : 0;
    return (s[i] == '.' || s[i] == ')' || s[i] == ':') ? c : 0;
}

static void set_result(grade_result *out, grade_verdict v, bool guess, const char *why) {
    out->verdict = v;
    out->equal = v == GRADE_EQUAL ? true : v == GRADE_NOT_EQUAL ? false : guess;
    out->reason = why;
}

int grade_equal_ex(const char *gold, size_t gold_len, const char *pred, size_t pred_len, const grade_opts *opts,
                   grade_result *out, s1c_err *err) {
    grade_opts o = opts ? *opts : (grade_opts){0};
    if (!gold) gold = "", gold_len = 0;
    if (!pred) pred = "", pred_len = 0;
    trim(&gold, &gold_len);
    trim(&pred, &pred_len);
    bool squashed = squashed_equal(gold, gold_len, pred, pred_len);
    if (!o.no_fast_path && gold_len == pred_len && memcmp(gold, pred, gold_len) == 0) {
        set_result(out, GRADE_EQUAL, true, "identical");
        return 0;
    }
    if (all_digits(gold, gold_len) && all_digits(pred, pred_len)) {
        set_result(out, int_strings_equal(gold, gold_len, pred, pred_len) ? GRADE_EQUAL : GRADE_NOT_EQUAL, false, "integers");
        return 0;
    }
    if (gold_len == 1 && gold[0] >= 'A' && gold[0] <= 'Z') {
        char c = choice_letter(pred, pred_len);
        if (c && (pred_len > 1 || c == gold[0])) {
            set_result(out, c == gold[0] ? GRADE_EQUAL : GRADE_NOT_EQUAL, false, "choice letter");
            return 0;
        }
    }
    if (gold_len > GR_MAX_INPUT || pred_len > GR_MAX_INPUT) {
        set_result(out, squashed ? GRADE_EQUAL : GRADE_UNSURE, squashed, "too long to parse: strings compared");
        return 0;
    }
    lexed lg = {0}, lp = {0};
    arena *a = gr_arena_new();
    if (!a) return s1c_fail(err, "grade: out of memory");
    int rc = -1;
    int lrg = gr_lex(gold, gold_len, &lg, err);
    int lrp = lrg < 0 ? -1 : gr_lex(pred, pred_len, &lp, err);
    if (lrg < 0 || lrp < 0) goto out;
    parsed pg = {0}, pp = {0};
    if (lrg == 0 && gr_parse(&lg, a, &pg, err)) goto out;
    if (lrp == 0 && gr_parse(&lp, a, &pp, err)) goto out;
    rc = 0;
    if (!pg.ok || !pp.ok) {
        set_result(out, squashed ? GRADE_EQUAL : GRADE_UNSURE, squashed, squashed ? "normalized strings" : "parse failed");
        goto out;
    }
    cmp C = {.seed = o.seed ? o.seed : 0x51c0ffee5eedULL, .fuel = GR_FUEL};
    bool oom = false;
    cres r = cmp_answers(&C, pg.root, pp.root, &oom);
    if (oom) { rc = s1c_fail(err, "grade: out of memory"); goto out; }
    if (r == C_EQ) set_result(out, GRADE_EQUAL, true, "equivalent");
    else if (r == C_NE) set_result(out, squashed ? GRADE_UNSURE : GRADE_NOT_EQUAL, squashed, squashed ? "strings agree, values do not" : "not equivalent");
    else set_result(out, GRADE_UNSURE, squashed, "undecided");
out:
    gr_lexed_free(&lg);
    gr_lexed_free(&lp);
    gr_arena_free(a);
    return rc;
}

int grade_equal(const char *gold, const char *pred, grade_verdict *out, s1c_err *err) {
    grade_result r;
    if (grade_equal_ex(gold, gold ? strlen(gold) : 0, pred, pred ? strlen(pred) : 0, NULL, &r, err)) return -1;
    *out = r.verdict;
    return 0;
}

const char *grade_verdict_name(grade_verdict v) {
    switch (v) {
    case GRADE_EQUAL: return "equal";
    case GRADE_NOT_EQUAL: return "not_equal";
    case GRADE_UNSURE: return "unsure";
    }
    return "?";
}
