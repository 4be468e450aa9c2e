// swift-tools-version:6.0
// Distillery: knowledge-distillation studies for medical image segmentation as data.
//
// One target per module, in folders by layer (Sources/<layer>/<target>); each target
// imports only its own layer and those below (ARCHITECTURE.md draws them).
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
        // The layers, bottom to top: a target depends only on its own layer and those below
        // (ARCHITECTURE.md; Tests/PackageTests keeps it true).

        // System: C libraries from Debian, wrapped once each.
        .systemLibrary(name: "CYAML", path: "Sources/System/CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/System/COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CNifti", path: "Sources/System/CNifti", providers: [.apt(["libnifti-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/System/CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/System/CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CMPI", path: "Sources/System/CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        // OpenSSL's libcrypto: SHA-256 with the CPU's SHA extensions (the store hashes gigabytes).
        .systemLibrary(name: "CCrypto", path: "Sources/System/CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // Base: located diagnostics, hashing, crash-safe files.
        .target(name: "Diagnostics", path: "Sources/Base/Diagnostics"),
        .target(name: "Hashing", dependencies: ["CCrypto"], path: "Sources/Base/Hashing"),
        .target(name: "Storage", path: "Sources/Base/Storage"),

        // Language: the spec's syntax (libyaml), the tap manifests, the typed stage
        // configuration with its one canonical encoding, and the checked spec.
        .target(name: "SpecSyntax", dependencies: ["Diagnostics", "CYAML"], path: "Sources/Language/SpecSyntax"),
        .target(name: "Architecture", path: "Sources/Language/Architecture"),
        .target(name: "StageConfig", dependencies: ["Architecture", "Hashing"], path: "Sources/Language/StageConfig"),
        .target(name: "Spec", dependencies: ["Diagnostics", "SpecSyntax", "Architecture", "StageConfig", "Storage"], path: "Sources/Language/Spec"),

        // Planning: the execution plan, its costs and 3D recipes.
        .target(name: "Plan", dependencies: ["Spec", "Architecture", "Hashing", "StageConfig", "Medical", "Storage"], path: "Sources/Planning/Plan",
                swiftSettings: niftiInclude),

        // Compute: kernels (direct convolution with AVX-512 or AVX2 intrinsics, chosen at run time
        // by CPU features; optimised in debug builds too), tensors over OpenBLAS, autograd and
        // networks, and the ranks of a data-parallel stage (Open MPI).
        .target(name: "CKernels", path: "Sources/Compute/CKernels", cSettings: [.unsafeFlags(["-O3", "-gdwarf-4"])]),
        .target(name: "Tensor", dependencies: ["COpenBLAS", "CKernels", "Architecture"], path: "Sources/Compute/Tensor", swiftSettings: kernelSettings),
        .target(name: "NN", dependencies: ["Tensor", "Architecture", "StageConfig", "Storage"], path: "Sources/Compute/NN"),
        .target(name: "Cluster", dependencies: ["CMPI", "Tensor"], path: "Sources/Compute/Cluster"),

        // Data: NIfTI volumes (libnifti), the phantom, preprocessing, splits, metrics.
        .target(name: "Medical", dependencies: ["CNifti", "CZlib", "Tensor", "Hashing", "StageConfig", "Storage"], path: "Sources/Data/Medical",
                swiftSettings: niftiInclude),

        // Results: statistics, figures, and the ONNX and TensorBoard formats (swift-protobuf;
        // code generated once from Sources/Results/Interchange/Protos, `make protos`).
        .target(name: "Statistics", path: "Sources/Results/Statistics"),
        .target(name: "Figures", dependencies: ["CZlib"], path: "Sources/Results/Figures"),
        .target(name: "Interchange", dependencies: ["NN", "Tensor", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
                path: "Sources/Results/Interchange", exclude: ["Protos"]),

        // Execution: stages, the run store, Slurm, reports.
        .target(name: "Runtime", dependencies: ["Interchange", "Storage", "Plan", "NN", "Medical", "Tensor", "Architecture", "Hashing", "StageConfig",
                                                "Statistics", "Figures", "CSQLite", "Cluster"],
                path: "Sources/Execution/Runtime", swiftSettings: niftiInclude),

        // Tools: the PyTorch reference cases and perf.md's benchmark rows.
        .target(name: "Parity", dependencies: ["NN", "Tensor", "Architecture", "StageConfig"], path: "Sources/Tools/Parity"),
        .target(name: "Benchmark", dependencies: ["NN", "Medical", "Tensor", "Architecture", "StageConfig"], path: "Sources/Tools/Benchmark",
                swiftSettings: niftiInclude),

        // CLI: `distill`.
        .executableTarget(name: "distill", dependencies: [
            "Diagnostics", "SpecSyntax", "Spec", "Architecture", "StageConfig", "Plan", "Tensor", "NN", "Parity",
            "Benchmark", "Medical", "Figures", "Runtime", "Cluster", "Interchange", "Storage", "Statistics", "Hashing",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Sources/CLI/distill", swiftSettings: niftiInclude),
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
        .testTarget(name: "CLITests", dependencies: ["distill", "Medical", "Spec", "StageConfig", "NN"], exclude: ["NNUNet"]),
        .testTarget(name: "InterchangeTests", dependencies: ["Interchange", "NN", "Tensor", "Architecture", "Spec", "Parity"], exclude: ["Python"]),
        .testTarget(name: "PackageTests"),
        .testTarget(name: "SystemLibraryTests", dependencies: ["COpenBLAS", "CNifti"], swiftSettings: niftiInclude),
    ]
)
