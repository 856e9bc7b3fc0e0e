/* Answer extraction and grading (src/grade): the public grading cases and extraction cases
 * in $S1C_DATA/grading (100 %), one test per normalization rule with examples written here,
 * properties (x = x for every parsed answer, symmetry, invariance under whitespace /
 * \left / \right / \! noise), MATH500 golds against themselves and each other, and bad
 * input (bounded time, no crash; the sanitizer build runs this under ASan/UBSan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "s1c/grade.h"
#include "testutil.h"

/* ------------------------------------------------------------------ helpers */

static grade_verdict verdict_opts(const char *gold, const char *pred, bool fast) {
    grade_result r;
    grade_opts o = {.no_fast_path = !fast};
    s1c_err err = {{0}};
    assert_int_equal(grade_equal_ex(gold, strlen(gold), pred, strlen(pred), &o, &r, &err), 0);
    return r.verdict;
}
static grade_verdict verdict(const char *gold, const char *pred) { return verdict_opts(gold, pred, false); }

#define EXPECT(gold, pred, v)                                                                       \
    do {                                                                                            \
        grade_verdict got_ = verdict_opts(gold, pred, false);                                       \
        if (got_ != (v)) fail_msg("grade(%s | %s) = %s, expected %s", gold, pred, grade_verdict_name(got_), \
                                  grade_verdict_name(v));                                           \
    } while (0)
#define EQ(g, p) EXPECT(g, p, GRADE_EQUAL)
#define NE(g, p) EXPECT(g, p, GRADE_NOT_EQUAL)
#define UN(g, p) EXPECT(g, p, GRADE_UNSURE)

/* Reads a JSONL file into cJSON objects (NULL-terminated array; free with free_lines). */
static cJSON **read_jsonl(const char *rel, int *n) {
    char *path = tu_path("S1C_DATA", rel);
    size_t len;
    char *text = tu_read(path, &len);
    if (!text) fail_msg("cannot read %s", path);
    free(path);
    int cap = 16;
    cJSON **v = malloc((size_t)cap * sizeof *v);
    *n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (*n + 1 >= cap) v = realloc(v, (size_t)(cap *= 2) * sizeof *v);
        v[(*n)++] = cJSON_Parse(line);
        assert_non_null(v[*n - 1]);
    }
    v[*n] = NULL;
    free(text);
    return v;
}
static void free_lines(cJSON **v) {
    for (int i = 0; v[i]; i++) cJSON_Delete(v[i]);
    free(v);
}
static const char *str_of(cJSON *o, const char *k) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

/* ------------------------------------------------------------------ public cases */

/* all 141 labelled pairs, with and without the identical-string shortcut */
static void test_cases_jsonl(void **state) {
    (void)state;
    int n, wrong = 0, wrong_slow = 0, unsure = 0;
    cJSON **v = read_jsonl("grading/cases.jsonl", &n);
    assert_int_equal(n, 141);
    for (int i = 0; i < n; i++) {
        const char *g = str_of(v[i], "gold"), *p = str_of(v[i], "pred");
        bool want = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v[i], "equal"));
        grade_verdict fast = verdict_opts(g, p, true), slow = verdict_opts(g, p, false);
        grade_verdict want_v = want ? GRADE_EQUAL : GRADE_NOT_EQUAL;
        if (fast != want_v) { wrong++; fprintf(stderr, "case %d: %s | %s -> %s\n", i + 1, g, p, grade_verdict_name(fast)); }
        if (slow != want_v) { wrong_slow++; fprintf(stderr, "case %d (no shortcut): %s | %s -> %s\n", i + 1, g, p, grade_verdict_name(slow)); }
        unsure += fast == GRADE_UNSURE;
    }
    fprintf(stderr, "cases.jsonl: %d/%d right (%d without the identical-string shortcut), %d unsure\n", n - wrong, n,
            n - wrong_slow, unsure);
    free_lines(v);
    assert_int_equal(wrong, 0);
    assert_int_equal(wrong_slow, 0);
}

