import Foundation
import TestSupport
import Testing
@testable import Diffusion

/// Every A1111 schedule type against A1111's schedule functions and k-diffusion's
/// (Tests/Fixtures/generators/make_schedule_fixtures.py), with the defaults and with A1111's
/// schedule settings overridden.
@Suite struct ScheduleTests {
    nonisolated(unsafe) static let root = TestFixtures.json("schedules", in: .module)
    static var cases: [Int] { Array((root["cases"] as! [Any]).indices) }

    @Test("sigmas equal A1111's for every schedule type, step count and setting", arguments: cases)
    func schedule(_ index: Int) throws {
        let c = (Self.root["cases"] as! [[String: Any]])[index]
        let name = c["schedule"] as! String, steps = (c["steps"] as! NSNumber).intValue
        let kind = try #require(NoiseSchedule.Kind(rawValue: name))
        var options = NoiseSchedule.Options()
        for (key, value) in c["options"] as! [String: NSNumber] {
            switch key {
            case "sigma_min": options.sigmaMin = value.doubleValue
            case "sigma_max": options.sigmaMax = value.doubleValue
            case "rho": options.rho = value.doubleValue
            case "beta_dist_alpha": options.betaAlpha = value.doubleValue
            case "beta_dist_beta": options.betaBeta = value.doubleValue
            default: Issue.record("unknown option \(key)")
            }
        }
        let expected = (c["sigmas"] as! [NSNumber]).map(\.floatValue)
        let got = SamplerFixture.schedule.sigmas(steps: steps, kind: kind, options: options)
        try #require(got.count == expected.count, "\(name) \(steps) steps \(options): \(got.count) sigmas, A1111 \(expected.count)")
        let worst = zip(got, expected).map { abs($0 - $1) / max(abs($1), 1e-3) }.max() ?? 0
        #expect(worst <= 2e-6, "\(name) \(steps) steps \(options): relative error \(worst)\n\(got)\n\(expected)")
    }

    @Test("A1111's labels and names read back as the schedule (pasted infotext)")
    func names() {
        for kind in NoiseSchedule.Kind.allCases {
            #expect(NoiseSchedule.Kind.named(kind.displayName) == kind && NoiseSchedule.Kind.named(kind.rawValue) == kind)
        }
        #expect(NoiseSchedule.Kind.named("SGMUniform") == .sgmUniform && NoiseSchedule.Kind.named("Align Your Steps") == .alignYourSteps)
    }
}
