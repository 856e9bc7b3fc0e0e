/* The machine-limit measurements (src/bench/limits.c) on small buffers: the read bandwidth comes
 * back positive and finite on one thread and on a pool, for sizes that are not a multiple of the
 * 2 MiB huge-page alignment, and 0 for a buffer under one page. The bounds are loose on purpose
 * (100 MB/s .. 100 TB/s): the figure depends on the machine; what is checked is that every
 * method ran over the whole buffer and timed something. */
#include <math.h>
#include <stdio.h>

#include "bench/limits.h"
#include "testutil.h"

static void check_bw(double bw, const char *what) {
    if (!(isfinite(bw) && bw > 1e8 && bw < 1e14)) fail_msg("%s: read bandwidth %g bytes/s", what, bw);
}

static void test_read_bandwidth(void **state) {
    (void)state;
    check_bw(bench_read_bandwidth(NULL, (size_t)8 << 20, 2), "8 MiB, one thread");
    check_bw(bench_read_bandwidth(NULL, ((size_t)3 << 20) + 4096 + 100, 1), "3 MiB + 4196 bytes, one thread");
    s1c_pool *pool;
    s1c_err err;
    assert_int_equal(s1c_pool_new(&pool, 2, &err), 0);
    check_bw(bench_read_bandwidth(pool, (size_t)8 << 20, 2), "8 MiB, 2 threads");
    s1c_pool_free(pool);
    assert_true(bench_read_bandwidth(NULL, 4095, 1) == 0.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_bandwidth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
