import Crypto
import FoundationEssentials
import Ledger
import Postgres

/// An insurer's automatic adjudication rules. Registering and retiring are anchored
/// (`claim.rule.registered`, `claim.rule.retired`) with the rule's hash, so which rules were in
/// force when is provable, and an adjudication's entry names the rule and hash that made it.
struct ClaimRuleService: Sendable {
    static let maximumActiveRules = 100

    /// A registration's or retirement's answer.
    struct Changed: Sendable {
        let rule: StoredClaimRule
        let entry: LedgerEntryRow?
    }

    let pool: PostgresPool
    let ledger: LedgerService
    let store = ClaimStore()
    let audit = AuditStore()

    func register(_ document: JSONValue, _ call: CallContext) async throws -> Changed {
        _ = try ClaimRule(document)
        let canonical = JCS.canonicalize(document)
        let id = ResourceID.generate("rul")
        let now = Date()
        let hash = "sha256:" + SHA256.hexDigest(canonical)
        let rule = try await pool.withTransaction { transaction -> StoredClaimRule in
            guard try await store.activeRuleCount(insurerOrg: call.caller.orgId, on: transaction) < Self.maximumActiveRules else {
                throw Denial.conflict("An insurer may have at most \(Self.maximumActiveRules) active rules; retire one first.", "claim-rule", id)
            }
            let queueId = try await ledger.store.enqueue(LedgerItem(type: "claim.rule.registered", actor: call.caller.orgId, ref: id, hash: hash),
                                                         on: transaction)
            let rule = StoredClaimRule(id: id, insurerOrg: call.caller.orgId, document: canonical, hash: hash, queueId: queueId,
                                       createdAt: now, retiredAt: nil, retiredQueueId: nil)
            try await store.insertRule(rule, on: transaction)
            try await audit.record(call.permitted("claim-rule", id), on: transaction)
            return rule
        }
        return Changed(rule: rule, entry: await ledger.sequencedEntry(queueId: rule.queueId))
    }

    /// The caller's active rules after the cursor, one more than the limit (to tell whether there is more).
    func activeRules(_ pagination: Pagination, _ call: CallContext) async throws -> [StoredClaimRule] {
        try await store.activeRules(insurerOrg: call.caller.orgId, after: pagination.after, limit: pagination.limit + 1, on: pool)
    }

    func retire(_ id: String, _ call: CallContext) async throws -> Changed {
        let now = Date()
        let (rule, queueId) = try await pool.withTransaction { transaction -> (StoredClaimRule, Int64) in
            guard let rule = try await store.rule(id, lock: true, on: transaction), rule.insurerOrg == call.caller.orgId, rule.retiredAt == nil else {
                throw Denial.notVisible("claim-rule", id)
            }
            let queueId = try await ledger.store.enqueue(LedgerItem(type: "claim.rule.retired", actor: call.caller.orgId, ref: id, hash: rule.hash),
                                                         on: transaction)
            try await store.retireRule(id, at: now, queueId: queueId, on: transaction)
            try await audit.record(call.permitted("claim-rule", id, reason: "retired"), on: transaction)
            return (rule, queueId)
        }
        let retired = StoredClaimRule(id: rule.id, insurerOrg: rule.insurerOrg, document: rule.document, hash: rule.hash, queueId: rule.queueId,
                                      createdAt: rule.createdAt, retiredAt: now, retiredQueueId: queueId)
        return Changed(rule: retired, entry: await ledger.sequencedEntry(queueId: queueId))
    }
}
