import CNifti
import CZlib
import Foundation
import Storage
import StageConfig

/// What can be wrong with a NIfTI file; every case names the file.
public enum NIfTIError: Error, CustomStringConvertible, Equatable {
    case missing(String)
    /// Not a NIfTI-1/NIfTI-2 (or ANALYZE) header; `detail` is what libnifti said, if anything.
    case notNIfTI(String, detail: String)
    /// An ANALYZE 7.5 file: it records no orientation, so left and right are unknown.
    case analyze(String)
    /// The file (or the gzip stream) holds fewer voxel bytes than the header promises.
    case truncated(String, expected: Int, actual: Int)
    /// The gzip stream is damaged or ends early (zlib's message).
    case corruptStream(String, String)
    case unsupportedDatatype(String, String)
    case notThreeD(String, dims: [Int])
    case tooLarge(String, voxels: Int)
    case badOrientation(String)
    case mismatch(image: String, label: String, detail: String)
    case writeFailed(String)

    public var description: String {
        switch self {
        case .missing(let f): return "\(f): no such file"
        case .notNIfTI(let f, let d): return "\(f): not a NIfTI file (\(d))"
        case .analyze(let f):
            return "\(f): looks like an ANALYZE 7.5 file (no NIfTI magic); it is refused because ANALYZE records no orientation, "
                + "so left and right could be swapped without a word. Convert it to NIfTI, or state its orientation in the spec "
                + "(data.source.analyze_orientation, e.g. LAS) or with --analyze-orientation"
        case .truncated(let f, let expected, let actual):
            return "\(f): truncated: the header promises \(expected) bytes of voxel data, the file holds \(actual)"
        case .corruptStream(let f, let why): return "\(f): the gzip stream is damaged: \(why)"
        case .unsupportedDatatype(let f, let t): return "\(f): datatype \(t) is not supported (uint8, int8, int16, uint16, int32, float32, float64)"
        case .notThreeD(let f, let dims): return "\(f): expected a 3D volume, found dimensions \(dims)"
        case .tooLarge(let f, let n): return "\(f): \(n) voxels is more than this reader accepts"
        case .badOrientation(let f): return "\(f): its qform/sform does not map the axes onto L-R, P-A, I-S"
        case .mismatch(let i, let l, let d): return "\(l) does not match \(i): \(d)"
        case .writeFailed(let f): return "\(f): could not be written"
        }
    }
}

/// A NIfTI header: the volume's geometry and how its voxels are stored.
public struct NIfTIHeader: Sendable {
    public var path: String
    public var format: NIfTIFormat
    /// Voxels along the file's i, j, k axes.
    public var fileDims: [Int]
    /// Volumes along the fourth axis (modalities).
    public var channels: Int
    /// Millimetres per voxel along each canonical (RAS) axis.
    public var spacing: [Double]
    public var orientation: Orientation
    public var datatype: String
    var voxelType: VoxelType
    var dataFile: String
    var dataOffset: Int
    var swapped: Bool
    var scaling: (Float, Float)?
    /// When the qform and the sform are both set and map some voxel corner more than a tenth
    /// of a voxel apart: how far, in mm (the sform, which the NIfTI standard and nibabel
    /// prefer, is the one used).
    public var transformsDisagree: Double?

    /// Voxels along each canonical axis.
    public var dims: [Int] { orientation.fileAxis.map { fileDims[$0] } }
    public var voxels: Int { fileDims.reduce(1, *) * channels }
    /// Where the canonical voxel grid lies in the world (mm): its origin and axes.
    public var grid: Grid { Grid(dims: dims, spacing: spacing, orientation: orientation) }
}

/// The header formats nifti2_io reads.
public enum NIfTIFormat: Sendable, Equatable {
    case nifti1, nifti2, analyze
}

/// NIfTI-1 and NIfTI-2 (.nii, .nii.gz) through libnifti2's nifti2_io: its header
/// parsing and orientation, with its NULL-and-stderr error style turned into typed
/// errors. The voxel payload is read here through zlib with an exact count and to
/// the end of the gzip stream (its CRC), so a short file is refused, never padded.
public enum NIfTI {
    public static let maxVoxels = 1 << 30

