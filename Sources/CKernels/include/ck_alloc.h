#ifndef CK_ALLOC_H
#define CK_ALLOC_H
/// Makes glibc serve large blocks (up to 32 MiB, its cap) from the reusable heap instead of a fresh
/// mmap per allocation, and keeps freed memory for reuse, so tensor outputs do not page-fault on
/// every op. Called once by the CPU backend.
void ck_tune_allocator(void);
#endif
