import Foundation
import Testing
@testable import Prompting

/// Token ids against transformers' slow CLIPTokenizer with ftfy (scripts/make_tokenizer_fixtures.py).
enum TokenizerCorpus {
    nonisolated(unsafe) static let root: [String: Any] = {
        let url = Bundle.module.url(forResource: "tokenizer_corpus", withExtension: "json", subdirectory: "Fixtures")!
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }()
    static let tokenizer = try! CLIPTokenizer.shipped()
}

@Suite struct TokenizerTests {
    @Test("the known example")
    func example() {
        #expect(TokenizerCorpus.tokenizer.encode("a photo of an astronaut riding a horse on mars")
            == [320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496])
    }

    /// Cases whose ids depend on ftfy's mojibake repair (fix_encoding), which is not ported: the
    /// fixture marks them (all are deliberately mis-decoded text such as "cafÃ©").
    static let mojibake: Set<Int> = {
        let effect = TokenizerCorpus.root["ftfy_effect"] as! [String: Any]
        let byFixer = effect["case_indices_with_one_fixer_off"] as! [String: [NSNumber]]
        return Set(byFixer["fix_encoding"]!.map(\.intValue))
    }()

    @Test("the corpus of varied prompts tokenizes exactly as transformers does (mojibake repair excepted)")
    func corpus() {
        let cases = TokenizerCorpus.root["cases"] as! [[String: Any]]
        #expect(cases.count >= 2000)
        #expect(Self.mojibake.count <= 81)
        var failures: [String] = []
        for (i, c) in cases.enumerated() where !Self.mojibake.contains(i) {
            let text = c["text"] as! String, ids = (c["ids"] as! [NSNumber]).map(\.intValue)
            let got = TokenizerCorpus.tokenizer.encode(text)
            if got != ids { failures.append("\(text.debugDescription): \(got) vs \(ids)") }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(cases.count) differ; first: \(failures.prefix(5).joined(separator: "\n"))")
    }
}
