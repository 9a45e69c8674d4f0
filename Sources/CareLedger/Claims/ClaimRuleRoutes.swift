import Crypto
import FoundationEssentials
import HTTP
import Ledger

/// An insurer's automatic adjudication rules: `POST`, `GET /v1/claims/rules` and
/// `DELETE /v1/claims/rules/{ruleId}`. Registering and retiring are anchored (`claim.rule.registered`,
/// `claim.rule.retired`) with the rule's hash, so which rules were in force when is provable, and an
/// adjudication's entry names the rule and hash that made it.
enum ClaimRuleRoutes {
    static let maximumActiveRules = 100

    static func register(in api: inout APIRouteBuilder, ledger: LedgerService) {
        let store = ClaimStore()
        let audit = api.access.audit
        let pool = api.access.pool

        api.on(.post, "/v1/claims/rules", .claimsRules) { context in
            let document = try JSONBody.parse(context.request)
            _ = try ClaimRule(document)
            let canonical = JCS.canonicalize(document)
            let id = ResourceID.generate("rul")
            let now = Date()
            let hash = "sha256:" + SHA256.hexDigest(canonical)
            let queueId = try await pool.withTransaction { transaction -> Int64 in
                guard try await store.activeRuleCount(insurerOrg: context.caller.orgId, on: transaction) < maximumActiveRules else {
                    throw Denial.conflict("An insurer may have at most \(maximumActiveRules) active rules; retire one first.", "claim-rule", id)
                }
                let queueId = try await ledger.enqueue(LedgerItem(type: "claim.rule.registered", actor: context.caller.orgId, ref: id, hash: hash),
                                                       on: transaction)
                try await store.insertRule(StoredClaimRule(id: id, insurerOrg: context.caller.orgId, document: canonical, hash: hash, queueId: queueId,
                                                           createdAt: now, retiredAt: nil, retiredQueueId: nil), on: transaction)
                try await audit.record(context.permitted("claim-rule", id), on: transaction)
                return queueId
            }
            let entry = await ledger.sequencedEntry(queueId: queueId)
            return Response.json(.created, try JSONBody.object(RuleView(id: id, ruleHash: hash, createdAt: now, retiredAt: nil, ledger: entry.map(LedgerRef.init)),
                                                           adding: [("rule", canonical)]))
        }

        api.on(.get, "/v1/claims/rules", .claimsRules) { context in
            let pagination = try Pagination(try context.request.query())
            let rows = try await store.activeRules(insurerOrg: context.caller.orgId, after: pagination.after, limit: pagination.limit + 1, on: pool)
            let shown = rows.prefix(pagination.limit)
            let items = try shown.map { rule in
                try JSONBody.object(RuleView(id: rule.id, ruleHash: rule.hash, createdAt: rule.createdAt, retiredAt: nil, ledger: nil), adding: [("rule", rule.document)])
            }
            return try JSONBody.page(encodedItems: items, next: rows.count > pagination.limit ? shown.last?.id : nil)
        }

        api.on(.delete, "/v1/claims/rules/{ruleId}", .claimsRules) { context in
            let id = try context.request.parameters.require("ruleId", as: String.self)
            let now = Date()
            let retired = try await pool.withTransaction { transaction -> (StoredClaimRule, Int64) in
                guard let rule = try await store.rule(id, lock: true, on: transaction), rule.insurerOrg == context.caller.orgId, rule.retiredAt == nil else {
                    throw Denial.notVisible("claim-rule", id)
                }
                let queueId = try await ledger.enqueue(LedgerItem(type: "claim.rule.retired", actor: context.caller.orgId, ref: id, hash: rule.hash),
                                                       on: transaction)
                try await store.retireRule(id, at: now, queueId: queueId, on: transaction)
                try await audit.record(context.permitted("claim-rule", id, reason: "retired"), on: transaction)
                return (rule, queueId)
            }
            let entry = await ledger.sequencedEntry(queueId: retired.1)
            return Response.json(.ok, try JSONBody.object(RuleView(id: id, ruleHash: retired.0.hash, createdAt: retired.0.createdAt, retiredAt: now,
                                                               ledger: entry.map(LedgerRef.init)), adding: [("rule", retired.0.document)]))
        }
    }
}

private struct RuleView: Encodable {
    let id: String
    let ruleHash: String
    let createdAt: String
    let retiredAt: String?
    /// The entry of this change (registration or retirement), when the request made one.
    let ledger: LedgerRef?

    init(id: String, ruleHash: String, createdAt: Date, retiredAt: Date?, ledger: LedgerRef?) {
        self.id = id
        self.ruleHash = ruleHash
        self.createdAt = Timestamp.format(createdAt)
        self.retiredAt = retiredAt.map(Timestamp.format)
        self.ledger = ledger
    }
}
