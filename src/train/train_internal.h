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
} ckpt_data;

/* Writes OUT/step-N as a whole and points OUT/latest at it (see ckpt.c). */
int ckpt_save(const char *out, const ckpt_data *c, s1c_err *err);
/* Reads the master weights into p->data, the moments into m and v, and the state text
 * (malloc'd) from a checkpoint directory. */
int ckpt_load(const char *dir, const s1c_params *p, float *m, float *v, char **state_json, s1c_err *err);

#endif
