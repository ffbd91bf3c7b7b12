import Diffusion
import Foundation
import Imaging
import Formats
import Models

/// `grid`: options given lists are axes (X columns, Y rows, Z one grid per value), and so are
/// numeric options given A1111's X/Y/Z range text (`steps="10-30 (+10)"`, `AxisRange`); `sr=[...]`
/// is A1111's Prompt S/R, `order=[...]` its Prompt order (every permutation of the words given)
/// and `model=[...]` its Checkpoint name (each cell made with that checkpoint, the cells of one
/// checkpoint made together, the session's model back afterwards). Cells are generated one image each with explicit seeds, saved
/// individually, and composed into a labelled grid PNG whose `sdscript` text chunk holds the
/// explicit grid statement (so `replay GRID.png` remakes it) next to the first cell's infotext.
extension Interpreter {
    struct GridAxis {
        let name: String
        var values: [Value]
    }

    /// The most words a Prompt order axis permutes (5! = 120 cells).
    static let maximumOrderWords = 5

    /// A cell's label on an axis: A1111's axis label (from the parameter table) and the value;
    /// Prompt S/R and Prompt order show the value alone, Checkpoint name the file's name.
    static func label(_ axis: GridAxis, _ value: Value) -> String {
        switch axis.name {
        case "sr": return value.description
        case "order":
            guard case let .list(words) = value else { return value.description }
            return words.map(\.description).joined(separator: ", ")
        case "model": return "Checkpoint name: " + (value.description as NSString).lastPathComponent
        default: return "\(Settings.definition(axis.name)?.axisLabel ?? axis.name): \(value.description)"
        }
    }

    /// A1111's `apply_order`: the words, found in the prompt in the order they first occur, are
    /// put back in the order given (the text between them stays where it was).
    static func reordered(_ prompt: String, _ words: [String]) -> String {
        let byPosition = words.compactMap { w in prompt.range(of: w).map { (prompt.distance(from: prompt.startIndex, to: $0.lowerBound), w) } }
            .sorted { $0.0 < $1.0 }
        var rest = Substring(prompt), parts: [Substring] = []
        for (_, w) in byPosition {
            guard let r = rest.range(of: w) else { continue }
            parts.append(rest[..<r.lowerBound])
            rest = rest[r.upperBound...]
        }
        return zip(parts, words).map { String($0) + $1 }.joined() + rest
    }

