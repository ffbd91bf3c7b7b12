import Foundation
import TestSupport
import Testing
@testable import Prompting

/// Token ids against transformers' slow CLIPTokenizer with ftfy (Tests/Fixtures/generators/make_tokenizer_fixtures.py).
enum TokenizerCorpus {
    nonisolated(unsafe) static let root = TestFixtures.json("tokenizer_corpus", in: .module)
    static let tokenizer = try! CLIPTokenizer.shipped()
}

@Suite struct TokenizerTests {
    @Test("the known example")
    func example() {
        #expect(TokenizerCorpus.tokenizer.encode("a photo of an astronaut riding a horse on mars")
            == [320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496])
    }

    @Test("the corpus of varied prompts tokenizes exactly as transformers does")
    func corpus() {
        let cases = TokenizerCorpus.root["cases"] as! [[String: Any]]
        #expect(cases.count >= 2000)
        var failures: [String] = []
        for c in cases {
            let text = c["text"] as! String, ids = (c["ids"] as! [NSNumber]).map(\.intValue)
            let got = TokenizerCorpus.tokenizer.encode(text)
            if got != ids { failures.append("\(text.debugDescription): \(got) vs \(ids)") }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(cases.count) differ; first: \(failures.prefix(5).joined(separator: "\n"))")
    }
}
