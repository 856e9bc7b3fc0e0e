#include "s1c/base.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int s1c_mfile_open(s1c_mfile *f, const char *path, s1c_err *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return s1c_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return s1c_fail(err, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return s1c_fail(err, "%s: not a regular file", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        /* MAP_PRIVATE read-only: weights are used in place, the page cache is the only copy. */
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return s1c_fail(err, "%s: cannot mmap: %s", path, strerror(e));
        }
        f->data = p;
    }
    close(fd);
    f->path = strdup(path);
    return 0;
}

void s1c_mfile_close(s1c_mfile *f) {
    if (f->data) munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int s1c_read_file(const char *path, size_t max_size, char **out, size_t *out_len, s1c_err *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return s1c_fail(err, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(fp); return s1c_fail(err, "%s: out of memory", path); }
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len - 1, fp);
        len += n;
        if (len > max_size) {
            free(buf);
            fclose(fp);
            return s1c_fail(err, "%s: larger than the limit of %zu bytes", path, max_size);
        }
        if (n == 0) break;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) { free(buf); return s1c_fail(err, "%s: read error", path); }
    buf[len] = 0;
    *out = buf;
    if (out_len) *out_len = len;
    return 0;
}

static int fsync_parent_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int s1c_wfile_open(s1c_wfile *w, const char *path, s1c_err *err) {
    memset(w, 0, sizeof *w);
    size_t n = strlen(path) + 5;
    w->path = strdup(path);
    w->tmp = malloc(n);
    if (!w->path || !w->tmp) {
        s1c_wfile_abort(w);
        return s1c_fail(err, "%s: out of memory", path);
    }
    snprintf(w->tmp, n, "%s.tmp", path);
    w->fp = fopen(w->tmp, "wb");
    if (!w->fp) {
        s1c_fail(err, "%s: cannot create: %s", w->tmp, strerror(errno));
        s1c_wfile_abort(w);
        return -1;
    }
    return 0;
}

void s1c_wfile_write(s1c_wfile *w, const void *data, size_t len) {
    if (!w->bad && len > 0 && fwrite(data, 1, len, w->fp) != len) w->bad = true;
}

void s1c_wfile_zeros(s1c_wfile *w, size_t len) {
    static const uint8_t zeros[256];
    while (len > 0) {
        size_t k = len < sizeof zeros ? len : sizeof zeros;
        s1c_wfile_write(w, zeros, k);
        len -= k;
    }
}

int s1c_wfile_commit(s1c_wfile *w, s1c_err *err) {
    FILE *fp = w->fp;
    w->fp = NULL;
    bool bad = w->bad || fflush(fp) != 0;
    int e = errno;
    bad = bad || fsync(fileno(fp)) != 0;
    if (fclose(fp) != 0) bad = true;
    if (!bad && rename(w->tmp, w->path) == 0) {
        fsync_parent_dir(w->path);
        s1c_wfile_abort(w);
        return 0;
    }
    s1c_fail(err, "%s: write failed: %s", w->path, strerror(e ? e : EIO));
    s1c_wfile_abort(w);
    return -1;
}

void s1c_wfile_abort(s1c_wfile *w) {
    if (w->fp) fclose(w->fp);
    if (w->tmp) unlink(w->tmp);
    free(w->tmp);
    free(w->path);
    memset(w, 0, sizeof *w);
}

int s1c_write_file_atomic(const char *path, const void *data, size_t len, s1c_err *err) {
    s1c_wfile w;
    if (s1c_wfile_open(&w, path, err) != 0) return -1;
    s1c_wfile_write(&w, data, len);
    return s1c_wfile_commit(&w, err);
}

char *s1c_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *r = malloc(a + b + 2);
    if (!r) return NULL;
    memcpy(r, dir, a);
    size_t k = a;
    if (a > 0 && dir[a - 1] != '/') r[k++] = '/';
    memcpy(r + k, name, b + 1);
    return r;
}

bool s1c_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool s1c_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int s1c_mkdir_p(const char *path, s1c_err *err) {
    char *p = strdup(path);
    if (!p) return s1c_fail(err, "%s: out of memory", path);
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                s1c_fail(err, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            *s = c;
            if (c == 0) break;
        }
    }
    free(p);
    if (!s1c_is_dir(path)) return s1c_fail(err, "%s: exists and is not a directory", path);
    return 0;
}

double s1c_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
