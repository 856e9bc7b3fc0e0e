/* The metrics of a test-time-scaling method (SPEC.md §6). */
#include <math.h>

#include "s1c/eval.h"

void eval_wilson(int k, int n, double *lo, double *hi) {
    if (n <= 0) { *lo = 0; *hi = 1; return; }
    const double z = 1.959963984540054;
    double p = (double)k / n, z2 = z * z, den = 1 + z2 / n;
    double centre = (p + z2 / (2 * n)) / den, half = z * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / den;
    /* k = 0 or k = n makes one bound exact: do not leave rounding noise there */
    *lo = k == 0 || centre - half < 0 ? 0 : centre - half;
    *hi = k == n || centre + half > 1 ? 1 : centre + half;
}

double eval_control(const eval_point *pts, int n) {
    if (n <= 0) return 0;
    int within = 0;
    for (int i = 0; i < n; i++)
        within += pts[i].max_thinking_tokens < 0 ||
                  (pts[i].steps ? pts[i].avg_thinking_steps : pts[i].avg_thinking_tokens) <= pts[i].max_thinking_tokens;
    return (double)within / n;
}

double eval_scaling(const eval_point *pts, int n) {
    double sum = 0;
    int pairs = 0;
    for (int a = 0; a < n; a++)
        for (int b = a + 1; b < n; b++) {
            double dt = pts[b].avg_thinking_tokens - pts[a].avg_thinking_tokens;
            if (dt == 0) continue;
            sum += (pts[b].accuracy - pts[a].accuracy) * 100.0 / (dt / 1000.0);
            pairs++;
        }
    return pairs ? sum / pairs : 0;
}

double eval_performance(const eval_point *pts, int n) {
    double best = 0;
    for (int i = 0; i < n; i++)
        if (pts[i].accuracy > best) best = pts[i].accuracy;
    return best;
}
