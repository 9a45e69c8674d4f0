/// What went wrong, in the domain's words. Services, stores and the FHIR readers throw these; the
/// edge (`Edge/DomainError+HTTP.swift`) maps each case to a status and a stable error code in one
/// place. Nothing here knows HTTP, and no message quotes patient data.
enum DomainError: Error, Equatable, Sendable {
    /// The request is malformed or asks for what cannot be (a missing field, a number out of range).
    case invalid(String)
    /// Well-formed JSON that is not an acceptable resource; `path` names where the first problem is.
    case invalidResource(path: String, problem: String)
    /// No such object, or one the caller may not see: the two are told apart by no one.
    case notFound(String)
    /// The caller's role may not do this.
    case forbidden
    /// The object's state does not allow the change, or it clashes with another.
    case conflict(String)
    /// An identifier of the patient is registered already, to this patient.
    case patientAlreadyRegistered(patientId: String)
    /// The patient's consent does not permit the disclosure.
    case consentDenied
    /// The patient's consent permitted the disclosure once, and no longer does.
    case consentRevoked
    /// The patient's data key was destroyed: nothing about them can be read again.
    case erased
    /// The ledger has not signed what is asked for yet; worth asking again shortly.
    case notYetSigned(String)
    /// Stored data contradicts itself (a replayed create whose object is gone); nothing the caller can fix.
    case inconsistentStorage
    /// A prescription's checks found high-severity problems that the request did not override.
    case safetyCheckFailed(unacknowledged: Int)
    /// A prescription or fill the rules of prescribing refuse.
    case prescription(PrescriptionRefusal)
    /// A device, RFID or telemetry request refused for a reason its sender can act on.
    case device(DeviceRefusal, String)

    /// Why a prescription or a fill is refused, each with its own error code.
    enum PrescriptionRefusal: String, Equatable, Sendable {
        case medicationMissing = "medication_missing"
        case pharmacyNotNamed = "pharmacy_not_named"
        case cancelled = "prescription_cancelled"
        case notActive = "prescription_not_active"
        case notYetValid = "prescription_not_yet_valid"
        case expired = "prescription_expired"
        case noFillsLeft = "no_fills_remaining"
        case quantityExceeded = "quantity_exceeded"
        case quantityUnitMismatch = "quantity_unit_mismatch"
    }

    enum DeviceRefusal: String, Sendable {
        case transitionNotAllowed = "transition_not_allowed"
        case unknownKey = "unknown_device_key"
        case revokedKey = "device_key_revoked"
        case badSignature = "bad_signature"
        case unsupportedAlgorithm = "unsupported_algorithm"
        case malformedSignature = "malformed_signature"
        case deviceMismatch = "device_mismatch"
        case patientMismatch = "patient_mismatch"
        case replayed = "counter_replayed"
        case outsideSkew = "outside_skew_window"
        case batchTooLarge = "batch_too_large"
        case unsupportedTag = "unsupported_tag"
        case udiMismatch = "udi_mismatch"
        case unreadableUDI = "unreadable_udi"
    }

    /// `invalidResource` at `path`, as the FHIR readers name it.
    static func invalidResource(_ path: String, _ problem: String) -> DomainError {
        .invalidResource(path: path, problem: problem)
    }

    /// What an object the caller may not see answers, exactly like one that does not exist.
    static let noSuchResource = DomainError.notFound("No such resource.")
}
