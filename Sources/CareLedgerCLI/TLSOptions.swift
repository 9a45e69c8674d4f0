import TLS

/// HTTPS for `serve`: certificate and key files, and the CA that client certificates must chain to
/// for mutual TLS. Paths only; the key file itself must be readable by its owner alone.
struct TLSOptions {
    static let certificate = OptionSpec(
        name: "tls-cert", valueName: "file",
        help: "PEM certificate chain; with --tls-key, serve HTTPS (TLS 1.2 and 1.3 only). SIGHUP reloads both files.",
        environment: "CARELEDGER_TLS_CERT", defaultValue: nil)
    static let key = OptionSpec(
        name: "tls-key", valueName: "file",
        help: "PEM private key of --tls-cert (mode 600).",
        environment: "CARELEDGER_TLS_KEY", defaultValue: nil)
    static let clientCA = OptionSpec(
        name: "tls-client-ca", valueName: "file",
        help: "PEM CA certificates for mutual TLS: a client certificate that chains to them and is registered to a key authenticates without a bearer key.",
        environment: "CARELEDGER_TLS_CLIENT_CA", defaultValue: nil)
    static let all = [certificate, key, clientCA]

    /// The TLS server, or nil for plain HTTP; a half-given or unreadable setting is a one-line error.
    static func server(_ parsed: ParsedArguments, environment: [String: String]) throws(CLIError) -> TLSServer? {
        let certificate = parsed.value(of: Self.certificate, environment: environment)
        let key = parsed.value(of: Self.key, environment: environment)
        let clientCA = parsed.value(of: Self.clientCA, environment: environment)
        guard let certificate, let key else {
            guard certificate == nil, key == nil, clientCA == nil else {
                throw CLIError("--tls-cert and --tls-key go together (and --tls-client-ca needs both)")
            }
            return nil
        }
        _ = try LedgerOptions.readSecretFile(key, what: "TLS key")
        do {
            return try TLSServer(TLSSettings(certificateFile: certificate, keyFile: key, clientCAFile: clientCA))
        } catch {
            throw CLIError("TLS: \(error.description)")
        }
    }
}
