/* generate --prompts-file / --samples: every prompt (and every sample, forked after one
 * prefill) runs through one engine; results come back in input order, one JSON line each. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "generate.h"
#include "s1c/eval.h" /* eval_count_steps: generate counts steps as s1c eval does */

typedef struct item {
    cJSON *obj;          /* the input line (NULL for --prompt / --prompt-ids) */
    int32_t *ids;
    int n_ids;
    s1c_bf_state bf0;    /* initial budget-forcing state (its budget depends on the prompt) */
    int root;            /* engine id of the first sample */
    int tries;           /* rejection sampling: runs so far */
    s1c_seq_result *res; /* [samples], in id order */
    int n_res;
} item;

/* Reads the prompts file: one JSON object per line with a string "prompt". */
static int read_items(const gen_opts *o, const s1c_model *m, const s1c_tokenizer *tok, item **out, int *n_out, s1c_err *err) {
    *out = NULL;
    *n_out = 0;
    if (!o->prompts_file) {
        item *it = calloc(1, sizeof *it);
        if (!it) return s1c_fail(err, "out of memory");
        *out = it;
        *n_out = 1;
        return o->prompt_ids ? gen_parse_ids(o->prompt_ids, s1c_model_config(m)->vocab_size, &it->ids, &it->n_ids, err)
                             : gen_encode_prompt(o, m, tok, o->prompt, &it->ids, &it->n_ids, err);
    }
    FILE *f = fopen(o->prompts_file, "r");
    if (!f) return s1c_fail(err, "%s: cannot open", o->prompts_file);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int n = 0, cap_items = 0, line_no = 0, rc = 0;
    item *items = NULL;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        line_no++;
        if (len == 0 || strspn(line, " \t\r\n") == (size_t)len) continue;
        cJSON *obj = cJSON_ParseWithLength(line, (size_t)len);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(obj, "prompt");
        if (!cJSON_IsObject(obj) || !cJSON_IsString(p)) {
            cJSON_Delete(obj);
            rc = s1c_fail(err, "%s:%d: not a JSON object with a string \"prompt\"", o->prompts_file, line_no);
            break;
        }
        if (n == cap_items) {
            cap_items = cap_items ? cap_items * 2 : 16;
            item *ni = realloc(items, (size_t)cap_items * sizeof *ni);
            if (!ni) { cJSON_Delete(obj); rc = s1c_fail(err, "out of memory"); break; }
            items = ni;
        }
        item *it = &items[n++];
        memset(it, 0, sizeof *it);
        it->obj = obj;
        if (gen_encode_prompt(o, m, tok, p->valuestring, &it->ids, &it->n_ids, err) != 0) rc = s1c_fail_prefix(err, "%s:%d", o->prompts_file, line_no);
        else if (it->n_ids == 0) rc = s1c_fail(err, "%s:%d: the prompt encodes to no tokens", o->prompts_file, line_no);
    }
    free(line);
    fclose(f);
    *out = items;
    *n_out = n;
    if (rc == 0 && n == 0) rc = s1c_fail(err, "%s: no prompts", o->prompts_file);
    return rc;
}

static void free_items(item *items, int n) {
    for (int i = 0; i < n; i++) {
        cJSON_Delete(items[i].obj);
        free(items[i].ids);
        for (int k = 0; k < items[i].n_res; k++) s1c_seq_result_free(&items[i].res[k]);
        free(items[i].res);
    }
    free(items);
}

/* The input object's own fields, without braces, followed by a comma when there are any. */
static void print_input_fields(const cJSON *obj) {
    for (const cJSON *e = obj ? obj->child : NULL; e; e = e->next) {
        if (!strcmp(e->string, "text") || !strcmp(e->string, "tokens") || !strcmp(e->string, "samples")) continue;
        char *v = cJSON_PrintUnformatted(e);
        json_write_str(stdout, e->string, strlen(e->string));
        printf(":%s,", v ? v : "null");
        cJSON_free(v);
    }
}

/* The budget-forcing fields of one sample (SPEC.md §8 names). */
static void print_bf_fields(const s1c_tokenizer *tok, const s1c_seq_result *r, const int32_t *prompt, int n_prompt) {
    const s1c_bf_state *st = r->state;
    int end = st->think_end_at >= 0 ? st->think_end_at : r->n_tokens;
    int prev = n_prompt > 0 ? prompt[n_prompt - 1] : -1;
    size_t tl = 0, al = 0;
    char *thinking = s1c_tok_decode_range(tok, r->tokens, 0, end, prev, &tl);
    char *answer = st->answer_at >= 0 ? s1c_tok_decode_range(tok, r->tokens, st->answer_at, r->n_tokens, prev, &al) : NULL;
    printf(",\"thinking\":");
    json_write_str(stdout, thinking ? thinking : "", tl);
    printf(",\"answer\":");
    json_write_str(stdout, answer ? answer : "", al);
    printf(",\"thinking_tokens\":%d,\"thinking_steps\":%d,\"answer_tokens\":%d,\"waits\":%d,\"max_thinking_tokens\":%d,\"think_end_reason\":",
           st->thinking_tokens, eval_count_steps(thinking ? thinking : ""), st->answer_tokens, st->waits, st->max_thinking);
    if (st->think_end_reason >= 0) printf("\"%s\"", s1c_stop_reason_name(st->think_end_reason));
    else printf("null");
    free(thinking);
    free(answer);
}

