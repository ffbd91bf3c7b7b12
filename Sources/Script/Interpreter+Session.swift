import Diffusion
import Engine
import Foundation
import Formats

/// Session commands: `help`, `backend`, `devices`, `run` and `replay`.
extension Interpreter {
    func help(_ call: CommandCall) throws {
        try call.atMost(1)
        if let topic = call.positional.first?.description {
            if let spec = CommandCatalog.spec(topic) {
                host.write("\(spec.usage)\n  \(spec.summary)")
                if spec.name == "train" {
                    host.write("  options (default, meaning):")
                    for line in GenerationParameters.helpLines(TrainingParameters.all, option: { "\($0)=\($1)" }, nativeSize: "-") { host.write(line) }
                } else if !spec.options.isEmpty {
                    host.write("  options: " + spec.options.joined(separator: ", "))
                }
                if spec.takesSettings {
                    host.write("  generation parameters (default, meaning):")
                    let (w, h) = nativeSize
                    for line in GenerationParameters.helpLines(option: { "\($0)=\($1)" }, nativeSize: "\(w)x\(h)") { host.write(line) }
                    host.write("  and the session settings: " + Settings.sessionDefinitions.map(\.name).joined(separator: ", "))
                }
            } else if let setting = Settings.definition(topic) {
                host.write("\(setting.name): \(setting.help); now \(self.setting(setting.name)?.literal ?? defaultDescription(setting.name))")
            } else {
                throw ScriptError(call.positionalPositions[0], "no help for `\(topic)`\(NameSuggestion.hint(topic, in: CommandCatalog.names + Settings.names))")
            }
            return
        }
        host.write("commands:")
        for spec in CommandCatalog.commands { host.write("  " + spec.usage.padding(toLength: 58, withPad: " ", startingAt: 0) + spec.summary) }
        host.write("statements: let NAME = EXPR; for NAME in LIST { ... }; \"a bare prompt\" options; pasted A1111 parameters")
        host.write("settings (`show` for values): " + Settings.names.joined(separator: ", "))
    }

    /// `backend cpu` / `backend opencl [device=N]`: switches the engine (process-wide, or within
    /// the caller's `Engine.withBackend` scope); tensors already made move over on first use.
    func backend(_ call: CommandCall) throws {
        let name = try call.string(at: 0, "a backend name (cpu or opencl)")
        try call.atMost(1)
        let value = try checked("backend", .string(name), at: call.positionalPositions[0])
        let device = try call.optionInteger("device")
        if value == .string("cpu") {
            if let device, device != 0 { throw ScriptError(call.optionPosition("device"), "the cpu backend has one device (0)") }
            Engine.use(Engine.cpu)
        } else {
            if let device, device < 0 { throw ScriptError(call.optionPosition("device"), "device numbers start at 0 (see `devices`)") }
            do {
                Engine.use(try Engine.openCL(device: device))
            } catch {
                let position = device == nil ? call.positionalPositions[0] : call.optionPosition("device")
                throw ScriptError(position, "the OpenCL backend is not available: \(error); the backend stays \(Engine.backend.name)")
            }
        }
        settings["backend"] = value
        // Journaled, so that a replay computes where the images were made (OpenCL's images may
        // differ from the CPU's by a level in a few pixels).
        try journal.record(call.source(), outputs: [])
        host.write(Engine.backendDescription)
    }

    /// The CPU, and the OpenCL devices the ICD loader finds, marking the one computing now.
    func devices() {
        let current = Engine.backend as? OpenCLBackend
        host.write("cpu 0: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(Engine.threads) threads  (backend cpu)"
                   + (current == nil ? "  *" : ""))
        switch OpenCLDevices.list() {
        case let .success(list):
            if list.isEmpty { host.write("opencl: platforms found, but no devices") }
            for d in list {
                host.write(String(format: "opencl %d: %@ (%@, %@), %d compute units, %.1f GiB, %@  (backend opencl device=%d)",
                                  d.index, d.name, d.kind, d.platform, d.computeUnits, Double(d.memoryBytes) / 1_073_741_824, d.version, d.index)
                           + (current?.device.index == d.index ? "  *" : ""))
            }
        case let .failure(reason):
            host.write("opencl: \(reason)")
        }
    }

