// Tensor storage allocation (see ck_alloc.h).
#include "ck_alloc.h"
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)
/// glibc's largest mmap threshold: blocks from here up are mmapped per allocation and unmapped on free.
#define MMAPPED_BLOCK ((size_t)32 << 20)
#define CACHE_SLOTS ((int)(sizeof(((ck_block_cache *)0)->slots) / sizeof(((ck_block_cache *)0)->slots[0])))

void ck_tune_allocator(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

static int huge_pages_enabled = 1;
void ck_set_huge_pages(int enabled) { huge_pages_enabled = enabled; }

void ck_block_cache_init(ck_block_cache *c, size_t limit) {
    pthread_mutex_init(&c->lock, NULL);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        c->slots[i].p = NULL;
        c->slots[i].bytes = 0;
    }
    c->bytes = 0;
    c->limit = limit;
}

void *ck_block_cache_take(ck_block_cache *c, size_t bytes) {
    int best = -1;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < CACHE_SLOTS; i++)
        if (c->slots[i].p && c->slots[i].bytes >= bytes && c->slots[i].bytes - bytes <= bytes / 4 &&
            (best < 0 || c->slots[i].bytes < c->slots[best].bytes)) best = i;
    void *p = NULL;
    if (best >= 0) {
        p = c->slots[best].p;
        c->bytes -= c->slots[best].bytes;
        c->slots[best].p = NULL;
        c->slots[best].bytes = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return p;
}

int ck_block_cache_put(ck_block_cache *c, void *p, size_t bytes) {
    int kept = 0;
    pthread_mutex_lock(&c->lock);
    if (c->bytes + bytes <= c->limit)
        for (int i = 0; i < CACHE_SLOTS; i++)
            if (!c->slots[i].p) {
                c->slots[i].p = p;
                c->slots[i].bytes = bytes;
                c->bytes += bytes;
                kept = 1;
                break;
            }
    pthread_mutex_unlock(&c->lock);
    return kept;
}

void ck_block_cache_trim(ck_block_cache *c) {
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        free(c->slots[i].p);
        c->slots[i].p = NULL;
        c->slots[i].bytes = 0;
    }
    c->bytes = 0;
    pthread_mutex_unlock(&c->lock);
}

void ck_block_cache_set_limit(ck_block_cache *c, size_t limit) {
    pthread_mutex_lock(&c->lock);
    c->limit = limit;
    pthread_mutex_unlock(&c->lock);
    if (limit == 0) ck_block_cache_trim(c);
}

size_t ck_block_cache_bytes(ck_block_cache *c) {
    pthread_mutex_lock(&c->lock);
    size_t n = c->bytes;
    pthread_mutex_unlock(&c->lock);
    return n;
}

size_t ck_block_cache_limit(ck_block_cache *c) {
    pthread_mutex_lock(&c->lock);
    size_t n = c->limit;
    pthread_mutex_unlock(&c->lock);
    return n;
}

// The allocator's own cache of freed blocks of MMAPPED_BLOCK bytes and more (see ck_alloc.h).
static ck_block_cache tensor_cache = {
    .lock = PTHREAD_MUTEX_INITIALIZER, .bytes = 0, .limit = (size_t)512 << 20};

void ck_tensor_cache_set_limit(size_t bytes) { ck_block_cache_set_limit(&tensor_cache, bytes); }
void ck_tensor_cache_trim(void) { ck_block_cache_trim(&tensor_cache); }
size_t ck_tensor_cache_limit(void) { return ck_block_cache_limit(&tensor_cache); }
size_t ck_tensor_cache_bytes(void) { return ck_block_cache_bytes(&tensor_cache); }

void *ck_alloc_tensor(size_t bytes) {
    void *p = NULL;
    if (bytes >= MMAPPED_BLOCK && (p = ck_block_cache_take(&tensor_cache, bytes))) return p;
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
    if (p && bytes >= MMAPPED_BLOCK && ck_block_cache_put(&tensor_cache, p, bytes)) return;
    free(p);
}
