/* s1c serve on loopback: throughput and time to first token with 1, 8 and 32 concurrent
 * streaming clients, each running budget-forced chat requests (max_thinking_tokens, then a
 * short answer), against the engine alone on the same work (the fraction is what the HTTP
 * layer, SSE and the server's threads leave of the engine's throughput).
 * usage: bench_serve MODEL [think_tokens=48] [clients=1,8,32] [requests_per_client=2]
 * Prints JSON lines. MODEL needs a chat template (a Qwen2-shaped model made by
 *   s1c init --arch qwen2 --preset tiny --vocab 151936 --tokenizer ../shared/data/qwen2.5-tokenizer --out /tmp/q). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "s1c/serve.h"

typedef struct client {
    int port, requests, think, id;
    double ttft_sum, ttft_max, lat_sum;
    long tokens;
    int ok;
} client;

static void question(char *buf, size_t cap, int id, int k);

/* One streaming request; returns completion tokens (from the usage chunk) or -1. */
static long one_request(client *c, int k, double *ttft, double *lat) {
    char body[512], req[1024], q[128];
    question(q, sizeof q, c->id, k);
    int bl = snprintf(body, sizeof body,
                      "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"temperature\":0,\"max_thinking_tokens\":%d,"
                      "\"max_answer_tokens\":8,\"stream\":true,\"stream_options\":{\"include_usage\":true}}", q, c->think);
    int rl = snprintf(req, sizeof req, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
                                       "Content-Length: %d\r\n\r\n%s", bl, body);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    double t0 = s1c_now();
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || write(fd, req, (size_t)rl) != rl) { if (fd >= 0) close(fd); return -1; }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    *ttft = -1;
    for (ssize_t n; buf && (n = read(fd, buf + len, cap - len - 1)) > 0;) {
        len += (size_t)n;
        buf[len] = 0;
        if (*ttft < 0 && (strstr(buf, "\"reasoning_content\":\"") || strstr(buf, "\"content\":\""))) {
            /* the first chunk carrying text (the role chunk before it has none) */
            for (const char *p = buf; (p = strstr(p, "content\":\"")); p += 10)
                if (p[10] != '"') { *ttft = s1c_now() - t0; break; }
        }
        if (len + 4096 > cap) { cap *= 2; char *nb = realloc(buf, cap); if (!nb) break; buf = nb; }
    }
    close(fd);
    *lat = s1c_now() - t0;
    const char *u = buf ? strstr(buf, "\"completion_tokens\":") : NULL;
    long toks = u ? atol(u + 20) : -1;
    free(buf);
    return toks;
}

static void *run_client(void *arg) {
    client *c = arg;
    for (int k = 0; k < c->requests; k++) {
        double ttft, lat;
        long t = one_request(c, k, &ttft, &lat);
        if (t < 0 || ttft < 0) continue;
        c->ok++;
        c->tokens += t;
        c->ttft_sum += ttft;
        c->ttft_max = ttft > c->ttft_max ? ttft : c->ttft_max;
        c->lat_sum += lat;
    }
    return NULL;
}

static void question(char *buf, size_t cap, int id, int k) {
    snprintf(buf, cap, "Client %d asks question %d: what is %d times 7?", id, k, id + k);
}

/* The engine alone on the same work: the same prompts (template + thinking start), the same
 * budget forcing, n at a time, prefix cache on as in the server. Returns tokens/s. */
