/* s1c chat: an interactive terminal chat with budget forcing. Each turn is the whole
 * conversation in the model's chat template + the thinking start, run through the engine
 * (earlier turns come back from the prefix cache); the thinking streams dimmed, then the
 * answer. Slash commands change the budget-forcing options between turns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "generate.h"

static const char *chat_help =
    "usage: s1c chat --model PATH [--tokenizer PATH] [--system TEXT] [options]\n"
    "\n"
    "Type a message and press enter. The model thinks (shown dimmed) and answers. Commands:\n"
    "  /budget N|auto|off   thinking budget (--think-max)     /waits N    replace N ends by \"Wait\"\n"
    "  /min N               minimum thinking (--think-min)     /answer N   answer limit (--answer-max)\n"
    "  /reset               forget the conversation            /show       print the settings\n"
    "  /quit                leave (or end of input)\n"
    "\n"
    "Options: the sampling, --stop and budget-forcing flags of s1c generate (--think-max,\n"
    "--think-min, --waits, --wait-str, --answer-prefix, --think-start, --think-end,\n"
    "--answer-max, --bf-compat), --ctx, --kv-type auto|f32|f16|bf16, --bf16-math dot|exact, --no-color.\n"
    "\n"
    "example:\n"
    "  s1c chat --model /tmp/qtiny --think-max 256 --waits 1\n";

typedef struct turn {
    char *role, *content;
} turn;

/* Streams text; the thinking (everything before the end-of-thinking delimiter) is dimmed. */
typedef struct stream {
    bool thinking, color;
    const char *marker;
    char tail[128];
    size_t tail_len;
} stream;

static int stream_text(void *user, const char *text, int n) {
    stream *s = user;
    if (!s->thinking || !s->color) {
        fwrite(text, 1, (size_t)n, stdout);
        fflush(stdout);
        return 0;
    }
    /* look for the delimiter across the end of the previous piece and this one */
    char buf[1024];
    size_t ml = strlen(s->marker), k = s->tail_len, take = (size_t)n < sizeof buf - k ? (size_t)n : sizeof buf - k;
    memcpy(buf, s->tail, k);
    memcpy(buf + k, text, take);
    char *hit = ml ? memmem(buf, k + take, s->marker, ml) : NULL;
    if (hit) {
        size_t upto = (size_t)(hit - buf) + ml - k; /* bytes of this piece up to the delimiter's end */
        if (upto > (size_t)n) upto = (size_t)n;
        fwrite(text, 1, upto, stdout);
        fputs("\x1b[0m", stdout);
        fwrite(text + upto, 1, (size_t)n - upto, stdout);
        s->thinking = false;
    } else {
        fwrite(text, 1, (size_t)n, stdout);
        size_t keep = ml > 1 ? ml - 1 : 0, total = k + take;
        if (keep > total) keep = total;
        if (keep > sizeof s->tail) keep = sizeof s->tail;
        memmove(s->tail, buf + total - keep, keep);
        s->tail_len = keep;
    }
    fflush(stdout);
    return 0;
}

/* Applies a slash command; returns 1 to quit, 0 otherwise. */
static int command(const char *line, gen_opts *o, turn **hist, int *n_hist) {
    char cmd[32] = "", arg[64] = "";
    sscanf(line, "/%31s %63s", cmd, arg);
    if (!strcmp(cmd, "quit") || !strcmp(cmd, "exit")) return 1;
    if (!strcmp(cmd, "reset")) {
        for (int i = 0; i < *n_hist; i++) { free((*hist)[i].role); free((*hist)[i].content); }
        *n_hist = 0;
        fprintf(stderr, "[conversation cleared]\n");
    } else if (!strcmp(cmd, "budget")) {
        o->bf.max_thinking_tokens = !strcmp(arg, "auto") ? S1C_BF_AUTO : !strcmp(arg, "off") ? S1C_BF_UNLIMITED : atoi(arg);
        if (o->bf.max_thinking_tokens < 0 && strcmp(arg, "auto") && strcmp(arg, "off")) o->bf.max_thinking_tokens = S1C_BF_UNLIMITED;
    } else if (!strcmp(cmd, "waits")) {
        o->bf.num_waits = atoi(arg) > 0 ? atoi(arg) : 0;
    } else if (!strcmp(cmd, "min")) {
        o->bf.min_thinking_tokens = atoi(arg) > 0 ? atoi(arg) : 0;
    } else if (!strcmp(cmd, "answer")) {
        o->bf.max_answer_tokens = atoi(arg) > 0 ? atoi(arg) : S1C_BF_UNLIMITED;
    } else if (strcmp(cmd, "show")) {
        fprintf(stderr, "[unknown command /%s: /budget /waits /min /answer /reset /show /quit]\n", cmd);
        return 0;
    }
    fprintf(stderr, "[think-max %d, think-min %d, waits %d, answer-max %d]\n", o->bf.max_thinking_tokens,
            o->bf.min_thinking_tokens, o->bf.num_waits, o->bf.max_answer_tokens);
    return 0;
}