static int print_item(const gen_opts *o, const s1c_tokenizer *tok, s1c_textgen *g, const item *it, s1c_err *err) {
    int k = it->n_res;
    const char **texts = calloc((size_t)k, sizeof *texts);
    size_t *lens = calloc((size_t)k, sizeof *lens);
    if (!texts || !lens) { free(texts); free(lens); return s1c_fail(err, "out of memory"); }
    for (int i = 0; i < k; i++) {
        texts[i] = s1c_textgen_text(g, it->res[i].id, &lens[i]);
        if (!texts[i]) texts[i] = "";
    }
    const s1c_seq_result *r0 = &it->res[0];
    bool streamed = !o->json && k == 1 && !o->prompts_file;
    if (streamed) {
        printf("\n");
    } else if (!o->json) {
        for (int i = 0; i < k; i++) {
            if (k > 1) printf("--- sample %d ---\n", i);
            fwrite(texts[i], 1, lens[i], stdout);
            printf("\n");
        }
    } else {
        printf("{");
        print_input_fields(it->obj);
        int reason0 = o->bf_on ? s1c_bf_stop_reason(r0->state, r0->stop_reason) : r0->stop_reason;
        gen_print_fields(it->ids, it->n_ids, r0->tokens, r0->n_tokens, texts[0], lens[0], reason0, r0->prefill_s, r0->decode_s);
        if (o->bf_on) print_bf_fields(tok, r0, it->ids, it->n_ids);
        if (o->reject_tries > 0) printf(",\"tries\":%d", it->tries);
        if (k > 1) {
            printf(",\"samples\":[");
            for (int i = 0; i < k; i++) {
                printf(i ? ",{\"text\":" : "{\"text\":");
                json_write_str(stdout, texts[i], lens[i]);
                printf(",\"tokens\":[");
                for (int t = 0; t < it->res[i].n_tokens; t++) printf(t ? ",%d" : "%d", it->res[i].tokens[t]);
                const s1c_seq_result *ri = &it->res[i];
                printf("],\"stop_reason\":\"%s\"", s1c_stop_reason_name(o->bf_on ? s1c_bf_stop_reason(ri->state, ri->stop_reason) : ri->stop_reason));
                if (o->bf_on) print_bf_fields(tok, ri, it->ids, it->n_ids);
                printf("}");
            }
            printf("]");
        }
    }
    int rc = 0;
    if (k > 1) {
        s1c_vote v;
        rc = s1c_majority_vote(texts, lens, k, GRADE_EX_S1_MATH, &v, err);
        if (rc == 0 && o->json) {
            printf(",\"vote\":{\"answer\":");
            json_write_str(stdout, v.answer, strlen(v.answer));
            printf(",\"votes\":%d,\"n\":%d,\"agreement\":%.4f,\"winner\":%d}", v.votes, v.n, v.agreement, v.winner);
        } else if (rc == 0) {
            printf("--- majority answer (%d of %d) ---\n%s\n", v.votes, v.n, v.answer);
        }
        s1c_vote_free(&v);
    }
    if (o->json) printf("}\n");
    free(texts);
    free(lens);
    return rc;
}

/* Files each finished result under the item of its root sequence. */
static int collect(s1c_engine *e, item *items, int n_items) {
    s1c_seq_result r;
    while (s1c_engine_poll(e, &r)) {
        int root = r.parent >= 0 ? r.parent : r.id;
        /* first submissions take ids 0..n-1 in item order; redraws (--reject) get later ids */
        item *it = root >= 0 && root < n_items && items[root].root == root ? &items[root] : NULL;
        for (int i = 0; i < n_items && !it; i++)
            if (items[i].root == root) it = &items[i];
        if (!it) { s1c_seq_result_free(&r); continue; }
        s1c_seq_result *nr = realloc(it->res, (size_t)(it->n_res + 1) * sizeof *nr);
        if (!nr) { s1c_seq_result_free(&r); return -1; }
        it->res = nr;
        /* keep samples in id order: the root first, then its forks as they were made */
        int at = it->n_res;
        while (at > 0 && it->res[at - 1].id > r.id) { it->res[at] = it->res[at - 1]; at--; }
        it->res[at] = r;
        it->n_res++;
    }
    return 0;
}


/* Everything a submission needs besides the item. */
typedef struct run_ctx {
    const gen_opts *o;
    const s1c_model *m;
    const s1c_tokenizer *tok;
    s1c_engine *e;
    s1c_textgen *g;
    s1c_bf *bf;
    int32_t stop_ids[4];
    int n_stop_ids;
} run_ctx;

