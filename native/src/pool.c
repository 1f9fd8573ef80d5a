/* pool.c — a persistent thread pool: workers are created once and woken per op (no per-op thread creation).
 *
 * Launch = bump a generation counter; workers spin briefly on it (ops follow each other within microseconds
 * during a forward pass), then sleep on a condition variable so an idle server does not burn a core. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_ITERS 20000 /* ~50-100 us of pause before a worker sleeps */
#define STRAGGLER_NS 20000 /* a wait this long, and longer than the caller's own share, counts as a strike */
#define STRIKES 3          /* strikes in a row before the pool runs solo */
#define SOLO_NS 50000000   /* 50 ms (tens of decode steps) on the caller alone, then the workers are tried again:
                              counted in time, not runs, so a training step's big tasks are not left to one core
                              for seconds (2000 runs were ~3 steps of 1,024 tokens) */
#define YIELD_EVERY 64   /* spinners give the core away now and then: on a machine busy with other work (an
                            IDE, a build) a spinning thread must not hold the core the thread it waits for needs */

typedef struct {
    ckls_pool *pool;
    int ith;
} worker_arg;

struct ckls_pool {
    int n_threads;
    pthread_t *threads;
    worker_arg *args;
    ckls_task_fn fn;
    void *ctx;
    atomic_uint gen;
    atomic_int pending;
    atomic_int sleepers;
    atomic_int stop;
    int strikes;   /* consecutive runs where the caller waited on workers longer than it worked itself */
    int64_t solo_until; /* until then (CLOCK_MONOTONIC ns) the caller runs alone: the workers were not getting a core */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *worker_main(void *p) {
    worker_arg *a = p;
    ckls_pool *pool = a->pool;
    /* gen is 0 at creation; reading it here instead would miss a run launched before this thread started */
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load(&pool->gen) == seen && !atomic_load(&pool->stop)) {
            if (++spins < SPIN_ITERS) {
                if (spins % YIELD_EVERY == 0) sched_yield();
                else CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&pool->mu);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->gen) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->cv, &pool->mu);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop)) break;
        seen = atomic_load(&pool->gen);
        pool->fn(pool->ctx, a->ith, pool->n_threads);
        atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_release);
    }
    return NULL;
}

ckls_pool *ckls_pool_create(int n_threads) {
    if (n_threads < 1 || n_threads > 512) {
        ckls_fail(CKLS_EINVAL, "thread count %d out of range 1..512", n_threads);
        return NULL;
    }
    ckls_pool *pool = calloc(1, sizeof *pool);
    if (!pool) { ckls_fail(CKLS_ENOMEM, "out of memory"); return NULL; }
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    pool->args = calloc((size_t)n_threads, sizeof *pool->args);
    if (!pool->threads || !pool->args) { ckls_pool_free(pool); ckls_fail(CKLS_ENOMEM, "out of memory"); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        pool->args[i] = (worker_arg){pool, i};
        if (pthread_create(&pool->threads[i], NULL, worker_main, &pool->args[i]) != 0) {
            pool->n_threads = i; /* free only the started ones */
            ckls_pool_free(pool);
            ckls_fail(CKLS_ENOMEM, "could not start thread %d", i);
            return NULL;
        }
    }
    return pool;
}

void ckls_pool_free(ckls_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n_threads; i++)
        if (pool->threads && pool->threads[i]) pthread_join(pool->threads[i], NULL);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool->threads);
    free(pool->args);
    free(pool);
}

int ckls_pool_threads(const ckls_pool *pool) { return pool ? pool->n_threads : 1; }

static inline int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* When other programs keep the cores busy, a worker may not run for a whole scheduler slice and the caller
 * would wait milliseconds for microseconds of work. The pool notices (the wait exceeds the caller's own share
 * several times in a row) and runs tasks on the caller alone for a while, then tries the workers again. */
void ckls_pool_run(ckls_pool *pool, ckls_task_fn fn, void *ctx) {
    if (!pool || pool->n_threads == 1) { fn(ctx, 0, 1); return; }
    const int64_t t0 = now_ns();
    if (pool->solo_until > t0) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->pending, pool->n_threads - 1);
    atomic_fetch_add(&pool->gen, 1); /* seq_cst: a worker that registers as sleeper after this sees the new gen */
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
    fn(ctx, 0, pool->n_threads);
    const int64_t t1 = now_ns();
    for (unsigned spins = 1; atomic_load_explicit(&pool->pending, memory_order_acquire) > 0; spins++) {
        if (spins % YIELD_EVERY == 0) sched_yield();
        else CPU_RELAX();
    }
    const int64_t waited = now_ns() - t1;
    if (waited > STRAGGLER_NS && waited > t1 - t0) {
        if (++pool->strikes >= STRIKES) {
            pool->strikes = 0;
            pool->solo_until = now_ns() + SOLO_NS;
        }
    } else {
        pool->strikes = 0;
    }
}
