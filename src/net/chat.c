/* OpenAI-compatible chat/completions over libcurl, with retries (see include/s1c/net.h). */
#include "s1c/net.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#define NET_MAX_BODY (64u << 20)   /* a response larger than this is an error */
#define NET_MAX_BACKOFF_S 30.0
#define NET_MAX_RETRY_AFTER_S 120.0

struct net_client {
    char *url, *url_completions, *auth; /* auth: "Authorization: Bearer KEY" or NULL */
    long timeout_ms;
    int max_retries;
    double backoff_s;
};

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;
static void global_init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int net_client_new(net_client **out, const net_client_opts *o, s1c_err *err) {
    *out = NULL;
    pthread_once(&g_once, global_init);
    if (g_init_rc != CURLE_OK) return s1c_fail(err, "net: curl_global_init failed: %s", curl_easy_strerror(g_init_rc));
    if (!o || !o->base_url || !*o->base_url) return s1c_fail(err, "net: no endpoint URL given");
    if (strncmp(o->base_url, "http://", 7) && strncmp(o->base_url, "https://", 8))
        return s1c_fail(err, "net: endpoint '%s' is not an http:// or https:// URL", o->base_url);
    net_client *c = calloc(1, sizeof *c);
    if (!c) return s1c_fail(err, "net: out of memory");
    size_t n = strlen(o->base_url);
    while (n > 0 && o->base_url[n - 1] == '/') n--;
    /* the base is the URL without a trailing /chat/completions or /completions */
    static const char suffix[] = "/chat/completions", suffix2[] = "/completions";
    if (n >= sizeof suffix - 1 && !memcmp(o->base_url + n - (sizeof suffix - 1), suffix, sizeof suffix - 1))
        n -= sizeof suffix - 1;
    else if (n >= sizeof suffix2 - 1 && !memcmp(o->base_url + n - (sizeof suffix2 - 1), suffix2, sizeof suffix2 - 1))
        n -= sizeof suffix2 - 1;
    c->url = malloc(n + sizeof suffix);
    c->url_completions = malloc(n + sizeof suffix2);
    const char *key = o->api_key ? o->api_key : getenv("OPENAI_API_KEY");
    if (key && *key) {
        size_t kn = strlen(key) + 32;
        c->auth = malloc(kn);
        if (c->auth) snprintf(c->auth, kn, "Authorization: Bearer %s", key);
    }
    if (!c->url || !c->url_completions || (key && *key && !c->auth)) {
        net_client_free(c);
        return s1c_fail(err, "net: out of memory");
    }
    memcpy(c->url, o->base_url, n);
    strcpy(c->url + n, suffix);
    memcpy(c->url_completions, o->base_url, n);
    strcpy(c->url_completions + n, suffix2);
    c->timeout_ms = (long)((o->timeout_s > 0 ? o->timeout_s : 120.0) * 1000.0);
    if (c->timeout_ms < 1) c->timeout_ms = 1;
    c->max_retries = o->max_retries < 0 ? 4 : o->max_retries;
    c->backoff_s = o->backoff_s > 0 ? o->backoff_s : 1.0;
    *out = c;
    return 0;
}

void net_client_free(net_client *c) {
    if (!c) return;
    free(c->url);
    free(c->url_completions);
    free(c->auth);
    free(c);
}

const char *net_client_url(const net_client *c) { return c->url; }

void net_chat_result_free(net_chat_result *r) {
    if (!r) return;
    free(r->content);
    free(r->reasoning);
    free(r->finish_reason);
    free(r->budget_forcing);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ one request */

typedef struct body {
    char *data;
    size_t len, cap;
    bool too_big;
} body;

static size_t on_write(char *p, size_t size, size_t nmemb, void *user) {
    body *b = user;
    size_t n = size * nmemb;
    if (b->len + n + 1 > NET_MAX_BODY) { b->too_big = true; return 0; }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

/* A short printable excerpt of a response body for an error line: the "error.message" of an
 * OpenAI-style error object if there is one, else the first bytes, newlines flattened. */
static void body_excerpt(const body *b, char *out, size_t cap) {
    out[0] = 0;
    if (!b->data || !b->len) return;
    const char *src = b->data;
    cJSON *j = cJSON_ParseWithLength(b->data, b->len);
    cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "error") : NULL;
    cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message") : e;
    if (cJSON_IsString(m)) src = m->valuestring;
    size_t i = 0;
    for (; src[i] && i + 1 < cap && i < 200; i++) out[i] = (src[i] == '\n' || src[i] == '\r' || src[i] == '\t') ? ' ' : src[i];
    out[i] = 0;
    cJSON_Delete(j);
}

typedef enum { TRY_OK, TRY_RETRY, TRY_FAIL } try_outcome;

static char *json_str_dup(cJSON *obj, const char *name) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? xstrdup(v->valuestring) : NULL;
}

static long json_long(cJSON *obj, const char *name) {
    cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    return cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
}

static long usage_reasoning_tokens(cJSON *usage) {
    cJSON *det = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens_details");
    return json_long(det, "reasoning_tokens");
}

