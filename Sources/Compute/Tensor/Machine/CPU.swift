import CKernels

/// The CPU this process runs on, as CPUID describes it: what `distill bench`, `calibrate`
/// and every done record name, and what the kernels pick their paths from.
///
/// `extensions` holds only what the operating system also enables (XCR0): a CPU with
/// AVX-512 under a kernel that does not save its registers has no AVX-512 here.
public struct CPU: Hashable, Sendable {
    /// The vector extensions the runtime or its BLAS can use, in CPUID's names.
    public enum Extension: String, CaseIterable, Sendable, Comparable {
        case sse42 = "SSE4.2", avx = "AVX", fma = "FMA", f16c = "F16C", avx2 = "AVX2"
        case avx512f = "AVX512F", avx512dq = "AVX512DQ", avx512bw = "AVX512BW", avx512vl = "AVX512VL"
        case avx512vnni = "AVX512-VNNI", avx512bf16 = "AVX512-BF16", amxTile = "AMX-TILE", amxBF16 = "AMX-BF16"

        /// The CKernels bit that reports this extension.
        var bit: UInt64 {
            switch self {
            case .sse42: UInt64(CK_SSE42)
            case .avx: UInt64(CK_AVX)
            case .fma: UInt64(CK_FMA)
            case .f16c: UInt64(CK_F16C)
            case .avx2: UInt64(CK_AVX2)
            case .avx512f: UInt64(CK_AVX512F)
            case .avx512dq: UInt64(CK_AVX512DQ)
            case .avx512bw: UInt64(CK_AVX512BW)
            case .avx512vl: UInt64(CK_AVX512VL)
            case .avx512vnni: UInt64(CK_AVX512VNNI)
            case .avx512bf16: UInt64(CK_AVX512BF16)
            case .amxTile: UInt64(CK_AMX_TILE)
            case .amxBF16: UInt64(CK_AMX_BF16)
            }
        }

        /// CPUID's order, the order `isa` lists them in.
        var order: Int { Self.allCases.firstIndex(of: self) ?? 0 }

        public static func < (a: Extension, b: Extension) -> Bool { a.order < b.order }
    }

    /// The widest vectors a kernel may use, from the extensions (each tier includes those below).
    public enum VectorTier: Int, Comparable, Sendable, CustomStringConvertible {
        case sse = 0, avx, avx2, avx512

        public static func < (a: VectorTier, b: VectorTier) -> Bool { a.rawValue < b.rawValue }

        public var description: String {
            switch self {
            case .sse: "SSE"
            case .avx: "AVX"
            case .avx2: "AVX2 + FMA"
            case .avx512: "AVX-512"
            }
        }
    }

    public var vendor: String
    public var brand: String
    public var family: Int
    public var model: Int
    public var extensions: Set<Extension>

    public init(vendor: String, brand: String, family: Int, model: Int, extensions: Set<Extension>) {
        (self.vendor, self.brand, self.family, self.model, self.extensions) = (vendor, brand, family, model, extensions)
    }

    /// This process's CPU.
    public static let current: CPU = {
        var raw = ck_cpu()
        ck_cpu_identify(&raw)
        let vendor = withUnsafeBytes(of: raw.vendor) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let brand = withUnsafeBytes(of: raw.brand) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let extensions = Set(Extension.allCases.filter { raw.features & $0.bit != 0 })
        return CPU(vendor: vendor, brand: brand.trimmingSpaces, family: Int(raw.family), model: Int(raw.model),
                   extensions: extensions)
    }()

    public func has(_ e: Extension) -> Bool { extensions.contains(e) }

    /// AVX-512 here means the subset the kernels and OpenBLAS's SkylakeX kernels use (F, DQ, BW, VL).
    public var vectorTier: VectorTier {
        if [.avx512f, .avx512dq, .avx512bw, .avx512vl].allSatisfy(has) { return .avx512 }
        if has(.avx2) && has(.fma) { return .avx2 }
        if has(.avx) { return .avx }
        return .sse
    }

    /// bf16 arithmetic in hardware: AMX tiles, else AVX-512 BF16 dot products, else none.
    public var bf16Unit: String? {
        if has(.amxBF16) && has(.amxTile) { return "AMX-BF16" }
        if has(.avx512bf16) { return "AVX512-BF16" }
        return nil
    }

    /// "AMD EPYC (AuthenticAMD family 25 model 1)".
    public var name: String {
        "\(brand.isEmpty ? "unknown CPU" : brand) (\(vendor.isEmpty ? "?" : vendor) family \(family) model \(model))"
    }

    /// The extensions as one line: "SSE4.2 AVX FMA F16C AVX2".
    public var isa: String { extensions.isEmpty ? "none detected" : extensions.sorted().map(\.rawValue).joined(separator: " ") }
}

extension String {
    /// Without leading and trailing spaces, and inner runs of spaces as one (CPUID pads its brand string).
    var trimmingSpaces: String {
        split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}
