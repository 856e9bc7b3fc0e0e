/* AdamW and s1's learning-rate schedule (SPEC.md §4), written to match what s1 ran:
 * torch.optim.AdamW (single-tensor path) after torch.nn.utils.clip_grad_norm_, with the lr
 * from transformers' get_cosine_schedule_with_warmup. */
#include <math.h>
#include <stdlib.h>

#include "s1c/train.h"

void s1c_adamw_defaults(s1c_adamw *o, int total_steps) {
    o->lr_peak = 1e-5;
    o->beta1 = 0.9;
    o->beta2 = 0.95;
    o->eps = 1e-8;
    o->weight_decay = 1e-4;
    o->clip = 1.0;
    o->total_steps = total_steps;
    /* transformers: warmup_steps = ceil(num_training_steps * warmup_ratio) */
    o->warmup_steps = (int)ceil(0.05 * total_steps);
}

double s1c_lr_at(const s1c_adamw *o, int step) {
    if (step < o->warmup_steps) return o->lr_peak * ((double)step / (o->warmup_steps > 1 ? o->warmup_steps : 1));
    int decay = o->total_steps - o->warmup_steps;
    double progress = decay > 0 ? (double)(step - o->warmup_steps) / decay : 1.0;
    double f = 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress));
    return o->lr_peak * (f > 0 ? f : 0);
}

/* Element-wise passes over the whole buffer run in fixed pieces of PIECE floats spread over
 * the pool: the pieces never depend on the thread count, so neither do the results. */
enum { PIECE = 1 << 16 };

typedef struct norm_job {
    const float *g;
    uint64_t n;
    double *partial;
} norm_job;

static void norm_piece(void *ctx, int k, int n_tasks) {
    norm_job *j = ctx;
    uint64_t a = (uint64_t)k * PIECE, b = a + PIECE < j->n ? a + PIECE : j->n;
    double ss = 0;
    for (uint64_t i = a; i < b; i++) ss += (double)j->g[i] * j->g[i];
    j->partial[k] = ss;
}

double s1c_grad_norm(const float *g, uint64_t n) {
    int pieces = (int)((n + PIECE - 1) / PIECE);
    double *partial = malloc((size_t)(pieces ? pieces : 1) * sizeof *partial), ss = 0;
    if (!partial) { /* no memory for the partial sums: one pass, same maths */
        for (uint64_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
        return sqrt(ss);
    }
    norm_job j = {g, n, partial};
    s1c_pool_run(s1c_pool_global(), pieces, norm_piece, &j);
    for (int k = 0; k < pieces; k++) ss += partial[k];
    free(partial);
    return sqrt(ss);
}

/* One tensor's update in torch's order of operations: the scalars are computed in double
 * (Python floats) and rounded to f32 where torch passes them to an f32 tensor op. */
static void adamw_tensor(float *w, const float *g, float *m, float *v, uint64_t n, double lr, double wd,
                         const s1c_adamw *o, int t) {
    double bc1 = 1.0 - pow(o->beta1, t), bc2 = 1.0 - pow(o->beta2, t);
    float step_size = (float)(lr / bc1), bc2_sqrt = (float)sqrt(bc2), eps = (float)o->eps;
    float decay = (float)(1.0 - lr * wd), b1 = (float)o->beta1, b2 = (float)o->beta2;
    float a1 = (float)(1.0 - o->beta1), a2 = (float)(1.0 - o->beta2);
    for (uint64_t i = 0; i < n; i++) {
        w[i] *= decay;
        m[i] = m[i] * b1 + g[i] * a1;
        v[i] = v[i] * b2 + g[i] * g[i] * a2;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        w[i] += -step_size * (m[i] / denom);
    }
}

typedef struct adam_job {
    const s1c_adamw *o;
    const s1c_params *p;
    float *g, *m, *v;
    double lr, clip_coef;
    int t;
    uint64_t moment_base; /* offset of m[0] and v[0] in the parameter buffer */
    int *piece_tensor; /* the tensor of each piece */
    uint64_t *piece_start;
} adam_job;

static void adam_piece(void *ctx, int k, int n_tasks) {
    adam_job *j = ctx;
    const s1c_param_info *t = &j->p->info[j->piece_tensor[k]];
    uint64_t a = t->offset + j->piece_start[k], n = t->n - j->piece_start[k] < PIECE ? t->n - j->piece_start[k] : PIECE;
    if (j->clip_coef < 1.0)
        for (uint64_t i = a; i < a + n; i++) j->g[i] = (float)(j->g[i] * j->clip_coef);
    /* m and v hold the moments of this shard only, from its first tensor on */
    uint64_t mo = a - j->moment_base;
    adamw_tensor(j->p->data + a, j->g + a, j->m + mo, j->v + mo, n, j->lr, t->decay ? j->o->weight_decay : 0.0, j->o, j->t);
}

void s1c_adamw_step_shard(const s1c_adamw *o, const s1c_params *p, float *g, float *m, float *v, int step, int t0, int t1,
                          double norm) {
    /* torch: coef = max_norm / (total_norm + 1e-6), applied when below 1 */
    double coef = o->clip > 0 ? o->clip / (norm + 1e-6) : 1.0;
    int pieces = 0;
    for (int i = t0; i < t1; i++) pieces += (int)((p->info[i].n + PIECE - 1) / PIECE);
    adam_job j = {o, p, g, m, v, s1c_lr_at(o, step), coef, step + 1, t0 < t1 ? p->info[t0].offset : 0,
                  malloc((size_t)(pieces ? pieces : 1) * sizeof(int)), malloc((size_t)(pieces ? pieces : 1) * sizeof(uint64_t))};
    /* without memory for the task list the pieces run on this thread, in the same order */
    s1c_pool *pool = j.piece_tensor && j.piece_start ? s1c_pool_global() : NULL;
    int k = 0;
    for (int i = t0; i < t1; i++)
        for (uint64_t s = 0; s < p->info[i].n; s += PIECE) {
            if (pool) {
                j.piece_tensor[k] = i, j.piece_start[k++] = s;
                continue;
            }
            int one_t = i;
            uint64_t one_s = s;
            adam_job single = j;
            single.piece_tensor = &one_t, single.piece_start = &one_s;
            adam_piece(&single, 0, 1);
        }
    if (pool) s1c_pool_run(pool, pieces, adam_piece, &j);
    free(j.piece_tensor);
    free(j.piece_start);
}

double s1c_adamw_step(const s1c_adamw *o, const s1c_params *p, float *g, float *m, float *v, int step) {
    double norm = s1c_grad_norm(g, p->n);
    s1c_adamw_step_shard(o, p, g, m, v, step, 0, p->n_tensors, norm);
    return norm;
}
