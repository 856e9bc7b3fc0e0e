/* Budget forcing (SPEC.md §5, §8): a per-sequence state machine in the engine's hook.
 *
 *   THINK: every committed token counts as a thinking token. On a natural end of thinking
 *     (the first token of think_end, or the end-of-turn token), if waits remain or the
 *     minimum is not reached, the end token is dropped and the ignore string's own token ids
 *     are injected (counted as thinking), and the end is banned for the next draw; an ignore
 *     string is only injected if it fits in the budget, else the end is forced. Otherwise the
 *     thinking ends there: the delimiter is completed and the model answers.
 *     When thinking_tokens reaches max_thinking_tokens the end is forced: a newline if the
 *     text does not end in one, think_end, a newline, answer_prefix.
 *   ANSWER: until the end-of-turn token (answer_end) or max_answer_tokens (answer_limit).
 * Invariant (normative mode): thinking_tokens <= max_thinking_tokens for every run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/infer.h"

#define BF_MAX_IDS 64

struct s1c_bf {
    s1c_bf_opts o;
    const s1c_tokenizer *tok;
    s1c_textgen *tg;
    int ctx;
    int32_t start[BF_MAX_IDS], end[BF_MAX_IDS], wait[BF_MAX_IDS];
    int n_start, n_end, n_wait;
    int32_t forced[BF_MAX_IDS], forced_nl[BF_MAX_IDS]; /* end suffix without / with a leading newline */
    int n_forced, n_forced_nl;
    int32_t end_tokens[4]; /* tokens that end thinking: think_end's first token, end-of-turn */
    int n_end_tokens;
    int eot;               /* end-of-turn token (<|im_end|>), -1 if none */
};

s1c_bf_opts s1c_bf_defaults(void) {
    return (s1c_bf_opts){.max_thinking_tokens = S1C_BF_UNLIMITED, .min_thinking_tokens = 0, .num_waits = 0,
                         .wait_str = "Wait", .answer_prefix = "Final Answer:", .think_start = "<|im_start|>think",
                         .think_end = "<|im_start|>answer", .max_answer_tokens = S1C_BF_UNLIMITED, .compat = S1C_BF_NORMATIVE};
}

/* Encodes text (special tokens matched) into ids[BF_MAX_IDS]. */
static int encode(const s1c_tokenizer *tok, const char *what, const char *text, int32_t *ids, int *n, s1c_err *err) {
    int32_t *t;
    int k;
    if (s1c_tok_encode_ex(tok, text, strlen(text), S1C_ENC_SPECIAL | S1C_ENC_NO_PREFIX, &t, &k, err) != 0) return s1c_fail_prefix(err, "budget forcing: %s", what);
    if (k > BF_MAX_IDS) { free(t); return s1c_fail(err, "budget forcing: %s is %d tokens long (at most %d)", what, k, BF_MAX_IDS); }
    memcpy(ids, t, (size_t)k * sizeof(int32_t));
    *n = k;
    free(t);
    return 0;
}

static int check_opts(const s1c_bf_opts *o, s1c_err *err) {
    if (o->max_thinking_tokens < 0 && o->max_thinking_tokens != S1C_BF_UNLIMITED && o->max_thinking_tokens != S1C_BF_AUTO)
        return s1c_fail(err, "budget forcing: max_thinking_tokens must be >= 0, unlimited or auto");
    if (o->min_thinking_tokens < 0) return s1c_fail(err, "budget forcing: min_thinking_tokens must be >= 0");
    if (o->num_waits < 0) return s1c_fail(err, "budget forcing: num_waits must be >= 0");
    if (o->max_answer_tokens < 0 && o->max_answer_tokens != S1C_BF_UNLIMITED) return s1c_fail(err, "budget forcing: max_answer_tokens must be >= 0 or unlimited");
    if (o->max_thinking_tokens >= 0 && o->min_thinking_tokens > o->max_thinking_tokens)
        return s1c_fail(err, "budget forcing: min_thinking_tokens (%d) exceeds max_thinking_tokens (%d)", o->min_thinking_tokens, o->max_thinking_tokens);
    if (!o->think_start || !o->think_end || !o->wait_str || !o->answer_prefix) return s1c_fail(err, "budget forcing: missing delimiter");
    if (!o->think_end[0]) return s1c_fail(err, "budget forcing: think_end is empty");
    if (o->compat != S1C_BF_NORMATIVE && o->compat != S1C_BF_S1_EVAL) return s1c_fail(err, "budget forcing: unknown compatibility mode");
    return 0;
}

