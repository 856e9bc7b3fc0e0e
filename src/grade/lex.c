/* Tokenizer for LaTeX math answers. What it drops: `$`, `\$`, `\(` `\)` `\[` `\]`,
 * `\left`/`\right`/`\big...` (and `\left.`), spacing (`\!` `\,` `\;` `\quad` `~`),
 * `\displaystyle`, font and accent wrappers (`\mathrm`, `\mathbf`, `\overline`, ...; their
 * braces stay as grouping). `\text{}`-like wrappers are transparent too, but the tokens inside
 * are flagged so the parser can treat trailing words as units. `\\frac` (a doubled backslash
 * before a known command, as in escaped JSON) reads as `\frac`. Thousands separators
 * (`1,000`, `11,\! 111`, `14{,}916`) merge into one number outside brackets. */
#include <stdlib.h>
#include <string.h>

#include "grade_internal.h"

enum { C_SKIP = 100, C_SPACE, C_TEXT, C_WRAP, C_LEFT };

typedef struct cmd { const char *name; uint8_t kind, sub; } cmd;

static const cmd commands[] = {
    {"frac", T_FRAC, 0}, {"dfrac", T_FRAC, 0}, {"tfrac", T_FRAC, 0}, {"cfrac", T_FRAC, 0},
    {"sqrt", T_SQRT, 0}, {"binom", T_BINOM, 0}, {"dbinom", T_BINOM, 0}, {"tbinom", T_BINOM, 0},
    {"text", C_TEXT, 0}, {"textbf", C_TEXT, 0}, {"textit", C_TEXT, 0}, {"textnormal", C_TEXT, 0},
    {"textrm", C_TEXT, 0}, {"textsf", C_TEXT, 0}, {"texttt", C_TEXT, 0}, {"mbox", C_TEXT, 0},
    {"mathrm", C_TEXT, 0}, {"textup", C_TEXT, 0}, {"emph", C_TEXT, 0}, {"rm", C_SKIP, 0},
    {"mathbf", C_WRAP, 0}, {"mathit", C_WRAP, 0}, {"mathsf", C_WRAP, 0}, {"boldsymbol", C_WRAP, 0},
    {"bm", C_WRAP, 0}, {"mathbb", C_WRAP, 0}, {"mathcal", C_WRAP, 0}, {"operatorname", C_WRAP, 0},
    {"overline", C_WRAP, 0}, {"overrightarrow", C_WRAP, 0}, {"vec", C_WRAP, 0}, {"hat", C_WRAP, 0},
    {"bar", C_WRAP, 0}, {"widehat", C_WRAP, 0}, {"tilde", C_WRAP, 0}, {"underline", C_WRAP, 0},
    {"overarc", C_WRAP, 0}, {"boxed", C_WRAP, 0}, {"fbox", C_WRAP, 0}, {"mathnormal", C_WRAP, 0},
    {"left", C_LEFT, 0}, {"right", C_LEFT, 0}, {"big", C_LEFT, 0}, {"Big", C_LEFT, 0}, {"bigl", C_LEFT, 0},
    {"bigr", C_LEFT, 0}, {"Bigl", C_LEFT, 0}, {"Bigr", C_LEFT, 0}, {"bigg", C_LEFT, 0}, {"Bigg", C_LEFT, 0},
    {"biggl", C_LEFT, 0}, {"biggr", C_LEFT, 0}, {"Biggl", C_LEFT, 0}, {"Biggr", C_LEFT, 0}, {"middle", C_LEFT, 0},
    {"displaystyle", C_SKIP, 0}, {"textstyle", C_SKIP, 0}, {"limits", C_SKIP, 0}, {"nolimits", C_SKIP, 0},
    {"quad", C_SPACE, 0}, {"qquad", C_SPACE, 0}, {"hspace", C_SKIP, 0}, {"phantom", C_SKIP, 0}, {"not", C_SKIP, 0},
    {"cdot", T_OP, '*'}, {"times", T_OP, '*'}, {"ast", T_OP, '*'}, {"div", T_OP, '/'}, {"prime", T_OP, '\''},
    {"pm", T_PM, 0}, {"mp", T_PM, 1},
    {"le", T_REL, R_LE}, {"leq", T_REL, R_LE}, {"leqslant", T_REL, R_LE}, {"ge", T_REL, R_GE},
    {"geq", T_REL, R_GE}, {"geqslant", T_REL, R_GE}, {"ne", T_REL, R_NE}, {"neq", T_REL, R_NE},
    {"lt", T_REL, R_LT}, {"gt", T_REL, R_GT}, {"in", T_REL, R_IN}, {"equiv", T_REL, R_EQ},
    {"approx", T_APPROX, 0}, {"simeq", T_APPROX, 0}, {"sim", T_APPROX, 0}, {"thickapprox", T_APPROX, 0},
    {"infty", T_INF, 0}, {"cup", T_CUP, 0}, {"circ", T_DEGREE, 0}, {"degree", T_DEGREE, 0},
    {"sin", T_FUNC, F_SIN}, {"cos", T_FUNC, F_COS}, {"tan", T_FUNC, F_TAN}, {"cot", T_FUNC, F_COT},
    {"sec", T_FUNC, F_SEC}, {"csc", T_FUNC, F_CSC}, {"arcsin", T_FUNC, F_ASIN}, {"arccos", T_FUNC, F_ACOS},
    {"arctan", T_FUNC, F_ATAN}, {"sinh", T_FUNC, F_SINH}, {"cosh", T_FUNC, F_COSH}, {"tanh", T_FUNC, F_TANH},
    {"ln", T_FUNC, F_LN}, {"log", T_FUNC, F_LOG}, {"exp", T_FUNC, F_EXP}, {"det", T_FUNC, F_DET},
    {"gcd", T_FUNC, F_GCD}, {"lcm", T_FUNC, F_LCM}, {"max", T_FUNC, F_MAX}, {"min", T_FUNC, F_MIN},
    {"arg", T_FUNC, F_ARG},
    {"sum", T_SUM, 0}, {"prod", T_PROD, 0}, {"lfloor", T_LFLOOR, 0}, {"rfloor", T_RFLOOR, 0},
    {"lceil", T_LCEIL, 0}, {"rceil", T_RCEIL, 0}, {"langle", T_LANGLE, 0}, {"rangle", T_RANGLE, 0},
    {"vert", T_BAR, 0}, {"lvert", T_BAR, 0}, {"rvert", T_BAR, 0}, {"emptyset", T_EMPTYSET, 0},
    {"varnothing", T_EMPTYSET, 0}, {"ldots", T_DOTS, 0}, {"cdots", T_DOTS, 0}, {"dots", T_DOTS, 0},
    {"begin", T_BEGIN, 0}, {"end", T_ENDENV, 0},
    /* plain symbols (known so that "\\pi" collapses to "\pi") */
    {"pi", T_CMD, 0}, {"alpha", T_CMD, 0}, {"beta", T_CMD, 0}, {"gamma", T_CMD, 0}, {"delta", T_CMD, 0},
    {"theta", T_CMD, 0}, {"lambda", T_CMD, 0}, {"mu", T_CMD, 0}, {"sigma", T_CMD, 0}, {"phi", T_CMD, 0},
    {"omega", T_CMD, 0}, {"epsilon", T_CMD, 0}, {"varepsilon", T_CMD, 0}, {"rho", T_CMD, 0}, {"tau", T_CMD, 0},
    {"angle", T_CMD, 0}, {"triangle", T_CMD, 0}, {"Delta", T_CMD, 0}, {"Omega", T_CMD, 0}, {"ell", T_CMD, 0},
};

