/* The progress line of an evaluation, local or remote: samples finished out of the run's
 * total (a resumed run starts from what samples.jsonl already holds), running accuracy with
 * its 95% interval, throughput and ETA of this process's work, samples that ended in error
 * apart (an error is never a wrong answer). On a terminal one line is redrawn at most ten times a second; in a
 * log a line is written every 5% of the run or every 10 s, like s1c train's. */
#include <stdio.h>
#include <unistd.h>

#include "eval_internal.h"

#define TTY_EVERY_S 0.1
#define LOG_EVERY_S 10.0
#define LOG_STEPS 20 /* a log line per 1/20 of the run */

void eval_progress_start(eval_progress *p, int total, int done, int correct, bool quiet) {
    *p = (eval_progress){.quiet = quiet, .tty = isatty(2), .total = total, .done = done, .correct = correct,
                         .done0 = done, .t0 = s1c_now()};
    p->last_s = p->t0;
    p->last_step = total > 0 ? done * LOG_STEPS / total : 0;
}

void eval_progress_line(const eval_progress *p, double now, char *buf, size_t n) {
    char bar[32], eta[32], acc[48] = "acc -", errs[32] = "";
    s1c_progress_bar(bar, 20, p->total > 0 ? (double)p->done / p->total : 1.0);
    if (p->done > 0) {
        double lo, hi;
        eval_wilson(p->correct, p->done, &lo, &hi);
        snprintf(acc, sizeof acc, "acc %.1f%% (\xc2\xb1%.1f)", 100.0 * p->correct / p->done, 50.0 * (hi - lo));
    }
    double el = now - p->t0, rate = el > 0 ? (p->done - p->done0) / el : 0;
    /* ETA from this process's pace: resumed samples took no time here */
    s1c_fmt_duration(eta, sizeof eta, rate > 0 ? (p->total - p->done - p->errors) / rate : -1);
    if (p->errors) snprintf(errs, sizeof errs, "  %d error%s", p->errors, p->errors == 1 ? "" : "s");
    snprintf(buf, n, "%s %d/%d samples  %s  %.1f samples/s  ETA %s%s", bar, p->done, p->total, acc, rate,
             rate > 0 ? eta : "?", errs);
}

static void draw(eval_progress *p, double now) {
    char line[256];
    eval_progress_line(p, now, line, sizeof line);
    s1c_progress_print(stderr, p->tty, line);
    p->last_s = now;
    p->drawn = true;
    p->drawn_done = p->done;
    p->drawn_errors = p->errors;
}

void eval_progress_add(eval_progress *p, int done, int correct, int errors) {
    p->done += done;
    p->correct += correct;
    p->errors += errors;
    if (p->quiet) return;
    double now = s1c_now();
    bool last = p->done + p->errors >= p->total;
    if (p->tty) {
        if (last || now - p->last_s >= TTY_EVERY_S) draw(p, now);
        return;
    }
    int step = p->total > 0 ? p->done * LOG_STEPS / p->total : LOG_STEPS;
    if (last || step > p->last_step || now - p->last_s >= LOG_EVERY_S || errors) {
        p->last_step = step;
        draw(p, now);
    }
}

void eval_progress_end(eval_progress *p) {
    if (p->quiet) return;
    /* the last state is always shown, and on a terminal the cursor then leaves the bar's line */
    if (!p->drawn || p->drawn_done != p->done || p->drawn_errors != p->errors) draw(p, s1c_now());
    if (p->tty) fputc('\n', stderr);
}
