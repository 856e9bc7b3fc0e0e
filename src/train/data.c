/* The SFT dataset: JSONL records in s1K's layouts, rendered in s1's format (SPEC.md §3),
 * tokenized with the loss mask, and the seeded order in which a run visits them. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/train.h"

int s1c_sft_fields_preset(s1c_sft_fields *f, const char *name, s1c_err *err) {
    memset(f, 0, sizeof *f);
    f->question = "question";
    if (strcmp(name, "s1k") == 0) {
        f->trace = "thinking_trajectories";
        f->attempt = "attempt";
    } else if (strcmp(name, "s1k-1.1") == 0 || strcmp(name, "s1k-1.1-deepseek") == 0) {
        f->trace = "deepseek_thinking_trajectory";
        f->attempt = "deepseek_attempt";
    } else if (strcmp(name, "s1k-1.1-gemini") == 0) {
        f->trace = "gemini_thinking_trajectory";
        f->attempt = "gemini_attempt";
    } else {
        return s1c_fail(err, "unknown data layout '%s' (s1k, s1k-1.1, s1k-1.1-gemini)", name);
    }
    return 0;
}

/* The trajectories of a record: a JSON list of strings or one string. Borrowed pointers. */
static int record_traces(const cJSON *v, const char ***out, int *n, const char *field, char *why, size_t why_n) {
    *out = NULL;
    *n = 0;
    if (cJSON_IsString(v)) {
        *out = malloc(sizeof **out);
        (*out)[0] = v->valuestring;
        *n = 1;
        return 0;
    }
    if (!cJSON_IsArray(v)) {
        snprintf(why, why_n, "field '%s' is %s, expected a string or a list of strings", field,
                 v ? "not a string or list" : "missing");
        return -1;
    }
    int k = cJSON_GetArraySize(v);
    *out = malloc((size_t)(k ? k : 1) * sizeof **out);
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e)) {
            snprintf(why, why_n, "field '%s' holds a non-string element", field);
            free(*out);
            *out = NULL;
            return -1;
        }
        (*out)[(*n)++] = e->valuestring;
    }
    return 0;
}

static const char *record_string(const cJSON *obj, const char *field, char *why, size_t why_n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, field);
    if (cJSON_IsString(v)) return v->valuestring;
    snprintf(why, why_n, "field '%s' is %s", field, v ? "not a string" : "missing");
    return NULL;
}

/* Renders a record; *text malloc'd and *loss_start the byte where the loss begins. */
/* Replaces the system and user turns of an s1 sample by the model template's rendering of
 * them (with its generation prompt), keeping the assistant turn. Takes ownership of sample. */
static char *with_template_prompt(char *sample, size_t *loss_start, const char *system, const char *question, int tmpl,
                                  s1c_err *err) {
    s1c_chat_msg msgs[2];
    int k = 0;
    if (system) msgs[k++] = (s1c_chat_msg){"system", system};
    msgs[k++] = (s1c_chat_msg){"user", question};
    char *prompt = s1c_chat_render(tmpl, msgs, k, true, err);
    char *out = NULL;
    if (prompt) {
        size_t pl = strlen(prompt), rl = strlen(sample + *loss_start);
        out = malloc(pl + rl + 1);
        if (out) {
            memcpy(out, prompt, pl);
            memcpy(out + pl, sample + *loss_start, rl + 1);
            *loss_start = pl;
        } else {
            s1c_fail(err, "out of memory");
        }
    }
    free(prompt);
    free(sample);
    return out;
}

