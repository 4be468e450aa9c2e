import Foundation
import Diagnostics
import StageConfig

/// The study's silent defects and data leaks, made loud.
enum StudyChecks {
    static let rules: [@Sendable (Spec) -> [Diagnostic]] = [reinitAdapters, sliceSplit, patientKey, studentData, testData, selection, threshold]

    static func reinitAdapters(_ spec: Spec) -> [Diagnostic] {
        spec.stages.flatMap { stage in
            (stage.distill?.taps ?? []).compactMap { pair -> Diagnostic? in
                guard case .conv1x1(let side, _, true)? = pair.pair.adapter else { return nil }
                return Diagnostic(SpecDiagnostics.reinitAdapter,
                    "adapter of tap pair '\(pair.name)' is re-created with random weights every step and never trained",
                    at: pair.source["adapter"]?.range(of: "reinit_each_step"), path: "stages.\(stage.name).distill.taps.\(pair.name).adapter.reinit_each_step",
                    notes: [DiagnosticNote("the term then compares the \(side.rawValue) map through a random projection; this reproduces the study's defect")])
            }
        }
    }

    static func sliceSplit(_ spec: Spec) -> [Diagnostic] {
        guard spec.data.split.unit == .slice else { return [] }
        if spec.data.preprocess.volume != nil {
            // Prepared volumes are one sample per patient: a split by slice would silently be one by patient.
            return [Diagnostic(SpecDiagnostics.unknownValue, "'unit: slice' applies to slices; 3D data ('patch') is split by patient",
                               at: spec.data.value["split"]?.range(of: "unit"), path: "data.split.unit",
                               fixIts: [FixIt("use 'unit: patient'", range: spec.data.value["split"]?.range(of: "unit"), replacement: "patient")])]
        }
        return [Diagnostic(SpecDiagnostics.sliceSplit,
            "splitting by slice puts slices of one patient in both training and test parts",
            at: spec.data.value["split"]?.range(of: "unit"), path: "data.split.unit",
            notes: [DiagnosticNote("neighbouring slices are nearly identical, so test scores are optimistic; the study split this way")],
            fixIts: [FixIt("use 'unit: patient'", range: spec.data.value["split"]?.range(of: "unit"), replacement: "patient")])]
    }

    /// `data.split.patient` is a regular expression, and groups the units of a split by patient.
    static func patientKey(_ spec: Spec) -> [Diagnostic] {
        guard let key = spec.data.split.patient else { return [] }
        let at = spec.data.value["split"]?.range(of: "patient")
        do {
            _ = try Regex(key)
        } catch {
            return [Diagnostic(SpecDiagnostics.badPattern, "'\(key)' is not a regular expression: \(error)", at: at, path: "data.split.patient")]
        }
        guard spec.data.split.unit == .slice else { return [] }
        return [Diagnostic(SpecDiagnostics.patientKeyOnSlices, "a patient key groups the patients of a split by patient; this split is by slice, which ignores it",
                           at: at, path: "data.split.patient",
                           fixIts: [FixIt("use 'unit: patient'", range: spec.data.value["split"]?.range(of: "unit"), replacement: "patient")])]
    }

    /// The subset chain from `name` up to its root.
    static func ancestry(_ spec: Spec, _ name: String) -> [SubsetSpec] {
        var chain: [SubsetSpec] = []
        var cursor = spec.data.subset(name)
        while let c = cursor, !chain.contains(where: { $0.name == c.name }) {
            chain.append(c)
            cursor = c.parent.flatMap { spec.data.subset($0.name) }
        }
        return chain
    }

    /// A student's data must lie inside its teacher's: the teacher has seen every student image.
    static func studentData(_ spec: Spec) -> [Diagnostic] {
        var out: [Diagnostic] = []
        for stage in spec.stages {
            guard let d = stage.distill, let teacher = spec.stage(d.teacher.name),
                  let studentSubset = spec.data.subset(stage.data.name),
                  let teacherSubset = spec.data.subset(teacher.data.name) else { continue }
            let chain = ancestry(spec, studentSubset.name)
            let root = chain.last ?? studentSubset
            let inside = chain.contains { $0.name == teacherSubset.name }
                || (teacherSubset.parent == nil && teacherSubset.fraction >= 1 && teacherSubset.part == root.part)
                || (teacherSubset.parent == nil && teacherSubset.fraction >= 1 && teacherSubset.part == .trainval && root.part == .train)
            if !inside {
                out.append(Diagnostic(SpecDiagnostics.subsetOutsideTeacher,
                    "student data '\(studentSubset.name)' is not drawn inside its teacher's data '\(teacherSubset.name)'",
                    at: stage.data.range, path: "stages.\(stage.name).data",
                    notes: [DiagnosticNote("teacher stage '\(teacher.name)' trains on '\(teacherSubset.name)'", at: teacher.data.range),
                            DiagnosticNote("the study drew the student's half inside the teacher's data")],
                    fixIts: [FixIt("nest it: 'of: \(teacherSubset.name)' in subset '\(studentSubset.name)'")]))
            }
        }
        return out
    }

    static func testData(_ spec: Spec) -> [Diagnostic] {
        spec.stages.compactMap { stage in
            let chain = ancestry(spec, stage.data.name)
            guard let root = chain.last, root.part == .test else { return nil }
            return Diagnostic(SpecDiagnostics.trainsOnTest,
                "stage '\(stage.name)' trains on '\(stage.data.name)', which is drawn from the test part",
                at: stage.data.range, path: "stages.\(stage.name).data",
                notes: [DiagnosticNote("subset '\(root.name)' takes 'part: test'", at: root.source.range(of: "part"))])
        }
    }

    static func selection(_ spec: Spec) -> [Diagnostic] {
        spec.stages.compactMap { stage in
            guard stage.select.split == .test else { return nil }
            return Diagnostic(SpecDiagnostics.selectOnTest,
                "stage '\(stage.name)' keeps the checkpoint that scores best on the test set",
                at: stage.source["select"]?.range(of: "split"), path: "stages.\(stage.name).select.split",
                notes: [DiagnosticNote("choosing on the test set makes its score optimistic; the study did this for lack of a validation set")],
                fixIts: [FixIt("use 'split: val'")])
        }
    }

    static func threshold(_ spec: Spec) -> [Diagnostic] {
        guard spec.evaluate.config.thresholdOn == .logit else { return [] }
        let t = spec.evaluate.config.threshold
        let p = 1 / (1 + exp(-t))
        return [Diagnostic(SpecDiagnostics.thresholdOnLogit,
            "threshold \(Value.plain(t)) on logits means probability > \(String(format: "%.3f", p))",
            at: spec.evaluate.source.range(of: "threshold_on"), path: "evaluate.threshold_on",
            notes: [DiagnosticNote("the study compared logits with 0.5, which is stricter than p > 0.5")])]
    }
}

