import FoundationEssentials
import GS1

/// A serialized item as custody sees it: a pack (GTIN + serial) or a logistic unit (SSCC).
struct SupplyItem: Sendable, Equatable {
    enum State: String, Sendable {
        case active, inTransit = "in_transit", dispensed, decommissioned, destroyed, stolen

        /// The chain has ended: nothing may happen to the item any more.
        var isFinal: Bool { self == .dispensed || self == .decommissioned || self == .destroyed || self == .stolen }
    }

    let epc: String
    var gtin: String?
    var serial: String?
    var lot: String?
    var expiry: GS1Date?
    var manufacturerOrg: String?
    var custodianOrg: String
    var state: State
    var parent: String?
    var pendingReceiver: String?
    var commissionedBy: String?
    var lastEvent: String
}

/// A rule an event broke; the event is stored and marked, moves nothing, and raises an alert.
struct CustodyViolation: Sendable, Equatable {
    enum Kind: String, Sendable, CaseIterable {
        case commissionedTwice = "commissioned_twice"
        case commissionedByNonOwner = "commissioned_by_non_owner"
        case shippedByNonCustodian = "shipped_by_non_custodian"
        case receivedWithoutShipment = "received_without_shipment"
        case dispensedTwice = "dispensed_twice"
        case eventAfterEnd = "event_after_end"
        case notCustodian = "not_custodian"
        case notCommissioned = "not_commissioned"
        case foreignLocation = "foreign_location"
    }

    let kind: Kind
    let epc: String?
    let detail: String
}

/// Something to tell the parties about that is not a broken rule (the event still moves custody).
struct CustodyNotice: Sendable, Equatable {
    enum Kind: String, Sendable {
        case recalledMoving = "recalled_moving"
        case expiredMoving = "expired_moving"
    }

    let kind: Kind
    let epc: String
    let detail: String
}

/// Which organization owns each company prefix and site, and which lots are recalled.
struct SupplyDirectory: Sendable {
    var prefixes: [String: String] = [:]
    var locations: [String: String] = [:]
    /// GTIN → recalled lots.
    var recalledLots: [String: Set<String>] = [:]

    /// The organization owning the longest bound company prefix of the GTIN.
    func owner(ofGTIN gtin: String) -> String? {
        let body = gtin.dropFirst()
        for length in stride(from: 12, through: 6, by: -1) {
            if let org = prefixes[String(body.prefix(length))] { return org }
        }
        return nil
    }

    /// The owner of the GTIN of a pack's canonical EPC.
    func owner(ofEPC epc: String) -> String? {
        CustodyEngine.packParts(epc).flatMap { owner(ofGTIN: $0.gtin) }
    }

    /// Every prefix a GTIN may belong to (for loading bindings).
    static func candidatePrefixes(ofGTIN gtin: String) -> [String] {
        let body = gtin.dropFirst()
        return (6...12).map { String(body.prefix($0)) }
    }
}

/// Applies events to items in order, as they arrive. Pure: the service loads what the events touch
/// (under lock), runs this, and writes back what changed.
struct CustodyEngine {
    let reporter: String
    let directory: SupplyDirectory
    private(set) var items: [String: SupplyItem]
    private(set) var changed: Set<String> = []
    private(set) var holders: Set<Pair> = []
    private(set) var shipments: [Shipment] = []
    private(set) var receipts: [(epc: String, event: String, at: Date)] = []
    /// Items that contain others: the only ones whose descendants need a search.
    private var units: Set<String> = []
    /// What the event being applied changed, to put back if it breaks a rule (copying the whole
    /// engine per event cost a sixth of a capture's CPU).
    private var journal = Journal()

    private struct Journal {
        var items: [String: SupplyItem?] = [:]
        var changed: [String] = []
        var holders: [Pair] = []
        var shipments = 0
        var receipts = 0
    }

    struct Pair: Hashable, Sendable {
        let epc: String
        let org: String
    }

    struct Shipment: Sendable {
        let epc: String
        let from: String
        let to: String?
        let event: String
        let at: Date
    }

