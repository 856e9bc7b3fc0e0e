/* The batch API: a ragged batch of 4 sequences of different lengths, mixing prefill,
 * injected multi-token prefills and single-token decodes, interleaved row by row, gives the
 * same logits as running each sequence alone (fp32, <= 1e-5; the reference kernels make it
 * exact). Also: F16/BF16 KV storage stays close to F32, chunked forwards (more rows than
 * the run state holds) match, and malformed batches are refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelrun.h"
#include "testutil.h"

#define NSEQ 4
#define MAXLEN 40

static s1c_model *model;
static int32_t toks[NSEQ][MAXLEN];
/* logits of each sequence run alone: [seq][pos][vocab] */
static float *alone;

static int setup(void **state) {
    s1c_err err;
    s1c_config c;
    assert_int_equal(s1c_config_preset(&c, "qwen2", "tiny", &err), 0);
    c.n_layers = 2;
    c.vocab_size = 300;
    char *dir = tu_path("S1C_TMP", "batch_model");
    assert_int_equal(s1c_model_init_hf(&c, 42, S1C_F32, dir, &err), 0);
    assert_int_equal(s1c_model_open(&model, dir, &err), 0);
    s1c_rng r;
    s1c_rng_seed(&r, 7);
    for (int s = 0; s < NSEQ; s++)
        for (int i = 0; i < MAXLEN; i++) toks[s][i] = (int32_t)(s1c_rng_u64(&r) % 300);
    alone = malloc((size_t)NSEQ * MAXLEN * 300 * sizeof(float));
    for (int s = 0; s < NSEQ; s++) {
        s1c_kv *kv;
        s1c_fwd *f;
        assert_int_equal(s1c_kv_new(&kv, &c, 8, 8, S1C_F32, &err), 0);
        assert_int_equal(s1c_fwd_new(&f, model, MAXLEN, 64, &err), 0);
        mr_seq q;
        mr_seq_alloc(&q, kv, MAXLEN);
        /* one token at a time: the plainest way to run a sequence */
        for (int t = 0; t < MAXLEN; t++)
            assert_int_equal(mr_forward(f, kv, &q, toks[s], t, t + 1, alone + ((size_t)s * MAXLEN + t) * 300), 0);
        s1c_fwd_free(f);
        s1c_kv_free(kv);
    }
    free(dir);
    (void)state;
    return 0;
}

static int teardown(void **state) {
    s1c_model_free(model);
    free(alone);
    (void)state;
    return 0;
}

/* The schedule: how many tokens each sequence advances in each step (0 = idle). */
static const int schedule[][NSEQ] = {
    {10, 3, 7, 1},  /* prefills of different lengths */
    {1, 5, 1, 12},  /* decodes mixed with injected prefills */
    {1, 1, 0, 1},   /* plain decode, one sequence idle */
    {6, 1, 4, 1},
    {1, 1, 1, 1},
};

static void run_ragged(int kv_dtype, int max_rows, double tol) {
    s1c_err err;
    const s1c_config *c = s1c_model_config(model);
    s1c_kv *kv;
    s1c_fwd *f;
    assert_int_equal(s1c_kv_new(&kv, c, 8, 32, kv_dtype, &err), 0);
    assert_int_equal(s1c_fwd_new(&f, model, max_rows, 64, &err), 0);
    mr_seq seqs[NSEQ];
    s1c_seq_blocks sb[NSEQ];
    for (int s = 0; s < NSEQ; s++) {
        mr_seq_alloc(&seqs[s], kv, MAXLEN);
        sb[s] = (s1c_seq_blocks){seqs[s].blocks, seqs[s].n_blocks};
    }
    int done[NSEQ] = {0};
    double worst = 0.0;
    for (size_t step = 0; step < sizeof schedule / sizeof schedule[0]; step++) {
        int32_t token[128], pos[128], seq[128];
        uint8_t want[128];
        int n = 0, max_adv = 0;
        for (int s = 0; s < NSEQ; s++)
            if (schedule[step][s] > max_adv) max_adv = schedule[step][s];
        /* interleave: round-robin over sequences, each row in its own position order */
        for (int k = 0; k < max_adv; k++)
            for (int s = 0; s < NSEQ; s++)
                if (k < schedule[step][s]) {
                    int p = done[s] + k;
                    token[n] = toks[s][p];
                    pos[n] = p;
                    seq[n] = s;
                    want[n] = (uint8_t)((p + s) % 3 != 1); /* skip some rows: logits only where asked */
                    n++;
                }
        float *out = malloc((size_t)n * 300 * sizeof(float));
        s1c_batch b = {.n_tokens = n, .token = token, .pos = pos, .seq = seq, .logits = want, .n_seqs = NSEQ, .seqs = sb};
        if (s1c_forward(f, kv, &b, out, &err) != 0) fail_msg("%s", err.msg);
        int r = 0;
        for (int i = 0; i < n; i++) {
            if (!want[i]) continue;
            const float *ref = alone + ((size_t)seq[i] * MAXLEN + pos[i]) * 300;
            double d = tu_max_abs_diff(out + (size_t)r * 300, ref, 300);
            if (d > worst) worst = d;
            if (!(d <= tol)) fail_msg("step %zu row %d (seq %d pos %d): max abs diff %.3g > %.0e", step, i, seq[i], pos[i], d, tol);
            r++;
        }
        for (int s = 0; s < NSEQ; s++) done[s] += schedule[step][s];
        free(out);
    }
    printf("kv %s, %d rows per chunk: max abs diff %.3g\n", s1c_dtype_name(kv_dtype), max_rows, worst);
    s1c_fwd_free(f);
    s1c_kv_free(kv);
}

