/* Qwen2.5's byte-level BPE against llama.cpp's 46 test vectors (ids from the Hugging Face
 * tokenizer), loaded three ways: vocab.json + merges.txt, a tokenizer.json built from them,
 * and a GGUF `gpt2`/`qwen2` vocabulary; lossless round trips over MATH500/AIME problems and
 * arbitrary bytes; special tokens only on request; s1's formats byte for byte (SPEC.md). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "s1c/text.h"
#include "testutil.h"

static s1c_tokenizer *hf, *hf_json, *gg;

static char *data_path(const char *rel) { return tu_path("S1C_DATA", rel); }

/* A tokenizer.json in the layout tokenizers writes (model.vocab, model.merges as
 * [a, b] pairs, added_tokens, the Split pre-tokenizer), built from vocab.json + merges.txt. */
static char *write_tokenizer_json(void) {
    char *vp = data_path("qwen2.5-tokenizer/vocab.json"), *mp = data_path("qwen2.5-tokenizer/merges.txt");
    char *tp = data_path("qwen2.5-tokenizer/tokenizer_config.json");
    char *vocab = tu_read(vp, NULL), *merges = tu_read(mp, NULL), *tcfg = tu_read(tp, NULL);
    cJSON *root = cJSON_CreateObject(), *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddItemToObject(model, "vocab", cJSON_Parse(vocab));
    cJSON *ml = cJSON_AddArrayToObject(model, "merges");
    for (char *line = strtok(merges, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "#version", 8)) continue;
        char *sp = strchr(line, ' ');
        *sp = 0;
        cJSON *pair = cJSON_CreateArray();
        cJSON_AddItemToArray(pair, cJSON_CreateString(line));
        cJSON_AddItemToArray(pair, cJSON_CreateString(sp + 1));
        cJSON_AddItemToArray(ml, pair);
    }
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens"), *cfg = cJSON_Parse(tcfg);
    for (cJSON *e = cJSON_GetObjectItem(cfg, "added_tokens_decoder")->child; e; e = e->next) {
        cJSON *a = cJSON_CreateObject();
        cJSON_AddNumberToObject(a, "id", atoi(e->string));
        cJSON_AddStringToObject(a, "content", cJSON_GetObjectItem(e, "content")->valuestring);
        cJSON_AddBoolToObject(a, "special", cJSON_IsTrue(cJSON_GetObjectItem(e, "special")));
        cJSON_AddItemToArray(added, a);
    }
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "Sequence");
    cJSON *list = cJSON_AddArrayToObject(pre, "pretokenizers");
    cJSON *split = cJSON_CreateObject();
    cJSON_AddStringToObject(split, "type", "Split");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(split, "pattern"), "Regex",
                            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");
    cJSON_AddItemToArray(list, split);
    char *out = tu_path("S1C_TMP", "qwen_tokenizer.json");
    char *text = cJSON_PrintUnformatted(root);
    tu_write(out, text, strlen(text));
    free(text); free(vocab); free(merges); free(tcfg); free(vp); free(mp); free(tp);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    return out;
}

/* A GGUF vocabulary as llama.cpp's converter lays it out (tokens, types, merges, pre). */
static char *write_vocab_gguf(const s1c_tokenizer *t) {
    int n = s1c_tok_n_vocab(t);
    char **toks = malloc((size_t)n * sizeof(char *));
    int32_t *types = malloc((size_t)n * sizeof(int32_t));
    /* the token strings are the vocab.json keys: read them back from the file */
    char *vp = data_path("qwen2.5-tokenizer/vocab.json"), *tp = data_path("qwen2.5-tokenizer/tokenizer_config.json");
    char *vtext = tu_read(vp, NULL), *ttext = tu_read(tp, NULL);
    cJSON *vocab = cJSON_Parse(vtext), *cfg = cJSON_Parse(ttext);
    for (int i = 0; i < n; i++) { toks[i] = NULL; types[i] = 1; }
    for (cJSON *e = vocab->child; e; e = e->next) toks[(int)e->valuedouble] = e->string;
    for (cJSON *e = cJSON_GetObjectItem(cfg, "added_tokens_decoder")->child; e; e = e->next) {
        int id = atoi(e->string);
        toks[id] = cJSON_GetObjectItem(e, "content")->valuestring;
        types[id] = cJSON_IsTrue(cJSON_GetObjectItem(e, "special")) ? 3 : 4;
    }
    char *mp = data_path("qwen2.5-tokenizer/merges.txt");
    char *mtext = tu_read(mp, NULL);
    int nm = 0;
    char **merges = malloc(200000 * sizeof(char *));
    for (char *line = strtok(mtext, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, "#version", 8)) merges[nm++] = line;
    gguf_writer *w = gguf_writer_new();
    gguf_w_str(w, "general.architecture", "qwen2");
    gguf_w_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_w_str(w, "tokenizer.ggml.pre", "qwen2");
    gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)n);
    gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)n);
    gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, (uint64_t)nm);
    gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 151645);
    char *out = tu_path("S1C_TMP", "qwen_vocab.gguf");
    s1c_err err;
    assert_int_equal(gguf_writer_write(w, out, &err), 0);
    gguf_writer_free(w);
    cJSON_Delete(vocab); cJSON_Delete(cfg);
    free(vtext); free(ttext); free(mtext); free(merges); free(toks); free(types); free(vp); free(tp); free(mp);
    return out;
}

