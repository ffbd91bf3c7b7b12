import Engine
import Testing

/// Views, dtypes and error reporting.
@Suite struct TensorTests {
    @Test("reshape, transpose and slice are views over the same storage")
    func views() throws {
        let x = try Tensor(shape: [2, 3, 4], data: (0..<24).map(Float.init))
        let r = try x.reshaped([6, 4]), t = try x.transposed(1, 2), s = try x.sliced(dim: 2, 1, 3)
        for v in [r, t, s] { #expect(v.storage === x.storage) }
        #expect(t.shape == [2, 4, 3] && !t.isContiguous)
        #expect(try s.toArray() == [1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22])
        #expect(try t.toArray()[0..<6] == [0, 4, 8, 1, 5, 9])
        // Reshaping a transposed view must copy, and get the transposed order.
        #expect(try t.reshaped([24]).toArray()[0..<3] == [0, 4, 8])
    }

    @Test("f16 and bf16 are storage: compute ops refuse them with the op named")
    func storageDTypes() throws {
        let h = try Tensor(shape: [4], data: [1, 2, 3, 4]).to(.f16)
        #expect(h.dtype == .f16 && h.storage.count == 4)
        #expect(throws: EngineError.unsupportedDType(op: "matmul", dtype: .f16)) { try h.reshaped([2, 2]).matmul(h.reshaped([2, 2])) }
        #expect(try h.to(.f32).toArray() == [1, 2, 3, 4])
    }

    @Test("a 16-bit embedding table gives the rows of its f32 widening, and takes no gradient")
    func sixteenBitEmbeddingTable() throws {
        let table = try Tensor(shape: [5, 3], data: (0..<15).map { Float($0) * 0.37 - 2 })
        for dtype in [DType.f16, .bf16] {
            let narrow = try table.to(dtype)
            let rows = try Tensor.embedding(ids: [4, 0, 4, 2], weight: narrow)
            #expect(rows.shape == [4, 3] && rows.dtype == .f32)
            #expect(try rows.toArray() == Tensor.embedding(ids: [4, 0, 4, 2], weight: narrow.to(.f32)).toArray())
            narrow.requiresGrad = true
            #expect(throws: EngineError.self) { try Tensor.embedding(ids: [1], weight: narrow) }
        }
    }

    @Test("shape errors name the op and the shapes")
    func shapeErrors() throws {
        let a = try Tensor.zeros([2, 3]), b = try Tensor.zeros([4, 5])
        do { _ = try a.matmul(b); Issue.record("no error") } catch let e as EngineError {
            #expect(e.description.contains("matmul") && e.description.contains("[2, 3]") && e.description.contains("[4, 5]"))
        }
        do { _ = try a + b; Issue.record("no error") } catch let e as EngineError {
            #expect(e.description.hasPrefix("add: shape mismatch [2, 3] vs [4, 5]"))
        }
        let x = try Tensor.zeros([1, 3, 8, 8]), w = try Tensor.zeros([4, 2, 3, 3])
        #expect(throws: EngineError.self) { try x.conv2d(weight: w, padding: 1) }
        #expect(throws: EngineError.self) { try x.groupNorm(groups: 2, weight: nil, bias: nil) }
        #expect(throws: EngineError.self) { try Tensor.embedding(ids: [5], weight: try Tensor.zeros([3, 2])) }
        #expect(throws: EngineError.self) { try x.reshaped([5, -1]) }
    }

    @Test("an impossible allocation is an error naming the op and shape, not a crash")
    func outOfMemory() throws {
        do { _ = try Tensor.zeros([1 << 40, 1 << 20]); Issue.record("no error") } catch let e as EngineError {
            guard case let .outOfMemory(op, shape, _) = e else { Issue.record("wrong error \(e)"); return }
            #expect(op == "zeros" && shape == [1 << 40, 1 << 20])
        }
        do { _ = try Tensor.zeros([1 << 62, 1 << 62]); Issue.record("no error") } catch let e as EngineError {
            #expect(e.description.contains("zeros"))
        }
    }

    @Test("no-grad mode records nothing")
    func noGrad() throws {
        let x = try Tensor(shape: [3], data: [1, 2, 3], requiresGrad: true)
        let y = try withNoGrad { try x * x }
        #expect(!y.requiresGrad)
        let z = try x * x
        #expect(z.requiresGrad)
        #expect(throws: EngineError.self) { try y.sum().backward() == () }
    }
}
