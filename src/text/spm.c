/* SentencePiece-style BPE encoding with scores and byte fallback, as llama2.c's run.c does
 * it: split the text into UTF-8 characters (unknown ones fall back to <0xNN> byte tokens),
 * then repeatedly merge the adjacent pair whose merged piece has the highest score
 * (leftmost on ties) until no pair merges. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* Greedy best-score merging over ids[0..n); returns the new count. */
static int spm_merge(const s1c_tokenizer *t, int32_t *ids, int n, char *buf, int max_piece) {
    for (;;) {
        float best = -1e30f;
        int best_id = -1, best_i = -1;
        for (int i = 0; i + 1 < n; i++) {
            int la = t->piece_len[ids[i]], lb = t->piece_len[ids[i + 1]];
            if (la + lb > max_piece) continue;
            memcpy(buf, t->piece[ids[i]], (size_t)la);
            memcpy(buf + la, t->piece[ids[i + 1]], (size_t)lb);
            int id = tok_lookup(t, buf, (size_t)(la + lb));
            if (id >= 0 && t->score[id] > best) {
                best = t->score[id];
                best_id = id;
                best_i = i;
            }
        }
        if (best_i < 0) return n;
        ids[best_i] = best_id;
        memmove(ids + best_i + 1, ids + best_i + 2, (size_t)(n - best_i - 2) * sizeof(int32_t));
        n--;
    }
}

int spm_encode_text(const s1c_tokenizer *t, const char *text, size_t len, bool space_prefix, int32_t **ids_io, int *n_io, int *cap_io, s1c_err *err) {
    /* at most one token per byte, plus the dummy prefix */
    int need = *n_io + (int)len + 2;
    if (need > *cap_io) {
        int32_t *ni = realloc(*ids_io, (size_t)need * sizeof(int32_t));
        if (!ni) return s1c_fail(err, "tokenizer: out of memory");
        *ids_io = ni;
        *cap_io = need;
    }
    int32_t *ids = *ids_io + *n_io;
    int max_piece = t->max_piece_len;
    char *buf = malloc((size_t)max_piece + 8);
    if (!buf) return s1c_fail(err, "tokenizer: out of memory");
    int n = 0;
    if (len > 0 && space_prefix) {
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
                if (bid < 0) { free(buf); return s1c_fail(err, "tokenizer: no token for byte 0x%02X and no byte fallback", (uint8_t)text[i + b]); }
                ids[n++] = bid;
            }
        }
        i += cl;
    }
    *n_io += spm_merge(t, ids, n, buf, max_piece);
    free(buf);
    return 0;
}
