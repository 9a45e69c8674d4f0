import FoundationEssentials
import Ledger

/// Findings as FHIR R4 DetectedIssue resources. A finding whose records the caller may not see
/// keeps its code and severity and says only that a record kept elsewhere is involved.
enum DetectedIssues {
    static let actCodeSystem = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    /// For findings no v3 ActCode names (no check could be made).
    static let careLedgerSystem = "urn:careledger:detected-issue"

    static func resource(_ shown: PrescriptionService.Shown, patientId: String, prescriptionId: String?, request: FHIRMedicationRequest,
                         knowledgeVersion: String, status: String, at now: Date) -> JSONValue {
        let finding = shown.finding
        let proposal: JSONValue = prescriptionId.map {
            .object([("reference", .string("MedicationRequest/\($0)")), ("display", .string(request.medicationText))])
        } ?? .object([("display", .string("Proposed prescription: \(request.medicationText)"))])
        var implicated = [proposal]
        let detail: String
        if shown.redacted {
            let kind = finding.records.contains { $0.kind == .allergy } ? "An allergy" : "A medication"
            detail = "\(kind) recorded by another organization is involved. The patient's consent does not let your organization see that record; ask the patient, or ask them to consent to sharing their medication record."
        } else {
            implicated += finding.records.map { record in
                .object([("reference", .string("\(record.kind.rawValue)/\(record.id)")), ("display", .string(record.display))])
            }
            detail = finding.detail
        }
        let system = finding.code == .unchecked ? careLedgerSystem : actCodeSystem
        var members: [(key: String, value: JSONValue)] = [
            ("resourceType", .string("DetectedIssue")),
            ("id", .string(shown.id)),
            ("status", .string(status)),
            ("code", .object([("coding", .array([.object([("system", .string(system)), ("code", .string(finding.code.rawValue)),
                                                          ("display", .string(finding.code.display))])]))])),
            ("severity", .string(finding.severity.rawValue)),
            ("patient", .object([("reference", .string("Patient/\(patientId)"))])),
            ("identifiedDateTime", .string(Timestamp.format(now))),
            ("author", .object([("display", .string("CareLedger prescribing checks, medication knowledge \(knowledgeVersion)"))])),
            ("implicated", .array(implicated)),
            ("detail", .string(detail)),
        ]
        // The source, unless redacted: a drug label's name would tell what the hidden record is.
        if !shown.redacted, let citation = shown.citation {
            members.append(("evidence", .array([.object([("code", .array([.object([("text", .string("Source: " + citation))])]))])])))
        }
        if let mitigation = shown.mitigation { members.append(("mitigation", mitigation)) }
        return .object(members)
    }

    /// The prescriber as a Reference, for a mitigation's author.
    static func prescriberReference(_ request: FHIRMedicationRequest) -> JSONValue {
        .object([("display", .string(request.prescriberDisplay))])
    }
}
