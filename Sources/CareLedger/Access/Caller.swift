import FoundationEssentials

/// Who is calling, as established from a valid key of an active organization.
public struct Caller: Sendable {
    public let orgId: String
    public let orgName: String
    public let orgKind: OrganizationKind
    public let keyId: String
    public let role: Role
    /// The patient a `patient` key is bound to.
    public let patientId: String?
    /// The device a `device` key is bound to.
    public let deviceId: String?
    public let expiresAt: Date?
    /// Requests per second this key may make; nil for the server's default.
    public let rateLimit: Int?
}

/// Purposes of use a caller may declare in `X-Purpose-Of-Use` (HL7 v3 ActReason), recorded with
/// every audit event and checked against consent by later areas.
public enum PurposeOfUse: String, CaseIterable, Codable, Sendable {
    case treatment = "TREAT"
    case emergencyTreatment = "ETREAT"
    case payment = "HPAYMT"
    case operations = "HOPERAT"
    case research = "HRESCH"
    case publicHealth = "PUBHLTH"

    static let headerName = "X-Purpose-Of-Use"
}
