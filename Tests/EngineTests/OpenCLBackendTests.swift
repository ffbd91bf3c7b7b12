import Foundation
import Testing
@testable import Engine

/// The OpenCL device the agreement tests run on (PoCL in CI), opened once per process.
enum OpenCLTestDevice {
    static let backend: OpenCLBackend? = {
        do { return try OpenCLBackend(gemm: .clblast, convolution: .unfolded) } catch {
            print("OpenCL tests skipped: \(error)")
            return nil
        }
    }()
    /// The same device with the tiled GEMM kernel only (CLBlast otherwise takes the products).
    static let tiled: OpenCLBackend? = try? OpenCLBackend(gemm: .tiled)
    /// CLBlast, with forward convolutions split into patch matrices of at most 100 floats.
    static let splitConvolutions: OpenCLBackend? = try? OpenCLBackend(deviceIndex: nil, gemm: .clblast, convolution: .unfolded,
                                                                     convolutionScratchFloats: 100)
    /// CLBlast's convgemm for forward convolutions.
    static let convgemm: OpenCLBackend? = try? OpenCLBackend(gemm: .clblast, convolution: .convgemm)
    static var available: Bool { backend != nil }
}

/// Every primitive of `OpenCLBackend` against `CPUBackend` on random inputs: the results (and
/// gradients, through the backward primitives) agree to 1e-4 relative (max |a - b| / max |cpu|).
@Suite(.enabled(if: OpenCLTestDevice.available, "no OpenCL device (install pocl-opencl-icd)"))
struct OpenCLBackendTests {
    let cpu = CPUBackend()
    var gpu: OpenCLBackend { OpenCLTestDevice.backend! }

