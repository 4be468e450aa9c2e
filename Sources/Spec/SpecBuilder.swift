import Architecture
import Diagnostics

/// Builds the typed IR from a validated document. Parts that validation left
/// incomplete are skipped: they already carry a diagnostic.
enum SpecBuilder {
    static func build(_ doc: Value) -> Spec? {
        guard let dataValue = doc["data"], dataValue.isComplete, let data = buildData(dataValue) else { return nil }
        let models = (doc["models"]?.members ?? []).compactMap { m -> ModelSpec? in
            guard m.value.isComplete, let arch = buildArchitecture(m.value, defaultChannels: data.channels) else { return nil }
            return ModelSpec(name: m.key, architecture: arch, source: m.value, nameRange: m.keyRange)
        }
        let stages = (doc["stages"]?.members ?? []).compactMap { m in buildStage(m.key, m.keyRange, m.value) }
        let e = doc["evaluate"] ?? Value(.object([]))
        let evaluate = EvaluateSpec(metrics: e["metrics"]?.list.compactMap(\.string) ?? [],
                                    pooling: e.text("pooling") ?? "both", threshold: e.double("threshold") ?? 0.5,
                                    thresholdOn: e.text("threshold_on") ?? "probability", source: e)
        return Spec(name: doc.text("name"), data: data, models: models, stages: stages, evaluate: evaluate, document: doc)
    }

    static func buildData(_ v: Value) -> DataSpec? {
        guard let src = v["source"], let pre = v["preprocess"], let split = v["split"] else { return nil }
        let source: DataSource
        if let path = src.text("msd") {
            source = .msd(path: path)
        } else if let p = src["phantom"] {
            source = .phantom(PhantomSpec(cases: p.integer("cases") ?? 24, seed: p.integer("seed") ?? 0,
                                          size: p.integer("size") ?? 128, slices: p.integer("slices") ?? 48,
                                          noise: p.double("noise") ?? 20, hardCases: p.double("hard_cases") ?? 0.25))
        } else {
            return nil
        }
        let window: IntensityWindow
        if pre["window"]?.string == "clip255" {
            window = .clip255
        } else {
            let w = pre["window"]?.list.compactMap(\.number) ?? [-160, 240]
            window = .hounsfield(low: w.first ?? -160, high: w.last ?? 240)
        }
        let size = pre["size"]
        let (h, w): (Int, Int) = size?.int.map { ($0, $0) }
            ?? (size?.list.first?.int ?? 256, size?.list.last?.int ?? 256)
        let subsets = (v["subsets"]?.members ?? []).filter { $0.value.isComplete }.map { m in
            SubsetSpec(name: m.key, fraction: m.value.double("fraction") ?? 1, parent: m.value.ref("of"),
                       part: m.value.text("part") ?? "train", stratify: m.value.flag("stratify"), source: m.value)
        }
        return DataSpec(source: source, foreground: v["foreground"]?.list.compactMap(\.int) ?? [1],
                        sliceAxis: pre.text("slice_axis") ?? "axial", window: window, height: h, width: w,
                        channels: pre.integer("channels") ?? 1, keepEmpty: pre.double("keep_empty") ?? 1,
                        splitUnit: split.text("unit") ?? "patient", testFraction: split.double("test") ?? 0.2,
                        valFraction: split.double("val") ?? 0.1, splitSeed: split.integer("seed") ?? 42,
                        folds: split.integer("folds"), fold: split.integer("fold"), subsets: subsets, value: v)
    }

    static func heads(_ v: Value?) -> [Head] {
        (v?.members ?? []).compactMap { m in m.value.int.map { Head(name: m.key, channels: $0) } }
    }

    static func buildArchitecture(_ v: Value, defaultChannels: Int) -> ModelArchitecture? {
        let inChannels = v.integer("in_channels") ?? defaultChannels
        switch v.text("arch") {
        case "unet", "multitask_unet":
            guard let widths = v["widths"]?.list.compactMap(\.int), let bottleneck = v.integer("bottleneck") else { return nil }
            return .unet(UNetArchitecture(
                inChannels: inChannels, widths: widths, bottleneck: bottleneck,
                convsPerBlock: v.integer("convs_per_block") ?? 2,
                norm: NormKind(rawValue: v.text("norm") ?? "batch") ?? .batch, groups: v.integer("groups") ?? 8,
                upsampling: UpsamplingKind(rawValue: v.text("up") ?? "transpose") ?? .transpose,
                heads: heads(v["heads"]), sharedDecoder: v.text("arch") == "unet"))
        case "transunet":
            let vit = v["vit"] ?? Value(.object([]))
            return .transunet(TransUNetArchitecture(
                inChannels: inChannels, stemWidth: v.integer("stem_width") ?? 128,
                stageWidths: v["stage_widths"]?.list.compactMap(\.int) ?? [],
                bottleneck: v.integer("bottleneck") ?? 512,
                decoderWidths: v["decoder_widths"]?.list.compactMap(\.int) ?? [],
                patch: vit.integer("patch") ?? 16, vitBlocks: vit.integer("blocks") ?? 8,
                vitHeads: vit.integer("heads") ?? 12, vitDim: vit.integer("dim") ?? 256,
                vitMLP: vit.integer("mlp") ?? 2048, heads: heads(v["heads"])))
        default:
            return nil
        }
    }

