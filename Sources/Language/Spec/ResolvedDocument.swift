extension Spec {
    /// The document with every default explicit, including those that depend on
    /// other keys (a model's `in_channels`), without `sweep` or `extends`:
    /// what `distill plan --lock` writes, and what plans to the same hashes.
    public var resolvedDocument: Value {
        var doc = document
        guard case .object(var members) = doc.kind else { return doc }
        members.removeAll { $0.key == "sweep" || $0.key == "extends" }
        if let i = members.firstIndex(where: { $0.key == "models" }), case .object(var models) = members[i].value.kind {
            for (j, m) in models.enumerated() {
                guard let arch = model(m.key)?.architecture, case .object(var fields) = m.value.kind else { continue }
                if !fields.contains(where: { $0.key == "in_channels" }) {
                    fields.insert(Value.Member(key: "in_channels", keyRange: nil, value: Value(.int(arch.inChannels))), at: 0)
                }
                models[j].value.kind = .object(fields)
            }
            members[i].value.kind = .object(models)
        }
        doc.kind = .object(members)
        return doc
    }
}
