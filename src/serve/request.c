/* JSON body -> srv_req. OpenAI's rules: unknown fields are ignored, a known field of the
 * wrong type or out of range is a 400 naming it. Budget forcing takes SPEC.md §8's names and
 * the aliases other servers use; two names for one option must agree. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"

#define MAX_STR_OPT 256     /* wait_str, answer_prefix, delimiters: bytes */
#define MAX_MESSAGES 4096
#define MAX_PROMPTS 64

int srv_fail(srv_error *e, int status, const char *param, const char *fmt, ...) {
    if (!e) return -1;
    e->status = status;
    snprintf(e->type, sizeof e->type, "%s", status == 401 ? "authentication_error" : status == 429 ? "rate_limit_error"
                                           : status >= 500 ? "server_error" : "invalid_request_error");
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

void srv_req_free(srv_req *r) {
    if (!r) return;
    for (int i = 0; i < r->n_prompts; i++) free(r->prompts[i].ids);
    for (int i = 0; i < r->n_owned; i++) free(r->owned[i]);
    free(r->owned);
    free(r->prompts);
    free(r->msgs);
    cJSON_Delete(r->root);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ typed fields */

static const cJSON *field(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return v && !cJSON_IsNull(v) ? v : NULL; /* null means "not given", as OpenAI treats it */
}

static bool is_int(const cJSON *v, double lo, double hi) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble) && v->valuedouble >= lo && v->valuedouble <= hi;
}

/* An integer field in [lo, hi]: 1 when given, 0 when absent, -1 on a bad value. */
static int get_int(const cJSON *o, const char *name, double lo, double hi, int *out, srv_error *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!is_int(v, lo, hi)) return srv_fail(e, 400, name, "'%s' must be an integer in [%.0f, %.0f]", name, lo, hi);
    *out = (int)v->valuedouble;
    return 1;
}

static int get_num(const cJSON *o, const char *name, double lo, double hi, float *out, srv_error *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return srv_fail(e, 400, name, "'%s' must be a number in [%g, %g]", name, lo, hi);
    *out = (float)v->valuedouble;
    return 1;
}

static int get_bool(const cJSON *o, const char *name, bool *out, srv_error *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return srv_fail(e, 400, name, "'%s' must be a boolean", name);
    *out = cJSON_IsTrue(v);
    return 1;
}

static int get_str(const cJSON *o, const char *name, size_t max, const char **out, srv_error *e) {
    const cJSON *v = field(o, name);
    if (!v) return 0;
    if (!cJSON_IsString(v)) return srv_fail(e, 400, name, "'%s' must be a string", name);
    if (strlen(v->valuestring) > max) return srv_fail(e, 400, name, "'%s' is longer than %zu bytes", name, max);
    *out = v->valuestring;
    return 1;
}

/* ------------------------------------------------------------------ budget forcing */

/* A budget: an integer >= 0, or "auto" (SPEC §5: what the context leaves). */
static int get_budget(const cJSON *v, const char *name, int *out, srv_error *e) {
    if (cJSON_IsString(v) && !strcmp(v->valuestring, "auto")) { *out = S1C_BF_AUTO; return 0; }
    if (!is_int(v, 0, 1 << 24)) return srv_fail(e, 400, name, "'%s' must be an integer >= 0 or \"auto\"", name);
    *out = (int)v->valuedouble;
    return 0;
}

/* Several names for one option: the first given sets it, a later one must agree. */
typedef struct alias_val {
    int value;
    const char *from;
} alias_val;

static int take_alias(alias_val *a, int v, const char *name, srv_error *e) {
    if (a->from && a->value != v) return srv_fail(e, 400, name, "'%s' (%d) disagrees with '%s' (%d)", name, v, a->from, a->value);
    a->value = v;
    a->from = name;
    return 0;
}