static int setup(void **state) {
    (void)state;
    s1c_err err;
    char *dir = data_path("qwen2.5-tokenizer");
    if (s1c_tok_load(&hf, dir, 0, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return -1; }
    char *tj = write_tokenizer_json();
    if (s1c_tok_load(&hf_json, tj, 0, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return -1; }
    char *gp = write_vocab_gguf(hf);
    if (s1c_tok_load(&gg, gp, 0, &err) != 0) { fprintf(stderr, "%s\n", err.msg); return -1; }
    free(dir); free(tj); free(gp);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    s1c_tok_free(hf);
    s1c_tok_free(hf_json);
    s1c_tok_free(gg);
    return 0;
}


static void test_vectors_vocab_merges(void **s) { (void)s; tu_check_qwen2_vectors(hf, "vocab.json + merges.txt"); }
static void test_vectors_tokenizer_json(void **s) { (void)s; tu_check_qwen2_vectors(hf_json, "tokenizer.json"); }
static void test_vectors_gguf(void **s) { (void)s; tu_check_qwen2_vectors(gg, "GGUF"); }

/* Encodes then decodes; the result must be `want` (want_len bytes). */
static void roundtrip_to(const char *text, size_t len, const char *want, size_t want_len) {
    int32_t *ids;
    int n;
    s1c_err err;
    assert_int_equal(s1c_tok_encode_ex(hf, text, len, 0, &ids, &n, &err), 0);
    char *out = malloc(len * 4 + 64);
    size_t k = 0;
    s1c_detok d = {0};
    for (int i = 0; i < n; i++) {
        char piece[512];
        int pl = s1c_tok_decode(hf, i ? ids[i - 1] : -1, ids[i], piece, 512);
        k += (size_t)s1c_detok_push(&d, piece, pl, out + k, 600);
    }
    k += (size_t)s1c_detok_flush(&d, out + k, 64);
    if (k != want_len || memcmp(out, want, want_len) != 0) fail_msg("round trip of %zu bytes gave %zu bytes, not the %zu expected", len, k, want_len);
    free(out);
    free(ids);
}

static void roundtrip(const char *text, size_t len) { roundtrip_to(text, len, text, len); }

/* What Hugging Face's pipeline keeps of arbitrary bytes: valid UTF-8 runs in NFC, and (s1c's
 * extension) every other byte as it is. */
static size_t expected_bytes(const uint8_t *s, size_t n, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n) { /* extend over whole valid characters */
            utf8proc_int32_t cp;
            utf8proc_ssize_t l = utf8proc_iterate(s + j, (utf8proc_ssize_t)(n - j), &cp);
            if (l <= 0) break;
            j += (size_t)l;
        }
        if (j == i) { out[k++] = (char)s[i++]; continue; }
        uint8_t *nfc = NULL;
        utf8proc_ssize_t l = utf8proc_map(s + i, (utf8proc_ssize_t)(j - i), &nfc, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        memcpy(out + k, nfc, (size_t)l);
        k += (size_t)l;
        free(nfc);
        i = j;
    }
    return k;
}

/* Every problem of the shipped benchmarks. They are NFC already, so the round trip is exact. */
static void test_roundtrip_benchmarks(void **s) {
    (void)s;
    const char *files[][2] = {{"math500/test.jsonl", "problem"}, {"aime24/aime24.jsonl", "prompt"},
                              {"aime24/test.jsonl", "problem"}, {"aime25/aime25.jsonl", "prompt"}};
    int total = 0;
    for (int f = 0; f < 4; f++) {
        char *path = data_path(files[f][0]);
        char *text = tu_read(path, NULL);
        assert_non_null(text);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            cJSON *o = cJSON_Parse(line);
            cJSON *q = cJSON_GetObjectItem(o, files[f][1]);
            if (!cJSON_IsString(q)) q = cJSON_GetObjectItem(o, "question");
            assert_true(cJSON_IsString(q));
            roundtrip(q->valuestring, strlen(q->valuestring));
            total++;
            cJSON_Delete(o);
        }
        free(text);
        free(path);
    }
    printf("round trip: %d problems\n", total);
    assert_true(total >= 560);
}

