/* GGUF v3 (and v2) reader and writer. Layout (ggml docs/gguf.md): magic "GGUF", u32 version,
 * u64 tensor count, u64 metadata count, metadata key/values, tensor infos (name, n_dims,
 * dims innermost first, type, offset), padding to general.alignment (default 32), data. */
#include "s1c/formats.h"
#include "cursor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_ARRAY_DEPTH 8

static const char *gguf_type_names[GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};

const char *gguf_type_name(int type) {
    return (type >= 0 && type < GGUF_TYPE_COUNT) ? gguf_type_names[type] : "unknown";
}

static int scalar_size(int type) {
    switch (type) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}

static bool read_str(cursor *c, s1c_str *s) {
    uint64_t n = cur_u64(c);
    const uint8_t *p = cur_take(c, n);
    if (!p) return false;
    s->p = (const char *)p;
    s->len = n;
    return true;
}

/* Reads one scalar of `type` into kv->v. */
static void read_scalar(cursor *c, int type, gguf_kv *kv) {
    switch (type) {
    case GGUF_U8: case GGUF_BOOL: kv->v.u = cur_u8(c); break;
    case GGUF_I8: kv->v.i = (int8_t)cur_u8(c); break;
    case GGUF_U16: kv->v.u = cur_u16(c); break;
    case GGUF_I16: kv->v.i = (int16_t)cur_u16(c); break;
    case GGUF_U32: kv->v.u = cur_u32(c); break;
    case GGUF_I32: kv->v.i = cur_i32(c); break;
    case GGUF_F32: kv->v.f = cur_f32(c); break;
    case GGUF_U64: kv->v.u = cur_u64(c); break;
    case GGUF_I64: kv->v.i = (int64_t)cur_u64(c); break;
    case GGUF_F64: kv->v.f = cur_f64(c); break;
    default: c->bad = true;
    }
}

/* Skips an array body (used for nested arrays, which are kept but not decoded). */
static bool skip_array(cursor *c, int depth) {
    if (depth > GGUF_MAX_ARRAY_DEPTH) return false;
    uint32_t t = cur_u32(c);
    uint64_t n = cur_u64(c);
    if (c->bad) return false;
    if (t == GGUF_STRING) {
        for (uint64_t i = 0; i < n; i++) {
            s1c_str s;
            if (!read_str(c, &s)) return false;
        }
        return true;
    }
    if (t == GGUF_ARRAY) {
        for (uint64_t i = 0; i < n; i++)
            if (!skip_array(c, depth + 1)) return false;
        return true;
    }
    int es = scalar_size((int)t);
    if (es == 0 || n > cur_left(c) / (uint64_t)es) return false;
    return cur_take(c, n * (uint64_t)es) != NULL;
}

static int read_array(cursor *c, gguf_kv *kv, const char *name, s1c_err *err) {
    uint64_t start = c->pos;
    kv->arr_type = (int)cur_u32(c);
    kv->arr_n = cur_u64(c);
    if (c->bad) return s1c_fail(err, "%s: truncated array '%s'", name, kv->key);
    uint64_t n = kv->arr_n;
    if (kv->arr_type == GGUF_STRING) {
        /* every string takes at least its 8-byte length: bound n before allocating */
        if (n > cur_left(c) / 8) return s1c_fail(err, "%s: array '%s' has %llu strings, more than the file holds", name, kv->key, (unsigned long long)n);
        kv->arr_strs = malloc((n ? n : 1) * sizeof(s1c_str));
        if (!kv->arr_strs) return s1c_fail(err, "%s: out of memory for array '%s'", name, kv->key);
        for (uint64_t i = 0; i < n; i++)
            if (!read_str(c, &kv->arr_strs[i]))
                return s1c_fail(err, "%s: truncated string %llu of array '%s'", name, (unsigned long long)i, kv->key);
        kv->arr_data = c->base + start;
        return 0;
    }
    if (kv->arr_type == GGUF_ARRAY) {
        kv->arr_data = c->base + c->pos;
        for (uint64_t i = 0; i < n; i++)
            if (!skip_array(c, 1)) return s1c_fail(err, "%s: malformed nested array '%s'", name, kv->key);
        return 0;
    }
    int es = scalar_size(kv->arr_type);
    if (es == 0) return s1c_fail(err, "%s: array '%s' has unknown element type %d", name, kv->key, kv->arr_type);
    if (n > cur_left(c) / (uint64_t)es) return s1c_fail(err, "%s: array '%s' (%llu elements) runs past the end of the file", name, kv->key, (unsigned long long)n);
    kv->arr_data = cur_take(c, n * (uint64_t)es);
    return 0;
}

