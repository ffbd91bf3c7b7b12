import Foundation
import Testing
@testable import Engine

/// `Tensor.interpolated` equals PyTorch's `F.interpolate` in every mode A1111's latent upscalers
/// use (Tests/Fixtures/generators/make_interpolation_fixtures.py), enlarging, shrinking and both,
/// within 1e-5 (the antialiased kernels sum their weights in another order: 1.2e-6 seen).
@Suite struct InterpolationTests {
    struct Case: CustomStringConvertible, Sendable {
        let mode: InterpolationMode, antialias: Bool, height: Int, width: Int, output: [Float]
        var description: String { "\(mode.rawValue)\(antialias ? " antialiased" : "") to \(height)x\(width)" }
    }

    nonisolated(unsafe) static let root: [String: Any] = {
        let url = Bundle.module.url(forResource: "Fixtures/interpolation", withExtension: "json")!
        return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    }()

    static let cases: [Case] = (root["cases"] as! [[String: Any]]).map { c in
        let size = c["size"] as! [Int]
        return Case(mode: InterpolationMode(rawValue: c["mode"] as! String)!, antialias: c["antialias"] as! Bool,
                    height: size[0], width: size[1], output: (c["output"] as! [NSNumber]).map(\.floatValue))
    }

    @Test(arguments: cases)
    func equalsTorch(_ c: Case) throws {
        let input = try Tensor(shape: Self.root["input_shape"] as! [Int], data: (Self.root["input"] as! [NSNumber]).map(\.floatValue))
        let got = try input.interpolated(height: c.height, width: c.width, mode: c.mode, antialias: c.antialias)
        #expect(got.shape == [input.shape[0], input.shape[1], c.height, c.width])
        let values = try got.toArray()
        let error = zip(values, c.output).map { abs($0 - $1) }.max() ?? .infinity
        #expect(values.count == c.output.count && error <= 1e-5, "\(c): max error \(error)")
    }
}