    /// Reads a 3D volume (a 4D file with one time point is accepted) in canonical RAS+ order.
    /// `analyzeOrientation` opts in to ANALYZE 7.5 files, stating the orientation they lack.
    public static func read(_ path: String, analyzeOrientation: AxisOrientation? = nil) throws -> Volume {
        let volumes = try readChannels(path, analyzeOrientation: analyzeOrientation)
        guard volumes.count == 1, let volume = volumes.first else {
            throw NIfTIError.notThreeD(path, dims: (volumes.first?.orientation.fileDims(volumes.first?.dims ?? []) ?? []) + [volumes.count])
        }
        return volume
    }

    /// Reads a 3D volume, or a 4D one whose fourth axis is the modality (MSD's multi-modal
    /// images: BrainTumour's 4, Prostate's 2), as one volume per modality in canonical RAS+ order.
    public static func readChannels(_ path: String, analyzeOrientation: AxisOrientation? = nil) throws -> [Volume] {
        let h = try header(path, analyzeOrientation: analyzeOrientation)
        let bytes = try payload(h.dataFile, offset: h.dataOffset, count: h.voxels * h.voxelType.size, reported: path)
        var values = h.voxelType.floats(bytes, count: h.voxels, swapped: h.swapped)
        // libnifti leaves scaling to the caller; slope 0 means "no scaling".
        if let (a, b) = h.scaling {
            for i in 0..<h.voxels { values[i] = values[i] * a + b }
        }
        let perChannel = h.fileDims.reduce(1, *)
        return (0..<h.channels).map { c in
            let (dims3, canonical) = h.orientation.canonical(Array(values[(c * perChannel)..<((c + 1) * perChannel)]), fileDims: h.fileDims)
            return Volume(dims: dims3, spacing: h.spacing, data: canonical, datatype: h.datatype, orientation: h.orientation)
        }
    }

    /// A file's header, without its voxels: what a dataset check reads of every case.
    public static func header(_ path: String, analyzeOrientation: AxisOrientation? = nil) throws -> NIfTIHeader {
        guard FileManager.default.fileExists(atPath: path) else { throw NIfTIError.missing(path) }
        let fileFormat = try format(of: path)
        if fileFormat == .analyze, analyzeOrientation == nil { throw NIfTIError.analyze(path) }
        let (header, said) = LibNifti.quietly { nifti_image_read(path, 0) }
        guard let header else { throw NIfTIError.notNIfTI(path, detail: said.isEmpty ? "bad or missing header" : said) }
        defer { nifti_image_free(header) }
        let nim = header.pointee
        let ndim = Int(nim.ndim)
        let dims = withUnsafeBytes(of: nim.dim) { Array($0.bindMemory(to: Int64.self)) }.map { Int($0) }
        guard (1...7).contains(ndim), dims.count == 8 else { throw NIfTIError.notNIfTI(path, detail: "dim[0] is \(ndim)") }
        let shape = Array(dims[1...ndim])
        guard shape.allSatisfy({ $0 >= 1 }) else { throw NIfTIError.notNIfTI(path, detail: "dimensions \(shape)") }
        guard ndim >= 3, shape.dropFirst(4).allSatisfy({ $0 == 1 }) else { throw NIfTIError.notThreeD(path, dims: shape) }
        var voxels = 1
        for d in shape {
            let (p, overflow) = voxels.multipliedReportingOverflow(by: d)
            guard !overflow, p <= maxVoxels else { throw NIfTIError.tooLarge(path, voxels: overflow ? Int.max : p) }
            voxels = p
        }
        let typeName = String(cString: nifti_datatype_string(nim.datatype))
        guard let kind = VoxelType(datatype: nim.datatype), Int(nim.nbyper) == kind.size else {
            throw NIfTIError.unsupportedDatatype(path, typeName)
        }
        guard nim.iname_offset >= 0, let iname = nim.iname.map({ String(cString: $0) }) else {
            throw NIfTIError.notNIfTI(path, detail: "vox_offset \(nim.iname_offset)")
        }
        let pixdim = withUnsafeBytes(of: nim.pixdim) { Array($0.bindMemory(to: Double.self)) }
        let orientation: Orientation
        var disagreement: Double?
        if fileFormat == .analyze, let stated = analyzeOrientation {
            orientation = Orientation.stated(stated, spacing: Array(pixdim[1...3]).map(abs))
        } else {
            // The NIfTI standard's rule, as nibabel applies it: the sform when its code is set, else the qform.
            let matrix = nim.sform_code > 0 ? nim.sto_xyz : nim.qto_xyz
            if nim.sform_code > 0, nim.qform_code > 0 {
                let apart = Self.distance(nim.sto_xyz, nim.qto_xyz, corner: Array(shape.prefix(3)))
                if apart > 0.1 * (Array(pixdim[1...3]).map(abs).filter { $0 > 0 }.min() ?? 1) { disagreement = apart }
            }
            var codes: (Int32, Int32, Int32) = (0, 0, 0)
            nifti_dmat44_to_orientation(matrix, &codes.0, &codes.1, &codes.2)
            let affine = withUnsafeBytes(of: matrix.m) { raw -> [[Double]] in
                let m = Array(raw.bindMemory(to: Double.self))
                return (0..<4).map { r in (0..<4).map { c in m[r * 4 + c] } }
            }
            guard affine.joined().allSatisfy(\.isFinite),
                  let o = Orientation.from(codes: [codes.0, codes.1, codes.2], affine: affine,
                                           qformCode: Int32(nim.qform_code), sformCode: Int32(nim.sform_code)) else {
                throw NIfTIError.badOrientation(path)
            }
            orientation = o
        }
        let scaling: (Float, Float)? = nim.scl_slope != 0 && nim.scl_slope.isFinite && nim.scl_inter.isFinite && (nim.scl_slope != 1 || nim.scl_inter != 0)
            ? (Float(nim.scl_slope), Float(nim.scl_inter)) : nil
        return NIfTIHeader(path: path, format: fileFormat, fileDims: Array(shape.prefix(3)), channels: shape.count > 3 ? shape[3] : 1,
                           spacing: orientation.fileAxis.map { abs(pixdim[$0 + 1]) }, orientation: orientation, datatype: typeName,
                           voxelType: kind, dataFile: iname, dataOffset: Int(nim.iname_offset), swapped: nim.byteorder != nifti_short_order(),
                           scaling: scaling, transformsDisagree: disagreement)
    }

