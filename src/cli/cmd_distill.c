/* s1c distill: teacher reasoning traces for a pool through an OpenAI-compatible API (src/distill/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "s1c/curate.h"

static const char *distill_help =
    "usage: s1c distill --pool POOL.jsonl --endpoint URL --model NAME --out OUT.jsonl [options]\n"
    "\n"
    "Asks a teacher reasoning model (any OpenAI-compatible chat/completions API: vLLM, SGLang,\n"
    "llama.cpp, DeepSeek, OpenRouter, s1c serve, ...) for every question's reasoning and final\n"
    "answer, as s1 did with Gemini and s1.1 with DeepSeek-R1 (SPEC.md §2). The reasoning comes\n"
    "from the reply's reasoning_content / reasoning field, else from <think>...</think> in the\n"
    "content. Each output line is the pool record with thinking_trajectories (a list, as s1K),\n"
    "attempt, trace_tokens, prompt_tokens, completion_tokens, finish_reason, teacher_model,\n"
    "distill_tries and distill_seconds added; a failure (request failed after retries, reply\n"
    "empty, without reasoning, cut at the token limit, not UTF-8, not JSON) is written too, with\n"
    "\"distill_error\": the reason (s1c curate's quality stage drops it).\n"
    "\n"
    "Results are appended and fsync'd as they arrive: kill it at any time and run it again; ids\n"
    "already answered are skipped, failed ones asked again. At the end OUT is rewritten in pool\n"
    "order, one line per id. Pool lines that cannot be used (not JSON, no question, invalid\n"
    "UTF-8, repeated id) are listed in OUT.rejected.jsonl with their line number.\n"
    "\n"
    "  --pool FILE          questions (JSONL; field names below)\n"
    "  --endpoint URL       e.g. http://localhost:8000/v1 (…/chat/completions is appended)\n"
    "  --model NAME         the teacher model\n"
    "  --out FILE           results (JSONL; resumed when it exists)\n"
    "  --concurrency N      requests in flight (default 8)\n"
    "  --rps R              at most R requests started per second (default: no limit)\n"
    "  --timeout S          seconds per request (default 600)\n"
    "  --retries N          retries on 429/5xx/408/timeouts/dropped connections (default 4;\n"
    "                       exponential backoff with jitter, Retry-After honoured)\n"
    "  --max-tokens N       completion limit sent to the server (default: the server's)\n"
    "  --temperature T      sampling temperature (default: the server's)\n"
    "  --system TEXT        a system message before each question\n"
    "  --api-key KEY        default $OPENAI_API_KEY (none sent when neither is set)\n"
    "  --keep-failed        do not ask again for ids whose earlier attempt failed\n"
    "  --tokenizer PATH     count trace_tokens with this tokenizer (default: an estimate)\n"
    "  --id-field, --question-field, --trajectories-field, --attempt-field NAME\n"
    "                       field names (default id, question, thinking_trajectories, attempt)\n"
    "  --quiet              no progress lines\n"
    "\n"
    "example:\n"
    "  s1c distill --pool pool.jsonl --endpoint https://api.deepseek.com/v1 --model deepseek-reasoner \\\n"
    "      --out distilled.jsonl --concurrency 32 --rps 10\n";

/* Lists unusable pool lines in OUT.rejected.jsonl and on stderr (the first few). */
static int write_rejected(const cur_pool *p, const char *out, bool quiet, size_t *n_bad) {
    *n_bad = 0;
    for (size_t i = 0; i < p->n; i++) *n_bad += p->r[i].stage != NULL;
    size_t n = strlen(out) + 16;
    char *path = malloc(n);
    if (!path) return cli_error("distill: out of memory");
    snprintf(path, n, "%s.rejected.jsonl", out);
    if (!*n_bad) {
        remove(path);
        free(path);
        return 0;
    }
    s1c_wfile w;
    s1c_err err = {{0}};
    if (s1c_wfile_open(&w, path, &err)) { free(path); return cli_error("distill: %s", err.msg); }
    size_t shown = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (!p->r[i].stage) continue;
        if (!cur_write_rec(w.fp, &p->r[i])) w.bad = true;
        if (!quiet && shown++ < 5) fprintf(stderr, "s1c: distill: skipped %s\n", p->r[i].reason);
    }
    int rc = s1c_wfile_commit(&w, &err) ? cli_error("distill: %s", err.msg) : 0;
    if (!rc && !quiet) fprintf(stderr, "s1c: distill: %zu unusable pool line(s) listed in %s\n", *n_bad, path);
    free(path);
    return rc;
}

