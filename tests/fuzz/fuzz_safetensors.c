/* libFuzzer target: the safetensors reader (one file from memory). A parse either fails
 * cleanly or yields tensors whose views lie inside the input; reading every tensor's bytes
 * here is what lets ASan catch one that does not. */
#include <stdint.h>
#include <string.h>

#include "s1c/formats.h"

static volatile uint64_t sink;

static uint64_t sum_bytes(const void *p, uint64_t n) {
    const uint8_t *b = p;
    uint64_t s = 0;
    for (uint64_t i = 0; i < n; i++) s += b[i];
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_set s;
    s1c_err err = {{0}};
    if (st_parse(&s, data, size, "<fuzz>", &err) == 0) {
        uint64_t sum = s.metadata_json ? strlen(s.metadata_json) : 0;
        for (uint64_t i = 0; i < s.n_tensors; i++) {
            const s1c_tensor *t = &s.tensors[i];
            if (st_find(&s, t->name) != t) __builtin_trap(); /* names are unique */
            /* the view's size must agree with its shape and dtype */
            uint64_t want;
            if (s1c_dtype_nbytes(t->dtype, s1c_tensor_nelem(t), &want) != 0 || want != t->nbytes) __builtin_trap();
            sum += sum_bytes(t->data, t->nbytes);
        }
        sink = sum;
    } else if (err.msg[0] == 0) {
        __builtin_trap(); /* a failure must say why */
    }
    st_close(&s); /* also after a failed parse: st_parse leaves s zeroed */
    return 0;
}
