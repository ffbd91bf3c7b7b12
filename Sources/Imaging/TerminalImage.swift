import Foundation

/// Pictures drawn in a terminal, as the escape sequences of its image protocol:
/// - kitty's graphics protocol (kitty, WezTerm, Ghostty, Konsole): the PNG file, base64, in
///   chunks of 4096 (`ESC _G a=T,f=100,m=1;... ESC \`);
/// - iTerm2's inline images (iTerm2, WezTerm, VS Code): `ESC ] 1337 ; File=inline=1;size=N:BASE64 BEL`;
/// - sixel (xterm, foot, mlterm, Windows Terminal): the pixels quantised to a 6x6x6 colour cube
///   (each channel to the nearest of 0, 51, ..., 255: at most 25 levels off), six rows a band,
///   each colour's run-length-encoded columns.
public enum TerminalImage {
    public enum Kind: String, Sendable, CaseIterable { case kitty, iterm2, sixel }

    /// kitty: the PNG bytes, shown `columns` cells wide when given (0: the picture's own size).
    public static func kitty(png: Data, columns: Int = 0) -> String {
        let payload = png.base64EncodedString()
        var out = "", start = payload.startIndex
        var first = true
        repeat {
            let end = payload.index(start, offsetBy: 4096, limitedBy: payload.endIndex) ?? payload.endIndex
            let more = end < payload.endIndex ? 1 : 0
            let keys = first ? "a=T,f=100" + (columns > 0 ? ",c=\(columns)" : "") + ",m=\(more)" : "m=\(more)"
            out += "\u{1b}_G" + keys + ";" + payload[start..<end] + "\u{1b}\\"
            start = end
            first = false
        } while start < payload.endIndex
        return out
    }

    /// iTerm2: the PNG file inline, `columns` cells wide when given.
    public static func iterm2(png: Data, columns: Int = 0) -> String {
        "\u{1b}]1337;File=inline=1;size=\(png.count)" + (columns > 0 ? ";width=\(columns)" : "") + ":" + png.base64EncodedString() + "\u{07}"
    }

    /// The 6x6x6 cube level (0...5) nearest to an 8-bit value.
    static func level(_ v: UInt8) -> Int { (Int(v) * 5 + 127) / 255 }

