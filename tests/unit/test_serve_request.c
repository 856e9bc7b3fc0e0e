/* s1c serve's request mapping (src/serve/request.c) without a server: OpenAI's fields and
 * defaults, SPEC.md §8's budget-forcing names and every alias, reasoning_effort, content parts,
 * earlier turns' reasoning dropped, and the 400s (with the parameter named) for bad values. */
#include <stdio.h>
#include <string.h>

#include "serve/request.h"
#include "testutil.h"

static s1c_serve_opts defaults(void) {
    s1c_serve_opts d = s1c_serve_defaults();
    d.effort_budgets[0] = 10, d.effort_budgets[1] = 20, d.effort_budgets[2] = 30;
    return d;
}

static int parse(srv_req *r, int kind, const char *body, srv_error *e) {
    s1c_serve_opts d = defaults();
    memset(e, 0, sizeof *e);
    return srv_parse_request(r, kind, body, strlen(body), &d, e);
}

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]"

static void test_openai_fields(void **st) {
    (void)st;
    srv_req r;
    srv_error e;
    assert_int_equal(parse(&r, SRV_CHAT, "{" MSG "}", &e), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.max_tokens, -1);
    assert_true(r.sampler.temperature == 1.0f); /* OpenAI's default */
    assert_false(r.bf_on);
    srv_req_free(&r);
    assert_int_equal(parse(&r, SRV_CHAT, "{" MSG ",\"max_completion_tokens\":7,\"temperature\":0,\"top_p\":0.5,\"seed\":-3,\"stop\":[\"a\",\"b\"],"
                                      "\"n\":3,\"stream\":true,\"stream_options\":{\"include_usage\":true},\"logprobs\":true,\"top_logprobs\":4,\"whatever\":[1]}", &e), 0);
    assert_int_equal(r.max_tokens, 7);
    assert_true(r.sampler.temperature == 0.0f && r.sampler.top_p == 0.5f && r.seed_set && r.sampler.seed == (uint64_t)-3);
    assert_int_equal(r.n_stops, 2);
    assert_int_equal(r.n, 3);
    assert_true(r.stream && r.include_usage && r.logprobs);
    assert_int_equal(r.top_logprobs, 4);
    srv_req_free(&r);
    /* completions: prompts of every shape; logprobs is a count there */
    assert_int_equal(parse(&r, SRV_COMPLETION, "{\"prompt\":[\"a\",[1,2,3]],\"logprobs\":2,\"echo\":true}", &e), 0);
    assert_int_equal(r.n_prompts, 2);
    assert_string_equal(r.prompts[0].text, "a");
    assert_int_equal(r.prompts[1].n_ids, 3);
    assert_true(r.logprobs && r.echo);
    assert_int_equal(r.top_logprobs, 2);
    srv_req_free(&r);
    assert_int_equal(parse(&r, SRV_COMPLETION, "{\"prompt\":[5,6]}", &e), 0);
    assert_int_equal(r.n_prompts, 1);
    assert_int_equal(r.prompts[0].n_ids, 2);
    srv_req_free(&r);
}

static void test_budget_names(void **st) {
    (void)st;
    static const char *names[] = {"max_thinking_tokens", "thinking_budget", "thinking_token_budget", "thinking_budget_tokens", "reasoning_budget_tokens"};
    srv_req r;
    srv_error e;
    char body[512];
    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof body, "{" MSG ",\"%s\":42}", names[i]);
        assert_int_equal(parse(&r, SRV_CHAT, body, &e), 0);
        assert_true(r.bf_on);
        assert_int_equal(r.bf.max_thinking_tokens, 42);
        srv_req_free(&r);
    }
    assert_int_equal(parse(&r, SRV_CHAT, "{" MSG ",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":9},\"num_ignore\":2,\"min_thinking_tokens\":3,"
                                      "\"wait_str\":\" Hmm\",\"answer_prefix\":\"A:\",\"think_start\":\"<think>\",\"think_end\":\"</think>\",\"max_answer_tokens\":0}", &e), 0);
    assert_int_equal(r.bf.max_thinking_tokens, 9);
    assert_int_equal(r.bf.num_waits, 2);
    assert_int_equal(r.bf.min_thinking_tokens, 3);
    assert_int_equal(r.bf.max_answer_tokens, 0);
    assert_string_equal(r.bf.wait_str, " Hmm");
    assert_string_equal(r.bf.think_end, "</think>");
    srv_req_free(&r);
    assert_int_equal(parse(&r, SRV_CHAT, "{" MSG ",\"thinking_n_ignore\":4,\"max_thinking_tokens\":\"auto\"}", &e), 0);
    assert_int_equal(r.bf.num_waits, 4);
    assert_int_equal(r.bf.max_thinking_tokens, S1C_BF_AUTO);
    srv_req_free(&r);
    /* effort maps to the server's budgets; an explicit budget wins; "disabled" thinks 0 tokens */
    assert_int_equal(parse(&r, SRV_CHAT, "{" MSG ",\"reasoning_effort\":\"medium\"}", &e), 0);
    assert_int_equal(r.bf.max_thinking_tokens, 20);
    srv_req_free(&r);
    assert_int_equal(parse(&r, SRV_CHAT, "{" MSG ",\"reasoning_effort\":\"low\",\"thinking_budget\":5}", &e), 0);
    assert_int_equal(r.bf.max_thinking_tokens, 5);
    srv_req_free(&r);
    assert_int_equal(parse(&r, SRV_CHAT, "{" MSG ",\"thinking\":{\"type\":\"disabled\"}}", &e), 0);
    assert_int_equal(r.bf.max_thinking_tokens, 0);
    srv_req_free(&r);
    /* two names that agree are fine; two that disagree are not */
    assert_int_equal(parse(&r, SRV_CHAT, "{" MSG ",\"thinking_budget\":5,\"max_thinking_tokens\":5}", &e), 0);
    srv_req_free(&r);
    assert_int_equal(parse(&r, SRV_CHAT, "{" MSG ",\"thinking_budget\":5,\"max_thinking_tokens\":6}", &e), -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "thinking_budget");
    srv_req_free(&r);
}

