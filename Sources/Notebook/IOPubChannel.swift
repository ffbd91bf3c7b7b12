import Foundation

/// The kernel's IOPub socket: what every client sees (status, outputs, displays). The execution
/// thread and the control thread both publish, so each message is sent under a lock.
final class IOPubChannel: @unchecked Sendable {
    let socket: ZMQSocket
    let signer: MessageSigner
    let session: String
    private let lock = NSLock()

    init(socket: ZMQSocket, signer: MessageSigner, session: String) {
        self.socket = socket
        self.signer = signer
        self.session = session
    }

    /// Publishes a message of `type` in reply to `parent` (nil: no parent, as the first status).
    func publish(_ type: String, _ content: [String: Any], parent: JupyterMessage?) {
        var message = JupyterMessage(type: type, session: session, content: content, parent: parent)
        message.identities = [Data("kernel.sdshell.\(type)".utf8)]
        lock.lock()
        defer { lock.unlock() }
        do { try socket.send(try message.frames(signedBy: signer)) } catch {
            FileHandle.standardError.write(Data("sdshell kernel: cannot publish \(type): \(error)\n".utf8))
        }
    }

    /// `status` busy or idle around the handling of `parent`.
    func status(_ state: String, parent: JupyterMessage?) { publish("status", ["execution_state": state], parent: parent) }
}
