import CCLBlast
import COpenCL
import Foundation

/// Matrix products on the device: CLBlast's (strided-batched) SGEMM where the operands have a unit
/// row or column stride (CLBlast's layouts), else the backend's own tiled kernel (`gemm` in
/// `OpenCLKernels`), which takes any strides. CLBlast measured faster at every SD shape on PoCL
/// (docs/opencl.md); `SDSHELL_OPENCL_GEMM=tiled` forces the tiled kernel (for measurements).
extension OpenCLBackend {
    /// A strided matrix operand: element (i, j) of batch b at
    /// `offset + b * batchStride + i * rowStride + j * colStride`.
    struct Operand {
        var buffer: OpenCLBuffer, offset: Int, batchStride: Int, rowStride: Int, colStride: Int
    }

    /// How matrix products are computed.
    public enum GEMMImplementation: String, Sendable {
        /// CLBlast where the operand layout allows, else the tiled kernel.
        case clblast
        /// The backend's own tiled kernel only.
        case tiled

        /// SDSHELL_OPENCL_GEMM, else CLBlast.
        static var fromEnvironment: GEMMImplementation {
            ProcessInfo.processInfo.environment["SDSHELL_OPENCL_GEMM"].flatMap(GEMMImplementation.init(rawValue:)) ?? .clblast
        }
    }

    /// C[b] = alpha A[b] B[b] (+ bias per column or per row) + beta C[b] for `batch` matrices
    /// ([m, k] @ [k, n]); C rows are contiguous. With beta 0 the old C is not read.
    func gemm(m: Int, n: Int, k: Int, batch: Int, alpha: Float = 1, beta: Float = 0, _ a: Operand, _ b: Operand, _ c: Operand,
              bias: OpenCLBuffer? = nil, biasPerRow: Bool = false) throws {
        if m == 0 || n == 0 || batch == 0 { return }
        if gemmImplementation == .clblast, k > 0 {
            if try clblast(m: m, n: n, k: k, batch: batch, alpha: alpha, beta: beta, a, b, c, bias: bias, biasPerRow: biasPerRow) { return }
        }
        let tile = OpenCLKernels.gemmTile, group = OpenCLKernels.gemmGroup
        guard cl.maxWorkGroupSize >= group * group else {
            throw EngineError.backendFailure(op: "matmul", message: "\(cl.device.name) runs at most \(cl.maxWorkGroupSize) work-items per group; "
                                             + "the tiled GEMM needs \(group * group) and CLBlast declined \(m)x\(k)x\(n)")
        }
        let global = [(n + tile - 1) / tile * group, (m + tile - 1) / tile * group, batch]
        let args: [KernelArgument] = [
            .int(m), .int(n), .int(k), .float(alpha), .float(beta),
            .buffer(a.buffer), .long(a.offset), .long(a.batchStride), .long(a.rowStride), .long(a.colStride),
            .buffer(b.buffer), .long(b.offset), .long(b.batchStride), .long(b.rowStride), .long(b.colStride),
            .buffer(c.buffer), .long(c.offset), .long(c.batchStride), .long(c.rowStride),
            .buffer(bias ?? c.buffer), .int(bias == nil ? 0 : biasPerRow ? 2 : 1),
        ]
        try cl.launch("gemm", args, global: global, local: [group, group, 1])
    }

    /// How forward convolutions are computed.
    public enum ConvolutionImplementation: String, Sendable {
        /// Patches unfolded by the backend (im2col, bounded scratch), then GEMM: measured faster on PoCL.
        case unfolded
        /// CLBlast's convgemm for the whole batch (patches unfolded inside its kernel, no scratch);
        /// 0.6x the unfolded path's speed on PoCL, possibly better on GPUs.
        case convgemm

        /// SDSHELL_OPENCL_CONV, else unfolded.
        static var fromEnvironment: ConvolutionImplementation {
            ProcessInfo.processInfo.environment["SDSHELL_OPENCL_CONV"].flatMap(ConvolutionImplementation.init(rawValue:)) ?? .unfolded
        }
    }

