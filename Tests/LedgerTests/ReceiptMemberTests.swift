import Crypto
import Foundation
import Ledger
import Testing

/// A receipt that goes one level further down: from the log's checkpoint to an entry, and from the
/// entry's batch root to one item. Built here from a two-entry log signed with a fresh key.
@Suite struct ReceiptMemberTests {
    private func receipt(items: [[UInt8]], member index: Int) throws -> (Receipt, Ed25519PublicKey) {
        let key = try Ed25519PrivateKey()
        let leaves = items.map(MerkleHash.leaf)
        let root = MerkleBatch.root(leaves[...])
        let first = Array(#"{"hash":"sha256:00","seq":0,"type":"x"}"#.utf8)
        let second = JCS.canonicalize(.object([("hash", .string("sha256:" + Hex.encode(root))), ("seq", .number(1)), ("type", .string("telemetry.batch"))]))
        let logRoot = MerkleHash.node(MerkleHash.leaf(first), MerkleHash.leaf(second))
        let origin = "test.example/log"
        let checkpoint = try SignedNote.sign(text: Checkpoint(origin: origin, size: 2, rootHash: logRoot).text, name: origin, key: key)
        let base = Receipt(origin: origin, keyId: SHA256.hexDigest(key.publicKey.rawRepresentation), seq: 1, entry: String(decoding: second, as: UTF8.self),
                           leafHash: Base64.encode(MerkleHash.leaf(second)), treeSize: 2, inclusionProof: [Base64.encode(MerkleHash.leaf(first))],
                           checkpoint: checkpoint)
        let path = try #require(MerkleBatch.inclusionProof(index: index, leaves[...]))
        return (base.proving(Receipt.Member(digest: Base64.encode(items[index]), index: Int64(index), size: Int64(items.count), proof: path.map(Base64.encode))), key.publicKey)
    }

    @Test func memberVerifiesAndSurvivesJSON() throws {
        let items = (0..<5).map { SHA256.digest([UInt8($0)]) }
        for index in 0..<5 {
            let (receipt, key) = try receipt(items: items, member: index)
            #expect(receipt.version == 2)
            _ = try receipt.verify(publicKey: key)
            let decoded = try JSONDecoder().decode(Receipt.self, from: JSONEncoder().encode(receipt))
            #expect(decoded == receipt)
            _ = try decoded.verify(publicKey: key)
        }
    }

    @Test func wrongMemberIsRefused() throws {
        let items = (0..<5).map { SHA256.digest([UInt8($0)]) }
        let (receipt, key) = try receipt(items: items, member: 2)
        let member = try #require(receipt.member)
        let tampered = receipt.proving(Receipt.Member(digest: Base64.encode(items[3]), index: member.index, size: member.size, proof: member.proof))
        #expect(throws: ProofError.self) { _ = try tampered.verify(publicKey: key) }
        let moved = receipt.proving(Receipt.Member(digest: member.digest, index: member.index + 1, size: member.size, proof: member.proof))
        #expect(throws: ProofError.self) { _ = try moved.verify(publicKey: key) }
        let json = try #require(String(data: JSONEncoder().encode(receipt), encoding: .utf8))
        // A version-1 receipt carrying a member, as an old writer would never make, is refused too.
        let downgraded = json.replacingOccurrences(of: #""version":2"#, with: #""version":1"#)
        #expect(throws: ProofError.self) { _ = try JSONDecoder().decode(Receipt.self, from: Data(downgraded.utf8)).verify(publicKey: key) }
    }
}
