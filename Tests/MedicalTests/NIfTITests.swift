import Foundation
import Medical
import StageConfig
import Testing

/// NIfTI files written by others (Debian's mricron-data), checked against what
/// nibabel reports for them (values recorded in the comments' commands).
@Suite struct NIfTITests {
    static let templates = "/usr/share/mricron/templates"
    static var available: Bool { FileManager.default.fileExists(atPath: templates + "/ch2.nii.gz") }

    func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("distill-\(UUID().uuidString)-\(name)").path
    }

    /// A phantom patient written as an uncompressed NIfTI-1 file at `path`, then its header bytes patched.
    func writePatched(_ path: String, size: Int, slices: Int, _ patches: [(offset: Int, bytes: [UInt8])]) throws {
        let image = Phantom.patient(TestSettings.phantom(size: size, slices: slices), index: 0, hard: false).0[0]
        try NIfTI.write(image, to: path, datatype: 4)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        for p in patches { data.replaceSubrange(p.offset..<(p.offset + p.bytes.count), with: p.bytes) }
        try data.write(to: URL(fileURLWithPath: path))
    }

    // python: im = nib.load(f); im.shape, im.header.get_data_dtype(), im.header.get_zooms(), nib.aff2axcodes(im.affine)
    @Test(.enabled(if: available, "needs Debian's mricron-data (make test installs it)"))
    func readsAnMRIVolumeWrittenByOthers() throws {
        let v = try NIfTI.read(Self.templates + "/ch2.nii.gz")
        #expect(v.dims == [181, 217, 181])
        #expect(v.datatype == "UINT8")
        #expect(v.spacing == [1, 1, 1])
        #expect(v.orientation.code == "RAS")
        #expect(v[90, 108, 90] == 33)      // np.asarray(im.dataobj)[90, 108, 90]
        #expect(v[60, 120, 80] == 102)
        #expect(v[120, 100, 60] == 86)
        #expect(v.data.reduce(0.0) { $0 + Double($1) } == 317_151_210)
    }

    @Test(.enabled(if: available, "needs Debian's mricron-data"))
    func readsLabelMaps() throws {
        let aal = try NIfTI.read(Self.templates + "/aal.nii.gz")
        #expect(aal[60, 120, 80] == 73 && aal[120, 100, 60] == 38)
        #expect(aal.data.filter { $0 == 1 }.count == 28_174)
        #expect(aal.data.filter { $0 == 116 }.count == 874)
        let jhu = try NIfTI.read(Self.templates + "/JHU-WhiteMatter-labels-2mm.nii.gz")
        #expect(jhu.dims == [91, 109, 91] && jhu.spacing == [2, 2, 2])
        #expect(jhu.data.filter { $0 == 6 }.count == 81)
        #expect(jhu.orientation.affine[0][3] == -90 && jhu.orientation.affine[1][3] == -126)
    }

    @Test func writesAndReadsBackInAnyStoredOrientation() throws {
        let image = Phantom.patient(TestSettings.phantom(size: 32, slices: 6), index: 1, hard: false).0[0]  // stored LPS
        #expect(image.orientation.code == "LPS")
        let path = temporary("lps.nii.gz")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try NIfTI.write(image, to: path, datatype: 4)
        let back = try NIfTI.read(path)
        #expect(back.dims == image.dims)
        #expect(back.orientation.code == "LPS")
        #expect(back.data == image.data)
        #expect(back.datatype == "INT16")
    }

    @Test func badFilesGetTypedErrorsThatNameTheFile() throws {
        #expect(throws: NIfTIError.missing("/nonexistent.nii.gz")) { try NIfTI.read("/nonexistent.nii.gz") }
        let junk = temporary("junk.nii")
        defer { try? FileManager.default.removeItem(atPath: junk) }
        try Data((0..<400).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: junk))
        #expect { try NIfTI.read(junk) } throws: { error in
            guard case NIfTIError.notNIfTI(let f, let detail) = error else { return false }
            return f == junk && !detail.isEmpty
        }
        // A real file cut short: the header promises more voxels than follow.
        let image = Phantom.patient(TestSettings.phantom(size: 32, slices: 6), index: 0, hard: false).0[0]
        let full = temporary("full.nii"), cut = temporary("cut.nii")
        defer { for f in [full, cut] { try? FileManager.default.removeItem(atPath: f) } }
        try NIfTI.write(image, to: full, datatype: 4)
        let data = try Data(contentsOf: URL(fileURLWithPath: full))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        #expect(throws: NIfTIError.truncated(cut, expected: 32 * 32 * 6 * 2, actual: data.count / 2 - 352)) { try NIfTI.read(cut) }
    }

    /// A .nii.gz whose gzip stream is cut short (within the voxels, or only its trailer)
    /// is refused with the bytes expected and found; libnifti would read zeros instead.
    @Test func aTruncatedGzipStreamIsRefused() throws {
        let image = Phantom.patient(TestSettings.phantom(size: 32, slices: 6), index: 0, hard: false).0[0]
        let full = temporary("full.nii.gz"), cut = temporary("cut.nii.gz"), trailer = temporary("trailer.nii.gz")
        defer { for f in [full, cut, trailer] { try? FileManager.default.removeItem(atPath: f) } }
        try NIfTI.write(image, to: full, datatype: 4)
        let data = try Data(contentsOf: URL(fileURLWithPath: full))
        try data.prefix(data.count * 2 / 3).write(to: URL(fileURLWithPath: cut))
        #expect { try NIfTI.read(cut) } throws: { error in
            guard case NIfTIError.truncated(let f, let expected, let actual) = error else { return false }
            return f == cut && expected == 32 * 32 * 6 * 2 && actual < expected
        }
        // Only the 8-byte trailer (CRC and size) missing: every voxel is there, the stream is not whole.
        try data.prefix(data.count - 8).write(to: URL(fileURLWithPath: trailer))
        #expect { try NIfTI.read(trailer) } throws: { error in
            if case NIfTIError.corruptStream(let f, _) = error { return f == trailer }
            return false
        }
        #expect(try NIfTI.read(full).data == image.data)
    }

    /// A file without the NIfTI magic is ANALYZE 7.5: no orientation, refused unless stated.
    @Test func analyzeFilesAreRefusedUnlessTheirOrientationIsStated() throws {
        let path = temporary("analyze.nii")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writePatched(path, size: 16, slices: 4, [(344, [0, 0, 0, 0])])  // the magic "n+1\0"
        #expect(throws: NIfTIError.analyze(path)) { try NIfTI.read(path) }
        #expect("\(NIfTIError.analyze(path))".contains("ANALYZE 7.5"))
        #expect("\(NIfTIError.analyze(path))".contains("no orientation"))
        let stated = try NIfTI.read(path, analyzeOrientation: try #require(AxisOrientation("LAS")))
        #expect(stated.orientation.code == "LAS")
        // LAS: the file's i axis runs to the left, so canonical x is i reversed.
        let asRAS = try NIfTI.read(path, analyzeOrientation: try #require(AxisOrientation("RAS")))
        #expect(stated.dims == asRAS.dims)
        let (w, h) = (stated.dims[0], stated.dims[1])
        #expect(stated[0, 3, 1] == asRAS[w - 1, 3, 1] && stated[w - 1, h - 1, 2] == asRAS[0, h - 1, 2])
    }

    @Test func libniftiSaysNothingOnStderrAndItsWordsReachTheError() throws {
        let junk = temporary("junk.nii.gz")
        defer { try? FileManager.default.removeItem(atPath: junk) }
        try Data((0..<1000).map { UInt8(($0 * 7) % 256) }).write(to: URL(fileURLWithPath: junk))
        // Watch our own stderr while libnifti fails on the file.
        let pipe = Pipe()
        let saved = dup(STDERR_FILENO)
        dup2(pipe.fileHandleForWriting.fileDescriptor, STDERR_FILENO)
        let error = #expect(throws: NIfTIError.self) { try NIfTI.read(junk) }
        fflush(nil)
        dup2(saved, STDERR_FILENO)
        close(saved)
        try pipe.fileHandleForWriting.close()
        let printed = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed.isEmpty, "libnifti printed: \(printed)")
        #expect(error.map { "\($0)".hasPrefix(junk + ": not a NIfTI file (") } == true)
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    /// A NIfTI-2 file and its NIfTI-1 twin, both written by nibabel (Fixtures/make_fixtures.py),
    /// read to the same volume, and to what nibabel reads from them.
    @Test func nifti2ReadsEqualToItsNIfTI1TwinAndToNibabel() throws {
        let one = Self.fixtures + "/twin_nifti1.nii.gz", two = Self.fixtures + "/twin_nifti2.nii.gz"
        #expect(try NIfTI.format(of: one) == .nifti1 && NIfTI.format(of: two) == .nifti2)
        let a = try NIfTI.read(one), b = try NIfTI.read(two)
        // NIfTI-1 stores voxel sizes and the affine in float32, NIfTI-2 in float64.
        func close(_ x: [Double], _ y: [Double]) -> Bool { x.count == y.count && zip(x, y).allSatisfy { abs($0 - $1) < 1e-6 } }
        #expect(a.data == b.data && a.dims == b.dims && close(a.spacing, b.spacing))
        #expect(a.orientation.code == b.orientation.code && close(a.orientation.affine.flatMap { $0 }, b.orientation.affine.flatMap { $0 }))
        let expected = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/expected.json"))) as? [String: Any])
        #expect(b.dims == expected["shape"] as? [Int])
        #expect(b.orientation.code == expected["file_axcodes"] as? String)
        let zooms = try #require(expected["zooms"] as? [Double])
        #expect(zip(b.spacing, zooms).allSatisfy { abs($0 - $1) < 1e-6 })
        for v in try #require(expected["voxels"] as? [[Int]]) { #expect(b[v[0], v[1], v[2]] == Float(v[3]), "voxel \(v)") }
        #expect(b.data.reduce(0.0) { $0 + Double($1) } == Double(try #require(expected["sum"] as? Int)))
    }

    @Test func fourDimensionalVolumesAreRefused() throws {
        // Patch the dims of a valid header to a 4D shape with 2 time points.
        let path = temporary("t.nii")
        defer { try? FileManager.default.removeItem(atPath: path) }
        // dim[0] at byte 40, dim[3] at 46, dim[4] at 48 (int16, little endian): 4 x (32, 32, 2, 2).
        try writePatched(path, size: 32, slices: 4, [(40, [4, 0]), (46, [2, 0]), (48, [2, 0])])
        #expect(throws: NIfTIError.notThreeD(path, dims: [32, 32, 2, 2])) { try NIfTI.read(path) }
    }
}
