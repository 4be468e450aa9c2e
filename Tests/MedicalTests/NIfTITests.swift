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
        let image = Phantom.patient(TestSettings.phantom(size: 32, slices: 6), index: 1, hard: false).0  // stored LPS
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
        try Data((0..<400).map { UInt8($0 % 251) }).write(to: URL(fileURLWithPath: junk))
        #expect(throws: NIfTIError.notNIfTI(junk)) { try NIfTI.read(junk) }
        // A real file cut short: the header promises more voxels than follow.
        let image = Phantom.patient(TestSettings.phantom(size: 32, slices: 6), index: 0, hard: false).0
        let full = temporary("full.nii"), cut = temporary("cut.nii")
        try NIfTI.write(image, to: full, datatype: 4)
        let data = try Data(contentsOf: URL(fileURLWithPath: full))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        #expect(throws: NIfTIError.truncated(cut)) { try NIfTI.read(cut) }
        // A NIfTI-2 header (sizeof_hdr 540) is refused clearly.
        var two = Data(count: 600)
        two.replaceSubrange(0..<4, with: withUnsafeBytes(of: Int32(540).littleEndian) { Data($0) })
        let n2 = temporary("two.nii")
        try two.write(to: URL(fileURLWithPath: n2))
        #expect(throws: NIfTIError.nifti2(n2)) { try NIfTI.read(n2) }
        for f in [junk, full, cut, n2] { try? FileManager.default.removeItem(atPath: f) }
    }

    @Test func fourDimensionalVolumesAreRefused() throws {
        // Patch the dims of a valid header to a 4D shape with 2 time points.
        let image = Phantom.patient(TestSettings.phantom(size: 32, slices: 4), index: 0, hard: false).0
        let path = temporary("t.nii")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try NIfTI.write(image, to: path, datatype: 4)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        // dim[0] at byte 40, dim[3] at 46, dim[4] at 48 (int16, little endian): 4 x (32, 32, 2, 2).
        data.replaceSubrange(40..<42, with: [4, 0])
        data.replaceSubrange(46..<48, with: [2, 0])
        data.replaceSubrange(48..<50, with: [2, 0])
        try data.write(to: URL(fileURLWithPath: path))
        #expect(throws: NIfTIError.notThreeD(path, dims: [32, 32, 2, 2])) { try NIfTI.read(path) }
    }
}
