#ifndef S1C_EVAL_INTERNAL_H
#define S1C_EVAL_INTERNAL_H

#include "s1c/eval.h"

/* An integer field of a sample record; -1 when missing or not a number (a hand-edited file). */
int eval_int_field(const void *cjson_object, const char *name);

/* Reads DIR/samples.jsonl and writes DIR/summary.json, DIR/scaling.svg, DIR/report.html. */
int eval_summarize(const char *dir, s1c_err *err);

/* The plot as an SVG document (malloc'd): accuracy against average thinking tokens. */
char *eval_svg(const eval_point *pts, int n);

#endif
