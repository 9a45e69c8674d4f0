/// The right edge of a growing tree: for each set bit of its size, the hash of the perfect subtree
/// that bit stands for. Appending a leaf works like a binary counter, and every perfect subtree it
/// completes is handed out for storage. This is all a sequencer needs to extend the log, and the
/// root is the frontier folded.
public struct MerkleFrontier: Sendable, Equatable {
    public private(set) var size: Int64
    /// Largest subtree first.
    public private(set) var nodes: [(id: NodeID, hash: [UInt8])]

    public static func == (lhs: MerkleFrontier, rhs: MerkleFrontier) -> Bool {
        lhs.size == rhs.size && lhs.nodes.elementsEqual(rhs.nodes) { $0.id == $1.id && $0.hash == $1.hash }
    }

    /// The empty tree.
    public init() {
        size = 0
        nodes = []
    }

    /// The frontier of a tree of `size` leaves, from its stored subtree hashes.
    public init(size: Int64, nodeHash: (NodeID) throws -> [UInt8]) rethrows {
        self.size = size
        nodes = try LeafRange(0, size).nodes.map { ($0, try nodeHash($0)) }
    }

    /// The perfect subtrees a frontier of `size` consists of (what to fetch to rebuild it).
    public static func nodeIDs(size: Int64) -> [NodeID] {
        LeafRange(0, size).nodes
    }

    /// Appends a leaf; returns every subtree this completes (the leaf itself first, at level 0).
    @discardableResult
    public mutating func append(leafHash: [UInt8]) -> [(id: NodeID, hash: [UInt8])] {
        var completed = [(id: NodeID(level: 0, index: size), hash: leafHash)]
        var current = completed[0]
        while let last = nodes.last, last.id.level == current.id.level {
            nodes.removeLast()
            current = (NodeID(level: current.id.level + 1, index: last.id.index >> 1), MerkleHash.node(last.hash, current.hash))
            completed.append(current)
        }
        nodes.append(current)
        size += 1
        return completed
    }

    /// The tree's root hash (RFC 9162 MTH).
    public var root: [UInt8] {
        guard var accumulator = nodes.last?.hash else { return MerkleHash.emptyRoot }
        for node in nodes.dropLast().reversed() { accumulator = MerkleHash.node(node.hash, accumulator) }
        return accumulator
    }
}
