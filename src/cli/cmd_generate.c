/* s1c generate: one prompt, streamed to stdout (or one JSON object with --json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "generate.h"

static const char *generate_help =
    "usage: s1c generate --model PATH [--tokenizer PATH] (--prompt TEXT | --prompt-ids IDS) [options]\n"
    "\n"
    "  --model PATH         llama2.c .bin, .gguf, or a Hugging Face model directory\n"
    "  --tokenizer PATH     tokenizer (needed for .bin: llama2.c tok512.bin; GGUF and HF carry their own)\n"
    "  --prompt TEXT        prompt text (BOS is added when the model wants one)\n"
    "  --prompt-ids IDS     prompt as token ids, comma or space separated, used as given\n"
    "  --prompts-file F     JSONL, one {\"prompt\": ...} per line (other fields kept): all run together;\n"
    "                       with --json one line per prompt, in input order\n"
    "  --samples K          K samples per prompt (one prefill, forked), majority vote over their answers\n"
    "  --chat               wrap the prompt as a user turn in the model's chat template\n"
    "  --system TEXT        system prompt for --chat (default: the template's)\n"
    "  --special            match special tokens (<|im_start|>, ...) written in the prompt text\n"
    "  --steps N            total positions including BOS and the prompt (llama2.c's -n)\n"
    "  --max-tokens N       new tokens to generate (default 256)\n"
    "  --temperature T      0 = greedy (default 0)\n"
    "  --top-k K  --top-p P  --min-p P  --repeat-penalty R  --repeat-last-n N  --seed S\n"
    "  --stop TEXT          stop when TEXT appears (repeatable; TEXT is not printed)\n"
    "  --ignore-eos         do not stop at end-of-sequence tokens\n"
    "  --ctx N              context length (default: the model's)\n"
    "  --kv-mem MIB         KV cache memory limit for --prompts-file/--samples/budget forcing runs (sequences\n"
    "                       wait or are preempted and recomputed when it is full)\n"
    KV_TYPE_HELP
    BF16_MATH_HELP
    "  --no-echo            do not print the prompt before the generated text\n"
    "  --json               print one JSON object: text, prompt_tokens, tokens, stop_reason, usage, timings\n"
    "\n"
    "budget forcing (s1; any of these wraps --prompt as the question in the s1 layout, see --raw):\n"
    "  --think-max N|auto   thinking budget: the end of thinking is forced at N thinking tokens\n"
    "  --think-min N        a natural end of thinking before N tokens is replaced by the ignore string\n"
    "  --waits N            replace the first N natural ends of thinking by the ignore string\n"
    "  --wait-str TEXT      the ignore string (default \"Wait\"; \"\" = only suppress the end)\n"
    "  --answer-prefix TEXT appended after a forced end (default \"Final Answer:\")\n"
    "  --think-start TEXT   default \"<|im_start|>think\" (\"<think>\" for QwQ/R1-style models)\n"
    "  --think-end TEXT     default \"<|im_start|>answer\" (\"</think>\" for QwQ/R1-style models)\n"
    "  --answer-max N       limit of the answer phase\n"
    "  --bf-compat s1-eval  count like s1's evaluation fork (every Wait round gets the full budget)\n"
    "  --raw                send --prompt as is (it must end with the thinking start)\n"
    "  --reject N           rejection sampling: resample (seed+1, ...) until the thinking fits --think-max, N tries at most\n"
    "  --control KIND       the paper's other controls as question suffixes: tokens, steps (\"Think for up to N\n"
    "                       tokens/steps.\", N from --control-n or --think-max), short, long (class-conditional)\n"
    "  with --json: thinking, answer, thinking_tokens, answer_tokens, waits, stop_reason, think_end_reason\n"
    "\n"
    "examples:\n"
    "  s1c generate --model stories260K.bin --tokenizer tok512.bin --prompt \"Once upon a time\" --temperature 0 --steps 200\n"
    "  s1c generate --model stories260K.gguf --prompt \"Once upon a time\" --json\n";


/* The flags generate and chat share: model, sampling, stop strings, budget forcing. Returns 1
 * when argv[*i] was one (and its value was good), 0 when it is not one of them, -1 on a bad
 * value (already reported). */
