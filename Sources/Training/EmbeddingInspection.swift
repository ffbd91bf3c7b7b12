import Engine
import Formats
import Foundation
import Models
import Prompting

/// What the embedding-inspector extension shows of an embedding (or of a plain word's token
/// rows), per text encoder: each vector's L2 norm, its cosine to the init vectors (the init
/// text's token rows repeated to the vector count, as `embedding new` starts them), and the
/// vocabulary tokens whose rows are nearest by cosine.
public struct EmbeddingInspection {
    public struct Vector {
        public let norm: Double
        /// Cosine to the init vector at the same index; nil without init text.
        public let initCosine: Double?
        /// The nearest token ids with their cosine, nearest first (ties: lower id first).
        public let nearest: [(id: Int, cosine: Double)]
    }

    /// Per text encoder (its index in the model), each vector.
    public let encoders: [[Vector]]

    /// Inspects `vectors` (per encoder, [n, width]) against the model's token tables.
    public init(vectors: [Tensor], model: StableDiffusionModel, tokenizer: CLIPTokenizer, initText: String?, top: Int = 5) throws {
        let encoders = model.textEncoders.map(\.encoder)
        guard vectors.count == encoders.count else {
            throw TrainingDatasetError.invalidOptions("the embedding has vectors for \(vectors.count) text encoder(s); the model has \(encoders.count)")
        }
        var out: [[Vector]] = []
        let count = vectors.first?.shape.first ?? 0
        let initVectors = try initText.map { try EmbeddingCreation.initialVectors(initText: $0, count: count, model: model, tokenizer: tokenizer) }
        for (index, encoder) in encoders.enumerated() {
            let v = try vectors[index].to(.f32).contiguous()
            let (n, width) = (v.shape[0], v.shape[1])
            let table = encoder.tokenTable
            guard table.shape[1] == width else {
                throw TrainingDatasetError.invalidOptions("vectors of width \(width); the model's text encoder \(index + 1) is \(table.shape[1]) wide")
            }
            // The init vectors as `embedding new` makes them (A1111's create_embedding).
            let initRows: [[Float]]? = try initVectors.map { all in
                let start = encoders[..<index].reduce(0) { $0 + $1.config.hiddenSize }
                let part = try all.sliced(dim: 1, start, start + width).contiguous().toArray()
                return (0..<n).map { Array(part[($0 * width)..<(($0 + 1) * width)]) }
            }
            let values = try v.toArray()
            let rows = try table.to(.f32).contiguous()
            let vocabulary = rows.shape[0]
            let tableValues = try rows.toArray()
            // Row norms once, in double.
            var rowNorms = [Double](repeating: 0, count: vocabulary)
            for r in 0..<vocabulary {
                var s = 0.0
                for c in 0..<width { let x = Double(tableValues[r * width + c]); s += x * x }
                rowNorms[r] = s.squareRoot()
            }
            var vectorsOut: [Vector] = []
            for i in 0..<n {
                let x = Array(values[(i * width)..<((i + 1) * width)]).map(Double.init)
                let norm = x.reduce(0) { $0 + $1 * $1 }.squareRoot()
                func cosine(_ y: ArraySlice<Float>, _ yNorm: Double) -> Double {
                    var dot = 0.0
                    for (a, b) in zip(x, y) { dot += a * Double(b) }
                    return norm > 0 && yNorm > 0 ? dot / (norm * yNorm) : 0
                }
                var best: [(id: Int, cosine: Double)] = []
                for r in 0..<vocabulary {
                    let c = cosine(tableValues[(r * width)..<((r + 1) * width)], rowNorms[r])
                    if best.count < top || c > best[best.count - 1].cosine {
                        best.append((r, c))
                        best.sort { $0.cosine > $1.cosine || ($0.cosine == $1.cosine && $0.id < $1.id) }
                        if best.count > top { best.removeLast() }
                    }
                }
                let initCosine = initRows.flatMap { rows -> Double? in
                    guard i < rows.count else { return nil }
                    let y = rows[i]
                    return cosine(y[...], y.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot())
                }
                vectorsOut.append(Vector(norm: norm, initCosine: initCosine, nearest: best))
            }
            out.append(vectorsOut)
        }
        self.encoders = out
    }

    /// The report's lines: per encoder and vector, the norm, the cosine to init and the nearest tokens.
    public func lines(tokenizer: CLIPTokenizer, encoderNames: [String]) -> [String] {
        var out: [String] = []
        for (e, vectors) in encoders.enumerated() {
            if encoders.count > 1 { out.append("  \(encoderNames[e]):") }
            for (i, v) in vectors.enumerated() {
                var line = String(format: "  vector %d: norm %.4f", i, v.norm)
                if let c = v.initCosine { line += String(format: ", cosine to init %.4f", c) }
                line += "; nearest: " + v.nearest.map { String(format: "%@ (%d) %.3f", tokenizer.tokenText($0.id).escapingControlCharacters as NSString, $0.id, $0.cosine) }
                    .joined(separator: ", ")
                out.append(line)
            }
        }
        return out
    }
}
