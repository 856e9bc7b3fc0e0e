/* s1c text layer: tokenizers and streaming detokenization.
 *
 * Today: SentencePiece-style vocabularies with scores and byte fallback (llama2.c
 * tok512.bin, GGUF `llama` vocabularies), and decoding of byte-level BPE vocabularies
 * (GGUF `gpt2`, Hugging Face vocab.json / tokenizer.json). Byte-level BPE encoding (Qwen2's
 * pre-tokenizer and merges) is the tokenizer issue's work and slots in behind the same API. */
#ifndef S1C_TEXT_H
#define S1C_TEXT_H

#include "s1c/base.h"
#include "s1c/formats.h"

typedef enum s1c_tok_kind { S1C_TOK_SPM = 0, S1C_TOK_BYTE_BPE = 1 } s1c_tok_kind;

typedef struct s1c_tokenizer s1c_tokenizer;

/* llama2.c tokenizer file; vocab_size comes from the model header. */
int s1c_tok_load_llama2c(s1c_tokenizer **out, const char *path, int vocab_size, s1c_err *err);
/* From a GGUF file's tokenizer.ggml.* metadata. */
int s1c_tok_load_gguf(s1c_tokenizer **out, const gguf_file *g, s1c_err *err);
/* From a Hugging Face directory (tokenizer.json, or vocab.json + tokenizer_config.json). */
int s1c_tok_load_hf(s1c_tokenizer **out, const char *dir, s1c_err *err);
void s1c_tok_free(s1c_tokenizer *t);

int s1c_tok_kind_of(const s1c_tokenizer *t);
int s1c_tok_n_vocab(const s1c_tokenizer *t);
int s1c_tok_bos(const s1c_tokenizer *t);
int s1c_tok_eos(const s1c_tokenizer *t);
/* True if this tokenizer can encode text (not yet for byte-level BPE). */
bool s1c_tok_can_encode(const s1c_tokenizer *t);

/* Encodes text; *ids is malloc'd. add_bos prepends the BOS id. */
int s1c_tok_encode(const s1c_tokenizer *t, const char *text, bool add_bos, int32_t **ids, int *n_ids, s1c_err *err);

/* The bytes a token stands for, given the token before it (SentencePiece drops the leading
 * space of the first piece after BOS). Control tokens decode to nothing. Returns the length
 * written to buf (at most cap). */
int s1c_tok_decode(const s1c_tokenizer *t, int prev, int token, char *buf, int cap);

/* Streaming decoder: holds back an incomplete UTF-8 sequence until it is complete, so
 * output never splits a character; bytes that can never form valid UTF-8 are passed
 * through as they are, never dropped. */
typedef struct s1c_detok {
    char pending[8];
    int n_pending;
} s1c_detok;

/* Appends the token's bytes; writes the bytes that are ready to out (cap >= 64 + piece
 * length is enough; returns the count). */
int s1c_detok_push(s1c_detok *d, const char *bytes, int n, char *out, int cap);
/* Flushes whatever is held back (at the end of generation). */
int s1c_detok_flush(s1c_detok *d, char *out, int cap);

#endif
