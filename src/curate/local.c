/* A local reference model for the difficulty stage: every question through one engine
 * (batched, greedy), the model's chat template when it has one, else the bare question. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curate_internal.h"
#include "s1c/infer.h"
#include "s1c/model.h"

/* The prompt ids of a question. */
static int encode(const s1c_model *m, const s1c_tokenizer *tok, const char *question, int32_t **ids, int *n, s1c_err *err) {
    int tmpl = s1c_tok_chat_template(tok);
    int flags = s1c_tok_kind_of(tok) == S1C_TOK_SPM && s1c_tok_bos(tok) >= 0 ? S1C_ENC_BOS : 0;
    int rc;
    if (tmpl < 0) {
        rc = s1c_tok_encode_ex(tok, question, strlen(question), flags, ids, n, err);
    } else {
        s1c_chat_msg msg = {"user", question};
        char *text = s1c_chat_render(tmpl, &msg, 1, true, err);
        if (!text) return -1;
        rc = s1c_tok_encode_ex(tok, text, strlen(text), flags | S1C_ENC_SPECIAL, ids, n, err);
        free(text);
    }
    if (rc) return -1;
    int V = s1c_model_config(m)->vocab_size;
    for (int i = 0; i < *n; i++)
        if ((*ids)[i] < 0 || (*ids)[i] >= V) return s1c_fail(err, "token id %d is outside the model's vocabulary (%d)", (*ids)[i], V);
    return 0;
}

int cur_local_answer(const s1c_model *m, const s1c_tokenizer *tok, const char *const *questions, size_t n, int max_tokens,
                     char **answers, char **errors, s1c_err *err) {
    const s1c_config *c = s1c_model_config(m);
    int32_t stop[3];
    int n_stop = 0;
    if (s1c_model_format_of(m) == S1C_FMT_LLAMA2C) stop[n_stop++] = 1; /* llama2.c's run.c stops at BOS */
    if (c->eos_id >= 0) stop[n_stop++] = c->eos_id;
    if (s1c_tok_eos(tok) >= 0) stop[n_stop++] = s1c_tok_eos(tok);
    s1c_gen_params gp = {.max_new_tokens = max_tokens > 0 ? max_tokens : -1, .stop_ids = stop, .n_stop_ids = n_stop,
                         .sampler = s1c_sampler_defaults()};
    gp.sampler.temperature = 0;
    s1c_engine_params ep = s1c_engine_defaults();
    s1c_engine *e = NULL;
    s1c_textgen *g = s1c_textgen_new(tok, &gp, NULL, NULL);
    int *seq = malloc((n ? n : 1) * sizeof *seq);
    int rc = 0;
    for (size_t i = 0; i < n; i++) answers[i] = errors[i] = NULL;
    if (!g || !seq) { rc = s1c_fail(err, "out of memory"); goto out; }
    if ((rc = s1c_engine_new(&e, m, &ep, err))) goto out;
    s1c_textgen_state st0 = s1c_textgen_state_init();
    for (size_t i = 0; i < n; i++) {
        seq[i] = -1;
        int32_t *ids = NULL;
        int n_ids = 0;
        s1c_err e2 = {{0}};
        if (encode(m, tok, questions[i], &ids, &n_ids, &e2) || n_ids == 0 || n_ids >= c->max_seq_len) {
            if (!e2.msg[0]) snprintf(e2.msg, sizeof e2.msg, "the question has %d tokens, the context %d", n_ids, c->max_seq_len);
            errors[i] = cur_strdup(e2.msg);
            free(ids);
            continue;
        }
        s1c_seq_params sp = {.prompt = ids, .n_prompt = n_ids, .max_new_tokens = gp.max_new_tokens, .stop_ids = stop, .n_stop_ids = n_stop,
                             .sampler = gp.sampler, .hook = s1c_textgen_hook, .user = g, .state = &st0, .state_size = sizeof st0};
        seq[i] = s1c_engine_submit(e, &sp, &e2);
        free(ids);
        if (seq[i] < 0) errors[i] = cur_strdup(e2.msg);
    }
    if ((rc = s1c_engine_run(e, err))) goto out;
    s1c_seq_result r;
    while (s1c_engine_poll(e, &r)) {
        for (size_t i = 0; i < n; i++) {
            if (seq[i] != r.id) continue;
            size_t len = 0;
            const char *t = r.error[0] ? NULL : s1c_textgen_text(g, r.id, &len);
            if (t) answers[i] = cur_utf8_fix(t, len); /* the model may write any bytes */
            else errors[i] = cur_strdup(r.error[0] ? r.error : "no text");
        }
        s1c_seq_result_free(&r);
    }
out:
    s1c_engine_free(e);
    s1c_textgen_free(g);
    free(seq);
    return rc;
}