static const cmd *find_cmd(const char *s, size_t n) {
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strlen(commands[i].name) == n && memcmp(commands[i].name, s, n) == 0) return &commands[i];
    return NULL;
}

static bool is_alpha(unsigned c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(unsigned c) { return c >= '0' && c <= '9'; }

static bool word_is(const char *s, size_t n, const char *w) {
    if (strlen(w) != n) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') c += 32;
        if (c != (unsigned char)w[i]) return false;
    }
    return true;
}

/* A few Unicode math characters; returns the byte length consumed, 0 if none. */
static size_t unicode_symbol(const unsigned char *s, size_t n, uint8_t *kind, uint8_t *sub) {
    static const struct { const char *u; uint8_t kind, sub; } map[] = {
        {"\xCF\x80", T_CMD, 1}, {"\xC3\x97", T_OP, '*'}, {"\xC2\xB7", T_OP, '*'}, {"\xE2\x8B\x85", T_OP, '*'},
        {"\xE2\x88\x92", T_OP, '-'}, {"\xE2\x89\xA4", T_REL, R_LE}, {"\xE2\x89\xA5", T_REL, R_GE},
        {"\xE2\x89\xA0", T_REL, R_NE}, {"\xC2\xB0", T_DEGREE, 0}, {"\xE2\x88\x9E", T_INF, 0},
        {"\xE2\x88\x9A", T_SQRT, 0}, {"\xC2\xB1", T_PM, 0}, {"\xC3\xB7", T_OP, '/'}, {"\xE2\x88\xAA", T_CUP, 0},
        {"\xE2\x89\x88", T_APPROX, 0}, {"\xE2\x82\xAC", C_SKIP, 0}, {"\xC2\xA3", C_SKIP, 0},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t l = strlen(map[i].u);
        if (l <= n && memcmp(s, map[i].u, l) == 0) { *kind = map[i].kind; *sub = map[i].sub; return l; }
    }
    return 0;
}

