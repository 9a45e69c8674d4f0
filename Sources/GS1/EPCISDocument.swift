import Ledger

/// Why a capture is not EPCIS 2.0: the JSON path of the first problem and what is wrong there.
public struct EPCISProblem: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): \(message)" }

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }
}

/// A source or destination of an event, its type shortened to the CBV term (`owning_party`).
public struct EPCISParty: Equatable, Sendable {
    public let type: String?
    public let id: String

    public init(type: String?, id: String) {
        self.type = type
        self.id = id
    }
}

/// One event of a capture, checked against EPCIS 2.0 and read for what custody needs. `json` is the
/// event as sent; `hashID` its CBV 2.0 event hash id.
public struct EPCISEvent: Sendable {
    public static let types: Set<String> = ["ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent"]

    public let json: JSONValue
    public let path: String
    public let type: String
    public let hashID: String
    public let senderEventID: String?
    public let eventTime: EPCISTimestamp
    public let action: String?
    /// CBV terms without their URI (`shipping`, `in_transit`); other vocabularies as sent.
    public let bizStep: String?
    public let disposition: String?
    public let persistentSet: [String]
    public let readPoint: String?
    public let bizLocation: String?
    /// epcList and childEPCs, canonical.
    public let epcs: [String]
    public let parentID: String?
    public let inputEPCs: [String]
    public let outputEPCs: [String]
    public let sources: [EPCISParty]
    public let destinations: [EPCISParty]
    public let lot: String?
    public let expiry: GS1Date?
    public let errorDeclaration: ErrorDeclaration?

    public struct ErrorDeclaration: Sendable {
        public let declarationTime: EPCISTimestamp
        public let reason: String?
        public let correctiveEventIDs: [String]
    }

    /// Every instance-level EPC the event names (for MATCH_anyEPC).
    public var anyEPCs: [String] {
        var all = epcs + inputEPCs + outputEPCs
        if let parentID { all.append(parentID) }
        return all
    }

    /// Whether the supplied eventID is a hash id that agrees with ours (nil when it is not a hash id).
    public var senderHashAgrees: Bool? {
        guard let senderEventID, EventHash.isHashID(senderEventID) else { return nil }
        return EventHash.digestPart(senderEventID) == EventHash.digestPart(hashID)
    }
}

/// Reads a capture body: an `EPCISDocument` or a single event, in JSON-LD.
public enum EPCISReader {
    public static let maximumEvents = 10_000
    static let actions: Set<String> = ["ADD", "OBSERVE", "DELETE"]

    public static func read(_ value: JSONValue) throws(EPCISProblem) -> [EPCISEvent] {
        guard case .object = value else { throw EPCISProblem("$", "an EPCIS capture is a JSON object") }
        guard let type = value["type"]?.stringValue else { throw EPCISProblem("type", "missing: EPCISDocument or an event type") }
        let context = EPCISContext().adding(contextOf: value)
        if EPCISEvent.types.contains(type) {
            return [try event(value, path: "$", context: context)]
        }
        // A query document another repository answered with carries its events one level deeper;
        // accepting it lets those events be captured here unchanged.
        guard type == "EPCISDocument" || type == "EPCISQueryDocument" else {
            throw EPCISProblem("type", "\"\(type.prefix(40))\" is not EPCISDocument, EPCISQueryDocument or one of the five event types")
        }
        let listPath = type == "EPCISDocument" ? "epcisBody.eventList" : "epcisBody.queryResults.resultsBody.eventList"
        guard let version = value["schemaVersion"]?.stringValue else { throw EPCISProblem("schemaVersion", "missing") }
        guard version == "2.0" || version == "2.0.0" else { throw EPCISProblem("schemaVersion", "\"\(version.prefix(20))\" is not 2.0") }
        guard let created = value["creationDate"]?.stringValue else { throw EPCISProblem("creationDate", "missing") }
        guard EPCISTimestamp(created) != nil else { throw EPCISProblem("creationDate", "not an xsd:dateTimeStamp") }
        guard case .object? = value["epcisBody"] else { throw EPCISProblem("epcisBody", "missing or not an object") }
        let listValue = type == "EPCISDocument" ? value["epcisBody"]?["eventList"] : value["epcisBody"]?["queryResults"]?["resultsBody"]?["eventList"]
        guard case .array(let list)? = listValue else { throw EPCISProblem(listPath, "missing or not an array") }
        guard !list.isEmpty else { throw EPCISProblem(listPath, "empty: nothing to capture") }
        guard list.count <= maximumEvents else { throw EPCISProblem(listPath, "\(list.count) events; at most \(maximumEvents) per capture") }
        var events: [EPCISEvent] = []
        events.reserveCapacity(list.count)
        for (index, item) in list.enumerated() {
            let path = "\(listPath)[\(index)]"
            guard case .object = item else { throw EPCISProblem(path, "an event is an object") }
            events.append(try event(item, path: path, context: context.adding(contextOf: item)))
        }
        return events
    }

