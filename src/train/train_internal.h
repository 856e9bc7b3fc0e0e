/* The train layer's internals: checkpoints (ckpt.c) for the train loop (trainer.c). */
#ifndef S1C_TRAIN_INTERNAL_H
#define S1C_TRAIN_INTERNAL_H

#include "s1c/train.h"

typedef struct ckpt_data {
    int step;               /* optimizer steps done */
    const s1c_params *p;    /* master weights */
    const float *m, *v;     /* Adam moments */
    int dtype;              /* model.safetensors' dtype: F32 or BF16 */
    const char *base_dir;   /* where the tokenizer files come from */
    const char *state_json; /* trainer_state.json */
    int keep;               /* checkpoints kept (<= 0: all) */
    uint64_t shard_bytes;   /* model files above this are sharded (0: never) */
} ckpt_data;

/* Writes OUT/step-N as a whole and points OUT/latest at it (see ckpt.c). */
int ckpt_save(const char *out, const ckpt_data *c, s1c_err *err);
/* Reads the master weights into p->data, the moments into m and v, and the state text
 * (malloc'd) from a checkpoint directory. */
int ckpt_load(const char *dir, const s1c_params *p, float *m, float *v, char **state_json, s1c_err *err);

/* ---------------------------------------------------------------- data parallel (dist.c) */

typedef struct dist {
    int rank, size;
    bool active; /* MPI was started (and must be finalized) */
} dist;

/* Joins the MPI job when a launcher started this process; otherwise rank 0 of 1. */
int dist_init(dist *d, s1c_err *err);
void dist_finalize(dist *d);
/* True when s1c was built with MPI. */
bool dist_available(void);
/* In-place sum over all ranks (every rank gets the result). */
void dist_sum_f32(const dist *d, float *buf, uint64_t n);
double dist_sum_f64(const dist *d, double v);
/* The largest v over all ranks (a failure anywhere stops everyone). */
int dist_max_int(const dist *d, int v);
void dist_bcast_f32(const dist *d, float *buf, uint64_t n, int root);
/* Gathers every rank's slice [off, off + n) of a buffer into full on root (mine: the slice). */
void dist_gather_f32(const dist *d, float *full, const float *mine, uint64_t off, uint64_t n, int root);

#endif