/* The conversation so far in the template, opened for the assistant, with the thinking start. */
static char *render(int tmpl, const gen_opts *o, const turn *hist, int n, s1c_err *err) {
    s1c_chat_msg *m = malloc((size_t)(n + 1) * sizeof *m);
    if (!m) { s1c_fail(err, "out of memory"); return NULL; }
    int k = 0;
    if (o->system) m[k++] = (s1c_chat_msg){"system", o->system};
    for (int i = 0; i < n; i++) m[k++] = (s1c_chat_msg){hist[i].role, hist[i].content};
    char *text = s1c_chat_render(tmpl, m, k, true, err);
    free(m);
    if (!text) return NULL;
    size_t tl = strlen(text), sl = strlen(o->bf.think_start);
    bool opened = tl >= sl + 1 && !strncmp(text + tl - sl - 1, o->bf.think_start, sl);
    if (opened || !sl) return text;
    char *t2 = realloc(text, tl + sl + 1);
    if (!t2) { free(text); s1c_fail(err, "out of memory"); return NULL; }
    memcpy(t2 + tl, o->bf.think_start, sl + 1);
    return t2;
}

/* One turn: returns the answer text (malloc'd) or NULL. */
static char *run_turn(const gen_opts *o, const s1c_model *m, const s1c_tokenizer *tok, s1c_engine *e, const char *prompt,
                      bool color, s1c_err *err) {
    int32_t *ids = NULL, stop_ids[4];
    int n = 0;
    char *answer = NULL;
    s1c_bf *bf = NULL;
    stream st = {.thinking = true, .color = color, .marker = o->bf.think_end};
    s1c_gen_params gp = gen_params(o, m, tok, 1, stop_ids);
    s1c_textgen *g = s1c_textgen_new(tok, &gp, stream_text, &st);
    int ctx = o->ctx > 0 && o->ctx < s1c_model_config(m)->max_seq_len ? o->ctx : s1c_model_config(m)->max_seq_len;
    if (!g || s1c_tok_encode_ex(tok, prompt, strlen(prompt), S1C_ENC_SPECIAL, &ids, &n, err) != 0 ||
        s1c_bf_new(&bf, &o->bf, tok, ctx, g, err) != 0)
        goto out;
    s1c_bf_state init = s1c_bf_state_init(bf, n);
    s1c_seq_params sp = {.prompt = ids, .n_prompt = n, .max_new_tokens = o->max_tokens, .sampler = o->sp,
                         .hook = s1c_bf_hook, .user = bf, .state = &init, .state_size = sizeof init};
    if (color) fputs("\x1b[2m", stdout);
    double t0 = s1c_now();
    if (s1c_engine_submit(e, &sp, err) < 0 || s1c_engine_run(e, err) != 0) goto out;
    s1c_seq_result r;
    if (s1c_engine_poll(e, &r) != 1) { s1c_fail(err, "no result"); goto out; }
    size_t len;
    s1c_textgen_text(g, r.id, &len); /* flushes what was held back */
    if (color && st.thinking) fputs("\x1b[0m", stdout);
    const s1c_bf_state *bs = r.state;
    /* the answer for the history: its tokens after the delimiter, end-of-turn dropped */
    int from = bs->answer_at >= 0 ? bs->answer_at : r.n_tokens;
    answer = s1c_tok_decode_range(tok, r.tokens, from, r.n_tokens, n > 0 ? ids[n - 1] : -1, NULL);
    double secs = s1c_now() - t0;
    fputc('\n', stdout);
    fflush(stdout);
    fprintf(stderr, "[thinking %d tokens, %d waits, %s; answer %d tokens; %.1f tok/s]\n", bs->thinking_tokens, bs->waits,
            bs->think_end_reason >= 0 ? s1c_stop_reason_name(bs->think_end_reason) : "not ended", bs->answer_tokens,
            secs > 0 ? r.n_tokens / secs : 0.0);
    s1c_seq_result_free(&r);
out:
    s1c_bf_free(bf);
    s1c_textgen_free(g);
    free(ids);
    return answer;
}