static void test_extraction_jsonl(void **state) {
    (void)state;
    int n, wrong = 0, judge = 0;
    cJSON **v = read_jsonl("grading/extraction.jsonl", &n);
    assert_int_equal(n, 107);
    for (int i = 0; i < n; i++) {
        const char *text = str_of(v[i], "text"), *want = str_of(v[i], "answer"), *exn = str_of(v[i], "extractor");
        bool judge_row = !strcmp(exn, "s1_gpqa_judge");
        grade_extractor ex;
        assert_int_equal(grade_extractor_from_name(judge_row ? "s1_gpqa" : exn, &ex, NULL), 0);
        grade_extraction e;
        assert_int_equal(grade_extract(text, strlen(text), ex, &e, NULL), 0);
        if (judge_row) {
            /* s1 hands these to gpt-4o-mini: the deterministic stage yields no letter */
            judge++;
            if (!e.needs_judge) { wrong++; fprintf(stderr, "extraction %d: judge row got letter '%s'\n", i + 1, e.answer); }
        } else if (strcmp(e.answer, want) != 0 || e.needs_judge) {
            wrong++;
            fprintf(stderr, "extraction %d (%s): got '%.80s', want '%.80s'\n", i + 1, exn, e.answer, want);
        }
        grade_extraction_free(&e);
    }
    fprintf(stderr, "extraction.jsonl: %d/%d right (%d judge rows flagged needs_judge)\n", n - wrong, n, judge);
    free_lines(v);
    assert_int_equal(wrong, 0);
}

/* ------------------------------------------------------------------ extraction rules */

static char *ex(grade_extractor x, const char *text, bool *judge) {
    grade_extraction e;
    assert_int_equal(grade_extract(text, strlen(text), x, &e, NULL), 0);
    if (judge) *judge = e.needs_judge;
    return e.answer; /* caller frees */
}
#define EXTRACT_IS(x, text, want)                                                    \
    do {                                                                             \
        char *got_ = ex(x, text, NULL);                                              \
        if (strcmp(got_, want)) fail_msg("extract(%s) = '%s', want '%s'", text, got_, want); \
        free(got_);                                                                  \
    } while (0)

static void test_extract_rules(void **state) {
    (void)state;
    const grade_extractor M = GRADE_EX_S1_MATH, G = GRADE_EX_S1_GPQA, V = GRADE_EX_MINERVA;
    /* answer section: after the last "<|im_start|>answer\n" */
    EXTRACT_IS(M, "<|im_start|>think\nx\\boxed{1}<|im_start|>answer\nAnswer: 7", "7");
    /* bare <|im_start|>: drop its first line */
    EXTRACT_IS(M, "a<|im_start|>assistant\nThe value is 5", "The value is 5");
    EXTRACT_IS(M, "a<|im_start|>noline", "noline");
    /* last balanced box, nested braces */
    EXTRACT_IS(M, "\\boxed{1} then \\boxed{\\frac{a}{b}}.", "\\frac{a}{b}");
    /* "\boxed " with a space wins over a later \boxed{} and stops at '$' */
    EXTRACT_IS(M, "$\\boxed 5$ and \\boxed{6}", "5");
    /* unbalanced last box falls through to Answer: */
    EXTRACT_IS(M, "Answer: 3 \\boxed{4", "3 \\boxed{4");
    /* Answer: any case, spaces before the colon, first one wins, newlines kept */
    EXTRACT_IS(M, "so ANSWER :  12\nAnswer: 13", "12\nAnswer: 13");
    /* long s matches 's' case-insensitively, as Python's re does */
    EXTRACT_IS(M, "an\xC5\xBFwer: 9", "9");
    EXTRACT_IS(M, "no marker here", "no marker here");
    /* \fbox only: s1 would raise; content given, needs_judge set */
    bool judge;
    char *a = ex(M, "\\fbox{42}", &judge);
    assert_string_equal(a, "42");
    assert_true(judge);
    free(a);
    /* gpqa letters */
    EXTRACT_IS(G, "Answer: c", "C");
    a = ex(G, "Answer: (C)", &judge);
    assert_true(judge);
    free(a);
    a = ex(G, "\\boxed{D}", &judge);
    assert_string_equal(a, "D");
    assert_false(judge);
    free(a);
    /* minerva: first sentence on one line; trailing period without the sentence fails */
    EXTRACT_IS(V, "Final Answer: The final answer is $5$. I hope it is correct.", "$5$");
    EXTRACT_IS(V, "Final Answer: The final answer is 3\nFinal Answer: The final answer is 4. I hope it is correct.", "4");
    EXTRACT_IS(V, "Final Answer: The final answer is 7.", "[invalidanswer]");
    EXTRACT_IS(V, "Final Answer: The final answer is 8", "[invalidanswer]");
    EXTRACT_IS(V, "Final Answer: The final answer is 8 ", ""); /* the any-char eats the 8, as the regex does */
    EXTRACT_IS(V, "nothing", "[invalidanswer]");
}

