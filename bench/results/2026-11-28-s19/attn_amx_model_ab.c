/* One q4_0 / bf16 random 0.5B model, prefill and batch32 with the attention's AMX steps on and
 * off in turns, in one process. usage: model_ab TYPE ROUNDS WORKLOADS */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench/modelbench.h"
#include "s1c/base.h"
#include "s1c/model.h"

extern int attn_amx_off;
static void emit(void *u, const bench_result *r) { printf("off=%d %s %s %.1f\n", attn_amx_off, r->name, r->type, r->tok_s); fflush(stdout); }
int main(int argc, char **argv) {
    s1c_err err = {{0}};
    s1c_config c;
    if (s1c_config_preset(&c, "qwen2", "qwen2.5-0.5b", &err)) { puts(err.msg); return 1; }
    int dt = !strcmp(argv[1], "bf16") ? S1C_BF16 : S1C_Q4_0;
    char *dir, *path;
    if (bench_make_model(&c, dt, "/tmp", &dir, &path, &err)) { puts(err.msg); return 1; }
    s1c_model *m;
    if (s1c_model_open(&m, path, &err)) { puts(err.msg); return 1; }
    bench_remove_dir(dir);
    bench_limits lim;
    bench_measure_limits(&lim, s1c_pool_global(), (size_t)256 << 20, 1);
    bench_opts o = bench_opts_default();
    o.reps = 1;
    o.only = argv[3];
    for (int r = 0; r < atoi(argv[2]); r++)
        for (int off = 0; off < 2; off++) {
            attn_amx_off = getenv("ONLY") ? atoi(getenv("ONLY")) : (r % 2) ? 1 - off : off;
            if (bench_run_model(m, &lim, &o, emit, NULL, &err)) { puts(err.msg); return 1; }
        }
    return 0;
}
