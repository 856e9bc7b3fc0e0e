/* The LLM judge for the pairs the deterministic grader cannot decide, with a verdict cache
 * (API in include/s1c/grade.h). */
#include "s1c/grade.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/* ------------------------------------------------------------------ the prompt */

/* Written for s1c in the spirit of the prompt s1 gave gpt-4o-mini (openai/simple-evals'
 * equality check): trivial simplifications only, Yes or No, a few worked examples. */
static const char judge_intro[] =
    "Two final answers to the same math problem are given: the reference answer and an attempt.\n"
    "Decide whether the attempt is equivalent to the reference, allowing only trivial simplifications.\n"
    "Differences that do not matter: formatting, spacing and LaTeX wrappers, units written or left out,\n"
    "a label such as \"x =\", thousands separators, a fraction written as a decimal, and the order of a\n"
    "list of solutions. Do not carry out non-trivial algebra or arithmetic to make them agree.\n"
    "Reply with one word: Yes or No.\n"
    "\n"
    "Examples:\n"
    "\n"
    "Reference: 1/4\nAttempt: $0.25$\nYes\n\n"
    "Reference: \\frac{\\sqrt{3}}{2}\nAttempt: \\frac{\\sqrt{2}}{2}\nNo\n\n"
    "Reference: 3, -1\nAttempt: x = -1 \\text{ or } x = 3\nYes\n\n"
    "Reference: 150 \\text{ meters}\nAttempt: 150\nYes\n\n"
    "Reference: 7^{\\text{th}}\nAttempt: 7\nYes\n\n"
    "Reference: a^2 - b^2\nAttempt: c^2 - d^2\nNo\n\n"
    "Reference: 4096/16\nAttempt: 256\nNo\n"
    "(the values agree, but only after a computation that is not trivial)\n"
    "\n"
    "Now the real case. Reply Yes or No only.\n"
    "\n";

char *grade_judge_prompt(const char *gold, const char *pred) {
    size_t n = sizeof judge_intro + strlen(gold) + strlen(pred) + 32;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%sReference: %s\nAttempt: %s\n", judge_intro, gold, pred);
    return s;
}

/* Yes -> 1, No -> 0, else -1. A reasoning model's "<think>...</think>" is skipped. */
static int parse_reply(const char *s) {
    const char *t = strstr(s, "</think>");
    if (t) s = t + 8;
    while (*s && (isspace((unsigned char)*s) || *s == '*')) s++;
    size_t n = strlen(s);
    while (n > 0 && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '*' || s[n - 1] == '.' || s[n - 1] == '!')) n--;
    if (n == 3 && !strncasecmp(s, "yes", 3)) return 1;
    if (n == 2 && !strncasecmp(s, "no", 2)) return 0;
    return -1;
}

/* ------------------------------------------------------------------ the cache */

typedef struct entry {
    char *key; /* model \0 gold \0 pred */
    size_t len;
    uint64_t hash;
    bool equal;
} entry;

struct grade_judge_cache {
    pthread_mutex_t mu;
    entry *slots; /* open addressing; key NULL = empty */
    size_t cap, count;
    int fd;       /* -1: memory only */
    char *path;
    bool need_newline; /* the file did not end with '\n' (a torn last line) */
};

static char *make_key(const char *model, const char *gold, const char *pred, size_t *len) {
    size_t a = strlen(model), b = strlen(gold), c = strlen(pred);
    *len = a + b + c + 2;
    char *k = malloc(*len);
    if (!k) return NULL;
    memcpy(k, model, a + 1);
    memcpy(k + a + 1, gold, b + 1);
    memcpy(k + a + b + 2, pred, c);
    return k;
}

static uint64_t fnv1a(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static entry *find_slot(entry *slots, size_t cap, const char *key, size_t len, uint64_t h) {
    for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
        entry *e = &slots[i];
        if (!e->key || (e->hash == h && e->len == len && !memcmp(e->key, key, len))) return e;
    }
}

/* Takes ownership of key. Returns 0, or -1 when out of memory (key freed). */
static int table_put(grade_judge_cache *c, char *key, size_t len, bool equal) {
    if ((c->count + 1) * 2 > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        entry *s = calloc(cap, sizeof *s);
        if (!s) { free(key); return -1; }
        for (size_t i = 0; i < c->cap; i++)
            if (c->slots[i].key) *find_slot(s, cap, c->slots[i].key, c->slots[i].len, c->slots[i].hash) = c->slots[i];
        free(c->slots);
        c->slots = s;
        c->cap = cap;
    }
    uint64_t h = fnv1a(key, len);
    entry *e = find_slot(c->slots, c->cap, key, len, h);
    if (e->key) { free(key); e->equal = equal; return 0; }
    *e = (entry){.key = key, .len = len, .hash = h, .equal = equal};
    c->count++;
    return 0;
}

static int table_get(grade_judge_cache *c, const char *key, size_t len, bool *equal) {
    if (!c->cap) return 0;
    entry *e = find_slot(c->slots, c->cap, key, len, fnv1a(key, len));
    if (!e->key) return 0;
    *equal = e->equal;
    return 1;
}

