/* Targets and loss weights of training rows (SPEC.md §4's loss weighting). */
#include "s1c/train.h"

void s1c_targets_from_labels(int32_t *target, const int32_t *label, const int32_t *seg, int n) {
    for (int t = 0; t < n; t++) {
        bool has_next = t + 1 < n && (!seg || seg[t + 1] == seg[t]);
        target[t] = has_next && label[t + 1] >= 0 ? label[t + 1] : -1;
    }
}

/* One past the last position of the segment that starts at a (no seg: the whole row). */
static int segment_end(const int32_t *seg, int n, int a) {
    int b = a + 1;
    while (b < n && (!seg || seg[b] == seg[a])) b++;
    return b;
}

static int count_targets(const int32_t *target, int a, int b) {
    int k = 0;
    for (int t = a; t < b; t++) k += target[t] >= 0;
    return k;
}

int s1c_row_samples(const int32_t *target, const int32_t *seg, int n) {
    int samples = 0, a = 0;
    while (a < n) {
        int b = segment_end(seg, n, a);
        samples += count_targets(target, a, b) > 0;
        a = b;
    }
    return samples;
}

void s1c_loss_weights(float *weight, const int32_t *target, const int32_t *seg, int n, int n_samples) {
    int a = 0;
    while (a < n) {
        int b = segment_end(seg, n, a);
        int k = count_targets(target, a, b);
        for (int t = a; t < b; t++) weight[t] = target[t] >= 0 ? (float)(1.0 / ((double)k * n_samples)) : 0.0f;
        a = b;
    }
}
