import ArgumentParser
import Engine
import Foundation
import Models

/// The measurement `sdbench unet` and `sdbench vae` share: one warm-up pass and `repeats` timed
/// passes of `pass`, the median time, the direct-algorithm FLOPs counted in a pass over that time as
/// a share of the measured FMA peak, peak memory, and with `profile` the per-operation table.
struct TimedPasses {
    var repeats: Int
    var profile: Bool
    var profileRows: Int
    /// The backend the passes run on (wrapped in a `ProfilingBackend` when profiling).
    var backend: any Backend
    /// The FMA peak measured before the model was loaded (the higher of it and the one after counts).
    var peakBefore: Double

    /// Runs the passes and prints "<label>: N s/<unit> ... N% of peak ... peak resident N GB".
    func run(label: String, unit: String, _ pass: () throws -> Void) throws {
        let profiler = profile ? ProfilingBackend(backend) : nil
        Engine.use(profiler ?? backend)
        defer { Engine.use(backend) }
        let device = backend as? OpenCLBackend
        let residentBefore = Memory.residentBytes(), tensorsBefore = TensorStorage.liveBytes
        TensorStorage.resetPeakBytes()
        var times: [Double] = []
        var flops = 0
        for n in 0...repeats {
            FLOPCounter.reset()
            if n == 1 { profiler?.reset() }
            let t0 = DispatchTime.now().uptimeNanoseconds
            try withNoGrad { try pass() }
            try device?.synchronize() // a device backend queues the work: wait for it
            if n > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
            flops = FLOPCounter.count
        }
        let peak = max(peakBefore, Peak.measure())
        let median = times.sorted()[times.count / 2]
        let rate = Double(flops) / median / 1e9
        if let profiler {
            print(ProfileTable(profiler: profiler, passes: repeats, passSeconds: times.reduce(0, +) / Double(times.count), peak: peak,
                               rows: profileRows).text)
        }
        if let device, ProcessInfo.processInfo.environment["SDSHELL_OPENCL_PROFILE"] != nil { print(device.profileReport()) }
        print(String(format: "%@: %.2f s/%@ (passes %@); %.1f GFLOP per %@ (direct count) = %.1f GFLOP/s, %.0f%% of peak (%.1f GFLOP/s measured FMA peak, %d threads); peak resident %.2f GB (%.2f GB before the passes; tensors %.2f GB before, %.2f GB at most)",
                     label as NSString, median, unit as NSString, times.map { String(format: "%.2f", $0) }.joined(separator: " ") as NSString,
                     Double(flops) / 1e9, unit as NSString, rate, 100 * rate / peak, peak, Engine.threads,
                     Double(Memory.peakResidentBytes()) / 1e9, Double(residentBefore) / 1e9,
                     Double(tensorsBefore) / 1e9, Double(TensorStorage.peakBytes) / 1e9))
    }
}

/// The options of a timed-passes benchmark.
struct TimedPassOptions: ParsableArguments {
    @Option(help: "Timed passes (the median is reported) after one warm-up.") var repeats = 3
    @Option(help: "Backend: cpu, opencl or opencl:N.") var backend = "cpu"
    @Flag(help: "Time every primitive (per operation and shape) over the timed passes and print the table.") var profile = false
    @Option(help: "Rows of the profile table.") var profileRows = 40

    /// The timer and the model: the folder made if needed, the FMA peak measured, then the model loaded.
    func timer(loading weights: BenchModelOptions) throws -> (TimedPasses, StableDiffusionModel) {
        let timer = try timer(for: weights)
        return (timer, try weights.load())
    }

    /// The timer, with the model folder made first (so that its making is not in the baseline).
    func timer(for weights: BenchModelOptions) throws -> TimedPasses {
        let chosen = try Engine.backend(named: backend)
        try weights.prepare()
        return TimedPasses(repeats: repeats, profile: profile, profileRows: profileRows, backend: chosen, peakBefore: Peak.measure())
    }
}