int cmd_distill(int argc, char **argv) {
    const char *pool = NULL, *tok_path = NULL;
    cur_fields f;
    cur_fields_default(&f);
    distill_opts o = {.concurrency = 8, .timeout_s = 600, .retries = 4, .backoff_s = 1, .temperature = -1, .retry_failed = true};
    float rps = 0, timeout = 600, temp = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(distill_help, stdout); return 0; }
        else if (!strcmp(a, "--pool")) ok = arg_str(argc, argv, &i, &pool);
        else if (!strcmp(a, "--endpoint")) ok = arg_str(argc, argv, &i, &o.endpoint);
        else if (!strcmp(a, "--model")) ok = arg_str(argc, argv, &i, &o.model);
        else if (!strcmp(a, "--out")) ok = arg_str(argc, argv, &i, &o.out_path);
        else if (!strcmp(a, "--concurrency")) ok = arg_int(argc, argv, &i, 1, 1024, &o.concurrency);
        else if (!strcmp(a, "--rps")) ok = arg_float(argc, argv, &i, 0, 1e6, &rps);
        else if (!strcmp(a, "--timeout")) ok = arg_float(argc, argv, &i, 0.001, 86400, &timeout);
        else if (!strcmp(a, "--retries")) ok = arg_int(argc, argv, &i, 0, 100, &o.retries);
        else if (!strcmp(a, "--max-tokens")) ok = arg_int(argc, argv, &i, 1, 100000000, &o.max_tokens);
        else if (!strcmp(a, "--temperature")) ok = arg_float(argc, argv, &i, 0, 10, &temp);
        else if (!strcmp(a, "--system")) ok = arg_str(argc, argv, &i, &o.system);
        else if (!strcmp(a, "--api-key")) ok = arg_str(argc, argv, &i, &o.api_key);
        else if (!strcmp(a, "--keep-failed")) o.retry_failed = false;
        else if (!strcmp(a, "--tokenizer")) ok = arg_str(argc, argv, &i, &tok_path);
        else if (!strcmp(a, "--id-field")) ok = arg_str(argc, argv, &i, &f.id);
        else if (!strcmp(a, "--question-field")) ok = arg_str(argc, argv, &i, &f.question);
        else if (!strcmp(a, "--trajectories-field")) ok = arg_str(argc, argv, &i, &f.trajectories);
        else if (!strcmp(a, "--attempt-field")) ok = arg_str(argc, argv, &i, &f.attempt);
        else if (!strcmp(a, "--quiet")) o.quiet = true;
        else return cli_error("distill: unknown option '%s' (see s1c distill --help)", a);
        if (!ok) return 1;
    }
    if (!pool || !o.endpoint || !o.model || !o.out_path)
        return cli_error("distill: --pool, --endpoint, --model and --out are required (see s1c distill --help)");
    if (!strcmp(pool, o.out_path)) return cli_error("distill: --out must not be the pool itself");
    if (strncmp(o.endpoint, "http://", 7) && strncmp(o.endpoint, "https://", 8))
        return cli_error("distill: --endpoint '%s' is not an http:// or https:// URL", o.endpoint);
    o.rps = rps;
    o.timeout_s = timeout;
    o.temperature = temp;
    const char *b = getenv("S1C_NET_BACKOFF"); /* first backoff in seconds (tests shorten it) */
    if (b && atof(b) > 0) o.backoff_s = atof(b);

    s1c_err err = {{0}};
    s1c_tokenizer *tok = NULL;
    if (tok_path) {
        if (s1c_tok_load(&tok, tok_path, 0, &err)) return cli_error("distill: --tokenizer: %s", err.msg);
        if (!s1c_tok_can_encode(tok)) { s1c_tok_free(tok); return cli_error("distill: --tokenizer %s cannot encode text", tok_path); }
        o.tok = tok;
    }
    cur_pool p;
    if (cur_pool_load(&p, pool, &f, &err)) { s1c_tok_free(tok); return cli_error("distill: %s", err.msg); }
    size_t n_bad;
    int rc = write_rejected(&p, o.out_path, o.quiet, &n_bad);
    distill_stats st;
    if (rc == 0 && distill_run(&p, &o, &st, &err)) rc = cli_error("distill: %s", err.msg);
    if (rc == 0 && !o.quiet)
        fprintf(stderr, "[distill] done: %zu ok, %zu failed, %zu already done, %zu unusable line(s); %d request(s); tokens: "
                        "%ld prompt + %ld completion (%ld reasoning by %s)\n",
                st.ok, st.failed, st.skipped, n_bad, st.requests, st.prompt_tokens, st.completion_tokens, st.trace_tokens,
                tok ? "the tokenizer" : "the estimate");
    cur_pool_free(&p);
    s1c_tok_free(tok);
    return rc;
}
