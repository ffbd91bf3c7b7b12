#ifndef CK_OMP_H
#define CK_OMP_H
/// oneDNN runs on OpenMP (libgomp), whose thread count (nthreads-var) is per calling thread. These
/// functions keep it equal to the engine's thread count on whichever thread calls into oneDNN.
/// The OpenMP entry points are resolved at run time from the libgomp that libdnnl loads, so the
/// SwiftPM target needs no <omp.h> or -fopenmp (the Swift toolchain's clang ships neither).

/// Sets the count oneDNN calls use from now on (n <= 0: the OpenMP default).
void ck_omp_set_threads(int n);
/// Applies the count to the calling thread and returns it (0 when OpenMP is not loaded).
int ck_omp_apply(void);
/// Makes oneDNN calls from the calling thread single-threaded (for work inside ck_parallel_for).
void ck_omp_apply_serial(void);
#endif
