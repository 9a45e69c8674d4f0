import HTTP
import Ledger

/// A clinical document as exchanges accept it: a FHIR R4 resource of a known type, or a Bundle
/// whose entries are. Nothing else about it is judged here; it is the sender's document.
enum FHIRDocument {
    static let resourceTypes: Set<String> = [
        "AllergyIntolerance", "AuditEvent", "Binary", "Bundle", "CarePlan", "Claim", "ClaimResponse", "Composition", "Condition",
        "Consent", "Coverage", "DetectedIssue", "Device", "DeviceMetric", "DiagnosticReport", "DocumentReference", "Encounter",
        "ExplanationOfBenefit", "FamilyMemberHistory", "Goal", "ImagingStudy", "Immunization", "Location", "Media", "Medication",
        "MedicationAdministration", "MedicationDispense", "MedicationRequest", "MedicationStatement", "Observation", "Organization",
        "Patient", "Practitioner", "PractitionerRole", "Procedure", "Provenance", "QuestionnaireResponse", "ServiceRequest",
        "Specimen", "Subscription",
    ]

    /// Checks `value` at `path`; a Bundle's entries are checked too.
    static func validate(_ value: JSONValue, path: String = "document") throws(HTTPError) {
        guard case .object = value else { throw APIError.invalidResource(path, "must be a FHIR resource (a JSON object)") }
        guard let type = value["resourceType"]?.stringValue else { throw APIError.invalidResource("\(path).resourceType", "is missing") }
        guard resourceTypes.contains(type) else { throw APIError.invalidResource("\(path).resourceType", "\"\(type)\" is not a FHIR R4 resource type CareLedger exchanges") }
        guard type == "Bundle", let entries = value["entry"] else { return }
        guard case .array(let list) = entries else { throw APIError.invalidResource("\(path).entry", "must be an array") }
        for (index, entry) in list.enumerated() {
            guard case .object = entry else { throw APIError.invalidResource("\(path).entry[\(index)]", "must be an object") }
            if let resource = entry["resource"] { try validate(resource, path: "\(path).entry[\(index)].resource") }
        }
    }
}
