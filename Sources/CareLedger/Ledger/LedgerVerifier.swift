import Crypto
import FoundationEssentials
import Ledger
import Postgres

/// The first thing found wrong, named by where it is.
public struct VerificationFailure: Error, CustomStringConvertible, Sendable {
    public let seq: Int64?
    public let table: String
    public let detail: String

    public var description: String {
        "\(table)\(seq.map { " at seq \($0)" } ?? ""): \(detail)"
    }
}

/// What a full check covered.
public struct VerificationReport: Sendable, Encodable {
    public var entries: Int64 = 0
    public var nodes: Int64 = 0
    public var heads = 0
    public var keys = 0
    public var anchoredObjects: [String: Int] = [:]
    public var trustedHeadSize: Int64?
    /// Whether sealed documents were opened and re-hashed (needs the master key).
    public var documentsRehashed = false
    /// Patients whose data key was destroyed: their documents are unreadable by design, not tampered.
    public var erasedPatients = 0
}

/// The facts of one entry that anchored-object checks need.
struct EntryFacts: Sendable {
    let seq: Int64
    let type: String
    let ref: String
    let hash: String
    var basis: LedgerBasis? = nil
}

/// How one kind of anchored object is re-hashed and matched with its entries. Each domain area
/// registers one; an entry of a registered type without its object, or an object whose hash or
/// entry differs, is a failure.
protocol AnchoredObjectCheck: Sendable {
    var entryType: String { get }
    /// Checks every object against the entries of `entryType`, keyed by queue id; returns how many it
    /// checked. `keys` (the master key's) lets sealed documents be opened and re-hashed.
    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int
}

/// The log a verification covers: every entry the latest signed head had when it began, so a
/// server that goes on sequencing meanwhile (more entries, subtrees, heads) is not mistaken for
/// tampering. Objects whose entries came later count as not sequenced yet.
struct VerificationScope: Sendable {
    let pool: PostgresPool
    /// The covered tree size.
    let size: Int64

    /// The queue ids of objects that need not have an entry in scope: still queued, or sequenced
    /// after it. Read after the objects are, so an object made meanwhile is in one or the other.
    func unsequencedQueueIds() async throws -> Set<Int64> {
        try await LedgerStore().queueIdsNotSequenced(within: size, on: pool)
    }
}

/// Recomputes the whole log from what is stored: every leaf from its entry, every stored subtree
/// hash from the level below, every signed head's root and signature, and every anchored object's
/// hash. Trusts nothing stored but the entries themselves (and, with a pinned key, not even the
/// key table).
public struct LedgerVerifier: Sendable {
    static let checks: [any AnchoredObjectCheck] = [
        AuditBatchCheck(), AnchorCheck(), ConsentGrantCheck(), ConsentRevocationCheck(), ExchangeSentCheck(), ExchangeReceivedCheck(),
        ClaimRuleCheck(retired: false), ClaimRuleCheck(retired: true),
    ] + ClaimEvent.Kind.allCases.map { ClaimEventCheck(kind: $0) } + PrescriptionRecordCheck.all + SupplyRecordCheck.all
        + DeviceRecordCheck.all
    static let pageSize = 50_000

    let pool: PostgresPool
    let pinnedKey: Ed25519PublicKey?
    let patientKeys: PatientKeys?
    let progress: @Sendable (Int64) -> Void

    /// Without `patientKeys`, sealed exchange documents are matched by their stored hash only, not
    /// opened and re-hashed (the report says how many).
    public init(pool: PostgresPool, pinnedKey: Ed25519PublicKey? = nil, patientKeys: PatientKeys? = nil,
                progress: @escaping @Sendable (Int64) -> Void = { _ in }) {
        self.pool = pool
        self.pinnedKey = pinnedKey
        self.patientKeys = patientKeys
        self.progress = progress
    }

