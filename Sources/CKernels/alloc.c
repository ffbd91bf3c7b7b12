// Allocator settings for tensor storage (see ck_alloc.h).
#include "ck_alloc.h"
#include <malloc.h>

void ck_tune_allocator(void) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}
