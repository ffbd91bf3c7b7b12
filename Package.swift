// swift-tools-version:6.0
import PackageDescription

/// Hot numeric kernels live in the C target `CKernels`, always compiled with optimisation and
/// AVX2/FMA/F16C so that debug test builds stay fast.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3", "-mavx2", "-mfma", "-mf16c", "-fno-math-errno"])]

let package = Package(
    name: "sdshell",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sdshell", targets: ["sdshell"]),
        .executable(name: "sdbench", targets: ["sdbench"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Formats", targets: ["Formats"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "Diffusion", targets: ["Diffusion"]),
        .library(name: "Training", targets: ["Training"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
    ],
    targets: [
        // System libraries (Debian packages installed by scripts/bootstrap.sh).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        .systemLibrary(name: "CEdit", pkgConfig: "libedit", providers: [.apt(["libedit-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenCL", pkgConfig: "OpenCL", providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]),
        .systemLibrary(name: "CCLBlast", pkgConfig: "clblast", providers: [.apt(["libclblast-dev"])]),
        .systemLibrary(name: "CFreeType", pkgConfig: "freetype2", providers: [.apt(["libfreetype-dev"])]),
        .systemLibrary(name: "CZMQ", providers: [.apt(["libzmq3-dev"])]),

        .target(name: "CImageIO", dependencies: ["CPNG"], linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]),
        .target(name: "CKernels", dependencies: ["CBLAS", "CDNNL"], cSettings: kernelFlags,
                linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("openblas"), .linkedLibrary("m")]),
        .target(name: "CGlyphs", dependencies: ["CFreeType"], linkerSettings: [.linkedLibrary("freetype")]),
        .target(name: "CLineEditor", dependencies: ["CEdit"], linkerSettings: [.linkedLibrary("edit")]),
        .target(name: "Engine", dependencies: ["CKernels", "COpenCL", "CCLBlast"], linkerSettings: [.linkedLibrary("OpenCL"), .linkedLibrary("clblast")]),
        .target(name: "Formats", dependencies: ["Engine", "CImageIO", "CZlib", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Models", dependencies: ["Engine", "Formats"]),
        .target(name: "Prompting", dependencies: ["Engine", "Models", "Formats"], resources: [.copy("Resources")]),
        // Pictures apart from diffusion: labelled grids, the label font, numbered output folders.
        .target(name: "Imaging", dependencies: ["Formats", "CGlyphs"]),
        .target(name: "Diffusion", dependencies: ["Engine", "Formats", "Models", "Prompting", "Imaging"]),
        .target(name: "Training", dependencies: ["Engine", "Models", "Prompting", "Diffusion", "Formats", "Imaging"],
                resources: [.copy("Resources")]),
        .target(name: "Script", dependencies: ["Engine", "Formats", "Models", "Prompting", "Diffusion", "Training", "Imaging"]),
        // The Jupyter kernel: the messaging protocol over ZeroMQ, cells run by the Script interpreter.
        .target(name: "Notebook", dependencies: ["Script", "Engine", "Formats", "CZMQ", .product(name: "Crypto", package: "swift-crypto")],
                linkerSettings: [.linkedLibrary("zmq")]),

        .executableTarget(name: "sdshell", dependencies: [
            "Engine", "Formats", "Models", "Prompting", "Diffusion", "Training", "Script", "Imaging", "CLineEditor", "Notebook",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "sdbench", dependencies: [
            "Engine", "Formats", "Models", "Prompting", "Diffusion", "Training", "CKernels", "CBLAS",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .executableTarget(name: "sdfuzz", dependencies: ["Formats", "Script"], swiftSettings: [.unsafeFlags(["-parse-as-library"])]),

        // Shared by the test targets: fixture loading, the tiny model's path.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "CKernels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TrainingTests", dependencies: ["TestSupport", "Training", "Diffusion", "Prompting", "Models", "Formats", "Engine", "Imaging"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "PromptingTests", dependencies: ["TestSupport", "Prompting", "Models", "Formats", "Engine"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DiffusionTests", dependencies: ["TestSupport", "Diffusion", "Imaging", "Models", "Prompting", "Engine", "Formats"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelsTests", dependencies: ["TestSupport", "Models", "Formats", "Engine"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ShellTests", dependencies: ["TestSupport", "Script", "Diffusion", "Imaging", "Prompting", "Formats", "Models", "Engine"], exclude: ["Fixtures"]),
        .testTarget(name: "NotebookTests", dependencies: ["Notebook", "Script"]),
        .testTarget(name: "FormatsTests", dependencies: ["Formats", "Engine", .product(name: "Crypto", package: "swift-crypto")],
                    resources: [.copy("Fixtures")]),
    ],
    swiftLanguageModes: [.v6]
)
