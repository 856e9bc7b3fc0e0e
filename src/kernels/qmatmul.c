/* Matmul on Q8_0 / Q4_0 weights read in place (ggml's blocks: an f16 scale and 32 signed 8-bit
 * values, or 16 bytes of 4-bit values stored as value + 8, low nibbles first), the reference:
 * activations are quantized per 32-block to 8 bits (kern_q8x_make, as llama.cpp's q8_0 x
 * q8_0 / q4_0 x q8_0 dots do), each block's integer dot is exact, and the blocks' scaled sums
 * are added in increasing order. Every output is one reduction over its own weight row and
 * activation row: batch-invariant. */
#include "kern_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "s1c/base.h"

bool kern_is_qmatmul_dtype(int dtype) { return dtype == S1C_Q8_0 || dtype == S1C_Q4_0; }

void kern_ref_q8x(kern_q8x *xq, const float *x, size_t b0, size_t b1) {
    for (size_t b = b0; b < b1; b++) {
        const float *xb = x + b * 32;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++)
            if (fabsf(xb[i]) > amax) amax = fabsf(xb[i]);
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        int32_t sum = 0;
        for (int i = 0; i < 32; i++) {
            xq->q[b * 32 + (size_t)i] = (int8_t)roundf(xb[i] * id);
            sum += xq->q[b * 32 + (size_t)i];
        }
        xq->d[b] = d;
        xq->s[b] = sum;
    }
}

void kern_q8x_fill(kern_q8x *xq, const float *x, int n_rows) {
    size_t nb = (size_t)n_rows * (size_t)(xq->n / 32);
    if (kern_avx512_supported()) kern_avx512_q8x(xq, x, nb);
    else kern_ref_q8x(xq, x, 0, nb);
}

void kern_q8x_make(kern_q8x *xq, const float *x, int n_rows, int n) {
    size_t nb = (size_t)(n / 32);
    xq->n = n;
    xq->q = malloc((size_t)n_rows * (size_t)n + 64); /* +64: a two-block load at the last odd block stays inside */
    xq->d = malloc((size_t)n_rows * nb * sizeof(float) + sizeof(float));
    xq->s = malloc((size_t)n_rows * nb * sizeof(int32_t) + sizeof(int32_t));
    if (!xq->q || !xq->d || !xq->s) {
        fprintf(stderr, "s1c: out of memory quantizing %d activation rows\n", n_rows);
        abort();
    }
    kern_q8x_fill(xq, x, n_rows);
}

void kern_q8x_free(kern_q8x *xq) {
    free(xq->q);
    free(xq->d);
    free(xq->s);
}

static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return s1c_f16_to_f32(h);
}

/* One weight row (nb blocks) against one quantized activation row (xq values, xd scales). */
static float dot_q8_0(const uint8_t *w, const int8_t *xq, const float *xd, int nb) {
    float s = 0.0f;
    for (int b = 0; b < nb; b++, w += 34, xq += 32) {
        const int8_t *q = (const int8_t *)(w + 2);
        int32_t isum = 0;
        for (int i = 0; i < 32; i++) isum += (int32_t)q[i] * xq[i];
        s += (float)isum * (f16_at(w) * xd[b]);
    }
    return s;
}

static float dot_q4_0(const uint8_t *w, const int8_t *xq, const float *xd, int nb) {
    float s = 0.0f;
    for (int b = 0; b < nb; b++, w += 18, xq += 32) {
        const uint8_t *q = w + 2;
        int32_t isum = 0;
        for (int i = 0; i < 16; i++) isum += ((q[i] & 0x0f) - 8) * xq[i] + ((q[i] >> 4) - 8) * xq[i + 16];
        s += (float)isum * (f16_at(w) * xd[b]);
    }
    return s;
}

void kern_ref_matmul_q_rows(float *out, const kern_q8x *xq, int n_rows, const void *w, int dtype, int n, int d, int i0, int i1) {
    int nb = n / 32;
    size_t row_bytes = (size_t)nb * (dtype == S1C_Q8_0 ? 34 : 18);
    for (int i = i0; i < i1; i++) {
        const uint8_t *wr = (const uint8_t *)w + (size_t)i * row_bytes;
        for (int t = 0; t < n_rows; t++) {
            const int8_t *q = xq->q + (size_t)t * n;
            const float *xd = xq->d + (size_t)t * nb;
            out[(size_t)t * d + i] = dtype == S1C_Q8_0 ? dot_q8_0(wr, q, xd, nb) : dot_q4_0(wr, q, xd, nb);
        }
    }
}
