import ArgumentParser
import Engine
import Foundation
import Models

/// `sdbench unet`: seconds per CFG step (one UNet pass at batch 2) of the full-size SD 1.5 UNet
/// with random weights, its effective rate against the machine's measured FMA peak (the direct
/// algorithms' FLOPs, counted by `FLOPCounter`, over the time), and peak memory. The same step in
/// PyTorch: `scripts/bench_reference_unet.py`.
struct UNetBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unet", abstract: "SD 1.5 UNet step time and effective rate.")

    @Option(help: "Image size in pixels (the latent is size/8).") var size = 256
    @Option(help: "Timed passes (the median is reported) after one warm-up.") var repeats = 3
    @OptionGroup var weights: SD15ModelOptions
    @Option(help: "Backend: cpu, opencl or opencl:N.") var backend = "cpu"
    @Flag(help: "Time every primitive (per operation and shape) over the timed passes and print the table.") var profile = false
    @Option(help: "Rows of the profile table.") var profileRows = 40

    func run() throws {
        let chosen = try Engine.backend(named: backend)
        let profiler = profile ? ProfilingBackend(chosen) : nil
        Engine.use(profiler ?? chosen)
        let device = chosen as? OpenCLBackend
        try weights.prepare()
        let peakBefore = Peak.measure()
        let model = try weights.load()
        let l = size / 8
        var state: UInt64 = 1
        func noise(_ n: Int) -> [Float] {
            (0..<n).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state >> 11) % 2000) / 1000 - 1
            }
        }
        let x = try Tensor(shape: [2, 4, l, l], data: noise(2 * 4 * l * l))
        let context = try Tensor(shape: [2, 77, 768], data: noise(2 * 77 * 768))
        var times: [Double] = []
        var flops = 0
        for pass in 0...repeats {
            FLOPCounter.reset()
            if pass == 1 { profiler?.reset() }
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try withNoGrad { try model.unet(x, timesteps: [500, 500], context: context) }
            try device?.synchronize() // a device backend queues the work: wait for it
            let t = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if pass > 0 { times.append(t) }
            flops = FLOPCounter.count
        }
        let peak = max(peakBefore, Peak.measure())
        let median = times.sorted()[times.count / 2]
        let rate = Double(flops) / median / 1e9
        if let profiler { print(ProfileTable(profiler: profiler, passes: repeats, passSeconds: times.reduce(0, +) / Double(times.count), peak: peak, rows: profileRows).text) }
        if let device, ProcessInfo.processInfo.environment["SDSHELL_OPENCL_PROFILE"] != nil { print(device.profileReport()) }
        print(String(format: "%dx%d, batch 2 (one CFG step), %@ precision: %.2f s/step (passes %@); %.1f GFLOP per step (direct count) = %.1f GFLOP/s, %.0f%% of peak (%.1f GFLOP/s measured FMA peak, %d threads); peak resident %.2f GB",
                     size, size, weights.precision as NSString, median, times.map { String(format: "%.2f", $0) }.joined(separator: " ") as NSString,
                     Double(flops) / 1e9, rate, 100 * rate / peak, peak, Engine.threads, Double(Memory.peakResidentBytes()) / 1e9))
    }
}