typedef struct lexer {
    const char *s;
    size_t n, i;
    lexed *out;
    int cap;
    bool space;
    int bracket;          /* ( [ \{ \langle depth, for thousands separators */
    int brace;            /* { depth */
    int text_open[64];    /* brace depths at which a \text group opened */
    int ntext;
    bool pending_text;    /* a \text command waits for its '{' */
    bool script;          /* the previous token was ^ or _ */
} lexer;

static int emit(lexer *L, uint8_t kind, uint8_t sub, size_t pos, size_t len) {
    if (L->out->n >= (int)GR_MAX_TOKENS - (kind == T_END ? 0 : 1)) return 1; /* room for T_END */
    if (L->out->n == L->cap) {
        int nc = L->cap ? L->cap * 2 : 64;
        token *t = realloc(L->out->t, (size_t)nc * sizeof *t);
        if (!t) return -1;
        L->out->t = t, L->cap = nc;
    }
    bool text = L->ntext > 0 || L->pending_text;
    L->out->t[L->out->n++] = (token){kind, sub, L->space, text, (uint32_t)pos, (uint32_t)len};
    L->space = false;
    L->script = kind == T_OP && (sub == '^' || sub == '_');
    if (kind != T_LBRACE) L->pending_text = false;
    return 0;
}

/* "," ["\!"] [spaces if "\!" was seen] or "{,}" then exactly three digits. Returns the index
 * of the digits or 0. */
static size_t thousands_group(const lexer *L, size_t j) {
    const char *s = L->s;
    size_t n = L->n, k;
    bool thin = false;
    if (j + 2 < n && s[j] == '{' && s[j + 1] == ',' && s[j + 2] == '}') k = j + 3, thin = true;
    else if (j < n && s[j] == ',') k = j + 1;
    else return 0;
    if (k + 1 < n && s[k] == '\\' && s[k + 1] == '!') k += 2, thin = true;
    while (thin && k < n && s[k] == ' ') k++;
    if (k + 3 > n || !is_digit((unsigned char)s[k]) || !is_digit((unsigned char)s[k + 1]) || !is_digit((unsigned char)s[k + 2]))
        return 0;
    if (k + 3 < n && is_digit((unsigned char)s[k + 3])) return 0;
    return k;
}

