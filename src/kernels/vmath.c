/* vmath's scalar family and the dispatch (vmath.h). The scalar exp is the specification the
 * SIMD files follow operation by operation: every rounding step is an explicit fmaf, a
 * product or a sum, in the same order, so all families give the same bits. */
#include "vmath.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

/* 2^n for n in [-126, 127]. */
static float pow2i(int n) {
    uint32_t u = (uint32_t)(n + 127) << 23;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float vmath_expf(float x) {
    if (isnan(x)) return x + x;
    if (x > VMATH_EXP_MAX) return INFINITY;
    if (x < -VMATH_EXP_MAX) return 0.0f;
    float qf = rintf(x * VMATH_LOG2E);
    int q = (int)qf, q1 = (q - (q < 0)) / 2; /* floor(q / 2), as an arithmetic shift */
    float s = fmaf(qf, -VMATH_LN2_HI, x);
    s = fmaf(qf, -VMATH_LN2_LO, s);
    float u = VMATH_C6;
    u = fmaf(u, s, VMATH_C5);
    u = fmaf(u, s, VMATH_C4);
    u = fmaf(u, s, VMATH_C3);
    u = fmaf(u, s, VMATH_C2);
    u = fmaf(u, s, VMATH_C1);
    u = fmaf(s * s, u, s + 1.0f);
    return u * pow2i(q1) * pow2i(q - q1);
}

static void ref_exp(float *y, const float *x, float shift, int n) {
    for (int i = 0; i < n; i++) y[i] = vmath_expf(x[i] - shift);
}

static float ref_exp_sum(float *y, const float *x, float shift, int n) {
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        y[i] = vmath_expf(x[i] - shift);
        sum += y[i];
    }
    return sum;
}

static double ref_exp_mass(float *y, const float *x, float shift, int n) {
    double lane[16] = {0};
    for (int i = 0; i < n; i++) {
        y[i] = vmath_expf(x[i] - shift);
        lane[i % 16] += y[i];
    }
    return vmath_mass_tree(lane);
}

static int ref_select(int *idx, const float *x, float lo, float hi, int n) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (x[i] >= lo && x[i] < hi) idx[k++] = i;
    return k;
}

static float ref_max(const float *x, float init, int n) {
    for (int i = 0; i < n; i++) init = x[i] > init ? x[i] : init;
    return init;
}

static void ref_swiglu(float *h, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) h[i] = g[i] / (1.0f + vmath_expf(-g[i])) * u[i];
}

static void ref_swiglu_backward(float *g, float *u, const float *dh, int n) {
    for (int i = 0; i < n; i++) {
        float gi = g[i], s = 1.0f / (1.0f + vmath_expf(-gi));
        g[i] = dh[i] * u[i] * s * (1.0f + gi * (1.0f - s));
        u[i] = dh[i] * gi * s;
    }
}

const vmath_ops vmath_ops_ref = {ref_exp, ref_exp_sum, ref_exp_mass, ref_select, ref_max, ref_swiglu, ref_swiglu_backward};

/* The kernel family's lanes. */
static const vmath_ops *ops(void) {
    kern_family_id f = kern_family();
    return f == KERN_REF ? &vmath_ops_ref : f == KERN_AVX2 ? &vmath_ops_avx2 : &vmath_ops_avx512;
}

void vmath_exp(float *y, const float *x, float shift, int n) { ops()->exp(y, x, shift, n); }
float vmath_exp_sum(float *y, const float *x, float shift, int n) { return ops()->exp_sum(y, x, shift, n); }
double vmath_exp_mass(float *y, const float *x, float shift, int n) { return ops()->exp_mass(y, x, shift, n); }
int vmath_select(int *idx, const float *x, float lo, float hi, int n) { return ops()->select(idx, x, lo, hi, n); }
float vmath_max(const float *x, float init, int n) { return ops()->max(x, init, n); }
void vmath_swiglu(float *h, const float *g, const float *u, int n) { ops()->swiglu(h, g, u, n); }
void vmath_swiglu_backward(float *g, float *u, const float *dh, int n) { ops()->swiglu_backward(g, u, dh, n); }
