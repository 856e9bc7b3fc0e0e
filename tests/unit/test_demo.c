/* The demo's problem generator and teacher, checked from the question text alone: the answer
 * is the true fold of the question's numbers, every pass walks the numbers in the rotated
 * order and computes each step from what it wrote before (one slipped step at most), checks
 * stop at the first repeated result, which is right; questions are long enough for the 8-gram
 * decontamination; generation is deterministic per seed; the byte-level tokenizer loads and
 * round-trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "s1c/demo.h"
#include "s1c/text.h"

static int words(const char *s) {
    int n = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        n++;
        while (*p && *p != ' ') p++;
    }
    return n;
}

/* Every word 8-gram holds two numbers or more, so the 8-gram decontamination matches pool
 * problems sharing numbers with a test problem, never the template alone. */
static void check_windows(const char *q) {
    char *copy = strdup(q), *w[64], *save;
    int n = 0;
    for (char *t = strtok_r(copy, " ", &save); t && n < 64; t = strtok_r(NULL, " ", &save)) w[n++] = t;
    for (int i = 0; i + 8 <= n; i++) {
        int numbers = 0;
        for (int j = i; j < i + 8; j++) numbers += strcspn(w[j], "0123456789") < strlen(w[j]);
        assert_true(numbers >= 2);
    }
    free(copy);
}

/* The question's numbers ("Let a=52, b=73, c=83. Find the last digit of a+b+c." gives 52,
 * 73, 83); *threshold: T of "larger than T?" or -1. */
static int question_terms(const char *q, long *terms, long *threshold) {
    const char *t = strstr(q, "larger than ");
    *threshold = t ? strtol(t + 12, NULL, 10) : -1;
    int n = 0;
    char name[3] = "a=";
    for (const char *p; n < 16 && (p = strstr(q, name)); name[0]++) terms[n++] = strtol(p + 2, NULL, 10);
    return n;
}

static long step_value(int domain, long acc, long x, long threshold) {
    switch (domain) {
    case DEMO_SUM: return (acc + x) % 10;
    case DEMO_MIN: return x < acc ? x : acc;
    case DEMO_COUNT: return acc + (x > threshold);
    case DEMO_MAX: return x > acc ? x : acc;
    default: return acc * (x % 10) % 10;
    }
}

/* The term and the written running value of a step line "<name>: ...". */
static bool parse_step(int domain, const char *line, char name, long *x, long *v) {
    char cmp;
    long t;
    if (line[0] != name || strncmp(line + 1, ": ", 2) != 0) return false;
    line += 3;
    switch (domain) {
    case DEMO_SUM: return sscanf(line, "+%ld = %ld.", x, v) == 2;
    case DEMO_MIN: return sscanf(line, "%ld, min %ld.", x, v) == 2;
    case DEMO_COUNT: return sscanf(line, "%ld %c %ld, so %ld.", x, &cmp, &t, v) == 4;
    case DEMO_MAX: return sscanf(line, "%ld, max %ld.", x, v) == 2;
    default: return sscanf(line, "*%ld = %ld.", x, v) == 2;
    }
}

/* The trace is passes over the question's numbers, pass k rotated to start at number k, each
 * step computed from the value written before it except at most one slipped step per pass;
 * a checking trace says after each later pass whether its result repeats an earlier one and
 * stops at the first repeat, which is the true answer. */
static void check_trace(const demo_problem *p) {
    long terms[16], threshold;
    int n = question_terms(p->question, terms, &threshold);
    assert_int_equal(n, p->n_terms);
    assert_true(n >= 2 && n <= DEMO_MAX_TERMS);
    long truth = p->domain == DEMO_PRODUCT ? 1 : p->domain == DEMO_MIN ? 100 : 0;
    for (int i = 0; i < n; i++) truth = step_value(p->domain, truth, terms[i], threshold);
    assert_int_equal(strtol(p->answer, NULL, 10), truth);

    char *copy = strdup(p->trace), *save = NULL;
    char *line = strtok_r(copy, "\n", &save);
    long results[DEMO_MAX_PASSES];
    int passes = 0, slips = 0;
    for (;;) {
        assert_true(passes < DEMO_MAX_PASSES);
        if (passes > 0) {
            char from;
            assert_non_null(line);
            assert_int_equal(sscanf(line, "Wait, again from %c:", &from), 1);
            assert_int_equal(from, 'a' + passes % n);
            line = strtok_r(NULL, "\n", &save);
        }
        long acc = p->domain == DEMO_PRODUCT ? 1 : p->domain == DEMO_MIN ? 100 : 0;
        int wrong = 0;
        for (int k = 0; k < n; k++, line = strtok_r(NULL, "\n", &save)) {
            long x, v;
            assert_non_null(line);
            assert_true(parse_step(p->domain, line, (char)('a' + (passes + k) % n), &x, &v));
            assert_int_equal(x, terms[(passes + k) % n]);
            wrong += v != step_value(p->domain, acc, x, threshold);
            acc = v;
        }
        assert_true(wrong <= 1);
        slips += wrong;
        bool repeat = false;
        for (int i = 0; i < passes; i++) repeat |= results[i] == acc;
        results[passes++] = acc;
        if (!line) {
            /* an unchecked trace: one pass, right */
            assert_int_equal(passes, 1);
            assert_int_equal(acc, truth);
            break;
        }
        if (passes > 1) {
            long said;
            char word[16];
            assert_int_equal(sscanf(line, "%ld %15[a-z].", &said, word), 2);
            assert_int_equal(said, acc);
            assert_string_equal(word, repeat ? "again" : "differs");
            line = strtok_r(NULL, "\n", &save);
            if (repeat) {
                assert_int_equal(acc, truth);
                assert_null(line);
                break;
            }
        }
    }
    assert_int_equal(passes, p->n_passes);
    assert_int_equal(slips, p->n_slips);
    free(copy);
}

