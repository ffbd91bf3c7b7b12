import Foundation

/// What the test targets share: the reference fixtures they load and the tiny model they run.
public enum TestFixtures {
    /// The JSON object of `Fixtures/NAME.json` in a test target's resources (`Bundle.module`).
    /// A missing or malformed fixture stops the tests: nothing can be checked without it.
    public static func json(_ name: String, in bundle: Bundle) -> [String: Any] {
        guard let url = bundle.url(forResource: name, withExtension: "json", subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            fatalError("fixture Fixtures/\(name).json is missing or not a JSON object")
        }
        return root
    }

    /// The repository's root folder (for `examples/`, `models/`, `embeddings/`).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../..").standardizedFileURL.path

    /// The tiny Stable Diffusion model the tests run (Tests/Fixtures/tiny-sd, Tests/Fixtures/generators/make_tiny_sd.py).
    public static let tinyModelPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/tiny-sd").standardizedFileURL.path

    /// A model or file under Tests/Fixtures: the tiny SD 2.x and SDXL models
    /// (Tests/Fixtures/generators/make_family_fixtures.py) are "tiny-sd2", "tiny-sd2.ckpt",
    /// "tiny-sd2-v.safetensors", "tiny-sdxl" and "tiny-sdxl.safetensors".
    public static func fixturePath(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/" + name).standardizedFileURL.path
    }
}

/// A reference fixture whose "runs" are objects with a "name" (the generators' common layout),
/// and the 8-bit pictures they store as `{"shape": [...], "uint8_base64": "..."}`.
public struct NamedRuns: @unchecked Sendable {
    public let root: [String: Any]
    public init(_ root: [String: Any]) { self.root = root }
    public var runs: [[String: Any]] { root["runs"] as! [[String: Any]] }
    public var names: [String] { runs.map { $0["name"] as! String } }
    public func run(_ name: String) -> [String: Any] { runs.first { $0["name"] as? String == name }! }

    /// A stored picture's bytes.
    public static func bytes(_ v: Any?) -> [UInt8] { [UInt8](Data(base64Encoded: (v as! [String: Any])["uint8_base64"] as! String)!) }
}
