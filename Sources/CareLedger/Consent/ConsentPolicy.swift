import FoundationEssentials

/// Kinds of health data a consent speaks about. The sensitive ones are never covered by a
/// wildcard: a patient must name them (42 CFR Part 2 and similar rules).
public enum DataCategory: String, CaseIterable, Codable, Sendable {
    case clinicalNote = "clinical-note"
    case lab, imaging, medication, claim
    case mentalHealth = "mental-health"
    case substanceUse = "substance-use"
    case sexualHealth = "sexual-health"

    public var isSensitive: Bool {
        self == .mentalHealth || self == .substanceUse || self == .sexualHealth
    }
}

/// One consent as the policy sees it.
public struct ConsentRule: Sendable, Equatable {
    public enum Grantee: Sendable, Equatable {
        case organization(String)
        case kind(OrganizationKind)
    }

    public enum Provision: String, Sendable, Codable {
        case permit, deny
    }

    public let id: String
    public let patientId: String
    public let grantee: Grantee
    public let purposes: Set<PurposeOfUse>
    /// Named categories; `coversAllCategories` adds every non-sensitive one.
    public let categories: Set<DataCategory>
    public let coversAllCategories: Bool
    public let start: Date?
    public let end: Date?
    public let provision: Provision
    public let revoked: Bool

    public init(id: String, patientId: String, grantee: Grantee, purposes: Set<PurposeOfUse>, categories: Set<DataCategory>,
                coversAllCategories: Bool = false, start: Date? = nil, end: Date? = nil, provision: Provision = .permit, revoked: Bool = false) {
        self.id = id
        self.patientId = patientId
        self.grantee = grantee
        self.purposes = purposes
        self.categories = categories
        self.coversAllCategories = coversAllCategories
        self.start = start
        self.end = end
        self.provision = provision
        self.revoked = revoked
    }

    /// Whether this consent speaks about `request` at all.
    func applies(to request: ConsentRequest) -> Bool {
        guard !revoked, patientId == request.patientId, purposes.contains(request.purpose) else { return false }
        switch grantee {
        case .organization(let id): guard id == request.actorOrg else { return false }
        case .kind(let kind): guard kind == request.actorKind else { return false }
        }
        guard categories.contains(request.category) || (coversAllCategories && !request.category.isSensitive) else { return false }
        if let start, request.time < start { return false }
        if let end, request.time >= end { return false }
        return true
    }
}

/// Who wants what about whom, for which purpose, when.
public struct ConsentRequest: Sendable {
    public let actorOrg: String
    public let actorKind: OrganizationKind
    public let patientId: String
    public let purpose: PurposeOfUse
    public let category: DataCategory
    public let time: Date

    public init(actorOrg: String, actorKind: OrganizationKind, patientId: String, purpose: PurposeOfUse, category: DataCategory, time: Date) {
        self.actorOrg = actorOrg
        self.actorKind = actorKind
        self.patientId = patientId
        self.purpose = purpose
        self.category = category
        self.time = time
    }
}

/// The outcome, with the consent that decided it (nil when nothing applied).
public struct ConsentDecision: Sendable, Equatable {
    public let permitted: Bool
    public let reason: String
    public let consentId: String?
}

/// FHIR Consent semantics in one pure function: deny by default; among the consents that apply,
/// any deny wins over every permit.
public enum ConsentPolicy {
    public static func decide(_ request: ConsentRequest, consents: [ConsentRule]) -> ConsentDecision {
        let applicable = consents.filter { $0.applies(to: request) }
        if let denial = applicable.first(where: { $0.provision == .deny }) {
            return ConsentDecision(permitted: false, reason: "denied by consent", consentId: denial.id)
        }
        if let grant = applicable.first(where: { $0.provision == .permit }) {
            return ConsentDecision(permitted: true, reason: "permitted by consent", consentId: grant.id)
        }
        return ConsentDecision(permitted: false, reason: "no consent covers this request", consentId: nil)
    }
}
