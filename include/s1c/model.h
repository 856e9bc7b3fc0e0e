/* s1c model layer: the Llama/Qwen2 transformer, its weights, a paged KV cache, and a
 * batch-first forward pass.
 *
 * The forward takes a ragged batch: any mix of sequences, some prefilling many tokens and
 * others decoding one, each with its own block table into the shared paged KV cache, and
 * returns logits only for the rows asked for. Everything above (the engine, budget forcing,
 * the server, evaluation sweeps) is built on exactly this call. */
#ifndef S1C_MODEL_H
#define S1C_MODEL_H

#include "s1c/base.h"
#include "s1c/formats.h"

typedef enum s1c_arch { S1C_ARCH_LLAMA = 0, S1C_ARCH_QWEN2 = 1 } s1c_arch;

/* How RoPE pairs the dimensions of a head (SPEC.md §4, "Layouts by file"):
 * ADJACENT rotates (2i, 2i+1) — llama2.c .bin, GGUF llama (Q/K rows permuted on conversion);
 * HALF rotates (i, i + d/2) — HF llama/qwen2 ("rotate_half"), GGUF qwen2 (NEOX). */
typedef enum s1c_rope_layout { S1C_ROPE_ADJACENT = 0, S1C_ROPE_HALF = 1 } s1c_rope_layout;

typedef struct s1c_config {
    int arch;        /* s1c_arch */
    int dim;         /* hidden size */
    int hidden_dim;  /* FFN intermediate size */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int vocab_size;  /* rows of the embedding (may exceed the tokenizer's count) */
    int max_seq_len; /* context length the model was built for */
    float rope_theta;
    float norm_eps;
    int rope_layout; /* s1c_rope_layout */
    bool tied_embeddings;
    bool qkv_bias;
    int bos_id, eos_id; /* -1 when unknown */
} s1c_config;

/* Fills a config from a Hugging Face config.json text (Qwen2ForCausalLM, LlamaForCausalLM). */
int s1c_config_from_hf_json(s1c_config *c, const char *json, const char *path, s1c_err *err);
/* Writes a config as Hugging Face config.json text (malloc'd). */
char *s1c_config_to_hf_json(const s1c_config *c, const char *torch_dtype);
/* Checks that sizes are positive, consistent and bounded; names `path` in the message. */
int s1c_config_validate(const s1c_config *c, const char *path, s1c_err *err);
/* Named presets for `s1c init`: "tiny", "qwen2.5-0.5b", "qwen2.5-1.5b", ..., "llama-tiny". */
int s1c_config_preset(s1c_config *c, const char *arch, const char *preset, s1c_err *err);
uint64_t s1c_config_n_params(const s1c_config *c);

/* Where a model came from. */
typedef enum s1c_model_format { S1C_FMT_LLAMA2C = 0, S1C_FMT_GGUF = 1, S1C_FMT_HF = 2 } s1c_model_format;

typedef struct s1c_model s1c_model;

/* path: a llama2.c .bin, a .gguf, or a Hugging Face model directory. Weights are mmapped
 * and used in place; only small 1-D tensors (norms, biases) are copied to f32. */
int s1c_model_open(s1c_model **out, const char *path, s1c_err *err);
void s1c_model_free(s1c_model *m);
const s1c_config *s1c_model_config(const s1c_model *m);
int s1c_model_format_of(const s1c_model *m);
const char *s1c_model_path(const s1c_model *m);
/* The file dtype of the model's matrices (that of the token embedding). */
int s1c_model_weight_dtype(const s1c_model *m);
/* The GGUF file behind the model (its tokenizer metadata), or NULL. */
const gguf_file *s1c_model_gguf(const s1c_model *m);
/* The arithmetic of BF16 matrices: dot (bf16 dot products on activations rounded to bf16, f32
 * sums: as llama.cpp, PyTorch's bfloat16 and GPUs compute a BF16 model; twice the FLOP rate of
 * f32, the activations at 8 significant bits) or exact (weights widened to f32 against f32
 * activations: the F32 kernel's result on the widened matrix). The default is
 * s1c_bf16_dot_default(): dot where the CPU has AVX512_BF16, exact elsewhere, $S1C_BF16_MATH=
 * exact|dot overriding. Set before the first forward (the matrices are packed for one or the
 * other: an error after). */
int s1c_model_set_bf16_dot(s1c_model *m, bool dot, s1c_err *err);
bool s1c_model_bf16_dot(const s1c_model *m);
bool s1c_bf16_dot_default(void);

/* ---------------------------------------------------------------- paged KV cache */

