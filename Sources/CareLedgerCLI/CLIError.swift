/// A mistake on the command line: printed as one line to stderr, exit status 64 (EX_USAGE).
public struct CLIError: Error, Equatable, CustomStringConvertible {
    /// What was wrong, naming the option.
    public let message: String

    /// Creates an error with a one-line message.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
