/* The SFT dataset with Qwen2.5's tokenizer: s1's format, the loss mask's exact boundaries,
 * the s1K-1.1 layouts, targets and loss weights, and the run's order (epochs, packing). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "s1c/train.h"

static s1c_tokenizer *qwen_tok(void) {
    char *dir = tu_path("S1C_DATA", "qwen2.5-tokenizer");
    s1c_tokenizer *t;
    s1c_err err;
    if (s1c_tok_load(&t, dir, 0, &err) != 0) fail_msg("%s", err.msg);
    free(dir);
    return t;
}

static char *write_tmp(const char *name, const char *text) {
    char *path = tu_path("S1C_TMP", name);
    assert_int_equal(tu_write(path, text, strlen(text)), 0);
    return path;
}

/* ids[from, to) must be exactly the encoding of text (special tokens matched). */
static void assert_tokens_are(const s1c_tokenizer *t, const int32_t *ids, int from, int to, const char *text) {
    int32_t *want;
    int n;
    s1c_err err;
    assert_int_equal(s1c_tok_encode_ex(t, text, strlen(text), S1C_ENC_SPECIAL, &want, &n, &err), 0);
    assert_int_equal(to - from, n);
    assert_memory_equal(ids + from, want, (size_t)n * sizeof *want);
    free(want);
}

static s1c_sft_load_opts opts(const char *layout) {
    s1c_sft_load_opts o = {.block_size = 32768, .chat_template = -1};
    assert_int_equal(s1c_sft_fields_preset(&o.fields, layout, NULL), 0);
    return o;
}

/* The loss starts right after "<|im_start|>assistant\n" and ends with "<|im_end|>\n". */
static void test_mask_boundaries(void **state) {
    (void)state;
    s1c_tokenizer *t = qwen_tok();
    char *path = write_tmp("sft_a.jsonl", "{\"question\": \"What is 1+1?\", \"thinking_trajectories\": "
                                          "[\"  I add.\", \"1+1=2 \"], \"attempt\": \"2\", \"extra\": 5}\n");
    s1c_sft_load_opts o = opts("s1k");
    s1c_sft_data d;
    s1c_err err;
    assert_int_equal(s1c_sft_load(&d, path, t, &o, &err), 0);
    assert_int_equal(d.n, 1);
    const s1c_sft_sample *s = &d.s[0];
    int first = 0;
    while (first < s->n && s->label[first] < 0) first++;
    /* s1's prompt with Qwen2.5's default system turn, then the trajectories joined with a
     * newline and stripped, and "Answer: " put before the attempt */
    assert_tokens_are(t, s->token, 0, first,
                      "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                      "<|im_start|>user\nWhat is 1+1?<|im_end|>\n<|im_start|>assistant\n");
    assert_tokens_are(t, s->token, first, s->n, "<|im_start|>think\nI add.\n1+1=2\n<|im_start|>answer\nAnswer: 2<|im_end|>\n");
    for (int i = first; i < s->n; i++) assert_int_equal(s->label[i], s->token[i]);
    assert_int_equal(s->token[s->n - 2], 151645); /* <|im_end|> */
    /* rendering the prompt with the model's own template (Qwen2.5's) gives the same tokens */
    s1c_sft_data d2;
    o.chat_template = s1c_tok_chat_template(t);
    assert_int_equal(o.chat_template, S1C_CHAT_QWEN25);
    assert_int_equal(s1c_sft_load(&d2, path, t, &o, &err), 0);
    assert_int_equal(d2.s[0].n, s->n);
    assert_memory_equal(d2.s[0].token, s->token, (size_t)s->n * sizeof *s->token);
    assert_memory_equal(d2.s[0].label, s->label, (size_t)s->n * sizeof *s->label);
    s1c_sft_free(&d2);
    s1c_sft_free(&d);
    free(path);
    s1c_tok_free(t);
}

static void test_layouts_and_errors(void **state) {
    (void)state;
    s1c_tokenizer *t = qwen_tok();
    char *path = write_tmp("sft_b.jsonl",
                           "{\"question\": \"Q\", \"deepseek_thinking_trajectory\": \"think\", \"deepseek_attempt\": "
                           "\"Answer: 7\"}\n\n{\"question\": \"Q2\", \"deepseek_attempt\": \"x\"}\n");
    s1c_sft_load_opts o = opts("s1k-1.1");
    s1c_sft_data d;
    s1c_err err;
    assert_int_equal(s1c_sft_load(&d, path, t, &o, &err), -1);
    assert_non_null(strstr(err.msg, "sft_b.jsonl:3:"));
    assert_non_null(strstr(err.msg, "deepseek_thinking_trajectory"));
    o.skip_bad = true;
    assert_int_equal(s1c_sft_load(&d, path, t, &o, &err), 0);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.n_skip, 1);
    assert_int_equal(d.skip[0].line, 3);
    int first = 0;
    while (d.s[0].label[first] < 0) first++;
    /* the attempt already says "Answer:": no second one */
    assert_tokens_are(t, d.s[0].token, first, d.s[0].n, "<|im_start|>think\nthink\n<|im_start|>answer\nAnswer: 7<|im_end|>\n");
    s1c_sft_free(&d);
    assert_int_equal(s1c_sft_fields_preset(&o.fields, "nope", &err), -1);
    free(path);
    s1c_tok_free(t);
}

