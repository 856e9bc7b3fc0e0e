/* s1c formats layer: tensor element types, GGUF v3 (read/write), safetensors (read/write,
 * sharded index), llama2.c checkpoints, JSON config files.
 *
 * Shapes are always given outermost first (row-major, as PyTorch and safetensors write
 * them): a linear weight is [out, in]. GGUF stores dimensions innermost first; its reader
 * and writer reverse them so nothing above this layer ever sees GGUF order. */
#ifndef S1C_FORMATS_H
#define S1C_FORMATS_H

#include "s1c/base.h"

/* Element types. The values are GGML's type ids, so GGUF files map 1:1. Quantized types are
 * stored in blocks: block_size elements take type_size bytes. */
typedef enum s1c_dtype {
    S1C_F32 = 0,
    S1C_F16 = 1,
    S1C_Q4_0 = 2,
    S1C_Q4_1 = 3,
    S1C_Q5_0 = 6,
    S1C_Q5_1 = 7,
    S1C_Q8_0 = 8,
    S1C_Q8_1 = 9,
    S1C_Q2_K = 10,
    S1C_Q3_K = 11,
    S1C_Q4_K = 12,
    S1C_Q5_K = 13,
    S1C_Q6_K = 14,
    S1C_Q8_K = 15,
    S1C_I8 = 24,
    S1C_I16 = 25,
    S1C_I32 = 26,
    S1C_I64 = 27,
    S1C_F64 = 28,
    S1C_BF16 = 30,
    S1C_DTYPE_COUNT = 40
} s1c_dtype;

/* Name as GGUF tools print it ("f32", "bf16", "q8_0"), or NULL for an unknown id. */
const char *s1c_dtype_name(int dtype);
/* Elements per block and bytes per block; 0 for unknown ids. */
int s1c_dtype_block_size(int dtype);
int s1c_dtype_type_size(int dtype);
/* Bytes that n elements take; fails if n is not a whole number of blocks or overflows. */
int s1c_dtype_nbytes(int dtype, uint64_t n, uint64_t *out);
/* True for the types the scalar kernels read today (F32, F16, BF16). */
bool s1c_dtype_is_float(int dtype);

#define S1C_MAX_DIMS 4

/* A view of one tensor: the bytes belong to whoever made the view (usually a mapped file). */
typedef struct s1c_tensor {
    const char *name;
    int dtype;
    int ndim;
    int64_t shape[S1C_MAX_DIMS]; /* outermost first */
    const void *data;
    uint64_t nbytes;
} s1c_tensor;

uint64_t s1c_tensor_nelem(const s1c_tensor *t);
/* "[896,4864]" into buf. */
const char *s1c_shape_str(const int64_t *shape, int ndim, char *buf, size_t n);
/* Converts n elements of a float-typed buffer to f32 (F32, F16, BF16). */
int s1c_to_f32(float *dst, const void *src, int dtype, uint64_t n, s1c_err *err);

/* ---------------------------------------------------------------- GGUF v3 */

typedef enum gguf_type {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12, GGUF_TYPE_COUNT = 13
} gguf_type;

/* A string inside the mapped file: not NUL-terminated. */
typedef struct s1c_str {
    const char *p;
    uint64_t len;
} s1c_str;

typedef struct gguf_kv {
    char *key;          /* owned, NUL-terminated */
    int type;           /* gguf_type */
    union {
        uint64_t u;     /* U8..U64, BOOL */
        int64_t i;      /* I8..I64 */
        double f;       /* F32, F64 */
        s1c_str s;      /* STRING */
    } v;
    /* ARRAY: element type, count, and the elements. Numeric arrays point into the file
     * (little-endian, packed: read with gguf_arr_*); string arrays are decoded into strs. */
    int arr_type;
    uint64_t arr_n;
    const void *arr_data;
    s1c_str *arr_strs; /* owned, for arrays of strings */
} gguf_kv;

typedef struct gguf_file {
    s1c_mfile file;
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    s1c_tensor *tensors; /* names owned (NUL-terminated copies) */
} gguf_file;

int gguf_open(gguf_file *g, const char *path, s1c_err *err);
/* Parses an in-memory buffer (used by the fuzzer) into a zeroed g; `name` is what error
 * messages call it (g->file stays empty). The buffer must outlive g. */
int gguf_parse(gguf_file *g, const uint8_t *data, size_t size, const char *name, s1c_err *err);
void gguf_close(gguf_file *g);

const gguf_kv *gguf_find(const gguf_file *g, const char *key);
const s1c_tensor *gguf_find_tensor(const gguf_file *g, const char *name);
/* Typed getters: 1 found, 0 missing, -1 present with an unusable type (err filled). Any
 * integer type converts to the integer getters when the value fits. */
int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out, s1c_err *err);
int gguf_get_f64(const gguf_file *g, const char *key, double *out, s1c_err *err);
int gguf_get_str(const gguf_file *g, const char *key, s1c_str *out, s1c_err *err);
int gguf_get_bool(const gguf_file *g, const char *key, bool *out, s1c_err *err);
/* Element i of a numeric array as double / int64. */
double gguf_arr_f64(const gguf_kv *kv, uint64_t i);
int64_t gguf_arr_i64(const gguf_kv *kv, uint64_t i);
const char *gguf_type_name(int type);

