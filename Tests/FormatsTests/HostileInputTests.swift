import Foundation
import Testing
@testable import Formats

/// Hostile files from issue #26: each is refused with an error naming the file, in bounded time
/// and memory, and never traps.
@Suite struct HostileInputTests {
    typealias H = HostileFiles

    /// True when `error` is a FormatError whose message names `path` and contains every fragment.
    static func says(_ error: any Error, _ path: String, _ fragments: String...) -> Bool {
        guard error is FormatError else { return false }
        let text = "\(error)"
        return text.contains(path) && fragments.allSatisfy { text.contains($0) }
    }

    // MARK: (8) shape products that overflow

    @Test("a zip torch file whose shape product overflows is refused, not trapped on", arguments: [false, true])
    func overflowingShape(legacy: Bool) throws {
        let huge = 1 << 32
        let path = legacy
            ? try H.torchLegacy(["w"], shape: [huge, huge, huge], strides: [0, 0, 0], storage: [1])
            : try H.torchZip(["w"], shape: [huge, huge, huge], strides: [0, 0, 0], storage: [1])
        #expect { try ModelFile.open(path) } throws: { Self.says($0, path, "overflows") }
    }

    @Test("an empty tensor whose other dimensions overflow is refused too (its row-major strides overflow)")
    func emptyHugeShape() throws {
        let huge = 1 << 32
        let path = try H.torchZip(["w"], shape: [0, huge, huge, huge], strides: [1, 1, 1, 1], storage: [1])
        #expect { try ModelFile.open(path) } throws: { Self.says($0, path, "overflows") }
        let st = try H.safetensors(header: #"{"w":{"dtype":"F32","shape":[0,\#(huge),\#(huge),\#(huge)],"data_offsets":[0,0]}}"#)
        #expect { try ModelFile.open(st) } throws: { Self.says($0, st, "invalid shape") }
        let ok = try H.torchZip(["w"], shape: [0, 3], strides: [3, 1], storage: [1])
        let t = try #require(try ModelFile.open(ok).tensors["w"])
        #expect(t.count == 0 && t.isContiguous)
        #expect(try t.materialize().shape == [0, 3])
    }

    @Test("StoredTensor.rows and reshaped do not overflow on hostile arguments")
    func viewArithmetic() throws {
        let path = try H.torchZip(["w"], shape: [2, 2], strides: [2, 1], storage: [1, 2, 3, 4])
        let t = try #require(try ModelFile.open(path).tensors["w"])
        #expect(t.rows(1, Int.max) == nil)
        #expect(t.reshaped([1 << 32, 1 << 32, 1 << 32]) == nil)
        #expect(try t.rows(1, 1)?.materialize().toArray() == [3, 4])
    }

    // MARK: (16) a few bytes standing for billions of elements

    @Test("an embedding with 2^40 vectors (zero strides) is refused by name and never expanded")
    func hugeEmbedding() throws {
        let path = try H.torchZip(["string_to_param", "*"], shape: [1 << 40, 64], strides: [0, 1],
                                  storage: (0..<64).map(Float.init))
        let file = try ModelFile.open(path)
        #expect { try EmbeddingFile.read(file) } throws: { Self.says($0, path, "\(1 << 40) vectors", "at most 1000") }
        #expect(EmbeddingFile.recognize(file) == nil)
        let t = try #require(file.tensors["string_to_param.*"])
        #expect { try t.materialize() } throws: { Self.says($0, path, "zero strides") }
        #expect { try t.contiguousBytes() } throws: { Self.says($0, path, "zero strides") }
        // inspect describes it without copying it out, and warns about the size.
        let description = try FileDescription(file, hashes: nil)
        #expect(description.lines.contains("  string_to_param.* F32 [\(1 << 40), 64]"))
        #expect(description.warnings.contains { $0.contains("\(1 << 40) vectors") })
    }

    @Test("an embedding of 1,001 real vectors is refused; 1,000 are read")
    func vectorLimit() throws {
        for (n, accepted) in [(1000, true), (1001, false)] {
            let path = try H.torchZip(["string_to_param", "*"], shape: [n, 2], strides: [2, 1], storage: [Float](repeating: 0.5, count: 2 * n))
            let file = try ModelFile.open(path)
            if accepted { #expect(try EmbeddingFile.read(file)?.vectorCount == 1000) } else {
                #expect { try EmbeddingFile.read(file) } throws: { Self.says($0, path, "1001 vectors") }
            }
        }
    }

    @Test("a small expansion through zero strides (like CLIP's position_ids) still materialises")
    func smallExpansion() throws {
        let path = try H.torchZip(["w"], shape: [3, 4], strides: [0, 1], storage: [1, 2, 3, 4])
        let t = try #require(try ModelFile.open(path).tensors["w"])
        #expect(try t.materialize().toArray() == [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4])
    }

    @Test("NaN and infinity counts are read in place; a repeated storage counts each element once")
    func nonFiniteInPlace() throws {
        let values: [Float] = [1, .nan, .infinity, -.infinity]
        let plain = try H.torchZip(["w"], shape: [2, 2], strides: [1, 2], storage: values)   // transposed
        let counts = try #require(try ModelFile.open(plain).tensors["w"]).nonFiniteCounts()
        #expect(counts.nan == 1 && counts.inf == 2)
        let repeated = try H.torchZip(["w"], shape: [1 << 40, 4], strides: [0, 1], storage: values)
        let file = try ModelFile.open(repeated)
        let r = try #require(file.tensors["w"]).nonFiniteCounts()
        #expect(r.nan == 1 && r.inf == 2)
        let description = try FileDescription(file, hashes: nil)
        #expect(description.warnings.contains { $0.contains("tensor w holds 1 NaN and 2 infinite values") })
    }

    @Test("NaN and infinity are recognised in F16, BF16 and F64 tensors by their bits")
    func nonFiniteTypes() throws {
        func le16(_ v: [UInt16]) -> [UInt8] { v.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) } }
        let f16 = le16([0x7E00, 0x7C00, 0xFC00, 0x3C00, 0x7BFF, 0x7C01])   // NaN, inf, -inf, 1, max, NaN
        let bf16 = le16([0x7FC0, 0x7F80, 0x3F80, 0x7F7F])                  // NaN, inf, 1, max
        let f64 = [Double.nan, -.infinity, 1, .greatestFiniteMagnitude].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        let header = #"{"a":{"dtype":"F16","shape":[6],"data_offsets":[0,12]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[12,20]},"#
            + #""c":{"dtype":"F64","shape":[4],"data_offsets":[20,52]}}"#
        var json = Array(header.utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        let path = try H.write(H.le64(json.count) + json + f16 + bf16 + f64, "types.safetensors")
        let t = try ModelFile.open(path).tensors
        #expect(try t["a"]!.nonFiniteCounts() == (2, 2))
        #expect(try t["b"]!.nonFiniteCounts() == (1, 1))
        #expect(try t["c"]!.nonFiniteCounts() == (1, 1))
    }