    /// The largest distance (mm) between where two transforms put the corners of a grid of `corner` voxels.
    static func distance(_ a: nifti_dmat44, _ b: nifti_dmat44, corner: [Int]) -> Double {
        func rows(_ m: nifti_dmat44) -> [Double] { withUnsafeBytes(of: m.m) { Array($0.bindMemory(to: Double.self)) } }
        let (ma, mb) = (rows(a), rows(b))
        var worst = 0.0
        for bits in 0..<8 {
            let v = (0..<3).map { bits & (1 << $0) != 0 ? Double(max(0, corner[$0] - 1)) : 0 }
            var d2 = 0.0
            for r in 0..<3 {
                let pa = ma[r * 4] * v[0] + ma[r * 4 + 1] * v[1] + ma[r * 4 + 2] * v[2] + ma[r * 4 + 3]
                let pb = mb[r * 4] * v[0] + mb[r * 4 + 1] * v[1] + mb[r * 4 + 2] * v[2] + mb[r * 4 + 3]
                d2 += (pa - pb) * (pa - pb)
            }
            worst = max(worst, d2.squareRoot())
        }
        return worst
    }

    /// Exactly `count` bytes at `offset` of `file` (plain or gzip), then the rest of the
    /// stream to its end, so that zlib checks the trailer. Memory grows with what is
    /// actually read: a header promising gigabytes of a short file allocates little.
    static func payload(_ file: String, offset: Int, count: Int, reported path: String) throws -> [UInt8] {
        guard let gz = gzopen(file, "rb") else { throw NIfTIError.missing(file) }
        defer { gzclose(gz) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        func streamError() -> String? {
            var code: Int32 = 0
            let message = gzerror(gz, &code).map { String(cString: $0) } ?? ""
            return code == Z_OK || code == Z_STREAM_END ? nil : (message.isEmpty ? "zlib error \(code)" : message)
        }
        // Skip to the voxels by reading (a seek past the end of a gzip stream is not an error).
        var skipped = 0
        while skipped < offset {
            let n = chunk.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32(min($0.count, offset - skipped))) }
            if n < 0 { throw NIfTIError.corruptStream(path, streamError() ?? "read error") }
            if n == 0 { throw NIfTIError.truncated(path, expected: count, actual: 0) }
            skipped += Int(n)
        }
        while out.count < count {
            let want = min(chunk.count, count - out.count)
            let n = chunk.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32(want)) }
            if n < 0 { throw NIfTIError.corruptStream(path, streamError() ?? "read error") }
            if n == 0 { break }
            out.append(contentsOf: chunk.prefix(Int(n)))
        }
        if out.count < count {
            if let error = streamError(), out.count == 0 { throw NIfTIError.corruptStream(path, error) }
            throw NIfTIError.truncated(path, expected: count, actual: out.count)
        }
        // The end of the stream: a gzip file cut after the voxels (no CRC) is damaged too.
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw NIfTIError.corruptStream(path, streamError() ?? "read error") }
            if n == 0 { break }
        }
        if let error = streamError() { throw NIfTIError.corruptStream(path, error) }
        return out
    }

    /// Which header a file has: sizeof_hdr 540 with magic `n+2` is NIfTI-2; 348 with
    /// `n+1` or `ni1` is NIfTI-1; 348 without a magic is ANALYZE 7.5. Read here from the
    /// (possibly gzipped) bytes rather than from libnifti, which may take either for the other.
    public static func format(of path: String) throws -> NIfTIFormat {
        guard let gz = gzopen(path, "rb") else { throw NIfTIError.missing(path) }
        defer { gzclose(gz) }
        var head = [UInt8](repeating: 0, count: 540)
        let n = Int(head.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) })
        guard n >= 4 else { throw NIfTIError.notNIfTI(path, detail: "\(max(0, n)) bytes") }
        let size = head.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        func magic(at offset: Int) -> String {
            guard n >= offset + 3 else { return "" }
            return String(decoding: head[offset..<(offset + 3)], as: UTF8.self)
        }
        switch (size == 348 || size.byteSwapped == 348, size == 540 || size.byteSwapped == 540) {
        case (true, _): return ["n+1", "ni1"].contains(magic(at: 344)) ? .nifti1 : .analyze
        case (_, true) where ["n+2", "ni2"].contains(magic(at: 4)): return .nifti2
        default: throw NIfTIError.notNIfTI(path, detail: "the first field, sizeof_hdr, is \(size); NIfTI-1 has 348, NIfTI-2 540")
        }
    }

    /// Writes a canonical-order volume as NIfTI-1 in the geometry of its source (axis
    /// order, qform and sform), so that a prediction overlays its image.
    public static func write(_ volume: Volume, to path: String, datatype: Int32 = Int32(DT_UINT8)) throws {
        try write(channels: [volume], to: path, datatype: datatype)
    }

    /// Writes volumes of one geometry as one file: 3D for one, 4D with the modalities on
    /// the fourth axis for several (MSD's layout for multi-modal images).
    public static func write(channels: [Volume], to path: String, datatype: Int32 = Int32(DT_UINT8)) throws {
        guard let volume = channels.first else { throw NIfTIError.writeFailed(path + " (no volume)") }
        var values: [Float] = [], fileDims: [Int] = []
        for v in channels {
            guard v.dims == volume.dims else { throw NIfTIError.writeFailed(path + " (channels differ in size)") }
            let (d, ordered) = v.orientation.fileOrder(v.data, canonicalDims: v.dims)
            fileDims = d
            values += ordered
        }
        var dims: [Int64] = [channels.count > 1 ? 4 : 3, Int64(fileDims[0]), Int64(fileDims[1]), Int64(fileDims[2]), Int64(channels.count), 1, 1, 1]
        let (made, said) = LibNifti.quietly { dims.withUnsafeMutableBufferPointer { nifti_make_new_nim($0.baseAddress, datatype, 1) } }
        guard let image = made else { throw NIfTIError.writeFailed(path + (said.isEmpty ? "" : " (\(said))")) }
        defer { nifti_image_free(image) }
        var spacingFile = [1.0, 1.0, 1.0]
        for a in 0..<3 { spacingFile[volume.orientation.fileAxis[a]] = volume.spacing[a] }
        image.pointee.dx = spacingFile[0]; image.pointee.dy = spacingFile[1]; image.pointee.dz = spacingFile[2]
        withUnsafeMutableBytes(of: &image.pointee.pixdim) { raw in
            let p = raw.bindMemory(to: Double.self)
            p[1] = spacingFile[0]; p[2] = spacingFile[1]; p[3] = spacingFile[2]
        }
        var m = nifti_dmat44()
        withUnsafeMutableBytes(of: &m.m) { raw in
            let p = raw.bindMemory(to: Double.self)
            for r in 0..<4 { for c in 0..<4 { p[r * 4 + c] = volume.orientation.affine[r][c] } }
        }
        image.pointee.qform_code = max(1, volume.orientation.qformCode)
        image.pointee.sform_code = volume.orientation.sformCode
        image.pointee.qto_xyz = m
        image.pointee.sto_xyz = m
        nifti_dmat44_to_quatern(m, &image.pointee.quatern_b, &image.pointee.quatern_c, &image.pointee.quatern_d,
                                &image.pointee.qoffset_x, &image.pointee.qoffset_y, &image.pointee.qoffset_z,
                                nil, nil, nil, &image.pointee.qfac)
        guard let data = image.pointee.data else { throw NIfTIError.writeFailed(path) }
        let n = values.count
        switch datatype {
        case Int32(DT_UINT8): let p = data.assumingMemoryBound(to: UInt8.self); for i in 0..<n { p[i] = UInt8(clamping: Int(values[i].rounded())) }
        case Int32(DT_INT16): let p = data.assumingMemoryBound(to: Int16.self); for i in 0..<n { p[i] = Int16(clamping: Int(values[i].rounded())) }
        default: let p = data.assumingMemoryBound(to: Float.self); for i in 0..<n { p[i] = values[i] }
        }
        // Written under a temporary name that keeps the extension (libnifti reads the format from it), then renamed.
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(AtomicFile.temporaryMarker.dropFirst())\(getpid())-\(url.lastPathComponent)").path
        try AtomicFile.write(to: path, temporary: temporary) { tmp in
            try FaultInjection.point("write \(path)")
            let (named, _) = LibNifti.quietly { nifti_set_filenames(image, tmp, 0, 1) }
            guard named == 0 else { throw NIfTIError.writeFailed(path) }
            image.pointee.nifti_type = 1  // NIfTI-1, one file: what every other tool reads
            _ = LibNifti.quietly { nifti_image_write(image) }
            guard FileManager.default.fileExists(atPath: tmp) else { throw NIfTIError.writeFailed(path) }
        }
    }
}

