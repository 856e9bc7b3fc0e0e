/* The demo's tokenizer: byte-level BPE with no merges (one token per byte) plus ChatML's
 * special tokens, written as a standard Hugging Face tokenizer.json so s1c, transformers and
 * llama.cpp's converter all read it. A 260-row embedding keeps the demo model small. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/demo.h"

static const char *const specials[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_pad|>"};
enum { N_SPECIALS = sizeof specials / sizeof specials[0] };

/* ChatML without a default system prompt: training and generation render the same prompt. */
static const char chatml_template[] =
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/* The Qwen2 pre-tokenizer split (the same regex as Qwen2.5's tokenizer.json). */
static const char qwen_split[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* GPT-2's printable stand-in for each byte, UTF-8 encoded into out (3 bytes at most). */
static void byte_symbol(int b, char *out) {
    int cp;
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    if (printable) {
        cp = b;
    } else {
        int n = 0; /* the rank of b among the non-printable bytes */
        for (int k = 0; k < b; k++)
            if (!((k >= '!' && k <= '~') || (k >= 0xA1 && k <= 0xAC) || (k >= 0xAE && k <= 0xFF))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static cJSON *byte_level(void) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", "ByteLevel");
    cJSON_AddBoolToObject(b, "add_prefix_space", false);
    cJSON_AddBoolToObject(b, "trim_offsets", false);
    cJSON_AddBoolToObject(b, "use_regex", false);
    return b;
}

static cJSON *added_token(int id, const char *content) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", id);
    cJSON_AddStringToObject(a, "content", content);
    cJSON_AddBoolToObject(a, "single_word", false);
    cJSON_AddBoolToObject(a, "lstrip", false);
    cJSON_AddBoolToObject(a, "rstrip", false);
    cJSON_AddBoolToObject(a, "normalized", false);
    cJSON_AddBoolToObject(a, "special", true);
    return a;
}

static cJSON *tokenizer_json(void) {
    cJSON *root = cJSON_CreateObject(), *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON_AddStringToObject(root, "version", "1.0");
    for (int i = 0; i < N_SPECIALS; i++) cJSON_AddItemToArray(added, added_token(256 + i, specials[i]));
    cJSON *norm = cJSON_AddObjectToObject(root, "normalizer");
    cJSON_AddStringToObject(norm, "type", "NFC");
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer"), *seq = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex", qwen_split);
    cJSON_AddStringToObject(split, "behavior", "Isolated");
    cJSON_AddBoolToObject(split, "invert", false);
    cJSON_AddItemToArray(seq, split);
    cJSON_AddItemToArray(seq, byte_level());
    cJSON_AddNullToObject(root, "post_processor");
    cJSON_AddItemToObject(root, "decoder", byte_level());
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddBoolToObject(model, "byte_fallback", false);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    for (int b = 0; b < 256; b++) {
        char sym[4];
        byte_symbol(b, sym);
        cJSON_AddNumberToObject(vocab, sym, b);
    }
    cJSON_AddArrayToObject(model, "merges");
    return root;
}

static cJSON *tokenizer_config(void) {
    cJSON *root = cJSON_CreateObject(), *dec = cJSON_AddObjectToObject(root, "added_tokens_decoder");
    for (int i = 0; i < N_SPECIALS; i++) {
        char id[16];
        snprintf(id, sizeof id, "%d", 256 + i);
        cJSON *a = added_token(256 + i, specials[i]);
        cJSON_DeleteItemFromObject(a, "id");
        cJSON_AddItemToObject(dec, id, a);
    }
    cJSON_AddStringToObject(root, "eos_token", "<|im_end|>");
    cJSON_AddStringToObject(root, "pad_token", "<|fim_pad|>");
    cJSON_AddNullToObject(root, "bos_token");
    cJSON_AddStringToObject(root, "chat_template", chatml_template);
    cJSON_AddNumberToObject(root, "model_max_length", 4096);
    cJSON_AddStringToObject(root, "tokenizer_class", "Qwen2Tokenizer");
    return root;
}

static int write_json(const char *dir, const char *name, cJSON *j, s1c_err *err) {
    char *text = cJSON_PrintUnformatted(j), *path = s1c_path_join(dir, name);
    cJSON_Delete(j);
    int rc = text && path ? s1c_write_file_atomic(path, text, strlen(text), err) : s1c_fail(err, "out of memory");
    free(text);
    free(path);
    return rc;
}

int demo_write_tokenizer(const char *dir, int *n_vocab, s1c_err *err) {
    if (s1c_mkdir_p(dir, err) != 0) return -1;
    if (write_json(dir, "tokenizer.json", tokenizer_json(), err) != 0) return -1;
    if (write_json(dir, "tokenizer_config.json", tokenizer_config(), err) != 0) return -1;
    *n_vocab = 256 + N_SPECIALS;
    return 0;
}