/* Fixed-size blocks of `block_size` positions; a sequence owns a list of block ids (its
 * block table). Blocks are refcounted so sequences can share a prefix. */
typedef struct s1c_kv s1c_kv;

int s1c_kv_new(s1c_kv **out, const s1c_config *c, int block_size, int n_blocks, int dtype, s1c_err *err);
void s1c_kv_free(s1c_kv *kv);
int s1c_kv_block_size(const s1c_kv *kv);
int s1c_kv_n_free(const s1c_kv *kv);
/* Takes a free block (refcount 1), or returns -1 when none is left. */
int s1c_kv_alloc(s1c_kv *kv);
void s1c_kv_ref(s1c_kv *kv, int block);
void s1c_kv_unref(s1c_kv *kv, int block);
int s1c_kv_n_blocks(const s1c_kv *kv);
int s1c_kv_refcount(const s1c_kv *kv, int block);
/* Copy-on-write of a partly filled block when a sequence forks: block src into block dst (all
 * layers) when its first n positions matter (n > 0; the whole block is copied). */
void s1c_kv_copy(s1c_kv *kv, int dst, int src, int n);
/* Bytes one block takes (all layers, K and V). */
uint64_t s1c_kv_block_bytes(const s1c_config *c, int block_size, int dtype);
/* The KV cache type "auto" (S1C_KV_AUTO where a kv_dtype is asked for; the CLI's default):
 * for a model of 16-bit or quantized matrices BF16 where it computes in bf16 dot products
 * (s1c_model_bf16_dot: attention then runs in them on the cache as stored, half the bytes per
 * token, as llama.cpp's default 16-bit cache), F16 (llama.cpp's default) with the avx2 kernels
 * (a CPU without AVX-512: attention widens the 16-bit cache in registers), else F32; F32 for F32
 * matrices (their precision was chosen). */
enum { S1C_KV_AUTO = -1 };
int s1c_kv_auto_dtype(const s1c_model *m);

/* ---------------------------------------------------------------- forward */

typedef struct s1c_seq_blocks {
    const int32_t *blocks; /* block ids for positions [0, n_blocks * block_size) */
    int n_blocks;
} s1c_seq_blocks;

/* A ragged batch. Row i is token[i] at position pos[i] of sequence seq[i]. Rows of one
 * sequence must come in increasing position order, and positions before the sequence's
 * first row in this batch must already be in the cache. logits[i] != 0 asks for row i's
 * logits; they are written in row order to the output, vocab_size floats each. */
typedef struct s1c_batch {
    int n_tokens;
    const int32_t *token;
    const int32_t *pos;
    const int32_t *seq;
    const uint8_t *logits;
    int n_seqs;
    const s1c_seq_blocks *seqs;
} s1c_batch;

/* The forward's run state: activation buffers for up to max_tokens rows per call (larger
 * batches are processed in chunks) and attention scores for contexts up to max_ctx. */
typedef struct s1c_fwd s1c_fwd;

int s1c_fwd_new(s1c_fwd **out, const s1c_model *m, int max_tokens, int max_ctx, s1c_err *err);
void s1c_fwd_free(s1c_fwd *f);
int s1c_forward(s1c_fwd *f, s1c_kv *kv, const s1c_batch *b, float *logits_out, s1c_err *err);

/* ---------------------------------------------------------------- writing models */

/* Writes a freshly initialized model (normal(0, 0.02) matrices, unit norms, zero biases,
 * as HF initializes Qwen2/Llama) as a Hugging Face directory: config.json +
 * model.safetensors in `dtype` (F32 or BF16). Deterministic for a given seed. */
int s1c_model_init_hf(const s1c_config *c, uint64_t seed, int dtype, const char *dir, s1c_err *err);


/* ---------------------------------------------------------------- converting models */

/* Converts the model at `in` (anything s1c_model_open reads) to `out`: a GGUF file when out
 * ends in ".gguf" (llama.cpp's `llama`/`qwen2` layout: tensor names, metadata, Q/K rows
 * permuted for `llama`, the HF byte-level BPE tokenizer as `gpt2` metadata), else a Hugging
 * Face directory (config.json, model.safetensors, vocab.json, merges.txt,
 * tokenizer_config.json). dtype: the matrices' type (F32, F16, BF16, or Q8_0/Q4_0 for GGUF;
 * rows whose length is not a multiple of 32 fall back to F16 as in llama.cpp), or for GGUF a
 * llama-quantize mixture S1C_MIX(S1C_FTYPE_Q4_K_M ...) (formats.h), or -1 to keep
 * the source's float type (F32 for a quantized source). */
int s1c_model_convert(const char *in, const char *out, int dtype, s1c_err *err);

#endif
