#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include "kernels/kernels.h"
#include "kernels/kern_internal.h"
#include "s1c/base.h"
extern int attn_knob;
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }
typedef struct { kern_attn_args a; int iters; } tj;
static void *thr(void *p) { tj *j = p; for (int i = 0; i < j->iters; i++) kern_attention(&j->a); return NULL; }
int main(int argc, char **argv) {
    int nthr = getenv("THR") ? atoi(getenv("THR")) : 1;
    int n = atoi(argv[1]), reps = atoi(argv[2]), nk = argc - 3, nh = 7, hd = 64, bs = 16, nb = (n + bs - 1) / bs;
    uint16_t *k = aligned_alloc(64, (size_t)nb * bs * hd * 2), *v = aligned_alloc(64, (size_t)nb * bs * hd * 2);
    for (size_t i = 0; i < (size_t)nb * bs * hd; i++) k[i] = s1c_f32_to_bf16((float)rand() / RAND_MAX - 0.5f), v[i] = s1c_f32_to_bf16((float)rand() / RAND_MAX - 0.5f);
    int32_t *blocks = malloc(nb * 4);
    for (int i = 0; i < nb; i++) blocks[i] = i;
    float q[7 * 64], out[7 * 64], *scratch = aligned_alloc(64, KERN_ATTN_SCRATCH * 4 + 64);
    memset(scratch, 0, KERN_ATTN_SCRATCH * 4);
    for (int i = 0; i < nh * hd; i++) q[i] = (float)rand() / RAND_MAX * 4 - 2;
    kern_attn_args a = {q, out, nh, hd, n, bs, S1C_BF16, k, v, blocks, (size_t)bs * hd, (size_t)hd, 0.125f, scratch, true, n};
    static double t[16][64];
    int iters = 100000 / n + 1;
    for (int r = 0; r < reps; r++)
        for (int m = 0; m < nk; m++) {
            int kn = atoi(argv[3 + m]);
            pk_amx(kn >= 0);
            attn_knob = kn < 0 ? 0 : kn;
            for (int i = 0; i < 3; i++) kern_attention(&a);
            double t0 = now();
            if (nthr == 1) for (int i = 0; i < iters; i++) kern_attention(&a);
            else {
                pthread_t th[2]; tj jj[2];
                for (int x = 0; x < 2; x++) { jj[x].a = a; jj[x].iters = iters; jj[x].a.scratch = aligned_alloc(64, KERN_ATTN_SCRATCH * 4 + 64); jj[x].a.out = aligned_alloc(64, 4096); pthread_create(&th[x], NULL, thr, &jj[x]); }
                for (int x = 0; x < 2; x++) pthread_join(th[x], NULL);
            }
            t[m][r] = (now() - t0) / iters * 1e6;
        }
    for (int m = 0; m < nk; m++) { qsort(t[m], reps, 8, cmpd); printf("knob %s: %.2f us\n", argv[3 + m], t[m][reps / 2]); }
    return 0;
}
