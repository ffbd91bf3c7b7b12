import Foundation
import TestSupport
import Testing
@testable import Diffusion

/// BrownianTreeNoise against k-diffusion's BrownianTreeNoiseSampler over torchsde's BrownianTree, as
/// A1111's SDE samplers build and query it (Tests/Fixtures/generators/make_brownian_fixtures.py).
enum BrownianFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("brownian", in: .module)
    static func floats(_ v: Any?) -> [Float] { ((v as? [NSNumber]) ?? []).map(\.floatValue) }
    static var cases: [[String: Any]] { (root["cases"] as? [[String: Any]]) ?? [] }
    static var caseNames: [String] { cases.compactMap { $0["name"] as? String } }
    static func named(_ name: String) -> [String: Any]? { cases.first { $0["name"] as? String == name } }

    static func sampler(_ c: [String: Any]) throws -> BrownianTreeNoise {
        let shape = ((c["shape"] as? [NSNumber]) ?? []).map(\.intValue)
        let seeds = ((c["seeds"] as? [NSNumber]) ?? []).map(\.int64Value)
        let source: RandomSourceKind = c["source"] as? String == "nv" ? .nv : .cpu
        return try BrownianTreeNoise(shape: shape, sigmaMin: (c["sigma_min"] as? NSNumber)?.floatValue ?? .nan,
                                     sigmaMax: (c["sigma_max"] as? NSNumber)?.floatValue ?? .nan,
                                     seeds: seeds, source: source)
    }

    /// (sigma, sigmaNext, torchsde's noise) for each call of a case, in order.
    static func calls(_ c: [String: Any]) -> [(Float, Float, [Float])] {
        ((c["calls"] as? [[String: Any]]) ?? []).map {
            (($0["sigma"] as? NSNumber)?.floatValue ?? .nan, ($0["sigma_next"] as? NSNumber)?.floatValue ?? .nan,
             floats($0["noise"]))
        }
    }
}

@Suite struct BrownianTreeTests {
    /// Worst absolute error and the reference's largest magnitude.
    private func errors(_ got: [Float], _ want: [Float]) -> (abs: Float, scale: Float) {
        (zip(got, want).map { abs($0 - $1) }.max() ?? .infinity, want.map { abs($0) }.max() ?? 0)
    }

    @Test("every noise k-diffusion's BrownianTreeNoiseSampler returned to the SDE samplers", arguments: BrownianFixture.caseNames)
    func matchesTorchsde(_ name: String) throws {
        let c = try #require(BrownianFixture.named(name))
        let noise = try BrownianFixture.sampler(c)
        let calls = BrownianFixture.calls(c)
        #expect(!calls.isEmpty)
        var worst: Float = 0, worstRelative: Float = 0, exact = 0, total = 0
        for (i, (sigma, sigmaNext, want)) in calls.enumerated() {
            let got = noise(sigma, sigmaNext)
            #expect(got.count == want.count, "\(name) call \(i): \(got.count) values, expected \(want.count)")
            let (e, scale) = errors(got, want)
            worst = max(worst, e)
            worstRelative = max(worstRelative, e / max(scale, 1))
            exact += zip(got, want).filter { $0 == $1 }.count
            total += want.count
            #expect(e <= 1e-6 * max(scale, 1), "\(name) call \(i) (\(sigma) -> \(sigmaNext)): error \(e), max |value| \(scale)")
        }
        print("BrownianTree \(name): max abs error \(worst), relative to max(1, max |value|) \(worstRelative), \(exact)/\(total) bit-exact")
    }

    @Test("the same seeds give the same noise whatever the order of the queries (torchsde's halfway tree)")
    func orderIndependent() throws {
        let checks = (BrownianFixture.root["order_checks"] as? [[String: Any]]) ?? []
        #expect(!checks.isEmpty)
        for check in checks {
            let name = try #require(check["case"] as? String)
            let c = try #require(BrownianFixture.named(name))
            let calls = BrownianFixture.calls(c)
            let inOrder = try BrownianFixture.sampler(c)
            let expected = calls.map { inOrder($0.0, $0.1) }
            let shuffled = try BrownianFixture.sampler(c)
            for i in ((check["order"] as? [NSNumber]) ?? []).map(\.intValue) {
                let (sigma, sigmaNext, want) = calls[i]
                let got = shuffled(sigma, sigmaNext)
                #expect(got == expected[i], "\(name) call \(i) asked out of order differs from in order")
                let (e, scale) = errors(got, want)
                #expect(e <= 1e-6 * max(scale, 1), "\(name) call \(i) out of order: error \(e)")
            }
        }
    }

