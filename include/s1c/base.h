/* s1c base layer: errors as values, mapped files, checked arithmetic.
 * Every function that can fail returns 0 on success or -1 on failure and, on failure,
 * fills an s1c_err with one line that says what and where. Only the CLI prints. */
#ifndef S1C_BASE_H
#define S1C_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>

typedef struct s1c_err {
    char msg[1024];
} s1c_err;

/* Formats the message into err (if err is not NULL) and returns -1, so callers can write
 * `return s1c_fail(err, "%s: truncated", path);`. */
int s1c_fail(s1c_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes an existing message: "ctx: old message". Returns -1. */
int s1c_fail_prefix(s1c_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A read-only memory map of a whole file. Owns the mapping and a copy of the path. */
typedef struct s1c_mfile {
    const uint8_t *data;
    size_t size;
    char *path;
} s1c_mfile;

int s1c_mfile_open(s1c_mfile *f, const char *path, s1c_err *err);
void s1c_mfile_close(s1c_mfile *f);

/* Reads a whole (small) file into a NUL-terminated malloc'd buffer. */
int s1c_read_file(const char *path, size_t max_size, char **out, size_t *out_len, s1c_err *err);
/* Writes a file atomically: PATH.tmp, fsync, rename, fsync the directory. */
int s1c_write_file_atomic(const char *path, const void *data, size_t len, s1c_err *err);

/* A file written atomically in pieces: data goes to PATH.tmp; commit fsyncs it, renames it
 * over PATH and fsyncs the directory, so a reader sees the old file or the whole new one.
 * Write errors are remembered and reported by commit (which then removes PATH.tmp). */
typedef struct s1c_wfile {
    void *fp; /* FILE* */
    char *path, *tmp;
    bool bad;
} s1c_wfile;
int s1c_wfile_open(s1c_wfile *w, const char *path, s1c_err *err);
void s1c_wfile_write(s1c_wfile *w, const void *data, size_t len);
void s1c_wfile_zeros(s1c_wfile *w, size_t len);
int s1c_wfile_commit(s1c_wfile *w, s1c_err *err);
void s1c_wfile_abort(s1c_wfile *w);

/* The length (1..4) of the valid UTF-8 sequence at s (n bytes available), or 0 when the bytes
 * there are not one (overlong forms, surrogates and code points past U+10FFFF are invalid). */
size_t s1c_utf8_len(const unsigned char *s, size_t n);

/* Checked arithmetic: return false on overflow. */
static inline bool s1c_add_overflow(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_add_overflow(a, b, r); }
static inline bool s1c_mul_overflow(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_mul_overflow(a, b, r); }

/* Deterministic random numbers (xoshiro256**, seeded through splitmix64). */
typedef struct s1c_rng {
    uint64_t s[4];
} s1c_rng;
void s1c_rng_seed(s1c_rng *r, uint64_t seed);
uint64_t s1c_rng_u64(s1c_rng *r);
/* Uniform in [0, 1) with 24 bits, as a float. */
float s1c_rng_float(s1c_rng *r);
/* Standard normal (Box-Muller). */
float s1c_rng_normal(s1c_rng *r);

/* A number as the text a person would write (src/base/num.c): integral values within +-1e15 as
 * integers ("42", not "42.0"), others with 17 significant digits. JSON ids and answers that
 * arrive as numbers compare as text through it. Writes into buf (32 bytes are enough); returns buf. */
const char *s1c_num_text(double d, char *buf, size_t cap);

/* A large buffer that is read as a stream (src/base/mem.c): 2 MiB aligned and advised as
 * transparent huge pages when it spans one; free() releases it. NULL when out of memory. */
void *s1c_alloc_huge(size_t bytes);

/* Path helpers (malloc'd results). */
char *s1c_path_join(const char *dir, const char *name);
bool s1c_is_dir(const char *path);
bool s1c_file_exists(const char *path);
/* Makes a directory and its parents (like mkdir -p). */
int s1c_mkdir_p(const char *path, s1c_err *err);

/* Monotonic wall time in seconds. */
double s1c_now(void);

/* Progress lines (src/base/progress.c), shared by s1c train and s1c eval so their bars look
 * alike. "[#####.......]": frac (clamped to [0, 1]) of `width` cells; buf holds width + 3 bytes. */
void s1c_progress_bar(char *buf, int width, double frac);
/* A duration for an ETA: "0m42s", "12m05s", "1h02m" (negative or not finite: "0m00s"). */
void s1c_fmt_duration(char *buf, size_t n, double seconds);
/* One progress line on f: on a terminal redrawn in place ("\r", the line, erase to its end);
 * otherwise the line and a newline, so a log keeps every update readable. */
void s1c_progress_print(FILE *f, bool tty, const char *line);

/* Half-precision conversions (IEEE binary16 and bfloat16). */
float s1c_f16_to_f32(uint16_t h);
uint16_t s1c_f32_to_f16(float f);
static inline float s1c_bf16_to_f32(uint16_t b) {
    union { uint32_t u; float f; } v = { .u = (uint32_t)b << 16 };
    return v.f;
}
/* Round to nearest even, as PyTorch does; NaN stays NaN. */
uint16_t s1c_f32_to_bf16(float f);

/* A thread pool of persistent workers (src/base/pool.c). s1c_pool_run calls fn(ctx, task,
 * n_tasks) once for every task in [0, n_tasks), spread over the threads by a static rule
 * (thread w runs tasks w, w + T, w + 2T, ...; the caller is thread 0), and returns when all
 * are done. Tasks must write disjoint outputs: then the result never depends on the thread
 * count or on timing. Idle workers spin briefly, then sleep on a futex (never an unbounded
 * busy-wait). A run that finds the pool busy (another thread inside s1c_pool_run) runs all its
 * tasks on the caller, so concurrent users are safe. */
typedef struct s1c_pool s1c_pool;
typedef void (*s1c_pool_fn)(void *ctx, int task, int n_tasks);
/* n_threads <= 0: $S1C_THREADS if set, else the CPUs this process may run on. */
int s1c_pool_new(s1c_pool **out, int n_threads, s1c_err *err);
void s1c_pool_free(s1c_pool *p);
int s1c_pool_threads(const s1c_pool *p);
void s1c_pool_run(s1c_pool *p, int n_tasks, s1c_pool_fn fn, void *ctx);
/* The process-wide pool, made on first use (n_threads = 0 rule); NULL if it cannot be made
 * (callers then run single-threaded). Never freed. */
s1c_pool *s1c_pool_global(void);

#endif
