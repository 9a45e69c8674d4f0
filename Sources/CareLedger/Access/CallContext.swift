/// Who is asking, for which action, why, and from where: what every service call carries, taken
/// from the request at the edge. The audit events a service writes are made from it.
struct CallContext: Sendable {
    let caller: Caller
    let action: Action
    /// As declared in `X-Purpose-Of-Use`, if it was.
    let purpose: PurposeOfUse?
    let requestId: String
    let clientAddress: String
    /// What `X-Break-Glass-Reason` said, unchecked (`BreakTheGlass` judges it).
    let breakGlassReason: String?
    let metrics: ServiceMetrics

    /// A `permit` event for this request about one resource.
    func permitted(_ resourceType: String, _ resourceId: String? = nil, patientId: String? = nil, reason: String = "allowed by role") -> AuditEvent {
        event(.permit, resourceType: resourceType, resourceId: resourceId, patientId: patientId, reason: reason)
    }

    func event(_ decision: AuditEvent.Decision, resourceType: String?, resourceId: String?, patientId: String?, reason: String) -> AuditEvent {
        AuditEvent(
            requestId: requestId, actorOrg: caller.orgId, keyId: caller.keyId, role: caller.role,
            action: action.rawValue, resourceType: resourceType, resourceId: resourceId, patientId: patientId,
            purpose: purpose, decision: decision, reason: reason, clientAddress: clientAddress)
    }

    /// The purpose a read is for: as declared, else the caller's usual one.
    var effectivePurpose: PurposeOfUse {
        if let purpose { return purpose }
        switch caller.role {
        case .insurer: return .payment
        case .national: return .publicHealth
        default: return .treatment
        }
    }
}

/// A refusal that is also an audit event: the answer the caller gets, and what the trail records.
struct Denial: Error {
    let error: DomainError
    let reason: String
    let resourceType: String
    let resourceId: String?
    /// The patient the refused request was about, so it shows in the patient's access log.
    let patientId: String?

    init(error: DomainError, reason: String, resourceType: String, resourceId: String?, patientId: String? = nil) {
        self.error = error
        self.reason = reason
        self.resourceType = resourceType
        self.resourceId = resourceId
        self.patientId = patientId ?? (resourceType == "patient" ? resourceId : nil)
    }

    /// An object the caller may not see answers exactly like one that does not exist (OWASP API1).
    static func notVisible(_ resourceType: String, _ resourceId: String, reason: String = "not visible to the caller") -> Denial {
        Denial(error: .noSuchResource, reason: reason, resourceType: resourceType, resourceId: resourceId)
    }

    static func conflict(_ message: String, _ resourceType: String, _ resourceId: String) -> Denial {
        Denial(error: .conflict(message), reason: message, resourceType: resourceType, resourceId: resourceId)
    }
}

/// Emergency access without consent: a hospital declaring purpose ETREAT with a written reason of at
/// least 20 characters. Allowed, and flagged in the trail and the patient's access log.
enum BreakTheGlass {
    static let headerName = "X-Break-Glass-Reason"
    static let minimumReason = 20

    /// Whether this read is an emergency one; an ETREAT without a reason, or from another role, is refused.
    static func applies(to call: CallContext) throws(DomainError) -> Bool {
        guard call.purpose == .emergencyTreatment else { return false }
        guard call.caller.role == .hospital else { throw .forbidden }
        guard let reason = call.breakGlassReason, reason.trimmingWhitespace().count >= minimumReason else {
            throw .invalid("Break-the-glass needs \(headerName) with at least \(minimumReason) characters.")
        }
        return true
    }
}
