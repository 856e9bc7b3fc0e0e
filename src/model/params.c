/* Training parameters: every weight as f32 in one contiguous buffer, in Hugging Face's
 * tensor order, so gradients and Adam moments are plain arrays of the same layout and a
 * checkpoint is one streamed write. */
#include <stdlib.h>
#include <string.h>

#include "s1c/train.h"
#include "model_internal.h"
#include "kernels/kernels.h"

int s1c_params_new(s1c_params *p, const s1c_config *c, s1c_err *err) {
    memset(p, 0, sizeof *p);
    if (s1c_config_validate(c, "params", err) != 0) return -1;
    p->cfg = *c;
    p->n_tensors = hf_tensor_count(c);
    p->info = calloc((size_t)p->n_tensors, sizeof *p->info);
    if (!p->info) return s1c_fail(err, "params: out of memory");
    uint64_t off = 0;
    for (int i = 0; i < p->n_tensors; i++) {
        s1c_param_info *t = &p->info[i];
        hf_tensor_at(c, i, &t->role, &t->layer);
        tensor_name_hf(t->name, sizeof t->name, t->role, t->layer < 0 ? 0 : t->layer);
        tensor_shape(c, t->role, t->shape, &t->ndim);
        t->n = (uint64_t)t->shape[0] * (uint64_t)(t->ndim == 2 ? t->shape[1] : 1);
        t->offset = off;
        t->decay = !(t->role == T_Q_BIAS || t->role == T_K_BIAS || t->role == T_V_BIAS);
        /* every tensor starts on a 64-byte boundary, so kernels see aligned rows */
        off += (t->n + 15) & ~(uint64_t)15;
    }
    p->n = off;
    p->data = aligned_alloc(64, ((off * sizeof(float)) + 63) & ~(size_t)63);
    if (!p->data) {
        s1c_params_free(p);
        return s1c_fail(err, "params: cannot allocate %.1f MiB for %llu parameters", (double)off * 4 / 1048576.0,
                        (unsigned long long)off);
    }
    memset(p->data, 0, off * sizeof(float));
    return 0;
}

void s1c_params_free(s1c_params *p) {
    free(p->info);
    free(p->data);
    memset(p, 0, sizeof *p);
}

const s1c_param_info *s1c_params_find(const s1c_params *p, const char *name) {
    for (int i = 0; i < p->n_tensors; i++)
        if (strcmp(p->info[i].name, name) == 0) return &p->info[i];
    return NULL;
}

/* The model's copy of one tensor: matrices are views in file dtype, vectors f32 copies. */
static void copy_tensor(float *dst, const s1c_model *m, const s1c_param_info *t) {
    const layer_weights *L = t->layer >= 0 ? &m->layers[t->layer] : NULL;
    const s1c_tensor *mat = NULL;
    const float *vec = NULL;
    switch (t->role) {
    case T_TOK_EMBD: mat = m->tok_embd; break;
    case T_OUTPUT: mat = m->output; break;
    case T_OUTPUT_NORM: vec = m->output_norm; break;
    case T_ATTN_NORM: vec = L->attn_norm; break;
    case T_FFN_NORM: vec = L->ffn_norm; break;
    case T_Q_BIAS: vec = L->bq; break;
    case T_K_BIAS: vec = L->bk; break;
    case T_V_BIAS: vec = L->bv; break;
    case T_Q: mat = L->wq; break;
    case T_K: mat = L->wk; break;
    case T_V: mat = L->wv; break;
    case T_O: mat = L->wo; break;
    case T_GATE: mat = L->w_gate; break;
    case T_UP: mat = L->w_up; break;
    case T_DOWN: mat = L->w_down; break;
    }
    if (vec) {
        memcpy(dst, vec, t->n * sizeof(float));
        return;
    }
    int64_t cols = t->shape[1];
    for (int64_t r = 0; r < t->shape[0]; r++) kern_get_row(dst + r * cols, mat->data, mat->dtype, r, (int)cols);
}

