// swift-tools-version:6.0
// Distillery: knowledge-distillation studies for medical image segmentation as data.
//
// One target per layer; each imports only the layers below it (see ../shared/STYLE.md):
//   Diagnostics <- SpecSyntax (libyaml) <- Spec (typed IR + checks) <- Plan <- distill
//   Architecture (tap manifests, parameter and MAC counts) <- Spec, Plan, and later NN
import PackageDescription

/// libnifti's headers include each other by bare name from /usr/include/nifti.
let kernelSettings: [SwiftSetting] = [.swiftLanguageMode(.v5), .unsafeFlags(["-Ounchecked"], .when(configuration: .release))]

let niftiInclude: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I/usr/include/nifti"])]

let package = Package(
    name: "Distillery",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "distill", targets: ["distill"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
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

        .target(name: "Diagnostics"),
        .target(name: "SpecSyntax", dependencies: ["Diagnostics", "CYAML"]),
        .target(name: "Architecture"),
        .target(name: "Spec", dependencies: ["Diagnostics", "SpecSyntax", "Architecture"]),
        .target(name: "Hashing"),
        .target(name: "Plan", dependencies: ["Spec", "Architecture", "Hashing"]),
        // The kernels share raw buffers across parallel loops by design (disjoint
        // ranges per worker); Swift 6's Sendable checking cannot see that, so these
        // two layers compile in the Swift 5 language mode.
        .target(name: "Tensor", dependencies: ["COpenBLAS"], swiftSettings: kernelSettings),
        .target(name: "NN", dependencies: ["Tensor", "Architecture"], swiftSettings: kernelSettings),
        .target(name: "Medical", dependencies: ["CNifti", "CZlib", "Tensor", "Hashing"], swiftSettings: niftiInclude),
        // The executor shares its bookkeeping between stage threads under an explicit lock.
        .target(name: "Runtime", dependencies: ["Plan", "NN", "Medical", "Tensor", "Architecture", "Hashing", "CSQLite"],
                swiftSettings: niftiInclude + [.swiftLanguageMode(.v5)]),
        .executableTarget(name: "distill", dependencies: [
            "Diagnostics", "SpecSyntax", "Spec", "Architecture", "Plan", "COpenBLAS", "Tensor", "NN", "Medical", "Runtime",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: niftiInclude),
        .executableTarget(name: "distill-bench-spec", dependencies: ["Diagnostics", "Spec", "Plan"],
                          path: "Benchmarks/SpecBench"),

        .testTarget(name: "SpecSyntaxTests", dependencies: ["SpecSyntax", "Diagnostics"]),
        .testTarget(name: "SpecTests", dependencies: ["Spec", "SpecSyntax", "Diagnostics", "Architecture"],
                    exclude: ["Fixtures"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Plan", "Spec", "Tensor", "Diagnostics", "NN", "Medical"],
                    exclude: ["Golden"], swiftSettings: niftiInclude),
        .testTarget(name: "MedicalTests", dependencies: ["Medical", "Tensor"], swiftSettings: niftiInclude),
        .testTarget(name: "NNTests", dependencies: ["NN", "Tensor", "Architecture"]),
        .testTarget(name: "PlanTests", dependencies: ["Plan", "Spec", "Diagnostics", "Hashing"], exclude: ["Golden"]),
        .testTarget(name: "CLITests", dependencies: ["distill", "Spec"]),
        .testTarget(name: "SystemLibraryTests", dependencies: ["COpenBLAS", "CNifti"], swiftSettings: niftiInclude),
    ]
)
