/// Which subtree hashes a proof consists of: index arithmetic only, nothing fetched or hashed.
/// A proof is a list of leaf ranges, each standing for its Merkle tree hash, in the order RFC 9162
/// §2.1.3.1 (PATH) and §2.1.4.1 (SUBPROOF) emit them.
public enum ProofShape {
    /// The audit path for leaf `index` in a tree of `size` leaves; an index outside the tree is an
    /// error, not a trap (both numbers may come from a request or a file).
    public static func inclusion(index: Int64, size: Int64) throws(ProofError) -> [LeafRange] {
        guard 0 <= index && index < size else { throw ProofError("leaf index \(index) is outside a tree of size \(size)") }
        var ranges: [LeafRange] = []
        path(index, 0, size, into: &ranges)
        return ranges
    }

    /// The proof that the tree of `newSize` leaves extends the one of `oldSize` (0 < oldSize <= newSize).
    public static func consistency(oldSize: Int64, newSize: Int64) throws(ProofError) -> [LeafRange] {
        guard 0 < oldSize && oldSize <= newSize else { throw ProofError("consistency needs 0 < old size <= new size") }
        var ranges: [LeafRange] = []
        if oldSize < newSize { subproof(oldSize, 0, newSize, complete: true, into: &ranges) }
        return ranges
    }

    /// The largest power of two smaller than `n` (n > 1).
    static func split(_ n: Int64) -> Int64 {
        Int64(1) << (63 - (n - 1).leadingZeroBitCount)
    }

    // PATH(m, D[begin:end]) with m relative to begin.
    private static func path(_ m: Int64, _ begin: Int64, _ end: Int64, into ranges: inout [LeafRange]) {
        let n = end - begin
        guard n > 1 else { return }
        let k = split(n)
        if m < k {
            path(m, begin, begin + k, into: &ranges)
            ranges.append(LeafRange(begin + k, end))
        } else {
            path(m - k, begin + k, end, into: &ranges)
            ranges.append(LeafRange(begin, begin + k))
        }
    }

    // SUBPROOF(m, D[begin:end], b).
    private static func subproof(_ m: Int64, _ begin: Int64, _ end: Int64, complete: Bool, into ranges: inout [LeafRange]) {
        let n = end - begin
        if m == n {
            if !complete { ranges.append(LeafRange(begin, end)) }
            return
        }
        let k = split(n)
        if m <= k {
            subproof(m, begin, begin + k, complete: complete, into: &ranges)
            ranges.append(LeafRange(begin + k, end))
        } else {
            subproof(m - k, begin + k, end, complete: false, into: &ranges)
            ranges.append(LeafRange(begin, begin + k))
        }
    }
}