    private func random(_ shape: [Int], seed: UInt64, positive: Bool = false) throws -> Tensor {
        var rng = SplitMix(seed: seed)
        return try Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in
            let v = rng.normal()
            return positive ? abs(v) + 0.1 : v
        })
    }

    /// Runs `body` on the CPU and OpenCL backends (both GEMM implementations when `gemm`) and
    /// compares each returned tensor.
    private func agree(_ what: String, tolerance: Double = 1e-4, gemm: Bool = false, _ body: (any Backend) throws -> [Tensor?]) throws {
        let expected = try body(cpu)
        for backend in [gpu] + (gemm ? [OpenCLTestDevice.tiled!, OpenCLTestDevice.splitConvolutions!, OpenCLTestDevice.convgemm!] : []) {
            let actual = try body(backend)
            #expect(expected.count == actual.count)
            for (i, (e, a)) in zip(expected, actual).enumerated() {
                guard let e, let a else { #expect((e == nil) == (a == nil), "\(what) output \(i)"); continue }
                #expect(e.shape == a.shape, "\(what) output \(i)")
                let err = Compare.relativeError(try a.toArray(), try e.toArray().map(Double.init))
                #expect(err <= tolerance, "\(what) output \(i) (\(backend.gemmImplementation), \(backend.convolutionImplementation)): relative error \(err)")
            }
        }
    }

    @Test func copyBetweenStridedViews() throws {
        let x = try random([3, 4, 5], seed: 1)
        let view = try x.permuted([2, 0, 1]) // [5, 3, 4]
        try agree("copy") { b in
            let out = try Tensor.zeros([7, 3, 4])
            let region = Tensor(storage: out.storage, shape: [5, 3, 4], strides: out.strides, offset: 2 * 12)
            try b.copy(view, into: region)
            return [out]
        }
    }

    @Test func storageConversions() throws {
        let x = try random([257], seed: 2)
        try agree("convert", tolerance: 0) { b in
            let h = try b.convert(x, to: .f16), bf = try b.convert(x, to: .bf16)
            return [try b.convert(h, to: .f32), try b.convert(bf, to: .f32), try b.convert(b.convert(h, to: .bf16), to: .f32)]
        }
    }

    @Test(arguments: [UnaryOp.gelu, .geluTanh, .quickGelu, .silu, .exp, .log, .sqrt, .neg, .square, .clamp(min: -0.5, max: 0.7)])
    func unaryForwardAndBackward(_ op: UnaryOp) throws {
        let positive = op == .log || op == .sqrt
        let x = try random([1000], seed: 3, positive: positive), dy = try random([1000], seed: 4)
        try agree("\(op)") { b in
            let y = try b.unary(op, x)
            return [y, try b.unaryBackward(op, x: x, y: y, dy: dy), try b.unaryBackward(op, x: x, y: nil, dy: dy)]
        }
    }

    @Test func broadcastBinaryAndAffine() throws {
        let a = try random([4, 1, 6], seed: 5), c = try random([3, 1], seed: 6, positive: true)
        let shape = [4, 3, 6]
        let av = try a.expanded(to: shape), cv = try c.expanded(to: shape)
        for op in [BinaryOp.add, .sub, .mul, .div] {
            try agree("\(op)") { b in [try b.binary(op, av, cv, shape: shape), try b.binary(op, cv, av, shape: shape)] }
        }
        let s1 = try random([], seed: 7), s2 = try random([], seed: 8)
        try agree("scalar add") { b in [try b.binary(.add, s1, s2, shape: [])] }
        try agree("affine") { b in [try b.affine(a, mul: 1.5, add: -0.25)] }
    }

    @Test func rowReductions() throws {
        let x = try random([37, 300], seed: 9)
        try agree("row sums") { b in
            let (m, v) = try b.rowMeanVar(x, rows: 37, cols: 300)
            return [try b.rowSum(x, rows: 37, cols: 300), m, v]
        }
    }

    @Test func matmulLayouts() throws {
        let a = try random([2, 3, 70, 33], seed: 10), bt = try random([2, 3, 45, 33], seed: 11)
        try agree("batched, transposed b", gemm: true) { b in [try b.matmul(a, try bt.transposed(), bias: nil)] }
        let w = try random([33, 65], seed: 12), bias = try random([65], seed: 13)
        try agree("shared b with bias", gemm: true) { b in [try b.matmul(a, w, bias: bias)] }
        // Batch dimensions that do not collapse into one stride.
        let p = try random([3, 2, 70, 33], seed: 14).permuted([1, 0, 2, 3])
        try agree("permuted batch", gemm: true) { b in [try b.matmul(p, try bt.transposed(), bias: nil)] }
        let empty = try random([5, 0], seed: 15), e2 = try random([0, 4], seed: 16)
        try agree("k = 0 with bias", gemm: true) { b in [try b.matmul(empty, e2, bias: try random([4], seed: 17))] }
    }

    /// With beta 0 the product never reads C: an output full of NaN (as uninitialised device
    /// memory may be) is overwritten, single and batched, by CLBlast and by the tiled kernel.
    @Test func gemmDoesNotReadTheOutputWithBetaZero() throws {
        for backend in [gpu, OpenCLTestDevice.tiled!] {
            for (batch, m, n, k) in [(1, 130, 77, 40), (3, 5, 7, 3), (2, 64, 64, 64)] {
                let a = try random([batch, m, k], seed: 50), b = try random([batch, k, n], seed: 51)
                let c = try Tensor(shape: [batch, m, n], data: [Float](repeating: .nan, count: batch * m * n))
                func buffer(_ t: Tensor, _ access: TensorStorage.DeviceAccess) throws -> OpenCLBuffer {
                    try t.storage.deviceBuffer(context: backend.cl, access: access, make: backend.cl.makeBuffer)
                }
                try backend.gemm(m: m, n: n, k: k, batch: batch,
                                 OpenCLBackend.Operand(buffer: try buffer(a, .read), offset: 0, batchStride: m * k, rowStride: k, colStride: 1),
                                 OpenCLBackend.Operand(buffer: try buffer(b, .read), offset: 0, batchStride: k * n, rowStride: n, colStride: 1),
                                 OpenCLBackend.Operand(buffer: try buffer(c, .update), offset: 0, batchStride: m * n, rowStride: n, colStride: 1))
                let expected = try cpu.matmul(a, b, bias: nil).toArray()
                let got = try c.toArray()
                #expect(!got.contains { $0.isNaN }, "\(backend.gemmImplementation) \(batch)x\(m)x\(n)x\(k)")
                #expect(Compare.relativeError(got, expected.map(Double.init)) <= 1e-5)
            }
        }
    }

    @Test(arguments: [(3, 1, 1), (3, 2, 1), (1, 1, 0), (3, 1, 0)])
    func convolution(_ k: Int, _ stride: Int, _ padding: Int) throws {
        let x = try random([2, 5, 9, 8], seed: 18), w = try random([6, 5, k, k], seed: 19), bias = try random([6], seed: 20)
        let oh = (9 + 2 * padding - k) / stride + 1, ow = (8 + 2 * padding - k) / stride + 1
        let dy = try random([2, 6, oh, ow], seed: 21)
        try agree("conv2d k\(k) s\(stride) p\(padding)", gemm: true) { b in
            let y = try b.conv2d(x, weight: w, bias: bias, stride: stride, padding: padding)
            let dx = try b.conv2dBackwardData(dy, weight: w, inputShape: x.shape, stride: stride, padding: padding)
            let (dw, db) = try b.conv2dBackwardWeights(dy, input: x, weightShape: w.shape, stride: stride, padding: padding, withBias: true)
            return [y, dx, dw, db]
        }
    }

    /// Frozen 16-bit weights (training precision=half) are widened on the device inside matmul,
    /// conv2d and its backward-data pass, as the CPU backend widens them.
    @Test(arguments: [DType.f16, .bf16])
    func sixteenBitWeights(_ dtype: DType) throws {
        let x = try random([2, 7, 33], seed: 43), w = try cpu.convert(random([20, 33], seed: 44), to: dtype)
        let bias = try random([20], seed: 45)
        try agree("linear with \(dtype) weight", gemm: true) { b in [try b.matmul(x, try w.transposed(), bias: bias)] }
        let img = try random([2, 5, 9, 8], seed: 46), cw = try cpu.convert(random([6, 5, 3, 3], seed: 47), to: dtype)
        let dy = try random([2, 6, 9, 8], seed: 48)
        try agree("conv2d with \(dtype) weight", gemm: true) { b in
            [try b.conv2d(img, weight: cw, bias: nil, stride: 1, padding: 1),
             try b.conv2dBackwardData(dy, weight: cw, inputShape: img.shape, stride: 1, padding: 1)]
        }
    }

    @Test func upsampling() throws {
        let x = try random([2, 3, 5, 7], seed: 22), dy = try random([2, 3, 10, 14], seed: 23)
        try agree("upsample") { b in [try b.upsampleNearest2x(x), try b.upsampleNearest2xBackward(dy)] }
    }

    @Test func groupAndLayerNorm() throws {
        let x = try random([2, 8, 5, 6], seed: 24), dy = try random([2, 8, 5, 6], seed: 25)
        let gamma = try random([8], seed: 26), beta = try random([8], seed: 27)
        let layout = NormLayout.group(x.shape, groups: 4, eps: 1e-5)
        try agree("group norm") { b in
            let (y, mean, rstd) = try b.norm(x, gamma: gamma, beta: beta, layout: layout)
            let (dx, dg, db) = try b.normBackward(dy, x: x, gamma: gamma, mean: mean, rstd: rstd, layout: layout, needParams: true)
            let (y2, m2, r2) = try b.norm(x, gamma: nil, beta: nil, layout: layout)
            let (dx2, _, _) = try b.normBackward(dy, x: x, gamma: nil, mean: m2, rstd: r2, layout: layout, needParams: false)
            return [y, mean, rstd, dx, dg, db, y2, dx2]
        }
        let t = try random([3, 7, 96], seed: 28), dt = try random([3, 7, 96], seed: 29)
        let g = try random([96], seed: 30), bb = try random([96], seed: 31)
        let layer = NormLayout.layer(t.shape, eps: 1e-5)
        try agree("layer norm") { b in
            let (y, mean, rstd) = try b.norm(t, gamma: g, beta: bb, layout: layer)
            let (dx, dg, db) = try b.normBackward(dt, x: t, gamma: g, mean: mean, rstd: rstd, layout: layer, needParams: true)
            return [y, mean, rstd, dx, dg, db]
        }
    }

    @Test func softmaxRows() throws {
        let x = try random([13, 150], seed: 32), dy = try random([13, 150], seed: 33)
        try agree("softmax") { b in
            let y = try b.softmax(x)
            return [y, try b.softmaxBackward(y: y, dy: dy)]
        }
    }

    @Test(arguments: [(3, 70, 70, 40, 40, false), (2, 130, 77, 32, 24, false), (2, 90, 90, 16, 16, true)])
    func attention(_ heads: Int, _ lq: Int, _ lk: Int, _ d: Int, _ dv: Int, _ causal: Bool) throws {
        let q = try random([heads, lq, d], seed: 34), k = try random([heads, lk, d], seed: 35), v = try random([heads, lk, dv], seed: 36)
        let dout = try random([heads, lq, dv], seed: 37)
        let scale = 1 / Float(d).squareRoot()
        try agree("attention", gemm: true) { b in
            let (o, lse) = try b.attention(q: q, k: k, v: v, scale: scale, causal: causal)
            let (dq, dk, dv) = try b.attentionBackward(q: q, k: k, v: v, out: o, lse: lse, dout: dout, scale: scale, causal: causal)
            return [o, lse, dq, dk, dv]
        }
    }

    @Test func gegluAndEmbedding() throws {
        let x = try random([5, 7, 32], seed: 38), dy = try random([5, 7, 16], seed: 39)
        try agree("geglu") { b in [try b.geglu(x), try b.gegluBackward(x: x, dy: dy)] }
        let w = try random([50, 12], seed: 40), ids = [3, 7, 3, 49, 0, 7, 3], g = try random([7, 12], seed: 41)
        try agree("embedding", tolerance: 1e-6) { b in
            [try b.embedding(ids: ids, weight: w), try b.embeddingBackward(ids: ids, dy: g, vocabulary: 50)]
        }
    }

    /// A tensor computed on the device is read back by host code, used again on the CPU backend, and
    /// a host write after device use is seen by the device.
    @Test func residencyFollowsTheLastWriter() throws {
        let x = try random([64], seed: 42)
        let y = try gpu.affine(x, mul: 2, add: 1)
        #expect(y.storage.isDeviceOnly)
        let host = try y.toArray()
        #expect(host == (try x.toArray()).map { $0 * 2 + 1 })
        #expect(!y.storage.isDeviceOnly)
        y.storage.floats[0] = 100 // a host write makes the device copy stale
        #expect(try gpu.affine(y, mul: 1, add: 0).toArray()[0] == 100)
        #expect(try cpu.affine(gpu.affine(y, mul: 1, add: 1), mul: 1, add: 0).toArray()[0] == 101)
        // A result resident in one context (device) moves to another through the host.
        let other = OpenCLTestDevice.tiled!
        let z = try gpu.affine(x, mul: 3, add: 0)
        #expect(z.storage.isDeviceOnly)
        #expect(try other.affine(z, mul: 1, add: 1).toArray() == (try x.toArray()).map { $0 * 3 + 1 })
    }
}