/* ------------------------------------------------------------------ normalization rules */

static void test_rule_integers(void **state) {
    (void)state;
    EQ("007", "7"); EQ("0", "0000"); NE("12", "21"); NE("100", "10");
    EQ("123456789012345678901234567890", "0123456789012345678901234567890");
    NE("123456789012345678901234567890", "123456789012345678901234567891");
}
static void test_rule_decimals_and_signs(void **state) {
    (void)state;
    EQ("2.50", "2.5"); EQ("-.25", "-0.25"); EQ("+4", "4"); NE("-4", "4"); EQ("6", "6.000");
    NE("0.1", "0.10000001");
}
static void test_rule_fractions(void **state) {
    (void)state;
    EQ("\\frac{3}{6}", "1/2"); EQ("\\dfrac{-5}{4}", "-\\tfrac54"); EQ("\\frac{7}{2}", "3.5");
    EQ("-\\frac{2}{3}", "\\frac{-2}{3}"); EQ("\\frac{2}{-3}", "-2/3"); NE("\\frac{2}{3}", "\\frac{3}{2}");
    EQ("\\cfrac{1}{4}", "0.25");
}
static void test_rule_mixed_numbers(void **state) {
    (void)state;
    EQ("2\\frac{1}{4}", "9/4"); EQ("7\\frac{1}{2}", "7.5"); NE("2\\frac{1}{4}", "1/2");
}
static void test_rule_thousands(void **state) {
    (void)state;
    EQ("2,048", "2048"); EQ("1{,}500", "1500"); EQ("3,\\! 000,\\! 000", "3000000"); EQ("12,345.5", "12345.5");
    /* not thousands: lists and tuples keep their commas */
    NE("1,2", "12"); EQ("(1,234)", "(1, 234)"); NE("(1,234)", "1234");
}
static void test_rule_roots_powers(void **state) {
    (void)state;
    EQ("\\sqrt{8}", "2\\sqrt2"); EQ("\\sqrt[3]{27}", "3"); EQ("2^{10}", "1024"); EQ("4^{1/2}", "2");
    EQ("\\sqrt{12}", "2\\sqrt{3}"); NE("\\sqrt{2}", "\\sqrt{3}"); EQ("8^{-1}", "0.125");
}
static void test_rule_pi_e_functions(void **state) {
    (void)state;
    EQ("2\\pi", "\\pi \\cdot 2"); EQ("\\pi/2", "\\frac{\\pi}{2}"); UN("\\pi", "3.14"); NE("\\pi", "3.15");
    EQ("\\sin\\frac{\\pi}{6}", "\\frac12"); EQ("\\log_2 8", "3"); EQ("\\ln e^2", "2"); EQ("\\cos^2 x + \\sin^2 x", "1");
    EQ("e^{\\ln 5}", "5"); EQ("\\tan 45^\\circ", "\\tan 45");
}
static void test_rule_rounded_decimal_is_unsure(void **state) {
    (void)state;
    UN("\\sqrt{2}", "1.414"); UN("\\frac{1}{3}", "0.33"); NE("\\frac{1}{3}", "0.4"); NE("2\\sqrt{5}", "4.5"); EQ("\\frac{33}{100}", "0.33");
}
static void test_rule_intervals_tuples(void **state) {
    (void)state;
    EQ("[2, 5)", "\\left[ 2,5 \\right)"); NE("[2,5)", "(2,5)"); NE("[2,5]", "[2,5)"); EQ("(-\\infty, 3]", "(-\\infty,3]"); NE("(2, \\infty)", "(2, 4)");
    EQ("(2, -1)", "(2,-1)"); NE("(2, -1)", "(-1, 2)"); EQ("(0,1) \\cup (2,3)", "(2,3)\\cup(0,1)");
    NE("(0,1) \\cup (2,3)", "(0,1)"); EQ("\\langle 1, 2\\rangle", "(1,2)");
}
static void test_rule_sets_and_lists(void **state) {
    (void)state;
    EQ("\\{3, 1, 2\\}", "1,2,3"); EQ("3, 1", "1 and 3"); EQ("-1 or 4", "4, -1"); NE("1, 2", "1, 2, 3");
    EQ("\\pm 3", "3, -3"); EQ("2 \\pm \\sqrt{5}", "2+\\sqrt5, 2-\\sqrt5"); NE("2 \\pm \\sqrt{5}", "2+\\sqrt5");
    EQ("\\emptyset", "\\varnothing");
}
static void test_rule_matrices(void **state) {
    (void)state;
    EQ("\\begin{pmatrix} 1 \\\\ -2 \\end{pmatrix}", "\\begin{bmatrix}1\\\\-2\\end{bmatrix}");
    EQ("\\begin{pmatrix} \\frac12 & 0 \\end{pmatrix}", "\\begin{pmatrix} 0.5 & 0 \\end{pmatrix}");
    NE("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\end{pmatrix}");
}
static void test_rule_equations_labels(void **state) {
    (void)state;
    EQ("y = 2", "2"); EQ("g(t) = t^2", "t^2"); EQ("m\\angle ABC = 40", "40"); NE("2x = 6", "6");
    EQ("y = 2x + 1", "y = 1 + 2x"); EQ("2y = 4x + 2", "y = 2x + 1"); NE("y = 2x + 1", "y = 2x - 1");
    NE("y = 3", "x = 3"); EQ("x = 1, y = 2", "y = 2, x = 1"); NE("x = 1, y = 2", "x = 2, y = 1");
}
static void test_rule_inequalities(void **state) {
    (void)state;
    EQ("x > 2", "2 < x"); EQ("x \\ge -1", "x >= -1"); NE("x \\ge -1", "x > -1"); EQ("2x < 4", "x < 2");
    NE("-x < 2", "x < 2"); EQ("1 < x < 3", "3 > x > 1"); EQ("x \\ne 0", "x \\neq 0");
}
static void test_rule_free_variables(void **state) {
    (void)state;
    EQ("(a+b)^2", "a^2 + 2ab + b^2"); NE("(a+b)^2", "a^2 + b^2"); EQ("\\frac{x^2-1}{x-1}", "x+1");
    NE("x^2", "y^2"); EQ("3n(n+1)/2", "\\frac{3n^2+3n}{2}"); EQ("\\sum_{i=1}^{n} i", "\\frac{n(n+1)}{2}");
    NE("\\sum_{i=1}^{n} i", "\\frac{n(n-1)}{2}");
}
static void test_rule_text_units(void **state) {
    (void)state;
    EQ("5\\text{ meters}", "5"); EQ("12 \\text{ inches}", "12"); NE("5\\text{ m}", "6"); EQ("8\\mbox{ cm}^3", "8");
    EQ("\\text{Yes}", "yes"); NE("\\text{yes}", "no"); EQ("\\textbf{(B)}", "B"); EQ("4 dollars", "\\$4");
}
static void test_rule_percent_degrees_ordinals(void **state) {
    (void)state;
    EQ("45\\%", "45"); EQ("45 \\%", "45 percent"); EQ("60^\\circ", "60"); EQ("60^{\\circ}", "60 degrees");
    EQ("3^{\\text{rd}}", "3"); NE("45\\%", "0.45");
}
static void test_rule_bases(void **state) {
    (void)state;
    EQ("1011_2", "1011"); EQ("73_{8}", "73"); NE("1011_2", "1101_2");
}
static void test_rule_choice_letters(void **state) {
    (void)state;
    EQ("B", "B) 12"); EQ("B", "(B)"); NE("B", "C. 12"); EQ("D", "\\text{D}"); NE("A", "B");
}
static void test_rule_noise_wrappers(void **state) {
    (void)state;
    EQ("\\left( 1, 2 \\right)", "(1,2)"); EQ("\\displaystyle\\frac{1}{2}", "1/2"); EQ("$5$", "5");
    EQ("\\\\frac{1}{2}", "\\frac12"); EQ("\\approx 0.5", "0.5"); EQ("3\\!\\cdot\\!4", "12"); EQ("7.", "7");
}

