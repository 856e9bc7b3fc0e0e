/* The demo's problem generator and teacher: every arithmetic step a trace keeps is right,
 * every slip is followed by "Wait" and the right value, questions are long enough for the
 * 8-gram decontamination to tell problems apart, answers are integers, generation is
 * deterministic per seed; and the byte-level tokenizer loads and round-trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "s1c/demo.h"
#include "s1c/text.h"

static long apply(long a, char op, long b) {
    switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    case '/': return b ? a / b : -1;
    }
    return -1;
}

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

/* The value a step line writes: the last "a op b = v." of the line ("3x = 31 - 7 = 24." is
 * "31 - 7 = 24"); false for other lines. */
static bool step_of(const char *line, long *a, char *op, long *b, long *v) {
    const char *from = line;
    for (const char *eq = strstr(line, " = "); eq; eq = strstr(eq + 3, " = ")) {
        const char *next = strstr(eq + 3, " = ");
        if (!next) break;
        from = eq + 3;
    }
    if (!strncmp(from, "x = ", 4)) from += 4;
    return sscanf(from, "%ld %c %ld = %ld.", a, op, b, v) == 4;
}

/* Every step a trace keeps is right; a wrong one is followed by "Wait, ... = right, not wrong." */
static void check_trace(const demo_problem *p) {
    char *copy = strdup(p->trace), *lines[64];
    int n = 0, slips = 0;
    for (char *save, *l = strtok_r(copy, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save)) lines[n++] = l;
    for (int i = 0; i < n; i++) {
        long a, b, v, w;
        char op;
        if (!strncmp(lines[i], "Wait, ", 6)) {
            /* "Wait, <step> = right, not wrong." */
            char step[256];
            const char *not_ = strstr(lines[i], ", not ");
            assert_non_null(not_);
            assert_int_equal(sscanf(not_, ", not %ld.", &w), 1);
            snprintf(step, sizeof step, "%.*s.", (int)(not_ - lines[i] - 6), lines[i] + 6);
            assert_true(step_of(step, &a, &op, &b, &v));
            long pa, pb, pv;
            char pop;
            assert_int_equal(apply(a, op, b), v);
            assert_true(i > 0 && step_of(lines[i - 1], &pa, &pop, &pb, &pv) && pv == w && v != w);
            slips++;
        } else if (step_of(lines[i], &a, &op, &b, &v)) {
            bool corrected = i + 1 < n && !strncmp(lines[i + 1], "Wait,", 5);
            if (!corrected) assert_int_equal(apply(a, op, b), v);
            else assert_true(apply(a, op, b) != v);
        }
    }
    assert_int_equal(slips, p->n_slips);
    free(copy);
}

static void test_problems(void **state) {
    (void)state;
    s1c_rng rng;
    s1c_rng_seed(&rng, 7);
    s1c_err err;
    int slips = 0, verified = 0;
    for (int i = 0; i < 3000; i++) {
        demo_problem p;
        int d = i % DEMO_N_DOMAINS, diff = 1 + (i / DEMO_N_DOMAINS) % 3;
        assert_int_equal(demo_problem_make(&p, d, diff, 0.3, 0.5, &rng, &err), 0);
        assert_true(words(p.question) >= 8);
        char *end;
        long ans = strtol(p.answer, &end, 10);
        assert_true(*end == 0 && ans >= 0);
        check_trace(&p);
        slips += p.n_slips;
        verified += p.verified;
        if (p.verified) assert_non_null(strstr(p.trace, "Check:"));
        demo_problem_free(&p);
    }
    assert_true(slips > 300);    /* slip_p 0.3 per step */
    assert_true(verified > 1200); /* verify_p 0.5 */
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
