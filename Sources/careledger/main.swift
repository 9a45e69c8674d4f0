#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import CareLedgerCLI

// FoundationEssentials rather than Foundation: the server needs no ICU, which saves resident memory.
let status = await CareLedgerCLI.main(
    arguments: Array(CommandLine.arguments.dropFirst()),
    environment: ProcessInfo.processInfo.environment)
exit(status)