    public func verify(trustedHead: String? = nil) async throws -> VerificationReport {
        var report = VerificationReport()
        let keys = try await loadKeys()
        report.keys = keys.count
        let store = LedgerStore()
        let scope = VerificationScope(pool: pool, size: try await store.latestHead(on: pool)?.treeSize ?? 0)
        let registered = Set(Self.checks.map { $0.entryType })
        var facts: [String: [Int64: EntryFacts]] = [:]
        var levels: [HashList] = [try await verifyEntries(below: scope.size, registered: registered, facts: &facts)]
        report.entries = Int64(levels[0].count)
        // A truncated tail shows first as a signed head that covers entries no longer there.
        guard report.entries == scope.size else {
            throw fail("ledger_entries", report.entries, "entries \(report.entries)..<\(scope.size) are missing: the signed head of size \(scope.size) covers them")
        }
        report.nodes = try await verifyNodes(&levels)
        let (heads, origin) = try await verifyHeads(levels: levels, keys: keys)
        report.heads = heads
        for check in Self.checks {
            report.anchoredObjects[check.entryType] = try await check.check(entries: facts[check.entryType] ?? [:], in: scope, keys: patientKeys)
        }
        // Entries no signed head covers: heads commit with their entries, so these were added around the log.
        if let unsigned = try await store.firstUnsignedEntry(on: pool) {
            throw fail("ledger_entries", unsigned.seq, "entry \(unsigned.seq) is not covered by any signed head (the latest has size \(unsigned.headSize))")
        }
        report.documentsRehashed = patientKeys != nil
        report.erasedPatients = try await PatientStore().erasedCount(on: pool)
        if let trustedHead {
            report.trustedHeadSize = try verifyTrustedHead(trustedHead, origin: origin, levels: levels, keys: keys)
        }
        return report
    }

    private func fail(_ table: String, _ seq: Int64?, _ detail: String) -> VerificationFailure {
        VerificationFailure(seq: seq, table: table, detail: detail)
    }

    private func loadKeys() async throws -> [String: Ed25519PublicKey] {
        var keys: [String: Ed25519PublicKey] = [:]
        for key in try await LedgerStore().keys(on: pool) {
            guard let publicKey = try? Ed25519PublicKey(rawRepresentation: key.publicKey), LedgerSigner.keyId(publicKey) == key.keyId else {
                throw fail("ledger_keys", nil, "key \(key.keyId) does not match its public key")
            }
            if let pinnedKey, pinnedKey != publicKey { continue }
            keys[key.keyId] = publicKey
        }
        return keys
    }

    private struct StoredEntry: Sendable {
        let seq: Int64
        let entry: [UInt8]
        let leafHash: [UInt8]
        let queueId: Int64
    }

    private func fetchEntries(from seq: Int64, below size: Int64) async throws -> [StoredEntry] {
        let rows = try await pool.query("""
            SELECT seq, entry, leaf_hash, queue_id FROM ledger_entries WHERE seq >= \(seq) AND seq < \(size) ORDER BY seq LIMIT \(Self.pageSize)
            """)
        return try rows.all.map { row in
            StoredEntry(seq: try row.decode("seq", as: Int64.self), entry: try row.bytes("entry"), leafHash: try row.bytes("leaf_hash"),
                        queueId: try row.decode("queue_id", as: Int64.self))
        }
    }

    /// One entry checked on its own: its leaf hash, and its facts, or what is wrong with it.
    private static func check(_ stored: StoredEntry) -> Result<(leafHash: [UInt8], facts: EntryFacts), VerificationFailure> {
        let leafHash = MerkleHash.leaf(stored.entry)
        guard stored.leafHash == leafHash else {
            return .failure(VerificationFailure(seq: stored.seq, table: "ledger_entries", detail: "the stored leaf hash does not match the entry"))
        }
        guard let value = CanonicalScanner.canonicalObjectMembers(stored.entry) else {
            return .failure(VerificationFailure(seq: stored.seq, table: "ledger_entries", detail: "the entry is not canonical JSON"))
        }
        guard value["seq"]?.numberValue == Double(stored.seq), let type = value["type"]?.stringValue,
              let ref = value["ref"]?.stringValue, let hash = value["hash"]?.stringValue else {
            return .failure(VerificationFailure(seq: stored.seq, table: "ledger_entries", detail: "the entry's fields do not match its place in the log"))
        }
        var basis: LedgerBasis?
        if let basisRef = value["basis"]?.stringValue, let basisHash = value["basisHash"]?.stringValue {
            basis = LedgerBasis(ref: basisRef, hash: basisHash)
        }
        return .success((leafHash, EntryFacts(seq: stored.seq, type: type, ref: ref, hash: hash, basis: basis)))
    }

