/* Budget forcing against a scripted model: a hook in front of the controller replaces every
 * drawn token by the next token of a script, so each branch of SPEC.md §8 is driven exactly
 * and the committed token stream and the accounting are asserted. The vocabulary is a tiny
 * byte-level one (256 byte tokens + <|im_start|> + <|im_end|>), so delimiters and the ignore
 * string are several tokens long, as they can be with real tokenizers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/infer.h"
#include "testutil.h"

#define IM_START 256
#define IM_END 257
#define V 258

static s1c_model *model;
static s1c_tokenizer *tok;

/* GPT-2's byte symbol for b, as UTF-8. */
static void byte_symbol(int b, char *out) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    int cp = b;
    if (!printable) {
        int n = 0;
        for (int k = 0; k < b; k++) n += !((k >= 0x21 && k <= 0x7E) || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF));
        cp = 256 + n;
    }
    if (cp < 0x80) { out[0] = (char)cp; out[1] = 0; }
    else { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); out[2] = 0; }
}

static int setup(void **st) {
    (void)st;
    s1c_err err;
    static char syms[256][4];
    const char *toks[V];
    int32_t types[V];
    for (int b = 0; b < 256; b++) { byte_symbol(b, syms[b]); toks[b] = syms[b]; types[b] = 1; }
    toks[IM_START] = "<|im_start|>";
    toks[IM_END] = "<|im_end|>";
    types[IM_START] = types[IM_END] = 3;
    gguf_writer *w = gguf_writer_new();
    gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_w_str(w, "tokenizer.ggml.pre", "qwen2");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", toks, V);
    gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, V);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", IM_END);
    char *tp = tu_path("S1C_TMP", "bf_vocab.gguf");
    assert_int_equal(gguf_writer_write(w, tp, &err), 0);
    gguf_writer_free(w);
    if (s1c_tok_load(&tok, tp, 0, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return -1; }
    s1c_config c;
    s1c_config_preset(&c, "qwen2", "tiny", &err);
    c.vocab_size = V;
    c.n_layers = 1;
    c.max_seq_len = 512;
    char *mp = tu_path("S1C_TMP", "bf_model");
    assert_int_equal(s1c_model_init_hf(&c, 3, S1C_F32, mp, &err), 0);
    if (s1c_model_open(&model, mp, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return -1; }
    free(tp);
    free(mp);
    return 0;
}

static int teardown(void **st) {
    (void)st;
    s1c_tok_free(tok);
    s1c_model_free(model);
    return 0;
}

/* ------------------------------------------------------------------ the scripted run */

typedef struct script {
    const int32_t *tok;
    int n, at;
    s1c_bf *bf;
    int bans_seen; /* draws after which the controller asked to ban the end of thinking */
} script;

typedef struct scripted_state {
    int step;
    s1c_bf_state bf;
} scripted_state;

static void scripted_hook(s1c_engine *e, int id, void *user, void *state, s1c_step_io *io) {
    script *sc = user;
    scripted_state *ss = state;
    io->token = ss->step < sc->n ? sc->tok[ss->step] : 'x'; /* past the script: ordinary text */
    ss->step++;
    s1c_bf_hook(e, id, sc->bf, &ss->bf, io);
    if (io->n_ban > 0) sc->bans_seen++;
}

typedef struct run_out {
    int32_t tok[600];
    int n;
    s1c_bf_state st;
    int stop_reason, bans;
} run_out;

static int enc(const char *s, int32_t *out) {
    int32_t *ids;
    int n;
    s1c_err err;
    assert_int_equal(s1c_tok_encode_ex(tok, s, strlen(s), S1C_ENC_SPECIAL, &ids, &n, &err), 0);
    memcpy(out, ids, (size_t)n * 4);
    free(ids);
    return n;
}

static void run(const s1c_bf_opts *o, const int32_t *scr, int n_scr, int max_new, run_out *out) {
    s1c_err err;
    s1c_bf *bf;
    if (s1c_bf_new(&bf, o, tok, 512, NULL, &err) != 0) fail_msg("%s", err.msg);
    s1c_engine *e;
    assert_int_equal(s1c_engine_new(&e, model, NULL, &err), 0);
    int32_t prompt[64];
    int np = enc("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<|im_start|>think", prompt);
    script sc = {scr, n_scr, 0, bf, 0};
    scripted_state init = {0, s1c_bf_state_init(bf, np)};
    s1c_seq_params p = {.prompt = prompt, .n_prompt = np, .max_new_tokens = max_new, .sampler = s1c_sampler_defaults(),
                        .hook = scripted_hook, .user = &sc, .state = &init, .state_size = sizeof init};
    assert_true(s1c_engine_submit(e, &p, &err) >= 0);
    assert_int_equal(s1c_engine_run(e, &err), 0);
    s1c_seq_result r;
    assert_int_equal(s1c_engine_poll(e, &r), 1);
    memcpy(out->tok, r.tokens, (size_t)r.n_tokens * 4);
    out->n = r.n_tokens;
    out->st = ((scripted_state *)r.state)->bf;
    out->stop_reason = s1c_bf_stop_reason(&out->st, r.stop_reason);
    out->bans = sc.bans_seen;
    s1c_seq_result_free(&r);
    s1c_engine_free(e);
    s1c_bf_free(bf);
}

/* Expected stream: the concatenation of encoded pieces (special tokens parsed). */
static int expect(int32_t *out, const char *const *pieces) {
    int n = 0;
    for (int i = 0; pieces[i]; i++) n += enc(pieces[i], out + n);
    return n;
}

static void assert_stream(const run_out *r, const char *const *pieces) {
    int32_t want[600];
    int n = expect(want, pieces);
    if (r->n != n || memcmp(r->tok, want, (size_t)n * 4) != 0) {
        char got[2048] = {0}, exp[2048] = {0};
        for (int i = 0; i < r->n && i < 200; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", r->tok[i]);
        for (int i = 0; i < n && i < 200; i++) snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%d ", want[i]);
        fail_msg("token stream differs\n got  %s\n want %s", got, exp);
    }
}

/* ------------------------------------------------------------------ branches */

static void test_natural_end(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    int32_t scr[64];
    int n = expect(scr, (const char *const[]){"\nabc", "<|im_start|>", "\nZ. ", "<|im_end|>", NULL});
    run_out r;
    run(&o, scr, n, -1, &r);
    /* the drawn <|im_start|> is completed to <|im_start|>answer; the model then answers */
    assert_stream(&r, (const char *const[]){"\nabc<|im_start|>answer", "\nZ. <|im_end|>", NULL});
    assert_int_equal(r.st.thinking_tokens, 4);
    assert_int_equal(r.st.answer_tokens, 5); /* "\nZ. " and <|im_end|> */
    assert_int_equal(r.st.waits, 0);
    assert_int_equal(r.st.think_end_reason, S1C_STOP_THINK_END);
    assert_int_equal(r.stop_reason, S1C_STOP_ANSWER_END);
    assert_int_equal(r.st.think_end_at, 4);
    assert_int_equal(r.st.answer_at, 4 + 7);
}

static void test_budget_forced(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.max_thinking_tokens = 6;
    int32_t scr[64];
    int n = expect(scr, (const char *const[]){"\nabcdefghij", NULL});
    run_out r;
    run(&o, scr, n, 40, &r);
    /* 6 thinking tokens, then newline (text does not end in one) + <|im_start|>answer\nFinal Answer: */
    int32_t want[64];
    int k = expect(want, (const char *const[]){"\nabcde\n<|im_start|>answer\nFinal Answer:", NULL});
    assert_true(r.n >= k);
    assert_memory_equal(r.tok, want, (size_t)k * 4);
    assert_int_equal(r.st.thinking_tokens, 6);
    assert_int_equal(r.st.think_end_reason, S1C_STOP_BUDGET);
    assert_int_equal(r.st.answer_at, k);
}

static void test_budget_after_newline(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.max_thinking_tokens = 3;
    int32_t scr[8];
    int n = expect(scr, (const char *const[]){"ab\nc", NULL});
    run_out r;
    run(&o, scr, n, 20, &r);
    int32_t want[64];
    int k = expect(want, (const char *const[]){"ab\n<|im_start|>answer\nFinal Answer:", NULL}); /* no extra newline */
    assert_memory_equal(r.tok, want, (size_t)k * 4);
}

static void test_budget_zero(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.max_thinking_tokens = 0;
    o.max_answer_tokens = 3;
    int32_t scr[8];
    int n = expect(scr, (const char *const[]){"abc", NULL});
    run_out r;
    run(&o, scr, n, -1, &r);
    /* nothing is thought; the first draw is replaced by the forced end; the answer gets 3 tokens */
    assert_stream(&r, (const char *const[]){"\n<|im_start|>answer\nFinal Answer:", "bc", "x", NULL});
    assert_int_equal(r.st.thinking_tokens, 0);
    assert_int_equal(r.st.answer_tokens, 3);
    assert_int_equal(r.stop_reason, S1C_STOP_ANSWER_LIMIT);
}

static void test_im_end_inside_thinking(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    int32_t scr[16];
    int n = expect(scr, (const char *const[]){"\nab", "<|im_end|>", "\nA", "<|im_end|>", NULL});
    run_out r;
    run(&o, scr, n, -1, &r);
    assert_stream(&r, (const char *const[]){"\nab<|im_start|>answer", "\nA<|im_end|>", NULL});
    assert_int_equal(r.st.thinking_tokens, 3);
    assert_int_equal(r.st.think_end_reason, S1C_STOP_THINK_END);
}

static void test_waits(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.num_waits = 2;
    int32_t scr[32];
    int n = expect(scr, (const char *const[]){"\na", "<|im_start|>", "b", "<|im_end|>", "c", "<|im_start|>", "\n1", "<|im_end|>", NULL});
    run_out r;
    run(&o, scr, n, -1, &r);
    /* two ends become "Wait" (its own 4 tokens), the third stands */
    assert_stream(&r, (const char *const[]){"\naWaitbWaitc<|im_start|>answer", "\n1<|im_end|>", NULL});
    assert_int_equal(r.st.waits, 2);
    assert_int_equal(r.st.thinking_tokens, 2 + 4 + 1 + 4 + 1); /* injected ignore strings count */
    assert_int_equal(r.bans, 2); /* the end was banned for the draw after each Wait */
}

static void test_end_right_after_wait(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.num_waits = 1;
    int32_t scr[32];
    int n = expect(scr, (const char *const[]){"a", "<|im_start|>", "<|im_start|>", "\n", "<|im_end|>", NULL});
    run_out r;
    run(&o, scr, n, -1, &r);
    assert_stream(&r, (const char *const[]){"aWait<|im_start|>answer", "\n<|im_end|>", NULL});
    assert_int_equal(r.st.waits, 1);
}

static void test_wait_does_not_fit(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.num_waits = 3;
    o.max_thinking_tokens = 7;
    int32_t scr[32];
    int n = expect(scr, (const char *const[]){"abcd", "<|im_start|>", "xyz", NULL});
    run_out r;
    run(&o, scr, n, 30, &r);
    /* 4 thought + Wait (4) = 8 > 7: the end is forced instead of the ignore string */
    int32_t want[64];
    int k = expect(want, (const char *const[]){"abcd\n<|im_start|>answer\nFinal Answer:", NULL});
    assert_memory_equal(r.tok, want, (size_t)k * 4);
    assert_int_equal(r.st.waits, 0);
    assert_int_equal(r.st.thinking_tokens, 4);
    assert_int_equal(r.st.think_end_reason, S1C_STOP_BUDGET);
}

static void test_wait_fills_budget(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.num_waits = 1;
    o.max_thinking_tokens = 6;
    int32_t scr[32];
    int n = expect(scr, (const char *const[]){"ab", "<|im_start|>", "q", NULL});
    run_out r;
    run(&o, scr, n, 30, &r);
    /* 2 + Wait = 6 = the budget: the next draw is replaced by the forced end */
    int32_t want[64];
    int k = expect(want, (const char *const[]){"abWait\n<|im_start|>answer\nFinal Answer:", NULL});
    assert_memory_equal(r.tok, want, (size_t)k * 4);
    assert_int_equal(r.st.thinking_tokens, 6);
}

static void test_min_thinking(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.min_thinking_tokens = 8;
    int32_t scr[32];
    int n = expect(scr, (const char *const[]){"a", "<|im_start|>", "bc", "<|im_start|>", "<|im_start|>", "\n", "<|im_end|>", NULL});
    run_out r;
    run(&o, scr, n, -1, &r);
    /* 1 < 8: Wait; 1+4+2 = 7 < 8: Wait again; then 11 >= 8: the end stands */
    assert_stream(&r, (const char *const[]){"aWaitbcWait<|im_start|>answer", "\n<|im_end|>", NULL});
    assert_int_equal(r.st.waits, 2);
    assert_int_equal(r.st.thinking_tokens, 11);
}

static void test_empty_ignore_string(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.num_waits = 1;
    o.wait_str = "";
    int32_t scr[32];
    int n = expect(scr, (const char *const[]){"a", "<|im_start|>", "b", "<|im_start|>", "\n", "<|im_end|>", NULL});
    run_out r;
    run(&o, scr, n, -1, &r);
    /* "none": the end is only suppressed once */
    assert_stream(&r, (const char *const[]){"ab<|im_start|>answer", "\n<|im_end|>", NULL});
    assert_int_equal(r.st.waits, 1);
}

static void test_answer_prefix_and_limit(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.max_thinking_tokens = 2;
    o.answer_prefix = "";
    o.max_answer_tokens = 2;
    int32_t scr[32];
    int n = expect(scr, (const char *const[]){"a\n", "xyz", NULL});
    run_out r;
    run(&o, scr, n, -1, &r);
    assert_stream(&r, (const char *const[]){"a\n<|im_start|>answer\n", "xy", NULL});
    assert_int_equal(r.stop_reason, S1C_STOP_ANSWER_LIMIT);
}

static void test_s1_eval_compat(void **st) {
    (void)st;
    s1c_bf_opts o = s1c_bf_defaults();
    o.compat = S1C_BF_S1_EVAL;
    o.max_thinking_tokens = 5;
    o.num_waits = 1;
    int32_t scr[32];
    int n = expect(scr, (const char *const[]){"abc", "<|im_start|>", "defgh", NULL});
    run_out r;
    run(&o, scr, n, 40, &r);
    /* round 1: abc + Wait (no budget check); round 2 gets 5 tokens again: defgh. The joined
     * thinking (12 tokens) is then cut to 5 and the end forced after "abcWa" */
    int32_t want[64];
    int k = expect(want, (const char *const[]){"abcWa\n<|im_start|>answer\nFinal Answer:", NULL});
    assert_memory_equal(r.tok, want, (size_t)k * 4);
    assert_int_equal(r.st.thinking_tokens, 5);
    assert_int_equal(r.st.waits, 1);
}

static void test_bad_options(void **st) {
    (void)st;
    s1c_err err;
    s1c_bf *bf;
    s1c_bf_opts o = s1c_bf_defaults();
    o.max_thinking_tokens = -5;
    assert_int_equal(s1c_bf_new(&bf, &o, tok, 512, NULL, &err), -1);
    o = s1c_bf_defaults();
    o.min_thinking_tokens = 10;
    o.max_thinking_tokens = 5;
    assert_int_equal(s1c_bf_new(&bf, &o, tok, 512, NULL, &err), -1);
    o = s1c_bf_defaults();
    o.think_end = "";
    assert_int_equal(s1c_bf_new(&bf, &o, tok, 512, NULL, &err), -1);
    o = s1c_bf_defaults();
    o.num_waits = -1;
    assert_int_equal(s1c_bf_new(&bf, &o, tok, 512, NULL, &err), -1);
    assert_int_equal(s1c_bf_new(&bf, &o, NULL, 512, NULL, &err), -1);
    /* auto: context - prompt - forced suffix - 100 */
    o = s1c_bf_defaults();
    o.max_thinking_tokens = S1C_BF_AUTO;
    assert_int_equal(s1c_bf_new(&bf, &o, tok, 512, NULL, &err), 0);
    s1c_bf_state s = s1c_bf_state_init(bf, 40);
    int32_t tmp[64];
    int forced = enc("\n<|im_start|>answer\nFinal Answer:", tmp);
    assert_int_equal(s.max_thinking, 512 - 40 - forced - 100);
    s = s1c_bf_state_init(bf, 500);
    assert_int_equal(s.max_thinking, 0);
    s1c_bf_free(bf);
}

/* 1,000 random option sets and random scripts: every run ends, and in the normative mode
 * thinking_tokens <= max_thinking_tokens and equals the committed thinking length. */
static void test_random_combinations(void **st) {
    (void)st;
    s1c_rng rng;
    s1c_rng_seed(&rng, 2024);
    const char *waits[] = {"Wait", "", "Hmm", "Alternatively, let me see"};
    for (int it = 0; it < 1000; it++) {
        s1c_bf_opts o = s1c_bf_defaults();
        int mode = (int)(s1c_rng_u64(&rng) % 4);
        o.max_thinking_tokens = mode == 0 ? S1C_BF_UNLIMITED : (int)(s1c_rng_u64(&rng) % 30);
        o.min_thinking_tokens = o.max_thinking_tokens >= 0 ? (int)(s1c_rng_u64(&rng) % (o.max_thinking_tokens + 1)) : (int)(s1c_rng_u64(&rng) % 10);
        o.num_waits = (int)(s1c_rng_u64(&rng) % 5);
        o.wait_str = waits[s1c_rng_u64(&rng) % 4];
        o.max_answer_tokens = s1c_rng_u64(&rng) % 3 ? (int)(s1c_rng_u64(&rng) % 6) : S1C_BF_UNLIMITED;
        int32_t scr[40];
        int n = 1 + (int)(s1c_rng_u64(&rng) % 39);
        for (int i = 0; i < n; i++) {
            uint64_t x = s1c_rng_u64(&rng) % 10;
            scr[i] = x == 0 ? IM_START : x == 1 ? IM_END : x == 2 ? '\n' : 'a' + (int)(s1c_rng_u64(&rng) % 26);
        }
        run_out r;
        run(&o, scr, n, 200, &r);
        if (o.max_thinking_tokens >= 0 && r.st.thinking_tokens > o.max_thinking_tokens)
            fail_msg("run %d: %d thinking tokens > budget %d", it, r.st.thinking_tokens, o.max_thinking_tokens);
        int thought = r.st.think_end_at >= 0 ? r.st.think_end_at : r.n;
        if (r.st.thinking_tokens != thought) fail_msg("run %d: thinking_tokens %d, but %d tokens precede the end of thinking", it, r.st.thinking_tokens, thought);
        assert_true(r.n <= 200);
    }
}

/* Sweeps as forks: one scripted trajectory under the largest budget, the smaller budgets riding
 * along and forking where they would act differently, gives for every budget exactly the
 * tokens and accounting of a separate run with that budget (random scripts and options). */
typedef struct sweep_state {
    int step;
    s1c_bf_sweep_state sw;
} sweep_state;

static void scripted_sweep_hook(s1c_engine *e, int id, void *user, void *state, s1c_step_io *io) {
    script *sc = user;
    sweep_state *ss = state;
    io->token = ss->step < sc->n ? sc->tok[ss->step] : 'x';
    ss->step++;
    s1c_bf_sweep_hook(e, id, sc->bf, &ss->sw, io);
}

static void test_sweep_forks_equal_separate_runs(void **st) {
    (void)st;
    s1c_rng rng;
    s1c_rng_seed(&rng, 77);
    const char *waits[] = {"Wait", "", "Hmm"};
    s1c_err err;
    int32_t prompt[64];
    int np = enc("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<|im_start|>think", prompt);
    int forks_seen = 0;
    for (int it = 0; it < 150; it++) {
        s1c_bf_opts o = s1c_bf_defaults();
        o.num_waits = (int)(s1c_rng_u64(&rng) % 4);
        o.wait_str = waits[s1c_rng_u64(&rng) % 3];
        o.min_thinking_tokens = (int)(s1c_rng_u64(&rng) % 6);
        o.max_answer_tokens = 1 + (int)(s1c_rng_u64(&rng) % 4);
        int budgets[4] = {6 + (int)(s1c_rng_u64(&rng) % 4), 12 + (int)(s1c_rng_u64(&rng) % 6), 25, S1C_BF_UNLIMITED};
        int32_t scr[48];
        int n = 8 + (int)(s1c_rng_u64(&rng) % 40);
        for (int i = 0; i < n; i++) {
            uint64_t x = s1c_rng_u64(&rng) % 8;
            scr[i] = x == 0 ? IM_START : x == 1 ? IM_END : 'a' + (int)(s1c_rng_u64(&rng) % 26);
        }
        /* separate runs */
        run_out sep[4];
        for (int b = 0; b < 4; b++) {
            s1c_bf_opts ob = o;
            ob.max_thinking_tokens = budgets[b];
            run(&ob, scr, n, 200, &sep[b]);
        }
        /* one sweep: the unlimited budget carries 6.., 12.., 25 */
        s1c_bf *bf;
        assert_int_equal(s1c_bf_new(&bf, &o, tok, 512, NULL, &err), 0);
        s1c_engine *e;
        assert_int_equal(s1c_engine_new(&e, model, NULL, &err), 0);
        script sc = {scr, n, 0, bf, 0};
        sweep_state init = {0, {.bf = s1c_bf_state_init(bf, np), .pending = {budgets[0], budgets[1], budgets[2]}, .n_pending = 3}};
        init.sw.bf.max_thinking = S1C_BF_UNLIMITED;
        s1c_seq_params p = {.prompt = prompt, .n_prompt = np, .max_new_tokens = 200, .sampler = s1c_sampler_defaults(),
                            .hook = scripted_sweep_hook, .user = &sc, .state = &init, .state_size = sizeof init};
        assert_true(s1c_engine_submit(e, &p, &err) >= 0);
        assert_int_equal(s1c_engine_run(e, &err), 0);
        int covered = 0;
        s1c_seq_result r;
        while (s1c_engine_poll(e, &r)) {
            const sweep_state *ss = r.state;
            int mine[5], k = 0;
            mine[k++] = ss->sw.bf.max_thinking;
            for (int i = 0; i < ss->sw.n_pending; i++) mine[k++] = ss->sw.pending[i]; /* budgets that shared this result */
            forks_seen += r.parent >= 0;
            for (int q = 0; q < k; q++) {
                int b = 0;
                while (b < 4 && budgets[b] != mine[q]) b++;
                assert_true(b < 4);
                covered++;
                if (r.n_tokens != sep[b].n || memcmp(r.tokens, sep[b].tok, (size_t)r.n_tokens * 4) != 0)
                    fail_msg("run %d: budget %d: the sweep's tokens differ from the separate run (%d vs %d tokens)", it, budgets[b], r.n_tokens, sep[b].n);
                assert_int_equal(ss->sw.bf.thinking_tokens, sep[b].st.thinking_tokens);
                assert_int_equal(ss->sw.bf.waits, sep[b].st.waits);
            }
            s1c_seq_result_free(&r);
        }
        assert_int_equal(covered, 4);
        s1c_engine_free(e);
        s1c_bf_free(bf);
    }
    assert_true(forks_seen > 100); /* the budgets did fork off */
}

/* On stories260K (a real trained model), with "." as the end of thinking: budget forcing with
 * --waits 2 inside the engine gives exactly the tokens of s1's README loop, which re-prompts
 * with everything so far + the ignore string's ids after each stop (KV path = re-prompting). */
static int run_plain(s1c_engine *e, const int32_t *prompt, int n, int stop, int max_new, int32_t *out) {
    s1c_err err;
    /* s1's loop runs vLLM with min_tokens=1: the stop token cannot be the first one drawn */
    s1c_seq_params p = {.prompt = prompt, .n_prompt = n, .max_new_tokens = max_new, .sampler = s1c_sampler_defaults(),
                        .stop_ids = stop >= 0 ? &stop : NULL, .n_stop_ids = stop >= 0 ? 1 : 0, .min_new_tokens = 1};
    assert_true(s1c_engine_submit(e, &p, &err) >= 0);
    assert_int_equal(s1c_engine_run(e, &err), 0);
    s1c_seq_result r;
    assert_int_equal(s1c_engine_poll(e, &r), 1);
    memcpy(out, r.tokens, (size_t)r.n_tokens * 4);
    int k = r.n_tokens;
    s1c_seq_result_free(&r);
    return k;
}

static void test_waits_equal_reprompting_on_stories(void **st) {
    (void)st;
    s1c_err err;
    s1c_model *sm;
    s1c_tokenizer *stok;
    char *mp = tu_path("S1C_DATA", "models/stories260K/stories260K.gguf");
    assert_int_equal(s1c_model_open(&sm, mp, &err), 0);
    assert_int_equal(s1c_tok_load(&stok, mp, 0, &err), 0);
    free(mp);
    int32_t *pr, *dot, *wait;
    int np, nd, nw;
    assert_int_equal(s1c_tok_encode_ex(stok, "Once upon a time", 16, S1C_ENC_BOS, &pr, &np, &err), 0);
    assert_int_equal(s1c_tok_encode_ex(stok, ".", 1, S1C_ENC_NO_PREFIX, &dot, &nd, &err), 0);
    assert_int_equal(s1c_tok_encode_ex(stok, " Then", 5, S1C_ENC_NO_PREFIX, &wait, &nw, &err), 0);
    assert_int_equal(nd, 1);
    /* budget forcing in the engine */
    s1c_bf_opts o = s1c_bf_defaults();
    o.think_start = "";
    o.think_end = ".";
    o.wait_str = " Then";
    o.num_waits = 2;
    o.max_answer_tokens = 12;
    s1c_bf *bf;
    assert_int_equal(s1c_bf_new(&bf, &o, stok, 512, NULL, &err), 0);
    s1c_engine *e;
    assert_int_equal(s1c_engine_new(&e, sm, NULL, &err), 0);
    s1c_bf_state init = s1c_bf_state_init(bf, np);
    s1c_seq_params p = {.prompt = pr, .n_prompt = np, .max_new_tokens = 400, .sampler = s1c_sampler_defaults(),
                        .hook = s1c_bf_hook, .user = bf, .state = &init, .state_size = sizeof init};
    assert_true(s1c_engine_submit(e, &p, &err) >= 0);
    assert_int_equal(s1c_engine_run(e, &err), 0);
    s1c_seq_result r;
    assert_int_equal(s1c_engine_poll(e, &r), 1);
    s1c_bf_state *bs = r.state;
    assert_int_equal(bs->waits, 2);
    /* s1's loop: generate until ".", drop it, append " Then" as its own ids, re-prompt */
    int32_t seq[800];
    int n = np;
    memcpy(seq, pr, (size_t)np * 4);
    for (int round = 0; round < 3; round++) {
        int32_t out[400];
        int k = run_plain(e, seq, n, dot[0], 400, out);
        assert_true(k > 0 && out[k - 1] == dot[0]);
        memcpy(seq + n, out, (size_t)(k - 1) * 4);
        n += k - 1;
        if (round < 2) { memcpy(seq + n, wait, (size_t)nw * 4); n += nw; }
        else seq[n++] = dot[0]; /* the third end stands: the answer follows it */
    }
    int32_t ans[16];
    int ka = run_plain(e, seq, n, -1, 12, ans);
    memcpy(seq + n, ans, (size_t)ka * 4);
    n += ka;
    if (np + r.n_tokens != n || memcmp(r.tokens, seq + np, (size_t)r.n_tokens * 4) != 0) {
        for (int i = 0; i < r.n_tokens; i++) fprintf(stderr, "%d ", r.tokens[i]);
        fprintf(stderr, "\n");
        for (int i = np; i < n; i++) fprintf(stderr, "%d ", seq[i]);
        fprintf(stderr, "\n");
    }
    assert_int_equal(np + r.n_tokens, n);
    assert_memory_equal(r.tokens, seq + np, (size_t)r.n_tokens * 4);
    s1c_seq_result_free(&r);
    s1c_engine_free(e);
    s1c_bf_free(bf);
    free(pr); free(dot); free(wait);
    s1c_tok_free(stok);
    s1c_model_free(sm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_natural_end),        cmocka_unit_test(test_budget_forced),
        cmocka_unit_test(test_budget_after_newline), cmocka_unit_test(test_budget_zero),
        cmocka_unit_test(test_im_end_inside_thinking), cmocka_unit_test(test_waits),
        cmocka_unit_test(test_end_right_after_wait), cmocka_unit_test(test_wait_does_not_fit),
        cmocka_unit_test(test_wait_fills_budget),  cmocka_unit_test(test_min_thinking),
        cmocka_unit_test(test_empty_ignore_string), cmocka_unit_test(test_answer_prefix_and_limit),
        cmocka_unit_test(test_s1_eval_compat),     cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_random_combinations), cmocka_unit_test(test_waits_equal_reprompting_on_stories),
        cmocka_unit_test(test_sweep_forks_equal_separate_runs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
