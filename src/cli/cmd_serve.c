/* s1c serve: the OpenAI-compatible server (src/serve) with budget forcing per request. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "generate.h"
#include "s1c/serve.h"

static const char *serve_help =
    "usage: s1c serve --model PATH [--host 127.0.0.1] [--port 8080] [--parallel N] [--api-key KEY] [--ctx N] [options]\n"
    "\n"
    "An OpenAI-compatible HTTP server: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,\n"
    "GET /health, GET /metrics (Prometheus). Every request may carry budget-forcing fields (SPEC.md §8):\n"
    "max_thinking_tokens, min_thinking_tokens, num_waits, wait_str, answer_prefix, think_start, think_end,\n"
    "max_answer_tokens; aliases thinking_budget, thinking_token_budget, thinking_budget_tokens,\n"
    "reasoning_budget_tokens, thinking: {\"budget_tokens\": N}, num_ignore, thinking_n_ignore; and\n"
    "reasoning_effort low|medium|high. Thinking comes back as message.reasoning_content (and .reasoning).\n"
    "\n"
    "  --model PATH  --tokenizer PATH   as for s1c generate\n"
    "  --host ADDR          address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)\n"
    "  --port N             port (default 8080; 0 = any free port, printed at start)\n"
    "  --parallel N         sequences decoded together (default 8; n > 1 choices count each)\n"
    "  --queue N            requests waiting beyond those running; more get 429 (default 256)\n"
    "  --api-key KEY        require \"Authorization: Bearer KEY\" (default: $S1C_API_KEY, else none)\n"
    "  --model-name NAME    the model id /v1/models lists (default: the model path's last part)\n"
    "  --ctx N              context per sequence (default: the model's)\n"
    "  --kv-mem MIB         KV cache memory limit\n"
    KV_TYPE_HELP
    BF16_MATH_HELP
    "  --max-body BYTES     request body limit, 413 beyond (default 1048576)\n"
    "  --max-n N            largest n per request (default 16)\n"
    "  --timeout S          idle connection timeout in seconds (default 30)\n"
    "  --shutdown-grace S   on SIGTERM/SIGINT running requests may finish this long (default 30)\n"
    "  --effort-budgets L,M,H  thinking budgets for reasoning_effort low,medium,high (default 512,2048,8192)\n"
    "  --think              budget forcing (the s1 layout) for every chat request, not only those asking\n"
    "  --quiet              no access log on stderr\n"
    "server-wide defaults (a request's own fields win): --temperature (default 1.0 as OpenAI) --top-p --top-k\n"
    "  --min-p --seed --max-tokens --stop --system and the budget-forcing flags of s1c generate (--think-max,\n"
    "  --think-min, --waits, --wait-str, --answer-prefix, --think-start, --think-end, --answer-max; any of\n"
    "  them turns on --think)\n"
    "\n"
    "example:\n"
    "  s1c serve --model /models/s1.1-7b --port 8080 --parallel 16 --think-max 8000\n"
    "  curl localhost:8080/v1/chat/completions -d '{\"messages\":[{\"role\":\"user\",\"content\":\"2+2?\"}],\n"
    "       \"max_thinking_tokens\":500,\"num_waits\":1}'\n";

static bool parse_budgets(const char *v, int *out) {
    int a, b, c;
    char tail;
    if (sscanf(v, "%d,%d,%d%c", &a, &b, &c, &tail) != 3 || a < 0 || b < 0 || c < 0) return false;
    out[0] = a, out[1] = b, out[2] = c;
    return true;
}

/* Serve-only flags; 1 = taken, 0 = not one, -1 = bad (reported). */
static int parse_serve_flag(int argc, char **argv, int *i, s1c_serve_opts *so, bool *think) {
    const char *a = argv[*i];
    bool ok = true;
    int v;
    if (!strcmp(a, "--host")) ok = arg_str(argc, argv, i, &so->host);
    else if (!strcmp(a, "--port")) ok = arg_int(argc, argv, i, 0, 65535, &so->port);
    else if (!strcmp(a, "--parallel")) ok = arg_int(argc, argv, i, 1, 4096, &so->parallel);
    else if (!strcmp(a, "--queue")) ok = arg_int(argc, argv, i, 0, 1 << 20, &so->queue);
    else if (!strcmp(a, "--api-key")) ok = arg_str(argc, argv, i, &so->api_key);
    else if (!strcmp(a, "--model-name")) ok = arg_str(argc, argv, i, &so->model_name);
    else if (!strcmp(a, "--max-body")) { ok = arg_int(argc, argv, i, 1024, 1 << 30, &v); so->max_body = (size_t)v; }
    else if (!strcmp(a, "--max-n")) ok = arg_int(argc, argv, i, 1, 1024, &so->max_n);
    else if (!strcmp(a, "--timeout")) ok = arg_int(argc, argv, i, 1, 86400, &so->timeout_s);
    else if (!strcmp(a, "--shutdown-grace")) { ok = arg_int(argc, argv, i, 0, 86400, &v); so->shutdown_grace_s = v; }
    else if (!strcmp(a, "--effort-budgets")) {
        const char *s;
        ok = arg_str(argc, argv, i, &s);
        if (ok && !parse_budgets(s, so->effort_budgets)) { cli_error("--effort-budgets: '%s' is not three budgets L,M,H", s); return -1; }
    }
    else if (!strcmp(a, "--think")) *think = true;
    else if (!strcmp(a, "--quiet")) so->quiet = true;
    else return 0;
    return ok ? 1 : -1;
}

