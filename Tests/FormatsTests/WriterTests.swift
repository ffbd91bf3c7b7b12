import Engine
import Foundation
import Testing
@testable import Formats

/// Files sdshell writes, read back; the committed golden embedding was checked with
/// `torch.load(weights_only=True)` by scripts/check_written_embedding.py.
@Suite struct WriterTests {
    let dir: String = {
        let d = NSTemporaryDirectory() + "sdshell-writer-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    static func goldenVectors() throws -> Tensor {
        try Tensor(shape: [2, 768], data: (0..<1536).map { Float(($0 * 37) % 101) / 50 - 1 })
    }

    @Test("an A1111 embedding written by sdshell is byte-identical to the torch-checked golden file")
    func a1111Golden() throws {
        let path = dir + "/written.pt"
        try EmbeddingFile.writeA1111(name: "written", vectors: try Self.goldenVectors(), step: 42, checkpointHash: "0123456789",
                                     checkpointName: "tiny", to: path)
        let written = try Data(contentsOf: URL(fileURLWithPath: path))
        if ProcessInfo.processInfo.environment["SDSHELL_UPDATE_GOLDEN"] == "1" {
            // Regenerate: then check it with `.venv-ref/bin/python scripts/check_written_embedding.py`.
            let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/written_by_sdshell.pt")
            try written.write(to: source)
        }
        let golden = try Data(contentsOf: URL(fileURLWithPath: Manifest.path("written_by_sdshell.pt")))
        #expect(written == golden)
        let e = try #require(EmbeddingFile.recognize(try ModelFile.open(path)))
        #expect(e.kind == .a1111 && e.storedName == "written" && e.step == 42 && e.checkpointHash == "0123456789")
        #expect(try e.vectors["clip"]!.materialize().toArray() == Self.goldenVectors().toArray())
    }

    /// SDXL golden vectors at the tiny SDXL model's widths (CLIP-L 8, bigG 16), so that
    /// scripts/check_written_sdxl_embedding.py can load the committed files into that model with
    /// diffusers' `load_textual_inversion`.
    static func goldenSDXLVectors() throws -> [(key: String, tensor: Tensor)] {
        [("clip_l", try Tensor(shape: [2, 8], data: (0..<16).map { Float(($0 * 37) % 101) / 50 - 1 })),
         ("clip_g", try Tensor(shape: [2, 16], data: (0..<32).map { Float(($0 * 53) % 97) / 40 - 1.2 }))]
    }

    @Test("an SDXL embedding written by sdshell (kohya's safetensors, or A1111's .pt of the two tensors) is byte-identical to the checked golden file",
          arguments: ["safetensors", "pt"])
    func sdxlGolden(ext: String) throws {
        let name = "written_by_sdshell_sdxl." + ext, path = dir + "/" + name
        try EmbeddingFile.write(name: "written_xl", vectors: try Self.goldenSDXLVectors(), step: 7, checkpointHash: "0123456789",
                                checkpointName: "tiny-sdxl", to: path)
        let written = try Data(contentsOf: URL(fileURLWithPath: path))
        if ProcessInfo.processInfo.environment["SDSHELL_UPDATE_GOLDEN"] == "1" {
            // Regenerate: then check it with `.venv-ref/bin/python scripts/check_written_sdxl_embedding.py`.
            try written.write(to: URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/" + name))
        }
        #expect(written == (try Data(contentsOf: URL(fileURLWithPath: Manifest.folder + "/" + name))))
        let e = try #require(EmbeddingFile.recognize(try ModelFile.open(path)))
        #expect(e.kind == .sdxl && e.vectorCount == 2 && e.widths == ["clip_l": 8, "clip_g": 16])
        // The safetensors form keeps A1111's fields in its metadata; the .pt has room for none.
        #expect(e.step == (ext == "pt" ? nil : 7) && e.checkpointName == (ext == "pt" ? nil : "tiny-sdxl"))
        for (key, tensor) in try Self.goldenSDXLVectors() {
            #expect(try e.vectors[key]!.materialize().toArray() == tensor.toArray())
        }
    }

    @Test("safetensors round trip keeps names, dtypes, shapes, values and metadata")
    func safetensorsRoundTrip() throws {
        let a = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let b = try Tensor(shape: [4], data: [0.5, -1, 65504, 1e-3]).to(.f16)
        let path = dir + "/rt.safetensors"
        try SafeTensorsFile.write(["a": a, "b": b], metadata: ["format": "pt", "note": "quote \" and \\"], to: path)
        let f = try SafeTensorsFile(path: path)
        #expect(f.names == ["a", "b"])
        #expect(f.metadata == ["format": "pt", "note": "quote \" and \\"])
        #expect(try f.tensors["a"]!.materialize().toArray() == [1, 2, 3, 4, 5, 6])
        #expect(f.tensors["b"]!.dtype == .F16)
        #expect(try f.tensors["b"]!.materialize().to(.f32).toArray() == b.to(.f32).toArray())
    }

    @Test("a tensor is used in place from the mapping when aligned, and copied when not")
    func tensorsInPlace() throws {
        // A hand-made safetensors file: an odd-length header puts the data at an odd offset, so
        // the F16 tensor "odd" is misaligned and "even" (after one padding byte) is aligned.
        func file(headerPadding: Int) throws -> (SafeTensorsFile, dataStart: Int) {
            let values: [UInt16] = [0x3C00, 0xC000, 0x7BFF]                 // 1, -2, 65504
            var header = #"{"pad":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"#
                + #""odd":{"dtype":"F16","shape":[3],"data_offsets":[1,7]},"#
                + #""even":{"dtype":"F16","shape":[3],"data_offsets":[8,14]}}"#
            header += String(repeating: " ", count: headerPadding)
            var bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8)
            bytes.append(0)
            for v in values { bytes += [UInt8(v & 0xFF), UInt8(v >> 8)] }
            bytes.append(0)
            for v in values { bytes += [UInt8(v & 0xFF), UInt8(v >> 8)] }
            let path = dir + "/inplace-\(headerPadding).safetensors"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return (try SafeTensorsFile(path: path), 8 + header.utf8.count)
        }
        for padding in [0, 1] {
            let (f, dataStart) = try file(headerPadding: padding)
            for name in ["odd", "even"] {
                let stored = f.tensors[name]!
                let offset = dataStart + (name == "odd" ? 1 : 8)
                let inPlace = try stored.mapped()
                #expect((inPlace != nil) == (offset % 2 == 0), "\(name) at byte \(offset)")
                if let inPlace {
                    #expect(inPlace.storage.isBorrowed)
                    #expect(try inPlace.to(.f32).toArray() == [1, -2, 65504])
                }
                #expect(try stored.materialize().to(.f32).toArray() == [1, -2, 65504])
            }
        }
    }

    @Test("a failed write leaves the previous file intact")
    func atomicWrite() throws {
        let path = dir + "/keep.bin"
        try AtomicFile.write([1, 2, 3], to: path)
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try AtomicFile.write(to: path) { w in try w.write([9, 9]); throw Interrupted() }
        }
        #expect(FileManager.default.contents(atPath: path) == Data([1, 2, 3]))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty)
    }
}
