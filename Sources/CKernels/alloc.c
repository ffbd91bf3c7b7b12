// Tensor storage allocation (see ck_alloc.h).
#include "ck_alloc.h"
#include <malloc.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)

void ck_tune_allocator(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

static int huge_pages_enabled = 1;
void ck_set_huge_pages(int enabled) { huge_pages_enabled = enabled; }

void *ck_alloc_tensor(size_t bytes) {
    void *p = NULL;
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

void ck_free_tensor(void *p) { free(p); }