static void test_roundtrip_bytes(void **s) {
    (void)s;
    /* invalid UTF-8, NUL bytes, lone continuation bytes, surrogates: all encoded byte-wise */
    const char cases[][12] = {"\xff\xfe", "a\0b", "\x80x", "\xed\xa0\x80", "\xc3", "\xe2\x82", "ok \xf5!"};
    const size_t lens[] = {2, 3, 2, 3, 1, 2, 5};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) roundtrip(cases[i], lens[i]);
    s1c_rng r;
    s1c_rng_seed(&r, 1);
    char buf[300], want[1200];
    for (int it = 0; it < 300; it++) {
        size_t n = s1c_rng_u64(&r) % sizeof buf;
        for (size_t k = 0; k < n; k++) buf[k] = (char)(s1c_rng_u64(&r) % 256);
        roundtrip_to(buf, n, want, expected_bytes((const uint8_t *)buf, n, want));
    }
    /* combining marks compose (NFC): e + U+0301 -> U+00E9 */
    roundtrip_to("e\xcc\x81", 3, "\xc3\xa9", 2);
}

static void test_special_tokens(void **s) {
    (void)s;
    s1c_err err;
    int32_t *ids;
    int n;
    const char *t = "<|im_start|>user\nHi<|im_end|>";
    assert_int_equal(s1c_tok_encode_ex(hf, t, strlen(t), S1C_ENC_SPECIAL, &ids, &n, &err), 0);
    assert_true(n >= 4);
    assert_int_equal(ids[0], 151644);
    assert_int_equal(ids[n - 1], 151645);
    free(ids);
    /* without the flag the same text never yields a special id */
    assert_int_equal(s1c_tok_encode_ex(hf, t, strlen(t), 0, &ids, &n, &err), 0);
    for (int i = 0; i < n; i++) assert_true(ids[i] < 151643);
    free(ids);
    const char *u = "x<|fim_pad|>y<tool_call>";
    assert_int_equal(s1c_tok_encode_ex(hf, u, strlen(u), 0, &ids, &n, &err), 0);
    for (int i = 0; i < n; i++) assert_true(ids[i] < 151643); /* non-special added tokens too */
    free(ids);
    assert_int_equal(s1c_tok_encode_ex(hf, u, strlen(u), S1C_ENC_SPECIAL, &ids, &n, &err), 0);
    bool fim = false, tool = false;
    for (int i = 0; i < n; i++) { fim |= ids[i] == 151662; tool |= ids[i] == 151657; }
    assert_true(fim && tool);
    free(ids);
    assert_int_equal(s1c_tok_eos(hf), 151645);
}