    /// Every ordering of `items`, in itertools.permutations' order.
    static func permutations<T>(_ items: [T]) -> [[T]] {
        guard items.count > 1 else { return [items] }
        return items.indices.flatMap { i in
            permutations(Array(items[..<i] + items[(i + 1)...])).map { [items[i]] + $0 }
        }
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
            } else if option.name == "order" {
                guard case let .list(items) = value, (1...Self.maximumOrderWords).contains(items.count),
                      items.allSatisfy({ if case .string = $0 { return true }; return false }) else {
                    throw ScriptError(position, "order needs a list of 1 to \(Self.maximumOrderWords) strings: the words of the prompt to put in every order")
                }
                if let missing = items.first(where: { !prompt.contains($0.description) }) {
                    throw ScriptError(position, "Prompt order: \(missing.literal) does not occur in the prompt")
                }
                axes.append(GridAxis(name: "order", values: Self.permutations(items).map { .list($0) }))
            } else if option.name == "embedding_steps" {
                // The numbered copies a training kept (outdir/train/NAME/NAME-STEP.*), as a Prompt
                // S/R axis from NAME (its last save) over NAME-STEP, with their folder searched too.
                guard case let .string(name) = value, !name.isEmpty, prompt.contains(name) else {
                    throw ScriptError(position, "embedding_steps needs the name of a trained embedding that the prompt uses")
                }
                let folder = outdir + "/train/" + name
                let steps = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).compactMap { file -> Int? in
                    let stem = (file as NSString).deletingPathExtension
                    guard ["pt", "safetensors"].contains((file as NSString).pathExtension), stem.hasPrefix(name + "-") else { return nil }
                    return Int(stem.dropFirst(name.count + 1))
                }.sorted()
                guard !steps.isEmpty else {
                    throw ScriptError(position, "no numbered copies of \(Value.quote(name)) in \(folder) (train with save_every to keep them)")
                }
                axes.append(GridAxis(name: "sr", values: [.string(name)] + steps.map { .string("\(name)-\($0)") }))
                let directories = Self.directories(fixed.first { $0.name == "embeddings_dir" }?.value.0 ?? setting("embeddings_dir"))
                fixed.removeAll { $0.name == "embeddings_dir" }
                fixed.append((name: "embeddings_dir", value: (.list((directories + [folder]).map { .string($0) }), position)))
            } else if option.name == "model" {
                guard case let .list(items) = value, !items.isEmpty else {
                    throw ScriptError(position, "model on a grid needs a list of checkpoints (an axis), e.g. model=[\"a.safetensors\", \"b.safetensors\"]")
                }
                let paths = try items.map { item -> Value in
                    guard case let .string(name) = item, let path = modelPath(name) else {
                        let known = checkpoints().map { ($0 as NSString).lastPathComponent }
                        throw ScriptError(position, "Checkpoint name: no checkpoint \(item.literal) (not a file, and not in models_dir \"\(setting("models_dir")!)\")"
                                          + NameSuggestion.hint(item.description, in: known))
                    }
                    return .string(path)
                }
                axes.append(GridAxis(name: "model", values: paths))
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
        // A sharded run draws no seed: a seed axis gives the statement's own (any value would do, as the axis sets every cell's).
        if shardState != nil {
            for axis in axes where (axis.name == "seed" || axis.name == "subseed") && values[axis.name] == .integer(-1) { values[axis.name] = axis.values[0] }
        }
        try fixSeeds(&values, at: call.position)
        // Seeds on an axis are explicit too.
        for i in axes.indices where axes[i].name == "seed" || axes[i].name == "subseed" {
            if let shardState, axes[i].values.contains(.integer(-1)) { throw ScriptError(call.optionPosition(axes[i].name), Self.randomSeedInShard(shardState.shard)) }
            axes[i].values = axes[i].values.map { $0 == .integer(-1) ? .integer(GenerationSettings.randomSeed()) : $0 }
        }
        let x = axes[0], y = axes.count > 1 ? axes[1] : nil, z = axes.count > 2 ? axes[2] : nil
        let zValues: [Value?] = z?.values.map { $0 } ?? [nil]
        let yValues: [Value?] = y?.values.map { $0 } ?? [nil]
        let total = zValues.count * yValues.count * x.values.count
        let font = try GridFont()
        // The Checkpoint name axis: the cells of one checkpoint are made together (A1111 runs
        // its costly axes outermost), and the session's model is back when the grid ends.
        let modelAxis = axes.firstIndex { $0.name == "model" }
        let sessionModel = model
        defer { if modelAxis != nil, let sessionModel, model !== sessionModel { use(sessionModel) } }
        func useCheckpoint(_ path: String) throws {
            guard model?.path != path else { return }
            let loaded = use(try StableDiffusionModel(path: path, hashes: hashes, precision: sessionModel?.precision))
            host.write("loaded \(loaded.name) for the grid's Checkpoint name axis")
        }
        let outdir = values["outdir"]?.description ?? "outputs"
        // (A Prompt order axis is written as its words, in the order given: the first permutation.)
        let statement = Self.explicitStatement("grid", prompt: prompt, values,
                                                leading: axes.map { ($0.name, $0.name == "order" ? $0.values[0] : .list($0.values)) })
        var outputs: [(path: String, digest: String)] = []
        var made = 0
        // A sharded run makes its own cells and leaves the grid picture to `ShardMerge`.
        let gridNumber = shardState?.grids ?? 0
        shardState?.grids += 1
        // The cells saved so far: if Ctrl-C stops the grid, each is journalled as the `generate`
        // it was, so the journal still names every image kept (a finished grid is one entry).
        var madeCells: [(prompt: String, values: [String: Value], model: String?, path: String, digest: String)] = []
        do {
        for (zIndex, zValue) in zValues.enumerated() {
            // Cells in grid order (row by row), made with the checkpoint axis outermost.
            let positions = yValues.indices.flatMap { yi in x.values.indices.map { xi in (yi, xi) } }
            let order = modelAxis == 0 ? positions.sorted { ($0.1, $0.0) < ($1.1, $1.0) } : positions
            var slots = [(rgb: [UInt8], width: Int, height: Int)?](repeating: nil, count: positions.count), first: GeneratedImage?
            var slotFiles: [Int: (path: String, seed: Int64)] = [:]
            for (yi, xi) in order {
                var cellValues = values, cellPrompt = prompt, cellModel: String?
                for (axis, value) in [(x, x.values[xi] as Value?), (y, yValues[yi]), (z, zValue)] {
                    guard let axis, let value else { continue }
                    switch axis.name {
                    case "sr": cellPrompt = cellPrompt.replacingOccurrences(of: axis.values[0].description, with: value.description)
                    case "order":
                        if case let .list(words) = value { cellPrompt = Self.reordered(cellPrompt, words.map(\.description)) }
                    case "model": cellModel = value.description
                    default: cellValues[axis.name] = value
                    }
                }
                if let cellModel { try useCheckpoint(cellModel) }
                made += 1
                guard let (image, cellPath) = try makeImages(prompt: cellPrompt, cellValues, at: call.position, label: "cell \(made) of \(total)").first else {
                    continue   // another shard's cell
                }
                madeCells.append((cellPrompt, cellValues, cellModel, cellPath, ImageDigest.of(rgb: image.rgb, width: image.width, height: image.height)))
                if yi == 0 && xi == 0 { first = image }
                slots[yi * x.values.count + xi] = (image.rgb, image.width, image.height)
                slotFiles[yi * x.values.count + xi] = (cellPath, image.seed)
            }
            var layout = GridManifest(statement: statement, columns: x.values.count, rows: yValues.count,
                                      columnLabels: x.values.map { Self.label(x, $0) },
                                      rowLabels: y.map { axis in axis.values.map { Self.label(axis, $0) } } ?? [],
                                      zLabel: z.flatMap { z in zValue.map { Self.label(z, $0) } }, cells: [:])
            if shardState != nil {
                for (slot, cell) in slotFiles { layout.cells[String(slot)] = .init(path: String(cell.path.dropFirst(outdir.count + 1)), seed: cell.seed) }
                try writeGridManifest(layout, grid: gridNumber, z: zIndex, outdir: outdir)
                continue
            }
            // Every axis has a value (checked above), so the grid has a first cell.
            guard let first else { throw ScriptError(call.position, "internal error: a grid without cells") }
            let (path, digest) = try Self.saveGrid(cells: slots.compactMap { $0 }, layout, firstInfotext: first.infotext.encoded,
                                                   firstSeed: first.seed, font: font, outdir: outdir)
            host.write("\(path)  grid \(x.values.count)x\(yValues.count)" + (layout.zLabel.map { " (\($0))" } ?? ""))
            outputs.append((path, digest))
            if let mode = values["inline"]?.description, mode != "off" { host.showInline(path: path, mode: mode, columns: Self.inlineColumns(values)) }
        }
        } catch let stop as Interrupted {
            var journalledModel = sessionModel?.path
            for cell in madeCells {
                if let m = cell.model, m != journalledModel {
                    try journal.record("model \(Value.quote(m))", comments: ["the checkpoint of the cells below"], outputs: [])
                    journalledModel = m
                }
                try journal.record(Self.explicitStatement("generate", prompt: cell.prompt, cell.values),
                                   comments: ["a cell of an interrupted grid"], outputs: [(cell.path, cell.digest)], outdir: outdir)
                produced.append((cell.path, cell.digest))
            }
            throw stop
        }
        produced += outputs
        variables["last_images"] = .list(outputs.map { .string($0.path) })
        try journal.record(statement, comments: shardState == nil ? [] : ["shard grid \(gridNumber)"], outputs: outputs, outdir: outdir)
    }
}

