@testable import CareLedger
import Crypto
import Foundation
import HTTP
import Ledger
import Testing
import TestSupport

/// Two hospitals with wards and readers, a manufacturer, a regulator and a patient of hospital A.
struct DeviceWorld {
    static let gs1Carrier = "(01)00884521050122(11)240115(17)271130(10)LOT-7A(21)SN0042"
    static let gs1DI = "00884521050122"

    let api: APIHarness
    let hospitalA: String
    let orgA: String
    let hospitalB: String
    let orgB: String
    let manufacturer: String
    let manufacturerOrg: String
    let regulator: String
    let patientId: String
    let patientKey: String

    static func make(_ api: APIHarness) async throws -> DeviceWorld {
        let orgA = try await api.createOrg("Hospital A", "hospital"), orgB = try await api.createOrg("Hospital B", "hospital")
        let manufacturerOrg = try await api.createOrg("Pump Maker", "manufacturer"), nationalOrg = try await api.createOrg("Health Authority", "national")
        let hospitalA = try await api.issueKey(orgA, "hospital").apiKey, hospitalB = try await api.issueKey(orgB, "hospital").apiKey
        let manufacturer = try await api.issueKey(manufacturerOrg, "manufacturer").apiKey
        let regulator = try await api.issueKey(nationalOrg, "national").apiKey
        let patient = #"{"resourceType":"Patient","identifier":[{"system":"urn:oid:2.16.840.1.113883.4.1","value":"dev-\#(UUID().uuidString.prefix(8))"}]}"#
        let patientId = try #require(await api.call(.post, "/v1/patients", key: hospitalA, body: patient)["id"])
        let patientKey = try await api.issueKey(orgA, "patient", extra: #","patientId":"\#(patientId)""#).apiKey
        let world = DeviceWorld(api: api, hospitalA: hospitalA, orgA: orgA, hospitalB: hospitalB, orgB: orgB, manufacturer: manufacturer,
                                manufacturerOrg: manufacturerOrg, regulator: regulator, patientId: patientId, patientKey: patientKey)
        try await world.expect(201, .post, "/v1/devices/locations", hospitalA, #"{"name":"ICU","gln":"0614141000012","readers":["icu-door"]}"#)
        try await world.expect(201, .post, "/v1/devices/locations", hospitalA, #"{"name":"Store","readers":["store-1"]}"#)
        try await world.expect(201, .post, "/v1/devices/locations", hospitalB, #"{"name":"ER","readers":["er-1"]}"#)
        return world
    }

    @discardableResult
    func expect(_ status: Int, _ method: HTTPMethod, _ path: String, _ key: String, _ body: String? = nil) async throws -> APIHarness.Reply {
        let reply = await api.call(method, path, key: key, body: body)
        guard reply.status == status else { throw HarnessError("\(method) \(path): expected \(status), got \(reply.status): \(reply.text)") }
        return reply
    }

    static func device(carrier: String? = gs1Carrier, di: String? = gs1DI, extra: String = "") -> String {
        var udi = ""
        if let carrier {
            udi = #","udiCarrier":[{"deviceIdentifier":"\#(di ?? "")","issuer":"http://hl7.org/fhir/NamingSystem/gs1","carrierHRF":"\#(carrier)"}]"#
        }
        return #"{"resourceType":"Device","status":"active"\#(udi)\#(extra)}"#
    }

    func register(_ resource: String = DeviceWorld.device(), key: String? = nil, type: String = "infusion-pump", location: String = "ICU",
                  tag: String? = nil, extra: String = "") async -> APIHarness.Reply {
        let tagMember = tag.map { #","rfidTag":"\#($0)""# } ?? ""
        return await api.call(.post, "/v1/devices", key: key ?? hospitalA,
                              body: #"{"resource":\#(resource),"type":"\#(type)","location":"\#(location)"\#(tagMember)\#(extra)}"#)
    }

    func registered(tag: String? = nil, extra: String = "", resource: String = DeviceWorld.device()) async throws -> String {
        let reply = await register(resource, tag: tag, extra: extra)
        guard reply.status == 201, let id = reply["id"] else { throw HarnessError(reply.text) }
        return id
    }

    func move(_ id: String, _ to: String, extra: String = "", key: String? = nil) async -> APIHarness.Reply {
        await api.call(.post, "/v1/devices/\(id)/events", key: key ?? hospitalA, body: #"{"to":"\#(to)"\#(extra)}"#)
    }

    func reads(_ key: String, reader: String, _ reads: [(epc: String, at: Date)]) async -> APIHarness.Reply {
        let items = reads.map { #"{"epc":"\#($0.epc)","time":"\#(Timestamp.format($0.at))","antenna":1,"rssi":-52.5}"# }
        return await api.call(.post, "/v1/devices/rfid-reads", key: key, body: #"{"readerId":"\#(reader)","reads":[\#(items.joined(separator: ","))]}"#)
    }

    func alerts(_ key: String, kind: String? = nil) async -> [[String: Any]] {
        _ = try? await api.ledger.sequencer.sequenceBatch()
        let items = await api.call(.get, "/v1/devices/alerts?limit=200", key: key).items
        return kind.map { kind in items.filter { $0["kind"] as? String == kind } } ?? items
    }

    /// The SubjectPublicKeyInfo PEM of an Ed25519 key (RFC 8410).
    static func pem(_ key: Ed25519PublicKey) -> String {
        let der = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00] + key.rawRepresentation
        return "-----BEGIN PUBLIC KEY-----\n\(Base64.encode(der))\n-----END PUBLIC KEY-----\n"
    }

    /// A device in use for the patient, with a registered key: (device id, key id, the device's API key).
    func monitor(_ key: Ed25519PrivateKey, interval: Int? = nil) async throws -> (device: String, keyId: String, apiKey: String) {
        let device = try await registered(extra: interval.map { #","telemetryIntervalSeconds":\#($0)"# } ?? "")
        try await expect(201, .post, "/v1/devices/\(device)/events", hospitalA, #"{"to":"available"}"#)
        try await expect(201, .post, "/v1/devices/\(device)/events", hospitalA, #"{"to":"in_use","patientId":"\#(patientId)"}"#)
        let pemText = Self.pem(key.publicKey).replacingOccurrences(of: "\n", with: "\\n")
        let added = try await expect(201, .post, "/v1/devices/\(device)/keys", hospitalA, #"{"publicKeyPem":"\#(pemText)"}"#)
        let apiKey = try await api.issueKey(orgA, "device", extra: #","deviceId":"\#(device)""#).apiKey
        return (device, try #require(added["id"]), apiKey)
    }

    func observation(device: String, patient: String? = nil, value: Double = 72) -> JSONValue {
        .object([
            ("resourceType", .string("Observation")), ("status", .string("final")),
            ("code", .object([("coding", .array([.object([("system", .string("http://loinc.org")), ("code", .string("8867-4")),
                                                           ("display", .string("Heart rate"))])]))])),
            ("subject", .object([("reference", .string("Patient/\(patient ?? patientId)"))])),
            ("device", .object([("reference", .string("Device/\(device)"))])),
            ("effectiveDateTime", .string(Timestamp.format(Date()))),
            ("valueQuantity", .object([("value", .number(value)), ("unit", .string("beats/minute")), ("system", .string("http://unitsofmeasure.org")),
                                       ("code", .string("/min"))])),
        ])
    }

    func send(_ compacts: [String], key: String) async -> APIHarness.Reply {
        let list = compacts.map { "\"\($0)\"" }.joined(separator: ",")
        return await api.call(.post, "/v1/telemetry", key: key, body: #"{"observations":[\#(list)]}"#)
    }

    func storedReadings() async throws -> Int64 {
        try await api.pool.query("SELECT count(*) AS n FROM telemetry_observations").first?.decode("n", as: Int64.self) ?? -1
    }
}
