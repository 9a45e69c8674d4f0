import Crypto

/// A self-contained proof that one entry is in the log, checkable offline with the log's public
/// key and nothing else. The format is versioned and stable; version 1 is:
/// - `origin`: the log's name; `keyId`: hex SHA-256 of the signing key that signed `checkpoint`;
/// - `seq`: the entry's position; `entry`: its RFC 8785 canonical JSON, exactly as hashed;
/// - `leafHash`: base64 SHA-256(0x00 || entry);
/// - `treeSize`, `inclusionProof`: the RFC 9162 audit path (base64 hashes) for `seq` in that tree;
/// - `checkpoint`: the C2SP signed checkpoint (origin, treeSize, root) the path leads to.
///
/// Version 2 adds `member`: one item of a batch the entry commits to by a Merkle root (its `hash`
/// is `sha256:` and the hex root), with the item's digest, position and RFC 9162 audit path inside
/// the batch. A version-1 verifier refuses it rather than skip the part it cannot check.
public struct Receipt: Codable, Sendable, Equatable {
    public static let currentVersion = 1
    public static let memberVersion = 2

    /// One item of the batch an entry anchors: `digest` is base64 SHA-256 of the item (its leaf is
    /// SHA-256(0x00 || digest)), `index` and `size` its place in the batch, `proof` base64 hashes.
    public struct Member: Codable, Sendable, Equatable {
        public let digest: String
        public let index: Int64
        public let size: Int64
        public let proof: [String]

        public init(digest: String, index: Int64, size: Int64, proof: [String]) {
            self.digest = digest
            self.index = index
            self.size = size
            self.proof = proof
        }
    }

    public var version: Int
    public let origin: String
    public let keyId: String
    public let seq: Int64
    public let entry: String
    public let leafHash: String
    public let treeSize: Int64
    public let inclusionProof: [String]
    public let checkpoint: String
    public private(set) var member: Member?

    public init(origin: String, keyId: String, seq: Int64, entry: String, leafHash: String, treeSize: Int64, inclusionProof: [String], checkpoint: String) {
        version = Self.currentVersion
        self.origin = origin
        self.keyId = keyId
        self.seq = seq
        self.entry = entry
        self.leafHash = leafHash
        self.treeSize = treeSize
        self.inclusionProof = inclusionProof
        self.checkpoint = checkpoint
    }

    /// This receipt extended down to one item of the entry's batch.
    public func proving(_ member: Member) -> Receipt {
        var receipt = self
        receipt.version = Self.memberVersion
        receipt.member = member
        return receipt
    }

    /// Checks everything the receipt claims against `publicKey`; returns the proven entry.
    public func verify(publicKey: Ed25519PublicKey) throws -> JSONValue {
        guard version == Self.currentVersion && member == nil || version == Self.memberVersion && member != nil else {
            throw ProofError("unsupported receipt version \(version)")
        }
        guard keyId == SHA256.hexDigest(publicKey.rawRepresentation) else { throw ProofError("the receipt was signed by key \(keyId), not this one") }
        let verifier = NoteVerifier(name: origin, publicKey: publicKey)
        let head = try Checkpoint.open(checkpoint, origin: origin, verifiers: [verifier])
        guard head.size == treeSize else { throw ProofError("the checkpoint is for size \(head.size), the receipt says \(treeSize)") }
        let bytes = Array(entry.utf8)
        let value = try JSONParser.parse(bytes)
        guard JCS.canonicalize(value) == bytes else { throw ProofError("the entry is not in canonical form") }
        guard value["seq"]?.numberValue == Double(seq) else { throw ProofError("the entry's seq is not \(seq)") }
        guard let claimed = Base64.decode(leafHash), ConstantTime.equals(claimed, MerkleHash.leaf(bytes)) else {
            throw ProofError("the leaf hash does not match the entry")
        }
        let proof = try inclusionProof.map { text throws(ProofError) -> [UInt8] in
            guard let hash = Base64.decode(text) else { throw ProofError("the inclusion proof is not base64") }
            return hash
        }
        try ProofVerifier.verifyInclusion(leafHash: claimed, index: seq, size: treeSize, proof: proof, root: head.rootHash)
        if let member { try verify(member, in: value) }
        return value
    }

    private func verify(_ member: Member, in entry: JSONValue) throws {
        guard let hash = entry["hash"]?.stringValue, hash.hasPrefix("sha256:"), let root = Hex.decode(hash.dropFirst("sha256:".count)), root.count == 32 else {
            throw ProofError("the entry commits to no batch root")
        }
        guard let digest = Base64.decode(member.digest), digest.count == 32 else { throw ProofError("the member digest is not a base64 SHA-256") }
        let path = try member.proof.map { text throws(ProofError) -> [UInt8] in
            guard let hash = Base64.decode(text) else { throw ProofError("the member proof is not base64") }
            return hash
        }
        try ProofVerifier.verifyInclusion(leafHash: MerkleHash.leaf(digest), index: member.index, size: member.size, proof: path, root: root)
    }
}