    struct Outcome: Sendable {
        var violations: [CustodyViolation] = []
        var notices: [CustodyNotice] = []

        mutating func violate(_ kind: CustodyViolation.Kind, _ epc: String?, _ detail: String) {
            violations.append(CustodyViolation(kind: kind, epc: epc, detail: detail))
        }
    }

    init(reporter: String, directory: SupplyDirectory, items: [String: SupplyItem]) {
        self.reporter = reporter
        self.directory = directory
        self.items = items
        units = Set(items.values.compactMap { $0.parent })
    }

    /// Whether the canonical EPC names an item custody follows.
    static func isTracked(_ epc: String) -> Bool {
        // Canonical links carry a 14-digit GTIN, so a pack's serial qualifier starts at a fixed place.
        epc.hasPrefix("https://id.gs1.org/00/") || (epc.hasPrefix("https://id.gs1.org/01/") && epc.utf8.dropFirst(36).starts(with: "/21/".utf8))
    }

    static func packParts(_ epc: String) -> (gtin: String, serial: String)? {
        let prefix = "https://id.gs1.org/01/"
        guard epc.hasPrefix(prefix) else { return nil }
        let rest = epc.dropFirst(prefix.count)
        let parts = rest.split(separator: "/", maxSplits: 2)
        guard parts.count == 3, parts[1] == "21", let serial = DigitalLink.percentDecode(parts[2]) else { return nil }
        return (String(parts[0]), serial)
    }

    /// The epcs an event can move, for loading and locking before it is applied.
    static func touched(by event: EPCISEvent) -> [String] {
        (event.anyEPCs).filter(isTracked)
    }

    /// Applies one event; a broken rule leaves every item as it was.
    mutating func apply(_ event: EPCISEvent, recordedAt now: Date) -> Outcome {
        var outcome = Outcome()
        guard event.errorDeclaration == nil else { return outcome }   // a declaration retracts; it moves nothing
        for location in [event.readPoint, event.bizLocation].compactMap({ $0 }) {
            if let gln = EPCISReader.gln(of: location), directory.locations[gln] != reporter {
                outcome.violations.append(CustodyViolation(kind: .foreignLocation, epc: nil,
                    detail: "GLN \(gln) is not a site of the reporting organization"))
            }
        }
        journal = Journal(shipments: shipments.count, receipts: receipts.count)
        run(event, now: now, outcome: &outcome)
        if !outcome.violations.isEmpty { rollBack() }
        return outcome
    }