static int read_kv(cursor *c, gguf_kv *kv, const char *name, uint64_t idx, s1c_err *err) {
    s1c_str key;
    if (!read_str(c, &key)) return s1c_fail(err, "%s: truncated metadata key #%llu", name, (unsigned long long)idx);
    kv->key = malloc(key.len + 1);
    if (!kv->key) return s1c_fail(err, "%s: out of memory", name);
    memcpy(kv->key, key.p, key.len);
    kv->key[key.len] = 0;
    kv->type = (int)cur_u32(c);
    if (c->bad) return s1c_fail(err, "%s: truncated metadata '%s'", name, kv->key);
    if (kv->type == GGUF_STRING) {
        if (!read_str(c, &kv->v.s)) return s1c_fail(err, "%s: truncated string value of '%s'", name, kv->key);
        return 0;
    }
    if (kv->type == GGUF_ARRAY) return read_array(c, kv, name, err);
    if (scalar_size(kv->type) == 0)
        return s1c_fail(err, "%s: metadata '%s' has unknown value type %d", name, kv->key, kv->type);
    read_scalar(c, kv->type, kv);
    if (c->bad) return s1c_fail(err, "%s: truncated value of '%s'", name, kv->key);
    return 0;
}

static int read_tensor_info(cursor *c, gguf_file *g, s1c_tensor *t, uint64_t *offset, const char *name, uint64_t idx, s1c_err *err) {
    s1c_str tn;
    if (!read_str(c, &tn)) return s1c_fail(err, "%s: truncated tensor info #%llu", name, (unsigned long long)idx);
    char *tname = malloc(tn.len + 1);
    if (!tname) return s1c_fail(err, "%s: out of memory", name);
    memcpy(tname, tn.p, tn.len);
    tname[tn.len] = 0;
    t->name = tname;
    uint32_t nd = cur_u32(c);
    if (c->bad) return s1c_fail(err, "%s: truncated tensor info '%s'", name, tname);
    if (nd < 1 || nd > S1C_MAX_DIMS) return s1c_fail(err, "%s: tensor '%s' has %u dimensions (1..%d supported)", name, tname, nd, S1C_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t dim = cur_u64(c);
        if (c->bad) return s1c_fail(err, "%s: truncated tensor info '%s'", name, tname);
        if (dim == 0 || dim > INT64_MAX || s1c_mul_overflow(nelem, dim, &nelem))
            return s1c_fail(err, "%s: tensor '%s' has an invalid or overflowing dimension %llu", name, tname, (unsigned long long)dim);
        t->shape[nd - 1 - d] = (int64_t)dim; /* GGUF is innermost first */
    }
    t->dtype = (int)cur_u32(c);
    *offset = cur_u64(c);
    if (c->bad) return s1c_fail(err, "%s: truncated tensor info '%s'", name, tname);
    if (!s1c_dtype_name(t->dtype) || s1c_dtype_type_size(t->dtype) == 0)
        return s1c_fail(err, "%s: tensor '%s' has unknown type id %d", name, tname, t->dtype);
    if (t->shape[t->ndim - 1] % s1c_dtype_block_size(t->dtype) != 0)
        return s1c_fail(err, "%s: tensor '%s': row of %lld is not a whole number of %s blocks", name, tname, (long long)t->shape[t->ndim - 1], s1c_dtype_name(t->dtype));
    if (s1c_dtype_nbytes(t->dtype, nelem, &t->nbytes) != 0)
        return s1c_fail(err, "%s: tensor '%s': its size in bytes overflows", name, tname);
    (void)g;
    return 0;
}

static int cmp_tensor_names(const void *a, const void *b) {
    return strcmp((*(const s1c_tensor *const *)a)->name, (*(const s1c_tensor *const *)b)->name);
}

/* Sorting pointers by name finds a repeated name in O(n log n), however many tensors a
 * crafted file declares. */
static int check_duplicates(const gguf_file *g, const char *name, s1c_err *err) {
    if (g->n_tensors < 2) return 0;
    const s1c_tensor **by_name = malloc(g->n_tensors * sizeof *by_name);
    if (!by_name) return s1c_fail(err, "%s: out of memory", name);
    for (uint64_t i = 0; i < g->n_tensors; i++) by_name[i] = &g->tensors[i];
    qsort(by_name, g->n_tensors, sizeof *by_name, cmp_tensor_names);
    int rc = 0;
    for (uint64_t i = 1; i < g->n_tensors && rc == 0; i++)
        if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0) rc = s1c_fail(err, "%s: tensor '%s' appears twice", name, by_name[i]->name);
    free(by_name);
    return rc;
}