int s1c_bf_new(s1c_bf **out, const s1c_bf_opts *o, const s1c_tokenizer *tok, int ctx, s1c_textgen *tg, s1c_err *err) {
    *out = NULL;
    if (!tok) return s1c_fail(err, "budget forcing needs a tokenizer");
    if (check_opts(o, err) != 0) return -1;
    s1c_bf *bf = calloc(1, sizeof *bf);
    if (!bf) return s1c_fail(err, "out of memory");
    bf->o = *o;
    bf->tok = tok;
    bf->tg = tg;
    bf->ctx = ctx;
    size_t L = strlen(o->think_end) + strlen(o->answer_prefix) + 4;
    char *suffix = malloc(L);
    int rc = suffix ? 0 : s1c_fail(err, "out of memory");
    /* the forced end: think_end, a newline, the answer prefix (as s1: "<|im_start|>answer\nFinal Answer:") */
    if (rc == 0) {
        snprintf(suffix, L, "\n%s\n%s", o->think_end, o->answer_prefix);
        rc = encode(tok, "the forced end", suffix + 1, bf->forced, &bf->n_forced, err);
    }
    if (rc == 0) rc = encode(tok, "the forced end", suffix, bf->forced_nl, &bf->n_forced_nl, err);
    free(suffix);
    if (rc == 0) rc = encode(tok, "think_start", o->think_start, bf->start, &bf->n_start, err);
    if (rc == 0) rc = encode(tok, "think_end", o->think_end, bf->end, &bf->n_end, err);
    if (rc == 0 && o->wait_str[0]) {
        /* the ignore string is its own tokens, plain text: never re-tokenized with what precedes it */
        int32_t *t;
        int k;
        rc = s1c_tok_encode_ex(tok, o->wait_str, strlen(o->wait_str), S1C_ENC_NO_PREFIX, &t, &k, err);
        if (rc == 0 && k > BF_MAX_IDS) rc = s1c_fail(err, "budget forcing: the ignore string is %d tokens long (at most %d)", k, BF_MAX_IDS);
        if (rc == 0) { memcpy(bf->wait, t, (size_t)k * sizeof(int32_t)); bf->n_wait = k; }
        if (rc == 0 || k > BF_MAX_IDS) free(t);
    }
    if (rc == 0 && bf->n_end == 0) rc = s1c_fail(err, "budget forcing: think_end encodes to no tokens");
    if (rc != 0) { free(bf); return -1; }
    bf->eot = s1c_tok_eos(tok);
    bf->end_tokens[bf->n_end_tokens++] = bf->end[0];
    if (bf->eot >= 0 && bf->eot != bf->end[0]) bf->end_tokens[bf->n_end_tokens++] = bf->eot;
    *out = bf;
    return 0;
}

void s1c_bf_free(s1c_bf *bf) { free(bf); }

const int32_t *s1c_bf_think_start(const s1c_bf *bf, int *n) {
    *n = bf->n_start;
    return bf->start;
}

s1c_bf_state s1c_bf_state_init(const s1c_bf *bf, int n_prompt) {
    s1c_bf_state st = {.phase = S1C_BF_THINK, .think_end_reason = -1, .stop_reason = -1, .think_end_at = -1, .answer_at = -1,
                       .tg = s1c_textgen_state_init()};
    int m = bf->o.max_thinking_tokens;
    if (m == S1C_BF_AUTO) {
        /* s1: total limit - prompt - think_start - forced end suffix - 100 (our prompt holds think_start) */
        m = bf->ctx - n_prompt - bf->n_forced_nl - 100;
        if (m < 0) m = 0;
    }
    st.max_thinking = m;
    return st;
}

