import Foundation

/// A sampler as settings name it: one of `Sampler.all`, compared by its A1111 name.
public struct Sampler: Sendable, Hashable, CustomStringConvertible {
    public let method: any SamplingMethod

    init(_ method: any SamplingMethod) { self.method = method }

    /// A1111's display name.
    public var rawValue: String { method.name }
    public var description: String { method.name }
    public var defaultSchedule: NoiseSchedule.Kind { method.defaultSchedule }
    public var discardsPenultimateSigma: Bool { method.discardsPenultimateSigma }
    /// Whether it reads `option` (and so whether the infotext records it).
    public func takes(_ option: SamplerOption) -> Bool { method.options.contains(option) }

    public static func == (a: Sampler, b: Sampler) -> Bool { a.rawValue == b.rawValue }
    public func hash(into h: inout Hasher) { h.combine(rawValue) }

    public static let euler = Sampler(EulerSampler())
    public static let eulerAncestral = Sampler(EulerAncestralSampler())
    public static let heun = Sampler(HeunSampler())
    public static let dpm2 = Sampler(DPM2Sampler())
    public static let dpm2Ancestral = Sampler(DPM2AncestralSampler())
    public static let lms = Sampler(LMSSampler())
    public static let dpmpp2M = Sampler(DPMPP2MSampler())
    public static let dpmpp2SAncestral = Sampler(DPMPP2SAncestralSampler())
    public static let dpmppSDE = Sampler(DPMPPSDESampler())
    public static let dpmpp2MSDE = Sampler(DPMPP2MSDESampler(solver: .midpoint))
    public static let dpmpp2MSDEHeun = Sampler(DPMPP2MSDESampler(solver: .heun))
    public static let dpmpp3MSDE = Sampler(DPMPP3MSDESampler())
    public static let dpmFast = Sampler(DPMFastSampler())
    public static let dpmAdaptive = Sampler(DPMAdaptiveSampler())
    public static let restart = Sampler(RestartSampler())
    public static let ddim = Sampler(DDIMSampler())
    public static let plms = Sampler(PLMSSampler())
    public static let ddimCFGpp = Sampler(DDIMSampler(cfgpp: true))
    public static let uniPC = Sampler(UniPCSampler())
    public static let lcm = Sampler(LCMSampler())

    /// Every sampler: a new one is a file of its own and a line here.
    public static let allCases: [Sampler] = [.euler, .eulerAncestral, .heun, .dpm2, .dpm2Ancestral, .lms, .dpmpp2M, .dpmpp2SAncestral,
                                             .dpmppSDE, .dpmpp2MSDE, .dpmpp2MSDEHeun, .dpmpp3MSDE, .dpmFast, .dpmAdaptive, .restart, .ddim, .ddimCFGpp, .plms, .uniPC, .lcm]

    /// A1111's samplers that sdshell does not have yet: named as such, not "corrected" to a
    /// similar name (PLMS is not LMS).
    public static let notYetImplemented = ["Heun++ 2"]

    /// Looks a name up as A1111 writes it, also accepting old combined names ("DPM++ 2M Karras"),
    /// k-diffusion aliases and case differences; returns the sampler and the schedule the name
    /// implies, if any.
    public static func named(_ name: String) -> (Sampler, NoiseSchedule.Kind?)? {
        let trimmed = name.trimmingCharacters(in: .whitespaces).lowercased()
        for kind in [NoiseSchedule.Kind.karras, .exponential] {
            let suffix = " " + kind.rawValue
            if trimmed.hasSuffix(suffix), let s = named(String(trimmed.dropLast(suffix.count)))?.0 { return (s, kind) }
        }
        guard let s = allCases.first(where: { ([$0.rawValue] + $0.method.aliases).contains { $0.lowercased() == trimmed } }) else { return nil }
        return (s, nil)
    }
}
