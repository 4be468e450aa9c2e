import CNifti
import COpenBLAS
import Testing

/// The C libraries later layers build on link and answer.
@Suite struct SystemLibraryTests {
    @Test func openBLASComputesADotProduct() {
        let x: [Float] = [1, 2, 3], y: [Float] = [4, 5, 6]
        #expect(cblas_sdot(3, x, 1, y, 1) == 32)
    }

    @Test func libniftiNamesItsDatatypes() {
        let name = String(cString: nifti_datatype_string(Int32(DT_INT16)))
        #expect(name == "INT16")
    }
}
