#ifndef CK_PARALLEL_H
#define CK_PARALLEL_H
#include <stddef.h>

/// Body of a parallel loop: processes items [begin, end).
typedef void (*ck_range_fn)(void *ctx, size_t begin, size_t end);

/// Sets the number of worker threads used by every kernel (>= 1). Also applies to OpenBLAS and oneDNN.
void ck_set_threads(int n);
/// The number of threads kernels use.
int ck_get_threads(void);

/// Runs fn over [0, n) split into at most ck_get_threads() contiguous ranges, each at least `grain`
/// items. Blocks until all ranges are done. Each item is processed by exactly one call, so results
/// never depend on the thread count as long as fn computes each item independently.
void ck_parallel_for(size_t n, size_t grain, ck_range_fn fn, void *ctx);

#endif
