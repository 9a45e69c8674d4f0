@testable import CareLedger
import Foundation
import GS1
import Synchronization
import Testing
import TestSupport

/// A manufacturer (company prefix 4012345, a plant), a distributor (a warehouse), two pharmacies,
/// a second manufacturer and a national regulator, each with its key and its sites bound.
struct SupplyWorld {
    static let prefix = "4012345"
    static let itemReference = "011111"
    static let gtin = "04012345111118"

    let api: APIHarness
    let manufacturer: String, manufacturerOrg: String
    let distributor: String, distributorOrg: String
    let pharmacy: String, pharmacyOrg: String
    let pharmacy2: String, pharmacyOrg2: String
    let otherMaker: String, otherMakerOrg: String
    let regulator: String, regulatorOrg: String
    /// Each organization's site, as a GLN.
    let plant: String, warehouse: String, shop: String, shop2: String, otherPlant: String

    static func gln(_ twelve: String) -> String { GS1CheckDigit.appended(to: twelve) ?? "" }

    static func make(_ api: APIHarness) async throws -> SupplyWorld {
        let manufacturerOrg = try await api.createOrg("Maker", "manufacturer"), distributorOrg = try await api.createOrg("Wholesaler", "distributor")
        let pharmacyOrg = try await api.createOrg("Pharmacy", "pharmacy"), pharmacyOrg2 = try await api.createOrg("Pharmacy 2", "pharmacy")
        let otherMakerOrg = try await api.createOrg("Other maker", "manufacturer"), regulatorOrg = try await api.createOrg("Regulator", "national")
        let world = SupplyWorld(
            api: api,
            manufacturer: try await api.issueKey(manufacturerOrg, "manufacturer").apiKey, manufacturerOrg: manufacturerOrg,
            distributor: try await api.issueKey(distributorOrg, "distributor").apiKey, distributorOrg: distributorOrg,
            pharmacy: try await api.issueKey(pharmacyOrg, "pharmacy").apiKey, pharmacyOrg: pharmacyOrg,
            pharmacy2: try await api.issueKey(pharmacyOrg2, "pharmacy").apiKey, pharmacyOrg2: pharmacyOrg2,
            otherMaker: try await api.issueKey(otherMakerOrg, "manufacturer").apiKey, otherMakerOrg: otherMakerOrg,
            regulator: try await api.issueKey(regulatorOrg, "national").apiKey, regulatorOrg: regulatorOrg,
            plant: gln("401234500011"), warehouse: gln("402333300000"), shop: gln("061414100001"), shop2: gln("061414100002"),
            otherPlant: gln("099999900001"))
        try await world.bind(prefix: prefix, to: manufacturerOrg)
        try await world.bind(prefix: "0999999", to: otherMakerOrg)
        for (gln, org) in [(world.plant, manufacturerOrg), (world.warehouse, distributorOrg), (world.shop, pharmacyOrg),
                           (world.shop2, pharmacyOrg2), (world.otherPlant, otherMakerOrg)] {
            let reply = await api.call(.post, "/v1/supply/locations", key: api.adminKey, body: #"{"organization":"\#(org)","gln":"\#(gln)","name":"site"}"#)
            guard reply.status == 201 else { throw HarnessError(reply.text) }
        }
        return world
    }

    func bind(prefix: String, to org: String) async throws {
        let reply = await api.call(.post, "/v1/supply/company-prefixes", key: api.adminKey, body: #"{"organization":"\#(org)","prefix":"\#(prefix)"}"#)
        guard reply.status == 201 else { throw HarnessError(reply.text) }
    }

    static func sgtin(_ serial: String, prefix: String = prefix, item: String = itemReference) -> String { "urn:epc:id:sgtin:\(prefix).\(item).\(serial)" }
    static func sscc(_ reference: String) -> String { "urn:epc:id:sscc:\(prefix).\(reference)" }
    /// The SGLN URN of a GLN (company prefix of seven digits).
    static func site(_ gln: String) -> String { "urn:epc:id:sgln:\(gln.prefix(7)).\(gln.dropFirst(7).prefix(5)).0" }
    static func party(_ gln: String) -> String { "urn:epc:id:pgln:\(gln.prefix(7)).\(gln.dropFirst(7).prefix(5))" }

    private static let clock = Atomic<Int>(0)

    /// An ObjectEvent (or another type with `type` and `extra`), a second later than the last one made.
    static func event(_ epcs: [String], bizStep: String, at site: String, action: String = "OBSERVE", type: String = "ObjectEvent",
                      to destination: String? = nil, lot: String? = nil, expiry: String? = nil, disposition: String? = nil, extra: String = "") -> String {
        let second = clock.wrappingAdd(1, ordering: .relaxed).oldValue
        let time = "2026-06-01T\(String(format: "%02d:%02d:%02d", second / 3600 % 24, second / 60 % 60, second % 60)).000Z"
        var text = #"{"type":"\#(type)","eventTime":"\#(time)","eventTimeZoneOffset":"+00:00","action":"\#(action)","bizStep":"\#(bizStep)","readPoint":{"id":"\#(Self.site(site))"}"#
        let list = epcs.map { "\"\($0)\"" }.joined(separator: ",")
        text += type == "AggregationEvent" ? #","childEPCs":[\#(list)]"# : #","epcList":[\#(list)]"#
        if let destination { text += #","destinationList":[{"type":"owning_party","destination":"\#(Self.party(destination))"}]"# }
        if let disposition { text += #","disposition":"\#(disposition)""# }
        if lot != nil || expiry != nil {
            var ilmd: [String] = []
            if let lot { ilmd.append(#""cbvmda:lotNumber":"\#(lot)""#) }
            if let expiry { ilmd.append(#""cbvmda:itemExpirationDate":"\#(expiry)""#) }
            text += #","ilmd":{\#(ilmd.joined(separator: ","))}"#
        }
        return text + extra + "}"
    }

    static func document(_ events: [String]) -> String {
        #"{"@context":["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],"type":"EPCISDocument","schemaVersion":"2.0","creationDate":"2026-06-01T00:00:00Z","epcisBody":{"eventList":[\#(events.joined(separator: ","))]}}"#
    }

    @discardableResult
    func capture(_ key: String, _ events: [String], behaviour: String? = nil) async throws -> APIHarness.Reply {
        var headers = [("GS1-EPCIS-Version", "2.0.0")]
        if let behaviour { headers.append(("GS1-Capture-Error-Behaviour", behaviour)) }
        let reply = await api.call(.post, "/v1/epcis/capture", key: key, body: Self.document(events), headers: headers)
        guard reply.status == 202 else { throw HarnessError(reply.text) }
        return reply
    }

    /// Commissions packs at the plant, with lot L1 expiring in 2030.
    func commission(_ serials: [String], lot: String = "L1", expiry: String = "2030-12-31") async throws {
        let reply = try await capture(manufacturer, [Self.event(serials.map { Self.sgtin($0) }, bizStep: "commissioning", at: plant, action: "ADD", lot: lot, expiry: expiry)])
        guard reply.json["success"] as? Bool == true else { throw HarnessError(reply.text) }
    }

    /// The alert feed as `key` sees it, once every queued entry is sequenced (the feed follows the ledger).
    func alerts(_ key: String, kind: String? = nil) async -> [[String: Any]] {
        _ = try? await api.ledger.sequencer.sequenceBatch()
        let items = await api.call(.get, "/v1/supply/alerts?limit=100", key: key).items
        return kind.map { kind in items.filter { $0["kind"] as? String == kind } } ?? items
    }

    func pack(_ serial: String) async throws -> SupplyItem? {
        try await SupplyStore().items(["https://id.gs1.org/01/\(Self.gtin)/21/\(serial)"], lock: false, on: api.pool).values.first
    }

    func verify(_ id: String, key: String? = nil, extra: String = "") async -> APIHarness.Reply {
        await api.call(.get, "/v1/supply/verify?id=\(DigitalLink.percentEncode(id))\(extra)", key: key ?? pharmacy)
    }
}