int gen_parse_common(int argc, char **argv, int *i, gen_opts *o) {
    const char *a = argv[*i];
    bool ok = true;
    if (!strcmp(a, "--model")) ok = arg_str(argc, argv, i, &o->model);
    else if (!strcmp(a, "--tokenizer")) ok = arg_str(argc, argv, i, &o->tokenizer);
    else if (!strcmp(a, "--ctx")) ok = arg_int(argc, argv, i, 1, 1 << 24, &o->ctx);
    else if (!strcmp(a, "--kv-mem")) ok = arg_int(argc, argv, i, 1, 1 << 24, &o->kv_mem_mib);
    else if (!strcmp(a, "--kv-type")) ok = arg_kv_type(argc, argv, i, &o->kv_dtype);
    else if (!strcmp(a, "--bf16-math")) ok = o->bf16_math_set = arg_bf16_math(argc, argv, i, &o->bf16_dot);
    else if (!strcmp(a, "--max-tokens")) ok = arg_int(argc, argv, i, 0, 1 << 24, &o->max_tokens);
    else if (!strcmp(a, "--temperature")) ok = arg_float(argc, argv, i, 0, 100, &o->sp.temperature);
    else if (!strcmp(a, "--top-k")) ok = arg_int(argc, argv, i, 0, 1 << 24, &o->sp.top_k);
    else if (!strcmp(a, "--top-p")) ok = arg_float(argc, argv, i, 1e-9, 1, &o->sp.top_p);
    else if (!strcmp(a, "--min-p")) ok = arg_float(argc, argv, i, 0, 1, &o->sp.min_p);
    else if (!strcmp(a, "--repeat-penalty")) ok = arg_float(argc, argv, i, 1e-3, 100, &o->sp.repeat_penalty);
    else if (!strcmp(a, "--repeat-last-n")) ok = arg_int(argc, argv, i, 0, 1 << 24, &o->sp.repeat_last_n);
    else if (!strcmp(a, "--seed")) ok = arg_u64(argc, argv, i, &o->sp.seed);
    else if (!strcmp(a, "--system")) ok = arg_str(argc, argv, i, &o->system);
    else if (!strcmp(a, "--stop")) {
        if (o->n_stops == 32) { cli_error("at most 32 --stop strings"); return -1; }
        ok = arg_str(argc, argv, i, &o->stops[o->n_stops]);
        if (ok && o->stops[o->n_stops][0] == 0) { cli_error("--stop: the stop string is empty"); return -1; }
        o->n_stops += ok;
    }
    else if (!strcmp(a, "--think-max")) {
        const char *v;
        ok = arg_str(argc, argv, i, &v);
        if (ok && !strcmp(v, "auto")) o->bf.max_thinking_tokens = S1C_BF_AUTO;
        else if (ok) { (*i)--; ok = arg_int(argc, argv, i, 0, 1 << 24, &o->bf.max_thinking_tokens); }
        o->bf_on = true;
    }
    else if (!strcmp(a, "--think-min")) { ok = arg_int(argc, argv, i, 0, 1 << 24, &o->bf.min_thinking_tokens); o->bf_on = true; }
    else if (!strcmp(a, "--waits")) { ok = arg_int(argc, argv, i, 0, 1 << 20, &o->bf.num_waits); o->bf_on = true; }
    else if (!strcmp(a, "--wait-str")) { ok = arg_str(argc, argv, i, &o->bf.wait_str); o->bf_on = true; }
    else if (!strcmp(a, "--answer-prefix")) { ok = arg_str(argc, argv, i, &o->bf.answer_prefix); o->bf_on = true; }
    else if (!strcmp(a, "--think-start")) { ok = arg_str(argc, argv, i, &o->bf.think_start); o->bf_on = o->think_start_set = true; }
    else if (!strcmp(a, "--think-end")) { ok = arg_str(argc, argv, i, &o->bf.think_end); o->bf_on = o->think_end_set = true; }
    else if (!strcmp(a, "--answer-max")) { ok = arg_int(argc, argv, i, 0, 1 << 24, &o->bf.max_answer_tokens); o->bf_on = true; }
    else if (!strcmp(a, "--bf-compat")) {
        const char *v;
        ok = arg_str(argc, argv, i, &v);
        if (ok && strcmp(v, "s1-eval") && strcmp(v, "none")) { cli_error("--bf-compat: '%s' is not s1-eval or none", v); return -1; }
        if (ok) o->bf.compat = strcmp(v, "s1-eval") ? S1C_BF_NORMATIVE : S1C_BF_S1_EVAL;
        o->bf_on = true;
    }
    else return 0;
    return ok ? 1 : -1;
}