static double engine_tok_s(const s1c_model *m, const s1c_tokenizer *tok, int n, int per, int think) {
    s1c_err err;
    s1c_engine_params ep = s1c_engine_defaults();
    ep.max_seqs = n;
    s1c_engine *e;
    s1c_bf *bf;
    s1c_bf_opts bo = s1c_bf_defaults();
    bo.max_thinking_tokens = think;
    bo.max_answer_tokens = 8;
    if (s1c_engine_new(&e, m, &ep, &err) != 0) return 0;
    if (s1c_bf_new(&bf, &bo, tok, s1c_model_config(m)->max_seq_len, NULL, &err) != 0) { s1c_engine_free(e); return 0; }
    s1c_bf_state *states = calloc((size_t)(n * per), sizeof *states);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < per; k++) {
            char q[128];
            question(q, sizeof q, i, k);
            char *text = s1c_s1_prompt(NULL, q, NULL, &err);
            int32_t *ids = NULL;
            int ni = 0;
            if (!text || s1c_tok_encode_ex(tok, text, strlen(text), S1C_ENC_SPECIAL, &ids, &ni, &err) != 0) { free(text); continue; }
            states[i * per + k] = s1c_bf_state_init(bf, ni);
            s1c_seq_params p = {.prompt = ids, .n_prompt = ni, .max_new_tokens = -1, .sampler = s1c_sampler_defaults(), .hook = s1c_bf_hook,
                                .user = bf, .state = &states[i * per + k], .state_size = sizeof(s1c_bf_state)};
            s1c_engine_submit(e, &p, &err);
            free(ids);
            free(text);
        }
    double t0 = s1c_now();
    s1c_engine_run(e, &err);
    double t = s1c_now() - t0;
    long toks = 0;
    s1c_seq_result r;
    while (s1c_engine_poll(e, &r)) { toks += r.n_tokens; s1c_seq_result_free(&r); }
    free(states);
    s1c_bf_free(bf);
    s1c_engine_free(e);
    return t > 0 ? toks / t : 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bench_serve MODEL [think_tokens] [clients] [requests_per_client]\n"); return 2; }
    int think = argc > 2 ? atoi(argv[2]) : 48, per = argc > 4 ? atoi(argv[4]) : 2;
    char list[256];
    snprintf(list, sizeof list, "%s", argc > 3 ? argv[3] : "1,8,32");
    s1c_err err;
    s1c_model *m;
    s1c_tokenizer *tok;
    if (s1c_model_open(&m, argv[1], &err) != 0 || s1c_tok_load_hf(&tok, argv[1], &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
        int n = atoi(t);
        if (n < 1) continue;
        s1c_serve_opts o = s1c_serve_defaults();
        o.port = 0;
        o.parallel = n;
        o.quiet = true;
        s1c_server *s;
        if (s1c_serve_start(&s, m, tok, &o, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
        client *cs = calloc((size_t)n, sizeof *cs);
        pthread_t *th = calloc((size_t)n, sizeof *th);
        double t0 = s1c_now();
        for (int i = 0; i < n; i++) {
            cs[i] = (client){.port = s1c_serve_port(s), .requests = per, .think = think, .id = i};
            pthread_create(&th[i], NULL, run_client, &cs[i]);
        }
        long toks = 0;
        int ok = 0;
        double ttft = 0, ttft_max = 0, lat = 0;
        for (int i = 0; i < n; i++) {
            pthread_join(th[i], NULL);
            toks += cs[i].tokens;
            ok += cs[i].ok;
            ttft += cs[i].ttft_sum;
            lat += cs[i].lat_sum;
            ttft_max = cs[i].ttft_max > ttft_max ? cs[i].ttft_max : ttft_max;
        }
        double wall = s1c_now() - t0;
        s1c_serve_stop(s);
        s1c_serve_free(s);
        double eng = engine_tok_s(m, tok, n, per, think);
        double tps = wall > 0 ? toks / wall : 0;
        printf("{\"bench\":\"serve\",\"clients\":%d,\"requests\":%d,\"ok\":%d,\"completion_tokens\":%ld,\"wall_s\":%.3f,\"tok_s\":%.1f,"
               "\"ttft_mean_s\":%.4f,\"ttft_max_s\":%.4f,\"latency_mean_s\":%.4f,\"engine_tok_s\":%.1f,\"fraction_of_engine\":%.3f}\n",
               n, n * per, ok, toks, wall, tps, ok ? ttft / ok : 0, ttft_max, ok ? lat / ok : 0, eng, eng > 0 ? tps / eng : 0);
        fflush(stdout);
        free(cs);
        free(th);
    }
    s1c_tok_free(tok);
    s1c_model_free(m);
    return 0;
}
