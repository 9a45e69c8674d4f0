import Crypto
import Postgres

/// Audit batches: each hashes the audit events in its range, and its entry carries that hash.
struct AuditBatchCheck: AnchoredObjectCheck {
    let entryType = "audit.batch"

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        let pool = scope.pool
        let rows = try await pool.query("SELECT first_seq, last_seq, hash, queue_id FROM audit_batches ORDER BY first_seq")
        let pending = try await scope.unsequencedQueueIds()
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
            guard events.first?.seq == first, events.last?.seq == last, AuditStore.batchHash(events.map { $0.value }) == stored else {
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

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        let objects = try await scope.pool.query("SELECT id, hash, queue_id FROM ledger_anchors ORDER BY queue_id").all.map { row in
            AnchoredObject(ref: try row.decode("id"), queueId: try row.decode("queue_id", as: Int64.self), hash: try row.decode("hash"))
        }
        return try AnchoredObject.match(objects, entries: entries, pending: try await scope.unsequencedQueueIds(), table: "ledger_anchors")
    }
}

/// Consents: each grant's and revocation's stored canonical document re-hashes to its entry's hash.
struct ConsentGrantCheck: AnchoredObjectCheck {
    let entryType = "consent.granted"

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        try await ConsentDocumentCheck.check(entries: entries, scope: scope) { ($0.document, $0.queueId) }
    }
}

struct ConsentRevocationCheck: AnchoredObjectCheck {
    let entryType = "consent.revoked"

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        try await ConsentDocumentCheck.check(entries: entries, scope: scope) { consent in
            consent.revocation.flatMap { document in consent.revocationQueueId.map { (document, $0) } }
        }
    }
}

private enum ConsentDocumentCheck {
    static func check(entries: [Int64: EntryFacts], scope: VerificationScope, document: (StoredConsent) -> ([UInt8], Int64)?) async throws -> Int {
        let objects = try await ConsentStore().all(on: scope.pool).compactMap { consent in
            document(consent).map { AnchoredObject(ref: consent.rule.id, queueId: $0.1, hash: "sha256:" + SHA256.hexDigest($0.0)) }
        }
        return try AnchoredObject.match(objects, entries: entries, pending: try await scope.unsequencedQueueIds(), table: "consents")
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

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        let pool = scope.pool
        let exchanges = ExchangeStore()
        var stored: [StoredExchange] = []
        for id in try await exchanges.allIds(on: pool) {
            if let exchange = try await exchanges.exchange(id, on: pool) { stored.append(exchange) }
        }
        let matched = try AnchoredObject.match(
            stored.map { AnchoredObject(ref: $0.id, queueId: $0.sentQueueId, hash: $0.documentHash) }, entries: entries,
            pending: try await scope.unsequencedQueueIds(), table: "exchanges")
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

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        let pool = scope.pool
        let objects = try await ExchangeStore().receipts(on: pool).map { AnchoredObject(ref: $0.0, queueId: $0.1, hash: $0.2) }
        return try AnchoredObject.match(objects, entries: entries, pending: try await scope.unsequencedQueueIds(), table: "exchanges")
    }
}