void gen_opts_init(gen_opts *o) {
    *o = (gen_opts){.steps = -1, .max_tokens = -1, .echo = true, .samples = 1, .sp = s1c_sampler_defaults(), .bf = s1c_bf_defaults(),
                    .kv_dtype = S1C_KV_AUTO};
}

static int parse_opts(int argc, char **argv, gen_opts *o) {
    gen_opts_init(o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        int common = gen_parse_common(argc, argv, &i, o);
        if (common < 0) return 1;
        if (common > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(generate_help, stdout); return 0; }
        else if (!strcmp(a, "--prompt")) ok = arg_str(argc, argv, &i, &o->prompt);
        else if (!strcmp(a, "--prompt-ids")) ok = arg_str(argc, argv, &i, &o->prompt_ids);
        else if (!strcmp(a, "--prompts-file")) ok = arg_str(argc, argv, &i, &o->prompts_file);
        else if (!strcmp(a, "--samples")) ok = arg_int(argc, argv, &i, 1, 4096, &o->samples);
        else if (!strcmp(a, "--steps")) ok = arg_int(argc, argv, &i, 0, 1 << 24, &o->steps);
        else if (!strcmp(a, "--raw")) o->raw = true;
        else if (!strcmp(a, "--reject")) { ok = arg_int(argc, argv, &i, 1, 1 << 16, &o->reject_tries); o->bf.rejection = o->bf_on = true; }
        else if (!strcmp(a, "--control-n")) ok = arg_int(argc, argv, &i, 1, 1 << 24, &o->control_n);
        else if (!strcmp(a, "--control")) {
            const char *v;
            ok = arg_str(argc, argv, &i, &v);
            if (ok && (o->control = s1c_control_from_name(v)) < 0) return cli_error("--control: '%s' is not tokens, steps, short or long", v);
            o->bf_on = true;
        }
        else if (!strcmp(a, "--ignore-eos")) o->ignore_eos = true;
        else if (!strcmp(a, "--chat")) o->chat = true;
        else if (!strcmp(a, "--special")) o->special = true;
        else if (!strcmp(a, "--no-echo")) o->echo = false;
        else if (!strcmp(a, "--json")) o->json = true;
        else return cli_error("generate: unknown option '%s' (see s1c generate --help)", a);
        if (!ok) return 1;
    }
    if (!o->model) return cli_error("generate: --model is required (see s1c generate --help)");
    int n_sources = !!o->prompt + !!o->prompt_ids + !!o->prompts_file;
    if (n_sources == 0) return cli_error("generate: give a prompt with --prompt, --prompt-ids or --prompts-file");
    if (n_sources > 1) return cli_error("generate: --prompt, --prompt-ids and --prompts-file exclude each other");
    if ((o->chat || o->system || o->special) && o->prompt_ids) return cli_error("generate: --chat, --system and --special apply to prompt text");
    if (o->system && !o->chat && !o->bf_on) return cli_error("generate: --system needs --chat or budget forcing");
    if (o->bf_on && o->prompt_ids && !o->raw) return cli_error("generate: budget forcing with --prompt-ids needs --raw (ids ending with the thinking start)");
    if (o->reject_tries && o->bf.max_thinking_tokens < 0) return cli_error("generate: --reject needs a --think-max budget");
    if (o->reject_tries && o->samples > 1) return cli_error("generate: --reject and --samples exclude each other");
    if ((o->control == S1C_CONTROL_TOKENS || o->control == S1C_CONTROL_STEPS) && o->control_n <= 0) {
        if (o->bf.max_thinking_tokens < 0) return cli_error("generate: --control %s needs --control-n N or --think-max N", o->control == S1C_CONTROL_TOKENS ? "tokens" : "steps");
        o->control_n = o->bf.max_thinking_tokens;
    }
    return -1; /* go on */
}

