/* s1c convert: Hugging Face directory <-> GGUF, and re-encoding of the weights. The work is
 * s1c_model_convert (src/model/convert.c); this file only parses the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "s1c/model.h"
#include "s1c/text.h"

static const char *convert_help =
    "usage: s1c convert IN OUT [--type f32|bf16|f16|q8_0|q4_0|q4_k_m|q4_k_s|q5_k_m|q5_k_s|q6_k]\n"
    "\n"
    "  IN    a Hugging Face model directory, a .gguf file or a llama2.c .bin\n"
    "  OUT   a .gguf file (llama.cpp's qwen2/llama layout, tokenizer included), or else a\n"
    "        directory to write as a Hugging Face model (config.json, model.safetensors,\n"
    "        vocab.json, merges.txt, tokenizer_config.json)\n"
    "  --type T   type of the weight matrices (default: as in IN; f32 for a quantized IN).\n"
    "             q8_0 and q4_0 are for GGUF output; norms and biases stay f32 in GGUF.\n"
    "             q4_k_m, q4_k_s, q5_k_m, q5_k_s, q6_k: llama-quantize's mixtures (GGUF only),\n"
    "             byte for byte as llama.cpp's llama-quantize writes them (no imatrix): most\n"
    "             matrices in the K-quant, output/embedding and some attn_v/ffn_down layers in\n"
    "             more bits, rows that are not a multiple of 256 in q5_0/q5_1/q8_0 (or f16).\n"
    "\n"
    "examples:\n"
    "  s1c convert /models/Qwen2.5-0.5B-Instruct qwen05b-q8_0.gguf --type q8_0\n"
    "  s1c convert qwen05b-f32.gguf /tmp/qwen05b-hf --type bf16\n"
    "  s1c convert /models/Qwen2.5-7B-Instruct qwen7b-q4_k_m.gguf --type q4_k_m\n";

/* --type: the dtype or mixture, or -1 after reporting a bad name. Upper case is accepted
 * too, as llama-quantize spells its types (Q4_K_M). */
static int parse_type(const char *cmd, const char *type) {
    static const struct { const char *name; int dtype; } types[] = {
        {"f32", S1C_F32}, {"f16", S1C_F16}, {"bf16", S1C_BF16}, {"q8_0", S1C_Q8_0}, {"q4_0", S1C_Q4_0},
        {"q4_k_m", S1C_MIX(S1C_FTYPE_Q4_K_M)}, {"q4_k_s", S1C_MIX(S1C_FTYPE_Q4_K_S)}, {"q5_k_m", S1C_MIX(S1C_FTYPE_Q5_K_M)},
        {"q5_k_s", S1C_MIX(S1C_FTYPE_Q5_K_S)}, {"q6_k", S1C_MIX(S1C_FTYPE_Q6_K)}};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
        if (!strcasecmp(type, types[k].name)) return types[k].dtype;
    cli_error("%s: --type must be f32, bf16, f16, q8_0, q4_0, q4_k_m, q4_k_s, q5_k_m, q5_k_s or q6_k, not '%s'", cmd, type);
    return -1;
}

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
    if (type && (dt = parse_type("convert", type)) < 0) return 1;
    s1c_err err = {{0}};
    if (s1c_model_convert(in, out, dt, &err) != 0) return cli_error("%s", err.msg);
    fprintf(stderr, "wrote %s\n", out);
    return 0;
}

/* ------------------------------------------------------------------ export-ollama */

static const char *export_help =
    "usage: s1c export-ollama MODEL DIR [--type f32|bf16|f16|q8_0|q4_0|q4_k_m|q4_k_s|q5_k_m|q5_k_s|q6_k]\n"
    "                         [--ctx N]\n"
    "\n"
    "Writes DIR/model.gguf, DIR/Modelfile (s1's prompt layout as an Ollama template: ChatML with\n"
    "Qwen's default system prompt, the assistant turn opened with <|im_start|>think; stop tokens;\n"
    "greedy decoding as s1 evaluated) and DIR/README.md on budget forcing in Ollama. Then:\n"
    "  ollama create s1 -f DIR/Modelfile && ollama run s1\n"
    "\n"
    "example:\n"
    "  s1c export-ollama runs/sft/latest ollama-s1 --type q8_0\n";

