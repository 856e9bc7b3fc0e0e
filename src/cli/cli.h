/* The command line: one file per subcommand, sharing these small helpers. The CLI is the
 * only layer that prints for humans and decides exit codes. */
#ifndef S1C_CLI_H
#define S1C_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int cmd_generate(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_export_ollama(int argc, char **argv);
int cmd_extract(int argc, char **argv);
int cmd_grade(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_curate(int argc, char **argv);
int cmd_distill(int argc, char **argv);

/* Prints "s1c: <msg>" to stderr and returns exit code 1. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Argument helpers: each consumes argv[*i + 1] as the value of argv[*i]. They return false
 * (after printing why) when the value is missing or malformed. */
bool arg_str(int argc, char **argv, int *i, const char **out);
bool arg_int(int argc, char **argv, int *i, long lo, long hi, int *out);
bool arg_u64(int argc, char **argv, int *i, uint64_t *out);
bool arg_float(int argc, char **argv, int *i, double lo, double hi, float *out);

/* --kv-type's value ("auto", "f32", "f16" or "bf16") as the dtype. KV_TYPE_HELP is the option's help
 * line, the same in every command that takes it. */
bool arg_kv_type(int argc, char **argv, int *i, int *out);
#define KV_TYPE_HELP                                                                                         \
    "  --kv-type T          KV cache element type: auto (default), f32, f16 or bf16. bf16 and f16 take half\n" \
    "                       the memory per token (as llama.cpp's default f16 cache); bf16 under --bf16-math\n" \
    "                       dot runs attention in bf16 dot products, the fastest at long contexts. auto: bf16\n" \
    "                       for BF16/F16/quantized weights under --bf16-math dot, f32 otherwise\n"

/* --bf16-math's value: false for "exact", true for "dot" (s1c_model_set_bf16_dot). */
bool arg_bf16_math(int argc, char **argv, int *i, bool *dot);
#define BF16_MATH_HELP                                                                                       \
    "  --bf16-math M        BF16 weights (and a bf16 KV cache's attention): dot (bf16 dot products on\n" \
    "                       bf16-rounded activations, as llama.cpp, PyTorch and GPUs: 2x the FLOP rate; the\n" \
    "                       default where the CPU has AVX512_BF16) or exact (f32 arithmetic; the default elsewhere)\n"

/* A text callback that writes to stdout as text arrives (streaming generation). */
int cli_print_stream(void *user, const char *text, int n);

/* Writes s as a JSON string literal (quotes included) to f (a FILE*). */
void json_write_str(void *f, const char *s, size_t n);

#endif