    /// Leaf hashes, in order, after checking each entry. The next page is fetched while this one is
    /// checked, and each page is checked on every core; failures are still reported in seq order.
    private func verifyEntries(below size: Int64, registered: Set<String>, facts: inout [String: [Int64: EntryFacts]]) async throws -> HashList {
        var leaves = HashList()
        var page = try await fetchEntries(from: 0, below: size)
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        while !page.isEmpty {
            // The next page starts where a dense log continues, not at a stored seq plus one: a
            // tampered seq of Int64.max must be reported, not overflow.
            let nextSeq = Int64(leaves.count + page.count)
            async let following = fetchEntries(from: nextSeq, below: size)
            let current = page
            let chunk = (current.count + workers - 1) / workers
            let results = await withTaskGroup(of: (Int, [Result<(leafHash: [UInt8], facts: EntryFacts), VerificationFailure>]).self) { group in
                for start in stride(from: 0, to: current.count, by: chunk) {
                    group.addTask { (start, current[start..<min(start + chunk, current.count)].map(Self.check)) }
                }
                var parts: [(Int, [Result<(leafHash: [UInt8], facts: EntryFacts), VerificationFailure>])] = []
                for await part in group { parts.append(part) }
                return parts.sorted { $0.0 < $1.0 }.flatMap(\.1)
            }
            for (stored, result) in zip(current, results) {
                let expected = Int64(leaves.count)
                guard stored.seq == expected else { throw fail("ledger_entries", expected, "entry \(expected) is missing (next stored is \(stored.seq))") }
                let (leafHash, entryFacts) = try result.get()
                if registered.contains(entryFacts.type) { facts[entryFacts.type, default: [:]][stored.queueId] = entryFacts }
                leaves.append(leafHash)
                if leaves.count % 100_000 == 0 { progress(Int64(leaves.count)) }
            }
            page = try await following
        }
        return leaves
    }

    /// The level above `below`, hashed on every core.
    private static func parentLevel(_ below: HashList) async -> HashList {
        let count = below.count / 2
        guard count > 0 else { return HashList() }
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let chunk = max(1024, (count + workers - 1) / workers)
        let parts = await withTaskGroup(of: (Int, HashList).self) { group in
            for start in stride(from: 0, to: count, by: chunk) {
                group.addTask { (start, below.parents(of: start..<min(start + chunk, count))) }
            }
            var parts: [(Int, HashList)] = []
            for await part in group { parts.append(part) }
            return parts.sorted { $0.0 < $1.0 }.map { $0.1 }
        }
        var level = HashList()
        for part in parts { level.append(contentsOf: part) }
        return level
    }

    /// Subtrees of `level` from `index`, those a tree of `size` has complete (`size >> level` of them).
    private func fetchNodes(level: Int, from index: Int64, size: Int64) async throws -> [(idx: Int64, hash: [UInt8])] {
        let rows = try await pool.query("""
            SELECT idx, hash FROM ledger_nodes WHERE level = \(level) AND idx >= \(index) AND idx < \(size >> level) ORDER BY idx LIMIT \(Self.pageSize)
            """)
        return try rows.all.map { (try $0.decode("idx", as: Int64.self), try $0.bytes("hash")) }
    }

    /// Recomputes every level from the one below and compares it with the stored subtree hashes
    /// (the next page is fetched while this one is compared).
    private func verifyNodes(_ levels: inout [HashList]) async throws -> Int64 {
        let size = Int64(levels[0].count)
        var checked: Int64 = 0
        var level = 1
        while true {
            let currentLevel = level
            async let firstPage = fetchNodes(level: currentLevel, from: 0, size: size)
            let expected = await Self.parentLevel(levels[level - 1])
            var page = try await firstPage
            var index: Int64 = 0
            while !page.isEmpty {
                let nextIndex = index + Int64(page.count)
                async let following = fetchNodes(level: currentLevel, from: nextIndex, size: size)
                for (idx, hash) in page {
                    let firstLeaf = idx << level
                    guard idx == index, idx < expected.count else {
                        throw fail("ledger_nodes", firstLeaf, "unexpected subtree (\(level), \(idx)); expected (\(level), \(index)) of \(expected.count)")
                    }
                    guard expected.matches(Int(idx), hash) else {
                        throw fail("ledger_nodes", firstLeaf, "subtree (\(level), \(idx)) does not match the entries below it")
                    }
                    index += 1
                    checked += 1
                }
                page = try await following
            }
            guard index == expected.count else {
                throw fail("ledger_nodes", index << level, "subtree (\(level), \(index)) is missing")
            }
            if expected.isEmpty { return checked }
            levels.append(expected)
            level += 1
        }
    }

    private static func root(size: Int64, levels: [HashList]) -> [UInt8] {
        LeafRange(0, size).hash { levels[$0.level][Int($0.index)] }
    }

