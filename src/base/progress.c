/* Progress lines: the bar, the ETA format and the in-place redraw that s1c train and s1c eval
 * share, so both look the same on a terminal and both leave readable lines in a log. */
#include <math.h>
#include <stdio.h>

#include "s1c/base.h"

void s1c_progress_bar(char *buf, int width, double frac) {
    if (!(frac >= 0)) frac = 0; /* NaN too */
    if (frac > 1) frac = 1;
    int filled = (int)(frac * width + 1e-9); /* k/n of the cells exactly, despite rounding in k/n */
    buf[0] = '[';
    for (int i = 0; i < width; i++) buf[1 + i] = i < filled ? '#' : '.';
    buf[width + 1] = ']';
    buf[width + 2] = 0;
}

void s1c_fmt_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)s;
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

void s1c_progress_print(FILE *f, bool tty, const char *line) {
    /* \033[K erases what a longer previous line left to the right */
    if (tty) fprintf(f, "\r%s\033[K", line);
    else fprintf(f, "%s\n", line);
    fflush(f);
}
