import Diagnostics
import Foundation
@testable import Spec
import Testing

/// A sweep variant's IR is built from its base's, rebuilding only the units its
/// overrides touch; it must be exactly the IR a full build of the variant's
/// document gives.
@Suite struct IncrementalBuildTests {
    static let sweeps = ["specs/quickstart.yaml", "specs/phantom-study.yaml", "specs/phantom-study-replication.yaml",
                         "specs/phantom-organs.yaml", "specs/thesis/ablation.yaml"]

    @Test(arguments: sweeps)
    func everyVariantEqualsAFullBuildOfItsDocument(_ path: String) throws {
        let checked = try #require(SpecChecker.check(path: path, loader: SpecLoader(workingDirectory: Fixtures.repository), environment: [:]))
        #expect(!checked.diagnostics.hasErrors)
        #expect(checked.variants.count > 1)
        for variant in checked.variants {
            let spec = try #require(variant.spec, "\(variant.name)")
            var builder = SpecBuilder(validated: true)
            let built = builder.build(spec.document)
            let full = try #require(built)
            #expect(builder.diagnostics.isEmpty)
            #expect(String(reflecting: spec) == String(reflecting: full), "\(path) variant \(variant.name)")
        }
    }

    /// The comparison above can fail: a variant whose touched stage kept the base's value differs.
    @Test func aStaleUnitIsSeen() throws {
        let checked = try #require(SpecChecker.check(path: "specs/quickstart.yaml", loader: SpecLoader(workingDirectory: Fixtures.repository), environment: [:]))
        let (a, b) = (try #require(checked.variants.first?.spec), try #require(checked.variants.last?.spec))
        var stale = b
        stale.stages = a.stages
        #expect(String(reflecting: stale) != String(reflecting: b))
    }
}
