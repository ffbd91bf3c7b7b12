import Engine
import Foundation

/// The tensors a network part read from its model file, by full name ("unet.conv_in.weight"),
/// and those it uses in place (`MappedWeights`). Rebuilding the part with other weights for
/// some layers (a LoRA merged in) takes every other tensor from here: nothing is read or copied
/// again, and a rebuild without replacements is the original network, bit for bit.
public final class LoadedWeights: @unchecked Sendable {
    private let lock = NSLock()
    private var tensors: [String: Tensor] = [:]
    /// The tensors used in place from the file's mapping.
    public let mapped = MappedWeights()

    public init() {}

    /// The tensor read under `name`, reading it with `read` the first time.
    func tensor(_ name: String, read: () throws -> Tensor) throws -> Tensor {
        if let known = self[name] { return known }
        let t = try read()
        lock.withLock { tensors[name] = t }
        return t
    }

    /// The tensor read under `name`, if it was.
    public subscript(name: String) -> Tensor? { lock.withLock { tensors[name] } }
}
