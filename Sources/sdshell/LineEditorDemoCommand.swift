import ArgumentParser

/// Hidden: a bare line-editor loop for developing and testing the prompt's editing (placeholder).
struct LineEditorDemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "line-editor-demo", shouldDisplay: false)
    func run() throws {}
}
