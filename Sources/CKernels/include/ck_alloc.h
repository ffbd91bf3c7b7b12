#ifndef CK_ALLOC_H
#define CK_ALLOC_H
#include <stddef.h>
/// Makes glibc serve large blocks (up to 32 MiB, its cap) from the reusable heap instead of a fresh
/// mmap per allocation, and keeps freed memory for reuse, so tensor outputs do not page-fault on
/// every op. Called once by the CPU backend.
void ck_tune_allocator(void);

/// Memory for a tensor's elements: 64-byte aligned; blocks of 2 MiB and more are 2 MiB aligned and their
/// whole 2 MiB pages advised to be transparent huge pages (one page fault and one TLB entry per 2 MiB instead of 512).
/// NULL when the memory cannot be had. Release with ck_free_tensor.
void *ck_alloc_tensor(size_t bytes);
void ck_free_tensor(void *p);
/// Turns the huge-page advice off (1: on, the default); SDSHELL_HUGE_PAGES=0 does this at start.
void ck_set_huge_pages(int enabled);
#endif
