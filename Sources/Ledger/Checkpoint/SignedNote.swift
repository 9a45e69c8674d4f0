import Crypto

/// C2SP signed-note (https://c2sp.org/signed-note) with Ed25519 keys, the envelope of C2SP
/// tlog-checkpoint signed tree heads: the text, a blank line, then one line per signature,
/// `— <key name> <base64(key hash[4] || signature[64])>`. The key hash is the first four bytes of
/// SHA-256(name || 0x0A || 0x01 || public key); 0x01 names the Ed25519 algorithm.
public enum SignedNote {
    static let algorithmEd25519: UInt8 = 0x01
    static let signaturePrefix = "\u{2014} "

    /// Why a note was refused.
    public struct NoteError: Error, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The four-byte key hash of a named Ed25519 key.
    public static func keyHash(name: String, publicKey: Ed25519PublicKey) -> [UInt8] {
        Array(SHA256.digest(Array(name.utf8) + [0x0A, algorithmEd25519] + publicKey.rawRepresentation).prefix(4))
    }

    /// A name that fits the format: non-empty, no spaces, pluses or newlines.
    public static func isValidKeyName(_ name: String) -> Bool {
        !name.isEmpty && !name.unicodeScalars.contains { $0 == " " || $0 == "+" || $0 == "\n" || $0.properties.isWhitespace }
    }

    /// The note: `text` (which must end in a newline and hold no blank line) signed by `key` as `name`.
    public static func sign(text: String, name: String, key: Ed25519PrivateKey) throws -> String {
        guard text.hasSuffix("\n"), !text.contains("\n\n") else { throw NoteError("note text must end in one newline and hold no blank line") }
        guard isValidKeyName(name) else { throw NoteError("invalid key name") }
        let signature = try key.signature(for: Array(text.utf8))
        return text + "\n" + signaturePrefix + name + " " + Base64.encode(keyHash(name: name, publicKey: key.publicKey) + signature) + "\n"
    }

    /// The note's text, once a signature by one of `verifiers` checks out. Signatures by other keys
    /// are ignored, as the format intends (a note may carry witnesses' cosignatures).
    public static func open(_ note: String, verifiers: [NoteVerifier]) throws(NoteError) -> (text: String, signers: [String]) {
        let bytes = Array(note.utf8)
        // The signatures follow the last blank line.
        guard note.hasSuffix("\n"), let split = bytes.indices.dropLast().last(where: { bytes[$0] == 0x0A && bytes[$0 + 1] == 0x0A }) else {
            throw NoteError("malformed note: no signature block")
        }
        let text = String(decoding: bytes[...split], as: UTF8.self)
        let block = String(decoding: bytes[(split + 2)...], as: UTF8.self)
        var signers: [String] = []
        for line in block.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            guard line.hasPrefix(signaturePrefix) else { throw NoteError("malformed signature line") }
            let fields = line.dropFirst(signaturePrefix.count).split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count == 2, let blob = Base64.decode(fields[1]), blob.count > 4 else { throw NoteError("malformed signature line") }
            let name = String(fields[0])
            let hash = Array(blob.prefix(4))
            guard let verifier = verifiers.first(where: { $0.name == name && $0.keyHash == hash }) else { continue }
            guard blob.count == 68, verifier.publicKey.isValidSignature(Array(blob.dropFirst(4)), for: Array(text.utf8)) else {
                throw NoteError("invalid signature by \(name)")
            }
            signers.append(name)
        }
        guard !signers.isEmpty else { throw NoteError("no signature by a known key") }
        return (text, signers)
    }
}

/// A named Ed25519 public key that checks notes, as written `<name>+<hex key hash>+<base64(0x01 || key)>`.
public struct NoteVerifier: Sendable, Equatable {
    public let name: String
    public let keyHash: [UInt8]
    public let publicKey: Ed25519PublicKey

    public init(name: String, publicKey: Ed25519PublicKey) {
        self.name = name
        self.publicKey = publicKey
        keyHash = SignedNote.keyHash(name: name, publicKey: publicKey)
    }

    /// Parses the verifier key string; the stated hash must match the key.
    public init(_ text: String) throws(SignedNote.NoteError) {
        let fields = text.split(separator: "+", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3, SignedNote.isValidKeyName(String(fields[0])), let hash = Hex.decode(fields[1]), hash.count == 4,
              let key = Base64.decode(fields[2]), key.count == 33, key[0] == SignedNote.algorithmEd25519,
              let publicKey = try? Ed25519PublicKey(rawRepresentation: Array(key.dropFirst()))
        else { throw SignedNote.NoteError("malformed verifier key") }
        self.init(name: String(fields[0]), publicKey: publicKey)
        guard keyHash == hash else { throw SignedNote.NoteError("verifier key hash does not match its key") }
    }

    public var text: String {
        "\(name)+\(Hex.encode(keyHash))+\(Base64.encode([SignedNote.algorithmEd25519] + publicKey.rawRepresentation))"
    }
}

/// A C2SP tlog-checkpoint: the log's origin, its size and its root hash. Signed, it is a signed
/// tree head that existing witnesses and monitors can check.
public struct Checkpoint: Sendable, Equatable {
    public let origin: String
    public let size: Int64
    public let rootHash: [UInt8]

    public init(origin: String, size: Int64, rootHash: [UInt8]) {
        self.origin = origin
        self.size = size
        self.rootHash = rootHash
    }

    /// The note text: three lines, each ending in a newline.
    public var text: String {
        "\(origin)\n\(size)\n\(Base64.encode(rootHash))\n"
    }

    /// Parses checkpoint text (extension lines after the root are allowed and ignored).
    public init(text: String) throws(SignedNote.NoteError) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard text.hasSuffix("\n"), lines.count >= 4, !lines[0].isEmpty, let size = Int64(lines[1]), size >= 0,
              String(size) == lines[1], let root = Base64.decode(lines[2]), root.count == 32
        else { throw SignedNote.NoteError("malformed checkpoint") }
        self.init(origin: String(lines[0]), size: size, rootHash: root)
    }

    /// Opens a signed checkpoint with `verifiers` and checks it names `origin`.
    public static func open(_ note: String, origin: String, verifiers: [NoteVerifier]) throws(SignedNote.NoteError) -> Checkpoint {
        let checkpoint = try Checkpoint(text: SignedNote.open(note, verifiers: verifiers).text)
        guard checkpoint.origin == origin else { throw SignedNote.NoteError("checkpoint is for another log: \(checkpoint.origin)") }
        return checkpoint
    }
}
