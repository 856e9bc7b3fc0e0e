/* s1c text layer: tokenizers and streaming detokenization.
 *
 * SentencePiece-style vocabularies with scores and byte fallback (llama2.c tok512.bin, GGUF
 * `llama`), and byte-level BPE as Hugging Face tokenizers runs it for GPT-2/Qwen2 (NFC,
 * the pre-tokenizer regex via PCRE2, GPT-2's byte symbols, merges by rank) from GGUF `gpt2`
 * vocabularies, tokenizer.json, or vocab.json + merges.txt. */
#ifndef S1C_TEXT_H
#define S1C_TEXT_H

#include "s1c/base.h"
#include "s1c/formats.h"

typedef enum s1c_tok_kind { S1C_TOK_SPM = 0, S1C_TOK_BYTE_BPE = 1 } s1c_tok_kind;

typedef struct s1c_tokenizer s1c_tokenizer;

/* Any of the forms below, by what PATH is: a directory or .json (Hugging Face), a .gguf,
 * else a llama2.c tokenizer file. vocab_size is for llama2.c files (0 = all records). */
int s1c_tok_load(s1c_tokenizer **out, const char *path, int vocab_size, s1c_err *err);
/* llama2.c tokenizer file; vocab_size comes from the model header (0 = every record). */
int s1c_tok_load_llama2c(s1c_tokenizer **out, const char *path, int vocab_size, s1c_err *err);
/* From a GGUF file's tokenizer.ggml.* metadata. */
int s1c_tok_load_gguf(s1c_tokenizer **out, const gguf_file *g, s1c_err *err);
/* From a Hugging Face directory (tokenizer.json, or vocab.json + merges.txt +
 * tokenizer_config.json for added tokens), or a tokenizer.json file. */
int s1c_tok_load_hf(s1c_tokenizer **out, const char *dir, s1c_err *err);
void s1c_tok_free(s1c_tokenizer *t);
/* Copies the Hugging Face tokenizer files that exist in directory `from` (tokenizer.json,
 * vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json, added_tokens.json,
 * generation_config.json) into `to`, each written atomically; *n_copied (may be NULL) says how many. */
int s1c_tok_copy_files(const char *from, const char *to, int *n_copied, s1c_err *err);

int s1c_tok_kind_of(const s1c_tokenizer *t);
int s1c_tok_n_vocab(const s1c_tokenizer *t);
int s1c_tok_bos(const s1c_tokenizer *t);
int s1c_tok_eos(const s1c_tokenizer *t);
/* The chat template family of the model (from its chat_template; Qwen2.5's for a ChatML
 * vocabulary without one), or -1. */
int s1c_tok_chat_template(const s1c_tokenizer *t);
/* True if this tokenizer can encode text (byte-level BPE needs merges). */
bool s1c_tok_can_encode(const s1c_tokenizer *t);

/* Encoding flags. */
enum {
    S1C_ENC_BOS = 1,     /* prepend the BOS id (when the vocabulary has one) */
    S1C_ENC_SPECIAL = 2, /* match added/special tokens (<|im_start|>, ...) in the text; without it
                            their text is encoded as plain text, never as the special id */
    S1C_ENC_NO_PREFIX = 4, /* SentencePiece: no dummy-prefix space (for pieces of a longer text) */
};

/* Encodes len bytes of text (any bytes: invalid UTF-8 is encoded byte by byte by byte-level
 * BPE, so decoding gives the input back); *ids is malloc'd. */
int s1c_tok_encode_ex(const s1c_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids, int *n_ids, s1c_err *err);
/* The same for a NUL-terminated string, plain text (no special tokens). */
int s1c_tok_encode(const s1c_tokenizer *t, const char *text, bool add_bos, int32_t **ids, int *n_ids, s1c_err *err);

/* The bytes a token stands for, given the token before it (SentencePiece drops the leading
 * space of the first piece after BOS). Control tokens decode to nothing. Returns the length
 * written to buf (at most cap). */
int s1c_tok_decode(const s1c_tokenizer *t, int prev, int token, char *buf, int cap);

/* The text of tokens[from, to) (malloc'd, NUL-terminated; *len its length), decoded as a
 * stream with UTF-8 held back across tokens; the end-of-sequence token is left out. prev is
 * the token before tokens[from] when from is 0 (-1 if none). NULL when out of memory. */
char *s1c_tok_decode_range(const s1c_tokenizer *t, const int32_t *tokens, int from, int to, int prev, size_t *len);

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

/* ---------------------------------------------------------------- chat templates */

/* Chat templates are C code, not a Jinja engine: each known family is rendered exactly as its
 * Jinja template renders plain conversations (system/user/assistant turns), and a model's
 * template string is mapped to its family by s1c_chat_detect. */
typedef enum s1c_chat_template {
    S1C_CHAT_QWEN25 = 0, /* Qwen2.5 ChatML; default system prompt when none is given */
    S1C_CHAT_CHATML,     /* ChatML with no default system prompt */
    S1C_CHAT_QWQ,        /* QwQ: ChatML, generation prompt opens <think>, history reasoning stripped */
    S1C_CHAT_R1_DISTILL, /* DeepSeek-R1-Distill-Qwen: <｜User｜>/<｜Assistant｜>, history reasoning stripped */
} s1c_chat_template;

typedef struct s1c_chat_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} s1c_chat_msg;

extern const char *const s1c_qwen_default_system;

/* The family of a Jinja chat_template string (tokenizer_config.json or GGUF
 * tokenizer.chat_template); -1 when it is none s1c knows. */
int s1c_chat_detect(const char *jinja);
/* Renders a conversation (malloc'd). add_generation_prompt opens the assistant's turn. */
char *s1c_chat_render(int tmpl, const s1c_chat_msg *msgs, int n, bool add_generation_prompt, s1c_err *err);

/* s1's training sample (SPEC.md §3): ChatML with the Qwen system prompt (system NULL = default),
 * the question, then the assistant turn "<|im_start|>think
{trace}
<|im_start|>answer
{answer}<|im_end|>
".
 * trace = the trajectories joined with "
", stripped; answer = the attempt stripped, with
 * "Answer: " in front unless it already contains "Answer:". *loss_start is the byte offset
 * after "<|im_start|>assistant
": loss covers everything from there to the end. */
char *s1c_s1_train_sample(const char *system, const char *question, const char *const *traces, int n_traces,
                          const char *attempt, size_t *loss_start, s1c_err *err);
/* s1's inference prefix (SPEC.md §5): the prompt up to and including "<|im_start|>assistant
"
 * followed by think_start (NULL = "<|im_start|>think"); the model writes the newline. */
char *s1c_s1_prompt(const char *system, const char *question, const char *think_start, s1c_err *err);

#endif
