#if canImport(Glibc)
import Glibc
#endif
import Postgres

/// The command tree: `careledger <command> [options]`.
public enum CareLedgerCLI {
    static let commands: [any Command.Type] = [ServeCommand.self, MigrateCommand.self, AdminCommand.self, KeygenCommand.self, VerifyCommand.self]

    /// The root help text.
    static var help: String {
        var lines = ["USAGE: careledger <command> [options]", "", "COMMANDS:"]
        let width = commands.map { $0.name.count }.max() ?? 0
        for command in commands {
            lines.append("  \(command.name.padding(to: width))  \(command.summary)")
        }
        lines += ["", "Run 'careledger <command> --help' for a command's options."]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Runs the command named by `arguments` (without the program name) and returns the exit status.
    public static func main(arguments: [String], environment: [String: String]) async -> Int32 {
        guard let name = arguments.first, name != "-h", name != "--help", name != "help" else {
            print(help, terminator: "")
            return arguments.isEmpty ? 64 : 0
        }
        guard let command = commands.first(where: { $0.name == name }) else {
            printError("careledger: unknown command '\(name)'; see 'careledger --help'")
            return 64
        }
        let rest = Array(arguments.dropFirst())
        if rest.contains("--help") || rest.contains("-h") {
            print(command.help, terminator: "")
            return 0
        }
        do {
            return try await command.init(arguments: rest, environment: environment).run()
        } catch let error as CLIError {
            printError("careledger \(name): \(error.message)")
            return 64
        } catch let error as PostgresError {
            // The description is generic by design; here, for the operator, the server's words help.
            printError("careledger \(name): database error: \(error.message)")
            return 1
        } catch {
            printError("careledger \(name): \(error)")
            return 1
        }
    }

    static func printError(_ message: String) {
        var line = message + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}

extension String {
    func padding(to width: Int) -> String {
        self + String(repeating: " ", count: max(0, width - count))
    }
}