static int lex_number(lexer *L) {
    const char *s = L->s;
    size_t start = L->i, j = L->i;
    if (L->script) { /* x^23 is x^2 times 3 */
        L->i++;
        return emit(L, T_NUM, 0, start, 1);
    }
    while (j < L->n && is_digit((unsigned char)s[j])) j++;
    size_t nd = j - start;
    if (L->bracket == 0 && nd >= 1 && nd <= 3 && s[start] != '0') {
        size_t k;
        while ((k = thousands_group(L, j))) j = k + 3;
    }
    if (j + 1 < L->n && s[j] == '.' && is_digit((unsigned char)s[j + 1])) {
        j++;
        while (j < L->n && is_digit((unsigned char)s[j])) j++;
    }
    L->i = j;
    return emit(L, T_NUM, 0, start, j - start);
}

static int lex_word(lexer *L) {
    const char *s = L->s;
    size_t start = L->i, j = L->i;
    if (L->script) { L->i++; return emit(L, T_SYM, 0, start, 1); }
    while (j < L->n) {
        unsigned c = (unsigned char)s[j];
        uint8_t k, sub;
        if (is_alpha(c)) { j++; continue; }
        if (c >= 0x80 && !unicode_symbol((const unsigned char *)s + j, L->n - j, &k, &sub)) { j++; continue; }
        break;
    }
    size_t n = j - start;
    L->i = j;
    if (n == 1 && is_alpha((unsigned char)s[start])) return emit(L, T_SYM, 0, start, 1);
    const char *w = s + start;
    if (word_is(w, n, "and") || word_is(w, n, "or")) return emit(L, T_SEP, 0, start, n);
    if (word_is(w, n, "in")) return emit(L, T_REL, R_IN, start, n);
    if (word_is(w, n, "percent") || word_is(w, n, "percentage") || word_is(w, n, "pct")) return emit(L, T_PERCENT, 0, start, n);
    if (word_is(w, n, "degrees") || word_is(w, n, "degree")) return emit(L, T_DEGREE, 0, start, n);
    static const struct { const char *w; uint8_t f; } fn[] = {
        {"sin", F_SIN}, {"cos", F_COS}, {"tan", F_TAN}, {"ln", F_LN}, {"log", F_LOG}, {"exp", F_EXP}, {"sqrt", F_SQRT}};
    for (size_t i = 0; i < sizeof fn / sizeof fn[0]; i++)
        if (word_is(w, n, fn[i].w)) return fn[i].f == F_SQRT ? emit(L, T_SQRT, 0, start, n) : emit(L, T_FUNC, fn[i].f, start, n);
    return emit(L, T_WORD, 0, start, n);
}

/* Skips "{...}" (balanced) at L->i if present: the column spec of \begin{array}. */
static void skip_group(lexer *L) {
    size_t j = L->i;
    while (j < L->n && L->s[j] == ' ') j++;
    if (j >= L->n || L->s[j] != '{') return;
    int d = 0;
    for (; j < L->n; j++) {
        if (L->s[j] == '{') d++;
        else if (L->s[j] == '}' && --d == 0) { L->i = j + 1; return; }
    }
}

static int lex_env(lexer *L, bool begin, size_t start) {
    /* \begin{name} / \end{name}: sub 1 = matrix-like, 2 = array, 0 = other */
    size_t j = L->i;
    while (j < L->n && L->s[j] == ' ') j++;
    uint8_t sub = 0;
    if (j < L->n && L->s[j] == '{') {
        const char *name = L->s + j + 1;
        const char *close = memchr(name, '}', L->n - j - 1);
        if (close) {
            size_t nl = (size_t)(close - name);
            if (nl >= 6 && memcmp(name + nl - 6, "matrix", 6) == 0) sub = 1;
            else if (nl == 5 && memcmp(name, "array", 5) == 0) sub = 2;
            L->i = (size_t)(close - L->s) + 1;
        }
    }
    int rc = emit(L, begin ? T_BEGIN : T_ENDENV, sub, start, L->i - start);
    if (begin && sub == 2) skip_group(L);
    return rc;
}

