/// Cooperative cancellation inside long computations (a UNet pass or VAE decode at a size far
/// beyond the model's native one can take minutes per step): whoever runs the work installs a
/// check with `Cancellation.checking(_:_:)`, and the networks call `Cancellation.check()` between
/// their blocks. The check is task-local, so concurrent generations (tests) do not see each
/// other's requests.
public enum Cancellation {
    /// Thrown by `check()` when the installed check says stop.
    public struct Requested: Error, CustomStringConvertible, Equatable {
        public init() {}
        public var description: String { "cancelled" }
    }

    @TaskLocal static var isRequested: (@Sendable () -> Bool)?

    /// Runs `body` with `isRequested` consulted by every `check()` inside it.
    public static func checking<T>(_ isRequested: @escaping @Sendable () -> Bool, _ body: () throws -> T) rethrows -> T {
        try $isRequested.withValue(isRequested) { try body() }
    }

    /// Throws `Requested` when the surrounding `checking` scope asks to stop.
    public static func check() throws {
        if let isRequested, isRequested() { throw Requested() }
    }
}
