import Foundation

/// OpenAI CLIP's byte-level BPE tokenizer, as transformers' slow `CLIPTokenizer` runs it with ftfy
/// installed (what A1111 uses): clean the text (`TextCleaner`), lowercase, split with CLIP's
/// pattern, map UTF-8 bytes to printable characters, apply the 48,894 merges by rank, and look the
/// pieces up in the 49,408-entry vocabulary. BOS is 49406, EOS (and padding) 49407.
public final class CLIPTokenizer: @unchecked Sendable {
    public static let bos = 49406, eos = 49407

    private let encoder: [String: Int]
    private let decoder: [Int: String]
    private let byteDecoder: [Character: UInt8]
    private let ranks: [Pair: Int]
    private let byteEncoder: [Character]
    private var cache: [String: [Int]] = [:]
    private let lock = NSLock()

    struct Pair: Hashable { let a: String, b: String }

    private static let pattern = try! NSRegularExpression(
        pattern: #"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"#,
        options: [.caseInsensitive])

    /// GPT-2's reversible map from bytes to printable characters.
    static func bytesToUnicode() -> [(UInt8, Character)] {
        var bs = Array(33...126) + Array(161...172) + Array(174...255)
        var cs = bs
        var n = 0
        for b in 0..<256 where !bs.contains(b) {
            bs.append(b)
            cs.append(256 + n)
            n += 1
        }
        return zip(bs, cs).map { (UInt8($0), Character(Unicode.Scalar($1)!)) }
    }

    /// Loads the vocabulary shipped with the project (`Resources/bpe_simple_vocab_16e6.txt.gz`).
    public static func shipped() throws -> CLIPTokenizer {
        guard let url = Bundle.module.url(forResource: "bpe_simple_vocab_16e6.txt", withExtension: "gz") else {
            throw TokenizerError.missingVocabulary("bpe_simple_vocab_16e6.txt.gz is not in the Prompting bundle")
        }
        return try CLIPTokenizer(mergesText: Gzip.decompress(try Data(contentsOf: url), file: url.path))
    }

    /// Builds the tokenizer from the text of `bpe_simple_vocab_16e6.txt` (a header line, then merges).
    public init(mergesText: String) throws {
        let lines = mergesText.split(separator: "\n", omittingEmptySubsequences: false)
        let mergeCount = 49152 - 256 - 2
        guard lines.count > mergeCount else { throw TokenizerError.missingVocabulary("only \(lines.count) lines of merges") }
        let merges: [Pair] = try lines[1...mergeCount].map { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2 else { throw TokenizerError.missingVocabulary("bad merge line \(line)") }
            return Pair(a: String(parts[0]), b: String(parts[1]))
        }
        let bytes = Self.bytesToUnicode()
        var byteEncoder = [Character](repeating: " ", count: 256)
        for (b, c) in bytes { byteEncoder[Int(b)] = c }
        self.byteEncoder = byteEncoder
        var vocab = bytes.map { String($0.1) }
        vocab += vocab.map { $0 + "</w>" }
        vocab += merges.map { $0.a + $0.b }
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        encoder = Dictionary(vocab.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        decoder = Dictionary(vocab.enumerated().map { ($0, $1) }, uniquingKeysWith: { a, _ in a })
        byteDecoder = Dictionary(bytes.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        ranks = Dictionary(merges.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Token ids of `text` without BOS/EOS and without truncation (A1111's
    /// `tokenizer(texts, truncation=False, add_special_tokens=False)`).
    public func encode(_ text: String) -> [Int] {
        // The special tokens are split off the raw text first (case-sensitive), as transformers does.
        var ids: [Int] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            let next = [("<|startoftext|>", Self.bos), ("<|endoftext|>", Self.eos)]
                .compactMap { s, id in rest.range(of: s).map { ($0, id) } }.min { $0.0.lowerBound < $1.0.lowerBound }
            let chunk = next.map { rest[..<$0.0.lowerBound] } ?? rest
            ids += encodeChunk(String(chunk))
            guard let (range, id) = next else { break }
            ids.append(id)
            rest = rest[range.upperBound...]
        }
        return ids
    }

    private func encodeChunk(_ text: String) -> [Int] {
        // Under IGNORECASE, Python's `regex` matches U+0345 (combining ypogegrammeni, which case-folds
        // to a letter) with no alternative of CLIP's pattern, so findall skips it and it splits the
        // pieces around it; ICU would not. A space has the same effect.
        let cleaned = String(String.UnicodeScalarView(TextCleaner.clean(text).unicodeScalars.map { $0.value == 0x345 ? " " : $0 }))
        let ns = cleaned as NSString
        var ids: [Int] = []
        for m in Self.pattern.matches(in: cleaned, range: NSRange(location: 0, length: ns.length)) {
            let piece = ns.substring(with: m.range)
            if piece == "<|startoftext|>" { ids.append(Self.bos); continue }
            if piece == "<|endoftext|>" { ids.append(Self.eos); continue }
            ids += bpe(String(String.UnicodeScalarView(piece.utf8.map { byteEncoder[Int($0)].unicodeScalars.first! })))
        }
        return ids
    }

    /// The text of a token id ("</w>" ends a word), for display.
    public func tokenText(_ id: Int) -> String {
        guard let piece = decoder[id] else { return "?" }
        if piece.hasPrefix("<|") { return piece }
        let word = piece.hasSuffix("</w>")
        let body = word ? String(piece.dropLast(4)) : piece
        let text = String(decoding: body.compactMap { byteDecoder[$0] }, as: UTF8.self)
        return word ? text + "</w>" : text
    }

    /// Byte-pair merges of one pre-token (already byte-encoded), by merge rank, with a cache.
    private func bpe(_ token: String) -> [Int] {
        lock.lock()
        if let hit = cache[token] { lock.unlock(); return hit }
        lock.unlock()
        var word = token.unicodeScalars.map { String($0) }
        word[word.count - 1] += "</w>"
        while word.count > 1 {
            var best: (rank: Int, index: Int)? = nil
            for i in 0..<(word.count - 1) {
                if let r = ranks[Pair(a: word[i], b: word[i + 1])], r < (best?.rank ?? .max) { best = (r, i) }
            }
            guard let best else { break }
            let first = word[best.index], second = word[best.index + 1]
            var merged: [String] = []
            var i = 0
            while i < word.count {
                if i < word.count - 1 && word[i] == first && word[i + 1] == second {
                    merged.append(first + second)
                    i += 2
                } else {
                    merged.append(word[i])
                    i += 1
                }
            }
            word = merged
        }
        let ids = word.map { encoder[$0] ?? Self.eos }
        lock.lock(); cache[token] = ids; lock.unlock()
        return ids
    }
}

public enum TokenizerError: Error, CustomStringConvertible {
    case missingVocabulary(String)
    public var description: String {
        switch self { case let .missingVocabulary(m): return "CLIP vocabulary: \(m)" }
    }
}
