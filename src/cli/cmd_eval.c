/* s1c eval: a benchmark under a sweep of thinking budgets × forced waits, graded offline;
 * writes a run directory (samples.jsonl, summary.json, scaling.svg, report.html). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "generate.h"
#include "s1c/eval.h"

static const char *eval_help =
    "usage: s1c eval --model PATH (--bench aime24|aime25|math500 | --bench-file F) --out DIR [options]\n"
    "       s1c eval --regrade DIR\n"
    "       s1c eval --compare DIR_A DIR_B   (per setting: accuracies, problems only one got right, McNemar p)\n"
    "\n"
    "  --bench NAME            a benchmark shipped inside s1c\n"
    "  --bench-file F          any JSONL; --question-field Q (default question) --answer-field A (default answer)\n"
    "  --bench gpqa --bench-file F  GPQA-Diamond from your copy (its CSV, or JSONL with the same columns or\n"
    "                          question/choices/answer): choices shuffled per problem (--gpqa-seed S [0]),\n"
    "                          the letter mapping kept in every sample record, graded by letter\n"
    "  --limit N               the first N problems\n"
    "  --think-budgets LIST    thinking budgets to sweep, e.g. 500,1000,2000 (none = no budget, auto) [none];\n"
    "                          step-conditional: numbers of steps\n"
    "  --waits LIST            numbers of forced \"Wait\"s to sweep, e.g. 0,1,2 [0]\n"
    "  --samples K             samples per problem and setting; majority vote over their answers [1]\n"
    "  --answer-max N          limit of the answer phase [until the context is full]\n"
    "  --kv-type T             KV cache element type: auto, f32, f16 or bf16 (as generate) [auto]\n"
    "  --bf16-math M           BF16 weights: dot (bf16 dot products, 2x the FLOP rate; the default with AVX512_BF16)\n"
    "                          or exact (widened to f32; the default elsewhere)\n"
    "  --method NAME           the test-time control (the paper's Table 3) [budget-forcing]:\n"
    "                          budget-forcing     end forced at each budget, --waits extend (s1)\n"
    "                          token-conditional  the question says \"Think for up to N tokens.\" for each budget N\n"
    "                          step-conditional   \"Think for up to N steps.\" for each N in --think-budgets; steps\n"
    "                                             are s1's markers (\"<|im_start|>N steps left\") in the thinking,\n"
    "                                             else its paragraphs; Control compares steps with N\n"
    "                          class-conditional  a short-thinking and a long-thinking prompt (budgets ignored)\n"
    "                          rejection          redraw (seed+1, ...) until the thinking fits the budget,\n"
    "                                             --reject-tries N at most [8]; needs --temperature > 0\n"
    "  --out DIR               the run directory; an existing one is resumed (finished samples are kept)\n"
    "  --separate-runs         run each budget as its own sequence (by default a greedy sweep decodes one\n"
    "                          trajectory per problem and forks at each budget: the same results, less work)\n"
    "  --regrade DIR           re-grade a run's stored answers and rewrite its summary and reports\n"
    "  --quiet                 no progress line (otherwise on stderr: a bar with samples done, running\n"
    "                          accuracy ±95% CI, samples/s and ETA, samples in error counted apart; redrawn\n"
    "                          on a terminal, a line per 5% or 10 s in a log)\n"
    "\n"
    "remote (any OpenAI-compatible server: vLLM, llama.cpp, SGLang, s1c serve); every --method runs here\n"
    "too (prompt-side controls send their suffix, rejection redraws with seed+1, ...):\n"
    "  --endpoint URL          base URL, e.g. http://host:8000/v1; repeat to spread requests over a fleet\n"
    "                          (--model is then the served model's name)\n"
    "  --concurrency N         requests in flight at once, over all endpoints [8]\n"
    "  --remote-bf client|server  client: s1's loop here through /v1/completions (works everywhere);\n"
    "                          server: send the budget fields with each request (s1c serve) [client]\n"
    "  --template NAME         client mode: the prompt's chat template: qwen2.5, chatml, qwq, r1 [qwen2.5]\n"
    "  --remote-max-tokens N   client mode: the cap of a phase no budget limits (the prompt-side controls'\n"
    "                          thinking, a budget of none); keep it within the server's context [32768]\n"
    "  --api-key KEY           default $OPENAI_API_KEY\n"
    "  --request-timeout S     a request's limit, whole transfer [600]\n"
    "  --retries N             tries again after a 5xx, 429, 408, a timeout or no connection, with\n"
    "                          exponential backoff starting at --retry-backoff S [4, 1]\n"
    "  --endpoint-backoff S    a request that still fails puts its endpoint in back-off: no new requests\n"
    "                          for S seconds (doubling per further failure, 8x at most; then one probe at a\n"
    "                          time) while another endpoint is live; the sample moves on to an endpoint it\n"
    "                          has not tried [30]\n"
    "  --stop-after-failures N stop the run early when N requests in a row failed, on every endpoint, with\n"
    "                          no success between (the servers are down: what finished is kept, a rerun\n"
    "                          goes on from there) [16]\n"
    "  sampling flags and --wait-str, --answer-prefix, --think-start, --think-end as in s1c generate\n"
    "\n"
    "A sample that fails on every endpoint it could try is written to samples.jsonl as an error record\n"
    "(\"error\": what failed, where, the HTTP status or connection error and the tries; \"correct\": null)\n"
    "and the run goes on: errors count in no accuracy and never as wrong; summary.json (errors per point\n"
    "and in all), the progress line and the report show them; the exit status is then 1, and running\n"
    "the same command again retries exactly those samples.\n"
    "\n"
    "Metrics (SPEC.md §6): Control = fraction of settings whose average thinking stays within the\n"
    "budget (in steps for step-conditional); Scaling = average slope over all pairs of settings, in\n"
    "accuracy percentage points per 1,000 thinking tokens; Performance = best accuracy. Accuracy with\n"
    "a 95% Wilson interval.\n"
    "\n"
    "example:\n"
    "  s1c eval --model /tmp/model --bench aime24 --think-budgets 500,1000,2000 --waits 0,1 --out runs/aime24\n";

static int load_bench(eval_bench *b, const char *bench, const char *file, const char *qf, const char *af, uint64_t gpqa_seed,
                      s1c_err *err) {
    if (bench && !strcmp(bench, "gpqa")) return eval_bench_gpqa(b, file, gpqa_seed, err);
    return bench ? eval_bench_builtin(b, bench, err) : eval_bench_file(b, file, qf, af, err);
}

/* Prints DIR/summary.json on stdout. */
static int print_summary(const char *out) {
    s1c_err err;
    char *sp = s1c_path_join(out, "summary.json"), *text = NULL;
    int rc = s1c_read_file(sp, 64u << 20, &text, NULL, &err) == 0 ? 0 : cli_error("%s", err.msg);
    if (text) fputs(text, stdout);
    free(text);
    free(sp);
    return rc;
}

