/// "Did you mean": the known name nearest to a misspelt one.
public enum NameSuggestion {
    /// Edit distance counting an adjacent transposition as one edit (optimal string alignment),
    /// case-insensitive.
    public static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a.lowercased()), y = Array(b.lowercased())
        if x.isEmpty || y.isEmpty { return max(x.count, y.count) }
        var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[x.count][y.count]
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
