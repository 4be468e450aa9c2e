import Tensor

/// One training step, as the trainer, `distill parity` and `distill bench` all take it:
/// the network's forward pass, the objective's terms and their weighted total on one
/// tape, the backward pass, and (with an optimiser) the gradient clip and the update.
///
/// Everything else a caller does around a step (where the batch and the teacher's
/// maps come from, the all-reduce of data parallelism, logging) goes through the two
/// hooks, so that what parity checks against PyTorch is the step the trainer runs.
public struct TrainingStep {
    public let model: SegmentationModel
    public let objective: DistillationObjective
    /// nil: the step ends with the gradients in the parameters (parity compares them).
    public let optimizer: Optimizer?
    public let clipGradNorm: Float?

    public init(model: SegmentationModel, objective: DistillationObjective, optimizer: Optimizer?, clipGradNorm: Float? = nil) {
        (self.model, self.objective, self.optimizer, self.clipGradNorm) = (model, objective, optimizer, clipGradNorm)
    }

    /// What a step computed.
    public struct Outcome {
        public var output: ModelOutput
        public var terms: [DistillationObjective.Term]
        public var loss: Variable
    }

    /// Runs the step on `images` and `labels` against the teacher's maps (empty without a teacher).
    /// `training: false` takes the forward pass in eval mode (running statistics), as some parity
    /// cases do. `inspect` sees the outcome before the backward pass (the trainer stops on a
    /// non-finite term there); `reduce` runs between the backward pass and the update (the
    /// trainer's gradient all-reduce). Losses and batch statistics span `group` when given.
    @discardableResult
    public func run(images x: Variable, labels: Tensor, teacher: [String: Variable] = [:], rng: inout RNG, training: Bool = true,
                    group: BatchGroup? = nil, inspect: (Outcome) throws -> Void = { _ in }, reduce: () throws -> Void = {}) throws -> Outcome {
        let tape = Tape()
        let outcome = try CrossBatch.$group.withValue(group) {
            try tape.record { () throws -> Outcome in
                let output = model.forward(x, training: training)
                let terms = try objective.terms(student: output, teacher: teacher, images: x, labels: labels, rng: &rng)
                return Outcome(output: output, terms: terms, loss: DistillationObjective.total(terms))
            }
        }
        try inspect(outcome)
        optimizer?.zeroGrad()
        CrossBatch.$group.withValue(group) { tape.backward(outcome.loss) }
        try reduce()
        if let optimizer {
            if let clipGradNorm { _ = optimizer.clipGradNorm(clipGradNorm) }
            optimizer.update()
        }
        return outcome
    }
}