    /// The whole batch's forward convolution through CLBlast's convgemm when chosen; false when not
    /// chosen or CLBlast declines (the unfolded path then runs).
    func convgemm(_ g: ConvGeometry, x: OpenCLBuffer, weight: OpenCLBuffer, into y: OpenCLBuffer) throws -> Bool {
        guard convolutionImplementation == .convgemm, g.n > 0 else { return false }
        let status = cl.serialized { () -> CLBlastStatusCode in
            var queue: cl_command_queue? = cl.queue
            let started = cl.profiling ? DispatchTime.now().uptimeNanoseconds : 0
            defer { cl.record("clblast convgemm", since: started) }
            return CLBlastSconvgemm(CLBlastKernelModeCrossCorrelation, g.c, g.h, g.w, g.k, g.k, g.pad, g.pad, g.stride, g.stride, 1, 1,
                                    g.o, g.n, x.mem, 0, weight.mem, 0, y.mem, 0, &queue, nil)
        }
        return status == CLBlastSuccess
    }

    /// CLBlast's view of an operand of `rows` x `cols`: transposed or not, and the leading dimension.
    private func layout(_ o: Operand, rows: Int, cols: Int) -> (CLBlastTranspose, Int)? {
        if o.colStride == 1 && (o.rowStride >= cols || rows == 1) { return (CLBlastTransposeNo, max(o.rowStride, cols, 1)) }
        if o.rowStride == 1 && (o.colStride >= rows || cols == 1) { return (CLBlastTransposeYes, max(o.colStride, rows, 1)) }
        return nil
    }

    /// The product through CLBlast; false when the layout does not suit it or CLBlast declines (the
    /// caller then uses the tiled kernel). A bias becomes C's starting rows (then beta = 1). With
    /// beta 0 CLBlast does not read C (its kernels test for a zero beta; checked on CLBlast 1.5.3
    /// with C full of NaN, and by `OpenCLBackendTests`), so uninitialised outputs need no clearing.
    private func clblast(m: Int, n: Int, k: Int, batch: Int, alpha: Float, beta: Float, _ a: Operand, _ b: Operand, _ c: Operand,
                         bias: OpenCLBuffer?, biasPerRow: Bool) throws -> Bool {
        guard let (ta, lda) = layout(a, rows: m, cols: k), let (tb, ldb) = layout(b, rows: k, cols: n),
              c.colStride == 1, c.rowStride >= n,
              min(a.offset, b.offset, c.offset, a.batchStride, b.batchStride, c.batchStride) >= 0 else { return false }
        if let bias {
            if beta != 0 { return false }
            try cl.launch("gemm_init", [.buffer(c.buffer), .long(c.offset), .long(c.batchStride), .long(c.rowStride),
                                        .buffer(bias), .int(biasPerRow ? 2 : 1)], global: [n, m, batch])
        }
        let accumulate: Float = bias != nil ? 1 : beta
        let status = cl.serialized { () -> CLBlastStatusCode in
            var queue: cl_command_queue? = cl.queue
            let started = cl.profiling ? DispatchTime.now().uptimeNanoseconds : 0
            defer { cl.record("clblast sgemm", since: started) }
            if batch == 1 {
                return CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a.buffer.mem, a.offset, lda, b.buffer.mem, b.offset, ldb,
                                    accumulate, c.buffer.mem, c.offset, c.rowStride, &queue, nil)
            }
            return CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a.buffer.mem, a.offset, lda, a.batchStride,
                                              b.buffer.mem, b.offset, ldb, b.batchStride, accumulate, c.buffer.mem, c.offset,
                                              c.rowStride, c.batchStride, batch, &queue, nil)
        }
        // On failure CLBlast has queued nothing (it checks its arguments first); the tiled kernel
        // then computes the product, overwriting C when beta is 0.
        return status == CLBlastSuccess
    }
}
