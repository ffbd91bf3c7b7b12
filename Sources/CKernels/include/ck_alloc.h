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
///
/// Blocks of 32 MiB and more (which glibc maps afresh for every allocation, so that each use
/// page-faults and the kernel zeroes every page: about 9 GB/s here, 0.4 s of a 512x512 VAE decode)
/// are kept when freed, up to a limit (512 MiB by default), and handed to a later request they
/// fit (at most a quarter larger). ck_tensor_cache_trim returns them to the system.
void *ck_alloc_tensor(size_t bytes);
/// `bytes` must be the size the block was allocated with.
void ck_free_tensor(void *p, size_t bytes);
/// Sets the most bytes of freed blocks kept (0: none; the cache is emptied).
void ck_tensor_cache_set_limit(size_t bytes);
/// The limit now.
size_t ck_tensor_cache_limit(void);
/// Frees every kept block.
void ck_tensor_cache_trim(void);
/// Bytes of freed blocks kept now.
size_t ck_tensor_cache_bytes(void);
/// Turns the huge-page advice off (1: on, the default); SDSHELL_HUGE_PAGES=0 does this at start.
void ck_set_huge_pages(int enabled);
#endif
