/* Kernel dispatch: picks the family once (from $S1C_KERNELS or the CPU), and splits a
 * matmul's output rows over the thread pool. Splitting rows never splits a reduction, so the
 * thread count cannot change a result. */
#include <cpuid.h>

#include "kern_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const kern_ops *_Atomic active;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const kern_ops *lookup(const char *name) {
    bool a512 = kern_avx512_supported(), a2 = kern_avx2_supported();
    if (!name || !*name || strcmp(name, "auto") == 0) return a512 ? &kern_ops_avx512 : a2 ? &kern_ops_avx2 : &kern_ops_ref;
    if (strcmp(name, "ref") == 0) return &kern_ops_ref;
    if (strcmp(name, "avx512") == 0) return a512 ? &kern_ops_avx512 : NULL;
    if (strcmp(name, "avx2") == 0) return a2 ? &kern_ops_avx2 : NULL;
    return NULL;
}

static void init(void) {
    const char *e = getenv("S1C_KERNELS");
    const kern_ops *o = lookup(e);
    if (!o) {
        fprintf(stderr, "s1c: S1C_KERNELS=%s is unknown or not supported by this CPU; using the best available\n", e);
        o = lookup(NULL);
    }
    atomic_store(&active, o);
}

static inline const kern_ops *ops(void) {
    pthread_once(&once, init);
    return atomic_load_explicit(&active, memory_order_relaxed);
}

int kern_select(const char *name) {
    pthread_once(&once, init);
    const kern_ops *o = lookup(name);
    if (!o) return -1;
    atomic_store(&active, o);
    return 0;
}

const char *kern_name(void) { return ops()->name; }

kern_family_id kern_family(void) {
    const kern_ops *o = ops();
    return o == &kern_ops_avx512 ? KERN_AVX512 : o == &kern_ops_avx2 ? KERN_AVX2 : KERN_REF;
}

void kern_rmsnorm(float *o, const float *x, const float *w, int n, float eps) { ops()->rmsnorm(o, x, w, n, eps); }
float kern_dot(const float *a, const float *b, int n) { return ops()->dot(a, b, n); }
void kern_axpy(float *y, float a, const float *x, int n) { ops()->axpy(y, a, x, n); }
int kern_argmax(const float *x, int n) { return ops()->argmax(x, n); }

void kern_matmul(float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d) {
    if (kern_is_qmatmul_dtype(dtype)) {
        kern_q8x xq;
        kern_q8x_make(&xq, x, n_rows, n);
        ops()->matmul_q_rows(out, &xq, n_rows, w, dtype, n, d, 0, d);
        kern_q8x_free(&xq);
        return;
    }
    ops()->matmul_rows(out, x, n_rows, w, dtype, n, d, 0, d);
}


typedef struct mm_job {
    const kern_ops *ops;
    float *out;
    const float *x;
    const kern_q8x *xq; /* quantized activations (Q8_0/Q4_0 weights), else NULL */
    const void *w;
    int n_rows, dtype, n, d;
} mm_job;

/* Task t of T takes a contiguous run of output rows (a multiple of 4, the kernels' block). */
static void mm_task(void *ctx, int task, int n_tasks) {
    const mm_job *j = ctx;
    int chunk = ((j->d + n_tasks - 1) / n_tasks + 3) & ~3;
    int i0 = task * chunk, i1 = i0 + chunk < j->d ? i0 + chunk : j->d;
    if (i0 >= i1) return;
    if (j->xq) j->ops->matmul_q_rows(j->out, j->xq, j->n_rows, j->w, j->dtype, j->n, j->d, i0, i1);
    else j->ops->matmul_rows(j->out, j->x, j->n_rows, j->w, j->dtype, j->n, j->d, i0, i1);
}

