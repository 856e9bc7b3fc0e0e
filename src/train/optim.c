/* AdamW and s1's learning-rate schedule (SPEC.md §4), written to match what s1 ran:
 * torch.optim.AdamW (single-tensor path) after torch.nn.utils.clip_grad_norm_, with the lr
 * from transformers' get_cosine_schedule_with_warmup. */
#include <math.h>

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

double s1c_grad_norm(const float *g, uint64_t n) {
    double ss = 0;
    for (uint64_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
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

double s1c_adamw_step(const s1c_adamw *o, const s1c_params *p, float *g, float *m, float *v, int step) {
    double norm = s1c_grad_norm(g, p->n);
    if (o->clip > 0) {
        /* torch: coef = max_norm / (total_norm + 1e-6), clamped to 1 */
        double coef = o->clip / (norm + 1e-6);
        if (coef < 1.0)
            for (uint64_t i = 0; i < p->n; i++) g[i] = (float)(g[i] * coef);
    }
    double lr = s1c_lr_at(o, step);
    for (int i = 0; i < p->n_tensors; i++) {
        const s1c_param_info *t = &p->info[i];
        adamw_tensor(p->data + t->offset, g + t->offset, m + t->offset, v + t->offset, t->n, lr,
                     t->decay ? o->weight_decay : 0.0, o, step + 1);
    }
    return norm;
}
