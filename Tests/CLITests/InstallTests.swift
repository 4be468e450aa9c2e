import Foundation
import Testing

/// `make install` puts `distill` and its shell completions under a prefix.
@Suite struct InstallTests {
    @Test func installPutsTheToolAndItsCompletionsUnderThePrefix() throws {
        let prefix = FileManager.default.temporaryDirectory.appendingPathComponent("distill-prefix-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        // The files of the target `install` (which first builds the release binary): here the binary under test.
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/make")
        make.arguments = ["--no-print-directory", "-C", CLITests.repository, "install-files", "PREFIX=\(prefix)", "BINARY=\(CLITests.binary)"]
        make.standardOutput = FileHandle.nullDevice
        try make.run()
        make.waitUntilExit()
        #expect(make.terminationStatus == 0)

        let installed = prefix + "/bin/distill"
        #expect(FileManager.default.isExecutableFile(atPath: installed))
        let bash = try String(contentsOfFile: prefix + "/share/bash-completion/completions/distill", encoding: .utf8)
        let zsh = try String(contentsOfFile: prefix + "/share/zsh/site-functions/_distill", encoding: .utf8)
        let fish = try String(contentsOfFile: prefix + "/share/fish/vendor_completions.d/distill.fish", encoding: .utf8)
        #expect(zsh.hasPrefix("#compdef distill"))
        for script in [bash, zsh, fish] {
            for command in ["check", "plan", "sweep", "report", "export", "predict"] { #expect(script.contains(command), "\(command)") }
        }
        // bash loads the script and completes the subcommands from the installed tool.
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/bash")
        shell.arguments = ["-c", """
            source '\(prefix)/share/bash-completion/completions/distill'
            complete -p distill
            COMP_WORDS=(distill ex); COMP_CWORD=1; COMP_LINE='distill ex'; COMP_POINT=10
            $(complete -p distill | sed -E 's/.* -F ([^ ]+) .*/\\1/') distill ex distill
            printf '%s\\n' "${COMPREPLY[@]}"
            """]
        shell.environment = ["PATH": prefix + "/bin:/usr/bin:/bin"]
        let out = Pipe()
        shell.standardOutput = out
        shell.standardError = FileHandle.nullDevice
        try shell.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        shell.waitUntilExit()
        #expect(text.contains("-F _distill distill"), "\(text)")
        #expect(text.split(separator: "\n").contains("export"), "\(text)")
    }
}
