import Crypto
import Foundation

/// One message of the Jupyter messaging protocol (5.3): the routing identities, the four JSON
/// dictionaries, and extra binary buffers. On the wire it is the identities, `<IDS|MSG>`, the
/// HMAC signature (hex), then header, parent header, metadata and content as JSON frames.
struct JupyterMessage {
    var identities: [Data] = []
    var header: [String: Any]
    var parentHeader: [String: Any] = [:]
    var metadata: [String: Any] = [:]
    var content: [String: Any]

    static let delimiter = Data("<IDS|MSG>".utf8)
    static let protocolVersion = "5.3"

    var type: String { header["msg_type"] as? String ?? "" }

    /// A new message of `type` from `session`, in reply to `parent` (its identities and header).
    init(type: String, session: String, content: [String: Any], parent: JupyterMessage? = nil) {
        header = [
            "msg_id": UUID().uuidString.lowercased(), "session": session, "username": "sdshell",
            "date": Self.timestamp(Date()), "msg_type": type, "version": Self.protocolVersion,
        ]
        self.content = content
        if let parent {
            identities = parent.identities
            parentHeader = parent.header
        }
    }

    init(identities: [Data], header: [String: Any], parentHeader: [String: Any], metadata: [String: Any], content: [String: Any]) {
        self.identities = identities
        self.header = header
        self.parentHeader = parentHeader
        self.metadata = metadata
        self.content = content
    }

    /// ISO 8601 with microseconds, as Jupyter writes dates.
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    /// The frames to send, signed by `signer`.
    func frames(signedBy signer: MessageSigner) throws -> [Data] {
        let parts = try [header, parentHeader, metadata, content].map { try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
        return identities + [Self.delimiter, Data(signer.signature(parts).utf8)] + parts
    }

    /// Reads received frames: the signature is checked before any JSON is parsed, so a peer
    /// without the key cannot make the kernel read anything.
    static func decode(_ frames: [Data], signer: MessageSigner) throws -> JupyterMessage {
        guard let split = frames.firstIndex(of: delimiter) else { throw KernelError("a message without the <IDS|MSG> delimiter") }
        guard frames.count >= split + 6 else { throw KernelError("a message with \(frames.count - split - 1) parts after the delimiter (6 or more expected)") }
        let parts = Array(frames[(split + 2)..<(split + 6)])
        guard signer.verify(String(decoding: frames[split + 1], as: UTF8.self), parts) else { throw KernelError("a message with a wrong signature") }
        func dictionary(_ data: Data, _ name: String) throws -> [String: Any] {
            guard let value = try? JSONSerialization.jsonObject(with: data), let dictionary = value as? [String: Any] else {
                throw KernelError("a message whose \(name) is not a JSON object")
            }
            return dictionary
        }
        return JupyterMessage(identities: Array(frames[..<split]), header: try dictionary(parts[0], "header"),
                              parentHeader: try dictionary(parts[1], "parent header"),
                              metadata: try dictionary(parts[2], "metadata"), content: try dictionary(parts[3], "content"))
    }
}

/// Signs and checks messages with the connection file's key: HMAC-SHA256 over the header, parent
/// header, metadata and content frames, as lowercase hex. An empty key means unsigned messages.
struct MessageSigner: Sendable {
    let key: Data

    init(key: String) { self.key = Data(key.utf8) }

    func signature(_ parts: [Data]) -> String {
        guard !key.isEmpty else { return "" }
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: key))
        for part in parts { hmac.update(data: part) }
        return Data(hmac.finalize()).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `signature` is right for `parts` (compared in constant time).
    func verify(_ signature: String, _ parts: [Data]) -> Bool {
        let expected = Array(self.signature(parts).utf8), given = Array(signature.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
