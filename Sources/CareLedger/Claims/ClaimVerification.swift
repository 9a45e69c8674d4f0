import Crypto
import Postgres

/// Claim events: each entry of its kind matches its event's document hash and, for a rule's
/// adjudication, the rule it names; with the master key each sealed document is opened and re-hashed.
struct ClaimEventCheck: AnchoredObjectCheck {
    let kind: ClaimEvent.Kind
    var entryType: String { kind.entryType }

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        let pool = scope.pool
        let rows = try await ClaimStore().allEvents(on: pool).filter { $0.event.kind == kind }
        let objects = rows.map { row in
            AnchoredObject(ref: row.event.claimId, queueId: row.event.queueId, hash: row.event.documentHash,
                           basis: row.event.ruleId.flatMap { id in row.event.ruleHash.map { LedgerBasis(ref: id, hash: $0) } })
        }
        let matched = try AnchoredObject.match(objects, entries: entries, pending: try await scope.unsequencedQueueIds(), table: "claim_events")
        guard let keys else { return matched }
        let documents = ClaimDocuments(keys: keys)
        // Erased patients have no data key: their documents are unreadable by design, not tampered.
        let dataKeys = try await documents.dataKeys(for: rows, on: pool)
        for row in rows {
            guard let key = dataKeys[row.patientId] else { continue }
            let seq = entries[row.event.queueId]?.seq
            let document: [UInt8]
            do {
                document = try documents.open(row, key: key)
            } catch {
                throw VerificationFailure(seq: seq, table: "claim_events", detail: "claim \(row.event.claimId)'s sealed \(kind.rawValue) document does not open: altered")
            }
            guard "sha256:" + SHA256.hexDigest(document) == row.event.documentHash else {
                throw VerificationFailure(seq: seq, table: "claim_events", detail: "claim \(row.event.claimId)'s \(kind.rawValue) document no longer hashes to its ledger entry")
            }
        }
        return matched
    }
}

/// Adjudication rules: each registration and retirement entry carries the hash of the rule's
/// stored bytes, recomputed here, and every adjudication made by a rule names that same hash.
struct ClaimRuleCheck: AnchoredObjectCheck {
    let retired: Bool
    var entryType: String { retired ? "claim.rule.retired" : "claim.rule.registered" }

    func check(entries: [Int64: EntryFacts], in scope: VerificationScope, keys: PatientKeys?) async throws -> Int {
        let pool = scope.pool
        let store = ClaimStore()
        let rules = try await store.allRules(on: pool)
        let hashes = Dictionary(uniqueKeysWithValues: rules.map { ($0.id, "sha256:" + SHA256.hexDigest($0.document)) })
        let objects = rules.compactMap { rule -> AnchoredObject? in
            guard let queueId = retired ? rule.retiredQueueId : rule.queueId else { return nil }
            return AnchoredObject(ref: rule.id, queueId: queueId, hash: hashes[rule.id] ?? "")
        }
        let matched = try AnchoredObject.match(objects, entries: entries, pending: try await scope.unsequencedQueueIds(), table: "claim_rules")
        guard !retired else { return matched }
        for row in try await store.allEvents(on: pool) {
            guard let ruleId = row.event.ruleId else { continue }
            guard row.event.ruleHash == hashes[ruleId] else {
                throw VerificationFailure(seq: nil, table: "claim_rules", detail: "rule \(ruleId) no longer hashes to what adjudicated claim \(row.event.claimId)")
            }
        }
        return matched
    }
}