/* SPEC.md §3 and §5, written out by hand from the spec's text. */
static void test_s1_formats(void **s) {
    (void)s;
    s1c_err err;
    const char *traces[] = {"  First, 2+2.", "That is 4.\n"};
    size_t loss;
    char *sample = s1c_s1_train_sample(NULL, "What is 2+2?", traces, 2, " 4 ", &loss, &err);
    const char *want =
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n<|im_start|>think\nFirst, 2+2.\nThat is 4.\n<|im_start|>answer\nAnswer: 4<|im_end|>\n";
    assert_string_equal(sample, want);
    assert_string_equal(sample + loss, "<|im_start|>think\nFirst, 2+2.\nThat is 4.\n<|im_start|>answer\nAnswer: 4<|im_end|>\n");
    free(sample);
    sample = s1c_s1_train_sample(NULL, "Q", traces, 1, "The Answer: 4", &loss, &err);
    assert_non_null(strstr(sample, "<|im_start|>answer\nThe Answer: 4<|im_end|>\n")); /* no second "Answer: " */
    /* the token ids of the sample are those of its pieces: specials + plain segments */
    int32_t *ids, *a;
    int n, na;
    assert_int_equal(s1c_tok_encode_ex(hf, sample, strlen(sample), S1C_ENC_SPECIAL, &ids, &n, &err), 0);
    assert_int_equal(ids[0], 151644);
    assert_int_equal(ids[n - 1], 198); /* "\n" after the final <|im_end|> */
    assert_int_equal(ids[n - 2], 151645);
    const char *q = "Q";
    assert_int_equal(s1c_tok_encode_ex(hf, q, 1, 0, &a, &na, &err), 0);
    bool found = false; /* "user\nQ" encodes as "user", "\n", "Q": Q's id appears alone */
    for (int i = 0; i < n; i++) found |= ids[i] == a[0];
    assert_true(found && na == 1);
    free(a); free(ids); free(sample);
    char *p = s1c_s1_prompt(NULL, "What is 2+2?", NULL, &err);
    assert_string_equal(p, "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
                           "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<|im_start|>think");
    free(p);
}

static void test_chat_templates(void **s) {
    (void)s;
    s1c_err err;
    s1c_chat_msg conv[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "<think>\nhmm\n</think>\n\nHello!"}, {"user", "2+2?"}};
    char *r = s1c_chat_render(S1C_CHAT_QWQ, conv, 4, true, &err);
    assert_string_equal(r, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                           "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n");
    free(r);
    r = s1c_chat_render(S1C_CHAT_R1_DISTILL, conv, 4, true, &err);
    assert_string_equal(r, "<\xef\xbd\x9c" "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>Be brief.<\xef\xbd\x9cUser\xef\xbd\x9c>Hi"
                           "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>\n\nHello!<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"
                           "<\xef\xbd\x9cUser\xef\xbd\x9c>2+2?<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\n");
    free(r);
    char *jp = data_path("llama.cpp-qwen2-vocab-test/Qwen-Qwen2.5-7B-Instruct.jinja");
    char *jinja = tu_read(jp, NULL);
    assert_int_equal(s1c_chat_detect(jinja), S1C_CHAT_QWEN25);
    free(jinja); free(jp);
    s1c_chat_msg bad[] = {{"tool", "x"}};
    assert_null(s1c_chat_render(S1C_CHAT_QWEN25, bad, 1, false, &err));
}

/* Qwen2.5's real Jinja template rendered by Jinja2 (tests/ref/render_chat_jinja.py) */
static void test_qwen25_against_jinja(void **s) {
    (void)s;
    char *out = tu_path("S1C_TMP", "jinja_cases.jsonl");
    char *jp = data_path("llama.cpp-qwen2-vocab-test/Qwen-Qwen2.5-7B-Instruct.jinja");
    int rc = tu_system("/usr/bin/python3 %s/tests/ref/render_chat_jinja.py %s > %s 2>/dev/null", tu_env("S1C_SRC"), jp, out);
    if (rc == 77) { printf("python3-jinja2 missing: skipped\n"); skip(); }
    assert_int_equal(rc, 0);
    char *text = tu_read(out, NULL);
    int n_cases = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line), *msgs = cJSON_GetObjectItem(o, "messages");
        s1c_chat_msg m[8];
        int n = 0;
        for (cJSON *e = msgs->child; e; e = e->next, n++)
            m[n] = (s1c_chat_msg){cJSON_GetObjectItem(e, "role")->valuestring, cJSON_GetObjectItem(e, "content")->valuestring};
        s1c_err err;
        char *r = s1c_chat_render(S1C_CHAT_QWEN25, m, n, cJSON_IsTrue(cJSON_GetObjectItem(o, "add_generation_prompt")), &err);
        assert_string_equal(r, cJSON_GetObjectItem(o, "expected")->valuestring);
        free(r);
        cJSON_Delete(o);
        n_cases++;
    }
    assert_true(n_cases >= 6);
    free(text); free(out); free(jp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_vocab_merges), cmocka_unit_test(test_vectors_tokenizer_json),
        cmocka_unit_test(test_vectors_gguf),         cmocka_unit_test(test_roundtrip_benchmarks),
        cmocka_unit_test(test_roundtrip_bytes),      cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_s1_formats),           cmocka_unit_test(test_chat_templates),
        cmocka_unit_test(test_qwen25_against_jinja),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
