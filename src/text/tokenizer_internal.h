#ifndef S1C_TOKENIZER_INTERNAL_H
#define S1C_TOKENIZER_INTERNAL_H

#include "s1c/text.h"

/* Token types as GGUF numbers them (llama.cpp's llama_token_type). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct bpe_data bpe_data;

struct s1c_tokenizer {
    int kind;
    int n_vocab;
    char **piece;      /* piece[i]: NUL-terminated bytes (SPM: spaces as ' '; BPE: the vocab string) */
    int *piece_len;
    int max_piece_len; /* longest piece (set by tok_finish): bounds SPM merge lookups */
    float *score;      /* SPM merge scores */
    uint8_t *type;     /* TT_* */
    int *sorted;       /* ids sorted by piece bytes, for lookup */
    int byte_id[256];  /* SPM byte-fallback ids (<0xNN>), -1 if absent */
    int bos, eos;
    bool add_space_prefix;
    bpe_data *bpe;     /* byte-level BPE: merges, byte symbols, pre-tokenizer (NULL for SPM) */
    int chat;          /* s1c_chat_template family of the model's chat_template, or -1 */
    int *specials;     /* ids of CONTROL and USER_DEFINED tokens, longest piece first */
    int n_specials;
};

/* Allocates the arrays for n tokens (pieces NULL until set). */
s1c_tokenizer *tok_alloc(int kind, int n);
int tok_set_piece(s1c_tokenizer *t, int id, const char *p, size_t len);
/* Builds the sorted index and the byte table once all pieces are set. */
int tok_finish(s1c_tokenizer *t, s1c_err *err);
/* Id of the exact piece, or -1. */
int tok_lookup(const s1c_tokenizer *t, const char *p, size_t len);

/* Appends the encoding of plain text (no special tokens) to a growing id array. */
int spm_encode_text(const s1c_tokenizer *t, const char *text, size_t len, bool space_prefix, int32_t **ids, int *n_ids, int *cap_ids, s1c_err *err);
int bpe_encode_text(const s1c_tokenizer *t, const char *text, size_t len, int32_t **ids, int *n_ids, int *cap_ids, s1c_err *err);

/* Byte-level BPE set-up: after the vocabulary is final (tok_finish), bpe_init builds the
 * byte table and compiles the pre-tokenizer; merges are then added in rank order. */
extern const char *const bpe_regex_qwen2, *const bpe_regex_gpt2;
int bpe_init(s1c_tokenizer *t, const char *regex, size_t n_merges_hint, s1c_err *err);
void bpe_free(bpe_data *d);
int bpe_add_merge_line(s1c_tokenizer *t, const char *line, size_t len, int rank);
int bpe_add_merge_pair(s1c_tokenizer *t, const char *left, const char *right, int rank);
int bpe_n_merges(const s1c_tokenizer *t);

#endif
