import Foundation
import Testing
@testable import Formats

/// Inputs the fuzzer found (scripts/fuzz.sh), kept so the fixes stay fixed.
@Suite struct FuzzRegressionTests {
    @Test("a pickle whose list holds itself is read without leaking its containers")
    func selfReferencingList() throws {
        let path = Manifest.folder + "/fuzz-regressions/self-referencing-list.pkl"
        _ = try? ModelFile.open(path)   // an error is fine; a crash is not
        // PROTO 2, EMPTY_LIST, DUP, APPEND (the list into itself), STOP, as the legacy format's magic slot.
        let bytes: [UInt8] = [0x80, 2, 0x5D, 0x32, 0x61, 0x2E]
        let file = NSTemporaryDirectory() + "sdshell-cycle-\(UUID().uuidString).pkl"
        try AtomicFile.write(bytes, to: file)
        weak var list: PickleList?
        do {
            let mapped = try MappedFile(path: file)
            let arena = PickleArena()
            var u = Unpickler(file: file, data: try mapped.bytes(0, mapped.size), arena: arena) { _ in .none }
            guard case let .list(l) = try u.load() else { Issue.record("not a list"); return }
            #expect(l.items.count == 1)
            list = l
        }
        #expect(list == nil, "the self-referencing list outlived its load")
    }

    @Test("tuples nested 200,000 deep are read, described and released without recursing")
    func deepNesting() throws {
        _ = try? ModelFile.open(Manifest.folder + "/fuzz-regressions/deeply-nested-tuples.pkl")
        var bytes: [UInt8] = [0x80, 2, 0x4E]                    // PROTO 2, NONE
        bytes += [UInt8](repeating: 0x85, count: 200_000)       // TUPLE1 around it, over and over
        bytes.append(0x2E)
        let file = NSTemporaryDirectory() + "sdshell-deep-\(UUID().uuidString).pkl"
        try AtomicFile.write(bytes, to: file)
        let mapped = try MappedFile(path: file)
        var u = Unpickler(file: file, data: try mapped.bytes(0, mapped.size), arena: PickleArena()) { _ in .none }
        let value = try u.load()
        #expect(value.description.hasPrefix("((((("))
    }

    @Test("a legacy archive whose object reaches the same tuples by exponentially many paths is refused, not walked")
    func sharedReferences() throws {
        // Found by the fuzzer: DUP and TUPLE2 over and over make a tuple tree with exponentially many paths
        // in 1,356 bytes; walking it for tensors took minutes.
        let path = Manifest.folder + "/fuzz-regressions/shared-references.pkl"
        #expect { try ModelFile.open(path) } throws: {
            "\($0)".contains(path) && "\($0)".contains("more than \(ModelFile.maximumObjects) objects")
        }
    }

    @Test("a 407-byte PNG naming a 1.8 GB iTXt chunk is refused before libpng allocates it")
    func chunkLengthPastTheEnd() throws {
        // Found by `scripts/fuzz.sh png`: libpng allocated the claimed length (1.8 GB resident, 3 s).
        let path = Manifest.folder + "/fuzz-regressions/itxt-length-past-end.png"
        #expect { try PNGFile.read(path) } throws: {
            "\($0)" == "\(path): not a valid file: PNG: the iTXt chunk at byte 313 claims 1828716571 bytes; the file has 82 left"
        }
    }
}