static int add_turn(turn **hist, int *n, int *cap, const char *role, const char *content) {
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 8;
        turn *nh = realloc(*hist, (size_t)c * sizeof *nh);
        if (!nh) return -1;
        *hist = nh;
        *cap = c;
    }
    (*hist)[*n] = (turn){strdup(role), strdup(content)};
    (*n)++;
    return 0;
}

int cmd_chat(int argc, char **argv) {
    gen_opts o;
    gen_opts_init(&o);
    bool no_color = false;
    for (int i = 1; i < argc; i++) {
        int c = gen_parse_common(argc, argv, &i, &o);
        if (c < 0) return 1;
        if (c > 0) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(chat_help, stdout); return 0; }
        if (!strcmp(argv[i], "--no-color")) no_color = true;
        else return cli_error("chat: unknown option '%s' (see s1c chat --help)", argv[i]);
    }
    if (!o.model) return cli_error("chat: --model is required (see s1c chat --help)");
    s1c_err err = {{0}};
    s1c_model *m = NULL;
    s1c_tokenizer *tok = NULL;
    s1c_engine *e = NULL;
    if (gen_open_model(&o, &m, &err) != 0 || gen_load_tokenizer(&o, m, &tok, &err) != 0) goto fail;
    if (!tok) { s1c_fail(&err, "%s: chat needs a tokenizer (--tokenizer)", o.model); goto fail; }
    int tmpl = s1c_tok_chat_template(tok);
    if (tmpl < 0) { s1c_fail(&err, "%s: the model has no chat template s1c knows", o.model); goto fail; }
    if ((tmpl == S1C_CHAT_QWQ || tmpl == S1C_CHAT_R1_DISTILL) && !o.think_start_set) o.bf.think_start = "<think>";
    if ((tmpl == S1C_CHAT_QWQ || tmpl == S1C_CHAT_R1_DISTILL) && !o.think_end_set) o.bf.think_end = "</think>";
    s1c_engine_params ep = s1c_engine_defaults();
    ep.ctx = o.ctx;
    ep.max_seqs = 1;
    ep.kv_dtype = o.kv_dtype;
    if (s1c_engine_new(&e, m, &ep, &err) != 0) goto fail;
    bool tty = isatty(0) && isatty(1), color = isatty(1) && !no_color;
    turn *hist = NULL;
    int n_hist = 0, cap = 0, rc = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    for (;;) {
        if (tty) { fputs("> ", stdout); fflush(stdout); }
        if ((got = getline(&line, &lcap, stdin)) < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (line[0] == '/') {
            if (command(line, &o, &hist, &n_hist)) break;
            continue;
        }
        if (add_turn(&hist, &n_hist, &cap, "user", line) != 0) { rc = cli_error("chat: out of memory"); break; }
        char *prompt = render(tmpl, &o, hist, n_hist, &err);
        char *answer = prompt ? run_turn(&o, m, tok, e, prompt, color, &err) : NULL;
        free(prompt);
        if (!answer) { rc = cli_error("%s", err.msg); break; }
        if (add_turn(&hist, &n_hist, &cap, "assistant", answer) != 0) rc = cli_error("chat: out of memory");
        free(answer);
        if (rc) break;
    }
    free(line);
    for (int i = 0; i < n_hist; i++) { free(hist[i].role); free(hist[i].content); }
    free(hist);
    s1c_engine_free(e);
    s1c_tok_free(tok);
    s1c_model_free(m);
    return rc;
fail:
    cli_error("%s", err.msg);
    s1c_engine_free(e);
    s1c_tok_free(tok);
    s1c_model_free(m);
    return 1;
}
