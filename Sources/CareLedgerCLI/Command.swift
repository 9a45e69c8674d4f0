/// A subcommand: parsed and validated from its words and environment, then run.
protocol Command: Sendable {
    /// The word that selects it, e.g. `serve`.
    static var name: String { get }
    /// One line for the root help.
    static var summary: String { get }
    /// The full `--help` text.
    static var help: String { get }

    /// Parses and validates; any mistake is a `CLIError` naming the option.
    init(arguments: [String], environment: [String: String]) throws(CLIError)

    /// Runs to completion and returns the exit status.
    func run() async throws -> Int32
}

extension Command {
    /// Builds the help text from a usage line, a description and the option list.
    static func helpText(
        usage: String, description: String, options: [OptionSpec], flags: [(name: String, help: String)] = []
    ) -> String {
        var lines = ["USAGE: careledger \(usage)", "", description, "", "OPTIONS:"]
        for option in options { lines += option.helpLines }
        for flag in flags { lines += ["  --\(flag.name)", "        \(flag.help)"] }
        lines.append("  -h, --help")
        lines.append("        Show this help.")
        return lines.joined(separator: "\n") + "\n"
    }
}