    private mutating func run(_ event: EPCISEvent, now: Date, outcome: inout Outcome) {
        let step = event.bizStep ?? ""
        let instances = (event.epcs + event.outputEPCs).filter(Self.isTracked)
        let hash = event.hashID
        // Nothing happens to an item whose chain has ended, except that a second dispense is named as such.
        for epc in Set(instances + [event.parentID].compactMap { $0 }.filter(Self.isTracked)) {
            guard let item = items[epc], item.state.isFinal else { continue }
            if step == "dispensing" && item.state == .dispensed {
                outcome.violate(.dispensedTwice, epc, "already dispensed (\(item.lastEvent))")
            } else {
                outcome.violate(.eventAfterEnd, epc, "the item was \(item.state.rawValue) by \(item.lastEvent)")
            }
        }
        guard outcome.violations.isEmpty else { return }

        if step == "commissioning" {
            for epc in instances {
                if items[epc] != nil { outcome.violate(.commissionedTwice, epc, "already commissioned"); continue }
                let pack = Self.packParts(epc)
                if let pack, directory.owner(ofGTIN: pack.gtin) != reporter {
                    outcome.violate(.commissionedByNonOwner, epc, "GTIN \(pack.gtin) is not under a company prefix of the reporting organization")
                    continue
                }
                set(epc, SupplyItem(epc: epc, gtin: pack?.gtin, serial: pack?.serial, lot: event.lot, expiry: event.expiry,
                                    manufacturerOrg: pack == nil ? nil : reporter, custodianOrg: reporter, state: .active,
                                    commissionedBy: hash, lastEvent: hash))
                touch(epc, holder: reporter)
            }
            return
        }

        if event.type == "AggregationEvent" || event.type == "AssociationEvent", let parent = event.parentID, Self.isTracked(parent) {
            aggregate(event, parent: parent, children: event.epcs.filter(Self.isTracked), outcome: &outcome)
            if !outcome.violations.isEmpty || (step != "shipping" && step != "receiving") { return }
        }

        let moved = event.type == "AggregationEvent" ? [event.parentID].compactMap { $0 }.filter(Self.isTracked) : instances
        switch step {
        case "shipping":
            let receiver = event.destinations.first { $0.type == "owning_party" || $0.type == "possessing_party" }
                .flatMap { EPCISReader.gln(of: $0.id) }.flatMap { directory.locations[$0] }
            for epc in moved {
                guard let item = items[epc] else { outcome.violate(.notCommissioned, epc, "no commissioning was recorded"); continue }
                guard item.custodianOrg == reporter, item.state == .active else {
                    outcome.violate(.shippedByNonCustodian, epc, item.state == .inTransit ? "already shipped, not yet received" : "the reporting organization does not hold it")
                    continue
                }
                notices(for: item, event: event, into: &outcome)
                for member in withDescendants(epc) {
                    update(member) { $0.state = .inTransit; $0.pendingReceiver = receiver; $0.lastEvent = hash }
                    if let receiver { hold(Pair(epc: member, org: receiver)) }
                }
                // Announced when we learn of it: the receipt window runs from then, whatever the event's own time.
                shipments.append(Shipment(epc: epc, from: reporter, to: receiver, event: hash, at: now))
            }
        case "receiving":
            for epc in moved {
                guard let item = items[epc], item.state == .inTransit, item.pendingReceiver == reporter else {
                    outcome.violate(.receivedWithoutShipment, epc, "no shipment to the reporting organization is waiting")
                    continue
                }
                notices(for: item, event: event, into: &outcome)
                let receiver = reporter
                for member in withDescendants(epc) {
                    update(member) { $0.state = .active; $0.pendingReceiver = nil; $0.custodianOrg = receiver; $0.lastEvent = hash }
                }
                receipts.append((epc, hash, event.eventTime.date))
            }
        case "dispensing", "retail_selling", "decommissioning", "destroying":
            let final: SupplyItem.State = step == "decommissioning" ? .decommissioned : step == "destroying" ? .destroyed : .dispensed
            end(moved, as: final, event: event, outcome: &outcome)
        default:
            if event.type == "ObjectEvent", event.action == "DELETE" {
                end(moved, as: .decommissioned, event: event, outcome: &outcome)
            } else if event.disposition == "stolen" {
                end(moved, as: .stolen, event: event, outcome: &outcome, custodianOnly: false)
            }
        }
    }

    private mutating func end(_ epcs: [String], as state: SupplyItem.State, event: EPCISEvent, outcome: inout Outcome,
                              custodianOnly: Bool = true) {
        for epc in epcs {
            guard let item = items[epc] else { outcome.violate(.notCommissioned, epc, "no commissioning was recorded"); continue }
            let allowed = item.custodianOrg == reporter || (!custodianOnly && item.manufacturerOrg == reporter)
            guard allowed, item.state == .active || !custodianOnly else {
                outcome.violate(.notCustodian, epc, "the reporting organization does not hold it")
                continue
            }
            if state == .dispensed { notices(for: item, event: event, into: &outcome) }
            for member in withDescendants(epc) {
                update(member) { $0.state = state; $0.lastEvent = event.hashID }
            }
        }
    }

