import Foundation
import StageConfig
import Tensor

/// The machine that made a stage's outputs, as its done record names it: the same stage
/// hash gives bit-identical results on one kind of machine, but not across CPU kinds (the
/// kernels' sums run in another order), so a report says which machines stand behind each
/// of its stages.
public struct Provenance: Hashable, Sendable {
    public var cpu: String
    public var isa: String
    public var blas: String
    public var threads: Int
    public var os: String

    public static var current: Provenance {
        let machine = Machine.current
        return Provenance(cpu: machine.cpu.name, isa: machine.cpu.isa, blas: machine.blasSummary, threads: Parallel.threads,
                          os: operatingSystem)
    }

    /// The kind of CPU, for comparing arms: the model and the extensions, not the thread count or the OS.
    public var cpuKind: String { "\(cpu); \(isa)" }

    /// "AMD EPYC (AuthenticAMD family 25 model 1), SSE4.2 AVX FMA F16C AVX2, OpenBLAS 0.3.21 ..., 2 threads, Linux 6.1".
    public var summary: String { "\(cpu), \(isa), \(blas), \(threads) thread\(threads == 1 ? "" : "s"), \(os)" }

    var json: JSON {
        .object(["cpu": .string(cpu), "isa": .string(isa), "blas": .string(blas), "threads": .int(threads), "os": .string(os)])
    }

    init(cpu: String, isa: String, blas: String, threads: Int, os: String) {
        (self.cpu, self.isa, self.blas, self.threads, self.os) = (cpu, isa, blas, threads, os)
    }

    /// The machine a done record names, if it names one (records written before provenance did not).
    init?(record: JSON?) {
        guard let m = record?["machine"], let cpu = m["cpu"]?.string, let isa = m["isa"]?.string else { return nil }
        self.init(cpu: cpu, isa: isa, blas: m["blas"]?.string ?? "?", threads: m["threads"]?.int ?? 0, os: m["os"]?.string ?? "?")
    }

    /// The kernel's name and release (uname).
    static let operatingSystem: String = {
        var u = utsname()
        guard uname(&u) == 0 else { return "unknown" }
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return "\(field(u.sysname)) \(field(u.release))"
    }()
}
