/// Numbers as sdshell writes them for people, in infotext, journals and reports: whole numbers
/// without a fraction (`7`), others in Swift's shortest round-tripping form (`7.5`, `0.001`).
public enum NumberText {
    public static func shortest(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }

    /// A `Float` in its own shortest form (`0.1`, not the `Double` widening's `0.10000000149011612`).
    public static func shortest(_ v: Float) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}
