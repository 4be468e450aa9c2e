import CZlib
import Foundation
import Medical
import Testing

/// Hostile NIfTI headers: seeded corruptions of a valid file (every header field set
/// to extreme, negative, NaN and zero values; truncation at every 16th byte of the
/// header; vox_offset past the end; unknown datatypes; dims whose product overflows),
/// plain and gzipped. Each is read in-process (a typed error or a volume, fast) and
/// all of them by one `distill data inspect` process (exit 1, never a signal, with a
/// bounded peak memory).
@Suite(.serialized) struct NIfTIFuzzTests {
    /// Offsets and element types of the NIfTI-1 header's numeric fields.
    enum Field { case i8, i16, i32, f32 }
    static let fields: [(String, Int, Field, Int)] = [
        ("sizeof_hdr", 0, .i32, 1), ("dim_info", 39, .i8, 1), ("dim", 40, .i16, 8), ("intent_p", 56, .f32, 3),
        ("intent_code", 68, .i16, 1), ("datatype", 70, .i16, 1), ("bitpix", 72, .i16, 1), ("slice_start", 74, .i16, 1),
        ("pixdim", 76, .f32, 8), ("vox_offset", 108, .f32, 1), ("scl_slope", 112, .f32, 1), ("scl_inter", 116, .f32, 1),
        ("slice_end", 120, .i16, 1), ("slice_code", 122, .i8, 1), ("xyzt_units", 123, .i8, 1), ("cal_max", 124, .f32, 1),
        ("cal_min", 128, .f32, 1), ("slice_duration", 132, .f32, 1), ("toffset", 136, .f32, 1), ("glmax", 140, .i32, 2),
        ("qform_code", 252, .i16, 1), ("sform_code", 254, .i16, 1), ("quatern", 256, .f32, 6), ("srow", 280, .f32, 12),
        ("magic", 344, .i32, 1),
    ]

    static func values(_ f: Field) -> [[UInt8]] {
        switch f {
        case .i8: return [[0], [0xFF], [0x7F]]
        case .i16: return [Int16.max, Int16.min, -1, 0, 1].map { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        case .i32: return [Int32.max, Int32.min, -1, 0, 540].map { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        case .f32: return [Float.nan, .infinity, -.infinity, 0, -1, 1e30, -1e30, 1e-30].map { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        }
    }

    /// The valid file every mutant starts from: a 16 x 16 x 4 int16 phantom volume.
    static func original() throws -> [UInt8] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("distill-fuzz-base-\(getpid()).nii").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try NIfTI.write(Phantom.patient(TestSettings.phantom(size: 16, slices: 4), index: 0, hard: false).0[0], to: path, datatype: 4)
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Every mutant, named.
    static func mutants(_ base: [UInt8]) -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        for (name, offset, type, count) in fields {
            let size = type == .i8 ? 1 : type == .i16 ? 2 : 4
            for element in 0..<count {
                for value in values(type) {
                    var m = base
                    m.replaceSubrange((offset + element * size)..<(offset + (element + 1) * size), with: value)
                    out.append(("\(name)[\(element)]=\(value)", m))
                }
            }
        }
        for cut in stride(from: 0, through: 352, by: 16) { out.append(("truncated at \(cut)", Array(base.prefix(cut)))) }
        for offset in [Float(1e6), 1e9, 353, 351] {
            var m = base
            m.replaceSubrange(108..<112, with: withUnsafeBytes(of: offset.bitPattern.littleEndian) { Array($0) })
            out.append(("vox_offset \(offset)", m))
        }
        for datatype in [Int16(1234), 0, 128, 1536, 2304] {
            var m = base
            m.replaceSubrange(70..<72, with: withUnsafeBytes(of: datatype.littleEndian) { Array($0) })
            out.append(("datatype \(datatype)", m))
        }
        var overflow = base
        for (i, d) in [Int16(7), 32767, 32767, 32767, 32767, 32767, 32767, 32767].enumerated() {
            overflow.replaceSubrange((40 + 2 * i)..<(42 + 2 * i), with: withUnsafeBytes(of: d.littleEndian) { Array($0) })
        }
        out.append(("dims overflow", overflow))
        // Seeded random corruption of 1 to 8 header bytes.
        var state: UInt64 = 2026
        func next() -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33)
        }
        for i in 0..<300 {
            var m = base
            for _ in 0..<(1 + next() % 8) { m[next() % 352] = UInt8(next() % 256) }
            out.append(("random \(i)", m))
        }
        return out
    }

