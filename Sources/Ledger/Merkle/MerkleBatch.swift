/// A small Merkle tree held in memory (RFC 9162 §2.1): one ledger entry can commit to a batch of
/// items (telemetry readings) by its root, and each item gets its own audit path to that root.
public enum MerkleBatch {
    /// MTH over the leaf hashes; the empty tree's root is SHA-256 of nothing.
    public static func root(_ leaves: ArraySlice<[UInt8]>) -> [UInt8] {
        switch leaves.count {
        case 0: return MerkleHash.emptyRoot
        case 1: return leaves[leaves.startIndex]
        default:
            let split = leaves.startIndex + largestPowerOfTwo(below: leaves.count)
            return MerkleHash.node(root(leaves[..<split]), root(leaves[split...]))
        }
    }

    /// PATH(index, leaves): the sibling hashes from the leaf up, as `ProofVerifier.verifyInclusion` takes them.
    public static func inclusionProof(index: Int, _ leaves: ArraySlice<[UInt8]>) -> [[UInt8]]? {
        guard index >= 0, index < leaves.count else { return nil }
        guard leaves.count > 1 else { return [] }
        let k = largestPowerOfTwo(below: leaves.count)
        let split = leaves.startIndex + k
        if index < k {
            return inclusionProof(index: index, leaves[..<split]).map { $0 + [root(leaves[split...])] }
        }
        return inclusionProof(index: index - k, leaves[split...]).map { $0 + [root(leaves[..<split])] }
    }

    /// The largest power of two strictly below `n` (n > 1).
    private static func largestPowerOfTwo(below n: Int) -> Int {
        var k = 1
        while k << 1 < n { k <<= 1 }
        return k
    }
}
