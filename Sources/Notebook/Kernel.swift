import CZMQ
import Engine
import Foundation
import Script
import Synchronization

/// sdshell as a Jupyter kernel (messaging protocol 5.3 over ZeroMQ). Each cell runs through the
/// one interpreter of the session, so settings, variables and the loaded model carry over between
/// cells and the cells are recorded in the session journal as a script's statements are.
///
/// Threads: the execution thread serves the shell socket (cells, completion) and is the only one
/// touching the interpreter; the control thread serves interrupt, shutdown and kernel-info
/// requests while a cell runs; the heartbeat thread echoes. IOPub is shared behind a lock. (The
/// control thread reads only constants, the atomic flags and its own socket: hence unchecked.)
public final class Kernel: @unchecked Sendable {
    let connection: ConnectionFile
    let interrupts: KernelInterrupts
    let signer: MessageSigner
    let session = UUID().uuidString.lowercased()
    let context: ZMQContext
    let shell: ZMQSocket, control: ZMQSocket, stdin: ZMQSocket, heartbeat: ZMQSocket
    let iopub: IOPubChannel
    let host: NotebookHost
    let interpreter: Interpreter
    /// Set by a shutdown request: both loops end.
    let shutdown = Atomic<Bool>(false)
    /// The process that started the kernel: when it is gone (reparented), the kernel ends too.
    let parentProcess = getppid()
    var executionCount = 0
    /// A cell failed with `stop_on_error`: the cells queued behind it are answered "aborted", as
    /// ipykernel does (a "Run All" stops at the first error).
    var abortQueuedCells = false

    /// Binds every socket of `connection`; the interpreter starts with a fresh session.
    public init(connection: ConnectionFile, interrupts: KernelInterrupts) throws {
        self.connection = connection
        self.interrupts = interrupts
        signer = MessageSigner(key: connection.key)
        context = try ZMQContext()
        shell = try ZMQSocket(context, type: ZMQ_ROUTER)
        control = try ZMQSocket(context, type: ZMQ_ROUTER)
        stdin = try ZMQSocket(context, type: ZMQ_ROUTER)
        heartbeat = try ZMQSocket(context, type: ZMQ_REP)
        let publisher = try ZMQSocket(context, type: ZMQ_PUB)
        for (socket, port) in [(shell, connection.shellPort), (control, connection.controlPort), (stdin, connection.stdinPort),
                               (heartbeat, connection.heartbeatPort), (publisher, connection.iopubPort)] {
            try socket.bind(connection.endpoint(port))
        }
        iopub = IOPubChannel(socket: publisher, signer: signer, session: session)
        host = NotebookHost(iopub: iopub, interrupts: interrupts)
        interpreter = Interpreter(host: host)
    }

    /// Serves until a shutdown request.
    public func run() {
        let heartbeat = self.heartbeat
        Thread.detachNewThread {
            while let frames = try? heartbeat.receive() { try? heartbeat.send(frames) }
        }
        let controlThread = Thread { [self] in serve(control, shellChannel: false) }
        controlThread.start()
        iopub.status("starting", parent: nil)
        serve(shell, shellChannel: true)
    }

    /// Receives and handles messages on `socket` until shutdown (polling, so the flag is seen).
    private func serve(_ socket: ZMQSocket, shellChannel: Bool) {
        while !shutdown.load(ordering: .acquiring), !interrupts.terminated(), getppid() == parentProcess {
            guard !ZMQSocket.poll([socket], milliseconds: 100).isEmpty, let frames = try? socket.receive() else { continue }
            let request: JupyterMessage
            do { request = try JupyterMessage.decode(frames, signer: signer) } catch {
                log("ignored \(error)")
                continue
            }
            // The cells queued behind a failed one are those already waiting when it failed: taken
            // before its reply goes out, so that a cell sent after the client saw the error runs.
            var queued: [JupyterMessage] = []
            respond(to: request, on: socket, with: shellChannel ? handleShell(request) : handleControl(request)) {
                if shellChannel, abortQueuedCells {
                    abortQueuedCells = false
                    queued = waitingRequests(socket)
                }
            }
            for waiting in queued {
                if waiting.type == "execute_request" {
                    respond(to: waiting, on: socket, with: ("execute_reply", ["status": "aborted", "execution_count": executionCount]))
                } else {
                    respond(to: waiting, on: socket, with: handleShell(waiting))
                }
            }
        }
    }

    /// Sends `reply` to `request`, between the busy and idle statuses (`beforeSending` runs once the
    /// reply is made, before it is sent).
    private func respond(to request: JupyterMessage, on socket: ZMQSocket, with reply: @autoclosure () -> Reply?,
                         beforeSending: () -> Void = {}) {
        iopub.status("busy", parent: request)
        if let (type, content) = reply() {
            beforeSending()
            let message = JupyterMessage(type: type, session: session, content: content, parent: request)
            do { try socket.send(try message.frames(signedBy: signer)) } catch { log("cannot reply to \(request.type): \(error)") }
        }
        iopub.status("idle", parent: request)
    }

    /// The requests already waiting on `socket` (forged ones are logged and dropped).
    private func waitingRequests(_ socket: ZMQSocket) -> [JupyterMessage] {
        var waiting: [JupyterMessage] = []
        while !ZMQSocket.poll([socket], milliseconds: 0).isEmpty, let frames = try? socket.receive() {
            do { waiting.append(try JupyterMessage.decode(frames, signer: signer)) } catch { log("ignored \(error)") }
        }
        return waiting
    }