extension NIfTI {
    /// Writes a label map (canonical order, whole values) with the header of `source`, byte
    /// for byte but what a label map must change: the datatype (UINT8, or UINT16 above 255),
    /// no scaling (slope 1, intercept 0), the display range, three dimensions (a 4D source's
    /// modalities are not a label's), and no extensions. So the format (NIfTI-1 or NIfTI-2),
    /// byte order, qform and sform with their codes, units, intent and description are the
    /// source's. (libnifti 3.0.1 cannot write a one-file NIfTI-2: the header is patched here,
    /// at the offsets of nifti1.h and nifti2.h.) An ANALYZE source gives NIfTI-1.
    public static func writeLabels(_ volume: Volume, like source: String, to path: String) throws {
        let version = try format(of: source)
        guard version != .analyze else { return try write(volume, to: path, datatype: volume.data.contains { $0 > 255 } ? Int32(DT_UINT16) : Int32(DT_UINT8)) }
        let (fileDims, ordered) = volume.orientation.fileOrder(volume.data, canonicalDims: volume.dims)
        let size = version == .nifti2 ? 540 : 348
        var header = try headerBytes(source, count: size)
        let big = header.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) } != Int32(size)
        func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
            let value = big ? v.bigEndian : v.littleEndian
            withUnsafeBytes(of: value) { header.replaceSubrange(offset..<(offset + MemoryLayout<T>.size), with: $0) }
        }
        func putFloat(_ v: Double, at offset: Int) {
            if version == .nifti2 { put(v.bitPattern, at: offset) } else { put(Float(v).bitPattern, at: offset) }
        }
        // The source's own dimensions must be the label map's.
        let sourceDims: [Int] = (1...3).map { i in
            header.withUnsafeBytes { raw -> Int in
                version == .nifti2 ? Int(big ? Int64(bigEndian: raw.loadUnaligned(fromByteOffset: 16 + 8 * i, as: Int64.self)) : Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 16 + 8 * i, as: Int64.self)))
                                   : Int(big ? Int16(bigEndian: raw.loadUnaligned(fromByteOffset: 40 + 2 * i, as: Int16.self)) : Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 40 + 2 * i, as: Int16.self)))
            }
        }
        guard sourceDims == fileDims else {
            throw NIfTIError.mismatch(image: source, label: path, detail: "the label map has dimensions \(fileDims), its source \(sourceDims)")
        }
        let largest = ordered.max() ?? 0
        let wide = largest > 255
        let dims = [3] + fileDims + [1, 1, 1, 1]
        if version == .nifti2 {
            for (i, d) in dims.enumerated() { put(Int64(d), at: 16 + 8 * i) }
            put(Int16(wide ? DT_UINT16 : DT_UINT8), at: 12)
            put(Int16(wide ? 16 : 8), at: 14)
            put(Int64(size + 4), at: 168)
            putFloat(1, at: 176)
            putFloat(0, at: 184)
            putFloat(Double(largest), at: 192)
            putFloat(0, at: 200)
        } else {
            for (i, d) in dims.enumerated() { put(Int16(d), at: 40 + 2 * i) }
            put(Int16(wide ? DT_UINT16 : DT_UINT8), at: 70)
            put(Int16(wide ? 16 : 8), at: 72)
            put(Float(size + 4).bitPattern, at: 108)
            putFloat(1, at: 112)
            putFloat(0, at: 116)
            putFloat(Double(largest), at: 124)
            putFloat(0, at: 128)
        }
        var bytes = header + [0, 0, 0, 0]  // no extensions
        bytes.reserveCapacity(bytes.count + ordered.count * (wide ? 2 : 1))
        for v in ordered {
            let n = Int(v.rounded())
            if wide {
                let w = UInt16(clamping: n)
                withUnsafeBytes(of: big ? w.bigEndian : w.littleEndian) { bytes.append(contentsOf: $0) }
            } else {
                bytes.append(UInt8(clamping: n))
            }
        }
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(AtomicFile.temporaryMarker.dropFirst())\(getpid())-\(url.lastPathComponent)").path
        try AtomicFile.write(to: path, temporary: temporary) { tmp in
            try FaultInjection.point("write \(path)")
            guard let gz = gzopen(tmp, path.hasSuffix(".gz") ? "wb6" : "wbT") else { throw StorageError.system(errno, "cannot create \(tmp)") }
            var written = 0
            while written < bytes.count {
                let n = bytes.withUnsafeBytes { raw in gzwrite(gz, raw.baseAddress?.advanced(by: written), UInt32(min(1 << 24, bytes.count - written))) }
                guard n > 0 else {
                    gzclose(gz)
                    throw StorageError.system(errno == 0 ? EIO : errno, "cannot write \(path)")
                }
                written += Int(n)
            }
            guard gzclose(gz) == Z_OK else { throw StorageError.system(errno == 0 ? EIO : errno, "cannot write \(path)") }
        }
    }

    /// The first `count` bytes of a (possibly gzipped) file: its raw header.
    static func headerBytes(_ path: String, count: Int) throws -> [UInt8] {
        guard let gz = gzopen(path, "rb") else { throw NIfTIError.missing(path) }
        defer { gzclose(gz) }
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32(count)) }
        guard n == count else { throw NIfTIError.notNIfTI(path, detail: "a header of \(max(0, n)) bytes, \(count) expected") }
        return bytes
    }
}