int gen_open_model(const gen_opts *o, s1c_model **m, s1c_err *err) {
    if (s1c_model_open(m, o->model, err) != 0) return -1;
    if (o->bf16_math_set && s1c_model_set_bf16_dot(*m, o->bf16_dot, err) != 0) {
        s1c_model_free(*m);
        *m = NULL;
        return -1;
    }
    return 0;
}

int gen_load_tokenizer(const gen_opts *o, const s1c_model *m, s1c_tokenizer **tok, s1c_err *err) {
    *tok = NULL;
    if (o->tokenizer) return s1c_tok_load(tok, o->tokenizer, s1c_model_config(m)->vocab_size, err);
    switch (s1c_model_format_of(m)) {
    case S1C_FMT_GGUF: return s1c_tok_load_gguf(tok, s1c_model_gguf(m), err);
    case S1C_FMT_HF: {
        char *tj = s1c_path_join(o->model, "tokenizer.json"), *vj = s1c_path_join(o->model, "vocab.json");
        bool have = s1c_file_exists(tj) || s1c_file_exists(vj);
        free(tj); free(vj);
        return have ? s1c_tok_load_hf(tok, o->model, err) : 0;
    }
    default:
        return s1c_fail(err, "%s: a llama2.c model needs --tokenizer (e.g. tok512.bin)", o->model);
    }
}

static bool model_wants_bos(const s1c_model *m, const s1c_tokenizer *tok) {
    if (!tok || s1c_tok_bos(tok) < 0) return false;
    if (s1c_model_format_of(m) == S1C_FMT_LLAMA2C) return true;
    if (s1c_model_format_of(m) == S1C_FMT_GGUF) {
        bool add = s1c_tok_kind_of(tok) == S1C_TOK_SPM; /* llama.cpp's default per vocab type */
        gguf_get_bool(s1c_model_gguf(m), "tokenizer.ggml.add_bos_token", &add, NULL);
        return add;
    }
    return false; /* Qwen2 adds no BOS */
}

/* Tokenizers may know more ids than a model has embedding rows. */
static int check_ids(const s1c_model *m, const int32_t *ids, int n, s1c_err *err) {
    int V = s1c_model_config(m)->vocab_size;
    for (int i = 0; i < n; i++)
        if (ids[i] >= V) return s1c_fail(err, "token id %d from the tokenizer is outside the model's vocabulary (%d)", ids[i], V);
    return 0;
}

int gen_encode_prompt(const gen_opts *o, const s1c_model *m, const s1c_tokenizer *tok, const char *prompt, int32_t **ids, int *n, s1c_err *err) {
    if (!tok) return s1c_fail(err, "%s: no tokenizer found: pass --tokenizer or use --prompt-ids", o->model);
    int flags = (model_wants_bos(m, tok) ? S1C_ENC_BOS : 0) | (o->special || o->chat || o->bf_on ? S1C_ENC_SPECIAL : 0);
    int rc;
    if ((!o->chat && !o->bf_on) || o->raw) {
        rc = s1c_tok_encode_ex(tok, prompt, strlen(prompt), flags, ids, n, err);
        return rc == 0 ? check_ids(m, *ids, *n, err) : rc;
    }
    int tmpl = s1c_tok_chat_template(tok);
    if (tmpl < 0) return s1c_fail(err, "%s: the model has no chat template s1c knows (use --raw)", o->model);
    s1c_chat_msg msgs[2];
    int k = 0;
    char *question = s1c_control_question(prompt, o->control, o->control_n);
    if (!question) return s1c_fail(err, "out of memory");
    if (o->system) msgs[k++] = (s1c_chat_msg){"system", o->system};
    msgs[k++] = (s1c_chat_msg){"user", question};
    char *text = s1c_chat_render(tmpl, msgs, k, true, err);
    free(question);
    if (!text) return -1;
    if (o->bf_on) {
        /* s1's inference layout: the generation prompt, then the thinking start (unless the
         * template already opened thinking, as QwQ's and R1's do with "<think>\n") */
        const char *ts = o->bf.think_start;
        size_t tl = strlen(text), sl = strlen(ts);
        bool opened = (tl >= sl && !strcmp(text + tl - sl, ts)) || (tl >= sl + 1 && !strncmp(text + tl - sl - 1, ts, sl) && text[tl - 1] == '\n');
        if (!opened) {
            char *t2 = realloc(text, tl + sl + 1);
            if (!t2) { free(text); return s1c_fail(err, "out of memory"); }
            memcpy(t2 + tl, ts, sl + 1);
            text = t2;
        }
    }
    rc = s1c_tok_encode_ex(tok, text, strlen(text), flags, ids, n, err);
    free(text);
    return rc == 0 ? check_ids(m, *ids, *n, err) : rc;
}

