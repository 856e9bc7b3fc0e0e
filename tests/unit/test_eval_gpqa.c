/* GPQA from a user's file: the official CSV (quoted commas, doubled quotes, newlines inside
 * fields, a byte-order mark), JSONL in the same columns or as question/choices/answer; the
 * seeded shuffle, SPEC.md §7's prompt, the gold letter and its mapping; grading by letter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "s1c/eval.h"

static char *tmp_file(const char *name, const char *text) {
    char *p = tu_path("S1C_TMP", name);
    assert_int_equal(tu_write(p, text, strlen(text)), 0);
    return p;
}

/* The choice the gold letter names in the prompt must be the correct answer. */
static bool starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

static void assert_gold_is(const eval_problem *p, const char *correct) {
    char want[256];
    snprintf(want, sizeof want, "\n%s) %s", p->gold, correct);
    assert_non_null(strstr(p->question, want));
}

static const char csv[] =
    "\xEF\xBB\xBFRecord ID,Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3,Extra\n"
    "rec1,\"What is 2+2, really?\",4,3,5,\"six, or \"\"6\"\"\",x\n"
    "rec2,\"Two\nlines\",right,wrong1,wrong2,wrong3,\"y\"\r\n"
    "\n";

static void test_csv(void **state) {
    (void)state;
    char *path = tmp_file("gpqa.csv", csv);
    eval_bench b;
    s1c_err err;
    assert_int_equal(eval_bench_gpqa(&b, path, 0, &err), 0);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.p[0].id, "rec1");
    assert_true(starts_with(b.p[0].question, "What is 2+2, really?\n\nA) "));
    assert_gold_is(&b.p[0], "4");
    assert_non_null(strstr(b.p[0].question, ") six, or \"6\""));
    assert_true(starts_with(b.p[1].question, "Two\nlines\n\nA) "));
    assert_gold_is(&b.p[1], "right");
    assert_non_null(strstr(b.p[0].meta, "\"correct_answer\":\"4\""));
    /* the same seed gives the same shuffle; another seed (over a few problems) another one */
    eval_bench b2;
    assert_int_equal(eval_bench_gpqa(&b2, path, 0, &err), 0);
    assert_string_equal(b.p[0].question, b2.p[0].question);
    eval_bench_free(&b2);
    int differs = 0;
    for (uint64_t seed = 1; seed < 8; seed++) {
        assert_int_equal(eval_bench_gpqa(&b2, path, seed, &err), 0);
        differs += strcmp(b.p[0].question, b2.p[0].question) != 0;
        assert_gold_is(&b2.p[0], "4");
        eval_bench_free(&b2);
    }
    assert_true(differs > 0);
    eval_bench_free(&b);
    free(path);
}

static void test_jsonl_and_errors(void **state) {
    (void)state;
    char *path = tmp_file("gpqa.jsonl",
                          "{\"question\": \"Pick\", \"choices\": [\"a\", \"b\", \"c\", \"d\"], \"answer\": 2, \"id\": \"j1\"}\n"
                          "{\"Question\": \"Q\", \"Correct Answer\": \"yes\", \"Incorrect Answer 1\": \"n1\", "
                          "\"Incorrect Answer 2\": \"n2\", \"Incorrect Answer 3\": \"n3\"}\n");
    eval_bench b;
    s1c_err err;
    assert_int_equal(eval_bench_gpqa(&b, path, 0, &err), 0);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.p[0].question, "Pick\n\nA) a\nB) b\nC) c\nD) d"); /* a given list keeps its order */
    assert_string_equal(b.p[0].gold, "C");
    assert_gold_is(&b.p[1], "yes");
    eval_bench_free(&b);
    free(path);
    path = tmp_file("gpqa_bad.jsonl", "{\"question\": \"Pick\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n");
    assert_int_equal(eval_bench_gpqa(&b, path, 0, &err), -1);
    assert_non_null(strstr(err.msg, "gpqa_bad.jsonl:1:"));
    free(path);
    path = tmp_file("gpqa_bad.csv", "Question,Correct Answer\nq,a\n");
    assert_int_equal(eval_bench_gpqa(&b, path, 0, &err), -1);
    assert_non_null(strstr(err.msg, "Incorrect Answer 1"));
    free(path);
    path = tmp_file("gpqa_bad2.csv", "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\n\"open,a,b,c,d\n");
    assert_int_equal(eval_bench_gpqa(&b, path, 0, &err), -1);
    assert_non_null(strstr(err.msg, "unterminated"));
    free(path);
}

static void test_letters(void **state) {
    (void)state;
    assert_int_equal(eval_choice_letter("B"), 'B');
    assert_int_equal(eval_choice_letter("(C)"), 'C');
    assert_int_equal(eval_choice_letter("D) the last one"), 'D');
    assert_int_equal(eval_choice_letter("\\text{A}"), 'A');
    assert_int_equal(eval_choice_letter("A."), 'A');
    assert_int_equal(eval_choice_letter("Because"), 0);
    assert_int_equal(eval_choice_letter("E"), 0);
    bool unsure;
    assert_true(eval_is_correct("B", "(B)", &unsure));
    assert_false(eval_is_correct("B", "C", &unsure));
    assert_false(eval_is_correct("B", "Because", &unsure));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_jsonl_and_errors),
        cmocka_unit_test(test_letters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
