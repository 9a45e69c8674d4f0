import FoundationEssentials
import HTTP
import Ledger

/// CDS Hooks 2.0 over the prescribing checks: `GET /cds-services` (discovery, public: it holds no
/// patient data) and the `order-sign` service, which runs the dry run on each draft MedicationRequest
/// and answers each finding as a card. The caller authenticates with the hospital's API key; the
/// patient is found by an identifier of the prefetched Patient.
enum CDSHooksRoutes {
    static let serviceId = "careledger-prescribing-checks"
    static let maximumDrafts = 50

    static func register(in api: inout APIRouteBuilder, service: PrescriptionService, keys: PatientKeys) {
        api.onPublic(.get, "/cds-services") { _ in
            try JSONBody.response(.ok, Discovery(services: [Discovery.Service(
                hook: "order-sign", title: "CareLedger prescribing safety checks", id: serviceId,
                description: "Checks draft MedicationRequests against the patient's allergies, prescriptions and fills at every organization: allergies, interactions, duplicate therapy, controlled-substance patterns, opioid dose (MME).",
                prefetch: ["patient": "Patient/{{context.patientId}}"])]))
        }

        api.on(.post, "/cds-services/{serviceId}", .prescriptionsCheck) { context in
            guard try context.parameter("serviceId") == serviceId else { throw DomainError.noSuchResource }
            let body = try JSONBody.parse(context.request)
            guard body["hook"]?.stringValue == "order-sign" else { throw DomainError.invalid("This service answers the order-sign hook.") }
            guard let hookContext = body["context"], case .array(let entries)? = hookContext["draftOrders"]?["entry"] else {
                throw DomainError.invalid("'context.draftOrders' must be a Bundle with entries.")
            }
            guard entries.count <= maximumDrafts else { throw DomainError.invalid("At most \(maximumDrafts) draft orders per call.") }
            guard case .array(let identifiers)? = body["prefetch"]?["patient"]?["identifier"], !identifiers.isEmpty else {
                throw DomainError.invalid("'prefetch.patient' must be the Patient with at least one identifier.")
            }
            var patientId: String?
            for identifier in identifiers.prefix(20) {
                guard let system = identifier["system"]?.stringValue, let value = identifier["value"]?.stringValue else { continue }
                if let found = try await service.patient(system: system, value: value) {
                    patientId = found
                    break
                }
            }
            guard let patientId else {
                return try JSONBody.response(.ok, Cards(cards: [Card(
                    uuid: "no-patient", summary: "CareLedger has no record of this patient: no cross-organization checks were made.",
                    detail: nil, indicator: "info")]))
            }
            var cards: [Card] = []
            for entry in entries {
                guard let draft = entry["resource"], draft["resourceType"]?.stringValue == "MedicationRequest" else { continue }
                let request = try FHIRMedicationRequest(withRequester(draft, userId: hookContext["userId"]?.stringValue), callerOrg: context.caller.orgId)
                let evaluation = try await service.check(PrescriptionService.Proposal(patientId: patientId, request: request, override: nil), context.call)
                cards += evaluation.findings.map { shown in
                    let detail = shown.detectedIssue["detail"]?.stringValue ?? shown.finding.detail
                    let summary = "\(shown.finding.code.display): \(detail)"
                    return Card(uuid: shown.id, summary: summary.count > 140 ? String(summary.prefix(139)) + "…" : summary, detail: detail,
                                indicator: shown.acknowledgedBefore != nil ? "info" : indicator(shown.finding.severity))
                }
            }
            return try JSONBody.response(.ok, Cards(cards: cards))
        }
    }

    static func indicator(_ severity: Severity) -> String {
        switch severity {
        case .high: "critical"
        case .moderate: "warning"
        case .low: "info"
        }
    }

    /// A draft order names no requester until it is signed: the hook's user is the prescriber.
    private static func withRequester(_ draft: JSONValue, userId: String?) -> JSONValue {
        guard draft["requester"] == nil, let userId, case .object(var members) = draft else { return draft }
        members.append(("requester", .object([("reference", .string(userId))])))
        return .object(members)
    }
}

private struct Discovery: Encodable {
    struct Service: Encodable {
        let hook: String
        let title: String
        let id: String
        let description: String
        let prefetch: [String: String]
    }

    let services: [Service]
}

private struct Cards: Encodable {
    let cards: [Card]
}

private struct Card: Encodable {
    struct Source: Encodable {
        let label = "CareLedger"
    }

    let uuid: String
    let summary: String
    let detail: String?
    let indicator: String
    let source = Source()
}
