// Prints how long `distill check` takes: on every spec under a folder, and on a
// generated spec with 1,000 tap pairs. A benchmark, not a test: it asserts nothing.
//
//   swift build -c release --product distill-bench-check
//   .build/release/distill-bench-check specs
import Diagnostics
import Foundation
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

let folder = CommandLine.arguments.dropFirst().first ?? "specs"
let files = (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? [])
    .filter { $0.hasSuffix(".yaml") }.sorted().map { (folder as NSString).appendingPathComponent($0) }

print("distill check, median of 10 runs after a warm-up")
print("spec                                      variants   ms")
for file in files {
    var variants = 0
    let ms = time(10) { variants = SpecChecker.check(path: file)?.variants.count ?? 0 }
    print(file.padding(toLength: 42, withPad: " ", startingAt: 0), String(variants).padding(toLength: 10, withPad: " ", startingAt: 0), String(format: "%.2f", ms))
}

// A generated spec: one teacher, one student, 1,000 tap pairs.
var pairs = ""
let taps = ["pool.0", "pool.1", "bottleneck", "decoder.0", "decoder.1"]
for i in 0..<1000 {
    let t = taps[i % taps.count]
    pairs += "        p\(i): {teacher: \(t), student: \(t), adapter: {side: teacher}, loss: {kind: infonce, temperature: 0.4}, weight: 0.001}\n"
}
let generated = """
    data:
      source: {phantom: {}}
      preprocess: {size: 64}
    models:
      t: {arch: unet, widths: [16, 32], bottleneck: 64}
      s: {arch: unet, widths: [4, 8], bottleneck: 16, convs_per_block: 1}
    stages:
      t: {model: t, data: full, loss: [{kind: dice}], optimizer: {kind: adamw, lr: 0.001}, epochs: 1, batch: 2}
      s:
        model: s
        data: full
        loss: [{kind: dice}]
        optimizer: {kind: adamw, lr: 0.001}
        epochs: 1
        batch: 2
        distill:
          teacher: t
          taps:
    \(pairs)
    """
let source = SourceFile(displayPath: "generated.yaml", text: generated)
var count = 0
let ms = time(10) { count = SpecChecker.check(source: source).diagnostics.count }
print("generated spec with 1,000 tap pairs        1          \(String(format: "%.2f", ms))   (\(count) diagnostics, \(generated.utf8.count / 1024) KiB)")
