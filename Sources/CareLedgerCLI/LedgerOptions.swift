import CareLedger
import Crypto
import FoundationEssentials
import Ledger

/// Settings of the verifiable log shared by `serve` and `verify`.
struct LedgerOptions {
    static let signingKeyFile = OptionSpec(
        name: "signing-key-file", valueName: "file",
        help: "Ed25519 private key (PEM) that signs tree heads; make one with 'careledger keygen'.",
        environment: "CARELEDGER_SIGNING_KEY_FILE", defaultValue: nil)
    static let origin = OptionSpec(
        name: "log-origin", valueName: "name",
        help: "The log's name in every checkpoint (and its note key name); keep it stable for the life of the log.",
        environment: "CARELEDGER_LOG_ORIGIN", defaultValue: "careledger.local/ledger")
    static let sequencingWait = OptionSpec(
        name: "sequencing-wait-ms", valueName: "ms",
        help: "How long a create waits for its ledger entry to be sequenced before answering without seq.",
        environment: "CARELEDGER_SEQUENCING_WAIT_MS", defaultValue: "1000")
    static let publicFlag = (name: "ledger-public", help: "Serve the read-only ledger endpoints without an API key (they hold no PHI).")

    static let masterKeyFile = OptionSpec(
        name: "master-key-file", valueName: "file",
        help: "The 32-byte master key (base64) that wraps every patient's data key; make one with 'careledger keygen --master'.",
        environment: "CARELEDGER_MASTER_KEY_FILE", defaultValue: nil)

    /// A secret file's bytes, refusing one that group or others may read.
    static func readSecretFile(_ path: String, what: String) throws(CLIError) -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("cannot read the \(what) file '\(path)'")
        }
        if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
           let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw CLIError("the \(what) file '\(path)' must not be readable by group or others (chmod 600)")
        }
        return data
    }

    static func patientKeys(_ parsed: ParsedArguments, environment: [String: String]) throws(CLIError) -> PatientKeys {
        guard let path = parsed.value(of: masterKeyFile, environment: environment), !path.isEmpty else {
            throw CLIError("no master key: set CARELEDGER_MASTER_KEY_FILE or --master-key-file (create one with 'careledger keygen --master --out FILE')")
        }
        let text = String(decoding: try readSecretFile(path, what: "master key"), as: UTF8.self).filter { !$0.isWhitespace }
        guard let key = Base64.decode(text), let keys = try? PatientKeys(masterKey: key) else {
            throw CLIError("'\(path)' does not hold a base64 32-byte master key")
        }
        return keys
    }

    /// Reads the signing key: a readable PEM file that only its owner may read.
    static func loadSigningKey(path: String) throws(CLIError) -> Ed25519PrivateKey {
        let data = try readSecretFile(path, what: "signing key")
        do {
            return try Ed25519PrivateKey(pem: String(decoding: data, as: UTF8.self))
        } catch {
            throw CLIError("'\(path)' is not an Ed25519 private key in PEM: \(error)")
        }
    }

    static func signer(_ parsed: ParsedArguments, environment: [String: String]) throws(CLIError) -> LedgerSigner {
        guard let path = parsed.value(of: signingKeyFile, environment: environment), !path.isEmpty else {
            throw CLIError("no signing key: set CARELEDGER_SIGNING_KEY_FILE or --signing-key-file (create one with 'careledger keygen --out FILE')")
        }
        let key = try loadSigningKey(path: path)
        let origin = parsed.value(of: Self.origin, environment: environment) ?? ""
        do {
            return try LedgerSigner(origin: origin, key: key)
        } catch {
            throw CLIError("--log-origin: \(error)")
        }
    }
}

/// `careledger keygen --out FILE`: a new Ed25519 signing key.
struct KeygenCommand: Command {
    static let name = "keygen"
    static let summary = "Create an Ed25519 signing key for tree heads."
    static let outOption = OptionSpec(name: "out", valueName: "file", help: "Where to write the private key (PEM, mode 0600); must not exist.", environment: nil, defaultValue: nil)
    static let help = helpText(
        usage: "keygen --out <file> [--log-origin <name>] | keygen --master --out <file>",
        description: "Write a new Ed25519 private key in PEM (mode 0600) and print its key id (hex SHA-256\n"
            + "of the raw public key) and its note verifier key, which witnesses and monitors pin.\n"
            + "With --master, write a new 32-byte master key (base64, mode 0600) for patient data instead.",
        options: [outOption, LedgerOptions.origin], flags: [("master", "Make the master key that wraps patient data keys.")])

    let path: String
    let origin: String
    let master: Bool

    init(arguments: [String], environment: [String: String]) throws(CLIError) {
        let parsed = try ParsedArguments(arguments, options: [Self.outOption, LedgerOptions.origin], flags: ["master"])
        master = parsed.flags.contains("master")
        guard parsed.positionals.isEmpty else { throw CLIError("unexpected argument '\(parsed.positionals[0])'") }
        guard let path = parsed.value(of: Self.outOption, environment: environment), !path.isEmpty else { throw CLIError("--out is required") }
        self.path = path
        origin = parsed.value(of: LedgerOptions.origin, environment: environment) ?? ""
    }

    func run() async throws -> Int32 {
        guard !FileManager.default.fileExists(atPath: path) else { throw CLIError("'\(path)' exists already; refusing to overwrite a key") }
        if master {
            guard FileManager.default.createFile(atPath: path, contents: Data((Base64.encode(SecureRandom.bytes(32)) + "\n").utf8),
                                                 attributes: [.posixPermissions: 0o600]) else { throw CLIError("cannot write '\(path)'") }
            print(#"{"masterKey":"\#(path)"}"#)
            return 0
        }
        let key = try Ed25519PrivateKey()
        let signer = try LedgerSigner(origin: origin, key: key)
        guard FileManager.default.createFile(atPath: path, contents: Data(try key.pemRepresentation().utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CLIError("cannot write '\(path)'")
        }
        print(#"{"keyId":"\#(signer.keyId)","verifierKey":"\#(signer.verifier.text)"}"#)
        return 0
    }
}