static int load_file(grade_judge_cache *c, s1c_err *err) {
    FILE *f = fopen(c->path, "rb");
    if (!f) {
        if (errno == ENOENT) return 0;
        return s1c_fail(err, "%s: cannot read the judge cache: %s", c->path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool last_nl = true;
    while ((n = getline(&line, &cap, f)) > 0) {
        last_nl = line[n - 1] == '\n';
        cJSON *j = cJSON_ParseWithLength(line, (size_t)n);
        cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "model"), *g = cJSON_GetObjectItemCaseSensitive(j, "gold"),
              *p = cJSON_GetObjectItemCaseSensitive(j, "pred"), *eq = cJSON_GetObjectItemCaseSensitive(j, "equal");
        if (cJSON_IsString(m) && cJSON_IsString(g) && cJSON_IsString(p) && cJSON_IsBool(eq)) {
            size_t len;
            char *key = make_key(m->valuestring, g->valuestring, p->valuestring, &len);
            if (!key || table_put(c, key, len, cJSON_IsTrue(eq))) {
                cJSON_Delete(j);
                free(line);
                fclose(f);
                return s1c_fail(err, "%s: out of memory loading the judge cache", c->path);
            }
        }
        cJSON_Delete(j);
    }
    bool bad = ferror(f);
    free(line);
    fclose(f);
    if (bad) return s1c_fail(err, "%s: read error in the judge cache", c->path);
    c->need_newline = !last_nl;
    return 0;
}

int grade_judge_cache_open(grade_judge_cache **out, const char *path, s1c_err *err) {
    *out = NULL;
    grade_judge_cache *c = calloc(1, sizeof *c);
    if (!c) return s1c_fail(err, "judge cache: out of memory");
    pthread_mutex_init(&c->mu, NULL);
    c->fd = -1;
    if (path) {
        c->path = strdup(path);
        if (!c->path) { grade_judge_cache_close(c); return s1c_fail(err, "judge cache: out of memory"); }
        if (load_file(c, err)) { grade_judge_cache_close(c); return -1; }
        c->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (c->fd < 0) {
            int e = errno;
            grade_judge_cache_close(c);
            return s1c_fail(err, "%s: cannot open the judge cache for writing: %s", path, strerror(e));
        }
    }
    *out = c;
    return 0;
}

void grade_judge_cache_close(grade_judge_cache *c) {
    if (!c) return;
    for (size_t i = 0; i < c->cap; i++) free(c->slots[i].key);
    free(c->slots);
    if (c->fd >= 0) close(c->fd);
    free(c->path);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

size_t grade_judge_cache_size(const grade_judge_cache *c) { return c ? c->count : 0; }

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Adds a verdict (memory, then the file: one line, fsync'd). Called with the lock held. */
static int cache_add(grade_judge_cache *c, const char *model, const char *gold, const char *pred, bool equal,
                     s1c_err *err) {
    size_t len;
    char *key = make_key(model, gold, pred, &len);
    if (!key || table_put(c, key, len, equal)) return s1c_fail(err, "judge cache: out of memory");
    if (c->fd < 0) return 0;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model);
    cJSON_AddStringToObject(j, "gold", gold);
    cJSON_AddStringToObject(j, "pred", pred);
    cJSON_AddBoolToObject(j, "equal", equal);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s) return s1c_fail(err, "judge cache: out of memory");
    int rc = 0;
    if ((c->need_newline && write_all(c->fd, "\n", 1)) || write_all(c->fd, s, strlen(s)) || write_all(c->fd, "\n", 1) ||
        fsync(c->fd))
        rc = s1c_fail(err, "%s: cannot append to the judge cache: %s", c->path, strerror(errno));
    else c->need_newline = false;
    free(s);
    return rc;
}

/* ------------------------------------------------------------------ the judge */

int grade_judge(net_client *client, const char *model, const char *gold, const char *pred, grade_judge_cache *cache,
                bool *equal, s1c_err *err) {
    if (cache) {
        size_t len;
        char *key = make_key(model, gold, pred, &len);
        if (!key) return s1c_fail(err, "judge: out of memory");
        pthread_mutex_lock(&cache->mu);
        int hit = table_get(cache, key, len, equal);
        pthread_mutex_unlock(&cache->mu);
        free(key);
        if (hit) return 0;
    }
    char *prompt = grade_judge_prompt(gold, pred);
    if (!prompt) return s1c_fail(err, "judge: out of memory");
    net_message msg = {"user", prompt};
    net_chat_params params = {.temperature = 0, .max_tokens = 0};
    net_chat_result res;
    int rc = net_chat(client, model, &msg, 1, &params, &res, err);
    free(prompt);
    if (rc) return s1c_fail_prefix(err, "judge '%s'", model);
    int v = parse_reply(res.content);
    if (v < 0) {
        char shown[64];
        size_t i = 0;
        for (; res.content[i] && i + 1 < sizeof shown; i++) shown[i] = res.content[i] == '\n' ? ' ' : res.content[i];
        shown[i] = 0;
        bool cut = res.content[i] != 0;
        net_chat_result_free(&res);
        return s1c_fail(err, "judge '%s' at %s answered '%s%s' (expected Yes or No)", model, net_client_url(client), shown,
                        cut ? "..." : "");
    }
    net_chat_result_free(&res);
    *equal = v == 1;
    if (cache) {
        pthread_mutex_lock(&cache->mu);
        rc = cache_add(cache, model, gold, pred, *equal, err);
        pthread_mutex_unlock(&cache->mu);
        if (rc) return -1;
    }
    return 0;
}
