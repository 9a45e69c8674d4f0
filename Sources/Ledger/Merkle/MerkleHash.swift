import Crypto

/// RFC 9162 §2.1.1 hashing with SHA-256: leaves and interior nodes are domain-separated so a leaf
/// can never pass for a node.
public enum MerkleHash {
    /// SHA-256 of the empty string: the root of the empty tree.
    public static let emptyRoot: [UInt8] = SHA256.digest([UInt8]())

    /// SHA-256(0x00 || entry).
    public static func leaf(_ entry: [UInt8]) -> [UInt8] {
        hash(prefix: 0x00, entry, [])
    }

    /// SHA-256(0x01 || left || right).
    public static func node(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        hash(prefix: 0x01, left, right)
    }

    /// SHA-256(0x01 || left || right) of two adjacent 32-byte children at `children` (64 bytes),
    /// written to `output` (32 bytes): for callers that keep a whole tree level in one buffer and
    /// hash millions of pairs without an array per node.
    public static func node(children: UnsafeRawBufferPointer, into output: UnsafeMutableRawPointer) {
        precondition(children.count == 64, "a node hashes exactly two 32-byte children")
        withUnsafeTemporaryAllocation(byteCount: 65, alignment: 1) { input in
            input[0] = 0x01
            UnsafeMutableRawBufferPointer(rebasing: input[1...]).copyMemory(from: children)
            SHA256.digest(UnsafeRawBufferPointer(input), into: output)
        }
    }

    /// The domain-separated hash, with the input assembled on the stack: the verifier computes
    /// millions of these, and heap copies of each input cost more than the hashing.
    private static func hash(prefix: UInt8, _ first: [UInt8], _ second: [UInt8]) -> [UInt8] {
        let count = 1 + first.count + second.count
        return withUnsafeTemporaryAllocation(byteCount: count, alignment: 1) { input in
            input[0] = prefix
            first.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: input[1..<(1 + first.count)]).copyMemory(from: $0) }
            second.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: input[(1 + first.count)...]).copyMemory(from: $0) }
            var digest = [UInt8](repeating: 0, count: 32)
            digest.withUnsafeMutableBytes { output in
                if let base = output.baseAddress { SHA256.digest(UnsafeRawBufferPointer(input), into: base) }
            }
            return digest
        }
    }
}

/// A perfect subtree: the 2^level leaves from `index << level`. These are the only hashes a log
/// stores besides its leaves; every root and proof is made of them.
public struct NodeID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let level: Int
    public let index: Int64

    public init(level: Int, index: Int64) {
        self.level = level
        self.index = index
    }

    public var description: String { "(\(level), \(index))" }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        (lhs.level, lhs.index) < (rhs.level, rhs.index)
    }
}

/// A run of leaves [begin, end) whose Merkle tree hash (RFC 9162 MTH) a proof needs.
public struct LeafRange: Hashable, Sendable {
    public let begin: Int64
    public let end: Int64

    public init(_ begin: Int64, _ end: Int64) {
        self.begin = begin
        self.end = end
    }

    /// The perfect subtrees that make up the range, largest first. MTH of the range is their
    /// hashes folded from the right: node(P1, node(P2, ... Pk)). This holds for every range the
    /// RFC's recursion produces, whose start is aligned to its largest power of two.
    public var nodes: [NodeID] {
        var nodes: [NodeID] = []
        var begin = self.begin
        var remaining = end - begin
        while remaining > 0 {
            let level = 63 - remaining.leadingZeroBitCount
            nodes.append(NodeID(level: level, index: begin >> level))
            begin += Int64(1) << level
            remaining -= Int64(1) << level
        }
        return nodes
    }

    /// MTH of the range, from the hashes of its perfect subtrees.
    public func hash(_ nodeHash: (NodeID) throws -> [UInt8]) rethrows -> [UInt8] {
        let hashes = try nodes.map(nodeHash)
        guard var accumulator = hashes.last else { return MerkleHash.emptyRoot }
        for hash in hashes.dropLast().reversed() { accumulator = MerkleHash.node(hash, accumulator) }
        return accumulator
    }
}
