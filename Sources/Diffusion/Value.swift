import Formats

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
        case let .real(v): return NumberText.shortest(v)
        case let .string(s): return s
        case let .boolean(b): return b ? "true" : "false"
        case let .size(w, h): return "\(w)x\(h)"
        case .list: return literal
        }
    }

    /// As sdscript source: strings quoted and escaped, so the text parses back to this value.
    /// A list's text stops at `maximumListText` characters (ending in `…`): a script can build
    /// lists that share items exponentially (`[x, x]` nested), whose full text no memory holds.
    public var literal: String {
        switch self {
        case let .string(s): return Self.quote(s)
        case .list:
            var out = ""
            appendLiteral(to: &out)
            return out
        default: return description
        }
    }

    /// The most characters a list's text has.
    public static let maximumListText = 1 << 20

    private func appendLiteral(to out: inout String) {
        guard case let .list(items) = self else { out += literal; return }
        out += "["
        for (i, item) in items.enumerated() {
            if out.utf8.count >= Self.maximumListText { out += "…"; break }
            if i > 0 { out += ", " }
            item.appendLiteral(to: &out)
        }
        out += "]"
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
