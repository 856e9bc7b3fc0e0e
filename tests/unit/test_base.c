/* Small base helpers: numbers as text (JSON ids and answers that arrive as numbers) and the
 * huge-page buffers of packed weights and the KV cache. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/base.h"
#include "testutil.h"

static void test_num_text(void **st) {
    (void)st;
    char b[32];
    assert_string_equal(s1c_num_text(42, b, sizeof b), "42");
    assert_string_equal(s1c_num_text(-7, b, sizeof b), "-7");
    assert_string_equal(s1c_num_text(0, b, sizeof b), "0");
    assert_string_equal(s1c_num_text(0.5, b, sizeof b), "0.5");
    assert_string_equal(s1c_num_text(999999999999999.0, b, sizeof b), "999999999999999");
    /* outside +-1e15 (and far outside long long, where a conversion would be undefined) */
    assert_string_equal(s1c_num_text(1e15, b, sizeof b), "1000000000000000");
    assert_string_equal(s1c_num_text(7.8e34, b, sizeof b), "7.8000000000000004e+34");
    assert_string_equal(s1c_num_text(-1e300, b, sizeof b), "-1.0000000000000001e+300");
    assert_string_equal(s1c_num_text(INFINITY, b, sizeof b), "inf");
    assert_string_equal(s1c_num_text(NAN, b, sizeof b), "nan");
    /* a small buffer is cut, never overrun */
    char s[4];
    assert_string_equal(s1c_num_text(123456, s, sizeof s), "123");
}

static void test_alloc_huge(void **st) {
    (void)st;
    size_t sizes[] = {1, 4096, (size_t)1 << 21, ((size_t)3 << 21) + 5};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        uint8_t *p = s1c_alloc_huge(sizes[i]);
        assert_non_null(p);
        uintptr_t align = sizes[i] >= ((size_t)1 << 21) ? ((uintptr_t)1 << 21) : 64;
        assert_int_equal((uintptr_t)p % align, 0);
        memset(p, 0xab, sizes[i]); /* all of it is usable (ASan checks the bounds) */
        free(p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_num_text), cmocka_unit_test(test_alloc_huge)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
