import Crypto
import Ledger

/// The EPCIS Event Hash ID of CBV 2.0 (section 8.9): a canonical pre-hash string built from the event's
/// fields in a fixed order with normalized values, then `ni:///sha-256;{hex}?ver=CBV2.0` (RFC 6920).
/// Where the prose and the published vectors differ, the vectors (`../shared/fixtures/epcis/event-hash`)
/// are what this follows: the `sensorElementList` name appears once, destinations come before sources, and extensions inside `readPoint`,
/// `bizLocation` and the sensor structures follow their parent's own fields.
public enum EventHash {
    public static let version = "CBV2.0"

    /// The hash id of one event; `context` maps the document's CURIE prefixes to namespaces.
    public static func id(of event: JSONValue, context: EPCISContext) -> String {
        hashID(preHash: preHash(of: event, context: context))
    }

    public static func hashID(preHash: String) -> String {
        "ni:///sha-256;\(SHA256.hexDigest(Array(preHash.utf8)))?ver=\(version)"
    }

    /// Whether `eventID` is a hash id (as opposed to a UUID or another URI the sender chose).
    public static func isHashID(_ eventID: String) -> Bool { eventID.hasPrefix("ni:///") }

    /// The digest and algorithm of a hash id, without the `?ver=` query, for comparison.
    public static func digestPart(_ hashID: String) -> Substring {
        hashID.prefix { $0 != "?" }.dropFirst("ni:///".count)
    }

    public static func preHash(of event: JSONValue, context: EPCISContext) -> String {
        var writer = PreHashWriter(context: context)
        return writer.event(event)
    }
}

/// The CURIE prefixes in force for a document: the EPCIS 2.0 context's own, then the document's.
public struct EPCISContext: Sendable {
    public private(set) var prefixes: [String: String] = [
        "cbv": "https://ref.gs1.org/cbv/", "cbvmda": "urn:epcglobal:cbv:mda:", "epcis": "https://ref.gs1.org/epcis/",
        "gs1": "https://gs1.org/voc/", "xsd": "http://www.w3.org/2001/XMLSchema#", "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
        "dcterms": "http://purl.org/dc/terms/", "owl": "http://www.w3.org/2002/07/owl#",
    ]

    public init() {}

    /// The standard context with these prefixes laid over it (as stored beside a captured event).
    public init(prefixes: [String: String]) {
        for (prefix, namespace) in prefixes { self.prefixes[prefix] = namespace }
    }

    /// The standard context with the `@context` of `value` (a document or an event) laid over it.
    public func adding(contextOf value: JSONValue) -> EPCISContext {
        var context = self
        var entries: [JSONValue] = []
        switch value["@context"] {
        case .array(let items)?: entries = items
        case let item?: entries = [item]
        case nil: break
        }
        for case .object(let members) in entries {
            for member in members { if case .string(let namespace) = member.value { context.prefixes[member.key] = namespace } }
        }
        return context
    }

    /// `prefix:local` expanded when the prefix is declared, else nil.
    func expand(_ curie: String) -> (namespace: String, local: String)? {
        guard let colon = curie.firstIndex(of: ":") else { return nil }
        guard let namespace = prefixes[String(curie[..<colon])] else { return nil }
        let local = String(curie[curie.index(after: colon)...])
        guard !local.hasPrefix("//") else { return nil }
        return (namespace, local)
    }
}

private struct PreHashWriter {
    let context: EPCISContext

    enum Vocabulary: String {
        case bizStep = "BizStep-", disposition = "Disp-", transactionType = "BTT-", sourceDestinationType = "SDT-"
    }