void kern_matmul_mt(s1c_pool *pool, float *out, const float *x, int n_rows, const void *w, int dtype, int n, int d) {
    int T = s1c_pool_threads(pool);
    /* below ~64K multiply-adds waking a thread costs more than it saves */
    if (T <= 1 || (double)n_rows * n * d < 65536.0 || d < 8) {
        kern_matmul(out, x, n_rows, w, dtype, n, d);
        return;
    }
    /* quantized weights: the activations are quantized once, before the split */
    bool q = kern_is_qmatmul_dtype(dtype);
    kern_q8x xq = {0};
    if (q) kern_q8x_make(&xq, x, n_rows, n);
    mm_job j = {ops(), out, x, q ? &xq : NULL, w, n_rows, dtype, n, d};
    s1c_pool_run(pool, T, mm_task, &j);
    if (q) kern_q8x_free(&xq);
}

/* CPUID traps to the hypervisor in a VM (about 7 us here) and the feature tests run per
 * matmul and per training GEMM block, so the answer is read once. */
static bool f16c;
static pthread_once_t f16c_once = PTHREAD_ONCE_INIT;

static void read_f16c(void) {
    unsigned a, b, c, d;
    f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

bool kern_cpu_has_f16c(void) {
    pthread_once(&f16c_once, read_f16c);
    return f16c;
}

/* AVX-VNNI (the VEX vpdpbusd on ymm: Alder Lake and later Intel cores, Zen 5): CPUID leaf 7
 * sub-leaf 1, EAX bit 4; read once for the same reason. S1C_AVXVNNI=0 masks it (to time the
 * AVX2-only kernels on such a CPU; the results are the same bits either way). */
static bool avxvnni;
static pthread_once_t avxvnni_once = PTHREAD_ONCE_INIT;

static void read_avxvnni(void) {
    unsigned a, b, c, d;
    const char *e = getenv("S1C_AVXVNNI");
    avxvnni = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4)) && !(e && strcmp(e, "0") == 0);
}

bool kern_cpu_has_avxvnni(void) {
    pthread_once(&avxvnni_once, read_avxvnni);
    return avxvnni && kern_avx2_supported();
}

typedef struct gemm_job {
    const kern_ops *ops;
    const gemm_args *g;
    bool split_m; /* split C's rows (else its columns) */
    int unit;     /* the split's granularity: the family's tile size along that dimension */
} gemm_job;

/* Task t of T takes a contiguous run of C's rows (or columns), a multiple of the tile size. */
static void gemm_task(void *ctx, int task, int n_tasks) {
    const gemm_job *j = ctx;
    int len = j->split_m ? j->g->M : j->g->N;
    int tiles = (len + j->unit - 1) / j->unit, per = (tiles + n_tasks - 1) / n_tasks;
    int a = task * per * j->unit, b = a + per * j->unit < len ? a + per * j->unit : len;
    if (a >= b) return;
    if (j->split_m) j->ops->sgemm_block(j->g, a, b, 0, j->g->N);
    else j->ops->sgemm_block(j->g, 0, j->g->M, a, b);
}

static void sgemm(s1c_pool *pool, bool bf16, bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K < 0) K = 0;
    if (beta != 0.0f && beta != 1.0f) {
        /* scale first, then accumulate: the families only know "start from 0" and "from C" */
        for (int m = 0; m < M; m++)
            for (int n = 0; n < N; n++) C[(size_t)m * ldc + n] *= beta;
        beta = 1.0f;
    }
    const kern_ops *o = ops();
    gemm_args g = {trans_a, trans_b, bf16, M, N, K, A, B, lda, ldb, ldc, beta, C};
    int T = s1c_pool_threads(pool);
    /* below ~1M multiply-adds waking a thread costs more than it saves */
    if (T <= 1 || (double)M * N * K < 1048576.0) {
        o->sgemm_block(&g, 0, M, 0, N);
        return;
    }
    int tm = (M + o->gemm_mr - 1) / o->gemm_mr, tn = (N + o->gemm_nr - 1) / o->gemm_nr;
    gemm_job j = {o, &g, tm >= tn, tm >= tn ? o->gemm_mr : o->gemm_nr};
    s1c_pool_run(pool, T, gemm_task, &j);
}

void kern_sgemm(s1c_pool *pool, bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda, const float *B,
                int ldb, float beta, float *C, int ldc) {
    sgemm(pool, false, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

void kern_sgemm_bf16(s1c_pool *pool, bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    sgemm(pool, true, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc);
}
