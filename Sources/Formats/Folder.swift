import Foundation

/// Creating folders with the system's reason when it cannot be done ("Permission denied", a file
/// in the way), rather than a Foundation error dump.
public enum Folder {
    /// Creates `path` and any missing parents; a folder already there is fine.
    public static func create(_ path: String) throws {
        guard let (component, reason) = make(path) else { return }
        throw FormatError.io(file: path, reason: "cannot create the folder: " + (component == path ? reason : "\(component): \(reason)"))
    }

    /// nil when `path` is a folder now; else the first path that failed and why.
    private static func make(_ path: String) -> (String, String)? {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            return isDirectory.boolValue ? nil : (path, "a file is in the way, not a folder")
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty, parent != path, let failure = make(parent) { return failure }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { return (path, String(cString: strerror(errno))) }
        return nil
    }

    /// The files with one of `extensions` (lower-case, no dot) in `directories`, by file stem
    /// (the first folder's wins; within a folder, the first path in name order), sorted by
    /// name; `recursive` includes subfolders. Missing folders are skipped.
    public static func filesByStem(in directories: [String], extensions: Set<String>, recursive: Bool) -> [(name: String, path: String)] {
        var out: [String: String] = [:]
        let fm = FileManager.default
        for dir in directories {
            var found: [String] = []
            if recursive {
                guard let walker = fm.enumerator(atPath: dir) else { continue }
                while let rel = walker.nextObject() as? String { found.append(rel) }
            } else {
                found = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
            }
            for rel in found.sorted() where extensions.contains((rel as NSString).pathExtension.lowercased()) {
                let name = ((rel as NSString).lastPathComponent as NSString).deletingPathExtension
                if out[name] == nil { out[name] = dir + "/" + rel }
            }
        }
        return out.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
