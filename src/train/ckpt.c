/* Checkpoints, committed as whole directories (DESIGN.md, conventions):
 *
 *   OUT/step-N.tmp/  every file written and fsync'd
 *   OUT/step-N/      after rename(step-N.tmp, step-N) and an fsync of OUT
 *   OUT/latest       a symlink to step-N, replaced atomically (symlink + rename)
 *   OUT/config.json, OUT/model.safetensors, tokenizer files: symlinks through latest/, so OUT
 *                    itself is the newest complete checkpoint as a Hugging Face directory
 *
 * A checkpoint holds the HF files (config.json, model.safetensors in the model's dtype,
 * the base model's tokenizer files) and the trainer's state: master.safetensors (f32
 * weights, when the model file is not f32), adam_m/adam_v.safetensors, trainer_state.json.
 * kill -9 at any instant leaves `latest` pointing at a complete checkpoint; a failed save
 * (disk full) removes its .tmp directory and leaves the previous one as it was. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train_internal.h"
#include "s1c/text.h"

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static void remove_tree(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *child = s1c_path_join(path, e->d_name);
        struct stat st;
        if (child && lstat(child, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree(child);
        else if (child) unlink(child);
        free(child);
    }
    closedir(d);
    rmdir(path);
}

static int write_in(const char *dir, const char *name, const char *text, s1c_err *err) {
    char *path = s1c_path_join(dir, name);
    int rc = s1c_write_file_atomic(path, text, strlen(text), err);
    free(path);
    return rc;
}

static int write_params_in(const char *dir, const char *name, const s1c_params *p, const float *data, int dtype,
                           s1c_err *err) {
    char *path = s1c_path_join(dir, name);
    int rc = s1c_params_write(p, data, path, dtype, err);
    free(path);
    return rc;
}

/* The model's weights as transformers writes them: model.safetensors, or above shard_bytes
 * model-0000k-of-0000n.safetensors shards (whole tensors, in order) + model.safetensors.index.json. */
static int write_model(const char *dir, const ckpt_data *c, s1c_err *err) {
    const s1c_params *p = c->p;
    uint64_t esize = c->dtype == S1C_F32 ? 4 : 2, total = 0;
    for (int i = 0; i < p->n_tensors; i++) total += p->info[i].n * esize;
    if (c->shard_bytes == 0 || total <= c->shard_bytes) return write_params_in(dir, "model.safetensors", p, p->data, c->dtype, err);
    /* shard boundaries: a new shard when the next tensor would overflow this one */
    int *first = malloc((size_t)(p->n_tensors + 1) * sizeof *first), n_shards = 0;
    if (!first) return s1c_fail(err, "out of memory");
    uint64_t in_shard = 0;
    for (int i = 0; i < p->n_tensors; i++) {
        uint64_t b = p->info[i].n * esize;
        if (i == 0 || (in_shard > 0 && in_shard + b > c->shard_bytes)) {
            first[n_shards++] = i;
            in_shard = 0;
        }
        in_shard += b;
    }
    first[n_shards] = p->n_tensors;
    cJSON *index = cJSON_CreateObject(), *map = cJSON_CreateObject();
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(index, "metadata"), "total_size", (double)total);
    cJSON_AddItemToObject(index, "weight_map", map);
    int rc = 0;
    for (int k = 0; k < n_shards && rc == 0; k++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k + 1, n_shards);
        for (int i = first[k]; i < first[k + 1]; i++) cJSON_AddStringToObject(map, p->info[i].name, name);
        char *path = s1c_path_join(dir, name);
        rc = s1c_params_write_range(p, p->data, path, c->dtype, first[k], first[k + 1], err);
        free(path);
    }
    char *text = cJSON_Print(index);
    cJSON_Delete(index);
    if (rc == 0) rc = text ? write_in(dir, "model.safetensors.index.json", text, err) : s1c_fail(err, "out of memory");
    free(text);
    free(first);
    return rc;
}

/* Everything of one checkpoint, into an empty directory. */
static int write_checkpoint_files(const char *dir, const ckpt_data *c, s1c_err *err) {
    const char *dtype_name = c->dtype == S1C_BF16 ? "bfloat16" : "float32";
    char *config = s1c_config_to_hf_json(&c->p->cfg, dtype_name);
    int rc = config ? write_in(dir, "config.json", config, err) : s1c_fail(err, "out of memory");
    free(config);
    if (rc == 0) rc = write_model(dir, c, err);
    if (rc == 0 && c->dtype != S1C_F32) rc = write_params_in(dir, "master.safetensors", c->p, c->p->data, S1C_F32, err);
    if (rc == 0) rc = write_params_in(dir, "adam_m.safetensors", c->p, c->m, S1C_F32, err);
    if (rc == 0) rc = write_params_in(dir, "adam_v.safetensors", c->p, c->v, S1C_F32, err);
    if (rc == 0) rc = s1c_tok_copy_files(c->base_dir, dir, NULL, err); /* the base model's tokenizer files */
    if (rc == 0) rc = write_in(dir, "trainer_state.json", c->state_json, err);
    return rc;
}