    static func buildStage(_ name: String, _ nameRange: SourceRange?, _ v: Value) -> StageSpec? {
        guard v.isComplete, let model = v.ref("model"), let data = v.ref("data"),
              let opt = v["optimizer"], let optKind = opt.text("kind"), let lr = opt.double("lr"),
              let epochs = v.integer("epochs"), let batch = v.integer("batch") else { return nil }
        let loss = (v["loss"]?.list ?? []).filter(\.isComplete).compactMap { t -> LossTermSpec? in
            guard let kind = t.text("kind") else { return nil }
            return LossTermSpec(kind: kind, head: t.text("head") ?? "segmentation", weight: t.double("weight") ?? 1, source: t)
        }
        let sched = v["schedule"] ?? Value(.object([]))
        let select = v["select"] ?? Value(.object([]))
        var initFrom: InitSource?
        if let i = v["init"] {
            if let s = i.ref("stage") { initFrom = .stage(s) } else if let f = i.text("file") { initFrom = .file(f) }
        }
        return StageSpec(
            name: name, nameRange: nameRange, model: model, data: data, loss: loss,
            optimizer: OptimizerSpec(kind: optKind, lr: lr, source: opt),
            schedule: ScheduleSpec(kind: sched.text("kind") ?? "constant", warmupEpochs: sched.integer("warmup_epochs") ?? 0, source: sched),
            epochs: epochs, batch: batch, seed: v.integer("seed") ?? 42, clipGradNorm: v.double("clip_grad_norm"),
            selectMetric: select.text("metric") ?? "dice", selectSplit: select.text("split") ?? "val",
            initFrom: initFrom, distill: v["distill"].flatMap(buildDistill), source: v)
    }

    static func buildDistill(_ v: Value) -> DistillSpec? {
        guard v.isComplete, let teacher = v.ref("teacher") else { return nil }
        let taps = (v["taps"]?.members ?? []).compactMap { m -> TapPairSpec? in
            let t = m.value
            guard t.isComplete, let teacherTap = t.ref("teacher"), let studentTap = t.ref("student") else { return nil }
            let adapter = t["adapter"].map { a in
                AdapterSpec(side: a.text("side") ?? "teacher", kind: a.text("kind") ?? "conv1x1",
                            trainable: a["trainable"]?.bool ?? true, reinitEachStep: a.flag("reinit_each_step"), source: a)
            }
            return TapPairSpec(name: m.key, teacher: teacherTap, student: studentTap, adapter: adapter,
                               resample: t.text("resample") ?? "none", lossKind: t["loss"]?.text("kind") ?? "mse",
                               weight: t.double("weight") ?? 1, source: t)
        }
        let logits = v["logits"].flatMap { l -> LogitDistillationSpec? in
            guard l.isComplete, let kind = l.text("kind") else { return nil }
            return LogitDistillationSpec(kind: kind, head: l.text("head") ?? "segmentation", temperature: l.double("temperature") ?? 4,
                                         weight: l.double("weight") ?? 1, acceptZeroGradient: l.flag("accept_zero_gradient"), source: l)
        }
        let supcon = v["supcon"].flatMap { s -> SupConSpec? in
            guard s.isComplete, let tap = s.ref("tap") else { return nil }
            return SupConSpec(tap: tap, temperature: s.double("temperature") ?? 0.1,
                              samplesPerClass: s.integer("samples_per_class") ?? 64, weight: s.double("weight") ?? 1, source: s)
        }
        let use = v["use"].map { u in u.list.compactMap { item in item.string.map { Ref(name: $0, range: item.range) } } }
        return DistillSpec(teacher: teacher, taps: taps, logits: logits, supcon: supcon, use: use, source: v)
    }
}
