// Tensor storage allocation (see ck_alloc.h).
#include "ck_alloc.h"
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)
/// glibc's largest mmap threshold: blocks from here up are mmapped per allocation and unmapped on free.
#define MMAPPED_BLOCK ((size_t)32 << 20)

void ck_tune_allocator(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

static int huge_pages_enabled = 1;
void ck_set_huge_pages(int enabled) { huge_pages_enabled = enabled; }

// Freed blocks of MMAPPED_BLOCK bytes and more, kept for reuse (see ck_alloc.h). Guarded by lock.
#define CACHE_SLOTS 8
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct { void *p; size_t bytes; } cache[CACHE_SLOTS];
static size_t cached_bytes = 0, cache_limit = (size_t)512 << 20;

/// The cached block that fits `bytes` most tightly (at most 1/4 larger), taken out of the cache.
static void *cache_take(size_t bytes) {
    int best = -1;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].p && cache[i].bytes >= bytes && cache[i].bytes - bytes <= bytes / 4 &&
            (best < 0 || cache[i].bytes < cache[best].bytes)) best = i;
    void *p = NULL;
    if (best >= 0) {
        p = cache[best].p;
        cached_bytes -= cache[best].bytes;
        cache[best].p = NULL;
        cache[best].bytes = 0;
    }
    pthread_mutex_unlock(&lock);
    return p;
}

/// Keeps a freed block when the limit and a free slot allow; returns 1 when kept.
static int cache_put(void *p, size_t bytes) {
    int kept = 0;
    pthread_mutex_lock(&lock);
    if (cached_bytes + bytes <= cache_limit)
        for (int i = 0; i < CACHE_SLOTS; i++)
            if (!cache[i].p) {
                cache[i].p = p;
                cache[i].bytes = bytes;
                cached_bytes += bytes;
                kept = 1;
                break;
            }
    pthread_mutex_unlock(&lock);
    return kept;
}

void ck_tensor_cache_set_limit(size_t bytes) {
    pthread_mutex_lock(&lock);
    cache_limit = bytes;
    pthread_mutex_unlock(&lock);
    if (bytes == 0) ck_tensor_cache_trim();
}

void ck_tensor_cache_trim(void) {
    pthread_mutex_lock(&lock);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        free(cache[i].p);
        cache[i].p = NULL;
        cache[i].bytes = 0;
    }
    cached_bytes = 0;
    pthread_mutex_unlock(&lock);
}

size_t ck_tensor_cache_limit(void) {
    pthread_mutex_lock(&lock);
    size_t n = cache_limit;
    pthread_mutex_unlock(&lock);
    return n;
}

size_t ck_tensor_cache_bytes(void) {
    pthread_mutex_lock(&lock);
    size_t n = cached_bytes;
    pthread_mutex_unlock(&lock);
    return n;
}

void *ck_alloc_tensor(size_t bytes) {
    void *p = NULL;
    if (bytes >= MMAPPED_BLOCK && (p = cache_take(bytes))) return p;
    if (huge_pages_enabled && bytes >= HUGE_PAGE) {
        if (posix_memalign(&p, HUGE_PAGE, bytes) != 0) return NULL;
        // Advice only (the block works without it); the tail under 2 MiB keeps small pages, so no
        // memory is added to the block.
        (void)madvise(p, bytes & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
        return p;
    }
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

void ck_free_tensor(void *p, size_t bytes) {
    if (p && bytes >= MMAPPED_BLOCK && cache_put(p, bytes)) return;
    free(p);
}
