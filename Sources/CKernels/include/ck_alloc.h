#ifndef CK_ALLOC_H
#define CK_ALLOC_H
#include <pthread.h>
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
/// A set of kept blocks: the mechanism behind the tensor cache above, one instance per user (the
/// allocator has one; tests make their own, so other threads cannot disturb them). Thread-safe.
typedef struct ck_block_cache {
    pthread_mutex_t lock;
    struct { void *p; size_t bytes; } slots[8];
    size_t bytes, limit;
} ck_block_cache;
/// An empty cache keeping at most `limit` bytes.
void ck_block_cache_init(ck_block_cache *c, size_t limit);
/// The kept block that fits `bytes` most tightly (at most a quarter larger), taken out; NULL if none.
void *ck_block_cache_take(ck_block_cache *c, size_t bytes);
/// Keeps `p` (of `bytes`) when the limit and a free slot allow; 1 when kept, else 0 (the caller frees it).
int ck_block_cache_put(ck_block_cache *c, void *p, size_t bytes);
/// Sets the limit; a limit of 0 frees every kept block.
void ck_block_cache_set_limit(ck_block_cache *c, size_t limit);
/// Frees every kept block (with free()).
void ck_block_cache_trim(ck_block_cache *c);
/// Bytes kept now, and the limit now.
size_t ck_block_cache_bytes(ck_block_cache *c);
size_t ck_block_cache_limit(ck_block_cache *c);

/// Turns the huge-page advice off (1: on, the default); SDSHELL_HUGE_PAGES=0 does this at start.
void ck_set_huge_pages(int enabled);
#endif
