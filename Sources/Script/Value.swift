import Foundation

/// A runtime value of sdscript.
public enum Value: Sendable, Equatable, CustomStringConvertible {
    case integer(Int64)
    case real(Double)
    case string(String)
    case boolean(Bool)
    case size(width: Int, height: Int)
    case list([Value])

    /// The kind, as messages name it.
    public var kindName: String {
        switch self {
        case .integer: return "an integer"
        case .real: return "a number"
        case .string: return "a string"
        case .boolean: return "a boolean"
        case .size: return "a size"
        case .list: return "a list"
        }
    }

    /// As `print` and string interpolation show it: strings bare, numbers shortest.
    public var description: String {
        switch self {
        case let .integer(v): return String(v)
        case let .real(v): return Self.format(v)
        case let .string(s): return s
        case let .boolean(b): return b ? "true" : "false"
        case let .size(w, h): return "\(w)x\(h)"
        case let .list(items): return "[" + items.map(\.literal).joined(separator: ", ") + "]"
        }
    }

    /// As sdscript source: strings quoted and escaped, so the text parses back to this value.
    public var literal: String {
        switch self {
        case let .string(s): return Self.quote(s)
        case let .list(items): return "[" + items.map(\.literal).joined(separator: ", ") + "]"
        default: return description
        }
    }

    /// Whole reals print without a fraction (`7`), others in Swift's shortest form (`7.5`, `0.001`).
    static func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }

    /// A string literal that reads back as `s`.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for c in s {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "{": out += "\\{"
            default: out.append(c)
            }
        }
        return out + "\""
    }
}
