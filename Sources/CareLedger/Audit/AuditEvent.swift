/// One line of the audit trail: who (organization, key, role) did what (action) to which resource,
/// about which patient, for which declared purpose, and whether it was permitted. It never holds the
/// content of a request, and never a presented secret.
struct AuditEvent: Sendable, Encodable {
    enum Decision: String, Sendable, Encodable {
        case permit, deny
    }

    var requestId: String
    var actorOrg: String?
    var keyId: String?
    var role: Role?
    var action: String
    var resourceType: String?
    var resourceId: String?
    var patientId: String?
    var purpose: PurposeOfUse?
    var decision: Decision
    var reason: String
    var clientAddress: String?
}