int gguf_parse(gguf_file *g, const uint8_t *data, size_t size, const char *name, s1c_err *err) {
    cursor c = {.base = data, .size = size};
    const uint8_t *magic = cur_take(&c, 4);
    if (!magic || memcmp(magic, "GGUF", 4) != 0) return s1c_fail(err, "%s: not a GGUF file (bad magic)", name);
    g->version = cur_u32(&c);
    if (c.bad) return s1c_fail(err, "%s: truncated GGUF header", name);
    if (g->version != 2 && g->version != 3)
        return s1c_fail(err, "%s: GGUF version %u is not supported (2 and 3 are)", name, g->version);
    g->n_tensors = cur_u64(&c);
    g->n_kv = cur_u64(&c);
    if (c.bad) return s1c_fail(err, "%s: truncated GGUF header", name);
    /* a key/value takes at least 13 bytes, a tensor info at least 32: refuse counts that
     * could never fit before allocating anything for them */
    if (g->n_kv > cur_left(&c) / 13) return s1c_fail(err, "%s: header claims %llu metadata entries, more than the file holds", name, (unsigned long long)g->n_kv);
    if (g->n_tensors > cur_left(&c) / 32) return s1c_fail(err, "%s: header claims %llu tensors, more than the file holds", name, (unsigned long long)g->n_tensors);
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof(gguf_kv));
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(s1c_tensor));
    uint64_t *offsets = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(uint64_t));
    if (!g->kv || !g->tensors || !offsets) { free(offsets); return s1c_fail(err, "%s: out of memory", name); }
    int rc = 0;
    for (uint64_t i = 0; i < g->n_kv && rc == 0; i++) rc = read_kv(&c, &g->kv[i], name, i, err);
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (rc == 0) {
        const gguf_kv *a = gguf_find(g, "general.alignment");
        if (a) {
            if ((a->type != GGUF_U32 && a->type != GGUF_U64) || a->v.u == 0 || (a->v.u & (a->v.u - 1)) != 0 || a->v.u > (1u << 20))
                rc = s1c_fail(err, "%s: general.alignment must be a power of two up to 1 MiB", name);
            else
                g->alignment = a->v.u;
        }
    }
    for (uint64_t i = 0; i < g->n_tensors && rc == 0; i++)
        rc = read_tensor_info(&c, g, &g->tensors[i], &offsets[i], name, i, err);
    if (rc == 0) {
        g->data_offset = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
        if (g->n_tensors > 0 && g->data_offset > size)
            rc = s1c_fail(err, "%s: truncated before the tensor data", name);
    }
    for (uint64_t i = 0; i < g->n_tensors && rc == 0; i++) {
        s1c_tensor *t = &g->tensors[i];
        uint64_t start, end;
        if (offsets[i] % g->alignment != 0)
            rc = s1c_fail(err, "%s: tensor '%s' offset %llu is not aligned to %llu", name, t->name, (unsigned long long)offsets[i], (unsigned long long)g->alignment);
        else if (s1c_add_overflow(g->data_offset, offsets[i], &start) || s1c_add_overflow(start, t->nbytes, &end) || end > size)
            rc = s1c_fail(err, "%s: tensor '%s' (%llu bytes at offset %llu) runs past the end of the file (%zu bytes): truncated?", name, t->name, (unsigned long long)t->nbytes, (unsigned long long)offsets[i], size);
        else
            t->data = data + start;
    }
    free(offsets);
    if (rc == 0) rc = check_duplicates(g, name, err);
    return rc;
}

int gguf_open(gguf_file *g, const char *path, s1c_err *err) {
    memset(g, 0, sizeof *g);
    if (s1c_mfile_open(&g->file, path, err) != 0) return -1;
    if (gguf_parse(g, g->file.data, g->file.size, path, err) != 0) {
        gguf_close(g);
        return -1;
    }
    return 0;
}

void gguf_close(gguf_file *g) {
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) {
            free(g->kv[i].key);
            free(g->kv[i].arr_strs);
        }
    if (g->tensors)
        for (uint64_t i = 0; i < g->n_tensors; i++) free((char *)g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    s1c_mfile_close(&g->file);
    memset(g, 0, sizeof *g);
}

