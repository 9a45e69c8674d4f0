import FoundationEssentials
import HTTP

/// `POST`, `GET /v1/claims/rules` and `DELETE /v1/claims/rules/{ruleId}`: an insurer's rules.
enum ClaimRuleRoutes {
    static func register(in api: inout APIRouteBuilder, ledger: LedgerService) {
        let service = ClaimRuleService(pool: api.access.pool, ledger: ledger)

        api.on(.post, "/v1/claims/rules", .claimsRules) { context in
            let registered = try await service.register(try JSONBody.parse(context.request), context.call)
            return .json(.created, try RuleView.json(registered.rule, ledger: registered.entry.map(LedgerRef.init)))
        }

        api.on(.get, "/v1/claims/rules", .claimsRules) { context in
            let pagination = try Pagination(try context.query())
            let rows = try await service.activeRules(pagination, context.call)
            let shown = rows.prefix(pagination.limit)
            let items = try shown.map { try RuleView.json($0, ledger: nil) }
            return try JSONBody.page(encodedItems: items, next: rows.count > pagination.limit ? shown.last?.id : nil)
        }

        api.on(.delete, "/v1/claims/rules/{ruleId}", .claimsRules) { context in
            let retired = try await service.retire(try context.parameter("ruleId"), context.call)
            return .json(.ok, try RuleView.json(retired.rule, ledger: retired.entry.map(LedgerRef.init)))
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

    /// The view with the rule's canonical document, sent as stored.
    static func json(_ rule: StoredClaimRule, ledger: LedgerRef?) throws(HTTPError) -> [UInt8] {
        try JSONBody.object(RuleView(id: rule.id, ruleHash: rule.hash, createdAt: Timestamp.format(rule.createdAt),
                                     retiredAt: rule.retiredAt.map(Timestamp.format), ledger: ledger), adding: [("rule", rule.document)])
    }
}
