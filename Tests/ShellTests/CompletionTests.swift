import Foundation
import Testing
@testable import Script

/// What Tab offers at each place in a statement.
struct CompletionTests {
    @Test func commandsOptionsAndValues() {
        let engine = CompletionEngine()
        #expect(engine.complete("gr") == (2, ["grid "]))
        #expect(engine.complete("generate \"a cat\" samp").candidates == ["sampler="])
        #expect(engine.complete("\"a bare prompt\" cf").candidates == ["cfg="])
        #expect(engine.complete("train \"x\" clip").candidates == ["clip_grad="])
        #expect(engine.complete("set rng=").candidates == ["\"cpu\"", "\"nv\""])
        // Every sampler whose name starts so, in the sampler list's order.
        #expect(engine.complete("set sampler=\"DPM++ 2").candidates == ["DPM++ 2M\"", "DPM++ 2S a\"", "DPM++ 2M SDE\"", "DPM++ 2M SDE Heun\""])
        #expect(engine.complete("set schedule=\"kar").candidates == ["karras\""])
        #expect(engine.complete("set inline=\"k").candidates == ["kitty\""])
        #expect(engine.complete("show samp").candidates == ["sampler"])
        #expect(engine.complete("embeddings re").candidates == ["reload"])
    }

    @Test func namesFromTheSession() {
        var engine = CompletionEngine()
        engine.embeddingNames = ["bluestyle", "bluish", "red"]
        engine.modelNames = ["sd15.safetensors", "sd21-v"]
        #expect(engine.complete("\"portrait, blu") == (3, ["bluestyle", "bluish"]))
        #expect(engine.complete("generate \"x\" negative=\"re") == (2, ["red"]))
        #expect(engine.complete("model sd2") == (3, ["sd21-v"]))
        engine.loraNames = ["sd_lora", "sd_loha", "xl_lora"]
        #expect(engine.complete("\"a cat <lora:sd_lo") == (5, ["sd_loha:1>", "sd_lora:1>"]))
        #expect(engine.complete("\"a cat <lora:") == (0, ["sd_loha:1>", "sd_lora:1>", "xl_lora:1>"]))
        #expect(engine.complete("\"a cat <lora:sd_lora:0.5> blu") == (3, ["bluestyle", "bluish"]))
    }

    @Test func pathsWithSpaces() throws {
        let folder = NSTemporaryDirectory() + "sdshell-complete-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/my pictures", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: folder + "/my model.safetensors", contents: Data())
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let engine = CompletionEngine()
        #expect(engine.complete("model \"\(folder)/my m") == (4, ["my model.safetensors\""]))
        #expect(engine.complete("train \"x\" data=\"\(folder)/my p") == (4, ["my pictures/"]))
        #expect(engine.complete("run \"\(folder)/my ").candidates == ["my model.safetensors", "my pictures/"])
    }
}