    private func log(_ text: String) {
        FileHandle.standardError.write(Data("sdshell kernel: \(text)\n".utf8))
    }

    // MARK: requests

    typealias Reply = (type: String, content: [String: Any])

    private func handleControl(_ request: JupyterMessage) -> Reply? {
        switch request.type {
        case "interrupt_request":
            interrupts.request()
            return ("interrupt_reply", ["status": "ok"])
        case "shutdown_request", "kernel_info_request":
            return handleCommon(request)
        default:
            log("control message \(request.type.escapingControlCharacters) not handled")
            return nil
        }
    }

    private func handleShell(_ request: JupyterMessage) -> Reply? {
        switch request.type {
        case "execute_request": return execute(request)
        case "complete_request": return complete(request.content)
        case "is_complete_request": return isComplete(request.content)
        case "inspect_request": return ("inspect_reply", ["status": "ok", "found": false, "data": [String: Any](), "metadata": [String: Any]()])
        case "history_request": return ("history_reply", ["status": "ok", "history": [Any]()])
        case "comm_info_request": return ("comm_info_reply", ["status": "ok", "comms": [String: Any]()])
        case "shutdown_request", "kernel_info_request": return handleCommon(request)
        default:
            log("shell message \(request.type.escapingControlCharacters) not handled")
            return nil
        }
    }

    private func handleCommon(_ request: JupyterMessage) -> Reply? {
        if request.type == "kernel_info_request" { return ("kernel_info_reply", Self.kernelInfo) }
        // shutdown: a running cell stops at its next check, both loops end, the process exits.
        shutdown.store(true, ordering: .releasing)
        interrupts.request()
        return ("shutdown_reply", ["status": "ok", "restart": request.content["restart"] as? Bool ?? false])
    }

    static var kernelInfo: [String: Any] {
        [
            "status": "ok", "protocol_version": JupyterMessage.protocolVersion,
            "implementation": "sdshell", "implementation_version": SDShellVersion.string,
            "language_info": ["name": "sdscript", "version": SDShellVersion.string, "mimetype": "text/x-sdscript",
                              "file_extension": ".sdscript"],
            "banner": "sdshell \(SDShellVersion.string): a Stable Diffusion shell. `help` lists commands.",
            "help_links": [Any](), "debugger": false,
        ]
    }

    /// Runs a cell: its statements in order, stopping at the first error or an interrupt.
    private func execute(_ request: JupyterMessage) -> Reply {
        let code = request.content["code"] as? String ?? ""
        let silent = request.content["silent"] as? Bool ?? false
        let storeHistory = request.content["store_history"] as? Bool ?? !silent
        if storeHistory { executionCount += 1 }
        let count = executionCount
        if !silent { iopub.publish("execute_input", ["code": code, "execution_count": count], parent: request) }
        host.parent = request
        host.silent = silent
        defer {
            host.parent = nil
            host.silent = false
        }
        interrupts.clear()
        var failure: (name: String, value: String)?
        do {
            for statement in try Parser.parse(code, file: "<cell \(count)>") {
                try interpreter.execute(statement)
                if interrupts.requested() { throw Interrupted(position: statement.position) }
            }
        } catch is QuitRequested {
            failure = ("QuitRequested", "`quit` ends a script or the prompt; a notebook's kernel is shut down from the notebook")
        } catch let e as Interrupted {
            failure = ("Interrupted", e.description)
        } catch let e as ScriptError {
            failure = ("ScriptError", e.description)
        } catch {
            failure = ("Error", "\(error)")
        }
        interrupts.clear()
        guard let failure else {
            return ("execute_reply", ["status": "ok", "execution_count": count, "user_expressions": [String: Any](), "payload": [Any]()])
        }
        abortQueuedCells = request.content["stop_on_error"] as? Bool ?? true
        let error: [String: Any] = ["ename": failure.name, "evalue": failure.value.escapingControlCharacters,
                                    "traceback": [failure.value.escapingControlCharacters]]
        if !silent { iopub.publish("error", error, parent: request) }
        return ("execute_reply", error.merging(["status": "error", "execution_count": count]) { $1 })
    }

    /// Completion at `cursor_pos` (in Unicode code points, as the protocol counts) from the
    /// shell's completion engine, on the cursor's line.
    private func complete(_ content: [String: Any]) -> Reply {
        let code = content["code"] as? String ?? ""
        let scalars = Array(code.unicodeScalars)
        let cursor = min(max(content["cursor_pos"] as? Int ?? scalars.count, 0), scalars.count)
        var line = String(String.UnicodeScalarView(scalars[..<cursor]))
        if let newline = line.lastIndex(of: "\n") { line = String(line[line.index(after: newline)...]) }
        let (replacing, candidates) = interpreter.completions(line)
        let replaced = line.suffix(replacing).unicodeScalars.count
        return ("complete_reply", ["status": "ok", "matches": candidates, "cursor_start": cursor - replaced,
                                   "cursor_end": cursor, "metadata": [String: Any]()])
    }

    /// Whether a cell is whole: an open bracket or `"""` string is incomplete, a syntax error invalid.
    private func isComplete(_ content: [String: Any]) -> Reply {
        let code = content["code"] as? String ?? ""
        do {
            _ = try Parser.parse(code, file: "<cell>")
            return ("is_complete_reply", ["status": "complete"])
        } catch let e as ScriptError where e.incomplete {
            return ("is_complete_reply", ["status": "incomplete", "indent": ""])
        } catch {
            return ("is_complete_reply", ["status": "invalid"])
        }
    }
}