/* Submits one prompt (with its samples); a rejection-sampling retry uses the next seed. */
static int submit_item(run_ctx *rc, item *it, int index, s1c_err *err) {
    const gen_opts *o = rc->o;
    s1c_gen_params pi = gen_params(o, rc->m, rc->tok, it->n_ids, rc->stop_ids);
    s1c_textgen_state st = s1c_textgen_state_init();
    s1c_seq_params sp = {.prompt = it->ids, .n_prompt = it->n_ids, .max_new_tokens = pi.max_new_tokens,
                         .stop_ids = rc->stop_ids, .n_stop_ids = rc->n_stop_ids, .sampler = o->sp, .hook = s1c_textgen_hook,
                         .user = rc->g, .state = &st, .state_size = sizeof st, .n_samples = o->samples};
    sp.sampler.seed += (uint64_t)it->tries;
    if (rc->bf) {
        /* the controller ends the answer at end-of-turn; without --max-tokens the budgets rule */
        it->bf0 = s1c_bf_state_init(rc->bf, it->n_ids);
        sp.hook = s1c_bf_hook;
        sp.user = rc->bf;
        sp.state = &it->bf0;
        sp.state_size = sizeof it->bf0;
        sp.n_stop_ids = 0;
        if (o->max_tokens < 0 && o->steps < 0) sp.max_new_tokens = -1;
    }
    it->tries++;
    it->root = s1c_engine_submit(rc->e, &sp, err);
    if (it->root < 0) return o->prompts_file ? s1c_fail_prefix(err, "%s: prompt %d", o->prompts_file, index + 1) : -1;
    return 0;
}

/* Rejection sampling: a run whose thinking outgrew the budget is drawn again with the next
 * seed, up to --reject tries; the last rejected run is reported if none fits. */
static int resample_rejected(run_ctx *rc, item *items, int n, s1c_err *err) {
    for (bool again = rc->o->reject_tries > 0; again;) {
        again = false;
        for (int i = 0; i < n; i++) {
            item *it = &items[i];
            if (it->n_res != 1 || it->res[0].stop_reason != S1C_STOP_REJECTED || it->tries >= rc->o->reject_tries) continue;
            s1c_seq_result_free(&it->res[0]);
            it->n_res = 0;
            if (submit_item(rc, it, i, err) != 0) return -1;
            again = true;
        }
        if (again && s1c_engine_run(rc->e, err) != 0) return -1;
        if (again && collect(rc->e, items, n) != 0) return s1c_fail(err, "out of memory");
    }
    return 0;
}

int gen_run_batch(const gen_opts *o, const s1c_model *m, const s1c_tokenizer *tok, s1c_err *err) {
    item *items = NULL;
    int n = 0, rc = -1;
    run_ctx r = {.o = o, .m = m, .tok = tok};
    if (read_items(o, m, tok, &items, &n, err) != 0) goto out;
    s1c_gen_params gp = gen_params(o, m, tok, 1, r.stop_ids); /* the same settings for every prompt */
    r.n_stop_ids = gp.n_stop_ids;
    s1c_engine_params ep = s1c_engine_defaults();
    ep.ctx = o->ctx;
    ep.kv_bytes = (uint64_t)o->kv_mem_mib << 20;
    ep.kv_dtype = o->kv_dtype;
    /* one prompt, one sample, plain text: stream it as it comes (not when runs may be redrawn) */
    bool stream = !o->json && n == 1 && o->samples == 1 && !o->prompts_file && o->reject_tries == 0;
    r.g = s1c_textgen_new(tok, &gp, stream ? cli_print_stream : NULL, NULL);
    if (!r.g) { s1c_fail(err, "out of memory"); goto out; }
    if (s1c_engine_new(&r.e, m, &ep, err) != 0) goto out;
    int ctx = o->ctx > 0 && o->ctx < s1c_model_config(m)->max_seq_len ? o->ctx : s1c_model_config(m)->max_seq_len;
    if (o->bf_on && s1c_bf_new(&r.bf, &o->bf, tok, ctx, r.g, err) != 0) goto out;
    for (int i = 0; i < n; i++)
        if (submit_item(&r, &items[i], i, err) != 0) goto out;
    if (s1c_engine_run(r.e, err) != 0) goto out;
    if (collect(r.e, items, n) != 0) { s1c_fail(err, "out of memory"); goto out; }
    if (resample_rejected(&r, items, n, err) != 0) goto out;
    for (int i = 0; i < n; i++) {
        if (items[i].n_res == 0) { s1c_fail(err, "prompt %d: no result", i + 1); goto out; }
        if (items[i].res[0].error[0]) { s1c_fail(err, "prompt %d: %s", i + 1, items[i].res[0].error); goto out; }
        if (print_item(o, tok, r.g, &items[i], err) != 0) goto out;
    }
    rc = 0;
out:
    fflush(stdout);
    s1c_engine_free(r.e);
    s1c_bf_free(r.bf);
    s1c_textgen_free(r.g);
    free_items(items, n);
    return rc;
}