/// The kernel binaries' disk cache: written on the first build, used by the next context, and a
/// damaged file is rebuilt from source.
@Suite(.enabled(if: OpenCLTestDevice.available, "no OpenCL device (install pocl-opencl-icd)"))
struct OpenCLProgramCacheTests {
    @Test func binaryIsStoredReusedAndRebuiltWhenDamaged() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocl-cache-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try OpenCLContext(deviceIndex: OpenCLTestDevice.backend!.device.index, cacheDirectory: dir)
        #expect(!first.programFromCache)
        let file = OpenCLProgramCache.file(device: first.deviceID, source: OpenCLKernels.source, in: dir)
        #expect(FileManager.default.fileExists(atPath: file.path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == [file.lastPathComponent], "no temporary files left")
        let second = try OpenCLContext(deviceIndex: first.device.index, cacheDirectory: dir)
        #expect(second.programFromCache)
        try Data("not a binary".utf8).write(to: file)
        let third = try OpenCLContext(deviceIndex: first.device.index, cacheDirectory: dir)
        #expect(!third.programFromCache)
        #expect(try Data(contentsOf: file).count > 100, "the rebuilt binary replaced the damaged one")
    }
}

/// Backend names (`SDSHELL_BACKEND`, `--backend`, the shell's `backend`) and the scoped choice.
struct BackendSelectionTests {
    @Test func namesParseAndErrorsSayWhatIsAccepted() throws {
        #expect(try Engine.backend(named: "cpu") === Engine.cpu)
        for bad in ["gpu", "opencl:x", "opencl:-1", "cpu:1"] {
            #expect(throws: EngineError.self, "\(bad)") { try Engine.backend(named: bad) }
        }
        do { _ = try Engine.backend(named: "metal"); Issue.record("metal accepted") } catch {
            #expect("\(error)" == "backend: unknown backend `metal`: use cpu, opencl or opencl:N")
        }
    }

    @Test(.enabled(if: OpenCLTestDevice.available, "no OpenCL device"))
    func openCLByIndexIsOpenedOnceAndScopesStayApart() throws {
        let index = OpenCLTestDevice.backend!.device.index
        let first = try #require(try Engine.backend(named: "opencl:\(index)") as? OpenCLBackend)
        #expect(try Engine.backend(named: "OpenCL:\(index)") === first, "one backend per device")
        #expect(throws: EngineError.self) { try Engine.backend(named: "opencl:999") }
        Engine.withBackend(Engine.cpu) {
            #expect(Engine.useEnvironmentBackend(["SDSHELL_BACKEND": "opencl:\(index)"]) == nil)
            #expect(Engine.backend === first)
            let message = Engine.useEnvironmentBackend(["SDSHELL_BACKEND": "opencl:999"])
            #expect(message?.hasPrefix("SDSHELL_BACKEND=opencl:999: ") == true && message?.hasSuffix("; keeping the opencl backend") == true)
            #expect(Engine.useEnvironmentBackend([:]) == nil)
        }
        #expect(!(Engine.backend is OpenCLBackend) || Engine.backend === first, "the scope did not leak")
    }
}