    /// Reads a script file, with an error naming it when it cannot.
    func readScript(_ path: String, at position: SourcePosition) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw ScriptError(position, "cannot read \(path)") }
        guard let text = String(data: data, encoding: .utf8) else { throw ScriptError(position, "\(path) is not UTF-8 text") }
        return text
    }

    /// Runs `body` with `path` marked as running, refusing a file that is already running (a
    /// script that runs or replays itself).
    func whileRunning<T>(_ path: String, at position: SourcePosition, _ body: () throws -> T) throws -> T {
        let key = URL(fileURLWithPath: path).standardizedFileURL.path
        guard !running.contains(key) else { throw ScriptError(position, "\(path) runs itself") }
        running.append(key)
        defer { running.removeLast() }
        return try body()
    }

    func runFile(_ call: CommandCall) throws {
        let path = try call.string(at: 0, "a script path")
        try call.atMost(1)
        try whileRunning(path, at: call.position) {
            for statement in try Parser.parse(try readScript(path, at: call.position), file: path) { try execute(statement) }
        }
    }

    /// `replay FILE [verify=true]`: a journal or script is run again; an image is made again from
    /// its parameters (a grid from its `sdscript` statement). With `verify`, each new image is
    /// compared with the one recorded (`#>` digests in journals, the pixels of a PNG), and a
    /// difference is an error. A journal replays in a sandbox (`ReplaySandbox`): its images, its
    /// trainings' files and the embeddings it creates go to a folder of its own, so replaying
    /// never changes the original session's files, and its settings end with it. An image only
    /// ever remakes itself.
    func replay(_ call: CommandCall) throws {
        let path = try call.string(at: 0, "a journal, script or PNG path")
        try call.atMost(1)
        let verify = try call.optionBool("verify") ?? false
        var checked = 0, reproduced = 0
        var differing: [String] = []
        if path.lowercased().hasSuffix(".png") {
            let image = try PNGFile.read(path)
            let before = produced.count
            if let statement = image.text("sdscript") {
                try execute(try Self.imageStatement(statement, from: path))
            } else if let parameters = image.text("parameters") {
                try generateFromInfotext(parameters, at: SourcePosition(file: path, line: 1, column: 1))
            } else {
                throw ScriptError(call.positionalPositions[0], "\(path) has no generation parameters to replay")
            }
            let original = try ImageDigest.of(png: path)
            checked = 1
            if produced[before...].contains(where: { $0.digest == original }) { reproduced = 1 } else { differing.append(path) }
        } else {
            let text = try readScript(path, at: call.positionalPositions[0])
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let statements = try Parser.parse(text, file: path)
            let outer = replaySandbox
            if outer == nil { replaySandbox = try located(call.position) { try ReplaySandbox.make(in: outdir, for: path) } }
            // The replayed session's settings end with it (the model it loaded stays loaded).
            let sessionSettings = settings
            defer { replaySandbox = outer; settings = sessionSettings; embeddingsStorage = nil; pipeline = nil }
            embeddingsStorage = nil
            if let replaySandbox, outer == nil { host.write("replaying \(path) into \(replaySandbox.outdir)") }
            try whileRunning(path, at: call.position) {
                for (i, statement) in statements.enumerated() {
                    // The `#>` lines between this statement and the next are what it made last time.
                    let from = statement.position.line
                    let to = i + 1 < statements.count ? statements[i + 1].position.line - 1 : lines.count
                    let recorded = (from..<max(from, to)).compactMap { n -> (path: String, digest: String)? in
                        let line = lines[n]   // 0-based n is line n + 1: the lines after the statement's first
                        guard line.hasPrefix("#> ") else { return nil }
                        let parts = line.dropFirst(3).split(separator: " ")
                        guard parts.count >= 2, let digest = parts.last else { return nil }
                        return (parts.dropLast().joined(separator: " "), String(digest))
                    }
                    let before = produced.count
                    try execute(statement)
                    guard verify else { continue }
                    let made = Array(produced[before...])
                    for (k, record) in recorded.enumerated() {
                        checked += 1
                        if k < made.count, made[k].digest == record.digest { reproduced += 1 } else {
                            differing.append(record.path + (k < made.count ? " (now \(made[k].path))" : " (not made)"))
                        }
                    }
                }
            }
        }
        guard verify else { return }
        host.write("reproduced \(reproduced)/\(checked)")
        for d in differing { host.write("differs: \(d)") }
        if checked == 0 { host.warn("\(path) records no images to compare") }
        if !differing.isEmpty {
            throw ScriptError(call.position, "\(differing.count) of \(checked) image\(checked == 1 ? "" : "s") from \(path) differ")
        }
    }

    /// Options an image's statement may not carry: where files go is the session's choice.
    static let optionsRefusedFromImages: Set<String> = ["outdir", "models_dir", "inline"]

    /// The statement in an image's `sdscript` chunk, if it is one generation (`grid` or `generate`)
    /// and nothing else; its settings apply to it alone. Anything else in a downloaded PNG
    /// (settings, `embedding new`, loops) is refused.
    static func imageStatement(_ text: String, from path: String) throws -> Statement {
        let where_ = SourcePosition(file: path, line: 1, column: 1)
        let statements: [Statement]
        do {
            statements = try Parser.parse(text, file: path + " (sdscript)")
        } catch {
            throw ScriptError(where_, "the image's sdscript text does not parse (\(error)); an image can only remake itself")
        }
        guard statements.count == 1, case let .command(name, arguments, position) = statements[0], name == "grid" || name == "generate" else {
            throw ScriptError(where_, "the image's sdscript text is not a single `grid` or `generate` statement; replaying an image only remakes that image, so it was not run")
        }
        if let refused = arguments.first(where: { $0.name.map(optionsRefusedFromImages.contains) ?? false }) {
            throw ScriptError(refused.position, "an image's statement may not set `\(refused.name!)`; replaying an image only remakes that image, so it was not run")
        }
        return .command(name: name, arguments: arguments, position)
    }
}

/// Where a replayed journal writes: `OUTDIR/replays/JOURNAL-N/` for images, grids, trainings'
/// files and its journal, and `embeddings/` inside it for the embeddings it creates (searched
/// before the session's embeddings folders, so the replay's own versions are used).
struct ReplaySandbox {
    let outdir: String
    var embeddings: String { outdir + "/embeddings" }

    /// A new folder of its own under `root/replays/` (claimed with mkdir, so concurrent replays
    /// of one journal never share one).
    static func make(in root: String, for journal: String) throws -> ReplaySandbox {
        let parent = root + "/replays"
        try Folder.create(parent)
        let stem = ((journal as NSString).lastPathComponent as NSString).deletingPathExtension
        for n in 1...10_000 {
            let candidate = parent + "/" + stem + (n == 1 ? "" : "-\(n)")
            if mkdir(candidate, 0o755) == 0 { return ReplaySandbox(outdir: candidate) }
            guard errno == EEXIST else { throw FormatError.io(file: candidate, reason: String(cString: strerror(errno))) }
        }
        throw FormatError.io(file: parent, reason: "10,000 replays of \(stem) already")
    }
}
