import Engine
import Foundation

/// The table `sdbench unet --profile` prints: per operation and shape, the calls, time and rate of
/// one pass, slowest first; then the time by kind of operation and the time outside all primitives.
struct ProfileTable {
    let profiler: ProfilingBackend
    /// Timed passes the profiler saw (its figures are divided by this).
    let passes: Int
    /// Mean wall time of one pass.
    let passSeconds: Double
    /// Measured FMA peak, GFLOP/s.
    let peak: Double
    let rows: Int

    /// The kind an operation belongs to: its first word, with conv2d split by kernel size.
    private func kind(_ operation: String) -> String {
        if operation.hasPrefix("conv2d") {
            let backward = operation.contains("backward") ? " backward" : ""
            return (operation.contains(" 3x3") ? "conv 3x3" : "conv 1x1") + backward
        }
        if operation.hasPrefix("matmul") { return "matmul" }
        if operation.hasPrefix("attention") { return operation.contains("backward") ? "attention backward" : "attention" }
        return operation.split(separator: " ").prefix(2).joined(separator: " ")
    }

    var text: String {
        let entries = profiler.report
        let n = Double(passes)
        var lines = ["per pass (mean of \(passes)): \(String(format: "%.3f", passSeconds)) s",
                     String(format: "%9@ %6@ %6@ %8@  %@", "ms" as NSString, "%" as NSString, "calls" as NSString, "GFLOP/s" as NSString, "operation" as NSString)]
        func line(_ seconds: Double, _ calls: Int, _ flops: Int, _ name: String) -> String {
            let rate = flops > 0 ? String(format: "%8.1f", Double(flops) / seconds / 1e9) : String(repeating: " ", count: 8)
            return String(format: "%9.1f %5.1f%% %6d %@  %@", 1000 * seconds / n, 100 * seconds / n / passSeconds, calls / passes,
                          rate as NSString, name as NSString)
        }
        for e in entries.prefix(rows) { lines.append(line(e.seconds, e.calls, e.flops, e.operation)) }
        if entries.count > rows {
            let rest = entries.dropFirst(rows)
            lines.append(line(rest.reduce(0) { $0 + $1.seconds }, rest.reduce(0) { $0 + $1.calls }, rest.reduce(0) { $0 + $1.flops },
                              "(\(rest.count) more)"))
        }
        lines.append("by kind:")
        var kinds: [String: ProfilingBackend.Entry] = [:]
        for e in entries {
            var k = kinds[kind(e.operation)] ?? ProfilingBackend.Entry(operation: kind(e.operation))
            k.calls += e.calls; k.seconds += e.seconds; k.flops += e.flops
            kinds[k.operation] = k
        }
        for k in kinds.values.sorted(by: { $0.seconds > $1.seconds }) { lines.append(line(k.seconds, k.calls, k.flops, k.operation)) }
        let inside = profiler.totalSeconds
        lines.append(line(passSeconds * n - inside, 0, 0, "outside primitives (layers, allocation, autograd)"))
        lines.append(String(format: "rates are direct-algorithm FLOPs over time; peak %.1f GFLOP/s", peak))
        return lines.joined(separator: "\n")
    }
}
