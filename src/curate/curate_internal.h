/* Internal helpers of the data layer (src/curate, src/distill). */
#ifndef S1C_CURATE_INTERNAL_H
#define S1C_CURATE_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "s1c/curate.h"

/* A map from 64-bit keys to values (open addressing; key 0 is stored aside). */
typedef struct cur_map {
    uint64_t *key;
    size_t *val;
    size_t cap, n;
    bool has_zero;
    size_t zero_val;
} cur_map;
int cur_map_put(cur_map *m, uint64_t key, size_t val); /* keeps an existing value; -1 on OOM */
int cur_map_set(cur_map *m, uint64_t key, size_t val); /* inserts or replaces; -1 on OOM */
bool cur_map_get(const cur_map *m, uint64_t key, size_t *val);
void cur_map_free(cur_map *m);

/* A growing string. */
typedef struct cur_sb {
    char *p;
    size_t len, cap;
    bool oom;
} cur_sb;
void cur_sb_printf(cur_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cur_sb_put(cur_sb *b, const char *s, size_t n);

/* strdup that returns NULL only on OOM. */
char *cur_strdup(const char *s);
/* Copies s replacing invalid UTF-8 bytes by U+FFFD (everything else kept). */
char *cur_utf8_fix(const char *s, size_t n);
/* Copies s replacing invalid UTF-8 bytes by U+FFFD and control bytes by '?', cut to max bytes. */
char *cur_printable(const char *s, size_t n, size_t max);

#endif
