import Crypto
import FoundationEssentials
import Ledger

/// The log's identity and signing key. The origin names the log in every checkpoint and is the
/// note key name; the key id is the hex SHA-256 of the raw public key.
public struct LedgerSigner: Sendable {
    public let origin: String
    public let key: Ed25519PrivateKey
    public let keyId: String

    public init(origin: String, key: Ed25519PrivateKey) throws(CryptoError) {
        guard SignedNote.isValidKeyName(origin) else { throw CryptoError("the log origin must be non-empty, without spaces or '+'") }
        self.origin = origin
        self.key = key
        keyId = Self.keyId(key.publicKey)
    }

    public static func keyId(_ publicKey: Ed25519PublicKey) -> String {
        SHA256.hexDigest(publicKey.rawRepresentation)
    }

    public var verifier: NoteVerifier {
        NoteVerifier(name: origin, publicKey: key.publicKey)
    }

    /// The signed checkpoint for a tree.
    func signedCheckpoint(size: Int64, root: [UInt8]) throws -> String {
        try SignedNote.sign(text: Checkpoint(origin: origin, size: size, rootHash: root).text, name: origin, key: key)
    }
}

/// How a ledger entry is written: canonical JSON of exactly these members, plus `basis` and
/// `basisHash` when the entry's decision rests on another anchored object.
enum LedgerEntry {
    static func canonical(seq: Int64, item: LedgerItem, time: Date) -> [UInt8] {
        var members: [(key: String, value: JSONValue)] = [
            ("actor", .string(item.actor)), ("hash", .string(item.hash)), ("ref", .string(item.ref)),
            ("seq", .number(Double(seq))), ("time", .string(Timestamp.format(time))), ("type", .string(item.type)),
        ]
        if let basis = item.basis { members += [("basis", .string(basis.ref)), ("basisHash", .string(basis.hash))] }
        return JCS.canonicalize(.object(members))
    }
}