/* Writer: collects metadata and tensors (data borrowed until gguf_writer_write), then
 * writes the file atomically. Keys and names are copied. */
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_new(void);
void gguf_writer_free(gguf_writer *w);
void gguf_w_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_w_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_w_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_w_f32(gguf_writer *w, const char *key, float v);
void gguf_w_bool(gguf_writer *w, const char *key, bool v);
void gguf_w_str(gguf_writer *w, const char *key, const char *v);
void gguf_w_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
void gguf_w_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n);
void gguf_w_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n);
/* shape outermost first, as everywhere above this layer. */
void gguf_w_tensor(gguf_writer *w, const char *name, int dtype, int ndim, const int64_t *shape,
                   const void *data);
int gguf_writer_write(gguf_writer *w, const char *path, s1c_err *err);

/* ---------------------------------------------------------------- safetensors */

/* One or more safetensors files seen as one set of tensors (a sharded checkpoint is opened
 * through its model.safetensors.index.json). */
typedef struct st_set {
    int n_files;
    s1c_mfile *files;
    uint64_t n_tensors;
    s1c_tensor *tensors; /* names owned */
    char *metadata_json; /* the "__metadata__" object of the first file, or NULL */
} st_set;

/* path: a .safetensors file, a model.safetensors.index.json, or a directory holding either. */
int st_open(st_set *s, const char *path, s1c_err *err);
/* One file from memory (fuzzer); the buffer must outlive s. */
int st_parse(st_set *s, const uint8_t *data, size_t size, const char *name, s1c_err *err);
void st_close(st_set *s);
const s1c_tensor *st_find(const st_set *s, const char *name);

/* Writes tensors (F32/F16/BF16 and the integer types) to one safetensors file, atomically. */
int st_write(const char *path, const s1c_tensor *tensors, int n, s1c_err *err);
/* Streaming form for data that does not fit in memory at once: writes the header for the
 * tensors' names, dtypes and shapes (data ignored); the caller then writes each tensor's
 * bytes in the same order with s1c_wfile_write and finishes with s1c_wfile_commit. */
int st_write_begin(s1c_wfile *f, const char *path, const s1c_tensor *tensors, int n, s1c_err *err);

/* ---------------------------------------------------------------- llama2.c */

typedef struct l2c_header {
    int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    bool shared_classifier; /* vocab_size > 0 in the file */
} l2c_header;

/* The tensors of a llama2.c checkpoint, as views into the mapped file, named like GGUF
 * llama tensors ("token_embd.weight", "blk.0.attn_q.weight", ...). */
typedef struct l2c_file {
    s1c_mfile file;
    l2c_header hdr;
    int n_tensors;
    s1c_tensor *tensors; /* names owned */
} l2c_file;

int l2c_open(l2c_file *f, const char *path, s1c_err *err);
void l2c_close(l2c_file *f);
const s1c_tensor *l2c_find(const l2c_file *f, const char *name);


/* ---------------------------------------------------------------- quantized blocks */

/* True for the GGML block types s1c_dequantize reads: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K,
 * Q3_K, Q4_K, Q5_K, Q6_K (ggml's block layouts). */
bool s1c_dtype_is_quant(int dtype);
/* True for the float types and the quantized types above. */
bool s1c_dtype_can_dequantize(int dtype);
/* Sub-block j's (0..7) 6-bit scale and min from a Q4_K/Q5_K super-block's 12 scale bytes (the
 * dequantizers and the K-quant kernels read them the same way). */
void s1c_q4k_scale_min(int j, const uint8_t *q, int *sc, int *m);
/* Converts n elements (a whole number of blocks) of any of those types to f32, exactly as
 * ggml's reference dequantizers do. */
int s1c_dequantize(float *dst, const void *src, int dtype, uint64_t n, s1c_err *err);
/* Encodes n f32 elements as F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 (n a multiple of
 * 32), Q4_K, Q5_K or Q6_K (n a multiple of 256). The block types round exactly as ggml's
 * quantize_row_*_ref (llama-quantize without an importance matrix), so the bytes equal
 * llama.cpp's; they refuse NaN and infinities (a block would silently turn to garbage), as
 * llama-quantize refuses such tensors. Blocks are independent: any whole-block slice may be
 * quantized on its own (e.g. by several threads). dst holds s1c_dtype_nbytes(dtype, n) bytes. */
int s1c_quantize(void *dst, const float *src, int dtype, uint64_t n, s1c_err *err);
/* True for the types s1c_quantize writes. */
bool s1c_dtype_can_quantize(int dtype);
/* Index of the first NaN or infinity among x[0..n), or n if there is none. */
uint64_t s1c_first_nonfinite(const float *x, uint64_t n);

/* llama.cpp's file types (llama_ftype, GGUF general.file_type) of the quantization mixtures
 * llama-quantize makes: most matrices in one K-quant, some (output, attn_v and ffn_down of
 * chosen layers) in more bits, and rows that do not fit a 256-element block in a 32-element
 * type. s1c_model_convert takes S1C_MIX(ftype) in place of a dtype to write one. */
enum {
    S1C_FTYPE_Q4_K_S = 14,
    S1C_FTYPE_Q4_K_M = 15,
    S1C_FTYPE_Q5_K_S = 16,
    S1C_FTYPE_Q5_K_M = 17,
    S1C_FTYPE_Q6_K = 18,
    S1C_MIX_BASE = 0x100 /* above every dtype id */
};
#define S1C_MIX(ftype) (S1C_MIX_BASE + (ftype))

#endif
