/* The demo's models as the source tree ships them (data/demo, see its PROVENANCE.md): what
 * `s1c demo --from-scratch` trained, embedded in the binary so plain `s1c demo` evaluates them
 * without training — as llama2.c ships stories260K. A build from a tree without data/demo has
 * none (demo_have_embedded is false) and the demo trains. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s1c/demo.h"

#ifdef S1C_DEMO_DIR
#define EMBED(sym, file)                                                                                           \
    __asm__(".section .rodata\n.balign 16\n.global " #sym "\n" #sym ":\n.incbin \"" S1C_DEMO_DIR "/" file "\"\n" \
            ".global " #sym "_end\n" #sym "_end:\n.previous\n");                                                   \
    extern const char sym[], sym##_end[];
EMBED(demo_pretrain_config, "pretrain/config.json")
EMBED(demo_pretrain_weights, "pretrain/model.safetensors")
EMBED(demo_sft_config, "sft/config.json")
EMBED(demo_sft_weights, "sft/model.safetensors")
EMBED(demo_random_config, "sft-random/config.json")
EMBED(demo_random_weights, "sft-random/model.safetensors")

typedef struct embedded_model {
    const char *name;
    const char *config, *config_end, *weights, *weights_end;
} embedded_model;

static const embedded_model models[] = {
    {"pretrain", demo_pretrain_config, demo_pretrain_config_end, demo_pretrain_weights, demo_pretrain_weights_end},
    {"sft", demo_sft_config, demo_sft_config_end, demo_sft_weights, demo_sft_weights_end},
    {"sft-random", demo_random_config, demo_random_config_end, demo_random_weights, demo_random_weights_end},
};

bool demo_have_embedded(void) { return true; }

int demo_write_embedded(const char *name, const char *dir, s1c_err *err) {
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const embedded_model *m = &models[i];
        if (strcmp(m->name, name) != 0) continue;
        int n_vocab;
        if (s1c_mkdir_p(dir, err) != 0) return -1;
        char *cfg = s1c_path_join(dir, "config.json"), *w = s1c_path_join(dir, "model.safetensors");
        int rc = cfg && w ? 0 : s1c_fail(err, "out of memory");
        if (rc == 0) rc = s1c_write_file_atomic(cfg, m->config, (size_t)(m->config_end - m->config), err);
        if (rc == 0) rc = s1c_write_file_atomic(w, m->weights, (size_t)(m->weights_end - m->weights), err);
        if (rc == 0) rc = demo_write_tokenizer(dir, &n_vocab, err);
        free(cfg);
        free(w);
        return rc;
    }
    return s1c_fail(err, "demo: no embedded model '%s' (pretrain, sft, sft-random)", name);
}
#else
bool demo_have_embedded(void) { return false; }

int demo_write_embedded(const char *name, const char *dir, s1c_err *err) {
    (void)dir;
    return s1c_fail(err, "demo: this build embeds no model '%s' (built without data/demo)", name);
}
#endif