static void test_problems(void **state) {
    (void)state;
    s1c_rng rng;
    s1c_rng_seed(&rng, 7);
    s1c_err err;
    int slips = 0, checked = 0, long_ones = 0, checked_at[4] = {0};
    for (int i = 0; i < 3000; i++) {
        demo_problem p;
        int d = i % DEMO_N_DOMAINS, diff = 1 + (i / DEMO_N_DOMAINS) % 3;
        assert_int_equal(demo_problem_make(&p, d, diff, 0.5, 0.3, &rng, &err), 0);
        assert_true(words(p.question) >= 8);
        check_windows(p.question);
        assert_true(p.n_terms >= 2 * diff && p.n_terms <= 2 * diff + 1);
        char *end;
        long ans = strtol(p.answer, &end, 10);
        assert_true(*end == 0 && ans >= 0);
        check_trace(&p);
        slips += p.n_slips;
        checked += p.n_passes > 1;
        checked_at[diff] += p.n_passes > 1;
        long_ones += p.n_passes > 2;
        demo_problem_free(&p);
    }
    assert_true(checked > 850 && checked < 1150); /* check_p 0.5 * difficulty / 3 */
    assert_true(checked_at[3] > 400 && checked_at[1] < 250); /* 500 and 167 expected */
    assert_true(slips > 300);                      /* slip_p 0.3 per checking pass */
    assert_true(long_ones > 200);                  /* slips make third passes */
    demo_problem p;
    assert_int_equal(demo_problem_make(&p, 9, 1, 0, 0, &rng, &err), -1);
    assert_int_equal(demo_problem_make(&p, 0, 4, 0, 0, &rng, &err), -1);
}

static void test_deterministic(void **state) {
    (void)state;
    s1c_rng a, b;
    s1c_rng_seed(&a, 3);
    s1c_rng_seed(&b, 3);
    s1c_err err;
    for (int i = 0; i < 50; i++) {
        demo_problem p, q;
        assert_int_equal(demo_problem_make(&p, i % 5, 2, 0.2, 0.2, &a, &err), 0);
        assert_int_equal(demo_problem_make(&q, i % 5, 2, 0.2, 0.2, &b, &err), 0);
        assert_string_equal(p.question, q.question);
        assert_string_equal(p.trace, q.trace);
        demo_problem_free(&p);
        demo_problem_free(&q);
    }
}

static void test_tokenizer(void **state) {
    (void)state;
    char *dir = tu_path("S1C_TMP", "demo_tok");
    int n_vocab;
    s1c_err err;
    assert_int_equal(demo_write_tokenizer(dir, &n_vocab, &err), 0);
    assert_int_equal(n_vocab, 260);
    s1c_tokenizer *t;
    assert_int_equal(s1c_tok_load(&t, dir, 0, &err), 0);
    const char *text = "<|im_start|>user\nSolve 3x + 7 = 31 for the unknown x. é\n<|im_end|>";
    int32_t *ids;
    int n;
    assert_int_equal(s1c_tok_encode_ex(t, text, strlen(text), S1C_ENC_SPECIAL, &ids, &n, &err), 0);
    assert_int_equal(ids[0], 257);      /* <|im_start|> is one token */
    assert_int_equal(ids[n - 1], 258);  /* <|im_end|> */
    assert_int_equal(ids[1], 'u');      /* bytes are their own ids */
    assert_int_equal(s1c_tok_chat_template(t), S1C_CHAT_CHATML);
    size_t len;
    char *back = s1c_tok_decode_range(t, ids, 1, n - 1, -1, &len);
    assert_string_equal(back, "user\nSolve 3x + 7 = 31 for the unknown x. é\n");
    free(back);
    free(ids);
    s1c_tok_free(t);
    free(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_problems),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_tokenizer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