/* ------------------------------------------------------------------ properties */

/* Every answer we can find (cases, MATH500) equals itself through the parser (no shortcut),
 * and verdicts are symmetric. */
static void test_property_reflexive_symmetric(void **state) {
    (void)state;
    int n, m, bad = 0, asym = 0;
    cJSON **cases = read_jsonl("grading/cases.jsonl", &n);
    cJSON **m500 = read_jsonl("math500/test.jsonl", &m);
    for (int i = 0; i < n; i++) {
        const char *g = str_of(cases[i], "gold"), *p = str_of(cases[i], "pred");
        const char *both[2] = {g, p};
        for (int k = 0; k < 2; k++)
            if (verdict_opts(both[k], both[k], false) != GRADE_EQUAL) { bad++; fprintf(stderr, "not reflexive: %s\n", both[k]); }
        /* the choice-letter rule is one-sided by design (gold is the letter) */
        if (strlen(g) == 1 && g[0] >= 'A' && g[0] <= 'Z') continue;
        if (verdict(g, p) != verdict(p, g)) { asym++; fprintf(stderr, "asymmetric: %s | %s\n", g, p); }
    }
    for (int i = 0; i < m; i++) {
        const char *a = str_of(m500[i], "answer");
        if (verdict_opts(a, a, false) != GRADE_EQUAL) { bad++; fprintf(stderr, "not reflexive: %s\n", a); }
    }
    free_lines(cases);
    free_lines(m500);
    assert_int_equal(bad, 0);
    assert_int_equal(asym, 0);
}

