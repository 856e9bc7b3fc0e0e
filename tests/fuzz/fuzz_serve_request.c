/* libFuzzer target: s1c serve's request body -> request mapping (src/serve/request.c), then
 * what the server does next with an accepted request: the chat rendered in every template,
 * the text tokenized with Qwen2.5's tokenizer, the budget-forcing options resolved. The first
 * byte picks the endpoint (even: chat, odd: completions); the rest is the body. A body is
 * either refused with a 4xx and a message, or accepted with every field in its range. The
 * tokenizer is loaded once from $S1C_DATA (default ../shared/data). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/request.h"

static s1c_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *data = getenv("S1C_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/qwen2.5-tokenizer", data ? data : "../shared/data");
    s1c_err err;
    if (s1c_tok_load(&tok, path, 0, &err) != 0) {
        fprintf(stderr, "fuzz_serve_request: %s\n", err.msg);
        exit(1);
    }
    return 0;
}

static void check_accepted(const srv_req *r, const s1c_serve_opts *d) {
    if (r->n < 1 || r->n > d->max_n) __builtin_trap();
    if (r->max_tokens < -1 || r->max_tokens == 0) __builtin_trap();
    if (r->n_stops > SRV_MAX_STOPS) __builtin_trap();
    for (int i = 0; i < r->n_stops; i++)
        if (!r->stops[i][0]) __builtin_trap();
    if (r->top_logprobs < 0 || r->top_logprobs > 20) __builtin_trap();
    if (r->kind == SRV_CHAT && r->n_msgs < 1) __builtin_trap();
    if (r->kind == SRV_COMPLETION && r->n_prompts < 1) __builtin_trap();
    if (r->bf.max_thinking_tokens >= 0 && r->bf.min_thinking_tokens > r->bf.max_thinking_tokens) __builtin_trap();
}

/* What the server does with an accepted request before it queues it. */
static void use(const srv_req *r) {
    s1c_err err;
    for (int t = 0; r->kind == SRV_CHAT && t <= S1C_CHAT_R1_DISTILL; t++) {
        char *text = s1c_chat_render(t, r->msgs, r->n_msgs, true, &err);
        int32_t *ids = NULL;
        int n = 0;
        if (text && s1c_tok_encode_ex(tok, text, strlen(text), S1C_ENC_SPECIAL, &ids, &n, &err) == 0) free(ids);
        free(text);
    }
    for (int i = 0; r->kind == SRV_COMPLETION && i < r->n_prompts; i++) {
        if (!r->prompts[i].text) continue;
        int32_t *ids = NULL;
        int n = 0;
        if (s1c_tok_encode_ex(tok, r->prompts[i].text, strlen(r->prompts[i].text), S1C_ENC_SPECIAL, &ids, &n, &err) == 0) free(ids);
    }
    if (r->bf_on) {
        s1c_bf *bf = NULL;
        if (s1c_bf_new(&bf, &r->bf, tok, 4096, NULL, &err) == 0) s1c_bf_free(bf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    s1c_serve_opts d = s1c_serve_defaults();
    static const char *const stops[] = {"\n\n"};
    d.stops = stops;
    d.n_stops = data[0] & 2 ? 1 : 0; /* with and without a server-wide stop string */
    d.bf_on = (data[0] & 4) != 0;
    srv_req r;
    srv_error e = {0};
    int rc = srv_parse_request(&r, data[0] & 1 ? SRV_COMPLETION : SRV_CHAT, (const char *)data + 1, size - 1, &d, &e);
    if (rc != 0) {
        if (e.status < 400 || e.status > 599 || !e.message[0] || !memchr(e.message, 0, sizeof e.message)) __builtin_trap();
    } else {
        check_accepted(&r, &d);
        use(&r);
    }
    srv_req_free(&r);
    return 0;
}
