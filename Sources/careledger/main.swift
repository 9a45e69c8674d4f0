import CareLedgerCLI
import Foundation

let status = await CareLedgerCLI.main(
    arguments: Array(CommandLine.arguments.dropFirst()),
    environment: ProcessInfo.processInfo.environment)
exit(status)
