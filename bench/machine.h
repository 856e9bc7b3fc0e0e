/* The machine's limits for the benchmarks here: the library's fixed methods (src/bench/limits.h,
 * shared with `s1c bench`): read bandwidth with every thread of the process-wide pool over
 * 1 GiB (best of 5), and the f32 FMA peak of one core. */
#ifndef S1C_BENCH_MACHINE_H
#define S1C_BENCH_MACHINE_H

#include "bench/limits.h"

/* Bytes per second read by all threads. */
static inline double machine_bandwidth(void) { return bench_read_bandwidth(s1c_pool_global(), (size_t)1 << 30, 5); }

/* f32 FLOP/s of one core; *isa: the vector width used. */
static inline double machine_flops_one_core(const char **isa) { return bench_peak_f32(NULL, isa); }

#endif