static int render_record(const char *line, const s1c_sft_fields *f, int chat_template, char **text, size_t *loss_start,
                         char *why, size_t why_n) {
    *text = NULL;
    cJSON *obj = cJSON_Parse(line);
    if (!cJSON_IsObject(obj)) {
        snprintf(why, why_n, "not a JSON object");
        cJSON_Delete(obj);
        return -1;
    }
    const char *q = record_string(obj, f->question, why, why_n);
    const char *a = q ? record_string(obj, f->attempt, why, why_n) : NULL;
    const char **traces = NULL;
    int n_traces = 0, rc = -1;
    if (a && record_traces(cJSON_GetObjectItemCaseSensitive(obj, f->trace), &traces, &n_traces, f->trace, why,
                           why_n) == 0) {
        s1c_err e;
        *text = s1c_s1_train_sample(f->system, q, traces, n_traces, a, loss_start, &e);
        if (*text && chat_template >= 0) *text = with_template_prompt(*text, loss_start, f->system, q, chat_template, &e);
        if (*text) rc = 0;
        else snprintf(why, why_n, "%.150s", e.msg);
    }
    free(traces);
    cJSON_Delete(obj);
    return rc;
}

/* Tokens of text[0, loss_start) masked, then the rest as labels. Special tokens are matched
 * (the template's <|im_start|> and friends are single ids, as in s1's tokenizer). */
static int tokenize_sample(s1c_sft_sample *s, const s1c_tokenizer *tok, const char *text, size_t loss_start,
                           s1c_err *err) {
    int32_t *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    int flags = S1C_ENC_SPECIAL | S1C_ENC_NO_PREFIX;
    if (s1c_tok_encode_ex(tok, text, loss_start, flags, &a, &na, err) != 0) return -1;
    if (s1c_tok_encode_ex(tok, text + loss_start, strlen(text + loss_start), flags, &b, &nb, err) != 0) {
        free(a);
        return -1;
    }
    s->n = na + nb;
    s->token = malloc((size_t)s->n * sizeof *s->token);
    s->label = malloc((size_t)s->n * sizeof *s->label);
    if (!s->token || !s->label) {
        free(a);
        free(b);
        return s1c_fail(err, "out of memory");
    }
    memcpy(s->token, a, (size_t)na * sizeof *a);
    memcpy(s->token + na, b, (size_t)nb * sizeof *b);
    for (int i = 0; i < s->n; i++) s->label[i] = i < na ? -100 : s->token[i];
    free(a);
    free(b);
    return 0;
}

static void add_skip(s1c_sft_data *d, long line, int n_tokens, const char *reason) {
    s1c_sft_skip *k = realloc(d->skip, (size_t)(d->n_skip + 1) * sizeof *k);
    if (!k) return;
    d->skip = k;
    k[d->n_skip] = (s1c_sft_skip){.line = line, .n_tokens = n_tokens};
    snprintf(k[d->n_skip].reason, sizeof k[d->n_skip].reason, "%s", reason);
    d->n_skip++;
}

static int add_sample(s1c_sft_data *d, s1c_sft_sample *s, const s1c_sft_load_opts *o) {
    if (s->n > o->block_size) {
        if (!o->truncate) {
            char why[160];
            snprintf(why, sizeof why, "%d tokens, longer than the block size %d", s->n, o->block_size);
            add_skip(d, s->line, s->n, why);
            free(s->token);
            free(s->label);
            return 0;
        }
        s->n = o->block_size;
    }
    s1c_sft_sample *ns = realloc(d->s, (size_t)(d->n + 1) * sizeof *ns);
    if (!ns) return -1;
    d->s = ns;
    d->s[d->n++] = *s;
    d->n_tokens += s->n;
    for (int i = 0; i < s->n; i++) d->n_loss_tokens += s->label[i] >= 0;
    if (s->n > d->max_len) d->max_len = s->n;
    return 0;
}

