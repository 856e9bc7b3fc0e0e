/* Engine throughput: aggregate decode tokens/s with 1, 8 and 32 concurrent sequences (and
 * single-sequence tok/s beside them), as a fraction of the machine's memory bandwidth (decode
 * reads every weight once per step) and of its measured FMA peak (batched decode is compute).
 * usage: bench_engine MODEL [gen_tokens=64] [prompt_tokens=16] [batches=1,8,32] [temperature=0]
 * (temperature > 0: every sequence draws with it, top-p 0.95, instead of greedy decoding)
 * Prints JSON lines, with the kernel family ($S1C_KERNELS) and thread count ($S1C_THREADS) used.
 * Make a Qwen2.5-0.5B-shaped model with
 *   s1c init --arch qwen2 --preset qwen2.5-0.5b --dtype bf16 --out /tmp/q05b */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"
#include "kernels/kernels.h"
#include "model/model_internal.h"
#include "s1c/infer.h"

/* Bytes of weights one decode step streams: every parameter once, at the matrices' dtype. */
static uint64_t weight_bytes(const s1c_model *m) {
    int dt = m->layers[0].wq->dtype; /* q8_0 / q4_0 blocks are read in place */
    return s1c_config_n_params(&m->cfg) * (uint64_t)s1c_dtype_type_size(dt) / (uint64_t)s1c_dtype_block_size(dt);
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: bench_engine MODEL [gen_tokens] [prompt_tokens] [batches]\n"); return 2; }
    int gen = argc > 2 ? atoi(argv[2]) : 64, plen = argc > 3 ? atoi(argv[3]) : 16;
    const char *batches = argc > 4 ? argv[4] : "1,8,32";
    float temp = argc > 5 ? (float)atof(argv[5]) : 0.0f;
    s1c_err err;
    s1c_model *m;
    if (s1c_model_open(&m, argv[1], &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
    const s1c_config *c = s1c_model_config(m);
    const char *isa;
    double bw = machine_bandwidth(), peak1 = machine_flops_one_core(&isa);
    printf("{\"bench\":\"machine\",\"read_gb_s\":%.2f,\"fma_gflops_one_core\":%.2f,\"isa\":\"%s\"}\n", bw / 1e9, peak1 / 1e9, isa);
    char list[256];
    snprintf(list, sizeof list, "%s", batches);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int nseq = atoi(tok);
        s1c_engine_params ep = s1c_engine_defaults();
        ep.max_seqs = nseq;
        ep.prefix_cache = false;
        ep.ctx = plen + gen + 1 < c->max_seq_len ? plen + gen + 1 : c->max_seq_len;
        s1c_engine *e;
        if (s1c_engine_new(&e, m, &ep, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
        int32_t *prompt = malloc((size_t)plen * sizeof(int32_t));
        for (int s = 0; s < nseq; s++) {
            for (int i = 0; i < plen; i++) prompt[i] = (int32_t)((s * 7919 + i * 104729) % c->vocab_size);
            s1c_seq_params p = {.prompt = prompt, .n_prompt = plen, .max_new_tokens = gen, .sampler = s1c_sampler_defaults()};
            if (temp > 0) p.sampler.temperature = temp, p.sampler.top_p = 0.95f, p.sampler.seed = (uint64_t)s;
            if (s1c_engine_submit(e, &p, &err) < 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
        }
        /* the first step prefills every prompt; the rest decode */
        double t0 = s1c_now();
        s1c_engine_step(e, &err);
        double t1 = s1c_now();
        if (s1c_engine_run(e, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return 1; }
        double t2 = s1c_now();
        long toks = 0;
        s1c_seq_result r;
        while (s1c_engine_poll(e, &r)) { toks += r.n_tokens; s1c_seq_result_free(&r); }
        long dec = toks - nseq; /* the first token of each comes from the prefill step */
        double dec_s = t2 - t1, tok_s = dec / dec_s, steps = (double)dec / nseq;
        uint64_t wb = weight_bytes(m);
        double gbs = (double)wb * steps / dec_s; /* weights streamed once per decode step */
        double gflops = 2.0 * (double)s1c_config_n_params(c) * (double)dec / dec_s;
        printf("{\"bench\":\"engine_decode\",\"kernels\":\"%s\",\"threads\":%d,\"model\":\"%s\",\"temperature\":%g,\"params\":%llu,\"seqs\":%d,\"prompt_tokens\":%d,\"gen_tokens\":%d,"
               "\"prefill_s\":%.3f,\"decode_s\":%.3f,\"decode_tok_s\":%.2f,\"per_seq_tok_s\":%.2f,"
               "\"weight_gb_s\":%.2f,\"frac_of_read_bw\":%.4f,\"gflops\":%.2f,\"frac_of_fma_peak_2cores\":%.4f}\n",
               kern_name(), s1c_pool_threads(s1c_pool_global()), argv[1], temp, (unsigned long long)s1c_config_n_params(c), nseq, plen, gen, t1 - t0, dec_s, tok_s, tok_s / nseq,
               gbs / 1e9, gbs / bw, gflops / 1e9, gflops / (2 * peak1));
        fflush(stdout);
        free(prompt);
        s1c_engine_free(e);
    }
    s1c_model_free(m);
    return 0;
}