    static func gzip(_ bytes: [UInt8], to path: String) {
        guard let gz = gzopen(path, "wb") else { return }
        _ = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        gzclose(gz)
    }

    /// Writes every mutant, plain and gzipped, into a fresh folder.
    static func files() throws -> (directory: String, files: [(String, String)]) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("distill-fuzz-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var files: [(String, String)] = []
        for (i, (name, bytes)) in mutants(try original()).enumerated() {
            let plain = "\(dir)/m\(i).nii", packed = "\(dir)/m\(i).nii.gz"
            try Data(bytes).write(to: URL(fileURLWithPath: plain))
            gzip(bytes, to: packed)
            files += [(name, plain), (name + " (gzip)", packed)]
        }
        return (dir, files)
    }

    @Test func everyCorruptHeaderIsAnErrorOrAVolumeNeverACrash() throws {
        let (dir, files) = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(files.count > 1000)
        // These promise what the file cannot hold, or nothing readable: a reader must refuse them.
        let mustRefuse = ["truncated at", "vox_offset 1000000", "vox_offset 1e+09", "vox_offset 353", "datatype 1234", "datatype 0 ",
                          "dims overflow", "sizeof_hdr[0]"]
        var refused = Set<String>()
        for (name, path) in files {
            let start = Date()
            do {
                let v = try NIfTI.read(path)
                #expect(v.data.count == v.dims.reduce(1, *), "\(name)")
            } catch let error as NIfTIError {
                refused.insert(name)
                let message = "\(error)"
                #expect(message.hasPrefix(path + ":") || message.contains(path), "\(name): \(message)")
            } catch {
                Issue.record("\(name): an error that is not a NIfTIError: \(error)")
            }
            #expect(Date().timeIntervalSince(start) < 30, "\(name) took \(Date().timeIntervalSince(start)) s")  // a hang guard, not a speed claim (CI is a busy machine)
        }
        for (name, _) in files where mustRefuse.contains(where: { (name + " ").hasPrefix($0) }) {
            #expect(refused.contains(name), "\(name) was read as a volume")
        }
    }

    /// All mutants through the CLI in one process: it ends with exit 1 (problems found),
    /// not a signal, and its peak memory stays far below what the headers claim.
    @Test func theCLIReadsThemAllWithBoundedMemory() throws {
        let (dir, files) = try Self.files()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let binary = ProcessRunner.distill
        try #require(FileManager.default.fileExists(atPath: binary), "build distill first")
        let run = try ProcessRunner.run([binary, "data", "inspect"] + files.map(\.1), output: dir + "/out.txt")
        #expect(run.exited && run.status == 1, "exit \(run.status), signalled: \(!run.exited)")
        #expect(run.peakMiB < 256, "peak RSS \(run.peakMiB) MiB")
        let output = try String(contentsOfFile: dir + "/out.txt", encoding: .utf8)
        #expect(output.contains("problems"))
        #expect(!output.contains("** ERROR"), "libnifti printed its own errors")
    }
}

/// Runs a child and reads its exit and its own peak memory. Linux carries a parent's
/// high-water mark into a child it spawns, and this test process is large, so a small
/// Python process spawns the child and reports its rusage.
enum ProcessRunner {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static var distill: String { repository + "/.build/debug/distill" }

    struct Result { var exited: Bool; var status: Int32; var peakMiB: Double }

    static let measure = """
        import resource, subprocess, sys
        with open(sys.argv[1], "w") as out:
            p = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.STDOUT)
        print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        """

    static func run(_ arguments: [String], output: String) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", measure, output] + arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let fields = text.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard p.terminationStatus == 0, fields.count == 2 else { throw CocoaError(.executableLoad) }
        // subprocess reports death by signal as a negative return code.
        return Result(exited: fields[0] >= 0, status: Int32(abs(fields[0])), peakMiB: Double(fields[1]) / 1024)
    }
}