static int parse_budget_fields(const cJSON *o, srv_req *r, const s1c_serve_opts *d, srv_error *e) {
    static const char *budget_names[] = {"max_thinking_tokens", "thinking_budget", "thinking_token_budget", "thinking_budget_tokens",
                                         "reasoning_budget_tokens"};
    static const char *wait_names[] = {"num_waits", "num_ignore", "thinking_n_ignore"};
    alias_val budget = {0}, waits = {0};
    for (size_t i = 0; i < sizeof budget_names / sizeof *budget_names; i++) {
        const cJSON *v = field(o, budget_names[i]);
        int b = 0;
        if (v && (get_budget(v, budget_names[i], &b, e) != 0 || take_alias(&budget, b, budget_names[i], e) != 0)) return -1;
    }
    const cJSON *th = field(o, "thinking"); /* Anthropic: {"type": "enabled", "budget_tokens": N} or {"type": "disabled"} */
    if (th) {
        if (!cJSON_IsObject(th)) return srv_fail(e, 400, "thinking", "'thinking' must be an object like {\"budget_tokens\": N}");
        const char *type = NULL;
        if (get_str(th, "type", 32, &type, e) < 0) return -1;
        if (type && strcmp(type, "enabled") && strcmp(type, "disabled")) return srv_fail(e, 400, "thinking.type", "'thinking.type' must be \"enabled\" or \"disabled\"");
        const cJSON *bt = field(th, "budget_tokens");
        int b = 0;
        if (bt && (get_budget(bt, "thinking.budget_tokens", &b, e) != 0 || take_alias(&budget, b, "thinking.budget_tokens", e) != 0)) return -1;
        if (type && !strcmp(type, "disabled") && take_alias(&budget, 0, "thinking.type", e) != 0) return -1;
        r->bf_on = true;
    }
    bool enable = true;
    int got = get_bool(o, "enable_thinking", &enable, e); /* Qwen's switch */
    if (got < 0) return -1;
    if (got && !enable && take_alias(&budget, 0, "enable_thinking", e) != 0) return -1;
    if (got) r->bf_on = true;
    const char *effort = NULL;
    if (get_str(o, "reasoning_effort", 16, &effort, e) < 0) return -1;
    if (effort) {
        static const char *levels[] = {"low", "medium", "high"};
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (!strcmp(effort, levels[i])) k = i;
        if (k < 0) return srv_fail(e, 400, "reasoning_effort", "'reasoning_effort' must be \"low\", \"medium\" or \"high\"");
        if (!budget.from) budget.value = d->effort_budgets[k]; /* an explicit budget wins */
        r->bf_on = true;
        if (!budget.from) budget.from = "reasoning_effort";
    }
    if (budget.from) { r->bf.max_thinking_tokens = budget.value; r->bf_on = true; }
    for (size_t i = 0; i < sizeof wait_names / sizeof *wait_names; i++) {
        int w;
        int g = get_int(o, wait_names[i], 0, 1 << 16, &w, e);
        if (g < 0 || (g && take_alias(&waits, w, wait_names[i], e) != 0)) return -1;
    }
    if (waits.from) { r->bf.num_waits = waits.value; r->bf_on = true; }
    int g, v;
    if ((g = get_int(o, "min_thinking_tokens", 0, 1 << 24, &v, e)) < 0) return -1;
    if (g) { r->bf.min_thinking_tokens = v; r->bf_on = true; }
    const cJSON *am = field(o, "max_answer_tokens");
    if (am) {
        if (!is_int(am, 0, 1 << 24)) return srv_fail(e, 400, "max_answer_tokens", "'max_answer_tokens' must be an integer >= 0");
        r->bf.max_answer_tokens = (int)am->valuedouble;
        r->bf_on = true;
    }
    const char **strs[] = {&r->bf.wait_str, &r->bf.answer_prefix, &r->bf.think_start, &r->bf.think_end};
    const char *names[] = {"wait_str", "answer_prefix", "think_start", "think_end"};
    for (int i = 0; i < 4; i++) {
        if ((g = get_str(o, names[i], MAX_STR_OPT, strs[i], e)) < 0) return -1;
        if (g) r->bf_on = true;
        if (g && i == 2) r->think_start_set = true;
        if (g && i == 3) r->think_end_set = true;
    }
    if (r->think_end_set && !r->bf.think_end[0]) return srv_fail(e, 400, "think_end", "'think_end' must not be empty");
    if (r->bf.max_thinking_tokens >= 0 && r->bf.min_thinking_tokens > r->bf.max_thinking_tokens)
        return srv_fail(e, 400, "min_thinking_tokens", "'min_thinking_tokens' (%d) exceeds the thinking budget (%d)", r->bf.min_thinking_tokens,
                        r->bf.max_thinking_tokens);
    return 0;
}