/* choices[0] of a chat response into out. */
static int parse_chat(const char *url, cJSON *j, void *vout, s1c_err *err) {
    net_chat_result *out = vout;
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    cJSON *ch0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    cJSON *msg = ch0 ? cJSON_GetObjectItemCaseSensitive(ch0, "message") : NULL;
    if (!cJSON_IsObject(msg)) return s1c_fail(err, "%s: response has no choices[0].message", url);
    cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (content && !cJSON_IsString(content) && !cJSON_IsNull(content))
        return s1c_fail(err, "%s: choices[0].message.content is not a string", url);
    out->content = xstrdup(cJSON_IsString(content) ? content->valuestring : "");
    out->reasoning = json_str_dup(msg, "reasoning_content");
    if (!out->reasoning) out->reasoning = json_str_dup(msg, "reasoning");
    out->finish_reason = json_str_dup(ch0, "finish_reason");
    cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    out->prompt_tokens = json_long(usage, "prompt_tokens");
    out->completion_tokens = json_long(usage, "completion_tokens");
    out->total_tokens = json_long(usage, "total_tokens");
    out->reasoning_tokens = usage_reasoning_tokens(usage);
    cJSON *bf = cJSON_GetObjectItemCaseSensitive(ch0, "budget_forcing");
    if (cJSON_IsObject(bf)) out->budget_forcing = cJSON_PrintUnformatted(bf);
    if (!out->content) {
        net_chat_result_free(out);
        return s1c_fail(err, "net: out of memory");
    }
    return 0;
}

/* choices[0] of a completions response into out. */
static int parse_completion(const char *url, cJSON *j, void *vout, s1c_err *err) {
    net_completion *out = vout;
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(j, "choices");
    cJSON *ch0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    cJSON *text = ch0 ? cJSON_GetObjectItemCaseSensitive(ch0, "text") : NULL;
    if (!cJSON_IsString(text)) return s1c_fail(err, "%s: response has no choices[0].text string", url);
    out->text = xstrdup(text->valuestring);
    out->finish_reason = json_str_dup(ch0, "finish_reason");
    cJSON *usage = cJSON_GetObjectItemCaseSensitive(j, "usage");
    out->prompt_tokens = json_long(usage, "prompt_tokens");
    out->completion_tokens = json_long(usage, "completion_tokens");
    if (!out->text) {
        net_completion_free(out);
        return s1c_fail(err, "net: out of memory");
    }
    return 0;
}

typedef int (*parse_fn)(const char *url, cJSON *j, void *out, s1c_err *err);

/* A 200 response: a JSON object handed to parse. */
static int parse_response(const char *url, const body *b, parse_fn parse, void *out, s1c_err *err) {
    cJSON *j = cJSON_ParseWithLength(b->data ? b->data : "", b->len);
    int rc;
    if (!j || !cJSON_IsObject(j)) {
        char ex[256];
        body_excerpt(b, ex, sizeof ex);
        rc = s1c_fail(err, "%s: response is not a JSON object: '%.80s'", url, ex);
    } else {
        rc = parse(url, j, out, err);
    }
    cJSON_Delete(j);
    return rc;
}

/* One POST. On TRY_RETRY/TRY_FAIL err holds why; *retry_after_s is the server's hint or -1. */
static try_outcome try_once(const net_client *c, const char *url, const char *payload, parse_fn parse, void *out,
                            double *retry_after_s, s1c_err *err) {
    *retry_after_s = -1;
    CURL *h = curl_easy_init();
    if (!h) { s1c_fail(err, "%s: curl_easy_init failed", url); return TRY_FAIL; }
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (c->auth) hdr = curl_slist_append(hdr, c->auth);
    body b = {0};
    char curl_msg[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms < 30000 ? c->timeout_ms : 30000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* required for threads */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_msg);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "s1c");
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* whatever curl supports */
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t ra = -1;
    /* curl reports 0 when there was no Retry-After header: then our own back-off applies */
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0) *retry_after_s = (double)ra;
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);

    try_outcome res;
    if (rc != CURLE_OK) {
        if (b.too_big) s1c_fail(err, "%s: response larger than %u MB", url, NET_MAX_BODY >> 20);
        else s1c_fail(err, "%s: %s", url, curl_msg[0] ? curl_msg : curl_easy_strerror(rc));
        bool transient = rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
                         rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
                         rc == CURLE_PARTIAL_FILE || rc == CURLE_SSL_CONNECT_ERROR;
        res = transient && !b.too_big ? TRY_RETRY : TRY_FAIL;
    } else if (status == 200) {
        res = parse_response(url, &b, parse, out, err) ? TRY_FAIL : TRY_OK;
    } else {
        char ex[256];
        body_excerpt(&b, ex, sizeof ex);
        s1c_fail(err, "%s: HTTP %ld%s%s", url, status, ex[0] ? ": " : "", ex);
        res = (status == 429 || status == 408 || status >= 500) ? TRY_RETRY : TRY_FAIL;
    }
    free(b.data);
    return res;
}

