/* A bounds-checked little-endian reader over a byte range: every read either succeeds or
 * leaves the cursor marked as failed, so parsers check once per record, not per byte. */
#ifndef S1C_CURSOR_H
#define S1C_CURSOR_H

#include <stdint.h>
#include <string.h>
#include <stdbool.h>

typedef struct cursor {
    const uint8_t *base;
    uint64_t size, pos;
    bool bad;
} cursor;

static inline bool cur_need(cursor *c, uint64_t n) {
    if (c->bad || n > c->size - c->pos) {
        c->bad = true;
        return false;
    }
    return true;
}

static inline const uint8_t *cur_take(cursor *c, uint64_t n) {
    if (!cur_need(c, n)) return NULL;
    const uint8_t *p = c->base + c->pos;
    c->pos += n;
    return p;
}

#define CUR_READ_FN(name, type)                         \
    static inline type name(cursor *c) {                \
        type v = 0;                                     \
        const uint8_t *p = cur_take(c, sizeof(type));   \
        if (p) memcpy(&v, p, sizeof(type));             \
        return v;                                       \
    }
CUR_READ_FN(cur_u8, uint8_t)
CUR_READ_FN(cur_u16, uint16_t)
CUR_READ_FN(cur_u32, uint32_t)
CUR_READ_FN(cur_u64, uint64_t)
CUR_READ_FN(cur_i32, int32_t)
CUR_READ_FN(cur_f32, float)
CUR_READ_FN(cur_f64, double)
#undef CUR_READ_FN

static inline uint64_t cur_left(const cursor *c) { return c->bad ? 0 : c->size - c->pos; }

#endif
