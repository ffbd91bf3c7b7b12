import Testing
@testable import Engine

/// A device read-back that fails is an error from `toArray()`, not a process abort (#16).
@Suite struct DeviceReadBackTests {
    final class FailingBuffer: DeviceBuffer, @unchecked Sendable {
        let context: AnyObject
        init(context: AnyObject) { self.context = context }
        func upload(from host: UnsafeRawPointer, bytes: Int) throws {}
        func download(into host: UnsafeMutableRawPointer, bytes: Int) throws {
            throw EngineError.backendFailure(op: "download", message: "device lost")
        }
    }

    @Test func aFailedReadBackIsAnError() throws {
        let t = try Tensor(shape: [2, 3], data: [1, 2, 3, 4, 5, 6])
        let context = NSObjectLike()
        // A kernel "wrote" the storage on the device: only the device copy is current.
        _ = try t.storage.deviceBuffer(context: context, access: .overwrite) { _ in FailingBuffer(context: context) }
        #expect(throws: EngineError.self) { _ = try t.toArray() }
        do { _ = try t.toArray() } catch { #expect("\(error)".contains("reading a tensor back from the device failed: download: backend failure: device lost")) }
    }

    final class NSObjectLike {}
}
