/// Writes an uncompressed ZIP archive the way PyTorch's writer does: stored records whose data
/// start on 64-byte boundaries (padding in an extra field), CRC-32 checked by readers.
struct ZipWriter {
    private(set) var bytes: [UInt8] = []
    private var central: [UInt8] = []
    private var count = 0

    private static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ data: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    private static func le16(_ v: Int, into a: inout [UInt8]) { a.append(UInt8(v & 0xFF)); a.append(UInt8((v >> 8) & 0xFF)) }
    private static func le32(_ v: UInt32, into a: inout [UInt8]) { for i in 0..<4 { a.append(UInt8((v >> (8 * UInt32(i))) & 0xFF)) } }

    /// Appends a stored record. Archives are small (embeddings, optimizer state): no ZIP64.
    mutating func add(_ name: String, _ data: UnsafeRawBufferPointer) {
        let nameBytes = Array(name.utf8)
        let crc = Self.crc32(data)
        let headerOffset = bytes.count
        // Pad with an extra field (id 0x4246 "FB", as PyTorch) so the data starts 64-aligned.
        let unpadded = headerOffset + 30 + nameBytes.count + 4
        let pad = (64 - unpadded % 64) % 64
        var local: [UInt8] = []
        Self.le32(0x0403_4b50, into: &local); Self.le16(20, into: &local); Self.le16(0, into: &local); Self.le16(0, into: &local)
        Self.le16(0, into: &local); Self.le16(0x21, into: &local)                       // time, date (1980-01-01)
        Self.le32(crc, into: &local); Self.le32(UInt32(data.count), into: &local); Self.le32(UInt32(data.count), into: &local)
        Self.le16(nameBytes.count, into: &local); Self.le16(4 + pad, into: &local)
        local += nameBytes
        Self.le16(0x4246, into: &local); Self.le16(pad, into: &local); local += [UInt8](repeating: 0x5A, count: pad)
        bytes += local
        bytes.append(contentsOf: data)
        var c: [UInt8] = []
        Self.le32(0x0201_4b50, into: &c); Self.le16(20, into: &c); Self.le16(20, into: &c); Self.le16(0, into: &c); Self.le16(0, into: &c)
        Self.le16(0, into: &c); Self.le16(0x21, into: &c)
        Self.le32(crc, into: &c); Self.le32(UInt32(data.count), into: &c); Self.le32(UInt32(data.count), into: &c)
        Self.le16(nameBytes.count, into: &c); Self.le16(0, into: &c); Self.le16(0, into: &c); Self.le16(0, into: &c)
        Self.le16(0, into: &c); Self.le32(0, into: &c); Self.le32(UInt32(headerOffset), into: &c)
        c += nameBytes
        central += c
        count += 1
    }

    mutating func add(_ name: String, _ data: [UInt8]) { data.withUnsafeBytes { add(name, $0) } }

    /// The finished archive.
    mutating func finish() -> [UInt8] {
        let dirOffset = bytes.count
        bytes += central
        Self.le32(0x0605_4b50, into: &bytes); Self.le16(0, into: &bytes); Self.le16(0, into: &bytes)
        Self.le16(count, into: &bytes); Self.le16(count, into: &bytes)
        Self.le32(UInt32(central.count), into: &bytes); Self.le32(UInt32(dirOffset), into: &bytes); Self.le16(0, into: &bytes)
        return bytes
    }
}
