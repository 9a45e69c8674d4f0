import FoundationEssentials
import Ledger

/// An insurer's automatic adjudication rule: data (JSON conditions), never code, so what decided a
/// claim can be read, hashed, anchored and proven later.
///
/// `{"name": ..., "action": "approve" | "deny", "when": {conditions}}`; a rule matches a claim when
/// every condition it states holds:
/// - `productOrServiceIn`: every item's productOrService has one of these codes (`code` or `system|code`);
/// - `totalBelow`: the claim's total is below this Money, in the same currency;
/// - `claimTypeIn`: the claim's type has one of these codes;
/// - `patientIn`: the claim is about one of these patients;
/// - `servicedAfter` (`YYYY-MM-DD`): a service date is after this day (coverage that has ended).
struct ClaimRule: Sendable {
    enum Decision: String, Sendable {
        case approve, deny
    }

    static let fields: Set<String> = ["name", "action", "when"]
    static let conditionFields: Set<String> = ["productOrServiceIn", "totalBelow", "claimTypeIn", "patientIn", "servicedAfter"]
    static let maximumListLength = 1_000

    let name: String
    let decision: Decision
    var productOrServiceIn: Set<String>?
    var totalBelow: Money?
    var claimTypeIn: Set<String>?
    var patientIn: Set<String>?
    var servicedAfter: String?

    /// Reads a rule document; every problem is a 400 naming the field.
    init(_ document: JSONValue) throws(DomainError) {
        guard case .object(let members) = document else { throw DomainError.invalid("The rule must be a JSON object.") }
        if let unknown = members.map(\.key).sorted().first(where: { !Self.fields.contains($0) }) { throw DomainError.invalid("Unknown field '\(unknown)'.") }
        guard let name = document["name"]?.stringValue, (1...200).contains(name.count) else {
            throw DomainError.invalid("'name' must be a string of 1 to 200 characters.")
        }
        guard let action = document["action"]?.stringValue, let decision = Decision(rawValue: action) else {
            throw DomainError.invalid("'action' must be approve or deny.")
        }
        guard case .object(let conditions) = document["when"], !conditions.isEmpty else {
            throw DomainError.invalid("'when' must be an object with at least one condition.")
        }
        if let unknown = conditions.map(\.key).sorted().first(where: { !Self.conditionFields.contains($0) }) {
            throw DomainError.invalid("Unknown condition 'when.\(unknown)'; conditions are \(Self.conditionFields.sorted().joined(separator: ", ")).")
        }
        self.name = name
        self.decision = decision
        let when = document["when"]
        productOrServiceIn = try Self.list(when?["productOrServiceIn"], "productOrServiceIn")
        claimTypeIn = try Self.list(when?["claimTypeIn"], "claimTypeIn")
        patientIn = try Self.list(when?["patientIn"], "patientIn")
        if let money = when?["totalBelow"] {
            do {
                totalBelow = try Money(money, path: "when.totalBelow")
            } catch .invalidResource(let path, let problem) {
                // A rule is the insurer's request, not a resource: its problems are plain 400s.
                throw DomainError.invalid("\(path): \(problem).")
            } catch {
                throw error
            }
        }
        if let day = when?["servicedAfter"] {
            guard let text = day.stringValue, text.utf8.count == 10, FHIRClaim.day(text) == text else {
                throw DomainError.invalid("'when.servicedAfter' must be a date, YYYY-MM-DD.")
            }
            servicedAfter = text
        }
    }

    private static func list(_ value: JSONValue?, _ name: String) throws(DomainError) -> Set<String>? {
        guard let value else { return nil }
        guard case .array(let elements) = value, (1...maximumListLength).contains(elements.count) else {
            throw DomainError.invalid("'when.\(name)' must be an array of 1 to \(maximumListLength) strings.")
        }
        var strings: Set<String> = []
        for element in elements {
            guard let text = element.stringValue, !text.isEmpty else { throw DomainError.invalid("'when.\(name)' must hold non-empty strings.") }
            strings.insert(text)
        }
        return strings
    }

    /// Whether every stated condition holds for `claim`, about `patientId`.
    func matches(_ claim: FHIRClaim, patientId: String) -> Bool {
        if let codes = productOrServiceIn, !claim.itemCodes.allSatisfy({ !$0.isDisjoint(with: codes) }) { return false }
        if let limit = totalBelow, !(claim.total.currency == limit.currency && claim.total.value < limit.value) { return false }
        if let types = claimTypeIn, claim.typeCodes.isDisjoint(with: types) { return false }
        if let patients = patientIn, !patients.contains(patientId) { return false }
        if let day = servicedAfter, !claim.serviceDates.contains(where: { $0 > day }) { return false }
        return true
    }
}

/// Which of an insurer's rules decides a claim: a matching deny rule before any approve rule (a
/// payer's exclusions win over its fast lanes), the oldest first within each; none when no rule matches.
enum ClaimAdjudicator {
    static func decide<Rule>(_ claim: FHIRClaim, patientId: String, rules: [Rule], rule: (Rule) -> ClaimRule) -> Rule? {
        let matching = rules.filter { rule($0).matches(claim, patientId: patientId) }
        return matching.first { rule($0).decision == .deny } ?? matching.first
    }

    /// The ClaimResponse the hub writes for a rule's decision: approve pays the total, deny pays
    /// nothing; the disposition names the rule and its hash.
    static func response(to claim: FHIRClaim, claimId: String, insurerOrg: String, ruleId: String, ruleHash: String, rule: ClaimRule,
                         at time: Date) -> JSONValue {
        let approved = rule.decision == .approve
        let paid = approved ? claim.total : Money(value: 0, currency: claim.total.currency)
        var members: [(key: String, value: JSONValue)] = [
            ("resourceType", .string("ClaimResponse")), ("status", .string("active")),
        ]
        for field in ["type", "use", "patient"] {
            if let value = claim.document[field] { members.append((field, value)) }
        }
        members += [
            ("created", .string(Timestamp.format(time))),
            ("insurer", .object([("reference", .string("Organization/\(insurerOrg)"))])),
            ("request", .object([("reference", .string("Claim/\(claimId)"))])),
            ("outcome", .string("complete")),
            ("disposition", .string("\(approved ? "Approved" : "Denied") by rule \(ruleId) (\(ruleHash)): \(rule.name)")),
            ("payment", .object([("amount", paid.json)])),
        ]
        return .object(members)
    }
}
