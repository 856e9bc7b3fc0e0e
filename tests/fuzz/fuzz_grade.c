/* libFuzzer target: answer extraction and the grader's parser/comparer on arbitrary bytes.
 * The input is split at its first NUL byte into gold and pred (no NUL: both are the whole
 * input). Every extractor runs on the whole input; grading runs with and without the
 * identical-string shortcut, in both orders. Anything may come out (EQUAL, NOT_EQUAL,
 * UNSURE) but nothing may crash, leak, read out of bounds or hang (limits in
 * src/grade/grade_internal.h bound depth, size and evaluation fuel). */
#include <stdint.h>
#include <string.h>

#include "s1c/grade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    const char *nul = memchr(s, 0, size);
    size_t gl = nul ? (size_t)(nul - s) : size;
    const char *pred = nul ? nul + 1 : s;
    size_t pl = nul ? size - gl - 1 : size;
    for (int x = 0; x < 3; x++) {
        grade_extraction e;
        if (grade_extract(s, size, (grade_extractor)x, &e, NULL) == 0) {
            if (e.len > size + 64) __builtin_trap(); /* an extraction is a piece of the input */
            grade_extraction_free(&e);
        }
    }
    grade_result r1, r2, r3;
    grade_opts slow = {.no_fast_path = true};
    if (grade_equal_ex(s, gl, pred, pl, NULL, &r1, NULL) == 0 && grade_equal_ex(s, gl, pred, pl, &slow, &r2, NULL) == 0 &&
        grade_equal_ex(pred, pl, s, gl, &slow, &r3, NULL) == 0) {
        if (r1.verdict > GRADE_UNSURE || r2.verdict > GRADE_UNSURE || r3.verdict > GRADE_UNSURE) __builtin_trap();
    }
    return 0;
}