/* s1's inference layout (SPEC.md §5) in Ollama's Go template language. */
static const char *modelfile_template =
    "FROM ./model.gguf\n"
    "TEMPLATE \"\"\"{{- if .System }}<|im_start|>system\n"
    "{{ .System }}<|im_end|>\n"
    "{{ else }}<|im_start|>system\n"
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    "{{ end }}\n"
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n"
    "{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"
    "<|im_start|>think\"\"\"\n"
    "PARAMETER stop \"<|im_end|>\"\n"
    "PARAMETER stop \"<|endoftext|>\"\n"
    "PARAMETER temperature 0\n"
    "PARAMETER num_ctx %d\n";

static const char *ollama_readme =
    "# Budget forcing with this model in Ollama\n"
    "\n"
    "The Modelfile opens every answer with s1's thinking delimiter, so the model thinks first and\n"
    "then writes `<|im_start|>answer` and its answer. What Ollama can do on its own:\n"
    "\n"
    "- **A cap on the whole output**: `num_predict` limits thinking and answer together, not the\n"
    "  thinking alone; a run cut there has no answer.\n"
    "- **A thinking budget by hand (s1's client-side loop)**: call `/api/generate` with\n"
    "  `\"raw\": true`, the prompt in the layout above, `num_predict` = the budget and the stop\n"
    "  sequence `<|im_start|>`. If it stopped at the budget, send the prompt + the thinking +\n"
    "  `\\n<|im_start|>answer\\nFinal Answer:` again (raw) for the answer. To extend thinking (\"Wait\"),\n"
    "  append `Wait` instead of the answer delimiter and continue. Ollama reuses its cache for the\n"
    "  shared prefix, but the text is re-tokenized each round (s1c never does that).\n"
    "\n"
    "What needs s1c: an exact token budget inside decoding (`thinking_tokens <= max_thinking_tokens`\n"
    "always), a minimum (`--think-min`), forced \"Wait\"s counted in the budget, and the accounting\n"
    "of SPEC.md §8 per request: `s1c generate --think-max N --waits K`, `s1c chat`, `s1c eval`.\n";

int cmd_export_ollama(int argc, char **argv) {
    const char *model = NULL, *dir = NULL, *type = NULL;
    int ctx = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool ok = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { fputs(export_help, stdout); return 0; }
        else if (!strcmp(a, "--type")) ok = arg_str(argc, argv, &i, &type);
        else if (!strcmp(a, "--ctx")) ok = arg_int(argc, argv, &i, 1, 1 << 24, &ctx);
        else if (a[0] == '-' && a[1]) return cli_error("export-ollama: unknown option '%s' (see s1c export-ollama --help)", a);
        else if (!model) model = a;
        else if (!dir) dir = a;
        else return cli_error("export-ollama: unexpected argument '%s'", a);
        if (!ok) return 1;
    }
    if (!model || !dir) return cli_error("export-ollama: MODEL and DIR are required (see s1c export-ollama --help)");
    int dt = -1;
    if (type && (dt = parse_type("export-ollama", type)) < 0) return 1;
    s1c_err err = {{0}};
    char *gguf = s1c_path_join(dir, "model.gguf"), *mf = s1c_path_join(dir, "Modelfile"), *rd = s1c_path_join(dir, "README.md");
    s1c_tokenizer *tok = NULL;
    s1c_model *m = NULL;
    char text[2048];
    int rc = 1;
    /* the model must carry a ChatML vocabulary (the template writes <|im_start|>): checked first */
    if (s1c_tok_load(&tok, model, 0, &err) != 0) goto fail;
    int tmpl = s1c_tok_chat_template(tok);
    if (tmpl != S1C_CHAT_QWEN25 && tmpl != S1C_CHAT_CHATML) {
        s1c_fail(&err, "%s: export-ollama writes s1's ChatML layout; this model's vocabulary is not ChatML", model);
        goto fail;
    }
    if (s1c_mkdir_p(dir, &err) != 0 || s1c_model_convert(model, gguf, dt, &err) != 0 || s1c_model_open(&m, gguf, &err) != 0) goto fail;
    snprintf(text, sizeof text, modelfile_template, ctx ? ctx : s1c_model_config(m)->max_seq_len);
    if (s1c_write_file_atomic(mf, text, strlen(text), &err) != 0 || s1c_write_file_atomic(rd, ollama_readme, strlen(ollama_readme), &err) != 0)
        goto fail;
    fprintf(stderr, "wrote %s, %s and %s\n", gguf, mf, rd);
    rc = 0;
    goto done;
fail:
    cli_error("%s", err.msg);
done:
    s1c_model_free(m);
    s1c_tok_free(tok);
    free(gguf); free(mf); free(rd);
    return rc;
}
