import Architecture

/// Why a term cannot run on the models it names: one set of rules, read by the
/// spec checker (which turns each problem into a located diagnostic) and by the
/// runtime's objective (which refuses a plan whose terms have any error).
public enum TermProblem: Hashable, Sendable {
    /// A tap the model does not have.
    case unknownTap(role: TapRole, name: String)
    /// A token sequence where a spatial map is needed.
    case tokenTap(role: TapRole, name: String)
    /// A channel-wise comparison of maps whose channel counts differ, with no 1x1 adapter.
    case channelMismatch(teacher: Tap, student: Tap, identityAdapter: Bool)
    /// Maps of different sizes with `resample: none` (strides per axis).
    case spatialMismatch(teacherStrides: [Int], studentStrides: [Int])
    /// `resample: avgpool` asked to enlarge the teacher map.
    case averagePoolingEnlarges(teacherStrides: [Int], studentStrides: [Int])
    /// A resampling between maps of the same size (a warning).
    case uselessResample(strides: [Int])
    /// A plane's map paired with a volume's.
    case dimensionMismatch(teacher: Tap, student: Tap)
    /// A resampling the runtime has only for planes (`bilinear`, `nearest`) asked of volumes.
    case resampleOfVolumes(Resampling)
    /// Supervised pixel contrast on a 3D network's map: it samples the pixels of slices.
    case supconOnVolume(name: String)
    /// A head the model does not have.
    case unknownHead(role: TapRole, name: String, available: [String])
    /// A multi-class loss on a head with fewer than 2 channels.
    case needsClasses(loss: String, head: Head)
    /// Reconstructing the input with a head whose channels differ from the input's.
    case reconstructionChannels(head: Head, inputChannels: Int)
    /// Logit distillation between heads of different widths.
    case logitChannels(head: String, teacher: Int, student: Int)
    /// Softmax KL on a 1-channel head is identically zero; a warning when accepted on purpose.
    case softmaxOneChannel(head: String, accepted: Bool)
    /// A sigmoid loss (`bce`, `dice_bce`) on a softmax head; `replacement` is the softmax loss meant.
    case sigmoidLossOnClasses(loss: String, head: Head, replacement: String)
    /// Bernoulli KL on a softmax head: each channel would be read as an independent sigmoid.
    case binaryKLOnClasses(head: String, channels: Int)
    /// A segmentation head whose width fits neither sigmoid nor softmax over the data's classes.
    case headClasses(head: Head, classes: LabelClasses)

    public var isError: Bool {
        switch self {
        case .uselessResample: return false
        case .softmaxOneChannel(_, let accepted): return !accepted
        case .unknownTap, .tokenTap, .channelMismatch, .spatialMismatch, .averagePoolingEnlarges, .dimensionMismatch, .resampleOfVolumes,
             .supconOnVolume, .unknownHead, .needsClasses, .reconstructionChannels, .logitChannels, .sigmoidLossOnClasses, .binaryKLOnClasses,
             .headClasses:
            return true
        }
    }

    /// A plain sentence for the runtime (the checker words its own diagnostics).
    public var summary: String {
        switch self {
        case .unknownTap(let role, let name): return "the \(role.rawValue) has no tap '\(name)'"
        case .tokenTap(let role, let name): return "\(role.rawValue) tap '\(name)' is a token sequence, not a spatial map"
        case .channelMismatch(let t, let s, _): return "teacher '\(t.name)' has \(t.channels) channels, student '\(s.name)' has \(s.channels), and no 1x1 adapter"
        case .spatialMismatch(let ts, let ss): return "the maps are at strides \(Self.strides(ts)) and \(Self.strides(ss)) with 'resample: none'"
        case .averagePoolingEnlarges(let ts, let ss): return "'avgpool' cannot enlarge the teacher map (stride \(Self.strides(ts))) to the student's (stride \(Self.strides(ss)))"
        case .uselessResample: return "the resampling does nothing"
        case .dimensionMismatch(let t, let s):
            return "teacher '\(t.name)' is a \(t.strides?.count ?? 0)D map and student '\(s.name)' a \(s.strides?.count ?? 0)D one"
        case .resampleOfVolumes(let r): return "'resample: \(r.rawValue)' is for planes; volumes are resampled with 'avgpool'"
        case .supconOnVolume(let name): return "supcon samples the pixels of slices; '\(name)' is a 3D network's map"
        case .unknownHead(let role, let name, let available): return "the \(role.rawValue) has no head '\(name)' (heads: \(available.joined(separator: ", ")))"
        case .needsClasses(let loss, let head): return "'\(loss)' needs a head with 2 or more classes; '\(head.name)' has \(head.channels)"
        case .reconstructionChannels(let head, let input): return "head '\(head.name)' has \(head.channels) channels but reconstructs an input of \(input)"
        case .logitChannels(let head, let t, let s): return "head '\(head)' has \(t) channels on the teacher and \(s) on the student"
        case .softmaxOneChannel(let head, _): return "softmax KL on the 1-channel head '\(head)' is identically zero"
        case .sigmoidLossOnClasses(let loss, let head, let r):
            return "'\(loss)' is a sigmoid loss but head '\(head.name)' has \(head.channels) channels (softmax); use '\(r)'"
        case .binaryKLOnClasses(let head, let c): return "'binary_kl' reads each of the \(c) channels of head '\(head)' as its own sigmoid; use 'kl' (softmax KL)"
        case .headClasses(let head, let classes):
            return "head '\(head.name)' has \(head.channels) channel\(head.channels == 1 ? "" : "s") but the data has \(classes.count) class\(classes.count == 1 ? "" : "es") "
                + "(\(classes.classes.map(\.name).joined(separator: ", "))): it needs \(classes.headChannels.map(String.init).joined(separator: " or "))"
        }
    }
}

