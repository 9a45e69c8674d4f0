import CareLedger
import Crypto
import FoundationEssentials
import Ledger
import Postgres

/// `careledger verify`: check the ledger from the database, or one receipt offline.
struct VerifyCommand: Command {
    static let name = "verify"
    static let summary = "Verify the ledger (database) or a receipt (offline)."
    static let trustedHeadOption = OptionSpec(
        name: "trusted-head", valueName: "file",
        help: "A signed checkpoint saved outside the database; the log must extend it.", environment: nil, defaultValue: nil)
    static let keyOption = OptionSpec(
        name: "key", valueName: "file",
        help: "The log's public key: a note verifier key (name+hash+base64), a PEM public key (openssl pkey -pubout), or base64 of the raw 32 bytes.",
        environment: nil, defaultValue: nil)
    static let receiptOption = OptionSpec(name: "receipt", valueName: "file", help: "A receipt from GET /v1/ledger/receipts/{seq}.", environment: nil, defaultValue: nil)
    static let urlOption = OptionSpec(name: "url", valueName: "url", help: "A CareLedger server to monitor (http://); reads CARELEDGER_API_KEY unless the ledger is public.", environment: nil, defaultValue: nil)
    static let options = [trustedHeadOption, keyOption, receiptOption, urlOption, LedgerOptions.masterKeyFile]
    static let help = helpText(
        usage: "verify --database [--trusted-head <file>] [--key <file>]\n       careledger verify --receipt <file> --key <file>\n"
            + "       careledger verify --url <url> --key <file> [--trusted-head <file>] [--full]",
        description: "--database recomputes every leaf from its stored entry, every stored subtree hash, every signed\n"
            + "head's root and signature, and every anchored object's hash; with --trusted-head it also proves the\n"
            + "log extends a checkpoint kept elsewhere (the only way to catch a truncated or re-signed history);\n"
            + "with --key it trusts that key only, not the database's key table; with the master key\n"
            + "(CARELEDGER_MASTER_KEY_FILE) it also opens and re-hashes every sealed exchange document.\n"
            + "--receipt checks a receipt completely offline: no database, no network.\n"
            + "--url monitors a server like a transparency-log witness: checks the latest checkpoint against the pinned\n"
            + "key, proves it consistent with --trusted-head (from the last run), with --full downloads every entry and\n"
            + "recomputes the root, then saves the new checkpoint to --trusted-head.\n"
            + "Exit status 0 when everything holds, 1 at the first thing that does not (named on stderr).\n"
            + DatabaseOptions.environmentNote,
        options: options, flags: [("database", "Verify the ledger in DATABASE_URL."), ("full", "With --url: download all entries and recompute the root.")])

    enum Mode {
        case database(DatabaseOptions, trustedHead: String?, key: Ed25519PublicKey?, patientKeys: PatientKeys?)
        case receipt(Receipt, key: Ed25519PublicKey)
        case monitor(LedgerMonitor)
    }

    let mode: Mode

