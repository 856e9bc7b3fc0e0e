/* SentencePiece-style BPE encoding with scores and byte fallback, as llama2.c's run.c does
 * it: split the text into UTF-8 characters (unknown ones fall back to <0xNN> byte tokens),
 * then repeatedly merge the adjacent pair whose merged piece has the highest score
 * (leftmost on ties) until no pair merges. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

int spm_encode(const s1c_tokenizer *t, const char *text, bool add_bos, int32_t **ids_out, int *n_out, s1c_err *err) {
    *ids_out = NULL;
    *n_out = 0;
    size_t len = strlen(text);
    /* at most one token per byte, plus BOS and the dummy prefix */
    int32_t *ids = malloc((len + 3) * sizeof(int32_t));
    int max_piece = 0;
    for (int i = 0; i < t->n_vocab; i++)
        if (t->piece_len[i] > max_piece) max_piece = t->piece_len[i];
    char *buf = malloc((size_t)max_piece * 2 + 8);
    if (!ids || !buf) { free(ids); free(buf); return s1c_fail(err, "tokenizer: out of memory"); }
    int n = 0;
    if (add_bos && t->bos >= 0) ids[n++] = t->bos;
    if (len > 0 && t->add_space_prefix) {
        int sp = tok_lookup(t, " ", 1);
        if (sp >= 0) ids[n++] = sp;
    }
    for (size_t i = 0; i < len;) {
        /* one UTF-8 character: a lead byte and up to 3 continuation bytes */
        size_t cl = 1;
        while (i + cl < len && cl < 4 && ((uint8_t)text[i + cl] & 0xC0) == 0x80) cl++;
        int id = tok_lookup(t, text + i, cl);
        if (id >= 0) {
            ids[n++] = id;
        } else {
            for (size_t b = 0; b < cl; b++) {
                int bid = t->byte_id[(uint8_t)text[i + b]];
                if (bid < 0) { free(ids); free(buf); return s1c_fail(err, "tokenizer: no token for byte 0x%02X and no byte fallback", (uint8_t)text[i + b]); }
                ids[n++] = bid;
            }
        }
        i += cl;
    }
    for (;;) {
        float best = -1e30f;
        int best_id = -1, best_i = -1;
        for (int i = 0; i + 1 < n; i++) {
            int la = t->piece_len[ids[i]], lb = t->piece_len[ids[i + 1]];
            memcpy(buf, t->piece[ids[i]], (size_t)la);
            memcpy(buf + la, t->piece[ids[i + 1]], (size_t)lb);
            int id = la + lb <= max_piece ? tok_lookup(t, buf, (size_t)(la + lb)) : -1;
            if (id >= 0 && t->score[id] > best) {
                best = t->score[id];
                best_id = id;
                best_i = i;
            }
        }
        if (best_i < 0) break;
        ids[best_i] = best_id;
        memmove(ids + best_i + 1, ids + best_i + 2, (size_t)(n - best_i - 2) * sizeof(int32_t));
        n--;
    }
    free(buf);
    *ids_out = ids;
    *n_out = n;
    return 0;
}
