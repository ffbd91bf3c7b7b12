// Per-thread OpenMP thread counts for oneDNN calls (see ck_omp.h).
#include "ck_omp.h"
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void (*p_set)(int) = NULL;
static int (*p_get)(void) = NULL;
static int requested = 0, default_threads = 0;

static void resolve(void) {
    void *f = dlsym(RTLD_DEFAULT, "omp_set_num_threads"), *g = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    memcpy(&p_set, &f, sizeof f);
    memcpy(&p_get, &g, sizeof g);
    if (p_get) default_threads = p_get();
}

static int apply(int want) {
    pthread_once(&once, resolve);
    if (!p_get) return 0;
    if (want > 0 && p_set && p_get() != want) p_set(want);
    return p_get();
}

void ck_omp_set_threads(int n) {
    __atomic_store_n(&requested, n > 0 ? n : 0, __ATOMIC_RELAXED);
    (void)ck_omp_apply();
}

int ck_omp_apply(void) {
    pthread_once(&once, resolve);
    int want = __atomic_load_n(&requested, __ATOMIC_RELAXED);
    return apply(want > 0 ? want : default_threads);
}

void ck_omp_apply_serial(void) { (void)apply(1); }