    /// Fields of the standard in their canonical order; anything else at event level is an extension.
    static let eventFields: Set<String> = [
        "type", "eventTime", "eventTimeZoneOffset", "recordTime", "eventID", "errorDeclaration", "certificationInfo",
        "epcList", "parentID", "inputEPCList", "childEPCs", "quantityList", "childQuantityList", "inputQuantityList",
        "outputEPCList", "outputQuantityList", "action", "transformationID", "bizStep", "disposition",
        "persistentDisposition", "readPoint", "bizLocation", "bizTransactionList", "sourceList", "destinationList",
        "sensorElementList", "ilmd",
    ]
    static let metadataFields = ["time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "bizRules"]
    static let reportFields = ["type", "exception", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "time",
                               "microorganism", "chemicalSubstance", "value", "component", "stringValue", "booleanValue",
                               "hexBinaryValue", "uriValue", "minValue", "maxValue", "meanValue", "sDev", "percRank",
                               "percValue", "uom", "coordinateReferenceSystem"]
    static let timeFields: Set<String> = ["eventTime", "time", "startTime", "endTime", "declarationTime"]

    mutating func event(_ event: JSONValue) -> String {
        var out = "eventType=" + (event["type"]?.stringValue ?? "")
        out += scalar("eventTime", event["eventTime"])
        out += scalar("eventTimeZoneOffset", event["eventTimeZoneOffset"])
        out += epcs("epcList", event["epcList"])
        out += scalar("parentID", event["parentID"])
        out += epcs("inputEPCList", event["inputEPCList"])
        out += epcs("childEPCs", event["childEPCs"])
        out += quantities("quantityList", event["quantityList"])
        out += quantities("childQuantityList", event["childQuantityList"])
        out += quantities("inputQuantityList", event["inputQuantityList"])
        out += epcs("outputEPCList", event["outputEPCList"])
        out += quantities("outputQuantityList", event["outputQuantityList"])
        out += scalar("action", event["action"])
        out += scalar("transformationID", event["transformationID"])
        out += scalar("bizStep", event["bizStep"], vocabulary: .bizStep)
        out += scalar("disposition", event["disposition"], vocabulary: .disposition)
        out += persistentDisposition(event["persistentDisposition"])
        out += location("readPoint", event["readPoint"])
        out += location("bizLocation", event["bizLocation"])
        out += typedList("bizTransactionList", "bizTransaction", event["bizTransactionList"], vocabulary: .transactionType)
        // The vectors put destinations before sources (the prose lists sources first).
        out += typedList("destinationList", "destination", event["destinationList"], vocabulary: .sourceDestinationType)
        out += typedList("sourceList", "source", event["sourceList"], vocabulary: .sourceDestinationType)
        out += sensorElements(event["sensorElementList"])
        if case .object(let members)? = event["ilmd"] {
            let ilmd = sorted(members.flatMap { extensionStrings(key: $0.key, value: $0.value) })
            if !ilmd.isEmpty { out += "ilmd" + ilmd.joined() }
        }
        if case .object(let members) = event {
            let extensions = members.filter { !PreHashWriter.eventFields.contains($0.key) && !$0.key.hasPrefix("@") }
            out += sorted(extensions.flatMap { extensionStrings(key: $0.key, value: $0.value) }).joined()
        }
        return out
    }

    func scalar(_ name: String, _ value: JSONValue?, vocabulary: Vocabulary? = nil) -> String {
        guard let value, let text = canonical(value, field: name, vocabulary: vocabulary), !text.isEmpty else { return "" }
        return name + "=" + text
    }

    func epcs(_ name: String, _ value: JSONValue?) -> String {
        guard case .array(let items)? = value else { return "" }
        let entries = sorted(items.compactMap { item in canonical(item, field: "epc").flatMap { $0.isEmpty ? nil : "epc=" + $0 } })
        return entries.isEmpty ? "" : name + entries.joined()
    }

    func quantities(_ name: String, _ value: JSONValue?) -> String {
        guard case .array(let items)? = value else { return "" }
        let entries = sorted(items.compactMap { item -> String? in
            let body = scalar("epcClass", item["epcClass"]) + scalar("quantity", item["quantity"]) + scalar("uom", item["uom"])
            return body.isEmpty ? nil : "quantityElement" + body
        })
        return entries.isEmpty ? "" : name + entries.joined()
    }

    func persistentDisposition(_ value: JSONValue?) -> String {
        guard let value else { return "" }
        var body = ""
        for part in ["set", "unset"] {
            guard case .array(let items)? = value[part] else { continue }
            body += sorted(items.compactMap { canonical($0, field: part, vocabulary: .disposition).map { part + "=" + $0 } }).joined()
        }
        return body.isEmpty ? "" : "persistentDisposition" + body
    }

    func location(_ name: String, _ value: JSONValue?) -> String {
        guard case .object(let members)? = value else { return "" }
        let body = scalar("id", value?["id"]) + inlineExtensions(members, standard: ["id"])
        return body.isEmpty ? "" : name + body
    }

    func typedList(_ name: String, _ element: String, _ value: JSONValue?, vocabulary: Vocabulary) -> String {
        guard case .array(let items)? = value else { return "" }
        let entries = sorted(items.compactMap { item -> String? in
            let body = scalar("type", item["type"], vocabulary: vocabulary) + scalar(element, item[element])
            return body.isEmpty ? nil : body
        })
        return entries.isEmpty ? "" : name + entries.joined()
    }

    func sensorElements(_ value: JSONValue?) -> String {
        guard case .array(let items)? = value else { return "" }
        let elements = sorted(items.compactMap { element -> String? in
            guard case .object(let members) = element else { return nil }
            var body = ""
            if case .object(let metadata)? = element["sensorMetadata"] {
                let fields = PreHashWriter.metadataFields.map { scalar($0, element["sensorMetadata"]?[$0]) }.joined()
                    + inlineExtensions(metadata, standard: Set(PreHashWriter.metadataFields))
                if !fields.isEmpty { body += "sensorMetadata" + fields }
            }
            if case .array(let reports)? = element["sensorReport"] {
                body += sorted(reports.compactMap { report -> String? in
                    guard case .object(let reportMembers) = report else { return nil }
                    let fields = PreHashWriter.reportFields.map { field in
                        scalar(field, report[field], vocabulary: nil, sensorType: field == "type")
                    }.joined() + inlineExtensions(reportMembers, standard: Set(PreHashWriter.reportFields))
                    return fields.isEmpty ? nil : "sensorReport" + fields
                }).joined()
            }
            body += inlineExtensions(members, standard: ["sensorMetadata", "sensorReport"])
            return body.isEmpty ? nil : "sensorElement" + body
        })
        return elements.isEmpty ? "" : "sensorElementList" + elements.joined()
    }

    func scalar(_ name: String, _ value: JSONValue?, vocabulary: Vocabulary?, sensorType: Bool) -> String {
        guard sensorType, let text = value?.stringValue else { return scalar(name, value, vocabulary: vocabulary) }
        let trimmed = text.trimmingSpaces
        // Sensor types are GS1 Web Vocabulary terms; bare ones expand under gs1:.
        let expanded = trimmed.utf8.contains(UInt8(ascii: ":")) ? canonicalText(trimmed) : "https://gs1.org/voc/" + trimmed
        return expanded.isEmpty ? "" : name + "=" + expanded
    }

    func inlineExtensions(_ members: [(key: String, value: JSONValue)], standard: Set<String>) -> String {
        sorted(members.filter { !standard.contains($0.key) && !$0.key.hasPrefix("@") }
            .flatMap { extensionStrings(key: $0.key, value: $0.value) }).joined()
    }

    /// `{namespace}local=value`, or `{namespace}local` followed by its children in order, for every
    /// occurrence (an array repeats the element, as XML would).
    func extensionStrings(key: String, value: JSONValue) -> [String] {
        let name: String
        if let (namespace, local) = context.expand(key) {
            // XML spells cbvmda's namespace without the trailing colon JSON-LD needs to join names.
            let xmlNamespace = namespace.hasPrefix("urn:") && namespace.hasSuffix(":") ? String(namespace.dropLast()) : namespace
            name = "{\(xmlNamespace)}\(local)"
        } else {
            name = key
        }
        switch value {
        case .array(let items):
            return items.flatMap { extensionStrings(key: key, value: $0) }
        case .object(let members):
            let children = members.filter { !$0.key.hasPrefix("@") }.flatMap { extensionStrings(key: $0.key, value: $0.value) }
            return [name + sorted(children).joined()]
        case .null:
            return [name]
        default:
            guard let text = canonical(value, field: key), !text.isEmpty else { return [name] }
            return [name + "=" + text]
        }
    }

    /// A field's value in canonical form, nil for a value of no scalar kind.
    func canonical(_ value: JSONValue, field: String, vocabulary: Vocabulary? = nil) -> String? {
        switch value {
        case .string(let raw):
            let text = raw.trimmingSpaces
            if PreHashWriter.timeFields.contains(field), let stamp = EPCISTimestamp(text) { return stamp.utc }
            if let vocabulary, !text.utf8.contains(UInt8(ascii: ":")) { return "https://ref.gs1.org/cbv/" + vocabulary.rawValue + text }
            return canonicalText(text)
        case .number(let number):
            return ECMAScriptNumber.format(number)
        case .bool(let flag):
            return flag ? "true" : "false"
        case .null, .array, .object:
            return nil
        }
    }

    func canonicalText(_ text: String) -> String {
        if let web = PreHashWriter.webVocabulary(text) { return web }
        if text.hasPrefix("urn:epc:") { return EPCURN.digitalLink(text) ?? text }
        if text.hasPrefix("http://") || text.hasPrefix("https://") { return DigitalLink(text)?.constrainedCanonical ?? text }
        if let (namespace, local) = context.expand(text) { return namespace + local }
        return PreHashWriter.decimal(text) ?? text
    }

    /// `urn:epcglobal:cbv:bizstep:receiving` → `https://ref.gs1.org/cbv/BizStep-receiving` (rule 14).
    static func webVocabulary(_ text: String) -> String? {
        let mappings = [("urn:epcglobal:cbv:bizstep:", "BizStep-"), ("urn:epcglobal:cbv:disp:", "Disp-"),
                        ("urn:epcglobal:cbv:btt:", "BTT-"), ("urn:epcglobal:cbv:sdt:", "SDT-"), ("urn:epcglobal:cbv:er:", "ER-")]
        for (urn, term) in mappings where text.hasPrefix(urn) {
            return "https://ref.gs1.org/cbv/" + term + text.dropFirst(urn.count)
        }
        return nil
    }

    /// A decimal written as text, without a leading plus, leading zeros or trailing fractional zeros.
    static func decimal(_ text: String) -> String? {
        var scalars = Substring(text)
        var negative = false
        if let sign = scalars.first, sign == "+" || sign == "-" { negative = sign == "-"; scalars = scalars.dropFirst() }
        let parts = scalars.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, GS1CheckDigit.allDigits(whole) else { return nil }
        var fraction = parts.count == 2 ? parts[1] : ""
        if parts.count == 2, !GS1CheckDigit.allDigits(fraction) { return nil }
        while fraction.last == "0" { fraction = fraction.dropLast() }
        var integer = whole.drop { $0 == "0" }
        if integer.isEmpty { integer = "0" }
        let body = fraction.isEmpty ? String(integer) : integer + "." + fraction
        return negative && body != "0" ? "-" + body : body
    }

    func sorted(_ strings: [String]) -> [String] {
        strings.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}