static int lex_command(lexer *L) {
    const char *s = L->s;
    size_t start = L->i, j = L->i + 1;
    if (j >= L->n) { L->i = j; return 0; }
    unsigned c = (unsigned char)s[j];
    if (c == '\\') {
        /* "\\name": a known command written with a doubled backslash, else a row break */
        size_t k = j + 1;
        while (k < L->n && is_alpha((unsigned char)s[k])) k++;
        if (k > j + 1 && find_cmd(s + j + 1, k - j - 1)) { L->i = j; return 0; /* relex from the 2nd '\' */ }
        L->i = j + 1;
        return emit(L, T_ROWSEP, 0, start, 2);
    }
    if (!is_alpha(c)) {
        L->i = j + 1;
        switch (c) {
        case '%': return emit(L, T_PERCENT, 0, start, 2);
        case '{': L->bracket++; return emit(L, T_SETL, 0, start, 2);
        case '}': if (L->bracket) L->bracket--; return emit(L, T_SETR, 0, start, 2);
        case '|': return emit(L, T_BAR, 0, start, 2);
        case '!': case ',': case ';': case ':': case ' ': case '>': L->space = true; return 0;
        default: return 0; /* \$ \( \) \[ \] \# \& \_ ... */
        }
    }
    size_t k = j;
    while (k < L->n && is_alpha((unsigned char)s[k])) k++;
    const cmd *cm = find_cmd(s + j, k - j);
    if (!cm) { /* "\quadx": the longest known prefix */
        for (size_t m = k - j - 1; m >= 2 && !cm; m--)
            if ((cm = find_cmd(s + j, m))) k = j + m;
    }
    L->i = k;
    if (!cm) return emit(L, T_CMD, 0, start, k - start);
    switch (cm->kind) {
    case C_SKIP: return 0;
    case C_SPACE: L->space = true; return 0;
    case C_WRAP: return 0;
    case C_TEXT: L->pending_text = true; return 0;
    case C_LEFT:
        while (L->i < L->n && L->s[L->i] == ' ') L->i++;
        if (L->i < L->n && L->s[L->i] == '.') L->i++; /* \left. */
        return 0;
    case T_BEGIN: return lex_env(L, true, start);
    case T_ENDENV: return lex_env(L, false, start);
    case T_LANGLE: L->bracket++; break;
    case T_RANGLE: if (L->bracket) L->bracket--; break;
    default: break;
    }
    return emit(L, cm->kind, cm->sub, start, k - start);
}

