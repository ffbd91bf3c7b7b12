import Synchronization

/// Forms of frozen weights that the CPU backend makes once and keeps while the weights live:
/// Winograd's transformed weights, and matrices packed for the bf16 GEMM. Each is a tensor keyed
/// by the weight's storage and a description of what was made from it; `TensorStorage` drops a
/// storage's entries when it goes away (`forget`). Only frozen weights that are a whole storage
/// qualify (`qualifies`): the key names the values, which must not change.
enum DerivedWeights {
    struct Key: Hashable, Sendable {
        let storage: UInt64
        /// What was made, with its parameters (e.g. "winograd f32 tile 4 forward").
        let form: String
    }
    private final class Entry: @unchecked Sendable {
        let value: Tensor
        init(_ value: Tensor) { self.value = value }
    }
    private static let entries = Mutex<[UInt64: [String: Entry]]>([:])

    /// Whether forms of `weight` may be kept: frozen, and the whole of its storage.
    static func qualifies(_ weight: Tensor) -> Bool {
        !weight.requiresGrad && weight.offset == 0 && weight.count == weight.storage.count
    }

    /// The kept `form` of `weight`, made by `make` the first time (made again, not kept, when the
    /// weight does not qualify).
    static func value(of weight: Tensor, form: String, make: () throws -> Tensor) throws -> Tensor {
        guard qualifies(weight) else { return try make() }
        let id = weight.storage.id
        if let hit = entries.withLock({ $0[id]?[form] }) { return hit.value }
        let made = try make()
        weight.storage.hasDerivedCache = true
        let entry = Entry(made)
        let kept = entries.withLock { all -> Entry in
            if let other = all[id]?[form] { return other } // another thread made it meanwhile
            all[id, default: [:]][form] = entry
            return entry
        }
        return kept.value
    }

    /// The kept `form` of `weight`, if any.
    static func existing(of weight: Tensor, form: String) -> Tensor? {
        guard qualifies(weight) else { return nil }
        return entries.withLock { $0[weight.storage.id]?[form]?.value }
    }

    /// Drops the forms whose description `matches` says so, of every storage.
    static func drop(where matches: (String) -> Bool) {
        entries.withLock { all in
            for id in Array(all.keys) {
                all[id] = all[id]?.filter { !matches($0.key) }
                if all[id]?.isEmpty == true { all[id] = nil }
            }
        }
    }

    /// Drops every form made from a storage that is going away.
    static func forget(_ storage: UInt64) {
        _ = entries.withLock { $0.removeValue(forKey: storage) }
    }
}