static bool is_end_token(const s1c_bf *bf, int t) {
    for (int i = 0; i < bf->n_end_tokens; i++)
        if (bf->end_tokens[i] == t) return true;
    return false;
}

static void inject(s1c_step_io *io, const int32_t *ids, int n) {
    for (int i = 0; i < n && io->n_inject < (int)(sizeof io->inject / sizeof io->inject[0]); i++) io->inject[io->n_inject++] = ids[i];
}

/* How many generated tokens stay before what this step injects. */
static int kept_len(const s1c_step_io *io) {
    if (io->truncate_to >= 0) return io->truncate_to;
    return io->n_generated + (io->drop ? 0 : 1);
}

/* Whether the text that stays ends in a newline: the forced end then adds none. */
static bool ends_in_newline(const s1c_bf *bf, s1c_engine *e, int id, const s1c_step_io *io) {
    int n, np;
    const int32_t *toks = s1c_engine_tokens(e, id, &n, &np);
    int k = kept_len(io), last, prev;
    if (!io->drop && io->truncate_to < 0) { last = io->token; prev = toks[n - 1]; }
    else { last = toks[np + k - 1]; prev = np + k >= 2 ? toks[np + k - 2] : -1; } /* k = 0: the prompt's last token */
    char piece[256];
    int len = s1c_tok_decode(bf->tok, prev, last, piece, (int)sizeof piece);
    return len > 0 && piece[len - 1] == '\n';
}

/* Ends thinking by force (budget): newline if needed, think_end, newline, answer_prefix. */
static void force_end(const s1c_bf *bf, s1c_engine *e, int id, s1c_bf_state *st, s1c_step_io *io) {
    st->think_end_at = kept_len(io);
    if (ends_in_newline(bf, e, id, io)) inject(io, bf->forced, bf->n_forced);
    else inject(io, bf->forced_nl, bf->n_forced_nl);
    st->answer_at = st->think_end_at + io->n_inject;
    st->phase = S1C_BF_ANSWER;
    st->think_end_reason = S1C_STOP_BUDGET;
}

/* A natural end of thinking that stands: complete the delimiter; the model answers after it. */
static void natural_end(const s1c_bf *bf, s1c_bf_state *st, s1c_step_io *io) {
    st->think_end_at = io->n_generated;
    if (io->token == bf->end[0]) inject(io, bf->end + 1, bf->n_end - 1); /* its first token is the one drawn */
    else { io->drop = true; inject(io, bf->end, bf->n_end); } /* end-of-turn inside thinking: replaced */
    st->answer_at = kept_len(io) + io->n_inject;
    st->phase = S1C_BF_ANSWER;
    st->think_end_reason = S1C_STOP_THINK_END;
}

/* Replaces the drawn end-of-thinking token by the ignore string (none: just drops it). */
static void extend(const s1c_bf *bf, s1c_bf_state *st, s1c_step_io *io) {
    io->drop = true;
    inject(io, bf->wait, bf->n_wait);
    st->thinking_tokens += bf->n_wait;
    st->round_tokens = 0;
    st->waits++;
    st->suppress_end = true;
}

static bool wants_wait(const s1c_bf *bf, const s1c_bf_state *st) {
    return st->waits < bf->o.num_waits || st->thinking_tokens < bf->o.min_thinking_tokens;
}

/* Rejection sampling: the thinking runs free; one that would outgrow the budget is rejected. */
static bool reject_if_over(const s1c_bf *bf, s1c_bf_state *st, s1c_step_io *io, int extra) {
    if (!bf->o.rejection || st->max_thinking < 0 || st->thinking_tokens + extra <= st->max_thinking) return false;
    io->drop = true;
    io->n_inject = 0;
    io->stop = true;
    io->stop_reason = st->stop_reason = S1C_STOP_REJECTED;
    return true;
}

