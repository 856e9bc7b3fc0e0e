/* A small thread pool: persistent workers, static task assignment, spin-then-sleep.
 *
 * One run publishes (fn, ctx, n_tasks) and bumps a generation counter; worker w (1..T-1)
 * runs tasks w, w+T, ... and the caller runs tasks 0, T, 2T, ... itself, then waits for the
 * pending count to reach zero. Which thread runs a task is fixed by its index, so nothing
 * depends on timing. Waiting spins for a few tens of microseconds (the gap between two
 * matmuls of one forward) and then sleeps on a futex: on a 2-core VM a spinning thread
 * steals the core the other one needs. */
#include "s1c/base.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SPIN_NS 50000 /* how long a waiting thread spins before it sleeps */

struct s1c_pool {
    int n_threads;
    pthread_t *threads;
    atomic_int busy;           /* a run is in progress (try-lock) */
    atomic_uint gen;           /* bumped once per run: the workers' futex word */
    atomic_uint pending;       /* workers still running this generation's tasks */
    atomic_int sleeping;       /* workers asleep (or about to sleep) on gen */
    atomic_int caller_waiting; /* the caller sleeps (or is about to) on pending */
    atomic_int stop;
    s1c_pool_fn fn;
    void *ctx;
    int n_tasks;
    struct worker_arg {
        s1c_pool *p;
        int id;
    } *args;
};

static void futex_wait(atomic_uint *addr, unsigned val) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *addr, int n) {
    syscall(SYS_futex, (unsigned *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spins while *addr == val for up to SPIN_NS; returns true if it changed meanwhile. */
static bool spin_while_equal(atomic_uint *addr, unsigned val) {
    int64_t t0 = now_ns();
    for (int i = 1;; i++) {
        if (atomic_load_explicit(addr, memory_order_acquire) != val) return true;
        cpu_relax();
        if ((i & 63) == 0 && now_ns() - t0 > SPIN_NS) return false;
    }
}

static void run_tasks(s1c_pool *p, int w) {
    for (int t = w; t < p->n_tasks; t += p->n_threads) p->fn(p->ctx, t, p->n_tasks);
}

static void *worker(void *arg) {
    struct worker_arg *a = arg;
    s1c_pool *p = a->p;
    unsigned seen = 0;
    for (;;) {
        while (atomic_load(&p->gen) == seen) {
            if (spin_while_equal(&p->gen, seen)) break;
            atomic_fetch_add(&p->sleeping, 1);
            futex_wait(&p->gen, seen); /* returns at once if gen moved on */
            atomic_fetch_sub(&p->sleeping, 1);
        }
        seen = atomic_load(&p->gen);
        if (atomic_load(&p->stop)) return NULL;
        run_tasks(p, a->id);
        if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_waiting)) futex_wake(&p->pending, 1);
    }
}

static int default_threads(void) {
    const char *e = getenv("S1C_THREADS");
    if (e && *e) {
        int n = atoi(e);
        if (n > 0) return n;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int s1c_pool_new(s1c_pool **out, int n_threads, s1c_err *err) {
    *out = NULL;
    if (n_threads <= 0) n_threads = default_threads();
    if (n_threads > 256) n_threads = 256;
    s1c_pool *p = calloc(1, sizeof *p);
    if (!p) return s1c_fail(err, "thread pool: out of memory");
    p->n_threads = n_threads;
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    p->args = calloc((size_t)n_threads, sizeof *p->args);
    if (!p->threads || !p->args) {
        free(p->threads); free(p->args); free(p);
        return s1c_fail(err, "thread pool: out of memory");
    }
    for (int w = 1; w < n_threads; w++) {
        p->args[w] = (struct worker_arg){p, w};
        int rc = pthread_create(&p->threads[w], NULL, worker, &p->args[w]);
        if (rc != 0) {
            p->n_threads = w; /* the ones started so far are joined by free */
            s1c_pool_free(p);
            return s1c_fail(err, "thread pool: cannot start thread %d of %d (error %d)", w, n_threads, rc);
        }
    }
    *out = p;
    return 0;
}

void s1c_pool_free(s1c_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    atomic_fetch_add(&p->gen, 1);
    futex_wake(&p->gen, INT_MAX);
    for (int w = 1; w < p->n_threads; w++) pthread_join(p->threads[w], NULL);
    free(p->threads);
    free(p->args);
    free(p);
}

int s1c_pool_threads(const s1c_pool *p) { return p ? p->n_threads : 1; }

void s1c_pool_run(s1c_pool *p, int n_tasks, s1c_pool_fn fn, void *ctx) {
    int expected = 0;
    if (!p || p->n_threads == 1 || n_tasks <= 1 || !atomic_compare_exchange_strong(&p->busy, &expected, 1)) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, n_tasks);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->pending, (unsigned)(p->n_threads - 1));
    atomic_fetch_add(&p->gen, 1); /* publishes fn/ctx/n_tasks (seq_cst) */
    if (atomic_load(&p->sleeping) > 0) futex_wake(&p->gen, INT_MAX);
    run_tasks(p, 0);
    for (;;) {
        unsigned left = atomic_load(&p->pending);
        if (left == 0) break;
        if (spin_while_equal(&p->pending, left)) continue;
        atomic_store(&p->caller_waiting, 1);
        left = atomic_load(&p->pending);
        if (left != 0) futex_wait(&p->pending, left);
        atomic_store(&p->caller_waiting, 0);
    }
    atomic_store(&p->busy, 0);
}

/* ---------------------------------------------------------------- the process-wide pool */

static s1c_pool *global_pool;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

/* A forked child has none of the parent's workers: it runs everything on its one thread. */
static void global_after_fork(void) { global_pool = NULL; }

static void global_init(void) {
    s1c_err err;
    if (s1c_pool_new(&global_pool, 0, &err) != 0) global_pool = NULL;
    else pthread_atfork(NULL, NULL, global_after_fork);
}

s1c_pool *s1c_pool_global(void) {
    pthread_once(&global_once, global_init);
    return global_pool;
}