/// The voxel types read, with their sizes and conversion to float.
enum VoxelType {
    case uint8, int8, int16, uint16, int32, float32, float64

    init?(datatype: Int32) {
        switch datatype {
        case Int32(DT_UINT8): self = .uint8
        case Int32(DT_INT8): self = .int8
        case Int32(DT_INT16): self = .int16
        case Int32(DT_UINT16): self = .uint16
        case Int32(DT_INT32): self = .int32
        case Int32(DT_FLOAT32): self = .float32
        case Int32(DT_FLOAT64): self = .float64
        default: return nil
        }
    }

    var size: Int {
        switch self {
        case .uint8, .int8: return 1
        case .int16, .uint16: return 2
        case .int32, .float32: return 4
        case .float64: return 8
        }
    }

    /// The bytes as floats, byte-swapped first when the file's order is not ours.
    func floats(_ bytes: [UInt8], count n: Int, swapped: Bool) -> [Float] {
        var raw = bytes
        if swapped, size > 1 {
            for i in 0..<n { raw[(i * size)..<((i + 1) * size)].reverse() }
        }
        return raw.withUnsafeBytes { b -> [Float] in
            func map<T>(_ type: T.Type, _ f: (T) -> Float) -> [Float] {
                (0..<n).map { f(b.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
            }
            switch self {
            case .uint8: return map(UInt8.self) { Float($0) }
            case .int8: return map(Int8.self) { Float($0) }
            case .int16: return map(Int16.self) { Float($0) }
            case .uint16: return map(UInt16.self) { Float($0) }
            case .int32: return map(Int32.self) { Float($0) }
            case .float32: return map(Float.self) { $0 }
            case .float64: return map(Double.self) { Float($0) }
            }
        }
    }
}