/* Adds whitespace, \left/\right and \! where they change nothing: around + - = , and
 * parentheses that are not escaped or already sized. */
static char *noisy(const char *s, unsigned seed) {
    size_t n = strlen(s);
    char *o = malloc(n * 12 + 16), *q = o;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool esc = i > 0 && s[i - 1] == '\\';
        bool sized = (i >= 5 && !memcmp(s + i - 5, "\\left", 5)) || (i >= 6 && !memcmp(s + i - 6, "\\right", 6));
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 16;
        if (!esc && !sized && c == '(') { q += sprintf(q, r & 1 ? "\\left( " : " ("); continue; }
        if (!esc && !sized && c == ')') { q += sprintf(q, r & 1 ? " \\right)" : ") "); continue; }
        bool rel = c == '=' && ((i > 0 && strchr("<>!=", s[i - 1])) || (i + 1 < n && s[i + 1] == '='));
        if (!esc && (c == '+' || (c == '=' && !rel))) { q += sprintf(q, r & 1 ? " %c\\! " : "  %c ", c); continue; }
        if (!esc && c == '-' && i > 0 && s[i - 1] != '{' && s[i - 1] != '^') { q += sprintf(q, r & 1 ? " -\\!" : " - "); continue; }
        bool digits = i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9' && i + 1 < n && ((s[i + 1] >= '0' && s[i + 1] <= '9') || s[i + 1] == '\\' || s[i + 1] == '}');
        if (!esc && c == ',' && !digits) {
            q += sprintf(q, ", ");
            continue;
        }
        *q++ = c;
    }
    *q = 0;
    return o;
}

static void test_property_noise(void **state) {
    (void)state;
    int n, changed = 0;
    cJSON **cases = read_jsonl("grading/cases.jsonl", &n);
    for (int i = 0; i < n; i++) {
        const char *g = str_of(cases[i], "gold"), *p = str_of(cases[i], "pred");
        grade_verdict v = verdict(g, p);
        for (unsigned seed = 1; seed <= 3; seed++) {
            char *ng = noisy(g, seed), *np = noisy(p, seed * 7);
            grade_verdict w = verdict_opts(ng, np, false);
            if (w != v) { changed++; fprintf(stderr, "noise changed %s: '%s' | '%s'\n", grade_verdict_name(w), ng, np); }
            free(ng), free(np);
        }
    }
    free_lines(cases);
    assert_int_equal(changed, 0);
}

/* ------------------------------------------------------------------ MATH500 */

