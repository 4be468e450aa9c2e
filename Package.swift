// swift-tools-version:6.0
// Distillery: knowledge-distillation studies for medical image segmentation as data.
//
// One target per layer; each imports only the layers below it (see ../shared/STYLE.md):
//   Architecture (tap manifests, parameter and MAC counts)
//     <- StageConfig (typed stage configuration, its one canonical JSON encoding)
//       <- Spec, Plan, NN, Medical, Runtime
//   Diagnostics <- SpecSyntax (libyaml) <- Spec (typed IR + checks) <- Plan <- Runtime <- distill
//   Tensor (OpenBLAS, CKernels) <- NN <- Parity (PyTorch reference cases), Benchmark (perf.md rows)
//   NN <- Interchange (ONNX export, TensorBoard event files; swift-protobuf) <- Runtime
//   Tensor <- Cluster (Open MPI: the ranks of a data-parallel stage) <- Runtime
// Every target compiles in the Swift 6 language mode.
import PackageDescription

/// The kernels' inner loops run without overflow and bounds checks in release builds
/// (11% of a student training step, `distill bench --row s1_train`). Nothing unchecked
/// meets user input: every shape that reaches a kernel was checked at the plan and
/// checkpoint boundary by a thrown error (StageConfig's reader, the objective's term
/// checks, the model/data fit, ParameterStore.load).
let kernelSettings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

/// libnifti's headers include each other by bare name from /usr/include/nifti.
let niftiInclude: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I/usr/include/nifti"])]

let package = Package(
    name: "Distillery",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "distill", targets: ["distill"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The ONNX and TensorBoard formats (code generated once from Sources/Interchange/Protos, `make protos`).
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // C libraries from Debian, wrapped once each.
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CNifti",
                       providers: [.apt(["libnifti-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        // OpenSSL's libcrypto: SHA-256 with the CPU's SHA extensions (the store hashes gigabytes).
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        .target(name: "Diagnostics"),
        .target(name: "SpecSyntax", dependencies: ["Diagnostics", "CYAML"]),
        .target(name: "Hashing", dependencies: ["CCrypto"]),
        .target(name: "Storage"),
        .target(name: "Architecture"),
        .target(name: "StageConfig", dependencies: ["Architecture", "Hashing"]),
        .target(name: "Spec", dependencies: ["Diagnostics", "SpecSyntax", "Architecture", "StageConfig", "Storage"]),
        .target(name: "Plan", dependencies: ["Spec", "Architecture", "Hashing", "StageConfig", "Medical", "Storage", "Tensor"], swiftSettings: niftiInclude),
        // Direct convolution kernels (AVX-512 intrinsics, chosen at run time by CPU); optimised in debug builds too.
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3", "-gdwarf-4"])]),
        .target(name: "Tensor", dependencies: ["COpenBLAS", "CKernels"], swiftSettings: kernelSettings),
        .target(name: "NN", dependencies: ["Tensor", "Architecture", "StageConfig", "Storage"]),
        .target(name: "Parity", dependencies: ["NN", "Tensor", "Architecture", "StageConfig"]),
        .target(name: "Medical", dependencies: ["CNifti", "CZlib", "Tensor", "Hashing", "StageConfig", "Storage"], swiftSettings: niftiInclude),
        .target(name: "Benchmark", dependencies: ["NN", "Medical", "Tensor", "Architecture", "StageConfig"], swiftSettings: niftiInclude),
        .target(name: "Statistics"),
        .target(name: "Figures", dependencies: ["CZlib"]),
        .target(name: "Cluster", dependencies: ["CMPI", "Tensor"]),
        .target(name: "Interchange", dependencies: ["NN", "Tensor", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                exclude: ["Protos"]),
        .target(name: "Runtime", dependencies: ["Interchange", "Storage", "Spec", "Plan", "NN", "Medical", "Tensor", "Architecture", "Hashing", "StageConfig", "Statistics", "Figures", "CSQLite", "Cluster"],
                swiftSettings: niftiInclude),
        .executableTarget(name: "distill", dependencies: [
            "Diagnostics", "SpecSyntax", "Spec", "Architecture", "StageConfig", "Plan", "Tensor", "NN", "Parity",
            "Benchmark", "Medical", "Figures", "Runtime", "Cluster", "Interchange", "Storage", "Statistics", "Hashing",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: niftiInclude),
        .executableTarget(name: "distill-bench-spec", dependencies: ["Diagnostics", "Spec", "Plan"],
                          path: "Benchmarks/SpecBench"),

        .testTarget(name: "SpecSyntaxTests", dependencies: ["SpecSyntax", "Diagnostics"]),
        .testTarget(name: "StageConfigTests", dependencies: ["StageConfig", "Architecture", "Spec", "Plan", "Diagnostics"]),
        .testTarget(name: "StatisticsTests", dependencies: ["Statistics"], exclude: ["Reference"]),
        .testTarget(name: "SpecTests", dependencies: ["Spec", "SpecSyntax", "Diagnostics", "Architecture", "StageConfig", "Plan"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Plan", "Spec", "StageConfig", "Statistics", "Tensor", "Diagnostics", "NN", "Medical", "Figures", "Architecture"],
                    exclude: ["Golden", "Pretrained"], swiftSettings: niftiInclude),
        .testTarget(name: "MedicalTests", dependencies: ["Medical", "Tensor", "StageConfig", "CZlib"], exclude: ["Fixtures", "RealData"], swiftSettings: niftiInclude),
        .testTarget(name: "NNTests", dependencies: ["NN", "Tensor", "Architecture", "StageConfig", "Spec", "Parity"]),
        .testTarget(name: "ParityTests", dependencies: ["Parity", "NN", "Tensor"], exclude: ["Reference"]),
        .testTarget(name: "PlanTests", dependencies: ["Plan", "Spec", "Diagnostics", "Hashing", "StageConfig", "Benchmark"], exclude: ["Golden"]),
        .testTarget(name: "CLITests", dependencies: ["distill", "Medical", "Spec", "StageConfig", "NN"]),
        .testTarget(name: "InterchangeTests", dependencies: ["Interchange", "NN", "Tensor", "Architecture", "Spec", "Parity"], exclude: ["Python"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["COpenBLAS", "CNifti"], swiftSettings: niftiInclude),
    ]
)
