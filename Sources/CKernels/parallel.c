// A small persistent pthread pool: kernels hand it contiguous ranges of independent items.
// Persistent workers avoid thread start-up per op; static ranges keep results deterministic.
#include "ck_parallel.h"
#include "ck_omp.h"
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

extern void openblas_set_num_threads(int);

#define CK_MAX_THREADS 64

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    int nthreads;            // threads used by kernels (workers + caller)
    int nworkers;            // started workers
    unsigned long generation;
    int pending;
    ck_range_fn fn;
    void *ctx;
    size_t n, chunks;
    pthread_mutex_t call_lock; // one parallel region at a time
} ck_pool;

static ck_pool pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER, .start = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER,
    .call_lock = PTHREAD_MUTEX_INITIALIZER,
};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void run_chunk(size_t i) {
    size_t n = pool.n, c = pool.chunks;
    size_t begin = n * i / c, end = n * (i + 1) / c;
    if (end > begin) pool.fn(pool.ctx, begin, end);
}

static void *worker(void *arg) {
    size_t index = (size_t)arg; // worker k runs chunk k (caller runs chunk 0)
    unsigned long seen = 0;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.start, &pool.lock);
        seen = pool.generation;
        int active = index < pool.chunks;
        pthread_mutex_unlock(&pool.lock);
        if (active) run_chunk(index);
        pthread_mutex_lock(&pool.lock);
        if (active && --pool.pending == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

static void pool_init(void) {
    const char *env = getenv("SDSHELL_THREADS");
    int n = env ? atoi(env) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > CK_MAX_THREADS) n = CK_MAX_THREADS;
    pool.nthreads = n;
    openblas_set_num_threads(n);
    ck_omp_set_threads(n);
}

static void ensure_workers(int want) {
    // called with pool.lock held
    while (pool.nworkers < want - 1) {
        pthread_t t;
        pool.nworkers++;
        if (pthread_create(&t, NULL, worker, (void *)(size_t)pool.nworkers) != 0) { pool.nworkers--; break; }
        pthread_detach(t);
    }
}

void ck_set_threads(int n) {
    pthread_once(&pool_once, pool_init);
    if (n < 1) n = 1;
    if (n > CK_MAX_THREADS) n = CK_MAX_THREADS;
    pthread_mutex_lock(&pool.call_lock);
    pool.nthreads = n;
    pthread_mutex_unlock(&pool.call_lock);
    openblas_set_num_threads(n);
    ck_omp_set_threads(n);
}

int ck_get_threads(void) {
    pthread_once(&pool_once, pool_init);
    return pool.nthreads;
}

void ck_parallel_for(size_t n, size_t grain, ck_range_fn fn, void *ctx) {
    if (n == 0) return;
    pthread_once(&pool_once, pool_init);
    if (grain < 1) grain = 1;
    size_t chunks = n / grain;
    if (chunks < 1) chunks = 1;
    if (chunks > (size_t)pool.nthreads) chunks = (size_t)pool.nthreads;
    if (chunks == 1 || pthread_mutex_trylock(&pool.call_lock) != 0) {
        // Single range, or a nested/concurrent region: run inline.
        fn(ctx, 0, n);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    ensure_workers((int)chunks);
    if ((size_t)pool.nworkers + 1 < chunks) chunks = (size_t)pool.nworkers + 1;
    pool.fn = fn; pool.ctx = ctx; pool.n = n; pool.chunks = chunks;
    pool.pending = (int)chunks - 1;
    pool.generation++;
    pthread_cond_broadcast(&pool.start);
    pthread_mutex_unlock(&pool.lock);
    run_chunk(0);
    pthread_mutex_lock(&pool.lock);
    while (pool.pending > 0) pthread_cond_wait(&pool.done, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.call_lock);
}
