/* Inside the server: jobs (one HTTP request each) shared by the HTTP thread that made it and
 * the engine thread that runs it, under the server's one mutex. */
#ifndef S1C_SERVE_INT_H
#define S1C_SERVE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "request.h"

enum { CH_REASONING = 0, CH_CONTENT = 1 };

typedef struct srv_buf {
    char *s;
    size_t len, cap;
} srv_buf;
int srv_buf_add(srv_buf *b, const char *s, size_t n);
int srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void srv_buf_json_str(srv_buf *b, const char *s, size_t n);

#define SRV_TOP_MAX 20
/* One sampled token's log-probability and the best alternatives. */
typedef struct srv_lp {
    int32_t token, prev;
    float logprob;
    int n_top;
    int32_t top[SRV_TOP_MAX];
    float top_lp[SRV_TOP_MAX];
    size_t text_off; /* where its text starts in the channel */
} srv_lp;

typedef struct srv_choice {
    srv_buf text[2];     /* reasoning, content (completions: everything in content) */
    size_t ready[2];     /* bytes final (a content tail that may start a stop string waits) */
    size_t sent[2];      /* bytes streamed so far (HTTP side) */
    srv_lp *lp;
    int n_lp, cap_lp, lp_sent;
    bool done, role_sent, finish_sent;
    int stop_reason;     /* s1c_stop_reason once done */
    int completion_tokens;
    s1c_bf_state bf;     /* final budget-forcing accounting */
} srv_choice;

typedef struct srv_job {
    int refs;                   /* the HTTP thread and the engine thread */
    srv_req req;
    int n_choices;              /* n_prompts * n */
    srv_choice *choices;
    int32_t **ids;              /* the prompts as token ids */
    int *n_ids;
    int *root;                  /* engine id of each prompt's first choice */
    int *forked;                /* choices of each prompt claimed by forks so far */
    s1c_bf *bf;                 /* budget forcing resolved against the tokenizer, or NULL */
    int32_t stop_ids[4];
    int n_stop_ids;
    int n_done;
    bool queued, running, finished, cancel, cancel_sent;
    int status;                 /* 0, or an error status that ends the job */
    char error[512];
    pthread_cond_t cv;          /* output or the end arrived */
    double t_start, t_first;
    long id;                    /* for "chatcmpl-..." */
    long created;
    struct srv_job *next;       /* the queue */
    struct s1c_server *srv;
} srv_job;

typedef struct srv_hist {
    const double *bounds;
    int n;
    long counts[16];
    double sum;
    long total;
} srv_hist;

void srv_hist_add(srv_hist *h, double v);

typedef struct srv_metrics {
    long requests[2][6];        /* [chat, completion][2xx/400/401/413/429/5xx] */
    long other_errors;          /* 404, 405, bad paths and methods */
    long prompt_tokens, reasoning_tokens, content_tokens, completion_tokens;
    long cancelled, disconnects;
    srv_hist latency, ttft;
} srv_metrics;

struct s1c_server {
    s1c_serve_opts o;
    const s1c_model *m;
    const s1c_tokenizer *tok;
    int tmpl;                   /* chat template family, -1 = none */
    bool add_bos;
    int ctx;
    s1c_engine *e;
    void *daemon;               /* struct MHD_Daemon */
    int port;
    pthread_t engine_thread;
    bool engine_started;
    pthread_mutex_t mu;
    pthread_cond_t work_cv;     /* the engine thread waits here for work */
    srv_job *q_head, *q_tail;   /* waiting to be submitted */
    int n_queued, active_seqs, n_active;
    srv_job **active;           /* submitted, not finished */
    int cap_active;
    bool stopping;
    double stop_deadline;
    int n_open;                 /* requests being read or answered (HTTP side) */
    long next_id;
    srv_metrics met;
};

/* server.c */
/* Tokenizes and checks a parsed request, making a job (refs 1: the caller's). */
int srv_job_new(s1c_server *s, srv_req *req, srv_job **out, srv_error *e);
/* Queues a job for the engine thread (it takes a reference); 429/503 when it cannot. */
int srv_job_submit(s1c_server *s, srv_job *j, srv_error *e);
/* Drops a reference (the server's mutex held); frees the job at zero. */
void srv_job_unref_locked(s1c_server *s, srv_job *j);
/* Asks the engine thread to cancel (client gone). Mutex held. */
void srv_job_cancel_locked(s1c_server *s, srv_job *j);

/* http.c */
int srv_http_start(s1c_server *s, s1c_err *err);
void srv_http_stop(s1c_server *s);
/* Stops accepting connections (the open ones go on). */
void srv_http_quiesce(s1c_server *s);
/* The finish_reason OpenAI would give for an s1c stop reason. */
const char *srv_finish_reason(int stop_reason);

#endif
