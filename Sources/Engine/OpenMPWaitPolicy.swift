import Foundation

/// oneDNN runs its GEMMs and convolutions on libgomp threads, which by default spin for a while at
/// every barrier and after every parallel region. The engine's own kernels run on a separate
/// pthread pool (`ck_parallel_for`), so on a machine with as many cores as threads the spinning
/// libgomp threads take the cores from the pool's threads at every switch between the two:
/// measured on this project's 2-core machine, a 256x256 UNet step took 1.59-1.65 s with libgomp's
/// default and 1.36-1.43 s with `OMP_WAIT_POLICY=PASSIVE`; beside another busy process the 64x64
/// quick start took 194 s instead of 11 s. libgomp reads the variable once, as it loads, before
/// `main`; so the executables start themselves again with `OMP_WAIT_POLICY=PASSIVE` when the
/// variable is not set. Set it (e.g. to `ACTIVE`) to keep libgomp's default.
public enum OpenMPWaitPolicy {
    /// Re-executes the process with `OMP_WAIT_POLICY=PASSIVE` unless the variable is set; returns
    /// (keeping libgomp's default) only when the variable is set or the exec fails.
    public static func passiveUnlessSet() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // exec failed: carry on with libgomp's default policy.
    }
}
