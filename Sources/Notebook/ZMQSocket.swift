import CZMQ
import Foundation

/// What went wrong in a ZeroMQ call, with libzmq's own words.
public struct ZMQError: Error, CustomStringConvertible {
    public let call: String
    public let reason: String
    init(_ call: String) {
        self.call = call
        reason = String(cString: zmq_strerror(zmq_errno()))
    }
    public var description: String { "\(call): \(reason)" }
}

/// One ZeroMQ context (libzmq's I/O threads) for the kernel's sockets.
final class ZMQContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    init() throws {
        guard let handle = zmq_ctx_new() else { throw ZMQError("zmq_ctx_new") }
        self.handle = handle
    }
}

/// A ZeroMQ socket: multipart messages of byte frames. libzmq sockets are not thread-safe: each
/// is used by one thread, or (the kernel's IOPub socket) behind a lock.
final class ZMQSocket: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer
    /// The largest message accepted (ZMQ_MAXMSGSIZE): a peer cannot make the kernel allocate more.
    static let maximumMessageBytes: Int64 = 256 << 20

    init(_ context: ZMQContext, type: Int32) throws {
        guard let handle = zmq_socket(context.handle, type) else { throw ZMQError("zmq_socket") }
        self.handle = handle
        var linger: Int32 = 0
        zmq_setsockopt(handle, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size)
        var limit = Self.maximumMessageBytes
        zmq_setsockopt(handle, ZMQ_MAXMSGSIZE, &limit, MemoryLayout<Int64>.size)
    }

    /// Binds to `endpoint` ("tcp://127.0.0.1:5555", "ipc:///tmp/x-1").
    func bind(_ endpoint: String) throws {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQError("zmq_bind \(endpoint)") }
    }

    func close() { zmq_close(handle) }

    /// Sends `frames` as one multipart message; retried when a signal interrupts the call.
    func send(_ frames: [Data]) throws {
        for (i, frame) in frames.enumerated() {
            let flags = i + 1 < frames.count ? ZMQ_SNDMORE : 0
            while true {
                let sent = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, $0.count, flags) }
                if sent >= 0 { break }
                guard zmq_errno() == EINTR else { throw ZMQError("zmq_send") }
            }
        }
    }

    /// Receives one whole multipart message (blocking; retried when a signal interrupts it).
    func receive() throws -> [Data] {
        var frames: [Data] = []
        var message = zmq_msg_t()
        while true {
            zmq_msg_init(&message)
            var size = zmq_msg_recv(&message, handle, 0)
            while size < 0, zmq_errno() == EINTR { size = zmq_msg_recv(&message, handle, 0) }
            guard size >= 0 else {
                zmq_msg_close(&message)
                throw ZMQError("zmq_msg_recv")
            }
            frames.append(Data(bytes: zmq_msg_data(&message), count: Int(size)))
            let more = zmq_msg_more(&message) != 0
            zmq_msg_close(&message)
            if !more { return frames }
        }
    }

    /// Waits up to `milliseconds` for a message on any of `sockets`; the indices of those with one.
    static func poll(_ sockets: [ZMQSocket], milliseconds: Int) -> [Int] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let ready = zmq_poll(&items, Int32(items.count), milliseconds)
        guard ready > 0 else { return [] }
        return items.indices.filter { items[$0].revents & Int16(ZMQ_POLLIN) != 0 }
    }
}