/* Targets never cross a segment; weights make each sample's mean count once per step. */
static void test_targets_weights(void **state) {
    (void)state;
    int32_t label[8] = {-100, -100, 5, 6, -100, 7, 8, 9}, seg[8] = {0, 0, 0, 0, 1, 1, 1, 1}, target[8];
    float w[8];
    s1c_targets_from_labels(target, label, seg, 8);
    int32_t want[8] = {-1, 5, 6, -1, 7, 8, 9, -1};
    assert_memory_equal(target, want, sizeof want);
    assert_int_equal(s1c_row_samples(target, seg, 8), 2);
    s1c_loss_weights(w, target, seg, 8, 4);
    assert_float_equal(w[1], 1.0f / (2 * 4), 1e-9);
    assert_float_equal(w[4], 1.0f / (3 * 4), 1e-9);
    assert_float_equal(w[3], 0.0f, 0);
    s1c_targets_from_labels(target, label, NULL, 8);
    assert_int_equal(target[3], -1); /* label[4] is -100 */
    assert_int_equal(s1c_row_samples(target, NULL, 8), 1);
}

static void fake_data(s1c_sft_data *d, int n) {
    memset(d, 0, sizeof *d);
    d->n = n;
    d->s = calloc((size_t)n, sizeof *d->s);
    for (int i = 0; i < n; i++) d->s[i].n = 10 + (i * 7) % 23;
}

static void test_plan(void **state) {
    (void)state;
    s1c_sft_data d;
    fake_data(&d, 37);
    s1c_sft_plan pl;
    s1c_err err;
    assert_int_equal(s1c_sft_plan_new(&pl, &d, 16, 3, false, 64, 42, &err), 0);
    assert_int_equal(pl.n_rows, 37);
    assert_int_equal(pl.steps_per_epoch, 3); /* ceil(37/16), no drop_last */
    assert_int_equal(pl.total_steps, 9);
    /* every row once per epoch; epochs in different orders; the same order for the same seed */
    int seen[37], rows[16], first_epoch[37], k = 0;
    for (int e = 0; e < 3; e++) {
        memset(seen, 0, sizeof seen);
        int order[37], m = 0;
        for (int s = 0; s < 3; s++) {
            int n = s1c_sft_step_rows(&pl, e * 3 + s, rows);
            assert_int_equal(n, s < 2 ? 16 : 5);
            for (int i = 0; i < n; i++) seen[rows[i]]++, order[m++] = rows[i];
        }
        for (int i = 0; i < 37; i++) assert_int_equal(seen[i], 1);
        if (e == 0) memcpy(first_epoch, order, sizeof order);
        else k += memcmp(first_epoch, order, sizeof order) != 0;
    }
    assert_int_equal(k, 2);
    s1c_sft_plan_free(&pl);
    /* packing: rows hold consecutive samples up to the block size, every sample once */
    assert_int_equal(s1c_sft_plan_new(&pl, &d, 4, 1, true, 64, 42, &err), 0);
    assert_true(pl.n_rows < 37);
    int count = 0;
    for (int r = 0; r < pl.n_rows; r++) {
        int len = 0;
        for (int i = 0; i < pl.row_len[r]; i++) len += d.s[pl.order[pl.row_start[r] + i]].n;
        assert_true(len <= 64);
        count += pl.row_len[r];
    }
    assert_int_equal(count, 37);
    s1c_sft_plan_free(&pl);
    free(d.s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_boundaries),
        cmocka_unit_test(test_layouts_and_errors),
        cmocka_unit_test(test_targets_weights),
        cmocka_unit_test(test_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