extension TermProblem {
    /// `4` for equal strides on every axis, `(1,2,2)` otherwise.
    static func strides(_ s: [Int]) -> String {
        Set(s).count == 1 ? String(s[0]) : "(" + s.map(String.init).joined(separator: ",") + ")"
    }
}

/// Which network of a teacher/student pair a tap or head belongs to.
public enum TapRole: String, Hashable, Sendable {
    case teacher, student
}

extension TapPair {
    /// Whether the two taps can be compared as the pair says.
    public func problems(teacher: TapManifest, student: TapManifest) -> [TermProblem] {
        let t = teacher[teacherTap], s = student[studentTap]
        var out: [TermProblem] = []
        if t == nil { out.append(.unknownTap(role: .teacher, name: teacherTap)) }
        if s == nil { out.append(.unknownTap(role: .student, name: studentTap)) }
        guard let t, let s else { return out }
        if t.strides == nil { out.append(.tokenTap(role: .teacher, name: t.name)) }
        if s.strides == nil { out.append(.tokenTap(role: .student, name: s.name)) }
        guard let ts = t.strides, let ss = s.strides else { return out }
        guard ts.count == ss.count else { return out + [.dimensionMismatch(teacher: t, student: s)] }
        if t.channels != s.channels, loss.comparesChannels {
            switch adapter {
            case .conv1x1?: break
            case .identity?: out.append(.channelMismatch(teacher: t, student: s, identityAdapter: true))
            case nil: out.append(.channelMismatch(teacher: t, student: s, identityAdapter: false))
            }
        }
        if ts == ss {
            if resample != .none { out.append(.uselessResample(strides: ts)) }
        } else if resample == .none {
            out.append(.spatialMismatch(teacherStrides: ts, studentStrides: ss))
        } else if resample == .avgpool, zip(ts, ss).contains(where: { $0 > $1 }) {
            out.append(.averagePoolingEnlarges(teacherStrides: ts, studentStrides: ss))
        } else if ts.count == 3, resample != .avgpool {
            out.append(.resampleOfVolumes(resample))
        }
        return out
    }
}

extension SupervisedTerm {
    /// Whether the model has the head and the head fits the loss.
    public func problems(_ model: ModelArchitecture) -> [TermProblem] {
        guard let h = model.heads.first(where: { $0.name == head }) else {
            return [.unknownHead(role: .student, name: head, available: model.heads.map(\.name))]
        }
        switch loss {
        case .crossEntropy, .focal, .diceCE:
            if h.channels < 2 { return [.needsClasses(loss: loss.kind, head: h)] }
        case .bce:
            if h.channels > 1 { return [.sigmoidLossOnClasses(loss: loss.kind, head: h, replacement: "ce")] }
        case .diceBCE:
            if h.channels > 1 { return [.sigmoidLossOnClasses(loss: loss.kind, head: h, replacement: "dice_ce")] }
        case .mse(.input):
            if h.channels != model.inChannels { return [.reconstructionChannels(head: h, inputChannels: model.inChannels)] }
        case .dice, .mse(.label):
            // Dice reads a head of any width (sigmoid for one channel, softmax over more); a regression onto the label too.
            break
        }
        return []
    }
}

extension LogitTerm {
    /// Whether both models have the head, with the same width, and the loss suits it.
    public func problems(student: ModelArchitecture, teacher: ModelArchitecture) -> [TermProblem] {
        guard let sh = student.heads.first(where: { $0.name == head }) else {
            return [.unknownHead(role: .student, name: head, available: student.heads.map(\.name))]
        }
        guard let th = teacher.heads.first(where: { $0.name == head }) else {
            return [.unknownHead(role: .teacher, name: head, available: teacher.heads.map(\.name))]
        }
        var out: [TermProblem] = []
        if sh.channels != th.channels { out.append(.logitChannels(head: head, teacher: th.channels, student: sh.channels)) }
        if case .kl(let accepted) = loss, sh.channels == 1, th.channels == 1 { out.append(.softmaxOneChannel(head: head, accepted: accepted)) }
        if case .binaryKL = loss, sh.channels > 1, sh.channels == th.channels { out.append(.binaryKLOnClasses(head: head, channels: sh.channels)) }
        return out
    }
}

extension SupConTerm {
    /// Whether the student has the tap, as a spatial map.
    public func problems(student: TapManifest) -> [TermProblem] {
        guard let t = student[tap] else { return [.unknownTap(role: .student, name: tap)] }
        if t.strides == nil { return [.tokenTap(role: .student, name: t.name)] }
        return t.strides?.count == 3 ? [.supconOnVolume(name: t.name)] : []
    }
}

extension LabelClasses {
    /// Whether the model's segmentation head fits these classes: 1 channel (sigmoid)
    /// for one class, or one channel per class plus background (softmax).
    public func problems(_ model: ModelArchitecture) -> [TermProblem] {
        guard let h = model.heads.first(where: { $0.name == Head.segmentation }), !headChannels.contains(h.channels) else { return [] }
        return [.headClasses(head: h, classes: self)]
    }
}
