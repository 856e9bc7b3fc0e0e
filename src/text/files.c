/* The files of a Hugging Face tokenizer, copied as a set (s1c init --tokenizer, and every
 * checkpoint s1c train writes, carry them beside the weights). */
#include <stdlib.h>

#include "s1c/text.h"

static const char *const tokenizer_files[] = {"tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                                              "special_tokens_map.json", "added_tokens.json", "generation_config.json"};

int s1c_tok_copy_files(const char *from, const char *to, int *n_copied, s1c_err *err) {
    int copied = 0, rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof tokenizer_files / sizeof tokenizer_files[0]; i++) {
        char *src = s1c_path_join(from, tokenizer_files[i]), *dst = s1c_path_join(to, tokenizer_files[i]);
        char *data = NULL;
        size_t len = 0;
        if (!src || !dst) rc = s1c_fail(err, "out of memory");
        else if (s1c_file_exists(src)) {
            rc = s1c_read_file(src, 512u << 20, &data, &len, err);
            if (rc == 0) rc = s1c_write_file_atomic(dst, data, len, err);
            copied++;
        }
        free(data);
        free(src);
        free(dst);
    }
    if (n_copied) *n_copied = copied;
    return rc;
}
