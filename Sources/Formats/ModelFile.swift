import Foundation

/// Any file of weights sdshell reads: safetensors, a torch.save archive (zip or legacy), or a
/// diffusers folder. Exposes its tensors by dotted name and its scalar metadata as strings.
public struct ModelFile: Sendable {
    public enum Format: String, Sendable { case safetensors, torchZip = "torch-zip", torchLegacy = "torch-legacy", diffusersFolder = "diffusers-folder" }

    public let path: String
    public let format: Format
    /// Tensors by dotted name (nested dicts joined with "."; diffusers folders prefixed by subfolder).
    public let tensors: [String: StoredTensor]
    /// Non-tensor leaves (strings, numbers, booleans) by dotted name, and safetensors metadata.
    public let metadata: [String: String]

    /// Tensors from elsewhere (a part of another file, such as a LoRA's bundled embedding), as a file of their own.
    public init(path: String, tensors: [String: StoredTensor], metadata: [String: String] = [:]) {
        self.init(path: path, format: .safetensors, tensors: tensors, metadata: metadata)
    }

    init(path: String, format: Format, tensors: [String: StoredTensor], metadata: [String: String]) {
        self.path = path; self.format = format; self.tensors = tensors; self.metadata = metadata
    }

    /// Names in a stable (sorted) order.
    public var names: [String] { tensors.keys.sorted() }

    /// Opens `path`, choosing the reader from the content (not the extension).
    public static func open(_ path: String) throws -> ModelFile {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FormatError.io(file: path, reason: "no such file")
        }
        if isDir.boolValue { return try openDiffusersFolder(path) }
        let file = try MappedFile(path: path)
        if SafeTensorsFile.looksLike(file) {
            let st = try SafeTensorsFile(path: path)
            return ModelFile(path: path, format: .safetensors, tensors: st.tensors, metadata: st.metadata)
        }
        let firstByte = file.size > 0 ? try file.bytes(0, 1)[0] : 0
        if ZipArchive.isZip(file) || firstByte == 0x80 {
            let archive = try TorchArchive(path: path)
            var tensors: [String: StoredTensor] = [:], metadata: [String: String] = [:]
            var visits = 0
            try flatten(archive.root, prefix: "", archive: archive, tensors: &tensors, metadata: &metadata, depth: 0, visits: &visits)
            return ModelFile(path: path, format: archive.layout == .zip ? .torchZip : .torchLegacy, tensors: tensors, metadata: metadata)
        }
        throw FormatError.corrupt(file: path, reason: "not a safetensors, torch.save or pickle file (unknown magic bytes)")
    }

    /// A diffusers pipeline folder: each component folder's weights, prefixed "component/".
    static func openDiffusersFolder(_ path: String) throws -> ModelFile {
        let fm = FileManager.default
        var tensors: [String: StoredTensor] = [:], metadata: [String: String] = [:]
        let weightNames = ["diffusion_pytorch_model.safetensors", "model.safetensors", "diffusion_pytorch_model.bin", "pytorch_model.bin"]
        if let scheduler = fm.contents(atPath: path + "/scheduler/scheduler_config.json") {
            metadata["scheduler/config.json"] = String(decoding: scheduler, as: UTF8.self)
        }
        for component in try fm.contentsOfDirectory(atPath: path).sorted() {
            let dir = path + "/" + component
            guard let weights = weightNames.first(where: { fm.fileExists(atPath: dir + "/" + $0) }) else { continue }
            let part = try open(dir + "/" + weights)
            for (k, v) in part.tensors { tensors[component + "/" + k] = v }
            if let config = fm.contents(atPath: dir + "/config.json") { metadata[component + "/config.json"] = String(decoding: config, as: UTF8.self) }
        }
        guard !tensors.isEmpty else {
            throw FormatError.unsupported(file: path, reason: "a folder without diffusers weights (expected e.g. unet/diffusion_pytorch_model.safetensors)")
        }
        return ModelFile(path: path, format: .diffusersFolder, tensors: tensors, metadata: metadata)
    }

    /// Most objects one file may name. A pickle can refer to one container many times (DUP, memo
    /// gets), so a few hundred bytes can describe a tree with exponentially many paths; real checkpoints have a
    /// few thousand objects (SD 1.5 with EMA and optimizer state: under 20,000).
    static let maximumObjects = 200_000

    private static func flatten(_ v: PickleValue, prefix: String, archive: TorchArchive, tensors: inout [String: StoredTensor],
                                metadata: inout [String: String], depth: Int, visits: inout Int) throws {
        guard depth < 64 else { throw FormatError.corrupt(file: archive.path, reason: "objects nested deeper than 64 levels") }
        visits += 1
        guard visits <= maximumObjects else {
            throw FormatError.corrupt(file: archive.path, reason: "more than \(maximumObjects) objects (the same containers referenced over and over?)")
        }
        func child(_ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }
        switch v {
        case let .tensor(record): tensors[prefix] = try archive.tensor(record, name: prefix)
        case let .dict(d):
            for (k, value) in d.items {
                guard let key = k.keyString else { continue }
                try flatten(value, prefix: child(key), archive: archive, tensors: &tensors, metadata: &metadata, depth: depth + 1, visits: &visits)
            }
        case let .list(l):
            for (i, value) in l.items.enumerated() {
                try flatten(value, prefix: child(String(i)), archive: archive, tensors: &tensors, metadata: &metadata, depth: depth + 1, visits: &visits)
            }
        case let .tuple(items):
            if items.allSatisfy({ if case .int = $0 { return true }; return false }) {
                metadata[prefix] = "(" + items.map(\.description).joined(separator: ", ") + ")"
            } else {
                for (i, value) in items.enumerated() {
                    try flatten(value, prefix: child(String(i)), archive: archive, tensors: &tensors, metadata: &metadata, depth: depth + 1, visits: &visits)
                }
            }
        case let .object(o):
            // nn.Module-like objects (ParameterDict): their parameters live in state["_parameters"].
            if case let .dict(state) = o.state, let params = state["_parameters"] {
                try flatten(params, prefix: prefix, archive: archive, tensors: &tensors, metadata: &metadata, depth: depth + 1, visits: &visits)
            } else if case .dict = o.state {
                try flatten(o.state, prefix: prefix, archive: archive, tensors: &tensors, metadata: &metadata, depth: depth + 1, visits: &visits)
            }
        case let .string(s): metadata[prefix] = s
        case .int, .float, .bool: metadata[prefix] = v.description
        case .none, .bytes, .global, .storage, .skipped: break
        }
    }
}