static void test_ragged_f32(void **state) { (void)state; run_ragged(S1C_F32, 128, 1e-5); }
static void test_ragged_chunked(void **state) { (void)state; run_ragged(S1C_F32, 5, 1e-5); }
/* Half-precision caches round K and V: logits move by ~1e-3 on this model, not more. */
static void test_ragged_f16(void **state) { (void)state; run_ragged(S1C_F16, 128, 2e-3); }
static void test_ragged_bf16(void **state) { (void)state; run_ragged(S1C_BF16, 128, 1e-2); }

static void test_bad_batches(void **state) {
    (void)state;
    s1c_err err;
    const s1c_config *c = s1c_model_config(model);
    s1c_kv *kv;
    s1c_fwd *f;
    assert_int_equal(s1c_kv_new(&kv, c, 8, 4, S1C_F32, &err), 0);
    assert_int_equal(s1c_fwd_new(&f, model, 8, 64, &err), 0);
    int32_t blocks[2] = {0, 1};
    s1c_seq_blocks sb = {blocks, 2};
    int32_t tok = 5, pos = 0, seq = 0;
    uint8_t want = 1;
    float out[600]; /* two rows of logits */
    s1c_batch b = {1, &tok, &pos, &seq, &want, 1, &sb};
    assert_int_equal(s1c_forward(f, kv, &b, out, &err), 0);
    tok = 300; /* outside the vocabulary */
    assert_int_equal(s1c_forward(f, kv, &b, out, &err), -1);
    assert_non_null(strstr(err.msg, "vocabulary"));
    tok = 5;
    pos = 16; /* needs a third block */
    assert_int_equal(s1c_forward(f, kv, &b, out, &err), -1);
    assert_non_null(strstr(err.msg, "blocks"));
    pos = 64; /* past the run state's context */
    assert_int_equal(s1c_forward(f, kv, &b, out, &err), -1);
    pos = 0;
    seq = 1; /* no such sequence */
    assert_int_equal(s1c_forward(f, kv, &b, out, &err), -1);
    seq = 0;
    blocks[0] = 9; /* block id outside the cache */
    assert_int_equal(s1c_forward(f, kv, &b, out, &err), -1);
    blocks[0] = 0;
    /* two rows storing into one cache slot: the same position of one sequence, or two sequences
     * whose tables share the block written to; distinct slots of a shared block are fine */
    int32_t tok2[2] = {5, 6}, poss[2] = {3, 3}, seqs[2] = {0, 0};
    uint8_t wants[2] = {1, 1};
    int32_t blocks2[2] = {0, 1};
    s1c_seq_blocks sbs[2] = {{blocks, 2}, {blocks2, 2}};
    s1c_batch b2 = {2, tok2, poss, seqs, wants, 2, sbs};
    assert_int_equal(s1c_forward(f, kv, &b2, out, &err), -1);
    assert_non_null(strstr(err.msg, "same KV cache slot"));
    seqs[1] = 1; /* sequence 1's table shares block 0 */
    assert_int_equal(s1c_forward(f, kv, &b2, out, &err), -1);
    assert_non_null(strstr(err.msg, "same KV cache slot"));
    blocks2[0] = 2; /* its own block: fine */
    assert_int_equal(s1c_forward(f, kv, &b2, out, &err), 0);
    seqs[1] = 0, poss[1] = 4; /* next positions of one sequence: fine */
    assert_int_equal(s1c_forward(f, kv, &b2, out, &err), 0);
    s1c_fwd_free(f);
    s1c_kv_free(kv);
}

static void test_kv_refcount(void **state) {
    (void)state;
    s1c_err err;
    s1c_kv *kv;
    assert_int_equal(s1c_kv_new(&kv, s1c_model_config(model), 16, 3, S1C_F32, &err), 0);
    int a = s1c_kv_alloc(kv), b = s1c_kv_alloc(kv), c = s1c_kv_alloc(kv);
    assert_true(a >= 0 && b >= 0 && c >= 0);
    assert_int_equal(s1c_kv_alloc(kv), -1); /* full */
    s1c_kv_ref(kv, b);                        /* shared by two sequences */
    s1c_kv_unref(kv, b);
    assert_int_equal(s1c_kv_n_free(kv), 0);   /* still held by one */
    s1c_kv_unref(kv, b);
    assert_int_equal(s1c_kv_n_free(kv), 1);
    assert_int_equal(s1c_kv_alloc(kv), b);
    s1c_kv_free(kv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ragged_f32), cmocka_unit_test(test_ragged_chunked), cmocka_unit_test(test_ragged_f16),
        cmocka_unit_test(test_ragged_bf16), cmocka_unit_test(test_bad_batches), cmocka_unit_test(test_kv_refcount),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
