import FoundationEssentials
import Ledger

/// A FHIR R4 Consent resource mapped onto CareLedger's consent model, so systems that already speak
/// FHIR need no translation. The mapping, one provision deep:
/// - `status` must be `active`;
/// - `provision.type` is the provision (`permit` when absent);
/// - `provision.actor` must name exactly one organization, `Organization/<orgId>` (the role is not used);
/// - `provision.purpose` codes (v3-ActReason) are the purposes; absent means every consentable purpose;
/// - `provision.class` codes that name CareLedger data categories are the categories; absent means
///   every non-sensitive category (`*`);
/// - `provision.period` (FHIR dates or date-times) is the period;
/// - nested `provision.provision` exceptions are refused (422) rather than silently dropped.
/// The patient is the one in the path; the resource's own `patient` reference is the sender's.
struct FHIRConsent {
    static let purposeSystem = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

    let rule: (ConsentRule.Grantee, Set<PurposeOfUse>, Set<DataCategory>, Bool, Date?, Date?, ConsentRule.Provision)

    init(_ value: JSONValue) throws(DomainError) {
        guard value["status"]?.stringValue == "active" else { throw DomainError.invalidResource("status", "only an active Consent can be recorded") }
        let provision = value["provision"] ?? .object([])
        guard case .object = provision else { throw DomainError.invalidResource("provision", "must be an object") }
        if provision["provision"] != nil { throw DomainError.invalidResource("provision.provision", "nested provisions are not supported; send one Consent per provision") }
        let type: ConsentRule.Provision
        switch provision["type"]?.stringValue {
        case nil, "permit": type = .permit
        case "deny": type = .deny
        default: throw DomainError.invalidResource("provision.type", "must be permit or deny")
        }
        guard case .array(let actors)? = provision["actor"], actors.count == 1,
              let reference = actors[0]["reference"]?["reference"]?.stringValue, reference.hasPrefix("Organization/") else {
            throw DomainError.invalidResource("provision.actor", "must name exactly one organization as Organization/<orgId>")
        }
        let orgId = String(reference.dropFirst("Organization/".count))
        guard ResourceID.isWellFormed(orgId, prefix: "org") else {
            throw DomainError.invalidResource("provision.actor[0].reference", "\(reference) is not a CareLedger organization")
        }
        let consentable: Set<PurposeOfUse> = [.treatment, .payment, .operations, .research, .publicHealth]
        var purposes = consentable
        if case .array(let codings)? = provision["purpose"] {
            purposes = []
            for (index, coding) in codings.enumerated() {
                guard let code = coding["code"]?.stringValue, let purpose = PurposeOfUse(rawValue: code), consentable.contains(purpose) else {
                    throw DomainError.invalidResource("provision.purpose[\(index)]", "must be a v3-ActReason code among TREAT, HPAYMT, HOPERAT, HRESCH, PUBHLTH")
                }
                purposes.insert(purpose)
            }
        }
        var categories: Set<DataCategory> = []
        var everything = true
        if case .array(let codings)? = provision["class"] {
            everything = false
            for (index, coding) in codings.enumerated() {
                guard let code = coding["code"]?.stringValue, let category = DataCategory(rawValue: code) else {
                    throw DomainError.invalidResource("provision.class[\(index)]", "must name a data category (\(DataCategory.allCases.map { $0.rawValue }.joined(separator: ", ")))")
                }
                categories.insert(category)
            }
        }
        let start = try Self.date(provision["period"]?["start"], path: "provision.period.start")
        let end = try Self.date(provision["period"]?["end"], path: "provision.period.end")
        if let start, let end, end <= start { throw DomainError.invalidResource("provision.period", "end must be after start") }
        rule = (.organization(orgId), purposes, categories, everything, start, end, type)
    }

    /// A FHIR date (`YYYY-MM-DD`, midnight UTC) or dateTime.
    private static func date(_ value: JSONValue?, path: String) throws(DomainError) -> Date? {
        guard let value else { return nil }
        guard let text = value.stringValue else { throw DomainError.invalidResource(path, "must be a date") }
        if text.count == 10, let date = Timestamp.parse(text + "T00:00:00Z") { return date }
        guard let date = Timestamp.parse(text) else { throw DomainError.invalidResource(path, "must be a FHIR date or dateTime") }
        return date
    }
}