/* ------------------------------------------------------------------ chat messages */

static int keep_string(srv_req *r, char *s, srv_error *e) {
    char **no = realloc(r->owned, (size_t)(r->n_owned + 1) * sizeof *no);
    if (!no) { free(s); return srv_fail(e, 500, NULL, "out of memory"); }
    r->owned = no;
    r->owned[r->n_owned++] = s;
    return 0;
}

/* content: a string, null, or an array of {"type": "text", "text": ...} parts (joined). */
static int message_content(srv_req *r, const cJSON *m, int i, const char **out, srv_error *e) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    const cJSON *c = field(m, "content");
    if (!c) { *out = ""; return 0; }
    if (cJSON_IsString(c)) { *out = c->valuestring; return 0; }
    if (!cJSON_IsArray(c)) return srv_fail(e, 400, param, "'%s' must be a string or an array of text parts", param);
    size_t total = 1;
    const cJSON *p;
    cJSON_ArrayForEach(p, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type"), *text = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p) || !cJSON_IsString(type) || strcmp(type->valuestring, "text") || !cJSON_IsString(text))
            return srv_fail(e, 400, param, "'%s': only parts {\"type\": \"text\", \"text\": ...} are supported", param);
        total += strlen(text->valuestring);
    }
    char *s = malloc(total);
    if (!s) return srv_fail(e, 500, NULL, "out of memory");
    size_t k = 0;
    cJSON_ArrayForEach(p, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(p, "text")->valuestring;
        size_t l = strlen(t);
        memcpy(s + k, t, l);
        k += l;
    }
    s[k] = 0;
    *out = s;
    return keep_string(r, s, e);
}

/* An earlier assistant turn keeps only its answer: the reasoning (anything up to the end of
 * thinking, or a <think>...</think> block) is not sent back to the model. */
static int drop_reasoning(srv_req *r, const char **content, srv_error *e) {
    const char *ends[] = {r->bf.think_end, "</think>", "<|im_start|>answer"};
    const char *s = *content, *cut = NULL;
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(ends[k]);
        if (!l) continue;
        for (const char *h = strstr(s, ends[k]); h; h = strstr(h + 1, ends[k]))
            if (!cut || h + l > cut) cut = h + l;
    }
    if (!cut) return 0;
    while (*cut == '\n' || *cut == ' ') cut++;
    char *c = strdup(cut);
    if (!c) return srv_fail(e, 500, NULL, "out of memory");
    *content = c;
    return keep_string(r, c, e);
}

static int parse_messages(const cJSON *o, srv_req *r, srv_error *e) {
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "messages");
    if (!ms) return srv_fail(e, 400, "messages", "'messages' is required");
    if (!cJSON_IsArray(ms)) return srv_fail(e, 400, "messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(ms);
    if (n == 0) return srv_fail(e, 400, "messages", "'messages' must not be empty");
    if (n > MAX_MESSAGES) return srv_fail(e, 400, "messages", "'messages' has %d entries (at most %d)", n, MAX_MESSAGES);
    r->msgs = calloc((size_t)n, sizeof *r->msgs);
    if (!r->msgs) return srv_fail(e, 500, NULL, "out of memory");
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, ms) {
        char param[48];
        snprintf(param, sizeof param, "messages[%d].role", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsObject(m)) return srv_fail(e, 400, param, "'messages[%d]' must be an object", i);
        if (!cJSON_IsString(role)) return srv_fail(e, 400, param, "'%s' must be a string", param);
        const char *rl = role->valuestring;
        if (!strcmp(rl, "developer")) rl = "system"; /* OpenAI's newer name for the system turn */
        else if (strcmp(rl, "system") && strcmp(rl, "user") && strcmp(rl, "assistant"))
            return srv_fail(e, 400, param, "'%s' must be \"system\", \"developer\", \"user\" or \"assistant\" (got \"%.40s\")", param, rl);
        const char *content = "";
        if (message_content(r, m, i, &content, e) != 0) return -1;
        if (!strcmp(rl, "assistant") && drop_reasoning(r, &content, e) != 0) return -1;
        r->msgs[i++] = (s1c_chat_msg){rl, content};
    }
    r->n_msgs = i;
    return 0;
}

