import Crypto
import Ledger
import Testing
import TestSupport

@Suite struct MerkleBatchTests {
    private static func decode(_ text: String) -> [UInt8] { Hex.decode(text) ?? [] }

    /// The in-memory batch tree gives the RFC 6962 vectors' roots and audit paths.
    @Test(arguments: ["rfc6962-reference-tree.json", "rfc6962-8leaf-all-proofs.json"])
    func matchesTheRFC6962Vectors(file: String) throws {
        let json = try SharedFiles.json("testvectors/merkle/\(file)")
        let leaves = (json["leaves_hex"] as? [String] ?? []).map(Self.decode).map(MerkleHash.leaf)
        let roots = (json["root_by_size"] as? [String] ?? []).map(Self.decode)
        #expect(leaves.count == 8 && roots.count == 9)
        for size in 0...min(8, roots.count - 1) {
            #expect(MerkleBatch.root(leaves.prefix(size)) == roots[size], "root of size \(size)")
        }
        let inclusions = (json["inclusion_proofs"] ?? json["inclusion"]) as? [[String: Any]] ?? []
        #expect(!inclusions.isEmpty)
        for item in inclusions {
            guard let index = item["leaf_index"] as? Int, let size = item["tree_size"] as? Int, let proof = item["proof"] as? [String] else {
                Issue.record("unreadable vector")
                continue
            }
            #expect(MerkleBatch.inclusionProof(index: index, leaves.prefix(size)) == proof.map(Self.decode), "inclusion \(index) in \(size)")
        }
    }

    /// Every path of every size up to 40 verifies, and a path for a position the tree lacks is nil.
    @Test func everyPathVerifies() throws {
        let leaves = (0..<40).map { MerkleHash.leaf([UInt8($0)]) }
        for size in 1...40 {
            let tree = leaves.prefix(size)
            let root = MerkleBatch.root(tree)
            for index in 0..<size {
                let proof = try #require(MerkleBatch.inclusionProof(index: index, tree))
                try ProofVerifier.verifyInclusion(leafHash: tree[index], index: Int64(index), size: Int64(size), proof: proof, root: root)
            }
            #expect(MerkleBatch.inclusionProof(index: size, tree) == nil)
            #expect(MerkleBatch.inclusionProof(index: -1, tree) == nil)
        }
    }
}
