/// "Did you mean": the known name nearest to a misspelt one.
public enum NameSuggestion {
    /// Levenshtein distance (case-insensitive).
    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.lowercased()), y = Array(b.lowercased())
        if x.isEmpty || y.isEmpty { return max(x.count, y.count) }
        var previous = Array(0...y.count), current = [Int](repeating: 0, count: y.count + 1)
        for i in 1...x.count {
            current[0] = i
            for j in 1...y.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[y.count]
    }

    /// The nearest name within a distance of about a third of its length (at least 1, at most 3).
    public static func nearest<S: Sequence>(_ name: String, in known: S) -> String? where S.Element == String {
        let limit = min(3, max(1, name.count / 3))
        let scored = known.map { ($0, distance(name, $0)) }.filter { $0.1 <= limit && $0.1 > 0 }
        return scored.min { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }?.0
    }

    /// ` (did you mean `x`?)` or nothing.
    public static func hint<S: Sequence>(_ name: String, in known: S) -> String where S.Element == String {
        nearest(name, in: known).map { "; did you mean `\($0)`?" } ?? ""
    }
}
