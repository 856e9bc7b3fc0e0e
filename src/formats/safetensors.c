/* safetensors: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the data; offsets are relative to the start of the data. A sharded checkpoint adds
 * model.safetensors.index.json whose "weight_map" names the file of every tensor. */
#include "s1c/formats.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u << 20) /* the format's own limit is 100 MB */

static const struct { const char *name; int dtype; } st_dtypes[] = {
    {"F32", S1C_F32}, {"F16", S1C_F16}, {"BF16", S1C_BF16}, {"F64", S1C_F64},
    {"I64", S1C_I64}, {"I32", S1C_I32}, {"I16", S1C_I16},   {"I8", S1C_I8},
};

static int st_dtype_from_name(const char *s) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(st_dtypes[i].name, s) == 0) return st_dtypes[i].dtype;
    return -1;
}

static const char *st_dtype_to_name(int dtype) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dtype == dtype) return st_dtypes[i].name;
    return NULL;
}

static int parse_entry(const cJSON *e, s1c_tensor *t, const uint8_t *data, uint64_t data_size, const char *path, s1c_err *err) {
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsObject(e) || !cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return s1c_fail(err, "%s: tensor '%s' lacks dtype, shape or data_offsets", path, t->name);
    t->dtype = st_dtype_from_name(dt->valuestring);
    if (t->dtype < 0) return s1c_fail(err, "%s: tensor '%s' has unsupported dtype %s", path, t->name, dt->valuestring);
    int nd = cJSON_GetArraySize(sh);
    if (nd > S1C_MAX_DIMS) return s1c_fail(err, "%s: tensor '%s' has %d dimensions (at most %d supported)", path, t->name, nd, S1C_MAX_DIMS);
    t->ndim = nd;
    uint64_t n = 1;
    for (int i = 0; i < nd; i++) {
        const cJSON *d = cJSON_GetArrayItem(sh, i);
        /* doubles hold integers exactly up to 2^53, far above any real dimension */
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 9007199254740992.0 || d->valuedouble != (double)(int64_t)d->valuedouble)
            return s1c_fail(err, "%s: tensor '%s' has an invalid dimension", path, t->name);
        t->shape[i] = (int64_t)d->valuedouble;
        if (s1c_mul_overflow(n, (uint64_t)t->shape[i], &n)) return s1c_fail(err, "%s: tensor '%s': size overflows", path, t->name);
    }
    if (s1c_dtype_nbytes(t->dtype, n, &t->nbytes) != 0) return s1c_fail(err, "%s: tensor '%s': size overflows", path, t->name);
    const cJSON *b = cJSON_GetArrayItem(of, 0), *en = cJSON_GetArrayItem(of, 1);
    if (!cJSON_IsNumber(b) || !cJSON_IsNumber(en) || b->valuedouble < 0 || en->valuedouble < b->valuedouble || en->valuedouble > 9007199254740992.0)
        return s1c_fail(err, "%s: tensor '%s' has invalid data_offsets", path, t->name);
    uint64_t begin = (uint64_t)b->valuedouble, end = (uint64_t)en->valuedouble;
    if (end - begin != t->nbytes)
        return s1c_fail(err, "%s: tensor '%s' takes %llu bytes but its shape and dtype need %llu", path, t->name, (unsigned long long)(end - begin), (unsigned long long)t->nbytes);
    if (end > data_size)
        return s1c_fail(err, "%s: tensor '%s' ends at byte %llu of the data, which has only %llu: truncated?", path, t->name, (unsigned long long)end, (unsigned long long)data_size);
    t->data = data + begin;
    return 0;
}

/* Parses one file's header and appends its tensors to s. */
static int parse_one(st_set *s, const uint8_t *data, size_t size, const char *path, s1c_err *err) {
    if (size < 8) return s1c_fail(err, "%s: not a safetensors file (%zu bytes)", path, size);
    uint64_t hlen;
    memcpy(&hlen, data, 8);
    if (hlen > ST_MAX_HEADER || hlen > size - 8)
        return s1c_fail(err, "%s: header length %llu is past the end of the file (%zu bytes) or over 100 MB", path, (unsigned long long)hlen, size);
    cJSON *root = cJSON_ParseWithLength((const char *)data + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return s1c_fail(err, "%s: header is not a JSON object", path);
    }
    int count = 0;
    for (cJSON *e = root->child; e; e = e->next) count++;
    s1c_tensor *nt = realloc(s->tensors, (s->n_tensors + (uint64_t)count + 1) * sizeof(s1c_tensor));
    if (!nt) { cJSON_Delete(root); return s1c_fail(err, "%s: out of memory", path); }
    s->tensors = nt;
    const uint8_t *base = data + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    int rc = 0;
    for (cJSON *e = root->child; e && rc == 0; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!s->metadata_json) s->metadata_json = cJSON_PrintUnformatted(e);
            continue;
        }
        if (st_find(s, e->string)) { rc = s1c_fail(err, "%s: tensor '%s' appears twice", path, e->string); break; }
        s1c_tensor *t = &s->tensors[s->n_tensors];
        memset(t, 0, sizeof *t);
        t->name = strdup(e->string);
        if (!t->name) { rc = s1c_fail(err, "%s: out of memory", path); break; }
        s->n_tensors++;
        rc = parse_entry(e, t, base, data_size, path, err);
    }
    cJSON_Delete(root);
    return rc;
}

