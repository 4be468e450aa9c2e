// Prints how long checking and planning take: every spec under a folder, a
// generated spec with 1,000 tap pairs, and generated grids of 1,000 to 10,000
// variants (to see how time grows). A benchmark, not a test: it asserts nothing.
//
//   swift build -c release --product distill-bench-spec
//   .build/release/distill-bench-spec specs         (everything)
//   .build/release/distill-bench-spec specs 10000   (the grid of 10,000 variants alone;
//                                                    DISTILL_BENCH_SPLIT=1 also times check, plan and free apart)
import Diagnostics
import Foundation
import Plan
import Spec

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

func time(_ repeats: Int, _ body: () -> Void) -> Double {
    body()  // warm-up
    var samples: [Double] = []
    for _ in 0..<repeats {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    return median(samples)
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
func ms(_ v: Double) -> String { String(format: "%9.2f", v) }

let folder = CommandLine.arguments.dropFirst().first ?? "specs"
// `distill-bench-spec specs 10000`: that grid alone (to profile one size).
let only = CommandLine.arguments.dropFirst(2).first.flatMap { Int($0) }
let files = only != nil ? [] : (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? [])
    .filter { $0.hasSuffix(".yaml") }.sorted().map { (folder as NSString).appendingPathComponent($0) }

print("median of 10 runs after a warm-up, milliseconds")
print(pad("spec", 44) + pad("variants", 10) + pad("stages", 8) + "    check  check+plan")
for file in files {
    var variants = 0, stages = 0
    let check = time(10) { variants = SpecChecker.check(path: file)?.variants.count ?? 0 }
    let both = time(10) {
        guard let checked = SpecChecker.check(path: file) else { return }
        stages = Planner(specDirectory: (file as NSString).deletingLastPathComponent).plan(checked).stages.count
    }
    print(pad(file, 44) + pad(String(variants), 10) + pad(String(stages), 8) + ms(check) + "  " + ms(both))
}

let header = """
    data:
      source: {phantom: {}}
      preprocess: {size: 64}
      subsets: {full: {fraction: 1.0}, half: {fraction: 0.5, of: full}}
    models:
      t: {arch: multitask_unet, widths: [16, 32, 64], bottleneck: 128, heads: {segmentation: 1, reconstruction: 1}}
      s: {arch: unet, widths: [4, 8], bottleneck: 16, convs_per_block: 1}
    stages:
      t: {model: t, data: full, loss: [{kind: dice_bce}], optimizer: {kind: adamw, lr: 0.001}, epochs: 4, batch: 8}
      s:
        model: s
        data: half
        loss: [{kind: dice}]
        optimizer: {kind: rmsprop, lr: 0.01}
        epochs: 4
        batch: 8
        distill:
          teacher: t
          logits: {kind: binary_kl}
          taps:

    """

// 1,000 tap pairs in one stage.
var pairs = ""
let taps = ["pool.0", "pool.1", "bottleneck", "decoder.0", "decoder.1"]
for i in 0..<1000 {
    pairs += "        p\(i): {teacher: \(taps[i % 5]), student: \(taps[i % 5]), adapter: {side: teacher}, loss: {kind: infonce, temperature: 0.4}, weight: 0.001}\n"
}
let generated = SourceFile(displayPath: "generated.yaml", text: header.replacingOccurrences(of: "t: {arch: multitask_unet, widths: [16, 32, 64], bottleneck: 128, heads: {segmentation: 1, reconstruction: 1}}", with: "t: {arch: unet, widths: [16, 32], bottleneck: 64}") + pairs)
if only == nil {
    var diagnostics = 0
    let tapTime = time(10) { diagnostics = SpecChecker.check(source: generated).diagnostics.count }
    print(pad("generated: 1 stage with 1,000 tap pairs", 62) + ms(tapTime) + "             (\(diagnostics) diagnostics)")
}

// Grids of n variants: seeds (an axis over stages.s.seed, not sweep.seeds) x temperatures x weights.
func grid(_ seeds: Int) -> SourceFile {
    var text = header + "        ee: {teacher: pool.1, student: pool.1, adapter: {side: teacher}, loss: {kind: infonce, temperature: 0.4}}\n"
    text += "sweep:\n  max_variants: 1000000\n  axes:\n"
    text += "    draw: {path: stages.s.seed, values: {" + (0..<seeds).map { "s\($0): \($0)" }.joined(separator: ", ") + "}}\n"
    text += "    tau: {path: stages.s.distill.taps.ee.loss.temperature, values: {" + (1...10).map { "t\($0): \(Double($0) / 20)" }.joined(separator: ", ") + "}}\n"
    text += "    w: {path: stages.s.distill.taps.ee.weight, values: {" + (1...10).map { "w\($0): \($0)" }.joined(separator: ", ") + "}}\n"
    return SourceFile(displayPath: "grid.yaml", text: text)
}
let sizes = only.map { [max(1, $0 / 100)] } ?? [10, 20, 50, 100]
print("\ngenerated grids: seed x 10 temperatures x 10 weights")
print(pad("variants", 10) + pad("stages", 10) + "    check  check+plan  per variant (us)")
for seeds in sizes {
    let source = grid(seeds)
    // A benchmark of a spec with errors measures nothing: say so instead of printing a time.
    let errors = SpecChecker.check(source: source).diagnostics.filter { $0.severity == .error }
    guard errors.isEmpty else {
        print("the generated grid has \(errors.count) error(s), first: \(errors[0].message)")
        break
    }
    var stages = 0
    let check = time(3) { _ = SpecChecker.check(source: source) }
    let both = time(3) {
        let checked = SpecChecker.check(source: source)
        stages = Planner(specDirectory: ".").plan(checked).stages.count
    }
    // DISTILL_BENCH_SPLIT=1: three runs timed part by part (checking, planning, freeing both).
    if ProcessInfo.processInfo.environment["DISTILL_BENCH_SPLIT"] == "1" {
        for _ in 0..<3 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            var checked: CheckedSpec? = SpecChecker.check(source: source)
            let t1 = DispatchTime.now().uptimeNanoseconds
            var plan: ExecutionPlan? = Planner(specDirectory: ".").plan(checked!)
            let t2 = DispatchTime.now().uptimeNanoseconds
            plan = nil; checked = nil
            let t3 = DispatchTime.now().uptimeNanoseconds
            _ = (plan, checked)
            print(String(format: "  %d variants: check %.0f ms, plan %.0f ms, free %.0f ms", seeds * 100,
                         Double(t1 - t0) / 1e6, Double(t2 - t1) / 1e6, Double(t3 - t2) / 1e6))
        }
    }
    let n = seeds * 100
    print(pad(String(n), 10) + pad(String(stages), 10) + ms(check) + "  " + ms(both) + String(format: "  %10.1f", both * 1000 / Double(n)))
}