    @Test("a PNG claiming 16000x16000 pixels is refused from its header, before decoding")
    func hugePNG() throws {
        for (w, h): (UInt32, UInt32) in [(16000, 16000), (20000, 1), (1, 16385)] {
            // The pixels (a zlib bomb in the real file) are never reached: an IDAT of one zero byte.
            let path = try H.write(H.png(width: w, height: h, chunks: [("IDAT", H.zlibZeros(1))]), "big.png")
            #expect { try PNGFile.read(path) } throws: { Self.says($0, path, "\(w)x\(h) pixels is too large") }
            #expect { try RGBImage.read(path) } throws: { Self.says($0, path, "too large") }
        }
    }

    @Test("the zlib builder makes valid streams (checked by inflating small ones)")
    func zlibBuilder() throws {
        #expect(Inflate.decompress(Data(H.zlibZeros(100_000))) == Data(count: 100_000))
        #expect(Inflate.decompress(Data(H.zlibZeros(1))) == Data(count: 1))
        let text = Array("hello, stored block".utf8)
        #expect(Inflate.decompress(Data(H.zlibStored(text))) == Data(text))
    }

    @Test("inflate output is bounded: a bomb stops at the limit with an error, not gigabytes")
    func inflateBound() throws {
        let bomb = Data(H.zlibZeros(8 << 20))
        #expect(bomb.count < 60_000)
        #expect(throws: Inflate.Failure.tooLarge(maximumBytes: 1 << 20)) { try Inflate.inflating(bomb, maximumBytes: 1 << 20) }
        #expect(Inflate.decompress(bomb, maximumBytes: 1 << 20) == nil)
        #expect(Inflate.decompress(bomb)?.count == 8 << 20)   // under the default limit
        #expect(throws: Inflate.Failure.corrupt) { try Inflate.inflating(Data([1, 2, 3])) }
    }

