/* The engine on stories260K: 16 sequences with different prompt lengths and arrival times,
 * some sampled k times through forks, give exactly the tokens each gives alone (the
 * reference kernels are batch-invariant, so bitwise); forks share their prompt's blocks; a
 * KV cache too small for everyone still finishes everything through preemption; the prefix
 * cache serves repeated prompts; hooks inject, ban and fork; bad input is refused. */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/infer.h"
#include "testutil.h"

static s1c_model *model;
#define NSEQ 16

typedef struct job {
    int32_t prompt[64];
    int n_prompt, max_new, n_samples;
    s1c_sampler_params sp;
} job;
static job jobs[NSEQ];

static int setup(void **st) {
    (void)st;
    s1c_err err;
    char *p = tu_path("S1C_DATA", "models/stories260K/stories260K.bin");
    if (s1c_model_open(&model, p, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return -1; }
    free(p);
    s1c_rng r;
    s1c_rng_seed(&r, 11);
    for (int i = 0; i < NSEQ; i++) {
        job *j = &jobs[i];
        j->n_prompt = 1 + (int)(s1c_rng_u64(&r) % 60);
        j->prompt[0] = 1; /* BOS */
        for (int k = 1; k < j->n_prompt; k++) j->prompt[k] = 3 + (int)(s1c_rng_u64(&r) % 509);
        j->max_new = 20 + (int)(s1c_rng_u64(&r) % 50);
        j->sp = s1c_sampler_defaults();
        if (i % 3 == 1) { j->sp.temperature = 0.9f; j->sp.top_p = 0.95f; j->sp.seed = 100 + (uint64_t)i; }
        j->n_samples = i % 5 == 2 ? 3 : 1;
    }
    return 0;
}

static int teardown(void **st) {
    (void)st;
    s1c_model_free(model);
    return 0;
}

static s1c_seq_params params_of(const job *j) {
    return (s1c_seq_params){.prompt = j->prompt, .n_prompt = j->n_prompt, .max_new_tokens = j->max_new, .sampler = j->sp, .n_samples = j->n_samples};
}

/* The tokens of job i run alone, sample k (seed + k). */
static void run_alone(const job *j, int k, int32_t *out, int *n) {
    s1c_err err;
    s1c_engine_params ep = s1c_engine_defaults();
    ep.max_seqs = 1;
    s1c_engine *e;
    assert_int_equal(s1c_engine_new(&e, model, &ep, &err), 0);
    s1c_seq_params p = params_of(j);
    p.n_samples = 1;
    p.sampler.seed += (uint64_t)k;
    assert_true(s1c_engine_submit(e, &p, &err) >= 0);
    assert_int_equal(s1c_engine_run(e, &err), 0);
    s1c_seq_result r;
    assert_int_equal(s1c_engine_poll(e, &r), 1);
    memcpy(out, r.tokens, (size_t)r.n_tokens * sizeof(int32_t));
    *n = r.n_tokens;
    s1c_seq_result_free(&r);
    s1c_engine_free(e);
}

typedef struct outcome {
    int job, sample, n;
    int32_t tok[128];
} outcome;

/* Runs all jobs in one engine with staggered arrivals; returns outcomes by result id. */
static int run_batched(s1c_engine_params ep, outcome *outs, s1c_engine_stats *stats) {
    s1c_err err;
    s1c_engine *e;
    assert_int_equal(s1c_engine_new(&e, model, &ep, &err), 0);
    int id_job[NSEQ * 4];
    for (int i = 0; i < NSEQ * 4; i++) id_job[i] = -1;
    int submitted = 0, n_out = 0;
    for (int step = 0;; step++) {
        /* arrivals: a few sequences every third step */
        if (step % 3 == 0)
            for (int k = 0; k < 3 && submitted < NSEQ; k++, submitted++) {
                s1c_seq_params p = params_of(&jobs[submitted]);
                int id = s1c_engine_submit(e, &p, &err);
                assert_true(id >= 0);
                id_job[id] = submitted;
            }
        int live = s1c_engine_step(e, &err);
        assert_true(live >= 0);
        s1c_seq_result r;
        while (s1c_engine_poll(e, &r)) {
            outcome *o = &outs[n_out++];
            int root = r.parent >= 0 ? r.parent : r.id;
            o->job = id_job[root];
            assert_true(o->job >= 0);
            o->sample = 0;
            o->n = r.n_tokens;
            memcpy(o->tok, r.tokens, (size_t)r.n_tokens * sizeof(int32_t));
            if (r.parent >= 0) o->sample = -1; /* resolved below from the fork order */
            assert_string_equal(r.error, "");
            s1c_seq_result_free(&r);
        }
        if (live == 0 && submitted == NSEQ) break;
    }
    s1c_engine_get_stats(e, stats);
    assert_int_equal(stats->n_free_blocks + stats->n_cached_blocks, stats->n_blocks); /* nothing leaked */
    s1c_engine_free(e);
    return n_out;
}

static void check_against_alone(s1c_engine_params ep, const char *what) {
    outcome *outs = calloc(NSEQ * 4, sizeof(outcome));
    s1c_engine_stats st;
    int n_out = run_batched(ep, outs, &st);
    int expect = 0;
    for (int i = 0; i < NSEQ; i++) expect += jobs[i].n_samples;
    assert_int_equal(n_out, expect);
    for (int i = 0; i < NSEQ; i++) {
        /* each of the job's samples must equal one of its alone-runs (sample k = seed + k) */
        int32_t want[3][128];
        int wn[3];
        for (int k = 0; k < jobs[i].n_samples; k++) run_alone(&jobs[i], k, want[k], &wn[k]);
        bool used[3] = {0};
        for (int o = 0; o < n_out; o++) {
            if (outs[o].job != i) continue;
            bool matched = false;
            for (int k = 0; k < jobs[i].n_samples && !matched; k++)
                if (!used[k] && wn[k] == outs[o].n && memcmp(want[k], outs[o].tok, (size_t)wn[k] * 4) == 0) used[k] = matched = true;
            if (!matched) fail_msg("%s: job %d (prompt %d, temp %.1f): a batched result differs from every alone-run", what, i, jobs[i].n_prompt, (double)jobs[i].sp.temperature);
        }
    }
    printf("%s: %d results equal alone-runs; %ld steps, %ld rows, %ld preemptions, %ld prefix hits\n", what, n_out, st.steps, st.rows, st.preemptions, st.prefix_hits);
    free(outs);
}

static void test_batched_equals_alone(void **st) {
    (void)st;
    check_against_alone(s1c_engine_defaults(), "default");
}

static void test_small_batches_and_chunks(void **st) {
    (void)st;
    s1c_engine_params ep = s1c_engine_defaults();
    ep.max_batch_tokens = 7; /* prompts arrive in chunks, decodes compete for rows */
    ep.max_seqs = 5;
    check_against_alone(ep, "7 rows, 5 seqs");
}

static void test_memory_pressure(void **st) {
    (void)st;
    s1c_engine_params ep = s1c_engine_defaults();
    ep.n_blocks = 12; /* 192 positions for 16+ sequences of up to ~130 */
    ep.block_size = 16;
    outcome *outs = calloc(NSEQ * 4, sizeof(outcome));
    s1c_engine_stats stats;
    run_batched(ep, outs, &stats);
    free(outs);
    assert_true(stats.preemptions > 0);
    check_against_alone(ep, "12 KV blocks");
}

static void test_f16_cache_runs(void **st) {
    (void)st;
    s1c_err err;
    s1c_engine_params ep = s1c_engine_defaults();
    ep.kv_dtype = S1C_BF16;
    s1c_engine *e;
    assert_int_equal(s1c_engine_new(&e, model, &ep, &err), 0);
    s1c_seq_params p = params_of(&jobs[0]);
    assert_true(s1c_engine_submit(e, &p, &err) >= 0);
    assert_int_equal(s1c_engine_run(e, &err), 0);
    s1c_seq_result r;
    assert_int_equal(s1c_engine_poll(e, &r), 1);
    assert_int_equal(r.n_tokens, jobs[0].max_new);
    s1c_seq_result_free(&r);
    s1c_engine_free(e);
}

static void test_fork_shares_blocks(void **st) {
    (void)st;
    s1c_err err;
    s1c_engine_params ep = s1c_engine_defaults();
    ep.prefix_cache = false;
    s1c_engine *e;
    assert_int_equal(s1c_engine_new(&e, model, &ep, &err), 0);
    int32_t prompt[40];
    for (int i = 0; i < 40; i++) prompt[i] = i ? 300 + i : 1;
    s1c_seq_params p = {.prompt = prompt, .n_prompt = 40, .max_new_tokens = 4, .sampler = s1c_sampler_defaults(), .n_samples = 4};
    p.sampler.temperature = 1.0f;
    assert_true(s1c_engine_submit(e, &p, &err) >= 0);
    s1c_engine_stats a, b;
    assert_true(s1c_engine_step(e, &err) > 0); /* prefill + first samples + forks */
    s1c_engine_get_stats(e, &a);
    assert_true(s1c_engine_step(e, &err) > 0); /* every sample writes position 40 */
    s1c_engine_get_stats(e, &b);
    /* 40 positions = 2 full blocks + 1 partial: after the prefill one sequence holds 3 blocks
     * and the 3 forks share them; when they write, each copies only the partial block */
    assert_int_equal(a.n_blocks - a.n_free_blocks, 3);
    assert_int_equal(b.n_blocks - b.n_free_blocks, 3 + 3);
    assert_int_equal(s1c_engine_run(e, &err), 0);
    s1c_seq_result r;
    int n = 0;
    while (s1c_engine_poll(e, &r)) { n++; assert_int_equal(r.n_tokens, 4); s1c_seq_result_free(&r); }
    assert_int_equal(n, 4);
    s1c_engine_free(e);
}

static void test_prefix_cache(void **st) {
    (void)st;
    s1c_err err;
    s1c_engine *e;
    assert_int_equal(s1c_engine_new(&e, model, NULL, &err), 0);
    s1c_seq_params p = params_of(&jobs[0]);
    int32_t prompt[50];
    for (int i = 0; i < 50; i++) prompt[i] = i ? 260 + i : 1;
    p.prompt = prompt;
    p.n_prompt = 50;
    p.n_samples = 1;
    int32_t first[128];
    int nf = 0;
    for (int round = 0; round < 2; round++) {
        assert_true(s1c_engine_submit(e, &p, &err) >= 0);
        assert_int_equal(s1c_engine_run(e, &err), 0);
        s1c_seq_result r;
        assert_int_equal(s1c_engine_poll(e, &r), 1);
        if (round == 0) { assert_int_equal(r.n_cached_prompt, 0); memcpy(first, r.tokens, (size_t)r.n_tokens * 4); nf = r.n_tokens; }
        else {
            assert_int_equal(r.n_cached_prompt, 48); /* 3 full blocks; the last token is recomputed */
            assert_int_equal(r.n_tokens, nf);
            assert_memory_equal(r.tokens, first, (size_t)nf * 4);
        }
        s1c_seq_result_free(&r);
    }
    s1c_engine_free(e);
}

/* A hook that replaces token 13 ("\n") by two injected tokens once, bans it next, and forks
 * a copy at its 5th token. */
typedef struct hook_state {
    int seen, injected, forked;
} hook_state;

static void test_hook(s1c_engine *e, int id, void *user, void *state, s1c_step_io *io) {
    (void)user;
    hook_state *h = state;
    h->seen++;
    if (h->seen == 5 && !h->forked) {
        h->forked = 1;
        int32_t inj[2] = {io->token, 400};
        assert_true(s1c_engine_fork(e, id, inj, 2, NULL, NULL) >= 0);
    }
    if (io->n_generated >= 8 && !h->injected) {
        h->injected = 1;
        io->drop = true;
        io->inject[0] = 301;
        io->inject[1] = 314;
        io->n_inject = 2;
        io->ban[0] = 13;
        io->n_ban = 1;
    }
}

static void test_hooks(void **st) {
    (void)st;
    s1c_err err;
    s1c_engine *e;
    assert_int_equal(s1c_engine_new(&e, model, NULL, &err), 0);
    int32_t prompt[5] = {1, 403, 407, 261, 378};
    hook_state init = {0};
    s1c_seq_params p = {.prompt = prompt, .n_prompt = 5, .max_new_tokens = 30, .sampler = s1c_sampler_defaults(),
                        .hook = test_hook, .state = &init, .state_size = sizeof init};
    assert_true(s1c_engine_submit(e, &p, &err) >= 0);
    assert_int_equal(s1c_engine_run(e, &err), 0);
    s1c_seq_result r[2];
    assert_int_equal(s1c_engine_poll(e, &r[0]), 1);
    assert_int_equal(s1c_engine_poll(e, &r[1]), 1);
    s1c_seq_result *main_r = r[0].parent < 0 ? &r[0] : &r[1], *fork_r = r[0].parent < 0 ? &r[1] : &r[0];
    /* the main sequence: 8 generated, then the injected pair instead of the 9th */
    assert_int_equal(main_r->tokens[8], 301);
    assert_int_equal(main_r->tokens[9], 314);
    assert_true(main_r->tokens[10] != 13); /* banned right after the injection */
    assert_int_equal(((hook_state *)main_r->state)->injected, 1);
    /* the fork: the first 4 tokens, then the 5th and the injected 400 */
    assert_memory_equal(fork_r->tokens, main_r->tokens, 5 * 4);
    assert_int_equal(fork_r->tokens[5], 400);
    assert_int_equal(((hook_state *)fork_r->state)->forked, 1); /* copied state */
    s1c_seq_result_free(&r[0]);
    s1c_seq_result_free(&r[1]);
    s1c_engine_free(e);
}

static void *submitter(void *arg) {
    s1c_engine *e = arg;
    s1c_err err;
    for (int i = 0; i < 8; i++) {
        s1c_seq_params p = params_of(&jobs[i]);
        p.n_samples = 1;
        if (s1c_engine_submit(e, &p, &err) < 0) return (void *)1;
    }
    return NULL;
}

static void test_threaded_submit(void **st) {
    (void)st;
    s1c_err err;
    s1c_engine *e;
    assert_int_equal(s1c_engine_new(&e, model, NULL, &err), 0);
    pthread_t th;
    pthread_create(&th, NULL, submitter, e);
    int got = 0;
    /* step while the other thread submits; bounded by time, not by steps: on a busy machine
     * the thread may start late */
    for (double t0 = s1c_now(); got < 8 && s1c_now() - t0 < 60;) {
        int live = s1c_engine_step(e, &err);
        assert_true(live >= 0);
        s1c_seq_result r;
        while (s1c_engine_poll(e, &r)) { got++; s1c_seq_result_free(&r); }
        if (live == 0) sched_yield();
    }
    void *ret;
    pthread_join(th, &ret);
    assert_null(ret);
    assert_int_equal(got, 8);
    s1c_engine_free(e);
}

/* Cancelling frees a sequence's blocks at once, waiting or running, forks included; the others
 * go on unchanged. */
static int logits_seen;
static void logits_hook(s1c_engine *e, int id, void *user, void *state, s1c_step_io *io) {
    /* the row the token came from: greedy draws its argmax */
    if (!io->logits) return;
    int best = 0;
    for (int v = 1; v < s1c_model_config(model)->vocab_size; v++)
        if (io->logits[v] > io->logits[best]) best = v;
    logits_seen += best == io->token;
}

static void test_cancel_and_logits(void **st) {
    (void)st;
    s1c_err err;
    s1c_engine_params ep = s1c_engine_defaults();
    ep.max_seqs = 2; /* the third submission waits */
    s1c_engine *e;
    assert_int_equal(s1c_engine_new(&e, model, &ep, &err), 0);
    s1c_engine_stats st0;
    s1c_engine_get_stats(e, &st0);
    s1c_seq_params a = params_of(&jobs[0]), b = params_of(&jobs[1]), c = params_of(&jobs[3]);
    a.n_samples = 3;
    a.max_new_tokens = b.max_new_tokens = c.max_new_tokens = 40;
    b.hook = logits_hook;
    b.want_logits = true;
    b.sampler = s1c_sampler_defaults();
    int ia = s1c_engine_submit(e, &a, &err), ib = s1c_engine_submit(e, &b, &err), ic = s1c_engine_submit(e, &c, &err);
    assert_true(ia >= 0 && ib >= 0 && ic >= 0);
    for (int i = 0; i < 3; i++) assert_true(s1c_engine_step(e, &err) > 0);
    assert_int_equal(s1c_engine_cancel(e, ia), 3);      /* the root and its two sampled forks */
    assert_int_equal(s1c_engine_cancel(e, ic), 1);      /* still waiting */
    assert_int_equal(s1c_engine_cancel(e, 12345), 0);
    s1c_seq_result r;
    int cancelled = 0;
    while (s1c_engine_poll(e, &r)) {
        cancelled += r.stop_reason == S1C_STOP_CANCELLED;
        s1c_seq_result_free(&r);
    }
    assert_int_equal(cancelled, 4);
    assert_int_equal(s1c_engine_run(e, &err), 0);
    assert_int_equal(s1c_engine_poll(e, &r), 1);
    assert_int_equal(r.id, ib);
    assert_int_equal(r.n_tokens, 40);
    assert_int_equal(logits_seen, 40);
    int32_t alone[128];
    int n;
    job jb = jobs[1];
    jb.sp = s1c_sampler_defaults();
    jb.max_new = 40;
    run_alone(&jb, 0, alone, &n);
    assert_int_equal(n, 40);
    assert_memory_equal(alone, r.tokens, 40 * sizeof(int32_t));
    s1c_seq_result_free(&r);
    s1c_engine_stats st1;
    s1c_engine_get_stats(e, &st1);
    assert_int_equal(st1.n_free_blocks + st1.n_cached_blocks, st0.n_free_blocks); /* nothing leaked */
    s1c_engine_free(e);
}

static void test_bad_input(void **st) {
    (void)st;
    s1c_err err;
    s1c_engine *e;
    s1c_engine_params ep = s1c_engine_defaults();
    ep.kv_bytes = 1; /* zero blocks */
    assert_int_equal(s1c_engine_new(&e, model, &ep, &err), -1);
    assert_non_null(strstr(err.msg, "KV"));
    assert_int_equal(s1c_engine_new(&e, model, NULL, &err), 0);
    int32_t big[600];
    for (int i = 0; i < 600; i++) big[i] = 5;
    s1c_seq_params p = {.prompt = big, .n_prompt = 600, .max_new_tokens = 5, .sampler = s1c_sampler_defaults()};
    assert_int_equal(s1c_engine_submit(e, &p, &err), -1); /* longer than the context (512) */
    assert_non_null(strstr(err.msg, "context"));
    p.n_prompt = 0;
    assert_int_equal(s1c_engine_submit(e, &p, &err), -1);
    p.n_prompt = 3;
    big[1] = 9999;
    assert_int_equal(s1c_engine_submit(e, &p, &err), -1); /* outside the vocabulary */
    big[1] = 5;
    p.n_samples = -1;
    assert_int_equal(s1c_engine_submit(e, &p, &err), -1);
    /* generation up to the context: stops with context_full at 512 positions + 1 */
    p.n_samples = 1;
    p.n_prompt = 500;
    p.max_new_tokens = -1;
    assert_true(s1c_engine_submit(e, &p, &err) >= 0);
    assert_int_equal(s1c_engine_run(e, &err), 0);
    s1c_seq_result r;
    assert_int_equal(s1c_engine_poll(e, &r), 1);
    assert_int_equal(r.stop_reason, S1C_STOP_CONTEXT_FULL);
    assert_int_equal(r.n_prompt + r.n_tokens, 513);
    s1c_seq_result_free(&r);
    s1c_engine_free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batched_equals_alone), cmocka_unit_test(test_small_batches_and_chunks),
        cmocka_unit_test(test_memory_pressure),      cmocka_unit_test(test_f16_cache_runs),
        cmocka_unit_test(test_fork_shares_blocks),   cmocka_unit_test(test_prefix_cache),
        cmocka_unit_test(test_hooks),                cmocka_unit_test(test_threaded_submit),
        cmocka_unit_test(test_bad_input),            cmocka_unit_test(test_cancel_and_logits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