/* "500,1000,none,auto" */
static int parse_list(const char *flag, const char *s, int *out, int cap, bool budgets) {
    int n = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        if (n == cap) return cli_error("%s: at most %d values", flag, cap), -1;
        char *end;
        if (budgets && !strcmp(t, "none")) out[n++] = S1C_BF_UNLIMITED;
        else if (budgets && !strcmp(t, "auto")) out[n++] = S1C_BF_AUTO;
        else {
            long v = strtol(t, &end, 10);
            if (end == t || *end || v < 0 || v > (1 << 24)) return cli_error("%s: '%s' is not a non-negative integer%s", flag, t, budgets ? ", none or auto" : ""), -1;
            out[n++] = (int)v;
        }
    }
    if (n == 0) return cli_error("%s: empty list", flag), -1;
    return n;
}

int cmd_eval(int argc, char **argv) {
    gen_opts o;
    gen_opts_init(&o);
    const char *bench = NULL, *bench_file = NULL, *qf = "question", *af = "answer", *out = NULL, *regrade = NULL, *method = "budget-forcing";
    int budgets[64] = {S1C_BF_UNLIMITED}, waits[64] = {0}, n_budgets = 1, n_waits = 1, limit = 0, samples = 1, answer_max = S1C_BF_UNLIMITED;
    bool quiet = false, separate = false;
    const char *endpoints[64], *remote_bf = "client", *template_name = "qwen2.5", *api_key = NULL;
    int n_endpoints = 0, concurrency = 8, remote_max = 32768, retries = 4, stop_after = 16;
    float request_timeout = 600, retry_backoff = 1, endpoint_backoff = 30;
    uint64_t gpqa_seed = 0;
    const char *compare_a = NULL, *compare_b = NULL;
    int reject_tries = 8;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(eval_help, stdout); return 0; }
        else if (!strcmp(a, "--waits")) {
            const char *v;
            if (!arg_str(argc, argv, &i, &v) || (n_waits = parse_list("--waits", v, waits, 64, false)) < 0) return 1;
            continue;
        }
        else if (!strcmp(a, "--answer-max")) { ok = arg_int(argc, argv, &i, 0, 1 << 24, &answer_max); if (ok) continue; return 1; }
        int c = gen_parse_common(argc, argv, &i, &o);
        if (c < 0) return 1;
        if (c > 0) continue;
        if (!strcmp(a, "--bench")) ok = arg_str(argc, argv, &i, &bench);
        else if (!strcmp(a, "--bench-file")) ok = arg_str(argc, argv, &i, &bench_file);
        else if (!strcmp(a, "--question-field")) ok = arg_str(argc, argv, &i, &qf);
        else if (!strcmp(a, "--answer-field")) ok = arg_str(argc, argv, &i, &af);
        else if (!strcmp(a, "--limit")) ok = arg_int(argc, argv, &i, 1, 1 << 30, &limit);
        else if (!strcmp(a, "--samples")) ok = arg_int(argc, argv, &i, 1, 4096, &samples);
        else if (!strcmp(a, "--out")) ok = arg_str(argc, argv, &i, &out);
        else if (!strcmp(a, "--regrade")) ok = arg_str(argc, argv, &i, &regrade);
        else if (!strcmp(a, "--compare")) {
            ok = arg_str(argc, argv, &i, &compare_a) && arg_str(argc, argv, &i, &compare_b);
            if (!ok) return cli_error("eval: --compare takes two run directories");
        }
        else if (!strcmp(a, "--method")) ok = arg_str(argc, argv, &i, &method);
        else if (!strcmp(a, "--quiet")) quiet = true;
        else if (!strcmp(a, "--separate-runs")) separate = true;
        else if (!strcmp(a, "--endpoint")) {
            if (n_endpoints == 64) return cli_error("eval: at most 64 --endpoint");
            ok = arg_str(argc, argv, &i, &endpoints[n_endpoints]);
            n_endpoints += ok;
        }
        else if (!strcmp(a, "--gpqa-seed")) ok = arg_u64(argc, argv, &i, &gpqa_seed);
        else if (!strcmp(a, "--reject-tries")) ok = arg_int(argc, argv, &i, 1, 1 << 16, &reject_tries);
        else if (!strcmp(a, "--concurrency")) ok = arg_int(argc, argv, &i, 1, 1024, &concurrency);
        else if (!strcmp(a, "--remote-bf")) ok = arg_str(argc, argv, &i, &remote_bf);
        else if (!strcmp(a, "--template")) ok = arg_str(argc, argv, &i, &template_name);
        else if (!strcmp(a, "--api-key")) ok = arg_str(argc, argv, &i, &api_key);
        else if (!strcmp(a, "--remote-max-tokens")) ok = arg_int(argc, argv, &i, 1, 1 << 24, &remote_max);
        else if (!strcmp(a, "--request-timeout")) ok = arg_float(argc, argv, &i, 0.001, 86400, &request_timeout);
        else if (!strcmp(a, "--retries")) ok = arg_int(argc, argv, &i, 0, 100, &retries);
        else if (!strcmp(a, "--retry-backoff")) ok = arg_float(argc, argv, &i, 0.001, 3600, &retry_backoff);
        else if (!strcmp(a, "--endpoint-backoff")) ok = arg_float(argc, argv, &i, 0.001, 86400, &endpoint_backoff);
        else if (!strcmp(a, "--stop-after-failures")) ok = arg_int(argc, argv, &i, 1, 1 << 30, &stop_after);
        else if (!strcmp(a, "--think-budgets")) {
            const char *v;
            ok = arg_str(argc, argv, &i, &v);
            if (ok && (n_budgets = parse_list("--think-budgets", v, budgets, 64, true)) < 0) return 1;
        }
        else return cli_error("eval: unknown option '%s' (see s1c eval --help)", a);
        if (!ok) return 1;
    }
    s1c_err err = {{0}};
    if (regrade) return eval_regrade(regrade, &err) == 0 ? 0 : cli_error("%s", err.msg);
    if (compare_a) return eval_compare(compare_a, compare_b, stdout, &err) == 0 ? 0 : cli_error("%s", err.msg);
    int method_id = eval_method_from_name(method);
    if (method_id < 0)
        return cli_error("eval: --method must be budget-forcing, token-conditional, step-conditional, class-conditional or rejection");
    if (!o.model) return cli_error("eval: --model is required");
    if (!out) return cli_error("eval: --out DIR is required");
    bool gpqa = bench && !strcmp(bench, "gpqa");
    if (gpqa && !bench_file) return cli_error("eval: --bench gpqa needs --bench-file (GPQA's CSV or JSONL; it is not shipped)");
    if (!gpqa && !bench == !bench_file) return cli_error("eval: give exactly one of --bench and --bench-file");
    eval_opts eo = {.out_dir = out, .budgets = budgets, .n_budgets = n_budgets, .waits = waits, .n_waits = n_waits,
                    .samples = samples, .sampler = o.sp, .bf = o.bf, .max_answer_tokens = answer_max, .limit = limit, .quiet = quiet,
                    .no_sweep_forks = separate, .method = method_id, .reject_tries = reject_tries, .kv_dtype = o.kv_dtype};
    if (n_endpoints > 0) {
        eval_remote r = {.endpoints = endpoints, .n_endpoints = n_endpoints, .model = o.model, .api_key = api_key,
                         .concurrency = concurrency, .max_tokens = remote_max, .timeout_s = request_timeout, .retries = retries,
                         .retry_backoff_s = retry_backoff, .endpoint_backoff_s = endpoint_backoff, .stop_after = stop_after};
        if (!strcmp(remote_bf, "server")) r.server_bf = true;
        else if (strcmp(remote_bf, "client")) return cli_error("eval: --remote-bf must be client or server");
        static const struct { const char *name; int t; } templates[] = {
            {"qwen2.5", S1C_CHAT_QWEN25}, {"chatml", S1C_CHAT_CHATML}, {"qwq", S1C_CHAT_QWQ}, {"r1", S1C_CHAT_R1_DISTILL}};
        r.chat_template = -1;
        for (size_t k = 0; k < sizeof templates / sizeof templates[0]; k++)
            if (!strcmp(template_name, templates[k].name)) r.chat_template = templates[k].t;
        if (r.chat_template < 0) return cli_error("eval: --template must be qwen2.5, chatml, qwq or r1");
        if ((r.chat_template == S1C_CHAT_QWQ || r.chat_template == S1C_CHAT_R1_DISTILL) && !o.think_start_set) eo.bf.think_start = "<think>";
        if ((r.chat_template == S1C_CHAT_QWQ || r.chat_template == S1C_CHAT_R1_DISTILL) && !o.think_end_set) eo.bf.think_end = "</think>";
        eval_bench rb = {0};
        int rrc = load_bench(&rb, bench, bench_file, qf, af, gpqa_seed, &err);
        if (rrc == 0) rrc = eval_run_remote(&r, &rb, &eo, &err);
        eval_bench_free(&rb);
        if (rrc < 0) return cli_error("%s", err.msg);
        int prc = print_summary(out);
        /* samples that ended in error: the summary is written, but the run is not complete */
        return rrc > 0 ? cli_error("eval: %s", err.msg) : prc;
    }
    eval_bench b = {0};
    s1c_model *m = NULL;
    s1c_tokenizer *tok = NULL;
    int rc = 1;
    if (load_bench(&b, bench, bench_file, qf, af, gpqa_seed, &err) != 0) goto fail;
    if (gen_open_model(&o, &m, &err) != 0 || gen_load_tokenizer(&o, m, &tok, &err) != 0) goto fail;
    if (!tok) { s1c_fail(&err, "%s: eval needs a tokenizer", o.model); goto fail; }
    int tmpl = s1c_tok_chat_template(tok);
    if ((tmpl == S1C_CHAT_QWQ || tmpl == S1C_CHAT_R1_DISTILL) && !o.think_start_set) o.bf.think_start = "<think>";
    if ((tmpl == S1C_CHAT_QWQ || tmpl == S1C_CHAT_R1_DISTILL) && !o.think_end_set) o.bf.think_end = "</think>";
    eo.bf = o.bf;
    if (eval_run(m, tok, &b, &eo, &err) != 0) goto fail;
    rc = print_summary(out);
    goto done;
fail:
    cli_error("%s", err.msg);
done:
    eval_bench_free(&b);
    s1c_tok_free(tok);
    s1c_model_free(m);
    return rc;
}