    static func event(_ value: JSONValue, path: String, context: EPCISContext) throws(EPCISProblem) -> EPCISEvent {
        func at(_ field: String) -> String { path == "$" ? field : "\(path).\(field)" }
        guard let type = value["type"]?.stringValue, EPCISEvent.types.contains(type) else {
            throw EPCISProblem(at("type"), "one of ObjectEvent, AggregationEvent, TransactionEvent, TransformationEvent, AssociationEvent")
        }
        guard let timeText = value["eventTime"]?.stringValue else { throw EPCISProblem(at("eventTime"), "missing") }
        guard let eventTime = EPCISTimestamp(timeText) else { throw EPCISProblem(at("eventTime"), "not an xsd:dateTimeStamp with an offset") }
        guard let offset = value["eventTimeZoneOffset"]?.stringValue else { throw EPCISProblem(at("eventTimeZoneOffset"), "missing") }
        guard isTimeZoneOffset(offset) else { throw EPCISProblem(at("eventTimeZoneOffset"), "\"\(offset.prefix(10))\" is not ±hh:mm") }
        if let record = value["recordTime"], record.stringValue.flatMap(EPCISTimestamp.init) == nil {
            throw EPCISProblem(at("recordTime"), "not an xsd:dateTimeStamp")
        }
        var senderEventID: String?
        if let id = value["eventID"] {
            guard let text = id.stringValue, text.utf8.contains(UInt8(ascii: ":")) else { throw EPCISProblem(at("eventID"), "an eventID is a URI") }
            senderEventID = text
        }
        let action = try optionalString(value, "action", at)
        if type == "TransformationEvent" {
            if action != nil { throw EPCISProblem(at("action"), "a TransformationEvent has no action") }
        } else {
            guard let action else { throw EPCISProblem(at("action"), "missing: ADD, OBSERVE or DELETE") }
            guard actions.contains(action) else { throw EPCISProblem(at("action"), "\"\(action.prefix(20))\" is not ADD, OBSERVE or DELETE") }
        }
        let epcList = try uris(value, "epcList", at)
        let childEPCs = try uris(value, "childEPCs", at)
        let inputs = try uris(value, "inputEPCList", at)
        let outputs = try uris(value, "outputEPCList", at)
        var parentID: String?
        if value["parentID"] != nil {
            guard let text = value["parentID"]?.stringValue, text.utf8.contains(UInt8(ascii: ":")), text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
                throw EPCISProblem(at("parentID"), "a parentID is a URI")
            }
            parentID = canonical(text)
        }
        for list in ["quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"] {
            try quantities(value, list, at)
        }
        switch type {
        case "AggregationEvent", "AssociationEvent":
            if parentID == nil, action != "DELETE" { throw EPCISProblem(at("parentID"), "missing: required for \(action ?? "") in an \(type)") }
        case "TransactionEvent":
            guard case .array(let transactions)? = value["bizTransactionList"], !transactions.isEmpty else {
                throw EPCISProblem(at("bizTransactionList"), "a TransactionEvent names at least one business transaction")
            }
        case "TransformationEvent":
            let hasInput = !inputs.isEmpty || value["inputQuantityList"] != nil
            let hasOutput = !outputs.isEmpty || value["outputQuantityList"] != nil
            if !hasInput && !hasOutput { throw EPCISProblem(at("inputEPCList"), "a TransformationEvent has inputs or outputs") }
        default:
            break
        }
        let bizStep = try optionalString(value, "bizStep", at).map { cbvTerm($0, "BizStep-", context) }
        let disposition = try optionalString(value, "disposition", at).map { cbvTerm($0, "Disp-", context) }
        var persistentSet: [String] = []
        if let persistent = value["persistentDisposition"] {
            guard case .object = persistent else { throw EPCISProblem(at("persistentDisposition"), "an object with set and unset") }
            for part in ["set", "unset"] {
                guard let list = persistent[part] else { continue }
                guard case .array(let items) = list, items.allSatisfy({ $0.stringValue != nil }) else {
                    throw EPCISProblem(at("persistentDisposition.\(part)"), "an array of dispositions")
                }
                if part == "set" { persistentSet = items.compactMap(\.stringValue).map { cbvTerm($0, "Disp-", context) } }
            }
        }
        let readPoint = try location(value, "readPoint", at)
        let bizLocation = try location(value, "bizLocation", at)
        try typedList(value, "bizTransactionList", "bizTransaction", at)
        let sources = try typedList(value, "sourceList", "source", at).map { EPCISParty(type: $0.type.map { cbvTerm($0, "SDT-", context) }, id: canonical($0.id)) }
        let destinations = try typedList(value, "destinationList", "destination", at).map { EPCISParty(type: $0.type.map { cbvTerm($0, "SDT-", context) }, id: canonical($0.id)) }
        if let sensors = value["sensorElementList"] {
            guard case .array(let elements) = sensors else { throw EPCISProblem(at("sensorElementList"), "an array of sensor elements") }
            for (index, element) in elements.enumerated() {
                guard case .object = element else { throw EPCISProblem(at("sensorElementList[\(index)]"), "a sensor element is an object") }
                if let reports = element["sensorReport"] {
                    guard case .array = reports else { throw EPCISProblem(at("sensorElementList[\(index)].sensorReport"), "an array of reports") }
                }
            }
        }
        var lot: String?, expiry: GS1Date?
        if let ilmd = value["ilmd"] {
            guard case .object = ilmd else { throw EPCISProblem(at("ilmd"), "an object") }
            lot = ilmd["cbvmda:lotNumber"]?.stringValue
            if let date = ilmd["cbvmda:itemExpirationDate"] {
                guard let parsed = date.stringValue.flatMap(GS1Date.init(isoDate:)) else {
                    throw EPCISProblem(at("ilmd.cbvmda:itemExpirationDate"), "an xsd:date (YYYY-MM-DD)")
                }
                expiry = parsed
            }
        }
        var declaration: EPCISEvent.ErrorDeclaration?
        if let error = value["errorDeclaration"] {
            guard case .object = error else { throw EPCISProblem(at("errorDeclaration"), "an object") }
            guard let time = error["declarationTime"]?.stringValue.flatMap(EPCISTimestamp.init) else {
                throw EPCISProblem(at("errorDeclaration.declarationTime"), "missing or not an xsd:dateTimeStamp")
            }
            var corrective: [String] = []
            if let ids = error["correctiveEventIDs"] {
                guard case .array(let items) = ids, items.allSatisfy({ $0.stringValue != nil }) else {
                    throw EPCISProblem(at("errorDeclaration.correctiveEventIDs"), "an array of event ids")
                }
                corrective = items.compactMap(\.stringValue)
            }
            declaration = .init(declarationTime: time, reason: error["reason"]?.stringValue.map { cbvTerm($0, "ER-", context) }, correctiveEventIDs: corrective)
        }
        return EPCISEvent(
            json: value, path: path, type: type, hashID: EventHash.id(of: value, context: context), senderEventID: senderEventID,
            eventTime: eventTime, action: action, bizStep: bizStep, disposition: disposition, persistentSet: persistentSet,
            readPoint: readPoint, bizLocation: bizLocation, epcs: (epcList + childEPCs).map(canonical), parentID: parentID,
            inputEPCs: inputs.map(canonical), outputEPCs: outputs.map(canonical), sources: sources, destinations: destinations,
            lot: lot, expiry: expiry, errorDeclaration: declaration)
    }

    /// An EPC or location in the form events are matched on: the constrained canonical Digital Link
    /// for GS1 keys, anything else as sent.
    public static func canonical(_ text: String) -> String {
        if text.hasPrefix("urn:epc:") { return EPCURN.digitalLink(text) ?? text }
        if text.hasPrefix("http://") || text.hasPrefix("https://") { return DigitalLink(text)?.constrainedCanonical ?? text }
        return text
    }

    /// The GLN (13 digits) a canonical location or party names, if it is one.
    public static func gln(of canonical: String) -> String? {
        for prefix in ["https://id.gs1.org/414/", "https://id.gs1.org/417/"] where canonical.hasPrefix(prefix) {
            let digits = canonical.dropFirst(prefix.count).prefix(13)
            return digits.count == 13 ? String(digits) : nil
        }
        return nil
    }

    /// `https://ref.gs1.org/cbv/BizStep-shipping`, `urn:epcglobal:cbv:bizstep:shipping`, `cbv:BizStep-shipping`
    /// and `shipping` are all `shipping`.
    /// A query value in the form events are stored with (`EQ_bizStep=urn:epcglobal:cbv:bizstep:shipping`).
    public static func term(_ text: String, _ term: String) -> String { cbvTerm(text, term, EPCISContext()) }

    static func cbvTerm(_ text: String, _ term: String, _ context: EPCISContext) -> String {
        let web = "https://ref.gs1.org/cbv/" + term
        if text.hasPrefix(web) { return String(text.dropFirst(web.count)) }
        if let (namespace, local) = context.expand(text), namespace == "https://ref.gs1.org/cbv/", local.hasPrefix(term) {
            return String(local.dropFirst(term.count))
        }
        let urns = ["BizStep-": "urn:epcglobal:cbv:bizstep:", "Disp-": "urn:epcglobal:cbv:disp:", "SDT-": "urn:epcglobal:cbv:sdt:", "ER-": "urn:epcglobal:cbv:er:"]
        if let urn = urns[term], text.hasPrefix(urn) { return String(text.dropFirst(urn.count)) }
        return text
    }

    static func isTimeZoneOffset(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count == 6, bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-"), bytes[3] == UInt8(ascii: ":") else { return false }
        return [1, 2, 4, 5].allSatisfy { bytes[$0] >= 0x30 && bytes[$0] <= 0x39 }
    }

    static func optionalString(_ value: JSONValue, _ field: String, _ at: (String) -> String) throws(EPCISProblem) -> String? {
        guard let member = value[field] else { return nil }
        guard let text = member.stringValue, !text.isEmpty else { throw EPCISProblem(at(field), "a non-empty string") }
        return text
    }

    static func uris(_ value: JSONValue, _ field: String, _ at: (String) -> String) throws(EPCISProblem) -> [String] {
        guard let member = value[field] else { return [] }
        guard case .array(let items) = member else { throw EPCISProblem(at(field), "an array of EPC URIs") }
        var result: [String] = []
        for (index, item) in items.enumerated() {
            guard let text = item.stringValue, text.utf8.contains(UInt8(ascii: ":")), text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F }) else {
                throw EPCISProblem(at("\(field)[\(index)]"), "an EPC is a URI (no spaces or control characters)")
            }
            result.append(text)
        }
        return result
    }

    static func quantities(_ value: JSONValue, _ field: String, _ at: (String) -> String) throws(EPCISProblem) {
        guard let member = value[field] else { return }
        guard case .array(let items) = member else { throw EPCISProblem(at(field), "an array of quantity elements") }
        for (index, item) in items.enumerated() {
            guard item["epcClass"]?.stringValue != nil else { throw EPCISProblem(at("\(field)[\(index)].epcClass"), "missing") }
            if let quantity = item["quantity"], quantity.numberValue == nil { throw EPCISProblem(at("\(field)[\(index)].quantity"), "a number") }
        }
    }

    static func location(_ value: JSONValue, _ field: String, _ at: (String) -> String) throws(EPCISProblem) -> String? {
        guard let member = value[field] else { return nil }
        guard case .object = member, let id = member["id"]?.stringValue, !id.isEmpty else { throw EPCISProblem(at("\(field).id"), "missing") }
        return canonical(id)
    }

    @discardableResult
    static func typedList(_ value: JSONValue, _ field: String, _ element: String, _ at: (String) -> String) throws(EPCISProblem) -> [(type: String?, id: String)] {
        guard let member = value[field] else { return [] }
        guard case .array(let items) = member else { throw EPCISProblem(at(field), "an array") }
        var result: [(type: String?, id: String)] = []
        for (index, item) in items.enumerated() {
            guard let id = item[element]?.stringValue, !id.isEmpty else { throw EPCISProblem(at("\(field)[\(index)].\(element)"), "missing") }
            if let type = item["type"], type.stringValue == nil { throw EPCISProblem(at("\(field)[\(index)].type"), "a string") }
            result.append((item["type"]?.stringValue, id))
        }
        return result
    }
}
