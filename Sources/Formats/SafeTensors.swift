import Engine
import Foundation

/// A safetensors file: an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then the data. The file is memory-mapped and tensors are read
/// lazily. Every header field is validated: ranges inside the data, byte counts matching dtype and
/// shape, no overlapping tensors.
public struct SafeTensorsFile: Sendable {
    public let path: String
    /// Tensors by name.
    public let tensors: [String: StoredTensor]
    /// The `__metadata__` strings.
    public let metadata: [String: String]

    /// Largest header accepted (the reference implementation's limit).
    static let maxHeader = 100_000_000
    /// Most tensors a file may name (SDXL checkpoints have about 2,500; every entry costs
    /// hundreds of bytes of parsed JSON objects, so the count is checked before parsing).
    public static let maximumTensors = 100_000
    /// Most JSON values (counted by separators) a header may hold: a tensor entry has about ten.
    static let maximumHeaderValues = 1_500_000

    public init(path: String) throws {
        let file = try MappedFile(path: path)
        self.path = path
        guard file.size >= 8 else { throw FormatError.corrupt(file: path, reason: "\(file.size) bytes is too short for a safetensors header") }
        let headerLength = try file.read(UInt64.self, at: 0)
        guard headerLength <= UInt64(Self.maxHeader), Int(headerLength) <= file.size - 8 else {
            throw FormatError.corrupt(file: path, reason: "header length \(headerLength) exceeds the file size \(file.size)")
        }
        let headerBytes = try file.bytes(8, Int(headerLength), "header")
        let (entries, values) = Self.countJSONMembers(headerBytes, stopAfter: Self.maximumHeaderValues)
        guard entries <= Self.maximumTensors + 1 else {   // + __metadata__
            throw FormatError.unsupported(file: path, reason: "the header names \(values > Self.maximumHeaderValues ? "at least " : "")\(entries) entries; at most \(Self.maximumTensors) tensors are read")
        }
        guard values <= Self.maximumHeaderValues else {
            throw FormatError.unsupported(file: path, reason: "the header holds more than \(Self.maximumHeaderValues) JSON values")
        }
        guard let json = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any] else {
            throw FormatError.corrupt(file: path, reason: "the header is not a JSON object")
        }
        let dataStart = 8 + Int(headerLength), dataSize = file.size - dataStart
        var tensors: [String: StoredTensor] = [:]
        var metadata: [String: String] = [:]
        var ranges: [(Int, Int, String)] = []
        for (name, value) in json {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw FormatError.corrupt(file: path, reason: "__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw FormatError.corrupt(file: path, reason: "metadata \(k) is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any], let dtypeName = entry["dtype"] as? String,
                  let shape = (entry["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let offsets = (entry["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  offsets.count == 2, shape.count == (entry["shape"] as? [Any])?.count else {
                throw FormatError.corrupt(file: path, reason: "tensor \(name) lacks dtype, shape or data_offsets")
            }
            guard let dtype = StoredDType(rawValue: dtypeName) else {
                throw FormatError.unsupported(file: path, reason: "tensor \(name) has dtype \(dtypeName)")
            }
            guard let count = StoredTensor.checkedCount(shape) else {
                throw FormatError.corrupt(file: path, reason: "tensor \(name) has an invalid shape \(shape)")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= dataSize else {
                throw FormatError.corrupt(file: path, reason: "tensor \(name) data_offsets [\(begin), \(end)] lie outside the \(dataSize) data bytes")
            }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, bytes == end - begin else {
                throw FormatError.corrupt(file: path, reason: "tensor \(name) is \(dtype.rawValue)\(shape) (\(overflow ? "overflow" : String(bytes)) bytes) but spans \(end - begin) bytes")
            }
            tensors[name] = StoredTensor(dtype: dtype, shape: shape, strides: StoredTensor.rowMajor(shape), elementOffset: 0,
                                         file: file, storageOffset: dataStart + begin, storageBytes: end - begin)
            if end > begin { ranges.append((begin, end, name)) }
        }
        guard tensors.count <= Self.maximumTensors else {
            throw FormatError.unsupported(file: path, reason: "the header names \(tensors.count) tensors; at most \(Self.maximumTensors) are read")
        }
        ranges.sort { $0.0 < $1.0 }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.0 < a.1 {
            throw FormatError.corrupt(file: path, reason: "tensors \(a.2) and \(b.2) overlap")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Counts, without parsing, the members of a JSON text's outermost object or array and all its
    /// values (separators at any depth, plus one per non-empty container), stopping once the
    /// values pass `stopAfter`. Only approximate for malformed JSON, which the parser then refuses.
    static func countJSONMembers(_ bytes: UnsafeRawBufferPointer, stopAfter: Int) -> (outer: Int, values: Int) {
        var depth = 0, outer = 0, values = 0
        var inString = false, escaped = false, pendingValue = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch b {
            case 0x20, 0x09, 0x0A, 0x0D: continue
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1; pendingValue = false; continue
            default: break
            }
            // The first member of a container counts once it starts; later ones at their commas.
            if pendingValue {
                values += 1
                if depth == 1 { outer += 1 }
                pendingValue = false
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1; pendingValue = true
            case UInt8(ascii: ","):
                values += 1
                if depth == 1 { outer += 1 }
            default: break
            }
            if values > stopAfter { break }
        }
        return (outer, values)
    }

    /// True when the file starts like a safetensors file: a length, then a JSON object.
    static func looksLike(_ file: MappedFile) -> Bool {
        guard file.size >= 9, let b = try? file.bytes(8, 1) else { return false }
        return b[0] == UInt8(ascii: "{")
    }

    /// Names in a stable (sorted) order.
    public var names: [String] { tensors.keys.sorted() }

    /// Writes tensors (by name) and metadata as a safetensors file, atomically. Tensors are written
    /// contiguous, in name order.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        let names = tensors.keys.sorted()
        let contiguous = try names.map { try tensors[$0]!.contiguous() }
        let entries = zip(names, contiguous).map { name, t in
            (name: name, dtype: t.dtype == .f32 ? StoredDType.F32 : (t.dtype == .f16 ? .F16 : .BF16), shape: t.shape)
        }
        try write(entries: entries, metadata: metadata, to: path) { i, w in
            let t = contiguous[i]
            try w.write(UnsafeRawBufferPointer(start: t.storage.raw + t.offset * t.dtype.size, count: t.count * t.dtype.size))
        }
    }

    /// Streams a safetensors file: the header from `entries`, then `body(i, writer)` writes entry i's
    /// bytes (exactly count x dtype size). For files larger than memory.
    public static func write(entries: [(name: String, dtype: StoredDType, shape: [Int])], metadata: [String: String] = [:],
                             to path: String, body: (Int, FileWriter) throws -> Void) throws {
        var header: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(JSONText.quote($0)):\(JSONText.quote(metadata[$0]!))" }
            header.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        var sizes: [Int] = []
        for e in entries {
            guard let count = StoredTensor.checkedCount(e.shape) else {
                throw FormatError.unsupported(file: path, reason: "tensor \(e.name) has shape \(e.shape), whose element count overflows")
            }
            let bytes = count * e.dtype.size
            header.append("\(JSONText.quote(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + bytes)]}")
            offset += bytes
            sizes.append(bytes)
        }
        var json = Array(("{" + header.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        try AtomicFile.write(to: path) { w in
            var length = UInt64(json.count).littleEndian
            try withUnsafeBytes(of: &length) { try w.write($0) }
            try w.write(json)
            for i in entries.indices {
                let start = w.offset
                try body(i, w)
                guard w.offset - start == sizes[i] else {
                    throw FormatError.io(file: path, reason: "tensor \(entries[i].name): wrote \(w.offset - start) bytes, expected \(sizes[i])")
                }
            }
        }
    }
}

/// JSON string quoting for hand-built headers.
enum JSONText {
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