/* Points name at target atomically: a new symlink renamed over the old one. */
static int replace_symlink(const char *dir, const char *name, const char *target, s1c_err *err) {
    char *path = s1c_path_join(dir, name);
    size_t n = strlen(path) + 8;
    char *tmp = malloc(n);
    snprintf(tmp, n, "%s.tmp", path);
    unlink(tmp);
    int rc = 0;
    if (symlink(target, tmp) != 0 || rename(tmp, path) != 0)
        rc = s1c_fail(err, "%s: cannot point it at %s: %s", path, target, strerror(errno));
    free(tmp);
    free(path);
    return rc;
}

/* The trainer's own files of a checkpoint (not part of the HF directory). */
static bool trainer_only(const char *name) {
    return !strcmp(name, "trainer_state.json") || !strncmp(name, "adam_", 5) || !strcmp(name, "master.safetensors");
}

/* OUT/<file> -> latest/<file> for every HF file of the newest checkpoint; made once, they
 * follow `latest` (a run's files keep their names from checkpoint to checkpoint). */
static void link_top_level(const char *out) {
    char *latest = s1c_path_join(out, "latest");
    DIR *d = latest ? opendir(latest) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || trainer_only(e->d_name)) continue;
        char target[512];
        snprintf(target, sizeof target, "latest/%s", e->d_name);
        char *path = s1c_path_join(out, e->d_name);
        struct stat st;
        if (path && lstat(path, &st) != 0) (void)!symlink(target, path);
        free(path);
    }
    if (d) closedir(d);
    free(latest);
}

static int cmp_desc(const void *a, const void *b) { return *(const int *)b - *(const int *)a; }

/* Keeps the newest `keep` step-N directories (keep <= 0: all) and removes stale .tmp ones. */
static void prune_checkpoints(const char *out, int keep) {
    DIR *d = opendir(out);
    if (!d) return;
    int *steps = NULL, n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        int step;
        char rest[16] = "";
        if (sscanf(e->d_name, "step-%d%15s", &step, rest) < 1) continue;
        if (strcmp(rest, ".tmp") == 0) {
            char *path = s1c_path_join(out, e->d_name);
            remove_tree(path);
            free(path);
        } else if (rest[0] == 0) {
            int *ns = realloc(steps, (size_t)(n + 1) * sizeof *ns);
            if (!ns) break;
            steps = ns;
            steps[n++] = step;
        }
    }
    closedir(d);
    qsort(steps, (size_t)n, sizeof *steps, cmp_desc);
    for (int i = keep > 0 ? keep : n; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "step-%d", steps[i]);
        char *path = s1c_path_join(out, name);
        remove_tree(path);
        free(path);
    }
    free(steps);
}

int ckpt_save(const char *out, const ckpt_data *c, s1c_err *err) {
    char name[64], tmpname[80];
    snprintf(name, sizeof name, "step-%d", c->step);
    snprintf(tmpname, sizeof tmpname, "step-%d.tmp", c->step);
    char *tmp = s1c_path_join(out, tmpname), *final = s1c_path_join(out, name);
    remove_tree(tmp);
    int rc = s1c_mkdir_p(tmp, err);
    if (rc == 0) rc = write_checkpoint_files(tmp, c, err);
    if (rc == 0 && fsync_path(tmp) != 0) rc = s1c_fail(err, "%s: fsync: %s", tmp, strerror(errno));
    if (rc == 0) {
        remove_tree(final); /* a same-step checkpoint from an earlier, resumed run */
        if (rename(tmp, final) != 0) rc = s1c_fail(err, "%s: rename: %s", final, strerror(errno));
    }
    if (rc == 0) fsync_path(out);
    if (rc == 0) rc = replace_symlink(out, "latest", name, err);
    if (rc == 0) {
        fsync_path(out);
        link_top_level(out);
        prune_checkpoints(out, c->keep);
    } else {
        remove_tree(tmp);
        s1c_fail_prefix(err, "checkpoint %s not saved (the previous one is intact)", name);
    }
    free(tmp);
    free(final);
    return rc;
}

int ckpt_load(const char *dir, const s1c_params *p, float *m, float *v, char **state_json, s1c_err *err) {
    *state_json = NULL;
    char *state = s1c_path_join(dir, "trainer_state.json");
    size_t len;
    int rc = s1c_read_file(state, 1 << 20, state_json, &len, err);
    free(state);
    if (rc != 0) return s1c_fail_prefix(err, "%s is not an s1c checkpoint", dir);
    /* the f32 master weights: master.safetensors beside a bf16 model, else the model itself
     * (model.safetensors, or the directory when it is sharded with an index) */
    char *master = s1c_path_join(dir, "master.safetensors");
    if (access(master, R_OK) != 0) {
        free(master);
        master = s1c_path_join(dir, "model.safetensors");
        if (access(master, R_OK) != 0) {
            free(master);
            master = strdup(dir);
        }
    }
    char *am = s1c_path_join(dir, "adam_m.safetensors"), *av = s1c_path_join(dir, "adam_v.safetensors");
    rc = s1c_params_read(p, p->data, master, err);
    if (rc == 0) rc = s1c_params_read(p, m, am, err);
    if (rc == 0) rc = s1c_params_read(p, v, av, err);
    free(master);
    free(am);
    free(av);
    if (rc != 0) {
        free(*state_json);
        *state_json = NULL;
    }
    return rc;
}