int gr_lex(const char *s, size_t n, lexed *out, s1c_err *err) {
    *out = (lexed){0};
    if (n > GR_MAX_INPUT) return 1;
    out->src = malloc(n + 1);
    if (!out->src) return s1c_fail(err, "grade: out of memory");
    memcpy(out->src, s, n);
    out->src[n] = 0;
    out->src_len = n;
    lexer L = {.s = out->src, .n = n, .out = out};
    int rc = 0;
    while (L.i < L.n && rc == 0) {
        unsigned c = (unsigned char)L.s[L.i];
        size_t at = L.i;
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '~') { L.space = true; L.i++; continue; }
        if (is_digit(c) || (c == '.' && L.i + 1 < L.n && is_digit((unsigned char)L.s[L.i + 1]))) { rc = lex_number(&L); continue; }
        if (c == '\\') { rc = lex_command(&L); continue; }
        if (c >= 0x80) {
            uint8_t kind, sub;
            size_t l = unicode_symbol((const unsigned char *)L.s + L.i, L.n - L.i, &kind, &sub);
            if (l) {
                L.i += l;
                if (kind != C_SKIP) rc = emit(&L, kind, sub, at, l);
                continue;
            }
            rc = lex_word(&L);
            continue;
        }
        if (is_alpha(c)) { rc = lex_word(&L); continue; }
        L.i++;
        char nx = L.i < L.n ? L.s[L.i] : 0;
        switch (c) {
        case '+': case '-': case '*': case '/': case '^': case '_': case '\'':
            rc = emit(&L, T_OP, (uint8_t)c, at, 1); break;
        case '!':
            if (nx == '=') { L.i++; rc = emit(&L, T_REL, R_NE, at, 2); }
            else rc = emit(&L, T_OP, '!', at, 1);
            break;
        case '=': if (nx == '=') L.i++; rc = emit(&L, T_REL, R_EQ, at, L.i - at); break;
        case '<':
            if (nx == '=') { L.i++; rc = emit(&L, T_REL, R_LE, at, 2); }
            else if (nx == '>') { L.i++; rc = emit(&L, T_REL, R_NE, at, 2); }
            else rc = emit(&L, T_REL, R_LT, at, 1);
            break;
        case '>':
            if (nx == '=') { L.i++; rc = emit(&L, T_REL, R_GE, at, 2); }
            else rc = emit(&L, T_REL, R_GT, at, 1);
            break;
        case '(': L.bracket++; rc = emit(&L, T_LP, 0, at, 1); break;
        case ')': if (L.bracket) L.bracket--; rc = emit(&L, T_RP, 0, at, 1); break;
        case '[': L.bracket++; rc = emit(&L, T_LB, 0, at, 1); break;
        case ']': if (L.bracket) L.bracket--; rc = emit(&L, T_RB, 0, at, 1); break;
        case '{':
            if (L.pending_text && L.ntext < 64) L.text_open[L.ntext++] = L.brace;
            L.pending_text = false;
            L.brace++;
            rc = emit(&L, T_LBRACE, 0, at, 1);
            break;
        case '}': {
            if (L.brace) L.brace--;
            bool closes_text = L.ntext && L.text_open[L.ntext - 1] == L.brace;
            if (closes_text) L.ntext--;
            token *t = L.out->t;
            int k = L.out->n;
            /* \text{ and }, \text{ percent }: the connective itself, without the group */
            if (closes_text && k >= 2 && t[k - 2].kind == T_LBRACE &&
                (t[k - 1].kind == T_SEP || t[k - 1].kind == T_PERCENT || t[k - 1].kind == T_DEGREE || t[k - 1].kind == T_REL)) {
                t[k - 2] = t[k - 1];
                L.out->n--;
                break;
            }
            rc = emit(&L, T_RBRACE, 0, at, 1);
            break;
        }
        case '|': rc = emit(&L, T_BAR, 0, at, 1); break;
        case ',': rc = emit(&L, T_COMMA, 0, at, 1); break;
        case ';': rc = emit(&L, T_SEMI, 0, at, 1); break;
        case ':': rc = emit(&L, T_COLON, 0, at, 1); break;
        case '&': rc = emit(&L, T_AMP, 0, at, 1); break;
        case '%': rc = emit(&L, T_PERCENT, 0, at, 1); break;
        case '.':
            if (nx == '.' && L.i + 1 < L.n && L.s[L.i + 1] == '.') { L.i += 2; rc = emit(&L, T_DOTS, 0, at, 3); }
            break; /* a lone period ends a sentence */
        default: break; /* $ " ? @ # ` and control bytes */
        }
    }
    if (rc < 0) { gr_lexed_free(out); return s1c_fail(err, "grade: out of memory"); }
    if (rc > 0) { gr_lexed_free(out); return 1; }
    L.space = false;
    if (emit(&L, T_END, 0, L.n, 0) < 0) { gr_lexed_free(out); return s1c_fail(err, "grade: out of memory"); }
    return 0;
}

void gr_lexed_free(lexed *lx) {
    free(lx->t);
    free(lx->src);
    *lx = (lexed){0};
}
