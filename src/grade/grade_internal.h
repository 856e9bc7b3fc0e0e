/* Internals of the grade layer: tokens, the expression tree, evaluation.
 *
 *   lex.c      LaTeX answer text -> tokens (wrappers, spacing, \left/\right, $ dropped;
 *              thousands separators merged; \text words flagged)
 *   parse.c    tokens -> expression tree (recursive descent, explicit depth and size limits)
 *   eval.c     exact rationals (checked int64) and numeric evaluation at random points
 *   compare.c  answer lists, relations, labels, tuples, sets, matrices -> a verdict
 *   extract.c  answer extraction (independent of the rest) */
#ifndef S1C_GRADE_INTERNAL_H
#define S1C_GRADE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "s1c/grade.h"

/* Limits that bound time and memory on adversarial input. */
#define GR_MAX_INPUT (1u << 16)   /* longer answers are only compared as strings */
#define GR_MAX_TOKENS (1u << 15)
#define GR_MAX_NODES (1u << 16)
#define GR_MAX_DEPTH 200          /* parser recursion */
#define GR_MAX_ITEMS 512          /* list items per answer */
#define GR_FUEL 4000000           /* evaluation steps per comparison */

size_t gr_py_space(const unsigned char *s, size_t n);

/* ---------------------------------------------------------------- tokens */
typedef enum {
    T_END, T_NUM, T_SYM, T_WORD, T_OP, T_LP, T_RP, T_LB, T_RB, T_LBRACE, T_RBRACE, T_SETL, T_SETR,
    T_LANGLE, T_RANGLE, T_BAR, T_COMMA, T_SEMI, T_COLON, T_AMP, T_ROWSEP, T_REL, T_SEP, T_PERCENT,
    T_DEGREE, T_INF, T_PM, T_CUP, T_APPROX, T_FUNC, T_FRAC, T_SQRT, T_BINOM, T_BEGIN, T_ENDENV,
    T_SUM, T_PROD, T_LFLOOR, T_RFLOOR, T_LCEIL, T_RCEIL, T_ACCENT, T_EMPTYSET, T_CMD, T_DOTS,
} tok_kind;

/* relation ops */
enum { R_EQ, R_LT, R_LE, R_GT, R_GE, R_NE, R_IN };
/* functions */
enum { F_SIN, F_COS, F_TAN, F_COT, F_SEC, F_CSC, F_ASIN, F_ACOS, F_ATAN, F_SINH, F_COSH, F_TANH, F_LN, F_LOG,
       F_EXP, F_ABS, F_FLOOR, F_CEIL, F_SQRT, F_FACT, F_DET, F_GCD, F_LCM, F_MAX, F_MIN, F_ARG, F_NONE };

typedef struct token {
    uint8_t kind;
    uint8_t sub;        /* op char, relation, function id, env kind, ... */
    uint8_t space;      /* whitespace (real) before the token */
    uint8_t text;       /* inside \text{...}, \mbox{...}, \textbf{...} */
    uint32_t pos, len;  /* the token's bytes in the (normalized) source */
} token;

typedef struct lexed {
    token *t;
    int n;
    char *src;  /* the normalized source that pos/len point into (owned) */
    size_t src_len;
} lexed;

/* Returns 0, -1 on out of memory (err filled), 1 if the input is not lexable (too long). */
int gr_lex(const char *s, size_t n, lexed *out, s1c_err *err);
void gr_lexed_free(lexed *lx);

/* ---------------------------------------------------------------- tree */
typedef enum {
    N_NUM, N_SYM, N_WORD, N_INF, N_ADD, N_MUL, N_NEG, N_DIV, N_POW, N_FUNC, N_SUB, N_PRIME, N_PM,
    N_SUM, N_PROD, N_SEQ, N_SET, N_MATRIX, N_REL, N_UNION, N_RATIO, N_LIST, N_EMPTY, N_BINOM, N_ROOT,
} node_kind;

typedef struct node node;
struct node {
    uint8_t kind;
    uint8_t op;      /* N_FUNC: F_*, N_SEQ: open bracket char, N_PM: 1 = \mp */
    uint8_t close;   /* N_SEQ: close bracket char */
    uint8_t unit;    /* N_WORD / N_POW(word): a unit candidate (text or spaced word) */
    int n;           /* number of kids */
    node **kid;
    /* N_NUM */
    bool exact;      /* num/den valid */
    int64_t num, den;
    double val;
    int decimals;    /* digits after the decimal point as written (-1: integer literal) */
    /* N_SYM / N_WORD: name */
    const char *name;
    int name_len;
    /* N_MATRIX */
    int rows, cols;
    /* N_REL: kid[i] REL ops[i] kid[i+1] */
    uint8_t *ops;
    /* N_PM: index among the answer item's ± signs */
    int pm_index;
};

typedef struct arena arena;
arena *gr_arena_new(void);
void gr_arena_free(arena *a);
void *gr_alloc(arena *a, size_t n); /* zeroed; NULL on out of memory */

typedef struct parsed {
    node *root;     /* an N_LIST of items */
    bool ok;        /* false: not parseable (root NULL) */
    const char *why;
} parsed;

/* Parses a lexed answer. Returns -1 only on out of memory; a parse failure sets ok=false. */
int gr_parse(const lexed *lx, arena *a, parsed *out, s1c_err *err);

/* ---------------------------------------------------------------- evaluation */
typedef struct rat { int64_t n, d; } rat;

/* Exact rational value of a constant expression (false if not rational or too big). */
bool gr_eval_rat(const node *e, rat *out, int depth);

typedef struct eval_ctx {
    uint64_t seed;      /* per sample point */
    bool int_mode;      /* variables take small integer values (sums, factorials) */
    unsigned pm_mask;   /* sign choice for the item's ± signs */
    long fuel;
    bool need_int;      /* set when a construct needs integer variables */
    bool unsupported;   /* set when a construct cannot be evaluated */
    int nbound;
    const char *bound_name[8];
    int bound_len[8];
    double bound_val[8];
} eval_ctx;

double gr_eval(const node *e, eval_ctx *c, int depth);
bool gr_has_vars(const node *e, int depth);

#endif
