/* JSONL streams for the commands that add fields to every input object (extract, grade):
 * lines of any length in order, blank lines skipped, each output line the input object's own
 * bytes with the new fields written before its closing brace. */
#ifndef S1C_CLI_JSONL_H
#define S1C_CLI_JSONL_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct jsonl_in {
    char *line;  /* the current line (owned; freed by jsonl_close) */
    size_t cap;
    long lineno;
} jsonl_in;

/* The next non-blank line of stdin without its line ending: its length, or -1 at the end. */
ssize_t jsonl_next(jsonl_in *in);
void jsonl_close(jsonl_in *in);
/* Writes the object line (which parsed as one JSON object) without its closing brace; returns
 * the separator the first appended field needs: "" right after "{", else ",". */
const char *jsonl_open_object(const char *line, size_t n, FILE *out);

#endif
