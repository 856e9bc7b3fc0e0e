/* Running a model over token sequences in tests: prefill, decode, logits of every row. */
#ifndef S1C_MODELRUN_H
#define S1C_MODELRUN_H

#include <stdbool.h>
#include "s1c/base.h"
#include "s1c/model.h"

/* A sequence with its own blocks in a shared cache. */
typedef struct mr_seq {
    int32_t blocks[256];
    int n_blocks;
} mr_seq;

void mr_seq_alloc(mr_seq *s, s1c_kv *kv, int n_positions);
/* Forwards tokens[from..to) of one sequence at positions from..to-1, all rows' logits. */
int mr_forward(s1c_fwd *f, s1c_kv *kv, mr_seq *s, const int32_t *tokens, int from, int to, float *logits);
/* Opens the model at path and returns the logits of every row of tokens[0..n) (malloc'd,
 * [n][vocab], *vocab set), fed as one prefill or, with one_at_a_time, token by token; NULL (after
 * printing why) when the model does not open or a forward fails. */
float *mr_model_logits(const char *path, const int32_t *tokens, int n, bool one_at_a_time, int *vocab);
/* The shape of a tiny qwen2 written by mr_write_qwen2: embedding E, FFN F, L layers, H query
 * and KVH key/value heads of HD, vocabulary V. */
typedef struct mr_shape {
    int E, F, L, H, KVH, HD, V;
} mr_shape;
/* One [d][n] matrix of type dt with random weights: its stored bytes (returned) and the same
 * weights dequantized in *deq (both malloc'd). */
typedef uint8_t *(*mr_matrix_fn)(s1c_rng *r, int dt, int n, int d, float **deq);
/* A qwen2 GGUF with every matrix (token embeddings and head too) of type dt from make, F32
 * norms and q/k/v biases; f32: the same weights dequantized, written as F32. */
void mr_write_qwen2(const char *path, const mr_shape *s, int dt, bool f32, uint64_t seed, mr_matrix_fn make);
/* Against a REAL llama.cpp (tests/ref/test_convert_llamacpp_run.sh greedy): llama.cpp greedy-decodes
 * MR_LLAMACPP_GEN tokens after prompt_ids ("1 2 3") on the GGUF model; s1c runs the same sequence
 * (prompt + llama.cpp's tokens, so a near-tie cannot make the walks diverge) and its logits must
 * be within abs_tol (if > 0, else rel_tol of llama.cpp's logit range) of llama.cpp's, the argmax
 * equal wherever llama.cpp's top-2 margin exceeds twice the tolerance. Prints the figures as
 * "tag: ..."; returns 0, 1 (failed, said why) or 77 (llama.cpp unavailable). */
enum { MR_LLAMACPP_GEN = 8 };
int mr_vs_llamacpp(const char *model, const char *prompt_ids, const char *tag, double abs_tol, double rel_tol);
/* Reads "1 2 3" ids into ids (returns the count). */
int mr_read_ids(const char *path, int32_t *ids, int cap);

#endif