static void sleep_s(double s) {
    if (s <= 0) return;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

/* Adds the members of extra (a JSON object's text) to j; false when it is not an object. */
static bool add_extra(cJSON *j, const char *extra) {
    if (!extra || !*extra) return true;
    cJSON *x = cJSON_Parse(extra);
    if (!cJSON_IsObject(x)) {
        cJSON_Delete(x);
        return false;
    }
    while (x->child) {
        cJSON *m = cJSON_DetachItemViaPointer(x, x->child);
        cJSON_DeleteItemFromObjectCaseSensitive(j, m->string);
        cJSON_AddItemToObject(j, m->string, m);
    }
    cJSON_Delete(x);
    return true;
}

static char *build_chat_payload(const char *model, const net_message *msgs, int n_msgs, const net_chat_params *p) {
    cJSON *j = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(j, "messages");
    cJSON_AddStringToObject(j, "model", model);
    for (int i = 0; i < n_msgs && arr; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", msgs[i].role);
        cJSON_AddStringToObject(m, "content", msgs[i].content ? msgs[i].content : "");
        cJSON_AddItemToArray(arr, m);
    }
    if (p && p->temperature >= 0) cJSON_AddNumberToObject(j, "temperature", p->temperature);
    if (p && p->max_tokens > 0) cJSON_AddNumberToObject(j, "max_tokens", p->max_tokens);
    bool ok = !p || add_extra(j, p->extra_json);
    char *s = arr && ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return s;
}

static char *build_completion_payload(const char *model, const char *prompt, const net_completion_params *p) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model);
    cJSON_AddStringToObject(j, "prompt", prompt);
    if (p->temperature >= 0) cJSON_AddNumberToObject(j, "temperature", p->temperature);
    if (p->top_p > 0) cJSON_AddNumberToObject(j, "top_p", p->top_p);
    if (p->max_tokens > 0) cJSON_AddNumberToObject(j, "max_tokens", p->max_tokens);
    if (p->seed >= 0) cJSON_AddNumberToObject(j, "seed", (double)p->seed);
    if (p->n_stop > 0) {
        cJSON *st = cJSON_AddArrayToObject(j, "stop");
        for (int i = 0; i < p->n_stop; i++) cJSON_AddItemToArray(st, cJSON_CreateString(p->stop[i]));
    }
    /* the stop string is what we continue after: servers must not swallow special tokens */
    cJSON_AddBoolToObject(j, "skip_special_tokens", false);
    bool ok = add_extra(j, p->extra_json);
    char *s = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return s;
}

/* POSTs payload to url with the client's retries; parse fills out from a 200 response. */
static int post_with_retries(const net_client *c, const char *url, const char *payload, parse_fn parse, void *out,
                             int *tries_out, s1c_err *err) {
    /* jitter: a per-call generator, seeded from the clock and the stack address (no shared state) */
    s1c_rng rng;
    s1c_rng_seed(&rng, (uint64_t)(s1c_now() * 1e9) ^ (uint64_t)(uintptr_t)&rng);
    s1c_err e = {{0}};
    int tries = 0;
    for (;;) {
        double retry_after;
        try_outcome r = try_once(c, url, payload, parse, out, &retry_after, &e);
        tries++;
        if (r == TRY_OK) {
            *tries_out = tries;
            return 0;
        }
        if (r == TRY_FAIL || tries > c->max_retries) break;
        double wait = c->backoff_s * ldexp(1.0, tries - 1);
        if (wait > NET_MAX_BACKOFF_S) wait = NET_MAX_BACKOFF_S;
        wait *= 0.5 + 0.5 * s1c_rng_float(&rng);
        if (retry_after >= 0) wait = retry_after < NET_MAX_RETRY_AFTER_S ? retry_after : NET_MAX_RETRY_AFTER_S;
        sleep_s(wait);
    }
    if (tries == 1) return s1c_fail(err, "%s", e.msg);
    return s1c_fail(err, "%.900s (after %d tries)", e.msg, tries);
}

int net_chat(net_client *c, const char *model, const net_message *msgs, int n_msgs, const net_chat_params *params,
             net_chat_result *out, s1c_err *err) {
    memset(out, 0, sizeof *out);
    char *payload = build_chat_payload(model, msgs, n_msgs, params);
    if (!payload) return s1c_fail(err, "net: out of memory or extra fields that are not a JSON object");
    int rc = post_with_retries(c, c->url, payload, parse_chat, out, &out->tries, err);
    free(payload);
    return rc;
}

int net_complete(net_client *c, const char *model, const char *prompt, const net_completion_params *params,
                 net_completion *out, s1c_err *err) {
    memset(out, 0, sizeof *out);
    char *payload = build_completion_payload(model, prompt, params);
    if (!payload) return s1c_fail(err, "net: out of memory or extra fields that are not a JSON object");
    int rc = post_with_retries(c, c->url_completions, payload, parse_completion, out, &out->tries, err);
    free(payload);
    return rc;
}

void net_completion_free(net_completion *r) {
    if (!r) return;
    free(r->text);
    free(r->finish_reason);
    memset(r, 0, sizeof *r);
}
