import CKernels

/// The one numbering of element-wise operations: CKernels' `ck_unary_op` and `ck_binary_op`
/// (ck_elementwise.h). The CPU backend passes these values to the C kernels; the OpenCL program
/// gets them as `#define`s generated here (`openCLDefinitions`), so its `switch` names the same
/// constants and nothing is kept in step by hand.
extension UnaryOp {
    /// The op's number and its parameters (the bounds of `clamp`).
    var code: (op: ck_unary_op, p0: Float, p1: Float) {
        switch self {
        case .gelu: return (CK_UNARY_GELU, 0, 0)
        case .geluTanh: return (CK_UNARY_GELU_TANH, 0, 0)
        case .quickGelu: return (CK_UNARY_QUICK_GELU, 0, 0)
        case .silu: return (CK_UNARY_SILU, 0, 0)
        case .exp: return (CK_UNARY_EXP, 0, 0)
        case .log: return (CK_UNARY_LOG, 0, 0)
        case .sqrt: return (CK_UNARY_SQRT, 0, 0)
        case .neg: return (CK_UNARY_NEG, 0, 0)
        case .square: return (CK_UNARY_SQUARE, 0, 0)
        case let .clamp(lo, hi): return (CK_UNARY_CLAMP, lo, hi)
        }
    }
}

extension BinaryOp {
    /// The op's number.
    var code: ck_binary_op {
        switch self {
        case .add: return CK_BINARY_ADD
        case .sub: return CK_BINARY_SUB
        case .mul: return CK_BINARY_MUL
        case .div: return CK_BINARY_DIV
        }
    }
}

enum ElementwiseCodes {
    /// Every code by the name the kernels use.
    static let named: [(String, UInt32)] = [
        ("CK_UNARY_GELU", CK_UNARY_GELU.rawValue), ("CK_UNARY_GELU_TANH", CK_UNARY_GELU_TANH.rawValue),
        ("CK_UNARY_QUICK_GELU", CK_UNARY_QUICK_GELU.rawValue), ("CK_UNARY_SILU", CK_UNARY_SILU.rawValue),
        ("CK_UNARY_EXP", CK_UNARY_EXP.rawValue), ("CK_UNARY_LOG", CK_UNARY_LOG.rawValue), ("CK_UNARY_SQRT", CK_UNARY_SQRT.rawValue),
        ("CK_UNARY_CLAMP", CK_UNARY_CLAMP.rawValue), ("CK_UNARY_NEG", CK_UNARY_NEG.rawValue), ("CK_UNARY_SQUARE", CK_UNARY_SQUARE.rawValue),
        ("CK_BINARY_ADD", CK_BINARY_ADD.rawValue), ("CK_BINARY_SUB", CK_BINARY_SUB.rawValue),
        ("CK_BINARY_MUL", CK_BINARY_MUL.rawValue), ("CK_BINARY_DIV", CK_BINARY_DIV.rawValue),
    ]

    /// `#define NAME VALUE` for each code, put before the OpenCL kernels' source.
    static var openCLDefinitions: String { named.map { "#define \($0.0) \($0.1)\n" }.joined() }
}
