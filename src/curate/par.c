/* Concurrent API calls (a fixed number of threads taking the next index, a shared start-rate
 * limit) and an fsync'd append-only JSONL journal that makes them resumable. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "curate_internal.h"

typedef struct par {
    pthread_mutex_t mu;
    size_t next, n;
    double interval, next_start; /* rate limit: earliest start of the next call */
    cur_task_fn fn;
    void *ctx;
} par;

static void sleep_until(double t) {
    double d = t - s1c_now();
    if (d <= 0) return;
    struct timespec ts = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - floor(d)) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {}
}

static void *worker(void *arg) {
    par *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        if (p->next >= p->n) { pthread_mutex_unlock(&p->mu); return NULL; }
        size_t i = p->next++;
        double at = 0;
        if (p->interval > 0) {
            double now = s1c_now();
            at = p->next_start > now ? p->next_start : now;
            p->next_start = at + p->interval;
        }
        pthread_mutex_unlock(&p->mu);
        if (at > 0) sleep_until(at);
        p->fn(p->ctx, i);
    }
}

int cur_par_run(size_t n, int threads, double rps, cur_task_fn fn, void *ctx, s1c_err *err) {
    if (n == 0) return 0;
    if (threads < 1) threads = 1;
    if ((size_t)threads > n) threads = (int)n;
    par p = {.n = n, .interval = rps > 0 ? 1.0 / rps : 0, .fn = fn, .ctx = ctx};
    pthread_mutex_init(&p.mu, NULL);
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    if (!t) { pthread_mutex_destroy(&p.mu); return s1c_fail(err, "out of memory"); }
    int started = 0;
    for (; started < threads; started++)
        if (pthread_create(&t[started], NULL, worker, &p)) break;
    if (started == 0) worker(&p); /* no thread could start: run on the caller */
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    free(t);
    pthread_mutex_destroy(&p.mu);
    return 0;
}

/* ------------------------------------------------------------------ journal */

struct cur_journal {
    int fd;
    char *path;
    pthread_mutex_t mu;
};

/* The length of fd's complete lines: the file up to its last newline (read backwards in blocks,
 * so a large file is not read whole). */
static int complete_length(int fd, const char *path, size_t size, size_t *out, s1c_err *err) {
    char buf[65536];
    size_t end = size;
    while (end > 0) {
        size_t k = end < sizeof buf ? end : sizeof buf;
        ssize_t got = pread(fd, buf, k, (off_t)(end - k));
        if (got != (ssize_t)k) return s1c_fail(err, "%s: read failed: %s", path, got < 0 ? strerror(errno) : "short read");
        for (size_t i = k; i > 0; i--)
            if (buf[i - 1] == '\n') { *out = end - k + i; return 0; }
        end -= k;
    }
    *out = 0;
    return 0;
}

/* Cuts a torn last line off the file; with lines, parses every complete line into it. */
static int read_existing(int fd, const char *path, cJSON *lines, s1c_err *err) {
    struct stat st;
    if (fstat(fd, &st)) return s1c_fail(err, "%s: %s", path, strerror(errno));
    size_t size = (size_t)st.st_size, complete;
    if (complete_length(fd, path, size, &complete, err)) return -1;
    if (complete < size && ftruncate(fd, (off_t)complete))
        return s1c_fail(err, "%s: cannot cut the torn last line: %s", path, strerror(errno));
    if (!lines || complete == 0) return 0;
    char *buf = malloc(complete);
    if (!buf) return s1c_fail(err, "%s: out of memory", path);
    for (size_t got = 0; got < complete;) {
        ssize_t k = pread(fd, buf + got, complete - got, (off_t)got);
        if (k <= 0) { free(buf); return s1c_fail(err, "%s: read failed: %s", path, k ? strerror(errno) : "short file"); }
        got += (size_t)k;
    }
    for (size_t i = 0; i < complete;) {
        char *nl = memchr(buf + i, '\n', complete - i);
        size_t end = (size_t)(nl - buf);
        cJSON *o = end > i ? cJSON_ParseWithLength(buf + i, end - i) : NULL;
        if (cJSON_IsObject(o)) cJSON_AddItemToArray(lines, o);
        else cJSON_Delete(o); /* a line that does not parse is ignored (and asked again) */
        i = end + 1;
    }
    free(buf);
    return 0;
}

int cur_journal_open(cur_journal **out, const char *path, cJSON **lines, s1c_err *err) {
    *out = NULL;
    if (lines) *lines = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return s1c_fail(err, "%s: cannot open: %s", path, strerror(errno));
    cJSON *arr = lines ? cJSON_CreateArray() : NULL;
    if ((lines && !arr) || read_existing(fd, path, arr, err)) {
        if (lines && !arr) s1c_fail(err, "out of memory");
        cJSON_Delete(arr);
        close(fd);
        return -1;
    }
    if (lseek(fd, 0, SEEK_END) < 0) {
        cJSON_Delete(arr);
        close(fd);
        return s1c_fail(err, "%s: %s", path, strerror(errno));
    }
    cur_journal *j = calloc(1, sizeof *j);
    if (!j || !(j->path = cur_strdup(path))) {
        free(j);
        cJSON_Delete(arr);
        close(fd);
        return s1c_fail(err, "out of memory");
    }
    j->fd = fd;
    pthread_mutex_init(&j->mu, NULL);
    if (lines) *lines = arr;
    *out = j;
    return 0;
}

int cur_journal_append(cur_journal *j, const cJSON *obj, s1c_err *err) {
    char *s = cJSON_PrintUnformatted(obj);
    if (!s) return s1c_fail(err, "out of memory");
    size_t n = strlen(s);
    s[n] = '\n'; /* replaces the NUL; written with its length */
    int rc = 0;
    pthread_mutex_lock(&j->mu);
    for (size_t off = 0; off < n + 1;) {
        ssize_t k = write(j->fd, s + off, n + 1 - off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) { rc = s1c_fail(err, "%s: write failed: %s", j->path, strerror(errno)); break; }
        off += (size_t)k;
    }
    if (rc == 0 && fsync(j->fd)) rc = s1c_fail(err, "%s: fsync failed: %s", j->path, strerror(errno));
    pthread_mutex_unlock(&j->mu);
    free(s);
    return rc;
}

void cur_journal_close(cur_journal *j) {
    if (!j) return;
    close(j->fd);
    pthread_mutex_destroy(&j->mu);
    free(j->path);
    free(j);
}
