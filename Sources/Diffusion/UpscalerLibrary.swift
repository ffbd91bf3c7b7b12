import Foundation
import Formats
import Models

/// The upscalers a generation can name: A1111's latent upscalers, its built-in pixel ones, and
/// ESRGAN-family model files (`.pth`, `.pt`, `.safetensors`) in the upscaler folders, named by
/// file stem as A1111 names them. Folders are listed afresh at each lookup, so a model dropped in
/// is usable without a restart; a model file is loaded (through the restricted unpickler: nothing
/// in it is executed) when first used and kept while its size and modification time stay the same.
public final class UpscalerLibrary: @unchecked Sendable {
    public let directories: [String]
    private let lock = NSLock()
    private var loaded: [String: (size: Int, mtime: Date, network: RRDBNet)] = [:]

    public init(directories: [String]) { self.directories = directories }

    static let extensions: Set<String> = ["pth", "pt", "safetensors"]

    /// The model files by name (the first folder wins), sorted by name.
    public func modelFiles() -> [(name: String, path: String)] {
        Folder.filesByStem(in: directories, extensions: Self.extensions, recursive: false)
    }

    /// Every name an upscaler setting accepts, in A1111's order: latent, built-in, model files.
    public func names() -> [String] {
        HiresFix.latentUpscalers.map(\.name) + PixelUpscaler.builtInNames + modelFiles().map(\.name)
    }

    /// The pixel upscaler named `name` (nil for a latent upscaler's name).
    public func pixelUpscaler(_ name: String, tiling: UpscalerTiling) throws -> PixelUpscaler? {
        if HiresFix.latentUpscalers.contains(where: { $0.name == name }) { return nil }
        switch name {
        case "None": return PixelUpscaler.none
        case "Lanczos": return .lanczos
        case "Nearest": return .nearest
        default: break
        }
        guard let file = modelFiles().first(where: { $0.name == name }) else {
            let folders = directories.isEmpty ? "" : " (model files from \(directories.joined(separator: ", ")))"
            throw GenerationError.invalid("unknown upscaler \"\(name.escapingControlCharacters)\"; known\(folders): \(names().joined(separator: ", "))")
        }
        return .model(name: name, network: try network(file.path), tiling: tiling)
    }

    /// The model file's network, loaded once per size and modification time.
    func network(_ path: String) throws -> RRDBNet {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
        let mtime = attributes?[.modificationDate] as? Date ?? .distantPast
        lock.lock(); defer { lock.unlock() }
        if let cached = loaded[path], cached.size == size, cached.mtime == mtime { return cached.network }
        let network = try RRDBNet(try ModelFile.open(path))
        loaded[path] = (size, mtime, network)
        return network
    }
}