/* ------------------------------------------------------------------ completions prompts */

static int ids_of(const cJSON *a, const char *param, srv_prompt *p, srv_error *e) {
    int n = cJSON_GetArraySize(a);
    if (n == 0) return srv_fail(e, 400, param, "'%s' is an empty token list", param);
    p->ids = malloc((size_t)n * sizeof(int32_t));
    if (!p->ids) return srv_fail(e, 500, NULL, "out of memory");
    const cJSON *t;
    cJSON_ArrayForEach(t, a) {
        if (!is_int(t, 0, INT32_MAX)) return srv_fail(e, 400, param, "'%s' must hold token ids (integers >= 0)", param);
        p->ids[p->n_ids++] = (int32_t)t->valuedouble;
    }
    return 0;
}

/* prompt: a string, an array of strings, an array of token ids, or an array of those. */
static int parse_prompts(const cJSON *o, srv_req *r, srv_error *e) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "prompt");
    if (!p) return srv_fail(e, 400, "prompt", "'prompt' is required");
    int n = cJSON_IsArray(p) ? cJSON_GetArraySize(p) : 1;
    bool ids = cJSON_IsArray(p) && n > 0 && cJSON_IsNumber(cJSON_GetArrayItem(p, 0));
    if (ids) n = 1;
    if (!cJSON_IsString(p) && !cJSON_IsArray(p)) return srv_fail(e, 400, "prompt", "'prompt' must be a string, an array of strings or token ids");
    if (n == 0) return srv_fail(e, 400, "prompt", "'prompt' must not be empty");
    if (n > MAX_PROMPTS) return srv_fail(e, 400, "prompt", "'prompt' has %d prompts (at most %d)", n, MAX_PROMPTS);
    r->prompts = calloc((size_t)n, sizeof *r->prompts);
    if (!r->prompts) return srv_fail(e, 500, NULL, "out of memory");
    r->n_prompts = n;
    if (cJSON_IsString(p)) { r->prompts[0].text = p->valuestring; return 0; }
    if (ids) return ids_of(p, "prompt", &r->prompts[0], e);
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(p, i);
        char param[32];
        snprintf(param, sizeof param, "prompt[%d]", i);
        if (cJSON_IsString(x)) r->prompts[i].text = x->valuestring;
        else if (cJSON_IsArray(x)) { if (ids_of(x, param, &r->prompts[i], e) != 0) return -1; }
        else return srv_fail(e, 400, param, "'%s' must be a string or an array of token ids", param);
    }
    return 0;
}

/* ------------------------------------------------------------------ the rest */

static int parse_stops(const cJSON *o, srv_req *r, const s1c_serve_opts *d, srv_error *e) {
    for (int i = 0; i < d->n_stops && r->n_stops < SRV_MAX_STOPS; i++) r->stops[r->n_stops++] = d->stops[i];
    const cJSON *s = field(o, "stop");
    if (!s) return 0;
    if (cJSON_IsString(s)) {
        if (!s->valuestring[0]) return srv_fail(e, 400, "stop", "'stop' must not be empty");
        if (r->n_stops == SRV_MAX_STOPS) return srv_fail(e, 400, "stop", "at most %d stop strings", SRV_MAX_STOPS);
        r->stops[r->n_stops++] = s->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(s)) return srv_fail(e, 400, "stop", "'stop' must be a string or an array of strings");
    const cJSON *x;
    cJSON_ArrayForEach(x, s) {
        if (!cJSON_IsString(x) || !x->valuestring[0]) return srv_fail(e, 400, "stop", "'stop' must hold non-empty strings");
        if (strlen(x->valuestring) > MAX_STR_OPT) return srv_fail(e, 400, "stop", "a stop string is longer than %d bytes", MAX_STR_OPT);
        if (r->n_stops == SRV_MAX_STOPS) return srv_fail(e, 400, "stop", "at most %d stop strings", SRV_MAX_STOPS);
        r->stops[r->n_stops++] = x->valuestring;
    }
    return 0;
}

