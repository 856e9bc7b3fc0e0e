#ifndef S1C_TOKENIZER_INTERNAL_H
#define S1C_TOKENIZER_INTERNAL_H

#include "s1c/text.h"

/* Token types as GGUF numbers them (llama.cpp's llama_token_type). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

struct s1c_tokenizer {
    int kind;
    int n_vocab;
    char **piece;      /* piece[i]: NUL-terminated bytes (SPM: spaces as ' '; BPE: the vocab string) */
    int *piece_len;
    float *score;      /* SPM merge scores */
    uint8_t *type;     /* TT_* */
    int *sorted;       /* ids sorted by piece bytes, for lookup */
    int byte_id[256];  /* SPM byte-fallback ids (<0xNN>), -1 if absent */
    int bos, eos;
    bool add_space_prefix;
};

/* Allocates the arrays for n tokens (pieces NULL until set). */
s1c_tokenizer *tok_alloc(int kind, int n);
int tok_set_piece(s1c_tokenizer *t, int id, const char *p, size_t len);
/* Builds the sorted index and the byte table once all pieces are set. */
int tok_finish(s1c_tokenizer *t, s1c_err *err);
/* Id of the exact piece, or -1. */
int tok_lookup(const s1c_tokenizer *t, const char *p, size_t len);

int spm_encode(const s1c_tokenizer *t, const char *text, bool add_bos, int32_t **ids, int *n_ids, s1c_err *err);

#endif
