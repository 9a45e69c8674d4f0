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
    func check(entries: [Int64: EntryFacts], on pool: PostgresPool, keys: PatientKeys?) async throws -> Int
}

/// Recomputes the whole log from what is stored: every leaf from its entry, every stored subtree
/// hash from the level below, every signed head's root and signature, and every anchored object's
/// hash. Trusts nothing stored but the entries themselves (and, with a pinned key, not even the
/// key table).
public struct LedgerVerifier: Sendable {
    static let checks: [any AnchoredObjectCheck] = [
        AuditBatchCheck(), AnchorCheck(), ConsentGrantCheck(), ConsentRevocationCheck(), ExchangeSentCheck(), ExchangeReceivedCheck(),
        ClaimRuleCheck(retired: false), ClaimRuleCheck(retired: true),
    ] + ClaimEvent.Kind.allCases.map { ClaimEventCheck(kind: $0) }
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
        let registered = Set(Self.checks.map(\.entryType))
        var facts: [String: [Int64: EntryFacts]] = [:]
        var levels: [HashList] = [try await verifyEntries(registered: registered, facts: &facts)]
        report.entries = Int64(levels[0].count)
        // A truncated tail shows first as a signed head that covers entries no longer there.
        if let head = try await LedgerStore().latestHead(on: pool), head.treeSize > report.entries {
            throw fail("ledger_entries", report.entries, "entries \(report.entries)..<\(head.treeSize) are missing: the signed head of size \(head.treeSize) covers them")
        }
        report.nodes = try await verifyNodes(&levels)
        let (heads, origin) = try await verifyHeads(levels: levels, keys: keys)
        report.heads = heads
        for check in Self.checks {
            report.anchoredObjects[check.entryType] = try await check.check(entries: facts[check.entryType] ?? [:], on: pool, keys: patientKeys)
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

    private func fetchEntries(from seq: Int64) async throws -> [StoredEntry] {
        let rows = try await pool.query("""
            SELECT seq, entry, leaf_hash, queue_id FROM ledger_entries WHERE seq >= \(seq) ORDER BY seq LIMIT \(Self.pageSize)
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
    private func verifyEntries(registered: Set<String>, facts: inout [String: [Int64: EntryFacts]]) async throws -> HashList {
        var leaves = HashList()
        var page = try await fetchEntries(from: 0)
        let workers = max(1, ProcessInfo.processInfo.activeProcessorCount)
        while !page.isEmpty {
            // The next page starts where a dense log continues, not at a stored seq plus one: a
            // tampered seq of Int64.max must be reported, not overflow.
            let nextSeq = Int64(leaves.count + page.count)
            async let following = fetchEntries(from: nextSeq)
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
            return parts.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var level = HashList()
        for part in parts { level.append(contentsOf: part) }
        return level
    }

    private func fetchNodes(level: Int, from index: Int64) async throws -> [(idx: Int64, hash: [UInt8])] {
        let rows = try await pool.query("""
            SELECT idx, hash FROM ledger_nodes WHERE level = \(level) AND idx >= \(index) ORDER BY idx LIMIT \(Self.pageSize)
            """)
        return try rows.all.map { (try $0.decode("idx", as: Int64.self), try $0.bytes("hash")) }
    }

    /// Recomputes every level from the one below and compares it with the stored subtree hashes
    /// (the next page is fetched while this one is compared).
    private func verifyNodes(_ levels: inout [HashList]) async throws -> Int64 {
        var checked: Int64 = 0
        var level = 1
        while true {
            let currentLevel = level
            async let firstPage = fetchNodes(level: currentLevel, from: 0)
            let expected = await Self.parentLevel(levels[level - 1])
            var page = try await firstPage
            var index: Int64 = 0
            while !page.isEmpty {
                let nextIndex = index + Int64(page.count)
                async let following = fetchNodes(level: currentLevel, from: nextIndex)
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
        let rows = try await pool.query("SELECT tree_size, root_hash, key_id, checkpoint FROM ledger_heads ORDER BY tree_size")
        let size = Int64(levels[0].count)
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
        guard checkpoint.size <= size else {
            throw fail("trusted head", checkpoint.size, "the database holds \(size) entries, fewer than the trusted head's \(checkpoint.size): the log was truncated")
        }
        guard Self.root(size: checkpoint.size, levels: levels) == checkpoint.rootHash else {
            throw fail("trusted head", checkpoint.size, "the database's first \(checkpoint.size) entries do not have the trusted root: history was rewritten")
        }
        return checkpoint.size
    }
}

/// Audit batches: each hashes the audit events in its range, and its entry carries that hash.
struct AuditBatchCheck: AnchoredObjectCheck {
    let entryType = "audit.batch"

    func check(entries: [Int64: EntryFacts], on pool: PostgresPool, keys: PatientKeys?) async throws -> Int {
        let rows = try await pool.query("SELECT first_seq, last_seq, hash, queue_id FROM audit_batches ORDER BY first_seq")
        let queued = try await pool.query("SELECT id FROM ledger_queue WHERE type = \(entryType)")
        let pending = Set(try queued.all.map { try $0.decode("id", as: Int64.self) })
        var matched = 0
        let audit = AuditStore()
        for row in rows.all {
            let first = try row.decode("first_seq", as: Int64.self), last = try row.decode("last_seq", as: Int64.self)
            let stored: String = try row.decode("hash")
            let queueId = try row.decode("queue_id", as: Int64.self)
            guard first >= 1, first <= last else {
                throw VerificationFailure(seq: entries[queueId]?.seq, table: "audit_batches", detail: "batch \(first)-\(last) is not a range of audit events")
            }
            let events = try await audit.batchEvents(after: first - 1, through: last, limit: Int.max, on: pool)
            guard events.first?.seq == first, events.last?.seq == last, AuditStore.batchHash(events.map(\.value)) == stored else {
                throw VerificationFailure(seq: entries[queueId]?.seq, table: "audit_events", detail: "audit events \(first)-\(last) no longer hash to their anchored batch")
            }
            guard let entry = entries[queueId] else {
                if pending.contains(queueId) { continue }
                throw VerificationFailure(seq: nil, table: "audit_batches", detail: "batch \(first)-\(last) has no ledger entry")
            }
            guard entry.hash == stored, entry.ref == "audit:\(first)-\(last)" else {
                throw VerificationFailure(seq: entry.seq, table: "audit_batches", detail: "batch \(first)-\(last) differs from its ledger entry")
            }
            matched += 1
        }
        guard matched == entries.count else {
            throw VerificationFailure(seq: nil, table: "audit_batches", detail: "\(entries.count - matched) audit.batch entries have no batch")
        }
        return matched
    }
}

/// Anchors: each entry's ref is the anchor id and its hash the anchored document hash.
struct AnchorCheck: AnchoredObjectCheck {
    let entryType = "anchor"

    func check(entries: [Int64: EntryFacts], on pool: PostgresPool, keys: PatientKeys?) async throws -> Int {
        let rows = try await pool.query("""
            SELECT a.id, a.hash, a.queue_id, q.id IS NOT NULL AS pending
            FROM ledger_anchors a LEFT JOIN ledger_queue q ON q.id = a.queue_id ORDER BY a.queue_id
            """)
        var matched = 0
        for row in rows.all {
            let id: String = try row.decode("id")
            guard let entry = entries[try row.decode("queue_id", as: Int64.self)] else {
                if try row.decode("pending", as: Bool.self) { continue }
                throw VerificationFailure(seq: nil, table: "ledger_anchors", detail: "anchor \(id) has no ledger entry")
            }
            guard entry.ref == id, entry.hash == (try row.decode("hash") as String) else {
                throw VerificationFailure(seq: entry.seq, table: "ledger_anchors", detail: "anchor \(id) differs from its ledger entry")
            }
            matched += 1
        }
        guard matched == entries.count else {
            throw VerificationFailure(seq: nil, table: "ledger_anchors", detail: "\(entries.count - matched) anchor entries have no anchor")
        }
        return matched
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

/// Consents: each grant's and revocation's stored canonical document re-hashes to its entry's hash.
struct ConsentGrantCheck: AnchoredObjectCheck {
    let entryType = "consent.granted"

    func check(entries: [Int64: EntryFacts], on pool: PostgresPool, keys: PatientKeys?) async throws -> Int {
        try await ConsentDocumentCheck.check(entries: entries, pool: pool) { ($0.document, $0.queueId) }
    }
}

struct ConsentRevocationCheck: AnchoredObjectCheck {
    let entryType = "consent.revoked"

    func check(entries: [Int64: EntryFacts], on pool: PostgresPool, keys: PatientKeys?) async throws -> Int {
        try await ConsentDocumentCheck.check(entries: entries, pool: pool) { consent in
            consent.revocation.flatMap { document in consent.revocationQueueId.map { (document, $0) } }
        }
    }
}

private enum ConsentDocumentCheck {
    static func check(entries: [Int64: EntryFacts], pool: PostgresPool, document: (StoredConsent) -> ([UInt8], Int64)?) async throws -> Int {
        let objects = try await ConsentStore().all(on: pool).compactMap { consent in
            document(consent).map { AnchoredObject(ref: consent.rule.id, queueId: $0.1, hash: "sha256:" + SHA256.hexDigest($0.0)) }
        }
        return try AnchoredObject.match(objects, entries: entries, pending: try await LedgerStore().pendingQueueIds(on: pool), table: "consents")
    }
}

/// What an anchored object claims: its id (the entry's ref), the queue id its entry came from, the
/// hash the entry must carry, and the object its decision rests on, if any.
struct AnchoredObject {
    let ref: String
    let queueId: Int64
    let hash: String
    var basis: LedgerBasis? = nil

    /// Every object has its entry with the same ref and hash (or is still queued), and every entry
    /// of the type has its object; returns how many matched.
    static func match(_ objects: [AnchoredObject], entries: [Int64: EntryFacts], pending: Set<Int64>, table: String) throws -> Int {
        var matched = 0
        for object in objects {
            guard let entry = entries[object.queueId] else {
                if pending.contains(object.queueId) { continue }
                throw VerificationFailure(seq: nil, table: table, detail: "\(object.ref) has no ledger entry")
            }
            guard entry.ref == object.ref, entry.hash == object.hash, entry.basis == object.basis else {
                throw VerificationFailure(seq: entry.seq, table: table, detail: "\(object.ref) no longer hashes to its ledger entry")
            }
            matched += 1
        }
        guard matched == entries.count else {
            throw VerificationFailure(seq: nil, table: table, detail: "\(entries.count - matched) entries have no object in \(table)")
        }
        return matched
    }
}

/// Exchanges: the entry carries the document's hash; with the master key the sealed document is
/// opened and re-hashed. A patient whose data key was destroyed (erasure) is reported as erased by
/// the caller, not as tampered: its documents can no longer be opened by anyone.
struct ExchangeSentCheck: AnchoredObjectCheck {
    let entryType = "exchange.sent"

    func check(entries: [Int64: EntryFacts], on pool: PostgresPool, keys: PatientKeys?) async throws -> Int {
        let exchanges = ExchangeStore()
        var stored: [StoredExchange] = []
        for id in try await exchanges.allIds(on: pool) {
            if let exchange = try await exchanges.exchange(id, on: pool) { stored.append(exchange) }
        }
        let matched = try AnchoredObject.match(
            stored.map { AnchoredObject(ref: $0.id, queueId: $0.sentQueueId, hash: $0.documentHash) }, entries: entries,
            pending: try await LedgerStore().pendingQueueIds(on: pool), table: "exchanges")
        guard let keys else { return matched }
        let patients = PatientStore()
        for exchange in stored {
            // Erased patients' documents cannot be opened by anyone; that is erasure, not tampering.
            guard let wrapped = try await patients.patient(exchange.patientId, on: pool)?.wrappedDataKey else { continue }
            let seq = entries[exchange.sentQueueId]?.seq
            let document: [UInt8]
            do {
                document = try AESGCM.open(exchange.sealedDocument, key: try keys.unwrap(wrapped, patientId: exchange.patientId),
                                           authenticating: ExchangeStore.sealContext(exchange.id))
            } catch {
                throw VerificationFailure(seq: seq, table: "exchanges", detail: "exchange \(exchange.id)'s sealed document does not open: altered")
            }
            guard "sha256:" + SHA256.hexDigest(document) == exchange.documentHash else {
                throw VerificationFailure(seq: seq, table: "exchanges", detail: "exchange \(exchange.id)'s document no longer hashes to its ledger entry")
            }
        }
        return matched
    }
}

/// Proofs of delivery: each `exchange.received` entry matches the exchange's recorded receipt hash.
struct ExchangeReceivedCheck: AnchoredObjectCheck {
    let entryType = "exchange.received"

    func check(entries: [Int64: EntryFacts], on pool: PostgresPool, keys: PatientKeys?) async throws -> Int {
        let objects = try await ExchangeStore().receipts(on: pool).map { AnchoredObject(ref: $0.0, queueId: $0.1, hash: $0.2) }
        return try AnchoredObject.match(objects, entries: entries, pending: try await LedgerStore().pendingQueueIds(on: pool), table: "exchanges")
    }
}
