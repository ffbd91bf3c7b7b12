import Foundation
import Formats
import Script

/// Fuzz harness for the file readers. Built normally it reads files given on the command line
/// (to replay a crash); built by scripts/fuzz.sh with `-sanitize=fuzzer -D FUZZING` it is a
/// libFuzzer target. The reader is chosen by SDFUZZ_TARGET: "safetensors", "torch", "any",
/// "png" (PNG text and pixels, embeddings inside PNGs, infotext, pictures as RGB), or "script"
/// (the sdscript parser, the prompt's completion, and the evaluation of the input's `let`, `for`
/// and `print` statements).
enum FuzzTarget {
    static let scratch = "/dev/shm/sdfuzz-\(getpid()).bin"

    static func run(_ data: UnsafeRawBufferPointer) {
        if ProcessInfo.processInfo.environment["SDFUZZ_TARGET"] == "script" { return runScript(data) }
        guard let f = fopen(scratch, "wb") else { return }
        if data.count > 0 { fwrite(data.baseAddress, 1, data.count, f) }
        fclose(f)
        let target = ProcessInfo.processInfo.environment["SDFUZZ_TARGET"] ?? "any"
        do {
            switch target {
            case "png":
                if let image = try? PNGFile.read(scratch) {
                    for (_, value) in image.text { _ = Infotext.parse(value).parameters.count; _ = value.escapingControlCharacters }
                }
                _ = try? EmbeddingImage.read(scratch)
                _ = try RGBImage.read(scratch)
            case "safetensors":
                let s = try SafeTensorsFile(path: scratch)
                for t in s.tensors.values.prefix(64) where t.count < 1 << 20 { _ = try? t.contiguousBytes() }
            case "torch":
                let a = try TorchArchive(path: scratch)
                _ = a.root.description
                let m = try ModelFile.open(scratch)
                for t in m.tensors.values.prefix(64) where t.count < 1 << 20 { _ = try? t.contiguousBytes() }
            default:
                let m = try ModelFile.open(scratch)
                for t in m.tensors.values.prefix(64) where t.count < 1 << 20 { _ = try? t.materialize() }
                _ = EmbeddingFile.recognize(m)
            }
        } catch {
            // Errors are the expected outcome for bad input; crashes are what the fuzzer looks for.
        }
    }
}

extension FuzzTarget {
    /// Parses the input as sdscript (errors are fine; crashes, hangs and leaks are not), prints
    /// each statement back, and completes every prefix of its first line.
    static func runScript(_ data: UnsafeRawBufferPointer) {
        let text = String(decoding: data, as: UTF8.self)
        do {
            _ = String(describing: try Parser.parse(text, file: "fuzz"))
        } catch let e as ScriptError {
            _ = e.description
        } catch {}
        if let statements = try? Parser.parse(text, file: "fuzz") {
            // Only what touches no file: assignments, loops and `print` (Ctrl-C is "pressed" after
            // 100,000 loop iterations, as a user would stop a long loop).
            let shell = Interpreter(host: FuzzHost())
            func safe(_ s: Statement) -> Statement? {
                switch s {
                case .assign: return s
                case let .loop(name, sequence, body, p): return .loop(variable: name, sequence: sequence, body: body.compactMap(safe), p)
                case let .command(name, _, _) where name == "print": return s
                default: return nil
                }
            }
            for statement in statements.compactMap(safe) { do { try shell.execute(statement) } catch { break } }
        }
        let firstLine = String(text.prefix { $0 != "\n" }.prefix(200))
        let engine = CompletionEngine()
        var prefix = ""
        for c in firstLine {
            prefix.append(c)
            _ = engine.complete(prefix)
        }
    }
}

/// A host that discards output and asks to stop after 100,000 checks.
final class FuzzHost: ShellHost {
    var checks = 0
    func write(_ line: String) { _ = line.escapingControlCharacters }
    func warn(_ line: String) {}
    func progress(step: Int, total: Int, label: String) {}
    func progressDone() {}
    var interruptRequested: Bool { checks += 1; return checks > 100_000 }
    func clearInterrupt() {}
    func showInline(path: String, mode: String, columns: Int) {}
}

#if FUZZING
/// libFuzzer's entry for programs that keep their own main.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@main
struct Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            FuzzTarget.run(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        })
    }
}
#else
@main
struct Replay {
    static func main() {
        for path in CommandLine.arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else { print("cannot read \(path)"); continue }
            data.withUnsafeBytes { FuzzTarget.run($0) }
            print("ok \(path)")
        }
    }
}
#endif