int s1c_params_from_model(s1c_params *p, const s1c_model *m, s1c_err *err) {
    if (s1c_params_new(p, &m->cfg, err) != 0) return -1;
    for (int i = 0; i < p->n_tensors; i++) copy_tensor(p->data + p->info[i].offset, m, &p->info[i]);
    return 0;
}

int s1c_params_write(const s1c_params *p, const float *data, const char *path, int dtype, s1c_err *err) {
    return s1c_params_write_range(p, data, path, dtype, 0, p->n_tensors, err);
}

int s1c_params_write_range(const s1c_params *p, const float *data, const char *path, int dtype, int t0, int t1,
                           s1c_err *err) {
    if (dtype != S1C_F32 && dtype != S1C_BF16) return s1c_fail(err, "%s: checkpoints are f32 or bf16", path);
    if (t0 < 0 || t1 > p->n_tensors || t0 >= t1) return s1c_fail(err, "%s: no tensors to write", path);
    int n = t1 - t0;
    s1c_tensor *ts = calloc((size_t)n, sizeof *ts);
    if (!ts) return s1c_fail(err, "%s: out of memory", path);
    uint64_t max_n = 0;
    for (int i = 0; i < n; i++) {
        const s1c_param_info *t = &p->info[t0 + i];
        ts[i] = (s1c_tensor){.name = t->name, .dtype = dtype, .ndim = t->ndim};
        memcpy(ts[i].shape, t->shape, sizeof t->shape);
        ts[i].nbytes = t->n * (dtype == S1C_F32 ? 4 : 2);
        if (t->n > max_n) max_n = t->n;
    }
    uint16_t *half = dtype == S1C_BF16 ? malloc(max_n * sizeof *half) : NULL;
    s1c_wfile f;
    int rc = -1;
    if (dtype == S1C_BF16 && !half) s1c_fail(err, "%s: out of memory", path);
    else if (st_write_begin(&f, path, ts, n, err) == 0) {
        for (int i = t0; i < t1; i++) {
            const float *src = data + p->info[i].offset;
            if (!half) {
                s1c_wfile_write(&f, src, p->info[i].n * sizeof(float));
                continue;
            }
            for (uint64_t k = 0; k < p->info[i].n; k++) half[k] = s1c_f32_to_bf16(src[k]);
            s1c_wfile_write(&f, half, p->info[i].n * sizeof *half);
        }
        rc = s1c_wfile_commit(&f, err);
    }
    free(half);
    free(ts);
    return rc;
}

int s1c_params_read(const s1c_params *p, float *data, const char *path, s1c_err *err) {
    st_set st;
    if (st_open(&st, path, err) != 0) return -1;
    int rc = 0;
    for (int i = 0; i < p->n_tensors && rc == 0; i++) {
        const s1c_param_info *t = &p->info[i];
        const s1c_tensor *f = st_find(&st, t->name);
        if (!f) {
            rc = s1c_fail(err, "%s: tensor '%s' is missing", path, t->name);
            break;
        }
        bool same = f->ndim == t->ndim && f->shape[0] == t->shape[0] && (t->ndim == 1 || f->shape[1] == t->shape[1]);
        if (!same) {
            rc = s1c_fail(err, "%s: tensor '%s' has another shape than the model's", path, t->name);
            break;
        }
        if (f->dtype != S1C_F32 && f->dtype != S1C_BF16 && f->dtype != S1C_F16) {
            rc = s1c_fail(err, "%s: tensor '%s' is %s, expected f32/bf16/f16", path, t->name, s1c_dtype_name(f->dtype));
            break;
        }
        int64_t cols = t->ndim == 2 ? t->shape[1] : t->shape[0], rows = t->ndim == 2 ? t->shape[0] : 1;
        for (int64_t r = 0; r < rows; r++) kern_get_row(data + t->offset + r * cols, f->data, f->dtype, r, (int)cols);
    }
    if (rc == 0 && st.n_tensors != (uint64_t)p->n_tensors)
        rc = s1c_fail(err, "%s: holds %llu tensors, the model has %d", path, (unsigned long long)st.n_tensors, p->n_tensors);
    st_close(&st);
    return rc;
}
