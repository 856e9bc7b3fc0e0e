/* Small helpers shared by the C tests (cmocka does the asserting). */
#ifndef S1C_TESTUTIL_H
#define S1C_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* $S1C_DATA (the shared data folder), $S1C_TMP (a scratch folder), $S1C_SRC, $S1C_BIN. */
const char *tu_env(const char *name);
/* Joins the environment folder `env` and a relative path (malloc'd: the caller frees). */
char *tu_path(const char *env, const char *rel);
/* Reads a whole file (malloc'd); NULL if missing. */
char *tu_read(const char *path, size_t *len);
/* Writes bytes to a file; returns 0 on success. */
int tu_write(const char *path, const void *data, size_t len);
/* Runs a shell command; returns its exit status (-1 if it did not exit normally). */
int tu_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* llama.cpp's 46 Qwen2 tokenizer vectors (shared data): t must encode every string to the
 * listed ids; a failure names `what` and the vector. */
struct s1c_tokenizer;
void tu_check_qwen2_vectors(const struct s1c_tokenizer *t, const char *what);
/* Max |a - b| over n floats. */
double tu_max_abs_diff(const float *a, const float *b, size_t n);

#endif