static void test_math500_self_and_cross(void **state) {
    (void)state;
    int n;
    cJSON **v = read_jsonl("math500/test.jsonl", &n);
    assert_int_equal(n, 500);
    int self[3] = {0}, cross[3] = {0}, identical = 0;
    double t0 = s1c_now();
    for (int i = 0; i < n; i++) {
        const char *a = str_of(v[i], "answer");
        self[verdict_opts(a, a, false)]++;
        for (int j = 0; j < n; j++) {
            if (i == j) continue;
            const char *b = str_of(v[j], "answer");
            grade_verdict w = verdict(a, b);
            cross[w]++;
            identical += w == GRADE_EQUAL && !strcmp(a, b);
        }
    }
    double dt = s1c_now() - t0;
    fprintf(stderr,
            "MATH500 self (no shortcut): %d equal, %d not equal, %d unsure\n"
            "MATH500 cross (%d ordered pairs): %d equal (%d of them identical strings, %d equivalent spellings), "
            "%d not equal, %d unsure; %.2f s\n",
            self[GRADE_EQUAL], self[GRADE_NOT_EQUAL], self[GRADE_UNSURE], n * (n - 1), cross[GRADE_EQUAL], identical,
            cross[GRADE_EQUAL] - identical, cross[GRADE_NOT_EQUAL], cross[GRADE_UNSURE], dt);
    free_lines(v);
    assert_int_equal(self[GRADE_EQUAL], n);
    /* distinct answers almost never match: equivalent spellings (90^\circ vs 90, x=5 vs 5) only */
    assert_true(cross[GRADE_EQUAL] - identical < 200);
    assert_true(cross[GRADE_UNSURE] < 100);
}

/* ------------------------------------------------------------------ bad input */

static void timed(const char *g, size_t gl, const char *p, size_t pl, const char *what) {
    grade_result r;
    s1c_err err = {{0}};
    double t0 = s1c_now();
    assert_int_equal(grade_equal_ex(g, gl, p, pl, &(grade_opts){.no_fast_path = true}, &r, &err), 0);
    double dt = s1c_now() - t0;
    if (dt > 2.0) fail_msg("%s took %.2f s", what, dt);
    grade_extraction e;
    for (int x = 0; x < 3; x++) {
        assert_int_equal(grade_extract(g, gl, (grade_extractor)x, &e, &err), 0);
        grade_extraction_free(&e);
    }
    if (s1c_now() - t0 > 4.0) fail_msg("%s (extraction) took too long", what);
}

static char *repeat(const char *unit, int times, const char *mid, const char *close) {
    size_t u = strlen(unit), c = close ? strlen(close) : 0, m = strlen(mid);
    char *s = malloc(u * times + m + c * times + 1), *q = s;
    for (int i = 0; i < times; i++) memcpy(q, unit, u), q += u;
    memcpy(q, mid, m), q += m;
    for (int i = 0; i < times && close; i++) memcpy(q, close, c), q += c;
    *q = 0;
    return s;
}

