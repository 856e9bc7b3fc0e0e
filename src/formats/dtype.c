#include "s1c/formats.h"

#include <stdio.h>
#include <string.h>

/* GGML's block layouts (ggml-common.h): elements per block and bytes per block. */
static const struct { const char *name; int block, size; } dtypes[S1C_DTYPE_COUNT] = {
    [S1C_F32] = {"f32", 1, 4},       [S1C_F16] = {"f16", 1, 2},
    [S1C_Q4_0] = {"q4_0", 32, 18},   [S1C_Q4_1] = {"q4_1", 32, 20},
    [S1C_Q5_0] = {"q5_0", 32, 22},   [S1C_Q5_1] = {"q5_1", 32, 24},
    [S1C_Q8_0] = {"q8_0", 32, 34},   [S1C_Q8_1] = {"q8_1", 32, 36},
    [S1C_Q2_K] = {"q2_k", 256, 84},  [S1C_Q3_K] = {"q3_k", 256, 110},
    [S1C_Q4_K] = {"q4_k", 256, 144}, [S1C_Q5_K] = {"q5_k", 256, 176},
    [S1C_Q6_K] = {"q6_k", 256, 210}, [S1C_Q8_K] = {"q8_k", 256, 292},
    [S1C_I8] = {"i8", 1, 1},         [S1C_I16] = {"i16", 1, 2},
    [S1C_I32] = {"i32", 1, 4},       [S1C_I64] = {"i64", 1, 8},
    [S1C_F64] = {"f64", 1, 8},       [S1C_BF16] = {"bf16", 1, 2},
};

const char *s1c_dtype_name(int dtype) {
    if (dtype < 0 || dtype >= S1C_DTYPE_COUNT) return NULL;
    return dtypes[dtype].name;
}

int s1c_dtype_block_size(int dtype) {
    return s1c_dtype_name(dtype) ? dtypes[dtype].block : 0;
}

int s1c_dtype_type_size(int dtype) {
    return s1c_dtype_name(dtype) ? dtypes[dtype].size : 0;
}

int s1c_dtype_nbytes(int dtype, uint64_t n, uint64_t *out) {
    int bs = s1c_dtype_block_size(dtype);
    if (bs == 0) return -1;
    if (n % (uint64_t)bs != 0) return -1;
    return s1c_mul_overflow(n / (uint64_t)bs, (uint64_t)dtypes[dtype].size, out) ? -1 : 0;
}

bool s1c_dtype_is_float(int dtype) {
    return dtype == S1C_F32 || dtype == S1C_F16 || dtype == S1C_BF16;
}

uint64_t s1c_tensor_nelem(const s1c_tensor *t) {
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (uint64_t)t->shape[i];
    return n;
}

const char *s1c_shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

int s1c_to_f32(float *dst, const void *src, int dtype, uint64_t n, s1c_err *err) {
    switch (dtype) {
    case S1C_F32:
        memcpy(dst, src, n * sizeof(float));
        return 0;
    case S1C_F16: {
        const uint16_t *s = src;
        for (uint64_t i = 0; i < n; i++) dst[i] = s1c_f16_to_f32(s[i]);
        return 0;
    }
    case S1C_BF16: {
        const uint16_t *s = src;
        for (uint64_t i = 0; i < n; i++) dst[i] = s1c_bf16_to_f32(s[i]);
        return 0;
    }
    default: {
        const char *name = s1c_dtype_name(dtype);
        return s1c_fail(err, "cannot convert %s to f32", name ? name : "unknown type");
    }
    }
}