/* §8: the budget is never exceeded; an ignore string is injected only if it fits. */
static void think_step_normative(const s1c_bf *bf, s1c_engine *e, int id, s1c_bf_state *st, s1c_step_io *io) {
    int max = st->max_thinking;
    bool end = is_end_token(bf, io->token);
    if (!end && reject_if_over(bf, st, io, 1)) return;
    if (max >= 0 && st->thinking_tokens >= max && !bf->o.rejection) { /* a budget of 0, or filled exactly by an ignore string */
        io->drop = true;
        force_end(bf, e, id, st, io);
        return;
    }
    if (end) {
        if (!wants_wait(bf, st)) natural_end(bf, st, io);
        else if (bf->o.rejection && reject_if_over(bf, st, io, bf->n_wait)) return;
        else if (max < 0 || st->thinking_tokens + bf->n_wait <= max) extend(bf, st, io);
        else { io->drop = true; force_end(bf, e, id, st, io); }
        return;
    }
    st->thinking_tokens++;
    if (max >= 0 && st->thinking_tokens >= max && !bf->o.rejection) force_end(bf, e, id, st, io);
}

/* s1's evaluation fork: each round (between ignore strings) may think up to the budget; a
 * round that reaches it ends the thinking; the joined thinking is then cut to the budget. */
static void finish_s1_eval(const s1c_bf *bf, s1c_engine *e, int id, s1c_bf_state *st, s1c_step_io *io, bool natural) {
    if (st->max_thinking >= 0 && st->thinking_tokens > st->max_thinking) {
        io->truncate_to = st->max_thinking; /* thinking starts right after the prompt */
        io->drop = true;
        st->thinking_tokens = st->max_thinking;
        natural = false;
    }
    if (natural) natural_end(bf, st, io);
    else force_end(bf, e, id, st, io);
}

static void think_step_s1_eval(const s1c_bf *bf, s1c_engine *e, int id, s1c_bf_state *st, s1c_step_io *io) {
    int max = st->max_thinking;
    if (max == 0) { io->drop = true; force_end(bf, e, id, st, io); return; }
    if (is_end_token(bf, io->token)) {
        if (wants_wait(bf, st)) extend(bf, st, io);
        else finish_s1_eval(bf, e, id, st, io, true);
        return;
    }
    st->thinking_tokens++;
    st->round_tokens++;
    if (max >= 0 && st->round_tokens >= max) finish_s1_eval(bf, e, id, st, io, false);
}

static void answer_step(const s1c_bf *bf, s1c_bf_state *st, s1c_step_io *io) {
    st->answer_tokens++;
    if (io->token == bf->eot) {
        io->stop = true;
        io->stop_reason = st->stop_reason = S1C_STOP_ANSWER_END;
    } else if (bf->o.max_answer_tokens >= 0 && st->answer_tokens >= bf->o.max_answer_tokens) {
        io->stop = true;
        io->stop_reason = st->stop_reason = S1C_STOP_ANSWER_LIMIT;
    }
}

/* One controller step for one drawn token (everything but the text). */
static void bf_step(const s1c_bf *bf, s1c_engine *e, int id, s1c_bf_state *st, s1c_step_io *io) {
    if (st->phase == S1C_BF_THINK) {
        if (bf->o.compat == S1C_BF_S1_EVAL) think_step_s1_eval(bf, e, id, st, io);
        else think_step_normative(bf, e, id, st, io);
        if (st->phase == S1C_BF_ANSWER && bf->o.max_answer_tokens == 0) {
            io->stop = true;
            io->stop_reason = st->stop_reason = st->think_end_reason;
        }
    } else {
        answer_step(bf, st, io);
    }
    /* after an injected ignore string the end of thinking is banned for one draw */
    io->n_ban = 0;
    if (st->suppress_end && st->phase == S1C_BF_THINK) {
        for (int i = 0; i < bf->n_end_tokens; i++) io->ban[io->n_ban++] = bf->end_tokens[i];
    }
    st->suppress_end = false;
}

void s1c_bf_hook(s1c_engine *e, int id, void *user, void *state, s1c_step_io *io) {
    const s1c_bf *bf = user;
    s1c_bf_state *st = state;
    bf_step(bf, e, id, st, io);
    if (bf->tg) s1c_textgen_on_token(bf->tg, e, id, &st->tg, io);
}

