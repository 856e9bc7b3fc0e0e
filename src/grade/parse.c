/* Recursive-descent parser: tokens -> expression tree.
 *
 *   answer   := item ((',' | ';' | and | or) item)*
 *   item     := ratio ((relation | \approx) ratio)*      (\approx drops what follows it)
 *   ratio    := union (':' union)*
 *   union    := additive (\cup additive)*
 *   additive := term (('+' | '-' | \pm | \mp) term)*
 *   term     := unary (('*' | '/' | implicit) unary)*   (trailing unit words dropped;
 *                                                        918\frac{1}{2} is a mixed number)
 *   unary    := ('-' | '+' | \pm) unary | power
 *   power    := postfix ('^' exponent)?                 (^\circ and ^{th} dropped)
 *   postfix  := atom ('!' | "'" | '_' sub | % | degree)*   (a number's subscript is its base: dropped)
 *   atom     := number | symbol | word | \infty | (..) [..) {..} \{..\} \langle..\rangle | |..|
 *             | \frac a b | \sqrt[n] a | \binom a b | function arg | \sum_{k=a}^{b} term
 *             | \lfloor..\rfloor | \lceil..\rceil | \begin{?matrix}..\end{?matrix}
 * Recursion depth, token count and node count are bounded (GR_MAX_*). */
#include <stdlib.h>
#include <string.h>

#include "grade_internal.h"

/* ---------------------------------------------------------------- arena */
struct arena {
    struct arena_block *head;
};
struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

arena *gr_arena_new(void) { return calloc(1, sizeof(arena)); }

void gr_arena_free(arena *a) {
    if (!a) return;
    for (struct arena_block *b = a->head, *nx; b; b = nx) nx = b->next, free(b);
    free(a);
}

