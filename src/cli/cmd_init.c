/* s1c init: a freshly initialized model as a Hugging Face directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "s1c/model.h"
#include "s1c/text.h"

static const char *init_help =
    "usage: s1c init --arch qwen2|llama (--preset NAME | --config config.json) --out DIR [options]\n"
    "\n"
    "  --preset NAME     tiny, qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-3b, qwen2.5-7b, qwen2.5-14b, qwen2.5-32b\n"
    "  --config FILE     a Hugging Face config.json to take the shape from\n"
    "  --tokenizer DIR   copy tokenizer files (tokenizer.json, vocab.json, merges.txt, tokenizer_config.json, ...)\n"
    "                    from DIR; the vocabulary size must fit the embedding\n"
    "  --vocab N         override the vocabulary size (embedding rows)\n"
    "  --dtype f32|bf16  storage type (default f32)\n"
    "  --seed S          random seed (default 0)\n"
    "\n"
    "example:\n"
    "  s1c init --arch qwen2 --preset qwen2.5-0.5b --seed 1 --out /tmp/q05b\n";

static int copy_tokenizer(const char *from, const char *to, s1c_err *err) {
    int copied;
    if (s1c_tok_copy_files(from, to, &copied, err) != 0) return -1;
    return copied ? 0 : s1c_fail(err, "%s: no tokenizer files found", from);
}

int cmd_init(int argc, char **argv) {
    const char *arch = NULL, *preset = NULL, *config = NULL, *out = NULL, *tokdir = NULL, *dtype = "f32";
    uint64_t seed = 0;
    int vocab = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(init_help, stdout); return 0; }
        else if (!strcmp(a, "--arch")) ok = arg_str(argc, argv, &i, &arch);
        else if (!strcmp(a, "--preset")) ok = arg_str(argc, argv, &i, &preset);
        else if (!strcmp(a, "--config")) ok = arg_str(argc, argv, &i, &config);
        else if (!strcmp(a, "--out")) ok = arg_str(argc, argv, &i, &out);
        else if (!strcmp(a, "--tokenizer")) ok = arg_str(argc, argv, &i, &tokdir);
        else if (!strcmp(a, "--dtype")) ok = arg_str(argc, argv, &i, &dtype);
        else if (!strcmp(a, "--seed")) ok = arg_u64(argc, argv, &i, &seed);
        else if (!strcmp(a, "--vocab")) ok = arg_int(argc, argv, &i, 1, 1 << 24, &vocab);
        else return cli_error("init: unknown option '%s' (see s1c init --help)", a);
        if (!ok) return 1;
    }
    if (!out) return cli_error("init: --out DIR is required");
    if (!preset == !config) return cli_error("init: give exactly one of --preset and --config");
    int dt = !strcmp(dtype, "f32") ? S1C_F32 : !strcmp(dtype, "bf16") ? S1C_BF16 : -1;
    if (dt < 0) return cli_error("init: --dtype must be f32 or bf16");
    s1c_err err = {{0}};
    s1c_config c;
    if (preset) {
        if (!arch) return cli_error("init: --arch is required with --preset");
        if (s1c_config_preset(&c, arch, preset, &err) != 0) return cli_error("%s", err.msg);
    } else {
        char *text = NULL;
        int rc = s1c_read_file(config, 1u << 20, &text, NULL, &err);
        if (rc == 0) rc = s1c_config_from_hf_json(&c, text, config, &err);
        free(text);
        if (rc != 0) return cli_error("%s", err.msg);
        if (c.arch == S1C_ARCH_QWEN2) c.qkv_bias = true;
    }
    if (vocab) c.vocab_size = vocab;
    if (tokdir) {
        s1c_tokenizer *tok = NULL;
        if (s1c_tok_load_hf(&tok, tokdir, &err) != 0) return cli_error("%s", err.msg);
        int n = s1c_tok_n_vocab(tok);
        s1c_tok_free(tok);
        if (n > c.vocab_size) return cli_error("init: the tokenizer in %s has %d tokens, more than the %d embedding rows (use --vocab)", tokdir, n, c.vocab_size);
    }
    if (c.bos_id >= c.vocab_size || c.eos_id >= c.vocab_size) c.bos_id = c.eos_id = -1;
    if (s1c_model_init_hf(&c, seed, dt, out, &err) != 0 || (tokdir && copy_tokenizer(tokdir, out, &err) != 0))
        return cli_error("%s", err.msg);
    fprintf(stderr, "wrote %s: %s, %llu parameters, %s\n", out, c.arch == S1C_ARCH_QWEN2 ? "qwen2" : "llama",
            (unsigned long long)s1c_config_n_params(&c), dtype);
    return 0;
}
