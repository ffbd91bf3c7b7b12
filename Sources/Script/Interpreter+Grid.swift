import Diffusion
import Foundation
import Imaging
import Formats

/// `grid`: options given lists are axes (X columns, Y rows, Z one grid per value), and so are
/// numeric options given A1111's X/Y/Z range text (`steps="10-30 (+10)"`, `AxisRange`); `sr=[...]`
/// is A1111's Prompt S/R. Cells are generated one image each with explicit seeds, saved
/// individually, and composed into a labelled grid PNG whose `sdscript` text chunk holds the
/// explicit grid statement (so `replay GRID.png` remakes it) next to the first cell's infotext.
extension Interpreter {
    struct GridAxis {
        let name: String
        var values: [Value]
    }

    /// A cell's label on an axis: A1111's axis label (from the parameter table) and the value.
    static func label(_ axis: GridAxis, _ value: Value) -> String {
        axis.name == "sr" ? value.description : "\(Settings.definition(axis.name)?.axisLabel ?? axis.name): \(value.description)"
    }

    func grid(_ call: CommandCall) throws {
        let prompt = try call.string(at: 0, "a prompt")
        try call.atMost(1)
        var axes: [GridAxis] = []
        var fixed: [(name: String, value: (Value, SourcePosition))] = []
        for option in call.options {
            let (value, position) = option.value
            if option.name == "sr" {
                guard case let .list(items) = value, !items.isEmpty,
                      items.allSatisfy({ if case .string = $0 { return true }; return false }) else {
                    throw ScriptError(position, "sr needs a list of strings: the text to find, then its replacements")
                }
                guard prompt.contains(items[0].description) else {
                    throw ScriptError(position, "Prompt S/R: \(items[0].literal) does not occur in the prompt")
                }
                axes.append(GridAxis(name: "sr", values: items))
            } else if case let .string(text) = value, let row = Settings.definition(option.name), row.kind == .integer || row.kind == .real {
                // A1111's X/Y/Z text for a numeric axis: "1-5", "1-5 (+2)", "1-10 [5]", "5, 7.5, 9".
                let expanded: [Value]
                do { expanded = try AxisRange.values(text, integer: row.kind == .integer) } catch { throw ScriptError(position, "\(option.name): \(error.message)") }
                axes.append(GridAxis(name: option.name, values: try expanded.map { try checked(option.name, $0, at: position) }))
            } else if case let .list(items) = value, option.name != "embeddings_dir" {
                guard !items.isEmpty else { throw ScriptError(position, "the axis \(option.name) has no values") }
                axes.append(GridAxis(name: option.name, values: try items.map { try checked(option.name, $0, at: position) }))
            } else {
                fixed.append(option)
            }
        }
        guard !axes.isEmpty else { throw ScriptError(call.position, "`grid` needs at least one option given a list of values (an axis), e.g. seed=[1, 2, 3]") }
        guard axes.count <= 3 else { throw ScriptError(call.optionPosition(axes[3].name), "a grid has at most three axes (X, Y, Z); \(axes[3].name) would be a fourth") }
        var values = try resolvedSettings(fixed)
        values["batch"] = .integer(1); values["count"] = .integer(1)
        try fixSeeds(&values)
        // Seeds on an axis are explicit too.
        for i in axes.indices where axes[i].name == "seed" || axes[i].name == "subseed" {
            axes[i].values = axes[i].values.map { $0 == .integer(-1) ? .integer(GenerationSettings.randomSeed()) : $0 }
        }
        let x = axes[0], y = axes.count > 1 ? axes[1] : nil, z = axes.count > 2 ? axes[2] : nil
        let zValues: [Value?] = z?.values.map { $0 } ?? [nil]
        let yValues: [Value?] = y?.values.map { $0 } ?? [nil]
        let total = zValues.count * yValues.count * x.values.count
        let font = try GridFont()
        let outdir = values["outdir"]?.description ?? "outputs"
        let statement = Self.explicitStatement("grid", prompt: prompt, values, leading: axes.map { ($0.name, .list($0.values)) })
        var outputs: [(path: String, digest: String)] = []
        var made = 0
        // The cells saved so far: if Ctrl-C stops the grid, each is journalled as the `generate`
        // it was, so the journal still names every image kept (a finished grid is one entry).
        var madeCells: [(prompt: String, values: [String: Value], path: String, digest: String)] = []
        do {
        for zValue in zValues {
            var cells: [(rgb: [UInt8], width: Int, height: Int)] = [], first: GeneratedImage?
            for yValue in yValues {
                for xValue in x.values {
                    var cellValues = values, cellPrompt = prompt
                    for (axis, value) in [(x, xValue), (y, yValue), (z, zValue)] {
                        guard let axis, let value else { continue }
                        if axis.name == "sr" {
                            cellPrompt = cellPrompt.replacingOccurrences(of: axis.values[0].description, with: value.description)
                        } else {
                            cellValues[axis.name] = value
                        }
                    }
                    made += 1
                    let (image, cellPath) = try makeImages(prompt: cellPrompt, cellValues, at: call.position, label: "cell \(made) of \(total)")[0]
                    madeCells.append((cellPrompt, cellValues, cellPath, ImageDigest.of(rgb: image.rgb, width: image.width, height: image.height)))
                    if first == nil { first = image }
                    cells.append((image.rgb, image.width, image.height))
                }
            }
            // A size axis makes cells of different sizes: laid out as A1111 does.
            let uniform = try GridImage.uniformCells(cells)
            let grid = try GridImage.compose(cells: uniform.cells, cellWidth: uniform.width, cellHeight: uniform.height, columns: x.values.count,
                                             rows: yValues.count, columnLabels: x.values.map { Self.label(x, $0) },
                                             rowLabels: y.map { axis in axis.values.map { Self.label(axis, $0) } } ?? [], font: font)
            // Every axis has a value (checked above), so the grid has a first cell.
            guard let first else { throw ScriptError(call.position, "internal error: a grid without cells") }
            var text = [("parameters", first.infotext.encoded), ("sdscript", statement)]
            if let z, let zValue { text.append(("sdscript-grid-z", Self.label(z, zValue))) }
            let path = try OutputFolder(root: outdir, kind: "txt2img-grids").save(rgb: grid.rgb, width: grid.width, height: grid.height,
                                                                                  seed: first.seed, text: text)
            host.write("\(path)  grid \(x.values.count)x\(yValues.count)" + (z.flatMap { z in zValue.map { " (\(Self.label(z, $0)))" } } ?? ""))
            outputs.append((path, ImageDigest.of(rgb: grid.rgb, width: grid.width, height: grid.height)))
            if values["inline"] == .boolean(true) { host.showInline(path: path) }
        }
        } catch let stop as Interrupted {
            for cell in madeCells {
                try journal.record(Self.explicitStatement("generate", prompt: cell.prompt, cell.values),
                                   comments: ["a cell of an interrupted grid"], outputs: [(cell.path, cell.digest)], outdir: outdir)
                produced.append((cell.path, cell.digest))
            }
            throw stop
        }
        produced += outputs
        variables["last_images"] = .list(outputs.map { .string($0.path) })
        try journal.record(statement, outputs: outputs, outdir: outdir)
    }
}