static const char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *p = path + n;
    while (p > path && p[-1] != '/') p--;
    static char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(path + n - p), p);
    return name;
}

int cmd_serve(int argc, char **argv) {
    gen_opts o;
    gen_opts_init(&o);
    s1c_serve_opts so = s1c_serve_defaults();
    bool think = false, temperature_set = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { fputs(serve_help, stdout); return 0; }
        if (!strcmp(argv[i], "--temperature")) temperature_set = true;
        int c = parse_serve_flag(argc, argv, &i, &so, &think);
        if (c < 0) return 1;
        if (c > 0) continue;
        c = gen_parse_common(argc, argv, &i, &o);
        if (c < 0) return 1;
        if (c == 0) return cli_error("serve: unknown option '%s' (see s1c serve --help)", argv[i]);
    }
    if (!o.model) return cli_error("serve: --model is required (see s1c serve --help)");
    if (!so.api_key && getenv("S1C_API_KEY") && getenv("S1C_API_KEY")[0]) so.api_key = getenv("S1C_API_KEY");
    so.sampler = o.sp;
    if (!temperature_set) so.sampler.temperature = 1.0f;
    so.max_tokens = o.max_tokens;
    so.ctx = o.ctx;
    so.kv_mem_mib = o.kv_mem_mib;
    so.kv_dtype = o.kv_dtype;
    so.system = o.system;
    so.stops = o.stops;
    so.n_stops = o.n_stops;
    so.bf = o.bf;
    so.bf_on = o.bf_on || think;
    if (so.model_name == s1c_serve_defaults().model_name) so.model_name = base_name(o.model);

    s1c_err err = {{0}};
    s1c_model *m = NULL;
    s1c_tokenizer *tok = NULL;
    s1c_server *srv = NULL;
    /* SIGTERM/SIGINT are taken by sigwait below: block them before any thread starts */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (gen_open_model(&o, &m, &err) != 0 || gen_load_tokenizer(&o, m, &tok, &err) != 0) goto fail;
    if (!tok) { s1c_fail(&err, "%s: serve needs a tokenizer (--tokenizer)", o.model); goto fail; }
    if (s1c_serve_start(&srv, m, tok, &so, &err) != 0) goto fail;
    fprintf(stderr, "s1c serve: %s on http://%s:%d (parallel %d, queue %d%s)\n", so.model_name, so.host, s1c_serve_port(srv),
            so.parallel, so.queue, so.api_key ? ", API key required" : "");
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "s1c serve: %s: finishing running requests (at most %.0f s)\n", sig == SIGTERM ? "SIGTERM" : "SIGINT", so.shutdown_grace_s);
    s1c_serve_stop(srv);
    s1c_serve_free(srv);
    s1c_tok_free(tok);
    s1c_model_free(m);
    fprintf(stderr, "s1c serve: stopped\n");
    return 0;
fail:
    cli_error("%s", err.msg);
    s1c_tok_free(tok);
    s1c_model_free(m);
    return 1;
}
