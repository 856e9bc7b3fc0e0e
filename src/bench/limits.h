/* The machine's limits, measured by fixed methods so that benchmark results can be given as
 * a fraction of them (`s1c bench`, bench/).
 *
 * Read bandwidth: every thread of the pool reads its contiguous share of one buffer
 * (>= 1 GiB for the real figure: far beyond the caches; 2 MiB aligned, advised as huge pages)
 * front to back with each of three loops of 8 independent accumulators (AVX-512 streaming loads
 * vmovntdqa, plain 512-bit loads, plain 256-bit loads; AVX-512 ones only where the CPU has it),
 * the loops interleaved in each of `reps` rounds; the best pass: bytes read / seconds.
 * Peaks: every thread runs a loop of 12 independent accumulator chains of one instruction
 * (f32: vfmadd231ps, 2 FLOPs per lane; bf16: vdpbf16ps, 2 FLOPs per bf16 pair; int8:
 * vpdpbusd, 2 ops per u8 x s8 pair), so latency never hides throughput; the best of 5 runs.
 * The instructions are those of the kernel family in use (kern_name): avx512 zmm; avx2 ymm FMA,
 * no bf16 peak, int8 ymm vpdpbusd where the CPU has AVX-VNNI, else vpmaddubsw + vpmaddwd + vpaddd
 * (the AVX2 tiles' step). A type the family cannot run reports 0. Where the packed BF16 kernel
 * runs on AMX tiles (an Intel Xeon since Sapphire Rapids; pk_amx_on), the BF16 models' peak is
 * the tile's: its four 16 x 16 x 32 tile products per step (tdpbf16ps, 2 FLOPs per bf16 pair),
 * every thread, the best of 5 runs (amx_bf16_flops; 0 elsewhere). Where Q4_0/Q8_0 batches run on the
 * AMX int8 tile (kern_packed_amx_int8_rows), their peak is its: four 16 x 16 x 32 tdpbssd per step
 * (2 ops per s8 x s8 pair), likewise (amx_int8_ops). */
#ifndef S1C_BENCH_LIMITS_H
#define S1C_BENCH_LIMITS_H

#include <stddef.h>
#include "s1c/base.h"

typedef struct bench_limits {
    int threads;
    double read_bytes_s;  /* bytes/s */
    double f32_flops;     /* FLOP/s, all threads */
    double bf16_flops;    /* FLOP/s with the BF16 dot product (0: not on this CPU) */
    double int8_ops;      /* op/s with int8 dot products (0: none for this family) */
    double amx_bf16_flops; /* FLOP/s of the AMX BF16 tile products (0: the kernels do not use them) */
    double amx_int8_ops;   /* op/s of the AMX int8 tile products (0: the kernels do not use them) */
    const char *isa;      /* the vector width the f32 loop used: "avx512", "avx2", "scalar" */
    const char *int8_isa; /* the int8 loop: "avx512vnni", "avxvnni", "avx2", "none" */
} bench_limits;

/* Bytes/s of reading `bytes` with every thread of pool (NULL: this thread). 0 if the buffer
 * cannot be allocated. */
double bench_read_bandwidth(s1c_pool *pool, size_t bytes, int reps);
/* f32 FMA FLOP/s with every thread of pool (NULL: one thread); *isa: which loop ran. */
double bench_peak_f32(s1c_pool *pool, const char **isa);
double bench_peak_bf16(s1c_pool *pool);
double bench_peak_amx_bf16(s1c_pool *pool);
double bench_peak_amx_int8(s1c_pool *pool);
double bench_peak_int8(s1c_pool *pool, const char **isa);
/* All of the above; bw_bytes: the bandwidth buffer's size. */
void bench_measure_limits(bench_limits *l, s1c_pool *pool, size_t bw_bytes, int bw_reps);
/* best = the larger of best's and now's each limit (a shared machine's neighbours pull a
 * measurement down, never up: the best seen is the machine's); returns whether any grew. */
bool bench_limits_keep_best(bench_limits *best, const bench_limits *now);

#endif
