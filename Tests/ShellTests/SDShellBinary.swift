import Foundation

/// Where the `sdshell` executable the tests drive is.
enum SDShellBinary {
    /// The sdshell product built with the tests ($SDSHELL_BINARY overrides).
    static let path: String? = {
        let fm = FileManager.default
        if let path = ProcessInfo.processInfo.environment["SDSHELL_BINARY"], fm.isExecutableFile(atPath: path) { return path }
        var starts = [Bundle.main.bundleURL, Bundle.main.executableURL?.deletingLastPathComponent()].compactMap { $0 }
        if let first = CommandLine.arguments.first {
            starts.append(URL(fileURLWithPath: first).deletingLastPathComponent())
        }
        for start in starts {
            var dir = start.standardizedFileURL
            for _ in 0..<5 {
                for candidate in [dir.appendingPathComponent("sdshell"), dir.appendingPathComponent("debug/sdshell")] {
                    var isDirectory: ObjCBool = false
                    if fm.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                       fm.isExecutableFile(atPath: candidate.path) {
                        return candidate.path
                    }
                }
                dir = dir.deletingLastPathComponent()
            }
        }
        return nil
    }()
}
