import Crypto

/// Why a proof does not hold.
public struct ProofError: Error, Equatable, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// RFC 9162 §2.1.3.2 and §2.1.4.2: checking proofs needs nothing but hashes, so anyone can do it.
public enum ProofVerifier {
    /// The root that the audit path implies for the leaf; compare it with a trusted root.
    public static func rootFromInclusion(leafHash: [UInt8], index: Int64, size: Int64, proof: [[UInt8]]) throws(ProofError) -> [UInt8] {
        guard 0 <= index, index < size else { throw ProofError("leaf index \(index) is outside a tree of size \(size)") }
        guard leafHash.count == 32, proof.allSatisfy({ $0.count == 32 }) else { throw ProofError("hashes must be 32 bytes") }
        var fn = index
        var sn = size - 1
        var result = leafHash
        for sibling in proof {
            guard sn != 0 else { throw ProofError("the proof is longer than the tree is deep") }
            if fn & 1 == 1 || fn == sn {
                result = MerkleHash.node(sibling, result)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                result = MerkleHash.node(result, sibling)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw ProofError("the proof is shorter than the tree is deep") }
        return result
    }

    /// Whether the audit path proves the leaf is at `index` in the tree with `root`.
    public static func verifyInclusion(leafHash: [UInt8], index: Int64, size: Int64, proof: [[UInt8]], root: [UInt8]) throws(ProofError) {
        let computed = try rootFromInclusion(leafHash: leafHash, index: index, size: size, proof: proof)
        guard root.count == 32, ConstantTime.equals(computed, root) else { throw ProofError("the proof leads to another root") }
    }

    /// Whether the tree of `newSize` with `newRoot` extends the tree of `oldSize` with `oldRoot`.
    /// A consistency proof from the empty tree proves nothing, so `oldSize` must be at least 1.
    public static func verifyConsistency(
        oldSize: Int64, newSize: Int64, oldRoot: [UInt8], newRoot: [UInt8], proof: [[UInt8]]
    ) throws(ProofError) {
        guard 0 < oldSize else { throw ProofError("a consistency proof from the empty tree is meaningless") }
        guard oldSize <= newSize else { throw ProofError("the old tree is larger than the new one") }
        guard oldRoot.count == 32, newRoot.count == 32, proof.allSatisfy({ $0.count == 32 }) else {
            throw ProofError("hashes must be 32 bytes")
        }
        if oldSize == newSize {
            guard proof.isEmpty else { throw ProofError("equal sizes need an empty proof") }
            guard ConstantTime.equals(oldRoot, newRoot) else { throw ProofError("equal sizes but different roots") }
            return
        }
        var path = proof
        // A power-of-two old tree is a subtree of the new one, so its root starts the path.
        if oldSize & (oldSize - 1) == 0 { path.insert(oldRoot, at: 0) }
        guard let first = path.first else { throw ProofError("the proof is empty") }
        var fn = oldSize - 1
        var sn = newSize - 1
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        var oldResult = first
        var newResult = first
        for hash in path.dropFirst() {
            guard sn != 0 else { throw ProofError("the proof is too long") }
            if fn & 1 == 1 || fn == sn {
                oldResult = MerkleHash.node(hash, oldResult)
                newResult = MerkleHash.node(hash, newResult)
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                newResult = MerkleHash.node(newResult, hash)
            }
            fn >>= 1
            sn >>= 1
        }
        guard sn == 0 else { throw ProofError("the proof is too short") }
        guard ConstantTime.equals(oldResult, oldRoot) else { throw ProofError("the proof does not lead to the old root") }
        guard ConstantTime.equals(newResult, newRoot) else { throw ProofError("the proof does not lead to the new root") }
    }
}
