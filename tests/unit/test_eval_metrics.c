/* Evaluation metrics on hand-computed examples (SPEC.md §6), the shipped benchmarks, the
 * JSONL loader's errors, and s1's correctness rule. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/eval.h"
#include "testutil.h"

static eval_point pt(int budget, double acc, double think) {
    return (eval_point){.max_thinking_tokens = budget, .accuracy = acc, .avg_thinking_tokens = think};
}

static void test_control_scaling_performance(void **st) {
    (void)st;
    /* three settings: 500 → 20% at 480 tokens, 1000 → 30% at 950, 2000 → 35% at 2100 (over budget) */
    eval_point p[3] = {pt(500, 0.20, 480), pt(1000, 0.30, 950), pt(2000, 0.35, 2100)};
    assert_true(fabs(eval_control(p, 3) - 2.0 / 3.0) < 1e-12); /* the third is outside its budget */
    /* slopes in pp per 1,000 tokens: (30-20)/0.47, (35-20)/1.62, (35-30)/1.15; their mean */
    double want = (10 / 0.47 + 15 / 1.62 + 5 / 1.15) / 3;
    assert_true(fabs(eval_scaling(p, 3) - want) < 1e-9);
    assert_true(fabs(eval_performance(p, 3) - 0.35) < 1e-12);
    /* the paper's examples: Control 3/5 = 60%, 1/2 = 50% */
    eval_point q[5] = {pt(100, 0, 90), pt(200, 0, 150), pt(300, 0, 290), pt(400, 0, 500), pt(500, 0, 900)};
    assert_true(fabs(eval_control(q, 5) - 0.6) < 1e-12);
    assert_true(fabs(eval_control(q + 3, 2) - 0.0) < 1e-12);
    /* negative scaling (rejection sampling's inverse scaling) */
    eval_point r[2] = {pt(-1, 0.5, 1000), pt(-1, 0.4, 3000)};
    assert_true(fabs(eval_scaling(r, 2) - (-10.0 / 2.0)) < 1e-9);
    /* equal thinking: no slope to average */
    eval_point s2[2] = {pt(-1, 0.5, 1000), pt(-1, 0.6, 1000)};
    assert_true(eval_scaling(s2, 2) == 0);
}

static void test_wilson(void **st) {
    (void)st;
    double lo, hi;
    eval_wilson(15, 30, &lo, &hi); /* p = 0.5, n = 30: 0.3315 .. 0.6685 */
    assert_true(fabs(lo - 0.33153) < 1e-4 && fabs(hi - 0.66847) < 1e-4);
    eval_wilson(0, 30, &lo, &hi);
    assert_true(lo == 0 && fabs(hi - 0.11351) < 1e-4);
    eval_wilson(30, 30, &lo, &hi);
    assert_true(hi == 1 && fabs(lo - 0.88649) < 1e-4);
}

static void test_builtin_benchmarks(void **st) {
    (void)st;
    s1c_err err;
    eval_bench b;
    assert_int_equal(eval_bench_builtin(&b, "aime24", &err), 0);
    assert_int_equal(b.n, 30);
    assert_string_equal(b.p[0].gold, "204");
    assert_non_null(strstr(b.p[0].question, "Every morning Aya goes for a $9$-kilometer-long walk"));
    eval_bench_free(&b);
    assert_int_equal(eval_bench_builtin(&b, "aime25", &err), 0);
    assert_int_equal(b.n, 30);
    for (int i = 0; i < b.n; i++) assert_null(strstr(b.p[i].question, "Please reason step by step")); /* QwQ's suffix stripped */
    assert_string_equal(b.p[0].gold, "70");
    eval_bench_free(&b);
    assert_int_equal(eval_bench_builtin(&b, "math500", &err), 0);
    assert_int_equal(b.n, 500);
    assert_string_equal(b.p[0].gold, "\\left( 3, \\frac{\\pi}{2} \\right)");
    eval_bench_free(&b);
    assert_int_equal(eval_bench_builtin(&b, "gpqa", &err), -1);
}