int gen_parse_ids(const char *s, int vocab, int32_t **out, int *n, s1c_err *err) {
    size_t cap = strlen(s) / 2 + 2;
    int32_t *ids = malloc(cap * sizeof(int32_t));
    if (!ids) return s1c_fail(err, "out of memory");
    *n = 0;
    const char *p = s;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' || *p == '[' || *p == ']') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v >= vocab) {
            free(ids);
            return s1c_fail(err, "--prompt-ids: '%.20s' is not a token id in [0, %d)", p, vocab);
        }
        ids[(*n)++] = (int32_t)v;
        p = end;
    }
    *out = ids;
    return 0;
}


/* Stop tokens: llama2.c's run.c stops only on BOS; other models on their end tokens. */
static int collect_stop_ids(const s1c_model *m, const s1c_tokenizer *tok, int32_t *ids) {
    int n = 0;
    const s1c_config *c = s1c_model_config(m);
    if (s1c_model_format_of(m) == S1C_FMT_LLAMA2C) { ids[n++] = 1; return n; }
    if (c->eos_id >= 0) ids[n++] = c->eos_id;
    if (tok && s1c_tok_eos(tok) >= 0) ids[n++] = s1c_tok_eos(tok);
    return n;
}

void gen_print_fields(const int32_t *prompt, int n_prompt, const int32_t *tokens, int n_tokens, const char *text, size_t len,
                      int stop_reason, double prefill_s, double decode_s) {
    printf("\"text\":");
    json_write_str(stdout, text, len);
    printf(",\"prompt_tokens\":[");
    for (int i = 0; i < n_prompt; i++) printf(i ? ",%d" : "%d", prompt[i]);
    printf("],\"tokens\":[");
    for (int i = 0; i < n_tokens; i++) printf(i ? ",%d" : "%d", tokens[i]);
    printf("],\"stop_reason\":\"%s\"", s1c_stop_reason_name(stop_reason));
    printf(",\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d}", n_prompt, n_tokens);
    double dec_n = n_tokens > 1 ? n_tokens - 1 : 0;
    printf(",\"timings\":{\"prefill_s\":%.6f,\"decode_s\":%.6f,\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f}",
           prefill_s, decode_s, prefill_s > 0 ? n_prompt / prefill_s : 0.0, decode_s > 0 ? dec_n / decode_s : 0.0);
}

static void print_json(const gen_opts *o, const int32_t *prompt, int n_prompt, const s1c_gen_result *r) {
    printf("{");
    gen_print_fields(prompt, n_prompt, r->tokens, r->n_tokens, r->text, r->text_len, r->stop_reason, r->prefill_s, r->decode_s);
    printf(",\"model\":");
    json_write_str(stdout, o->model, strlen(o->model));
    printf("}\n");
}

s1c_gen_params gen_params(const gen_opts *o, const s1c_model *m, const s1c_tokenizer *tok, int n_prompt, int32_t *stop_ids) {
    const s1c_config *c = s1c_model_config(m);
    s1c_gen_params gp = {.max_new_tokens = 256, .ctx = o->ctx, .stop_ids = stop_ids, .stop_strings = o->stops,
                         .n_stop_strings = o->n_stops, .sampler = o->sp, .kv_dtype = o->kv_dtype};
    gp.n_stop_ids = o->ignore_eos ? 0 : collect_stop_ids(m, tok, stop_ids);
    if (o->steps >= 0) {
        /* llama2.c: positions 0..steps-1 are forwarded, clamped to the model's context */
        int steps = o->steps == 0 || o->steps > c->max_seq_len ? c->max_seq_len : o->steps;
        gp.max_new_tokens = steps - n_prompt + 1 > 0 ? steps - n_prompt + 1 : 0;
        if (o->max_tokens >= 0 && o->max_tokens < gp.max_new_tokens) gp.max_new_tokens = o->max_tokens;
    } else if (o->max_tokens >= 0) {
        gp.max_new_tokens = o->max_tokens;
    }
    return gp;
}

