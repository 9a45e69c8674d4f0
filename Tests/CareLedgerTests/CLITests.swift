@testable import CareLedgerCLI
import Testing

@Suite struct CLITests {
    @Test func serveHelpIsStable() {
        #expect(ServeCommand.help == """
            USAGE: careledger serve [--host <host>] [--port <port>]

            Run the CareLedger HTTP API server until SIGTERM or SIGINT, then finish
            in-flight requests and exit.

            OPTIONS:
              --host <host>
                    Address to listen on; '::' listens on every IPv4 and IPv6 address. (env CARELEDGER_HOST, default 127.0.0.1)
              --port <port>
                    TCP port to listen on; 0 picks a free port. (env CARELEDGER_PORT, default 8080)
              -h, --help
                    Show this help.

            """)
    }

    @Test func rootHelpListsEveryCommand() {
        #expect(CareLedgerCLI.help == """
            USAGE: careledger <command> [options]

            COMMANDS:
              serve  Run the HTTP API server.

            Run 'careledger <command> --help' for a command's options.

            """)
    }

    @Test func flagsBeatEnvironmentWhichBeatsDefaults() throws {
        let defaults = try ServeCommand(arguments: [], environment: [:])
        #expect(defaults.configuration.host == "127.0.0.1" && defaults.configuration.port == 8080)
        let fromEnvironment = try ServeCommand(arguments: [], environment: ["CARELEDGER_HOST": "::", "CARELEDGER_PORT": "9000"])
        #expect(fromEnvironment.configuration.host == "::" && fromEnvironment.configuration.port == 9000)
        let fromFlags = try ServeCommand(arguments: ["--host", "0.0.0.0", "--port=9001"], environment: ["CARELEDGER_PORT": "9000"])
        #expect(fromFlags.configuration.host == "0.0.0.0" && fromFlags.configuration.port == 9001)
    }

    @Test(arguments: [
        (["--port", "70000"], "--port must be an integer from 0 to 65535, got '70000'"),
        (["--port", "abc"], "--port must be an integer from 0 to 65535, got 'abc'"),
        (["--port"], "--port needs a value"),
        (["--verbose"], "unknown option --verbose"),
        (["extra"], "unexpected argument 'extra'"),
        (["--host="], "--host must not be empty"),
    ])
    func badArgumentsNameTheProblem(arguments: [String], message: String) {
        #expect(throws: CLIError(message)) { try ServeCommand(arguments: arguments, environment: [:]) }
    }

    @Test func unknownCommandAndMissingCommandExitWithUsage() async {
        #expect(await CareLedgerCLI.main(arguments: ["frobnicate"], environment: [:]) == 64)
        #expect(await CareLedgerCLI.main(arguments: [], environment: [:]) == 64)
        #expect(await CareLedgerCLI.main(arguments: ["serve", "--help"], environment: [:]) == 0)
    }
}
