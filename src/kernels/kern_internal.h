/* The kernel families' function tables (dispatch.c picks one). */
#ifndef S1C_KERN_INTERNAL_H
#define S1C_KERN_INTERNAL_H

#include "kernels.h"

typedef struct kern_ops {
    const char *name;
    /* kern_matmul restricted to output rows [i0, i1) */
    void (*matmul_rows)(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1);
    void (*rmsnorm)(float *o, const float *x, const float *w, int n, float eps);
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);
} kern_ops;

extern const kern_ops kern_ops_ref, kern_ops_avx2, kern_ops_avx512;
/* F16C (half-precision conversions), read from CPUID: clang's __builtin_cpu_supports has no
 * name for it. */
bool kern_cpu_has_f16c(void);
/* Whether this CPU (and compiler) can run the family. */
bool kern_avx512_supported(void);
bool kern_avx2_supported(void);

#endif