    init(arguments: [String], environment: [String: String]) throws(CLIError) {
        let parsed = try ParsedArguments(arguments, options: Self.options, flags: ["database", "full"])
        guard parsed.positionals.isEmpty else { throw CLIError("unexpected argument '\(parsed.positionals[0])'") }
        let key = try parsed.value(of: Self.keyOption, environment: [:]).map(Self.readKey)
        let modes = [parsed.flags.contains("database"), parsed.value(of: Self.receiptOption, environment: [:]) != nil,
                     parsed.value(of: Self.urlOption, environment: [:]) != nil].filter { $0 }.count
        guard modes <= 1 else { throw CLIError("use one of --database, --receipt or --url") }
        if let url = parsed.value(of: Self.urlOption, environment: [:]) {
            guard let key else { throw CLIError("--url needs --key (the log's public key to pin)") }
            let client = try HTTPClient(url: url, apiKey: environment["CARELEDGER_API_KEY"])
            mode = .monitor(LedgerMonitor(
                client: client, key: key, trustedHeadPath: parsed.value(of: Self.trustedHeadOption, environment: [:]),
                full: parsed.flags.contains("full")))
        } else if let receiptPath = parsed.value(of: Self.receiptOption, environment: [:]) {
            guard let key else { throw CLIError("--receipt needs --key (the log's public key)") }
            let data = try Self.read(receiptPath)
            do {
                mode = .receipt(try JSONDecoder().decode(Receipt.self, from: data), key: key)
            } catch {
                throw CLIError("'\(receiptPath)' is not a receipt")
            }
        } else if parsed.flags.contains("database") {
            let trusted = try parsed.value(of: Self.trustedHeadOption, environment: [:]).map { path throws(CLIError) in
                String(decoding: try Self.read(path), as: UTF8.self)
            }
            // With the master key, sealed exchange documents are opened and re-hashed too.
            let patientKeys = parsed.value(of: LedgerOptions.masterKeyFile, environment: environment) == nil
                ? nil : try LedgerOptions.patientKeys(parsed, environment: environment)
            mode = .database(try DatabaseOptions(parsed, environment: environment), trustedHead: trusted, key: key, patientKeys: patientKeys)
        } else {
            throw CLIError("say what to verify: --database, --receipt <file> or --url <url>")
        }
    }

    private static func read(_ path: String) throws(CLIError) -> Data {
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read '\(path)'") }
        return data
    }

    /// A note verifier key, a PEM SubjectPublicKeyInfo, or base64 of a raw Ed25519 key.
    static func readKey(_ path: String) throws(CLIError) -> Ed25519PublicKey {
        let contents = String(decoding: try read(path), as: UTF8.self)
        if contents.contains("-----BEGIN") {
            do {
                return try Ed25519PublicKey(pem: contents)
            } catch {
                throw CLIError("'\(path)' is PEM but not an Ed25519 public key: \(error)")
            }
        }
        let text = contents.filter { !$0.isWhitespace }
        if let verifier = try? NoteVerifier(text) { return verifier.publicKey }
        guard let raw = Base64.decode(text), let key = try? Ed25519PublicKey(rawRepresentation: raw) else {
            throw CLIError("'\(path)' holds neither a note verifier key, a PEM public key, nor a base64 Ed25519 public key")
        }
        return key
    }

    func run() async throws -> Int32 {
        switch mode {
        case .monitor(let monitor):
            do {
                let outcome = try monitor.run()
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(#"{"verified":true,"monitor":\#(String(decoding: try encoder.encode(outcome), as: UTF8.self))}"#)
                return 0
            } catch let error as CLIError {
                CareLedgerCLI.printError("careledger verify: FAILED: \(error.message)")
                return 1
            }
        case .receipt(let receipt, let key):
            do {
                let entry = try receipt.verify(publicKey: key)
                print(#"{"verified":true,"seq":\#(receipt.seq),"treeSize":\#(receipt.treeSize),"entry":\#(String(decoding: JCS.canonicalize(entry), as: UTF8.self))}"#)
                return 0
            } catch {
                CareLedgerCLI.printError("careledger verify: receipt FAILED: \(error)")
                return 1
            }
        case .database(let database, let trustedHead, let key, let patientKeys):
            let pool = PostgresPool(configuration: database.pool)
            let started = ContinuousClock.now
            let verifier = LedgerVerifier(pool: pool, pinnedKey: key, patientKeys: patientKeys) { count in
                CareLedgerCLI.printError("careledger verify: \(count) entries checked")
            }
            do {
                let report = try await verifier.verify(trustedHead: trustedHead)
                let elapsed = (ContinuousClock.now - started).components
                let seconds = ((Double(elapsed.seconds) + Double(elapsed.attoseconds) / 1e18) * 1000).rounded() / 1000
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                let summary = String(decoding: try encoder.encode(report), as: UTF8.self)
                print(#"{"verified":true,"seconds":\#(seconds),"report":\#(summary)}"#)
                return 0
            } catch let failure as VerificationFailure {
                CareLedgerCLI.printError("careledger verify: FAILED: \(failure)")
                return 1
            }
        }
    }
}