void *gr_alloc(arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    struct arena_block *b = a->head;
    if (!b || b->used + n > b->cap) {
        size_t cap = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = a->head, b->used = 0, b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

/* ---------------------------------------------------------------- parser state */
typedef struct P {
    token *t;
    const char *src;
    int i, n;
    arena *a;
    int depth, nodes, bar;
    bool oom, bad;
    const char *why;
} P;

static token *tk(P *p) { return &p->t[p->i]; }
static int kind(P *p) { return p->t[p->i].kind; }
static bool is_op(P *p, char c) { return kind(p) == T_OP && p->t[p->i].sub == (uint8_t)c; }

static node *fail(P *p, const char *why) {
    if (!p->bad) p->why = why;
    p->bad = true;
    return NULL;
}

static node *mk(P *p, int k, int nkids) {
    if (p->bad) return NULL;
    if (++p->nodes > (int)GR_MAX_NODES) return fail(p, "too many nodes");
    node *e = gr_alloc(p->a, sizeof *e);
    if (e && nkids) e->kid = gr_alloc(p->a, (size_t)nkids * sizeof(node *));
    if (!e || (nkids && !e->kid)) { p->oom = true; return fail(p, "out of memory"); }
    e->kind = (uint8_t)k;
    e->n = nkids;
    return e;
}

static node *mk1(P *p, int k, node *a) {
    if (!a) return NULL;
    node *e = mk(p, k, 1);
    if (e) e->kid[0] = a;
    return e;
}

static node *mk2(P *p, int k, node *a, node *b) {
    if (!a || !b) return NULL;
    node *e = mk(p, k, 2);
    if (e) e->kid[0] = a, e->kid[1] = b;
    return e;
}

/* A growable list of nodes (arena-backed copy at the end). */
typedef struct vec { node **v; int n, cap; } vec;
static bool vpush(P *p, vec *v, node *e) {
    if (!e) return false;
    if (v->n == v->cap) {
        int nc = v->cap ? v->cap * 2 : 8;
        node **nv = realloc(v->v, (size_t)nc * sizeof *nv);
        if (!nv) { p->oom = true; fail(p, "out of memory"); return false; }
        v->v = nv, v->cap = nc;
    }
    v->v[v->n++] = e;
    return true;
}
static node *vfinish(P *p, vec *v, int k) {
    node *e = v->n ? mk(p, k, v->n) : NULL;
    if (e) memcpy(e->kid, v->v, (size_t)v->n * sizeof(node *));
    free(v->v);
    *v = (vec){0};
    return e;
}

static node *mk_num_text(P *p, const char *s, size_t len) {
    node *e = mk(p, N_NUM, 0);
    if (!e) return NULL;
    char buf[400];
    size_t b = 0;
    int frac = -1, digits = 0;
    bool overflow = false;
    __int128 num = 0;
    for (size_t j = 0; j < len; j++) {
        char c = s[j];
        if (c == '.') { frac = 0; if (b < sizeof buf - 1) buf[b++] = c; continue; }
        if (c < '0' || c > '9') continue;
        if (b < sizeof buf - 1) buf[b++] = c;
        if (frac >= 0) frac++;
        if (digits || c != '0') digits++;
        if (digits > 19) overflow = true;
        else num = num * 10 + (c - '0');
    }
    buf[b] = 0;
    e->val = strtod(buf, NULL);
    e->decimals = frac;
    e->exact = !overflow && frac <= 18 && num <= INT64_MAX;
    if (e->exact) {
        int64_t den = 1;
        for (int j = 0; j < (frac > 0 ? frac : 0); j++) den *= 10;
        e->num = (int64_t)num, e->den = den;
    }
    return e;
}

static node *mk_name(P *p, int k, const token *t) {
    node *e = mk(p, k, 0);
    if (!e) return NULL;
    e->name = p->src + t->pos;
    e->name_len = (int)t->len;
    e->unit = k == N_WORD ? (t->text || t->space) : t->text;
    return e;
}

static node *parse_item(P *p);
static node *parse_additive(P *p);
static node *parse_term(P *p);
static node *parse_unary(P *p);
static node *parse_power(P *p);
static node *parse_atom(P *p);

static bool enter(P *p) {
    if (++p->depth > GR_MAX_DEPTH) { fail(p, "nesting too deep"); return false; }
    return true;
}
#define ENTER()              \
    do {                     \
        if (!enter(p)) return NULL; \
    } while (0)
#define LEAVE(x)             \
    do {                     \
        node *r_ = (x);      \
        p->depth--;          \
        return r_;           \
    } while (0)

static bool is_sep(int k) { return k == T_COMMA || k == T_SEMI || k == T_SEP; }

/* ---------------------------------------------------------------- groups and arguments */

/* '{' items '}': no item -> N_EMPTY, one -> itself, several -> a set. */
static node *parse_brace(P *p) {
    p->i++;
    vec v = {0};
    while (!p->bad) {
        while (is_sep(kind(p))) p->i++;
        if (kind(p) == T_RBRACE) { p->i++; break; }
        if (kind(p) == T_END) { free(v.v); return fail(p, "unbalanced {"); }
        node *it = parse_item(p);
        if (!it) break;
        if (it->kind != N_EMPTY) vpush(p, &v, it);
        if (!is_sep(kind(p)) && kind(p) != T_RBRACE) { free(v.v); return fail(p, "unexpected token in {}"); }
    }
    if (p->bad) { free(v.v); return NULL; }
    if (v.n == 0) { free(v.v); return mk(p, N_EMPTY, 0); }
    if (v.n == 1) { node *e = v.v[0]; free(v.v); return e; }
    return vfinish(p, &v, N_SET);
}

/* The argument of \frac, \sqrt, \binom, a script: a {group} or one token (\frac94 = 9/4). */
static node *parse_arg(P *p) {
    token *t = tk(p);
    if (t->kind == T_LBRACE) {
        node *e = parse_brace(p);
        if (e && e->kind == N_SET) return fail(p, "list as an argument");
        return e;
    }
    if (t->kind == T_NUM && t->len > 1) { /* one digit, the rest stays */
        node *e = mk_num_text(p, p->src + t->pos, 1);
        t->pos++, t->len--;
        return e;
    }
    if (t->kind == T_WORD && t->len > 1) { /* one letter */
        token one = *t;
        one.len = 1;
        node *e = mk_name(p, N_SYM, &one);
        t->pos++, t->len--;
        if (t->len == 1) t->kind = T_SYM;
        return e;
    }
    if (t->kind == T_OP && (t->sub == '-' || t->sub == '+')) return parse_unary(p);
    return parse_atom(p);
}

static int close_char(int k) { return k == T_RP ? ')' : k == T_RB ? ']' : k == T_RANGLE ? ')' : 0; }

/* ( [ \langle ... ) ] \rangle: one item -> grouping, several -> a tuple or interval. */
static node *parse_bracketed(P *p) {
    int open = kind(p) == T_LB ? '[' : '(';
    p->i++;
    vec v = {0};
    int close = 0;
    while (!p->bad) {
        if ((close = close_char(kind(p)))) { p->i++; break; }
        node *it = parse_item(p);
        if (!it) break;
        vpush(p, &v, it);
        if (kind(p) == T_COMMA || kind(p) == T_SEMI) { p->i++; continue; }
        if (close_char(kind(p))) continue;
        free(v.v);
        return fail(p, "unclosed bracket");
    }
    if (p->bad) { free(v.v); return NULL; }
    if (v.n == 1 && open == (close == ']' ? '[' : '(')) { node *e = v.v[0]; free(v.v); return e; }
    node *e = v.n ? vfinish(p, &v, N_SEQ) : mk(p, N_SEQ, 0);
    if (e) e->op = (uint8_t)open, e->close = (uint8_t)close;
    return e;
}

static node *parse_matrix(P *p) {
    int env_sub = tk(p)->sub;
    p->i++;
    if (env_sub == 0) return fail(p, "unsupported environment");
    vec cells = {0};
    int rows = 0, cols = -1, c = 0;
    while (!p->bad) {
        if (kind(p) == T_ENDENV) { p->i++; break; }
        if (kind(p) == T_END) { free(cells.v); return fail(p, "unterminated matrix"); }
        node *it = parse_item(p);
        if (!it) break;
        vpush(p, &cells, it);
        c++;
        if (kind(p) == T_AMP) { p->i++; continue; }
        if (kind(p) == T_ROWSEP || kind(p) == T_ENDENV) {
            if (cols < 0) cols = c;
            else if (cols != c) { free(cells.v); return fail(p, "ragged matrix"); }
            rows++, c = 0;
            if (kind(p) == T_ROWSEP) {
                p->i++;
                if (kind(p) == T_ENDENV) { p->i++; break; } /* trailing \\ */
            }
            continue;
        }
        free(cells.v);
        return fail(p, "unexpected token in matrix");
    }
    if (p->bad || cells.n == 0) { free(cells.v); return p->bad ? NULL : fail(p, "empty matrix"); }
    node *m = vfinish(p, &cells, N_MATRIX);
    if (m) m->rows = rows, m->cols = cols;
    return m;
}

/* \sum_{k=a}^{b} term */
static node *parse_sum(P *p) {
    int k = kind(p) == T_SUM ? N_SUM : N_PROD;
    p->i++;
    if (!is_op(p, '_')) return fail(p, "sum without bounds");
    p->i++;
    node *lo = parse_arg(p);
    if (!lo || lo->kind != N_REL || lo->n != 2 || lo->ops[0] != R_EQ || lo->kid[0]->kind != N_SYM)
        return fail(p, "sum without k=a");
    if (!is_op(p, '^')) return fail(p, "sum without upper bound");
    p->i++;
    node *hi = parse_arg(p);
    node *body = hi ? parse_term(p) : NULL;
    if (!body) return NULL;
    node *e = mk(p, k, 4);
    if (e) e->kid[0] = lo->kid[0], e->kid[1] = lo->kid[1], e->kid[2] = hi, e->kid[3] = body;
    return e;
}

static node *parse_function(P *p) {
    int f = tk(p)->sub;
    p->i++;
    node *base = NULL, *power = NULL;
    for (int round = 0; round < 2; round++) {
        if (is_op(p, '_') && !base) { p->i++; base = parse_arg(p); }
        else if (is_op(p, '^') && !power) { p->i++; power = parse_arg(p); }
    }
    if (p->bad) return NULL;
    vec args = {0};
    if (kind(p) == T_LP) {
        node *a = parse_bracketed(p);
        if (!a) return NULL;
        if (a->kind == N_SEQ && a->op == '(' && a->close == ')')
            for (int j = 0; j < a->n; j++) vpush(p, &args, a->kid[j]);
        else vpush(p, &args, a);
    } else {
        node *a = parse_power(p); /* \sin 2x: the juxtaposed factors up to the next function */
        if (!a) return NULL;
        vec fs = {0};
        vpush(p, &fs, a);
        for (;;) {
            int k = kind(p);
            if (!(k == T_NUM || k == T_SYM || k == T_WORD || k == T_CMD)) break;
            vpush(p, &fs, parse_power(p));
            if (p->bad) break;
        }
        if (p->bad) { free(fs.v); return NULL; }
        vpush(p, &args, fs.n == 1 ? (free(fs.v), a) : vfinish(p, &fs, N_MUL));
    }
    if (base) vpush(p, &args, base);
    node *e = vfinish(p, &args, N_FUNC);
    if (!e) return NULL;
    e->op = (uint8_t)f;
    if (base) e->close = 1; /* the last kid is a log base */
    return power ? mk2(p, N_POW, e, power) : e;
}

static node *parse_atom(P *p) {
    ENTER();
    token *t = tk(p);
    node *e = NULL;
    switch (t->kind) {
    case T_NUM: e = mk_num_text(p, p->src + t->pos, t->len); p->i++; break;
    case T_SYM: e = mk_name(p, N_SYM, t); p->i++; break;
    case T_WORD: e = mk_name(p, N_WORD, t); p->i++; break;
    case T_CMD: e = mk_name(p, N_SYM, t); if (e) e->op = t->sub; p->i++; break;
    case T_DOTS: e = mk_name(p, N_SYM, t); p->i++; break;
    case T_INF: e = mk(p, N_INF, 0); p->i++; break;
    case T_EMPTYSET: e = mk(p, N_SET, 0); p->i++; break;
    case T_LP: case T_LB: case T_LANGLE: e = parse_bracketed(p); break;
    case T_LBRACE: e = parse_brace(p); break;
    case T_SETL: {
        p->i++;
        vec v = {0};
        while (!p->bad && kind(p) != T_SETR) {
            if (is_sep(kind(p))) { p->i++; continue; }
            if (kind(p) == T_END) { free(v.v); LEAVE(fail(p, "unbalanced \\{")); }
            node *it = parse_item(p);
            if (!it) break;
            vpush(p, &v, it);
            if (!is_sep(kind(p)) && kind(p) != T_SETR) { free(v.v); LEAVE(fail(p, "unexpected token in set")); }
        }
        if (p->bad) { free(v.v); LEAVE(NULL); }
        p->i++;
        e = v.n ? vfinish(p, &v, N_SET) : mk(p, N_SET, 0);
        break;
    }
    case T_FRAC: {
        p->i++;
        node *a = parse_arg(p);
        node *b = a ? parse_arg(p) : NULL;
        e = mk2(p, N_DIV, a, b);
        if (e) e->op = 1; /* written as \frac (for mixed numbers) */
        break;
    }
    case T_SQRT: {
        p->i++;
        node *deg = NULL;
        if (kind(p) == T_LB) {
            p->i++;
            deg = parse_additive(p);
            if (!deg || kind(p) != T_RB) LEAVE(fail(p, "bad \\sqrt[n]"));
            p->i++;
        }
        node *a = parse_arg(p);
        if (deg) e = mk2(p, N_ROOT, deg, a);
        else if ((e = mk1(p, N_FUNC, a))) e->op = F_SQRT;
        break;
    }
    case T_BINOM: {
        p->i++;
        node *a = parse_arg(p);
        node *b = a ? parse_arg(p) : NULL;
        e = mk2(p, N_BINOM, a, b);
        break;
    }
    case T_FUNC: e = parse_function(p); break;
    case T_SUM: case T_PROD: e = parse_sum(p); break;
    case T_LFLOOR: case T_LCEIL: {
        int closer = t->kind == T_LFLOOR ? T_RFLOOR : T_RCEIL, f = t->kind == T_LFLOOR ? F_FLOOR : F_CEIL;
        p->i++;
        node *a = parse_additive(p);
        if (!a || kind(p) != closer) LEAVE(fail(p, "unclosed floor/ceil"));
        p->i++;
        if ((e = mk1(p, N_FUNC, a))) e->op = (uint8_t)f;
        break;
    }
    case T_BAR: {
        p->i++;
        p->bar++;
        node *a = parse_additive(p);
        p->bar--;
        if (!a || kind(p) != T_BAR) LEAVE(fail(p, "unclosed |"));
        p->i++;
        if ((e = mk1(p, N_FUNC, a))) e->op = F_ABS;
        break;
    }
    case T_BEGIN: e = parse_matrix(p); break;
    default: LEAVE(fail(p, "unexpected token"));
    }
    LEAVE(e);
}

static bool is_ordinal(const node *e) {
    if (!e || (e->kind != N_WORD) || e->name_len != 2) return false;
    const char *s = e->name;
    return !memcmp(s, "th", 2) || !memcmp(s, "st", 2) || !memcmp(s, "nd", 2) || !memcmp(s, "rd", 2);
}

static node *parse_postfix(P *p) {
    node *a = parse_atom(p);
    while (a && !p->bad) {
        if (is_op(p, '!')) { p->i++; if ((a = mk1(p, N_FUNC, a))) a->op = F_FACT; }
        else if (is_op(p, '\'')) { p->i++; a = mk1(p, N_PRIME, a); }
        else if (is_op(p, '_')) {
            p->i++;
            node *s = parse_arg(p);
            if (!s) return NULL;
            if (a->kind != N_NUM) a = mk2(p, N_SUB, a, s); /* 2516_8: the base is dropped */
        } else if (kind(p) == T_PERCENT || kind(p) == T_DEGREE) p->i++;
        else break;
    }
    return a;
}

static node *parse_power(P *p) {
    ENTER();
    node *base = parse_postfix(p);
    while (base && is_op(p, '^')) {
        p->i++;
        if (kind(p) == T_DEGREE) { p->i++; continue; }                       /* ^\circ */
        if (kind(p) == T_LBRACE && p->t[p->i + 1].kind == T_DEGREE && p->t[p->i + 2].kind == T_RBRACE) {
            p->i += 3; /* ^{\circ} */
            continue;
        }
        if (is_op(p, '\'')) { p->i++; base = mk1(p, N_PRIME, base); continue; }
        node *ex;
        if (kind(p) == T_OP && (tk(p)->sub == '-' || tk(p)->sub == '+')) ex = parse_unary(p);
        else ex = parse_arg(p);
        if (!ex) LEAVE(NULL);
        if (is_ordinal(ex) || ex->kind == N_EMPTY) continue; /* 12^{\mathrm{th}} */
        base = mk2(p, N_POW, base, ex);
    }
    LEAVE(base);
}

static node *parse_unary(P *p) {
    ENTER();
    if (is_op(p, '-')) { p->i++; LEAVE(mk1(p, N_NEG, parse_unary(p))); }
    if (is_op(p, '+')) { p->i++; LEAVE(parse_unary(p)); }
    if (kind(p) == T_PM) {
        int mp = tk(p)->sub;
        p->i++;
        node *e = mk1(p, N_PM, parse_unary(p));
        if (e) e->op = (uint8_t)mp;
        LEAVE(e);
    }
    LEAVE(parse_power(p));
}

static bool starts_implicit(P *p) {
    switch (kind(p)) {
    case T_NUM: case T_SYM: case T_WORD: case T_CMD: case T_FUNC: case T_FRAC: case T_SQRT: case T_BINOM:
    case T_LP: case T_LBRACE: case T_SUM: case T_PROD: case T_LFLOOR: case T_LCEIL: case T_INF: case T_BEGIN:
    case T_LANGLE:
        return true;
    case T_BAR: return p->bar == 0;
    default: return false;
    }
}

static bool is_unit(const node *e) {
    if (e->kind == N_WORD || e->kind == N_SYM) return e->unit;
    if (e->kind == N_POW) return is_unit(e->kid[0]);
    if (e->kind == N_MUL) {
        for (int i = 0; i < e->n; i++)
            if (!is_unit(e->kid[i])) return false;
        return true;
    }
    return false;
}

static node *parse_term(P *p) {
    ENTER();
    vec fs = {0};
    node *first = parse_unary(p);
    if (!first) LEAVE(NULL);
    if (first->kind != N_EMPTY) vpush(p, &fs, first);
    for (;;) {
        node *g;
        if (is_op(p, '*')) { p->i++; g = parse_unary(p); }
        else if (is_op(p, '/')) {
            p->i++;
            node *d = parse_unary(p);
            node *one = d ? mk(p, N_NUM, 0) : NULL;
            if (one) one->exact = true, one->num = 1, one->den = 1, one->val = 1, one->decimals = -1;
            g = mk2(p, N_DIV, one, d);
        } else if (starts_implicit(p)) {
            g = parse_power(p);
            /* 918\frac{1}{2}: an integer directly followed by a numeric \frac is a mixed number */
            node *last = fs.n ? fs.v[fs.n - 1] : NULL;
            if (g && last && g->kind == N_DIV && g->op == 1 && last->kind == N_NUM && last->decimals < 0 &&
                g->kid[0]->kind == N_NUM && g->kid[1]->kind == N_NUM) {
                node *s = mk2(p, N_ADD, last, g);
                if (s) fs.v[fs.n - 1] = s;
                continue;
            }
        } else break;
        if (!g) { free(fs.v); LEAVE(NULL); }
        if (g->kind != N_EMPTY) vpush(p, &fs, g);
    }
    if (p->bad) { free(fs.v); LEAVE(NULL); }
    /* units: trailing unit words after something that is not one ("125 miles", "15\mbox{ cm}^2") */
    int keep = fs.n;
    while (keep > 0 && is_unit(fs.v[keep - 1])) keep--;
    if (keep > 0) fs.n = keep;
    if (fs.n == 0) { free(fs.v); LEAVE(mk(p, N_EMPTY, 0)); }
    if (fs.n == 1) { node *e = fs.v[0]; free(fs.v); LEAVE(e); }
    LEAVE(vfinish(p, &fs, N_MUL));
}

static node *parse_additive(P *p) {
    ENTER();
    vec ts = {0};
    node *first = parse_term(p);
    if (!first) LEAVE(NULL);
    vpush(p, &ts, first);
    for (;;) {
        node *g;
        if (is_op(p, '+')) { p->i++; g = parse_term(p); }
        else if (is_op(p, '-')) { p->i++; g = mk1(p, N_NEG, parse_term(p)); }
        else if (kind(p) == T_PM) {
            int mp = tk(p)->sub;
            p->i++;
            if ((g = mk1(p, N_PM, parse_term(p)))) g->op = (uint8_t)mp;
        } else break;
        if (!g) { free(ts.v); LEAVE(NULL); }
        vpush(p, &ts, g);
    }
    if (p->bad) { free(ts.v); LEAVE(NULL); }
    /* drop empty terms ("x + {}") */
    int m = 0;
    for (int j = 0; j < ts.n; j++)
        if (ts.v[j]->kind != N_EMPTY) ts.v[m++] = ts.v[j];
    ts.n = m;
    if (ts.n == 0) { free(ts.v); LEAVE(mk(p, N_EMPTY, 0)); }
    if (ts.n == 1) { node *e = ts.v[0]; free(ts.v); LEAVE(e); }
    LEAVE(vfinish(p, &ts, N_ADD));
}

static node *parse_union(P *p) {
    ENTER();
    node *a = parse_additive(p);
    if (!a || kind(p) != T_CUP) LEAVE(a);
    vec v = {0};
    vpush(p, &v, a);
    while (kind(p) == T_CUP && !p->bad) { p->i++; vpush(p, &v, parse_additive(p)); }
    if (p->bad) { free(v.v); LEAVE(NULL); }
    LEAVE(vfinish(p, &v, N_UNION));
}

static node *parse_ratio(P *p) {
    ENTER();
    node *a = parse_union(p);
    if (!a || kind(p) != T_COLON) LEAVE(a);
    vec v = {0};
    vpush(p, &v, a);
    while (kind(p) == T_COLON && !p->bad) { p->i++; vpush(p, &v, parse_union(p)); }
    if (p->bad) { free(v.v); LEAVE(NULL); }
    LEAVE(vfinish(p, &v, N_RATIO));
}

static bool ends_item(int k) {
    return is_sep(k) || k == T_END || k == T_RP || k == T_RB || k == T_RBRACE || k == T_SETR || k == T_AMP ||
           k == T_ROWSEP || k == T_ENDENV || k == T_RANGLE;
}

static node *parse_item(P *p) {
    ENTER();
    if (kind(p) == T_APPROX || (kind(p) == T_REL && tk(p)->sub == R_EQ)) p->i++; /* "\approx 0.5", "= 5" */
    if (ends_item(kind(p))) LEAVE(mk(p, N_EMPTY, 0));
    node *first = parse_ratio(p);
    if (!first) LEAVE(NULL);
    vec v = {0};
    uint8_t ops[64];
    int nops = 0;
    vpush(p, &v, first);
    while (!p->bad && (kind(p) == T_REL || kind(p) == T_APPROX)) {
        bool approx = kind(p) == T_APPROX;
        uint8_t op = tk(p)->sub;
        p->i++;
        if (ends_item(kind(p))) break; /* "5 in" (inches): a dangling relation */
        node *r = parse_ratio(p);
        if (!r) break;
        if (approx) continue;
        if (nops == 64) { free(v.v); LEAVE(fail(p, "relation chain too long")); }
        ops[nops++] = op;
        vpush(p, &v, r);
    }
    if (p->bad) { free(v.v); LEAVE(NULL); }
    if (v.n == 1) { free(v.v); LEAVE(first); }
    node *e = vfinish(p, &v, N_REL);
    if (e) {
        e->ops = gr_alloc(p->a, (size_t)nops);
        if (!e->ops) { p->oom = true; LEAVE(fail(p, "out of memory")); }
        memcpy(e->ops, ops, (size_t)nops);
    }
    LEAVE(e);
}

int gr_parse(const lexed *lx, arena *a, parsed *out, s1c_err *err) {
    P p = {.t = lx->t, .src = lx->src, .n = lx->n, .a = a};
    *out = (parsed){0};
    vec items = {0};
    while (!p.bad) {
        while (is_sep(kind(&p))) p.i++;
        if (kind(&p) == T_END) break;
        node *it = parse_item(&p);
        if (!it) break;
        if (it->kind != N_EMPTY) {
            if (items.n >= GR_MAX_ITEMS) { fail(&p, "too many items"); break; }
            vpush(&p, &items, it);
        }
        if (!is_sep(kind(&p)) && kind(&p) != T_END) { fail(&p, "unexpected token"); break; }
    }
    if (p.oom) { free(items.v); return s1c_fail(err, "grade: out of memory"); }
    if (p.bad || items.n == 0) {
        free(items.v);
        out->why = p.bad ? p.why : "empty answer";
        return 0;
    }
    out->root = vfinish(&p, &items, N_LIST);
    if (p.oom || !out->root) return s1c_fail(err, "grade: out of memory");
    out->ok = true;
    return 0;
}
