import Engine
import Foundation
import Formats
import Testing
import TestSupport
@testable import Script

/// The commands the other suites do not reach: models, info, inspect, run, backend, devices,
/// help, quit, embeddings reload.
@Suite(.serialized) struct CommandTests {
    let folder: String

    init() throws {
        folder = NSTemporaryDirectory() + "sdshell-commands-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/models", withIntermediateDirectories: true)
    }

    func shell(_ host: RecordingHost) -> Interpreter {
        Interpreter(host: host, hashes: HashCache(location: folder + "/hashes.json"))
    }

    @Test func modelsListsCheckpointsAndABareNameLoads() throws {
        try FileManager.default.createSymbolicLink(atPath: folder + "/models/tiny", withDestinationPath: TestFixtures.tinyModelPath)
        FileManager.default.createFile(atPath: folder + "/models/other.safetensors", contents: Data())
        FileManager.default.createFile(atPath: folder + "/models/notes.txt", contents: Data())
        let host = RecordingHost()
        let s = shell(host)
        try s.run(source: "set models_dir=\"\(folder)/models\"\nmodels\nmodel tiny", file: "t")
        #expect(host.lines[0] == "\(folder)/models/other.safetensors")
        #expect(host.lines[1] == "\(folder)/models/tiny")
        #expect(host.lines[2] == "loaded tiny: SD 1.x, no hash (a folder), 16-bit weights")
        #expect(throws: ScriptError.self) { try s.run(source: "model tinny", file: "t") }
        do { try s.run(source: "model tinny", file: "t") } catch { #expect("\(error)".hasSuffix("did you mean `tiny`?")) }
    }

    @Test("model prediction= overrides A1111's v test and is journalled; an SDXL folder's images default to its native size")
    func predictionOverrideAndNativeSize() throws {
        let host = RecordingHost()
        let s = shell(host)
        let v = TestFixtures.fixturePath("tiny-sd2-v.safetensors")
        try s.run(source: "model \"\(v)\"", file: "t")
        #expect(host.lines.last!.hasPrefix("loaded tiny-sd2-v: SD 2.x, v prediction (detected), hash "), "\(host.lines)")
        try s.run(source: "model \"\(v)\" prediction=\"eps\"", file: "t")
        #expect(host.lines.last!.hasPrefix("loaded tiny-sd2-v: SD 2.x, epsilon prediction (given), hash "), "\(host.lines)")
        do { try s.run(source: "model \"\(v)\" prediction=\"x0\"", file: "t"); Issue.record("x0 accepted") } catch {
            #expect("\(error)".contains("prediction must be \"v\" or \"eps\""), "\(error)")
        }
        try s.run(source: "model \"\(TestFixtures.fixturePath("tiny-sdxl"))\"\nset steps=1 outdir=\"\(folder)/out\" embeddings_dir=\"\(folder)/e\"\n\"a b\" seed=3", file: "t")
        #expect(host.lines.contains("loaded tiny-sdxl: SDXL, no hash (a folder), 16-bit weights"), "\(host.lines)")
        let png = String(host.lines.last!.split(separator: " ")[0])
        let image = try PNGFile.read(png)
        #expect(image.width == 16 && image.height == 16)
        let journal = try (s.journal.path.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? "") + s.journal.pending.joined()
        #expect(journal.contains("model \"\(v)\" precision=\"half\" prediction=\"eps\"\n"), "\(journal)")
    }

    @Test func infoAndInspectDescribeFiles() throws {
        let host = RecordingHost()
        let s = shell(host)
        try s.run(source: "model \"\(TestFixtures.tinyModelPath)\"\nset size=64x64 steps=1 outdir=\"\(folder)/out\" embeddings_dir=\"\(folder)/e\"\n\"a b\" seed=3", file: "t")
        let png = String(host.lines.last!.split(separator: " ")[0])
        host.lines = []
        try s.run(source: "info \"\(png)\"", file: "t")
        let info = host.lines.joined(separator: "\n").split(separator: "\n").map(String.init)
        #expect(info[0] == "a b")
        #expect(info[1].hasPrefix("Steps: 1, Sampler: Euler a, Schedule type: Uniform, CFG scale: 7, Seed: 3, Size: 64x64"))
        host.lines = []
        try s.run(source: "embedding new \"probe\" init=\"x\" vectors=2\ninspect \"\(folder)/e/probe.pt\"", file: "t")
        #expect(host.lines.contains { $0.contains("probe") })
        #expect(host.lines.count > 3)
    }

    @Test func runSharesTheSessionAndRefusesItself() throws {
        let host = RecordingHost()
        let s = shell(host)
        try "set cfg=3\nprint \"inner\"".write(toFile: folder + "/inner.sdscript", atomically: true, encoding: .utf8)
        try "run \"\(folder)/self.sdscript\"".write(toFile: folder + "/self.sdscript", atomically: true, encoding: .utf8)
        try s.run(source: "run \"\(folder)/inner.sdscript\"\nshow cfg", file: "t")
        #expect(host.lines == ["inner", "cfg = 3"])
        do {
            try s.run(source: "run \"\(folder)/self.sdscript\"", file: "t")
            Issue.record("a script running itself must fail")
        } catch {
            #expect("\(error)".hasSuffix("self.sdscript runs itself"))
        }
        try "replay \"\(folder)/again.sdscript\"".write(toFile: folder + "/again.sdscript", atomically: true, encoding: .utf8)
        do {
            try s.run(source: "replay \"\(folder)/again.sdscript\"", file: "t")
            Issue.record("a journal replaying itself must fail")
        } catch {
            #expect("\(error)".hasSuffix("again.sdscript runs itself"))
        }
    }

    @Test func sessionCommands() throws {
        let host = RecordingHost()
        let s = shell(host)
        try s.run(source: "help\nhelp grid\nhelp sampler\ndevices\nbackend cpu", file: "t")
        #expect(host.lines.contains { $0.hasPrefix("  grid PROMPT [options]") })
        #expect(host.lines.contains("grid PROMPT [options]\n  options given lists become axes X, Y, Z; sr=[...] is Prompt S/R, order=[...] Prompt order, model=[...] Checkpoint name; embedding_steps=\"NAME\" the numbered copies a training kept"))
        #expect(host.lines.contains { $0.hasPrefix("sampler: A1111 sampler name; now \"Euler a\"") })
        #expect(host.lines.contains { $0.hasPrefix("cpu 0: ") })
        #expect(host.lines.last!.hasPrefix("backend cpu: "))
        // The backend command switches within this scope only (other suites keep computing on the CPU).
        try Engine.withBackend(Engine.cpu) {
            try s.run(source: "backend opencl\nshow backend", file: "t")
            #expect(host.lines.dropLast().last!.hasPrefix("backend opencl: device "))
            #expect(host.lines.last! == "backend = \"opencl\"")
            #expect(Engine.backend is OpenCLBackend)
            do { try s.run(source: "backend opencl device=99", file: "t"); Issue.record("no device 99") } catch {
                #expect("\(error)".hasPrefix("t:1:16: the OpenCL backend is not available: opencl: no OpenCL device 99; `devices` lists 0..."))
                #expect("\(error)".hasSuffix("the backend stays opencl"))
            }
            try s.run(source: "backend cpu", file: "t")
            #expect(host.lines.last!.hasPrefix("backend cpu: "))
            #expect(Engine.backend is CPUBackend)
            // Recorded (kept pending until the session makes a file, which opens the journal).
            let journal = try (s.journal.path.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? "") + s.journal.pending.joined()
            #expect(journal.contains("backend \"opencl\"\nbackend \"cpu\"\n"), "\(journal)")
        }
        for statement in ["set backend=\"opencl\"", "generate \"x\" backend=\"opencl\""] {
            do { try s.run(source: statement, file: "t"); Issue.record("\(statement) switched") } catch {
                #expect("\(error)".contains("switch backends with the `backend` command (`backend opencl`)"), "\(error)")
            }
        }
        do { try s.run(source: "help smapler", file: "t") } catch { #expect("\(error)".hasSuffix("did you mean `sampler`?")) }
        #expect(throws: QuitRequested.self) { try s.run(source: "quit", file: "t") }
    }
}