static void test_bench_file_errors(void **st) {
    (void)st;
    s1c_err err;
    eval_bench b;
    const char *good = "{\"question\": \"1+1?\", \"answer\": 2, \"id\": \"a\"}\n\n{\"question\": \"2+2?\", \"answer\": \"4\"}\n";
    assert_int_equal(eval_bench_parse(&b, "mem", good, strlen(good), "question", "answer", &err), 0);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.p[0].gold, "2");
    assert_string_equal(b.p[1].id, "3"); /* no id: the line number */
    eval_bench_free(&b);
    const char *bad = "{\"question\": \"1+1?\", \"answer\": 2}\n{\"question\": \"x\"}\n";
    assert_int_equal(eval_bench_parse(&b, "bench.jsonl", bad, strlen(bad), "question", "answer", &err), -1);
    assert_non_null(strstr(err.msg, "bench.jsonl:2"));
    assert_int_equal(eval_bench_parse(&b, "e.jsonl", "\n\n", 2, "question", "answer", &err), -1);
    assert_int_equal(eval_bench_file(&b, "/nonexistent/x.jsonl", "q", "a", &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/x.jsonl"));
}

static void test_correctness_rule(void **st) {
    (void)st;
    bool unsure;
    assert_true(eval_is_correct("23", "023", &unsure));  /* AIME: integers */
    assert_false(eval_is_correct("23", "24", &unsure));
    assert_true(eval_is_correct("\\frac{1}{2}", "0.5", &unsure));
    assert_false(eval_is_correct("204", "Final Answer:", &unsure));
    assert_true(eval_is_correct("100000000000000000000000", "0100000000000000000000000", &unsure)); /* any length */
}

/* Step-conditional control is measured in steps (SPEC.md §5): a point asking for N steps is
 * within its budget when its average steps are, whatever its tokens. */
static void test_control_in_steps(void **st) {
    (void)st;
    eval_point p[3] = {pt(4, 0.2, 900), pt(8, 0.3, 1500), pt(16, 0.4, 3000)};
    p[0].steps = p[1].steps = p[2].steps = true;
    p[0].avg_thinking_steps = 3.5;  /* within 4 */
    p[1].avg_thinking_steps = 9.0;  /* over 8 */
    p[2].avg_thinking_steps = 16.0; /* exactly 16: within */
    assert_true(fabs(eval_control(p, 3) - 2.0 / 3.0) < 1e-12);
    /* the same points read as token budgets would all be over */
    p[0].steps = p[1].steps = p[2].steps = false;
    assert_true(eval_control(p, 3) == 0);
}

static void test_count_steps(void **st) {
    (void)st;
    /* s1's step-conditional-control model counts down before each step */
    assert_int_equal(eval_count_steps("\n<|im_start|>3 steps left\nA.\n<|im_start|>2 steps left\nB.\n\nC.\n<|im_start|>1 step left\nD."), 3);
    assert_int_equal(eval_count_steps("12 steps left\nfirst\n11 steps left\nsecond"), 2);
    assert_int_equal(eval_count_steps("<|im_start|>step1\nx\n<|im_start|>step2\ny"), 2); /* its earlier model */
    /* no markers (a model that was only prompted): paragraphs */
    assert_int_equal(eval_count_steps("First, 2+2.\nThat is 4.\n\nCheck: 4-2=2.\n\n\n  \nSo 4."), 3);
    assert_int_equal(eval_count_steps(""), 0);
    assert_int_equal(eval_count_steps("\n\n  \n"), 0);
    /* "steps left" inside a sentence is no marker */
    assert_int_equal(eval_count_steps("There are 3 steps left to do.\n\nDone."), 2);
}

/* The bar and ETA of eval's (and train's) progress line (src/base/progress.c). */
static void test_progress_pieces(void **st) {
    (void)st;
    char bar[32], d[32];
    s1c_progress_bar(bar, 10, 0.0);
    assert_string_equal(bar, "[..........]");
    s1c_progress_bar(bar, 24, 1.0 / 3.0); /* 8 of 24 cells exactly, despite 1/3's rounding */
    assert_string_equal(bar, "[########................]");
    s1c_progress_bar(bar, 10, 1.7); /* clamped */
    assert_string_equal(bar, "[##########]");
    s1c_progress_bar(bar, 10, NAN);
    assert_string_equal(bar, "[..........]");
    s1c_fmt_duration(d, sizeof d, 42.9);
    assert_string_equal(d, "0m42s");
    s1c_fmt_duration(d, sizeof d, 725);
    assert_string_equal(d, "12m05s");
    s1c_fmt_duration(d, sizeof d, 3725);
    assert_string_equal(d, "1h02m");
    s1c_fmt_duration(d, sizeof d, -1);
    assert_string_equal(d, "0m00s");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_scaling_performance), cmocka_unit_test(test_control_in_steps),
        cmocka_unit_test(test_count_steps), cmocka_unit_test(test_progress_pieces), cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_builtin_benchmarks), cmocka_unit_test(test_bench_file_errors),
        cmocka_unit_test(test_correctness_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
