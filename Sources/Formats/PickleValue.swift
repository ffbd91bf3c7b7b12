/// Values a restricted unpickler can build. Nothing here can execute code: classes and functions
/// are names (`global`), and the few allowed constructors are interpreted by `Unpickler`.
public indirect enum PickleValue: CustomStringConvertible {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    case list(PickleList)
    case dict(PickleDict)
    /// A reference to an allowed class or function, "module.name".
    case global(String)
    /// An instance of an allowed class (e.g. torch.nn.ParameterDict) with its pickled state.
    case object(PickleObject)
    /// A tensor view of a storage.
    case tensor(TensorRecord)
    /// A storage (a persistent id resolved by the container format).
    case storage(StorageRecord)
    /// A value from a module whose objects are skipped, not refused (training-framework state
    /// outside the weights, such as pytorch_lightning callbacks).
    case skipped(String)

    public var description: String { describe(depth: 0) }

    /// Text for messages; nesting below a few levels is elided (pickles can nest thousands deep).
    func describe(depth: Int) -> String {
        if depth > 4 { return "…" }
        switch self {
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .float(f): return String(f)
        case let .string(s): return s
        case let .bytes(b): return "<\(b.count) bytes>"
        case let .tuple(t): return "(" + t.prefix(8).map { $0.describe(depth: depth + 1) }.joined(separator: ", ") + (t.count > 8 ? ", …)" : ")")
        case let .list(l): return "[\(l.items.count) items]"
        case let .dict(d): return "{\(d.items.count) items}"
        case let .global(g): return g
        case let .object(o): return "<\(o.type)>"
        case let .tensor(t): return "<tensor \(t.storage.dtype.rawValue)\(t.shape)>"
        case let .storage(s): return "<storage \(s.dtype.rawValue) \(s.key)>"
        case let .skipped(s): return "<skipped \(s)>"
        }
    }

    /// The string key of a dict entry, when it has one.
    var keyString: String? {
        switch self {
        case let .string(s): return s
        case let .int(i): return String(i)
        default: return nil
        }
    }
}

/// Owns every container one load creates and empties them when the load's data is released, so
/// that self-referencing pickles (a list appended to itself) cannot leak through reference cycles.
final class PickleArena: @unchecked Sendable {
    private var lists: [PickleList] = [], dicts: [PickleDict] = [], objects: [PickleObject] = [], tuples: [PickleTuple] = []
    func list() -> PickleList { let l = PickleList(); lists.append(l); return l }
    func tuple(_ items: [PickleValue]) -> PickleValue { let t = PickleTuple(items); tuples.append(t); return .tuple(t) }
    func dict() -> PickleDict { let d = PickleDict(); dicts.append(d); return d }
    func object(_ type: String) -> PickleObject { let o = PickleObject(type: type); objects.append(o); return o }
    deinit {
        for l in lists { l.items.removeAll() }
        for d in dicts { d.items.removeAll() }
        for o in objects { o.state = .none }
        for t in tuples { t.items.removeAll() }
    }
}

/// A tuple's items. A class, owned by the load's arena like the other containers, so that
/// releasing deeply nested tuples does not recurse.
public final class PickleTuple: RandomAccessCollection {
    public var items: [PickleValue]
    init(_ items: [PickleValue]) { self.items = items }
    public var startIndex: Int { 0 }
    public var endIndex: Int { items.count }
    public subscript(_ i: Int) -> PickleValue { items[i] }
}

/// A mutable list (pickles append to lists after creating them).
public final class PickleList { public var items: [PickleValue] = [] }

/// A mutable dict that keeps insertion order.
public final class PickleDict {
    public var items: [(key: PickleValue, value: PickleValue)] = []
    public subscript(_ key: String) -> PickleValue? { items.first { $0.key.keyString == key }?.value }
}

/// An instance of an allowed class and its state (set by BUILD).
public final class PickleObject {
    public let type: String
    public var state: PickleValue = .none
    init(type: String) { self.type = type }
}

/// A storage named by a persistent id: its element type and the container's key for its bytes.
public struct StorageRecord {
    public let dtype: StoredDType
    public let key: String
    /// Number of elements, as recorded in the persistent id.
    public let count: Int
}

/// `torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`.
public struct TensorRecord {
    public let storage: StorageRecord
    public let offset: Int
    public let shape: [Int]
    public let strides: [Int]
}
