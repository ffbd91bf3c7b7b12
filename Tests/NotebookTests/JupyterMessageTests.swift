import Foundation
import Testing
@testable import Notebook

/// The Jupyter wire format: signatures equal Python's `hmac` (the reference vector below was
/// computed with `hmac.new(key, digestmod=hashlib.sha256)` updated with the four frames, as
/// jupyter_client's `Session.sign` does), frames round-trip, and a message with a wrong
/// signature or a broken frame is refused before its JSON is read.
struct JupyterMessageTests {
    static let key = "5e6a3c1f-kernel-key"
    static let parts = [#"{"msg_id":"1","msg_type":"execute_request"}"#, "{}", "{}", #"{"code":"show"}"#].map { Data($0.utf8) }

    @Test func signatureEqualsPythonHMAC() {
        #expect(MessageSigner(key: Self.key).signature(Self.parts) == "8d0de51b13e500a2ee5e1bc86649172495b80f574a7fdb2097e16247ac12e56f")
        #expect(MessageSigner(key: "").signature(Self.parts) == "")
    }

    @Test func decodesSignedFramesAndRefusesForgedOnes() throws {
        let signer = MessageSigner(key: Self.key)
        let identity = Data([0, 1, 2, 3])
        let frames = [identity, JupyterMessage.delimiter, Data(signer.signature(Self.parts).utf8)] + Self.parts
        let message = try JupyterMessage.decode(frames, signer: signer)
        #expect(message.identities == [identity])
        #expect(message.type == "execute_request")
        #expect(message.content["code"] as? String == "show")

        var forged = frames
        forged[3] = Data(#"{"msg_id":"1","msg_type":"shutdown_request"}"#.utf8)
        #expect(throws: KernelError.self) { try JupyterMessage.decode(forged, signer: signer) }
        #expect(throws: KernelError.self) { try JupyterMessage.decode(Array(frames.prefix(5)), signer: signer) }
        #expect(throws: KernelError.self) { try JupyterMessage.decode([identity] + Self.parts, signer: signer) }
        // Signed but not JSON: refused with the part named.
        let broken = [Data("[1, 2".utf8), Data("{}".utf8), Data("{}".utf8), Data("{}".utf8)]
        #expect(throws: KernelError.self) {
            try JupyterMessage.decode([JupyterMessage.delimiter, Data(signer.signature(broken).utf8)] + broken, signer: signer)
        }
    }

    @Test func replyKeepsTheParentsRoutingAndHeader() throws {
        let signer = MessageSigner(key: Self.key)
        let request = try JupyterMessage.decode([Data("peer".utf8), JupyterMessage.delimiter, Data(signer.signature(Self.parts).utf8)] + Self.parts,
                                                signer: signer)
        let reply = JupyterMessage(type: "execute_reply", session: "s", content: ["status": "ok"], parent: request)
        let decoded = try JupyterMessage.decode(try reply.frames(signedBy: signer), signer: signer)
        #expect(decoded.identities == [Data("peer".utf8)])
        #expect(decoded.parentHeader["msg_id"] as? String == "1")
        #expect(decoded.header["version"] as? String == "5.3")
        #expect(decoded.header["msg_type"] as? String == "execute_reply")
    }
}

/// Connection files are checked with the file named, and kernelspecs go where `jupyter
/// kernelspec install` puts them.
struct KernelFilesTests {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "sdshell-connection-\(UUID().uuidString).json"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func readsAConnectionFile() throws {
        let path = try write(#"{"shell_port": 5001, "iopub_port": 5002, "stdin_port": 5003, "control_port": 5004, "hb_port": 5005, "ip": "127.0.0.1", "key": "k", "transport": "tcp", "signature_scheme": "hmac-sha256", "kernel_name": "sdshell"}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try ConnectionFile.read(path)
        #expect(file.endpoint(file.shellPort) == "tcp://127.0.0.1:5001")
        #expect(file.heartbeatPort == 5005)
    }

    @Test(arguments: [
        (#"{"shell_port": 1}"#, "no \"transport\""),
        (#"{"shell_port": 70000, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5, "ip": "127.0.0.1", "key": "k", "transport": "tcp", "signature_scheme": "hmac-sha256"}"#, "shell_port 70000 is not a port number"),
        (#"{"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5, "ip": "127.0.0.1", "key": "k", "transport": "tcp", "signature_scheme": "hmac-md5"}"#, "hmac-md5"),
        (#"{"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5, "ip": "127.0.0.1", "key": "k", "transport": "udp", "signature_scheme": "hmac-sha256"}"#, "udp"),
        ("not json", "not JSON"),
    ])
    func refusesABadConnectionFile(_ text: String, _ reason: String) throws {
        let path = try write(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let error = #expect(throws: KernelError.self) { try ConnectionFile.read(path) }
        #expect(error?.description.hasPrefix(path) == true)
        #expect(error?.description.contains(reason) == true)
    }

    @Test func kernelspecFolders() throws {
        #expect(KernelSpec.directory(.system) == "/usr/local/share/jupyter/kernels/sdshell")
        #expect(KernelSpec.directory(.prefix("/opt/venv")) == "/opt/venv/share/jupyter/kernels/sdshell")
        #expect(KernelSpec.directory(.user, environment: ["HOME": "/home/a"]) == "/home/a/.local/share/jupyter/kernels/sdshell")
        #expect(KernelSpec.directory(.user, environment: ["HOME": "/home/a", "XDG_DATA_HOME": "/x"]) == "/x/jupyter/kernels/sdshell")
        #expect(KernelSpec.directory(.user, environment: ["JUPYTER_DATA_DIR": "/j"]) == "/j/kernels/sdshell")

        let prefix = NSTemporaryDirectory() + "sdshell-prefix-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        let folder = try KernelSpec.install(executable: "/usr/bin/sdshell", location: .prefix(prefix))
        let spec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/kernel.json"))) as? [String: Any]
        #expect(spec?["argv"] as? [String] == ["/usr/bin/sdshell", "kernel", "-f", "{connection_file}"])
        #expect(spec?["language"] as? String == "sdscript")
        #expect(spec?["interrupt_mode"] as? String == "signal")
    }
}