/* ------------------------------------------------------------------ sweeps as forks */

static bool same_action(const s1c_step_io *a, const s1c_step_io *b, const s1c_bf_state *sa, const s1c_bf_state *sb) {
    return a->drop == b->drop && a->n_inject == b->n_inject && !memcmp(a->inject, b->inject, (size_t)a->n_inject * sizeof(int32_t)) &&
           a->stop == b->stop && sa->phase == sb->phase;
}

bool s1c_bf_sweep_ok(const s1c_bf *bf) { return bf->o.compat == S1C_BF_NORMATIVE && !bf->o.rejection && bf->o.max_answer_tokens != 0; }

void s1c_bf_sweep_hook(s1c_engine *e, int id, void *user, void *state, s1c_step_io *io) {
    const s1c_bf *bf = user;
    s1c_bf_sweep_state *sw = state;
    if (sw->bf.phase == S1C_BF_THINK && sw->n_pending > 0) {
        /* what this sequence will do under its own budget ... */
        s1c_bf_state mine = sw->bf;
        s1c_step_io mine_io = *io;
        bf_step(bf, e, id, &mine, &mine_io);
        int keep = 0;
        for (int i = 0; i < sw->n_pending; i++) {
            /* ... and under each smaller budget riding along: the first step where they differ
             * (that budget is reached, or an ignore string no longer fits it) is a fork */
            s1c_bf_state other = sw->bf;
            other.max_thinking = sw->pending[i];
            s1c_step_io other_io = *io;
            bf_step(bf, e, id, &other, &other_io);
            if (same_action(&mine_io, &other_io, &mine, &other)) { sw->pending[keep++] = sw->pending[i]; continue; }
            int32_t inj[80];
            int n = 0;
            if (!other_io.drop) inj[n++] = other_io.token;
            for (int k = 0; k < other_io.n_inject && n < 80; k++) inj[n++] = other_io.inject[k];
            /* the fork copies all of this sequence's state (a caller may wrap ours); then its
             * sweep part, at the same offset, becomes the smaller budget's controller */
            int child = s1c_engine_fork(e, id, inj, n, NULL, NULL);
            char *base = s1c_engine_state(e, id), *cbase = child >= 0 ? s1c_engine_state(e, child) : NULL;
            if (!cbase) { sw->pending[keep++] = sw->pending[i]; continue; } /* fork failed: it stays on */
            s1c_bf_sweep_state *cs = (s1c_bf_sweep_state *)(cbase + ((char *)sw - base));
            cs->bf = other;
            cs->n_pending = 0;
        }
        sw->n_pending = keep;
    }
    bf_step(bf, e, id, &sw->bf, io);
}

int s1c_bf_stop_reason(const s1c_bf_state *st, int engine_reason) {
    if (st->stop_reason >= 0) return st->stop_reason;
    return engine_reason;
}

/* ------------------------------------------------------------------ other controls */

int s1c_control_from_name(const char *name) {
    static const char *names[] = {"none", "tokens", "steps", "short", "long"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

char *s1c_control_question(const char *q, int control, int n) {
    char suffix[400] = "";
    switch (control) {
    case S1C_CONTROL_TOKENS: snprintf(suffix, sizeof suffix, "\n\nThink for up to %d tokens.", n); break;
    case S1C_CONTROL_STEPS: snprintf(suffix, sizeof suffix, "\n\nThink for up to %d steps.", n); break;
    case S1C_CONTROL_SHORT: snprintf(suffix, sizeof suffix, "\n\nAnswer after a short amount of thinking. Do not spend excessive time double-checking your work."); break;
    case S1C_CONTROL_LONG: snprintf(suffix, sizeof suffix, "\n\nAnswer after a long amount of thinking. If you feel like you are finished early, spend the extra time trying to double-check your work until you are absolutely sure that you have the correct answer."); break;
    default: break;
    }
    size_t a = strlen(q), b = strlen(suffix);
    char *r = malloc(a + b + 1);
    if (!r) return NULL;
    memcpy(r, q, a);
    memcpy(r + a, suffix, b + 1);
    return r;
}
