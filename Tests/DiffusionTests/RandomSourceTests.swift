import Foundation
import TestSupport
import Testing
@testable import Diffusion

/// Random streams against torch's CPU generator and A1111's NV (Philox) source
/// (Tests/Fixtures/generators/make_rng_fixtures.py).
enum RNGFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("rng", in: .module)
    struct Case: Sendable, CustomStringConvertible {
        let source: RandomSourceKind, seed: UInt64, shape: [Int]
        let values: [Float]?, first: [Float]?, last: [Float]?, sum: Double?, sumsq: Double?
        var description: String { "\(source) seed \(seed) \(shape)" }
    }
    static func floats(_ v: Any?) -> [Float]? { (v as? [NSNumber])?.map(\.floatValue) }
    static var cases: [Case] {
        [RandomSourceKind.cpu, .nv].flatMap { kind in
            (root[kind.rawValue] as! [[String: Any]]).map { e in
                Case(source: kind, seed: (e["seed"] as! NSNumber).uint64Value, shape: (e["shape"] as! [NSNumber]).map(\.intValue),
                     values: floats(e["values"]), first: floats(e["first"]), last: floats(e["last"]),
                     sum: (e["sum"] as? NSNumber)?.doubleValue, sumsq: (e["sumsq"] as? NSNumber)?.doubleValue)
            }
        }
    }
}

@Suite struct RandomSourceTests {
    private func close(_ a: [Float], _ b: [Float], _ what: String) {
        #expect(a.count == b.count, "\(what): count")
        let errs = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }
        let worst = errs.max() ?? 0, i = errs.firstIndex(of: worst) ?? 0
        #expect(worst <= 1e-6, "\(what): worst difference \(worst) at \(i): \(a.isEmpty ? 0 : a[i]) vs \(b.isEmpty ? 0 : b[i])")
    }

    @Test("randn equals torch (CPU generator) and A1111's NV source", arguments: RNGFixture.cases)
    func stream(_ c: RNGFixture.Case) {
        var rng = c.source.make(seed: c.seed)
        let v = rng.randn(shape: c.shape)
        if let values = c.values { close(v, values, c.description) }
        if let first = c.first { close(Array(v.prefix(first.count)), first, "\(c) first") }
        if let last = c.last { close(Array(v.suffix(last.count)), last, "\(c) last") }
        if let sum = c.sum, let sumsq = c.sumsq {
            let s = v.reduce(0.0) { $0 + Double($1) }, q = v.reduce(0.0) { $0 + Double($1) * Double($1) }
            #expect(abs(s - sum) < 1e-3 && abs(q - sumsq) / sumsq < 1e-6, "\(c): sum \(s) vs \(sum), sumsq \(q) vs \(sumsq)")
        }
    }

    @Test("successive draws continue the stream (initial noise, then ancestral noise)", arguments: [RandomSourceKind.cpu, .nv])
    func sequence(_ kind: RandomSourceKind) {
        let seq = RNGFixture.root["\(kind.rawValue)_sequence"] as! [String: Any]
        var rng = kind.make(seed: (seq["seed"] as! NSNumber).uint64Value)
        for (i, draw) in (seq["draws"] as! [[String: Any]]).enumerated() {
            let shape = (draw["shape"] as! [NSNumber]).map(\.intValue)
            close(rng.randn(shape: shape), RNGFixture.floats(draw["values"])!, "\(kind) draw \(i) \(shape)")
        }
    }

    @Test("A1111's published Philox check value")
    func philoxCheck() {
        var g = PhiloxRandom(seed: 0)
        let row = Array(g.randn(shape: [3, 4]).prefix(4))
        close(row, [-0.92466259, -0.42534415, -2.6438457, 0.14518388], "Generator(0).randn((3,4))[0]")
    }
}

/// Training saves its random sources with the embedding; a restored source must continue exactly
/// where the saved one was, including the cached second normal of torch's scalar path.
@Suite struct RandomSourceStateTests {
    func roundTrip<R: RandomSource & Codable>(_ source: R) throws -> R {
        try JSONDecoder().decode(R.self, from: JSONEncoder().encode(source))
    }

    @Test func torchCPUGeneratorResumesMidStream() throws {
        var a = TorchCPURandom(seed: 1234)
        _ = a.randn(37)        // vectorised path, mt19937 mid-block
        _ = a.randn(3)         // scalar path: leaves a cached normal
        var b = try roundTrip(a)
        #expect(a.randn(5) == b.randn(5))
        #expect(a.randn(700) == b.randn(700))   // crosses a 624-word regeneration
    }

    @Test func philoxResumesMidStream() throws {
        var a = PhiloxRandom(seed: 99)
        _ = a.randn(10); _ = a.randn(20)
        var b = try roundTrip(a)
        #expect(b.offset == 2)
        #expect(a.randn(64) == b.randn(64))
    }
}
