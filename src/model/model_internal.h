/* The model's internal layout: shared by loading, the forward pass and (later) training. */
#ifndef S1C_MODEL_INTERNAL_H
#define S1C_MODEL_INTERNAL_H

#include <pthread.h>

#include "kernels/kernels.h"
#include "s1c/model.h"

/* One layer's weights: matrices are views into the mapped file (any float dtype); the small
 * vectors are f32 copies in the model's `small` buffer. Biases are NULL when absent. */
typedef struct layer_weights {
    const s1c_tensor *wq, *wk, *wv, *wo;  /* [q_dim,dim] [kv_dim,dim] [kv_dim,dim] [dim,q_dim] */
    const s1c_tensor *w_gate, *w_up, *w_down; /* [hidden,dim] [hidden,dim] [dim,hidden] */
    float *attn_norm, *ffn_norm;          /* [dim] */
    float *bq, *bk, *bv;                  /* [q_dim] [kv_dim] [kv_dim] */
    /* the matrices above repacked for the multi-row kernels (model_pack), in the order wq, wk,
     * wv, wo, w_gate, w_up, w_down; NULL where the kernels have no packed form */
    kern_packed *pk[7];
} layer_weights;

struct s1c_model {
    s1c_config cfg;
    int format;
    char *path;
    gguf_file gguf;
    st_set st;
    l2c_file l2c;
    const s1c_tensor *tok_embd; /* [vocab, dim] */
    const s1c_tensor *output;   /* [vocab, dim]; == tok_embd when tied */
    float *output_norm;         /* [dim] */
    layer_weights *layers;
    float *small;               /* one buffer for every f32 vector */
    /* Matrices of quantized types the kernels do not read in place (Q2_K, Q3_K), dequantized
     * to f32 at load: the views above point at these. The other quantized matrices
     * (kern_is_qmatmul_dtype) are views into the file like the float ones. */
    s1c_tensor *deq;
    int n_deq;
    /* Packed copies of the matrices (model_pack, made once by the first s1c_fwd_new): a cache
     * beside the views, so loading for conversion or training never pays for it. */
    kern_packed *output_pk;
    pthread_mutex_t pack_lock;
    bool packed;
    bool bf16_dot; /* s1c_model_set_bf16_dot */
};

/* Packs every matrix for the multi-row kernels once (thread-safe; later calls return at once).
 * Matrices whose type the selected kernel family cannot pack keep only the row-major view;
 * $S1C_PACK=0 turns packing off (the per-row kernels, for comparison); with m->bf16_dot, BF16
 * matrices are packed for bf16 dot products on bf16-rounded activations (KERN_PACK_BF16_DOT:
 * faster, llama.cpp's rounding) instead of the exact widening. */
int model_pack(const s1c_model *m, s1c_err *err);

/* GGUF-style tensor names (what llama.cpp calls them) and the Hugging Face names. */
typedef enum tensor_role {
    T_TOK_EMBD, T_OUTPUT_NORM, T_OUTPUT,
    T_ATTN_NORM, T_Q, T_K, T_V, T_Q_BIAS, T_K_BIAS, T_V_BIAS, T_O, T_FFN_NORM, T_GATE, T_UP, T_DOWN,
    T_ROLE_COUNT
} tensor_role;
void tensor_name_gguf(char *buf, size_t n, int role, int layer);
void tensor_name_hf(char *buf, size_t n, int role, int layer);
/* The model's tensors in Hugging Face's file order: how many, the i-th one's role and layer
 * (-1 for embedding, final norm and head), and a role's shape (outermost first; ndim 1 or 2). */
int hf_tensor_count(const s1c_config *c);
void hf_tensor_at(const s1c_config *c, int i, int *role, int *layer);
void tensor_shape(const s1c_config *c, int role, int64_t *shape, int *ndim);
/* The "<arch>.*" hyperparameters of c (general.architecture is the caller's), as llama.cpp's
 * converter writes them (convert.c; the bench's random K-quant files use it too). */
void gguf_w_hparams(gguf_writer *w, const s1c_config *c);
/* The type `s1c convert --type dtype` gives the matrix (role, layer) with rows of cols values of
 * a model of config c: for a mixture (S1C_MIX(S1C_FTYPE_*)) llama-quantize's per-tensor choice
 * and fallbacks, else dtype (F16 where rows are not whole blocks of it) (convert.c; the bench's
 * random mixtures use it). */
int model_matrix_type(const s1c_config *c, int dtype, int role, int layer, int64_t cols);
/* s1c_model_init_hf, or with quick its matrices from a cheap approximate normal (init.c's
 * quick_normal: the bench's random models, whose values only need a normal's scale). */
int model_init_hf(const s1c_config *c, uint64_t seed, int dtype, const char *dir, bool quick, s1c_err *err);

#endif
