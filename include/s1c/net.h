/* s1c net layer: a small OpenAI-compatible HTTP client on libcurl (chat/completions).
 *
 * One net_client holds the settings (base URL, API key, timeout, retries); it is read-only
 * after net_client_new, so any number of threads may call net_chat on one client at once
 * (each call uses its own curl handle; curl_global_init runs once per process).
 *
 * Retries: a 429, a 5xx, a 408, a timeout or a connection error is tried again, up to
 * max_retries more times, after an exponential backoff with jitter (backoff_s * 2^k, times a
 * random factor in [0.5, 1), at most 30 s) or after the server's Retry-After when it sent one
 * (at most 120 s). Anything else (other 4xx, a malformed response) fails at once. The error is
 * one line naming the URL, the HTTP status (or the curl error) and the number of tries. */
#ifndef S1C_NET_H
#define S1C_NET_H

#include <stdbool.h>
#include <stddef.h>

#include "s1c/base.h"

typedef struct net_client net_client;

typedef struct net_client_opts {
    const char *base_url;  /* "http://host:port/v1" (…/chat/completions is appended) or the full URL */
    const char *api_key;   /* NULL: $OPENAI_API_KEY if set; "" or unset: no Authorization header */
    double timeout_s;      /* per request, whole transfer; <= 0: 120 */
    int max_retries;       /* tries after the first; < 0: 4 */
    double backoff_s;      /* first backoff; <= 0: 1 */
} net_client_opts;

int net_client_new(net_client **out, const net_client_opts *opts, s1c_err *err);
void net_client_free(net_client *c);
/* The URL requests go to (for messages). */
const char *net_client_url(const net_client *c);

typedef struct net_message {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} net_message;

typedef struct net_chat_params {
    double temperature; /* < 0: not sent (the server's default) */
    int max_tokens;     /* <= 0: not sent */
    const char *extra_json; /* a JSON object whose members are added to the request (e.g. s1c
                               serve's budget-forcing fields), or NULL */
} net_chat_params;

typedef struct net_chat_result {
    char *content;       /* malloc'd; "" when the server sent null */
    char *reasoning;     /* malloc'd "reasoning_content" / "reasoning", or NULL */
    char *finish_reason; /* malloc'd, or NULL */
    long prompt_tokens, completion_tokens, total_tokens; /* -1 when not reported */
    long reasoning_tokens; /* usage.completion_tokens_details.reasoning_tokens, -1 when not reported */
    char *budget_forcing;  /* s1c serve's choices[0].budget_forcing object as JSON text (SPEC.md §8
                              accounting), or NULL */
    int tries;           /* requests made (1 + retries used) */
} net_chat_result;

/* POSTs a chat completion and parses choices[0]. params NULL: server defaults. On success
 * fills *out (free with net_chat_result_free); on failure fills err, *out is left empty. */
int net_chat(net_client *c, const char *model, const net_message *msgs, int n_msgs, const net_chat_params *params,
             net_chat_result *out, s1c_err *err);
void net_chat_result_free(net_chat_result *r);

/* ---------------------------------------------------------------- /v1/completions */

typedef struct net_completion_params {
    double temperature;      /* < 0: not sent */
    double top_p;            /* <= 0: not sent */
    int max_tokens;          /* <= 0: not sent */
    long long seed;          /* < 0: not sent */
    const char *const *stop; /* stop strings */
    int n_stop;
    const char *extra_json;  /* members added to the request, or NULL */
} net_completion_params;

typedef struct net_completion {
    char *text;          /* malloc'd choices[0].text */
    char *finish_reason; /* malloc'd, or NULL: "stop" (a stop string or the end of sequence), "length" */
    long prompt_tokens, completion_tokens; /* -1 when not reported */
    int tries;
} net_completion;

/* POSTs a plain completion (the prompt text as is; no chat template) to BASE/completions,
 * with the same retries as net_chat. Sends skip_special_tokens=false so special-token stop
 * strings and text survive in servers that honour it (vLLM). */
int net_complete(net_client *c, const char *model, const char *prompt, const net_completion_params *params,
                 net_completion *out, s1c_err *err);
void net_completion_free(net_completion *r);

#endif
