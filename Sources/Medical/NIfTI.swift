import CNifti
import CZlib
import Foundation

/// What can be wrong with a NIfTI file; every case names the file.
public enum NIfTIError: Error, CustomStringConvertible, Equatable {
    case missing(String)
    case notNIfTI(String)
    case truncated(String)
    case unsupportedDatatype(String, String)
    case notThreeD(String, dims: [Int])
    case tooLarge(String, voxels: Int)
    case badOrientation(String)
    case mismatch(image: String, label: String, detail: String)
    case writeFailed(String)
    case nifti2(String)

    public var description: String {
        switch self {
        case .missing(let f): return "\(f): no such file"
        case .notNIfTI(let f): return "\(f): not a NIfTI file (bad or missing header)"
        case .truncated(let f): return "\(f): truncated: the header promises more voxel data than the file holds"
        case .unsupportedDatatype(let f, let t): return "\(f): datatype \(t) is not supported (uint8, int8, int16, uint16, int32, float32, float64)"
        case .notThreeD(let f, let dims): return "\(f): expected a 3D volume, found dimensions \(dims)"
        case .tooLarge(let f, let n): return "\(f): \(n) voxels is more than this reader accepts"
        case .badOrientation(let f): return "\(f): its qform/sform does not map the axes onto L-R, P-A, I-S"
        case .mismatch(let i, let l, let d): return "\(l) does not match \(i): \(d)"
        case .writeFailed(let f): return "\(f): could not be written"
        case .nifti2(let f): return "\(f): NIfTI-2 files are not supported (libnifti's NIfTI-1 and NIfTI-2 libraries share symbol names); convert to NIfTI-1"
        }
    }
}

/// NIfTI-1 (.nii, .nii.gz) through libnifti: its NULL-and-stderr error style
/// becomes typed errors, its chatter is silenced, C memory is freed with defer.
public enum NIfTI {
    public static let maxVoxels = 1 << 30

    nonisolated(unsafe) private static var quiet = false
    private static func silence() {
        guard !quiet else { return }
        nifti_set_debug_level(0)
        quiet = true
    }

