/* The scalar reference kernels: plain C, index-order reductions, one output at a time. */
#include "kern_internal.h"

#include <math.h>
#include <stdlib.h>
#include "s1c/base.h"
#include "vmath.h"

void kern_ref_rmsnorm(float *o, const float *x, const float *w, int n, float eps) {
    float ss = 0.0f;
    for (int j = 0; j < n; j++) ss += x[j] * x[j];
    ss /= (float)n;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < n; j++) o[j] = w[j] * (ss * x[j]);
}

static float dot_f32(const float *w, const float *x, int n) {
    float s = 0.0f;
    for (int j = 0; j < n; j++) s += w[j] * x[j];
    return s;
}

static float dot_f16(const uint16_t *w, const float *x, int n) {
    float s = 0.0f;
    for (int j = 0; j < n; j++) s += s1c_f16_to_f32(w[j]) * x[j];
    return s;
}

static float dot_bf16(const uint16_t *w, const float *x, int n) {
    float s = 0.0f;
    for (int j = 0; j < n; j++) s += s1c_bf16_to_f32(w[j]) * x[j];
    return s;
}

static void ref_matmul_rows(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    /* weight row outer, batch row inner: each weight row is read from memory once per call */
    for (int i = i0; i < i1; i++) {
        for (int t = 0; t < n_rows; t++) {
            const float *xt = x + (size_t)t * (size_t)n;
            float v;
            switch (dtype) {
            case S1C_F16: v = dot_f16((const uint16_t *)w + (size_t)i * (size_t)n, xt, n); break;
            case S1C_BF16: v = dot_bf16((const uint16_t *)w + (size_t)i * (size_t)n, xt, n); break;
            default: v = dot_f32((const float *)w + (size_t)i * (size_t)n, xt, n); break;
            }
            out[(size_t)t * (size_t)d + (size_t)i] = v;
        }
    }
}

void kern_ref_matmul(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d) {
    if (kern_is_qmatmul_dtype(dtype)) {
        kern_q8x xq;
        kern_q8x_make(&xq, x, n_rows, n);
        kern_ref_matmul_q_rows(out, &xq, n_rows, w, dtype, n, d, 0, d);
        kern_q8x_free(&xq);
        return;
    }
    ref_matmul_rows(out, x, n_rows, w, dtype, n, d, 0, d);
}

float kern_ref_dot(const float *a, const float *b, int n) { return dot_f32(a, b, n); }

void kern_ref_axpy(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}

/* The first index of the largest value: NaNs never win (x[0] NaN: 0, as the fold keeps it). */
int kern_ref_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

const kern_ops kern_ops_ref = {"ref", ref_matmul_rows, kern_ref_rmsnorm, kern_ref_dot, kern_ref_axpy, gemm_ref_block, 1, 1, kern_ref_matmul_q_rows, kern_ref_argmax};

/* A position's angles are the same for every head, layer, q and k: computed once per position
 * (powf, cosf and sinf cost more than the rotations they feed). */
void kern_rope_angles(float *cs, float *sn, int head_dim, int pos, float theta) {
    for (int i = 0; i < head_dim / 2; i++) {
        /* the same float expression llama2.c and HF (fp32 inv_freq) evaluate */
        float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        float val = (float)pos * freq;
        cs[i] = cosf(val);
        sn[i] = sinf(val);
    }
}

void kern_rope_apply(float *vec, int n_heads, int head_dim, const float *cs, const float *sn, bool rotate_half) {
    int half = head_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = vec + (size_t)h * (size_t)head_dim;
        for (int i = 0; i < half; i++) {
            int a = rotate_half ? i : 2 * i, b = rotate_half ? i + half : 2 * i + 1;
            float v0 = v[a], v1 = v[b];
            v[a] = v0 * cs[i] - v1 * sn[i];
            v[b] = v0 * sn[i] + v1 * cs[i];
        }
    }
}

void kern_softmax(float *x, int n) {
    float max = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > max) max = x[i];
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++) x[i] /= sum;
}

void kern_swiglu(float *a, const float *b, int n) {
    if (kern_family() != KERN_REF) { /* vmath's lanes (16 or 8, the same bits): the trainer's SwiGLU */
        vmath_swiglu(a, a, b, n);
        return;
    }
    for (int i = 0; i < n; i++) {
        float v = a[i];
        a[i] = v * (1.0f / (1.0f + expf(-v))) * b[i];
    }
}

void kern_get_row(float *dst, const void *w, int dtype, int64_t row, int n) {
    /* a row of a block type is a whole number of blocks (the loader checks n) */
    uint64_t row_bytes = 0;
    s1c_dtype_nbytes(dtype, (uint64_t)n, &row_bytes);
    s1c_dequantize(dst, (const uint8_t *)w + (size_t)row * (size_t)row_bytes, dtype, (uint64_t)n, NULL);
}
