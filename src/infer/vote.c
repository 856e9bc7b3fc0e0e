/* Majority voting for parallel scaling (s1 §5: "majority vote over k samples"). */
#include <stdlib.h>
#include <string.h>

#include "s1c/infer.h"

void s1c_vote_free(s1c_vote *v) {
    free(v->answer);
    memset(v, 0, sizeof *v);
}

int s1c_majority_vote(const char *const *texts, const size_t *lens, int n, grade_extractor ex, s1c_vote *out, s1c_err *err) {
    memset(out, 0, sizeof *out);
    if (n <= 0) return s1c_fail(err, "vote: no samples");
    grade_extraction *ans = calloc((size_t)n, sizeof *ans);
    int *group = malloc((size_t)n * sizeof(int)), *size = calloc((size_t)n, sizeof(int));
    int rc = 0, n_groups = 0;
    if (!ans || !group || !size) { rc = s1c_fail(err, "vote: out of memory"); goto out; }
    for (int i = 0; i < n && rc == 0; i++) rc = grade_extract(texts[i], lens[i], ex, &ans[i], err);
    /* each answer joins the first earlier group whose first member it equals */
    int *rep = malloc((size_t)n * sizeof(int));
    if (!rep && rc == 0) rc = s1c_fail(err, "vote: out of memory");
    for (int i = 0; i < n && rc == 0; i++) {
        group[i] = -1;
        for (int g = 0; g < n_groups && group[i] < 0; g++) {
            grade_result r;
            const grade_extraction *a = &ans[rep[g]], *b = &ans[i];
            if (grade_equal_ex(a->answer, a->len, b->answer, b->len, NULL, &r, err) != 0) { rc = -1; break; }
            if (r.equal) group[i] = g;
        }
        if (rc == 0 && group[i] < 0) { rep[n_groups] = i; group[i] = n_groups++; }
        if (rc == 0) size[group[i]]++;
    }
    if (rc == 0) {
        int best = 0;
        for (int g = 1; g < n_groups; g++)
            if (size[g] > size[best]) best = g;
        out->winner = rep[best];
        out->votes = size[best];
        out->n = n;
        out->agreement = (double)size[best] / n;
        out->answer = strndup(ans[rep[best]].answer, ans[rep[best]].len);
        if (!out->answer) rc = s1c_fail(err, "vote: out of memory");
    }
    free(rep);
out:
    if (ans)
        for (int i = 0; i < n; i++) grade_extraction_free(&ans[i]);
    free(ans);
    free(group);
    free(size);
    return rc;
}
