import Foundation

/// oneDNN runs its convolutions on libgomp threads, which by default spin at every barrier. When
/// another process holds one of the cores, the spinning thread burns its time slice at each
/// barrier while the thread it waits for is not running: the 64x64 quick start took 194 s beside a
/// busy process instead of 11 s (4.6 s on one thread). libgomp reads `OMP_WAIT_POLICY` once, as it
/// loads, before `main`; so sdshell starts itself again with `OMP_WAIT_POLICY=PASSIVE` when the
/// variable is not set. Set it (e.g. to `ACTIVE`) to keep libgomp's default.
enum OpenMPWaitPolicy {
    static func passiveUnlessSet() {
        guard getenv("OMP_WAIT_POLICY") == nil else { return }
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // exec failed: carry on with libgomp's default policy.
    }
}
