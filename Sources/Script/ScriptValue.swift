import Diffusion
@_exported import enum Formats.NameSuggestion

/// sdscript's runtime values are the generation parameters' values (`Diffusion.Value`), so a
/// setting written in a script is checked and stored as the parameter table defines it.
public typealias Value = Diffusion.Value
