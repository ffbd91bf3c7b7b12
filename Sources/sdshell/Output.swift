import Foundation
import Formats

/// Everything sdshell prints goes through these two, with control characters made visible: the
/// text often comes from files (PNG parameters, safetensors metadata, embedding names, paths),
/// and a file must not be able to steer the terminal (retitle it, clear it, write the clipboard).

/// A line of normal output on standard output.
func say(_ line: String) {
    print(line.escapingControlCharacters)
    fflush(nil)
}

/// A message on standard error.
func complain(_ line: String) {
    FileHandle.standardError.write(Data((line.escapingControlCharacters + "\n").utf8))
}