static void test_bad_input(void **state) {
    (void)state;
    const char *small[] = {
        "\\frac{1}{", "}}}{{{", "\\boxed{", "\\sqrt", "(", "\\left(", "x^", "_", "\\begin{pmatrix} 1 & 2 \\\\ 3",
        "10^{10^{10}}", "10^{10^{10}} + 1", "1/0", "\\frac{1}{0}", "0^{-1}", "(-1)^{0.5}", "\\sqrt{-4}",
        "\\sum_{k=1}^{1000000000} k", "\\prod_{k=1}^{n} k", "100000000!", "\\binom{10^9}{5}", "\\log_1 5",
        "\xff\xfe\xfd", "\xc3(", "\xe2\x88", "1,\\!", "{,}", "\\", "\\\\", "$$$$", "&&&", "\\end{pmatrix}",
        "2^{2^{2^{2^{2^{2^{2^{2}}}}}}}", "9999999999999999999999999/3", "1e999", "\\infty - \\infty",
    };
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        for (size_t j = 0; j < sizeof small / sizeof small[0]; j++)
            timed(small[i], strlen(small[i]), small[j], strlen(small[j]), small[i]);
    /* deep nesting, every kind of bracket */
    const char *open[] = {"(", "{", "\\frac{1}{", "\\sqrt{", "[", "|", "x^{", "\\left(", "-"};
    const char *close[] = {")", "}", "}", "}", "]", "|", "}", "\\right)", ""};
    for (size_t k = 0; k < sizeof open / sizeof open[0]; k++) {
        char *deep = repeat(open[k], 10000, "1", close[k]);
        timed(deep, strlen(deep), "1", 1, open[k]);
        deep[strlen(deep) / 2] = 0; /* unbalanced */
        timed(deep, strlen(deep), deep, strlen(deep), open[k]);
        free(deep);
    }
    /* 1 MB answers: long lists, long sums, one long number, long text */
    const char *units[] = {"1,", "x+", "9", "a", "\\boxed{", "Answer: ", "(1,2),", "\\pm 1", "Final Answer: The final answer is "};
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
        int times = (int)((1u << 20) / strlen(units[k]));
        char *big = repeat(units[k], times, "1", NULL);
        timed(big, strlen(big), big, strlen(big), units[k]);
        timed(big, strlen(big), "1", 1, units[k]);
        free(big);
    }
    /* long but parseable (under the 64 KiB parse limit): lists and sums */
    const char *mid_units[] = {"1,", "x+", "\\pm 1,", "(1,2),", "\\sqrt{2}+"};
    for (size_t k = 0; k < sizeof mid_units / sizeof mid_units[0]; k++) {
        int times = (int)(60000 / strlen(mid_units[k]));
        char *big = repeat(mid_units[k], times, "1", NULL), *big2 = repeat(mid_units[k], times, "2", NULL);
        timed(big, strlen(big), big2, strlen(big2), mid_units[k]);
        free(big), free(big2);
    }
    /* inputs the fuzzer found: a one-byte non-ASCII "word" as a \\frac argument; \\lcm of 7e24 */
    static const char fz1[] = "dFinal Answer: The final answer is{\134frac\311{\134sqrt{13} - 5and} \134quad \134boxed{10^{-\134 \134sqrt{1\134text{\2673}}}{6}}}$";
    static const char fz2[] = "2\013, 46, an\134lcm2\013, 46, an\134lcml\377ax9lcn\134m.8\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\337\3372m\377ax9n\134lco.41";
    timed(fz1, sizeof fz1 - 1, fz1, sizeof fz1 - 1, "fuzz 1");
    timed(fz2, sizeof fz2 - 1, fz2, sizeof fz2 - 1, "fuzz 2");
    /* embedded NUL bytes */
    timed("1\0002", 3, "1", 1, "nul");
    /* huge exponents and division by zero give a verdict or unsure, never equal by accident */
    assert_int_not_equal(verdict("10^{10^{10}}", "10^{10^{10}}+1"), GRADE_EQUAL);
    assert_int_not_equal(verdict("\\frac{1}{0}", "2"), GRADE_EQUAL);
    /* beyond int64 the values are doubles: never a false EQUAL, at worst unsure */
    assert_int_not_equal(verdict("2^{100}", "1267650600228229401496703205377"), GRADE_EQUAL);
    assert_int_not_equal(verdict("2^{100}", "1267650600228229401496703205376"), GRADE_NOT_EQUAL);
    EQ("2^{62}", "4611686018427387904");
    NE("2^{62}", "4611686018427387905");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_jsonl),
        cmocka_unit_test(test_extraction_jsonl),
        cmocka_unit_test(test_extract_rules),
        cmocka_unit_test(test_rule_integers),
        cmocka_unit_test(test_rule_decimals_and_signs),
        cmocka_unit_test(test_rule_fractions),
        cmocka_unit_test(test_rule_mixed_numbers),
        cmocka_unit_test(test_rule_thousands),
        cmocka_unit_test(test_rule_roots_powers),
        cmocka_unit_test(test_rule_pi_e_functions),
        cmocka_unit_test(test_rule_rounded_decimal_is_unsure),
        cmocka_unit_test(test_rule_intervals_tuples),
        cmocka_unit_test(test_rule_sets_and_lists),
        cmocka_unit_test(test_rule_matrices),
        cmocka_unit_test(test_rule_equations_labels),
        cmocka_unit_test(test_rule_inequalities),
        cmocka_unit_test(test_rule_free_variables),
        cmocka_unit_test(test_rule_text_units),
        cmocka_unit_test(test_rule_percent_degrees_ordinals),
        cmocka_unit_test(test_rule_bases),
        cmocka_unit_test(test_rule_choice_letters),
        cmocka_unit_test(test_rule_noise_wrappers),
        cmocka_unit_test(test_property_reflexive_symmetric),
        cmocka_unit_test(test_property_noise),
        cmocka_unit_test(test_math500_self_and_cross),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