    @Test("numpy's SeedSequence(entropy, spawn_key, pool_size=24).generate_state(4)")
    func seedSequence() throws {
        let rows = (BrownianFixture.root["seed_sequences"] as? [[String: Any]]) ?? []
        #expect(rows.count >= 20)
        for row in rows {
            let entropy = try #require((row["entropy"] as? NSNumber)?.uint64Value)
            let spawn = ((row["spawn_key"] as? [NSNumber]) ?? []).map(\.uint64Value)
            let want = ((row["state"] as? [NSNumber]) ?? []).map(\.uint32Value)
            #expect(SeedSequence(entropy: entropy, spawnKey: spawn, poolSize: 24).generateState(4) == want,
                    "entropy \(entropy) spawn key \(spawn)")
        }
    }

    @Test("Python's round(x, 6), half to even on the exact binary value")
    func pythonRound() {
        let rows = (BrownianFixture.root["round6"] as? [[NSNumber]]) ?? []
        #expect(rows.count >= 40)
        for row in rows where row.count == 2 {
            let x = row[0].doubleValue
            #expect(BrownianTree.round6(x) == row[1].doubleValue, "round(\(x), 6)")
        }
    }

    @Test("absurd inputs are refused; equal or non-finite sigmas give zeros")
    func refusals() throws {
        #expect(throws: BrownianTreeNoise.InputError.noSeeds) {
            try BrownianTreeNoise(shape: [4, 2, 2], sigmaMin: 0.03, sigmaMax: 14.6, seeds: [])
        }
        #expect(throws: BrownianTreeNoise.InputError.negativeSeed(-1)) {
            try BrownianTreeNoise(shape: [4, 2, 2], sigmaMin: 0.03, sigmaMax: 14.6, seeds: [-1])
        }
        #expect(throws: BrownianTreeNoise.InputError.badShape([4, 0, 2])) {
            try BrownianTreeNoise(shape: [4, 0, 2], sigmaMin: 0.03, sigmaMax: 14.6, seeds: [1])
        }
        #expect(throws: BrownianTreeNoise.InputError.badShape([Int.max, 4])) {
            try BrownianTreeNoise(shape: [Int.max, 4], sigmaMin: 0.03, sigmaMax: 14.6, seeds: [1])
        }
        for (lo, hi) in [(Float(1), Float(1)), (.nan, 14.6), (0.03, .infinity), (-1, 14.6), (0.03, 1e30)] {
            #expect(throws: BrownianTreeNoise.InputError.self) {
                try BrownianTreeNoise(shape: [4], sigmaMin: lo, sigmaMax: hi, seeds: [1])
            }
        }
        let noise = try BrownianTreeNoise(shape: [4, 2, 2], sigmaMin: 0.03, sigmaMax: 14.6, seeds: [1, 2])
        #expect(noise(3, 3) == [Float](repeating: 0, count: 32))
        #expect(noise(.nan, 3) == [Float](repeating: 0, count: 32))
        // Outside the tree's interval torchsde clamps the times (with a warning).
        let outside = noise(20, 16)
        #expect(outside.count == 32 && outside.allSatisfy { $0 == 0 })
        // Swapping the two sigmas negates the noise.
        let forward = noise(5, 2), backward = noise(2, 5)
        #expect(forward == backward.map { -$0 })
    }

    @Test("work stays bounded: 1000 queries, sigmas closer than torchsde's 1e-6 grid")
    func boundedWork() throws {
        let steps = 500
        let sigmas: [Float] = (0...steps).map { Float(14.6146 * pow(0.0292 / 14.6146, Double($0) / Double(steps))) }
        let noise = try BrownianTreeNoise(shape: [2], sigmaMin: sigmas[steps], sigmaMax: sigmas[0], seeds: [3])
        var finite = true
        for i in 0..<steps {
            let mid = Float(exp(-(Double(-log(sigmas[i])) + Double(log(sigmas[i]) - log(sigmas[i + 1])) / 2)))
            finite = finite && noise(sigmas[i], mid).allSatisfy(\.isFinite) && noise(sigmas[i], sigmas[i + 1]).allSatisfy(\.isFinite)
        }
        #expect(finite)
        // Each query end point costs at most one draw per level of the tree (about 24 here).
        #expect(noise.trees[0].draws <= 2 * steps * 2 * 30)
        // Two sigmas that round to the same 1e-6 grid point: zeros (torchsde would build an empty interval).
        #expect(noise(1, Float(1).nextUp) == [0, 0])
    }
}
