/* Vector math for the trainer's element-wise passes: exp (the attention softmax, its backward,
 * the cross-entropy) and SwiGLU (SiLU and its derivative).
 *
 * One exp algorithm, three implementations (scalar C, AVX2, AVX-512) that give the same bits:
 * n = rint(x log2 e), r = x - n ln2 (Cody-Waite, two FMAs), exp(r) by SLEEF's degree-7
 * polynomial (Horner, FMAs), times 2^floor(n/2) times 2^(n - floor(n/2)) so results that are
 * subnormal round once. Within 1 ulp of the correctly rounded exp for every float (checked
 * against libm's expf over the whole range in tests/unit/test_vmath.c); x > 104 gives +inf,
 * x < -104 gives +0 (exp(-inf) = 0), NaN stays NaN. The family follows kern_name() (so
 * $S1C_KERNELS=ref runs the scalar code); only the order of the sum in vmath_exp_sum differs
 * between families (lanes, then a fixed tree), and within a family it depends only on n;
 * vmath_exp_mass's double sum is the same in all. */
#ifndef S1C_VMATH_H
#define S1C_VMATH_H

/* exp(x) (scalar; the same bits as the array functions). */
float vmath_expf(float x);
/* y[i] = exp(x[i] - shift) for i < n; y may alias x. */
void vmath_exp(float *y, const float *x, float shift, int n);
/* The same, returning the sum of the y[i] (f32, lanes then a fixed tree). */
float vmath_exp_sum(float *y, const float *x, float shift, int n);
/* The same, returning the mass sum y[i] in double: lane j (i mod 16) adds its values in
 * increasing i, then a fixed tree over the lanes (vmath_mass_tree); the same bits in every
 * family (the sampler's draws must not depend on it). */
double vmath_exp_mass(float *y, const float *x, float shift, int n);
/* The indices i < n with lo <= x[i] < hi, in increasing order, into idx (room for n); returns
 * how many. */
int vmath_select(int *idx, const float *x, float lo, float hi, int n);
/* max(init, x[0], ..., x[n-1]) (NaN-free inputs). */
float vmath_max(const float *x, float init, int n);
/* h[i] = silu(g[i]) u[i], silu(g) = g / (1 + exp(-g)). */
void vmath_swiglu(float *h, const float *g, const float *u, int n);
/* The backward of h = silu(g) u given dh, in place: g becomes d gate = dh u s (1 + g (1 - s)),
 * u becomes d up = dh g s, with s = 1 / (1 + exp(-g)). */
void vmath_swiglu_backward(float *g, float *u, const float *dh, int n);

/* The families behind the functions above (vmath.c picks one per call from kern_name()); the
 * tests call them directly. vmath_avx512_* / vmath_avx2_* exist only where the CPU runs them
 * (kern_avx512_supported / kern_avx2_supported). */
typedef struct vmath_ops {
    void (*exp)(float *y, const float *x, float shift, int n);
    float (*exp_sum)(float *y, const float *x, float shift, int n);
    double (*exp_mass)(float *y, const float *x, float shift, int n);
    int (*select)(int *idx, const float *x, float lo, float hi, int n);
    float (*max)(const float *x, float init, int n);
    void (*swiglu)(float *h, const float *g, const float *u, int n);
    void (*swiglu_backward)(float *g, float *u, const float *dh, int n);
} vmath_ops;
extern const vmath_ops vmath_ops_ref, vmath_ops_avx2, vmath_ops_avx512;

/* vmath_exp_mass's fold of its sixteen lanes (two lanes per double add: the AVX-512 loop keeps
 * two accumulators of eight, so that their adds overlap). */
static inline double vmath_mass_tree(const double *l) {
    double a[8];
    for (int j = 0; j < 8; j++) a[j] = l[j] + l[j + 8];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* The constants every implementation shares. */
#define VMATH_LOG2E 1.44269504088896341f
#define VMATH_LN2_HI 0.693145751953125f
#define VMATH_LN2_LO 1.428606765330187045e-06f
#define VMATH_EXP_MAX 104.0f /* beyond +-104 exp is +inf or +0 in f32 */
#define VMATH_C6 0.000198527617612853646278381f
#define VMATH_C5 0.00139304355252534151077271f
#define VMATH_C4 0.00833336077630519866943359f
#define VMATH_C3 0.0416664853692054748535156f
#define VMATH_C2 0.166666671633720397949219f
#define VMATH_C1 0.5f

#endif