const gguf_kv *gguf_find(const gguf_file *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

const s1c_tensor *gguf_find_tensor(const gguf_file *g, const char *name) {
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].name && strcmp(g->tensors[i].name, name) == 0) return &g->tensors[i];
    return NULL;
}

static const char *gpath(const gguf_file *g) { return g->file.path ? g->file.path : "<memory>"; }

int gguf_get_u64(const gguf_file *g, const char *key, uint64_t *out, s1c_err *err) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    switch (kv->type) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: *out = kv->v.u; return 1;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64:
        if (kv->v.i < 0) break;
        *out = (uint64_t)kv->v.i;
        return 1;
    default: break;
    }
    return s1c_fail(err, "%s: metadata '%s' should be a non-negative integer, is %s", gpath(g), key, gguf_type_name(kv->type));
}

int gguf_get_f64(const gguf_file *g, const char *key, double *out, s1c_err *err) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    switch (kv->type) {
    case GGUF_F32: case GGUF_F64: *out = kv->v.f; return 1;
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: *out = (double)kv->v.u; return 1;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64: *out = (double)kv->v.i; return 1;
    default: return s1c_fail(err, "%s: metadata '%s' should be a number, is %s", gpath(g), key, gguf_type_name(kv->type));
    }
}

int gguf_get_str(const gguf_file *g, const char *key, s1c_str *out, s1c_err *err) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_STRING) return s1c_fail(err, "%s: metadata '%s' should be a string, is %s", gpath(g), key, gguf_type_name(kv->type));
    *out = kv->v.s;
    return 1;
}

int gguf_get_bool(const gguf_file *g, const char *key, bool *out, s1c_err *err) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != GGUF_BOOL) return s1c_fail(err, "%s: metadata '%s' should be a bool, is %s", gpath(g), key, gguf_type_name(kv->type));
    *out = kv->v.u != 0;
    return 1;
}

/* Element i of a numeric array, decoded into a scalar gguf_kv of the array's element type. */
static gguf_kv arr_elem(const gguf_kv *kv, uint64_t i) {
    const uint8_t *p = (const uint8_t *)kv->arr_data + i * (uint64_t)scalar_size(kv->arr_type);
    cursor c = {.base = p, .size = (uint64_t)scalar_size(kv->arr_type)};
    gguf_kv v = {.type = kv->arr_type};
    read_scalar(&c, kv->arr_type, &v);
    return v;
}

static bool is_signed_type(int t) { return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64; }

double gguf_arr_f64(const gguf_kv *kv, uint64_t i) {
    gguf_kv v = arr_elem(kv, i);
    if (v.type == GGUF_F32 || v.type == GGUF_F64) return v.v.f;
    return is_signed_type(v.type) ? (double)v.v.i : (double)v.v.u;
}

int64_t gguf_arr_i64(const gguf_kv *kv, uint64_t i) {
    gguf_kv v = arr_elem(kv, i);
    if (v.type == GGUF_F32 || v.type == GGUF_F64) /* clamp: a float in a file is any value */
        return v.v.f != v.v.f ? 0 : v.v.f >= 9.2e18 ? INT64_MAX : v.v.f <= -9.2e18 ? INT64_MIN : (int64_t)v.v.f;
    return is_signed_type(v.type) ? v.v.i : v.v.u > INT64_MAX ? INT64_MAX : (int64_t)v.v.u;
}

/* ------------------------------------------------------------------------ writer */

/* The writer serializes metadata into a growing byte buffer as it is added (so the writer
 * owns no typed copies), and keeps the tensor list for the info section and the data. */
typedef struct wtensor {
    char *name;
    int dtype, ndim;
    int64_t shape[S1C_MAX_DIMS];
    const void *data;
    uint64_t nbytes;
} wtensor;

struct gguf_writer {
    uint8_t *kv;
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    wtensor *t;
    int n_t, cap_t;
    bool oom;
};

static void wbytes(gguf_writer *w, const void *p, size_t n) {
    if (w->oom) return;
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n) cap *= 2;
        uint8_t *nb = realloc(w->kv, cap);
        if (!nb) { w->oom = true; return; }
        w->kv = nb;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}
