#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"demo", cmd_demo, "the whole s1 recipe in miniature: pool, curate, train, budget-forcing eval, report"},
    {"generate", cmd_generate, "generate text from a prompt (llama2.c .bin, GGUF, or HF directory)"},
    {"chat", cmd_chat, "interactive chat with budget forcing (thinking shown dimmed)"},
    {"eval", cmd_eval, "evaluate on a benchmark under thinking budgets and forced waits; report + scaling plot"},
    {"train", cmd_train, "fine-tune with s1's SFT recipe (AdamW, cosine, loss on the answer); exact resume"},
    {"convert", cmd_convert, "HF directory <-> GGUF, re-encode weights (f32/f16/bf16/q8_0/q4_0)"},
    {"export-ollama", cmd_export_ollama, "a GGUF + Ollama Modelfile with s1's template, and notes on budget forcing there"},
    {"curate", cmd_curate, "select s1K-style questions from a pool: decontam, quality, difficulty, domain, diversity"},
    {"distill", cmd_distill, "teacher reasoning traces for a pool through an OpenAI-compatible API (resumable)"},
    {"init", cmd_init, "write a freshly initialized model as a Hugging Face directory"},
    {"tokenize", cmd_tokenize, "encode text from stdin to token ids, or decode ids (--decode)"},
    {"extract", cmd_extract, "extract final answers from model outputs (JSONL on stdin)"},
    {"grade", cmd_grade, "grade predicted answers against gold answers (JSONL on stdin)"},
    {"bench", cmd_bench, "prefill/decode/batched tok/s per weight type, as fractions of the measured machine limits"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: s1c <command> [options]   (s1c <command> --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    cli_error("unknown command '%s' (s1c --help lists the commands)", argv[1]);
    return 2;
}