static void test_messages(void **st) {
    (void)st;
    srv_req r;
    srv_error e;
    assert_int_equal(parse(&r, SRV_CHAT, "{\"messages\":[{\"role\":\"developer\",\"content\":\"sys\"},"
                                      "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},"
                                      "{\"role\":\"assistant\",\"content\":\"<|im_start|>think\\nhidden\\n<|im_start|>answer\\nshown\",\"reasoning_content\":\"x\"},"
                                      "{\"role\":\"assistant\",\"content\":\"<think>r</think>\\n\\nkept\"},{\"role\":\"assistant\",\"content\":null},"
                                      "{\"role\":\"user\",\"content\":\"q\"}]}", &e), 0);
    assert_int_equal(r.n_msgs, 6);
    assert_string_equal(r.msgs[0].role, "system");
    assert_string_equal(r.msgs[1].content, "ab");
    assert_string_equal(r.msgs[2].content, "shown");
    assert_string_equal(r.msgs[3].content, "kept");
    assert_string_equal(r.msgs[4].content, "");
    srv_req_free(&r);
}

static void test_bad_values(void **st) {
    (void)st;
    static const struct { const char *body, *param; } cases[] = {
        {"{" MSG ",\"temperature\":3}", "temperature"}, {"{" MSG ",\"temperature\":\"0\"}", "temperature"},
        {"{" MSG ",\"max_tokens\":0}", "max_tokens"}, {"{" MSG ",\"max_tokens\":2.5}", "max_tokens"},
        {"{" MSG ",\"n\":17}", "n"}, {"{" MSG ",\"seed\":1e300}", "seed"}, {"{" MSG ",\"stop\":[1]}", "stop"},
        {"{" MSG ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]}", "stop"},
        {"{" MSG ",\"logprobs\":1}", "logprobs"}, {"{" MSG ",\"top_logprobs\":21,\"logprobs\":true}", "top_logprobs"},
        {"{" MSG ",\"max_thinking_tokens\":-1}", "max_thinking_tokens"}, {"{" MSG ",\"num_waits\":true}", "num_waits"},
        {"{" MSG ",\"min_thinking_tokens\":5,\"max_thinking_tokens\":4}", "min_thinking_tokens"},
        {"{" MSG ",\"reasoning_effort\":\"extreme\"}", "reasoning_effort"}, {"{" MSG ",\"thinking\":{\"type\":\"on\"}}", "thinking.type"},
        {"{" MSG ",\"think_end\":\"\"}", "think_end"}, {"{" MSG ",\"enable_thinking\":1}", "enable_thinking"},
        {"{\"messages\":[]}", "messages"}, {"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages[0].role"},
        {"{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}", "messages[0].content"},
        {"{" MSG ",\"model\":5}", "model"}, {"{" MSG ",\"stream_options\":[]}", "stream_options"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        srv_req r;
        srv_error e;
        if (parse(&r, SRV_CHAT, cases[i].body, &e) != -1 || e.status != 400 || strcmp(e.param, cases[i].param) || !e.message[0])
            fail_msg("%s: status %d param '%s' (%s)", cases[i].body, e.status, e.param, e.message);
        srv_req_free(&r);
    }
    srv_req r;
    srv_error e;
    assert_int_equal(parse(&r, SRV_COMPLETION, "{\"prompt\":[]}", &e), -1);
    srv_req_free(&r);
    assert_int_equal(parse(&r, SRV_COMPLETION, "{\"prompt\":[[1],[-1]]}", &e), -1);
    assert_string_equal(e.param, "prompt[1]");
    srv_req_free(&r);
    assert_int_equal(parse(&r, SRV_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":6}", &e), -1);
    srv_req_free(&r);
    assert_int_equal(parse(&r, SRV_CHAT, "{\"messages\":", &e), -1);
    assert_null(e.param[0] ? e.param : NULL);
    srv_req_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_fields), cmocka_unit_test(test_budget_names),
        cmocka_unit_test(test_messages), cmocka_unit_test(test_bad_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