    /// Reads a 3D volume (a 4D file with one time point is accepted) in canonical RAS+ order.
    public static func read(_ path: String) throws -> Volume {
        silence()
        guard FileManager.default.fileExists(atPath: path) else { throw NIfTIError.missing(path) }
        try checkMagic(path)
        // Header first: refuse absurd sizes before libnifti allocates them.
        guard let header = nifti_image_read(path, 0) else { throw NIfTIError.notNIfTI(path) }
        let hdr = header.pointee
        let dims = withUnsafeBytes(of: hdr.dim) { Array($0.bindMemory(to: Int32.self)) }.map { Int($0) }
        let ndim = dims[0]
        nifti_image_free(header)
        guard (1...7).contains(ndim) else { throw NIfTIError.notNIfTI(path) }
        let shape = Array(dims[1...ndim])
        guard shape.allSatisfy({ $0 >= 1 }) else { throw NIfTIError.notNIfTI(path) }
        guard ndim >= 3, shape.dropFirst(3).allSatisfy({ $0 == 1 }) else { throw NIfTIError.notThreeD(path, dims: shape) }
        let voxels = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).partialValue }
        guard voxels > 0, voxels <= maxVoxels else { throw NIfTIError.tooLarge(path, voxels: voxels) }

        guard let image = nifti_image_read(path, 0) else { throw NIfTIError.truncated(path) }
        // libnifti fills a short file's missing voxels with zeros and carries on; refuse it instead.
        let needed = Int(image.pointee.iname_offset) + voxels * Int(image.pointee.nbyper)
        nifti_image_free(image)
        guard try availableBytes(path, atLeast: needed) else { throw NIfTIError.truncated(path) }
        guard let image = nifti_image_read(path, 1) else { throw NIfTIError.truncated(path) }
        defer { nifti_image_free(image) }
        let nim = image.pointee
        guard let data = nim.data else { throw NIfTIError.truncated(path) }
        let n = Int(nim.nvox)
        var values = [Float](repeating: 0, count: n)
        let typeName = String(cString: nifti_datatype_string(nim.datatype))
        switch nim.datatype {
        case Int32(DT_UINT8): let p = data.assumingMemoryBound(to: UInt8.self); for i in 0..<n { values[i] = Float(p[i]) }
        case Int32(DT_INT8): let p = data.assumingMemoryBound(to: Int8.self); for i in 0..<n { values[i] = Float(p[i]) }
        case Int32(DT_INT16): let p = data.assumingMemoryBound(to: Int16.self); for i in 0..<n { values[i] = Float(p[i]) }
        case Int32(DT_UINT16): let p = data.assumingMemoryBound(to: UInt16.self); for i in 0..<n { values[i] = Float(p[i]) }
        case Int32(DT_INT32): let p = data.assumingMemoryBound(to: Int32.self); for i in 0..<n { values[i] = Float(p[i]) }
        case Int32(DT_FLOAT32): let p = data.assumingMemoryBound(to: Float.self); for i in 0..<n { values[i] = p[i] }
        case Int32(DT_FLOAT64): let p = data.assumingMemoryBound(to: Double.self); for i in 0..<n { values[i] = Float(p[i]) }
        default: throw NIfTIError.unsupportedDatatype(path, typeName)
        }
        // libnifti leaves scaling to the caller; slope 0 means "no scaling".
        if nim.scl_slope != 0, nim.scl_slope.isFinite, nim.scl_inter.isFinite, nim.scl_slope != 1 || nim.scl_inter != 0 {
            let a = nim.scl_slope, b = nim.scl_inter
            for i in 0..<n { values[i] = values[i] * a + b }
        }
        let fileDims = Array(shape.prefix(3))
        let pixdim = withUnsafeBytes(of: nim.pixdim) { Array($0.bindMemory(to: Float.self)) }.map { Double($0) }
        let matrix = nim.qform_code > 0 ? nim.qto_xyz : (nim.sform_code > 0 ? nim.sto_xyz : nim.qto_xyz)
        var codes: (Int32, Int32, Int32) = (0, 0, 0)
        nifti_mat44_to_orientation(matrix, &codes.0, &codes.1, &codes.2)
        let affine = withUnsafeBytes(of: matrix.m) { raw -> [[Double]] in
            let m = Array(raw.bindMemory(to: Float.self))
            return (0..<4).map { r in (0..<4).map { c in Double(m[r * 4 + c]) } }
        }
        guard let orientation = Orientation.from(codes: [codes.0, codes.1, codes.2], affine: affine,
                                                 qformCode: nim.qform_code, sformCode: nim.sform_code) else {
            throw NIfTIError.badOrientation(path)
        }
        let (dims3, canonical) = orientation.canonical(values, fileDims: fileDims)
        let spacing = orientation.fileAxis.map { abs(pixdim[$0 + 1]) }
        return Volume(dims: dims3, spacing: spacing, data: canonical, datatype: typeName, orientation: orientation)
    }

    /// Whether the file holds at least `needed` bytes once decompressed. For .gz the
    /// trailer's size field answers quickly; when it says "short" the stream is counted.
    private static func availableBytes(_ path: String, atLeast needed: Int) throws -> Bool {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes?[.size] as? Int) ?? 0
        guard path.hasSuffix(".gz") else { return size >= needed }
        if let handle = FileHandle(forReadingAtPath: path), size >= 4 {
            defer { try? handle.close() }
            try? handle.seek(toOffset: UInt64(size - 4))
            let tail = handle.readData(ofLength: 4)
            if tail.count == 4 {
                let isize = tail.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
                if isize >= needed % (1 << 32) && needed < (1 << 32) { return true }
            }
        }
        guard let gz = gzopen(path, "rb") else { return false }
        defer { gzclose(gz) }
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while total < needed {
            let n = buffer.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n <= 0 { break }
            total += Int(n)
        }
        return total >= needed
    }

    /// NIfTI-1 starts with sizeof_hdr 348; NIfTI-2 with 540 (refused with a clear error).
    private static func checkMagic(_ path: String) throws {
        guard let handle = gzopen(path, "rb") else { throw NIfTIError.notNIfTI(path) }
        defer { gzclose(handle) }
        var first: Int32 = 0
        let got = withUnsafeMutableBytes(of: &first) { gzread(handle, $0.baseAddress, 4) }
        guard got == 4 else { throw NIfTIError.notNIfTI(path) }
        let size = first == 348 || first.byteSwapped == 348 ? 348 : (first == 540 || first.byteSwapped == 540 ? 540 : 0)
        if size == 540 { throw NIfTIError.nifti2(path) }
        if size == 0 { throw NIfTIError.notNIfTI(path) }
    }

    /// Writes a canonical-order volume in the geometry of `like` (its axis order,
    /// qform and sform), so that a prediction overlays its source image.
    public static func write(_ volume: Volume, to path: String, datatype: Int32 = Int32(DT_UINT8)) throws {
        silence()
        let (fileDims, values) = volume.orientation.fileOrder(volume.data, canonicalDims: volume.dims)
        var dims: [Int32] = [3, Int32(fileDims[0]), Int32(fileDims[1]), Int32(fileDims[2]), 1, 1, 1, 1]
        guard let image = dims.withUnsafeMutableBufferPointer({ nifti_make_new_nim($0.baseAddress, datatype, 1) }) else {
            throw NIfTIError.writeFailed(path)
        }
        defer { nifti_image_free(image) }
        var spacingFile = [1.0, 1.0, 1.0]
        for a in 0..<3 { spacingFile[volume.orientation.fileAxis[a]] = volume.spacing[a] }
        image.pointee.dx = Float(spacingFile[0]); image.pointee.dy = Float(spacingFile[1]); image.pointee.dz = Float(spacingFile[2])
        withUnsafeMutableBytes(of: &image.pointee.pixdim) { raw in
            let p = raw.bindMemory(to: Float.self)
            p[1] = Float(spacingFile[0]); p[2] = Float(spacingFile[1]); p[3] = Float(spacingFile[2])
        }
        var m = mat44()
        withUnsafeMutableBytes(of: &m.m) { raw in
            let p = raw.bindMemory(to: Float.self)
            for r in 0..<4 { for c in 0..<4 { p[r * 4 + c] = Float(volume.orientation.affine[r][c]) } }
        }
        image.pointee.qform_code = max(1, volume.orientation.qformCode)
        image.pointee.sform_code = volume.orientation.sformCode
        image.pointee.qto_xyz = m
        image.pointee.sto_xyz = m
        nifti_mat44_to_quatern(m, &image.pointee.quatern_b, &image.pointee.quatern_c, &image.pointee.quatern_d,
                                &image.pointee.qoffset_x, &image.pointee.qoffset_y, &image.pointee.qoffset_z,
                                nil, nil, nil, &image.pointee.qfac)
        guard let data = image.pointee.data else { throw NIfTIError.writeFailed(path) }
        let n = values.count
        switch datatype {
        case Int32(DT_UINT8): let p = data.assumingMemoryBound(to: UInt8.self); for i in 0..<n { p[i] = UInt8(clamping: Int(values[i].rounded())) }
        case Int32(DT_INT16): let p = data.assumingMemoryBound(to: Int16.self); for i in 0..<n { p[i] = Int16(clamping: Int(values[i].rounded())) }
        default: let p = data.assumingMemoryBound(to: Float.self); for i in 0..<n { p[i] = values[i] }
        }
        guard nifti_set_filenames(image, path, 0, 1) == 0 else { throw NIfTIError.writeFailed(path) }
        nifti_image_write(image)
        guard FileManager.default.fileExists(atPath: path) else { throw NIfTIError.writeFailed(path) }
    }
}
