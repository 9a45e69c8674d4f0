import Crypto
import FoundationEssentials
import GS1
import Ledger
import UDI

/// A FHIR R4 Device as the registry reads it: its UDI (from the first `udiCarrier`, whose carrier
/// string must agree with its `deviceIdentifier` and with the production identifiers the resource
/// states), its type and whom it is assigned to. The resource itself is kept exactly as sent.
struct FHIRDevice: Sendable {
    let document: JSONValue
    let deviceIdentifier: String?
    let agency: IssuingAgency?
    let issuer: String?
    let lot: String?
    let serial: String?
    let manufactureDate: String?
    let expiryDate: String?
    /// The first coding's code, or the text, of `Device.type`.
    let type: String?

    init(_ document: JSONValue, referenceYear: Int) throws(DomainError) {
        guard case .object = document else { throw .invalidResource("resource", "must be a FHIR Device object") }
        guard document["resourceType"]?.stringValue == "Device" else { throw .invalidResource("resource.resourceType", "must be \"Device\"") }
        self.document = document
        type = Self.typeCode(document["type"])
        var carrier: JSONValue?
        switch document["udiCarrier"] {
        case nil: carrier = nil
        case .array(let carriers)?: carrier = carriers.first
        default: throw .invalidResource("resource.udiCarrier", "must be an array")
        }
        if let carrier, case .object = carrier {} else if carrier != nil { throw .invalidResource("resource.udiCarrier[0]", "must be an object") }
        issuer = carrier?["issuer"]?.stringValue
        let stated = (lot: document["lotNumber"]?.stringValue, serial: document["serialNumber"]?.stringValue,
                      manufactured: document["manufactureDate"]?.stringValue, expiry: document["expirationDate"]?.stringValue)
        guard let carrier, let text = try Self.carrierText(carrier) else {
            let di = carrier?["deviceIdentifier"]?.stringValue
            deviceIdentifier = di
            agency = issuer.flatMap { issuer in IssuingAgency.allCases.first { $0.namingSystems.contains(issuer) } }
            if agency == .gs1 || agency == nil, let di, di.allSatisfy(\.isNumber) {
                do { _ = try GTIN(di) } catch { throw .device(.unreadableUDI, "resource.udiCarrier[0].deviceIdentifier: \(error.message).") }
            }
            (lot, serial) = (stated.lot, stated.serial)
            (manufactureDate, expiryDate) = (stated.manufactured.map(Self.datePart), stated.expiry.map(Self.datePart))
            return
        }
        let parsed: UDI
        do {
            parsed = try UDI.parse(text, referenceYear: referenceYear)
        } catch {
            throw .device(.unreadableUDI, "resource.udiCarrier[0]: \(error.message) (\(error.code)).")
        }
        if let di = carrier["deviceIdentifier"]?.stringValue, let problem = parsed.disagreement(deviceIdentifier: di, issuer: issuer) {
            throw .device(.udiMismatch, "resource.udiCarrier[0]: \(problem).")
        }
        for (field, value, carried) in [("lotNumber", stated.lot, parsed.lot), ("serialNumber", stated.serial, parsed.serial)] {
            if let value, let carried, value != carried {
                throw .device(.udiMismatch, "resource.\(field): \(value) differs from the carrier's \(carried).")
            }
        }
        for (field, value, carried) in [("manufactureDate", stated.manufactured, parsed.manufactureDate), ("expirationDate", stated.expiry, parsed.expiryDate)] {
            if let value, let carried, !carried.agrees(with: value) {
                throw .device(.udiMismatch, "resource.\(field): \(value) differs from the carrier's \(carried).")
            }
        }
        deviceIdentifier = parsed.deviceIdentifier
        agency = parsed.agency
        lot = parsed.lot ?? stated.lot
        serial = parsed.serial ?? stated.serial
        manufactureDate = parsed.manufactureDate?.description ?? stated.manufactured.map(Self.datePart)
        expiryDate = parsed.expiryDate?.description ?? stated.expiry.map(Self.datePart)
    }

    /// The carrier string: the human-readable form, or the machine-readable one (base64 of its bytes).
    private static func carrierText(_ carrier: JSONValue) throws(DomainError) -> String? {
        if let hrf = carrier["carrierHRF"]?.stringValue { return hrf }
        guard let aidc = carrier["carrierAIDC"]?.stringValue else { return nil }
        guard let bytes = Base64.decode(aidc), let decoded = String(validating: bytes, as: UTF8.self) else {
            throw .device(.unreadableUDI, "resource.udiCarrier[0].carrierAIDC: is not base64 of a text carrier.")
        }
        return decoded
    }

    private static func datePart(_ text: String) -> String { String(text.prefix(while: { $0 != "T" })) }

    private static func typeCode(_ concept: JSONValue?) -> String? {
        if case .array(let codings)? = concept?["coding"], let code = codings.lazy.compactMap({ $0["code"]?.stringValue }).first { return code }
        return concept?["text"]?.stringValue
    }
}
