import Engine
import Foundation
import TestSupport
import Testing
@testable import Diffusion
import Models

/// Schedules and samplers against k-diffusion run on a toy eps model
/// (Tests/Fixtures/generators/make_sampler_fixtures.py; the toy model is written out in the fixture).
enum SamplerFixture {
    nonisolated(unsafe) static let root = TestFixtures.json("samplers", in: .module)
    static func floats(_ v: Any?) -> [Float] { (v as! [NSNumber]).map(\.floatValue) }
    static let schedule = NoiseSchedule(alphasCumprod: floats(root["alphas_cumprod"]))
    static let cond = floats((root["cond"] as! [String: Any])["values"])
    static let draws: [[Float]] = ((root["noise_stream"] as! [String: Any])["draws"] as! [Any]).map(floats)
    static var runs: [Int] { Array((root["runs"] as! [Any]).indices) }
    static func run(_ i: Int) -> [String: Any] { (root["runs"] as! [[String: Any]])[i] }

    /// CompVisDenoiser around the fixture's toy eps model, in float32:
    /// eps = (0.9 u + 0.1 tanh(u)) + (t / 1000 * 0.1) cond with u = x c_in, c_in = 1 / sqrt(sigma^2 + 1).
    static let toy = (root["toy"] as! [String: NSNumber]).mapValues(\.floatValue)
    static func denoiser(_ x: [Float], _ sigma: Float) -> [Float] {
        let cIn = 1 / (sigma * sigma + 1).squareRoot()
        let t = schedule.timestep(sigma: sigma)
        let k = t / 1000 * toy["t_coef"]!, a = toy["x_coef"]!, b = toy["tanh_coef"]!
        return (0..<x.count).map { i in
            let u = x[i] * cIn
            let eps = (u * a + Foundation.tanh(u) * b) + k * cond[i]
            return x[i] + eps * -sigma
        }
    }
}

@Suite struct SamplerTests {
    private func close(_ a: [Float], _ b: [Float], tol: Float, _ what: String) {
        let scale = max(b.map { abs($0) }.max() ?? 1, 1e-6)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        #expect(a.count == b.count && worst / scale <= tol, "\(what): relative error \(worst / scale)")
    }

    @Test("sigma schedules (uniform = k-diffusion's get_sigmas, karras, exponential) equal k-diffusion's", arguments: [NoiseSchedule.Kind.uniform, .karras, .exponential])
    func schedules(_ kind: NoiseSchedule.Kind) {
        let key = kind == .uniform ? "automatic" : kind.rawValue
        let expected = SamplerFixture.floats(((SamplerFixture.root["schedules"] as! [String: Any])["steps_8"] as! [String: Any])[key])
        close(SamplerFixture.schedule.sigmas(steps: 8, kind: kind), expected, tol: 1e-6, "\(kind)")
    }

    @Test("sigma to timestep and back follow k-diffusion's log-sigma interpolation")
    func timesteps() {
        let checks = SamplerFixture.root["denoiser_checks"] as! [String: Any]
        for c in checks["sigma_to_t"] as! [[String: NSNumber]] {
            let t = SamplerFixture.schedule.timestep(sigma: c["sigma"]!.floatValue)
            #expect(abs(t - c["t"]!.floatValue) <= 1e-3, "sigma \(c["sigma"]!) -> \(t), expected \(c["t"]!)")
        }
        for c in checks["t_to_sigma"] as! [[String: NSNumber]] {
            let s = SamplerFixture.schedule.sigma(timestep: c["t"]!.floatValue)
            #expect(abs(s - c["sigma"]!.floatValue) / c["sigma"]!.floatValue <= 1e-6)
        }
    }

    @Test("every sampler's final latent equals k-diffusion's given the same noise", arguments: SamplerFixture.runs)
    func sampler(_ index: Int) throws {
        let run = SamplerFixture.run(index)
        let name = run["sampler"] as! String
        let sampler = try #require(Sampler.named(name)?.0, "unknown sampler \(name)")
        let sigmas = SamplerFixture.floats(run["sigmas"])
        // Noise in the order k-diffusion drew it: entries of the shared stream, or the recorded
        // Brownian-tree values (A1111's SDE noise) for the "brownian" runs.
        let drawn = run["noise_values"].map { ($0 as! [Any]).map(SamplerFixture.floats) }
            ?? (run["noise_draws"] as! [[String: Any]]).compactMap { ($0["index"] as? NSNumber).map { SamplerFixture.draws[$0.intValue] } }
        let used = (run["noise_draws"] as! [[String: Any]]).enumerated().filter { ($0.element["used"] as? Bool) == true }.map { drawn[$0.offset] }
        var next = 0
        var calls = 0
        let shape = [1, 4, 4, 4]
        let samplingRun = SamplingRun(sigmas: sigmas, steps: sigmas.count - 1, alphasCumprod: SamplerFixture.floats(SamplerFixture.root["alphas_cumprod"]),
                                      denoise: { x, s in
            calls += 1
            return try Tensor(shape: shape, data: SamplerFixture.denoiser(x.toArray(), s))
        }, noise: { _, _ in
            defer { next += 1 }
            return try Tensor(shape: shape, data: used[min(next, used.count - 1)])
        })
        let x = try sampler.method.sample(Tensor(shape: shape, data: SamplerFixture.floats(run["x0"])), samplingRun).toArray()
        #expect(next == used.count, "\(name): drew \(next) noises, k-diffusion used \(used.count)")
        #expect(calls == (run["denoiser_calls"] as! NSNumber).intValue, "\(name): \(calls) model calls")
        close(x, SamplerFixture.floats(run["x"]), tol: 1e-5, "\(name) \(run["schedule"]!) \(run["variant"]!)")
    }

