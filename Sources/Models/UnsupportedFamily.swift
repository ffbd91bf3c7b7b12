/// Families of diffusion checkpoints sdshell recognises but does not run, told by their tensor
/// names, so that loading one says what it is rather than "unknown layout".
enum UnsupportedFamily {
    /// (marker found in a key, the family it marks); the first marker present wins.
    static let markers: [(marker: String, family: String)] = [
        ("joint_blocks.", "Stable Diffusion 3 (an MMDiT)"),
        ("double_blocks.", "Flux"),
        ("single_transformer_blocks.", "Flux (a diffusers transformer)"),
        ("transformer_blocks.0.attn.add_q_proj", "Stable Diffusion 3 (a diffusers transformer)"),
        ("down_blocks.0.0.channelwise", "Stable Cascade"),
        ("model.diffusion_model.adaLN_modulation", "a diffusion transformer (DiT)"),
    ]

    /// The family of a file whose keys carry one of the markers, else nil.
    static func detect<S: Sequence>(_ keys: S) -> String? where S.Element == String {
        var found: Int?
        for k in keys {
            for (i, m) in markers.enumerated() where found.map({ i < $0 }) ?? true && k.contains(m.marker) { found = i }
            if found == 0 { break }
        }
        return found.map { markers[$0].family }
    }
}
