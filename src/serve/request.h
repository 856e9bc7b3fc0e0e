/* JSON body -> request: OpenAI's chat/completions fields, SPEC.md §8 budget forcing fields and
 * their aliases. No tokenizer and no model here, so the fuzzer can run it alone. */
#ifndef S1C_SERVE_REQUEST_H
#define S1C_SERVE_REQUEST_H

#include <cjson/cJSON.h>

#include "s1c/serve.h"

enum { SRV_CHAT = 0, SRV_COMPLETION = 1 };
#define SRV_MAX_STOPS 16

/* An OpenAI-style error: HTTP status, message, the offending parameter (or empty). */
typedef struct srv_error {
    int status;
    char type[32];    /* invalid_request_error, authentication_error, ... */
    char param[64];
    char message[512];
} srv_error;

int srv_fail(srv_error *e, int status, const char *param, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

typedef struct srv_prompt {
    const char *text;     /* a text prompt (points into the JSON), or NULL */
    int32_t *ids;         /* or token ids (malloc'd) */
    int n_ids;
} srv_prompt;

typedef struct srv_req {
    int kind;                   /* SRV_CHAT, SRV_COMPLETION */
    cJSON *root;                /* owns the strings below, but those in owned */
    char **owned;               /* strings made while parsing (joined content parts, answers) */
    int n_owned;
    s1c_chat_msg *msgs;         /* chat: the conversation (reasoning of earlier turns removed) */
    int n_msgs;
    srv_prompt *prompts;        /* completions: one or more prompts */
    int n_prompts;
    int max_tokens;             /* -1 = until the context is full */
    s1c_sampler_params sampler;
    bool seed_set;
    const char *stops[SRV_MAX_STOPS];
    int n_stops;
    int n;                      /* choices per prompt */
    bool stream, include_usage;
    bool logprobs;
    int top_logprobs;
    bool echo;                  /* completions: the prompt in front of the text */
    s1c_bf_opts bf;
    bool bf_on;                 /* budget forcing (any field, effort, or the server's default) */
    bool think_start_set, think_end_set;
} srv_req;

/* Parses a body; fills e (4xx) and returns -1 on bad input. defaults: the server's options. */
int srv_parse_request(srv_req *r, int kind, const char *body, size_t len, const s1c_serve_opts *defaults, srv_error *e);
void srv_req_free(srv_req *r);

#endif
