/* The machine-limit measurements (src/bench/limits.c) on small buffers: the read bandwidth comes
 * back positive and finite on one thread and on a pool, for sizes that are not a multiple of the
 * 2 MiB huge-page alignment, and 0 for a buffer under one page. The bounds are loose on purpose
 * (100 MB/s .. 100 TB/s): the figure depends on the machine; what is checked is that every
 * method ran over the whole buffer and timed something. The peaks follow the kernel family:
 * which loop ran under each (ref, avx2, avx512) and that those that ran report a positive,
 * finite rate and the others 0. */
#include <math.h>
#include <stdio.h>

#include "bench/limits.h"
#include "kernels/kern_internal.h"
#include "testutil.h"

#include <string.h>

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

static void check_rate(double r, const char *what) {
    if (!(isfinite(r) && r > 1e6 && r < 1e16)) fail_msg("%s: peak %g", what, r);
}

static void test_peaks_follow_family(void **state) {
    (void)state;
    const char *isa, *i8;
    assert_int_equal(kern_select("ref"), 0);
    check_rate(bench_peak_f32(NULL, &isa), "ref f32");
    assert_string_equal(isa, "scalar");
    assert_true(bench_peak_bf16(NULL) == 0.0 && bench_peak_int8(NULL, &i8) == 0.0 && bench_peak_amx_bf16(NULL) == 0.0 &&
                bench_peak_amx_int8(NULL) == 0.0);
    assert_string_equal(i8, "none");
    if (kern_select("avx2") == 0) {
        check_rate(bench_peak_f32(NULL, &isa), "avx2 f32");
        assert_string_equal(isa, "avx2");
        assert_true(bench_peak_bf16(NULL) == 0.0); /* its BF16 is widened: the f32 peak serves */
        assert_true(bench_peak_amx_bf16(NULL) == 0.0 && bench_peak_amx_int8(NULL) == 0.0);
        check_rate(bench_peak_int8(NULL, &i8), "avx2 int8");
        assert_string_equal(i8, kern_cpu_has_avxvnni() ? "avxvnni" : "avx2");
    }
    if (kern_select("avx512") == 0) {
        check_rate(bench_peak_f32(NULL, &isa), "avx512 f32");
        assert_string_equal(isa, "avx512");
        if (kern_avx512bf16_supported()) check_rate(bench_peak_bf16(NULL), "avx512 bf16");
        /* the AMX tile's peak where the BF16 kernel uses it (an Intel Xeon since Sapphire Rapids) */
        if (pk_amx_on()) check_rate(bench_peak_amx_bf16(NULL), "amx bf16");
        else assert_true(bench_peak_amx_bf16(NULL) == 0.0);
        /* and the int8 tile's where Q4_0 batches use it */
        if (pk_amx_int8_on()) check_rate(bench_peak_amx_int8(NULL), "amx int8");
        else assert_true(bench_peak_amx_int8(NULL) == 0.0);
        double r = bench_peak_int8(NULL, &i8);
        if (kern_avx512vnni_supported()) {
            check_rate(r, "avx512 int8");
            assert_string_equal(i8, "avx512vnni");
        }
    }
    kern_select("auto");
}

/* The best of two measurements, limit by limit; a measurement that raises none changes nothing. */
static void test_keep_best(void **state) {
    (void)state;
    bench_limits best = {.threads = 2, .read_bytes_s = 50e9, .f32_flops = 500e9, .bf16_flops = 0, .int8_ops = 2000e9, .isa = "avx512", .int8_isa = "avx512vnni"};
    bench_limits now = best;
    now.read_bytes_s = 80e9, now.int8_ops = 1000e9;
    assert_true(bench_limits_keep_best(&best, &now));
    assert_true(best.read_bytes_s == 80e9 && best.f32_flops == 500e9 && best.bf16_flops == 0 && best.int8_ops == 2000e9);
    now.read_bytes_s = 79e9;
    assert_false(bench_limits_keep_best(&best, &now));
    assert_true(best.read_bytes_s == 80e9);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_bandwidth),
        cmocka_unit_test(test_peaks_follow_family),
        cmocka_unit_test(test_keep_best),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