    /// The colour a pixel becomes in a sixel picture.
    public static func quantised(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> (UInt8, UInt8, UInt8) {
        (UInt8(level(r) * 51), UInt8(level(g) * 51), UInt8(level(b) * 51))
    }

    /// sixel: 8-bit RGB (rows top to bottom) as a DCS sixel sequence.
    public static func sixel(rgb: [UInt8], width: Int, height: Int) -> String {
        precondition(rgb.count == width * height * 3)
        var index = [Int](repeating: 0, count: width * height)
        var used = Set<Int>()
        for p in 0..<(width * height) {
            let c = level(rgb[p * 3]) * 36 + level(rgb[p * 3 + 1]) * 6 + level(rgb[p * 3 + 2])
            index[p] = c
            used.insert(c)
        }
        var out = "\u{1b}Pq\"1;1;\(width);\(height)"
        for c in used.sorted() {
            // Palette entries in percent (0...100) of each channel.
            out += "#\(c);2;\(c / 36 * 20);\(c / 6 % 6 * 20);\(c % 6 * 20)"
        }
        for top in stride(from: 0, to: height, by: 6) {
            let rows = min(6, height - top)
            var colours = Set<Int>()
            for y in top..<(top + rows) { for x in 0..<width { colours.insert(index[y * width + x]) } }
            for (n, c) in colours.sorted().enumerated() {
                if n > 0 { out += "$" }
                out += "#\(c)"
                var run = 0, last: Character = "?"
                func flush() {
                    guard run > 0 else { return }
                    out += run > 3 ? "!\(run)\(last)" : String(repeating: last, count: run)
                }
                for x in 0..<width {
                    var bits = 0
                    for dy in 0..<rows where index[(top + dy) * width + x] == c { bits |= 1 << dy }
                    let ch = Character(UnicodeScalar(63 + bits)!)
                    if ch == last { run += 1 } else { flush(); last = ch; run = 1 }
                }
                flush()
            }
            out += "-"
        }
        return out + "\u{1b}\\"
    }
}

extension TerminalImage {
    /// The protocol a terminal speaks, from its environment: kitty's (kitty, Ghostty, Konsole,
    /// WezTerm), iTerm2's (iTerm2, VS Code), sixel (foot, mlterm, contour, Windows Terminal,
    /// xterm started with sixel); nil for others. Inside screen, nil; inside tmux, nil unless tmux
    /// passes images through (`tmuxPassthrough`, its `allow-passthrough` option), when the outer
    /// terminal is named by what the session inherited from it (`KITTY_WINDOW_ID`, `LC_TERMINAL`, ...).
    public static func detect(environment env: [String: String], tmuxPassthrough: Bool = false) -> Kind? {
        if env["STY"] != nil || env["TMUX"] != nil && !tmuxPassthrough { return nil }
        let term = env["TERM"] ?? "", program = env["TERM_PROGRAM"] ?? ""
        if env["KITTY_WINDOW_ID"] != nil || term.contains("kitty") || term.contains("ghostty") || program == "ghostty"
            || env["KONSOLE_VERSION"] != nil || program == "WezTerm" || env["WEZTERM_PANE"] != nil { return .kitty }
        if program == "iTerm.app" || env["LC_TERMINAL"] == "iTerm2" || program == "vscode" { return .iterm2 }
        if term.hasPrefix("foot") || term.contains("mlterm") || term.contains("contour") || term.contains("sixel")
            || env["WT_SESSION"] != nil { return .sixel }
        return nil
    }
}

extension TerminalImage {
    /// What `inline="auto"` asks a terminal its environment does not name: kitty's graphics query
    /// (a 1x1 picture with `a=q`, which a kitty-protocol terminal answers `OK` and does not draw)
    /// followed by the primary device-attributes request (DA1), which every terminal answers;
    /// terminals answer in order, so DA1's reply ends the wait.
    public static let capabilityQuery = "\u{1b}_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\u{1b}\\\u{1b}[c"

    /// Whether `reply` holds DA1's whole answer (`ESC [ ? … c`).
    public static func replyIsComplete(_ reply: [UInt8]) -> Bool { deviceAttributes(reply) != nil }

    /// The protocol a terminal's answer to `capabilityQuery` shows: kitty's when it answered the
    /// graphics query OK, sixel when DA1 lists attribute 4, else nil.
    public static func kind(fromReply reply: [UInt8]) -> Kind? {
        let text = String(decoding: reply, as: UTF8.self)
        if text.contains("\u{1b}_Gi=31;OK") { return .kitty }
        if let attributes = deviceAttributes(reply), attributes.contains(4) { return .sixel }
        return nil
    }

    /// DA1's parameters (`ESC [ ? 62 ; 4 ; 22 c` gives [62, 4, 22]), or nil before its end.
    static func deviceAttributes(_ reply: [UInt8]) -> [Int]? {
        let text = String(decoding: reply, as: UTF8.self)
        guard let start = text.range(of: "\u{1b}[?"), let end = text[start.upperBound...].firstIndex(of: "c") else { return nil }
        let body = text[start.upperBound..<end]
        guard body.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ";") }) else { return nil }
        return body.split(separator: ";").compactMap { Int($0) }
    }
}

extension TerminalImage {
    /// `sequence` wrapped for tmux's passthrough (tmux 3.3+ with `allow-passthrough` on): each
    /// escape sequence in it (up to its string terminator) inside `ESC Ptmux; … ESC \`, its ESCs
    /// doubled, so tmux hands it to the outer terminal. One wrapper per sequence keeps each under
    /// tmux's limit on a passthrough's length (kitty's chunks are 4 KiB).
    public static func tmuxPassthrough(_ sequence: String) -> String {
        var out = "", rest = Substring(sequence)
        while !rest.isEmpty {
            let end = rest.range(of: "\u{1b}\\")?.upperBound ?? rest.endIndex
            out += "\u{1b}Ptmux;" + rest[..<end].replacingOccurrences(of: "\u{1b}", with: "\u{1b}\u{1b}") + "\u{1b}\\"
            rest = rest[end...]
        }
        return out
    }
}