extension Interpreter {
    /// Composes a grid's cells (row by row) into the labelled picture and saves it in
    /// `outdir/txt2img-grids` with the first cell's infotext and the grid statement; its path and
    /// pixel digest. The grid statement and `ShardMerge` both save grids here.
    static func saveGrid(cells: [(rgb: [UInt8], width: Int, height: Int)], _ layout: GridManifest, firstInfotext: String, firstSeed: Int64,
                         font: GridFont, outdir: String) throws -> (path: String, digest: String) {
        // A size axis makes cells of different sizes: laid out as A1111 does.
        let uniform = try GridImage.uniformCells(cells)
        let grid = try GridImage.compose(cells: uniform.cells, cellWidth: uniform.width, cellHeight: uniform.height, columns: layout.columns,
                                         rows: layout.rows, columnLabels: layout.columnLabels, rowLabels: layout.rowLabels, font: font)
        var text = [("parameters", firstInfotext), ("sdscript", layout.statement)]
        if let z = layout.zLabel { text.append(("sdscript-grid-z", z)) }
        let path = try OutputFolder(root: outdir, kind: "txt2img-grids").save(rgb: grid.rgb, width: grid.width, height: grid.height,
                                                                              seed: firstSeed, text: text)
        return (path, ImageDigest.of(rgb: grid.rgb, width: grid.width, height: grid.height))
    }
}
