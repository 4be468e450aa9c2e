import ArgumentParser
import Spec

/// `distill schema`: the spec language as JSON Schema (or its Markdown reference).
struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the spec language as JSON Schema 2020-12 (grammar/distill.schema.json).")

    @Option(name: .long, help: "Output format: json (JSON Schema) or markdown (the key reference of grammar/README.md).")
    var format: Format = .json

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case json, markdown
    }

    func run() {
        switch format {
        case .json: print(SchemaExport.jsonSchema(), terminator: "")
        case .markdown: print(SchemaExport.markdown(), terminator: "")
        }
    }
}
