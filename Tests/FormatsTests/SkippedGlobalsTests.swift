import Foundation
import Testing
@testable import Formats

/// Training-framework state in `.ckpt` files is skipped, not refused.
@Suite struct SkippedGlobalsTests {
    @Test("a pytorch_lightning object next to the weights is skipped and the weights load")
    func lightningCallbackSkipped() throws {
        // {"callbacks": ModelCheckpoint() with state, "state_dict": {"w": tensor}} as protocol-2 opcodes.
        var pickle: [UInt8] = [0x80, 2, 0x7D, 0x28]
        func str(_ s: String) { let u = Array(s.utf8); pickle += [0x58] + withUnsafeBytes(of: UInt32(u.count).littleEndian, Array.init) + u }
        str("callbacks")
        pickle += [0x63] + Array("pytorch_lightning.callbacks.model_checkpoint\nModelCheckpoint\n".utf8) + [0x29, 0x81, 0x7D]
        str("best_model_path"); str("/tmp/x.ckpt")
        pickle += [0x73, 0x62]     // SETITEM into its state dict, BUILD
        str("state_dict")
        pickle += [0x7D]
        str("w")
        var writer = PickleWriter()
        writer.write(.tensor(key: "0", dtype: .F32, shape: [2], requiresGrad: false))
        pickle += writer.bytes.dropFirst(2)        // without its PROTO header
        pickle += [0x73, 0x75, 0x2E]               // SETITEM, SETITEMS, STOP
        var zip = ZipWriter()
        zip.add("archive/data.pkl", pickle)
        zip.add("archive/data/0", [Float(1.5), Float(-2)].withUnsafeBytes { Array($0) })
        let path = NSTemporaryDirectory() + "sdshell-pl-\(UUID().uuidString).ckpt"
        try AtomicFile.write(zip.finish(), to: path)
        let file = try ModelFile.open(path)
        #expect(Array(file.tensors.keys) == ["state_dict.w"])
        #expect(try file.tensors["state_dict.w"]!.materialize().toArray() == [1.5, -2])
    }
}
