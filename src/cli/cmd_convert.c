/* s1c convert: Hugging Face directory <-> GGUF, and re-encoding of the weights. The work is
 * s1c_model_convert (src/model/convert.c); this file only parses the command line. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "s1c/model.h"

static const char *convert_help =
    "usage: s1c convert IN OUT [--type f32|bf16|f16|q8_0|q4_0]\n"
    "\n"
    "  IN    a Hugging Face model directory, a .gguf file or a llama2.c .bin\n"
    "  OUT   a .gguf file (llama.cpp's qwen2/llama layout, tokenizer included), or else a\n"
    "        directory to write as a Hugging Face model (config.json, model.safetensors,\n"
    "        vocab.json, merges.txt, tokenizer_config.json)\n"
    "  --type T   type of the weight matrices (default: as in IN; f32 for a quantized IN).\n"
    "             q8_0 and q4_0 are for GGUF output; norms and biases stay f32 in GGUF.\n"
    "\n"
    "examples:\n"
    "  s1c convert /models/Qwen2.5-0.5B-Instruct qwen05b-q8_0.gguf --type q8_0\n"
    "  s1c convert qwen05b-f32.gguf /tmp/qwen05b-hf --type bf16\n";

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(convert_help, stdout); return 0; }
        else if (!strcmp(a, "--type")) ok = arg_str(argc, argv, &i, &type);
        else if (a[0] == '-' && a[1]) return cli_error("convert: unknown option '%s' (see s1c convert --help)", a);
        else if (!in) in = a;
        else if (!out) out = a;
        else return cli_error("convert: unexpected argument '%s' (IN and OUT are already given)", a);
        if (!ok) return 1;
    }
    if (!in || !out) return cli_error("convert: IN and OUT are required (see s1c convert --help)");
    int dt = -1;
    if (type) {
        static const struct { const char *name; int dtype; } types[] = {
            {"f32", S1C_F32}, {"f16", S1C_F16}, {"bf16", S1C_BF16}, {"q8_0", S1C_Q8_0}, {"q4_0", S1C_Q4_0}};
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
            if (!strcmp(type, types[k].name)) dt = types[k].dtype;
        if (dt < 0) return cli_error("convert: --type must be f32, bf16, f16, q8_0 or q4_0, not '%s'", type);
    }
    s1c_err err = {{0}};
    if (s1c_model_convert(in, out, dt, &err) != 0) return cli_error("%s", err.msg);
    fprintf(stderr, "wrote %s\n", out);
    return 0;
}