    @Test("A1111 sampler names, including old combined names")
    func names() {
        #expect(Sampler.named("DPM++ 2M Karras")! == (.dpmpp2M, .karras))
        #expect(Sampler.named("euler a")! == (.eulerAncestral, nil))
        #expect(Sampler.named("DPM++ 2M SDE Exponential")! == (.dpmpp2MSDE, .exponential))
        #expect(Sampler.named("Euler b") == nil)
    }
}

extension SamplerFixture {
    /// A timestep sampler's run on the toy eps model (no input scaling), counting model calls.
    static func toyTimestepRun(steps: Int, calls: @escaping () -> Void) -> SamplingRun {
        let shape = [1, 4, 4, 4]
        return SamplingRun(sigmas: [], steps: steps, alphasCumprod: floats(root["alphas_cumprod"]),
                           denoise: { _, _ in throw GenerationError.invalid("a timestep sampler predicts noise") }, predictNoise: { tensor, t in
            calls()
            let k = t / 1000 * toy["t_coef"]!, x = try tensor.toArray()
            return try Tensor(shape: shape, data: (0..<x.count).map { i in (x[i] * toy["x_coef"]! + Foundation.tanh(x[i]) * toy["tanh_coef"]!) + k * cond[i] })
        }, noise: { _, _ in try Tensor.zeros(shape) })
    }
}

@Suite struct DDIMTests {
    @Test("A1111's DDIM equals the reference on the toy eps model")
    func ddim() throws {
        let r = SamplerFixture.root["ddim"] as! [String: Any]
        #expect(DDIMSampler.timesteps(steps: 8) == (r["timesteps"] as! [NSNumber]).map(\.intValue))
        var calls = 0
        let shape = [1, 4, 4, 4]
        let run = SamplerFixture.toyTimestepRun(steps: 8) { calls += 1 }
        let x = try Sampler.ddim.method.sample(Tensor(shape: shape, data: SamplerFixture.floats(r["x0"])), run).toArray()
        #expect(calls == 7)
        let ref = SamplerFixture.floats(r["x"])
        let worst = zip(x, ref).map { abs($0 - $1) }.max()! / ref.map { abs($0) }.max()!
        #expect(worst <= 1e-5, "relative error \(worst)")
    }
}

@Suite struct PLMSTests {
    @Test("A1111's PLMS equals the reference on the toy eps model")
    func plms() throws {
        let r = SamplerFixture.root["plms"] as! [String: Any]
        var calls = 0
        let shape = [1, 4, 4, 4]
        let run = SamplerFixture.toyTimestepRun(steps: 8) { calls += 1 }
        let x = try Sampler.plms.method.sample(Tensor(shape: shape, data: SamplerFixture.floats(r["x0"])), run).toArray()
        #expect(calls == (r["denoiser_calls"] as! NSNumber).intValue)
        let ref = SamplerFixture.floats(r["x"])
        let worst = zip(x, ref).map { abs($0 - $1) }.max()! / ref.map { abs($0) }.max()!
        #expect(worst <= 1e-5, "relative error \(worst)")
    }
}

@Suite struct PredictionTests {
    @Test("eps and v scalings equal k-diffusion's CompVisDenoiser / CompVisVDenoiser (torch float32)")
    func scalings() {
        let v: [(Float, Float, Float, Float)] = [(14.614643, 0.004660097416490316, -0.9976672530174255, 0.0682649090886116),
                                                 (1.0, 0.5, -0.7071067690849304, 0.7071067690849304),
                                                 (0.0291675, 0.9991499185562134, -0.029155097901821136, 0.9995748400688171)]
        for (sigma, skip, out, cin) in v {
            let s = Prediction.v.scalings(sigma: sigma)
            #expect(abs(s.cSkip - skip) <= 1e-7 && abs(s.cOut - out) <= 1e-6 && abs(s.cIn - cin) <= 1e-7, "sigma \(sigma): \(s)")
            let e = Prediction.epsilon.scalings(sigma: sigma)
            #expect(e.cSkip == 1 && e.cOut == -sigma && abs(e.cIn - cin) <= 1e-7)
        }
    }
}