int s1c_sft_load(s1c_sft_data *d, const char *path, const s1c_tokenizer *tok, const s1c_sft_load_opts *o,
                 s1c_err *err) {
    memset(d, 0, sizeof *d);
    FILE *fp = fopen(path, "rb");
    if (!fp) return s1c_fail(err, "%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        if (strspn(line, " \t\r\n") == (size_t)len) continue;
        char why[160] = "";
        char *text;
        size_t loss_start;
        if (strlen(line) != (size_t)len) snprintf(why, sizeof why, "contains a NUL byte");
        if (why[0] || render_record(line, &o->fields, o->chat_template, &text, &loss_start, why, sizeof why) != 0) {
            if (!o->skip_bad) rc = s1c_fail(err, "%s:%ld: %s (--skip-bad skips such lines)", path, lineno, why);
            else add_skip(d, lineno, 0, why);
            continue;
        }
        s1c_sft_sample s = {.line = lineno};
        if (tokenize_sample(&s, tok, text, loss_start, err) != 0) rc = s1c_fail_prefix(err, "%s:%ld", path, lineno);
        else if (add_sample(d, &s, o) != 0) rc = s1c_fail(err, "%s: out of memory", path);
        free(text);
    }
    if (rc == 0 && ferror(fp)) rc = s1c_fail(err, "%s: read error", path);
    free(line);
    fclose(fp);
    if (rc == 0 && d->n == 0)
        rc = s1c_fail(err, "%s: no usable sample (%ld lines, %d skipped)", path, lineno, d->n_skip);
    if (rc != 0) s1c_sft_free(d);
    return rc;
}

void s1c_sft_free(s1c_sft_data *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->s[i].token);
        free(d->s[i].label);
    }
    free(d->s);
    free(d->skip);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------- order */

static void shuffle(int *a, int n, uint64_t seed) {
    s1c_rng rng;
    s1c_rng_seed(&rng, seed);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(s1c_rng_u64(&rng) % (uint64_t)(i + 1));
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

int s1c_sft_plan_new(s1c_sft_plan *pl, const s1c_sft_data *d, int batch, int epochs, bool pack, int block_size,
                     uint64_t seed, s1c_err *err) {
    memset(pl, 0, sizeof *pl);
    if (batch < 1 || epochs < 1) return s1c_fail(err, "batch and epochs must be at least 1");
    pl->order = malloc((size_t)d->n * sizeof *pl->order);
    pl->row_start = malloc((size_t)d->n * sizeof *pl->row_start);
    pl->row_len = malloc((size_t)d->n * sizeof *pl->row_len);
    if (!pl->order || !pl->row_start || !pl->row_len) {
        s1c_sft_plan_free(pl);
        return s1c_fail(err, "out of memory");
    }
    for (int i = 0; i < d->n; i++) pl->order[i] = i;
    /* packing order: one seeded shuffle, then consecutive samples fill rows greedily */
    if (pack) shuffle(pl->order, d->n, seed ^ 0x7061636bULL);
    int used = 0;
    for (int i = 0; i < d->n; i++) {
        int len = d->s[pl->order[i]].n;
        if (pack && pl->n_rows > 0 && used + len <= block_size) {
            pl->row_len[pl->n_rows - 1]++;
            used += len;
            continue;
        }
        pl->row_start[pl->n_rows] = i;
        pl->row_len[pl->n_rows++] = 1;
        used = len;
    }
    pl->batch = batch;
    pl->epochs = epochs;
    pl->seed = seed;
    pl->steps_per_epoch = (pl->n_rows + batch - 1) / batch;
    pl->total_steps = pl->steps_per_epoch * epochs;
    return 0;
}

void s1c_sft_plan_free(s1c_sft_plan *pl) {
    free(pl->order);
    free(pl->row_start);
    free(pl->row_len);
    memset(pl, 0, sizeof *pl);
}

int s1c_sft_step_rows(const s1c_sft_plan *pl, int step, int *rows) {
    int epoch = step / pl->steps_per_epoch, k = step % pl->steps_per_epoch;
    /* the epoch's row order is recomputed from the seed: a resumed run needs only the step */
    int *perm = malloc((size_t)pl->n_rows * sizeof *perm);
    if (!perm) return 0;
    for (int i = 0; i < pl->n_rows; i++) perm[i] = i;
    shuffle(perm, pl->n_rows, pl->seed + 0x9e3779b97f4a7c15ULL * (uint64_t)(epoch + 1));
    int n = 0;
    for (int i = k * pl->batch; i < pl->n_rows && n < pl->batch; i++) rows[n++] = perm[i];
    free(perm);
    return n;
}