static void echo_prompt(const s1c_tokenizer *tok, const int32_t *ids, int n) {
    s1c_detok dt = {0};
    char piece[512], ready[600];
    for (int i = 0; i < n; i++) {
        if (i == 0 && ids[0] == s1c_tok_bos(tok)) continue;
        int k = s1c_tok_decode(tok, i ? ids[i - 1] : -1, ids[i], piece, (int)sizeof piece);
        k = s1c_detok_push(&dt, piece, k, ready, (int)sizeof ready);
        fwrite(ready, 1, (size_t)k, stdout);
    }
    int k = s1c_detok_flush(&dt, ready, (int)sizeof ready);
    fwrite(ready, 1, (size_t)k, stdout);
}

int cmd_generate(int argc, char **argv) {
    gen_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0) return rc;
    s1c_err err = {{0}};
    s1c_model *m = NULL;
    s1c_tokenizer *tok = NULL;
    int32_t *prompt = NULL;
    int n_prompt = 0;
    s1c_gen_result res = {0};
    rc = 1;
    if (gen_open_model(&o, &m, &err) != 0 || gen_load_tokenizer(&o, m, &tok, &err) != 0) goto fail;
    if (o.bf_on && tok) {
        int tmpl = s1c_tok_chat_template(tok);
        bool think_tags = tmpl == S1C_CHAT_QWQ || tmpl == S1C_CHAT_R1_DISTILL;
        if (think_tags && !o.think_start_set) o.bf.think_start = "<think>";
        if (think_tags && !o.think_end_set) o.bf.think_end = "</think>";
    }
    if (o.prompts_file || o.samples > 1 || o.bf_on) {
        if (gen_run_batch(&o, m, tok, &err) != 0) goto fail;
        rc = 0;
        goto done;
    }
    if (o.prompt_ids) {
        if (gen_parse_ids(o.prompt_ids, s1c_model_config(m)->vocab_size, &prompt, &n_prompt, &err) != 0) goto fail;
    } else if (gen_encode_prompt(&o, m, tok, o.prompt, &prompt, &n_prompt, &err) != 0) {
        goto fail;
    }
    if (n_prompt == 0) { s1c_fail(&err, "%s: the prompt is empty: it encodes to no tokens", o.model); goto fail; }
    int32_t stop_ids[4];
    s1c_gen_params gp = gen_params(&o, m, tok, n_prompt, stop_ids);
    if (!o.json && o.echo && tok) echo_prompt(tok, prompt, n_prompt);
    if (s1c_generate(m, tok, prompt, n_prompt, &gp, o.json || !tok ? NULL : cli_print_stream, NULL, &res, &err) != 0) goto fail;
    if (o.json) {
        print_json(&o, prompt, n_prompt, &res);
    } else {
        if (!tok)
            for (int i = 0; i < res.n_tokens; i++) printf(i ? " %d" : "%d", res.tokens[i]);
        printf("\n");
        double n = res.n_tokens > 1 ? res.n_tokens - 1 : 0;
        fprintf(stderr, "prompt: %d tokens in %.3f s; generated %d tokens, %.2f tok/s (%s)\n", n_prompt, res.prefill_s,
                res.n_tokens, res.decode_s > 0 ? n / res.decode_s : 0.0, s1c_stop_reason_name(res.stop_reason));
    }
    rc = 0;
    goto done;
fail:
    fflush(stdout);
    cli_error("%s", err.msg);
done:
    s1c_gen_result_free(&res);
    free(prompt);
    s1c_tok_free(tok);
    s1c_model_free(m);
    return rc;
}
