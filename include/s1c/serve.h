/* s1c serve layer: an OpenAI-compatible HTTP server (libmicrohttpd) with budget forcing per
 * request (SPEC.md §8 field names and other systems' aliases).
 *
 * One engine thread owns the model's engine and KV cache: it takes parsed requests from a
 * bounded queue, submits them, steps, and writes text into per-request output buffers. HTTP
 * threads (one per connection) only parse, enqueue, wait and write responses; a client that
 * disconnects cancels its request, whose KV blocks are freed before the next step. */
#ifndef S1C_SERVE_H
#define S1C_SERVE_H

#include "s1c/infer.h"

typedef struct s1c_serve_opts {
    const char *host;        /* address to listen on, default "127.0.0.1" */
    int port;                /* 0 = any free port (s1c_serve_port says which) */
    int parallel;            /* sequences decoded together (engine max_seqs), default 8 */
    int queue;               /* requests waiting beyond those running; more get 429, default 256 */
    const char *api_key;     /* NULL = no authentication; else "Authorization: Bearer KEY" */
    const char *model_name;  /* the id /v1/models lists and responses carry */
    int ctx;                 /* context per sequence, 0 = the model's */
    int kv_mem_mib;          /* KV cache limit, 0 = the engine's default */
    int kv_dtype;            /* KV cache element type: S1C_F32 (0), S1C_F16, S1C_BF16, S1C_KV_AUTO (the default) */
    size_t max_body;         /* request body limit in bytes (413 beyond), default 1 MiB */
    int max_n;               /* largest n (choices per prompt), default 16 */
    int timeout_s;           /* idle connection timeout, default 30 */
    int max_connections;     /* default 512 */
    double shutdown_grace_s; /* s1c_serve_stop lets running requests finish this long, default 30 */
    /* defaults of every request (a request's own fields win) */
    s1c_sampler_params sampler;  /* temperature default 1.0 as OpenAI's */
    int max_tokens;              /* -1 = until the context is full */
    const char *system;          /* system prompt put in front when a chat has none (NULL = template's) */
    s1c_bf_opts bf;
    bool bf_on;                  /* budget forcing for every chat request, not only those asking */
    int effort_budgets[3];       /* reasoning_effort low/medium/high -> max_thinking_tokens */
    const char *const *stops;    /* stop strings of every request (added to the request's) */
    int n_stops;
    bool quiet;                  /* no access log on stderr */
} s1c_serve_opts;

s1c_serve_opts s1c_serve_defaults(void);

typedef struct s1c_server s1c_server;

/* Starts listening and the engine thread. The model and tokenizer must outlive the server. */
int s1c_serve_start(s1c_server **out, const s1c_model *m, const s1c_tokenizer *tok, const s1c_serve_opts *o, s1c_err *err);
/* The port it listens on. */
int s1c_serve_port(const s1c_server *s);
/* Graceful stop: new requests get 503, queued ones are refused, running ones finish within
 * the grace time (then are cancelled); returns when every connection has been answered. */
void s1c_serve_stop(s1c_server *s);
void s1c_serve_free(s1c_server *s);

#endif