    private mutating func aggregate(_ event: EPCISEvent, parent: String, children: [String], outcome: inout Outcome) {
        let hash = event.hashID
        switch event.action {
        case "ADD":
            if let unit = items[parent] {
                guard unit.custodianOrg == reporter, unit.state == .active else {
                    outcome.violate(.notCustodian, parent, "the reporting organization does not hold the unit"); return
                }
            } else {
                set(parent, SupplyItem(epc: parent, gtin: Self.packParts(parent)?.gtin, serial: Self.packParts(parent)?.serial,
                                       custodianOrg: reporter, state: .active, commissionedBy: hash, lastEvent: hash))
                touch(parent, holder: reporter)
            }
            for child in children {
                guard let item = items[child] else { outcome.violate(.notCommissioned, child, "no commissioning was recorded"); continue }
                guard item.custodianOrg == reporter, item.state == .active else {
                    outcome.violate(.notCustodian, child, "the reporting organization does not hold it"); continue
                }
                guard child != parent, !ancestors(of: parent).contains(child) else {
                    outcome.violate(.notCustodian, child, "an item cannot be packed inside itself"); continue
                }
                update(child) { $0.parent = parent; $0.lastEvent = hash }
            }
        case "DELETE":
            guard let unit = items[parent] else { outcome.violate(.notCommissioned, parent, "the unit was never packed"); return }
            guard unit.custodianOrg == reporter else { outcome.violate(.notCustodian, parent, "the reporting organization does not hold the unit"); return }
            let removed = children.isEmpty ? items.values.filter { $0.parent == parent }.map { $0.epc } : children
            for child in removed where items[child]?.parent == parent {
                update(child) { $0.parent = nil; $0.lastEvent = hash }
            }
        default:
            break
        }
    }

    private func notices(for item: SupplyItem, event: EPCISEvent, into outcome: inout Outcome) {
        if let gtin = item.gtin, let lot = item.lot, directory.recalledLots[gtin]?.contains(lot) == true {
            outcome.notices.append(CustodyNotice(kind: .recalledMoving, epc: item.epc, detail: "lot \(lot) of GTIN \(gtin) is recalled"))
        }
        if let expiry = item.expiry, let day = GS1Date(isoDate: String(event.eventTime.utc.prefix(10))), expiry < day {
            outcome.notices.append(CustodyNotice(kind: .expiredMoving, epc: item.epc, detail: "expired on \(expiry)"))
        }
    }

    private mutating func rollBack() {
        for (epc, previous) in journal.items { items[epc] = previous }
        for epc in journal.changed { changed.remove(epc) }
        for pair in journal.holders { holders.remove(pair) }
        shipments.removeLast(shipments.count - journal.shipments)
        receipts.removeLast(receipts.count - journal.receipts)
        units = Set(items.values.compactMap { $0.parent })
    }

    /// Sets an item, remembering what it was the first time the event touches it.
    private mutating func set(_ epc: String, _ item: SupplyItem) {
        if journal.items[epc] == nil { journal.items[epc] = .some(items[epc]) }
        items[epc] = item
        if let parent = item.parent { units.insert(parent) }
    }

    private func ancestors(of epc: String) -> [String] {
        var chain: [String] = []
        var current = items[epc]?.parent
        while let next = current, !chain.contains(next), chain.count < 64 {
            chain.append(next)
            current = items[next]?.parent
        }
        return chain
    }

    /// The item and everything packed inside it, however deep (the service loads them all).
    func withDescendants(_ epc: String) -> [String] {
        guard units.contains(epc) else { return [epc] }
        var result = [epc]
        var frontier = [epc]
        var seen: Set<String> = [epc]
        while let next = frontier.popLast() {
            for child in items.values where child.parent == next && seen.insert(child.epc).inserted {
                result.append(child.epc)
                frontier.append(child.epc)
            }
        }
        return result
    }

    private mutating func update(_ epc: String, _ change: (inout SupplyItem) -> Void) {
        guard var item = items[epc] else { return }
        change(&item)
        set(epc, item)
        touch(epc, holder: item.custodianOrg)
    }

    private mutating func touch(_ epc: String, holder: String) {
        if changed.insert(epc).inserted { journal.changed.append(epc) }
        hold(Pair(epc: epc, org: holder))
    }

    private mutating func hold(_ pair: Pair) {
        if holders.insert(pair).inserted { journal.holders.append(pair) }
    }
}

extension EPCISTimestamp {
    var date: Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