static void wu32(gguf_writer *w, uint32_t v) { wbytes(w, &v, 4); }
static void wu64(gguf_writer *w, uint64_t v) { wbytes(w, &v, 8); }
static void wstr(gguf_writer *w, const char *s) {
    uint64_t n = strlen(s);
    wu64(w, n);
    wbytes(w, s, n);
}
static void wkey(gguf_writer *w, const char *key, int type) {
    wstr(w, key);
    wu32(w, (uint32_t)type);
    w->n_kv++;
}

gguf_writer *gguf_writer_new(void) { return calloc(1, sizeof(gguf_writer)); }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w->kv);
    free(w);
}

void gguf_w_u32(gguf_writer *w, const char *key, uint32_t v) { wkey(w, key, GGUF_U32); wu32(w, v); }
void gguf_w_i32(gguf_writer *w, const char *key, int32_t v) { wkey(w, key, GGUF_I32); wbytes(w, &v, 4); }
void gguf_w_u64(gguf_writer *w, const char *key, uint64_t v) { wkey(w, key, GGUF_U64); wu64(w, v); }
void gguf_w_f32(gguf_writer *w, const char *key, float v) { wkey(w, key, GGUF_F32); wbytes(w, &v, 4); }
void gguf_w_bool(gguf_writer *w, const char *key, bool v) { uint8_t b = v; wkey(w, key, GGUF_BOOL); wbytes(w, &b, 1); }
void gguf_w_str(gguf_writer *w, const char *key, const char *v) { wkey(w, key, GGUF_STRING); wstr(w, v); }

void gguf_w_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    wkey(w, key, GGUF_ARRAY);
    wu32(w, GGUF_STRING);
    wu64(w, n);
    for (uint64_t i = 0; i < n; i++) wstr(w, v[i]);
}
void gguf_w_arr_i32(gguf_writer *w, const char *key, const int32_t *v, uint64_t n) {
    wkey(w, key, GGUF_ARRAY);
    wu32(w, GGUF_I32);
    wu64(w, n);
    wbytes(w, v, n * 4);
}
void gguf_w_arr_f32(gguf_writer *w, const char *key, const float *v, uint64_t n) {
    wkey(w, key, GGUF_ARRAY);
    wu32(w, GGUF_F32);
    wu64(w, n);
    wbytes(w, v, n * 4);
}

void gguf_w_tensor(gguf_writer *w, const char *name, int dtype, int ndim, const int64_t *shape, const void *data) {
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) { w->oom = true; return; }
        w->t = nt;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->dtype = dtype;
    t->ndim = ndim;
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) { t->shape[i] = shape[i]; n *= (uint64_t)shape[i]; }
    t->data = data;
    if (!t->name || s1c_dtype_nbytes(dtype, n, &t->nbytes) != 0) w->oom = true;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

int gguf_writer_write(gguf_writer *w, const char *path, s1c_err *err) {
    if (w->oom) return s1c_fail(err, "%s: out of memory (or invalid tensor) while building the GGUF", path);
    /* header + metadata + tensor infos, built in memory; tensor data streamed after */
    gguf_writer hdr = {0};
    wbytes(&hdr, "GGUF", 4);
    wu32(&hdr, 3);
    wu64(&hdr, (uint64_t)w->n_t);
    wu64(&hdr, w->n_kv);
    wbytes(&hdr, w->kv, w->kv_len);
    uint64_t off = 0;
    for (int i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        wstr(&hdr, t->name);
        wu32(&hdr, (uint32_t)t->ndim);
        for (int d = t->ndim - 1; d >= 0; d--) wu64(&hdr, (uint64_t)t->shape[d]);
        wu32(&hdr, (uint32_t)t->dtype);
        wu64(&hdr, off);
        off = align_up(off + t->nbytes, GGUF_DEFAULT_ALIGNMENT);
    }
    if (hdr.oom) { free(hdr.kv); return s1c_fail(err, "%s: out of memory", path); }
    s1c_wfile f;
    if (s1c_wfile_open(&f, path, err) != 0) { free(hdr.kv); return -1; }
    s1c_wfile_write(&f, hdr.kv, hdr.kv_len);
    s1c_wfile_zeros(&f, align_up(hdr.kv_len, GGUF_DEFAULT_ALIGNMENT) - hdr.kv_len);
    free(hdr.kv);
    for (int i = 0; i < w->n_t; i++) {
        s1c_wfile_write(&f, w->t[i].data, w->t[i].nbytes);
        s1c_wfile_zeros(&f, align_up(w->t[i].nbytes, GGUF_DEFAULT_ALIGNMENT) - w->t[i].nbytes);
    }
    return s1c_wfile_commit(&f, err);
}