static int parse_sampling(const cJSON *o, srv_req *r, const s1c_serve_opts *d, srv_error *e) {
    r->sampler = d->sampler;
    r->max_tokens = d->max_tokens;
    int g;
    if (get_int(o, "max_tokens", 1, 1 << 24, &r->max_tokens, e) < 0) return -1;
    if (get_int(o, "max_completion_tokens", 1, 1 << 24, &r->max_tokens, e) < 0) return -1;
    if (get_num(o, "temperature", 0, 2, &r->sampler.temperature, e) < 0) return -1;
    if (get_num(o, "top_p", 1e-9, 1, &r->sampler.top_p, e) < 0) return -1;
    if (get_int(o, "top_k", 0, 1 << 24, &r->sampler.top_k, e) < 0) return -1;         /* vLLM/llama.cpp extension */
    if (get_num(o, "min_p", 0, 1, &r->sampler.min_p, e) < 0) return -1;              /* vLLM/llama.cpp extension */
    if (get_num(o, "repetition_penalty", 1e-3, 100, &r->sampler.repeat_penalty, e) < 0) return -1;
    const cJSON *seed = field(o, "seed");
    if (seed) {
        if (!cJSON_IsNumber(seed) || !isfinite(seed->valuedouble) || seed->valuedouble != floor(seed->valuedouble) || fabs(seed->valuedouble) > 9.007199254740992e15)
            return srv_fail(e, 400, "seed", "'seed' must be an integer");
        r->sampler.seed = (uint64_t)(int64_t)seed->valuedouble;
        r->seed_set = true;
    }
    r->n = 1;
    if ((g = get_int(o, "n", 1, d->max_n, &r->n, e)) < 0) return -1;
    if (get_bool(o, "stream", &r->stream, e) < 0) return -1;
    const cJSON *so = field(o, "stream_options");
    if (so && !cJSON_IsObject(so)) return srv_fail(e, 400, "stream_options", "'stream_options' must be an object");
    if (so && get_bool(so, "include_usage", &r->include_usage, e) < 0) return -1;
    return 0;
}

static int parse_logprobs(const cJSON *o, srv_req *r, srv_error *e) {
    const cJSON *lp = field(o, "logprobs");
    if (r->kind == SRV_CHAT) {
        if (lp && !cJSON_IsBool(lp)) return srv_fail(e, 400, "logprobs", "'logprobs' must be a boolean");
        r->logprobs = lp && cJSON_IsTrue(lp);
        if (get_int(o, "top_logprobs", 0, 20, &r->top_logprobs, e) < 0) return -1;
        if (r->top_logprobs > 0 && !r->logprobs) return srv_fail(e, 400, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
    } else if (lp) {
        /* completions: logprobs is how many alternatives per position (0..5) */
        if (!is_int(lp, 0, 5)) return srv_fail(e, 400, "logprobs", "'logprobs' must be an integer in [0, 5]");
        r->logprobs = true;
        r->top_logprobs = (int)lp->valuedouble;
    }
    if (r->kind == SRV_COMPLETION && get_bool(o, "echo", &r->echo, e) < 0) return -1;
    return 0;
}

int srv_parse_request(srv_req *r, int kind, const char *body, size_t len, const s1c_serve_opts *d, srv_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->bf = d->bf;
    r->bf_on = d->bf_on && kind == SRV_CHAT;
    r->root = cJSON_ParseWithLength(body, len);
    if (!r->root) return srv_fail(e, 400, NULL, "the body is not valid JSON");
    if (!cJSON_IsObject(r->root)) return srv_fail(e, 400, NULL, "the body must be a JSON object");
    const cJSON *model = field(r->root, "model");
    if (model && !cJSON_IsString(model)) return srv_fail(e, 400, "model", "'model' must be a string");
    if (parse_sampling(r->root, r, d, e) != 0 || parse_stops(r->root, r, d, e) != 0 || parse_logprobs(r->root, r, e) != 0 ||
        parse_budget_fields(r->root, r, d, e) != 0)
        return -1;
    if (kind == SRV_CHAT) return parse_messages(r->root, r, e);
    return parse_prompts(r->root, r, e);
}