static int add_file(st_set *s, const char *path, s1c_err *err) {
    s1c_mfile *nf = realloc(s->files, (size_t)(s->n_files + 1) * sizeof *nf);
    if (!nf) return s1c_fail(err, "%s: out of memory", path);
    s->files = nf;
    if (s1c_mfile_open(&s->files[s->n_files], path, err) != 0) return -1;
    s1c_mfile *f = &s->files[s->n_files++];
    return parse_one(s, f->data, f->size, path, err);
}

/* Opens every shard named by an index's weight_map, each once, and checks that every
 * tensor the index names was found in the file the index says. */
static int open_index(st_set *s, const char *index_path, s1c_err *err) {
    char *text = NULL;
    if (s1c_read_file(index_path, 64u << 20, &text, NULL, err) != 0) return -1;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *map = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    if (!cJSON_IsObject(map)) {
        cJSON_Delete(root);
        return s1c_fail(err, "%s: not a safetensors index (no \"weight_map\" object)", index_path);
    }
    char *dir = strdup(index_path);
    char *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0; else dir[0] = 0;
    int rc = 0;
    for (const cJSON *e = map->child; e && rc == 0; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/')) { rc = s1c_fail(err, "%s: bad file name for tensor '%s'", index_path, e->string); break; }
        bool seen = false;
        for (const cJSON *p = map->child; p != e; p = p->next)
            if (strcmp(p->valuestring, e->valuestring) == 0) { seen = true; break; }
        if (seen) continue;
        char *shard = s1c_path_join(dir[0] ? dir : ".", e->valuestring);
        rc = add_file(s, shard, err);
        free(shard);
    }
    for (const cJSON *e = map->child; e && rc == 0; e = e->next)
        if (!st_find(s, e->string)) rc = s1c_fail(err, "%s: tensor '%s' is listed but missing from %s", index_path, e->string, e->valuestring);
    free(dir);
    cJSON_Delete(root);
    return rc;
}

int st_open(st_set *s, const char *path, s1c_err *err) {
    memset(s, 0, sizeof *s);
    int rc;
    if (s1c_is_dir(path)) {
        char *idx = s1c_path_join(path, "model.safetensors.index.json");
        char *one = s1c_path_join(path, "model.safetensors");
        if (s1c_file_exists(idx)) rc = open_index(s, idx, err);
        else if (s1c_file_exists(one)) rc = add_file(s, one, err);
        else rc = s1c_fail(err, "%s: no model.safetensors or model.safetensors.index.json", path);
        free(idx);
        free(one);
    } else {
        size_t n = strlen(path);
        if (n >= 5 && strcmp(path + n - 5, ".json") == 0) rc = open_index(s, path, err);
        else rc = add_file(s, path, err);
    }
    if (rc != 0) st_close(s);
    return rc;
}

int st_parse(st_set *s, const uint8_t *data, size_t size, const char *name, s1c_err *err) {
    memset(s, 0, sizeof *s);
    int rc = parse_one(s, data, size, name, err);
    if (rc != 0) st_close(s);
    return rc;
}

void st_close(st_set *s) {
    for (uint64_t i = 0; i < s->n_tensors; i++) free((char *)s->tensors[i].name);
    free(s->tensors);
    for (int i = 0; i < s->n_files; i++) s1c_mfile_close(&s->files[i]);
    free(s->files);
    cJSON_free(s->metadata_json);
    memset(s, 0, sizeof *s);
}

const s1c_tensor *st_find(const st_set *s, const char *name) {
    for (uint64_t i = 0; i < s->n_tensors; i++)
        if (strcmp(s->tensors[i].name, name) == 0) return &s->tensors[i];
    return NULL;
}

int st_write_begin(s1c_wfile *f, const char *path, const s1c_tensor *tensors, int n, s1c_err *err) {
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const s1c_tensor *t = &tensors[i];
        const char *dn = st_dtype_to_name(t->dtype);
        if (!dn) { cJSON_Delete(root); return s1c_fail(err, "%s: tensor '%s': dtype %s cannot be stored in safetensors", path, t->name, s1c_dtype_name(t->dtype) ? s1c_dtype_name(t->dtype) : "?"); }
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(e, "dtype", dn);
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *of = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + t->nbytes)));
        off += t->nbytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return s1c_fail(err, "%s: out of memory", path);
    size_t jl = strlen(json);
    uint64_t hlen = (jl + 7) / 8 * 8; /* data starts 8-aligned; pad the header with spaces */
    if (s1c_wfile_open(f, path, err) != 0) { free(json); return -1; }
    s1c_wfile_write(f, &hlen, 8);
    s1c_wfile_write(f, json, jl);
    for (uint64_t k = jl; k < hlen; k++) s1c_wfile_write(f, " ", 1);
    free(json);
    return 0;
}

int st_write(const char *path, const s1c_tensor *tensors, int n, s1c_err *err) {
    s1c_wfile f;
    if (st_write_begin(&f, path, tensors, n, err) != 0) return -1;
    for (int i = 0; i < n; i++) s1c_wfile_write(&f, tensors[i].data, tensors[i].nbytes);
    return s1c_wfile_commit(&f, err);
}
