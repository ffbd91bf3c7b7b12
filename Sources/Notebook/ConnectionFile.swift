import Foundation

/// The connection file Jupyter writes before starting a kernel: where each of the five sockets
/// listens and the key messages are signed with.
public struct ConnectionFile: Decodable, Equatable, Sendable {
    public var transport: String
    public var ip: String
    public var shellPort: Int
    public var iopubPort: Int
    public var stdinPort: Int
    public var controlPort: Int
    public var heartbeatPort: Int
    public var key: String
    public var signatureScheme: String

    enum CodingKeys: String, CodingKey {
        case transport, ip, key
        case shellPort = "shell_port", iopubPort = "iopub_port", stdinPort = "stdin_port"
        case controlPort = "control_port", heartbeatPort = "hb_port", signatureScheme = "signature_scheme"
    }

    /// Reads and checks `path`: tcp or ipc, ports in range, hmac-sha256 signatures (or none).
    public static func read(_ path: String) throws -> ConnectionFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw KernelError("\(path): cannot read the connection file") }
        guard data.count <= 1 << 20 else { throw KernelError("\(path): not a connection file (over 1 MiB)") }
        let file: ConnectionFile
        do { file = try JSONDecoder().decode(ConnectionFile.self, from: data) } catch {
            throw KernelError("\(path): not a Jupyter connection file (\(Self.reason(error)))")
        }
        try file.check(path)
        return file
    }

    func check(_ path: String) throws {
        guard transport == "tcp" || transport == "ipc" else { throw KernelError("\(path): transport \"\(transport)\" is not tcp or ipc") }
        for (name, port) in [("shell_port", shellPort), ("iopub_port", iopubPort), ("stdin_port", stdinPort),
                             ("control_port", controlPort), ("hb_port", heartbeatPort)] where !(0...65535).contains(port) {
            throw KernelError("\(path): \(name) \(port) is not a port number")
        }
        guard signatureScheme == "hmac-sha256" || key.isEmpty else {
            throw KernelError("\(path): signature scheme \"\(signatureScheme)\" is not supported (hmac-sha256 is)")
        }
        guard !ip.isEmpty, ip.count <= 255, !ip.contains(where: { $0.isWhitespace }) else { throw KernelError("\(path): ip \"\(ip)\" is not an address") }
    }

    /// The ZeroMQ endpoint of a port ("tcp://127.0.0.1:5555"; for ipc, "ipc://IP-5555").
    public func endpoint(_ port: Int) -> String {
        transport == "ipc" ? "ipc://\(ip)-\(port)" : "tcp://\(ip):\(port)"
    }

    static func reason(_ error: Error) -> String {
        switch error {
        case let DecodingError.keyNotFound(key, _): return "no \"\(key.stringValue)\""
        case let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context):
            return "\"\(context.codingPath.map(\.stringValue).joined(separator: "."))\" has the wrong type"
        default: return "not JSON"
        }
    }
}

/// A kernel that cannot start or go on, with the reason.
public struct KernelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