    @Test("an embedding hidden in a PNG's pixels is read; a zlib bomb there is refused by name")
    func pixelBomb() throws {
        // The encoder first, checked on a real embedding.
        let json = Array(#"{"string_to_param":{"*":{"TORCHTENSOR":[[1.5,-2.0]]}},"name":"tiny","step":3}"#.utf8)
        let good = H.pixelEmbedding(H.zlibStored(json), columns: 8)
        let goodPath = H.path("good.png")
        try PNGFile.write(rgb: good.rgb, width: good.width, height: good.height, text: [], to: goodPath)
        let e = try #require(try EmbeddingImage.read(goodPath))
        #expect(e.vectors == [[1.5, -2]] && e.name == "tiny" && e.step == 3)

        let bomb = H.pixelEmbedding(H.zlibZeros(EmbeddingImage.maximumDataBytes + 1))
        let path = H.path("bomb.png")
        try PNGFile.write(rgb: bomb.rgb, width: bomb.width, height: bomb.height, text: [], to: path)
        #expect { try EmbeddingImage.read(path) } throws: { Self.says($0, path, "inflates to more than") }
    }

    @Test("an embedding image's JSON with more than 1,000 vectors is refused")
    func imageVectorLimit() throws {
        let rows = [String](repeating: "[0.5]", count: 1001).joined(separator: ",")
        let json = Data(#"{"string_to_param":{"*":{"TORCHTENSOR":[\#(rows)]}}}"#.utf8)
        #expect { try EmbeddingImage.parse(json, file: "e.png") } throws: { Self.says($0, "e.png", "1001 vectors") }
    }

    @Test("a compressed text chunk that inflates past the chunk limit is skipped, not held")
    func textChunkBomb() throws {
        // zTXt: keyword, NUL, method 0, zlib stream of 40 MB of zeros.
        let ztxt = Array("parameters".utf8) + [0, 0] + H.zlibZeros(40 << 20)
        let pixel = H.zlibStored([0, 1, 2, 3])   // one filter byte and one RGB pixel
        let path = try H.write(H.png(width: 1, height: 1, chunks: [("zTXt", ztxt), ("IDAT", pixel)]), "ztxt.png")
        let image = try PNGFile.read(path)
        #expect(image.text("parameters") == nil)
        #expect(image.rgba == [1, 2, 3, 255])
    }

    // MARK: (18) slow or blocking inputs

    @Test("a LONG4 integer of megabytes is refused at once")
    func hugeLong() throws {
        let n = 1 << 20
        let bytes: [UInt8] = [0x80, 2, 0x8B] + H.le32(n) + [UInt8](repeating: 0x7F, count: n) + [0x2E]
        let path = try H.write(bytes, "long.pkl")
        let mapped = try MappedFile(path: path)
        var u = Unpickler(file: path, data: try mapped.bytes(0, mapped.size), arena: PickleArena()) { _ in .none }
        #expect { try u.load() } throws: { Self.says($0, path, "\(n)-byte integer") }
        #expect { try ModelFile.open(path) } throws: { Self.says($0, path, "\(n)-byte integer") }
    }

    @Test("a safetensors header naming more than 100,000 tensors is refused before parsing")
    func manyEntries() throws {
        // One entry more than the tensors and __metadata__: refused by counting, before parsing.
        let entries = (0...(SafeTensorsFile.maximumTensors + 1)).map { #""t\#($0)":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}"# }
        let path = try H.safetensors(header: "{" + entries.joined(separator: ",") + "}")
        #expect { try SafeTensorsFile(path: path) } throws: {
            Self.says($0, path, "\(SafeTensorsFile.maximumTensors + 2) entries", "at most \(SafeTensorsFile.maximumTensors) tensors")
        }
    }

    @Test("a safetensors header of millions of JSON values is refused before parsing")
    func manyValues() throws {
        let shape = [String](repeating: "1", count: 1_600_000).joined(separator: ",")
        let path = try H.safetensors(header: #"{"t":{"dtype":"F32","shape":[\#(shape)],"data_offsets":[0,4]}}"#, dataBytes: 4)
        #expect { try SafeTensorsFile(path: path) } throws: { Self.says($0, path, "JSON values") }
    }

    @Test("the JSON member count skips strings and counts nested values")
    func memberCount() {
        func count(_ s: String) -> (Int, Int) {
            Array(s.utf8).withUnsafeBytes { SafeTensorsFile.countJSONMembers($0, stopAfter: .max) }
        }
        #expect(count("{}") == (0, 0))
        #expect(count(#"{"a,{[":{"b":[1,2]},"c":[]}"#) == (2, 5))
        #expect(count(#"{"a\"b,":1}"#) == (1, 1))
    }

    @Test("a named pipe is refused at once instead of blocking the load")
    func namedPipe() throws {
        let path = H.path("fifo.safetensors")
        try #require(mkfifo(path, 0o600) == 0)
        defer { unlink(path) }
        let done = DispatchSemaphore(value: 0)
        let result = LockedBox<String>()
        Thread.detachNewThread {
            do { _ = try ModelFile.open(path); result.set("opened") } catch { result.set("\(error)") }
            done.signal()
        }
        if done.wait(timeout: .now() + 5) == .timedOut {
            Issue.record("opening a named pipe blocked")
            let fd = open(path, O_WRONLY | O_NONBLOCK)   // lets the blocked open return
            if fd >= 0 { close(fd) }
            done.wait()
        }
        let message = result.get() ?? ""
        #expect(message.contains(path) && message.contains("not a regular file") && message.contains("named pipe"))
    }

    // MARK: (19) dotted global names

    /// A pickle calling `module`.`name`("touch canary") (GLOBAL or STACK_GLOBAL, then REDUCE).
    static func callPickle(_ module: String, _ name: String, stackGlobal: Bool) -> [UInt8] {
        var p = H.Pickle()
        if stackGlobal { p.string(module); p.string(name); p.bytes.append(0x93) } else { p.global(module, name) }
        p.string("touch /tmp/sdshell-canary"); p.bytes += [0x85, 0x52, 0x2E]   // TUPLE1, REDUCE, STOP
        return p.bytes
    }

    @Test("a dotted global name resolved through a skipped or allowed module is refused", arguments: [false, true])
    func dottedGlobals(stackGlobal: Bool) throws {
        for (module, name) in [("pathlib", "os.system"), ("typing", "os.system"), ("omegaconf", "os.system"),
                               ("pytorch_lightning", "os.system"), ("torch", "_utils._rebuild_tensor_v2"),
                               ("collections.OrderedDict", "__init__"), ("pathlib", "os"), ("typing.", "Any"),
                               ("pathlib.Path", "write_text")] {
            let path = try H.write(Self.callPickle(module, name, stackGlobal: stackGlobal), "dotted.pkl")
            #expect { try ModelFile.open(path) } throws: {
                guard case let .unsafeGlobal(file, global) = $0 as? FormatError else { return false }
                return file == path && global == module + "." + name
            }
        }
    }

    @Test("exact training-state pairs are still skipped; allowed pairs still resolve")
    func exactPairs() throws {
        let arena = PickleArena()
        for (module, name, skipped) in [("pathlib", "PosixPath", true), ("typing", "Any", true),
                                        ("omegaconf.dictconfig", "DictConfig", true), ("collections", "OrderedDict", false)] {
            var p = H.Pickle()
            p.global(module, name); p.bytes.append(0x2E)
            let value = try p.bytes.withUnsafeBytes { buffer in
                var u = Unpickler(file: "x.pkl", data: buffer, arena: arena) { _ in .none }
                return try u.load()
            }
            switch value {
            case let .skipped(s): #expect(skipped && s == module + "." + name)
            case let .global(g): #expect(!skipped && g == module + "." + name)
            default: Issue.record("\(module).\(name) became \(value)")
            }
        }
    }

    // MARK: (21) ambiguous archives

    @Test("a zip archive with two data.pkl records is refused by name")
    func twoPickles() throws {
        var zip = ZipWriter()
        zip.add("a/data.pkl", H.Pickle.nested(["w"], shape: [1], strides: [1], storageElements: 1, legacy: false))
        zip.add("a/data/0", H.floats([1]))
        zip.add("b/data.pkl", H.Pickle.nested(["w"], shape: [1], strides: [1], storageElements: 1, legacy: false))
        zip.add("b/data/0", H.floats([2]))
        let path = try H.write(zip.finish(), "two.pt")
        #expect { try ModelFile.open(path) } throws: { Self.says($0, path, "2 data.pkl records", "a/data.pkl, b/data.pkl") }
    }

    @Test("a zip archive with two records of one name is refused by name")
    func duplicateRecords() throws {
        var zip = ZipWriter()
        zip.add("archive/data.pkl", H.Pickle.nested(["w"], shape: [1], strides: [1], storageElements: 1, legacy: false))
        zip.add("archive/data/0", H.floats([1]))
        zip.add("archive/data/0", H.floats([2]))
        let path = try H.write(zip.finish(), "dup.pt")
        #expect { try ModelFile.open(path) } throws: { Self.says($0, path, "two records named archive/data/0") }
    }

    // MARK: (28) libpng's own messages

    @Test("PNG read errors carry libpng's message and name the file once")
    func pngMessages() throws {
        let notPNG = try H.write(Array("hello, not a png at all".utf8), "text.png")
        var good = try PNGFile.encode(rgb: [1, 2, 3], width: 1, height: 1, text: [])
        good[20] ^= 0xFF   // inside IHDR's data: its CRC no longer matches
        let badCRC = try H.write(good, "crc.png")
        for (path, message) in [(notPNG, "Not a PNG file"), (badCRC, "CRC error")] {
            do {
                _ = try PNGFile.read(path)
                Issue.record("\(path) was read")
            } catch {
                let text = "\(error)"
                #expect(text.contains(message), "\(text)")
                #expect(!text.contains("info struct"))
                #expect(text.components(separatedBy: path).count == 2, "the path once: \(text)")
            }
        }
    }

    // MARK: (20) control characters from files

    @Test("escapingControlCharacters makes C0, DEL, C1 and bidi controls visible and keeps newline and tab")
    func escaping() {
        #expect("plain text, ünïcode ✓".escapingControlCharacters == "plain text, ünïcode ✓")
        #expect("a\u{1B}]0;title\u{07}b".escapingControlCharacters == "a\\x1b]0;title\\x07b")
        #expect("line\nnext\ttab\r".escapingControlCharacters == "line\nnext\ttab\\x0d")
        #expect("\u{0}\u{7F}\u{9B}\u{85}".escapingControlCharacters == "\\x00\\x7f\\u{9b}\\u{85}")
        #expect("x\u{202E}y\u{2066}z\u{2028}".escapingControlCharacters == "x\\u{202e}y\\u{2066}z\\u{2028}")
    }

    @Test("inspect's description and refused-global messages carry no raw control characters")
    func controlCharactersFromFiles() throws {
        let escape = "\u{1B}[2J\u{1B}]0;pwned\u{07}"
        let header = #"{"__metadata__":{"note\u001b[31m":"hi \u001b[2J\u009b there"},"w\u001b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let path = try H.safetensors(header: header, dataBytes: 4)
        let description = try FileDescription(try ModelFile.open(path), hashes: nil)
        let all = (description.lines + description.warnings).joined(separator: "\n")
        #expect(!all.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x9B })
        #expect(description.lines.contains("  note\\x1b[31m: hi \\x1b[2J\\u{9b} there"))
        #expect(description.lines.contains("  w\\x1b F32 [1]"))

        let pickle = try H.write(Self.callPickle("os" + escape, "system", stackGlobal: true), "esc.pkl")
        #expect { try ModelFile.open(pickle) } throws: {
            let text = "\($0)"
            return text.contains("os\\x1b[2J") && !text.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }
        }
    }
}

/// A value handed between threads.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T?
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T? { lock.lock(); defer { lock.unlock() }; return value }
}