    /// Every head: signed by a listed key, its checkpoint matching the row and the recomputed root.
    private func verifyHeads(levels: [HashList], keys: [String: Ed25519PublicKey]) async throws -> (Int, String?) {
        let size = Int64(levels[0].count)
        let rows = try await pool.query("SELECT tree_size, root_hash, key_id, checkpoint FROM ledger_heads WHERE tree_size <= \(size) ORDER BY tree_size")
        var origin: String?
        for row in rows.all {
            let treeSize = try row.decode("tree_size", as: Int64.self)
            let note: String = try row.decode("checkpoint")
            guard let key = keys[try row.decode("key_id")] else {
                throw fail("ledger_heads", treeSize, "the head's key is not \(pinnedKey == nil ? "listed" : "the pinned key")")
            }
            let headOrigin = note.prefix { $0 != "\n" }
            let checkpoint: Checkpoint
            do {
                checkpoint = try Checkpoint.open(note, origin: String(headOrigin), verifiers: [NoteVerifier(name: String(headOrigin), publicKey: key)])
            } catch {
                throw fail("ledger_heads", treeSize, "the checkpoint signature does not verify: \(error)")
            }
            if origin == nil { origin = checkpoint.origin }
            guard checkpoint.origin == origin else { throw fail("ledger_heads", treeSize, "the head names another log: \(checkpoint.origin)") }
            let root = Self.root(size: treeSize, levels: levels)
            guard checkpoint.size == treeSize, checkpoint.rootHash == root,
                  try row.decode("root_hash", as: PostgresBytes.self).bytes == root else {
                throw fail("ledger_heads", treeSize, "the signed root does not match the entries")
            }
        }
        guard let last = rows.all.last, try last.decode("tree_size", as: Int64.self) == size else {
            throw fail("ledger_heads", size, "no signed head covers all \(size) entries")
        }
        return (rows.count, origin)
    }

    /// Proves the stored log extends a checkpoint kept outside the database.
    private func verifyTrustedHead(_ note: String, origin: String?, levels: [HashList], keys: [String: Ed25519PublicKey]) throws -> Int64 {
        let name = String(note.prefix { $0 != "\n" })
        guard origin == nil || origin == name else { throw fail("trusted head", nil, "it is for another log: \(name)") }
        let verifiers = keys.values.map { NoteVerifier(name: name, publicKey: $0) }
        let checkpoint: Checkpoint
        do {
            checkpoint = try Checkpoint.open(note, origin: name, verifiers: verifiers)
        } catch {
            throw fail("trusted head", nil, "its signature does not verify: \(error)")
        }
        let size = Int64(levels[0].count)
        // A database restored from a backup older than a published checkpoint is a rollback: the
        // entries from its size on were acknowledged, and are gone.
        guard checkpoint.size <= size else {
            throw fail("trusted head", size, "the log was rolled back or truncated: the database holds \(size) entries, the trusted head "
                       + "covers \(checkpoint.size); the first missing sequence number is \(size)")
        }
        guard Self.root(size: checkpoint.size, levels: levels) == checkpoint.rootHash else {
            throw fail("trusted head", checkpoint.size, "the database's first \(checkpoint.size) entries do not have the trusted root: history was "
                       + "rewritten (or rolled back and written again)")
        }
        return checkpoint.size
    }
}

/// Hashes of one tree level, 32 bytes each, end to end in one buffer: a million-entry log's levels
/// would otherwise be millions of small heap arrays.
struct HashList: Sendable {
    private(set) var storage: [UInt8] = []

    var count: Int { storage.count / 32 }
    var isEmpty: Bool { storage.isEmpty }

    subscript(index: Int) -> [UInt8] {
        Array(storage[(index * 32)..<(index * 32 + 32)])
    }

    func matches(_ index: Int, _ hash: [UInt8]) -> Bool {
        hash.count == 32 && storage[(index * 32)..<(index * 32 + 32)].elementsEqual(hash)
    }

    mutating func append(_ hash: [UInt8]) {
        storage.append(contentsOf: hash)
    }

    mutating func append(contentsOf other: HashList) {
        storage.append(contentsOf: other.storage)
    }

    /// The parents of the pairs `range` (parent i covers children 2i and 2i + 1), hashed by the
    /// Ledger module's node hash straight from this buffer.
    func parents(of range: Range<Int>) -> HashList {
        var result = HashList()
        guard !range.isEmpty, range.lowerBound >= 0, range.upperBound * 2 <= count else { return result }
        result.storage = [UInt8](unsafeUninitializedCapacity: range.count * 32) { output, initialized in
            storage.withUnsafeBytes { children in
                // Both are non-empty here (the range is, and so are the pairs under it).
                guard let outputBase = output.baseAddress else { return }
                for (offset, parent) in range.enumerated() {
                    MerkleHash.node(children: UnsafeRawBufferPointer(rebasing: children[(parent * 64)..<(parent * 64 + 64)]),
                                    into: UnsafeMutableRawPointer(outputBase.advanced(by: offset * 32)))
                    initialized = (offset + 1) * 32
                }
            }
        }
        return result
    }
}
